"""Photon sources: isotropic flasher, electromagnetic cascade, muon track segment.

A source tells how many photons to propagate for one event (:meth:`photon_count`) and
draws them (:meth:`generate`): start position [m], unit direction, time [ns], wavelength
[nm] and weight. Only photons a module could detect are propagated (as in PPC):

* Cherenkov light (cascade, muon) is drawn from the Frank-Tamm spectrum
  ``d²N/dx dλ = 2πα/λ² (1 - 1/n²)`` weighted by the module's wavelength acceptance
  ``A_eff(λ)/(π r²)`` (≈ 2450 photons per metre of track for the IceCube DOM), or from raw
  Frank-Tamm between 300 and 600 nm (≈ 32,600 /m) when the detector ignores wavelength;
* flasher photons are thinned by the acceptance (or carry it as weight in
  ``acceptance_mode="weight"``);
* every count is divided by the oversize factor squared.

The photon is emitted on the Cherenkov cone ``cos θ_c = 1/n_phase(λ)`` around the
charged particle. An EM cascade emits like ``5.21 m/GeV × E`` of track (clsim 5.22, PPC
5.254) spread along its axis with a Gamma(a, b) profile, ``a = 2.01849 + 0.63176 ln(E/GeV)``,
``b = 0.39 m / 0.63207``, and its particles deviate from the axis by ``x = 1 - cos`` with
``p(x) ∝ x^(a-1) exp(-b x^a)``, ``a = 0.39``, ``b = 2.61`` (sampled exactly: ``y = x^a`` is a
truncated exponential).

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    L. Rädel and C. Wiebusch, "Calculation of the Cherenkov light yield from
    electromagnetic cascades in ice with Geant4", Astropart. Phys. 44 (2013) 102.
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ariasim.errors import ConfigError
from ariasim.simulators.photons.detector import Detector
from ariasim.simulators.photons.optics import (
    SPEED_OF_LIGHT_M_PER_NS,
    Medium,
    dom_wavelength_acceptance,
    frank_tamm_dn_dx_dlambda,
)

__all__ = [
    "PHOTON_COLUMNS",
    "SOURCES",
    "WAVELENGTH_RANGE_NM",
    "Cascade",
    "Flasher",
    "MuonSegment",
    "PhotonSource",
    "WavelengthSampler",
    "cherenkov_sampler",
    "deflect",
    "isotropic_directions",
    "make_source",
    "source_parameters",
]

#: The columns of a source's photons: start [m], unit direction, time [ns], wavelength
#: [nm], weight.
PHOTON_COLUMNS = ("x", "y", "z", "dx", "dy", "dz", "t", "wl", "w")
#: Cherenkov-equivalent track length of an EM cascade [m per GeV].
CASCADE_TRACK_M_PER_GEV = 5.21
#: Flasher wavelengths [nm]: the range of the tabulated DOM wavelength acceptance (zero
#: outside) within which the SPICE wavelength dependence of the ice holds.
WAVELENGTH_RANGE_NM = (260.0, 680.0)


@runtime_checkable
class PhotonSource(Protocol):
    """What :func:`~ariasim.simulators.photons.simulate.simulate` needs from a source.

    A source may also have ``generate_into(out, medium, detector, rng)``, which writes
    the photons of ``generate`` into the given float64 columns (as :class:`Flasher`
    does); the batch driver then uses it and spares a copy.

    Example:
        >>> isinstance(Flasher(n_photons=1e3), PhotonSource)
        True
    """

    def photon_count(self, medium: Medium, detector: Detector, rng: np.random.Generator) -> int:
        """Number of photons to propagate for one event."""
        ...

    def generate(
        self, n: int, medium: Medium, detector: Detector, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` photons: keys x, y, z, dx, dy, dz, t, wl, w."""
        ...

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        ...


@dataclass(frozen=True, eq=False)
class WavelengthSampler:
    """Inverse-CDF sampler of a tabulated wavelength density (linear interpolation).

    Arguments:
        grid_nm: Ascending wavelength grid [nm].
        density: Non-negative density on the grid (any normalisation); a single grid
            point means a fixed wavelength.

    Example:
        >>> s = WavelengthSampler(np.array([300.0, 500.0]), np.array([1.0, 1.0]))
        >>> x = s.sample(1000, np.random.default_rng(0))
        >>> bool(x.min() >= 300.0 and x.max() <= 500.0), s.mean_of(s.grid_nm)
        (True, 400.0)
    """

    grid_nm: np.ndarray
    density: np.ndarray
    _cdf: np.ndarray = field(init=False, repr=False)
    _total: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        g = np.asarray(self.grid_nm, dtype=float)
        d = np.asarray(self.density, dtype=float)
        if g.ndim != 1 or g.shape != d.shape or g.size < 1:
            raise ConfigError(
                "wavelength grid and density must be 1-D of equal length", parameter="spectrum"
            )
        if np.any(d < 0) or not np.all(np.isfinite(d)) or (g.size > 1 and np.any(np.diff(g) <= 0)):
            raise ConfigError(
                "density must be finite and >= 0 on an ascending grid", parameter="spectrum"
            )
        object.__setattr__(self, "grid_nm", g)
        object.__setattr__(self, "density", d)
        if g.size > 1:
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (d[1:] + d[:-1]) * np.diff(g))])
            if cdf[-1] <= 0:
                raise ConfigError("spectrum integrates to zero", parameter="spectrum")
            object.__setattr__(self, "_cdf", cdf / cdf[-1])
            object.__setattr__(self, "_total", float(cdf[-1]))
        else:
            object.__setattr__(self, "_cdf", np.ones(1))
            object.__setattr__(self, "_total", 1.0)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` wavelengths [nm] (exact for the piecewise-linear density)."""
        out = np.empty(n)
        self.sample_into(out, rng)
        return out

    def sample_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """Draw ``out.size`` wavelengths [nm] into ``out`` (as :meth:`sample`).

        One uniform per wavelength (none for a fixed wavelength), inverted in one
        compiled pass (:func:`~.generate.wavelength_fill`).
        """
        g = self.grid_nm
        if g.size == 1:
            out[...] = g[0]
            return
        from ariasim.simulators.photons.generate import wavelength_fill

        wavelength_fill(rng.random(out.size), g, self.density, self._cdf, self._total, out)

    def mean_of(self, f: np.ndarray) -> float:
        """Mean of ``f`` (values on the grid) under the density (trapezoid)."""
        g, d = self.grid_nm, self.density
        if g.size == 1:
            return float(f[0])
        return float(np.trapezoid(f * d, g) / np.trapezoid(d, g))


def cherenkov_sampler(
    wavelength_acceptance: bool, radius_m: float = 0.1651, medium: Medium | None = None
) -> tuple[WavelengthSampler, float]:
    """Cherenkov wavelength sampler and yield [photons per metre of β=1 track].

    With acceptance: Frank-Tamm × A_eff(λ)/(π r²) over the table (260-680 nm); without:
    raw Frank-Tamm over 300-600 nm.

    Arguments:
        wavelength_acceptance: Weight with the DOM acceptance.
        radius_m: True module radius (normalises A_eff).
        medium: For its phase index (default: the ice polynomial).
    """
    if wavelength_acceptance:
        grid = np.linspace(260.0, 680.0, 421)
    else:
        grid = np.linspace(300.0, 600.0, 301)
    n = None if medium is None else medium.phase_index(grid)
    dens = frank_tamm_dn_dx_dlambda(grid, n_phase=n)
    if wavelength_acceptance:
        dens = dens * dom_wavelength_acceptance(grid, radius_m)
    return WavelengthSampler(grid, dens), float(np.trapezoid(dens, grid))


def isotropic_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors uniform on the sphere, shape (n, 3)."""
    cz = 2.0 * rng.random(n) - 1.0
    phi = 2.0 * math.pi * rng.random(n)
    sz = np.sqrt(1.0 - cz * cz)
    return np.column_stack([sz * np.cos(phi), sz * np.sin(phi), cz])


def deflect(axis: np.ndarray, cos_theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Rotate unit vectors by polar angle acos(cos_theta) and azimuth ``phi`` about ``axis``.

    Arguments:
        axis: (n, 3) or (3,) unit vectors.
        cos_theta: (n,) cosines of the deflection.
        phi: (n,) azimuths [rad].
    """
    cos_theta = np.asarray(cos_theta, dtype=float)
    ax = np.broadcast_to(np.asarray(axis, dtype=float), (cos_theta.size, 3))
    helper = np.where(np.abs(ax[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(ax, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(ax, e1)
    st = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, None))
    out = (
        cos_theta[:, None] * ax
        + (st * np.cos(phi))[:, None] * e1
        + (st * np.sin(phi))[:, None] * e2
    )
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _vec3(v: Sequence[float], name: str, unit: bool = False) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=float)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ConfigError(f"expected three finite numbers, got {v!r}", parameter=name)
    if unit:
        nrm = float(np.linalg.norm(a))
        if nrm == 0:
            raise ConfigError("direction must be non-zero", parameter=name)
        a = a / nrm
    return (float(a[0]), float(a[1]), float(a[2]))


def _pack(
    pos: np.ndarray, d: np.ndarray, t: np.ndarray, wl: np.ndarray, w: np.ndarray
) -> dict[str, np.ndarray]:
    pos = np.broadcast_to(pos, d.shape)
    return {
        "x": np.ascontiguousarray(pos[:, 0]),
        "y": np.ascontiguousarray(pos[:, 1]),
        "z": np.ascontiguousarray(pos[:, 2]),
        "dx": np.ascontiguousarray(d[:, 0]),
        "dy": np.ascontiguousarray(d[:, 1]),
        "dz": np.ascontiguousarray(d[:, 2]),
        "t": t,
        "wl": wl,
        "w": w,
    }


def _thin(mean: float, rng: np.random.Generator) -> int:
    """Round a non-integer mean to an integer with the right expectation."""
    base = math.floor(mean)
    return int(base + (rng.random() < mean - base))


@dataclass(frozen=True)
class Flasher:
    """Isotropic point source (an LED flasher).

    Arguments:
        position_m: Source position [m].
        n_photons: Emitted photons per event.
        wavelength_nm: Fixed wavelength, or ``(lo, hi)`` for a flat spectrum.
        spectrum: Optional ``(grid_nm, density)`` table, overriding ``wavelength_nm``.
        time_ns: Emission time.

    Example:
        >>> from ariasim.simulators.photons import bulk_ice, single_module
        >>> f = Flasher(n_photons=1000, wavelength_nm=405.0)
        >>> det = single_module((0, 0, 10), wavelength_acceptance=False)
        >>> f.photon_count(bulk_ice(), det, np.random.default_rng(1))
        1000
        >>> sorted(f.generate(3, bulk_ice(), det, np.random.default_rng(1)))
        ['dx', 'dy', 'dz', 't', 'w', 'wl', 'x', 'y', 'z']
    """

    position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    n_photons: float = 1e6
    wavelength_nm: float | tuple[float, float] = 405.0
    spectrum: tuple[Sequence[float], Sequence[float]] | None = None
    time_ns: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "position_m", _vec3(self.position_m, "position_m"))
        if not (self.n_photons >= 0 and math.isfinite(self.n_photons)):
            raise ConfigError(f"must be >= 0, got {self.n_photons}", parameter="n_photons")
        wl = self.wavelength_nm
        vals = [wl] if np.isscalar(wl) else list(wl)
        lo_nm, hi_nm = WAVELENGTH_RANGE_NM
        if len(vals) not in (1, 2) or not all(lo_nm <= float(v) <= hi_nm for v in vals):
            raise ConfigError(
                f"expected a wavelength or (lo, hi) in {lo_nm:g}-{hi_nm:g} nm "
                f"(the tabulated range), got {wl!r}",
                parameter="wavelength_nm",
            )
        if len(vals) == 2 and not float(vals[0]) < float(vals[1]):
            raise ConfigError("need lo < hi", parameter="wavelength_nm")

    def _spectrum(self) -> WavelengthSampler:
        if self.spectrum is not None:
            return WavelengthSampler(*self.spectrum)
        wl = self.wavelength_nm
        if np.isscalar(wl):
            return WavelengthSampler(np.array([float(wl)]), np.array([1.0]))
        lo, hi = (float(v) for v in wl)
        return WavelengthSampler(np.array([lo, hi]), np.array([1.0, 1.0]))

    def _sampler(self, detector: Detector) -> tuple[WavelengthSampler, float]:
        """Sampler of the wavelengths of propagated photons and the kept fraction."""
        spec = self._spectrum()
        if not detector.wavelength_acceptance or detector.acceptance_mode == "weight":
            return spec, 1.0
        if spec.grid_nm.size == 1:
            return spec, float(dom_wavelength_acceptance(spec.grid_nm, detector.radius_m)[0])
        grid = np.union1d(spec.grid_nm, np.linspace(spec.grid_nm[0], spec.grid_nm[-1], 1001))
        dens = np.interp(grid, spec.grid_nm, spec.density)
        acc = dom_wavelength_acceptance(grid, detector.radius_m)
        kept = float(np.trapezoid(dens * acc, grid) / np.trapezoid(dens, grid))
        return WavelengthSampler(grid, dens * acc), kept

    def photon_count(self, medium: Medium, detector: Detector, rng: np.random.Generator) -> int:
        """Binomial thinning of ``n_photons`` by acceptance / oversize²."""
        _, kept = self._sampler(detector)
        p = min(1.0, kept / detector.oversize**2)
        n = round(self.n_photons)
        return int(rng.binomial(n, p)) if p < 1.0 else n

    def generate(
        self, n: int, medium: Medium, detector: Detector, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` photons from the flasher."""
        out = {c: np.empty(n) for c in PHOTON_COLUMNS}
        self.generate_into(out, medium, detector, rng)
        return out

    def generate_into(
        self,
        out: dict[str, np.ndarray],
        medium: Medium,
        detector: Detector,
        rng: np.random.Generator,
    ) -> None:
        """Draw ``len(out["x"])`` photons into the float64 columns ``out`` (keys as
        :meth:`generate`), without temporaries: directions and wavelengths in one
        compiled pass each (:mod:`~.generate`), the same numbers as
        :func:`isotropic_directions` and :meth:`WavelengthSampler.sample`."""
        from ariasim.simulators.photons.generate import isotropic_fill

        sampler, _ = self._sampler(detector)
        n = out["x"].size
        u_cos = rng.random(n)
        isotropic_fill(u_cos, rng.random(n), out["dx"], out["dy"], out["dz"])
        sampler.sample_into(out["wl"], rng)
        for c, v in zip("xyz", self.position_m, strict=True):
            out[c][...] = v
        out["t"][...] = float(self.time_ns)
        if detector.wavelength_acceptance and detector.acceptance_mode == "weight":
            out["w"][...] = dom_wavelength_acceptance(out["wl"], detector.radius_m)
        else:
            out["w"][...] = 1.0

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "type": "flasher",
            "position_m": list(self.position_m),
            "n_photons": self.n_photons,
            "wavelength_nm": self.wavelength_nm,
            "spectrum": self.spectrum is not None,
            "time_ns": self.time_ns,
        }


def _cone(axis: np.ndarray, wl: np.ndarray, medium: Medium, rng: np.random.Generator) -> np.ndarray:
    cos_c = 1.0 / np.asarray(medium.phase_index(wl), dtype=float)
    return deflect(axis, cos_c, 2.0 * math.pi * rng.random(wl.size))


class _CherenkovTrack:
    """Photon count and emission shared by the Cherenkov sources (cascade, muon).

    A subclass gives its Cherenkov-equivalent track length (:meth:`_track_length_m`), its
    ``time_ns`` and ``fluctuate``, and draws its emission points with :meth:`_emit`.
    """

    time_ns: float
    fluctuate: bool

    def _track_length_m(self) -> float:
        raise NotImplementedError

    def mean_photons(self, medium: Medium, detector: Detector) -> float:
        """Expected number of photons to propagate."""
        _, yld = cherenkov_sampler(detector.wavelength_acceptance, detector.radius_m, medium)
        return self._track_length_m() * yld / detector.oversize**2

    def photon_count(self, medium: Medium, detector: Detector, rng: np.random.Generator) -> int:
        """Poisson (or rounded) number of photons for one event."""
        mu = self.mean_photons(medium, detector)
        return int(rng.poisson(mu)) if self.fluctuate else _thin(mu, rng)

    def _emit(
        self,
        start: np.ndarray,
        axis: np.ndarray,
        s: np.ndarray,
        particle_dir: np.ndarray,
        medium: Medium,
        detector: Detector,
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray]:
        """Photons emitted at ``start + s axis`` (time ``time_ns + s/c``) on the Cherenkov
        cone around ``particle_dir``, wavelengths from the Cherenkov sampler."""
        sampler, _ = cherenkov_sampler(detector.wavelength_acceptance, detector.radius_m, medium)
        pos = start + s[:, None] * axis
        wl = sampler.sample(s.size, rng)
        d = _cone(particle_dir, wl, medium, rng)
        t = self.time_ns + s / SPEED_OF_LIGHT_M_PER_NS
        return _pack(pos, d, t, wl, np.ones(s.size))


@dataclass(frozen=True)
class Cascade(_CherenkovTrack):
    """Electromagnetic cascade: Cherenkov light of ``5.21 m/GeV × E`` of track.

    Arguments:
        position_m: Vertex [m].
        direction: Axis (normalised here).
        energy_gev: Energy [GeV].
        time_ns: Vertex time.
        track_m_per_gev: Cherenkov-equivalent track length per GeV.
        fluctuate: Draw the photon count from a Poisson distribution (else round).

    Example:
        >>> from ariasim.simulators.photons import bulk_ice, single_module
        >>> c = Cascade(energy_gev=1.0)  # 5.21 m x about 2450 detectable photons/m
        >>> round(c.mean_photons(bulk_ice(), single_module((0, 0, 10))))
        12770
    """

    position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    energy_gev: float = 10.0
    time_ns: float = 0.0
    track_m_per_gev: float = CASCADE_TRACK_M_PER_GEV
    fluctuate: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "position_m", _vec3(self.position_m, "position_m"))
        object.__setattr__(self, "direction", _vec3(self.direction, "direction", unit=True))
        if not (self.energy_gev > 0 and math.isfinite(self.energy_gev)):
            raise ConfigError(f"must be > 0, got {self.energy_gev}", parameter="energy_gev")

    def _track_length_m(self) -> float:
        return self.energy_gev * self.track_m_per_gev

    def generate(
        self, n: int, medium: Medium, detector: Detector, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` photons of the cascade."""
        axis = np.asarray(self.direction)
        a = 2.01849 + 0.63176 * math.log(self.energy_gev)
        b = 0.39 / 0.63207
        s = rng.gamma(max(a, 1e-3), b, n)
        # particle direction: y = x^0.39 ~ Exp(2.61) truncated at 2^0.39
        ap, bp = 0.39, 2.61
        ymax = 2.0**ap
        u = rng.random(n)
        y = -np.log1p(-u * (1.0 - math.exp(-bp * ymax))) / bp
        x = np.minimum(y ** (1.0 / ap), 2.0)
        pdir = deflect(axis, 1.0 - x, 2.0 * math.pi * rng.random(n))
        return self._emit(np.asarray(self.position_m), axis, s, pdir, medium, detector, rng)

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "type": "cascade",
            "position_m": list(self.position_m),
            "direction": list(self.direction),
            "energy_gev": self.energy_gev,
            "time_ns": self.time_ns,
            "track_m_per_gev": self.track_m_per_gev,
        }


@dataclass(frozen=True)
class MuonSegment(_CherenkovTrack):
    """Straight β=1 track segment emitting Cherenkov light on the cone acos(1/n_phase(λ)).

    Arguments:
        start_m: Start point [m].
        direction: Direction (normalised here).
        length_m: Segment length [m].
        time_ns: Time at the start point.
        fluctuate: Draw the photon count from a Poisson distribution (else round).

    Example:
        >>> from ariasim.simulators.photons import bulk_ice, single_module
        >>> mu = MuonSegment(length_m=2.0, direction=(0, 0, 2))
        >>> mu.direction, round(mu.mean_photons(bulk_ice(), single_module((0, 0, 10))))
        ((0.0, 0.0, 1.0), 4902)
    """

    start_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    length_m: float = 10.0
    time_ns: float = 0.0
    fluctuate: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_m", _vec3(self.start_m, "start_m"))
        object.__setattr__(self, "direction", _vec3(self.direction, "direction", unit=True))
        if not (self.length_m > 0 and math.isfinite(self.length_m)):
            raise ConfigError(f"must be > 0, got {self.length_m}", parameter="length_m")

    def _track_length_m(self) -> float:
        return self.length_m

    def generate(
        self, n: int, medium: Medium, detector: Detector, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` photons along the segment."""
        axis = np.asarray(self.direction)
        s = self.length_m * rng.random(n)
        return self._emit(np.asarray(self.start_m), axis, s, axis, medium, detector, rng)

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "type": "muon",
            "start_m": list(self.start_m),
            "direction": list(self.direction),
            "length_m": self.length_m,
            "time_ns": self.time_ns,
        }


#: The sources by name: ``make_source(name, **parameters)`` builds ``SOURCES[name]``.
SOURCES: dict[str, type] = {"flasher": Flasher, "cascade": Cascade, "muon": MuonSegment}
#: Parameter names of :func:`make_source` that a source spells differently.
_SOURCE_ALIASES = {"muon": {"position_m": "start_m"}}


def source_parameters(name: str) -> tuple[str, ...]:
    """Parameters (as :func:`make_source` names them) that source ``name`` accepts.

    Arguments:
        name: A key of :data:`SOURCES`.
    """
    if name not in SOURCES:
        raise ConfigError(
            f"unknown source {name!r}; expected one of {', '.join(SOURCES)}", parameter="source"
        )
    back = {v: k for k, v in _SOURCE_ALIASES.get(name, {}).items()}
    return tuple(back.get(p, p) for p in inspect.signature(SOURCES[name]).parameters)


def make_source(name: str, **parameters: Any) -> PhotonSource:
    """Build a source by name (a key of :data:`SOURCES`); ``None`` values are not given.

    The source classes are the one home of the defaults. A parameter the chosen source does
    not take (e.g. ``energy_gev`` for a flasher) is an error naming it. ``position_m`` is the
    muon's ``start_m``.

    Arguments:
        name: ``"flasher"`` (:class:`Flasher`), ``"cascade"`` (:class:`Cascade`) or
            ``"muon"`` (:class:`MuonSegment`).
        **parameters: Keyword arguments of that class.

    Example:
        >>> make_source("muon", position_m=(0, 0, 10), length_m=5.0).start_m
        (0.0, 0.0, 10.0)
        >>> make_source("flasher", energy_gev=3.0)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'energy_gev': applies only to source cascade
    """
    given = {k: v for k, v in parameters.items() if v is not None}
    accepted = source_parameters(name)
    for key in given:
        if key not in accepted:
            where = [s for s in SOURCES if key in source_parameters(s)]
            msg = (
                f"applies only to source {' or '.join(where)}"
                if where
                else f"unknown source parameter; {name} takes {', '.join(accepted)}"
            )
            raise ConfigError(msg, parameter=key)
    alias = _SOURCE_ALIASES.get(name, {})
    return SOURCES[name](**{alias.get(k, k): v for k, v in given.items()})
