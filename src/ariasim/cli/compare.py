"""The ``ariasim compare A B`` command: every sample-quality metric of two event tables.

Module-level imports are kept light (typer only); NumPy, pandas and the metrics are
imported when the command runs, so ``ariasim --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["compare_command"]


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [c.strip() for c in text.split(",") if c.strip()]
    return items or None


def _fmt(x: float) -> str:
    import math

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float) and (x == 0 or 1e-3 <= abs(x) < 1e5):
        return f"{x:.4g}"
    return f"{x:.3e}" if isinstance(x, float) else str(x)


def compare_command(
    a: Annotated[
        Path, typer.Argument(help="First table (Parquet, CSV or ROOT), e.g. the candidate.")
    ],
    b: Annotated[Path, typer.Argument(help="Second table, e.g. the reference.")],
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Comma-separated features; default: all numeric columns common to both.",
        ),
    ] = None,
    weight_column: Annotated[
        str | None, typer.Option("--weight-column", help="Per-event weight column in both tables.")
    ] = None,
    weight_column_a: Annotated[
        str | None,
        typer.Option(
            "--weight-column-a", help="Weight column of table A only (overrides --weight-column)."
        ),
    ] = None,
    weight_column_b: Annotated[
        str | None,
        typer.Option(
            "--weight-column-b", help="Weight column of table B only (overrides --weight-column)."
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Comma-separated metric names (default: all; 'moments' for the moment rows).",
        ),
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="z-scores and empirical p-values from IID repeats (pooled re-splits).",
        ),
    ] = False,
    n_repeats: Annotated[int, typer.Option("--n-repeats", help="Calibration repeats.")] = 100,
    max_samples: Annotated[
        int,
        typer.Option(
            "--max-samples", help="Row cap per sample for MMD and energy distance (O(n^2))."
        ),
    ] = 5000,
    max_rows: Annotated[
        int | None,
        typer.Option(
            "--max-rows", help="Use at most this many random rows of each table for every metric."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            show_default="none",
            help="Also write the table as JSON to this file (written atomically).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --json file.")
    ] = False,
) -> None:
    """Compare two event tables with every sample-quality metric and print a table.

    NaN or inf in a compared column means "no value" (e.g. the reconstructed quantities of
    particles that ariasim's collider simulation did not find): each column is compared
    on its rows with values, and an "efficiency" row gives the difference of the
    fractions of rows with a value (A - B) with its binomial uncertainty.
    """
    import math

    from rich import box
    from rich.console import Console
    from rich.table import Table

    from ariasim.errors import ConfigError
    from ariasim.metrics.compare import compare_files
    from ariasim.utils import check_outputs

    check_outputs(
        {"--json": json_out},
        inputs={"A": a, "B": b},
        suffixes={"--json": (".json",)},
        overwrite=overwrite,
    )
    wa = weight_column_a or weight_column
    wb = weight_column_b or weight_column
    try:
        table, _ = compare_files(
            a,
            b,
            columns=_split(columns),
            weight_column_a=wa,
            weight_column_b=wb,
            metrics=_split(metrics),
            calibrate=calibrate,
            n_repeats=n_repeats,
            max_samples=max_samples,
            max_rows=max_rows,
            seed=seed,
            json_out=json_out,
            overwrite=overwrite,
        )
    except ConfigError as exc:
        flag = _FLAGS.get(exc.parameter or "")
        if flag is None:
            raise
        prefix, text = f"parameter '{exc.parameter}': ", str(exc)
        raise ConfigError(
            text[len(prefix) :] if text.startswith(prefix) else text, parameter=flag
        ) from exc

    shown = {
        "metric": "metric",
        "feature": "feature",
        "value": "value",
        "uncertainty": "± unc.",
        "p_value": "p",
    }
    if calibrate:
        shown |= {"z": "z", "p_calibrated": "p (calib.)"}
    if table["ndf"].notna().any():
        shown |= {"ndf": "ndf"}
    shown |= {"n_a": "n_a", "n_b": "n_b"}
    out = Table(title=f"ariasim compare: A = {a.name}, B = {b.name}", box=box.SIMPLE_HEAD)
    for c, head in shown.items():
        out.add_column(
            head,
            justify="left" if c in ("metric", "feature") else "right",
            no_wrap=c in ("metric", "value"),
        )
    for rec in table.to_dict(orient="records"):
        rec["ndf"] = "" if math.isnan(rec["ndf"]) else str(int(rec["ndf"]))
        out.add_row(*(_fmt(rec[c]) if isinstance(rec[c], float) else str(rec[c]) for c in shown))
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=max(console.width, 120))
    console.print(out)

    for note in table.attrs.get("notes", []):
        Console(stderr=True).print(f"note: {note}", highlight=False)
    if json_out is not None:
        Console(stderr=True).print(f"wrote {json_out}")


#: compare_files' parameter names -> the flags of ``ariasim compare``.
_FLAGS = {
    "max_rows": "--max-rows",
    "max_samples": "--max-samples",
    "seed": "--seed",
    "n_repeats": "--n-repeats",
    "metrics": "--metrics",
    "columns": "--columns",
    "json_out": "--json",
    "weights_a": "--weight-column-a",
    "weights_b": "--weight-column-b",
}
