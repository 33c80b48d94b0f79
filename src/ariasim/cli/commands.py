"""The typer command tree of ``ariasim`` (:data:`app`) and the run of a command line on it.

Each command group owns a module of :mod:`ariasim.cli` (:mod:`.simulate`, :mod:`.fit`,
:mod:`.export`, :mod:`.fastsim`, :mod:`.compare`, :mod:`.demo`) that defines its typer
command functions with light imports at module level (heavy imports happen inside the
function), so ``ariasim --help`` stays fast. This module wires them together; :func:`run`
runs a command line and turns usage errors and ariasim's own errors into a one-line
message and exit status 2 instead of a traceback (:func:`ariasim.cli.plain.error_exit`).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

try:  # typer >= 0.20 vendors click as typer._click; older releases depend on click
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click  # type: ignore[no-redef]

from ariasim import __version__
from ariasim.cli.plain import error_exit, one_line
from ariasim.errors import AriasimError

__all__ = ["app", "flag_of", "leaf_command", "run"]

app = typer.Typer(
    name="ariasim",
    help="ariasim: cheaper physics simulation that stays true.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(
    help="Run a reference (first-principles) simulator.", no_args_is_help=True
)
app.add_typer(simulate_app, name="simulate")
fit_app = typer.Typer(
    help="Learn interpretable surrogates from simulation tables.", no_args_is_help=True
)
app.add_typer(fit_app, name="fit")
export_app = typer.Typer(help="Export learned formulas to other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")
active_app = typer.Typer(
    help="Active simulation control: spend the expensive stages on the events that matter.",
    no_args_is_help=True,
)
app.add_typer(active_app, name="active")
shift_app = typer.Typer(
    help="Domain shifts: learn the difference between two samples and correct events.",
    no_args_is_help=True,
)
app.add_typer(shift_app, name="shift")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ariasim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """ariasim: cheaper physics simulation that stays true."""


def _register() -> None:
    from ariasim.cli.active import active_evaluate_command, active_run_command
    from ariasim.cli.compare import compare_command
    from ariasim.cli.demo import demo_command
    from ariasim.cli.discover import discover_command
    from ariasim.cli.export import export_delphes_command, export_formula_command
    from ariasim.cli.fastsim import fastsim_command
    from ariasim.cli.fit import fit_density_command, fit_response_command, fit_symbolic_command
    from ariasim.cli.shift import (
        shift_apply_command,
        shift_demo_command,
        shift_fit_command,
        shift_validate_command,
    )
    from ariasim.cli.simulate import collider_command, photons_command

    app.command("demo")(demo_command)
    app.command("discover")(discover_command)
    app.command("compare")(compare_command)
    app.command("fastsim")(fastsim_command)
    simulate_app.command("photons")(photons_command)
    simulate_app.command("collider")(collider_command)
    fit_app.command("response")(fit_response_command)
    fit_app.command("symbolic")(fit_symbolic_command)
    fit_app.command("density")(fit_density_command)
    export_app.command("delphes")(export_delphes_command)
    export_app.command("formula")(export_formula_command)
    active_app.command("run")(active_run_command)
    active_app.command("evaluate")(active_evaluate_command)
    shift_app.command("fit")(shift_fit_command)
    shift_app.command("apply")(shift_apply_command)
    shift_app.command("validate")(shift_validate_command)
    shift_app.command("demo")(shift_demo_command)


_register()


def leaf_command(argv: list[str]) -> Any:
    """The (sub)command that ``argv`` invokes, found by walking the command groups."""
    cmd: Any = typer.main.get_command(app)
    for token in argv:
        if not hasattr(cmd, "commands"):
            break
        sub = cmd.commands.get(token)
        if sub is None:
            if token.startswith("-"):
                continue
            break
        cmd = sub
    return cmd


def flag_of(cmd: Any, parameter: str) -> str | None:
    """The command-line flag of the Python parameter ``parameter`` of ``cmd``."""
    if cmd is None:
        return None
    for p in cmd.params:
        if p.name == parameter:
            longs = [o for o in p.opts if o.startswith("--")]
            if longs:
                return longs[0]
            return (getattr(p, "human_readable_name", None) or parameter).upper()
    return None


def _show_every_default(cmd: Any) -> None:
    """Every option shows its default in ``--help``: an unset option (None) as "none", an
    off switch as "off" (typer shows neither), unless its help text states the default."""
    for sub in getattr(cmd, "commands", {}).values():
        _show_every_default(sub)
    for p in getattr(cmd, "params", []):
        if getattr(p, "param_type_name", "") != "option" or isinstance(p.show_default, str):
            continue
        if p.name == "help" or "default" in (p.help or ""):
            continue
        if p.default is None:
            p.show_default = "none"
        elif p.is_flag and p.default is False:
            p.show_default = "off"


def _command_for(args: list[str]) -> Any:
    """The click command tree that runs ``args``: for ``ariasim fastsim ...`` a tree of the
    root and that one command (the same function, options, help and errors), since
    converting every command of :data:`app` costs more start-up than the fast simulation
    of 20k particles; the whole tree otherwise."""
    if not args or args[0] != "fastsim":
        return typer.main.get_command(app)
    from ariasim.cli.fastsim import fastsim_command

    solo = typer.Typer(
        name=app.info.name,
        help=app.info.help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    solo.callback()(_root)
    solo.command("fastsim")(fastsim_command)
    return typer.main.get_command(solo)


def run(args: list[str]) -> None:
    """Run the command line ``args`` (without the program name) on :data:`app` and exit.

    Errors become one line on stderr and exit status 2: ariasim's own errors (a
    :class:`~ariasim.errors.ConfigError` about a parameter is shown with the flag the
    user typed) and usage errors (an unknown option, a value of the wrong type). An
    interruption (Ctrl-C) exits with 130 and a hint to resume.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    command = _command_for(args)
    _show_every_default(command)
    try:
        code = command.main(args=args, prog_name="ariasim", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx is not None else "")
        sys.exit(0)
    except click.exceptions.ClickException as exc:
        where = ""
        if isinstance(exc, click.exceptions.UsageError) and exc.ctx is not None:
            where = f"{exc.ctx.command_path}: "
        err.print(f"[bold red]error:[/] {escape(where + one_line(exc.format_message()))}")
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except (KeyboardInterrupt, typer.Abort, AriasimError) as exc:
        error_exit(exc, args)
    sys.exit(code if isinstance(code, int) else 0)
