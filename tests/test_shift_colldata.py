"""Collider data sets of the domain-shift applications (apps/shift/collider.py, active_bias.py).

Samples: ~1500 reconstructed objects per side (full simulation, a few seconds each), the
KAN fast simulation trained for a few epochs on 3000 particles, the active-control
pipeline at its CI size. The shift tests compare the classifier two-sample AUC
(:func:`ariasim.metrics.classifier_test`) with its own null standard deviation (about 0.01
at these sizes): a real shift must lie many null sigmas above 0.5, a same-setup pair within
4 (a family-wise false-alarm rate below 1e-3 for the handful of such checks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ariasim.apps.collider.model import ResponseModel
from ariasim.apps.shift.active_bias import active_bias_samples
from ariasim.apps.shift.collider import (
    CONTEXT,
    DETECTOR_FEATURES,
    FASTSIM_FEATURES,
    detector_samples,
    fastsim_samples,
    fastsim_source_rows,
    modified_detector,
)
from ariasim.errors import ConfigError
from ariasim.metrics import classifier_test
from ariasim.simulators.collider import ParticleGun, load_detector, simulate
from ariasim.simulators.collider.calorimeter import ECALConfig

N = 1500


def auc(a, b, wa=None, wb=None):
    r = classifier_test(a, b, weights_a=wa, weights_b=wb, seed=0)
    return r.value, r.details["null_sigma"]


def shifted(s):
    cols = s.features + s.context
    return auc(s.source[cols], s.target[cols], s.source_weight, s.target_weight)


@pytest.fixture(scope="module")
def det():
    return detector_samples(N, seed=3)


@pytest.fixture(scope="module")
def fast():
    return fastsim_samples(N, seed=3, method="kan", epochs=5, train_rows=3000)


@pytest.fixture(scope="module")
def active_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("active-bias")


@pytest.fixture(scope="module")
def active(active_dir):
    # the run folders are kept: the stratified test re-reads the threshold run's decisions
    return active_bias_samples(seed=1, out_dir=active_dir)


def check_frame(df, features, context, n):
    assert list(df.columns) == features + context
    assert len(df) == n and df.index.name == "event_id" and df.index.is_unique
    assert np.isfinite(df.to_numpy(float)).all()
    for c in df.columns:
        assert df[c].dtype == (np.int64 if c == "n_hits" else np.float64), c


def test_detector_columns_and_shift(det):
    assert det.features == DETECTOR_FEATURES["electron"] and det.context == CONTEXT
    for df in (det.source, det.target):
        check_frame(df, det.features, det.context, N)
    assert det.source_weight is None and det.target_weight is None
    assert det.cpu_seconds["source"] > 0 and det.cpu_seconds["target"] > 0
    assert 0.5 < det.provenance["efficiency"]["source"] <= 1.0
    value, sigma = shifted(det)
    assert value > 0.5 + 8 * sigma, value  # measured 0.660 (sigma 0.0105)
    # the ECAL scale error is seen in the energy response: a shift of its median by
    # about the 1 % miscalibration (the extra material pulls the other way, a little)
    med = det.target["e_response"].median() / det.source["e_response"].median()
    assert 1.0 < med < 1.02, med


def test_detector_same_setup_is_consistent():
    s = detector_samples(
        1000, seed=4, ecal_miscalibration=1.0, ecal_intercalibration=0.0, material_scale=1.0
    )
    value, sigma = shifted(s)
    assert abs(value - 0.5) < 4 * sigma, value


def test_detector_is_deterministic_and_paired():
    a = detector_samples(60, seed=5, species="muon", paired=True)
    b = detector_samples(60, seed=5, species="muon", paired=True)
    for x, y in ((a.source, b.source), (a.target, b.target)):
        pd.testing.assert_frame_equal(x, y)
    check_frame(a.source, DETECTOR_FEATURES["muon"], CONTEXT, 60)
    # paired: the same truth particles on both sides (different detector response)
    common = a.source.index.intersection(a.target.index)
    assert len(common) > 50
    pd.testing.assert_series_equal(
        a.source.loc[common, "truth_pt_gev"], a.target.loc[common, "truth_pt_gev"]
    )
    c = detector_samples(60, seed=6, species="muon")
    assert not c.source.equals(a.source)


def test_miscalibration_scales_the_ecal_response():
    """The simulator knob: the same showers (same seed) measured 5 % higher."""
    gun = ParticleGun(["e-"], 40.0, 40.0, eta_min=-1.0, eta_max=1.0)
    truth = gun.generate(300, 1)
    nominal = load_detector("default")
    data = modified_detector(ecal_miscalibration=1.05, ecal_intercalibration=0.0,
                             material_scale=1.0)  # fmt: skip
    a = simulate(truth, nominal, seed=2)["cluster_energy_gev"].to_numpy()
    b = simulate(truth, data, seed=2)["cluster_energy_gev"].to_numpy()
    ok = np.isfinite(a) & np.isfinite(b) & (a > 20)
    ratio = np.median(b[ok] / a[ok])
    # noise (40 MeV per cell) is not scaled: a few 1e-4 of 40 GeV
    assert abs(ratio - 1.05) < 0.003, ratio
    with pytest.raises(ConfigError, match=r"ecal\.miscalibration"):
        ECALConfig(miscalibration=0.0)
    with pytest.raises(ConfigError, match=r"ecal\.intercalibration_spread"):
        ECALConfig(intercalibration_spread=0.5)


def test_fastsim_columns_shift_and_rates(fast):
    assert fast.features == FASTSIM_FEATURES["muon"] and fast.context == CONTEXT
    for df in (fast.source, fast.target):
        check_frame(df, fast.features, fast.context, N)
    value, sigma = shifted(fast)
    assert value > 0.5 + 8 * sigma, value  # measured 0.705: constant angular smearing
    rates = fast.rows_per_cpu_second()
    assert rates["source"] > rates["target"] > 0
    assert fast.cpu_seconds["train_fit"] > 0
    assert fast.provenance["response"]["method"] == "kan"


def test_fastsim_given_model_is_deterministic_and_consistent(fast, tmp_path):
    model = ResponseModel.from_dict(fast.provenance["response_model"])
    path = model.save(tmp_path / "response.json")
    a = fastsim_samples(N, seed=7, response=path)
    b = fastsim_samples(N, seed=7, response=model)
    pd.testing.assert_frame_equal(a.source, b.source)
    pd.testing.assert_frame_equal(a.target, b.target)
    assert "train_fit" not in a.cpu_seconds
    # the same setup twice (fast simulation, independent seeds): no shift
    cols = a.features + a.context
    value, sigma = auc(fast.source[cols], a.source[cols])
    assert abs(value - 0.5) < 4 * sigma, value


def test_fastsim_source_rows_match_the_source_side(fast):
    """Extra fast-simulation rows: the source side's distribution (same model, fresh truth
    particles), its columns, event ids apart from the sample's, deterministic, the dict form
    of the model accepted."""
    d = fast.provenance["response_model"]
    extra = fastsim_source_rows(N, d, seed=11)
    check_frame(extra, fast.features, fast.context, N)
    assert extra.index.min() >= 3 * 10**9
    again = fastsim_source_rows(N, ResponseModel.from_dict(d), seed=11)
    pd.testing.assert_frame_equal(extra, again, check_exact=True)
    assert not fastsim_source_rows(N, d, seed=12).equals(extra)
    cols = fast.features + fast.context
    value, sigma = auc(fast.source[cols], extra[cols])
    assert abs(value - 0.5) < 4 * sigma, value
    # a real difference is seen at this size: the same rows against the full simulation
    value, sigma = auc(fast.target[cols], extra[cols])
    assert value > 0.5 + 8 * sigma, value
    for call, parameter in (
        (lambda: fastsim_source_rows(0, d), "n_rows"),
        (lambda: fastsim_source_rows(10, 3), "response"),
        (lambda: fastsim_source_rows(10, d, species="electron"), "response"),
        (lambda: fastsim_source_rows(10, d, first_event=-1), "first_event"),
        (lambda: fastsim_source_rows(10, d, seed=-1), "seed"),
    ):
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.parameter == parameter


def test_active_bias_samples(active):
    s = active
    assert s.features == ["m_mumu", "mu1_pt", "mu2_pt", "mu1_eta", "mu2_eta"]
    assert s.context == []
    for df, w in ((s.source, s.source_weight), (s.control, s.control_weight),
                  (s.target, s.target_weight)):  # fmt: skip
        assert list(df.columns) == s.features and len(df) > 300
        assert w is not None and w.shape == (len(df),) and np.all(w > 0)
    assert len(s.control) < len(s.target)
    runs = s.provenance["runs"]
    assert [runs[k]["mode"] for k in ("source", "control", "target")] == [
        "threshold",
        "brute",
        "brute",
    ]
    # the bias: the threshold sample misses passing events (rate many sigma low) ...
    rs, rt = runs["source"], runs["target"]
    assert rt["rate"] - rs["rate"] > 5 * np.hypot(rs["rate_error"], rt["rate_error"])
    assert s.rates()["source"] == pytest.approx(rs["rate"])
    # ... and their shape: measured AUC 0.555 (sigma 0.011)
    value, sigma = auc(s.source, s.target, s.source_weight, s.target_weight)
    assert value > 0.5 + 3 * sigma, value
    # the two unbiased samples agree
    value, sigma = auc(s.control, s.target, s.control_weight, s.target_weight)
    assert abs(value - 0.5) < 4 * sigma, value
    # the threshold run simulated fewer events in the detector
    assert rs["cpu_s"]["detector"] < rt["cpu_s"]["detector"]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"species": "tau"}, "species"),
        ({"material_scale": -1.0}, "material_scale"),
        ({"ecal_intercalibration": 0.5}, "ecal_intercalibration"),
        ({"ecal_miscalibration": float("nan")}, "ecal_miscalibration"),
        ({"paired": "yes"}, "paired"),
        ({"pt_min_gev": 50.0, "pt_max_gev": 10.0}, "pt_max_gev"),
        ({"eta_max": 4.0}, "eta_max"),
        ({"seed": -1}, "seed"),
        ({"detector": "nonexistent"}, "detector"),
    ],
)
def test_detector_bad_input(kwargs, parameter):
    args = {"n_rows": 100, **kwargs}
    with pytest.raises(ConfigError) as err:
        detector_samples(args.pop("n_rows"), **args)
    assert err.value.parameter == parameter


def test_active_bias_stratified_is_unbiased(active, active_dir):
    """The threshold sample inside the region its controllers simulated plus the control
    sample outside it: the unbiased rate and shapes, with no learned weight."""
    from ariasim.apps.collider.active import make_collider_pipeline
    from ariasim.apps.shift.active_bias import ACTIVE_SIZES, PHASE_SPACE, control_coverage
    from ariasim.parallel import read_parts

    s = active
    base = Path(active_dir) / "source"
    # the coverage comes from the saved controllers; applied to the threshold run's own
    # generated events it must agree with every decision the run recorded: an event its
    # chunk's model m rejected is covered by at most the chunks not decided by m, one it
    # accepted by at least the warm-up chunks plus m's
    log = read_parts(base, "log")
    pipeline = make_collider_pipeline(ACTIVE_SIZES["ci"]["pipeline"], **PHASE_SPACE)
    cov = control_coverage(pipeline, base, base, log["event_id"].to_numpy())
    model = log["model_detector"].to_numpy()
    accepted = log["accept_detector"].to_numpy(dtype=bool)
    warm = np.mean(model < 0)
    assert 0 < warm < 1 and not accepted[model >= 0].all()
    for m in np.unique(model[model >= 0]):
        frac = np.mean(model == m)
        assert np.all(cov[(model == m) & ~accepted] <= 1 - frac + 1e-12)
        assert np.all(cov[(model == m) & accepted] >= warm + frac - 1e-12)
    # the combination: rate and shape of the unbiased target
    assert s.control_coverage is not None and len(s.control_coverage) == len(s.control)
    assert np.all((s.control_coverage >= 0) & (s.control_coverage <= 1))
    rows, w = s.stratified_weights()
    n_s, n_c = s.n_generated["source"], s.n_generated["control"]
    rate = w.sum() / n_s
    ws, wc = w[: len(s.source)], w[len(s.source) :] * n_c / n_s
    # per-generated-event contributions of the two independent strata
    var = (np.sum(ws**2) / n_s - (ws.sum() / n_s) ** 2) / n_s
    var += (np.sum(wc**2) / n_c - (wc.sum() / n_c) ** 2) / n_c
    rt = s.provenance["runs"]["target"]
    assert abs(rate - rt["rate"]) < 4 * np.hypot(np.sqrt(var), rt["rate_error"]), rate
    value, sigma = auc(rows, s.target, w, s.target_weight)
    ess = w.sum() ** 2 / np.sum(w**2)  # the null sigma grows as the weights spread
    assert abs(value - 0.5) < 4 * sigma * np.sqrt(len(w) / ess), (value, ess)


def test_fastsim_and_active_bad_input(fast):
    model = ResponseModel.from_dict(fast.provenance["response_model"])
    cases = [
        (lambda: fastsim_samples(100, response=3), "response"),
        (lambda: fastsim_samples(100, species="electron", response=model), "response"),
        (lambda: fastsim_samples(100, method="magic"), "method"),
        (lambda: fastsim_samples(100, train_rows=10), "train_rows"),
        (lambda: active_bias_samples(size="huge"), "size"),
        (lambda: active_bias_samples(threshold=1.5), "threshold"),
        (lambda: active_bias_samples(control_mode="threshold"), "control_mode"),
        (lambda: active_bias_samples(target_mode="density"), "target_mode"),
        (lambda: active_bias_samples(overrides={"colour": 1}), "colour"),
        (lambda: active_bias_samples(seed=-2), "seed"),
    ]
    for call, parameter in cases:
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.parameter == parameter
