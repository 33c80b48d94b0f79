"""Bayesian model discovery: which constitutive terms does a simulator's outcome support?

Engineering simulators such as the shallow-flow model have a constitutive (friction) law
that cannot be observed directly; only the flow's outcome is (front position, run-out,
deposit). This package infers the dominant terms of that law:

* :mod:`~ariasim.discovery.terms`: the law as a sum of admissible terms with non-negative
  weights (Coulomb, turbulent, viscous, yield, ...), each dissipative and zero at rest by
  construction, so every fitted law is physically consistent: the constitutive artificial
  neural network (CANN) idea of Linka & Kuhl (2023), physics in the architecture, not in
  a penalty. The law is exported as a :class:`~ariasim.surrogates.Formula`.
* :class:`ConstitutiveNetwork`: learns the weights from direct ``(h, u, S)`` samples by
  non-negative least squares with L0 (best-subset) selection.
* :class:`SpikeSlabPrior`: the Bayesian version of that sparsity, a spike-and-slab prior
  per term (posterior inclusion probability per term).
* :class:`GPEmulator`, :func:`latin_hypercube`, :func:`calibrate`: Bayesian calibration of
  an expensive simulator through a Gaussian-process emulator with active learning (new runs
  where the emulated posterior is most uncertain), after Zhao & Kowalski (2022), then MCMC
  on the emulator and model averaging over the term subsets.

Names are imported lazily (PEP 562), so importing the package is cheap.

References:
    M. Linka, E. Kuhl, "A new family of constitutive artificial neural networks towards
    automated model discovery", Comput. Methods Appl. Mech. Eng. 403 (2023) 115731.
    H. Zhao, J. Kowalski, "Bayesian active learning for parameter calibration of landslide
    run-out models", Landslides 19 (2022) 2033-2045.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Term": "ariasim.discovery.terms",
    "TERMS": "ariasim.discovery.terms",
    "DEFAULT_TERMS": "ariasim.discovery.terms",
    "friction_formula": "ariasim.discovery.terms",
    "ConstitutiveNetwork": "ariasim.discovery.network",
    "TermPrior": "ariasim.discovery.prior",
    "SpikeSlabPrior": "ariasim.discovery.prior",
    "GPEmulator": "ariasim.discovery.emulator",
    "latin_hypercube": "ariasim.discovery.design",
    "Observations": "ariasim.discovery.calibration",
    "CalibrationResult": "ariasim.discovery.calibration",
    "calibrate": "ariasim.discovery.calibration",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ariasim.discovery' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
