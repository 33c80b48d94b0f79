"""``ariasim shift``: learn the difference between two samples, correct events, validate.

Only light imports at module level (``ariasim --help`` stays fast); torch, zuko and LightGBM
load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "shift_apply_command",
    "shift_demo_command",
    "shift_fit_command",
    "shift_validate_command",
]

FeaturesOpt = Annotated[
    str | None,
    typer.Option(
        "--features",
        help="Comma-separated feature columns to correct (default: every numeric column the "
        "tables share, except the context).",
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="Comma-separated context columns the correction depends on (kept unchanged).",
    ),
]
MethodOpt = Annotated[
    str,
    typer.Option(
        "--method",
        "-m",
        help="flow (one conditional normalising flow) | flow-matching (OT flow matching) | "
        "quantile (chained conditional quantile regression with boosted trees, CMS) | "
        "reweight (calibrated classifier weights) | flow+reweight, flow-matching+reweight, "
        "quantile+reweight (morph, then weights for the residual: a morphed table with a "
        "weight column).",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (>= 0).")]
EpochsOpt = Annotated[
    int | None,
    typer.Option("--epochs", show_default="the method's", help="Training epochs (flows)."),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", show_default="cpu", help="cpu | cuda (flows)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
ContextBinsOpt = Annotated[
    int | None,
    typer.Option(
        "--context-bins",
        show_default="0 (off)",
        help="Flow matching: pair source and target events within this many quantile bins "
        "of each context column.",
    ),
]

QuantileKnotsOpt = Annotated[
    int | None,
    typer.Option(
        "--quantile-knots",
        show_default="0 (off)",
        help="FlowMorpher (flow, flow+reweight): map each feature through this many pooled "
        "quantiles to normal scores before the flow, so sharp shared structure (narrow peaks, "
        "gaps between counts) is kept exactly (e.g. 500 at 20k events per side).",
    ),
]

CrossFitOpt = Annotated[
    int | None,
    typer.Option(
        "--cross-fit",
        show_default="0 (off)",
        help="flow+reweight, flow-matching+reweight: train the reweighter on source rows "
        "morphed out of fold by morphers trained on the other K-1 of K folds (K >= 2), so it "
        "sees the residual the morpher leaves on rows it did not train on.",
    ),
]


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [c.strip() for c in text.split(",") if c.strip()]
    return items or None


def _printer() -> Any:
    from rich.console import Console

    console = Console(stderr=True, highlight=False)

    def show(line: str) -> None:
        console.print(f"[dim]shift:[/] {line}")

    return show


def _options(
    method: str,
    epochs: int | None,
    device: str | None,
    context_bins: int | None = None,
    quantile_knots: int | None = None,
    cross_fit: int | None = None,
) -> dict[str, Any]:
    from ariasim.errors import ConfigError

    opts: dict[str, Any] = {}
    if cross_fit is not None:
        if not method.endswith("+reweight"):
            raise ConfigError(
                f"applies to the +reweight methods only, not {method}",
                parameter="--cross-fit",
            )
        if cross_fit < 0 or cross_fit == 1:
            raise ConfigError(f"must be 0 (off) or >= 2, got {cross_fit}", parameter="--cross-fit")
        opts["cross_fit"] = cross_fit
    if quantile_knots is not None:
        if method not in ("flow", "flow+reweight"):
            raise ConfigError(
                f"applies to --method flow and flow+reweight only, not {method}",
                parameter="--quantile-knots",
            )
        if quantile_knots < 0 or quantile_knots == 1:
            raise ConfigError(
                f"must be 0 (off) or >= 2, got {quantile_knots}", parameter="--quantile-knots"
            )
        opts["quantile_knots"] = quantile_knots
    if context_bins is not None:
        if not method.startswith("flow-matching"):
            raise ConfigError(
                f"applies to flow matching only, not --method {method}", parameter="--context-bins"
            )
        if context_bins < 0:
            raise ConfigError(f"must be >= 0, got {context_bins}", parameter="--context-bins")
        opts["context_bins"] = context_bins
    for flag, value in (("--epochs", epochs), ("--device", device)):
        if value is not None and method.startswith("quantile"):
            raise ConfigError(f"does not apply to --method {method} (no network)", parameter=flag)
    if epochs is not None:
        if method == "reweight":
            raise ConfigError("does not apply to --method reweight", parameter="--epochs")
        if epochs < 1:
            raise ConfigError(f"must be at least 1, got {epochs}", parameter="--epochs")
        opts["max_epochs"] = epochs
    if device is not None:
        if method == "reweight":
            raise ConfigError("does not apply to --method reweight", parameter="--device")
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"must be cpu or cuda, got {device!r}", parameter="--device")
        opts["device"] = device
    return opts


def shift_fit_command(
    source: Annotated[Path, typer.Argument(help="Source sample (Parquet, CSV or ROOT).")],
    target: Annotated[Path, typer.Argument(help="Target sample, e.g. the new ice model.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    features: FeaturesOpt = None,
    context: ContextOpt = None,
    method: MethodOpt = "flow",
    source_weight: Annotated[
        str | None, typer.Option("--source-weight", help="Weight column of the source.")
    ] = None,
    target_weight: Annotated[
        str | None, typer.Option("--target-weight", help="Weight column of the target.")
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout",
            help="Fraction of each sample kept out of training, for the "
            "report's before/after figures.",
        ),
    ] = 0.2,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    context_bins: ContextBinsOpt = None,
    quantile_knots: QuantileKnotsOpt = None,
    cross_fit: CrossFitOpt = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Learn the shift from SOURCE to TARGET; write the model, report.html and summary.json."""
    from ariasim.shift.workflow import fit_files

    s = fit_files(
        source,
        target,
        out,
        method=method,
        features=_split(features),
        context=_split(context),
        source_weight=source_weight,
        target_weight=target_weight,
        holdout=holdout,
        seed=seed,
        options=_options(method, epochs, device, context_bins, quantile_knots, cross_fit),
        overwrite=overwrite,
        progress=_printer(),
    )
    comp = s.get("holdout_comparison")
    if comp:
        typer.echo(
            f"held-out AUC: {comp['auc_before']['value']:.4f} before, "
            f"{comp['auc_after']['value']:.4f} after "
            f"(0.5 = indistinguishable); report: {Path(out) / 'report.html'}"
        )


def shift_apply_command(
    model: Annotated[Path, typer.Argument(help="Model folder written by 'ariasim shift fit'.")],
    data: Annotated[Path, typer.Argument(help="Table to correct (Parquet, CSV or ROOT).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Corrected table to write.")],
    weight_name: Annotated[
        str, typer.Option("--weight-name", help="Name of the weight column (reweighters).")
    ] = "shift_weight",
    keep_original: Annotated[
        bool,
        typer.Option(
            "--keep-original/--no-keep-original",
            help="Keep the uncorrected features as <name>_original (morphers).",
        ),
    ] = True,
    overwrite: OverwriteOpt = False,
) -> None:
    """Correct DATA with MODEL: morphed feature columns, or a weight column."""
    from ariasim.shift.workflow import apply_model

    apply_model(
        model,
        data,
        out,
        weight_name=weight_name,
        keep_original=keep_original,
        overwrite=overwrite,
        progress=_printer(),
    )


def shift_validate_command(
    data: Annotated[Path, typer.Argument(help="A table of events (Parquet, CSV or ROOT).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    features: FeaturesOpt = None,
    context: ContextOpt = None,
    method: MethodOpt = "flow",
    n: Annotated[
        int | None,
        typer.Option(
            "--n",
            show_default="a third of the rows",
            help="Events per part (source, target to learn from, fresh target to judge on).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--auc-threshold",
            show_default="0.52 from 20k events per part, else 0.55",
            help="Pass if the AUC after is at most this.",
        ),
    ] = None,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    context_bins: ContextBinsOpt = None,
    quantile_knots: QuantileKnotsOpt = None,
    cross_fit: CrossFitOpt = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Inject known shifts into DATA, learn them back, and report how well they are undone."""
    from ariasim.shift.workflow import validate_file

    s = validate_file(
        data,
        out,
        method=method,
        features=_split(features),
        context=_split(context),
        n=n,
        auc_threshold=threshold,
        seed=seed,
        options=_options(method, epochs, device, context_bins, quantile_knots, cross_fit),
        overwrite=overwrite,
        progress=_printer(),
    )
    typer.echo(f"{s['n_passed']}/{s['n_cases']} cases pass; report: {Path(out) / 'report.html'}")


def shift_demo_command(
    application: Annotated[
        str,
        typer.Argument(
            help="ice (old -> new ice model) | detector (simulation -> 'data') | fastsim (KAN "
            "fast sim -> full sim) | photon-surrogate (surrogate -> photon MC) | active-bias "
            "(threshold-mode sample -> unbiased)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    n: Annotated[
        int,
        typer.Option(
            "--n",
            help="Rows per domain to judge the correction on (and, without --n-train, as many "
            "again to learn from).",
        ),
    ] = 2000,
    n_train: Annotated[
        int | None,
        typer.Option(
            "--n-train",
            show_default="--n",
            help="Rows per domain to learn the shift from (not for active-bias).",
        ),
    ] = None,
    n_train_source: Annotated[
        int | None,
        typer.Option(
            "--n-train-source",
            show_default="10x --n-train for fastsim's quantile methods, else --n-train",
            help="Source rows to learn the shift from (fastsim and photon-surrogate only: the "
            "extra rows come from their own fast simulation, seconds per million rows, or "
            "photon surrogate, about 0.26 CPU-ms per row). Set it to --n-train to learn from "
            "no extra rows.",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            "-m",
            show_default="the application's",
            help="flow | flow-matching | quantile | reweight | flow+reweight | "
            "flow-matching+reweight | quantile+reweight (active-bias: reweight | stratified).",
        ),
    ] = None,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    quantile_knots: QuantileKnotsOpt = None,
    cross_fit: CrossFitOpt = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Simulate two domains with ariasim's simulators, learn the shift, judge the correction."""
    from ariasim.apps.shift.applications import APPLICATIONS, run_application
    from ariasim.errors import ConfigError, check_int

    m = method or (APPLICATIONS[application].method if application in APPLICATIONS else "flow")
    if n_train is not None:  # before run_application, to name the flag
        check_int("--n-train", n_train, 200)
    if n_train is not None and application == "active-bias":
        raise ConfigError(
            "active-bias learns from its own control sample; leave it unset",
            parameter="--n-train",
        )
    if n_train_source is not None:
        check_int("--n-train-source", n_train_source, n if n_train is None else n_train)
        if application in APPLICATIONS and APPLICATIONS[application].extra_source is None:
            raise ConfigError(
                f"the {application} application cannot simulate extra source rows; leave it unset",
                parameter="--n-train-source",
            )
    s = run_application(
        application,
        out,
        n=n,
        n_train=n_train,
        n_train_source=n_train_source,
        method=method,
        seed=seed,
        options=_options(m, epochs, device, quantile_knots=quantile_knots, cross_fit=cross_fit),
        overwrite=overwrite,
        progress=_printer(),
    )
    c = s["cpu"]
    if "speedup_with_training" in c:
        cost = (
            f"CPU speed-up against re-simulating {c['speedup_with_training']:.3g}x (training "
            f"included), {c['speedup_with_simulation']:.3g}x (and the training target's "
            "simulation)"
        )
    else:  # active-bias: effective events per CPU second against the unbiased mode
        cost = f"{c['gain_vs_unbiased_mode']:.3g}x the unbiased mode's effective events per CPU s"
    typer.echo(
        f"AUC {s['auc_before']['value']:.4f} before, {s['auc_after']['value']:.4f} after; "
        f"{cost}; report: {Path(out) / 'report.html'}"
    )
