r"""Polynomial likelihood learners: small, always-finite interpretable estimators.

* :class:`PolynomialClassifier`: logistic regression on a polynomial basis; the
  probability is ``1 / (1 + exp(-P(x)))``.
* :class:`PolynomialRegressor`: heteroscedastic maximum likelihood with a polynomial
  mean ``mu(x)`` and a polynomial ``log sigma(x)`` (Gaussian in ``y``, or log-normal:
  Gaussian in ``log y``).

The basis holds the monomials ``x_0^{k_0} x_1^{k_1} ...`` of total degree at most
``degree``. The first column takes every power; the power of each further column is capped
by the width of its training range (``narrow_widths``: a narrow range cannot determine
curvature), and powers >= 2 are centred at the range's middle (rounded to 3 decimals) so a
narrow range stays well conditioned. Columns are scaled to a maximum of one before the
L-BFGS fit, and the coefficients are mapped back, so the formulas are in the raw inputs.

References:
    Nix and Weigend, "Estimating the mean and variance of the target probability
    distribution", ICNN 1994 (heteroscedastic likelihood).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import sympy as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula, Variable
from ariasim.utils import check_sample_weight

__all__ = ["PolynomialClassifier", "PolynomialRegressor"]


def _check_common(est: Any) -> None:
    if (
        not isinstance(est.degree, int | np.integer)
        or isinstance(est.degree, bool)
        or est.degree < 0
    ):
        raise ConfigError(f"degree must be an integer >= 0, got {est.degree!r}", parameter="degree")
    w = est.narrow_widths
    if len(w) != 2 or not 0 <= w[0] <= w[1]:
        raise ConfigError(
            f"narrow_widths must be two widths 0 <= w1 <= w2, got {w!r}", parameter="narrow_widths"
        )


def _names(est: Any, n: int) -> list[str]:
    names = (
        list(est.variable_names) if est.variable_names is not None else [f"x{i}" for i in range(n)]
    )
    if len(names) != n:
        raise ConfigError(
            f"variable_names has {len(names)} names for {n} input columns",
            parameter="variable_names",
        )
    return names


def _monomials(caps: Sequence[int], degree: int) -> Iterator[tuple[int, ...]]:
    """Power tuples with ``p[i] <= caps[i]`` and ``sum(p) <= degree``, in lexicographic
    order (without enumerating the whole product: many columns stay cheap)."""
    if not caps:
        yield ()
        return
    for k in range(min(caps[0], degree) + 1):
        for rest in _monomials(caps[1:], degree - k):
            yield (k, *rest)


class _Basis:
    """The monomial basis, fixed at fit time from the training ranges."""

    def __init__(self, X: np.ndarray, degree: int, widths: Sequence[float], names: Sequence[str]):
        n = X.shape[1]
        lo, hi = X.min(axis=0), X.max(axis=0)
        self.mid = [round(0.5 * float(a + b), 3) for a, b in zip(lo, hi, strict=True)]
        caps = [degree] + [
            0 if hi[i] - lo[i] < widths[0] else (1 if hi[i] - lo[i] < widths[1] else 2)
            for i in range(1, n)
        ]
        self.powers = list(_monomials(caps, degree))
        self.symbols = [sp.Symbol(s, real=True) for s in names]

    def columns(self, X: np.ndarray) -> np.ndarray:
        cols = []
        for p in self.powers:
            c = np.ones(X.shape[0])
            for i, k in enumerate(p):
                if k:
                    c = c * ((X[:, i] - self.mid[i]) ** k if (i and k >= 2) else X[:, i] ** k)
            cols.append(c)
        return np.column_stack(cols)

    def expression(self, coef: np.ndarray) -> sp.Expr:
        terms = []
        for c, p in zip(coef, self.powers, strict=True):
            e: sp.Expr = sp.Integer(1)
            for i, k in enumerate(p):
                if k:
                    s = self.symbols[i]
                    e = e * ((s - sp.Float(self.mid[i])) ** k if (i and k >= 2) else s**k)
            terms.append(sp.Float(float(c)) * e)
        return sp.Add(*terms)


def _design(est: Any, X: np.ndarray, w: np.ndarray) -> tuple[_Basis, np.ndarray, np.ndarray]:
    """The basis (ranges of the rows with weight > 0) and the scaled design matrix."""
    basis = _Basis(X[w > 0], int(est.degree), est.narrow_widths, _names(est, X.shape[1]))
    Z = basis.columns(X)
    sc = np.maximum(np.abs(Z[w > 0]).max(axis=0), 1e-12)  # column scaling: better conditioned
    return basis, Z / sc, sc


class PolynomialClassifier(ClassifierMixin, BaseEstimator):
    """Binary logistic regression on a polynomial basis (see the module docstring).

    Arguments:
        degree: Total degree of the polynomial.
        narrow_widths: Range widths of the second and further columns below which their
            power is capped at 0 and 1 (else 2).
        ridge: L2 penalty on the scaled coefficients (keeps separable data finite).
        max_iter: L-BFGS iterations.
        variable_names: Names of the input columns in the formula (default x0, x1, ...).
        target_name: Output name of the formula.
        random_state: Unused (the fit is deterministic); kept so meta-estimators can
            set seeds uniformly.

    Attributes:
        classes_: The two class labels; the formula is the probability of ``classes_[1]``.
        formulas_: ``{"probability": Formula}``; ``formula_`` is that formula.
        coef_: Coefficients of the basis ``powers_`` (raw inputs).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, (500, 2))
        >>> y = (rng.random(500) < 1 / (1 + np.exp(-3 * X[:, 0]))).astype(int)
        >>> clf = PolynomialClassifier(degree=1).fit(X, y)
        >>> round(float(clf.coef_[clf.powers_.index((1, 0))]), 0)
        3.0
        >>> clf.predict_proba(X).shape
        (500, 2)
    """

    def __init__(
        self,
        degree: int = 3,
        *,
        narrow_widths: tuple[float, float] = (0.25, 0.6),
        ridge: float = 1e-6,
        max_iter: int = 2000,
        variable_names: Sequence[str] | None = None,
        target_name: str = "probability",
        random_state: Any = None,
    ):
        self.degree = degree
        self.narrow_widths = narrow_widths
        self.ridge = ridge
        self.max_iter = max_iter
        self.variable_names = variable_names
        self.target_name = target_name
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> PolynomialClassifier:
        """Fit by penalised maximum likelihood; returns ``self``."""
        from scipy import optimize

        _check_common(self)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type not in ("binary", "unary"):
            raise InputError(
                f"Only binary classification is supported. The type of the target is {y_type}.",
                column="y",
            )
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise InputError("y has 1 class; need two to learn a probability", column="y")
        k = (y == self.classes_[1]).astype(float)
        w = check_sample_weight(sample_weight, X.shape[0])
        basis, Z, sc = _design(self, X, w)
        lam = float(self.ridge)

        def nll(b: np.ndarray) -> tuple[float, np.ndarray]:
            t = Z @ b
            p = 1.0 / (1.0 + np.exp(-t))
            val = np.sum(w * (np.logaddexp(0.0, t) - k * t)) + lam * b @ b
            return float(val), Z.T @ (w * (p - k)) + 2 * lam * b

        r = optimize.minimize(
            nll,
            np.zeros(Z.shape[1]),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter)},
        )
        self.coef_ = r.x / sc
        self.powers_ = basis.powers
        self.n_iter_ = int(r.nit)
        f = Formula(
            1 / (1 + sp.exp(-basis.expression(self.coef_))),
            [Variable(s.name) for s in basis.symbols],
            output=self.target_name,
        )
        self.formulas_ = {"probability": f}
        self.formula_ = f
        self.basis_ = basis
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The polynomial (log-odds of ``classes_[1]``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.basis_.columns(X) @ self.coef_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of ``classes_``, shape (n, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class."""
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


class PolynomialRegressor(RegressorMixin, BaseEstimator):
    """Heteroscedastic maximum likelihood with polynomial mu(x) and log sigma(x).

    Arguments:
        degree: Total degree of both polynomials.
        loss: ``"gaussian"`` (y ~ N(mu, sigma)) or ``"lognormal"`` (log y ~ N(mu, sigma);
            y > 0).
        narrow_widths: As for :class:`PolynomialClassifier`.
        max_iter: L-BFGS iterations.
        variable_names: Names of the input columns in the formulas (default x0, x1, ...).
        target_name: Output name of the mean formula.
        random_state: Unused (the fit is deterministic).

    Attributes:
        formulas_: ``{"mean": E[y], "sigma": sigma}`` (sigma of y for ``"gaussian"``, of
            log y for ``"lognormal"``, where E[y] = exp(mu + sigma^2 / 2)); ``formula_`` is
            the mean.
        coef_mu_, coef_log_sigma_: Coefficients of the basis ``powers_`` (raw inputs).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(0, 1, (2000, 1))
        >>> y = rng.normal(1 + X[:, 0], 0.1 * (1 + X[:, 0]))
        >>> reg = PolynomialRegressor(degree=1).fit(X, y)
        >>> np.round(reg.predict([[0.0], [1.0]]), 1)
        array([1., 2.])
        >>> np.round(reg.predict_sigma([[0.0], [1.0]]), 1)
        array([0.1, 0.2])
    """

    def __init__(
        self,
        degree: int = 3,
        *,
        loss: str = "gaussian",
        narrow_widths: tuple[float, float] = (0.25, 0.6),
        max_iter: int = 5000,
        variable_names: Sequence[str] | None = None,
        target_name: str = "mean",
        random_state: Any = None,
    ):
        self.degree = degree
        self.loss = loss
        self.narrow_widths = narrow_widths
        self.max_iter = max_iter
        self.variable_names = variable_names
        self.target_name = target_name
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> PolynomialRegressor:
        """Fit mu and log sigma by maximum likelihood (least-squares start); returns ``self``."""
        from scipy import optimize

        _check_common(self)
        if self.loss not in ("gaussian", "lognormal"):
            raise ConfigError(
                f"loss must be 'gaussian' or 'lognormal', got {self.loss!r}", parameter="loss"
            )
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        if self.loss == "lognormal":
            if not (y > 0).all():
                raise InputError("the log-normal loss needs y > 0", column="y")
            y = np.log(y)
        w = check_sample_weight(sample_weight, X.shape[0])
        basis, Z, sc = _design(self, X, w)
        m = Z.shape[1]
        b_mu = np.linalg.lstsq(Z, y, rcond=None)[0]
        b_ls = np.linalg.lstsq(Z, np.log(np.abs(y - Z @ b_mu) * 1.2533 + 1e-12), rcond=None)[0]

        def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
            mu = Z @ theta[:m]
            ls = np.clip(Z @ theta[m:], -30, 30)
            r_ = (y - mu) * np.exp(-ls)
            g_mu = -Z.T @ (w * r_ * np.exp(-ls))
            g_ls = Z.T @ (w * (1.0 - r_**2))
            return float(np.sum(w * (0.5 * r_**2 + ls))), np.concatenate([g_mu, g_ls])

        r = optimize.minimize(
            nll,
            np.concatenate([b_mu, b_ls]),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter)},
        )
        self.coef_mu_ = r.x[:m] / sc
        self.coef_log_sigma_ = r.x[m:] / sc
        self.powers_ = basis.powers
        self.n_iter_ = int(r.nit)
        self.basis_ = basis
        mu_e = basis.expression(self.coef_mu_)
        s_e = sp.exp(basis.expression(self.coef_log_sigma_))
        mean_e = sp.exp(mu_e + s_e**2 / 2) if self.loss == "lognormal" else mu_e
        variables = [Variable(s.name) for s in basis.symbols]
        self.formulas_ = {
            "mean": Formula(mean_e, variables, output=self.target_name),
            "sigma": Formula(s_e, variables, output="sigma"),
        }
        self.formula_ = self.formulas_["mean"]
        return self

    def _mu_sigma(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = self.basis_.columns(X)
        return Z @ self.coef_mu_, np.exp(np.clip(Z @ self.coef_log_sigma_, -30, 30))

    def predict(self, X: Any) -> np.ndarray:
        """The mean E[y]."""
        mu, s = self._mu_sigma(X)
        return np.exp(mu + s**2 / 2) if self.loss == "lognormal" else mu

    def predict_sigma(self, X: Any) -> np.ndarray:
        """sigma of y (``"gaussian"``) or of log y (``"lognormal"``)."""
        return self._mu_sigma(X)[1]
