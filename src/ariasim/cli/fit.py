"""``ariasim fit``: learn interpretable surrogates from simulation tables.

Module-level imports are light; the work is imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["fit_response_command"]


def fit_response_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Full-simulation tables (ariasim simulate collider output); rows with a NaN or "
            "infinite truth value are dropped and counted."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Response model JSON to write (the same inputs and seed give the same bytes; "
            "fit times are printed, not saved).",
        ),
    ],
    objects: Annotated[
        list[str] | None,
        typer.Option(
            "--object",
            show_default="all with >= 50 truth particles",
            help="Object types to learn (repeat): muon, electron, photon, charged_hadron, "
            "neutral_hadron.",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="kan (KAN + symbolic extraction), sr (symbolic regression on binned "
            "estimates) or poly (polynomial likelihood).",
        ),
    ] = "kan",
    eta_max: Annotated[
        float, typer.Option("--eta-max", help="|eta| acceptance (pseudorapidity, no unit), > 0.")
    ] = 2.5,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed, >= 0 (split per object and region).")
    ] = 0,
    max_rows: Annotated[
        int,
        typer.Option(
            "--max-rows", help="Subsample cap per fit (rows per region and quantity), >= 1."
        ),
    ] = 20_000,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs", show_default="60", help="KAN training epochs (--method kan only)."
        ),
    ] = None,
    stock_out: Annotated[
        Path | None,
        typer.Option(
            "--stock-out",
            show_default="none",
            help="Also write the stock-form baseline model here (.json).",
        ),
    ] = None,
    events: Annotated[
        str,
        typer.Option(
            "--events",
            help="Learn from all events, or only the even / odd event_id (hold the "
            "rest out for 'ariasim fastsim --compare --events odd').",
        ),
    ] = "all",
    regions: Annotated[
        str,
        typer.Option(
            "--regions",
            help="auto (learned |eta| regions) or single (one formula over the acceptance).",
        ),
    ] = "auto",
    max_regions: Annotated[
        int | None,
        typer.Option(
            "--max-regions",
            show_default="4",
            help="At most this many learned |eta| regions per quantity, >= 1 (--regions auto "
            "only).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing --out and --stock-out files.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run with the same options and inputs: the "
            "objects it finished are kept, not refitted.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    shape: Annotated[
        bool,
        typer.Option(
            "--shape/--no-shape",
            help="Also learn each object's non-Gaussian reco/truth shape (quantile grid) "
            "for ariasim fastsim; the Delphes card keeps the Gaussian.",
        ),
    ] = False,
) -> None:
    """Learn efficiency, scale and resolution formulas per object type from a full simulation.

    Progress goes to stderr, one line per object, quantity and |eta| region. The model file
    holds no wall-clock time, so the same inputs, options and seed give a byte-identical
    file; the fit times are printed in the summary.
    """
    from ariasim.apps.collider.learn import TIMINGS_KEY, learner_for_method
    from ariasim.apps.collider.workflow import run_fit_response
    from ariasim.utils import check_outputs, run_folder

    # the outputs first, with the user's flags in the messages
    check_outputs(
        {"--out": out, "--stock-out": stock_out},
        inputs={str(p): p for p in inputs},
        suffixes={"--out": (".json",), "--stock-out": (".json",)},
        overwrite=overwrite,
    )
    # the one place where a method name becomes estimators (validates the options)
    learner = learner_for_method(
        method,
        epochs=epochs,
        regions=regions,
        max_regions=max_regions,
        objects=objects or None,
        eta_max=eta_max,
        max_rows=max_rows,
        random_state=seed,
    )

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    try:
        model = run_fit_response(
            learner,
            inputs,
            out,
            events=events,
            stock_out=stock_out,
            overwrite=overwrite,
            resume=resume,
            progress=None if quiet else progress,
            shape=shape,
        )
    except KeyboardInterrupt:
        if run_folder(out).exists():
            typer.echo(
                f"interrupted; the finished objects are kept in {run_folder(out)}: run "
                "the same command with --resume to continue",
                err=True,
            )
        raise typer.Exit(130) from None
    for col, n in model.metadata.get("dropped_rows", {}).items():
        typer.echo(f"dropped {n} input row(s) with a NaN or infinite {col}")
    for name, obj in model.objects.items():
        md = obj.metadata
        t = md.get(TIMINGS_KEY)
        when = (
            f"fit {t['fit_s']:.1f} s"
            + (f" (symbolic extraction {t['symbolic_s']:.1f} s)" if t.get("symbolic_s") else "")
            if t
            else "kept from the interrupted run"
        )
        typer.echo(
            f"{name}: method {md.get('method')}, {md.get('n_passed')}/{md.get('n_truth')} "
            f"reconstructed, |eta| regions {md.get('regions')}, {when}"
        )
        for fb in md.get("fallbacks", []):
            typer.echo(f"  {fb['quantity']} |eta| {fb['eta']}: {fb['fallback']}")
        for ne in md.get("numeric_edges", []):
            typer.echo(
                f"  numeric KAN edges (layer, in, out) in {ne['quantity']} |eta| "
                f"{ne['eta']}: {ne['edges']}"
            )
    typer.echo(f"wrote {out}" + (f" and {stock_out}" if stock_out is not None else ""))
