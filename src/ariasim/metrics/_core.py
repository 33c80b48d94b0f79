"""Input handling shared by every metric: arrays or tables in, float64 matrices and weights out.

Weights are *probability* (importance) weights: only their ratios matter, so multiplying all
weights of a sample by a constant changes no metric. Integer weights therefore behave like
duplicated rows for every plug-in (V-statistic) metric. Negative weights are rejected with a
:class:`~ariasim.errors.ConfigError` naming the parameter: CDF-based metrics (KS, Wasserstein)
and kernel two-sample statistics are not defined for signed measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError, InputError
from ariasim.utils import as_generator

__all__ = [
    "MetricResult",
    "as_1d",
    "as_weights",
    "effective_sample_size",
    "prepare_pair",
    "standardize_pair",
    "subsample",
]

ArrayLike = Any  # numpy array, pandas DataFrame/Series, or a sequence of numbers


@dataclass(frozen=True)
class MetricResult:
    """The outcome of one metric on two samples.

    ``float(result)`` is ``result.value``, so a result can be used wherever a number is.

    Arguments:
        value: The metric value (or test statistic).
        uncertainty: Its standard error where the metric provides one, else NaN.
        p_value: The p-value of the null hypothesis "same distribution" where the metric
            provides one, else NaN.
        n_a: Number of rows of the first sample actually used.
        n_b: Number of rows of the second sample actually used.
        details: Metric-specific extras (bins, pulls, bandwidth, ...).

    Example:
        >>> import numpy as np
        >>> from ariasim.metrics import wasserstein_1d
        >>> rng = np.random.default_rng(0)
        >>> r = wasserstein_1d(rng.normal(size=2000), rng.normal(0.5, 1.0, size=2000))
        >>> round(float(r), 1), r.n_a
        (0.5, 2000)
    """

    value: float
    uncertainty: float = float("nan")
    p_value: float = float("nan")
    n_a: int = 0
    n_b: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)


def effective_sample_size(weights: np.ndarray | None, n: int | None = None) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (``n`` when unweighted)."""
    if weights is None:
        if n is None:
            raise ConfigError("need weights or n", parameter="weights")
        return float(n)
    w = np.asarray(weights, dtype=np.float64)
    s2 = float(np.dot(w, w))
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def as_weights(weights: ArrayLike | None, n: int, parameter: str) -> np.ndarray | None:
    """Validate per-event weights: 1-D, length ``n``, finite, non-negative, positive sum.

    Returns ``None`` for ``None`` (unweighted), else a float64 array.
    """
    if weights is None:
        return None
    w = np.asarray(weights.to_numpy() if isinstance(weights, pd.Series) else weights)
    if w.dtype.kind not in "biuf":
        raise ConfigError(f"weights must be numeric, got dtype {w.dtype}", parameter=parameter)
    w = (
        w.astype(np.float64, copy=False).reshape(-1)
        if w.ndim == 2 and 1 in w.shape
        else w.astype(np.float64, copy=False)
    )
    if w.ndim != 1:
        raise ConfigError(f"weights must be 1-D, got shape {w.shape}", parameter=parameter)
    if w.shape[0] != n:
        raise ConfigError(
            f"expected {n} weights (one per row), got {w.shape[0]}", parameter=parameter
        )
    if not np.all(np.isfinite(w)):
        raise ConfigError(
            f"{int(np.sum(~np.isfinite(w)))} weights are NaN or infinite", parameter=parameter
        )
    if np.any(w < 0):
        raise ConfigError(
            f"{int(np.sum(w < 0))} weights are negative; negative weights are not "
            "supported by these metrics",
            parameter=parameter,
        )
    if not w.sum() > 0:
        raise ConfigError("the weights sum to zero", parameter=parameter)
    return w


def _check_finite(x: np.ndarray, names: Sequence[str], label: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        raise InputError(
            f"sample {label}: {int(bad[:, col].sum())} NaN or infinite values",
            column=str(names[col]),
        )


def _to_matrix(
    x: ArrayLike, columns: Sequence[Any] | None, label: str
) -> tuple[np.ndarray, list[str]]:
    if isinstance(x, pd.Series):
        x = x.to_frame()
    if isinstance(x, pd.DataFrame):
        cols = list(x.columns) if columns is None else list(columns)
        missing = [c for c in cols if c not in x.columns]
        if missing:
            raise InputError(f"sample {label} has no column {missing[0]!r}", column=str(missing[0]))
        for c in cols:
            if not (pd.api.types.is_numeric_dtype(x[c]) or pd.api.types.is_bool_dtype(x[c])):
                raise InputError(
                    f"sample {label}: column is not numeric (dtype {x[c].dtype})", column=str(c)
                )
        mat = x[cols].to_numpy(dtype=np.float64)
        return mat, [str(c) for c in cols]
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"sample {label} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"sample {label} must have shape (n,) or (n, d), got {arr.shape}")
    if columns is not None:
        idx = list(columns)
        if not all(isinstance(i, (int, np.integer)) for i in idx):
            raise ConfigError(
                "with NumPy arrays, columns must be integer indices", parameter="columns"
            )
        if any(i < -arr.shape[1] or i >= arr.shape[1] for i in idx):
            raise ConfigError(
                f"column index out of range for {arr.shape[1]} columns", parameter="columns"
            )
        return arr[:, idx], [f"x{int(i) % arr.shape[1]}" for i in idx]
    return arr, [f"x{i}" for i in range(arr.shape[1])]


def _resolve_weights(
    x: ArrayLike,
    weights: ArrayLike | str | None,
    parameter: str,
) -> tuple[ArrayLike | None, str | None]:
    """A weight given as a column name is taken from the table (and excluded from features)."""
    if isinstance(weights, str):
        if not isinstance(x, pd.DataFrame):
            raise ConfigError("a weight column name needs a DataFrame sample", parameter=parameter)
        if weights not in x.columns:
            raise InputError(f"weight column not found ({parameter})", column=weights)
        return x[weights].to_numpy(), weights
    return weights, None


def prepare_pair(
    a: ArrayLike,
    b: ArrayLike,
    weights_a: ArrayLike | str | None = None,
    weights_b: ArrayLike | str | None = None,
    columns: Sequence[Any] | None = None,
    *,
    min_rows: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, list[str]]:
    """Turn two samples into float64 matrices with matching features, and validated weights.

    DataFrames are matched by column name; by default all numeric columns common to both
    (in the order of ``a``), minus weight columns. A DataFrame and an array are matched by
    position. NaN or infinite values raise :class:`~ariasim.errors.InputError` naming the column.

    Arguments:
        a, b: The two samples: arrays of shape (n,) or (n, d), DataFrames or Series.
        weights_a, weights_b: Per-row weights, or the name of a weight column.
        columns: Feature columns (names for DataFrames, integer indices for arrays).
        min_rows: Minimum number of rows each sample must have.

    Returns:
        ``(x_a, x_b, w_a, w_b, names)``.
    """
    wa, wcol_a = _resolve_weights(a, weights_a, "weights_a")
    wb, wcol_b = _resolve_weights(b, weights_b, "weights_b")
    a_df, b_df = isinstance(a, pd.DataFrame), isinstance(b, pd.DataFrame)
    if columns is not None and isinstance(columns, str):
        columns = [columns]
    if a_df and b_df and columns is None:
        skip = {wcol_a, wcol_b} - {None}
        columns = [
            c
            for c in a.columns
            if c in b.columns
            and c not in skip
            and pd.api.types.is_numeric_dtype(a[c])
            and pd.api.types.is_numeric_dtype(b[c])
            and not pd.api.types.is_bool_dtype(a[c])
        ]
        if not columns:
            raise InputError("the two tables have no numeric column in common")
    elif (a_df or b_df) and columns is None:
        df = a if a_df else b
        skip = {wcol_a, wcol_b} - {None}
        columns_df = [
            c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])
        ]
        if a_df:
            a = a[columns_df]
        else:
            b = b[columns_df]
    if (a_df and not b_df) or (b_df and not a_df):
        # positional match: convert the table part, then the array part
        xa, na = _to_matrix(a, columns if a_df else None, "a")
        xb, nb = _to_matrix(b, columns if b_df else None, "b")
        names = na if a_df else nb
    else:
        xa, names = _to_matrix(a, columns, "a")
        xb, _ = _to_matrix(b, columns, "b")
    if xa.shape[1] != xb.shape[1]:
        raise InputError(
            f"the samples have different numbers of features: {xa.shape[1]} and {xb.shape[1]}"
        )
    for x, label in ((xa, "a"), (xb, "b")):
        if x.shape[0] < min_rows:
            raise InputError(f"sample {label} has {x.shape[0]} rows; at least {min_rows} needed")
        _check_finite(x, names, label)
    return (
        xa,
        xb,
        as_weights(wa, xa.shape[0], "weights_a"),
        as_weights(wb, xb.shape[0], "weights_b"),
        names,
    )


def as_1d(
    a: ArrayLike,
    b: ArrayLike,
    weights_a: ArrayLike | None,
    weights_b: ArrayLike | None,
    *,
    min_rows: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate two one-feature samples (1-D arrays, or a single column) for a univariate metric."""
    xa, xb, wa, wb, names = prepare_pair(a, b, weights_a, weights_b, min_rows=min_rows)
    if xa.shape[1] != 1:
        raise InputError(
            f"this is a per-feature metric: expected one feature, got {xa.shape[1]} "
            f"({', '.join(names[:5])}...); use ariasim.metrics.compare for tables"
        )
    return xa[:, 0], xb[:, 0], wa, wb


def subsample(
    x: np.ndarray,
    w: np.ndarray | None,
    max_n: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Random subsample of at most ``max_n`` rows without replacement (weights follow their
    rows)."""
    if max_n is None or x.shape[0] <= max_n:
        return x, w
    if max_n < 2:
        raise ConfigError("must be at least 2", parameter="max_samples")
    idx = np.sort(rng.choice(x.shape[0], size=max_n, replace=False))
    return x[idx], None if w is None else w[idx]


def weighted_mean_std(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise weighted mean and (plug-in) standard deviation."""
    if w is None:
        return x.mean(axis=0), x.std(axis=0)
    mu = np.average(x, axis=0, weights=w)
    return mu, np.sqrt(np.average((x - mu) ** 2, axis=0, weights=w))


def standardize_pair(
    xa: np.ndarray,
    xb: np.ndarray,
    wa: np.ndarray | None,
    wb: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale every feature by the standard deviation of the pooled sample (each sample's weights
    normalised to unit sum, so both count equally) and centre it on the pooled mean."""
    na = wa / wa.sum() if wa is not None else np.full(xa.shape[0], 1.0 / xa.shape[0])
    nb = wb / wb.sum() if wb is not None else np.full(xb.shape[0], 1.0 / xb.shape[0])
    mu, sd = weighted_mean_std(np.vstack([xa, xb]), np.concatenate([na, nb]))
    sd = np.where(sd > 0, sd, 1.0)
    return (xa - mu) / sd, (xb - mu) / sd


def rng_from(seed: Any) -> np.random.Generator:
    """Alias of :func:`ariasim.utils.as_generator` used by the metrics."""
    return as_generator(seed)
