"""Staged simulation pipelines: named stages between which a controller may decide.

The contract (every reference pipeline and a user's own follow it):

* An **event table** is a :class:`pandas.DataFrame` with one row per event and an integer
  column ``event_id`` (unique in a run). Columns may hold Python objects (e.g. an array of
  a muon's energy losses) for the next stage; only scalar columns can be features,
  observables or written to Parquet.
* A **stage** is ``func(events, rng) -> events``: it returns a table with ``event_id`` and
  its new columns (the pipeline joins them to what the earlier stages produced, so each
  stage's outputs are features for the later ones). A stage may drop rows: an event it
  drops failed there (a trigger, a cut) and is not passed on. It never invents event ids.
  A stage may return a float column ``cpu_s`` with the CPU seconds it spent on each event;
  otherwise the pipeline spreads the CPU time it measured over the events evenly.
* The first stage receives a table that holds only ``event_id`` (the events to generate).
* An event **passes** when it leaves the last stage. Its generation weight is the column
  ``gen_weight`` when a stage made one (e.g. a flux weight), else 1.
* A **control point** sits before a stage: there a controller may decide to skip the rest
  of the pipeline for an event, using only the listed ``features`` (columns known before
  that stage).

:func:`run_chunk` runs a pipeline on one chunk of events. An event rejected at a control
point stops there; an accepted one multiplies its ``w_active`` by ``1/a``. **Rate
convention**: ``gen_weight`` is per *generated* event, so the estimate of a rate (or of the
number of passing events per generated one) is ``sum(final.weight) / n_generated``, with
``weight = gen_weight * w_active`` and ``n_generated`` counting every generated event,
passing or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.utils import spawn_seeds

__all__ = ["ChunkResult", "ControlPoint", "Pipeline", "Stage", "StageFunction", "run_chunk"]

StageFunction = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


@dataclass(frozen=True)
class Stage:
    """One named stage of a :class:`Pipeline` (see the module docstring for ``func``).

    Example:
        >>> import pandas as pd
        >>> s = Stage("square", lambda ev, rng: ev.assign(x=ev["event_id"] ** 2))
        >>> s.func(pd.DataFrame({"event_id": [1, 2]}), None)["x"].tolist()
        [1, 4]
    """

    name: str
    func: StageFunction

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"a stage needs a name, got {self.name!r}", parameter="stages")
        if not callable(self.func):
            raise ConfigError(f"stage {self.name!r}: func is not callable", parameter="stages")


@dataclass(frozen=True)
class ControlPoint:
    """Where a controller may decide: before the stage ``before``, using ``features``.

    Example:
        >>> ControlPoint("photons", ("energy", "zenith")).before
        'photons'
    """

    before: str
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise ConfigError(
                f"control point before {self.before!r} needs at least one feature",
                parameter="control_points",
            )


@dataclass(frozen=True)
class Pipeline:
    """A staged pipeline: stages, control points and the final-level observables.

    Arguments:
        stages: The stages in order (names unique).
        control_points: Where a controller may decide (each before a stage other than the
            first).
        observables: Scalar columns of passing events to histogram and compare (final
            level); ``edges`` may give their bin edges.
        name: A short name (reports, provenance).
        relevance: Optional column of passing events used as the relevance to predict
            (a regression target); default: passing the final selection (0/1).
        edges: Bin edges per observable for the evaluation histograms.
        stage_costs: Nominal CPU seconds per event of each stage, for the controllers'
            variance-times-cost optimum (measured once and declared, so that the
            decisions, unlike the CPU accounting, never depend on the timing of this run
            and the same seed gives the same events on any machine); stages not listed
            are costed from the run's own measured CPU time.
        chunk_size: Events per chunk the commands use when not told otherwise (enough
            for a few passing events per chunk of a rare selection).

    Example:
        >>> import pandas as pd
        >>> p = Pipeline(
        ...     [Stage("gen", lambda ev, rng: ev.assign(x=ev["event_id"] * 1.0)),
        ...      Stage("cut", lambda ev, rng: ev[ev["x"] > 1.0][["event_id"]])],
        ...     control_points=[ControlPoint("cut", ("x",))], observables=("x",), name="toy")
        >>> p.stage_names
        ('gen', 'cut')
    """

    stages: Sequence[Stage]
    control_points: Sequence[ControlPoint] = ()
    observables: tuple[str, ...] = ()
    name: str = "pipeline"
    relevance: str | None = None
    edges: dict[str, Sequence[float]] = field(default_factory=dict)
    stage_costs: dict[str, float] | None = None
    chunk_size: int = 1000

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if not names:
            raise ConfigError("a pipeline needs at least one stage", parameter="stages")
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique, got {names}", parameter="stages")
        for cp in self.control_points:
            if cp.before not in names[1:]:
                raise ConfigError(
                    f"control point before {cp.before!r}: not a stage after the first "
                    f"(stages: {', '.join(names)})",
                    parameter="control_points",
                )

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def control_point(self, stage: str) -> ControlPoint | None:
        """The control point before ``stage`` (None if there is none)."""
        for cp in self.control_points:
            if cp.before == stage:
                return cp
        return None


@dataclass
class ChunkResult:
    """What :func:`run_chunk` returns.

    Attributes:
        final: The passing events: ``event_id``, the observables (and the relevance
            column), ``gen_weight``, ``w_active`` and ``weight = gen_weight * w_active``.
        log: One row per generated event: ``event_id``, ``gen_weight``; per control point
            before stage ``S``: ``p_S`` (predicted probability, NaN without a
            controller), ``a_S`` (acceptance, 1 without one), ``accept_S`` (nullable
            bool, NA where the event never got there); the scalar features of every
            control point as known there (NaN where not reached); per stage
            ``reached_S`` (the event arrived before ``S``, before any decision there) and
            ``cpu_S`` (CPU seconds it spent in ``S``), ``cpu_decide_S`` per control
            point; ``passed``; ``relevance`` (if the pipeline has one; 0 for failed
            events); ``w_active`` (product of ``1/a`` over the decisions it went through).

    Example:
        >>> p = Pipeline([Stage("gen", lambda ev, rng: ev.assign(x=rng.random(len(ev))))],
        ...              observables=("x",))
        >>> r = run_chunk(p, first_event_id=10, n_events=3, seed=1)
        >>> r.log["event_id"].tolist(), r.final["weight"].tolist()
        ([10, 11, 12], [1.0, 1.0, 1.0])
    """

    final: pd.DataFrame
    log: pd.DataFrame


def stage_output(stage: Stage, inp: pd.DataFrame, out: Any) -> pd.DataFrame:
    """Check what a stage returned: a DataFrame with unique ``event_id`` s, all of them
    among its input's."""
    if not isinstance(out, pd.DataFrame):
        raise ConfigError(
            f"stage {stage.name!r} must return a DataFrame, got {type(out).__name__}",
            parameter="stages",
        )
    if "event_id" not in out.columns:
        raise ConfigError(f"stage {stage.name!r} returned no event_id column", parameter="stages")
    ids = out["event_id"].to_numpy()
    if len(np.unique(ids)) != len(ids):
        raise ConfigError(f"stage {stage.name!r} returned duplicate event ids", parameter="stages")
    if not np.isin(ids, inp.index.to_numpy()).all():
        raise ConfigError(
            f"stage {stage.name!r} returned event ids it was not given", parameter="stages"
        )
    return out


def scalar_column(table: pd.DataFrame, name: str, where: str) -> np.ndarray:
    """A numeric column as float64; a :class:`ConfigError` naming it otherwise."""
    if name not in table.columns:
        raise ConfigError(
            f"{where}: no column {name!r} (columns: {', '.join(map(str, table.columns))})",
            parameter="features",
        )
    col = table[name]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise ConfigError(f"{where}: column {name!r} is not numeric", parameter="features")
    return col.to_numpy(dtype=float)


def run_chunk(
    pipeline: Pipeline,
    *,
    first_event_id: int,
    n_events: int,
    seed: int,
    controllers: Mapping[str, Any] | None = None,
) -> ChunkResult:
    """Run ``pipeline`` on the events ``first_event_id .. first_event_id + n_events - 1``.

    Arguments:
        pipeline: The stages and control points.
        first_event_id, n_events: The events of this chunk.
        seed: The chunk's seed; ``spawn_seeds(seed, n_stages + n_control_points)`` gives
            one generator per stage (in order) and one per control point for its accept
            draws (in the order of ``pipeline.control_points``).
        controllers: ``{stage name: controller}`` for control points that have one; a
            controller has ``decide(X, rng) -> (accept, a)`` (and optionally
            ``decide_details(X, rng) -> (accept, a, p)`` and ``inputs``, the columns it
            needs; default: the control point's features). ``X`` holds only the control
            point's features (and ``gen_weight`` if the controller asks for it: the
            generation weight times the ``1/a`` of the decisions at earlier control
            points, the weight the event carries there).

    Returns:
        A :class:`ChunkResult` (see there for the columns). Per-event CPU per stage: the
        stage's ``cpu_s`` column if it returns one (the events it drops share what it
        measured beyond their sum), else the stage's :func:`time.process_time` spread
        evenly over its input events. The rate convention is in the module docstring.
    """
    controllers = dict(controllers or {})
    names = pipeline.stage_names
    cps = list(pipeline.control_points)
    for where in controllers:
        if pipeline.control_point(where) is None:
            raise ConfigError(
                f"a controller for {where!r}, which has no control point", parameter="controllers"
            )
    seeds = spawn_seeds(seed, len(names) + len(cps))
    stage_rng = {n: np.random.default_rng(seeds[i]) for i, n in enumerate(names)}
    cp_rng = {cp.before: np.random.default_rng(seeds[len(names) + j]) for j, cp in enumerate(cps)}

    ids = np.arange(first_event_id, first_event_id + n_events, dtype=np.int64)
    n = len(ids)
    pos = pd.Series(np.arange(n), index=ids)
    alive = pd.DataFrame({"event_id": ids}, index=pd.Index(ids, name=None))
    w_active = np.ones(n)
    gen_weight = np.full(n, np.nan)
    has_gen_weight = False
    cols: dict[str, Any] = {}
    feature_cols: dict[str, np.ndarray] = {}
    for cp in cps:
        cols[f"p_{cp.before}"] = np.full(n, np.nan)
        cols[f"a_{cp.before}"] = np.full(n, np.nan)
        cols[f"accept_{cp.before}"] = pd.array([pd.NA] * n, dtype="boolean")
        for f in cp.features:
            feature_cols.setdefault(f, np.full(n, np.nan))
    reached = {s: np.zeros(n, dtype=bool) for s in names}
    cpu = {s: np.zeros(n) for s in names}
    cpu_decide = {cp.before: np.zeros(n) for cp in cps}

    for stage in pipeline.stages:
        idx = pos[alive.index].to_numpy()
        reached[stage.name][idx] = True
        point = pipeline.control_point(stage.name)
        if point is not None and len(alive):
            cp = point
            for f in cp.features:
                feature_cols[f][idx] = scalar_column(
                    alive, f, f"control point before {cp.before!r}"
                )
            ctrl = controllers.get(stage.name)
            if ctrl is None:
                cols[f"a_{cp.before}"][idx] = 1.0
                cols[f"accept_{cp.before}"][idx] = True
            else:
                need = list(getattr(ctrl, "inputs", cp.features))
                extra = [c for c in need if c not in cp.features and c != "gen_weight"]
                if extra:
                    raise ConfigError(
                        f"the controller before {cp.before!r} needs {extra[0]!r}, not a feature "
                        f"of that control point",
                        parameter="controllers",
                    )
                X = pd.DataFrame(
                    {
                        c: scalar_column(alive, c, f"control point before {cp.before!r}")
                        for c in need
                    },
                    index=alive.index,
                )
                if "gen_weight" in X.columns:
                    # the weight the event carries here: its generation weight times the
                    # 1/a of the decisions before (the variance-optimal a is ∝ that weight)
                    X["gen_weight"] = X["gen_weight"].to_numpy() * w_active[idx]
                t0 = time.process_time()
                if hasattr(ctrl, "decide_details"):
                    accept, a, p = ctrl.decide_details(X, cp_rng[cp.before])
                else:
                    accept, a = ctrl.decide(X, cp_rng[cp.before])
                    p = np.full(len(X), np.nan)
                dt = time.process_time() - t0
                accept = np.asarray(accept, dtype=bool)
                a = np.asarray(a, dtype=float)
                if a.shape != (len(X),) or not np.all((a > 0) & (a <= 1)):
                    raise ConfigError(
                        f"the controller before {cp.before!r} returned acceptances outside (0, 1]",
                        parameter="controllers",
                    )
                cpu_decide[cp.before][idx] = dt / max(len(idx), 1)
                cols[f"p_{cp.before}"][idx] = np.asarray(p, dtype=float)
                cols[f"a_{cp.before}"][idx] = a
                cols[f"accept_{cp.before}"][idx] = accept
                w_active[idx[accept]] /= a[accept]
                alive = alive[accept]
                idx = idx[accept]
        if not len(alive):
            continue
        t0 = time.process_time()
        out = stage.func(alive.copy(), stage_rng[stage.name])
        dt = time.process_time() - t0
        out = stage_output(stage, alive, out).set_index("event_id", drop=False)
        kept = alive.index.isin(out.index)
        if "cpu_s" in out.columns:
            c = out["cpu_s"].to_numpy(dtype=float)
            cpu[stage.name][pos[out.index].to_numpy()] = c
            dropped = idx[~kept]
            if len(dropped):
                cpu[stage.name][dropped] = max(dt - float(c.sum()), 0.0) / len(dropped)
            out = out.drop(columns="cpu_s")
        else:
            cpu[stage.name][idx] = dt / max(len(idx), 1)
        alive = alive[kept]
        new = [c for c in out.columns if c != "event_id"]
        if new:
            alive = alive.drop(columns=[c for c in new if c in alive.columns])
            alive = alive.join(out[new].reindex(alive.index))
        if "gen_weight" in out.columns:
            has_gen_weight = True
            gen_weight[pos[out.index].to_numpy()] = out["gen_weight"].to_numpy(dtype=float)

    passed = np.zeros(n, dtype=bool)
    idx = pos[alive.index].to_numpy()
    passed[idx] = True
    if not has_gen_weight:
        gen_weight[:] = 1.0
    log = pd.DataFrame({"event_id": ids, "gen_weight": gen_weight})
    for k, v in cols.items():
        log[k] = v
    for f, v in feature_cols.items():
        if f not in log.columns:
            log[f] = v
    for s in names:
        log[f"reached_{s}"] = reached[s]
    for s in names:
        log[f"cpu_{s}"] = cpu[s]
    for cp in cps:
        log[f"cpu_decide_{cp.before}"] = cpu_decide[cp.before]
    log["passed"] = passed
    final = pd.DataFrame({"event_id": ids[idx]})
    for o in pipeline.observables:
        final[o] = scalar_column(alive, o, "observables") if len(alive) else np.zeros(0)
    if pipeline.relevance:
        rel = np.zeros(n)
        if len(alive):
            rel[idx] = scalar_column(alive, pipeline.relevance, "relevance")
        log["relevance"] = rel
        if pipeline.relevance not in final.columns:
            final[pipeline.relevance] = rel[idx]
    log["w_active"] = w_active
    final["gen_weight"] = gen_weight[idx]
    final["w_active"] = w_active[idx]
    final["weight"] = final["gen_weight"] * final["w_active"]
    return ChunkResult(final=final, log=log)
