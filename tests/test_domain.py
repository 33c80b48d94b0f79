"""Tests of the domain-aware rewrites of fitted formulas."""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ariasim.surrogates.domain import rewrite_on_domain

x, u, t, c, D, E0, En, g = sp.symbols("x u t c D E0 En g", real=True)
NAMES = ["x", "u", "t", "c", "D", "E0", "En", "g"]


def _rows(x_lo: float = 5.0, x_hi: float = 10.0, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    lo = [x_lo, 1.0, 1.0, 3.0, 0.1, 1.0, 1.0, 2.0]
    hi = [x_hi, 2.0, 2.0, 10.0, 1.0, 10.0, 100.0, 3.0]
    return rng.uniform(lo, hi, (n, len(lo)))


def _same_function(a: sp.Expr, b: sp.Expr, X: np.ndarray) -> bool:
    syms = [sp.Symbol(n, real=True) for n in NAMES]
    fa, fb = sp.lambdify(syms, a), sp.lambdify(syms, b)
    cols = list(X.T)
    return bool(np.allclose(fa(*cols), fb(*cols), rtol=1e-12, atol=0))


def test_positive_inputs_split_roots_and_merge_exp_of_logs():
    X = _rows()
    e = sp.sqrt(1 / (D * t))
    assert rewrite_on_domain(e, X, NAMES) == 1 / (sp.sqrt(D) * sp.sqrt(t))
    e = sp.exp(g * sp.log(E0) - g * sp.log(En) - En / 50)
    out = rewrite_on_domain(e, X, NAMES)
    assert not out.has(sp.log) and _same_function(out, e, X)


def test_square_of_a_sum_comes_out_with_the_data_sign():
    X = _rows()  # x - u t > 0 on every row
    e = sp.sqrt((t**2 * u**2 - 2 * t * u * x + x**2) / (1 - u**2 / c**2))
    out = rewrite_on_domain(e, X, NAMES)
    assert not out.has(sp.Abs)
    assert sp.simplify(out - c * (x - u * t) / sp.sqrt(c**2 - u**2)) == 0
    assert _same_function(out, e, X)


def test_square_of_a_sum_that_changes_sign_stays_under_the_root():
    X = _rows(x_lo=0.0, x_hi=10.0)  # x - u t changes sign
    e = sp.sqrt(t**2 * u**2 - 2 * t * u * x + x**2 + 1)
    assert rewrite_on_domain(e, X, NAMES) == e
    e = sp.sqrt((x - u * t) ** 2)
    out = rewrite_on_domain(e, X, NAMES)
    assert _same_function(out, e, X)  # whatever form: still |x - u t|


def test_phase_is_reduced_modulo_two_pi():
    X = _rows()
    e = sp.cos(u + sp.Float(28 * math.pi))
    assert rewrite_on_domain(e, X, NAMES) == sp.cos(u)
    e = sp.sin(u + sp.Float(4 * math.pi + 0.5))
    out = rewrite_on_domain(e, X, NAMES)
    assert _same_function(out, e, X) and float(out.args[0].as_coeff_Add()[0]) < 1


def test_single_input_squares_keep_the_textbook_form():
    X = _rows()
    e = 1 / sp.sqrt(1 - u**2 / c**2)
    assert rewrite_on_domain(e, X, NAMES) == e
