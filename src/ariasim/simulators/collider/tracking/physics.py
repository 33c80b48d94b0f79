"""Material effects of the tracker: multiple scattering, ionisation, pair production.

The formulas the propagation (:mod:`.propagation`) and the track fit (:mod:`.fit`) share:
the Highland width of the projected multiple-scattering angle, the mean Bethe-Bloch ionisation loss
with the high-energy density effect, the
electron energy fraction of a photon conversion, and the constants they use.

References:
    V. L. Highland, NIM 129 (1975) 497; G. R. Lynch and O. I. Dahl, NIM B 58 (1991) 6.
    H. Bethe and W. Heitler, Proc. R. Soc. A 146 (1934) 83 (bremsstrahlung, pair production).
    Particle Data Group, "Passage of particles through matter" (Bethe-Bloch, Highland,
    7/9 X0 pair-production length).

Arguments:
    See :func:`highland_theta0`, :func:`bethe_bloch_dedx`, :func:`sample_pair_fraction`.
"""

from __future__ import annotations

import numpy as np

from ariasim.simulators.collider.detector import MATERIALS

__all__ = [
    "C_LIGHT",
    "M_E_GEV",
    "bethe_bloch_dedx",
    "highland_theta0",
    "sample_pair_fraction",
]

#: GeV per (T m e): pT [GeV] = C_LIGHT * B [T] * R [m] for unit charge.
C_LIGHT = 0.299792458
#: Electron mass [GeV].
M_E_GEV = 0.51099895e-3
_PLASMA_EV = {"silicon": 31.05, "beryllium": 26.10, "carbon": 30.28, "aluminium": 32.86}


def highland_theta0(
    p_gev: np.ndarray, beta: np.ndarray, x_over_x0: np.ndarray, charge: np.ndarray | float = 1.0
) -> np.ndarray:
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


def bethe_bloch_dedx(
    beta_gamma: np.ndarray,
    mass_gev: np.ndarray,
    material: str = "silicon",
    charge: np.ndarray | float = 1.0,
) -> np.ndarray:
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


def sample_pair_fraction(rng: np.random.Generator, n: int) -> np.ndarray:
    """Energy fraction of the electron in a conversion: dsigma/dx ~ 1 - 4/3 x(1-x).

    The complete-screening Bethe-Heitler spectrum, sampled by acceptance-rejection.

    Arguments:
        rng: Random generator.
        n: Number of conversions.
    """
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        x = rng.random(todo.size)
        acc = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * x * (1.0 - x)
        out[todo[acc]] = x[acc]
        todo = todo[~acc]
    return out
