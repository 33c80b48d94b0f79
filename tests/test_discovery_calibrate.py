"""ariasim.discovery's Bayesian core: prior, design, emulator, posterior, calibrate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from ariasim.discovery.calibration import calibrate
from ariasim.discovery.design import spike_slab_design
from ariasim.discovery.emulator import GPEmulator
from ariasim.discovery.posterior import (
    Observations,
    gaussian_loglike,
    model_average,
    sample_model,
)
from ariasim.discovery.prior import SpikeSlabPrior, TermPrior
from ariasim.errors import ConfigError, InputError


def test_prior_models_and_sampling():
    prior = SpikeSlabPrior(
        [TermPrior("a", 1.0), TermPrior("b", 2.0, inclusion=1.0), TermPrior("c", 3.0, 0.5, 0.2)]
    )
    assert len(prior.models()) == 4  # b always in
    total = sum(np.exp(prior.log_model_prior(m)) for m in prior.models())
    assert total == pytest.approx(1.0)
    w = prior.sample(20000, seed=1)
    # inclusion frequencies within 5 sigma of the binomial error
    for k, p in enumerate(prior.inclusion):
        f = float((w[:, k] > 0).mean())
        assert abs(f - p) <= 5 * np.sqrt(p * (1 - p) / len(w)) + 1e-12
    on = w[:, 2] > 0
    assert w[on, 2].min() >= 0.5 and w[on, 2].max() <= 3.0


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"name": "a", "high": 0.0}, "a.high"),
        ({"name": "a", "high": 1.0, "low": -1.0}, "a.low"),
        ({"name": "a", "high": 1.0, "inclusion": 1.5}, "a.inclusion"),
        ({"name": "", "high": 1.0}, "name"),
    ],
)
def test_term_prior_errors_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        TermPrior(**kwargs)


def test_spike_slab_design_follows_the_prior():
    prior = SpikeSlabPrior([TermPrior("a", 1.0, inclusion=0.25), TermPrior("b", 2.0)])
    w = spike_slab_design(prior, 40, seed=3)
    assert int((w[:, 0] > 0).sum()) == 10 and int((w[:, 1] > 0).sum()) == 20
    assert np.array_equal(w, spike_slab_design(prior, 40, seed=3))
    # the slab coordinates of the included rows are still stratified (one per stratum)
    assert (w <= prior.high).all() and (w >= 0).all()


def test_emulator_interpolates_and_believer_shrinks_variance():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    f = np.column_stack([np.sin(3 * X[:, 0]) + X[:, 1], X[:, 2] ** 2, X[:, 0] * X[:, 1]])
    em = GPEmulator(random_state=1).fit(X, f)
    Xt = rng.random((200, 3))
    ft = np.column_stack([np.sin(3 * Xt[:, 0]) + Xt[:, 1], Xt[:, 2] ** 2, Xt[:, 0] * Xt[:, 1]])
    mean, var = em.predict(Xt, return_var=True)
    z = (mean - ft) / np.sqrt(var)
    # smooth function, 40 points in 3-D: accurate, and the errors are of the size claimed
    assert np.abs(mean - ft).max() < 0.05
    assert 0.2 < float(np.sqrt((z**2).mean())) < 3.0
    x0 = np.array([[0.5, 0.5, 0.5]])
    m0, v0 = em.predict_scores(x0)
    em2 = em.believe(x0)
    m1, v1 = em2.predict_scores(x0)
    assert np.allclose(m0, m1, atol=1e-8) and (v1 < 0.05 * v0 + 1e-12).all()
    again = GPEmulator(random_state=1).fit(X, f).predict(Xt)
    assert np.array_equal(again, mean)


def test_emulator_bad_input():
    with pytest.raises(InputError, match="at least 3 runs"):
        GPEmulator().fit(np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(InputError, match="finite"):
        GPEmulator().fit(np.full((5, 1), np.nan), np.zeros((5, 1)))


def test_evidence_of_a_gaussian_likelihood_matches_the_integral():
    """ln Z of a Gaussian likelihood well inside the unit slab is known in closed form."""
    prior = SpikeSlabPrior([TermPrior("a", 1.0), TermPrior("b", 1.0)])
    mu, s = np.array([0.4, 0.6]), np.array([0.05, 0.08])

    def loglike(w):
        return -0.5 * (((w - mu) / s) ** 2).sum(1) - np.log(2 * np.pi * s.prod())

    mp = sample_model(loglike, prior, (True, True), walkers=16, steps=600, seed=2)
    # the integral of a normalised density over the unit square (all of its mass) is 1
    assert abs(mp.log_evidence - 0.0) < 5 * mp.log_evidence_se + 0.01
    assert np.allclose(mp.samples.mean(0), mu, atol=5 * s.max() / np.sqrt(200))
    assert np.allclose(mp.samples.std(0), s, rtol=0.15)
    # the empty subset is a single point
    empty = sample_model(loglike, prior, (False, False), seed=2)
    assert empty.method == "point" and np.isclose(empty.log_evidence, loglike(np.zeros((1, 2))))
    prob, draws = model_average([mp, empty], n_samples=100, seed=0)
    assert prob[0] > 0.999 and draws.shape == (100, 2)


def _toy_forward(w: np.ndarray) -> np.ndarray:
    """A cheap 'simulator': 6 observables that depend on a strongly, on b weakly, not on c."""
    t = np.linspace(0.5, 3.0, 6)
    return 10 * (1 - np.exp(-w[:, [0]] * t)) + 2.0 * w[:, [1]] * t + 0.0 * w[:, [2]]


TOY_PRIOR = SpikeSlabPrior([TermPrior("a", 2.0), TermPrior("b", 1.0), TermPrior("c", 1.0)])
TOY_TRUTH = np.array([0.8, 0.3, 0.0])


def _toy_data(seed: int, sigma: float = 0.2) -> Observations:
    rng = np.random.default_rng(seed)
    y = _toy_forward(TOY_TRUTH[None, :])[0] + rng.normal(0, sigma, 6)
    return Observations(y, np.full(6, sigma))


def test_calibrate_finds_the_terms_and_is_deterministic():
    obs = _toy_data(0)
    kw = dict(initial=12, batch=3, max_runs=24, walkers=16, steps=300, seed=5)
    res = calibrate(_toy_forward, TOY_PRIOR, obs, **kw)
    s = res.summary(truth=dict(zip(TOY_PRIOR.names, TOY_TRUTH, strict=True)))
    assert s["inclusion"]["a"] > 0.99 and s["inclusion"]["b"] > 0.9
    # c does not change the observables: its inclusion stays at the prior's 0.5 within the
    # Monte-Carlo error of the two evidences
    assert abs(s["inclusion"]["c"] - 0.5) < 0.1
    assert s["covers_truth"]["a"] and s["covers_truth"]["b"]
    assert s["simulator_runs"] == len(res.runs_X) <= 24
    assert res.history[0]["runs"] == 12 and res.history[-1]["runs"] == len(res.runs_X)
    # the exact log-likelihood of the runs improves as the active design homes in
    assert res.history[-1]["best_ll"] >= res.history[0]["best_ll"]
    res2 = calibrate(_toy_forward, TOY_PRIOR, obs, **kw)
    assert np.array_equal(res.runs_X, res2.runs_X) and np.array_equal(res.samples, res2.samples)
    lhs = calibrate(_toy_forward, TOY_PRIOR, obs, **{**kw, "design": "lhs"})
    assert lhs.stop_reason == "lhs" and len(lhs.runs_X) == 24


def test_credible_intervals_cover_over_repeated_data_sets():
    """Coverage of the 95 % intervals of a and b over independent synthetic data sets.

    With n data sets and true coverage 0.95 per parameter, fewer than the binomial 0.1 %
    quantile of successes fails (a broken posterior, e.g. too narrow by 2x, covers ~65 %).
    """
    n = 10
    hits = np.zeros(2, dtype=int)
    kw = dict(initial=12, batch=3, max_runs=21, walkers=16, steps=300)
    for i in range(n):
        res = calibrate(_toy_forward, TOY_PRIOR, _toy_data(100 + i), seed=i, **kw)
        cov = res.summary(truth={"a": TOY_TRUTH[0], "b": TOY_TRUTH[1]})["covers_truth"]
        hits += [cov["a"], cov["b"]]
    floor = int(binom.ppf(0.001, n, 0.95))
    assert (hits >= floor).all(), (hits, floor)


def test_calibrate_bad_arguments_and_forward():
    obs = _toy_data(0)
    with pytest.raises(ConfigError, match="'design'"):
        calibrate(_toy_forward, TOY_PRIOR, obs, design="grid")
    with pytest.raises(ConfigError, match="'initial'"):
        calibrate(_toy_forward, TOY_PRIOR, obs, initial=50, max_runs=20)
    with pytest.raises(InputError, match="non-finite"):
        calibrate(lambda w: np.full((len(w), 6), np.nan), TOY_PRIOR, obs, initial=5)
    with pytest.raises(InputError, match="shape"):
        calibrate(lambda w: np.zeros((len(w), 4)), TOY_PRIOR, obs, initial=5)
    with pytest.raises(ConfigError, match=r"observations\.sigma"):
        Observations([1.0], [0.0])


def test_gaussian_loglike_is_the_exact_likelihood():
    obs = Observations([1.0, 2.0], [0.5, 2.0])
    y = np.array([[1.5, 0.0]])
    expected = -0.5 * (1.0 + 1.0) - np.log(2 * np.pi * 0.5 * 2.0)
    assert gaussian_loglike(y, obs)[0] == pytest.approx(expected)
