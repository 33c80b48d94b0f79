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
    python benchmarks/bench_photon_density.py --photons 2e6 --per-shell
    python benchmarks/bench_photon_density.py --photons 2e6 --knots 20,10
    python benchmarks/bench_photon_density.py --photons 2e6 --tail 1,2
    python benchmarks/bench_photon_density.py --photons 2e6 --smooth 0,1e-7,1e-6,1e-5

``--per-shell`` adds, per held-out distance, the KS over the floor of the family fitted
to that shell alone (two generalized gammas and the point mass, 8 free parameters, no
smoothness across distances; then with a Bernstein warp of degree 8 and 16 fitted to
the same shell): what the family can do, against what the smooth-in-distance model
does (family error against interpolation error). ``--knots`` tries near-source spline
terms max(0, ln(k / d))^3 in the parameter functions (chosen by the held-out likelihood
like the degrees; the demo's default is none). ``--tail`` tries an exponential cut-off
exp(-delay / tau(d)) of the survival function, ln(1/tau) of the given degrees in ln d
(chosen by the held-out likelihood against none; the demo's default is none).
``--smooth`` tries curvature penalties in ln d of the given strengths on the parameter
functions and warp logits (chosen by the held-out likelihood; default: the demo's
``DemoConfig.density_smooth``). ``--restarts`` sets the number of extra perturbed starts
of the family (default: the demo's ``DemoConfig.density_restarts``).
``--validation`` names the training shells always left out of the choice step
(default: the demo's ``DemoConfig.density_validation_m``); ``--per-sample`` scores
that choice by the mean NLL over all left-out photons instead of the mean over
left-out shells (the default before 2026-12-06). With ``--validation ''
--per-sample --restarts 3`` the fit is that of the previous default. ``--ordered on``
locates the late component by its distance from the early one, mu_1 = mu_0 +
exp(log_dmu_1(d)) (default: the demo's ``DemoConfig.density_ordered_means``).
``--validation-mode loso`` scores the final choice (restart, then penalty) by leaving
out in turn each training shell of ``loso_radii`` (below 20 m, not an end of the
range; ``--loso`` names others) instead of on the left-out shells; ``fixed`` (the
default unless ``DemoConfig.density_loso_m`` is set) does not. ``--warp-knots 8,12,17,25,40``
offers near-source spline terms max(0, ln(k / d))^3 to the warp logits alone (each warp
candidate also tried with them; default: the demo's ``DemoConfig.density_warp_knots_m``);
``--warp-knot-smooth 1e-6`` fits those candidates with a curvature penalty on their logits,
kept by a winning knotted warp (default: ``DemoConfig.density_warp_knot_smooth``).
``--warp 0,8,16,24,32`` names the Bernstein warp degrees the held-out likelihood chooses
from (default: the demo's ``DemoConfig.density_warp_degrees``, else (0, 8, 16)).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photons", type=float, default=2e5)
    ap.add_argument("--generations-yield", type=int, default=40)
    ap.add_argument("--generations-density", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-shell", action="store_true")
    ap.add_argument(
        "--no-near-source",
        action="store_true",
        help="without the demo's extra training shells near the source (before 2026-12-05)",
    )
    ap.add_argument(
        "--near-source",
        default=None,
        help="comma-separated extra training shells [m] instead of the demo's",
    )
    ap.add_argument("--only-per-shell", action="store_true", help="skip the smooth fit")
    ap.add_argument(
        "--knots",
        default=None,
        help="comma-separated knots [m] of the near-source spline terms to try "
        "(default: the demo's DemoConfig.density_knots_m; empty: none)",
    )
    ap.add_argument(
        "--tail",
        default=None,
        help="comma-separated degrees in ln d of the tail cut-off's ln(1/tau(d)) to try "
        "(default: the demo's DemoConfig.density_tail_log_degree; empty: none)",
    )
    ap.add_argument(
        "--smooth",
        default=None,
        help="comma-separated strengths of the curvature penalty in ln d to try "
        "(default: the demo's DemoConfig.density_smooth)",
    )
    ap.add_argument(
        "--restarts",
        type=int,
        default=None,
        help="extra perturbed starts of the density's family (default: the demo's "
        "DemoConfig.density_restarts)",
    )
    ap.add_argument(
        "--validation",
        default=None,
        help="comma-separated training shells [m] always left out of the density's choice "
        "step (default: the demo's DemoConfig.density_validation_m; empty: none)",
    )
    ap.add_argument(
        "--per-sample",
        action="store_true",
        help="score the choice by the mean NLL over all left-out photons (before "
        "2026-12-06) instead of the demo's DemoConfig.density_validation_per_distance",
    )
    ap.add_argument(
        "--ordered",
        choices=("on", "off"),
        default=None,
        help="ordered means of the delay density's components, mu_1 = mu_0 + "
        "exp(log_dmu_1(d)) (default: the demo's DemoConfig.density_ordered_means)",
    )
    ap.add_argument(
        "--validation-mode",
        choices=("fixed", "loso"),
        default=None,
        help="score the density's final choice (restart, penalty) on the left-out shells "
        "(fixed) or by leaving out each near-source training shell in turn (loso; default: "
        "loso iff DemoConfig.density_loso_m is set)",
    )
    ap.add_argument(
        "--loso",
        default=None,
        help="comma-separated training shells [m] for --validation-mode loso (default: "
        "DemoConfig.density_loso_m, else demo.loso_radii)",
    )
    ap.add_argument(
        "--warp-knots",
        default=None,
        help="comma-separated knots [m] of near-source spline terms offered to the delay "
        "density's warp logits alone (default: the demo's DemoConfig.density_warp_knots_m; "
        "empty: none)",
    )
    ap.add_argument(
        "--warp-knot-smooth",
        type=float,
        default=None,
        help="curvature penalty on the logits of the warp candidates with --warp-knots "
        "(default: the demo's DemoConfig.density_warp_knot_smooth; 0: off)",
    )
    ap.add_argument(
        "--warp",
        default=None,
        help="comma-separated degrees of the delay density's Bernstein warp to choose from "
        "(default: the demo's DemoConfig.density_warp_degrees, else the fit's (0, 8, 16))",
    )
    args = ap.parse_args()

    from ariasim.apps.photons.demo import (
        DemoConfig,
        demo_radii,
        loso_radii,
        yield_selection_reason,
    )
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
    if args.no_near_source:
        cfg = dataclasses.replace(cfg, near_source_radii_m=())
    elif args.near_source is not None:
        extra = tuple(float(v) for v in args.near_source.split(",") if v.strip())
        cfg = dataclasses.replace(cfg, near_source_radii_m=extra)
    radii, held = demo_radii(cfg)  # held-out distances from cfg.radii_m alone
    knots = cfg.density_knots_m
    if args.knots is not None:
        knots = tuple(float(v) for v in args.knots.split(",") if v.strip())
    tail = cfg.density_tail_log_degree
    if args.tail is not None:
        tail = tuple(int(v) for v in args.tail.split(",") if v.strip()) or None
    smooth = cfg.density_smooth
    if args.smooth is not None:
        smooth = tuple(float(v) for v in args.smooth.split(",") if v.strip()) or (0.0,)

    warp_knots = cfg.density_warp_knots_m
    if args.warp_knots is not None:
        warp_knots = tuple(float(v) for v in args.warp_knots.split(",") if v.strip())

    warp = cfg.density_warp_degrees
    if args.warp is not None:
        warp = tuple(int(v) for v in args.warp.split(",") if v.strip()) or None

    validation = cfg.density_validation_m
    if args.validation is not None:
        validation = tuple(float(v) for v in args.validation.split(",") if v.strip())

    loso = cfg.density_loso_m
    if args.validation_mode == "fixed":
        loso = ()
    elif args.validation_mode == "loso":
        if args.loso is not None:
            loso = tuple(float(v) for v in args.loso.split(",") if v.strip())
        loso = loso or loso_radii(cfg)
    elif args.loso is not None:
        ap.error("--loso needs --validation-mode loso")
    if loso:
        print(f"leave-one-shell-out choice at {', '.join(f'{v:g}' for v in loso)} m", flush=True)

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
    if args.per_shell or args.only_per_shell:
        per_shell(data, radii, is_train)
        if args.only_per_shell:
            return
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
        always_fit_distances_m=cfg.near_source_radii_m,
        knots_m=knots,
        tail_log_degree=tail,
        smooth=smooth,
        restarts=cfg.density_restarts if args.restarts is None else args.restarts,
        validation_distances_m=validation,
        validation_per_distance=cfg.density_validation_per_distance and not args.per_sample,
        ordered_means=cfg.density_ordered_means if args.ordered is None else args.ordered == "on",
        validation_loso_m=loso,
        warp_knots_m=warp_knots,
        warp_knot_smooth=(
            cfg.density_warp_knot_smooth if args.warp_knot_smooth is None else args.warp_knot_smooth
        ),
        warp=warp,
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


def per_shell(data, radii: np.ndarray, is_train) -> None:
    """KS over the floor of per-shell fits (no smoothness in distance) at the held-out
    distances."""
    from scipy import optimize, special

    from ariasim.apps.photons.surrogate import compare_delays
    from ariasim.surrogates import density as D

    est = D.SymbolicDensity(n_components=2, point_mass=True)

    class Shell:
        def __init__(self, p: np.ndarray, logc: np.ndarray | None = None):
            self.p, self.logc = p, logc

        def cdf(self, t: np.ndarray, X: np.ndarray) -> np.ndarray:
            P = np.tile(self.p, (len(t), 1))
            W = None if self.logc is None else np.tile(self.logc, (len(t), 1))
            return D._cdf(np.asarray(t), P, 2, True, W)

    def warp(u: np.ndarray, w: np.ndarray, p: np.ndarray, m: int) -> np.ndarray:
        cont = u > 0
        lg, ls = D._log_cdf_sf(u[cont], np.tile(p, (int(cont.sum()), 1)), 2)
        j = np.arange(m)
        logb = D._bernstein_log_norm(m) + j * lg[:, None] + (m - 1 - j) * ls[:, None]
        wn = w[cont] / w[cont].sum()

        def nll(a: np.ndarray) -> float:
            a = np.r_[0.0, a]
            return -float(np.sum(wn * special.logsumexp(a - special.logsumexp(a) + logb, axis=1)))

        a = np.r_[0.0, optimize.minimize(nll, np.zeros(m - 1), method="L-BFGS-B").x]
        return a - special.logsumexp(a)

    print("\nper-shell fits (KS / floor): | d [m] | family alone | + warp 8 | + warp 16 |")
    dl = data.delays
    for i in np.flatnonzero(~is_train(radii)):
        sh = dl[np.isclose(dl["distance_m"], radii[i])]
        u, w = sh["delay_ns"].to_numpy(), sh["weight"].to_numpy()
        _, p, _ = est._fit_one(u, w)
        models = {"f": Shell(p), **{f"w{m}": Shell(p, warp(u, w, p, m)) for m in (8, 16)}}
        cd = compare_delays(data.tables[0], models, shells=[int(i)])
        r = [cd[f"ks_{k}_over_floor"].iloc[0] for k in models]
        print(f"| {radii[i]:g} | {r[0]:.1f} | {r[1]:.1f} | {r[2]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
