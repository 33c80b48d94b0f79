"""Admissible friction terms and the ConstitutiveNetwork (direct ``(h, u, S)`` samples)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ariasim.discovery import DEFAULT_TERMS, TERMS, ConstitutiveNetwork, friction_formula
from ariasim.errors import ConfigError, InputError

G = 9.81


def _design(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "h": rng.uniform(0.05, 3.0, n),
            "u": rng.uniform(0.0, 25.0, n),
            "cos_phi": np.cos(np.deg2rad(rng.uniform(0.0, 40.0, n))),
        }
    )


def test_every_term_is_admissible():
    rng = np.random.default_rng(1)
    h = np.concatenate([rng.uniform(0.0, 5.0, 500), [0.0, 1e-15]])
    u = np.concatenate([rng.uniform(-30.0, 30.0, 500), [3.0, 0.0]])  # sign of u irrelevant
    c = np.concatenate([rng.uniform(0.0, 1.0, 500), [1.0, 1.0]])
    for name, term in TERMS.items():
        phi = term.basis(h, u, g=G, cos_phi=c)
        assert phi.shape == h.shape and np.all(np.isfinite(phi)), name
        assert np.all(phi >= 0), name
        at_rest = term.basis(h, np.zeros_like(h), g=G, cos_phi=c)
        if not term.rest_threshold:
            assert np.all(at_rest == 0), name  # rate terms vanish at u = 0
    for _ in range(20):
        weights = {t: float(rng.exponential()) * rng.integers(0, 2) for t in TERMS}
        f = friction_formula(weights)
        hp, up = h[:500] + 0.01, np.abs(u[:500])
        s = f(h=hp, u=up, cos_phi=c[:500])
        assert np.all(s >= 0) and np.all(s * up >= 0)


def test_formula_is_the_basis_sum_and_leaves_zero_terms_out():
    rng = np.random.default_rng(2)
    X = _design(rng, 200)
    weights = {
        "coulomb": 0.3,
        "turbulent": 1 / 400,
        "viscous": 0.0,
        "yield": 0.5,
        "collisional": 0.01,
    }
    f = friction_formula(weights, g=G)
    direct = sum(
        w * TERMS[t].basis(X["h"], X["u"], g=G, cos_phi=X["cos_phi"]) for t, w in weights.items()
    )
    np.testing.assert_allclose(f(X), direct, rtol=1e-12)
    assert f.metadata["terms"] == {
        "coulomb": 0.3,
        "turbulent": 1 / 400,
        "yield": 0.5,
        "collisional": 0.01,
    }
    assert "h" in f.names and f.output.name == "S" and f.output.unit == "m^2/s^2"
    assert f.expression.free_symbols and "viscous" not in f.metadata["terms"]
    assert friction_formula({"coulomb": 0.0})(h=1.0, u=1.0, cos_phi=1.0) == 0


@pytest.mark.parametrize(
    ("weights", "named"),
    [
        ({"drag": 1.0}, "drag"),
        ({"coulomb": -0.1}, "coulomb"),
        ({"turbulent": float("nan")}, "turbulent"),
        ({"yield": float("inf")}, "yield"),
        ({"viscous": "a"}, "viscous"),
    ],
)
def test_friction_formula_rejects_bad_weights(weights, named):
    with pytest.raises(ConfigError, match=named):
        friction_formula(weights)


def _standard_errors(X: pd.DataFrame, terms: list[str], sigma: np.ndarray) -> np.ndarray:
    """sd of the weighted least-squares weights on the active set, from the true noise."""
    A = np.column_stack([TERMS[t].basis(X["h"], X["u"], g=G, cos_phi=X["cos_phi"]) for t in terms])
    # y = A w + e, Var e = diag(sigma^2): Cov(w_ols) = (A^T A)^-1 A^T diag(sigma^2) A (A^T A)^-1
    inv = np.linalg.inv(A.T @ A)
    cov = inv @ (A.T * sigma**2) @ A @ inv
    return np.sqrt(np.diag(cov))


def test_recovers_voellmy_terms_and_weights():
    rng = np.random.default_rng(3)
    X = _design(rng, 1000)
    mu, xi = 0.3, 400.0
    truth = mu * G * X["h"] * X["cos_phi"] + G * X["u"] ** 2 / xi
    sigma = 0.02 * truth.to_numpy() + 0.05  # 2 % relative noise plus a small floor
    y = truth + sigma * rng.standard_normal(len(X))
    net = ConstitutiveNetwork().fit(X, y)
    assert net.active_terms_ == ["coulomb", "turbulent"]
    assert net.weights_["viscous"] == 0 and net.weights_["yield"] == 0
    sd = _standard_errors(X, ["coulomb", "turbulent"], sigma)
    est = np.array([net.weights_["coulomb"], net.weights_["turbulent"]])
    z = (est - np.array([mu, 1 / xi])) / sd
    assert np.all(np.abs(z) < 4), z  # 4 sd: a false failure about once in 8000 runs
    # weighted by 1/sigma^2 (mean 1): the same terms; the fit's own standard errors,
    # sigma_hat^2 (A^T W A)^-1, estimate the true ones (A^T Sigma^-1 A)^-1 with relative
    # error ~ 1/sqrt(2 (n - k)) = 0.022: 0.12 is over 5 of those
    w = 1 / sigma**2
    w /= w.mean()
    wnet = ConstitutiveNetwork().fit(X, y, sample_weight=w)
    assert wnet.active_terms_ == ["coulomb", "turbulent"]
    A = np.column_stack(
        [
            TERMS[t].basis(X["h"], X["u"], g=G, cos_phi=X["cos_phi"])
            for t in ("coulomb", "turbulent")
        ]
    )
    wsd = np.sqrt(np.diag(np.linalg.inv(A.T @ (A / sigma[:, None] ** 2))))
    own = np.array([wnet.standard_errors_[t] for t in ("coulomb", "turbulent")])
    np.testing.assert_allclose(own, wsd, rtol=0.12)
    wz = (np.array([wnet.weights_["coulomb"], wnet.weights_["turbulent"]]) - [mu, 1 / xi]) / wsd
    assert np.all(np.abs(wz) < 4), wz
    assert net.criterion_[0]["terms"] == ["coulomb", "turbulent"]
    assert net.criterion_[0]["delta"] == 0 and len(net.criterion_) == 2 ** len(DEFAULT_TERMS)
    np.testing.assert_allclose(net.predict(X), net.formula_(X), rtol=1e-10)
    assert set(net.formulas_["S"].metadata["terms"]) == {"coulomb", "turbulent"}


def test_all_terms_without_selection_keeps_every_candidate_weight():
    rng = np.random.default_rng(4)
    X = _design(rng, 300)
    y = 0.3 * G * X["h"] * X["cos_phi"] + G * X["u"] ** 2 / 400 + 0.1 * rng.standard_normal(300)
    net = ConstitutiveNetwork(selection="none").fit(X, y)
    assert len(net.criterion_) == 1 and set(net.weights_) == set(DEFAULT_TERMS)
    assert all(w >= 0 for w in net.weights_.values())


def test_pure_noise_selects_at_most_yield():
    """S = constant + noise: BIC keeps yield and, per spurious term, adds it when its
    likelihood-ratio statistic (chi2_1, halved by the w >= 0 boundary) exceeds ln(n):
    P = 0.5 P(chi2_1 > ln 500) = 0.0064 per term, about 0.02 for the three. Over 20 data
    sets, 4 or more with an extra term has probability 0.001."""
    rng = np.random.default_rng(5)
    extra = 0
    for _ in range(20):
        X = _design(rng, 500)
        y = 2.0 + 0.3 * rng.standard_normal(500)
        net = ConstitutiveNetwork().fit(X, y)
        assert "yield" in net.active_terms_
        extra += len(net.active_terms_) > 1
        if net.active_terms_ == ["yield"]:
            assert abs(net.weights_["yield"] - 2.0) < 4 * 0.3 / np.sqrt(500)
    assert extra <= 3


def test_collisional_term_is_selected_when_present():
    rng = np.random.default_rng(8)
    X = _design(rng, 1000)
    truth = 0.3 * G * X["h"] * X["cos_phi"] + 0.01 * (X["u"] / X["h"]) ** 2
    y = truth * (1 + 0.02 * rng.standard_normal(1000))
    # relative noise over four decades of S: the Gaussian likelihood of the criterion needs
    # the weights 1/sigma^2 (unweighted, the largest S dominate and a spurious term enters)
    w = 1 / truth.to_numpy() ** 2
    net = ConstitutiveNetwork(terms=(*DEFAULT_TERMS, "collisional"))
    net.fit(X, y, sample_weight=w / w.mean())
    assert net.active_terms_ == ["coulomb", "collisional"]
    assert len(net.criterion_) == 2**5


def test_weights_are_frequency_weights_and_array_input_works():
    rng = np.random.default_rng(6)
    X = _design(rng, 120)
    y = 0.2 * G * X["h"] * X["cos_phi"] + 1.0 + 0.2 * rng.standard_normal(120)
    w = rng.integers(0, 3, 120)
    a = ConstitutiveNetwork().fit(X.to_numpy(), y, sample_weight=w)
    b = ConstitutiveNetwork().fit(np.repeat(X.to_numpy(), w, axis=0), np.repeat(y, w))
    assert a.active_terms_ == b.active_terms_
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-12)
    two = ConstitutiveNetwork().fit(X[["h", "u"]].to_numpy(), y)  # cos_phi defaults to 1
    assert two.n_features_in_ == 2 and two.predict(np.array([[1.0, 0.0]])).shape == (1,)


@pytest.mark.parametrize(
    ("X", "column"),
    [
        (pd.DataFrame({"h": [1.0, 2.0], "speed": [1.0, 2.0]}), "speed"),
        (pd.DataFrame({"h": [1.0, 2.0]}), "u"),
        (pd.DataFrame({"h": [-1.0, 2.0], "u": [1.0, 2.0]}), "h"),
        (pd.DataFrame({"h": [1.0, 2.0], "u": [1.0, 2.0], "cos_phi": [0.5, 1.5]}), "cos_phi"),
        (np.ones((2, 4)), "X"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), "X"),
    ],
)
def test_bad_input_names_the_column(X, column):
    with pytest.raises(InputError, match=column):
        ConstitutiveNetwork().fit(X, np.ones(len(X)))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"terms": ("coulomb", "drag")}, "terms"),
        ({"terms": ()}, "terms"),
        ({"terms": "coulomb"}, "terms"),
        ({"selection": "l1"}, "selection"),
        ({"criterion": "mdl"}, "criterion"),
        ({"g": -1.0}, "g"),
        ({"max_terms": 0}, "max_terms"),
    ],
)
def test_bad_parameters_are_named(params, named):
    X = pd.DataFrame({"h": [1.0, 2.0, 3.0], "u": [1.0, 2.0, 3.0]})
    with pytest.raises(ConfigError, match=named):
        ConstitutiveNetwork(**params).fit(X, np.ones(3))
    with pytest.raises(InputError, match="sample_weight"):
        ConstitutiveNetwork().fit(X, np.ones(3), sample_weight=[1.0, -1.0, 1.0])


def test_contract_on_physical_inputs():
    """What the generic sklearn checks cannot test on their arbitrary X (see
    test_estimator_checks.py): pickling, clone, row order and subset invariance."""
    rng = np.random.default_rng(7)
    X = _design(rng, 200)
    y = 0.3 * G * X["h"] * X["cos_phi"] + 0.5 + 0.1 * rng.standard_normal(200)
    net = ConstitutiveNetwork(max_terms=3)
    params = net.get_params()
    net.fit(X, y)
    assert net.get_params() == params and not hasattr(clone(net), "coef_")
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict(X), net.predict(X))
    perm = rng.permutation(200)
    np.testing.assert_array_equal(net.predict(X.iloc[perm]), net.predict(X)[perm])
    np.testing.assert_array_equal(net.predict(X.iloc[:7]), net.predict(X)[:7])
    assert max(r["k"] for r in net.criterion_) == 3
    np.testing.assert_array_equal(ConstitutiveNetwork(max_terms=3).fit(X, y).coef_, net.coef_)
