r"""Our own reader of the Delphes/ROOT TFormula subset: parser and NumPy evaluator.

Delphes hands every formula of a card (``EfficiencyFormula``, ``ResolutionFormula``,
``ScaleFormula``...) to ``DelphesFormula::Compile``, which first removes white space and
backslashes and then *textually* replaces variable names before ROOT's TFormula parses
the result::

    pt -> x, eta -> y, phi -> z, energy -> t,
    d0 -> [0], dz -> [1], ctgTheta -> [2], radius -> [3], density -> [4]

so any other identifier containing one of those letter sequences (``theta`` becomes
``thy``, ``ptmin`` becomes ``xmin``) silently changes meaning or fails to compile.
:func:`delphes_substitute` reproduces that step, :func:`check_card_formula` refuses such
identifiers, and :class:`TFormulaExpression` parses the substituted text with a small
whitelist recursive-descent parser (never ``eval``) and evaluates it vectorised in NumPy
with TFormula's (C++) semantics:

* comparisons (``< <= > >= == !=``) yield 0 or 1, ``&&``, ``||`` and ``!`` act on
  non-zero-ness, so piecewise functions are sums of ``(condition) * (value)``;
* ``^`` is the power operator. Chained powers without parentheses (``energy^0.01^2``,
  a known hand-made-card failure) are *rejected* as ambiguous, as are chained
  comparisons (``0 < eta < 1`` means ``(0 < eta) < 1`` in C++);
* functions: ``sqrt exp log log10 abs fabs pow sin cos tan tanh sinh cosh atan erf min
  max`` and their ``TMath::`` spellings (``Sqrt Exp Log Log10 Abs Power Sin Cos Tan TanH
  SinH CosH ATan Erf Min Max``), and the constant ``TMath::Pi()``.

Precedence (C++): ``||`` < ``&&`` < comparisons < ``+ -`` < ``* /`` < unary ``- + !``
< ``^`` < atoms.

Card text is user input, so the reader bounds it: at most :data:`MAX_LENGTH` characters,
:data:`MAX_DEPTH` levels of nesting (parentheses, calls, unary operators) and a tree of
height :data:`MAX_HEIGHT` (a sum of n terms has height n); within these bounds the
recursive parser, compiler and evaluators are given enough stack, so a hostile text is a
:class:`TFormulaError`, never a ``RecursionError``. Numbers are floats (no exact
arithmetic), so ``9^(9^9)`` is simply ``inf``.

Evaluation is compiled (constant folding, common sub-expressions, chunks); a piecewise sum
over disjoint intervals of one expression (``(abs(eta) <= 1.4) * (...) + (abs(eta) > 1.4 &&
abs(eta) <= 1.7) * (...) + ...``) evaluates each term's value only on its own rows, which
differs from ROOT's every-term evaluation only where another term is non-finite
(:class:`TFormulaExpression`). ``x^n`` with a constant integer ``n`` is computed as
``±|x|^n``, the identity C's ``pow`` applies itself.

The printer of Formulas as this text is :mod:`ariasim.export.tformula`.

References:
    J. de Favereau et al. (DELPHES 3), "DELPHES 3: a modular framework for fast
    simulation of a generic collider experiment", JHEP 02 (2014) 057, arXiv:1307.6346;
    ``classes/DelphesFormula.cc`` of Delphes 3.5 (the textual substitution).

    ROOT TFormula class reference, https://root.cern/doc/master/classTFormula.html
    (operators, ``^`` as power, predefined functions).
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ariasim.errors import ConfigError
from ariasim.surrogates.escape import quote_excerpt

__all__ = [
    "CHUNK",
    "DELPHES_SUBSTITUTIONS",
    "DELPHES_VARIABLES",
    "MAX_DEPTH",
    "MAX_HEIGHT",
    "MAX_LENGTH",
    "Parser",
    "TFormulaError",
    "TFormulaExpression",
    "check_card_formula",
    "delphes_substitute",
    "evaluate_ast",
    "evaluate_card_formula",
]

#: Delphes' textual replacements, in the order DelphesFormula::Compile applies them.
DELPHES_SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("pt", "x"),
    ("eta", "y"),
    ("phi", "z"),
    ("energy", "t"),
    ("d0", "[0]"),
    ("dz", "[1]"),
    ("ctgTheta", "[2]"),
    ("radius", "[3]"),
    ("density", "[4]"),
)
#: The card variables ariasim emits, and the TFormula variable each becomes.
DELPHES_VARIABLES: dict[str, str] = {"pt": "x", "eta": "y", "phi": "z", "energy": "t"}
_TF_VARIABLES = {"x": "pt", "y": "eta", "z": "phi", "t": "energy"}

#: Longest formula text accepted (characters).
MAX_LENGTH = 100_000
#: Deepest nesting of parentheses, calls and unary operators.
MAX_DEPTH = 300
#: Largest height of the parsed tree (a sum of n terms has height n).
MAX_HEIGHT = 2_000


@contextlib.contextmanager
def _recursion_room(frames: int = 10 * MAX_HEIGHT + 10 * MAX_DEPTH) -> Iterator[None]:
    """Let the recursive parser, compiler and evaluators go ``frames`` calls deeper than
    the caller (the trees are bounded by :data:`MAX_DEPTH` and :data:`MAX_HEIGHT`, so
    this is finite; Python-to-Python calls do not use the C stack since Python 3.11)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, old + frames))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _height(root: tuple) -> int:
    """Height of an AST (iteratively: no recursion)."""
    best, stack = 0, [(root, 1)]
    while stack:
        node, h = stack.pop()
        best = max(best, h)
        stack.extend((c, h + 1) for c in _children(node))
    return best


class TFormulaError(ConfigError):
    """TFormula text that is invalid, ambiguous, or unsafe under Delphes' substitution.

    Example:
        >>> check_card_formula("theta * pt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.export.tformula_eval.TFormulaError: parameter 'formula': identifier 'theta' ...
    """

    def __init__(self, message: str, *, parameter: str | None = "formula"):
        super().__init__(message, parameter=parameter)


def _erf(a: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(a)


# name -> (arity, numpy implementation)
_FUNCTIONS: dict[str, tuple[int, Any]] = {
    "sqrt": (1, np.sqrt),
    "exp": (1, np.exp),
    "log": (1, np.log),
    "log10": (1, np.log10),
    "abs": (1, np.abs),
    "fabs": (1, np.abs),
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "tan": (1, np.tan),
    "tanh": (1, np.tanh),
    "sinh": (1, np.sinh),
    "cosh": (1, np.cosh),
    "atan": (1, np.arctan),
    "erf": (1, _erf),
    "pow": (2, np.power),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "TMath::Sqrt": (1, np.sqrt),
    "TMath::Exp": (1, np.exp),
    "TMath::Log": (1, np.log),
    "TMath::Log10": (1, np.log10),
    "TMath::Abs": (1, np.abs),
    "TMath::Power": (2, np.power),
    "TMath::Sin": (1, np.sin),
    "TMath::Cos": (1, np.cos),
    "TMath::Tan": (1, np.tan),
    "TMath::TanH": (1, np.tanh),
    "TMath::SinH": (1, np.sinh),
    "TMath::CosH": (1, np.cosh),
    "TMath::ATan": (1, np.arctan),
    "TMath::Erf": (1, _erf),
    "TMath::Min": (2, np.minimum),
    "TMath::Max": (2, np.maximum),
    "TMath::Pi": (0, None),
}

_TOKEN = re.compile(
    r"""
    (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<param>\[\d+\])
  | (?P<op>&&|\|\||<=|>=|==|!=|[-+*/^(),<>!])
""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(text, i)
        if m is None:
            raise TFormulaError(
                f"unexpected character {text[i]!r} at position {i} in {quote_excerpt(text, i)}"
            )
        kind = m.lastgroup or "op"
        out.append(_Tok(kind, m.group(), i))
        i = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


# AST nodes are tuples: ("num", v) ("var", name) ("un", op, a) ("bin", op, a, b) ("call", f, args)
_CMP = ("<", "<=", ">", ">=", "==", "!=")


class Parser:
    """Whitelist recursive-descent parser of (substituted) TFormula text into a tuple AST.

    Arguments:
        text: TFormula text in ``x, y, z, t`` (see :func:`delphes_substitute`).

    Example:
        >>> ast = Parser("2*x^2 + (y > 1)").parse()
        >>> float(evaluate_ast(ast, {"x": np.array(3.0), "y": np.array(2.0)}))
        19.0
    """

    def __init__(self, text: str):
        if len(text) > MAX_LENGTH:
            raise TFormulaError(f"formula longer than {MAX_LENGTH} characters")
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def err(self, msg: str) -> TFormulaError:
        t = self.toks[self.i]
        return TFormulaError(f"{msg} at position {t.pos} in {quote_excerpt(self.text, t.pos)}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        t = self.toks[self.i]
        if text is not None and t.text != text:
            raise self.err(f"expected {text!r}, found {t.text or 'end of text'!r}")
        self.i += 1
        return t

    def parse(self) -> tuple:
        with _recursion_room():
            node = self.or_()
        if self.peek().kind != "end":
            raise self.err(f"unexpected {self.peek().text!r}")
        height = _height(node)
        if height > MAX_HEIGHT:
            raise TFormulaError(
                f"formula too large: its tree has height {height} (a sum or "
                f"product of more than {MAX_HEIGHT} terms; at most {MAX_HEIGHT})"
            )
        return node

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.err("formula nested too deeply")

    def or_(self) -> tuple:
        node = self.and_()
        while self.peek().text == "||":
            self.take()
            node = ("bin", "||", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.cmp()
        while self.peek().text == "&&":
            self.take()
            node = ("bin", "&&", node, self.cmp())
        return node

    def cmp(self) -> tuple:
        node = self.add()
        if self.peek().text in _CMP:
            op = self.take().text
            node = ("bin", op, node, self.add())
            if self.peek().text in _CMP:
                raise self.err("chained comparison (means (a < b) < c in C++); use && instead")
        return node

    def add(self) -> tuple:
        node = self.mul()
        while self.peek().text in ("+", "-"):
            op = self.take().text
            node = ("bin", op, node, self.mul())
        return node

    def mul(self) -> tuple:
        node = self.unary()
        while self.peek().text in ("*", "/"):
            op = self.take().text
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.peek().text in ("-", "+", "!"):
            op = self.take().text
            self._enter()
            node = ("un", op, self.unary())
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> tuple:
        node = self.atom()
        if self.peek().text == "^":
            self.take()
            sign = None
            if self.peek().text in ("-", "+"):
                sign = self.take().text
            expo = self.atom()
            if sign == "-":
                expo = ("un", "-", expo)
            if self.peek().text == "^":
                raise self.err("ambiguous chained power a^b^c; write (a^b)^c or a^(b^c)")
            node = ("bin", "^", node, expo)
        return node

    def atom(self) -> tuple:
        t = self.peek()
        if t.kind == "num":
            self.take()
            return ("num", float(t.text))
        if t.kind == "param":
            raise self.err(
                f"parameter {t.text} (Delphes variable d0, dz, ctgTheta, radius or "
                "density) is not supported"
            )
        if t.text == "(":
            self.take()
            self._enter()
            node = self.or_()
            self.depth -= 1
            self.take(")")
            return node
        if t.kind == "name":
            self.take()
            if self.peek().text == "(":
                return self.call(t)
            if t.text in _TF_VARIABLES:
                return ("var", t.text)
            raise self.err(f"unknown identifier {t.text!r}")
        raise self.err(f"unexpected {t.text or 'end of text'!r}")

    def call(self, name: _Tok) -> tuple:
        if name.text not in _FUNCTIONS:
            raise TFormulaError(
                f"unknown function {name.text!r} at position {name.pos} in "
                f"{quote_excerpt(self.text, name.pos)}"
            )
        arity, _ = _FUNCTIONS[name.text]
        self.take("(")
        args: list[tuple] = []
        if self.peek().text != ")":
            self._enter()
            args.append(self.or_())
            while self.peek().text == ",":
                self.take()
                args.append(self.or_())
            self.depth -= 1
        self.take(")")
        if len(args) != arity:
            raise TFormulaError(
                f"function {name.text!r} takes {arity} argument(s), got "
                f"{len(args)} at position {name.pos} in "
                f"{quote_excerpt(self.text, name.pos)}"
            )
        if name.text == "TMath::Pi":
            return ("num", math.pi)
        return ("call", name.text, tuple(args))


def _truth(a: np.ndarray) -> np.ndarray:
    return a != 0.0


def _integer_exponent(b: Any) -> bool:
    """Whether ``a^b`` is evaluated as ``±|a|^b`` (:func:`_power`): a constant integer
    exponent other than 0, 1, 2 (which NumPy's power handles by fast paths)."""
    return (
        np.ndim(b) == 0
        and math.isfinite(float(b))
        and float(b) == round(float(b))
        and float(b) not in (0.0, 1.0, 2.0)
    )


def _power(a: np.ndarray, b: Any) -> np.ndarray:
    """``a^b`` as C's ``pow``. For a constant integer exponent (:func:`_integer_exponent`)
    computed as ``|a|^b``, negated for odd ``b`` and negative ``a`` (the same identity C's
    ``pow`` uses): NumPy's power falls back to a scalar loop for negative bases (about 50x
    slower), and the learned formulas cube many signed polynomials (``(...)^(3.0)``)."""
    if not _integer_exponent(b):
        return np.power(a, b)
    m = np.power(np.abs(a), b)
    return np.copysign(m, a) if float(b) % 2.0 == 1.0 else m


def evaluate_ast(node: tuple, env: Mapping[str, np.ndarray]) -> np.ndarray:
    kind = node[0]
    if kind == "num":
        return np.asarray(node[1], dtype=float)
    if kind == "var":
        return env[node[1]]
    if kind == "un":
        a = evaluate_ast(node[2], env)
        if node[1] == "-":
            return -a
        if node[1] == "+":
            return a
        return (~_truth(a)).astype(float)
    if kind == "call":
        fn = _FUNCTIONS[node[1]][1]
        return np.asarray(fn(*(evaluate_ast(a, env) for a in node[2])), dtype=float)
    op, a, b = node[1], evaluate_ast(node[2], env), evaluate_ast(node[3], env)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "^":  # the compiled form folds a variable-free exponent to a float
        return np.power(a, b) if _variables_used(node[3], set()) else _power(a, b)
    if op == "&&":
        return (_truth(a) & _truth(b)).astype(float)
    if op == "||":
        return (_truth(a) | _truth(b)).astype(float)
    cmp = {
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
        "==": np.equal,
        "!=": np.not_equal,
    }[op]
    return cmp(a, b).astype(float)


# ----------------------------------------------------------------- compiled evaluation
#
# The reference evaluator :func:`evaluate_ast` above walks the AST for every call, allocates a
# fresh array for every node and recomputes repeated sub-expressions (a fitted formula
# repeats ``log(TMath::Min(300.0, TMath::Max(1.0, pt)))`` up to a dozen times). The compiled
# form below is the same computation, node for node with the same NumPy ufuncs (so the
# values are bit-identical), restructured for speed:
#
# * constant sub-expressions are folded once at compile time;
# * identical sub-expressions (AST tuples compare by value) are computed once per chunk;
# * a node writes into its child's temporary (``out=``) instead of allocating;
# * inputs are evaluated in chunks of :data:`CHUNK` elements, so all temporaries stay in
#   the CPU cache;
# * ``x^2.0`` is ``np.square`` (``pow(x, 2)`` is the correctly rounded ``x*x``);
# * ``x^n`` for another constant integer ``n`` is ``±|x|^n`` (:func:`_power`, also used by
#   the reference evaluator).
#
# The closures are built from the whitelist-parsed AST only; no user text is executed.

#: Elements per chunk of compiled evaluation (temporaries of 128 KiB stay in L2 cache).
CHUNK = 16_384

_BINARY_UFUNCS: dict[str, Any] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_COMPARISONS = frozenset(_CMP)

# A compiled node is either a float (a folded constant) or a pair ``(fn, owned)``: ``fn(env,
# memo)`` returns the node's value on the current chunk, an array of the chunk's shape, and
# ``owned`` says whether that array is a fresh temporary the parent may overwrite (False for
# variables and memoised sub-expressions).
_Compiled = float | tuple[Any, bool]


class _Compiler:
    """Compile an AST into NumPy closures (see the comment block above)."""

    def __init__(self, *roots: tuple):
        self.counts: dict[tuple, int] = {}
        for root in roots:
            self._count(root)
        self.slots: dict[tuple, int] = {}
        self.cache: dict[tuple, _Compiled] = {}

    def _count(self, node: tuple) -> None:
        if node[0] in ("num", "var"):
            return
        self.counts[node] = self.counts.get(node, 0) + 1
        if self.counts[node] > 1:
            return  # children already counted with the first occurrence
        for child in _children(node):
            self._count(child)

    def compile(self, node: tuple) -> _Compiled:
        if node in self.cache:
            return self.cache[node]
        c = self._compile(node)
        if not isinstance(c, float) and self.counts.get(node, 0) > 1:
            slot = self.slots.setdefault(node, len(self.slots))
            fn = c[0]

            def memo_fn(
                env: Mapping[str, np.ndarray], memo: list, fn: Any = fn, slot: int = slot
            ) -> np.ndarray:
                v = memo[slot]
                if v is None:
                    v = memo[slot] = fn(env, memo)
                return v

            c = (memo_fn, False)
        self.cache[node] = c
        return c

    def _compile(self, node: tuple) -> _Compiled:
        kind = node[0]
        if kind == "num":
            return float(node[1])
        if kind == "var":
            name = node[1]
            return (lambda env, memo: env[name]), False
        if kind == "un":
            return self._unary(node[1], self.compile(node[2]))
        if kind == "call":
            return self._call(node[1], [self.compile(a) for a in node[2]], node)
        return self._binary(node[1], self.compile(node[2]), self.compile(node[3]), node)

    @staticmethod
    def _fold(node: tuple) -> float:
        with np.errstate(all="ignore"):
            return float(evaluate_ast(node, {}))

    def _unary(self, op: str, a: _Compiled) -> _Compiled:
        if isinstance(a, float):
            return self._fold(("un", op, ("num", a)))
        fa, owned = a
        if op == "+":
            return a
        if op == "-":
            if owned:
                return (lambda env, memo: np.negative(t := fa(env, memo), out=t)), True
            return (lambda env, memo: np.negative(fa(env, memo))), True

        def not_fn(env: Mapping[str, np.ndarray], memo: list) -> np.ndarray:
            return (fa(env, memo) == 0.0).astype(float)

        return not_fn, True

    def _call(self, name: str, args: list[_Compiled], node: tuple) -> _Compiled:
        if all(isinstance(a, float) for a in args):
            return self._fold(node)
        fn = _FUNCTIONS[name][1]
        if len(args) == 1:
            fa, owned = args[0]  # type: ignore[misc]
            if owned and isinstance(fn, np.ufunc):
                return (lambda env, memo: fn(t := fa(env, memo), out=t)), True
            return (lambda env, memo: np.asarray(fn(fa(env, memo)), dtype=float)), True
        return self._binary_fn(fn, args[0], args[1])

    def _binary(self, op: str, a: _Compiled, b: _Compiled, node: tuple) -> _Compiled:
        if isinstance(a, float) and isinstance(b, float):
            return self._fold(node)
        if op in ("&&", "||"):
            logic = np.logical_and if op == "&&" else np.logical_or
            ta = _const_truth(a)
            tb = _const_truth(b)
            fa = a if isinstance(a, float) else a[0]
            fb = b if isinstance(b, float) else b[0]

            def logic_fn(env: Mapping[str, np.ndarray], memo: list) -> np.ndarray:
                x = ta if ta is not None else fa(env, memo) != 0.0  # type: ignore[operator]
                y = tb if tb is not None else fb(env, memo) != 0.0  # type: ignore[operator]
                return logic(x, y).astype(float)

            return logic_fn, True
        if op == "^" and isinstance(b, float) and b == 2.0:
            fa, owned = a  # type: ignore[misc]
            if owned:
                return (lambda env, memo: np.square(t := fa(env, memo), out=t)), True
            return (lambda env, memo: np.square(fa(env, memo))), True
        if op == "^" and isinstance(b, float) and _integer_exponent(b):
            fa, owned = a  # type: ignore[misc]
            odd = b % 2.0 == 1.0

            def int_power(env: Mapping[str, np.ndarray], memo: list) -> np.ndarray:
                t = fa(env, memo)
                m = np.abs(t)
                np.power(m, b, out=m)
                if not odd:
                    return m
                return np.copysign(m, t, out=t) if owned else np.copysign(m, t, out=m)

            return int_power, True
        return self._binary_fn(_BINARY_UFUNCS[op], a, b, cmp=op in _COMPARISONS)

    @staticmethod
    def _binary_fn(uf: Any, a: _Compiled, b: _Compiled, *, cmp: bool = False) -> _Compiled:
        if cmp:  # bool result written into a float temporary when one is at hand (0.0 / 1.0)
            if isinstance(a, float):
                fb, ob = b  # type: ignore[misc]
                if ob:
                    return (lambda env, memo: uf(a, t := fb(env, memo), out=t)), True
                return (lambda env, memo: uf(a, fb(env, memo)).astype(float)), True
            fa, oa = a
            if isinstance(b, float):
                if oa:
                    return (lambda env, memo: uf(t := fa(env, memo), b, out=t)), True
                return (lambda env, memo: uf(fa(env, memo), b).astype(float)), True
            fb, ob = b
            if oa:
                return (lambda env, memo: uf(t := fa(env, memo), fb(env, memo), out=t)), True
            if ob:
                return (lambda env, memo: uf(fa(env, memo), t := fb(env, memo), out=t)), True
            return (lambda env, memo: uf(fa(env, memo), fb(env, memo)).astype(float)), True
        if isinstance(a, float):
            fb, ob = b  # type: ignore[misc]
            if ob:
                return (lambda env, memo: uf(a, t := fb(env, memo), out=t)), True
            return (lambda env, memo: uf(a, fb(env, memo))), True
        fa, oa = a
        if isinstance(b, float):
            if oa:
                return (lambda env, memo: uf(t := fa(env, memo), b, out=t)), True
            return (lambda env, memo: uf(fa(env, memo), b)), True
        fb, ob = b
        if oa:
            return (lambda env, memo: uf(t := fa(env, memo), fb(env, memo), out=t)), True
        if ob:
            return (lambda env, memo: uf(fa(env, memo), t := fb(env, memo), out=t)), True
        return (lambda env, memo: uf(fa(env, memo), fb(env, memo))), True


def _children(node: tuple) -> tuple:
    if node[0] == "un":
        return (node[2],)
    if node[0] == "bin":
        return (node[2], node[3])
    if node[0] == "call":
        return tuple(node[2])
    return ()


def _const_truth(c: _Compiled) -> bool | None:
    return (c != 0.0) if isinstance(c, float) else None


def _variables_used(node: tuple, out: set[str]) -> set[str]:
    if node[0] == "var":
        out.add(node[1])
    elif node[0] == "un":
        _variables_used(node[2], out)
    elif node[0] == "bin":
        _variables_used(node[2], out)
        _variables_used(node[3], out)
    elif node[0] == "call":
        for a in node[2]:
            _variables_used(a, out)
    return out


# ------------------------------------------------------------- piecewise (region) sums
#
# Delphes' piecewise formulas are sums of ``(condition) * (value)`` terms whose conditions
# select disjoint |eta| ranges (module docstring). ROOT evaluates every term for every
# particle; the compiled form below evaluates each value only on the rows its condition
# selects (``TFormulaExpression`` docstring: when the two can differ).

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}
_INF = math.inf


@dataclass(frozen=True)
class _Interval:
    """The set ``lo (<|<=) k (<|<=) hi`` of values ``k`` (``±inf`` ends are closed, so that
    ``k > 2.5`` holds for ``k = inf``; NaN lies in no interval)."""

    lo: float = -_INF
    lo_closed: bool = True
    hi: float = _INF
    hi_closed: bool = True

    @staticmethod
    def of(op: str, c: float) -> _Interval:
        """Values ``k`` with ``k op c`` (``op`` one of ``< <= > >= ==``)."""
        if math.isnan(c):
            return _Interval(_INF, True, -_INF, True)  # comparisons with NaN are all false
        if op == "<":
            return _Interval(hi=c, hi_closed=False)
        if op == "<=":
            return _Interval(hi=c)
        if op == ">":
            return _Interval(lo=c, lo_closed=False)
        if op == ">=":
            return _Interval(lo=c)
        return _Interval(c, True, c, True)

    def __and__(self, o: _Interval) -> _Interval:
        lo, lc = max((self.lo, not self.lo_closed), (o.lo, not o.lo_closed))
        hi, hc = min((self.hi, self.hi_closed), (o.hi, o.hi_closed))
        return _Interval(lo, not lc, hi, hc)

    def empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_closed and self.hi_closed))

    def disjoint(self, o: _Interval) -> bool:
        return (self & o).empty()


def _constant(node: tuple) -> float | None:
    """The value of a variable-free node, else None."""
    if _variables_used(node, set()):
        return None
    with np.errstate(all="ignore"):
        return float(evaluate_ast(node, {}))


def _interval_condition(node: tuple) -> tuple[tuple, _Interval] | None:
    """``(key, interval)`` if ``node`` is a comparison of one non-constant expression
    ``key`` with constants, or a conjunction (``&&``) of such on the same ``key``."""
    if node[0] != "bin":
        return None
    op, a, b = node[1], node[2], node[3]
    if op == "&&":
        ca, cb = _interval_condition(a), _interval_condition(b)
        if ca is None or cb is None or ca[0] != cb[0]:
            return None
        return ca[0], ca[1] & cb[1]
    if op not in _FLIP:  # != and || select unions of intervals: not handled
        return None
    ka, kb = _constant(a), _constant(b)
    if kb is not None and ka is None:
        return a, _Interval.of(op, kb)
    if ka is not None and kb is None:
        return b, _Interval.of(_FLIP[op], ka)
    return None


def _split_condition(term: tuple) -> tuple[tuple, tuple, _Interval, tuple] | None:
    """``(condition, key, interval, value)`` for a term ``condition * value``,
    ``value * condition`` or ``condition * a * b * ...`` (value ``a * b * ...``): the
    condition is 0 or 1, and ``1 * v == v * 1 == v`` exactly, so the term equals the value
    where the condition holds."""
    if term[0] != "bin" or term[1] != "*":
        return None
    for cond, value in ((term[2], term[3]), (term[3], term[2])):
        ci = _interval_condition(cond)
        if ci is not None:
            return cond, ci[0], ci[1], value
    inner = _split_condition(term[2])
    if inner is None:
        return None
    return inner[0], inner[1], inner[2], ("bin", "*", inner[3], term[3])


def _sum_terms(node: tuple) -> list[tuple]:
    if node[0] == "bin" and node[1] == "+":
        return _sum_terms(node[2]) + _sum_terms(node[3])
    return [node]


def _piecewise_terms(root: tuple) -> list[tuple[tuple, tuple]] | None:
    """``[(condition, value), ...]`` if ``root`` is a sum of terms ``condition * value``
    whose conditions are intervals of one expression (e.g. ``abs(eta)``) proven pairwise
    disjoint; None otherwise (then the formula is evaluated as written)."""
    terms = _sum_terms(root)
    parts = [_split_condition(t) for t in terms]
    if any(p is None for p in parts):
        return None
    keys = {p[1] for p in parts}  # type: ignore[index]
    if len(keys) != 1:
        return None
    ivs = [p[2] for p in parts]  # type: ignore[index]
    for i in range(len(ivs)):
        for j in range(i + 1, len(ivs)):
            if not ivs[i].disjoint(ivs[j]):
                return None
    return [(p[0], p[3]) for p in parts]  # type: ignore[index]


class _Program:
    """One compiled expression: its closures (or folded constant) and memo size."""

    def __init__(self, *roots: tuple):
        compiler = _Compiler(*roots)
        self.compiled = [compiler.compile(r) for r in roots]
        self.n_memo = len(compiler.slots)
        used: set[str] = set()
        for r in roots:
            _variables_used(r, used)
        self.used = tuple(v for v in ("x", "y", "z", "t") if v in used)

    def run(self, flat: Mapping[str, np.ndarray], size: int, out: np.ndarray) -> None:
        """``out[:size]`` = the (first) root's value on the variables ``flat``, chunked."""
        c = self.compiled[0]
        if isinstance(c, float):
            out[:size] = c
            return
        fn = c[0]
        for start in range(0, size, CHUNK):
            stop = min(start + CHUNK, size)
            env = {k: v[start:stop] for k, v in flat.items()}
            out[start:stop] = fn(env, [None] * self.n_memo)


def delphes_substitute(text: str) -> str:
    """Apply ``DelphesFormula::Compile``'s preprocessing: drop white space and backslashes,
    then replace ``pt``, ``eta``, ``phi``, ``energy``, ``d0``, ... textually, in order."""
    buf = "".join(ch for ch in text if ch not in " \t\r\n\\")
    for old, new in DELPHES_SUBSTITUTIONS:
        buf = buf.replace(old, new)
    return buf


def check_card_formula(text: str) -> None:
    """Refuse card formula text whose identifiers Delphes' substitution would corrupt.

    Every identifier must be exactly one of ``pt``, ``eta``, ``phi``, ``energy`` or a
    whitelisted function name; identifiers that merely *contain* a substituted letter
    sequence (``theta``, ``ptmin``, ``ephi``...) or that are bare TFormula variables
    (``x``, ``y``, ``z``, ``t``, which would silently alias pt, eta, phi, energy) raise.
    """
    for m in re.finditer(
        r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
        r"|[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*",
        text,
    ):
        name = m.group()
        if not (name[0].isalpha() or name[0] == "_"):
            continue  # a number such as 1.0e-4
        if name in DELPHES_VARIABLES:
            continue
        if name in _FUNCTIONS:
            hits = [old for old, _ in DELPHES_SUBSTITUTIONS if old in name]
            if hits:  # cannot happen for the whitelist, kept as a guard
                raise TFormulaError(f"function {name!r} contains {hits[0]!r}")
            continue
        if name in _TF_VARIABLES:
            raise TFormulaError(
                f"bare TFormula variable {name!r} at position {m.start()} "
                f"would alias {_TF_VARIABLES[name]!r}; write "
                f"{_TF_VARIABLES[name]!r}"
            )
        hits = [old for old, _ in DELPHES_SUBSTITUTIONS if old in name]
        if hits:
            raise TFormulaError(
                f"identifier {name!r} at position {m.start()} contains "
                f"{hits[0]!r}, which Delphes replaces textually (it would read "
                f"{delphes_substitute(name)!r})"
            )
        raise TFormulaError(f"unknown identifier {name!r} at position {m.start()}")


class TFormulaExpression:
    """A parsed (already substituted) TFormula text, evaluable in NumPy.

    Arguments:
        text: TFormula text in the variables ``x, y, z, t`` (what Delphes hands to ROOT).
            Use :meth:`from_card` for card text in ``pt, eta, phi, energy``.
        piecewise: Evaluate a piecewise sum region by region (below); False evaluates
            every term on every row, as written.

    **Piecewise sums.** When the text is a sum of terms ``c_k * v_k`` (also ``v_k * c_k``
    or ``c_k * a * b``, value ``a * b``) whose conditions ``c_k`` are comparisons of one
    expression ``K`` (e.g. ``abs(y)``) with constants, or conjunctions (``&&``) of such, and
    the intervals of ``K`` they select are *proven* pairwise disjoint from the parsed
    constants, each ``v_k`` is evaluated only on the rows where ``c_k`` holds; rows where no
    condition holds (``K`` NaN, or a gap between regions) are evaluated as written. Any
    other text (``||``, ``!=``, a term without condition, conditions on different
    expressions, overlapping or unprovable intervals) is evaluated as written.

    ROOT/Delphes evaluates every term: on a row of region ``k`` it computes ``v_k`` plus
    ``0 * v_j`` for every other term ``j``. That is ``v_k`` exactly (the single non-zero
    term of a left-to-right sum, and ``1 * v == v``), except

    * where some other term's value (for ``c_j * a * b``: one of its factors ``a``, ``b``)
      is ``±inf`` or NaN on that row: Delphes gives NaN (``0 * inf``), we give ``v_k``;
    * the sign of a zero result (``-0.0`` vs ``0.0``).

    The card linter (:func:`ariasim.apps.collider.delphes.lint_card_formula`) does *not* exclude
    the first case in general: it requires the whole sum, hence every term, to be finite
    only at the points of a grid (pT and energy 0.5-5000 GeV, |eta| up to the
    acceptance, phi = 0). For the cards ariasim writes, each value clamps pT/energy to its
    fitted range and (learned formulas) |eta| to its region, so a non-finite ``v_j`` would
    need a pole or overflow of the clamped fit between grid points; such a card would
    give NaN in Delphes where we give the region's value. :meth:`reference` is always the
    literal evaluation.

    Example:
        >>> f = TFormulaExpression.from_card(
        ...     "(abs(eta) <= 1.5) * (0.01 + 1.0e-4 * pt) + (abs(eta) > 1.5) * 0.05")
        >>> f(pt=[100.0, 100.0], eta=[0.0, 2.0]).tolist()
        [0.02, 0.05]
        >>> sorted(f.variables), f.n_regions
        (['eta', 'pt'], 2)
    """

    def __init__(self, text: str, *, piecewise: bool = True):
        self.text = text
        self._ast = Parser(text).parse()
        with _recursion_room():
            self._setup(piecewise)

    def _setup(self, piecewise: bool) -> None:
        self._used = tuple(
            v for v in ("x", "y", "z", "t") if v in _variables_used(self._ast, set())
        )
        terms = _piecewise_terms(self._ast) if piecewise else None
        self._generic: _Program | None = None
        if terms is None:
            self._regions: tuple[_Program, list[_Program]] | None = None
            self._generic = _Program(self._ast)
        else:
            self._regions = (_Program(*(c for c, _ in terms)), [_Program(v) for _, v in terms])

    @classmethod
    def from_card(
        cls, text: str, *, strict: bool = True, piecewise: bool = True
    ) -> TFormulaExpression:
        """Parse card text as Delphes does (substitution first). With ``strict``, first
        refuse identifiers the substitution would corrupt (:func:`check_card_formula`)."""
        if not isinstance(text, str):
            raise TFormulaError(f"expected formula text, got {type(text).__name__}")
        if len(text) > MAX_LENGTH:  # before the substitution and the identifier scan
            raise TFormulaError(f"formula longer than {MAX_LENGTH} characters")
        if strict:
            check_card_formula(text)
        return cls(delphes_substitute(text), piecewise=piecewise)

    @property
    def variables(self) -> set[str]:
        """Card variables (``pt``, ``eta``, ``phi``, ``energy``) the formula uses."""
        return {_TF_VARIABLES[v] for v in self._used}

    @property
    def n_regions(self) -> int:
        """Number of disjoint regions evaluated separately (0: evaluated as written)."""
        return 0 if self._regions is None else len(self._regions[1])

    def __call__(
        self, pt: Any = 0.0, eta: Any = 0.0, phi: Any = 0.0, energy: Any = 0.0
    ) -> np.ndarray:
        """Evaluate like ``DelphesFormula::Eval(pt, eta, phi, energy)``, vectorised.

        Uses the compiled form (chunked, constant-folded, common sub-expressions computed
        once, piecewise sums region by region); the values are identical to
        :meth:`reference`'s, except as stated in the class docstring for piecewise sums.
        """
        arrays = [np.asarray(v, dtype=float) for v in (pt, eta, phi, energy)]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat: dict[str, np.ndarray] = {
            name: np.broadcast_to(a, shape).ravel()
            for name, a in zip(("x", "y", "z", "t"), arrays, strict=True)
            if name in self._used
        }
        size = math.prod(shape)
        out = np.empty(size)
        with np.errstate(all="ignore"), _recursion_room():
            if self._regions is None:
                self._generic.run(flat, size, out)  # type: ignore[union-attr]
            else:
                self._run_regions(flat, size, out)
        return out.reshape(shape)

    def _run_regions(self, flat: Mapping[str, np.ndarray], size: int, out: np.ndarray) -> None:
        conds, values = self._regions  # type: ignore[misc]
        code = np.full(size, -1, dtype=np.int8 if len(values) < 127 else np.int32)
        fns = [c[0] for c in conds.compiled]  # type: ignore[index]  # never constant
        for start in range(0, size, CHUNK):
            stop = min(start + CHUNK, size)
            env = {k: v[start:stop] for k, v in flat.items() if k in conds.used}
            memo: list = [None] * conds.n_memo
            part = code[start:stop]
            for k, fn in enumerate(fns):
                part[fn(env, memo) != 0.0] = k  # disjoint: no row is claimed twice
        for k, prog in enumerate(values):
            idx = np.flatnonzero(code == k)
            if idx.size == size:  # one region holds every row: no gather and scatter
                prog.run({v: flat[v] for v in prog.used}, size, out)
                return
            if idx.size:
                self._run_on(prog, flat, idx, out)
        rest = np.flatnonzero(np.less(code, 0))
        if rest.size:
            if self._generic is None:
                self._generic = _Program(self._ast)  # compiled on first need only
            self._run_on(self._generic, flat, rest, out)

    @staticmethod
    def _run_on(
        prog: _Program, flat: Mapping[str, np.ndarray], idx: np.ndarray, out: np.ndarray
    ) -> None:
        """``out[idx]`` = ``prog`` evaluated on the rows ``idx``."""
        c = prog.compiled[0]
        if isinstance(c, float):
            out[idx] = c
            return
        sub: dict[str, np.ndarray] = {k: np.take(flat[k], idx) for k in prog.used}
        vals = np.empty(idx.size)
        prog.run(sub, idx.size, vals)
        out[idx] = vals

    def reference(
        self, pt: Any = 0.0, eta: Any = 0.0, phi: Any = 0.0, energy: Any = 0.0
    ) -> np.ndarray:
        """Evaluate by walking the AST node by node (the plain reference implementation of
        :meth:`__call__`, kept for testing the compiled form)."""
        arrays = [np.asarray(v, dtype=float) for v in (pt, eta, phi, energy)]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        env = dict(zip(("x", "y", "z", "t"), arrays, strict=True))
        with np.errstate(all="ignore"), _recursion_room():
            out = evaluate_ast(self._ast, env)
        return np.broadcast_to(np.asarray(out, dtype=float), shape).copy()


def evaluate_card_formula(
    text: str,
    pt: Any = 0.0,
    eta: Any = 0.0,
    phi: Any = 0.0,
    energy: Any = 0.0,
    *,
    strict: bool = True,
) -> np.ndarray:
    """Parse card formula ``text`` as Delphes does and evaluate it (convenience)."""
    return TFormulaExpression.from_card(text, strict=strict)(pt, eta, phi, energy)
