"""Bad input to ``ariasim active run`` and ``ariasim active evaluate``: a clean one-line
error naming the flag or file, exit status 2, no run folder or report left behind, inputs
untouched (the harness of :mod:`badinput`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput import Case, check_case, scale_out_cases, write_file

TOY = str(Path(__file__).resolve().parents[1] / "examples" / "active_toy.py")
RUN = ["active", "run", "--pipeline", f"{TOY}:make_pipeline", "--out", "{tmp}/run"]
EVAL = [
    "active",
    "evaluate",
    "--pipeline",
    f"{TOY}:make_pipeline",
    "--out",
    "{tmp}/ev",
    "--json",
    "{tmp}/s.json",
]
NO_OUT = ("run", "ev", "s.json", "r.html")

BROKEN_PY = "def make_pipeline(:\n"
NOT_A_PIPELINE = "def make_pipeline():\n    return 42\n"

CASES = [
    Case("no-budget", RUN, "--budget"),
    Case("zero-chunks", [*RUN, "--chunks", "0"], "--chunks"),
    Case("negative-budget", [*RUN, "--budget", "-5"], "--budget"),
    Case("nan-budget", [*RUN, "--budget", "nan"], "--budget"),
    Case("bad-mode", [*RUN, "--chunks", "2", "--mode", "fast"], "--mode"),
    Case("a-min-zero", [*RUN, "--chunks", "2", "--a-min", "0"], "--a-min"),
    Case("a-min-above-one", [*RUN, "--chunks", "2", "--a-min", "1.5"], "--a-min"),
    Case(
        "aggressiveness-zero", [*RUN, "--chunks", "2", "--aggressiveness", "0"], "--aggressiveness"
    ),
    Case("threshold-without-value", [*RUN, "--chunks", "2", "--mode", "threshold"], "--threshold"),
    Case(
        "density-unknown",
        [*RUN, "--chunks", "2", "--mode", "density", "--density-observable", "nope"],
        "--density-observable",
    ),
    Case("chunk-size-zero", [*RUN, "--chunks", "2", "--chunk-size", "0"], "--chunk-size"),
    Case("learn-bad", [*RUN, "--chunks", "2", "--learn", "sometimes"], "--learn"),
    Case("size-bad", [*RUN, "--chunks", "2", "--size", "huge"], "--size"),
    Case("seed-negative", [*RUN, "--chunks", "2", "--seed", "-1"], "--seed"),
    *scale_out_cases(lambda *flags: [*RUN, "--chunks", "2", *flags], NO_OUT),
    Case(
        "pipeline-unknown",
        ["active", "run", "--pipeline", "nope", "--out", "{tmp}/run", "--chunks", "2"],
        "--pipeline",
    ),
    Case(
        "pipeline-no-module",
        ["active", "run", "--pipeline", "no_such_mod_x:f", "--out", "{tmp}/run", "--chunks", "2"],
        "no_such_mod_x",
    ),
    Case(
        "pipeline-no-function",
        ["active", "run", "--pipeline", f"{TOY}:nothing", "--out", "{tmp}/run", "--chunks", "2"],
        "nothing",
    ),
    Case(
        "pipeline-missing-file",
        [
            "active",
            "run",
            "--pipeline",
            "{tmp}/missing.py:f",
            "--out",
            "{tmp}/run",
            "--chunks",
            "2",
        ],
        "missing.py",
    ),
    Case(
        "pipeline-syntax-error",
        [
            "active",
            "run",
            "--pipeline",
            "{tmp}/bad.py:make_pipeline",
            "--out",
            "{tmp}/run",
            "--chunks",
            "2",
        ],
        "bad.py",
        setup=write_file("bad.py", BROKEN_PY),
    ),
    Case(
        "pipeline-not-a-pipeline",
        [
            "active",
            "run",
            "--pipeline",
            "{tmp}/np.py:make_pipeline",
            "--out",
            "{tmp}/run",
            "--chunks",
            "2",
        ],
        "not an ariasim.active.Pipeline",
        setup=write_file("np.py", NOT_A_PIPELINE),
    ),
    Case(
        "out-is-a-file",
        [*RUN[:-1], "{tmp}/f.txt", "--chunks", "2"],
        "--out",
        setup=write_file("f.txt", "keep me"),
    ),
    Case("eval-needs-reference", EVAL, "--reference"),
    Case("eval-reference-missing", [*EVAL, "--reference", "{tmp}/nothing"], "--reference"),
    Case(
        "eval-reference-not-a-run",
        [*EVAL, "--reference", "{tmp}/ref"],
        "final.parquet",
        setup=write_file("ref/notes.txt", "x"),
    ),
    Case(
        "eval-reference-bad-summary",
        [*EVAL, "--reference", "{tmp}/ref"],
        "summary.json",
        setup=write_file(
            "ref/summary.json", "{not json", base=write_file("ref/final.parquet", b"PAR1")
        ),
    ),
    Case("eval-json-suffix", [*EVAL[:-1], "{tmp}/s.txt", "--quick"], "--json"),
    Case("eval-report-suffix", [*EVAL, "--quick", "--report", "{tmp}/r.pdf"], "--report"),
    Case("eval-json-exists", [*EVAL, "--quick"], "--json", setup=write_file("s.json", "{}")),
    Case("eval-brute-chunks-too-few", [*EVAL, "--quick", "--brute-chunks", "2"], "--brute-chunks"),
    Case("eval-brute-mode", [*EVAL, "--quick", "--mode", "brute"], "--mode"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    outputs = tuple(o for o in NO_OUT if not (case.setup and o == "s.json"))
    check_case(Case(case.id, case.argv, case.expect, case.setup, outputs), tmp_path)
