"""Calibration (MCBench-style), compare() and the ``ariasim compare`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from ariasim.cli.compare import compare_command
from ariasim.errors import ConfigError, InputError
from ariasim.metrics import METRICS, calibrate, compare, ks_test, wasserstein_1d


def _normal(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=n)


# ----------------------------------------------------------------------------- calibrate


def test_calibrate_null_is_noise():
    """Identical distributions: z is consistent with noise, the p-value is not small."""
    rng = np.random.default_rng(1)
    sample = rng.normal(size=2000)
    for metric in (wasserstein_1d, ks_test):
        c = calibrate(metric, _normal, 2000, sample=sample, n_repeats=60, seed=2)
        assert abs(c.z) < 5
        assert c.p_value > 1e-3
        assert c.null.shape == (60,)
        assert c.null_std > 0


def test_calibrate_null_p_values_roughly_uniform():
    """Over many null experiments the empirical p-value is uniform on {1..R+1}/(R+1):
    the fraction below 0.2 is binomial within 5 sigma."""
    rng = np.random.default_rng(3)
    reps, r = 40, 19
    ps = np.array(
        [
            calibrate(
                wasserstein_1d, _normal, 300, sample=rng.normal(size=300), n_repeats=r, seed=rng
            ).p_value
            for _ in range(reps)
        ]
    )
    q = 4 / 20  # P(p <= 4/20) = 4/20 exactly under the null
    assert abs(np.mean(ps <= q + 1e-12) - q) < 5 * np.sqrt(q * (1 - q) / reps)


def test_calibrate_detects_shift_and_plus_one_correction():
    rng = np.random.default_rng(4)
    n = 20_000
    c = calibrate(wasserstein_1d, _normal, n, sample=rng.normal(0.1, 1, n), n_repeats=20, seed=5)
    assert c.z > 5
    assert c.p_value == pytest.approx(1 / 21)  # nothing in the null is as large: (0 + 1)/(20 + 1)


def test_calibrate_from_reference_sample_and_value():
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    c = calibrate(wasserstein_1d, ref, (1000, 2000), value=0.5, n_repeats=30, seed=7)
    assert c.n == (1000, 2000)
    assert c.z > 5 and c.p_value == pytest.approx(1 / 31)
    with pytest.raises(ConfigError, match="'n'"):
        calibrate(wasserstein_1d, ref, (30_000, 30_000), value=0.1, n_repeats=5)


def test_calibrate_weighted_reference_and_two_sided():
    rng = np.random.default_rng(8)
    x = rng.normal(size=20_000)
    w = rng.uniform(0.5, 1.5, size=20_000)

    def mean_diff(a, b, weights_a=None, weights_b=None):
        return np.average(a, weights=weights_a) - np.average(b, weights=weights_b)

    c = calibrate(
        mean_diff,
        x,
        500,
        value=0.0,
        reference_weights=w,
        n_repeats=50,
        alternative="two-sided",
        seed=9,
    )
    assert abs(c.z) < 5 and c.p_value > 0.5  # 0 is the centre of the null


def test_calibrate_sampler_with_weights():
    def sampler(n, rng):
        return rng.normal(size=n), rng.uniform(0.5, 1.5, n)

    c = calibrate(ks_test, sampler, 500, value=0.5, n_repeats=10, seed=1)
    assert np.all(np.isfinite(c.null)) and c.z > 5


# ----------------------------------------------------------------------------- compare


@pytest.fixture
def tables():
    rng = np.random.default_rng(10)
    n = 3000
    a = pd.DataFrame(
        {
            "e": rng.normal(size=n),
            "t": rng.exponential(size=n),
            "label": ["x"] * n,
            "w": rng.uniform(0.5, 1.5, n),
        }
    )
    b = pd.DataFrame({"t": rng.exponential(size=n), "e": rng.normal(size=n), "extra": np.ones(n)})
    return a, b


def test_compare_tidy_table(tables):
    a, b = tables
    df = compare(a, b, weights_a="w", seed=1)
    assert list(df.columns) == [
        "metric",
        "feature",
        "value",
        "uncertainty",
        "p_value",
        "z",
        "p_calibrated",
        "null_mean",
        "null_std",
        "ndf",
        "n_a",
        "n_b",
    ]
    # default features: the numeric columns common to both, minus the weight column
    assert set(df["feature"]) == {"e", "t", "all"}
    assert set(df["metric"]) == set(METRICS)
    assert len(df) == 2 * 9 + 4
    assert df["z"].isna().all()
    assert df.loc[df.metric == "mmd", "n_a"].item() == 3000
    # same distributions: no analytic p-value is tiny
    assert (df["p_value"].dropna() > 1e-4).all()


def test_compare_matches_individual_metrics(tables):
    a, b = tables
    df = compare(a, b, columns=["e"], metrics=["ks", "wasserstein"])
    assert df.loc[df.metric == "ks", "value"].item() == ks_test(a["e"], b["e"]).value
    assert (
        df.loc[df.metric == "wasserstein", "value"].item() == wasserstein_1d(a["e"], b["e"]).value
    )


def test_compare_calibrated_null_and_shift():
    rng = np.random.default_rng(11)
    n = 2000
    a = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    b = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    metrics = [
        "moments",
        "wasserstein",
        "ks",
        "chi2",
        "separation_power",
        "sliced_wasserstein",
        "mmd",
        "energy",
    ]
    null = compare(a, b, metrics=metrics, calibrate=True, n_repeats=20, max_samples=500, seed=2)
    assert null["z"].notna().all()
    assert (null["z"].abs() < 5).all()
    b_shift = b.assign(x=b["x"] + 0.5)
    shifted = compare(
        a, b_shift, metrics=["ks", "mmd"], calibrate=True, n_repeats=20, max_samples=500, seed=2
    )
    assert (shifted.loc[shifted.feature != "y", "z"] > 5).all()


def test_compare_calibrate_weighted_and_classifier():
    rng = np.random.default_rng(12)
    n = 1500
    a, b = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    df = compare(
        a,
        b,
        weights_a=rng.uniform(0.5, 1.5, n),
        metrics=["ks", "classifier"],
        calibrate=True,
        n_repeats=10,
        seed=3,
    )
    assert set(df["feature"]) == {"x0", "x1", "all"}
    clf = df[df.metric == "classifier"].iloc[0]
    assert clf["null_mean"] == 0.5 and abs(clf["z"]) < 5
    assert (df["z"].abs() < 5).all()


def test_compare_with_reference_sample():
    rng = np.random.default_rng(13)
    ref = pd.DataFrame({"x": rng.normal(size=20_000)})
    a = pd.DataFrame({"x": rng.normal(size=500)})
    b = pd.DataFrame({"x": rng.normal(size=500)})
    df = compare(a, b, metrics=["ks"], calibrate=True, reference=ref, n_repeats=20, seed=1)
    assert abs(df["z"].item()) < 5


def test_compare_input_errors(tables):
    a, b = tables
    with pytest.raises(InputError, match="'nope'"):
        compare(a, b, columns=["e", "nope"])
    bad = a.copy()
    bad.loc[5, "e"] = np.nan
    with pytest.raises(InputError, match="'e'"):
        compare(bad, b, metrics=["ks"])
    w = np.ones(len(a))
    w[0] = -1.0
    with pytest.raises(ConfigError, match="weights_a"):
        compare(a, b, weights_a=w, metrics=["ks"])
    with pytest.raises(ConfigError, match="metrics"):
        compare(a, b, metrics=["bogus"])
    with pytest.raises(InputError, match="features"):
        compare(np.zeros((10, 2)), np.zeros((10, 3)))


def test_compare_large_table_is_bounded():
    """O(n^2) metrics are capped: 200k rows finish quickly and use max_samples rows."""
    rng = np.random.default_rng(14)
    n = 200_000
    a, b = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    df = compare(a, b, metrics=["mmd", "energy", "ks"], max_samples=1000, seed=1)
    assert (df.loc[df.metric.isin(["mmd", "energy"]), "n_a"] == 1000).all()
    assert (df.loc[df.metric == "ks", "n_a"] == n).all()


# ----------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("compare")(compare_command)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "compare" a sub-command
        pass

    return app


def test_cli_compare_prints_and_writes_json(tmp_path, tables):
    a, b = tables
    pa, pb = tmp_path / "a.csv", tmp_path / "b.parquet"
    a.drop(columns="label").to_csv(pa, index=False)
    b.to_parquet(pb)
    out = tmp_path / "sub" / "res.json"
    result = CliRunner().invoke(
        _app(),
        [
            "compare",
            str(pa),
            str(pb),
            "--columns",
            "e,t",
            "--weight-column-a",
            "w",
            "--metrics",
            "ks,chi2,mmd",
            "--calibrate",
            "--n-repeats",
            "5",
            "--seed",
            "3",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ks" in result.output and "mmd" in result.output
    doc = json.loads(out.read_text())
    assert doc["weight_column_a"] == "w" and doc["calibrate"] is True
    rows = doc["results"]
    assert {r["metric"] for r in rows} == {"ks", "chi2", "mmd"}
    assert all(r["z"] is not None for r in rows)
    assert not list((tmp_path / "sub").glob(".*.tmp"))  # atomic write left no temporary file


def test_cli_missing_column_names_file_and_column(tmp_path, tables):
    a, b = tables
    pa, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    a.to_csv(pa, index=False)
    b.to_csv(pb, index=False)
    result = CliRunner().invoke(_app(), ["compare", str(pa), str(pb), "--columns", "e,label2"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert "a.csv" in str(result.exception) and "label2" in str(result.exception)
    result = CliRunner().invoke(_app(), ["compare", str(pa), str(pb), "--weight-column", "w"])
    assert isinstance(result.exception, InputError)
    assert "b.csv" in str(result.exception) and "'w'" in str(result.exception)


def test_main_cli_registers_compare(tmp_path, tables):
    cli = pytest.importorskip("ariasim.cli")
    a, b = tables
    pa, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    a.to_csv(pa, index=False)
    b.to_csv(pb, index=False)
    result = CliRunner().invoke(cli.app, ["compare", str(pa), str(pb), "--metrics", "moments"])
    assert result.exit_code == 0, result.output
    assert "mean_diff" in result.output


def test_compare_mixed_inputs_and_constant_feature():
    rng = np.random.default_rng(15)
    a = pd.DataFrame({"x": rng.normal(size=200), "c": np.ones(200)})
    b = np.column_stack([rng.normal(size=150), np.ones(150)])
    df = compare(a, b, metrics=["moments", "ks", "chi2"])
    assert set(df["feature"]) == {"x", "c"}  # names from the table, matched by position
    const = df[df.feature == "c"].set_index("metric")
    assert const.loc["mean_diff", "value"] == 0.0 and const.loc["mean_diff", "p_value"] == 1.0
    assert const.loc["ks", "value"] == 0.0
    with pytest.raises(ConfigError, match="n_repeats"):
        calibrate(ks_test, _normal, 10, value=0.1, n_repeats=1)


# ------------------------------------------------------------- ariasim's own collider tables


@pytest.fixture(scope="module")
def collider_tables(tmp_path_factory):
    """Two small collider tables of the same gun and detector, different seeds."""
    from ariasim.simulators.collider.run import run_collider

    folder = tmp_path_factory.mktemp("collider")
    paths = []
    for seed in (1, 2):
        out = folder / f"s{seed}.parquet"
        run_collider(
            out=out,
            species=["e-", "pi+", "gamma", "n"],
            n=300,
            pt_max_gev=10.0,
            seed=seed,
            progress=False,
        )
        paths.append(out)
    return paths


def test_compare_collider_tables_found_objects_and_efficiency(collider_tables, tmp_path):
    """The default columns of two collider tables: NaN (not found) and inf (no ECAL
    energy) mean "no value"; distributions use the rows with values, and the efficiency
    difference is reported separately with its binomial error."""
    from ariasim.metrics.compare import compare_files

    pa, pb = collider_tables
    da, db = pd.read_parquet(pa), pd.read_parquet(pb)
    table, cols = compare_files(pa, pb, metrics=["ks", "mean_diff"], seed=1)
    assert "reco_pt_gev" in cols and "track_pt_gev" in cols
    eff = table[table.metric == "efficiency"].set_index("feature")
    partial = [c for c in cols if not (np.isfinite(da[c]).all() and np.isfinite(db[c]).all())]
    assert set(eff.index) == set(partial) and "reco_pt_gev" in partial
    for c in ("reco_pt_gev", "track_pt_gev", "hcal_over_ecal"):
        ea, eb = np.isfinite(da[c]).mean(), np.isfinite(db[c]).mean()
        row = eff.loc[c]
        assert row["value"] == pytest.approx(ea - eb)
        assert row["uncertainty"] == pytest.approx(
            np.sqrt(ea * (1 - ea) / len(da) + eb * (1 - eb) / len(db))
        )
        assert row["n_a"] == len(da) and row["n_b"] == len(db)
        ks = table[(table.metric == "ks") & (table.feature == c)].iloc[0]
        assert ks["n_a"] == np.isfinite(da[c]).sum() and ks["n_b"] == np.isfinite(db[c]).sum()
    # same configuration, different seeds: no efficiency differs by 5 sigma
    z = eff["value"] / eff["uncertainty"].where(eff["uncertainty"] > 0)
    assert (z.abs().fillna(0) < 5).all()
    # a real efficiency difference (30 % of B's particles lost) is seen
    lost = db.copy()
    drop = np.random.default_rng(3).random(len(lost)) < 0.3
    lost.loc[drop, ["reco_pt_gev", "reco_eta"]] = np.nan
    lost.to_parquet(tmp_path / "lost.parquet")
    t2, _ = compare_files(
        pa, tmp_path / "lost.parquet", columns=["reco_pt_gev", "reco_eta"], metrics=["ks"]
    )
    row = t2[(t2.metric == "efficiency") & (t2.feature == "reco_pt_gev")].iloc[0]
    assert row["value"] / row["uncertainty"] > 5 and row["p_value"] < 1e-5


def test_compare_too_few_values_is_a_note(collider_tables, tmp_path):
    from ariasim.metrics.compare import compare_files

    pa, _ = collider_tables
    da = pd.read_parquet(pa)
    b = da.copy()
    b.loc[3:, "reco_e_gev"] = np.nan
    b.to_parquet(tmp_path / "b.parquet")
    table, _ = compare_files(
        pa,
        tmp_path / "b.parquet",
        columns=["reco_e_gev", "truth_pt_gev"],
        metrics=["ks", "mmd"],
        json_out=tmp_path / "r.json",
    )
    notes = table.attrs["notes"]
    assert any("reco_e_gev" in n for n in notes) and any("multivariate" in n for n in notes)
    assert set(table.loc[table.feature == "reco_e_gev", "metric"]) == {"efficiency"}
    assert json.loads((tmp_path / "r.json").read_text())["notes"] == notes


def test_cli_compare_collider_tables_default_columns(collider_tables, tmp_path):
    from ariasim.cli import main

    pa, pb = collider_tables
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as ok:
        main(["compare", str(pa), str(pb), "--metrics", "ks,mmd", "--json", str(out)])
    assert ok.value.code in (0, None)
    rows = json.loads(out.read_text())["results"]
    assert {r["metric"] for r in rows} == {"efficiency", "ks", "mmd"}
    # an existing --json needs --overwrite
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(pa), str(pb), "--metrics", "ks", "--json", str(out)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as ok:
        main(["compare", str(pa), str(pb), "--metrics", "ks", "--json", str(out), "--overwrite"])
    assert ok.value.code in (0, None)
    assert {r["metric"] for r in json.loads(out.read_text())["results"]} == {"efficiency", "ks"}


def test_efficiency_difference_weighted_and_edge_cases():
    from ariasim.metrics.compare import efficiency_difference

    found = np.r_[np.ones(60), np.zeros(40)] > 0
    # weights 2 on the found rows: efficiency 120 / 160 = 0.75, Kish n = 160^2 / 280
    w = np.where(found, 2.0, 1.0)
    r = efficiency_difference(found, found, w, None)
    assert r.details["efficiency_a"] == pytest.approx(0.75) and r.value == pytest.approx(0.15)
    n_eff = 160**2 / 280
    assert r.uncertainty == pytest.approx(np.sqrt(0.75 * 0.25 / n_eff + 0.6 * 0.4 / 100))
    same = efficiency_difference(np.ones(10) > 0, np.ones(20) > 0)
    assert same.value == 0 and same.uncertainty == 0 and same.p_value == 1.0
    # the two-proportion test has a roughly uniform p-value under the null
    rng = np.random.default_rng(4)
    p = [
        efficiency_difference(rng.random(400) < 0.7, rng.random(300) < 0.7).p_value
        for _ in range(400)
    ]
    assert 0.03 < np.mean(np.array(p) < 0.1) < 0.17  # 0.1 +- 5 sigma (sigma = 0.015)


def test_compare_found_rows_with_weights_and_max_rows(tmp_path):
    from ariasim.metrics.compare import compare_files

    rng = np.random.default_rng(5)
    n = 400
    a = pd.DataFrame({"x": rng.normal(size=n), "w": rng.uniform(0.5, 1.5, n)})
    b = pd.DataFrame({"x": rng.normal(size=n), "w": rng.uniform(0.5, 1.5, n)})
    a.loc[:99, "x"] = np.nan
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    table, cols = compare_files(
        tmp_path / "a.parquet",
        tmp_path / "b.parquet",
        weight_column_a="w",
        weight_column_b="w",
        metrics=["ks"],
        max_rows=50,
    )
    assert cols == ["x"]
    eff = table[table.metric == "efficiency"].iloc[0]
    wa = a["w"].to_numpy()
    assert eff["value"] == pytest.approx(wa[100:].sum() / wa.sum() - 1.0)
    ks = table[table.metric == "ks"].iloc[0]
    assert ks["n_a"] == 50 and ks["n_b"] == 50
    with pytest.raises(ConfigError, match="max_rows"):
        compare_files(tmp_path / "a.parquet", tmp_path / "b.parquet", max_rows=0)
