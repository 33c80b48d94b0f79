"""The controller: a calibrated relevance model and the acceptance that minimises variance x cost.

At a control point an event with features ``x`` goes on with probability ``a(x) > 0`` and
then carries the weight ``1/a(x)`` (REFERENCE.md section 4). Whatever the model, the
estimate stays unbiased (``E[1[accept]/a] = 1``); a poor model costs variance only.

**Why** ``a ∝ w sqrt(p)``. The estimate of a rate is ``T = sum_i w_i 1[acc_i] 1[pass_i] /
a_i`` over the generated events (``w`` the generation weight). Per event reaching the
control point, with ``p(x)`` the probability to pass given ``x``,

    Var = E[w^2 p / a] - (E[w p])^2,        cost = c_fixed + c_skippable E[a],

where ``c_fixed`` is the CPU spent before the control point and ``c_skippable`` the CPU
from it on. At fixed cost (fixed ``E[a]``), a Lagrange multiplier gives
``d/da (w^2 p / a + mu a) = 0``, i.e. ``a(x) = lambda w sqrt(p(x))``: the importance is
``s = w^2 p`` and ``a = lambda sqrt(s)`` (clipped to ``[a_min, 1]``; ``w`` is divided by
its median so that ``lambda`` stays of order one). The remaining constant ``lambda`` trades
variance against cost: :func:`optimal_lambda` minimises ``Var(lambda) x cost(lambda)`` (the
inverse of the effective sample size per CPU second) numerically on out-of-fold predictions
of the training events; ``aggressiveness`` divides it (1 = that optimum, > 1 keeps fewer
events). Belle II's selective background simulation (REFERENCE.md section 4) keeps an event
with a network's pass probability and reweights by its inverse; this is the same estimator
with the variance-optimal acceptance.

**Density mode** aims at a flat density of simulated final events in one observable: a
multiclass model predicts ``p_0`` (fail) and ``p_k`` (pass into bin ``k``); with ``rho_k``
the rate density of bin ``k`` (per unit of the observable), ``s = (w/w_med)^2 sum_k p_k /
rho_k^2``. An event sure to land in bin ``k`` gets ``a ∝ 1/rho_k`` (a flat density); in
general this ``a`` minimises the sum over bins of the variances relative to ``rho_k^2``.

**Threshold mode** (as Belle II's hard cut) keeps an event iff ``p(x) >= threshold`` with
weight 1: biased wherever the model misses passing events; it warns, and its bias is
measured by :mod:`ariasim.active.evaluate`.

The relevance model is a LightGBM gradient-boosted tree model (Ke et al., NeurIPS 2017),
trained deterministically on one thread; its probabilities are calibrated by isotonic
regression (Zadrozny & Elkan, KDD 2002) on 2-fold out-of-fold predictions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from ariasim.active.loader import FORMAT, SavedController
from ariasim.errors import ConfigError, InputError

__all__ = ["Controller", "ThresholdBiasWarning", "optimal_lambda"]

VERSION = 1


class ThresholdBiasWarning(UserWarning):
    """Threshold mode keeps events with weight 1: its estimates are biased.

    Example:
        >>> issubclass(ThresholdBiasWarning, UserWarning)
        True
    """


def optimal_lambda(
    s: np.ndarray,
    v: np.ndarray,
    offset: float,
    *,
    a_min: float,
    cost_fixed: float,
    cost_skippable: float,
    n_grid: int = 400,
) -> tuple[float, dict[str, float]]:
    """The ``lambda`` minimising ``(E_v[s/a] - offset) x (cost_fixed + cost_skippable E_v[a])``
    with ``a = clip(lambda sqrt(s), a_min, 1)``, on a log grid from "every event at the
    floor" to "every event kept". Returns ``(lambda, info)`` with the variance, cost and
    predicted gain over keeping everything at that ``lambda``.

    Example:
        >>> s = np.array([1e-4] * 99 + [1.0]); v = np.ones(100)
        >>> lam, info = optimal_lambda(s, v, 0.0, a_min=0.01, cost_fixed=0.01, cost_skippable=1)
        >>> bool(info["gain"] > 1)
        True
    """
    r = np.sqrt(np.clip(s, 0.0, None))
    vn = v / v.sum()
    pos = r[r > 0]
    if pos.size == 0:
        return 1.0, {"variance": 0.0, "cost": cost_fixed + cost_skippable, "gain": 1.0}
    lo = a_min / pos.max()
    hi = max(1.0 / pos.min(), lo * 1.0001)
    grid = np.geomspace(lo, hi, n_grid)

    def objective(lam: float) -> tuple[float, float, float]:
        a = np.clip(lam * r, a_min, 1.0)
        var = max(float(vn @ (r**2 / a)) - offset, 1e-300)
        cost = cost_fixed + cost_skippable * float(vn @ a)
        return var * cost, var, cost

    values = [objective(lam)[0] for lam in grid]
    best = int(np.argmin(values))
    j, var, cost = objective(float(grid[best]))
    j_all, _, _ = objective(float(hi) * 1e6)  # everything kept (a = 1)
    return float(grid[best]), {"variance": var, "cost": cost, "gain": j_all / j}


def feature_matrix(X: Any, features: Sequence[str], what: str = "X") -> np.ndarray:
    """``X`` (a mapping / DataFrame with the feature columns, or a 2-D array in feature
    order) as a float matrix; an :class:`InputError` naming a missing feature."""
    if hasattr(X, "keys") and not isinstance(X, np.ndarray):
        keys = set(X.keys())
        missing = [f for f in features if f not in keys]
        if missing:
            raise InputError(f"{what} lacks the feature {missing[0]!r}", column=missing[0])
        return np.column_stack([np.asarray(X[f], dtype=float).reshape(-1) for f in features])
    M = np.asarray(X, dtype=float)
    if M.ndim == 1 and len(features) == 1:
        M = M.reshape(-1, 1)
    if M.ndim != 2 or M.shape[1] != len(features):
        raise InputError(
            f"{what}: expected a 2-D array with {len(features)} columns "
            f"({', '.join(features)}), got shape {M.shape}"
        )
    return M


class Controller:
    """A trainable controller for one control point (scikit-learn style).

    Arguments:
        features: The feature columns (known at the control point).
        mode: ``"sqrt"`` (variance x cost optimum), ``"density"`` (flat density of final
            events in ``density_observable``) or ``"threshold"`` (biased; warns).
        aggressiveness: Divides the optimal ``lambda`` (1: the optimum; > 1 keeps fewer).
        a_min: The floor of the acceptance (> 0 keeps every estimate unbiased).
        threshold: Threshold mode: keep iff the calibrated probability reaches it.
        density_observable: Density mode: the final-level observable to flatten.
        density_edges: Density mode: its bin edges (default: 10 bins over the central 98 %
            of the passing training events).
        n_estimators, learning_rate, num_leaves, min_child_samples: LightGBM's.
        random_state: Seed of the folds and of LightGBM.

    Learned (after :meth:`fit`): ``saved_`` (a :class:`SavedController` that does all
    predictions), ``lambda_``, ``lambda_opt_``, ``training_`` (sizes, costs, predicted
    gain).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> x = rng.exponential(size=(3000, 1))
        >>> y = rng.random(3000) < 1 / (1 + np.exp(-4 * (x[:, 0] - 2.5)))
        >>> c = Controller(["x"], n_estimators=30).fit(x, y, cost_fixed=0.01, cost_skippable=1)
        >>> a = c.acceptance({"x": [0.1, 4.0]})
        >>> bool(a[0] < a[1] <= 1.0), c.training_["n_pass"] == int(y.sum())
        (True, True)
        >>> accept, a = c.decide({"x": [0.1, 4.0]}, np.random.default_rng(0))
    """

    def __init__(
        self,
        features: Sequence[str],
        *,
        mode: str = "sqrt",
        aggressiveness: float = 1.0,
        a_min: float = 0.01,
        threshold: float | None = None,
        density_observable: str | None = None,
        density_edges: Sequence[float] | None = None,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        random_state: int = 0,
    ):
        self.features = tuple(features)
        self.mode = mode
        self.aggressiveness = aggressiveness
        self.a_min = a_min
        self.threshold = threshold
        self.density_observable = density_observable
        self.density_edges = None if density_edges is None else tuple(density_edges)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state
        self.check_params()
        if mode == "threshold":
            warnings.warn(
                "threshold mode keeps events with weight 1: its estimates are biased "
                "wherever the model misses passing events (the evaluation measures it)",
                ThresholdBiasWarning,
                stacklevel=2,
            )

    # -- parameters --------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able)."""
        return {
            "features": list(self.features),
            "mode": self.mode,
            "aggressiveness": self.aggressiveness,
            "a_min": self.a_min,
            "threshold": self.threshold,
            "density_observable": self.density_observable,
            "density_edges": None if self.density_edges is None else list(self.density_edges),
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "random_state": self.random_state,
        }

    def check_params(self) -> None:
        """A :class:`ConfigError` naming the first invalid constructor argument."""
        if not self.features or not all(isinstance(f, str) for f in self.features):
            raise ConfigError("must be a non-empty list of column names", parameter="features")
        if self.mode not in ("sqrt", "density", "threshold"):
            raise ConfigError(
                f"must be 'sqrt', 'density' or 'threshold', got {self.mode!r}", parameter="mode"
            )
        if not (np.isfinite(self.aggressiveness) and self.aggressiveness > 0):
            raise ConfigError(
                f"must be positive, got {self.aggressiveness}", parameter="aggressiveness"
            )
        if not (np.isfinite(self.a_min) and 0 < self.a_min <= 1):
            raise ConfigError(f"must be in (0, 1], got {self.a_min}", parameter="a_min")
        if self.mode == "threshold" and (
            self.threshold is None or not 0 <= float(self.threshold) <= 1
        ):
            raise ConfigError(
                f"threshold mode needs a threshold in [0, 1], got {self.threshold}",
                parameter="threshold",
            )
        if self.mode == "density" and not self.density_observable:
            raise ConfigError("density mode needs an observable", parameter="density_observable")
        if self.density_edges is not None:
            e = np.asarray(self.density_edges, dtype=float)
            if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
                raise ConfigError(
                    "must be at least two increasing numbers", parameter="density_edges"
                )
        for name in ("n_estimators", "num_leaves", "min_child_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"must be a positive integer, got {v!r}", parameter=name)
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(
                f"must be positive, got {self.learning_rate}", parameter="learning_rate"
            )

    # -- training ----------------------------------------------------------------------
    def lgb_params(self, objective: str, num_class: int = 1) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": objective,
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_data_in_leaf": int(self.min_child_samples),
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "seed": int(self.random_state),
            "verbose": -1,
        }
        if objective == "multiclass":
            params["num_class"] = num_class
        return params

    def train(
        self, F: np.ndarray, label: np.ndarray, weight: np.ndarray, params: dict[str, Any]
    ) -> lgb.Booster:
        ds = lgb.Dataset(
            F, label=label, weight=weight, params={"verbose": -1, "feature_pre_filter": False}
        )
        return lgb.train(params, ds, num_boost_round=int(self.n_estimators))

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        cost_fixed: float = 0.0,
        cost_skippable: float = 1.0,
        gen_weight: Any = None,
        observable: Any = None,
        info: Mapping[str, Any] | None = None,
    ) -> Controller:
        """Train on events that reached the control point (and whose outcome is known).

        Arguments:
            X: Their features (mapping / DataFrame / 2-D array in ``features`` order).
            y: Passed (0/1, a classifier) or a non-negative relevance (a regressor).
            sample_weight: Their weights (e.g. the product of ``1/a`` of earlier
                decisions, so that they stand for every event reaching the point).
            cost_fixed: Mean CPU per event spent before the control point.
            cost_skippable: Mean CPU per event from the control point on.
            gen_weight: Generation weights, a feature of the acceptance (see the module
                docstring); the controller then needs the column ``gen_weight``.
            observable: Density mode: the observable's value of passing events.
            info: Extra bookkeeping stored with the training sizes (JSON-able).
        """
        self.check_params()
        F = feature_matrix(X, self.features)
        n = len(F)
        yv = np.asarray(y, dtype=float).reshape(-1)
        if len(yv) != n:
            raise InputError(f"y has {len(yv)} rows, X has {n}", column="y")
        if not np.all(np.isfinite(yv)) or np.any(yv < 0):
            raise InputError("must be finite and non-negative", column="y")
        v = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float).ravel()
        if len(v) != n or not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
            raise InputError("must be finite, non-negative, one per row", column="sample_weight")
        for name, c in (("cost_fixed", cost_fixed), ("cost_skippable", cost_skippable)):
            if not (np.isfinite(c) and c >= 0):
                raise ConfigError(f"must be a non-negative number, got {c}", parameter=name)
        w = None
        scale = None
        if gen_weight is not None:
            w = np.asarray(gen_weight, dtype=float).reshape(-1)
            if len(w) != n or not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise InputError("must be finite and positive, one per row", column="gen_weight")
            scale = float(np.median(w))
        binary = bool(np.all((yv == 0) | (yv == 1)))
        passed = yv > 0
        if binary and (passed.sum() < 2 or (~passed).sum() < 2):
            raise InputError(
                f"too few events to train: {int(passed.sum())} passing, "
                f"{int((~passed).sum())} failing (at least 2 of each)",
                column="y",
            )
        vn = v * (n / v.sum())  # mean 1 for LightGBM's hessian limits
        wt = np.ones(n) if w is None else w / scale
        state: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "features": list(self.features),
            "mode": self.mode,
            "a_min": float(self.a_min),
            "aggressiveness": float(self.aggressiveness),
            "threshold": None if self.threshold is None else float(self.threshold),
            "weight_column": None if w is None else "gen_weight",
            "weight_scale": scale,
            "params": self.get_params(),
        }
        folds = self.folds(n, passed)
        if self.mode == "density":
            if not binary:
                raise InputError("density mode needs y = passed (0/1)", column="y")
            labels, edges = self.density_classes(passed, observable, n)
            k = len(edges) - 1
            params = self.lgb_params("multiclass", k + 1)
            oof = np.zeros((n, k + 1))
            for tr, te in folds:
                oof[te] = self.train(F[tr], labels[tr], vn[tr], params).predict(F[te])
            widths = np.diff(edges)
            rate = np.array([vn[labels == j + 1] @ wt[labels == j + 1] for j in range(k)]) / n
            rho = rate / widths
            rho = np.maximum(rho, 1e-3 * max(rho.max(), 1e-300))
            rho = rho / rho.max()
            s = wt**2 * (oof[:, 1:] @ (1.0 / rho**2))
            offset = float(
                np.sum((np.average(wt[:, None] * oof[:, 1:], axis=0, weights=vn)) ** 2 / rho**2)
            )
            booster = self.train(F, labels, vn, params)
            state.update(
                objective="multiclass",
                num_class=k + 1,
                calibration={"x": [], "y": []},
                density={
                    "observable": self.density_observable,
                    "edges": list(map(float, edges)),
                    "rho": [float(r) for r in rho],
                },
            )
        else:
            objective = "binary" if binary else "regression"
            params = self.lgb_params(objective)
            label = passed.astype(float) if binary else yv
            oof1 = np.zeros(n)
            for tr, te in folds:
                oof1[te] = self.train(F[tr], label[tr], vn[tr], params).predict(F[te])
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(
                y_min=0.0, y_max=1.0 if binary else None, increasing=True, out_of_bounds="clip"
            ).fit(oof1, label, sample_weight=vn)
            cal_x = np.asarray(iso.X_thresholds_, dtype=float)
            cal_y = np.asarray(iso.y_thresholds_, dtype=float)
            p = np.interp(oof1, cal_x, cal_y)
            s = p * wt**2
            offset = float(np.average(wt * p, weights=vn) ** 2)
            booster = self.train(F, label, vn, params)
            state.update(
                objective=objective,
                calibration={"x": cal_x.tolist(), "y": cal_y.tolist()},
                density=None,
            )
        if self.mode == "threshold":
            lam_opt, opt = 1.0, {"variance": float("nan"), "cost": float("nan"), "gain": 1.0}
        else:
            lam_opt, opt = optimal_lambda(
                s,
                vn,
                offset,
                a_min=self.a_min,
                cost_fixed=cost_fixed,
                cost_skippable=cost_skippable,
            )
        lam = lam_opt / float(self.aggressiveness) if self.mode != "threshold" else 1.0
        state["lambda_"] = float(lam)
        state["lambda_opt"] = float(lam_opt)
        state["training"] = {
            "n_rows": int(n),
            "n_pass": int(passed.sum()),
            "sum_weight": float(v.sum()),
            "cost_fixed": float(cost_fixed),
            "cost_skippable": float(cost_skippable),
            "predicted_gain": float(opt["gain"]),
            **dict(info or {}),
        }
        model = booster.model_to_string()
        # predictions always go through the model's text, so that this controller, a
        # saved one and one shipped to a worker decide identically
        self.saved_ = SavedController(state, model, source="Controller.fit")
        self.lambda_ = float(lam)
        self.lambda_opt_ = float(lam_opt)
        self.training_ = state["training"]
        return self

    def folds(self, n: int, passed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Two out-of-fold splits, stratified by passing, from ``random_state``."""
        rng = np.random.default_rng(self.random_state)
        fold = np.empty(n, dtype=int)
        for group in (np.flatnonzero(passed), np.flatnonzero(~passed)):
            perm = rng.permutation(group)
            fold[perm] = np.arange(len(perm)) % 2
        return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in (0, 1)]

    def density_classes(
        self, passed: np.ndarray, observable: Any, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class labels (0 fail, k+1 pass into bin k) and the bin edges."""
        if observable is None:
            raise InputError(
                f"density mode needs the values of {self.density_observable!r}",
                column=self.density_observable,
            )
        obs = np.asarray(observable, dtype=float).reshape(-1)
        if len(obs) != n or not np.all(np.isfinite(obs[passed])):
            raise InputError(
                "needs one finite value per passing event", column=self.density_observable
            )
        if self.density_edges is not None:
            edges = np.asarray(self.density_edges, dtype=float)
        else:
            lo, hi = np.quantile(obs[passed], [0.01, 0.99])
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 11)
        k = len(edges) - 1
        labels = np.zeros(n)
        b = np.clip(np.searchsorted(edges, obs[passed], side="right") - 1, 0, k - 1)
        labels[passed] = b + 1
        return labels, edges

    # -- predictions (all through the saved state) -------------------------------------
    def check_fitted(self) -> SavedController:
        if not hasattr(self, "saved_"):
            raise ConfigError("the controller is not trained yet: call fit() first")
        return self.saved_

    @property
    def inputs(self) -> tuple[str, ...]:
        """The columns :meth:`decide` needs (``features``, then ``gen_weight`` if used)."""
        return self.check_fitted().inputs

    def predict_proba(self, X: Any) -> np.ndarray:
        """The calibrated probability to pass (the predicted relevance) per event."""
        return self.check_fitted().predict(X)

    def acceptance(self, X: Any) -> np.ndarray:
        """The acceptance ``a(x)`` per event."""
        return self.check_fitted().acceptance(X)

    def decide(self, X: Any, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(accept, a)``: go on with probability ``a``; an accepted event's weight is
        ``1/a``."""
        accept, a, _ = self.check_fitted().decide_details(X, rng)
        return accept, a

    def decide_details(self, X: Any, rng: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(accept, a, p)``: :meth:`decide` and the predicted probability."""
        return self.check_fitted().decide_details(X, rng)

    # -- persistence -------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``controller.json`` and ``model.txt`` (LightGBM's text) into ``folder``."""
        return self.check_fitted().save(folder)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with the state and the model text (for Dask workers)."""
        return self.check_fitted().to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Controller:
        """Rebuild a trained controller from :meth:`to_dict` (no warning, no training)."""
        saved = SavedController.from_dict(data, source="controller dict")
        return cls.from_saved(saved)

    @classmethod
    def from_saved(cls, saved: SavedController) -> Controller:
        """A trained controller around a loaded :class:`SavedController`."""
        params = dict(saved.state.get("params") or {})
        obj = cls.__new__(cls)
        defaults = {
            "features": list(saved.features),
            "mode": saved.mode,
            "aggressiveness": 1.0,
            "a_min": saved.a_min,
            "threshold": saved.threshold,
            "density_observable": None,
            "density_edges": None,
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_child_samples": 20,
            "random_state": 0,
        }
        for key, default in defaults.items():
            value = params.get(key, default)
            setattr(
                obj,
                key,
                tuple(value)
                if key in ("features", "density_edges") and value is not None
                else value,
            )
        obj.saved_ = saved
        obj.lambda_ = saved.lambda_
        obj.lambda_opt_ = float(saved.state.get("lambda_opt", saved.lambda_))
        obj.training_ = dict(saved.state.get("training") or {})
        return obj

    @classmethod
    def load(cls, folder: str | Path) -> Controller:
        """Load a controller saved by :meth:`save`."""
        from ariasim.active.loader import load_controller

        return cls.from_saved(load_controller(folder))
