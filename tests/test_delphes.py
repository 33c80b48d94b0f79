"""Delphes export: our TFormula evaluator, the sympy printer, the card writer and its lint.

The evaluator must reproduce every emitted formula exactly (up to float rounding), refuse
the known hand-made-card failure modes, and, when ROOT is importable, agree with ROOT's
own TFormula on every formula of a card.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from ariasim.apps.collider.delphes import (
    _region_texts,
    card_formulas,
    card_text,
    lint_card_formula,
    piecewise_eta,
    write_delphes_card,
)
from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.errors import ConfigError
from ariasim.export.tformula import (
    TFormulaError,
    TFormulaExpression,
    delphes_substitute,
    evaluate_card_formula,
    to_tformula,
)
from ariasim.surrogates.formula import Formula, Variable

PT, ETA, EN = sp.symbols("pt eta energy", real=True)
GRID_PT = np.geomspace(0.5, 2000.0, 23)
GRID_ETA = np.linspace(-3.0, 3.0, 25)


def _grid():
    p, h = np.meshgrid(GRID_PT, GRID_ETA, indexing="ij")
    return p.ravel(), h.ravel(), 2.5 * p.ravel() * np.cosh(h.ravel()) / 2.0


def _f(expr, names=("pt", "eta"), lo=1.0, hi=300.0):
    vs = [
        Variable(
            n,
            unit="GeV" if n != "eta" else "",
            low=None if n == "eta" else lo,
            high=None if n == "eta" else hi,
        )
        for n in names
    ]
    return Formula(expr, vs)


def toy_model() -> ResponseModel:
    mu = ObjectResponse(
        "muon",
        "track",
        (13,),
        2.4,
        efficiency=[
            Region(0.0, 1.2, _f("0.98 - 0.02*exp(-pt/5.0)")),
            Region(1.2, 2.4, _f("0.96 - 0.01*abs(eta) - 0.03*exp(-pt/4.0)")),
        ],
        scale=[Region(0.0, 2.4, _f("1.0 + 0.0001*eta^2"))],
        resolution=[Region(0.0, 2.4, _f("sqrt(0.008^2 + (1.2e-4*pt)^2)*(1 + 0.2*eta^2)"))],
        sigma_eta=3e-4,
        sigma_phi=2e-4,
        mass_gev=0.10566,
    )
    ph = ObjectResponse(
        "photon",
        "calo",
        (22,),
        2.5,
        efficiency=[Region(0.0, 2.5, _f("0.9/(1 + exp(-(pt - 2.0)))"))],
        scale=[Region(0.0, 2.5, _f("0.99 + 0.001*log(energy)", ("eta", "energy"), 1.0, 3000.0))],
        resolution=[
            Region(
                0.0,
                1.5,
                _f(
                    "sqrt(0.03^2*energy + (0.005*energy)^2 + 0.2^2)", ("eta", "energy"), 1.0, 3000.0
                ),
            ),
            Region(
                1.5,
                2.5,
                _f(
                    "(1 + 0.3*abs(eta))*sqrt(0.05^2*energy + 0.3^2)", ("eta", "energy"), 1.0, 3000.0
                ),
            ),
        ],
        sigma_eta=0.002,
        sigma_phi=0.002,
    )
    return ResponseModel({"muon": mu, "photon": ph}, {"source": "toy"})


# --------------------------------------------------------------------------- evaluator


def test_stock_cms_formula_values():
    text = (
        "(abs(eta) <= 0.5) * (pt > 0.1) * sqrt(0.01^2 + pt^2*1.0e-4^2) +\n"
        "(abs(eta) > 0.5 && abs(eta) <= 1.5) * (pt > 0.1) * sqrt(0.015^2 + pt^2*1.5e-4^2) +\n"
        "(abs(eta) > 1.5 && abs(eta) <= 2.5) * (pt > 0.1) * sqrt(0.025^2 + pt^2*3.5e-4^2)"
    )
    pt = np.array([0.05, 10.0, 100.0, 50.0, 50.0])
    eta = np.array([0.1, 0.2, -1.0, 2.0, 2.6])
    expect = np.array(
        [0.0, np.hypot(0.01, 1e-3), np.hypot(0.015, 1.5e-2), np.hypot(0.025, 50 * 3.5e-4), 0.0]
    )
    np.testing.assert_allclose(evaluate_card_formula(text, pt, eta), expect, rtol=1e-15)


def test_operators_and_functions():
    e = lambda t, **k: float(evaluate_card_formula(t, **k))  # noqa: E731
    assert e("2 < 3") == 1.0 and e("3 <= 2") == 0.0 and e("1 == 1") == 1.0 and e("1 != 1") == 0.0
    assert e("(1 > 0) && (0 > 1)") == 0.0 and e("(1 > 0) || (0 > 1)") == 1.0 and e("!(1)") == 0.0
    assert e("1 + 2*3 > 6 && 1") == 1.0  # arithmetic before comparison before &&
    assert e("-2^2") == -4.0  # ^ binds tighter than unary minus (ROOT: -pow(2,2))
    assert e("2^-1") == 0.5
    assert (
        e("TMath::Power(2, 10) + pow(3, 2) + TMath::Sqrt(16) + TMath::Abs(-1)") == 1024 + 9 + 4 + 1
    )
    assert e("TMath::Max(1, 2) + TMath::Min(1, 2) + TMath::Pi()") == pytest.approx(3 + np.pi)
    assert e("log(exp(2)) + log10(100) + TMath::TanH(0)") == pytest.approx(4.0)
    assert e("energy / pt", pt=2.0, energy=3.0) == 1.5
    assert e("phi", phi=0.25) == 0.25


def test_delphes_substitution_is_textual():
    assert delphes_substitute("sqrt(pt^2) * abs(eta) + phi + energy") == "sqrt(x^2)*abs(y)+z+t"
    assert delphes_substitute("theta") == "thy"  # why other identifiers must not contain eta
    assert delphes_substitute("ptmin") == "xmin"


@pytest.mark.parametrize(
    "bad, why",
    [
        ("energy^0.01^2", "chained power"),
        ("sqrt(energy^2*0.01^2^2)", "chained power"),
        ("theta + 1", "contains 'eta'"),
        ("ptmin * 2", "contains 'pt'"),
        ("sigma_phi", "contains 'phi'"),
        ("x * 2", "alias"),
        ("0.5 < abs(eta) < 1.5", "chained comparison"),
        ("__import__('os')", "unknown identifier"),
        ("open(pt)", "unknown"),
        ("sqrt(pt, eta)", "argument"),
        ("(pt + 1", "expected ')'"),
        ("d0 * 2", "contains 'd0'"),
    ],
)
def test_refuses_known_failure_modes(bad, why):
    with pytest.raises(TFormulaError, match=re.escape(why)):
        TFormulaExpression.from_card(bad)


# --------------------------------------------------------------------------- printer


EXPRESSIONS = [
    sp.sqrt(sp.Float(0.008) ** 2 + (sp.Float(1.2e-4) * PT) ** 2),
    sp.Float(0.97) - sp.Float(0.05) * sp.exp(-PT / sp.Float(3.7)) - sp.Float(0.01) * ETA**2,
    1 / (1 + sp.exp(-(sp.Float(0.8) * sp.log(PT) - sp.Float(1.3)))),
    sp.Abs(ETA) ** sp.Float(1.7) * sp.tanh(PT / 50) + PT**-2 + sp.Rational(1, 3),
    sp.Max(sp.Min(PT, sp.Float(300.0)), sp.Float(1.0)) ** sp.Rational(3, 2) / (ETA**2 + 1),
    sp.sqrt(sp.Float(0.11) ** 2 * EN + (sp.Float(0.008) * EN) ** 2 + sp.Float(0.4) ** 2)
    * (1 + sp.Float(0.64) * ETA**2),
    -sp.Float(2.5) * sp.cos(ETA) * sp.sin(ETA) + sp.erf(PT / 10) - sp.pi,
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=range(len(EXPRESSIONS)))
def test_round_trip_sympy_text_value(expr):
    text = to_tformula(expr)
    assert "^" not in re.sub(r"\)\^\(", "", text), text  # every power as (base)^(exponent)
    pt, eta, en = _grid()
    ours = evaluate_card_formula(text, pt, eta, 0.0, en)
    ref = sp.lambdify((PT, ETA, EN), expr, modules=["scipy", "numpy"])(pt, eta, en)
    np.testing.assert_allclose(ours, np.broadcast_to(ref, ours.shape), rtol=1e-13, atol=1e-300)


def test_printer_refuses_other_variables():
    with pytest.raises(TFormulaError, match="Delphes"):
        to_tformula(sp.Symbol("theta") + PT)
    # a mapping renames model inputs onto card variables
    assert to_tformula(sp.Symbol("truth_pt") * 2, {"truth_pt": "pt"}) == "(2.0*pt)"


# --------------------------------------------------------------------------- lint


def test_lint_catches_overlap_gap_and_ranges():
    ok = (
        "(abs(eta) <= 1.5) * (0.9) + (abs(eta) > 1.5 && abs(eta) <= 2.5) * (0.8)"
        " + (abs(eta) > 2.5) * (0.0)"
    )
    lint_card_formula(ok, "Efficiency", eta_max=2.5)
    overlap = ok.replace("abs(eta) > 1.5 &&", "abs(eta) > 1.4 &&")
    with pytest.raises(TFormulaError, match="overlap"):
        lint_card_formula(overlap, "Efficiency", eta_max=2.5)
    gap = ok.replace("abs(eta) > 1.5 &&", "abs(eta) > 1.6 &&")
    with pytest.raises(TFormulaError, match="gap"):
        lint_card_formula(gap, "Efficiency", eta_max=2.5)
    with pytest.raises(TFormulaError, match="probability"):
        lint_card_formula("0.9 + 0.001*pt", "Efficiency", eta_max=2.5)
    with pytest.raises(TFormulaError, match="MomentumSmearing"):  # absolute resolution given
        lint_card_formula("sqrt(0.5^2 + (0.01*pt)^2)", "MomentumSmearing", eta_max=2.5)
    with pytest.raises(TFormulaError, match="only"):  # calorimeter: eta and energy only
        lint_card_formula("0.1*sqrt(pt)", "EnergySmearing", eta_max=2.5)
    lint_card_formula(
        "(1+0.64*eta^2) * sqrt(energy^2*0.008^2 + energy*0.11^2 + 0.40^2)",
        "ResolutionFormula",
        eta_max=2.5,
    )


def test_regions_must_tile_acceptance():
    f = _f("0.9")
    with pytest.raises(ConfigError, match="overlap"):
        ObjectResponse(
            "muon",
            "track",
            (13,),
            2.4,
            [Region(0, 1.5, f), Region(1.4, 2.4, f)],
            [Region(0, 2.4, f)],
            [Region(0, 2.4, _f("0.01"))],
        )
    with pytest.raises(ConfigError, match="gap"):
        ObjectResponse(
            "muon",
            "track",
            (13,),
            2.4,
            [Region(0, 1.5, f), Region(1.6, 2.4, f)],
            [Region(0, 2.4, f)],
            [Region(0, 2.4, _f("0.01"))],
        )
    with pytest.raises(ConfigError, match="acceptance"):
        ObjectResponse(
            "muon",
            "track",
            (13,),
            2.4,
            [Region(0, 2.0, f)],
            [Region(0, 2.4, f)],
            [Region(0, 2.4, _f("0.01"))],
        )
    with pytest.raises(ConfigError, match="only"):  # calorimeter resolution of pt
        ObjectResponse(
            "photon",
            "calo",
            (22,),
            2.4,
            [Region(0, 2.4, f)],
            [Region(0, 2.4, f)],
            [Region(0, 2.4, _f("0.01*pt"))],
        )


# --------------------------------------------------------------------------- card


def test_card_formulas_reproduce_model():
    model = toy_model()
    pt, eta, en = _grid()
    for obj in model.objects.values():
        cf = card_formulas(obj)
        a = np.abs(eta)
        for q, text in (
            ("efficiency", cf.efficiency),
            ("scale", cf.scale),
            ("resolution", cf.resolution),
        ):
            got = evaluate_card_formula(text, pt, eta, 0.0, en)
            want = np.zeros_like(pt) if q != "scale" else np.ones_like(pt)
            for r in getattr(obj, q):
                sel = (a <= r.eta_high) & ((a > r.eta_low) if r.eta_low > 0 else True)
                cols = {
                    "pt": np.clip(pt, 1.0, 300.0) if r.formula.variables[0].name == "pt" else pt,
                    "eta": eta,
                    "energy": np.clip(en, 1.0, 3000.0),
                }
                v = r.formula({n: cols[n] for n in r.formula.names})
                if q == "efficiency":
                    v = np.clip(v, 0.0, 1.0)
                want[sel] = v[sel]
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{obj.name} {q}")


def test_card_is_complete_and_consistent(tmp_path):
    model = toy_model()
    path = write_delphes_card(model, tmp_path / "card.tcl", modules_path=tmp_path / "mods.tcl")
    text = path.read_text()
    m = re.search(r"set ExecutionPath \{(.*?)\}", text, re.S)
    assert m
    path_names = m.group(1).split()
    defined = re.findall(r"^module (\w+) (\w+) \{", text, re.M)
    assert [n for _, n in defined] == path_names  # every module runs, in order
    assert path_names[0] == "ParticlePropagator" and path_names[-1] == "TreeWriter"
    for needed in (
        "Efficiency",
        "EnergyScale",
        "MomentumSmearing",
        "EnergySmearing",
        "AngularSmearing",
        "UniqueObjectFinder",
        "PdgCodeFilter",
    ):
        assert needed in {t for t, _ in defined}
    # every InputArray refers to an earlier module's output (or Delphes' own arrays)
    seen = {"Delphes"}
    for block in re.finditer(r"^module (\w+) (\w+) \{(.*?)^\}", text, re.M | re.S):
        for src in re.findall(r"(?:InputArray|Branch) (\w+)/\w+", block.group(3)):
            assert src in seen, (block.group(2), src)
        seen.add(block.group(2))
    assert text.count("{") == text.count("}")
    mods = (tmp_path / "mods.tcl").read_text()
    assert "ExecutionPath" not in mods
    assert "module MomentumSmearing AriasimMuonMomentumSmearing" in mods
    # spliced into Delphes' stock CMS card, no per-object module may reuse a stock name
    # (Delphes keeps the first and lets the later `set` lines overwrite its settings)
    stock_cms = {
        "MuonEfficiency", "ElectronEfficiency", "PhotonEfficiency", "MuonMomentumSmearing",
        "ChargedHadronMomentumSmearing", "ElectronMomentumSmearing", "ElectronFilter",
        "PhotonFilter", "ChargedHadronTrackingEfficiency", "MuonTrackingEfficiency",
    }  # fmt: skip
    assert not stock_cms & set(re.findall(r"^module \w+ (\w+) \{", mods, re.M))
    # every formula in the card parses and passes the module's lint
    for key, module in (("EfficiencyFormula", "Efficiency"), ("ScaleFormula", "EnergyScale")):
        for f in re.findall(rf"set {key} \{{(.*?)\}}\n", text, re.S):
            lint_card_formula(f, module, eta_max=2.5)


def test_response_model_json_round_trip(tmp_path):
    model = toy_model()
    p = model.save(tmp_path / "r.json")
    back = ResponseModel.load(p)
    assert card_text(back) == card_text(model)


# --------------------------------------------------------------------------- ROOT


def test_root_tformula_agrees():
    ROOT = pytest.importorskip("ROOT")
    model = toy_model()
    pt, eta, en = _grid()
    texts = []
    for obj in model.objects.values():
        cf = card_formulas(obj)
        texts += [cf.efficiency, cf.scale, cf.resolution, cf.sigma_eta]
    texts += [to_tformula(e) for e in EXPRESSIONS]
    # a calorimeter resolution in two pieces in E (compact's split_in_energy)
    split = _f(
        "Heaviside(20.5 - energy)*(0.1*energy*(1 + 0.2*eta^2)) + "
        "Heaviside(energy - 20.5)*sqrt(0.05^2*energy + (0.01*energy)^2)",
        ("eta", "energy"),
        1.0,
        3000.0,
    )
    texts.append(piecewise_eta(_region_texts([Region(0.0, 2.5, split)]), 2.5))
    assert "(energy < 20.5) * (" in texts[-1] and "(energy >= 20.5) * (" in texts[-1]
    texts.append(
        "(abs(eta) <= 0.5) * (pt > 0.1) * sqrt(0.01^2 + pt^2*1.0e-4^2) + -2^2 + 2^-1 + (1 < 2 && "
        "3 > 2)"
    )
    for k, text in enumerate(texts):
        sub = delphes_substitute(text)
        f = ROOT.TFormula(f"ariasim_f{k}", sub)
        assert f.IsValid(), sub
        ours = evaluate_card_formula(text, pt, eta, 0.0, en)
        root = np.array(
            [f.Eval(float(p), float(h), 0.0, float(e)) for p, h, e in zip(pt, eta, en, strict=True)]
        )
        np.testing.assert_allclose(ours, root, rtol=1e-12, atol=1e-300, err_msg=text)


# --------------------------------------------------------------------------- compiled evaluator
#
# TFormulaExpression.__call__ evaluates a compiled form of the AST (constants folded,
# repeated sub-expressions computed once, in-place temporaries, chunks of CHUNK elements);
# TFormulaExpression.reference walks the AST node by node. They use the same ufuncs in the
# same order per element, so their values must be bit-identical (NaN where NaN).

EDGE_FORMULAS = [
    "(abs(eta) > 1) * 2.0 + !(pt < 3) - (1 < 2 && pt >= 10 || eta == 0) + !(0.0) * (phi != 0)",
    "pow(pt, 2.0) + pt^2 + (pt^2)^0.5 + pt^(-1) + TMath::Power(energy, 0.3) - sqrt(pt)*sqrt(pt)",
    "log(pt) / log(pt) + exp(-energy) * (energy > 1e3) + log10(eta) + 1/(eta - eta)",
    "TMath::Min(TMath::Max(pt, 2.0), 300.0) * (abs(eta) <= 2.5) + -(-eta) + +phi + 3^2",
    "TMath::Erf(eta) + erf(2.0) + tanh(pt) * cosh(eta) - sinh(eta) + atan(phi) + tan(0.3)",
    "((abs(eta) <= 1.5) || (pt > 20)) && !(abs(eta) > 2.5) || (energy == energy)",
    "0.25",
    "pt",
    "2.0 * TMath::Pi() + sin(1.0) * cos(2.0) + (3 > 2) * (1 && 0)",
]


def _random_inputs(n, seed):
    rng = np.random.default_rng(seed)
    pt = np.exp(rng.uniform(np.log(0.05), np.log(5e3), n))
    eta = rng.uniform(-4.0, 4.0, n)
    eta[:5] = [0.0, 2.5, -2.5, 1.5, np.nan]  # region edges, NaN
    phi = rng.uniform(-np.pi, np.pi, n)
    en = pt * np.cosh(np.nan_to_num(eta)) * rng.uniform(0.5, 2.0, n)
    return pt, eta, phi, en


def _assert_compiled_equals_reference(text, args):
    e = TFormulaExpression.from_card(text)
    got, want = e(*args), e.reference(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want, err_msg=text)


def test_compiled_evaluator_equals_reference():
    from ariasim.export.tformula import CHUNK

    args = _random_inputs(2 * CHUNK + 123, 0)  # several chunks and a partial one
    texts = list(EDGE_FORMULAS) + [to_tformula(e) for e in EXPRESSIONS]
    for obj in toy_model().objects.values():
        cf = card_formulas(obj)
        texts += [cf.efficiency, cf.scale, cf.resolution, cf.sigma_eta, cf.sigma_phi]
    for text in texts:
        _assert_compiled_equals_reference(text, args)
        _assert_compiled_equals_reference(text, (2.0, 0.5, 0.1, 7.0))  # scalars -> 0-d
        p, h = np.meshgrid(args[0][:7], args[1][:5], indexing="ij")  # broadcasting, 2-D
        _assert_compiled_equals_reference(text, (p, h, 0.0, p * 1.5))
        _assert_compiled_equals_reference(text, (np.zeros(0),) * 4)
    # repeated sub-expressions are computed once per chunk and not overwritten in place
    text = "-(log(pt)) + log(pt) * 2.0 + exp(log(pt)) - exp(log(pt)) + -(-(log(pt)))"
    _assert_compiled_equals_reference(text, args)
    np.testing.assert_allclose(
        TFormulaExpression.from_card(text)(args[0]), 2 * np.log(args[0]), rtol=1e-12, atol=1e-12
    )


# --------------------------------------------------------------------------- fast simulation


def _reference_fastsim(model, particles, seed):
    """The fast simulation written plainly (one NumPy statement per Delphes step, the
    reference formula evaluator), for comparison with the optimised
    :mod:`ariasim.apps.collider.fastsim`."""
    import pandas as pd

    from ariasim.apps.collider.fastsim import OUTPUT_COLUMNS, truth_columns

    rng = np.random.default_rng(seed)
    truth = truth_columns(particles)
    n = len(truth)
    pt, eta, phi, e = (
        truth[c].to_numpy(float) for c in ("truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev")
    )
    apdg = np.abs(truth["pdg"].to_numpy(np.int64))
    otype = np.full(n, "none", dtype=object)
    rpt, reta, rphi, re_ = (np.full(n, np.nan) for _ in range(4))
    found, is_track = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for obj in model.objects.values():
        cf = card_formulas(obj)
        f_eff, f_scale, f_res, f_seta, f_sphi = (
            TFormulaExpression.from_card(t).reference
            for t in (cf.efficiency, cf.scale, cf.resolution, cf.sigma_eta, cf.sigma_phi)
        )
        idx = np.flatnonzero(np.isin(apdg, obj.pdg))
        p, h, ph, en = pt[idx], eta[idx], phi[idx], e[idx]
        keep = rng.random(idx.size) <= f_eff(p, h, ph, en)
        idx, p, h, ph, en = idx[keep], p[keep], h[keep], ph[keep], en[keep]
        s = f_scale(p, h, ph, en)
        s = np.where(s > 0.0, s, 1.0)
        p, en = p * s, en * s
        m = obj.mass_gev
        with np.errstate(all="ignore"):
            if obj.kind == "track":
                sig = np.minimum(f_res(p, h, ph, en), 1.0) * p
                b = np.sqrt(np.log1p((sig / p) ** 2))
                a = np.log(p) - 0.5 * b * b
                p = np.where(p > 0, np.exp(a + b * rng.standard_normal(idx.size)), 0.0)
                en = np.sqrt((p * np.cosh(h)) ** 2 + m * m)
            else:
                en = en + f_res(p, h, ph, en) * rng.standard_normal(idx.size)
                p = np.where(en > m, np.sqrt(np.maximum(en * en - m * m, 0.0)) / np.cosh(h), 0.0)
        h2 = h + f_seta(p, h, ph, en) * rng.standard_normal(idx.size)
        ph2 = (
            np.mod(ph + f_sphi(p, h, ph, en) * rng.standard_normal(idx.size) + np.pi, 2 * np.pi)
            - np.pi
        )
        en = np.sqrt((p * np.cosh(h2)) ** 2 + m * m)  # AngularSmearing: SetPtEtaPhiM
        ok = p > 0.0  # AngularSmearing drops pT <= 0
        idx = idx[ok]
        otype[idx], found[idx], is_track[idx] = obj.name, True, obj.kind == "track"
        rpt[idx], reta[idx], rphi[idx], re_[idx] = p[ok], h2[ok], ph2[ok], en[ok]
    trk, calo = found & is_track, found & ~is_track
    out = {}
    for col, dt in OUTPUT_COLUMNS.items():
        if col in truth:
            out[col] = truth[col].to_numpy().astype(dt if dt != "str" else object)
        elif dt == "float64":
            out[col] = np.full(n, np.nan)
        elif dt == "int64":
            out[col] = np.full(n, 0 if col == "n_muon_stations" else -1, dtype=np.int64)
        else:
            out[col] = np.zeros(n, dtype=bool)
    out.update(
        object_type=pd.array(otype, dtype="str"),
        found=found,
        reco_pt_gev=rpt,
        reco_eta=reta,
        reco_phi=rphi,
        reco_e_gev=re_,
        track_found=trk,
        track_pt_gev=np.where(trk, rpt, np.nan),
        track_eta=np.where(trk, reta, np.nan),
        track_phi=np.where(trk, rphi, np.nan),
        cluster_energy_gev=np.where(calo, re_, np.nan),
        track_charge=np.where(trk, truth["truth_charge"].to_numpy(np.int64), 0),
    )
    return pd.DataFrame(out)


def _overlapping_model() -> ResponseModel:
    """toy_model plus a calorimeter object that also claims muons (13): the later object
    overrides the earlier one for particles both reconstruct."""
    base = toy_model()
    ph = base.objects["photon"]
    mucalo = ObjectResponse(
        "mu_calo",
        "calo",
        (13, 22),
        ph.eta_max,
        ph.efficiency,
        ph.scale,
        ph.resolution,
        sigma_eta=ph.sigma_eta,
        sigma_phi=ph.sigma_phi,
        mass_gev=0.10566,
    )
    return ResponseModel({**base.objects, "mu_calo": mucalo}, {"source": "toy"})


@pytest.mark.parametrize("make_model", [toy_model, _overlapping_model])
def test_fastsim_equals_plain_reference(make_model):
    import pandas as pd

    from ariasim.apps.collider.fastsim import fastsim
    from ariasim.simulators.collider import ParticleGun

    model = make_model()
    gun = ParticleGun(
        ["mu-", "mu+", "gamma", "e-"], 0.5, 500.0, log_pt=True, eta_min=-3.0, eta_max=3.0
    )
    parts = gun.generate(30_000, 1)
    parts.index = np.arange(len(parts)) * 3 + 7  # a non-default index: output is 0..n-1
    fast = fastsim(parts, model, seed=3)
    want = _reference_fastsim(model, parts, 3)
    # same random numbers in the same order, same formula values: bit-identical
    pd.testing.assert_frame_equal(fast, want, check_exact=True)
    assert set(fast["object_type"]) == {"none", *model.objects}
    # copy-on-write: the unmodelled columns share one array, writing one changes only it;
    # the truth columns share the input's, writing either side leaves the other unchanged
    fast.loc[0, "ecal_energy_gev"] = 1.0
    assert fast["hcal_energy_gev"].isna().all() and fast.loc[0, "ecal_energy_gev"] == 1.0
    fast.loc[0, "truth_pt_gev"] = -1.0
    assert parts["pt_gev"].iloc[0] > 0.0
    parts.iloc[1, parts.columns.get_loc("pt_gev")] = -2.0
    assert fast.loc[1, "truth_pt_gev"] > 0.0


# --------------------------------------------------------------------------- piecewise sums
#
# A sum of ``(condition) * (value)`` terms over disjoint |eta| intervals is evaluated region
# by region (each value only on its rows). Where every other term is finite this equals
# the literal sum (TFormulaExpression.reference) exactly; where another term is inf/NaN,
# the literal sum is NaN and the region-wise value is the region's own.

PW_EDGES = (1.4, 1.7, 2.5)
PW_VALUES = (
    "0.9 - 0.01*log(TMath::Max(pt, 1.0)) * TMath::Min(1.4, abs(eta))",
    "0.8 + 0.02*TMath::Min(1.7, TMath::Max(1.4, abs(eta)))^2 / sqrt(TMath::Max(energy, 1.0))",
    "0.7 + 0.001*TMath::Min(300.0, TMath::Max(pt, 1.0))*TMath::Min(2.5, TMath::Max(1.7, abs(eta)))",
)
PW_TEXT = (
    f"(abs(eta) <= 1.4) * ({PW_VALUES[0]}) + "
    f"(abs(eta) > 1.4 && abs(eta) <= 1.7) * ({PW_VALUES[1]}) +\n"
    f"(abs(eta) > 1.7 && abs(eta) <= 2.5) * ({PW_VALUES[2]}) + (abs(eta) > 2.5) * (1.0)"
)


def _pw_inputs(n, seed):
    from ariasim.export.tformula import CHUNK

    pt, eta, phi, en = _random_inputs(max(n, 2 * CHUNK + 77), seed)
    edges = [s * e for e in (0.0, *PW_EDGES) for s in (1.0, -1.0)]
    edges += [np.nextafter(e, np.inf) for e in PW_EDGES] + [np.nextafter(e, 0) for e in PW_EDGES]
    edges += [2.6, -3.9, 7.0, np.inf, -np.inf, np.nan]  # beyond the acceptance, non-finite
    eta[5 : 5 + len(edges)] = edges
    return pt, eta, phi, en


@pytest.mark.parametrize(
    "text, n_regions",
    [
        (PW_TEXT, 4),
        # value * condition, and condition * a * b (the stock CMS form: value a * b), no
        # term beyond 2.5 (those rows, and NaN, are evaluated as written: 0 or NaN)
        (
            "(abs(eta) <= 1.4) * (pt > 0.1) * sqrt(0.01^2 + pt^2*1.0e-4^2) + "
            "(1.4 < abs(eta) && 1.7 >= abs(eta)) * (pt > 0.1) * sqrt(0.015^2 + pt^2*1.5e-4^2) + "
            "sqrt(0.025^2 + pt^2*3.5e-4^2) * (abs(eta) > 1.7 && abs(eta) <= 2.5)",
            3,
        ),
        ("(eta < -1.4) * (-1.0) + (eta >= -1.4 && eta < 1.4) * (log(pt)) + (eta >= 1.4) * 2.0", 3),
    ],
)
def test_piecewise_equals_reference_across_regions(text, n_regions):
    e = TFormulaExpression.from_card(text)
    assert e.n_regions == n_regions
    args = _pw_inputs(0, 5)
    got, want = e(*args), e.reference(*args)
    np.testing.assert_array_equal(got, want, err_msg=text)
    assert np.isfinite(want[np.isfinite(args[1]) & (args[0] > 0)]).all()
    for a in ((2.0, 1.4, 0.1, 7.0), (np.zeros(0),) * 4):  # scalars -> 0-d, empty
        np.testing.assert_array_equal(e(*a), e.reference(*a))
        assert e(*a).shape == e.reference(*a).shape
    p, h = np.meshgrid(args[0][:7], args[1][:12], indexing="ij")  # broadcasting, 2-D
    np.testing.assert_array_equal(e(p, h, 0.0, 1.5 * p), e.reference(p, h, 0.0, 1.5 * p))


def test_piecewise_differs_only_where_another_term_is_not_finite():
    # log(pt) is -inf at pt = 0 and NaN for pt < 0: the literal sum is NaN there in every
    # region (0 * -inf), the region-wise value only in the region that uses log(pt)
    text = (
        "(abs(eta) <= 1.4) * (log(pt)) + (abs(eta) > 1.4 && abs(eta) <= 2.5) * (2.0 + pt) "
        "+ (abs(eta) > 2.5) * (0.0)"
    )
    e = TFormulaExpression.from_card(text)
    assert e.n_regions == 3
    pt, eta, phi, en = _pw_inputs(0, 6)
    pt[::7] = 0.0
    pt[3::11] = -1.0
    got, want = e(pt, eta, phi, en), e.reference(pt, eta, phi, en)
    other_bad = (np.abs(eta) > 1.4) & ~(pt > 0)  # rows outside region 1 where log(pt) is not finite
    assert other_bad.sum() > 1000
    np.testing.assert_array_equal(got[~other_bad], want[~other_bad])
    assert np.isnan(want[other_bad]).all()
    a = np.abs(eta[other_bad])
    expect = np.where(a <= 2.5, 2.0 + pt[other_bad], 0.0)
    expect[np.isnan(a)] = np.nan  # no region: evaluated as written
    np.testing.assert_array_equal(got[other_bad], expect)


@pytest.mark.parametrize(
    "text",
    [
        "(abs(eta) <= 1.5) * (0.9) + (abs(eta) > 1.4 && abs(eta) <= 2.5) * (0.8)",  # overlap
        "(abs(eta) <= 1.5) * (0.9) + (abs(eta) >= 1.5) * (0.8)",  # both contain 1.5
        "(abs(eta) <= 1.5) * (0.9) + (eta > 1.5) * (0.8)",  # different expressions
        "(abs(eta) <= 1.5 || pt > 3) * (0.9) + (abs(eta) > 1.5) * (0.8)",  # || : a union
        "(abs(eta) != 1.5) * (0.9) + (abs(eta) == 1.5) * (0.8)",  # != : a union
        "(abs(eta) <= 1.5) * (0.9) + 0.1",  # a term without condition
        "(abs(eta) <= 1.5) * (0.9) - (abs(eta) > 1.5) * (0.8)",  # not a sum
        "(abs(eta) <= 1.5 && pt > 3) * (0.9) + (abs(eta) > 1.5) * (0.8)",  # two variables
    ],
)
def test_non_disjoint_or_unproven_sums_fall_back(text):
    e = TFormulaExpression.from_card(text)
    assert e.n_regions == 0
    args = _pw_inputs(0, 7)
    np.testing.assert_array_equal(e(*args), e.reference(*args))
    if "1.4" in text:  # the overlap adds
        assert float(e(2.0, 1.45)) == 0.9 + 0.8
    assert TFormulaExpression.from_card(PW_TEXT, piecewise=False).n_regions == 0


def _piecewise_model() -> ResponseModel:
    """toy_model with efficiency, scale and resolution in regions |eta| 0-1.4-1.7-2.5."""
    base = toy_model()

    def regions(texts, names=("pt", "eta"), lo=1.0, hi=300.0):
        b = (0.0, *PW_EDGES)
        return [Region(b[k], b[k + 1], _f(t, names, lo, hi)) for k, t in enumerate(texts)]

    mu = base.objects["muon"]
    mu = ObjectResponse(
        "muon",
        "track",
        (13,),
        2.5,
        efficiency=regions(
            ["0.98 - 0.02*exp(-pt/5.0)", "0.95 - 0.01*abs(eta)", "0.9 - 0.03*exp(-pt/4.0)*abs(eta)"]
        ),
        scale=regions(["1.0 + 0.0001*eta^2", "1.001", "0.999 + 0.0002*abs(eta)"]),
        resolution=regions(
            ["0.01 + 1e-4*pt", "sqrt(0.012^2 + (1.5e-4*pt)^2)", "(0.02 + 2e-4*pt)*(1 + 0.1*eta^2)"]
        ),
        sigma_eta=mu.sigma_eta,
        sigma_phi=mu.sigma_phi,
        mass_gev=mu.mass_gev,
    )
    ph = base.objects["photon"]
    ph = ObjectResponse(
        "photon",
        "calo",
        (22,),
        2.5,
        efficiency=ph.efficiency,
        scale=ph.scale,
        resolution=regions(
            [
                "sqrt(0.03^2*energy + 0.2^2)",
                "0.05*sqrt(energy) + 0.3*abs(eta)",
                "(1 + 0.3*abs(eta))*sqrt(0.05^2*energy + 0.3^2)",
            ],
            ("eta", "energy"),
            1.0,
            3000.0,
        ),
        sigma_eta=ph.sigma_eta,
        sigma_phi=ph.sigma_phi,
    )
    return ResponseModel({"muon": mu, "photon": ph}, {"source": "toy"})


def test_fastsim_piecewise_equals_unsplit_evaluation(monkeypatch):
    import pandas as pd

    from ariasim.apps.collider import fastsim as fs
    from ariasim.simulators.collider import ParticleGun

    model = _piecewise_model()
    for obj in model.objects.values():
        cf = card_formulas(obj)
        assert TFormulaExpression.from_card(cf.resolution).n_regions == 4
    gun = ParticleGun(["mu-", "mu+", "gamma"], 0.5, 500.0, log_pt=True, eta_min=-3.0, eta_max=3.0)
    parts = gun.generate(20_000, 2)
    k = parts.columns.get_loc("eta")
    edges = [s * e for e in PW_EDGES for s in (1.0, -1.0)]
    for j in range(30):  # particles exactly on every region edge, of every species
        parts.iloc[j * len(edges) : (j + 1) * len(edges), k] = edges
    fast = fs.fastsim(parts, model, seed=9)
    unsplit = TFormulaExpression.from_card

    def generic(text, **kw):
        return unsplit(text, piecewise=False, **kw)

    monkeypatch.setattr(fs.TFormulaExpression, "from_card", generic)
    assert fs.FastSimulator(model)._compiled[0][1][2].n_regions == 0
    before = fs.fastsim(parts, model, seed=9)
    pd.testing.assert_frame_equal(fast, before, check_exact=True)
    assert fast["found"].sum() > 10_000


def test_integer_powers_of_negative_bases():
    # x^n for a constant integer n is evaluated as ±|x|^n (fast for negative x), in both
    # the compiled and the reference evaluator; C's pow uses the same identity, so the
    # values agree with libm (math.pow) up to NumPy's vectorised-power rounding (an ulp)
    import math

    text = (
        "(eta - 1.0)^(3.0) + (eta)^(4.0) - (eta + 0.5)^(-3.0) + (-pt)^(5.0) * 1e-9 "
        "+ (eta)^(2.5) + pt^(eta - eta + 3.0) + (eta)^(1.0) + (0.0 - pt)^(0.0)"
    )
    args = _pw_inputs(0, 8)
    _assert_compiled_equals_reference(text, args)
    _assert_compiled_equals_reference(text, (2.0, -1.5, 0.0, 1.0))
    h = np.concatenate([args[1][np.isfinite(args[1])], [-0.0, 0.0]])
    for n in (3.0, 4.0):
        got = evaluate_card_formula(f"(eta)^({n})", 1.0, h)
        libm = np.array([math.pow(v, n) for v in h])
        assert (np.abs(got - libm) <= 2 * np.spacing(np.abs(libm))).all()
        assert (np.signbit(got) == np.signbit(libm)).all()
    assert np.isnan(evaluate_card_formula("(eta)^(3.0)", 1.0, np.nan))
    assert evaluate_card_formula("(eta)^(3.0)", 1.0, -np.inf) == -np.inf
    assert evaluate_card_formula("(eta)^(4.0)", 1.0, -np.inf) == np.inf


def test_printer_folds_overflowing_factors_into_the_exponential():
    # sympy splits exp(a + k log x) into x^k exp(a): a learned logistic reached the card as
    # 8.9e20 * exp(P) / pt^140, whose factors overflow in double precision (inf/inf = NaN)
    # although the product is moderate; the printer folds them back into one exp
    pt = sp.Symbol("pt")
    x = sp.Min(300.0, sp.Max(1.0, pt))
    lx = sp.log(x)
    z = 8.9e20 * sp.exp(34.0 * lx**2 - 1.1 * lx**3) / x**140.35
    assert any(isinstance(a, sp.Pow) for a in sp.Mul.make_args(z))  # sympy did split it
    text = to_tformula(1 / (1 + z))
    pts = np.geomspace(0.5, 500.0, 2001)
    got = evaluate_card_formula(text, pt=pts)
    assert np.all(np.isfinite(got))
    import mpmath

    def exact(p: float) -> float:
        v = mpmath.log(min(300.0, max(1.0, p)))
        zz = mpmath.mpf(8.9e20) * mpmath.exp(34 * v**2 - 1.1 * v**3 - 140.35 * v)
        return float(1 / (1 + zz))

    want = np.array([exact(p) for p in pts])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    # ordinary products keep their readable form
    assert to_tformula(0.5 * sp.exp(pt)) == "(0.5*exp(pt))"


@pytest.mark.parametrize("name", ["muon\nset ExecutionPath {}", "mu on", "mu}", "mu[x]", "1mu"])
def test_card_refuses_names_that_are_not_identifiers(name):
    """A model built in Python (not read from a file) with a name that would inject card
    text is refused by the card writer itself, naming the object name."""
    good = toy_model().objects["muon"]
    bad = ObjectResponse(
        name,
        good.kind,
        good.pdg,
        good.eta_max,
        good.efficiency,
        good.scale,
        good.resolution,
        good.sigma_eta,
        good.sigma_phi,
        good.mass_gev,
    )
    with pytest.raises(ConfigError, match="object name"):
        card_text(ResponseModel({"muon": bad}))


def test_card_field_volume_must_be_finite_and_positive():
    for kw in (
        {"bz_t": float("nan")},
        {"radius_m": 0.0},
        {"half_length_m": float("inf")},
        {"radius_m": -1.0},
    ):
        with pytest.raises(ConfigError, match=next(iter(kw))):
            card_text(toy_model(), **kw)
    card_text(toy_model(), bz_t=-3.8)  # the field's direction: either sign


def test_card_of_every_object_type_passes_the_structure_lint():
    """Cards with all five object types (PdgCodeFilter blocks, every branch) pass
    :func:`lint_card`, whole and as module blocks."""
    from ariasim.apps.collider.delphes import lint_card
    from ariasim.apps.collider.objects import OBJECTS

    toy = toy_model().objects
    objs = {}
    for name, spec in OBJECTS.items():
        base = toy["muon"] if spec.kind == "track" else toy["photon"]
        objs[name] = ObjectResponse(
            name,
            spec.kind,
            spec.pdg,
            base.eta_max,
            base.efficiency,
            base.scale,
            base.resolution,
            base.sigma_eta,
            base.sigma_phi,
        )
    model = ResponseModel(objs, {"source": "five objects"})
    lint_card(card_text(model))
    lint_card(card_text(model, standalone_modules=True), standalone_modules=True)
    with pytest.raises(ConfigError, match="ExecutionPath"):
        lint_card(card_text(model, standalone_modules=True))
