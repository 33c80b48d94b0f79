"""Analytic conditional probability densities that are valid by construction.

A CDF fitted by regression to the empirical CDF can reach R^2 = 0.9999 and still have a
negative PDF on a quarter of its support and the wrong total mass (REFERENCE.md section
8). :class:`SymbolicDensity` avoids this by construction: the conditional CDF is

    F(t | x) = sum_c w_c(x) P(k_c, k_c exp(Q_c w_c)),  k_c = 1/Q_c^2,
    w_c = (ln(t - t_min) - mu_c(x)) / sigma_c(x),

a mixture of generalized-gamma CDFs in Prentice's parametrisation (P is the regularized
lower incomplete gamma function; mu and sigma are the location and scale of ln t, Q > 0
the shape: Q = sigma is a gamma, Q = 1 a Weibull, Q -> 0 a log-normal). Each component is monotone
in t, is 0 at t_min and tends to 1, and the
weights are positive and sum to 1, so F is a CDF for *any* parameter functions; its PDF
dF/dt, obtained symbolically, is non-negative with unit mass. The Pandel function is
the special case of one component with Q = sigma (a gamma distribution). Prentice's
parametrisation is used because Stacy's (k, theta, p) is degenerate towards the
log-normal limit, where all three run away together and per-bin estimates lose meaning.
With ``point_mass=True`` the distribution also holds a probability p0(x) at exactly
t_min, F = p0 + (1 - p0) F_cont (e.g. photons that arrive unscattered, at the direct
time: half of the light 5 m from a source in South-Pole ice). With ``tail_log_degree`` an
exponential cut-off of the continuous part's survival function, S -> S exp(-(t - t_min) /
tau(x)), competes with none on the likelihood (the late light in an absorbing medium
falls off exponentially).

What is learned symbolically is how the location (mu), log-scale, log-shape and weights
depend on the conditions x (e.g. distance, absorption length):

1. the conditions are binned (quantiles in 1-D, k-means otherwise) and the family is fitted
   in each bin by maximum likelihood, with errors from the Hessian;
2. :class:`~ariasim.surrogates.symbolic.SymbolicRegressor` finds a formula for each
   (log- or logit-transformed) parameter as a function of x, weighted by the errors;
3. all constants of all parameter formulas are re-fitted together by unbinned maximum
   likelihood on every sample (torch, L-BFGS, float64).

Densities are judged on held-out samples with KS, Cramer-von Mises, 1-Wasserstein and
binned chi2 per condition bin (:func:`goodness_of_fit`), never by R^2 on an empirical CDF.

References:
    Stacy, "A generalization of the gamma distribution", Ann. Math. Stat. 33 (1962) 1187.
    Prentice, "A log gamma model and its maximum likelihood estimation", Biometrika 61
    (1974) 539.
    Pandel, "Bestimmung von Wasser- und Detektorparametern...", Diploma thesis, Humboldt
    University Berlin (1996); van Eijndhoven, Fetter, Pandel, Astropart. Phys. 28 (2007) 456.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sympy as sp
from scipy import optimize, special, stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from ariasim.errors import ConfigError, InputError
from ariasim.metrics import wasserstein_1d
from ariasim.surrogates.formula import Formula, Variable, single_threaded_blas
from ariasim.surrogates.parse import MAX_SPECIAL, check_name
from ariasim.utils import as_generator, spawn_seeds

__all__ = [
    "ConditionalDensity",
    "SymbolicDensity",
    "condition_bins",
    "goodness_of_fit",
    "numerical_hessian",
]


class ConditionalDensity(Protocol):
    """What :func:`goodness_of_fit` needs of a model of p(t | x).

    Example:
        >>> all(hasattr(SymbolicDensity, m) for m in ("cdf", "sample"))
        True
    """

    def cdf(self, t: np.ndarray, X: np.ndarray) -> np.ndarray: ...

    def sample(self, X: np.ndarray, n: int = 1, rng: Any = None) -> np.ndarray: ...


# ----------------------------------------------------------------------------- the family


def _gg_logpdf(u: np.ndarray, mu: np.ndarray, log_sigma: np.ndarray, log_q: np.ndarray):
    """log pdf of the generalized gamma (Prentice parametrisation) at u > 0 (numpy).

    With w = (ln u - mu)/sigma, k = 1/Q^2 and z = k exp(Q w): F = P(k, z) and
    ln f = k ln z - z - lnGamma(k) + ln(Q / (sigma u)).
    """
    log_q = np.maximum(log_q, _LOG_Q_MIN)
    sigma, q = np.exp(log_sigma), np.exp(log_q)
    k = 1.0 / (q * q)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = (np.log(u) - mu) / sigma
        log_z = np.log(k) + q * w
        return k * log_z - np.exp(log_z) - special.gammaln(k) + log_q - log_sigma - np.log(u)


def _gg_cdf(u: np.ndarray, mu: np.ndarray, log_sigma: np.ndarray, log_q: np.ndarray):
    q = np.exp(np.maximum(log_q, _LOG_Q_MIN))
    k = 1.0 / (q * q)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = k * np.power(np.clip(u, 0.0, None) * np.exp(-mu), q / np.exp(log_sigma))
        return special.gammainc(k, z)


#: Per-bin fit bounds (mu is free): sigma in [e^-6, e^3], Q in [e^-4, e^2]. The bound on
#: Q keeps the log-normal limit (Q -> 0) from running away; it is 0.018, far into it.
_BOUNDS = {
    "mu": (None, None),
    "log_sigma": (-6.0, 3.0),
    "log_q": (-4.0, 2.0),
    "logit_w": (-12.0, 12.0),
}


#: Range of the log-scale and log-shape functions in the joint refinement (a quadratic
#: penalty outside); Q = e^-8 is far into the log-normal limit.
_PENALTY_LOW = {"log_sigma": -6.0, "log_q": -8.0}
_PENALTY_HIGH = {"log_sigma": 3.0, "log_q": 2.0}
#: Evaluation clamps log Q from below here (e^-10: numerically the log-normal, where
#: k = 1/Q^2 would make the log-density a difference of numbers of order 1e10 and more).
_LOG_Q_MIN = -10.0
#: At most this many L-BFGS runs (of ``max_iter`` iterations each) per parameter group in
#: the joint refinement; they stop as soon as one no longer improves the likelihood.
_REFINE_ROUNDS = 10
#: Grid points in ln x of the curvature penalty (``SymbolicDensity(smooth=...)``).
_SMOOTH_GRID = 64
#: Standard deviation of the restarts' noise on the orthonormal-basis coefficients.
_RESTART_SCALE = 0.5


def _mixture(params: np.ndarray, n_comp: int):
    """Split a (..., n_par) parameter array into per-component arrays and log-weights."""
    comps = [
        (params[..., 3 * c], params[..., 3 * c + 1], params[..., 3 * c + 2]) for c in range(n_comp)
    ]
    if n_comp == 1:
        logw = [np.zeros(params.shape[:-1])]
    else:
        a = params[..., 3 * n_comp]
        logw = [-np.logaddexp(0.0, -a), -np.logaddexp(0.0, a)]
    return comps, logw


def _param_names(n_comp: int, atom: bool = False, ordered: bool = False) -> list[str]:
    """Names of the parameter functions; with ``ordered`` (two components) the late
    component's location is ``log_dmu_1`` = ln(mu_1 - mu_0) instead of ``mu_1``."""
    names = [f"{p}_{c}" for c in range(n_comp) for p in ("mu", "log_sigma", "log_q")]
    if ordered and n_comp == 2:
        names[3] = "log_dmu_1"
    return names + (["logit_w"] if n_comp == 2 else []) + (["logit_p0"] if atom else [])


#: ln(mu_1 - mu_0) is clamped from above here when the ordered parameters are turned
#: into the family's (exp(50) would overflow nothing, but no delay scale is that far).
_LOG_DMU_MAX = 50.0


def _natural_params(P: np.ndarray, ordered: bool) -> np.ndarray:
    """The family's parameter columns (n, n_par) from the parameter functions' values:
    with ``ordered``, column 3 holds ln(mu_1 - mu_0) and becomes mu_1 = mu_0 + exp(.)."""
    if not ordered:
        return P
    P = np.array(P, dtype=float, copy=True)
    with np.errstate(over="ignore"):
        P[:, 3] = P[:, 0] + np.exp(np.minimum(P[:, 3], _LOG_DMU_MAX))
    return P


def _n_cont(n_comp: int) -> int:
    """Number of parameters of the continuous part (before the point mass, if any)."""
    return 3 * n_comp + (n_comp == 2)


def _logpdf(
    u,
    params,
    n_comp,
    atom: bool = False,
    warp: np.ndarray | None = None,
    tail: np.ndarray | None = None,
):
    """log density of the continuous part at u > 0; with ``atom``, log p0 at u == 0 and
    log(1 - p0) + the continuous part above (a mixed distribution: a probability mass at
    u == 0, a density above). ``warp``: log-weights (n, m) of the Bernstein warp B of the
    continuous CDF G (the density becomes B'(G) g; :func:`_warp_logpdf`). ``tail``: log
    rates ln(1/tau) (n,) of the exponential tail cut-off (:func:`_tail_logpdf`)."""
    comps, logw = _mixture(params, n_comp)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        uu = np.where(u > 0, u, 1.0)
        terms = [lw + _gg_logpdf(uu, *c) for c, lw in zip(comps, logw, strict=True)]
        out = terms[0] if n_comp == 1 else np.logaddexp(*terms)
        if warp is not None or tail is not None:
            log_g, log_s = _log_cdf_sf(uu, params, n_comp)
        if warp is not None:
            out = out + _warp_logpdf(log_g, log_s, warp)
        if tail is not None:
            if warp is not None:
                log_s = _warp_log_sf(log_g, log_s, warp)
            out = _tail_logpdf(uu, out, log_s, tail)
    if not atom:
        return np.where(u > 0, out, -np.inf)
    a = params[..., _n_cont(n_comp)]
    log_p0, log_p1 = -np.logaddexp(0.0, -a), -np.logaddexp(0.0, a)
    return np.where(u > 0, log_p1 + out, np.where(u == 0, log_p0, -np.inf))


def _cdf(
    u,
    params,
    n_comp,
    atom: bool = False,
    warp: np.ndarray | None = None,
    tail: np.ndarray | None = None,
):
    """F(u) (right-continuous: with ``atom`` it is p0 at u == 0). ``warp``: log-weights
    of the Bernstein warp of the continuous part, F_cont = B(G); ``tail``: log rates of
    the exponential cut-off of its survival function, 1 - F_cont -> (1 - F_cont) e^(-u/tau)."""
    comps, logw = _mixture(params, n_comp)
    cont = sum(np.exp(lw) * _gg_cdf(u, *c) for c, lw in zip(comps, logw, strict=True))
    if warp is not None:
        cont = _warp_cdf(np.clip(cont, 0.0, 1.0), np.exp(warp))
    if tail is not None:
        with np.errstate(over="ignore"):
            damp = np.exp(-np.clip(u, 0.0, None) * np.exp(tail))
        cont = 1.0 - (1.0 - np.clip(cont, 0.0, 1.0)) * damp
    if not atom:
        return cont
    p0 = special.expit(params[..., _n_cont(n_comp)])
    return np.where(np.asarray(u) >= 0, p0 + (1.0 - p0) * cont, 0.0)


# ----------------------------------------------------------------------------- the tail
# The late delays of photons in an absorbing medium fall off exponentially: a photon
# that arrives t later has travelled c t / n further and survived absorption with the
# probability exp(-c t / (n lambda_a)). The family (and its warp) need not: near the
# source its far tail can hold twice the MC's light after 1 us. The tail cut-off
# multiplies the survival function of the continuous part by exp(-u / tau(x)),
#     S(u | x) = S_cont(u | x) exp(-u / tau(x)),   ln(1 / tau(x)) = tail_log_rate(x),
# a polynomial in ln x like the warp logits. S stays a survival function for any tau > 0
# (a product of two non-increasing functions from 1 to 0), its density
#     f = (f_cont + S_cont / tau) exp(-u / tau) >= 0,
# and with the point mass F = p0 + (1 - p0) (1 - S). As tau -> inf it is the identity.
# (Its density is that of the minimum of two independent times: the family's, and an
# exponential one of mean tau; Cox & Oakes, "Analysis of Survival Data" (1984), ch. 9.)


def _tail_logpdf(u: np.ndarray, log_f: np.ndarray, log_s: np.ndarray, log_rate: np.ndarray):
    """log of (f + S / tau) exp(-u / tau) from log f, log S of the continuous part and
    ln(1 / tau)."""
    return np.logaddexp(log_f, log_s + log_rate) - u * np.exp(log_rate)


def _warp_log_sf(log_g: np.ndarray, log_s: np.ndarray, logc: np.ndarray) -> np.ndarray:
    """log(1 - B(G)) of the warp, accurate in the far tail: 1 - B(G) = sum_j c_j
    I_(1 - G)(m - j, j + 1) with 1 - G from its own incomplete-gamma function."""
    m = logc.shape[-1]
    j = np.arange(m)
    s = np.exp(log_s)[..., None]
    terms = np.exp(logc) * special.betainc(m - j, j + 1, s)
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(terms.sum(axis=-1), 1e-300))


def _tail_names() -> list[str]:
    return ["tail_log_rate"]


# ----------------------------------------------------------------------------- the warp
# F_cont(t | x) = B(G(t | x); c(x)) with G the generalized-gamma mixture's CDF and
#     B(v; c) = sum_{j=0}^{m-1} c_j I_v(j + 1, m - j),   c = softmax(0, a_1(x), ..., a_{m-1}(x)),
# a mixture of the m beta distributions of the Bernstein basis of degree m - 1 (I is the
# regularized incomplete beta function), i.e. a Bernstein polynomial of degree m in v with
# non-decreasing coefficients S_i = c_0 + ... + c_{i-1} (S_0 = 0, S_m = 1): monotone,
# B(0) = 0, B(1) = 1, so F stays a CDF for any a_j; B is the identity when all c_j = 1/m
# (all a_j = 0). Bernstein-polynomial density estimation: Vitale, in "Statistical
# Inference and Related Topics" (1975) 87; Petrone, Canad. J. Statist. 27 (1999) 105;
# as a correction of a parametric base CDF: Hjort & Glad, Ann. Stat. 23 (1995) 882.


def _log_cdf_sf(u, params, n_comp):
    """log G(u) and log(1 - G(u)) of the continuous mixture (each from its own
    incomplete-gamma function, accurate in both tails)."""
    comps, logw = _mixture(params, n_comp)
    lo = np.zeros(np.shape(u))
    hi = np.zeros(np.shape(u))
    for (mu, log_sigma, log_q), lw in zip(comps, logw, strict=True):
        q = np.exp(np.maximum(log_q, _LOG_Q_MIN))
        k = 1.0 / (q * q)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            z = k * np.power(np.clip(u, 0.0, None) * np.exp(-mu), q / np.exp(log_sigma))
        lo = lo + np.exp(lw) * special.gammainc(k, z)
        hi = hi + np.exp(lw) * special.gammaincc(k, z)
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(lo, 1e-300)), np.log(np.maximum(hi, 1e-300))


def _bernstein_log_norm(m: int) -> np.ndarray:
    """log of the normalisations m binomial(m - 1, j) of the m beta densities of the
    Bernstein basis of degree m - 1 (j = 0 .. m - 1)."""
    j = np.arange(m)
    return special.gammaln(m) - special.gammaln(j + 1) - special.gammaln(m - j) + math.log(m)


def _warp_logpdf(log_g: np.ndarray, log_s: np.ndarray, logc: np.ndarray) -> np.ndarray:
    """log B'(G) from log G, log(1 - G) (shape (n,)) and the log-weights (n, m)."""
    m = logc.shape[-1]
    j = np.arange(m)
    terms = logc + _bernstein_log_norm(m) + j * log_g[..., None] + (m - 1 - j) * log_s[..., None]
    return special.logsumexp(terms, axis=-1)


def _warp_cdf(g: np.ndarray, c: np.ndarray) -> np.ndarray:
    """B(G) from G (n,) and the weights c (n, m)."""
    m = c.shape[-1]
    j = np.arange(m)
    return np.clip(np.sum(c * special.betainc(j + 1, m - j, g[..., None]), axis=-1), 0.0, 1.0)


def _warp_terms(
    variables: Sequence[Variable], degree: int = 2, knots: Sequence[float] = ()
) -> list[sp.Expr]:
    """Terms of each warp logit a_j(x): 1 and, per condition, z, z**2, ..., z**degree
    with z = ln x for a condition positive everywhere (a distance), else z = x; then
    the near-source terms of ``knots`` (:func:`_knot_terms`)."""
    out: list[sp.Expr] = [sp.Integer(1)]
    for v in variables:
        s = sp.Symbol(v.name, real=True)
        z = sp.log(s) if v.low is not None and v.low > 0 else s
        out += [z**i for i in range(1, degree + 1)]
    return out + _knot_terms(variables, knots)


def _knot_terms(variables: Sequence[Variable], knots: Sequence[float]) -> list[sp.Expr]:
    """Near-source terms of a single positive condition x: max(0, ln(k / x))^3 for each
    knot k, written max(0, log(k) - log(x))^3. Each is 0 for x >= k and a cubic in ln x
    below it, continuous with its first two derivatives at k: with the polynomial in ln x
    they make a cubic spline in ln x whose extra pieces live only below the knots (a
    local change of the parameter near the source, which a polynomial over the whole
    range of x cannot follow without swinging elsewhere)."""
    if not knots:
        return []
    s = sp.Symbol(variables[0].name, real=True)
    return [sp.Max(sp.Integer(0), sp.log(sp.nsimplify(float(k))) - sp.log(s)) ** 3 for k in knots]


def _warp_names(m: int) -> list[str]:
    return [f"warp_a{j}" for j in range(1, m)]


# ----------------------------------------------------------------------------- helpers


def condition_bins(
    X: np.ndarray, n_bins: int, *, weights: np.ndarray | None = None, random_state: Any = None
) -> np.ndarray:
    """Bin index per row: equal-count quantile bins in 1-D, k-means clusters otherwise."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n_bins = max(1, min(n_bins, len(X)))
    if X.shape[1] == 1:
        edges = np.quantile(X[:, 0], np.linspace(0, 1, n_bins + 1)[1:-1])
        return np.searchsorted(edges, X[:, 0], side="right")
    from sklearn.cluster import KMeans

    # conditions on a grid (e.g. a few media x shells) have few distinct points
    n_bins = min(n_bins, len(np.unique(X, axis=0)))
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    km = KMeans(
        n_clusters=n_bins,
        n_init=3,
        random_state=int(as_generator(random_state).integers(2**31 - 1)),
    )
    return km.fit_predict(X / scale, sample_weight=weights)


def _check_tx(t: Any, X: Any, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float).ravel()
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None] if n_features in (None, 1) or X.size != n_features else X[None, :]
    if X.shape[0] == 1 and t.shape[0] > 1:
        X = np.repeat(X, t.shape[0], axis=0)
    if X.shape[0] != t.shape[0]:
        raise InputError(f"t has {t.shape[0]} rows but X has {X.shape[0]}")
    if n_features is not None and X.shape[1] != n_features:
        raise InputError(f"expected {n_features} condition columns, got {X.shape[1]}")
    if not (np.isfinite(X).all() and np.isfinite(t).all()):
        raise InputError("t and X must be finite (no NaN or inf)")
    return t, X


# ----------------------------------------------------------------------------- estimator


def _lbfgs_run(params: list[Any], loss_fn: Any, max_iter: int, torch: Any) -> None:
    """One torch L-BFGS run (strong-Wolfe line search, tight tolerances) of ``loss_fn``
    over ``params``, in place. The gradient is taken only of a finite loss, and torch's
    line search, which fails on a non-finite one, ends the run where it stands; the
    callers check the result."""
    opt = torch.optim.LBFGS(
        params,
        max_iter=max_iter,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
    )

    def closure() -> Any:
        opt.zero_grad()
        loss = loss_fn()
        if torch.isfinite(loss):
            loss.backward()
        return loss

    try:
        opt.step(closure)
    except (IndexError, RuntimeError):
        pass


class SymbolicDensity(BaseEstimator):
    """Analytic conditional density p(t | x), monotone CDF by construction.

    Arguments:
        n_components: 1 or 2 generalized-gamma components.
        point_mass: Add a probability mass at ``t_min`` whose probability p0 is a
            parameter function ``logit_p0(x)`` (e.g. photons that arrive unscattered,
            exactly at the direct time): F(t | x) = p0 + (1 - p0) F_cont(t | x) for
            t >= t_min. Samples equal to ``t_min`` then count for the mass.
        t_min: Lower end of the support of t (the CDF is 0 there).
        n_bins: Number of condition bins for the per-bin fits (fewer if a bin would hold
            less than ``min_per_bin`` samples).
        min_per_bin: Minimum samples per condition bin.
        param_model: ``"symbolic"`` (symbolic regression for each parameter function) or
            ``"poly"`` (polynomial in the conditions, a fast fallback; with a single
            positive condition x: 1, x, ln x, ..., ln^k x with k = ``log_degree``).
        max_time: Seconds of symbolic regression per parameter function.
        random_state: Seed or Generator.
        variable_names: Names of the condition columns (default ``x0, x1, ...``).
        variable_units: Their units.
        t_name: Name of the density's variable.
        t_unit: Its unit.
        max_iter: L-BFGS iterations of the joint unbinned refinement (0 to skip it).
        refine_samples: At most this many samples (a random subset) enter the joint
            refinement, which keeps its cost bounded for large Monte-Carlo sets.
        generations: Generation budget of each parameter function's symbolic regression
            (:class:`~ariasim.surrogates.symbolic.SymbolicRegressor`). Set it for a
            reproducible fit (same formulas in every run, process and thread setting);
            None (default) lets only the wall-clock ``max_time`` limit the search, which
            is not reproducible.
        warp: Degree m of a monotone Bernstein warp of the continuous CDF,
            F_cont = B(G(t | x); x) with G the generalized-gamma mixture (0: none, the
            default), or several degrees to choose from (include 0 to let the plain
            family compete): the one with the best held-out likelihood (with ``X_val``)
            or else the lowest BIC on the training samples wins. B's m weights are a
            softmax of ``warp_a1(x), ..., warp_a{m-1}(x)`` (and 0), each quadratic in
            ln x (in x for a condition that is not positive), fitted by unbinned maximum
            likelihood with the family's parameter functions held fixed; all equal
            weights make B the identity.
        log_degree: Degree k in ln x of the polynomial parameter functions (1-6), or
            several to choose from like the warp's degree (held-out mean NLL with
            ``X_val``, else training BIC); each degree is fitted starting from the
            optimum of the one below. Only a single positive condition uses it.
        warp_log_degree: Degree(s) in ln x (in x for a condition that is not positive)
            of the warp logits, chosen together with the warp's degree (None: the
            chosen ``log_degree``).
        knots: Knots k (in the unit of the single positive condition x) of near-source
            terms max(0, ln(k / x))^3, which make each polynomial parameter function
            and warp logit a cubic spline in ln x with extra pieces below the knots. They
            are tried one after another on top of the highest ``log_degree`` (the first
            knot, then the first two, ...; each fit started from the optimum of the one
            before, its new terms at 0) and compete with the plain degrees on the
            held-out likelihood (else the training BIC); the warp logits get the knots
            of the winner, and each warp candidate is also tried with all the knots
            when the family took fewer. Default: none.
        tail_log_degree: Degree(s) in ln x (in x for a condition that is not positive;
            0: a constant) of ln(1/tau(x)) of an exponential cut-off of the continuous
            part's survival function, S -> S exp(-(t - t_min) / tau(x)) (the late tail of
            light in an absorbing medium is exponential), fitted on top of the chosen
            family and warp with them held fixed. Each degree competes with no cut-off
            on the held-out likelihood (else the training BIC). Default None: not tried.
        smooth: Strength(s) lambda of a curvature (roughness) penalty in z = ln x of a
            single positive condition x: lambda times the sum over the polynomial
            parameter functions and the warp logits of the mean of (d^2 f / dz^2)^2 on
            a uniform grid of z over the data's range is added to the mean NLL per sample
            (the penalty of a smoothing spline, Green & Silverman 1994, "Nonparametric
            Regression and Generalized Linear Models", ch. 2; here on polynomials in
            ln x). It damps swings of the parameter functions between the training
            conditions, where the likelihood has several nearly equal optima. With
            several values, each is tried after the degrees, knots and warp are chosen
            (the family at the chosen degree refined from the unpenalised optimum, the
            chosen warp fitted on top, both penalised) and the one with the best
            held-out likelihood wins (ties: the smaller); without held-out samples the
            smallest is used. 0 (default): no penalty. Only with polynomial parameter
            functions (a symbolic winner keeps 0).
        restarts: Extra starts of the chosen polynomial family (after the degrees,
            knots and warp are chosen, before ``smooth``): its coefficients in the
            basis orthonormal under the sample weights plus Gaussian noise of standard
            deviation 0.5 (seeds split from ``random_state`` with
            :func:`~ariasim.utils.spawn_seeds`), each refined by the unbinned
            likelihood with the chosen warp fitted on top; the start with the best
            held-out mean NLL (else training NLL) wins, ties to the first. The
            likelihood of the mixture has several optima (components that trade roles
            between conditions); a multi-start search (e.g. Marti 2003, "Multi-start
            methods", Handbook of Metaheuristics) picks the best one found. Default 0.
        val_per_condition: How the held-out samples (``X_val``) are weighted in the
            held-out mean NLL that every choice above uses. False (default): by their
            sample weights (a condition with more samples counts more). True: each
            distinct condition (row of ``X_val``) counts once, i.e. the score is the mean
            over held-out conditions of each condition's mean NLL per sample, so that
            neither the near conditions with many samples nor the far ones dominate by
            their number of samples alone.
        ordered_means: With two components, parametrise the second one's location by
            its distance from the first, mu_1(x) = mu_0(x) + exp(log_dmu_1(x)), with
            ``log_dmu_1`` a parameter function like the others (fitted, symbolic or
            polynomial, in place of ``mu_1``; its per-bin values are ln(mu_1 - mu_0) of
            the per-bin fits, whose components are ordered by location). Component 1
            is then the later one at every condition and for any coefficients, so
            neither the joint refinement nor a restart can swap the components' roles
            between conditions (label switching, e.g. Stephens, J. R. Stat. Soc. B 62
            (2000) 795; ordering constraints are the classic identifiability fix,
            Richardson & Green, J. R. Stat. Soc. B 59 (1997) 731). Default False.
        loso: Values of a single condition at which the final choice step (``restarts``
            and then ``smooth``) scores its candidates by leave-one-condition-out
            cross-validation instead of on ``X_val``: each candidate's polynomial family
            is refined on all samples (training and ``X_val``) from the candidate's
            coefficients, then, for each value s, refined again without the samples at
            s from that optimum, its warp fitted on top (from the identity, as in
            :meth:`refit`), and scored by the mean NLL per sample at s; the score is the
            mean over the values (each counts once; leave-one-out cross-validation,
            Stone, J. R. Stat. Soc. B 36 (1974) 111, here with warm starts). The
            candidates themselves and every earlier choice are unchanged. Each value
            must be a condition of the training or held-out samples. Default (): off.
        warp_knots: Knots k (in the unit of the single positive condition x) of the
            near-source terms max(0, ln(k / x))^3 for the warp logits alone (the family's
            parameter functions do not get them): each warp candidate (degree and degree
            in ln x of its logits) is also tried with the family's knots plus these,
            and competes with the others on the held-out likelihood (else the training
            BIC), so the warp can bend in distance below the knots where a polynomial in
            ln x over the whole range cannot. Default (): not tried.
        warp_knot_smooth: Curvature penalty strength (>= 0, as ``smooth``: the integral of
            the squared second derivative in ln x of each warp logit, relative to the whole
            sample's weight; Green & Silverman, Nonparametric Regression and Generalized
            Linear Models (1994), ch. 2) of the candidates with ``warp_knots`` alone: they
            are fitted with it in the warp choice, and if one of them wins its warp keeps
            at least this penalty (the larger of it and the family's strength) in the
            restarts, the ``smooth`` step, :meth:`refit` and the tail fit. Without it the
            knotted logits can overfit the conditions near the knots. Default 0.0: off.

    Attributes:
        formulas_: ``{"cdf": ..., "pdf": ...}`` of ``(t, *conditions)`` (the PDF is the
            symbolic derivative of the CDF with respect to t), plus the parameter
            functions of :attr:`params_` under their names (``mu_0``, ``log_sigma_0``, ...).
        formula_: ``formulas_["cdf"]``.
        params_: Dict name -> Formula of each transformed parameter as a function of x.
        bins_: DataFrame of the per-bin maximum-likelihood fits.
        nll_: Mean negative log-likelihood per sample after the joint refinement.
        param_model_used_: ``"symbolic"`` or ``"poly"``: with ``param_model="symbolic"``
            the polynomial baseline is refined too and wins if its likelihood is better.
        selection_: How that choice was made: ``on`` ("held-out" with ``X_val``, else
            "training"), ``nll_symbolic``, ``nll_poly`` (mean negative log-likelihood per
            sample; without ``X_val`` the training BIC) and the ``winner``; with several
            ``warp`` degrees also ``warp``: degree (``"m/k"`` with several
            ``warp_log_degree``) -> held-out mean NLL (or training BIC) and
            ``warp_degree`` (and ``warp_log_degree``); with several ``log_degree`` also
            ``log_degree``: degree -> score; always ``log_degree_used``.
        log_degree_: Degree in ln x of the polynomial parameter functions used.
        warp_log_degree_: Degree in ln x of the warp logits (0 without a warp).
        knots_: The knots of the near-source terms used (empty: none).
        warp_knots_: Those of the warp logits (the family's, or else all ``knots``
            where those won for the warp alone).
        warp_smooth_: The warp logits' own least penalty strength (``warp_knot_smooth``
            where a candidate with ``warp_knots`` won the warp choice, else 0).
        warp_degree_: Degree of the warp used (0: none); its logits are in
            :attr:`params_` as ``warp_a1``, ``warp_a2``, ...
        tail_log_degree_: Degree of ln(1/tau(x)) of the tail cut-off used (None: none);
            the function is in :attr:`params_` as ``tail_log_rate`` (1/unit of t).
        smooth_: The curvature penalty's strength used (0: none); :meth:`refit` uses it.
        restart_used_: Which start of the family won (0: the ladder's optimum, i > 0:
            restart i).

    Example:
        >>> import numpy as np
        >>> from ariasim.surrogates import SymbolicDensity
        >>> rng = np.random.default_rng(0)
        >>> d = rng.uniform(10, 100, 3000)  # a condition, e.g. a distance
        >>> t = rng.gamma(2.0, d / 10)      # the variable, e.g. a delay
        >>> dens = SymbolicDensity(param_model="poly", n_bins=6, min_per_bin=300,
        ...                        max_iter=50, variable_names=["d"], random_state=0)
        >>> dens = dens.fit(d[:, None], t)
        >>> sorted(dens.formulas_)[:3]
        ['cdf', 'log_q_0', 'log_sigma_0']
        >>> dens.formula_.output.name, [v.name for v in dens.formula_.variables]
        ('cdf', ['t', 'd'])
        >>> float(dens.cdf(np.array([1e9]), np.array([[50.0]]))[0])
        1.0
    """

    def __init__(
        self,
        *,
        n_components: int = 1,
        point_mass: bool = False,
        t_min: float = 0.0,
        n_bins: int = 30,
        min_per_bin: int = 200,
        param_model: str = "symbolic",
        max_time: float = 10.0,
        random_state: int | np.random.Generator | None = None,
        variable_names: Sequence[str] | None = None,
        variable_units: Sequence[str] | None = None,
        t_name: str = "t",
        t_unit: str = "",
        max_iter: int = 300,
        refine_samples: int = 30_000,
        generations: int | None = None,
        warp: int | Sequence[int] = 0,
        log_degree: int | Sequence[int] = 2,
        warp_log_degree: int | Sequence[int] | None = None,
        knots: Sequence[float] = (),
        tail_log_degree: int | Sequence[int] | None = None,
        smooth: float | Sequence[float] = 0.0,
        restarts: int = 0,
        val_per_condition: bool = False,
        ordered_means: bool = False,
        loso: Sequence[float] = (),
        warp_knots: Sequence[float] = (),
        warp_knot_smooth: float = 0.0,
    ):
        self.n_components = n_components
        self.point_mass = point_mass
        self.t_min = t_min
        self.n_bins = n_bins
        self.min_per_bin = min_per_bin
        self.param_model = param_model
        self.max_time = max_time
        self.random_state = random_state
        self.variable_names = variable_names
        self.variable_units = variable_units
        self.t_name = t_name
        self.t_unit = t_unit
        self.max_iter = max_iter
        self.refine_samples = refine_samples
        self.generations = generations
        self.warp = warp
        self.log_degree = log_degree
        self.warp_log_degree = warp_log_degree
        self.knots = knots
        self.tail_log_degree = tail_log_degree
        self.smooth = smooth
        self.restarts = restarts
        self.val_per_condition = val_per_condition
        self.ordered_means = ordered_means
        self.loso = loso
        self.warp_knots = warp_knots
        self.warp_knot_smooth = warp_knot_smooth

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # y: the samples of the density's variable
        tags.target_tags.positive_only = True  # t >= t_min (0 by default)
        return tags

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight_val: Any = None,
    ) -> SymbolicDensity:
        """Fit p(y | x) to the samples ``y`` of the variable (the ``t`` of the formulas,
        shape (n,)) under the conditions ``X`` (shape (n, d), or (n,) for one condition),
        in the estimator order of scikit-learn. Returns ``self``.

        ``sample_weight`` are frequency weights (a weight of 2 counts as two samples; the
        per-bin errors use their sum). ``X_val``, ``y_val`` (and ``sample_weight_val``):
        held-out samples on which the symbolic and the polynomial parameter functions
        are compared (mean negative log-likelihood; default: the training samples).

        Runs with one BLAS thread (:func:`~ariasim.surrogates.formula.single_threaded_blas`):
        the QR factorisations and products over all samples would otherwise round
        differently with the number of threads, and so would the fitted constants.
        """
        with single_threaded_blas():
            return self._fit(X, y, sample_weight, X_val, y_val, sample_weight_val)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        X_val: Any,
        y_val: Any,
        sample_weight_val: Any,
    ) -> SymbolicDensity:
        if self.n_components not in (1, 2):
            raise ConfigError("must be 1 or 2", parameter="n_components")
        if self.param_model not in ("symbolic", "poly"):
            raise ConfigError("must be 'symbolic' or 'poly'", parameter="param_model")
        degrees = _warp_degrees(self.warp)
        _log_degrees(self.log_degree)
        if self.warp_log_degree is not None:
            _log_degrees(self.warp_log_degree, "warp_log_degree")
        tail_degrees = _tail_degrees(self.tail_log_degree)
        smooths = _smooth_values(self.smooth)
        if (
            isinstance(self.restarts, bool)
            or not isinstance(self.restarts, (int, np.integer))
            or not 0 <= self.restarts <= 100
        ):
            raise ConfigError(
                f"must be an integer 0-100; got {self.restarts!r}", parameter="restarts"
            )
        if not isinstance(self.ordered_means, (bool, np.bool_)):
            raise ConfigError(
                f"must be True or False; got {self.ordered_means!r}", parameter="ordered_means"
            )
        if self.ordered_means and self.n_components != 2:
            raise ConfigError("needs n_components=2", parameter="ordered_means")
        loso_values = _loso_values(self.loso)
        if not isinstance(self.val_per_condition, (bool, np.bool_)):
            raise ConfigError(
                f"must be True or False; got {self.val_per_condition!r}",
                parameter="val_per_condition",
            )
        try:
            X, t = validate_data(
                self,
                X,
                y,
                dtype=np.float64,
                y_numeric=True,
                ensure_all_finite=False,
                ensure_min_samples=3,
            )
        except ValueError as exc:
            raise InputError(str(exc), column=self.t_name if y is None else None) from exc
        if not (np.isfinite(X).all() and np.isfinite(t).all()):
            raise InputError("t and X must be finite (no NaN or inf)")
        n, d = X.shape
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w.shape != (n,) or (w < 0).any() or not np.isfinite(w).all():
            raise ConfigError(
                "must be finite, non-negative, one per sample", parameter="sample_weight"
            )
        if (t < self.t_min).any():
            raise InputError(
                f"{int((t < self.t_min).sum())} value(s) of t below t_min = {self.t_min}",
                column=self.t_name,
            )
        knots = _check_knots(self.knots, d)
        warp_knots = _check_knots(self.warp_knots, d, "warp_knots")
        if not isinstance(self.warp_knot_smooth, (int, float, np.integer, np.floating)):
            raise ConfigError(
                f"must be a number >= 0; got {self.warp_knot_smooth!r}",
                parameter="warp_knot_smooth",
            )
        _smooth_values(self.warp_knot_smooth, "warp_knot_smooth")
        names = list(self.variable_names or [f"x{j}" for j in range(d)])
        if len(names) != d:
            raise ConfigError(f"{len(names)} names for {d} columns", parameter="variable_names")
        check_name(self.t_name)
        units = list(self.variable_units or [""] * d)
        self.variables_ = [
            Variable(nm, unit=u, low=float(X[:, j].min()), high=float(X[:, j].max()))
            for j, (nm, u) in enumerate(zip(names, units, strict=True))
        ]
        for parameter, given in (("knots", knots), ("warp_knots", warp_knots)):
            if given and not (self.variables_[0].low or 0.0) > 0:
                raise ConfigError(
                    "need a condition that is positive everywhere", parameter=parameter
                )
        self.ordered_means_ = bool(self.ordered_means)
        if loso_values and d != 1:
            raise ConfigError("needs a single condition", parameter="loso")
        if smooths != [0.0] and not (d == 1 and (self.variables_[0].low or 0.0) > 0):
            raise ConfigError(
                "needs a single condition that is positive everywhere", parameter="smooth"
            )
        rng = as_generator(self.random_state)
        u = t - self.t_min
        # t == t_min exactly has zero density for p k > 1; it is dropped, unless it is
        # what the point mass describes
        keep = u >= 0 if self.point_mass else u > 0
        u, X, w = u[keep], X[keep], w[keep]

        n_bins = max(1, min(self.n_bins, int(u.size // self.min_per_bin)))
        if n_bins < 3:
            raise InputError(
                f"need at least {3 * self.min_per_bin} samples "
                f"(3 bins of min_per_bin={self.min_per_bin}), got {u.size}"
            )
        bins = condition_bins(X, n_bins, weights=w, random_state=rng)
        self.bins_ = self._fit_bins(u, X, w, bins)
        sub = (
            rng.choice(u.size, self.refine_samples, replace=False)
            if u.size > self.refine_samples
            else slice(None)
        )
        self.warp_degree_ = 0
        self.warp_log_degree_ = 0
        self.knots_: tuple[float, ...] = ()
        self.warp_knots_: tuple[float, ...] = ()
        self.warp_smooth_ = 0.0
        self.tail_log_degree_: int | None = None
        self.smooth_ = 0.0
        self.restart_used_ = 0
        log_degrees = _log_degrees(self.log_degree)
        self.log_degree_ = log_degrees[0]
        val = self._validation(X_val, y_val, sample_weight_val, d)
        self.selection_: dict[str, Any] = {"on": "training" if val is None else "held-out"}
        n_eff = float(w[sub].sum())

        def score(nll: float) -> float:
            """Held-out mean NLL, else the training BIC with n = the sum of the weights."""
            if val is not None:
                return self.mean_nll(*val)
            n_par = sum(len(f.constants) for f in self.params_.values())
            return 2.0 * n_eff * nll + n_par * math.log(max(n_eff, 2.0))

        if self.param_model == "symbolic":
            self.params_ = self._fit_param_functions(self.bins_, rng)
            self.nll_ = self._refine(u[sub], X[sub], w[sub])
            symbolic = (self.params_, self.nll_, score(self.nll_))
        # the polynomial parameter functions, one fit per degree in ln x; the symbolic
        # ones must earn their place: they are kept only if their (held-out) likelihood
        # after the joint refinement beats the best polynomial's. The ladder: each degree
        # in ln x, then the highest with the first knot, the first two, ...
        ladder: list[tuple[int, tuple[float, ...]]] = [(k, ()) for k in log_degrees]
        ladder += [(log_degrees[-1], knots[: j + 1]) for j in range(len(knots))]
        polys: dict[tuple[int, tuple[float, ...]], tuple[dict[str, Formula], float, float]] = {}
        coef = None
        for k, kn in ladder:  # each starts from the optimum of the one below
            self.log_degree_, self.knots_ = k, kn
            self.params_, coef, nll = self._fit_poly(u[sub], X[sub], w[sub], k, coef, kn)
            polys[k, kn] = (self.params_, nll, score(nll))
        best = min(ladder, key=lambda c: (polys[c][2], len(c[1]), c[0]))
        best_k = best[0]
        self.log_degree_, self.knots_ = best

        def label(c: tuple[int, tuple[float, ...]]) -> str:
            return str(c[0]) + "".join(f"+knot {v:g}" for v in c[1])

        if len(ladder) > 1:
            self.selection_["log_degree"] = {
                "on": "held-out mean NLL" if val is not None else "training BIC",
                **{label(c): float(v[2]) for c, v in polys.items()},
            }
        if knots:
            self.selection_["knots_used"] = list(self.knots_)
        self.params_, self.nll_, score_poly = polys[best]
        self.param_model_used_ = "poly"
        if self.param_model == "symbolic":
            self.selection_.update({"nll_symbolic": symbolic[2], "nll_poly": score_poly})
            if symbolic[2] <= score_poly or not np.isfinite(score_poly):
                self.params_, self.nll_ = symbolic[0], symbolic[1]
                self.param_model_used_ = "symbolic"
        elif val is not None:
            self.selection_["nll_poly"] = score_poly
        self.selection_["log_degree_used"] = best_k
        self.selection_["winner"] = self.param_model_used_
        if degrees != [0]:
            self._select_warp(u[sub], X[sub], w[sub], val, degrees, knots, warp_knots)
        self._loso_data = None
        if loso_values and self.param_model_used_ == "poly":
            self._loso_data = self._loso_samples(u, X, w, X_val, y_val, sample_weight_val)
        if self.restarts and self.param_model_used_ == "poly":
            seed = (
                int(self.random_state)
                if isinstance(self.random_state, (int, np.integer))
                else int(rng.integers(2**63 - 1))
            )
            self._restart(u[sub], X[sub], w[sub], val, spawn_seeds(seed, int(self.restarts)))
        if smooths != [0.0] and self.param_model_used_ == "poly":
            self._select_smooth(u[sub], X[sub], w[sub], val, smooths)
        self._loso_data = None
        if tail_degrees:
            self._select_tail(u[sub], X[sub], w[sub], val, tail_degrees)
        self._build_formulas()
        return self

    def refit(self, X: Any, y: Any, sample_weight: Any = None) -> SymbolicDensity:
        """Fit the chosen polynomial parameter functions again on other samples (e.g.
        all training samples, after the kind, degrees, knots and warp were chosen with
        some of them left out), starting from the current optimum: their coefficients
        are refined by the same unbinned likelihood (:meth:`_refine_poly`), then the
        warp of the chosen degree is fitted again on top, from the identity as in
        :meth:`fit` (its fit with the family held fixed does not stall), and so is the
        tail cut-off, if any. A joint fit of
        the family from scratch on the new samples can stall in a poorer optimum; this
        one starts where the first ended.
        Returns ``self``; :attr:`bins_` and :attr:`selection_` are left as they were.
        Runs with one BLAS thread, like :meth:`fit`."""
        with single_threaded_blas():
            return self._refit(X, y, sample_weight)

    def _refit(self, X: Any, y: Any, sample_weight: Any) -> SymbolicDensity:
        check_is_fitted(self, "params_")
        if getattr(self, "param_model_used_", "poly") != "poly":
            raise ConfigError("only polynomial parameter functions", parameter="param_model")
        t, X = _check_tx(y, X, self.n_features_in_)
        w = np.ones(t.size) if sample_weight is None else np.asarray(sample_weight, float)
        if w.shape != t.shape or (w < 0).any() or not np.isfinite(w).all():
            raise ConfigError(
                "must be finite, non-negative, one per sample", parameter="sample_weight"
            )
        u = t - self.t_min
        keep = u >= 0 if self.point_mass else u > 0
        u, X, w = u[keep], X[keep], w[keep]
        rng = as_generator(self.random_state)
        sub = (
            rng.choice(u.size, self.refine_samples, replace=False)
            if u.size > self.refine_samples
            else slice(None)
        )
        names = self._names()
        terms = _poly_terms(self.variables_, self.log_degree_, getattr(self, "knots_", ()))
        C = _poly_coefs(self.params_, terms, names)
        A = _term_matrix(terms, self.variables_, X[sub])
        lam = float(getattr(self, "smooth_", 0.0))
        D = _curvature_matrix(terms, self.variables_) if lam > 0 else None
        C, self.nll_ = self._refine_poly(u[sub], w[sub], A, C, lam, D)
        self.params_ = _poly_params(C, terms, self.variables_, names)
        if lam > 0:  # the NLL without the penalty
            saved_warp, self.warp_degree_ = getattr(self, "warp_degree_", 0), 0
            saved_tail, self.tail_log_degree_ = getattr(self, "tail_log_degree_", None), None
            self.nll_ = self.mean_nll(u[sub] + self.t_min, X[sub], w[sub])
            self.warp_degree_, self.tail_log_degree_ = saved_warp, saved_tail
        tail = getattr(self, "tail_log_degree_", None)
        self.tail_log_degree_ = None  # fitted again below
        m = int(getattr(self, "warp_degree_", 0))
        if m:  # the warp on top, from the identity as in :meth:`fit`
            k = self.warp_log_degree_ or 2
            kn = getattr(self, "warp_knots_", ())
            lam_w = self._warp_smooth(lam)
            self.params_.update(self._fit_warp(u[sub], X[sub], w[sub], m, k, kn, smooth=lam_w))
            self.nll_ = self.mean_nll(u[sub] + self.t_min, X[sub], w[sub])
        if tail is not None:  # and the tail cut-off (with the warp), as in :meth:`fit`
            self.params_.update(self._tail_fit(u[sub], X[sub], w[sub], tail))
            self.tail_log_degree_ = tail
            self.nll_ = self.mean_nll(u[sub] + self.t_min, X[sub], w[sub])
        self._build_formulas()
        return self

    def _restart(self, u, X, w, val, seeds: list[int]) -> None:
        """Refine the chosen polynomial family from perturbed starts (its coefficients
        in the weight-orthonormal basis plus N(0, 0.5^2) noise, one generator per seed),
        fit the chosen warp on top of each, and keep the best start (held-out mean NLL
        with ``val``, else the training NLL; ties to the first)."""
        names = self._names()
        terms = _poly_terms(self.variables_, self.log_degree_, self.knots_)
        A = _term_matrix(terms, self.variables_, X)
        base = dict(self.params_)
        C0 = _poly_coefs(base, terms, names)
        R: np.ndarray = np.linalg.qr(A * np.sqrt(w / w.sum())[:, None], mode="r")  # type: ignore[assignment]
        R_inv = np.linalg.pinv(R, rcond=1e-12)
        m = int(self.warp_degree_)
        fits = [(base, self.nll_)]
        scores = [self._choice_score(val, self.nll_)]
        for seed in seeds:
            rng_i = np.random.default_rng(seed)
            noise = rng_i.normal(0.0, _RESTART_SCALE, (R.shape[0], C0.shape[1]))
            C, _ = self._refine_poly(u, w, A, R_inv @ (R @ C0 + noise))
            self._warp_on(u, X, w, _poly_params(C, terms, self.variables_, names), m)
            nll = self.mean_nll(u + self.t_min, X, w)
            fits.append((dict(self.params_), nll))
            scores.append(self._choice_score(val, nll))
        best = min(range(len(scores)), key=lambda i: (scores[i], i))
        self.params_, self.nll_ = fits[best]
        self.warp_degree_ = m
        self.restart_used_ = best
        self.selection_["restarts"] = {
            "on": self._choice_label(val, "training NLL"),
            **{str(i): float(v) for i, v in enumerate(scores)},
        }
        self.selection_["restart_used"] = best
        self._loso_record()

    def _choice_score(self, val, nll: float, smooth: float = 0.0) -> float:
        """Score of the current candidate (``params_``, penalty ``smooth``) in the final
        choice step: leave-one-condition-out with ``loso`` (:meth:`_loso_score`), else the
        held-out mean NLL with ``val``, else the training NLL ``nll``."""
        if getattr(self, "_loso_data", None) is not None:
            return self._loso_score(smooth)
        return self.mean_nll(*val) if val is not None else nll

    def _choice_label(self, val, otherwise: str) -> str:
        if getattr(self, "_loso_data", None) is not None:
            vals = ", ".join(f"{v:g}" for v in _loso_values(self.loso))
            return f"leave-one-condition-out mean NLL ({vals})"
        return "held-out mean NLL" if val is not None else otherwise

    def _loso_samples(self, u, X, w, X_val, y_val, w_val) -> dict[str, Any]:
        """The samples the leave-one-condition-out scores use: the training samples
        (``u`` = t - t_min, as :meth:`fit` keeps them) and the held-out ones with their
        own weights (not reweighted per condition), at most ``refine_samples`` of them
        (a fixed random subset, seed from ``random_state``)."""
        values = _loso_values(self.loso)
        if X_val is not None and y_val is not None:
            tv, Xv = _check_tx(y_val, X_val, X.shape[1])
            wv = np.ones(tv.size) if w_val is None else np.asarray(w_val, dtype=float).ravel()
            uv = tv - self.t_min
            keep = uv >= 0 if self.point_mass else uv > 0
            u = np.concatenate([u, uv[keep]])
            X = np.concatenate([X, Xv[keep]])
            w = np.concatenate([w, wv[keep]])
        if u.size > self.refine_samples:
            seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
            idx = np.sort(
                np.random.default_rng(int(seed)).choice(u.size, self.refine_samples, replace=False)
            )
            u, X, w = u[idx], X[idx], w[idx]
        masks = [np.isclose(X[:, 0], v, rtol=1e-9, atol=1e-12) for v in values]
        for v, mk in zip(values, masks, strict=True):
            if not mk.any() or w[mk].sum() <= 0:
                raise ConfigError(
                    f"{v:g} is not a condition of the training or held-out samples",
                    parameter="loso",
                )
        return {"u": u, "X": X, "w": w, "masks": masks, "memo": {}}

    def _loso_score(self, smooth: float = 0.0) -> float:
        """Leave-one-condition-out score of the current candidate (the polynomial family
        in ``params_`` with the warp of degree ``warp_degree_``) under the curvature
        penalty ``smooth``: the family is refined on all the :meth:`_loso_samples` from
        its coefficients; then for each ``loso`` value s it is refined without the
        samples at s from that optimum, the warp fitted on top from the identity, and the
        mean NLL per sample at s taken. Returns the mean over the values; the state of
        the estimator is left as it was."""
        data = self._loso_data
        assert data is not None
        key = self._loso_key(smooth)
        if key in data["memo"]:
            return float(np.mean(data["memo"][key]))
        saved = dict(self.params_), self.warp_degree_, self.nll_
        u, X, w = data["u"], data["X"], data["w"]
        names = self._names()
        terms = _poly_terms(self.variables_, self.log_degree_, self.knots_)
        A = _term_matrix(terms, self.variables_, X)
        D = _curvature_matrix(terms, self.variables_) if smooth > 0 else None
        C, _ = self._refine_poly(u, w, A, _poly_coefs(saved[0], terms, names), smooth, D)
        m = int(saved[1])
        per = []
        for mk in data["masks"]:
            rest = ~mk
            C_s, _ = self._refine_poly(u[rest], w[rest], A[rest], C, smooth, D)
            params = _poly_params(C_s, terms, self.variables_, names)
            self._warp_on(u[rest], X[rest], w[rest], params, m, smooth)
            per.append(self.mean_nll(u[mk] + self.t_min, X[mk], w[mk]))
        self.params_, self.warp_degree_, self.nll_ = saved
        data["memo"][key] = per
        return float(np.mean(per))

    def _loso_key(self, smooth: float) -> tuple[float, tuple[str, ...]]:
        """Memo key of the current candidate's leave-one-condition-out NLLs."""
        return float(smooth), tuple(str(f) for f in self.params_.values())

    def _loso_record(self, smooth: float = 0.0) -> None:
        """Write the chosen candidate's leave-one-condition-out NLL per left-out value
        into :attr:`selection_` (``loso_per_condition``), when it was scored so."""
        data = getattr(self, "_loso_data", None)
        if data is None:
            return
        key = self._loso_key(smooth)
        if key in data["memo"]:
            self.selection_["loso_per_condition"] = {
                f"{v:g}": float(x)
                for v, x in zip(_loso_values(self.loso), data["memo"][key], strict=True)
            }

    def _warp_smooth(self, smooth: float = 0.0) -> float:
        """The penalty strength of a warp fit after the choice: ``smooth``, but at least
        the chosen warp's own (:attr:`warp_smooth_`, e.g. that of penalised warp knots)."""
        return max(smooth, float(getattr(self, "warp_smooth_", 0.0)))

    def _warp_on(self, u, X, w, params: dict, m: int, smooth: float = 0.0) -> None:
        """Make ``params`` the family (``params_``) and fit the chosen warp of degree ``m``
        (its logits' degree and knots) on top of it, into ``params``, with the penalty
        ``smooth`` (at least the warp's own, :attr:`warp_smooth_`); ``warp_degree_`` is
        ``m`` afterwards."""
        self.params_, self.warp_degree_ = params, 0
        if m:
            k, kn = self.warp_log_degree_ or 2, self.warp_knots_
            params.update(self._fit_warp(u, X, w, m, k, kn, smooth=self._warp_smooth(smooth)))
        self.warp_degree_ = m

    def _select_smooth(self, u, X, w, val, smooths: list[float]) -> None:
        """Try each curvature penalty strength on top of the chosen polynomial family
        (refined from its unpenalised optimum) and warp (fitted again with the penalty);
        keep the best by held-out mean NLL (ties: the smaller strength), or without
        ``val`` the smallest strength."""
        names = self._names()
        terms = _poly_terms(self.variables_, self.log_degree_, self.knots_)
        A = _term_matrix(terms, self.variables_, X)
        D = _curvature_matrix(terms, self.variables_)
        base = dict(self.params_)
        C0 = _poly_coefs(base, terms, names)
        m = int(self.warp_degree_)
        scores: dict[float, float] = {}
        fits: dict[float, tuple[dict[str, Formula], float]] = {}
        choose = val is not None or self._loso_data is not None
        for lam in smooths if choose else smooths[:1]:
            params = dict(base)
            if lam > 0:
                C, _ = self._refine_poly(u, w, A, C0, lam, D)
                params = _poly_params(C, terms, self.variables_, names)
                self._warp_on(u, X, w, params, m, lam)
            self.params_, self.warp_degree_ = params, m
            nll = self.mean_nll(u + self.t_min, X, w) if lam > 0 else self.nll_
            scores[lam] = self._choice_score(val, nll, lam)
            fits[lam] = (params, nll)
        best = min(scores, key=lambda v: (scores[v], v))
        self.params_, self.nll_ = fits[best]
        self.warp_degree_ = m
        self.smooth_ = best
        self.selection_["smooth"] = {
            "on": self._choice_label(val, "the smallest (no held-out samples)"),
            **{f"{v:g}": float(sc) for v, sc in scores.items()},
        }
        self.selection_["smooth_used"] = best
        self._loso_record(best)

    def _select_warp(
        self,
        u,
        X,
        w,
        val,
        degrees: list[int],
        knots: tuple[float, ...] = (),
        warp_knots: tuple[float, ...] = (),
    ) -> None:
        """Fit the warp of each degree (and each degree in ln x of its logits) on top of
        the fitted family; keep the best one (held-out mean NLL with ``val``, else BIC
        with n = the sum of the weights). The logits get the family's knots; with
        ``knots`` that the family did not take, each candidate is also tried with them
        (label suffix ``+knots``), and with ``warp_knots``, with the family's knots plus
        those (label suffix ``+warp knots``; fitted with the penalty
        ``warp_knot_smooth``)."""
        base, base_nll = dict(self.params_), self.nll_
        n_eff = float(w.sum())
        log_degrees = (
            [self.log_degree_]
            if self.warp_log_degree is None
            else _log_degrees(self.warp_log_degree, "warp_log_degree")
        )  # fmt: skip
        knot_sets = [self.knots_] + ([knots] if knots and knots != self.knots_ else [])
        extra = tuple(self.knots_) + tuple(k for k in warp_knots if k not in self.knots_)
        with_warp_knots = extra if warp_knots and extra not in knot_sets else None
        if with_warp_knots is not None:
            knot_sets.append(with_warp_knots)
        Cand = tuple[int, int, tuple[float, ...]]
        cands: list[Cand] = [(0, 0, ())] if 0 in degrees else []
        cands += [(m, k, kn) for m in degrees if m > 0 for k in log_degrees for kn in knot_sets]
        scores: dict[Cand, float] = {}
        fits: dict[Cand, tuple[dict[str, Formula], float]] = {}
        lam_k = float(self.warp_knot_smooth)
        for m, k, kn in cands:
            self.params_, self.warp_degree_ = dict(base), 0
            if m > 0:
                lam = lam_k if kn == with_warp_knots else 0.0
                self.params_.update(self._fit_warp(u, X, w, m, k, kn, smooth=lam))
                self.warp_degree_ = m
            nll = self.mean_nll(u + self.t_min, X, w) if m > 0 else base_nll
            n_par = (m - 1) * len(_warp_terms(self.variables_, k, kn)) if m else 0
            if val is not None:
                scores[m, k, kn] = self.mean_nll(*val)
            else:
                scores[m, k, kn] = 2.0 * n_eff * nll + n_par * math.log(max(n_eff, 2.0))
            fits[m, k, kn] = (dict(self.params_), nll)
        best = min(cands, key=lambda c: (scores[c], c[0], c[1], len(c[2])))
        self.params_, self.nll_ = fits[best]
        self.warp_degree_ = best[0]
        self.warp_log_degree_ = best[1]
        self.warp_knots_ = best[2]
        self.warp_smooth_ = lam_k if best[0] and best[2] == with_warp_knots else 0.0

        def label(c: Cand) -> str:
            out = str(c[0]) if len(log_degrees) == 1 or c[0] == 0 else f"{c[0]}/{c[1]}"
            if c[2] == with_warp_knots:
                return out + "+warp knots"
            return out + ("+knots" if c[2] != self.knots_ else "")

        self.selection_["warp"] = {
            "on": "held-out mean NLL" if val is not None else "training BIC",
            **{label(c): float(v) for c, v in scores.items()},
        }
        self.selection_["warp_degree"] = best[0]
        if len(log_degrees) > 1:
            self.selection_["warp_log_degree"] = best[1]
        if len(knot_sets) > 1:
            self.selection_["warp_knots_used"] = list(best[2])
        if lam_k > 0 and with_warp_knots is not None:
            self.selection_["warp_knot_smooth_used"] = self.warp_smooth_

    def _fit_warp(
        self,
        u,
        X,
        w,
        m: int,
        log_degree: int = 2,
        knots: tuple[float, ...] = (),
        tail: int | None = None,
        smooth: float = 0.0,
    ) -> dict[str, Formula]:
        """Unbinned maximum likelihood of the warp logits (the conditions' warp terms
        of ``log_degree`` and ``knots``) with the family held fixed; returns the
        ``warp_a*`` formulas. The family's log-density is a constant here, so only
        log B'(G) is maximised. With ``tail`` (a degree), the tail cut-off's
        ln(1/tau(x)) of that degree is fitted together with the logits (from its fit
        on the unwarped family, :meth:`_fit_tail`) and returned too: the density is
        then (B'(G) g + (1 - B(G)) / tau) exp(-u / tau), with 1 - B(G) = sum_i
        (1 - S_i) binomial(m, i) G^i (1 - G)^(m - i). With ``smooth`` > 0 the
        curvature penalty of the logits in ln x (as in :meth:`_refine_poly`, relative
        to the whole sample's weight) is added to the mean NLL."""
        import torch

        from ariasim.surrogates.training import deterministic

        cont = u > 0
        P = self._params_at(X[cont])
        log_g, log_s = _log_cdf_sf(u[cont], P, self.n_components)
        terms = _warp_terms(self.variables_, log_degree, knots)
        syms = [sp.Symbol(v.name, real=True) for v in self.variables_]
        A = np.column_stack(
            [
                np.broadcast_to(sp.lambdify(syms, tm, "numpy")(*X[cont].T), (int(cont.sum()),))
                for tm in terms
            ]
        )
        # optimise in a basis that is orthonormal under the sample weights (powers of
        # ln x are nearly collinear): A = B R with B = A R^-1, the logits' coefficients
        # on the terms are R^-1 g
        wn = w[cont] / w[cont].sum()
        R: np.ndarray = np.linalg.qr(A * np.sqrt(wn)[:, None], mode="r")  # type: ignore[assignment]
        R_inv = np.linalg.pinv(R, rcond=1e-12)
        j = np.arange(m)
        lb = _bernstein_log_norm(m)
        tail_formula: dict[str, Formula] = {}
        if tail is not None:
            saved = self.params_, getattr(self, "warp_degree_", 0)
            self.params_ = {k: f for k, f in self.params_.items() if not k.startswith("warp_")}
            self.warp_degree_ = 0
            tail_formula = self._fit_tail(u, X, w, tail)
            self.params_, self.warp_degree_ = saved
            t_terms = _warp_terms(self.variables_, tail)
            At = _term_matrix(t_terms, self.variables_, X[cont])
            Rt: np.ndarray = np.linalg.qr(At * np.sqrt(wn)[:, None], mode="r")  # type: ignore[assignment]
            Rt_inv = np.linalg.pinv(Rt, rcond=1e-12)
            t0 = _poly_coefs(tail_formula, t_terms, ["tail_log_rate"])[:, 0]
            log_f = _logpdf(u[cont], P, self.n_components)
            i = np.arange(m + 1)
            log_bin = (
                (special.gammaln(m + 1) - special.gammaln(i + 1) - special.gammaln(m - i + 1))[:m]
                + i[:m] * log_g[:, None]
                + (m - i[:m]) * log_s[:, None]
            )
        with deterministic(1):
            dt = torch.float64
            A_t = torch.tensor(A @ R_inv, dtype=dt)
            # log of each Bernstein basis density at G, per sample: (n, m)
            logb = torch.tensor(
                lb + j * log_g[:, None] + (m - 1 - j) * log_s[:, None], dtype=dt
            )  # fmt: skip
            w_t = torch.tensor(w[cont] / w.sum(), dtype=dt)
            beta = torch.zeros((R.shape[0], m - 1), dtype=dt, requires_grad=True)
            zero = torch.zeros((A.shape[0], 1), dtype=dt)
            DR_t = None
            if smooth > 0:
                D = _curvature_matrix(terms, self.variables_)
                DR_t = torch.tensor(D @ R_inv, dtype=dt)
            leaves = [beta]
            if tail is not None:
                At_t = torch.tensor(At @ Rt_inv, dtype=dt)
                gamma = torch.tensor(Rt @ t0, dtype=dt, requires_grad=True)
                leaves.append(gamma)
                lf_t = torch.tensor(log_f, dtype=dt)
                lbin_t = torch.tensor(log_bin, dtype=dt)
                u_t = torch.tensor(u[cont], dtype=dt)

            def loss_fn():
                a = torch.cat([zero, A_t @ beta], dim=1)
                logc = a - torch.logsumexp(a, dim=1, keepdim=True)
                lp = torch.logsumexp(logc + logb, dim=1)
                if tail is not None:  # log 1 - S_i = log(c_i + ... + c_(m-1)), i < m
                    log_rest = torch.flip(torch.logcumsumexp(torch.flip(logc, [1]), 1), [1])
                    log_sf = torch.logsumexp(log_rest + lbin_t, dim=1)
                    r = At_t @ gamma
                    lp = torch.logaddexp(lp + lf_t, log_sf + r) - u_t * torch.exp(r)
                out = -(w_t * lp).sum()
                if DR_t is not None:
                    out = out + smooth * ((DR_t @ beta) ** 2).sum()
                return out

            _lbfgs_run(leaves, loss_fn, max(self.max_iter, 50), torch)
            b = beta.detach().numpy()
            if not np.isfinite(b).all():
                b = np.zeros_like(b)
            if tail is not None:
                g = gamma.detach().numpy()
                if np.isfinite(g).all():
                    tc = Rt_inv @ g
                    expr = sum(sp.Float(float(c)) * tm for c, tm in zip(tc, t_terms, strict=True))
                    tail_formula = {
                        "tail_log_rate": Formula(expr, self.variables_, output="tail_log_rate")
                    }
        coef = R_inv @ b
        return {
            **{
                nm: Formula(
                    sum(sp.Float(float(c)) * tm for c, tm in zip(coef[:, i], terms, strict=True)),
                    self.variables_,
                    output=nm,
                )
                for i, nm in enumerate(_warp_names(m))
            },
            **tail_formula,
        }

    def _select_tail(self, u, X, w, val, degrees: list[int]) -> None:
        """Fit the tail cut-off of each degree on top of the fitted family and warp and
        keep the best of them and no cut-off (held-out mean NLL with ``val``, else BIC
        with n = the sum of the weights); ties go to no cut-off, then the lowest degree."""
        base, base_nll = dict(self.params_), self.nll_
        n_eff = float(w.sum())
        scores: dict[int, float] = {}
        fits: dict[int, tuple[dict[str, Formula], float]] = {}
        for k in [-1, *degrees]:  # -1: no cut-off
            self.params_, self.tail_log_degree_ = dict(base), None
            nll = base_nll
            if k >= 0:
                self.params_.update(self._tail_fit(u, X, w, k))
                self.tail_log_degree_ = k
                nll = self.mean_nll(u + self.t_min, X, w)
            n_par = len(_warp_terms(self.variables_, k)) if k >= 0 else 0
            if val is not None:
                scores[k] = self.mean_nll(*val)
            else:
                scores[k] = 2.0 * n_eff * nll + n_par * math.log(max(n_eff, 2.0))
            fits[k] = (dict(self.params_), nll)
        best = min(scores, key=lambda k: (scores[k], k))
        self.params_, self.nll_ = fits[best]
        self.tail_log_degree_ = None if best < 0 else best
        self.selection_["tail"] = {
            "on": "held-out mean NLL" if val is not None else "training BIC",
            **{("none" if k < 0 else str(k)): float(v) for k, v in scores.items()},
        }
        self.selection_["tail_log_degree"] = self.tail_log_degree_

    def _tail_fit(self, u, X, w, log_degree: int) -> dict[str, Formula]:
        """The tail cut-off of ``log_degree`` on top of the family: with a warp, the
        warp of the same degree is fitted again together with it (:meth:`_fit_warp`);
        returns the new warp and tail formulas."""
        m = int(getattr(self, "warp_degree_", 0))
        if not m:
            return self._fit_tail(u, X, w, log_degree)
        saved = self.params_
        self.params_ = {k: f for k, f in saved.items() if not k.startswith("warp_")}
        try:
            k, kn = self.warp_log_degree_ or 2, getattr(self, "warp_knots_", ())
            return self._fit_warp(u, X, w, m, k, kn, tail=log_degree, smooth=self._warp_smooth())
        finally:
            self.params_ = saved

    def _fit_tail(self, u, X, w, log_degree: int) -> dict[str, Formula]:
        """Unbinned maximum likelihood of ln(1/tau(x)) (the conditions' warp terms of
        ``log_degree``, :func:`_warp_terms`) with the family and the warp held fixed;
        returns the ``tail_log_rate`` formula. The constant starts at the best of a grid
        of tau from the 10th percentile of the delays to 100 times the largest (the
        likelihood is flat for tau far above the delays, where the gradient vanishes)."""
        import torch

        from ariasim.surrogates.training import deterministic

        cont = u > 0
        uc, Xc = u[cont], X[cont]
        P = self._params_at(Xc)
        W = self._warp_at(Xc)
        # log f and log S of the continuous part (with its warp), per sample
        log_f = _logpdf(uc, P, self.n_components, False, W)
        log_g, log_s = _log_cdf_sf(uc, P, self.n_components)
        if W is not None:
            log_s = _warp_log_sf(log_g, log_s, W)
        terms = _warp_terms(self.variables_, log_degree)
        A = _term_matrix(terms, self.variables_, Xc)
        wn = w[cont] / w[cont].sum()
        ok = np.isfinite(log_f)
        log_f, log_s, uc, A, wn = log_f[ok], log_s[ok], uc[ok], A[ok], wn[ok]
        grid = np.log(1.0 / np.geomspace(np.quantile(uc, 0.1), 100.0 * uc.max(), 41))
        nll0 = [-float(np.sum(wn * _tail_logpdf(uc, log_f, log_s, np.full(uc.size, r))))
                for r in grid]  # fmt: skip
        r0 = float(grid[int(np.argmin(nll0))])
        # an orthonormal basis under the weights, as for the warp; the constant term is
        # the first column, so the start is r0 on it
        R: np.ndarray = np.linalg.qr(A * np.sqrt(wn)[:, None], mode="r")  # type: ignore[assignment]
        R_inv = np.linalg.pinv(R, rcond=1e-12)
        start = np.zeros(len(terms))
        start[0] = r0
        with deterministic(1):
            dt = torch.float64
            A_t = torch.tensor(A @ R_inv, dtype=dt)
            lf, ls = torch.tensor(log_f, dtype=dt), torch.tensor(log_s, dtype=dt)
            u_t, w_t = torch.tensor(uc, dtype=dt), torch.tensor(wn, dtype=dt)
            beta = torch.tensor(R @ start, dtype=dt, requires_grad=True)

            def loss_fn():
                r = A_t @ beta
                lp = torch.logaddexp(lf, ls + r) - u_t * torch.exp(r)
                return -(w_t * lp).sum()

            with torch.no_grad():
                before = float(loss_fn())
            _lbfgs_run([beta], loss_fn, max(self.max_iter, 50), torch)
            with torch.no_grad():
                after = float(loss_fn())
            b = beta.detach().numpy()
        coef = R_inv @ b if np.isfinite(b).all() and after <= before else start
        expr = sum(sp.Float(float(c)) * tm for c, tm in zip(coef, terms, strict=True))
        return {"tail_log_rate": Formula(expr, self.variables_, output="tail_log_rate")}

    def _validation(self, X_val: Any, y_val: Any, w_val: Any, d: int) -> Any:
        if X_val is None and y_val is None:
            return None
        if X_val is None or y_val is None:
            raise ConfigError("give both X_val and y_val", parameter="X_val")
        tv, Xv = _check_tx(y_val, X_val, d)
        wv = np.ones(tv.size) if w_val is None else np.asarray(w_val, dtype=float).ravel()
        if wv.shape != tv.shape or (wv < 0).any() or not np.isfinite(wv).all():
            raise ConfigError(
                "must be finite, non-negative, one per sample", parameter="sample_weight_val"
            )
        if self.val_per_condition:
            # each distinct condition gets the same total weight: the weighted mean NLL
            # is then the mean over conditions of each one's mean NLL per sample
            _, inv = np.unique(Xv, axis=0, return_inverse=True)
            inv = np.asarray(inv).ravel()
            tot = np.bincount(inv, weights=wv)
            if (tot <= 0).any():
                raise ConfigError(
                    "every held-out condition needs a positive total weight",
                    parameter="sample_weight_val",
                )
            wv = wv / tot[inv]
        return tv, Xv, wv

    def mean_nll(self, t: Any, X: Any, w: Any = None) -> float:
        """Weighted mean negative log-likelihood per sample of ``t`` under conditions ``X``
        (a point mass counts with log p0; inf if any sample is impossible)."""
        t, X = _check_tx(t, X, self.n_features_in_)
        w = np.ones(t.size) if w is None else np.asarray(w, dtype=float)
        lp = _logpdf(
            t - self.t_min,
            self._params_at(X),
            self.n_components,
            self.point_mass,
            self._warp_at(X),
            self._tail_at(X),
        )
        v = -float(np.sum(w * np.maximum(lp, -700.0)) / w.sum())
        return v if np.isfinite(v) else np.inf

    def _fit_bins(self, u, X, w, bins) -> pd.DataFrame:
        names = self._names()
        rows = []
        labels = np.unique(bins)
        # visit bins in order of the first condition and warm-start each fit from its
        # neighbour's solution: keeps mixture components from swapping between bins
        order = labels[np.argsort([X[bins == b, 0].mean() for b in labels])]
        previous = None
        for b in order:
            sel = bins == b
            ub, wb = u[sel], w[sel]
            if wb.sum() <= 0:
                continue
            _, est, err = self._fit_one(ub, wb, warm=previous)
            previous = est
            if self._ordered():  # ln(mu_1 - mu_0), error by the delta method
                est, err = np.array(est, dtype=float), np.array(err, dtype=float)
                gap = max(float(est[3] - est[0]), 1e-3)
                err[3] = math.hypot(err[0], err[3]) / gap
                est[3] = math.log(gap)
            rows.append(
                {
                    **{
                        f"x_{v.name}": float(np.average(X[sel, j], weights=wb))
                        for j, v in enumerate(self.variables_)
                    },
                    "n": int(sel.sum()),
                    **dict(zip(names, est, strict=True)),
                    **{f"err_{k}": e for k, e in zip(names, err, strict=True)},
                }
            )
        return pd.DataFrame(rows)

    def _fit_one(self, u: np.ndarray, w: np.ndarray, warm: np.ndarray | None = None):
        """Weighted MLE of the mixture in one bin (moment start and, if given, a warm
        start; the better optimum wins); components ordered by scale.

        With a point mass the likelihood factorises: p0 is the weighted fraction of
        samples at t_min (logit with the add-one-half rule, so that an empty mass stays
        finite; error 1/sqrt(n p0 (1 - p0))), the continuous part is fitted to the rest.
        """
        if self.point_mass:
            at0 = u == 0
            n_tot, n0 = float(w.sum()), float(w[at0].sum())
            p0 = (n0 + 0.5) / (n_tot + 1.0)
            cont_warm = None if warm is None else np.asarray(warm)[:-1]
            start, est, err = self._fit_cont(u[~at0], w[~at0], cont_warm)
            err_a = 1.0 / math.sqrt(max(n_tot * p0 * (1 - p0), 1e-12))
            return (
                np.r_[start, math.log(p0 / (1 - p0))],
                np.r_[est, math.log(p0 / (1 - p0))],
                np.r_[err, err_a],
            )
        return self._fit_cont(u, w, warm)

    def _fit_cont(self, u: np.ndarray, w: np.ndarray, warm: np.ndarray | None = None):
        lu = np.log(u)
        m = np.average(lu, weights=w)
        sd = max(np.sqrt(np.average((lu - m) ** 2, weights=w)), 1e-3)
        if self.n_components == 1:
            start = np.array([m, np.log(sd), np.log(0.5)])
        else:
            start = np.array(
                [
                    m - sd,
                    np.log(sd / 2),
                    np.log(0.5),
                    m + 0.5 * sd,
                    np.log(sd / 2),
                    np.log(0.5),
                    0.0,
                ]
            )
        wn = w / w.sum()
        names = _param_names(self.n_components)
        bounds = [
            _BOUNDS[n.rsplit("_", 1)[0]] if n != "logit_w" else _BOUNDS["logit_w"] for n in names
        ]

        def nll(p):
            val = -np.sum(wn * _logpdf(u, p, self.n_components))
            return val if np.isfinite(val) else 1e300

        best = None
        for x0 in [start] if warm is None else [start, np.asarray(warm, dtype=float)]:
            x0 = np.array(
                [
                    np.clip(v, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
                    for v, (lo, hi) in zip(x0, bounds, strict=True)
                ]
            )
            res = optimize.minimize(
                nll,
                x0,
                method="Nelder-Mead",
                options={"maxiter": 3000, "xatol": 1e-6, "fatol": 1e-10},
            )
            res = optimize.minimize(nll, res.x, method="L-BFGS-B", bounds=bounds)
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None  # at least one start point ran
        est = best.x
        if self.n_components == 2 and est[0] > est[3]:  # order components by location
            est = np.r_[est[3:6], est[0:3], -est[6]]
        n_eff = w.sum()  # frequency weights
        try:
            hess = numerical_hessian(nll, est) * n_eff
            err = np.sqrt(np.clip(np.diag(np.linalg.pinv(hess)), 1e-12, None))
        except np.linalg.LinAlgError:
            err = np.full(est.shape, np.inf)
        return start, est, err

    def _fit_param_functions(
        self, table: pd.DataFrame, rng, model: str | None = None
    ) -> dict[str, Formula]:
        from ariasim.surrogates.symbolic import SymbolicRegressor

        Xb = table[[f"x_{v.name}" for v in self.variables_]].to_numpy()
        # parameter functions must be finite over the whole range of the conditions, not
        # only at the bin centres: check them on the box spanned by the data, at random
        # points and at every corner (a pole or a negative root argument is often at one)
        grid = _check_grid(
            np.array([v.low for v in self.variables_]),
            np.array([v.high for v in self.variables_]),
        )
        out = {}
        for name in self._names():
            y = table[name].to_numpy()
            err = table[f"err_{name}"].to_numpy()
            wts = 1.0 / np.clip(err, 1e-6, None) ** 2
            wts = np.where(np.isfinite(wts), wts, 0.0)
            if wts.sum() == 0:
                wts = np.ones_like(y)
            formula = None
            if (model or self.param_model) == "symbolic" and len(y) >= 8:
                sr = SymbolicRegressor(
                    max_time=self.max_time,
                    generations=self.generations,
                    random_state=int(rng.integers(2**31 - 1)),
                    variable_names=[v.name for v in self.variables_],
                    target_name=name,
                    max_length=_PARAM_MAX_LENGTH,
                    # sympy writes an Operon tree out with a few times its nodes (a
                    # subtraction or division is two, a shared factor repeated): 4x admits
                    # the search's models and leaves out the structure search's sums of
                    # dozens of library terms (found in the media fit: a 256-node mu_1,
                    # 46 terms of order 1e-27 under a root, that its joint refit drove
                    # negative at a corner of the conditions)
                    max_complexity=4 * _PARAM_MAX_LENGTH,
                    selection="bic",
                    snap_constants=False,  # keep them refittable
                    validation_fraction=0.2,
                    operators=("add", "sub", "mul", "div", "exp", "log", "sqrt", "square"),
                )
                try:
                    formula = sr.fit(Xb, y, sample_weight=wts, X_check=grid).formula_
                except InputError:
                    formula = None
            if formula is None or not np.isfinite(formula(grid)).all():
                formula = _poly_formula(Xb, y, wts, self.variables_, name, self.log_degree_)
            out[name] = formula.replace(variables=self.variables_)
        return out

    def _refine(self, u: np.ndarray, X: np.ndarray, w: np.ndarray) -> float:
        """Joint unbinned maximum likelihood of every constant of every parameter formula.

        Updates :attr:`params_` in place; returns the mean negative log-likelihood. Runs
        on one torch thread: a parallel sum's rounding depends on the number of threads."""
        import torch

        from ariasim.surrogates.training import deterministic

        with deterministic(1):
            return self._refine_torch(u, X, w, torch)

    def _penalised_nll(self, u: np.ndarray, w: np.ndarray, torch: Any):
        """``f(cols)``: the weighted mean NLL of the parameter columns (n, n_par) plus a
        quadratic penalty outside _PENALTY_LOW/_HIGH: a mixture's likelihood is unbounded
        when a component's scale collapses onto a few samples, and far in the log-normal
        limit (Q -> 0) the generalized gamma's log-density is the difference of huge
        numbers; without it the refinement can go to either."""
        names = self._names()
        u_t = torch.tensor(u, dtype=torch.float64)
        w_t = torch.tensor(w / w.sum(), dtype=torch.float64)
        lo = torch.tensor(
            [_PENALTY_LOW.get(n.rsplit("_", 1)[0], -1e9) for n in names],
            dtype=torch.float64,
        )  # fmt: skip
        hi = torch.tensor(
            [_PENALTY_HIGH.get(n.rsplit("_", 1)[0], 1e9) for n in names],
            dtype=torch.float64,
        )  # fmt: skip

        ordered = self._ordered()

        def f(cols):
            out = torch.relu(lo - cols) ** 2 + torch.relu(cols - hi) ** 2
            if ordered:  # column 3 is ln(mu_1 - mu_0): mu_1 = mu_0 + exp(.)
                mu_1 = cols[:, 0] + torch.exp(torch.clamp(cols[:, 3], max=_LOG_DMU_MAX))
                cols = torch.cat([cols[:, :3], mu_1[:, None], cols[:, 4:]], dim=1)
            lp = _torch_logpdf(u_t, cols, self.n_components, self.point_mass)
            return -(w_t * lp).sum() + (w_t[:, None] * out).sum()

        return f

    def _lbfgs_rounds(self, total_nll, groups: list[list[Any]], torch: Any) -> None:
        """Maximise the likelihood over each group of tensors in turn: L-BFGS runs of
        ``max_iter`` iterations, repeated until one stops improving (a run that makes it
        worse is undone). The likelihood factorises into the point mass's and the
        continuous part's, so each is maximised on its own (for a polynomial logit_p0 a
        convex logistic regression, which a joint run leaves far from converged)."""
        with torch.no_grad():
            current = float(total_nll())
        for group in groups if self.max_iter > 0 else []:
            group = [p for p in group if p.numel()]
            for _ in range(_REFINE_ROUNDS if group else 0):
                saved = [p.detach().clone() for p in group]
                _lbfgs_run(group, total_nll, self.max_iter, torch)
                with torch.no_grad():
                    new = float(total_nll())
                    if not (np.isfinite(new) and (new < current or not np.isfinite(current))):
                        for p_, v in zip(group, saved, strict=True):
                            p_.copy_(v)
                        break
                gain, current = current - new, new
                if gain < 1e-10 * max(1.0, abs(new)):
                    break

    def _refine_torch(self, u: np.ndarray, X: np.ndarray, w: np.ndarray, torch: Any) -> float:
        names = self._names()
        modules = [self.params_[nm].torch(trainable=True, precondition=True) for nm in names]
        x_t = torch.tensor(X, dtype=torch.float64)
        nll = self._penalised_nll(u, w, torch)

        def total_nll():
            return nll(torch.stack([m(x_t) for m in modules], dim=-1))

        with torch.no_grad():
            before = float(total_nll())
        groups = [
            [m.raw for nm, m in zip(names, modules, strict=True) if nm != "logit_p0"],
            [m.raw for nm, m in zip(names, modules, strict=True) if nm == "logit_p0"],
        ]
        self._lbfgs_rounds(total_nll, groups, torch)
        with torch.no_grad():
            after = float(total_nll())
        if np.isfinite(after) and after < before:
            for nm, m in zip(names, modules, strict=True):
                if m.raw.numel():
                    self.params_[nm] = self.params_[nm].with_constants(
                        m.constants.detach().numpy().tolist()
                    )
            return after
        return before if np.isfinite(before) else np.inf

    def _fit_poly(
        self,
        u: np.ndarray,
        X: np.ndarray,
        w: np.ndarray,
        degree: int,
        start: Any = None,
        knots: Sequence[float] = (),
    ) -> tuple[dict[str, Formula], np.ndarray, float]:
        """Polynomial parameter functions (:func:`_poly_terms` of ``degree``) by joint
        unbinned maximum likelihood; returns the formulas, their coefficients (n_terms,
        n_par) and the mean NLL.

        The likelihood has several optima, so two starts compete: the weighted
        least-squares fits to the per-bin estimates, refined like any formula
        (:meth:`_refine`, whose steps scale with each constant's magnitude and can
        cross to another optimum), and, with ``start``, the coefficients of a lower
        degree (whose terms come first; the new ones start at 0), so that a higher
        degree never ends worse than the lower one. Both are then polished in a basis
        orthonormal under the sample weights (powers of ln x are nearly collinear); the
        better one is kept."""
        names = self._names()
        terms = _poly_terms(self.variables_, degree, knots)
        A = _term_matrix(terms, self.variables_, X)
        table = self.bins_
        Xb = table[[f"x_{v.name}" for v in self.variables_]].to_numpy()
        C0 = np.zeros((len(terms), len(names)))
        for i, nm in enumerate(names):
            err = table[f"err_{nm}"].to_numpy()
            wts = 1.0 / np.clip(err, 1e-6, None) ** 2
            wts = np.where(np.isfinite(wts), wts, 0.0)
            if wts.sum() == 0:
                wts = np.ones_like(err)
            sw = np.sqrt(wts)
            Ab = _term_matrix(terms, self.variables_, Xb)
            C0[:, i] = np.linalg.lstsq(Ab * sw[:, None], table[nm].to_numpy() * sw)[0]
        self.params_ = _poly_params(C0, terms, self.variables_, names)
        self._refine(u, X, w)
        starts = [_poly_coefs(self.params_, terms, names)]
        if start is not None:
            C = np.zeros((len(terms), len(names)))
            C[: np.shape(start)[0]] = start
            starts.append(C)
        best: tuple[np.ndarray, float] | None = None
        for C in starts:
            C, value = self._refine_poly(u, w, A, C)
            if best is None or value < best[1]:
                best = (C, value)
        assert best is not None
        return _poly_params(best[0], terms, self.variables_, names), best[0], best[1]

    def _refine_poly(
        self,
        u: np.ndarray,
        w: np.ndarray,
        A: np.ndarray,
        C: np.ndarray,
        smooth: float = 0.0,
        D: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        """L-BFGS on the coefficients C (n_terms, n_par) of polynomial parameter
        functions with the term matrix A, in a basis orthonormal under the weights:
        A = B R, C = R^-1 G. Returns the coefficients and the mean NLL (plus, with
        ``smooth`` > 0 and the curvature matrix ``D`` of the terms,
        :func:`_curvature_matrix`, the penalty ``smooth * ((D @ C)**2).sum()``, which
        is then part of what is minimised)."""
        import torch

        from ariasim.surrogates.training import deterministic

        names = self._names()
        R: np.ndarray = np.linalg.qr(A * np.sqrt(w / w.sum())[:, None], mode="r")  # type: ignore[assignment]
        R_inv = np.linalg.pinv(R, rcond=1e-12)
        p0 = [i for i, nm in enumerate(names) if nm == "logit_p0"]
        rest = [i for i, nm in enumerate(names) if nm != "logit_p0"]
        order = np.argsort(rest + p0)
        with deterministic(1):
            dt = torch.float64
            B_t = torch.tensor(A @ R_inv, dtype=dt)
            G0 = R @ C
            # flat leaves: L-BFGS views each gradient as a vector
            g_rest = torch.tensor(G0[:, rest].ravel(), dtype=dt, requires_grad=True)
            g_p0 = torch.tensor(G0[:, p0].ravel(), dtype=dt, requires_grad=True)
            k = R.shape[0]  # fewer than the terms when there are fewer samples
            nll = self._penalised_nll(u, w, torch)

            def coefs():
                G = torch.cat([g_rest.reshape(k, len(rest)), g_p0.reshape(k, len(p0))], dim=1)
                return G[:, order]

            if smooth > 0 and D is not None:
                DR_t = torch.tensor(D @ R_inv, dtype=dt)

                def total_nll():
                    G = coefs()
                    return nll(B_t @ G) + smooth * ((DR_t @ G) ** 2).sum()
            else:

                def total_nll():
                    return nll(B_t @ coefs())

            with torch.no_grad():
                before = float(total_nll())
            self._lbfgs_rounds(total_nll, [[g_rest], [g_p0]], torch)
            with torch.no_grad():
                after = float(total_nll())
                G = coefs().numpy()
        if np.isfinite(after) and after < before and np.isfinite(G).all():
            return R_inv @ G, after
        return C, before if np.isfinite(before) else np.inf

    def _build_formulas(self) -> None:
        t = sp.Symbol(self.t_name, real=True)
        subs = {nm: f.expression for nm, f in self.params_.items()}
        u = t - sp.nsimplify(self.t_min)
        comps = []
        if self._ordered():  # mu_1 = mu_0 + exp(log_dmu_1)
            subs["mu_1"] = subs["mu_0"] + sp.exp(subs["log_dmu_1"])
        for c in range(self.n_components):
            mu, sigma = subs[f"mu_{c}"], sp.exp(subs[f"log_sigma_{c}"])
            q = sp.exp(subs[f"log_q_{c}"])
            k = q**-2
            if k.is_Rational and abs(k) > MAX_SPECIAL:  # sympy would expand lowergamma(k, .)
                raise ConfigError(
                    f"shape q**-2 = {k} of component {c} exceeds {MAX_SPECIAL}",
                    parameter=f"log_q_{c}",
                )
            comps.append(sp.lowergamma(k, k * (u * sp.exp(-mu)) ** (q / sigma)) / sp.gamma(k))
        if self.n_components == 1:
            cdf = comps[0]
        else:
            wt = 1 / (1 + sp.exp(-subs["logit_w"]))
            cdf = wt * comps[0] + (1 - wt) * comps[1]
        m = getattr(self, "warp_degree_", 0)
        if m:  # F_cont = B(G) = sum_i S_i binomial(m, i) G^i (1 - G)^(m - i)
            ea = [sp.Integer(1)] + [sp.exp(subs[nm]) for nm in _warp_names(m)]
            total = sp.Add(*ea)
            g = cdf
            cdf = sp.Add(
                *[
                    sp.Add(*ea[:i]) / total * sp.binomial(m, i) * g**i * (1 - g) ** (m - i)
                    for i in range(1, m + 1)
                ]
            )
        tail = getattr(self, "tail_log_degree_", None)
        if tail is not None:  # S_cont -> S_cont exp(-u / tau), 1 / tau = exp(tail_log_rate)
            cdf = 1 - (1 - cdf) * sp.exp(-u * sp.exp(subs["tail_log_rate"]))
        if self.point_mass:  # F = p0 + (1 - p0) F_cont for t >= t_min
            p0 = 1 / (1 + sp.exp(-subs["logit_p0"]))
            cdf = p0 + (1 - p0) * cdf
        tvar = Variable(self.t_name, unit=self.t_unit, low=float(self.t_min))
        meta: dict[str, Any] = {
            "producer": "ariasim.surrogates.SymbolicDensity",
            "family": f"mixture of {self.n_components} generalized gamma"
            + (
                " and a point mass p0 at t_min (the pdf is that of t > t_min)"
                if self.point_mass
                else ""
            ),
            "nll_per_sample": float(self.nll_),
            "n_bins": len(self.bins_),
        }
        if m:
            meta["family"] += (
                f", its continuous CDF G warped by a Bernstein polynomial of degree {m}: "
                f"F_cont = sum_(i=1..{m}) S_i binomial({m}, i) G^i (1 - G)^({m} - i), "
                "S_i = (1 + exp(warp_a1) + ... + exp(warp_a(i-1))) / (1 + exp(warp_a1) + "
                f"... + exp(warp_a{m - 1}))"
            )
        if tail is not None:
            meta["family"] += (
                ", the survival function of its continuous part cut off by "
                "exp(-(t - t_min) / tau), 1 / tau = exp(tail_log_rate)"
            )
        self.formula_ = Formula(cdf, [tvar, *self.variables_], output="cdf", metadata=meta)
        self.formulas_ = {
            "cdf": self.formula_,
            "pdf": self.formula_.derivative(self.t_name, output="pdf"),
            **self.params_,
        }

    # ------------------------------------------------------------------ evaluation
    def _names(self) -> list[str]:
        """Names of this density's parameter functions (:func:`_param_names`)."""
        return _param_names(self.n_components, self.point_mass, self._ordered())

    def _ordered(self) -> bool:
        return bool(getattr(self, "ordered_means_", False))

    def _params_at(self, X: np.ndarray) -> np.ndarray:
        """The family's parameters (n, n_par) at X (mu_1 from ln(mu_1 - mu_0) when
        ordered)."""
        names = self._names()
        P = np.column_stack([self.params_[nm](X) for nm in names])
        return _natural_params(P, self._ordered())

    def _warp_at(self, X: np.ndarray) -> np.ndarray | None:
        """Log-weights (n, m) of the warp at X, or None without one."""
        m = getattr(self, "warp_degree_", 0)
        if not m:
            return None
        a = np.column_stack(
            [np.zeros(len(X))]
            + [np.broadcast_to(self.params_[nm](X), (len(X),)) for nm in _warp_names(m)]
        )
        return a - special.logsumexp(a, axis=1, keepdims=True)

    def _tail_at(self, X: np.ndarray) -> np.ndarray | None:
        """ln(1/tau) (n,) of the tail cut-off at X, or None without one."""
        if getattr(self, "tail_log_degree_", None) is None:
            return None
        return np.broadcast_to(self.params_["tail_log_rate"](X), (len(X),)).astype(float)

    def log_pdf(self, t: Any, X: Any) -> np.ndarray:
        """log p(t | x) (numerically stable; -inf below t_min)."""
        check_is_fitted(self, "params_")
        t, X = _check_tx(t, X, self.n_features_in_)
        return _logpdf(
            t - self.t_min,
            self._params_at(X),
            self.n_components,
            self.point_mass,
            self._warp_at(X),
            self._tail_at(X),
        )

    def pdf(self, t: Any, X: Any) -> np.ndarray:
        """p(t | x)."""
        return np.exp(self.log_pdf(t, X))

    def cdf(self, t: Any, X: Any) -> np.ndarray:
        """F(t | x)."""
        check_is_fitted(self, "params_")
        t, X = _check_tx(t, X, self.n_features_in_)
        F = _cdf(
            t - self.t_min,
            self._params_at(X),
            self.n_components,
            self.point_mass,
            self._warp_at(X),
            self._tail_at(X),
        )
        return np.clip(F, 0.0, 1.0)

    def sample(self, X: Any, n: int = 1, rng: Any = None) -> np.ndarray:
        """Draw ``n`` values of t for each row of X by vectorised numeric CDF inversion.

        Returns an array of shape ``(len(X), n)``.
        """
        check_is_fitted(self, "params_")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.n_features_in_:
            X = X.reshape(-1, self.n_features_in_)
        gen = as_generator(rng)
        P = np.repeat(self._params_at(X), n, axis=0)
        W = self._warp_at(X)
        W = None if W is None else np.repeat(W, n, axis=0)
        T = self._tail_at(X)
        T = None if T is None else np.repeat(T, n, axis=0)
        q = gen.uniform(size=P.shape[0])
        if self.point_mass:  # below p0: the mass at t_min; above: the continuous part
            p0 = special.expit(P[:, _n_cont(self.n_components)])
            q = np.clip((q - p0) / (1.0 - p0), 0.0, None)
        u = invert_cdf(
            lambda uu, idx: _cdf(
                uu,
                P[idx],
                self.n_components,
                warp=None if W is None else W[idx],
                tail=None if T is None else T[idx],
            ),
            np.asarray(q),
        )
        return (np.where(q > 0, u, 0.0) + self.t_min).reshape(X.shape[0], n)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (parameter formulas as text; no pickle)."""
        check_is_fitted(self, "params_")
        m = int(getattr(self, "warp_degree_", 0))
        knots = [float(k) for k in getattr(self, "knots_", ())]
        warp_knots = [float(k) for k in getattr(self, "warp_knots_", ())]
        tail = getattr(self, "tail_log_degree_", None)
        version = 4 if tail is not None else 3 if knots or warp_knots else 2 if m else 1
        if self._ordered():
            version = 5
        return {
            # a warped density is schema 2, which readers of schema 1 refuse; one with
            # near-source knots is schema 3 (its formulas hold max(0, .) terms); one with
            # a tail cut-off is schema 4 (with or without a warp or knots); one with
            # ordered means (log_dmu_1 instead of mu_1) is schema 5 (with or without any)
            "schema": f"ariasim.symbolic_density/{version}",
            **({"ordered_means": True} if self._ordered() else {}),
            **({"warp_degree": m} if m else {}),
            **({"tail_log_degree": tail} if tail is not None else {}),
            **({"knots": knots, "warp_knots": warp_knots} if knots or warp_knots else {}),
            "n_components": self.n_components,
            "point_mass": bool(self.point_mass),
            "t_min": float(self.t_min),
            "t_name": self.t_name,
            "t_unit": self.t_unit,
            # unknown (nan) for a density read from a file that did not hold it
            **({"nll_per_sample": float(self.nll_)} if np.isfinite(self.nll_) else {}),
            "params": {k: f.to_dict() for k, f in self.params_.items()},
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, source: Any = None, field: str | None = None
    ) -> SymbolicDensity:
        """Rebuild a fitted density from :meth:`to_dict` output (formulas go through the
        whitelist parser). ``source`` (the file) and ``field`` (where in it the density
        is) are named in error messages."""

        def fail(msg: str, key: str | None = None) -> InputError:
            where = ".".join(k for k in (field, key) if k)
            return InputError(msg, path=source, field=where or None)

        schemas = tuple(f"ariasim.symbolic_density/{v}" for v in (1, 2, 3, 4, 5))
        if not isinstance(data, dict) or data.get("schema") not in schemas:
            raise fail("not an ariasim symbolic density")
        warp = 0
        version = int(data["schema"].rsplit("/", 1)[1])
        # schema 2: a warped density; 3: near-source knots, with or without a warp
        # 4: a tail cut-off, with or without a warp or knots; 5: ordered means, with or
        # without a warp, knots or a tail cut-off
        if version == 2 or (version >= 3 and "warp_degree" in data):
            degree = data.get("warp_degree")
            if isinstance(degree, bool) or not isinstance(degree, int) or not 2 <= degree <= 64:
                raise fail(f"must be an integer 2-64, got {degree!r}", "warp_degree")
            warp = degree
        knots: tuple[float, ...] = ()
        warp_knots: tuple[float, ...] = ()
        if version >= 3:
            for key in ("knots", "warp_knots"):
                raw = data.get(key, [])
                if not isinstance(raw, list):
                    raise fail(f"must be a list of numbers, got {raw!r}", key)
                try:
                    checked = _check_knots(raw, 1)
                except ConfigError as exc:
                    raise fail(str(exc), key) from None
                knots, warp_knots = (checked, warp_knots) if key == "knots" else (knots, checked)
            if version == 3 and not (knots or warp_knots):
                raise fail("schema 3 needs knots or warp_knots", "knots")
        tail: int | None = None
        if version == 4 or (version == 5 and "tail_log_degree" in data):
            tail = data.get("tail_log_degree")
            if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= 6:
                raise fail(f"must be an integer 0-6, got {tail!r}", "tail_log_degree")
        n_components = data.get("n_components")
        if isinstance(n_components, bool) or n_components not in (1, 2):
            raise fail(f"must be 1 or 2, got {n_components!r}", "n_components")
        for key in ("t_min", "t_name"):
            if key not in data:
                raise fail("missing", key)
        for key in ("t_min", "nll_per_sample"):
            v = data.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise fail(f"must be a finite number, got {v!r}", key)
        for key in ("t_name", "t_unit"):
            if not isinstance(data.get(key, ""), str):
                raise fail(f"must be text, got {data[key]!r}", key)
        point_mass = data.get("point_mass", False)
        if not isinstance(point_mass, bool):
            raise fail(f"must be true or false, got {point_mass!r}", "point_mass")
        ordered = False
        if version == 5:
            if data.get("ordered_means") is not True or n_components != 2:
                raise fail("schema 5 needs ordered_means: true and 2 components", "ordered_means")
            ordered = True
        names = _param_names(n_components, point_mass, ordered)
        names += _warp_names(warp) if warp else []
        names += _tail_names() if tail is not None else []
        if not isinstance(data.get("params"), dict):
            raise fail("missing or not an object", "params")
        missing = [n for n in names if n not in data["params"]]
        if missing:
            raise fail(f"density is missing parameter formula(s) {missing}", "params")
        sub = f"{field}.params" if field else "params"
        params = {
            n: Formula.from_dict(data["params"][n], source=source, field=f"{sub}.{n}")
            for n in names
        }
        if len({tuple(f.variables) for f in params.values()}) != 1:
            raise fail("the parameter formulas must have the same variables", "params")
        variables = list(params[names[0]].variables)
        m = cls(
            n_components=n_components,
            point_mass=point_mass,
            ordered_means=ordered,
            t_min=float(data["t_min"]),
            t_name=str(data["t_name"]),
            t_unit=str(data.get("t_unit", "")),
            variable_names=[v.name for v in variables],
            variable_units=[v.unit for v in variables],
        )
        m.params_ = params
        m.ordered_means_ = ordered
        m.warp_degree_ = warp
        m.knots_ = knots
        m.warp_knots_ = warp_knots
        m.tail_log_degree_ = tail
        m.variables_ = variables
        m.n_features_in_ = len(m.variables_)
        m.nll_ = float(data.get("nll_per_sample", np.nan))
        m.bins_ = pd.DataFrame()
        try:
            m._build_formulas()
        except ConfigError as exc:
            raise fail(str(exc)) from None
        return m


def _loso_values(loso: Any) -> list[float]:
    """The ``loso`` conditions as floats (finite, distinct); a clear error otherwise."""
    try:
        values = [float(v) for v in np.atleast_1d(np.asarray(loso, dtype=float)).ravel()]
    except (TypeError, ValueError):
        raise ConfigError(f"must be numbers; got {loso!r}", parameter="loso") from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"must be finite; got {loso!r}", parameter="loso")
    if len(set(values)) != len(values):
        raise ConfigError(f"must be distinct; got {loso!r}", parameter="loso")
    return values


def _warp_degrees(warp: Any) -> list[int]:
    """The candidate warp degrees (sorted, distinct) of the ``warp`` argument."""
    vals = [warp] if isinstance(warp, (int, np.integer)) else warp
    try:
        out = sorted({int(v) for v in vals})
        ok = all(
            not isinstance(v, bool) and float(v) == int(v) and (int(v) == 0 or 2 <= v <= 64)
            for v in vals
        )
    except (TypeError, ValueError):
        ok, out = False, []
    if not ok or not out:
        raise ConfigError(
            f"must be 0 or a degree 2-64, or a list of them; got {warp!r}", parameter="warp"
        )
    return out


def _tail_degrees(degree: Any) -> list[int]:
    """The candidate degrees (sorted, distinct; empty for None) of ``tail_log_degree``."""
    if degree is None:
        return []
    return _log_degrees(degree, "tail_log_degree", lowest=0, none_ok=True)


def _check_knots(knots: Any, n_conditions: int, parameter: str = "knots") -> tuple[float, ...]:
    """The ``knots`` (or ``parameter``) argument as a tuple of distinct positive finite
    numbers."""
    try:
        out = tuple(float(v) for v in knots)
        ok = all(not isinstance(v, bool) for v in knots)
    except (TypeError, ValueError):
        ok, out = False, ()
    if not ok or not all(math.isfinite(v) and v > 0 for v in out) or len(set(out)) < len(out):
        raise ConfigError(f"must be distinct positive numbers; got {knots!r}", parameter=parameter)
    if out and n_conditions != 1:
        raise ConfigError(
            f"need a single (positive) condition, got {n_conditions}", parameter=parameter
        )
    return out


def _log_degrees(
    degree: Any, parameter: str = "log_degree", *, lowest: int = 1, none_ok: bool = False
) -> list[int]:
    """The candidate degrees in ln x (sorted, distinct, ``lowest``-6) of the
    ``log_degree`` (or ``warp_log_degree``, ``tail_log_degree``) argument."""
    vals = [degree] if isinstance(degree, (int, np.integer)) else degree
    try:
        out = sorted({int(v) for v in vals})
        ok = all(not isinstance(v, bool) and float(v) == int(v) and lowest <= v <= 6 for v in vals)
    except (TypeError, ValueError):
        ok, out = False, []
    if not ok or not out:
        what = f"{'None, ' if none_ok else ''}a degree {lowest}-6 or a list of them"
        raise ConfigError(f"must be {what}; got {degree!r}", parameter=parameter)
    return out


def _smooth_values(smooth: Any, parameter: str = "smooth") -> list[float]:
    """The candidate strengths (sorted, distinct, finite, >= 0) of the ``smooth`` argument
    (or of another penalty strength, named ``parameter`` in the error)."""
    vals = [smooth] if isinstance(smooth, (int, float, np.integer, np.floating)) else smooth
    try:
        out = sorted({float(v) for v in vals})
        ok = all(not isinstance(v, bool) for v in vals)
    except (TypeError, ValueError):
        ok, out = False, []
    if not ok or not out or not all(math.isfinite(v) and v >= 0 for v in out):
        raise ConfigError(
            f"must be a number >= 0 or a list of them; got {smooth!r}", parameter=parameter
        )
    return out


def _curvature_matrix(
    terms: Sequence[sp.Expr], variables: Sequence[Variable], n_grid: int = _SMOOTH_GRID
) -> np.ndarray:
    """Second derivatives in z = ln x of the ``terms`` of a single positive condition x,
    on a uniform grid of ``n_grid`` points in z over its range, divided by sqrt(n_grid):
    (n_grid, n_terms). For coefficients C (n_terms, n_par), ``((D @ C)**2).sum()`` is
    the sum over the functions of the mean over the grid of (d^2 f / dz^2)^2, the
    roughness penalty of a smoothing spline (Green & Silverman 1994, ch. 2) on a grid.
    Central differences with step 1e-3 in z (exact for cubics; knot terms included)."""
    v = variables[0]
    z = np.linspace(math.log(float(v.low or 1.0)), math.log(float(v.high or 1.0)), n_grid)
    h = 1e-3
    T = [_term_matrix(terms, variables, np.exp(z + s)[:, None]) for s in (-h, 0.0, h)]
    return (T[0] - 2.0 * T[1] + T[2]) / h**2 / math.sqrt(n_grid)


def invert_cdf(cdf, q: np.ndarray, *, iterations: int = 60) -> np.ndarray:
    """Solve cdf(u, idx) = q for u >= 0, vectorised (bracketing, then bisection in log u).

    ``cdf(u, idx)`` evaluates the CDF of the rows ``idx`` at ``u``.
    """
    idx = np.arange(q.size)
    hi = np.ones(q.size)
    for _ in range(200):
        low_side = cdf(hi, idx) < q
        if not low_side.any():
            break
        hi[low_side] *= 4.0
    lo = np.zeros(q.size)
    lo_pos = hi / 4.0**200
    for _ in range(iterations):
        mid = np.sqrt(np.maximum(lo, lo_pos) * hi)
        below = cdf(mid, idx) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _torch_logpdf(u, cols, n_comp, atom: bool = False):
    import torch

    if atom:  # mass p0 = sigmoid(a) at u == 0, (1 - p0) x the continuous part above
        a = cols[:, _n_cont(n_comp)]
        pos = u > 0
        cont = _torch_logpdf(torch.where(pos, u, torch.ones_like(u)), cols, n_comp)
        return torch.where(
            pos,
            -torch.nn.functional.softplus(a) + cont,
            -torch.nn.functional.softplus(-a),
        )

    def gg(mu, log_sigma, log_q):
        log_q = torch.clamp(log_q, min=_LOG_Q_MIN)
        q = torch.exp(log_q)
        k = 1.0 / (q * q)
        log_z = torch.log(k) + q * (torch.log(u) - mu) / torch.exp(log_sigma)
        return k * log_z - torch.exp(log_z) - torch.lgamma(k) + log_q - log_sigma - torch.log(u)

    comps = [gg(cols[:, 3 * c], cols[:, 3 * c + 1], cols[:, 3 * c + 2]) for c in range(n_comp)]
    if n_comp == 1:
        return comps[0]
    a = cols[:, 3 * n_comp]
    lw1 = -torch.nn.functional.softplus(-a)
    lw2 = -torch.nn.functional.softplus(a)
    return torch.logaddexp(lw1 + comps[0], lw2 + comps[1])


def numerical_hessian(f, x: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    k = x.size
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            e_i, e_j = np.eye(k)[i] * eps, np.eye(k)[j] * eps
            H[i, j] = H[j, i] = (
                f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j) + f(x - e_i - e_j)
            ) / (4 * eps * eps)
    return H


def _poly_terms(
    variables: Sequence[Variable], degree: int = 2, knots: Sequence[float] = ()
) -> list[sp.Expr]:
    """Terms of the polynomial parameter functions: with a single condition that is
    positive everywhere (a distance) 1, x, log(x), ..., log(x)^degree and the
    near-source terms of ``knots`` (:func:`_knot_terms`); otherwise 1, the conditions,
    their products and squares, and log(x) of each positive one."""
    syms = [sp.Symbol(v.name, real=True) for v in variables]
    pos = [s for s, v in zip(syms, variables, strict=True) if v.low is not None and v.low > 0]
    terms: list[sp.Expr] = [sp.Integer(1), *syms]
    if len(syms) == 1 and pos:
        terms += [sp.log(pos[0]) ** i for i in range(1, degree + 1)]
        terms += _knot_terms(variables, knots)
    else:
        terms += [a * b for i, a in enumerate(syms) for b in syms[i:]]
        terms += [sp.log(s) for s in pos]
    return terms


def _term_matrix(terms: Sequence[sp.Expr], variables: Sequence[Variable], X: np.ndarray):
    """The terms evaluated at the rows of X: (n, n_terms)."""
    syms = [sp.Symbol(v.name, real=True) for v in variables]
    lam = [sp.lambdify(syms, tm, "numpy") for tm in terms]
    return np.column_stack([np.broadcast_to(f(*X.T), (len(X),)) for f in lam]).astype(float)


def _poly_params(
    C: np.ndarray, terms: Sequence[sp.Expr], variables: Sequence[Variable], names: Sequence[str]
) -> dict[str, Formula]:
    """The formulas sum_j C[j, i] terms[j] of the parameters ``names[i]``."""
    return {
        nm: Formula(
            sp.Add(*[sp.Float(float(c)) * tm for c, tm in zip(C[:, i], terms, strict=True)]),
            variables,
            output=nm,
        )
        for i, nm in enumerate(names)
    }


def _poly_coefs(
    params: dict[str, Formula], terms: Sequence[sp.Expr], names: Sequence[str]
) -> np.ndarray:
    """The coefficients (n_terms, n_par) of polynomial parameter formulas on ``terms``."""
    C = np.zeros((len(terms), len(names)))
    for i, nm in enumerate(names):
        coef = params[nm].expression.as_coefficients_dict()
        for j, tm in enumerate(terms):
            C[j, i] = float(coef.get(tm, 0.0))
    return C


# Operon's largest tree for a parameter function
_PARAM_MAX_LENGTH = 20


def _check_grid(lows: np.ndarray, highs: np.ndarray, n_random: int = 512) -> np.ndarray:
    """Points at which a parameter function must be finite: ``n_random`` uniform points in
    the box [lows, highs] (fixed seed) and its corners (all 2^d of them up to d = 10, else
    the two extreme ones).

    Example:
        >>> g = _check_grid(np.array([0.0, 10.0]), np.array([1.0, 20.0]), n_random=3)
        >>> g.shape, g[-4:].tolist()
        ((7, 2), [[0.0, 10.0], [0.0, 20.0], [1.0, 10.0], [1.0, 20.0]])
    """
    d = len(lows)
    grid = lows + (highs - lows) * np.random.default_rng(0).uniform(size=(n_random, d))
    if d <= 10:
        pick = np.array(list(itertools.product((0, 1), repeat=d)), dtype=bool)
        corners = np.where(pick, highs, lows)
    else:
        corners = np.vstack([lows, highs])
    return np.vstack([grid, corners])


def _poly_formula(Xb, y, wts, variables, name, degree: int = 2) -> Formula:
    """Weighted least squares on the polynomial terms (:func:`_poly_terms`): the
    fallback model. Parameters of scale-free physics (a location of log t, a log-scale)
    vary smoothly in log(x)."""
    terms = _poly_terms(variables, degree)
    A = _term_matrix(terms, variables, Xb)
    sw = np.sqrt(wts)
    coef, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    expr = sum(sp.Float(float(c)) * tm for c, tm in zip(coef, terms, strict=True))
    return Formula(expr, variables, output=name)


# ----------------------------------------------------------------------------- validation


def goodness_of_fit(
    model: ConditionalDensity,
    t: Any,
    X: Any,
    *,
    bins: np.ndarray | None = None,
    n_bins: int = 10,
    n_chi2_bins: int = 20,
    weights: Any = None,
    rng: Any = None,
) -> pd.DataFrame:
    """Judge a conditional density on held-out samples, per condition bin.

    Per bin: Kolmogorov-Smirnov and Cramer-von Mises tests of the probability integral
    transform F(t_i | x_i) against U(0, 1) (valid although x varies inside the bin),
    the 1-Wasserstein distance between the samples and model draws at the same x_i (in
    units of t; :func:`ariasim.metrics.wasserstein_1d`), and a chi2 test in
    ``n_chi2_bins`` equiprobable PIT bins.

    KS, CvM and chi2 are *one-sample* tests against the exact uniform distribution of the
    PIT, so they are not the two-sample tests of :mod:`ariasim.metrics`
    (:func:`~ariasim.metrics.ks_test`, :func:`~ariasim.metrics.histogram_chi2`): a
    two-sample test against model draws would add the draws' own noise (half the power
    for as many draws as samples) to test what is known exactly. The chi2 is Pearson's
    with the expected count ``W / n_chi2_bins`` and, per bin, the larger of the expected
    count and the sum of squared weights as variance (equal for unit weights).

    Arguments:
        model: Anything with ``cdf(t, X)`` and ``sample(X, n, rng)``.
        t, X: Held-out samples and their conditions.
        bins: Bin index per sample (default: :func:`condition_bins` with ``n_bins``).
        n_chi2_bins: Number of PIT bins for chi2.
        weights: Optional sample weights (used by chi2 and W1; KS/CvM assume unit weights).
        rng: Seed or Generator for the model draws.
    """
    t, X = _check_tx(t, X)
    gen = as_generator(rng)
    w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=float)
    if bins is None:
        bins = condition_bins(X, n_bins)
    pit = np.clip(model.cdf(t, X), 0.0, 1.0)
    draws = model.sample(X, 1, gen)[:, 0]
    rows = []
    for b in np.unique(bins):
        sel = bins == b
        v, wb = pit[sel], w[sel]
        ks = stats.kstest(v, "uniform")
        cvm = stats.cramervonmises(v, "uniform")
        w1 = wasserstein_1d(t[sel], draws[sel], weights_a=wb, weights_b=wb).value
        edges = np.linspace(0, 1, n_chi2_bins + 1)
        obs = np.histogram(v, edges, weights=wb)[0]
        var = np.histogram(v, edges, weights=wb**2)[0]
        exp = wb.sum() / n_chi2_bins
        ok = var > 0
        chi2 = float(np.sum((obs[ok] - exp) ** 2 / np.maximum(var[ok], exp)))
        ndf = int(ok.sum()) - 1
        row = {f"x{j}_mean": float(X[sel, j].mean()) for j in range(X.shape[1])}
        row.update(
            {
                "bin": int(b),
                "n": int(sel.sum()),
                "ks": float(ks.statistic),
                "ks_p": float(ks.pvalue),
                "cvm": float(cvm.statistic),
                "cvm_p": float(cvm.pvalue),
                "w1": float(w1),
                "chi2": chi2,
                "ndf": ndf,
                "chi2_p": float(stats.chi2.sf(chi2, max(ndf, 1))),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)
