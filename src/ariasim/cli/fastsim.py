"""``ariasim fastsim``: apply a learned detector response with Delphes' semantics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["fastsim_command"]


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
    from ariasim.apps.collider.fastsim import fastsim
    from ariasim.apps.collider.learn import select_events
    from ariasim.apps.collider.model import ResponseModel
    from ariasim.errors import InputError
    from ariasim.io import read_table, write_table

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
    write_table(fast, out, producer="ariasim.apps.collider.fastsim",
                config={"response": str(response), "input": str(input_file), "events": events},
                seed=seed)
    typer.echo(f"wrote {out} ({int(fast['found'].sum())}/{len(fast)} objects)")
    if not compare:
        return
    if "object_type" not in table.columns:
        raise InputError("--compare needs a full-simulation table as input", path=input_file,
                         column="object_type")
    from ariasim.apps.collider.compare import (
        auc_table,
        binned_pulls,
        method_table,
        ours_vs_stock,
        pull_threshold,
    )
    from ariasim.apps.collider.delphes import card_text

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
        from ariasim.apps.collider.report import make_report

        make_report(report, model, pulls=pulls, stock_pulls=spulls, auc=auc, stock_auc=sauc,
                    versus=versus, method_table=methods, card=card_text(model),
                    models={k: v for k, v in models.items() if k != ours_label})
        typer.echo(f"wrote {report}")
