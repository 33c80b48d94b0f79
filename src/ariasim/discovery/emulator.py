"""A Gaussian-process emulator of a simulator's vector of observables.

The observables (e.g. a flow front at 15 times, a deposit at 40 places) are standardised
and reduced to their leading principal components (Higdon et al. 2008); each component's
score gets its own Gaussian process over the unit cube of parameters, with an anisotropic
Matern-5/2 kernel, an amplitude and a nugget (the simulator's numerical jitter, e.g. a front
that moves cell by cell), fitted by maximum marginal likelihood with scikit-learn. The
variance left out by the truncation is kept as a fixed per-observable variance, so the
predictive variance never claims more precision than the reduced basis has.

Prediction (and conditioning on new design points with the hyper-parameters kept, for batch
selection by the "kriging believer" heuristic, Ginsbourger et al. 2010) is done here with
NumPy from the fitted hyper-parameters: the MCMC of :mod:`ariasim.discovery.posterior`
calls it hundreds of thousands of times, and scikit-learn's ``predict`` has no way to add
design points with the hyper-parameters kept. Measured against scikit-learn's
``predict(return_std=True)`` with the same kernel (``benchmarks/bench_discovery_speed.py``):
2.2x faster per walker-ensemble call, the same values to 2e-5.

References:
    D. Higdon, J. Gattiker, B. Williams and M. Rightley, "Computer model calibration using
    high-dimensional output", J. Am. Stat. Assoc. 103 (2008) 570.
    C. E. Rasmussen and C. K. I. Williams, Gaussian Processes for Machine Learning, MIT
    Press (2006), algorithm 2.1.
    D. Ginsbourger, R. Le Riche and L. Carraro, "Kriging is well-suited to parallelize
    optimization", in Computational Intelligence in Expensive Optimization Problems (2010).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from ariasim.errors import ConfigError, InputError
from ariasim.utils import spawn_seeds

__all__ = ["GPComponent", "GPEmulator", "matern52"]

_SQRT5 = np.sqrt(5.0)


def matern52(
    a: np.ndarray, b: np.ndarray, length_scale: np.ndarray, amplitude: float
) -> np.ndarray:
    """The Matern-5/2 kernel matrix ``amplitude (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)``
    with ``r`` the length-scaled distance between the rows of ``a`` and ``b``.

    Example:
        >>> float(matern52(np.zeros((1, 2)), np.zeros((1, 2)), np.ones(2), 2.0)[0, 0])
        2.0
    """
    a = a / length_scale
    b = b / length_scale
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    r = np.sqrt(np.maximum(d2, 0.0))
    return amplitude * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r)


@dataclass(frozen=True)
class GPComponent:
    """One fitted Gaussian process (standardised target ``t = (s - offset) / scale``).

    Example:
        >>> x = np.linspace(0, 1, 5)[:, None]
        >>> c = GPComponent.build(x, np.sin(3 * x[:, 0]), np.array([0.5]), 1.0, 1e-8)
        >>> m, v = c.predict(x[:2])
        >>> np.allclose(m, np.sin(3 * x[:2, 0]), atol=1e-4), bool((v < 1e-4).all())
        (True, True)
    """

    x: np.ndarray
    target: np.ndarray
    length_scale: np.ndarray
    amplitude: float
    noise: float
    offset: float
    scale: float
    chol: np.ndarray
    alpha: np.ndarray

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        values: np.ndarray,
        length_scale: np.ndarray,
        amplitude: float,
        noise: float,
        offset: float | None = None,
        scale: float | None = None,
    ) -> GPComponent:
        """Condition a GP with the given hyper-parameters on ``(x, values)``."""
        offset = float(values.mean()) if offset is None else offset
        if scale is None:
            sd = float(values.std())
            scale = sd if sd > 0 else 1.0
        t = (values - offset) / scale
        k = matern52(x, x, length_scale, amplitude)
        k[np.diag_indices_from(k)] += noise + 1e-10 * amplitude
        chol = cholesky(k, lower=True)
        alpha = cho_solve((chol, True), t)
        return cls(x, t, length_scale, amplitude, noise, offset, scale, chol, alpha)

    @property
    def nugget_var(self) -> float:
        """The nugget (the simulator's own jitter) in the value's units squared."""
        return self.scale**2 * self.noise

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and latent variance (without the nugget: the part more runs remove) of the
        value at the rows of ``x``."""
        ks = matern52(x, self.x, self.length_scale, self.amplitude)
        mean = ks @ self.alpha
        v = solve_triangular(self.chol, ks.T, lower=True)
        var = np.maximum(self.amplitude - (v * v).sum(0), 0.0)
        return self.offset + self.scale * mean, self.scale**2 * var

    def believe(self, x_new: np.ndarray) -> GPComponent:
        """The same GP with ``x_new`` added at its predicted means (kriging believer): the
        variance shrinks around ``x_new``, the mean does not change."""
        m, _ = self.predict(x_new)
        values = np.concatenate([self.offset + self.scale * self.target, m])
        x = np.vstack([self.x, x_new])
        return GPComponent.build(
            x, values, self.length_scale, self.amplitude, self.noise, self.offset, self.scale
        )


class GPEmulator(BaseEstimator):
    """Gaussian-process emulator of a vector of observables over the unit cube.

    Arguments:
        variance_kept: Principal components are kept until they hold this fraction of the
            standardised observables' variance. Default 0.999999: near the posterior the
            observables vary by a tiny fraction of their range over the prior, and that
            variation lives in the minor components (with 0.9999 the truncation left
            about a third of a 1 m data error in a run-out calibration).
        max_components: At most this many components. Default 10.
        n_restarts: Restarts of the marginal-likelihood optimiser per component. Default 2.
        random_state: Seed of the optimiser's restarts.

    Fitted: ``components_`` (c, m), ``y_mean_``, ``y_scale_``, ``truncation_var_`` (m,) in
    standardised units, ``gps_`` (list of :class:`GPComponent`), ``n_components_``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.random((30, 2))
        >>> Y = np.column_stack([X[:, 0] + X[:, 1] ** 2, np.sin(3 * X[:, 0]), X[:, 1]])
        >>> em = GPEmulator().fit(X, Y)
        >>> mean, var = em.predict(X[:3], return_var=True)
        >>> bool(np.abs(mean - Y[:3]).max() < 1e-2), mean.shape == var.shape
        (True, True)
        >>> bool((var > 0).all()), em.nugget_var_.shape == (em.n_components_,)
        (True, True)
    """

    def __init__(
        self,
        variance_kept: float = 0.999999,
        max_components: int = 10,
        n_restarts: int = 2,
        random_state: int = 0,
    ):
        self.variance_kept = variance_kept
        self.max_components = max_components
        self.n_restarts = n_restarts
        self.random_state = random_state

    def fit(self, X: Any, Y: Any) -> GPEmulator:
        """Fit to parameters ``X`` (n, d) in the unit cube and observables ``Y`` (n, m)."""
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise InputError(f"X {X.shape} and Y {Y.shape} must be 2-D with the same rows")
        if X.shape[0] < 3:
            raise InputError(f"needs at least 3 runs, got {X.shape[0]}")
        if not (np.isfinite(X).all() and np.isfinite(Y).all()):
            raise InputError("X and Y must be finite")
        if not (0.0 < self.variance_kept <= 1.0):
            raise ConfigError(
                f"must be in (0, 1], got {self.variance_kept}", parameter="variance_kept"
            )
        if int(self.max_components) < 1:
            raise ConfigError(
                f"must be >= 1, got {self.max_components}", parameter="max_components"
            )
        self.y_mean_ = Y.mean(0)
        sd = Y.std(0)
        self.y_scale_ = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(self.y_mean_)), sd, 1.0)
        Z = (Y - self.y_mean_) / self.y_scale_
        _, s, vt = np.linalg.svd(Z, full_matrices=False)
        var = s * s
        total = var.sum()
        if total > 0:
            frac = np.cumsum(var) / total
            c = int(np.searchsorted(frac, self.variance_kept * (1 - 1e-12)) + 1)
        else:
            c = 1
        c = max(1, min(c, int(self.max_components), vt.shape[0]))
        # a deterministic sign for each component (SVD signs depend on the LAPACK build)
        signs = np.sign(vt[:c][np.arange(c), np.abs(vt[:c]).argmax(1)])
        self.components_ = vt[:c] * signs[:, None]
        scores = Z @ self.components_.T
        self.truncation_var_ = ((Z - scores @ self.components_) ** 2).mean(0)
        self.n_components_ = c
        seeds = spawn_seeds(self.random_state, c)
        d = X.shape[1]
        self.gps_: list[GPComponent] = []
        for j in range(c):
            s_j = scores[:, j]
            offset = float(s_j.mean())
            scale = float(s_j.std()) or 1.0
            kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
                length_scale=np.full(d, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
            ) + WhiteKernel(1e-4, (1e-10, 1e-1))
            gp = GaussianProcessRegressor(
                kernel,
                n_restarts_optimizer=int(self.n_restarts),
                random_state=seeds[j] % (2**32),
                normalize_y=False,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(X, (s_j - offset) / scale)
            k = gp.kernel_
            self.gps_.append(
                GPComponent.build(
                    X,
                    s_j,
                    np.atleast_1d(np.asarray(k.k1.k2.length_scale, dtype=float)),
                    float(k.k1.k1.constant_value),
                    float(k.k2.noise_level),
                    offset,
                    scale,
                )
            )
        return self

    @property
    def nugget_var_(self) -> np.ndarray:
        """Nugget variance of each component score (the simulator's jitter)."""
        return np.array([gp.nugget_var for gp in self.gps_])

    def predict_scores(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Means and latent variances (n, c) of the principal-component scores at ``X``
        (the variance that more runs would remove; the nugget is :attr:`nugget_var_`)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        out = [gp.predict(X) for gp in self.gps_]
        return np.column_stack([m for m, _ in out]), np.column_stack([v for _, v in out])

    def predict(self, X: Any, return_var: bool = False) -> Any:
        """Predicted observables (n, m) and, with ``return_var``, their variances (n, m):
        latent + nugget + truncation variance (correlations between observables are
        dropped)."""
        m, v = self.predict_scores(X)
        mean = self.y_mean_ + (m @ self.components_) * self.y_scale_
        if not return_var:
            return mean
        var = ((v + self.nugget_var_) @ self.components_**2 + self.truncation_var_) * (
            self.y_scale_**2
        )
        return mean, var

    def believe(self, X_new: Any) -> GPEmulator:
        """A copy conditioned on ``X_new`` at its predicted means (see :class:`GPComponent`)."""
        X_new = np.atleast_2d(np.asarray(X_new, dtype=float))
        new = replace_params(self)
        new.gps_ = [gp.believe(X_new) for gp in self.gps_]
        return new


def replace_params(em: GPEmulator) -> GPEmulator:
    """A shallow copy of a fitted emulator (fitted arrays shared, not copied)."""
    new = GPEmulator(**em.get_params())
    new.__dict__.update({k: v for k, v in em.__dict__.items() if k.endswith("_")})
    return new
