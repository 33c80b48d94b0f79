"""Cosmic-ray primaries: flux models from ``crflux``, generation surface and weights.

Events are generated per nucleus of the flux model's mass groups (chosen with equal
probability), with total energy ``E`` from a power law ``E^-gamma`` between
``A * e_min_per_nucleon_gev`` and ``e_max_gev`` (a nucleus must carry more than the muon
threshold per nucleon to make muons), arrival directions isotropic in ``cos(zenith)``
over ``[cos(zenith_max), 1]`` (down-going) and impact points uniform on a disc of radius
``radius_m`` perpendicular to the direction through the detector centre. The weight

    gen_weight = flux_i(E) * pi R^2 * Omega / (p_i * pdf_i(E))      [Hz]

(with ``gamma="flux"`` the nuclei and energies are drawn from the flux model itself, nucleus
``i`` with probability proportional to its rate and ``E`` from a piecewise power law
through the tabulated flux, so that every event has nearly the same weight, the total
rate: an unweighted sample, the natural brute-force baseline) makes
``sum(gen_weight) / n_generated`` an unbiased estimate of the rate [Hz] of the
events selected by any cut (the convention of :mod:`ariasim.active.pipeline`). The disc
perpendicular to each direction sees an isotropic flux with the same area for every
direction, as a sphere-like generation surface does (cf. ``simweights``).

References:
    T. K. Gaisser, "Spectrum of cosmic-ray nucleons, kaon production, and the atmospheric
    muon charge ratio", Astropart. Phys. 35 (2012) 801 (H3a, H4a).
    T. K. Gaisser, T. Stanev, S. Tilav, "Cosmic ray energy spectrum from measurements of
    air showers", Front. Phys. 8 (2013) 748 (GST).
    A. Fedynitch, crflux, https://github.com/mceq-project/crflux.
    IceCube, simweights, https://github.com/icecube/simweights (generation surfaces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError

__all__ = [
    "FLUX_MODELS",
    "PrimaryGenerator",
    "flux_model",
    "mass_number",
    "perpendicular_basis",
]

#: Flux models by name: ``(crflux class name, its argument)``.
FLUX_MODELS: dict[str, tuple[str, str]] = {
    "H3a": ("HillasGaisser2012", "H3a"),
    "H4a": ("HillasGaisser2012", "H4a"),
    "GST3": ("GaisserStanevTilav", "3-gen"),
    "GST4": ("GaisserStanevTilav", "4-gen"),
}


def flux_model(name: str) -> Any:
    """The ``crflux`` model object for a name of :data:`FLUX_MODELS`.

    Arguments:
        name: ``"H3a"`` (default of the pipeline), ``"H4a"``, ``"GST3"`` or ``"GST4"``.
    """
    if name not in FLUX_MODELS:
        raise ConfigError(
            f"unknown flux model {name!r}; expected one of {', '.join(FLUX_MODELS)}",
            parameter="flux_model",
        )
    import crflux.models as cm

    cls, arg = FLUX_MODELS[name]
    return getattr(cm, cls)(arg)


def mass_number(corsika_id: int | np.ndarray) -> np.ndarray:
    """Mass number A of a CORSIKA particle id (14 is the proton, else ``A * 100 + Z``).

    Example:
        >>> mass_number(np.array([14, 402, 5426])).tolist()
        [1, 4, 54]
    """
    cid = np.asarray(corsika_id, dtype=np.int64)
    return np.where(cid == 14, 1, cid // 100)


def _positive(value: float, name: str, strict: bool = True) -> float:
    v = float(value)
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ConfigError(f"must be {'> 0' if strict else '>= 0'}, got {value!r}", parameter=name)
    return v


@dataclass(frozen=True)
class PrimaryGenerator:
    """Generates cosmic-ray primaries with their flux weights (see the module docstring).

    Arguments:
        flux_model: A name of :data:`FLUX_MODELS`.
        gamma: Spectral index of the generation spectrum ``E^-gamma`` (harder than the
            flux's ~2.7 puts more events where the muons reach depth), or ``"flux"``:
            nuclei and energies drawn from the flux model (unweighted events).
        composition: ``"equal"`` (each nucleus generated with the same probability) or
            ``"flux"`` (in proportion to its rate above its lowest energy, as in the flux:
            the weights of the nuclei are then alike, which keeps the variance of
            weighted estimates low; always so with ``gamma="flux"``).
        e_min_per_nucleon_gev: Lower energy per nucleon; a nucleus ``A`` starts at
            ``A`` times this.
        e_max_gev: Upper total energy of every nucleus [GeV].
        zenith_max_deg: Largest zenith angle of arrival (0 < ... <= 90).
        radius_m: Radius of the generation disc [m].
        center_m: Centre of the disc (the detector centre) in detector coordinates [m].

    Example:
        >>> gen = PrimaryGenerator(radius_m=500.0)
        >>> ev = gen.sample(1000, np.random.default_rng(1))
        >>> sorted(set(ev["primary_id"]))
        [14, 402, 1206, 2814, 5426]
        >>> bool(ev["cos_zenith"].min() >= np.cos(np.radians(gen.zenith_max_deg)))
        True
    """

    flux_model: str = "H3a"
    gamma: float | str = 2.0
    composition: str = "equal"
    e_min_per_nucleon_gev: float = 500.0
    e_max_gev: float = 1e7
    zenith_max_deg: float = 80.0
    radius_m: float = 800.0
    center_m: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.gamma != "flux":
            try:
                g = float(self.gamma)
            except (TypeError, ValueError):
                g = float("nan")
            if not (math.isfinite(g) and 0.0 < g < 5.0):
                raise ConfigError(
                    f"must be in (0, 5) or 'flux', got {self.gamma!r}", parameter="gamma"
                )
        if self.composition not in ("equal", "flux"):
            raise ConfigError(
                f"must be 'equal' or 'flux', got {self.composition!r}", parameter="composition"
            )
        _positive(self.e_min_per_nucleon_gev, "e_min_per_nucleon_gev")
        _positive(self.e_max_gev, "e_max_gev")
        _positive(self.radius_m, "radius_m")
        if not (0.0 < float(self.zenith_max_deg) <= 90.0):
            raise ConfigError(
                f"must be in (0, 90], got {self.zenith_max_deg!r}", parameter="zenith_max_deg"
            )
        a_max = int(mass_number(np.array(self.model.nucleus_ids)).max())
        if self.e_max_gev <= a_max * self.e_min_per_nucleon_gev:
            raise ConfigError(
                f"must exceed A_max * e_min_per_nucleon_gev = "
                f"{a_max * self.e_min_per_nucleon_gev:g} GeV, got {self.e_max_gev:g}",
                parameter="e_max_gev",
            )
        c = np.asarray(self.center_m, dtype=float)
        if c.shape != (3,) or not np.all(np.isfinite(c)):
            raise ConfigError(
                f"expected three numbers, got {self.center_m!r}", parameter="center_m"
            )

    @cached_property
    def model(self) -> Any:
        """The ``crflux`` model."""
        return flux_model(self.flux_model)

    @property
    def nuclei(self) -> np.ndarray:
        """CORSIKA ids of the generated nuclei (the model's mass groups)."""
        return np.asarray(self.model.nucleus_ids, dtype=np.int64)

    @property
    def cos_zenith_min(self) -> float:
        """Lowest cos(zenith) generated."""
        return math.cos(math.radians(self.zenith_max_deg))

    @property
    def solid_angle_sr(self) -> float:
        """Solid angle of the generated directions [sr]."""
        return 2.0 * math.pi * (1.0 - self.cos_zenith_min)

    @property
    def area_m2(self) -> float:
        """Area of the generation disc [m^2]."""
        return math.pi * self.radius_m**2

    def energy_range(self, corsika_id: int) -> tuple[float, float]:
        """``(E_min, E_max)`` [GeV] of a nucleus."""
        a = int(mass_number(corsika_id))
        return a * self.e_min_per_nucleon_gev, self.e_max_gev

    @cached_property
    def _flux_tables(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per nucleus, the flux tabulated on a log-energy grid as a piecewise power law:
        ``(E_k, f_k, s_k, cumulative integral)`` (``gamma="flux"``)."""
        out = {}
        for cid in self.nuclei:
            lo, hi = self.energy_range(int(cid))
            e = np.geomspace(lo, hi, 1025)
            f = self.flux(int(cid), e)
            slope = -np.log(f[1:] / f[:-1]) / np.log(e[1:] / e[:-1])
            r = e[1:] / e[:-1]
            one = 1.0 - slope
            seg = np.where(
                np.abs(one) < 1e-9,
                f[:-1] * e[:-1] * np.log(r),
                f[:-1]
                * e[:-1]
                * np.expm1(one * np.log(r))
                / np.where(np.abs(one) < 1e-9, 1.0, one),
            )
            out[int(cid)] = (e, f, slope, np.concatenate([[0.0], np.cumsum(seg)]))
        return out

    @property
    def nucleus_probabilities(self) -> np.ndarray:
        """Probability of generating each nucleus of :attr:`nuclei` (equal for a power law;
        proportional to its rate for ``gamma="flux"``)."""
        if self.gamma != "flux" and self.composition == "equal":
            return np.full(self.nuclei.size, 1.0 / self.nuclei.size)
        rates = np.array([self._flux_tables[int(c)][3][-1] for c in self.nuclei])
        return rates / rates.sum()

    def energy_pdf(self, corsika_id: int, energy_gev: np.ndarray) -> np.ndarray:
        """Generation density of the total energy of nucleus ``corsika_id`` [1/GeV]."""
        lo, hi = self.energy_range(corsika_id)
        e = np.asarray(energy_gev, dtype=float)
        if self.gamma == "flux":
            grid, f, slope, cum = self._flux_tables[int(corsika_id)]
            k = np.clip(np.searchsorted(grid, e, side="right") - 1, 0, grid.size - 2)
            dens = f[k] * (np.clip(e, lo, hi) / grid[k]) ** -slope[k] / cum[-1]
            return np.where((e >= lo) & (e <= hi), dens, 0.0)
        g = float(self.gamma)
        if abs(g - 1.0) < 1e-12:
            norm = math.log(hi / lo)
        else:
            norm = (hi ** (1.0 - g) - lo ** (1.0 - g)) / (1.0 - g)
        return np.where((e >= lo) & (e <= hi), e**-g / norm, 0.0)

    def sample_energy(self, corsika_id: int, u: np.ndarray) -> np.ndarray:
        """Inverse CDF of :meth:`energy_pdf` at uniforms ``u``."""
        lo, hi = self.energy_range(corsika_id)
        if self.gamma == "flux":
            grid, _, slope, cum = self._flux_tables[int(corsika_id)]
            t = np.asarray(u, dtype=float) * cum[-1]
            k = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, grid.size - 2)
            frac = (t - cum[k]) / (cum[k + 1] - cum[k])
            one = 1.0 - slope[k]
            r = grid[k + 1] / grid[k]
            safe = np.where(np.abs(one) < 1e-9, 1.0, one)
            x = np.where(
                np.abs(one) < 1e-9,
                r**frac,
                (1.0 + frac * np.expm1(safe * np.log(r))) ** (1.0 / safe),
            )
            return np.clip(grid[k] * x, lo, hi)
        g = float(self.gamma)
        if abs(g - 1.0) < 1e-12:
            return lo * (hi / lo) ** u
        a, b = lo ** (1.0 - g), hi ** (1.0 - g)
        return (a + u * (b - a)) ** (1.0 / (1.0 - g))

    def flux(self, corsika_id: int, energy_gev: np.ndarray) -> np.ndarray:
        """Flux of the nucleus [1 / (m^2 s sr GeV)] (from ``crflux``)."""
        return np.asarray(self.model.nucleus_flux(int(corsika_id), energy_gev), dtype=float)

    def rate_hz(self, corsika_id: int | None = None) -> float:
        """The rate [Hz] through the generation surface in the generated range (quadrature).

        Arguments:
            corsika_id: One nucleus (None: all generated nuclei).
        """
        from scipy.integrate import quad

        ids = self.nuclei if corsika_id is None else [int(corsika_id)]
        total = 0.0
        for cid in ids:
            lo, hi = self.energy_range(int(cid))

            def f(le: float, cid: int = int(cid)) -> float:
                e = math.exp(le)
                return float(self.flux(cid, np.array([e]))[0]) * e

            total += quad(f, math.log(lo), math.log(hi), limit=200, epsrel=1e-8)[0]
        return total * self.area_m2 * self.solid_angle_sr

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``n`` primaries.

        Returns:
            A table with ``primary_id`` (CORSIKA id), ``mass`` (A), ``energy_gev`` (total),
            ``log10_energy``, ``cos_zenith``, ``azimuth`` [rad], the muon direction
            ``dir_x, dir_y, dir_z`` (down-going: ``dir_z = -cos_zenith``), the impact point
            ``x0_m, y0_m, z0_m`` on the generation disc and ``gen_weight`` [Hz].
        """
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"must be a non-negative integer, got {n!r}", parameter="n")
        ids = self.nuclei
        probs = self.nucleus_probabilities
        if self.gamma == "flux" or self.composition == "flux":
            k = np.minimum(np.searchsorted(np.cumsum(probs), rng.random(n)), ids.size - 1)
        else:
            k = rng.integers(0, ids.size, n)
        cid = ids[k]
        u_e = rng.random(n)
        energy = np.empty(n)
        weight = np.empty(n)
        for j, c in enumerate(ids):
            sel = k == j
            energy[sel] = self.sample_energy(int(c), u_e[sel])
            pdf = self.energy_pdf(int(c), energy[sel]) * probs[j]
            weight[sel] = self.flux(int(c), energy[sel]) / pdf
        weight *= self.area_m2 * self.solid_angle_sr
        cz = self.cos_zenith_min + (1.0 - self.cos_zenith_min) * rng.random(n)
        az = 2.0 * math.pi * rng.random(n)
        sz = np.sqrt(np.clip(1.0 - cz * cz, 0.0, None))
        d = np.column_stack([-sz * np.cos(az), -sz * np.sin(az), -cz])
        e1, e2 = perpendicular_basis(d)
        r = self.radius_m * np.sqrt(rng.random(n))
        psi = 2.0 * math.pi * rng.random(n)
        p0 = (
            np.asarray(self.center_m)
            + (r * np.cos(psi))[:, None] * e1
            + (r * np.sin(psi))[:, None] * e2
        )
        return pd.DataFrame(
            {
                "primary_id": cid,
                "mass": mass_number(cid).astype(np.int64),
                "energy_gev": energy,
                "log10_energy": np.log10(energy),
                "cos_zenith": cz,
                "azimuth": az,
                "dir_x": d[:, 0],
                "dir_y": d[:, 1],
                "dir_z": d[:, 2],
                "x0_m": p0[:, 0],
                "y0_m": p0[:, 1],
                "z0_m": p0[:, 2],
                "gen_weight": weight,
            }
        )

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "flux_model": self.flux_model,
            "gamma": self.gamma,
            "e_min_per_nucleon_gev": self.e_min_per_nucleon_gev,
            "e_max_gev": self.e_max_gev,
            "zenith_max_deg": self.zenith_max_deg,
            "radius_m": self.radius_m,
            "center_m": list(self.center_m),
        }


def perpendicular_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors ``e1, e2`` perpendicular to each unit vector of ``d`` (n, 3).

    Example:
        >>> e1, e2 = perpendicular_basis(np.array([[0.0, 0.0, -1.0]]))
        >>> float(np.abs(e1 @ [0, 0, 1]).max()), float(np.abs(e2 @ [0, 0, 1]).max())
        (0.0, 0.0)
    """
    d = np.atleast_2d(np.asarray(d, dtype=float))
    helper = np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(d, e1)
    return e1, e2
