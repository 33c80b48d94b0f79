"""Photon application: surrogates of the photon Monte Carlo of a neutrino telescope.

:mod:`.surrogate` (training data from :func:`ariasim.simulators.photons.tabulate_shells`,
:class:`PhotonSurrogate`, the inverse fit), :mod:`.pandel` (the classic analytic
arrival-time model, the baseline) and :mod:`.demo` (the end-to-end pipeline behind
``ariasim demo``).

References:
    D. Pandel, Diploma thesis, Humboldt-Universitaet zu Berlin (1996);
    N. van Eijndhoven et al., Astropart. Phys. 28 (2007) 456.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PhotonSurrogate": "ariasim.apps.photons.surrogate",
    "Pandel": "ariasim.apps.photons.pandel",
    "PANDEL_CASCADE": "ariasim.apps.photons.pandel",
    "DemoConfig": "ariasim.apps.photons.demo",
    "run_demo": "ariasim.apps.photons.demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ariasim.apps.photons' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
