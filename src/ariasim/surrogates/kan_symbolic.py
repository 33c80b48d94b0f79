"""Symbolic extraction from a trained KAN: snap edges to functions, compose, re-fit.

For every active edge ``phi`` of a trained network:

1. sample it at 201 quantiles of its input over the training data (so the fit is
   weighted like the data);
2. for every library function ``f`` fit ``c f(a x + b) + d``: a grid search over
   ``(a, b)`` (in units where the edge's input range is [-1, 1]; redundant parameters are
   fixed, e.g. ``a = 1`` for powers, ``b = 0`` for exp) with ``c, d`` by linear least
   squares, two zoom rounds and a short non-linear least-squares polish; the goodness is
   the R^2 of the fit on the samples;
3. choose, among the functions with ``R^2 >= r2_threshold``, the one minimising
   ``complexity + log10(max(1 - R^2, 1e-4))``: a more complex function must cut the
   unexplained variance tenfold per unit of complexity, and fits better than
   ``R^2 = 0.9999`` count as equally good (beyond that, the spline's own error dominates);
   ties go to the simpler function, then to the higher R^2. Functions that diverge at a
   zero of their argument (1/x, 1/x^2, log) are rejected when that zero lies within twice
   the sampled half-range around its centre.
   The constant ``"0"`` is accepted when the edge carries less than ``1 - r2_threshold``
   of its node's variance. An edge no function fits stays *numeric*: it is replaced by a
   cubic polynomial on its range, reported with ``numeric=True`` and a warning.

The edges are then composed node by node into one sympy expression per output in the
original (unstandardised) inputs; sympy's automatic canonicalisation merges the affine
constants (no ``sympy.simplify``, which can take seconds on such expressions). Finally all
float constants are re-fitted on (a deterministic subsample of at most ``_REFIT_ROWS``
rows of) the data (weighted least squares, trust-region reflective, for the mean; the
likelihood by L-BFGS for classifier logits), with capped iterations (the start is the
network's own fit) and all derivatives compiled into one function with common
subexpressions eliminated. sigma is re-fitted to the *network's* sigma (relative least
squares on the same rows), not to the data's likelihood: it only undoes the snapping
error. Re-fitting its 100+ constants on the likelihood had no early stopping and chased
the heavy tails of detector responses (the held-out chi2 of the resolution of a learned
photon response fell from about 76 to about 50 over 23-25 bins when the likelihood re-fit
was dropped); the network's sigma is regularised by its validation-based early stopping.

Speed: the affine grid search is vectorised over (a, b) for each function; functions
are tried simplest first and skipped when even a perfect fit could not beat the current
best score; the non-linear polish runs only for fits already near the threshold.

References:
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024), section 2.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sympy as sp
import torch

from ariasim.errors import ConfigError
from ariasim.surrogates.formula import (
    Formula,
    Variable,
    constants_program,
    refit_constants,
)

if TYPE_CHECKING:
    from ariasim.surrogates.kan import BaseKAN

__all__ = ["LIBRARY", "EdgeFit", "extract", "fit_edge"]


@dataclass(frozen=True)
class _Fn:
    numpy: Callable[[np.ndarray], np.ndarray]
    sympy: Callable[[sp.Expr], sp.Expr]
    complexity: int
    a_mode: str  # "free" | "one" | "sign"
    b_mode: str  # "free" | "zero"


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


#: The candidate edge functions: name -> (numpy, sympy, complexity, parametrisation).
LIBRARY: dict[str, _Fn] = {
    "x": _Fn(lambda x: x, lambda e: e, 1, "one", "zero"),
    "x^2": _Fn(np.square, lambda e: e**2, 2, "one", "free"),
    "x^3": _Fn(lambda x: x**3, lambda e: e**3, 3, "one", "free"),
    "x^4": _Fn(lambda x: x**4, lambda e: e**4, 4, "one", "free"),
    "1/x": _Fn(lambda x: 1.0 / x, lambda e: 1 / e, 2, "one", "free"),
    "1/x^2": _Fn(lambda x: 1.0 / x**2, lambda e: e**-2, 3, "one", "free"),
    "sqrt": _Fn(np.sqrt, sp.sqrt, 2, "sign", "free"),
    "exp": _Fn(np.exp, sp.exp, 2, "free", "zero"),
    "log": _Fn(np.log, sp.log, 2, "sign", "free"),
    "sin": _Fn(np.sin, sp.sin, 3, "free", "free"),
    "tanh": _Fn(np.tanh, sp.tanh, 3, "free", "free"),
    "sigmoid": _Fn(_np_sigmoid, lambda e: 1 / (1 + sp.exp(-e)), 3, "free", "free"),
    "abs": _Fn(np.abs, sp.Abs, 2, "one", "free"),
    "gaussian": _Fn(lambda x: np.exp(-(x**2)), lambda e: sp.exp(-(e**2)), 3, "free", "free"),
    "0": _Fn(lambda x: 0.0 * x, lambda e: sp.Integer(0), 0, "one", "zero"),
}

_R2_FLOOR = 1e-4
#: Library functions that are real only for a positive argument.
_REAL_DOMAIN = ("log", "sqrt")
#: Functions that diverge where their argument vanishes, and the margin (in units of the
#: half-range of the edge's samples) by which the zero must stay outside the samples:
#: hidden-node values of input combinations absent from the data (a card is evaluated on
#: the whole (pT, |eta|) rectangle) can lie beyond the sampled range.
_SINGULAR = ("1/x", "1/x^2", "log")
_SINGULAR_MARGIN = 1.0
#: Polish a grid fit only if its unexplained variance is below this many times the
#: threshold's allowance ``1 - r2_threshold``.
_POLISH_FACTOR = 10.0
#: At most this many rows (a deterministic subsample) for the constant re-fit: the fit
#: has tens of constants, and a few thousand points determine them to far below the
#: statistical error of the data, while the cost of each Gauss-Newton step grows with n.
_REFIT_ROWS = 5000
#: Function-evaluation / iteration caps of the re-fits (the start is already the
#: network's fit: the re-fit corrects the snapping, it does not search).
_REFIT_NFEV = 100
_A_GRID = np.concatenate([-np.logspace(-1, 1.3, 24)[::-1], np.logspace(-1, 1.3, 24)])
_B_GRID = np.linspace(-6.0, 6.0, 49)


@dataclass
class EdgeFit:
    """The symbolic fit of one edge: ``c f(a x + b) + d`` or a cubic polynomial.

    Arguments:
        function: Library name, or ``"cubic"`` for a numeric edge.
        r2: R^2 of the fit on the edge's samples.
        a, b, c, d: The affine constants (in the edge's own input units).
        numeric: True when no library function reached the threshold.
        poly: Cubic coefficients (highest power first) of a numeric edge.
        layer, i, j: Position (layer, input node, output node).

    Example:
        >>> import numpy as np
        >>> x = np.linspace(-1, 1, 101)
        >>> fit = fit_edge(x, 0.5 * np.sin(2 * x) + 1.0)
        >>> fit.function, round(fit.r2, 6)
        ('sin', 1.0)
    """

    function: str
    r2: float
    a: float = 1.0
    b: float = 0.0
    c: float = 1.0
    d: float = 0.0
    numeric: bool = False
    poly: list[float] = field(default_factory=list)
    layer: int = 0
    i: int = 0
    j: int = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the fit."""
        x = np.asarray(x, dtype=float)
        if self.numeric:
            return np.polyval(self.poly, x)
        with np.errstate(all="ignore"):
            return self.c * LIBRARY[self.function].numpy(self.a * x + self.b) + self.d

    def sympy(self, e: sp.Expr) -> sp.Expr:
        """The fit applied to the sympy expression ``e``."""
        if self.numeric:
            return sum((sp.Float(p) * e**k for k, p in enumerate(self.poly[::-1])), sp.Integer(0))
        if self.function == "0":
            return sp.Float(self.d)
        if self.function == "x":
            return sp.Float(self.c * self.a) * e + sp.Float(self.c * self.b + self.d)
        fn = LIBRARY[self.function]
        inner = e if self.a == 1.0 else sp.Float(self.a) * e
        if self.b != 0.0:
            inner = inner + sp.Float(self.b)
        if self.function in _REAL_DOMAIN:
            # the argument is positive on the fitted range, but sympy cannot know that: with
            # |argument| the expression stays real everywhere (no complex log/sqrt that
            # sympy would rewrite with arg() and re/im when composing or taking Abs)
            inner = sp.Abs(inner)
        return sp.Float(self.c) * fn.sympy(inner) + sp.Float(self.d)


def _r2_rows(F: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R^2 of the best affine map of each row of ``F`` onto ``v`` (squared correlation)."""
    with np.errstate(all="ignore"):
        Fc = F - F.mean(-1, keepdims=True)
        vc = v - v.mean()
        cov = (Fc * vc).sum(-1)
        r2 = cov**2 / ((Fc**2).sum(-1) * (vc**2).sum())
    bad = ~np.isfinite(F).all(-1) | ~np.isfinite(r2) | ((Fc**2).sum(-1) <= 1e-24)
    return np.where(bad, -np.inf, r2)


def _fit_one(
    fn: _Fn, u: np.ndarray, v: np.ndarray, polish_below: float = 1.0
) -> tuple[float, float, float, float, float]:
    """Best ``(r2, a, b, c, d)`` of ``c f(a u + b) + d`` to ``v`` (``u`` in [-1, 1]).

    The non-linear polish runs only when the grid's unexplained variance ``1 - R^2`` is
    below ``polish_below`` (a polish refines a fit, it does not rescue a wrong function).
    """
    a_grid = {"free": _A_GRID, "one": np.array([1.0]), "sign": np.array([-1.0, 1.0])}[fn.a_mode]
    b_grid = _B_GRID if fn.b_mode == "free" else np.array([0.0])
    best = (-np.inf, 1.0, 0.0)
    for _round in range(3):
        with np.errstate(all="ignore"):
            F = fn.numpy(a_grid[:, None, None] * u + b_grid[None, :, None])
        r2 = _r2_rows(F, v)
        k = np.unravel_index(int(np.argmax(r2)), r2.shape)
        if r2[k] > best[0]:
            best = (float(r2[k]), float(a_grid[k[0]]), float(b_grid[k[1]]))
        _, a0, b0 = best
        if fn.a_mode == "free":
            a_grid = a0 * np.linspace(0.8, 1.25, 15)
        if fn.b_mode == "free":
            step = (b_grid[1] - b_grid[0]) if b_grid.size > 1 else 0.25
            b_grid = b0 + np.linspace(-step, step, 15)
    r2, a, b = best
    if not np.isfinite(r2):
        return -np.inf, 1.0, 0.0, 0.0, 0.0
    with np.errstate(all="ignore"):
        F = fn.numpy(a * u + b)
    A = np.column_stack([F, np.ones_like(F)])
    c, d = np.linalg.lstsq(A, v, rcond=None)[0]
    if 1.0 - r2 > polish_below:
        return r2, a, b, float(c), float(d)
    # short polish of all four constants
    from scipy.optimize import least_squares

    free = [fn.a_mode == "free", fn.b_mode == "free"]

    def resid(p: np.ndarray) -> np.ndarray:
        aa = p[0] if free[0] else a
        bb = p[1] if free[1] else b
        with np.errstate(all="ignore"):
            r = p[2] * fn.numpy(aa * u + bb) + p[3] - v
        return np.nan_to_num(r, nan=1e6, posinf=1e6, neginf=-1e6)

    p0 = np.array([a, b, c, d])
    try:
        res = least_squares(resid, p0, max_nfev=60, method="lm" if u.size > 4 else "trf")
        if np.sum(res.fun**2) < np.sum(resid(p0) ** 2):
            p0 = res.x
    except (ValueError, np.linalg.LinAlgError):
        pass
    a, b, c, d = (
        float(p0[0]) if free[0] else a,
        float(p0[1]) if free[1] else b,
        float(p0[2]),
        float(p0[3]),
    )
    sst = float(np.sum((v - v.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid(np.array([a, b, c, d])) ** 2)) / sst
    return r2, a, b, c, d


def fit_edge(
    x: np.ndarray,
    v: np.ndarray,
    *,
    library: Sequence[str] | None = None,
    r2_threshold: float = 0.99,
    node_variance: float | None = None,
) -> EdgeFit:
    """Snap one edge function, sampled as ``v = phi(x)``, to the best library function.

    Arguments:
        x: Sample points of the edge's input (ideally quantiles of its data).
        v: Edge values there.
        library: Function names to try (default: all of :data:`LIBRARY`).
        r2_threshold: Minimum R^2 for a library function to be accepted.
        node_variance: Variance of the node the edge feeds (for the ``"0"`` candidate).

    Returns:
        The :class:`EdgeFit` (numeric cubic when nothing reaches the threshold).
    """
    names = list(LIBRARY) if library is None else list(library)
    unknown = [n for n in names if n not in LIBRARY]
    if unknown:
        raise ConfigError(
            f"unknown function(s) {unknown}; known: {list(LIBRARY)}", parameter="library"
        )
    x = np.asarray(x, dtype=float)
    v = np.asarray(v, dtype=float)
    var_v = float(np.var(v))
    xc, xh = 0.5 * (x.max() + x.min()), 0.5 * (x.max() - x.min())
    if var_v <= 1e-20 or xh <= 0:
        return EdgeFit("0", 1.0, c=0.0, d=float(np.mean(v)))
    best: tuple[float, float, float, EdgeFit] | None = None  # score, complexity, -r2, fit
    u = (x - xc) / xh
    # simplest first, so that a function that cannot win even with a perfect fit (score
    # >= complexity + log10(_R2_FLOOR)) is skipped without being fitted
    for name in sorted(names, key=lambda nm: LIBRARY[nm].complexity):
        fn = LIBRARY[name]
        if best is not None and fn.complexity + np.log10(_R2_FLOOR) > best[0]:
            continue
        if name == "0":
            ratio = var_v / node_variance if node_variance else np.inf
            if 1.0 - ratio >= r2_threshold:
                fit = EdgeFit("0", 1.0 - ratio, c=0.0, d=float(np.mean(v)))
                score = float(np.log10(max(ratio, _R2_FLOOR)))
                if best is None or (score, 0, -fit.r2) < best[:3]:
                    best = (score, 0, -fit.r2, fit)
            continue
        r2, a, b, c, d = _fit_one(fn, u, v, polish_below=_POLISH_FACTOR * (1.0 - r2_threshold))
        if not r2 >= r2_threshold:
            continue
        if name in _SINGULAR and a != 0.0 and abs(b / a) <= 1.0 + _SINGULAR_MARGIN:
            # the singularity (argument 0) lies within the sampled range or just beyond:
            # the composed formula would blow up on inputs near the data
            continue
        score = fn.complexity + float(np.log10(max(1.0 - r2, _R2_FLOOR)))
        # back to the edge's own input units: a u + b = (a / xh) x + (b - a xc / xh)
        fit = EdgeFit(name, r2, a=a / xh, b=b - a * xc / xh, c=c, d=d)
        if fn.a_mode != "free":  # keep a exactly +-1: rescale through c where possible
            fit = _normalise(fit, name)
        if best is None or (score, fn.complexity, -r2) < best[:3]:
            best = (score, fn.complexity, -r2, fit)
    if best is not None:
        return best[3]
    poly = np.polyfit(x, v, 3)
    r2 = 1.0 - float(np.sum((np.polyval(poly, x) - v) ** 2)) / float(np.sum((v - v.mean()) ** 2))
    return EdgeFit(
        "cubic",
        r2,
        numeric=True,
        poly=[float(p) for p in poly],
        a=np.nan,
        b=np.nan,
        c=np.nan,
        d=np.nan,
    )


def _normalise(fit: EdgeFit, name: str) -> EdgeFit:
    """Move the scale ``a`` of ``c f(a x + b)`` into ``c`` for homogeneous functions."""
    a, b, c = fit.a, fit.b, fit.c
    power = {"x": 1, "x^2": 2, "x^3": 3, "x^4": 4, "1/x": -1, "1/x^2": -2, "abs": 1}.get(name)
    if power is not None:
        # f(a x + b) = a^p f(x + b / a) (|a| for abs)
        scale = abs(a) if name == "abs" else a**power
        return EdgeFit(name, fit.r2, a=1.0, b=b / a, c=c * scale, d=fit.d)
    if name in ("sqrt", "log"):
        s = float(np.sign(a))
        if name == "sqrt":  # sqrt(a x + b) = sqrt|a| sqrt(s x + b/|a|)
            return EdgeFit(name, fit.r2, a=s, b=b / abs(a), c=c * np.sqrt(abs(a)), d=fit.d)
        return EdgeFit(name, fit.r2, a=s, b=b / abs(a), c=c, d=fit.d + c * np.log(abs(a)))
    return fit


# ---------------------------------------------------------------------- composition
def _edge_samples(model: BaseKAN) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer: quantile points (q, in), edge values (q, out, in), node variances (out,)."""
    net = model.network_
    dev = next(net.parameters()).device
    levels = np.linspace(0.0, 1.0, 201)
    out = []
    with torch.no_grad():
        for layer, H in zip(net.layers, model._layer_inputs_, strict=True):
            Q = np.quantile(H, levels, axis=0)
            phi = layer.edge_values(torch.as_tensor(Q, dtype=torch.float32, device=dev))
            node = layer(torch.as_tensor(H, dtype=torch.float32, device=dev))
            out.append((Q, phi.double().cpu().numpy(), node.double().cpu().numpy().var(0)))
    return out


def compose(
    model: BaseKAN, library: Sequence[str] | None, r2_threshold: float
) -> tuple[list[sp.Expr], list[sp.Symbol], list[EdgeFit]]:
    """Fit every active edge and compose the network's outputs as sympy expressions of the
    original inputs (network scale, before the output transformation)."""
    net = model.network_
    symbols = [sp.Symbol(n, real=True) for n in model.variable_names_]
    nodes: list[sp.Expr] = [
        (s - sp.Float(m)) / sp.Float(sc) if (m != 0.0 or sc != 1.0) else s
        for s, m, sc in zip(symbols, model.x_mean_, model.x_scale_, strict=True)
    ]
    fits: list[EdgeFit] = []
    for li, (layer, (Q, phi, node_var)) in enumerate(
        zip(net.layers, _edge_samples(model), strict=True)
    ):
        mask = layer.mask.cpu().numpy()
        bias = layer.bias.detach().cpu().double().numpy()
        new_nodes: list[sp.Expr] = []
        for j in range(layer.out_features):
            terms: list[sp.Expr] = [sp.Float(float(bias[j]))]
            for i in range(layer.in_features):
                if mask[j, i] == 0:
                    continue
                fit = fit_edge(
                    Q[:, i],
                    phi[:, j, i],
                    library=library,
                    r2_threshold=r2_threshold,
                    node_variance=float(node_var[j]),
                )
                fit.layer, fit.i, fit.j = li, i, j
                fits.append(fit)
                terms.append(fit.sympy(nodes[i]))
            new_nodes.append(sp.Add(*terms))
        nodes = new_nodes
    return nodes, symbols, fits


def _with_constants(formula: Formula, c: np.ndarray) -> Formula:
    try:
        return formula.with_constants(c)
    except ConfigError:  # e.g. a constant fitted to 0 in a denominator
        return formula


def _refit_ls(formula: Formula, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Formula:
    """Weighted least-squares re-fit of the float constants (trust-region reflective, with
    the symbolic Jacobian, at most ``_REFIT_NFEV`` evaluations); the input formula when
    the fit does not lower the loss.

    Not MINPACK's Levenberg-Marquardt (``method="lm"``): with scipy 1.17 it gave different
    constants for identical calls (:func:`~ariasim.surrogates.formula.refit_constants`),
    so the formulas changed from run to run; "trf" with one BLAS thread is reproducible,
    reached the same loss (within 0.5 %) and was as fast on the KAN re-fits tried."""
    return refit_constants(
        formula, X, y, sample_weight=w, max_nfev=_REFIT_NFEV, method="trf", x_scale="jac", cse=True
    )


def _refit_nll(
    formula: Formula, X: np.ndarray, dloss: Callable[[np.ndarray], tuple[float, np.ndarray]]
) -> Formula:
    """Re-fit a formula's float constants by minimising ``dloss(f(X))`` (value and
    derivative with respect to the formula values) with L-BFGS-B and symbolic gradients."""
    from scipy.optimize import minimize

    comp = constants_program(formula, X, cse=True)
    if comp is None:
        return formula
    c0, f_of, jac = comp

    def fun(c: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            value, g = dloss(f_of(c))
            if not np.isfinite(value):
                return 1e300, np.zeros_like(c)
            grad = np.nan_to_num(g) @ np.nan_to_num(jac(c))
        return float(value), np.nan_to_num(grad)

    start = fun(c0)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(fun, c0, jac=True, method="L-BFGS-B", options={"maxiter": 2 * _REFIT_NFEV})
    if not np.isfinite(res.fun) or res.fun > start:
        return formula
    return _with_constants(formula, res.x)


def _logistic_loss(
    y: np.ndarray, w: np.ndarray
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    def loss(g: np.ndarray) -> tuple[float, np.ndarray]:
        p = 0.5 * (1.0 + np.tanh(0.5 * g))
        return float(np.sum(w * (np.logaddexp(0.0, g) - y * g))), w * (p - y)

    return loss


def extract(
    model: BaseKAN,
    *,
    library: Sequence[str] | None = None,
    r2_threshold: float = 0.99,
    refit: bool = True,
    data: tuple[Any, Any, Any] | None = None,
) -> dict[str, Formula]:
    """Symbolic extraction for a fitted :class:`~ariasim.surrogates.kan.KANRegressor` or
    :class:`~ariasim.surrogates.kan.KANClassifier` (see the module docstring).

    Sets ``model.symbolic_report_`` (one row per edge: ``layer, i, j, function, r2, a, b,
    c, d, numeric``; ``i`` is the input node, ``j`` the output node of the edge).

    Arguments:
        model: The fitted estimator.
        library: Candidate function names (default: all of :data:`LIBRARY`).
        r2_threshold: Minimum R^2 of an accepted library fit.
        refit: Re-fit the constants: the mean (and logits) on the data, sigma on the
            network's sigma (module docstring).
        data: ``(X, y, sample_weight)`` for the re-fit (default: the stored training data;
            ``y`` are the labels as 0/1 for a classifier).

    Returns:
        Dictionary of Formulas, see the estimators' ``symbolic`` methods.
    """
    if not 0.0 < r2_threshold <= 1.0:
        raise ConfigError("must be in (0, 1]", parameter="r2_threshold")
    outputs, symbols, fits = compose(model, library, r2_threshold)
    model.symbolic_report_ = pd.DataFrame(
        [
            {
                "layer": f.layer,
                "i": f.i,
                "j": f.j,
                "function": f.function,
                "r2": f.r2,
                "a": f.a,
                "b": f.b,
                "c": f.c,
                "d": f.d,
                "numeric": f.numeric,
            }
            for f in fits
        ],
        columns=["layer", "i", "j", "function", "r2", "a", "b", "c", "d", "numeric"],
    )
    model._edge_fits_ = {(f.layer, f.i, f.j): f for f in fits}
    numeric = [(f.layer, f.i, f.j) for f in fits if f.numeric]
    if numeric:
        warnings.warn(
            f"{len(numeric)} KAN edge(s) fit no library function at R^2 >= "
            f"{r2_threshold} and stay numeric (cubic polynomials): "
            f"{numeric}; see symbolic_report_",
            stacklevel=3,
        )
    if data is None:
        X, y, w = model._fit_data_
    else:
        X = model._check_X(data[0], fitting=False)
        y = np.asarray(data[1], dtype=float).reshape(-1)
        w = model._check_weights(data[2], X.shape[0])
    X_all = X
    if X.shape[0] > _REFIT_ROWS:
        idx = np.sort(np.random.default_rng(0).choice(X.shape[0], _REFIT_ROWS, replace=False))
        X, y, w = X[idx], y[idx], w[idx]
    units = model.variable_units or [""] * len(symbols)
    variables = [
        Variable(s.name, unit=str(u), low=float(X_all[:, k].min()), high=float(X_all[:, k].max()))
        for k, (s, u) in enumerate(zip(symbols, units, strict=True))
    ]
    meta = {
        "source": type(model).__name__,
        "n_edges": len(fits),
        "numeric_edges": [list(e) for e in numeric],
        "r2_threshold": r2_threshold,
    }
    target = getattr(model, "target_name", "y")
    target_unit = getattr(model, "target_unit", "")

    def formula(expr: sp.Expr, name: str, unit: str = "") -> Formula:
        return Formula(expr, variables, output=Variable(name, unit=unit), metadata=meta)

    loss = model._loss_name()
    if loss == "bce":
        logit = formula(outputs[0], f"logit_{target}")
        if refit:
            logit = _refit_nll(logit, X, _logistic_loss(y, w))
        prob = formula(1 / (1 + sp.exp(-logit.expression)), target)
        return {"probability": prob, "logit": logit}
    ym, ys = sp.Float(model.y_mean_), sp.Float(model.y_scale_)
    mu = formula(
        ys * outputs[0] + ym,
        f"mu_log_{target}" if loss == "lognormal" else target,
        "" if loss == "lognormal" else target_unit,
    )
    if loss == "mse":
        if refit:
            mu = _refit_ls(mu, X, y, w)
        return {"mean": mu}
    sigma = formula(
        ys * sp.exp(outputs[1]), f"sigma_{target}", "" if loss == "lognormal" else target_unit
    )
    z = np.log(y) if loss == "lognormal" else y
    if refit:
        s_net = np.clip(sigma(X), 1e-12, None)
        mu = _refit_ls(mu, X, z, w / s_net**2)
        _, s_target = model._mu_sigma(X)  # the network's sigma (unstandardised)
        s_target = np.clip(np.asarray(s_target, dtype=float), 1e-12, None)
        sigma = _refit_ls(sigma, X, s_target, w / s_target**2)
    if loss == "gaussian":
        return {"mean": mu, "sigma": sigma}
    mean = formula(sp.exp(mu.expression + sigma.expression**2 / 2), target, target_unit)
    return {"mean": mean, "sigma": sigma, "mu": mu}
