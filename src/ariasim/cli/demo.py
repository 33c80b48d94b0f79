"""``ariasim demo``: the photon-surrogate demo pipeline (:mod:`ariasim.apps.photons.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo_command"]


def demo_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output folder (report.html, metrics.json, timings.json, surrogate "
            "JSON files), written all or nothing.",
        ),
    ] = Path("demo-output"),
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (a few minutes).")] = False,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            help="Random seed, >= 0 (same seed, byte-identical metrics.json and "
            "surrogate files; timings.json differs).",
        ),
    ] = 1,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing non-empty --out folder.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted demo with the same options from its "
            "finished stages (tables, fits).",
        ),
    ] = False,
) -> None:
    """Photon surrogate demo: simulate, fit, validate against the MC and Pandel, report."""
    import dataclasses

    from ariasim.errors import ConfigError
    from ariasim.utils import check_outputs, run_folder, spawn_seeds

    # the output folder and the seed first, with the user's flags in the messages
    empty = out.is_dir() and not any(out.iterdir())
    check_outputs({"--out": out}, folders=("--out",), overwrite=overwrite or empty)
    if seed < 0:
        raise ConfigError(f"must be a non-negative integer, got {seed}", parameter="--seed")
    spawn_seeds(seed, 1)

    from ariasim.apps.photons.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick() if quick else DemoConfig()
    try:
        run_demo(
            out, config=dataclasses.replace(cfg, seed=seed), overwrite=overwrite, resume=resume
        )
    except KeyboardInterrupt:
        if run_folder(out).exists():
            typer.echo(
                f"interrupted; the finished stages are kept in {run_folder(out)}: run "
                "the same command with --resume to continue",
                err=True,
            )
        raise typer.Exit(130) from None
