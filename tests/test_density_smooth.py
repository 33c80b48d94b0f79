"""The curvature (roughness) penalty in ln x of SymbolicDensity's polynomial parameter
functions and warp logits (``smooth=...``): validation, the penalty's matrix, its effect
and its choice by held-out likelihood; the restarts of the family from perturbed starts;
the held-out score per condition."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from ariasim.errors import ConfigError
from ariasim.surrogates.density import (
    SymbolicDensity,
    _curvature_matrix,
    _poly_coefs,
    _poly_terms,
    _warp_names,
    _warp_terms,
)
from ariasim.surrogates.formula import Variable


def _data(rng, n):
    """Gamma delays whose log-location is quadratic in z = ln d plus a term in d."""
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), n))
    z = np.log(d)
    return rng.gamma(2.0, np.exp(-1.0 + 0.8 * z - 0.1 * z**2 + 0.004 * d)), d


def _model(**kw):
    """The small polynomial density these tests fit (keywords override the defaults)."""
    defaults = {
        "param_model": "poly",
        "n_bins": 8,
        "min_per_bin": 300,
        "max_iter": 60,
        "random_state": 0,
        "log_degree": 3,
        "variable_names": ["d"],
    }
    return SymbolicDensity(**{**defaults, **kw})


def _fit(t, d, smooth, **kw):
    return _model(smooth=smooth, **kw).fit(d[:, None], t)


def test_smooth_is_validated():
    X, t = np.geomspace(5, 150, 900)[:, None], np.ones(900)
    for bad in (-1.0, float("nan"), "1e-3", (0.0, -1.0), (), True):
        with pytest.raises(ConfigError, match="smooth"):
            SymbolicDensity(smooth=bad).fit(X, t)
    with pytest.raises(ConfigError, match="smooth"):  # two conditions
        SymbolicDensity(smooth=1e-3).fit(np.ones((900, 2)), t)
    with pytest.raises(ConfigError, match="smooth"):  # not positive everywhere
        SymbolicDensity(smooth=1e-3).fit(np.linspace(-1, 1, 900)[:, None], t)


def test_curvature_matrix_is_the_second_derivative_in_ln_x():
    """For f = 1 + 2 z - 3 z^2 + 0.5 z^3 + 0.01 x with z = ln x, d^2f/dz^2 = -6 + 3 z +
    0.01 e^z; ((D c)^2).sum() is its mean square on a uniform grid of z over the range."""
    v = [Variable("x", low=5.0, high=150.0)]
    terms = _poly_terms(v, 3)
    c = np.zeros(len(terms))
    x, lx = sp.Symbol("x", real=True), sp.log(sp.Symbol("x", real=True))
    for tm, val in [(1, 1.0), (lx, 2.0), (lx**2, -3.0), (lx**3, 0.5), (x, 0.01)]:
        c[terms.index(sp.sympify(tm))] = val
    D = _curvature_matrix(terms, v, 64)
    z = np.linspace(np.log(5.0), np.log(150.0), 64)
    exact = -6 + 3 * z + 0.01 * np.exp(z)
    np.testing.assert_allclose(D @ c * np.sqrt(64), exact, rtol=1e-5, atol=1e-5)
    assert ((D @ c) ** 2).sum() == pytest.approx(np.mean(exact**2), rel=1e-5)


def test_a_strong_penalty_flattens_the_functions_and_a_weak_one_changes_little():
    """lambda = 10 (far above the NLL's scale per sample) drives every parameter
    function's and warp logit's curvature in ln d to nearly 0; lambda = 1e-9 leaves the
    fit's likelihood within 1e-6 per sample of the unpenalised one."""
    rng = np.random.default_rng(3)
    t, d = _data(rng, 3000)
    kw = {"warp": 4, "warp_log_degree": 2}
    plain = _fit(t, d, 0.0, **kw)
    assert plain.smooth_ == 0.0 and "smooth" not in plain.selection_

    def rough(m):
        names = [n for n in m.params_ if n not in _warp_names(m.warp_degree_)]
        terms = _poly_terms(m.variables_, m.log_degree_)
        C = _poly_coefs(m.params_, terms, names)
        wt = _warp_terms(m.variables_, m.warp_log_degree_)
        W = _poly_coefs(m.params_, wt, _warp_names(m.warp_degree_))
        fam = float(((_curvature_matrix(terms, m.variables_) @ C) ** 2).sum())
        warp = float(((_curvature_matrix(wt, m.variables_) @ W) ** 2).sum())
        return fam, warp

    strong = _model(smooth=(10.0,), **kw)
    # a single strength without held-out samples: that one is used
    strong.fit(d[:, None], t)
    assert strong.smooth_ == 10.0 and strong.selection_["smooth_used"] == 10.0
    f0, w0 = rough(plain)
    f1, w1 = rough(strong)
    assert f0 > 1e-3 and f1 < 1e-2 * f0, (f0, f1)
    assert w1 <= w0 + 1e-12 and w1 < 1e-3, (w0, w1)
    weak = _fit(t, d, (1e-9,), **kw)
    assert abs(weak.nll_ - plain.nll_) < 1e-6
    # the strongly smoothed family is still a valid density: CDF monotone from p0 to 1
    tt = np.geomspace(1e-3, 1e4, 200)
    F = strong.cdf(tt, np.full((200, 1), 40.0))
    assert np.all(np.diff(F) >= -1e-12) and F[-1] > 0.999


def test_strength_chosen_by_held_out_likelihood_and_kept_by_refit():
    """Several strengths with held-out samples: each is scored by the held-out mean NLL
    (0 included, equal to the unpenalised fit's), the lowest wins, and refit keeps it."""
    rng = np.random.default_rng(4)
    t, d = _data(rng, 3000)
    tv, dv = _data(rng, 1500)
    m = _model(smooth=(0.0, 1e-4, 10.0)).fit(d[:, None], t, X_val=dv[:, None], y_val=tv)
    sc = m.selection_["smooth"]
    assert sc["on"] == "held-out mean NLL" and set(sc) == {"on", "0", "0.0001", "10"}
    best = min((v, float(k)) for k, v in sc.items() if k != "on")[1]
    assert m.smooth_ == best == m.selection_["smooth_used"]
    assert m.mean_nll(tv, dv[:, None]) == pytest.approx(sc[f"{best:g}"], abs=1e-12)
    # a flat log-location cannot follow the curved truth: lambda = 10 loses
    assert sc["10"] > sc["0"]
    again = m.refit(np.r_[d, dv][:, None], np.r_[t, tv])
    assert again.smooth_ == best and np.isfinite(again.nll_)


def test_restarts_are_validated_scored_and_reproducible():
    """Extra perturbed starts: start 0 is the fit without restarts (same held-out NLL),
    the kept one has the lowest held-out NLL of all starts, and the same seed gives the
    same fit."""
    X, t = np.geomspace(5, 150, 900)[:, None], np.ones(900)
    for bad in (-1, 1.5, True, "2", 101):
        with pytest.raises(ConfigError, match="restarts"):
            SymbolicDensity(restarts=bad).fit(X, t)
    rng = np.random.default_rng(5)
    t, d = _data(rng, 3000)
    tv, dv = _data(rng, 1500)

    def fit(restarts):
        return _model(log_degree=2, warp=4, warp_log_degree=2, restarts=restarts).fit(
            d[:, None], t, X_val=dv[:, None], y_val=tv
        )

    plain, multi = fit(0), fit(2)
    assert "restarts" not in plain.selection_ and plain.restart_used_ == 0
    sc = multi.selection_["restarts"]
    assert sc["on"] == "held-out mean NLL" and set(sc) == {"on", "0", "1", "2"}
    assert sc["0"] == pytest.approx(plain.mean_nll(tv, dv[:, None]), abs=1e-12)
    best = min(range(3), key=lambda i: (sc[str(i)], i))
    assert multi.restart_used_ == best == multi.selection_["restart_used"]
    assert multi.mean_nll(tv, dv[:, None]) == pytest.approx(sc[str(best)], abs=1e-12)
    again = fit(2)
    assert again.selection_["restarts"] == sc
    assert again.params_["mu_0"].expression == multi.params_["mu_0"].expression


def test_held_out_score_per_condition_counts_each_condition_once():
    """``val_per_condition=True``: the held-out score (here ``selection_["nll_poly"]``) is
    the mean over held-out conditions of each one's mean NLL, whatever their sample
    counts or weights; False keeps the weighted mean over samples."""
    X, t = np.geomspace(5, 150, 900)[:, None], np.ones(900)
    for bad in (1, "yes", None):
        with pytest.raises(ConfigError, match="val_per_condition"):
            SymbolicDensity(val_per_condition=bad).fit(X, t)
    rng = np.random.default_rng(6)
    t, d = _data(rng, 3000)
    dv = np.repeat([8.0, 40.0, 120.0], [1200, 300, 60])  # very unequal counts
    z = np.log(dv)
    tv = rng.gamma(2.0, np.exp(-1.0 + 0.8 * z - 0.1 * z**2 + 0.004 * dv))
    wv = np.where(dv == 40.0, 3.0, 1.0)  # and weights
    per = _model(val_per_condition=True).fit(
        d[:, None], t, X_val=dv[:, None], y_val=tv, sample_weight_val=wv
    )
    each = [per.mean_nll(tv[dv == c], dv[dv == c, None], wv[dv == c]) for c in (8.0, 40.0, 120.0)]
    assert per.selection_["nll_poly"] == pytest.approx(np.mean(each), abs=1e-10)
    plain = _model().fit(d[:, None], t, X_val=dv[:, None], y_val=tv, sample_weight_val=wv)
    assert plain.selection_["nll_poly"] == pytest.approx(
        plain.mean_nll(tv, dv[:, None], wv), abs=1e-10
    )
    # the two weightings differ here (the conditions' mean NLLs differ by far more)
    assert abs(per.selection_["nll_poly"] - plain.selection_["nll_poly"]) > 0.05
    with pytest.raises(ConfigError, match="sample_weight_val"):
        _model(val_per_condition=True).fit(
            d[:, None], t, X_val=dv[:, None], y_val=tv, sample_weight_val=np.where(dv == 8, 0, 1.0)
        )
