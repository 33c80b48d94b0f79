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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sympy as sp

from ariasim.errors import ConfigError
from ariasim.surrogates.escape import quote_excerpt

__all__ = [
    "FUNCTIONS",
    "MAX_BITS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_SPECIAL",
    "MAX_TOKENS",
    "FormulaSyntaxError",
    "check_name",
    "check_number_size",
    "parse_expression",
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


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


def _aq(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    # Operon's "analytic quotient" a / sqrt(1 + b^2)
    return a / sp.sqrt(1 + b**2)


#: Function names the parser accepts, with their arity and sympy constructor.
FUNCTIONS: dict[str, tuple[int, Callable[..., sp.Expr]]] = {
    "sqrt": (1, sp.sqrt),
    "cbrt": (1, sp.cbrt),
    "exp": (1, sp.exp),
    "log": (1, sp.log),
    "ln": (1, sp.log),
    "sin": (1, sp.sin),
    "cos": (1, sp.cos),
    "tan": (1, sp.tan),
    "asin": (1, sp.asin),
    "acos": (1, sp.acos),
    "atan": (1, sp.atan),
    "sinh": (1, sp.sinh),
    "cosh": (1, sp.cosh),
    "tanh": (1, sp.tanh),
    "abs": (1, sp.Abs),
    "Abs": (1, sp.Abs),
    "erf": (1, sp.erf),
    "erfc": (1, sp.erfc),
    "gamma": (1, sp.gamma),
    "loggamma": (1, sp.loggamma),
    "sigmoid": (1, _sigmoid),
    "square": (1, lambda x: x**2),
    "Heaviside": (1, lambda x: sp.Heaviside(x, sp.Rational(1, 2))),
    "atan2": (2, sp.atan2),
    "lowergamma": (2, sp.lowergamma),
    "uppergamma": (2, sp.uppergamma),
    "pow": (2, sp.Pow),
    "aq": (2, _aq),
    "min": (2, sp.Min),
    "max": (2, sp.Max),
    "Min": (2, sp.Min),
    "Max": (2, sp.Max),
}
_CONSTANTS = {"pi": sp.pi, "E": sp.E}

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
    if name in FUNCTIONS or name in _CONSTANTS:
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
                return self.checked(sp.Integer(int(tok.text)))
            value = float(tok.text)
            if not math.isfinite(value):
                raise self.error(f"number {_short(tok.text)} is out of the floating-point range")
            self.take()
            return sp.Float(value)
        if tok.kind == "name":
            self.take()
            if self.peek().text == "(":
                return self.call(tok)
            if tok.text in self.symbols:
                return self.symbols[tok.text]
            if tok.text in _CONSTANTS:
                return _CONSTANTS[tok.text]
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

    def call(self, name_tok: _Tok) -> sp.Expr:
        if name_tok.text not in FUNCTIONS:
            self.i -= 1
            raise self.error(
                f"function {name_tok.text!r} is not allowed "
                f"(allowed: {', '.join(sorted(FUNCTIONS))})"
            )
        arity, fn = FUNCTIONS[name_tok.text]
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
        >>> check_number_size(sp.Integer(2) ** 1024)
        Traceback (most recent call last):
        ...
        ariasim.surrogates.parse.FormulaSyntaxError: number too large (1025 bits; at most 1024)
    """
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
