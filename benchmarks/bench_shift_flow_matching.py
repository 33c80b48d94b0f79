"""FlowMatchingMorpher on injected shifts of a 3-feature toy: AUC before/after, timing.

Run: ``python benchmarks/bench_shift_flow_matching.py --events 20000 --threads 1``.
The toy has a continuous feature ``e`` (N(2, 1)), an integer count ``k`` (Poisson(4)) and a
feature with a spike ``iso`` (30 % exactly 0, else Exp(1)). The target is a fresh sample of
the distorted distribution: scale, offset, smearing, a monotone non-linear map, a correlated
change, a context-dependent shift (context ``c`` ~ U(0, 1)), and a closure (no shift).
For each: fit and morph time, classifier AUC (:func:`ariasim.metrics.classifier_test`) of
source vs target before and of morphed source vs target after, and, for the invertible
ones, the event-by-event rms error of ``e`` against its known image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from ariasim.metrics import classifier_test
from ariasim.shift import FlowMatchingMorpher, stack

SHIFTS = ("offset", "scale", "smear", "nonlinear", "correlated", "context", "closure")


def _base(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "e": rng.normal(2.0, 1.0, n),
            "k": rng.poisson(4.0, n).astype(np.int64),
            "iso": np.where(rng.random(n) < 0.3, 0.0, rng.exponential(1.0, n)),
            "c": rng.uniform(0.0, 1.0, n),
        }
    )


def _image(kind: str, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The distortion applied to a sample (``e`` deterministic where invertible)."""
    out = df.copy()
    e, n = df["e"].to_numpy(), len(df)
    if kind == "offset":
        out["e"] = e + 0.3
    elif kind == "scale":
        out["e"] = 2.0 + 1.2 * (e - 2.0)
    elif kind == "smear":
        out["e"] = e + rng.normal(0.0, 0.5, n)
    elif kind == "nonlinear":
        out["e"] = e + 0.3 * np.tanh(e - 2.0) + 0.05 * (e - 2.0) ** 2
        out["iso"] = 1.2 * df["iso"]
    elif kind == "correlated":
        out["e"] = e + 0.25 * (df["k"] - 4.0)
        out["k"] = rng.poisson(4.0 + 0.5 * (df["iso"] > 0), n).astype(np.int64)
    elif kind == "context":
        out["e"] = e + 0.6 * df["c"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events per side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shifts", default=",".join(SHIFTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for i, kind in enumerate(args.shifts.split(",")):
        rng = np.random.default_rng([args.seed, i])
        src = _base(args.events, rng)
        tgt = _image(kind, _base(args.events, rng), rng)
        ctx = ["c"] if kind == "context" else []
        cols = ["e", "k", "iso", *ctx]
        X, y, _ = stack(src[cols], tgt[cols])
        t0 = time.perf_counter()
        fm = FlowMatchingMorpher(context=ctx, n_threads=args.threads).fit(X, y)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        moved = fm.transform(src[cols])
        morph_s = time.perf_counter() - t0
        before = classifier_test(src[cols], tgt[cols], seed=1)
        after = classifier_test(moved, tgt[cols], seed=1)
        line = (
            f"{kind:10s} fit {fit_s:6.1f} s ({fm.n_epochs_} epochs)  morph {morph_s:5.1f} s  "
            f"AUC {before.value:.4f} -> {after.value:.4f} +- {after.uncertainty:.4f}"
        )
        if kind in ("offset", "scale", "closure", "context"):
            exact = _image(kind, src, rng)["e"] if kind != "closure" else src["e"]
            rms = float(np.sqrt(np.mean((moved["e"] - exact) ** 2)))
            line += f"  rms(e' - image) {rms:.4f}"
        if kind == "offset":
            line += f"  k changed {np.mean(moved['k'] != src['k']):.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
