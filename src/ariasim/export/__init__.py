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

from ariasim.export.tformula import (
    TFormulaError,
    TFormulaExpression,
    check_card_formula,
    delphes_substitute,
    evaluate_card_formula,
    to_tformula,
)
from ariasim.surrogates.escape import c_comment_text, latex_text, tcl_comment, tcl_text

__all__ = [
    "TFormulaError",
    "TFormulaExpression",
    "c_comment_text",
    "check_card_formula",
    "delphes_substitute",
    "evaluate_card_formula",
    "latex_text",
    "tcl_comment",
    "tcl_text",
    "to_tformula",
]
