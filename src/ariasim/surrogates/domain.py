"""Rewriting a fitted formula with what the data say about its inputs' domain.

A symbolic fit works with real symbols, and sympy then keeps forms that are equal to a
simpler one only for some signs: ``sqrt(1/(D t))`` is ``1/(sqrt(D) sqrt(t))`` for
positive ``D, t``; ``exp(g log(E0) - g log(E))`` is ``(E0/E)^g``; ``sqrt((x - u t)^2)`` is
``x - u t`` where ``x > u t``; ``cos(theta + 28 pi)`` is ``cos(theta)``. A physicist reads
the simpler form, and it is the same function on the domain of the data it was fitted
to. :func:`rewrite_on_domain` applies these rewrites where the training rows show the
needed sign (every row, not a sample): inputs positive on all rows become positive
symbols, square roots of perfect squares come out with the sign the data give, and
phases are reduced modulo 2 pi. The result is the same function on those rows
(checked numerically by the caller's re-fit and validation; the rewrites are exact
identities under the stated signs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import sympy as sp

__all__ = ["rewrite_on_domain"]

_MAX_FACTOR_OPS = 40  # sympy.factor on larger root arguments can take seconds


def _sign_on(expr: sp.Expr, X: np.ndarray, names: Sequence[str]) -> int:
    """+1 or -1 when ``expr`` has that sign on every row of ``X``, else 0."""
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    index = {n: j for j, n in enumerate(names)}
    if any(s.name not in index for s in syms):
        return 0
    try:
        fn = sp.lambdify(syms, expr, "numpy")
        with np.errstate(all="ignore"):
            v = np.broadcast_to(
                np.asarray(fn(*[X[:, index[s.name]] for s in syms]), dtype=float), (len(X),)
            )
    except Exception:  # a function numpy cannot evaluate: no claim about the sign
        return 0
    if not np.isfinite(v).all():
        return 0
    return 1 if (v > 0).all() else -1 if (v < 0).all() else 0


def _exp_of_logs(expr: sp.Expr) -> sp.Expr:
    """``exp(c log(u) + rest) = u^c exp(rest)`` for positive ``u``."""

    def fix(node: sp.Expr) -> sp.Expr:
        pows, rest = [], []
        for term in sp.Add.make_args(node.args[0]):
            logs = [a for a in sp.Mul.make_args(term) if isinstance(a, sp.log)]
            if len(logs) == 1 and logs[0].args[0].is_positive:
                pows.append(logs[0].args[0] ** (term / logs[0]))
            else:
                rest.append(term)
        if not pows:
            return node
        return sp.Mul(*pows) * sp.exp(sp.Add(*rest))

    return expr.replace(lambda e: isinstance(e, sp.exp), fix)


def _pull_squares(expr: sp.Expr, X: np.ndarray, names: Sequence[str]) -> sp.Expr:
    """``(f^2 h)^(p/2) = (s f)^p h^(p/2)`` where the sum ``f`` has the sign ``s`` on
    every row (a single input's square stays: ``m0/sqrt(1 - v^2/c^2)`` is the textbook
    form, not ``c m0/sqrt(c^2 - v^2)``)."""

    def fix(node: sp.Expr) -> sp.Expr:
        if sp.count_ops(node.base) > _MAX_FACTOR_OPS:
            return node
        p = int(node.exp.p)
        num, den = sp.fraction(sp.factor(node.base))
        if _sign_on(den, X, names) < 0:  # the base is positive: both sides flip
            num, den = -num, -den
        out: sp.Expr = sp.Integer(1)
        rests = []
        for power, side in ((1, num), (-1, den)):
            coeff, factors = sp.factor_list(side)
            rest: sp.Expr = coeff
            pulled = False
            for f, m in factors:
                # only sums (x - u t): a symbol's square root sympy writes itself
                s = _sign_on(f, X, names) if m >= 2 and isinstance(f, sp.Add) else 0
                if s:
                    out *= (s * f) ** ((m // 2) * p * power)
                    rest *= f ** (m % 2)
                    pulled = True
                else:
                    rest *= f**m
            rests.append(sp.expand(rest) if pulled else sp.expand(side))
        if out == 1:
            return node
        new = out * rests[0] ** sp.Rational(p, 2) / rests[1] ** sp.Rational(p, 2)
        return node if new.has(sp.Abs) else new

    return expr.replace(
        lambda e: (
            isinstance(e, sp.Pow) and e.exp.is_Rational and e.exp.q == 2 and not e.base.is_number
        ),
        fix,
    )


def _reduce_phases(expr: sp.Expr) -> sp.Expr:
    """``sin(a + c)``, ``cos(a + c)`` with a float ``c``: ``c`` modulo 2 pi into
    (-pi, pi], dropped when it is zero to 1e-9 (exact multiples of pi sympy reduces)."""

    def fix(node: sp.Expr) -> sp.Expr:
        c, rest = node.args[0].as_coeff_Add()
        if not isinstance(c, sp.Float) or rest == 0:
            return node
        turns = round(float(c) / (2 * math.pi))
        if turns == 0:
            return node
        left = float(c) - 2 * math.pi * turns
        return node.func(rest + (sp.Float(left) if abs(left) > 1e-9 else 0))

    return expr.replace(lambda e: isinstance(e, (sp.sin, sp.cos)), fix)


def rewrite_on_domain(expr: sp.Expr, X: np.ndarray, names: Sequence[str]) -> sp.Expr:
    """``expr`` (in real symbols named ``names``, one per column of ``X``) rewritten
    with the signs the rows of ``X`` show; see the module docstring. The symbols of the
    result are the real ones again.

    Example:
        >>> D, t, x, u = sp.symbols("D t x u", real=True)
        >>> X = np.array([[1.0, 2.0, 5.0, 1.0], [0.5, 3.0, 6.0, 2.0]])
        >>> rewrite_on_domain(sp.sqrt(1 / (D * t)), X, ["D", "t", "x", "u"])
        1/(sqrt(D)*sqrt(t))
        >>> rewrite_on_domain(sp.sqrt(x**2 - 2*x*u + u**2), X, ["D", "t", "x", "u"])
        -u + x
        >>> rewrite_on_domain(sp.cos(u + sp.Float(4 * math.pi)), X, ["D", "t", "x", "u"])
        cos(u)
    """
    pos = {
        sp.Symbol(n, real=True): sp.Symbol(n, positive=True)
        for j, n in enumerate(names)
        if (X[:, j] > 0).all()
    }
    back = {v: k for k, v in pos.items()}
    out = expr.xreplace(pos)
    out = _exp_of_logs(out)
    out = _pull_squares(out, X, names)
    out = _reduce_phases(out)
    return out.xreplace(back)
