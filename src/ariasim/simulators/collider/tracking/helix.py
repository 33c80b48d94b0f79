"""Helix geometry in the uniform solenoid field (compiled by numba where it loops).

A charged particle moves on a helix: in the transverse plane a circle of signed curvature
``c = -0.3 q B / pT`` [1/m] (``-C_LIGHT q B / pT``), in z a straight line in the transverse
arc length ``s``, ``z = z0 + s cot(theta)``. This module finds where such helices cross
the cylinders of the tracker (:func:`helix_to_radius`) and the calorimeter face
(:func:`face_position`). (The perigee-parametrised helix of the track fit, with its
derivatives, is compiled together with the fit in :mod:`.fit`.)

References:
    R. Frühwirth, M. Regler, R. K. Bock, H. Grote and D. Notz, "Data Analysis Techniques
    for High-Energy Physics", 2nd ed., Cambridge University Press (2000) (helix track
    model, perigee parameters).

Arguments:
    See :func:`helix_to_radius` and :func:`face_position`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["face_position", "helix_to_radius"]


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
def _helix_to_radius_1(
    x0: float, y0: float, phi: float, c: float, r: float
) -> tuple[bool, float, float, float, float]:
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
def _helix_to_radius(
    x0: np.ndarray,
    y0: np.ndarray,
    phi: np.ndarray,
    c: np.ndarray,
    r: float,
    ok: np.ndarray,
    s: np.ndarray,
    xn: np.ndarray,
    yn: np.ndarray,
    phin: np.ndarray,
) -> None:
    for i in range(x0.size):
        o, si, xi, yi, pi = _helix_to_radius_1(x0[i], y0[i], phi[i], c[i], r)
        ok[i] = o
        s[i] = si
        xn[i] = xi
        yn[i] = yi
        phin[i] = pi


def helix_to_radius(
    x_m: np.ndarray, y_m: np.ndarray, phi: np.ndarray, curvature_per_m: np.ndarray, r_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    _helix_to_radius(
        np.ascontiguousarray(x_m, dtype=float),
        np.ascontiguousarray(y_m, dtype=float),
        np.ascontiguousarray(phi, dtype=float),
        np.ascontiguousarray(curvature_per_m, dtype=float),
        float(r_m),
        ok,
        s,
        xn,
        yn,
        phin,
    )
    return ok, s, xn, yn, phin


def face_position(
    x_m: np.ndarray,
    y_m: np.ndarray,
    z_m: np.ndarray,
    phi: np.ndarray,
    cot_theta: np.ndarray,
    curvature_per_m: np.ndarray,
    r_face_m: float,
    z_endcap_m: float,
) -> tuple[np.ndarray, ...]:
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
        sinc = np.where(
            np.abs(half) < 1e-4, 1.0 - half**2 / 6.0, np.sin(half) / np.where(half == 0, 1.0, half)
        )
    f = s * sinc
    x = x_m + f * np.cos(phi + half)
    y = y_m + f * np.sin(phi + half)
    z = z_m + s * cot_theta
    return x, y, z, phi + 2 * half, ok
