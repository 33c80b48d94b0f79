"""Symbolic regression on binned estimates, as estimators (``--method sr``).

The rows (log x, |eta|) are binned; per-bin estimates with their standard errors are
fitted by :class:`~ariasim.surrogates.symbolic.SymbolicRegressor` with BIC selection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sympy as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ariasim.errors import ConfigError
from ariasim.surrogates.formula import Formula
from ariasim.utils import spawn_seeds

__all__ = ["BinnedSymbolicClassifier", "BinnedSymbolicRegressor", "default_symbolic"]


def _binned(X: np.ndarray, y: np.ndarray, n_x: int, n_eta: int, *, response: bool) -> pd.DataFrame:
    """Per-bin estimates in (log x, |eta|) = the columns of ``X``, with standard errors:
    efficiency (``y`` = passed) or the mean and width of ``y`` (the ratio)."""
    lx, a = X[:, 0], X[:, 1]
    xe = np.quantile(lx, np.linspace(0, 1, n_x + 1))
    ee = np.linspace(a.min(), a.max(), n_eta + 1)
    ix = np.clip(np.searchsorted(xe, lx, side="right") - 1, 0, n_x - 1)
    ie = np.clip(np.searchsorted(ee, a, side="right") - 1, 0, n_eta - 1)
    rows = []
    for i in range(n_x):
        for j in range(n_eta):
            m = (ix == i) & (ie == j)
            n = int(m.sum())
            if n < 20:
                continue
            row = {"logx": float(np.mean(lx[m])), "abseta": float(np.mean(a[m])), "n": n}
            if response:
                v = y[m]
                row.update(
                    mean=float(np.mean(v)),
                    mean_err=float(np.std(v) / np.sqrt(n)),
                    logmean=float(np.mean(np.log(v))),
                    sd=float(np.std(v, ddof=1)),
                    logsd=float(np.std(np.log(v), ddof=1)),
                )
                row["sd_err"] = row["sd"] / np.sqrt(2 * (n - 1))
                row["logsd_err"] = row["logsd"] / np.sqrt(2 * (n - 1))
                row["logmean_err"] = row["logsd"] / np.sqrt(n)
            else:
                k = float(y[m].sum())
                pp = (k + 0.5) / (n + 1.0)
                row.update(eff=k / n, eff_err=float(np.sqrt(pp * (1 - pp) / n)))
            rows.append(row)
    return pd.DataFrame(rows)


def _n_bins(X: np.ndarray) -> tuple[int, int]:
    """(log x, |eta|) bins: |eta| slices of about 0.4, >= 24 bins in all (enough points
    for the symbolic regressor's selection)."""
    a = X[:, 1]
    n_eta = int(np.clip(round((a.max() - a.min()) / 0.4), 1, 6)) if a.size else 1
    return max(10, -(-24 // n_eta)), n_eta


def default_symbolic() -> Any:
    """The symbolic regressor of ``--method sr``: 100 generations (a budget that does not
    depend on the clock, so the same data and seed give the same formulas; about 10 s
    per fit; ``max_time`` is only a safety cap), length <= 20, BIC selection, and
    operators that stay finite on the clamped range (no pow, log or division)."""
    from ariasim.surrogates.symbolic import SymbolicRegressor

    return SymbolicRegressor(
        max_time=300.0,
        generations=100,
        n_jobs=1,
        max_length=20,
        selection="bic",
        operators=("add", "sub", "mul", "exp", "sqrt", "square", "tanh"),
    )


def _sr_fit(proto: Any, tab: pd.DataFrame, y: str, err: str, name: str, seed: Any) -> Formula:
    sr = clone(proto).set_params(
        random_state=seed, variable_names=["logx", "abseta"], target_name=name
    )
    sr.fit(
        tab[["logx", "abseta"]].to_numpy(),
        tab[y].to_numpy(),
        sample_weight=1.0 / np.maximum(tab[err].to_numpy(), 1e-12) ** 2,
    )
    return sr.formula_


class BinnedSymbolicClassifier(ClassifierMixin, BaseEstimator):
    """Efficiency by symbolic regression on binned estimates.

    The rows (log x, |eta|) are binned (quantiles of log x, equal |eta| slices); the
    per-bin efficiency, weighted by its inverse binomial variance, is fitted by a clone
    of ``regressor``.

    Arguments:
        regressor: A :class:`~ariasim.surrogates.symbolic.SymbolicRegressor` (default
            :func:`default_symbolic`).
        random_state: Seed of the symbolic regressor.

    Attributes:
        formulas_: ``{"probability": Formula}``; ``formula_`` is that formula.

    Example:
        >>> clf = BinnedSymbolicClassifier(random_state=0)
        >>> clf.get_params()["random_state"]
        0
    """

    def __init__(self, regressor: Any = None, random_state: Any = None):
        self.regressor = regressor
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BinnedSymbolicClassifier:
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        self.classes_ = np.unique(y)
        tab = _binned(X, (y == self.classes_[-1]).astype(float), *_n_bins(X), response=False)
        proto = self.regressor if self.regressor is not None else default_symbolic()
        f = _sr_fit(proto, tab, "eff", "eff_err", "efficiency", self.random_state)
        self.formulas_ = {"probability": f}
        self.formula_ = f
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        p = np.clip(np.asarray(self.formula_(np.asarray(X, dtype=float)), dtype=float), 0, 1)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]


class BinnedSymbolicRegressor(RegressorMixin, BaseEstimator):
    """Response mean and width by symbolic regression on binned estimates.

    Per bin (as :class:`BinnedSymbolicClassifier`), ``"gaussian"``: the mean and standard
    deviation of y; ``"lognormal"``: those of log y (mu, s), the mean being
    exp(mu + s^2 / 2). Each is fitted by a clone of ``regressor``, weighted by its
    inverse squared standard error.

    Arguments:
        regressor: A :class:`~ariasim.surrogates.symbolic.SymbolicRegressor` (default
            :func:`default_symbolic`).
        loss: ``"gaussian"`` or ``"lognormal"``.
        random_state: Seed of the symbolic regressors.

    Attributes:
        formulas_: ``{"mean": E[y], "sigma": s}``; ``formula_`` is the mean.

    Example:
        >>> BinnedSymbolicRegressor(loss="lognormal").get_params()["loss"]
        'lognormal'
    """

    def __init__(self, regressor: Any = None, loss: str = "gaussian", random_state: Any = None):
        self.regressor = regressor
        self.loss = loss
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BinnedSymbolicRegressor:
        if self.loss not in ("gaussian", "lognormal"):
            raise ConfigError(
                f"loss must be 'gaussian' or 'lognormal', got {self.loss!r}", parameter="loss"
            )
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        tab = _binned(X, y, *_n_bins(X), response=True)
        proto = self.regressor if self.regressor is not None else default_symbolic()
        s1, s2 = spawn_seeds(self.random_state, 2)
        if self.loss == "lognormal":
            mu = _sr_fit(proto, tab, "logmean", "logmean_err", "mu", s1)
            s = _sr_fit(proto, tab, "logsd", "logsd_err", "sigma", s2)
            mean = mu.replace(
                sp.exp(
                    mu.expression
                    + s.expression.xreplace(dict(zip(s.symbols, mu.symbols, strict=True))) ** 2 / 2
                )
            )
        else:
            mean = _sr_fit(proto, tab, "mean", "mean_err", "mean", s1)
            s = _sr_fit(proto, tab, "sd", "sd_err", "sigma", s2)
        self.formulas_ = {"mean": mean, "sigma": s}
        self.formula_ = mean
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(self.formula_(np.asarray(X, dtype=float)), dtype=float)
