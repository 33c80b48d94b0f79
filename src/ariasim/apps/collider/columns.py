"""The fast simulation's input read without pandas: Parquet columns straight into NumPy.

``ariasim fastsim`` spends most of its start-up importing pandas, which the simulation
itself does not need (:meth:`FastSimulator.columns
<ariasim.apps.collider.fastsim.FastSimulator.columns>` works on NumPy arrays and
:func:`ariasim.io.write_table` writes a mapping of such columns with Arrow alone).
:func:`read_truth_columns` reads the two inputs that make up nearly every run, a Parquet
*full-simulation table* (its truth columns) or a Parquet *complete particle table* (every
column of :data:`~ariasim.simulators.collider.schema.PARTICLE_SCHEMA`, what
``ariasim simulate collider --truth-only`` and the particle gun write), with PyArrow into
NumPy arrays equal, bit for bit, to the columns the general reader
(:func:`ariasim.apps.collider.workflow.read_truth`, through pandas) hands to the fast
simulation.

Anything else returns None and goes the general way: other formats (CSV, ROOT, HepMC3,
LHE), particle tables that need completing (E from the mass, the momentum from px, py,
pz...), and every value the general reader would refuse or convert (nulls in integer
columns, non-numeric columns, NaN, negative masses...), so its error messages stay the
only ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ariasim.simulators.collider.schema import PARTICLE_SCHEMA

__all__ = ["FULL_TRUTH_COLUMNS", "read_truth_columns"]

#: The columns of a full-simulation table the fast simulation reads (those present).
FULL_TRUTH_COLUMNS = (
    "event_id",
    "particle_id",
    "pdg",
    "truth_charge",
    "charge",
    "truth_pt_gev",
    "truth_eta",
    "truth_phi",
    "truth_e_gev",
    "truth_vz_mm",
    "vz_mm",
)
#: A complete particle table's columns and their dtypes.
_PARTICLE_DTYPES = {c.name: np.dtype(c.dtype) for c in PARTICLE_SCHEMA}
#: Columns of whole numbers.
_WHOLE = frozenset(c.name for c in PARTICLE_SCHEMA if c.dtype == "int64")


def _particle_column(name: str, v: np.ndarray) -> np.ndarray | None:
    """A complete particle table's column, checked as the general reader checks it
    (:func:`~ariasim.simulators.collider.inputs.particles_from_table`) and in its dtype;
    None where that reader would raise."""
    if v.dtype.kind == "f":
        ok = np.isfinite(v)
        if name in _WHOLE:
            ok &= v == np.round(v)
        if not ok.all():
            return None
    if name in ("mass_gev", "e_gev") and (v < 0).any():
        return None
    return v.astype(_PARTICLE_DTYPES[name], copy=False)


def read_truth_columns(path: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """The columns of a Parquet full-simulation table or complete particle table that the
    fast simulation reads, as NumPy arrays, without pandas (module docstring).

    Arguments:
        path: The input table.

    Returns:
        Column name -> array, equal to the general reader's columns; None when the file
        must go the general way (another format, a table to complete, a value the general
        reader refuses or converts).

    Example:
        >>> import tempfile, pathlib
        >>> from ariasim.io import write_table
        >>> cols = {c.name: np.ones(3, dtype=c.dtype) for c in PARTICLE_SCHEMA}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = write_table(cols, pathlib.Path(tmp) / "t.parquet", producer="doc")
        ...     back = read_truth_columns(p)
        ...     cols["mass_gev"][0] = -1.0  # refused by the general reader: None here
        ...     bad = read_truth_columns(write_table(cols, p, producer="doc"))
        >>> sorted(back) == sorted(cols), back["pdg"].dtype, bad
        (True, dtype('int64'), None)
    """
    p = Path(path)
    if not p.name.lower().endswith((".parquet", ".pq")) or not p.is_file():
        return None
    import pyarrow.parquet as pq

    from ariasim.io import read_numeric_columns

    try:
        names = pq.read_schema(p).names
        if len(set(names)) != len(names):
            return None
        full = "truth_pt_gev" in names
        if full:
            wanted = [c for c in FULL_TRUTH_COLUMNS if c in names]
        elif set(_PARTICLE_DTYPES) <= set(names):
            wanted = list(_PARTICLE_DTYPES)
        else:
            return None
        columns = read_numeric_columns(p, wanted)
    except Exception:  # the general reader names the problem
        return None
    if columns is None or len(columns[wanted[0]]) == 0:
        return None
    out: dict[str, np.ndarray] = {}
    for c, v in columns.items():
        checked = v if full else _particle_column(c, v)
        if checked is None:
            return None
        out[c] = checked
    return out
