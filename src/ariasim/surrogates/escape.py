"""Safe copying of text from model files into generated code and cards.

Exports copy names, units and descriptions read from a model file (user input) into C
source, Tcl (Delphes cards), LaTeX and error messages. Names must be identifiers
(:func:`ariasim.surrogates.parse.check_name`); free text goes through one of these
helpers, which either refuse it (:class:`~ariasim.errors.ConfigError` naming what it is)
or escape it so that it cannot end the comment or word it is written into, start a new
line of code, or run a command:

* :func:`c_comment_text`: text for inside a C block comment ``/* ... */``;
* :func:`tcl_text`: text for a Tcl card (a braced word or a comment), refused when it
  holds a character Tcl gives a meaning to; :func:`tcl_comment`: a whole ``# ...``
  comment line, unsafe characters replaced;
* :func:`latex_text`: text for LaTeX (``\\text{...}``), special characters escaped;
* :func:`quote_excerpt`: a short quoted excerpt of a long text for an error message.

Example:
    >>> print("/* unit: " + c_comment_text("m */ int evil; /*") + " */")
    /* unit: m * / int evil; / * */
    >>> tcl_text("set ExecutionPath {}", what="unit")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ariasim.errors.ConfigError: parameter 'unit': 'set ExecutionPath {}' contains '{', which ...
"""

from __future__ import annotations

import re

from ariasim.errors import ConfigError

__all__ = [
    "TCL_SAFE",
    "c_comment_text",
    "latex_text",
    "quote_excerpt",
    "tcl_comment",
    "tcl_text",
]

#: Characters :func:`tcl_text` accepts besides letters and digits (no newline, braces,
#: brackets, ``$``, ``;``, backslash or double quote: each means something to Tcl).
TCL_SAFE = " .,:+-*/^()_=<>!&|%'@#"
_TCL_OK = re.compile(r"[A-Za-z0-9" + re.escape(TCL_SAFE) + r"]*")


def _printable(text: str) -> str:
    """Printable ASCII only: any other character (newline, tab, NUL, non-ASCII, bidi
    controls) written as its Python escape, e.g. ``\\n``, ``\\u202e``."""
    return "".join(ch if " " <= ch <= "~" else ascii(ch)[1:-1] for ch in str(text))


def c_comment_text(text: str) -> str:
    """``text`` made safe inside a C block comment: one line of printable ASCII (other
    characters as escapes such as ``\\n``), and neither ``*/`` (which would end the
    comment) nor ``/*`` left in it. Line splices and trigraphs need a newline to do harm
    in a block comment, and none is left.

    Example:
        >>> c_comment_text("GeV */\\n#include <stdlib.h>")
        'GeV * /\\\\n#include <stdlib.h>'
    """
    out = _printable(text)
    while "*/" in out or "/*" in out:
        out = out.replace("*/", "* /").replace("/*", "/ *")
    return out


def tcl_text(text: str, *, what: str = "text") -> str:
    """Return ``text`` if it can be written into a Tcl card (inside a braced word or a
    comment) without changing the card's structure; raise otherwise.

    Only letters, digits and the characters of :data:`TCL_SAFE` are allowed: a newline
    would end a comment and start a command (``set ExecutionPath {}``), braces would
    close or open a block (Tcl counts braces even in comments), brackets run a command
    (``[exec ...]``), ``$`` substitutes a variable, ``;`` separates commands, backslash
    and double quote escape and quote. Spaces are allowed: inside braces or a comment
    they are harmless, but a *bare* word (a module or branch name) must be an identifier
    (:func:`ariasim.surrogates.parse.check_name`).

    Arguments:
        text: The text (a name, unit or description from a model file).
        what: What it is, named in the error (e.g. ``"unit of 'pt'"``, ``"--name"``).

    Raises:
        ConfigError: naming ``what`` and the first offending character.

    Example:
        >>> tcl_text("muon efficiency (|eta| < 2.4)")
        'muon efficiency (|eta| < 2.4)'
        >>> tcl_text("x\\nproc exit {} {}", what="description")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'description': 'x\\nproc exit {} {}' contains ...
    """
    if not isinstance(text, str):
        raise ConfigError(f"expected text, got {type(text).__name__}", parameter=what)
    m = _TCL_OK.match(text)
    if m is None or m.end() != len(text):
        bad = text[m.end() if m else 0]
        raise ConfigError(
            f"{quote_excerpt(text, m.end() if m else 0)} contains {bad!r}, "
            f"which a Tcl card cannot hold safely (allowed: letters, digits, "
            f"space and {' '.join(TCL_SAFE.strip())})",
            parameter=what,
        )
    return text


def tcl_comment(text: str) -> str:
    """A Tcl comment line ``# ...`` (no newline at the end) holding ``text`` with every
    character :func:`tcl_text` would refuse replaced by ``?`` (for free text that should
    be kept rather than refused, e.g. a description).

    Example:
        >>> tcl_comment("fit of {pt}\\nset ExecutionPath {}; while {1} {}")
        '# fit of ?pt??set ExecutionPath ??? while ?1? ??'
    """
    safe = "".join(ch if _TCL_OK.fullmatch(ch) else "?" for ch in str(text))
    return f"# {safe}"


_LATEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\^{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\~{}",
}


def latex_text(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and newlines made spaces, for
    ``\\text{...}`` or a caption.

    Example:
        >>> latex_text("50% of E_T} \\\\input{x}")
        '50\\\\% of E\\\\_T\\\\} \\\\textbackslash{}input\\\\{x\\\\}'
    """
    out = []
    for ch in _printable(str(text).replace("\r", " ").replace("\n", " ")):
        out.append(_LATEX.get(ch, ch))
    return "".join(out)


def quote_excerpt(text: str, pos: int = 0, *, width: int = 60) -> str:
    """``repr(text)``, or for a text longer than ``width + 20`` characters the ``repr`` of
    about ``width`` characters around ``pos`` with its length (for error messages).

    Example:
        >>> quote_excerpt("x" * 1000, 500, width=10)
        "...'xxxxxxxxxx'... (1000 characters)"
    """
    if len(text) <= width + 20:
        return repr(text)
    lo = max(0, pos - width // 2)
    head = "..." if lo else ""
    tail = "..." if lo + width < len(text) else ""
    return f"{head}{text[lo : lo + width]!r}{tail} ({len(text)} characters)"
