"""Multivariate metrics against POT, scipy, brute force and closed forms; weights; sensitivity.

Statistical tolerances are 5 standard errors of the quantity tested (fixed seeds).
"""

from __future__ import annotations

import numpy as np
import ot
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from ariasim.errors import ConfigError
from ariasim.metrics import (
    calibrate,
    classifier_test,
    energy_distance,
    median_bandwidth,
    mmd,
    sliced_wasserstein,
    wasserstein_1d,
)

RTOL = 1e-9


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _gauss_sampler(d: int, shift: float = 0.0):
    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.normal(size=(n, d))
        x[:, 0] += shift
        return x

    return sample


def _brute_mmd2(x, y, wx, wy, sigma, unbiased=True):
    k = lambda u, v: np.exp(-cdist(u, v, "sqeuclidean") / (2 * sigma**2))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    if unbiased:
        np.fill_diagonal(kxx, 0)
        np.fill_diagonal(kyy, 0)
        txx = wx @ kxx @ wx / (wx.sum() ** 2 - wx @ wx)
        tyy = wy @ kyy @ wy / (wy.sum() ** 2 - wy @ wy)
    else:
        txx, tyy = wx @ kxx @ wx / wx.sum() ** 2, wy @ kyy @ wy / wy.sum() ** 2
    return txx + tyy - 2 * wx @ kxy @ wy / (wx.sum() * wy.sum())


# ----------------------------------------------------------------------------- sliced Wasserstein


def test_sliced_wasserstein_agrees_with_pot(rng):
    """Both are Monte Carlo averages over random directions of the same quantity: they agree
    within 5 combined projection standard errors."""
    x, y = rng.normal(size=(1500, 4)), rng.normal(size=(1200, 4)) * [1.3, 1, 1, 1] + 0.2
    ours = sliced_wasserstein(x, y, n_projections=400, seed=1)
    pot, log = ot.sliced_wasserstein_distance(x, y, n_projections=400, seed=2, log=True)
    e = np.asarray(log["projected_emds"])  # W_2^2 per projection
    se_pot = 0.5 / np.sqrt(e.mean()) * e.std(ddof=1) / np.sqrt(e.size)
    assert abs(ours.value - pot) < 5 * np.hypot(ours.uncertainty, se_pot)
    # the same directions give the same value
    proj = np.random.default_rng(3).normal(size=(4, 50))
    proj /= np.linalg.norm(proj, axis=0)
    from ariasim.metrics.univariate import wasserstein_p_1d

    same = np.sqrt(np.mean([wasserstein_p_1d(x @ p, y @ p, p=2) for p in proj.T]))
    assert same == pytest.approx(ot.sliced_wasserstein_distance(x, y, projections=proj), rel=RTOL)


def test_sliced_wasserstein_1d_is_wasserstein(rng):
    a, b = rng.normal(size=400), rng.gamma(2, size=300)
    assert sliced_wasserstein(a, b, p=1, n_projections=3).value == pytest.approx(
        wasserstein_1d(a, b).value, rel=RTOL
    )


def test_sliced_wasserstein_weights(rng):
    x, y = rng.normal(size=(200, 3)), rng.normal(size=(150, 3)) + 0.3
    k = rng.integers(1, 4, 200)
    weighted = sliced_wasserstein(x, y, weights_a=k, n_projections=30, seed=5)
    dup = sliced_wasserstein(np.repeat(x, k, axis=0), y, n_projections=30, seed=5)
    assert weighted.value == pytest.approx(dup.value, rel=RTOL)
    ones = sliced_wasserstein(x, y, weights_a=np.ones(200), n_projections=30, seed=5)
    assert ones.value == pytest.approx(
        sliced_wasserstein(x, y, n_projections=30, seed=5).value, rel=RTOL
    )


def test_sliced_wasserstein_detects_shift_at_documented_size():
    n = 20_000
    c = calibrate(
        sliced_wasserstein,
        _gauss_sampler(2),
        n,
        sample=_gauss_sampler(2, 0.1)(n, np.random.default_rng(11)),
        n_repeats=10,
        seed=12,
    )
    assert c.z > 5  # documented: z near 25


# ----------------------------------------------------------------------------- MMD


def test_mmd_closed_form_two_gaussians(rng):
    """E[MMD^2_u] = 2 (s'^2/(s'^2+2))^{d/2} (1 - exp(-|dmu|^2/(2(s'^2+2)))) for unit Gaussians;
    the unbiased estimator averaged over repeats agrees within 5 standard errors."""
    d, delta, sigma, n, reps = 2, 0.5, 1.0, 800, 12
    exact = (
        2
        * (sigma**2 / (sigma**2 + 2)) ** (d / 2)
        * (1 - np.exp(-(delta**2) / (2 * (sigma**2 + 2))))
    )
    vals = [
        mmd(_gauss_sampler(d)(n, rng), _gauss_sampler(d, delta)(n, rng), bandwidth=sigma).value
        for _ in range(reps)
    ]
    assert abs(np.mean(vals) - exact) < 5 * np.std(vals, ddof=1) / np.sqrt(reps)


def test_mmd_matches_brute_force_weighted_and_blocked(rng):
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(250, 3)) + 0.2
    wx, wy = rng.exponential(size=300), rng.uniform(0.1, 2, 250)
    for unbiased in (True, False):
        est = "unbiased" if unbiased else "biased"
        ref = _brute_mmd2(x, y, wx, wy, 1.3, unbiased)
        for block in (None, 7):
            got = mmd(
                x, y, weights_a=wx, weights_b=wy, bandwidth=1.3, estimator=est, block_size=block
            ).value
            assert got == pytest.approx(ref, rel=RTOL)
    # uniform weights give the classical unbiased U-statistic
    assert mmd(x, y, weights_a=np.ones(300), bandwidth=1.3).value == pytest.approx(
        _brute_mmd2(x, y, np.ones(300), np.ones(250), 1.3), rel=RTOL
    )


def test_mmd_biased_integer_weights_equal_duplicates(rng):
    x, y = rng.normal(size=(100, 2)), rng.normal(size=(80, 2))
    k = rng.integers(1, 4, 100)
    assert mmd(x, y, weights_a=k, bandwidth=1.0, estimator="biased").value == pytest.approx(
        mmd(np.repeat(x, k, axis=0), y, bandwidth=1.0, estimator="biased").value, rel=RTOL
    )


def test_median_bandwidth(rng):
    x = rng.normal(size=(200, 2))
    from scipy.spatial.distance import pdist

    assert median_bandwidth(x) == pytest.approx(np.median(pdist(x)))
    assert median_bandwidth(np.zeros((5, 2))) == 1.0


def test_mmd_subsampling_cap(rng):
    x, y = rng.normal(size=(3000, 2)), rng.normal(size=(2500, 2))
    r = mmd(x, y, max_samples=500)
    assert (r.n_a, r.n_b) == (500, 500)
    with pytest.raises(ConfigError, match="max_samples"):
        mmd(x, y, max_samples=1)


def test_mmd_detects_shift_at_documented_size():
    n = 2000
    c = calibrate(
        mmd,
        _gauss_sampler(2),
        n,
        sample=_gauss_sampler(2, 0.2)(n, np.random.default_rng(21)),
        n_repeats=10,
        seed=22,
    )
    assert c.z > 5  # documented: z near 17


# ----------------------------------------------------------------------------- energy distance


def test_energy_distance_1d_matches_scipy(rng):
    """scipy returns sqrt of the V-statistic energy distance (sqrt(2) x Cramér distance)."""
    a, b = rng.normal(size=500), rng.standard_t(4, size=400)
    wa, wb = rng.uniform(0, 3, 500), rng.exponential(size=400)
    assert np.sqrt(energy_distance(a, b).value) == pytest.approx(
        stats.energy_distance(a, b), rel=1e-8
    )
    assert np.sqrt(energy_distance(a, b, weights_a=wa, weights_b=wb).value) == pytest.approx(
        stats.energy_distance(a, b, wa, wb), rel=1e-8
    )
    # Cramér: 2 * int (F_a - F_b)^2 dx
    assert energy_distance([0.0], [2.0]).value == pytest.approx(4.0)


def test_energy_distance_multivariate_brute_force(rng):
    x, y = rng.normal(size=(120, 3)), rng.normal(size=(90, 3)) + 0.3
    wx, wy = rng.exponential(size=120), np.ones(90)
    px, py = wx / wx.sum(), wy / wy.sum()
    ref = 2 * px @ cdist(x, y) @ py - px @ cdist(x, x) @ px - py @ cdist(y, y) @ py
    assert energy_distance(x, y, weights_a=wx, weights_b=wy, block_size=11).value == pytest.approx(
        ref, rel=RTOL
    )
    ub = (
        2 * px @ cdist(x, y) @ py
        - px @ cdist(x, x) @ px / (1 - px @ px)
        - py @ cdist(y, y) @ py / (1 - py @ py)
    )
    assert energy_distance(
        x, y, weights_a=wx, weights_b=wy, estimator="unbiased"
    ).value == pytest.approx(ub, rel=RTOL)


def test_energy_closed_form_gaussians(rng):
    """1-D N(0,1) vs N(d,1): E = 2 E|Z_d| - 2 E|Z_0|, Z_m ~ N(m, 2). The unbiased estimator
    averaged over repeats agrees within 5 standard errors."""
    d, n, reps = 0.5, 1000, 12
    v = 2.0

    def e_abs(m):
        return np.sqrt(2 * v / np.pi) * np.exp(-m * m / (2 * v)) + m * (
            1 - 2 * stats.norm.cdf(-m / np.sqrt(v))
        )

    exact = 2 * e_abs(d) - 2 * e_abs(0.0)
    vals = [
        energy_distance(rng.normal(size=n), rng.normal(d, 1, n), estimator="unbiased").value
        for _ in range(reps)
    ]
    assert abs(np.mean(vals) - exact) < 5 * np.std(vals, ddof=1) / np.sqrt(reps)


def test_energy_detects_shift_at_documented_size():
    n = 2000
    c = calibrate(
        energy_distance,
        _gauss_sampler(2),
        n,
        sample=_gauss_sampler(2, 0.2)(n, np.random.default_rng(31)),
        n_repeats=10,
        seed=32,
    )
    assert c.z > 5  # documented: z near 20


def test_dataframe_columns_matched_by_name(rng):
    a = pd.DataFrame(rng.normal(size=(300, 3)), columns=["x", "y", "z"])
    b = pd.DataFrame(rng.normal(size=(200, 3)), columns=["z", "x", "y"])
    r1 = energy_distance(a, b)
    r2 = energy_distance(a.to_numpy(), b[["x", "y", "z"]].to_numpy())
    assert r1.value == pytest.approx(r2.value, rel=RTOL)


# ----------------------------------------------------------------------------- classifier


def test_classifier_null_consistent_with_half(rng):
    n = 3000
    r = classifier_test(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), seed=1)
    assert abs(r.value - 0.5) < 5 * r.details["null_sigma"]
    assert r.p_value > 1e-4
    assert r.uncertainty > 0


def test_classifier_detects_shift_at_documented_size(rng):
    n = 5000
    r = classifier_test(rng.normal(0.2, 1, n), rng.normal(size=n), seed=2)
    assert r.p_value < 1e-6
    # cannot beat the optimal classifier's AUC Phi(0.2/sqrt 2) by more than 5 sigma
    assert r.value < stats.norm.cdf(0.2 / np.sqrt(2)) + 5 * r.details["null_sigma"]


def test_classifier_uses_weights(rng):
    """Importance weights that morph N(0,1) into N(0.3,1) make the samples indistinguishable."""
    n, d = 4000, 0.3
    a, b = rng.normal(size=n), rng.normal(d, 1, n)
    w = stats.norm.pdf(a, d) / stats.norm.pdf(a)
    r = classifier_test(a, b, weights_a=w, seed=3)
    assert abs(r.value - 0.5) < 5 * r.details["null_sigma"]
    assert classifier_test(a, b, seed=3).p_value < 1e-6
