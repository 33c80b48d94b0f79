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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ariasim.simulators.collider.detector import (
        DetectorConfig,
        available_detectors,
        load_detector,
    )
    from ariasim.simulators.collider.inputs import (
        particles_from_table,
        read_events,
        read_particles,
    )
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

#: Each exported name's module: imported on first use, so that a module that needs only
#: the schema (``ariasim fastsim``) does not import the simulator (and pandas).
_WHERE = {
    "DetectorConfig": "detector",
    "available_detectors": "detector",
    "load_detector": "detector",
    "particles_from_table": "inputs",
    "read_events": "inputs",
    "read_particles": "inputs",
    "GUN_SPECIES": "particles",
    "ParticleGun": "particles",
    "particle_table": "particles",
    "run_collider": "run",
    "OUTPUT_COLUMNS": "schema",
    "OUTPUT_SCHEMA": "schema",
    "PARTICLE_SCHEMA": "schema",
    "OutputColumn": "schema",
    "ParticleColumn": "schema",
    "simulate": "simulate",
}


class _Package(types.ModuleType):
    """This package, with its exported names imported on first use. A submodule named
    like the function it exports (``simulate``) does not replace that function when it is
    imported: ``ariasim.simulators.collider.simulate`` stays the function, as when every
    name was imported eagerly."""

    def __getattr__(self, name: str) -> Any:
        if name not in _WHERE:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{_WHERE[name]}"), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_WHERE})


sys.modules[__name__].__class__ = _Package

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
