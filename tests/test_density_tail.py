"""The exponential tail cut-off of SymbolicDensity: S(t | x) -> S(t | x) exp(-t / tau(x)).

Late light in an absorbing medium falls off exponentially; the cut-off multiplies the
continuous part's survival function by exp(-t / tau(x)), ln(1 / tau) a polynomial in
ln x, and competes with no cut-off on the likelihood.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.density import SymbolicDensity
from ariasim.surrogates.formula import Formula


def _cut(rng, n):
    """Log-normal delays (median d, sigma 2) cut by an independent exponential time of
    mean tau = d: S = S_LN exp(-t / d), ln(1 / tau) = -ln d (degree 1)."""
    d = np.exp(rng.uniform(np.log(5.0), np.log(50.0), n))
    t = np.minimum(rng.lognormal(np.log(d), 2.0), rng.exponential(1.0 * d))
    return t, d


def _model(**kw):
    """The small polynomial density every test here fits (keywords override the defaults)."""
    defaults = {
        "param_model": "poly",
        "n_bins": 8,
        "min_per_bin": 300,
        "max_iter": 100,
        "random_state": 0,
        "log_degree": 1,
        "variable_names": ["d"],
    }
    return SymbolicDensity(**{**defaults, **kw})


def _fit(**kw):
    rng = np.random.default_rng(4)
    t, d = _cut(rng, 4000)
    tv, dv = _cut(rng, 4000)
    m = _model(**kw)
    return m.fit(d[:, None], t, X_val=dv[:, None], y_val=tv), (tv, dv)


def test_tail_degree_is_validated():
    X = np.geomspace(5, 150, 900)[:, None]
    for bad in (-1, 7, (1, 9), "a", (True,), 1.5):
        with pytest.raises(ConfigError, match="tail_log_degree"):
            SymbolicDensity(param_model="poly", tail_log_degree=bad).fit(X, np.ones(900))


def test_the_cut_off_is_recovered_on_the_true_family():
    """With the family held at the truth (a log-normal of median d and sigma 1.2, the
    generalized gamma's Q -> 0 limit), the fitted tau(d) of degree 1 at 10 and 30 m is
    the true 3 d within 5 standard errors; the error of ln tau is taken as 1.5 /
    sqrt(n_cut), n_cut the number of samples the exponential time ended (the Fisher
    information of an exponential rate from its events, enlarged for the two
    coefficients)."""
    rng = np.random.default_rng(6)
    d = np.exp(rng.uniform(np.log(5.0), np.log(50.0), 20_000))
    body, cut = rng.lognormal(np.log(d), 1.2), rng.exponential(3.0 * d)
    t = np.minimum(body, cut)
    x = {"name": "d"}
    m = SymbolicDensity.from_dict(
        {
            "schema": "ariasim.symbolic_density/1",
            "n_components": 1,
            "t_min": 0.0,
            "t_name": "t",
            "params": {
                "mu_0": Formula("log(d)", [x], output="mu_0").to_dict(),
                "log_sigma_0": Formula(
                    repr(float(np.log(1.2))), [x], output="log_sigma_0"
                ).to_dict(),
                "log_q_0": Formula("-8", [x], output="log_q_0").to_dict(),
            },
        }
    )
    m.max_iter = 100
    rate = m._fit_tail(t, d[:, None], np.ones(t.size), 1)["tail_log_rate"]
    sigma = 1.5 / np.sqrt(float((cut < body).sum()))
    for dd in (10.0, 30.0):
        tau = 1.0 / np.exp(rate(np.array([[dd]]))[0])
        assert abs(np.log(tau / (3.0 * dd))) < 5 * sigma, (dd, tau, sigma)


def test_no_cut_off_is_taken_where_the_family_fits():
    """Log-normal delays without a cut-off (the family's own limit): a cut-off taken by
    the held-out likelihood can only be a weak one, tau beyond the delays' 99th
    percentile at every distance, or none."""
    rng = np.random.default_rng(7)
    d = np.exp(rng.uniform(np.log(5.0), np.log(50.0), 8000))
    t = rng.lognormal(np.log(d), 1.0)
    m = _model(tail_log_degree=(0, 1)).fit(
        d[:4000, None], t[:4000], X_val=d[4000:, None], y_val=t[4000:]
    )
    assert set(m.selection_["tail"]) == {"on", "none", "0", "1"}
    if m.tail_log_degree_ is not None:
        for dd in (5.0, 50.0):
            tau = 1.0 / np.exp(m.params_["tail_log_rate"](np.array([[dd]]))[0])
            assert tau > dd * np.exp(2.33 * 1.0), (dd, tau)


def test_cdf_valid_with_point_mass_warp_and_tail():
    """F with a point mass, a warp and a cut-off: p0 at t = 0, non-decreasing, -> 1, and
    the pdf integrates to 1 - p0; the symbolic CDF, a saved copy and the samples agree."""
    rng = np.random.default_rng(5)
    t, d = _cut(rng, 4000)
    t[rng.uniform(size=t.size) < 0.3] = 0.0
    m = _model(point_mass=True, warp=4, max_iter=50).fit(d[:, None], t)
    # a strong cut-off, set by hand: tau = d / 2
    m.params_["tail_log_rate"] = Formula("log(2) - log(d)", m.variables_, output="tail_log_rate")
    m.tail_log_degree_ = 1
    m._build_formulas()
    g = np.r_[0.0, np.geomspace(1e-4, 1e5, 3000)]
    x = np.geomspace(1e-7, 1e5, 400_001)
    for d in (5.0, 20.0, 50.0):
        F = m.cdf(g, np.full((g.size, 1), d))
        p0 = float(1.0 / (1.0 + np.exp(-m.params_["logit_p0"](np.array([[d]]))[0])))
        assert F[0] == pytest.approx(p0, abs=1e-12)
        assert (np.diff(F) >= -1e-12).all() and F[-1] == pytest.approx(1.0, abs=1e-12)
        mass = np.trapezoid(m.pdf(x, np.full((x.size, 1), d)), x)
        assert mass == pytest.approx(1.0 - p0, abs=1e-4)
        # the cut-off: the survival at 5 tau is below the uncut one times e^-5
        S_cut = 1.0 - m.cdf(np.array([2.5 * d]), np.array([[d]]))[0]
        assert S_cut <= (1.0 - p0) * np.exp(-5.0) + 1e-12
    # the symbolic CDF (warp, point mass and cut-off) evaluates to the numeric one
    for tt in (3.0, 30.0, 300.0):
        sym = float(m.formula_(np.array([[tt, 20.0]]))[0])
        assert sym == pytest.approx(float(m.cdf(np.array([tt]), np.array([[20.0]]))[0]))
    data = json.loads(json.dumps(m.to_dict()))
    assert data["schema"] == "ariasim.symbolic_density/4" and data["tail_log_degree"] == 1
    back = SymbolicDensity.from_dict(data)
    assert np.array_equal(
        back.cdf(g, np.full((g.size, 1), 20.0)), m.cdf(g, np.full((g.size, 1), 20.0))
    )
    s = m.sample(np.array([[20.0]]), 20_000, rng=1).ravel()
    ecdf = np.searchsorted(np.sort(s), g, side="right") / s.size
    # KS of 20000 samples: 1.63 / sqrt(n) is the 1 % critical value
    assert np.abs(ecdf - m.cdf(g, np.full((g.size, 1), 20.0))).max() < 1.63 / np.sqrt(s.size)


def test_bad_tail_in_a_file_is_named():
    m, _ = _fit(tail_log_degree=0)
    data = json.loads(json.dumps(m.to_dict()))
    if m.tail_log_degree_ is None:  # force one for the file checks
        data["schema"] = "ariasim.symbolic_density/4"
        data["tail_log_degree"] = 0
        data["params"]["tail_log_rate"] = dict(data["params"]["mu_0"], output="tail_log_rate")
    for bad in (None, -1, 7, True, "1"):
        broken = dict(data, tail_log_degree=bad)
        with pytest.raises(InputError, match="tail_log_degree"):
            SymbolicDensity.from_dict(broken, source="f.json")
    missing = json.loads(json.dumps(data))
    del missing["params"]["tail_log_rate"]
    with pytest.raises(InputError, match="tail_log_rate"):
        SymbolicDensity.from_dict(missing, source="f.json")
