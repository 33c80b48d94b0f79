"""Bad input to ``ariasim compare``: a clean one-line error naming the flag, file or
column, exit status 2, no --json written, inputs untouched (issue 10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from badinput import Case, check_case, make_folder


def _tables(tmp: Path, **change_b) -> None:
    rng = np.random.default_rng(0)
    a = pd.DataFrame(
        {"x": rng.normal(size=50), "y": rng.normal(size=50), "w": rng.uniform(0.5, 1.5, 50)}
    )
    b = a.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for col, values in change_b.items():
        b[col] = values
    a.to_parquet(tmp / "a.parquet")
    b.to_parquet(tmp / "b.parquet")


def _ok(tmp: Path) -> None:
    _tables(tmp)


def _with(**change_b):
    def setup(tmp: Path) -> None:
        _tables(tmp, **change_b)

    return setup


def _write_b(content: bytes | str, name: str = "b.parquet"):
    def setup(tmp: Path) -> None:
        _tables(tmp)
        p = tmp / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)

    return setup


def _truncated(tmp: Path) -> None:
    _tables(tmp)
    data = (tmp / "b.parquet").read_bytes()
    (tmp / "b.parquet").write_bytes(data[: len(data) // 2])


def _folder(name: str):
    return make_folder(name, base=_tables)


AB = ("compare", "a.parquet", "b.parquet")
J = "r.json"
_BAD_W = np.r_[-1.0, np.ones(49)]
_NAN_W = np.r_[np.nan, np.ones(49)]

CASES = [
    # inputs
    Case("a-missing", ("compare", "none.parquet", "b.parquet"), "none.parquet", setup=_ok),
    Case("b-empty-file", (*AB, "--json", J), "b.parquet", setup=_write_b(b""), outputs=[J]),
    Case("b-truncated", (*AB, "--json", J), "b.parquet", setup=_truncated, outputs=[J]),
    Case(
        "b-not-parquet", (*AB, "--json", J), "b.parquet", setup=_write_b("x,y\n1,2\n"), outputs=[J]
    ),
    Case(
        "b-unknown-suffix",
        ("compare", "a.parquet", "b.txt"),
        "b.txt",
        setup=_write_b("x\n1\n", "b.txt"),
    ),
    Case(
        "column-missing", (*AB, "--columns", "x,nope", "--json", J), "nope", setup=_ok, outputs=[J]
    ),
    Case(
        "column-not-numeric",
        (*AB, "--columns", "x,s", "--json", J),
        "'s'",
        setup=_with(s=["t"] * 50),
        outputs=[J],
    ),
    Case(
        "no-common-numeric",
        ("compare", "a.parquet", "c.csv"),
        "c.csv",
        setup=_write_b("label\n" + "foo\n" * 6, "c.csv"),
    ),
    Case(
        "too-few-rows",
        ("compare", "a.parquet", "c.csv", "--columns", "x"),
        "c.csv",
        setup=_write_b("x\n1\n2\n", "c.csv"),
    ),
    Case("weight-missing", (*AB, "--weight-column", "v"), "'v'", setup=_ok),
    Case("weight-negative", (*AB, "--weight-column", "w"), "'w'", setup=_with(w=_BAD_W)),
    Case("weight-nan", (*AB, "--weight-column", "w"), "'w'", setup=_with(w=_NAN_W)),
    # options
    Case("max-rows-zero", (*AB, "--max-rows", "0"), "--max-rows", setup=_ok),
    Case("max-rows-negative", (*AB, "--max-rows", "-4"), "--max-rows", setup=_ok),
    Case("max-samples-one", (*AB, "--max-samples", "1"), "--max-samples", setup=_ok),
    Case("seed-negative", (*AB, "--seed", "-1"), "--seed", setup=_ok),
    Case("metric-unknown", (*AB, "--metrics", "bogus"), "--metrics", setup=_ok),
    Case("n-repeats-one", (*AB, "--calibrate", "--n-repeats", "1"), "--n-repeats", setup=_ok),
    # the --json output, checked before the work
    Case("json-is-folder", (*AB, "--json", "out.json"), "folder", setup=_folder("out.json")),
    Case("json-equals-input", (*AB, "--json", "a.parquet"), "--json", setup=_ok),
    Case(
        "json-equals-input-a",
        ("compare", "a.json", "b.parquet", "--json", "a.json", "--overwrite"),
        "is also the input",
        setup=_write_b("{}", "a.json"),
    ),
    Case("json-suffix", (*AB, "--json", "r.txt"), "--json", setup=_ok, outputs=["r.txt"]),
    Case("json-exists", (*AB, "--json", J), "--overwrite", setup=_write_b("{}", J)),
    Case(
        "json-under-a-file", (*AB, "--json", "f.txt/r.json"), "f.txt", setup=_write_b("x", "f.txt")
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
