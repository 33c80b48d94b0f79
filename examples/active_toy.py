"""A user-defined pipeline of plain functions for ``ariasim active``.

Run it with::

    ariasim active run --pipeline examples/active_toy.py:make_pipeline --budget 60 --out toy

Three stages, each a module-level function ``stage(events, rng) -> events`` that returns
``event_id`` and its new columns (the contract of :mod:`ariasim.active.pipeline`):

1. ``generate`` (cheap): a feature ``x`` uniform in [0, 1] and a nuisance ``y`` ~ N(0, 1).
2. ``shower`` (expensive): the response ``s = x + SIGMA * z`` with ``z`` ~ N(0, 1), made as
   the scaled sum of ``STEPS`` Gaussian steps (a toy shower). Its cost is declared, not
   slept: the stage reports ``cpu_s = SHOWER_CPU_S`` per event, a hundred times the
   other stages, as a detector simulation would dominate a real pipeline.
3. ``select``: an event passes when ``s > CUT``; it keeps ``x``, ``y``, ``s`` as the
   observables.

The controller may decide before ``shower`` from ``x`` and ``y``; only ``x`` matters.

True rate of passing events per generated event (``Phi``, ``phi``: standard normal CDF and
density, ``G(t) = t Phi(t) + phi(t)`` the antiderivative of ``Phi``)::

    R = int_0^1 Phi((x - CUT) / SIGMA) dx
      = SIGMA * [G((1 - CUT) / SIGMA) - G(-CUT / SIGMA)]

With ``SIGMA = 0.05`` and ``CUT = 1.05``: ``R = 0.05 * G(-1) = 4.166e-3``
(:data:`TRUE_RATE`). Only events with ``x`` above about 0.85 ever pass, so a controller
that learns ``p(x)`` saves most of the shower time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ariasim.active import ControlPoint, Pipeline, Stage

#: Resolution of the toy shower.
SIGMA = 0.05
#: Selection threshold on the response ``s``.
CUT = 1.05
#: Gaussian steps of the toy shower (the sum of STEPS N(0, 1) over sqrt(STEPS) is N(0, 1)).
STEPS = 64
#: Declared CPU seconds per event of the generator and of the shower.
CHEAP_CPU_S = 1e-4
SHOWER_CPU_S = 1e-2


def _phi(t: float) -> float:
    return math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _cdf(t: float) -> float:
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


def _g(t: float) -> float:
    return t * _cdf(t) + _phi(t)


#: Analytic rate of passing events per generated event (see the module docstring).
TRUE_RATE = SIGMA * (_g((1.0 - CUT) / SIGMA) - _g(-CUT / SIGMA))


def generate(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Draw the generator-level features ``x`` ~ U(0, 1) and ``y`` ~ N(0, 1)."""
    n = len(events)
    return pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy(np.int64),
            "x": rng.random(n),
            "y": rng.normal(size=n),
            "cpu_s": np.full(n, CHEAP_CPU_S),
        }
    )


def shower(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The expensive stage: ``s = x + SIGMA * (sum of STEPS N(0, 1) steps) / sqrt(STEPS)``."""
    n = len(events)
    z = rng.normal(size=(n, STEPS)).sum(axis=1) / math.sqrt(STEPS)
    return pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy(np.int64),
            "s": events["x"].to_numpy(float) + SIGMA * z,
            "cpu_s": np.full(n, SHOWER_CPU_S),
        }
    )


def select(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Keep the events with ``s > CUT`` (no new columns; its CPU is measured by the
    pipeline, as a dropped event could not report its own)."""
    return events.loc[events["s"].to_numpy(float) > CUT, ["event_id"]]


def make_pipeline() -> Pipeline:
    """The toy pipeline: generate -> shower (expensive) -> select, decided before shower."""
    return Pipeline(
        [Stage("generate", generate), Stage("shower", shower), Stage("select", select)],
        control_points=[ControlPoint("shower", ("x", "y"))],
        observables=("x", "y", "s"),
        name="toy",
        chunk_size=2000,
        # the cost model of the controller: the shower's declared 10 ms, the rest ~free
        stage_costs={"generate": CHEAP_CPU_S, "shower": SHOWER_CPU_S, "select": CHEAP_CPU_S},
        edges={
            "x": np.linspace(0.85, 1.0, 16).tolist(),
            "y": np.linspace(-3.0, 3.0, 13).tolist(),
            "s": np.linspace(CUT, 1.2, 16).tolist(),
        },
    )
