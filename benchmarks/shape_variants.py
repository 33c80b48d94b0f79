"""Response-shape settings side by side (issue 14 item 2), without the formulas' fit.

Usage::

    python benchmarks/shape_variants.py --full FULL --objects electron,photon \\
        --variant '{}' --variant '{"penalty": 1e-4, "bandwidth": 0.1}' [--split quarter] [--cells]

For each object and variant (keyword arguments of
:func:`ariasim.apps.collider.shape.fit_shape`; the knot grid defaults to
:func:`~ariasim.apps.collider.shape.grid_resolution`, as in ``fit_shapes``) the shape and
its efficiency grid are fitted on the training events and the held-out truth particles are
sampled directly: reconstructed with the grid's efficiency, reco/truth from the shape's
inverse CDF (seed 1; other random numbers than ``FastSimulator``, same law). Printed: the
benchmark's quantile bins (:func:`~ariasim.apps.collider.shape.quantile_summary`), the
failing pulls, and the fit's CPU time. ``--split odd``: train on the even events, judge the
odd ones (as ``bench_collider_shape.py``); ``--split quarter``: train on ``event_id % 4 ==
0``, judge ``event_id % 4 == 2`` (both within the even half). ``--cells`` also prints, in
16 truth-x x 9 |eta| cells, the binomial z of the fraction of held-out particles below each
fitted quantile (probability integral transform) and of the efficiency, where any |z| > 4.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.collider import shape as S
from ariasim.apps.collider.objects import OBJECTS, prepare_object, select_events


def fit(train: pd.DataFrame, name: str, eta_max: float = 2.5, **kw: Any) -> S.ResponseShape:
    """Shape and efficiency grid of ``name`` as ``fit_shapes`` fits them."""
    ev = prepare_object(train, name)
    d = ev[ev["passed"]]
    step, n_t = S.grid_resolution(len(d))
    ek = tuple(float(v) for v in np.round(np.arange(0.0, eta_max + step / 2, step), 6))
    x = OBJECTS[name].x
    sh = S.fit_shape(
        d[x].to_numpy(),
        d["eta"].abs().to_numpy(),
        d["ratio"].to_numpy(),
        x_name=x,
        eta_knots=ek,
        **{"n_t_knots": n_t, **kw},
    )
    eff = S.fit_efficiency(
        ev[x].to_numpy(), ev["eta"].abs().to_numpy(), ev["passed"].to_numpy(), x_name=x,
        eta_knots=ek,
    )  # fmt: skip
    return dataclasses.replace(sh, efficiency=eff)


def simulate(test: pd.DataFrame, name: str, sh: S.ResponseShape, seed: int = 1) -> pd.DataFrame:
    """``test`` with the rows of ``name``'s truth particles re-reconstructed from ``sh``."""
    spec = OBJECTS[name]
    fast = test.copy()
    sel = np.isin(np.abs(fast["pdg"].to_numpy()), spec.pdg)
    rng = np.random.default_rng(seed)
    xcol, rcol = (
        ("truth_pt_gev", "reco_pt_gev") if spec.x == "pt" else ("truth_e_gev", "reco_e_gev")
    )
    x = fast.loc[sel, xcol].to_numpy()
    a = fast.loc[sel, "truth_eta"].abs().to_numpy()
    assert sh.efficiency is not None
    passed = rng.random(x.size) < sh.efficiency(x, a)
    r = sh.sample(x, a, rng)
    ot = fast["object_type"].astype(str).to_numpy().copy()
    ot[sel] = np.where(passed, name, "none")
    fast["object_type"] = ot
    rv = fast[rcol].to_numpy().copy()
    rv[np.flatnonzero(sel)] = x * r
    fast[rcol] = rv
    return fast


def cdf(sh: S.ResponseShape, x: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The shape's CDF at ``y = log(reco/truth)`` (linear between levels, the tails beyond
    the outer levels put at their midpoints)."""
    lv = np.asarray(sh.levels)
    cell = sh._cell(x, a)
    q = np.stack([sh._at(cell, np.full(x.size, k)) for k in range(lv.size)], 1)
    k = (q <= y[:, None]).sum(1)
    u = np.where(k == 0, lv[0] / 2, (1 + lv[-1]) / 2)
    mid = np.flatnonzero((k > 0) & (k < lv.size))
    km = k[mid]
    q0, q1 = q[mid, km - 1], q[mid, km]
    w = np.where(q1 > q0, (y[mid] - q0) / np.where(q1 > q0, q1 - q0, 1.0), 0.5)
    u[mid] = lv[km - 1] + w * (lv[km] - lv[km - 1])
    return u


def cells(test: pd.DataFrame, name: str, sh: S.ResponseShape, nt: int = 16) -> pd.DataFrame:
    """Binomial z of the efficiency and of the fraction below each checked quantile."""
    eta_edges = (0.0, 0.5, 1.0, 1.2, 1.4, 1.5, 1.6, 1.8, 2.0, 2.5)
    ev = prepare_object(test, name)
    x = ev[OBJECTS[name].x].to_numpy()
    a = ev["eta"].abs().to_numpy()
    ps = ev["passed"].to_numpy()
    assert sh.efficiency is not None
    eff = sh.efficiency(x, a)
    t = np.log(x)
    te = np.quantile(t, np.linspace(0, 1, nt + 1))
    te[0], te[-1] = te[0] - 1, te[-1] + 1
    it = np.searchsorted(te, t) - 1
    ie = np.clip(np.searchsorted(eta_edges, a) - 1, 0, len(eta_edges) - 2)
    u = cdf(sh, x[ps], a[ps], np.log(ev["ratio"].to_numpy()[ps]))
    rows = []
    for i in range(nt):
        for j in range(len(eta_edges) - 1):
            m = (it == i) & (ie == j)
            if m.sum() < 50:
                continue
            var = max(float((eff[m] * (1 - eff[m])).sum()), 1e-9)
            r = {
                "x_low": math.exp(te[i]),
                "x_high": math.exp(te[i + 1]),
                "eta_low": eta_edges[j],
                "n": int(m.sum()),
                "eff_full": ps[m].mean(),
                "eff_model": eff[m].mean(),
                "z_eff": (ps[m].sum() - eff[m].sum()) / math.sqrt(var),
            }
            um = u[m[ps]]
            for p in S.CHECK_LEVELS:
                ok = um.size * min(p, 1 - p) >= 5
                z = (
                    ((um < p).sum() - um.size * p) / math.sqrt(um.size * p * (1 - p))
                    if ok
                    else np.nan
                )
                r[f"z{round(p * 100)}"] = z
            rows.append(r)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", required=True)
    ap.add_argument("--objects", default="muon,electron,photon,charged_hadron")
    ap.add_argument("--variant", action="append", default=None)
    ap.add_argument("--split", choices=("odd", "quarter"), default="odd")
    ap.add_argument("--cells", action="store_true")
    args = ap.parse_args()
    tab = pd.read_parquet(args.full)
    if args.split == "odd":
        train, test = select_events(tab, "even"), select_events(tab, "odd")
    else:
        eid = tab["event_id"].to_numpy()
        train, test = tab[eid % 4 == 0], tab[eid % 4 == 2]
    pd.set_option("display.width", 250)
    for v in args.variant or ["{}"]:
        kw = json.loads(v)
        for name in args.objects.split(","):
            t0 = time.process_time()
            sh = fit(train, name, **kw)
            cpu = time.process_time() - t0
            q = S.quantile_table(test, simulate(test, name, sh), [name])
            s = S.quantile_summary(q).iloc[0]
            bad = q[q["pull"].abs() > s["bound"]]
            fails = [
                (round(r.x_low, 1), r.eta_low, r.level, round(r.pull, 1)) for r in bad.itertuples()
            ]
            print(
                f"{v} {name}: fit {cpu:.1f} s CPU, {len(sh.t_knots)} knots in log x, bins "
                f"{s['bins_pass']}/{s['bins']}, max |pull| {s['max_abs_pull']:.2f}, chi2/pull "
                f"{s['chi2_per_pull']:.3f}, failing (x_low, eta_low, level, pull): {fails}",
                flush=True,
            )
            if args.cells:
                c = cells(test, name, sh)
                z = c[[k for k in c.columns if k.startswith("z")]].abs().max(axis=1)
                print(c[z > 4].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
