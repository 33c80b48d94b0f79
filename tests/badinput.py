"""The bad-input harness: run an ``ariasim`` command on bad input and check how it fails.

Every command joins through a ``tests/test_bad_input_<command>.py`` module that lists its
cases as :class:`Case` rows and calls :func:`check_case` on each. A case passes when the
command

* exits with status 2 (a clean ariasim or usage error),
* prints a message whose last line names the file, column or flag (``expect``),
* prints no Python traceback,
* finishes within ``timeout_s`` (a hang is a failure, not a wait),
* leaves no output file behind (``outputs``: paths relative to the case's folder that must
  not exist afterwards; files that existed before must be unchanged), and
* never modifies its inputs.

The command runs in-process through :func:`ariasim.cli.main` (fast: no interpreter start
per case); a SIGALRM timer turns a hang into a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["Case", "check_case", "make_folder", "scale_out_cases", "write_file"]


@dataclass(frozen=True)
class Case:
    """One bad-input case.

    Arguments:
        id: Short name shown by pytest.
        argv: The command line after ``ariasim`` (``{tmp}`` is replaced by the case folder).
        expect: Text the error message must contain (the file, column or flag it names).
        setup: Optional ``setup(tmp: Path)`` that writes the case's input files.
        outputs: Paths (relative to the case folder) that must not exist afterwards.
        timeout_s: A run longer than this is a hang.
    """

    id: str
    argv: Sequence[str]
    expect: str
    setup: Callable[[Path], None] | None = None
    outputs: Sequence[str] = field(default_factory=tuple)
    timeout_s: float = 60.0


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def check_case(case: Case, tmp: Path) -> str:
    """Run ``case`` in the folder ``tmp`` and assert the harness's rules; returns the
    error message."""
    from ariasim.cli import main

    if case.setup is not None:
        case.setup(tmp)
    before = _digest(tmp)
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, case.timeout_s)
    code: object = 0
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
    except _Hang:
        pytest.fail(f"ariasim {' '.join(argv)}: no answer within {case.timeout_s} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(cwd)
    text = (err.getvalue() + out.getvalue()).strip()
    assert "Traceback" not in text, text
    assert code == 2, f"exit status {code!r}, expected 2; output:\n{text}"
    assert case.expect in text, f"the message does not name {case.expect!r}:\n{text}"
    for rel in case.outputs:
        assert not (tmp / rel).exists() or rel in before, f"{rel} was left behind"
    after = _digest(tmp)
    changed = [k for k, v in before.items() if after.get(k) != v]
    assert not changed, f"inputs modified: {changed}"
    stray = [k for k in after if k not in before and Path(k).name.startswith(".")]
    assert not stray, f"temporary files left: {stray}"
    return text


Setup = Callable[[Path], None]


def write_file(name: str, content: str | bytes, base: Setup | None = None) -> Setup:
    """A case setup that runs ``base`` (the valid inputs), then writes ``content`` to
    ``name`` in the case folder."""

    def setup(tmp: Path) -> None:
        if base is not None:
            base(tmp)
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)

    return setup


def make_folder(name: str, base: Setup | None = None) -> Setup:
    """A case setup that runs ``base``, then makes the folder ``name`` (e.g. where an
    output file should go)."""

    def setup(tmp: Path) -> None:
        if base is not None:
            base(tmp)
        (tmp / name).mkdir()

    return setup


def scale_out_cases(run: Callable[..., Sequence[str]], outputs: Sequence[str]) -> list[Case]:
    """The bad ``--workers`` / ``--scheduler`` cases of every command on the Dask layer
    (``run(*flags)`` gives the command line; ``outputs`` must not exist afterwards)."""
    bad = [
        ("workers-zero", ("--workers", "0"), "--workers"),
        ("workers-negative", ("--workers", "-2"), "--workers"),
        ("workers-not-a-number", ("--workers", "two"), "--workers"),
        ("scheduler-garbage", ("--scheduler", "garbage"), "--scheduler"),
        ("scheduler-unknown-scheme", ("--scheduler", "http://localhost:8786"), "--scheduler"),
        ("scheduler-unreachable", ("--scheduler", "tcp://127.0.0.1:1"), "--scheduler"),
        (
            "workers-and-scheduler",
            ("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"),
            "--workers",
        ),
    ]
    return [Case(i, run(*flags), e, outputs=tuple(outputs)) for i, flags, e in bad]
