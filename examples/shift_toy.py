"""Write a toy event table with what physics tables have, for ``ariasim shift validate``.

Columns: ``e`` a skewed positive energy-like feature whose scale depends on the context
``c`` (uniform in [0, 1]), ``x`` a Gaussian feature, ``k`` an integer count (Poisson, mean
3). Usage::

    python examples/shift_toy.py toy.parquet --n 60000 --seed 0
    ariasim shift validate toy.parquet --features e,x,k --context c --out validation/
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    """The toy table of ``n`` events (module docstring)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.0, 1.0, n)
    return pd.DataFrame(
        {
            "e": rng.gamma(4.0, 1.0, n) * (1.0 + 0.5 * c),
            "x": rng.normal(0.0, 1.0, n),
            "k": rng.poisson(3.0, n),
            "c": c,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="Parquet file to write")
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    make_table(args.n, args.seed).to_parquet(args.out)


if __name__ == "__main__":
    main()
