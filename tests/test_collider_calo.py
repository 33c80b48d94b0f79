"""Validation of the collider calorimeter simulation (ECAL + HCAL).

Tolerances are statistical (k sigma of the Monte Carlo error of the estimate) or documented
physics tolerances; see each test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

from ariasim.errors import ConfigError
from ariasim.simulators.collider import calo_showers as S
from ariasim.simulators.collider import calorimeter as C

ECAL = C.ECALConfig()
HCAL = C.HCALConfig()

# A Pb / plastic-scintillator sampling ECAL (1.5 mm Pb + 2.5 mm scintillator, 25 X0), with
# effective properties computed from PDG material tables, no noise and no photostatistics so
# that the stochastic term is the sampling term.
PB_SCINT = {
    "kind": "sampling",
    "x0_cm": 1.46,
    "moliere_radius_cm": 3.3,
    "critical_energy_gev": 0.0093,
    "z_eff": 71.6,
    "lambda_i_cm": 25.0,
    "density_g_cm3": 4.9,
    "depth_x0": 25.0,
    "sampling_fraction": 0.207,
    "active_thickness_mm": 2.5,
    "passive_thickness_mm": 1.5,
    "active_z": 3.5,
    "passive_z": 82.0,
    "active_dedx_gev_per_mm": 2.0e-4,
    "photoelectrons_per_gev": 0.0,
    "noise_gev": 0.0,
    "zs_threshold_gev": 0.0,
    "sr_threshold_gev": math.inf,
    "cell_deta": 0.04,
    "cell_dphi": 0.04,
    "r_inner_m": 1.5,
}


def _shoot(
    pdg: int,
    e_gev: float,
    n: int,
    seed: int,
    ecal: C.ECALConfig = ECAL,
    hcal: C.HCALConfig = HCAL,
    eta: tuple[float, float] = (0.2, 0.4),
) -> C.CaloResult:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    et = rng.uniform(*eta, n)
    ph = rng.uniform(-math.pi, math.pi, n)
    return C.simulate_calorimeters(
        ids, ids, np.full(n, pdg, dtype=np.int64), np.full(n, float(e_gev)), et, ph, ecal, hcal, rng
    )


def _leading(res: C.CaloResult) -> pd.DataFrame:
    cl = res.clusters
    return cl.loc[cl.groupby("event_id")["energy_gev"].idxmax()]


def _core_sigma(x: np.ndarray) -> tuple[float, float, int]:
    """Mean and standard deviation after iterative 4-sigma clipping (Gaussian core)."""
    m, s = float(np.median(x)), float(np.std(x))
    sel = np.ones(len(x), dtype=bool)
    for _ in range(5):
        sel = np.abs(x - m) < 4 * s
        m, s = float(x[sel].mean()), float(x[sel].std())
    return m, s, int(sel.sum())


def _fit(e: np.ndarray, var: np.ndarray, var_err: np.ndarray, terms: tuple[bool, bool, bool]):
    """Weighted linear fit of (sigma/E)^2 = a^2/E + b^2/E^2 + c^2 (selected terms)."""
    cols = [c for c, use in zip((1 / e, 1 / e**2, np.ones_like(e)), terms, strict=True) if use]
    x = np.column_stack(cols) / var_err[:, None]
    sol = optimize.nnls(x, var / var_err)[0]
    cov = np.linalg.pinv(x.T @ x)
    out, err, k = [], [], 0
    for use in terms:
        if use:
            v = max(sol[k], 1e-12)
            out.append(math.sqrt(v))
            err.append(math.sqrt(cov[k, k]) / (2 * math.sqrt(v)))
            k += 1
        else:
            out.append(0.0)
            err.append(0.0)
    return np.array(out), np.array(err)


# ------------------------------------------------------------------------------- config
def test_config_presets_overrides_and_unknown_keys() -> None:
    assert C.ECALConfig.from_dict({}) == C.ECALConfig()
    assert C.HCALConfig.from_dict({"preset": "cms-brass"}) == C.HCALConfig()
    fcc = C.ECALConfig.from_dict({"preset": "fcc-siw"})
    assert fcc.kind == "sampling" and fcc.cell_deta < ECAL.cell_deta / 5
    assert C.ECALConfig.from_dict({"preset": "fcc-siw", "noise_gev": 0.001}).noise_gev == 0.001
    hf = C.HCALConfig.from_dict({"preset": "fcc-fe-scint"})
    assert hf.depth_lambda > HCAL.depth_lambda and hf.cell_deta < HCAL.cell_deta
    assert {"cms-pbwo4", "fcc-siw"} <= set(C.ECAL_PRESETS)
    assert {"cms-brass", "fcc-fe-scint"} <= set(C.HCAL_PRESETS)
    with pytest.raises(ConfigError) as exc:
        C.ECALConfig.from_dict({"foo": 1})
    assert exc.value.parameter == "ecal.foo"
    with pytest.raises(ConfigError) as exc:
        C.HCALConfig.from_dict({"preset": "cms-brass", "bar": 2})
    assert exc.value.parameter == "hcal.bar"
    with pytest.raises(ConfigError) as exc:
        C.ECALConfig.from_dict({"preset": "nope"})
    assert exc.value.parameter == "ecal.preset"
    with pytest.raises(ConfigError) as exc:
        C.ECALConfig.from_dict({"x0_cm": -1})
    assert exc.value.parameter == "ecal.x0_cm"
    with pytest.raises(ConfigError):
        C.ECALConfig(kind="liquid")
    with pytest.raises(ConfigError):
        C.HCALConfig.from_dict({"sampling_fraction": "high"})


# ------------------------------------------------------------------------- basic physics
def test_reproducible_with_seed() -> None:
    pdg = np.array([11, 22, 211, 2112, 13, -321], dtype=np.int64)
    n = len(pdg)
    args = (
        np.arange(n) // 2,
        np.arange(n),
        pdg,
        np.array([20.0, 30, 40, 25, 10, 15]),
        np.array([0.1, -0.5, 1.2, 2.0, -1.0, 0.3]),
        np.array([0.0, 1, 2, -2, 3, -1.5]),
    )
    r1 = C.simulate_calorimeters(*args, ECAL, HCAL, np.random.default_rng(7))
    r2 = C.simulate_calorimeters(*args, ECAL, HCAL, np.random.default_rng(7))
    pd.testing.assert_frame_equal(r1.cells, r2.cells)
    pd.testing.assert_frame_equal(r1.clusters, r2.clusters)
    pd.testing.assert_frame_equal(r1.deposits, r2.deposits)
    r3 = C.simulate_calorimeters(*args, ECAL, HCAL, np.random.default_rng(8))
    assert not np.array_equal(
        r1.cells["energy_gev"].to_numpy(), r3.cells["energy_gev"].to_numpy()[: len(r1.cells)]
    )


def test_energy_conservation_and_acceptance() -> None:
    pdg = np.array([11, 22, 211, 2112, 130, 13, 12, 11], dtype=np.int64)
    e = np.array([30.0, 30, 30, 30, 30, 30, 30, 30])
    eta = np.array([0.3, -0.7, 1.1, -0.2, 0.5, 0.9, 0.1, 3.5])
    n = len(pdg)
    res = C.simulate_calorimeters(
        np.arange(n), np.arange(n), pdg, e, eta, np.zeros(n), ECAL, HCAL, np.random.default_rng(3)
    )
    d = res.deposits
    tot = d["e_true_ecal_gev"] + d["e_true_hcal_gev"] + d["e_leak_gev"]
    # e, gamma, mesons: all energy is deposited or leaks; neutron: its kinetic energy
    np.testing.assert_allclose(tot[:3], 30.0, rtol=1e-9)
    np.testing.assert_allclose(tot[3], 30.0 - 0.939565, rtol=1e-9)
    np.testing.assert_allclose(tot[4], 30.0, rtol=1e-9)
    assert 0.1 < tot[5] < 3.0  # muon: ionisation only
    assert tot[6] == 0 and not d["in_acceptance"][6]  # neutrino
    assert tot[7] == 0 and not d["in_acceptance"][7]  # beyond eta_max
    assert set(res.clusters["truth_index"]) <= {0, 1, 2, 3, 4, 5, -1}


def test_muon_deposit_is_landau_like() -> None:
    d = _shoot(13, 50.0, 3000, 11).deposits
    x = d["e_true_ecal_gev"].to_numpy()
    path_cm = ECAL.depth_x0 * ECAL.x0_cm
    # mean restricted loss ~ dE/dx * path (Moyal mean = loc + 1.27 xi with the mean fixed)
    assert abs(x.mean() / (ECAL.mip_dedx_gev_per_cm * path_cm) - 1) < 0.05
    assert np.median(x) < x.mean()  # Landau skew: long high-side tail


# -------------------------------------------------------------------- EM longitudinal
def _fast_profile_params(ecal: C.ECALConfig) -> np.ndarray:
    """ECAL parameter vector with few lateral spots: the longitudinal energy per step does
    not depend on the spots (they only spread it laterally), so profiles are unchanged."""
    p = C._params(ecal, HCAL)
    p[S.P_SPOT_SCALE] = 1e-3
    return p


@pytest.mark.parametrize("e_gev", [10.0, 100.0])
def test_mean_profile_follows_grindhammer_peters(e_gev: float) -> None:
    """Mean of the fluctuated GP profiles vs the GP average-profile Gamma (homogeneous).

    GP average profile: T = ln y - 0.858, alpha = 0.21 + (0.492 + 2.38/Z) ln y (NIM A 290
    (1990) 469). The paper's fluctuated parameters reproduce its average profile to a few
    percent; tolerance: 5 % on the centre of gravity and on the L1 distance of the normalised
    profiles (the MC error, < 0.5 %, is negligible).
    """
    pe = _fast_profile_params(ECAL)
    prof, _ = S.em_profiles(e_gev, False, 3000, pe, np.random.default_rng(5))
    mean = prof.mean(axis=0) / e_gev
    edges = np.arange(prof.shape[1] + 1) * S.STEP_X0
    t = 0.5 * (edges[1:] + edges[:-1])
    lny = math.log(e_gev / ECAL.critical_energy_gev)
    tmax = lny - 0.858
    alpha = 0.21 + (0.492 + 2.38 / ECAL.z_eff) * lny
    beta = (alpha - 1) / tmax
    gp = np.diff(special.gammainc(alpha, beta * np.minimum(edges, ECAL.depth_x0)))
    tc_sim = (mean * t).sum() / mean.sum()
    tc_gp = (gp * t).sum() / gp.sum()
    assert abs(tc_sim / tc_gp - 1) < 0.05
    assert np.abs(mean - gp).sum() < 0.05
    assert abs(t[np.argmax(mean)] - tmax) <= 1.0  # shower maximum within 1 X0 (bin 0.5 X0)
    # photons start after an exponential conversion depth of mean 9/7 X0
    prof_g, _ = S.em_profiles(e_gev, True, 3000, pe, np.random.default_rng(6))
    mg = prof_g.mean(axis=0) / e_gev
    shift = (mg * t).sum() / mg.sum() - tc_sim
    assert abs(shift - 9 / 7) < 0.25  # 5 sigma of the shift's MC error (~0.05 X0)


def test_containment_falls_with_energy_and_shorter_depth() -> None:
    pe = _fast_profile_params(ECAL)
    ps = _fast_profile_params(C.ECALConfig(depth_x0=16.0))
    n = 1500
    fr = {}
    for name, p in (("full", pe), ("short", ps)):
        for e_gev in (5.0, 50.0, 300.0):
            _, leak = S.em_profiles(e_gev, False, n, p, np.random.default_rng(int(e_gev)))
            f = leak / e_gev
            fr[name, e_gev] = (f.mean(), f.std() / math.sqrt(n))
            depth = p[S.P_DEPTH_CM] / p[S.P_X0_CM]
            lny = math.log(e_gev / ECAL.critical_energy_gev)
            alpha = 0.21 + (0.492 + 2.38 / ECAL.z_eff) * lny
            gp_leak = 1 - special.gammainc(alpha, (alpha - 1) / (lny - 0.858) * depth)
            # the mean leakage of fluctuating profiles is larger than the tail of the mean
            # profile: same order, within a factor 2 (GP tails are only roughly described)
            assert 0.5 < f.mean() / gp_leak < 2.0
    for name in ("full", "short"):
        for lo, hi in ((5.0, 50.0), (50.0, 300.0)):
            (m1, s1), (m2, s2) = fr[name, lo], fr[name, hi]
            assert m2 - m1 > 5 * math.hypot(s1, s2)
    for e_gev in (5.0, 50.0, 300.0):
        (m1, s1), (m2, s2) = fr["full", e_gev], fr["short", e_gev]
        assert m2 - m1 > 5 * math.hypot(s1, s2)


# ----------------------------------------------------------------------- EM resolution
def _resolution_scan(ecal: C.ECALConfig, energies: list[float], n: int, seed: int):
    rows = []
    for i, e_gev in enumerate(energies):
        res = _shoot(11, e_gev, n, seed + i, ecal=ecal)
        lead = _leading(res)
        m, s, k = _core_sigma(lead["energy_gev"].to_numpy())
        rows.append(
            (e_gev, m / e_gev, s / e_gev, k, lead["n_ecal_cells"].mean(), res.ecal_calibration)
        )
    return pd.DataFrame(rows, columns=["e", "resp", "res", "n", "ncells", "calib"])


def test_ecal_resolution_default_homogeneous() -> None:
    """CMS-like PbWO4: response linear, noise term = noise * sqrt(<n cells>), stochastic term
    in the CMS ballpark.

    With the default noise (40 MeV/cell, ~25-45 cells in a cluster) the noise term dominates
    the stochastic term below ~60 GeV, so the stochastic term is fitted on the same detector
    without electronic noise: it must agree with the photostatistics sqrt(F/N_pe) = 2.1 % that
    dominates it, within 10 % (the constant-c fit absorbs part of the leakage fluctuations,
    which grow with energy) plus 5 sigma of its fit error, and lie in the CMS ballpark
    (CMS test beam 2.8 % with a fixed 5x5 window, whose lateral-containment fluctuations a
    topological cluster avoids): 1.8-4 %.
    """
    energies = [3.0, 6.0, 12.0, 25.0, 50.0, 100.0]
    df = _resolution_scan(ECAL, energies, 600, 100)
    assert np.all(np.abs(df["resp"] - 1) < 0.02)  # linear at 2 % over 3-100 GeV
    e = df["e"].to_numpy()
    var = df["res"].to_numpy() ** 2
    var_err = var * np.sqrt(2 / df["n"].to_numpy())
    (_a, b, c), (_ea, eb, _ec) = _fit(e, var, var_err, (True, True, True))
    b_expect = ECAL.noise_gev * math.sqrt(df["ncells"].mean()) * df["calib"].iloc[0]
    assert abs(b - b_expect) < 5 * eb + 0.2 * b_expect  # 20 %: n_cells grows with E
    assert c < 0.01
    quiet = C.ECALConfig(noise_gev=0.0, zs_threshold_gev=0.0, sr_threshold_gev=math.inf)
    dq = _resolution_scan(quiet, [2.0, 5.0, 10.0, 20.0, 50.0], 600, 150)
    e = dq["e"].to_numpy()
    var = dq["res"].to_numpy() ** 2
    var_err = var * np.sqrt(2 / dq["n"].to_numpy())
    (a, _, c), (ea, _, _) = _fit(e, var, var_err, (True, False, True))
    photostat = math.sqrt(ECAL.excess_noise_factor / ECAL.photoelectrons_per_gev)
    assert abs(a / photostat - 1) < 0.1 + 5 * ea / photostat
    assert 0.018 < a < 0.04
    assert c < 0.01


def test_ecal_noise_term_is_noise_times_sqrt_ncells() -> None:
    """Same seed with and without noise: the cluster-energy difference has variance
    calib^2 * noise^2 * n_cells (all cells read out, no thresholds); 5 sigma of the variance
    ratio's MC error sqrt(2/N)."""
    base = {"zs_threshold_gev": -math.inf, "sr_threshold_gev": math.inf}
    noisy = C.ECALConfig.from_dict({**base, "noise_gev": 0.05})
    clean = C.ECALConfig.from_dict({**base, "noise_gev": 0.0})
    n = 800
    ln = _leading(_shoot(11, 20.0, n, 9, ecal=noisy)).set_index("event_id")
    lc = _leading(_shoot(11, 20.0, n, 9, ecal=clean)).set_index("event_id")
    same = ln["n_ecal_cells"] == lc["n_ecal_cells"]
    assert same.mean() > 0.95
    calib = C.ecal_calibration(noisy, HCAL)
    d = ln["ecal_energy_gev"] / calib - lc["ecal_energy_gev"] / C.ecal_calibration(clean, HCAL)
    d = d[same]
    ratio = (d**2).mean() / (0.05**2 * ln.loc[same, "n_ecal_cells"]).mean()
    assert abs(ratio - 1) < 5 * math.sqrt(2 / len(d))


def test_sampling_term_emerges_from_crossings() -> None:
    """Pb/scintillator sampling ECAL: fitted stochastic term vs the simulated crossing
    process (model) and vs the empirical 2.7 % sqrt(d[mm]/f_samp) (Wigmans).

    Tolerances: model - 5 sigma of the fit error plus 10 % for the shower (containment /
    leakage) fluctuations that add in quadrature; Wigmans' rule is empirical to 10-15 % (our
    crossing model puts 8.8 % vs 9.4 % here), so 15 %.
    """
    ecal = C.ECALConfig.from_dict(PB_SCINT)
    expect = C.expected_sampling_term(ecal)
    energies = [2.0, 5.0, 10.0, 20.0, 50.0]
    df = _resolution_scan(ecal, energies, 500, 200)
    assert np.all(np.abs(df["resp"] - 1) < 0.02)
    e = df["e"].to_numpy()
    var = df["res"].to_numpy() ** 2
    var_err = var * np.sqrt(2 / df["n"].to_numpy())
    (a, _, _), (ea, _, _) = _fit(e, var, var_err, (True, False, True))
    assert expect["model"] - 5 * ea < a < 1.1 * expect["model"] + 5 * ea
    assert abs(a / expect["wigmans"] - 1) < 0.15
    assert abs(expect["model"] / expect["wigmans"] - 1) < 0.15


def test_sampling_preset_runs_and_is_coarser_resolution() -> None:
    fcc = C.ECALConfig.from_dict({"preset": "fcc-siw"})
    res = _shoot(11, 20.0, 150, 300, ecal=fcc)
    lead = _leading(res)
    m, s, _ = _core_sigma(lead["energy_gev"].to_numpy())
    assert abs(m / 20 - 1) < 0.03
    # Si-W sampling (~14 %/sqrt(E) from the crossing model) is much worse than PbWO4
    assert 0.5 * C.expected_sampling_term(fcc)["model"] / math.sqrt(20) < s / 20
    assert s / 20 < 2.0 * C.expected_sampling_term(fcc)["model"] / math.sqrt(20)


# --------------------------------------------------------------------------- hadrons
def test_hadron_response_and_resolution() -> None:
    """e/pi > 1 for e/h > 1, approaching 1 with energy; resolution 50-100 %/sqrt(E) (+) c."""
    energies = [5.0, 20.0, 100.0]
    resp, res, ns = [], [], []
    for i, e_gev in enumerate(energies):
        lead = _leading(_shoot(211, e_gev, 1200, 400 + i))
        x = lead["energy_gev"].to_numpy() / e_gev
        resp.append((x.mean(), x.std() / math.sqrt(len(x))))
        res.append(x.std())
        ns.append(len(x))
    # electrons are calibrated to 1 (tested above); e/pi = 1 / pion response
    for m, s in resp:
        assert 1 / m > 1 + 5 * s
    assert resp[2][0] - resp[0][0] > 5 * math.hypot(resp[0][1], resp[2][1])
    e = np.array(energies)
    var = np.array(res) ** 2
    var_err = var * np.sqrt(2 / np.array(ns))
    (a, _, c), _ = _fit(e, var, var_err, (True, False, True))
    assert 0.5 < a < 1.0
    assert c < 0.15
    # compensating calorimeters (e/h = 1): response ~ 1, no e/pi effect beyond leakage
    comp_e = C.ECALConfig(e_over_h=1.0)
    comp_h = C.HCALConfig(e_over_h=1.0)
    lead = _leading(_shoot(211, 20.0, 600, 500, ecal=comp_e, hcal=comp_h))
    assert lead["energy_gev"].mean() / 20 > resp[1][0] + 0.05


def test_cluster_shapes_separate_electrons_from_hadrons() -> None:
    le = _leading(_shoot(11, 30.0, 300, 600))
    lp = _leading(_shoot(211, 30.0, 300, 601))
    ln = _leading(_shoot(2112, 30.0, 300, 602))
    assert (le["truth_index"] == le["event_id"]).all()
    assert (le["e3x3_gev"] / le["e5x5_gev"]).median() > 0.9
    assert le["hcal_over_ecal"].median() < 0.01
    assert lp["hcal_over_ecal"].median() > 0.5
    assert le["sigma_ietaieta"].median() < lp["sigma_ietaieta"].dropna().median()
    assert ln["hcal_energy_gev"].mean() > 0.5 * ln["energy_gev"].mean()
    # positions: the electron cluster sits at the impact point (within a cell)
    res = _shoot(11, 30.0, 200, 603)
    lead = _leading(res).set_index("event_id")
    dep = res.deposits.set_index("event_id").loc[lead.index]
    assert np.median(np.abs(lead["eta"] - dep["eta"])) < ECAL.cell_deta / 2


def test_empty_input() -> None:
    z = np.zeros(0)
    res = C.simulate_calorimeters(
        z.astype(np.int64),
        z.astype(np.int64),
        z.astype(np.int64),
        z,
        z,
        z,
        ECAL,
        HCAL,
        np.random.default_rng(1),
    )
    assert len(res.cells) == len(res.clusters) == len(res.deposits) == 0
    assert {"energy_gev", "e3x3_gev", "sigma_ietaieta", "truth_index"} <= set(res.clusters)


def test_noise_only_events_give_no_clusters() -> None:
    ev = np.array([0, 1], dtype=np.int64)
    res = C.simulate_calorimeters(
        ev,
        ev,
        np.array([12, 14]),
        np.array([10.0, 10.0]),
        np.array([0.0, 0.0]),
        np.array([0.0, 0.0]),
        ECAL,
        HCAL,
        np.random.default_rng(1),
    )
    assert len(res.clusters) == 0
    # noise-only cells above the 4 sigma threshold: ~ n_cells * P(z > 4) per event
    neta, nphi, _, _ = C._grid(ECAL)
    expect = 2 * neta * nphi * special.ndtr(-ECAL.zs_threshold_gev / ECAL.noise_gev)
    got = int((res.cells["calo"] == "ecal").sum())
    assert abs(got - expect) < 5 * math.sqrt(expect)


def test_noise_cells_when_every_candidate_hits_an_occupied_cell() -> None:
    """Regression: when every noise candidate falls on a cell with a deposit (a fully
    occupied event), no noise-only cell is returned instead of an IndexError (seen in
    ``ariasim active`` runs of the collider pipeline)."""
    from dataclasses import replace

    from ariasim.simulators.collider import calorimeter as calo

    cfg = replace(calo.ECALConfig(), noise_gev=1.0, zs_threshold_gev=2.0)
    neta, nphi, _, _ = calo._grid(cfg)
    occupied = np.arange(neta * nphi, dtype=np.int64)  # event 0: every cell has a deposit
    ev, key, val = calo._noise_only_cells(np.array([0]), occupied, cfg, np.random.default_rng(1))
    assert len(ev) == len(key) == len(val) == 0
