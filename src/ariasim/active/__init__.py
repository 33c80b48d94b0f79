"""Active simulation control: spend a pipeline's expensive stages on the events that matter.

Importance sampling between stages that stays unbiased: an event goes on with probability
a(x) > 0 and carries weight 1/a(x) (REFERENCE.md section 4).
"""

from ariasim.active.pipeline import ControlPoint, Pipeline, Stage

__all__ = ["ControlPoint", "Pipeline", "Stage"]
