r"""The printer of sympy expressions and :class:`~ariasim.surrogates.formula.Formula` objects
as Delphes/ROOT TFormula text (:func:`to_tformula`).

:func:`to_tformula` prints a sympy expression (or a :class:`~ariasim.surrogates.formula.Formula`)
as TFormula text that the reader and ROOT read identically: every power as
``(base)^(exponent)``, every negative number in parentheses, floats with round-trip
precision and always with a decimal point or exponent (no C++ integer division), only the
variables ``pt``, ``eta``, ``phi``, ``energy``.

Every printed text is read back by :class:`~ariasim.export.tformula_eval.TFormulaExpression`
(the reader: parser, evaluator, Delphes' substitution and its checks), whose names are
also importable from here.

Example:
    >>> import sympy as sp
    >>> pt, eta = sp.symbols("pt eta", positive=True)
    >>> text = to_tformula(0.01 * sp.sqrt(pt) + eta**2 / 2)
    >>> text
    '((0.5*((eta)^(2.0))) + (0.01*sqrt(pt)))'
    >>> float(evaluate_card_formula(text, pt=100.0, eta=1.0))
    0.6

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
    ROOT TFormula class reference, https://root.cern/doc/master/classTFormula.html.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from ariasim.export.tformula_eval import (
    CHUNK,
    DELPHES_SUBSTITUTIONS,
    DELPHES_VARIABLES,
    Parser,
    TFormulaError,
    TFormulaExpression,
    check_card_formula,
    delphes_substitute,
    evaluate_ast,
    evaluate_card_formula,
)

# to_tformula, and the reader's names (ariasim.export.tformula_eval), importable from here too
__all__ = [
    "CHUNK",
    "DELPHES_SUBSTITUTIONS",
    "DELPHES_VARIABLES",
    "Parser",
    "TFormulaError",
    "TFormulaExpression",
    "check_card_formula",
    "delphes_substitute",
    "evaluate_ast",
    "evaluate_card_formula",
    "to_tformula",
]

# --------------------------------------------------------------------------- printer

_SYMPY_FUNCS: dict[type, str] = {
    sp.exp: "exp",
    sp.log: "log",
    sp.Abs: "abs",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.tanh: "tanh",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.atan: "atan",
    sp.erf: "TMath::Erf",
}


def _num(v: float) -> str:
    if not math.isfinite(v):
        raise TFormulaError(f"non-finite constant {v}")
    s = repr(float(v))
    if "e" not in s and "." not in s:
        s += ".0"
    return f"({s})" if s.startswith("-") else s


def _positive(b: sp.Basic) -> bool:
    """True when ``b`` is provably > 0 (sympy's assumptions, or a clamp such as
    ``Min(300, Max(1.0, pt))`` whose lower bound is a positive number)."""
    if b.is_positive:
        return True
    if isinstance(b, sp.Max):
        return any(_positive(a) for a in b.args)
    if isinstance(b, sp.Min):
        return all(_positive(a) for a in b.args)
    return False


#: Fold factors into the exponential when the coefficient's |log| or a power exceeds these.
_FOLD_LOG_COEFF = 20.0
_FOLD_POWER = 8.0


def _fold_into_exp(e: sp.Mul) -> sp.Basic | None:
    """``c * x^k * ... * exp(a)`` as ``sign(c) * exp(a + log|c| + k log(x) + ...)`` when the
    product is numerically dangerous, else ``None``.

    sympy splits ``exp(a + k log x)`` into ``x^k exp(a)`` automatically, so a learned
    logistic or exponential term can reach the card as e.g. ``8.9e20 * exp(P) / pt^140``,
    whose factors overflow in double precision although their product is moderate
    (NaN = inf/inf in Delphes). Folding the coefficient and the powers of provably
    positive bases back into one exponential keeps the value and makes it finite.
    Only done when ``|log|c|| > 20`` or some ``|k| > 8``, so ordinary products stay
    readable.
    """
    exps = [a for a in e.args if isinstance(a, sp.exp)]
    if len(exps) != 1:
        return None
    coeff, terms = 1.0, [exps[0].args[0]]
    rest: list[sp.Basic] = []
    risky = False
    for a in e.args:
        if a is exps[0]:
            continue
        if a.is_Number:
            coeff *= float(a)
        elif (
            isinstance(a, sp.Pow)
            and a.exp.is_Number
            and _positive(a.base)
            and (not a.exp.is_Integer or abs(float(a.exp)) > _FOLD_POWER)
        ):
            risky |= abs(float(a.exp)) > _FOLD_POWER
            terms.append(sp.Mul(sp.Float(float(a.exp)), sp.log(a.base), evaluate=False))
        else:
            rest.append(a)
    if coeff == 0.0 or not np.isfinite(coeff):
        return None
    risky |= abs(np.log(abs(coeff))) > _FOLD_LOG_COEFF
    if not risky:
        return None
    terms.append(sp.Float(float(np.log(abs(coeff)))))
    out = sp.exp(sp.Add(*terms, evaluate=False), evaluate=False)
    factors = ([sp.Float(-1.0)] if coeff < 0 else []) + rest + [out]
    return sp.Mul(*factors, evaluate=False) if len(factors) > 1 else out


class _Printer:
    def __init__(self, names: Mapping[str, str]):
        self.names = names

    def p(self, e: sp.Basic) -> str:
        if isinstance(e, sp.Symbol):
            if e.name not in self.names:
                raise TFormulaError(
                    f"variable {e.name!r} has no Delphes name (map it to one of "
                    f"{sorted(DELPHES_VARIABLES)})"
                )
            return self.names[e.name]
        if e.is_Number or e in (sp.pi, sp.E) or isinstance(e, sp.NumberSymbol):
            return _num(float(e))
        if isinstance(e, sp.Add):
            return "(" + " + ".join(self.p(a) for a in e.args) + ")"
        if isinstance(e, sp.Mul):
            folded = _fold_into_exp(e)
            if folded is not None:
                return self.p(folded)
            num, den = [], []
            for a in e.args:
                if isinstance(a, sp.Pow) and a.exp.is_Number and a.exp < 0:
                    den.append(a.base if a.exp == -1 else sp.Pow(a.base, -a.exp, evaluate=False))
                else:
                    num.append(a)
            top = "*".join(self.p(a) for a in num) if num else "1.0"
            if not den:
                return f"({top})"
            return f"(({top})/({'*'.join(self.p(a) for a in den)}))"
        if isinstance(e, sp.Pow):
            b, x = e.base, e.exp
            if x == sp.Rational(1, 2):
                return f"sqrt({self.p(b)})"
            if x == -1:
                return f"(1.0/({self.p(b)}))"
            if x == sp.Rational(-1, 2):
                return f"(1.0/sqrt({self.p(b)}))"
            if x.is_Number and x < 0:
                return f"(1.0/(({self.p(b)})^({_num(float(-x))})))"
            return f"(({self.p(b)})^({self.p(x)}))"
        if isinstance(e, (sp.Max, sp.Min)):
            fn = "TMath::Max" if isinstance(e, sp.Max) else "TMath::Min"
            args = list(e.args)
            out = self.p(args[0])
            for a in args[1:]:
                out = f"{fn}({out}, {self.p(a)})"
            return out
        if isinstance(e, sp.Piecewise):
            raise TFormulaError(
                "Piecewise is not printed directly; build disjoint regions "
                "with ariasim.apps.collider.delphes.piecewise_eta"
            )
        if isinstance(e, sp.Function) and type(e) in _SYMPY_FUNCS:
            return f"{_SYMPY_FUNCS[type(e)]}({', '.join(self.p(a) for a in e.args)})"
        if isinstance(e, sp.Function) and e.func.__name__ == "sigmoid":
            return f"(1.0/(1.0 + exp(-({self.p(e.args[0])}))))"
        if isinstance(e, sp.Rel):
            op = {
                sp.StrictLessThan: "<",
                sp.LessThan: "<=",
                sp.StrictGreaterThan: ">",
                sp.GreaterThan: ">=",
                sp.Eq: "==",
                sp.Ne: "!=",
            }[type(e)]
            return f"({self.p(e.lhs)} {op} {self.p(e.rhs)})"
        if isinstance(e, sp.And):
            return "(" + " && ".join(self.p(a) for a in e.args) + ")"
        if isinstance(e, sp.Or):
            return "(" + " || ".join(self.p(a) for a in e.args) + ")"
        raise TFormulaError(f"cannot print {type(e).__name__} ({e}) as TFormula")


def to_tformula(expr: Any, variables: Mapping[str, str] | None = None) -> str:
    """Print a sympy expression or :class:`~ariasim.surrogates.formula.Formula` as Delphes
    card (TFormula) text.

    Arguments:
        expr: sympy expression or Formula.
        variables: Map from the expression's symbol names to Delphes variables (``pt``,
            ``eta``, ``phi``, ``energy``); default: identity for symbols already so named.

    The text is checked with :func:`check_card_formula` and parsed back before it is
    returned, so an emitted formula is always one our evaluator (and Delphes) reads.
    """
    e = expr.expression if hasattr(expr, "expression") and hasattr(expr, "variables") else expr
    if not isinstance(e, sp.Basic):
        e = sp.sympify(e) if isinstance(e, (int, float)) else e
    names = dict(variables or {})
    for s in e.free_symbols:
        names.setdefault(s.name, s.name)
    bad = {k: v for k, v in names.items() if v not in DELPHES_VARIABLES}
    if any(k in {s.name for s in e.free_symbols} for k in bad):
        raise TFormulaError(
            f"variables {sorted(bad)} are not Delphes variables; map them to "
            f"{sorted(DELPHES_VARIABLES)}"
        )
    text = _Printer(names).p(e)
    odd = re.search(r"[^A-Za-z0-9_:.+\-*/^()<>=!&|, ]", text)
    if odd:  # a guard: the printer only writes these characters (a card must stay a card)
        raise TFormulaError(f"unexpected character {odd.group()!r} in printed formula")
    check_card_formula(text)
    TFormulaExpression.from_card(text)
    return text
