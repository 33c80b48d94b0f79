"""Tests of the symbolic-regression estimator and of dimensional analysis."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import sympy as sp
from sklearn.base import clone

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates import Formula
from ariasim.surrogates.symbolic import SymbolicRegressor, _snap_targets
from ariasim.surrogates.units import FREE, DimensionError, dimension_of, is_consistent, parse_unit

m, s, kg = sp.symbols("m s kg", real=True)
L, T, M = parse_unit("m"), parse_unit("s"), parse_unit("kg")


def test_parse_unit():
    assert parse_unit("kg*m^2/s^2") == parse_unit("J") == parse_unit("GeV")
    assert parse_unit("1/ns") == parse_unit("Hz")
    assert parse_unit("") == parse_unit("1") == parse_unit("rad")
    assert parse_unit("m^(1/2)")[0] == Fraction(1, 2)
    assert parse_unit("GeV/c")[2] == 1
    with pytest.raises(ConfigError, match="furlong"):
        parse_unit("furlong")


def test_dimension_rules():
    x, t = sp.symbols("x t", real=True)
    dims = {x: L, t: T}
    v = tuple(a - b for a, b in zip(L, T, strict=True))
    assert dimension_of(x / t, dims) == v
    assert dimension_of(sp.Float(2.0) * x, dims) is FREE
    assert dimension_of(x**2, dims) == tuple(2 * a for a in L)
    assert dimension_of(sp.exp(sp.Float(-0.3) * x), dims) == parse_unit("1")
    with pytest.raises(DimensionError, match="different dimensions"):
        dimension_of(x + t, dims)
    with pytest.raises(DimensionError, match="argument of exp"):
        dimension_of(sp.exp(x), dims)
    with pytest.raises(DimensionError, match="exponent"):
        dimension_of(x**t, dims)
    # x + 1.5*t is fine: the free constant carries m/s
    assert dimension_of(x + sp.Float(1.5) * t, dims) == L
    assert is_consistent(x / t**2 * sp.Float(3.0), dims, L)
    assert not is_consistent(x / t, dims, L)


def test_snap_targets():
    assert sp.Integer(2) in _snap_targets(2.01)
    assert sp.Rational(1, 2) in _snap_targets(0.5004)
    assert sp.Integer(0) in _snap_targets(3e-5)
    assert _snap_targets(2.7) == []
    assert _snap_targets(6137401.37) == []  # large constants stay fitted


def test_estimator_contract():
    est = SymbolicRegressor(max_time=3, random_state=0)
    params = est.get_params()
    assert params["max_time"] == 3 and params["units"] == "prefer"
    clone(est)
    with pytest.raises(ConfigError, match="units"):
        SymbolicRegressor(units="maybe").fit(np.ones((50, 1)), np.ones(50))
    with pytest.raises(InputError, match="finite"):
        SymbolicRegressor(max_time=1).fit(np.full((50, 1), np.nan), np.ones(50))
    with pytest.raises(ConfigError, match="sample_weight"):
        SymbolicRegressor(max_time=1).fit(np.ones((50, 1)), np.ones(50), sample_weight=-np.ones(50))
    with pytest.raises(ConfigError, match="variable_units"):
        SymbolicRegressor(max_time=1, variable_units=["m", "s"]).fit(np.ones((50, 1)), np.ones(50))


def _fake_fitted(n_val: int = 400, noise: float = 0.0, seed: int = 0):
    """An estimator with a hand-made front, to test the selection rule deterministically."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(1, 3, (n_val, 2))
    y = 1.7 * X[:, 0] ** 2 / X[:, 1] + rng.normal(0, noise, n_val)
    est = SymbolicRegressor(variable_units=["m", "s"], target_unit="m^2/s")
    est._with_units = True
    est._dims = {sp.Symbol("a", real=True): L, sp.Symbol("b", real=True): T}
    est._target_dim = parse_unit("m^2/s")
    front = [
        Formula("1.7*a^2/b", ["a", "b"]),  # truth
        Formula("1.7*a^2/b + 1e-9*a^3", ["a", "b"]),  # truth + negligible term
        Formula("0.5*a + 2.0*a^2/b - 0.35*a^3/b^2", ["a", "b"]),  # approximate
        Formula("1.7*a^2/b + 1e-9*exp(a)", ["a", "b"]),  # inconsistent, no better
    ]
    w = np.ones(n_val)
    rows = [est._row(f, X, y, w, np.arange(n_val), np.arange(n_val)) for f in front]
    table = pd.DataFrame(rows).sort_values(["complexity", "val_mse"]).reset_index(drop=True)
    return est, table, X, y, w


def test_selection_prefers_exact_simple_model():
    est, table, X, y, w = _fake_fitted()
    chosen = est._select(table, X, y, w)
    assert table.loc[chosen, "expression"] == "1.7*a**2/b"
    assert not table.set_index("expression").loc["1e-09*exp(a) + 1.7*a**2/b", "dims_ok"]


def test_selection_with_noise_picks_truth_over_overfit():
    # with 1% noise, the truth and the truth + tiny extra term are equivalent within noise:
    # the simpler one must be chosen; the approximate one is far outside the noise
    est, table, X, y, w = _fake_fitted(noise=0.05)
    chosen = est._select(table, X, y, w)
    assert table.loc[chosen, "expression"] == "1.7*a**2/b"


def test_within_noise_is_a_calibrated_test():
    """Two equally good models differ by noise only: the paired test at 2 sigma must accept
    in about 97.7% of repetitions (one-sided), so over 200 repetitions the number of
    rejections is Binomial(200, 0.023): mean 4.6, and > 20 would be a >5 sigma excess."""
    est = SymbolicRegressor(noise_sigmas=2.0)
    rng = np.random.default_rng(11)
    rejections = 0
    for _ in range(200):
        r1, r2 = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
        rejections += not est._within_noise(r1, r2, np.ones(300), 1.0)
    assert rejections <= 20
    # a real 20% increase of the error is detected at n = 300 nearly always
    worse = sum(
        not est._within_noise(rng.normal(0, 1.2, 300), rng.normal(0, 1, 300), np.ones(300), 1.0)
        for _ in range(50)
    )
    assert worse >= 40


@pytest.mark.slow
def test_recovers_formula_end_to_end():
    rng = np.random.default_rng(5)
    X = rng.uniform(1, 4, (600, 2))
    y = 3.0 * X[:, 0] * X[:, 1] ** 2
    est = SymbolicRegressor(
        max_time=6,
        random_state=2,
        variable_names=["q", "v"],
        variable_units=["C", "m/s"],
        target_unit="C*m^2/s^2",
    ).fit(X, y)
    expr = est.formula_.expression
    q, v = sp.symbols("q v", real=True)
    assert sp.simplify(expr - 3 * q * v**2) == 0, str(expr)
    assert est.score(X, y) > 0.999999
    assert est.pareto_["selected"].sum() == 1
    assert est.formula_.metadata["complexity"] == est.formula_.complexity
    assert est.predict(X).shape == (600,)
    # one way to get formulas out: formulas_/formula_, and get_best on the Pareto front
    assert est.formulas_ == {"mean": est.formula_}
    assert est.get_best() is est.formula_
    chosen = int(est.pareto_.index[est.pareto_["selected"]][0])
    assert est.get_best(chosen).expression == est.formula_.expression
    assert est.get_best(0).complexity == est.pareto_["complexity"].min()
    with pytest.raises(ConfigError, match="index"):
        est.get_best(len(est.pareto_))
    with pytest.raises(InputError, match="features"):
        est.predict(np.ones((3, 3)))


@pytest.mark.slow
def test_sample_weight_ignores_zero_weight_outliers():
    rng = np.random.default_rng(7)
    X = rng.uniform(0.5, 3, (500, 1))
    y = 2.0 * np.sqrt(X[:, 0])
    y_bad = y.copy()
    y_bad[:100] = rng.uniform(50, 100, 100)
    w = np.ones(500)
    w[:100] = 0.0
    est = SymbolicRegressor(max_time=5, random_state=3).fit(X, y_bad, sample_weight=w)
    pred = est.predict(X[100:])
    assert np.max(np.abs(pred - y[100:])) < 1e-6 * np.max(y)


def test_x_check_rejects_a_model_undefined_between_or_beyond_the_rows():
    """A formula exact on the rows but NaN elsewhere in the domain (a negative square
    root beyond them: a photon yield fitted to cos_theta bin centres did this) is not
    selected when ``X_check`` spans the domain."""
    x = np.linspace(-0.5, 0.5, 41)[:, None]
    y = np.sqrt(1.0 - 3.0 * x[:, 0] ** 2)
    grid = np.linspace(-0.6, 0.6, 121)[:, None]
    kw = dict(
        max_time=20.0,
        generations=3,
        random_state=0,
        candidates=("sqrt(1 - 3*x**2)", "1 - 1.5*x**2"),
    )
    free = SymbolicRegressor(**kw, variable_names=["x"]).fit(x, y)
    with np.errstate(invalid="ignore"):
        assert not np.isfinite(free.formula_(grid)).all()  # the check has work to do
    checked = SymbolicRegressor(**kw, variable_names=["x"]).fit(x, y, X_check=grid)
    assert np.isfinite(checked.formula_(grid)).all()
    with np.errstate(invalid="ignore"):
        assert all(np.isfinite(f(grid)).all() for f in checked.pareto_["formula"])


def test_max_complexity_leaves_large_models_out_of_the_front():
    """``max_complexity`` bounds every model of the front, also those that did not come
    from Operon (the structure search and ``candidates`` are not bounded by
    ``max_length``); a bad value is refused with the option's name."""
    x = np.linspace(1.0, 3.0, 60)[:, None]
    y = 2.0 + 0.5 * x[:, 0] + 0.1 * x[:, 0] ** 2
    big = " + ".join(f"{0.3 / (k + 1)}*sin({k + 1}*x)" for k in range(10))
    kw = dict(max_time=20.0, generations=3, random_state=0, variable_names=["x"])
    free = SymbolicRegressor(**kw, candidates=(big,)).fit(x, y)
    assert free.pareto_["complexity"].max() > 25  # the bound has work to do
    bound = SymbolicRegressor(**kw, candidates=(big,), max_complexity=25).fit(x, y)
    assert bound.pareto_["complexity"].max() <= 25
    assert bound.formula_.complexity <= 25
    with pytest.raises(ConfigError, match="max_complexity"):
        SymbolicRegressor(max_time=1, max_complexity=0).fit(x, y)
