"""The ``ariasim`` command line: one entry point, one module per command group.

This package is the only place that imports typer (``DESIGN.md``). Each command group
owns a module here (:mod:`.simulate`, :mod:`.fit`, :mod:`.export`, :mod:`.fastsim`,
:mod:`.compare`, :mod:`.demo`); :mod:`.commands` wires them into the typer app
:data:`app` and runs a command line on it. :func:`main` imports none of it for the plain
``ariasim fastsim`` command line (:mod:`.plain`): typer's start-up costs more than the
fast simulation of 200k particles. Either way, ariasim's own errors become a one-line
message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Errors become one line on stderr and exit status 2: ariasim's own errors (a
    :class:`~ariasim.errors.ConfigError` about a parameter is shown with the flag the
    user typed) and usage errors (an unknown option, a value of the wrong type). An
    interruption (Ctrl-C) exits with 130 and a hint to resume.
    """
    from ariasim.cli.plain import error_exit, plain_fastsim
    from ariasim.errors import AriasimError

    args = sys.argv[1:] if argv is None else list(argv)
    call = plain_fastsim(args)
    if call is None:
        from ariasim.cli.commands import run

        run(args)
        return
    try:
        call()
    except (KeyboardInterrupt, AriasimError) as exc:
        error_exit(exc, args)
    sys.exit(0)


def __getattr__(name: str) -> Any:
    """:data:`app` and the rest of :mod:`.commands`, imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("ariasim.cli.commands"), name)


if __name__ == "__main__":  # pragma: no cover
    main()
