"""Fast start of ``ariasim fastsim`` (issue 14, item 6): stored card formulas, compiled
without sympy, give the same simulation as the sympy path; the sympy-free back-end of the
whitelist parser agrees with the sympy one and refuses what it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ariasim.apps.collider.compiled import CARD_KEY, CompiledResponse, card_digest
from ariasim.apps.collider.fastsim import FastSimulator
from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.errors import InputError
from ariasim.surrogates import Formula, Variable
from ariasim.surrogates.parse import FormulaSyntaxError, parse_numeric

SRC = Path(__file__).resolve().parents[1] / "src"
PT = Variable("pt", unit="GeV", low=2.0, high=300.0)
ETA = Variable("eta")
ENERGY = Variable("energy", unit="GeV", low=1.0, high=1000.0)


def _regions(texts: list[str], variables: list[Variable], edges=(0.0, 1.5, 2.5)) -> list[Region]:
    return [
        Region(lo, hi, Formula(t, variables))
        for lo, hi, t in zip(edges[:-1], edges[1:], texts, strict=True)
    ]


def _model() -> ResponseModel:
    """A track and a calorimeter object with clamped variables and several regions."""
    mu = ObjectResponse(
        "muon",
        "track",
        (13,),
        2.5,
        efficiency=_regions(["0.97 - 0.5/pt", "0.9 - 0.01*eta^2"], [PT, ETA]),
        scale=_regions(["1.0 + 1e-4*log(pt)", "1.001"], [PT, ETA]),
        resolution=_regions(
            ["sqrt(0.01^2 + (2e-4*pt)^2)", "aq(0.02 + 3e-4*pt, 0.1*eta)"], [PT, ETA]
        ),
        sigma_eta=1e-3,
        sigma_phi=2e-3,
        mass_gev=0.1057,
    )
    ele = ObjectResponse(
        "electron",
        "calo",
        (11,),
        2.5,
        efficiency=_regions(["0.95*tanh(pt/5)", "0.9*sigmoid(pt - 4)"], [PT, ETA]),
        scale=_regions(["0.99", "0.98 + 0.001*eta^2"], [PT, ETA]),
        resolution=_regions(
            ["sqrt(0.3^2 + 0.05^2*energy + (0.01*energy)^2)", "0.07*sqrt(energy) + 0.2"],
            [ENERGY, ETA],
        ),
        sigma_eta=5e-4,
        mass_gev=0.000511,
    )
    return ResponseModel({"muon": mu, "electron": ele}, {"method": "hand-made"})


def _particles(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    from ariasim.simulators.collider import ParticleGun

    gun = ParticleGun(["mu-", "e-", "gamma"], pt_min_gev=1.0, pt_max_gev=400.0, log_pt=True)
    return gun.generate(n, seed=seed)


def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Bit-identical columns (floats compared as their bytes, NaN included)."""
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), c
        else:
            assert a[c].equals(b[c]), c


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return _model().save(tmp_path_factory.mktemp("start") / "response.json")


def test_stored_texts_give_the_sympy_paths_output(saved: Path) -> None:
    fast = CompiledResponse.load(saved)
    assert [(o.name, o.stored) for o in fast.objects] == [("muon", True), ("electron", True)]
    slow = CompiledResponse.load(saved, use_stored=False)
    assert not any(o.stored for o in slow.objects)
    parts = _particles()
    ref = FastSimulator(ResponseModel.load(saved))(parts, 7)
    assert 0 < ref["found"].sum() < len(parts)
    _same_table(FastSimulator(fast)(parts, 7), ref)
    _same_table(FastSimulator(slow)(parts, 7), ref)
    for a, b in zip(fast.objects, slow.objects, strict=True):
        assert [f.text for f in a.formulas] == [f.text for f in b.formulas]
    # the sympy model is built only on request, and is the file's model
    assert fast._model is None
    assert fast.model.to_dict() == ResponseModel.load(saved).to_dict()


def test_edited_or_old_files_take_the_sympy_path(saved: Path, tmp_path: Path) -> None:
    data = json.loads(saved.read_text())
    data["objects"]["muon"]["resolution"][0]["formula"]["expression"] = "0.05"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    fast = CompiledResponse.load(edited)
    assert [o.stored for o in fast.objects] == [False, True]
    parts = _particles(1000)
    _same_table(FastSimulator(fast)(parts, 1), FastSimulator(ResponseModel.load(edited))(parts, 1))
    # an entry the fast path does not know (e.g. a future response shape): the simulator
    # gets the full object response, read the slow way
    data["objects"]["muon"]["resolution"][0]["formula"]["expression"] = "0.01"
    data["objects"]["electron"]["future_entry"] = {"kind": "crystal-ball"}
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    fast = CompiledResponse.load(newer)
    assert [o.stored for o in fast.objects] == [False, False]
    assert isinstance(FastSimulator(fast)._compiled[1][0], ObjectResponse)
    for obj in data["objects"].values():
        del obj[CARD_KEY]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert not any(o.stored for o in CompiledResponse.load(old).objects)


def _forge(saved: Path, tmp_path: Path, edit) -> Path:
    """A file edited by ``edit`` with a digest recomputed to match (a hostile file)."""
    data = json.loads(saved.read_text())
    edit(data["objects"]["muon"])
    data["objects"]["muon"][CARD_KEY]["digest"] = card_digest(data["objects"]["muon"])
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (
            lambda o: o["efficiency"][0]["formula"].update(expression="9^9^9*pt"),
            "objects.muon.efficiency[0].formula.expression",
            "exponent too large",
        ),
        (
            lambda o: o["scale"][1]["formula"].update(expression="__import__('os')"),
            "objects.muon.scale[1].formula.expression",
            "unexpected character",
        ),
        (
            lambda o: o[CARD_KEY].update(efficiency="sqrt(pt"),
            "objects.muon.card_formulas.efficiency",
            "expected",
        ),
        (
            lambda o: o[CARD_KEY].update(resolution="0.01*phi"),
            "objects.muon.card_formulas.resolution",
            "phi",
        ),
        (
            lambda o: o[CARD_KEY].update(scale="1.0" + " + 1.0" * 20_000),
            "objects.muon.card_formulas.scale",
            "longer",
        ),
        (lambda o: o.update(mass_gev="heavy"), "objects.muon.mass_gev", "number"),
        (lambda o: o["scale"][1].update(eta_high=2.4), "objects.muon.scale", "acceptance"),
    ],
)
def test_hostile_stored_entries_are_refused_naming_the_field(
    saved: Path, tmp_path: Path, edit, field: str, message: str
) -> None:
    path = _forge(saved, tmp_path, edit)
    with pytest.raises(InputError, match=message) as e:
        CompiledResponse.load(path)
    assert e.value.path == str(path)
    assert e.value.field == field


def _run(code: str, stdin: str = "") -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_load_and_compile_without_sympy_or_torch(saved: Path) -> None:
    code = f"""
import sys
from ariasim.apps.collider.compiled import CompiledResponse
from ariasim.apps.collider.fastsim import FastSimulator
from ariasim.simulators.collider import ParticleGun
sim = FastSimulator(CompiledResponse.load({str(saved)!r}))
out = sim(ParticleGun(["mu-", "e-"]).generate(200, seed=1), 1)
heavy = sorted({{"sympy", "torch", "sklearn", "matplotlib", "dask"}} & set(sys.modules))
print(int(out["found"].sum()) > 0, heavy)
"""
    assert _run(code).split() == ["True", "[]"]


def test_fastsim_command_imports_no_sympy(saved: Path, tmp_path: Path) -> None:
    from ariasim.io import write_table

    parts = tmp_path / "truth.parquet"
    write_table(_particles(500), parts, producer="test")
    cmd = [sys.executable, "-X", "importtime", "-m", "ariasim", "fastsim", "-r", str(saved)]
    out = subprocess.run(
        [*cmd, "-i", str(parts), "-o", str(tmp_path / "fast.parquet")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert not {"sympy", "torch", "sklearn", "matplotlib", "dask"} & imported
    assert "ariasim.apps.collider.compiled" in imported


# ----------------------------------------------------------------- the numeric back-end

SR_LIKE = [  # Operon / PySR style
    "aq(0.31*pt, 1.7 + 0.02*eta^2) + square(log(pt)) * 1e-3",
    "exp(-0.5*square((eta - 0.3)/0.7)) * sqrt(abs(pt - 3.1)) / (1 + tanh(0.01*pt))",
    "max(0.01, min(0.5, 0.2*cbrt(pt) - atan2(eta, 2.0)))",
    "erf(pt/30) + erfc(eta) * Heaviside(eta - 0.5) + pow(pt, -1.5) + 2^(1/2)/pi",
    "loggamma(1 + pt/100) - gamma(1.5 + 0.1*eta) + lowergamma(2, pt/50)",
    "sin(eta)*cos(2*eta) - sinh(0.1*eta) + cosh(0.2*eta) + asin(eta/3) + acos(eta/4)",
    "uppergamma(2.5, pt/80) + ln(pt) - log(2)*E + 3/4*pt^-2 - -(-pt)^2/1e4",
]


def _kan_and_poly_formulas() -> list[Formula]:
    import torch

    from ariasim.surrogates import KANRegressor, PolynomialRegressor

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"pt": np.exp(rng.uniform(0.5, 5, 200)), "eta": rng.uniform(-2.5, 2.5, 200)})
    y = 0.01 + 0.3 / np.sqrt(X.pt) + 0.002 * X.eta**2 + rng.normal(0, 0.01, 200)
    with pytest.warns(UserWarning, match="stay numeric"):  # a KAN with numeric cubic edges
        kan = KANRegressor(hidden=(3,), max_epochs=10, random_state=0).fit(X, y).formula_
    poly = PolynomialRegressor().fit(X, y).formulas_
    return [kan, *poly.values()]


def _agree(f: Formula) -> None:
    text = f.to_dict()["expression"]  # what a model file holds
    back = Formula(text, f.variables)  # what the sympy path reads back
    num = parse_numeric(text, f.names)
    rng = np.random.default_rng(1)
    cols = {
        "pt": np.exp(rng.uniform(0.0, 6.0, 2000)),
        "eta": rng.uniform(-2.6, 2.6, 2000),
        "energy": np.exp(rng.uniform(0.0, 7.0, 2000)),
    }
    # a column per input (a KAN names them x0, x1: pt and eta)
    inputs = {k: cols.get(k, cols[("pt", "eta", "energy")[i]]) for i, k in enumerate(f.names)}
    a = num(**inputs)
    b = back(inputs)
    finite = np.isfinite(b)
    assert np.array_equal(finite, np.isfinite(a)), text[:80]
    scale = max(1.0, float(np.max(np.abs(b[finite]))))
    np.testing.assert_allclose(a[finite], b[finite], rtol=1e-12, atol=1e-12 * scale)


def test_numeric_backend_matches_sympy_on_kan_poly_and_sr_formulas() -> None:
    formulas = _kan_and_poly_formulas()
    assert formulas[0].complexity > 50  # a real KAN formula, not a toy
    formulas += [Formula(t, ["pt", "eta"]) for t in SR_LIKE]
    for f in formulas:
        _agree(f)


HOSTILE = [
    "9^9^9",
    "10^10^10*pt",
    "pow(9, pow(9, 9))",
    "gamma(100000000)",
    "gamma(-100000000 + 1/2)",
    "uppergamma(5, 10^300)",
    "factorial(100000000)",
    "9" * 5000 + "*pt",
    "(" * 100_000 + "pt" + ")" * 100_000,
    "exp(" * 1000 + "pt" + ")" * 1000,
    "(10^300*pt)^1000",
    "square(square(square(square(10^100))))",
    "*".join(["10^300"] * 40) + "*pt",
    "1e999*pt",
    "1e300^1e300",
    "exp(1e300)",
    "+".join(["1"] * 9_000),
    "1/0 + pt",
    "__import__('os').system('true')",
    "pt.__class__",
    "lambda: 1",
    "pt; 1",
    "eta",
]


def test_hostile_text_refused_by_both_backends_without_sympy() -> None:
    from ariasim.surrogates.parse import parse_expression

    for text in HOSTILE:
        with pytest.raises(FormulaSyntaxError):
            parse_expression(text, ["pt"])
    code = """
import json, sys
from ariasim.surrogates.parse import FormulaSyntaxError, parse_numeric
accepted = []
for text in json.load(sys.stdin):
    try:
        parse_numeric(text, ["pt"])
        accepted.append(text[:40])
    except FormulaSyntaxError:
        pass
print(json.dumps([accepted, "sympy" in sys.modules]))
"""
    assert json.loads(_run(code, json.dumps(HOSTILE))) == [[], False]
