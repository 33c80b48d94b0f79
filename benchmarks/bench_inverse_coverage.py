"""Benchmark: coverage of the demo's inverse problem over independent datasets.

``ariasim demo`` recovers an injected medium (absorption and effective scattering lengths)
from a simulated string-detector dataset with the across-media photon surrogate. One
dataset says little about whether its 68 % intervals are honest; this benchmark repeats
the demo's inverse stage on ``--datasets`` independent MC datasets (seeds split with
``spawn_seeds``) with the surrogate that a demo run wrote, and counts how often the
profile-likelihood intervals cover the injected values: with the surrogate's count error
in the likelihood (negative binomial, as the demo does), without it (Poisson), and from
the counts alone (negative binomial, no delays).

Usage::

    ariasim demo --quick --out demo-quick
    python benchmarks/bench_inverse_coverage.py demo-quick --datasets 20
    python benchmarks/bench_inverse_coverage.py demo-quick --datasets 10 --photons 5e6

The demo folder must hold ``photon_surrogate_media.json`` and ``metrics.json`` (the
injected lengths, the photons per dataset and the surrogate's count error come from it).
"""

from __future__ import annotations

import argparse
import json
import math
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
    args = ap.parse_args()

    from ariasim.apps.photons.demo import inverse_dataset
    from ariasim.apps.photons.surrogate import PhotonSurrogate, fit_medium
    from ariasim.utils import spawn_seeds

    metrics = json.loads((args.demo / "metrics.json").read_text())
    cfg = metrics["config"]
    sur = PhotonSurrogate.load(args.demo / "photon_surrogate_media.json")
    eps = float(metrics["media"]["inverse"]["model_error"])
    la, le = cfg["injected"]
    n_photons = float(args.photons or cfg["inverse_photons"])
    start = (float(np.mean(cfg["media_lambda_a_m"])), float(np.mean(cfg["media_lambda_e_m"])))
    rows = []
    for k, s in enumerate(spawn_seeds(args.seed, args.datasets)):
        d, n, t = inverse_dataset(
            la,
            le,
            n_photons=n_photons,
            distance_range_m=(min(cfg["media_radii_m"]), max(cfg["media_radii_m"])),
            seed=s,
        )
        row = {"dataset": k, "n_hits": int(n.sum())}
        for label, e, times in (("nb", eps, True), ("poisson", 0.0, True), ("counts", eps, False)):
            fit = fit_medium(
                sur, distances_m=d, counts=n, delays_ns=t, n_photons=n_photons,
                model_error=e, start=start, use_times=times,
            )  # fmt: skip
            row[f"{label}_la"] = fit["lambda_a_m"]
            row[f"{label}_cover_a"] = fit["lo_lambda_a_m"] <= la <= fit["hi_lambda_a_m"]
            row[f"{label}_cover_e"] = fit["lo_lambda_e_m"] <= le <= fit["hi_lambda_e_m"]
            row[f"{label}_width_a"] = fit["hi_lambda_a_m"] - fit["lo_lambda_a_m"]
        rows.append(row)
        print(
            f"{k:3d} hits {row['n_hits']:5d}  NB: lambda_a {row['nb_la']:7.1f} width "
            f"{row['nb_width_a']:6.1f} covers ({row['nb_cover_a']:d}, {row['nb_cover_e']:d})"
            f"  Poisson: {row['poisson_la']:7.1f} width {row['poisson_width_a']:6.1f} covers "
            f"({row['poisson_cover_a']:d}, {row['poisson_cover_e']:d})",
            flush=True,
        )
    m = len(rows)
    print(
        f"\ninjected ({la}, {le}) m, {n_photons:.3g} photons per dataset, "
        f"surrogate count error {100 * eps:.1f} %, {m} datasets; nominal coverage 68 %"
    )
    for label in ("nb", "poisson", "counts"):
        for par in ("a", "e"):
            c = sum(r[f"{label}_cover_{par}"] for r in rows)
            print(
                f"  {label:8s} lambda_{par}: covered {c}/{m} = {c / m:.2f} "
                f"(+- {math.sqrt(max(c * (m - c), 1) / m) / m:.2f})"
            )


if __name__ == "__main__":
    main()
