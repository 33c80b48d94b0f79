"""Read the inputs of the collider simulations into the truth-particle table.

One path for ``ariasim simulate collider --input`` and ``ariasim fastsim --input``:
:func:`read_particles` takes a particle table (.parquet, .csv, .root; the columns of
:data:`~ariasim.simulators.collider.schema.PARTICLE_SCHEMA`, checked and completed by
:func:`particles_from_table`) or generator events (HepMC3, LHE; :func:`read_events`).
From events, final-state particles are taken: status 1 in HepMC3 (with the production
vertex), status 1 in LHE (at the origin). Errors name the file and the column.

References:
    A. Buckley et al., "The HepMC3 event record library", Comput. Phys. Commun. 260 (2021)
    107310. J. Alwall et al., "A standard format for Les Houches Event Files",
    Comput. Phys. Commun. 176 (2007) 300.

Arguments:
    See :func:`read_events`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import InputError
from ariasim.simulators.collider.particles import charge_of, mass_of, particle_table

__all__ = [
    "EVENT_SUFFIXES",
    "TABLE_SUFFIXES",
    "particles_from_table",
    "read_events",
    "read_hepmc",
    "read_lhe",
    "read_particles",
]

#: File endings read as generator events (HepMC3, LHE).
EVENT_SUFFIXES = (".hepmc", ".hepmc3", ".hepmc.gz", ".hepmc3.gz", ".hepmc2", ".lhe", ".lhe.gz")
#: File endings read as particle tables.
TABLE_SUFFIXES = (".parquet", ".csv", ".root")


def read_particles(path: str | os.PathLike[str], *, max_events: int | None = None) -> pd.DataFrame:
    """The truth particles of a particle table or of an event file, checked and completed.

    Arguments:
        path: Particle table (.parquet, .csv, .root, the columns of
            :data:`~ariasim.simulators.collider.schema.PARTICLE_SCHEMA`; a full-simulation
            table is read through its truth columns) or events (.hepmc, .hepmc3, .lhe,
            .lhe.gz, see :func:`read_events`).
        max_events: Read at most this many events (the first ones, in file order).

    Returns:
        The standard particle table (columns of
        :func:`~ariasim.simulators.collider.particles.particle_table`).
    """
    p = Path(path)
    if not p.exists():
        raise InputError("input not found", path=p)
    if p.is_dir():
        raise InputError("input is a folder, not a file", path=p)
    name = p.name.lower()
    if name.endswith(EVENT_SUFFIXES):
        return read_events(p, max_events=max_events)
    if not name.endswith(TABLE_SUFFIXES):
        raise InputError(
            "unknown input type: expected a particle table (.parquet, .csv, .root) or events "
            "(.hepmc, .hepmc3, .lhe, .lhe.gz)",
            path=p,
        )
    from ariasim.io import read_table

    out = particles_from_table(read_table(p), source=p)
    if max_events is not None:
        ev = out["event_id"].to_numpy()
        first = pd.unique(ev)[:max_events]
        out = out.loc[np.isin(ev, first)].reset_index(drop=True)
    return out


#: A full-simulation table's truth columns -> the particle table's.
_FULL_TRUTH = {
    "truth_pt_gev": "pt_gev",
    "truth_eta": "eta",
    "truth_phi": "phi",
    "truth_e_gev": "e_gev",
    "truth_charge": "charge",
    "truth_vz_mm": "vz_mm",
}
_WHOLE = ("event_id", "particle_id", "pdg", "charge")


def _numbers(table: pd.DataFrame, col: str, source: Any) -> np.ndarray:
    """Column ``col`` as finite float64 (whole numbers for ids and charges), else an error
    naming it."""
    dt = table[col].dtype
    if not pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt):
        raise InputError(f"expected numbers, got values of type {dt}", path=source, column=col)
    if pd.api.types.is_integer_dtype(dt) and not table[col].hasnans:
        return table[col].to_numpy()  # whole and finite already
    v = table[col].to_numpy(float)
    bad = ~np.isfinite(v)
    if col in _WHOLE:
        bad |= v != np.round(v)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        what = "whole numbers" if col in _WHOLE else "finite numbers"
        raise InputError(
            f"expected {what}; {int(bad.sum())} rows are not (first: row {k}, value {v[k]!r})",
            path=source,
            column=col,
        )
    return v


def particles_from_table(table: pd.DataFrame, *, source: Any = None) -> pd.DataFrame:
    """Check a user's particle table and complete it to the standard particle table.

    Needed: ``event_id``, ``pdg`` and the momentum, either ``px_gev, py_gev, pz_gev`` or
    ``pt_gev, eta, phi``; the other columns of
    :data:`~ariasim.simulators.collider.schema.PARTICLE_SCHEMA` take their defaults
    (E from the species' mass, vertex at the origin). Columns that are
    given are kept as they are (not recomputed); other columns are dropped. A
    full-simulation table (``truth_pt_gev``, ...) is read through its truth columns.

    Arguments:
        table: The table.
        source: File name for error messages.

    Example:
        >>> import pandas as pd
        >>> t = particles_from_table(pd.DataFrame({"event_id": [0, 1], "pdg": [13, 22],
        ...     "pt_gev": [20.0, 5.0], "eta": [0.5, -1.0], "phi": [0.0, 1.0]}))
        >>> t[["event_id", "charge", "pt_gev"]].values.tolist()
        [[0.0, -1.0, 20.0], [1.0, 0.0, 5.0]]
    """
    if "truth_pt_gev" in table.columns and not {"pt_gev", "px_gev"} & set(table.columns):
        table = table[[c for c in table.columns if c in _FULL_TRUTH or c in _WHOLE]]
        table = table.rename(columns=_FULL_TRUTH)
    if len(table) == 0:
        raise InputError("the particle table has no rows", path=source)
    cols = set(table.columns)
    for c, what in (("event_id", "event number"), ("pdg", "PDG code")):
        if c not in cols:
            raise InputError(
                f"particle table lacks the {what} of each particle", path=source, column=c
            )
    p3, pep = ("px_gev", "py_gev", "pz_gev"), ("pt_gev", "eta", "phi")
    if not (cols.issuperset(p3) or cols.issuperset(pep)):
        need = pep if len(cols & set(pep)) > len(cols & set(p3)) else p3
        missing = [c for c in need if c not in cols]
        raise InputError(
            "particle table needs the momentum as px_gev, py_gev, pz_gev or as pt_gev, eta, "
            "phi (GeV, rad)",
            path=source,
            column=missing[0],
        )
    given = {c: _numbers(table, c, source) for c in table.columns if c in _KNOWN}
    if cols.issuperset(_KNOWN):  # a complete table (e.g. the gun's): checked, kept as is
        for c in ("mass_gev", "e_gev"):
            if (given[c] < 0).any():
                raise InputError("must be >= 0", path=source, column=c)
        return pd.DataFrame(
            {c: table[c].to_numpy(_STANDARD_DTYPES[c], copy=False) for c in _STANDARD_DTYPES},
            copy=False,
        )
    if cols.issuperset(p3):
        px, py, pz = given["px_gev"], given["py_gev"], given["pz_gev"]
    else:
        if not (given["pt_gev"] > 0).all():
            raise InputError("transverse momentum must be > 0", path=source, column="pt_gev")
        pt, eta, phi = given["pt_gev"], given["eta"], given["phi"]
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    for c in ("mass_gev", "e_gev"):
        if c in given and (given[c] < 0).any():
            raise InputError("must be >= 0", path=source, column=c)
    pdg = given["pdg"].astype(np.int64)
    mass = given.get("mass_gev")
    if mass is None and "e_gev" not in given:
        mass = np.nan_to_num(mass_of(pdg), nan=0.0)  # unknown species: massless
    out = particle_table(
        given["event_id"].astype(np.int64),
        pdg,
        px,
        py,
        pz,
        e_gev=given.get("e_gev"),
        mass_gev=mass,
        vx_mm=given.get("vx_mm"),
        vy_mm=given.get("vy_mm"),
        vz_mm=given.get("vz_mm"),
        charge=given["charge"].astype(np.int64) if "charge" in given else charge_of(pdg),
    )
    for c in ("particle_id", *pep):
        if c in given:
            out[c] = given[c].astype(out[c].dtype)
    return out


#: The columns and dtypes of the standard particle table, in order.
_STANDARD_DTYPES = {
    c: np.int64 if c in _WHOLE else np.float64
    for c in (
        "event_id",
        "particle_id",
        "pdg",
        "charge",
        "mass_gev",
        "px_gev",
        "py_gev",
        "pz_gev",
        "e_gev",
        "pt_gev",
        "eta",
        "phi",
        "vx_mm",
        "vy_mm",
        "vz_mm",
    )
}
#: The columns :func:`particles_from_table` reads: those of the standard table.
_KNOWN = frozenset(_STANDARD_DTYPES)


def read_events(path: str | os.PathLike[str], *, max_events: int | None = None) -> pd.DataFrame:
    """Final-state particles of a HepMC3 (``.hepmc``, ``.hepmc3``) or LHE (``.lhe[.gz]``) file.

    Arguments:
        path: Event file.
        max_events: Read at most this many events.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("event file not found", path=p)
    name = p.name.lower()
    if name.endswith((".lhe", ".lhe.gz")):
        return read_lhe(p, max_events=max_events)
    if name.endswith((".hepmc", ".hepmc3", ".hepmc.gz", ".hepmc3.gz", ".hepmc2")):
        return read_hepmc(p, max_events=max_events)
    raise InputError("unknown event-file type (expected .hepmc, .hepmc3, .lhe or .lhe.gz)", path=p)


def _finish(cols: dict[str, list], p: Path) -> pd.DataFrame:
    if not cols["event_id"]:
        raise InputError("no final-state particles found", path=p)
    arr = {k: np.asarray(v) for k, v in cols.items()}
    for k in ("px", "py", "pz", "e"):
        if not np.all(np.isfinite(arr[k])):
            raise InputError(f"non-finite momentum component {k}", path=p)
    return particle_table(
        arr["event_id"],
        arr["pdg"],
        arr["px"],
        arr["py"],
        arr["pz"],
        e_gev=arr["e"],
        vx_mm=arr["vx"],
        vy_mm=arr["vy"],
        vz_mm=arr["vz"],
    )


def read_hepmc(path: str | os.PathLike[str], *, max_events: int | None = None) -> pd.DataFrame:
    """Final-state (status 1) particles of a HepMC3 file, momenta converted to GeV, vertices to mm.

    Arguments:
        path: HepMC file (any format pyhepmc recognises).
        max_events: Read at most this many events.
    """
    import pyhepmc

    p = Path(path)
    cols: dict[str, list] = {
        k: [] for k in ("event_id", "pdg", "px", "py", "pz", "e", "vx", "vy", "vz")
    }
    n_read = 0
    try:
        with pyhepmc.open(str(p)) as f:
            for i, evt in enumerate(f):
                if max_events is not None and i >= max_events:
                    break
                n_read += 1
                to_gev = 1.0 if evt.momentum_unit == pyhepmc.Units.GEV else 1e-3
                to_mm = 1.0 if evt.length_unit == pyhepmc.Units.MM else 10.0
                for part in evt.particles:
                    if part.status != 1:
                        continue
                    m = part.momentum
                    v = part.production_vertex
                    pos = v.position if v is not None else None
                    cols["event_id"].append(evt.event_number)
                    cols["pdg"].append(part.pid)
                    cols["px"].append(m.px * to_gev)
                    cols["py"].append(m.py * to_gev)
                    cols["pz"].append(m.pz * to_gev)
                    cols["e"].append(m.e * to_gev)
                    cols["vx"].append(pos.x * to_mm if pos is not None else 0.0)
                    cols["vy"].append(pos.y * to_mm if pos is not None else 0.0)
                    cols["vz"].append(pos.z * to_mm if pos is not None else 0.0)
    except InputError:
        raise
    except Exception as exc:  # pyhepmc raises a variety of I/O errors
        raise InputError(f"cannot read HepMC events: {exc}", path=p) from exc
    if max_events is None or n_read < max_events:
        # the reader stops silently at an event it cannot parse: compare with the number
        # of event records ("E ..." lines) of a text file, so that a truncated file is an
        # error rather than a shorter sample
        n_file = _count_event_lines(p)
        if n_file is not None and n_file > n_read:
            raise InputError(
                f"{n_file} events in the file but only {n_read} readable: event "
                f"{n_read + 1} is truncated or corrupt",
                path=p,
            )
    return _finish(cols, p)


def _count_event_lines(p: Path) -> int | None:
    """Number of event records in a HepMC text file (``None`` for other formats)."""
    import gzip

    name = p.name.lower()
    opener: Any = gzip.open if name.endswith(".gz") else open
    try:
        with opener(p, "rb") as fh:
            head = fh.read(64)
            if not head.lstrip().startswith(b"HepMC::"):
                return None
            fh.seek(0)
            return sum(1 for line in fh if line.startswith(b"E "))
    except (OSError, EOFError):
        return None


def read_lhe(path: str | os.PathLike[str], *, max_events: int | None = None) -> pd.DataFrame:
    """Final-state (status 1) particles of a Les Houches Event file (energies in GeV).

    Arguments:
        path: LHE file (optionally gzipped).
        max_events: Read at most this many events.
    """
    import pylhe

    p = Path(path)
    cols: dict[str, list] = {
        k: [] for k in ("event_id", "pdg", "px", "py", "pz", "e", "vx", "vy", "vz")
    }
    try:
        if hasattr(pylhe, "LHEFile"):
            events = pylhe.LHEFile.fromfile(str(p)).events
        else:  # pylhe < 0.8
            events = pylhe.read_lhe(str(p))  # type: ignore[attr-defined]
        for i, evt in enumerate(events):
            if max_events is not None and i >= max_events:
                break
            for part in evt.particles:
                if int(part.status) != 1:
                    continue
                cols["event_id"].append(i)
                cols["pdg"].append(int(part.id))
                cols["px"].append(float(part.px))
                cols["py"].append(float(part.py))
                cols["pz"].append(float(part.pz))
                cols["e"].append(float(part.e))
                for k in ("vx", "vy", "vz"):
                    cols[k].append(0.0)
    except InputError:
        raise
    except Exception as exc:  # pylhe raises XML and value errors
        raise InputError(f"cannot read LHE events: {exc}", path=p) from exc
    return _finish(cols, p)
