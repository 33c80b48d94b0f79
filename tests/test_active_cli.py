"""``ariasim active run`` and ``ariasim active evaluate`` on a user-defined pipeline of plain
functions (``examples/active_toy.py``, whose true final-level rate is known analytically)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ariasim.cli import main

TOY = Path(__file__).resolve().parents[1] / "examples" / "active_toy.py"


def _toy_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("active_toy_for_tests", TOY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code in (0, None), argv


def test_run_writes_weighted_events_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "active",
        "run",
        "--pipeline",
        f"{TOY}:make_pipeline",
        "--out",
        str(out),
        "--chunk-size",
        "2000",
        "--seed",
        "2",
    ]
    _run([*args, "--chunks", "6"])
    first = pd.read_parquet(out / "final.parquet")
    s = json.loads((out / "summary.json").read_text())
    assert s["n_generated"] == 12000 and s["n_final"] == len(first)
    assert {"event_id", "weight", "w_active", "gen_weight"} <= set(first.columns)
    # the controlled round (chunks 4, 5) gives weights > 1 to events it kept with a < 1
    assert first["w_active"].max() > 1.0
    # asking for more chunks continues the same run: the first six are not redone
    _run([*args, "--chunks", "10"])
    more = pd.read_parquet(out / "final.parquet")
    assert json.loads((out / "summary.json").read_text())["n_generated"] == 20000
    pd.testing.assert_frame_equal(more.iloc[: len(first)].reset_index(drop=True), first)


def test_evaluate_quick_on_a_user_pipeline(tmp_path: Path) -> None:
    """Both arms, coverage seeds and the report; the controlled arm is more efficient and its
    final-level histograms agree with brute force within the statistics."""
    js, rep = tmp_path / "summary.json", tmp_path / "report.html"
    _run(
        [
            "active",
            "evaluate",
            "--pipeline",
            f"{TOY}:make_pipeline",
            "--out",
            str(tmp_path / "ev"),
            "--quick",
            "--chunk-size",
            "2000",
            "--coverage-seeds",
            "6",
            "--json",
            str(js),
            "--report",
            str(rep),
        ]
    )
    s = json.loads(js.read_text())
    for key in ("gain", "chi2_ndf", "max_abs_pull", "coverage_68", "cpu_s", "n_eff"):
        assert key in s, key
    assert set(s["cpu_s"]) == {"brute", "controlled"} == set(s["n_eff"])
    # the expensive stage costs 10 ms per event and the selection keeps ~0.4 %: skipping
    # it for most events must pay even with LightGBM's training counted
    assert s["gain"] > 1.2
    # chi2 of ~37 bins: p-value well above 1e-4
    assert s["chi2_ndf"] < 2.2
    # the brute-force arm's rate agrees with the analytic truth within 4 sigma
    truth = _toy_module().TRUE_RATE
    b = s["arms"]["brute"]
    assert abs(b["rate"] - truth) < 4 * b["rate_err"]
    html = rep.read_text()
    assert "Active simulation control" in html and html.count("<img") >= 4


def test_evaluate_scan_and_threshold_mode(tmp_path: Path) -> None:
    """The scan over the controller's settings and the biased threshold mode are run with
    the brute-force arm's budget and land in the summary and the report."""
    from ariasim.active.engine import ActiveConfig
    from ariasim.apps.active import evaluate_active, resolve_pipeline, write_evaluation

    pipe = resolve_pipeline(f"{TOY}:make_pipeline")
    cfg = ActiveConfig(chunk_size=1500, warmup_chunks=2, chunks_per_round=2)
    ev = evaluate_active(
        pipe,
        tmp_path / "ev",
        brute_chunks=6,
        config=cfg,
        seed=1,
        scan={"aggressiveness": [2.0], "max_train": [1000]},
        threshold_check=0.01,
    )
    s = ev.summary
    assert [(r["parameter"], r["value"]) for r in s["scan"]] == [
        ("aggressiveness", 2.0),
        ("max_train", 1000),
    ]
    thr = s["threshold_mode"]
    assert thr["threshold"] == 0.01 and thr["rate"] > 0 and np.isfinite(thr["rate_pull"])
    assert s["gain_16"] <= s["gain"] * 1.5 and s["gain_84"] >= s["gain"] / 1.5
    write_evaluation(ev, pipe, json_path=tmp_path / "s.json", report_path=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "Threshold mode (biased)" in html and "versus the controller" in html


def test_run_names_the_bright_muon_selection(tmp_path: Path) -> None:
    out = tmp_path / "bright"
    _run(
        [
            "active",
            "run",
            "--pipeline",
            "muon-bright",
            "--size",
            "ci",
            "--mode",
            "brute",
            "--chunks",
            "1",
            "--chunk-size",
            "4000",
            "--out",
            str(out),
        ]
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["pipeline"] == "muon-bright-ci" and s["n_generated"] == 4000
    final = pd.read_parquet(out / "final.parquet")
    # the bright cut of the CI size: >= 20 hits on >= 5 modules, any direction
    assert (final["log10_charge"] >= np.log10(20.0) - 1e-12).all()
    assert (final["n_channels"] >= 5).all()
