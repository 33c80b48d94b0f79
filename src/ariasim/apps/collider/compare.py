r"""Fast vs full simulation on the same (held-out) truth particles.

* :func:`binned_pulls`: per (|eta|, truth-pT) bin and object, efficiency, mean response
  and resolution (standard deviation of reco/truth) of both samples with their standard
  errors, and the pulls ``(fast - full) / sqrt(err_fast^2 + err_full^2)``. Efficiency
  errors are binomial; the error of a standard deviation is the delta-method
  ``sqrt((m4 - s^4) / (4 s^2 n))`` (valid for non-Gaussian tails). Fast and full are
  independent given the truth particles, so the variances add.
* :func:`pull_threshold`: the Bonferroni bound for N pulls at family-wise false-alarm rate
  alpha, ``Phi^-1(1 - alpha / (2 N))`` (about 3.9 for 100 pulls at 1 %), the multiple-testing
  tolerance used by the tests.
* :func:`auc_table`: classifier two-sample AUC (:func:`ariasim.metrics.classifier_test`)
  per object on reconstructed features (pT, eta, phi for tracks; E, eta, phi for
  calorimeter objects); 0.5 = indistinguishable, goal <= 0.55.
* :func:`ours_vs_stock`: per bin, which fast simulation is closer to the full one
  (|pull|), the total chi2 = sum of squared pulls of each, and the bin-by-bin criterion
  (no bin where ours is both significantly off and further off than the stock card; chi2
  no larger than the stock card's or consistent with noise);
* :func:`method_table`: learners side by side (accuracy, formula complexity, fit time).

Held out: compare on particles the fit never saw (``ariasim fit response --events even``,
``ariasim fastsim --compare --events odd``; :func:`ariasim.apps.collider.learn.select_events`).

References:
    Lopez-Paz and Oquab, "Revisiting classifier two-sample tests", ICLR 2017.
    Krause et al., CaloChallenge 2022, arXiv:2410.21611 (AUC as the fast-sim metric).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ariasim.apps.collider.model import ObjectResponse, ResponseModel
from ariasim.apps.collider.objects import OBJECTS, prepare_object

__all__ = [
    "PULL_COLUMNS",
    "auc_table",
    "binned_pulls",
    "method_table",
    "ours_vs_stock",
    "pull_threshold",
]

ETA_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)


def pull_threshold(n: int, alpha: float = 0.01) -> float:
    """Bonferroni |pull| bound for ``n`` pulls at family-wise rate ``alpha``."""
    return float(stats.norm.isf(alpha / (2 * max(n, 1))))


def _sd_err(y: np.ndarray) -> tuple[float, float]:
    n = y.size
    s = float(np.std(y, ddof=1))
    m4 = float(np.mean((y - y.mean()) ** 4))
    var = max(m4 - s**4, 0.0) / (4 * max(s * s, 1e-300) * n)
    return s, float(np.sqrt(var))


def binned_pulls(
    full: pd.DataFrame,
    fast: pd.DataFrame,
    objects: Sequence[str],
    *,
    n_pt: int = 5,
    eta_edges: Sequence[float] = ETA_EDGES,
    min_count: int = 30,
) -> pd.DataFrame:
    """Per-bin efficiency, mean response and resolution of ``fast`` vs ``full``.

    Bins: quantiles of truth pT (or E for calorimeter objects) of the full sample times
    ``eta_edges`` in |eta|. Rows with fewer than ``min_count`` reconstructed objects in
    either sample get NaN resolution pulls.
    """
    rows = []
    for name in objects:
        a, b = prepare_object(full, name), prepare_object(fast, name)
        x = OBJECTS[name].x
        if len(a) < min_count or len(b) < min_count:
            continue
        edges = np.quantile(np.log(a[x]), np.linspace(0, 1, n_pt + 1))
        edges[0], edges[-1] = -np.inf, np.inf
        for d in (a, b):
            d["ix"] = np.searchsorted(edges, np.log(d[x]), side="right") - 1
            d["ie"] = np.searchsorted(np.asarray(eta_edges), np.abs(d["eta"]), side="left") - 1
        for i in range(n_pt):
            for j in range(len(eta_edges) - 1):
                ma = (
                    (a["ix"] == i) & (a["ie"] == max(j, 0))
                    if j
                    else (a["ix"] == i) & (a["ie"] <= 0)
                )
                mb = (
                    (b["ix"] == i) & (b["ie"] == max(j, 0))
                    if j
                    else (b["ix"] == i) & (b["ie"] <= 0)
                )
                A, B = a[ma], b[mb]
                if len(A) < min_count or len(B) < min_count:
                    continue
                row = {
                    "object": name,
                    "x": x,
                    "x_low": float(np.exp(edges[i])) if i else 0.0,
                    "x_high": float(np.exp(edges[i + 1])) if i < n_pt - 1 else np.inf,
                    "eta_low": eta_edges[j],
                    "eta_high": eta_edges[j + 1],
                    "n_full": len(A),
                    "n_fast": len(B),
                }
                ea, eb = A["passed"].mean(), B["passed"].mean()
                pool = (A["passed"].sum() + B["passed"].sum() + 0.5) / (len(A) + len(B) + 1.0)
                err = np.sqrt(pool * (1 - pool) * (1 / len(A) + 1 / len(B)))
                row.update(eff_full=ea, eff_fast=eb, eff_pull=(eb - ea) / err)
                ya = A["ratio"].dropna().to_numpy()
                yb = B["ratio"].dropna().to_numpy()
                if ya.size >= min_count and yb.size >= min_count:
                    sa, esa = _sd_err(ya)
                    sb, esb = _sd_err(yb)
                    ma_, mb_ = ya.mean(), yb.mean()
                    row.update(
                        mean_full=ma_,
                        mean_fast=mb_,
                        mean_pull=(mb_ - ma_)
                        / np.hypot(sa / np.sqrt(ya.size), sb / np.sqrt(yb.size)),
                        res_full=sa,
                        res_full_err=esa,
                        res_fast=sb,
                        res_fast_err=esb,
                        res_pull=(sb - sa) / np.hypot(esa, esb),
                    )
                rows.append(row)
    return pd.DataFrame(rows, columns=PULL_COLUMNS) if rows else pd.DataFrame(columns=PULL_COLUMNS)


#: The columns of :func:`binned_pulls` (also of an empty table: no bin had enough objects).
PULL_COLUMNS = [
    "object",
    "x",
    "x_low",
    "x_high",
    "eta_low",
    "eta_high",
    "n_full",
    "n_fast",
    "eff_full",
    "eff_fast",
    "eff_pull",
    "mean_full",
    "mean_fast",
    "mean_pull",
    "res_full",
    "res_full_err",
    "res_fast",
    "res_fast_err",
    "res_pull",
]


def auc_table(
    full: pd.DataFrame,
    fast: pd.DataFrame,
    objects: Sequence[str],
    *,
    max_samples: int = 20_000,
    seed: int = 0,
    paired: bool = True,
) -> pd.DataFrame:
    """Classifier two-sample AUC per object on reconstructed features.

    With ``paired`` (``fast`` simulated from the same truth particles as ``full``, row by
    row), the full sample uses the even rows and the fast sample the odd rows.
    """
    from ariasim.metrics import classifier_test

    rows = []
    for name in objects:
        kind = OBJECTS[name].kind
        cols = ["reco_pt_gev" if kind == "track" else "reco_e_gev", "reco_eta", "reco_phi"]
        # disjoint truth particles (even rows full, odd rows fast): when both samples come
        # from the same truth particles, pairs straddling the cross-validation folds push
        # the AUC below 0.5 (the classifier learns the partner's label)
        half_a = np.arange(len(full)) % 2 == 0 if paired else np.ones(len(full), dtype=bool)
        half_b = np.arange(len(fast)) % 2 == 1 if paired else np.ones(len(fast), dtype=bool)
        sel = np.isin(np.abs(full["pdg"]), OBJECTS[name].pdg) & half_a
        A = full.loc[sel & (full["object_type"].astype(str) == name), cols].dropna()
        sel = np.isin(np.abs(fast["pdg"]), OBJECTS[name].pdg) & half_b
        B = fast.loc[sel & (fast["object_type"].astype(str) == name), cols].dropna()
        if len(A) < 50 or len(B) < 50:
            continue
        r = classifier_test(A.to_numpy(), B.to_numpy(), max_samples=max_samples, seed=seed)
        rows.append(
            {
                "object": name,
                "features": ", ".join(cols),
                "n_full": len(A),
                "n_fast": len(B),
                "auc": r.value,
                "auc_err": r.uncertainty,
                "p_value": r.p_value,
            }
        )
    return pd.DataFrame(rows)


def ours_vs_stock(ours: pd.DataFrame, stock: pd.DataFrame, *, alpha: float = 0.01) -> pd.DataFrame:
    """Per object and quantity: is ours closer to the full simulation than the stock card,
    bin by bin?

    Both pull tables come from :func:`binned_pulls` against the *same* full-simulation
    sample, so per bin ``|pull_ours| <= |pull_stock|`` compares like with like. Ties in
    the noise (both cards consistent with the full simulation, where which one lands
    closer is a coin flip) must not count against either, hence the criterion:

    * a bin is *worse* when ``|pull_ours| > max(|pull_stock|, z_B)``: ours is significantly
      off the full simulation (beyond the Bonferroni bound ``z_B`` =
      :func:`pull_threshold` for the bins of this row at family-wise rate ``alpha``) *and*
      further off than the stock card;
    * the chi2 (sum of squared pulls over the bins) is *ok* when ``chi2_ours <=
      chi2_stock`` or ours alone is consistent with the full simulation
      (``P(chi2_bins > chi2_ours) >= alpha``);
    * ``closer`` = no worse bin and chi2 ok.

    Columns: object, quantity, bins, chi2_ours, chi2_stock, p_chi2_ours (chi2 survival
    probability with ``bins`` degrees of freedom), max_abs_pull_ours/stock,
    frac_bins_ours_closer (fraction with ``|pull_ours| <= |pull_stock|``), bound,
    bins_worse, closer.

    The pulls carry the statistical errors of both samples, not the model's own fit
    error (a fit on N particles has parameter errors of order 1/sqrt(N), small against a
    bin's 1/sqrt(N/bins)).
    """
    keys = ["object", "x_low", "eta_low"]
    m = ours.merge(stock, on=keys, suffixes=("_ours", "_stock"))
    rows = []
    for name, g in m.groupby("object", sort=False):
        for q in ("eff_pull", "mean_pull", "res_pull"):
            if f"{q}_ours" not in g:
                continue
            po, ps = g[f"{q}_ours"].to_numpy(float), g[f"{q}_stock"].to_numpy(float)
            ok = np.isfinite(po) & np.isfinite(ps)
            if not ok.any():
                continue
            po, ps = po[ok], ps[ok]
            n = int(ok.sum())
            bound = pull_threshold(n, alpha)
            c_o, c_s = float(np.sum(po**2)), float(np.sum(ps**2))
            p_o = float(stats.chi2.sf(c_o, n))
            worse = int(np.sum(np.abs(po) > np.maximum(np.abs(ps), bound)))
            rows.append(
                {
                    "object": name,
                    "quantity": q.replace("_pull", ""),
                    "bins": n,
                    "chi2_ours": c_o,
                    "chi2_stock": c_s,
                    "p_chi2_ours": p_o,
                    "max_abs_pull_ours": float(np.max(np.abs(po))),
                    "max_abs_pull_stock": float(np.max(np.abs(ps))),
                    "frac_bins_ours_closer": float(np.mean(np.abs(po) <= np.abs(ps))),
                    "bound": bound,
                    "bins_worse": worse,
                    "closer": bool(worse == 0 and (c_o <= c_s or p_o >= alpha)),
                }
            )
    return pd.DataFrame(rows)


def _formula_stats(obj: ObjectResponse, quantity: str) -> tuple[int, int]:
    """Node count and number of float constants of a quantity, summed over its regions."""
    regions = getattr(obj, quantity)
    return (
        sum(r.formula.complexity for r in regions),
        sum(len(r.formula.constants) for r in regions),
    )


def method_table(
    models: Mapping[str, ResponseModel],
    full: pd.DataFrame,
    *,
    seed: int = 1,
    pulls: Mapping[str, pd.DataFrame] | None = None,
    aucs: Mapping[str, pd.DataFrame] | None = None,
    **pull_options: Any,
) -> pd.DataFrame:
    """Learners side by side (e.g. KAN, symbolic regression, polynomial, stock) on the same
    held-out full simulation: per object and quantity, accuracy (chi2 of the pulls over the
    bins and its survival probability; the object's classifier AUC), formula complexity
    (sympy node count and number of constants, summed over the |eta| regions), |eta|
    regions and fit time (from the model metadata, written at fit time; NaN when absent).

    Arguments:
        models: Label -> response model.
        full: Held-out full-simulation table.
        seed: Fast-simulation seed.
        pulls, aucs: Precomputed :func:`binned_pulls` / :func:`auc_table` per label (the
            rest are computed).
        pull_options: Passed to :func:`binned_pulls`.
    """
    from ariasim.apps.collider.fastsim import fastsim

    pulls = dict(pulls or {})
    aucs = dict(aucs or {})
    rows = []
    for k, (label, model) in enumerate(models.items()):
        objs = list(model.objects)
        if label not in pulls or label not in aucs:
            fast = fastsim(full, model, seed + k)
            pulls.setdefault(label, binned_pulls(full, fast, objs, **pull_options))
            aucs.setdefault(label, auc_table(full, fast, objs, seed=seed))
        pt, at = pulls[label], aucs[label]
        for name, obj in model.objects.items():
            g = pt[pt["object"] == name] if len(pt) else pt
            a = at[at["object"] == name] if len(at) else at
            for q, col, quantity in (
                ("eff", "eff_pull", "efficiency"),
                ("mean", "mean_pull", "scale"),
                ("res", "res_pull", "resolution"),
            ):
                v = g[col].to_numpy(float) if col in g else np.array([])
                v = v[np.isfinite(v)]
                nodes, consts = _formula_stats(obj, quantity)
                t = obj.metadata.get("_timings", {}).get(
                    "efficiency_fit_s" if q == "eff" else "response_fit_s"
                )
                rows.append(
                    {
                        "object": name,
                        "quantity": q,
                        "method": label,
                        "bins": int(v.size),
                        "chi2": float(np.sum(v**2)),
                        "p_chi2": float(stats.chi2.sf(np.sum(v**2), v.size)) if v.size else np.nan,
                        "auc": float(a["auc"].iloc[0]) if len(a) else np.nan,
                        "nodes": nodes,
                        "constants": consts,
                        "regions": len(getattr(obj, quantity)),
                        "fit_s": float(t) if t is not None else np.nan,
                    }
                )
    return pd.DataFrame(rows)
