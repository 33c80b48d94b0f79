"""Generic collider detector full simulation: tracker, calorimeters, muon system, identification.

Quick start::

    from ariasim.simulators.collider import ParticleGun, simulate
    particles = ParticleGun(["e-"], 1, 500, log_pt=True).generate(10_000, 1)
    table = simulate(particles, "default", seed=2)

The output has one row per truth particle; its columns, dtypes, units (GeV, mm, rad) and
meanings are :data:`OUTPUT_SCHEMA` (:class:`OutputColumn` entries; ``OUTPUT_COLUMNS`` is
``{name: dtype}``). The input, a truth-particle table, has the columns of
:data:`PARTICLE_SCHEMA` (:func:`read_particles` reads one, or HepMC3/LHE events, and
checks it). :func:`run_collider` is the whole job of ``ariasim simulate collider`` (gun,
particle table or event file in, table and report out).

References:
    See :mod:`.tracking` (Highland, Gluckstern, Frühwirth, Bethe-Heitler, PDG),
    :mod:`.calorimeter` (Grindhammer-Peters), :mod:`.reconstruction` (CMS particle flow).

Arguments:
    See :func:`simulate`, :func:`run_collider`, :class:`ParticleGun`, :func:`load_detector`,
    :func:`read_events`, :func:`read_particles`.
"""

from __future__ import annotations

from ariasim.simulators.collider.detector import DetectorConfig, available_detectors, load_detector
from ariasim.simulators.collider.inputs import particles_from_table, read_events, read_particles
from ariasim.simulators.collider.particles import GUN_SPECIES, ParticleGun, particle_table
from ariasim.simulators.collider.run import run_collider
from ariasim.simulators.collider.schema import (
    OUTPUT_COLUMNS,
    OUTPUT_SCHEMA,
    PARTICLE_SCHEMA,
    OutputColumn,
    ParticleColumn,
)
from ariasim.simulators.collider.simulate import simulate

__all__ = [
    "GUN_SPECIES",
    "OUTPUT_COLUMNS",
    "OUTPUT_SCHEMA",
    "PARTICLE_SCHEMA",
    "DetectorConfig",
    "OutputColumn",
    "ParticleColumn",
    "ParticleGun",
    "available_detectors",
    "load_detector",
    "particle_table",
    "particles_from_table",
    "read_events",
    "read_particles",
    "run_collider",
    "simulate",
]
