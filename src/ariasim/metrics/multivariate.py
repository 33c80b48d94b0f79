r"""Multivariate two-sample distances: sliced Wasserstein, kernel MMD and energy distance.

All three accept arrays of shape (n,) or (n, d) or DataFrames (columns matched by name), and
optional non-negative per-event weights (probability weights: only ratios matter). MMD and
the energy distance cost :math:`O(n^2)`: they are computed in row blocks so memory stays
bounded (``block_size`` rows of pairwise distances at a time), and by default each sample is
randomly subsampled (without replacement, weights following their rows) to at most
``max_samples = 5000`` rows, which takes about a second. Pass ``max_samples=None`` to use
everything. Features are used as given; standardise them (``standardize=True``) when they
have different units, as :func:`ariasim.metrics.compare` does.

References:
    Bonneel, N., Rabin, J., Peyré, G., Pfister, H. (2015). Sliced and Radon Wasserstein
    barycenters of measures. J. Math. Imaging Vis. 51, 22-45.

    Gretton, A., Borgwardt, K. M., Rasch, M. J., Schölkopf, B., Smola, A. (2012). A kernel
    two-sample test. JMLR 13, 723-773.

    Székely, G. J., Rizzo, M. L. (2013). Energy statistics: a class of statistics based on
    distances. J. Stat. Plan. Inference 143, 1249-1272.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy.spatial.distance import cdist, pdist

from ariasim.errors import ConfigError
from ariasim.metrics._core import (
    ArrayLike,
    MetricResult,
    prepare_pair,
    rng_from,
    standardize_pair,
    subsample,
)
from ariasim.metrics.univariate import wasserstein_p_1d

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "energy_distance",
    "median_bandwidth",
    "mmd",
    "sliced_wasserstein",
]

DEFAULT_MAX_SAMPLES = 5000
"""Default cap on the rows per sample used by the O(n^2) metrics (MMD, energy distance)."""

_BLOCK_ELEMENTS = 1 << 22  # pairwise entries held at once (32 MiB of float64)


def _prepare(
    a: ArrayLike,
    b: ArrayLike,
    weights_a: Any,
    weights_b: Any,
    max_samples: int | None,
    standardize: bool,
    seed: Any,
    min_rows: int = 1,
):
    rng = rng_from(seed)
    xa, xb, wa, wb, _ = prepare_pair(a, b, weights_a, weights_b, min_rows=min_rows)
    if max_samples is not None and max_samples < 2:
        raise ConfigError("must be at least 2 (or None for no cap)", parameter="max_samples")
    xa, wa = subsample(xa, wa, max_samples, rng)
    xb, wb = subsample(xb, wb, max_samples, rng)
    if standardize:
        xa, xb = standardize_pair(xa, xb, wa, wb)
    return xa, xb, wa, wb, rng


def _norm(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, 1.0 / n) if w is None else w / w.sum()


def _pair_sum(
    x: np.ndarray,
    y: np.ndarray | None,
    wx: np.ndarray,
    wy: np.ndarray | None,
    fn: Callable[[np.ndarray], np.ndarray],
    metric: str,
    block_size: int | None,
) -> float:
    """``sum_ij wx_i wy_j fn(dist(x_i, y_j))`` in row blocks; ``y=None`` means ``y = x``.

    For ``y = x`` only the upper triangle of blocks is computed (the diagonal included)."""
    sym = y is None
    yy, wyy = (x, wx) if y is None else (y, wy)
    bs = block_size or max(1, _BLOCK_ELEMENTS // max(yy.shape[0], 1))
    total = 0.0
    for i0 in range(0, x.shape[0], bs):
        i1 = min(i0 + bs, x.shape[0])
        if sym:
            f = fn(cdist(x[i0:i1], x[i0:], metric=metric))
            s = wx[i0:i1] @ f  # contributions to columns i0..n
            w_cols = wx[i0:]
            diag = float(s[: i1 - i0] @ w_cols[: i1 - i0])  # the diagonal block, counted once
            total += diag + 2.0 * float(s[i1 - i0 :] @ w_cols[i1 - i0 :])
        else:
            f = fn(cdist(x[i0:i1], yy, metric=metric))
            total += float(wx[i0:i1] @ f @ wyy)
    return total


def median_bandwidth(
    a: ArrayLike,
    b: ArrayLike | None = None,
    *,
    max_points: int = 1000,
    seed: Any = 0,
) -> float:
    """Median heuristic for the Gaussian-kernel bandwidth.

    The median Euclidean distance between distinct points of the pooled sample (Gretton et
    al. 2012, section 8), computed on a random subsample of at most ``max_points`` points
    (unweighted: the bandwidth is a scale, not an estimate). Falls back to the mean non-zero
    distance, then 1, for degenerate (discrete) data.

    Arguments:
        a: First sample, (n,) or (n, d).
        b: Optional second sample, pooled with ``a``.
        max_points: Subsample size for the pairwise distances.
        seed: Seed or generator for the subsample.
    """
    x = np.asarray(a, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if b is not None:
        y = np.asarray(b, dtype=np.float64)
        x = np.vstack([x, y[:, None] if y.ndim == 1 else y])
    rng = rng_from(seed)
    if x.shape[0] > max_points:
        x = x[rng.choice(x.shape[0], size=max_points, replace=False)]
    if x.shape[0] < 2:
        return 1.0
    d = pdist(x)
    med = float(np.median(d))
    if med > 0:
        return med
    nz = d[d > 0]
    return float(nz.mean()) if nz.size else 1.0


def mmd(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
    bandwidth: float | None = None,
    estimator: Literal["unbiased", "biased"] = "unbiased",
    standardize: bool = False,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    block_size: int | None = None,
    seed: Any = 0,
) -> MetricResult:
    r"""Squared maximum mean discrepancy with a Gaussian kernel.

    Kernel :math:`k(x, y) = \exp(-\|x - y\|^2 / (2\sigma^2))`; by default :math:`\sigma` is
    the median pairwise distance of the pooled (sub)sample (:func:`median_bandwidth`).
    The unbiased estimator (Gretton et al. 2012, eq. 3) is

    .. math:: \mathrm{MMD}^2_u = \frac{\sum_{i\ne j} w_i w_j k(a_i, a_j)}{\sum_{i\ne j} w_i w_j}
              + \frac{\sum_{i\ne j} v_i v_j k(b_i, b_j)}{\sum_{i\ne j} v_i v_j}
              - 2 \frac{\sum_{i,j} w_i v_j k(a_i, b_j)}{\sum_i w_i \sum_j v_j},

    exactly the U-statistic for uniform weights and its self-normalised (ratio) version
    otherwise; it can be slightly negative when the samples agree. ``estimator="biased"``
    keeps the diagonal terms (V-statistic, non-negative; integer weights then equal
    duplicated rows). For two Gaussians :math:`N(\mu_a, s^2 I_d)`, :math:`N(\mu_b, s^2 I_d)`
    the population value is :math:`2 (\sigma^2/(\sigma^2 + 2s^2))^{d/2}
    [1 - \exp(-\|\mu_a-\mu_b\|^2 / (2(\sigma^2 + 2 s^2)))]`.

    No analytic p-value (the null distribution is a weighted sum of chi-squares): use
    :func:`ariasim.metrics.calibrate`. Sensitivity: with 2000 events per sample, a 0.2
    sigma mean shift of 2-D standard Gaussians gives about 5e-3 against a null of
    0 +- 3e-4 (z near 17; 5000 events: null standard deviation 2e-4).

    Arguments:
        a, b: Samples, (n,) or (n, d) arrays or DataFrames.
        weights_a, weights_b: Optional non-negative per-event weights.
        bandwidth: Kernel width :math:`\sigma` (in feature units after standardisation);
            ``None`` for the median heuristic.
        estimator: ``"unbiased"`` (default) or ``"biased"``.
        standardize: Scale each feature by the pooled standard deviation first.
        max_samples: Cap on rows per sample (random subsample); ``None`` for no cap.
        block_size: Rows per block of the pairwise computation (default: 32 MiB blocks).
        seed: Seed or generator for the subsampling and the bandwidth subsample.

    Returns:
        :class:`MetricResult` with ``details["bandwidth"]``.
    """
    if estimator not in ("unbiased", "biased"):
        raise ConfigError(f"unknown estimator {estimator!r}", parameter="estimator")
    xa, xb, wa, wb, rng = _prepare(
        a, b, weights_a, weights_b, max_samples, standardize, seed, min_rows=2
    )
    sigma = median_bandwidth(xa, xb, seed=rng) if bandwidth is None else float(bandwidth)
    if not sigma > 0:
        raise ConfigError("must be positive", parameter="bandwidth")
    gamma = 1.0 / (2.0 * sigma**2)

    def kern(d2: np.ndarray) -> np.ndarray:
        d2 *= -gamma
        return np.exp(d2, out=d2)

    pa, pb = _norm(wa, xa.shape[0]), _norm(wb, xb.shape[0])
    kaa = _pair_sum(xa, None, pa, None, kern, "sqeuclidean", block_size)
    kbb = _pair_sum(xb, None, pb, None, kern, "sqeuclidean", block_size)
    kab = _pair_sum(xa, xb, pa, pb, kern, "sqeuclidean", block_size)
    if estimator == "unbiased":
        sa, sb = float(pa @ pa), float(pb @ pb)  # k(x, x) = 1
        kaa = (kaa - sa) / (1.0 - sa)
        kbb = (kbb - sb) / (1.0 - sb)
    value = kaa + kbb - 2.0 * kab
    return MetricResult(
        float(value),
        n_a=xa.shape[0],
        n_b=xb.shape[0],
        details={"bandwidth": sigma, "estimator": estimator},
    )


def energy_distance(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
    estimator: Literal["biased", "unbiased"] = "biased",
    standardize: bool = False,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    block_size: int | None = None,
    seed: Any = 0,
) -> MetricResult:
    r"""Energy distance :math:`\mathcal{E} = 2E\|A-B\| - E\|A-A'\| - E\|B-B'\|` (Székely & Rizzo).

    Multivariate (Euclidean norm), weighted. The default estimator is the plug-in
    V-statistic of the weighted empirical distributions (Székely & Rizzo's energy statistic
    before the :math:`n_a n_b/(n_a+n_b)` factor); ``estimator="unbiased"`` divides the
    within-sample sums by :math:`\sum_{i\ne j} w_i w_j` instead.

    Convention: this returns the *squared* quantity :math:`\mathcal{E}`. In one dimension
    :math:`\mathcal{E} = 2\int (F_a - F_b)^2 dx`, and ``scipy.stats.energy_distance`` returns
    :math:`\sqrt{\mathcal{E}}` (the V-statistic), i.e. ``sqrt(2)`` times the Cramér
    distance :math:`(\int (F_a-F_b)^2 dx)^{1/2}`; so ``sqrt(energy_distance(a, b).value)``
    equals scipy's value. Sensitivity: with 2000 events per sample, a 0.2 sigma mean shift
    of 2-D standard Gaussians gives about 0.02 against a null of 0.002 +- 0.001 (z near 20).

    Arguments:
        a, b: Samples, (n,) or (n, d) arrays or DataFrames.
        weights_a, weights_b: Optional non-negative per-event weights.
        estimator: ``"biased"`` (V-statistic, default, matches scipy) or ``"unbiased"``.
        standardize: Scale each feature by the pooled standard deviation first.
        max_samples: Cap on rows per sample (random subsample); ``None`` for no cap.
        block_size: Rows per block of the pairwise computation (default: 32 MiB blocks).
        seed: Seed or generator for the subsampling.
    """
    if estimator not in ("unbiased", "biased"):
        raise ConfigError(f"unknown estimator {estimator!r}", parameter="estimator")
    xa, xb, wa, wb, _ = _prepare(
        a,
        b,
        weights_a,
        weights_b,
        max_samples,
        standardize,
        seed,
        min_rows=2 if estimator == "unbiased" else 1,
    )

    def ident(d: np.ndarray) -> np.ndarray:
        return d

    pa, pb = _norm(wa, xa.shape[0]), _norm(wb, xb.shape[0])
    daa = _pair_sum(xa, None, pa, None, ident, "euclidean", block_size)
    dbb = _pair_sum(xb, None, pb, None, ident, "euclidean", block_size)
    dab = _pair_sum(xa, xb, pa, pb, ident, "euclidean", block_size)
    if estimator == "unbiased":
        daa /= 1.0 - float(pa @ pa)
        dbb /= 1.0 - float(pb @ pb)
    return MetricResult(
        float(2.0 * dab - daa - dbb),
        n_a=xa.shape[0],
        n_b=xb.shape[0],
        details={"estimator": estimator},
    )


def _random_directions(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((d, n))
    v /= np.linalg.norm(v, axis=0, keepdims=True)
    return v


def sliced_wasserstein(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | None = None,
    weights_b: ArrayLike | None = None,
    n_projections: int = 200,
    p: float = 2.0,
    standardize: bool = False,
    max_samples: int | None = 20_000,
    seed: Any = 0,
) -> MetricResult:
    r"""Sliced Wasserstein distance :math:`SW_p = (E_\theta\, W_p^p(\theta^\top A, \theta^\top
    B))^{1/p}`.

    Directions :math:`\theta` are drawn uniformly on the unit sphere (seedable); each 1-D
    :math:`W_p^p` is exact for the weighted empirical distributions. This is the convention
    of POT's ``ot.sliced_wasserstein_distance`` (default ``p=2``), which agrees in
    expectation over the projections. ``uncertainty`` is the Monte Carlo error from the
    finite number of projections only (delta method on the mean of :math:`W_p^p`), not the
    sampling noise of the events (use :func:`ariasim.metrics.calibrate` for that).
    Sensitivity: with 20,000 events per sample, a 0.1 sigma mean shift of 2-D standard
    Gaussians gives about 0.08 against a null of 0.017 +- 0.003 (z near 25).

    Arguments:
        a, b: Samples, (n,) or (n, d) arrays or DataFrames.
        weights_a, weights_b: Optional non-negative per-event weights.
        n_projections: Number of random directions.
        p: Order of the Wasserstein distance (>= 1).
        standardize: Scale each feature by the pooled standard deviation first.
        max_samples: Cap on rows per sample (random subsample); ``None`` for no cap.
        seed: Seed or generator for the directions and the subsampling.
    """
    if n_projections < 1:
        raise ConfigError("must be at least 1", parameter="n_projections")
    if not p >= 1:
        raise ConfigError("must be >= 1", parameter="p")
    xa, xb, wa, wb, rng = _prepare(a, b, weights_a, weights_b, max_samples, standardize, seed)
    theta = _random_directions(xa.shape[1], n_projections, rng)
    n_max = max(xa.shape[0], xb.shape[0])
    chunk = max(1, _BLOCK_ELEMENTS // n_max)
    values = np.empty(n_projections)
    if wa is None and wb is None:
        # uniform weights: the merged quantile grid is the same for every direction
        ca = np.arange(1, xa.shape[0] + 1) / xa.shape[0]
        cb = np.arange(1, xb.shape[0] + 1) / xb.shape[0]
        ca[-1] = cb[-1] = 1.0
        t = np.sort(np.concatenate([ca, cb]), kind="mergesort")
        dt = np.diff(t, prepend=0.0)
        ia = np.minimum(np.searchsorted(ca, t, side="left"), xa.shape[0] - 1)
        ib = np.minimum(np.searchsorted(cb, t, side="left"), xb.shape[0] - 1)
        for j0 in range(0, n_projections, chunk):
            th = theta[:, j0 : j0 + chunk].T
            pa = th @ xa.T  # (directions, n): rows contiguous for the sort
            pa.sort(axis=1)
            pb = th @ xb.T
            pb.sort(axis=1)
            diff = np.abs(pa[:, ia] - pb[:, ib])
            values[j0 : j0 + chunk] = (diff if p == 1 else diff**p) @ dt
    else:
        pa_all = pb_all = np.empty((0, 0))
        for j in range(n_projections):
            if j % chunk == 0:
                th = theta[:, j : j + chunk]
                pa_all, pb_all = xa @ th, xb @ th
            values[j] = wasserstein_p_1d(pa_all[:, j % chunk], pb_all[:, j % chunk], wa, wb, p)
    mean = float(values.mean())
    value = mean ** (1.0 / p)
    se_mean = (
        float(values.std(ddof=1)) / np.sqrt(n_projections) if n_projections > 1 else float("nan")
    )
    se = (mean ** (1.0 / p - 1.0) / p) * se_mean if mean > 0 else float("nan")
    return MetricResult(
        value,
        uncertainty=se,
        n_a=xa.shape[0],
        n_b=xb.shape[0],
        details={"n_projections": n_projections, "p": p},
    )
