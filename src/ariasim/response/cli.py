"""Command functions: ``ariasim fit response``, ``ariasim export delphes``, ``ariasim fastsim``.

Module-level imports are light; the work is imported inside each command.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["export_delphes_command", "fastsim_command", "fit_response_command"]


def _read_tables(paths: list[Path]):  # type: ignore[no-untyped-def]
    import pandas as pd

    from ariasim.errors import InputError
    from ariasim.io import read_table

    if not paths:
        raise InputError("no input table given")
    tables = []
    for p in paths:
        if not Path(p).exists():
            raise InputError("input table not found", path=p)
        tables.append(read_table(p))
    return pd.concat(tables, ignore_index=True)


def fit_response_command(
    inputs: Annotated[list[Path], typer.Argument(help="Full-simulation tables (ariasim simulate collider output).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Response model JSON to write.")],
    objects: Annotated[list[str] | None, typer.Option("--object", help="Object types to learn (repeat): muon, electron, photon, charged_hadron, neutral_hadron; default all present.")] = None,
    method: Annotated[str, typer.Option("--method", help="kan (default), sr (symbolic regression) or poly (polynomial likelihood).")] = "kan",
    eta_max: Annotated[float, typer.Option("--eta-max", help="|eta| acceptance.")] = 2.5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Subsample cap per fit.")] = 20_000,
    epochs: Annotated[int | None, typer.Option("--epochs", help="KAN training epochs.")] = None,
    stock_out: Annotated[Path | None, typer.Option("--stock-out", help="Also write the stock-form baseline model here.")] = None,
) -> None:
    """Learn efficiency, scale and resolution formulas per object type from a full simulation."""
    from ariasim.response.learn import fit_response
    from ariasim.response.stock import fit_stock

    table = _read_tables(inputs)
    options = {"max_epochs": epochs} if (epochs and method == "kan") else {}
    model = fit_response(table, objects=objects or None, method=method, eta_max=eta_max,
                         seed=seed, options=options, max_rows=max_rows,
                         source=", ".join(str(p) for p in inputs))
    stock = fit_stock(table, objects=list(model.objects), eta_max=eta_max) if stock_out else None
    model.save(out)
    if stock is not None and stock_out is not None:
        stock.save(stock_out)
    for name, obj in model.objects.items():
        typer.echo(f"{name}: method {obj.metadata.get('method')}, "
                   f"{obj.metadata.get('n_passed')}/{obj.metadata.get('n_truth')} reconstructed")
    typer.echo(f"wrote {out}")


def export_delphes_command(
    response: Annotated[Path, typer.Argument(help="Response model JSON (ariasim fit response).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Delphes card (.tcl) to write.")],
    modules_out: Annotated[Path | None, typer.Option("--modules-out", help="Also write the per-object module blocks alone (for splicing).")] = None,
    bz: Annotated[float, typer.Option("--bz", help="Solenoid field [T] for ParticlePropagator.")] = 3.8,
    radius: Annotated[float, typer.Option("--radius", help="Field-volume radius [m].")] = 1.29,
    half_length: Annotated[float, typer.Option("--half-length", help="Field-volume half-length [m].")] = 3.0,
) -> None:
    """Write a complete, runnable Delphes card from a learned response model."""
    from ariasim.export.delphes import write_delphes_card
    from ariasim.response.model import ResponseModel

    model = ResponseModel.load(response)
    write_delphes_card(model, out, modules_path=modules_out, bz_t=bz, radius_m=radius,
                       half_length_m=half_length)
    typer.echo(f"wrote {out}" + (f" and {modules_out}" if modules_out else ""))


def fastsim_command(
    response: Annotated[Path, typer.Option("--response", "-r", help="Response model JSON.")],
    input_file: Annotated[Path, typer.Option("--input", "-i", help="Truth particles: a particle or full-simulation table (.parquet/.csv/.root), or HepMC3/LHE events.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (same schema as the full simulation).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="If the input is a full-simulation table, compare fast vs full on it.")] = False,
    stock: Annotated[Path | None, typer.Option("--stock", help="Stock-form model to compare against too.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here (with --compare).")] = None,
) -> None:
    """Ultra-fast simulation: apply a learned response with Delphes' semantics."""
    from ariasim.errors import InputError
    from ariasim.io import read_table, write_table
    from ariasim.response.fastsim import fastsim
    from ariasim.response.model import ResponseModel

    model = ResponseModel.load(response)
    if not input_file.exists():
        raise InputError("input not found", path=input_file)
    name = input_file.name.lower()
    if name.endswith((".hepmc", ".hepmc3", ".lhe", ".lhe.gz")):
        from ariasim.simulators.collider.inputs import read_events

        table = read_events(input_file)
    else:
        table = read_table(input_file)
    fast = fastsim(table, model, seed, source=input_file)
    write_table(fast, out, producer="ariasim.response.fastsim",
                config={"response": str(response), "input": str(input_file)}, seed=seed)
    typer.echo(f"wrote {out} ({int(fast['found'].sum())}/{len(fast)} objects)")
    if not compare:
        return
    if "object_type" not in table.columns:
        raise InputError("--compare needs a full-simulation table as input", path=input_file,
                         column="object_type")
    from ariasim.export.delphes import card_text
    from ariasim.response.compare import auc_table, binned_pulls, ours_vs_stock, pull_threshold

    objs = list(model.objects)
    pulls = binned_pulls(table, fast, objs)
    auc = auc_table(table, fast, objs)
    thr = pull_threshold(int(pulls[["eff_pull", "res_pull"]].notna().sum().sum()))
    typer.echo(auc[["object", "auc", "auc_err"]].to_string(index=False))
    typer.echo(f"max |efficiency pull| {pulls['eff_pull'].abs().max():.2f}, max |resolution pull| "
               f"{pulls['res_pull'].abs().max():.2f} (Bonferroni 1% bound {thr:.2f})")
    spulls = sauc = versus = None
    if stock is not None:
        smodel = ResponseModel.load(stock)
        sfast = fastsim(table, smodel, seed + 1)
        spulls = binned_pulls(table, sfast, objs)
        sauc = auc_table(table, sfast, objs)
        versus = ours_vs_stock(pulls, spulls)
        typer.echo(versus.to_string(index=False))
    if report is not None:
        from ariasim.response.report import make_report

        make_report(report, model, pulls=pulls, stock_pulls=spulls, auc=auc, stock_auc=sauc,
                    versus=versus, card=card_text(model))
        typer.echo(f"wrote {report}")
