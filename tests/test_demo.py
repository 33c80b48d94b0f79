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
    metrics = run_demo(out, config=DemoConfig.quick())  # an empty folder needs no --overwrite
    return out, metrics


def test_demo_outputs(demo_dir):
    out, metrics = demo_dir
    assert {p.name for p in out.iterdir()} >= {
        "report.html",
        "metrics.json",
        "photon_surrogate_bulk_ice.json",
        "photon_surrogate_media.json",
    }
    on_disk = json.loads((out / "metrics.json").read_text())
    assert (
        on_disk["validation"]["held_out_distances_m"]
        == metrics["validation"]["held_out_distances_m"]
    )
    for key in ("tabulation", "direct_check", "fit", "validation", "media"):
        assert key in on_disk
    sur = PhotonSurrogate.load(out / "photon_surrogate_bulk_ice.json")
    assert np.all(sur.expected_hits(np.array([10.0, 100.0]), 1e6, cos_theta=0.0) > 0)
    # the inverse problem: an interval inside the surrogate's training range, the
    # surrogate's error measured on held-out media in every band and delay bin
    inv = on_disk["media"]["inverse"]
    (la_lo, la_hi), (le_lo, le_hi) = inv["bounds"]
    assert la_lo <= inv["lo_lambda_a_m"] <= inv["lambda_a_m"] <= inv["hi_lambda_a_m"] <= la_hi
    assert le_lo <= inv["lo_lambda_e_m"] <= inv["lambda_e_m"] <= inv["hi_lambda_e_m"] <= le_hi
    assert isinstance(inv["interval_lambda_a_m"], str)
    # which parameter functions won across media, and on what likelihood (issue 15)
    sel = on_disk["media"]["delay_parameter_selection"]
    assert sel["winner"] == on_disk["media"]["delay_parameter_model"]
    assert {"nll_symbolic", "nll_poly"} <= set(sel)
    err = on_disk["media"]["surrogate_error"]
    cfg = DemoConfig.quick()
    assert len(err["media"]) == cfg.media_validation
    assert np.shape(err["bins"]) == (cfg.inverse_error_bands, cfg.inverse_delay_bins)
    assert np.all(np.isfinite(err["bins"])) and np.all(np.asarray(err["count"]) >= 0)
    # the table agrees with direct module hits within 5 sigma
    assert all(abs(c["pull"]) < 5 for c in on_disk["direct_check"])
    # even with a few seconds of fitting the surrogate beats the literature Pandel function
    per = on_disk["validation"]["per_distance"]
    assert all(r["ks_surrogate"] < r["ks_pandel_lit"] for r in per)
    assert json.loads((out / "timings.json").read_text())["speed"]["speedup"] > 1


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_in_headless_chromium(demo_dir, tmp_path):
    """The report loads in a real browser, shows its figures and logs no console errors."""
    out, _ = demo_dir
    url = (out / "report.html").resolve().as_uri()
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [
            *flags,
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,5000",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    assert shot.exists() and shot.stat().st_size > 50_000
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    assert dom.count('src="data:image/png;base64,') >= 6  # figures and rendered formulas
    assert "Arrival-delay distributions" in dom and "<table>" in dom


def _tiny() -> DemoConfig:
    """Smaller than quick: seconds per stage, a few generations per fit."""
    return dataclasses.replace(
        DemoConfig.quick(),
        n_photons=6e4,
        radii_m=(5.0, 30.0, 55.0, 80.0, 105.0, 130.0),
        n_cos_bins=2,
        direct_photons=6e4,
        media_lambda_a_m=(60.0, 150.0),
        media_lambda_e_m=(25.0,),
        media_photons=4e4,
        media_radii_m=(10.0, 40.0, 70.0, 100.0),
        inverse_photons=1e5,
        generations_yield=3,
        generations_density=2,
        generations_media_yield=3,
        generations_media_density=2,
    )


def _reproducible(folder) -> dict[str, bytes]:
    from ariasim.apps.photons.demo import REPRODUCIBLE_FILES

    return {name: (folder / name).read_bytes() for name in REPRODUCIBLE_FILES}


def test_demo_same_seed_same_files_and_resume(tmp_path):
    """Same seed: byte-identical surrogate files and metrics.json (timings.json apart);
    an interrupted demo resumed from its finished stages gives the same files."""
    from ariasim.utils import run_folder

    cfg = _tiny()
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_demo(a, config=cfg)
    assert (a / "timings.json").exists() and "speed" in json.loads((a / "timings.json").read_text())
    run_demo(b, config=cfg)
    assert _reproducible(a) == _reproducible(b)

    def stop(stage: str) -> None:
        if stage == "media":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_demo(c, config=cfg, _after_stage=stop)
    assert not c.exists()  # all or nothing
    assert (run_folder(c) / "fit.done.json").exists()
    redone: list[str] = []
    run_demo(c, config=cfg, resume=True, _after_stage=redone.append)
    # the tables and the first fit were kept
    assert redone == ["media-fit", "media-check", "inverse"]
    assert _reproducible(c) == _reproducible(a)
    assert not run_folder(c).exists()
    # an existing non-empty output folder is only replaced with overwrite=True
    from ariasim.errors import ConfigError

    with pytest.raises(ConfigError, match="overwrite"):
        run_demo(a, config=cfg)


def test_near_source_shells_are_trained_on_and_leave_the_held_out_distances_alone():
    from ariasim.apps.photons.demo import demo_radii, held_out_distances
    from ariasim.errors import ConfigError

    cfg = DemoConfig()
    radii, held = demo_radii(cfg)
    assert np.array_equal(held, held_out_distances(np.asarray(cfg.radii_m)))
    assert set(cfg.near_source_radii_m) <= set(radii.tolist())
    assert not set(cfg.near_source_radii_m) & set(held.tolist())
    assert np.all(np.diff(radii) > 0)
    same, held_before = demo_radii(dataclasses.replace(cfg, near_source_radii_m=()))
    assert np.array_equal(held_before, held)
    assert same.size == radii.size - len(cfg.near_source_radii_m)
    # the held-out shells' bands (default thickness) are the same with the extra shells
    from ariasim.simulators.photons.shells import _bands

    r1, d1 = _bands(radii, None)
    r0, d0 = _bands(same, None)
    assert np.array_equal(d1[np.isin(r1, held)], d0[np.isin(r0, held)])
    with pytest.raises(ConfigError, match="near_source_radii_m"):
        demo_radii(dataclasses.replace(cfg, near_source_radii_m=(10.0,)))


def test_density_validation_shells_are_training_shells_the_rule_names():
    """The validation shells of the density's choice step are ordinary training shells
    (not held out, not the always-fitted near-source shells, not the range's end): the
    nearest such above each held-out distance below 20 m, unless already left out as
    every fourth distance (12.5 m, below 15 m). The quick demo has none."""
    from ariasim.apps.photons.demo import demo_radii

    cfg = DemoConfig()
    radii, held = demo_radii(cfg)
    fixed = set(held.tolist()) | set(cfg.near_source_radii_m)
    ordinary = [r for r in radii[1:-1].tolist() if r not in fixed]
    above = {min(r for r in ordinary if r > h) for h in held if h < 20}
    assert set(cfg.density_validation_m) == above
    assert not set(cfg.density_validation_m) & set(held.tolist())
    assert cfg.density_validation_per_distance
    quick = DemoConfig.quick()
    assert quick.density_validation_m == () and not quick.density_validation_per_distance


def test_loso_shells_follow_the_rule_and_are_off_by_default():
    """``loso_radii``: every training shell (tabulated, not held out) below 20 m that is
    not an end of the training range; none of them is a held-out distance. The
    leave-one-shell-out choice is off in the demo and the quick demo (not adopted)."""
    from ariasim.apps.photons.demo import demo_radii, loso_radii

    cfg = DemoConfig()
    radii, held = demo_radii(cfg)
    train = sorted(set(radii.tolist()) - set(held.tolist()))
    want = tuple(r for r in train if r < 20 and r not in (train[0], train[-1]))
    assert loso_radii(cfg) == want
    assert not set(want) & set(held.tolist())
    assert train[0] not in want and len(want) >= 2
    assert cfg.density_loso_m == () and DemoConfig.quick().density_loso_m == ()


def test_finer_warps_are_offered_by_default():
    """The finer Bernstein warps (24, 32) were adopted by the rule written before the runs
    (BENCHMARKS.md "Finer Bernstein warps (24, 32)"): offered, with main's 0, 8 and 16, in
    the demo and the quick demo."""
    assert DemoConfig().density_warp_degrees == (0, 8, 16, 24, 32)
    assert DemoConfig.quick().density_warp_degrees == (0, 8, 16, 24, 32)


def test_penalised_warp_knots_are_offered_by_default():
    """The warp knots 9-40 m with a 1e-6 curvature penalty on their logits were adopted by
    the rule written before the runs (BENCHMARKS.md "Penalised warp knots on the finer
    warps"): offered in the demo and the quick demo."""
    for cfg in (DemoConfig(), DemoConfig.quick()):
        assert cfg.density_warp_knots_m == (9.0, 13.0, 17.0, 25.0, 40.0)
        assert cfg.density_warp_knot_smooth == 1e-6
