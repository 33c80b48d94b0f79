"""``ariasim fit``: learn interpretable surrogates from simulation tables.

Module-level imports are light; the work is imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["fit_density_command", "fit_response_command", "fit_symbolic_command"]


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
            help="compact (library of physics forms fitted to binned estimates, the "
            "smallest consistent with the best; formulas of <= ~30 nodes), kan (KAN + "
            "symbolic extraction), sr (symbolic regression on binned estimates) or poly "
            "(polynomial likelihood).",
        ),
    ] = "compact",
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
    ] = True,
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
        for nc in md.get("no_consistent_form", []):
            typer.echo(
                f"  {nc['quantity']} |eta| {nc['eta']}: no compact form consistent with the "
                "data (every member's chi2 p-value < 0.01; see the report's front)"
            )
        for ne in md.get("numeric_edges", []):
            typer.echo(
                f"  numeric KAN edges (layer, in, out) in {ne['quantity']} |eta| "
                f"{ne['eta']}: {ne['edges']}"
            )
    typer.echo(f"wrote {out}" + (f" and {stock_out}" if stock_out is not None else ""))


# --------------------------------------------------------------------- a user's own table
def _names(text: str, flag: str) -> list[str]:
    """Comma-separated column names of ``flag`` (no empty or repeated name)."""
    from ariasim.errors import ConfigError

    names = [n.strip() for n in text.split(",")]
    if not names or any(not n for n in names):
        raise ConfigError(f"expected comma-separated column names, got {text!r}", parameter=flag)
    if len(set(names)) != len(names):
        raise ConfigError(f"a column is named twice in {text!r}", parameter=flag)
    return names


def _units(text: str | None, columns: list[str]) -> dict[str, str]:
    """``--units a=m,b=s,y=m/s`` -> {column: unit}; every unit is checked here."""
    from ariasim.errors import ConfigError
    from ariasim.surrogates.units import parse_unit

    if text is None:
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        name, eq, unit = item.partition("=")
        name, unit = name.strip(), unit.strip()
        if not eq or not name:
            raise ConfigError(f"expected column=unit, got {item.strip()!r}", parameter="--units")
        if name not in columns:
            raise ConfigError(
                f"{name!r} is not one of the columns {', '.join(columns)}", parameter="--units"
            )
        try:
            parse_unit(unit)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc.message}", parameter="--units") from None
        out[name] = unit
    return out


def _read_columns(table: Path, columns: list[str]) -> tuple[Any, dict[str, int], int]:
    """The numeric ``columns`` of ``table`` (CSV/Parquet/ROOT) with the rows that hold a
    NaN or infinite value in any of them dropped; returns (frame, dropped per column,
    rows read). Errors name the file and the column."""
    import numpy as np
    import pandas as pd

    from ariasim.errors import InputError
    from ariasim.io import read_table

    df = read_table(table, columns=columns)
    out = {}
    for c in columns:
        try:
            out[c] = pd.to_numeric(df[c], errors="raise").astype(float)
        except (ValueError, TypeError):
            raise InputError("must hold numbers", path=table, column=c) from None
    num = pd.DataFrame(out)
    bad = ~np.isfinite(num.to_numpy())
    dropped = {c: int(bad[:, j].sum()) for j, c in enumerate(columns) if bad[:, j].any()}
    return num[~bad.any(axis=1)].reset_index(drop=True), dropped, len(df)


def _checked_outputs(table: Path, out: Path, overwrite: bool) -> Path:
    """Check ``--out`` and its summary beside it before any work; return the summary path."""
    from ariasim.utils import check_outputs

    summary = _summary_path(out)
    check_outputs(
        {"--out": out, "summary": summary},
        inputs={"TABLE": table},
        suffixes={"--out": (".json",)},
        overwrite=overwrite,
    )
    return summary


def _read_used(
    table: Path, used: list[str], weights: str | None, quiet: bool
) -> tuple[Any, dict[str, int], int]:
    """Read the ``used`` columns (non-finite rows dropped and reported) and check the
    weights; returns (frame, dropped per column, rows read)."""
    from ariasim.errors import InputError

    with _stage(f"reading {table}", quiet):
        df, dropped, n_read = _read_columns(table, used)
    _echo_dropped(dropped, n_read, len(df))
    if weights is not None and (df[weights] < 0).any():
        raise InputError("weights must be >= 0", path=table, column=weights)
    return df, dropped, n_read


def _summary_path(out: Path) -> Path:
    return out.with_name(f"{out.name[: -len(out.suffix)] or out.name}.summary.json")


def _echo_dropped(dropped: dict[str, int], n_read: int, n_used: int) -> None:
    if dropped:
        each = ", ".join(f"{c} {n}" for c, n in dropped.items())
        typer.echo(
            f"dropped {n_read - n_used} of {n_read} row(s) with a NaN or infinite value ({each})"
        )


def _stage(label: str, quiet: bool) -> Any:
    """A transient rich spinner with the elapsed time on stderr (a null context if quiet)."""
    import contextlib

    if quiet:
        return contextlib.nullcontext()
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    prog = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )

    @contextlib.contextmanager
    def run() -> Any:
        with prog:
            prog.add_task(label, total=None)
            yield

    return run()


def fit_symbolic_command(
    table: Annotated[Path, typer.Argument(help="Table to learn from (.csv, .parquet or .root).")],
    inputs: Annotated[
        str, typer.Option("--inputs", help="Input columns, comma-separated, e.g. a,b.")
    ],
    target: Annotated[str, typer.Option("--target", help="Column to explain, y = f(inputs).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Formula JSON to write (Formula.load reads it); a summary with the whole "
            "Pareto front goes next to it as NAME.summary.json.",
        ),
    ],
    units: Annotated[
        str | None,
        typer.Option(
            "--units",
            show_default="none",
            help="Units per column, e.g. a=m,b=s,y=m/s: dimensionally consistent formulas "
            "are preferred (see --units-mode).",
        ),
    ] = None,
    units_mode: Annotated[
        str,
        typer.Option(
            "--units-mode",
            help="prefer (consistent formulas win among those within noise) or require "
            "(only consistent formulas are chosen).",
        ),
    ] = "prefer",
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", show_default="none", help="Column of row weights (finite, >= 0)."
        ),
    ] = None,
    time_limit: Annotated[
        float,
        typer.Option("--time-limit", help="Wall-clock budget of the whole fit in seconds, > 0."),
    ] = 60.0,
    generations: Annotated[
        int | None,
        typer.Option(
            "--generations",
            show_default="none",
            help="Generation budget of the search: set it for a reproducible fit (the same "
            "table and seed give the same bytes); --time-limit then only caps the search.",
        ),
    ] = None,
    max_length: Annotated[
        int, typer.Option("--max-length", help="Largest expression tree searched, >= 3.")
    ] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Random seed, >= 0.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out and its summary.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no table.")] = False,
) -> None:
    """Find a formula target = f(inputs) in a table by symbolic regression.

    The search (Operon) returns a Pareto front of formulas (error against complexity);
    their constants are re-fitted in float64, near-simple constants are snapped, and the
    simplest formula whose held-out error is within noise of the best one is chosen
    (with --units, a dimensionally consistent one). Rows with a NaN or infinite value
    in a used column are dropped and counted.
    """
    import time
    from dataclasses import replace

    from ariasim.errors import ConfigError, InputError
    from ariasim.surrogates.parse import check_name
    from ariasim.surrogates.symbolic import SymbolicRegressor
    from ariasim.utils import to_jsonable, write_json

    summary = _checked_outputs(table, out, overwrite)
    names = _names(inputs, "--inputs")
    if target in names:
        raise ConfigError(f"{target!r} is also an input", parameter="--target")
    if weights is not None and weights in [*names, target]:
        raise ConfigError(f"{weights!r} is also an input or the target", parameter="--weights")
    unit_of = _units(units, [*names, target])
    if units_mode not in ("prefer", "require"):
        raise ConfigError(
            f"must be prefer or require, got {units_mode!r}", parameter="--units-mode"
        )
    if seed < 0:
        raise ConfigError(f"must be >= 0, got {seed}", parameter="--seed")
    used = names + [target] + ([weights] if weights else [])
    df, dropped, n_read = _read_used(table, used, weights, quiet)
    if len(df) < 6:
        raise InputError(f"{len(df)} usable row(s), need at least 6", path=table)
    # a column name that is no identifier (e.g. "sigma/pT") becomes y in the formula
    try:
        target_name = check_name(target)
    except ConfigError:
        target_name = next(n for n in ("y", "target", "y_") if n not in names)
    sr = SymbolicRegressor(
        max_time=time_limit,
        generations=generations,
        max_length=max_length,
        random_state=seed,
        target_name=target_name,
        target_unit=unit_of.get(target) if unit_of else None,
        variable_units=[unit_of.get(n, "") for n in names] if unit_of else None,
        units=units_mode if unit_of else "ignore",
    )
    t0 = time.perf_counter()
    with _stage(
        f"searching formulas for {target} = f({', '.join(names)}) on {len(df)} rows "
        f"(time limit {time_limit:g} s)",
        quiet,
    ):
        sr.fit(df[names], df[target], sample_weight=df[weights] if weights else None)
    fit_s = time.perf_counter() - t0
    front = sr.pareto_
    chosen = int(front.index[front["selected"]][0])
    best = int(front["val_mse"].idxmin())
    why = (
        f"{sr.formula_.metadata['selection']}: held-out MSE {front.loc[chosen, 'val_mse']:.4g} "
        f"(R2 {front.loc[chosen, 'val_r2']:.6f}) at complexity {front.loc[chosen, 'complexity']}"
        + (
            "; it is the most accurate formula on the front"
            if chosen == best
            else f"; the most accurate has MSE {front.loc[best, 'val_mse']:.4g} at complexity "
            f"{front.loc[best, 'complexity']}"
        )
        + (
            f"; dimensionally {'consistent' if front.loc[chosen, 'dims_ok'] else 'INCONSISTENT'}"
            if unit_of
            else ""
        )
    )
    output = sr.formula_.output
    if target_name != target:
        output = replace(output, description=f"column {target!r}")
    formula = sr.formula_.replace(
        output=output,
        metadata={
            **sr.formula_.metadata,
            "table": table.name,
            "target": target,
            "weights": weights,
            "n_rows": len(df),
            "n_dropped": n_read - len(df),
            "seed": seed,
        },
    )
    rows = to_jsonable(
        [{k: v for k, v in r.items() if k != "formula"} for r in front.to_dict("records")]
    )
    # the formula first, then the summary; each atomically
    formula.save(out)
    write_json(
        summary,
        {
            "table": str(table),
            "inputs": names,
            "target": target,
            "units": unit_of,
            "weights": weights,
            "n_rows_read": n_read,
            "n_rows_used": len(df),
            "dropped_non_finite": dropped,
            "time_limit_s": time_limit,
            "generations": generations,
            "seed": seed,
            "fit_s": round(fit_s, 3),
            "formula": str(formula),
            "why": why,
            "pareto_front": rows,
            "out": str(out),
        },
    )
    if not quiet:
        _print_front(front, unit_of != {})
    typer.echo(f"chosen: {target_name} = {formula}")
    for v in (*formula.variables, formula.output):
        if v.description.startswith("column "):  # a column name that is no identifier
            typer.echo(f"  {v.name} is the {v.description}")
    typer.echo(f"why: {why}")
    typer.echo(f"fit {fit_s:.1f} s; wrote {out} and {summary}")


def _print_front(front: Any, with_units: bool) -> None:
    """The Pareto front as a rich table (complexity, error, formula), the chosen row marked."""
    from rich.console import Console
    from rich.table import Table

    tab = Table(title="Pareto front (held-out error against complexity)")
    for col, just in (("", "left"), ("complexity", "right"), ("val MSE", "right")):
        tab.add_column(col, justify=just)  # type: ignore[arg-type]
    tab.add_column("val R2", justify="right")
    if with_units:
        tab.add_column("units ok")
    tab.add_column("formula", overflow="fold")
    for _, r in front.iterrows():
        cells = [
            "*" if r["selected"] else "",
            str(r["complexity"]),
            f"{r['val_mse']:.4g}",
            f"{r['val_r2']:.8f}",
        ]
        if with_units:
            cells.append("yes" if r["dims_ok"] else "no")
        tab.add_row(*cells, r["expression"])
    Console(soft_wrap=False).print(tab)


def fit_density_command(
    table: Annotated[Path, typer.Argument(help="Table to learn from (.csv, .parquet or .root).")],
    variable: Annotated[
        str, typer.Option("--variable", help="Column of the density's variable t (t >= --t-min).")
    ],
    conditions: Annotated[
        str,
        typer.Option("--conditions", help="Condition columns x, comma-separated: p(t | x)."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Density JSON to write (SymbolicDensity.from_dict reads it); a summary goes "
            "next to it as NAME.summary.json.",
        ),
    ],
    units: Annotated[
        str | None,
        typer.Option("--units", show_default="none", help="Units per column, e.g. t=ns,d=m."),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", show_default="none", help="Column of sample weights (finite, >= 0)."
        ),
    ] = None,
    components: Annotated[
        int, typer.Option("--components", help="Generalized-gamma components, 1 or 2.")
    ] = 1,
    param_model: Annotated[
        str,
        typer.Option(
            "--param-model",
            help="symbolic (symbolic regression for each parameter function; kept only if "
            "its likelihood beats the polynomial's) or poly (quadratic, fast).",
        ),
    ] = "symbolic",
    t_min: Annotated[
        float, typer.Option("--t-min", help="Lower end of the support of t (finite).")
    ] = 0.0,
    bins: Annotated[int, typer.Option("--bins", help="Condition bins, >= 3.")] = 30,
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit", help="Seconds of symbolic regression per parameter function, > 0."
        ),
    ] = 10.0,
    generations: Annotated[
        int | None,
        typer.Option(
            "--generations",
            show_default="none",
            help="Generation budget per parameter function (reproducible fits).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed, >= 0.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing --out and its summary.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Learn an analytic conditional density p(t | conditions) from a table.

    A mixture of generalized-gamma components whose parameters are formulas of the
    conditions (fitted per condition bin, then jointly by unbinned likelihood). Writes
    the density JSON and prints the CDF and each parameter's formula.
    """
    import math
    import time

    from ariasim.errors import ConfigError, InputError
    from ariasim.surrogates.density import SymbolicDensity
    from ariasim.utils import write_json

    summary = _checked_outputs(table, out, overwrite)
    names = _names(conditions, "--conditions")
    if variable in names:
        raise ConfigError(f"{variable!r} is also a condition", parameter="--variable")
    if weights is not None and weights in [*names, variable]:
        raise ConfigError(f"{weights!r} is also used as data", parameter="--weights")
    unit_of = _units(units, [*names, variable])
    checks = {
        "--components": components in (1, 2),
        "--param-model": param_model in ("symbolic", "poly"),
        "--t-min": math.isfinite(t_min),
        "--bins": bins >= 3,
        "--time-limit": time_limit > 0,
        "--seed": seed >= 0,
    }
    for flag, ok in checks.items():
        if not ok:
            raise ConfigError("invalid value (see --help)", parameter=flag)
    used = [variable] + names + ([weights] if weights else [])
    df, dropped, n_read = _read_used(table, used, weights, quiet)
    below = int((df[variable] < t_min).sum())
    if below:
        raise InputError(f"{below} value(s) below --t-min {t_min:g}", path=table, column=variable)
    min_per_bin = max(50, min(200, len(df) // (3 * bins) or 1))
    dens = SymbolicDensity(
        n_components=components,
        t_min=t_min,
        n_bins=bins,
        min_per_bin=min_per_bin,
        param_model=param_model,
        max_time=time_limit,
        generations=generations,
        random_state=seed,
        variable_names=names,
        variable_units=[unit_of.get(n, "") for n in names],
        t_name=variable,
        t_unit=unit_of.get(variable, ""),
    )
    t0 = time.perf_counter()
    with _stage(
        f"fitting p({variable} | {', '.join(names)}) on {len(df)} rows "
        f"({param_model} parameter functions)",
        quiet,
    ):
        dens.fit(
            df[names].to_numpy(),
            df[variable].to_numpy(),
            sample_weight=df[weights].to_numpy() if weights else None,
        )
    fit_s = time.perf_counter() - t0
    data = dens.to_dict()
    write_json(out, data)
    write_json(
        summary,
        {
            "table": str(table),
            "variable": variable,
            "conditions": names,
            "units": unit_of,
            "weights": weights,
            "n_rows_read": n_read,
            "n_rows_used": len(df),
            "dropped_non_finite": dropped,
            "param_model": param_model,
            "param_model_used": dens.param_model_used_,
            "nll_per_sample": float(dens.nll_),
            "cdf": str(dens.formula_),
            "params": {k: str(f) for k, f in dens.params_.items()},
            "time_limit_s": time_limit,
            "seed": seed,
            "fit_s": round(fit_s, 3),
            "out": str(out),
        },
    )
    typer.echo(
        f"parameter functions: {dens.param_model_used_}"
        + (
            " (the polynomial baseline had the better likelihood)"
            if param_model == "symbolic" and dens.param_model_used_ == "poly"
            else ""
        )
        + f"; mean negative log-likelihood {dens.nll_:.5g} per sample"
    )
    for k, f in dens.params_.items():
        typer.echo(f"  {k} = {f}")
    if not quiet:
        typer.echo(f"cdf({variable} | {', '.join(names)}) = {dens.formula_}")
    typer.echo(f"fit {fit_s:.1f} s; wrote {out} and {summary}")
