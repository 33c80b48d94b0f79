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
    events: Annotated[str, typer.Option("--events", help="Learn from all events, or only the even / odd event_id (hold the rest out for 'ariasim fastsim --compare --events odd').")] = "all",
    regions: Annotated[str, typer.Option("--regions", help="auto (learned |eta| regions) or single (one formula over the acceptance).")] = "auto",
    max_regions: Annotated[int, typer.Option("--max-regions", help="At most this many learned |eta| regions per quantity.")] = 4,
) -> None:
    """Learn efficiency, scale and resolution formulas per object type from a full simulation."""
    from ariasim.response.learn import fit_response, select_events
    from ariasim.response.stock import fit_stock

    source = ", ".join(str(p) for p in inputs)
    table = select_events(_read_tables(inputs), events, source=source)
    options = {"max_epochs": epochs} if (epochs and method == "kan") else {}
    model = fit_response(table, objects=objects or None, method=method, eta_max=eta_max,
                         seed=seed, options=options, max_rows=max_rows, regions=regions,
                         max_regions=max_regions,
                         source=source + (f" ({events} events)" if events != "all" else ""))
    model.metadata["events"] = events
    stock = fit_stock(table, objects=list(model.objects), eta_max=eta_max) if stock_out else None
    model.save(out)
    if stock is not None and stock_out is not None:
        stock.save(stock_out)
    for name, obj in model.objects.items():
        md = obj.metadata
        typer.echo(f"{name}: method {md.get('method')}, {md.get('n_passed')}/{md.get('n_truth')} "
                   f"reconstructed, |eta| regions {md.get('regions')}, fit {md.get('fit_s', 0):.1f} s"
                   + (f" (symbolic extraction {md['symbolic_s']:.1f} s)" if md.get("symbolic_s") else ""))
        for fb in md.get("fallbacks", []):
            typer.echo(f"  {fb['quantity']} |eta| {fb['eta']}: {fb['fallback']}")
        for ne in md.get("numeric_edges", []):
            typer.echo(f"  numeric KAN edges (layer, in, out) in {ne['quantity']} |eta| "
                       f"{ne['eta']}: {ne['edges']}")
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


def _label(model, path: Path, taken: set[str]) -> str:  # type: ignore[no-untyped-def]
    label = str(model.metadata.get("method") or path.stem)
    if label in taken:
        label = f"{label} ({path.stem})"
    taken.add(label)
    return label


def fastsim_command(
    response: Annotated[Path, typer.Option("--response", "-r", help="Response model JSON.")],
    input_file: Annotated[Path, typer.Option("--input", "-i", help="Truth particles: a particle or full-simulation table (.parquet/.csv/.root), or HepMC3/LHE events.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (same schema as the full simulation).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="If the input is a full-simulation table, compare fast vs full on it.")] = False,
    stock: Annotated[Path | None, typer.Option("--stock", help="Stock-form model to compare against too.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here (with --compare).")] = None,
    events: Annotated[str, typer.Option("--events", help="Use all events, or only the even / odd event_id (the held-out half of 'ariasim fit response --events even').")] = "all",
    compare_with: Annotated[list[Path] | None, typer.Option("--compare-with", help="Further response models (e.g. --method sr / poly) for the learner table (repeat; with --compare).")] = None,
) -> None:
    """Ultra-fast simulation: apply a learned response with Delphes' semantics."""
    from ariasim.errors import InputError
    from ariasim.io import read_table, write_table
    from ariasim.response.fastsim import fastsim
    from ariasim.response.learn import select_events
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
    table = select_events(table, events, source=input_file)
    fast = fastsim(table, model, seed, source=input_file)
    write_table(fast, out, producer="ariasim.response.fastsim",
                config={"response": str(response), "input": str(input_file), "events": events},
                seed=seed)
    typer.echo(f"wrote {out} ({int(fast['found'].sum())}/{len(fast)} objects)")
    if not compare:
        return
    if "object_type" not in table.columns:
        raise InputError("--compare needs a full-simulation table as input", path=input_file,
                         column="object_type")
    from ariasim.export.delphes import card_text
    from ariasim.response.compare import (
        auc_table,
        binned_pulls,
        method_table,
        ours_vs_stock,
        pull_threshold,
    )

    others = {}
    taken: set[str] = set()
    ours_label = _label(model, response, taken)
    for p in compare_with or []:
        others[p] = ResponseModel.load(p)  # fail early, before the slow part
    objs = list(model.objects)
    pulls = binned_pulls(table, fast, objs)
    auc = auc_table(table, fast, objs)
    thr = pull_threshold(int(pulls[["eff_pull", "res_pull"]].notna().sum().sum()))
    typer.echo(auc[["object", "auc", "auc_err"]].to_string(index=False))
    typer.echo(f"max |efficiency pull| {pulls['eff_pull'].abs().max():.2f}, max |resolution pull| "
               f"{pulls['res_pull'].abs().max():.2f} (Bonferroni 1% bound {thr:.2f})")
    spulls = sauc = versus = methods = None
    models = {ours_label: model}
    pre_p, pre_a = {ours_label: pulls}, {ours_label: auc}
    if stock is not None:
        smodel = ResponseModel.load(stock)
        sfast = fastsim(table, smodel, seed + 1)
        spulls = binned_pulls(table, sfast, objs)
        sauc = auc_table(table, sfast, objs)
        versus = ours_vs_stock(pulls, spulls)
        typer.echo(versus.to_string(index=False))
        slabel = _label(smodel, stock, taken)
        pre_p[slabel], pre_a[slabel] = spulls, sauc
    for p, m in others.items():
        models[_label(m, p, taken)] = m
    if stock is not None:
        models[slabel] = smodel
    if len(models) > 1:
        methods = method_table(models, table, seed=seed + 2, pulls=pre_p, aucs=pre_a)
        typer.echo(methods.to_string(index=False))
    if report is not None:
        from ariasim.response.report import make_report

        make_report(report, model, pulls=pulls, stock_pulls=spulls, auc=auc, stock_auc=sauc,
                    versus=versus, method_table=methods, card=card_text(model),
                    models={k: v for k, v in models.items() if k != ours_label})
        typer.echo(f"wrote {report}")
