"""A whitelist parser from formula text to sympy.

User-supplied formula strings (a JSON model file, a command-line option, a symbolic
regression library's output) are never given to ``eval``, ``exec`` or ``sympify``: those
run arbitrary code. This small recursive-descent parser accepts only numbers, the
variable names it is told about, a fixed table of functions and the constants ``pi`` and
``E``, combined with ``+ - * /``, powers (``^`` as in ROOT/Delphes/Operon, or ``**``) and
parentheses. Anything else is an error that says where in the text it is.

Grammar (``^`` binds tighter than unary minus, and is right-associative)::

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('+' | '-') unary | power
    power := atom (('^' | '**') unary)?
    atom  := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sympy as sp

from ariasim.errors import ConfigError

__all__ = ["FUNCTIONS", "FormulaSyntaxError", "check_name", "parse_expression"]

MAX_LENGTH = 20_000
MAX_DEPTH = 200


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
        raise ConfigError(f"{name!r} is not a valid {what} name (letters, digits, '_')",
                          parameter=what)
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
            raise FormulaSyntaxError(f"unexpected character {bad!r} at position {at} in {text!r}")
        kind = m.lastgroup or "op"
        tokens.append(_Tok(kind, m.group(kind), m.start(kind)))
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
        return FormulaSyntaxError(f"{msg} at position {tok.pos} in {self.text!r}")

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
        left = self.term()
        while self.peek().text in ("+", "-"):
            op = self.take().text
            right = self.term()
            left = left + right if op == "+" else left - right
        return left

    def term(self) -> sp.Expr:
        left = self.unary()
        while self.peek().text in ("*", "/"):
            op = self.take().text
            right = self.unary()
            left = left * right if op == "*" else left / right
        return left

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
            return sp.Pow(base, self.unary())
        return base

    def atom(self) -> sp.Expr:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            if re.fullmatch(r"\d+", tok.text):
                return sp.Integer(int(tok.text))
            return sp.Float(float(tok.text))
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
            raise self.error(f"function {name_tok.text!r} is not allowed "
                             f"(allowed: {', '.join(sorted(FUNCTIONS))})")
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
            raise FormulaSyntaxError(f"function {name_tok.text!r} takes {arity} argument(s), "
                                     f"got {len(args)} in {self.text!r}")
        return fn(*args)


def parse_expression(text: str, variables: Iterable[str],
                     symbols: dict[str, sp.Symbol] | None = None) -> sp.Expr:
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
        raise FormulaSyntaxError(f"formula evaluates to an infinity or NaN: {text!r}")
    return expr
