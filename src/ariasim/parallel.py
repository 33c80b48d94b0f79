"""One place that runs chunks of work: in this process, or on a Dask cluster.

A run is split into :class:`ChunkTask` s with deterministic seeds (:func:`chunk_tasks`,
from :func:`ariasim.utils.spawn_seeds`); each chunk's tables are written to Parquet
partitions atomically, so a run interrupted at any point is resumed by running it again
(finished chunks are not redone) and a chunk that is run twice (a worker that died after
writing) leaves one partition, not two.

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

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ariasim.utils import atomic_path, ensure_dir, spawn_seeds

__all__ = [
    "ChunkTask",
    "chunk_tasks",
    "done_chunks",
    "read_parts",
    "run_chunks",
]

#: Sub-folder of a run folder that holds one marker per finished chunk.
DONE = "_done"


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


def run_chunks(
    func: Callable[[ChunkTask], Mapping[str, pd.DataFrame]],
    tasks: Sequence[ChunkTask],
    out_dir: str | os.PathLike[str],
    *,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Run ``func`` on every task not yet done in ``out_dir``; return the indices run now.

    ``func(task)`` returns ``{table name: DataFrame}``; each table goes to
    ``out_dir/<name>/part-<index>.parquet``. ``client``: a Dask client (None: run here, in
    order). ``progress(done, total)`` is called as chunks finish.
    """
    out = ensure_dir(out_dir)
    finished = done_chunks(out)
    todo = [t for t in tasks if t.index not in finished]
    total, count = len(tasks), len(tasks) - len(todo)
    ran: list[int] = []
    for index in _execute(func, todo, str(out), client):
        ran.append(index)
        count += 1
        if progress is not None:
            progress(count, total)
    return sorted(ran)


def _execute(
    func: Callable[[ChunkTask], Mapping[str, pd.DataFrame]],
    todo: Iterable[ChunkTask],
    out_dir: str,
    client: Any,
) -> Iterator[int]:
    if client is None:
        for task in todo:
            yield _run_one(func, task, out_dir)
        return
    raise NotImplementedError("Dask execution arrives with ariasim.parallel's Dask layer")


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
