"""Global chi2 helix fit of the tracker hits, and the analytic pT resolution.

Tracks with enough hits are fitted by a global chi2 helix fit whose measurement
covariance includes the correlated multiple-scattering displacements (the Gluckstern /
"global" treatment, equivalent to a Kalman filter with process noise), linearised and
iterated by Gauss-Newton from a three-point circle estimate (compiled by numba, tracks in
parallel). The fit gives pT, eta, phi, d0, z0 and their errors. Badly fitting tracks are
refitted with the bremsstrahlung (electron) hypothesis. :func:`expected_pt_resolution` is
the same physics in closed form for the configured layers.

References:
    R. L. Gluckstern, "Uncertainties in track momentum and direction, due to multiple
    scattering and measurement errors", NIM 24 (1963) 381.
    R. Frühwirth, "Application of Kalman filtering to track and vertex fitting",
    NIM A 262 (1987) 444.
    V. L. Highland, NIM 129 (1975) 497; G. R. Lynch and O. I. Dahl, NIM B 58 (1991) 6.

Arguments:
    See :func:`fit_tracks` and :func:`expected_pt_resolution`.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
import pandas as pd

from ariasim.simulators.collider.detector import DetectorConfig
from ariasim.simulators.collider.tracking.physics import C_LIGHT, highland_theta0
from ariasim.simulators.collider.tracking.propagation import TrackerSimulation

__all__ = ["expected_pt_resolution", "fit_tracks"]


# The compiled kernels of the fit call only compiled functions of this file: numba caches a
# function (cache=True) keyed on its own file alone, so a compiled callee imported from
# another module would stay stale in the cache after that module changes. Hence the fit's
# own small copies of sinc (as in helix) and of the scalar Highland formula
# (physics.highland_theta0); C_LIGHT is frozen into the cache the same way.


@nb.njit(cache=True, inline="always")
def _sinc(v: float) -> float:
    if abs(v) < 1e-4:
        return 1.0 - v * v / 6.0
    return math.sin(v) / v


@nb.njit(cache=True)
def _predict(
    d0: float,
    phi0: float,
    c: float,
    radii: np.ndarray,
    out_phi: np.ndarray,
    out_s: np.ndarray,
    out_cos: np.ndarray,
    out_dd0: np.ndarray,
    out_dc: np.ndarray,
) -> bool:
    """Perigee helix at each radius (outgoing branch), in closed form.

    With the perigee point ``d0 (-sin phi0, cos phi0)`` and signed curvature ``c``, the
    azimuth of the crossing with radius ``r`` is ``phi0 + asin(A)``,
    ``A = (c r^2/2 + d0 + c d0^2/2) / (r (1 + c d0))``. Fills the azimuth, the transverse arc
    length from the perigee, the incidence cosine and dphi/dd0, dphi/dc.

    Arguments:
        d0: Signed transverse impact parameter [m].
        phi0: Direction azimuth at the perigee [rad].
        c: Signed curvature [1/m].
        radii: Radii of the crossings [m].
        out_phi, out_s, out_cos, out_dd0, out_dc: Filled, one entry per radius.

    Returns:
        False if the helix does not reach one of the radii (outputs then incomplete).
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
    """:func:`~.physics.highland_theta0` for one unit-charge particle (0 for ``x <= 0``).

    Arguments:
        p: Momentum [GeV].
        beta: Velocity [c].
        x: Thickness traversed in radiation lengths.
    """
    if x <= 0.0:
        return 0.0
    return 0.0136 / (beta * p) * math.sqrt(x) * (1.0 + 0.038 * math.log(x / (beta * beta)))


@nb.njit(cache=True)
def _ms_cov(
    s_meas: np.ndarray,
    cos_meas: np.ndarray,
    s_sc: np.ndarray,
    th2_sc: np.ndarray,
    c: float,
    transverse: bool,
    scale: float,
    out: np.ndarray,
) -> None:
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
def _brem_cov(
    s_meas: np.ndarray,
    cos_meas: np.ndarray,
    s_sc: np.ndarray,
    t_sc: np.ndarray,
    c: float,
    out: np.ndarray,
) -> None:
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
def _fit_all(
    hit: np.ndarray,
    phi_meas: np.ndarray,
    z_meas: np.ndarray,
    radii: np.ndarray,
    sig_rphi: np.ndarray,
    sig_z: np.ndarray,
    sc_r: np.ndarray,
    sc_x0: np.ndarray,
    sc_hl: np.ndarray,
    b_field: float,
    mass: float,
    n_iter: int,
    brem: np.ndarray,
    params: np.ndarray,
    cov_t: np.ndarray,
    cov_l: np.ndarray,
    chi2: np.ndarray,
    status: np.ndarray,
) -> None:
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
                if (
                    _predict(d0, phi0, c, one_r, one_phi, one_s, one_cos, one_a, one_b)
                    and abs(z0 + one_s[0] * cot) <= sc_hl[j]
                ):
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
            _ms_cov(s_arc, cosi, s_sc, sc_th2, c, False, 1.0 / (sin_th**4), v)
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
        _ms_cov(s_arc, cosi, s_sc, sc_th2, c, False, 1.0 / (sin_th**4), v)
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


def fit_tracks(
    sim: TrackerSimulation, detector: DetectorConfig, candidates: np.ndarray | None = None
) -> pd.DataFrame:
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
        candidates = np.flatnonzero(
            (sim.particles["charge"].to_numpy() != 0) & (n_hits_all >= tc.min_hits)
        )
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
        args = (
            np.ascontiguousarray(sim.hit[candidates]),
            np.ascontiguousarray(sim.phi_meas[candidates]),
            np.ascontiguousarray(sim.z_meas_m[candidates]),
            radii,
            np.array([la.sigma_rphi_um for la in layers]) * 1e-6,
            np.array([la.sigma_z_um for la in layers]) * 1e-6,
            sc_r,
            sc_x0,
            sc_hl,
            float(detector.b_field_t),
            float(tc.fit_mass_gev),
            int(tc.fit_iterations),
        )
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
            sub_args = tuple(
                a[sub] if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] == n else a
                for a in args
            )
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
        good = (
            (status >= tc.min_hits)
            & np.isfinite(pt)
            & (chi2 / np.maximum(ndof, 1) < tc.max_chi2_ndof)
        )
    hits = sim.hit[candidates]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), -1)
    parts = sim.particles
    return pd.DataFrame(
        {
            "sim_id": candidates,
            "event_id": parts["event_id"].to_numpy()[candidates],
            "truth_index": parts["truth_index"].to_numpy()[candidates],
            "n_hits": n_hits_all[candidates],
            "first_layer": first,
            "missing_inner": first >= tc.n_inner_layers,
            "q_over_pt": q_over_pt,
            "charge": np.sign(np.nan_to_num(q_over_pt)).astype(np.int64),
            "pt_gev": pt,
            "eta": eta,
            "phi": params[:, 1],
            "d0_mm": params[:, 0] * 1e3,
            "z0_mm": params[:, 3] * 1e3,
            "cot_theta": cot,
            "sigma_q_over_pt": sig_qpt,
            "sigma_pt_gev": pt**2 * sig_qpt,
            "sigma_eta": sig_eta,
            "sigma_phi": np.sqrt(cov_t[:, 1, 1]),
            "sigma_d0_mm": np.sqrt(cov_t[:, 0, 0]) * 1e3,
            "sigma_z0_mm": np.sqrt(cov_l[:, 0, 0]) * 1e3,
            "chi2": chi2,
            "ndof": ndof,
            "brem_fit": brem_fit,
            "good": good,
        }
    )


# --------------------------------------------------------------------------- expectation


def expected_pt_resolution(
    detector: DetectorConfig,
    pt_gev: np.ndarray | float,
    eta: float = 0.0,
    mass_gev: float = 0.1056583755,
) -> dict[str, Any]:
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
    return {"total": total, "measurement": meas, "scattering": scat, "n_layers": r.size}
