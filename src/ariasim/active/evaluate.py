"""Evaluation of a controlled run against brute force: ESS, rates, pulls, chi2, coverage.

The functions behind ``ariasim active evaluate``. They take arrays and tables only.

* **Kish effective sample size** of weighted events, ``N_eff = (sum w)^2 / sum w^2``
  (Kish 1965): the number of unweighted events that would give the same relative variance
  of a sum of weights.
* **Rate** of final-level events per generated event: ``R = sum_i w_i / N`` over the
  passing events, where ``N`` counts every generated event (those a controller dropped
  and those a cut removed contribute 0).
* **Weighted histograms normalised as rates**: bin content ``sum w / N``, variance
  ``sum w^2 / N^2`` (:class:`RateHistogram`).
* **Pulls** of two independent rate histograms, bin by bin,
  ``(r_a - r_b) / sqrt(var_a + var_b)``, which follow N(0, 1) when both estimate the same
  distribution (approximately: the variances are estimated, so bins need a few events).
  ``chi2 = sum pull^2`` over the ``ndf`` bins used (no normalisation is fitted: both are
  absolute rates).
* **Coverage** of an interval ``estimate +- z error`` over repeated seeds, with its
  binomial error.
* **Efficiency gain** = (N_eff / CPU) controlled over (N_eff / CPU) brute force, the CPU of
  the controller (training and inference) counted in the controlled arm (REFERENCE.md,
  section 4).

References:
    L. Kish, *Survey Sampling*, Wiley, New York (1965), section 11.7 (effective sample
    size of a weighted sample).
    R. Barlow, C. Beeston, "Fitting using finite Monte Carlo samples", Comput. Phys.
    Commun. 77 (1993) 219 (the sum of squared weights as the variance of a weighted bin).
    N. Gagunashvili, "Comparison of weighted and unweighted histograms", arXiv:physics/0605123
    (chi2 tests of two weighted histograms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ariasim.errors import ConfigError, InputError, check_int

__all__ = [
    "RateHistogram",
    "chi2_ndf",
    "chi2_test",
    "compare_arms",
    "coverage",
    "efficiency_gain",
    "kish_ess",
    "pulls",
    "rate_estimate",
    "weighted_histogram",
]


def _weights(w: Any, name: str = "weights") -> np.ndarray:
    arr = np.asarray(w, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite numbers", column=name)
    return arr


def _n_generated(n: Any, parameter: str = "n_generated") -> int:
    return check_int(parameter, n)


def kish_ess(w: Sequence[float] | np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of weighted events (Kish 1965).

    Equal weights give the number of events; unequal weights give fewer. 0 for no events.

    Arguments:
        w: Event weights (finite).

    Example:
        >>> kish_ess([1.0, 1.0, 1.0, 1.0]), kish_ess([1.0, 3.0])
        (4.0, 1.6)
    """
    arr = _weights(w)
    s2 = float(np.sum(arr**2))
    return float(np.sum(arr) ** 2 / s2) if s2 > 0 else 0.0


def weighted_histogram(
    values: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None,
    edges: Sequence[float] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of weights and sum of squared weights per bin.

    Values outside ``[edges[0], edges[-1]]`` and NaN values are not counted (the last bin
    includes its upper edge, as :func:`numpy.histogram`).

    Arguments:
        values: One value per event.
        weights: One weight per event (``None``: all 1).
        edges: Bin edges, strictly increasing, at least two.

    Returns:
        ``(sumw, sumw2)``, each of length ``len(edges) - 1``.

    Example:
        >>> sw, sw2 = weighted_histogram([0.5, 1.5, 1.7, 9.0], [1.0, 2.0, 3.0, 4.0], [0, 1, 2])
        >>> sw.tolist(), sw2.tolist()
        ([1.0, 5.0], [1.0, 13.0])
    """
    e = _edges(edges)
    x = np.asarray(values, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else _weights(weights)
    if w.shape != x.shape:
        raise InputError(f"{w.size} weights for {x.size} values", column="weights")
    ok = np.isfinite(x)
    sumw, _ = np.histogram(x[ok], bins=e, weights=w[ok])
    sumw2, _ = np.histogram(x[ok], bins=e, weights=w[ok] ** 2)
    return sumw.astype(float), sumw2.astype(float)


def _edges(edges: Sequence[float] | np.ndarray, parameter: str = "edges") -> np.ndarray:
    e = np.asarray(edges, dtype=float).ravel()
    if e.size < 2 or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
        raise ConfigError(
            f"bin edges must be at least two finite, strictly increasing numbers, got {e.tolist()}",
            parameter=parameter,
        )
    return e


@dataclass(frozen=True)
class RateHistogram:
    """A weighted histogram normalised as a rate per generated event.

    Bin ``k`` estimates ``sum w / N`` with variance ``sum w^2 / N^2``, where ``N`` is the
    number of generated events of the sample (every event the run started, passing or not).

    Arguments:
        edges: Bin edges.
        sumw: Sum of weights per bin.
        sumw2: Sum of squared weights per bin.
        n_generated: Events generated in the sample.

    Example:
        >>> h = RateHistogram.fill([0.5, 1.5, 1.5], [2.0, 1.0, 1.0], [0, 1, 2], n_generated=10)
        >>> h.rate.tolist(), h.variance.tolist()
        ([0.2, 0.2], [0.04, 0.02])
    """

    edges: np.ndarray
    sumw: np.ndarray
    sumw2: np.ndarray
    n_generated: int

    def __post_init__(self) -> None:
        _n_generated(self.n_generated)
        nb = len(self.edges) - 1
        if len(self.sumw) != nb or len(self.sumw2) != nb:
            raise ConfigError(
                f"{len(self.sumw)} and {len(self.sumw2)} bin sums for {nb} bins",
                parameter="sumw",
            )

    @classmethod
    def fill(
        cls,
        values: Sequence[float] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None,
        edges: Sequence[float] | np.ndarray,
        n_generated: int,
    ) -> RateHistogram:
        """Histogram ``values`` with ``weights`` (see :func:`weighted_histogram`)."""
        sumw, sumw2 = weighted_histogram(values, weights, edges)
        return cls(_edges(edges), sumw, sumw2, _n_generated(n_generated))

    @property
    def rate(self) -> np.ndarray:
        """Rate per generated event in each bin, ``sumw / N``."""
        return self.sumw / self.n_generated

    @property
    def variance(self) -> np.ndarray:
        """Variance of :attr:`rate`, ``sumw2 / N^2``."""
        return self.sumw2 / float(self.n_generated) ** 2


def pulls(h_a: RateHistogram, h_b: RateHistogram) -> np.ndarray:
    """Bin-by-bin pulls ``(r_a - r_b) / sqrt(var_a + var_b)`` of two independent samples.

    Both histograms are rates per generated event (each with its own ``n_generated``), so
    samples of different sizes compare directly. Bins where both samples are empty (zero
    variance) are excluded: their pull is NaN. The pulls are ~N(0, 1) when both samples
    estimate the same distribution and the bins hold enough events for ``sum w^2`` to be a
    good variance estimate (Barlow & Beeston 1993); a bin empty in one sample only has its
    variance underestimated, so compare with bins of at least a few events.

    Arguments:
        h_a, h_b: The two histograms (same edges).

    Example:
        >>> a = RateHistogram.fill([0.5, 0.5, 1.5], None, [0, 1, 2, 3], n_generated=10)
        >>> b = RateHistogram.fill([0.5, 1.5, 1.5], None, [0, 1, 2, 3], n_generated=10)
        >>> np.round(pulls(a, b), 3).tolist()
        [0.577, -0.577, nan]
    """
    if h_a.edges.shape != h_b.edges.shape or not np.allclose(h_a.edges, h_b.edges):
        raise ConfigError("the two histograms have different bin edges", parameter="edges")
    var = h_a.variance + h_b.variance
    out = np.full(var.shape, np.nan)
    ok = var > 0
    out[ok] = (h_a.rate[ok] - h_b.rate[ok]) / np.sqrt(var[ok])
    return out


def chi2_test(h_a: RateHistogram, h_b: RateHistogram) -> tuple[float, int, float]:
    """``(chi2, ndf, p-value)`` of two rate histograms: ``chi2 = sum pull^2`` over the
    ``ndf`` bins not empty in both (see :func:`pulls`); p from the chi2 distribution
    (NaN when ``ndf`` is 0).

    Arguments:
        h_a, h_b: The two histograms (same edges).

    Example:
        >>> a = RateHistogram.fill([0.5, 0.5, 1.5], None, [0, 1, 2, 3], n_generated=10)
        >>> b = RateHistogram.fill([0.5, 1.5, 1.5], None, [0, 1, 2, 3], n_generated=10)
        >>> chi2, ndf, p = chi2_test(a, b)
        >>> round(chi2, 4), ndf
        (0.6667, 2)
    """
    p = pulls(h_a, h_b)
    p = p[np.isfinite(p)]
    chi2 = float(np.sum(p**2))
    ndf = int(p.size)
    return chi2, ndf, float(stats.chi2.sf(chi2, ndf)) if ndf else float("nan")


def chi2_ndf(h_a: RateHistogram, h_b: RateHistogram) -> float:
    """``chi2 / ndf`` of :func:`chi2_test` (NaN when no bin holds an event); about 1 when
    the two samples agree, with a spread of ``sqrt(2 / ndf)``.

    Arguments:
        h_a, h_b: The two histograms (same edges).
    """
    chi2, ndf, _ = chi2_test(h_a, h_b)
    return chi2 / ndf if ndf else float("nan")


def rate_estimate(weights: Sequence[float] | np.ndarray, n_generated: int) -> tuple[float, float]:
    """Rate of passing events per generated event and its standard error.

    With ``N`` generated events of which the passing ones carry weights ``w_i`` (every
    other event contributes 0), ``R = sum w_i / N`` and, from the sample variance of the
    ``N`` per-event contributions,
    ``stderr = sqrt((sum w_i^2 / N - R^2) / (N - 1))`` (0 when ``N`` is 1).

    Arguments:
        weights: Weights of the passing events (``gen_weight`` times the controller's
            ``1/a`` products).
        n_generated: Number of generated events (>= the number of weights).

    Example:
        >>> r, e = rate_estimate([1.0] * 25, 100)
        >>> r, round(e, 4)
        (0.25, 0.0435)
    """
    w = _weights(weights)
    n = _n_generated(n_generated)
    if w.size > n:
        raise ConfigError(
            f"{w.size} passing events but only {n} generated", parameter="n_generated"
        )
    rate = float(np.sum(w) / n)
    if n == 1:
        return rate, 0.0
    var = max(float(np.sum(w**2)) / n - rate**2, 0.0) / (n - 1)
    return rate, float(np.sqrt(var))


def coverage(
    estimates: Sequence[float] | np.ndarray,
    errors: Sequence[float] | np.ndarray,
    truth: float,
    level: float = 0.68,
) -> tuple[float, float]:
    """Fraction of intervals ``estimate +- z error`` that contain ``truth``, and its error.

    ``z`` is the two-sided Gaussian quantile of ``level`` (0.994 for 0.68, 1.96 for 0.95).
    The error is the binomial standard deviation of the fraction over ``n`` runs if the
    coverage were exactly ``level``, ``sqrt(level (1 - level) / n)``: a correct estimator
    gives a fraction within a few of these of ``level``.

    Arguments:
        estimates: One estimate per repeated run (different seeds).
        errors: Their standard errors (same length).
        truth: The true value.
        level: Nominal coverage, in (0, 1).

    Example:
        >>> frac, err = coverage([1.0, 1.5, 0.2, 1.1], [0.2, 0.2, 0.2, 0.2], truth=1.0)
        >>> frac, round(err, 4)
        (0.5, 0.2332)
    """
    est = _weights(estimates, "estimates")
    err = _weights(errors, "errors")
    if est.size != err.size or est.size == 0:
        raise InputError(
            f"need as many errors as estimates (at least one), got {err.size} and {est.size}",
            column="errors",
        )
    if np.any(err < 0):
        raise InputError("errors must be >= 0", column="errors")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ConfigError(f"must be in (0, 1), got {level!r}", parameter="level")
    z = float(stats.norm.ppf(0.5 + level / 2))
    inside = np.abs(est - float(truth)) <= z * err
    n = est.size
    return float(np.mean(inside)), float(np.sqrt(level * (1 - level) / n))


def efficiency_gain(ess_a: float, cpu_a: float, ess_b: float, cpu_b: float) -> float:
    """Gain of arm b over arm a in effective events per CPU-second:
    ``(ess_b / cpu_b) / (ess_a / cpu_a)``.

    Arm a is the brute-force reference, arm b the controlled run, whose CPU must include
    the controller's training and inference (REFERENCE.md, section 4).

    Arguments:
        ess_a, cpu_a: Kish effective sample size and CPU seconds of the reference.
        ess_b, cpu_b: The same for the controlled arm.

    Example:
        >>> efficiency_gain(100.0, 50.0, 80.0, 4.0)
        10.0
    """
    for name, v in (("ess_a", ess_a), ("ess_b", ess_b)):
        if not np.isfinite(v) or v < 0:
            raise ConfigError(f"must be a finite number >= 0, got {v!r}", parameter=name)
    for name, v in (("cpu_a", cpu_a), ("cpu_b", cpu_b)):
        if not np.isfinite(v) or v <= 0:
            raise ConfigError(f"must be a finite number > 0, got {v!r}", parameter=name)
    if ess_a == 0:
        raise ConfigError("the reference has no effective events", parameter="ess_a")
    return float((ess_b / cpu_b) / (ess_a / cpu_a))


def compare_arms(
    final_a: pd.DataFrame,
    n_a: int,
    final_b: pd.DataFrame,
    n_b: int,
    observables: Sequence[str],
    edges: Mapping[str, Sequence[float]] | None = None,
    *,
    weight: str | None = "weight",
    bins: int = 20,
) -> dict[str, Any]:
    """Compare the final-level events of two arms: rates, ESS, and per observable the
    pulls, ``chi2/ndf`` and the largest ``|pull|``.

    Arguments:
        final_a, final_b: Passing events of the reference (a) and the other arm (b).
        n_a, n_b: Events generated in each arm.
        observables: Columns to histogram.
        edges: Bin edges per observable; an observable without them gets ``bins``
            equal bins between the smallest and largest value of both arms.
        weight: Column with each event's total weight (``None``: all 1).
        bins: Number of bins where ``edges`` gives none.

    Returns:
        ``{"rate": {"a": [R, err], "b": [...]}, "n_eff": {"a": ..., "b": ...},
        "rate_pull": ..., "observables": {name: {"chi2", "ndf", "chi2_ndf", "p_value",
        "max_abs_pull", "pulls", "edges"}}}`` (JSON-ready; excluded bins' pulls are None).
    """
    edges = dict(edges or {})
    n_a = _n_generated(n_a, "n_a")
    n_b = _n_generated(n_b, "n_b")
    check_int("bins", bins)
    w = {}
    for arm, df in (("a", final_a), ("b", final_b)):
        if weight is None:
            w[arm] = np.ones(len(df))
        elif weight not in df.columns:
            raise InputError(f"arm {arm} has no weight column", column=weight)
        else:
            w[arm] = _weights(df[weight].to_numpy(float), weight)
    ra, ea = rate_estimate(w["a"], n_a)
    rb, eb = rate_estimate(w["b"], n_b)
    out: dict[str, Any] = {
        "rate": {"a": [ra, ea], "b": [rb, eb]},
        "n_eff": {"a": kish_ess(w["a"]), "b": kish_ess(w["b"])},
        "rate_pull": (rb - ra) / float(np.hypot(ea, eb)) if np.hypot(ea, eb) > 0 else None,
        "observables": {},
    }
    for name in observables:
        for arm, df in (("a", final_a), ("b", final_b)):
            if name not in df.columns:
                raise InputError(f"arm {arm} has no observable {name!r}", column=name)
        xa = final_a[name].to_numpy(float)
        xb = final_b[name].to_numpy(float)
        if name in edges:
            e = _edges(edges[name], f"edges[{name}]")
        else:
            both = np.concatenate([xa, xb])
            both = both[np.isfinite(both)]
            lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
            e = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        ha = RateHistogram.fill(xa, w["a"], e, n_a)
        hb = RateHistogram.fill(xb, w["b"], e, n_b)
        p = pulls(ha, hb)
        chi2, ndf, pval = chi2_test(ha, hb)
        fin = p[np.isfinite(p)]
        out["observables"][name] = {
            "chi2": chi2,
            "ndf": ndf,
            "chi2_ndf": chi2 / ndf if ndf else None,
            "p_value": pval if ndf else None,
            "max_abs_pull": float(np.max(np.abs(fin))) if fin.size else None,
            "pulls": [float(v) if np.isfinite(v) else None for v in p],
            "edges": e.tolist(),
        }
    return out
