"""The spike-and-slab prior over the non-negative weights of a constitutive network.

Each term ``k`` of the network is either excluded (its weight is exactly zero: the *spike*)
or included with a weight drawn uniformly from ``[low, high]`` (the *slab*); inclusion is
a Bernoulli variable with prior probability ``inclusion``. The prior over the ``2^K`` term
subsets is the product of the Bernoulli probabilities, so the posterior inclusion
probability of a term is the posterior mass of the subsets that contain it (Mitchell &
Beauchamp 1988; George & McCulloch 1993). Unlike an L1 penalty this does not shrink the
weights that stay, and unlike L2 it sets excluded weights to exactly zero: it is the
Bayesian form of L0 (best-subset) selection.

References:
    T. J. Mitchell and J. J. Beauchamp, "Bayesian variable selection in linear
    regression", J. Am. Stat. Assoc. 83 (1988) 1023.
    E. I. George and R. E. McCulloch, "Variable selection via Gibbs sampling", J. Am. Stat.
    Assoc. 88 (1993) 881.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ariasim.errors import ConfigError
from ariasim.utils import SeedLike, as_generator

__all__ = ["SpikeSlabPrior", "TermPrior"]


@dataclass(frozen=True)
class TermPrior:
    """Prior of one term's weight: excluded (zero) or uniform on ``[low, high]``.

    Arguments:
        name: The term's name (e.g. ``"coulomb"``).
        high: Upper end of the slab (> low, finite).
        low: Lower end of the slab (>= 0). Default 0.
        inclusion: Prior probability that the term is included, in [0, 1]; 1 keeps it
            always, 0 never. Default 0.5 (every subset equally likely a priori).

    Example:
        >>> TermPrior("coulomb", high=0.8).inclusion
        0.5
        >>> TermPrior("coulomb", high=-1.0)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'coulomb.high': must be finite and > low ...
    """

    name: str
    high: float
    low: float = 0.0
    inclusion: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"must be a non-empty string, got {self.name!r}", parameter="name")
        for key in ("high", "low", "inclusion"):
            val = getattr(self, key)
            if isinstance(val, bool) or not isinstance(val, int | float):
                raise ConfigError(f"must be a number, got {val!r}", parameter=f"{self.name}.{key}")
        if not (np.isfinite(self.low) and self.low >= 0):
            raise ConfigError(
                f"must be finite and >= 0, got {self.low}", parameter=f"{self.name}.low"
            )
        if not (np.isfinite(self.high) and self.high > self.low):
            raise ConfigError(
                f"must be finite and > low ({self.low}), got {self.high}",
                parameter=f"{self.name}.high",
            )
        if not (0.0 <= self.inclusion <= 1.0):
            raise ConfigError(
                f"must be in [0, 1], got {self.inclusion}", parameter=f"{self.name}.inclusion"
            )


class SpikeSlabPrior:
    """The joint prior of ``K`` independent :class:`TermPrior` s.

    Weights live in the box ``[0, high]^K``; the emulator works in the unit cube
    ``w / high`` (:meth:`to_unit`), where an excluded term is the face ``x_k = 0``.

    Example:
        >>> terms = [TermPrior("coulomb", 0.8), TermPrior("yield", 50.0, inclusion=1)]
        >>> prior = SpikeSlabPrior(terms)
        >>> prior.names, len(prior.models())
        (['coulomb', 'yield'], 2)
        >>> round(prior.log_model_prior((False, True)), 4)  # ln 0.5
        -0.6931
    """

    def __init__(self, terms: Sequence[TermPrior]):
        terms = tuple(terms)
        if not terms:
            raise ConfigError("needs at least one term", parameter="terms")
        for t in terms:
            if not isinstance(t, TermPrior):
                raise ConfigError(f"expected TermPrior, got {type(t).__name__}", parameter="terms")
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate term names in {names}", parameter="terms")
        self.terms = terms

    @property
    def names(self) -> list[str]:
        """Term names, in the order of the weight columns."""
        return [t.name for t in self.terms]

    @property
    def low(self) -> np.ndarray:
        """Lower slab ends."""
        return np.array([t.low for t in self.terms])

    @property
    def high(self) -> np.ndarray:
        """Upper slab ends (the box the emulator covers is ``[0, high]``)."""
        return np.array([t.high for t in self.terms])

    @property
    def inclusion(self) -> np.ndarray:
        """Prior inclusion probabilities."""
        return np.array([t.inclusion for t in self.terms])

    def __len__(self) -> int:
        return len(self.terms)

    def __repr__(self) -> str:
        return f"SpikeSlabPrior({list(self.terms)!r})"

    def models(self) -> list[tuple[bool, ...]]:
        """Every term subset with non-zero prior probability, as inclusion masks."""
        choices = [
            (True,) if t.inclusion == 1 else (False,) if t.inclusion == 0 else (False, True)
            for t in self.terms
        ]
        return [tuple(m) for m in itertools.product(*choices)]

    def log_model_prior(self, mask: Sequence[bool] | np.ndarray) -> float:
        """ln of the prior probability of the subset ``mask``."""
        p = self.inclusion
        m = np.asarray(mask, dtype=bool)
        with np.errstate(divide="ignore"):
            return float(np.sum(np.where(m, np.log(p), np.log1p(-p))))

    def to_unit(self, weights: np.ndarray) -> np.ndarray:
        """Weights -> the emulator's unit cube ``w / high``."""
        return np.asarray(weights, dtype=float) / self.high

    def from_unit(self, x: np.ndarray) -> np.ndarray:
        """The emulator's unit cube -> weights."""
        return np.asarray(x, dtype=float) * self.high

    def slab(self, u: np.ndarray, mask: Sequence[bool] | np.ndarray) -> np.ndarray:
        """Weights of subset ``mask`` from slab coordinates ``u`` in ``[0, 1]^d`` (``d`` the
        number of included terms): ``low + u (high - low)`` there, zero elsewhere."""
        m = np.asarray(mask, dtype=bool)
        u = np.atleast_2d(np.asarray(u, dtype=float))
        w = np.zeros((u.shape[0], len(self)))
        w[:, m] = self.low[m] + u * (self.high - self.low)[m]
        return w

    def sample(self, n: int, seed: SeedLike = 0) -> np.ndarray:
        """``n`` weight vectors drawn from the prior (zeros for excluded terms)."""
        rng = as_generator(seed)
        z = rng.random((n, len(self))) < self.inclusion
        v = self.low + rng.random((n, len(self))) * (self.high - self.low)
        return np.where(z, v, 0.0)
