r"""Before/after diagnostics of a domain-shift correction.

:func:`compare_samples` compares a source sample, its corrected version (morphed events, or
the source with per-event weights) and the target sample:

* per feature the 1-D Wasserstein distance :math:`W_1` of source and corrected sample to the
  target (:func:`ariasim.metrics.wasserstein_1d`, weighted);
* the weighted Pearson correlation matrices of the three samples and the largest absolute
  difference to the target's;
* the classifier two-sample AUC (:func:`ariasim.metrics.classifier_test`, weighted) before
  and after the correction, with its standard error and the AUC's null standard deviation;
* bootstrap standard errors of the corrected (and target) sample's summary figures: weighted
  mean, standard deviation and the 10/50/90 % quantiles of every feature, and their pulls.

A :math:`W_1` value means little without the value two samples of the *same* distribution
give at the same sizes: :func:`statistical_floor` measures it ("the floor of two fresh
samples"), and :class:`ShiftDiagnostics` then reports :math:`W_1/\text{floor}` ratios.
Sizes: for two independent samples of :math:`n_a` and :math:`n_b` events of one
distribution, :math:`\sqrt{n}\,W_1` converges in distribution (del Barrio, Giné and Matrán
1999), so the expected :math:`W_1` scales as :math:`\sqrt{1/n_a + 1/n_b}`;
:meth:`StatisticalFloor.scaled` moves a floor measured at one pair of (Kish effective)
sizes to another. A floor measured on the two halves of a fresh sample of :math:`n` events
is thus multiplied by :math:`\sqrt{1/2}` for a comparison of two full samples of :math:`n`.
The null :math:`W_1` has a relative spread of about 37 % (measured, Gaussian and exponential
features, 2,000 and 20,000 events), so even a perfect correction exceeds twice the mean
floor in about 2-3 % of the features: the floor is the mean over random re-splits of the
pooled pair, not one noisy value, to keep the ratio's denominator precise.

The plots (:func:`plot_features`, :func:`plot_correlations`) return matplotlib figures for
:meth:`ariasim.report.HtmlReport.figure` and optionally write a PNG.

References:
    del Barrio, E., Giné, E., Matrán, C. (1999). Central limit theorems for the Wasserstein
    distance between the empirical and the true distributions. Ann. Probab. 27, 1009-1071.

    Lopez-Paz, D., Oquab, M. (2017). Revisiting classifier two-sample tests. ICLR.

    Efron, B., Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError, InputError
from ariasim.metrics import classifier_test, effective_sample_size, wasserstein_1d
from ariasim.report import HtmlReport
from ariasim.utils import as_generator, atomic_path, spawn_seeds, to_jsonable

__all__ = [
    "QUANTILES",
    "ShiftDiagnostics",
    "StatisticalFloor",
    "compare_samples",
    "feature_matrix",
    "plot_correlations",
    "plot_features",
    "report_diagnostics",
    "sample_weights",
    "statistical_floor",
    "weighted_correlation",
    "weighted_quantiles",
]

#: The quantiles summarised (and bootstrapped) for every feature.
QUANTILES = (0.1, 0.5, 0.9)
_STATS = ("mean", "std", *(f"q{round(100 * q)}" for q in QUANTILES))
_CLASSIFIER_KEYS = {"n_folds", "max_samples", "max_iter", "n_threads"}


# ---------------------------------------------------------------------------------------------
# input checks


def feature_matrix(
    df: Any, columns: Sequence[str], label: str, *, allow_bool: bool = True
) -> np.ndarray:
    """The named columns of a DataFrame as a float64 ``(n, d)`` matrix, checked.

    Raises :class:`~ariasim.errors.InputError` naming the sample (``label``) and the column
    when ``df`` is not a DataFrame, is empty, lacks a column, or a column is not numeric or
    holds NaN/infinite values.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"the {label} sample must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise InputError(f"the {label} sample is empty")
    kinds = "biuf" if allow_bool else "iuf"
    for c in columns:
        if c not in df.columns:
            raise InputError(f"missing from the {label} sample", column=str(c))
        kind = df[c].dtype.kind
        if kind not in kinds:
            raise InputError(
                f"not numeric in the {label} sample (dtype {df[c].dtype})", column=str(c)
            )
    x = df[list(columns)].to_numpy(dtype=np.float64, copy=True)
    bad = ~np.isfinite(x)
    if bad.any():
        col = columns[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise InputError(
            f"{int(bad.sum())} NaN or infinite values in the {label} sample", column=str(col)
        )
    return x


def sample_weights(weights: Any, n: int, parameter: str) -> np.ndarray:
    """Per-event weights as a float64 array (ones for ``None``): 1-D, length ``n``, finite,
    non-negative, positive sum; else :class:`~ariasim.errors.ConfigError` naming
    ``parameter``."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights.to_numpy() if isinstance(weights, pd.Series) else weights)
    if w.dtype.kind not in "biuf":
        raise ConfigError(f"weights must be numeric, got dtype {w.dtype}", parameter=parameter)
    w = w.astype(np.float64).reshape(-1) if w.ndim == 2 and 1 in w.shape else w.astype(float)
    if w.ndim != 1 or w.shape[0] != n:
        raise ConfigError(
            f"expected {n} weights (one per row), got shape {w.shape}", parameter=parameter
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ConfigError(
            "weights must be finite, non-negative and not all zero", parameter=parameter
        )
    return w


def _columns(features: Sequence[str] | str, parameter: str) -> tuple[str, ...]:
    if isinstance(features, str):
        features = [features]
    cols = tuple(str(f) for f in features)
    if len(set(cols)) != len(cols):
        raise ConfigError(f"duplicate names in {list(cols)}", parameter=parameter)
    return cols


def _classifier_kwargs(classifier: Mapping[str, Any] | None) -> dict[str, Any]:
    kw = dict(classifier or {})
    unknown = set(kw) - _CLASSIFIER_KEYS
    if unknown:
        raise ConfigError(
            f"unknown classifier_test options {sorted(unknown)}; allowed: "
            f"{sorted(_CLASSIFIER_KEYS)}",
            parameter="classifier",
        )
    return kw


# ---------------------------------------------------------------------------------------------
# weighted statistics


def weighted_quantiles(
    x: np.ndarray, w: np.ndarray, q: Sequence[float], *, order: np.ndarray | None = None
) -> np.ndarray:
    """Weighted quantiles of the columns of ``x`` (``(n, d)``): for each ``q`` the smallest
    value whose cumulative weight reaches ``q`` times the total (the inverse of the
    weighted empirical CDF, as in :func:`ariasim.metrics.wasserstein_1d`).

    ``w`` may be ``(n,)`` or ``(n, k)`` (``k`` weight vectors at once, e.g. bootstrap
    replicas); ``order`` is ``argsort(x, axis=0)`` if already known. Returns an array of
    shape ``(len(q), d)`` or ``(len(q), d, k)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if order is None:
        order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    single = w.ndim == 1
    w2 = w[:, None] if single else w
    out = np.empty((len(q), x.shape[1], w2.shape[1]))
    for j in range(x.shape[1]):
        cw = np.cumsum(w2[order[:, j]], axis=0)  # (n, k)
        for i, qi in enumerate(q):
            idx = np.sum(cw < qi * cw[-1], axis=0)
            out[i, j] = xs[np.minimum(idx, x.shape[0] - 1), j]
    return out[..., 0] if single else out


def weighted_correlation(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation matrix of the columns of ``x`` (NaN for a constant
    column)."""
    w = w / w.sum()
    m = w @ x
    xc = x - m
    cov = (xc * w[:, None]).T @ xc
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = np.nan
    np.fill_diagonal(corr, np.where(sd > 0, 1.0, np.nan))
    return np.clip(corr, -1.0, 1.0)


def _summary(x: np.ndarray, w: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``(n_stats, d, k)`` summary figures for weight vectors ``w`` of shape ``(n, k)``."""
    tot = w.sum(axis=0)  # (k,)
    mean = (x.T @ w) / tot  # (d, k)
    var = ((x**2).T @ w) / tot - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    qs = weighted_quantiles(x, w, QUANTILES, order=order)  # (q, d, k)
    return np.concatenate([mean[None], std[None], qs], axis=0)


#: Above this many events the bootstrap runs on a random subsample (see :func:`_bootstrap`).
BOOTSTRAP_MAX_ROWS = 100_000


def _bootstrap(
    x: np.ndarray, w: np.ndarray, n_boot: int, seed: int, chunk: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    r"""Point values ``(n_stats, d)`` and bootstrap standard errors (NaN if ``n_boot < 2``).

    Each replica resamples the events with replacement (multinomial counts), keeping their
    weights: the standard bootstrap of a weighted estimator. The columns are sorted once.
    Above :data:`BOOTSTRAP_MAX_ROWS` events the replicas resample a random subsample of
    that size and the errors are scaled by :math:`\sqrt{n_\text{eff,sub}/n_\text{eff}}`
    (Kish sizes): every summary figure here is asymptotically normal with variance
    proportional to :math:`1/n_\text{eff}`.
    """
    order = np.argsort(x, axis=0, kind="stable")
    point = _summary(x, w[:, None], order)[..., 0]
    if n_boot < 2:
        return point, np.full_like(point, np.nan)
    rng = as_generator(seed)
    factor = 1.0
    if x.shape[0] > BOOTSTRAP_MAX_ROWS:
        sub = np.sort(rng.choice(x.shape[0], BOOTSTRAP_MAX_ROWS, replace=False))
        factor = math.sqrt(effective_sample_size(w[sub]) / effective_sample_size(w))
        x, w = x[sub], w[sub]
        order = np.argsort(x, axis=0, kind="stable")
    n = x.shape[0]
    reps = []
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(k)], 1)
        reps.append(_summary(x, w[:, None] * counts, order))
    allr = np.concatenate(reps, axis=2)
    return point, allr.std(axis=2, ddof=1) * factor


def _w1(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> float:
    return float(wasserstein_1d(a, b, weights_a=wa, weights_b=wb))


# ---------------------------------------------------------------------------------------------
# statistical floor


@dataclass(frozen=True)
class StatisticalFloor:
    r"""The :math:`W_1` per feature (and the classifier AUC) between two independent samples of
    one distribution: the values a perfect correction would reach.

    Arguments:
        features: The feature names.
        w1: Mean :math:`W_1` per feature over ``n_perm`` random re-splits of the pooled pair
            into samples of the original sizes (exchangeable, since both come from one
            distribution), at the effective sizes ``n_a``, ``n_b``.
        w1_spread: Standard deviation of those re-split values (the spread of one null
            :math:`W_1`, not the error of the mean).
        w1_direct: :math:`W_1` of the two samples as given.
        n_a, n_b: Kish effective sizes of the two samples.
        auc, auc_se: Classifier two-sample AUC of the pair and its standard error (NaN when
            not computed).
        n_perm: Number of re-splits.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> fresh = pd.DataFrame({"x": rng.normal(size=4000)})
        >>> floor = statistical_floor(fresh, None, ["x"], auc=False)  # two halves
        >>> round(floor.n_a), bool(1.5 < floor.w1["x"] * np.sqrt(2000) < 2.2)  # ~1.85/sqrt(n)
        (2000, True)
        >>> full = floor.scaled(4000, 4000)["x"] / floor.w1["x"]  # two full-size samples
        >>> round(full, 3)
        0.707
    """

    features: tuple[str, ...]
    w1: dict[str, float]
    w1_spread: dict[str, float]
    w1_direct: dict[str, float]
    n_a: float
    n_b: float
    auc: float = float("nan")
    auc_se: float = float("nan")
    n_perm: int = 0

    def scaled(self, n_a: float, n_b: float) -> dict[str, float]:
        r"""The mean floor moved to (effective) sizes ``n_a`` and ``n_b``:
        :math:`W_1 \sqrt{(1/n_a + 1/n_b) / (1/n_a^0 + 1/n_b^0)}`."""
        if not (n_a > 0 and n_b > 0):
            raise ConfigError(f"sizes must be positive, got {n_a}, {n_b}", parameter="n_a")
        f = math.sqrt((1 / n_a + 1 / n_b) / (1 / self.n_a + 1 / self.n_b))
        return {k: v * f for k, v in self.w1.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary."""
        return to_jsonable(
            {
                "features": list(self.features),
                "w1": self.w1,
                "w1_spread": self.w1_spread,
                "w1_direct": self.w1_direct,
                "n_a": self.n_a,
                "n_b": self.n_b,
                "auc": self.auc,
                "auc_se": self.auc_se,
                "n_perm": self.n_perm,
            }
        )


def statistical_floor(
    a: pd.DataFrame,
    b: pd.DataFrame | None,
    features: Sequence[str],
    *,
    weight_a: Any = None,
    weight_b: Any = None,
    context: Sequence[str] = (),
    n_perm: int = 20,
    auc: bool = True,
    classifier: Mapping[str, Any] | None = None,
    seed: Any = 0,
) -> StatisticalFloor:
    """Measure the :math:`W_1` (and AUC) floor between two independent samples of the same
    distribution, e.g. two fresh target samples, or a fresh sample split in two (``b=None``:
    ``a`` is split into two random halves, with ``weight_a`` split alongside).

    Arguments:
        a, b: The two samples (DataFrames); ``b=None`` splits ``a``.
        features: The columns whose :math:`W_1` is measured.
        weight_a, weight_b: Optional per-event weights.
        context: Extra columns given to the classifier (not to :math:`W_1`).
        n_perm: Re-splits of the pooled pair averaged for the mean floor (0: the direct value).
        auc: Whether to run the classifier two-sample test on the pair.
        classifier: Options for :func:`ariasim.metrics.classifier_test` (``n_folds``,
            ``max_samples``, ``max_iter``, ``n_threads``).
        seed: Seed for the split, the re-splits and the classifier.

    Returns:
        :class:`StatisticalFloor`.
    """
    feats = _columns(features, "features")
    ctx = _columns(context, "context")
    if not feats:
        raise ConfigError("name at least one feature", parameter="features")
    if n_perm < 0:
        raise ConfigError(f"must be >= 0, got {n_perm}", parameter="n_perm")
    kw = _classifier_kwargs(classifier)
    s_split, s_perm, s_auc = spawn_seeds(seed, 3)
    cols = feats + ctx
    xa = feature_matrix(a, cols, "first")
    wa = sample_weights(weight_a, xa.shape[0], "weight_a")
    if b is None:
        if xa.shape[0] < 4:
            raise InputError("needs at least 4 events to split in halves")
        perm = as_generator(s_split).permutation(xa.shape[0])
        half = xa.shape[0] // 2
        ia, ib = perm[:half], perm[half : 2 * half]
        xa, xb, wa, wb = xa[ia], xa[ib], wa[ia], wa[ib]
    else:
        xb = feature_matrix(b, cols, "second")
        wb = sample_weights(weight_b, xb.shape[0], "weight_b")
    d = len(feats)
    direct = {f: _w1(xa[:, j], xb[:, j], wa, wb) for j, f in enumerate(feats)}
    if n_perm > 0:
        rng = as_generator(s_perm)
        pool, wpool = np.vstack([xa[:, :d], xb[:, :d]]), np.concatenate([wa, wb])
        na = xa.shape[0]
        vals = np.empty((n_perm, d))
        for p in range(n_perm):
            perm = rng.permutation(pool.shape[0])
            i, k = perm[:na], perm[na:]
            for j in range(d):
                vals[p, j] = _w1(pool[i, j], pool[k, j], wpool[i], wpool[k])
        mean = {f: float(vals[:, j].mean()) for j, f in enumerate(feats)}
        spread = {
            f: float(vals[:, j].std(ddof=1)) if n_perm > 1 else float("nan")
            for j, f in enumerate(feats)
        }
    else:
        mean, spread = dict(direct), dict.fromkeys(feats, float("nan"))
    auc_v = auc_se = float("nan")
    if auc:
        r = classifier_test(xa, xb, weights_a=wa, weights_b=wb, seed=s_auc, **kw)
        auc_v, auc_se = float(r.value), float(r.uncertainty)
    return StatisticalFloor(
        features=feats,
        w1=mean,
        w1_spread=spread,
        w1_direct=direct,
        n_a=effective_sample_size(wa),
        n_b=effective_sample_size(wb),
        auc=auc_v,
        auc_se=auc_se,
        n_perm=n_perm,
    )


# ---------------------------------------------------------------------------------------------
# the comparison


@dataclass(frozen=True)
class ShiftDiagnostics:
    r"""Before/after comparison of a corrected source sample with the target sample.

    Built by :func:`compare_samples`; all dictionaries are keyed by feature name. "Before"
    compares the source, "after" the corrected sample, each with the target.

    Arguments:
        features, context: Feature and context columns (context only enters the AUC).
        n, ess: Rows and Kish effective sizes of ``"source"``, ``"target"``, ``"corrected"``.
        w1_before, w1_after: :math:`W_1` per feature (``w1_after`` None without a corrected
            sample).
        floor: The :class:`StatisticalFloor` given, if any; ``w1_floor`` is its mean moved
            to the sizes of each comparison (``"before"``, ``"after"``), and ``ratio_before``
            / ``ratio_after`` are :math:`W_1` over that floor.
        corr: Weighted correlation matrices (``"source"``, ``"target"``, ``"corrected"``),
            in the order of ``features``; ``corr_diff_before`` / ``corr_diff_after`` the
            largest absolute difference to the target's.
        auc_before, auc_after: ``(AUC, standard error)`` of the classifier two-sample test
            (NaN when not run); ``auc_null_sigma`` its standard deviation under "no
            difference" at the sizes of the "after" comparison.
        summary: Long table (feature, stat, target, target_se, corrected, corrected_se,
            pull) of the weighted mean, std and quantiles with bootstrap standard errors;
            "corrected" is the source when no corrected sample was given.
        histograms: Per feature the bin edges and the normalised weighted histograms (and
            their errors) of the three samples, for :func:`plot_features`.
        n_boot, seed: Bootstrap replicas and the seed used.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(1)
        >>> src = pd.DataFrame({"x": rng.normal(0.5, 1, 2000), "y": rng.normal(size=2000)})
        >>> tgt = pd.DataFrame({"x": rng.normal(0.0, 1, 2000), "y": rng.normal(size=2000)})
        >>> fixed = src.assign(x=src["x"] - 0.5)
        >>> d = compare_samples(src, tgt, ["x", "y"], corrected=fixed, n_boot=50,
        ...                     classifier={"n_folds": 3, "max_iter": 30})
        >>> round(d.w1_before["x"], 1), d.w1_after["x"] < 0.1
        (0.5, True)
        >>> d.auc_before[0] > 0.6, abs(d.auc_after[0] - 0.5) < 0.05
        (True, True)
        >>> sorted(d.to_dict())[:3]
        ['auc_after', 'auc_before', 'auc_null_sigma']
    """

    features: tuple[str, ...]
    context: tuple[str, ...]
    n: dict[str, int]
    ess: dict[str, float]
    w1_before: dict[str, float]
    w1_after: dict[str, float] | None
    floor: StatisticalFloor | None
    w1_floor: dict[str, dict[str, float]] | None
    ratio_before: dict[str, float] | None
    ratio_after: dict[str, float] | None
    corr: dict[str, np.ndarray]
    corr_diff_before: float
    corr_diff_after: float | None
    auc_before: tuple[float, float]
    auc_after: tuple[float, float] | None
    auc_null_sigma: float
    summary: pd.DataFrame
    histograms: dict[str, dict[str, np.ndarray]] = field(repr=False)
    n_boot: int = 0
    seed: Any = 0

    @property
    def has_corrected(self) -> bool:
        """Whether a corrected sample was compared."""
        return self.w1_after is not None

    def table(self) -> pd.DataFrame:
        """One row per feature: :math:`W_1` before/after, the floor and the ratios."""
        rows = []
        for f in self.features:
            row: dict[str, Any] = {"feature": f, "w1_before": self.w1_before[f]}
            if self.w1_after is not None:
                row["w1_after"] = self.w1_after[f]
            if self.w1_floor is not None and self.ratio_before is not None:
                row["w1_floor"] = self.w1_floor["after" if self.has_corrected else "before"][f]
                row["ratio_before"] = self.ratio_before[f]
                if self.ratio_after is not None:
                    row["ratio_after"] = self.ratio_after[f]
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self, *, histograms: bool = False) -> dict[str, Any]:
        """JSON-able dictionary (for ``summary.json``); ``histograms=True`` adds the
        histograms."""
        out: dict[str, Any] = {
            "features": list(self.features),
            "context": list(self.context),
            "n": self.n,
            "ess": self.ess,
            "w1_before": self.w1_before,
            "w1_after": self.w1_after,
            "floor": None if self.floor is None else self.floor.to_dict(),
            "w1_floor": self.w1_floor,
            "ratio_before": self.ratio_before,
            "ratio_after": self.ratio_after,
            "corr": {k: v for k, v in self.corr.items()},
            "corr_diff_before": self.corr_diff_before,
            "corr_diff_after": self.corr_diff_after,
            "auc_before": {"value": self.auc_before[0], "se": self.auc_before[1]},
            "auc_after": None
            if self.auc_after is None
            else {"value": self.auc_after[0], "se": self.auc_after[1]},
            "auc_null_sigma": self.auc_null_sigma,
            "summary": self.summary.to_dict(orient="records"),
            "n_boot": self.n_boot,
            "seed": self.seed if isinstance(self.seed, int) else repr(self.seed),
        }
        if histograms:
            out["histograms"] = self.histograms
        return to_jsonable(out)


def _is_integer_valued(x: np.ndarray) -> bool:
    return bool(np.all(x == np.round(x)))


def _edges(samples: Sequence[np.ndarray], bins: int) -> np.ndarray:
    pooled = np.concatenate(samples)
    lo, hi = np.quantile(pooled, [0.005, 0.995])
    if _is_integer_valued(pooled) and np.unique(pooled).size <= bins:
        lo, hi = float(pooled.min()), float(pooled.max())
        return np.arange(lo - 0.5, hi + 1.5)
    if not hi > lo:
        lo, hi = float(pooled.min()) - 0.5, float(pooled.max()) + 0.5
    pad = 0.02 * (hi - lo)
    return np.linspace(lo - pad, hi + pad, bins + 1)


def _hist(x: np.ndarray, w: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Density (per unit of x, normalised to the total weight, overflow included) and error."""
    h, _ = np.histogram(x, bins=edges, weights=w)
    h2, _ = np.histogram(x, bins=edges, weights=w * w)
    norm = w.sum() * np.diff(edges)
    return h / norm, np.sqrt(h2) / norm


def compare_samples(
    source: pd.DataFrame,
    target: pd.DataFrame,
    features: Sequence[str],
    *,
    source_weight: Any = None,
    target_weight: Any = None,
    corrected: pd.DataFrame | None = None,
    corrected_weight: Any = None,
    context: Sequence[str] = (),
    floor: StatisticalFloor | None = None,
    n_boot: int = 200,
    auc: bool = True,
    classifier: Mapping[str, Any] | None = None,
    bins: int = 40,
    seed: Any = 0,
) -> ShiftDiagnostics:
    """Compare a source sample and its correction with the target sample.

    For a morpher pass the morphed events as ``corrected`` (with the source weights as
    ``corrected_weight`` if the source is weighted); for a reweighter pass the source
    itself as ``corrected`` with the product of its event weights and the learned weights.

    Arguments:
        source, target: The two samples (DataFrames).
        features: The feature columns compared.
        source_weight, target_weight, corrected_weight: Optional per-event weights.
        corrected: The corrected source sample, or None for a before-only comparison.
        context: Context columns, added to the features for the classifier test only
            (the conditional morph must reproduce the joint distribution of features and
            context).
        floor: A :class:`StatisticalFloor` for the :math:`W_1` ratios (its features must
            include ``features``).
        n_boot: Bootstrap replicas for the summary figures' standard errors (0: none).
        auc: Whether to run the classifier two-sample tests.
        classifier: Options for :func:`ariasim.metrics.classifier_test` (``n_folds``,
            ``max_samples``, ``max_iter``, ``n_threads``).
        bins: Histogram bins for the plots (integer features with few values get one bin
            per value).
        seed: Seed for the bootstrap and the classifier (split with
            :func:`ariasim.utils.spawn_seeds`).

    Returns:
        :class:`ShiftDiagnostics`.
    """
    feats = _columns(features, "features")
    ctx = _columns(context, "context")
    if not feats:
        raise ConfigError("name at least one feature", parameter="features")
    if set(feats) & set(ctx):
        raise ConfigError(
            f"{sorted(set(feats) & set(ctx))} named as both feature and context",
            parameter="context",
        )
    if n_boot < 0:
        raise ConfigError(f"must be >= 0, got {n_boot}", parameter="n_boot")
    if bins < 2:
        raise ConfigError(f"must be >= 2, got {bins}", parameter="bins")
    kw = _classifier_kwargs(classifier)
    if floor is not None:
        missing = [f for f in feats if f not in floor.w1]
        if missing:
            raise ConfigError(f"the floor has no value for {missing}", parameter="floor")
    cols = feats + ctx
    d = len(feats)
    xs = feature_matrix(source, cols, "source")
    xt = feature_matrix(target, cols, "target")
    ws = sample_weights(source_weight, xs.shape[0], "source_weight")
    wt = sample_weights(target_weight, xt.shape[0], "target_weight")
    xc = wc = None
    if corrected is not None:
        xc = feature_matrix(corrected, cols, "corrected")
        wc = sample_weights(corrected_weight, xc.shape[0], "corrected_weight")
    elif corrected_weight is not None:
        raise ConfigError("given without a corrected sample", parameter="corrected_weight")
    s_bt, s_bc, s_ab, s_aa = spawn_seeds(seed, 4)

    n = {"source": xs.shape[0], "target": xt.shape[0]}
    ess = {"source": effective_sample_size(ws), "target": effective_sample_size(wt)}
    if xc is not None and wc is not None:
        n["corrected"] = xc.shape[0]
        ess["corrected"] = effective_sample_size(wc)

    w1_before = {f: _w1(xs[:, j], xt[:, j], ws, wt) for j, f in enumerate(feats)}
    w1_after = None
    if xc is not None and wc is not None:
        w1_after = {f: _w1(xc[:, j], xt[:, j], wc, wt) for j, f in enumerate(feats)}

    w1_floor = ratio_before = ratio_after = None
    if floor is not None:
        fb = floor.scaled(ess["source"], ess["target"])
        w1_floor = {"before": {f: fb[f] for f in feats}}
        ratio_before = {f: w1_before[f] / fb[f] if fb[f] > 0 else math.inf for f in feats}
        if w1_after is not None:
            fa = floor.scaled(ess["corrected"], ess["target"])
            w1_floor["after"] = {f: fa[f] for f in feats}
            ratio_after = {f: w1_after[f] / fa[f] if fa[f] > 0 else math.inf for f in feats}

    corr = {
        "source": weighted_correlation(xs[:, :d], ws),
        "target": weighted_correlation(xt[:, :d], wt),
    }

    def maxdiff(m: np.ndarray) -> float:
        diff = np.abs(m - corr["target"])
        return float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")

    corr_diff_before = maxdiff(corr["source"])
    corr_diff_after = None
    if xc is not None and wc is not None:
        corr["corrected"] = weighted_correlation(xc[:, :d], wc)
        corr_diff_after = maxdiff(corr["corrected"])

    nan2 = (float("nan"), float("nan"))
    auc_before: tuple[float, float] = nan2
    auc_after: tuple[float, float] | None = None if xc is None else nan2
    sigma0 = float("nan")
    if auc:
        r = classifier_test(xs, xt, weights_a=ws, weights_b=wt, seed=s_ab, **kw)
        auc_before = (float(r.value), float(r.uncertainty))
        sigma0 = float(r.details["null_sigma"])
        if xc is not None:
            r = classifier_test(xc, xt, weights_a=wc, weights_b=wt, seed=s_aa, **kw)
            auc_after = (float(r.value), float(r.uncertainty))
            sigma0 = float(r.details["null_sigma"])

    pt, set_ = _bootstrap(xt[:, :d], wt, n_boot, s_bt)
    xsum, wsum = (xc, wc) if xc is not None and wc is not None else (xs, ws)
    pc, sec = _bootstrap(xsum[:, :d], wsum, n_boot, s_bc)
    rows = []
    for j, f in enumerate(feats):
        for i, stat in enumerate(_STATS):
            se = math.hypot(set_[i, j], sec[i, j])
            pull = (pc[i, j] - pt[i, j]) / se if se > 0 else float("nan")
            rows.append(
                {
                    "feature": f,
                    "stat": stat,
                    "target": pt[i, j],
                    "target_se": set_[i, j],
                    "corrected": pc[i, j],
                    "corrected_se": sec[i, j],
                    "pull": pull,
                }
            )
    summary = pd.DataFrame(rows)

    histograms: dict[str, dict[str, np.ndarray]] = {}
    for j, f in enumerate(feats):
        parts = [xt[:, j], xs[:, j]] + ([xc[:, j]] if xc is not None else [])
        edges = _edges(parts, bins)
        h: dict[str, np.ndarray] = {"edges": edges}
        h["target"], h["target_err"] = _hist(xt[:, j], wt, edges)
        h["source"], h["source_err"] = _hist(xs[:, j], ws, edges)
        if xc is not None and wc is not None:
            h["corrected"], h["corrected_err"] = _hist(xc[:, j], wc, edges)
        histograms[f] = h

    return ShiftDiagnostics(
        features=feats,
        context=ctx,
        n=n,
        ess=ess,
        w1_before=w1_before,
        w1_after=w1_after,
        floor=floor,
        w1_floor=w1_floor,
        ratio_before=ratio_before,
        ratio_after=ratio_after,
        corr=corr,
        corr_diff_before=corr_diff_before,
        corr_diff_after=corr_diff_after,
        auc_before=auc_before,
        auc_after=auc_after,
        auc_null_sigma=sigma0,
        summary=summary,
        histograms=histograms,
        n_boot=n_boot,
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# plots


def _save(fig: Any, path: str | os.PathLike[str] | None) -> None:
    if path is None:
        return
    if Path(path).suffix.lower() != ".png":
        raise ConfigError(f"must end in .png, got {str(path)!r}", parameter="path")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _check_diag(diag: Any) -> ShiftDiagnostics:
    if not isinstance(diag, ShiftDiagnostics):
        raise ConfigError(
            f"expected ShiftDiagnostics (from compare_samples), got {type(diag).__name__}",
            parameter="diag",
        )
    return diag


def plot_features(
    diag: ShiftDiagnostics,
    path: str | os.PathLike[str] | None = None,
    *,
    features: Sequence[str] | None = None,
    ncols: int = 3,
) -> Any:
    """Per-feature histograms of target, source and corrected sample, with a ratio panel
    (sample / target, statistical errors of the sample; grey band: the target's).

    To plot raw samples, call :func:`compare_samples` with ``auc=False, n_boot=0`` first.

    Arguments:
        diag: The diagnostics holding the histograms.
        path: If given, the figure is also written there as PNG (atomically).
        features: A subset of the features (default: all).
        ncols: Panels per row.

    Returns:
        The matplotlib figure, for :meth:`ariasim.report.HtmlReport.figure` (which closes
        it); close it yourself (``plt.close(fig)``) otherwise.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diag = _check_diag(diag)
    feats = list(diag.features) if features is None else list(_columns(features, "features"))
    for f in feats:
        if f not in diag.histograms:
            raise ConfigError(f"no histogram of feature {f!r}", parameter="features")
    ncols = max(1, min(ncols, len(feats)))
    nrows = math.ceil(len(feats) / ncols)
    fig = plt.figure(figsize=(4.2 * ncols, 4.0 * nrows))
    outer = fig.add_gridspec(nrows, ncols, hspace=0.35, wspace=0.3)
    styles: dict[str, dict[str, Any]] = {
        "target": {"color": "black", "label": "target"},
        "source": {"color": "tab:red", "label": "source", "ls": "--"},
        "corrected": {"color": "tab:blue", "label": "corrected"},
    }
    for k, f in enumerate(feats):
        h = diag.histograms[f]
        e = np.asarray(h["edges"])
        mid = 0.5 * (e[1:] + e[:-1])
        inner = outer[k // ncols, k % ncols].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.05)
        ax = fig.add_subplot(inner[0])
        rx = fig.add_subplot(inner[1], sharex=ax)
        t, terr = np.asarray(h["target"]), np.asarray(h["target_err"])
        for name, st in styles.items():
            if name in h:
                ax.stairs(h[name], e, **st)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(t > 0, terr / t, np.nan)
            rx.fill_between(mid, 1 - rel, 1 + rel, color="0.85", step="mid")
            for name in ("source", "corrected"):
                if name in h:
                    val, err = np.asarray(h[name]), np.asarray(h[name + "_err"])
                    r = np.where(t > 0, val / t, np.nan)
                    rx.errorbar(
                        mid, r, yerr=np.where(t > 0, err / t, np.nan), fmt=".", ms=3,
                        color=styles[name]["color"], elinewidth=0.8,
                    )  # fmt: skip
        rx.axhline(1.0, color="black", lw=0.8)
        rx.set_ylim(0.5, 1.5)
        rx.set_xlabel(f)
        rx.set_ylabel("/ target")
        ax.set_ylabel("density")
        ax.tick_params(labelbottom=False)
        title = f"W1 {diag.w1_before[f]:.3g}"
        if diag.w1_after is not None:
            title += f" -> {diag.w1_after[f]:.3g}"
        if diag.ratio_after is not None:
            title += f" ({diag.ratio_after[f]:.2g}x floor)"
        ax.set_title(title, fontsize=9)
        if k == 0:
            ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def plot_correlations(diag: ShiftDiagnostics, path: str | os.PathLike[str] | None = None) -> Any:
    """The target's correlation matrix and the differences source - target and
    corrected - target (values written in the cells for up to 12 features).

    Arguments:
        diag: The diagnostics.
        path: If given, the figure is also written there as PNG (atomically).

    Returns:
        The matplotlib figure (see :func:`plot_features` about closing it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diag = _check_diag(diag)
    panels = [
        ("target", diag.corr["target"]),
        ("source - target", diag.corr["source"] - diag.corr["target"]),
    ]
    if "corrected" in diag.corr:
        panels.append(("corrected - target", diag.corr["corrected"] - diag.corr["target"]))
    d = len(diag.features)
    size = max(3.2, 0.45 * d + 1.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size))
    for ax, (title, m) in zip(np.atleast_1d(axes), panels, strict=True):
        lim = 1.0 if title == "target" else max(0.05, float(np.nanmax(np.abs(m))))
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks(range(d), diag.features, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(d), diag.features, fontsize=8)
        extra = ""
        if title.startswith("source"):
            extra = f" (max {diag.corr_diff_before:.2g})"
        elif title.startswith("corrected") and diag.corr_diff_after is not None:
            extra = f" (max {diag.corr_diff_after:.2g})"
        ax.set_title(title + extra, fontsize=9)
        if d <= 12:
            for i in range(d):
                for j in range(d):
                    if np.isfinite(m[i, j]):
                        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _auc_text(label: str, auc: tuple[float, float] | None) -> str:
    if auc is None or not math.isfinite(auc[0]):
        return ""
    return f"{label} {auc[0]:.4f} +- {auc[1]:.4f}"


def report_diagnostics(
    rep: HtmlReport,
    diag: ShiftDiagnostics,
    *,
    title: str = "Before and after the correction",
    plots: bool = True,
) -> HtmlReport:
    """Append a section for ``diag`` to an :class:`~ariasim.report.HtmlReport`: the AUCs,
    the per-feature :math:`W_1` table (with the floor and ratios), the summary figures with
    bootstrap errors and pulls, and (``plots``) the feature and correlation figures.
    Returns ``rep``."""
    diag = _check_diag(diag)
    rep.heading(title)
    aucs = [_auc_text("AUC before", diag.auc_before), _auc_text("after", diag.auc_after)]
    line = "; ".join(a for a in aucs if a)
    if line:
        sig = diag.auc_null_sigma
        rep.text(
            f"Classifier two-sample test (0.5 = indistinguishable): {line}"
            + (f" (null standard deviation {sig:.4f})." if math.isfinite(sig) else ".")
        )
    n = ", ".join(f"{k} {v} (effective {diag.ess[k]:.0f})" for k, v in diag.n.items())
    rep.text(
        f"Events: {n}. Largest correlation difference to the target: "
        f"{diag.corr_diff_before:.3f} before"
        + (f", {diag.corr_diff_after:.3f} after." if diag.corr_diff_after is not None else ".")
    )
    rep.table(diag.table(), "1-D Wasserstein distance to the target per feature")
    if diag.n_boot >= 2:
        rep.table(
            diag.summary,
            f"Summary figures with bootstrap standard errors ({diag.n_boot} replicas); "
            "pull = (corrected - target) / combined error",
        )
    if plots:
        rep.figure(plot_features(diag), "Feature distributions and ratios to the target")
        if len(diag.features) > 1:
            rep.figure(plot_correlations(diag), "Correlation matrices")
    return rep
