"""The gain of an oracle controller on a finished brute-force run of the muon pipeline.

An oracle knows before the photons whether each event will pass (``p`` = 0 or 1 from the
run's own outcome) and keeps it with ``a = clip(lambda w sqrt(p), a_min, 1)``; no
controller can do better on that run's events (any controller's ``p`` is a mean-preserving
contraction of the outcome). Scored like ``active_ceiling.py``: the variance x cost of
:func:`ariasim.active.controller.optimal_lambda`'s objective, with the cost of the stages
before the photons, and of the photons (and what follows) per event either as the mean
per event (``mean_cost``: the controllers' cost model) or each event's own logged CPU
(``per_event_cost``; ``cost_aware`` with ``a ∝ w sqrt(p / c)``). Bright events carry many
photons, so when the selection keeps them, the events that must be simulated are the
expensive ones, and ``per_event_cost`` is the bound that counts.

Usage (the figures of BENCHMARKS.md; a run folder of ``bench_active.py`` or
``ariasim active run --mode brute``):

    python benchmarks/active_oracle.py benchmarks/out/active-muon-ci/reference \
        benchmarks/out/active-muon-ci/evaluation/brute
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from active_ceiling import gain
from ariasim.parallel import read_parts

BEFORE = ("cpu_primaries", "cpu_bundles", "cpu_propagation")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="+", help="brute-force run folders (pooled)")
    ap.add_argument("--stage", default="photons_preview", help="the control point's stage")
    ap.add_argument("--a-min", type=float, default=0.01)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args(argv)

    logs = [read_parts(run, "log", None) for run in args.run]
    reached = f"reached_{args.stage}"
    for run, one in zip(args.run, logs, strict=True):
        if reached not in one.columns:
            ap.error(f"{run}: the log has no column {reached!r} (a muon pipeline run?)")
    log = pd.concat(logs, ignore_index=True)
    at = log[log[reached].astype(bool)]
    w = at["gen_weight"].to_numpy(float)
    w = w / np.median(w)
    p = at["passed"].to_numpy(float)
    names = list(log.columns)
    after = [c for c in names[names.index(f"cpu_{args.stage}") :] if c.startswith("cpu_")]
    after = [c for c in after if not c.startswith("cpu_decide")]
    pre = float(log[[c for c in BEFORE if c in names]].to_numpy(float).sum() / len(at))
    cost = at[after].fillna(0.0).to_numpy(float).sum(axis=1)

    def three(i: np.ndarray) -> dict[str, float]:
        wi, pi, ci = w[i], p[i], cost[i]
        return {
            "mean_cost": gain(wi, pi, pi, pre, float(ci.mean()), args.a_min),
            "per_event_cost": gain(wi, pi, pi, pre, ci, args.a_min),
            "cost_aware": gain(wi, pi, pi, pre, ci, args.a_min, cost_aware=ci),
        }

    rng = np.random.default_rng(0)
    boot = [three(rng.integers(0, len(w), len(w))) for _ in range(args.bootstrap)]
    out = {
        "runs": [str(r) for r in args.run],
        "events": len(log),
        "at_control_point": len(at),
        "passing": int(p.sum()),
        "cpu_s_per_event_at_point": {"before": pre, "from_point_on": float(cost.mean())},
        "passing_share_of_cpu_from_point_on": float(cost[p > 0].sum() / cost.sum()),
        "passing_cost_over_mean": float(cost[p > 0].mean() / cost.mean()),
        "oracle_gain": three(np.arange(len(w))),
        "oracle_gain_16_84": {
            k: [float(q) for q in np.quantile([b[k] for b in boot], [0.16, 0.84])] for k in boot[0]
        },
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
