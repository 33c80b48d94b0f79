r"""The hand-made-practice baseline: a Delphes card with stock functional forms.

What a person writing a card by hand does, fitted (fairly) to the same full simulation:
the stock CMS-card |eta| bins (0-0.5, 0.5-1.5, 1.5-eta_max), one constant efficiency per bin
(above the lowest pT), no response scale (1), and per bin

* tracks: relative sigma(pT)/pT = sqrt(a^2 + (b pT)^2) (the stock muon/hadron form);
  clamped to the fitted pT range (unclamped, it exceeds 1 at a few TeV, which the card
  lint rejects);
* calorimeter objects: sigma(E) = sqrt((c E)^2 + s^2 E + n^2) (the stock ECAL form);

each fitted by maximum likelihood (log-normal for tracks, Gaussian for calorimeter objects,
the per-bin mean left free so the width is not inflated by a scale offset the card cannot
express). The result is an ordinary :class:`~ariasim.apps.collider.model.ResponseModel`, so it is
exported and fast-simulated by the same code as the learned one.

References:
    Delphes ``cards/delphes_card_CMS.tcl`` (stock bins and forms); J. de Favereau et al.,
    JHEP 02 (2014) 057.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.apps.collider.objects import OBJECTS, REQUIRED_COLUMNS, prepare_object
from ariasim.errors import InputError
from ariasim.surrogates.formula import Formula, Variable

__all__ = ["STOCK_EDGES", "fit_stock", "stock_object"]

#: Stock |eta| bin edges of delphes_card_CMS.tcl (the last edge becomes eta_max).
STOCK_EDGES = (0.0, 0.5, 1.5, 2.5)


def _fit_track(pt: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """MLE of (a, b) in rel = sqrt(a^2 + (b pt)^2), log y ~ N(mu, log(1 + rel^2))."""
    ly = np.log(y)

    def nll(theta: np.ndarray) -> float:
        a, b, mu = np.exp(theta[0]), np.exp(theta[1]), theta[2]
        s2 = np.log1p(a * a + (b * pt) ** 2)
        return float(0.5 * np.sum((ly - mu) ** 2 / s2 + np.log(s2)))

    s0 = max(float(np.std(ly)), 1e-4)
    r = optimize.minimize(
        nll,
        [np.log(s0), np.log(s0 / max(np.median(pt), 1.0)), float(np.mean(ly))],
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6},
    )
    return float(np.exp(r.x[0])), float(np.exp(r.x[1]))


def _fit_calo(e: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """MLE of (c, s, n) in sigma(E) = sqrt((cE)^2 + s^2 E + n^2) for E_reco = y E ~ N(mu E,
    sigma)."""
    er = y * e

    def nll(theta: np.ndarray) -> float:
        c, s, n, mu = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2]), theta[3]
        v = (c * e) ** 2 + s * s * e + n * n
        return float(0.5 * np.sum((er - mu * e) ** 2 / v + np.log(v)))

    r = optimize.minimize(
        nll,
        [np.log(0.02), np.log(0.1), np.log(0.2), float(np.mean(y))],
        method="Nelder-Mead",
        options={"maxiter": 6000, "xatol": 1e-6, "fatol": 1e-6},
    )
    return float(np.exp(r.x[0])), float(np.exp(r.x[1])), float(np.exp(r.x[2]))


def stock_object(
    d: pd.DataFrame, name: str, *, eta_max: float = 2.5, edges: Sequence[float] = STOCK_EDGES
) -> ObjectResponse:
    """Fit the stock-form card of one object to :func:`~ariasim.apps.collider.learn.prepare_object`
    rows."""
    spec = OBJECTS[name]
    ed = [e for e in edges if e < eta_max] + [eta_max]
    d = d[np.abs(d["eta"]) <= eta_max]
    a = np.abs(d["eta"].to_numpy())
    eff, scale, res = [], [], []
    meta = {"method": "stock"}
    for lo, hi in itertools.pairwise(ed):
        m = (a > lo) & (a <= hi) if lo > 0 else (a <= hi)
        b = d[m]
        p = b[b["passed"]]
        if len(p) < 10:
            raise InputError(
                f"too few reconstructed {name} in |eta| bin ({lo}, {hi}] for the stock fit",
                column="object_type",
            )
        eff.append(
            Region(
                lo,
                hi,
                Formula(repr(float(b["passed"].mean())), [], output="efficiency", metadata=meta),
            )
        )
        scale.append(Region(lo, hi, Formula("1.0", [], output="scale", metadata=meta)))
        y = p["ratio"].to_numpy(float)
        if spec.kind == "track":
            ka, kb = _fit_track(p["pt"].to_numpy(float), y)
            lo_x, hi_x = float(p["pt"].min()), float(p["pt"].max())
            f = Formula(
                f"sqrt({ka!r}^2 + pt^2*{kb!r}^2)",
                [Variable("pt", unit="GeV", low=lo_x, high=hi_x)],
                output="sigma_pt_over_pt",
                metadata=meta,
            )
        else:
            c, s, n = _fit_calo(p["energy"].to_numpy(float), y)
            lo_x, hi_x = float(p["energy"].min()), float(p["energy"].max())
            f = Formula(
                f"sqrt(energy^2*{c!r}^2 + energy*{s!r}^2 + {n!r}^2)",
                [Variable("energy", unit="GeV", low=lo_x, high=hi_x)],
                output="sigma_e",
                metadata=meta,
            )
        res.append(Region(lo, hi, f))
    p = d[d["passed"]]
    from ariasim.apps.collider.objects import robust_sigma

    return ObjectResponse(
        name,
        spec.kind,
        spec.pdg,
        eta_max,
        eff,
        scale,
        res,
        sigma_eta=robust_sigma(p["deta"].to_numpy()),
        sigma_phi=robust_sigma(p["dphi"].to_numpy()),
        mass_gev=spec.mass_gev,
        metadata=dict(meta),
    )


def fit_stock(
    table: pd.DataFrame, *, objects: Sequence[str] | None = None, eta_max: float = 2.5
) -> ResponseModel:
    """The stock-form card fitted to a full-simulation table (see the module docstring)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError("not a full-simulation table: missing columns", column=", ".join(missing))
    pdg = np.abs(table["pdg"].to_numpy())
    names = (
        list(objects)
        if objects
        else [n for n, s in OBJECTS.items() if np.isin(pdg, s.pdg).sum() >= 50]
    )
    return ResponseModel(
        {n: stock_object(prepare_object(table, n), n, eta_max=eta_max) for n in names},
        {"source": "stock forms", "method": "stock"},
    )
