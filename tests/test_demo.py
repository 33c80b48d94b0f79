"""End-to-end test of ``ariasim demo`` (small sizes) and of its report in a real browser."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pytest

from ariasim.apps.photons.demo import DemoConfig, run_demo
from ariasim.apps.photons.surrogate import PhotonSurrogate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = dataclasses.replace(DemoConfig.quick(), max_time_yield=4.0, max_time_density=2.0,
                              max_time_media_yield=4.0, max_time_media_density=2.0)
    metrics = run_demo(out, config=cfg)
    return out, metrics


def test_demo_outputs(demo_dir):
    out, metrics = demo_dir
    assert {p.name for p in out.iterdir()} >= {"report.html", "metrics.json",
                                               "photon_surrogate_bulk_ice.json",
                                               "photon_surrogate_media.json"}
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["validation"]["held_out_distances_m"] == metrics["validation"][
        "held_out_distances_m"]
    for key in ("tabulation", "direct_check", "fit", "validation", "media", "speed"):
        assert key in on_disk
    sur = PhotonSurrogate.load(out / "photon_surrogate_bulk_ice.json")
    assert np.all(sur.expected_hits(np.array([10.0, 100.0]), 1e6, cos_theta=0.0) > 0)
    # the table agrees with direct module hits within 5 sigma
    assert all(abs(c["pull"]) < 5 for c in on_disk["direct_check"])
    # even with a few seconds of fitting the surrogate beats the literature Pandel function
    per = on_disk["validation"]["per_distance"]
    assert all(r["ks_surrogate"] < r["ks_pandel_lit"] for r in per)
    assert on_disk["speed"]["speedup"] > 1


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_in_headless_chromium(demo_dir, tmp_path):
    """The report loads in a real browser, shows its figures and logs no console errors."""
    out, _ = demo_dir
    url = (out / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, "--enable-logging=stderr", "--v=0", "--window-size=1200,5000",
                          f"--screenshot={shot}", url], capture_output=True, text=True,
                         timeout=120)
    console = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    assert shot.exists() and shot.stat().st_size > 50_000
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count('src="data:image/png;base64,') >= 6  # figures and rendered formulas
    assert "Arrival-delay distributions" in dom and "<table>" in dom
