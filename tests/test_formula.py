"""Tests of the Formula object and its whitelist parser."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import sympy as sp

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates import Formula, FormulaSyntaxError, Variable, parse_expression
from ariasim.surrogates.formula import refit_constants

X, Y = sp.symbols("x y", real=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x^2", X**2),
        ("x**2", X**2),
        ("-x^2", -(X**2)),
        ("2^-1", sp.Rational(1, 2)),
        ("x^y^2", X ** (Y**2)),
        ("1 + 2*x - y/4", 1 + 2 * X - Y / 4),
        ("(1 + x) * y", (1 + X) * Y),
        ("exp(-x) + log(y)", sp.exp(-X) + sp.log(Y)),
        ("pow(x, 3) + square(y)", X**3 + Y**2),
        ("sqrt(x) * abs(y) + Abs(x)", sp.sqrt(X) * sp.Abs(Y) + sp.Abs(X)),
        ("1.5e-3 * x", sp.Float(1.5e-3) * X),
        (".5 + x", sp.Float(0.5) + X),
        ("pi * E", sp.pi * sp.E),
        ("aq(x, y)", X / sp.sqrt(1 + Y**2)),
        ("max(x, y) - min(x, 0)", sp.Max(X, Y) - sp.Min(X, 0)),
    ],
)
def test_parser_grammar(text, expected):
    got = parse_expression(text, ["x", "y"])
    assert sp.simplify(got - expected) == 0


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.__class__",
        "lambda: 1",
        "x; y",
        "open(x)",
        "eval(x)",
        "z + x",  # undeclared name
        "exp(x, y)",  # wrong arity
        "(x + y",  # unbalanced
        "x + ",  # dangling operator
        "x y",  # juxtaposition
        "'x'",
        "1/0",  # complex infinity
        "",
    ],
)
def test_parser_rejects(text):
    with pytest.raises(FormulaSyntaxError):
        parse_expression(text, ["x", "y"])


def test_parser_error_says_where():
    with pytest.raises(FormulaSyntaxError, match=r"unknown name 'zz'.*position 4"):
        parse_expression("x + zz", ["x"])
    with pytest.raises(FormulaSyntaxError, match=r"function 'system' is not allowed"):
        parse_expression("system(x)", ["x"])


def test_parser_limits_depth_and_length():
    with pytest.raises(FormulaSyntaxError, match="nested deeper"):
        parse_expression("(" * 500 + "x" + ")" * 500, ["x"])
    with pytest.raises(FormulaSyntaxError, match="longer than"):
        parse_expression("x+" * 20_000 + "x", ["x"])


def test_bad_variable_names():
    for bad in ["1x", "exp", "pi", "lambda", "a-b", ""]:
        with pytest.raises(ConfigError):
            Formula("1", [bad])
    with pytest.raises(ConfigError, match="duplicate"):
        Formula("x", ["x", "x"])
    with pytest.raises(ConfigError, match="undeclared"):
        Formula(X + Y, ["x"])
    with pytest.raises(ConfigError, match="low"):
        Variable("x", low=2.0, high=1.0)


@pytest.fixture
def yield_formula() -> Formula:
    return Formula(
        "n0 * exp(-d / 98.0) / (4 * pi * d^2) * (1 + 0.3 * cos_eta)",
        [Variable("d", unit="m", low=5, high=150), "cos_eta", Variable("n0", unit="photons")],
        output=Variable("n_hits", unit="photons"),
        metadata={"producer": "test", "score": {"r2": 0.999}, "arr": np.arange(2)},
    )


def test_evaluation_forms_agree(yield_formula):
    rng = np.random.default_rng(0)
    d, c, n0 = rng.uniform(5, 150, 100), rng.uniform(-1, 1, 100), rng.uniform(1, 1e6, 100)
    truth = n0 * np.exp(-d / 98.0) / (4 * np.pi * d**2) * (1 + 0.3 * c)
    np.testing.assert_allclose(yield_formula(np.column_stack([d, c, n0])), truth, rtol=1e-13)
    np.testing.assert_allclose(yield_formula(d=d, cos_eta=c, n0=n0), truth, rtol=1e-13)
    frame = pd.DataFrame({"n0": n0, "cos_eta": c, "d": d, "other": 1.0})
    np.testing.assert_allclose(yield_formula(frame), truth, rtol=1e-13)
    with pytest.raises(InputError, match="column 'n0'"):
        yield_formula(frame.drop(columns="n0"))
    with pytest.raises(InputError, match="shape"):
        yield_formula(np.ones((4, 2)))


def test_constant_formula_broadcasts():
    f = Formula("2.5", ["x"])
    assert np.array_equal(f(np.zeros((3, 1))), np.full(3, 2.5))


def test_json_round_trip_is_exact(tmp_path, yield_formula):
    assert len(yield_formula.constants) == 2
    f = yield_formula.with_constants([1 / 3, (0.1 + 0.2) / np.pi])
    g = Formula.from_json(f.to_json())
    assert g == f
    assert g.constants == f.constants  # bit-exact floats
    assert g.output.unit == "photons" and g.variables[0].high == 150
    assert g.metadata["score"] == {"r2": 0.999} and g.metadata["arr"] == [0, 1]
    path = f.save(tmp_path / "f.json")
    assert Formula.load(path) == f
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_json_loader_never_evaluates(tmp_path):
    good = Formula("x + 1", ["x"]).to_dict()
    bad = dict(good, expression="__import__('os').system('touch pwned')")
    p = tmp_path / "bad.json"
    p.write_text(__import__("json").dumps(bad))
    with pytest.raises(InputError, match=r"bad\.json"):
        Formula.load(p)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(InputError, match="schema"):
        Formula.from_dict({"expression": "x"})
    with pytest.raises(InputError, match="invalid JSON"):
        Formula.from_json("{nope")
    with pytest.raises(InputError, match="file not found"):
        Formula.load(tmp_path / "none.json")


def test_torch_matches_numpy(yield_formula):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.uniform(5, 150, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 1e3, 50)])
    module = yield_formula.torch()
    out = module(torch.tensor(x)).numpy()
    np.testing.assert_allclose(out, yield_formula(x), rtol=1e-12)
    f2 = Formula(
        "sqrt(abs(x)) * erf(x) + tanh(x) * gamma(x + 3) - max(x, 0.5) + atan2(x, 2)", ["x"]
    )
    xs = np.linspace(-2, 3, 11)
    np.testing.assert_allclose(f2.torch()(torch.tensor(xs)).numpy(), f2(xs[:, None]), rtol=1e-10)


def test_torch_trainable_constants_get_gradients(yield_formula):
    torch = pytest.importorskip("torch")
    module = yield_formula.torch(trainable=True)
    x = torch.tensor([[10.0, 0.5, 100.0]], dtype=torch.float64)
    module(x).sum().backward()
    assert module.raw.grad is not None
    assert torch.all(torch.isfinite(module.raw.grad))
    pre = yield_formula.torch(trainable=True, precondition=True)
    torch.testing.assert_close(pre.constants, module.constants)
    torch.testing.assert_close(pre(x), module(x))


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_code_compiles_and_agrees(tmp_path, yield_formula):
    src = yield_formula.to_c("nhits")
    main = src + (
        '#include <stdio.h>\nint main(void){printf("%.17g\\n", nhits(37.5, -0.25, 12345.0));'
        "return 0;}\n"
    )
    (tmp_path / "f.c").write_text(main)
    subprocess.run(
        ["cc", "-std=c99", "-O1", "-o", str(tmp_path / "f"), str(tmp_path / "f.c"), "-lm"],
        check=True,
    )
    out = float(
        subprocess.run([str(tmp_path / "f")], capture_output=True, text=True, check=True).stdout
    )
    assert out == pytest.approx(float(yield_formula(d=37.5, cos_eta=-0.25, n0=12345.0)), rel=1e-14)


def test_latex_and_str(yield_formula):
    assert yield_formula.latex().startswith("n_{hits} = ")
    assert "exp" in str(yield_formula)
    assert yield_formula.complexity > 10


def test_derivative_and_ranges():
    f = Formula("1 - exp(-t / 50.0)", [Variable("t", unit="ns", low=0, high=1000)], output="cdf")
    pdf = f.derivative("t", output="pdf")
    t = np.linspace(0, 500, 7)
    np.testing.assert_allclose(pdf(t[:, None]), np.exp(-t / 50.0) / 50.0, rtol=1e-12)
    assert pdf.output.name == "pdf"
    assert list(f.in_range(np.array([[-1.0], [10.0], [2000.0]]))) == [False, True, False]
    with pytest.raises(ConfigError, match="no input named"):
        f.derivative("x")


def test_refit_constants_recovers_truth():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 5.0, 400)
    sigma = 0.01
    y = 2.5 * np.exp(-0.7 * x) + 0.3 + rng.normal(0, sigma, x.size)
    start = Formula("1.0 * exp(-0.2 * x) + 0.1", ["x"])
    fit = refit_constants(start, x[:, None], y)
    c = sorted(fit.constants)
    # estimates must agree with the truth within 5 standard errors (errors from the fit's
    # Jacobian: sigma^2 (J^T J)^-1)
    J = np.column_stack([np.exp(-0.7 * x), -2.5 * x * np.exp(-0.7 * x), np.ones_like(x)])
    err = np.sqrt(np.diag(np.linalg.inv(J.T @ J))) * sigma
    truth = {2.5: err[0], -0.7: err[1], 0.3: err[2]}
    for value, (t, e) in zip(c, sorted(truth.items()), strict=True):
        assert abs(value - t) < 5 * e
    # weights: zero-weight outliers are ignored
    y_bad = y.copy()
    y_bad[:20] += 100.0
    w = np.ones_like(y)
    w[:20] = 0.0
    fit_w = refit_constants(start, x[:, None], y_bad, sample_weight=w)
    fit_cut = refit_constants(start, x[20:, None], y[20:])
    np.testing.assert_allclose(sorted(fit_w.constants), sorted(fit_cut.constants), rtol=1e-6)


def test_powers_of_the_incomplete_gamma_functions_evaluate_right():
    """SymPy's SciPy printer writes lowergamma(k, z) as gamma(k)*gammainc(k, z) without
    parentheses, so a power of it went wrong; the evaluation matches sympy's own."""
    t = np.array([0.4, 1.3, 5.0])
    for text in (
        "lowergamma(2.5, t)**2 / gamma(2.5)**2",
        "(1 - lowergamma(2.5, t) / gamma(2.5))**3 * uppergamma(1.5, t)**2",
    ):
        f = Formula(text, ["t"])
        want = [float(sp.N(f.expression.subs(sp.Symbol("t", real=True), v))) for v in t]
        np.testing.assert_allclose(f(t[:, None]), want, rtol=1e-12)
