"""``ariasim discover``: calibrate the shallow-flow model against observations and discover
its friction law (Bayesian, with a Gaussian-process emulator and active learning).

Only light imports at module level (``ariasim --help`` stays fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["discover_command"]


def _printer(quiet: bool) -> Any:
    if quiet:
        return None
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def show(label: str, done: int, total: int, message: str) -> None:
        where = f" [{done}/{total} runs]" if total else ""
        console.print(f"discover {label}{where}: {message}")

    return show


def discover_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="TOML file with the tables simulator, observations, terms.NAME, budget, mcmc, "
            "cascade, truth and a seed (see examples/voellmy_synthetic.toml).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output folder (reused to resume: cached runs are not redone)."
        ),
    ],
    json_path: Annotated[
        Path | None,
        typer.Option("--json", show_default="none", help="Also write summary.json here."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", show_default="in this process", help="Dask LocalCluster worker processes."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", show_default="none", help="Address of a running Dask scheduler."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --json file.")
    ] = False,
) -> None:
    """Calibrate the shallow-flow model against observed front positions / deposits and
    discover its friction law.

    Writes OUT/summary.json (inclusion probability per term, posterior median and 95 %
    interval per weight, covers_truth, simulator runs, the model cascade's evidence, the
    discovered formula), OUT/report.html, OUT/timings.json, OUT/runs_N<N>.csv and
    OUT/samples.csv. Run it again with the same OUT to resume: cached simulator runs are
    not redone.
    """
    from ariasim.apps.discovery.run import prepare_discovery, run_discovery
    from ariasim.parallel import check_workers, get_client

    if workers is not None:
        check_workers(workers, "--workers")
    prepare_discovery(
        config, out, json_path=json_path, overwrite=overwrite
    )  # every check before a cluster starts
    labels = {"workers": "--workers", "scheduler": "--scheduler"}
    with get_client(workers=workers, scheduler=scheduler, labels=labels) as client:
        summary = run_discovery(
            config,
            out,
            json_path=json_path,
            progress=_printer(quiet),
            client=client,
            overwrite=overwrite,
        )
    inc = ", ".join(f"{k} {v:.2f}" for k, v in summary["inclusion"].items())
    typer.echo(f"inclusion probabilities: {inc}")
    typer.echo(f"discovered law (N = {summary['chosen_moments']}): S = {summary['formula']}")
    typer.echo(f"{summary['simulator_runs']} simulator runs")
    typer.echo(f"wrote {out / 'summary.json'} and {out / 'report.html'}")
    if json_path is not None:
        typer.echo(f"wrote {json_path}")
