"""One photon-simulation run from a configuration: resolve, build, simulate, write.

What ``ariasim simulate photons`` does, as a library call: the configuration file, then
the overrides (command-line flags), over the library's defaults
(:mod:`~.config`); the hits table (and optionally the per-module counts) written with
their provenance (the resolved configuration, the seed actually used and the library's
description of the source, medium and detector).

Everything that can be checked is checked before the simulation starts: the output
paths (:func:`ariasim.utils.check_outputs`), every parameter (:func:`~.config.build`), the
thread count and the size of the run (:func:`check_size`). The photons are simulated in
fixed parts of :data:`PART_PHOTONS` photons (whole generation blocks, whose random streams
depend on the seed, event and block only); each finished part is written atomically to a
hidden run folder beside the output (``.NAME.run``), so an interrupted run continues with
``resume=True`` (``--resume``) and gives the same tables as an uninterrupted one. The
folder is removed once the outputs are written.

With ``workers`` (``--workers``) or ``scheduler`` (``--scheduler``) the parts run as tasks
on a Dask cluster (:mod:`ariasim.parallel`: a cluster of worker processes on this machine,
or a running scheduler); each worker writes its finished parts into the run folder, which
must then be on a file system the workers share. The tables are the same as those of a
single-process run, byte for byte.

References:
    D. Chirkin, NIM A 725 (2013) 141 (PPC); clsim (C. Kopper et al.).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ariasim.errors import ConfigError
from ariasim.simulators.photons.config import build, resolve_config
from ariasim.simulators.photons.detector import Detector
from ariasim.simulators.photons.optics import Medium
from ariasim.simulators.photons.simulate import PhotonSimulation, simulate

__all__ = [
    "BYTES_PER_EVENT",
    "MAX_RUN_SECONDS",
    "OUTPUT_SUFFIXES",
    "PART_PHOTONS",
    "PHOTONS_PER_CPU_SECOND",
    "PRODUCER",
    "PhotonRun",
    "check_size",
    "run_photons",
]

#: Producer name stored in the provenance of the hits and counts tables.
PRODUCER = "ariasim.simulators.photons"
#: Formats of the hits and counts tables.
OUTPUT_SUFFIXES = (".parquet", ".csv", ".root")
#: Propagated photons per CPU-second, measured roughly once on the development machine
#: (default 405 nm flasher in bulk ice, one thread, kernel compiled: 0.5e6 per wall-clock
#: second, 0.9e6 per CPU-second; water is about ten times faster). The slower bulk-ice
#: figure is used for the estimate shown when a run is refused.
PHOTONS_PER_CPU_SECOND = 5.0e5
#: Memory per event [bytes] of the run's bookkeeping (its source, photon count, blocks and
#: their ids), about 40 B measured per item, with a margin.
BYTES_PER_EVENT = 400
#: Memory per propagated photon of a batch [bytes] (9 photon columns, 6 kernel outputs).
BYTES_PER_BATCH_PHOTON = 130
#: A run estimated to need more wall-clock time than this [s] (30 days) is refused.
MAX_RUN_SECONDS = 30 * 86400.0
#: Photons per resumable part of a run (whole generation blocks of 65,536 photons).
PART_PHOTONS = 1 << 22


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
            rows["hits per module"] = ", ".join(f"{k}: {v}" for k, v in top.items()) + (
                " ..." if len(per_mod) > 6 else ""
            )
        if res.wall_s > 0:  # not when every part was resumed (or nothing propagated)
            rows["rate"] = (
                f"{res.photons_per_second:,.0f} photons/s ({res.n_threads} "
                f"threads, {res.photons_per_cpu_second:,.0f} per CPU-s)"
            )
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


def check_size(
    photons_per_event: float,
    n_events: int,
    *,
    n_threads: int = 1,
    batch_size: int = 1 << 19,
    parameter: str = "n_events",
    memory_bytes: int | None = None,
) -> None:
    """Refuse, before any work, a run that cannot fit in memory or would take months.

    The estimate: ``n_events × photons_per_event`` photons at
    :data:`PHOTONS_PER_CPU_SECOND` per thread (refused above :data:`MAX_RUN_SECONDS`), and
    :data:`BYTES_PER_EVENT` of bookkeeping per event plus one batch (refused above half of
    the physical memory); the hits come on top.

    Arguments:
        photons_per_event: Photons propagated per event (after acceptance thinning).
        n_events: Number of events.
        n_threads: Threads the kernel runs with.
        batch_size: Photons per kernel call.
        parameter: The parameter (or flag) named in the error.
        memory_bytes: Memory available (default: the physical memory).

    Example:
        >>> check_size(1e6, 10)
        >>> check_size(1e15, 1, parameter="--photons")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: --photons: 1e+15 photons need about 63.4 years...
    """
    from ariasim.utils import human_bytes, human_seconds, physical_memory

    mem = physical_memory() if memory_bytes is None else memory_bytes
    photons = float(photons_per_event) * float(n_events)
    cpu = photons / PHOTONS_PER_CPU_SECOND
    wall = cpu / max(1, n_threads)
    need = float(n_events) * BYTES_PER_EVENT + min(photons, batch_size) * BYTES_PER_BATCH_PHOTON
    if wall > MAX_RUN_SECONDS or need > mem / 2:
        raise ConfigError(
            f"{photons:.3g} photons need about {human_seconds(wall)} with {n_threads} "
            f"thread(s) ({human_seconds(cpu)} of CPU time) and {human_bytes(need)} of memory "
            f"plus the hits (this machine has {human_bytes(mem)}); the limits are "
            f"{human_seconds(MAX_RUN_SECONDS)} and half the memory: split the run into "
            "several runs with different seeds",
            parameter=parameter,
        )


def _labels(
    labels: Mapping[str, str] | None,
    overrides: Mapping[str, Any],
    file_cfg: Mapping[str, Any] | None,
    config_file: Any,
) -> dict[str, str]:
    """How errors name each key: the flag that set it, or the key and the file."""
    used = _set_keys(overrides)
    names = {k: f"{k} (in {config_file})" for k in _set_keys(file_cfg or {})}
    for key, label in (labels or {}).items():
        # the kind keys are labelled anyway (a flag is how to change them)
        if key in used or (key in ("source.type", "medium.name") and key not in names):
            names[key] = label
    return names


def _parts(counts: np.ndarray) -> list[tuple[int, int]]:
    """Fixed parts of a run: ranges of whole generation blocks of about PART_PHOTONS."""
    from ariasim.simulators.photons.batches import photon_blocks

    parts: list[tuple[int, int]] = []
    lo, n = 0, 0
    units = photon_blocks(counts)
    for i, (_, _, size) in enumerate(units):
        if n and n + size > PART_PHOTONS:
            parts.append((lo, i))
            lo, n = i, 0
        n += size
    if lo < len(units):
        parts.append((lo, len(units)))
    return parts


def run_photons(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    progress: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    _after_part: Callable[[int], None] | None = None,
) -> PhotonRun:
    """Resolve a run configuration, simulate it and write the hits (and counts) tables.

    Checks the outputs, every parameter and the size of the run before any work; then
    simulates in fixed parts kept in a hidden run folder until the tables are written
    (see the module docstring). The same configuration and seed give the same tables
    whatever the threads, batch size or interruptions.

    Arguments:
        config_file: TOML configuration file (optional), see :mod:`~.config`.
        overrides: Nested dict over the file (``None`` values are ignored), e.g. the
            command-line flags.
        labels: How to name an override's key in errors, e.g. ``{"medium.ice_table":
            "--ice-table"}``; used for the keys the overrides set and for ``source.type``
            and ``medium.name``. A key set in the file is named with the file.
        progress: Show a progress bar (from the start: it says when the kernel compiles).
        overwrite: Replace existing output tables.
        resume: Continue an interrupted run with the same configuration from its finished
            parts (a run folder made with another configuration is an error).
        workers: Run the parts on this many worker processes of this machine (a Dask
            ``LocalCluster``; each worker uses ``n_threads`` threads, default 1).
        scheduler: Run the parts on the Dask cluster of this scheduler address instead.
        client: Run the parts with this Dask client instead (its cluster set up by the
            caller).

    Returns:
        A :class:`PhotonRun` (its :meth:`~PhotonRun.summary` for printing).
    """
    from ariasim.io import write_table
    from ariasim.utils import check_outputs, load_toml

    file_cfg = load_toml(config_file) if config_file is not None else None
    overrides = dict(overrides or {})
    names = _labels(labels, overrides, file_cfg, config_file)

    def lab(key: str) -> str:
        return names.get(key, key)

    from ariasim.parallel import NOT_BOTH, check_workers, get_client

    if workers is not None:
        check_workers(workers, lab("workers"))
    if workers is not None and scheduler is not None:
        raise ConfigError(NOT_BOTH, parameter=lab("workers"))
    cfg = resolve_config(file_cfg, overrides)
    for key in ("out", "counts_out"):
        if cfg[key] is not None and not isinstance(cfg[key], (str, os.PathLike)):
            raise ConfigError(f"expected a file name, got {cfg[key]!r}", parameter=lab(key))
    det_cfg, med_cfg = cfg["detector"], cfg["medium"]
    check_outputs(
        {lab("out"): cfg["out"], lab("counts_out"): cfg["counts_out"]},
        inputs={
            "the configuration file": config_file,
            lab("detector.geometry"): det_cfg["geometry"]
            if isinstance(det_cfg["geometry"], str)
            else None,
            lab("medium.ice_table"): med_cfg["ice_table"]
            if isinstance(med_cfg["ice_table"], str)
            else None,
        },
        suffixes={lab("out"): OUTPUT_SUFFIXES, lab("counts_out"): OUTPUT_SUFFIXES},
        overwrite=overwrite,
    )
    source, medium, detector, run = build(cfg, labels=names)
    n_threads = run.get("n_threads")
    if n_threads is not None:
        import numba

        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        if n_threads > most:
            raise ConfigError(
                f"must be in 1..{most} (the cores numba may use), got {n_threads}",
                parameter=lab("n_threads"),
            )
    n_events = run.get("n_events", 1)
    seed = run.get("seed")
    from ariasim.simulators.photons.batches import photon_counts, seed_entropy

    entropy = seed_entropy(seed)
    try:
        per_event = float(photon_counts([source], medium, detector, entropy)[0])  # event 0's
    except (ValueError, OverflowError):  # more than NumPy can draw: the mean is enough
        mean = getattr(source, "mean_photons", None)
        per_event = float(
            mean(medium, detector) if mean is not None else getattr(source, "n_photons", math.inf)
        )
    size_flag = (
        "n_events"
        if n_events > 1
        else {
            "flasher": "source.n_photons",
            "cascade": "source.energy_gev",
            "muon": "source.length_m",
        }.get(str(cfg["source"]["type"]), "n_events")
    )
    check_size(
        per_event,
        n_events,
        n_threads=n_threads or _default_threads(),
        batch_size=run.get("batch_size", 1 << 19),
        parameter=lab(size_flag),
    )
    run["seed"] = entropy
    with get_client(
        workers,
        scheduler,
        threads_per_worker=n_threads or 1,
        labels={"workers": lab("workers"), "scheduler": lab("scheduler")},
    ) as made:
        result = _simulate_parts(
            source,
            medium,
            detector,
            run,
            cfg,
            progress=progress,
            resume=resume,
            after_part=_after_part,
            client=client if client is not None else made,
        )
    cfg["seed"] = entropy
    prov = {
        **cfg,
        "resolved": {
            "source": source.describe(),
            "medium": medium.describe(),
            "detector": detector.describe(),
        },
    }
    from ariasim.utils import ensure_dir, run_folder

    # both tables are written in full beside their targets first, then renamed: the
    # outputs appear together or not at all
    staged = [(result.hits, Path(cfg["out"]))]
    if cfg["counts_out"]:
        staged.append((result.counts, Path(cfg["counts_out"])))
    ready = []
    for table, target in staged:
        tmp = ensure_dir(run_folder(target)) / f"final-{target.name}"
        write_table(table, tmp, producer=PRODUCER, config=prov, seed=cfg["seed"])
        ready.append((tmp, target))
    for tmp, target in ready:
        os.replace(tmp, target)
    for _, target in staged:
        shutil.rmtree(run_folder(target), ignore_errors=True)
    hits_path = Path(cfg["out"])
    counts_path = Path(cfg["counts_out"]) if cfg["counts_out"] else None
    return PhotonRun(
        config=cfg,
        source=source,
        medium=medium,
        detector=detector,
        result=result,
        hits_path=hits_path,
        counts_path=counts_path,
    )


def _default_threads() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def _simulate_parts(
    source: Any,
    medium: Medium,
    detector: Detector,
    run: dict[str, Any],
    cfg: dict[str, Any],
    *,
    progress: bool,
    resume: bool,
    after_part: Callable[[int], None] | None,
    client: Any = None,
) -> PhotonSimulation:
    """Simulate the run part by part; each finished part goes to the run folder (on a
    Dask cluster when ``client`` is given, see :func:`_simulate_parts_on`)."""
    import pandas as pd

    from ariasim.io import read_table, write_table
    from ariasim.simulators.photons.batches import photon_blocks, photon_counts, progress_bar
    from ariasim.utils import open_run_folder, run_key

    n_events = run.get("n_events", 1)
    entropy = run["seed"]
    counts = photon_counts([source] * n_events, medium, detector, entropy)
    parts = _parts(counts)
    what = {
        k: v for k, v in cfg.items() if k not in ("out", "counts_out", "n_threads", "batch_size")
    }
    what["resolved"] = [source.describe(), medium.describe(), detector.describe()]
    key = run_key({"config": what, "seed": entropy, "parts": parts})
    folder, resumed = open_run_folder(cfg["out"], key, resume=resume, extra={"n_parts": len(parts)})
    done: dict[int, pd.DataFrame] = {}
    for k in range(len(parts) if resumed else 0):
        path = folder / f"part-{k:06d}.parquet"
        if path.exists():
            done[k] = read_table(path)
    if resumed:  # parts finished on a Dask cluster count too
        from ariasim.parallel import done_chunks, read_parts

        for k in sorted(done_chunks(folder) - set(done)):
            done[k] = read_parts(folder, "hits", [k])
    kw = {k: run[k] for k in ("n_threads", "batch_size", "method") if k in run}
    wall = cpu = 0.0
    n_threads = 1
    label = "photons"
    units = photon_blocks(counts)
    sizes = [sum(n for _, _, n in units[lo:hi]) for lo, hi in parts]
    if client is not None:
        done, wall, cpu, n_threads = _simulate_parts_on(
            client,
            folder,
            (source, medium, detector, n_events, entropy, counts, kw),
            parts,
            sizes,
            progress=progress,
            after_part=after_part,
            finished=done,
        )
    else:
        with progress_bar(progress, label) as bar:
            task = None
            if progress:
                task = bar.add_task(
                    f"{label}: compiling the kernel (first run only)",
                    total=int(counts.sum()),
                    completed=sum(sizes[k] for k in done),
                )
            for k, part in enumerate(parts):
                if k in done:
                    continue
                res = simulate(
                    source,
                    medium,
                    detector,
                    n_events=n_events,
                    seed=entropy,
                    counts=counts,
                    blocks=part,
                    **kw,
                )
                write_table(
                    res.hits, folder / f"part-{k:06d}.parquet", producer=PRODUCER, seed=entropy
                )
                done[k] = res.hits
                wall, cpu, n_threads = wall + res.wall_s, cpu + res.cpu_s, res.n_threads
                if progress:
                    bar.update(task, description=label, advance=sizes[k])
                if after_part is not None:
                    after_part(k)
    frames = [done[k] for k in range(len(parts)) if len(done[k])]
    if frames:
        hits = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    else:
        hits = simulate(
            source,
            medium,
            detector,
            n_events=n_events,
            seed=entropy,
            counts=np.zeros(len(counts), np.int64),
            **kw,
        ).hits
    per = (
        hits.groupby(["event_id", "module_id"], sort=True)
        .agg(n_hits=("weight", "size"), sum_weight=("weight", "sum"))
        .reset_index()
    )
    per["n_hits"] = per["n_hits"].astype(np.int64)
    config = {
        "sources": [source.describe()],
        "n_events": int(n_events),
        "medium": medium.describe(),
        "detector": detector.describe(),
        "seed": entropy,
        "method": run.get("method", "grid"),
    }
    return PhotonSimulation(
        hits=hits,
        counts=per,
        n_events=int(n_events),
        n_photons=int(counts.sum()),
        wall_s=wall,
        cpu_s=cpu,
        n_threads=n_threads,
        config=config,
    )


def _photon_part(
    setup: tuple[Any, ...], task: Any
) -> dict[str, Any]:  # the function of each Dask task (a picklable module function)
    """Simulate one part (``task.payload["blocks"]``) of a run; its hits and timing."""
    import pandas as pd

    source, medium, detector, n_events, entropy, counts, kw = setup
    res = simulate(
        source,
        medium,
        detector,
        n_events=n_events,
        seed=entropy,
        counts=counts,
        blocks=tuple(task.payload["blocks"]),
        **kw,
    )
    stats = pd.DataFrame(
        {"wall_s": [res.wall_s], "cpu_s": [res.cpu_s], "n_threads": [res.n_threads]}
    )
    return {"hits": res.hits, "stats": stats}


def _simulate_parts_on(
    client: Any,
    folder: Path,
    setup: tuple[Any, ...],
    parts: list[tuple[int, int]],
    sizes: list[int],
    *,
    progress: bool,
    after_part: Callable[[int], None] | None,
    finished: Mapping[int, Any],
) -> tuple[dict[int, Any], float, float, int]:
    """Run the parts not yet in ``folder`` as Dask tasks (:func:`ariasim.parallel.run_chunks`);
    returns every part's hits, the wall-clock and CPU time of the parts run now and the
    threads of the cluster. ``finished``: the hits of parts finished in one process (an
    interrupted run resumed on a cluster), which are not redone."""
    import functools
    import time

    import pandas as pd

    from ariasim.parallel import ChunkTask, done_chunks, read_parts, run_chunks, write_chunk
    from ariasim.simulators.photons.batches import progress_bar

    entropy = setup[4]
    for k in sorted(set(finished) - done_chunks(folder)):
        stats = pd.DataFrame({"wall_s": [0.0], "cpu_s": [0.0], "n_threads": [1]})
        write_chunk(folder, k, {"hits": finished[k], "stats": stats}, {"index": k})
    tasks = [ChunkTask(k, entropy, {"blocks": part}) for k, part in enumerate(parts)]
    label = "photons"
    seen = done_chunks(folder)
    with progress_bar(progress, label) as bar:
        task = None
        if progress:
            task = bar.add_task(
                f"{label}: {len(parts) - len(seen)} parts on the workers (kernels compile on "
                "first use)",
                total=int(sum(sizes)),
                completed=sum(sizes[k] for k in seen),
            )

        def advance(k: int) -> None:
            if progress:
                bar.update(task, description=label, advance=sizes[k])
            if after_part is not None:
                after_part(k)

        start = time.perf_counter()
        ran = run_chunks(
            functools.partial(_photon_part, setup), tasks, folder, client=client, on_chunk=advance
        )
        wall = time.perf_counter() - start if ran else 0.0
    stats = read_parts(folder, "stats", ran)
    cpu = float(stats["cpu_s"].sum()) if len(stats) else 0.0
    per_worker = int(stats["n_threads"].max()) if len(stats) else 1
    n_threads = per_worker * max(1, len(client.nthreads()))
    done = {k: read_parts(folder, "hits", [k]) for k in range(len(parts))}
    return done, wall, cpu, n_threads
