"""Morph, then reweight: a morpher moves the events, a classifier reweighter fixes the residual.

A morpher (:class:`~ariasim.shift.FlowMorpher` or :class:`~ariasim.shift.FlowMatchingMorpher`)
carries most of a shift, including into regions where the source has no events, which weights
alone cannot do; what it leaves (an imperfect fit of a correlation, a tail the flow smooths) is
a small difference between the *morphed* source and the target. A calibrated classifier
reweighter (:class:`~ariasim.shift.ClassifierReweighter`, DCTR weights ``p/(1-p)``) trained on
the morphed source against the target removes that residual; because the residual is small,
its weights stay near 1 and cost little effective sample size (the Kish ESS is reported).
The combination is the refinement step of e.g. the "flow + reweighting" corrections of
simulation in HEP (Daumann et al., arXiv:2403.18582, discuss reweighting as the complement of
morphing; the DCTR step is Andreassen & Nachman, Phys. Rev. D 101, 091901 (2020)); it is the
same idea as a classifier-based refinement of a generative model's output (Diefenbacher et
al., "DCTRGAN", JINST 15 P11004 (2020)).

The corrected sample is the morphed rows *with* their weights: ``correct(X)`` returns both;
``transform`` alone gives the morphed rows, ``weights`` alone the weights of the source rows
(morphing them first). ``score`` judges the weighted morphed rows, as the applications do.

Training data: by default both stages see all of ``fit``'s rows (the reweighter learns on the
morphed training source against the training target, with its own out-of-fold calibration).
A flow partly memorises its training rows: it morphs *them* better than new rows (detector
application, 20k rows per side: morph-only AUC 0.530 on its own training rows against 0.550 on
fresh rows, BENCHMARKS.md), so a reweighter trained on them sees too small a residual and
under-corrects new rows. Two ways to show it the residual that new rows have:

* ``reweight_fraction > 0`` keeps that fraction of each domain away from the morpher, for the
  reweighter only; honest, but the morpher loses that fraction of its data.
* ``cross_fit = K`` (K >= 2, cross-fitting as in double/debiased machine learning,
  Chernozhukov et al., Econometrics Journal 21, C1 (2018)): each domain's rows are split into K
  folds; for each fold a morpher trained on the other K - 1 folds morphs the held-out fold's
  source rows, so every source row is morphed by a morpher that never saw it; the reweighter
  learns on all these out-of-fold morphed source rows against all target rows. Which
  morpher then moves new rows (``cross_fit_morph``):

  - ``"folds"`` (default): the K fold morphers themselves, each new row going to the fold
    morpher picked by a hash of its values (so a row's result does not depend on the rows
    around it). New rows then come out as the same mixture of the K morphers' outputs on
    unseen rows that the reweighter was trained on, so its weights fit them. Costs K
    morpher fits on (K-1)/K of the rows each.
  - ``"refit"``: one morpher trained on *all* rows (the same seed as without cross-fitting),
    whose residual on new rows is only of the *kind* the fold morphers show; K + 1 fits.

  Measured (BENCHMARKS.md, "Cross-fitted morph + reweight", detector, 20k rows per side,
  K = 2, two seeds): neither choice beats no cross-fitting at both seeds. ``"refit"`` is the
  less stable: weights learned on the fold morphers' residual need not fit the refitted
  morpher's (a flow's residual changes with its seed and with early stopping; at one seed a
  fold morpher stopped after 20 epochs, and the refit chain's AUC got worse than without
  cross-fitting, 0.542 -> 0.558); ``"folds"`` applies the weights to the distribution they
  were learned on and gave 0.539 and 0.540 (0.528 and 0.542 without), its morphers having
  only (K-1)/K of the rows. ``"folds"`` is the default for its consistency; cross-
  fitting itself stays off by default (``cross_fit=0``).

Either way only ``fit``'s rows are used: a judging sample is never seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from ariasim.errors import ConfigError, InputError
from ariasim.shift.base import auc_score, domain_auc, resolve_columns, split_domains
from ariasim.shift.persist import save_folder
from ariasim.utils import atomic_path, spawn_seeds

__all__ = ["MorphReweighter"]

MORPHER_DIR = "morpher"
REWEIGHTER_DIR = "reweighter"


class MorphReweighter(BaseEstimator):
    """A morpher followed by a classifier reweighter trained on (morphed source vs target).

    Arguments:
        features: Feature columns (``None``: every column that is not context).
        context: Context columns: the morpher is conditional on them and never changes them;
            the reweighter sees them, so its weights also correct a difference in the
            context distribution.
        morpher: An unfitted morpher (default: ``FlowMorpher()``); it is cloned, and its
            ``features``, ``context`` and ``random_state`` are set from this learner's.
        reweighter: An unfitted reweighter (default: ``ClassifierReweighter()``), cloned
            likewise; its clipping and ESS report are this learner's.
        reweight_fraction: Fraction of each domain's rows kept for the reweighter only (0:
            both stages learn on every row).
        cross_fit: Number of folds K for cross-fitting (module docstring): 0 (off) or >= 2;
            not combined with ``reweight_fraction``.
        cross_fit_morph: With ``cross_fit``, which morpher moves new rows: ``"folds"`` (the K
            fold morphers, a row's fold from a hash of its values) or ``"refit"`` (one morpher
            trained on all rows).
        random_state: Seed; the two stages and the split get independent streams
            (:func:`ariasim.utils.spawn_seeds`).

    After ``fit``: ``morpher_``, ``reweighter_`` (fitted), ``ess_fraction_`` (Kish ESS of
    the weighted morphed source over its ESS before), ``clipped_fraction_``, ``auc_oof_``
    (the residual classifier's out-of-fold AUC on the morphed training rows: 0.5 means the
    morpher left nothing it could find; with ``cross_fit``, on the out-of-fold morphed rows),
    ``morphers_`` (the morphers ``transform`` uses: one, or the K fold morphers),
    ``morpher_`` (the first of them), ``n_epochs_`` (its epochs); with ``cross_fit`` also
    ``fold_morphers_`` (the K fold morphers) and ``fold_`` (each ``fit`` row's fold, in
    ``fit``'s order).

    Example:
        >>> import numpy as np, pandas as pd
        >>> from ariasim.shift import FlowMorpher, stack
        >>> rng = np.random.default_rng(0)
        >>> src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 1000)})
        >>> tgt = pd.DataFrame({"x": rng.normal(1.0, 1.0, 1000)})
        >>> X, y, _ = stack(src, tgt)
        >>> flow = FlowMorpher(flow_transforms=1, hidden_features=(16,), max_epochs=20,
        ...                    batch_size=200, learning_rate=1e-2)
        >>> m = MorphReweighter(morpher=flow).fit(X, y)
        >>> moved, w = m.correct(src)
        >>> bool(abs(np.average(moved["x"], weights=w) - 1.0) < 0.2), bool(w.min() > 0)
        (True, True)
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        context: Sequence[str] | None = None,
        *,
        morpher: Any = None,
        reweighter: Any = None,
        reweight_fraction: float = 0.0,
        cross_fit: int = 0,
        cross_fit_morph: str = "folds",
        random_state: int = 0,
    ):
        self.features = features
        self.context = context
        self.morpher = morpher
        self.reweighter = reweighter
        self.reweight_fraction = reweight_fraction
        self.cross_fit = cross_fit
        self.cross_fit_morph = cross_fit_morph
        self.random_state = random_state

    def _stages(self) -> tuple[Any, Any]:
        from ariasim.shift.flow import FlowMorpher
        from ariasim.shift.reweight import ClassifierReweighter

        m = FlowMorpher() if self.morpher is None else clone(self.morpher)
        r = ClassifierReweighter() if self.reweighter is None else clone(self.reweighter)
        if not hasattr(m, "transform"):
            raise ConfigError(
                f"must be a morpher (with transform), got {type(m).__name__}", parameter="morpher"
            )
        if not hasattr(r, "weights"):
            raise ConfigError(
                f"must be a reweighter (with weights), got {type(r).__name__}",
                parameter="reweighter",
            )
        return m, r

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> MorphReweighter:
        """Fit the morpher, morph the source rows (out of fold with ``cross_fit``), fit the
        reweighter on them and the target."""
        from ariasim.metrics import effective_sample_size

        f = self.reweight_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f < 0.9:
            raise ConfigError(f"must be in [0, 0.9), got {f!r}", parameter="reweight_fraction")
        k_cf = self.cross_fit
        if (
            isinstance(k_cf, bool)
            or not isinstance(k_cf, int | np.integer)
            or k_cf < 0
            or k_cf == 1
        ):
            raise ConfigError(
                f"must be 0 (off) or an integer >= 2, got {k_cf!r}", parameter="cross_fit"
            )
        if self.cross_fit_morph not in ("folds", "refit"):
            raise ConfigError(
                f"must be 'folds' or 'refit', got {self.cross_fit_morph!r}",
                parameter="cross_fit_morph",
            )
        if k_cf and f > 0:
            raise ConfigError(
                "cannot be combined with reweight_fraction > 0 (both keep rows from the morpher)",
                parameter="cross_fit",
            )
        d = split_domains(X, y, sample_weight, self.features, self.context)
        if k_cf:
            fewest = min(int(np.sum(d.y == 0)), int(np.sum(d.y == 1)))
            if fewest < 2 * k_cf:
                raise ConfigError(
                    f"{k_cf} folds need at least {2 * k_cf} rows per domain, got {fewest}",
                    parameter="cross_fit",
                )
        s_morph, s_rew, s_split = spawn_seeds(self.random_state, 3)
        morpher, reweighter = self._stages()
        morpher.set_params(features=d.features, context=d.context, random_state=int(s_morph))
        reweighter.set_params(features=d.features, context=d.context, random_state=int(s_rew))
        Xr = X.reset_index(drop=True)
        rows_m = rows_r = np.arange(len(Xr))
        if f > 0:
            rng = np.random.default_rng(s_split)
            keep = np.zeros(len(Xr), bool)
            for k in (0, 1):
                idx = np.nonzero(d.y == k)[0]
                k_r = min(max(round(f * idx.size), 2), idx.size - 2)
                keep[rng.permutation(idx)[:k_r]] = True
            rows_m, rows_r = np.nonzero(~keep)[0], np.nonzero(keep)[0]
        refit = not k_cf or self.cross_fit_morph == "refit"
        if refit:
            morpher.fit(Xr.iloc[rows_m], d.y[rows_m], sample_weight=d.w[rows_m])
        Xw = Xr.iloc[rows_r].reset_index(drop=True)
        yw, ww = d.y[rows_r], d.w[rows_r]
        src = yw == 0
        if k_cf:
            moved_src = self._out_of_fold(morpher, Xr, d.y, d.w, int(k_cf), int(s_split))
        else:
            moved_src = morpher.transform(Xw[src]).reset_index(drop=True)
        Xm = pd.concat([moved_src, Xw[~src].reset_index(drop=True)], ignore_index=True)
        ym = np.concatenate([yw[src], yw[~src]])
        wm = np.concatenate([ww[src], ww[~src]])
        reweighter.fit(Xm, ym, sample_weight=wm)
        self.morphers_ = [morpher] if refit else list(self.fold_morphers_)
        self.morpher_, self.reweighter_ = self.morphers_[0], reweighter
        self.features_, self.context_ = d.features, d.context
        base = ww[src]
        self.ess_fraction_ = float(
            effective_sample_size(base * reweighter.weights(moved_src))
            / effective_sample_size(base)
        )
        self.clipped_fraction_ = float(getattr(reweighter, "clipped_fraction_", 0.0))
        self.auc_oof_ = float(getattr(reweighter, "auc_oof_", float("nan")))
        if hasattr(self.morpher_, "n_epochs_"):
            self.n_epochs_ = int(self.morpher_.n_epochs_)
        return self

    def _out_of_fold(
        self, template: Any, Xr: pd.DataFrame, y: np.ndarray, w: np.ndarray, k: int, seed: int
    ) -> pd.DataFrame:
        """Every source row of ``Xr`` morphed by a morpher trained on the other folds only
        (returned in ``Xr``'s source order); sets ``fold_`` and ``fold_morphers_``."""
        s_folds, *s_fold_morphers = spawn_seeds(seed, k + 1)
        rng = np.random.default_rng(s_folds)
        fold = np.empty(len(Xr), dtype=np.int64)
        for label in (0, 1):  # each domain split evenly over the folds
            idx = np.nonzero(y == label)[0]
            fold[rng.permutation(idx)] = np.arange(idx.size) % k
        src_rows = np.nonzero(y == 0)[0]
        moved: list[pd.DataFrame] = []
        morphers = []
        for j in range(k):
            m = clone(template).set_params(random_state=int(s_fold_morphers[j]))
            train = np.nonzero(fold != j)[0]
            m.fit(Xr.iloc[train], y[train], sample_weight=w[train])
            held = src_rows[fold[src_rows] == j]
            moved.append(m.transform(Xr.iloc[held]).set_axis(held))
            morphers.append(m)
        out = pd.concat(moved).loc[src_rows].reset_index(drop=True)
        self.fold_, self.fold_morphers_ = fold, morphers
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "morpher_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted; call fit first")

    def correct(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The morphed rows of ``X`` (source events) and their weights."""
        self._check_fitted()
        resolve_columns(X, self.features_, self.context_)
        moved = self._morph(X)
        if len(X) == 0:
            return moved, np.zeros(0)
        return moved, np.asarray(self.reweighter_.weights(moved), dtype=np.float64)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The morphed rows only (without the weights that complete the correction)."""
        self._check_fitted()
        return self._morph(X)

    def _morph(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` moved by the morpher, or by the fold morpher of each row's hash."""
        if len(self.morphers_) == 1 or len(X) == 0:
            return self.morphers_[0].transform(X)
        resolve_columns(X, self.features_, self.context_)
        fold = row_folds(X[self.features_ + self.context_], len(self.morphers_))
        Xr = X.reset_index(drop=True)
        parts = []
        for j, m in enumerate(self.morphers_):
            rows = np.nonzero(fold == j)[0]
            if rows.size:
                parts.append(m.transform(Xr.iloc[rows]).set_axis(rows))
        out = pd.concat(parts).sort_index()
        return out.set_axis(X.index)

    def weights(self, X: pd.DataFrame) -> np.ndarray:
        """The weights of the source rows ``X`` after morphing them."""
        return self.correct(X)[1]

    def score(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> float:
        """``1 - 2 |AUC - 0.5|`` of the weighted, morphed source rows against the target."""
        self._check_fitted()
        d = split_domains(X, y, sample_weight, self.features_, self.context_)
        Xr = X.reset_index(drop=True)
        moved, w = self.correct(Xr[d.y == 0])
        cols = self.features_ + self.context_
        auc = domain_auc(
            moved, Xr[d.y == 1], cols, w * d.w[d.y == 0], d.w[d.y == 1], seed=self.random_state
        )
        return auc_score(auc)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json`` and the two stages' folders (``morpher/``, ``reweighter/``)."""
        self._check_fitted()
        params = {
            "features": self.features,
            "context": self.context,
            "reweight_fraction": self.reweight_fraction,
            "cross_fit": self.cross_fit,
            "cross_fit_morph": self.cross_fit_morph,
            "random_state": self.random_state,
        }
        state = {
            "features": self.features_,
            "context": self.context_,
            "morpher": type(self.morpher_).__name__,
            "reweighter": type(self.reweighter_).__name__,
            "ess_fraction": self.ess_fraction_,
            "clipped_fraction": self.clipped_fraction_,
            "auc_oof": self.auc_oof_,
            "n_morphers": len(self.morphers_),
        }
        out = Path(path)
        if out.exists() and not overwrite:
            raise ConfigError(
                f"{str(out)!r} exists; pass overwrite=True to replace it", parameter="path"
            )
        with atomic_path(out, folder=True) as tmp:  # the three parts, all or nothing
            save_folder(tmp, type(self).__name__, params, state, overwrite=True)
            for sub, m in zip(_morpher_dirs(len(self.morphers_)), self.morphers_, strict=True):
                m.save(tmp / sub)
            self.reweighter_.save(tmp / REWEIGHTER_DIR)
        return out

    @classmethod
    def from_saved(cls, params: dict, state: dict, folder: Path) -> MorphReweighter:
        """Rebuild from the parts :func:`ariasim.shift.load` read, and the two stages'
        folders (no pickle)."""
        from ariasim.shift.persist import load

        self = cls(**params)
        self.features_ = [str(f) for f in state["features"]]
        self.context_ = [str(c) for c in state["context"]]
        parts = []
        n_morphers = int(state.get("n_morphers", 1))  # 1 in models saved before cross_fit
        if n_morphers < 1:
            raise InputError(f"n_morphers must be >= 1, got {n_morphers}", path=folder)
        stages = [(sub, "morpher", "transform") for sub in _morpher_dirs(n_morphers)]
        for sub, kind, method in [*stages, (REWEIGHTER_DIR, "reweighter", "weights")]:
            model = load(Path(folder) / sub)
            if type(model).__name__ != state[kind] or not hasattr(model, method):
                raise InputError(
                    f"holds a {type(model).__name__}, expected a {state[kind]}",
                    path=Path(folder) / sub,
                )
            if model.features_ != self.features_ or model.context_ != self.context_:
                raise InputError(
                    "its columns are not the chain's", path=Path(folder) / sub / "model.json"
                )
            parts.append(model)
        self.morphers_, self.reweighter_ = parts[:-1], parts[-1]
        self.morpher_ = self.morphers_[0]
        self.morpher, self.reweighter = clone(self.morpher_), clone(self.reweighter_)
        self.ess_fraction_ = float(state["ess_fraction"])
        self.clipped_fraction_ = float(state["clipped_fraction"])
        self.auc_oof_ = float(state["auc_oof"])
        if hasattr(self.morpher_, "n_epochs_"):
            self.n_epochs_ = int(self.morpher_.n_epochs_)
        return self


def _morpher_dirs(n: int) -> list[str]:
    """The morpher folders of a saved chain: ``morpher/``, or ``morpher_fold<j>/`` for each of
    the fold morphers of a cross-fitted one."""
    return [MORPHER_DIR] if n == 1 else [f"{MORPHER_DIR}_fold{j}" for j in range(n)]


def row_folds(X: pd.DataFrame, k: int, *, salt: int = 0) -> np.ndarray:
    """A fold in ``[0, k)`` for each row, from a hash of its values (the float64 bit patterns
    of its columns, each xor-ed in and passed through the SplitMix64 finaliser, Steele, Lea &
    Flood, OOPSLA 2014): the same row always gets the same fold, whatever rows come with it.
    A nonzero ``salt`` (the hash's starting value) gives an assignment independent of the
    unsalted one (the bags of a quantile morpher inside a cross-fitted chain's fold).

    Example:
        >>> df = pd.DataFrame({"x": [0.5, 1.5, 0.5], "k": [1, 2, 1]})
        >>> f = row_folds(df, 2)
        >>> bool(f[0] == f[2]), bool(((f >= 0) & (f < 2)).all())
        (True, True)
    """
    bits = np.ascontiguousarray(X.to_numpy(dtype=np.float64)).view(np.uint64)
    h = np.full(len(X), salt, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(bits.shape[1]):
            h = (h ^ bits[:, j]) + np.uint64(0x9E3779B97F4A7C15)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return (h % np.uint64(k)).astype(np.int64)
