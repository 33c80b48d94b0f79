"""ariasim.parallel on a Dask cluster: the same tables as in-process, resume after a
failure, cancellation on Ctrl-C, and a worker killed mid-run (issue 11, section 5).

One LocalCluster of two worker processes is shared by the module (start-up is the slow
part). Nothing here asserts a time: the waits are generous upper bounds for a loaded
2-core machine, never expectations.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ariasim.errors import ConfigError
from ariasim.parallel import (
    ChunkTask,
    chunk_tasks,
    done_chunks,
    get_client,
    read_parts,
    run_chunks,
)

N_CHUNKS = 12
PER_CHUNK = 50  # events per chunk


def _events(task: ChunkTask) -> dict[str, pd.DataFrame]:
    """A chunk's events: ids from its index, values from its seed only; it can sleep, fail
    at one chunk, or block at one chunk until a flag file exists (the worker-kill test)."""
    p = task.payload
    log = p.get("log")
    if log:
        Path(log, f"start-{task.index:06d}-{os.getpid()}").touch()
    if task.index == p.get("hold_at"):
        deadline = time.monotonic() + 300
        while not Path(p["release"]).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("never released")
            time.sleep(0.02)
    time.sleep(p.get("sleep", 0.0))
    if task.index == p.get("fail_at"):
        raise ValueError(f"chunk {task.index} fails")
    rng = np.random.default_rng(task.seed)
    ids = task.index * PER_CHUNK + np.arange(PER_CHUNK)
    x = rng.normal(size=PER_CHUNK)
    return {
        "events": pd.DataFrame({"event_id": ids, "x": x}),
        "summary": pd.DataFrame({"chunk": [task.index], "sum_x": [x.sum()]}),
    }


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers lack tests/
    with get_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ref")
    assert run_chunks(_events, chunk_tasks(N_CHUNKS, seed=5), out) == list(range(N_CHUNKS))
    return read_parts(out, "events")


def _check_complete(out: Path, reference: pd.DataFrame) -> None:
    """Every chunk exactly once: no event lost, none duplicated, the same content."""
    assert done_chunks(out) == set(range(N_CHUNKS))
    parts = sorted(p.name for p in (out / "events").iterdir())
    assert parts == [f"part-{i:06d}.parquet" for i in range(N_CHUNKS)]  # no temporaries
    table = read_parts(out, "events")
    assert table["event_id"].tolist() == list(range(N_CHUNKS * PER_CHUNK))
    pd.testing.assert_frame_equal(table, reference)


def test_cluster_run_equals_in_process_run(client: Any, reference: pd.DataFrame, tmp_path):
    assert len(client.scheduler_info()["workers"]) == 2
    # each worker process computes with one numba/OpenMP thread
    assert set(client.run(lambda: os.environ["NUMBA_NUM_THREADS"]).values()) == {"1"}
    seen: list[tuple[int, int]] = []
    tasks = chunk_tasks(N_CHUNKS, seed=5, payload={"sleep": 0.02})
    got: list[int] = []
    ran = run_chunks(
        _events,
        tasks,
        tmp_path,
        client=client,
        progress=lambda d, t: seen.append((d, t)),
        on_chunk=got.append,
    )
    assert ran == list(range(N_CHUNKS)) == sorted(got)
    assert seen == [(k, N_CHUNKS) for k in range(1, N_CHUNKS + 1)]
    _check_complete(tmp_path, reference)
    # a second run has nothing left to do
    assert run_chunks(_events, tasks, tmp_path, client=client) == []


def test_resume_after_a_failing_chunk(client: Any, reference: pd.DataFrame, tmp_path):
    bad = chunk_tasks(N_CHUNKS, seed=5, payload={"fail_at": 7, "sleep": 0.02})
    with pytest.raises(ValueError, match="chunk 7 fails"):
        run_chunks(_events, bad, tmp_path, client=client)
    before = done_chunks(tmp_path)  # (a chunk running when 7 failed may still finish)
    assert 7 not in before
    ran = run_chunks(_events, chunk_tasks(N_CHUNKS, seed=5), tmp_path, client=client)
    assert 7 in ran and not set(ran) & before  # the finished chunks are not redone
    _check_complete(tmp_path, reference)


def test_resume_in_process_and_a_chunk_run_twice(reference: pd.DataFrame, tmp_path):
    with pytest.raises(ValueError):
        run_chunks(_events, chunk_tasks(N_CHUNKS, seed=5, payload={"fail_at": 4}), tmp_path)
    assert done_chunks(tmp_path) == {0, 1, 2, 3}
    assert run_chunks(_events, chunk_tasks(N_CHUNKS, seed=5), tmp_path) == list(range(4, N_CHUNKS))
    # a chunk whose worker died after writing, before its marker: run again, one partition
    (tmp_path / "_done" / "part-000002.json").unlink()
    assert run_chunks(_events, chunk_tasks(N_CHUNKS, seed=5), tmp_path) == [2]
    _check_complete(tmp_path, reference)


def test_interrupt_cancels_the_queued_chunks(client: Any, reference: pd.DataFrame, tmp_path):
    tasks = chunk_tasks(N_CHUNKS, seed=5, payload={"sleep": 0.3})

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_chunks(_events, tasks, tmp_path, client=client, progress=stop)
    deadline = time.monotonic() + 60
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        assert time.monotonic() < deadline, "the queued chunks were not cancelled"
        time.sleep(0.1)
    assert len(done_chunks(tmp_path)) < N_CHUNKS
    run_chunks(_events, tasks, tmp_path, client=client)
    _check_complete(tmp_path, reference)


def test_a_killed_worker_loses_and_duplicates_no_chunk(
    client: Any, reference: pd.DataFrame, tmp_path
):
    """SIGKILL the worker process that runs chunk 5 (held there until it is killed): the
    scheduler reruns the chunk elsewhere and the run ends with every chunk exactly once."""
    pids = set(client.run(os.getpid).values())
    log, release = tmp_path / "log", tmp_path / "released"
    log.mkdir()
    out = tmp_path / "run"
    payload = {"sleep": 0.3, "hold_at": 5, "release": str(release), "log": str(log)}
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            started = list(log.glob("start-000005-*"))
            if started:
                pid = int(started[0].name.rsplit("-", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                release.touch()  # the rerun of chunk 5 may go on
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    ran = run_chunks(_events, chunk_tasks(N_CHUNKS, seed=5, payload=payload), out, client=client)
    thread.join(timeout=60)
    assert len(killed) == 1 and killed[0] in pids
    assert ran == list(range(N_CHUNKS))
    _check_complete(out, reference)
    # chunk 5 was started by the killed worker and finished by another process
    starts = sorted(p.name for p in log.glob("start-000005-*"))
    assert len(starts) >= 2 and f"start-000005-{killed[0]}" in starts
    # the cluster replaced the dead worker (its nanny restarts it)
    deadline = time.monotonic() + 120
    while len(client.scheduler_info()["workers"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert killed[0] not in set(client.run(os.getpid).values())


@pytest.mark.parametrize(
    ("kwargs", "expect"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": 1.5}, "workers"),
        ({"workers": True}, "workers"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:8786"}, "'workers': does not apply"),
        ({"scheduler": "garbage"}, "scheduler"),
        ({"scheduler": "http://localhost:8786"}, "scheduler"),
        ({"scheduler": ""}, "scheduler"),
    ],
)
def test_get_client_refuses_bad_arguments(kwargs: dict[str, Any], expect: str) -> None:
    with pytest.raises(ConfigError, match=expect) as exc, get_client(**kwargs):
        pass
    assert "\n" not in str(exc.value)


def test_get_client_names_an_unreachable_scheduler() -> None:
    import socket

    with socket.socket() as s:  # a free port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        pytest.raises(ConfigError, match="--scheduler: no Dask scheduler answers") as exc,
        get_client(scheduler=f"tcp://127.0.0.1:{port}", labels={"scheduler": "--scheduler"}),
    ):
        pass
    assert exc.value.parameter == "--scheduler"


# --- the simulators on the cluster: the same bytes as one process --------------------

# water is fast; five events of ~1e5 propagated photons (two generation blocks each)
SMALL_PHOTONS = {
    "medium": {"name": "water"},
    "source": {"n_photons": 8e5},
    "n_events": 5,
    "seed": 9,
    "detector": {"distance_m": 5.0},
}


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # the provenance's time


def _table(path: Path) -> Any:
    """A Parquet file's table without its metadata (the provenance)."""
    import pyarrow.parquet as pq

    return pq.read_table(path).replace_schema_metadata()


def test_photons_resume_across_cluster_and_one_process_same_bytes(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixed_time: None
) -> None:
    from ariasim.simulators.photons import run as run_mod
    from ariasim.simulators.photons.batches import BLOCK_PHOTONS
    from ariasim.utils import run_folder

    monkeypatch.setattr(run_mod, "PART_PHOTONS", BLOCK_PHOTONS)  # ten parts
    (tmp_path / "one").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    cfg = {**SMALL_PHOTONS, "out": "h.parquet", "counts_out": "c.parquet"}
    ref = run_mod.run_photons(overrides=cfg)

    def stop(k: int) -> None:
        raise KeyboardInterrupt

    # interrupted on the cluster and resumed there, on the cluster and resumed in one
    # process, in one process and resumed on the cluster: the same bytes every time
    for sub, first, then in (
        ("dd", client, client),
        ("d1", client, None),
        ("1d", None, client),
    ):
        (tmp_path / sub).mkdir()
        monkeypatch.chdir(tmp_path / sub)
        with pytest.raises(KeyboardInterrupt):
            run_mod.run_photons(overrides=cfg, client=first, _after_part=stop)
        folder = run_folder("h.parquet")  # (on a cluster a running part may still finish)
        before = done_chunks(folder) | {int(p.stem[5:]) for p in folder.glob("part-*.parquet")}
        assert 0 < len(before) < 10 and not Path("h.parquet").exists()
        ran: list[int] = []
        res = run_mod.run_photons(overrides=cfg, client=then, resume=True, _after_part=ran.append)
        assert ran and not set(ran) & before  # the finished parts were not redone
        pd.testing.assert_frame_equal(res.result.hits, ref.result.hits)
        for name in ("h.parquet", "c.parquet"):  # byte for byte, provenance included
            assert (tmp_path / sub / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
        assert not folder.exists()


def test_collider_on_the_cluster_resume_and_equal_one_process(
    client: Any, tmp_path: Path, fixed_time: None
) -> None:
    from ariasim.simulators.collider.run import run_collider, run_folder

    opts = {"species": ["mu-", "e-"], "n": 2100, "pt_max_gev": 10.0, "seed": 7, "progress": False}
    run_collider(out=tmp_path / "ref.parquet", **opts)
    out = tmp_path / "out.parquet"

    def stop(k: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_collider(out=out, client=client, _after_block=stop, **opts)
    assert not out.exists() and run_folder(out).exists()
    run_collider(out=out, client=client, resume=True, **opts)
    assert _table(out).equals(_table(tmp_path / "ref.parquet"))
    assert len(pd.read_parquet(out)) == 2100 and not run_folder(out).exists()
    # interrupted in one process, resumed on the cluster, and the other way round
    for first, then in ((None, client), (client, None)):
        out = tmp_path / f"{first is None}.parquet"
        with pytest.raises(KeyboardInterrupt):
            run_collider(out=out, client=first, _after_block=stop, **opts)
        folder = run_folder(out)
        before = done_chunks(folder) | {
            k for k in range(3) if (folder / f"block-{k:06d}.parquet").exists()
        }
        assert before  # (a cancelled block may still finish: no upper bound)
        ran: list[int] = []
        run_collider(out=out, client=then, resume=True, _after_block=ran.append, **opts)
        assert not set(ran) & before  # the finished blocks were not redone
        assert _table(out).equals(_table(tmp_path / "ref.parquet"))


def _cli(argv: list[str]) -> None:
    from ariasim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code in (0, None), argv


def test_cli_simulate_workers_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixed_time: None
) -> None:
    """``simulate photons|collider --workers 2`` (a cluster of its own) writes the same
    files as a single-process run (the same relative names, in two folders)."""
    photons = ["simulate", "photons", "--photons", "3e5", "--medium", "water"]
    photons += ["--events", "3", "--distance", "5", "--seed", "4", "--no-progress"]
    photons += ["--out", "h.parquet", "--counts-out", "c.csv"]
    collider = ["simulate", "collider", "--particle", "mu-,pi+", "--n", "1500"]
    collider += ["--pt-max", "20", "--seed", "2", "--quiet", "--out", "col.parquet"]
    for sub, extra in (("one", []), ("dask", ["--workers", "2"])):
        (tmp_path / sub).mkdir()
        monkeypatch.chdir(tmp_path / sub)
        _cli(photons + extra)
        _cli(collider + extra)
    for name in ("h.parquet", "c.csv", "col.parquet"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == [
        "c.csv",
        "col.parquet",
        "h.parquet",
    ]
