"""Start-up of a process that only runs ariasim's compiled kernels (the command line).

numba, on its first compilation or cache load in a process, imports every installed
package that registers a ``numba_extensions`` entry point (here ``awkward`` and
``vector``, which pull in sympy and more): about 1 s of CPU before the first photon,
although no ariasim kernel uses their types. :func:`skip_numba_extensions` marks numba's
extension loading as done, so that a process that only runs ariasim's kernels (``ariasim
simulate photons``, the benchmarks) skips it. The library itself never calls it: in a
user's own process, other numba code may need those extensions.
"""

from __future__ import annotations

__all__ = ["skip_numba_extensions"]


def skip_numba_extensions() -> bool:
    """Stop numba from importing third-party ``numba_extensions`` in this process.

    Call it before the first kernel runs. Returns False if numba had already loaded them
    (nothing to save), True otherwise. Only for processes that run no numba code using
    awkward, vector or other extension types.

    Example (not run here: it would change the test process)::

        from ariasim.simulators.photons.startup import skip_numba_extensions
        skip_numba_extensions()  # first thing in a command, before any kernel
    """
    from numba.core import entrypoints

    if getattr(entrypoints, "_already_initialized", True):
        return False
    entrypoints._already_initialized = True
    return True
