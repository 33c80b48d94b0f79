"""Muon bundles at the surface from the Elbert yield per nucleus.

The mean number of muons above ``E_mu`` from a nucleus of mass ``A`` and total energy
``E0`` at zenith ``θ`` (Elbert's formula, in Gaisser's book):

    N(>E_mu) = A K / (E_mu cos θ*) (E0 / (A E_mu))^α1 (1 - A E_mu / E0)^α2,

``K = 14.5 GeV``, ``α1 = 0.757``, ``α2 = 5.25``, zero for ``A E_mu >= E0``. ``cos θ*`` is the
effective cosine of a curved atmosphere (Chirkin's parametrisation), close to ``cos θ``
below 70 degrees. The multiplicity above the threshold ``E_thr`` needed to reach the
detector is Poisson with mean ``N(>E_thr)``; the energies are drawn by the inverse of the
CDF ``1 - N(>E)/N(>E_thr)`` (bisection in log x, ``x = A E / E0``), and each muon gets a
small lateral offset ``r = p_T h / (E cos θ*)`` from the axis (transverse momentum
``p_T`` ~ Gamma(2, 0.2 GeV), production height ``h = 15 km``, uniform azimuth).

References:
    J. W. Elbert, in Proc. DUMAND Summer Workshop 1978, vol. 2, p. 101 (1979).
    T. K. Gaisser, "Cosmic Rays and Particle Physics", Cambridge University Press (1990),
    the Elbert formula for muon multiplicities in air showers.
    D. Chirkin, "Fluxes of atmospheric leptons at 600 GeV - 60 TeV", hep-ph/0407078
    (effective cos θ* of a curved atmosphere).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ariasim.errors import ConfigError

__all__ = ["ElbertYield", "effective_cos_zenith"]

_CHIRKIN_P = (0.102573, -0.068287, 0.958633, 0.0407253, 0.817285)


def effective_cos_zenith(cos_zenith: np.ndarray) -> np.ndarray:
    """Effective cos θ* of a curved atmosphere (Chirkin, hep-ph/0407078).

    Example:
        >>> round(float(effective_cos_zenith(1.0)), 6), bool(effective_cos_zenith(0.0) > 0.05)
        (1.0, True)
    """
    p1, p2, p3, p4, p5 = _CHIRKIN_P
    c = np.clip(np.asarray(cos_zenith, dtype=float), 0.0, 1.0)
    num = c * c + p1 * p1 + p2 * c**p3 + p4 * c**p5
    return np.sqrt(num / (1.0 + p1 * p1 + p2 + p4))


@dataclass(frozen=True)
class ElbertYield:
    """Elbert muon yield and bundle sampler (see the module docstring).

    Arguments:
        k_gev: Normalisation K [GeV].
        alpha1: Exponent of ``E0 / (A E_mu)``.
        alpha2: Exponent of ``1 - A E_mu / E0``.
        pt_gev: Scale of the transverse-momentum distribution Gamma(2, pt_gev).
        height_m: Production height of the muons (vertical) [m].

    Example:
        >>> y = ElbertYield()
        >>> round(float(y.mean_number(500.0, 1e5, 1, 1.0)), 3)  # muons > 500 GeV, 100 TeV p
        1.559
    """

    k_gev: float = 14.5
    alpha1: float = 0.757
    alpha2: float = 5.25
    pt_gev: float = 0.2
    height_m: float = 15000.0

    def __post_init__(self) -> None:
        for name in ("k_gev", "alpha1", "alpha2", "pt_gev", "height_m"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"must be > 0, got {getattr(self, name)!r}", parameter=name)
        if self.alpha1 >= 1.0:
            raise ConfigError(
                f"must be < 1 (a falling spectrum), got {self.alpha1}", parameter="alpha1"
            )

    def mean_number(
        self, e_mu_gev: np.ndarray, e0_gev: np.ndarray, mass: np.ndarray, cos_zenith: np.ndarray
    ) -> np.ndarray:
        """Mean number of muons above ``e_mu_gev`` (Elbert, with the effective cos θ*)."""
        e_mu = np.asarray(e_mu_gev, dtype=float)
        e0 = np.asarray(e0_gev, dtype=float)
        a = np.asarray(mass, dtype=float)
        x = a * e_mu / e0
        cs = effective_cos_zenith(cos_zenith)
        with np.errstate(divide="ignore", invalid="ignore"):
            n = (
                a
                * self.k_gev
                / (e_mu * cs)
                * x ** (-self.alpha1)
                * np.clip(1.0 - x, 0.0, None) ** self.alpha2
            )
        return np.where((x > 0) & (x < 1), n, 0.0)

    def _log_h(self, x: np.ndarray) -> np.ndarray:
        """log of ``N(>E)`` up to a constant, in x = A E / E0: (-1 - α1) ln x + α2 ln(1 - x)."""
        return (-1.0 - self.alpha1) * np.log(x) + self.alpha2 * np.log1p(-x)

    def sample_energies(
        self, e_thr_gev: np.ndarray, e0_gev: np.ndarray, mass: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        """Muon energies above ``e_thr_gev`` by the inverse CDF at uniforms ``u`` (one muon each).

        Solves ``N(>E) = (1 - u) N(>E_thr)`` by bisection in ``log x`` (60 steps: relative
        precision far below 1e-9).
        """
        a = np.asarray(mass, dtype=float)
        e0 = np.asarray(e0_gev, dtype=float)
        x_thr = a * np.asarray(e_thr_gev, dtype=float) / e0
        target = self._log_h(x_thr) + np.log1p(-np.asarray(u, dtype=float))
        lo = np.log(x_thr)
        hi = np.zeros_like(lo)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = self._log_h(np.exp(mid)) > target  # N(>E_mid) still too large
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        return np.exp(0.5 * (lo + hi)) * e0 / a

    def sample(
        self,
        e_thr_gev: np.ndarray,
        e0_gev: np.ndarray,
        mass: np.ndarray,
        cos_zenith: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw the bundles of a set of events.

        Arguments:
            e_thr_gev: Threshold energy of each event [GeV].
            e0_gev: Primary energies.
            mass: Mass numbers.
            cos_zenith: cos(zenith) of each event.
            rng: Random generator.

        Returns:
            ``(n_mu, energy_gev, off_1, off_2)``: muons per event, then per muon (events in
            order) the energy and the lateral offset [m] along two axes perpendicular to
            the shower axis.
        """
        mean = self.mean_number(e_thr_gev, e0_gev, mass, cos_zenith)
        n_mu = rng.poisson(mean).astype(np.int64)
        ev = np.repeat(np.arange(n_mu.size), n_mu)
        u = rng.random(ev.size)
        e0 = np.asarray(e0_gev, dtype=float)[ev]
        a = np.asarray(mass, dtype=float)[ev]
        energy = self.sample_energies(np.asarray(e_thr_gev, dtype=float)[ev], e0, a, u)
        pt = rng.gamma(2.0, self.pt_gev, ev.size)
        cs = effective_cos_zenith(np.asarray(cos_zenith, dtype=float)[ev])
        r = pt * self.height_m / (energy * cs)
        phi = 2.0 * math.pi * rng.random(ev.size)
        return n_mu, energy, r * np.cos(phi), r * np.sin(phi)

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "k_gev": self.k_gev,
            "alpha1": self.alpha1,
            "alpha2": self.alpha2,
            "pt_gev": self.pt_gev,
            "height_m": self.height_m,
        }
