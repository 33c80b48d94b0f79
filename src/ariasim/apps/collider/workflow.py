"""The command-line workflows: ``ariasim fit response`` and ``ariasim fastsim``.

The command line parses its options, calls :func:`run_fit_response` or :func:`run_fastsim`
and prints the result; everything between (reading, fitting, comparing, writing) lives here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ariasim.apps.collider.model import ObjectResponse, ResponseModel
from ariasim.apps.collider.objects import select_events
from ariasim.errors import ConfigError, InputError

if TYPE_CHECKING:  # scikit-learn and the learners are not needed to apply a model, nor
    # pandas to apply it to a Parquet table (ariasim.apps.collider.columns)
    import pandas as pd

    from ariasim.apps.collider.learn import ResponseLearner

__all__ = [
    "FastsimResult",
    "drop_bad_rows",
    "read_tables",
    "read_truth",
    "run_fastsim",
    "run_fit_response",
]


@dataclass
class FastsimResult:
    """What :func:`run_fastsim` produced (tables are None without ``compare``).

    ``table`` is the fast-simulated table as :func:`run_fastsim` made it: a DataFrame, or
    its columns (:meth:`FastSimulator.columns
    <ariasim.apps.collider.fastsim.FastSimulator.columns>`) when the run needed no pandas;
    :attr:`fast` is it as a DataFrame either way.

    Example:
        >>> import pandas as pd
        >>> r = FastsimResult(pd.DataFrame({"found": [True, False]}))
        >>> r.n_found, r.n_particles
        (1, 2)
    """

    table: Any
    pulls: pd.DataFrame | None = None
    auc: pd.DataFrame | None = None
    pull_bound: float | None = None
    versus: pd.DataFrame | None = None
    methods: pd.DataFrame | None = None
    written: list[Path] = field(default_factory=list)
    stock_pulls: pd.DataFrame | None = None
    stock_auc: pd.DataFrame | None = None
    models: dict[str, ResponseModel] = field(default_factory=dict)
    label: str | None = None
    #: Per-bin reco/truth quantiles fast vs full (:func:`~.shape.quantile_table`), their
    #: per-object summary and the full simulation's non-Gaussian tail fractions.
    quantiles: pd.DataFrame | None = None
    quantile_summary: pd.DataFrame | None = None
    tails: pd.DataFrame | None = None

    @property
    def fast(self) -> pd.DataFrame:
        """The fast-simulated table as a DataFrame (made from the columns on first use)."""
        from ariasim.apps.collider.fastsim import columns_frame

        if isinstance(self.table, Mapping):
            self.table = columns_frame(self.table)
        return self.table

    @property
    def n_found(self) -> int:
        """Particles reconstructed as an object."""
        return int(np.count_nonzero(self.table["found"]))

    @property
    def n_particles(self) -> int:
        """Particles simulated."""
        return len(self.table["found"])


def read_truth(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A full-simulation table as it is (for ``--compare``), or the particles of a particle
    table (.parquet/.csv/.root) or of HepMC3/LHE events, read, checked and completed as
    ``simulate collider --input`` reads them
    (:func:`~ariasim.simulators.collider.inputs.read_particles`)."""
    from ariasim.io import read_table
    from ariasim.simulators.collider.inputs import (
        EVENT_SUFFIXES,
        particles_from_table,
        read_particles,
    )

    path = Path(path)
    if not path.exists():
        raise InputError("input not found", path=path)
    if path.name.lower().endswith(EVENT_SUFFIXES):
        return read_particles(path)
    table = read_table(path)
    if "truth_pt_gev" in table.columns:
        return table
    return particles_from_table(table, source=path)


def read_tables(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """The concatenated tables at ``paths`` (an error naming a missing or empty one)."""
    import pandas as pd

    from ariasim.io import read_table

    if not paths:
        raise InputError("no input table given")
    tables = []
    for p in paths:
        if not Path(p).exists():
            raise InputError("input table not found", path=p)
        if Path(p).is_dir():
            raise InputError("input table is a folder", path=p)
        t = read_table(p)
        if len(t) == 0:
            raise InputError("the table has no rows", path=p)
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


#: Truth columns whose non-finite values make a row unusable (the row is dropped and
#: counted; reco columns are NaN for unreconstructed particles by design).
_TRUTH_COLUMNS = ("pdg", "truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev")


def drop_bad_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """``table`` without the rows whose truth values are NaN or infinite, and the number of
    such rows per column (a row bad in two columns counts in both).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"pdg": [13, 13], "truth_pt_gev": [1.0, float("nan")],
        ...                   "truth_eta": 0.0, "truth_phi": 0.0, "truth_e_gev": 1.0})
        >>> kept, dropped = drop_bad_rows(t)
        >>> len(kept), dropped
        (1, {'truth_pt_gev': 1})
    """
    import pandas as pd

    bad = np.zeros(len(table), dtype=bool)
    dropped: dict[str, int] = {}
    for col in _TRUTH_COLUMNS:
        if col not in table.columns:
            continue
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        b = ~np.isfinite(v)
        if b.any():
            dropped[col] = int(b.sum())
            bad |= b
    if not bad.any():
        return table, dropped
    return table.loc[~bad].reset_index(drop=True), dropped


def _fit_key(learner: ResponseLearner, inputs: Sequence[Path], events: str) -> str:
    """What a resumed run must share with the interrupted one: the learner's parameters,
    the event selection and the input files' contents."""
    import hashlib
    import json

    h = hashlib.sha256()
    params = {k: repr(v) for k, v in sorted(learner.get_params(deep=True).items())}
    h.update(
        json.dumps(
            {"params": params, "events": events, "inputs": [str(p) for p in inputs]}, sort_keys=True
        ).encode()
    )
    for p in inputs:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def run_fit_response(
    learner: ResponseLearner,
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    events: str = "all",
    stock_out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
    _after_object: Callable[[str], None] | None = None,
    shape: bool = False,
) -> ResponseModel:
    """Fit ``learner`` on the full-simulation tables ``inputs`` and save its model.

    The outputs are checked before anything is read, and written all or nothing (both
    files to temporaries, renamed at the end). The model file depends only on the inputs,
    the options and the seed (the wall-clock timings stay in memory, under
    ``metadata["_timings"]``). Each learned object is kept in a hidden run folder beside
    ``out`` (:func:`ariasim.utils.run_folder`) until the end, so that ``resume=True``
    continues an interrupted run without refitting them, with the same result.

    Arguments:
        learner: The response learner (e.g. :func:`~.learn.learner_for_method`).
        inputs: Full-simulation tables; rows with NaN or infinite truth values are
            dropped (counted per column in ``metadata["dropped_rows"]``).
        out: Response model JSON to write.
        events: ``"all"``, ``"even"`` or ``"odd"`` event_id (hold the rest out).
        stock_out: Also fit and write the stock-form baseline model here.
        overwrite: Replace existing outputs.
        resume: Keep the objects learned by an interrupted run with the same options.
        progress: Called with a line of text at each stage.
        shape: Also fit each object's non-Gaussian response shape
            (:func:`~ariasim.apps.collider.shape.fit_shapes`, used by the fast simulation,
            ignored by the Delphes card).
    """
    import json
    import shutil

    from ariasim.apps.collider.objects import REQUIRED_COLUMNS
    from ariasim.apps.collider.stock import fit_stock
    from ariasim.errors import ConfigError
    from ariasim.utils import (
        atomic_path,
        check_outputs,
        open_run_folder,
        write_json,
    )

    paths = [Path(p) for p in inputs]
    out = Path(out)
    seen: set[Path] = set()
    for p in paths:
        if p.resolve() in seen:
            raise InputError("input table given twice (its rows would count double)", path=p)
        seen.add(p.resolve())
    check_outputs(
        {"--out": out, "--stock-out": stock_out},
        inputs={str(p): p for p in paths},
        suffixes={"--out": (".json",), "--stock-out": (".json",)},
        overwrite=overwrite,
    )
    if events not in ("all", "even", "odd"):
        raise ConfigError(f"must be 'all', 'even' or 'odd', got {events!r}", parameter="events")
    say = progress or (lambda line: None)
    source = ", ".join(str(p) for p in inputs)
    say(f"reading {source}")
    table = read_tables(paths)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            "not a full-simulation table (ariasim simulate collider output): missing columns",
            path=source,
            column=", ".join(missing),
        )
    table, dropped = drop_bad_rows(table)
    for col, n in dropped.items():
        say(f"dropped {n} row(s) with a NaN or infinite {col}")
    table = select_events(table, events, source=source)
    folder, resumed = open_run_folder(out, _fit_key(learner, paths, events), resume=resume)
    done: dict[str, ObjectResponse] = {}
    for part in sorted(folder.glob("object-*.json")) if resumed else []:
        obj = ObjectResponse.from_dict(json.loads(part.read_text()), source=part)
        done[obj.name] = obj

    def keep(name: str, obj: ObjectResponse) -> None:
        write_json(folder / f"object-{name}.json", obj.to_dict(), default=float)
        if _after_object is not None:
            _after_object(name)

    model = learner.fit(
        table,
        source=source + (f" ({events} events)" if events != "all" else ""),
        progress=progress,
        done=done,
        on_object=keep,
    ).model_
    model.metadata["events"] = events
    if shape:
        from ariasim.apps.collider.shape import fit_shapes

        say("fitting the non-Gaussian response shapes")
        fit_shapes(model, table)
    if dropped:
        model.metadata["dropped_rows"] = dropped
    stock = None
    if stock_out is not None:
        say("fitting the stock-form baseline")
        stock = fit_stock(table, objects=list(model.objects), eta_max=learner.eta_max)
    # both files or neither: temporaries first, renamed together at the end
    with atomic_path(out) as tmp_out:
        if stock is not None and stock_out is not None:
            with atomic_path(stock_out) as tmp_stock:
                stock.save(tmp_stock)
                model.save(tmp_out)
        else:
            model.save(tmp_out)
    shutil.rmtree(folder, ignore_errors=True)
    return model


def _label(model: ResponseModel, path: Path, taken: set[str]) -> str:
    label = str(model.metadata.get("method") or path.stem)
    if label in taken:
        label = f"{label} ({path.stem})"
    taken.add(label)
    return label


def run_fastsim(
    response: str | os.PathLike[str],
    input_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 1,
    compare: bool = False,
    stock: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    events: str = "all",
    compare_with: Sequence[str | os.PathLike[str]] = (),
    progress: Callable[[str], None] | None = None,
    shape: bool = True,
) -> FastsimResult:
    """Apply a response model to truth particles; optionally compare fast vs full.

    Every input is read and checked before the simulation; the output table and the report
    are written together at the end (both or neither). The result depends only on the
    inputs and ``seed`` (the fast simulation draws its random numbers in one fixed order,
    without chunking or threads).

    Arguments:
        response: Response model JSON.
        input_file: Truth particles (see :func:`read_truth`); a full-simulation table for
            ``compare``.
        out: Output table (the full simulation's schema).
        seed: Random seed of the fast simulation (the stock model and the learner table
            use their own seeds, split from it).
        compare: Compare fast vs full on the input (binned pulls, classifier AUC).
        stock: Stock-form model to compare against too (with ``compare``).
        report: HTML report to write (with ``compare``).
        events: ``"all"``, ``"even"`` or ``"odd"`` event_id.
        compare_with: Further response models for the learner table (with ``compare``).
        progress: Called with a short line before each stage (reading, simulating,
            comparing...), e.g. to show progress on the terminal.
        shape: Sample reco/truth from the model's non-Gaussian response shapes where it
            has them (False: the card's Gaussian / log-normal smearing).

    Raises:
        ConfigError: ``stock``, ``report`` or ``compare_with`` without ``compare``
            (``parameter`` the argument's name), or ``events`` not all/even/odd.
        InputError: a model or table that cannot be used, naming the file (and field or
            column).
    """
    from ariasim.apps.collider.compiled import CompiledResponse
    from ariasim.apps.collider.fastsim import FastSimulator
    from ariasim.io import write_table
    from ariasim.utils import as_generator, atomic_path

    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    if not compare:
        for name, value in (
            ("stock", stock),
            ("report", report),
            ("compare_with", compare_with or None),
        ):
            if value is not None:
                raise ConfigError("applies only with --compare", parameter=name)
    if events not in ("all", "even", "odd"):
        raise ConfigError(f"must be 'all', 'even' or 'odd', got {events!r}", parameter="events")
    as_generator(seed)  # a bad seed fails before any work
    response, input_file, out = Path(response), Path(input_file), Path(out)
    say(f"reading the response model {response}")
    # the card formulas stored in the file, compiled without sympy (printed and linted the
    # slow way for files without them); the sympy model is built only to compare
    compiled = CompiledResponse.load(response)
    simulator = FastSimulator(compiled, shape=shape)
    others = {Path(p): ResponseModel.load(p) for p in compare_with}
    smodel = ResponseModel.load(stock) if stock is not None else None
    say(f"reading {input_file}")
    # a Parquet table to Parquet without comparing (nearly every run) goes without pandas:
    # the same columns, the same simulation (FastSimulator.columns), the same file
    columns = None
    if not compare and out.name.lower().endswith((".parquet", ".pq")):
        from ariasim.apps.collider.columns import read_truth_columns

        columns = read_truth_columns(input_file)
    fast: Any
    if columns is not None:
        columns = select_events(columns, events, source=input_file)
        say(f"fast-simulating {len(columns['event_id'])} particles")
        fast = simulator.columns(columns, seed, source=input_file)
        table = None
    else:
        table = select_events(read_truth(input_file), events, source=input_file)
        if compare and "object_type" not in table.columns:
            raise InputError(
                "--compare needs a full-simulation table as input",
                path=input_file,
                column="object_type",
            )
        say(f"fast-simulating {len(table)} particles")
        fast = simulator(table, seed, source=input_file)
    result = FastsimResult(fast)
    card = None
    if compare:
        from ariasim.apps.collider.delphes import card_text

        model = compiled.model
        card = card_text(model) if report is not None else None
        assert table is not None  # compare reads the table the general way
        _compare(
            result,
            table,
            model,
            response,
            seed=seed,
            smodel=smodel,
            stock=stock,
            others=others,
            say=say,
            source=input_file,
        )
    say(f"writing {out}" + (f" and {report}" if report is not None else ""))
    fmt = _table_format(out)
    config: dict[str, object] = {
        "response": str(response),
        "input": str(input_file),
        "events": events,
    }
    written = fast
    if fmt == "root":  # ROOT columns are numeric: object_type as the full simulation's codes
        from ariasim.simulators.collider.run import OBJECT_TYPE_CODES

        codes = fast["object_type"].map(OBJECT_TYPE_CODES)
        if codes.isna().any():
            raise ConfigError(
                f"object types {sorted(set(fast['object_type'][codes.isna()]))} "
                "have no ROOT code; write .parquet or .csv",
                parameter="out",
            )
        written = fast.assign(object_type=codes.to_numpy(np.int8))
        config["object_type_codes"] = dict(OBJECT_TYPE_CODES)
    with atomic_path(out) as tmp:  # the table takes its name only once the report is written
        write_table(
            written,
            tmp,
            format=fmt,
            producer="ariasim.apps.collider.fastsim",
            config=config,
            seed=seed,
        )
        if report is not None:
            from ariasim.apps.collider.report import make_report

            make_report(
                report,
                compiled.model,
                pulls=result.pulls,
                stock_pulls=result.stock_pulls,
                auc=result.auc,
                stock_auc=result.stock_auc,
                versus=result.versus,
                method_table=result.methods,
                quantiles=result.quantiles,
                quantile_summary=result.quantile_summary,
                tails=result.tails,
                card=card,
                models={k: v for k, v in result.models.items() if k != result.label},
            )
    result.written = [out, *([Path(report)] if report is not None else [])]
    return result


def _table_format(path: Path) -> str:
    name = path.name.lower()
    for fmt, suffixes in (
        ("parquet", (".parquet", ".pq")),
        ("csv", (".csv",)),
        ("root", (".root",)),
    ):
        if name.endswith(suffixes):
            return fmt
    raise ConfigError(f"{str(path)!r} must end in .parquet, .csv or .root", parameter="out")


def _compare(
    result: FastsimResult,
    table: pd.DataFrame,
    model: ResponseModel,
    response: Path,
    *,
    seed: int,
    smodel: ResponseModel | None,
    stock: str | os.PathLike[str] | None,
    others: dict[Path, ResponseModel],
    say: Callable[[str], None],
    source: Path,
    min_count: int = 30,
) -> None:
    """Fill ``result``'s comparison tables (fast vs full, stock, other models)."""
    from ariasim.apps.collider.compare import (
        auc_table,
        binned_pulls,
        method_table,
        ours_vs_stock,
        pull_threshold,
    )
    from ariasim.apps.collider.fastsim import fastsim
    from ariasim.utils import spawn_seeds

    taken: set[str] = set()
    ours_label = _label(model, response, taken)
    objs = list(model.objects)
    stock_seed, table_seed = spawn_seeds(seed, 2)
    say("comparing fast vs full: binned efficiency and resolution pulls")
    result.pulls = pulls = binned_pulls(table, result.fast, objs, min_count=min_count)
    if pulls.empty:
        raise InputError(
            f"too few particles to compare fast vs full: no (pT, |eta|) bin of "
            f"{', '.join(objs)} holds {min_count} reconstructed objects in both "
            "samples",
            path=source,
        )
    say("comparing fast vs full: classifier AUC")
    result.auc = auc = auc_table(table, result.fast, objs)
    from ariasim.apps.collider.shape import quantile_summary, quantile_table, tail_fractions

    say("comparing fast vs full: reco/truth quantiles per bin")
    result.quantiles = quantile_table(table, result.fast, objs, min_count=min_count)
    result.quantile_summary = quantile_summary(result.quantiles)
    result.tails = tail_fractions(table, objs, min_count=min_count)
    result.pull_bound = pull_threshold(int(pulls[["eff_pull", "res_pull"]].notna().sum().sum()))
    models = {ours_label: model}
    pre_p, pre_a = {ours_label: pulls}, {ours_label: auc}
    slabel = None
    if smodel is not None and stock is not None:
        say(f"comparing the stock model {stock}")
        sfast = fastsim(table, smodel, stock_seed)
        result.stock_pulls = spulls = binned_pulls(table, sfast, objs)
        result.stock_auc = sauc = auc_table(table, sfast, objs)
        result.versus = ours_vs_stock(pulls, spulls)
        slabel = _label(smodel, Path(stock), taken)
        pre_p[slabel], pre_a[slabel] = spulls, sauc
    for p, m in others.items():
        models[_label(m, p, taken)] = m
    if smodel is not None and slabel is not None:
        models[slabel] = smodel
    if len(models) > 1:
        say(f"comparing {len(models)} models (learner table)")
        result.methods = method_table(models, table, seed=table_seed, pulls=pre_p, aucs=pre_a)
    result.models, result.label = models, ours_label
