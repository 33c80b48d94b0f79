"""Same inputs and seed, same bytes: each data-writing command run twice with different
threads / batch sizes writes byte-identical files (with ``SOURCE_DATE_EPOCH`` set, so the
provenance's creation time is fixed too; see :func:`ariasim.io.make_provenance`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ariasim.cli import main


def _run(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code in (0, None), argv


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def test_simulate_collider_bytes_independent_of_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = []
    for k, batch in enumerate(("700", "3000")):
        (tmp_path / str(k)).mkdir()
        monkeypatch.chdir(tmp_path / str(k))
        _run(
            [
                "simulate",
                "collider",
                "--particle",
                "mu-,e-",
                "--n",
                "1500",
                "--seed",
                "3",
                "--batch-size",
                batch,
                "--quiet",
                "--out",
                "c.parquet",
            ]
        )
        outs.append(_digest(tmp_path / str(k) / "c.parquet"))
    assert outs[0] == outs[1]


def test_simulate_photons_bytes_independent_of_threads(tmp_path: Path) -> None:
    outs = []
    for k, threads in enumerate(("1", "2")):
        out, counts = tmp_path / f"h{k}.parquet", tmp_path / f"n{k}.parquet"
        _run(
            [
                "simulate",
                "photons",
                "--photons",
                "2e5",
                "--distance",
                "5",
                "--seed",
                "9",
                "--threads",
                threads,
                "--no-progress",
                "--out",
                str(out),
                "--counts-out",
                str(counts),
            ]
        )
        outs.append((_digest(out), _digest(counts)))
    # n_threads is recorded in the provenance as requested: compare the data bytes
    import pyarrow.parquet as pq

    tabs = [pq.read_table(tmp_path / f"h{k}.parquet").replace_schema_metadata() for k in range(2)]
    assert tabs[0].equals(tabs[1])
    cnts = [pq.read_table(tmp_path / f"n{k}.parquet").replace_schema_metadata() for k in range(2)]
    assert cnts[0].equals(cnts[1])


def test_simulate_photons_same_bytes_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outs = []
    for k in range(2):  # the output path is recorded: the same relative name, two folders
        (tmp_path / str(k)).mkdir()
        monkeypatch.chdir(tmp_path / str(k))
        _run(
            [
                "simulate",
                "photons",
                "--photons",
                "2e5",
                "--distance",
                "5",
                "--seed",
                "9",
                "--threads",
                "1",
                "--no-progress",
                "--out",
                "h.parquet",
            ]
        )
        outs.append(_digest(tmp_path / str(k) / "h.parquet"))
    assert outs[0] == outs[1]
