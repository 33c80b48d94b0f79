"""Bad input to ``ariasim fit response``: a clean one-line error naming the flag, file or
column, exit status 2, no model written, inputs untouched (issue 10); every case fails
before the first fit. Also: the same table and seed give byte-identical model files in
two processes, NaN rows are dropped and counted, and an interrupted run resumes to the
same file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from badinput import Case, check_case, make_folder

SRC = str(Path(__file__).resolve().parents[1] / "src")


def full_table(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A small full-simulation-like table (muons and electrons): truth kinematics, an
    efficiency rising with pT, log-normal pT smearing for muons and Gaussian energy
    smearing for electrons (enough to fit, fast to make)."""
    rng = np.random.default_rng(seed)
    pdg = np.where(np.arange(n) % 2 == 0, 13, 11)
    pt = np.exp(rng.uniform(np.log(2.0), np.log(200.0), n))
    eta = rng.uniform(-2.4, 2.4, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    e = pt * np.cosh(eta)
    passed = rng.random(n) < 0.95 - 0.3 * np.exp(-pt / 4)
    muon = pdg == 13
    reco_pt = np.where(muon, pt * np.exp(rng.normal(0, 0.02, n)), pt * rng.normal(1, 0.05, n))
    reco_e = np.where(muon, reco_pt * np.cosh(eta), e * rng.normal(1, 0.05, n))
    kind = np.where(muon, "muon", "electron")
    return pd.DataFrame(
        {
            "event_id": np.arange(n),
            "pdg": pdg,
            "truth_pt_gev": pt,
            "truth_eta": eta,
            "truth_phi": phi,
            "truth_e_gev": e,
            "object_type": np.where(passed, kind, "none"),
            "reco_pt_gev": np.where(passed, reco_pt, np.nan),
            "reco_eta": np.where(passed, eta + rng.normal(0, 1e-3, n), np.nan),
            "reco_phi": np.where(passed, phi + rng.normal(0, 1e-3, n), np.nan),
            "reco_e_gev": np.where(passed, reco_e, np.nan),
        }
    )


def _ok(tmp: Path) -> None:
    full_table().to_parquet(tmp / "t.parquet")


def _write(name: str, content: bytes | str):
    def setup(tmp: Path) -> None:
        _ok(tmp)
        p = tmp / name
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content)

    return setup


def _truncated(tmp: Path) -> None:
    _ok(tmp)
    data = (tmp / "t.parquet").read_bytes()
    (tmp / "t.parquet").write_bytes(data[: len(data) // 2])


def _no_rows(tmp: Path) -> None:
    full_table().iloc[:0].to_parquet(tmp / "t.parquet")


def _missing_columns(tmp: Path) -> None:
    full_table().drop(columns=["object_type", "reco_e_gev"]).to_parquet(tmp / "t.parquet")


def _few(tmp: Path) -> None:
    full_table(60).to_parquet(tmp / "t.parquet")


def _folder(name: str):
    return make_folder(name, base=_ok)


def _stale_run(tmp: Path) -> None:
    _ok(tmp)
    (tmp / ".m.json.run").mkdir()
    (tmp / ".m.json.run" / "run.json").write_text('{"key": "another run"}')


FIT = ("fit", "response", "t.parquet", "--out", "m.json", "--method", "poly")
M = ["m.json", "s.json"]

CASES = [
    # inputs
    Case(
        "input-missing",
        ("fit", "response", "none.parquet", "--out", "m.json"),
        "none.parquet",
        setup=_ok,
        outputs=M,
    ),
    Case("input-empty-file", FIT, "t.parquet", setup=_write("t.parquet", b""), outputs=M),
    Case("input-truncated", FIT, "t.parquet", setup=_truncated, outputs=M),
    Case("input-not-parquet", FIT, "t.parquet", setup=_write("t.parquet", "a,b\n1,2\n"), outputs=M),
    Case("input-no-rows", FIT, "t.parquet", setup=_no_rows, outputs=M),
    Case(
        "input-is-folder",
        ("fit", "response", "d", "--out", "m.json"),
        "d",
        setup=_folder("d"),
        outputs=M,
    ),
    Case("not-full-simulation", FIT, "object_type, reco_e_gev", setup=_missing_columns, outputs=M),
    Case("too-few-particles", FIT, "too few truth particles", setup=_few, outputs=M),
    Case("too-few-of-an-object", (*FIT, "--object", "photon"), "photon", setup=_ok, outputs=M),
    # options
    Case("object-unknown", (*FIT, "--object", "gluon"), "--object", setup=_ok, outputs=M),
    Case(
        "object-twice",
        (*FIT, "--object", "muon", "--object", "muon"),
        "--object",
        setup=_ok,
        outputs=M,
    ),
    Case("method-unknown", (*FIT[:5], "--method", "foo"), "--method", setup=_ok, outputs=M),
    Case("regions-unknown", (*FIT, "--regions", "foo"), "--regions", setup=_ok, outputs=M),
    Case("events-unknown", (*FIT, "--events", "foo"), "--events", setup=_ok, outputs=M),
    Case(
        "events-odd-no-event-id",
        (*FIT, "--events", "odd"),
        "event_id",
        setup=lambda tmp: full_table().drop(columns="event_id").to_parquet(tmp / "t.parquet"),
        outputs=M,
    ),
    Case("max-rows-zero", (*FIT, "--max-rows", "0"), "--max-rows", setup=_ok, outputs=M),
    Case("max-rows-negative", (*FIT, "--max-rows", "-3"), "--max-rows", setup=_ok, outputs=M),
    Case("max-regions-zero", (*FIT, "--max-regions", "0"), "--max-regions", setup=_ok, outputs=M),
    Case(
        "max-regions-with-single",
        (*FIT, "--regions", "single", "--max-regions", "2"),
        "--max-regions",
        setup=_ok,
        outputs=M,
    ),
    Case("input-twice", (*FIT[:3], "t.parquet", *FIT[3:]), "given twice", setup=_ok, outputs=M),
    Case("eta-max-nan", (*FIT, "--eta-max", "nan"), "--eta-max", setup=_ok, outputs=M),
    Case("eta-max-inf", (*FIT, "--eta-max", "inf"), "--eta-max", setup=_ok, outputs=M),
    Case("eta-max-zero", (*FIT, "--eta-max", "0"), "--eta-max", setup=_ok, outputs=M),
    Case("eta-max-negative", (*FIT, "--eta-max", "-1"), "--eta-max", setup=_ok, outputs=M),
    Case(
        "epochs-zero",
        (*FIT[:5], "--method", "kan", "--epochs", "0"),
        "--epochs",
        setup=_ok,
        outputs=M,
    ),
    Case("epochs-with-poly", (*FIT, "--epochs", "5"), "--epochs", setup=_ok, outputs=M),
    Case("seed-negative", (*FIT, "--seed", "-1"), "--seed", setup=_ok, outputs=M),
    Case("resume-other-run", (*FIT, "--resume"), "--resume", setup=_stale_run, outputs=M),
    # the outputs, checked before the tables are read
    Case("out-suffix", (*FIT[:4], "m.txt"), "--out", setup=_ok, outputs=["m.txt"]),
    Case(
        "stock-out-suffix",
        (*FIT, "--stock-out", "s.csv"),
        "--stock-out",
        setup=_ok,
        outputs=[*M, "s.csv"],
    ),
    Case(
        "stock-out-equals-out", (*FIT, "--stock-out", "m.json"), "--stock-out", setup=_ok, outputs=M
    ),
    Case(
        "out-equals-input",
        ("fit", "response", "t.json", "--out", "t.json"),
        "is also the input",
        setup=_write("t.json", "{}"),
    ),
    Case("out-exists", FIT, "--overwrite", setup=_write("m.json", "{}")),
    Case(
        "stock-out-exists",
        (*FIT, "--stock-out", "s.json"),
        "--overwrite",
        setup=_write("s.json", "{}"),
        outputs=["m.json"],
    ),
    Case("out-is-folder", FIT, "folder", setup=_folder("m.json")),
    Case("out-under-a-file", (*FIT[:4], "f.txt/m.json"), "f.txt", setup=_write("f.txt", "x")),
    # outputs before inputs: a bad --out is reported even when the input is missing too
    Case("out-before-input", ("fit", "response", "none.parquet", "--out", "m.txt"), "--out"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)


# ---------------------------------------------------------------- reproducibility


def _cli(tmp: Path, *args: str, hashseed: str, threads: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "PYTHONHASHSEED": hashseed,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    return subprocess.run(
        [sys.executable, "-m", "ariasim", "fit", "response", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("method", ["poly", "kan"])
def test_same_table_and_seed_give_identical_files(method: str, tmp_path: Path) -> None:
    if method == "kan":
        pytest.importorskip("ariasim.surrogates.kan_symbolic")
    table = full_table(1600, seed=3)
    table.loc[[5, 8], "truth_pt_gev"] = np.nan  # dropped and reported, not a crash
    table.to_parquet(tmp_path / "t.parquet")
    extra = ["--epochs", "3", "--max-rows", "600"] if method == "kan" else []
    runs = []
    for k, (hashseed, threads) in enumerate((("1", "1"), ("2", "2"))):
        r = _cli(
            tmp_path,
            "t.parquet",
            "--out",
            f"m{k}.json",
            "--stock-out",
            f"s{k}.json",
            "--method",
            method,
            "--seed",
            "7",
            *extra,
            hashseed=hashseed,
            threads=threads,
        )
        assert r.returncode == 0, r.stderr
        runs.append(r)
    assert (tmp_path / "m0.json").read_bytes() == (tmp_path / "m1.json").read_bytes()
    assert (tmp_path / "s0.json").read_bytes() == (tmp_path / "s1.json").read_bytes()
    # the timings are printed, not saved; the dropped rows are counted
    assert "fit_s" not in (tmp_path / "m0.json").read_text()
    assert "dropped 2 input row(s) with a NaN or infinite truth_pt_gev" in runs[0].stdout
    assert "muon (1/2): learning" in runs[0].stderr  # progress from the start
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resume_after_an_interruption_gives_the_same_file(tmp_path: Path) -> None:
    from ariasim.apps.collider.learn import learner_for_method
    from ariasim.apps.collider.workflow import run_fit_response
    from ariasim.utils import run_folder

    full_table(800, seed=4).to_parquet(tmp_path / "t.parquet")

    def learner():
        return learner_for_method("poly", random_state=5)

    whole = run_fit_response(
        learner(), [tmp_path / "t.parquet"], tmp_path / "a.json", stock_out=tmp_path / "sa.json"
    )
    assert whole.objects

    class Stop(Exception):
        pass

    def stop_after_first(name: str) -> None:
        raise Stop(name)

    out = tmp_path / "b.json"
    with pytest.raises(Stop):
        run_fit_response(
            learner(),
            [tmp_path / "t.parquet"],
            out,
            stock_out=tmp_path / "sb.json",
            _after_object=stop_after_first,
        )
    assert not out.exists() and not (tmp_path / "sb.json").exists()  # all or nothing
    assert [p.name for p in run_folder(out).glob("object-*.json")] == ["object-muon.json"]
    lines: list[str] = []
    run_fit_response(
        learner(),
        [tmp_path / "t.parquet"],
        out,
        stock_out=tmp_path / "sb.json",
        resume=True,
        progress=lines.append,
    )
    assert "muon (1/2): kept from the interrupted run" in lines
    assert "electron (2/2): learning" in lines
    assert out.read_bytes() == (tmp_path / "a.json").read_bytes()
    assert (tmp_path / "sb.json").read_bytes() == (tmp_path / "sa.json").read_bytes()
    assert not run_folder(out).exists()


def test_cli_interrupted_then_resumed(tmp_path: Path, monkeypatch, capsys) -> None:
    """Ctrl-C during the second object: exit 130, the first object kept in the hidden run
    folder, no --out; ``--resume`` then fits only the second and writes the same file as
    an uninterrupted run."""
    from ariasim.apps.collider.learn import ResponseLearner
    from ariasim.cli import main

    full_table(800, seed=6).to_parquet(tmp_path / "t.parquet")
    monkeypatch.chdir(tmp_path)
    argv = ["fit", "response", "t.parquet", "--method", "poly", "--seed", "2"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", "a.json"])
    assert exc.value.code in (0, None)
    original = ResponseLearner._fit_object

    def interrupted(self, d, name, *args, **kwargs):
        if name == "electron":
            raise KeyboardInterrupt
        return original(self, d, name, *args, **kwargs)

    monkeypatch.setattr(ResponseLearner, "_fit_object", interrupted)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", "b.json"])
    assert exc.value.code == 130
    assert "--resume" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
    assert (tmp_path / ".b.json.run" / "object-muon.json").exists()
    fitted: list[str] = []

    def counted(self, d, name, *args, **kwargs):
        fitted.append(name)
        return original(self, d, name, *args, **kwargs)

    monkeypatch.setattr(ResponseLearner, "_fit_object", counted)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", "b.json", "--resume"])
    assert exc.value.code in (0, None) and fitted == ["electron"]
    assert (tmp_path / "b.json").read_bytes() == (tmp_path / "a.json").read_bytes()
    assert not (tmp_path / ".b.json.run").exists()
