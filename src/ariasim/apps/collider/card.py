"""Learned formulas in the Delphes card's variables and semantics.

:func:`to_delphes` rewrites a formula in (log x, |eta|) into (pt or energy, eta);
:func:`response_formulas` turns a learned (mean, sigma) into the card's scale and
resolution; :func:`card_valid` checks a formula against the card's module semantics.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from ariasim.apps.collider.objects import ObjectSpec
from ariasim.surrogates.formula import Formula, Variable

__all__ = ["card_valid", "constant_formula", "response_formulas", "scaled_argument", "to_delphes"]


def to_delphes(
    f: Formula,
    xvar: str,
    low: float,
    high: float,
    output: str,
    unit: str,
    meta: Mapping[str, Any],
    eta_range: tuple[float, float] | None = None,
) -> Formula:
    """Rewrite a formula in (logx, abseta) into Delphes variables (xvar, eta).

    With ``eta_range`` (the formula's |eta| region), |eta| is clamped to it: Delphes
    evaluates every region's term everywhere and multiplies it by its 0/1 condition, so a
    formula that overflows when extrapolated to another region would turn the card's sum
    into 0 * inf = NaN there.
    """
    X, A = f.symbols
    v = sp.Symbol(xvar, real=True)
    eta = sp.Symbol("eta", real=True)
    a: sp.Expr = sp.Abs(eta)
    if eta_range is not None:
        lo, hi = eta_range
        a = sp.Min(a, sp.Float(hi))
        if lo > 0:
            a = sp.Max(a, sp.Float(lo))
    expr = f.expression.xreplace({X: sp.log(v), A: a})
    used = {s.name for s in expr.free_symbols}
    variables = [Variable(xvar, unit="GeV", low=low, high=high)] if xvar in used else []
    if "eta" in used:
        variables.append(Variable("eta"))
    return Formula(expr, variables, output=Variable(output, unit=unit), metadata=dict(meta))


def constant_formula(value: float, output: str, meta: Mapping[str, Any]) -> Formula:
    """A constant formula (no inputs)."""
    return Formula(repr(float(value)), [], output=output, metadata=dict(meta))


def scaled_argument(mean: Formula, X: np.ndarray) -> tuple[sp.Expr, dict[str, float]]:
    """The truth log x as a linear function of the card's argument.

    Delphes applies ``EnergyScale`` before the smearing module, so the card evaluates the
    resolution at the *scaled* pT or energy x' = x * scale(x), not at the truth x the
    formulas were learned in. Evaluating the learned sigma(x) at x' shifts it by
    log(scale) along log x (for calorimeter objects at low energy, where the scale is
    well below 1, this widened the resolution by several standard errors). The inverse
    map log x(log x', |eta|) is fitted by least squares on the training rows as
    ``a + b log x' + c |eta|``: a linear substitution keeps the resolution formula as
    short as the learned sigma (no copy of the scale formula inside it).

    Returns the expression of the truth log x in the symbols of ``mean`` and the
    coefficients.
    """
    Xs, A = mean.symbols
    with np.errstate(all="ignore"):
        m = np.asarray(mean(X), dtype=float)  # the card's scale: x' = x * m (tracks: pT)
        lxp = X[:, 0] + np.log(np.where(m > 0, m, np.nan))
    ok = np.isfinite(lxp)
    if ok.sum() < 10:
        return Xs, {"a": 0.0, "b": 1.0, "c": 0.0}
    Z = np.column_stack([np.ones(ok.sum()), lxp[ok], X[ok, 1]])
    a, b, c = (float(v) for v in np.linalg.lstsq(Z, X[ok, 0], rcond=None)[0])
    if not (0.5 < b < 2.0):  # not a near-identity map: leave the argument alone
        return Xs, {"a": 0.0, "b": 1.0, "c": 0.0}
    return (sp.Float(a) + sp.Float(b) * Xs + sp.Float(c) * A, {"a": a, "b": b, "c": c})


def response_formulas(
    forms: Mapping[str, Formula],
    spec: ObjectSpec,
    x_range: tuple[float, float],
    eta_range: tuple[float, float],
    meta: Mapping[str, Any],
    X: np.ndarray | None = None,
) -> tuple[Formula, Formula]:
    """(scale, resolution) in Delphes variables from the learned (mean, sigma).

    With ``X`` (the training rows' (log x, |eta|)), the resolution is rewritten in the
    scaled argument the card evaluates it at (:func:`scaled_argument`); for calorimeter
    objects the card's sigma(E') in GeV is then ``x * s(x)`` at the truth x (reco E =
    x * (m + s z)), with no division by the scale formula.
    """
    scale = to_delphes(forms["mean"], spec.x, *x_range, "scale", "", meta, eta_range)
    sig = forms["sigma"]
    Xs = forms["mean"].symbols[0]
    s = sig.expression.xreplace(dict(zip(sig.symbols, forms["mean"].symbols, strict=True)))
    if X is not None:
        xt, _ = scaled_argument(forms["mean"], X)
        s = s.xreplace({Xs: xt})
    else:
        xt = None
    if spec.kind == "track":
        rel = sig.replace(sp.sqrt(sp.exp(s**2) - 1), variables=forms["mean"].variables)
        res = to_delphes(rel, "pt", *x_range, "sigma_pt_over_pt", "", meta, eta_range)
    else:
        # |s| only where sympy cannot tell that s > 0: the learned sigma is usually
        # c * exp(P) (the network's log-sigma output), and sympy rewrites Abs(c * exp(P))
        # as c * exp(re(P)), expanding the nested powers of P into a polynomial whose
        # large, cancelling coefficients overflow in double precision (the card's
        # sigma was then NaN or ~40 % too narrow in the forward electron region)
        c, rest = s.as_coeff_Mul()
        s_abs = (
            abs(c) * rest if isinstance(rest, sp.exp) or rest.is_extended_positive else sp.Abs(s)
        )
        expr = (
            sp.exp(xt) * s_abs if xt is not None else sp.exp(Xs) * s_abs / forms["mean"].expression
        )
        rel = sig.replace(expr, variables=forms["mean"].variables)
        res = to_delphes(rel, "energy", *x_range, "sigma_e", "GeV", meta, eta_range)
    if xt is not None:
        # sympy distributes the substituted argument's constants differently once the
        # text is re-parsed: canonicalise through the text now, so a saved model's card
        # text round-trips exactly
        res = Formula.from_dict(res.to_dict())
    return scale, res


def card_valid(
    f: Formula,
    quantity: str,
    kind: str,
    x_range: tuple[float, float],
    eta_range: tuple[float, float],
) -> bool:
    """Whether ``f`` (Delphes variables) meets the card's module semantics on the whole
    rectangle the card evaluates it on (x clamped to ``x_range``, |eta| to the region):
    finite; efficiency in [0, 1]; scale and resolution > 0; track resolution < 1.
    A learner can fit the data and still break these where no data lie (a corner of
    the rectangle outside the kinematic reach: low E at large |eta|)."""
    # as fine as the card checker's grid (41 log-spaced x, |eta| every 0.0125 at most):
    # an overflow strip of exp(polynomial) between coarser grid points slipped through
    xs = np.geomspace(max(x_range[0], 1e-6), max(x_range[1], 1e-6), 41)
    etas = np.linspace(
        eta_range[0], eta_range[1], max(9, int(np.ceil((eta_range[1] - eta_range[0]) / 0.0125)) + 1)
    )
    X, H = np.meshgrid(xs, etas)
    x, h = X.ravel(), H.ravel()
    args = {"pt": x, "energy": x, "eta": h}
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(f({k: args[k] for k in f.names}), dtype=float), x.shape)
    if not np.isfinite(v).all():
        return False
    if quantity == "efficiency":
        return bool(((v >= 0) & (v <= 1)).all())
    if quantity == "resolution" and kind == "track":
        return bool(((v > 0) & (v < 1)).all())
    return bool((v > 0).all())
