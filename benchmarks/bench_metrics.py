"""Time ``ariasim.metrics.compare`` on large tables, metric by metric.

Run: ``python benchmarks/bench_metrics.py --rows 1000000 --features 5``. Prints the wall time
of each metric and of the whole comparison (uncalibrated), so the O(n^2) caps can be checked.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ariasim.metrics import METRICS, compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--weighted", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cols = [f"f{i}" for i in range(args.features)]
    a = pd.DataFrame(rng.normal(size=(args.rows, args.features)), columns=cols)
    b = pd.DataFrame(rng.normal(size=(args.rows, args.features)), columns=cols)
    b["f0"] += 0.01
    w = rng.uniform(0.5, 1.5, args.rows) if args.weighted else None
    print(f"{args.rows} rows x {args.features} features per table, weighted={args.weighted}")
    for metric in METRICS:
        t0 = time.perf_counter()
        compare(a, b, weights_a=w, metrics=[metric], seed=args.seed)
        print(f"  {metric:20s} {time.perf_counter() - t0:8.2f} s")
    t0 = time.perf_counter()
    table = compare(a, b, weights_a=w, seed=args.seed)
    print(f"  {'compare (all)':20s} {time.perf_counter() - t0:8.2f} s")
    print(table[["metric", "feature", "value", "p_value"]].head(12).to_string(index=False))


if __name__ == "__main__":
    main()
