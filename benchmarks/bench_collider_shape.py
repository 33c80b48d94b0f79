"""Non-Gaussian response (issue 14 item 2): quantiles and AUC, shape vs Gaussian, held out.

Usage (after ``ariasim fit response FULL --events even --shape -o MODEL``)::

    python benchmarks/bench_collider_shape.py --full FULL --model MODEL --out summary.json

Fast-simulates the held-out (odd) events of FULL twice with the same model: with its
non-Gaussian shapes and with the card's Gaussian / log-normal smearing only, then prints
per object the bins whose 1-99 % quantiles of reco/truth agree with the full simulation
(:func:`ariasim.apps.collider.shape.quantile_summary`), the classifier AUC, the tail
fractions a single Gaussian cannot carry, and the fast-simulation throughput of both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ariasim.apps.collider.compare import auc_table
from ariasim.apps.collider.fastsim import FastSimulator
from ariasim.apps.collider.model import ResponseModel
from ariasim.apps.collider.objects import select_events
from ariasim.apps.collider.shape import quantile_summary, quantile_table, tail_fractions
from ariasim.utils import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speed-rows", type=int, default=3_000_000)
    args = ap.parse_args()
    full = select_events(pd.read_parquet(args.full), "odd")
    model = ResponseModel.load(args.model)
    objs = list(model.objects)
    out: dict = {"n_heldout": len(full), "per_species": full["pdg"].abs().value_counts().to_dict()}
    pd.set_option("display.width", 160)
    for label, use in (("shape", True), ("gaussian", False)):
        sim = FastSimulator(model, shape=use)
        fast = sim(full, args.seed)
        q = quantile_table(full, fast, objs)
        s = quantile_summary(q)
        auc = auc_table(full, fast, objs)
        print(f"== {label}\n{s.to_string(index=False)}")
        print(auc[["object", "n_full", "n_fast", "auc", "auc_err"]].to_string(index=False))
        out[label] = {
            "quantile_summary": s.to_dict(orient="records"),
            "auc": auc.to_dict(orient="records"),
        }
        q.to_csv(args.out.replace(".json", f"-{label}-quantiles.csv"), index=False)
    tails = tail_fractions(full, objs)
    print(tails.to_string(index=False))
    out["tails"] = tails.to_dict(orient="records")
    # throughput, same table and process: with and without the shapes
    big = pd.concat([full] * int(np.ceil(args.speed_rows / len(full))), ignore_index=True)
    big = big.iloc[: args.speed_rows]
    speed = {}
    for label, use in (("gaussian", False), ("shape", True), ("gaussian_again", False)):
        sim = FastSimulator(model, shape=use)
        t0 = time.perf_counter()
        sim(big, args.seed)
        speed[label] = len(big) / (time.perf_counter() - t0)
    print({k: f"{v:.3g} particles/s" for k, v in speed.items()})
    out["speed_particles_per_s"] = speed
    write_json(args.out, out, default=float)


if __name__ == "__main__":
    main()
