"""``ariasim fit symbolic`` and ``ariasim fit density`` on a user's own table (issue 15):
the formula is found and its JSON loads back through the Python API and ``ariasim export
formula``; the density JSON loads back and its CDF matches the data; NaN rows are
dropped and counted; a missing column, a bad unit or an existing output fails before any
work with a one-line error naming the column, file or flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from badinput import Case, check_case, write_file

pytest.importorskip("pyoperon")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from ariasim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    return out.out


def square_table(path: Path, n: int = 400, seed: int = 0) -> None:
    """y = 2.5 x^2 + z, noise-free, with one NaN target and one infinite input."""
    rng = np.random.default_rng(seed)
    x, z = rng.uniform(0.5, 3.0, n), rng.uniform(-2.0, 2.0, n)
    df = pd.DataFrame({"x": x, "z": z, "y": 2.5 * x**2 + z})
    df.loc[3, "y"] = np.nan
    df.loc[7, "x"] = np.inf
    df.to_csv(path, index=False)


def test_fit_symbolic_recovers_the_formula(tmp_path: Path, capsys) -> None:
    from ariasim.surrogates import Formula

    square_table(tmp_path / "t.csv")
    out = tmp_path / "f.json"
    argv = ["fit", "symbolic", str(tmp_path / "t.csv"), "--out", str(out)]
    argv += "--inputs x,z --target y --units x=m,z=m^2,y=m^2 --seed 0".split()
    argv += "--generations 5 --time-limit 120".split()
    text = _run(argv, capsys)
    assert "dropped 2 of 400 row(s)" in text
    assert "Pareto front" in text and "chosen: y = " in text and "why: " in text
    f = Formula.load(out)
    assert [v.name for v in f.variables] == ["x", "z"] and f.output.unit == "m^2"
    rng = np.random.default_rng(1)
    x, z = rng.uniform(0.5, 3.0, 1000), rng.uniform(-2.0, 2.0, 1000)
    truth = 2.5 * x**2 + z
    # noise-free data: the exact law (or a formula as accurate) within rounding
    assert np.max(np.abs(f(x=x, z=z) - truth)) < 1e-8 * np.max(np.abs(truth))
    assert f.complexity <= 9  # 2.5*x**2 + z, not a longer approximant
    summary = json.loads((tmp_path / "f.summary.json").read_text())
    assert summary["n_rows_used"] == 398 and summary["dropped_non_finite"] == {"y": 1, "x": 1}
    chosen = [r for r in summary["pareto_front"] if r["selected"]]
    assert len(chosen) == 1 and chosen[0]["dims_ok"] is True
    assert Formula.from_json(out.read_text())(x=x, z=z) == pytest.approx(f(x=x, z=z))
    # --generations makes the fit reproducible: the same table and seed, the same bytes
    again = tmp_path / "again" / "f.json"
    _run([*(a if a != str(out) else str(again) for a in argv), "--quiet"], capsys)
    assert again.read_bytes() == out.read_bytes()
    # ariasim export formula reads the same file
    _run(["export", "formula", str(out), "--out", str(tmp_path / "f.c")], capsys)
    c_code = (tmp_path / "f.c").read_text()
    assert "double ariasim_formula(double x, double z)" in c_code and "pow(x, 2)" in c_code


def test_fit_symbolic_names_columns_that_are_no_identifiers(tmp_path: Path, capsys) -> None:
    """Columns such as "pT [GeV]" and "sigma/pT" become x0 and y, named in the file."""
    from ariasim.surrogates import Formula

    x = np.random.default_rng(0).uniform(1.0, 3.0, 200)
    pd.DataFrame({"pT [GeV]": x, "sigma/pT": 0.5 * x}).to_csv(tmp_path / "o.csv", index=False)
    out = tmp_path / "o.json"
    argv = ["fit", "symbolic", str(tmp_path / "o.csv"), "--inputs", "pT [GeV]"]
    text = _run(
        [*argv, "--target", "sigma/pT", "--generations", "2", "-q", "--out", str(out)], capsys
    )
    assert "x0 is the column 'pT [GeV]'" in text and "y is the column 'sigma/pT'" in text
    f = Formula.load(out)
    assert f.output.description == "column 'sigma/pT'"
    assert f(x0=x) == pytest.approx(0.5 * x, rel=1e-9)


def test_fit_density_writes_a_density_that_loads(tmp_path: Path, capsys) -> None:
    from ariasim.surrogates import SymbolicDensity
    from ariasim.utils import read_json

    rng = np.random.default_rng(3)
    d = rng.uniform(10.0, 100.0, 3000)
    t = rng.gamma(2.0, d / 10.0)
    pd.DataFrame({"d": d, "t": t}).to_parquet(tmp_path / "g.parquet")
    out = tmp_path / "dens.json"
    text = _run(
        [
            "fit",
            "density",
            str(tmp_path / "g.parquet"),
            "--variable",
            "t",
            "--conditions",
            "d",
            "--units",
            "t=ns,d=m",
            "--param-model",
            "poly",
            "--bins",
            "6",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert "mu_0 = " in text and "cdf(t | d)" in text
    dens = SymbolicDensity.from_dict(read_json(out), source=out)
    assert dens.t_unit == "ns" and [v.name for v in dens.variables_] == ["d"]
    # the learned CDF against the true gamma CDF at a few conditions: within the 95 %
    # KS critical value of one condition bin (3000 / 6 = 500 samples): 1.36 / sqrt(500)
    for dd in (20.0, 50.0, 90.0):
        grid = np.linspace(0.1, 6 * dd / 10.0, 50)
        cdf = dens.cdf(grid, np.full((50, 1), dd))
        truth = stats.gamma.cdf(grid, 2.0, scale=dd / 10.0)
        assert np.max(np.abs(cdf - truth)) < 1.36 / np.sqrt(500)
    assert json.loads((tmp_path / "dens.summary.json").read_text())["n_rows_used"] == 3000


def _table(tmp: Path) -> None:
    square_table(tmp / "t.csv", n=50)


CASES = [
    Case(
        "missing-target-column",
        [
            "fit",
            "symbolic",
            "{tmp}/t.csv",
            "--inputs",
            "x,z",
            "--target",
            "w",
            "--out",
            "{tmp}/f.json",
        ],
        expect="column 'w'",
        setup=_table,
        outputs=("f.json", "f.summary.json"),
    ),
    Case(
        "missing-input-column-names-file",
        [
            "fit",
            "symbolic",
            "{tmp}/t.csv",
            "--inputs",
            "x,q",
            "--target",
            "y",
            "--out",
            "{tmp}/f.json",
        ],
        expect="t.csv",
        setup=_table,
        outputs=("f.json", "f.summary.json"),
    ),
    Case(
        "text-column",
        [
            "fit",
            "symbolic",
            "{tmp}/s.csv",
            "--inputs",
            "x",
            "--target",
            "y",
            "--out",
            "{tmp}/f.json",
        ],
        expect="column 'x'",
        setup=write_file("s.csv", "x,y\na,1\nb,2\n"),
        outputs=("f.json",),
    ),
    Case(
        "bad-unit",
        [
            "fit",
            "symbolic",
            "{tmp}/t.csv",
            "--inputs",
            "x,z",
            "--target",
            "y",
            "--units",
            "x=furlong",
            "--out",
            "{tmp}/f.json",
        ],
        expect="--units",
        setup=_table,
        outputs=("f.json",),
    ),
    Case(
        "existing-output",
        [
            "fit",
            "symbolic",
            "{tmp}/t.csv",
            "--inputs",
            "x,z",
            "--target",
            "y",
            "--out",
            "{tmp}/f.json",
        ],
        expect="--overwrite",
        setup=write_file("f.json", "{}", _table),
    ),
    Case(
        "density-missing-condition",
        [
            "fit",
            "density",
            "{tmp}/t.csv",
            "--variable",
            "y",
            "--conditions",
            "x,d",
            "--out",
            "{tmp}/d.json",
        ],
        expect="column 'd'",
        setup=_table,
        outputs=("d.json", "d.summary.json"),
    ),
    Case(
        "density-below-t-min",
        [
            "fit",
            "density",
            "{tmp}/t.csv",
            "--variable",
            "z",
            "--conditions",
            "x",
            "--out",
            "{tmp}/d.json",
        ],
        expect="column 'z'",
        setup=_table,
        outputs=("d.json",),
    ),
]

CASES.append(
    Case(
        "export-formula-of-a-density",
        ["export", "formula", "{tmp}/d.json", "--out", "{tmp}/d.c"],
        expect="d.json",
        setup=write_file("d.json", '{"schema": "ariasim.symbolic_density/1"}'),
        outputs=("d.c",),
    )
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
