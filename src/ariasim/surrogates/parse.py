"""A whitelist parser from formula text to sympy.

User-supplied formula strings (a JSON model file, a command-line option, a symbolic
regression library's output) are never given to ``eval``, ``exec`` or ``sympify``: those
run arbitrary code. This small recursive-descent parser accepts only numbers, the
variable names it is told about, a fixed table of functions and the constants ``pi`` and
``E``, combined with ``+ - * /``, powers (``^`` as in ROOT/Delphes/Operon, or ``**``) and
parentheses. Anything else is an error that says where in the text it is.

sympy evaluates exact numbers eagerly (``9^9^9`` is an integer of 370 million digits,
``gamma(100000000)`` a factorial), so the parser also bounds what text can make sympy
compute: the length of the text (:data:`MAX_LENGTH`) and its number of tokens
(:data:`MAX_TOKENS`), the nesting depth (:data:`MAX_DEPTH`), numeric exponents
(:data:`MAX_EXPONENT`; towers such as ``10^10^10`` fail on their inner result), the size
of every exact number it builds (:data:`MAX_BITS` bits, about the double range) and the
numeric arguments of the gamma functions (:data:`MAX_SPECIAL`). Every bound is checked
*before* sympy is asked to compute, so a hostile text is refused in milliseconds.

Two back-ends read the same grammar with the same bounds: :func:`parse_expression` builds a
sympy expression (what :class:`~ariasim.surrogates.formula.Formula` holds), and
:func:`parse_numeric` builds a NumPy evaluator directly, without importing sympy (for
reading a model file fast). The numeric back-end folds constants as sympy does (integers
and rationals exactly, with the same size bounds; floats in double precision), so hostile
text is refused by both; a few texts that sympy reads as complex constants (a negative
number to a fractional power) are refused by the numeric back-end only.

Grammar (``^`` binds tighter than unary minus, and is right-associative)::

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('+' | '-') unary | power
    power := atom (('^' | '**') unary)?
    atom  := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from ariasim.errors import ConfigError
from ariasim.surrogates.escape import quote_excerpt

if TYPE_CHECKING:
    import sympy as sp
else:
    sp = None  # sympy, imported on first use of the sympy back-end (see _sympy)

__all__ = [
    "ARITY",
    "CONSTANT_NAMES",
    "FUNCTIONS",
    "MAX_BITS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_SPECIAL",
    "MAX_TOKENS",
    "FormulaSyntaxError",
    "NumericExpression",
    "check_name",
    "check_number_size",
    "parse_expression",
    "parse_numeric",
]

#: Longest formula text accepted (characters).
MAX_LENGTH = 20_000
#: Most tokens (numbers, names, operators) in one formula.
MAX_TOKENS = 8_000
#: Deepest nesting of parentheses, calls, unary signs and powers.
MAX_DEPTH = 200
#: Largest magnitude of a numeric exponent (``x^1000`` is accepted, ``x^1001`` is not).
MAX_EXPONENT = 1000
#: Largest exact integer or rational (numerator and denominator), in bits (2^1024 ~ 1.8e308).
MAX_BITS = 1024
#: Largest magnitude of a numeric argument of gamma, loggamma, lowergamma, uppergamma.
MAX_SPECIAL = 200
_GAMMAS = frozenset({"gamma", "loggamma", "lowergamma", "uppergamma"})


class FormulaSyntaxError(ConfigError):
    """Formula text that the whitelist parser does not accept.

    Example:
        >>> parse_expression("__import__('os')", ["x"])
        Traceback (most recent call last):
        ...
        ariasim.surrogates.parse.FormulaSyntaxError: ...
    """


def _sympy() -> Any:
    """sympy, imported on first use: the numeric back-end (:func:`parse_numeric`) and
    the checks of names never import it."""
    global sp
    if sp is None:
        import sympy

        sp = sympy
    return sp


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


def _aq(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    # Operon's "analytic quotient" a / sqrt(1 + b^2)
    return a / sp.sqrt(1 + b**2)


#: Function names the parser accepts and their arity (both back-ends).
ARITY: dict[str, int] = {
    **dict.fromkeys(
        "sqrt cbrt exp log ln sin cos tan asin acos atan sinh cosh tanh abs Abs erf erfc "
        "gamma loggamma sigmoid square Heaviside".split(),
        1,
    ),
    **dict.fromkeys("atan2 lowergamma uppergamma pow aq min max Min Max".split(), 2),
}
#: The constants the parser accepts.
CONSTANT_NAMES = ("pi", "E")
_SYMPY_FUNCTIONS: dict[str, tuple[int, Callable[..., sp.Expr]]] = {}


def _sympy_functions() -> dict[str, tuple[int, Callable[..., sp.Expr]]]:
    """:data:`FUNCTIONS`, built (and sympy imported) on first use."""
    if not _SYMPY_FUNCTIONS:
        s = _sympy()
        _SYMPY_FUNCTIONS.update(
            {
                "sqrt": (1, s.sqrt),
                "cbrt": (1, s.cbrt),
                "exp": (1, s.exp),
                "log": (1, s.log),
                "ln": (1, s.log),
                "sin": (1, s.sin),
                "cos": (1, s.cos),
                "tan": (1, s.tan),
                "asin": (1, s.asin),
                "acos": (1, s.acos),
                "atan": (1, s.atan),
                "sinh": (1, s.sinh),
                "cosh": (1, s.cosh),
                "tanh": (1, s.tanh),
                "abs": (1, s.Abs),
                "Abs": (1, s.Abs),
                "erf": (1, s.erf),
                "erfc": (1, s.erfc),
                "gamma": (1, s.gamma),
                "loggamma": (1, s.loggamma),
                "sigmoid": (1, _sigmoid),
                "square": (1, lambda x: x**2),
                "Heaviside": (1, lambda x: s.Heaviside(x, s.Rational(1, 2))),
                "atan2": (2, s.atan2),
                "lowergamma": (2, s.lowergamma),
                "uppergamma": (2, s.uppergamma),
                "pow": (2, s.Pow),
                "aq": (2, _aq),
                "min": (2, s.Min),
                "max": (2, s.Max),
                "Min": (2, s.Min),
                "Max": (2, s.Max),
            }
        )
        assert set(_SYMPY_FUNCTIONS) == set(ARITY)
    return _SYMPY_FUNCTIONS


class _SympyFunctions(Mapping[str, tuple[int, Callable[..., Any]]]):
    """:data:`FUNCTIONS`: a mapping that imports sympy on first use."""

    def __getitem__(self, name: str) -> tuple[int, Callable[..., Any]]:
        return _sympy_functions()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(ARITY)

    def __len__(self) -> int:
        return len(ARITY)


#: Function names the parser accepts, with their arity and sympy constructor (sympy is
#: imported when a constructor is first looked up).
FUNCTIONS: Mapping[str, tuple[int, Callable[..., Any]]] = _SympyFunctions()


_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))"
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(name: str, *, what: str = "variable") -> str:
    """Check that ``name`` can be a variable of a formula; return it."""
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise ConfigError(
            f"{name!r} is not a valid {what} name (letters, digits, '_')", parameter=what
        )
    if name in ARITY or name in CONSTANT_NAMES:
        raise ConfigError(f"{name!r} is reserved (a function or constant name)", parameter=what)
    return name


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].lstrip()[:1]
            at = len(text) - len(text[pos:].lstrip())
            raise FormulaSyntaxError(
                f"unexpected character {bad!r} at position {at} in {quote_excerpt(text, at)}"
            )
        kind = m.lastgroup or "op"
        tokens.append(_Tok(kind, m.group(kind), m.start(kind)))
        if len(tokens) > MAX_TOKENS:
            raise FormulaSyntaxError(f"formula has more than {MAX_TOKENS} tokens")
        pos = m.end()
    tokens.append(_Tok("end", "", len(text)))
    return tokens


class Parser:
    """Whitelist recursive-descent parser of formula text into a sympy expression (no
    ``eval``, no ``sympify``); use it through :func:`parse_expression`.

    Arguments:
        text: Formula text (``^`` or ``**`` for powers).
        symbols: The allowed variable names and their sympy symbols.

    Example:
        >>> parse_expression("a * exp(-d / 30) / d^2", ["a", "d"])
        a*exp(-d/30)/d**2
    """

    def __init__(self, text: str, symbols: dict[str, sp.Symbol]):
        _sympy()
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.symbols = symbols
        self.depth = 0

    def error(self, msg: str) -> FormulaSyntaxError:
        tok = self.toks[self.i]
        return FormulaSyntaxError(
            f"{msg} at position {tok.pos} in {quote_excerpt(self.text, tok.pos)}"
        )

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            raise self.error(f"expected {text!r}, found {tok.text or 'end of text'!r}")
        self.i += 1
        return tok

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"formula nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> sp.Expr:
        expr = self.expr()
        if self.peek().kind != "end":
            raise self.error(f"unexpected {self.peek().text!r}")
        return expr

    def expr(self) -> sp.Expr:
        # the terms are summed in one sp.Add (pairwise sums cost quadratic time)
        terms = [self.term()]
        while self.peek().text in ("+", "-"):
            op = self.take().text
            right = self.term()
            terms.append(right if op == "+" else -right)
        return terms[0] if len(terms) == 1 else self.checked(sp.Add(*terms))

    def term(self) -> sp.Expr:
        factors = [self.unary()]
        while self.peek().text in ("*", "/"):
            op = self.take().text
            right = self.unary()
            factors.append(right if op == "*" else self.pow(right, sp.Integer(-1)))
        if len(factors) == 1:
            return factors[0]
        bits = sum(_bits(f.as_coeff_Mul()[0]) for f in factors)
        if bits > 4 * MAX_BITS:
            raise self.error(f"product of numbers too large (more than {MAX_BITS} bits)")
        return self.checked(sp.Mul(*factors))

    def unary(self) -> sp.Expr:
        self.enter()
        try:
            if self.peek().text in ("+", "-"):
                op = self.take().text
                operand = self.unary()
                return -operand if op == "-" else operand
            return self.power()
        finally:
            self.depth -= 1

    def power(self) -> sp.Expr:
        base = self.atom()
        if self.peek().text in ("^", "**"):
            self.take()
            return self.pow(base, self.unary())
        return base

    def pow(self, base: sp.Expr, exp: sp.Expr) -> sp.Expr:
        """``base^exp``, refused before sympy computes it when an exact result would be
        too large (sympy distributes integer powers over a numeric coefficient)."""
        if exp.is_Number:
            if not abs(float(exp)) <= MAX_EXPONENT:
                raise self.error(f"exponent too large ({_short(exp)}; at most {MAX_EXPONENT})")
            coeff = base if base.is_Number else base.as_coeff_Mul()[0]
            if (
                isinstance(coeff, sp.Rational)
                and isinstance(exp, sp.Rational)
                and _bits(coeff) * abs(float(exp)) > 2 * MAX_BITS
            ):
                raise self.error(f"number too large: {_short(base)}^{_short(exp)}")
        return self.checked(sp.Pow(base, exp))

    def checked(self, value: sp.Expr) -> sp.Expr:
        """``value``, after checking that its numeric coefficient is not too large."""
        coeff = value if value.is_Number else value.as_coeff_Mul()[0]
        try:
            check_number_size(coeff)
        except FormulaSyntaxError as exc:
            raise self.error(str(exc)) from None
        return value

    def atom(self) -> sp.Expr:
        tok = self.peek()
        if tok.kind == "num":
            if re.fullmatch(r"\d+", tok.text):
                if len(tok.text.lstrip("0")) > 309:
                    raise self.error("integer too large (more than 309 digits)")
                self.take()
                return self.integer(int(tok.text))
            value = float(tok.text)
            if not math.isfinite(value):
                raise self.error(f"number {_short(tok.text)} is out of the floating-point range")
            self.take()
            return self.real(value)
        if tok.kind == "name":
            self.take()
            if self.peek().text == "(":
                return self.call(tok)
            if tok.text in self.symbols:
                return self.variable(tok.text)
            if tok.text in CONSTANT_NAMES:
                return self.constant(tok.text)
            self.i -= 1
            known = ", ".join(sorted(self.symbols)) or "none"
            raise self.error(f"unknown name {tok.text!r} (variables: {known})")
        if tok.text == "(":
            self.take()
            self.enter()
            inner = self.expr()
            self.depth -= 1
            self.take(")")
            return inner
        raise self.error(f"unexpected {tok.text or 'end of text'!r}")

    # the leaves of the tree; the numeric back-end overrides only these
    def integer(self, value: int) -> sp.Expr:
        return self.checked(sp.Integer(value))

    def real(self, value: float) -> sp.Expr:
        return sp.Float(value)

    def variable(self, name: str) -> sp.Expr:
        return self.symbols[name]

    def constant(self, name: str) -> sp.Expr:
        return sp.pi if name == "pi" else sp.E

    def call(self, name_tok: _Tok) -> sp.Expr:
        if name_tok.text not in ARITY:
            self.i -= 1
            raise self.error(
                f"function {name_tok.text!r} is not allowed (allowed: {', '.join(sorted(ARITY))})"
            )
        arity, fn = _sympy_functions()[name_tok.text]
        self.take("(")
        self.enter()
        args = [self.expr()]
        while self.peek().text == ",":
            self.take()
            args.append(self.expr())
        self.depth -= 1
        self.take(")")
        if len(args) != arity:
            raise FormulaSyntaxError(
                f"function {name_tok.text!r} takes {arity} argument(s), "
                f"got {len(args)} in {quote_excerpt(self.text, name_tok.pos)}"
            )
        where = f"at position {name_tok.pos} in {quote_excerpt(self.text, name_tok.pos)}"
        if name_tok.text in _GAMMAS:
            for a in args:
                if a.is_Number and not abs(float(a)) <= MAX_SPECIAL:
                    raise FormulaSyntaxError(
                        f"argument of {name_tok.text} too large "
                        f"({_short(a)}; at most {MAX_SPECIAL}) {where}"
                    )
        if name_tok.text == "pow":
            return self.pow(*args)
        if name_tok.text in ("square", "aq"):  # powers of a number: bounded like x^2
            for a in args[-1:]:
                self.pow(a, sp.Integer(2))
        value = fn(*args)
        for atom in value.atoms(sp.Number):
            try:
                check_number_size(atom)
            except FormulaSyntaxError as exc:
                raise FormulaSyntaxError(f"{exc} in {name_tok.text}(...) {where}") from None
        return value


def _bits(r: sp.Expr) -> int:
    """Bits of the larger of numerator and denominator of a rational (0 otherwise)."""
    if isinstance(r, sp.Rational):
        return max(abs(int(r.p)).bit_length(), int(r.q).bit_length())
    return 0


def _short(x: object) -> str:
    text = str(x)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def check_number_size(value: sp.Expr) -> sp.Expr:
    """Check that a sympy number is not too large to compute with: an exact rational of
    at most :data:`MAX_BITS` bits, or a float inside the double range. Returns it.

    Example:
        >>> import sympy as sp
        >>> check_number_size(sp.Integer(2) ** 1024)
        Traceback (most recent call last):
        ...
        ariasim.surrogates.parse.FormulaSyntaxError: number too large (1025 bits; at most 1024)
    """
    _sympy()
    if isinstance(value, sp.Rational):
        bits = _bits(value)
        if bits > MAX_BITS:
            raise FormulaSyntaxError(f"number too large ({bits} bits; at most {MAX_BITS})")
    elif isinstance(value, sp.Float):
        try:
            ok = math.isfinite(float(value))
        except (OverflowError, ValueError):
            ok = False
        if not ok:
            raise FormulaSyntaxError("number out of the floating-point range")
    return value


def parse_expression(
    text: str, variables: Iterable[str], symbols: dict[str, sp.Symbol] | None = None
) -> sp.Expr:
    """Parse formula text into a sympy expression using only whitelisted constructs.

    Arguments:
        text: The formula, e.g. ``"a*exp(-d/47.0)/d^2"``.
        variables: The names that may appear as variables.
        symbols: Optional ready sympy symbols by name (created as real symbols otherwise).

    Raises:
        FormulaSyntaxError: with the position of the first problem.
    """
    if not isinstance(text, str):
        raise FormulaSyntaxError(f"expected formula text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaSyntaxError(f"formula text longer than {MAX_LENGTH} characters")
    _sympy()
    syms = dict(symbols or {})
    for name in variables:
        check_name(name)
        syms.setdefault(name, sp.Symbol(name, real=True))
    expr = Parser(text, syms).parse()
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise FormulaSyntaxError(
            f"formula evaluates to an infinity or NaN: {quote_excerpt(text, 0)}"
        )
    for atom in expr.atoms(sp.Number):  # a last net under the checks made while parsing
        check_number_size(atom)
    return expr


# --------------------------------------------------------------------------- numeric back-end

_Value = Any  # a float or an ndarray
_Fn = Callable[[dict[str, Any]], _Value]


@dataclass
class _Num:
    """A node of the numeric back-end.

    ``number`` is set for what sympy would hold as a Number (a :class:`~fractions.Fraction`
    when exact, a float otherwise); ``fixed`` for other constants (``pi``, ``sqrt(2)``);
    ``fn`` evaluates the node on a dict of columns. ``coeff`` is sympy's numeric
    coefficient (``as_coeff_Mul()[0]``), as far as the size checks need it.
    """

    fn: _Fn
    number: Fraction | float | None = None
    fixed: float | None = None
    coeff: Fraction | float = Fraction(1)

    @property
    def is_const(self) -> bool:
        return self.number is not None or self.fixed is not None

    @property
    def value(self) -> float:
        v = self.number if self.number is not None else self.fixed
        return _float(v)  # type: ignore[arg-type]


def _float(v: Fraction | float) -> float:
    try:
        return float(v)
    except OverflowError:  # an exact number beyond the double range (refused by checked)
        return math.inf if v > 0 else -math.inf


def _const(v: Fraction | float, *, number: bool = True) -> _Num:
    f = _float(v)
    return _Num(
        lambda env: f,
        number=v if number else None,
        fixed=None if number else f,
        coeff=v if number else Fraction(1),
    )


def _nbits(v: Fraction | float) -> int:
    if isinstance(v, Fraction):
        return max(abs(v.numerator).bit_length(), v.denominator.bit_length())
    return 0


def _scipy_special() -> Any:
    import scipy.special

    return scipy.special


#: The numeric back-end's functions (NumPy/SciPy, as sympy's ``lambdify`` prints them).
_NUMERIC: dict[str, Callable[..., _Value]] = {
    "sqrt": np.sqrt,
    "cbrt": lambda x: np.power(x, 1.0 / 3.0),
    "exp": np.exp,
    "log": np.log,
    "ln": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "abs": np.abs,
    "Abs": np.abs,
    "erf": lambda x: _scipy_special().erf(x),
    "erfc": lambda x: _scipy_special().erfc(x),
    "gamma": lambda x: _scipy_special().gamma(x),
    "loggamma": lambda x: _scipy_special().gammaln(x),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "square": lambda x: x**2,
    "Heaviside": lambda x: np.heaviside(x, 0.5),
    "atan2": np.arctan2,
    "lowergamma": lambda s, x: _scipy_special().gamma(s) * _scipy_special().gammainc(s, x),
    "uppergamma": lambda s, x: _scipy_special().gamma(s) * _scipy_special().gammaincc(s, x),
    "pow": np.power,
    "aq": lambda a, b: a / np.sqrt(1.0 + b**2),
    "min": np.minimum,
    "max": np.maximum,
    "Min": np.minimum,
    "Max": np.maximum,
}
_EXACT = {
    "abs": abs,
    "Abs": abs,
    "square": lambda x: x * x,
    "min": min,
    "max": max,
    "Min": min,
    "Max": max,
}


class _NumericParser(Parser):
    """The grammar of :class:`Parser` building :class:`_Num` nodes (no sympy)."""

    def __init__(self, text: str, variables: Iterable[str]):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.symbols = dict.fromkeys(variables)
        self.depth = 0
        self.infinite = False

    def expr(self) -> _Num:  # type: ignore[override]
        terms = [self.term()]
        while self.peek().text in ("+", "-"):
            op = self.take().text
            right = self.term()
            terms.append(right if op == "+" else self.neg(right))
        if len(terms) == 1:
            return terms[0]
        nums = [t.number for t in terms if t.number is not None]
        rest = [t for t in terms if t.number is None]
        total: Fraction | float = Fraction(0)
        for v in nums:
            total = total + v
        if not rest:
            return self.checked(_const(total))
        fns = [t.fn for t in rest]
        if nums and total != 0:
            c = float(total)
            fns.append(lambda env: c)
        if len(fns) == 1:
            return rest[0]
        first, others = fns[0], fns[1:]

        def add(env: dict[str, Any]) -> _Value:
            out = first(env)
            for f in others:
                out = out + f(env)
            return out

        if all(t.is_const for t in rest):
            return _const(float(add({})), number=False)
        return _Num(add)

    def neg(self, a: _Num) -> _Num:
        if a.number is not None:
            return _const(-a.number)
        f = a.fn
        out = _Num(lambda env: -f(env), coeff=-a.coeff)
        if a.fixed is not None:
            out.fixed = -a.fixed
        return out

    def term(self) -> _Num:  # type: ignore[override]
        factors = [self.unary()]
        while self.peek().text in ("*", "/"):
            op = self.take().text
            right = self.unary()
            factors.append(right if op == "*" else self.pow(right, _const(Fraction(-1))))
        if len(factors) == 1:
            return factors[0]
        bits = sum(_nbits(f.number if f.number is not None else f.coeff) for f in factors)
        if bits > 4 * MAX_BITS:
            raise self.error(f"product of numbers too large (more than {MAX_BITS} bits)")
        prod: Fraction | float = Fraction(1)
        coeff: Fraction | float = Fraction(1)
        for f in factors:
            if f.number is not None:
                prod = prod * f.number
            else:
                coeff = coeff * f.coeff
        rest = [f for f in factors if f.number is None]
        if not rest:
            return self.checked(_const(prod))
        fns = [f.fn for f in rest]
        if prod != 1:
            c = float(prod)
            fns.insert(0, lambda env: c)
        first, others = fns[0], fns[1:]

        def mul(env: dict[str, Any]) -> _Value:
            out = first(env)
            for f in others:
                out = out * f(env)
            return out

        if all(f.is_const for f in rest):
            return _const(float(mul({})), number=False)
        return self.checked(_Num(mul if others else first, coeff=coeff * prod))

    def unary(self) -> _Num:  # type: ignore[override]
        self.enter()
        try:
            if self.peek().text in ("+", "-"):
                op = self.take().text
                operand = self.unary()
                return self.neg(operand) if op == "-" else operand
            return self.power()
        finally:
            self.depth -= 1

    def power(self) -> _Num:  # type: ignore[override]
        base = self.atom()
        if self.peek().text in ("^", "**"):
            self.take()
            return self.pow(base, self.unary())
        return base

    def pow(self, base: _Num, exp: _Num) -> _Num:  # type: ignore[override]
        """``base^exp`` with the checks of :meth:`Parser.pow`, folded like sympy."""
        x = exp.number
        if x is not None:
            if not abs(float(x)) <= MAX_EXPONENT:
                raise self.error(f"exponent too large ({_short(x)}; at most {MAX_EXPONENT})")
            coeff = base.number if base.number is not None else base.coeff
            if (
                isinstance(coeff, Fraction)
                and isinstance(x, Fraction)
                and _nbits(coeff) * abs(float(x)) > 2 * MAX_BITS
            ):
                raise self.error(f"number too large: {_short(coeff)}^{_short(x)}")
        b = base.number
        if b is not None and x is not None:
            if b == 0 and x < 0:
                self.infinite = True
                return _const(math.inf)
            if isinstance(b, Fraction) and isinstance(x, Fraction) and x.denominator == 1:
                return self.checked(_const(b ** int(x)))
            if isinstance(b, Fraction) and isinstance(x, Fraction):  # sympy keeps 2^(1/2)
                return _const(self.float_pow(float(b), float(x)), number=False)
            return self.checked(_const(self.float_pow(float(b), float(x))))
        fb, fx = base.fn, exp.fn
        if base.is_const and exp.is_const:
            return _const(self.float_pow(base.value, exp.value), number=False)
        coeff_out: Fraction | float = Fraction(1)
        if x is not None and float(x) == int(float(x)):
            try:
                coeff_out = base.coeff ** int(float(x))
            except (OverflowError, ZeroDivisionError):
                raise self.error("number out of the floating-point range") from None
        if x is not None:
            k = float(x)
            return self.checked(_Num(lambda env: np.power(fb(env), k), coeff=coeff_out))
        return _Num(lambda env: np.power(fb(env), fx(env)))

    def float_pow(self, b: float, x: float) -> float:
        try:
            v = math.pow(b, x)
        except OverflowError:
            raise self.error("number out of the floating-point range") from None
        except ValueError:  # a negative number to a fractional power (complex in sympy)
            raise self.error("complex constant (a negative number to a fractional power)") from None
        return v

    def checked(self, value: _Num) -> _Num:  # type: ignore[override]
        for v in (value.number, value.coeff):
            if isinstance(v, Fraction) and _nbits(v) > MAX_BITS:
                raise self.error(f"number too large ({_nbits(v)} bits; at most {MAX_BITS})")
            if isinstance(v, float) and not math.isfinite(v):
                raise self.error("number out of the floating-point range")
        return value

    def integer(self, value: int) -> _Num:  # type: ignore[override]
        return self.checked(_const(Fraction(value)))

    def real(self, value: float) -> _Num:  # type: ignore[override]
        return _const(value)

    def variable(self, name: str) -> _Num:  # type: ignore[override]
        return _Num(lambda env: env[name])

    def constant(self, name: str) -> _Num:  # type: ignore[override]
        return _const(math.pi if name == "pi" else math.e, number=False)

    def call(self, name_tok: _Tok) -> _Num:  # type: ignore[override]
        name = name_tok.text
        if name not in ARITY:
            self.i -= 1
            raise self.error(
                f"function {name!r} is not allowed (allowed: {', '.join(sorted(ARITY))})"
            )
        self.take("(")
        self.enter()
        args = [self.expr()]
        while self.peek().text == ",":
            self.take()
            args.append(self.expr())
        self.depth -= 1
        self.take(")")
        if len(args) != ARITY[name]:
            raise FormulaSyntaxError(
                f"function {name!r} takes {ARITY[name]} argument(s), "
                f"got {len(args)} in {quote_excerpt(self.text, name_tok.pos)}"
            )
        where = f"at position {name_tok.pos} in {quote_excerpt(self.text, name_tok.pos)}"
        if name in _GAMMAS:
            for a in args:
                if a.number is not None and not abs(float(a.number)) <= MAX_SPECIAL:
                    raise FormulaSyntaxError(
                        f"argument of {name} too large "
                        f"({_short(a.number)}; at most {MAX_SPECIAL}) {where}"
                    )
        if name == "pow":
            return self.pow(*args)
        if name in ("square", "aq"):  # powers of a number: bounded like x^2
            for a in args[-1:]:
                self.pow(a, _const(Fraction(2)))
        fn = _NUMERIC[name]
        if all(a.number is not None for a in args):
            nums = [a.number for a in args]
            if name in _EXACT and all(isinstance(v, Fraction) for v in nums):
                return self.checked_call(_const(_EXACT[name](*nums)), name, where)  # type: ignore[operator]
            with np.errstate(all="ignore"):
                v = float(fn(*(float(u) for u in nums)))  # type: ignore[arg-type]
            exact = all(isinstance(u, Fraction) for u in nums)
            if not math.isfinite(v) and not exact:
                raise FormulaSyntaxError(
                    f"number out of the floating-point range in {name}(...) {where}"
                )
            # sympy evaluates a function of floats, keeps one of exact numbers symbolic
            return _const(v, number=not exact)
        fns = [a.fn for a in args]
        if all(a.is_const for a in args):
            with np.errstate(all="ignore"):
                v = float(fn(*(a.value for a in args)))  # type: ignore[operator]
            return _const(v, number=False)
        coeff: Fraction | float = Fraction(1)
        if name in ("abs", "Abs"):
            coeff = abs(args[0].coeff)  # type: ignore[assignment]
        elif name == "aq":
            coeff = args[0].coeff
        elif name == "square":
            coeff = args[0].coeff * args[0].coeff
        if len(fns) == 1:
            f0 = fns[0]
            out = _Num(lambda env: fn(f0(env)), coeff=coeff)
        else:
            f0, f1 = fns
            out = _Num(lambda env: fn(f0(env), f1(env)), coeff=coeff)
        return self.checked_call(out, name, where)

    def checked_call(self, value: _Num, name: str, where: str) -> _Num:
        try:
            return self.checked(value)
        except FormulaSyntaxError as exc:
            raise FormulaSyntaxError(f"{exc} in {name}(...) {where}") from None


@dataclass(frozen=True)
class NumericExpression:
    """Formula text read by the whitelist grammar straight into a NumPy evaluator, without
    sympy (:func:`parse_numeric`).

    Arguments:
        text: The formula text.
        variables: The variable names, in the order of positional arguments.
        fn: The evaluator (a dict of columns to a value).

    Example:
        >>> f = parse_numeric("0.01 + 0.2/sqrt(pt) + 2^-3*eta^2", ["pt", "eta"])
        >>> float(f(100.0, 2.0))
        0.53
    """

    text: str
    variables: tuple[str, ...]
    fn: _Fn

    def __call__(self, *columns: Any, **named: Any) -> np.ndarray:
        """Evaluate on columns given in :attr:`variables` order or by name; a float array
        of the broadcast shape."""
        env = dict(zip(self.variables, columns, strict=False))
        env.update(named)
        missing = [v for v in self.variables if v not in env]
        if missing:
            raise ConfigError(f"missing input(s) {missing}", parameter="columns")
        cols = {k: np.asarray(v, dtype=float) for k, v in env.items()}
        with np.errstate(all="ignore"):
            out = self.fn(cols)
        shape = np.broadcast_shapes(*(c.shape for c in cols.values())) if cols else ()
        return np.broadcast_to(np.asarray(out, dtype=float), shape).copy()


def parse_numeric(text: str, variables: Iterable[str]) -> NumericExpression:
    """Parse formula text with :func:`parse_expression`'s grammar and bounds into a NumPy
    evaluator, without importing sympy.

    Values agree with the sympy expression's (``Formula.__call__``) to rounding: the
    numeric back-end evaluates the operations in the order of the text, sympy in its own.

    Raises:
        FormulaSyntaxError: with the position of the first problem.
    """
    if not isinstance(text, str):
        raise FormulaSyntaxError(f"expected formula text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaSyntaxError(f"formula text longer than {MAX_LENGTH} characters")
    names = tuple(check_name(name) for name in variables)
    parser = _NumericParser(text, names)
    node = parser.parse()
    if parser.infinite or (node.is_const and not math.isfinite(node.value)):
        raise FormulaSyntaxError(
            f"formula evaluates to an infinity or NaN: {quote_excerpt(text, 0)}"
        )
    return NumericExpression(text, names, node.fn)
