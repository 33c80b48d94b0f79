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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError

__all__ = ["ControlPoint", "Pipeline", "Stage", "StageFunction"]

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
