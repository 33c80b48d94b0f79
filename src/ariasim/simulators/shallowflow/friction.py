"""Basal friction laws ``S(h, u, params)`` and their semi-implicit application.

A friction law returns the magnitude ``S >= 0`` (m^2/s^2, i.e. basal shear stress over
density) of the basal resistance for depth ``h`` (m) and basal speed ``u >= 0`` (m/s); it acts
against the motion: ``d(hu)/dt = ... - sgn(u) S(h, |u|)``. ``params`` is a mapping holding at
least ``"g"`` (gravity, m/s^2) and ``"cos_phi"`` (cosine of the local bed angle, an array
shaped like ``h``). ``S(h, 0)`` is the yield strength: a cell at rest stays at rest while the
driving force is below it.

The built-in :class:`FrictionLaw` is the sum of the classic admissible terms (every term is
dissipative, ``S u >= 0``, and the rate-dependent ones vanish at rest)::

    S = mu g h cos(phi)  +  tau  +  g u^2 / xi  +  nu u / h
        (Coulomb)          (yield)  (turbulent)    (viscous)

Voellmy friction is Coulomb + turbulent (Voellmy 1955; Salm 1993). Any other callable with
the same signature can be passed to the simulator (it is then evaluated with NumPy).

Semi-implicit update (the standard split, e.g. Mangeney-Castelnau et al. 2003): with ``m*``
the momentum after the frictionless step,
``|m| = max(|m*| - dt S(h, 0), 0) / (1 + dt (S(h, |u*|) - S(h, 0)) / |m*|)`` and the sign of
``m*`` is kept: friction can stop the flow but never reverses it, the yield part stops a
block exactly, and the rate-dependent part is linearly implicit (stable for any ``dt``).

References:
    A. Voellmy, "Ueber die Zerstoerungskraft von Lawinen", Schweiz. Bauzeitung 73 (1955).
    A. Mangeney-Castelnau et al., "Numerical modeling of avalanches based on Saint-Venant
    equations using a kinetic scheme", J. Geophys. Res. 108 (2003) 2527.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ariasim.errors import ConfigError

__all__ = [
    "FrictionCallable",
    "FrictionLaw",
    "apply_friction",
    "coulomb",
    "turbulent",
    "viscous",
    "voellmy",
]

FrictionCallable = Callable[[np.ndarray, np.ndarray, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class FrictionLaw:
    """Sum of Coulomb, yield, turbulent (Voellmy) and viscous basal friction terms.

    Arguments:
        mu: Coulomb friction coefficient (tan of the friction angle), >= 0.
        xi: Voellmy turbulence coefficient (m/s^2), > 0; ``inf`` switches the term off.
        nu: Viscous coefficient (m^2/s), >= 0 (``S = nu u / h``; ``3 nu`` for a
            Newtonian layer with a no-slip base and a parabolic profile).
        tau: Constant yield stress over density (m^2/s^2), >= 0.

    Calling it evaluates ``S(h, u, params)`` (see the module docstring). The simulator runs
    a built-in law through its compiled fast path.

    Example:
        >>> law = voellmy(mu=0.2, xi=500.0)
        >>> h, u = np.array([1.0]), np.array([10.0])
        >>> s = law(h, u, {"g": 9.81, "cos_phi": np.array([1.0])})
        >>> round(float(s[0]), 4)  # 0.2 * 9.81 * 1 + 9.81 * 100 / 500
        3.924
    """

    mu: float = 0.0
    xi: float = float("inf")
    nu: float = 0.0
    tau: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mu", "nu", "tau"):
            val = getattr(self, name)
            if not np.isfinite(val) or val < 0:
                raise ConfigError(f"must be finite and >= 0, got {val}", parameter=name)
        if not (self.xi > 0) or np.isnan(self.xi):
            raise ConfigError(f"must be > 0 (inf for none), got {self.xi}", parameter="xi")

    def coefficients(self) -> np.ndarray:
        """``[mu, 1/xi, nu, tau]`` as used by the compiled kernels."""
        return np.array([self.mu, 1.0 / self.xi, self.nu, self.tau], dtype=float)

    def __call__(self, h: np.ndarray, u: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        g = float(params["g"])
        cos_phi = params["cos_phi"]
        h = np.asarray(h, dtype=float)
        u = np.abs(np.asarray(u, dtype=float))
        s = self.mu * g * h * cos_phi + self.tau + g * u * u / self.xi
        if self.nu > 0:
            s = s + self.nu * u / np.maximum(h, 1e-300)
        return s


def coulomb(mu: float) -> FrictionLaw:
    """Coulomb friction ``S = mu g h cos(phi)``.

    >>> coulomb(0.5).mu
    0.5
    """
    return FrictionLaw(mu=mu)


def voellmy(mu: float, xi: float) -> FrictionLaw:
    """Voellmy friction ``S = mu g h cos(phi) + g u^2 / xi``.

    >>> voellmy(0.2, 1000.0).xi
    1000.0
    """
    return FrictionLaw(mu=mu, xi=xi)


def turbulent(xi: float) -> FrictionLaw:
    """Turbulent (Chezy-like) friction ``S = g u^2 / xi``.

    >>> turbulent(500.0).mu
    0.0
    """
    return FrictionLaw(xi=xi)


def viscous(nu: float) -> FrictionLaw:
    """Viscous friction ``S = nu u / h``.

    >>> viscous(0.1).nu
    0.1
    """
    return FrictionLaw(nu=nu)


def apply_friction(
    h: np.ndarray,
    hu: np.ndarray,
    dt: float,
    law: FrictionCallable,
    *,
    cos_phi: np.ndarray | float = 1.0,
    g: float = 9.81,
    h_dry: float = 0.0,
) -> np.ndarray:
    """The semi-implicit friction update of the momentum ``hu`` over a step ``dt``.

    Returns the new momentum: same sign as ``hu`` or zero, never larger in magnitude
    (for any ``dt``); cells with ``h <= h_dry`` get zero momentum.

    >>> new = apply_friction(np.array([1.0, 1.0]), np.array([0.3, -50.0]), 0.1, coulomb(0.5))
    >>> [round(float(v), 4) for v in new]  # 0.1 * 0.5 * 9.81 = 0.4905 removed at most
    [0.0, -49.5095]
    """
    h = np.asarray(h, dtype=float)
    hu = np.asarray(hu, dtype=float)
    cos_phi = np.broadcast_to(np.asarray(cos_phi, dtype=float), h.shape)
    params = {"g": g, "cos_phi": cos_phi}
    wet = h > h_dry
    u = np.where(wet, np.abs(hu) / np.where(wet, h, 1.0), 0.0)
    s0 = np.asarray(law(h, np.zeros_like(h), params), dtype=float)
    s1 = np.asarray(law(h, u, params), dtype=float)
    m = np.abs(hu)
    rate = np.maximum(s1 - s0, 0.0) / np.where(m > 0, m, 1.0)
    m_new = np.maximum(m - dt * s0, 0.0) / (1.0 + dt * rate)
    return np.where(wet, np.sign(hu) * m_new, 0.0)
