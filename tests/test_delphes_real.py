"""The exported card in a real Delphes build (skipped unless ``ARIASIM_DELPHES`` is set).

``ARIASIM_DELPHES`` is the Delphes build folder (``DelphesHepMC3``, ``libDelphes.so`` and
its ``*_rdict.pcm``); ``ARIASIM_ROOT_ENV`` optionally a Python environment holding ROOT
from the pip package ``root`` (its libraries go on ``LD_LIBRARY_PATH``; otherwise
``root-config`` on ``PATH`` or the current ``LD_LIBRARY_PATH`` must find ROOT). The build
recipe is in the shared REFERENCE.md, section 3.

A response model with known formulas for the four objects is exported with
``ariasim export delphes``, Delphes runs the card on single-particle HepMC3 events written
by pyhepmc, and its tree (read with uproot) must show what the formulas say: the
efficiency (binomial), the scale and width of reco/truth (pT for tracks, log-normal;
E for calorimeter objects, Gaussian with an absolute sigma of energy) and the angular
resolution, each within 4 standard errors (16 checks, so a false alarm has a probability
below 0.1 %; a width 12 % off the formula fails). The bin rule against the full
simulation needs statistics and lives in ``benchmarks/bench_delphes.py``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.surrogates.formula import Formula, Variable

DELPHES = os.environ.get("ARIASIM_DELPHES")
pytestmark = pytest.mark.skipif(
    not DELPHES, reason="ARIASIM_DELPHES (a Delphes build folder) is not set"
)
ROOT_DIR = Path(__file__).resolve().parents[1]
N_PER_SPECIES = 1500
Z = 4.0  # standard errors allowed per check


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_delphes", ROOT_DIR / "benchmarks" / "bench_delphes.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_delphes"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _f(text: str, names: tuple[str, ...]) -> list[Region]:
    vs = [
        Variable(
            n,
            unit="" if n == "eta" else "GeV",
            low=None if n == "eta" else 0.5,
            high=None if n == "eta" else 2000.0,
        )
        for n in names
    ]
    return [Region(0.0, 2.5, Formula(text, vs))]


#: Truth efficiency, scale and resolution of the model, as NumPy (pt, |eta|, energy).
TRUTH = {
    "muon": (lambda pt, a, e: np.full_like(pt, 0.9), 1.0, lambda pt, a, e: np.full_like(pt, 0.02)),
    "charged_hadron": (
        lambda pt, a, e: 0.95 - 0.05 * a,
        0.98,
        lambda pt, a, e: 0.01 + 2e-4 * pt,
    ),
    "electron": (lambda pt, a, e: np.full_like(pt, 0.8), 1.0, lambda pt, a, e: 0.05 * e),
    "photon": (
        lambda pt, a, e: 0.95 - 0.5 * np.exp(-pt / 5.0),
        1.01,
        lambda pt, a, e: np.sqrt(0.1**2 * e + (0.01 * e) ** 2),
    ),
}
SIGMA_ETA = {"muon": 1e-3, "charged_hadron": 2e-3, "electron": 3e-3, "photon": 4e-3}


def model() -> ResponseModel:
    pt, en = ("pt", "eta"), ("eta", "energy")
    objs = {
        "muon": ObjectResponse(
            "muon", "track", (13,), 2.5, _f("0.9", pt), _f("1.0", pt), _f("0.02", pt),
            SIGMA_ETA["muon"], 1e-3, 0.1056583755,
        ),
        "charged_hadron": ObjectResponse(
            "charged_hadron", "track", (211, 321, 2212), 2.5, _f("0.95 - 0.05*abs(eta)", pt),
            _f("0.98", pt), _f("0.01 + 2e-4*pt", pt), SIGMA_ETA["charged_hadron"], 1e-3,
            0.13957039,
        ),
        "electron": ObjectResponse(
            "electron", "calo", (11,), 2.5, _f("0.8", pt), _f("1.0", en), _f("0.05*energy", en),
            SIGMA_ETA["electron"], 1e-3, 0.51099895e-3,
        ),
        "photon": ObjectResponse(
            "photon", "calo", (22,), 2.5, _f("0.95 - 0.5*exp(-pt/5.0)", pt), _f("1.01", en),
            _f("sqrt(0.1^2*energy + (0.01*energy)^2)", en), SIGMA_ETA["photon"], 1e-3, 0.0,
        ),
    }  # fmt: skip
    return ResponseModel(objs, {"source": "test_delphes_real"})


def _sd_and_err(v: np.ndarray) -> tuple[float, float]:
    """Standard deviation and its delta-method error (valid for non-Gaussian shapes)."""
    s = float(np.std(v, ddof=1))
    m4 = float(np.mean((v - v.mean()) ** 4))
    return s, float(np.sqrt(max(m4 - s**4, 0.0) / (4 * s * s * v.size)))


def test_exported_card_runs_in_delphes(tmp_path):
    b = _bench()
    delphes = b.find_delphes(DELPHES, os.environ.get("ARIASIM_ROOT_ENV"))
    resp = model().save(tmp_path / "response.json")
    card, modules = tmp_path / "card.tcl", tmp_path / "modules.tcl"
    b.export_card(resp, card, modules)  # the command line, as a user runs it
    assert "TreeWriter" in card.read_text() and "ExecutionPath" not in modules.read_text()
    gun = ParticleGun(["mu-", "pi+", "e-", "gamma"], 5.0, 150.0, log_pt=True, vz_sigma_mm=30.0)
    parts = gun.generate(4 * N_PER_SPECIES, 11)
    hep = b.write_hepmc3(parts, tmp_path / "in.hepmc3")
    t = delphes.run(card, hep, tmp_path / "out.root", tmp_path / "delphes.log")  # rc, no errors
    assert t.wall > 0
    tab = b.read_delphes(tmp_path / "out.root", parts)  # one event per particle, in order
    assert len(tab) == len(parts)

    pt = tab["truth_pt_gev"].to_numpy()
    a = np.abs(tab["truth_eta"].to_numpy())
    e = tab["truth_e_gev"].to_numpy()
    pdg = np.abs(tab["pdg"].to_numpy())
    for name, code in (("muon", 13), ("charged_hadron", 211), ("electron", 11), ("photon", 22)):
        m = pdg == code
        found = tab["object_type"].to_numpy()[m]
        assert set(found) <= {name, "none"}, (name, set(found))
        hit = found == name
        eff, scale, res = TRUTH[name]
        p = eff(pt[m], a[m], e[m])
        k_exp, k_sd = p.sum(), np.sqrt((p * (1 - p)).sum())
        assert abs(hit.sum() - k_exp) <= Z * k_sd, (name, hit.sum(), k_exp, k_sd)
        ptm, am, em = pt[m][hit], a[m][hit], e[m][hit]
        if name in ("muon", "charged_hadron"):  # log-normal: mean scale*pT, sd res*scale*pT
            z = (tab["reco_pt_gev"].to_numpy()[m][hit] / (scale * ptm) - 1.0) / res(ptm, am, em)
        else:  # Gaussian in E, sigma evaluated at the scaled energy
            z = (tab["reco_e_gev"].to_numpy()[m][hit] - scale * em) / res(ptm, am, scale * em)
        assert abs(z.mean()) <= Z / np.sqrt(z.size), (name, z.mean())
        s, err = _sd_and_err(z)
        assert abs(s - 1.0) <= Z * err, (name, s, err)
        deta = tab["reco_eta"].to_numpy()[m][hit] - tab["truth_eta"].to_numpy()[m][hit]
        s, err = _sd_and_err(deta)
        assert abs(s - SIGMA_ETA[name]) <= Z * err, (name, s, err)
