"""The photon batch driver shared by the hit kernel and the shell tables.

Work is split into *blocks* of at most :data:`BLOCK_PHOTONS` photons of one event, and
blocks into *chunks* of :data:`CHUNK_PHOTONS` photons with their own random stream; whole
blocks are gathered into batches of about ``batch_size`` photons, so memory stays bounded
however many photons are simulated. Photon counts, photons and chunk keys derive from
``(seed, event, block, chunk)`` only (event ``e`` counts from key ``(0, e)``, block ``k``
draws its photons from ``(1, e, k)`` and its chunk keys from ``(2, e, k)``), so the output
of a kernel that treats every chunk with its own stream does not depend on ``batch_size``
or the number of threads.

:func:`run_batches` is the loop: count, generate batch by batch, hand each batch to a
kernel (timed), show progress; :func:`~.simulate.simulate` and
:func:`~.shells.tabulate_shells` differ only in the kernel they pass.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ariasim.errors import ConfigError
from ariasim.simulators.photons.detector import Detector
from ariasim.simulators.photons.optics import Medium
from ariasim.simulators.photons.sources import PHOTON_COLUMNS, PhotonSource

__all__ = [
    "BLOCK_PHOTONS",
    "CHUNK_PHOTONS",
    "BatchRun",
    "PhotonBatch",
    "kernel_threads",
    "photon_batches",
    "photon_blocks",
    "photon_counts",
    "progress_bar",
    "run_batches",
    "seed_entropy",
]

#: Photons per generation block (one random-number key, one event).
BLOCK_PHOTONS = 65536
#: Photons per kernel chunk (one xoshiro stream, one thread at a time).
CHUNK_PHOTONS = 1024

_PHOTON_COLUMNS = PHOTON_COLUMNS


@dataclass
class PhotonBatch:
    """One batch of photons for a kernel.

    Arguments:
        blocks: ``(event, block, n_photons)`` of each block in the batch, in order.
        n_photons: Photons in the batch.
        photons: Columns x, y, z [m], dx, dy, dz, t [ns], wl [nm], w (contiguous float64).
        chunk_start: int64 first photon of each chunk, plus the end.
        chunk_key: uint64 RNG key of each chunk.
        first_chunk: Global index (over the whole run) of the batch's first chunk.

    Example:
        >>> b = PhotonBatch.empty()
        >>> b.n_photons, b.chunk_start.tolist(), b.event_ids().size
        (0, [0], 0)
    """

    blocks: list[tuple[int, int, int]]
    n_photons: int
    photons: dict[str, np.ndarray]
    chunk_start: np.ndarray
    chunk_key: np.ndarray
    first_chunk: int = 0

    @classmethod
    def empty(cls) -> PhotonBatch:
        """A batch without photons (to load or compile a kernel before timing it)."""
        return cls(
            [],
            0,
            {c: np.zeros(0) for c in _PHOTON_COLUMNS},
            np.zeros(1, np.int64),
            np.zeros(0, np.uint64),
        )

    def event_ids(self, index: np.ndarray | None = None) -> np.ndarray:
        """int64 event id of every photon of the batch, or of the photons ``index``.

        Arguments:
            index: Ascending or not, int positions in the batch (default: all photons).
        """
        ev = np.array([b[0] for b in self.blocks], np.int64)
        size = np.array([b[2] for b in self.blocks], np.int64)
        if index is None:
            return np.repeat(ev, size)
        return ev[np.searchsorted(np.cumsum(size), index, side="right")]


@dataclass
class BatchRun:
    """What :func:`run_batches` measured.

    Arguments:
        entropy: The seed used (fresh entropy when none was given).
        counts: int64 photons propagated per event.
        n_photons: Their sum.
        wall_s: Wall-clock time inside the kernel calls [s].
        cpu_s: Process CPU time (all threads) inside the kernel calls [s].
        n_threads: Threads the kernel ran with.

    Example:
        >>> from ariasim.simulators.photons import Flasher, bulk_ice, single_module
        >>> seen = []
        >>> run = run_batches([Flasher(n_photons=3000)], bulk_ice(),
        ...                   single_module((0, 0, 5), wavelength_acceptance=False),
        ...                   lambda b: seen.append(b.n_photons), seed=1, batch_size=1 << 19)
        >>> run.n_photons, run.counts.tolist(), seen  # first call: the empty warm-up batch
        (3000, [3000], [0, 3000])
    """

    entropy: int
    counts: np.ndarray
    n_photons: int
    wall_s: float
    cpu_s: float
    n_threads: int


@contextlib.contextmanager
def kernel_threads(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` numba threads (None: the current setting); yields the count.

    Arguments:
        n: Threads, 1 to ``numba.config.NUMBA_NUM_THREADS``.
    """
    import numba

    old = numba.get_num_threads()
    if n is None:
        yield old
        return
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ConfigError(
            f"must be in 1..{numba.config.NUMBA_NUM_THREADS}, got {n}", parameter="n_threads"
        )
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)


def seed_entropy(seed: int | None) -> int:
    """The integer entropy of a run: ``seed`` itself, or fresh entropy for ``None``.

    Arguments:
        seed: A non-negative integer or None.
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"expected a non-negative integer, got {seed!r}", parameter="seed")
    return int(seed)


def _key(entropy: int, *path: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy, spawn_key=tuple(path))


def photon_counts(
    ev_src: Sequence[PhotonSource], medium: Medium, detector: Detector, entropy: int
) -> np.ndarray:
    """Photons to propagate for each event (event ``e`` draws from key ``(0, e)``).

    Arguments:
        ev_src: The source of each event.
        medium: The medium.
        detector: The modules (their acceptance and oversize set the counts).
        entropy: From :func:`seed_entropy`.
    """
    return np.array(
        [
            s.photon_count(medium, detector, np.random.default_rng(_key(entropy, 0, e)))
            for e, s in enumerate(ev_src)
        ],
        dtype=np.int64,
    )


def photon_blocks(counts: np.ndarray) -> list[tuple[int, int, int]]:
    """The generation blocks ``(event, block, n_photons)`` of a run, in order.

    Event ``e`` is cut into blocks of at most :data:`BLOCK_PHOTONS` photons. A block's
    photons and random streams depend on ``(seed, event, block)`` only, so any range of
    this list can be simulated on its own (a resumable part of a run).

    Arguments:
        counts: Photons per event (:func:`photon_counts`).

    Example:
        >>> photon_blocks(np.array([70000, 0, 5]))
        [(0, 0, 65536), (0, 1, 4464), (2, 0, 5)]
    """
    return [
        (e, k, min(BLOCK_PHOTONS, int(counts[e]) - k * BLOCK_PHOTONS))
        for e in range(len(counts))
        for k in range(-(-int(counts[e]) // BLOCK_PHOTONS))
    ]


def photon_batches(
    ev_src: Sequence[PhotonSource],
    counts: np.ndarray,
    batch_size: int,
    medium: Medium,
    detector: Detector,
    entropy: int,
    blocks: tuple[int, int] | None = None,
    reuse_buffers: bool = False,
) -> Iterator[PhotonBatch]:
    """Generate the photons of all events, batch by batch.

    Each event is cut into blocks ``(event, block, n)`` of at most :data:`BLOCK_PHOTONS`
    (photons drawn from key ``(1, event, block)``), each block into chunks of
    :data:`CHUNK_PHOTONS` with their RNG keys (from key ``(2, event, block)``); whole blocks
    are gathered into batches of about ``batch_size`` photons (at least one block).

    A source with a ``generate_into(out, medium, detector, rng)`` method writes its
    photons straight into the batch's columns (``out``: float64 views of ``n`` rows,
    keys as ``generate``); otherwise its ``generate`` output is copied there. Either way
    the photons are those of ``generate`` with the block's generator.

    Arguments:
        ev_src: The source of each event.
        counts: Photons per event (:func:`photon_counts`).
        batch_size: Photons per batch.
        medium: The medium.
        detector: The modules.
        entropy: From :func:`seed_entropy`.
        blocks: Only the blocks ``lo..hi-1`` of :func:`photon_blocks` (default all).
        reuse_buffers: Write every batch into the same column arrays (no new memory per
            batch): a batch's photons are then valid only until the next is drawn.
    """
    from ariasim.simulators.photons.propagate import chunk_keys

    units = photon_blocks(counts)
    buf: dict[str, np.ndarray] | None = None
    g_chunk = 0
    if blocks is not None:
        lo, hi = blocks
        g_chunk = sum(-(-n // CHUNK_PHOTONS) for _, _, n in units[:lo])
        units = units[lo:hi]
    ui = 0
    while ui < len(units):
        batch = []
        n_b = 0
        while ui < len(units) and (n_b == 0 or n_b + units[ui][2] <= batch_size):
            batch.append(units[ui])
            n_b += units[ui][2]
            ui += 1
        if not reuse_buffers or buf is None or buf["x"].size < n_b:
            buf = {c: np.empty(n_b) for c in _PHOTON_COLUMNS}
        ph = {c: v[:n_b] for c, v in buf.items()}
        starts = [np.zeros(1, np.int64)]
        keys = []
        off = 0
        for e, k, n in batch:
            rng = np.random.default_rng(_key(entropy, 1, e, k))
            view = {c: v[off : off + n] for c, v in ph.items()}
            fill = getattr(ev_src[e], "generate_into", None)
            if fill is not None:
                fill(view, medium, detector, rng)
            else:
                part = ev_src[e].generate(n, medium, detector, rng)
                for c in _PHOTON_COLUMNS:
                    view[c][...] = part[c]
            nch = -(-n // CHUNK_PHOTONS)
            ends = off + np.minimum(np.arange(1, nch + 1) * CHUNK_PHOTONS, n)
            starts.append(ends.astype(np.int64))
            base = int(_key(entropy, 2, e, k).generate_state(1, np.uint64)[0])
            keys.append(chunk_keys(base, nch))
            off += n
        chunk_key = np.concatenate(keys)
        yield PhotonBatch(batch, n_b, ph, np.concatenate(starts), chunk_key, g_chunk)
        g_chunk += chunk_key.size


def progress_bar(progress: bool, label: str) -> Any:
    """A transient rich progress bar (a null context when ``progress`` is false).

    Arguments:
        progress: Show it.
        label: Text before the bar.
    """
    if not progress:
        return contextlib.nullcontext()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


def run_batches(
    ev_src: Sequence[PhotonSource],
    medium: Medium,
    detector: Detector,
    kernel: Callable[[PhotonBatch], Any],
    *,
    seed: int | None,
    batch_size: int,
    n_threads: int | None = None,
    collect: Callable[[PhotonBatch, Any], None] | None = None,
    progress: bool = False,
    label: str = "photons",
    counts: np.ndarray | None = None,
    blocks: tuple[int, int] | None = None,
) -> BatchRun:
    """Count, generate and hand the photons of every event to ``kernel``, batch by batch.

    ``kernel`` is first called once with :meth:`PhotonBatch.empty` (numba loads or compiles
    it outside the timed region; the progress bar says so meanwhile), then on every batch inside
    the thread setting; only those
    calls are timed. ``collect(batch, kernel_result)`` then handles each result, untimed.

    Arguments:
        ev_src: The source of each event (event ``e`` is ``ev_src[e]``).
        medium: The medium.
        detector: The modules (the sources read their acceptance and oversize).
        kernel: Propagates one batch; its return value goes to ``collect``.
        seed: Non-negative integer seed (None: fresh entropy, returned in the result).
        batch_size: Photons per kernel call.
        n_threads: Threads for the kernel (default: numba's current setting).
        collect: Optional handler of each batch's kernel result.
        progress: Show a rich progress bar.
        label: Its label.
        counts: Photons per event, if already drawn (:func:`photon_counts` with the same
            seed); default: drawn here.
        blocks: Only the blocks ``lo..hi-1`` of :func:`photon_blocks` (default all); the
            result's ``n_photons`` counts those.
    """
    if (
        not isinstance(batch_size, (int, np.integer))
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ConfigError(f"must be a positive integer, got {batch_size!r}", parameter="batch_size")
    entropy = seed_entropy(seed)
    if counts is None:
        counts = photon_counts(ev_src, medium, detector, entropy)
    if blocks is None:
        n_total = int(counts.sum())
    else:
        n_total = sum(n for _, _, n in photon_blocks(counts)[blocks[0] : blocks[1]])
    wall = 0.0
    cpu = 0.0
    with kernel_threads(n_threads) as used, progress_bar(progress, label) as prog:
        task = (
            prog.add_task(f"{label}: compiling the kernel (first run only)", total=n_total)
            if progress
            else None
        )
        kernel(PhotonBatch.empty())
        if progress:
            prog.update(task, description=label)
        for batch in photon_batches(
            ev_src,
            counts,
            batch_size,
            medium,
            detector,
            entropy,
            blocks=blocks,
            reuse_buffers=True,
        ):
            w0, c0 = time.perf_counter(), time.process_time()
            out = kernel(batch)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            if collect is not None:
                collect(batch, out)
            if progress:
                prog.advance(task, batch.n_photons)
    return BatchRun(
        entropy=entropy,
        counts=counts,
        n_photons=n_total,
        wall_s=wall,
        cpu_s=cpu,
        n_threads=int(used),
    )
