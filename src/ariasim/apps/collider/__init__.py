"""Detector-response learning, the ultra-fast simulation and their validation.

:mod:`.model` (the response model), :mod:`.objects` (object types, learning rows),
:mod:`.regions` (learned |eta| regions), :mod:`.card` (formulas in the card's variables),
:mod:`.binned` (symbolic regression on binned estimates), :mod:`.learn` (the
:class:`~.learn.ResponseLearner` meta-estimator), :mod:`.stock` (the hand-made-practice
baseline card), :mod:`.fastsim` (apply a model with Delphes semantics), :mod:`.compare`
(fast vs full), :mod:`.workflow` (the ``ariasim fastsim`` run), :mod:`.report`.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel

__all__ = ["ObjectResponse", "Region", "ResponseModel"]
