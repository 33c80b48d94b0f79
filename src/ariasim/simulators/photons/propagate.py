"""The compiled photon-propagation kernel (numba).

Each photon is followed until it is absorbed or enters a module sphere:

1. an absorption optical depth ``τ_a = -ln u`` is drawn once per photon;
2. at every step a scattering optical depth ``τ_s = -ln u`` is drawn and consumed layer
   by layer (``∫ b(z) ds``), while the absorption depth is consumed with ``∫ a(z) ds``;
   the step ends at the scattering point or where ``τ_a`` runs out (absorption);
3. the straight segment of the step is tested against the module spheres; the first
   sphere entered ends the photon (a hit, accepted by rejection or recorded with a
   weight, see :class:`~ariasim.simulators.photons.detector.Detector`);
4. otherwise the photon scatters with a mixture of Henyey-Greenstein and simplified-Liu
   of the same mean cosine ``g``.

Time advances at the group velocity ``c / n_group(λ)``.

The module test uses a uniform 3-D cell grid over the module bounding box: every module
is listed in each cell its (oversized) sphere overlaps, and a step's segment walks the
cells it crosses (Amanatides-Woo traversal), testing only the modules listed there and
stopping as soon as a hit lies inside the current cell. ``method="naive"`` tests every
module at every step (the simple reference).

Random numbers: xoshiro256+ (Blackman & Vigna), one stream per chunk of photons, its
state expanded with splitmix64 from a 64-bit key derived from (seed, event, block,
chunk). The chunk decomposition does not depend on the number of threads or the batch
size, so the output is bit-for-bit reproducible whatever the parallelism.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
    J. Amanatides and A. Woo, "A fast voxel traversal algorithm for ray tracing",
    Eurographics 1987.
    D. Blackman and S. Vigna, "Scrambled linear pseudorandom number generators",
    ACM TOMS 47 (2021) 36.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ariasim.simulators.photons.optics import (
    A_TEMPERATURE_PER_M,
    ALPHA_SCATTERING,
    B_TEMPERATURE_NM,
    KAPPA_ABSORPTION,
    SPEED_OF_LIGHT_M_PER_NS,
)

# the njit building blocks (chunk_state, start_photon, step_photon, scatter_direction,
# acceptance_polynomial) are public for the other kernels (shells.py), not for users
__all__ = [
    "acceptance_polynomial",
    "birefringence_step",
    "build_cell_grid",
    "chunk_keys",
    "chunk_state",
    "propagate_kernel",
    "propagate_kernel_ice",
    "sample_scattering_cosines",
    "scatter_direction",
    "start_photon",
    "step_photon",
    "tilt_shift",
]

_INF = np.inf
_MAX_STEP_M = 1.0e7  # a photon that would fly further than this escapes
# the physics constants live in optics.py; numba freezes these module globals at compile time
_C_M_PER_NS = SPEED_OF_LIGHT_M_PER_NS
_ALPHA = ALPHA_SCATTERING
_KAPPA = KAPPA_ABSORPTION
_A_T = A_TEMPERATURE_PER_M
_B_T = B_TEMPERATURE_NM
_TWO_M53 = 1.0 / 9007199254740992.0

_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_U30 = np.uint64(30)
_U27 = np.uint64(27)
_U31 = np.uint64(31)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@nb.njit(inline="always", cache=True)
def _splitmix(x: np.uint64) -> np.uint64:
    z = x
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@nb.njit(inline="always", cache=True)
def _seed_state(st: np.ndarray, key: np.uint64) -> None:
    x = key
    for i in range(4):
        x = x + _GOLDEN
        st[i] = _splitmix(x)


@nb.njit(inline="always", cache=True)
def _uniform(st: np.ndarray) -> float:
    """xoshiro256+ step; returns a double in (0, 1]."""
    s0 = st[0]
    s1 = st[1]
    s2 = st[2]
    s3 = st[3]
    result = s0 + s3
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    st[0] = s0
    st[1] = s1
    st[2] = s2
    st[3] = s3
    return (float(result >> _U11) + 1.0) * _TWO_M53


@nb.njit(inline="always", cache=True)
def _next(s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64):
    """xoshiro256+ step on a state held in registers; returns the new state and a double
    in (0, 1]."""
    result = s0 + s3
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    return s0, s1, s2, s3, (float(result >> _U11) + 1.0) * _TWO_M53


@nb.njit(inline="always", cache=True)
def _scatter_cos(u: float, v: float, g: float, sl_fraction: float) -> float:
    """Cosine of the scattering angle: SL with probability sl_fraction, else HG.

    ``u`` chooses the component and is reused (rescaled) for nothing else; ``v`` samples
    the cosine. The simplified-Liu power ``v^((1-g)/(1+g))`` is taken as
    ``exp(k ln v)`` (cheaper than ``pow``; the same to a few units in the last place).
    """
    if g == 0.0:
        return 2.0 * v - 1.0
    if u <= sl_fraction:
        c = 2.0 * math.exp((1.0 - g) / (1.0 + g) * math.log(v)) - 1.0
    else:
        xi = 2.0 * v - 1.0
        q = (1.0 - g * g) / (1.0 + g * xi)
        c = (1.0 + g * g - q * q) / (2.0 * g)
    if c > 1.0:
        c = 1.0
    elif c < -1.0:
        c = -1.0
    return c


@nb.njit(cache=True)
def sample_scattering_cosines(n: int, g: float, sl_fraction: float, key: np.uint64) -> np.ndarray:
    """Draw ``n`` scattering cosines from the HG/SL mixture (for validation).

    Arguments:
        n: Number of samples.
        g: Mean cosine.
        sl_fraction: Simplified-Liu fraction (0 = pure HG, 1 = pure SL).
        key: 64-bit RNG key.
    """
    st = np.empty(4, np.uint64)
    _seed_state(st, key)
    out = np.empty(n)
    for i in range(n):
        u = _uniform(st)
        v = _uniform(st)
        out[i] = _scatter_cos(u, v, g, sl_fraction)
    return out


@nb.njit(inline="always", cache=True)
def _sphere_dist(
    x: float,
    y: float,
    z: float,
    ux: float,
    uy: float,
    uz: float,
    cx: float,
    cy: float,
    cz: float,
    r2: float,
) -> float:
    """Distance along the ray to where it enters the sphere, or inf."""
    ox = x - cx
    oy = y - cy
    oz = z - cz
    b = ox * ux + oy * uy + oz * uz
    if b >= 0.0:
        return _INF
    c = ox * ox + oy * oy + oz * oz - r2
    disc = b * b - c
    if disc < 0.0 or c < 0.0:
        return _INF
    return -b - math.sqrt(disc)


@nb.njit(inline="always", cache=True)
def _naive_hit(x, y, z, ux, uy, uz, s, mods, r2):
    best = _INF
    bm = -1
    for m in range(mods.shape[0]):
        d = _sphere_dist(x, y, z, ux, uy, uz, mods[m, 0], mods[m, 1], mods[m, 2], r2)
        if d <= s and d < best:
            best = d
            bm = m
    return best, bm


@nb.njit(inline="always", cache=True)
def _grid_hit(x, y, z, ux, uy, uz, s, mods, r2, lo, hi, cell, dims, cstart, items):
    """Nearest module entered along the segment, walking the cells it crosses."""
    # clip the segment to the grid box (slab test); inverse direction shared with the walk
    t0 = 0.0
    t1 = s
    ix = iy = iz = 0
    ivx = 1.0 / ux if ux != 0.0 else _INF
    ivy = 1.0 / uy if uy != 0.0 else _INF
    ivz = 1.0 / uz if uz != 0.0 else _INF
    if ux != 0.0:
        ta = (lo[0] - x) * ivx
        tb = (hi[0] - x) * ivx
        t0 = max(t0, min(ta, tb))
        t1 = min(t1, max(ta, tb))
    elif x < lo[0] or x > hi[0]:
        return _INF, -1
    if uy != 0.0:
        ta = (lo[1] - y) * ivy
        tb = (hi[1] - y) * ivy
        t0 = max(t0, min(ta, tb))
        t1 = min(t1, max(ta, tb))
    elif y < lo[1] or y > hi[1]:
        return _INF, -1
    if uz != 0.0:
        ta = (lo[2] - z) * ivz
        tb = (hi[2] - z) * ivz
        t0 = max(t0, min(ta, tb))
        t1 = min(t1, max(ta, tb))
    elif z < lo[2] or z > hi[2]:
        return _INF, -1
    if t0 > t1:
        return _INF, -1
    nx = dims[0]
    ny = dims[1]
    nz = dims[2]
    inv_cell = 1.0 / cell
    ix = min(max(int((x + t0 * ux - lo[0]) * inv_cell), 0), nx - 1)
    iy = min(max(int((y + t0 * uy - lo[1]) * inv_cell), 0), ny - 1)
    iz = min(max(int((z + t0 * uz - lo[2]) * inv_cell), 0), nz - 1)
    if ux > 0.0:
        sx = 1
        tmx = (lo[0] + (ix + 1) * cell - x) * ivx
        tdx = cell * ivx
    elif ux < 0.0:
        sx = -1
        tmx = (lo[0] + ix * cell - x) * ivx
        tdx = -cell * ivx
    else:
        sx = 0
        tmx = _INF
        tdx = _INF
    if uy > 0.0:
        sy = 1
        tmy = (lo[1] + (iy + 1) * cell - y) * ivy
        tdy = cell * ivy
    elif uy < 0.0:
        sy = -1
        tmy = (lo[1] + iy * cell - y) * ivy
        tdy = -cell * ivy
    else:
        sy = 0
        tmy = _INF
        tdy = _INF
    if uz > 0.0:
        sz = 1
        tmz = (lo[2] + (iz + 1) * cell - z) * ivz
        tdz = cell * ivz
    elif uz < 0.0:
        sz = -1
        tmz = (lo[2] + iz * cell - z) * ivz
        tdz = -cell * ivz
    else:
        sz = 0
        tmz = _INF
        tdz = _INF
    best = _INF
    bm = -1
    while True:
        c = (iz * ny + iy) * nx + ix
        for k in range(cstart[c], cstart[c + 1]):
            m = items[k]
            d = _sphere_dist(x, y, z, ux, uy, uz, mods[m, 0], mods[m, 1], mods[m, 2], r2)
            if d <= s and d < best:
                best = d
                bm = m
        if tmx <= tmy and tmx <= tmz:
            texit = tmx
            if best <= texit or texit >= t1:
                break
            ix += sx
            if ix < 0 or ix >= nx:
                break
            tmx += tdx
        elif tmy <= tmz:
            texit = tmy
            if best <= texit or texit >= t1:
                break
            iy += sy
            if iy < 0 or iy >= ny:
                break
            tmy += tdy
        else:
            texit = tmz
            if best <= texit or texit >= t1:
                break
            iz += sz
            if iz < 0 or iz >= nz:
                break
            tmz += tdz
    return best, bm


@nb.njit(inline="always", cache=True)
def chunk_state(st: np.ndarray, key: np.uint64):
    """Seed the stream of one chunk; returns its state ``(s0, s1, s2, s3)`` for registers."""
    _seed_state(st, key)
    return st[0], st[1], st[2], st[3]


@nb.njit(inline="always", cache=True)
def _optical_depth(s0, s1, s2, s3):
    """An optical depth ``-ln u``; returns ``(tau, s0, s1, s2, s3)``."""
    s0, s1, s2, s3, u = _next(s0, s1, s2, s3)
    return -math.log(u), s0, s1, s2, s3


@nb.njit(inline="always", cache=True)
def _photon_medium(lam, z, wl_dependent, n_group_const, zb, be400, ad400, dtau, inv_1mg):
    """Per-photon medium constants.

    Returns:
        ``(fb, fa, ft, inv_v, layer, b_hom, a_hom)``: the SPICE wavelength factors of
        scattering, dust absorption and ice temperature absorption, the inverse group
        velocity [ns/m], the layer of the start depth ``z`` and the scattering and
        absorption coefficients of layer 0 (all of a homogeneous medium).
    """
    nl = be400.size
    if wl_dependent:
        rr = lam / 400.0
        fb = rr ** (-_ALPHA)
        fa = rr ** (-_KAPPA)
        ft = _A_T * math.exp(-_B_T / lam)
    else:
        fb = 1.0
        fa = 1.0
        ft = 0.0
    if n_group_const > 0.0:
        ng = n_group_const
    else:
        xl = lam * 1e-3
        nph = 1.55749 + xl * (-1.57988 + xl * (3.99993 + xl * (-4.68271 + xl * 2.09354)))
        ng = nph * (1.227106 + xl * (-0.954648 + xl * (1.42568 + xl * -0.711832)))
    inv_v = ng / _C_M_PER_NS
    layer = 0
    while layer < nl - 1 and z >= zb[layer]:
        layer += 1
    b_hom = be400[0] * fb * inv_1mg
    a_hom = ad400[0] * fa + ft * (1.0 + 0.01 * dtau[0])
    return fb, fa, ft, inv_v, layer, b_hom, a_hom


@nb.njit(inline="always", cache=True)
def start_photon(
    i,
    px,
    py,
    pz,
    dx,
    dy,
    dz,
    t0,
    wl,
    wl_dependent,
    n_group_const,
    zb,
    be400,
    ad400,
    dtau,
    inv_1mg,
    s0,
    s1,
    s2,
    s3,
):
    """Load photon ``i``, its medium constants (:func:`_photon_medium`) and draw its
    absorption depth.

    Returns:
        ``(x, y, z, ux, uy, uz, t, fb, fa, ft, inv_v, layer, b_hom, a_hom, tau_a,
        s0, s1, s2, s3)``.
    """
    z = pz[i]
    fb, fa, ft, inv_v, layer, b_hom, a_hom = _photon_medium(
        wl[i], z, wl_dependent, n_group_const, zb, be400, ad400, dtau, inv_1mg
    )
    tau_a, s0, s1, s2, s3 = _optical_depth(s0, s1, s2, s3)
    return (
        px[i],
        py[i],
        z,
        dx[i],
        dy[i],
        dz[i],
        t0[i],
        fb,
        fa,
        ft,
        inv_v,
        layer,
        b_hom,
        a_hom,
        tau_a,
        s0,
        s1,
        s2,
        s3,
    )


@nb.njit(inline="always", cache=True)
def acceptance_polynomial(coeffs, eta):
    """Angular acceptance polynomial ``sum_k coeffs[k] eta^k`` (Horner; coeffs non-empty)."""
    n = coeffs.size
    acc = coeffs[n - 1]
    for k in range(n - 2, -1, -1):
        acc = acc * eta + coeffs[k]
    return acc


@nb.njit(inline="always", cache=True)
def _step_length(
    z, uz, layer, tau_a, tau_s, nl, b_hom, a_hom, zb, be400, ad400, dtau, fb, fa, ft, inv_1mg
):
    """Length of one step: consume the scattering depth ``tau_s`` layer by layer.

    Shared by the hit kernel and the shell tables of :mod:`~.shells` (through
    :func:`step_photon`).

    Returns:
        ``(s, absorbed, tau_a, layer)``: step length [m], whether the absorption depth ran
        out inside it, the remaining absorption depth and the layer at the step's end.
    """
    absorbed = False
    if nl == 1:
        s_s = tau_s / b_hom if b_hom > 0.0 else _INF
        s_a = tau_a / a_hom if a_hom > 0.0 else _INF
        if s_a <= s_s:
            s = s_a
            absorbed = True
        else:
            s = s_s
            tau_a -= a_hom * s
        return s, absorbed, tau_a, layer
    s = 0.0
    zz = z
    while True:
        bl = be400[layer] * fb * inv_1mg
        al = ad400[layer] * fa + ft * (1.0 + 0.01 * dtau[layer])
        s_s = tau_s / bl if bl > 0.0 else _INF
        s_a = tau_a / al if al > 0.0 else _INF
        if uz > 0.0 and layer < nl - 1:
            sb = (zb[layer] - zz) / uz
        elif uz < 0.0 and layer > 0:
            sb = (zb[layer - 1] - zz) / uz
        else:
            sb = _INF
        if sb < s_s and sb < s_a:
            s += sb
            tau_s -= bl * sb
            tau_a -= al * sb
            if uz > 0.0:
                zz = zb[layer]
                layer += 1
            else:
                layer -= 1
                zz = zb[layer]
            continue
        if s_a <= s_s:
            s += s_a
            absorbed = True
        else:
            s += s_s
            tau_a -= al * s_s
        break
    return s, absorbed, tau_a, layer


@nb.njit(inline="always", cache=True)
def step_photon(
    z,
    uz,
    layer,
    tau_a,
    nl,
    b_hom,
    a_hom,
    zb,
    be400,
    ad400,
    dtau,
    fb,
    fa,
    ft,
    inv_1mg,
    s0,
    s1,
    s2,
    s3,
):
    """One step: draw a scattering depth, walk it through the layers (:func:`_step_length`)
    and cap the length at ``_MAX_STEP_M`` (the photon escapes).

    Returns:
        ``(s, absorbed, escaped, tau_a, layer, s0, s1, s2, s3)``.
    """
    tau_s, s0, s1, s2, s3 = _optical_depth(s0, s1, s2, s3)
    s, absorbed, tau_a, layer = _step_length(
        z, uz, layer, tau_a, tau_s, nl, b_hom, a_hom, zb, be400, ad400, dtau, fb, fa, ft, inv_1mg
    )
    escaped = False
    if s > _MAX_STEP_M:
        s = _MAX_STEP_M
        escaped = True
    return s, absorbed, escaped, tau_a, layer, s0, s1, s2, s3


@nb.njit(inline="always", cache=True)
def scatter_direction(ux, uy, uz, g, sl_fraction, s0, s1, s2, s3):
    """New direction after one scattering (HG/SL mixture, azimuth without trigonometry).

    Shared by the hit kernel and the shell tables; returns ``(ux, uy, uz, s0, s1, s2, s3)``.
    """
    s0, s1, s2, s3, u1 = _next(s0, s1, s2, s3)
    s0, s1, s2, s3, u2 = _next(s0, s1, s2, s3)
    ct = _scatter_cos(u1, u2, g, sl_fraction)
    stt = math.sqrt(max(0.0, 1.0 - ct * ct))
    while True:
        s0, s1, s2, s3, u1 = _next(s0, s1, s2, s3)
        s0, s1, s2, s3, u2 = _next(s0, s1, s2, s3)
        a1 = 2.0 * u1 - 1.0
        a2 = 2.0 * u2 - 1.0
        q = a1 * a1 + a2 * a2
        if q <= 1.0 and q > 0.0:
            break
    cp = (a1 * a1 - a2 * a2) / q
    sp = 2.0 * a1 * a2 / q
    if abs(uz) > 0.99999:
        sgn = 1.0 if uz > 0.0 else -1.0
        nux = stt * cp
        nuy = stt * sp
        nuz = ct * sgn
    else:
        tmp = math.sqrt(1.0 - uz * uz)
        nux = stt * (ux * uz * cp - uy * sp) / tmp + ux * ct
        nuy = stt * (uy * uz * cp + ux * sp) / tmp + uy * ct
        nuz = -stt * cp * tmp + uz * ct
    # renormalise against rounding drift: the rotation keeps a unit vector unit to about
    # 1e-16, where one Newton step for 1/sqrt(n2), 1.5 - n2/2, is exact to rounding and
    # cheaper than a square root and a division (kept for a direction far from unit)
    n2 = nux * nux + nuy * nuy + nuz * nuz
    if abs(n2 - 1.0) < 1e-6:
        nrm = 1.5 - 0.5 * n2
    else:
        nrm = 1.0 / math.sqrt(n2)
    return nux * nrm, nuy * nrm, nuz * nrm, s0, s1, s2, s3


@nb.njit(parallel=True, cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def propagate_kernel(
    px,
    py,
    pz,
    dx,
    dy,
    dz,
    t0,
    wl,
    w0,
    chunk_start,
    chunk_key,
    zb,
    be400,
    ad400,
    dtau,
    wl_dependent,
    g,
    sl_fraction,
    n_group_const,
    mods,
    radius,
    ang_coeffs,
    accept_by_weight,
    use_grid,
    lo,
    hi,
    cell,
    dims,
    cstart,
    items,
    smap,
    mcell,
    mdims,
    out_mod,
    out_t,
    out_w,
    out_hx,
    out_hy,
    out_hz,
):
    """Propagate one batch of photons (see the module docstring).

    Arguments (arrays are float64 unless said otherwise):
        px, py, pz, dx, dy, dz, t0, wl, w0: Per-photon start position [m], unit
            direction, time [ns], wavelength [nm] and weight.
        chunk_start: int64, first photon of each chunk, plus the end (len n_chunks + 1).
        chunk_key: uint64 RNG key of each chunk.
        zb, be400, ad400, dtau: Medium layers (see :class:`~.optics.Medium`).
        wl_dependent: Apply the SPICE wavelength dependence.
        g, sl_fraction: Phase function.
        n_group_const: Constant group index, or <= 0 for the ice polynomial.
        mods: (n_modules, 3) module centres [m]; radius: sphere radius [m] (oversized).
        ang_coeffs: Angular acceptance polynomial in eta (empty: flat).
        accept_by_weight: Multiply the hit weight by the acceptance instead of rejecting.
        use_grid, lo, hi, cell, dims, cstart, items, smap, mcell, mdims: The cell grid
            and the clearance map (see :func:`build_cell_grid`); ``use_grid=False`` tests
            every module.
        out_mod, out_t, out_w, out_hx, out_hy, out_hz: Per-photon outputs: int32 module
            index (-1: no hit), arrival time [ns], weight and the hit point [m].
    """
    n_chunks = chunk_start.size - 1
    nl = be400.size
    inv_1mg = 1.0 / (1.0 - g)
    r2 = radius * radius
    n_ang = ang_coeffs.size
    inv_mcell = 1.0 / mcell
    for ci in nb.prange(n_chunks):
        st = np.empty(4, np.uint64)
        s0, s1, s2, s3 = chunk_state(st, chunk_key[ci])
        for i in range(chunk_start[ci], chunk_start[ci + 1]):
            out_mod[i] = -1
            (
                x,
                y,
                z,
                ux,
                uy,
                uz,
                t,
                fb,
                fa,
                ft,
                inv_v,
                layer,
                b_hom,
                a_hom,
                tau_a,
                s0,
                s1,
                s2,
                s3,
            ) = start_photon(
                i,
                px,
                py,
                pz,
                dx,
                dy,
                dz,
                t0,
                wl,
                wl_dependent,
                n_group_const,
                zb,
                be400,
                ad400,
                dtau,
                inv_1mg,
                s0,
                s1,
                s2,
                s3,
            )
            while True:
                s, absorbed, escaped, tau_a, layer, s0, s1, s2, s3 = step_photon(
                    z,
                    uz,
                    layer,
                    tau_a,
                    nl,
                    b_hom,
                    a_hom,
                    zb,
                    be400,
                    ad400,
                    dtau,
                    fb,
                    fa,
                    ft,
                    inv_1mg,
                    s0,
                    s1,
                    s2,
                    s3,
                )
                if use_grid:
                    # clearance: a step shorter than the distance to the nearest sphere
                    # cannot hit anything (one table look-up for most steps)
                    if (lo[0] < x < hi[0]) and (lo[1] < y < hi[1]) and (lo[2] < z < hi[2]):
                        jx = min(int((x - lo[0]) * inv_mcell), mdims[0] - 1)
                        jy = min(int((y - lo[1]) * inv_mcell), mdims[1] - 1)
                        jz = min(int((z - lo[2]) * inv_mcell), mdims[2] - 1)
                        clear = s < smap[(jz * mdims[1] + jy) * mdims[0] + jx]
                    else:
                        ex = max(lo[0] - x, x - hi[0], 0.0)
                        ey = max(lo[1] - y, y - hi[1], 0.0)
                        ez = max(lo[2] - z, z - hi[2], 0.0)
                        clear = s * s < ex * ex + ey * ey + ez * ez
                if use_grid and clear:
                    d = _INF
                    m = -1
                elif use_grid:
                    d, m = _grid_hit(
                        x, y, z, ux, uy, uz, s, mods, r2, lo, hi, cell, dims, cstart, items
                    )
                else:
                    d, m = _naive_hit(x, y, z, ux, uy, uz, s, mods, r2)
                if m >= 0:
                    w = w0[i]
                    if n_ang > 0:
                        # PMT axis points down: head-on for upgoing photons
                        acc = acceptance_polynomial(ang_coeffs, uz)
                        if accept_by_weight:
                            w *= max(acc, 0.0)
                        else:
                            s0, s1, s2, s3, u1 = _next(s0, s1, s2, s3)
                            if u1 > acc:
                                break  # the module absorbed the photon without detecting it
                    out_mod[i] = m
                    out_t[i] = t + d * inv_v
                    out_w[i] = w
                    out_hx[i] = x + d * ux
                    out_hy[i] = y + d * uy
                    out_hz[i] = z + d * uz
                    break
                x += s * ux
                y += s * uy
                z += s * uz
                t += s * inv_v
                if absorbed or escaped:
                    break
                ux, uy, uz, s0, s1, s2, s3 = scatter_direction(
                    ux, uy, uz, g, sl_fraction, s0, s1, s2, s3
                )


def nearest_distances(
    points: np.ndarray, targets: np.ndarray, *, skip_self: bool = False
) -> np.ndarray:
    """Distance from each of ``points`` (m, 3) to the nearest of ``targets`` (n, 3).

    ``skip_self``: points and targets are the same array; each point's own distance is
    skipped. Small problems (m n <= 2e7, e.g. up to a few hundred modules) are done by
    brute force in NumPy, which spares the process importing scipy.spatial (about 0.2 s
    of CPU at start-up); larger ones by scipy's k-d tree. Both sum the squared
    coordinate differences in x, y, z order and take one square root, so they agree
    to the last bit.

    Example:
        >>> p = np.array([[0.0, 0, 0], [3.0, 4.0, 0], [0, 0, 10.0]])
        >>> nearest_distances(p, p, skip_self=True).tolist()
        [5.0, 5.0, 10.0]
    """
    m, n = len(points), len(targets)
    if m * n > 20_000_000:
        from scipy.spatial import cKDTree

        k = 2 if skip_self else 1
        dist, _ = cKDTree(targets).query(points, k=k, workers=-1)
        return dist[:, 1] if skip_self else dist
    out = np.empty(m)
    step = max(1, 4_000_000 // max(n, 1))
    for a in range(0, m, step):
        p = points[a : a + step]
        d2 = (p[:, None, 0] - targets[None, :, 0]) ** 2
        d2 += (p[:, None, 1] - targets[None, :, 1]) ** 2
        d2 += (p[:, None, 2] - targets[None, :, 2]) ** 2
        if skip_self:
            d2[np.arange(len(p)), np.arange(a, a + len(p))] = np.inf
        out[a : a + step] = np.sqrt(d2.min(axis=1))
    return out


def build_cell_grid(positions_m: np.ndarray, radius_m: float, cell_m: float | None = None) -> tuple:
    """Uniform 3-D cell grid listing every module in each cell its sphere overlaps.

    Arguments:
        positions_m: (n, 3) module centres.
        radius_m: Sphere radius (oversized).
        cell_m: Cell edge; default ~ half the typical nearest-neighbour distance, at least
            4 radii, and coarse enough for at most ~4 million cells.

    Returns:
        ``(lo, hi, cell, dims, cell_start, items, clearance, map_cell, map_dims)``: box
        corners, cell edge, int64 dims, int64 CSR offsets (n_cells + 1), int32 module
        indices, and the clearance map (float32, x fastest) with its cell edge and dims.
    """
    pos = np.asarray(positions_m, dtype=float)
    pad = radius_m * 1.001 + 1e-6
    lo = pos.min(axis=0) - pad
    hi = pos.max(axis=0) + pad
    span = hi - lo
    if cell_m is None:
        if len(pos) > 1:
            nn = float(np.median(nearest_distances(pos, pos, skip_self=True)))
        else:
            nn = 8.0
        cell_m = max(nn / 2.0, 4.0 * radius_m)
        cell_m = max(cell_m, float(np.prod(span) / 4.0e6) ** (1.0 / 3.0))
    dims = np.maximum(np.ceil(span / cell_m).astype(np.int64), 1)
    hi = lo + dims * cell_m
    # cell ranges overlapped by each sphere's bounding box
    i0 = np.clip(np.floor((pos - pad - lo) / cell_m).astype(np.int64), 0, dims - 1)
    i1 = np.clip(np.floor((pos + pad - lo) / cell_m).astype(np.int64), 0, dims - 1)
    cells: list[int] = []
    mods: list[int] = []
    for m in range(len(pos)):
        for iz in range(i0[m, 2], i1[m, 2] + 1):
            for iy in range(i0[m, 1], i1[m, 1] + 1):
                for ix in range(i0[m, 0], i1[m, 0] + 1):
                    cells.append(int((iz * dims[1] + iy) * dims[0] + ix))
                    mods.append(m)
    cells_a = np.asarray(cells, dtype=np.int64)
    mods_a = np.asarray(mods, dtype=np.int32)
    order = np.argsort(cells_a, kind="stable")
    n_cells = int(np.prod(dims))
    counts = np.bincount(cells_a, minlength=n_cells)
    cstart = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(counts, out=cstart[1:])
    # clearance map: finer cells (about 2 m) tiling the same box, each holding a lower
    # bound on the distance from any point of the cell to any sphere surface
    k = int(np.clip(round(cell_m / 2.0), 1, 8))
    while k > 1 and np.prod(dims * k) > 4_000_000:
        k -= 1
    mdims = dims * k
    mcell = cell_m / k
    axes = [lo[i] + (np.arange(mdims[i]) + 0.5) * mcell for i in range(3)]
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    centres = np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    nearest = nearest_distances(centres, pos)
    half_diag = 0.5 * math.sqrt(3.0) * mcell
    smap = np.maximum(nearest - radius_m * 1.001 - half_diag - 1e-6, 0.0).astype(np.float32)
    # float32 rounding must not overstate a clearance
    smap = np.nextafter(smap, np.float32(0.0)).clip(0.0)
    return lo, hi, float(cell_m), dims, cstart, mods_a[order], smap, float(mcell), mdims


def chunk_keys(base_key: int, n_chunks: int) -> np.ndarray:
    """64-bit RNG keys of the chunks of one generation block (distinct, well mixed).

    Arguments:
        base_key: Key of the block (from a :class:`numpy.random.SeedSequence`).
        n_chunks: Number of chunks in it.
    """
    j = np.arange(n_chunks, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(base_key) + (j + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> _U30)) * _M1
        z = (z ^ (z >> _U27)) * _M2
        z = z ^ (z >> _U31)
    return z


# ------------------------------------------------------------------ IceCube ice effects
# Layer tilt, absorption/scattering anisotropy and birefringence (see ice_effects.py);
# a separate kernel so that a medium without them runs the plain one unchanged.


@nb.njit(inline="always", cache=True)
def tilt_shift(x, y, z, tcx, tsy, tr0, tlr, tz0, tinv, ttab):
    """Layer depth shift at (x, y, z): bilinear in the distance along the tilt direction
    and in z, extrapolated linearly beyond the table (as PPC's 1-d tilt model)."""
    nr = tcx * x + tsy * y - tr0
    nd = tlr.size
    j = 1
    while j < nd - 1 and nr >= tlr[j]:
        j += 1
    i = j - 1
    wx = (nr - tlr[i]) / (tlr[j] - tlr[i])
    zz = (z - tz0) * tinv
    k = math.floor(zz)
    kmax = ttab.shape[1] - 2
    if k < 0:
        k = 0
    elif k > kmax:
        k = kmax
    f = zz - k
    vi = ttab[i, k] + (ttab[i, k + 1] - ttab[i, k]) * f
    vj = ttab[j, k] + (ttab[j, k + 1] - ttab[j, k]) * f
    return vi * (1.0 - wx) + vj * wx


@nb.njit(inline="always", cache=True)
def _locate(zb, z, layer):
    """Layer containing height z, searched from a nearby guess."""
    nl = zb.size + 1
    while layer < nl - 1 and z >= zb[layer]:
        layer += 1
    while layer > 0 and z < zb[layer - 1]:
        layer -= 1
    return layer


@nb.njit(inline="always", cache=True)
def _step_length_ice(
    z, uz, layer, tau_a, tau_s, nl, zb, be400, ad400, dtau, badd, fb, fa, ft, inv_1mg, adir
):
    """As :func:`_step_length` with a per-layer scattering offset ``badd`` and the
    absorption multiplied by the direction factor ``adir``; ``z`` is the tilt-corrected
    height. Returns ``(s, absorbed, tau_a, layer)``."""
    absorbed = False
    s = 0.0
    zz = z
    while True:
        bl = max(be400[layer] * fb + badd[layer], 0.0) * inv_1mg
        al = (ad400[layer] * fa + ft * (1.0 + 0.01 * dtau[layer])) * adir
        s_s = tau_s / bl if bl > 0.0 else _INF
        s_a = tau_a / al if al > 0.0 else _INF
        if uz > 0.0 and layer < nl - 1:
            sb = (zb[layer] - zz) / uz
        elif uz < 0.0 and layer > 0:
            sb = (zb[layer - 1] - zz) / uz
        else:
            sb = _INF
        if sb < s_s and sb < s_a:
            s += sb
            tau_s -= bl * sb
            tau_a -= al * sb
            if uz > 0.0:
                zz = zb[layer]
                layer += 1
            else:
                layer -= 1
                zz = zb[layer]
            continue
        if s_a <= s_s:
            s += s_a
            absorbed = True
        else:
            s += s_s
            tau_a -= al * s_s
        break
    return s, absorbed, tau_a, layer


@nb.njit(inline="always", cache=True)
def _layer_path_integrals(z, uz, s, layer, zb, ra, rb):
    """``(∫ ra ds, ∫ rb ds)`` over a straight segment of length s from height z (in
    ``layer``).

    Written as one loop without ``break`` out of two branches and with accumulator names
    that no caller uses: an earlier form (``ia``/``ib`` accumulated in two places around a
    ``break``) did not type on its own in numba 0.6x and, inlined into the ice kernel
    (whose results are also called ``ia``/``ib``), returned only the last layer's piece
    of a segment that crossed layer boundaries -- too little birefringence in layered
    ice (PPC's t10 was 0.6-1 ns later than ariasim's).
    """
    n_bound = zb.size
    acc_ra = 0.0
    acc_rb = 0.0
    left = s
    z_at = z
    k = layer
    while left > 0.0:
        seg = left
        if uz > 0.0 and k < n_bound:
            seg = min(left, (zb[k] - z_at) / uz)
        elif uz < 0.0 and k > 0:
            seg = min(left, (zb[k - 1] - z_at) / uz)
        seg = max(seg, 0.0)
        acc_ra += ra[k] * seg
        acc_rb += rb[k] * seg
        left -= seg
        if left > 0.0:
            if uz > 0.0:
                z_at = zb[k]
                k += 1
            else:
                k -= 1
                z_at = zb[k]
    return acc_ra, acc_rb


@nb.njit(inline="always", cache=True)
def _gauss_pair(s0, s1, s2, s3):
    """Two independent standard normal numbers (Marsaglia's polar method)."""
    while True:
        s0, s1, s2, s3, u1 = _next(s0, s1, s2, s3)
        s0, s1, s2, s3, u2 = _next(s0, s1, s2, s3)
        a = 2.0 * u1 - 1.0
        b = 2.0 * u2 - 1.0
        q = a * a + b * b
        if q < 1.0 and q > 0.0:
            break
    f = math.sqrt(-2.0 * math.log(q) / q)
    return a * f, b * f, s0, s1, s2, s3


@nb.njit(inline="always", cache=True)
def _tilt_rotate(ux, uy, uz, ax, ay, t1, t2, tz):
    """Scale the direction by (t1, t2, tz) in the (flow, across, vertical) frame and
    normalise."""
    n1 = (ax * ux + ay * uy) * t1
    n2 = (-ay * ux + ax * uy) * t2
    vx = n1 * ax - n2 * ay
    vy = n1 * ay + n2 * ax
    vz = uz * tz
    nrm = 1.0 / math.sqrt(vx * vx + vy * vy + vz * vz)
    return vx * nrm, vy * nrm, vz * nrm


@nb.njit(inline="always", cache=True)
def birefringence_step(x, y, z, ux, uy, uz, s, ia, ib, ax, ay, btab, s0, s1, s2, s3):
    """Deflect the direction after a straight segment of length s (path integrals ia, ib
    of ra, rb) and move its end point as a Brownian bridge would (PPC's bfr model).

    Returns ``(x, y, z, ux, uy, uz, s0, s1, s2, s3)``.
    """
    dot = ax * ux + ay * uy
    # the widths per unit path, tabulated in |cos| to the flow axis (linear interpolation)
    nt = btab.shape[0] - 1
    u = abs(dot) * nt
    k = min(int(u), nt - 1)
    f = u - k
    sra = math.sqrt(ia)
    sx = sra * (btab[k, 0] + f * (btab[k + 1, 0] - btab[k, 0]))
    sy = sra * (btab[k, 1] + f * (btab[k + 1, 1] - btab[k, 1]))
    sdt = math.sqrt(max(0.0, 1.0 - dot * dot))
    mx = ib * sdt * (btab[k, 2] + f * (btab[k + 1, 2] - btab[k, 2]))
    # q: the flow axis's part perpendicular to the direction (towards the axis); p = n x q
    qx = ax - dot * ux
    qy = ay - dot * uy
    qz = -dot * uz
    if dot < 0.0:
        qx = -qx
        qy = -qy
        qz = -qz
    qn = qx * qx + qy * qy + qz * qz
    if qn > 0.0:
        f = 1.0 / math.sqrt(qn)
        qx *= f
        qy *= f
        qz *= f
    else:
        qx = 0.0
        qy = 0.0
        qz = 1.0
    px = uy * qz - uz * qy
    py = uz * qx - ux * qz
    pz = ux * qy - uy * qx
    g1, g2, s0, s1, s2, s3 = _gauss_pair(s0, s1, s2, s3)
    dnx = sx * g1 + mx
    dny = sy * g2
    # mean direction over the segment given its end deflection: half of it plus the
    # bridge's spread sigma / sqrt(3) / 2 (tangent of the half angle for the rotation)
    g3, g4, s0, s1, s2, s3 = _gauss_pair(s0, s1, s2, s3)
    inv_sqrt3 = 0.5773502691896258
    vx = 0.5 * (dnx + sx * g3 * inv_sqrt3)
    vy = 0.5 * (dny + sy * g4 * inv_sqrt3)
    den = vx * vx + vy * vy
    f = 2.0 / (1.0 + den)
    mxx = ux + (qx * vx + px * vy - ux * den) * f
    myy = uy + (qy * vx + py * vy - uy * den) * f
    mzz = uz + (qz * vx + pz * vy - uz * den) * f
    nrm = 1.0 / math.sqrt(mxx * mxx + myy * myy + mzz * mzz)
    h = 0.5 * s
    x += h * (mxx * nrm - ux)
    y += h * (myy * nrm - uy)
    z += h * (mzz * nrm - uz)
    vx = 0.5 * dnx
    vy = 0.5 * dny
    den = vx * vx + vy * vy
    f = 2.0 / (1.0 + den)
    nx = ux + (qx * vx + px * vy - ux * den) * f
    ny = uy + (qy * vx + py * vy - uy * den) * f
    nz = uz + (qz * vx + pz * vy - uz * den) * f
    nrm = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
    return x, y, z, nx * nrm, ny * nrm, nz * nrm, s0, s1, s2, s3


@nb.njit(parallel=True, cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def propagate_kernel_ice(
    px,
    py,
    pz,
    dx,
    dy,
    dz,
    t0,
    wl,
    w0,
    chunk_start,
    chunk_key,
    zb,
    be400,
    ad400,
    dtau,
    wl_dependent,
    g,
    sl_fraction,
    n_group_const,
    tilt_on,
    tcx,
    tsy,
    tr0,
    tlr,
    tz0,
    tinv,
    ttab,
    ani_on,
    ax,
    ay,
    k1,
    k2,
    kz,
    scat_on,
    sk1,
    sk2,
    bfr_on,
    btab,
    ra,
    rb,
    badd,
    mods,
    radius,
    ang_coeffs,
    accept_by_weight,
    use_grid,
    lo,
    hi,
    cell,
    dims,
    cstart,
    items,
    smap,
    mcell,
    mdims,
    out_mod,
    out_t,
    out_w,
    out_hx,
    out_hy,
    out_hz,
):
    """:func:`propagate_kernel` with IceCube's ice effects (PPC's model, see
    :mod:`~.ice_effects`): per step, the layer is found at the tilt-corrected height
    ``z - Δ(x, y, z)`` (kept for the whole step, as PPC), the absorption is multiplied by
    ``1/|(k1 n1, k2 n2, kz n3)|`` of the step's direction, the scattering coefficient gets a
    per-layer offset ``badd``; after a step that ends in a scattering the birefringence
    deflects the direction (and moves the end point), and the scattering itself happens
    in the frame stretched by the per-layer ``(sk1, sk2, 1/(sk1 sk2))``.

    Arguments as :func:`propagate_kernel`, plus the effect arguments of
    :meth:`~.ice_effects.IceEffects.kernel_args` after the medium's.
    """
    n_chunks = chunk_start.size - 1
    nl = be400.size
    inv_1mg = 1.0 / (1.0 - g)
    r2 = radius * radius
    n_ang = ang_coeffs.size
    inv_mcell = 1.0 / mcell
    for ci in nb.prange(n_chunks):
        st = np.empty(4, np.uint64)
        s0, s1, s2, s3 = chunk_state(st, chunk_key[ci])
        for i in range(chunk_start[ci], chunk_start[ci + 1]):
            out_mod[i] = -1
            (
                x,
                y,
                z,
                ux,
                uy,
                uz,
                t,
                fb,
                fa,
                ft,
                inv_v,
                layer,
                _b_hom,
                _a_hom,
                tau_a,
                s0,
                s1,
                s2,
                s3,
            ) = start_photon(
                i,
                px,
                py,
                pz,
                dx,
                dy,
                dz,
                t0,
                wl,
                wl_dependent,
                n_group_const,
                zb,
                be400,
                ad400,
                dtau,
                inv_1mg,
                s0,
                s1,
                s2,
                s3,
            )
            while True:
                if tilt_on:
                    zeff = z - tilt_shift(x, y, z, tcx, tsy, tr0, tlr, tz0, tinv, ttab)
                else:
                    zeff = z
                layer = _locate(zb, zeff, layer)
                adir = 1.0
                if ani_on:
                    n1 = (ax * ux + ay * uy) * k1
                    n2 = (-ay * ux + ax * uy) * k2
                    n3 = uz * kz
                    adir = 1.0 / math.sqrt(n1 * n1 + n2 * n2 + n3 * n3)
                tau_s, s0, s1, s2, s3 = _optical_depth(s0, s1, s2, s3)
                s, absorbed, tau_a, layer_end = _step_length_ice(
                    zeff,
                    uz,
                    layer,
                    tau_a,
                    tau_s,
                    nl,
                    zb,
                    be400,
                    ad400,
                    dtau,
                    badd,
                    fb,
                    fa,
                    ft,
                    inv_1mg,
                    adir,
                )
                escaped = False
                if s > _MAX_STEP_M:
                    s = _MAX_STEP_M
                    escaped = True
                if use_grid:
                    if (lo[0] < x < hi[0]) and (lo[1] < y < hi[1]) and (lo[2] < z < hi[2]):
                        jx = min(int((x - lo[0]) * inv_mcell), mdims[0] - 1)
                        jy = min(int((y - lo[1]) * inv_mcell), mdims[1] - 1)
                        jz = min(int((z - lo[2]) * inv_mcell), mdims[2] - 1)
                        clear = s < smap[(jz * mdims[1] + jy) * mdims[0] + jx]
                    else:
                        ex = max(lo[0] - x, x - hi[0], 0.0)
                        ey = max(lo[1] - y, y - hi[1], 0.0)
                        ez = max(lo[2] - z, z - hi[2], 0.0)
                        clear = s * s < ex * ex + ey * ey + ez * ez
                if use_grid and clear:
                    d = _INF
                    m = -1
                elif use_grid:
                    d, m = _grid_hit(
                        x, y, z, ux, uy, uz, s, mods, r2, lo, hi, cell, dims, cstart, items
                    )
                else:
                    d, m = _naive_hit(x, y, z, ux, uy, uz, s, mods, r2)
                if m >= 0:
                    w = w0[i]
                    if n_ang > 0:
                        acc = acceptance_polynomial(ang_coeffs, uz)
                        if accept_by_weight:
                            w *= max(acc, 0.0)
                        else:
                            s0, s1, s2, s3, u1 = _next(s0, s1, s2, s3)
                            if u1 > acc:
                                break
                    out_mod[i] = m
                    out_t[i] = t + d * inv_v
                    out_w[i] = w
                    out_hx[i] = x + d * ux
                    out_hy[i] = y + d * uy
                    out_hz[i] = z + d * uz
                    break
                if absorbed or escaped:
                    break
                ia = 0.0
                ib = 0.0
                if bfr_on:
                    ia, ib = _layer_path_integrals(zeff, uz, s, layer, zb, ra, rb)
                x += s * ux
                y += s * uy
                z += s * uz
                t += s * inv_v
                if bfr_on:
                    x, y, z, ux, uy, uz, s0, s1, s2, s3 = birefringence_step(
                        x, y, z, ux, uy, uz, s, ia, ib, ax, ay, btab, s0, s1, s2, s3
                    )
                layer = layer_end
                if scat_on:
                    q1 = sk1[layer]
                    q2 = sk2[layer]
                    ux, uy, uz = _tilt_rotate(ux, uy, uz, ax, ay, q1, q2, 1.0 / (q1 * q2))
                    ux, uy, uz, s0, s1, s2, s3 = scatter_direction(
                        ux, uy, uz, g, sl_fraction, s0, s1, s2, s3
                    )
                    ux, uy, uz = _tilt_rotate(ux, uy, uz, ax, ay, 1.0 / q1, 1.0 / q2, q1 * q2)
                else:
                    ux, uy, uz, s0, s1, s2, s3 = scatter_direction(
                        ux, uy, uz, g, sl_fraction, s0, s1, s2, s3
                    )
