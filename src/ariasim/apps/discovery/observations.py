"""A user's observations of a flow: front positions and deposit depths from CSV files.

Two tables, each optional (at least one observation in all):

* front positions: columns ``t_s`` (time since release, s, strictly increasing, >= 0),
  ``front_m`` (front position as arc length along the bed, m) and optionally ``sigma_m``
  (its standard uncertainty, m, > 0);
* deposit depths: columns ``s_m`` (arc length, m, strictly increasing, >= 0),
  ``deposit_m`` (final depth, m) and optionally ``sigma_m``.

Lines starting with ``#`` are comments. Where ``sigma_m`` is absent, the configuration's
``sigma_front_m`` / ``sigma_deposit_m`` is used. Every error names the file and the column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.discovery.forward import ObservableSpec
from ariasim.errors import ConfigError, InputError

__all__ = [
    "DEPOSIT_COLUMNS",
    "FRONT_COLUMNS",
    "ObservedData",
    "load_observations",
    "read_observation_table",
]

#: Columns of a front-position file: (x column, value column).
FRONT_COLUMNS = ("t_s", "front_m")
#: Columns of a deposit file: (x column, value column).
DEPOSIT_COLUMNS = ("s_m", "deposit_m")


def read_observation_table(
    path: str | os.PathLike[str],
    columns: Sequence[str],
    *,
    default_sigma: float | None = None,
    sigma_key: str = "sigma",
) -> pd.DataFrame:
    """Read and check one observation CSV; returns the columns ``columns`` + ``sigma_m``.

    Arguments:
        path: The CSV file.
        columns: Its abscissa column (strictly increasing, >= 0) and its value column.
        default_sigma: The uncertainty of every row where the file has no ``sigma_m``.
        sigma_key: The configuration key of ``default_sigma`` (named in the error when
            both are missing).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "front.csv"
        >>> _ = p.write_text("t_s,front_m\\n2,15.1\\n4,29.0\\n")
        >>> read_observation_table(p, FRONT_COLUMNS, default_sigma=1.0)["sigma_m"].tolist()
        [1.0, 1.0]
    """
    p = Path(path)
    if not p.exists():
        raise InputError("observation file not found", path=p)
    if p.is_dir():
        raise InputError("is a folder, expected a CSV file", path=p)
    try:
        table = pd.read_csv(p, comment="#", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError("empty file, expected a CSV table with a header", path=p) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(
            f"not a readable CSV table ({' '.join(str(exc).split())})", path=p
        ) from None
    table.columns = [str(c).strip() for c in table.columns]
    allowed = [*columns, "sigma_m"]
    for col in columns:
        if col not in table.columns:
            raise InputError(f"missing column (expected {', '.join(allowed)})", path=p, column=col)
    for col in table.columns:
        if col not in allowed:
            raise InputError(f"unknown column (expected {', '.join(allowed)})", path=p, column=col)
    if len(table) == 0:
        raise InputError("no rows", path=p)
    out: dict[str, np.ndarray] = {}
    for col in [c for c in allowed if c in table.columns]:
        vals = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(vals))
        if bad.size:
            raw = table[col].iloc[bad[0]]
            raise InputError(f"row {bad[0] + 1}: not a finite number ({raw!r})", path=p, column=col)
        out[col] = vals
    x = out[columns[0]]
    if np.any(x < 0):
        raise InputError(f"must be >= 0, got {x.min():g}", path=p, column=columns[0])
    if np.any(np.diff(x) <= 0):
        i = int(np.flatnonzero(np.diff(x) <= 0)[0])
        raise InputError(
            f"must be strictly increasing (row {i + 2}: {x[i + 1]:g} after {x[i]:g})",
            path=p,
            column=columns[0],
        )
    if "sigma_m" in out:
        if np.any(out["sigma_m"] <= 0):
            i = int(np.flatnonzero(out["sigma_m"] <= 0)[0])
            raise InputError(
                f"row {i + 1}: uncertainty must be > 0, got {out['sigma_m'][i]:g}",
                path=p,
                column="sigma_m",
            )
    elif default_sigma is None:
        raise ConfigError(
            f"the file {p.name} has no sigma_m column: give its uncertainty here",
            parameter=sigma_key,
        )
    else:
        out["sigma_m"] = np.full(len(x), float(default_sigma))
    return pd.DataFrame({c: out[c] for c in allowed})


@dataclass(frozen=True)
class ObservedData:
    """The observations of one flow, ready for a calibration.

    Attributes:
        spec: What the forward model must compute (:class:`ObservableSpec`).
        values: The observed values, shape (m,), in ``spec.names`` order.
        sigma: Their standard uncertainties, shape (m,).
        names: ``spec.names``.
        files: The files read, keyed by ``front`` / ``deposit``.

    Example:
        >>> spec = ObservableSpec(runout=True)
        >>> obs = ObservedData(spec, np.array([115.0]), np.array([2.0]), spec.names, {})
        >>> obs.names
        ['runout']
    """

    spec: ObservableSpec
    values: np.ndarray
    sigma: np.ndarray
    names: list[str]
    files: dict[str, str]

    def observations(self) -> Any:
        """The calibration's :class:`ariasim.discovery.calibration.Observations`."""
        from ariasim.discovery.calibration import Observations

        return Observations(values=self.values, sigma=self.sigma, names=list(self.names))


def load_observations(
    front: str | os.PathLike[str] | None = None,
    deposit: str | os.PathLike[str] | None = None,
    *,
    sigma_front_m: float | None = None,
    sigma_deposit_m: float | None = None,
    runout_m: float | None = None,
    sigma_runout_m: float | None = None,
    prefix: str = "observations.",
) -> ObservedData:
    """Read the observation files into an :class:`ObservedData`.

    Arguments:
        front: CSV of front positions (``t_s``, ``front_m``, optional ``sigma_m``).
        deposit: CSV of deposit depths (``s_m``, ``deposit_m``, optional ``sigma_m``).
        sigma_front_m, sigma_deposit_m: Uncertainties where a file has no ``sigma_m``.
        runout_m, sigma_runout_m: An observed run-out (arc length, m) and its uncertainty.
        prefix: How configuration errors name the keys (``observations.``).
    """
    if front is None and deposit is None and runout_m is None:
        raise ConfigError(
            "no observations: give front = 'file.csv', deposit = 'file.csv' or runout_m",
            parameter=prefix + "front",
        )
    values: list[np.ndarray] = []
    sigma: list[np.ndarray] = []
    times: tuple[float, ...] = ()
    deposit_s: tuple[float, ...] = ()
    files: dict[str, str] = {}
    if front is not None:
        t = read_observation_table(
            front, FRONT_COLUMNS, default_sigma=sigma_front_m, sigma_key=prefix + "sigma_front_m"
        )
        times = tuple(t["t_s"].tolist())
        values.append(t["front_m"].to_numpy())
        sigma.append(t["sigma_m"].to_numpy())
        files["front"] = str(front)
    if deposit is not None:
        d = read_observation_table(
            deposit,
            DEPOSIT_COLUMNS,
            default_sigma=sigma_deposit_m,
            sigma_key=prefix + "sigma_deposit_m",
        )
        deposit_s = tuple(d["s_m"].tolist())
        values.append(d["deposit_m"].to_numpy())
        sigma.append(d["sigma_m"].to_numpy())
        files["deposit"] = str(deposit)
    if runout_m is not None:
        if sigma_runout_m is None:
            raise ConfigError("needed with runout_m", parameter=prefix + "sigma_runout_m")
        values.append(np.array([float(runout_m)]))
        sigma.append(np.array([float(sigma_runout_m)]))
    spec = ObservableSpec(times=times, deposit_s=deposit_s, runout=runout_m is not None)
    return ObservedData(
        spec=spec,
        values=np.concatenate(values).astype(float),
        sigma=np.concatenate(sigma).astype(float),
        names=spec.names,
        files=files,
    )
