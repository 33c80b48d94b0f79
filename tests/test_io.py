"""Tests of ariasim.io: round trips, provenance, atomic writes and input errors."""

from __future__ import annotations

import os

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from ariasim import __version__
from ariasim.errors import ConfigError, InputError, OutputError
from ariasim.io import (
    from_awkward,
    read_provenance,
    read_table,
    to_awkward,
    validate_table,
    write_table,
)
from ariasim.utils import atomic_path


@pytest.fixture
def hits() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 500
    return pd.DataFrame(
        {
            "event_id": np.sort(rng.integers(0, 40, n)),
            "module_id": rng.integers(0, 60, n),
            "time_ns": rng.exponential(100.0, n),
            "wavelength_nm": rng.uniform(300, 600, n),
            "weight": np.ones(n),
        }
    )


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".csv", ".root"])
def test_round_trip_with_provenance(tmp_path, hits, suffix):
    path = tmp_path / f"hits{suffix}"
    config = {"medium": "bulk-ice", "distance_m": 50.0, "nested": {"g": np.float64(0.9)}}
    out = write_table(hits, path, producer="test.producer", config=config, seed=42)
    assert out == path and path.exists()
    back = read_table(path)
    pd.testing.assert_frame_equal(back, hits, check_dtype=False)
    assert np.array_equal(back["event_id"].to_numpy(), hits["event_id"].to_numpy())
    prov = read_provenance(path)
    assert prov["producer"] == "test.producer"
    assert prov["ariasim_version"] == __version__
    assert prov["seed"] == 42
    assert prov["config"] == {"medium": "bulk-ice", "distance_m": 50.0, "nested": {"g": 0.9}}
    assert "created_utc" in prov
    # no temporary files left beside the output
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_dict_of_arrays_is_a_table(tmp_path):
    path = write_table(
        {"a": np.arange(5), "b": np.linspace(0, 1, 5)}, tmp_path / "t.parquet", producer="p"
    )
    df = read_table(path, columns=["b"])
    assert list(df.columns) == ["b"]
    assert np.allclose(df["b"], np.linspace(0, 1, 5))


def test_dict_with_unequal_lengths_rejected(tmp_path):
    with pytest.raises(InputError, match="different lengths"):
        write_table({"a": np.arange(5), "b": np.arange(4)}, tmp_path / "t.parquet", producer="p")
    assert not list(tmp_path.iterdir())


def test_write_is_atomic_on_failure(tmp_path, hits):
    path = tmp_path / "hits.parquet"
    write_table(hits, path, producer="first")
    before = path.read_bytes()
    bad = hits.assign(obj=[object()] * len(hits))  # pyarrow cannot convert arbitrary objects
    with pytest.raises(Exception):  # noqa: B017 - any failure must leave the old file intact
        write_table(bad, path, producer="second")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["hits.parquet"]


def test_written_files_get_default_permissions(tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        path = write_table({"a": [1.0]}, tmp_path / "t.parquet", producer="p")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_path_cleans_up(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert not list(tmp_path.iterdir())


def test_unwritable_output_names_the_path(tmp_path, hits):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="not_a_folder"):
        write_table(hits, blocker / "sub" / "hits.parquet", producer="p")
    from ariasim.apps.photons.demo import run_demo

    with pytest.raises(OutputError, match="not_a_folder"):
        run_demo(blocker / "demo")
    assert blocker.read_text() == "a file where a folder should be"


def test_root_string_column_rejected_without_output(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0], "name": ["x", "y"]})
    with pytest.raises(InputError, match="column 'name'"):
        write_table(df, tmp_path / "t.root", producer="p")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.parquet.*file not found"):
        read_table(tmp_path / "nothere.parquet")


def test_unknown_format(tmp_path):
    p = tmp_path / "table.xlsx"
    p.write_text("x")
    with pytest.raises(InputError, match=r"table\.xlsx.*unknown table format '\.xlsx'"):
        read_table(p)
    with pytest.raises(InputError, match="unknown table format"):
        write_table({"a": [1]}, tmp_path / "out.txt", producer="p")


def test_corrupt_file_named(tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"this is not parquet")
    with pytest.raises(InputError, match=r"broken\.parquet.*cannot read as parquet"):
        read_table(p)


def test_missing_required_column(tmp_path, hits):
    p = write_table(hits.drop(columns="time_ns"), tmp_path / "h.parquet", producer="p")
    with pytest.raises(InputError, match=r"h\.parquet.*column 'time_ns'.*required column missing"):
        read_table(p, required=["event_id", "time_ns"])
    with pytest.raises(InputError, match="column 'time_ns'"):
        read_table(p, columns=["time_ns"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(tmp_path, hits, bad):
    hits.loc[7, "time_ns"] = bad
    p = write_table(hits, tmp_path / "h.csv", producer="p")
    with pytest.raises(InputError, match=r"h\.csv.*column 'time_ns'.*non-finite.*row 7"):
        read_table(p, finite=["time_ns"])
    # without the finiteness requirement the table reads fine
    assert len(read_table(p)) == len(hits)


def test_wrong_dtype(tmp_path, hits):
    hits["module_id"] = hits["module_id"].astype(str) + "x"
    p = write_table(hits, tmp_path / "h.parquet", producer="p")
    with pytest.raises(InputError, match=r"column 'module_id'.*expected an integer"):
        read_table(p, dtypes={"module_id": "int"})
    with pytest.raises(InputError, match=r"column 'time_ns'.*expected an integer"):
        read_table(p, dtypes={"time_ns": "int"})
    with pytest.raises(InputError, match=r"column 'module_id'.*expected a number"):
        read_table(p, finite=["module_id"])
    assert len(read_table(p, dtypes={"time_ns": "float", "module_id": "str"})) == len(hits)


def test_bool_is_not_a_number():
    df = pd.DataFrame({"flag": [True, False]})
    with pytest.raises(InputError, match="column 'flag'"):
        validate_table(df, dtypes={"flag": "float"})
    validate_table(df, dtypes={"flag": "bool"})
    with pytest.raises(ConfigError, match="dtypes"):
        validate_table(df, dtypes={"flag": "complex"})


# ----------------------------------------------------------------------------- ROOT / ragged


def test_root_jagged_tree_is_flattened(tmp_path):
    """A ROOT file from a user's own simulator: one entry per event, hits as lists."""
    p = tmp_path / "user.root"
    times = ak.Array([[1.0, 2.0, 3.0], [], [4.5]])
    modules = ak.Array([[10, 11, 12], [], [3]])
    with uproot.recreate(p) as fh:
        fh.mktree("hits", {"energy": np.float64, "hit": ak.zip({"t": times, "dom": modules}).type})
        fh["hits"].extend(
            {"energy": np.array([1.0, 2.0, 3.0]), "hit": ak.zip({"t": times, "dom": modules})}
        )
    df = read_table(p)
    assert list(df["event_id"]) == [0, 0, 0, 2]
    assert list(df["hit_index"]) == [0, 1, 2, 0]
    assert np.allclose(df["energy"], [1.0, 1.0, 1.0, 3.0])
    assert np.allclose(df["hit_t"], [1.0, 2.0, 3.0, 4.5])
    assert read_provenance(p) == {}


def test_root_tree_selection(tmp_path):
    p = tmp_path / "two.root"
    with uproot.recreate(p) as fh:
        fh["a"] = {"x": np.arange(3.0)}
        fh["b"] = {"y": np.arange(4.0)}
    with pytest.raises(InputError, match="several trees"):
        read_table(p)
    assert len(read_table(p, tree="b")) == 4
    with pytest.raises(InputError, match="no tree named 'c'"):
        read_table(p, tree="c")


def test_awkward_round_trip(hits):
    arr = to_awkward(hits)
    assert len(arr) == hits["event_id"].max() + 1
    counts = np.bincount(hits["event_id"], minlength=len(arr))
    assert np.array_equal(ak.to_numpy(ak.num(arr, axis=1)), counts)
    back = from_awkward(arr).drop(columns="hit_index")
    pd.testing.assert_frame_equal(
        back[hits.columns].reset_index(drop=True), hits.reset_index(drop=True), check_dtype=False
    )


def test_to_awkward_bad_event_ids(hits):
    with pytest.raises(InputError, match="column 'event_id'"):
        to_awkward(hits.drop(columns="event_id"))
    with pytest.raises(ConfigError, match="n_events"):
        to_awkward(hits, n_events=3)
