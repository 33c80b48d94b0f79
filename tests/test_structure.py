"""Tests of the exact-structure searches: dimensional analysis and transformed sparse fits."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from ariasim.surrogates.structure import (
    _TRANSFORMS,
    Reduction,
    _box_ok,
    dimensional_reductions,
    structure_candidates,
)
from ariasim.surrogates.symbolic import SymbolicRegressor
from ariasim.surrogates.units import parse_unit

EPS = "C^2/(N*m^2)"


def _dim_of(exps, units):
    return tuple(sum(p * u[b] for p, u in zip(exps, units, strict=True)) for b in range(6))


@pytest.mark.parametrize(
    ("units", "target", "n_groups"),
    [
        (["m", "m/s^2", ""], "s", 1),  # pendulum: sqrt(l/g) f(amplitude)
        (["C", "C", EPS, "m"], "N", 1),  # Coulomb: q2/q1 is a group
        (["kg", "m/s", "m/s"], "kg", 1),  # relativistic mass: v/c
        (["1/m^3", "kg", "m", "K", "m/s^2", "J/K"], "1/m^3", 2),  # barometric law
    ],
)
def test_reductions_are_dimensionally_exact(units, target, n_groups):
    dims = [parse_unit(u) for u in units]
    t = parse_unit(target)
    reds = dimensional_reductions(dims, t)
    assert reds, "a consistent problem has a reduction"
    zero = tuple(Fraction(0) for _ in range(6))
    for red in reds:
        assert _dim_of(red.scale, dims) == t  # M carries the target's dimension
        assert len(red.groups) == n_groups  # Buckingham: inputs - rank
        for g in red.groups:
            assert _dim_of(g, dims) == zero  # every group is dimensionless
            assert all(p.denominator == 1 for p in g) or any(p.denominator > 1 for p in g)
    costs = [r.cost for r in reds]
    assert costs == sorted(costs)  # best (smallest exponents) first


def test_reductions_of_inconsistent_units_are_empty():
    # a target in seconds cannot be made from lengths and masses
    assert dimensional_reductions([parse_unit("m"), parse_unit("kg")], parse_unit("s")) == []


def _split(n: int, seed: int = 0):
    perm = np.random.default_rng(seed).permutation(n)
    return perm[n // 4 :], perm[: n // 4]


def _within(r: np.ndarray, ref: np.ndarray) -> bool:
    est = SymbolicRegressor()
    return est._within_noise(r, ref, np.ones(r.size), 1.0)


@pytest.mark.parametrize(
    ("name", "truth", "units", "target"),
    [
        ("lorentz", "m0/sqrt(1 - v^2/c^2)", ["kg", "m/s", "m/s"], "kg"),
        ("lens", "1/(1/d1 + n/d2)", ["m", "m", ""], "m"),
        ("distance", "sqrt((x2 - x1)^2 + (y2 - y1)^2)", ["m", "m", "m", "m"], "m"),
    ],
)
def test_structure_search_finds_exact_law(name, truth, units, target):
    from ariasim.surrogates import Formula

    names = {
        "lorentz": ["m0", "v", "c"],
        "lens": ["d1", "d2", "n"],
        "distance": ["x1", "x2", "y1", "y2"],
    }[name]
    rng = np.random.default_rng(1)
    lo, hi = ([1, 1, 3], [5, 2, 10]) if name == "lorentz" else (1, 5)
    X = rng.uniform(lo, hi, (400, len(names)))
    f = Formula(truth, names)
    y = f(X)
    train, val = _split(len(y))
    reds = dimensional_reductions([parse_unit(u) for u in units], parse_unit(target))
    syms = sp.symbols(names, real=True)
    res = structure_candidates(X, y, np.ones(len(y)), train, val, reds, syms, within_noise=_within)
    assert res.exact
    # the simplest candidate is the law itself (equal on fresh points to rounding level)
    Xn = rng.uniform(lo, hi, (200, len(names)))
    best = min(res.expressions, key=sp.count_ops)
    pred = Formula(best, names)(Xn)
    np.testing.assert_allclose(pred, f(Xn), rtol=1e-9)


def test_box_check_rejects_a_pole():
    inv = next(t for t in _TRANSFORMS if t.name == "inv")
    x = np.linspace(-1, 1, 101)
    assert not _box_ok(inv, np.ones_like(x), x)  # 1/x crosses a pole
    assert _box_ok(inv, np.ones_like(x), 2 + x)
    # a rational model whose denominator changes sign in the box is rejected
    ident = next(t for t in _TRANSFORMS if t.name == "id")
    assert not _box_ok(ident, np.ones_like(x), np.ones_like(x), x - 0.3)


def test_reduction_evaluates_groups():
    red = Reduction((Fraction(1), Fraction(0)), ((Fraction(-1), Fraction(1)),))
    M, P = red.evaluate(np.array([[2.0, 6.0], [4.0, 2.0]]))
    np.testing.assert_allclose(M, [2.0, 4.0])
    np.testing.assert_allclose(P[:, 0], [3.0, 0.5])


def test_estimator_with_units_recovers_law_without_search():
    """Coulomb's law has no dimensionless group: y = C q1 q2 / (eps r^2) exactly, with C
    snapped to 1/(4 pi); Operon is not needed (no search statistics)."""
    rng = np.random.default_rng(2)
    X = rng.uniform(1, 5, (300, 4))
    y = X[:, 0] * X[:, 1] / (4 * np.pi * X[:, 2] * X[:, 3] ** 2)
    est = SymbolicRegressor(
        max_time=5,
        random_state=0,
        variable_names=["q1", "q2", "eps", "r"],
        variable_units=["C", "C", EPS, "m"],
        target_unit="N",
    ).fit(X, y)
    q1, q2, eps, r = sp.symbols("q1 q2 eps r", real=True)
    assert sp.simplify(est.formula_.expression - q1 * q2 / (4 * sp.pi * eps * r**2)) == 0
    assert est.search_stats_ == {}


@pytest.mark.parametrize("seed", [0, 1])
def test_estimator_recovers_lorentz_factor_at_one_percent_noise(seed):
    """1 % noise (of the RMS of y): the structure search and the snapping still give
    m0 / sqrt(1 - v^2/c^2) up to SRBench's 3-decimal rounding of constants."""
    rng = np.random.default_rng(seed)
    X = rng.uniform([1, 1, 3], [5, 2, 10], (1000, 3))
    y0 = X[:, 0] / np.sqrt(1 - X[:, 1] ** 2 / X[:, 2] ** 2)
    y = y0 + rng.normal(0, 0.01 * np.sqrt(np.mean(y0**2)), y0.size)
    est = SymbolicRegressor(
        max_time=6,
        generations=3,
        population_size=100,
        random_state=seed,
        variable_names=["m0", "v", "c"],
        variable_units=["kg", "m/s", "m/s"],
        target_unit="kg",
    ).fit(X, y)
    m0, v, c = sp.symbols("m0 v c", real=True)
    model = est.formula_.expression
    model = model.xreplace({a: sp.Float(round(float(a), 3)) for a in model.atoms(sp.Float)})
    ratio = sp.simplify(model / (m0 / sp.sqrt(1 - v**2 / c**2)))
    assert not ratio.free_symbols, est.formula_.expression


def test_estimator_without_units_finds_power_law():
    """No units: each input is its own group; log y linear in log x gives the monomial."""
    rng = np.random.default_rng(3)
    X = rng.uniform(1, 4, (300, 2))
    y = 2.0 * X[:, 0] ** 1.5 / X[:, 1]
    est = SymbolicRegressor(max_time=5, generations=2, population_size=50, random_state=0).fit(X, y)
    x0, x1 = sp.symbols("x0 x1", real=True)
    assert sp.simplify(est.formula_.expression - 2 * x0 ** sp.Rational(3, 2) / x1) == 0


def test_structure_search_is_reproducible():
    """With ``generations`` set, two fits give the same formulas (text) and front."""
    rng = np.random.default_rng(4)
    X = rng.uniform(1, 3, (300, 3))
    y = X[:, 0] * np.exp(-X[:, 1] / X[:, 2]) + rng.normal(0, 0.01, 300)
    kw = dict(
        max_time=10,
        generations=2,
        population_size=50,
        random_state=7,
        variable_units=["m", "s", "s"],
        target_unit="m",
    )
    a = SymbolicRegressor(**kw).fit(X, y)
    b = SymbolicRegressor(**kw).fit(X, y)
    assert str(a.formula_) == str(b.formula_)
    assert list(a.pareto_["expression"]) == list(b.pareto_["expression"])


def test_new_parameters_are_checked():
    from ariasim.errors import ConfigError

    X, y = np.ones((20, 1)), np.ones(20)
    with pytest.raises(ConfigError, match="max_evaluations"):
        SymbolicRegressor(max_evaluations=0).fit(X, y)
    with pytest.raises(ConfigError, match="structure_fraction"):
        SymbolicRegressor(structure_fraction=1.5).fit(X, y)


def _exact_fit(X, y, names, units, target_unit, seed=0):
    """A short fit (the structure search explains noise-free data: Operon is skipped)."""
    return SymbolicRegressor(
        max_time=8,
        generations=2,
        population_size=30,
        random_state=seed,
        variable_names=names,
        variable_units=units,
        target_unit=target_unit,
    ).fit(X, y)


def test_angle_given_by_its_cosine_is_found_with_acos():
    """Cherenkov angle acos(1/(n beta)): the acos transform makes it a Laurent monomial."""
    rng = np.random.default_rng(1)
    X = rng.uniform([1.3, 0.8], [1.8, 1.0], (400, 2))
    y = np.arccos(1 / (X[:, 0] * X[:, 1]))
    est = _exact_fit(X, y, ["n", "beta"], ["", ""], "rad")
    n, beta = sp.symbols("n beta", real=True)
    assert sp.simplify(est.formula_.expression - sp.acos(1 / (n * beta))) == 0


def test_snell_law_is_found_with_asin_and_an_angle_feature():
    rng = np.random.default_rng(2)
    X = rng.uniform([0.2, 0.1], [0.6, 1.2], (400, 2))  # n, theta
    y = np.arcsin(X[:, 0] * np.sin(X[:, 1]))
    est = _exact_fit(X, y, ["n", "theta"], ["", "rad"], "rad")
    n, th = sp.symbols("n theta", real=True)
    assert sp.simplify(est.formula_.expression - sp.asin(n * sp.sin(th))) == 0


def test_turn_on_curve_times_a_plateau_is_found_with_logit():
    """eps / (1 + exp(-(pt - p0)/w)): y/eps lies in (0, 1), so eps joins M and the logit
    of the rest is linear in pt/w and p0/w."""
    rng = np.random.default_rng(3)
    X = rng.uniform([0.8, 0.0, 20.0, 2.0], [1.0, 100.0, 40.0, 10.0], (600, 4))
    y = X[:, 0] / (1 + np.exp(-(X[:, 1] - X[:, 2]) / X[:, 3]))
    est = _exact_fit(X, y, ["eps", "pt", "p0", "w"], ["", "GeV", "GeV", "GeV"], "")
    eps, pt, p0, w = sp.symbols("eps pt p0 w", real=True)
    truth = eps / (1 + sp.exp(-(pt - p0) / w))
    assert sp.simplify(est.formula_.expression - truth) == 0


def test_shifted_root_kinetic_energy_is_found():
    """sqrt(p^2 c^2 + m^2 c^4) - m c^2: (g + 1)^2 = 1 + u^2, fitted as g^2 = u^2 - 2 g."""
    rng = np.random.default_rng(4)
    X = rng.uniform([0.1, 0.1, 1.0], [5.0, 5.0, 3.0], (400, 3))
    p_, m_, c_ = X.T
    y = np.sqrt(p_**2 * c_**2 + m_**2 * c_**4) - m_ * c_**2
    est = _exact_fit(X, y, ["p", "m", "c"], ["kg*m/s", "kg", "m/s"], "J")
    p, m, c = sp.symbols("p m c", positive=True)
    model = est.formula_.expression.xreplace(
        {s: sp.Symbol(s.name, positive=True) for s in est.formula_.expression.free_symbols}
    )
    assert sp.simplify(model - (sp.sqrt(p**2 * c**2 + m**2 * c**4) - m * c**2)) == 0


def test_input_the_units_cannot_place_is_searched_raw():
    """Highland-like: theta0 = 13.6/(beta p) sqrt(x/X0) with p in MeV and theta0 in rad
    needs a constant in MeV; dimensional analysis drops p, the raw search finds it."""
    rng = np.random.default_rng(5)
    X = rng.uniform([0.5, 100.0, 0.001, 0.01], [1.0, 5000.0, 0.1, 0.5], (500, 4))
    y = 13.6 / (X[:, 0] * X[:, 1]) * np.sqrt(X[:, 2] / X[:, 3])
    est = _exact_fit(X, y, ["beta", "p", "x", "X0"], ["", "MeV", "m", "m"], "rad")
    beta, p, x, X0 = sp.symbols("beta p x X0", real=True)
    model = est.formula_.expression
    assert model.free_symbols == {beta, p, x, X0}
    ratio = sp.simplify(model / (sp.sqrt(x / X0) / (beta * p)))
    assert not ratio.free_symbols and abs(float(ratio) - 13.6) < 1e-6


def test_angle_group_inverted_by_orientation_keeps_its_trig_features():
    """theta in (1, 3) is written 1/theta by the orientation step; sin(theta) cos(theta)
    must still be in the library (dipole field II.6.15b)."""
    rng = np.random.default_rng(6)
    X = rng.uniform([1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0], (400, 4))
    pd_, eps_, th_, r_ = X.T
    y = 3 * pd_ * np.sin(th_) * np.cos(th_) / (4 * np.pi * eps_ * r_**3)
    est = _exact_fit(X, y, ["p_d", "epsilon", "theta", "r"], ["C*m", "C^2/(N*m^2)", "", "m"], "V/m")
    p_d, eps, th, r = sp.symbols("p_d epsilon theta r", real=True)
    truth = 3 * p_d * sp.sin(th) * sp.cos(th) / (4 * sp.pi * eps * r**3)
    assert sp.simplify(sp.expand_trig(est.formula_.expression) - truth) == 0
