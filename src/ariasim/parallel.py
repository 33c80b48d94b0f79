"""One place that runs chunks of work: in this process, or on a Dask cluster.

A run is split into :class:`ChunkTask` s with deterministic seeds (:func:`chunk_tasks`,
from :func:`ariasim.utils.spawn_seeds`); each chunk's tables are written to Parquet
partitions atomically, so a run interrupted at any point is resumed by running it again
(finished chunks are not redone) and a chunk that is run twice (a worker that died after
writing) leaves one partition, not two.

The chunks run in this process, in order, or on a Dask cluster (:func:`get_client`: a
:class:`distributed.LocalCluster` of worker processes on this machine, or any running
scheduler, e.g. one started by dask-jobqueue on HTCondor or SLURM). On a cluster each
chunk is one task, keyed by the run folder's id, the attempt (each call of
:func:`run_chunks` on a folder is one), the function, the chunk's index and its seed
(``ariasim-chunk-<hash>-<index>``); the worker that runs it writes its partitions
and marker itself, so the run folder must be on a file system that the workers and this
process share (the same absolute path everywhere: a network or cluster file system; any
folder on one machine). A task whose worker dies is rerun on another worker by the
scheduler (up to ``distributed.scheduler.allowed-failures`` times, default 3); a task that
raises is retried :data:`RETRIES` time(s) before the run fails. The partitions of a chunk
depend on its task only (seed and payload), never on the worker that ran it.

Example:
    >>> import tempfile, pandas as pd
    >>> def square(task):
    ...     return {"events": pd.DataFrame({"i": [task.index], "x": [task.index**2]})}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = run_chunks(square, chunk_tasks(3, seed=1), tmp)
    ...     read_parts(tmp, "events")["x"].tolist()
    [0, 1, 4]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ariasim.errors import ConfigError, OutputError
from ariasim.utils import atomic_path, ensure_dir, spawn_seeds

__all__ = [
    "CONNECT_TIMEOUT_S",
    "NOT_BOTH",
    "RETRIES",
    "ChunkTask",
    "check_workers",
    "chunk_tasks",
    "done_chunks",
    "get_client",
    "read_parts",
    "run_chunks",
    "write_chunk",
]

#: Sub-folder of a run folder that holds one marker per finished chunk.
DONE = "_done"
#: The error when both a number of local workers and a scheduler address are given.
NOT_BOTH = (
    "does not apply with a scheduler address (the workers of a running cluster are started with it)"
)
#: Seconds to wait for a scheduler given by address before giving up.
CONNECT_TIMEOUT_S = 5.0
#: Times a chunk whose function raised is retried on a cluster (a worker that dies is
#: handled by the scheduler, see the module docstring).
RETRIES = 1
#: Seconds to wait, after the last task finished, for every marker to be visible here (a
#: network file system may show another machine's files with a delay).
VISIBLE_TIMEOUT_S = 30.0
#: Environment variables that set the threads of numba, OpenMP and BLAS in a worker.
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of a run: its position, its seed and what else the function needs.

    Attributes:
        index: Position of the chunk in the run (0, 1, ...); names its partitions.
        seed: The chunk's own seed (from :func:`ariasim.utils.spawn_seeds`).
        payload: Small, picklable parameters shared by the function (sizes, a controller
            as a dict...).

    Example:
        >>> chunk_tasks(2, seed=7)[1].index
        1
    """

    index: int
    seed: int
    payload: Mapping[str, Any] = field(default_factory=dict)


def chunk_tasks(
    n_chunks: int, seed: int, payload: Mapping[str, Any] | None = None, start: int = 0
) -> list[ChunkTask]:
    """The tasks ``start .. start+n_chunks-1`` of a run with ``seed``.

    Chunk ``i`` gets ``spawn_seeds(seed, start + n_chunks)[i]``: the same seed whatever the
    number of workers, and the same for the first chunks of a longer run.
    """
    seeds = spawn_seeds(seed, start + n_chunks)
    return [ChunkTask(i, seeds[i], dict(payload or {})) for i in range(start, start + n_chunks)]


def part_name(index: int) -> str:
    """File name of chunk ``index``'s partition (``part-000012.parquet``)."""
    return f"part-{index:06d}.parquet"


def done_chunks(out_dir: str | os.PathLike[str]) -> set[int]:
    """Indices of the chunks of ``out_dir`` that finished (their marker exists)."""
    d = Path(out_dir) / DONE
    if not d.is_dir():
        return set()
    return {int(p.stem.split("-")[1]) for p in d.glob("part-*.json")}


def write_chunk(out_dir: Path, index: int, tables: Mapping[str, pd.DataFrame], info: Any) -> None:
    """Write a chunk's tables (each atomically), then its marker (last, atomically)."""
    for name, table in tables.items():
        with atomic_path(ensure_dir(out_dir / name) / part_name(index)) as tmp:
            table.to_parquet(tmp, index=False)
    with atomic_path(ensure_dir(out_dir / DONE) / f"part-{index:06d}.json") as tmp:
        tmp.write_text(json.dumps(info, sort_keys=True, default=str))


def _run_one(
    func: Callable[[ChunkTask], Mapping[str, pd.DataFrame]], task: ChunkTask, out_dir: str
) -> int:
    tables = dict(func(task))
    write_chunk(Path(out_dir), task.index, tables, {"index": task.index, "seed": task.seed})
    return task.index


def _run_on_worker(
    func: Callable[[ChunkTask], Mapping[str, pd.DataFrame]], task: ChunkTask, out_dir: str
) -> int:
    """What a Dask worker runs: the chunk, unless an earlier execution finished it."""
    if (Path(out_dir) / DONE / f"part-{task.index:06d}.json").exists():
        return task.index
    return _run_one(func, task, out_dir)


def _run_pickled(blob: bytes, task: ChunkTask, out_dir: str) -> int:
    """:func:`_run_on_worker` for a function sent as cloudpickle bytes."""
    import cloudpickle

    return _run_on_worker(cloudpickle.loads(blob), task, out_dir)


def check_workers(workers: Any, parameter: str = "workers") -> None:
    """Refuse a worker count that is not an integer >= 1 (a :class:`ConfigError`).

    Example:
        >>> check_workers(0, "--workers")
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: --workers: must be an integer >= 1, got 0
    """
    import numbers

    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or int(workers) < 1:
        raise ConfigError(f"must be an integer >= 1, got {workers!r}", parameter=parameter)


@contextlib.contextmanager
def get_client(
    workers: int | None = None,
    scheduler: str | None = None,
    threads_per_worker: int = 1,
    *,
    labels: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """A Dask client for :func:`run_chunks`, closed (with its cluster) on leaving.

    * ``scheduler`` given: a connection to that running scheduler (``tcp://host:8786``, or
      ``cluster.scheduler_address`` of a dask-jobqueue cluster); its workers are set up by
      whoever started them.
    * else ``workers`` given: a :class:`distributed.LocalCluster` of ``workers`` worker
      processes on this machine (no dashboard, no log output: a failing chunk raises
      here). Each worker runs one task at a time, with ``threads_per_worker`` numba,
      OpenMP and BLAS threads (set in its environment), so that the CPU time a chunk
      measures in its process (:func:`time.process_time`) is its own.
    * neither: ``None`` (:func:`run_chunks` then runs the chunks in this process).

    Arguments:
        workers: Number of local worker processes (>= 1).
        scheduler: Address of a running Dask scheduler.
        threads_per_worker: Compute threads (numba, OpenMP, BLAS) of each local worker.
        labels: How errors name ``workers`` and ``scheduler`` (e.g. the command-line
            flags ``{"workers": "--workers"}``).

    Raises:
        ConfigError: ``workers`` is not an integer >= 1, both are given, or the scheduler
            cannot be reached within :data:`CONNECT_TIMEOUT_S` seconds.

    Example:
        >>> with get_client() as client:
        ...     client is None
        True
    """
    names = {"workers": "workers", "scheduler": "scheduler", **dict(labels or {})}
    if workers is not None:
        check_workers(workers, names["workers"])
    check_workers(threads_per_worker, "threads_per_worker")
    if scheduler is not None and workers is not None:
        raise ConfigError(NOT_BOTH, parameter=names["workers"])
    if scheduler is None and workers is None:
        yield None
        return
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ConfigError(
                f"expected a scheduler address, got {scheduler!r}", parameter=names["scheduler"]
            )
        _check_reachable(scheduler, names["scheduler"])
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:  # pragma: no cover - reachable, but not a scheduler
            raise ConfigError(
                f"cannot connect to a Dask scheduler at {scheduler!r}: {_reason(exc)}",
                parameter=names["scheduler"],
            ) from None
        with client:
            yield client
        return
    env = {name: str(threads_per_worker) for name in THREAD_VARIABLES}
    with (
        LocalCluster(
            n_workers=int(workers),  # type: ignore[arg-type]
            threads_per_worker=1,  # one task at a time: its process CPU time is its own
            processes=True,
            dashboard_address=None,
            # no dashboard; the scheduler's small HTTP server (health, metrics) on any
            # free port instead of 8787 (two clusters at once would warn)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,  # a chunk's error is raised here
            env=env,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _reason(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]


def _check_reachable(address: str, parameter: str) -> None:
    """Refuse an address that is not a scheduler address, or whose host does not answer
    within :data:`CONNECT_TIMEOUT_S` (checked with a plain socket, so that no half-made
    client is left behind)."""
    import socket

    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)  # an unknown scheme: ValueError
        if scheme not in ("tcp", "tls", "ws", "wss"):
            return  # inproc://, ucx://: left to the client
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"not a scheduler address such as tcp://host:8786 ({_reason(exc)})",
            parameter=parameter,
        ) from None
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(
            f"no Dask scheduler answers at {address!r} within {CONNECT_TIMEOUT_S:g} s "
            f"({_reason(exc)})",
            parameter=parameter,
        ) from None


def run_chunks(
    func: Callable[[ChunkTask], Mapping[str, pd.DataFrame]],
    tasks: Sequence[ChunkTask],
    out_dir: str | os.PathLike[str],
    *,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> list[int]:
    """Run ``func`` on every task not yet done in ``out_dir``; return the indices run now.

    ``func(task)`` returns ``{table name: DataFrame}``; each table goes to
    ``out_dir/<name>/part-<index>.parquet``. ``client``: a Dask client (None: run here, in
    order; see :func:`get_client`). On a cluster, ``func`` and the tasks must be picklable
    (cloudpickle) and ``out_dir`` on a file system shared with the workers; a chunk is
    rerun on another worker when its worker dies; the first chunk that fails for good
    cancels the others and its error is raised here, as is a ``KeyboardInterrupt`` (the
    finished chunks stay: run again to resume; a chunk that was already running when the
    run stopped may still finish and write its partitions, atomically).
    ``progress(done, total)`` is called as chunks finish, after ``on_chunk(index)`` (the
    index of the chunk that finished).
    """
    out = ensure_dir(out_dir)
    finished = done_chunks(out)
    todo = [t for t in tasks if t.index not in finished]
    total, count = len(tasks), len(tasks) - len(todo)
    ran: list[int] = []
    results = _execute(func, todo, str(Path(out).resolve()), client)
    try:
        for index in results:
            ran.append(index)
            count += 1
            if on_chunk is not None:
                on_chunk(index)
            if progress is not None:
                progress(count, total)
    finally:
        results.close()  # cancels what is still queued on the cluster
    if client is not None:
        _wait_visible(out, ran)
    return sorted(ran)


def _run_id(out: Path) -> str:
    """The id of this attempt at the run that fills ``out``: a random id made with the
    folder, and the number of earlier attempts (a resumed run submits new keys, never the
    keys of a cancelled or failed attempt that the scheduler may still remember)."""
    path = ensure_dir(out / DONE) / "run-id"
    try:
        run, attempt = path.read_text().split()
    except (OSError, ValueError):
        import uuid

        run, attempt = uuid.uuid4().hex, "0"
    with atomic_path(path) as tmp:
        tmp.write_text(f"{run} {int(attempt) + 1}")
    return f"{run}-{attempt}"


def _chunk_key(func: Any, task: ChunkTask, run: str) -> str:
    """The Dask key of a chunk: the same for the same attempt, function, index and seed."""
    name = getattr(func, "__qualname__", None) or getattr(
        getattr(func, "func", None), "__qualname__", type(func).__qualname__
    )
    digest = hashlib.sha256(f"{run}\0{name}\0{task.seed}".encode()).hexdigest()[:16]
    return f"ariasim-chunk-{digest}-{task.index:06d}"


def _execute(
    func: Callable[[ChunkTask], Mapping[str, pd.DataFrame]],
    todo: Iterable[ChunkTask],
    out_dir: str,
    client: Any,
) -> Generator[int, None, None]:
    if client is None:
        for task in todo:
            yield _run_one(func, task, out_dir)
        return
    import cloudpickle
    from distributed import as_completed

    run = _run_id(Path(out_dir))
    # cloudpickle, not pickle: functions of a module registered to travel by value (a
    # user's pipeline file, which the workers cannot import by name) arrive whole
    blob = cloudpickle.dumps(func)
    futures = [
        client.submit(
            _run_pickled,
            blob,
            task,
            out_dir,
            key=_chunk_key(func, task, run),
            pure=False,
            retries=RETRIES,
        )
        for task in todo
    ]
    try:
        for future in as_completed(futures, loop=client.loop):
            yield future.result()
    finally:
        # release every key (finished ones too): the queued chunks stop, and a later run
        # may submit the same keys afresh
        client.cancel(futures)
        futures.clear()


def _wait_visible(out: Path, ran: Sequence[int]) -> None:
    """Wait until the markers of the chunks the workers finished are visible here."""
    deadline = time.monotonic() + VISIBLE_TIMEOUT_S
    while True:
        missing = set(ran) - done_chunks(out)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise OutputError(
                f"the workers finished {len(missing)} chunk(s) whose files are not visible "
                "here: the run folder must be on a file system shared by this machine and "
                "the workers (the same absolute path)",
                path=out,
            )
        time.sleep(0.5)


def read_parts(
    out_dir: str | os.PathLike[str], table: str, indices: Iterable[int] | None = None
) -> pd.DataFrame:
    """Concatenate the partitions of ``table`` in chunk order (only finished chunks)."""
    keep = sorted(done_chunks(out_dir) if indices is None else set(indices))
    d = Path(out_dir) / table
    frames = [pd.read_parquet(d / part_name(i)) for i in keep if (d / part_name(i)).exists()]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
