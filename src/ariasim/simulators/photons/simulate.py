"""Top-level photon simulation: sources -> batches -> compiled kernel -> hits tables.

Work is split into *blocks* of at most 65,536 photons of one event, and blocks into
*chunks* of 1,024 photons with their own random stream; blocks are gathered into batches
of about ``batch_size`` photons, so memory stays bounded (about 130 bytes per photon of
the batch) however many photons are simulated. Block and chunk keys derive from
``(seed, event, block, chunk)`` only, so the output does not depend on ``batch_size`` or
the number of threads.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.simulators.photons.detector import Detector
from ariasim.simulators.photons.optics import Medium
from ariasim.simulators.photons.sources import PhotonSource

__all__ = ["BLOCK_PHOTONS", "CHUNK_PHOTONS", "PhotonSimulation", "simulate"]

#: Photons per generation block (one random-number key, one event).
BLOCK_PHOTONS = 65536
#: Photons per kernel chunk (one xoshiro stream, one thread at a time).
CHUNK_PHOTONS = 1024

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


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[int]:
    import numba

    old = numba.get_num_threads()
    if n is None:
        yield old
        return
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ConfigError(f"must be in 1..{numba.config.NUMBA_NUM_THREADS}, got {n}",
                          parameter="n_threads")
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)


_GRID_CACHE: dict[tuple, tuple] = {}


def _cached_grid(build: Any, mods: np.ndarray, radius: float, cell_m: float | None) -> tuple:
    """Spatial index of a detector, reused across calls (a few detectors are kept)."""
    key = (mods.shape, mods.tobytes(), float(radius), cell_m)
    if key not in _GRID_CACHE:
        if len(_GRID_CACHE) >= 4:
            _GRID_CACHE.pop(next(iter(_GRID_CACHE)))
        _GRID_CACHE[key] = build(mods, radius, cell_m)
    return _GRID_CACHE[key]


def _entropy(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"expected a non-negative integer, got {seed!r}", parameter="seed")
    return int(seed)


def _key(entropy: int, *path: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy, spawn_key=tuple(path))


def _photon_counts(ev_src: Sequence[PhotonSource], medium: Medium, detector: Detector,
                   entropy: int) -> np.ndarray:
    """Photons to propagate for each event (event ``e`` draws from key ``(0, e)``)."""
    return np.array([s.photon_count(medium, detector, np.random.default_rng(_key(entropy, 0, e)))
                     for e, s in enumerate(ev_src)], dtype=np.int64)


def _photon_batches(ev_src: Sequence[PhotonSource], counts: np.ndarray, batch_size: int,
                    medium: Medium, detector: Detector, entropy: int
                    ) -> Iterator[tuple[list[tuple[int, int, int]], int, dict[str, np.ndarray],
                                        np.ndarray, np.ndarray]]:
    """Generate the photons of all events, batch by batch.

    Each event is cut into blocks ``(event, block, n)`` of at most :data:`BLOCK_PHOTONS`
    (photons drawn from key ``(1, event, block)``), each block into chunks of
    :data:`CHUNK_PHOTONS` with their RNG keys (from key ``(2, event, block)``); whole blocks
    are gathered into batches of about ``batch_size`` photons (at least one block).

    Yields:
        ``(blocks, n_photons, photons, chunk_start, chunk_key)`` per batch: the photon
        columns (x, y, z, dx, dy, dz, t, wl, w; contiguous float64), the int64 chunk
        starts plus the end, and the uint64 chunk keys.
    """
    from ariasim.simulators.photons.propagate import chunk_keys

    units = [(e, k, min(BLOCK_PHOTONS, int(counts[e]) - k * BLOCK_PHOTONS))
             for e in range(len(ev_src)) for k in range(-(-int(counts[e]) // BLOCK_PHOTONS))]
    ui = 0
    while ui < len(units):
        batch = []
        n_b = 0
        while ui < len(units) and (n_b == 0 or n_b + units[ui][2] <= batch_size):
            batch.append(units[ui])
            n_b += units[ui][2]
            ui += 1
        parts = []
        starts = [np.zeros(1, np.int64)]
        keys = []
        off = 0
        for e, k, n in batch:
            rng = np.random.default_rng(_key(entropy, 1, e, k))
            parts.append(ev_src[e].generate(n, medium, detector, rng))
            nch = -(-n // CHUNK_PHOTONS)
            ends = off + np.minimum(np.arange(1, nch + 1) * CHUNK_PHOTONS, n)
            starts.append(ends.astype(np.int64))
            base = int(_key(entropy, 2, e, k).generate_state(1, np.uint64)[0])
            keys.append(chunk_keys(base, nch))
            off += n
        ph = {c: np.ascontiguousarray(np.concatenate([p[c] for p in parts]), dtype=float)
              for c in parts[0]}
        yield batch, n_b, ph, np.concatenate(starts), np.concatenate(keys)


def _progress_bar(progress: bool, label: str) -> Any:
    """A transient rich progress bar (a null context when ``progress`` is false)."""
    if not progress:
        return contextlib.nullcontext()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True)


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
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"must be a positive integer, got {batch_size!r}",
                          parameter="batch_size")
    entropy = _entropy(seed)

    # photon counts per event
    ev_src = [sources[e % len(sources)] for e in range(n_events * len(sources))]
    counts = _photon_counts(ev_src, medium, detector, entropy)
    n_total = int(counts.sum())

    # medium, detector and index arrays for the kernel
    mods = detector.positions_m
    radius = detector.effective_radius_m
    if method == "grid":
        lo, hi, cell, dims, cstart, items, smap, mcell, mdims = _cached_grid(
            build_cell_grid, mods, radius, detector.cell_m)
    else:
        lo, hi, cell = np.zeros(3), np.zeros(3), 1.0
        dims, cstart, items = (np.ones(3, np.int64), np.zeros(2, np.int64),
                               np.zeros(0, np.int32))
        smap, mcell, mdims = np.zeros(1, np.float32), 1.0, np.ones(3, np.int64)
    ang = detector.acceptance_coefficients()
    by_weight = detector.acceptance_mode == "weight"
    ngc = -1.0 if medium.n_group is None else float(medium.n_group)

    hit_parts: list[dict[str, np.ndarray]] = []
    prog_cm = _progress_bar(progress, "photons")
    kernel_args = (
        medium.z_boundaries_m, medium.b_e400_per_m, medium.a_dust400_per_m, medium.dtau,
        bool(medium.wavelength_dependent), float(medium.g), float(medium.sl_fraction), ngc,
        mods, float(radius), ang, by_weight,
        method == "grid", lo, hi, float(cell), dims, cstart, items, smap, float(mcell), mdims,
    )
    # load (or compile) the kernel outside the timed region: an empty call
    e_f, e_i = np.zeros(0), np.zeros(0, np.int32)
    propagate_kernel(e_f, e_f, e_f, e_f, e_f, e_f, e_f, e_f, e_f, np.zeros(1, np.int64),
                     np.zeros(0, np.uint64), *kernel_args, e_i, e_f, e_f, e_f, e_f, e_f)
    wall = 0.0
    cpu = 0.0
    with _threads(n_threads) as used_threads, prog_cm as prog:
        task = prog.add_task("photons", total=n_total) if progress else None
        for batch, n_b, ph, chunk_start, chunk_key in _photon_batches(
                ev_src, counts, batch_size, medium, detector, entropy):
            ev = np.repeat(np.array([u[0] for u in batch], np.int64),
                           np.array([u[2] for u in batch], np.int64))
            out_mod = np.empty(n_b, np.int32)
            out_t = np.empty(n_b)
            out_w = np.empty(n_b)
            out_h = [np.empty(n_b) for _ in range(3)]
            w0, c0 = time.perf_counter(), time.process_time()
            propagate_kernel(
                ph["x"], ph["y"], ph["z"], ph["dx"], ph["dy"], ph["dz"], ph["t"], ph["wl"],
                ph["w"], chunk_start, chunk_key, *kernel_args,
                out_mod, out_t, out_w, out_h[0], out_h[1], out_h[2],
            )
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            sel = np.flatnonzero(out_mod >= 0)
            part = {
                "event_id": ev[sel],
                "module_id": detector.module_ids[out_mod[sel]],
                "time_ns": out_t[sel],
                "wavelength_nm": ph["wl"][sel],
                "weight": out_w[sel],
            }
            if hit_positions:
                part.update(x_m=out_h[0][sel], y_m=out_h[1][sel], z_m=out_h[2][sel])
            hit_parts.append(part)
            if progress:
                prog.advance(task, n_b)

    cols = list(HIT_COLUMNS) + (["x_m", "y_m", "z_m"] if hit_positions else [])
    if hit_parts:
        hits = pd.DataFrame({c: np.concatenate([p[c] for p in hit_parts]) for c in cols})
    else:
        hits = pd.DataFrame({c: np.zeros(0, np.int64 if c.endswith("_id") else float)
                             for c in cols})
    per = (hits.groupby(["event_id", "module_id"], sort=True)
           .agg(n_hits=("weight", "size"), sum_weight=("weight", "sum")).reset_index())
    per["n_hits"] = per["n_hits"].astype(np.int64)
    config = {
        "sources": [s.describe() for s in sources], "n_events": int(n_events),
        "medium": medium.describe(), "detector": detector.describe(), "seed": entropy,
        "method": method, "batch_size": int(batch_size),
    }
    return PhotonSimulation(hits=hits, counts=per, n_events=len(ev_src), n_photons=n_total,
                            wall_s=wall, cpu_s=cpu, n_threads=int(used_threads), config=config)
