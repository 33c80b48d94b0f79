"""Bad input to ``ariasim demo``: a clean one-line error naming the flag, exit status 2,
nothing written, and the demo never starts (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput import Case, check_case


def _write(name: str, content: str):
    def setup(tmp: Path) -> None:
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)

    return setup


def _other_run(tmp: Path) -> None:
    """A run folder left by a demo with other options or inputs."""
    folder = tmp / ".demo.run"
    folder.mkdir()
    (folder / "run.json").write_text('{"key": "another demo"}')


CASES = [
    Case(
        "out-is-file",
        ("demo", "--quick", "--out", "demo.txt"),
        "--out",
        setup=_write("demo.txt", "x"),
    ),
    Case(
        "out-not-empty",
        ("demo", "--quick", "--out", "demo"),
        "--overwrite",
        setup=_write("demo/old.json", "{}"),
    ),
    Case(
        "out-under-a-file",
        ("demo", "--quick", "--out", "file.txt/demo"),
        "file.txt",
        setup=_write("file.txt", "x"),
    ),
    Case("out-empty-name", ("demo", "--quick", "--out", ""), "--out"),
    Case(
        "seed-negative",
        ("demo", "--quick", "--out", "demo", "--seed", "-1"),
        "--seed",
        outputs=["demo"],
    ),
    Case(
        "seed-not-a-number",
        ("demo", "--quick", "--out", "demo", "--seed", "one"),
        "--seed",
        outputs=["demo"],
    ),
    Case(
        "resume-other-run",
        ("demo", "--quick", "--out", "demo", "--resume"),
        "--resume",
        setup=_other_run,
        outputs=["demo"],
    ),
    Case("unknown-option", ("demo", "--quik"), "--quik", outputs=["demo-output"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
