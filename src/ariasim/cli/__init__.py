"""The ``ariasim`` command line: one entry point, one module per command group.

This package is the only place that imports typer (``DESIGN.md``). Each command group
owns a module here (:mod:`.simulate`, :mod:`.fit`, :mod:`.export`, :mod:`.fastsim`,
:mod:`.compare`, :mod:`.demo`) that defines its typer command functions with light
imports at module level (heavy imports happen inside the function), so ``ariasim --help``
stays fast. This file only wires them together and turns ariasim's own errors into a
one-line message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ariasim import __version__
from ariasim.errors import AriasimError

__all__ = ["app", "main"]

app = typer.Typer(
    name="ariasim",
    help="ariasim: cheaper physics simulation that stays true.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(help="Run a reference (first-principles) simulator.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
fit_app = typer.Typer(help="Learn interpretable surrogates from simulation tables.",
                      no_args_is_help=True)
app.add_typer(fit_app, name="fit")
export_app = typer.Typer(help="Export learned formulas to other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ariasim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """ariasim: cheaper physics simulation that stays true."""


def _register() -> None:
    from ariasim.cli.compare import compare_command
    from ariasim.cli.demo import demo_command
    from ariasim.cli.export import export_delphes_command
    from ariasim.cli.fastsim import fastsim_command
    from ariasim.cli.fit import fit_response_command
    from ariasim.cli.simulate import collider_command, photons_command

    app.command("demo")(demo_command)
    app.command("compare")(compare_command)
    app.command("fastsim")(fastsim_command)
    simulate_app.command("photons")(photons_command)
    simulate_app.command("collider")(collider_command)
    fit_app.command("response")(fit_response_command)
    export_app.command("delphes")(export_delphes_command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, prog_name="ariasim")
    except AriasimError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
