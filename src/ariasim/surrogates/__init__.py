"""Interpretable surrogates: the :class:`Formula` object and the learners that make one."""

from ariasim.surrogates.formula import Formula, Variable, refit_constants
from ariasim.surrogates.parse import FormulaSyntaxError, parse_expression

__all__ = ["Formula", "FormulaSyntaxError", "Variable", "parse_expression", "refit_constants"]
