r"""The admissible terms of a basal friction law and the law as a :class:`Formula`.

A friction law is the magnitude ``S(h, u) >= 0`` (m^2/s^2: basal shear stress over density)
of the basal resistance at depth ``h`` (m) and speed ``u = |velocity|`` (m/s). Here it is a
sum of *admissible* terms with non-negative weights::

    S(h, u) = sum_k w_k phi_k(h, u),   w_k >= 0

=========== ========== ======== ===================== ===================================
term        weight     unit     basis ``phi_k``       regime
=========== ========== ======== ===================== ===================================
coulomb     mu         1        ``g h cos_phi``       dry (Mohr-Coulomb) friction
turbulent   inv_xi     s^2/m    ``g u^2``             Voellmy turbulent drag, 1/xi
viscous     nu         m^2/s    ``u / h``             laminar (Newtonian) shear
yield       tau        m^2/s^2  ``1``                 constant yield stress (Bingham)
collisional beta       m^2      ``u^2 / h^2``         Bagnold grain-inertia regime
=========== ========== ======== ===================== ===================================

The first four are :data:`DEFAULT_TERMS`, exactly the shallow-flow simulator's
``FrictionLaw(mu, xi=1/inv_xi, nu, tau)``. ``collisional`` is registered in :data:`TERMS`
as an optional extra candidate: Bagnold's (1954) grain-inertia stress ``~ rho d^2 (du/dz)^2``
with a depth-averaged shear rate ``~ u/h`` gives, over density, ``beta u^2/h^2``, where
``beta`` (m^2) lumps the grain diameter squared and a Bagnold constant.

Why every such law is admissible (physics in the architecture, the CANN idea of Linka &
Kuhl 2023, not a penalty):

* every basis ``phi_k(h, u) >= 0`` for ``h > 0, u >= 0`` and ``0 <= cos_phi <= 1``, so any
  non-negative weights give ``S >= 0``; the resistance opposes the motion, so its power
  ``S u >= 0``: the law is dissipative for every admissible weight vector;
* the rate-dependent terms (turbulent, viscous, collisional) vanish at rest (``u = 0``);
* the Coulomb and yield terms do not vanish at rest: they are *rest thresholds*. At rest
  the basal reaction is bounded by them (it balances any smaller driving force) and is
  never a driving force itself; the simulator applies them semi-implicitly, so friction
  can stop a cell but never reverses its velocity.

:func:`friction_formula` turns a weight mapping (keyed by term name) into a :class:`Formula`
of ``h, u, cos_phi`` with zero-weight terms left out.

References:
    M. Linka, E. Kuhl, "A new family of constitutive artificial neural networks towards
    automated model discovery", Comput. Methods Appl. Mech. Eng. 403 (2023) 115731.
    R. A. Bagnold, "Experiments on a gravity-free dispersion of large solid spheres in a
    Newtonian fluid under shear", Proc. R. Soc. Lond. A 225 (1954) 49-63.
    A. Voellmy, "Ueber die Zerstoerungskraft von Lawinen", Schweiz. Bauzeitung 73 (1955).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ariasim.errors import ConfigError
from ariasim.surrogates.formula import Formula, Variable

__all__ = ["DEFAULT_TERMS", "H_FLOOR", "TERMS", "Term", "friction_formula"]

#: Depths below this (m) are raised to it in :meth:`Term.basis`, so terms dividing by ``h``
#: stay finite as ``h -> 0`` (a dry cell).
H_FLOOR = 1e-12

_Basis = Callable[[np.ndarray, np.ndarray, float, np.ndarray], np.ndarray]
_Symbolic = Callable[[sp.Symbol, sp.Symbol, sp.Expr, sp.Symbol], sp.Expr]


@dataclass(frozen=True)
class Term:
    """One admissible term ``w * phi(h, u)`` of a friction law.

    Arguments:
        name: Term name, the key used everywhere (``"coulomb"``, ``"turbulent"``, ...).
        weight: Name of its non-negative weight (``"mu"``, ``"inv_xi"``, ...).
        weight_unit: Unit of the weight, so that ``w * phi`` is in m^2/s^2.
        basis_text: The basis ``phi`` as formula text in ``g, h, u, cos_phi``.
        description: What the term models.
        rest_threshold: True for terms that do not vanish at ``u = 0`` (Coulomb, yield): a
            reaction bounded by the threshold at rest, never a driving force.
        function: ``phi(h, u, g, cos_phi)`` on arrays (``h`` already floored at
            :data:`H_FLOOR`, ``u >= 0``).
        symbolic: The same basis as a sympy expression of ``(h, u, g, cos_phi)``.

    Example:
        >>> TERMS["turbulent"].basis(np.array([1.0, 2.0]), np.array([0.0, 10.0]))
        array([  0., 981.])
        >>> TERMS["coulomb"].weight, TERMS["coulomb"].rest_threshold
        ('mu', True)
    """

    name: str
    weight: str
    weight_unit: str
    basis_text: str
    description: str
    rest_threshold: bool = False
    function: _Basis = field(default=lambda h, u, g, c: np.ones_like(h), repr=False)
    symbolic: _Symbolic = field(default=lambda h, u, g, c: sp.Integer(1), repr=False)

    def basis(self, h: Any, u: Any, *, g: float = 9.81, cos_phi: Any = 1.0) -> np.ndarray:
        """``phi(h, |u|)`` on arrays (broadcast together); ``h`` floored at :data:`H_FLOOR`."""
        h_arr = np.maximum(np.asarray(h, dtype=float), H_FLOOR)
        u_arr = np.abs(np.asarray(u, dtype=float))
        c_arr = np.asarray(cos_phi, dtype=float)
        h_arr, u_arr, c_arr = np.broadcast_arrays(h_arr, u_arr, c_arr)
        return np.asarray(self.function(h_arr, u_arr, float(g), c_arr), dtype=float)


TERMS: dict[str, Term] = {
    t.name: t
    for t in (
        Term(
            "coulomb",
            "mu",
            "1",
            "g*h*cos_phi",
            "Coulomb (dry) friction: mu is the tangent of the basal friction angle",
            rest_threshold=True,
            function=lambda h, u, g, c: g * h * c,
            symbolic=lambda h, u, g, c: g * h * c,
        ),
        Term(
            "turbulent",
            "inv_xi",
            "s^2/m",
            "g*u^2",
            "Voellmy turbulent drag g u^2 / xi (inv_xi = 1/xi)",
            function=lambda h, u, g, c: g * u * u,
            symbolic=lambda h, u, g, c: g * u**2,
        ),
        Term(
            "viscous",
            "nu",
            "m^2/s",
            "u/h",
            "laminar viscous shear nu u / h",
            function=lambda h, u, g, c: u / h,
            symbolic=lambda h, u, g, c: u / h,
        ),
        Term(
            "yield",
            "tau",
            "m^2/s^2",
            "1",
            "constant yield stress over density (Bingham)",
            rest_threshold=True,
            function=lambda h, u, g, c: np.ones_like(h),
            symbolic=lambda h, u, g, c: sp.Integer(1),
        ),
        Term(
            "collisional",
            "beta",
            "m^2",
            "u^2/h^2",
            "Bagnold (1954) grain-inertia stress beta u^2 / h^2 (beta ~ grain diameter^2)",
            function=lambda h, u, g, c: (u / h) ** 2,
            symbolic=lambda h, u, g, c: u**2 / h**2,
        ),
    )
}

#: The terms of the shallow-flow simulator's ``FrictionLaw``, in its coefficient order.
DEFAULT_TERMS: tuple[str, ...] = ("coulomb", "turbulent", "viscous", "yield")


def check_weights(weights: Mapping[str, Any], *, parameter: str = "weights") -> dict[str, float]:
    """Validate a ``{term name: weight}`` mapping: known names, finite weights >= 0.

    Raises :class:`ConfigError` naming the offending term.

    Example:
        >>> check_weights({"coulomb": 0.3, "turbulent": 0.0025})
        {'coulomb': 0.3, 'turbulent': 0.0025}
    """
    if not isinstance(weights, Mapping):
        raise ConfigError(
            f"expected a mapping of term name to weight, got {type(weights).__name__}",
            parameter=parameter,
        )
    out: dict[str, float] = {}
    for name, w in weights.items():
        if name not in TERMS:
            raise ConfigError(
                f"unknown friction term {name!r}; known: {sorted(TERMS)}",
                parameter=f"{parameter}.{name}",
            )
        if isinstance(w, bool) or not isinstance(w, int | float | np.integer | np.floating):
            raise ConfigError(
                f"weight of term {name!r} must be a number, got {w!r}",
                parameter=f"{parameter}.{name}",
            )
        if not math.isfinite(float(w)) or float(w) < 0:
            raise ConfigError(
                f"weight of term {name!r} must be finite and >= 0, got {w!r}",
                parameter=f"{parameter}.{name}",
            )
        out[str(name)] = float(w)
    return out


def friction_formula(
    weights: Mapping[str, float],
    *,
    g: float = 9.81,
    metadata: Mapping[str, Any] | None = None,
) -> Formula:
    """The friction law ``S = sum_k w_k phi_k(h, u, cos_phi)`` as a :class:`Formula`.

    Arguments:
        weights: ``{term name: weight}``, weights finite and >= 0; zero weights are left out.
        g: Gravity (m/s^2), substituted as a number.
        metadata: Extra metadata; ``"terms"`` (``{name: weight}``, the non-zero weights)
            and ``"g"`` are added.

    Returns:
        A formula of ``h`` (m), ``u`` (m/s, the speed) and ``cos_phi`` with output ``S``
        (m^2/s^2).

    Raises:
        ConfigError: An unknown term name, or a negative or non-finite weight (named).

    Example:
        >>> f = friction_formula({"coulomb": 0.3, "turbulent": 1 / 400, "viscous": 0.0})
        >>> sorted(f.metadata["terms"])
        ['coulomb', 'turbulent']
        >>> round(float(f(h=1.0, u=10.0, cos_phi=1.0)), 6)  # 0.3 g + g 100 / 400
        5.3955
    """
    checked = check_weights(weights)
    if isinstance(g, bool) or not isinstance(g, int | float) or not (math.isfinite(g) and g > 0):
        raise ConfigError(f"g must be a finite number > 0, got {g!r}", parameter="g")
    h, u, c = (sp.Symbol(n, real=True) for n in ("h", "u", "cos_phi"))
    g_num = sp.Float(float(g))
    kept = {name: w for name, w in checked.items() if w > 0}
    order = [n for n in TERMS if n in kept]
    expr: sp.Expr = sp.Add(*[sp.Float(kept[n]) * TERMS[n].symbolic(h, u, g_num, c) for n in order])
    meta = dict(metadata or {})
    meta["terms"] = {n: kept[n] for n in order}
    meta["g"] = float(g)
    return Formula(
        expr,
        [
            Variable("h", unit="m", description="flow depth"),
            Variable("u", unit="m/s", description="basal speed |u|"),
            Variable("cos_phi", description="cosine of the bed slope angle"),
        ],
        output=Variable("S", unit="m^2/s^2", description="basal shear stress over density"),
        metadata=meta,
    )
