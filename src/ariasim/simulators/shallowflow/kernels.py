"""Compiled finite-volume kernels of the shallow-flow / shallow-moment solver.

State ``Q`` has shape ``(N + 2, n)``: ``h``, ``h u_m``, ``h alpha_1..N`` per cell. One
explicit stage is a second-order MUSCL reconstruction of the primitive variables
``(h, u_m, alpha_j)`` (minmod or van Leer limiter; velocities set to zero where the
reconstructed depth is dry), a Rusanov flux with the speed bound
``|u_m| + sqrt(k g cos(phi) h + sum_j 3 alpha_j^2 / (2j+1)) + sum_j |alpha_j|`` (exactly
``|u| + sqrt(k g h cos phi)`` for ``N = 0``), a centred discretisation of the
non-conservative moment terms, and gravity ``g h sin(phi)``. Friction is applied afterwards
(:func:`apply_friction`), semi-implicitly on the basal velocity.

Positivity: with the limited reconstruction, a CFL number <= 1/2 keeps the depth
non-negative (the Rusanov scheme is positivity preserving under this condition), and each
SSP-RK2 stage is a convex combination of such steps.

Rest states of a Coulomb material: the Rusanov flux diffuses depth even when nothing moves,
which would let a pile that friction holds at rest creep. A cell is *static* when it is dry,
or (plain model, ``N = 0``) when its momentum is zero and its frictionless driving force is
below the yield strength ``S(h, 0)``; the mass flux between two static cells is set to zero
(it is purely numerical there, the physical flux ``hu`` being zero). This keeps a stable pile
exactly at rest and does not act anywhere the material moves.

References:
    B. van Leer, "Towards the ultimate conservative difference scheme V", J. Comput. Phys. 32
    (1979) 101 (MUSCL).
    S. Gottlieb, C.-W. Shu and E. Tadmor, SIAM Rev. 43 (2001) 89 (SSP Runge-Kutta).
    F. Bouchut, "Nonlinear stability of finite volume methods for hyperbolic conservation
    laws", Birkhaeuser (2004) (positivity of Rusanov/HLL with reconstruction).
    J. Kowalski and M. Torrilhon, Commun. Comput. Phys. 25 (2019) 669 (moment equations).
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["apply_friction", "builtin_friction", "explicit_stage", "max_speed", "wet_velocity"]

WALL = 0
OPEN = 1
MINMOD = 0
VANLEER = 1


@nb.njit(inline="always", cache=True)
def _limit(a: float, b: float, kind: int) -> float:
    if a * b <= 0.0:
        return 0.0
    if kind == MINMOD:
        return a if abs(a) < abs(b) else b
    return 2.0 * a * b / (a + b)


@nb.njit(cache=True)
def wet_velocity(Q: np.ndarray, h_dry: float) -> np.ndarray:
    """Primitive velocities ``(u_m, alpha_1..N)`` per cell, zero in dry cells."""
    K, n = Q.shape
    V = np.zeros((K - 1, n))
    for i in range(n):
        h = Q[0, i]
        if h > h_dry:
            for r in range(K - 1):
                V[r, i] = Q[r + 1, i] / h
    return V


@nb.njit(cache=True)
def max_speed(Q: np.ndarray, h_dry: float) -> float:
    """Largest ``|u_m| + sum_j |alpha_j|`` over wet cells (the stop criterion)."""
    K, n = Q.shape
    best = 0.0
    for i in range(n):
        h = Q[0, i]
        if h > h_dry:
            s = 0.0
            for r in range(1, K):
                s += abs(Q[r, i] / h)
            if s > best:
                best = s
    return best


@nb.njit(cache=True)
def explicit_stage(
    Q: np.ndarray,
    dt: float,
    cfl: float,
    dt_cap: float,
    dx: float,
    g: float,
    k_earth: float,
    cos_c: np.ndarray,
    sin_c: np.ndarray,
    cos_f: np.ndarray,
    yield_c: np.ndarray,
    h_dry: float,
    bc_left: int,
    bc_right: int,
    limiter: int,
    A: np.ndarray,
    B: np.ndarray,
    out: np.ndarray,
) -> float:
    """One forward-Euler stage ``out = Q + dt L(Q)`` without friction; returns ``dt``.

    ``dt <= 0`` means: choose ``dt = min(cfl dx / max wave speed, dt_cap)``.
    """
    K, n = Q.shape
    N = K - 2
    ne = n + 4
    # primitive variables with two ghost cells on each side
    P = np.zeros((K, ne))
    for i in range(n):
        h = Q[0, i]
        P[0, i + 2] = h
        if h > h_dry:
            for r in range(1, K):
                P[r, i + 2] = Q[r, i] / h
    for gcell in range(2):
        il, ir = 1 - gcell, n + 2 + gcell  # ghost indices
        ml, mr = 2 + gcell, n + 1 - gcell  # mirror sources (wall)
        for r in range(K):
            if bc_left == WALL:
                P[r, il] = P[r, ml] if r == 0 else -P[r, ml]
            else:
                P[r, il] = P[r, 2]
            if bc_right == WALL:
                P[r, ir] = P[r, mr] if r == 0 else -P[r, mr]
            else:
                P[r, ir] = P[r, n + 1]
    # limited slopes on cells 1..n+2 (extended indices)
    S = np.zeros((K, ne))
    for e in range(1, ne - 1):
        for r in range(K):
            S[r, e] = _limit(P[r, e] - P[r, e - 1], P[r, e + 1] - P[r, e], limiter)
    # face states and Rusanov fluxes, faces f = 0..n (between interior cells f-1 and f)
    F = np.zeros((K, n + 1))
    dh_face = np.zeros(n + 1)  # Rusanov diffusion part of the mass flux
    hav = np.zeros((K, n + 1))  # central face averages of the conserved variables
    UL = np.zeros(K)
    UR = np.zeros(K)
    FL = np.zeros(K)
    FR = np.zeros(K)
    al = np.zeros(max(N, 1))  # reconstructed moments at one face side
    amax = 0.0
    for f in range(n + 1):
        el, er = f + 1, f + 2
        cf = cos_f[f]
        if P[0, el] <= h_dry and P[0, er] <= h_dry:
            # both neighbours dry: the limited face depths lie between them, so both face
            # states are dry (zero velocities and moments), the mass flux is removed by the
            # static switch, and only the pressure flux is left: the same numbers as the
            # general branch below, at a fraction of its cost
            hl = P[0, el] + 0.5 * S[0, el]
            hr = P[0, er] - 0.5 * S[0, er]
            hl = 0.0 if hl < 0.0 else hl
            hr = 0.0 if hr < 0.0 else hr
            pl = 0.5 * k_earth * g * cf * hl * hl
            pr = 0.5 * k_earth * g * cf * hr * hr
            F[1, f] = 0.5 * (pl + pr)
            a = max(np.sqrt(k_earth * g * cf * hl), np.sqrt(k_earth * g * cf * hr))
            if a > amax:
                amax = a
            continue
        aface = 0.0
        for side in range(2):
            if side == 0:
                e, sg = el, 0.5
            else:
                e, sg = er, -0.5
            h = P[0, e] + sg * S[0, e]
            if h < 0.0:
                h = 0.0
            wet = h > h_dry
            u = P[1, e] + sg * S[1, e] if wet else 0.0
            c2 = k_earth * g * cf * h
            mom = h * u * u + 0.5 * k_earth * g * cf * h * h
            sa = 0.0
            for j in range(1, N + 1):
                aj = P[j + 1, e] + sg * S[j + 1, e] if wet else 0.0
                al[j - 1] = aj
                c2 += 3.0 * aj * aj / (2 * j + 1)
                sa += abs(aj)
                mom += h * aj * aj / (2 * j + 1)
            a = abs(u) + np.sqrt(c2) + sa
            if a > aface:
                aface = a
            U = UL if side == 0 else UR
            Fs = FL if side == 0 else FR
            U[0] = h
            U[1] = h * u
            Fs[0] = h * u
            Fs[1] = mom
            for i in range(N):
                ai = al[i]
                U[i + 2] = h * ai
                fi = 2.0 * h * u * ai
                for j in range(N):
                    for kk in range(N):
                        fi += h * A[i, j, kk] * al[j] * al[kk]
                Fs[i + 2] = fi
        if aface > amax:
            amax = aface
        for r in range(K):
            F[r, f] = 0.5 * (FL[r] + FR[r]) - 0.5 * aface * (UR[r] - UL[r])
            hav[r, f] = 0.5 * (UL[r] + UR[r])
        dh_face[f] = -0.5 * aface * (UR[0] - UL[0])
    if dt <= 0.0:
        dt = dt_cap if amax <= 0.0 else min(cfl * dx / amax, dt_cap)
    # momentum residual (mean equation) and the static switch
    R1 = np.empty(n)
    static = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        R1[i] = -(F[1, i + 1] - F[1, i]) / dx + g * Q[0, i] * sin_c[i]
        if Q[0, i] <= h_dry:
            static[i] = True
        elif N == 0 and Q[1, i] == 0.0 and abs(R1[i]) <= yield_c[i]:
            static[i] = True
    for f in range(n + 1):
        sl = static[f - 1] if f > 0 else static[0]
        sr = static[f] if f < n else static[n - 1]
        if sl and sr:
            F[0, f] -= dh_face[f]
    Dc = np.zeros(max(N, 1))  # D_j = d_s(h alpha_j) in one cell
    for i in range(n):
        out[0, i] = Q[0, i] - dt * (F[0, i + 1] - F[0, i]) / dx
        out[1, i] = Q[1, i] + dt * R1[i]
        h = Q[0, i]
        for j in range(N):
            Dc[j] = (hav[j + 2, i + 1] - hav[j + 2, i]) / dx
        for r in range(2, K):
            res = -(F[r, i + 1] - F[r, i]) / dx
            if h > h_dry:
                um = Q[1, i] / h
                ii = r - 2
                res += um * Dc[ii]
                for j in range(N):
                    for kk in range(N):
                        res -= B[ii, j, kk] * Dc[j] * Q[kk + 2, i] / h
            out[r, i] = Q[r, i] + dt * res
    return dt


@nb.njit(cache=True)
def builtin_friction(
    Q: np.ndarray, coeffs: np.ndarray, g: float, cos_c: np.ndarray, h_dry: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(S(h, 0), S(h, |u_b|), |u_b|)`` per cell for the built-in law ``coeffs``.

    ``coeffs = [mu, 1/xi, nu, tau]``.
    """
    K, n = Q.shape
    s0 = np.zeros(n)
    s1 = np.zeros(n)
    ub = np.zeros(n)
    mu, ixi, nu, tau = coeffs[0], coeffs[1], coeffs[2], coeffs[3]
    for i in range(n):
        h = Q[0, i]
        if h > 0.0:
            s0[i] = mu * g * h * cos_c[i] + tau
        if h > h_dry:
            m = 0.0
            for r in range(1, K):
                m += Q[r, i]
            u = abs(m) / h
            ub[i] = u
            s1[i] = s0[i] + g * u * u * ixi + nu * u / h
        else:
            s1[i] = s0[i]
    return s0, s1, ub


@nb.njit(inline="always", cache=True)
def _solve_small(
    M: np.ndarray, rhs: np.ndarray, x: np.ndarray, W: np.ndarray, b: np.ndarray
) -> None:
    """``x = M^-1 rhs`` by Gaussian elimination (``M`` small, diagonally dominant);
    ``W`` and ``b`` are work arrays shaped like ``M`` and ``rhs``."""
    n = rhs.shape[0]
    for p in range(n):
        b[p] = rhs[p]
        for c in range(n):
            W[p, c] = M[p, c]
    for p in range(n):
        for q in range(p + 1, n):
            f = W[q, p] / W[p, p]
            for c in range(p, n):
                W[q, c] -= f * W[p, c]
            b[q] -= f * b[p]
    for p in range(n - 1, -1, -1):
        acc = b[p]
        for c in range(p + 1, n):
            acc -= W[p, c] * x[c]
        x[p] = acc / W[p, p]


@nb.njit(cache=True)
def apply_friction(
    Q: np.ndarray,
    dt: float,
    s0: np.ndarray,
    s1: np.ndarray,
    h_dry: float,
    C: np.ndarray,
    nu_int: float,
) -> None:
    """Semi-implicit basal friction, coupled with the implicit internal viscosity.

    Momenta ``q = (h u_m, h alpha_1..N)``; the basal stress ``tau`` acts along
    ``e = (1, 3, 5, ..)`` (weight ``2i + 1`` on moment ``i``) and the viscosity is
    ``V = (nu / h^2) diag(0, C)``. One backward-Euler step ``(I + dt V) q' = q - dt tau e``
    with the basal momentum ``h u_b = sum(q')``: with ``p = sum((I + dt V)^-1 q)`` and
    ``d = sum((I + dt V)^-1 e)`` (``d = (N + 1)^2`` without viscosity, ``-> 1`` for a rigid
    profile), ``|h u_b'| = max(|p| - dt d S0, 0) / (1 + dt d kappa)`` keeps the sign
    of ``p``: the base sticks when the yield can hold it and friction never reverses the
    basal velocity; ``kappa = (S1 - S0) / |h u_b|`` is the drag per unit basal momentum of
    the rate-dependent part where ``S1`` was evaluated (exact for linear laws, so e.g. the
    steady Navier-slip profile comes out right). For ``N = 0`` this is the plain update
    ``|hu'| = max(|hu| - dt S0, 0) / (1 + dt (S1 - S0) / |hu|)``. Dry cells get zero
    momentum; negative round-off depths are set to zero. Works in place on ``Q``.
    """
    K, n = Q.shape
    N = K - 2
    M = np.zeros((N, N))
    Wk = np.zeros((N, N))
    bk = np.zeros(N)
    qa = np.zeros(N)
    ea = np.zeros(N)
    ya = np.zeros(N)
    za = np.zeros(N)
    for j in range(N):
        ea[j] = 2.0 * (j + 1) + 1.0
    for i in range(n):
        h = Q[0, i]
        if h <= h_dry:
            if h < 0.0:
                Q[0, i] = 0.0
            for r in range(1, K):
                Q[r, i] = 0.0
            continue
        mstar = 0.0  # basal momentum at which S1 was evaluated
        for r in range(1, K):
            mstar += Q[r, i]
        # viscous solves (I + f C) y = q_alpha and (I + f C) z = e_alpha
        p = Q[1, i]
        d = 1.0
        if N > 0:
            fac = dt * nu_int / (h * h)
            for a in range(N):
                qa[a] = Q[a + 2, i]
                for b in range(N):
                    M[a, b] = fac * C[a, b] + (1.0 if a == b else 0.0)
            if fac > 0.0:
                _solve_small(M, qa, ya, Wk, bk)
                _solve_small(M, ea, za, Wk, bk)
            else:
                for a in range(N):
                    ya[a] = qa[a]
                    za[a] = ea[a]
            for a in range(N):
                p += ya[a]
                d += za[a]
        ap = abs(p)
        imp = 0.0  # dt * tau
        if ap > 0.0:
            # drag per unit basal momentum of the rate-dependent part, (S1 - S0) / |h u_b|,
            # taken where S1 was evaluated and applied implicitly to the relaxed momentum
            rate = s1[i] - s0[i]
            if rate < 0.0 or mstar == 0.0:
                rate = 0.0
            else:
                rate = rate / abs(mstar)
            m_new = ap - dt * d * s0[i]
            if m_new < 0.0:
                m_new = 0.0
            m_new = m_new / (1.0 + dt * d * rate)
            imp = (ap - m_new) / d
            if p < 0.0:
                imp = -imp
            if N == 0:
                Q[1, i] = m_new if p > 0.0 else -m_new
        if N > 0:
            Q[1, i] -= imp
            for a in range(N):
                Q[a + 2, i] = ya[a] - imp * za[a]
