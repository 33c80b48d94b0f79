r"""Learn a detector response from full-simulation tables (``ariasim fit response``).

Per object type (:data:`OBJECTS`: muon, electron, photon, charged hadron, neutral hadron),
from the rows whose truth PDG code belongs to it:

* efficiency eps(x, eta) = P(object_type == this type | truth x, eta), x = pT for tracks
  and E for calorimeter objects (cluster thresholds are in energy): a classifier
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

Inputs are (log pT or log E, |eta|); the symbolic formulas are rewritten into the
Delphes variables by substituting ``log(pt)`` (or ``log(energy)``) and ``abs(eta)``, and
carry their fitted range (pT or E from the data) so the card clamps instead of
extrapolating.

|eta| regions are learned, not assumed (:func:`eta_regions`): detectors have sharp
transitions in |eta| (barrel/endcap, the edge of the muon system) that no smooth function
of |eta| reproduces, and hand-made cards put the bin edges by hand (often in the wrong
place). Per-|eta|-slice statistics (efficiency; median and robust width of the response,
each in a few truth-pT classes) are segmented by greedy binary segmentation with a
piecewise-*linear* model, a split being kept while its chi2 improvement exceeds the
Bonferroni-corrected chi2 quantile (so smooth trends do not split, steps do). The
efficiency and the response get their own regions; a formula is learned in each. ``method="sr"`` is the symbolic-regression alternative: per-bin estimates
(efficiency with binomial errors; mean and width of y with their standard errors) fitted
by :class:`~ariasim.surrogates.symbolic.SymbolicRegressor` with ``selection="bic"``.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).
    Nix and Weigend, ICNN 1994 (heteroscedastic likelihood).
    Scott and Knott, Biometrics 30 (1974) 507 (binary segmentation); Killick et al.,
    JASA 107 (2012) 1590 (change-point detection with penalised costs).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sympy as sp

from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula, Variable

__all__ = ["OBJECTS", "REQUIRED_COLUMNS", "ObjectSpec", "eta_regions", "fit_object",
           "fit_response", "prepare_object", "select_events"]

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

    @property
    def x(self) -> str:
        """The truth variable of the formulas: ``"pt"`` for tracks, ``"energy"`` for
        calorimeter objects (their thresholds and resolutions are in energy)."""
        return "pt" if self.kind == "track" else "energy"


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


def robust_sigma(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def _delphes(f: Formula, xvar: str, low: float, high: float, output: str, unit: str,
             meta: Mapping[str, Any], eta_range: tuple[float, float] | None = None) -> Formula:
    """Rewrite a formula in (logx, abseta) into Delphes variables (xvar, eta).

    With ``eta_range`` (the formula's |eta| region), |eta| is clamped to it: Delphes
    evaluates every region's term everywhere and multiplies it by its 0/1 condition, so a
    formula that overflows when extrapolated to another region would turn the card's sum
    into 0 * inf = NaN there.
    """
    X, A = f.symbols
    v = sp.Symbol(xvar, real=True)
    eta = sp.Symbol("eta", real=True)
    a: sp.Expr = sp.Abs(eta)
    if eta_range is not None:
        lo, hi = eta_range
        a = sp.Min(a, sp.Float(hi))
        if lo > 0:
            a = sp.Max(a, sp.Float(lo))
    expr = f.expression.xreplace({X: sp.log(v), A: a})
    used = {s.name for s in expr.free_symbols}
    variables = [Variable(xvar, unit="GeV", low=low, high=high)] if xvar in used else []
    if "eta" in used:
        variables.append(Variable("eta"))
    return Formula(expr, variables, output=Variable(output, unit=unit), metadata=dict(meta))


def select_events(table: pd.DataFrame, events: str = "all", *, source: Any = None
                  ) -> pd.DataFrame:
    """The documented train/held-out split: rows of events with even or odd ``event_id``.

    ``ariasim fit response --events even`` learns on the even events and
    ``ariasim fastsim --compare --events odd`` compares on the odd ones, so the comparison
    uses particles the fit never saw (the full simulation draws every event independently).

    Arguments:
        table: A full-simulation (or particle) table with an ``event_id`` column.
        events: ``"all"``, ``"even"`` or ``"odd"``.
        source: File name for error messages.
    """
    if events == "all":
        return table
    if events not in ("even", "odd"):
        raise ConfigError(f"events must be 'all', 'even' or 'odd', got {events!r}",
                          parameter="events")
    if "event_id" not in table.columns:
        raise InputError("an even/odd event split needs an event_id column", path=source,
                         column="event_id")
    parity = table["event_id"].to_numpy().astype(np.int64) % 2
    return table.loc[parity == (0 if events == "even" else 1)].reset_index(drop=True)


# ---------------------------------------------------------------------- |eta| regions
def _segment_cost(S: np.ndarray, W: np.ndarray, c: np.ndarray) -> float:
    """chi2 of a weighted straight-line fit in ``c`` to every row of ``S`` (weights ``W``);
    a constant for segments of fewer than three slices (else a two-slice segment would
    absorb any step)."""
    sw = W.sum(1)
    ok = sw > 0
    if not ok.any():
        return 0.0
    S, W = S[ok], W[ok]
    sw = sw[ok]
    xm = (W * c).sum(1) / sw
    ym = (W * S).sum(1) / sw
    dx = c - xm[:, None]
    if c.size < 3:  # a line through one or two slices is exact: constant there instead
        return float((W * (S - ym[:, None]) ** 2).sum())
    sxx = (W * dx * dx).sum(1)
    sxy = (W * dx * (S - ym[:, None])).sum(1)
    slope = np.where(sxx > 1e-300, sxy / np.where(sxx > 1e-300, sxx, 1.0), 0.0)
    r = S - ym[:, None] - slope[:, None] * dx
    return float((W * r * r).sum())


def _binary_segmentation(S: np.ndarray, V: np.ndarray, counts: np.ndarray, *,
                         max_regions: int, alpha: float, min_count: int) -> list[int]:
    """Split points (fine-bin indices) of a piecewise-linear fit to the rows of ``S``
    (variances ``V``; ``inf`` = missing), greedy, while the best split's chi2 gain exceeds
    the chi2 quantile at ``alpha`` over the number of candidate splits (Bonferroni) with
    two parameters per series; segments keep at least ``min_count`` entries."""
    from scipy import stats

    n = S.shape[1]
    W = np.where(np.isfinite(V) & (V > 0), 1.0 / np.where(V > 0, V, 1.0), 0.0)
    S = np.where(W > 0, S, 0.0)
    c = (np.arange(n) + 0.5) / n
    n_series = int((W.sum(1) > 0).sum())
    if n_series == 0 or n < 2:
        return []
    threshold = stats.chi2.isf(alpha / max(n - 1, 1), 2 * n_series)
    cuts: list[int] = []
    while len(cuts) + 1 < max_regions:
        bounds = [0, *cuts, n]
        best = (threshold, -1)
        for lo, hi in itertools.pairwise(bounds):
            whole = _segment_cost(S[:, lo:hi], W[:, lo:hi], c[lo:hi])
            for k in range(lo + 1, hi):
                if counts[lo:k].sum() < min_count or counts[k:hi].sum() < min_count:
                    continue
                gain = whole - _segment_cost(S[:, lo:k], W[:, lo:k], c[lo:k]) \
                    - _segment_cost(S[:, k:hi], W[:, k:hi], c[k:hi])
                if gain > best[0]:
                    best = (gain, k)
        if best[1] < 0:
            break
        cuts = sorted([*cuts, best[1]])
    return cuts


def eta_regions(d: pd.DataFrame, kind: str, eta_max: float, *, quantity: str,
                width: float = 0.1, n_classes: int = 3, max_regions: int = 4,
                alpha: float = 1e-3, min_count: int = 200) -> list[tuple[float, float]]:
    """Data-driven |eta| regions for one quantity of one object (see the module docstring).

    Arguments:
        d: :func:`prepare_object` rows (within the acceptance).
        kind: ``"track"`` or ``"calo"`` (which truth variable defines the pT/E classes).
        eta_max: |eta| acceptance (the last edge).
        quantity: ``"efficiency"`` (series: efficiency per class, binomial variances) or
            ``"response"`` (median and log robust width of log(ratio) per class).
        width: Fine |eta| slice width (edges are multiples of it, readable in a card).
        n_classes: Truth pT (or E) quantile classes.
        max_regions: At most this many regions.
        alpha: Family-wise false-split rate.
        min_count: Fewest rows (truth for efficiency, reconstructed for the response) in
            a region.

    Returns:
        ``[(eta_low, eta_high), ...]`` tiling ``[0, eta_max]``.
    """
    n_fine = max(round(eta_max / width), 1)
    edges = np.linspace(0.0, eta_max, n_fine + 1)
    dd = d if quantity == "efficiency" else d[d["passed"]]
    if len(dd) < 2 * min_count:
        return [(0.0, eta_max)]
    x = np.log(dd["pt" if kind == "track" else "energy"]
               .to_numpy(float))
    cls = np.clip(np.searchsorted(np.quantile(x, np.linspace(0, 1, n_classes + 1)[1:-1]), x,
                                  side="right"), 0, n_classes - 1)
    ib = np.clip(np.searchsorted(edges, np.abs(dd["eta"].to_numpy(float)), side="right") - 1,
                 0, n_fine - 1)
    counts = np.bincount(ib, minlength=n_fine)
    rows_s, rows_v = [], []
    if quantity == "efficiency":
        k = dd["passed"].to_numpy(float)
        for c in range(n_classes):
            m = cls == c
            nn = np.bincount(ib[m], minlength=n_fine).astype(float)
            kk = np.bincount(ib[m], weights=k[m], minlength=n_fine)
            p = (kk + 0.5) / (nn + 1.0)
            rows_s.append(kk / np.maximum(nn, 1.0))
            rows_v.append(np.where(nn >= 10, p * (1 - p) / np.maximum(nn, 1.0), np.inf))
    else:
        ly = np.log(dd["ratio"].to_numpy(float))
        for c in range(n_classes):
            med = np.zeros(n_fine)
            lsd = np.zeros(n_fine)
            vm = np.full(n_fine, np.inf)
            vs = np.full(n_fine, np.inf)
            for b in range(n_fine):
                v = ly[(cls == c) & (ib == b)]
                if v.size < 20:
                    continue
                med[b] = np.median(v)
                sd = max(robust_sigma(v), 1e-9)
                lsd[b] = np.log(sd)
                # asymptotic variances of the median and of log(MAD) for a normal sample
                vm[b] = np.pi / 2 * sd * sd / v.size
                vs[b] = 1.36 / v.size
            rows_s += [med, lsd]
            rows_v += [vm, vs]
    cuts = _binary_segmentation(np.array(rows_s), np.array(rows_v), counts,
                                max_regions=max_regions, alpha=alpha, min_count=min_count)
    b = [0.0, *[float(round(edges[k], 6)) for k in cuts], float(eta_max)]
    return list(itertools.pairwise(b))


def _in_region(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (a > lo) & (a <= hi) if lo > 0 else (a <= hi)


# ---------------------------------------------------------------------- learners
def _kan_opts(options: Mapping[str, Any]) -> dict[str, Any]:
    opts = {k: v for k, v in options.items() if k != "symbolic_refit"}
    return {"hidden": (3,), "grid_size": 5, "max_epochs": 60, "batch_size": 1024, **opts}


def _kan_numeric(est: Any) -> list[list[int]]:
    rep = getattr(est, "symbolic_report_", None)
    if rep is None or rep.empty:
        return []
    return [[int(r.layer), int(r.i), int(r.j)] for r in rep.itertuples() if r.numeric]


def _finite_on_box(formulas: Sequence[Formula], X: np.ndarray, *, positive: bool = False,
                   n: int = 41) -> bool:
    """True when every formula is finite (and positive with ``positive``) on an ``n x n``
    grid over the bounding box of ``X``: the card evaluates the formulas on the whole
    (clamped pT or E) x (|eta| region) rectangle, not only where the data lie."""
    g0, g1 = np.meshgrid(np.linspace(X[:, 0].min(), X[:, 0].max(), n),
                         np.linspace(X[:, 1].min(), X[:, 1].max(), n))
    G = np.column_stack([g0.ravel(), g1.ravel()])
    with np.errstate(all="ignore"):
        for f in formulas:
            v = np.broadcast_to(np.asarray(f(G), dtype=float), (G.shape[0],))
            if not np.isfinite(v).all() or (positive and not (v > 0).all()):
                return False
    return True


def _symbolic_safe(est: Any, X: np.ndarray, keys: Sequence[str], *, positive: Sequence[str] = (),
                   refit: bool = True) -> tuple[dict[str, Formula], bool]:
    """``est.symbolic()``, redone without the singular library functions (1/x, 1/x^2, log)
    when a formula is not finite on the data's bounding box; returns (formulas, redone)."""
    from ariasim.surrogates.kan_symbolic import LIBRARY

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numeric edges: reported in metadata
        forms = est.symbolic(refit=refit)
        ok = all(_finite_on_box([forms[k]], X, positive=k in positive) for k in keys)
        if ok:
            return forms, False
        safe = [n for n in LIBRARY if n not in ("1/x", "1/x^2", "log")]
        return est.symbolic(library=safe, refit=refit), True


def _kan_eff(d: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int
             ) -> tuple[Formula, dict[str, Any]]:
    from ariasim.surrogates.kan import KANClassifier
    from ariasim.surrogates.kan_plot import edge_curves

    X = np.column_stack([np.log(d[spec.x]), np.abs(d["eta"])])
    t0 = time.perf_counter()
    clf = KANClassifier(random_state=seed, variable_names=["logx", "abseta"],
                        target_name="efficiency", **_kan_opts(options))
    clf.fit(X, d["passed"].to_numpy(int))
    t1 = time.perf_counter()
    forms, redone = _symbolic_safe(clf, X, ["probability"])
    f = forms["probability"]
    t2 = time.perf_counter()
    return f, {"train_s": t1 - t0, "symbolic_s": t2 - t1, "safe_library": redone,
               "edges": int(getattr(clf, "n_active_edges_", 0)),
               "numeric_edges": _kan_numeric(clf), "curves": edge_curves(clf),
               "_estimator": clf}


def _kan_resp(p: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int
              ) -> tuple[dict[str, Formula], dict[str, Any]]:
    from ariasim.surrogates.kan import KANRegressor
    from ariasim.surrogates.kan_plot import edge_curves

    xcol = spec.x
    Xr = np.column_stack([np.log(p[xcol]), np.abs(p["eta"])])
    t0 = time.perf_counter()
    reg = KANRegressor(loss="lognormal" if spec.kind == "track" else "gaussian",
                       random_state=seed, variable_names=["logx", "abseta"], target_name="ratio",
                       **_kan_opts(options))
    reg.fit(Xr, p["ratio"].to_numpy(float))
    t1 = time.perf_counter()
    forms, redone = _symbolic_safe(reg, Xr, ["mean", "sigma"], positive=["sigma"],
                                   refit=bool(options.get("symbolic_refit", True)))
    t2 = time.perf_counter()
    return {"mean": forms["mean"], "sigma": forms["sigma"]}, {
        "train_s": t1 - t0, "symbolic_s": t2 - t1, "safe_library": redone,
        "edges": int(getattr(reg, "n_active_edges_", 0)), "numeric_edges": _kan_numeric(reg),
        "curves": edge_curves(reg), "_estimator": reg}


def _binned(d: pd.DataFrame, xcol: str, n_x: int, n_eta: int, eta_range: tuple[float, float],
            *, passed_only: bool) -> pd.DataFrame:
    """Per-bin estimates in (log x, |eta|) with their standard errors."""
    dd = d[d["passed"]] if passed_only else d
    lx = np.log(dd[xcol].to_numpy())
    a = np.abs(dd["eta"].to_numpy())
    xe = np.quantile(lx, np.linspace(0, 1, n_x + 1))
    ee = np.linspace(eta_range[0], eta_range[1], n_eta + 1)
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


def _sr_one(tab: pd.DataFrame, y: str, err: str, name: str, *, options: Mapping[str, Any],
            seed: int) -> Formula:
    from ariasim.surrogates.symbolic import SymbolicRegressor

    # no pow/log/div-by-variable surprises: operators that stay finite on the clamped range
    opts = {"max_time": 20.0, "max_length": 20,
            "operators": ("add", "sub", "mul", "exp", "sqrt", "square", "tanh"), **options}
    sr = SymbolicRegressor(random_state=seed, variable_names=["logx", "abseta"],
                           target_name=name, selection="bic", **opts)
    sr.fit(tab[["logx", "abseta"]].to_numpy(), tab[y].to_numpy(),
           sample_weight=1.0 / np.maximum(tab[err].to_numpy(), 1e-12) ** 2)
    return sr.formula_


def _n_eta_bins(d: pd.DataFrame) -> int:
    a = np.abs(d["eta"].to_numpy())
    return int(np.clip(round((a.max() - a.min()) / 0.4), 1, 6)) if a.size else 1


def _sr_eff(d: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int,
            eta_range: tuple[float, float]) -> tuple[Formula, dict[str, Any]]:
    t0 = time.perf_counter()
    n_eta = _n_eta_bins(d)
    tab = _binned(d, spec.x, max(10, -(-24 // n_eta)), n_eta, eta_range, passed_only=False)
    f = _sr_one(tab, "eff", "eff_err", "efficiency", options=options, seed=seed)
    return f, {"train_s": time.perf_counter() - t0}


def _sr_resp(p: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int,
             eta_range: tuple[float, float]) -> tuple[dict[str, Formula], dict[str, Any]]:
    t0 = time.perf_counter()
    xcol = spec.x
    n_eta = _n_eta_bins(p)  # >= 24 bins: enough points for the regressor's selection
    tab = _binned(p, xcol, max(10, -(-24 // n_eta)), n_eta, eta_range, passed_only=True)
    if spec.kind == "track":
        mu = _sr_one(tab, "logmean", "logmean_err", "mu", options=options, seed=seed)
        s = _sr_one(tab, "logsd", "logsd_err", "sigma", options=options, seed=seed)
        mean = mu.replace(sp.exp(mu.expression + s.expression.xreplace(
            dict(zip(s.symbols, mu.symbols, strict=True))) ** 2 / 2))
    else:
        mean = _sr_one(tab, "mean", "mean_err", "mean", options=options, seed=seed)
        s = _sr_one(tab, "sd", "sd_err", "sigma", options=options, seed=seed)
    return {"mean": mean, "sigma": s}, {"train_s": time.perf_counter() - t0}


def _poly_terms(x: np.ndarray, a: np.ndarray, degree: int) -> tuple[np.ndarray, list[sp.Expr]]:
    """Monomials x^i a^j for j <= 1 and x^i (a - c)^2 (i + j <= degree), c the region's
    mid |eta|: the quadratic term is centred so a narrow region stays well conditioned
    (the linear one is not: sympy would distribute a constant into ``a - c`` and the text
    would change on a save/load round trip). The |eta| degree drops with the region's
    width (0 below 0.25, 1 below 0.6): a narrow slice cannot determine curvature."""
    lo, hi = float(a.min()), float(a.max())
    mid = round(0.5 * (lo + hi), 3)
    j_max = 0 if hi - lo < 0.25 else (1 if hi - lo < 0.6 else 2)
    cols, exprs = [], []
    for i in range(degree + 1):
        for j in range(min(degree - i, j_max) + 1):
            if j == 2:
                cols.append(x ** i * (a - mid) ** 2)
                exprs.append(_X ** i * (_A - sp.Float(mid)) ** 2)
            else:
                cols.append(x ** i * a ** j)
                exprs.append(_X ** i * _A ** j)
    return np.column_stack(cols), exprs


def _poly_expr(coef: np.ndarray, exprs: list[sp.Expr]) -> sp.Expr:
    return sp.Add(*[sp.Float(float(c)) * e for c, e in zip(coef, exprs, strict=True)])


_POLY_VARS = [Variable("logx"), Variable("abseta")]


def _poly_eff(d: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int
              ) -> tuple[Formula, dict[str, Any]]:
    """Logistic regression on a polynomial in (log pT, |eta|) (see :func:`_poly_resp`)."""
    from scipy import optimize

    degree = int(options.get("degree", 3))
    Z, ex = _poly_terms(np.log(d[spec.x].to_numpy()), np.abs(d["eta"].to_numpy()), degree)
    k = d["passed"].to_numpy(float)
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
    eff = Formula(1 / (1 + sp.exp(-_poly_expr(r.x / sc, ex))), _POLY_VARS, output="efficiency")
    return eff, {"train_s": time.perf_counter() - t0}


def _poly_resp(p: pd.DataFrame, spec: ObjectSpec, *, options: Mapping[str, Any], seed: int
               ) -> tuple[dict[str, Formula], dict[str, Any]]:
    """Heteroscedastic maximum likelihood with polynomial mu(x) and log sigma(x): a small,
    always-finite learner used when the KAN symbolic extraction is unavailable, and as a
    fast stand-in in tests."""
    from scipy import optimize

    degree = int(options.get("degree", 3))
    xcol = spec.x
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
    return {"mean": Formula(mean_e, _POLY_VARS, output="scale"),
            "sigma": Formula(s_e, _POLY_VARS, output="sigma")}, {
        "train_s": time.perf_counter() - t0}


def _constant(value: float, output: str, meta: Mapping[str, Any]) -> Formula:
    return Formula(repr(float(value)), [], output=output, metadata=dict(meta))


def _scaled_argument(mean: Formula, X: np.ndarray) -> tuple[sp.Expr, dict[str, float]]:
    """The truth log x as a linear function of the card's argument.

    Delphes applies ``EnergyScale`` before the smearing module, so the card evaluates the
    resolution at the *scaled* pT or energy x' = x * scale(x), not at the truth x the
    formulas were learned in. Evaluating the learned sigma(x) at x' shifts it by
    log(scale) along log x (for calorimeter objects at low energy, where the scale is
    well below 1, this widened the resolution by several standard errors). The inverse
    map log x(log x', |eta|) is fitted by least squares on the training rows as
    ``a + b log x' + c |eta|``: a linear substitution keeps the resolution formula as
    short as the learned sigma (no copy of the scale formula inside it).

    Returns the expression of the truth log x in the symbols of ``mean`` and the
    coefficients.
    """
    Xs, A = mean.symbols
    with np.errstate(all="ignore"):
        m = np.asarray(mean(X), dtype=float)  # the card's scale: x' = x * m (tracks: pT)
        lxp = X[:, 0] + np.log(np.where(m > 0, m, np.nan))
    ok = np.isfinite(lxp)
    if ok.sum() < 10:
        return Xs, {"a": 0.0, "b": 1.0, "c": 0.0}
    Z = np.column_stack([np.ones(ok.sum()), lxp[ok], X[ok, 1]])
    a, b, c = (float(v) for v in np.linalg.lstsq(Z, X[ok, 0], rcond=None)[0])
    if not (0.5 < b < 2.0):  # not a near-identity map: leave the argument alone
        return Xs, {"a": 0.0, "b": 1.0, "c": 0.0}
    return (sp.Float(a) + sp.Float(b) * Xs + sp.Float(c) * A,
            {"a": a, "b": b, "c": c})


def _resp_formulas(forms: Mapping[str, Formula], spec: ObjectSpec, x_range: tuple[float, float],
                   eta_range: tuple[float, float], meta: Mapping[str, Any],
                   X: np.ndarray | None = None) -> tuple[Formula, Formula]:
    """(scale, resolution) in Delphes variables from the learned (mean, sigma).

    With ``X`` (the training rows' (log x, |eta|)), the resolution is rewritten in the
    scaled argument the card evaluates it at (:func:`_scaled_argument`); for calorimeter
    objects the card's sigma(E') in GeV is then ``x * s(x)`` at the truth x (reco E =
    x * (m + s z)), with no division by the scale formula.
    """
    scale = _delphes(forms["mean"], spec.x, *x_range, "scale", "", meta, eta_range)
    sig = forms["sigma"]
    Xs = forms["mean"].symbols[0]
    s = sig.expression.xreplace(dict(zip(sig.symbols, forms["mean"].symbols, strict=True)))
    if X is not None:
        xt, _ = _scaled_argument(forms["mean"], X)
        s = s.xreplace({Xs: xt})
    else:
        xt = None
    if spec.kind == "track":
        rel = sig.replace(sp.sqrt(sp.exp(s ** 2) - 1), variables=forms["mean"].variables)
        res = _delphes(rel, "pt", *x_range, "sigma_pt_over_pt", "", meta, eta_range)
    else:
        # |s| only where sympy cannot tell that s > 0: the learned sigma is usually
        # c * exp(P) (the network's log-sigma output), and sympy rewrites Abs(c * exp(P))
        # as c * exp(re(P)), expanding the nested powers of P into a polynomial whose
        # large, cancelling coefficients overflow in double precision (the card's
        # sigma was then NaN or ~40 % too narrow in the forward electron region)
        c, rest = s.as_coeff_Mul()
        s_abs = (abs(c) * rest if isinstance(rest, sp.exp) or rest.is_extended_positive
                 else sp.Abs(s))
        expr = (sp.exp(xt) * s_abs if xt is not None
                else sp.exp(Xs) * s_abs / forms["mean"].expression)
        rel = sig.replace(expr, variables=forms["mean"].variables)
        res = _delphes(rel, "energy", *x_range, "sigma_e", "GeV", meta, eta_range)
    if xt is not None:
        # sympy distributes the substituted argument's constants differently once the
        # text is re-parsed: canonicalise through the text now, so a saved model's card
        # text round-trips exactly
        res = Formula.from_dict(res.to_dict())
    return scale, res


def _card_valid(f: Formula, quantity: str, kind: str, x_range: tuple[float, float],
                eta_range: tuple[float, float]) -> bool:
    """Whether ``f`` (Delphes variables) meets the card's module semantics on the whole
    rectangle the card evaluates it on (x clamped to ``x_range``, |eta| to the region):
    finite; efficiency in [0, 1]; scale and resolution > 0; track resolution < 1.
    A learner can fit the data and still break these where no data lie (a corner of
    the rectangle outside the kinematic reach: low E at large |eta|)."""
    xs = np.geomspace(max(x_range[0], 1e-6), max(x_range[1], 1e-6), 25)
    etas = np.linspace(eta_range[0], eta_range[1], 9)
    X, H = np.meshgrid(xs, etas)
    x, h = X.ravel(), H.ravel()
    args = {"pt": x, "energy": x, "eta": h}
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(f({k: args[k] for k in f.names}), dtype=float), x.shape)
    if not np.isfinite(v).all():
        return False
    if quantity == "efficiency":
        return bool(((v >= 0) & (v <= 1)).all())
    if quantity == "resolution" and kind == "track":
        return bool(((v > 0) & (v < 1)).all())
    return bool((v > 0).all())


def fit_object(d: pd.DataFrame, name: str, *, method: str = "kan", eta_max: float = 2.5,
               seed: int = 0, options: Mapping[str, Any] | None = None,
               max_rows: int = 20_000, regions: str = "auto",
               max_regions: int = 4) -> ObjectResponse:
    """Learn one object's response from :func:`prepare_object` rows.

    Arguments:
        d: Output of :func:`prepare_object`.
        name: Object type (a key of :data:`OBJECTS`).
        method: ``"kan"``, ``"sr"`` or ``"poly"`` (polynomial heteroscedastic likelihood;
            also the fallback when the KAN symbolic extraction is unavailable).
        eta_max: |eta| acceptance.
        seed: Random seed.
        options: Extra keyword arguments for the KAN estimators / SymbolicRegressor.
        max_rows: Subsample cap per fit (per region and quantity).
        regions: ``"auto"`` (learned |eta| regions, :func:`eta_regions`) or ``"single"``
            (one region, the whole acceptance).
        max_regions: At most this many learned regions per quantity.

    A region's learned formula that breaks the card's module semantics somewhere on the
    rectangle the card evaluates (non-finite, efficiency outside [0, 1], scale or
    resolution <= 0, track resolution >= 1; see :func:`_card_valid`) is replaced by the
    ``"poly"`` fit of the same rows, recorded in ``metadata["fallbacks"]``.
    """
    if name not in OBJECTS:
        raise ConfigError(f"unknown object type {name!r} (known: {sorted(OBJECTS)})",
                          parameter="objects")
    if method not in ("kan", "sr", "poly"):
        raise ConfigError(f"method must be 'kan', 'sr' or 'poly', got {method!r}",
                          parameter="method")
    if regions not in ("auto", "single"):
        raise ConfigError(f"regions must be 'auto' or 'single', got {regions!r}",
                          parameter="regions")
    spec = OBJECTS[name]
    opts = dict(options or {})
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
    rng = np.random.default_rng(seed)
    if regions == "auto":
        eff_edges = eta_regions(d, spec.kind, eta_max, quantity="efficiency",
                                max_regions=max_regions)
        resp_edges = eta_regions(d, spec.kind, eta_max, quantity="response",
                                 max_regions=max_regions)
    else:
        eff_edges = resp_edges = [(0.0, eta_max)]
    a_all = np.abs(d["eta"].to_numpy())
    p_all = d[d["passed"]]
    xcol = spec.x
    meta = {"method": method, "n_truth": len(d), "n_passed": n_pass}
    timing = {"efficiency_fit_s": 0.0, "response_fit_s": 0.0, "symbolic_s": 0.0}
    details: list[dict[str, Any]] = []
    estimators: list[tuple[str, Any]] = []
    eff_regions: list[Region] = []
    for k, (lo, hi) in enumerate(eff_edges):
        r = d[_in_region(a_all, lo, hi)]
        kk = int(r["passed"].sum())
        det: dict[str, Any] = {"quantity": "efficiency", "eta": [lo, hi], "n": len(r)}
        if len(r) < 200 or min(kk, len(r) - kk) < 10:
            f = _constant(kk / max(len(r), 1), "efficiency", meta)
            det["form"] = "constant"
        else:
            sub = r.iloc[rng.permutation(len(r))[:max_rows]]
            if method == "kan":
                f0, info = _kan_eff(sub, spec, options=opts, seed=seed + k)
            elif method == "sr":
                f0, info = _sr_eff(sub, spec, options=opts, seed=seed + k, eta_range=(lo, hi))
            else:
                f0, info = _poly_eff(sub, spec, options=opts, seed=seed + k)
            est = info.pop("_estimator", None)
            if est is not None:
                estimators.append((f"efficiency, |eta| in ({lo}, {hi}]", est))
            x_range = (float(r[spec.x].min()), float(r[spec.x].max()))
            f = _delphes(f0, spec.x, *x_range, "efficiency", "", meta, (lo, hi))
            if method != "poly" and not _card_valid(f, "efficiency", spec.kind, x_range,
                                                    (lo, hi)):
                f0, extra = _poly_eff(sub, spec, options={}, seed=seed + k)
                f = _delphes(f0, spec.x, *x_range, "efficiency", "", meta, (lo, hi))
                info["fallback"] = "poly (the learned formula breaks the module semantics)"
                info["train_s"] += extra["train_s"]
            timing["efficiency_fit_s"] += info["train_s"] + info.get("symbolic_s", 0.0)
            timing["symbolic_s"] += info.get("symbolic_s", 0.0)
            det.update(info)
        details.append(det)
        eff_regions.append(Region(lo, hi, f))
    scale_regions: list[Region] = []
    res_regions: list[Region] = []
    a_pass = np.abs(p_all["eta"].to_numpy())
    for k, (lo, hi) in enumerate(resp_edges):
        p = p_all[_in_region(a_pass, lo, hi)]
        if len(p) < 50:  # cannot happen for learned regions (>= 200 per region)
            raise InputError(f"too few reconstructed {name} in |eta| region ({lo}, {hi}] "
                             f"({len(p)}; need >= 50)", column="object_type")
        sub = p.iloc[rng.permutation(len(p))[:max_rows]]
        if method == "kan":
            forms, info = _kan_resp(sub, spec, options=opts, seed=seed + 100 + k)
        elif method == "sr":
            forms, info = _sr_resp(sub, spec, options=opts, seed=seed + 100 + k,
                                   eta_range=(lo, hi))
        else:
            forms, info = _poly_resp(sub, spec, options=opts, seed=seed + 100 + k)
        est = info.pop("_estimator", None)
        if est is not None:
            estimators.append((f"response, |eta| in ({lo}, {hi}]", est))
        x_range = (float(p[xcol].min()), float(p[xcol].max()))
        Xsub = np.column_stack([np.log(sub[xcol].to_numpy(float)), np.abs(sub["eta"].to_numpy())])
        scale, res = _resp_formulas(forms, spec, x_range, (lo, hi), meta, Xsub)
        if method != "poly" and not (
                _card_valid(scale, "scale", spec.kind, x_range, (lo, hi))
                and _card_valid(res, "resolution", spec.kind, x_range, (lo, hi))):
            forms, extra = _poly_resp(sub, spec, options={}, seed=seed + 100 + k)
            scale, res = _resp_formulas(forms, spec, x_range, (lo, hi), meta, Xsub)
            info["fallback"] = "poly (the learned formula breaks the module semantics)"
            info["train_s"] += extra["train_s"]
        timing["response_fit_s"] += info["train_s"] + info.get("symbolic_s", 0.0)
        timing["symbolic_s"] += info.get("symbolic_s", 0.0)
        details.append({"quantity": "response", "eta": [lo, hi], "n": len(p), **info})
        scale_regions.append(Region(lo, hi, scale))
        res_regions.append(Region(lo, hi, res))
    numeric = [{"quantity": t["quantity"], "eta": t["eta"], "edges": t["numeric_edges"]}
               for t in details if t.get("numeric_edges")]
    fallbacks = [{"quantity": t["quantity"], "eta": t["eta"], "fallback": t["fallback"]}
                 for t in details if t.get("fallback")]
    if fallbacks:
        meta["fallbacks"] = fallbacks
    meta.update(timing)
    meta["fit_s"] = timing["efficiency_fit_s"] + timing["response_fit_s"]
    meta["regions"] = {"efficiency": [list(e) for e in eff_edges],
                       "response": [list(e) for e in resp_edges]}
    meta["fits"] = details
    if method == "kan":
        meta["numeric_edges"] = numeric
    if fallback:
        meta["fallback"] = fallback
    obj = ObjectResponse(
        name, spec.kind, spec.pdg, eta_max, efficiency=eff_regions, scale=scale_regions,
        resolution=res_regions,
        sigma_eta=robust_sigma(p_all["deta"].to_numpy()),
        sigma_phi=robust_sigma(p_all["dphi"].to_numpy()),
        mass_gev=spec.mass_gev, metadata={**meta, "complexity": {
            q: sum(r.formula.complexity for r in getattr_regions)
            for q, getattr_regions in (("efficiency", eff_regions), ("scale", scale_regions),
                                       ("resolution", res_regions))}})
    if estimators:
        obj.metadata["_estimators"] = estimators  # not serialised (dropped by to_dict)
    return obj


def fit_response(table: pd.DataFrame, *, objects: Sequence[str] | None = None,
                 method: str = "kan", eta_max: float = 2.5, seed: int = 0,
                 options: Mapping[str, Any] | None = None, max_rows: int = 20_000,
                 regions: str = "auto", max_regions: int = 4,
                 source: Any = None) -> ResponseModel:
    """Learn the response of every object type present in a full-simulation table.

    Arguments:
        table: Full-simulation output (:func:`ariasim.simulators.collider.simulate`).
        objects: Object types to learn (default: those with enough truth particles).
        method, eta_max, seed, options, max_rows, regions, max_regions: See
            :func:`fit_object`.
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
    t0 = time.perf_counter()
    for k, name in enumerate(names):
        d = prepare_object(table, name)
        fitted[name] = fit_object(d, name, method=method, eta_max=eta_max, seed=seed + k,
                                  options=options, max_rows=max_rows, regions=regions,
                                  max_regions=max_regions)
    return ResponseModel(fitted, {"source": str(source) if source else "table", "method": method,
                                  "eta_max": eta_max, "seed": seed, "regions": regions,
                                  "max_rows": max_rows, "options": dict(options or {}),
                                  "fit_s": time.perf_counter() - t0})
