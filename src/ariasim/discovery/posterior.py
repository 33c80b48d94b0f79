"""The emulated likelihood and the spike-and-slab posterior: MCMC per term subset, evidence,
inclusion probabilities.

Observations ``y`` with Gaussian errors ``sigma`` are compared with the emulator's
prediction ``m(w)``, whose own variance ``v(w)`` is added to the error (Kennedy & O'Hagan
2001): ``ln L(w) = -1/2 sum_j [(y_j - m_j)^2 / (sigma_j^2 + v_j) + ln 2 pi (sigma_j^2 + v_j)]``.

The spike-and-slab posterior is computed exactly by enumerating the term subsets (``2^K``,
K up to about 8): for each subset the affine-invariant ensemble sampler (emcee; Goodman &
Weare 2010) draws the included weights from their posterior, and the subset's evidence
``Z_m`` (the likelihood averaged over its slab prior) is estimated by importance sampling
with a defensive mixture (Hesterberg 1995) of a Gaussian fitted to the chain and the slab
prior, which bounds the importance weights. Posterior subset probabilities are
``P(m | y) ∝ P(m) Z_m``; a term's inclusion probability is the summed probability of the
subsets that hold it. Subsets whose best likelihood is far below the best subset's (more than
``skip_below`` in ln L) are not sampled: their evidence is the plain average over a Latin
hypercube of their slab, which is enough to show they do not matter.

References:
    M. C. Kennedy and A. O'Hagan, "Bayesian calibration of computer models", J. R. Stat.
    Soc. B 63 (2001) 425.
    J. Goodman and J. Weare, "Ensemble samplers with affine invariance", Commun. Appl. Math.
    Comput. Sci. 5 (2010) 65; D. Foreman-Mackey et al., "emcee: the MCMC hammer", PASP 125
    (2013) 306.
    T. Hesterberg, "Weighted average importance sampling and defensive mixture
    distributions", Technometrics 37 (1995) 185.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ariasim.discovery.design import latin_hypercube
from ariasim.discovery.emulator import GPEmulator
from ariasim.discovery.prior import SpikeSlabPrior
from ariasim.errors import ConfigError
from ariasim.utils import SeedLike, spawn_seeds

__all__ = [
    "EmulatedLikelihood",
    "ModelPosterior",
    "Observations",
    "gaussian_loglike",
    "log_mean_exp",
    "model_average",
    "run_emcee",
    "sample_model",
    "unit_box_logp",
]


@dataclass(frozen=True)
class Observations:
    """Observed values with their Gaussian standard deviations.

    Example:
        >>> obs = Observations([10.0, 20.0], [1.0, 1.0], ["front@2s", "front@4s"])
        >>> obs.values.tolist(), len(obs)
        ([10.0, 20.0], 2)
    """

    values: np.ndarray
    sigma: np.ndarray
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        v = np.atleast_1d(np.asarray(self.values, dtype=float))
        s = np.broadcast_to(np.asarray(self.sigma, dtype=float), v.shape).copy()
        names = list(self.names) or [f"y{j}" for j in range(v.size)]
        if v.ndim != 1 or v.size == 0:
            raise ConfigError("must be a non-empty 1-D array", parameter="observations.values")
        if not np.isfinite(v).all():
            raise ConfigError("must be finite", parameter="observations.values")
        if not (np.isfinite(s).all() and (s > 0).all()):
            raise ConfigError("must be finite and > 0", parameter="observations.sigma")
        if len(names) != v.size:
            raise ConfigError(
                f"{len(names)} names for {v.size} values", parameter="observations.names"
            )
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "sigma", s)
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return int(self.values.size)


def gaussian_loglike(Y: np.ndarray, observations: Observations) -> np.ndarray:
    """ln L of simulator outputs ``Y`` (n, m) (no emulator: the exact likelihood of runs).

    Example:
        >>> obs = Observations([0.0], [1.0])
        >>> round(float(gaussian_loglike(np.array([[1.0]]), obs)[0]), 4)  # -1/2 - ln sqrt(2 pi)
        -1.4189
    """
    s2 = observations.sigma**2
    r = np.atleast_2d(Y) - observations.values
    return -0.5 * ((r * r) / s2 + np.log(2 * np.pi * s2)).sum(1)


class EmulatedLikelihood:
    """``ln L(w)`` through a fitted :class:`GPEmulator` (see the module docstring).

    Arguments:
        emulator: Fitted on the unit cube ``prior.to_unit(w)``.
        observations: The data.
        prior: Maps weights to the emulator's unit cube.

    Example:
        >>> from ariasim.discovery.prior import TermPrior
        >>> prior = SpikeSlabPrior([TermPrior("a", 2.0)])
        >>> w = np.linspace(0, 2, 11)[:, None]
        >>> em = GPEmulator().fit(prior.to_unit(w), np.column_stack([w[:, 0], w[:, 0] ** 2]))
        >>> like = EmulatedLikelihood(em, Observations([1.0, 1.0], [0.1, 0.1]), prior)
        >>> float(w[np.argmax(like(w)), 0])
        1.0
    """

    def __init__(self, emulator: GPEmulator, observations: Observations, prior: SpikeSlabPrior):
        self.emulator = emulator
        self.observations = observations
        self.prior = prior
        if emulator.components_.shape[1] != len(observations):
            raise ConfigError(
                f"the emulator has {emulator.components_.shape[1]} observables, the "
                f"observations {len(observations)}",
                parameter="observations",
            )
        # loadings of the component scores on the observables, in observable units
        self._loadings = emulator.components_ * emulator.y_scale_
        # data error + the simulator's jitter (nugget) + the variance the basis leaves out
        self._fixed_var = (
            observations.sigma**2
            + (emulator.truncation_var_ + emulator.nugget_var_ @ emulator.components_**2)
            * emulator.y_scale_**2
        )

    def _parts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = self.prior.to_unit(np.atleast_2d(weights))
        sm, sv = self.emulator.predict_scores(x)
        mean = self.emulator.y_mean_ + sm @ self._loadings
        var = self._fixed_var + sv @ self._loadings**2
        return mean, var, sv

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        """``ln L`` at the rows of ``weights`` (n, K)."""
        mean, var, _ = self._parts(weights)
        r = self.observations.values - mean
        return -0.5 * ((r * r) / var + np.log(2 * np.pi * var)).sum(1)

    def moments(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``ln L`` and the variance of ``ln L`` that more simulator runs can remove.

        The variance is that of the quadratic form in the Gaussian component scores
        (exact for it: first order ``g' V g`` plus second order ``tr((M V)^2) / 2``), with
        the error variances held fixed.
        """
        mean, var, sv = self._parts(weights)
        r = (self.observations.values - mean) / var  # (n, m)
        ll = -0.5 * ((self.observations.values - mean) ** 2 / var + np.log(2 * np.pi * var)).sum(1)
        g = r @ self._loadings.T  # (n, c)
        first = (g * g * sv).sum(1)
        a = self._loadings  # (c, m)
        m = np.einsum("cj,dj,nj->ncd", a, a, 1.0 / var)
        sq = np.sqrt(sv)
        mv = m * sq[:, :, None] * sq[:, None, :]
        second = 0.5 * (mv * mv).sum((1, 2))
        return ll, first + second


def run_emcee(logp: Any, start: np.ndarray, steps: int, seed: SeedLike) -> tuple[np.ndarray, float]:
    """Run emcee's ensemble sampler (vectorised ``logp``) from the walkers ``start``;
    return the second half of the chain, flattened, and the mean acceptance fraction."""
    import emcee

    walkers, d = start.shape
    sampler = emcee.EnsembleSampler(walkers, d, logp, vectorize=True)
    sampler.random_state = np.random.RandomState(spawn_seeds(seed, 1)[0] % (2**32)).get_state()
    sampler.run_mcmc(start, int(steps), progress=False)
    chain = sampler.get_chain(discard=int(steps) // 2, flat=True)
    return chain, float(np.mean(sampler.acceptance_fraction))


@dataclass
class ModelPosterior:
    """The posterior of one term subset.

    Attributes:
        mask: Which terms are included.
        log_prior: ln P(m).
        log_evidence: ln Z_m (the likelihood averaged over the slab prior).
        log_evidence_se: Monte-Carlo standard error of ``log_evidence``.
        samples: Posterior draws of the weights (zeros for excluded terms), (S, K).
        method: ``"mcmc"``, ``"prior-sampling"`` or ``"point"`` (no included term).
        acceptance: Mean acceptance fraction of the sampler (NaN without MCMC).

    Example:
        >>> mp = ModelPosterior((True, False), np.log(0.25), -3.0, 0.01, np.ones((5, 2)), "mcmc")
        >>> mp.samples.shape, mp.method
        ((5, 2), 'mcmc')
    """

    mask: tuple[bool, ...]
    log_prior: float
    log_evidence: float
    log_evidence_se: float
    samples: np.ndarray
    method: str
    acceptance: float = float("nan")


def unit_box_logp(loglike: Any, to_weights: Any) -> Any:
    """``logp(x)``: ``loglike(to_weights(x))`` for the rows of ``x`` inside the unit cube,
    ``-inf`` outside (a uniform prior on the cube, for emcee's vectorised calls).

    Example:
        >>> logp = unit_box_logp(lambda w: -w.sum(1), lambda x: 2 * x)
        >>> logp(np.array([[0.25, 0.25], [1.5, 0.0]])).tolist()
        [-1.0, -inf]
    """

    def logp(x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        out = np.full(x.shape[0], -np.inf)
        inside = np.all((x >= 0.0) & (x <= 1.0), axis=1)
        if inside.any():
            out[inside] = loglike(to_weights(x[inside]))
        return out

    return logp


def log_mean_exp(logw: np.ndarray) -> tuple[float, float]:
    """ln of the mean of ``exp(logw)`` and its Monte-Carlo standard error (relative error
    of the mean of the weights, the standard error of the logarithm).

    Example:
        >>> z, se = log_mean_exp(np.log(np.array([1.0, 1.0, 1.0, 1.0])))
        >>> round(z, 12), se
        (0.0, 0.0)
    """
    n = len(logw)
    log_z = float(logsumexp(logw) - np.log(n))
    w = np.exp(logw - logw.max())
    return log_z, float(np.sqrt(max(np.mean(w**2) / np.mean(w) ** 2 - 1.0, 0.0) / n))


def sample_model(
    loglike: Any,
    prior: SpikeSlabPrior,
    mask: Sequence[bool],
    *,
    walkers: int = 32,
    steps: int = 1500,
    n_importance: int = 4000,
    seed: SeedLike = 0,
    extra_start: np.ndarray | None = None,
    skip_below: float | None = None,
) -> ModelPosterior:
    """The posterior and evidence of one term subset (see the module docstring).

    ``loglike(weights (n, K)) -> (n,)``; ``extra_start``: weight vectors (e.g. the best
    simulator runs) added to the pool the walkers start from; ``skip_below``: when the best
    ln L found in the pool is below this, no MCMC is run (``method="prior-sampling"``).
    """
    m = np.asarray(mask, dtype=bool)
    log_prior = prior.log_model_prior(m)
    d = int(m.sum())
    if d == 0:
        ll0 = float(loglike(np.zeros((1, len(prior))))[0])
        return ModelPosterior(tuple(m), log_prior, ll0, 0.0, np.zeros((1, len(prior))), "point")
    s_pool, s_mcmc, s_is, s_pick = spawn_seeds(seed, 4)
    n_pool = max(256, 64 * d)
    pool = latin_hypercube(n_pool, d, s_pool)
    if extra_start is not None and len(extra_start):
        w = np.asarray(extra_start, dtype=float)[:, m]
        span = (prior.high - prior.low)[m]
        pool = np.vstack([pool, np.clip((w - prior.low[m]) / span, 0.0, 1.0)])
    walkers = max(int(walkers), 2 * d + 2)
    pool_ll = loglike(prior.slab(pool, m))
    best_first = np.argsort(-pool_ll, kind="stable")
    start = pool[best_first[:walkers]]  # the walkers start at the best pool points
    if skip_below is not None and pool_ll[best_first[0]] < skip_below:
        log_z, se = log_mean_exp(pool_ll[:n_pool])
        top = prior.slab(start, m)
        return ModelPosterior(tuple(m), log_prior, log_z, se, top, "prior-sampling")
    rng = np.random.default_rng(s_pick)
    # spread the walkers a little so that the ensemble is not degenerate
    start = np.clip(start + 1e-3 * rng.standard_normal(start.shape), 1e-9, 1 - 1e-9)
    logp = unit_box_logp(loglike, lambda u: prior.slab(u, m))
    chain, acc = run_emcee(logp, start, steps, s_mcmc)
    log_z, se = _importance_evidence(logp, chain, n_importance, s_is)
    return ModelPosterior(tuple(m), log_prior, log_z, se, prior.slab(chain, m), "mcmc", acc)


def _importance_evidence(
    logp: Any, chain: np.ndarray, n: int, seed: SeedLike
) -> tuple[float, float]:
    """ln of the mean of the likelihood over the uniform slab, with a defensive mixture
    ``0.8 N(mean, 1.5^2 cov) + 0.2 U[0, 1]^d`` fitted to the chain; and its standard error."""
    rng = np.random.default_rng(spawn_seeds(seed, 1)[0])
    d = chain.shape[1]
    mu = chain.mean(0)
    cov = np.atleast_2d(np.cov(chain, rowvar=False)) * 1.5**2 + 1e-10 * np.eye(d)
    n_g = round(0.8 * n)
    xg = rng.multivariate_normal(mu, cov, size=n_g, method="cholesky")
    xu = rng.random((n - n_g, d))
    x = np.vstack([xg, xu])
    inside = np.all((x >= 0) & (x <= 1), axis=1)
    diff = x - mu
    prec = np.linalg.inv(cov)
    _, logdet = np.linalg.slogdet(cov)
    log_gauss = -0.5 * (np.einsum("ni,ij,nj->n", diff, prec, diff) + logdet + d * np.log(2 * np.pi))
    log_q = np.logaddexp(np.log(0.8) + log_gauss, np.where(inside, np.log(0.2), -np.inf))
    logw = np.full(n, -np.inf)
    logw[inside] = logp(x[inside]) - log_q[inside]
    return log_mean_exp(logw)


def model_average(
    models: Sequence[ModelPosterior], n_samples: int = 4000, seed: SeedLike = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior subset probabilities and ``n_samples`` model-averaged weight draws.

    Each subset contributes its share of draws by largest-remainder rounding of
    ``n_samples P(m | y)``, taken at random from its chain.

    Example:
        >>> a = ModelPosterior((True,), 0.0, 0.0, 0.0, np.ones((10, 1)), "mcmc")
        >>> b = ModelPosterior((False,), 0.0, np.log(3.0), 0.0, np.zeros((1, 1)), "point")
        >>> p, s = model_average([a, b], n_samples=8)
        >>> p.round(2).tolist(), int((s[:, 0] == 0).sum())
        ([0.25, 0.75], 6)
    """
    logpost = np.array([mp.log_prior + mp.log_evidence for mp in models])
    prob = np.exp(logpost - logsumexp(logpost))
    share = prob * n_samples
    counts = np.floor(share).astype(int)
    rest = n_samples - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    rng = np.random.default_rng(spawn_seeds(seed, 1)[0])
    parts = [
        mp.samples[rng.integers(0, len(mp.samples), size=c)]
        for mp, c in zip(models, counts, strict=True)
        if c > 0
    ]
    return prob, np.vstack(parts)
