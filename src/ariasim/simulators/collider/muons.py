"""Muon system: stations behind the calorimeters, coil and return yoke; track matching.

A particle leaving the calorimeters (muons, and the leakage of hadron showers that punch
through) loses energy in the calorimeters (taken from the calorimeter simulation), then in
the coil and iron in front of the first station and between stations (mean loss scaled by
the path length, Landau-like (Moyal) fluctuations), and scatters (Highland, in the
configured radiation lengths). It bends in the solenoid field up to the coil radius and
flies straight beyond. Each station it reaches records a hit with the station efficiency,
smeared with the station resolution. So whether a muon reaches the system (and how many
stations) emerges from its momentum, its direction and the material.

Reconstruction extrapolates each fitted track the same way with the mean losses and no
scattering and counts the stations with a hit within ``match_pull_max`` standard deviations
(hit resolution and expected scattering displacement).

References:
    Particle Data Group, "Passage of particles through matter" (Highland; muon energy loss).
    J. E. Moyal, Phil. Mag. 46 (1955) 263 (approximation of the Landau distribution).

Arguments:
    See :func:`simulate_muon_stations` and :func:`match_tracks_to_stations`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ariasim.simulators.collider.detector import DetectorConfig
from ariasim.simulators.collider.tracking import C_LIGHT, helix_to_radius, highland_theta0

__all__ = ["calorimeter_mip_loss_gev", "match_tracks_to_stations", "simulate_muon_stations"]

_MOYAL_MEAN = 0.5772156649 + np.log(2.0)
_STATION_COLUMNS = ["event_id", "station", "phi", "z_m", "sim_id", "truth_index"]


def calorimeter_mip_loss_gev(detector: DetectorConfig) -> float:
    """Mean ionisation loss of a muon crossing ECAL and HCAL at normal incidence [GeV]."""
    ecal, hcal = detector.ecal, detector.hcal
    return float(
        ecal.depth_cm * ecal.mip_dedx_gev_per_cm + hcal.depth_cm * hcal.mip_dedx_gev_per_cm
    )


def _path_factor(theta: np.ndarray) -> np.ndarray:
    s = np.abs(np.sin(theta))
    c = np.abs(np.cos(theta))
    return 1.0 / np.maximum(np.maximum(s, c), 1e-3)


def _trajectory(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    phi_dir: np.ndarray,
    theta: np.ndarray,
    e: np.ndarray,
    mass: np.ndarray,
    charge: np.ndarray,
    loss_face: np.ndarray,
    loss_between: np.ndarray,
    kick_face: np.ndarray,
    kick_between: np.ndarray,
    detector: DetectorConfig,
) -> tuple[np.ndarray, ...]:
    """Positions at the stations: (phi, z, reached), each (n, n_stations)."""
    mu = detector.muon
    n = x.size
    n_st = mu.n_stations
    phi_st = np.full((n, n_st), np.nan)
    z_st = np.full((n, n_st), np.nan)
    reached = np.zeros((n, n_st), dtype=np.bool_)
    e = e - loss_face
    alive = e > mass
    phi_dir = phi_dir + kick_face[:, 0] / np.maximum(np.sin(theta), 1e-6)
    theta = theta + kick_face[:, 1]
    x, y, z = x.copy(), y.copy(), z.copy()
    r_sol = detector.solenoid_radius_m
    inside = alive & (np.hypot(x, y) < r_sol) & (charge != 0)
    idx = np.flatnonzero(inside)
    if idx.size:
        p = np.sqrt(np.maximum(e[idx] ** 2 - mass[idx] ** 2, 1e-18))
        pt = p * np.sin(theta[idx])
        c = -C_LIGHT * charge[idx] * detector.b_field_t / np.maximum(pt, 1e-9)
        ok, s, xn, yn, pn = helix_to_radius(x[idx], y[idx], phi_dir[idx], c, r_sol)
        alive[idx[~ok]] = False
        g = idx[ok]
        x[g], y[g], phi_dir[g] = xn[ok], yn[ok], pn[ok]
        z[g] += s[ok] / np.tan(theta[g])
    for k in range(n_st):
        r_k = mu.radius_m + k * mu.station_spacing_m
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        ok, s, xn, yn, pn = helix_to_radius(x[idx], y[idx], phi_dir[idx], np.zeros(idx.size), r_k)
        alive[idx[~ok]] = False
        g = idx[ok]
        x[g], y[g] = xn[ok], yn[ok]
        z[g] += s[ok] / np.tan(theta[g])
        eta_pos = np.arcsinh(z[g] / r_k)
        acc = np.abs(eta_pos) <= mu.eta_max
        ga = g[acc]
        reached[ga, k] = True
        phi_st[ga, k] = np.arctan2(y[ga], x[ga])
        z_st[ga, k] = z[ga]
        e[g] -= loss_between[g, k]
        alive[g[e[g] <= mass[g]]] = False
        phi_dir[g] += kick_between[g, k, 0] / np.maximum(np.sin(theta[g]), 1e-6)
        theta[g] += kick_between[g, k, 1]
    return phi_st, z_st, reached


def simulate_muon_stations(
    sim_particles: pd.DataFrame,
    deposits: pd.DataFrame | None,
    detector: DetectorConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Hits in the muon stations from muons and hadron punch-through.

    Arguments:
        sim_particles: ``TrackerSimulation.particles`` (with the ECAL-face state).
        deposits: ``CaloResult.deposits`` for the particles passed to the calorimeters, in the
            same order as ``calo_index`` in ``sim_particles`` (None: no calorimeter losses).
        detector: Detector configuration.
        rng: Random generator.

    Returns:
        One row per station hit: event_id, station, phi, z_m, sim_id, truth_index.
    """
    mu = detector.muon
    sp = sim_particles
    reached = sp["reached_calo"].to_numpy()
    apdg = np.abs(sp["pdg"].to_numpy())
    calo_index = sp["calo_index"].to_numpy() if "calo_index" in sp else np.full(len(sp), -1)
    e_calo = sp["e_calo_gev"].to_numpy(float)
    loss_calo = np.zeros(len(sp))
    leak = np.zeros(len(sp))
    if deposits is not None and len(deposits):
        has = calo_index >= 0
        dep_e = deposits["e_true_ecal_gev"].to_numpy(float) + deposits["e_true_hcal_gev"].to_numpy(
            float
        )
        loss_calo[has] = dep_e[calo_index[has]]
        leak[has] = deposits["e_leak_gev"].to_numpy(float)[calo_index[has]]
    is_mu = reached & (apdg == 13)
    is_punch = reached & (apdg > 100) & (leak > mu.energy_loss_before_gev)
    sel = np.flatnonzero(is_mu | is_punch)
    if sel.size == 0:
        return pd.DataFrame(
            {
                c: np.zeros(0, dtype=float if c in ("phi", "z_m") else np.int64)
                for c in _STATION_COLUMNS
            }
        )
    punch = is_punch[sel]
    theta = sp["theta_calo"].to_numpy(float)[sel]
    mass = np.where(punch, 0.13957039, sp["mass_gev"].to_numpy(float)[sel])
    e_start = np.where(punch, np.sqrt(leak[sel] ** 2 + mass**2), e_calo[sel])
    charge = np.where(punch, 0, sp["charge"].to_numpy()[sel])
    path = _path_factor(theta)
    n = sel.size
    n_st = mu.n_stations
    moyal_face = -np.log(rng.standard_normal(n) ** 2) - _MOYAL_MEAN
    moyal_between = -np.log(rng.standard_normal((n, n_st)) ** 2) - _MOYAL_MEAN
    loss_face = np.where(punch, 0.0, loss_calo[sel]) + np.maximum(
        mu.energy_loss_before_gev * path * (1.0 + 0.1 * moyal_face), 0.0
    )
    loss_between = np.maximum(
        mu.energy_loss_between_gev * path[:, None] * (1.0 + 0.1 * moyal_between), 0.0
    )
    p_mid = np.sqrt(np.maximum((e_start - 0.5 * loss_face) ** 2 - mass**2, 1e-6))
    beta = p_mid / np.sqrt(p_mid**2 + mass**2)
    th_face = highland_theta0(p_mid, beta, mu.absorber_x0 * path)
    th_between = highland_theta0(p_mid, beta, mu.absorber_x0_between * path)
    kick_face = rng.standard_normal((n, 2)) * th_face[:, None]
    kick_between = rng.standard_normal((n, n_st, 2)) * th_between[:, None, None]
    phi_st, z_st, reach = _trajectory(
        sp["x_calo_m"].to_numpy(float)[sel],
        sp["y_calo_m"].to_numpy(float)[sel],
        sp["z_calo_m"].to_numpy(float)[sel],
        sp["phi_dir_calo"].to_numpy(float)[sel],
        theta,
        e_start,
        mass,
        charge,
        loss_face,
        loss_between,
        kick_face,
        kick_between,
        detector,
    )
    recorded = reach & (rng.random((n, n_st)) < mu.efficiency)
    rows, st = np.nonzero(recorded)
    radii = mu.radius_m + st * mu.station_spacing_m
    phi_meas = phi_st[rows, st] + rng.normal(0.0, mu.sigma_rphi_um * 1e-6, rows.size) / radii
    z_meas = z_st[rows, st] + rng.normal(0.0, mu.sigma_z_um * 1e-6, rows.size)
    src = sel[rows]
    return pd.DataFrame(
        {
            "event_id": sp["event_id"].to_numpy()[src],
            "station": st.astype(np.int64),
            "phi": phi_meas,
            "z_m": z_meas,
            "sim_id": sp["sim_id"].to_numpy()[src],
            "truth_index": sp["truth_index"].to_numpy()[src],
        }
    )


def match_tracks_to_stations(
    tracks: pd.DataFrame,
    track_face: dict[str, np.ndarray],
    hits: pd.DataFrame,
    detector: DetectorConfig,
    mass_gev: float = 0.1056583755,
) -> np.ndarray:
    """Number of muon stations with a hit compatible with each track.

    Arguments:
        tracks: Fitted tracks (``fit_tracks``), with event_id, pt_gev, cot_theta, charge.
        track_face: Extrapolated ECAL-face state of the tracks: x, y, z, phi_dir, ok.
        hits: Station hits (``simulate_muon_stations``).
        detector: Detector configuration.
        mass_gev: Mass hypothesis (muon).
    """
    mu = detector.muon
    n = len(tracks)
    out = np.zeros(n, dtype=np.int64)
    if n == 0 or len(hits) == 0:
        return out
    ok = track_face["ok"] & np.isfinite(tracks["pt_gev"].to_numpy(float))
    ok &= np.isin(tracks["event_id"].to_numpy(), hits["event_id"].to_numpy())
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    cot = tracks["cot_theta"].to_numpy(float)[idx]
    theta = np.arctan2(1.0, cot)
    pt = tracks["pt_gev"].to_numpy(float)[idx]
    p = pt * np.sqrt(1.0 + cot**2)
    e = np.sqrt(p**2 + mass_gev**2)
    path = _path_factor(theta)
    m = idx.size
    n_st = mu.n_stations
    loss_face = (calorimeter_mip_loss_gev(detector) + mu.energy_loss_before_gev) * path
    loss_between = np.broadcast_to((mu.energy_loss_between_gev * path)[:, None], (m, n_st))
    mass = np.full(m, mass_gev)
    phi_st, z_st, reach = _trajectory(
        track_face["x"][idx],
        track_face["y"][idx],
        track_face["z"][idx],
        track_face["phi_dir"][idx],
        theta,
        e,
        mass,
        tracks["charge"].to_numpy()[idx],
        loss_face,
        loss_between,
        np.zeros((m, 2)),
        np.zeros((m, n_st, 2)),
        detector,
    )
    # expected scattering displacement at each station
    p_mid = np.sqrt(np.maximum((e - 0.5 * loss_face) ** 2 - mass_gev**2, 1e-6))
    beta = p_mid / np.sqrt(p_mid**2 + mass_gev**2)
    th_face = highland_theta0(p_mid, beta, mu.absorber_x0 * path)
    th_b = highland_theta0(p_mid, beta, mu.absorber_x0_between * path)
    r_face = np.hypot(track_face["x"][idx], track_face["y"][idx])
    sin_t = np.maximum(np.sin(theta), 1e-3)
    tr_rows = []
    for k in range(n_st):
        r_k = mu.radius_m + k * mu.station_spacing_m
        var_ang = (th_face * (r_k - r_face)) ** 2
        for j in range(k):
            var_ang = var_ang + (th_b * mu.station_spacing_m * (k - j)) ** 2
        # bending of the scattered, slower track in the field adds to the r-phi spread
        sig_rphi = np.sqrt(var_ang / sin_t**2 * 2.0 + (mu.sigma_rphi_um * 1e-6) ** 2)
        sig_z = np.sqrt(var_ang / sin_t**4 + (mu.sigma_z_um * 1e-6) ** 2)
        tr_rows.append(
            pd.DataFrame(
                {
                    "row": idx,
                    "event_id": tracks["event_id"].to_numpy()[idx],
                    "station": k,
                    "phi_exp": phi_st[:, k],
                    "z_exp": z_st[:, k],
                    "sig_rphi": sig_rphi,
                    "sig_z": sig_z,
                    "r": r_k,
                    "reach": reach[:, k],
                }
            )
        )
    exp = pd.concat(tr_rows, ignore_index=True)
    exp = exp[exp["reach"]]
    pairs = exp.merge(hits[["event_id", "station", "phi", "z_m"]], on=["event_id", "station"])
    if len(pairs) == 0:
        return out
    dphi = np.angle(np.exp(1j * (pairs["phi"].to_numpy() - pairs["phi_exp"].to_numpy())))
    pull_rphi = dphi * pairs["r"].to_numpy() / pairs["sig_rphi"].to_numpy()
    pull_z = (pairs["z_m"].to_numpy() - pairs["z_exp"].to_numpy()) / pairs["sig_z"].to_numpy()
    good = (np.abs(pull_rphi) < mu.match_pull_max) & (np.abs(pull_z) < mu.match_pull_max)
    matched = pairs.loc[good, ["row", "station"]].drop_duplicates()
    counts = matched.groupby("row").size()
    out[counts.index.to_numpy()] = counts.to_numpy()
    return out
