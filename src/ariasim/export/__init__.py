"""Exports of learned formulas: the ROOT TFormula / Delphes formula language, printed by
:mod:`.tformula` and read back (parsed, evaluated, checked) by :mod:`.tformula_eval`.

The Delphes *card* writer is an application (:mod:`ariasim.apps.collider.delphes`): it
knows the collider response model; this package only knows :class:`~ariasim.surrogates.Formula`.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from ariasim.export.tformula import (
    TFormulaError,
    TFormulaExpression,
    check_card_formula,
    delphes_substitute,
    evaluate_card_formula,
    to_tformula,
)

__all__ = [
    "TFormulaError",
    "TFormulaExpression",
    "check_card_formula",
    "delphes_substitute",
    "evaluate_card_formula",
    "to_tformula",
]
