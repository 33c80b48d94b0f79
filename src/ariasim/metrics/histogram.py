r"""Binned per-feature comparisons: weighted-histogram chi-square test and separation power.

Both histogram one feature of each sample on common bin edges. By default the edges are
equal-population quantiles of the pooled sample (each sample's weights normalised to unit
sum) with ``clip(min(n_eff_a, n_eff_b) // 25, 5, 50)`` bins, so that each bin holds about 25
effective events or more (the chi-square approximation needs roughly 10). Events outside
explicit edges are ignored.

References:
    Gagunashvili, N. D. (2006). Comparison of weighted and unweighted histograms.
    arXiv:physics/0605123; and (2017) Tests for comparing weighted histograms. Review and
    improvements, JINST 12 P04017 (arXiv:1606.06591).

    Krause, C., et al. (2024). CaloChallenge 2022: a community challenge for fast
    calorimeter simulation. arXiv:2410.21611 (separation power).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ariasim.errors import ConfigError
from ariasim.metrics._core import ArrayLike, MetricResult, as_1d, effective_sample_size

__all__ = ["default_bins", "histogram_chi2", "separation_power"]


def default_bins(
    xa: np.ndarray,
    xb: np.ndarray,
    wa: np.ndarray | None = None,
    wb: np.ndarray | None = None,
    n_bins: int | None = None,
) -> np.ndarray:
    """Common bin edges: weighted quantiles of the pooled sample, both samples counting equally.

    Arguments:
        xa, xb: The two 1-D samples.
        wa, wb: Optional weights.
        n_bins: Number of bins; default ``clip(min(n_eff_a, n_eff_b) // 25, 5, 50)``.
    """
    if n_bins is None:
        n_eff = min(effective_sample_size(wa, xa.shape[0]), effective_sample_size(wb, xb.shape[0]))
        n_bins = int(np.clip(n_eff // 25, 5, 50))
    x = np.concatenate([xa, xb])
    pa = np.full(xa.shape[0], 1.0 / xa.shape[0]) if wa is None else wa / wa.sum()
    pb = np.full(xb.shape[0], 1.0 / xb.shape[0]) if wb is None else wb / wb.sum()
    p = np.concatenate([pa, pb])
    order = np.argsort(x, kind="stable")
    xs, cp = x[order], np.cumsum(p[order])
    cp /= cp[-1]
    q = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    inner = xs[np.minimum(np.searchsorted(cp, q, side="left"), xs.shape[0] - 1)]
    edges = np.unique(np.concatenate([[xs[0]], inner, [xs[-1]]]))
    if edges.shape[0] < 2:  # a constant feature
        edges = np.array([xs[0] - 0.5, xs[0] + 0.5])
    return edges


def _histograms(a: ArrayLike, b: ArrayLike, weights_a: Any, weights_b: Any, bins: Any):
    xa, xb, wa, wb = as_1d(a, b, weights_a, weights_b)
    if bins is None or isinstance(bins, (int, np.integer)):
        if bins is not None and bins < 1:
            raise ConfigError(
                "must be a positive number of bins or an array of edges", parameter="bins"
            )
        edges = default_bins(xa, xb, wa, wb, None if bins is None else int(bins))
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.shape[0] < 2 or np.any(np.diff(edges) <= 0):
            raise ConfigError("edges must be 1-D and strictly increasing", parameter="bins")
    ha, _ = np.histogram(xa, edges, weights=wa)
    hb, _ = np.histogram(xb, edges, weights=wb)
    sa, _ = np.histogram(xa, edges, weights=None if wa is None else wa * wa)
    sb, _ = np.histogram(xb, edges, weights=None if wb is None else wb * wb)
    return (
        xa,
        xb,
        wa,
        wb,
        edges,
        ha.astype(float),
        hb.astype(float),
        sa.astype(float),
        sb.astype(float),
    )


def histogram_chi2(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
    bins: int | ArrayLike | None = None,
) -> MetricResult:
    r"""Chi-square homogeneity test of two weighted histograms (Gagunashvili 2006).

    With bin contents :math:`w_{ai}` (sum of weights), totals :math:`W_a = \sum_i w_{ai}` and
    variances :math:`s_{ai}^2 = \sum w^2` in the bin (likewise for ``b``),

    .. math:: X^2 = \sum_i \frac{(W_a w_{bi} - W_b w_{ai})^2}{W_a^2 s_{bi}^2 + W_b^2 s_{ai}^2},

    approximately :math:`\chi^2` with ``ndf = (number of non-empty bins) - 1`` when the two
    samples share a distribution (the "WW" test of ROOT's ``TH1::Chi2Test``; bins empty in
    both samples are skipped). The per-bin pulls :math:`r_i` (signed square roots of the
    terms, positive where ``a`` has more) satisfy :math:`\sum r_i^2 = X^2`; each is roughly
    N(0, 1) (its variance is slightly below one because of the normalisation constraint).
    For unit weights this is the classical two-sample Pearson test up to terms that vanish
    under the null. Sensitivity: with 20,000 events per sample (default binning: 50 bins,
    ndf = 49) a 0.1 sigma mean shift gives :math:`X^2` of about 150-180 (p < 1e-10).

    Arguments:
        a, b: The two samples of one feature.
        weights_a, weights_b: Optional non-negative per-event weights.
        bins: Number of bins, explicit edges, or ``None`` for :func:`default_bins`.

    Returns:
        :class:`MetricResult` with ``value`` = :math:`X^2`, ``p_value``, and
        ``details`` = ``{"ndf", "chi2_ndf", "edges", "pulls"}``.
    """
    xa, xb, _, _, edges, ha, hb, sa, sb = _histograms(a, b, weights_a, weights_b, bins)
    wa_tot, wb_tot = ha.sum(), hb.sum()
    if not (wa_tot > 0 and wb_tot > 0):
        raise ConfigError("one of the samples has no weight inside the bins", parameter="bins")
    den = wa_tot**2 * sb + wb_tot**2 * sa
    used = den > 0
    pulls = np.zeros_like(ha)
    pulls[used] = (wb_tot * ha[used] - wa_tot * hb[used]) / np.sqrt(den[used])
    chi2 = float(np.sum(pulls**2))
    ndf = int(used.sum()) - 1
    p = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan")
    return MetricResult(
        chi2,
        p_value=p,
        n_a=xa.shape[0],
        n_b=xb.shape[0],
        details={
            "ndf": ndf,
            "chi2_ndf": chi2 / ndf if ndf > 0 else float("nan"),
            "edges": edges,
            "pulls": pulls,
        },
    )


def separation_power(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
    bins: int | ArrayLike | None = None,
) -> MetricResult:
    r"""CaloChallenge's separation power :math:`S = \frac12 \sum_i (h_{ai} - h_{bi})^2 / (h_{ai} +
    h_{bi})`.

    :math:`h` are the weighted histograms normalised to unit sum on common edges, so
    :math:`S = 0` for identical histograms and 1 for disjoint ones (bins empty in both are
    skipped). It is biased upwards by finite statistics: about ``(n_bins - 1) / 4 *
    (1/n_eff_a + 1/n_eff_b)`` for identical distributions, returned as
    ``details["noise_level"]``; calibrate it (:func:`ariasim.metrics.calibrate`) to judge a
    value. Sensitivity: with 20,000 events per sample (50 default bins) the null value is
    :math:`(1.3 \pm 0.3)\times10^{-3}`; a 0.1 sigma mean shift gives about
    :math:`3.7\times10^{-3}` and a 10 % width change :math:`6\times10^{-3}`.

    Arguments:
        a, b: The two samples of one feature.
        weights_a, weights_b: Optional non-negative per-event weights.
        bins: Number of bins, explicit edges, or ``None`` for
            :func:`~ariasim.metrics.histogram.default_bins`.
    """
    xa, xb, wa, wb, edges, ha, hb, _, _ = _histograms(a, b, weights_a, weights_b, bins)
    if not (ha.sum() > 0 and hb.sum() > 0):
        raise ConfigError("one of the samples has no weight inside the bins", parameter="bins")
    ha, hb = ha / ha.sum(), hb / hb.sum()
    tot = ha + hb
    used = tot > 0
    s = 0.5 * float(np.sum((ha[used] - hb[used]) ** 2 / tot[used]))
    n_bins = int(used.sum())
    ne_a, ne_b = effective_sample_size(wa, xa.shape[0]), effective_sample_size(wb, xb.shape[0])
    noise = 0.25 * (n_bins - 1) * (1.0 / ne_a + 1.0 / ne_b)
    return MetricResult(
        s, n_a=xa.shape[0], n_b=xb.shape[0], details={"edges": edges, "noise_level": noise}
    )
