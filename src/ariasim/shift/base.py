"""The two-sample learner contract of the domain-shift toolkit.

A domain-shift learner sees two samples of the same kind of events: the *source* (e.g. the
old ice model, the nominal simulation, the fast simulation) and the *target* (the new ice
model, the data, the full simulation). It is a scikit-learn estimator fitted on the pooled
table, with the domain as the label, so that cross-validation, ``clone`` and searches work:

* ``fit(X, y, sample_weight=None)``: ``X`` a DataFrame holding the feature and context
  columns of both samples, ``y`` the domain (0 = source, 1 = target). The feature and
  context column names are ``__init__`` parameters (``features=None``: every column that
  is not context).
* Morphers move events: ``transform(X)`` returns a copy of ``X`` whose feature columns are
  carried from the source to the target distribution (context columns unchanged);
  ``inverse_transform(X)`` goes back.
* Reweighters weight events: ``weights(X)`` returns per-row weights that make the source
  rows look like the target.
* ``score(X, y)``: corrects the source rows and runs the classifier two-sample test
  (:func:`ariasim.metrics.classifier_test`) against the target rows; it returns
  ``1 - 2 |AUC - 0.5|`` (1 = indistinguishable; greater is better, as scikit-learn expects).
* ``save(path)`` writes a folder (``model.json`` + ``weights.safetensors`` or a library's own
  text format) that :func:`ariasim.shift.load` reads back; nothing is pickled.

:func:`stack` builds ``(X, y, w)`` from two separate tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError, InputError

__all__ = [
    "MorpherMixin",
    "ReweighterMixin",
    "TwoSampleData",
    "auc_score",
    "domain_auc",
    "resolve_columns",
    "split_domains",
    "stack",
]


def stack(
    source: pd.DataFrame,
    target: pd.DataFrame,
    source_weight: Any = None,
    target_weight: Any = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """Pool a source and a target table into ``(X, y, sample_weight)`` for ``fit``.

    Only the columns both tables have are kept (in the source's order). ``sample_weight``
    is ``None`` when neither sample is weighted.

    Example:
        >>> import pandas as pd
        >>> X, y, w = stack(pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": [3.0]}))
        >>> X["a"].tolist(), y.tolist(), w
        ([1.0, 2.0, 3.0], [0, 0, 1], None)
    """
    for name, df in (("source", source), ("target", target)):
        if not isinstance(df, pd.DataFrame):
            raise ConfigError(
                f"must be a pandas DataFrame, got {type(df).__name__}", parameter=name
            )
        if len(df) == 0:
            raise InputError(f"the {name} sample is empty")
    cols = [c for c in source.columns if c in set(target.columns)]
    if not cols:
        raise InputError("the source and target samples have no column in common")
    X = pd.concat([source[cols], target[cols]], ignore_index=True)
    y = np.concatenate([np.zeros(len(source), np.int8), np.ones(len(target), np.int8)])
    if source_weight is None and target_weight is None:
        return X, y, None
    ws = _weights(source_weight, len(source), "source_weight")
    wt = _weights(target_weight, len(target), "target_weight")
    return X, y, np.concatenate([ws, wt])


def _weights(w: Any, n: int, parameter: str) -> np.ndarray:
    if w is None:
        return np.ones(n)
    arr = np.asarray(w, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise ConfigError(f"has {arr.shape[0]} entries for {n} rows", parameter=parameter)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigError("must be finite and non-negative", parameter=parameter)
    return arr


def resolve_columns(
    X: pd.DataFrame, features: Sequence[str] | None, context: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The feature and context column names a learner uses, checked against ``X``.

    Example:
        >>> import pandas as pd
        >>> resolve_columns(pd.DataFrame({"q": [1], "d": [2]}), None, ["d"])
        (['q'], ['d'])
    """
    if not isinstance(X, pd.DataFrame):
        raise ConfigError(
            f"must be a pandas DataFrame with named columns, got {type(X).__name__}",
            parameter="X",
        )
    ctx = [str(c) for c in (context or ())]
    feats = [str(c) for c in X.columns if str(c) not in ctx] if features is None else list(features)
    if not feats:
        raise ConfigError("no feature column to learn", parameter="features")
    for c in ctx + feats:
        if c not in X.columns:
            raise InputError(
                f"not found in the table (columns: {', '.join(map(str, X.columns))})", column=c
            )
        if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]):
            raise InputError(f"must be numeric, got {X[c].dtype}", column=c)
    dup = set(feats) & set(ctx)
    if dup:
        raise ConfigError(f"{sorted(dup)} is both a feature and context", parameter="context")
    if len(set(feats)) != len(feats):
        raise ConfigError("a feature is named twice", parameter="features")
    return feats, ctx


def _matrix(X: pd.DataFrame, cols: list[str]) -> np.ndarray:
    if not cols:
        return np.zeros((len(X), 0))
    m = X[cols].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(m)
    if bad.any():
        col = cols[int(np.nonzero(bad.any(axis=0))[0][0])]
        raise InputError(f"{int(bad.sum())} missing or non-finite values", column=col)
    return m


@dataclass(frozen=True)
class TwoSampleData:
    """The pooled, validated arrays of a ``fit`` call.

    Example:
        >>> import numpy as np, pandas as pd
        >>> d = split_domains(pd.DataFrame({"a": [1.0, 2, 3, 4]}), [0, 0, 1, 1], None, None, [])
        >>> d.x.shape, d.y.tolist(), d.features
        ((4, 1), [0, 0, 1, 1], ['a'])
    """

    x: np.ndarray
    c: np.ndarray
    y: np.ndarray
    w: np.ndarray
    features: list[str]
    context: list[str]


def split_domains(
    X: pd.DataFrame,
    y: Any,
    sample_weight: Any,
    features: Sequence[str] | None,
    context: Sequence[str] | None,
) -> TwoSampleData:
    """Validate a two-sample ``fit`` call: columns, finite values, labels and weights."""
    feats, ctx = resolve_columns(X, features, context)
    if y is None:
        raise ConfigError("the domain label y (0 = source, 1 = target) is required", parameter="y")
    lab = np.asarray(y).reshape(-1)
    if lab.shape[0] != len(X):
        raise ConfigError(f"has {lab.shape[0]} entries for {len(X)} rows", parameter="y")
    if not np.isin(lab, (0, 1)).all():
        raise ConfigError("must hold only 0 (source) and 1 (target)", parameter="y")
    lab = lab.astype(np.int8)
    for k, name in ((0, "source"), (1, "target")):
        if int((lab == k).sum()) < 2:
            raise InputError(f"the {name} sample (y == {k}) needs at least 2 rows")
    w = _weights(sample_weight, len(X), "sample_weight")
    for k, name in ((0, "source"), (1, "target")):
        if w[lab == k].sum() <= 0:
            raise ConfigError(f"the {name} weights sum to zero", parameter="sample_weight")
    return TwoSampleData(_matrix(X, feats), _matrix(X, ctx), lab, w, feats, ctx)


def domain_auc(
    corrected: pd.DataFrame,
    target: pd.DataFrame,
    columns: list[str],
    corrected_weight: Any = None,
    target_weight: Any = None,
    seed: Any = 0,
) -> float:
    """Classifier two-sample AUC of a corrected source against the target, on ``columns``."""
    from ariasim.metrics import classifier_test

    return float(
        classifier_test(
            corrected[columns],
            target[columns],
            weights_a=corrected_weight,
            weights_b=target_weight,
            seed=seed,
        ).value
    )


def auc_score(auc: float) -> float:
    """The two-sample learners' ``score``: 1 - 2 |AUC - 0.5| (1 when the corrected source
    and the target cannot be told apart, 0 when they are fully separated).

    Example:
        >>> auc_score(0.5), auc_score(0.75), auc_score(0.25)
        (1.0, 0.5, 0.5)
    """
    return 1.0 - 2.0 * abs(auc - 0.5)


class MorpherMixin:
    """``transform``/``inverse_transform``/``score`` for learners that move events.

    A subclass implements ``_morph(x, c, to_target) -> x'`` on validated float arrays and
    sets ``features_`` and ``context_`` in ``fit``.

    Example:
        >>> issubclass(MorpherMixin, object)
        True
    """

    features_: list[str]
    context_: list[str]
    random_state: Any

    def _morph(self, x: np.ndarray, c: np.ndarray, to_target: bool) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted; call fit first")

    def _apply(self, X: pd.DataFrame, to_target: bool) -> pd.DataFrame:
        self._check_fitted()
        resolve_columns(X, self.features_, self.context_)
        x = _matrix(X, self.features_)
        c = _matrix(X, self.context_)
        out = X.copy()
        if len(X) == 0:
            return out
        moved = self._morph(x, c, to_target)
        for j, name in enumerate(self.features_):
            col = moved[:, j]
            if pd.api.types.is_integer_dtype(X[name]):
                col = np.rint(col).astype(X[name].dtype)
            out[name] = col
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Carry the feature columns of ``X`` from the source to the target distribution."""
        return self._apply(X, True)

    def inverse_transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Carry the feature columns of ``X`` from the target back to the source."""
        return self._apply(X, False)

    def score(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> float:
        """``1 - 2 |AUC - 0.5|`` of the morphed source rows against the target rows."""
        self._check_fitted()
        d = split_domains(X, y, sample_weight, self.features_, self.context_)
        Xr = X.reset_index(drop=True)
        src = self.transform(Xr[d.y == 0])
        cols = self.features_ + self.context_
        auc = domain_auc(
            src, Xr[d.y == 1], cols, d.w[d.y == 0], d.w[d.y == 1], seed=self.random_state
        )
        return auc_score(auc)


class ReweighterMixin:
    """``score`` for learners that weight events; a subclass implements ``weights(X)``.

    Example:
        >>> issubclass(ReweighterMixin, object)
        True
    """

    features_: list[str]
    context_: list[str]
    random_state: Any

    def weights(self, X: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def score(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> float:
        """``1 - 2 |AUC - 0.5|`` of the reweighted source rows against the target rows."""
        d = split_domains(X, y, sample_weight, self.features_, self.context_)
        Xr = X.reset_index(drop=True)
        src = Xr[d.y == 0]
        w = self.weights(src) * d.w[d.y == 0]
        cols = self.features_ + self.context_
        auc = domain_auc(src, Xr[d.y == 1], cols, w, d.w[d.y == 1], seed=self.random_state)
        return auc_score(auc)
