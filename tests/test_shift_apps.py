"""The domain-shift applications end to end at tiny sizes (the figures are in benchmarks/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ariasim.apps.shift.applications import APPLICATIONS, run_application, split_rows
from ariasim.errors import ConfigError


def test_split_rows_keeps_events_together():
    groups = np.repeat(np.arange(50), 3)
    a, b = split_rows(len(groups), 60, 1, groups)
    assert set(groups[a]).isdisjoint(groups[b])
    assert len(a) + len(b) == 150 and len(a) <= 60


def test_demo_detector_writes_model_report_and_summary(tmp_path: Path):
    from ariasim.cli import main

    out = tmp_path / "det"
    with pytest.raises(SystemExit) as exc:
        main(["shift", "demo", "detector", "--n", "200", "--epochs", "3", "--out", str(out)])
    assert exc.value.code == 0
    names = {p.name for p in out.iterdir()}
    assert {"model", "report.html", "summary.json", "timings.json"} <= names
    s = json.loads((out / "summary.json").read_text())
    assert s["learner"] == "FlowMorpher" and s["n_train"] == [200, 200]
    # the shift between the nominal and the modified detector is visible before
    assert s["auc_before"]["value"] > 0.5 + 3 * s["auc_null_sigma"]
    t = json.loads((out / "timings.json").read_text())
    assert t["cpu"]["simulation_s"]["target"] > 0 and t["cpu"]["fit_s"] > 0
    html = (out / "report.html").read_text()
    assert "re-simulating" in html and "<img" in html
    assert s["n_train_per_side"] == 200 and s["n_eval"] == [200, 200]
    # same seed, same bytes: summary and model files (timings and the report's stamp aside);
    # an explicit --n-train equal to --n is the default
    again = tmp_path / "det2"
    with pytest.raises(SystemExit):
        args = ["demo", "detector", "--n", "200", "--n-train", "200", "--epochs", "3"]
        main(["shift", *args, "--out", str(again)])
    for rel in ("summary.json", "model/model.json", "model/weights.safetensors"):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_n_train_learns_from_more_rows_than_are_judged(tmp_path: Path):
    """n_train rows per domain to learn from, n to judge on; the CPU figures count the
    simulation of the training target rows."""
    s = run_application(
        "detector", tmp_path / "nt", n=200, n_train=400, method="flow", options={"max_epochs": 3}
    )
    assert s["n_train_per_side"] == 400 and s["n_train"] == [400, 400]
    assert s["n_eval"] == [200, 200] and s["goal"]["auc_max"] == 0.55
    c = s["cpu"]
    # 600 rows per domain simulated, 400 of the target's to learn from
    sim = c["train_target_simulation_s"]
    assert sim == pytest.approx(c["simulation_s"]["target"] * 400 / 600)
    assert c["resimulate_eval_s"] == pytest.approx(sim / 2)
    assert c["correct_eval_with_simulation_s"] == pytest.approx(sim + c["correct_eval_s"])
    assert c["speedup_with_simulation"] < min(c["speedup_with_training"], 0.5)
    # both inf when applying is slower than simulating (CPU figures, not asserted)
    assert c["break_even_events_with_simulation"] >= c["break_even_events"]
    html = (tmp_path / "nt" / "report.html").read_text()
    assert "400 training target rows" in html


def test_application_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(ConfigError, match="application"):
        run_application("nope", tmp_path / "x")
    with pytest.raises(ConfigError, match="'n'"):
        run_application("detector", tmp_path / "x", n=10)
    with pytest.raises(ConfigError, match="method"):
        run_application("active-bias", tmp_path / "x", method="flow")
    for bad in (100, True, 2000.0):
        with pytest.raises(ConfigError, match="'n_train'"):
            run_application("detector", tmp_path / "x", n_train=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"n_train.*control sample"):
        run_application("active-bias", tmp_path / "x", n=200, n_train=400)
    assert not (tmp_path / "x").exists()
    from ariasim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["shift", "demo", "detector", "--n-train", "50", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--n-train" in err and ">= 200" in err and len(err.splitlines()) == 1
    assert set(APPLICATIONS) == {"ice", "detector", "fastsim", "photon-surrogate", "active-bias"}


def test_active_bias_stratified_path(tmp_path: Path, monkeypatch):
    """run_application's stratified path on synthetic samples (the real ones are checked in
    test_shift_colldata.py): a 'threshold' sample lacking x < 0, a control sample covering
    it, and an unbiased target; the combination's rate and shape are the target's."""
    import pandas as pd

    import ariasim.apps.shift.active_bias as ab

    rng = np.random.default_rng(4)

    def frame(x):
        return pd.DataFrame({"x": x, "y": rng.normal(0, 1, len(x))})

    full = rng.normal(0, 1, 4000)
    control = rng.normal(0, 1, 1000)
    fake = ab.ActiveBiasSamples(
        source=frame(full[full >= 0]),
        target=frame(rng.normal(0, 1, 4000)),
        features=["x", "y"],
        context=[],
        cpu_seconds={"source": 1.0, "control": 1.0, "target": 2.0},
        provenance={},
        source_weight=np.ones(int((full >= 0).sum())),
        target_weight=np.ones(4000),
        control=frame(control),
        control_weight=np.ones(1000),
        n_generated={"source": 4000, "control": 1000, "target": 4000},
        control_coverage=(control >= 0).astype(float),
    )
    monkeypatch.setattr(ab, "active_bias_samples", lambda **kw: fake)
    s = run_application("active-bias", tmp_path / "ab", n=200, method="stratified")
    assert s["learner"] == "stratified" and s["n_rows"]["corrected"] == len(fake.source) + int(
        (control < 0).sum()
    )
    # rate 1 (every generated event is final): about 2000 threshold events of weight 1 and
    # 500 control events of weight 4, standard error about 0.018
    assert abs(s["stratified"]["rate"] - 1.0) < 0.07
    assert s["auc_before"]["value"] > 0.6
    # the null sigma is that of equal weights; the Kish ESS is about 1600 of 2500 rows
    assert abs(s["auc_after"]["value"] - 0.5) < 4 * 1.25 * s["auc_null_sigma"]
    assert not (tmp_path / "ab" / "model").exists() and (tmp_path / "ab" / "report.html").exists()
    with pytest.raises(ConfigError, match="no options"):
        run_application(
            "active-bias", tmp_path / "ab2", n=200, method="stratified", options={"a": 1}
        )


def test_application_quantile_options(tmp_path: Path, monkeypatch):
    """An application's own options for the quantile morpher are used unless the caller sets
    them (fastsim: held-out calibration of the CDFs)."""
    import dataclasses

    import ariasim.apps.shift.applications as A

    assert A.APPLICATIONS["fastsim"].quantile_options == {"calibration_fraction": 0.2}
    app = dataclasses.replace(
        A.APPLICATIONS["detector"], quantile_options={"calibration_fraction": 0.2}
    )
    assert A._method_options(app, "quantile+reweight", {"calibration_fraction": 0.0}) == {
        "calibration_fraction": 0.0
    }
    assert A._method_options(app, "flow", {"max_epochs": 3}) == {"max_epochs": 3}
    monkeypatch.setitem(A.APPLICATIONS, "detector", app)
    small = {"n_quantiles": 5, "max_iter": 10}
    s = run_application("detector", tmp_path / "q", n=200, method="quantile", options=small)
    assert s["options"] == {"calibration_fraction": 0.2, **small}


def test_bench_shift_quantile_options_flag(tmp_path: Path, capsys):
    """``bench_shift.py --quantile-options``: a JSON object, or a one-line error naming the
    flag (before any simulation)."""
    from benchload import load_bench

    bench = load_bench("bench_shift")
    assert bench.parse_options('{"min_samples_leaf": 800}', "--quantile-options", None) == {
        "min_samples_leaf": 800
    }
    assert bench.parse_options(None, "--quantile-options", None) == {}
    for bad, why in (("{min_samples_leaf: 800}", "not valid JSON"), ("[800]", "JSON object")):
        with pytest.raises(SystemExit):
            bench.main(["--apps", "fastsim", "--quantile-options", bad, "--out", str(tmp_path)])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "--quantile-options" in err and why in err


def test_bench_shift_n_train_source_flag(tmp_path: Path, capsys):
    """``bench_shift.py --n-train-source``: refused (one line naming the flag and the
    application) for an application without extra source rows, before any simulation."""
    from benchload import load_bench

    bench = load_bench("bench_shift")
    for apps in ("detector", "fastsim,ice", "photon-surrogate,active-bias"):
        with pytest.raises(SystemExit):
            bench.main(["--apps", apps, "--n-train-source", "1000", "--out", str(tmp_path)])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "--n-train-source" in err and apps.split(",")[-1] in err
    assert not any(tmp_path.iterdir())


def test_n_train_source_learns_the_cheap_side_from_more_rows(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
):
    """fastsim: n_train_source source rows to learn from (the extra ones simulated by the
    application's own fast simulation, their CPU counted; by default 10x n_train for the
    quantile methods); other applications refuse it."""
    import dataclasses

    import ariasim.apps.shift.applications as A
    from ariasim.apps.shift.collider import fastsim_samples

    def small(n: int, seed: int):
        return fastsim_samples(n, seed=seed, species="electron", epochs=3, train_rows=500)

    app = dataclasses.replace(A.APPLICATIONS["fastsim"], make=small)
    monkeypatch.setitem(A.APPLICATIONS, "fastsim", app)
    opts = {"n_quantiles": 5, "max_iter": 10}
    s = run_application(
        "fastsim", tmp_path / "f", n=200, n_train_source=1000, method="quantile", options=opts
    )
    assert s["n_train"] == [1000, 200] and s["n_eval"] == [200, 200]
    c = s["cpu"]
    extra = c["simulation_s"]["source_extra"]
    assert extra > 0
    assert c["correct_eval_with_simulation_s"] == pytest.approx(
        c["train_target_simulation_s"] + extra + c["correct_eval_s"]
    )
    html = (tmp_path / "f" / "report.html").read_text()
    assert "from 1000 KAN fast simulation and 200 full simulation rows" in html
    # None: the application's source_factor (fastsim: 10) x n_train for the quantile methods;
    # the extra rows enter the fit
    assert app.source_factor == 10
    d = run_application("fastsim", tmp_path / "d", n=200, method="quantile", options=opts)
    assert d["n_train"] == [2000, 200] and d["cpu"]["simulation_s"]["source_extra"] > 0
    assert "from 2000 KAN fast simulation" in (tmp_path / "d" / "report.html").read_text()
    # n_train_source == n_train: the same rows and bytes as the application without the
    # factor (before the default existed)
    monkeypatch.setitem(A.APPLICATIONS, "fastsim", dataclasses.replace(app, source_factor=1))
    a = run_application("fastsim", tmp_path / "a", n=200, method="quantile", options=opts)
    monkeypatch.setitem(A.APPLICATIONS, "fastsim", app)
    b = run_application(
        "fastsim", tmp_path / "b", n=200, n_train_source=200, method="quantile", options=opts
    )
    assert a["n_train"] == b["n_train"] == [200, 200]
    assert "source_extra" not in b["cpu"]["simulation_s"]
    assert (tmp_path / "a" / "summary.json").read_bytes() == (
        tmp_path / "b" / "summary.json"
    ).read_bytes()
    for name, bad in (("detector", 1000), ("fastsim", 100), ("fastsim", 2.5), ("ice", 1000)):
        with pytest.raises(ConfigError, match="'n_train_source'"):
            run_application(name, tmp_path / "x", n=200, n_train_source=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()
    from ariasim.cli import main

    for args in (
        ("detector", "--n-train-source", "1000"),
        ("fastsim", "--n-train-source", "50"),
        ("fastsim", "--n", "400", "--n-train-source", "300"),  # fewer than --n-train
    ):
        with pytest.raises(SystemExit) as exc:
            main(["shift", "demo", *args, "--out", str(tmp_path / "x")])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "--n-train-source" in err and len(err.splitlines()) == 1


def test_n_train_source_photon_surrogate(tmp_path: Path, monkeypatch):
    """photon-surrogate: the extra source rows come from the samples' own surrogate (fresh
    flashers, not retrained), their CPU counted; n_train_source == n_train is the same run."""
    import dataclasses

    import ariasim.apps.shift.applications as A
    from ariasim.apps.shift.photon_surrogate import photon_surrogate_samples

    tiny = {"n_photons": 5e4, "generations_yield": 5, "generations_density": 3}
    seen: list = []

    def small(n: int, seed: int):
        d = photon_surrogate_samples(n, seed=seed, training=tiny, n_photons=3e5)
        seen.append(d)
        return d

    def extra(data, n_rows: int, seed: int):
        rows = A._photon_surrogate_extra(data, n_rows, seed)
        seen.append(rows)
        return rows

    app = dataclasses.replace(A.APPLICATIONS["photon-surrogate"], make=small, extra_source=extra)
    monkeypatch.setitem(A.APPLICATIONS, "photon-surrogate", app)
    opts = {"n_quantiles": 5, "max_iter": 10}
    s = run_application(
        "photon-surrogate",
        tmp_path / "p",
        n=200,
        n_train_source=1000,
        method="quantile",
        options=opts,
    )
    assert s["n_train"] == [1000, 200] and s["n_eval"] == [200, 200]
    assert s["cpu"]["simulation_s"]["source_extra"] > 0
    data, rows = seen
    assert len(rows) == 800 and list(rows.columns) == data.columns
    # the samples' surrogate and settings (here n_photons 3e5, not the default 1e6), the
    # data seed's 4th child (fresh flashers)
    from ariasim.apps.shift.photon_surrogate import surrogate_source_rows
    from ariasim.utils import spawn_seeds

    child = spawn_seeds(spawn_seeds(0, 4)[0], 4)[3]
    want = surrogate_source_rows(800, data.models["source"], seed=child, n_photons=3e5)
    assert rows.to_numpy().tobytes() == want.to_numpy().tobytes()
    assert not np.isin(rows["distance_m"], data.source["distance_m"]).any()
    a = run_application("photon-surrogate", tmp_path / "a", n=200, method="quantile", options=opts)
    b = run_application(
        "photon-surrogate",
        tmp_path / "b",
        n=200,
        n_train_source=200,
        method="quantile",
        options=opts,
    )
    assert a["n_train"] == b["n_train"] == [200, 200]
    assert (tmp_path / "a" / "summary.json").read_bytes() == (
        tmp_path / "b" / "summary.json"
    ).read_bytes()
