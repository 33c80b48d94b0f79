"""Space-filling designs of simulator runs: Latin hypercubes, also over a spike-and-slab prior.

A Latin hypercube (McKay, Beckman & Conover 1979) puts one point in each of ``n``
equal-probability strata of every coordinate; scipy's implementation is used. Under a
spike-and-slab prior the design follows the prior's structure: for every term a stratified
share ``inclusion`` of the points has the term switched on, the others sit on the face where
its weight is zero, so every subset model gets design points where it lives.

References:
    M. D. McKay, R. J. Beckman and W. J. Conover, "A comparison of three methods for
    selecting values of input variables in the analysis of output from a computer code",
    Technometrics 21 (1979) 239.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from ariasim.discovery.prior import SpikeSlabPrior
from ariasim.errors import check_int
from ariasim.utils import SeedLike, as_generator, spawn_seeds

__all__ = ["latin_hypercube", "spike_slab_design"]


def latin_hypercube(n: int, d: int, seed: SeedLike = 0) -> np.ndarray:
    """``n`` points of a ``d``-dimensional Latin hypercube in ``[0, 1)^d`` (centred in
    random positions within their strata; scipy's ``qmc.LatinHypercube``).

    Example:
        >>> x = latin_hypercube(5, 2, seed=1)
        >>> x.shape, sorted(np.floor(x[:, 0] * 5).astype(int).tolist())
        ((5, 2), [0, 1, 2, 3, 4])
    """
    n, d = check_int("n", n), check_int("d", d)
    rng = as_generator(seed)
    return np.asarray(qmc.LatinHypercube(d=int(d), seed=rng).random(int(n)))


def spike_slab_design(prior: SpikeSlabPrior, n: int, seed: SeedLike = 0) -> np.ndarray:
    """``n`` weight vectors: a Latin hypercube over the slabs, and per term a stratified
    random share ``inclusion`` of the rows switched on (the rest set to zero).

    Example:
        >>> from ariasim.discovery.prior import TermPrior
        >>> prior = SpikeSlabPrior([TermPrior("a", 1.0), TermPrior("b", 2.0, inclusion=1.0)])
        >>> w = spike_slab_design(prior, 8, seed=0)
        >>> int((w[:, 0] == 0).sum()), int((w[:, 1] == 0).sum())
        (4, 0)
    """
    s_lhs, s_mask = spawn_seeds(seed, 2)
    u = latin_hypercube(n, len(prior), s_lhs)
    w = prior.low + u * (prior.high - prior.low)
    rng = as_generator(s_mask)
    for k, p in enumerate(prior.inclusion):
        on = int(np.floor(p * n + rng.random()))  # stratified: floor or ceil of p n
        keep = np.zeros(n, dtype=bool)
        keep[rng.permutation(n)[:on]] = True
        w[~keep, k] = 0.0
    return w
