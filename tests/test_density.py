"""Tests of SymbolicDensity, goodness_of_fit and the Pandel baseline.

Statistical thresholds: a p-value is uniform on (0, 1) when the model is right, so a
check "p > alpha" fails by chance with probability alpha; with k such checks in a test we
use alpha = 1e-3 / k (Bonferroni), a false-alarm rate of 1e-3 per test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from ariasim.apps.photons.pandel import PANDEL_CASCADE, Pandel
from ariasim.errors import ConfigError, InputError
from ariasim.surrogates import Formula
from ariasim.surrogates.density import SymbolicDensity, goodness_of_fit


def _gengamma_sample(rng, n):
    """Truth whose log-parameters are exactly quadratic in d (inside the 'poly' model)."""
    d = rng.uniform(5, 150, n)
    logk = -0.5 + 0.02 * d - 5e-5 * d**2
    logth = 3.0 + 0.01 * d
    p = 1.3
    t = np.exp(logth) * rng.gamma(np.exp(logk)) ** (1 / p)
    return t, d


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(10)
    t, d = _gengamma_sample(rng, 30_000)
    model = SymbolicDensity(
        param_model="poly",
        random_state=0,
        variable_names=["d"],
        variable_units=["m"],
        t_name="t",
        t_unit="ns",
    ).fit(d[:, None], t)
    return model


def _random_model(seed: int, n_components: int) -> SymbolicDensity:
    """A density with arbitrary (random) parameter functions: still a valid CDF."""
    rng = np.random.default_rng(seed)
    m = SymbolicDensity(n_components=n_components, variable_names=["d"], t_name="t")
    m.variables_ = [Formula("d", ["d"]).variables[0]]
    m.n_features_in_ = 1
    from ariasim.surrogates.density import _param_names

    m.params_ = {
        nm: Formula(f"{rng.normal(0, 0.5):.3f} + {rng.normal(0, 0.01):.4f}*d", ["d"])
        for nm in _param_names(n_components)
    }
    m.nll_ = np.nan
    m.bins_ = []
    m._build_formulas()
    return m


@pytest.mark.parametrize(("seed", "n_components"), [(1, 1), (2, 1), (3, 2), (4, 2)])
def test_any_parameters_give_a_valid_density(seed, n_components):
    m = _random_model(seed, n_components)
    for d in (5.0, 60.0, 150.0):
        t = np.geomspace(1e-3, 1e5, 4000)
        F = m.cdf(t, np.full((t.size, 1), d))
        assert np.all(np.diff(F) >= -1e-12)
        assert m.cdf(np.array([0.0]), np.array([[d]]))[0] == 0.0
        pdf = m.pdf(t, np.full((t.size, 1), d))
        assert np.all(pdf >= 0)
        # the PDF integrates to the CDF's increase (in log t, where the integrable
        # singularity at t -> 0 is smooth); with F(0) = 0 and F(inf) = 1 the mass is 1
        a, b = 1e-6, 1e6
        mass, err = integrate.quad(
            lambda s, d=d: np.exp(s) * m.pdf(np.array([np.exp(s)]), np.array([[d]]))[0],
            np.log(a),
            np.log(b),
            limit=400,
            points=[0.0, 3.0, 6.0],
        )
        Fa, Fb = m.cdf(np.array([a, b]), np.array([[d], [d]]))
        assert mass == pytest.approx(Fb - Fa, abs=max(1e-7, 10 * err))
        assert m.cdf(np.array([1e300]), np.array([[d]]))[0] == pytest.approx(1.0, abs=1e-12)


def test_symbolic_pdf_is_derivative_of_cdf(fitted):
    t = np.linspace(0.5, 800, 50)
    d = np.full(50, 73.0)
    X = np.column_stack([t, d])
    np.testing.assert_allclose(fitted.formulas_["pdf"](X), fitted.pdf(t, d[:, None]), rtol=1e-8)
    np.testing.assert_allclose(fitted.formula_(X), fitted.cdf(t, d[:, None]), rtol=1e-10)
    assert fitted.formula_.variables[0].unit == "ns"
    # the CDF formula survives JSON (lowergamma goes through the whitelist parser)
    again = Formula.from_json(fitted.formula_.to_json())
    np.testing.assert_allclose(again(X), fitted.formula_(X), rtol=1e-12)


def test_density_json_round_trip(fitted):
    import json

    again = SymbolicDensity.from_dict(json.loads(json.dumps(fitted.to_dict())))
    t = np.linspace(1, 500, 20)
    d = np.linspace(5, 150, 20)[:, None]
    np.testing.assert_allclose(again.cdf(t, d), fitted.cdf(t, d), rtol=1e-12)
    np.testing.assert_allclose(again.log_pdf(t, d), fitted.log_pdf(t, d), rtol=1e-12)
    with pytest.raises(InputError, match="not an ariasim symbolic density"):
        SymbolicDensity.from_dict({"schema": "x"})


def test_fit_is_consistent_with_truth_on_held_out_data(fitted):
    rng = np.random.default_rng(99)
    t, d = _gengamma_sample(rng, 16_000)
    gof = goodness_of_fit(fitted, t, d[:, None], n_bins=8, rng=1)
    assert len(gof) == 8 and gof["n"].sum() == 16_000
    alpha = 1e-3 / (2 * len(gof))
    assert (gof["ks_p"] > alpha).all(), gof
    assert (gof["cvm_p"] > alpha).all(), gof
    assert set(gof.columns) >= {"ks", "cvm", "w1", "chi2", "ndf", "chi2_p"}


def test_goodness_of_fit_rejects_wrong_model():
    rng = np.random.default_rng(5)
    t, d = _gengamma_sample(rng, 8000)
    gof = goodness_of_fit(PANDEL_CASCADE, t, d[:, None], n_bins=4, rng=1)
    assert (gof["ks_p"] < 1e-6).all()


def test_sampling_matches_cdf(fitted):
    X = np.array([[10.0], [120.0]])
    draws = fitted.sample(X, 5000, rng=3)
    assert draws.shape == (2, 5000)
    for row, d in zip(draws, X[:, 0], strict=True):
        p = stats.kstest(row, lambda x, d=d: fitted.cdf(x, np.full((np.size(x), 1), d))).pvalue
        assert p > 1e-3 / 2


def test_symbolic_parameter_functions():
    rng = np.random.default_rng(2)
    t, d = _gengamma_sample(rng, 20_000)
    m = SymbolicDensity(
        param_model="symbolic",
        max_time=2,
        random_state=1,
        variable_names=["d"],
        n_bins=24,
        min_per_bin=400,
    ).fit(d[:, None], t)
    for f in m.params_.values():
        assert np.isfinite(f(np.linspace(5, 150, 200)[:, None])).all()
    t2, d2 = _gengamma_sample(np.random.default_rng(3), 8000)
    gof = goodness_of_fit(m, t2, d2[:, None], n_bins=4, rng=1)
    # a 2 s search need not find the exact parameter functions, but the density must be
    # close: 1-Wasserstein below 5 % of the mean delay in every bin
    assert (gof["w1"] < 0.05 * np.mean(t2)).all(), gof


def test_two_components():
    rng = np.random.default_rng(4)
    n = 8_000
    d = rng.uniform(10, 100, n)
    fast = rng.gamma(2.0, 5.0, n)
    slow = rng.gamma(1.5, 50.0 + d, n)
    t = np.where(rng.uniform(size=n) < 0.4, fast, slow)
    m = SymbolicDensity(
        n_components=2, param_model="poly", random_state=0, n_bins=8, min_per_bin=500
    ).fit(d[:, None], t)
    assert m.formula_.metadata["family"].startswith("mixture of 2")
    gof = goodness_of_fit(m, t, d[:, None], n_bins=4, rng=1)
    assert (gof["ks"] < 0.03).all(), gof


def test_integer_weights_equal_repeated_samples():
    rng = np.random.default_rng(6)
    u = rng.gamma(2.0, 10.0, 3000)
    w = rng.integers(1, 4, u.size).astype(float)
    m = SymbolicDensity()
    _, est_w, _ = m._fit_one(u, w)
    _, est_r, _ = m._fit_one(np.repeat(u, w.astype(int)), np.ones(int(w.sum())))
    np.testing.assert_allclose(est_w, est_r, atol=1e-4)


def test_bad_input():
    t = np.abs(np.random.default_rng(0).normal(size=2000)) + 1
    d = np.random.default_rng(1).uniform(1, 2, 2000)[:, None]
    with pytest.raises(InputError, match=r"column 't'.*below t_min"):
        SymbolicDensity(t_min=1.5).fit(d, t)
    with pytest.raises(InputError, match="at least"):
        SymbolicDensity().fit(d[:100], t[:100])
    with pytest.raises(ConfigError, match="n_components"):
        SymbolicDensity(n_components=3).fit(d, t)
    with pytest.raises(InputError, match=r"finite|NaN"):
        SymbolicDensity().fit(d, np.full(2000, np.nan))
    with pytest.raises(InputError, match="inconsistent numbers of samples"):
        SymbolicDensity().fit(d[:10], t)


# ----------------------------------------------------------------------------- Pandel


def test_pandel_density_and_survival():
    p = PANDEL_CASCADE
    d = np.array([[20.0]])
    mass, _ = integrate.quad(lambda t: p.pdf(np.array([t]), d)[0], 0, np.inf)
    assert mass == pytest.approx(1.0, rel=1e-7)
    assert p.rho == pytest.approx(1 / 450 + 0.22103 / 98)
    # the survival factor is the integral of the unnormalised Pandel function
    # (1/tau)^xi t^(xi-1) exp(-rho t - d/lambda_a) / Gamma(xi)
    xi = 20.0 / p.lambda_m
    unnorm, _ = integrate.quad(
        lambda t: np.exp(
            -xi * np.log(p.tau_ns)
            + (xi - 1) * np.log(t)
            - p.rho * t
            - 20.0 / p.lambda_a_m
            - special.gammaln(xi)
        ),
        0,
        np.inf,
    )
    assert p.survival(d)[0] == pytest.approx(unnorm, rel=1e-7)
    f = p.formula()
    assert f(t=np.array([100.0]), d=np.array([20.0]))[0] == pytest.approx(
        p.pdf(np.array([100.0]), d)[0], rel=1e-10
    )
    with pytest.raises(ConfigError, match="tau_ns"):
        Pandel(tau_ns=-1)


def test_pandel_fit_recovers_parameters():
    truth = Pandel(tau_ns=300.0, lambda_m=30.0, lambda_a_m=98.0)
    rng = np.random.default_rng(8)
    d = rng.uniform(10, 120, 20_000)
    t = truth.sample(d, 1, rng)[:, 0]
    fit = PANDEL_CASCADE.fit(t, d)
    # 5 sigma with sigma from the observed Fisher information of (lambda, rho)
    from ariasim.surrogates.density import numerical_hessian

    def nll(p):
        lam, rho = p
        xi = d / lam
        return -np.sum(xi * np.log(rho) + (xi - 1) * np.log(t) - rho * t - special.gammaln(xi))

    cov = np.linalg.inv(numerical_hessian(nll, np.array([fit.lambda_m, fit.rho]), eps=1e-5))
    sig = np.sqrt(np.diag(cov))
    assert abs(fit.lambda_m - truth.lambda_m) < 5 * sig[0]
    assert abs(fit.rho - truth.rho) < 5 * sig[1]
    p = stats.kstest(fit.cdf(t, d), "uniform").pvalue
    assert p > 1e-3


def test_point_mass_at_t_min():
    """A mixed distribution: a mass p0(d) at t = 0 (like unscattered photons) and a gamma
    above. The fitted mass matches the truth within the binomial error (5 sigma), the CDF
    is p0 at t_min, the draws put the right fraction there, the continuous part passes
    KS on held-out data, and the density survives the JSON round trip."""
    rng = np.random.default_rng(7)

    def draw(n):
        d = rng.uniform(10, 100, n)
        p0 = special.expit(1.0 - d / 20.0)
        t = np.where(rng.uniform(size=n) < p0, 0.0, rng.gamma(2.0, d / 10.0))
        return t, d

    t, d = draw(12_000)
    m = SymbolicDensity(
        point_mass=True, param_model="poly", random_state=0, n_bins=6, min_per_bin=500
    ).fit(d[:, None], t)
    assert "logit_p0" in m.params_ and "point mass" in m.formula_.metadata["family"]
    x = np.array([[20.0], [60.0]])
    p_fit = m.cdf(np.zeros(2), x)
    p_true = special.expit(1.0 - x[:, 0] / 20.0)
    # the per-bin estimate pools about n/6 samples; the refined function at least as many
    err = np.sqrt(p_true * (1 - p_true) / (12_000 / 6))
    assert np.all(np.abs(p_fit - p_true) < 5 * err), (p_fit, p_true)
    assert np.all(m.cdf(-np.ones(2), x) == 0)
    draws = m.sample(np.array([[20.0]]), 4000, rng=1)[0]
    k = int(np.sum(draws == 0.0))
    assert abs(k - 4000 * p_fit[0]) < 5 * np.sqrt(4000 * p_fit[0] * (1 - p_fit[0]))
    assert m.log_pdf(np.zeros(1), x[:1])[0] == pytest.approx(np.log(p_fit[0]), rel=1e-9)
    t2, d2 = draw(6000)
    cont = t2 > 0
    p0 = m.cdf(np.zeros(cont.sum()), d2[cont, None])
    pit = (m.cdf(t2[cont], d2[cont, None]) - p0) / (1 - p0)
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    again = SymbolicDensity.from_dict(m.to_dict())
    np.testing.assert_allclose(again.cdf(t2[:50], d2[:50, None]), m.cdf(t2[:50], d2[:50, None]))
