"""Near-source knots of SymbolicDensity's polynomial parameter functions, and the refit
from the optimum of a first fit.

A knot k adds max(0, ln(k / x))^3 to each parameter function (and warp logit): a cubic
spline in ln x whose extra piece lives only below k. The knots are tried on top of the
highest degree in ln x and compete on the likelihood like the degrees.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.density import SymbolicDensity


def _kinked(rng, n):
    """Gamma delays whose log-scale is flat in ln d above 12 m and falls steeply below."""
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), n))
    z = np.log(d)
    log_scale = 1.0 + 0.5 * z + 2.5 * np.maximum(0.0, np.log(12.0) - z) ** 2
    return rng.gamma(2.0, np.exp(log_scale)), d


def _fit(t, d, **kw):
    return SymbolicDensity(
        param_model="poly", n_bins=8, min_per_bin=300, max_iter=100, random_state=0, **kw
    ).fit(d[:, None], t)


def test_knots_are_validated():
    X = np.geomspace(5, 150, 900)[:, None]
    for bad in ((0.0,), (-3.0,), (np.inf,), (10.0, 10.0), ("a",), 10.0, (True,)):
        with pytest.raises(ConfigError, match="knots"):
            SymbolicDensity(param_model="poly", knots=bad).fit(X, np.ones(900))
    with pytest.raises(ConfigError, match="knots"):
        SymbolicDensity(param_model="poly", knots=(10.0,)).fit(
            np.column_stack([X[:, 0], X[:, 0]]), np.ones(900)
        )
    with pytest.raises(ConfigError, match="knots"):  # not a positive condition
        SymbolicDensity(param_model="poly", knots=(10.0,)).fit(X - 20.0, np.ones(900))


def test_a_needed_knot_is_chosen_and_predicts_better():
    """Truth with a kink at 12 m that a quadratic in ln d cannot follow: the knot at
    12 m wins on BIC, its parameter functions hold the max(0, .) term, and its held-out
    log-likelihood per sample beats the plain fit's by more than five standard errors of
    the paired difference, most of it below the knot."""
    rng = np.random.default_rng(3)
    t, d = _kinked(rng, 3000)
    m = _fit(t, d, log_degree=2, knots=(12.0,))
    scores = m.selection_["log_degree"]
    assert scores["on"] == "training BIC" and scores["2+knot 12"] < scores["2"]
    assert m.knots_ == (12.0,) and m.selection_["knots_used"] == [12.0]
    assert "Max(0, -log(x0) + log(12))**3" in str(m.params_["mu_0"])
    plain = _fit(t, d, log_degree=2)
    assert m.nll_ <= plain.nll_ + 1e-12  # started from the plain optimum
    tv, dv = _kinked(rng, 3000)
    gain = m.log_pdf(tv, dv[:, None]) - plain.log_pdf(tv, dv[:, None])
    assert gain.mean() > 5 * gain.std() / np.sqrt(gain.size), gain.mean()
    near = dv < 12.0
    assert gain[near].mean() > gain[~near].mean()


def test_an_unneeded_knot_is_left_out():
    """Truth linear in ln d: the knot's gain in log-likelihood is about chi2(3)/2, far
    below its BIC penalty of 3/2 ln n, so no knot is used and the schema stays 1."""
    rng = np.random.default_rng(8)
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), 3000))
    t = rng.gamma(2.0, d / 10)
    m = _fit(t, d, log_degree=2, knots=(12.0,))
    assert m.knots_ == () and "Max" not in str(m.params_["mu_0"])
    assert m.to_dict()["schema"] == "ariasim.symbolic_density/1"


def test_knots_round_trip_through_json_and_refit_never_worse(tmp_path):
    """A density with a knot and a warp is schema 3; it loads back with the same CDF;
    a bad knot list in the file is a one-line error naming the field. The refit on
    more samples starts from the first fit's optimum: its likelihood on them is at
    least as good."""
    rng = np.random.default_rng(5)
    t, d = _kinked(rng, 3000)
    m = _fit(t, d, log_degree=2, knots=(12.0,), warp=4)
    assert m.warp_degree_ == 4 and m.knots_ == (12.0,)
    assert "Max" in str(m.params_["warp_a1"])  # the warp logits get the knots too
    data = json.loads(json.dumps(m.to_dict()))
    assert data["schema"] == "ariasim.symbolic_density/3" and data["knots"] == [12.0]
    back = SymbolicDensity.from_dict(data)
    tt, XX = np.geomspace(0.1, 500, 50), np.geomspace(5, 150, 50)[:, None]
    np.testing.assert_allclose(back.cdf(tt, XX), m.cdf(tt, XX), rtol=1e-12, atol=1e-14)
    assert back.knots_ == (12.0,) and back.warp_degree_ == 4
    bad = dict(data, knots=[-1.0])
    with pytest.raises(InputError, match="knots"):
        SymbolicDensity.from_dict(bad, source="f.json")
    t2, d2 = _kinked(rng, 3000)
    T, D = np.r_[t, t2], np.r_[d, d2]
    before = m.mean_nll(T, D[:, None])
    m.refit(D[:, None], T)
    assert m.mean_nll(T, D[:, None]) <= before + 1e-12
    assert m.knots_ == (12.0,) and m.warp_degree_ == 4


def test_warp_tries_the_knots_the_family_did_not_take():
    """Truth linear in ln d: the family takes no knot, each warp candidate is then
    scored with and without the knot, and the file records the warp's knots (schema 3
    only when there are any)."""
    rng = np.random.default_rng(8)
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), 3000))
    t = rng.gamma(2.0, d / 10)
    m = _fit(t, d, log_degree=2, knots=(12.0,), warp=(0, 4))
    assert m.knots_ == ()
    assert {"0", "4", "4+knots"} <= set(m.selection_["warp"])
    assert m.selection_["warp_knots_used"] == list(m.warp_knots_)
    data = json.loads(json.dumps(m.to_dict()))
    if m.warp_knots_:
        assert data["schema"] == "ariasim.symbolic_density/3"
        assert data["knots"] == [] and data["warp_knots"] == [12.0]
        assert "Max" in str(m.params_["warp_a1"]) and "Max" not in str(m.params_["mu_0"])
    else:
        assert data["schema"] in ("ariasim.symbolic_density/1", "ariasim.symbolic_density/2")
    back = SymbolicDensity.from_dict(data)
    assert back.warp_knots_ == m.warp_knots_
    tt, XX = np.geomspace(0.1, 500, 30), np.geomspace(5, 150, 30)[:, None]
    np.testing.assert_allclose(back.cdf(tt, XX), m.cdf(tt, XX), rtol=1e-12, atol=1e-14)


def test_schema_1_and_2_files_still_load():
    """Files written before the knots (schema 1: no warp, 2: a warp) load with no knots."""
    rng = np.random.default_rng(4)
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), 2000))
    t = rng.gamma(2.0, d / 10)
    for warp, schema in ((0, 1), (4, 2)):
        m = _fit(t, d, log_degree=2, warp=warp)
        data = json.loads(json.dumps(m.to_dict()))
        assert data["schema"] == f"ariasim.symbolic_density/{schema}"
        assert "knots" not in data
        back = SymbolicDensity.from_dict(data)
        assert back.knots_ == () and back.warp_knots_ == () and back.warp_degree_ == warp


def test_warp_knots_are_offered_to_the_warp_alone():
    """``warp_knots``: each warp candidate is also scored with the near-source terms in
    its logits only; the family's parameter functions never get them; the winner is the
    lowest score and the file round-trips; with none offered the fit is the plain one."""
    rng = np.random.default_rng(8)
    t, d = _kinked(rng, 3000)
    m = _fit(t, d, log_degree=2, warp=(0, 4), warp_knots=(12.0, 30.0))
    scores = {k: v for k, v in m.selection_["warp"].items() if k != "on"}
    assert set(scores) == {"0", "4", "4+warp knots"}
    best = min(scores, key=scores.__getitem__)
    assert m.knots_ == () and "Max" not in str(m.params_["mu_0"])
    assert m.warp_knots_ == ((12.0, 30.0) if best == "4+warp knots" else ())
    assert m.selection_["warp_knots_used"] == list(m.warp_knots_)
    assert m.warp_degree_ == (0 if best == "0" else 4)
    # the candidate with the knots holds both terms in every logit when it wins; either
    # way it was a different fit from the plain warp (its score differs)
    assert scores["4+warp knots"] != scores["4"]
    if m.warp_knots_:
        assert "log(12)" in str(m.params_["warp_a1"]) and "log(30)" in str(m.params_["warp_a3"])
    back = SymbolicDensity.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back.warp_knots_ == m.warp_knots_
    tt, XX = np.geomspace(0.1, 500, 30), np.geomspace(5, 150, 30)[:, None]
    np.testing.assert_allclose(back.cdf(tt, XX), m.cdf(tt, XX), rtol=1e-12, atol=1e-14)
    plain = _fit(t, d, log_degree=2, warp=(0, 4))
    off = _fit(t, d, log_degree=2, warp=(0, 4), warp_knots=())
    assert off.to_dict() == plain.to_dict() and off.selection_ == plain.selection_


def test_warp_knots_are_validated():
    X = np.geomspace(5, 150, 900)[:, None]
    for bad in ((0.0,), (np.inf,), (10.0, 10.0), ("a",), 10.0, (True,)):
        with pytest.raises(ConfigError, match="warp_knots"):
            SymbolicDensity(param_model="poly", warp=4, warp_knots=bad).fit(X, np.ones(900))
    with pytest.raises(ConfigError, match="warp_knots"):  # not a positive condition
        SymbolicDensity(param_model="poly", warp=4, warp_knots=(10.0,)).fit(X - 20.0, np.ones(900))
