"""Translate a Formula's sympy tree into a torch module.

Hand-written because sympy's ``lambdify`` has no torch backend and the packages that add
one are unmaintained; the tree walk is short and lets float constants become parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING, Any

import sympy as sp
import torch

from ariasim.errors import ConfigError

if TYPE_CHECKING:
    from ariasim.surrogates.formula import Formula

__all__ = ["FormulaModule"]

_Node = Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor]

_UNARY: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sp.exp: torch.exp,
    sp.log: torch.log,
    sp.sin: torch.sin,
    sp.cos: torch.cos,
    sp.tan: torch.tan,
    sp.asin: torch.asin,
    sp.acos: torch.acos,
    sp.atan: torch.atan,
    sp.sinh: torch.sinh,
    sp.cosh: torch.cosh,
    sp.tanh: torch.tanh,
    sp.Abs: torch.abs,
    sp.erf: torch.special.erf,
    sp.erfc: torch.special.erfc,
    sp.loggamma: torch.lgamma,
    sp.gamma: lambda x: (
        torch.exp(torch.lgamma(x))
        * torch.where((x < 0) & (torch.floor(x) % 2 == 1), -1.0, 1.0).to(x)
    ),
}


class FormulaModule(torch.nn.Module):
    """``forward(x)`` with ``x`` of shape ``(n, d)`` (columns = the formula's inputs).

    Made by :meth:`Formula.torch <ariasim.surrogates.formula.Formula.torch>`; with
    ``trainable=True`` the float constants are parameters (``constants`` reads them back).

    Example:
        >>> import torch
        >>> from ariasim.surrogates import Formula
        >>> m = Formula("2.0 * x + 0.5", ["x"]).torch(trainable=True)
        >>> m(torch.tensor([[1.0], [3.0]], dtype=torch.float64)).tolist()
        [2.5, 6.5]
        >>> sorted(m.constants.tolist())
        [0.5, 2.0]
    """

    def __init__(
        self,
        formula: Formula,
        *,
        trainable: bool = False,
        dtype: Any = None,
        device: Any = None,
        precondition: bool = False,
    ):
        super().__init__()
        self.names = formula.names
        dtype = dtype or torch.float64
        from ariasim.surrogates.formula import float_atoms

        atoms = float_atoms(formula.expression)
        values = torch.tensor([float(a) for a in atoms], dtype=dtype, device=device)
        # With precondition, the trainable parameters are the constants divided by their
        # starting magnitude, so that constants of very different sizes (1e-5 next to 1)
        # move at comparable rates under gradient-based optimisers.
        scale = torch.where(values.abs() > 0, values.abs(), torch.ones_like(values))
        self.register_buffer("scale", scale if precondition else torch.ones_like(values))
        raw = values / self.scale
        if trainable:
            self.raw = torch.nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

        index = {a: i for i, a in enumerate(atoms)}
        sym_index = {s: j for j, s in enumerate(formula.symbols)}
        self._fn = _compile(formula.expression, sym_index, index)

    @property
    def constants(self) -> torch.Tensor:
        """The formula's float constants (a view of the trainable parameters)."""
        return self.raw * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 1 and len(self.names) == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise ValueError(
                f"expected a tensor of shape (n, {len(self.names)}), got {tuple(x.shape)}"
            )
        cols = list(x.unbind(dim=1))
        out = self._fn(cols, list(self.constants.unbind(0)) if self.constants.numel() else [])
        return torch.broadcast_to(
            torch.as_tensor(out, dtype=x.dtype, device=x.device), (x.shape[0],)
        )


def _compile(
    expr: sp.Expr, sym_index: dict[sp.Symbol, int], const_index: dict[sp.Float, int]
) -> _Node:
    if isinstance(expr, sp.Symbol):
        j = sym_index[expr]
        return lambda cols, c: cols[j]
    if isinstance(expr, sp.Float):
        i = const_index[expr]
        return lambda cols, c: c[i]
    if expr.is_number:
        value = float(expr)
        return lambda cols, c: torch.tensor(value, dtype=torch.float64)
    args = [_compile(a, sym_index, const_index) for a in expr.args]
    if isinstance(expr, sp.Add):
        return lambda cols, c: reduce(torch.add, (a(cols, c) for a in args))
    if isinstance(expr, sp.Mul):
        return lambda cols, c: reduce(torch.mul, (a(cols, c) for a in args))
    if isinstance(expr, sp.Pow):
        base, ex = args
        if expr.exp.is_Integer:
            k = int(expr.exp)
            return lambda cols, c: torch.pow(base(cols, c), k)
        return lambda cols, c: torch.pow(base(cols, c), ex(cols, c))
    if isinstance(expr, (sp.Min, sp.Max)):
        op = torch.minimum if isinstance(expr, sp.Min) else torch.maximum
        return lambda cols, c: reduce(
            lambda a, b: op(*torch.broadcast_tensors(a, b)), (a(cols, c) for a in args)
        )
    if isinstance(expr, sp.Heaviside):
        (a, *_) = args
        return lambda cols, c: torch.heaviside(a(cols, c), torch.tensor(0.5, dtype=torch.float64))
    if isinstance(expr, (sp.lowergamma, sp.uppergamma)):
        k, z = args
        reg = torch.special.gammainc if isinstance(expr, sp.lowergamma) else torch.special.gammaincc
        return lambda cols, c: (
            reg(*torch.broadcast_tensors(k(cols, c), z(cols, c)))
            * torch.exp(torch.lgamma(k(cols, c)))
        )
    if isinstance(expr, sp.atan2):
        y, x = args
        return lambda cols, c: torch.atan2(y(cols, c), x(cols, c))
    fn = _UNARY.get(type(expr))
    if fn is not None and len(args) == 1:
        (a,) = args
        return lambda cols, c: fn(a(cols, c))
    raise ConfigError(
        f"no torch translation for {type(expr).__name__} in {expr}", parameter="expression"
    )
