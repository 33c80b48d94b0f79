"""The Pandel function: the classic analytic photon arrival-time model.

The residual time t >= 0 after the direct (geometric) time is Gamma distributed,

    p(t; d) = rho^xi t^(xi - 1) exp(-rho t) / Gamma(xi),
    xi = d / lambda,   rho = 1 / tau + c_medium / lambda_a.

It is empirical (fitted to AMANDA-era laser data), has no depth or wavelength dependence,
and diverges at t -> 0 for d < lambda (REFERENCE.md section 2). ariasim uses it as the
baseline of its photon surrogates, both with the literature parameters and with the
parameters fitted by unbinned maximum likelihood to the same Monte Carlo (the fair one).

References:
    Pandel, Diploma thesis, Humboldt University Berlin (1996).
    Ahrens et al. (AMANDA), "Muon track reconstruction and data selection techniques in
    AMANDA", NIM A 524 (2004) 169, eq. (A.1)-(A.3).
    van Eijndhoven, Fetter, Pandel, "Implementation of a Gauss convoluted Pandel PDF...",
    Astropart. Phys. 28 (2007) 456.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize, special

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula, Variable
from ariasim.utils import as_generator

__all__ = ["PANDEL_CASCADE", "PANDEL_TRACK", "Pandel"]

#: Speed of light in ice used by the Pandel parametrisation [m/ns] (c / n_group).
C_ICE_M_PER_NS = 0.22103


@dataclass(frozen=True)
class Pandel:
    """Normalised Pandel density of the delay time t [ns] at distance d [m].

    Arguments:
        tau_ns: Time scale tau.
        lambda_m: Scattering-like length lambda.
        lambda_a_m: Absorption length lambda_a.
        c_m_per_ns: Speed of light in the medium.

    Example:
        >>> p = Pandel()  # the literature parameters of PANDEL_CASCADE
        >>> round(p.rho, 6), float(p.cdf(np.array([1e9]), np.array([50.0]))[0])
        (0.004478, 1.0)
        >>> p.sample(np.array([50.0]), 4, rng=1).shape
        (1, 4)
    """

    tau_ns: float = 450.0
    lambda_m: float = 47.0
    lambda_a_m: float = 98.0
    c_m_per_ns: float = C_ICE_M_PER_NS

    def __post_init__(self) -> None:
        for name in ("tau_ns", "lambda_m", "lambda_a_m", "c_m_per_ns"):
            if not getattr(self, name) > 0:
                raise ConfigError("must be > 0", parameter=name)

    @property
    def rho(self) -> float:
        """Rate parameter 1/tau + c/lambda_a [1/ns]."""
        return 1.0 / self.tau_ns + self.c_m_per_ns / self.lambda_a_m

    def _xi(self, X: Any) -> np.ndarray:
        d = np.asarray(X, dtype=float)
        d = d[:, 0] if d.ndim == 2 else d
        if (d <= 0).any():
            raise InputError("distances must be > 0", column="distance")
        return d / self.lambda_m

    def log_pdf(self, t: Any, X: Any) -> np.ndarray:
        """log p(t | d); X holds the distance in m (shape (n,) or (n, 1))."""
        t = np.asarray(t, dtype=float)
        xi, rho = self._xi(X), self.rho
        with np.errstate(divide="ignore", invalid="ignore"):
            out = xi * np.log(rho) + (xi - 1) * np.log(t) - rho * t - special.gammaln(xi)
        return np.where(t > 0, out, -np.inf)

    def pdf(self, t: Any, X: Any) -> np.ndarray:
        return np.exp(self.log_pdf(t, X))

    def cdf(self, t: Any, X: Any) -> np.ndarray:
        return special.gammainc(self._xi(X), self.rho * np.clip(np.asarray(t, float), 0, None))

    def sample(self, X: Any, n: int = 1, rng: Any = None) -> np.ndarray:
        """Exact Gamma draws, shape (len(X), n)."""
        xi = self._xi(X)
        return as_generator(rng).gamma(xi[:, None], 1.0 / self.rho, size=(xi.size, n))

    def survival(self, X: Any) -> np.ndarray:
        """The unnormalised integral exp(-d/lambda_a) (1 + tau c / lambda_a)^(-xi)."""
        xi = self._xi(X)
        d = xi * self.lambda_m
        return np.exp(-d / self.lambda_a_m) * (
            1 + self.tau_ns * self.c_m_per_ns / self.lambda_a_m
        ) ** (-xi)

    def formula(self) -> Formula:
        """The PDF as a :class:`Formula` of (t [ns], d [m])."""
        text = (
            f"rho^(d/{self.lambda_m!r}) * t^(d/{self.lambda_m!r} - 1) * exp(-rho*t)"
            f" / gamma(d/{self.lambda_m!r})"
        ).replace("rho", repr(self.rho))
        return Formula(
            text,
            [Variable("t", unit="ns", low=0.0), Variable("d", unit="m")],
            output=Variable("pdf", unit="1/ns"),
            metadata={"model": "Pandel", **self.__dict__},
        )

    def fit(self, t: Any, X: Any, weights: Any = None) -> Pandel:
        """Unbinned maximum-likelihood fit of (tau, lambda, lambda_a) to samples.

        Only rho = 1/tau + c/lambda_a enters the normalised density, so tau and lambda_a
        are degenerate; lambda_a is kept fixed and tau absorbs rho (the fitted density
        is the same for any split). Returns a new :class:`Pandel`.
        """
        t = np.asarray(t, dtype=float).ravel()
        w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
        keep = t > 0
        t, w, Xk = t[keep], w[keep] / w[keep].sum(), np.asarray(X, dtype=float)
        Xk = (Xk[:, 0] if Xk.ndim == 2 else Xk)[keep]

        def nll(p):
            lam, rho = np.exp(p)
            xi = Xk / lam
            ll = xi * np.log(rho) + (xi - 1) * np.log(t) - rho * t - special.gammaln(xi)
            v = -np.sum(w * ll)
            return v if np.isfinite(v) else 1e300

        res = optimize.minimize(
            nll,
            np.log([self.lambda_m, self.rho]),
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000},
        )
        lam, rho = np.exp(res.x)
        inv_tau = rho - self.c_m_per_ns / self.lambda_a_m
        if inv_tau <= 0:  # absorption alone is too slow: shorten lambda_a instead
            return replace(
                self,
                lambda_m=float(lam),
                tau_ns=1e9,
                lambda_a_m=float(self.c_m_per_ns / (rho - 1e-9)),
            )
        return replace(self, lambda_m=float(lam), tau_ns=float(1.0 / inv_tau))


#: Literature parameters for point sources / cascades (REFERENCE.md section 2).
PANDEL_CASCADE = Pandel(tau_ns=450.0, lambda_m=47.0, lambda_a_m=98.0)
#: Literature parameters "H2" for muon tracks.
PANDEL_TRACK = Pandel(tau_ns=556.7, lambda_m=33.29, lambda_a_m=98.0)
