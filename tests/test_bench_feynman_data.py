"""The symbolic-regression benchmark's equation sets and its store (no SR run).

Every AI Feynman and field equation parses with the whitelist parser, is finite on its
(rejection-sampled) ranges and is dimensionally consistent with its units; the store
appends one line per fit, reads back what was written (skipping a line broken by a
killed writer) and a restart skips exactly the stored keys; a worker that crashes or
hangs is stored as a failure.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import sympy as sp

from ariasim.surrogates.units import FREE, dimension_of, is_consistent, parse_unit
from benchload import load_bench

fd = load_bench("feynman_data")
bench = load_bench("bench_symbolic")
ALL = [(s, eq) for s, eqs in fd.SETS.items() for eq in eqs]


def test_feynman_set_is_complete():
    names = [eq.name for eq in fd.FEYNMAN]
    assert len(names) == 100 and len(set(names)) == 100
    assert len({eq.name for eq in fd.FIELD}) == len(fd.FIELD) >= 15


@pytest.mark.parametrize("set_name,eq", ALL, ids=[f"{s}:{e.name}" for s, e in ALL])
def test_equation_parses_is_finite_and_consistent(set_name, eq):
    f = fd.truth_formula(eq)
    X, y = fd.sample(eq, 300, np.random.default_rng(1))
    assert X.shape == (300, len(eq.variables)) and np.isfinite(y).all()
    lo = np.array([v[1] for v in eq.variables])
    hi = np.array([v[2] for v in eq.variables])
    assert (X >= lo).all() and (X <= hi).all()
    np.testing.assert_allclose(f(X), y)
    assert np.std(y) > 0  # the inputs matter
    dims = {s: parse_unit(u) for s, u in zip(f.symbols, eq.units, strict=True)}
    target = parse_unit(eq.unit)
    assert is_consistent(f.expression, dims, target)
    d = dimension_of(f.expression, dims)
    if f.expression.atoms(sp.Float):  # a dimensional constant (13.6 MeV in Highland's)
        assert d is FREE
    else:  # strictly the target's dimension: a wrong unit anywhere would fail here
        assert d == target


def test_units_check_can_fail():
    eq = next(e for e in fd.FEYNMAN if e.name == "I.12.2")
    f = fd.truth_formula(eq)
    wrong = ["C", "C", "C^2/(N*m)", "m"]  # epsilon off by a metre
    dims = {s: parse_unit(u) for s, u in zip(f.symbols, wrong, strict=True)}
    assert not is_consistent(f.expression, dims, parse_unit("N"))


def test_sampling_rejects_undefined_rows_and_is_reproducible():
    eq = fd.Equation("t", "sqrt(x)*y", "f", "", (("x", -1, 1, ""), ("y", 1, 2, "")))
    X, y = fd.sample(eq, 500, np.random.default_rng(3))
    assert len(y) == 500 and (X[:, 0] >= 0).all() and np.isfinite(y).all()
    X2, _ = fd.sample(eq, 500, np.random.default_rng(3))
    assert np.array_equal(X, X2)
    never = fd.Equation("t", "sqrt(x)", "f", "", (("x", -2, -1, ""),))
    with pytest.raises(RuntimeError, match="finite rows"):
        fd.sample(never, 10, np.random.default_rng(0), max_rounds=3)


def test_data_same_for_every_method_and_noise_as_srbench():
    eq = fd.FEYNMAN[0]
    X, y, Xt, _ = bench.make_data(eq, "feynman", 0.0, 0)
    X1, y1, Xt1, yt1 = bench.make_data(eq, "feynman", 0.01, 0)
    assert np.array_equal(X, bench.make_data(eq, "feynman", 0.0, 0)[0])
    np.testing.assert_allclose(y, fd.truth_formula(eq)(X))  # noise 0: exact targets
    assert X.shape == (bench.N_TRAIN, 1) and Xt.shape == (bench.N_TEST, 1)
    # noise: 1 % of the RMS of y (a chi-square with 1000 dof: +-10 % at 3 sigma)
    truth = fd.truth_formula(eq)(X1)
    ratio = np.std(y1 - truth) / np.sqrt(np.mean(truth**2))
    assert 0.009 < ratio < 0.011
    np.testing.assert_allclose(yt1, fd.truth_formula(eq)(Xt1))  # test rows noise-free


def test_key_store_and_resume(tmp_path):
    k = bench.task_key("feynman", "I.6.2a", "ariasim", 1e-2, 0, 20)
    assert k == bench.task_key("feynman", "I.6.2a", "ariasim", 0.01, 0, 20.0)
    assert k != bench.task_key("feynman", "I.6.2a", "ariasim", 0.01, 0, 10.0)
    eqs = fd.FEYNMAN[:3]
    tasks = bench.make_tasks("feynman", eqs, ["ariasim", "gplearn"], [0.0, 0.01], [0], 20)
    assert len(tasks) == 12
    # noise-major, methods interleaved per equation
    assert [(t["noise"], t["equation"], t["method"]) for t in tasks[:4]] == [
        (0.0, "I.6.2a", "ariasim"),
        (0.0, "I.6.2a", "gplearn"),
        (0.0, "I.6.2", "ariasim"),
        (0.0, "I.6.2", "gplearn"),
    ]
    for t in tasks[:5]:
        row = dict(t, status="ok", exact=True, r2=float("-inf"), wall_s=1.0)
        bench.append_row(bench.store_file(tmp_path, t["set"], t["method"], t["noise"]), row)
    # a writer killed in the middle of a line, then a later append
    path = bench.store_file(tmp_path, "feynman", "ariasim", 0.01)
    with open(path, "a") as fh:
        fh.write('{"set": "feynman", "equa')
    t = tasks[6]  # noise 0.01, ariasim
    bench.append_row(bench.store_file(tmp_path, t["set"], t["method"], t["noise"]), dict(t))
    rows, broken = bench.read_store(tmp_path)
    assert broken == 1 and len(rows) == 6
    first = next(r for r in rows if bench.row_key(r) == bench.row_key(tasks[0]))
    assert first["r2"] is None  # -inf stored as null (JSON has no infinities)
    done = bench.done_keys(rows)
    todo = [t for t in tasks if bench.row_key(t) not in done]
    assert [bench.row_key(t) for t in todo] == [
        bench.row_key(t) for i, t in enumerate(tasks) if i not in (0, 1, 2, 3, 4, 6)
    ]
    files = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert files == [
        "feynman__ariasim__noise0.01.jsonl",
        "feynman__ariasim__noise0.jsonl",
        "feynman__gplearn__noise0.jsonl",
    ]


def test_exact_check():
    theta = sp.Symbol("theta", real=True)
    truth = fd.truth_formula(fd.FEYNMAN[0]).expression
    good = sp.Float(0.3989423) * sp.exp(-(theta**2) / 2)
    assert bench.exact_check(good, truth) == (True, "ok")
    assert bench.exact_check(truth + sp.Float(2.5), truth) == (True, "ok")  # offset
    assert bench.exact_check(good + sp.Float(2.5), truth)[0] is False  # not both
    assert bench.exact_check(sp.Float(0.4) * sp.exp(-sp.Float(0.49) * theta**2), truth)[0] is False
    assert bench.exact_check(None, truth) == (False, "no-model")
    huge = sum(sp.Float(0.1 * i) * sp.sin(i * theta) for i in range(1, 60))
    assert bench.exact_check(huge, truth) == (False, "too-large")


def test_summary_and_table():
    def row(name, method, exact, r2, wall, status="ok"):
        return {
            "set": "feynman", "equation": name, "method": method, "noise": 0.0, "seed": 0,
            "budget": 10.0, "exact": exact, "r2": r2, "wall_s": wall, "status": status,
        }  # fmt: skip

    rows = [
        row("I.6.2a", "ariasim", True, 1.0, 10.5),
        row("I.6.2", "ariasim", False, 0.99, 12.0),
        row("I.6.2a", "gplearn", False, None, 40.0, "timeout"),
    ]
    s = bench.summarize(rows, "feynman")["budget=10"]
    a, g = s["ariasim@0"], s["gplearn@0"]
    assert (a["fits"], a["exact"], a["exact_pct"], a["overruns"]) == (2, 1, 50.0, 1)
    assert a["worst_overrun_pct"] == pytest.approx(20.0)
    assert (g["failures"], g["median_r2"]) == (1, -np.inf)
    table = bench.markdown_table(rows, "feynman", 10.0)
    assert "| I.6.2a | ✓ 1.000000 | ✗ -inf (timeout) |" in table


def _crash(conn, task, kill_at):
    os._exit(3)


def _hang(conn, task, kill_at):
    time.sleep(60)


def _answer(conn, task, kill_at):
    conn.send(dict(task, status="ok", exact=True, r2=1.0, wall_s=0.0, model="x"))


def test_worker_failures_are_stored(tmp_path):
    tasks = bench.make_tasks("feynman", fd.FEYNMAN[:1], ["ariasim"], [0.0], [0], 0.1)
    seen = []
    before = os.environ.get("OMP_NUM_THREADS")
    # a long grace where the worker ends by itself: a loaded machine can take seconds to
    # spawn and import it, which a short grace would store as a timeout
    cases = [(_crash, "crashed", 60.0), (_hang, "timeout", 1.0), (_answer, "ok", 60.0)]
    for worker, status, grace in cases:
        bench.run_tasks(tasks, tmp_path / status, 1, seen.append, grace=grace, worker=worker)
        rows, _ = bench.read_store(tmp_path / status)
        assert [r["status"] for r in rows] == [status]
    assert [r["status"] for r in seen] == ["crashed", "timeout", "ok"]
    assert os.environ.get("OMP_NUM_THREADS") == before  # set for the workers only


def test_report_counts_a_repeated_fit_once(tmp_path):
    task = bench.make_tasks("feynman", fd.FEYNMAN[:1], ["gplearn"], [0.0], [0], 5.0)[0]
    path = bench.store_file(tmp_path, "feynman", "gplearn", 0.0)
    bench.append_row(path, dict(task, status="ok", exact=True, r2=1.0, wall_s=5.0))
    bench.append_row(path, dict(task, status="ok", exact=False, r2=0.5, wall_s=5.0))
    s = bench.report(tmp_path, "feynman", quiet=True)["budget=5"]["gplearn@0"]
    assert (s["fits"], s["exact"]) == (1, 1)
    assert "| I.6.2a | ✓ 1.000000 |" in (tmp_path / "table.md").read_text(encoding="utf-8")
