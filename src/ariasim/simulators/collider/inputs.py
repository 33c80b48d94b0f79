"""Read generator event files (HepMC3, LHE) into the truth-particle table.

Final-state particles are taken: status 1 in HepMC3 (with the production vertex), status 1
in LHE (at the origin). Errors name the file.

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
from ariasim.simulators.collider.particles import particle_table

__all__ = ["read_events", "read_hepmc", "read_lhe"]


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
