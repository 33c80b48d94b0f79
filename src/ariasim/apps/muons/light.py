"""Photon sources of one muon event, with the light-only-near-modules cut.

Production simulations (PPC, clsim) do not propagate light that cannot reach a module:
only the parts of the muon tracks, and the stochastic losses, within ``near_m`` of some
module emit photons. Here every muon's path in the volume is cut into pieces of
``piece_m``; a piece emits when its segment passes within ``near_m`` of a module, and
consecutive emitting pieces are merged into one
:class:`~ariasim.simulators.photons.MuonSegment`. A loss above ``cascade_min_gev`` within
``near_m`` of a module becomes a :class:`~ariasim.simulators.photons.Cascade`.

The bare muon Cherenkov light is scaled by PPC's muon light factor
``1 + max(0, 0.188 + 0.0206 ln(E/GeV))`` (delta electrons and losses below PPC's usual
500 MeV cut) plus the light of the radiative losses below ``v_cut`` (``b_c E`` GeV per mwe,
as cascades of 5.21 m of track per GeV; with a relative cut these reach hundreds of GeV
for a 10 TeV muon, so they are not negligible). All sources of an event
are one :class:`EventLight` (a photon source of :func:`ariasim.simulators.photons.simulate`):
its photon count is Poisson with the summed mean times ``yield_scale`` (the module
efficiency of a scaled telescope), and its photons are drawn from the sources in
proportion to their means (the split of a sum of Poisson counts is multinomial).

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC: light
    near modules only, oversized modules, muon light factor).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim (its muon light factor
    "calculated the way it's done by PPC").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ariasim.errors import ConfigError
from ariasim.simulators.muons import ICE_DENSITY
from ariasim.simulators.photons import Cascade, Detector, Medium, MuonSegment
from ariasim.simulators.photons.optics import SPEED_OF_LIGHT_M_PER_NS
from ariasim.simulators.photons.sources import CASCADE_TRACK_M_PER_GEV, cherenkov_sampler

__all__ = ["EventLight", "event_sources", "muon_light_factor", "segment_module_distance"]


def muon_light_factor(energy_gev: float, b_continuous: float = 0.0) -> float:
    """Light of a muon track over the bare Cherenkov light of a beta=1 track.

    PPC's ``1 + max(0, 0.188 + 0.0206 ln E)`` plus ``5.21 m/GeV x rho x b_c E`` for the
    radiative losses below the relative cut.

    Example:
        >>> round(muon_light_factor(1.0), 3), round(muon_light_factor(1e3), 3)
        (1.188, 1.33)
    """
    e = max(float(energy_gev), 1e-3)
    ppc = 1.0 + max(0.0, 0.1880 + 0.0206 * math.log(e))
    return ppc + b_continuous * ICE_DENSITY * e * CASCADE_TRACK_M_PER_GEV


def segment_module_distance(a: np.ndarray, b: np.ndarray, modules: np.ndarray) -> np.ndarray:
    """Smallest distance from each segment ``a[i] -> b[i]`` to any module centre [m].

    Arguments:
        a: (n, 3) segment starts.
        b: (n, 3) segment ends.
        modules: (m, 3) module centres.

    Example:
        >>> segment_module_distance(np.array([[0.0, 0, 0]]), np.array([[0.0, 0, 10]]),
        ...                         np.array([[3.0, 0, 5], [0, 0, 20]])).tolist()
        [3.0]
    """
    ab = b - a
    l2 = np.maximum(np.sum(ab * ab, axis=1), 1e-12)
    am = modules[None, :, :] - a[:, None, :]
    t = np.clip(np.einsum("nmk,nk->nm", am, ab) / l2[:, None], 0.0, 1.0)
    closest = a[:, None, :] + t[:, :, None] * ab[:, None, :]
    return np.sqrt(np.min(np.sum((modules[None] - closest) ** 2, axis=2), axis=1))


@dataclass(frozen=True)
class EventLight:
    """All photon sources of one event as one source (see the module docstring).

    Arguments:
        sources: The muon segments and cascades.
        scales: Light factor of each source (muon light factor, 1 for cascades).
        yield_scale: Common factor on all photon counts (module efficiency).

    Example:
        >>> from ariasim.simulators.photons import bulk_ice, single_module
        >>> light = EventLight((MuonSegment(length_m=10.0), Cascade(energy_gev=1.0)), (1.0, 1.0))
        >>> det = single_module((0, 0, 5))
        >>> round(light.mean_photons(bulk_ice(), det) / (15.21 * 2451), 2)
        1.0
    """

    sources: tuple
    scales: tuple[float, ...]
    yield_scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.scales):
            raise ConfigError("one scale per source", parameter="scales")
        if not (self.yield_scale > 0 and math.isfinite(self.yield_scale)):
            raise ConfigError(f"must be > 0, got {self.yield_scale}", parameter="yield_scale")

    def _means(self, medium: Medium, detector: Detector) -> np.ndarray:
        _, yld = cherenkov_sampler(detector.wavelength_acceptance, detector.radius_m, medium)
        lengths = np.array(
            [
                s.length_m if isinstance(s, MuonSegment) else s.energy_gev * s.track_m_per_gev
                for s in self.sources
            ]
        )
        return lengths * np.asarray(self.scales) * yld * self.yield_scale / detector.oversize**2

    def mean_photons(self, medium: Medium, detector: Detector) -> float:
        """Expected number of photons to propagate."""
        return float(self._means(medium, detector).sum()) if self.sources else 0.0

    def photon_count(self, medium: Medium, detector: Detector, rng: np.random.Generator) -> int:
        """Poisson number of photons of the event."""
        return int(rng.poisson(self.mean_photons(medium, detector)))

    def generate(
        self, n: int, medium: Medium, detector: Detector, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` photons from the sources in proportion to their means."""
        mu = self._means(medium, detector)
        split = rng.multinomial(n, mu / mu.sum())
        parts = [
            s.generate(int(k), medium, detector, rng)
            for s, k in zip(self.sources, split, strict=True)
            if k > 0
        ]
        return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "type": "muon_event",
            "n_sources": len(self.sources),
            "yield_scale": self.yield_scale,
        }


def event_sources(
    direction: Sequence[float],
    mu_entry: np.ndarray,
    mu_length_m: np.ndarray,
    mu_energy: np.ndarray,
    loss_pos: np.ndarray,
    loss_energy: np.ndarray,
    modules: np.ndarray,
    *,
    near_m: float,
    piece_m: float = 20.0,
    cascade_min_gev: float = 1.0,
    b_continuous: float = 0.0,
    a_gev_per_mwe: float = 0.26,
    b_total: float = 3.6e-4,
) -> tuple[list, list[float]]:
    """The muon segments and cascades of one event within ``near_m`` of a module.

    Times are ``d·x / c`` (the bundle front crosses the plane through the origin at t = 0).

    Arguments:
        direction: The muons' unit direction.
        mu_entry: (n, 3) entry point of each muon in the volume [m].
        mu_length_m: Path of each muon inside the volume [m].
        mu_energy: Entry energy of each muon [GeV].
        loss_pos: (m, 3) positions of the stochastic losses.
        loss_energy: (m,) their energies [GeV].
        modules: (k, 3) module centres.
        near_m: The light-only-near-modules distance.
        piece_m: Length of the pieces the tracks are cut into.
        cascade_min_gev: Smallest loss simulated as a cascade.
        b_continuous: Sub-cut radiative loss coefficient [1/mwe] (its light is added).
        a_gev_per_mwe, b_total: The mean loss, for the muon energy along a piece.

    Returns:
        ``(sources, scales)`` for :class:`EventLight`.
    """
    d = np.asarray(direction, dtype=float)
    c = SPEED_OF_LIGHT_M_PER_NS
    sources: list = []
    scales: list[float] = []
    for p0, length, e0 in zip(mu_entry, mu_length_m, mu_energy, strict=True):
        n_p = max(1, math.ceil(length / piece_m))
        edges = np.linspace(0.0, length, n_p + 1)
        a = p0 + edges[:-1, None] * d
        b = p0 + edges[1:, None] * d
        near = segment_module_distance(a, b, modules) <= near_m
        if not near.any():
            continue
        # runs of consecutive near pieces
        dn = np.diff(np.concatenate([[0], near.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(dn == 1), np.flatnonzero(dn == -1)
        r = a_gev_per_mwe / b_total
        for i0, i1 in zip(starts, ends, strict=True):
            s0, s1 = edges[i0], edges[i1]
            start = p0 + s0 * d
            # mean energy in the middle of the run (mean-loss solution)
            x_mid = 0.5 * (s0 + s1) * ICE_DENSITY
            e_mid = max((e0 + r) * math.exp(-b_total * x_mid) - r, 0.0)
            factor = muon_light_factor(e_mid, b_continuous)
            sources.append(
                MuonSegment(
                    start_m=tuple(start),
                    direction=tuple(d),
                    length_m=float(s1 - s0),
                    time_ns=float(start @ d / c),
                )
            )
            scales.append(float(factor))
    if len(loss_energy):
        big = np.flatnonzero(np.asarray(loss_energy) >= cascade_min_gev)
        if big.size:
            pos = np.asarray(loss_pos)[big]
            dist = np.sqrt(np.min(np.sum((pos[:, None, :] - modules[None]) ** 2, axis=2), axis=1))
            for k in big[dist <= near_m]:
                p = np.asarray(loss_pos)[k]
                sources.append(
                    Cascade(
                        position_m=tuple(p),
                        direction=tuple(d),
                        energy_gev=float(loss_energy[k]),
                        time_ns=float(p @ d / c),
                    )
                )
                scales.append(1.0)
    return sources, scales
