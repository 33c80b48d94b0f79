"""The collider reference pipeline of active simulation control (apps/collider/active.py).

The stages are chained by hand as the contract of ``ariasim.active.pipeline`` says: each
stage's new columns are joined on ``event_id`` to what the earlier stages produced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ariasim.apps.collider.active import (
    FEATURES,
    MUON_MASS_GEV,
    OBSERVABLES,
    PARTICLE_DTYPE,
    RECO_DTYPE,
    DimuonGenerator,
    DimuonSelection,
    make_collider_pipeline,
    relative_isolation,
    settings,
)
from ariasim.errors import ConfigError, InputError

N_EVENTS = 60


def run_chain(pipeline, event_ids, seed, *, keep=None):
    """Chain the stages; ``keep(events) -> bool mask`` drops events before the detector
    (what a controller does at the control point). Returns the table after each stage."""
    rng = np.random.default_rng(seed)
    events = pd.DataFrame({"event_id": np.asarray(event_ids, dtype=np.int64)})
    after = {}
    for i, stage in enumerate(pipeline.stages):
        if keep is not None and i == 1:
            events = events[keep(events)]
        out = stage.func(events, rng)
        after[stage.name] = out
        new = [c for c in out.columns if c == "event_id" or c not in events.columns]
        events = events.merge(out[new], on="event_id", how="inner")
    return after, events


@pytest.fixture(scope="module")
def ci_run():
    pipe = make_collider_pipeline("ci", jet_fraction=0.5, m_min_gev=40.0)
    ids = np.random.default_rng(0).permutation(np.arange(1000, 1000 + N_EVENTS))
    return pipe, ids, run_chain(pipe, ids, seed=42)


def test_pipeline_shape():
    pipe = make_collider_pipeline("ci")
    assert pipe.stage_names == ("generate", "detector", "select")
    (cp,) = pipe.control_points
    assert cp.before == "detector" and cp.features == FEATURES
    assert pipe.observables == OBSERVABLES
    assert set(pipe.edges) == set(OBSERVABLES)
    assert settings(pipe)["generate"]["ue_mean"] == 5.0
    assert settings(make_collider_pipeline())["generate"]["ue_mean"] == 20.0


def test_stages_keep_event_identity(ci_run):
    _, ids, (after, final) = ci_run
    gen, det, sel = after["generate"], after["detector"], after["select"]
    assert gen["event_id"].tolist() == ids.tolist()  # same events, same order
    assert det["event_id"].tolist() == ids.tolist()
    assert 0 < len(sel) < len(ids)  # some events pass, not all
    assert sel["event_id"].is_unique and sel["event_id"].isin(ids).all()
    # the generator's features are scalars, the particles an object column
    assert all(np.issubdtype(gen[c].dtype, np.number) for c in FEATURES)
    assert gen["gen_particles"].map(lambda p: p.dtype == PARTICLE_DTYPE).all()
    assert (gen["gen_particles"].map(len) == gen["gen_n_particles"]).all()
    # reconstructed objects per event, and each event's CPU share
    assert det["reco_objects"].map(lambda o: o.dtype == RECO_DTYPE).all()
    assert (det["reco_objects"].map(len) == det["reco_n_objects"]).all()
    assert (det["reco_n_objects"] <= gen["gen_n_particles"]).all()
    assert (det["cpu_s"] > 0).all()
    ratio = det["cpu_s"] / gen["gen_n_particles"]
    assert np.allclose(ratio, ratio.iloc[0])
    # the final table has every stage's columns, for the passing events only
    assert set(OBSERVABLES) <= set(final.columns) and set(FEATURES) <= set(final.columns)
    assert final["event_id"].tolist() == sel["event_id"].tolist()


def test_generator_kinematics_are_consistent(ci_run):
    _, _, (after, _) = ci_run
    gen = after["generate"]
    for _, row in gen.iterrows():
        p = row["gen_particles"]
        # two muons of opposite charge come first; their invariant mass is the pair mass
        assert p["pdg"][:2].tolist() == [13, -13]
        mom = np.stack([p["px_gev"][:2], p["py_gev"][:2], p["pz_gev"][:2]], axis=1)
        e = np.sqrt(np.sum(mom**2, axis=1) + MUON_MASS_GEV**2)
        m = np.sqrt(e.sum() ** 2 - np.sum(mom.sum(axis=0) ** 2))
        assert m == pytest.approx(row["gen_mass"], rel=1e-6)
        pts = np.sort(np.hypot(mom[:, 0], mom[:, 1]))[::-1]
        assert [row["gen_mu1_pt"], row["gen_mu2_pt"]] == pytest.approx(pts.tolist())
        assert np.all(p["vz_mm"] == p["vz_mm"][0])  # one vertex per event
    assert (gen["gen_mass"] >= 40.0).all()


def test_reproducible_from_the_seed_and_a_controller_may_drop_events():
    pipe = make_collider_pipeline("ci", ue_mean=2.0)
    ids = np.arange(30)
    a_after, _ = run_chain(pipe, ids, seed=7)
    b_after, _ = run_chain(pipe, ids, seed=7)
    c_after, _ = run_chain(pipe, ids, seed=8)
    scalar = [c for c in a_after["generate"] if c != "gen_particles"]
    pd.testing.assert_frame_equal(a_after["generate"][scalar], b_after["generate"][scalar])
    reco_a, reco_b = a_after["detector"]["reco_objects"], b_after["detector"]["reco_objects"]
    for x, y in zip(reco_a, reco_b, strict=True):
        assert x.tobytes() == y.tobytes()
    assert not np.allclose(a_after["generate"]["gen_mass"], c_after["generate"]["gen_mass"])
    # dropping events before the detector: only the kept ones are simulated
    kept, final = run_chain(pipe, ids, seed=7, keep=lambda ev: ev["event_id"] % 3 == 0)
    assert kept["detector"]["event_id"].tolist() == list(range(0, 30, 3))
    assert final["event_id"].isin(kept["detector"]["event_id"]).all()


def _event(*objects):
    return np.array(list(objects), dtype=RECO_DTYPE)


def test_selection_on_hand_made_events():
    mu_p = (0, 45.0, 0.1, 0.0, 1)  # kind 0 = muon
    mu_m = (0, 38.0, -0.5, 3.0, -1)
    events = {
        1: _event(mu_p, mu_m),  # passes
        2: _event(mu_p, (0, 38.0, -0.5, 3.0, 1)),  # same charge
        3: _event(mu_p, (0, 19.0, -0.5, 3.0, -1)),  # second muon below 20 GeV
        4: _event(mu_p, (0, 38.0, 2.5, 3.0, -1)),  # second muon outside |eta| < 2.4
        5: _event(mu_p, mu_m, (3, 10.0, 0.2, 0.1, 1)),  # hadron in the cone: iso 10/45
        6: _event(mu_p, mu_m, (3, 10.0, 0.2, 0.5, 1)),  # hadron outside the cone (dR 0.51)
        7: _event(mu_p, (1, 38.0, -0.5, 3.0, -1)),  # an electron, not a muon
        8: _event((0, 60.0, 1.0, 1.0, 1), (0, 25.0, 0.0, -2.0, 1), mu_m),  # 3 muons
        9: _event(),  # nothing reconstructed
    }
    ev = pd.DataFrame({"event_id": list(events)})
    ev["reco_objects"] = pd.Series(list(events.values()), dtype=object)
    out = DimuonSelection()(ev, None).set_index("event_id")
    assert sorted(out.index) == [1, 6, 8]
    m2 = 2 * 45.0 * 38.0 * (np.cosh(0.6) - np.cos(3.0)) + 2 * MUON_MASS_GEV**2
    assert out.loc[1, "m_mumu"] == pytest.approx(np.sqrt(m2), rel=1e-4)
    assert out.loc[1, ["mu1_pt", "mu2_pt", "mu1_eta"]].tolist() == [45.0, 38.0, 0.1]
    # with three muons: the leading one and the leading one of the other charge
    assert out.loc[8, ["mu1_pt", "mu2_pt"]].tolist() == [60.0, 38.0]
    # a looser isolation keeps event 5, a harder pT cut drops event 1
    loose = DimuonSelection(iso_max=0.3)(ev, None)
    assert 5 in loose["event_id"].tolist()
    hard = DimuonSelection(pt_min_gev=40.0)(ev, None)
    assert 1 not in hard["event_id"].tolist()


def test_relative_isolation_matches_a_loop():
    rng = np.random.default_rng(3)
    group = np.sort(rng.integers(0, 8, 60))
    pt = rng.uniform(1.0, 50.0, 60)
    eta = rng.uniform(-1.0, 1.0, 60)
    phi = rng.uniform(-np.pi, np.pi, 60)
    cand = np.array([0, 5, 17, 33, 59])
    iso = relative_isolation(group, pt, eta, phi, cand, cone=0.5)
    for k, c in enumerate(cand):
        dphi = (phi - phi[c] + np.pi) % (2 * np.pi) - np.pi
        near = (group == group[c]) & (np.hypot(eta - eta[c], dphi) < 0.5)
        near[c] = False
        assert iso[k] == pytest.approx(pt[near].sum() / pt[c])


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"size": "huge"}, "size"),
        ({"bogus": 1}, "bogus"),
        ({"jet_fraction": 1.5}, "jet_fraction"),
        ({"z_fraction": -0.1}, "z_fraction"),
        ({"pt_min_gev": -5.0}, "pt_min_gev"),
        ({"iso_max": float("nan")}, "iso_max"),
        ({"m_min_gev": 300.0, "m_max_gev": 200.0}, "m_min_gev"),
        ({"ue_mean": "many"}, "ue_mean"),
        ({"detector": "no-such-detector"}, "detector"),
    ],
)
def test_bad_parameters_name_them(kwargs, parameter):
    with pytest.raises(ConfigError, match=parameter) as info:
        make_collider_pipeline(**kwargs)
    assert info.value.parameter == parameter


def test_generator_defaults():
    gen = DimuonGenerator()
    ev = gen(pd.DataFrame({"event_id": np.arange(2000)}), np.random.default_rng(5))
    # the continuum m^-3 above m_min: P(m > 2 m_min) = 1/4 (plus the Z fraction)
    frac = float((ev["gen_mass"] > 2 * gen.m_min_gev).mean())
    expect = (1 - gen.z_fraction) * 0.25 + gen.z_fraction
    assert abs(frac - expect) < 4 * np.sqrt(expect * (1 - expect) / 2000)
    assert ev["gen_n_particles"].mean() > gen.ue_mean
    # no events: every stage returns an empty table with its columns
    _, final = run_chain(make_collider_pipeline("ci"), [], seed=1)
    assert len(final) == 0 and set(FEATURES) | set(OBSERVABLES) <= set(final.columns)


def test_z_decays_peak_at_the_z_mass():
    """Only Z bosons, no extra particles: the muon pair mass is the Breit-Wigner's."""
    gen = DimuonGenerator(z_fraction=1.0, ue_mean=0.0, jet_fraction=0.0)
    ev = gen(pd.DataFrame({"event_id": np.arange(4000)}), np.random.default_rng(9))
    m = ev["gen_mass"].to_numpy()
    assert (ev["gen_n_particles"] == 2).all()
    assert abs(np.median(m) - 91.1876) < 0.2  # Cauchy median error ~ 1.57 Gamma/2/sqrt(n)
    iqr = np.subtract(*np.percentile(m, [75, 25]))
    assert iqr == pytest.approx(2.4952, rel=0.15)  # the full width for a Cauchy
    assert (ev[["gen_mu1_iso", "gen_mu2_iso"]] == 0).all().all()
    # the pair rapidity is flat in [-y_max, y_max]
    assert ev["gen_pair_y"].abs().max() <= gen.y_max + 1e-9
    assert abs(ev["gen_pair_y"].mean()) < 4 * gen.y_max / np.sqrt(3 * 4000)


def _write_hepmc(path):
    pyhepmc = pytest.importorskip("pyhepmc")
    with pyhepmc.open(str(path), "w") as f:
        for i in range(3):
            evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            evt.event_number = i
            v = pyhepmc.GenVertex((0.0, 0.0, 1.0 + i, 0.0))
            beam = pyhepmc.GenParticle((0.0, 0.0, 7000.0, 7000.0), 2212, 4)
            v.add_particle_in(beam)
            pt = 30.0 + 10.0 * i
            e_mu = (pt**2 + MUON_MASS_GEV**2) ** 0.5
            v.add_particle_out(pyhepmc.GenParticle((pt, 0.0, 0.0, e_mu), 13, 1))
            v.add_particle_out(pyhepmc.GenParticle((-pt, 0.0, 0.0, e_mu), -13, 1))
            v.add_particle_out(pyhepmc.GenParticle((0.0, 5.0, 1.0, 26.0**0.5), 22, 1))
            evt.add_vertex(v)
            f.write(evt)


def test_events_from_a_hepmc_file(tmp_path):
    path = tmp_path / "dimuon.hepmc"
    _write_hepmc(path)
    pipe = make_collider_pipeline(events_file=str(path))
    assert settings(pipe)["generate"] == {"path": str(path)}
    after, final = run_chain(pipe, [2, 0], seed=3)
    gen = after["generate"]
    assert gen["event_id"].tolist() == [2, 0]
    assert gen["gen_mu1_pt"].tolist() == pytest.approx([50.0, 30.0])
    # back-to-back muons of equal pT at eta 0: m = 2 E
    assert gen["gen_mass"].tolist() == pytest.approx(
        [2 * (50.0**2 + MUON_MASS_GEV**2) ** 0.5, 2 * (30.0**2 + MUON_MASS_GEV**2) ** 0.5]
    )
    assert gen["gen_n_particles"].tolist() == [3, 3]
    assert gen["gen_particles"].iloc[0]["vz_mm"].tolist() == [3.0, 3.0, 3.0]
    assert after["detector"]["reco_n_muons"].tolist() == [2, 2]
    assert sorted(final["event_id"]) == [0, 2]  # isolated central muons above 20 GeV
    with pytest.raises(InputError, match="3 events"):
        run_chain(pipe, [3], seed=3)
    with pytest.raises(ConfigError, match="ue_mean"):
        make_collider_pipeline(events_file=str(path), ue_mean=3.0)
    with pytest.raises(InputError, match="nothere"):
        make_collider_pipeline(events_file=str(tmp_path / "nothere.hepmc"))
