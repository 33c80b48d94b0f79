"""The atmospheric-muon simulator and pipeline: physics against formulas, event identity,
reproducibility, bad parameters. Tolerances are a few standard errors of the MC."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from ariasim.apps.muons import MuonConfig, chain_stages, make_muon_pipeline, muon_stages
from ariasim.errors import ConfigError
from ariasim.simulators.muons import (
    ElbertYield,
    EnergyLossModel,
    PrimaryGenerator,
    cylinder_chord,
)
from ariasim.simulators.muons.propagation import PROCESSES, shape

N_CI = 8000


@pytest.fixture(scope="module")
def ci_run() -> dict[str, pd.DataFrame]:
    tables, _ = chain_stages(make_muon_pipeline("ci"), np.arange(N_CI), seed=7)
    return tables


# -- primaries -----------------------------------------------------------------------------
def test_flux_weights_integrate_to_the_crflux_all_particle_flux() -> None:
    gen = PrimaryGenerator(radius_m=500.0, e_max_gev=1e6)
    n = 400_000
    ev = gen.sample(n, np.random.default_rng(3))
    w = ev["gen_weight"].to_numpy()
    # the all-particle flux of crflux, where every nucleus is generated (E >= A_max E_min)
    lo = 54 * gen.e_min_per_nucleon_gev
    sel = ev["energy_gev"].to_numpy() >= lo
    ww = np.where(sel, w, 0.0)
    mc, err = ww.mean(), ww.std() / math.sqrt(n)

    def f(le: float) -> float:
        e = math.exp(le)
        return float(gen.model.total_flux(np.array([e]))[0]) * e

    truth = quad(f, math.log(lo), math.log(gen.e_max_gev), epsrel=1e-8)[0]
    truth *= gen.area_m2 * gen.solid_angle_sr
    assert abs(mc - truth) < 4 * err, (mc, truth, err)
    # and the whole generated range, nucleus by nucleus
    mc_all, err_all = w.mean(), w.std() / math.sqrt(n)
    assert abs(mc_all - gen.rate_hz()) < 4 * err_all
    # isotropic in cos(zenith) over the range, impact points inside the disc
    assert abs(ev["cos_zenith"].mean() - (1 + gen.cos_zenith_min) / 2) < 4 * 0.3 / math.sqrt(n)
    r = np.hypot(ev["x0_m"], np.hypot(ev["y0_m"], ev["z0_m"]))
    assert r.max() <= gen.radius_m + 1e-9
    d = ev[["dir_x", "dir_y", "dir_z"]].to_numpy()
    p = ev[["x0_m", "y0_m", "z0_m"]].to_numpy()
    assert np.abs(np.sum(d * p, axis=1)).max() < 1e-6  # the disc is perpendicular


def test_gst_weights_integrate_too() -> None:
    gen = PrimaryGenerator(flux_model="GST4", radius_m=300.0, gamma=1.8)
    n = 100_000
    w = gen.sample(n, np.random.default_rng(8))["gen_weight"].to_numpy()
    assert abs(w.mean() - gen.rate_hz()) < 4 * w.std() / math.sqrt(n)


# -- energy losses -------------------------------------------------------------------------
def test_loss_model_integrals_match_quadrature() -> None:
    m = EnergyLossModel(v_cut=0.03)
    rates, bc = [], 0.0
    for k, b_p in enumerate(m.b_process):
        norm = quad(lambda v, k=k: shape(k, v), 0.0, 1.0)[0]
        rates.append(b_p * quad(lambda v, k=k: shape(k, v) / v, m.v_cut, 1.0)[0] / norm)
        bc += b_p * quad(lambda v, k=k: shape(k, v), 0.0, m.v_cut)[0] / norm
    np.testing.assert_allclose(m.rates_per_mwe, rates, rtol=1e-7)
    assert m.b_continuous == pytest.approx(bc, rel=1e-7)
    # the sampled v follow the shapes: mean v per process against quadrature
    for k in range(len(PROCESSES)):
        v = m.sample_v(np.full(40_000, k), np.random.default_rng(k))
        num = quad(lambda x, k=k: shape(k, x), m.v_cut, 1.0)[0]
        den = quad(lambda x, k=k: shape(k, x) / x, m.v_cut, 1.0)[0]
        assert abs(v.mean() - num / den) < 4 * v.std() / math.sqrt(v.size)


def test_mean_energy_loss_matches_a_plus_b_e() -> None:
    m = EnergyLossModel()
    e0, x, n = 1e4, 1500.0, 20_000
    out = m.propagate(np.full(n, e0), np.full(n, x), np.random.default_rng(11), record=True)
    # a 10 TeV muon crosses 1.5 km.w.e. unless a loss takes (almost) all its energy; those few
    # would change the mean by about a * X * P(stop), far below the MC error
    assert np.mean(out.energy_gev == 0) < 0.01
    e = out.energy_gev
    assert abs(e.mean() - m.mean_energy(e0, x)) < 4 * e.std() / math.sqrt(n)
    # stochastic part: losses per muon ~ rate * X, their energy = b_s * integral of <E>
    n_loss = np.bincount(out.loss_muon, minlength=n)
    lam = m.rates_per_mwe.sum()
    assert abs(n_loss.mean() - lam * x) < 4 * math.sqrt(lam * x / n)
    r = m.a_gev_per_mwe / m.b
    integral = (e0 + r) * (-math.expm1(-m.b * x)) / m.b - r * x
    e_loss = np.bincount(out.loss_muon, weights=out.loss_energy_gev, minlength=n)
    assert abs(e_loss.mean() - m.b_stochastic * integral) < 4 * e_loss.std() / math.sqrt(n)
    # losses lie on the path, in order
    assert out.loss_x_mwe.min() > 0 and out.loss_x_mwe.max() < x
    # below the continuous-only range nobody crosses, just above some do
    thr = float(m.threshold_gev(x))
    below = m.propagate(np.full(2000, 0.99 * thr), np.full(2000, x), np.random.default_rng(1))
    assert np.all(below.energy_gev == 0)


# -- bundles -------------------------------------------------------------------------------
def test_elbert_multiplicity_and_energies_follow_the_formula() -> None:
    y = ElbertYield()
    n = 20_000
    e_thr, e0, a, cz = 600.0, 2e6, 4, 0.7
    nmu, energy, o1, o2 = y.sample(
        np.full(n, e_thr), np.full(n, e0), np.full(n, a), np.full(n, cz), np.random.default_rng(5)
    )
    mean = float(y.mean_number(e_thr, e0, a, cz))
    assert abs(nmu.mean() - mean) < 4 * math.sqrt(mean / n)
    assert energy.min() >= e_thr * (1 - 1e-9) and energy.max() <= e0 / a
    # the fraction above 3 E_thr is N(>3 E_thr) / N(>E_thr)
    p = float(y.mean_number(3 * e_thr, e0, a, cz)) / mean
    frac = np.mean(energy > 3 * e_thr)
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / energy.size)
    # lateral offsets: a few metres for TeV muons
    assert np.median(np.hypot(o1, o2)) < 20.0


def test_cylinder_chord_against_sampling() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(-300, 300, (300, 3))
    d = rng.normal(size=(300, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    s_in, s_out = cylinder_chord(p, d, 100.0, 150.0)
    s = np.linspace(-1000, 1000, 8001)
    pts = p[:, None, :] + s[None, :, None] * d[:, None, :]
    inside = (np.hypot(pts[..., 0], pts[..., 1]) <= 100.0) & (np.abs(pts[..., 2]) <= 150.0)
    length = inside.sum(axis=1) * (s[1] - s[0])
    np.testing.assert_allclose(np.maximum(s_out - s_in, 0.0), length, atol=0.5)


# -- the pipeline --------------------------------------------------------------------------
def test_stages_keep_event_identity(ci_run: dict[str, pd.DataFrame]) -> None:
    prev = set(range(N_CI))
    for name, t in ci_run.items():
        ids = t["event_id"].to_numpy()
        assert len(np.unique(ids)) == len(ids), name
        assert set(ids) <= prev, name
        prev = set(ids)
    final = ci_run["selection"]
    assert len(final) > 0
    cfg = MuonConfig.for_size("ci")
    assert (final["cos_zenith_reco"] <= cfg.cos_zenith_max).all()
    assert (final["n_channels"] >= cfg.min_channels).all()
    assert np.isfinite(final["gen_weight"]).all() and (final["gen_weight"] > 0).all()
    assert (ci_run["photons_preview"]["cpu_s"] > 0).all()
    assert (ci_run["photons_rest"]["cpu_s"] >= 0).all()


def test_bright_selection_keeps_exactly_the_bright_triggered_events(
    ci_run: dict[str, pd.DataFrame],
) -> None:
    cfg = MuonConfig.for_size("ci", selection="bright")
    assert cfg.min_charge > cfg.min_channels
    pipe = make_muon_pipeline("ci", selection="bright")
    assert pipe.name == "muon-bright-ci"
    assert pipe.edges["cos_zenith_reco"][-1] == 1.0
    select = pipe.stages[pipe.stage_names.index("selection")].func
    trig = ci_run["trigger"]
    # a few bright events among the triggered ones, or none at all in this small sample:
    # add copies of the brightest with charges moved across the threshold on both sides
    top = trig.nlargest(3, "total_charge")
    probe = pd.concat(
        [
            trig,
            top.assign(event_id=top["event_id"] + 10**6, total_charge=int(cfg.min_charge)),
            top.assign(event_id=top["event_id"] + 2 * 10**6, total_charge=int(cfg.min_charge) - 1),
        ]
    )
    out = select(probe, np.random.default_rng(0))
    want = probe[(probe["total_charge"] >= cfg.min_charge) & (probe["n_channels"] >= 5)]
    assert sorted(out["event_id"]) == sorted(want["event_id"])
    assert (out["cos_zenith_reco"].abs() <= 1.0 + 1e-9).all()
    charge = want.set_index("event_id").loc[out["event_id"], "total_charge"]
    np.testing.assert_allclose(out["log10_charge"], np.log10(charge))
    # the up-going selection ignores min_charge
    up = make_muon_pipeline("ci").stages[-1].func(trig, np.random.default_rng(0))
    assert set(up["event_id"]) == set(ci_run["selection"]["event_id"])


def test_line_fit_finds_the_down_going_muons(ci_run: dict[str, pd.DataFrame]) -> None:
    from ariasim.apps.muons.reco import improved_linefit

    cfg = MuonConfig.for_size("ci")
    det = cfg.detector
    trig = ci_run["trigger"]
    cos = []
    for ev in trig.itertuples(index=False):
        d, _ = improved_linefit(det.positions_m[ev.hit_modules], ev.hit_times)
        cos.append(d @ [ev.dir_x, ev.dir_y, ev.dir_z])
    assert len(cos) > 20
    # a line fit of a few-module CI event is rough, but it follows the bundle (a sign or axis
    # mix-up would give a median near 0 or below)
    assert np.median(cos) > 0.5


def test_stages_are_reproducible_from_the_seed() -> None:
    from ariasim.utils import spawn_seeds

    p = make_muon_pipeline("ci", preview_fraction=0)
    a, _ = chain_stages(p, np.arange(1500), seed=4)
    b, _ = chain_stages(p, np.arange(1500), seed=4)
    c, _ = chain_stages(p, np.arange(200), seed=5)
    cols = ["event_id", "gen_weight", "n_mu_depth", "log10_e_lead", "n_channels", "total_charge"]
    assert len(a["photons"]) > 20
    pd.testing.assert_frame_equal(a["photons"][cols], b["photons"][cols])
    assert not np.array_equal(a["primaries"]["energy_gev"][:200], c["primaries"]["energy_gev"])
    # an event's light does not depend on which other events are simulated (a controller
    # may skip some before the photons): rerun the photon stage on every third event
    photons = p.stages[3].func
    some = a["propagation"].iloc[::3].reset_index(drop=True)
    part = photons(some, np.random.default_rng(spawn_seeds(4, 6)[3])).set_index("event_id")
    full = a["photons"].set_index("event_id")
    for col in ("total_charge", "n_photons"):
        pd.testing.assert_series_equal(full.loc[part.index, col], part[col], check_names=False)


def test_split_photon_stage_has_the_one_stage_distribution(
    ci_run: dict[str, pd.DataFrame],
) -> None:
    """The preview (f of the photons) merged with the rest ((1 - f) of them) is the one-stage
    photon simulation in distribution: the same events (same seeds before the photons)
    through the one-stage ``photons``, compared event by event. Photon counts and total
    charges are Poisson per event in both, so their summed differences have variance
    sum(x_split + x_one); the channel counts and first-hit times get a paired t-test."""
    cfg = MuonConfig.for_size("ci", preview_fraction=0)
    assert MuonConfig.for_size("ci").preview_fraction == 0.1
    split = ci_run["photons_rest"].set_index("event_id")
    one = muon_stages(cfg)[3].func(ci_run["propagation"], np.random.default_rng(11))
    one = one.set_index("event_id").loc[split.index]
    assert len(split) > 50
    for col in ("n_photons", "total_charge"):
        d = float((split[col] - one[col]).sum())
        z = d / math.sqrt(float((split[col] + one[col]).sum()))
        assert abs(z) < 4, (col, z)
    lit = (split["n_channels"] > 0) & (one["n_channels"] > 0)
    assert lit.sum() > 30
    # the earliest hit of the event and the mean over its modules of their first hits
    first = [np.array([t.min() for t in table.loc[lit, "hit_times"]]) for table in (split, one)]
    mean = [np.array([t.mean() for t in table.loc[lit, "hit_times"]]) for table in (split, one)]
    for a, b in (
        (split["n_channels"].to_numpy(float), one["n_channels"].to_numpy(float)),
        (first[0], first[1]),
        (mean[0], mean[1]),
    ):
        d = a - b
        assert abs(d.mean()) < 4 * d.std(ddof=1) / math.sqrt(d.size), (d.mean(), d.std())
    # the preview holds a fraction f of the photons (binomial), the merge adds them
    pv = float(split["pv_photons"].sum())
    n = float(split["n_photons"].sum())
    assert abs(pv - 0.1 * n) < 4 * math.sqrt(0.1 * 0.9 * n)
    for ev in split.itertuples():
        assert ev.total_charge == int(ev.hit_charges.sum()) >= int(ev.pv_charges.sum())
        assert set(ev.pv_modules) <= set(ev.hit_modules)
        # a module's first hit is the earlier of the preview's and the rest's
        at = np.searchsorted(ev.hit_modules, ev.pv_modules)
        assert np.all(ev.hit_times[at] <= ev.pv_times)
        assert np.all(ev.hit_charges[at] >= ev.pv_charges)


def test_brighter_muons_give_more_hits() -> None:
    cfg = MuonConfig.for_size("ci", preview_fraction=0)
    photons = muon_stages(cfg)[3].func
    d = np.array([0.3, 0.0, -1.0])
    d /= np.linalg.norm(d)
    entry = -200.0 * d + np.array([10.0, 5.0, 0.0])
    path = 400.0
    rows = []
    for k, (e, n_loss) in enumerate([(200.0, 0), (2e4, 6)]):
        xs = np.linspace(60.0, 340.0, n_loss)
        rows.append(
            {
                "event_id": k,
                "dir_x": d[0],
                "dir_y": d[1],
                "dir_z": d[2],
                "mu_entry": entry[None, :],
                "mu_length_m": np.array([path]),
                "mu_energy": np.array([e]),
                "loss_pos": entry + xs[:, None] * d,
                "loss_energy": np.full(n_loss, 100.0),
            }
        )
    out = photons(pd.DataFrame(rows), np.random.default_rng(3)).set_index("event_id")
    dim, bright = out.loc[0, "total_charge"], out.loc[1, "total_charge"]
    assert dim > 0
    assert bright > dim + 5 * math.sqrt(dim)
    assert out.loc[1, "n_photons"] > out.loc[0, "n_photons"]


def test_pipeline_shape() -> None:
    p = make_muon_pipeline("ci", preview_fraction=0)
    assert p.stage_names == (
        "primaries",
        "bundles",
        "propagation",
        "photons",
        "trigger",
        "selection",
    )
    cp = p.control_points[0]
    assert cp.before == "photons" and "lead_closest_m" in cp.features
    split = make_muon_pipeline("ci")
    assert split.stage_names[3:5] == ("photons_preview", "photons_rest")
    cp1, cp2 = split.control_points
    assert cp1.features == cp.features
    assert set(cp.features) < set(cp2.features) and "pv_cos_zenith_reco" in cp2.features
    # the nominal costs: a preview of f = 10 % costs less than the rest
    costs = split.stage_costs
    assert costs is not None and 0 < costs["photons_preview"] < costs["photons_rest"]
    assert set(p.edges) == set(p.observables)
    for e in p.edges.values():
        assert np.all(np.diff(e) > 0)


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: make_muon_pipeline("ci", near_m=-5.0), "near_m"),
        (lambda: make_muon_pipeline("ci", oversize=0.5), "oversize"),
        (lambda: make_muon_pipeline("ci", smt_modules=2.5), "smt_modules"),
        (lambda: make_muon_pipeline("ci", n_strngs=4), "n_strngs"),
        (lambda: make_muon_pipeline("huge"), "size"),
        (lambda: make_muon_pipeline("ci", flux_model="H5z"), "flux_model"),
        (lambda: make_muon_pipeline("ci", cos_zenith_max=2.0), "cos_zenith_max"),
        (lambda: make_muon_pipeline("ci", preview_fraction=1.0), "preview_fraction"),
        (lambda: make_muon_pipeline("ci", preview_fraction=-0.1), "preview_fraction"),
        (lambda: make_muon_pipeline("ci", selection="downgoing"), "selection"),
        (lambda: make_muon_pipeline("ci", selection="bright", min_charge=-1.0), "min_charge"),
        (lambda: EnergyLossModel(v_cut=1.5), "v_cut"),
        (lambda: EnergyLossModel(b_pair=-1e-4), "b_pair"),
        (lambda: PrimaryGenerator(gamma=0.0), "gamma"),
        (lambda: PrimaryGenerator(e_max_gev=1e3), "e_max_gev"),
        (lambda: ElbertYield(alpha1=1.2), "alpha1"),
    ],
)
def test_bad_parameters_name_themselves(make, parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.parameter == parameter
    assert parameter in str(err.value)
