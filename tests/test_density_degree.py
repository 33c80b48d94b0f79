"""Degrees in ln x of SymbolicDensity's polynomial parameter functions and warp logits.

Each degree is fitted starting from the optimum of the degree below (so a higher degree
never ends with a worse training likelihood), the degree is chosen by BIC on the
training samples (or by held-out likelihood), and a wrong choice of degree shows up as a
worse held-out likelihood.
"""

from __future__ import annotations

import numpy as np
import pytest

from ariasim.errors import ConfigError
from ariasim.surrogates.density import SymbolicDensity


def _fit(t, d, log_degree, **kw):
    return SymbolicDensity(
        param_model="poly",
        n_bins=8,
        min_per_bin=300,
        max_iter=100,
        random_state=0,
        log_degree=log_degree,
        **kw,
    ).fit(d[:, None], t)


def _cubic(rng, n):
    """Gamma delays whose log-location is cubic in z = ln(d / 30)."""
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), n))
    z = np.log(d / 30.0)
    return rng.gamma(2.0, np.exp(1.0 + z + 1.5 * z**3)), d


def test_log_degree_is_validated():
    for bad in (0, 7, "2", (2, 0), 2.5, True, ()):
        with pytest.raises(ConfigError, match="log_degree"):
            SymbolicDensity(log_degree=bad).fit(np.ones((900, 1)), np.ones(900))
    with pytest.raises(ConfigError, match="log_degree"):
        SymbolicDensity(warp=4, warp_log_degree=9).fit(
            np.geomspace(5, 150, 900)[:, None], np.ones(900)
        )


def test_a_needed_degree_is_chosen_and_predicts_better():
    """Truth cubic in ln d: degree 3 (started from degree 2's optimum) wins on BIC, and
    its held-out log-likelihood per sample beats the quadratic fit's by more than five
    standard errors of the paired difference."""
    rng = np.random.default_rng(7)
    t, d = _cubic(rng, 3000)
    both = _fit(t, d, (2, 3))
    assert both.log_degree_ == 3 and both.selection_["log_degree_used"] == 3
    scores = both.selection_["log_degree"]
    assert scores["on"] == "training BIC" and scores["3"] < scores["2"]
    quad = _fit(t, d, 2)
    assert both.nll_ <= quad.nll_ + 1e-12
    tv, dv = _cubic(rng, 3000)
    gain = both.log_pdf(tv, dv[:, None]) - quad.log_pdf(tv, dv[:, None])
    assert gain.mean() > 5 * gain.std() / np.sqrt(gain.size), gain.mean()
    assert "log(d)**3" in str(both.params_["mu_0"]) or "log(x0)**3" in str(both.params_["mu_0"])


def test_an_unneeded_degree_is_left_out():
    """Truth linear in ln d: degree 3's gain in log-likelihood is about chi2(3)/2, far
    below its BIC penalty of 3/2 ln n (about 12), so degree 2 is kept."""
    rng = np.random.default_rng(8)
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), 3000))
    t = rng.gamma(2.0, d / 10)
    m = _fit(t, d, (2, 3))
    assert m.log_degree_ == 2
    assert "**3" not in str(m.params_["mu_0"])


def test_warp_log_degrees_compete():
    """Two gamma modes whose mixing fraction is quadratic in ln d, fitted with one
    generalized gamma and a warp: the candidates (degree/log-degree) are scored, the
    lowest BIC wins, and the quadratic logits beat constant-in-distance ones."""
    rng = np.random.default_rng(9)
    n = 4000
    d = np.exp(rng.uniform(np.log(10.0), np.log(100.0), n))
    z = np.log(d / 30.0)
    frac = np.clip(0.5 - 0.35 * z + 0.4 * z**2, 0.05, 0.95)
    t = np.where(rng.uniform(size=n) < frac, rng.gamma(3.0, d / 30), rng.gamma(40.0, d / 30))
    m = _fit(t, d, 2, warp=4, warp_log_degree=(1, 2))
    scores = {k: v for k, v in m.selection_["warp"].items() if k != "on"}
    assert set(scores) == {"4/1", "4/2"}
    assert m.selection_["warp_log_degree"] == 2 and scores["4/2"] < scores["4/1"]
