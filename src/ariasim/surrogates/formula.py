"""The :class:`Formula`: ariasim's one interchange object for interpretable results.

A Formula is a sympy expression with named inputs (units, valid ranges), a named output
and fit metadata (data provenance, score, complexity). Symbolic regression, KANs and the
constitutive networks all produce one; exports (Delphes cards, C, LaTeX) and reports all
consume one. It evaluates vectorised in NumPy by calling it, becomes a torch module with
:meth:`Formula.torch`, and round-trips through JSON whose loader parses the expression
with the whitelist parser of :mod:`ariasim.surrogates.parse` (no ``eval``, no
``sympify`` of text).

Example:
    >>> f = Formula("a * exp(-d / 30.0) / d^2", ["a", Variable("d", unit="m", low=1, high=200)])
    >>> bool(np.isclose(f(a=2.0, d=30.0), 2.0 * np.exp(-1.0) / 900.0, rtol=1e-14))
    True
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.escape import c_comment_text
from ariasim.surrogates.parse import FormulaSyntaxError, check_name, parse_expression
from ariasim.utils import read_json, to_jsonable, write_json

__all__ = [
    "Formula",
    "Variable",
    "constants_program",
    "float_atoms",
    "refit_constants",
    "single_threaded_blas",
]

_SCHEMA = "ariasim.formula/1"


@dataclass(frozen=True)
class Variable:
    """A named input or output of a formula.

    Arguments:
        name: Identifier used in the expression (letters, digits, ``_``).
        unit: Unit as text, e.g. ``"m"``, ``"ns"``, ``"GeV"`` (empty: dimensionless).
        low: Lower end of the range the formula was fitted on (None: unbounded).
        high: Upper end of that range.
        description: Free text.

    Example:
        >>> Variable("d", unit="m", low=1.0, high=200.0).unit
        'm'
        >>> Variable.coerce("pt").name
        'pt'
    """

    name: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name)
        for key in ("unit", "description"):
            if not isinstance(getattr(self, key), str):
                raise ConfigError(
                    f"{key} of {self.name!r} must be text, got {type(getattr(self, key)).__name__}",
                    parameter=f"{self.name}.{key}",
                )
        for key in ("low", "high"):
            v = getattr(self, key)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v)
            ):
                raise ConfigError(
                    f"{key} of {self.name!r} must be a number or null, got {v!r}",
                    parameter=f"{self.name}.{key}",
                )
        if self.low is not None and self.high is not None and not self.low <= self.high:
            raise ConfigError(
                f"range of {self.name!r} has low {self.low} > high {self.high}",
                parameter=f"{self.name}.low",
            )

    @classmethod
    def coerce(cls, v: Variable | str | Mapping[str, Any]) -> Variable:
        """Make a Variable from a name, a mapping of its fields, or a Variable."""
        if isinstance(v, Variable):
            return v
        if isinstance(v, str):
            return cls(v)
        if isinstance(v, Mapping):
            unknown = set(v) - {"name", "unit", "low", "high", "description"}
            if unknown:
                raise ConfigError(
                    f"unknown variable field(s) {sorted(unknown)}", parameter="variables"
                )
            return cls(**v)
        raise ConfigError(f"cannot make a variable from {v!r}", parameter="variables")


class _ExactPrinter(StrPrinter):
    """sympy's text printer, but floats printed with full (round-trip) precision."""

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))


def _to_text(expr: sp.Expr) -> str:
    return _ExactPrinter({"order": "none"}).doprint(expr)


class Formula:
    """An analytic model: expression, named inputs with units and ranges, metadata.

    Arguments:
        expression: A sympy expression in the variables' symbols, or formula text (parsed
            with the whitelist parser, ``^`` or ``**`` for powers).
        variables: The inputs, in the column order used when calling with an array.
            Names, :class:`Variable` objects or mappings of their fields.
        output: The output's name or :class:`Variable` (default ``"y"``).
        metadata: JSON-able fit metadata: data provenance, score, complexity, ...

    Example:
        >>> f = Formula("v0 * t + g * t^2 / 2", ["v0", "g", Variable("t", unit="s")],
        ...             output="x")
        >>> float(f(v0=1.0, g=-9.81, t=2.0))
        -17.62
        >>> f.names, f.derivative("t")(v0=1.0, g=-9.81, t=2.0).round(2).item()
        (['v0', 'g', 't'], -18.62)
    """

    def __init__(
        self,
        expression: sp.Expr | str,
        variables: Sequence[Variable | str | Mapping[str, Any]],
        *,
        output: Variable | str | Mapping[str, Any] = "y",
        metadata: Mapping[str, Any] | None = None,
    ):
        self.variables: tuple[Variable, ...] = tuple(Variable.coerce(v) for v in variables)
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate variable names in {names}", parameter="variables")
        self.output = Variable.coerce(output)
        self.symbols: tuple[sp.Symbol, ...] = tuple(sp.Symbol(n, real=True) for n in names)
        by_name = dict(zip(names, self.symbols, strict=True))
        if isinstance(expression, str):
            expr = parse_expression(expression, names, symbols=by_name)
        elif isinstance(expression, sp.Basic):
            # rename any same-named symbol (other assumptions) onto ours
            expr = expression.xreplace(
                {s: by_name[s.name] for s in expression.free_symbols if s.name in by_name}
            )
        else:
            raise ConfigError(
                f"expected a sympy expression or text, got {type(expression).__name__}",
                parameter="expression",
            )
        extra = sorted(s.name for s in expr.free_symbols if s.name not in by_name)
        if extra:
            raise ConfigError(
                f"expression uses undeclared variable(s) {extra}", parameter="variables"
            )
        if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise ConfigError(
                f"expression contains an infinity or NaN: {expr}", parameter="expression"
            )
        self.expression: sp.Expr = expr
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._numpy_fn: Callable[..., Any] | None = None

    # ------------------------------------------------------------------ description
    @property
    def names(self) -> list[str]:
        """Input names in column order."""
        return [v.name for v in self.variables]

    @property
    def complexity(self) -> int:
        """Number of nodes of the expression tree (symbols, numbers and operations)."""
        return sum(1 for _ in sp.preorder_traversal(self.expression))

    @property
    def constants(self) -> list[float]:
        """The floating-point constants of the expression, in a fixed order."""
        return [float(c) for c in float_atoms(self.expression)]

    def __str__(self) -> str:
        return _to_text(self.expression)

    def __repr__(self) -> str:
        return f"Formula({self.output.name} = {self}; inputs {self.names})"

    def latex(self) -> str:
        """The expression as LaTeX, ``output = expression``."""
        return f"{sp.latex(sp.Symbol(self.output.name))} = {sp.latex(self.expression)}"

    def _repr_latex_(self) -> str:  # Jupyter
        return f"${self.latex()}$"

    def sympy(self) -> sp.Expr:
        """The sympy expression."""
        return self.expression

    # ------------------------------------------------------------------ evaluation
    def _inputs(self, X: Any, kwargs: Mapping[str, Any]) -> list[np.ndarray]:
        if X is not None and kwargs:
            raise ConfigError(
                "give either an array/table or keyword inputs, not both", parameter="X"
            )
        if X is None:
            source: Mapping[str, Any] = kwargs
        elif hasattr(X, "columns") or isinstance(X, Mapping):
            source = X
        else:
            arr = np.asarray(X, dtype=float)
            if arr.ndim == 1 and len(self.variables) == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[1] != len(self.variables):
                raise InputError(
                    f"expected an array of shape (n, {len(self.variables)}) with "
                    f"columns {self.names}, got shape {arr.shape}"
                )
            return [arr[:, j] for j in range(arr.shape[1])]
        missing = [n for n in self.names if n not in source]
        if missing:
            raise InputError("input missing for the formula", column=", ".join(missing))
        return [np.asarray(source[n], dtype=float) for n in self.names]

    def __call__(self, X: Any = None, /, **kwargs: Any) -> np.ndarray:
        """Evaluate on an ``(n, d)`` array (columns in :attr:`names` order), a DataFrame or
        dict with the variables' names, or keyword arguments. Returns a float array."""
        cols = self._inputs(X, kwargs)
        if self._numpy_fn is None:
            self._numpy_fn = _lambdify(self.symbols, self.expression)
        with np.errstate(all="ignore"):
            out = self._numpy_fn(*cols)
        shape = np.broadcast_shapes(*(c.shape for c in cols)) if cols else ()
        return np.broadcast_to(np.asarray(out, dtype=float), shape).copy()

    def in_range(self, X: Any = None, /, **kwargs: Any) -> np.ndarray:
        """Boolean mask: True where every input lies inside its declared range."""
        cols = self._inputs(X, kwargs)
        ok = np.ones(np.broadcast_shapes(*(c.shape for c in cols)), dtype=bool)
        for v, c in zip(self.variables, cols, strict=True):
            if v.low is not None:
                ok &= c >= v.low
            if v.high is not None:
                ok &= c <= v.high
        return ok

    # ------------------------------------------------------------------ transformations
    def replace(self, expression: sp.Expr | str | None = None, **changes: Any) -> Formula:
        """A copy with a new expression and/or other fields (variables, output, metadata)."""
        return Formula(
            self.expression if expression is None else expression,
            changes.pop("variables", self.variables),
            output=changes.pop("output", self.output),
            metadata=changes.pop("metadata", self.metadata),
        )

    def simplify(self) -> Formula:
        """A copy with the expression simplified by sympy."""
        return self.replace(sp.simplify(self.expression))

    def derivative(self, name: str, *, output: Variable | str | None = None) -> Formula:
        """The symbolic partial derivative with respect to input ``name``."""
        if name not in self.names:
            raise ConfigError(f"no input named {name!r} (inputs: {self.names})", parameter="name")
        sym = self.symbols[self.names.index(name)]
        out = output or f"d{self.output.name}_d{name}"
        return self.replace(sp.diff(self.expression, sym), output=out)

    def with_constants(self, values: Sequence[float]) -> Formula:
        """A copy whose float constants (in :attr:`constants` order) are ``values``."""
        atoms = float_atoms(self.expression)
        if len(values) != len(atoms):
            raise ConfigError(
                f"expected {len(atoms)} constants, got {len(values)}", parameter="values"
            )
        mapping = {a: sp.Float(float(v)) for a, v in zip(atoms, values, strict=True)}
        return self.replace(self.expression.xreplace(mapping))

    # ------------------------------------------------------------------ code generation
    def to_c(self, function_name: str = "ariasim_formula") -> str:
        """C99 source of a function ``double f(double x1, ...)`` evaluating the formula.

        Names are identifiers (checked); units are free text from the model file and are
        escaped (:func:`ariasim.surrogates.escape.c_comment_text`) so that they cannot end
        the comment they are written into.

        Example:
            >>> f = Formula("2*x", [Variable("x", unit="m */ int evil; /*")])
            >>> "int evil" in f.to_c().split("*/", 1)[1]
            False
        """
        check_name(function_name, what="function")
        for v in (*self.variables, self.output):
            check_name(v.name)
        args = ", ".join(f"double {n}" for n in self.names)
        body = sp.ccode(self.expression, standard="c99")
        units = ", ".join(f"{v.name} [{c_comment_text(v.unit or '1')}]" for v in self.variables)
        return (
            f"#include <math.h>\n#ifndef M_PI\n#define M_PI 3.14159265358979323846\n#endif\n"
            f"#ifndef M_E\n#define M_E 2.71828182845904523536\n#endif\n\n"
            f"/* {self.output.name} [{c_comment_text(self.output.unit or '1')}] "
            f"of {units}; generated by ariasim */\n"
            f"double {function_name}({args}) {{\n    return {body};\n}}\n"
        )

    def torch(
        self,
        *,
        trainable: bool = False,
        dtype: Any = None,
        device: Any = None,
        precondition: bool = False,
    ) -> Any:
        """A ``torch.nn.Module`` evaluating the formula on a tensor of shape ``(n, d)``.

        Arguments:
            trainable: Make the float constants ``torch.nn.Parameter`` s (to refine them by
                gradient descent); otherwise they are buffers.
            dtype: Tensor dtype (default float64).
            device: Device ("cpu", "cuda", ...).
            precondition: Train the constants relative to their starting magnitude
                (better conditioned when they differ by orders of magnitude).
        """
        from ariasim.surrogates._torch import FormulaModule

        return FormulaModule(
            self, trainable=trainable, dtype=dtype, device=device, precondition=precondition
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "schema": _SCHEMA,
            "expression": str(self),
            "variables": [asdict(v) for v in self.variables],
            "output": asdict(self.output),
            "metadata": to_jsonable(self.metadata),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The formula as JSON text (expression as text, floats at full precision)."""
        return json.dumps(self.to_dict(), **{"indent": 2, **kwargs})

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: Any = None, field: str | None = None
    ) -> Formula:
        """Build from :meth:`to_dict` output; the expression goes through the whitelist
        parser (which bounds sizes, nesting, exponents and numbers:
        :mod:`ariasim.surrogates.parse`).

        Arguments:
            data: The mapping.
            source: The file it was read from, named in error messages.
            field: Where in that file the formula is (e.g.
                ``"objects.muon.efficiency[0].formula"``), named in error messages.

        Raises:
            InputError: ``file '<source>', field '<field>': <what is wrong>``.

        Example:
            >>> bad = {"schema": "ariasim.formula/1", "expression": "9^9^9", "variables": []}
            >>> Formula.from_dict(bad, source="m.json", field="yield")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ariasim.errors.InputError: file 'm.json', field 'yield': exponent too large ...
        """

        def fail(msg: str, key: str | None = None) -> InputError:
            where = ".".join(k for k in (field, key) if k)
            return InputError(msg, path=source, field=where or None)

        if not isinstance(data, Mapping) or data.get("schema") != _SCHEMA:
            return_type = type(data).__name__
            raise fail(
                f"not an ariasim formula (expected an object with schema {_SCHEMA!r}, "
                f"got {'a ' + return_type if not isinstance(data, Mapping) else 'one'})"
            )
        for required in ("expression", "variables"):
            if required not in data:
                raise fail(f"formula is missing the field {required!r}")
        if not isinstance(data["expression"], str):
            raise fail(
                f"expression must be text, got {type(data['expression']).__name__}",
                None if field else "expression",
            )
        if not isinstance(data["variables"], list):
            raise fail(
                f"variables must be a list, got {type(data['variables']).__name__}", "variables"
            )
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise fail(f"metadata must be an object, got {type(metadata).__name__}", "metadata")
        try:
            return cls(
                data["expression"],
                data["variables"],
                output=data.get("output", "y"),
                metadata=metadata,
            )
        except (ConfigError, TypeError) as exc:  # TypeError: a variable with a wrong field
            key: str | None = "expression" if isinstance(exc, FormulaSyntaxError) else None
            msg = str(exc)
            if key is None and isinstance(exc, ConfigError) and exc.parameter:
                key, msg = exc.parameter, exc.message
            raise fail(msg, None if field else key) from exc

    @classmethod
    def from_json(cls, text: str, *, source: Any = None, field: str | None = None) -> Formula:
        """Parse JSON text written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            msg = "JSON nested too deeply" if isinstance(exc, RecursionError) else exc
            raise InputError(f"invalid JSON: {msg}", path=source) from None
        return cls.from_dict(data, source=source, field=field)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the formula as JSON, atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Formula:
        """Read a formula JSON file written by :meth:`save` (errors name the file and
        the field)."""
        return cls.from_dict(read_json(path, what="formula file"), source=Path(path))

    def __getstate__(self) -> dict[str, Any]:
        # the compiled NumPy function is a cache that cannot be pickled; it is rebuilt
        state = dict(self.__dict__)
        state["_numpy_fn"] = None
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Formula):
            return NotImplemented
        return (
            self.variables == other.variables
            and self.output == other.output
            and sp.srepr(self.expression) == sp.srepr(other.expression)
        )

    def __hash__(self) -> int:
        return hash((self.variables, self.output, sp.srepr(self.expression)))


def float_atoms(expr: sp.Expr) -> list[sp.Float]:
    seen: dict[sp.Float, None] = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Float) and node not in seen:
            seen[node] = None
    return list(seen)


#: Stand-ins for the unregularized incomplete gamma functions in :func:`_lambdify`.
_LOWERGAMMA = sp.Function("_ariasim_lowergamma")
_UPPERGAMMA = sp.Function("_ariasim_uppergamma")


def _lambdify(args: Any, expr: Any, cse: bool = False) -> Callable[..., Any]:
    """``sympy.lambdify`` with the scipy and numpy modules, except that lowergamma and
    uppergamma are evaluated by functions of their own. SymPy's SciPy printer writes
    lowergamma(k, z) as ``gamma(k)*gammainc(k, z)`` without parentheses, so that a power
    of it, lowergamma(k, z)**2, becomes gamma(k)*gammainc(k, z)**2 (found in a warped
    delay density's CDF, whose Bernstein polynomial raises G to powers)."""
    from scipy import special

    def sub(e: Any) -> Any:
        return e.replace(sp.lowergamma, _LOWERGAMMA).replace(sp.uppergamma, _UPPERGAMMA)

    expr = [sub(e) for e in expr] if isinstance(expr, (list, tuple)) else sub(expr)
    funcs = {
        "_ariasim_lowergamma": lambda k, z: special.gamma(k) * special.gammainc(k, z),
        "_ariasim_uppergamma": lambda k, z: special.gamma(k) * special.gammaincc(k, z),
    }
    return sp.lambdify(args, expr, modules=[funcs, "scipy", "numpy"], cse=cse)


def constants_program(
    formula: Formula, X: Any, *, cse: bool = False
) -> (
    tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]] | None
):
    """``(c0, f(c), J(c))`` for re-fitting a formula's float constants on inputs ``X``:
    the current constants, the formula's values and their ``(n, n_constants)`` Jacobian
    with respect to the constants, each one lambdified function (one compile for all
    derivatives instead of one per constant; with ``cse`` common subexpressions are
    eliminated, faster for long formulas). ``None`` when the formula has no float
    constants."""
    atoms = float_atoms(formula.expression)
    if not atoms:
        return None
    params = sp.symbols(f"_c0:{len(atoms)}", real=True)
    template = formula.expression.xreplace(dict(zip(atoms, params, strict=True)))
    args = (*formula.symbols, *params)
    f_num = _lambdify(args, template, cse=cse)
    j_num = _lambdify(args, [sp.diff(template, q) for q in params], cse=cse)
    cols = formula._inputs(X, {})
    n = cols[0].shape[0] if cols else 0

    def f(c: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f_num(*cols, *c), dtype=float), (n,))

    def jac(c: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.column_stack(
                [np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in j_num(*cols, *c)]
            )

    return np.array([float(a) for a in atoms]), f, jac


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed code with one BLAS/LAPACK thread, for reproducible results.

    Multi-threaded BLAS reductions may depend on how the work is split, hence on the
    machine's number of cores; the small dense problems of constant re-fits gain nothing
    from threads anyway (on a loaded machine, 2 OpenBLAS threads made
    ``least_squares(method="trf")`` about 20 times slower). Every constant re-fit of
    ariasim runs inside this.

    Example:
        >>> with single_threaded_blas():
        ...     float(np.linalg.norm(np.ones(4)))
        2.0
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def refit_constants(
    formula: Formula,
    X: Any,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    loss: str = "linear",
    max_nfev: int | None = None,
    method: str = "trf",
    x_scale: Any = 1.0,
    cse: bool = False,
) -> Formula:
    """Re-fit a formula's float constants by (weighted) least squares in float64.

    Uses :func:`scipy.optimize.least_squares` with the symbolic Jacobian
    (:func:`constants_program`). The structure of the expression is kept; only its
    constants move. Returns the input formula unchanged when it has no constants or the
    fit does not lower the loss.

    Arguments:
        formula: The formula.
        X: Inputs, as for calling the formula.
        y: Targets, shape ``(n,)``.
        sample_weight: Non-negative per-sample weights.
        loss: ``least_squares`` loss (``"linear"``, ``"soft_l1"``, ``"huber"``, ...).
        max_nfev: Cap on function evaluations.
        method: ``least_squares`` method (``"trf"``, or ``"lm"`` for MINPACK's
            Levenberg-Marquardt with more rows than constants and the linear loss).
            ``"lm"`` is *not reproducible* with scipy 1.17: identical calls in one
            process gave different constants (already in the first iteration's step, with
            one BLAS thread too; likely uninitialised memory in scipy's C MINPACK), so
            ariasim's learners use ``"trf"``.
        x_scale: ``least_squares`` variable scaling (e.g. ``"jac"``).
        cse: Compile with common-subexpression elimination (:func:`constants_program`).
    """
    from scipy.optimize import least_squares

    prog = constants_program(formula, X, cse=cse)
    if prog is None:
        return formula
    c0, f, jac_f = prog
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    sw = np.sqrt(np.clip(w, 0.0, None))

    def resid(c: np.ndarray) -> np.ndarray:
        return np.nan_to_num((f(c) - y) * sw, nan=1e30, posinf=1e30, neginf=-1e30)

    def jac(c: np.ndarray) -> np.ndarray:
        return np.nan_to_num(jac_f(c) * sw[:, None], nan=0.0, posinf=0.0, neginf=0.0)

    start = float(np.sum(resid(c0) ** 2))
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(), single_threaded_blas():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = least_squares(
                resid, c0, jac=jac, loss=loss, max_nfev=max_nfev, method=method, x_scale=x_scale
            )
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return formula
    end = float(np.sum(resid(res.x) ** 2))
    if not math.isfinite(end) or end > start:
        return formula
    try:
        return formula.with_constants(res.x)
    except ConfigError:  # e.g. a constant fitted to 0 in a denominator
        return formula
