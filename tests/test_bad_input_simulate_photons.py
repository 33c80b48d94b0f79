"""Bad input to ``ariasim simulate photons``: a clean one-line error naming the flag, or the
configuration key and file, exit status 2, nothing written, and the simulation never
starts (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput import Case, check_case, make_folder, scale_out_cases, write_file

OUT = "out.parquet"
BASE = ("simulate", "photons", "--no-progress")


def _run(*argv: str) -> tuple[str, ...]:
    return (*BASE, *argv) if "--out" in argv else (*BASE, "--out", OUT, *argv)


_write = write_file
_folder = make_folder


def _config(id_: str, text: str, expect: str) -> Case:
    """A case whose configuration file ``run.toml`` holds ``text``."""
    return Case(
        id_,
        (*BASE, "run.toml", "--out", OUT),
        expect,
        setup=_write("run.toml", text),
        outputs=[OUT],
    )


_GEOMETRY = "module_id,x,y,z\n0,0,0,10\n1,0,0,20\n"

CASES = [
    # physical parameters (flags)
    Case("photons-nan", _run("--photons", "nan"), "--photons", outputs=[OUT]),
    Case("photons-inf", _run("--photons", "inf"), "--photons", outputs=[OUT]),
    Case("photons-zero", _run("--photons", "0"), "--photons", outputs=[OUT]),
    Case("photons-negative", _run("--photons", "-5"), "--photons", outputs=[OUT]),
    Case("energy-zero", _run("--source", "cascade", "--energy", "0"), "--energy", outputs=[OUT]),
    Case("energy-nan", _run("--source", "cascade", "--energy", "nan"), "--energy", outputs=[OUT]),
    Case("length-inf", _run("--source", "muon", "--length", "inf"), "--length", outputs=[OUT]),
    Case("length-negative", _run("--source", "muon", "--length", "-1"), "--length", outputs=[OUT]),
    Case("wavelength-below-table", _run("--wavelength", "100"), "--wavelength", outputs=[OUT]),
    Case("wavelength-above-table", _run("--wavelength", "900"), "--wavelength", outputs=[OUT]),
    Case("wavelength-nan", _run("--wavelength", "nan"), "--wavelength", outputs=[OUT]),
    Case("distance-zero", _run("--distance", "0"), "--distance", outputs=[OUT]),
    Case("distance-negative", _run("--distance", "-20"), "--distance", outputs=[OUT]),
    Case("distance-nan", _run("--distance", "nan"), "--distance", outputs=[OUT]),
    Case("oversize-below-one", _run("--oversize", "0.5"), "--oversize", outputs=[OUT]),
    Case("oversize-inf", _run("--oversize", "inf"), "--oversize", outputs=[OUT]),
    Case(
        "absorption-negative",
        _run("--medium", "water", "--absorption-length", "-1"),
        "--absorption-length",
        outputs=[OUT],
    ),
    Case(
        "absorption-inf",
        _run("--medium", "water", "--absorption-length", "inf"),
        "--absorption-length",
        outputs=[OUT],
    ),
    Case(
        "scattering-zero",
        _run("--medium", "constant", "--absorption-length", "50", "--scattering-length", "0"),
        "--scattering-length",
        outputs=[OUT],
    ),
    Case(
        "scattering-nan",
        _run("--medium", "constant", "--absorption-length", "50", "--scattering-length", "nan"),
        "--scattering-length",
        outputs=[OUT],
    ),
    Case("events-zero", _run("--events", "0"), "--events", outputs=[OUT]),
    Case("events-negative", _run("--events", "-3"), "--events", outputs=[OUT]),
    Case("threads-zero", _run("--threads", "0"), "--threads", outputs=[OUT]),
    Case("threads-too-many", _run("--threads", "100000"), "--threads", outputs=[OUT]),
    Case("seed-negative", _run("--seed", "-1"), "--seed", outputs=[OUT]),
    # sizes that cannot be run: refused up front with an estimate
    Case("photons-absurd", _run("--photons", "1e15"), "--photons", outputs=[OUT]),
    Case("photons-absurd-estimate", _run("--photons", "1e15"), "years", outputs=[OUT]),
    Case("events-absurd", _run("--events", "1000000000"), "--events", outputs=[OUT]),
    Case("photons-beyond-numpy", _run("--photons", "1e30"), "--photons", outputs=[OUT]),
    Case(
        "energy-absurd", _run("--source", "cascade", "--energy", "1e300"), "--energy", outputs=[OUT]
    ),
    Case("distance-absurd", _run("--distance", "1e300"), "--distance", outputs=[OUT]),
    Case("oversize-absurd", _run("--oversize", "1e200"), "--oversize", outputs=[OUT]),
    Case(
        "geometry-far",
        _run("--geometry", "geo.csv"),
        "--geometry",
        setup=_write("geo.csv", "module_id,x,y,z\n0,0,0,1e9\n"),
        outputs=[OUT],
    ),
    Case(
        "geometry-nan",
        _run("--geometry", "geo.csv"),
        "geo.csv",
        setup=_write("geo.csv", "module_id,x,y,z\n0,0,0,nan\n"),
        outputs=[OUT],
    ),
    Case("geometry-missing", _run("--geometry", "nope.csv"), "nope.csv", outputs=[OUT]),
    Case(
        "events-absurd-memory",
        _run("--events", "1000000000", "--photons", "1"),
        "memory",
        outputs=[OUT],
    ),
    # the same keys in a configuration file: the key and the file are named
    _config("config-photons-nan", "[source]\nn_photons = nan\n", "source.n_photons"),
    _config("config-names-the-file", "[source]\nn_photons = -1.0\n", "run.toml"),
    _config("config-distance-zero", "[detector]\ndistance_m = 0.0\n", "detector.distance_m"),
    _config(
        "config-absorption-inf",
        '[medium]\nname = "water"\nabsorption_length_m = inf\n',
        "medium.absorption_length_m",
    ),
    _config("config-events-zero", "n_events = 0\n", "n_events"),
    _config("config-seed-negative", "seed = -4\n", "seed"),
    _config("config-wavelength", "[source]\nwavelength_nm = 1000.0\n", "source.wavelength_nm"),
    _config("config-events-absurd", "n_events = 1000000000\n", "n_events"),
    Case(
        "config-out-suffix",
        (*BASE, "run.toml"),
        "out",
        setup=_write("run.toml", 'out = "hits.txt"\n'),
        outputs=["hits.txt"],
    ),
    _config("config-bad-toml", "[source\nn_photons = ", "run.toml"),
    Case("config-missing", (*BASE, "nope.toml", "--out", OUT), "nope.toml", outputs=[OUT]),
    # outputs, checked before any work
    Case("out-suffix", _run("--out", "hits.txt"), "--out", outputs=["hits.txt"]),
    Case("out-is-folder", _run("--out", "dir.parquet"), "--out", setup=_folder("dir.parquet")),
    Case("out-exists", _run(), "--overwrite", setup=_write(OUT, b"old table")),
    Case(
        "out-under-a-file",
        _run("--out", "file.txt/out.parquet"),
        "file.txt",
        setup=_write("file.txt", "x"),
    ),
    Case(
        "counts-out-suffix", _run("--counts-out", "c.json"), "--counts-out", outputs=[OUT, "c.json"]
    ),
    Case("counts-out-equals-out", _run("--counts-out", OUT), "--counts-out", outputs=[OUT]),
    Case(
        "counts-out-exists",
        _run("--counts-out", "c.csv"),
        "--overwrite",
        setup=_write("c.csv", "old"),
        outputs=[OUT],
    ),
    Case(
        "out-equals-geometry",
        _run("--geometry", "geo.csv", "--out", "geo.csv", "--overwrite"),
        "--geometry",
        setup=_write("geo.csv", _GEOMETRY),
    ),
    Case(
        "out-equals-ice-table",
        _run("--medium", "layered", "--ice-table", "ice.csv", "--out", "ice.csv", "--overwrite"),
        "--ice-table",
        setup=_write("ice.csv", "depth_m,b_e400,a_dust400,dtau\n"),
    ),
    Case(
        "out-equals-config",
        (*BASE, "run.csv", "--out", "run.csv", "--overwrite"),
        "configuration file",
        setup=_write("run.csv", "seed = 1\n"),
    ),
    # resume: a run folder left by another configuration
    Case(
        "resume-other-run",
        _run("--resume", "--photons", "1e4"),
        "--resume",
        setup=_write(f".{OUT}.run/run.json", '{"key": "another run", "n_parts": 1}'),
        outputs=[OUT],
    ),
    # scale-out flags (issue 11): checked before any work or output
    *scale_out_cases(_run, [OUT]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
