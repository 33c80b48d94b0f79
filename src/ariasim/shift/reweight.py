"""Classifier reweighting (DCTR): per-event weights that turn the source into the target.

A classifier trained to tell the target (label 1) from the source (label 0), with both
classes carrying the same total weight, estimates ``p(x) = t(x) / (s(x) + t(x))``; the
likelihood ratio is then ``w(x) = t(x)/s(x) = p/(1 - p)`` (the Neyman-Pearson lemma;
Andreassen & Nachman, "Neural networks for full phase-space reweighting and parameter
tuning", Phys. Rev. D 101, 091901 (2020), DCTR; OmniFold iterates the same step).
The weights are only as good as the probabilities, so they are calibrated: isotonic
regression (Zadrozny & Elkan, KDD 2002) of the label on out-of-fold classifier scores; a top
block of the calibration that holds target rows only (whose fraction 1 is an infinite ratio)
gets the zero-cell estimate of its counts instead of the bound's weight 9999
(:func:`resolve_ceiling`).
Large weights are clipped at a quantile of the source's weights; the fraction clipped and
the Kish effective-sample-size loss are reported, because a reweighted sample with ESS far
below its size carries less information than its row count suggests.

The classifier is LightGBM (Ke et al., NeurIPS 2017): deterministic on one thread, fast on
tables, saved in its own text format (never pickled).

Context first (``context_first=True``): the likelihood ratio factorises exactly as
``t(x, c)/s(x, c) = [t(c)/s(c)] [t(x | c)/s(x | c)]``. When the context distributions differ
much (a surrogate that puts events in other places than the full simulation does), one
classifier on ``(x, c)`` must learn a steep context ratio and a small feature residual with
one early-stopped set of trees. With ``context_first`` a first
classifier sees the context only and gives ``w_c(c)``; the second sees ``(x, c)`` with the
source rows weighted by ``w_c``, so it learns only the conditional part; the weights are the
product ``w_c(c) w_x(x, c)``, clipped as one. The factorisation is the chain rule of
probability; fitting the ratio in two sequential classifier steps is the same DCTR step applied
twice (Andreassen & Nachman, above), as in sequential reweighting of kinematics, then of further
variables, in HEP (boosted-decision-tree reweighting: Rogozhnikov, J. Phys. Conf. Ser. 762,
012036 (2016)). Measured on the photon-surrogate application (BENCHMARKS.md, "Photon surrogate
after the morph"): where the context distributions differ it lowered the times' W1 on three
sets of rows and moved the charge's both ways; it is not any application's default.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ariasim.errors import ConfigError, InputError, check_int
from ariasim.metrics import effective_sample_size
from ariasim.shift.base import ReweighterMixin, resolve_columns, split_domains
from ariasim.shift.persist import save_folder

__all__ = [
    "LOW_ESS_FRACTION",
    "ClassifierReweighter",
    "LowEffectiveSampleWarning",
    "resolve_ceiling",
]

MODEL_NAME = "model.txt"


#: Kish effective-sample-size fraction below which :meth:`ClassifierReweighter.fit` warns.
LOW_ESS_FRACTION = 0.1

#: Bounds of the isotonic calibration's probabilities (weights 1e-4 to 9999); a run of the
#: calibration at the upper bound without source rows is re-estimated (:func:`resolve_ceiling`).
P_FLOOR, P_CEILING = 1e-4, 1 - 1e-4


class LowEffectiveSampleWarning(UserWarning):
    """The reweighter's weights keep less than :data:`LOW_ESS_FRACTION` of the source's
    effective sample size (a target region the source does not cover)."""


class ClassifierReweighter(ReweighterMixin, BaseEstimator):
    """Weights ``w = p/(1-p)`` from a calibrated source-vs-target classifier.

    Arguments:
        features: Feature columns (``None``: every column that is not context).
        context: Context columns; the classifier sees them too, so the weights also correct
            a difference in the context distribution.
        n_estimators: Most boosting rounds; early stopping on the other fold picks fewer.
        learning_rate, num_leaves, min_child_samples: LightGBM's tree settings
            (``min_child_samples`` large keeps the weights smooth).
        clip_quantile: Weights above this quantile of the source's weights are set to it
            (``None``: no clipping).
        n_folds: Folds (>= 2) of the out-of-fold scores that pick the number of boosting
            rounds (early stopping on the held-out fold) and calibrate the probabilities.
        average_folds: ``False`` (default): the weights come from one classifier refitted on
            all rows with the folds' mean number of rounds. ``True``: from the mean raw
            score of the ``n_folds`` fold classifiers (bagging, Breiman, Machine Learning 24,
            123 (1996): averaging classifiers fitted on different subsets lowers the
            variance of the weights, which is what a judge trained on fresh rows sees as
            noise); each stops at its own best round.
        context_first: ``True``: a classifier on the context columns alone gives ``w_c(c)``
            first, the ``(x, c)`` classifier learns the rest on the ``w_c``-weighted source,
            and the weights are their product (module docstring). Needs context columns.
            ``False`` (default): one classifier on ``(x, c)``, as before the option existed.
        random_state: Seed of the folds and of LightGBM.

    After ``fit``: ``ess_fraction_`` (Kish ESS of the reweighted source over its ESS
    before), ``clipped_fraction_``, ``weight_cap_``, ``n_estimators_``, ``auc_oof_`` (the
    classifier's out-of-fold AUC: 0.5 means no shift was found; with ``context_first``, the
    ``(x, c)`` classifier's on the context-weighted source, i.e. what the context does not
    explain), ``context_auc_oof_`` (the context classifier's out-of-fold AUC; ``nan``
    without ``context_first``).

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 2000)})
        >>> tgt = pd.DataFrame({"x": rng.normal(0.5, 1.0, 2000)})
        >>> from ariasim.shift import stack
        >>> X, y, _ = stack(src, tgt)
        >>> rw = ClassifierReweighter(n_estimators=50).fit(X, y)
        >>> w = rw.weights(src)
        >>> bool(abs(np.average(src["x"], weights=w) - 0.5) < 0.1)
        True
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        context: Sequence[str] | None = None,
        *,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        clip_quantile: float | None = 0.999,
        n_folds: int = 2,
        average_folds: bool = False,
        context_first: bool = False,
        random_state: int = 0,
    ):
        self.features = features
        self.context = context
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.clip_quantile = clip_quantile
        self.n_folds = n_folds
        self.average_folds = average_folds
        self.context_first = context_first
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_child_samples": int(self.min_child_samples),
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "seed": self._seed32(),
            "verbosity": -1,
        }

    def _seed32(self) -> int:
        """A 31-bit seed for LightGBM and the folds from any non-negative ``random_state``."""
        rs = self.random_state
        if isinstance(rs, bool) or not isinstance(rs, int | np.integer) or rs < 0:
            raise ConfigError(
                f"must be a non-negative integer, got {rs!r}", parameter="random_state"
            )
        return int(np.random.SeedSequence(int(rs)).generate_state(1)[0] >> 1)

    def _check_params(self) -> None:
        for name in ("n_estimators", "num_leaves", "min_child_samples"):
            check_int(name, getattr(self, name))
        check_int("n_folds", self.n_folds, 2)
        for name in ("average_folds", "context_first"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigError(
                    f"must be True or False, got {getattr(self, name)!r}", parameter=name
                )
        if not 0 < float(self.learning_rate) <= 1:
            raise ConfigError("must be in (0, 1]", parameter="learning_rate")
        q = self.clip_quantile
        if q is not None and not 0.5 < float(q) <= 1:
            raise ConfigError(f"must be in (0.5, 1] or None, got {q!r}", parameter="clip_quantile")

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> ClassifierReweighter:
        """Train and calibrate the classifier on the pooled table (``y``: 0 source, 1 target);
        with ``context_first``, the context classifier first (class docstring)."""
        self._check_params()
        d = split_domains(X, y, sample_weight, self.features, self.context)
        if self.context_first and not d.context:
            raise ConfigError("needs context columns", parameter="context_first")
        k = int(self.n_folds)
        if min(int(np.sum(d.y == 0)), int(np.sum(d.y == 1))) < k:
            raise ConfigError(f"{k} folds need at least {k} rows per domain", parameter="n_folds")
        base = d.w.copy()
        self.context_stage_: _Stage | None = None
        self.context_auc_oof_ = float("nan")
        if self.context_first:
            self.context_stage_ = self._fit_stage(d.c, d.y, base)
            self.context_auc_oof_ = self.context_stage_.auc_oof
            # the (x, c) classifier sees the source as the context weights make it
            base[d.y == 0] *= self.context_stage_.weights(d.c[d.y == 0])
        F = np.hstack([d.x, d.c])
        main = self._fit_stage(F, d.y, base)
        self.calibration_ = main.calibration
        self.auc_oof_ = main.auc_oof
        self.n_estimators_ = int(np.mean(main.best))
        self.boosters_, self.iterations_ = main.boosters, main.iterations
        self.features_, self.context_ = d.features, d.context
        self.weight_cap_ = float("inf")
        w_src = self._raw_weights(F[d.y == 0])
        if self.clip_quantile is not None:
            self.weight_cap_ = float(np.quantile(w_src, float(self.clip_quantile)))
        base = d.w[d.y == 0]
        clipped = np.minimum(w_src, self.weight_cap_)
        self.clipped_fraction_ = float(np.mean(w_src > self.weight_cap_))
        self.ess_fraction_ = effective_sample_size(base * clipped) / effective_sample_size(base)
        if self.ess_fraction_ < LOW_ESS_FRACTION:
            # weights cannot create events where the source has (almost) none: say so
            # rather than let a corrected sample of a few effective events pass silently
            top = float(np.max(clipped))
            warnings.warn(
                f"the weights keep {self.ess_fraction_:.2%} of the source's effective sample "
                f"size (largest weight {top:.4g}, on {np.mean(clipped >= top):.2%} of the "
                f"source rows; {self.clipped_fraction_:.2%} clipped): the target has regions "
                "the source barely covers, which reweighting cannot fill",
                LowEffectiveSampleWarning,
                stacklevel=2,
            )
        return self

    def _fit_stage(self, F: np.ndarray, labels: np.ndarray, w: np.ndarray) -> _Stage:
        """One calibrated classifier of ``F``'s rows (``labels``: 0 source, 1 target, row
        weights ``w``): out-of-fold scores with early stopping, isotonic calibration, then the
        refitted or fold-averaged boosters."""
        from sklearn.isotonic import IsotonicRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        lab = labels.astype(np.float64)
        # balanced: each domain carries half the total weight, so p/(1-p) is t/s
        wb = w.copy()
        for k in (0, 1):
            wb[labels == k] *= 0.5 * len(wb) / wb[labels == k].sum()
        params = self._params()
        folds = StratifiedKFold(
            n_splits=int(self.n_folds), shuffle=True, random_state=self._seed32()
        )
        oof = np.zeros(len(lab))
        best: list[int] = []
        fold_boosters: list[lgb.Booster] = []
        for tr, te in folds.split(F, labels):
            dtr = lgb.Dataset(F[tr], lab[tr], weight=wb[tr], free_raw_data=False)
            dte = lgb.Dataset(F[te], lab[te], weight=wb[te], reference=dtr)
            booster = lgb.train(
                params,
                dtr,
                num_boost_round=int(self.n_estimators),
                valid_sets=[dte],
                callbacks=[lgb.early_stopping(20, verbose=False)],
            )
            it = max(int(booster.best_iteration or self.n_estimators), 1)
            best.append(it)
            oof[te] = booster.predict(F[te], num_iteration=it, raw_score=True)
            fold_boosters.append(booster)
        iso = IsotonicRegression(y_min=P_FLOOR, y_max=P_CEILING, out_of_bounds="clip")
        iso.fit(oof, lab, sample_weight=wb)
        cx = np.asarray(iso.X_thresholds_, float)
        calibration = (cx, resolve_ceiling(cx, np.asarray(iso.y_thresholds_, float), oof, lab, wb))
        auc_oof = float(roc_auc_score(lab, oof, sample_weight=wb))
        if self.average_folds:
            boosters, iterations = fold_boosters, best
        else:
            n_est = int(np.mean(best))
            full = lgb.Dataset(F, lab, weight=wb)
            boosters, iterations = [lgb.train(params, full, num_boost_round=n_est)], [n_est]
        return _Stage(boosters, iterations, calibration, auc_oof, best)

    def _raw_weights(self, F: np.ndarray) -> np.ndarray:
        """Unclipped weights of the rows ``F`` (features then context columns)."""
        main = _Stage(self.boosters_, self.iterations_, self.calibration_, self.auc_oof_, [])
        w = main.weights(F)
        stage = getattr(self, "context_stage_", None)
        if stage is not None:
            w = w * stage.weights(F[:, len(self.features_) :])
        return w

    def weights(self, X: pd.DataFrame) -> np.ndarray:
        """Per-row weights ``p/(1-p)`` (clipped) that carry source rows to the target."""
        if not hasattr(self, "boosters_"):
            raise ConfigError("this ClassifierReweighter is not fitted; call fit first")
        resolve_columns(X, self.features_, self.context_)
        cols = self.features_ + self.context_
        F = X[cols].to_numpy(dtype=np.float64)
        return np.minimum(self._raw_weights(F), self.weight_cap_)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json`` and LightGBM's ``model.txt`` into the folder ``path`` (with
        ``average_folds``, one ``model-<k>.txt`` per fold classifier)."""
        if not hasattr(self, "boosters_"):
            raise ConfigError("this ClassifierReweighter is not fitted; call fit first")
        state = {
            "features": self.features_,
            "context": self.context_,
            "calibration": {"x": self.calibration_[0].tolist(), "y": self.calibration_[1].tolist()},
            "n_estimators": self.n_estimators_,
            "weight_cap": None if np.isinf(self.weight_cap_) else self.weight_cap_,
            "ess_fraction": self.ess_fraction_,
            "clipped_fraction": self.clipped_fraction_,
            "auc_oof": self.auc_oof_,
            "iterations": [int(i) for i in self.iterations_],
        }
        texts = {
            _model_file(j, len(self.boosters_)): b.model_to_string()
            for j, b in enumerate(self.boosters_)
        }
        stage = getattr(self, "context_stage_", None)
        if stage is not None:  # only then: models without it keep their bytes
            state["context_stage"] = {
                "calibration": {
                    "x": stage.calibration[0].tolist(),
                    "y": stage.calibration[1].tolist(),
                },
                "auc_oof": stage.auc_oof,
                "iterations": [int(i) for i in stage.iterations],
            }
            for j, b in enumerate(stage.boosters):
                texts[CONTEXT_PREFIX + _model_file(j, len(stage.boosters))] = b.model_to_string()
        params = self.get_params()
        if not params["context_first"]:  # the option's default: the bytes of before it existed
            del params["context_first"]
        return save_folder(
            path,
            type(self).__name__,
            params,
            state,
            texts=texts,
            overwrite=overwrite,
        )

    @classmethod
    def from_saved(cls, params: dict, state: dict, folder: Path) -> ClassifierReweighter:
        """Rebuild from the parts :func:`ariasim.shift.load` read (no pickle)."""
        self = cls(**params)
        self.features_ = [str(f) for f in state["features"]]
        self.context_ = [str(c) for c in state["context"]]
        self.calibration_ = _calibration(state["calibration"], "state.calibration")
        self.n_estimators_ = int(state["n_estimators"])
        cap = state["weight_cap"]
        self.weight_cap_ = float("inf") if cap is None else float(cap)
        self.ess_fraction_ = float(state["ess_fraction"])
        self.clipped_fraction_ = float(state["clipped_fraction"])
        self.auc_oof_ = float(state["auc_oof"])
        # models saved before fold averaging have no "iterations": one refitted classifier
        self.iterations_ = _iterations(state.get("iterations", [self.n_estimators_]), "iterations")
        n_in = len(self.features_) + len(self.context_)
        self.boosters_ = _boosters(folder, "", self.iterations_, n_in)
        # models saved before context_first have no "context_stage"
        cs = state.get("context_stage")
        self.context_stage_ = None
        self.context_auc_oof_ = float("nan")
        if cs is not None:
            if not isinstance(cs, dict) or not self.context_:
                raise InputError(
                    "must be an object, and only with context columns", field="state.context_stage"
                )
            its = _iterations(cs.get("iterations"), "context_stage.iterations")
            self.context_stage_ = _Stage(
                _boosters(folder, CONTEXT_PREFIX, its, len(self.context_)),
                its,
                _calibration(cs.get("calibration"), "state.context_stage.calibration"),
                float(cs["auc_oof"]),
                [],
            )
            self.context_auc_oof_ = self.context_stage_.auc_oof
        if bool(self.context_first) != (cs is not None):
            raise InputError("context_first and the saved context stage disagree", field="params")
        return self


#: File-name prefix of the context classifier's LightGBM file(s) (``context_first``).
CONTEXT_PREFIX = "context-"


class _Stage:
    """One calibrated classifier: its boosters (one refitted, or the fold classifiers), their
    rounds, the isotonic calibration (score knots, probabilities), its out-of-fold AUC and
    each fold's best round."""

    def __init__(
        self,
        boosters: list[lgb.Booster],
        iterations: list[int],
        calibration: tuple[np.ndarray, np.ndarray],
        auc_oof: float,
        best: list[int],
    ):
        self.boosters, self.iterations = boosters, iterations
        self.calibration, self.auc_oof, self.best = calibration, auc_oof, best

    def weights(self, F: np.ndarray) -> np.ndarray:
        """``p/(1-p)`` of the rows ``F`` (the mean raw score over the boosters, calibrated)."""
        s = np.zeros(F.shape[0])
        for booster, it in zip(self.boosters, self.iterations, strict=True):
            s += booster.predict(F, num_iteration=it, raw_score=True)
        s /= len(self.boosters)
        p = np.interp(s, *self.calibration)
        return p / (1.0 - p)


def resolve_ceiling(
    knots: np.ndarray,
    probs: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """The isotonic calibration's probabilities ``probs`` at the score ``knots``, with a top
    run that holds no source row re-estimated from its counts.

    Isotonic regression (pool-adjacent-violators) gives each block of scores the weighted
    fraction of target rows in it. A top block with target rows only has fraction 1, an
    infinite ratio ``t/s``; the calibration's upper bound :data:`P_CEILING` then stands in
    for it, i.e. the weight 9999 however few rows the block holds. Scores beyond the
    calibration's range (a refitted classifier's are wider than the out-of-fold scores it
    was calibrated on) all take the top block's value, so on fresh rows that weight can
    land on many rows and carry the whole weighted sample (BENCHMARKS.md, "The reweighter's
    weight-ceiling collapse"). Here such a run (the knots at :data:`P_CEILING` when the
    rows ``scores >=`` its first knot include no source weight) gets the zero-cell
    (Haldane-Anscombe) estimate: half an average row of each domain added to its counts,
    ``p = (W_t + u_t/2) / (W_t + u_t/2 + u_s/2)`` with ``u_k`` the mean weight of a row of
    domain ``k``, so its ratio is ``(n_t + 1/2) / (1/2)`` times the domains' size ratio for
    ``n_t`` unweighted target rows: finite, and of the order of what the block resolves
    (Haldane, Ann. Hum. Genet. 20, 309 (1956); Anscombe, Biometrika 43, 461 (1956); the
    additive smoothing of calibrated tree scores, Zadrozny & Elkan, ICML 2001, "Obtaining
    calibrated probability estimates from decision trees and naive Bayesian classifiers",
    is the same m-estimate with ``m`` pseudo-rows). Only the zero source count is corrected:
    it is the ratio's denominator, while a zero target count gives the finite ratio 0.
    Blocks with both domains keep their isotonic value, so a calibration without such a
    run is returned unchanged (the same bytes). If the estimate falls below the block
    beneath, the two are pooled as the pool-adjacent-violators step would (their joint
    fraction, which holds source rows). ``scores``, ``labels`` (0 source, 1 target) and
    ``weights`` are the rows the isotonic regression was fitted on.

    Example:
        >>> s = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0])
        >>> lab = np.array([0, 1, 0, 1, 1, 1, 1])
        >>> resolve_ceiling(np.array([0.0, 1.0, 2.0]), np.array([0.5, 0.5, P_CEILING]),
        ...                 s, lab, np.ones(7)).tolist()   # 3 target rows: (3.5)/(4)
        [0.5, 0.5, 0.875]
    """
    top = probs >= P_CEILING
    if not top.any():
        return probs
    j = int(np.argmax(top))  # the probabilities increase: the run is a suffix
    tgt = labels == 1
    in_run = scores >= knots[j]
    w_t, w_s = float(weights[in_run & tgt].sum()), float(weights[in_run & ~tgt].sum())
    if w_s > 0:  # the data resolve a ratio of at least 1/P_FLOOR: the bound stays
        return probs
    half_t, half_s = 0.5 * float(weights[tgt].mean()), 0.5 * float(weights[~tgt].mean())
    p = (w_t + half_t) / (w_t + half_t + half_s)
    if j > 0 and p < probs[j - 1]:
        # pool with the block beneath (its knots share its probability)
        j = int(np.argmax(probs == probs[j - 1]))
        in_run = scores >= knots[j]
        p = float(weights[in_run & tgt].sum()) / float(weights[in_run].sum())
    out = probs.copy()
    out[j:] = p
    return out


def _calibration(c: Any, field: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(c, dict) or "x" not in c or "y" not in c:
        raise InputError("must be an object with x and y", field=field)
    cx = np.asarray(c["x"], float)
    cy = np.asarray(c["y"], float)
    if cx.shape != cy.shape or cx.ndim != 1 or cx.size == 0 or np.any(np.diff(cx) < 0):
        raise InputError("calibration x and y must be 1-D, one length, x increasing", field=field)
    return cx, cy


def _iterations(its: Any, field: str) -> list[int]:
    if (
        not isinstance(its, list)
        or not its
        or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in its)
    ):
        raise InputError("must be a non-empty list of positive integers", field=field)
    return [int(i) for i in its]


def _boosters(folder: Path, prefix: str, its: list[int], n_in: int) -> list[lgb.Booster]:
    from ariasim.active.loader import load_booster

    out = []
    for j in range(len(its)):
        mpath = Path(folder) / (prefix + _model_file(j, len(its)))
        if not mpath.is_file():
            raise InputError("missing file of a saved model", path=mpath)
        out.append(load_booster(mpath.read_text(encoding="utf-8"), str(mpath), n_in))
    return out


def _model_file(j: int, n: int) -> str:
    """The file of classifier ``j`` of ``n``: ``model.txt`` for one, ``model-<j>.txt`` for
    the fold classifiers of ``average_folds``."""
    return MODEL_NAME if n == 1 else f"model-{j}.txt"
