"""Generic collider detector full simulation: tracker, calorimeters, muon system, identification.

Quick start::

    from ariasim.simulators.collider import ParticleGun, simulate
    table = simulate(ParticleGun(["e-"], 1, 500, log_pt=True).generate(10_000, 1), "default", seed=2)

References:
    See :mod:`.tracking` (Highland, Gluckstern, Frühwirth, Bethe-Heitler, PDG),
    :mod:`.calorimeter` (Grindhammer-Peters), :mod:`.reconstruction` (CMS particle flow).

Arguments:
    See :func:`simulate`, :class:`ParticleGun`, :func:`load_detector`, :func:`read_events`.
"""

from __future__ import annotations

from ariasim.simulators.collider.detector import DetectorConfig, available_detectors, load_detector
from ariasim.simulators.collider.inputs import read_events
from ariasim.simulators.collider.particles import GUN_SPECIES, ParticleGun, particle_table
from ariasim.simulators.collider.simulate import simulate

__all__ = [
    "GUN_SPECIES",
    "DetectorConfig",
    "ParticleGun",
    "available_detectors",
    "load_detector",
    "particle_table",
    "read_events",
    "simulate",
]
