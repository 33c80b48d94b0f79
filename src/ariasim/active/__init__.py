"""Active simulation control: spend a pipeline's expensive stages on the events that matter.

Importance sampling between stages that stays unbiased: an event goes on with probability
a(x) > 0 and carries weight 1/a(x) (REFERENCE.md section 4).

* :mod:`ariasim.active.pipeline`: stages, control points, :func:`run_chunk`;
* :mod:`ariasim.active.controller`: the trainable :class:`Controller`;
* :mod:`ariasim.active.loader`: :func:`load_controller`, standalone (json, numpy, lightgbm);
* :mod:`ariasim.active.engine`: the online loop :func:`run_active`.

The names below are imported lazily, so that ``import ariasim.active.loader`` stays light
(no pandas, no Dask) for production frameworks that only load a saved controller.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ActiveConfig",
    "ActiveResult",
    "ChunkResult",
    "ControlPoint",
    "Controller",
    "Pipeline",
    "SavedController",
    "Stage",
    "load_controller",
    "run_active",
    "run_chunk",
]

_WHERE = {
    "ActiveConfig": "engine",
    "ActiveResult": "engine",
    "run_active": "engine",
    "ChunkResult": "pipeline",
    "ControlPoint": "pipeline",
    "Pipeline": "pipeline",
    "Stage": "pipeline",
    "run_chunk": "pipeline",
    "Controller": "controller",
    "SavedController": "loader",
    "load_controller": "loader",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"ariasim.active.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'ariasim.active' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
