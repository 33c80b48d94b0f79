"""Top-level photon simulation: sources -> batches -> compiled kernel -> hits tables.

The photons are generated and handed to the kernel batch by batch by
:func:`~.batches.run_batches` (blocks of at most 65,536 photons of one event, chunks of
1,024 photons with their own random stream, batches of about ``batch_size`` photons, so
memory stays bounded: about 130 bytes per photon of the batch). Block and chunk keys
derive from ``(seed, event, block, chunk)`` only, so the output does not depend on
``batch_size`` or the number of threads.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.simulators.photons.batches import (
    BLOCK_PHOTONS,
    CHUNK_PHOTONS,
    PhotonBatch,
    run_batches,
)
from ariasim.simulators.photons.detector import Detector
from ariasim.simulators.photons.optics import Medium
from ariasim.simulators.photons.sources import PhotonSource

__all__ = ["BLOCK_PHOTONS", "CHUNK_PHOTONS", "PhotonSimulation", "simulate"]

HIT_COLUMNS = ("event_id", "module_id", "time_ns", "wavelength_nm", "weight")
COUNT_COLUMNS = ("event_id", "module_id", "n_hits", "sum_weight")


@dataclass
class PhotonSimulation:
    """Result of :func:`simulate`.

    Arguments:
        hits: One row per detected photon: event_id, module_id, time_ns, wavelength_nm,
            weight (plus x_m, y_m, z_m of the hit point with ``hit_positions=True``).
        counts: Per event and module: event_id, module_id, n_hits, sum_weight.
        n_events: Number of events.
        n_photons: Photons propagated (after acceptance thinning and oversize).
        wall_s: Wall-clock time of the propagation kernel (excluding its one-time
            compilation or loading from numba's cache, and photon generation).
        cpu_s: Process CPU time (all threads) of the propagation kernel.
        n_threads: Threads used.
        config: JSON-able description of the run (for provenance).

    Example:
        >>> from ariasim.simulators.photons import Flasher, constant_medium, single_module
        >>> det = single_module((0, 0, 2), radius_m=1.0, wavelength_acceptance=False)
        >>> res = simulate(Flasher(n_photons=2000), constant_medium(50.0, 20.0), det, seed=1)
        >>> res.n_photons, list(res.counts.columns), len(res.hits) > 0
        (2000, ['event_id', 'module_id', 'n_hits', 'sum_weight'], True)
    """

    hits: pd.DataFrame
    counts: pd.DataFrame
    n_events: int
    n_photons: int
    wall_s: float
    cpu_s: float
    n_threads: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def photons_per_second(self) -> float:
        """Propagated photons per wall-clock second."""
        return self.n_photons / self.wall_s if self.wall_s > 0 else math.inf

    @property
    def photons_per_cpu_second(self) -> float:
        """Propagated photons per CPU-second (summed over threads)."""
        return self.n_photons / self.cpu_s if self.cpu_s > 0 else math.inf


_GRID_CACHE: dict[tuple, tuple] = {}


def _cached_grid(build: Any, mods: np.ndarray, radius: float, cell_m: float | None) -> tuple:
    """Spatial index of a detector, reused across calls (a few detectors are kept)."""
    key = (mods.shape, mods.tobytes(), float(radius), cell_m)
    if key not in _GRID_CACHE:
        if len(_GRID_CACHE) >= 4:
            _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
        _GRID_CACHE[key] = build(mods, radius, cell_m)
    return _GRID_CACHE[key]


def simulate(
    source: PhotonSource | Sequence[PhotonSource],
    medium: Medium,
    detector: Detector,
    *,
    n_events: int = 1,
    seed: int | None = None,
    batch_size: int = 1 << 19,
    n_threads: int | None = None,
    method: str = "grid",
    hit_positions: bool = False,
    progress: bool = False,
    counts: np.ndarray | None = None,
    blocks: tuple[int, int] | None = None,
) -> PhotonSimulation:
    """Propagate the photons of ``n_events`` × sources through a medium to the modules.

    Event ``i * len(sources) + j`` is the ``i``-th repetition of source ``j``.

    References:
        D. Chirkin, NIM A 725 (2013) 141 (PPC); clsim (C. Kopper et al.).

    Arguments:
        source: One source or a sequence of sources (one event each per repetition).
        medium: The optical medium (:mod:`~ariasim.simulators.photons.optics`).
        detector: The modules (:mod:`~ariasim.simulators.photons.detector`).
        n_events: Repetitions of the source list.
        seed: Non-negative integer seed (None: fresh entropy, recorded in ``config``).
        batch_size: Photons per kernel call (memory ~130 bytes per photon).
        n_threads: Threads for the kernel (default: numba's current setting).
        method: ``"grid"`` (spatial index, default) or ``"naive"`` (test every module).
        hit_positions: Also return the hit point (x_m, y_m, z_m) of every hit.
        progress: Show a rich progress bar.
        counts: Photons per event if already drawn with the same seed
            (:func:`~.batches.photon_counts`); default: drawn here.
        blocks: Simulate only the generation blocks ``lo..hi-1`` of
            :func:`~.batches.photon_blocks` (one part of a run; event ids and random
            streams as in the whole run, so the parts' hits, concatenated in order, are
            the whole run's hits). ``n_photons`` then counts that part.

    Returns:
        A :class:`PhotonSimulation`.
    """
    from ariasim.simulators.photons.propagate import build_cell_grid, propagate_kernel

    sources = list(source) if isinstance(source, Sequence) else [source]
    if not sources:
        raise ConfigError("need at least one source", parameter="source")
    if not isinstance(n_events, (int, np.integer)) or n_events < 1:
        raise ConfigError(f"must be a positive integer, got {n_events!r}", parameter="n_events")
    if method not in ("grid", "naive"):
        raise ConfigError(f"expected 'grid' or 'naive', got {method!r}", parameter="method")

    # detector and index arrays for the kernel
    mods = detector.positions_m
    radius = detector.effective_radius_m
    if method == "grid":
        lo, hi, cell, dims, cstart, items, smap, mcell, mdims = _cached_grid(
            build_cell_grid, mods, radius, detector.cell_m
        )
    else:
        lo, hi, cell = np.zeros(3), np.zeros(3), 1.0
        dims, cstart, items = (np.ones(3, np.int64), np.zeros(2, np.int64), np.zeros(0, np.int32))
        smap, mcell, mdims = np.zeros(1, np.float32), 1.0, np.ones(3, np.int64)
    det_args = (
        mods,
        float(radius),
        detector.acceptance_coefficients(),
        detector.acceptance_mode == "weight",
        method == "grid",
        lo,
        hi,
        float(cell),
        dims,
        cstart,
        items,
        smap,
        float(mcell),
        mdims,
    )
    med_args = medium.kernel_args()
    fx = getattr(medium, "effects", None)
    if fx is not None and fx.active:
        # IceCube's ice effects (tilt, anisotropy, birefringence): their own kernel, so a
        # medium without them runs the plain one unchanged
        from ariasim.simulators.photons.propagate import propagate_kernel_ice

        med_args = (*med_args, *fx.kernel_args(medium.n_layers))
        run_kernel = propagate_kernel_ice
    else:
        run_kernel = propagate_kernel

    # the kernel's outputs, reused from batch to batch (collect copies what it keeps)
    bufs: list[np.ndarray] = []

    def kernel(b: PhotonBatch) -> tuple[np.ndarray, ...]:
        if not bufs or bufs[0].size < b.n_photons:
            bufs[:] = [np.empty(b.n_photons, np.int32)]
            bufs.extend(np.empty(b.n_photons) for _ in range(5))  # time, weight, hit x, y, z
        out_mod, *out = (a[: b.n_photons] for a in bufs)
        ph = b.photons
        run_kernel(
            ph["x"],
            ph["y"],
            ph["z"],
            ph["dx"],
            ph["dy"],
            ph["dz"],
            ph["t"],
            ph["wl"],
            ph["w"],
            b.chunk_start,
            b.chunk_key,
            *med_args,
            *det_args,
            out_mod,
            *out,
        )
        return (out_mod, *out)

    hit_parts: list[dict[str, np.ndarray]] = []

    def collect(b: PhotonBatch, out: tuple[np.ndarray, ...]) -> None:
        out_mod, out_t, out_w, hx, hy, hz = out
        sel = np.flatnonzero(out_mod >= 0)
        part = {
            "event_id": b.event_ids(sel),
            "module_id": detector.module_ids[out_mod[sel]],
            "time_ns": out_t[sel],
            "wavelength_nm": b.photons["wl"][sel],
            "weight": out_w[sel],
        }
        if hit_positions:
            part.update(x_m=hx[sel], y_m=hy[sel], z_m=hz[sel])
        hit_parts.append(part)

    ev_src = [sources[e % len(sources)] for e in range(n_events * len(sources))]
    run = run_batches(
        ev_src,
        medium,
        detector,
        kernel,
        seed=seed,
        batch_size=batch_size,
        n_threads=n_threads,
        collect=collect,
        progress=progress,
        label="photons",
        counts=counts,
        blocks=blocks,
    )

    cols = list(HIT_COLUMNS) + (["x_m", "y_m", "z_m"] if hit_positions else [])
    if hit_parts:
        hits = pd.DataFrame({c: np.concatenate([p[c] for p in hit_parts]) for c in cols})
    else:
        hits = pd.DataFrame(
            {c: np.zeros(0, np.int64 if c.endswith("_id") else float) for c in cols}
        )
    per = (
        hits.groupby(["event_id", "module_id"], sort=True)
        .agg(n_hits=("weight", "size"), sum_weight=("weight", "sum"))
        .reset_index()
    )
    per["n_hits"] = per["n_hits"].astype(np.int64)
    config = {
        "sources": [s.describe() for s in sources],
        "n_events": int(n_events),
        "medium": medium.describe(),
        "detector": detector.describe(),
        "seed": run.entropy,
        "method": method,
        "batch_size": int(batch_size),
    }
    return PhotonSimulation(
        hits=hits,
        counts=per,
        n_events=len(ev_src),
        n_photons=run.n_photons,
        wall_s=run.wall_s,
        cpu_s=run.cpu_s,
        n_threads=run.n_threads,
        config=config,
    )
