"""Exports of learned models: Delphes cards (:mod:`.delphes`) and the TFormula language
(:mod:`.tformula`).

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from ariasim.export.delphes import card_text, lint_card_formula, module_blocks, write_delphes_card
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
    "card_text",
    "check_card_formula",
    "delphes_substitute",
    "evaluate_card_formula",
    "lint_card_formula",
    "module_blocks",
    "to_tformula",
    "write_delphes_card",
]
