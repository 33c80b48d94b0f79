"""Statistical validation of the collider full simulation against physics expectations.

Tolerances come from the statistics: a resolution estimated from N Gaussian residuals has a
relative error 1/sqrt(2N); an efficiency has the binomial error sqrt(p(1-p)/N). Each test
allows 5 standard deviations on top of the stated physics tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ariasim.simulators.collider.detector import load_detector
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.simulators.collider.simulate import simulate
from ariasim.simulators.collider.tracking import expected_pt_resolution, fit_tracks, propagate

N_RES = 1500


def _track_resolution(det, pt, eta, seed):
    truth = ParticleGun(["mu-", "mu+"], pt, pt, eta_min=eta, eta_max=eta).generate(N_RES, seed)
    sim = propagate(truth, det, np.random.default_rng(seed + 1))
    tr = fit_tracks(sim, det, candidates=np.arange(N_RES))
    tr = tr[tr["good"] & (tr["n_hits"] >= det.tracking.min_hits)]
    q_over_pt = (truth["charge"] / truth["pt_gev"]).to_numpy()[tr["truth_index"].to_numpy()]
    rel = (tr["q_over_pt"].to_numpy() - q_over_pt) * pt
    pulls = (tr["q_over_pt"].to_numpy() - q_over_pt) / tr["sigma_q_over_pt"].to_numpy()
    return float(np.std(rel)), float(np.std(pulls)), len(tr)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,points",
    [
        (
            "default",
            [
                (2.0, 0.0),
                (10.0, 0.0),
                (100.0, 0.0),
                (500.0, 0.0),
                (10.0, 1.0),
                (100.0, 1.0),
                (100.0, 2.0),
                (500.0, 2.0),
            ],
        ),
        ("future", [(10.0, 0.0), (200.0, 0.0), (100.0, 1.2)]),
    ],
)
def test_pt_resolution_follows_gluckstern_highland(name, points):
    """sigma(pT)/pT within 10 % of Gluckstern (N points, eps, L, B) + Highland (X0) for the
    configured layers."""
    det = load_detector(name)
    for i, (pt, eta) in enumerate(points):
        sigma, pull_sd, n = _track_resolution(det, pt, eta, 100 + i)
        expected = float(expected_pt_resolution(det, pt, eta)["total"][0])
        tol = 0.10 + 5.0 / math.sqrt(2 * n)
        assert abs(sigma / expected - 1.0) < tol, (name, pt, eta, sigma, expected)
        # the fit's own error estimate is calibrated as well
        assert abs(pull_sd - 1.0) < tol, (name, pt, eta, pull_sd)


def test_reference_cms_like_numbers():
    """REFERENCE.md section 3: a CMS-like tracker gives a ~ 0.8 % and b ~ 1e-4 /GeV."""
    det = load_detector("default")
    res = expected_pt_resolution(det, np.array([1000.0, 10.0]), 0.0)
    b = res["measurement"][0] / 1000.0
    a = res["scattering"][1]
    assert 0.5e-4 < b < 2e-4
    assert 0.004 < a < 0.012


def _eff(mask):
    n = mask.size
    p = mask.mean()
    return p, math.sqrt(max(p * (1 - p), 1.0 / n) / n)


@pytest.mark.slow
def test_efficiency_plateaus_and_acceptance():
    det = load_detector("default")
    n = 2000
    # plateau: muons, |eta| < 2.4, pT 5-100 GeV: >= 7 of 13 (8) layers at 98-99 % per hit -> ~1
    mu = simulate(
        ParticleGun(["mu-"], 5, 100, log_pt=True, eta_min=-2.4, eta_max=2.4).generate(n, 1), det, 2
    )
    p_mu, s_mu = _eff(mu["track_found"].to_numpy())
    assert p_mu > 0.995 - 5 * s_mu
    # pions: nuclear interactions in the ~0.1 lambda_I of the tracker lower the plateau;
    # pions that did not interact before their 7th layer are found like muons
    pi = simulate(
        ParticleGun(["pi+"], 5, 100, log_pt=True, eta_min=-1.0, eta_max=1.0).generate(n, 3), det, 4
    )
    p_pi, s_pi = _eff(pi["track_found"].to_numpy())
    lam = np.cumsum([det.beam_pipe.thickness_lambda] + [la.thickness_lambda for la in det.layers])
    p_survive = math.exp(
        -lam[det.tracking.min_hits]
    )  # no interaction before the 7th layer (eta ~ 0)
    assert p_pi < p_mu - 5 * s_pi
    assert abs(p_pi - p_survive) < 0.03 + 5 * s_pi
    clean = pi["interacted_layer"].to_numpy() < 0
    p_clean, s_clean = _eff(pi.loc[clean, "track_found"].to_numpy())
    assert p_clean > 0.995 - 5 * s_clean
    # outside the tracker acceptance: nothing
    fwd = simulate(ParticleGun(["mu-"], 5, 100, eta_min=2.9, eta_max=3.5).generate(500, 5), det, 6)
    assert fwd["track_found"].mean() < 0.01
    # loopers: 0.15 GeV muons curl inside r = 0.26 m (fewer than 7 layers)
    loop = simulate(
        ParticleGun(["mu-"], 0.12, 0.15, eta_min=-0.5, eta_max=0.5).generate(500, 7), det, 8
    )
    assert loop["track_found"].mean() < 0.01
    # muon system: muons below ~2 GeV range out / curl before the stations, high pT reach them
    lo = simulate(
        ParticleGun(["mu-"], 1.0, 1.5, eta_min=-0.5, eta_max=0.5).generate(500, 9), det, 10
    )
    assert (lo["object_type"] == "muon").mean() < 0.02
    hi = mu[(mu["truth_pt_gev"] > 10) & (mu["truth_eta"].abs() < 2.2)]
    p_id, s_id = _eff((hi["object_type"] == "muon").to_numpy())
    assert p_id > 0.97 - 5 * s_id


@pytest.mark.slow
def test_identification_rates():
    """Each species is mostly identified as itself (|eta| < 1.4, pT 10-50 GeV).

    Expected rates (default detector): electrons ~0.9, photons ~0.95, muons ~0.99,
    charged pions ~0.9 (nuclear interactions turn some into neutral hadrons); the
    thresholds are these minus 5 binomial standard deviations and some margin.
    """
    det = load_detector("default")
    n = 800
    expect = {
        "e-": ("electron", 0.85),
        "gamma": ("photon", 0.90),
        "mu-": ("muon", 0.97),
        "pi+": ("charged_hadron", 0.85),
    }
    for i, (species, (obj, rate)) in enumerate(expect.items()):
        out = simulate(
            ParticleGun([species], 10, 50, eta_min=-1.4, eta_max=1.4).generate(n, 20 + i),
            det,
            30 + i,
        )
        p, s = _eff((out["object_type"] == obj).to_numpy())
        assert p > rate - 5 * s, (species, out["object_type"].value_counts().to_dict())
        if species == "e-":
            e = out[out["object_type"] == "electron"]
            ratio = e["reco_e_gev"] / e["truth_e_gev"]
            assert abs(np.median(ratio) - 1.0) < 0.03
