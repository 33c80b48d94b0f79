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
    # same seed, same bytes: summary and model files (timings and the report's stamp aside)
    again = tmp_path / "det2"
    with pytest.raises(SystemExit):
        main(["shift", "demo", "detector", "--n", "200", "--epochs", "3", "--out", str(again)])
    for rel in ("summary.json", "model/model.json", "model/weights.safetensors"):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_application_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="application"):
        run_application("nope", tmp_path / "x")
    with pytest.raises(ConfigError, match="'n'"):
        run_application("detector", tmp_path / "x", n=10)
    with pytest.raises(ConfigError, match="method"):
        run_application("active-bias", tmp_path / "x", method="flow")
    assert not (tmp_path / "x").exists()
    assert set(APPLICATIONS) == {"ice", "detector", "fastsim", "photon-surrogate", "active-bias"}
