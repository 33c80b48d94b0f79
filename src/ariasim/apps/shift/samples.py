"""The two samples of a domain-shift application, with what they cost to simulate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ShiftSamples"]


@dataclass
class ShiftSamples:
    """A source sample to correct, a target sample to reach, and what making them cost.

    Arguments:
        source: Source rows (old ice, nominal simulation, fast simulation, ...): exactly the
            ``features`` and ``context`` columns.
        target: Target rows, the same columns.
        features: Columns the shift acts on (to morph or reweight).
        context: Columns the shift is conditional on (never changed).
        cpu_seconds: Process CPU seconds spent producing each part (``"source"``,
            ``"target"``, ``"fresh"``, and any others, e.g. a surrogate's training).
        provenance: JSON-able settings, seeds and counts (what made the samples).
        source_weight, target_weight: Per-row weights (None: all 1).
        fresh: A second target sample independent of ``target`` (the statistical floor of
            two fresh samples), or None.
        fresh_weight: Its weights.
        events: Per sample, the event id of each row (rows of one event are correlated).
        models: Objects that made the samples, kept to draw more rows like them (e.g.
            ``"source"``: the photon surrogate of
            :func:`~ariasim.apps.shift.photon_surrogate.photon_surrogate_samples`); not
            written anywhere (the provenance describes them).

    Example:
        >>> s = ShiftSamples(pd.DataFrame({"x": [1.0, 2.0], "c": [0.0, 1.0]}),
        ...                  pd.DataFrame({"x": [1.5, 2.5, 3.5], "c": [0.0, 1.0, 2.0]}),
        ...                  ["x"], ["c"], {"source": 0.5, "target": 3.0}, {})
        >>> s.rows_per_cpu_second()
        {'source': 4.0, 'target': 1.0}
        >>> s.columns, s.n_rows
        (['x', 'c'], {'source': 2, 'target': 3})
    """

    source: pd.DataFrame
    target: pd.DataFrame
    features: list[str]
    context: list[str]
    cpu_seconds: dict[str, float]
    provenance: dict[str, Any]
    source_weight: np.ndarray | None = None
    target_weight: np.ndarray | None = None
    fresh: pd.DataFrame | None = None
    fresh_weight: np.ndarray | None = None
    events: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Feature then context columns (the columns of every sample)."""
        return [*self.features, *self.context]

    @property
    def n_rows(self) -> dict[str, int]:
        """Rows of each sample."""
        out = {"source": len(self.source), "target": len(self.target)}
        if self.fresh is not None:
            out["fresh"] = len(self.fresh)
        return out

    def rows_per_cpu_second(self) -> dict[str, float]:
        """Rows of each sample per CPU second spent producing it."""
        out = {}
        for side, n in self.n_rows.items():
            cpu = self.cpu_seconds.get(side, float("nan"))
            out[side] = n / cpu if cpu > 0 else float("inf")
        return out
