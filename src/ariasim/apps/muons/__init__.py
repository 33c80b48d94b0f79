"""The atmospheric-muon background pipeline of a generic neutrino telescope (issue 11).

Wires the muon simulator (:mod:`ariasim.simulators.muons`) and the photon simulator
(:mod:`ariasim.simulators.photons`) into a staged :class:`~ariasim.active.Pipeline`
with a trigger and a final selection: :func:`make_muon_pipeline`.

Example::

    from ariasim.apps.muons import make_muon_pipeline, profile_pipeline
    summary = profile_pipeline(make_muon_pipeline("ci"), 20_000, seed=1)
"""

from ariasim.apps.muons.pipeline import (
    CONTROL_FEATURES,
    OBSERVABLES,
    SELECTIONS,
    SIZES,
    MuonConfig,
    make_bright_muon_pipeline,
    make_muon_pipeline,
    make_upgoing_muon_pipeline,
    muon_stages,
)
from ariasim.apps.muons.profile import chain_stages, profile_pipeline

__all__ = [
    "CONTROL_FEATURES",
    "OBSERVABLES",
    "SELECTIONS",
    "SIZES",
    "MuonConfig",
    "chain_stages",
    "make_bright_muon_pipeline",
    "make_muon_pipeline",
    "make_upgoing_muon_pipeline",
    "muon_stages",
    "profile_pipeline",
]
