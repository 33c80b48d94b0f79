"""The typer-free part of the command line: the plain ``ariasim fastsim`` and error lines.

Typer's machinery (typer, rich, click, and pydantic, through which typer coerces every
option value) costs about 0.14 s CPU at every start, more than reading, fast-simulating
and writing 200k particles. :func:`plain_fastsim` recognises the common, unambiguous
``ariasim fastsim`` command line by hand and returns the call of the same command body
(:func:`fastsim_body`) with the values typer would pass; anything else returns None and
goes through typer (:func:`ariasim.cli.commands.run`), so help, usage errors and their
messages stay typer's: ``--help``, ``--compare`` and the options that need it, an
unknown, repeated or abbreviated option, ``--opt=value``, short options run together,
``--``, an empty value or one starting with ``-``, a seed that is not plain digits, a
missing required option.

:func:`error_exit` turns ariasim's own errors and interruptions into the one line and exit
status that both ways print.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["error_exit", "fastsim_body", "one_line", "plain_fastsim"]

#: Options that take a value: flag -> parameter of the command function.
_VALUES = {
    "-r": "response",
    "--response": "response",
    "-i": "input_file",
    "--input": "input_file",
    "-o": "out",
    "--out": "out",
    "--seed": "seed",
    "--events": "events",
}
#: Switches: flag -> (parameter, value).
_SWITCHES = {
    "--overwrite": ("overwrite", True),
    "--shape": ("shape", True),
    "--no-shape": ("shape", False),
    "--no-compare": ("compare", False),
}
#: A seed as typer reads it without doubt: plain digits, no sign, no leading zero.
_SEED = re.compile(r"0|[1-9][0-9]{0,17}")


def plain_fastsim(args: list[str]) -> Callable[[], Any] | None:
    """The call that runs ``args`` (the command line without the program name) when it is
    a plain ``ariasim fastsim`` (module docstring), else None.

    Example:
        >>> plain_fastsim(["fastsim", "-r", "m.json", "-i", "t.parquet", "-o", "o.parquet"])
        ... # doctest: +ELLIPSIS
        functools.partial(<function fastsim_body at ...>, ...)
        >>> plain_fastsim(["fastsim", "-r", "m.json", "-i", "t.parquet", "-o", "o.parquet",
        ...                "--compare"]) is None
        True
    """
    import functools

    if not args or args[0] != "fastsim":
        return None
    given: dict[str, Any] = {}
    k = 1
    while k < len(args):
        token = args[k]
        value: Any
        if token in _VALUES:
            if k + 1 >= len(args):
                return None
            name, text = _VALUES[token], args[k + 1]
            if not text or text.startswith("-"):
                return None
            if name == "seed":
                if not _SEED.fullmatch(text):
                    return None
                value = int(text)
            else:
                value = text if name == "events" else Path(text)
            k += 2
        elif token in _SWITCHES:
            name, value = _SWITCHES[token]
            k += 1
        else:
            return None
        if name in given:
            return None
        given[name] = value
    if not {"response", "input_file", "out"} <= set(given):
        return None
    call = {
        "seed": 1,
        "compare": False,
        "stock": None,
        "report": None,
        "events": "all",
        "compare_with": None,
        "overwrite": False,
        "shape": True,
        **given,
    }
    return functools.partial(fastsim_body, **call, echo=_echo)


def _echo(text: str) -> None:
    """One line on stdout, as ``typer.echo`` writes it."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fastsim_body(
    *,
    response: Path,
    input_file: Path,
    out: Path,
    seed: int,
    compare: bool,
    stock: Path | None,
    report: Path | None,
    events: str,
    compare_with: list[Path] | None,
    overwrite: bool,
    shape: bool,
    echo: Callable[[str], Any],
    progress: Callable[[str], None] | None = None,
) -> Any:
    """``ariasim fastsim``'s work (the options of
    :func:`~ariasim.cli.fastsim.fastsim_command`): check the outputs, run
    :func:`~ariasim.apps.collider.workflow.run_fastsim`, ``echo`` the line of what was
    written; the result, whose comparison tables the typer command prints."""
    from ariasim.apps.collider.workflow import run_fastsim
    from ariasim.utils import check_outputs

    extra = {f"--compare-with #{k + 1}": p for k, p in enumerate(compare_with or [])}
    check_outputs(
        {"--out": out, "--report": report},
        inputs={"--input": input_file, "--response": response, "--stock": stock, **extra},
        suffixes={"--out": (".parquet", ".csv", ".root"), "--report": (".html",)},
        overwrite=overwrite,
    )
    r = run_fastsim(
        response,
        input_file,
        out,
        seed=seed,
        compare=compare,
        stock=stock,
        report=report,
        events=events,
        compare_with=compare_with or [],
        progress=progress if compare else None,
        shape=shape,
    )
    echo(f"wrote {out} ({r.n_found}/{r.n_particles} objects)")
    return r


def one_line(text: str) -> str:
    """``text`` on one line (runs of white space as one space)."""
    return " ".join(text.split())


def error_exit(exc: BaseException, args: list[str]) -> NoReturn:
    """Print the one line for an ariasim error (a
    :class:`~ariasim.errors.ConfigError` about a parameter with the flag of the command
    ``args`` runs) and exit with status 2; any other exception passed here is an
    interruption (Ctrl-C): a hint to resume, exit status 130."""
    from rich.console import Console
    from rich.markup import escape

    from ariasim.errors import AriasimError, ConfigError

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not isinstance(exc, AriasimError):
        err.print(
            "[bold red]interrupted[/]: nothing half-written was left; long commands "
            "continue where they stopped with --resume"
        )
        sys.exit(130)
    text = str(exc)
    if isinstance(exc, ConfigError):
        flag = None
        if exc.parameter and not exc.parameter.startswith("-"):
            from ariasim.cli.commands import flag_of, leaf_command

            flag = flag_of(leaf_command(args), exc.parameter)
        text = f"{flag}: {exc.message}" if flag else str(exc)
    err.print(f"[bold red]error:[/] {escape(one_line(text))}")
    sys.exit(2)
