"""Tracker simulation: propagate truth particles through beam pipe and tracker layers.

Particles are propagated on exact helices in the uniform solenoid field, all particles of a
batch stepping through material layer ``i`` together (NumPy, with the helix-cylinder
intersection compiled by numba). At every layer crossed they suffer

* multiple scattering: two independent Gaussian projected angles of width theta0 from the
  Highland formula, for the path length at the actual incidence angle;
* ionisation: the mean Bethe-Bloch loss (with the high-energy density-effect correction);
* electrons: bremsstrahlung, the fraction of energy kept ``z`` sampled from the
  Bethe-Heitler distribution ``(-ln z)^(c-1)/Gamma(c)``, ``c = t/ln 2``; the radiated energy
  leaves as a collinear photon that is followed like any other photon;
* photons: conversion with probability ``1 - exp(-7/9 t)`` into an e+e- pair sharing the
  energy by the complete-screening Bethe-Heitler spectrum; the pair is followed;
* hadrons: a nuclear interaction with probability ``1 - exp(-t_lambda)``; the hadron makes
  no hits beyond that layer, but its energy still reaches the calorimeter.

Hits are recorded with the layer efficiency and smeared with the layer resolution in r-phi
and z. Surviving particles are followed to the ECAL face.

References:
    V. L. Highland, NIM 129 (1975) 497; G. R. Lynch and O. I. Dahl, NIM B 58 (1991) 6.
    H. Bethe and W. Heitler, Proc. R. Soc. A 146 (1934) 83 (bremsstrahlung, pair production).
    Particle Data Group, "Passage of particles through matter" (Bethe-Bloch, Highland,
    7/9 X0 pair-production length, interaction lengths).

Arguments:
    See :func:`propagate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ariasim.simulators.collider.detector import MATERIALS, DetectorConfig
from ariasim.simulators.collider.tracking.helix import face_position, helix_to_radius
from ariasim.simulators.collider.tracking.physics import (
    C_LIGHT,
    M_E_GEV,
    bethe_bloch_dedx,
    highland_theta0,
    sample_pair_fraction,
)

__all__ = ["TrackerSimulation", "propagate"]

_ELECTRON = 11
_PHOTON = 22

_FIELDS_F = ("x", "y", "z", "phi", "theta", "p", "e", "mass", "brem_e", "e_start")
_FIELDS_I = (
    "pdg",
    "charge",
    "truth_index",
    "event_id",
    "parent",
    "created_layer",
    "interacted_layer",
    "converted_layer",
    "stopped_layer",
)
_FIELDS_B = ("alive", "tracking", "secondary")


@dataclass
class TrackerSimulation:
    """Result of :func:`propagate`: one entry per simulated particle (primaries and secondaries).

    Arguments:
        particles: DataFrame with sim_id, event_id, truth_index (row of the truth table the
            particle descends from), parent (sim_id, -1 for primaries), pdg, charge, secondary,
            created_layer, interacted_layer, converted_layer, stopped_layer (-1: none),
            brem_e_gev (radiated in the tracker), e_start_gev, reached_calo, e_calo_gev,
            eta_calo, phi_calo (position at the ECAL face), p_calo_gev, theta_calo,
            phi_dir_calo, x_calo_m, y_calo_m, z_calo_m.
        hit: (n, n_layers) hit recorded.
        phi_meas: (n, n_layers) measured azimuth of the hit [rad].
        z_meas_m: (n, n_layers) measured z of the hit [m].

    Example:
        The hit pattern of particles (here built by hand; :func:`propagate` fills it):

        >>> import numpy as np
        >>> import pandas as pd
        >>> from ariasim.simulators.collider.tracking import TrackerSimulation
        >>> hit = np.array([[True, True, False], [False, True, True]])
        >>> sim = TrackerSimulation(pd.DataFrame({"sim_id": [0, 1]}), hit,
        ...                         np.where(hit, 0.1, np.nan), np.where(hit, 0.0, np.nan))
        >>> sim.hit.sum(axis=1).tolist(), sim.hit.argmax(axis=1).tolist()  # hits, first layer
        ([2, 2], [0, 1])
    """

    particles: pd.DataFrame
    hit: np.ndarray
    phi_meas: np.ndarray
    z_meas_m: np.ndarray


class _State:
    def __init__(self, n_layers: int) -> None:
        self.n_layers = n_layers
        self.f = {k: np.zeros(0) for k in _FIELDS_F}
        self.i = {k: np.zeros(0, dtype=np.int64) for k in _FIELDS_I}
        self.b = {k: np.zeros(0, dtype=np.bool_) for k in _FIELDS_B}
        self.hit = np.zeros((0, n_layers), dtype=np.bool_)
        self.phi_meas = np.zeros((0, n_layers))
        self.z_meas = np.zeros((0, n_layers))

    @property
    def n(self) -> int:
        return self.f["x"].size

    def append(self, **cols: np.ndarray) -> None:
        m = np.size(cols["x"])
        if m == 0:
            return
        for group, dtype, default in (
            (self.f, float, 0.0),
            (self.i, np.int64, -1),
            (self.b, np.bool_, False),
        ):
            for k in group:
                v = cols.get(k)
                arr = (
                    np.full(m, default, dtype=dtype)
                    if v is None
                    else np.broadcast_to(np.asarray(v, dtype=dtype), (m,))
                )
                group[k] = np.concatenate([group[k], arr])
        self.hit = np.vstack([self.hit, np.zeros((m, self.n_layers), dtype=np.bool_)])
        nan = np.full((m, self.n_layers), np.nan)
        self.phi_meas = np.vstack([self.phi_meas, nan])
        self.z_meas = np.vstack([self.z_meas, nan])


def _curvature(st: _State, idx: np.ndarray, b_field_t: float) -> np.ndarray:
    pt = st.f["p"][idx] * np.sin(st.f["theta"][idx])
    q = st.i["charge"][idx].astype(float)
    return -C_LIGHT * q * b_field_t / np.maximum(pt, 1e-12)


def propagate(
    truth: pd.DataFrame,
    detector: DetectorConfig,
    rng: np.random.Generator,
    *,
    max_generations: int = 8,
) -> TrackerSimulation:
    """Propagate truth particles through beam pipe and tracker to the ECAL face.

    Arguments:
        truth: Truth-particle table (see
        :func:`~ariasim.simulators.collider.particles.particle_table`);
            its row position is the ``truth_index``.
        detector: Detector configuration.
        rng: Random generator.
        max_generations: Secondaries (brems photons, conversion pairs) are followed this
            many generations deep.
    """
    layers = detector.layers
    n_layers = len(layers)
    bp = detector.beam_pipe
    # material surfaces: 0 = beam pipe, 1..n_layers = tracker layers
    mat_r = np.array([bp.radius_m] + [la.radius_m for la in layers])
    mat_hl = np.array([bp.half_length_m] + [la.half_length_m for la in layers])
    mat_x0 = np.array([bp.thickness_x0] + [la.thickness_x0 for la in layers])
    mat_lam = np.array([bp.thickness_lambda] + [la.thickness_lambda for la in layers])
    mat_name = [bp.material] + [la.material for la in layers]
    mat_xg = np.array([MATERIALS[m].x0_g_cm2 for m in mat_name])
    sig_rphi = np.array([la.sigma_rphi_um for la in layers]) * 1e-6
    sig_z = np.array([la.sigma_z_um for la in layers]) * 1e-6
    eff = np.array([la.efficiency for la in layers])
    b = detector.b_field_t
    e_cut = detector.tracking.min_secondary_energy_gev

    st = _State(n_layers)
    pt = truth["pt_gev"].to_numpy(float)
    pz = truth["pz_gev"].to_numpy(float)
    p = np.hypot(pt, pz)
    vx = truth["vx_mm"].to_numpy(float) * 1e-3
    vy = truth["vy_mm"].to_numpy(float) * 1e-3
    r_v = np.hypot(vx, vy)
    created = np.searchsorted(mat_r, r_v, side="right") - 1  # last surface inside the vertex
    pdg = truth["pdg"].to_numpy(np.int64)
    from ariasim.simulators.collider.particles import is_invisible

    st.append(
        x=vx,
        y=vy,
        z=truth["vz_mm"].to_numpy(float) * 1e-3,
        phi=truth["phi"].to_numpy(float),
        theta=np.arctan2(pt, pz),
        p=p,
        e=truth["e_gev"].to_numpy(float),
        mass=truth["mass_gev"].to_numpy(float),
        e_start=truth["e_gev"].to_numpy(float),
        pdg=pdg,
        charge=truth["charge"].to_numpy(np.int64),
        truth_index=np.arange(len(truth)),
        event_id=truth["event_id"].to_numpy(np.int64),
        parent=-1,
        created_layer=created,
        alive=~is_invisible(pdg) & (p > 0),
        tracking=truth["charge"].to_numpy(np.int64) != 0,
        secondary=False,
    )

    for j in range(mat_r.size):
        active = np.flatnonzero(st.b["alive"] & (st.i["created_layer"] < j))
        if active.size == 0:
            continue
        c = _curvature(st, active, b)
        ok, s, xn, yn, phin = helix_to_radius(
            st.f["x"][active], st.f["y"][active], st.f["phi"][active], c, mat_r[j]
        )
        lost = active[~ok]
        st.b["alive"][lost] = False
        st.i["stopped_layer"][lost] = j
        idx = active[ok]
        s, xn, yn, phin = s[ok], xn[ok], yn[ok], phin[ok]
        theta = st.f["theta"][idx]
        st.f["x"][idx], st.f["y"][idx], st.f["phi"][idx] = xn, yn, phin
        st.f["z"][idx] += s / np.tan(theta)
        inside = np.abs(st.f["z"][idx]) <= mat_hl[j]
        idx, xn, yn, phin, theta = idx[inside], xn[inside], yn[inside], phin[inside], theta[inside]
        if idx.size == 0:
            continue
        m = idx.size
        # path length through the layer at the actual incidence angle
        cos_inc = np.abs(np.sin(theta) * np.cos(phin - np.arctan2(yn, xn)))
        stretch = 1.0 / np.maximum(cos_inc, 0.02)
        t_x0 = mat_x0[j] * stretch
        t_lam = mat_lam[j] * stretch
        charge = st.i["charge"][idx]
        charged = charge != 0
        pdg_j = st.i["pdg"][idx]
        # ---- hits (tracker layers only), before the material of this layer acts
        if j >= 1:
            lay = j - 1
            can = charged & st.b["tracking"][idx]
            rec = can & (rng.random(m) < eff[lay])
            h = idx[rec]
            r_j = mat_r[j]
            st.hit[h, lay] = True
            st.phi_meas[h, lay] = (
                np.arctan2(yn[rec], xn[rec]) + rng.normal(0.0, sig_rphi[lay], h.size) / r_j
            )
            st.z_meas[h, lay] = st.f["z"][h] + rng.normal(0.0, sig_z[lay], h.size)
        # ---- hadronic interaction: stops the track, energy still flows to the calorimeter
        hadron = np.abs(pdg_j) > 100
        inter = hadron & (st.i["interacted_layer"][idx] < 0) & (rng.random(m) < -np.expm1(-t_lam))
        st.i["interacted_layer"][idx[inter]] = j
        st.b["tracking"][idx[inter]] = False
        # ---- charged: multiple scattering and ionisation
        ci = idx[charged]
        if ci.size:
            p_c = st.f["p"][ci]
            e_c = st.f["e"][ci]
            mass_c = st.f["mass"][ci]
            beta = p_c / np.maximum(e_c, 1e-12)
            th0 = highland_theta0(p_c, beta, t_x0[charged], charge[charged])
            a1 = rng.normal(0.0, 1.0, ci.size) * th0
            a2 = rng.normal(0.0, 1.0, ci.size) * th0
            th = st.f["theta"][ci]
            st.f["phi"][ci] += a1 / np.maximum(np.sin(th), 1e-6)
            th_new = th + a2
            th_new = np.where(th_new < 0, -th_new, th_new)
            th_new = np.where(th_new > np.pi, 2 * np.pi - th_new, th_new)
            st.f["theta"][ci] = th_new
            bg = p_c / np.maximum(mass_c, M_E_GEV)
            de = (
                bethe_bloch_dedx(bg, mass_c, mat_name[j], charge[charged])
                * t_x0[charged]
                * mat_xg[j]
                * 1e-3
            )
            e_new = e_c - de
            # bremsstrahlung of electrons (Bethe-Heitler)
            ele = np.abs(st.i["pdg"][ci]) == _ELECTRON
            if np.any(ele):
                shape = t_x0[charged][ele] / math.log(2.0)
                keep = np.exp(-rng.gamma(shape, 1.0))
                e_gam = e_new[ele] * (1.0 - keep)
                e_new[ele] = e_new[ele] * keep
                ce = ci[ele]
                radiate = e_gam > e_cut
                st.f["brem_e"][ce] += e_gam
                g = ce[radiate]
                if g.size and st.i["created_layer"].size and _generation(st, g) < max_generations:
                    st.append(
                        x=st.f["x"][g],
                        y=st.f["y"][g],
                        z=st.f["z"][g],
                        phi=st.f["phi"][g],
                        theta=st.f["theta"][g],
                        p=e_gam[radiate],
                        e=e_gam[radiate],
                        mass=0.0,
                        e_start=e_gam[radiate],
                        pdg=_PHOTON,
                        charge=0,
                        truth_index=st.i["truth_index"][g],
                        event_id=st.i["event_id"][g],
                        parent=g,
                        created_layer=j,
                        alive=True,
                        tracking=False,
                        secondary=True,
                    )
            dead = e_new <= mass_c + 1e-6
            e_new = np.maximum(e_new, mass_c + 1e-6)
            st.f["e"][ci] = e_new
            st.f["p"][ci] = np.sqrt(np.maximum(e_new**2 - mass_c**2, 1e-18))
            st.b["alive"][ci[dead]] = False
            st.i["stopped_layer"][ci[dead]] = j
        # ---- photon conversions
        gam = pdg_j == _PHOTON
        if np.any(gam):
            gi = idx[gam]
            conv = (rng.random(gi.size) < -np.expm1(-7.0 / 9.0 * t_x0[gam])) & (
                st.f["e"][gi] > 2 * M_E_GEV
            )
            gc = gi[conv]
            if gc.size:
                st.b["alive"][gc] = False
                st.i["converted_layer"][gc] = j
                frac = sample_pair_fraction(rng, gc.size)
                eg = st.f["e"][gc]
                for sign, efrac in ((-1, frac), (1, 1.0 - frac)):
                    ee = np.maximum(eg * efrac, M_E_GEV * 1.0001)
                    keep = ee > e_cut
                    if not np.any(keep):
                        continue
                    g = gc[keep]
                    ek = ee[keep]
                    st.append(
                        x=st.f["x"][g],
                        y=st.f["y"][g],
                        z=st.f["z"][g],
                        phi=st.f["phi"][g],
                        theta=st.f["theta"][g],
                        p=np.sqrt(ek**2 - M_E_GEV**2),
                        e=ek,
                        mass=M_E_GEV,
                        e_start=ek,
                        pdg=_ELECTRON * (-sign),
                        charge=sign,
                        truth_index=st.i["truth_index"][g],
                        event_id=st.i["event_id"][g],
                        parent=g,
                        created_layer=j,
                        alive=True,
                        tracking=True,
                        secondary=True,
                    )

    # ---- to the ECAL face (barrel cylinder closed by endcap discs)
    n = st.n
    out = {k: np.full(n, np.nan) for k in ("x", "y", "z", "phi_dir")}
    active = np.flatnonzero(st.b["alive"])
    if active.size:
        c = _curvature(st, active, b)
        x, y, z, phi_dir, ok = face_position(
            st.f["x"][active],
            st.f["y"][active],
            st.f["z"][active],
            st.f["phi"][active],
            1.0 / np.tan(st.f["theta"][active]),
            c,
            detector.ecal_r_inner_m,
            float(detector.ecal.z_endcap_m),
        )
        a = active[ok]
        out["x"][a], out["y"][a], out["z"][a], out["phi_dir"][a] = x[ok], y[ok], z[ok], phi_dir[ok]
        st.i["stopped_layer"][active[~ok]] = mat_r.size
    reached = np.isfinite(out["x"])
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_calo = np.arcsinh(out["z"] / np.hypot(out["x"], out["y"]))
    parts = pd.DataFrame(
        {
            "sim_id": np.arange(n),
            "event_id": st.i["event_id"],
            "truth_index": st.i["truth_index"],
            "parent": st.i["parent"],
            "pdg": st.i["pdg"],
            "charge": st.i["charge"],
            "secondary": st.b["secondary"],
            "created_layer": st.i["created_layer"],
            "interacted_layer": st.i["interacted_layer"],
            "converted_layer": st.i["converted_layer"],
            "stopped_layer": st.i["stopped_layer"],
            "brem_e_gev": st.f["brem_e"],
            "e_start_gev": st.f["e_start"],
            "mass_gev": st.f["mass"],
            "reached_calo": reached,
            "e_calo_gev": np.where(reached, st.f["e"], 0.0),
            "p_calo_gev": np.where(reached, st.f["p"], 0.0),
            "theta_calo": st.f["theta"],
            "phi_dir_calo": out["phi_dir"],
            "eta_calo": eta_calo,
            "phi_calo": np.arctan2(out["y"], out["x"]),
            "x_calo_m": out["x"],
            "y_calo_m": out["y"],
            "z_calo_m": out["z"],
        }
    )
    return TrackerSimulation(parts, st.hit, st.phi_meas, st.z_meas)


def _generation(st: _State, idx: np.ndarray) -> int:
    """Depth of the deepest particle among ``idx`` in the secondary tree (cheap bound)."""
    depth = 0
    cur = idx
    while cur.size and depth < 64:
        cur = st.i["parent"][cur]
        cur = cur[cur >= 0]
        depth += 1
    return depth
