"""Benchmark: coverage of the demo's inverse problem over independent datasets.

``ariasim demo`` recovers an injected medium (absorption and effective scattering lengths)
from a simulated string-detector dataset with the across-media photon surrogate. One
dataset says little about whether its 68 % intervals are honest; this benchmark repeats
the demo's inverse stage on ``--datasets`` independent MC datasets (seeds split with
``spawn_seeds``) with the surrogate that a demo run wrote, and counts how often the
profile-likelihood intervals (inside the surrogate's training range; an interval open at
the range's end covers what lies between its other end and the range's end) cover the
true values, for these likelihoods:

* ``unbinned``: counts (negative binomial with the count error on the training tables)
  and the delay density of every hit, taken as exact (the demo before issue 15 item 4);
* ``correlated`` (the full demo's): per module, the hits in the demo's delay bins (4)
  of equal predicted probability; the surrogate's error, measured per distance band and
  bin on MC tables of held-out media, enters as its error modes (nuisances shared by
  all modules);
* ``shared``: the same bins, one nuisance per distance band and bin (Barlow-Beeston lite);
* ``independent``: the same bins, a gamma-distributed expectation per module and bin
  (Argüelles, Schneider & Yuan 2019);
* ``counts`` (the quick demo's): the counts alone, with the count error modes.

``--truths injected`` (default) fits datasets of the demo's injected medium;
``--truths random`` draws each dataset's medium inside the training range (a scrambled
Halton sequence in log lengths): a systematic error model is calibrated over media, not
at one medium, where the surrogate's error is one fixed pattern.

Usage::

    ariasim demo --quick --out demo-quick
    python benchmarks/bench_inverse_coverage.py demo-quick --datasets 20
    python benchmarks/bench_inverse_coverage.py demo-quick --datasets 10 --photons 5e6
    python benchmarks/bench_inverse_coverage.py demo-quick --datasets 20 --truths random

The demo folder must hold ``photon_surrogate_media.json`` and ``metrics.json``; the
surrogate's measured error comes from ``metrics.json`` (or, for a demo written before
it was measured, is measured here the way the demo does it, with the demo's seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo", type=Path, help="output folder of `ariasim demo`")
    ap.add_argument("--datasets", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--photons", type=float, default=None, help="photons per dataset (default: the demo's)"
    )
    ap.add_argument("--truths", choices=("injected", "random"), default="injected")
    args = ap.parse_args()

    from ariasim.apps.photons.demo import (
        DemoConfig,
        inverse_dataset,
        inverse_likelihood,
        measure_surrogate_error,
        validation_media,
    )
    from ariasim.apps.photons.surrogate import PhotonSurrogate, fit_medium
    from ariasim.utils import spawn_seeds

    metrics = json.loads((args.demo / "metrics.json").read_text())
    fields = {f.name for f in dataclasses.fields(DemoConfig)}
    cfg = DemoConfig(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in metrics["config"].items()
            if k in fields
        }
    )
    sur = PhotonSurrogate.load(args.demo / "photon_surrogate_media.json")
    media = metrics["media"]
    t0 = time.perf_counter()
    err = media.get("surrogate_error") or measure_surrogate_error(
        sur, cfg, spawn_seeds(cfg.seed, 8)[7]
    )
    train_err = float(media.get("count_error_training", media["inverse"]["model_error"]))
    print(
        f"surrogate error on {len(err['media'])} held-out media ({time.perf_counter() - t0:.0f}"
        f" s): counts {np.round(err['count'], 3).tolist()}, delay bins per band "
        f"{np.round(err['bins'], 2).tolist()} (bands {err['band_edges_m']} m); count error "
        f"on the training tables {train_err:.3f}",
        flush=True,
    )

    def like(model: str, times: bool = True) -> dict:
        return inverse_likelihood(
            dataclasses.replace(
                cfg,
                inverse_error_model=model,
                inverse_times=times,
                inverse_delay_bins=cfg.inverse_delay_bins or 4,
            ),
            err,
        )

    variants = {
        "unbinned": {"delay_bins": None, "model_error": train_err},
        "correlated": like("correlated"),
        "shared": like("shared"),
        "independent": like("independent"),
        "counts": like("correlated", times=False),
    }
    n_photons = float(args.photons or cfg.inverse_photons)
    data_seeds = spawn_seeds(args.seed, args.datasets + 1)
    if args.truths == "random":
        truths = validation_media(
            cfg.media_lambda_a_m, cfg.media_lambda_e_m, args.datasets, data_seeds[-1]
        )
    else:
        truths = [tuple(cfg.injected)] * args.datasets
    rows = []
    for k, (s, (la, le)) in enumerate(zip(data_seeds[:-1], truths, strict=True)):
        d, n, t = inverse_dataset(
            la,
            le,
            n_photons=n_photons,
            distance_range_m=(min(cfg.media_radii_m), max(cfg.media_radii_m)),
            seed=s,
        )
        row: dict = {"dataset": k, "n_hits": int(n.sum()), "la": la, "le": le}
        line = f"{k:3d} ({la:5.1f}, {le:4.1f}) m, {row['n_hits']:4d} hits"
        for label, kw in variants.items():
            fit = fit_medium(sur, distances_m=d, counts=n, delays_ns=t, n_photons=n_photons, **kw)
            row[f"{label}_la"] = fit["lambda_a_m"]
            row[f"{label}_cover_a"] = fit["lo_lambda_a_m"] <= la <= fit["hi_lambda_a_m"]
            row[f"{label}_cover_e"] = fit["lo_lambda_e_m"] <= le <= fit["hi_lambda_e_m"]
            row[f"{label}_width_a"] = fit["hi_lambda_a_m"] - fit["lo_lambda_a_m"]
            row[f"{label}_open_a"] = fit["lo_open_lambda_a_m"] or fit["hi_open_lambda_a_m"]
            line += (
                f" | {label[:4]} {fit['lambda_a_m']:5.1f} [{fit['lo_lambda_a_m']:5.1f}, "
                f"{fit['hi_lambda_a_m']:5.1f}]{'*' if row[f'{label}_open_a'] else ''} "
                f"{fit['lambda_e_m']:4.1f} [{fit['lo_lambda_e_m']:4.1f}, "
                f"{fit['hi_lambda_e_m']:4.1f}] {row[f'{label}_cover_a']:d}"
                f"{row[f'{label}_cover_e']:d}"
            )
        rows.append(row)
        print(line, flush=True)
    m = len(rows)
    what = (
        f"injected ({cfg.injected[0]}, {cfg.injected[1]}) m"
        if args.truths == "injected"
        else "media drawn in the training range"
    )
    print(
        f"\n{what}, {n_photons:.3g} photons per dataset, {m} datasets, hits "
        f"{min(r['n_hits'] for r in rows)}-{max(r['n_hits'] for r in rows)}; nominal "
        "coverage 68 %; '*': interval open at an end of the range"
    )
    for label in variants:
        ca = sum(r[f"{label}_cover_a"] for r in rows)
        ce = sum(r[f"{label}_cover_e"] for r in rows)
        med_w = float(np.median([r[f"{label}_width_a"] for r in rows]))
        n_open = sum(r[f"{label}_open_a"] for r in rows)
        print(
            f"  {label:12s} lambda_a covered {ca}/{m} = {ca / m:.2f} (+- "
            f"{math.sqrt(max(ca * (m - ca), 1) / m) / m:.2f}), lambda_e {ce}/{m} = "
            f"{ce / m:.2f} (+- {math.sqrt(max(ce * (m - ce), 1) / m) / m:.2f}); median "
            f"lambda_a interval width {med_w:.1f} m, open in {n_open}"
        )


if __name__ == "__main__":
    main()
