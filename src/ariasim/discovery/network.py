r"""A constitutive network: the friction law learned from direct ``(h, u, S)`` samples.

:class:`ConstitutiveNetwork` fits ``S = sum_k w_k phi_k(h, u, cos_phi)`` over the admissible
terms of :mod:`ariasim.discovery.terms` with **non-negative** weights (non-negative least
squares, Lawson & Hanson 1974), so every fitted law is admissible by construction, the
constitutive artificial neural network (CANN) idea of Linka & Kuhl (2023): the physics is
in the architecture (a one-layer network whose activations are the admissible bases and
whose weights are constrained to be >= 0), not in a penalty.

Sparsity: the few dominant terms are found by **best-subset (L0) selection**: every
subset of the candidate terms (``2^K``, cheap for the ``K <= 8`` terms of a friction law) is
fitted by NNLS and scored by an information criterion (BIC by default, AIC optional). L0
rather than L1 or L2 because

* an L1 (lasso) penalty selects by *shrinking*: it biases the surviving weights towards
  zero (a Coulomb ``mu`` would come out too small), and the penalty strength trades that
  bias against false inclusions; its selection is also inconsistent when bases are
  correlated (``g h cos_phi`` and ``1``, or ``u^2`` and ``u/h``, are, on a realistic
  design);
* an L2 (ridge) penalty never sets a weight exactly to zero: it does not select at all;
* L0 with BIC leaves the selected weights unbiased (a plain NNLS fit on the chosen terms)
  and is consistent: the true subset is chosen with probability -> 1 as n grows.

The criterion uses frequency weights: with ``sample_weight`` ``w_i``, the effective sample
size is ``n = sum_i w_i`` and the residual sum of squares ``RSS = sum_i w_i r_i^2``, so an
integer weight is the same as repeating the row; ``BIC = n ln(RSS / n) + k ln(n)``,
``AIC = n ln(RSS / n) + 2 k`` (Gaussian errors, ``k`` the number of terms in the subset).
For heteroscedastic data pass weights proportional to ``1/sigma_i^2`` scaled to mean one
(relative noise: ``1/S_i^2``): unweighted, the Gaussian likelihood of the criterion is
misspecified, the largest ``S`` dominate it and a spurious term can enter when ``S``
spans decades.

The columns of the (weighted) basis matrix are scaled to unit norm before NNLS (the bases
differ by orders of magnitude: ``g u^2`` ~ 10^3, ``1``), and the weights scaled back.

References:
    M. Linka, E. Kuhl, "A new family of constitutive artificial neural networks towards
    automated model discovery", Comput. Methods Appl. Mech. Eng. 403 (2023) 115731.
    C. L. Lawson, R. J. Hanson, "Solving Least Squares Problems", Prentice-Hall (1974),
    chapter 23 (NNLS).
    G. Schwarz, "Estimating the dimension of a model", Ann. Stat. 6 (1978) 461-464 (BIC).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula
from ariasim.utils import check_sample_weight

from .terms import DEFAULT_TERMS, TERMS, friction_formula

__all__ = ["ConstitutiveNetwork"]

_COLUMNS = ("h", "u", "cos_phi")
_SELECTIONS = ("l0", "none")
_CRITERIA = ("bic", "aic")
#: more candidate terms than this would make best-subset search slow (2^K NNLS fits)
_MAX_CANDIDATES = 12


class ConstitutiveNetwork(RegressorMixin, BaseEstimator):
    """Sparse non-negative sum of admissible friction terms, fitted to ``(h, u, S)`` samples.

    Arguments:
        terms: Candidate term names (keys of :data:`~ariasim.discovery.terms.TERMS`).
        selection: ``"l0"``: best subset by ``criterion`` over all subsets of ``terms``;
            ``"none"``: one NNLS fit with every term (weights may still come out 0).
        criterion: ``"bic"`` or ``"aic"`` (see the module docstring).
        g: Gravity (m/s^2) in the bases.
        max_terms: Largest subset size tried (None: all of ``terms``).

    ``fit(X, y)``: ``X`` is a DataFrame with columns ``h`` (m, >= 0), ``u`` (m/s; its
    magnitude is used) and optionally ``cos_phi`` (in [0, 1], default 1), or an array
    ``(n, 2)`` or ``(n, 3)`` with the columns in that order; ``y`` is ``S`` (m^2/s^2).

    Attributes:
        weights_: ``{term: weight}`` for every candidate term (0 where not selected).
        active_terms_: The selected terms (non-zero weights), in ``terms`` order.
        coef_: The weights as an array in ``terms`` order.
        standard_errors_: ``{term: standard error}`` of the active weights, from the
            normal equations on the active set, ``sigma^2 (A^T W A)^-1`` with
            ``sigma^2 = RSS / (n - k)`` (NaN with too few rows).
        criterion_: One dict per subset tried, best first: ``terms``, ``k``, ``rss``,
            ``criterion`` (value), ``delta`` (minus the best value), ``weights``.
        formula_: The fitted law as a :class:`~ariasim.surrogates.Formula` of
            ``h, u, cos_phi`` (metadata ``terms``, ``criterion``, ``n_samples``).
        formulas_: ``{"S": formula_}``.
        n_features_in_: 2 or 3.

    Example:
        >>> import pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> X = pd.DataFrame({"h": rng.uniform(0.1, 3, 400), "u": rng.uniform(0, 20, 400)})
        >>> S = 0.3 * 9.81 * X["h"] + 9.81 * X["u"] ** 2 / 400
        >>> net = ConstitutiveNetwork().fit(X, S * (1 + 0.02 * rng.standard_normal(400)))
        >>> net.active_terms_
        ['coulomb', 'turbulent']
        >>> round(net.weights_["coulomb"], 2), round(1 / net.weights_["turbulent"], -1)
        (0.3, 400.0)
        >>> net.formulas_["S"].metadata["terms"].keys() == {"coulomb", "turbulent"}
        True
    """

    def __init__(
        self,
        terms: Sequence[str] = DEFAULT_TERMS,
        selection: str = "l0",
        criterion: str = "bic",
        g: float = 9.81,
        max_terms: int | None = None,
    ):
        self.terms = terms
        self.selection = selection
        self.criterion = criterion
        self.g = g
        self.max_terms = max_terms

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # h is a depth: the generic checks then shift their random X to >= 0
        tags.input_tags.positive_only = True
        return tags

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> tuple[str, ...]:
        if isinstance(self.terms, str) or not isinstance(self.terms, Sequence):
            raise ConfigError(
                f"terms must be a sequence of term names, got {self.terms!r}", parameter="terms"
            )
        terms = tuple(self.terms)
        if not terms:
            raise ConfigError("terms is empty: nothing to fit", parameter="terms")
        for t in terms:
            if t not in TERMS:
                raise ConfigError(
                    f"unknown friction term {t!r}; known: {sorted(TERMS)}", parameter="terms"
                )
        if len(set(terms)) != len(terms):
            raise ConfigError(f"terms has duplicates: {list(terms)}", parameter="terms")
        if len(terms) > _MAX_CANDIDATES:
            raise ConfigError(
                f"{len(terms)} terms: at most {_MAX_CANDIDATES} for best-subset selection",
                parameter="terms",
            )
        if self.selection not in _SELECTIONS:
            raise ConfigError(
                f"selection must be one of {list(_SELECTIONS)}, got {self.selection!r}",
                parameter="selection",
            )
        if self.criterion not in _CRITERIA:
            raise ConfigError(
                f"criterion must be one of {list(_CRITERIA)}, got {self.criterion!r}",
                parameter="criterion",
            )
        g = self.g
        if (
            isinstance(g, bool)
            or not isinstance(g, int | float)
            or not (math.isfinite(g) and g > 0)
        ):
            raise ConfigError(f"g must be a finite number > 0, got {g!r}", parameter="g")
        m = self.max_terms
        if m is not None and (
            isinstance(m, bool) or not isinstance(m, int | np.integer) or not 1 <= m
        ):
            raise ConfigError(
                f"max_terms must be None or an integer >= 1, got {m!r}", parameter="max_terms"
            )
        return terms

    def _inputs(self, X: Any, y: Any = None, *, fitting: bool) -> Any:
        """Validated ``(h, |u|, cos_phi)`` columns (and y when fitting)."""
        if hasattr(X, "columns"):
            names = [str(c) for c in X.columns]
            unknown = [c for c in names if c not in _COLUMNS]
            if unknown:
                raise InputError(
                    "unknown column; expected h, u and optionally cos_phi", column=unknown[0]
                )
            for c in ("h", "u"):
                if c not in names:
                    raise InputError("missing column", column=c)
            X = X[[c for c in _COLUMNS if c in names]]
        try:
            if fitting:
                X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
            else:
                X = validate_data(self, X, dtype=np.float64, reset=False)
        except ValueError as exc:
            raise InputError(str(exc), column="X" if y is None else "X/y") from exc
        if X.shape[1] not in (2, 3):
            raise InputError(
                f"X has {X.shape[1]} columns, expected 2 (h, u) or 3 (h, u, cos_phi)",
                column="X",
            )
        h, u = X[:, 0], np.abs(X[:, 1])
        c = X[:, 2] if X.shape[1] == 3 else np.ones_like(h)
        if np.any(h < 0):
            raise InputError(f"depth must be >= 0, got min {h.min():g}", column="h")
        if np.any((c < 0) | (c > 1)):
            raise InputError(
                f"must be in [0, 1], got range [{c.min():g}, {c.max():g}]", column="cos_phi"
            )
        return (h, u, c) if not fitting else (h, u, c, y)

    def _basis(self, h: np.ndarray, u: np.ndarray, c: np.ndarray, terms: Sequence[str]) -> Any:
        return np.column_stack(
            [TERMS[t].basis(h, u, g=float(self.g), cos_phi=c) for t in terms]
        ).reshape(len(h), len(terms))

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ConstitutiveNetwork:
        """Fit the weights (and select the terms) on ``X`` (h, u[, cos_phi]) and ``y = S``."""
        terms = self._check_params()
        h, u, c, y = self._inputs(X, y, fitting=True)
        n = len(y)
        w = check_sample_weight(sample_weight, n)
        A = self._basis(h, u, c, terms)
        if not np.all(np.isfinite(A)):
            raise InputError("a term's basis is not finite on these inputs", column="X")
        sw = np.sqrt(w)
        Aw, yw = A * sw[:, None], y * sw
        n_eff = float(w.sum())
        scale = np.linalg.norm(Aw, axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        As = Aw / scale
        tss = float(yw @ yw)
        rss_floor = max(tss, 1.0) * 1e-24  # exact fits: ties broken by the number of terms
        K = len(terms)
        kmax = K if self.max_terms is None else min(int(self.max_terms), K)
        if self.selection == "l0":
            subsets = [s for k in range(kmax + 1) for s in itertools.combinations(range(K), k)]
        else:
            subsets = [tuple(range(K))]
        penalty = math.log(max(n_eff, 1.0)) if self.criterion == "bic" else 2.0
        rows: list[dict[str, Any]] = []
        for order, sub in enumerate(subsets):
            coef = np.zeros(K)
            if sub:
                sol, _ = nnls(As[:, list(sub)], yw, maxiter=50 * K + 100)
                coef[list(sub)] = sol / scale[list(sub)]
            r = yw - Aw @ coef
            rss = float(r @ r)
            value = n_eff * math.log(max(rss, rss_floor) / n_eff) + penalty * len(sub)
            rows.append(
                {
                    "terms": [terms[i] for i in sub],
                    "k": len(sub),
                    "rss": rss,
                    "criterion": value,
                    "weights": {terms[i]: float(coef[i]) for i in sub},
                    "_coef": coef,
                    "_order": order,
                }
            )
        rows.sort(key=lambda r: (r["criterion"], r["k"], r["_order"]))
        best = rows[0]
        coef = best["_coef"]
        for r in rows:
            r["delta"] = r["criterion"] - best["criterion"]
            del r["_coef"], r["_order"]
        self.coef_ = np.asarray(coef, dtype=float)
        self.weights_ = {t: float(v) for t, v in zip(terms, coef, strict=True)}
        self.active_terms_ = [t for t, v in zip(terms, coef, strict=True) if v > 0]
        self.criterion_ = rows
        self.standard_errors_ = self._standard_errors(terms, A, w, y, coef)
        self.formula_ = friction_formula(
            self.weights_,
            g=float(self.g),
            metadata={
                "learner": "ConstitutiveNetwork",
                "selection": self.selection,
                "criterion": self.criterion,
                "criterion_value": best["criterion"],
                "candidates": list(terms),
                "n_samples": n,
            },
        )
        return self

    @staticmethod
    def _standard_errors(
        terms: Sequence[str], A: np.ndarray, w: np.ndarray, y: np.ndarray, coef: np.ndarray
    ) -> dict[str, float]:
        active = [i for i, v in enumerate(coef) if v > 0]
        if not active:
            return {}
        Aa = A[:, active]
        n_eff, k = float(w.sum()), len(active)
        r = y - A @ coef
        if n_eff <= k:
            return {terms[i]: float("nan") for i in active}
        sigma2 = float(w @ (r * r)) / (n_eff - k)
        try:
            cov = sigma2 * np.linalg.inv(Aa.T @ (Aa * w[:, None]))
        except np.linalg.LinAlgError:
            return {terms[i]: float("nan") for i in active}
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
        return {terms[i]: float(s) for i, s in zip(active, sd, strict=True)}

    # ------------------------------------------------------------------ use
    @property
    def formulas_(self) -> dict[str, Formula]:
        """``{"S": formula_}`` (the dict of formulas every interpretable learner has)."""
        check_is_fitted(self, "formula_")
        return {"S": self.formula_}

    def predict(self, X: Any) -> np.ndarray:
        """``S`` (m^2/s^2) of the fitted law at ``X`` (h, u[, cos_phi])."""
        check_is_fitted(self, "coef_")
        h, u, c = self._inputs(X, fitting=False)
        return self._basis(h, u, c, tuple(self.terms)) @ self.coef_
