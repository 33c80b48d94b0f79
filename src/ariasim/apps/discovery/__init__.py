"""Bayesian model discovery for the shallow-flow simulator (``ariasim discover``).

The application side of issue 13: the simulator (:mod:`ariasim.simulators.shallowflow`)
wired to the discovery method (:mod:`ariasim.discovery`).

* :mod:`.forward`: :class:`ShallowFlowForward`, friction-term weights -> observables, with a
  resumable cache of simulator runs, batches through :mod:`ariasim.parallel`;
* :mod:`.observations`: the user's CSV files of front positions and deposit depths;
* :mod:`.config`: the TOML configuration (:class:`DiscoveryConfig`);
* :mod:`.synthetic`: observations made with a known law plus noise (closure tests, the
  shipped example);
* :mod:`.run`: :func:`run_discovery`, the whole calibration over the model cascade;
* :mod:`.report`: its HTML report.
"""

from ariasim.apps.discovery.config import DiscoveryConfig, TermSpec, load_config, parse_config
from ariasim.apps.discovery.forward import (
    TERM_WEIGHTS,
    ObservableSpec,
    ShallowFlowForward,
    friction_law,
    simulate_observables,
)
from ariasim.apps.discovery.observations import ObservedData, load_observations
from ariasim.apps.discovery.synthetic import make_synthetic

__all__ = [
    "TERM_WEIGHTS",
    "DiscoveryConfig",
    "ObservableSpec",
    "ObservedData",
    "ShallowFlowForward",
    "TermSpec",
    "friction_law",
    "load_config",
    "load_observations",
    "make_synthetic",
    "parse_config",
    "simulate_observables",
]
