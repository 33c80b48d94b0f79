"""Benchmark: the demo's delay density against the photon MC and its own noise floor.

Runs stages 1-3 of ``ariasim demo`` in bulk ice (one shell table on the demo's distances,
the yield formula and the delay density fitted on the training distances, the Pandel
function fitted to the same MC) at a chosen number of photons, and prints per held-out
distance: the KS distance of the learned density and of the fitted Pandel function to
the MC, the MC's noise floor (the mean KS distance between the MC's delay CDF and
parametric-bootstrap replicas of it, see ``compare_delays``) and the ratios; then which
parameter functions won on held-out likelihood, every parameter's formula and the
yield front with the reason for its choice.

Usage::

    python benchmarks/bench_photon_density.py --photons 2e5
    python benchmarks/bench_photon_density.py --photons 2e6     # the demo's size
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photons", type=float, default=2e5)
    ap.add_argument("--generations-yield", type=int, default=40)
    ap.add_argument("--generations-density", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from ariasim.apps.photons.demo import DemoConfig, held_out_distances, yield_selection_reason
    from ariasim.apps.photons.pandel import PANDEL_CASCADE
    from ariasim.apps.photons.surrogate import (
        compare_delays,
        fit_photon_surrogate,
        make_training_data,
    )
    from ariasim.simulators.photons import bulk_ice
    from ariasim.utils import spawn_seeds

    cfg = DemoConfig(seed=args.seed)
    seeds = spawn_seeds(cfg.seed, 7)  # the demo's streams: table 0, fit 2
    radii = np.asarray(cfg.radii_m)
    held = held_out_distances(radii)

    def is_train(d: np.ndarray) -> np.ndarray:
        return ~np.isin(np.round(d, 6), np.round(held, 6))

    t0 = time.perf_counter()
    data = make_training_data(
        [bulk_ice()],
        list(radii),
        n_photons=args.photons,
        n_cos_bins=cfg.n_cos_bins,
        acceptance="nominal",
        wavelength_nm=405.0,
        seed=seeds[0],
    )
    print(f"table: {args.photons:.3g} photons, {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    sur, sr = fit_photon_surrogate(
        data,
        yield_inputs=("distance_m", "cos_theta"),
        train_mask=is_train,
        max_time_yield=3600,
        max_time_density=1200,
        seed=seeds[2],
        generations_yield=args.generations_yield,
        generations_density=args.generations_density,
    )
    print(f"fit: {time.perf_counter() - t0:.0f} s", flush=True)
    train = data.delays[is_train(data.delays["distance_m"].to_numpy())]
    pandel = PANDEL_CASCADE.fit(
        train["delay_ns"].to_numpy(),
        train["distance_m"].to_numpy(),
        weights=train["weight"].to_numpy(),
    )
    cd = compare_delays(
        data.tables[0],
        {"learned": sur, "pandel": pandel},
        shells=[int(i) for i in np.flatnonzero(~is_train(radii))],
    )
    cols = ["distance_m", "n_eff", "ks_floor", "ks_learned", "ks_pandel"]
    cols += ["ks_learned_over_floor", "ks_pandel_over_floor"]
    print("\n| d [m] | n_eff | noise floor | KS learned | KS Pandel fit | learned/floor |")
    print("|---|---|---|---|---|---|")
    for _, r in cd[cols].iterrows():
        print(
            f"| {r['distance_m']:g} | {r['n_eff']:.3g} | {r['ks_floor']:.2g} | "
            f"{r['ks_learned']:.3g} | {r['ks_pandel']:.3g} | {r['ks_learned_over_floor']:.1f} |"
        )
    ratio = cd["ks_learned_over_floor"]
    print(
        f"\nlearned/floor {ratio.min():.1f}-{ratio.max():.1f} (median {ratio.median():.1f}); "
        f"learned beats the fitted Pandel at {int((cd['ks_learned'] < cd['ks_pandel']).sum())}"
        f"/{len(cd)} distances"
    )
    sel = sur.delay.selection_
    print(f"parameter functions: {sur.delay.param_model_used_} ({sel})")
    for k, f in sur.delay.params_.items():
        print(f"  {k} = {f}")
    front = sr.pareto_
    pd.set_option("display.width", 200)
    print(front[["complexity", "val_r2", "bic", "cancellation", "dims_ok", "selected"]])
    print("yield:", sur.yield_formula)
    print(yield_selection_reason(front))


if __name__ == "__main__":
    main()
