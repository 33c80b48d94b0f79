"""Domain shifts: learn the difference between two datasets and correct events one by one.

Two-sample learners (the contract is in :mod:`ariasim.shift.base`): fitted on a pooled table
of a *source* and a *target* sample with the domain as the label, they either move events
(morphers: :class:`FlowMorpher`, :class:`FlowMatchingMorpher`,
:class:`~ariasim.shift.quantile.ChainedQuantileMorpher`) or weight them (reweighters:
:class:`ClassifierReweighter`), or both (:class:`MorphReweighter`: a morpher, then a
reweighter for the residual it leaves). :mod:`ariasim.shift.features` handles counts, spikes, tails
and bounds; :mod:`ariasim.shift.diagnostics` and :mod:`ariasim.shift.inject` measure whether
a correction worked; :func:`load` reads any saved model back (JSON + safetensors, no pickle).
"""

from ariasim.shift.base import stack
from ariasim.shift.chain import MorphReweighter
from ariasim.shift.features import FeatureCodec
from ariasim.shift.flow import FlowMorpher
from ariasim.shift.flow_matching import FlowMatchingMorpher
from ariasim.shift.persist import load
from ariasim.shift.reweight import ClassifierReweighter

__all__ = [
    "ClassifierReweighter",
    "FeatureCodec",
    "FlowMatchingMorpher",
    "FlowMorpher",
    "MorphReweighter",
    "load",
    "stack",
]
