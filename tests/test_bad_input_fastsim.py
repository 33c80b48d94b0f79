"""Bad input to ``ariasim fastsim``: a clean one-line error naming the flag, file, field or
column, exit status 2, no output table or report left, inputs untouched (issue 10); and
what it promises on good input: the same output data for the same inputs and seed, the
table and the report written together, progress shown from the start of ``--compare``.

The inputs are built by hand (no full simulation, no fit): the toy response model of
``test_delphes`` and a particle table; its "full-simulation" table is the fast simulation
of that particle table with another seed (it has the full simulation's schema).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ariasim.apps.collider.fastsim import fastsim
from badinput import Case, check_case, make_folder
from test_delphes import toy_model

N = 4000  # particles: enough for the binned comparison of --compare (30 per bin)


@functools.cache
def _tables() -> tuple[bytes, bytes, str]:
    """(particle table, full-simulation-like table, model JSON), made once."""
    rng = np.random.default_rng(3)
    n = N
    pdg = rng.choice([13, -13, 22, 211], n)
    pt = np.exp(rng.uniform(np.log(2.0), np.log(200.0), n))
    eta = rng.uniform(-2.6, 2.6, n)
    parts = pd.DataFrame(
        {
            "event_id": np.arange(n) // 4,
            "particle_id": np.arange(n),
            "pdg": pdg,
            "pt_gev": pt,
            "eta": eta,
            "phi": rng.uniform(-np.pi, np.pi, n),
            "e_gev": pt * np.cosh(eta),
        }
    )
    model = toy_model()
    full = fastsim(parts, model, 11)
    b1, b2 = io.BytesIO(), io.BytesIO()
    parts.to_parquet(b1)
    full.to_parquet(b2)
    return b1.getvalue(), b2.getvalue(), json.dumps(model.to_dict())


def _write(tmp: Path) -> None:
    parts, full, model = _tables()
    (tmp / "p.parquet").write_bytes(parts)
    (tmp / "full.parquet").write_bytes(full)
    (tmp / "r.json").write_text(model)


def _ok(tmp: Path) -> None:
    _write(tmp)


def _model(change: Callable[[dict[str, Any]], None], name: str = "r.json"):
    def setup(tmp: Path) -> None:
        _write(tmp)
        d = copy.deepcopy(json.loads(_tables()[2]))
        change(d)
        (tmp / name).write_text(json.dumps(d))

    return setup


def _text(content: str | bytes, name: str):
    def setup(tmp: Path) -> None:
        _write(tmp)
        if isinstance(content, bytes):
            (tmp / name).write_bytes(content)
        else:
            (tmp / name).write_text(content)

    return setup


def _copy(src: str, name: str):
    def setup(tmp: Path) -> None:
        _write(tmp)
        (tmp / name).write_bytes((tmp / src).read_bytes())

    return setup


def _truncated(name: str):
    def setup(tmp: Path) -> None:
        _write(tmp)
        data = (tmp / name).read_bytes()
        (tmp / name).write_bytes(data[: len(data) // 2])

    return setup


def _parts(**change: Any):
    """The particle table with columns replaced (value) or dropped (None)."""

    def setup(tmp: Path) -> None:
        _write(tmp)
        t = pd.read_parquet(tmp / "p.parquet")
        for col, value in change.items():
            if value is None:
                t = t.drop(columns=col)
            else:
                t[col] = value
        t.to_parquet(tmp / "p.parquet")

    return setup


def _small(tmp: Path) -> None:
    _write(tmp)
    pd.read_parquet(tmp / "full.parquet").iloc[:200].to_parquet(tmp / "small.parquet")


def _folder(name: str):
    return make_folder(name, base=_write)


def _nan_at(k: int, n: int = N, value: float = np.nan) -> np.ndarray:
    v = np.ones(n)
    v[k] = value
    return v


def _set(path: str, value: Any):
    def change(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = d
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


FS = ("fastsim", "--response", "r.json", "--input", "p.parquet", "--out", "f.parquet")
CMP = (
    "fastsim",
    "--response",
    "r.json",
    "--input",
    "full.parquet",
    "--out",
    "f.parquet",
    "--compare",
)
OUT = ("f.parquet", "rep.html")
MU = "objects.muon"


def _c(id: str, argv, expect: str, setup=_ok) -> Case:
    return Case(id, argv, expect, setup=setup, outputs=OUT)


CASES = [
    # the response model
    _c("response-missing", (*FS[:2], "none.json", *FS[3:]), "none.json"),
    _c("response-truncated", FS, "r.json", _truncated("r.json")),
    _c("response-deep", FS, "r.json", _text("[" * 100_000 + "]" * 100_000, "r.json")),
    _c("response-wrong-schema", FS, "r.json", _model(_set("schema", "x"))),
    _c(
        "response-name-injection",
        FS,
        f"{MU}.name",
        _model(_set(f"{MU}.name", "muon\nset ExecutionPath {}")),
    ),
    _c(
        "response-unknown-object",
        FS,
        "objects.tau.name",
        _model(
            lambda d: (
                d["objects"].__setitem__("tau", d["objects"].pop("muon")),
                _set("objects.tau.name", "tau")(d),
            )
        ),
    ),
    _c(
        "response-formula-tower",
        FS,
        f"{MU}.efficiency[0].formula",
        _model(_set(f"{MU}.efficiency.0.formula.expression", "9^9^9")),
    ),
    _c("response-sigma-negative", FS, f"{MU}.sigma_eta", _model(_set(f"{MU}.sigma_eta", -1e-3))),
    _c("response-sigma-nan", FS, f"{MU}.sigma_phi", _model(_set(f"{MU}.sigma_phi", float("nan")))),
    _c("response-mass-inf", FS, f"{MU}.mass_gev", _model(_set(f"{MU}.mass_gev", float("inf")))),
    _c("response-eta-max-negative", FS, f"{MU}.eta_max", _model(_set(f"{MU}.eta_max", -1.0))),
    # the input table
    _c("input-missing", (*FS[:4], "none.parquet", *FS[5:]), "none.parquet"),
    _c("input-empty-file", FS, "p.parquet", _text(b"", "p.parquet")),
    _c("input-truncated", FS, "p.parquet", _truncated("p.parquet")),
    _c("input-not-parquet", FS, "p.parquet", _text("a,b\n1,2\n", "p.parquet")),
    _c("input-unknown-suffix", (*FS[:4], "p.txt", *FS[5:]), "p.txt", _text("x\n1\n", "p.txt")),
    _c("input-lacks-pt", FS, "pt_gev", _parts(pt_gev=None)),
    _c("input-lacks-pdg", FS, "pdg", _parts(pdg=None)),
    _c("input-pdg-text", FS, "pdg", _parts(pdg=["mu"] * N)),
    _c("input-pdg-nan", FS, "pdg", _parts(pdg=_nan_at(5) * 13)),
    _c("input-eta-nan", FS, "'eta'", _parts(eta=_nan_at(7))),
    _c("input-pt-inf", FS, "pt_gev", _parts(pt_gev=_nan_at(7, value=np.inf))),
    _c("input-eta-text", FS, "'eta'", _parts(eta=["x"] * N)),
    _c("events-without-event-id", (*FS, "--events", "even"), "event_id", _parts(event_id=None)),
    _c("compare-on-particle-table", (*FS, "--compare"), "object_type"),
    _c("compare-too-few", (*CMP[:4], "small.parquet", *CMP[5:]), "small.parquet", _small),
    # options
    _c("events-unknown", (*FS, "--events", "half"), "--events"),
    _c("events-empty", (*FS, "--events", ""), "--events"),
    _c("seed-negative", (*FS, "--seed", "-1"), "--seed"),
    _c("report-without-compare", (*FS, "--report", "rep.html"), "--report"),
    _c("stock-without-compare", (*FS, "--stock", "r.json"), "--stock"),
    _c("compare-with-without-compare", (*FS, "--compare-with", "r.json"), "--compare-with"),
    _c("stock-truncated", (*CMP, "--stock", "s.json"), "s.json", _text('{"schema": ', "s.json")),
    _c("stock-missing", (*CMP, "--stock", "s.json"), "s.json"),
    _c(
        "compare-with-bad",
        (*CMP, "--compare-with", "c.json"),
        "c.json",
        _model(_set(f"{MU}.sigma_eta", -1.0), name="c.json"),
    ),
    # outputs, checked before any work
    _c("out-suffix", (*FS[:6], "f.txt"), "--out"),
    _c("report-suffix", (*CMP, "--report", "rep.htm"), "--report"),
    _c("out-equals-input", (*FS[:6], "p.parquet", "--overwrite"), "is also the input --input"),
    _c(
        "out-equals-response",
        ("fastsim", "--response", "r.csv", "--input", "p.parquet", "--out", "r.csv", "--overwrite"),
        "is also the input --response",
        _copy("r.json", "r.csv"),
    ),
    _c(
        "report-equals-stock",
        (*CMP, "--stock", "s.html", "--report", "s.html", "--overwrite"),
        "is also the input --stock",
        _copy("r.json", "s.html"),
    ),
    _c(
        "report-equals-compare-with",
        (*CMP, "--compare-with", "c.html", "--report", "c.html", "--overwrite"),
        "is also the input --compare-with",
        _copy("r.json", "c.html"),
    ),
    Case("out-exists", FS, "--overwrite", setup=_copy("p.parquet", "f.parquet")),
    Case(
        "report-exists",
        (*CMP, "--report", "rep.html"),
        "--overwrite",
        setup=_text("<html>", "rep.html"),
        outputs=("f.parquet",),
    ),
    Case("out-is-folder", FS, "folder", setup=_folder("f.parquet"), outputs=("rep.html",)),
    _c("out-under-a-file", (*FS[:6], "x.txt/f.parquet"), "x.txt", _text("x", "x.txt")),
    _c("outputs-before-model", (*FS[:6], "f.txt"), "--out", _text("{", "r.json")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)


# --------------------------------------------------------------------------- good input


def _run(argv: list[str], tmp: Path) -> tuple[int, str, str]:
    from ariasim.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp)
    code: object = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(cwd)
    return int(code or 0), out.getvalue(), err.getvalue()


def _data(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def test_same_seed_same_output(tmp_path: Path) -> None:
    """Same inputs and seed: identical output data (the files differ only in the
    provenance's creation time); another seed: different data."""
    _write(tmp_path)
    for name, seed in (("a.parquet", "5"), ("b.parquet", "5"), ("c.parquet", "6")):
        code, _, err = _run([*FS[:6], name, "--seed", seed], tmp_path)
        assert code == 0, err
    a, b, c = (_data(tmp_path / n) for n in ("a.parquet", "b.parquet", "c.parquet"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["found"].any() and not a["reco_pt_gev"].equals(c["reco_pt_gev"])


def test_simulator_is_stateless_and_unchunked() -> None:
    """The fast simulation is one pass without chunks or threads: a compiled simulator
    applied twice, or a fresh one, gives the same table for the same seed."""
    from ariasim.apps.collider.fastsim import FastSimulator

    parts = pd.read_parquet(io.BytesIO(_tables()[0]))
    sim = FastSimulator(toy_model())
    first = sim(parts, 9)
    sim(parts.iloc[::-1], 3)  # another table in between
    pd.testing.assert_frame_equal(first, sim(parts, 9), check_exact=True)
    pd.testing.assert_frame_equal(first, fastsim(parts, toy_model(), 9), check_exact=True)


def test_compare_progress_and_report(tmp_path: Path) -> None:
    """--compare reports progress from the start (stderr) and writes table and report."""
    _write(tmp_path)
    code, out, err = _run([*CMP, "--report", "rep.html", "--stock", "r.json"], tmp_path)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("fastsim:")]
    assert lines[0].startswith("fastsim: reading the response model")
    assert any("classifier AUC" in ln for ln in lines) and "writing f.parquet" in lines[-1]
    assert (tmp_path / "f.parquet").is_file() and (tmp_path / "rep.html").is_file()
    assert "auc" in out


def test_table_and_report_written_together(tmp_path: Path, monkeypatch) -> None:
    """A report that cannot be written leaves no output table (and no temporary)."""
    import ariasim.apps.collider.report as report

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(report, "make_report", broken)
    _write(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    from ariasim.apps.collider.workflow import run_fastsim

    with pytest.raises(OSError, match="disk full"):
        run_fastsim(
            tmp_path / "r.json",
            tmp_path / "full.parquet",
            tmp_path / "f.parquet",
            compare=True,
            report=tmp_path / "rep.html",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_root_output(tmp_path: Path) -> None:
    """.root output works: object_type as the full simulation's integer codes."""
    from ariasim.io import read_provenance, read_table
    from ariasim.simulators.collider.run import OBJECT_TYPE_CODES

    _write(tmp_path)
    code, _, err = _run([*FS[:6], "f.root", "--seed", "5"], tmp_path)
    assert code == 0, err
    _run([*FS[:6], "f.parquet", "--seed", "5"], tmp_path)
    back, ref = read_table(tmp_path / "f.root"), _data(tmp_path / "f.parquet")
    assert len(back) == len(ref)
    np.testing.assert_array_equal(
        back["object_type"].to_numpy(), ref["object_type"].map(OBJECT_TYPE_CODES).to_numpy()
    )
    np.testing.assert_array_equal(back["reco_pt_gev"].to_numpy(), ref["reco_pt_gev"].to_numpy())
    assert read_provenance(tmp_path / "f.root")["config"]["object_type_codes"]["muon"] == 3
