"""The command-line workflows: ``ariasim fit response`` and ``ariasim fastsim``.

The command line parses its options, calls :func:`run_fit_response` or :func:`run_fastsim`
and prints the result; everything between (reading, fitting, comparing, writing) lives here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ariasim.apps.collider.learn import ResponseLearner
from ariasim.apps.collider.model import ResponseModel
from ariasim.apps.collider.objects import select_events
from ariasim.errors import InputError

__all__ = ["FastsimResult", "read_tables", "read_truth", "run_fastsim", "run_fit_response"]

_EVENT_SUFFIXES = (".hepmc", ".hepmc3", ".lhe", ".lhe.gz")


@dataclass
class FastsimResult:
    """What :func:`run_fastsim` produced (tables are None without ``compare``).

    Example:
        >>> FastsimResult(fast=pd.DataFrame({"found": [True, False]})).n_found
        1
    """

    fast: pd.DataFrame
    pulls: pd.DataFrame | None = None
    auc: pd.DataFrame | None = None
    pull_bound: float | None = None
    versus: pd.DataFrame | None = None
    methods: pd.DataFrame | None = None
    written: list[Path] = field(default_factory=list)

    @property
    def n_found(self) -> int:
        return int(self.fast["found"].sum())


def read_truth(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A particle or full-simulation table (.parquet/.csv/.root) or HepMC3/LHE events."""
    from ariasim.io import read_table

    path = Path(path)
    if not path.exists():
        raise InputError("input not found", path=path)
    if path.name.lower().endswith(_EVENT_SUFFIXES):
        from ariasim.simulators.collider.inputs import read_events

        return read_events(path)
    return read_table(path)


def read_tables(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """The concatenated tables at ``paths`` (an error naming a missing one)."""
    from ariasim.io import read_table

    if not paths:
        raise InputError("no input table given")
    tables = []
    for p in paths:
        if not Path(p).exists():
            raise InputError("input table not found", path=p)
        tables.append(read_table(p))
    return pd.concat(tables, ignore_index=True)


def run_fit_response(learner: ResponseLearner, inputs: Sequence[str | os.PathLike[str]],
                     out: str | os.PathLike[str], *, events: str = "all",
                     stock_out: str | os.PathLike[str] | None = None) -> ResponseModel:
    """Fit ``learner`` on the full-simulation tables ``inputs`` and save its model.

    Arguments:
        learner: The response learner (e.g. :func:`~.learn.learner_for_method`).
        inputs: Full-simulation tables.
        out: Response model JSON to write.
        events: ``"all"``, ``"even"`` or ``"odd"`` event_id (hold the rest out).
        stock_out: Also fit and write the stock-form baseline model here.
    """
    from ariasim.apps.collider.stock import fit_stock

    source = ", ".join(str(p) for p in inputs)
    table = select_events(read_tables(inputs), events, source=source)
    model = learner.fit(table, source=source + (f" ({events} events)" if events != "all"
                                                else "")).model_
    model.metadata["events"] = events
    stock = (fit_stock(table, objects=list(model.objects), eta_max=learner.eta_max)
             if stock_out is not None else None)
    model.save(out)
    if stock is not None and stock_out is not None:
        stock.save(stock_out)
    return model


def _label(model: ResponseModel, path: Path, taken: set[str]) -> str:
    label = str(model.metadata.get("method") or path.stem)
    if label in taken:
        label = f"{label} ({path.stem})"
    taken.add(label)
    return label


def run_fastsim(response: str | os.PathLike[str], input_file: str | os.PathLike[str],
                out: str | os.PathLike[str], *, seed: int = 1, compare: bool = False,
                stock: str | os.PathLike[str] | None = None,
                report: str | os.PathLike[str] | None = None, events: str = "all",
                compare_with: Sequence[str | os.PathLike[str]] = ()) -> FastsimResult:
    """Apply a response model to truth particles; optionally compare fast vs full.

    Arguments:
        response: Response model JSON.
        input_file: Truth particles (see :func:`read_truth`); a full-simulation table for
            ``compare``.
        out: Output table (the full simulation's schema).
        seed: Random seed of the fast simulation (the stock model and the learner table
            use their own seeds, split from it).
        compare: Compare fast vs full on the input (binned pulls, classifier AUC).
        stock: Stock-form model to compare against too.
        report: HTML report to write (with ``compare``).
        events: ``"all"``, ``"even"`` or ``"odd"`` event_id.
        compare_with: Further response models for the learner table.
    """
    from ariasim.apps.collider.fastsim import fastsim
    from ariasim.io import write_table
    from ariasim.utils import spawn_seeds

    response, input_file, out = Path(response), Path(input_file), Path(out)
    model = ResponseModel.load(response)
    table = select_events(read_truth(input_file), events, source=input_file)
    fast = fastsim(table, model, seed, source=input_file)
    write_table(fast, out, producer="ariasim.apps.collider.fastsim",
                config={"response": str(response), "input": str(input_file), "events": events},
                seed=seed)
    result = FastsimResult(fast=fast, written=[out])
    if not compare:
        return result
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

    others = {Path(p): ResponseModel.load(p) for p in compare_with}  # fail before slow work
    taken: set[str] = set()
    ours_label = _label(model, response, taken)
    objs = list(model.objects)
    stock_seed, table_seed = spawn_seeds(seed, 2)
    result.pulls = pulls = binned_pulls(table, fast, objs)
    result.auc = auc = auc_table(table, fast, objs)
    result.pull_bound = pull_threshold(int(pulls[["eff_pull", "res_pull"]].notna().sum().sum()))
    spulls = sauc = None
    models = {ours_label: model}
    pre_p, pre_a = {ours_label: pulls}, {ours_label: auc}
    if stock is not None:
        smodel = ResponseModel.load(stock)
        sfast = fastsim(table, smodel, stock_seed)
        spulls = binned_pulls(table, sfast, objs)
        sauc = auc_table(table, sfast, objs)
        result.versus = ours_vs_stock(pulls, spulls)
        slabel = _label(smodel, Path(stock), taken)
        pre_p[slabel], pre_a[slabel] = spulls, sauc
    for p, m in others.items():
        models[_label(m, p, taken)] = m
    if stock is not None:
        models[slabel] = smodel
    if len(models) > 1:
        result.methods = method_table(models, table, seed=table_seed, pulls=pre_p, aucs=pre_a)
    if report is not None:
        from ariasim.apps.collider.report import make_report

        make_report(report, model, pulls=pulls, stock_pulls=spulls, auc=auc, stock_auc=sauc,
                    versus=result.versus, method_table=result.methods, card=card_text(model),
                    models={k: v for k, v in models.items() if k != ours_label})
        result.written.append(Path(report))
    return result
