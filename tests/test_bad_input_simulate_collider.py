"""Bad input to ``ariasim simulate collider``: a clean one-line error naming the flag or
file, exit status 2, nothing written, and the simulation never starts (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput import Case, check_case, make_folder, scale_out_cases, write_file

OUT = "out.parquet"
BASE = ("simulate", "collider", "--quiet", "--n", "20")


def _run(*argv: str) -> tuple[str, ...]:
    return (*BASE, *argv) if "--out" in argv else (*BASE, "--out", OUT, *argv)


def _detector_with(old: str, new: str):
    def setup(tmp: Path) -> None:
        from ariasim.simulators.collider.detector import DETECTOR_DIR

        text = (DETECTOR_DIR / "default.toml").read_text()
        assert old in text
        (tmp / "det.toml").write_text(text.replace(old, new, 1))

    return setup


_write = write_file
_folder = make_folder


_HEPMC_TRUNCATED = (
    "HepMC::Version 3.02.05\nHepMC::Asciiv3-START_EVENT_LISTING\n"
    "E 0 1 3\nU GEV MM\nP 1 0 2212 0 0 6.5e3 6.5e3 0.938 4\nP 2 1 13 1.0 2.0"
)


def _cut_hepmc(tmp: Path) -> None:
    """Three good events, the file cut in the middle of the last one."""
    pyhepmc = pytest.importorskip("pyhepmc")
    with pyhepmc.open(str(tmp / "full.hepmc"), "w") as f:
        for i in range(3):
            evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            evt.event_number = i
            v = pyhepmc.GenVertex((0.0, 0.0, 0.0, 0.0))
            v.add_particle_in(pyhepmc.GenParticle((0.0, 0.0, 7000.0, 7000.0), 2212, 4))
            for k in range(3):
                v.add_particle_out(pyhepmc.GenParticle((20.0 + k, 1.0, 5.0, 30.0), 13, 1))
            evt.add_vertex(v)
            f.write(evt)
    lines = (tmp / "full.hepmc").read_text().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if line.startswith("E "))
    (tmp / "ev.hepmc").write_text("".join(lines[: last + 4])[:-12])
    (tmp / "full.hepmc").unlink()


CASES = [
    # physical parameters and limits
    Case("pt-min-nan", _run("--pt-min", "nan"), "--pt-min", outputs=[OUT]),
    Case("pt-max-zero", _run("--pt-max", "0"), "--pt-max", outputs=[OUT]),
    Case("pt-min-negative", _run("--pt-min", "-1"), "--pt-min", outputs=[OUT]),
    Case("pt-max-inf", _run("--pt-max", "inf"), "--pt-max", outputs=[OUT]),
    Case("pt-min-above-max", _run("--pt-min", "50", "--pt-max", "10"), "--pt-min", outputs=[OUT]),
    Case("eta-max-inf", _run("--eta-max", "inf"), "--eta-max", outputs=[OUT]),
    Case("eta-min-nan", _run("--eta-min", "nan"), "--eta-min", outputs=[OUT]),
    Case("eta-min-above-max", _run("--eta-min", "2", "--eta-max", "1"), "--eta-min", outputs=[OUT]),
    Case("phi-min-nan", _run("--phi-min", "nan"), "--phi-min", outputs=[OUT]),
    Case(
        "phi-range-too-wide", _run("--phi-min", "0", "--phi-max", "7"), "--phi-max", outputs=[OUT]
    ),
    Case("phi-min-above-max", _run("--phi-min", "1", "--phi-max", "0"), "--phi-min", outputs=[OUT]),
    Case("n-zero", _run("--n", "0"), "--n", outputs=[OUT]),
    Case("n-negative", _run("--n", "-5"), "--n", outputs=[OUT]),
    Case("n-float", _run("--n", "1e12"), "--n", outputs=[OUT]),
    Case("n-absurd", _run("--n", "1000000000000"), "memory", outputs=[OUT]),
    Case("batch-size-zero", _run("--batch-size", "0"), "--batch-size", outputs=[OUT]),
    Case("batch-size-negative", _run("--batch-size", "-3"), "--batch-size", outputs=[OUT]),
    Case("seed-negative", _run("--seed", "-1"), "--seed", outputs=[OUT]),
    Case("particle-unknown", _run("--particle", "graviton"), "--particle", outputs=[OUT]),
    Case("particle-empty", _run("--particle", ","), "--particle", outputs=[OUT]),
    # detectors
    Case("detector-unknown", _run("--detector", "nope"), "--detector", outputs=[OUT]),
    Case(
        "detector-file-missing",
        _run("--detector", "{tmp}/missing.toml"),
        "missing.toml",
        outputs=[OUT],
    ),
    Case(
        "detector-bfield-nan",
        _run("--detector", "{tmp}/det.toml"),
        "b_field_t",
        setup=_detector_with("b_field_t = 3.8", "b_field_t = nan"),
        outputs=[OUT],
    ),
    Case(
        "detector-bfield-negative",
        _run("--detector", "{tmp}/det.toml"),
        "b_field_t",
        setup=_detector_with("b_field_t = 3.8", "b_field_t = -3.8"),
        outputs=[OUT],
    ),
    Case(
        "detector-efficiency-nan",
        _run("--detector", "{tmp}/det.toml"),
        "efficiency",
        setup=_detector_with("efficiency = 0.99", "efficiency = nan"),
        outputs=[OUT],
    ),
    Case(
        "detector-pipe-length-nan",
        _run("--detector", "{tmp}/det.toml"),
        "beam_pipe.half_length_m",
        setup=_detector_with("half_length_m = 10.0", "half_length_m = nan"),
        outputs=[OUT],
    ),
    Case(
        "detector-muon-efficiency-negative",
        _run("--detector", "{tmp}/det.toml"),
        "muon.efficiency",
        setup=_detector_with("efficiency = 0.95", "efficiency = -0.95"),
        outputs=[OUT],
    ),
    Case(
        "detector-chi2-cut-inf",
        _run("--detector", "{tmp}/det.toml"),
        "tracking.max_chi2_ndof",
        setup=_detector_with("max_chi2_ndof = 100.0", "max_chi2_ndof = inf"),
        outputs=[OUT],
    ),
    Case(
        "detector-ecal-z-nan",
        _run("--detector", "{tmp}/det.toml"),
        "ecal.active_z",
        setup=_detector_with('preset = "cms-pbwo4"', 'preset = "cms-pbwo4"\nactive_z = nan'),
        outputs=[OUT],
    ),
    Case(
        "detector-bad-toml",
        _run("--detector", "{tmp}/det.toml"),
        "det.toml",
        setup=_write("det.toml", "[solenoid\nb_field_t = "),
        outputs=[OUT],
    ),
    Case(
        "detector-unknown-key",
        _run("--detector", "{tmp}/det.toml"),
        "bfield",
        setup=_detector_with("b_field_t = 3.8", "b_field_t = 3.8\nbfield = 1"),
        outputs=[OUT],
    ),
    # outputs, checked before any work
    Case("out-suffix", _run("--out", "out.txt"), "--out", outputs=["out.txt"]),
    Case("out-is-folder", _run("--out", "dir.parquet"), "--out", setup=_folder("dir.parquet")),
    Case("out-exists", _run(), "--overwrite", setup=_write(OUT, b"old table")),
    Case(
        "out-under-a-file",
        _run("--out", "file.txt/out.parquet"),
        "file.txt",
        setup=_write("file.txt", "x"),
    ),
    Case(
        "report-is-file",
        _run("--report", "rep.txt"),
        "--report",
        setup=_write("rep.txt", "x"),
        outputs=[OUT],
    ),
    Case("report-equals-out", _run("--report", OUT), "--report", outputs=[OUT]),
    Case(
        "report-exists", _run("--report", "rep"), "--overwrite", setup=_folder("rep"), outputs=[OUT]
    ),
    Case(
        "out-equals-input",
        (
            "simulate",
            "collider",
            "-q",
            "--out",
            "ev.parquet",
            "--input",
            "ev.parquet",
            "--overwrite",
        ),
        "--input",
        setup=_write("ev.parquet", b"PAR1"),
    ),
    # event files
    Case(
        "input-missing",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "no.hepmc"),
        "no.hepmc",
        outputs=[OUT],
    ),
    Case(
        "input-empty",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.hepmc"),
        "ev.hepmc",
        setup=_write("ev.hepmc", ""),
        outputs=[OUT],
    ),
    Case(
        "input-truncated",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.hepmc"),
        "ev.hepmc",
        setup=_write("ev.hepmc", _HEPMC_TRUNCATED),
        outputs=[OUT],
    ),
    Case(
        "input-cut-in-last-event",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.hepmc"),
        "truncated",
        setup=_cut_hepmc,
        outputs=[OUT],
    ),
    Case(
        "input-unknown-type",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.txt"),
        "ev.txt",
        setup=_write("ev.txt", "x"),
        outputs=[OUT],
    ),
    Case(
        "input-parquet",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.parquet"),
        "ev.parquet",
        setup=_write("ev.parquet", b"PAR1"),
        outputs=[OUT],
    ),
    Case(
        "max-events-zero",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.hepmc", "--max-events", "0"),
        "--max-events",
        setup=_write("ev.hepmc", _HEPMC_TRUNCATED),
        outputs=[OUT],
    ),
    Case("max-events-without-input", _run("--max-events", "3"), "--max-events", outputs=[OUT]),
    Case(
        "gun-option-with-input",
        ("simulate", "collider", "-q", "--out", OUT, "--input", "ev.hepmc", "--pt-min", "5"),
        "--pt-min",
        setup=_write("ev.hepmc", _HEPMC_TRUNCATED),
        outputs=[OUT],
    ),
    # scale-out flags (issue 11): checked before any work or output
    *scale_out_cases(_run, [OUT]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
