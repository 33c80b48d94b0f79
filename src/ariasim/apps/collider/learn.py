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
efficiency and the response get their own regions (:mod:`.regions`); a formula is learned
in each by the estimators given to :class:`ResponseLearner` (the compact physics-form
library of :mod:`.compact`, the default; the KAN estimators, the
polynomial likelihood learners of :mod:`ariasim.surrogates.polynomial`, or symbolic
regression on per-bin estimates, :mod:`.binned`); :func:`learner_for_method` maps the
command line's ``--method compact|kan|sr|poly`` to them.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024).
    Nix and Weigend, ICNN 1994 (heteroscedastic likelihood).
    Scott and Knott, Biometrics 30 (1974) 507 (binary segmentation); Killick et al.,
    JASA 107 (2012) 1590 (change-point detection with penalised costs).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from ariasim.apps.collider.binned import BinnedSymbolicClassifier, BinnedSymbolicRegressor
from ariasim.apps.collider.card import card_valid, constant_formula, response_formulas, to_delphes
from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.apps.collider.objects import OBJECTS, REQUIRED_COLUMNS, prepare_object, robust_sigma
from ariasim.apps.collider.regions import EtaRegions, in_region
from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula
from ariasim.utils import spawn_seeds

__all__ = [
    "KAN_DEFAULTS",
    "METHODS",
    "TIMINGS_KEY",
    "ResponseLearner",
    "check_options",
    "fit_response",
    "learner_for_method",
]

#: Metadata key of the wall-clock timings (in memory only: keys starting with ``_`` are not
#: written to the model file, so that the same inputs and seed give the same file bytes).
#: Per object: efficiency_fit_s, response_fit_s, symbolic_s, fit_s and ``fits`` (per
#: quantity and |eta| region: train_s, symbolic_s); on the model: fit_s.
TIMINGS_KEY = "_timings"


# ---------------------------------------------------------------------- learners
def _kan_numeric(est: Any) -> list[list[int]]:
    rep = getattr(est, "symbolic_report_", None)
    if rep is None or rep.empty:
        return []
    return [[int(r.layer), int(r.i), int(r.j)] for r in rep.itertuples() if r.numeric]


def _finite_on_box(
    formulas: Sequence[Formula], X: np.ndarray, *, positive: bool = False, n: int = 41
) -> bool:
    """True when every formula is finite (and positive with ``positive``) on an ``n x n``
    grid over the bounding box of ``X``: the card evaluates the formulas on the whole
    (clamped pT or E) x (|eta| region) rectangle, not only where the data lie."""
    g0, g1 = np.meshgrid(
        np.linspace(X[:, 0].min(), X[:, 0].max(), n), np.linspace(X[:, 1].min(), X[:, 1].max(), n)
    )
    G = np.column_stack([g0.ravel(), g1.ravel()])
    with np.errstate(all="ignore"):
        for f in formulas:
            v = np.broadcast_to(np.asarray(f(G), dtype=float), (G.shape[0],))
            if not np.isfinite(v).all() or (positive and not (v > 0).all()):
                return False
    return True


def _symbolic_safe(
    est: Any,
    X: np.ndarray,
    keys: Sequence[str],
    *,
    positive: Sequence[str] = (),
    refit: bool = True,
) -> tuple[dict[str, Formula], bool]:
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


def _configured(proto: Any, seed: int, quantity: str, kind: str) -> Any:
    """A clone of ``proto`` with its seed, input names and (response) likelihood set: the
    likelihood follows the object kind (Delphes' log-normal track and Gaussian
    calorimeter smearing)."""
    est = clone(proto)
    params = est.get_params(deep=False)
    upd: dict[str, Any] = {"random_state": seed}
    if "variable_names" in params:
        upd["variable_names"] = ["logx", "abseta"]
    if "target_name" in params:
        upd["target_name"] = "efficiency" if quantity == "efficiency" else "ratio"
    if quantity == "response" and "loss" in params:
        upd["loss"] = "lognormal" if kind == "track" else "gaussian"
    return est.set_params(**{k: v for k, v in upd.items() if k in params})


def _fit_one(
    proto: Any, X: np.ndarray, y: np.ndarray, seed: int, quantity: str, kind: str
) -> tuple[dict[str, Formula], dict[str, Any], Any]:
    """Fit a configured clone; its formulas (a KAN's by symbolic extraction, redone with the
    safe library when not finite on the data's box) and the fit details."""
    est = _configured(proto, seed, quantity, kind)
    t0 = time.perf_counter()
    est.fit(X, y)
    info: dict[str, Any] = {"train_s": time.perf_counter() - t0}
    if callable(getattr(est, "symbolic", None)):  # a KAN: extract its formulas
        from ariasim.surrogates.kan_plot import edge_curves

        t1 = time.perf_counter()
        keys = ["probability"] if quantity == "efficiency" else ["mean", "sigma"]
        forms, redone = _symbolic_safe(
            est, X, keys, positive=[] if quantity == "efficiency" else ["sigma"]
        )
        info.update(
            symbolic_s=time.perf_counter() - t1,
            safe_library=redone,
            edges=int(getattr(est, "n_active_edges_", 0)),
            numeric_edges=_kan_numeric(est),
            curves=edge_curves(est),
        )
    else:
        forms = est.formulas_
    return dict(forms), info, est


def _pop_times(info: dict[str, Any], quantity: str, lo: float, hi: float) -> dict[str, Any]:
    """Move a fit's wall-clock timings out of its (saved) details."""
    return {
        "quantity": quantity,
        "eta": [lo, hi],
        "train_s": info.pop("train_s", 0.0),
        "symbolic_s": info.pop("symbolic_s", 0.0),
    }


def check_options(
    *,
    eta_max: Any = 2.5,
    max_rows: Any = 20_000,
    objects: Sequence[str] | None = None,
    random_state: Any = 0,
) -> None:
    """Validate the options every learner shares (a :class:`ConfigError` naming the
    parameter as the command line spells it: eta_max, max_rows, objects, seed).

    Example:
        >>> check_options(max_rows=0)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'max_rows': must be a positive integer, got 0
    """
    from ariasim.utils import spawn_seeds

    try:
        eta = float(eta_max)
    except (TypeError, ValueError):
        eta = float("nan")
    if not (np.isfinite(eta) and eta > 0):
        raise ConfigError(f"must be a finite |eta| > 0, got {eta_max!r}", parameter="eta_max")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ConfigError(f"must be a positive integer, got {max_rows!r}", parameter="max_rows")
    unknown = [o for o in (objects or []) if o not in OBJECTS]
    if unknown:
        raise ConfigError(
            f"unknown object type(s) {', '.join(map(repr, unknown))} (known: {', '.join(OBJECTS)})",
            parameter="objects",
        )
    if objects is not None and len(set(objects)) != len(list(objects)):
        raise ConfigError(f"an object type is given twice: {list(objects)}", parameter="objects")
    spawn_seeds(random_state, 1)  # a negative or non-integer seed: an error naming seed


def _check_counts(d: pd.DataFrame, name: str, eta_max: float, source: Any) -> pd.DataFrame:
    """The rows of ``d`` within |eta| <= eta_max; an error when too few to learn from."""
    d = d[np.abs(d["eta"]) <= eta_max]
    n_pass = int(d["passed"].sum())
    if len(d) < 50 or n_pass < 50:
        raise InputError(
            f"too few {name} candidates to learn a response ({len(d)} truth, "
            f"{n_pass} reconstructed within |eta| <= {eta_max:g}; need >= 50 "
            "each)",
            path=source,
            column="object_type",
        )
    return d


def _same_kind(a: Any, b: Any) -> bool:
    return b is None or type(a) is type(b)


class ResponseLearner(BaseEstimator):
    """Learn a detector response (:class:`ResponseModel`) from a full-simulation table.

    Per object type and learned |eta| region, a clone of ``efficiency`` (a binary
    classifier of *passed*) and of ``response`` (a regressor of the reco/truth ratio,
    its ``loss`` set to ``"lognormal"`` for tracks and ``"gaussian"`` for calorimeter
    objects) is fitted on (log x, |eta|), x = pT for tracks and E for calorimeter
    objects. Each must expose ``formulas_`` (``"probability"``; ``"mean"`` and
    ``"sigma"``) or, like the KAN estimators, a ``symbolic()`` method. A region's formula
    that breaks the card's module semantics (:func:`card_valid`) is replaced by a fit of
    the ``fallback_*`` estimator on the same rows (recorded in ``metadata["fallbacks"]``).
    An estimator with a ``fit_card(rows, spec, eta_range)`` method (the compact learners
    of :mod:`.compact`) instead returns the card's formulas directly from the region's
    rows, with its accuracy-vs-size front (``metadata["fronts"]``, the tail fractions in
    ``metadata["tail_fraction"]`` and the regions without a consistent form in
    ``metadata["no_consistent_form"]``). Seeds: one per object, then one per region and
    quantity, split with :func:`ariasim.utils.spawn_seeds`.

    Arguments:
        efficiency: Classifier (e.g. :class:`~ariasim.surrogates.KANClassifier`,
            :class:`~ariasim.surrogates.PolynomialClassifier`,
            :class:`BinnedSymbolicClassifier`).
        response: Regressor with a ``loss`` parameter (e.g.
            :class:`~ariasim.surrogates.KANRegressor`,
            :class:`~ariasim.surrogates.PolynomialRegressor`,
            :class:`BinnedSymbolicRegressor`).
        regions: :class:`EtaRegions` (default ``EtaRegions()``) or ``"single"`` (one region).
        fallback_efficiency, fallback_response: Used where a formula breaks the card
            semantics, and when the KAN symbolic extraction is unavailable (None: no
            fallback). Default: the polynomial learners.
        eta_max: |eta| acceptance.
        max_rows: Subsample cap per fit (per region and quantity).
        objects: Object types (keys of :data:`OBJECTS`); default those with >= 50 truth
            particles.
        label: Method label written into the model metadata (default from the class).
        random_state: Seed.

    Attributes:
        model_: The learned :class:`ResponseModel`.
        estimators_: ``{object: [(description, fitted estimator), ...]}``.

    Example:
        >>> from ariasim.surrogates.polynomial import PolynomialClassifier
        >>> from ariasim.surrogates.polynomial import PolynomialRegressor
        >>> learner = ResponseLearner(PolynomialClassifier(), PolynomialRegressor(),
        ...                           regions="single", random_state=1)
        >>> learner.get_params()["regions"]
        'single'
    """

    def __init__(
        self,
        efficiency: Any = None,
        response: Any = None,
        *,
        regions: Any = None,
        fallback_efficiency: Any = "poly",
        fallback_response: Any = "poly",
        eta_max: float = 2.5,
        max_rows: int = 20_000,
        objects: Sequence[str] | None = None,
        label: str | None = None,
        random_state: Any = 0,
    ):
        self.efficiency = efficiency
        self.response = response
        self.regions = regions
        self.fallback_efficiency = fallback_efficiency
        self.fallback_response = fallback_response
        self.eta_max = eta_max
        self.max_rows = max_rows
        self.objects = objects
        self.label = label
        self.random_state = random_state

    # ------------------------------------------------------------ configuration
    def _resolved(self) -> tuple[Any, Any, Any, Any, Any, str]:
        from ariasim.surrogates.polynomial import PolynomialClassifier, PolynomialRegressor

        eff = self.efficiency if self.efficiency is not None else PolynomialClassifier()
        resp = self.response if self.response is not None else PolynomialRegressor()
        fe = (
            PolynomialClassifier()
            if isinstance(self.fallback_efficiency, str)
            else self.fallback_efficiency
        )
        fr = (
            PolynomialRegressor()
            if isinstance(self.fallback_response, str)
            else self.fallback_response
        )
        if self.regions is None:
            reg: Any = EtaRegions()
        elif isinstance(self.regions, str):
            if self.regions not in ("auto", "single"):
                raise ConfigError(
                    f"regions must be 'auto', 'single' or an EtaRegions, got {self.regions!r}",
                    parameter="regions",
                )
            reg = EtaRegions(max_regions=1 if self.regions == "single" else 4)
        else:
            reg = self.regions
        for name, est in (("efficiency", eff), ("response", resp)):
            if not (hasattr(est, "fit") or hasattr(est, "fit_card")):
                raise ConfigError(
                    f"{name} must be an estimator (with fit), got {est!r}", parameter=name
                )
        label = self.label or type(eff).__name__
        return eff, resp, fe, fr, reg, label

    # ------------------------------------------------------------ fitting
    def fit(
        self,
        X: pd.DataFrame,
        y: None = None,
        sample_weight: None = None,
        *,
        source: Any = None,
        progress: Callable[[str], None] | None = None,
        done: Mapping[str, ObjectResponse] | None = None,
        on_object: Callable[[str, ObjectResponse], None] | None = None,
    ) -> ResponseLearner:
        """Learn every object's response from the full-simulation table ``X``.

        Arguments:
            X: Full-simulation table (:data:`REQUIRED_COLUMNS`).
            source: Its file name(s), for the metadata and error messages.
            progress: Called with a line of text as each object, quantity and |eta|
                region starts.
            done: Objects already learned with these options and table (``--resume``):
                kept, not refitted (each object has its own seed, so the others do not
                change).
            on_object: Called with each newly learned object (e.g. to keep it for a
                resume).
        """
        table = X
        check_options(
            eta_max=self.eta_max,
            max_rows=self.max_rows,
            objects=self.objects,
            random_state=self.random_state,
        )
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(
                "not a full-simulation table: missing columns",
                path=source,
                column=", ".join(missing),
            )
        pdg = np.abs(table["pdg"].to_numpy())
        names = (
            list(self.objects)
            if self.objects
            else [n for n, s in OBJECTS.items() if np.isin(pdg, s.pdg).sum() >= 50]
        )
        if not names:
            counts = {n: int(np.isin(pdg, s.pdg).sum()) for n, s in OBJECTS.items()}
            raise InputError(
                "too few truth particles: no object type has >= 50 (found "
                + ", ".join(f"{n} {c}" for n, c in counts.items() if c)
                + ")",
                path=source,
                column="pdg",
            )
        resolved = self._resolved()
        # every object's rows and counts before the first (slow) fit
        prepared = {name: prepare_object(table, name) for name in names}
        for name, d in prepared.items():
            _check_counts(d, name, float(self.eta_max), source)
        t0 = time.perf_counter()
        fitted: dict[str, ObjectResponse] = {}
        self.estimators_: dict[str, list[tuple[str, Any]]] = {}
        seeds = spawn_seeds(self.random_state, len(names))
        for k, (name, seed) in enumerate(zip(names, seeds, strict=True)):
            if done and name in done:
                fitted[name] = done[name]
                if progress is not None:
                    progress(f"{name} ({k + 1}/{len(names)}): kept from the interrupted run")
                continue
            if progress is not None:
                progress(f"{name} ({k + 1}/{len(names)}): learning")
            fitted[name], self.estimators_[name] = self._fit_object(
                prepared[name], name, seed, resolved, progress=progress
            )
            if on_object is not None:
                on_object(name, fitted[name])
        self.model_ = ResponseModel(
            fitted,
            {
                "source": str(source) if source else "table",
                "method": resolved[5],
                "eta_max": self.eta_max,
                "seed": self.random_state if isinstance(self.random_state, int) else None,
                "regions": "single" if getattr(resolved[4], "max_regions", 4) == 1 else "auto",
                "max_rows": self.max_rows,
                "options": {"efficiency": repr(resolved[0]), "response": repr(resolved[1])},
                TIMINGS_KEY: {"fit_s": time.perf_counter() - t0},
            },
        )
        return self

    def fit_object(self, d: pd.DataFrame, name: str) -> ObjectResponse:
        """Learn one object's response from :func:`prepare_object` rows (seed
        ``random_state``); the fitted estimators go to ``estimators_[name]``."""
        obj, ests = self._fit_object(d, name, self.random_state, self._resolved())
        self.estimators_ = {**getattr(self, "estimators_", {}), name: ests}
        return obj

    def _fit_object(
        self,
        d: pd.DataFrame,
        name: str,
        seed: Any,
        resolved: tuple[Any, Any, Any, Any, Any, str],
        progress: Callable[[str], None] | None = None,
    ) -> tuple[ObjectResponse, list[tuple[str, Any]]]:
        eff_proto, resp_proto, fb_eff, fb_resp, finder, label = resolved
        if name not in OBJECTS:
            raise ConfigError(
                f"unknown object type {name!r} (known: {sorted(OBJECTS)})", parameter="objects"
            )
        spec = OBJECTS[name]
        eta_max = float(self.eta_max)
        d = _check_counts(d, name, eta_max, None)
        n_pass = int(d["passed"].sum())
        fallback = None
        if callable(getattr(eff_proto, "symbolic", None)) or callable(
            getattr(resp_proto, "symbolic", None)
        ):
            try:
                import ariasim.surrogates.kan_symbolic  # noqa: F401
            except ImportError as exc:
                if fb_eff is None or fb_resp is None:
                    raise
                fallback = f"KAN symbolic extraction unavailable ({exc}); used the fallback"
                eff_proto, resp_proto, label = fb_eff, fb_resp, "poly"
        rng_seed, eff_seed, resp_seed = spawn_seeds(seed, 3)
        rng = np.random.default_rng(rng_seed)
        eff_edges = finder.edges(d, spec.kind, eta_max, quantity="efficiency")
        resp_edges = finder.edges(d, spec.kind, eta_max, quantity="response", obj=name)
        a_all = np.abs(d["eta"].to_numpy())
        p_all = d[d["passed"]]
        xcol = spec.x
        meta: dict[str, Any] = {"method": label, "n_truth": len(d), "n_passed": n_pass}
        timing: dict[str, Any] = {"efficiency_fit_s": 0.0, "response_fit_s": 0.0, "symbolic_s": 0.0}
        fit_times: list[dict[str, Any]] = []
        details: list[dict[str, Any]] = []
        estimators: list[tuple[str, Any]] = []
        eff_regions: list[Region] = []
        compact: list[dict[str, Any]] = []  # --method compact: the fronts per region
        tails: list[dict[str, Any]] = []
        for k, ((lo, hi), s) in enumerate(
            zip(eff_edges, spawn_seeds(eff_seed, len(eff_edges)), strict=True)
        ):
            if progress is not None:
                progress(
                    f"  {name}: efficiency, |eta| in ({lo:g}, {hi:g}] ({k + 1}/{len(eff_edges)})"
                )
            r = d[in_region(a_all, lo, hi)]
            kk = int(r["passed"].sum())
            det: dict[str, Any] = {"quantity": "efficiency", "eta": [lo, hi], "n": len(r)}
            if len(r) < 200 or min(kk, len(r) - kk) < 10:
                f = constant_formula(kk / max(len(r), 1), "efficiency", meta)
                det["form"] = "constant"
            elif callable(getattr(eff_proto, "fit_card", None)):  # compact: binned library
                t1 = time.perf_counter()
                f, cinfo = eff_proto.fit_card(r, spec, (lo, hi))
                f = f.replace(metadata=dict(meta))
                compact.append({"eta": [lo, hi], **cinfo})
                fit_times.append(
                    _pop_times({"train_s": time.perf_counter() - t1}, "efficiency", lo, hi)
                )
                timing["efficiency_fit_s"] += fit_times[-1]["train_s"]
                det["form"] = cinfo["front"][cinfo["chosen"]]["name"]
            else:
                sub = r.iloc[rng.permutation(len(r))[: self.max_rows]]
                X = np.column_stack(
                    [np.log(sub[xcol].to_numpy(float)), np.abs(sub["eta"].to_numpy(float))]
                )
                yk = sub["passed"].to_numpy(int)
                forms, info, est = _fit_one(eff_proto, X, yk, s, "efficiency", spec.kind)
                estimators.append((f"efficiency, |eta| in ({lo}, {hi}]", est))
                x_range = (float(r[xcol].min()), float(r[xcol].max()))
                f = to_delphes(
                    forms["probability"], xcol, *x_range, "efficiency", "", meta, (lo, hi)
                )
                if not _same_kind(eff_proto, fb_eff) and not card_valid(
                    f, "efficiency", spec.kind, x_range, (lo, hi)
                ):
                    forms, extra, _ = _fit_one(fb_eff, X, yk, s, "efficiency", spec.kind)
                    f = to_delphes(
                        forms["probability"], xcol, *x_range, "efficiency", "", meta, (lo, hi)
                    )
                    info["fallback"] = "poly (the learned formula breaks the module semantics)"
                    info["train_s"] += extra["train_s"]
                fit_times.append(_pop_times(info, "efficiency", lo, hi))
                timing["efficiency_fit_s"] += fit_times[-1]["train_s"] + fit_times[-1]["symbolic_s"]
                timing["symbolic_s"] += fit_times[-1]["symbolic_s"]
                det.update(info)
            details.append(det)
            eff_regions.append(Region(lo, hi, f))
        scale_regions: list[Region] = []
        res_regions: list[Region] = []
        a_pass = np.abs(p_all["eta"].to_numpy())
        for k, ((lo, hi), s) in enumerate(
            zip(resp_edges, spawn_seeds(resp_seed, len(resp_edges)), strict=True)
        ):
            if progress is not None:
                progress(
                    f"  {name}: scale and resolution, |eta| in ({lo:g}, {hi:g}] "
                    f"({k + 1}/{len(resp_edges)})"
                )
            p = p_all[in_region(a_pass, lo, hi)]
            if len(p) < 50:  # cannot happen for learned regions (>= 200 per region)
                raise InputError(
                    f"too few reconstructed {name} in |eta| region ({lo}, {hi}] "
                    f"({len(p)}; need >= 50)",
                    column="object_type",
                )
            if callable(getattr(resp_proto, "fit_card", None)):  # compact: binned library
                t1 = time.perf_counter()
                (scale, res), cinfo = resp_proto.fit_card(p, spec, (lo, hi))
                scale = scale.replace(metadata=dict(meta))
                res = res.replace(metadata=dict(meta))
                for q in ("scale", "resolution"):
                    compact.append({"eta": [lo, hi], **cinfo[q]})
                tails.append({"eta": [lo, hi], "tail": cinfo["tail"]})
                fit_times.append(
                    _pop_times({"train_s": time.perf_counter() - t1}, "response", lo, hi)
                )
                timing["response_fit_s"] += fit_times[-1]["train_s"]
                details.append({"quantity": "response", "eta": [lo, hi], "n": len(p)})
                scale_regions.append(Region(lo, hi, scale))
                res_regions.append(Region(lo, hi, res))
                continue
            sub = p.iloc[rng.permutation(len(p))[: self.max_rows]]
            X = np.column_stack(
                [np.log(sub[xcol].to_numpy(float)), np.abs(sub["eta"].to_numpy(float))]
            )
            yr = sub["ratio"].to_numpy(float)
            forms, info, est = _fit_one(resp_proto, X, yr, s, "response", spec.kind)
            estimators.append((f"response, |eta| in ({lo}, {hi}]", est))
            x_range = (float(p[xcol].min()), float(p[xcol].max()))
            scale, res = response_formulas(forms, spec, x_range, (lo, hi), meta, X)
            if not _same_kind(resp_proto, fb_resp) and not (
                card_valid(scale, "scale", spec.kind, x_range, (lo, hi))
                and card_valid(res, "resolution", spec.kind, x_range, (lo, hi))
            ):
                forms, extra, _ = _fit_one(fb_resp, X, yr, s, "response", spec.kind)
                scale, res = response_formulas(forms, spec, x_range, (lo, hi), meta, X)
                info["fallback"] = "poly (the learned formula breaks the module semantics)"
                info["train_s"] += extra["train_s"]
            fit_times.append(_pop_times(info, "response", lo, hi))
            timing["response_fit_s"] += fit_times[-1]["train_s"] + fit_times[-1]["symbolic_s"]
            timing["symbolic_s"] += fit_times[-1]["symbolic_s"]
            details.append({"quantity": "response", "eta": [lo, hi], "n": len(p), **info})
            scale_regions.append(Region(lo, hi, scale))
            res_regions.append(Region(lo, hi, res))
        numeric = [
            {"quantity": t["quantity"], "eta": t["eta"], "edges": t["numeric_edges"]}
            for t in details
            if t.get("numeric_edges")
        ]
        fallbacks = [
            {"quantity": t["quantity"], "eta": t["eta"], "fallback": t["fallback"]}
            for t in details
            if t.get("fallback")
        ]
        if fallbacks:
            meta["fallbacks"] = fallbacks
        if compact:
            meta["fronts"] = compact
            meta["tail_fraction"] = tails
            bad = [
                {"quantity": c["quantity"], "eta": c["eta"]} for c in compact if not c["consistent"]
            ]
            if bad:
                meta["no_consistent_form"] = bad
        timing["fit_s"] = timing["efficiency_fit_s"] + timing["response_fit_s"]
        timing["fits"] = fit_times
        meta["regions"] = {
            "efficiency": [list(e) for e in eff_edges],
            "response": [list(e) for e in resp_edges],
        }
        meta["fits"] = details
        if any("edges" in t for t in details):
            meta["numeric_edges"] = numeric
        if fallback:
            meta["fallback"] = fallback
        obj = ObjectResponse(
            name,
            spec.kind,
            spec.pdg,
            eta_max,
            efficiency=eff_regions,
            scale=scale_regions,
            resolution=res_regions,
            sigma_eta=robust_sigma(p_all["deta"].to_numpy()),
            sigma_phi=robust_sigma(p_all["dphi"].to_numpy()),
            mass_gev=spec.mass_gev,
            metadata={
                **meta,
                "complexity": {
                    q: sum(r.formula.complexity for r in regs)
                    for q, regs in (
                        ("efficiency", eff_regions),
                        ("scale", scale_regions),
                        ("resolution", res_regions),
                    )
                },
            },
        )
        # wall-clock timings stay in memory (metadata keys starting with "_" are not
        # saved): the model file depends on the inputs and the seed only
        obj.metadata[TIMINGS_KEY] = timing
        return obj, estimators


#: The method names of :func:`learner_for_method` (``--method``), the default first.
METHODS = ("compact", "kan", "sr", "poly")

#: KAN defaults of ``--method kan`` (one home): a small network, short training.
KAN_DEFAULTS: dict[str, Any] = {
    "hidden": (3,),
    "grid_size": 5,
    "max_epochs": 60,
    "batch_size": 1024,
}


def learner_for_method(
    method: str = "compact",
    *,
    epochs: int | None = None,
    regions: str = "auto",
    max_regions: int | None = None,
    **kwargs: Any,
) -> ResponseLearner:
    """The :class:`ResponseLearner` of a method name (``ariasim fit response --method``).

    Arguments:
        method: ``"compact"`` (the default: a library of physics forms fitted to binned
            estimates, the smallest consistent with the best chosen; :mod:`.compact`),
            ``"kan"`` (KAN classifier and heteroscedastic regressor, symbolic
            extraction; :data:`KAN_DEFAULTS`), ``"sr"`` (symbolic regression on binned
            estimates, :func:`default_symbolic`) or ``"poly"`` (polynomial likelihood).
        epochs: KAN training epochs (``"kan"`` only; default 60).
        regions: ``"auto"`` (learned |eta| regions) or ``"single"``.
        max_regions: At most this many learned regions per quantity (``"auto"`` only;
            default 4).
        **kwargs: Further :class:`ResponseLearner` arguments (eta_max, max_rows, objects,
            random_state).
    """
    from ariasim.surrogates.polynomial import PolynomialClassifier, PolynomialRegressor

    if method not in METHODS:
        raise ConfigError(
            f"must be one of {', '.join(map(repr, METHODS))}, got {method!r}", parameter="method"
        )
    if epochs is not None and method != "kan":
        raise ConfigError(f"applies to --method kan only, not {method!r}", parameter="epochs")
    if regions not in ("auto", "single"):
        raise ConfigError(f"must be 'auto' or 'single', got {regions!r}", parameter="regions")
    if epochs is not None and (isinstance(epochs, bool) or epochs < 1):
        raise ConfigError(f"must be a positive integer, got {epochs!r}", parameter="epochs")
    if max_regions is not None and regions == "single":
        raise ConfigError("applies to --regions auto only, not 'single'", parameter="max_regions")
    max_regions = 4 if max_regions is None else max_regions
    if isinstance(max_regions, bool) or max_regions < 1:
        raise ConfigError(
            f"must be a positive integer, got {max_regions!r}", parameter="max_regions"
        )
    check_options(
        **{
            k: v
            for k, v in kwargs.items()
            if k in ("eta_max", "max_rows", "objects", "random_state")
        }
    )
    finder = EtaRegions(max_regions=1 if regions == "single" else max_regions)
    if method == "compact":
        from ariasim.apps.collider.compact import CompactClassifier, CompactRegressor

        eff: Any = CompactClassifier()
        resp: Any = CompactRegressor()
    elif method == "kan":
        from ariasim.surrogates.kan import KANClassifier, KANRegressor

        opts = {**KAN_DEFAULTS, **({"max_epochs": epochs} if epochs is not None else {})}
        eff = KANClassifier(**opts)
        resp = KANRegressor(**opts)
    elif method == "sr":
        eff, resp = BinnedSymbolicClassifier(), BinnedSymbolicRegressor()
    else:
        eff, resp = PolynomialClassifier(), PolynomialRegressor()
    return ResponseLearner(eff, resp, regions=finder, label=method, **kwargs)


def fit_response(
    table: pd.DataFrame,
    *,
    objects: Sequence[str] | None = None,
    method: str = "compact",
    eta_max: float = 2.5,
    seed: int = 0,
    max_rows: int = 20_000,
    regions: str = "auto",
    max_regions: int | None = None,
    epochs: int | None = None,
    source: Any = None,
) -> ResponseModel:
    """Convenience: ``learner_for_method(method, ...).fit(table).model_``."""
    learner = learner_for_method(
        method,
        epochs=epochs,
        regions=regions,
        max_regions=max_regions,
        objects=objects,
        eta_max=eta_max,
        max_rows=max_rows,
        random_state=seed,
    )
    return learner.fit(table, source=source).model_
