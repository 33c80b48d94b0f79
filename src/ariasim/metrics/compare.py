"""``compare(a, b)``: every sample-quality metric of two samples in one tidy table.

References:
    Ding, Z., et al. (2025). MCBench: a benchmark suite for Monte Carlo sampling
    algorithms. arXiv:2501.03138. (calibration by IID repeats)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.metrics._core import (
    ArrayLike,
    MetricResult,
    prepare_pair,
    rng_from,
    subsample,
)
from ariasim.metrics.calibration import draw_pairs, summarize_null
from ariasim.metrics.classifier import classifier_test
from ariasim.metrics.histogram import histogram_chi2, separation_power
from ariasim.metrics.multivariate import (
    DEFAULT_MAX_SAMPLES,
    energy_distance,
    mmd,
    sliced_wasserstein,
)
from ariasim.metrics.univariate import ks_test, moment_differences, wasserstein_1d

__all__ = [
    "COLUMNS",
    "METRICS",
    "MULTIVARIATE_METRICS",
    "PER_FEATURE_METRICS",
    "compare",
    "compare_files",
    "efficiency_difference",
]

MOMENT_METRICS = ("mean_diff", "std_mean_diff", "variance_diff", "skewness_diff", "kurtosis_diff")
PER_FEATURE_METRICS = (*MOMENT_METRICS, "wasserstein", "ks", "chi2", "separation_power")
MULTIVARIATE_METRICS = ("sliced_wasserstein", "mmd", "energy", "classifier")
METRICS = PER_FEATURE_METRICS + MULTIVARIATE_METRICS
"""Names accepted by ``compare(metrics=...)`` (``"moments"`` selects the five moment rows)."""

COLUMNS = (
    "metric",
    "feature",
    "value",
    "uncertainty",
    "p_value",
    "z",
    "p_calibrated",
    "null_mean",
    "null_std",
    "ndf",
    "n_a",
    "n_b",
)
"""Columns of the table returned by :func:`compare`."""

_SIGNED = set(MOMENT_METRICS)


def _select(metrics: Sequence[str] | str | None) -> list[str]:
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    out: list[str] = []
    for m in metrics:
        names = MOMENT_METRICS if m == "moments" else (m,)
        for name in names:
            if name not in METRICS:
                raise ConfigError(
                    f"unknown metric {name!r}; known: moments, {', '.join(METRICS)}",
                    parameter="metrics",
                )
            if name not in out:
                out.append(name)
    if not out:
        raise ConfigError("no metric selected", parameter="metrics")
    return out


def _evaluate(
    xa: np.ndarray,
    xb: np.ndarray,
    wa: np.ndarray | None,
    wb: np.ndarray | None,
    names: list[str],
    metrics: list[str],
    seeds: dict[str, int],
    max_samples: int | None,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
) -> dict[tuple[str, str], MetricResult]:
    out: dict[tuple[str, str], MetricResult] = {}
    wanted = [m for m in metrics if m not in skip]
    per_feature = [m for m in wanted if m in PER_FEATURE_METRICS]
    for j, name in enumerate(names):
        if not per_feature:
            break
        # the per-feature metrics are invariant under reordering: sort each column once, so
        # the (stable) sorts inside every metric run in linear time on sorted input
        ia, ib = np.argsort(xa[:, j]), np.argsort(xb[:, j])
        ca, cb = xa[ia, j], xb[ib, j]
        fwa = None if wa is None else wa[ia]
        fwb = None if wb is None else wb[ib]
        if any(m in MOMENT_METRICS for m in wanted):
            md = moment_differences(ca, cb, weights_a=fwa, weights_b=fwb)
            for m in MOMENT_METRICS:
                if m in wanted:
                    out[(m, name)] = md[m]
        if "wasserstein" in wanted:
            out[("wasserstein", name)] = wasserstein_1d(ca, cb, weights_a=fwa, weights_b=fwb)
        if "ks" in wanted:
            out[("ks", name)] = ks_test(ca, cb, weights_a=fwa, weights_b=fwb)
        if "chi2" in wanted:
            out[("chi2", name)] = histogram_chi2(ca, cb, weights_a=fwa, weights_b=fwb)
        if "separation_power" in wanted:
            out[("separation_power", name)] = separation_power(ca, cb, weights_a=fwa, weights_b=fwb)
    if "sliced_wasserstein" in wanted:
        out[("sliced_wasserstein", "all")] = sliced_wasserstein(
            xa, xb, weights_a=wa, weights_b=wb, standardize=True, seed=seeds["sliced_wasserstein"]
        )
    if "mmd" in wanted:
        out[("mmd", "all")] = mmd(
            xa,
            xb,
            weights_a=wa,
            weights_b=wb,
            standardize=True,
            max_samples=max_samples,
            seed=seeds["mmd"],
        )
    if "energy" in wanted:
        out[("energy", "all")] = energy_distance(
            xa,
            xb,
            weights_a=wa,
            weights_b=wb,
            standardize=True,
            max_samples=max_samples,
            seed=seeds["energy"],
        )
    if "classifier" in wanted:
        out[("classifier", "all")] = classifier_test(
            xa, xb, weights_a=wa, weights_b=wb, seed=seeds["classifier"]
        )
    return out


def _reference_matrix(
    reference: ArrayLike, weights: ArrayLike | None, names: list[str], columns: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The calibration reference as a matrix with the compared features."""
    if isinstance(reference, pd.DataFrame):
        cols = [c for c in reference.columns if str(c) in names]
        cols.sort(key=lambda c: names.index(str(c)))
        if len(cols) != len(names):
            missing = sorted(set(names) - {str(c) for c in cols})
            raise ConfigError(f"the reference has no column {missing[0]!r}", parameter="reference")
        use: Sequence[Any] | None = cols
    else:
        use = columns
    ref, _, rw, _, _ = prepare_pair(reference, reference, weights, None, use, min_rows=2)
    if ref.shape[1] != len(names):
        raise ConfigError(
            f"the reference has {ref.shape[1]} features, expected {len(names)}",
            parameter="reference",
        )
    return ref, rw


def _unit_mean(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if w is None else w * (n / w.sum())


def compare(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights_a: ArrayLike | str | None = None,
    weights_b: ArrayLike | str | None = None,
    columns: Sequence[Any] | None = None,
    metrics: Sequence[str] | str | None = None,
    calibrate: bool = False,
    reference: ArrayLike | None = None,
    reference_weights: ArrayLike | None = None,
    n_repeats: int = 100,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    max_rows: int | None = None,
    seed: Any = 0,
) -> pd.DataFrame:
    """Compare two samples with every metric; one row per (metric, feature).

    Per-feature metrics (``mean_diff``, ``std_mean_diff``, ``variance_diff``,
    ``skewness_diff``, ``kurtosis_diff``: differences ``a - b``; ``wasserstein``, ``ks``,
    ``chi2``, ``separation_power``) get one row per feature; multivariate metrics
    (``sliced_wasserstein``, ``mmd``, ``energy``, ``classifier``) one row with feature
    ``"all"``, computed on features standardised by the pooled standard deviation. MMD and
    energy distance use at most ``max_samples`` random rows per sample (they are O(n^2)),
    the classifier test and sliced Wasserstein at most 20,000, so a table of a
    million rows takes seconds to a minute.

    Columns (:data:`COLUMNS`): ``metric``, ``feature``, ``value``, ``uncertainty`` and
    ``p_value`` (NaN where the metric has none), ``z``, ``p_calibrated``, ``null_mean``,
    ``null_std`` (NaN unless calibrated), ``ndf`` (chi2 only), ``n_a``, ``n_b`` (rows the
    metric actually used).

    Calibration (``calibrate=True``) repeats all metrics ``n_repeats`` times on fresh IID
    draws of the same sizes and fills ``z`` and the empirical ``p_calibrated`` (+1
    correction; two-sided for the signed moment differences). Without ``reference`` the
    draws are disjoint random splits of the pooled rows of ``a`` and ``b`` (each sample's
    weights first scaled to mean 1): under the null hypothesis the pooled rows are one IID
    sample, so this is the MCBench recipe with the pooled sample as reference (a
    permutation test). With ``reference`` (a large sample or a sampler
    ``sampler(n, rng)``) the draws come from it. The classifier test is not repeated (each
    fit costs seconds): its ``z`` is ``(AUC - 0.5)`` over the Mann-Whitney null standard
    deviation and ``p_calibrated`` its analytic p-value. Calibration costs about
    ``n_repeats`` times the uncalibrated comparison; ``max_rows`` caps it.

    Arguments:
        a, b: The samples: arrays (n,) or (n, d), or DataFrames matched by column name.
        weights_a, weights_b: Per-row non-negative weights, or the name of a weight column.
        columns: Features to compare; default all numeric columns common to both tables.
        metrics: Metric names (see :data:`METRICS`, or ``"moments"``); default all.
        calibrate: Compute z-scores and empirical p-values from IID repeats.
        reference: Optional reference sample or sampler for the calibration draws.
        reference_weights: Weights of a reference sample.
        n_repeats: Number of calibration repeats.
        max_samples: Row cap per sample of MMD and energy distance (``None``: no cap).
        max_rows: Optional cap on the rows of each sample used by every metric (>= 5).
        seed: Seed or generator (subsampling, projections, folds, calibration draws).

    Returns:
        A :class:`pandas.DataFrame` with the columns above.
    """
    chosen = _select(metrics)
    if max_rows is not None and (isinstance(max_rows, bool) or max_rows < 5):
        raise ConfigError(f"must be at least 5, got {max_rows!r}", parameter="max_rows")
    rng = rng_from(seed)
    xa, xb, wa, wb, names = prepare_pair(a, b, weights_a, weights_b, columns, min_rows=5)
    xa, wa = subsample(xa, wa, max_rows, rng)
    xb, wb = subsample(xb, wb, max_rows, rng)
    seeds = {m: int(rng.integers(0, 2**31 - 1)) for m in MULTIVARIATE_METRICS}
    results = _evaluate(xa, xb, wa, wb, names, chosen, seeds, max_samples)

    null: dict[tuple[str, str], list[float]] = {k: [] for k in results}
    if calibrate:
        if n_repeats < 2:
            raise ConfigError("must be at least 2", parameter="n_repeats")
        weighted = wa is not None or wb is not None
        if reference is None:
            pool = np.vstack([xa, xb])
            pool_w = (
                np.concatenate([_unit_mean(wa, xa.shape[0]), _unit_mean(wb, xb.shape[0])])
                if weighted
                else None
            )
            source: Any = pool
        else:
            source, pool_w = reference, reference_weights
            if not callable(reference):
                source, pool_w = _reference_matrix(reference, reference_weights, names, columns)
        for x, y, wx, wy in draw_pairs(source, (xa.shape[0], xb.shape[0]), n_repeats, rng, pool_w):
            if callable(source):
                x, y, wx, wy, _ = prepare_pair(
                    x, y, wx, wy, names if isinstance(x, pd.DataFrame) else None
                )
            rep = _evaluate(
                np.asarray(x),
                np.asarray(y),
                wx,
                wy,
                names,
                chosen,
                seeds,
                max_samples,
                skip={"classifier"},
            )
            for k, r in rep.items():
                null[k].append(r.value)

    rows = []
    for (metric, feature), r in results.items():
        z = pc = nm = ns = float("nan")
        if calibrate and metric == "classifier":
            sigma0 = r.details["null_sigma"]
            z, pc, nm, ns = (r.value - 0.5) / sigma0, r.p_value, 0.5, sigma0
        elif calibrate:
            alt: Literal["two-sided", "greater"] = "two-sided" if metric in _SIGNED else "greater"
            z, pc, nm, ns = summarize_null(r.value, np.array(null[(metric, feature)]), alt)
        rows.append(
            {
                "metric": metric,
                "feature": feature,
                "value": float(r.value),
                "uncertainty": float(r.uncertainty),
                "p_value": float(r.p_value),
                "z": z,
                "p_calibrated": pc,
                "null_mean": nm,
                "null_std": ns,
                "ndf": float(r.details["ndf"]) if "ndf" in r.details else math.nan,
                "n_a": int(r.n_a),
                "n_b": int(r.n_b),
            }
        )
    order = {m: i for i, m in enumerate(METRICS)}
    feat_order = {f: i for i, f in enumerate(names)}
    rows.sort(
        key=lambda row: (feat_order.get(str(row["feature"]), len(names)), order[str(row["metric"])])
    )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def efficiency_difference(
    found_a: np.ndarray,
    found_b: np.ndarray,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
) -> MetricResult:
    """Difference of two efficiencies (fractions of rows with a finite value), a - b.

    The uncertainty is the binomial one, ``sqrt(ea (1 - ea) / na + eb (1 - eb) / nb)``
    (with weights, ``n`` is Kish's effective size ``(sum w)^2 / sum w^2``); the p-value is
    the two-sided one of the pooled two-proportion z-test.

    Arguments:
        found_a, found_b: Boolean arrays, True where the row has a value.
        weights_a, weights_b: Optional non-negative row weights.

    Example:
        >>> import numpy as np
        >>> r = efficiency_difference(np.r_[np.ones(90), np.zeros(10)] > 0,
        ...                           np.r_[np.ones(80), np.zeros(20)] > 0)
        >>> round(r.value, 3), round(r.uncertainty, 4)
        (0.1, 0.05)
    """
    from scipy import special

    effs, ns = [], []
    for found, w in ((found_a, weights_a), (found_b, weights_b)):
        found = np.asarray(found, dtype=bool)
        w = np.ones(found.size) if w is None else np.asarray(w, dtype=float)
        total = w.sum()
        effs.append(float(w[found].sum() / total) if total > 0 else math.nan)
        ns.append(float(total**2 / np.sum(w**2)) if total > 0 else 0.0)
    (ea, eb), (na, nb) = effs, ns
    diff = ea - eb
    unc = math.sqrt(ea * (1 - ea) / na + eb * (1 - eb) / nb) if na and nb else math.nan
    pooled = (ea * na + eb * nb) / (na + nb) if na + nb else math.nan
    sigma0 = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)) if na and nb else math.nan
    if sigma0 > 0:
        p = float(special.erfc(abs(diff) / sigma0 / math.sqrt(2)))
    else:
        p = 1.0 if diff == 0 else 0.0
    return MetricResult(
        value=diff,
        uncertainty=unc,
        p_value=p,
        n_a=len(found_a),
        n_b=len(found_b),
        details={"efficiency_a": ea, "efficiency_b": eb},
    )


def compare_files(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    weight_column_a: str | None = None,
    weight_column_b: str | None = None,
    metrics: Sequence[str] | None = None,
    calibrate: bool = False,
    n_repeats: int = 100,
    max_samples: int = 5000,
    max_rows: int | None = None,
    seed: Any = 0,
    json_out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """:func:`compare` on two table files (``ariasim compare A B``).

    Reads both tables (Parquet, CSV or ROOT) with validation, picks the features (the
    given ``columns``, else every numeric, non-boolean column the two have in common,
    weight columns excluded), compares them and optionally writes the result as JSON
    (atomically). Errors name the file and the column.

    Missing values: a NaN (or infinite value) in a compared column means "no value"
    (ariasim's collider tables give NaN reconstructed quantities for particles that were
    not found, and an infinite HCAL/ECAL ratio without ECAL energy). Then
    each column's distribution is compared on the rows where it has a value (found
    objects only), the multivariate metrics on the rows where every compared column has
    one, and each column with missing values gets an extra row ``metric="efficiency"``:
    the difference of the fractions of rows with a value, A - B, with its binomial
    uncertainty and two-proportion p-value (:func:`efficiency_difference`; ``n_a``,
    ``n_b`` are all rows). A metric that has fewer than 5 rows with values is left out
    and said in ``table.attrs["notes"]`` (and the JSON's ``notes``).

    Returns:
        The :func:`compare` table (plus efficiency rows) and the feature columns used.
    """
    from ariasim.errors import InputError
    from ariasim.io import read_table
    from ariasim.utils import check_outputs, write_json

    if max_rows is not None and (isinstance(max_rows, bool) or max_rows < 5):
        raise ConfigError(f"must be at least 5, got {max_rows!r}", parameter="max_rows")
    if max_samples is not None and max_samples < 2:
        raise ConfigError(f"must be at least 2, got {max_samples!r}", parameter="max_samples")
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed < 0:
        raise ConfigError(f"must be >= 0, got {seed}", parameter="seed")
    if calibrate and n_repeats < 2:
        raise ConfigError("must be at least 2", parameter="n_repeats")
    chosen = _select(metrics)
    check_outputs(
        {"json_out": json_out},
        inputs={"path_a": path_a, "path_b": path_b},
        suffixes={"json_out": (".json",)},
        overwrite=overwrite,
    )

    cols = list(columns) if columns else None
    tables = []
    for path, w in ((path_a, weight_column_a), (path_b, weight_column_b)):
        need = (list(cols) if cols else []) + ([w] if w else [])
        df = read_table(path, required=need or None, finite=[w] if w else None)
        if len(df) < 5:
            raise InputError(f"{len(df)} rows; at least 5 are needed", path=path)
        if w is not None and (df[w] < 0).any():
            raise InputError(
                "negative weights are not supported by the metrics", path=path, column=w
            )
        tables.append(df)
    da, db = tables
    if cols is None:
        skip = {weight_column_a, weight_column_b} - {None}
        cols = [
            c
            for c in da.columns
            if c in db.columns
            and c not in skip
            and pd.api.types.is_numeric_dtype(da[c])
            and pd.api.types.is_numeric_dtype(db[c])
            and not pd.api.types.is_bool_dtype(da[c])
        ]
        if not cols:
            raise InputError(f"no numeric column in common with '{path_b}'", path=path_a)
    for df, path in ((da, path_a), (db, path_b)):
        for c in cols:
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise InputError(
                    f"expected a number, found dtype '{df[c].dtype}'", path=path, column=c
                )
    fin_a = {c: np.isfinite(da[c].to_numpy(float)) for c in cols}
    fin_b = {c: np.isfinite(db[c].to_numpy(float)) for c in cols}
    partial = [c for c in cols if not (fin_a[c].all() and fin_b[c].all())]
    notes: list[str] = []
    if not partial:
        table = compare(
            da,
            db,
            weights_a=weight_column_a,
            weights_b=weight_column_b,
            columns=cols,
            metrics=chosen,
            calibrate=calibrate,
            n_repeats=n_repeats,
            max_samples=max_samples,
            max_rows=max_rows,
            seed=seed,
        )
    else:
        table = _compare_found(
            da,
            db,
            cols,
            partial,
            fin_a,
            fin_b,
            weight_column_a,
            weight_column_b,
            chosen,
            notes,
            calibrate=calibrate,
            n_repeats=n_repeats,
            max_samples=max_samples,
            max_rows=max_rows,
            seed=seed,
        )
    table.attrs["notes"] = notes
    if json_out is not None:
        records = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
            for rec in table.to_dict(orient="records")
        ]
        doc = {
            "a": str(path_a),
            "b": str(path_b),
            "columns": cols,
            "weight_column_a": weight_column_a,
            "weight_column_b": weight_column_b,
            "calibrate": calibrate,
            "n_repeats": n_repeats if calibrate else None,
            "seed": seed,
            "notes": notes,
            "results": records,
        }
        write_json(json_out, doc, default=float)
    return table, cols


def _compare_found(
    da: pd.DataFrame,
    db: pd.DataFrame,
    cols: list[str],
    partial: list[str],
    fin_a: dict[str, np.ndarray],
    fin_b: dict[str, np.ndarray],
    wcol_a: str | None,
    wcol_b: str | None,
    chosen: list[str],
    notes: list[str],
    **kw: Any,
) -> pd.DataFrame:
    """:func:`compare` on the rows with values, plus the efficiency rows (see
    :func:`compare_files`)."""
    wa = None if wcol_a is None else da[wcol_a].to_numpy(float)
    wb = None if wcol_b is None else db[wcol_b].to_numpy(float)
    per = [m for m in chosen if m in PER_FEATURE_METRICS]
    multi = [m for m in chosen if m in MULTIVARIATE_METRICS]
    parts: list[pd.DataFrame] = []
    eff_rows = []

    def run(
        mask_a: np.ndarray, mask_b: np.ndarray, use: list[str], which: list[str], what: str
    ) -> None:
        if min(mask_a.sum(), mask_b.sum()) < 5:
            notes.append(
                f"{what}: fewer than 5 rows with values in A ({int(mask_a.sum())}) "
                f"or B ({int(mask_b.sum())}); not compared"
            )
            return
        parts.append(
            compare(
                da.loc[mask_a, use].reset_index(drop=True),
                db.loc[mask_b, use].reset_index(drop=True),
                weights_a=None if wa is None else wa[mask_a],
                weights_b=None if wb is None else wb[mask_b],
                columns=use,
                metrics=which,
                **kw,
            )
        )

    for c in cols:
        fa, fb = fin_a[c], fin_b[c]
        if c in partial:
            r = efficiency_difference(fa, fb, wa, wb)
            eff_rows.append(
                {
                    "metric": "efficiency",
                    "feature": c,
                    "value": r.value,
                    "uncertainty": r.uncertainty,
                    "p_value": r.p_value,
                    "n_a": r.n_a,
                    "n_b": r.n_b,
                }
            )
        if per:
            run(fa, fb, [c], per, f"column '{c}'")
    if multi:
        ma = np.logical_and.reduce([fin_a[c] for c in cols])
        mb = np.logical_and.reduce([fin_b[c] for c in cols])
        run(ma, mb, cols, multi, "the multivariate metrics (rows with every column)")
    eff = pd.DataFrame(eff_rows, columns=list(COLUMNS))
    table = (
        pd.concat([p for p in (eff, *parts) if len(p)], ignore_index=True)
        if (len(eff) or parts)
        else pd.DataFrame(columns=list(COLUMNS))
    )
    table = table.astype({"n_a": int, "n_b": int})
    order = {"efficiency": -1} | {m: i for i, m in enumerate(METRICS)}
    feat = {f: i for i, f in enumerate(cols)}
    key = [
        (feat.get(str(f), len(cols)), order[str(m)])
        for f, m in zip(table["feature"], table["metric"], strict=True)
    ]
    table = table.iloc[sorted(range(len(table)), key=key.__getitem__)].reset_index(drop=True)
    return table
