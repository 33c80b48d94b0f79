"""Per-feature metrics against scipy and closed forms; weights vs duplicated rows; sensitivity.

Statistical tolerances are 5 standard errors of the quantity tested; the seeds are fixed,
so the tests are deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ariasim.errors import ConfigError, InputError
from ariasim.metrics import (
    histogram_chi2,
    ks_test,
    moment_differences,
    separation_power,
    wasserstein_1d,
    weighted_moments,
)

RTOL = 1e-10  # floating-point agreement for deterministic identities


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def _duplicate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.repeat(x, k)


# ----------------------------------------------------------------------------- moments


def test_moments_match_scipy(rng):
    x = rng.gamma(2.0, size=3000)
    m = weighted_moments(x)
    assert m["mean"] == pytest.approx(x.mean(), rel=RTOL)
    assert m["variance"] == pytest.approx(x.var(), rel=RTOL)
    assert m["skewness"] == pytest.approx(stats.skew(x), rel=RTOL)
    assert m["kurtosis"] == pytest.approx(stats.kurtosis(x), rel=RTOL)


def test_moments_integer_weights_equal_duplicated_rows(rng):
    a, b = rng.normal(size=500), rng.gamma(3.0, size=400)
    ka, kb = rng.integers(1, 5, size=500), rng.integers(1, 4, size=400)
    weighted = moment_differences(a, b, weights_a=ka, weights_b=kb)
    dup = moment_differences(_duplicate(a, ka), _duplicate(b, kb))
    for name, r in weighted.items():
        assert r.value == pytest.approx(dup[name].value, rel=RTOL, abs=1e-12), name
    # weights only matter through their ratios
    scaled = moment_differences(a, b, weights_a=3.7 * ka, weights_b=0.01 * kb)
    for name, r in weighted.items():
        assert r.value == pytest.approx(scaled[name].value, rel=RTOL, abs=1e-12), name


def test_moment_differences_detect_shift_and_width_at_documented_size(rng):
    n = 20_000
    a = rng.normal(size=n)
    md = moment_differences(rng.normal(0.1, 1.0, n), a)
    assert md["mean_diff"].value / md["mean_diff"].uncertainty > 5  # expected 10 sigma
    assert md["mean_diff"].p_value < 1e-6
    mv = moment_differences(rng.normal(0.0, 1.1, n), a)
    assert mv["variance_diff"].value / mv["variance_diff"].uncertainty > 5  # expected 13


def test_moment_null_p_values_not_tiny(rng):
    n = 5000
    w = rng.uniform(0.5, 1.5, n)
    md = moment_differences(rng.normal(size=n), rng.normal(size=n), weights_a=w)
    for name, r in md.items():
        assert r.p_value > 1e-4, name
        assert abs(r.value) < 5 * r.uncertainty, name


def test_standard_errors_match_spread_of_repeats(rng):
    """The analytic standard error of the mean difference agrees with the spread of repeats."""
    n, reps = 400, 300
    vals, ses = [], []
    for _ in range(reps):
        w = rng.exponential(size=n)
        r = moment_differences(rng.normal(size=n), rng.normal(size=n), weights_a=w)["mean_diff"]
        vals.append(r.value)
        ses.append(r.uncertainty)
    # the std of a sample std has relative error 1/sqrt(2 (reps - 1))
    rel = 5 / np.sqrt(2 * (reps - 1))
    assert np.std(vals, ddof=1) == pytest.approx(np.mean(ses), rel=rel)


# ----------------------------------------------------------------------------- Wasserstein


def test_wasserstein_matches_scipy(rng):
    a, b = rng.normal(size=700), rng.standard_t(3, size=500)
    wa, wb = rng.uniform(0, 2, 700), rng.exponential(size=500)
    assert wasserstein_1d(a, b).value == pytest.approx(stats.wasserstein_distance(a, b), rel=RTOL)
    assert wasserstein_1d(a, b, weights_a=wa, weights_b=wb).value == pytest.approx(
        stats.wasserstein_distance(a, b, wa, wb), rel=RTOL
    )


def test_wasserstein_gaussians_equal_width_is_mean_shift(rng):
    """W1(N(0,1), N(d,1)) = |d|; for d >> noise the estimate is the difference of sample
    means, standard error sqrt(2/n)."""
    n, d = 20_000, 1.0
    w = wasserstein_1d(rng.normal(size=n), rng.normal(d, 1.0, n)).value
    assert abs(w - d) < 5 * np.sqrt(2.0 / n)


def test_wasserstein_integer_weights_equal_duplicated_rows(rng):
    a, b = rng.normal(size=300), rng.normal(0.3, size=200)
    ka = rng.integers(1, 4, 300)
    assert wasserstein_1d(a, b, weights_a=ka).value == pytest.approx(
        wasserstein_1d(_duplicate(a, ka), b).value, rel=RTOL
    )


# ----------------------------------------------------------------------------- KS


@pytest.mark.parametrize("n1,n2", [(40, 55), (1000, 1000), (3000, 2000), (12000, 15000)])
def test_ks_unweighted_equals_scipy_exactly(rng, n1, n2):
    a, b = rng.normal(size=n1), rng.normal(0.05, 1.1, size=n2)
    r, s = ks_test(a, b), stats.ks_2samp(a, b)
    assert r.value == s.statistic
    assert r.p_value == s.pvalue


def test_ks_with_ties_equals_scipy(rng):
    a, b = rng.integers(0, 10, 500).astype(float), rng.integers(0, 10, 400).astype(float)
    assert ks_test(a, b).value == stats.ks_2samp(a, b).statistic


def test_ks_weighted(rng):
    a, b = rng.normal(size=400), rng.normal(0.2, size=300)
    ka, kb = rng.integers(1, 4, 400), rng.integers(1, 3, 300)
    r = ks_test(a, b, weights_a=ka, weights_b=kb)
    assert r.value == pytest.approx(
        stats.ks_2samp(_duplicate(a, ka), _duplicate(b, kb)).statistic, abs=1e-12
    )
    # p-value: Smirnov's distribution at the Kish effective sizes
    ne_a, ne_b = ka.sum() ** 2 / (ka**2).sum(), kb.sum() ** 2 / (kb**2).sum()
    en = round(ne_a * ne_b / (ne_a + ne_b))
    assert r.p_value == pytest.approx(stats.kstwo.sf(r.value, en), rel=1e-12)


def test_ks_weighted_null_p_values_are_calibrated(rng):
    """Under the null the weighted p-value is (approximately) uniform: the fraction below 0.1
    is binomial(reps, 0.1) within 5 sigma."""
    reps, n = 300, 400
    ps = np.array(
        [
            ks_test(
                rng.normal(size=n), rng.normal(size=n), weights_a=rng.uniform(0.2, 1.8, n)
            ).p_value
            for _ in range(reps)
        ]
    )
    frac = np.mean(ps < 0.1)
    assert abs(frac - 0.1) < 5 * np.sqrt(0.1 * 0.9 / reps)


def test_ks_detects_shift_at_documented_size(rng):
    n = 20_000
    assert ks_test(rng.normal(0.1, 1.0, n), rng.normal(size=n)).p_value < 1e-6


# ----------------------------------------------------------------------------- histograms


def test_chi2_equal_sizes_unweighted_is_pearson(rng):
    n = 4000
    a, b = rng.normal(size=n), rng.normal(0.05, size=n)
    edges = np.linspace(-3, 3, 21)
    a, b = np.clip(a, -2.999, 2.999), np.clip(b, -2.999, 2.999)
    r = histogram_chi2(a, b, bins=edges)
    ha, _ = np.histogram(a, edges)
    hb, _ = np.histogram(b, edges)
    keep = (ha + hb) > 0
    s = stats.chi2_contingency(np.vstack([ha[keep], hb[keep]]), correction=False)
    assert r.value == pytest.approx(s.statistic, rel=RTOL)
    assert r.details["ndf"] == s.dof
    assert r.p_value == pytest.approx(s.pvalue, rel=1e-8)
    assert np.sum(r.details["pulls"] ** 2) == pytest.approx(r.value, rel=RTOL)


def test_chi2_weighted_null_mean_is_ndf(rng):
    """Under the null the weighted X^2 has mean ndf and variance 2 ndf."""
    reps, n = 60, 3000
    edges = np.linspace(-2.5, 2.5, 16)
    vals = []
    for _ in range(reps):
        a, b = rng.normal(size=n), rng.normal(size=n)
        vals.append(
            histogram_chi2(
                a,
                b,
                weights_a=rng.exponential(size=n),
                weights_b=rng.uniform(0.5, 1.5, n),
                bins=edges,
            ).value
        )
    ndf = len(edges) - 2
    assert abs(np.mean(vals) - ndf) < 5 * np.sqrt(2 * ndf / reps)


def test_chi2_and_separation_integer_weights_equal_duplicates(rng):
    a, b = rng.normal(size=600), rng.normal(0.1, size=500)
    ka = rng.integers(1, 4, 600)
    edges = np.linspace(-4, 4, 17)
    sp = separation_power(a, b, weights_a=ka, bins=edges).value
    assert sp == pytest.approx(separation_power(_duplicate(a, ka), b, bins=edges).value, rel=RTOL)


def test_chi2_detects_shift_at_documented_size(rng):
    n = 20_000
    r = histogram_chi2(rng.normal(0.1, 1.0, n), rng.normal(size=n))
    assert r.details["ndf"] == 49
    assert r.p_value < 1e-6


def test_separation_power_closed_forms(rng):
    x = rng.normal(size=1000)
    assert separation_power(x, x).value == 0.0
    assert separation_power(
        rng.uniform(0, 1, 500), rng.uniform(2, 3, 500), bins=np.linspace(0, 3, 7)
    ).value == pytest.approx(1.0)
    # two bins: h_a = (3/4, 1/4), h_b = (1/4, 3/4) -> S = 1/2 * 2 * (1/2)^2 / 1 = 1/4
    a = np.array([0.5, 0.5, 0.5, 1.5])
    b = np.array([0.5, 1.5, 1.5, 1.5])
    assert separation_power(a, b, bins=[0, 1, 2]).value == pytest.approx(0.25)


def test_separation_power_noise_level_and_shift(rng):
    """The documented noise level is the null mean to leading order; a 0.1 sigma shift at
    20,000 events stands out from it."""
    n, reps = 20_000, 30
    null = [separation_power(rng.normal(size=n), rng.normal(size=n)) for _ in range(reps)]
    vals = np.array([r.value for r in null])
    assert abs(vals.mean() - null[0].details["noise_level"]) < 5 * vals.std(ddof=1) / np.sqrt(reps)
    shifted = separation_power(rng.normal(0.1, 1.0, n), rng.normal(size=n)).value
    assert shifted > vals.mean() + 5 * vals.std(ddof=1)


# ----------------------------------------------------------------------------- input checks


def test_negative_weights_rejected(rng):
    w = np.ones(10)
    w[3] = -1
    with pytest.raises(ConfigError, match="weights_a"):
        ks_test(rng.normal(size=10), rng.normal(size=10), weights_a=w)
    with pytest.raises(ConfigError, match="weights_b"):
        wasserstein_1d(rng.normal(size=10), rng.normal(size=10), weights_b=np.ones(9))


def test_nan_rejected_naming_column(rng):
    x = pd.DataFrame({"energy": [1.0, np.nan, 3.0]})
    with pytest.raises(InputError, match="energy"):
        ks_test(x, pd.DataFrame({"energy": [1.0, 2.0]}))


def test_multi_feature_input_rejected_with_hint(rng):
    with pytest.raises(InputError, match="compare"):
        ks_test(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)))
