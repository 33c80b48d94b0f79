r"""Learn a detector response from full-simulation tables (``ariasim fit response``).

Per object type (:data:`OBJECTS`: muon, electron, photon, charged hadron, neutral hadron),
from the rows whose truth PDG code belongs to it:

* efficiency eps(pT, eta) = P(object_type == this type | truth pT, eta): a classifier
  (:class:`~ariasim.surrogates.kan.KANClassifier`, logistic likelihood), whose symbolic
  form is a sigmoid, so the probability lies in [0, 1] by construction (and the card
  clips it again);
* tracks (muon, charged hadron): the ratio y = reco pT / truth pT is log-normal, as in
  Delphes' ``MomentumSmearing``; a :class:`~ariasim.surrogates.kan.KANRegressor` with the
  log-normal likelihood learns mu(x) and s(x) of log y. The scale is E[y] = exp(mu + s^2/2),
  and Delphes' relative resolution (std of y over its mean) is sqrt(exp(s^2) - 1);
* calorimeter objects (electron, photon, neutral hadron): y = reco E / truth E with the
  Gaussian likelihood (Delphes' ``EnergySmearing`` is Gaussian in E), mean m(x) and
  sigma s(x); the card's absolute sigma(E) in GeV is ``energy * s / m`` (evaluated
  after the ``EnergyScale`` module has multiplied E by m), a function of eta and energy only.

Inputs are x = (log pT or log E, |eta|); the symbolic formulas are rewritten into the
Delphes variables by substituting ``log(pt)`` (or ``log(energy)``) and ``abs(eta)``, and
carry their fitted range (pT or E from the data) so the card clamps instead of
extrapolating. ``method="sr"`` is the symbolic-regression alternative: per-bin estimates
(efficiency with binomial errors; mean and width of y with their standard errors) fitted
by :class:`~ariasim.surrogates.symbolic.SymbolicRegressor` with ``selection="bic"``.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).
    Nix and Weigend, ICNN 1994 (heteroscedastic likelihood).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sympy as sp

from ariasim.errors import ConfigError, InputError
from ariasim.response.model import ObjectResponse, Region, ResponseModel
from ariasim.surrogates.formula import Formula, Variable

__all__ = ["OBJECTS", "REQUIRED_COLUMNS", "ObjectSpec", "fit_object", "fit_response",
           "prepare_object"]

#: Columns of a full-simulation table that the learning needs.
REQUIRED_COLUMNS = ("pdg", "truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev",
                    "object_type", "reco_pt_gev", "reco_eta", "reco_phi", "reco_e_gev")


@dataclass(frozen=True)
class ObjectSpec:
    """How an object type is modelled.

    Arguments:
        kind: ``"track"`` or ``"calo"``.
        pdg: Absolute PDG codes of its truth particles.
        mass_gev: Mass for the four-momentum.
    """

    kind: str
    pdg: tuple[int, ...]
    mass_gev: float


OBJECTS: dict[str, ObjectSpec] = {
    "muon": ObjectSpec("track", (13,), 0.1056583755),
    "electron": ObjectSpec("calo", (11,), 0.51099895e-3),
    "photon": ObjectSpec("calo", (22,), 0.0),
    "charged_hadron": ObjectSpec("track", (211, 321, 2212), 0.13957039),
    "neutral_hadron": ObjectSpec("calo", (2112, 130), 0.0),
}

_X = sp.Symbol("logx", real=True)
_A = sp.Symbol("abseta", real=True)


def prepare_object(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of ``table`` whose truth belongs to object ``name``, with the learning targets.

    Returns columns pt, eta, phi, energy (truth), passed (reconstructed as ``name``), ratio
    (reco/truth pT for tracks, E for calorimeter objects; NaN if not passed), deta, dphi.
    """
    spec = OBJECTS[name]
    sel = np.isin(np.abs(table["pdg"].to_numpy()), spec.pdg)
    t = table.loc[sel]
    passed = (t["object_type"].astype(str) == name).to_numpy().copy()
    reco, truth = (("reco_pt_gev", "truth_pt_gev") if spec.kind == "track"
                   else ("reco_e_gev", "truth_e_gev"))
    ratio = np.where(passed, t[reco].to_numpy(float) / t[truth].to_numpy(float), np.nan)
    passed &= np.isfinite(ratio) & (np.nan_to_num(ratio) > 0)
    dphi = np.angle(np.exp(1j * (t["reco_phi"].to_numpy(float) - t["truth_phi"].to_numpy(float))))
    return pd.DataFrame({
        "pt": t["truth_pt_gev"].to_numpy(float), "eta": t["truth_eta"].to_numpy(float),
        "phi": t["truth_phi"].to_numpy(float), "energy": t["truth_e_gev"].to_numpy(float),
        "passed": passed, "ratio": np.where(passed, ratio, np.nan),
        "deta": np.where(passed, t["reco_eta"].to_numpy(float) - t["truth_eta"].to_numpy(float), np.nan),
        "dphi": np.where(passed, dphi, np.nan)})


def _robust_sigma(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def _delphes(f: Formula, xvar: str, low: float, high: float, output: str, unit: str,
             meta: Mapping[str, Any]) -> Formula:
    """Rewrite a formula in (logx, abseta) into Delphes variables (xvar, eta)."""
    X, A = f.symbols
    v = sp.Symbol(xvar, real=True)
    eta = sp.Symbol("eta", real=True)
    expr = f.expression.xreplace({X: sp.log(v), A: sp.Abs(eta)})
    used = {s.name for s in expr.free_symbols}
    variables = [Variable(xvar, unit="GeV", low=low, high=high)] if xvar in used else []
    if "eta" in used:
        variables.append(Variable("eta"))
    return Formula(expr, variables, output=Variable(output, unit=unit), metadata=dict(meta))


def _kan_fit(d: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int,
             max_rows: int) -> tuple[dict[str, Formula], dict[str, Any]]:
    from ariasim.surrogates.kan import KANClassifier, KANRegressor

    rng = np.random.default_rng(seed)
    opts = {"hidden": (3,), "grid_size": 5, "max_epochs": 60, "batch_size": 1024, **options}
    out: dict[str, Formula] = {}
    info: dict[str, Any] = {}
    sub = d.iloc[rng.permutation(len(d))[:max_rows]]
    X = np.column_stack([np.log(sub["pt"]), np.abs(sub["eta"])])
    t0 = time.perf_counter()
    clf = KANClassifier(random_state=seed, variable_names=["logx", "abseta"],
                        target_name="efficiency", **opts).fit(X, sub["passed"].to_numpy(int))
    out["efficiency"] = clf.symbolic()["probability"]
    info["efficiency_fit_s"] = time.perf_counter() - t0
    p = d[d["passed"]]
    p = p.iloc[rng.permutation(len(p))[:max_rows]]
    xcol = "pt" if spec.kind == "track" else "energy"
    Xr = np.column_stack([np.log(p[xcol]), np.abs(p["eta"])])
    t0 = time.perf_counter()
    reg = KANRegressor(loss="lognormal" if spec.kind == "track" else "gaussian",
                       random_state=seed, variable_names=["logx", "abseta"], target_name="ratio",
                       **opts).fit(Xr, p["ratio"].to_numpy(float))
    forms = reg.symbolic()
    out["mean"], out["sigma"] = forms["mean"], forms["sigma"]
    info["response_fit_s"] = time.perf_counter() - t0
    info["kan"] = {"efficiency_edges": getattr(clf, "n_active_edges_", None),
                   "response_edges": getattr(reg, "n_active_edges_", None)}
    info["_estimators"] = (clf, reg)
    return out, info


def _binned(d: pd.DataFrame, xcol: str, n_x: int, n_eta: int, eta_max: float,
            *, passed_only: bool) -> pd.DataFrame:
    """Per-bin estimates in (log x, |eta|) with their standard errors."""
    dd = d[d["passed"]] if passed_only else d
    lx = np.log(dd[xcol].to_numpy())
    a = np.abs(dd["eta"].to_numpy())
    xe = np.quantile(lx, np.linspace(0, 1, n_x + 1))
    ee = np.linspace(0, eta_max, n_eta + 1)
    ix = np.clip(np.searchsorted(xe, lx, side="right") - 1, 0, n_x - 1)
    ie = np.clip(np.searchsorted(ee, a, side="right") - 1, 0, n_eta - 1)
    rows = []
    for i in range(n_x):
        for j in range(n_eta):
            m = (ix == i) & (ie == j)
            n = int(m.sum())
            if n < 20:
                continue
            row = {"logx": float(np.mean(lx[m])), "abseta": float(np.mean(a[m])), "n": n}
            if passed_only:
                y = dd["ratio"].to_numpy()[m]
                row.update(mean=float(np.mean(y)), mean_err=float(np.std(y) / np.sqrt(n)),
                           logmean=float(np.mean(np.log(y))), sd=float(np.std(y, ddof=1)),
                           logsd=float(np.std(np.log(y), ddof=1)))
                row["sd_err"] = row["sd"] / np.sqrt(2 * (n - 1))
                row["logsd_err"] = row["logsd"] / np.sqrt(2 * (n - 1))
                row["logmean_err"] = row["logsd"] / np.sqrt(n)
            else:
                k = float(dd["passed"].to_numpy()[m].sum())
                pp = (k + 0.5) / (n + 1.0)
                row.update(eff=k / n, eff_err=float(np.sqrt(pp * (1 - pp) / n)))
            rows.append(row)
    return pd.DataFrame(rows)


def _sr_fit(d: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int,
            eta_max: float) -> tuple[dict[str, Formula], dict[str, Any]]:
    from ariasim.surrogates.symbolic import SymbolicRegressor

    # no pow/log/div-by-variable surprises: operators that stay finite on the clamped range
    opts = {"max_time": 20.0, "max_length": 20,
            "operators": ("add", "sub", "mul", "exp", "sqrt", "square", "tanh"), **options}

    def fit(tab: pd.DataFrame, y: str, err: str, name: str) -> Formula:
        sr = SymbolicRegressor(random_state=seed, variable_names=["logx", "abseta"],
                               target_name=name, selection="bic", **opts)
        sr.fit(tab[["logx", "abseta"]].to_numpy(), tab[y].to_numpy(),
               sample_weight=1.0 / np.maximum(tab[err].to_numpy(), 1e-12) ** 2)
        return sr.formula_

    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    eff_tab = _binned(d, "pt", 10, 6, eta_max, passed_only=False)
    eff = fit(eff_tab, "eff", "eff_err", "efficiency")
    info["efficiency_fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    xcol = "pt" if spec.kind == "track" else "energy"
    res_tab = _binned(d, xcol, 10, 6, eta_max, passed_only=True)
    if spec.kind == "track":
        mu = fit(res_tab, "logmean", "logmean_err", "mu")
        s = fit(res_tab, "logsd", "logsd_err", "sigma")
        mean = mu.replace(sp.exp(mu.expression + s.expression.xreplace(
            dict(zip(s.symbols, mu.symbols, strict=True))) ** 2 / 2))
    else:
        mean = fit(res_tab, "mean", "mean_err", "mean")
        s = fit(res_tab, "sd", "sd_err", "sigma")
    info["response_fit_s"] = time.perf_counter() - t0
    return {"efficiency": eff, "mean": mean, "sigma": s}, info


def _poly_terms(x: np.ndarray, a: np.ndarray, degree: int) -> tuple[np.ndarray, list[sp.Expr]]:
    cols, exprs = [], []
    for i in range(degree + 1):
        for j in range(degree + 1 - i):
            if j > 2:
                continue
            cols.append(x ** i * a ** j)
            exprs.append(_X ** i * _A ** j)
    return np.column_stack(cols), exprs


def _poly_expr(coef: np.ndarray, exprs: list[sp.Expr]) -> sp.Expr:
    return sp.Add(*[sp.Float(float(c)) * e for c, e in zip(coef, exprs, strict=True)])


def _poly_fit(d: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int,
              max_rows: int) -> tuple[dict[str, Formula], dict[str, Any]]:
    """Heteroscedastic maximum likelihood with polynomial mu(x) and log sigma(x) (and a
    logistic polynomial efficiency): a small, always-finite learner used when the KAN
    symbolic extraction is unavailable, and as a fast stand-in in tests."""
    from scipy import optimize

    degree = int(options.get("degree", 3))
    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {}
    sub = d.iloc[rng.permutation(len(d))[:max_rows]]
    Z, ex = _poly_terms(np.log(sub["pt"].to_numpy()), np.abs(sub["eta"].to_numpy()), degree)
    k = sub["passed"].to_numpy(float)
    t0 = time.perf_counter()
    sc = np.maximum(np.abs(Z).max(axis=0), 1e-12)  # column scaling: better conditioned
    Z = Z / sc

    def logit_nll(b: np.ndarray) -> tuple[float, np.ndarray]:
        t = Z @ b
        p = 1.0 / (1.0 + np.exp(-t))
        nll = np.sum(np.logaddexp(0.0, t) - k * t) + 1e-6 * b @ b
        return float(nll), Z.T @ (p - k) + 2e-6 * b

    r = optimize.minimize(logit_nll, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B",
                          options={"maxiter": 2000})
    vars_ = [Variable("logx"), Variable("abseta")]
    eff = Formula(1 / (1 + sp.exp(-_poly_expr(r.x / sc, ex))), vars_, output="efficiency")
    info["efficiency_fit_s"] = time.perf_counter() - t0
    p = d[d["passed"]]
    p = p.iloc[rng.permutation(len(p))[:max_rows]]
    xcol = "pt" if spec.kind == "track" else "energy"
    Z, ex = _poly_terms(np.log(p[xcol].to_numpy()), np.abs(p["eta"].to_numpy()), degree)
    y = p["ratio"].to_numpy(float)
    if spec.kind == "track":
        y = np.log(y)
    t0 = time.perf_counter()
    sc = np.maximum(np.abs(Z).max(axis=0), 1e-12)
    Z = Z / sc
    m = Z.shape[1]
    b_mu = np.linalg.lstsq(Z, y, rcond=None)[0]
    b_ls = np.linalg.lstsq(Z, np.log(np.abs(y - Z @ b_mu) * 1.2533 + 1e-12), rcond=None)[0]

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mu = Z @ theta[:m]
        ls = np.clip(Z @ theta[m:], -30, 30)
        r_ = (y - mu) * np.exp(-ls)
        g_mu = -Z.T @ (r_ * np.exp(-ls))
        g_ls = Z.T @ (1.0 - r_ ** 2)
        return float(np.sum(0.5 * r_ ** 2 + ls)), np.concatenate([g_mu, g_ls])

    r = optimize.minimize(nll, np.concatenate([b_mu, b_ls]), jac=True, method="L-BFGS-B",
                          options={"maxiter": 5000})
    mu_e, s_e = _poly_expr(r.x[:m] / sc, ex), sp.exp(_poly_expr(r.x[m:] / sc, ex))
    mean_e = sp.exp(mu_e + s_e ** 2 / 2) if spec.kind == "track" else mu_e
    info["response_fit_s"] = time.perf_counter() - t0
    return {"efficiency": eff, "mean": Formula(mean_e, vars_, output="scale"),
            "sigma": Formula(s_e, vars_, output="sigma")}, info


def fit_object(d: pd.DataFrame, name: str, *, method: str = "kan", eta_max: float = 2.5,
               seed: int = 0, options: Mapping[str, Any] | None = None,
               max_rows: int = 20_000) -> ObjectResponse:
    """Learn one object's response from :func:`prepare_object` rows.

    Arguments:
        d: Output of :func:`prepare_object`.
        name: Object type (a key of :data:`OBJECTS`).
        method: ``"kan"``, ``"sr"`` or ``"poly"`` (polynomial heteroscedastic likelihood;
            also the fallback when the KAN symbolic extraction is unavailable).
        eta_max: |eta| acceptance.
        seed: Random seed.
        options: Extra keyword arguments for the KAN estimators / SymbolicRegressor.
        max_rows: Subsample cap per fit.
    """
    if name not in OBJECTS:
        raise ConfigError(f"unknown object type {name!r} (known: {sorted(OBJECTS)})",
                          parameter="objects")
    spec = OBJECTS[name]
    d = d[np.abs(d["eta"]) <= eta_max]
    n_pass = int(d["passed"].sum())
    if len(d) < 50 or n_pass < 50:
        raise InputError(f"too few {name} candidates to learn a response ({len(d)} truth, "
                         f"{n_pass} reconstructed; need >= 50 each)", column="object_type")
    fallback = None
    if method == "kan":
        try:
            import ariasim.surrogates.kan_symbolic  # noqa: F401
        except ImportError as exc:
            fallback, method = f"KAN symbolic extraction unavailable ({exc}); used 'poly'", "poly"
    if method == "kan":
        forms, info = _kan_fit(d, spec, options=options or {}, seed=seed, max_rows=max_rows)
    elif method == "poly":
        forms, info = _poly_fit(d, spec, options=options or {}, seed=seed, max_rows=max_rows)
    elif method == "sr":
        forms, info = _sr_fit(d, spec, options=options or {}, seed=seed, eta_max=eta_max)
    else:
        raise ConfigError(f"method must be 'kan', 'sr' or 'poly', got {method!r}",
                          parameter="method")
    if fallback:
        info["fallback"] = fallback
    estimators = info.pop("_estimators", None)
    p = d[d["passed"]]
    pt_lo, pt_hi = float(d["pt"].min()), float(d["pt"].max())
    xcol = "pt" if spec.kind == "track" else "energy"
    x_lo, x_hi = float(p[xcol].min()), float(p[xcol].max())
    meta = {"method": method, "n_truth": len(d), "n_passed": n_pass, **info}
    eff = _delphes(forms["efficiency"], "pt", pt_lo, pt_hi, "efficiency", "", meta)
    mean = _delphes(forms["mean"], xcol, x_lo, x_hi, "scale", "", meta)
    sig = forms["sigma"]
    s = sig.expression.xreplace(dict(zip(sig.symbols, forms["mean"].symbols, strict=True)))
    if spec.kind == "track":
        rel = sig.replace(sp.sqrt(sp.exp(s ** 2) - 1), variables=forms["mean"].variables)
        res = _delphes(rel, "pt", x_lo, x_hi, "sigma_pt_over_pt", "", meta)
    else:
        X = forms["mean"].symbols[0]
        rel = sig.replace(sp.exp(X) * sp.Abs(s) / forms["mean"].expression,
                          variables=forms["mean"].variables)
        res = _delphes(rel, "energy", x_lo, x_hi, "sigma_e", "GeV", meta)
    obj = ObjectResponse(
        name, spec.kind, spec.pdg, eta_max,
        efficiency=[Region(0.0, eta_max, eff)], scale=[Region(0.0, eta_max, mean)],
        resolution=[Region(0.0, eta_max, res)],
        sigma_eta=_robust_sigma(p["deta"].to_numpy()), sigma_phi=_robust_sigma(p["dphi"].to_numpy()),
        mass_gev=spec.mass_gev, metadata={**meta, "complexity": {
            "efficiency": eff.complexity, "scale": mean.complexity, "resolution": res.complexity}})
    if estimators is not None:
        obj.metadata["_estimators"] = estimators  # not serialised (dropped by to_dict below)
    return obj


def fit_response(table: pd.DataFrame, *, objects: Sequence[str] | None = None,
                 method: str = "kan", eta_max: float = 2.5, seed: int = 0,
                 options: Mapping[str, Any] | None = None, max_rows: int = 20_000,
                 source: Any = None) -> ResponseModel:
    """Learn the response of every object type present in a full-simulation table.

    Arguments:
        table: Full-simulation output (:func:`ariasim.simulators.collider.simulate`).
        objects: Object types to learn (default: those with enough truth particles).
        method, eta_max, seed, options, max_rows: See :func:`fit_object`.
        source: Provenance text (input file names).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError("not a full-simulation table: missing columns", path=source,
                         column=", ".join(missing))
    pdg = np.abs(table["pdg"].to_numpy())
    names = list(objects) if objects else [n for n, s in OBJECTS.items()
                                            if np.isin(pdg, s.pdg).sum() >= 50]
    if not names:
        raise InputError("no object type has >= 50 truth particles", path=source, column="pdg")
    fitted = {}
    for k, name in enumerate(names):
        d = prepare_object(table, name)
        fitted[name] = fit_object(d, name, method=method, eta_max=eta_max, seed=seed + k,
                                  options=options, max_rows=max_rows)
    return ResponseModel(fitted, {"source": str(source) if source else "table", "method": method,
                                  "eta_max": eta_max, "seed": seed})
