"""Tracker simulation and track fit, one idea per module.

* :mod:`.physics`: material effects (Highland multiple scattering, Bethe-Bloch ionisation,
  conversion energy sharing) and constants (``C_LIGHT``, ``M_E_GEV``);
* :mod:`.helix`: helix geometry (crossing a cylinder, the calorimeter face);
* :mod:`.propagation`: propagate truth particles through beam pipe and tracker layers with
  multiple scattering, energy loss, bremsstrahlung, conversions and nuclear interactions,
  recording smeared hits (:func:`propagate`);
* :mod:`.fit`: the global chi2 helix fit with correlated multiple-scattering covariance
  (:func:`fit_tracks`) and the analytic pT resolution (:func:`expected_pt_resolution`).

The public names of all four are importable from here.

References:
    V. L. Highland, NIM 129 (1975) 497; G. R. Lynch and O. I. Dahl, NIM B 58 (1991) 6.
    R. L. Gluckstern, "Uncertainties in track momentum and direction, due to multiple
    scattering and measurement errors", NIM 24 (1963) 381.
    R. Frühwirth, "Application of Kalman filtering to track and vertex fitting",
    NIM A 262 (1987) 444.
    H. Bethe and W. Heitler, Proc. R. Soc. A 146 (1934) 83 (bremsstrahlung, pair production).
    Particle Data Group, "Passage of particles through matter" (Bethe-Bloch, Highland,
    7/9 X0 pair-production length, interaction lengths).

Arguments:
    See :func:`propagate`, :func:`fit_tracks` and :func:`expected_pt_resolution`.
"""

from __future__ import annotations

from ariasim.simulators.collider.tracking.fit import expected_pt_resolution, fit_tracks
from ariasim.simulators.collider.tracking.helix import face_position, helix_to_radius
from ariasim.simulators.collider.tracking.physics import (
    C_LIGHT,
    M_E_GEV,
    bethe_bloch_dedx,
    highland_theta0,
    sample_pair_fraction,
)
from ariasim.simulators.collider.tracking.propagation import TrackerSimulation, propagate

__all__ = [
    "C_LIGHT",
    "M_E_GEV",
    "TrackerSimulation",
    "bethe_bloch_dedx",
    "expected_pt_resolution",
    "face_position",
    "fit_tracks",
    "helix_to_radius",
    "highland_theta0",
    "propagate",
    "sample_pair_fraction",
]
