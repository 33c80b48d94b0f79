"""Domain-shift applications (issue 12 section 3): datasets and their correction.

:mod:`.ice` (per-module hit features simulated with an old and a new ice model) and
:mod:`.photon_surrogate` (the symbolic photon surrogate against the photon Monte Carlo).
"""

__all__: list[str] = []
