r"""Per-feature metrics: moment differences, 1-D Wasserstein distance, Kolmogorov-Smirnov test.

Every function takes two one-feature samples (1-D arrays, Series or one-column tables) and
optional non-negative per-event weights; for whole tables use :func:`ariasim.metrics.compare`,
which applies them to every feature. Moments are plug-in (population) moments of the
weighted empirical distribution, so integer weights give exactly the same values as
duplicated rows and scaling the weights changes nothing.

References:
    Kish, L. (1965). Survey Sampling. Wiley. (effective sample size)

    Smirnov, N. (1948). Table for estimating the goodness of fit of empirical
    distributions. Ann. Math. Stat. 19, 279.

    Villani, C. (2009). Optimal Transport, Old and New. Springer.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from ariasim.metrics._core import ArrayLike, MetricResult, as_1d, effective_sample_size

__all__ = [
    "ks_test",
    "moment_differences",
    "wasserstein_1d",
    "wasserstein_p_1d",
    "weighted_moments",
]


def weighted_moments(x: ArrayLike, weights: ArrayLike | None = None) -> dict[str, float]:
    """Weighted mean, variance, skewness and excess kurtosis of one feature.

    Plug-in estimators (``bias=True`` in scipy's terms): with no weights, ``skewness`` and
    ``kurtosis`` equal ``scipy.stats.skew(x)`` and ``scipy.stats.kurtosis(x)``.

    Arguments:
        x: One feature, shape (n,).
        weights: Optional non-negative weights, shape (n,).

    Returns:
        ``{"mean", "variance", "skewness", "kurtosis", "m4", "n_eff"}`` where ``m4`` is the
        fourth central moment and ``n_eff`` Kish's effective sample size.
    """
    xv, _, w, _ = as_1d(x, np.zeros(1), weights, None)
    return _moments(xv, w)


def _moments(x: np.ndarray, w: np.ndarray | None) -> dict[str, float]:
    p = np.full(x.shape[0], 1.0 / x.shape[0]) if w is None else w / w.sum()
    x0 = float(x[0])  # shift first: a constant feature then has exactly zero variance
    mean = x0 + float(np.dot(p, x - x0))
    d = x - mean
    d2 = d * d
    m2 = float(np.dot(p, d2))
    m3 = float(np.dot(p, d2 * d))
    m4 = float(np.dot(p, d2 * d2))
    skew = m3 / m2**1.5 if m2 > 0 else float("nan")
    kurt = m4 / m2**2 - 3.0 if m2 > 0 else float("nan")
    return {
        "mean": mean,
        "variance": m2,
        "skewness": skew,
        "kurtosis": kurt,
        "m4": m4,
        "n_eff": effective_sample_size(w, x.shape[0]),
    }


def _two_sided_normal(z: float) -> float:
    return float(special.erfc(abs(z) / math.sqrt(2.0))) if np.isfinite(z) else float("nan")


def _influence(x: np.ndarray, m: dict[str, float]) -> dict[str, np.ndarray]:
    """Influence functions of the plug-in mean, variance, skewness and excess kurtosis."""
    d = x - m["mean"]
    d2 = d * d
    m2, m3, m4 = m["variance"], m["skewness"] * m["variance"] ** 1.5, m["m4"]
    if_m2 = d2 - m2
    if_m3 = d2 * d - m3 - 3.0 * m2 * d
    if_m4 = d2 * d2 - m4 - 4.0 * m3 * d
    out = {"mean": d, "variance": if_m2}
    if m2 > 0:
        out["skewness"] = if_m3 / m2**1.5 - 1.5 * m3 / m2**2.5 * if_m2
        out["kurtosis"] = if_m4 / m2**2 - 2.0 * m4 / m2**3 * if_m2
    return out


def _variances(x: np.ndarray, w: np.ndarray | None, m: dict[str, float]) -> dict[str, float]:
    """Delta-method (sandwich) variances sum_i p_i^2 IF_i^2 with p the normalised weights."""
    p2 = np.full(x.shape[0], 1.0 / x.shape[0] ** 2) if w is None else (w / w.sum()) ** 2
    return {k: float(np.dot(p2, v * v)) for k, v in _influence(x, m).items()}


def moment_differences(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
) -> dict[str, MetricResult]:
    r"""Differences ``a - b`` of the weighted mean, variance, skewness and kurtosis of one feature.

    Standard errors are distribution-free delta-method (sandwich) estimates: for a plug-in
    statistic :math:`T` with empirical influence function :math:`\mathrm{IF}_i` and
    normalised weights :math:`p_i`, :math:`\mathrm{Var}\,T \approx \sum_i p_i^2
    \mathrm{IF}_i^2` (for the mean this is :math:`\sigma^2/n` unweighted and about
    :math:`\sigma^2/n_\mathrm{eff}` (Kish) with weights). The two samples are independent, so
    the variances of a difference add. Skewness and kurtosis errors involve moments up to
    the 6th and 8th and are themselves noisy for heavy-tailed features. p-values are
    two-sided normal tests of a zero difference.

    ``std_mean_diff`` is the standardised mean difference (effect size)
    :math:`\Delta\mu / \sqrt{(\sigma_a^2 + \sigma_b^2)/2}`, independent of the sample size;
    its uncertainty is the mean's standard error divided by the same scale.

    Sensitivity: with 20,000 unweighted events per sample a 0.1 sigma mean shift is a
    10 sigma effect in ``mean_diff`` and a 10 % width change a 13 sigma effect in
    ``variance_diff``.

    Arguments:
        a, b: The two samples of one feature.
        weights_a, weights_b: Optional non-negative per-event weights.

    Returns:
        ``{"mean_diff", "std_mean_diff", "variance_diff", "skewness_diff", "kurtosis_diff"}``
        mapped to :class:`MetricResult` (value, uncertainty, p_value).
    """
    xa, xb, wa, wb = as_1d(a, b, weights_a, weights_b, min_rows=2)
    ma, mb = _moments(xa, wa), _moments(xb, wb)
    va, vb = _variances(xa, wa, ma), _variances(xb, wb, mb)
    out: dict[str, MetricResult] = {}

    def put(name: str, value: float, se: float) -> None:
        if not np.isfinite(value):
            out[name] = MetricResult(float("nan"), n_a=xa.shape[0], n_b=xb.shape[0])
            return
        p = _two_sided_normal(value / se) if se > 0 else (1.0 if value == 0 else 0.0)
        out[name] = MetricResult(value, se, p, xa.shape[0], xb.shape[0])

    def se(key: str) -> float:
        return math.sqrt(va.get(key, math.nan) + vb.get(key, math.nan))

    d_mean = ma["mean"] - mb["mean"]
    put("mean_diff", d_mean, se("mean"))
    scale = math.sqrt(0.5 * (ma["variance"] + mb["variance"]))
    put(
        "std_mean_diff",
        d_mean / scale if scale > 0 else math.nan,
        se("mean") / scale if scale > 0 else math.nan,
    )
    put("variance_diff", ma["variance"] - mb["variance"], se("variance"))
    put("skewness_diff", ma["skewness"] - mb["skewness"], se("skewness"))
    put("kurtosis_diff", ma["kurtosis"] - mb["kurtosis"], se("kurtosis"))
    return out


def _sorted_cdf(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and the cumulative weight *after* each of them (last entry = total)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if w is None:
        cw = np.arange(1, x.shape[0] + 1, dtype=np.float64)
    else:
        cw = np.cumsum(w[order])
    return xs, cw


def wasserstein_p_1d(
    xa: np.ndarray,
    xb: np.ndarray,
    wa: np.ndarray | None = None,
    wb: np.ndarray | None = None,
    p: float = 1.0,
) -> float:
    r"""Raw :math:`W_p^p` between two weighted 1-D samples (no validation; used internally).

    Computed from the quantile functions on the merged grid of cumulative weights,
    :math:`W_p^p = \int_0^1 |Q_a(t) - Q_b(t)|^p\,dt`, exact for the empirical distributions.
    """
    sa, ca = _sorted_cdf(xa, wa)
    sb, cb = _sorted_cdf(xb, wb)
    ca = ca / ca[-1]
    cb = cb / cb[-1]
    ca[-1] = cb[-1] = 1.0
    t = np.concatenate([ca, cb])
    t.sort(kind="mergesort")
    dt = np.diff(t, prepend=0.0)
    # quantile on (t_{k-1}, t_k]: first index whose cumulative weight reaches t_k
    qa = sa[np.minimum(np.searchsorted(ca, t, side="left"), sa.shape[0] - 1)]
    qb = sb[np.minimum(np.searchsorted(cb, t, side="left"), sb.shape[0] - 1)]
    diff = np.abs(qa - qb)
    return float(np.dot(dt, diff if p == 1 else diff**p))


def wasserstein_1d(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
) -> MetricResult:
    r"""1-Wasserstein (earth mover's) distance between two weighted 1-D samples.

    :math:`W_1 = \int |F_a(x) - F_b(x)|\,dx = \int_0^1 |Q_a(t) - Q_b(t)|\,dt`, in the unit
    of the feature; equals ``scipy.stats.wasserstein_distance(a, b, wa, wb)``. For two
    Gaussians of equal width it converges to :math:`|\Delta\mu|`. No analytic uncertainty
    or p-value (use :func:`ariasim.metrics.calibrate`). Its finite-sample noise floor is of
    order :math:`\sigma / \sqrt{n}`: with 20,000 events per sample of a unit Gaussian the
    null value is about 0.011 +- 0.004, and a 0.1 sigma mean shift gives 0.1 (z near 25).

    Arguments:
        a, b: The two samples of one feature.
        weights_a, weights_b: Optional non-negative per-event weights.
    """
    xa, xb, wa, wb = as_1d(a, b, weights_a, weights_b)
    return MetricResult(wasserstein_p_1d(xa, xb, wa, wb, 1.0), n_a=xa.shape[0], n_b=xb.shape[0])


def ks_test(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
) -> MetricResult:
    r"""Two-sample Kolmogorov-Smirnov test, with optional event weights.

    The statistic is :math:`D = \sup_x |F_a(x) - F_b(x)|` of the weighted empirical CDFs,
    evaluated at every pooled data point. Without weights it equals
    ``scipy.stats.ks_2samp(a, b).statistic`` exactly, and so does the p-value (scipy's exact
    distribution for samples up to 10,000 events, else Smirnov's asymptotic ``kstwo``).
    With weights the p-value uses the ``kstwo`` distribution with the effective number
    :math:`n_a n_b / (n_a + n_b)` built from Kish's effective sample sizes, which is
    approximate (it is exact for uniform weights in the asymptotic regime).

    Sensitivity: with 20,000 events per sample a 0.1 sigma mean shift gives an expected
    :math:`D \approx 0.04` against a null value of 0.008 +- 0.002 (5 % critical value
    0.0136).

    Arguments:
        a, b: The two samples of one feature.
        weights_a, weights_b: Optional non-negative per-event weights.

    Returns:
        :class:`MetricResult` with ``value`` = D, ``p_value``, and ``details["location"]``
        (where the largest CDF difference occurs).
    """
    xa, xb, wa, wb = as_1d(a, b, weights_a, weights_b)
    sa, ca = _sorted_cdf(xa, wa)
    sb, cb = _sorted_cdf(xb, wb)
    pooled = np.concatenate([sa, sb])
    ca0 = np.concatenate([[0.0], ca])
    cb0 = np.concatenate([[0.0], cb])
    fa = ca0[np.searchsorted(sa, pooled, side="right")] / ca[-1]
    fb = cb0[np.searchsorted(sb, pooled, side="right")] / cb[-1]
    diff = fa - fb
    i_max, i_min = int(np.argmax(diff)), int(np.argmin(diff))
    d_plus, d_minus = float(diff[i_max]), float(np.clip(-diff[i_min], 0, 1))
    d, loc = (d_minus, pooled[i_min]) if d_minus > d_plus else (d_plus, pooled[i_max])
    n1, n2 = xa.shape[0], xb.shape[0]
    if wa is None and wb is None and max(n1, n2) <= 10000:
        # unweighted small samples: D is the rational k / lcm(n1, n2), as in scipy's exact mode
        lcm = (n1 // math.gcd(n1, n2)) * n2
        d = int(np.round(d * lcm)) / lcm
        p = float(stats.ks_2samp(xa, xb).pvalue)
        n1e, n2e = float(n1), float(n2)
    else:
        n1e, n2e = effective_sample_size(wa, n1), effective_sample_size(wb, n2)
        m, n = sorted([n1e, n2e], reverse=True)
        en = max(float(np.round(m * n / (m + n))), 1.0)
        p = float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))
    return MetricResult(
        d,
        p_value=p,
        n_a=n1,
        n_b=n2,
        details={"location": float(loc), "n_eff_a": n1e, "n_eff_b": n2e},
    )
