"""1-D shallow granular / landslide flow: Savage-Hutter and shallow-moment models.

Depth-averaged flow of a finite mass down a parametrised slope (an inclined chute into a
run-out zone, or a user-given profile), with a pluggable basal friction law (Coulomb,
Voellmy, viscous, yield, or any callable ``S(h, u, params)``) and, optionally, a velocity
profile expanded in scaled Legendre polynomials (the shallow-moment model cascade,
``moments = 0, 1, 2``). Observables: front position over time, run-out, deposit, gauges.

Typical use::

    from ariasim.simulators.shallowflow import simulate, voellmy
    res = simulate(friction=voellmy(0.3, 400.0), chute_angle=35.0, moments=0)
    res.runout, res.front_at([5.0, 10.0]), res.deposit

References:
    S. B. Savage and K. Hutter, J. Fluid Mech. 199 (1989) 177.
    J. Kowalski and M. Torrilhon, Commun. Comput. Phys. 25 (2019) 669.
"""

from ariasim.simulators.shallowflow.friction import (
    FrictionLaw,
    apply_friction,
    coulomb,
    turbulent,
    viscous,
    voellmy,
)
from ariasim.simulators.shallowflow.geometry import Slope
from ariasim.simulators.shallowflow.moments import MomentTensors, scaled_legendre
from ariasim.simulators.shallowflow.simulate import (
    ShallowFlowConfig,
    ShallowFlowResult,
    simulate,
)

__all__ = [
    "FrictionLaw",
    "MomentTensors",
    "ShallowFlowConfig",
    "ShallowFlowResult",
    "Slope",
    "apply_friction",
    "coulomb",
    "scaled_legendre",
    "simulate",
    "turbulent",
    "viscous",
    "voellmy",
]
