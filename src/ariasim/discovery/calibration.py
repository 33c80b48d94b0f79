"""Calibrate an expensive simulator with a Gaussian-process emulator and active learning.

:func:`calibrate` runs the loop of Zhao & Kowalski (2022) on a spike-and-slab prior:

1. run the simulator on a Latin hypercube that follows the prior (:mod:`.design`);
2. fit the emulator of the observables (:class:`~ariasim.discovery.emulator.GPEmulator`) and
   form the emulated likelihood (:class:`~ariasim.discovery.posterior.EmulatedLikelihood`);
3. draw from the emulated posterior over the whole box of weights (emcee, a few hundred
   steps) and measure ``ll_sd``, the posterior-mean standard deviation of the emulated
   ``ln L`` that more runs could remove;
4. stop when ``ll_sd < ll_tol`` at two consecutive batches (the emulator no longer limits
   the posterior) or when ``max_runs`` is reached; otherwise pick the next ``batch`` runs
   among candidates (posterior draws, the same projected onto the faces where terms are
   excluded, and prior draws) by the entropy criterion
   ``E[ln L] + 1/2 ln(2 pi e Var[ln L])`` of the emulated posterior, one at a time, each
   chosen point conditioning the emulator's variance ("kriging believer") so a batch spreads
   out; run the batch (``forward`` may run it in parallel) and go to 2.

The final emulator then gives the spike-and-slab posterior (:mod:`.posterior`): an MCMC and
an evidence per term subset, inclusion probabilities, model-averaged draws, and the evidence
of the whole model, ``log_evidence``, which compares members of a model cascade.

``design="lhs"`` skips the loop: one prior-following Latin hypercube of ``max_runs`` runs, the
baseline that active learning is measured against.

Everything is deterministic for a seed (BLAS runs single-threaded here), so a calibration
that is run again asks the simulator for the same runs in the same order: a ``forward`` that
caches runs by their parameters makes the whole calibration resumable.

References:
    H. Zhao and J. Kowalski, "Bayesian active learning for parameter calibration of landslide
    run-out models", Landslides 19 (2022) 2033.
    D. Ginsbourger, R. Le Riche and L. Carraro (2010), see :mod:`.emulator`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import clone

from ariasim.discovery.design import spike_slab_design
from ariasim.discovery.emulator import GPEmulator
from ariasim.discovery.posterior import (
    EmulatedLikelihood,
    ModelPosterior,
    Observations,
    gaussian_loglike,
    model_average,
    run_emcee,
    sample_model,
    unit_box_logp,
)
from ariasim.discovery.prior import SpikeSlabPrior
from ariasim.errors import ConfigError, InputError, check_int
from ariasim.surrogates.formula import single_threaded_blas
from ariasim.utils import spawn_seeds

__all__ = ["CalibrationResult", "Observations", "calibrate"]

Forward = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[int, int, str], None]


@dataclass
class CalibrationResult:
    """What :func:`calibrate` found.

    Attributes:
        names: Term names (weight columns).
        runs_X: The simulator runs' weights (n, K), in the order they were run.
        runs_Y: Their observables (n, m).
        history: One entry per emulator fit: ``runs``, ``ll_sd``, ``posterior_mean``,
            ``posterior_sd`` (of the weights, over the whole box), ``best_ll`` (best exact
            ln L among the runs).
        samples: Model-averaged posterior draws (S, K), zeros where a term is excluded.
        inclusion: Posterior inclusion probability per term.
        model_probabilities: Per subset: ``terms``, ``probability``, ``log_evidence``,
            ``log_evidence_se``, ``method``; most probable first.
        log_evidence: ln of the evidence of the whole spike-and-slab model.
        emulator: The final emulator.
        stop_reason: ``"converged"``, ``"max_runs"`` or ``"lhs"``.
        models: The per-subset posteriors.

    Example:
        >>> from ariasim.discovery.prior import TermPrior
        >>> prior = SpikeSlabPrior([TermPrior("a", 2.0), TermPrior("b", 2.0)])
        >>> def forward(w):  # a toy "simulator": term b does not matter
        ...     return np.column_stack([w[:, 0], w[:, 0] ** 2 + 0.0 * w[:, 1]])
        >>> obs = Observations([1.0, 1.0], [0.05, 0.05])
        >>> res = calibrate(forward, prior, obs, initial=10, batch=2, max_runs=14,
        ...                 walkers=16, steps=300)
        >>> s = res.summary()
        >>> s["inclusion"]["a"] > 0.99, s["inclusion"]["b"] < 0.5, s["simulator_runs"] <= 14
        (True, True, True)
    """

    names: list[str]
    runs_X: np.ndarray
    runs_Y: np.ndarray
    history: list[dict[str, Any]]
    samples: np.ndarray
    inclusion: dict[str, float]
    model_probabilities: list[dict[str, Any]]
    log_evidence: float
    emulator: GPEmulator
    stop_reason: str
    models: list[ModelPosterior] = field(default_factory=list, repr=False)

    def most_probable(self) -> list[str]:
        """The terms of the most probable subset."""
        return list(self.model_probabilities[0]["terms"])

    def summary(self, truth: Mapping[str, float] | None = None) -> dict[str, Any]:
        """JSON-able summary: inclusion, per-term posterior median and central 95 %
        interval, ``covers_truth`` when ``truth`` (weights by term name) is given, the
        number of simulator runs, evidence, subsets and the learning curve."""
        params: dict[str, dict[str, float]] = {}
        for k, name in enumerate(self.names):
            col = self.samples[:, k]
            lo, med, hi = np.quantile(col, [0.025, 0.5, 0.975])
            params[name] = {
                "median": float(med),
                "low": float(lo),
                "high": float(hi),
                "mean": float(col.mean()),
            }
        out: dict[str, Any] = {
            "inclusion": {k: float(v) for k, v in self.inclusion.items()},
            "parameters": params,
            "most_probable_terms": self.most_probable(),
            "simulator_runs": len(self.runs_X),
            "log_evidence": float(self.log_evidence),
            "stop_reason": self.stop_reason,
            "models": self.model_probabilities,
            "learning_curve": self.history,
        }
        if truth is not None:
            unknown = sorted(set(truth) - set(self.names))
            if unknown:
                raise ConfigError(f"unknown term(s) {unknown}", parameter="truth")
            out["covers_truth"] = {
                k: bool(params[k]["low"] <= float(v) <= params[k]["high"]) for k, v in truth.items()
            }
        return out


def _run(forward: Forward, W: np.ndarray, m: int | None) -> np.ndarray:
    Y = np.asarray(forward(W), dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape[0] != W.shape[0] or (m is not None and Y.shape[1] != m):
        raise InputError(
            f"the forward model returned shape {Y.shape} for {W.shape[0]} runs"
            + (f" (expected {m} observables)" if m is not None else "")
        )
    if not np.isfinite(Y).all():
        bad = W[~np.isfinite(Y).all(1)][0]
        raise InputError(f"the forward model returned non-finite observables at weights {bad}")
    return Y


def _relaxed_posterior(
    like: EmulatedLikelihood, prior: SpikeSlabPrior, start_w: np.ndarray, seed: int
) -> np.ndarray:
    """Draws (weights) of the emulated posterior with every term's weight uniform on
    ``[0, high]`` (the box the emulator covers), started at the given weights."""
    k = len(prior)
    walkers = max(16, 2 * k + 2)
    start = prior.to_unit(start_w[:walkers])
    rng = np.random.default_rng(spawn_seeds(seed, 1)[0])
    start = np.clip(start + 0.01 * rng.standard_normal(start.shape), 1e-6, 1 - 1e-6)

    chain, _ = run_emcee(unit_box_logp(like, prior.from_unit), start, 300, seed)
    return prior.from_unit(chain[:: max(1, len(chain) // 600)])


def _candidates(prior: SpikeSlabPrior, post: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Candidate weights: posterior draws jittered, the same with terms switched off as the
    prior's inclusion says, and prior draws."""
    s1, s2, s3 = spawn_seeds(seed, 3)
    rng = np.random.default_rng(s1)
    # fewer than half from the posterior: the prior draws are what finds a second region of
    # high emulated likelihood (e.g. a spurious mode in a corner of the box that the
    # emulator has not seen) so that the entropy criterion can send runs there
    n_post = int(0.4 * n)
    pick = post[rng.integers(0, len(post), size=n_post)]
    x = prior.to_unit(pick) + 0.02 * rng.standard_normal(pick.shape)
    x = np.clip(x, 0.0, 1.0)
    off = np.random.default_rng(s2).random(x.shape) >= prior.inclusion
    half = np.arange(n_post) % 2 == 1  # every other draw gets projected onto faces
    x[half] = np.where(off[half], 0.0, x[half])
    w = prior.from_unit(x)
    return np.vstack([w, prior.sample(n - n_post, s3)])


def _choose_batch(
    like: EmulatedLikelihood, prior: SpikeSlabPrior, cand: np.ndarray, batch: int
) -> np.ndarray:
    """Greedy entropy-criterion batch with kriging-believer conditioning."""
    em = like.emulator
    chosen: list[np.ndarray] = []
    for _ in range(batch):
        cur = EmulatedLikelihood(em, like.observations, prior)
        ll, var = cur.moments(cand)
        score = ll + 0.5 * np.log(2 * np.pi * np.e * np.maximum(var, 1e-300))
        i = int(np.argmax(score))
        chosen.append(cand[i])
        em = em.believe(prior.to_unit(cand[i : i + 1]))
        cand = np.delete(cand, i, axis=0)
    return np.array(chosen)


def calibrate(
    forward: Forward,
    prior: SpikeSlabPrior,
    observations: Observations,
    *,
    design: str = "active",
    initial: int = 20,
    batch: int = 4,
    max_runs: int = 120,
    ll_tol: float = 0.25,
    seed: int = 0,
    walkers: int = 32,
    steps: int = 1500,
    n_candidates: int = 4000,
    emulator: GPEmulator | None = None,
    progress: Progress | None = None,
) -> CalibrationResult:
    """Calibrate ``forward`` against ``observations`` under ``prior`` (module docstring).

    Arguments:
        forward: ``forward(weights (n, K)) -> observables (n, m)``, weights in
            ``prior.names`` order. It may run the batch in parallel and cache runs.
        prior: The spike-and-slab prior of the weights.
        observations: The data (``m`` values with standard deviations).
        design: ``"active"`` (default) or ``"lhs"`` (one Latin hypercube of ``max_runs``).
        initial: Runs of the starting Latin hypercube. Default 20.
        batch: Runs chosen per active-learning step. Default 4.
        max_runs: Largest number of simulator runs. Default 120.
        ll_tol: Stop when the posterior-mean emulator standard deviation of ``ln L`` is
            below this at two consecutive fits. Default 0.25 (with 0.5, one data set of
            20 in the coverage benchmark stopped at 76 runs with a posterior too narrow
            against the simulator-based reference).
        seed: Seed of the designs, the samplers and the emulator's optimiser.
        walkers, steps: emcee ensemble size and chain length per term subset (the first
            half is discarded).
        n_candidates: Candidates scored per active-learning step (40 % from the
            posterior, 60 % from the prior). Default 4000.
        emulator: A :class:`GPEmulator` whose settings are used for every fit (it is
            cloned; its ``random_state`` is replaced by one derived from ``seed``).
        progress: Called as ``progress(runs_done, max_runs, message)``.
    """
    if design not in ("active", "lhs"):
        raise ConfigError(f"must be 'active' or 'lhs', got {design!r}", parameter="design")
    initial = check_int("initial", initial, 3)
    batch = check_int("batch", batch, 1)
    max_runs = check_int("max_runs", max_runs, 3)
    walkers = check_int("walkers", walkers, 2)
    steps = check_int("steps", steps, 10)
    n_candidates = check_int("n_candidates", n_candidates, batch + 1)
    if design == "active" and initial > max_runs:
        raise ConfigError(f"must be <= max_runs ({max_runs}), got {initial}", parameter="initial")
    if not (isinstance(ll_tol, int | float) and ll_tol > 0):
        raise ConfigError(f"must be > 0, got {ll_tol!r}", parameter="ll_tol")
    if not isinstance(prior, SpikeSlabPrior):
        raise ConfigError(f"expected SpikeSlabPrior, got {type(prior).__name__}", parameter="prior")

    def report(n: int, msg: str) -> None:
        if progress is not None:
            progress(n, max_runs, msg)

    template = GPEmulator() if emulator is None else emulator
    if not isinstance(template, GPEmulator):
        raise ConfigError(
            f"expected a GPEmulator, got {type(template).__name__}", parameter="emulator"
        )
    s_design, s_loop, s_emu, s_final = spawn_seeds(seed, 4)
    with single_threaded_blas():
        n0 = max_runs if design == "lhs" else initial
        W = spike_slab_design(prior, n0, s_design)
        report(0, f"running the {n0} runs of the Latin hypercube")
        Y = _run(forward, W, len(observations))
        history: list[dict[str, Any]] = []
        stop_reason = "lhs" if design == "lhs" else "max_runs"
        calm = 0
        loop_seeds = iter(spawn_seeds(s_loop, 10_000))
        while True:
            em = clone(template).set_params(random_state=s_emu).fit(prior.to_unit(W), Y)
            like = EmulatedLikelihood(em, observations, prior)
            exact = gaussian_loglike(Y, observations)
            order = np.argsort(-exact, kind="stable")
            post = _relaxed_posterior(like, prior, W[order], next(loop_seeds))
            _, var = like.moments(post)
            ll_sd = float(np.mean(np.sqrt(var)))
            history.append(
                {
                    "runs": len(W),
                    "ll_sd": ll_sd,
                    "best_ll": float(exact[order[0]]),
                    "posterior_mean": post.mean(0).tolist(),
                    "posterior_sd": post.std(0).tolist(),
                }
            )
            report(len(W), f"{len(W)} runs: emulator sd of ln L at the posterior {ll_sd:.3g}")
            if design == "lhs":
                break
            calm = calm + 1 if ll_sd < ll_tol else 0
            if calm >= 2:
                stop_reason = "converged"
                break
            if len(W) >= max_runs:
                break
            b = min(batch, max_runs - len(W))
            cand = _candidates(prior, post, n_candidates, next(loop_seeds))
            W_new = _choose_batch(like, prior, cand, b)
            Y = np.vstack([Y, _run(forward, W_new, Y.shape[1])])
            W = np.vstack([W, W_new])

        report(len(W), "sampling the posterior of every term subset")
        models = _all_models(like, prior, W[order[:64]], walkers, steps, s_final)
        prob, samples = model_average(models, seed=s_final)
    inclusion = {
        name: float(sum(p for p, mp in zip(prob, models, strict=True) if mp.mask[k]))
        for k, name in enumerate(prior.names)
    }
    table: list[dict[str, Any]] = sorted(
        (
            {
                "terms": [n for n, on in zip(prior.names, mp.mask, strict=True) if on],
                "probability": float(p),
                "log_evidence": float(mp.log_evidence),
                "log_evidence_se": float(mp.log_evidence_se),
                "method": mp.method,
            }
            for p, mp in zip(prob, models, strict=True)
        ),
        key=lambda r: -float(r["probability"]),
    )
    logpost = np.array([mp.log_prior + mp.log_evidence for mp in models])
    return CalibrationResult(
        names=prior.names,
        runs_X=W,
        runs_Y=Y,
        history=history,
        samples=samples,
        inclusion=inclusion,
        model_probabilities=table,
        log_evidence=float(logsumexp(logpost)),
        emulator=em,
        stop_reason=stop_reason,
        models=models,
    )


def _all_models(
    like: EmulatedLikelihood,
    prior: SpikeSlabPrior,
    best_runs: np.ndarray,
    walkers: int,
    steps: int,
    seed: int,
) -> list[ModelPosterior]:
    """Every subset's posterior; hopeless subsets (best ln L 30 below the best found so far,
    i.e. a likelihood ratio below 1e-13) are only averaged over their slab."""
    masks = sorted(prior.models(), key=lambda m: (sum(m), m), reverse=True)
    seeds = spawn_seeds(seed, len(masks))
    out: list[ModelPosterior] = []
    best = -np.inf
    for mask, s in zip(masks, seeds, strict=True):
        mp = sample_model(
            like,
            prior,
            mask,
            walkers=walkers,
            steps=steps,
            seed=s,
            extra_start=best_runs,
            skip_below=best - 30.0 if np.isfinite(best) else None,
        )
        if mp.method == "mcmc":
            best = max(best, float(like(mp.samples[:: max(1, len(mp.samples) // 200)]).max()))
        out.append(mp)
    order = {m: i for i, m in enumerate(prior.models())}
    return sorted(out, key=lambda mp: order[mp.mask])
