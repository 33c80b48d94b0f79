"""The inverse problem's likelihood with the surrogate's own error (issue 15, item 4):
binned delays whose expectations carry a measured error, bounded parameter ranges with
open (one-sided) intervals, and the error measurement on held-out MC tables."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ariasim.apps.photons.surrogate import (
    PhotonSurrogate,
    binned_expectation,
    delay_bin_edges,
    fit_medium,
    surrogate_bin_errors,
)
from ariasim.errors import ConfigError
from ariasim.surrogates.density import SymbolicDensity
from ariasim.surrogates.formula import Formula
from ariasim.surrogates.likelihood import (
    correlated_error_nll,
    gamma_poisson_nll,
    poisson_nll,
    shared_error_nll,
)

NAMES = ["distance_m", "lambda_a_m", "lambda_e_m"]


def _toy(shift: float = 0.0, media: list | None = None) -> PhotonSurrogate:
    """A known surrogate: diffusion-like yield, a generalized-gamma delay density whose
    scale grows with distance and shrinks with the scattering length."""
    yf = Formula(
        f"{shift} - distance_m / sqrt(lambda_a_m * lambda_e_m / 3)", NAMES, output="log_yield"
    )
    dens = SymbolicDensity(t_name="delay_ns")
    dens.params_ = {
        "mu_0": Formula("log(distance_m) + 1.5 - log(lambda_e_m) / 2", NAMES),
        "log_sigma_0": Formula("-0.2", NAMES),
        "log_q_0": Formula("-0.5", NAMES),
    }
    dens.variables_ = list(dens.params_["mu_0"].variables)
    dens.n_features_in_ = 3
    dens.nll_ = np.nan
    dens.bins_ = []
    dens._build_formulas()
    meta = {"media": media} if media is not None else {}
    return PhotonSurrogate(yf, dens, metadata=meta)


def _dataset(sur, truth, n_photons, rng, d=None):
    d = np.linspace(10, 100, 30) if d is None else d
    cond = {"lambda_a_m": truth[0], "lambda_e_m": truth[1]}
    counts = rng.poisson(sur.expected_hits(d, n_photons, **cond))
    delays = [
        sur.sample_delays(np.array([di]), int(k), rng, **cond)[0]
        for di, k in zip(d, counts, strict=True)
    ]
    return d, counts, delays


def test_gamma_poisson_is_negative_binomial_and_poisson_at_zero_error():
    n = np.array([0, 1, 4, 17, 60])
    mu = np.array([0.3, 2.0, 4.0, 11.0, 70.0])
    np.testing.assert_allclose(gamma_poisson_nll(n, mu, 0.0), -stats.poisson.logpmf(n, mu))
    r = 1 / 0.2**2
    np.testing.assert_allclose(
        gamma_poisson_nll(n, mu, 0.2), -stats.nbinom.logpmf(n, r, r / (r + mu)), rtol=1e-10
    )
    # continuous at eps -> 0 (no loss of precision for tiny errors)
    np.testing.assert_allclose(
        gamma_poisson_nll(n, mu, 1e-7), poisson_nll(n, mu), rtol=0, atol=1e-8
    )
    with pytest.raises(ConfigError, match="rel_error"):
        gamma_poisson_nll(n, mu, -0.1)


def test_shared_and_correlated_errors_reduce_to_poisson_and_to_each_other():
    rng = np.random.default_rng(3)
    mu = rng.uniform(0.1, 20, 12)
    n = rng.poisson(mu * 1.3)
    g = np.repeat(np.arange(3), 4)
    plain = float(poisson_nll(n, mu).sum())
    assert shared_error_nll(n, mu, [0.0, 0.0, 0.0], g)[0] == pytest.approx(plain, rel=1e-12)
    assert correlated_error_nll(n, mu, np.zeros((2, 3)), g)[0] == pytest.approx(plain, rel=1e-12)
    eps = np.array([0.1, 0.3, 0.6])
    shared, delta = shared_error_nll(n, mu, eps, g)
    corr, theta = correlated_error_nll(n, mu, np.diag(eps), g)
    assert corr == pytest.approx(shared, rel=1e-9)
    np.testing.assert_allclose(theta * eps, delta, atol=1e-7)
    # the profiled nuisance is the minimum over delta: a brute-force scan is never lower
    for k in range(3):
        sel = g == k
        scan = [
            poisson_nll(n[sel], mu[sel] * np.exp(x)).sum() + 0.5 * (x / eps[k]) ** 2
            for x in np.linspace(-2, 2, 4001)
        ]
        best = (
            poisson_nll(n[sel], mu[sel] * np.exp(delta[k])).sum() + 0.5 * (delta[k] / eps[k]) ** 2
        )
        assert best <= min(scan) + 1e-9
    assert shared < plain  # the data are 30 % above the model: the error absorbs part


def test_binned_likelihood_without_error_is_the_poisson_one():
    """With zero per-bin error the shared and independent binned likelihoods are the
    Poisson likelihood of the (module, delay bin) counts."""
    sur = _toy(media=[(60.0, 15.0), (200.0, 45.0)])
    rng = np.random.default_rng(5)
    d, counts, delays = _dataset(sur, (120.0, 30.0), 3e6, rng)
    kw = dict(distances_m=d, counts=counts, delays_ns=delays, n_photons=3e6, delay_bins=4)
    a = fit_medium(sur, bin_errors=[0.0] * 4, error_model="shared", **kw)
    b = fit_medium(sur, bin_errors=[0.0] * 4, error_model="independent", **kw)
    assert a["lambda_a_m"] == pytest.approx(b["lambda_a_m"], rel=1e-6)
    assert a["nll"] == pytest.approx(b["nll"], rel=1e-10)
    ref = {"lambda_a_m": np.sqrt(60 * 200.0), "lambda_e_m": np.sqrt(15 * 45.0)}
    edges = delay_bin_edges(sur, d, 4, reference=ref)
    obs = np.array([np.histogram(t, bins=e)[0] for t, e in zip(delays, edges, strict=True)])
    mu = binned_expectation(
        sur, d, edges, 3e6, lambda_a_m=a["lambda_a_m"], lambda_e_m=a["lambda_e_m"]
    )
    assert a["nll"] == pytest.approx(float(poisson_nll(obs, mu).sum()), rel=1e-10)
    assert obs.sum() == counts.sum()  # the bins hold all hits


def test_interval_widens_with_the_surrogate_error():
    sur = _toy(media=[(60.0, 15.0), (200.0, 45.0)])
    rng = np.random.default_rng(8)
    d, counts, delays = _dataset(sur, (120.0, 30.0), 3e6, rng)
    kw = dict(distances_m=d, counts=counts, delays_ns=delays, n_photons=3e6, delay_bins=4)
    widths = []
    for eps in (0.0, 0.1, 0.4):
        fit = fit_medium(sur, bin_errors=[eps] * 4, **kw)
        widths.append(fit["hi_lambda_a_m"] - fit["lo_lambda_a_m"])
    assert widths[0] < widths[1] < widths[2]
    modes = 0.4 * np.eye(4)  # correlated-error form of the same error
    fit = fit_medium(sur, error_modes=modes, **kw)
    assert fit["error_model"] == "correlated"
    assert fit["hi_lambda_a_m"] - fit["lo_lambda_a_m"] == pytest.approx(widths[2], rel=1e-3)


def test_no_maximum_inside_the_range_gives_an_open_interval():
    """Counts far above what the surrogate can give anywhere in its range: the best fit
    is on the range's upper end and the interval is open there (never a runaway 1e20)."""
    sur = _toy(media=[(60.0, 15.0), (150.0, 40.0)])
    d = np.linspace(10, 100, 30)
    high = sur.expected_hits(d, 1e6, lambda_a_m=400.0, lambda_e_m=100.0)
    counts = np.round(high).astype(int)
    fit = fit_medium(
        sur, distances_m=d, counts=counts, delays_ns=[np.zeros(0)] * 30, n_photons=1e6,
        delay_bins=4, use_times=False, model_error=0.05,
    )  # fmt: skip
    assert fit["at_bound_lambda_a_m"] and fit["lambda_a_m"] == pytest.approx(150.0)
    assert fit["hi_open_lambda_a_m"] and fit["hi_lambda_a_m"] == 150.0
    assert fit["interval_lambda_a_m"].startswith(">")
    assert "open" in fit["interval_lambda_a_m"]
    assert np.isnan(fit["hessian_err_lambda_a_m"])
    # the unbinned likelihood is bounded the same way
    fit = fit_medium(
        sur, distances_m=d, counts=counts, delays_ns=[np.zeros(0)] * 30, n_photons=1e6,
        use_times=False,
    )  # fmt: skip
    assert fit["lambda_a_m"] <= 150.0 and fit["hi_open_lambda_a_m"]
    with pytest.raises(ConfigError, match="bounds"):
        fit_medium(
            sur, distances_m=d, counts=counts, delays_ns=[np.zeros(0)] * 30, n_photons=1e6,
            bounds=((100.0, 50.0), (10.0, 40.0)),
        )  # fmt: skip


def test_surrogate_error_is_measured_against_the_mc_tables():
    """Bin contents of the MC add up to the count; a surrogate 2x too high in its yield
    is off by exactly ln 2 more in every bin and in the count."""
    from ariasim.apps.photons.surrogate import make_training_data
    from ariasim.simulators.photons import constant_medium

    media = [(80.0, 20.0), (120.0, 30.0)]
    data = make_training_data(
        [constant_medium(a, e) for a, e in media], [20.0, 45.0, 70.0], n_photons=3e4, seed=2
    )
    ref = {"lambda_a_m": 100.0, "lambda_e_m": 25.0}
    out = [
        surrogate_bin_errors(
            _toy(shift), data.tables, data.media, 3, reference=ref, band_edges_m=[10, 40, 80]
        )
        for shift in (0.0, np.log(2.0))
    ]
    for o in out:
        assert np.shape(o["bins"]) == (2, 3) and len(o["count"]) == 2
        assert np.shape(o["modes_bins"]) == (2, 6) and np.shape(o["modes_count"]) == (2, 2)
        rows = o["rows"]
        for med in data.media:
            for dist in (20.0, 45.0, 70.0):
                sel = [
                    r for r in rows
                    if (r["lambda_a_m"], r["lambda_e_m"], r["distance_m"]) == (*med, dist)
                ]  # fmt: skip
                count = [r["mc"] for r in sel if r["kind"] == "count"]
                assert sum(r["mc"] for r in sel if r["kind"] == "bin") == pytest.approx(count[0])
    diff = [
        b["log_dev"] - a["log_dev"] for a, b in zip(out[0]["rows"], out[1]["rows"], strict=True)
    ]
    np.testing.assert_allclose(diff, -np.log(2.0), atol=1e-9)
