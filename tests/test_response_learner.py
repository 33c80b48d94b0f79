"""The response meta-estimator: estimators passed in, cloned per object and region, seeds
split with spawn_seeds, fitted estimators kept on the learner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ariasim.apps.collider.learn import TIMINGS_KEY, ResponseLearner, learner_for_method
from ariasim.apps.collider.objects import prepare_object
from ariasim.apps.collider.regions import EtaRegions
from ariasim.errors import ConfigError
from ariasim.surrogates import PolynomialClassifier, PolynomialRegressor


def _rows(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """prepare_object-like muon rows: efficiency with a step at |eta| = 1.2."""
    rng = np.random.default_rng(seed)
    pt = np.exp(rng.uniform(np.log(2), np.log(200), n))
    eta = rng.uniform(-2.4, 2.4, n)
    passed = rng.random(n) < np.where(np.abs(eta) < 1.2, 0.95, 0.7)
    ratio = np.exp(rng.normal(0, 0.01 + 1e-4 * pt))
    return pd.DataFrame(
        {
            "pt": pt,
            "eta": eta,
            "phi": 0.0,
            "energy": pt * np.cosh(eta),
            "passed": passed,
            "ratio": np.where(passed, ratio, np.nan),
            "deta": 0.0,
            "dphi": 0.0,
        }
    )


def test_estimators_are_cloned_and_seeded_per_region():
    eff, resp = PolynomialClassifier(degree=2), PolynomialRegressor(degree=2)
    learner = ResponseLearner(
        eff, resp, regions=EtaRegions(max_regions=3), eta_max=2.4, label="poly", random_state=5
    )
    obj = learner.fit_object(_rows(), "muon")
    fitted = learner.estimators_["muon"]
    assert not hasattr(eff, "formulas_") and not hasattr(resp, "formulas_")  # cloned
    assert all(e is not eff and e is not resp for _, e in fitted)
    seeds = [e.random_state for _, e in fitted]
    assert len(set(seeds)) == len(seeds) and all(s not in (5, 6, 105) for s in seeds)
    # tracks: the response likelihood is log-normal whatever the prototype says
    assert {e.loss for k, e in fitted if k.startswith("response")} == {"lognormal"}
    # the efficiency step at |eta| = 1.2 is found; the response has no step
    assert obj.metadata["regions"]["efficiency"] == [[0.0, 1.2], [1.2, 2.4]]
    # wall-clock timings stay in memory, out of the saved metadata
    assert obj.metadata["method"] == "poly" and [k for k in obj.metadata if k.startswith("_")] == [
        TIMINGS_KEY
    ]
    assert not any(k.startswith("_") or k.endswith("_s") for k in obj.to_dict()["metadata"])
    # same seed, same model; the learner is clonable with its parameters
    again = clone(learner).fit_object(_rows(), "muon")
    for q in ("efficiency", "scale", "resolution"):
        assert again.to_dict()[q] == obj.to_dict()[q]


def test_fit_writes_model_metadata_and_per_object_seeds():
    rng = np.random.default_rng(3)
    d = _rows(3000, 1)
    n = len(d)
    table = pd.DataFrame(
        {
            "pdg": 13,
            "truth_pt_gev": d["pt"],
            "truth_eta": d["eta"],
            "truth_phi": 0.0,
            "truth_e_gev": d["energy"],
            "object_type": np.where(d["passed"], "muon", "none"),
            "reco_pt_gev": d["pt"] * d["ratio"].fillna(1.0),
            "reco_eta": d["eta"],
            "reco_phi": 0.0,
            "reco_e_gev": d["energy"],
            "event_id": rng.integers(0, 10**6, n),
        }
    )
    learner = learner_for_method("poly", regions="single", eta_max=2.4, random_state=0)
    model = learner.fit(table, source="t.parquet").model_
    assert model.metadata["method"] == "poly" and model.metadata["regions"] == "single"
    assert model.metadata["source"] == "t.parquet"
    assert len(model.objects["muon"].efficiency) == 1
    assert prepare_object(table, "muon")["passed"].sum() == d["passed"].sum()


def test_learner_for_method_maps_names_once():
    kan = learner_for_method("kan", epochs=7)
    assert kan.efficiency.max_epochs == 7 and kan.response.hidden == (3,)
    assert kan.label == "kan"
    with pytest.raises(ConfigError, match="epochs"):
        learner_for_method("poly", epochs=5)
    with pytest.raises(ConfigError, match="method"):
        learner_for_method("magic")
    with pytest.raises(ConfigError, match="regions"):
        ResponseLearner(regions="maybe").fit_object(_rows(), "muon")


def test_card_valid_catches_a_narrow_overflow_strip():
    """A formula that is finite on a 0.1-spaced |eta| grid but overflows in a strip
    between its points (as a KAN scale did at |eta| = 2.45) is rejected: the check is as
    fine as the card checker's."""
    from ariasim.apps.collider.card import card_valid
    from ariasim.surrogates import Formula

    f = Formula("1 + exp(1000 * exp(-((abs(eta) - 2.45) / 0.01)^2))", ["pt", "eta"], output="scale")
    assert card_valid(f, "scale", "track", (2.0, 100.0), (1.7, 2.4))
    assert not card_valid(f, "scale", "track", (2.0, 100.0), (1.7, 2.5))


def test_symbolic_regression_path_is_an_estimator_passed_in():
    """--method sr: binned symbolic estimators (short budget), no KAN extraction, no
    fallback needed for this smooth response; the card resolution follows the truth
    (1 % + 1e-4 pT) within a factor 1.5 on the data's range."""
    pytest.importorskip("pyoperon")
    from ariasim.apps.collider.binned import (
        BinnedSymbolicClassifier,
        BinnedSymbolicRegressor,
        default_symbolic,
    )

    sr = default_symbolic().set_params(generations=10)  # a short, reproducible budget
    learner = ResponseLearner(
        BinnedSymbolicClassifier(sr),
        BinnedSymbolicRegressor(sr),
        regions="single",
        eta_max=2.4,
        label="sr",
        random_state=0,
    )
    obj = learner.fit_object(_rows(), "muon")
    assert obj.metadata["method"] == "sr" and "symbolic_s" in obj.metadata[TIMINGS_KEY]
    assert [type(e).__name__ for _, e in learner.estimators_["muon"]] == [
        "BinnedSymbolicClassifier",
        "BinnedSymbolicRegressor",
    ]
    pt = np.geomspace(5, 150, 20)
    res = np.asarray(obj.resolution[0].formula({"pt": pt, "eta": np.full(20, 0.5)}), float)
    truth = 0.01 + 1e-4 * pt
    assert np.all(np.abs(np.log(res / truth)) < np.log(1.5)), res / truth
