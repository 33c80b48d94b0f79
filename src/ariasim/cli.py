"""The ``ariasim`` command line: one entry point, one sub-command per capability.

Each capability owns a small module that defines its typer command function with light
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


@app.command("demo")
def demo_command(
    out: str = typer.Option("demo-output", "--out", help="Output folder (report.html, "
                            "metrics.json, surrogate JSON files)."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (about 3 minutes)."),
    seed: int = typer.Option(1, "--seed", help="Random seed."),
) -> None:
    """Photon surrogate demo: simulate, fit, validate against the MC and Pandel, report."""
    import dataclasses

    from ariasim.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick() if quick else DemoConfig()
    run_demo(out, config=dataclasses.replace(cfg, seed=seed))


def _register() -> None:
    from ariasim.metrics.cli import compare_command
    from ariasim.response.cli import (
        export_delphes_command,
        fastsim_command,
        fit_response_command,
    )
    from ariasim.simulators.collider.cli import collider_command
    from ariasim.simulators.photons.cli import photons_command

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
