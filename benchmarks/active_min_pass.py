"""The learning phase: a controlled arm with another ``min_pass`` against a finished
brute-force arm of ``bench_active.py``, at that arm's CPU budget.

The controllers are trained once ``min_pass`` passing events are logged; at a final
efficiency of a few 1e-4 the default of 20 is reached only after 16 chunks of 5,000
events (the online schedule retrains when the chunks behind it have doubled), all
simulated in full. This runs the controlled arm of the same evaluation (same pipeline,
seed and budget) with a smaller ``min_pass`` and prints the gain (Kish N_eff per CPU
second over the brute-force arm's, training and decisions counted; 16-84 % interval from
resampling the chunks of both arms) and the learning phase's share of its CPU.

Usage (the figure of BENCHMARKS.md):

    python benchmarks/active_min_pass.py --selection bright --size default --min-pass 10 \\
        --evaluation benchmarks/out/active-muon-default/evaluation
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ariasim.active.engine import ActiveConfig, run_active
from ariasim.apps.muons import make_muon_pipeline
from ariasim.utils import spawn_seeds
from bench_active import chunk_sums, steady_state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default", choices=("default", "ci"))
    ap.add_argument("--selection", default="upgoing", choices=("upgoing", "bright"))
    ap.add_argument("--min-pass", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="bench_active.py's --seed")
    ap.add_argument("--evaluation", type=Path, required=True, help="bench_active's evaluation/")
    args = ap.parse_args(argv)

    pipe = make_muon_pipeline(args.size, selection=args.selection)
    cfg = ActiveConfig(chunk_size=pipe.chunk_size, min_pass=args.min_pass)
    _, b = chunk_sums(args.evaluation / "brute", cfg.chunk_size)
    budget = float(b[2].sum())
    out = args.evaluation.parent / f"controlled-min-pass-{args.min_pass}"
    run_active(
        pipe,
        out / "controlled",
        seed=spawn_seeds(args.seed, 4)[0],
        budget_cpu_s=budget,
        config=cfg,
    )
    (out / "brute").mkdir(parents=True, exist_ok=True)
    _, c = chunk_sums(out / "controlled", cfg.chunk_size)

    def eff(x: np.ndarray) -> float:
        return float(x[0].sum() ** 2 / x[1].sum() / x[2].sum())

    rng = np.random.default_rng(0)
    boot = [
        eff(c[:, rng.integers(0, c.shape[1], c.shape[1])])
        / eff(b[:, rng.integers(0, b.shape[1], b.shape[1])])
        for _ in range(1000)
    ]
    # steady_state() reads evaluation/brute and evaluation/controlled
    link = out / "brute"
    link.rmdir()
    link.symlink_to((args.evaluation / "brute").resolve())
    result = {
        "min_pass": args.min_pass,
        "budget_cpu_s": budget,
        "controlled_cpu_s": float(c[2].sum()),
        "n_eff": float(c[0].sum() ** 2 / c[1].sum()),
        "gain": eff(c) / eff(b),
        "gain_16_84": [float(q) for q in np.nanquantile(boot, [0.16, 0.84])],
        "steady_state": steady_state(out, cfg),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
