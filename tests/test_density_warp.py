"""The Bernstein warp of SymbolicDensity: F_cont = B(G) with B monotone on [0, 1].

A warped density with arbitrary parameter functions must still be a CDF whose written
formula, symbolic PDF, numeric PDF, sampler and JSON form agree; the warp must be left
out (by BIC) where the family is right, and must be kept, with a better held-out
likelihood, where it is not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, stats

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.density import SymbolicDensity


def _warped(seed: int, degree: int = 5, point_mass: bool = True) -> SymbolicDensity:
    """Two generalized gammas, a point mass and a warp, every parameter function a
    random linear function of d (a valid density whatever they are; shapes Q within
    e^+-2, where the family's own PDF and CDF agree numerically)."""
    rng = np.random.default_rng(seed)
    names = ["mu_0", "log_sigma_0", "log_q_0", "mu_1", "log_sigma_1", "log_q_1", "logit_w"]
    names += ["logit_p0"] if point_mass else []
    names += [f"warp_a{j}" for j in range(1, degree)]
    center = {"mu_0": 1.0, "mu_1": 3.0, "log_sigma_0": -0.5, "log_sigma_1": -0.5}

    def formula(nm: str) -> dict:
        a, b = center.get(nm, 0.0) + rng.normal(0, 0.5), rng.normal(0, 0.004)
        scale = 1.5 if nm.startswith("warp") else 1.0
        return {
            "schema": "ariasim.formula/1",
            "expression": f"{scale * a:.4f} + {b:.5f}*d",
            "variables": [{"name": "d", "unit": "m", "low": 5.0, "high": 150.0}],
            "output": {"name": nm},
        }

    return SymbolicDensity.from_dict(
        {
            "schema": "ariasim.symbolic_density/2",
            "warp_degree": degree,
            "n_components": 2,
            "point_mass": point_mass,
            "t_min": 0.0,
            "t_name": "t",
            "t_unit": "ns",
            "params": {nm: formula(nm) for nm in names},
        }
    )


@pytest.mark.parametrize(("seed", "degree"), [(1, 3), (2, 6), (3, 32)])
def test_any_warp_gives_a_valid_density_and_its_formula(seed, degree):
    m = _warped(seed, degree)
    assert m.warp_degree_ == degree and "Bernstein polynomial" in m.formula_.metadata["family"]
    t = np.geomspace(1e-4, 1e5, 3000)
    for d in (5.0, 70.0, 150.0):
        X = np.full((t.size, 1), d)
        F = m.cdf(t, X)
        assert np.all(np.diff(F) >= -1e-12) and F[-1] == pytest.approx(1.0, abs=1e-9)
        p0 = m.cdf(np.zeros(1), X[:1])[0]
        assert 0 < p0 < 1 and m.cdf(-np.ones(1), X[:1])[0] == 0.0
        pdf = m.pdf(t, X)
        assert np.all(pdf >= 0)
        # the PDF ((1 - p0) B'(G) g above t = 0) integrates to the increase of the CDF (B(G))
        lo, hi = 1e-3, 1e4
        mass, err = integrate.quad(
            lambda s, d=d: np.exp(s) * m.pdf(np.array([np.exp(s)]), np.array([[d]]))[0],
            np.log(lo),
            np.log(hi),
            limit=400,
        )
        Flo, Fhi = m.cdf(np.array([lo, hi]), np.array([[d], [d]]))
        assert mass == pytest.approx(Fhi - Flo, abs=max(1e-7, 10 * err))
        # the written CDF and its symbolic derivative are the same functions
        sel = t[::150]
        Xs = np.column_stack([sel, np.full(sel.size, d)])
        np.testing.assert_allclose(m.formula_(Xs), m.cdf(sel, X[: sel.size]), atol=1e-10)
        np.testing.assert_allclose(
            m.formulas_["pdf"](Xs), m.pdf(sel, X[: sel.size]), rtol=1e-6, atol=1e-14
        )
    draws = m.sample(np.array([[40.0]]), 4000, rng=2)[0]
    p0 = m.cdf(np.zeros(1), np.array([[40.0]]))[0]
    cont = draws[draws > 0]
    pit = (m.cdf(cont, np.full((cont.size, 1), 40.0)) - p0) / (1 - p0)
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    again = SymbolicDensity.from_dict(json.loads(json.dumps(m.to_dict())))
    np.testing.assert_allclose(again.cdf(t[:40], X[:40]), m.cdf(t[:40], X[:40]), rtol=1e-12)


def test_warp_needs_schema_2_and_a_valid_degree():
    data = _warped(3, 4).to_dict()
    assert data["schema"] == "ariasim.symbolic_density/2" and data["warp_degree"] == 4
    with pytest.raises(InputError, match="warp_degree"):
        SymbolicDensity.from_dict({**data, "warp_degree": 1})
    with pytest.raises(InputError, match="warp_degree"):
        SymbolicDensity.from_dict({**data, "warp_degree": 65})
    with pytest.raises(InputError, match="warp_a3"):
        SymbolicDensity.from_dict(
            {**data, "params": {k: v for k, v in data["params"].items() if k != "warp_a3"}}
        )
    for bad in (1, "8", (0, 1), 2.5, True, 65, (16, 65)):
        with pytest.raises(ConfigError, match="warp"):
            SymbolicDensity(warp=bad).fit(np.ones((900, 1)), np.ones(900))


def _fit(t, d, warp):
    return SymbolicDensity(
        param_model="poly", n_bins=6, min_per_bin=300, max_iter=100, random_state=0, warp=warp
    ).fit(d[:, None], t)


def test_warp_is_left_out_where_the_family_is_right():
    """Gamma samples (inside the family): the warp's gain in log-likelihood is about
    chi2(9)/2, far below its BIC penalty of 9/2 ln n (about 36), so degree 0 wins."""
    rng = np.random.default_rng(4)
    d = rng.uniform(10, 100, 3000)
    t = rng.gamma(2.0, d / 10)
    m = _fit(t, d, (0, 4))
    assert m.warp_degree_ == 0 and m.selection_["warp_degree"] == 0
    assert m.to_dict()["schema"] == "ariasim.symbolic_density/1"
    assert not any(k.startswith("warp") for k in m.params_)


def test_warp_corrects_a_family_that_does_not_fit():
    """Two well separated gamma modes fitted with one generalized gamma: the warp is
    chosen and its held-out log-likelihood per sample is better by more than five
    standard errors of the paired difference."""
    rng = np.random.default_rng(5)

    def draw(n):
        d = rng.uniform(10, 100, n)
        t = np.where(rng.uniform(size=n) < 0.6, rng.gamma(3.0, d / 30), rng.gamma(40.0, d / 30))
        return t, d

    t, d = draw(4000)
    plain, warped = _fit(t, d, 0), _fit(t, d, (0, 6))
    assert warped.warp_degree_ == 6
    tv, dv = draw(4000)
    gain = warped.log_pdf(tv, dv[:, None]) - plain.log_pdf(tv, dv[:, None])
    assert gain.mean() > 5 * gain.std() / np.sqrt(gain.size), gain.mean()
