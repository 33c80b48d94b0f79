"""Dimensional analysis of formulas, for symbolic regression with units.

Unit text such as ``"m"``, ``"kg*m^2/s^2"``, ``"GeV"`` or ``"1/ns"`` is parsed with the
same whitelist parser as formulas (unit names are its variables) into a vector of
exponents of the base dimensions (length, time, mass, current, temperature, amount).
Prefixes and scale factors do not matter for consistency, so ``ns`` and ``s`` are the
same dimension.

:func:`dimension_of` walks an expression and returns its dimension, treating each fitted
floating-point constant as *free*: it may carry whatever dimension makes the expression
consistent (a fitted ``6.674e-11`` in ``G m1 m2 / r^2`` is Newton's constant with its
units). What remains checkable is real physics: terms added together must share a
dimension, arguments of ``exp``, ``log``, ``sin``... and exponents must be dimensionless,
and the result must have the target's dimension.

References:
    Tenachi, Ibata, Diakogiannis, "Deep symbolic regression for physics guided by units
    constraints" (PhySO), ApJ 959 (2023) 99 -- free constants absorbing dimensions.
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from ariasim.errors import ConfigError
from ariasim.surrogates.parse import FormulaSyntaxError, parse_expression

__all__ = [
    "BASE_DIMENSIONS",
    "FREE",
    "UNITS",
    "Dimension",
    "DimensionError",
    "dimension_of",
    "is_consistent",
    "parse_unit",
]

BASE_DIMENSIONS = ("L", "T", "M", "I", "K", "N")
Dimension = tuple[Fraction, ...]
_ZERO: Dimension = tuple(Fraction(0) for _ in BASE_DIMENSIONS)


def _dim(**powers: int) -> Dimension:
    return tuple(Fraction(powers.get(b, 0)) for b in BASE_DIMENSIONS)


_ENERGY = _dim(M=1, L=2, T=-2)
#: Unit names understood by :func:`parse_unit` and their base dimensions.
UNITS: dict[str, Dimension] = {
    **{u: _dim(L=1) for u in ("m", "km", "cm", "mm", "um", "nm", "pm", "fm")},
    **{u: _dim(T=1) for u in ("s", "ms", "us", "ns", "ps")},
    **{u: _dim(M=1) for u in ("kg", "g")},
    **{u: _ENERGY for u in ("J", "eV", "keV", "MeV", "GeV", "TeV", "erg")},
    "Hz": _dim(T=-1),
    "N": _dim(M=1, L=1, T=-2),
    "Pa": _dim(M=1, L=-1, T=-2),
    "W": _dim(M=1, L=2, T=-3),
    "A": _dim(I=1),
    "C": _dim(I=1, T=1),
    "V": _dim(M=1, L=2, T=-3, I=-1),
    "T": _dim(M=1, T=-2, I=-1),
    "Tesla": _dim(M=1, T=-2, I=-1),
    "K": _dim(K=1),
    "mol": _dim(N=1),
    "c": _dim(L=1, T=-1),  # for GeV/c and GeV/c^2
    **{u: _ZERO for u in ("rad", "sr", "deg", "photons", "counts", "X0", "percent")},
}


class _Free:
    """Dimension of an expression holding a free constant: it can be made anything."""

    def __repr__(self) -> str:
        return "FREE"


#: Marker returned by :func:`dimension_of` for expressions a constant can scale freely.
FREE = _Free()


class DimensionError(ConfigError):
    """An expression is dimensionally inconsistent.

    Example:
        >>> import sympy as sp
        >>> d, t = sp.symbols("d t", real=True)
        >>> dimension_of(d + t, {d: parse_unit("m"), t: parse_unit("ns")})
        Traceback (most recent call last):
        ...
        ariasim.surrogates.units.DimensionError: ...
    """


def parse_unit(text: str | None) -> Dimension:
    """Base-dimension exponents of a unit string (``""``, ``"1"`` or None: dimensionless)."""
    if text is None or text.strip() in ("", "1", "dimensionless"):
        return _ZERO
    try:
        expr = parse_expression(text, [], symbols={u: sp.Symbol(u) for u in UNITS})
    except FormulaSyntaxError as exc:
        raise ConfigError(
            f"cannot read unit {text!r}: {exc} (known units: {', '.join(sorted(UNITS))})",
            parameter="unit",
        ) from exc
    dim = list(_ZERO)
    for factor in sp.Mul.make_args(expr):
        base, exp = factor.as_base_exp()
        if base.is_number:
            continue  # scale factors such as 1e3 do not change the dimension
        if not isinstance(base, sp.Symbol) or not exp.is_Rational:
            raise ConfigError(f"cannot read unit {text!r}", parameter="unit")
        for i, p in enumerate(UNITS[base.name]):
            dim[i] += p * Fraction(int(exp.p), int(exp.q))
    return tuple(dim)


def _is_zero(d: Dimension) -> bool:
    return all(x == 0 for x in d)


def dimension_of(expr: sp.Expr, dims: dict[sp.Symbol, Dimension]) -> Dimension | _Free:
    """Dimension of ``expr`` given its symbols' dimensions.

    Returns a dimension vector, or :data:`FREE` if a free constant can scale the
    expression to any dimension.

    Raises:
        DimensionError: if the expression is inconsistent however its constants are chosen.
    """
    if isinstance(expr, sp.Symbol):
        return dims[expr]
    if isinstance(expr, sp.Float):
        return FREE
    if expr.is_number:
        return _ZERO
    if isinstance(expr, sp.Mul):
        parts = [dimension_of(a, dims) for a in expr.args]
        if any(p is FREE for p in parts):
            return FREE
        return tuple(sum(col, Fraction(0)) for col in zip(*parts, strict=True))  # type: ignore[arg-type]
    if isinstance(expr, (sp.Add, sp.Min, sp.Max)):
        fixed = [p for p in (dimension_of(a, dims) for a in expr.args) if p is not FREE]
        for p in fixed[1:]:
            if p != fixed[0]:
                raise DimensionError(f"adds terms of different dimensions in {expr}")
        return fixed[0] if fixed else FREE
    if isinstance(expr, sp.Pow):
        base = dimension_of(expr.base, dims)
        ex = dimension_of(expr.exp, dims)
        if not isinstance(ex, _Free) and not _is_zero(ex):
            raise DimensionError(f"dimensional exponent in {expr}")
        if isinstance(base, _Free) or _is_zero(base):
            return base
        if expr.exp.is_number:
            k = (
                Fraction(float(expr.exp)).limit_denominator(1000)
                if not expr.exp.is_Rational
                else Fraction(int(expr.exp.p), int(expr.exp.q))
            )
            return tuple(b * k for b in base)
        raise DimensionError(f"dimensional base raised to a variable power in {expr}")
    if isinstance(expr, sp.Abs):
        return dimension_of(expr.args[0], dims)
    if isinstance(expr, sp.Function):  # exp, log, sin, erf, ...: dimensionless in and out
        for a in expr.args:
            d = dimension_of(a, dims)
            if not isinstance(d, _Free) and not _is_zero(d):
                raise DimensionError(f"dimensional argument of {type(expr).__name__} in {expr}")
        return _ZERO
    raise DimensionError(f"cannot analyse {type(expr).__name__} in {expr}")


def is_consistent(expr: sp.Expr, dims: dict[sp.Symbol, Dimension], target: Dimension) -> bool:
    """True if some choice of the free constants makes ``expr`` have dimension ``target``."""
    try:
        d = dimension_of(expr, dims)
    except DimensionError:
        return False
    return d is FREE or d == target
