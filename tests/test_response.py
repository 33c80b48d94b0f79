"""Response learning, fast simulation and fast-vs-full validation on a small full simulation.

Samples: a few thousand muons and electrons through the full simulation with fixed seeds
(module-scoped fixture, about 15 s). The learner is the polynomial heteroscedastic
likelihood (``method="poly"``), a fast stand-in for the KAN in CI; the KAN path is tested
with a few epochs when its symbolic extraction is importable.

Tolerances: pulls are compared with the Bonferroni bound for the number of pulls at a 1 %
family-wise false-alarm rate (:func:`ariasim.response.compare.pull_threshold`, about 3.7
for 40 pulls), plus 1 unit of allowance for the model's own fit error (the formulas are fitted on
an independent sample of similar size, so their statistical error is of the same order as
the bins'). The AUC goal 0.55 is the issue's; with ~2000 objects the AUC's null standard
deviation is ~0.01.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from ariasim.errors import ConfigError, InputError
from ariasim.export.delphes import card_formulas, card_text
from ariasim.export.tformula import evaluate_card_formula
from ariasim.response.compare import auc_table, binned_pulls, ours_vs_stock, pull_threshold
from ariasim.response.fastsim import OUTPUT_COLUMNS, fastsim
from ariasim.response.learn import fit_response, prepare_object
from ariasim.response.model import ResponseModel
from ariasim.response.stock import fit_stock
from ariasim.simulators.collider import ParticleGun, simulate

OBJS = ["muon", "electron"]


@pytest.fixture(scope="module")
def samples():
    def full(species, n, seed):
        gun = ParticleGun(species, 2.0, 200.0, log_pt=True, eta_min=-2.4, eta_max=2.4)
        return simulate(gun.generate(n, seed), "default", seed=seed + 100)

    train = pd.concat([full(["mu-", "mu+"], 5000, 1), full(["e-"], 2000, 2)], ignore_index=True)
    test = pd.concat([full(["mu-", "mu+"], 5000, 3), full(["e-"], 2000, 4)], ignore_index=True)
    test["event_id"] += 10_000_000  # distinct events in the concatenation
    return train, test


@pytest.fixture(scope="module")
def models(samples):
    train, _ = samples
    ours = fit_response(train, objects=OBJS, method="poly", eta_max=2.4, seed=0)
    stock = fit_stock(train, objects=OBJS, eta_max=2.4)
    return ours, stock


def test_model_is_valid_and_round_trips(models, tmp_path):
    ours, stock = models
    for m in (ours, stock):
        for obj in m.objects.values():
            card_formulas(obj)  # lint: probabilities, resolutions < 1, regions tile
        back = ResponseModel.load(m.save(tmp_path / "m.json"))
        assert card_text(back) == card_text(m)
    # efficiency formula is a probability; track resolution is relative and small
    mu = ours.objects["muon"]
    pt = np.geomspace(2, 200, 50)
    eff = mu.efficiency[0].formula({"pt": pt, "eta": np.full(50, 0.3)})
    assert ((eff >= 0) & (eff <= 1)).all()
    res = evaluate_card_formula(card_formulas(mu).resolution, pt, 0.3)
    assert ((res > 1e-3) & (res < 0.2)).all()
    # calorimeter resolution is absolute, in GeV, a function of eta and energy only
    el = ours.objects["electron"]
    assert set(el.resolution[0].formula.names) <= {"eta", "energy"}


def test_fastsim_schema_and_semantics(models, samples):
    ours, _ = models
    _, test = samples
    fast = fastsim(test, ours, seed=5)
    assert list(fast.columns) == list(OUTPUT_COLUMNS)
    assert len(fast) == len(test)
    np.testing.assert_array_equal(fast["truth_pt_gev"], test["truth_pt_gev"])
    assert set(fast["object_type"].unique()) <= {"muon", "electron", "none"}
    f = fast[fast["found"]]
    assert np.isfinite(f[["reco_pt_gev", "reco_eta", "reco_phi", "reco_e_gev"]]).all().all()
    assert fast.loc[~fast["found"], "reco_pt_gev"].isna().all()
    # reproducible
    pd.testing.assert_frame_equal(fast, fastsim(test, ours, seed=5))
    el = f[f["object_type"] == "electron"]  # EnergySmearing: pt = E / cosh(eta_before_angular)
    assert (el["reco_e_gev"] > 0).all()


def test_fast_vs_full_pulls_auc_and_stock(models, samples):
    ours, stock = models
    _, test = samples
    fast = fastsim(test, ours, seed=7)
    pulls = binned_pulls(test, fast, OBJS, n_pt=4, eta_edges=(0.0, 0.8, 1.6, 2.4))
    n = int(pulls[["eff_pull", "res_pull"]].notna().sum().sum())
    bound = pull_threshold(n) + 1.0
    assert pulls["eff_pull"].abs().max() < bound, pulls[["object", "x_low", "eta_low", "eff_pull"]]
    # resolution: tracks (log-normal, as the full simulation's curvature errors); electron
    # clusters have a non-Gaussian low tail (brem, leakage) that a Gaussian EnergySmearing
    # cannot reproduce bin by bin; they are checked by the AUC and against the stock card.
    mu = pulls[pulls["object"] == "muon"]
    assert mu["res_pull"].abs().max() < bound, mu[["x_low", "eta_low", "res_pull"]]
    auc = auc_table(test, fast, OBJS, seed=0)
    assert (auc["auc"] <= 0.55).all(), auc
    sfast = fastsim(test, stock, seed=8)
    spulls = binned_pulls(test, sfast, OBJS, n_pt=4, eta_edges=(0.0, 0.8, 1.6, 2.4))
    vs = ours_vs_stock(pulls, spulls)
    # ours closer overall: total chi2 of efficiency and resolution over all bins
    for q in ("eff", "res"):
        g = vs[vs["quantity"] == q]
        assert g["chi2_ours"].sum() < g["chi2_stock"].sum(), vs


def test_learning_errors_name_column():
    with pytest.raises(InputError, match="object_type"):
        fit_response(pd.DataFrame({"pdg": [13]}))
    with pytest.raises(ConfigError, match="method"):
        tab = pd.DataFrame({c: np.ones(100) for c in ("truth_pt_gev", "truth_eta", "truth_phi",
                                                      "truth_e_gev", "reco_pt_gev", "reco_eta",
                                                      "reco_phi", "reco_e_gev")})
        tab["pdg"], tab["object_type"] = 13, "muon"
        fit_response(tab, method="magic")
    d = prepare_object(pd.DataFrame({c: np.ones(3) for c in ("truth_pt_gev", "truth_eta",
                                     "truth_phi", "truth_e_gev", "reco_pt_gev", "reco_eta",
                                     "reco_phi", "reco_e_gev")}).assign(pdg=13, object_type="muon"),
                       "muon")
    assert d["passed"].all()


def test_kan_path_small():
    pytest.importorskip("ariasim.surrogates.kan_symbolic")
    from ariasim.response.learn import fit_object

    rng = np.random.default_rng(0)
    n = 3000
    pt = np.exp(rng.uniform(np.log(2), np.log(200), n))
    eta = rng.uniform(-2.4, 2.4, n)
    passed = rng.random(n) < 0.95 - 0.1 * np.exp(-pt / 5)
    rel = np.sqrt(0.01 ** 2 + (1e-4 * pt) ** 2)
    ratio = np.exp(rng.normal(0, rel))
    d = pd.DataFrame({"pt": pt, "eta": eta, "phi": 0.0, "energy": pt * np.cosh(eta),
                      "passed": passed, "ratio": np.where(passed, ratio, np.nan),
                      "deta": 0.0, "dphi": 0.0})
    obj = fit_object(d, "muon", method="kan", eta_max=2.4, seed=0,
                     options={"max_epochs": 15, "hidden": (2,)})
    cf = card_formulas(obj)
    got = evaluate_card_formula(cf.resolution, pt[:200], eta[:200])
    assert np.all(np.isfinite(got)) and np.median(np.abs(got / rel[:200] - 1)) < 0.5


# --------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    from ariasim.response.cli import export_delphes_command, fastsim_command, fit_response_command

    app = typer.Typer()
    app.command("fit-response")(fit_response_command)
    app.command("export-delphes")(export_delphes_command)
    app.command("fastsim")(fastsim_command)
    return app


def test_cli_end_to_end(samples, tmp_path):
    from ariasim.io import write_table

    train, test = samples
    write_table(train, tmp_path / "train.parquet", producer="test")
    write_table(test.sample(3000, random_state=0).sort_values("event_id"),
                tmp_path / "test.parquet", producer="test")
    runner = CliRunner()
    app = _app()
    r = runner.invoke(app, ["fit-response", str(tmp_path / "train.parquet"), "--out",
                            str(tmp_path / "resp.json"), "--method", "poly", "--eta-max", "2.4",
                            "--stock-out", str(tmp_path / "stock.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "resp.json").read_text())["schema"] == "ariasim.response/1"
    r = runner.invoke(app, ["export-delphes", str(tmp_path / "resp.json"), "--out",
                            str(tmp_path / "card.tcl"), "--modules-out", str(tmp_path / "m.tcl")])
    assert r.exit_code == 0, r.output
    assert "set ExecutionPath" in (tmp_path / "card.tcl").read_text()
    r = runner.invoke(app, ["fastsim", "--response", str(tmp_path / "resp.json"), "--input",
                            str(tmp_path / "test.parquet"), "--out", str(tmp_path / "fast.parquet"),
                            "--compare", "--stock", str(tmp_path / "stock.json"), "--report",
                            str(tmp_path / "rep.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "fast.parquet").exists() and (tmp_path / "rep.html").exists()


def test_cli_bad_inputs_are_named_and_nothing_half_written(models, tmp_path):
    runner = CliRunner()
    app = _app()
    r = runner.invoke(app, ["fit-response", str(tmp_path / "missing.parquet"), "--out",
                            str(tmp_path / "r.json")])
    assert isinstance(r.exception, InputError) and "missing.parquet" in str(r.exception)
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "nope"}')
    r = runner.invoke(app, ["export-delphes", str(bad), "--out", str(tmp_path / "c.tcl")])
    assert isinstance(r.exception, InputError) and "bad.json" in str(r.exception)
    assert not (tmp_path / "c.tcl").exists()
    from ariasim.io import write_table

    write_table(pd.DataFrame({"event_id": [0], "pdg": [13]}), tmp_path / "p.parquet", producer="t")
    good = tmp_path / "good.json"
    models[0].save(good)
    r = runner.invoke(app, ["fastsim", "--response", str(good), "--input",
                            str(tmp_path / "p.parquet"), "--out", str(tmp_path / "f.parquet")])
    assert isinstance(r.exception, InputError) and "pt_gev" in str(r.exception)
    assert not (tmp_path / "f.parquet").exists()
    assert not list(tmp_path.glob(".*.tmp"))
