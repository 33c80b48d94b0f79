"""``ariasim fastsim``: apply a learned detector response with Delphes' semantics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["fastsim_command"]


def fastsim_command(
    response: Annotated[Path, typer.Option("--response", "-r", help="Response model JSON.")],
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help=(
                "Truth particles: a particle table (.parquet/.csv/.root; event_id, pdg and "
                "px_gev, py_gev, pz_gev or pt_gev, eta, phi; see the README's particle-table "
                "schema; 'ariasim simulate collider --truth-only' writes one), a full-simulation "
                "table (its truth columns; needed for --compare), or HepMC3 (.hepmc, .hepmc3) "
                "/ LHE (.lhe, .lhe.gz) events."
            ),
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output table (.parquet/.csv/.root; same schema as the full simulation).",
        ),
    ],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed of the fast simulation (>= 0).")
    ] = 1,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="If the input is a full-simulation table, compare fast vs full on it.",
        ),
    ] = False,
    stock: Annotated[
        Path | None,
        typer.Option(
            "--stock",
            show_default="none",
            help="Stock-form model to compare against too (with --compare).",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            show_default="none",
            help="Write an HTML report (.html) here (with --compare).",
        ),
    ] = None,
    events: Annotated[
        str,
        typer.Option(
            "--events",
            help=(
                "Use all events, or only the even / odd event_id (the held-out half of 'ariasim "
                "fit response --events even'): all, even or odd."
            ),
        ),
    ] = "all",
    compare_with: Annotated[
        list[Path] | None,
        typer.Option(
            "--compare-with",
            show_default="none",
            help=(
                "Further response models (e.g. --method sr / poly) for the learner table "
                "(repeat; with --compare)."
            ),
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing --out / --report files.")
    ] = False,
    shape: Annotated[
        bool,
        typer.Option(
            "--shape/--no-shape",
            help="Sample reco/truth from the model's non-Gaussian shapes where it has them "
            "(ariasim fit response --shape); --no-shape: the card's Gaussian smearing.",
        ),
    ] = True,
) -> None:
    """Ultra-fast simulation: apply a learned response with Delphes' semantics.

    Outputs are checked first and written together at the end; same seed, same table.
    """
    from rich.console import Console

    from ariasim.cli.plain import fastsim_body

    console = Console(stderr=True)

    def progress(text: str) -> None:
        console.print(f"fastsim: {text}", highlight=False)

    r = fastsim_body(
        response=response,
        input_file=input_file,
        out=out,
        seed=seed,
        compare=compare,
        stock=stock,
        report=report,
        events=events,
        compare_with=compare_with,
        overwrite=overwrite,
        shape=shape,
        echo=typer.echo,
        progress=progress,
    )
    if r.pulls is None or r.auc is None:
        return
    typer.echo(r.auc[["object", "auc", "auc_err"]].to_string(index=False))
    typer.echo(
        f"max |efficiency pull| {r.pulls['eff_pull'].abs().max():.2f}, max |resolution "
        f"pull| {r.pulls['res_pull'].abs().max():.2f} (Bonferroni 1% bound "
        f"{r.pull_bound:.2f})"
    )
    if r.quantile_summary is not None and not r.quantile_summary.empty:
        typer.echo("reco/truth quantiles 1-99 % per bin (bins passing: every |pull| < bound):")
        typer.echo(r.quantile_summary.to_string(index=False))
    if r.versus is not None:
        typer.echo(r.versus.to_string(index=False))
    if r.methods is not None:
        typer.echo(r.methods.to_string(index=False))
    if report is not None:
        typer.echo(f"wrote {report}")
