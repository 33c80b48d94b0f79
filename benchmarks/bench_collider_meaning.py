"""How far Delphes' calorimeter-object semantics are from ariasim's, measured.

Two effects that the exported card cannot remove (README, "One meaning per quantity"):

1. Delphes' ``EnergySmearing`` evaluates its resolution formula at the eta of the point
   where the particle enters the calorimeter (``Candidate::Position`` after
   ``ParticlePropagator``), ariasim's fast simulation and the learning at the eta of the
   momentum at the vertex. For a charged particle in a solenoid the helix reaches the
   barrel after a longer path than the chord, so |eta_calo| > |eta|. Printed: the
   largest |eta_calo - eta| over |eta| < 2.5 per pT (vertex at the origin; the helix of
   :func:`ariasim.simulators.collider.tracking.face_position`, the same cylinder as the
   card's ``ParticlePropagator``), and, for a response model, the largest relative change
   of the electron's sigma(E) when evaluated at eta_calo instead of eta.
2. Delphes' ``AngularSmearing`` keeps pT and the mass, so E follows the smeared eta: the
   energy of a calorimeter object gets an extra relative smearing tanh(eta) sigma_eta on
   top of the card's sigma(E)/E. Printed per object and |eta|: sigma_eta tanh(eta) and the
   card's sigma(E)/E at E = 10, 100, 1000 GeV, and the resulting widening of the E width.

3. With ``--full`` (a full-simulation table with electrons) and ``--response``: the 68 %
   width of the electron's reco/truth pT of the fast simulation (Delphes' semantics) over
   that of the full simulation's odd events, per bin of truth pT x |eta|, for the
   electron pT as the track pT (the old definition, recomputed from ``track_pt_gev``) and
   as sqrt(E^2 - m^2) / cosh(eta) (the definition of all four now), next to the same
   ratio for E; and the number of bins within 15 %.

Usage::

    python benchmarks/bench_collider_meaning.py [--response response.json]
        [--full full.parquet] [--bz 3.8] [--radius 1.29] [--half-length 3.0]
"""

from __future__ import annotations

import argparse

import numpy as np

from ariasim.simulators.collider.tracking import C_LIGHT, face_position


def calo_entry_eta(
    pt: np.ndarray,
    eta: np.ndarray,
    charge: np.ndarray,
    *,
    bz_t: float,
    radius_m: float,
    half_length_m: float,
) -> np.ndarray:
    """Eta of the point where a particle from the origin enters the field cylinder
    (NaN if it curls up before reaching it)."""
    n = np.broadcast(pt, eta, charge).shape
    pt, eta, charge = (np.broadcast_to(np.asarray(v, float), n).ravel() for v in (pt, eta, charge))
    zero = np.zeros(pt.size)
    c = -charge / pt * C_LIGHT * bz_t
    x, y, z, _, ok = face_position(zero, zero, zero, zero, np.sinh(eta), c, radius_m, half_length_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.arcsinh(z / np.hypot(x, y))
    return np.where(ok, out, np.nan).reshape(n)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--response", default=None, help="response model JSON (electron, photon)")
    ap.add_argument("--full", default=None, help="full-simulation table (electron bins)")
    ap.add_argument("--bz", type=float, default=3.8, help="solenoid field (T)")
    ap.add_argument("--radius", type=float, default=1.29, help="field-volume radius (m)")
    ap.add_argument("--half-length", type=float, default=3.0, help="field half-length (m)")
    args = ap.parse_args()
    geo = {"bz_t": args.bz, "radius_m": args.radius, "half_length_m": args.half_length}
    eta = np.linspace(-2.5, 2.5, 5001)
    print(f"1. eta at the calorimeter entry - eta at the vertex, {args.bz} T, R {args.radius} m")
    print("   pT [GeV]   max |d eta|   at |eta|   |d eta| at eta = 0.5, 1.0, 1.5")
    for pt in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0):
        d = calo_entry_eta(pt, eta, 1.0, **geo) - eta
        k = int(np.nanargmax(np.abs(d)))
        at = [abs(float(calo_entry_eta(pt, h, 1.0, **geo) - h)) for h in (0.5, 1.0, 1.5)]
        print(
            f"   {pt:8.1f}   {abs(d[k]):11.2e}   {abs(eta[k]):8.2f}   "
            + ", ".join(f"{v:.2e}" for v in at)
        )
    if args.response is None:
        return
    from ariasim.apps.collider.delphes import card_formulas
    from ariasim.apps.collider.model import ResponseModel
    from ariasim.export.tformula import TFormulaExpression

    model = ResponseModel.load(args.response)
    if "electron" in model.objects:
        el = model.objects["electron"]
        f = TFormulaExpression.from_card(card_formulas(el).resolution)
        rng = np.random.default_rng(1)
        n = 200_000
        h = rng.uniform(-el.eta_max, el.eta_max, n)
        e = np.exp(rng.uniform(np.log(1.0), np.log(500.0), n))
        pt = e / np.cosh(h)
        hc = calo_entry_eta(pt, h, rng.choice([-1.0, 1.0], n), **geo)
        ok = np.isfinite(hc) & (np.abs(hc) <= el.eta_max)
        s0 = f(pt[ok], h[ok], 0.0 * h[ok], e[ok])
        s1 = f(pt[ok], hc[ok], 0.0 * h[ok], e[ok])
        rel = np.abs(s1 / s0 - 1.0)
        print("   electron sigma(E) at eta_calo vs at eta (E log-flat 1-500 GeV, |eta| < max):")
        for lo, hi in ((1.0, 5.0), (5.0, 20.0), (20.0, 500.0)):
            b = (pt[ok] >= lo) & (pt[ok] < hi)
            print(
                f"   pT {lo:g}-{hi:g} GeV: median {np.median(rel[b]):.2e}, 99 % "
                f"{np.quantile(rel[b], 0.99):.2e}, max {rel[b].max():.2e}, fraction > 1 %: "
                f"{np.mean(rel[b] > 0.01):.4f}"
            )
    print("2. AngularSmearing: extra relative E smearing tanh(eta) sigma_eta vs sigma(E)/E")
    for name, obj in model.objects.items():
        if obj.kind != "calo":
            continue
        cf = card_formulas(obj)
        f_res = TFormulaExpression.from_card(cf.resolution)
        f_seta = TFormulaExpression.from_card(cf.sigma_eta)
        for h in (0.5, 1.5, 2.4):
            cells = []
            for e in (10.0, 100.0, 1000.0):
                a = np.array([e / np.cosh(h)])
                args_ = (a, np.array([h]), np.array([0.0]), np.array([e]))
                sig = float(f_res(*args_)[0]) / e
                extra = float(np.tanh(h) * f_seta(*args_)[0])
                wider = np.hypot(sig, extra) / sig - 1.0
                cells.append(f"E {e:g}: {extra:.2e} vs {sig:.2e} (+{wider:.0%})")
            print(f"   {name:15s} |eta| {h:3.1f}: " + "; ".join(cells))
    if args.full is not None:
        _electron_bins(model, args.full)


def _w68(r: np.ndarray) -> float:
    q = np.quantile(r, [0.16, 0.84])
    return float(q[1] - q[0]) / 2.0


def _electron_bins(model: object, path: str) -> None:
    """Part 3 of the module docstring."""
    import pandas as pd

    from ariasim.apps.collider.compact import EFF_WIDE_ETA, EFF_WIDE_PT
    from ariasim.apps.collider.fastsim import fastsim
    from ariasim.apps.collider.objects import select_events
    from ariasim.io import read_table

    full = select_events(read_table(path), "odd")
    full = full[full["pdg"].abs() == 11].reset_index(drop=True)
    fast = fastsim(full, model, seed=5)
    m_e = 0.51099895e-3
    new_pt = np.sqrt(np.maximum(full["reco_e_gev"] ** 2 - m_e**2, 0.0)) / np.cosh(full["reco_eta"])
    # the old definition: the pT of the track the electron was built from
    old_pt = np.where(full["track_found"], full["track_pt_gev"], np.nan)
    pe, ee = EFF_WIDE_PT, EFF_WIDE_ETA  # the Delphes bin rule's edges (bench_delphes.py)
    rows = []
    for i in range(len(pe) - 1):
        for j in range(len(ee) - 1):

            def sel(t: pd.DataFrame, i: int = i, j: int = j) -> np.ndarray:
                pt, a = t["truth_pt_gev"], t["truth_eta"].abs()
                return (
                    (pt >= pe[i])
                    & (pt < pe[i + 1])
                    & (a >= ee[j])
                    & (a < ee[j + 1])
                    & (t["object_type"] == "electron")
                ).to_numpy()

            a, b = sel(full), sel(fast)
            tp = full["truth_pt_gev"].to_numpy()[a]
            wf = _w68((fast["reco_pt_gev"] / fast["truth_pt_gev"]).to_numpy()[b])
            wo = _w68(old_pt[a][np.isfinite(old_pt[a])] / tp[np.isfinite(old_pt[a])])
            wn = _w68(new_pt.to_numpy()[a] / tp)
            we = _w68((fast["reco_e_gev"] / fast["truth_e_gev"]).to_numpy()[b]) / _w68(
                (full["reco_e_gev"] / full["truth_e_gev"]).to_numpy()[a]
            )
            rows.append((pe[i], ee[j], int(a.sum()), wf / wo, wf / wn, we))
    cols = ["pt_lo", "abseta_lo", "n_full", "pT_old", "pT_new", "E"]
    t = pd.DataFrame(rows, columns=cols)
    print("3. electron 68 % width, fast (Delphes semantics) / full, odd events")
    print(t.to_string(index=False, float_format="%.3f"))
    for c in cols[3:]:
        ok = int((np.abs(t[c] - 1.0) <= 0.15).sum())
        print(f"   {c}: {ok}/{len(t)} bins within 15 %")


if __name__ == "__main__":
    main()
