"""Coverage of the discovery posterior over repeated synthetic data sets (issue 13, sec. 3).

The problem of ``bench_discovery_design.py`` (default slope, N = 0, Voellmy mu = 0.3,
xi = 400 m/s^2, front positions at 2..30 s with 1 m noise, four candidate terms), with
``--datasets`` independent noise realisations. Each is calibrated as a user would: active
learning from a 20-run Latin hypercube in batches of 4 with the default stopping rule, at
most ``--max-runs`` runs. Reported: how often each 95 % interval covers the true weight
(with the binomial standard error), how often the most probable subset is exactly
{coulomb, turbulent}, the inclusion probabilities, and the runs used.

    python benchmarks/bench_discovery_coverage.py --datasets 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

from ariasim.discovery.calibration import calibrate
from ariasim.discovery.posterior import Observations
from bench_discovery_design import PRIOR, SIGMA, TIMES, TRUTH, forward, run_one


def one(args: tuple[int, int]) -> dict:
    i, max_runs = args
    rng = np.random.default_rng(1000 + i)
    y = run_one(np.array(list(TRUTH.values()))) + rng.normal(0.0, SIGMA, TIMES.size)
    obs = Observations(y, np.full(TIMES.size, SIGMA))
    t0 = time.perf_counter()
    res = calibrate(forward, PRIOR, obs, initial=20, batch=4, max_runs=max_runs, seed=i)
    s = res.summary(truth=TRUTH)
    return {
        "dataset": i,
        "covers": s["covers_truth"],
        "inclusion": s["inclusion"],
        "top": s["most_probable_terms"],
        "runs": s["simulator_runs"],
        "stop": s["stop_reason"],
        "parameters": s["parameters"],
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--max-runs", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/out/discovery_coverage")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as ex:
        rows = list(ex.map(one, [(i, a.max_runs) for i in range(a.datasets)]))
    n = len(rows)
    print("| term | truth | 95 % interval covers | mean inclusion |\n|---|---|---|---|")
    cover = {}
    for k in PRIOR.names:
        c = sum(r["covers"][k] for r in rows)
        p = c / n
        cover[k] = p
        inc = np.mean([r["inclusion"][k] for r in rows])
        se = np.sqrt(max(p * (1 - p), 1e-9) / n)
        print(f"| {k} | {TRUTH[k]:g} | {c}/{n} = {p:.2f} +- {se:.2f} | {inc:.3f} |")
    right = sum(sorted(r["top"]) == ["coulomb", "turbulent"] for r in rows)
    runs = [r["runs"] for r in rows]
    print(f"\nmost probable subset = {{coulomb, turbulent}} in {right}/{n} data sets")
    print(
        f"simulator runs: median {np.median(runs):g}, range {min(runs)}-{max(runs)}; stops "
        f"{sorted({r['stop'] for r in rows})}"
    )
    summary = {
        "rows": rows,
        "coverage": cover,
        "right_subset": right,
        "datasets": n,
        "seconds": time.perf_counter() - t0,
        "command": "python benchmarks/bench_discovery_coverage.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'summary.json'} ({summary['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
