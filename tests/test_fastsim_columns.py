"""``ariasim fastsim`` without pandas (issue 14, item 6): a Parquet table read with PyArrow
into NumPy, simulated by the same kernel and written from Arrow buffers gives the same
file as the pandas path; the command imports no pandas; the Arrow reader and writer of
:mod:`ariasim.io` agree with the pandas ones for every dtype they take."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ariasim.apps.collider import columns as columns_module
from ariasim.apps.collider.columns import read_truth_columns
from ariasim.apps.collider.fastsim import FastSimulator, columns_frame
from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.apps.collider.shape import ResponseShape
from ariasim.apps.collider.workflow import run_fastsim
from ariasim.errors import InputError
from ariasim.io import read_numeric_columns, read_table, write_table
from ariasim.surrogates import Formula, Variable

SRC = Path(__file__).resolve().parents[1] / "src"
PT = Variable("pt", unit="GeV", low=2.0, high=300.0)
ENERGY = Variable("energy", unit="GeV", low=1.0, high=1000.0)


def _one(text: str, variables: list[Variable]) -> list[Region]:
    return [Region(0.0, 2.5, Formula(text, variables))]


def _model() -> ResponseModel:
    """A muon (track) and a photon (calorimeter) with non-Gaussian shapes, and an electron
    without one."""
    levels = (0.01, 0.1, 0.5, 0.9, 0.99)
    core = np.log([0.8, 0.97, 1.0, 1.02, 1.05])[:, None, None]
    shape = ResponseShape("energy", (0.0, 3.0, 6.0), (0.0, 2.5), levels, core * np.ones((5, 3, 2)))
    mu = ObjectResponse(
        "muon",
        "track",
        (13,),
        2.5,
        efficiency=_one("0.97 - 0.5/pt", [PT]),
        scale=_one("1.0", [PT]),
        resolution=_one("sqrt(0.01^2 + (2e-4*pt)^2)", [PT]),
        sigma_eta=1e-3,
        sigma_phi=2e-3,
        mass_gev=0.1057,
        shape=dataclasses.replace(shape, x="pt"),
    )
    gamma = ObjectResponse(
        "photon",
        "calo",
        (22,),
        2.5,
        efficiency=_one("0.95*tanh(energy/5)", [ENERGY]),
        scale=_one("0.99", [ENERGY]),
        resolution=_one("sqrt(0.3^2 + 0.05^2*energy)", [ENERGY]),
        sigma_eta=5e-4,
        shape=shape,
    )
    ele = ObjectResponse(
        "electron",
        "calo",
        (11,),
        2.5,
        efficiency=_one("0.9", [ENERGY]),
        scale=_one("1.0", [ENERGY]),
        resolution=_one("0.07*sqrt(energy) + 0.2", [ENERGY]),
        mass_gev=0.000511,
    )
    return ResponseModel({"muon": mu, "photon": gamma, "electron": ele})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A response model with shapes, a complete particle table and a full-simulation-like
    table (truth columns plus reco columns) of the same particles."""
    from ariasim.simulators.collider import ParticleGun

    d = tmp_path_factory.mktemp("columns")
    parts = ParticleGun(["mu-", "e-", "gamma", "pi+"], 1.0, 300.0, log_pt=True).generate(4000, 5)
    full = pd.DataFrame(
        {
            "event_id": parts["event_id"],
            "particle_id": parts["particle_id"],
            "pdg": parts["pdg"],
            "truth_charge": parts["charge"],
            "truth_pt_gev": parts["pt_gev"],
            "truth_eta": parts["eta"],
            "truth_phi": parts["phi"],
            "truth_e_gev": parts["e_gev"],
            "truth_vz_mm": parts["vz_mm"],
            "object_type": pd.array(["muon"] * len(parts), dtype="str"),
            "reco_pt_gev": np.where(parts["pdg"].abs() == 13, parts["pt_gev"], np.nan),
        }
    )
    return {
        "model": _model().save(d / "model.json"),
        "particles": write_table(parts, d / "particles.parquet", producer="test"),
        "full": write_table(full, d / "full.parquet", producer="test"),
    }


def _pandas_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns_module, "read_truth_columns", lambda path: None)


@pytest.mark.parametrize("events", ["all", "odd"])
@pytest.mark.parametrize("shape", [True, False])
@pytest.mark.parametrize("table", ["particles", "full"])
def test_arrow_path_writes_the_pandas_paths_file(
    files, tmp_path, monkeypatch, table: str, shape: bool, events: str
) -> None:
    """Same inputs and seed: the same file, byte for byte (card only and with shapes; a
    particle table and a full-simulation table; all and odd events)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    fast, slow = tmp_path / "fast" / "out.parquet", tmp_path / "slow" / "out.parquet"
    r = run_fastsim(files["model"], files[table], fast, seed=3, shape=shape, events=events)
    assert isinstance(r.table, dict)  # went the pandas-free way
    with monkeypatch.context() as m:
        _pandas_way(m)
        r_slow = run_fastsim(files["model"], files[table], slow, seed=3, shape=shape, events=events)
    assert isinstance(r_slow.table, pd.DataFrame)
    a, b = pq.read_table(fast), pq.read_table(slow)
    assert a.equals(b, check_metadata=True)
    assert fast.read_bytes() == slow.read_bytes()
    assert r.n_found == r_slow.n_found > 0 and r.n_particles == r_slow.n_particles
    pd.testing.assert_frame_equal(r.fast, r_slow.fast, check_exact=True)


def test_columns_and_dataframe_calls_agree(files) -> None:
    parts = read_table(files["particles"])
    sim = FastSimulator(ResponseModel.load(files["model"]))
    cols = sim.columns({c: parts[c].to_numpy() for c in parts.columns}, 11)
    pd.testing.assert_frame_equal(columns_frame(cols), sim(parts, 11), check_exact=True)
    shared = [c for c, v in cols.items() if isinstance(v, np.ndarray) and not v.flags.writeable]
    frame = columns_frame(cols)
    frame.loc[0, shared[0]] = 5  # the shared constant columns stay constant
    assert not (columns_frame(cols)[shared[1]] == 5).any()


def test_the_command_imports_no_pandas(files, tmp_path) -> None:
    code = f"""
import sys
from ariasim.cli import main
try:
    main(["fastsim", "-r", {str(files["model"])!r}, "-i", {str(files["particles"])!r},
          "-o", {str(tmp_path / "out.parquet")!r}])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = {{"pandas", "sympy", "scipy", "sklearn", "torch", "pyarrow.compute", "pyarrow.dataset"}}
print(sorted(heavy & set(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_tables_the_arrow_reader_leaves_to_pandas(files, tmp_path) -> None:
    """Tables to complete, other formats and values the general reader refuses go the
    general way (None), which raises its own error."""
    parts = read_table(files["particles"])
    assert read_truth_columns(files["particles"]) is not None
    assert read_truth_columns(files["full"]) is not None
    no_e = write_table(parts.drop(columns="e_gev"), tmp_path / "no_e.parquet", producer="t")
    assert read_truth_columns(no_e) is None  # E completed from the mass: pandas
    csv = write_table(parts, tmp_path / "p.csv", producer="t")
    assert read_truth_columns(csv) is None
    bad = parts.assign(mass_gev=-parts["mass_gev"] - 1.0)
    bad_file = write_table(bad, tmp_path / "bad.parquet", producer="t")
    assert read_truth_columns(bad_file) is None
    with pytest.raises(InputError, match="mass_gev"):
        run_fastsim(files["model"], bad_file, tmp_path / "o.parquet")
    nan_pid = parts.assign(particle_id=np.where(parts.index == 3, np.nan, parts["particle_id"]))
    nan_file = write_table(nan_pid, tmp_path / "nan.parquet", producer="t")
    assert read_truth_columns(nan_file) is None
    with pytest.raises(InputError, match="particle_id"):
        run_fastsim(files["model"], nan_file, tmp_path / "o.parquet")
    # completed by pandas, simulated the same way: same table as the complete file's
    a = run_fastsim(files["model"], no_e, tmp_path / "a.parquet", seed=2).fast
    b = run_fastsim(files["model"], files["particles"], tmp_path / "b.parquet", seed=2).fast
    assert a["found"].sum() > 0 and list(a.columns) == list(b.columns)


DTYPES = ["bool", "int8", "int32", "int64", "uint16", "uint64", "float32", "float64"]


def test_write_table_of_columns_equals_that_of_a_dataframe(tmp_path, monkeypatch) -> None:
    """A mapping of NumPy columns (and an Arrow string column) is written without pandas
    as the same file as the DataFrame of it: types, NaN as null, pandas metadata."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    rng = np.random.default_rng(1)
    n = 1000
    cols: dict[str, object] = {}
    for dt in DTYPES:
        v = (rng.random(n) * 100).astype(dt)
        if dt.startswith("float"):
            v[rng.random(n) < 0.3] = np.nan
        cols[dt] = v
    cols["float64_twice"] = cols["float64"]
    cols["inf"] = np.array([np.inf, -np.inf, 1.0] * 333 + [np.nan])
    cols["text"] = pa.array(["a", "bb", "ccc", "é"] * 250, type=pa.large_string())
    frame = pd.DataFrame(
        {k: (pd.array(v, dtype="str") if isinstance(v, pa.Array) else v) for k, v in cols.items()}
    )
    a = write_table(cols, tmp_path / "cols.parquet", producer="t", config={"k": 1}, seed=4)
    b = write_table(frame, tmp_path / "frame.parquet", producer="t", config={"k": 1}, seed=4)
    assert pq.read_table(a).equals(pq.read_table(b), check_metadata=True)
    assert a.read_bytes() == b.read_bytes()
    # what the Arrow path does not take goes through pandas, as before
    odd = {"x": np.array([1.0, 2.0]), "s": np.array(["u", "v"])}
    c = write_table(odd, tmp_path / "odd.parquet", producer="t")
    assert read_table(c)["s"].tolist() == ["u", "v"]


def test_read_numeric_columns_equals_pandas(tmp_path) -> None:
    """Several row groups (Arrow chunks), nulls in floats (NaN, float32 kept), offsets;
    integers with nulls and booleans are left to pandas (None)."""
    rng = np.random.default_rng(2)
    n = 2500
    f64 = rng.normal(size=n)
    f32 = rng.normal(size=n).astype(np.float32)
    valid = rng.random(n) > 0.2
    table = pa.table(
        {
            "i": pa.array(rng.integers(-5, 5, n)),
            "u": pa.array(rng.integers(0, 9, n).astype(np.uint8)),
            "f": pa.array(f64, mask=~valid),
            "g": pa.array(f32, mask=~valid),
            "h": pa.array(f64),
            "ni": pa.array(rng.integers(0, 9, n), mask=~valid),
            "b": pa.array(valid),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=700)
    got = read_numeric_columns(path, ["i", "u", "f", "g", "h"])
    ref = pq.read_table(path).to_pandas()
    assert got is not None
    for c, v in got.items():
        want = ref[c].to_numpy()
        assert v.dtype == want.dtype, c
        assert np.array_equal(v, want, equal_nan=True), c
    assert read_numeric_columns(path, ["i", "ni"]) is None
    assert read_numeric_columns(path, ["b"]) is None
    assert read_numeric_columns(path, ["missing"]) is None
    with pytest.raises(InputError, match="not found"):
        read_numeric_columns(tmp_path / "none.parquet", ["i"])


def _main(args: list[str], how: str, monkeypatch, capsys) -> tuple[object, str, str]:
    """Run ``ariasim ARGS`` in-process: ``plain`` (as the console script does), ``solo``
    (typer, the tree of fastsim alone) or ``whole`` (typer, every command); the exit
    status, stdout and stderr."""
    import typer

    import ariasim.cli.commands as commands
    import ariasim.cli.plain as plain
    from ariasim.cli import main

    with monkeypatch.context() as m:
        if how != "plain":
            m.setattr(plain, "plain_fastsim", lambda a: None)
        if how == "whole":
            m.setattr(commands, "_command_for", lambda a: typer.main.get_command(commands.app))
        with pytest.raises(SystemExit) as exc:
            main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


COMMAND_LINES = [
    ["fastsim", "--help"],
    ["fastsim"],
    ["fastsim", "--seed", "x", "-r", "M", "-i", "P", "-o", "c.parquet"],
    ["fastsim", "--bogus"],
    ["fastsim", "-r", "/none.json", "-i", "/none.parquet", "-o", "/none/y.parquet"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--report", "r.html"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--seed", "0", "--no-shape"],
    ["fastsim", "--input", "P", "--out", "O", "--response", "M", "--overwrite", "--seed", "007"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--seed", "-3"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--seed", "+4"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--events", "odd", "--shape"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--events", "bogus"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "-o", "O2", "--overwrite"],
    ["fastsim", "-r", "M", "-i", "P", "--out=O", "--overwrite", "--no-compare"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--shape", "--no-shape"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "O", "--overwrite", "--", "x"],
    ["fastsim", "-r", "M", "-i", "P", "-o"],
    ["fastsim", "-r", "M", "-i", "P", "-o", "x.txt", "--overwrite"],
]


@pytest.mark.parametrize("args", COMMAND_LINES)
def test_the_plain_command_line_is_typers(args, files, tmp_path, monkeypatch, capsys) -> None:
    """``ariasim fastsim ...`` parsed by hand (the plain command line), by typer on the
    tree of fastsim alone, and by typer on the whole tree: the same exit status, the same
    output and messages, the same file."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    names = {"M": files["model"], "P": files["particles"]}
    seen = []
    for how in ("plain", "solo", "whole"):
        out = tmp_path / how / "o.parquet"
        out.parent.mkdir()
        real = [str(names.get(a, a)) for a in args]
        real = [str(out) if a == "O" else a for a in real]
        code, stdout, stderr = _main(real, how, monkeypatch, capsys)
        written = out.read_bytes() if out.exists() else None
        seen.append((code, stdout.replace(str(out), "OUT"), stderr, written))
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][1] or seen[0][2]


@pytest.mark.parametrize("args", [a for a in COMMAND_LINES if "M" in a])
def test_the_plain_command_line_passes_typers_values(args, files, monkeypatch, capsys) -> None:
    """Where the command line is parsed by hand, the command body gets exactly the values
    typer gives it."""
    import ariasim.cli.plain as plain

    real = [str({"M": files["model"], "P": files["particles"]}.get(a, a)) for a in args]
    if plain.plain_fastsim(real) is None:
        return
    got = []

    def body(**kwargs):  # type: ignore[no-untyped-def]
        got.append({k: v for k, v in kwargs.items() if k not in ("echo", "progress")})
        raise KeyboardInterrupt

    monkeypatch.setattr(plain, "fastsim_body", body)
    for how in ("plain", "solo"):
        assert _main(real, how, monkeypatch, capsys)[0] == 130
    assert got[0] == got[1]
    assert all(type(got[0][k]) is type(got[1][k]) for k in got[0])


def test_the_plain_command_imports_no_typer(files, tmp_path) -> None:
    code = f"""
import sys
from ariasim.cli import main
try:
    main(["fastsim", "-r", {str(files["model"])!r}, "-i", {str(files["particles"])!r},
          "-o", {str(tmp_path / "out.parquet")!r}])
except SystemExit as exc:
    assert not exc.code, exc.code
print(sorted({{"typer", "rich", "pydantic", "click"}} & set(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
