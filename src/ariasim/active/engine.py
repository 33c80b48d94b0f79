"""The online loop: simulate in rounds of chunks, retrain the controllers between rounds.

Round 0 runs ``warmup_chunks`` chunks without control (every event labelled). After each
round, one :class:`~ariasim.active.controller.Controller` per control point is trained on
every logged event of the earlier rounds that reached that point and whose outcome is known
(not stopped by a controller), weighted by the product of ``1/a`` of the decisions it went
through from that point on (so that the sample stands for every event that reaches the
point); at a later control point the generation weight it learns with is multiplied by
the ``1/a`` of the earlier points (:func:`prior_weight`), the weight the event carries
there, as :func:`~ariasim.active.pipeline.run_chunk` gives it to the controller. A model
is saved in ``out_dir/controllers/round-NNN/<stage>/`` and decides the chunks of round
``NNN`` only. An event is therefore never decided by a model trained on its own
outcome. ``learn="freeze"`` keeps the controllers trained after round 0.

Chunks run through :func:`ariasim.parallel.run_chunks` (in this process or on Dask
workers, the controllers travel in the task's payload as JSON-able dicts) and write the
tables ``final``, ``log`` and ``cpu`` as Parquet partitions; a run interrupted at any point
is resumed by running it again with the same arguments (finished chunks are skipped,
saved controllers reloaded). Same seed and configuration give the same final table whatever
the order in which chunks finish, provided the pipeline declares nominal
``Pipeline.stage_costs`` (or ``ActiveConfig.stage_costs`` overrides them), as the reference
pipelines do: the decisions then never depend on the timing, only the CPU accounting does.
A stage without a nominal cost is costed from the logged CPU, rounded to two significant
digits; that rounding does not make reruns reproducible (on cheap toy stages four reruns
with one seed kept four different sets of events), so :func:`run_active` warns then.

Rate convention: see :mod:`ariasim.active.pipeline` (``sum(weight) / n_generated``).
"""

from __future__ import annotations

import functools
import json
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.active.controller import Controller, ThresholdBiasWarning
from ariasim.active.pipeline import Pipeline, run_chunk
from ariasim.errors import ConfigError, InputError
from ariasim.parallel import ChunkTask, chunk_tasks, read_parts, run_chunks
from ariasim.utils import atomic_path, ensure_dir, run_key, spawn_seeds, to_jsonable, write_json

__all__ = ["ActiveConfig", "ActiveResult", "run_active", "training_set"]

MODES = ("sqrt", "density", "threshold", "brute")


@dataclass(frozen=True)
class ActiveConfig:
    """How :func:`run_active` runs and learns.

    Attributes:
        chunk_size: Events per chunk.
        warmup_chunks: Chunks of round 0 (no control, every event labelled).
        chunks_per_round: Chunks per later round (the controllers are retrained between).
        learn: ``"online"`` (retrain between rounds, as the labelled sample grows by
            ``retrain_growth``) or ``"freeze"`` (train once, after round 0).
        retrain_growth: Online learning retrains before round ``r`` when the chunks
            behind it are at least this factor more than behind the model in use (1:
            every round; the default 2 retrains O(log n) times, so that training, whose
            CPU counts against the gain, stays a small part of a long run).
        mode: ``"sqrt"``, ``"density"``, ``"threshold"`` (biased, warns) or ``"brute"``
            (no controller: every event simulated).
        aggressiveness, a_min, threshold, density_observable, density_edges: See
            :class:`~ariasim.active.controller.Controller` (``density_edges`` default:
            ``pipeline.edges[density_observable]`` if given).
        max_train: Train on at most the latest this many events per control point.
        min_pass: Train a controller only when at least this many passing events (and
            as many failing ones) are available; until then, no control.
        stage_costs: Fixed CPU seconds per event per stage for the controllers' cost
            model (default: the logged CPU).
        n_estimators, learning_rate, num_leaves, min_child_samples: LightGBM's.

    Example:
        >>> ActiveConfig(chunk_size=500, mode="brute").warmup_chunks
        4
    """

    chunk_size: int = 1000
    warmup_chunks: int = 4
    chunks_per_round: int = 4
    learn: str = "online"
    retrain_growth: float = 2.0
    mode: str = "sqrt"
    aggressiveness: float = 1.0
    a_min: float = 0.01
    threshold: float | None = None
    density_observable: str | None = None
    density_edges: tuple[float, ...] | None = None
    max_train: int | None = None
    min_pass: int = 20
    stage_costs: Mapping[str, float] | None = None
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 20

    def __post_init__(self) -> None:
        for name in ("chunk_size", "warmup_chunks", "chunks_per_round", "min_pass"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"must be a positive integer, got {v!r}", parameter=name)
        if self.learn not in ("online", "freeze"):
            raise ConfigError(
                f"must be 'online' or 'freeze', got {self.learn!r}", parameter="learn"
            )
        if self.mode not in MODES:
            raise ConfigError(
                f"must be one of {', '.join(MODES)}, got {self.mode!r}", parameter="mode"
            )
        if not (np.isfinite(self.retrain_growth) and self.retrain_growth >= 1.0):
            raise ConfigError(
                f"must be >= 1, got {self.retrain_growth!r}", parameter="retrain_growth"
            )
        if self.max_train is not None and self.max_train < 10:
            raise ConfigError(f"must be at least 10, got {self.max_train}", parameter="max_train")
        if self.mode != "brute":  # the controller's own checks, before any work
            self.controller(("x",), random_state=0)

    def controller(self, features: tuple[str, ...], *, random_state: int) -> Controller:
        """A fresh controller with these settings (threshold mode's warning is given once
        by :func:`run_active`, not here)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ThresholdBiasWarning)
            return Controller(
                features,
                mode=self.mode,
                aggressiveness=self.aggressiveness,
                a_min=self.a_min,
                threshold=self.threshold,
                density_observable=self.density_observable,
                density_edges=self.density_edges,
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples,
                random_state=random_state,
            )


@dataclass
class ActiveResult:
    """The outcome of :func:`run_active`.

    Attributes:
        final: The passing events of every chunk (``weight = gen_weight * w_active``).
        n_generated: Events generated (the denominator of :meth:`rate`).
        cpu_s: CPU seconds per stage, ``controller_train``, ``controller_decide`` and
            ``total``.
        rounds: Rounds run.
        n_chunks: Chunks run.
        out_dir: The run folder (``log``, ``final``, ``cpu``, ``controllers/``).

    Example:
        >>> import pandas as pd
        >>> r = ActiveResult(pd.DataFrame({"weight": [2.0, 2.0]}), 100, {"total": 1.0}, 1, 1)
        >>> r.ess(), r.rate()[0]
        (2.0, 0.04)
    """

    final: pd.DataFrame
    n_generated: int
    cpu_s: dict[str, float]
    rounds: int
    n_chunks: int
    out_dir: Path | None = None
    chunk_indices: list[int] = field(default_factory=list)

    def ess(self) -> float:
        """Kish's effective sample size ``(sum w)^2 / sum w^2`` of the final events."""
        w = self.final["weight"].to_numpy(dtype=float) if len(self.final) else np.zeros(0)
        s2 = float(np.sum(w**2))
        return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0

    def rate(self) -> tuple[float, float]:
        """``(estimate, standard error)`` of the final-level rate per generated event:
        ``sum(weight) / n_generated``; the error from the spread of the per-event
        contributions (``weight`` for passing events, 0 for the others)."""
        n = self.n_generated
        if n == 0:
            return float("nan"), float("nan")
        w = self.final["weight"].to_numpy(dtype=float) if len(self.final) else np.zeros(0)
        mean = float(np.sum(w)) / n
        if n < 2:
            return mean, float("nan")
        var = (float(np.sum(w**2)) - n * mean**2) / (n - 1)
        return mean, float(np.sqrt(max(var, 0.0) / n))

    def log(self) -> pd.DataFrame:
        """Every generated event's record (decisions, probabilities, weights, CPU)."""
        if self.out_dir is None:
            return pd.DataFrame()
        return read_parts(self.out_dir, "log", self.chunk_indices)


def round_of(index: int, config: ActiveConfig) -> int:
    """The round of chunk ``index``."""
    if index < config.warmup_chunks:
        return 0
    return 1 + (index - config.warmup_chunks) // config.chunks_per_round


def round_chunks(r: int, config: ActiveConfig) -> range:
    """The chunk indices of round ``r``."""
    if r == 0:
        return range(config.warmup_chunks)
    start = config.warmup_chunks + (r - 1) * config.chunks_per_round
    return range(start, start + config.chunks_per_round)


def model_round_of(r: int, config: ActiveConfig) -> int:
    """The round whose controllers decide round ``r >= 1``: 1 when frozen; online, the
    latest round ``q <= r`` at which the chunks before ``q`` had grown by
    ``retrain_growth`` over those behind the previous model (a function of the
    configuration only, so a resumed run finds the same models).

    Example:
        >>> [model_round_of(r, ActiveConfig(warmup_chunks=4, chunks_per_round=4))
        ...  for r in range(1, 8)]
        [1, 2, 2, 4, 4, 4, 4]
    """
    if config.learn == "freeze":
        return 1
    last = 1
    for q in range(2, r + 1):
        if (
            round_chunks(q, config).start
            >= config.retrain_growth * round_chunks(last, config).start
        ):
            last = q
    return last


def pipeline_key(pipeline: Pipeline) -> dict[str, Any]:
    """What of a pipeline identifies a run (its structure, not its code)."""
    return {
        "name": pipeline.name,
        "stages": list(pipeline.stage_names),
        "control_points": [[cp.before, list(cp.features)] for cp in pipeline.control_points],
        "observables": list(pipeline.observables),
        "relevance": pipeline.relevance,
        "stage_costs": dict(pipeline.stage_costs or {}),
    }


def chunk_job(pipeline: Pipeline, task: ChunkTask) -> dict[str, pd.DataFrame]:
    """Run one chunk (on a worker): rebuild the round's controllers, run, tabulate CPU."""
    payload = task.payload
    controllers = {k: Controller.from_dict(v) for k, v in payload["controllers"].items()}
    size = int(payload["chunk_size"])
    res = run_chunk(
        pipeline,
        first_event_id=task.index * size,
        n_events=size,
        seed=task.seed,
        controllers=controllers,
    )
    log = res.log
    log.insert(1, "chunk", np.int64(task.index))
    log.insert(2, "round", np.int64(payload["round"]))
    for cp in pipeline.control_points:
        log[f"model_{cp.before}"] = np.int64(payload["models"].get(cp.before, -1))
    row: dict[str, Any] = {"chunk": [task.index], "round": [payload["round"]]}
    for s in pipeline.stage_names:
        row[f"cpu_{s}"] = [float(log[f"cpu_{s}"].sum())]
    row["cpu_decide"] = [
        float(sum(log[f"cpu_decide_{cp.before}"].sum() for cp in pipeline.control_points))
    ]
    return {"final": res.final, "log": log, "cpu": pd.DataFrame(row)}


def nominal_costs(pipeline: Pipeline, config: ActiveConfig) -> Mapping[str, float] | None:
    """The nominal CPU per event of each stage the controllers are costed with:
    ``config.stage_costs`` when given (it replaces the pipeline's), else the pipeline's."""
    return config.stage_costs if config.stage_costs is not None else pipeline.stage_costs


def round_costs(
    log: pd.DataFrame, pipeline: Pipeline, stage: str, stage_costs: Mapping[str, float] | None
) -> tuple[float, float]:
    """``(cost_fixed, cost_skippable)`` per event reaching the control point before
    ``stage``: the CPU spent before it (per event that got there) and the CPU from it on
    (per event that went on), rounded to two significant digits."""
    names = list(pipeline.stage_names)
    k = names.index(stage)
    at = log[f"reached_{stage}"].to_numpy(dtype=bool)
    went = at & log[f"accept_{stage}"].fillna(False).to_numpy(dtype=bool)
    n_at, n_went = max(int(at.sum()), 1), max(int(went.sum()), 1)

    def per_event(s: str) -> np.ndarray:
        if stage_costs is not None and s in stage_costs:
            ran = log[f"reached_{s}"].to_numpy(dtype=bool)
            if f"accept_{s}" in log.columns:
                ran = ran & log[f"accept_{s}"].fillna(False).to_numpy(dtype=bool)
            return ran * float(stage_costs[s])
        return log[f"cpu_{s}"].to_numpy(dtype=float)

    fixed = sum(float(per_event(s).sum()) for s in names[:k]) / n_at
    skippable = sum(float(per_event(s)[went].sum()) for s in names[k:]) / n_went
    return round_sig(fixed), round_sig(skippable)


def round_sig(x: float, digits: int = 2) -> float:
    """``x`` rounded to ``digits`` significant digits (0 stays 0)."""
    if x <= 0 or not np.isfinite(x):
        return 0.0
    return float(f"{x:.{digits - 1}e}")


def prior_weight(log: pd.DataFrame, pipeline: Pipeline, stage: str) -> np.ndarray:
    """Per log row, the product of ``1/a`` over the control points before the one before
    ``stage`` (1 for the first control point and where no controller decided).

    Example:
        >>> from ariasim.active.pipeline import ControlPoint, Stage
        >>> f = lambda ev, rng: ev
        >>> p = Pipeline([Stage("a", f), Stage("b", f), Stage("c", f)],
        ...              control_points=[ControlPoint("b", ("x",)), ControlPoint("c", ("x",))])
        >>> log = pd.DataFrame({"a_b": [0.5, 1.0, np.nan], "a_c": [0.1, 1.0, np.nan]})
        >>> prior_weight(log, p, "c").tolist(), prior_weight(log, p, "b").tolist()
        ([2.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    """
    names = list(pipeline.stage_names)
    k = names.index(stage)
    prior = np.ones(len(log))
    for cp in pipeline.control_points:
        if names.index(cp.before) < k and f"a_{cp.before}" in log.columns:
            a = log[f"a_{cp.before}"].to_numpy(dtype=float)
            prior /= np.where(np.isfinite(a) & (a > 0), a, 1.0)
    return prior


def training_set(log: pd.DataFrame, stage: str) -> pd.DataFrame:
    """The log rows that train the controller before ``stage``: they reached it and their
    outcome is known (no controller stopped them anywhere)."""
    rejected = np.zeros(len(log), dtype=bool)
    for c in log.columns:
        if c.startswith("accept_"):
            rejected |= ~log[c].fillna(True).to_numpy(dtype=bool)
    keep = log[f"reached_{stage}"].to_numpy(dtype=bool) & ~rejected
    return log[keep]


def train_round(
    pipeline: Pipeline,
    config: ActiveConfig,
    out_dir: Path,
    r: int,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, int], float]:
    """The controllers deciding round ``r`` (trained on rounds < r, or reloaded):
    ``({stage: controller dict}, {stage: round of the model}, training CPU seconds)``."""
    if config.mode == "brute" or r == 0:
        return {}, {}, 0.0
    model_round = model_round_of(r, config)
    folder = out_dir / "controllers" / f"round-{model_round:03d}"
    info_path = folder / "round.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        dicts = {s: Controller.load(folder / s).to_dict() for s in info["stages"]}
        cpu = info["train_cpu_s"] if model_round == r else 0.0
        return dicts, dict.fromkeys(dicts, model_round), cpu
    if model_round != r:
        raise InputError("the frozen controllers of round 1 are missing", path=folder)
    chunks = [i for q in range(r) for i in round_chunks(q, config)]
    log = read_parts(out_dir, "log", chunks)
    final = read_parts(out_dir, "final", chunks) if config.mode == "density" else None
    t0 = time.process_time()
    trained: dict[str, Controller] = {}
    skipped: dict[str, str] = {}
    rs = spawn_seeds(seed, r + 1)[r] % (2**31)
    for cp in pipeline.control_points:
        rows = training_set(log, cp.before)
        if config.max_train is not None and len(rows) > config.max_train:
            rows = rows.iloc[-config.max_train :]
        label = rows["relevance"] if pipeline.relevance else rows["passed"].astype(float)
        n_pass = int((label > 0).sum())
        if n_pass < config.min_pass or len(rows) - n_pass < config.min_pass:
            skipped[cp.before] = f"{n_pass} passing of {len(rows)} (min_pass {config.min_pass})"
            continue
        # an event's weight at this point: gen_weight x the 1/a of the earlier control
        # points (as run_chunk gives it to the controller); the training rows stand for
        # the events that reach the point under control when weighted by the 1/a from
        # this point on (w_active / prior), which is what the lambda optimum needs
        prior = prior_weight(rows, pipeline, cp.before)
        gw = rows["gen_weight"].to_numpy(dtype=float) * prior
        use_w = bool(np.all(np.isfinite(gw)) and np.any(gw != gw[0]))
        observable = None
        ctrl = config.controller(tuple(cp.features), random_state=int(rs))
        if config.mode == "density":
            obs = config.density_observable
            if ctrl.density_edges is None and obs in pipeline.edges:
                ctrl.density_edges = tuple(float(e) for e in pipeline.edges[obs])
            if final is None or obs not in final.columns:
                raise ConfigError(
                    f"{obs!r} is not an observable of the pipeline", parameter="density_observable"
                )
            values = final.set_index("event_id")[obs]
            observable = values.reindex(rows["event_id"]).to_numpy(dtype=float)
        cost_fixed, cost_skip = round_costs(
            log, pipeline, cp.before, nominal_costs(pipeline, config)
        )
        ctrl.fit(
            rows[list(cp.features)],
            label.to_numpy(dtype=float),
            rows["w_active"].to_numpy(dtype=float) / prior,
            cost_fixed=cost_fixed,
            cost_skippable=cost_skip,
            gen_weight=gw if use_w else None,
            observable=observable,
            info={
                "round": r,
                "trained_on_rounds": list(range(r)),
                "trained_on_chunks": [int(chunks[0]), int(chunks[-1])] if chunks else [],
                "max_event_id": int(rows["event_id"].max()),
            },
        )
        trained[cp.before] = ctrl
    cpu = time.process_time() - t0
    with atomic_path(folder, folder=True) as tmp:
        for s, c in trained.items():
            c.save(tmp / s)
        write_json(
            tmp / "round.json",
            {"round": r, "stages": sorted(trained), "skipped": skipped, "train_cpu_s": cpu},
        )
    return {s: c.to_dict() for s, c in trained.items()}, dict.fromkeys(trained, r), cpu


def run_active(
    pipeline: Pipeline,
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_chunks: int | None = None,
    budget_cpu_s: float | None = None,
    config: ActiveConfig | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> ActiveResult:
    """Simulate ``pipeline`` in rounds of chunks under online-trained controllers.

    Arguments:
        pipeline: The staged pipeline.
        out_dir: The run folder (created; resumed when it holds a run of the same
            pipeline structure, seed and configuration; another run's folder is refused).
        seed: Seed of the chunks (``chunk_tasks``) and of the controllers' training.
        n_chunks: At most this many chunks.
        budget_cpu_s: Stop after the round in which the total CPU (stages, controller
            training and decisions) reaches this.
        config: An :class:`ActiveConfig` (default: its defaults).
        client: A Dask client (None: run in this process).
        progress: ``progress(done, total)`` per finished chunk of a round.

    Returns:
        An :class:`ActiveResult`.

    Example:
        >>> import tempfile
        >>> from ariasim.active.pipeline import Stage
        >>> p = Pipeline([Stage("gen", lambda ev, rng: ev.assign(x=rng.random(len(ev))))],
        ...              observables=("x",))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     r = run_active(p, tmp, n_chunks=2, config=ActiveConfig(chunk_size=10))
        >>> r.n_generated, r.rate()[0]
        (20, 1.0)
    """
    config = ActiveConfig() if config is None else config
    if n_chunks is None and budget_cpu_s is None:
        raise ConfigError("give n_chunks or budget_cpu_s (or both)", parameter="budget_cpu_s")
    if n_chunks is not None and (isinstance(n_chunks, bool) or n_chunks < 1):
        raise ConfigError(f"must be a positive integer, got {n_chunks!r}", parameter="n_chunks")
    if budget_cpu_s is not None and not (np.isfinite(budget_cpu_s) and budget_cpu_s > 0):
        raise ConfigError(f"must be positive, got {budget_cpu_s}", parameter="budget_cpu_s")
    if config.mode == "density":
        if config.density_observable not in pipeline.observables:
            raise ConfigError(
                f"{config.density_observable!r} is not an observable of the pipeline "
                f"({', '.join(pipeline.observables)})",
                parameter="density_observable",
            )
    if config.mode == "threshold":
        warnings.warn(
            "mode='threshold' keeps events with weight 1: its estimates are biased wherever "
            "the model misses passing events (the evaluation measures it)",
            ThresholdBiasWarning,
            stacklevel=2,
        )
    uncosted = [s for s in pipeline.stage_names if s not in (nominal_costs(pipeline, config) or {})]
    if pipeline.control_points and config.mode != "brute" and uncosted:
        warnings.warn(
            f"stages {', '.join(uncosted)} have no nominal cost (Pipeline.stage_costs or "
            "ActiveConfig.stage_costs): the controllers are costed from this run's measured "
            "CPU time, so a rerun with the same seed may keep other events",
            UserWarning,
            stacklevel=2,
        )
    spawn_seeds(seed, 1)  # a bad seed fails here, before the run folder exists
    out = ensure_dir(out_dir)
    key = run_key({"pipeline": pipeline_key(pipeline), "seed": seed, "config": to_jsonable(config)})
    state_path = out / "state.json"
    if state_path.exists():
        try:
            old = json.loads(state_path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("key") != key:
            raise ConfigError(
                f"'{out}' holds a run with another pipeline, seed or configuration; "
                "use another folder",
                parameter="out_dir",
            )
    else:
        write_json(
            state_path,
            {
                "key": key,
                "pipeline": pipeline_key(pipeline),
                "seed": seed,
                "config": to_jsonable(config),
            },
        )
    job = functools.partial(chunk_job, pipeline)
    cpu: dict[str, float] = dict.fromkeys(pipeline.stage_names, 0.0)
    cpu["controller_train"] = 0.0
    cpu["controller_decide"] = 0.0
    done: list[int] = []
    r = 0
    while True:
        indices = list(round_chunks(r, config))
        if n_chunks is not None:
            indices = [i for i in indices if i < n_chunks]
        if not indices:
            break
        ctrl, models, train_cpu = train_round(pipeline, config, out, r, seed)
        cpu["controller_train"] += train_cpu
        payload = {
            "controllers": ctrl,
            "models": models,
            "round": r,
            "chunk_size": config.chunk_size,
        }
        tasks = chunk_tasks(len(indices), seed, payload, start=indices[0])
        run_chunks(job, tasks, out, client=client, progress=progress)
        done += indices
        table = read_parts(out, "cpu", indices)
        for s in pipeline.stage_names:
            cpu[s] += float(table[f"cpu_{s}"].sum())
        cpu["controller_decide"] += float(table["cpu_decide"].sum())
        total = sum(cpu.values())
        r += 1
        if budget_cpu_s is not None and total >= budget_cpu_s:
            break
    cpu["total"] = sum(cpu.values())
    final = read_parts(out, "final", done)
    return ActiveResult(
        final=final,
        n_generated=len(done) * config.chunk_size,
        cpu_s=cpu,
        rounds=r,
        n_chunks=len(done),
        out_dir=out,
        chunk_indices=done,
    )
