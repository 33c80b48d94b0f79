"""One meaning per quantity (issue 14, item 3) and inputs a user can make (item 7).

Item 3: every object of the full simulation, of the fast simulation and of the exported
Delphes card satisfies E^2 = (pT cosh eta)^2 + m^2 with the object's mass hypothesis;
electrons carry the calorimeter energy (pT derived from it, as Delphes' EnergySmearing
does), muons and charged hadrons the track pT.

Item 7: the particle table written by ``simulate collider --truth-only`` goes back into
``simulate collider --input`` (the same table as the direct run) and into ``fastsim``;
HepMC3 events go through the same reader for both; a bad table is an error naming the
column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ariasim.apps.collider.fastsim import fastsim
from ariasim.apps.collider.objects import OBJECTS, prepare_object
from ariasim.errors import InputError
from ariasim.simulators.collider import (
    PARTICLE_SCHEMA,
    ParticleGun,
    particles_from_table,
    read_particles,
    run_collider,
    simulate,
)
from ariasim.utils import spawn_seeds
from test_delphes import toy_model

#: The mass hypothesis of each reconstructed object of the full simulation.
MASS = {
    "electron": 0.51099895e-3,
    "muon": 0.1056583755,
    "charged_hadron": 0.13957039,
    "photon": 0.0,
    "neutral_hadron": 0.0,
}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str]:
    """Run ``ariasim argv``; (exit status, stdout + stderr)."""
    from ariasim.cli import main

    code: object = 0
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def _invariant(t: pd.DataFrame, mass: float) -> np.ndarray:
    """|E^2 - (pT cosh eta)^2 - m^2| / E^2 of the rows of ``t``."""
    e, pt, eta = (t[c].to_numpy(float) for c in ("reco_e_gev", "reco_pt_gev", "reco_eta"))
    return np.abs(e * e - (pt * np.cosh(eta)) ** 2 - mass * mass) / (e * e)


def test_full_simulation_reports_one_meaning_per_object():
    parts = ParticleGun(["e-", "mu-", "gamma", "pi+", "n"], 2.0, 100.0, log_pt=True).generate(
        300, 4
    )
    out = simulate(parts, "default", seed=5)
    seen = set(out["object_type"])
    assert {"electron", "muon", "photon", "charged_hadron"} <= seen
    for name, m in MASS.items():
        t = out[out["object_type"] == name]
        assert (_invariant(t, m) < 1e-12).all(), name
    el = out[out["object_type"] == "electron"]
    # the electron's E is the calorimeter's (cluster + brems), its pT derived from E and
    # the track's eta; the track pT stays in track_pt_gev and differs (bremsstrahlung)
    np.testing.assert_array_equal(el["reco_e_gev"], el["cluster_energy_gev"])
    want = np.sqrt(el["reco_e_gev"] ** 2 - MASS["electron"] ** 2) / np.cosh(el["reco_eta"])
    np.testing.assert_allclose(el["reco_pt_gev"], want, rtol=1e-14)
    own = el["track_found"].to_numpy()
    assert own.mean() > 0.8
    assert (el["reco_pt_gev"].to_numpy()[own] != el["track_pt_gev"].to_numpy()[own]).all()
    mu = out[out["object_type"] == "muon"]
    np.testing.assert_array_equal(mu["reco_pt_gev"], mu["track_pt_gev"])
    # the response model learns what the card smears: E for electrons, pT for muons
    assert OBJECTS["electron"].kind == "calo" and OBJECTS["muon"].kind == "track"
    d = prepare_object(out, "electron")
    ok = d["passed"].to_numpy()
    true_el = el[el["pdg"].abs() == 11]
    np.testing.assert_allclose(
        d["ratio"].to_numpy()[ok], (true_el["reco_e_gev"] / true_el["truth_e_gev"]).to_numpy()
    )


def test_fastsim_and_card_follow_the_same_definitions():
    from dataclasses import replace

    from ariasim.apps.collider.delphes import card_text
    from ariasim.apps.collider.model import ResponseModel

    base = toy_model()
    ph = base.objects["photon"]
    el = replace(ph, name="electron", pdg=(11,), mass_gev=MASS["electron"])
    model = ResponseModel({**base.objects, "electron": el}, base.metadata)
    parts = ParticleGun(["e-", "mu-", "gamma"], 0.5, 500.0, log_pt=True, eta_max=3.0).generate(
        20_000, 2
    )
    fast = fastsim(parts, model, seed=3)
    for name, obj in model.objects.items():
        t = fast[fast["object_type"] == name]
        assert len(t) > 1000
        assert (_invariant(t, obj.mass_gev) < 1e-12).all(), name
        assert (t["reco_pt_gev"] > 0).all()
    # the card smears electrons with EnergySmearing (pT = sqrt(E^2 - m^2) / cosh eta) and
    # no MomentumSmearing: the same definition
    card = card_text(model)
    assert "module EnergySmearing AriasimElectronEnergySmearing" in card
    assert "MomentumSmearing AriasimElectron" not in card
    assert model.objects["electron"].kind == "calo"


def test_particle_schema_documents_what_the_gun_writes():
    parts = ParticleGun(["e-", "pi+"]).generate(10, 1)
    assert [c.name for c in PARTICLE_SCHEMA] and {c.name for c in PARTICLE_SCHEMA} == set(
        parts.columns
    )
    for c in PARTICLE_SCHEMA:
        assert str(parts[c.name].dtype) == c.dtype, c.name


def test_truth_only_table_round_trips_into_simulate_and_fastsim(tmp_path):
    from ariasim.apps.collider.workflow import read_truth

    gun = {"species": ["mu-", "mu+"], "n": 120, "seed": 7, "progress": False}
    p = run_collider(out=tmp_path / "p.parquet", truth_only=True, **gun)
    direct = pd.read_parquet(run_collider(out=tmp_path / "direct.parquet", **gun))
    gun.pop("species"), gun.pop("n")
    via = pd.read_parquet(run_collider(out=tmp_path / "via.parquet", input_file=p, **gun))
    pd.testing.assert_frame_equal(via, direct, check_exact=True)
    # the same particles in fastsim: the table read back equals the gun's particles
    gen = ParticleGun(["mu-", "mu+"]).generate(120, spawn_seeds(7, 2)[0])
    back = read_truth(p)
    pd.testing.assert_frame_equal(back, gen, check_exact=True)
    pd.testing.assert_frame_equal(fastsim(back, toy_model(), 1), fastsim(gen, toy_model(), 1))
    # a minimal user table (pT, eta, phi) is completed, given columns kept as they are
    mini = gen[["event_id", "pdg", "pt_gev", "eta", "phi"]]
    mini.to_csv(tmp_path / "mini.csv", index=False)
    done = read_particles(tmp_path / "mini.csv")
    np.testing.assert_allclose(done["e_gev"], gen["e_gev"], rtol=1e-12)
    np.testing.assert_allclose(done["pz_gev"], gen["pz_gev"], rtol=1e-12, atol=1e-12)
    assert (done["charge"] == gen["charge"]).all()


def test_hepmc3_goes_through_fastsim_and_simulate(tmp_path, capsys):
    pyhepmc = pytest.importorskip("pyhepmc")
    path = tmp_path / "ev.hepmc3"
    rng = np.random.default_rng(1)
    want = []
    with pyhepmc.open(str(path), "w") as f:
        for i in range(5):
            evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            evt.event_number = i
            for pid in (13, -11, 22):
                p3 = rng.normal(0.0, 20.0, 3)
                m = {13: 0.1056583755, -11: 0.51099895e-3, 22: 0.0}[pid]
                e = float(np.sqrt(p3 @ p3 + m * m))
                evt.add_particle(pyhepmc.GenParticle((*p3, e), pid, 1))
                want.append((i, pid))
            f.write(evt)
    parts = read_particles(path)
    assert list(zip(parts["event_id"], parts["pdg"], strict=True)) == want
    toy_model().save(tmp_path / "r.json")
    fast = tmp_path / "f.parquet"
    code, text = _cli(["fastsim", "-r", tmp_path / "r.json", "-i", path, "-o", fast], capsys)
    assert code == 0, text
    pd.testing.assert_frame_equal(pd.read_parquet(fast), fastsim(parts, toy_model(), 1))
    truth = tmp_path / "t.parquet"
    code, text = _cli(
        ["simulate", "collider", "-q", "--truth-only", "-i", path, "-o", truth], capsys
    )
    assert code == 0, text
    pd.testing.assert_frame_equal(pd.read_parquet(truth), parts)


def _table() -> pd.DataFrame:
    return ParticleGun(["e-"]).generate(20, 1)[["event_id", "pdg", "px_gev", "py_gev", "pz_gev"]]


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda t: t.drop(columns="pdg"), "pdg"),
        (lambda t: t.drop(columns="event_id"), "event_id"),
        (lambda t: t.drop(columns="pz_gev"), "pz_gev"),
        (lambda t: t.drop(columns=["px_gev", "py_gev", "pz_gev"]), "px_gev"),
        (lambda t: t.assign(pt_gev=1.0, eta=0.0).drop(columns=["px_gev", "py_gev"]), "phi"),
        (lambda t: t.assign(pdg="e-"), "pdg"),
        (lambda t: t.assign(pdg=11.5), "pdg"),
        (lambda t: t.assign(py_gev=np.where(np.arange(len(t)) == 3, np.nan, 1.0)), "py_gev"),
        (lambda t: t.assign(e_gev=-1.0), "e_gev"),
        (lambda t: t.assign(vz_mm=True), "vz_mm"),
    ],
)
def test_bad_particle_table_names_the_column(tmp_path, change, column):
    with pytest.raises(InputError) as err:
        particles_from_table(change(_table()), source="p.parquet")
    assert err.value.column == column
    assert f"column '{column}'" in str(err.value) and "p.parquet" in str(err.value)


def test_bad_particle_table_through_the_commands(tmp_path, capsys):
    _table().drop(columns="pz_gev").to_parquet(tmp_path / "p.parquet")
    toy_model().save(tmp_path / "r.json")
    out = tmp_path / "f.parquet"
    for argv in (
        ["fastsim", "-r", tmp_path / "r.json", "-o", out],
        ["simulate", "collider", "-q", "-o", out],
    ):
        code, text = _cli([*argv, "-i", tmp_path / "p.parquet"], capsys)
        assert code == 2, text
        assert "column 'pz_gev'" in text and "Traceback" not in text
        assert not out.exists()


def test_truth_only_refuses_detector_options(tmp_path, capsys):
    out = tmp_path / "p.parquet"
    code, text = _cli(
        ["simulate", "collider", "-q", "--truth-only", "-o", out, "--report", tmp_path / "r"],
        capsys,
    )
    assert code == 2 and "--report" in text and "truth" in text, text
    assert not out.exists() and not (tmp_path / "r").exists()
