"""Binned Poisson likelihoods whose expectations carry a surrogate's (or an MC's) error.

A surrogate (or a finite Monte Carlo) predicts the expected count ``mu`` of each bin only
up to a relative error ``eps``. Fitting data with the plain Poisson likelihood then treats
the prediction as exact: once the data are precise enough, intervals shrink below the
model's own error and miss the truth. Two standard treatments:

* :func:`gamma_poisson_nll` -- each bin's expectation is uncertain on its own: the Poisson
  probability averaged over a gamma-distributed expectation with mean ``mu`` and standard
  deviation ``eps mu`` (a negative binomial). This is the construction of the "effective"
  likelihood for limited Monte Carlo of Argüelles, Schneider & Yuan, JHEP 06 (2019) 030
  (with the gamma's mean and variance matched to the expectation and its error); see also
  Glüsenkamp, EPJ Plus 133 (2018) 218. The errors of different bins are independent, so
  they average out over many bins: at a fraction of a count per bin it is the Poisson
  likelihood.
* :func:`shared_error_nll` -- the expectations of all bins of a group share one
  multiplicative nuisance factor ``exp(delta_g)``, ``delta_g ~ Normal(0, eps_g^2)``,
  profiled out in closed form (the root of a one-dimensional convex problem). This is
  the Barlow-Beeston treatment (Barlow & Beeston, CPC 77 (1993) 219) with one nuisance
  per group of bins instead of per bin, as in Conway's "Barlow-Beeston lite" (arXiv:
  1103.0354): the right model for a surrogate whose error is a property of the model
  (the same in every module that sees the same part of the prediction), which does not
  average out over modules.

Both equal the plain Poisson likelihood (:func:`poisson_nll`) when ``eps = 0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ariasim.errors import ConfigError

__all__ = ["correlated_error_nll", "gamma_poisson_nll", "poisson_nll", "shared_error_nll"]


def _arrays(observed: Any, expected: Any) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(observed, dtype=float)
    mu = np.asarray(expected, dtype=float)
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ConfigError("counts must be finite and >= 0", parameter="observed")
    if np.any(mu < 0) or not np.all(np.isfinite(mu)):
        raise ConfigError("expected counts must be finite and >= 0", parameter="expected")
    return np.broadcast_arrays(n, mu)  # type: ignore[return-value]


def _check_eps(eps: Any) -> np.ndarray:
    e = np.asarray(eps, dtype=float)
    if np.any(e < 0) or not np.all(np.isfinite(e)):
        raise ConfigError("relative errors must be finite and >= 0", parameter="rel_error")
    return e


def poisson_nll(observed: Any, expected: Any) -> np.ndarray:
    """Per bin ``-ln Poisson(n | mu)`` (with the ``ln n!`` term).

    Example:
        >>> round(float(poisson_nll(2, 2.0)), 6)  # 2 - 2 ln 2 + ln 2
        1.306853
    """
    n, mu = _arrays(observed, expected)
    mu = np.maximum(mu, 1e-300)
    return mu - special.xlogy(n, mu) + special.gammaln(n + 1.0)


def gamma_poisson_nll(observed: Any, expected: Any, rel_error: Any) -> np.ndarray:
    """Per bin ``-ln P(n | mu, eps)``: Poisson averaged over a gamma-distributed mean.

    The gamma has mean ``mu`` and standard deviation ``eps * mu`` (shape ``r = 1/eps^2``),
    so ``P`` is the negative binomial with mean ``mu`` and variance ``mu + (eps mu)^2``
    (Argüelles, Schneider & Yuan, JHEP 06 (2019) 030). ``eps = 0`` gives the Poisson
    likelihood; evaluated stably for small ``eps`` (``ln Gamma(n + r) - ln Gamma(r)`` as
    ``ln Gamma(n) - ln B(n, r)``).

    Example:
        >>> float(gamma_poisson_nll(3, 2.0, 0.0)) == float(poisson_nll(3, 2.0))
        True
        >>> bool(gamma_poisson_nll(8, 2.0, 0.5) < poisson_nll(8, 2.0))  # a wider model
        True
    """
    n, mu = _arrays(observed, expected)
    eps = np.broadcast_to(_check_eps(rel_error), n.shape)
    mu = np.maximum(mu, 1e-300)
    out = np.asarray(poisson_nll(n, mu), dtype=float).copy()
    use = eps > 0
    if np.any(use):
        nn, m, e = n[use], mu[use], eps[use]
        r = 1.0 / e**2
        safe = np.where(nn > 0, nn, 1.0)
        log_rise = np.where(nn > 0, special.gammaln(safe) - special.betaln(safe, r), 0.0)
        # ln P = ln G(n+r) - ln G(r) - ln n! - r ln(1 + mu/r) + n ln(mu / (r + mu))
        ln_p = (
            log_rise
            - special.gammaln(nn + 1.0)
            - r * np.log1p(m / r)
            + special.xlogy(nn, m)
            - special.xlogy(nn, r + m)
        )
        out[use] = -ln_p
    return out


def _profile_delta(n_sum: np.ndarray, mu_sum: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """The root of ``M exp(d) - N + d / eps^2 = 0`` per group (safeguarded Newton)."""
    big_m = np.maximum(mu_sum, 1e-300)
    e2 = eps**2
    ln_ratio = np.log(np.maximum(n_sum, 1e-300) / big_m)
    # the root lies between 0 and eps^2 (N - M) (and below ln(N/M) when N > M)
    a = np.zeros_like(big_m)
    b = e2 * (n_sum - big_m)
    b = np.where(n_sum > big_m, np.minimum(b, ln_ratio), b)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    d = 0.5 * (lo + hi)
    for _ in range(100):
        g = big_m * np.exp(d) - n_sum + d / e2
        lo = np.where(g < 0, d, lo)
        hi = np.where(g > 0, d, hi)
        step = g / (big_m * np.exp(d) + 1.0 / e2)
        new = d - step
        bad = (new <= lo) | (new >= hi) | ~np.isfinite(new)
        new = np.where(bad, 0.5 * (lo + hi), new)
        if np.all(np.abs(new - d) <= 1e-13 * (1.0 + np.abs(d))):
            return new
        d = new
    return d


def shared_error_nll(
    observed: Any, expected: Any, rel_error: Any, groups: Any
) -> tuple[float, np.ndarray]:
    """``-ln L`` of Poisson bins whose expectations share one error factor per group.

    Bin ``i`` of group ``g`` has expectation ``mu_i exp(delta_g)``; ``delta_g`` has a
    normal constraint of width ``eps_g`` (the group's relative model error) and is
    profiled out (Barlow & Beeston, CPC 77 (1993) 219; one nuisance per group as in
    Conway, arXiv:1103.0354). Returns the profiled ``-ln L`` (Poisson terms with
    ``ln n!`` plus ``delta_g^2 / (2 eps_g^2)``) and the profiled ``delta_g``.

    Arguments:
        observed: Counts per bin.
        expected: Model expectations per bin.
        rel_error: Relative error ``eps_g`` per group (a sequence indexed by group).
        groups: Group index (0 .. n_groups - 1) of each bin.

    Example:
        >>> nll0, _ = shared_error_nll([3, 5], [4.0, 4.0], [0.0], [0, 0])
        >>> bool(np.isclose(nll0, poisson_nll([3, 5], [4.0, 4.0]).sum()))
        True
        >>> nll, delta = shared_error_nll([30, 50], [20.0, 20.0], [0.3], [0, 0])
        >>> bool(nll < poisson_nll([30, 50], [20.0, 20.0]).sum()), bool(delta[0] > 0)
        (True, True)
    """
    n, mu = _arrays(observed, expected)
    n, mu = n.ravel(), mu.ravel()
    eps = _check_eps(rel_error).ravel()
    g = np.asarray(groups).ravel()
    if g.shape != n.shape or (g.size and (g.min() < 0 or g.max() >= eps.size)):
        raise ConfigError(f"must give each bin a group in 0..{eps.size - 1}", parameter="groups")
    n_sum = np.bincount(g, weights=n, minlength=eps.size)
    mu_sum = np.bincount(g, weights=mu, minlength=eps.size)
    delta = np.zeros(eps.size)
    on = (eps > 0) & (mu_sum > 0)
    if np.any(on):
        delta[on] = _profile_delta(n_sum[on], mu_sum[on], eps[on])
    scaled = mu * np.exp(delta[g])
    pen = np.where(on, 0.5 * (delta / np.where(on, eps, 1.0)) ** 2, 0.0)
    return float(poisson_nll(n, scaled).sum() + pen.sum()), delta


def correlated_error_nll(
    observed: Any, expected: Any, modes: Any, groups: Any, *, max_iter: int = 50
) -> tuple[float, np.ndarray]:
    """``-ln L`` of Poisson bins whose groups' expectations share correlated error modes.

    The expectation of bin ``i`` in group ``g`` is ``mu_i exp(delta_g)`` with ``delta =
    modes.T @ theta``, ``theta ~ Normal(0, I)``: each row of ``modes`` (n_modes x
    n_groups) is one pattern by which the model may be off, in ``ln`` of the expectation
    -- e.g. the surrogate's measured deviations ``ln(MC / surrogate)`` per group on each
    of M held-out validation sets, divided by ``sqrt(M)``, so that ``delta`` has the
    empirical (uncentred) covariance of those deviations: the error at the fitted point
    is a random combination of the errors seen where the model was checked. The
    ``theta`` are profiled out by Newton's method (the problem is convex). With
    ``modes = diag(eps)`` this is :func:`shared_error_nll`; with zero modes it is the
    Poisson likelihood. This is the eigenvector (Hessian) treatment of correlated
    template errors (Pumplin et al., Phys. Rev. D 65 (2001) 014013) applied to a
    surrogate's error, with the nuisances profiled as in Barlow & Beeston, CPC 77
    (1993) 219.

    Returns the profiled ``-ln L`` (Poisson terms with ``ln n!`` plus ``|theta|^2/2``)
    and the profiled ``theta``.

    Example:
        >>> n, mu, g = [30, 50], [20.0, 20.0], [0, 1]
        >>> a, _ = correlated_error_nll(n, mu, [[0.3, 0.0], [0.0, 0.3]], g)
        >>> b, _ = shared_error_nll(n, mu, [0.3, 0.3], g)
        >>> bool(np.isclose(a, b))
        True
    """
    n, mu = _arrays(observed, expected)
    n, mu = n.ravel(), np.maximum(mu.ravel(), 1e-300)
    V = np.atleast_2d(np.asarray(modes, dtype=float))
    if not np.all(np.isfinite(V)):
        raise ConfigError("error modes must be finite", parameter="modes")
    g = np.asarray(groups).ravel()
    if g.shape != n.shape or (g.size and (g.min() < 0 or g.max() >= V.shape[1])):
        raise ConfigError(f"must give each bin a group in 0..{V.shape[1] - 1}", parameter="groups")
    n_sum = np.bincount(g, weights=n, minlength=V.shape[1])
    m_sum = np.bincount(g, weights=mu, minlength=V.shape[1])
    const = float(np.sum(special.gammaln(n + 1.0) - special.xlogy(n, mu)))

    def f(th: np.ndarray) -> float:
        dl = V.T @ th
        return float(np.sum(m_sum * np.exp(dl) - n_sum * dl) + 0.5 * th @ th)

    th = np.zeros(V.shape[0])
    val = f(th)
    for _ in range(max_iter):
        w = m_sum * np.exp(V.T @ th)
        grad = V @ (w - n_sum) + th
        H = (V * w) @ V.T + np.eye(th.size)
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:  # backtracking: the objective must not rise
            new = th - t * step
            nv = f(new)
            if nv <= val + 1e-12 or t < 1e-8:
                break
            t *= 0.5
        done = val - nv < 1e-10 * (1.0 + abs(val))
        th, val = new, min(nv, val)
        if done:
            break
    return val + const, th
