"""Atmospheric muons for a neutrino telescope: primaries, bundles, propagation to depth.

The physics chain of the atmospheric-muon background (the simulator; the staged pipeline
with photons, trigger and selection is :mod:`ariasim.apps.muons`):

* :mod:`.primaries`: cosmic-ray nuclei from a ``crflux`` model (H3a, H4a, GST) on a
  generation disc, with flux weights in Hz;
* :mod:`.bundles`: muon bundles at the surface from the Elbert yield per nucleus;
* :mod:`.propagation`: continuous ``a + b E`` and stochastic losses (bremsstrahlung, pair
  production, photonuclear above a relative cut) in ice;
* :mod:`.simulate`: :class:`MuonSimulator`, the chain on event tables.

Example::

    import numpy as np
    from ariasim.simulators.muons import MuonSimulator
    sim, rng = MuonSimulator(), np.random.default_rng(1)
    ev = sim.primaries(np.arange(10_000), rng)
    at_depth = sim.propagate(sim.bundles(ev, rng).merge(ev, on="event_id"), rng)
"""

from ariasim.simulators.muons.bundles import ElbertYield, effective_cos_zenith
from ariasim.simulators.muons.primaries import (
    FLUX_MODELS,
    PrimaryGenerator,
    flux_model,
    mass_number,
    perpendicular_basis,
)
from ariasim.simulators.muons.propagation import (
    ICE_DENSITY,
    PROCESSES,
    EnergyLossModel,
    Propagated,
    cylinder_chord,
    slant_length_m,
)
from ariasim.simulators.muons.simulate import DEPTH_FEATURES, MuonSimulator

__all__ = [
    "DEPTH_FEATURES",
    "FLUX_MODELS",
    "ICE_DENSITY",
    "PROCESSES",
    "ElbertYield",
    "EnergyLossModel",
    "MuonSimulator",
    "PrimaryGenerator",
    "Propagated",
    "cylinder_chord",
    "effective_cos_zenith",
    "flux_model",
    "mass_number",
    "perpendicular_basis",
    "slant_length_m",
]
