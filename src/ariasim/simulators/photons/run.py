"""One photon-simulation run from a configuration: resolve, build, simulate, write.

What ``ariasim simulate photons`` does, as a library call: the configuration file, then
the overrides (command-line flags), over the library's defaults
(:mod:`~.config`); the hits table (and optionally the per-module counts) written with
their provenance (the resolved configuration, the seed actually used and the library's
description of the source, medium and detector).

References:
    D. Chirkin, NIM A 725 (2013) 141 (PPC); clsim (C. Kopper et al.).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ariasim.simulators.photons.config import build, resolve_config
from ariasim.simulators.photons.detector import Detector
from ariasim.simulators.photons.optics import Medium
from ariasim.simulators.photons.simulate import PhotonSimulation, simulate

__all__ = ["PRODUCER", "PhotonRun", "run_photons"]

#: Producer name stored in the provenance of the hits and counts tables.
PRODUCER = "ariasim.simulators.photons"


@dataclass
class PhotonRun:
    """What :func:`run_photons` did.

    Arguments:
        config: The resolved configuration (unset keys ``None``: library defaults), with
            the seed actually used.
        source: The source built from it.
        medium: The medium.
        detector: The modules.
        result: The simulation (hits, counts, timing).
        hits_path: The hits file written.
        counts_path: The counts file written, or None.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "hits.csv"
        >>> r = run_photons(overrides={"source": {"n_photons": 1e3}, "out": str(out)})
        >>> r.summary()["modules"], r.summary()["source"], r.hits_path == out
        ('6 (oversize 1)', 'flasher', True)
    """

    config: dict[str, Any]
    source: Any
    medium: Medium
    detector: Detector
    result: PhotonSimulation
    hits_path: Path
    counts_path: Path | None

    def summary(self) -> dict[str, str]:
        """Rows of a human-readable summary (label -> text)."""
        res = self.result
        rows = {
            "source": str(self.config["source"]["type"]),
            "medium": self.medium.name,
            "modules": f"{self.detector.n_modules} (oversize {self.detector.oversize:g})",
            "events": f"{res.n_events}",
            "photons propagated": f"{res.n_photons:,}",
            "hits": f"{len(res.hits):,}",
        }
        per_mod = res.hits.groupby("module_id").size()
        if len(per_mod):
            top = per_mod.sort_values(ascending=False).head(6)
            rows["hits per module"] = (", ".join(f"{k}: {v}" for k, v in top.items())
                                       + (" ..." if len(per_mod) > 6 else ""))
        rows["rate"] = (f"{res.photons_per_second:,.0f} photons/s ({res.n_threads} threads, "
                        f"{res.photons_per_cpu_second:,.0f} per CPU-s)")
        rows["hits file"] = str(self.hits_path)
        if self.counts_path is not None:
            rows["counts file"] = str(self.counts_path)
        return rows


def _set_keys(d: Mapping[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in d.items():
        if isinstance(v, Mapping):
            out |= _set_keys(v, f"{prefix}{k}.")
        elif v is not None:
            out.add(f"{prefix}{k}")
    return out


def run_photons(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    progress: bool = False,
) -> PhotonRun:
    """Resolve a run configuration, simulate it and write the hits (and counts) tables.

    Arguments:
        config_file: TOML configuration file (optional), see :mod:`~.config`.
        overrides: Nested dict over the file (``None`` values are ignored), e.g. the
            command-line flags.
        labels: How to name an override's key in errors, e.g. ``{"medium.ice_table":
            "--ice-table"}``; used for the keys the overrides set and for ``source.type``
            and ``medium.name``.
        progress: Show a progress bar.

    Returns:
        A :class:`PhotonRun` (its :meth:`~PhotonRun.summary` for printing).
    """
    from ariasim.io import write_table
    from ariasim.utils import load_toml

    file_cfg = load_toml(config_file) if config_file is not None else None
    overrides = dict(overrides or {})
    used = _set_keys(overrides)
    # a key's label names where it was set; the kind keys are labelled anyway (a flag
    # is how to change them)
    names = {k: v for k, v in (labels or {}).items()
             if k in used or k in ("source.type", "medium.name")}
    cfg = resolve_config(file_cfg, overrides)
    source, medium, detector, run = build(cfg, labels=names)
    result = simulate(source, medium, detector, progress=progress, **run)
    cfg["seed"] = result.config["seed"]
    prov = {**cfg, "resolved": {"source": source.describe(), "medium": medium.describe(),
                                "detector": detector.describe()}}
    hits_path = write_table(result.hits, cfg["out"], producer=PRODUCER, config=prov,
                            seed=cfg["seed"])
    counts_path = None
    if cfg["counts_out"]:
        counts_path = write_table(result.counts, cfg["counts_out"], producer=PRODUCER,
                                  config=prov, seed=cfg["seed"])
    return PhotonRun(config=cfg, source=source, medium=medium, detector=detector,
                     result=result, hits_path=Path(hits_path), counts_path=counts_path and
                     Path(counts_path))
