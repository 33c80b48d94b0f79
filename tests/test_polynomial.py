"""Polynomial likelihood learners: scikit-learn contract and statistical accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates import PolynomialClassifier, PolynomialRegressor

_EXPECTED = {
    # the heteroscedastic likelihood is unbounded when the data are fitted exactly
    # (sigma -> 0, as on the check's small integer-valued data), so the optimum depends
    # on where L-BFGS stops, and the weighted and repeated-row fits stop differently
    "check_sample_weight_equivalence_on_dense_data": "unbounded likelihood on exactly fittable "
    "data: the optimum is where L-BFGS stops",
}


def _expected(est):  # type: ignore[no-untyped-def]
    return _EXPECTED if isinstance(est, PolynomialRegressor) else {}


# max_iter bounded: on the checks' exactly fittable data the likelihood keeps improving
@parametrize_with_checks(
    [PolynomialClassifier(degree=2), PolynomialRegressor(degree=2, max_iter=200)],
    expected_failed_checks=_expected,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_classifier_degree_one_is_logistic_regression():
    """Degree 1 on one column is plain logistic regression: same coefficients as
    scikit-learn's (no penalty) to the optimizers' tolerance, far below their
    statistical error."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (4000, 1))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 1.5 * X[:, 0])))).astype(int)
    ours = PolynomialClassifier(degree=1, ridge=0.0).fit(X, y)
    ref = LogisticRegression(penalty=None, tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, [ref.intercept_[0], ref.coef_[0, 0]], atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(ours.formula_(X), ours.predict_proba(X)[:, 1], atol=1e-12)
    assert ours.formulas_["probability"] is ours.formula_


@pytest.mark.parametrize("loss", ["gaussian", "lognormal"])
def test_regressor_recovers_heteroscedastic_truth(loss):
    """mu and sigma of a known heteroscedastic model within 5 standard errors."""
    rng = np.random.default_rng(1)
    n = 20_000
    X = np.column_stack([rng.uniform(0, 3, n), rng.uniform(0, 2, n)])
    mu = 0.1 + 0.05 * X[:, 0]
    sig = 0.05 * np.exp(-0.3 * X[:, 0])
    z = rng.normal(mu, sig)
    y = np.exp(z) if loss == "lognormal" else z
    reg = PolynomialRegressor(degree=2, loss=loss, variable_names=["a", "b"]).fit(X, y)
    G = np.column_stack([np.linspace(0.2, 2.8, 7), np.full(7, 1.0)])
    mu_g, sig_g = 0.1 + 0.05 * G[:, 0], 0.05 * np.exp(-0.3 * G[:, 0])
    # a quadratic fit's error at a point is a few times sigma / sqrt(n)
    tol_mu = 5 * 3 * sig_g / np.sqrt(n)
    tol_s = 5 * 3 * sig_g / np.sqrt(2 * n)
    s_hat = reg.predict_sigma(G)
    np.testing.assert_array_less(np.abs(s_hat - sig_g), tol_s)
    mean_true = np.exp(mu_g + sig_g**2 / 2) if loss == "lognormal" else mu_g
    scale = mean_true if loss == "lognormal" else 1.0
    np.testing.assert_array_less(np.abs(reg.predict(G) - mean_true), tol_mu * scale)
    np.testing.assert_allclose(reg.formulas_["mean"](G), reg.predict(G), rtol=1e-10)
    np.testing.assert_allclose(reg.formulas_["sigma"](G), s_hat, rtol=1e-10)
    assert list(reg.formula_.names) == ["a", "b"]


def test_weights_equal_repeated_rows_and_basis_rules():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.uniform(0, 4, 600), rng.uniform(1.0, 1.2, 600)])
    y = (rng.random(600) < 0.3 + 0.1 * X[:, 0]).astype(int)
    w = rng.integers(0, 3, 600)
    a = PolynomialClassifier().fit(X, y, sample_weight=w)
    b = PolynomialClassifier().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)
    # a second column narrower than 0.25 gets no power; 0.25..0.6 a linear one
    assert all(p[1] == 0 for p in a.powers_) and len(a.powers_) == 4
    X[:, 1] = rng.uniform(1.0, 1.5, 600)
    assert max(p[1] for p in clone(a).fit(X, y).powers_) == 1


def test_errors_name_the_parameter():
    X, y = np.ones((10, 2)), np.arange(10.0)
    with pytest.raises(ConfigError, match="degree"):
        PolynomialRegressor(degree=-1).fit(X, y)
    with pytest.raises(ConfigError, match="loss"):
        PolynomialRegressor(loss="poisson").fit(X, y)
    with pytest.raises(InputError, match="y > 0"):
        PolynomialRegressor(loss="lognormal").fit(X, y)
    with pytest.raises(ConfigError, match="variable_names"):
        PolynomialRegressor(variable_names=["a"]).fit(X, y)
