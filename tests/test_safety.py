"""Safety of the method packages against hostile input (issue 10).

* the whitelist formula parser and the TFormula reader refuse, within a second, texts that
  would make sympy or the recursive evaluators run forever or overflow the stack;
* model files: JSON nested too deeply, malformed fields, hostile formulas give one
  InputError naming the file and the field;
* exporters: text copied from a model file cannot break out of a C comment or a Tcl card;
* the same seed gives the same formulas (identical JSON) in separate processes with
  different hash seeds and torch thread counts (KAN, symbolic regression with a generation
  budget, symbolic density).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ariasim.errors import ConfigError, InputError
from ariasim.export import c_comment_text, latex_text, tcl_comment, tcl_text
from ariasim.export.tformula_eval import TFormulaExpression, evaluate_card_formula
from ariasim.surrogates.density import SymbolicDensity
from ariasim.surrogates.formula import Formula, Variable
from ariasim.surrogates.parse import FormulaSyntaxError, parse_expression
from ariasim.utils import read_json

SRC = Path(__file__).resolve().parents[1] / "src"


#: A hang guard, not a timing assertion (tests never assert timings): the hostile inputs
#: below ran for hours before the bounds; refused, they take milliseconds. The guard is
#: generous so that a loaded CI machine cannot fail it.
HANG_S = 30.0


def within(seconds: float, fn: Any) -> Any:
    """Run ``fn()`` in a daemon thread; fail if it has not finished after
    ``max(seconds, HANG_S)`` (``seconds`` documents the expected scale only).
    Returns its result or re-raises its exception."""
    seconds = max(seconds, HANG_S)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        pytest.fail(f"did not finish within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --------------------------------------------------------------------- parser bounds
HANGS = {
    "tower": "9^9^9",
    "issue": "10^10^10*pt",
    "tower5": "2^2^2^2^2^2",
    "pow": "pow(9, pow(9, 9))",
    "gamma": "gamma(100000000)",
    "loggamma": "loggamma(10^8)",
    "gamma-half": "gamma(-100000000 + 1/2)",
    "lowergamma": "lowergamma(1000000, pt)",
    "uppergamma": "uppergamma(5, 10^300)",
    "factorial": "factorial(100000000)",
    "big-int": "9" * 5000 + "*pt",
    "deep-parens": "(" * 100_000 + "pt" + ")" * 100_000,
    "deep-unary": "-" * 100_000 + "pt",
    "deep-calls": "exp(" * 1000 + "pt" + ")" * 1000,
    "coefficient": "(10^300*pt)^1000",
    "squares": "square(square(square(square(10^100))))",
    "product": "*".join(["10^300"] * 40) + "*pt",
    "float-overflow": "1e999*pt",
    "float-tower": "1e300^1e300",
    "exp-float": "exp(1e300)",
    "long": "+".join(["pt"] * 20_000),
    "tokens": "+".join(["1"] * 9_000),
}


@pytest.mark.parametrize("text", list(HANGS.values()), ids=list(HANGS))
def test_hostile_formula_text_refused_within_a_second(text: str) -> None:
    with pytest.raises(FormulaSyntaxError):
        within(1.0, lambda: parse_expression(text, ["pt"]))
    with pytest.raises(ConfigError):
        within(1.0, lambda: Formula(text, ["pt"]))


def test_error_message_is_short_and_says_what() -> None:
    with pytest.raises(FormulaSyntaxError, match=r"exponent too large.*at position 8") as e:
        parse_expression("10^10^10*pt", ["pt"])
    assert "at most 1000" in str(e.value)
    with pytest.raises(FormulaSyntaxError) as e:
        parse_expression("(" * 100_000 + "pt" + ")" * 100_000, ["pt"])
    assert len(str(e.value)) < 300


@pytest.mark.parametrize(
    "text",
    [
        "pt^1000",
        "pt^-1000",
        "2^1000*pt",
        "10^308",
        "2^-1000*pt",
        "gamma(170)",
        "loggamma(100)",
        "lowergamma(3, pt)",
        "(2*pt)^3/3",
        "exp(700.0)*pt",
        "+".join(f"pt^{k}" for k in range(1, 300)),
        "1.7976931348623157e308*pt",
        "(" * 90 + "pt" + ")" * 90,
    ],
)
def test_bounds_admit_ordinary_formulas(text: str) -> None:
    f = within(2.0, lambda: Formula(text, ["pt"]))
    # the printed text is read back to the same expression
    assert Formula(str(f), ["pt"]) == f


def test_model_file_names_file_and_field(tmp_path: Path) -> None:
    data = {"schema": "ariasim.formula/1", "expression": "10^10^10*pt", "variables": ["pt"]}
    with pytest.raises(InputError) as e:
        within(
            1.0,
            lambda: Formula.from_dict(
                data, source="model.json", field="objects.muon.efficiency[0].formula"
            ),
        )
    assert str(e.value).startswith(
        "file 'model.json', field 'objects.muon.efficiency[0].formula': exponent too large"
    )
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"f\.json', field 'expression': exponent too large"):
        within(1.0, lambda: Formula.load(path))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"expression": 3}, "expression"),
        ({"expression": "gamma(10^9)"}, "expression"),
        ({"variables": "pt"}, "variables"),
        ({"variables": [{"name": "pt", "low": "a", "high": 1}]}, "pt.low"),
        ({"variables": [{"name": "pt", "unit": ["GeV"]}]}, "pt.unit"),
        ({"variables": [{"name": "pt", "colour": "red"}]}, "variables"),
        ({"variables": ["pt", "pt"]}, "variables"),
        ({"variables": ["__import__"]}, None),
        ({"metadata": [1, 2]}, "metadata"),
    ],
)
def test_malformed_formula_fields(tmp_path: Path, change: dict, field: str | None) -> None:
    data = {"schema": "ariasim.formula/1", "expression": "2*pt", "variables": ["pt"], **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as e:
        within(1.0, lambda: Formula.load(path))
    assert str(e.value).startswith(f"file '{path}'")
    if field:
        assert f"field '{field}'" in str(e.value)


def test_density_file_fields() -> None:
    good = SymbolicDensity(
        param_model="poly",
        n_bins=4,
        min_per_bin=100,
        max_iter=0,
        variable_names=["d"],
        random_state=0,
    )
    rng = np.random.default_rng(0)
    d = rng.uniform(10, 100, 800)
    data = good.fit(d[:, None], rng.gamma(2.0, d / 10)).to_dict()
    assert SymbolicDensity.from_dict(json.loads(json.dumps(data))).params_ == good.params_
    for key, value, where in [
        ("n_components", 10**9, "density.n_components"),
        ("t_min", "zero", "density.t_min"),
        ("params", {"mu_0": 1}, "density.params"),
    ]:
        with pytest.raises(InputError, match=re.escape(f"field '{where}'")):
            within(
                1.0,
                lambda key=key, value=value: SymbolicDensity.from_dict(
                    {**data, key: value}, source="m.json", field="density"
                ),
            )
    # a shape parameter that would make sympy expand lowergamma(10000, .) term by term
    bad = json.loads(json.dumps(data))
    bad["params"]["log_q_0"]["expression"] = "log(1/100)"
    with pytest.raises(InputError, match="exceeds 200"):
        within(1.0, lambda: SymbolicDensity.from_dict(bad, source="m.json"))
    bad["params"]["log_q_0"]["expression"] = "10^10^10"
    with pytest.raises(InputError, match=r"field 'params\.log_q_0': exponent too large"):
        within(1.0, lambda: SymbolicDensity.from_dict(bad, source="m.json"))


# --------------------------------------------------------------------- JSON files
@pytest.mark.parametrize(
    "content, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ("[" * 65 + "]" * 65, "nested too deeply"),
        ("1" * 5000, "invalid JSON"),
        ('{"a": 1', "invalid JSON"),
    ],
)
def test_read_json_refuses_with_the_file_name(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(InputError, match=re.escape(message)) as e:
        within(1.0, lambda: read_json(path))
    assert str(e.value).startswith(f"file '{path}'")


def test_read_json_other_failures(tmp_path: Path) -> None:
    assert read_json(_write(tmp_path / "ok.json", "[" * 64 + "]" * 64)) is not None
    assert read_json(_write(tmp_path / "null.json", "null")) is None
    with pytest.raises(InputError, match="not UTF-8"):
        read_json(_write(tmp_path / "bin.json", b"\xff\xfe{"))
    with pytest.raises(InputError, match="is a folder"):
        read_json(tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_json(tmp_path / "missing.json")


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


# --------------------------------------------------------------------- TFormula reader
TF_HANGS = {
    "long-sum": "+".join(["pt"] * 5000),
    "long-product": "*".join(["pt"] * 5000),
    "deep-parens": "(" * 5000 + "pt" + ")" * 5000,
    "deep-unary": "-" * 5000 + "pt",
    "deep-not": "!" * 5000 + "pt",
    "deep-calls": "exp(" * 2000 + "pt" + ")" * 2000,
    "tower": "9^9^9",
    "too-long": "pt+" * 40_000 + "pt",
}


@pytest.mark.parametrize("text", list(TF_HANGS.values()), ids=list(TF_HANGS))
def test_hostile_card_formula_refused_within_a_second(text: str) -> None:
    with pytest.raises(ConfigError):
        within(1.0, lambda: TFormulaExpression.from_card(text))


def test_card_formula_bounds_admit_long_sums() -> None:
    text = "+".join(["pt"] * 1500)
    got = within(5.0, lambda: evaluate_card_formula(text, pt=np.array([1.0, 2.0])))
    np.testing.assert_array_equal(got, [1500.0, 3000.0])
    e = TFormulaExpression.from_card("(" * 250 + "pt" + ")" * 250)
    np.testing.assert_array_equal(e.reference(pt=np.array([3.0])), [3.0])
    # huge numbers are just floats here: no exact arithmetic, no hang
    assert np.isinf(within(1.0, lambda: evaluate_card_formula("9^(9^9)*pt", pt=1.0)))


# --------------------------------------------------------------------- exporters
EVIL_UNITS = [
    "m */ int evil(void) { return 1; } /*",
    "GeV\n#include <stdlib.h>\nint evil;",
    "*/\n#define return exit(1);\n/*",
    "m *\\/ ??/\n evil",
]


@pytest.mark.parametrize("unit", EVIL_UNITS)
def test_c_export_units_stay_in_the_comment(tmp_path: Path, unit: str) -> None:
    f = Formula("2*x + y", [Variable("x", unit=unit), "y"], output=Variable("z", unit=unit))
    code = f.to_c("f")
    stripped = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    assert "evil" not in stripped and "stdlib" not in stripped and "exit" not in stripped
    assert code.count("/*") == 1 and code.count("*/") == 1
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        src = tmp_path / "f.c"
        src.write_text(code + "int main(void) { return f(1.0, 2.0) == 4.0 ? 0 : 1; }\n")
        exe = tmp_path / "f"
        subprocess.run(
            [cc, "-std=c99", "-o", str(exe), str(src), "-lm"], check=True, capture_output=True
        )
        assert subprocess.run([str(exe)]).returncode == 0


def test_c_comment_text() -> None:
    for text in [*EVIL_UNITS, "/*/", "**//**", "\u202e", "a\x00b"]:
        out = c_comment_text(text)
        assert "*/" not in out and "/*" not in out
        assert all(" " <= ch <= "~" for ch in out)
    assert c_comment_text("GeV/c^2") == "GeV/c^2"


TCL_EVIL = [
    "x\nset ExecutionPath {}",
    "proc exit {} {}",
    "while {1} {}",
    "[exec rm -rf /]",
    "$env(HOME)",
    "a; set x 1",
    "a\\",
    'say "hi"',
    "}\nmodule Evil {",
    "x\rset y 1",
    "tab\there",
]


@pytest.mark.parametrize("text", TCL_EVIL)
def test_tcl_text_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="description"):
        tcl_text(text, what="description")
    comment = tcl_comment(text)
    assert comment.startswith("# ")
    assert not set(comment) & set('\n\r{}[]$;\\"\t')


def test_tcl_text_accepts_ordinary_text() -> None:
    for text in ["muon", "pt > 20 GeV && |eta| < 2.4", "efficiency (fit 3), 5%", ""]:
        assert tcl_text(text) == text
        assert tcl_comment(text) == f"# {text}"
    with pytest.raises(ConfigError):
        tcl_text(None)  # type: ignore[arg-type]


def test_latex_text_escapes() -> None:
    out = latex_text("50% of $E_T$ {x} \\input{/etc/passwd}\n#&~^")
    for raw in ("\\input", "{x}", "\n"):
        assert raw not in out
    assert re.search(r"(?<!\\)[$&#%]", out) is None  # each one escaped
    assert latex_text("GeV") == "GeV"


# --------------------------------------------------------------------- reproducibility
WORKER = r"""
import json, sys
import numpy as np
import torch

torch.set_num_threads(int(sys.argv[2]))
which = sys.argv[1]
rng = np.random.default_rng(2)
if which == "kan":
    from ariasim.surrogates.kan import KANRegressor
    X = rng.uniform(-1, 1, (400, 2))
    y = X[:, 0] ** 2 + np.sin(2 * X[:, 1]) + (0.05 + 0.05 * X[:, 0] ** 2) * rng.normal(size=400)
    m = KANRegressor(hidden=(2,), max_epochs=10, loss="gaussian", random_state=7).fit(X, y)
    out = {k: f.to_dict() for k, f in m.formulas_.items()}
elif which == "sr":
    from ariasim.surrogates.symbolic import SymbolicRegressor
    X = rng.uniform(1, 3, (200, 2))
    y = 2.5 * X[:, 0] ** 2 / X[:, 1] + 0.01 * rng.normal(size=200)
    m = SymbolicRegressor(generations=5, population_size=100, max_time=60, n_jobs=1,
                          random_state=3).fit(X, y)
    out = {"mean": m.formula_.to_dict(), "pareto": [str(f) for f in m.pareto_["formula"]]}
else:
    from ariasim.surrogates.density import SymbolicDensity
    d = rng.uniform(10, 100, 3000)
    t = rng.gamma(2.0, d / 10)
    m = SymbolicDensity(n_bins=20, min_per_bin=100, max_iter=30, generations=3, max_time=60,
                        variable_names=["d"], random_state=0).fit(d[:, None], t)
    out = m.to_dict()
print(json.dumps(out, sort_keys=True))
"""


@pytest.mark.parametrize("which", ["kan", "sr", "density"])
def test_same_seed_same_formulas_across_processes(which: str) -> None:
    """Two processes, different PYTHONHASHSEED and torch thread counts: identical JSON."""
    procs = []
    for hash_seed, threads in (("1", "1"), ("2", "2")):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, which, threads],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(out)
    first = json.loads(outs[0])
    assert first, "empty output"
    assert outs[0] == outs[1]
