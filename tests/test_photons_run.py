"""``ariasim simulate photons`` end to end: determinism across threads and batch sizes,
parts in a hidden run folder, ``--resume`` after an interruption (issue 10)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest

from ariasim.io import read_provenance, read_table
from ariasim.simulators.photons import run as run_mod
from ariasim.simulators.photons.batches import BLOCK_PHOTONS
from ariasim.utils import run_folder

# water is fast; five events of ~1e5 propagated photons (two generation blocks each)
SMALL = {
    "medium": {"name": "water"},
    "source": {"n_photons": 8e5},
    "n_events": 5,
    "seed": 9,
    "detector": {"distance_m": 5.0},
}


def _cli(*argv: str) -> str:
    from ariasim.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
    assert exc.value.code == 0, err.getvalue() + out.getvalue()
    return out.getvalue()


def _prov(path: Path) -> dict:
    prov = read_provenance(path)
    prov.pop("created_utc")
    return prov


def test_cli_same_seed_same_tables_for_threads_and_batch_size(tmp_path: Path) -> None:
    base = [
        "simulate",
        "photons",
        "--no-progress",
        "--medium",
        "water",
        "--photons",
        "8e5",
        "--events",
        "3",
        "--distance",
        "5",
        "--seed",
        "4",
    ]
    out = tmp_path / "h.parquet"
    counts = tmp_path / "c.csv"
    _cli(*base, "--out", str(out), "--counts-out", str(counts), "--threads", "1")
    hits1, counts1, prov1 = read_table(out), read_table(counts), _prov(out)
    assert len(hits1) > 100
    _cli(*base, "--out", str(out), "--counts-out", str(counts), "--threads", "2", "--overwrite")
    pd.testing.assert_frame_equal(read_table(out), hits1)
    pd.testing.assert_frame_equal(read_table(counts), counts1)
    prov2 = _prov(out)
    assert prov2["config"].pop("n_threads") == 2 and prov1["config"].pop("n_threads") == 1
    assert prov2 == prov1
    # an internal batch size (a configuration-file key) does not change the tables either
    cfg = tmp_path / "run.toml"
    cfg.write_text("batch_size = 20000\n")
    _cli(*base, str(cfg), "--out", str(out), "--overwrite")
    pd.testing.assert_frame_equal(read_table(out), hits1)
    assert not run_folder(out).exists()


def test_parts_do_not_change_the_result(tmp_path: Path, monkeypatch) -> None:
    whole = run_mod.run_photons(overrides={**SMALL, "out": str(tmp_path / "a.parquet")})
    monkeypatch.setattr(run_mod, "PART_PHOTONS", BLOCK_PHOTONS)  # one block per part
    seen: list[int] = []
    split = run_mod.run_photons(
        overrides={**SMALL, "out": str(tmp_path / "b.parquet")}, _after_part=seen.append
    )
    assert len(seen) >= 5
    pd.testing.assert_frame_equal(split.result.hits, whole.result.hits)
    pd.testing.assert_frame_equal(split.result.counts, whole.result.counts)
    assert split.result.n_photons == whole.result.n_photons


def test_resume_after_an_interruption_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(run_mod, "PART_PHOTONS", BLOCK_PHOTONS)
    ref = run_mod.run_photons(overrides={**SMALL, "out": str(tmp_path / "ref.parquet")})
    out = tmp_path / "h.parquet"
    cfg = {**SMALL, "out": str(out), "counts_out": str(tmp_path / "c.parquet")}

    def stop_after_two(k: int) -> None:
        if k == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_mod.run_photons(overrides=cfg, _after_part=stop_after_two)
    folder = run_folder(out)
    assert not out.exists()
    assert sorted(p.name for p in folder.glob("part-*.parquet")) == [
        "part-000000.parquet",
        "part-000001.parquet",
    ]
    # a different configuration may not continue this run
    with pytest.raises(Exception, match="other options or inputs"):
        run_mod.run_photons(overrides={**cfg, "seed": 10}, resume=True)
    ran: list[int] = []
    res = run_mod.run_photons(overrides=cfg, resume=True, _after_part=ran.append)
    assert ran and min(ran) == 2  # the finished parts were not redone
    pd.testing.assert_frame_equal(res.result.hits, ref.result.hits)
    pd.testing.assert_frame_equal(read_table(out), read_table(tmp_path / "ref.parquet"))
    pd.testing.assert_frame_equal(read_table(tmp_path / "c.parquet"), ref.result.counts)
    assert not folder.exists()


def test_stale_run_folder_is_replaced_without_resume(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(run_mod, "PART_PHOTONS", BLOCK_PHOTONS)
    out = tmp_path / "h.parquet"
    folder = run_folder(out)
    folder.mkdir()
    (folder / "part-000000.parquet").write_bytes(b"junk from another run")
    res = run_mod.run_photons(overrides={**SMALL, "out": str(out)})
    assert len(res.result.hits) > 0 and not folder.exists()


def test_cli_interrupt_then_resume(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C: exit 130 with a hint and the finished parts kept; ``--resume`` finishes the
    run with the same table as an uninterrupted one."""
    from ariasim.cli import main

    monkeypatch.setattr(run_mod, "PART_PHOTONS", BLOCK_PHOTONS)
    argv = [
        "simulate",
        "photons",
        "--no-progress",
        "--medium",
        "water",
        "--photons",
        "8e5",
        "--events",
        "3",
        "--distance",
        "5",
        "--seed",
        "2",
    ]
    _cli(*argv, "--out", str(tmp_path / "ref.parquet"))
    real = run_mod.run_photons

    def interrupted(*args, **kw):
        def stop(k: int) -> None:
            if k == 1:
                raise KeyboardInterrupt

        return real(*args, **kw, _after_part=stop)

    out = tmp_path / "h.parquet"
    monkeypatch.setattr(run_mod, "run_photons", interrupted)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--out", str(out)])
    assert exc.value.code == 130 and "--resume" in err.getvalue()
    assert not out.exists() and run_folder(out).exists()
    monkeypatch.setattr(run_mod, "run_photons", real)
    _cli(*argv, "--out", str(out), "--resume")
    pd.testing.assert_frame_equal(read_table(out), read_table(tmp_path / "ref.parquet"))
    assert not run_folder(out).exists()
