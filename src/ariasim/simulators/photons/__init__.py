"""First-principles Monte Carlo of Cherenkov photons in a neutrino telescope.

The physics of IceCube's PPC and clsim: SPICE ice optics (homogeneous or layered),
Henyey-Greenstein / simplified-Liu scattering, absorption, group-velocity timing, and
spherical optical modules with angular and wavelength acceptance. Sources: flasher, EM
cascade, muon track segment. The hot loop is compiled with numba, parallel over cores,
with a spatial index of the modules and counter-based per-chunk random streams.

Typical use::

    from ariasim.simulators.photons import Flasher, bulk_ice, single_module, simulate
    res = simulate(Flasher(n_photons=1e6), bulk_ice(), single_module((0, 0, 50)), seed=1)
    res.hits, res.counts

One run from a configuration (what ``ariasim simulate photons`` does)::

    from ariasim.simulators.photons import run_photons
    run = run_photons("run.toml", {"medium": {"name": "water"}})

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    M. G. Aartsen et al. (IceCube), NIM A 711 (2013) 73 (SPICE-Mie).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
"""

from ariasim.simulators.photons.detector import (
    AS_NOMINAL,
    Detector,
    read_geometry,
    single_module,
    string_detector,
)
from ariasim.simulators.photons.optics import (
    MEDIA,
    Medium,
    bulk_ice,
    constant_medium,
    dom_wavelength_acceptance,
    frank_tamm_dn_dx_dlambda,
    frank_tamm_yield_per_m,
    layered_ice,
    layered_ice_from_arrays,
    make_medium,
    n_group_ice,
    n_phase_ice,
    water,
)
from ariasim.simulators.photons.run import PhotonRun, run_photons
from ariasim.simulators.photons.shells import ShellTable, tabulate_shells
from ariasim.simulators.photons.simulate import PhotonSimulation, simulate
from ariasim.simulators.photons.sources import (
    SOURCES,
    Cascade,
    Flasher,
    MuonSegment,
    make_source,
)

__all__ = [
    "AS_NOMINAL",
    "MEDIA",
    "SOURCES",
    "Cascade",
    "Detector",
    "Flasher",
    "Medium",
    "MuonSegment",
    "PhotonRun",
    "PhotonSimulation",
    "ShellTable",
    "bulk_ice",
    "constant_medium",
    "dom_wavelength_acceptance",
    "frank_tamm_dn_dx_dlambda",
    "frank_tamm_yield_per_m",
    "layered_ice",
    "layered_ice_from_arrays",
    "make_medium",
    "make_source",
    "n_group_ice",
    "n_phase_ice",
    "read_geometry",
    "run_photons",
    "simulate",
    "single_module",
    "string_detector",
    "tabulate_shells",
    "water",
]
