r"""Calibration of a metric against its own noise, in the way of MCBench.

A metric value alone does not say whether two samples differ: every metric has a
finite-sample noise floor that depends on the sample sizes, the dimension and the
distribution. :func:`calibrate` repeats the metric on fresh IID draws of the same sizes
from a reference (a sampler function, or a large reference sample from which disjoint
subsamples are drawn without replacement) to get the metric's null distribution, and
reports

.. math:: z = \frac{\text{value} - \text{mean}_\text{IID}}{\text{std}_\text{IID}}, \qquad
          p = \frac{1 + \#\{\text{null} \ge \text{value}\}}{1 + n_\text{repeats}},

the empirical p-value with the +1 correction (never zero, valid for any number of
repeats). A z of a few or less means "consistent with noise".

References:
    Ding, Z., et al. (2025). MCBench: a benchmark suite for Monte Carlo sampling
    algorithms. arXiv:2501.03138.

    Phipson, B., Smyth, G. K. (2010). Permutation p-values should never be zero.
    Stat. Appl. Genet. Mol. Biol. 9(1), 39.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.metrics._core import ArrayLike, rng_from

__all__ = ["Calibration", "calibrate", "draw_pairs", "summarize_null"]

Alternative = Literal["greater", "less", "two-sided"]


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`.

    Arguments:
        value: The metric value being judged (NaN when none was given).
        z: ``(value - null_mean) / null_std``.
        p_value: Empirical p-value with the +1 correction, for ``alternative``.
        null_mean: Mean of the metric over the IID repeats.
        null_std: Standard deviation (ddof=1) over the IID repeats.
        null: The metric values of the repeats.
        n: Sample sizes ``(n_a, n_b)`` of each repeat.
        alternative: Which tail the p-value measures.

    Example:
        >>> import numpy as np
        >>> from ariasim.metrics import calibrate, wasserstein_1d
        >>> normal = lambda n, rng: rng.normal(size=n)
        >>> c = calibrate(wasserstein_1d, normal, 500, value=0.5, n_repeats=30, seed=1)
        >>> c.z > 5, c.p_value == 1 / 31
        (True, True)
    """

    value: float
    z: float
    p_value: float
    null_mean: float
    null_std: float
    null: np.ndarray
    n: tuple[int, int]
    alternative: str


def summarize_null(
    value: float,
    null: np.ndarray,
    alternative: Alternative = "greater",
) -> tuple[float, float, float, float]:
    """``(z, p_value, null_mean, null_std)`` of ``value`` against the null values ``null``."""
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if null.size < 2 or not np.isfinite(value):
        return float("nan"), float("nan"), float("nan"), float("nan")
    mean, std = float(null.mean()), float(null.std(ddof=1))
    if std > 0:
        z = (value - mean) / std
    else:
        z = 0.0 if value == mean else math.copysign(math.inf, value - mean)
    if alternative == "greater":
        k = int(np.sum(null >= value))
    elif alternative == "less":
        k = int(np.sum(null <= value))
    elif alternative == "two-sided":
        k = int(np.sum(np.abs(null - mean) >= abs(value - mean)))
    else:
        raise ConfigError(f"unknown alternative {alternative!r}", parameter="alternative")
    return float(z), (1.0 + k) / (1.0 + null.size), mean, std


def _sizes(n: int | tuple[int, int]) -> tuple[int, int]:
    na, nb = (n, n) if isinstance(n, (int, np.integer)) else tuple(n)
    if int(na) < 1 or int(nb) < 1:
        raise ConfigError(f"sample sizes must be positive, got {n!r}", parameter="n")
    return int(na), int(nb)


def _take(data: ArrayLike, idx: np.ndarray) -> ArrayLike:
    return data.iloc[idx] if isinstance(data, (pd.DataFrame, pd.Series)) else data[idx]


def draw_pairs(
    reference: Callable[[int, np.random.Generator], Any] | ArrayLike,
    n: int | tuple[int, int],
    n_repeats: int,
    rng: np.random.Generator,
    reference_weights: ArrayLike | None = None,
) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Yield ``n_repeats`` fresh IID pairs ``(x, y, w_x, w_y)`` of sizes ``n = (n_a, n_b)``.

    ``reference`` is either a sampler ``sampler(n, rng)`` returning an array or DataFrame,
    or ``(data, weights)``; or a sample (array or DataFrame, optionally with
    ``reference_weights``) from which the two draws are taken without replacement and
    disjoint, so each pair is IID from the reference's empirical distribution.
    """
    na, nb = _sizes(n)
    if callable(reference):
        for _ in range(n_repeats):
            x, y = reference(na, rng), reference(nb, rng)
            wx = wy = None
            if isinstance(x, tuple):
                x, wx = x
            if isinstance(y, tuple):
                y, wy = y
            yield x, y, wx, wy
        return
    data = reference if isinstance(reference, (pd.DataFrame, pd.Series)) else np.asarray(reference)
    size = len(data)
    if na + nb > size:
        raise ConfigError(
            f"a reference sample of {size} rows cannot give disjoint draws of "
            f"{na} + {nb} rows; use a larger reference or a sampler function",
            parameter="n",
        )
    w = None if reference_weights is None else np.asarray(reference_weights, dtype=np.float64)
    if w is not None and w.shape != (size,):
        raise ConfigError(
            f"expected {size} weights, got shape {w.shape}", parameter="reference_weights"
        )
    for _ in range(n_repeats):
        idx = (
            rng.permutation(size)[: na + nb]
            if size < 4 * (na + nb)
            else rng.choice(size, size=na + nb, replace=False)
        )
        ia, ib = idx[:na], idx[na:]
        yield (
            _take(data, ia),
            _take(data, ib),
            None if w is None else w[ia],
            None if w is None else w[ib],
        )


def _call(metric: Callable[..., Any], x: Any, y: Any, wx: Any, wy: Any) -> float:
    out = (
        metric(x, y, weights_a=wx, weights_b=wy)
        if (wx is not None or wy is not None)
        else metric(x, y)
    )
    return float(getattr(out, "value", out))


def calibrate(
    metric: Callable[..., Any],
    reference: Callable[[int, np.random.Generator], Any] | ArrayLike,
    n: int | tuple[int, int] | None = None,
    *,
    value: float | None = None,
    sample: ArrayLike | None = None,
    sample_weights: ArrayLike | None = None,
    reference_weights: ArrayLike | None = None,
    n_repeats: int = 100,
    alternative: Alternative = "greater",
    seed: Any = None,
) -> Calibration:
    r"""Null distribution of a two-sample metric from fresh IID draws, and the z-score of a value.

    Typical MCBench use: ``sample`` is the output of the sampler under test,
    ``reference`` the truth (a sampler or a large IID sample). The observed value is
    ``metric(sample, y)`` for a fresh reference draw ``y`` of size ``n_b``, and the null
    distribution is ``metric(x', y')`` for ``n_repeats`` fresh reference pairs of sizes
    ``(n_a, n_b)``. Alternatively pass the observed ``value`` directly.

    Cost: ``n_repeats + 1`` metric evaluations. With 100 repeats the smallest attainable
    p-value is 1/101; z is meaningful beyond that. Weighted draws: when the reference has
    weights (or the sampler returns ``(data, weights)``) they are passed to the metric as
    ``weights_a`` / ``weights_b``.

    Arguments:
        metric: ``metric(a, b, weights_a=None, weights_b=None)`` returning a number or a
            :class:`~ariasim.metrics.MetricResult` (every metric of ``ariasim.metrics``).
            Weights are only passed when there are some.
        reference: A sampler ``sampler(n, rng) -> array | DataFrame | (data, weights)``, or a
            large reference sample (array or DataFrame) drawn from without replacement.
        n: Sizes ``n_a`` (or ``(n_a, n_b)``) of each draw; default ``len(sample)``.
        value: The observed metric value to judge.
        sample: Alternatively, the sample under test; then ``value = metric(sample, y)``.
        sample_weights: Weights of ``sample``.
        reference_weights: Weights of a reference sample.
        n_repeats: Number of IID repeats (>= 2).
        alternative: ``"greater"`` for distances (large = different), ``"two-sided"`` for
            signed differences, or ``"less"``.
        seed: Seed or generator.

    Returns:
        A :class:`Calibration` with ``z``, ``p_value`` and the null values.
    """
    if n_repeats < 2:
        raise ConfigError("must be at least 2", parameter="n_repeats")
    if alternative not in ("greater", "less", "two-sided"):
        raise ConfigError(f"unknown alternative {alternative!r}", parameter="alternative")
    if value is not None and sample is not None:
        raise ConfigError("give either value or sample, not both", parameter="value")
    rng = rng_from(seed)
    if n is None:
        if sample is None:
            raise ConfigError("give the draw size n (or a sample)", parameter="n")
        n = len(sample)
    na, nb = _sizes(n)
    if sample is not None:
        if len(sample) != na:
            raise ConfigError(f"sample has {len(sample)} rows but n_a = {na}", parameter="n")
        # the observed value uses its own fresh reference draw of size n_b
        if callable(reference):
            y, wy = _sampled(reference, nb, rng)
        else:
            _, y, _, wy = next(draw_pairs(reference, (1, nb), 1, rng, reference_weights))
        value = _call(metric, sample, y, sample_weights, wy)
    null = np.array(
        [
            _call(metric, x, y, wx, wy)
            for x, y, wx, wy in draw_pairs(reference, (na, nb), n_repeats, rng, reference_weights)
        ]
    )
    v = float("nan") if value is None else float(getattr(value, "value", value))
    z, p, mean, std = summarize_null(v, null, alternative)
    return Calibration(v, z, p, mean, std, null, (na, nb), alternative)


def _sampled(
    sampler: Callable[[int, np.random.Generator], Any],
    n: int,
    rng: np.random.Generator,
) -> tuple[Any, Any]:
    y = sampler(n, rng)
    return y if isinstance(y, tuple) else (y, None)
