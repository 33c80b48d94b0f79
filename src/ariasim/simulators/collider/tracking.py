"""Tracker simulation and track fit.

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
and z. Tracks with enough hits are fitted by a global chi2 helix fit whose measurement
covariance includes the correlated multiple-scattering displacements (the Gluckstern /
"global" treatment, equivalent to a Kalman filter with process noise), linearised and
iterated by Gauss-Newton from a three-point circle estimate. The fit gives pT, eta, phi,
d0, z0 and their errors.

References:
    V. L. Highland, NIM 129 (1975) 497; G. R. Lynch and O. I. Dahl, NIM B 58 (1991) 6.
    R. L. Gluckstern, "Uncertainties in track momentum and direction, due to multiple
    scattering and measurement errors", NIM 24 (1963) 381.
    R. Frühwirth, "Application of Kalman filtering to track and vertex fitting",
    NIM A 262 (1987) 444.
    H. Bethe and W. Heitler, Proc. R. Soc. A 146 (1934) 83 (bremsstrahlung, pair production).
    Particle Data Group, "Passage of particles through matter" (Bethe-Bloch, Highland,
    7/9 X0 pair-production length, interaction lengths).

Arguments:
    See :func:`propagate`, :func:`fit_tracks` and :func:`expected_pt_resolution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import pandas as pd

from ariasim.simulators.collider.detector import MATERIALS, DetectorConfig

__all__ = [
    "C_LIGHT",
    "TrackerSimulation",
    "bethe_bloch_dedx",
    "expected_pt_resolution",
    "face_position",
    "fit_tracks",
    "helix_to_radius",
    "highland_theta0",
    "propagate",
]

#: GeV per (T m e): pT [GeV] = C_LIGHT * B [T] * R [m] for unit charge.
C_LIGHT = 0.299792458
M_E_GEV = 0.51099895e-3
_PLASMA_EV = {"silicon": 31.05, "beryllium": 26.10, "carbon": 30.28, "aluminium": 32.86}
_ELECTRON = 11
_PHOTON = 22


def highland_theta0(p_gev: np.ndarray, beta: np.ndarray, x_over_x0: np.ndarray,
                    charge: np.ndarray | float = 1.0) -> np.ndarray:
    """Width of the projected multiple-scattering angle [rad] (Highland, Lynch-Dahl form).

    ``theta0 = 13.6 MeV / (beta c p) |z| sqrt(x/X0) [1 + 0.038 ln(x z^2 / (X0 beta^2))]``.

    Arguments:
        p_gev: Momentum [GeV].
        beta: Velocity [c].
        x_over_x0: Thickness traversed in radiation lengths.
        charge: Charge [e].
    """
    x = np.maximum(np.asarray(x_over_x0, dtype=float), 1e-12)
    z = np.abs(np.asarray(charge, dtype=float))
    beta = np.asarray(beta, dtype=float)
    return 0.0136 / (beta * p_gev) * z * np.sqrt(x) * (1.0 + 0.038 * np.log(x * z**2 / beta**2))


def bethe_bloch_dedx(beta_gamma: np.ndarray, mass_gev: np.ndarray, material: str = "silicon",
                     charge: np.ndarray | float = 1.0) -> np.ndarray:
    """Mean ionisation loss [MeV cm^2/g] (Bethe-Bloch with the high-energy density effect).

    Arguments:
        beta_gamma: p/m of the particle.
        mass_gev: Mass [GeV] (for the maximum energy transfer).
        material: Key of :data:`~ariasim.simulators.collider.detector.MATERIALS`.
        charge: Charge [e].
    """
    mat = MATERIALS[material]
    bg = np.maximum(np.asarray(beta_gamma, dtype=float), 1e-3)
    m = np.maximum(np.asarray(mass_gev, dtype=float), M_E_GEV)
    gamma = np.sqrt(1.0 + bg**2)
    beta2 = bg**2 / gamma**2
    ratio = M_E_GEV / m
    tmax = 2 * M_E_GEV * bg**2 / (1 + 2 * gamma * ratio + ratio**2)  # GeV
    i_gev = mat.i_ev * 1e-9
    half_delta = np.maximum(0.0, np.log(_PLASMA_EV[material] / mat.i_ev) + np.log(bg) - 0.5)
    z2 = np.asarray(charge, dtype=float) ** 2
    arg = 2 * M_E_GEV * bg**2 * tmax / i_gev**2
    return 0.307075 * z2 * mat.z_over_a / beta2 * (0.5 * np.log(arg) - beta2 - half_delta)


# --------------------------------------------------------------------------- helix geometry

@nb.njit(cache=True, inline="always")
def _sinc(v: float) -> float:
    if abs(v) < 1e-4:
        return 1.0 - v * v / 6.0
    return math.sin(v) / v


@nb.njit(cache=True, inline="always")
def _point(x0: float, y0: float, phi: float, c: float, s: float) -> tuple[float, float]:
    half = 0.5 * c * s
    f = s * _sinc(half)
    return x0 + f * math.cos(phi + half), y0 + f * math.sin(phi + half)


@nb.njit(cache=True)
def _helix_to_radius_1(x0: float, y0: float, phi: float, c: float,
                       r: float) -> tuple[bool, float, float, float, float]:
    """First crossing (s > 0) of the transverse circle with the cylinder of radius r."""
    p2 = x0 * x0 + y0 * y0
    pt_dot = x0 * math.cos(phi) + y0 * math.sin(phi)
    s = -1.0
    if abs(c) * r < 0.05 or abs(c) < 1e-12:
        disc = pt_dot * pt_dot - (p2 - r * r)
        if disc < 0.0:
            if abs(c) < 1e-12:
                return False, 0.0, 0.0, 0.0, 0.0
        else:
            s = -pt_dot + math.sqrt(disc)
    if s <= 0.0:
        if abs(c) < 1e-12:
            return False, 0.0, 0.0, 0.0, 0.0
        nx = -math.sin(phi)
        ny = math.cos(phi)
        cx = x0 + nx / c
        cy = y0 + ny / c
        a = math.sqrt(cx * cx + cy * cy)
        if a + 1.0 / abs(c) < r or abs(a - 1.0 / abs(c)) > r:
            return False, 0.0, 0.0, 0.0, 0.0
        k = 0.5 * (r * r - p2) * c - (x0 * nx + y0 * ny) - 1.0 / c
        q = k / a
        q = min(1.0, max(-1.0, q))
        alpha = math.atan2(cy, cx)
        best = 1e300
        for psi in (alpha + math.asin(q), alpha + math.pi - math.asin(q)):
            u = psi - phi
            two_pi = 2.0 * math.pi
            if c > 0:
                u = u % two_pi
            else:
                u = -((-u) % two_pi)
            cand = u / c
            if 1e-12 < cand < best:
                best = cand
        if best >= 1e299:
            return False, 0.0, 0.0, 0.0, 0.0
        s = best
    # Newton refinement of |P(s)|^2 = r^2
    for _ in range(3):
        xs, ys = _point(x0, y0, phi, c, s)
        ang = phi + c * s
        f = xs * xs + ys * ys - r * r
        df = 2.0 * (xs * math.cos(ang) + ys * math.sin(ang))
        if df == 0.0:
            break
        step = f / df
        s -= step
        if abs(step) < 1e-11:
            break
    if s <= 0.0:
        return False, 0.0, 0.0, 0.0, 0.0
    xs, ys = _point(x0, y0, phi, c, s)
    return True, s, xs, ys, phi + c * s


@nb.njit(cache=True)
def _helix_to_radius(x0: np.ndarray, y0: np.ndarray, phi: np.ndarray, c: np.ndarray, r: float,
                     ok: np.ndarray, s: np.ndarray, xn: np.ndarray, yn: np.ndarray,
                     phin: np.ndarray) -> None:
    for i in range(x0.size):
        o, si, xi, yi, pi = _helix_to_radius_1(x0[i], y0[i], phi[i], c[i], r)
        ok[i] = o
        s[i] = si
        xn[i] = xi
        yn[i] = yi
        phin[i] = pi


def helix_to_radius(x_m: np.ndarray, y_m: np.ndarray, phi: np.ndarray, curvature_per_m: np.ndarray,
                    r_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Propagate helices (transverse projection) to their first crossing of a cylinder.

    Arguments:
        x_m, y_m: Start point [m].
        phi: Direction azimuth at the start.
        curvature_per_m: Signed curvature dphi/ds [1/m] (``-0.3 q B / pT``).
        r_m: Cylinder radius [m].

    Returns:
        ``(ok, s_m, x_m, y_m, phi)``: reached flag, transverse path length, crossing point and
        direction azimuth there.
    """
    n = np.size(x_m)
    ok = np.zeros(n, dtype=np.bool_)
    s, xn, yn, phin = (np.zeros(n) for _ in range(4))
    _helix_to_radius(np.ascontiguousarray(x_m, dtype=float), np.ascontiguousarray(y_m, dtype=float),
                     np.ascontiguousarray(phi, dtype=float),
                     np.ascontiguousarray(curvature_per_m, dtype=float), float(r_m), ok, s, xn, yn, phin)
    return ok, s, xn, yn, phin


# --------------------------------------------------------------------------- propagation

_FIELDS_F = ("x", "y", "z", "phi", "theta", "p", "e", "mass", "brem_e", "e_start")
_FIELDS_I = ("pdg", "charge", "truth_index", "event_id", "parent", "created_layer",
             "interacted_layer", "converted_layer", "stopped_layer")
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
        for group, dtype, default in ((self.f, float, 0.0), (self.i, np.int64, -1),
                                      (self.b, np.bool_, False)):
            for k in group:
                v = cols.get(k)
                arr = np.full(m, default, dtype=dtype) if v is None else np.broadcast_to(
                    np.asarray(v, dtype=dtype), (m,))
                group[k] = np.concatenate([group[k], arr])
        self.hit = np.vstack([self.hit, np.zeros((m, self.n_layers), dtype=np.bool_)])
        nan = np.full((m, self.n_layers), np.nan)
        self.phi_meas = np.vstack([self.phi_meas, nan])
        self.z_meas = np.vstack([self.z_meas, nan])


def _curvature(st: _State, idx: np.ndarray, b_field_t: float) -> np.ndarray:
    pt = st.f["p"][idx] * np.sin(st.f["theta"][idx])
    q = st.i["charge"][idx].astype(float)
    return -C_LIGHT * q * b_field_t / np.maximum(pt, 1e-12)


def _sample_pair_fraction(rng: np.random.Generator, n: int) -> np.ndarray:
    """Energy fraction of the electron in a conversion: dsigma/dx ~ 1 - 4/3 x(1-x)."""
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        x = rng.random(todo.size)
        acc = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * x * (1.0 - x)
        out[todo[acc]] = x[acc]
        todo = todo[~acc]
    return out


def propagate(truth: pd.DataFrame, detector: DetectorConfig, rng: np.random.Generator,
              *, max_generations: int = 8) -> TrackerSimulation:
    """Propagate truth particles through beam pipe and tracker to the ECAL face.

    Arguments:
        truth: Truth-particle table (see :func:`~ariasim.simulators.collider.particles.particle_table`);
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

    st.append(x=vx, y=vy, z=truth["vz_mm"].to_numpy(float) * 1e-3, phi=truth["phi"].to_numpy(float),
              theta=np.arctan2(pt, pz), p=p, e=truth["e_gev"].to_numpy(float),
              mass=truth["mass_gev"].to_numpy(float), e_start=truth["e_gev"].to_numpy(float),
              pdg=pdg, charge=truth["charge"].to_numpy(np.int64),
              truth_index=np.arange(len(truth)), event_id=truth["event_id"].to_numpy(np.int64),
              parent=-1, created_layer=created, alive=~is_invisible(pdg) & (p > 0),
              tracking=truth["charge"].to_numpy(np.int64) != 0, secondary=False)

    for j in range(mat_r.size):
        active = np.flatnonzero(st.b["alive"] & (st.i["created_layer"] < j))
        if active.size == 0:
            continue
        c = _curvature(st, active, b)
        ok, s, xn, yn, phin = helix_to_radius(st.f["x"][active], st.f["y"][active],
                                              st.f["phi"][active], c, mat_r[j])
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
            st.phi_meas[h, lay] = np.arctan2(yn[rec], xn[rec]) + rng.normal(0.0, sig_rphi[lay], h.size) / r_j
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
            de = bethe_bloch_dedx(bg, mass_c, mat_name[j], charge[charged]) * t_x0[charged] * mat_xg[j] * 1e-3
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
                    st.append(x=st.f["x"][g], y=st.f["y"][g], z=st.f["z"][g], phi=st.f["phi"][g],
                              theta=st.f["theta"][g], p=e_gam[radiate], e=e_gam[radiate], mass=0.0,
                              e_start=e_gam[radiate], pdg=_PHOTON, charge=0,
                              truth_index=st.i["truth_index"][g], event_id=st.i["event_id"][g],
                              parent=g, created_layer=j, alive=True, tracking=False, secondary=True)
            dead = e_new <= mass_c + 1e-6
            e_new = np.maximum(e_new, mass_c + 1e-6)
            st.f["e"][ci] = e_new
            st.f["p"][ci] = np.sqrt(np.maximum(e_new**2 - mass_c**2, 1e-18))
            st.b["alive"][ci[dead]] = False
            st.i["stopped_layer"][ci[dead]] = j
        # ---- photon conversions
        gam = (pdg_j == _PHOTON)
        if np.any(gam):
            gi = idx[gam]
            conv = (rng.random(gi.size) < -np.expm1(-7.0 / 9.0 * t_x0[gam])) & (st.f["e"][gi] > 2 * M_E_GEV)
            gc = gi[conv]
            if gc.size:
                st.b["alive"][gc] = False
                st.i["converted_layer"][gc] = j
                frac = _sample_pair_fraction(rng, gc.size)
                eg = st.f["e"][gc]
                for sign, efrac in ((-1, frac), (1, 1.0 - frac)):
                    ee = np.maximum(eg * efrac, M_E_GEV * 1.0001)
                    keep = ee > e_cut
                    if not np.any(keep):
                        continue
                    g = gc[keep]
                    ek = ee[keep]
                    st.append(x=st.f["x"][g], y=st.f["y"][g], z=st.f["z"][g], phi=st.f["phi"][g],
                              theta=st.f["theta"][g], p=np.sqrt(ek**2 - M_E_GEV**2), e=ek,
                              mass=M_E_GEV, e_start=ek, pdg=_ELECTRON * (-sign), charge=sign,
                              truth_index=st.i["truth_index"][g], event_id=st.i["event_id"][g],
                              parent=g, created_layer=j, alive=True, tracking=True, secondary=True)

    # ---- to the ECAL face (barrel cylinder closed by endcap discs)
    n = st.n
    out = {k: np.full(n, np.nan) for k in ("x", "y", "z", "phi_dir")}
    active = np.flatnonzero(st.b["alive"])
    if active.size:
        c = _curvature(st, active, b)
        x, y, z, phi_dir, ok = face_position(
            st.f["x"][active], st.f["y"][active], st.f["z"][active], st.f["phi"][active],
            1.0 / np.tan(st.f["theta"][active]), c, detector.ecal_r_inner_m,
            float(detector.ecal.z_endcap_m))
        a = active[ok]
        out["x"][a], out["y"][a], out["z"][a], out["phi_dir"][a] = x[ok], y[ok], z[ok], phi_dir[ok]
        st.i["stopped_layer"][active[~ok]] = mat_r.size
    reached = np.isfinite(out["x"])
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_calo = np.arcsinh(out["z"] / np.hypot(out["x"], out["y"]))
    parts = pd.DataFrame({
        "sim_id": np.arange(n), "event_id": st.i["event_id"], "truth_index": st.i["truth_index"],
        "parent": st.i["parent"], "pdg": st.i["pdg"], "charge": st.i["charge"],
        "secondary": st.b["secondary"], "created_layer": st.i["created_layer"],
        "interacted_layer": st.i["interacted_layer"], "converted_layer": st.i["converted_layer"],
        "stopped_layer": st.i["stopped_layer"], "brem_e_gev": st.f["brem_e"],
        "e_start_gev": st.f["e_start"], "mass_gev": st.f["mass"], "reached_calo": reached,
        "e_calo_gev": np.where(reached, st.f["e"], 0.0), "p_calo_gev": np.where(reached, st.f["p"], 0.0),
        "theta_calo": st.f["theta"], "phi_dir_calo": out["phi_dir"],
        "eta_calo": eta_calo, "phi_calo": np.arctan2(out["y"], out["x"]),
        "x_calo_m": out["x"], "y_calo_m": out["y"], "z_calo_m": out["z"],
    })
    return TrackerSimulation(parts, st.hit, st.phi_meas, st.z_meas)


def face_position(x_m: np.ndarray, y_m: np.ndarray, z_m: np.ndarray, phi: np.ndarray,
                  cot_theta: np.ndarray, curvature_per_m: np.ndarray, r_face_m: float,
                  z_endcap_m: float) -> tuple[np.ndarray, ...]:
    """Where helices hit the calorimeter face: the cylinder ``r_face_m`` or an endcap disc.

    Arguments:
        x_m, y_m, z_m: Start points [m].
        phi: Direction azimuth at the start.
        cot_theta: cot of the polar angle.
        curvature_per_m: Signed transverse curvature [1/m].
        r_face_m: Barrel face radius [m].
        z_endcap_m: |z| of the endcap faces [m].

    Returns:
        ``(x, y, z, phi_dir, ok)``; ``ok`` is False for particles that reach neither.
    """
    ok_c, s_c, _, _, _ = helix_to_radius(x_m, y_m, phi, curvature_per_m, r_face_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_e = (np.sign(cot_theta) * z_endcap_m - z_m) / cot_theta
    ok_e = np.isfinite(s_e) & (s_e > 0)
    s = np.where(ok_c, s_c, np.inf)
    s = np.where(ok_e & (s_e < s), s_e, s)
    ok = np.isfinite(s)
    s = np.where(ok, s, 0.0)
    half = 0.5 * curvature_per_m * s
    with np.errstate(invalid="ignore"):
        sinc = np.where(np.abs(half) < 1e-4, 1.0 - half**2 / 6.0, np.sin(half) / np.where(half == 0, 1.0, half))
    f = s * sinc
    x = x_m + f * np.cos(phi + half)
    y = y_m + f * np.sin(phi + half)
    z = z_m + s * cot_theta
    return x, y, z, phi + 2 * half, ok


def _generation(st: _State, idx: np.ndarray) -> int:
    """Depth of the deepest particle among ``idx`` in the secondary tree (cheap bound)."""
    depth = 0
    cur = idx
    while cur.size and depth < 64:
        cur = st.i["parent"][cur]
        cur = cur[cur >= 0]
        depth += 1
    return depth


# --------------------------------------------------------------------------- track fit

@nb.njit(cache=True)
def _predict(d0: float, phi0: float, c: float, radii: np.ndarray, out_phi: np.ndarray,
             out_s: np.ndarray, out_cos: np.ndarray, out_dd0: np.ndarray, out_dc: np.ndarray) -> bool:
    """Perigee helix at each radius (outgoing branch), in closed form.

    With the perigee point ``d0 (-sin phi0, cos phi0)`` and signed curvature ``c``, the
    azimuth of the crossing with radius ``r`` is ``phi0 + asin(A)``,
    ``A = (c r^2/2 + d0 + c d0^2/2) / (r (1 + c d0))``. Fills the azimuth, the transverse arc
    length from the perigee, the incidence cosine and dphi/dd0, dphi/dc.
    """
    sp = math.sin(phi0)
    cp = math.cos(phi0)
    px = -d0 * sp
    py = d0 * cp
    for k in range(radii.size):
        r = radii[k]
        num = 0.5 * c * r * r + d0 + 0.5 * c * d0 * d0
        den = r * (1.0 + c * d0)
        a = num / den
        if abs(a) >= 1.0:
            return False
        root = math.sqrt(1.0 - a * a)
        pos = phi0 + math.asin(a)
        dnum_dc = 0.5 * (r * r + d0 * d0)
        dden_dc = r * d0
        dnum_dd = 1.0 + c * d0
        dden_dd = r * c
        out_dc[k] = (dnum_dc * den - num * dden_dc) / (den * den) / root
        out_dd0[k] = (dnum_dd * den - num * dden_dd) / (den * den) / root
        x = r * math.cos(pos)
        y = r * math.sin(pos)
        chord = math.hypot(x - px, y - py)
        u = 0.5 * abs(c) * chord
        if u >= 1.0:
            return False
        s = chord * (1.0 + u * u / 6.0) if u < 1e-4 else chord * math.asin(u) / u
        out_phi[k] = pos
        out_s[k] = s
        out_cos[k] = max(abs(math.cos(phi0 + c * s - pos)), 0.02)
    return True


@nb.njit(cache=True)
def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@nb.njit(cache=True)
def _highland(p: float, beta: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    return 0.0136 / (beta * p) * math.sqrt(x) * (1.0 + 0.038 * math.log(x / (beta * beta)))


@nb.njit(cache=True)
def _ms_cov(s_meas: np.ndarray, cos_meas: np.ndarray, s_sc: np.ndarray, th2_sc: np.ndarray,
            c: float, transverse: bool, scale: float, out: np.ndarray) -> None:
    """Correlated multiple-scattering covariance of the measurements.

    A kick of the direction at arc length s_j displaces the r-phi measurement at s_a by
    ``sin(c (s_a - s_j)) / c / cos(incidence_a)`` (exact for a circle) and the z
    measurement by ``(s_a - s_j)`` times the change of cot(theta).
    """
    m = s_meas.size
    n_sc = s_sc.size
    dmat = np.zeros((m, n_sc))
    for a in range(m):
        for j in range(n_sc):
            if th2_sc[j] > 0.0 and s_sc[j] < s_meas[a] - 1e-9:
                da = s_meas[a] - s_sc[j]
                if transverse:
                    da = da * _sinc(c * da) / cos_meas[a]
                dmat[a, j] = da
    for a in range(m):
        for b in range(a, m):
            acc = 0.0
            for j in range(n_sc):
                acc += dmat[a, j] * dmat[b, j] * th2_sc[j]
            out[a, b] = acc * scale
            out[b, a] = acc * scale


@nb.njit(cache=True)
def _brem_cov(s_meas: np.ndarray, cos_meas: np.ndarray, s_sc: np.ndarray, t_sc: np.ndarray,
              c: float, out: np.ndarray) -> None:
    """Add the r-phi covariance of bremsstrahlung curvature jumps (electron hypothesis).

    In a layer of t radiation lengths the Bethe-Heitler ``-ln z`` has variance ``t/ln 2``;
    the curvature changes by ``c (-ln z)`` and displaces a later measurement by
    ``(s_a - s_j)^2 / 2 * dc``. A single-Gaussian approximation (a one-component GSF).
    """
    m = s_meas.size
    n_sc = s_sc.size
    dmat = np.zeros((m, n_sc))
    for a in range(m):
        for j in range(n_sc):
            if t_sc[j] > 0.0 and s_sc[j] < s_meas[a] - 1e-9:
                da = s_meas[a] - s_sc[j]
                dmat[a, j] = 0.5 * da * da * abs(c) / cos_meas[a]
    for a in range(m):
        for b in range(a, m):
            acc = 0.0
            for j in range(n_sc):
                acc += dmat[a, j] * dmat[b, j] * t_sc[j] / math.log(2.0)
            out[a, b] += acc
            if b != a:
                out[b, a] += acc


@nb.njit(cache=True)
def _cholesky(v: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a small symmetric positive-definite matrix."""
    m = v.shape[0]
    low = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1):
            acc = v[i, j]
            for k in range(j):
                acc -= low[i, k] * low[j, k]
            if i == j:
                low[i, i] = math.sqrt(max(acc, 1e-300))
            else:
                low[i, j] = acc / low[j, j]
    return low


@nb.njit(cache=True)
def _whiten(low: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve L y = b (forward substitution) for a matrix of right-hand sides."""
    m, k = b.shape
    y = np.empty((m, k))
    for c in range(k):
        for i in range(m):
            acc = b[i, c]
            for j in range(i):
                acc -= low[i, j] * y[j, c]
            y[i, c] = acc / low[i, i]
    return y


@nb.njit(cache=True)
def _gls(v: np.ndarray, design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Generalised least squares: (A^T V^-1 A)^-1 A^T V^-1 y, its covariance and chi2 of y."""
    m, n_par = design.shape
    low = _cholesky(v)
    rhs = np.empty((m, n_par + 1))
    rhs[:, :n_par] = design
    rhs[:, n_par] = y
    w = _whiten(low, rhs)
    wa = np.ascontiguousarray(w[:, :n_par])
    wy = np.ascontiguousarray(w[:, n_par])
    cov = np.linalg.inv(wa.T @ wa)
    sol = cov @ (wa.T @ wy)
    return sol, cov, float(wy @ wy)


@nb.njit(cache=True, parallel=True)
def _fit_all(hit: np.ndarray, phi_meas: np.ndarray, z_meas: np.ndarray, radii: np.ndarray,
             sig_rphi: np.ndarray, sig_z: np.ndarray, sc_r: np.ndarray, sc_x0: np.ndarray,
             sc_hl: np.ndarray, b_field: float, mass: float, n_iter: int, brem: np.ndarray,
             params: np.ndarray, cov_t: np.ndarray, cov_l: np.ndarray, chi2: np.ndarray,
             status: np.ndarray) -> None:
    n_tracks, n_layers = hit.shape
    for t in nb.prange(n_tracks):
        m = 0
        for k in range(n_layers):
            if hit[t, k]:
                m += 1
        status[t] = 0
        if m < 3:
            continue
        r = np.empty(m)
        ph = np.empty(m)
        zm = np.empty(m)
        srp = np.empty(m)
        sz = np.empty(m)
        q = 0
        for k in range(n_layers):
            if hit[t, k]:
                r[q] = radii[k]
                ph[q] = phi_meas[t, k]
                zm[q] = z_meas[t, k]
                srp[q] = sig_rphi[k]
                sz[q] = sig_z[k]
                q += 1
        # ---- initial estimate: three-point circle, straight line in (r, z)
        i1, i2, i3 = 0, m // 2, m - 1
        x1, y1 = r[i1] * math.cos(ph[i1]), r[i1] * math.sin(ph[i1])
        x2, y2 = r[i2] * math.cos(ph[i2]), r[i2] * math.sin(ph[i2])
        x3, y3 = r[i3] * math.cos(ph[i3]), r[i3] * math.sin(ph[i3])
        cross = (x2 - x1) * (y3 - y1) - (y2 - y1) * (x3 - x1)
        d12 = math.hypot(x2 - x1, y2 - y1)
        d23 = math.hypot(x3 - x2, y3 - y2)
        d13 = math.hypot(x3 - x1, y3 - y1)
        c = 2.0 * cross / max(d12 * d23 * d13, 1e-30)
        phi0 = math.atan2(y1, x1) - 0.5 * c * r[i1]
        d0 = 0.0
        # z = z0 + r cot(theta)
        sw = 0.0
        swr = 0.0
        swz = 0.0
        swrr = 0.0
        swrz = 0.0
        for k in range(m):
            w = 1.0 / (sz[k] * sz[k])
            sw += w
            swr += w * r[k]
            swz += w * zm[k]
            swrr += w * r[k] * r[k]
            swrz += w * r[k] * zm[k]
        det = sw * swrr - swr * swr
        cot = (sw * swrz - swr * swz) / det if det > 0 else 0.0
        z0 = (swz - cot * swr) / sw
        pred = np.empty(m)
        s_arc = np.empty(m)
        cosi = np.empty(m)
        jd0 = np.empty(m)
        jc = np.empty(m)
        s_sc = np.empty(sc_r.size)
        one_r = np.empty(1)
        one_phi = np.empty(1)
        one_s = np.empty(1)
        one_cos = np.empty(1)
        one_a = np.empty(1)
        one_b = np.empty(1)
        jac = np.empty((m, 3))
        res = np.empty(m)
        v = np.empty((m, m))
        sc_th2 = np.empty(sc_r.size)
        sc_t = np.zeros(sc_r.size)
        good = True
        c_t = np.zeros((3, 3))
        c_l = np.zeros((2, 2))
        for _it in range(n_iter):
            sin_th = 1.0 / math.sqrt(1.0 + cot * cot)
            pt = C_LIGHT * b_field / max(abs(c), 1e-12)
            p = pt / sin_th
            beta = p / math.sqrt(p * p + mass * mass)
            for j in range(sc_r.size):
                sc_th2[j] = 0.0
                s_sc[j] = 1e300
                one_r[0] = sc_r[j]
                if _predict(d0, phi0, c, one_r, one_phi, one_s, one_cos, one_a, one_b) and \
                        abs(z0 + one_s[0] * cot) <= sc_hl[j]:
                    sc_t[j] = sc_x0[j] / (sin_th * one_cos[0])
                    th0 = _highland(p, beta, sc_t[j])
                    sc_th2[j] = th0 * th0
                    s_sc[j] = one_s[0]
            # ---- transverse: (d0, phi0, c)
            if not _predict(d0, phi0, c, r, pred, s_arc, cosi, jd0, jc):
                good = False
                break
            for k in range(m):
                res[k] = r[k] * _wrap(ph[k] - pred[k])
                jac[k, 0] = r[k] * jd0[k]
                jac[k, 1] = r[k]
                jac[k, 2] = r[k] * jc[k]
            _ms_cov(s_arc, cosi, s_sc, sc_th2, c, True, 1.0 / (sin_th * sin_th), v)
            if brem[t]:
                _brem_cov(s_arc, cosi, s_sc, sc_t, c, v)
            for k in range(m):
                v[k, k] += srp[k] * srp[k]
            delta, c_t, _x2 = _gls(v, jac, res)
            d0 += delta[0]
            phi0 += delta[1]
            c += delta[2]
            # ---- longitudinal: z = z0 + s cot(theta)
            if not _predict(d0, phi0, c, r, pred, s_arc, cosi, jd0, jc):
                good = False
                break
            _ms_cov(s_arc, cosi, s_sc, sc_th2, c, False, 1.0 / (sin_th ** 4), v)
            for k in range(m):
                v[k, k] += sz[k] * sz[k]
            a_l = np.empty((m, 2))
            for k in range(m):
                a_l[k, 0] = 1.0
                a_l[k, 1] = s_arc[k]
            sol, c_l, _x2 = _gls(v, a_l, zm)
            z0 = sol[0]
            cot = sol[1]
        if not good:
            status[t] = -1
            continue
        # ---- final chi2 with the final covariance
        if not _predict(d0, phi0, c, r, pred, s_arc, cosi, jd0, jc):
            status[t] = -1
            continue
        for k in range(m):
            res[k] = r[k] * _wrap(ph[k] - pred[k])
        sin_th = 1.0 / math.sqrt(1.0 + cot * cot)
        _ms_cov(s_arc, cosi, s_sc, sc_th2, c, True, 1.0 / (sin_th * sin_th), v)
        if brem[t]:
            _brem_cov(s_arc, cosi, s_sc, sc_t, c, v)
        for k in range(m):
            v[k, k] += srp[k] * srp[k]
        x2t = _gls(v, np.ones((m, 1)), res)[2]
        _ms_cov(s_arc, cosi, s_sc, sc_th2, c, False, 1.0 / (sin_th ** 4), v)
        for k in range(m):
            v[k, k] += sz[k] * sz[k]
            res[k] = zm[k] - z0 - s_arc[k] * cot
        x2l = _gls(v, np.ones((m, 1)), res)[2]
        params[t, 0] = d0
        params[t, 1] = _wrap(phi0)
        params[t, 2] = c
        params[t, 3] = z0
        params[t, 4] = cot
        for a in range(3):
            for bb in range(3):
                cov_t[t, a, bb] = c_t[a, bb]
        for a in range(2):
            for bb in range(2):
                cov_l[t, a, bb] = c_l[a, bb]
        chi2[t] = x2t + x2l
        status[t] = m


def fit_tracks(sim: TrackerSimulation, detector: DetectorConfig,
               candidates: np.ndarray | None = None) -> pd.DataFrame:
    """Global chi2 helix fit of every charged simulated particle with enough hits.

    The measurement covariance of the r-phi (z) residuals is the hit resolution plus the
    correlated displacements ``sum_j (r_a - r_j)(r_b - r_j) theta0_j^2 / sin^2(theta)``
    (``/ sin^4`` for z) from scattering in every surface inside both hits, with theta0 from
    the Highland formula at the fitted momentum (pion mass hypothesis) -- the Gluckstern
    treatment, equivalent to a Kalman filter with multiple-scattering process noise.

    Arguments:
        sim: Output of :func:`propagate`.
        detector: Detector configuration.
        candidates: sim_ids to fit (default: all charged with at least ``min_hits`` hits).

    Returns:
        One row per fitted track: sim_id, event_id, truth_index, n_hits, first_layer,
        missing_inner (no hit in the first ``n_inner_layers`` layers), q_over_pt (1/GeV),
        pt_gev, eta, phi, d0_mm, z0_mm, cot_theta, sigma_pt_gev, sigma_q_over_pt,
        sigma_eta, sigma_phi, sigma_d0_mm, sigma_z0_mm, chi2, ndof, brem_fit (refitted with
        the electron hypothesis after a bad first fit), good.
    """
    tc = detector.tracking
    n_hits_all = sim.hit.sum(axis=1)
    if candidates is None:
        candidates = np.flatnonzero((sim.particles["charge"].to_numpy() != 0) & (n_hits_all >= tc.min_hits))
    candidates = np.asarray(candidates, dtype=np.int64)
    n = candidates.size
    layers = detector.layers
    bp = detector.beam_pipe
    radii = np.array([la.radius_m for la in layers])
    sc_r = np.array([bp.radius_m, *radii.tolist()])
    sc_x0 = np.array([bp.thickness_x0] + [la.thickness_x0 for la in layers])
    sc_hl = np.array([bp.half_length_m] + [la.half_length_m for la in layers])
    params = np.full((n, 5), np.nan)
    cov_t = np.full((n, 3, 3), np.nan)
    cov_l = np.full((n, 2, 2), np.nan)
    chi2 = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int64)
    brem_fit = np.zeros(n, dtype=np.bool_)
    if n:
        args = (np.ascontiguousarray(sim.hit[candidates]), np.ascontiguousarray(sim.phi_meas[candidates]),
                np.ascontiguousarray(sim.z_meas_m[candidates]), radii,
                np.array([la.sigma_rphi_um for la in layers]) * 1e-6,
                np.array([la.sigma_z_um for la in layers]) * 1e-6, sc_r, sc_x0, sc_hl,
                float(detector.b_field_t), float(tc.fit_mass_gev), int(tc.fit_iterations))
        _fit_all(*args, brem_fit, params, cov_t, cov_l, chi2, status)
        # tracks that fit badly are refitted with the electron (bremsstrahlung) hypothesis
        ndof0 = 2 * status - 5
        bad = (status < 3) | ~(chi2 / np.maximum(ndof0, 1) < tc.brem_refit_chi2_ndof)
        if np.any(bad):
            sub = np.flatnonzero(bad)
            p2 = np.full((sub.size, 5), np.nan)
            ct2 = np.full((sub.size, 3, 3), np.nan)
            cl2 = np.full((sub.size, 2, 2), np.nan)
            x2 = np.full(sub.size, np.nan)
            st2 = np.zeros(sub.size, dtype=np.int64)
            sub_args = tuple(a[sub] if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] == n
                             else a for a in args)
            _fit_all(*sub_args, np.ones(sub.size, dtype=np.bool_), p2, ct2, cl2, x2, st2)
            better = (st2 >= 3) & ((status[sub] < 3) | (x2 < chi2[sub]) | ~np.isfinite(chi2[sub]))
            rows = sub[better]
            params[rows], cov_t[rows], cov_l[rows] = p2[better], ct2[better], cl2[better]
            chi2[rows], status[rows] = x2[better], st2[better]
            brem_fit[rows] = True
    b = detector.b_field_t
    c = params[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        q_over_pt = -c / (C_LIGHT * b)
        pt = 1.0 / np.abs(q_over_pt)
        sig_c = np.sqrt(cov_t[:, 2, 2])
        sig_qpt = sig_c / (C_LIGHT * b)
        cot = params[:, 4]
        eta = np.arcsinh(cot)
        sig_eta = np.sqrt(cov_l[:, 1, 1]) / np.sqrt(1.0 + cot**2)
        ndof = 2 * status - 5
        good = (status >= tc.min_hits) & np.isfinite(pt) & (chi2 / np.maximum(ndof, 1) < tc.max_chi2_ndof)
    hits = sim.hit[candidates]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), -1)
    parts = sim.particles
    return pd.DataFrame({
        "sim_id": candidates,
        "event_id": parts["event_id"].to_numpy()[candidates],
        "truth_index": parts["truth_index"].to_numpy()[candidates],
        "n_hits": n_hits_all[candidates],
        "first_layer": first,
        "missing_inner": first >= tc.n_inner_layers,
        "q_over_pt": q_over_pt, "charge": np.sign(np.nan_to_num(q_over_pt)).astype(np.int64),
        "pt_gev": pt, "eta": eta, "phi": params[:, 1],
        "d0_mm": params[:, 0] * 1e3, "z0_mm": params[:, 3] * 1e3, "cot_theta": cot,
        "sigma_q_over_pt": sig_qpt, "sigma_pt_gev": pt**2 * sig_qpt, "sigma_eta": sig_eta,
        "sigma_phi": np.sqrt(cov_t[:, 1, 1]), "sigma_d0_mm": np.sqrt(cov_t[:, 0, 0]) * 1e3,
        "sigma_z0_mm": np.sqrt(cov_l[:, 0, 0]) * 1e3, "chi2": chi2, "ndof": ndof, "brem_fit": brem_fit, "good": good,
    })


# --------------------------------------------------------------------------- expectation

def expected_pt_resolution(detector: DetectorConfig, pt_gev: np.ndarray | float, eta: float = 0.0,
                           mass_gev: float = 0.1056583755) -> dict[str, np.ndarray]:
    """Analytic sigma(pT)/pT of the configured tracker (Gluckstern + Highland).

    Gluckstern's linear least-squares treatment evaluated for the actual layer radii
    (the classic closed form ``sigma_k = eps/L^2 sqrt(720/(N+4))`` is its equal-spacing
    limit): the curvature error of a parabola fit ``u = a + b r + k r^2/2`` to the layers a
    track at this eta crosses, with (i) the hit resolutions and (ii) the correlated
    multiple-scattering displacements of every surface inside (Highland theta0 per layer,
    path 1/sin(theta), transverse angle theta0/sin(theta)). Both terms are added in
    quadrature: ``sigma(pT)/pT = sqrt(a^2 + (b pT)^2)`` with ``b`` the measurement term
    and ``a`` the (nearly pT-independent) scattering term. ``total`` is the optimal
    (generalised least squares) combination of both, ``scattering`` its excess over the
    measurement term. Full hit efficiency is assumed.

    Arguments:
        detector: Detector configuration.
        pt_gev: Transverse momentum [GeV] (scalar or array).
        eta: Pseudorapidity.
        mass_gev: Mass for beta (muon by default).

    Returns:
        Dict with ``total``, ``measurement`` and ``scattering`` (relative sigma(pT)/pT) and
        ``n_layers`` crossed.
    """
    pt = np.atleast_1d(np.asarray(pt_gev, dtype=float))
    layers = detector.layers
    bp = detector.beam_pipe
    cot = math.sinh(eta)
    sin_th = 1.0 / math.sqrt(1.0 + cot * cot)
    use = [la for la in layers if abs(la.radius_m * cot) <= la.half_length_m]
    r = np.array([la.radius_m for la in use])
    sig = np.array([la.sigma_rphi_um for la in use]) * 1e-6
    sc = [(bp.radius_m, bp.thickness_x0)] + [(la.radius_m, la.thickness_x0) for la in use]
    if r.size < 3:
        nan = np.full(pt.shape, np.nan)
        return {"total": nan, "measurement": nan, "scattering": nan, "n_layers": r.size}
    design = np.stack([np.ones_like(r), r, 0.5 * r**2], axis=1)
    w_meas = np.diag(1.0 / sig**2)
    var_k_meas = np.linalg.inv(design.T @ w_meas @ design)[2, 2]
    meas = np.sqrt(var_k_meas) * pt / (C_LIGHT * detector.b_field_t)
    total = np.empty_like(pt)
    for i, ptv in enumerate(pt):
        p = ptv / sin_th
        beta = p / math.sqrt(p * p + mass_gev**2)
        v = np.diag(sig**2)
        for rj, xj in sc:
            th0 = float(highland_theta0(p, beta, xj / sin_th))
            dr = np.where(r > rj + 1e-9, r - rj, 0.0)
            v = v + np.outer(dr, dr) * (th0 / sin_th) ** 2
        var_k = np.linalg.inv(design.T @ np.linalg.solve(v, design))[2, 2]
        total[i] = math.sqrt(var_k) * ptv / (C_LIGHT * detector.b_field_t)
    scat = np.sqrt(np.clip(total**2 - meas**2, 0.0, None))
    return {"total": total, "measurement": meas, "scattering": scat,
            "n_layers": r.size}
