"""``ariasim active``: run a staged pipeline under active control, and judge the gain.

Only light imports at module level (``ariasim --help`` stays fast); the engine, LightGBM and
Dask load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["active_evaluate_command", "active_run_command"]

PipelineOpt = Annotated[
    str,
    typer.Option(
        "--pipeline",
        "-p",
        help="muon | muon-upgoing | muon-bright | collider | module:function | "
        "file.py:function (returns a Pipeline).",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run folder (resumed if it exists).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (>= 0).")]
SizeOpt = Annotated[str, typer.Option("--size", help="Size of a reference pipeline: default | ci.")]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        help="sqrt (a = min(1, lambda sqrt(p)), unbiased) | density (flat in an observable) | "
        "threshold (biased, Belle II style) | brute (no control).",
    ),
]
AggressivenessOpt = Annotated[
    float,
    typer.Option("--aggressiveness", help="1 = the variance-times-cost optimum; > 1 skips more."),
]
AMinOpt = Annotated[float, typer.Option("--a-min", help="Floor of the acceptance (> 0).")]
ThresholdOpt = Annotated[
    float | None,
    typer.Option("--threshold", show_default="none", help="Pass-probability cut (threshold)."),
]
DensityOpt = Annotated[
    str | None,
    typer.Option(
        "--density-observable",
        show_default="none",
        help="Final-level observable to flatten (density mode).",
    ),
]
ChunkSizeOpt = Annotated[
    int | None,
    typer.Option("--chunk-size", show_default="the pipeline's", help="Events per chunk."),
]
WarmupOpt = Annotated[
    int, typer.Option("--warmup-chunks", help="Chunks simulated in full before control starts.")
]
PerRoundOpt = Annotated[
    int, typer.Option("--chunks-per-round", help="Chunks between two trainings of the model.")
]
LearnOpt = Annotated[
    str,
    typer.Option(
        "--learn",
        help="online (retrain as the labelled sample doubles) | freeze (train once).",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", show_default="in this process", help="Dask LocalCluster worker processes."
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", show_default="none", help="Address of a running Dask scheduler."),
]


def _pipeline_and_config(
    spec: str,
    size: str,
    mode: str,
    aggressiveness: float,
    a_min: float,
    threshold: float | None,
    density_observable: str | None,
    chunk_size: int | None,
    warmup_chunks: int,
    chunks_per_round: int,
    learn: str,
) -> tuple[Any, Any]:
    """The pipeline and the engine settings of a command; the settings are checked first,
    and the chunk size defaults to the pipeline's own suggestion."""
    from dataclasses import replace

    from ariasim.active.engine import ActiveConfig
    from ariasim.apps.active import resolve_pipeline

    cfg = ActiveConfig(
        chunk_size=1000 if chunk_size is None else chunk_size,
        warmup_chunks=warmup_chunks,
        chunks_per_round=chunks_per_round,
        learn=learn,
        mode=mode,
        aggressiveness=aggressiveness,
        a_min=a_min,
        threshold=threshold,
        density_observable=density_observable,
    )
    pipe = resolve_pipeline(spec, size)
    if chunk_size is None:
        cfg = replace(cfg, chunk_size=pipe.chunk_size)
    return pipe, cfg


def _chunk_printer(label: str) -> Any:
    from rich.console import Console

    console = Console(stderr=True)

    def show(done: int, total: int) -> None:
        console.print(f"{label}: chunk {done}/{total}", highlight=False)

    return show


def active_run_command(
    pipeline: PipelineOpt,
    out: OutOpt,
    budget_cpu_s: Annotated[
        float | None,
        typer.Option("--budget", show_default="none", help="CPU seconds to spend (all stages)."),
    ] = None,
    n_chunks: Annotated[
        int | None,
        typer.Option(
            "--chunks",
            show_default="none",
            help="Number of chunks (instead of or as a cap on --budget).",
        ),
    ] = None,
    size: SizeOpt = "default",
    mode: ModeOpt = "sqrt",
    aggressiveness: AggressivenessOpt = 1.0,
    a_min: AMinOpt = 0.01,
    threshold: ThresholdOpt = None,
    density_observable: DensityOpt = None,
    chunk_size: ChunkSizeOpt = None,
    warmup_chunks: WarmupOpt = 4,
    chunks_per_round: PerRoundOpt = 4,
    learn: LearnOpt = "online",
    seed: SeedOpt = 0,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Run a staged pipeline under active control (resumable: run it again to go on).

    Writes OUT/final.parquet (passing events, weight = generation weight x 1/a) and
    OUT/summary.json (rate, Kish effective events, CPU per stage).
    """
    from ariasim.apps.active import run_pipeline
    from ariasim.parallel import get_client
    from ariasim.utils import check_outputs

    check_outputs({"--out": out}, folders=("--out",), overwrite=True)
    pipe, cfg = _pipeline_and_config(
        pipeline,
        size,
        mode,
        aggressiveness,
        a_min,
        threshold,
        density_observable,
        chunk_size,
        warmup_chunks,
        chunks_per_round,
        learn,
    )
    with get_client(workers=workers, scheduler=scheduler) as client:
        _, summary = run_pipeline(
            pipe,
            out,
            seed=seed,
            n_chunks=n_chunks,
            budget_cpu_s=budget_cpu_s,
            config=cfg,
            client=client,
            progress=_chunk_printer(f"active run ({pipe.name})"),
        )
    typer.echo(
        f"{summary['n_generated']} events generated, {summary['n_final']} at final level, "
        f"rate {summary['rate']:.4g} ± {summary['rate_err']:.2g}, Kish N_eff "
        f"{summary['n_eff']:.1f}, CPU {summary['cpu_s']:.1f} s"
    )
    typer.echo(f"wrote {out / 'final.parquet'} and {out / 'summary.json'}")


def active_evaluate_command(
    pipeline: PipelineOpt,
    out: OutOpt,
    json_path: Annotated[
        Path | None, typer.Option("--json", show_default="none", help="Write summary.json here.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", show_default="none", help="Write an HTML report here."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            show_default="none",
            help="Folder of a long brute-force run ('ariasim active run --mode brute').",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="CI size, both arms and 10 coverage seeds, in minutes."),
    ] = False,
    brute_chunks: Annotated[
        int | None,
        typer.Option(
            "--brute-chunks",
            show_default="12 quick, 40 otherwise",
            help="Chunks of the brute-force arm (its CPU time is the budget).",
        ),
    ] = None,
    coverage_seeds: Annotated[
        int | None,
        typer.Option(
            "--coverage-seeds",
            show_default="10 quick, 0 otherwise",
            help="Repeated controlled runs for the coverage of the 68 % interval.",
        ),
    ] = None,
    scan: Annotated[
        bool,
        typer.Option("--scan", help="Also scan aggressiveness, a_min and training size."),
    ] = False,
    mode: ModeOpt = "sqrt",
    aggressiveness: AggressivenessOpt = 1.0,
    a_min: AMinOpt = 0.01,
    threshold: ThresholdOpt = None,
    density_observable: DensityOpt = None,
    chunk_size: ChunkSizeOpt = None,
    warmup_chunks: WarmupOpt = 4,
    chunks_per_round: PerRoundOpt = 4,
    learn: LearnOpt = "online",
    seed: SeedOpt = 0,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing --json / --report files.")
    ] = False,
) -> None:
    """Brute force against active control with the same CPU budget: gain, pulls, coverage.

    Needs --reference REF (a long brute-force run of the same pipeline) or --quick.
    """
    from ariasim.apps.active import (
        evaluate_active,
        load_reference,
        write_evaluation,
    )
    from ariasim.errors import ConfigError
    from ariasim.parallel import get_client
    from ariasim.utils import check_outputs

    if reference is None and not quick:
        raise ConfigError(
            "give --reference REF (a brute-force run) or --quick", parameter="reference"
        )
    check_outputs(
        {"--json": json_path, "--report": report, "--out": out},
        suffixes={"--json": (".json",), "--report": (".html",)},
        folders=("--out",),
        overwrite=overwrite,
    )
    pipe, cfg = _pipeline_and_config(
        pipeline,
        "ci" if quick else "default",
        mode,
        aggressiveness,
        a_min,
        threshold,
        density_observable,
        chunk_size,
        warmup_chunks,
        chunks_per_round,
        learn,
    )
    ref = load_reference(reference) if reference is not None else None
    from rich.console import Console

    console = Console(stderr=True)
    with get_client(workers=workers, scheduler=scheduler) as client:
        ev = evaluate_active(
            pipe,
            out,
            reference=ref,
            brute_chunks=brute_chunks if brute_chunks is not None else (12 if quick else 40),
            config=cfg,
            seed=seed,
            coverage_seeds=coverage_seeds if coverage_seeds is not None else (10 if quick else 0),
            scan={
                "aggressiveness": [0.5, 2.0, 4.0],
                "a_min": [0.003, 0.03],
                "max_train": [1000, 4000],
            }
            if scan
            else None,
            client=client,
            progress=lambda line: console.print(f"evaluate: {line}", highlight=False),
        )
    write_evaluation(ev, pipe, json_path=json_path, report_path=report)
    s = ev.summary
    line = (
        f"gain {s['gain']:.2f} (Kish N_eff per CPU s, controlled / brute force), "
        f"chi2/ndf {s['chi2_ndf']:.2f}, max |pull| {s['max_abs_pull']:.2f}"
    )
    if "coverage_68" in s:
        line += f", coverage {s['coverage_68']:.2f} ± {s['coverage_68_err']:.2f}"
    typer.echo(line)
    for p in (json_path, report):
        if p is not None:
            typer.echo(f"wrote {p}")
