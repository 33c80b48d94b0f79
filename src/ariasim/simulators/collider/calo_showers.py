"""Numba kernels of the calorimeter simulation: EM and hadronic showers, muons, cell response.

Every stochastic element is a simulated process; none of the resolution formulas that the
surrogates are meant to learn appears here:

* EM showers (e+-, gamma): Grindhammer-Peters (GP) longitudinal Gamma profile whose parameters
  (ln T, ln alpha) are drawn per shower from the correlated Gaussian of the paper (homogeneous
  or sampling-medium version), energy deposited in longitudinal steps as a fluctuating number
  of energy spots (GP spot profile), each spot placed laterally with the GP core + tail radial
  profile (Moliere units). Photons first convert after an exponential depth of mean 9/7 X0.
  Energy beyond the calorimeter depth leaks out.
* Hadron showers (Bock et al. / Gabriel et al.): first interaction depth exponential in lambda_I
  across ECAL then HCAL, a Beta-distributed EM fraction with mean 1 - (E/E0)^(k-1), EM spots
  with a Gamma profile in X0, non-EM spots with a Gamma profile in lambda_I, non-EM energy
  seen with response h/e, broader lateral profile, leakage beyond the HCAL.
* Muons and charged hadrons before their first interaction: ionisation with Landau-like (Moyal)
  fluctuations, dE/dx x path.
* Cell response: homogeneous media count Poisson photoelectrons (with the avalanche excess
  noise factor); sampling media count a Poisson number of charged-track crossings of the active
  layers, each crossing depositing min(dE/dx d / cos(theta), K) with cos(theta) of isotropic
  soft shower electrons and K their exponential residual energy (Amaldi 1981, Fabjan-Gianotti
  2003). The familiar sigma/E ~ 2.7 % sqrt(d[mm]/f_samp)/sqrt(E) emerges from this process.

References:
    G. Grindhammer, M. Rudowicz, S. Peters, NIM A 290 (1990) 469;
    G. Grindhammer, S. Peters, hep-ex/0001020 (parameters also used by Geant4 GFlash).
    R.K. Bock, T. Hansl-Kozanecka, T.P. Shah, NIM 186 (1981) 533 (hadronic profile).
    T.A. Gabriel et al., NIM A 338 (1994) 336 (EM fraction of hadron showers).
    U. Amaldi, Phys. Scripta 23 (1981) 409 (sampling fluctuations, track crossings).
    R. Wigmans, Calorimetry, 2nd ed., OUP (2017) (e/h, sampling fluctuations).
    Particle Data Group, Review of Particle Physics, "Passage of particles through matter".
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "KIND_ELECTRON",
    "KIND_HADRON",
    "KIND_MUON",
    "KIND_NONE",
    "KIND_PHOTON",
    "N_PARAMS",
    "STEP_X0",
    "em_profiles",
    "gamma_cdf",
    "simulate_particles",
]

# ---------------------------------------------------------------------------- particle kinds
KIND_NONE = 0
KIND_ELECTRON = 1
KIND_PHOTON = 2
KIND_MUON = 3
KIND_HADRON = 4

# --------------------------------------------------- calorimeter parameter vector layout
# Both calorimeters are described by one float64 vector with this layout (built in
# calorimeter.py from ECALConfig / HCALConfig), so the kernels take two arrays.
P_SAMPLING = 0  # 0 homogeneous, 1 sampling
P_R_INNER_CM = 1
P_Z_ENDCAP_CM = 2
P_ETA_MAX = 3
P_DETA = 4
P_DPHI = 5
P_NETA = 6
P_NPHI = 7
P_X0_CM = 8
P_RM_CM = 9
P_EC_GEV = 10
P_Z = 11
P_LAMBDA_CM = 12
P_DEPTH_CM = 13
P_E_OVER_H = 14
P_DEDX_GEV_PER_CM = 15
P_XI_GEV_PER_CM = 16  # Landau width parameter per cm (0.1535 MeV Z/A rho)
P_FSAMP = 17
P_LAYER_X0 = 18  # 1/F_S: thickness of one active+passive layer in X0
P_EHAT = 19
P_PE_PER_GEV = 20
P_ENF = 21
P_XMEAN_GEV = 22  # mean visible deposit per active-layer crossing
P_X2MEAN_GEV2 = 23  # second moment of that deposit
P_SPOT_SCALE = 24
P_HAD_CROSS = 25  # non-EM crossings deposit this factor more (slow protons)
P_HAD_SPOTS_PER_GEV = 26
P_FEM_K = 27
P_FEM_E0 = 28
P_FEM_CONC = 29
P_WMAX = 30
N_PARAMS = 31

# GP constants (homogeneous media, hep-ex/0001020 / Geant4 GFlash tuning)
_GP_LNT_T1 = -0.812
_GP_LNA_A1 = 0.81
_GP_LNA_A2 = 0.458
_GP_LNA_A3 = 2.26
_GP_SLNT = (-1.4, 1.26)
_GP_SLNA = (-0.58, 0.86)
_GP_RHO = (0.705, -0.023)
# sampling media
_GPS_T1 = -0.55
_GPS_T2 = -0.69
_GPS_A1 = -0.476
_GPS_SLNT = (-2.5, 1.25)
_GPS_SLNA = (-0.82, 0.79)
_GPS_RHO = (0.784, -0.023)
# lateral truncation radii
_EM_RMAX_RM = 5.0  # GP spots are drawn from the radial profile truncated at 5 R_M
_HAD_RMAX_LAMBDA = 1.5  # hadronic spots truncated at 1.5 lambda_I (> 99 % contained)
_EM_CORE_R0_RM = 1.0 / 3.89  # 2D-exponential scale giving 90 % within one R_M
_HAD_R0_LAMBDA = 1.0 / 4.74  # 2D-exponential scale giving 95 % within one lambda_I
_STEP_X0 = 0.5  # longitudinal step of EM showers in X0
STEP_X0 = _STEP_X0
_MOYAL_MEAN = 0.5772156649015329 + math.log(2.0)


@numba.njit(cache=True)
def gamma_cdf(a: float, x: float) -> float:
    """Regularised lower incomplete gamma function P(a, x) (series / continued fraction).

    References:
        Press et al., Numerical Recipes, 3rd ed., section 6.2.

    Arguments:
        a: Shape parameter (> 0).
        x: Argument (>= 0).
    """
    if x <= 0.0:
        return 0.0
    gln = math.lgamma(a)
    if x < a + 1.0:
        ap = a
        s = 1.0 / a
        d = s
        for _ in range(500):
            ap += 1.0
            d *= x / ap
            s += d
            if abs(d) < abs(s) * 1e-12:
                break
        return s * math.exp(-x + a * math.log(x) - gln)
    b = x + 1.0 - a
    c = 1.0 / 1e-300
    d = 1.0 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < 1e-300:
            d = 1e-300
        c = b + an / c
        if abs(c) < 1e-300:
            c = 1e-300
        d = 1.0 / d
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-12:
            break
    return 1.0 - math.exp(-x + a * math.log(x) - gln) * h


@numba.njit(cache=True)
def _moyal(rng: np.random.Generator) -> float:
    """A standard Moyal variate (-ln Z^2 with Z standard normal): Landau-like energy loss."""
    z = rng.standard_normal()
    z2 = max(z * z, 1e-300)
    return -math.log(z2)


@numba.njit(cache=True)
def _ionisation_gev(path_cm: float, p: np.ndarray, e_max: float, rng: np.random.Generator) -> float:
    """Energy lost by a minimum-ionising particle over ``path_cm`` with Moyal fluctuations."""
    if path_cm <= 0.0:
        return 0.0
    mean = p[P_DEDX_GEV_PER_CM] * path_cm
    xi = p[P_XI_GEV_PER_CM] * path_cm
    de = mean + xi * (_moyal(rng) - _MOYAL_MEAN)
    return min(max(de, 0.0), e_max)


@numba.njit(cache=True)
def _measure(e_em: float, e_had: float, p: np.ndarray, rng: np.random.Generator) -> float:
    """Signal of one cell at the EM scale (GeV) for true EM and non-EM energy deposits.

    The non-EM energy is seen with response h/e.  Homogeneous media: Poisson photoelectrons
    with an excess noise factor.  Sampling media: a Poisson number of active-layer crossings,
    each depositing a random energy with the precomputed first two moments (the sum of many
    crossings is taken Gaussian given their number), then photoelectrons if configured.
    """
    light = e_em + e_had / p[P_E_OVER_H]
    if light <= 0.0:
        return 0.0
    sig = light
    if p[P_SAMPLING] > 0.5:
        f = p[P_FSAMP]
        xm = p[P_XMEAN_GEV]
        var1 = max(p[P_X2MEAN_GEV2] - xm * xm, 0.0)
        vis = 0.0
        # EM part: crossings by shower electrons
        if e_em > 0.0:
            n = rng.poisson(f * e_em / xm)
            if n > 0:
                vis += n * xm + math.sqrt(n * var1) * rng.standard_normal()
        # non-EM part: fewer crossings by densely ionising particles
        if e_had > 0.0:
            g = p[P_HAD_CROSS]
            n = rng.poisson(f * e_had / p[P_E_OVER_H] / (g * xm))
            if n > 0:
                vis += g * (n * xm + math.sqrt(n * var1) * rng.standard_normal())
        sig = max(vis, 0.0) / f
    pe = p[P_PE_PER_GEV]
    if pe > 0.0 and sig > 0.0:
        npe = rng.poisson(pe * sig)
        enf = p[P_ENF]
        x = float(npe)
        if enf > 1.0 and npe > 0:
            x += math.sqrt((enf - 1.0) * npe) * rng.standard_normal()
        sig = max(x, 0.0) / pe
    return sig


@numba.njit(cache=True)
def _rho_face_cm(eta: float, p: np.ndarray) -> float:
    """Transverse radius of the calorimeter front face along direction eta (barrel or endcap)."""
    sh = abs(math.sinh(eta))
    if sh * p[P_R_INNER_CM] > p[P_Z_ENDCAP_CM]:
        return p[P_Z_ENDCAP_CM] / sh
    return p[P_R_INNER_CM]


@numba.njit(cache=True)
def _window(eta: float, p: np.ndarray, rmax_cm: float) -> int:
    """Half-width in cells of the local window that holds a shower of radius ``rmax_cm``."""
    cell_cm = min(p[P_DETA], p[P_DPHI]) * _rho_face_cm(eta, p)
    w = math.ceil(rmax_cm / cell_cm) + 1
    return min(w, int(p[P_WMAX]))


@numba.njit(cache=True)
def _deposit(
    loc: np.ndarray,
    w: int,
    feta0: float,
    fphi0: float,
    rho_cm: float,
    dx_cm: float,
    dy_cm: float,
    e: float,
    p: np.ndarray,
) -> None:
    """Add energy ``e`` at transverse offset (dx, dy) cm to the local window ``loc``.

    ``feta0``/``fphi0`` are the impact position in fractional cell units relative to the
    window centre cell; in a projective geometry d(eta) = dy/rho and d(phi) = dx/rho.
    """
    n = 2 * w + 1
    li = math.floor(feta0 + dy_cm / (rho_cm * p[P_DETA])) + w
    lj = math.floor(fphi0 + dx_cm / (rho_cm * p[P_DPHI])) + w
    li = min(max(li, 0), n - 1)
    lj = min(max(lj, 0), n - 1)
    loc[li * n + lj] += e


@numba.njit(cache=True)
def _em_shower(
    e_gev: float,
    photon: bool,
    eta: float,
    p: np.ndarray,
    loc: np.ndarray,
    w: int,
    feta0: float,
    fphi0: float,
    rng: np.random.Generator,
    prof: np.ndarray,
) -> float:
    """Simulate one EM shower with the GP parametrisation; returns the leaked energy (GeV).

    If ``prof`` is non-empty, the true energy of every longitudinal step is also added to
    ``prof[int(t_mid / 0.5 X0)]`` (for validation of the longitudinal profile).
    """
    nprof = prof.shape[0]
    x0 = p[P_X0_CM]
    rm = p[P_RM_CM]
    z = p[P_Z]
    depth_x0 = p[P_DEPTH_CM] / x0
    sin_theta = 1.0 / math.cosh(eta)
    rho0 = _rho_face_cm(eta, p)
    t0 = 0.0
    if photon:
        t0 = rng.exponential(9.0 / 7.0)
        if t0 >= depth_x0:
            return e_gev
    y = e_gev / p[P_EC_GEV]
    if y < 3.0:
        # too soft to shower (a few critical energies): local deposit at the conversion point
        s = (t0 + 0.5) * x0
        _deposit(loc, w, feta0, fphi0, rho0 + s * sin_theta, 0.0, 0.0, e_gev, p)
        ib = int((t0 + 0.5) / _STEP_X0)
        if ib < nprof:
            prof[ib] += e_gev
        return 0.0
    lny = math.log(y)
    mean_lnt = math.log(max(lny + _GP_LNT_T1, 0.1))
    mean_lna = math.log(max(_GP_LNA_A1 + (_GP_LNA_A2 + _GP_LNA_A3 / z) * lny, 0.1))
    sig_lnt = min(0.5, 1.0 / max(_GP_SLNT[0] + _GP_SLNT[1] * lny, 1e-3))
    sig_lna = min(0.5, 1.0 / max(_GP_SLNA[0] + _GP_SLNA[1] * lny, 1e-3))
    rho = _GP_RHO[0] + _GP_RHO[1] * lny
    sampling = p[P_SAMPLING] > 0.5
    ehat = p[P_EHAT]
    layer_x0 = p[P_LAYER_X0]
    if sampling:
        mean_lnt = math.log(
            max(math.exp(mean_lnt) + _GPS_T1 * layer_x0 + _GPS_T2 * (1.0 - ehat), 0.1)
        )
        mean_lna = math.log(max(math.exp(mean_lna) + _GPS_A1 * layer_x0, 0.1))
        sig_lnt = min(0.5, 1.0 / max(_GPS_SLNT[0] + _GPS_SLNT[1] * lny, 1e-3))
        sig_lna = min(0.5, 1.0 / max(_GPS_SLNA[0] + _GPS_SLNA[1] * lny, 1e-3))
        rho = _GPS_RHO[0] + _GPS_RHO[1] * lny
    rho = min(max(rho, -0.99), 0.99)
    c1 = math.sqrt((1.0 + rho) / 2.0)
    c2 = math.sqrt((1.0 - rho) / 2.0)
    g1 = rng.standard_normal()
    g2 = rng.standard_normal()
    tmax = max(math.exp(mean_lnt + sig_lnt * (c1 * g1 + c2 * g2)), 0.1)
    alpha = max(math.exp(mean_lna + sig_lna * (c1 * g1 - c2 * g2)), 1.1)
    beta = (alpha - 1.0) / tmax
    abar = math.exp(mean_lna)
    tau_scale = beta / alpha * abar / max(abar - 1.0, 0.1)  # tau = t * tau_scale
    # spot profile and number of spots
    if sampling:
        t_sp = tmax * (0.813 + 0.0019 * z)
        a_sp = alpha * (0.844 + 0.0026 * z)
    else:
        t_sp = tmax * (0.698 + 0.00212 * z)
        a_sp = alpha * (0.639 + 0.00334 * z)
    t_sp = max(t_sp, 0.5)
    a_sp = max(a_sp, 1.05)
    b_sp = (a_sp - 1.0) / t_sp
    n_spot_total = p[P_SPOT_SCALE] * 93.0 * math.log(z) * e_gev**0.876
    # lateral parameters that depend only on E and Z
    lne = math.log(e_gev)
    z1 = 0.0251 + 0.00319 * lne
    z2 = 0.1162 - 0.000381 * z
    k1 = 0.659 - 0.00309 * z
    k4 = 0.3585 + 0.0412 * lne
    p1 = 2.632 - 0.00094 * z
    p2 = 0.401 + 0.00187 * z
    p3 = 1.313 - 0.0686 * lne
    rmax2 = _EM_RMAX_RM * _EM_RMAX_RM
    nw = 2 * w + 1
    # longitudinal steps from the shower start to the back of the calorimeter
    t = t0
    cdf_e = 0.0
    cdf_s = 0.0
    while t < depth_x0:
        t_next = min(t + _STEP_X0, depth_x0)
        ce = gamma_cdf(alpha, beta * (t_next - t0))
        cs = gamma_cdf(a_sp, b_sp * (t_next - t0))
        de = e_gev * (ce - cdf_e)
        dn = n_spot_total * (cs - cdf_s)
        cdf_e = ce
        cdf_s = cs
        tm = 0.5 * (t + t_next)
        t = t_next
        if de <= 1e-9 * e_gev:
            continue
        ib = int(tm / _STEP_X0)
        if ib < nprof:
            prof[ib] += de
        nsp = rng.poisson(dn) if dn > 0.0 else 0
        if nsp < 1:
            nsp = 1
        esp = de / nsp
        tau = (tm - t0) * tau_scale
        r_c = z1 + z2 * tau
        r_t = k1 * (math.exp(-2.59 * (tau - 0.645)) + math.exp(k4 * (tau - 0.645)))
        pc = p1 * math.exp((p2 - tau) / p3 - math.exp((p2 - tau) / p3))
        if sampling:
            r_c += -0.0203 * (1.0 - ehat) + 0.0397 * layer_x0 * math.exp(-tau)
            r_t += -0.14 * (1.0 - ehat) - 0.495 * layer_x0 * math.exp(-tau)
            pc += (1.0 - ehat) * (0.348 - 0.642 * layer_x0 * math.exp(-((tau - 1.0) ** 2)))
        r_c = max(r_c, 0.005)
        r_t = max(r_t, 0.01)
        pc = min(max(pc, 0.0), 1.0)
        fmax_c = rmax2 / (rmax2 + r_c * r_c)
        fmax_t = rmax2 / (rmax2 + r_t * r_t)
        rho_cm = rho0 + tm * x0 * sin_theta
        # spot loop (hot): offsets in cell units, angle by rejection (no trigonometry)
        se = 1.0 / (rho_cm * p[P_DETA])
        sp = 1.0 / (rho_cm * p[P_DPHI])
        rc_e = rm * r_c * se
        rc_p = rm * r_c * sp
        rt_e = rm * r_t * se
        rt_p = rm * r_t * sp
        for _ in range(nsp):
            if rng.random() < pc:
                uu = rng.random() * fmax_c
                fr = math.sqrt(uu / (1.0 - uu))
                ae = rc_e * fr
                ap = rc_p * fr
            else:
                uu = rng.random() * fmax_t
                fr = math.sqrt(uu / (1.0 - uu))
                ae = rt_e * fr
                ap = rt_p * fr
            while True:
                cx = 2.0 * rng.random() - 1.0
                cy = 2.0 * rng.random() - 1.0
                q = cx * cx + cy * cy
                if 0.0 < q <= 1.0:
                    break
            inv = 1.0 / math.sqrt(q)
            li = math.floor(feta0 + ae * cy * inv) + w
            lj = math.floor(fphi0 + ap * cx * inv) + w
            li = min(max(li, 0), nw - 1)
            lj = min(max(lj, 0), nw - 1)
            loc[li * nw + lj] += esp
    return e_gev * (1.0 - cdf_e)


@numba.njit(cache=True)
def _lateral_exp2d(r0: float, rmax: float, rng: np.random.Generator) -> float:
    """Radius from the 2D-exponential profile r exp(-r/r0) truncated at ``rmax``."""
    for _ in range(100):
        r = -r0 * math.log(max(rng.random() * rng.random(), 1e-300))
        if r < rmax:
            return r
    return rmax


@numba.njit(cache=True)
def _unit_vector(rng: np.random.Generator) -> tuple[float, float]:
    """Uniformly oriented 2D unit vector by rejection from the square (no trigonometry)."""
    while True:
        cx = 2.0 * rng.random() - 1.0
        cy = 2.0 * rng.random() - 1.0
        q = cx * cx + cy * cy
        if 0.0 < q <= 1.0:
            inv = 1.0 / math.sqrt(q)
            return cx * inv, cy * inv


@numba.njit(cache=True)
def _flush(
    loc: np.ndarray,
    w: int,
    ieta0: int,
    iphi0: int,
    p: np.ndarray,
    ipart: int,
    calo: int,
    is_had: bool,
    loc_had: np.ndarray,
    rng: np.random.Generator,
    o_part: np.ndarray,
    o_calo: np.ndarray,
    o_ieta: np.ndarray,
    o_iphi: np.ndarray,
    o_true: np.ndarray,
    o_meas: np.ndarray,
    k: int,
    sums: np.ndarray,
) -> int:
    """Write non-empty window cells (with their measured signal) to the output; zero them."""
    n = 2 * w + 1
    neta = int(p[P_NETA])
    nphi = int(p[P_NPHI])
    for li in range(n):
        ie = ieta0 + li - w
        for lj in range(n):
            idx = li * n + lj
            e_em = loc[idx]
            e_h = loc_had[idx] if is_had else 0.0
            if e_em == 0.0 and e_h == 0.0:
                continue
            loc[idx] = 0.0
            if is_had:
                loc_had[idx] = 0.0
            if ie < 0 or ie >= neta:
                continue  # beyond the eta edge of the calorimeter: not read out
            meas = _measure(e_em, e_h, p, rng)
            o_part[k] = ipart
            o_calo[k] = calo
            o_ieta[k] = ie
            o_iphi[k] = (iphi0 + lj - w) % nphi
            o_true[k] = e_em + e_h
            o_meas[k] = meas
            sums[0] += e_em + e_h
            sums[1] += meas
            k += 1
    return k


@numba.njit(cache=True)
def _cell_coords(eta: float, phi: float, p: np.ndarray) -> tuple[int, int, float, float]:
    """Impact cell (ieta, iphi) and fractional position inside it (centred at 0)."""
    fe = (eta + p[P_ETA_MAX]) / p[P_DETA]
    fp = (phi + math.pi) / p[P_DPHI]
    ie = math.floor(fe)
    ip = math.floor(fp)
    return ie, ip, fe - ie, fp - ip


@numba.njit(cache=True)
def simulate_particles(
    kind: np.ndarray,
    e_avail: np.ndarray,
    e_max: np.ndarray,
    charged: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    w_e: np.ndarray,
    w_h: np.ndarray,
    pe: np.ndarray,
    ph: np.ndarray,
    rng: np.random.Generator,
    o_part: np.ndarray,
    o_calo: np.ndarray,
    o_ieta: np.ndarray,
    o_iphi: np.ndarray,
    o_true: np.ndarray,
    o_meas: np.ndarray,
    dep: np.ndarray,
) -> int:
    """Simulate every particle; write (particle, calo, ieta, iphi, e_true, e_meas) entries.

    Arguments:
        kind: KIND_* code per particle.
        e_avail: Energy available to the shower (GeV): total energy for e/gamma/mesons, kinetic
            energy for baryons, total + mass for antibaryons.
        e_max: Energy a traversing particle can lose at most (its kinetic energy), GeV.
        charged: 1 if the particle ionises before its first interaction.
        eta, phi: Impact direction at the ECAL front face.
        w_e, w_h: Local window half-widths (cells) in ECAL and HCAL for each particle.
        pe, ph: ECAL and HCAL parameter vectors (layout P_*).
        rng: NumPy generator (its state advances).
        o_*: Output buffers, large enough for sum((2w_e+1)^2 + (2w_h+1)^2).
        dep: (n, 7) per-particle summary: e_true_ecal, e_true_hcal, e_leak, e_meas_ecal,
            e_meas_hcal, f_em, first-interaction depth in lambda_I (NaN if none).

    Returns:
        The number of entries written.
    """
    n = kind.shape[0]
    wmax = int(max(pe[P_WMAX], ph[P_WMAX]))
    size = (2 * wmax + 1) ** 2
    loc_e = np.zeros(size)
    loc_eh = np.zeros(size)
    loc_h = np.zeros(size)
    loc_hh = np.zeros(size)
    sums = np.zeros(2)
    noprof = np.zeros(0)
    k = 0
    le_lam = pe[P_DEPTH_CM] / pe[P_LAMBDA_CM]
    lh_lam = ph[P_DEPTH_CM] / ph[P_LAMBDA_CM]
    for i in range(n):
        for j in range(7):
            dep[i, j] = 0.0
        dep[i, 6] = np.nan
        kd = kind[i]
        if kd == KIND_NONE:
            continue
        e = e_avail[i]
        et = eta[i]
        sin_theta = 1.0 / math.cosh(et)
        ie0, ip0, fe0, fp0 = _cell_coords(et, phi[i], pe)
        ih0, jh0, fh0, gh0 = _cell_coords(et, phi[i], ph)
        we = w_e[i]
        wh = w_h[i]
        ne = 2 * we + 1
        nh = 2 * wh + 1
        leak = 0.0
        rho_e = _rho_face_cm(et, pe)
        rho_h = _rho_face_cm(et, ph)
        if kd == KIND_ELECTRON or kd == KIND_PHOTON:
            leak = _em_shower(e, kd == KIND_PHOTON, et, pe, loc_e, we, fe0, fp0, rng, noprof)
        elif kd == KIND_MUON:
            de_e = _ionisation_gev(pe[P_DEPTH_CM], pe, e_max[i], rng)
            de_h = _ionisation_gev(ph[P_DEPTH_CM], ph, max(e_max[i] - de_e, 0.0), rng)
            loc_e[we * ne + we] += de_e
            loc_h[wh * nh + wh] += de_h
        else:
            x1 = rng.exponential(1.0)
            dep[i, 6] = x1
            # ionisation of a charged hadron before its first interaction
            de_e = 0.0
            de_h = 0.0
            if charged[i] != 0:
                de_e = _ionisation_gev(min(x1, le_lam) * pe[P_LAMBDA_CM], pe, e, rng)
                if x1 > le_lam:
                    de_h = _ionisation_gev(
                        min(x1 - le_lam, lh_lam) * ph[P_LAMBDA_CM], ph, max(e - de_e, 0.0), rng
                    )
                loc_e[we * ne + we] += de_e
                loc_h[wh * nh + wh] += de_h
            e_sh = max(e - de_e - de_h, 0.0)
            if x1 >= le_lam + lh_lam:
                leak = e_sh  # punch-through
            elif e_sh > 0.0:
                # fluctuating EM fraction (Gabriel et al. 1994), Beta distributed
                m = 1.0 - (max(e_sh, 1e-3) / ph[P_FEM_E0]) ** (ph[P_FEM_K] - 1.0)
                m = min(max(m, 0.02), 0.98)
                conc = ph[P_FEM_CONC]
                fem = rng.beta(conc * m, conc * (1.0 - m))
                dep[i, 5] = fem
                # Bock et al. (1981) longitudinal parameters
                lne = math.log(max(e_sh, 0.05))
                a_sh = max(0.6165 + 0.3183 * lne, 0.3)
                b_em = 0.2198  # per X0
                d_h = max(0.9099 - 0.0237 * lne, 0.3)  # per lambda_I
                in_ecal = x1 < le_lam
                if in_ecal:
                    x0_over_lam = pe[P_X0_CM] / pe[P_LAMBDA_CM]
                else:
                    x0_over_lam = ph[P_X0_CM] / ph[P_LAMBDA_CM]
                nspot = max(10, int(ph[P_HAD_SPOTS_PER_GEV] * e_sh))
                n_em = round(nspot * fem)
                if fem > 0.0 and n_em < 1:
                    n_em = 1
                n_h = nspot - n_em
                if (1.0 - fem) > 0.0 and n_h < 1:
                    n_h = 1
                e_em_spot = fem * e_sh / max(n_em, 1)
                e_h_spot = (1.0 - fem) * e_sh / max(n_h, 1)
                for s in range(n_em + n_h):
                    is_em = s < n_em
                    if is_em:
                        dl = rng.gamma(a_sh, 1.0 / b_em) * x0_over_lam
                        es = e_em_spot
                    else:
                        dl = rng.gamma(a_sh, 1.0 / d_h)
                        es = e_h_spot
                    lam = x1 + dl
                    if lam < le_lam:
                        s_cm = lam * pe[P_LAMBDA_CM]
                        if is_em:
                            r = _lateral_exp2d(
                                _EM_CORE_R0_RM * pe[P_RM_CM], _EM_RMAX_RM * pe[P_RM_CM], rng
                            )
                        else:
                            r = _lateral_exp2d(
                                _HAD_R0_LAMBDA * pe[P_LAMBDA_CM],
                                _HAD_RMAX_LAMBDA * pe[P_LAMBDA_CM],
                                rng,
                            )
                        ux, uy = _unit_vector(rng)
                        _deposit(
                            loc_e if is_em else loc_eh,
                            we,
                            fe0,
                            fp0,
                            rho_e + s_cm * sin_theta,
                            r * ux,
                            r * uy,
                            es,
                            pe,
                        )
                    elif lam < le_lam + lh_lam:
                        s_cm = (lam - le_lam) * ph[P_LAMBDA_CM]
                        if is_em:
                            r = _lateral_exp2d(
                                _EM_CORE_R0_RM * ph[P_RM_CM], _EM_RMAX_RM * ph[P_RM_CM], rng
                            )
                        else:
                            r = _lateral_exp2d(
                                _HAD_R0_LAMBDA * ph[P_LAMBDA_CM],
                                _HAD_RMAX_LAMBDA * ph[P_LAMBDA_CM],
                                rng,
                            )
                        ux, uy = _unit_vector(rng)
                        _deposit(
                            loc_h if is_em else loc_hh,
                            wh,
                            fh0,
                            gh0,
                            rho_h + s_cm * sin_theta,
                            r * ux,
                            r * uy,
                            es,
                            ph,
                        )
                    else:
                        leak += es
        dep[i, 2] = leak
        sums[0] = 0.0
        sums[1] = 0.0
        k = _flush(
            loc_e,
            we,
            ie0,
            ip0,
            pe,
            i,
            0,
            True,
            loc_eh,
            rng,
            o_part,
            o_calo,
            o_ieta,
            o_iphi,
            o_true,
            o_meas,
            k,
            sums,
        )
        dep[i, 0] = sums[0]
        dep[i, 3] = sums[1]
        sums[0] = 0.0
        sums[1] = 0.0
        k = _flush(
            loc_h,
            wh,
            ih0,
            jh0,
            ph,
            i,
            1,
            True,
            loc_hh,
            rng,
            o_part,
            o_calo,
            o_ieta,
            o_iphi,
            o_true,
            o_meas,
            k,
            sums,
        )
        dep[i, 1] = sums[0]
        dep[i, 4] = sums[1]
    return k


@numba.njit(cache=True)
def em_profiles(
    e_gev: float, photon: bool, n: int, pe: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Longitudinal true-energy profiles of ``n`` EM showers (same code path as the simulation).

    Arguments:
        e_gev: Shower energy.
        photon: Photon (conversion point fluctuates) or electron.
        n: Number of showers.
        pe: ECAL parameter vector.
        rng: Generator.

    Returns:
        (profiles (n, n_bins) in GeV per 0.5 X0 bin of absolute depth, leaked energy (n,)).
    """
    nb = math.ceil(pe[P_DEPTH_CM] / pe[P_X0_CM] / _STEP_X0) + 1
    out = np.zeros((n, nb))
    leak = np.zeros(n)
    w = int(pe[P_WMAX])
    loc = np.zeros((2 * w + 1) ** 2)
    for i in range(n):
        leak[i] = _em_shower(e_gev, photon, 0.0, pe, loc, w, 0.5, 0.5, rng, out[i])
        loc[:] = 0.0
    return out, leak


@numba.njit(cache=True)
def window_halfwidths(
    kind: np.ndarray, eta: np.ndarray, pe: np.ndarray, ph: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Local window half-widths (cells) per particle in ECAL and HCAL."""
    n = kind.shape[0]
    we = np.zeros(n, dtype=np.int64)
    wh = np.zeros(n, dtype=np.int64)
    r_em_e = _EM_RMAX_RM * pe[P_RM_CM]
    r_had_e = max(_HAD_RMAX_LAMBDA * pe[P_LAMBDA_CM], r_em_e)
    r_had_h = max(_HAD_RMAX_LAMBDA * ph[P_LAMBDA_CM], _EM_RMAX_RM * ph[P_RM_CM])
    for i in range(n):
        kd = kind[i]
        if kd == KIND_ELECTRON or kd == KIND_PHOTON:
            we[i] = _window(eta[i], pe, r_em_e)
        elif kd == KIND_HADRON:
            we[i] = _window(eta[i], pe, r_had_e)
            wh[i] = _window(eta[i], ph, r_had_h)
    return we, wh
