"""Exports of learned formulas: the ROOT TFormula / Delphes formula language, printed by
:mod:`.tformula` and read back (parsed, evaluated, checked) by :mod:`.tformula_eval`.

The Delphes *card* writer is an application (:mod:`ariasim.apps.collider.delphes`): it
knows the collider response model; this package only knows :class:`~ariasim.surrogates.Formula`.

Text copied from a model file into a card or code goes through the escaping helpers
:func:`tcl_text` (refuse), :func:`tcl_comment`, :func:`c_comment_text` and
:func:`latex_text` (escape), defined in :mod:`ariasim.surrogates.escape`.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from __future__ import annotations

import importlib
from typing import Any

# names imported lazily (PEP 562): the reader (tformula_eval) does not need sympy, the
# printer (tformula) does, and the fast simulation reads card text without sympy
_EXPORTS = {
    "TFormulaError": "ariasim.export.tformula_eval",
    "TFormulaExpression": "ariasim.export.tformula_eval",
    "check_card_formula": "ariasim.export.tformula_eval",
    "delphes_substitute": "ariasim.export.tformula_eval",
    "evaluate_card_formula": "ariasim.export.tformula_eval",
    "to_tformula": "ariasim.export.tformula",
    "c_comment_text": "ariasim.surrogates.escape",
    "latex_text": "ariasim.surrogates.escape",
    "tcl_comment": "ariasim.surrogates.escape",
    "tcl_text": "ariasim.surrogates.escape",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ariasim.export' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
