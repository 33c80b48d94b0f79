"""Interpretable surrogates: the :class:`Formula` object and the learners that make one.

Names are imported lazily (PEP 562) so that ``from ariasim.surrogates import Formula``
does not import torch, pyoperon or scikit-learn; the command line stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Formula": "ariasim.surrogates.formula",
    "Variable": "ariasim.surrogates.formula",
    "refit_constants": "ariasim.surrogates.formula",
    "FormulaSyntaxError": "ariasim.surrogates.parse",
    "parse_expression": "ariasim.surrogates.parse",
    "SymbolicRegressor": "ariasim.surrogates.symbolic",
    "SymbolicDensity": "ariasim.surrogates.density",
    "goodness_of_fit": "ariasim.surrogates.density",
    "KANRegressor": "ariasim.surrogates.kan",
    "KANClassifier": "ariasim.surrogates.kan",
    "PolynomialClassifier": "ariasim.surrogates.polynomial",
    "PolynomialRegressor": "ariasim.surrogates.polynomial",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ariasim.surrogates' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
