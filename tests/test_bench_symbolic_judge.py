"""The SR benchmark's two exactness judges, and ``--rejudge`` of a stored run (no fits).

``exact`` is SRBench's rule with real symbols; ``exact_domain`` declares the variables of
strictly positive sampling ranges positive and accepts a constant squared ratio of one
sign on the test rows. Models equal to the truth on the sampling box only are exact on
the domain and not strictly; a wrong model, or one whose ratio to the truth flips sign on
the box, is exact under neither.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from benchload import load_bench

fd = load_bench("feynman_data")
bench = load_bench("bench_symbolic")
FIELD = {eq.name: eq for eq in fd.FIELD}


def _judges(name: str, model_text: str) -> tuple[tuple[bool, str], tuple[bool, str]]:
    """(strict, domain) judgements of ``model_text`` for the field equation ``name``."""
    eq = FIELD[name]
    model = sp.parse_expr(model_text, local_dict={n: sp.Symbol(n) for n in eq.names})
    truth = fd.truth_formula(eq).expression
    Xt = bench.make_data(eq, "field", 0.0, 0)[2]
    return (
        bench.exact_check(model, truth),
        bench.exact_domain_check(model, truth, eq.variables, Xt),
    )


@pytest.mark.parametrize(
    "name,model",
    [
        ("diffusion", "0.2821*sqrt(1/(D*t))*exp(-x**2/(4*D*t))"),  # D, t > 0
        ("power_law_cutoff", "N0*exp(gam*log(E0) - gam*log(En) - En/Ec)"),  # En, E0 > 0
        ("invariant_mass", "2*E1*sqrt(E2/E1)*sin(theta/2)"),  # sin(theta/2) > 0: squared
        ("invariant_mass", "-2*E1*sqrt(E2/E1)*sin(theta/2)"),  # ratio -1 everywhere
    ],
)
def test_equal_on_the_domain_only(name, model):
    strict, domain = _judges(name, model)
    assert strict == (False, "ok")
    assert domain == (True, "ok")


@pytest.mark.parametrize(
    "name,model",
    [
        ("diffusion", "0.2821*sqrt(1/(D*t))"),  # the exp is missing
        ("diffusion", "x/sqrt(x**2)*exp(-x**2/(4*D*t))/sqrt(4*pi*D*t)"),  # sign(x), x in (-3, 3)
        ("invariant_mass", "2*E1*sqrt(E2/E1)*sin(theta/2 - 0.8)"),  # square not constant
    ],
)
def test_wrong_or_sign_flipping_models_are_not_exact(name, model):
    strict, domain = _judges(name, model)
    assert strict == (False, "ok")
    assert domain == (False, "ok")


def test_one_sign_ratio_sees_a_flip():
    x, y = sp.symbols("x y", real=True)
    X = np.column_stack([np.linspace(-1, 1, 101) + 1e-3, np.linspace(1, 2, 101)])
    assert not bench.one_sign_ratio(sp.Abs(x) * y, x * y, [x, y], X)  # |x|/x flips at 0
    assert bench.one_sign_ratio(sp.Abs(x) * y, x * y, [x, y], X[X[:, 0] > 0])
    assert bench.one_sign_ratio(-3 * y, y, [x, y], X)  # a negative constant is one sign
    assert not bench.one_sign_ratio(x * sp.Symbol("z"), x, [x, y], X)  # unknown symbol


def test_strict_exact_and_failures_in_the_worker(monkeypatch):
    """run_fit adds both judges to a new row (a fake method stands in for the fit)."""
    eq = FIELD["diffusion"]
    names = {n: sp.Symbol(n, real=True) for n in eq.names}
    text = "0.2821*sqrt(1/(D*t))*exp(-x**2/(4*D*t))"

    def fake(eq_, X, y, budget, seed):
        model = sp.parse_expr(text, local_dict=names)
        f = sp.lambdify(list(names.values()), model, "numpy")
        return model, lambda X: f(*X.T), {}

    monkeypatch.setitem(bench.METHODS, "fake", lambda *a: fake(*a))
    task = bench.make_tasks("field", [eq], ["fake"], [0.0], [0], 1.0)[0]
    row = bench.run_fit(task)
    assert (row["exact"], row["exact_domain"], row["exact_domain_check"]) == (False, True, "ok")
    assert row["r2"] > 0.999999

    def boom(*a):
        raise RuntimeError("no fit")

    monkeypatch.setitem(bench.METHODS, "fake", boom)
    row = bench.run_fit(task)
    assert (row["status"], row["exact_domain"], row["exact_domain_check"]) == (
        "error",
        False,
        "no-model",
    )


def _row(name: str, method: str, model: str, exact: bool, status: str = "ok") -> dict:
    return {
        "set": "field", "equation": name, "method": method, "noise": 0.0, "seed": 0,
        "budget": 20.0, "status": status, "exact": exact, "r2": 0.9, "wall_s": 20.0,
        "model": model,
    }  # fmt: skip


def test_rejudge_a_stored_run_then_resume(tmp_path):
    rows = [
        _row("diffusion", "ariasim", "0.2821*sqrt(1/(D*t))*exp(-x**2/(4*D*t))", False),
        _row("diffusion", "gplearn", "sqrt(1/(D*t))", False),
        _row("beer_lambert", "ariasim", "I0*exp(-x/lam)", True),
        _row("diffusion", "pyoperon-defaults", "killed at 3x budget + 30 s", False, "timeout"),
        _row("highland", "ariasim", "x" * bench.MODEL_CHARS, False),  # cut when stored
        # a new-style row judges itself, even wrongly: it is never judged again
        {**_row("highland", "gplearn", "p", False), "exact_domain": True},
    ]
    for r in rows:
        bench.append_row(bench.store_file(tmp_path, r["set"], r["method"], r["noise"]), r)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.jsonl")}

    seen = []
    assert bench.rejudge(tmp_path, "field", 1, timeout=20, on_row=seen.append) == 5
    judged_path = tmp_path / bench.JUDGED_FILE
    lines = [json.loads(s) for s in judged_path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(seen) == 5
    got = {
        (j["equation"], j["method"]): (j["exact_domain"], j["exact_domain_check"]) for j in lines
    }
    assert got == {
        ("diffusion", "ariasim"): (True, "ok"),
        ("diffusion", "gplearn"): (False, "ok"),
        ("beer_lambert", "ariasim"): (True, "ok"),
        ("diffusion", "pyoperon-defaults"): (False, "no-model"),
        ("highland", "ariasim"): (False, "too-large"),
    }
    # the store's row files are untouched; a second run judges nothing new
    after = {p.name: p.read_bytes() for p in tmp_path.glob("*.jsonl") if p != judged_path}
    assert after == before
    text = judged_path.read_bytes()
    assert bench.rejudge(tmp_path, "field", 1, timeout=20) == 0
    assert judged_path.read_bytes() == text

    summary = bench.report(tmp_path, "field", quiet=True)["budget=20"]
    a = summary["ariasim@0"]
    assert (a["fits"], a["exact"], a["exact_domain"], a["exact_domain_unjudged"]) == (3, 1, 2, 0)
    g = summary["gplearn@0"]
    assert (g["exact"], g["exact_domain"]) == (0, 1)  # the row's own judgement wins
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert "| diffusion | ◐ 0.900000 | ✗ 0.900000 (timeout) | ✗ 0.900000 |" in table
    assert "| beer_lambert | ✓ 0.900000 |" in table
    saved = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert saved["summary"]["budget=20"]["ariasim@0"]["exact_domain"] == 2
