"""What ``ariasim shift fit | apply | validate`` run: a user's tables in, a model, a corrected
table and a report out.

Each function validates every input and output before the work starts, writes its outputs
atomically, and never touches its inputs. The report of ``fit`` is measured on a held-out part
of both samples (the learner never saw those events), so the "after" AUC is honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError, InputError
from ariasim.utils import atomic_path, check_outputs, spawn_seeds, to_jsonable, write_json

__all__ = [
    "METHODS",
    "apply_model",
    "fit_files",
    "make_learner",
    "read_sample",
    "split_holdout",
    "split_timings",
    "validate_file",
    "write_summary",
]

METHODS = (
    "flow",
    "flow-matching",
    "quantile",
    "reweight",
    "flow+reweight",
    "flow-matching+reweight",
    "quantile+reweight",
)
Progress = Callable[[str], None]


def _is_timing(key: str) -> bool:
    k = key.lower()
    return "cpu" in k or "seconds" in k or k.endswith("_s") or k == "wall"


def split_timings(data: Any) -> tuple[Any, Any]:
    """Split a JSON-able summary into its reproducible part and its timings.

    Keys naming a CPU or wall time (``*cpu*``, ``*seconds*``, ``*_s``) go to the second
    part, so that ``summary.json`` is byte-identical for the same inputs and seed and the
    timings land in ``timings.json``.

    Example:
        >>> split_timings({"auc": 0.5, "fit_cpu_s": 1.2, "cpu": {"a": 1}, "x": {"t_s": 2}})
        ({'auc': 0.5, 'x': {}}, {'fit_cpu_s': 1.2, 'cpu': {'a': 1}, 'x': {'t_s': 2}})
    """
    if not isinstance(data, dict):
        return data, None
    keep: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    for key, value in data.items():
        if _is_timing(str(key)):
            timings[key] = value
            continue
        clean, t = split_timings(value)
        keep[key] = clean
        if t:
            timings[key] = t
    return keep, timings


def write_summary(folder: Path, summary: Mapping[str, Any]) -> None:
    """``summary.json`` (reproducible) and ``timings.json`` (CPU times) into ``folder``."""
    clean, timings = split_timings(to_jsonable(dict(summary)))
    write_json(folder / "summary.json", clean)
    write_json(folder / "timings.json", timings or {})


def make_learner(
    method: str,
    features: Sequence[str] | None,
    context: Sequence[str] | None,
    *,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """The estimator behind a method name (the one place a string becomes an estimator).

    ``options`` are passed to the estimator's ``__init__``; an option it does not have is a
    :class:`~ariasim.errors.ConfigError` naming it.

    Example:
        >>> make_learner("reweight", ["x"], None).features
        ['x']
    """
    if method in ("flow+reweight", "flow-matching+reweight", "quantile+reweight"):
        return _make_chain(method, features, context, seed=seed, options=options)
    if method == "reweight":
        from ariasim.shift.reweight import ClassifierReweighter as cls
    elif method == "flow":
        from ariasim.shift.flow import FlowMorpher as cls  # type: ignore[assignment]
    elif method == "flow-matching":
        from ariasim.shift.flow_matching import (  # type: ignore[assignment]
            FlowMatchingMorpher as cls,
        )
    elif method == "quantile":
        from ariasim.shift.quantile import (  # type: ignore[assignment]
            ChainedQuantileMorpher as cls,
        )
    else:
        raise ConfigError(
            f"must be one of {', '.join(METHODS)}, got {method!r}", parameter="method"
        )
    opts = dict(options or {})
    known = set(cls().get_params())
    for key in opts:
        if key not in known:
            raise ConfigError(f"does not apply to --method {method}", parameter=key)
    feats = None if features is None else list(features)
    ctx = None if context is None else list(context)
    return cls(features=feats, context=ctx, random_state=int(seed), **opts)


def _make_chain(
    method: str,
    features: Sequence[str] | None,
    context: Sequence[str] | None,
    *,
    seed: int,
    options: Mapping[str, Any] | None,
) -> Any:
    """A :class:`~ariasim.shift.chain.MorphReweighter` for ``flow+reweight`` or
    ``flow-matching+reweight``: an option goes to the chain if it is one of its parameters,
    else to the morpher; ``reweight_<name>`` goes to the reweighter's ``<name>``."""
    from ariasim.shift.chain import MorphReweighter
    from ariasim.shift.reweight import ClassifierReweighter

    morpher = make_learner(method.split("+")[0], features, context, seed=seed)
    chain_keys = {"reweight_fraction", "cross_fit", "cross_fit_morph"}
    m_opts: dict[str, Any] = {}
    r_opts: dict[str, Any] = {}
    c_opts: dict[str, Any] = {}
    r_known = set(ClassifierReweighter().get_params())
    for key, value in dict(options or {}).items():
        if key in chain_keys:
            c_opts[key] = value
        elif key.startswith("reweight_") and key[len("reweight_") :] in r_known:
            r_opts[key[len("reweight_") :]] = value
        elif key in morpher.get_params():
            m_opts[key] = value
        else:
            raise ConfigError(f"does not apply to --method {method}", parameter=key)
    morpher.set_params(**m_opts)
    feats = None if features is None else list(features)
    ctx = None if context is None else list(context)
    return MorphReweighter(
        features=feats,
        context=ctx,
        morpher=morpher,
        reweighter=ClassifierReweighter(features=feats, context=ctx, **r_opts),
        random_state=int(seed),
        **c_opts,
    )


def read_sample(
    path: str | Path,
    columns: Sequence[str],
    weight_column: str | None,
    *,
    label: str,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Read one sample's feature/context columns (and optional weight column), checked."""
    from ariasim.io import read_table

    need = list(dict.fromkeys([*columns, *([weight_column] if weight_column else [])]))
    df = read_table(path, columns=need, required=need, finite=need)
    if len(df) < 10:
        raise InputError(
            f"the {label} sample has {len(df)} rows; at least 10 are needed", path=path
        )
    w = None
    if weight_column:
        w = df[weight_column].to_numpy(np.float64)
        if np.any(w < 0):
            raise InputError("weights must be non-negative", path=path, column=weight_column)
        if w.sum() <= 0:
            raise InputError("weights sum to zero", path=path, column=weight_column)
    return df[list(columns)].reset_index(drop=True), w


def split_holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, holdout) row indices; ``fraction`` of the rows are held out.

    Example:
        >>> tr, ho = split_holdout(10, 0.2, 0)
        >>> len(tr), len(ho), sorted(set(tr) | set(ho)) == list(range(10))
        (8, 2, True)
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"must be in [0, 1), got {fraction}", parameter="holdout")
    perm = np.random.default_rng(seed).permutation(n)
    k = round(fraction * n)
    return np.sort(perm[k:]), np.sort(perm[:k])


def _sub(w: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if w is None else w[idx]


def _infer_columns(
    source: Path, target: Path, features: Sequence[str] | None, context: Sequence[str]
) -> list[str]:
    """Feature names: given, or every numeric column common to both tables minus context."""
    if features is not None:
        return list(features)
    from ariasim.io import read_table

    a = read_table(source)
    b = read_table(target)
    cols = [
        c
        for c in a.columns
        if c in b.columns
        and c not in context
        and pd.api.types.is_numeric_dtype(a[c])
        and not pd.api.types.is_bool_dtype(a[c])
    ]
    if not cols:
        raise InputError("no numeric column in common with the target", path=source)
    return cols


def fit_files(
    source: str | Path,
    target: str | Path,
    out: str | Path,
    *,
    method: str = "flow",
    features: Sequence[str] | None = None,
    context: Sequence[str] | None = None,
    source_weight: str | None = None,
    target_weight: str | None = None,
    holdout: float = 0.2,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Learn the shift from ``source`` to ``target`` and write the model folder ``out``.

    The folder holds the model (``model.json`` + weights, read by :func:`ariasim.shift.load`),
    ``report.html`` and ``summary.json``: AUC and per-feature Wasserstein distances on the
    held-out events, before and after the correction. Returns the summary.
    """
    say = progress or (lambda _s: None)
    src, tgt, out = Path(source), Path(target), Path(out)
    ctx = list(context or [])
    check_outputs(
        {"--out": out},
        inputs={"SOURCE": src, "TARGET": tgt},
        folders=("--out",),
        overwrite=overwrite,
    )
    feats = _infer_columns(src, tgt, features, ctx)
    learner = make_learner(method, feats, ctx, seed=seed, options=options)
    s_df, s_w = read_sample(src, feats + ctx, source_weight, label="source")
    t_df, t_w = read_sample(tgt, feats + ctx, target_weight, label="target")
    split_seed, eval_seed = spawn_seeds(seed, 2)
    s_tr, s_ho = split_holdout(len(s_df), holdout, split_seed)
    t_tr, t_ho = split_holdout(len(t_df), holdout, split_seed)
    from ariasim.shift.base import stack

    X, y, w = stack(s_df.iloc[s_tr], t_df.iloc[t_tr], _sub(s_w, s_tr), _sub(t_w, t_tr))
    say(f"fitting {type(learner).__name__} on {len(s_tr)} source + {len(t_tr)} target events")
    t0 = time.process_time()
    learner.fit(X, y, sample_weight=w)
    fit_cpu = time.process_time() - t0
    summary: dict[str, Any] = {
        "command": "ariasim shift fit",
        "method": method,
        "learner": type(learner).__name__,
        "source": str(src),
        "target": str(tgt),
        "features": feats,
        "context": ctx,
        "n_source": len(s_df),
        "n_target": len(t_df),
        "n_train": [len(s_tr), len(t_tr)],
        "holdout": holdout,
        "seed": seed,
        "fit_cpu_s": fit_cpu,
        "params": to_jsonable(learner.get_params()),
    }
    for attr in ("ess_fraction_", "clipped_fraction_", "auc_oof_", "n_epochs_"):
        if hasattr(learner, attr):
            summary[attr.rstrip("_")] = to_jsonable(getattr(learner, attr))
    report = None
    if len(s_ho) >= 10 and len(t_ho) >= 10:
        say(f"measuring the correction on {len(s_ho)} + {len(t_ho)} held-out events")
        s_h, t_h = s_df.iloc[s_ho].reset_index(drop=True), t_df.iloc[t_ho].reset_index(drop=True)
        corrected, c_w, apply_cpu = _correct(learner, s_h, _sub(s_w, s_ho))
        summary["apply_events_per_cpu_s"] = len(s_h) / max(apply_cpu, 1e-9)
        report = _before_after(
            s_h, _sub(s_w, s_ho), corrected, c_w, t_h, _sub(t_w, t_ho), feats, ctx, eval_seed
        )
        summary["holdout_comparison"] = report.to_dict()
    with atomic_path(out, folder=True) as tmp:
        learner.save(tmp, overwrite=True)
        write_summary(tmp, summary)
        _fit_report(summary, report).save(tmp / "report.html")
    say(f"wrote {out}")
    return summary


def _correct(
    learner: Any, df: pd.DataFrame, w: np.ndarray | None
) -> tuple[pd.DataFrame, np.ndarray | None, float]:
    """The corrected sample: morphed rows, or the same rows with the learned weights."""
    t0 = time.process_time()
    if hasattr(learner, "correct"):  # morph and weight
        out, lw = learner.correct(df)
        cpu = time.process_time() - t0
        return out, lw if w is None else lw * w, cpu
    if hasattr(learner, "transform"):
        out = learner.transform(df)
        cpu = time.process_time() - t0
        return out, w, cpu
    lw = learner.weights(df)
    cpu = time.process_time() - t0
    return df, lw if w is None else lw * w, cpu


def _before_after(
    source: pd.DataFrame,
    source_w: np.ndarray | None,
    corrected: pd.DataFrame,
    corrected_w: np.ndarray | None,
    target: pd.DataFrame,
    target_w: np.ndarray | None,
    features: list[str],
    context: list[str],
    seed: int,
) -> Any:
    from ariasim.shift.diagnostics import compare_samples, statistical_floor

    # the floor of two fresh samples: the held-out target's two halves, scaled to the sizes
    floor = statistical_floor(target, None, features, weight_a=target_w, auc=False, seed=seed)
    return compare_samples(
        source,
        target,
        features,
        context=context,
        source_weight=source_w,
        target_weight=target_w,
        corrected=corrected,
        corrected_weight=corrected_w,
        floor=floor,
        seed=seed,
    )


def _fit_report(summary: Mapping[str, Any], diag: Any) -> Any:
    from ariasim.report import HtmlReport
    from ariasim.shift.diagnostics import report_diagnostics

    rep = HtmlReport(
        f"Domain shift: {summary['learner']}",
        subtitle=f"{summary['source']} -> {summary['target']}",
    )
    rep.text(
        f"Learned on {summary['n_train'][0]} source and {summary['n_train'][1]} target events "
        f"({summary['fit_cpu_s']:.1f} CPU s); features {', '.join(summary['features'])}"
        + (f"; context {', '.join(summary['context'])}" if summary["context"] else "")
        + ". The figures below are measured on held-out events the learner never saw."
    )
    if "ess_fraction" in summary:
        rep.text(
            f"Reweighting keeps a Kish effective sample size of {summary['ess_fraction']:.1%} "
            f"of the source's; {summary.get('clipped_fraction', 0.0):.2%} of the weights "
            "were clipped."
        )
    if diag is None:
        rep.text("No held-out events (--holdout 0): nothing was measured.")
    else:
        report_diagnostics(rep, diag)
    return rep


def apply_model(
    model: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    weight_name: str = "shift_weight",
    keep_original: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Correct the table ``data`` with a saved model; write ``out`` (Parquet/CSV/ROOT).

    A morpher replaces the feature columns by their morphed values (the originals are kept as
    ``<name>_original`` unless ``keep_original`` is off); a reweighter adds the column
    ``weight_name``; a morph-then-reweight model does both. Every other column is copied
    unchanged.
    """
    from ariasim.io import read_table, write_table
    from ariasim.shift.persist import load

    say = progress or (lambda _s: None)
    model, data, out = Path(model), Path(data), Path(out)
    check_outputs(
        {"--out": out},
        inputs={"DATA": data, "MODEL": model},
        suffixes={"--out": (".parquet", ".csv", ".root")},
        overwrite=overwrite,
    )
    learner = load(model)
    df = read_table(data)
    cols = learner.features_ + learner.context_
    for c in cols:
        if c not in df.columns:
            raise InputError("the model needs this column", path=data, column=c)
    bad = ~np.isfinite(df[cols].to_numpy(np.float64))
    if bad.any():
        c = cols[int(np.nonzero(bad.any(axis=0))[0][0])]
        raise InputError(
            f"{int(bad[:, cols.index(c)].sum())} missing or non-finite values", path=data, column=c
        )
    say(f"correcting {len(df)} events with {type(learner).__name__}")
    t0 = time.process_time()
    if hasattr(learner, "transform"):
        if hasattr(learner, "correct"):  # morph and weight
            if weight_name in df.columns:
                raise ConfigError(
                    f"the table already has a column {weight_name!r}", parameter="weight_name"
                )
            moved, lw = learner.correct(df)
        else:
            moved, lw = learner.transform(df), None
        result = moved.copy()
        if lw is not None:
            result[weight_name] = lw
        if keep_original:
            for c in learner.features_:
                name = f"{c}_original"
                if name in df.columns:
                    raise InputError(
                        f"already has a column {name!r}; pass --no-keep-original", path=data
                    )
                result[name] = df[c].to_numpy()
        kind = "morph" if lw is None else "morph+weights"
    else:
        if weight_name in df.columns:
            raise ConfigError(
                f"the table already has a column {weight_name!r}", parameter="weight_name"
            )
        result = df.copy()
        result[weight_name] = learner.weights(df)
        kind = "weights"
    cpu = time.process_time() - t0
    write_table(
        result,
        out,
        producer="ariasim shift apply",
        config={"model": str(model), "data": str(data), "kind": kind},
    )
    info = {
        "model": str(model),
        "data": str(data),
        "out": str(out),
        "kind": kind,
        "n_events": len(df),
        "cpu_s": cpu,
        "events_per_cpu_s": len(df) / max(cpu, 1e-9),
    }
    say(f"wrote {out} ({len(df)} events, {info['events_per_cpu_s']:.3g} events per CPU s)")
    return info


def validate_file(
    data: str | Path,
    out: str | Path,
    *,
    method: str = "flow",
    features: Sequence[str] | None = None,
    context: Sequence[str] | None = None,
    weight: str | None = None,
    n: int | None = None,
    auc_threshold: float | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The injected-shift harness (:func:`ariasim.shift.inject.validate`) on a user's table.

    Known distortions (scale, offset, smearing, a monotone non-linear map, a correlated
    change, a context-dependent offset, and a closure case without distortion) are applied
    to one part of ``data``, learned back from another, and judged on a third the learner
    never saw. Writes ``report.html`` and ``summary.json`` into the folder ``out``.
    """
    from ariasim.io import read_table
    from ariasim.report import HtmlReport
    from ariasim.shift.inject import report_validation, validate

    say = progress or (lambda _s: None)
    data, out = Path(data), Path(out)
    ctx = list(context or [])
    check_outputs({"--out": out}, inputs={"DATA": data}, folders=("--out",), overwrite=overwrite)
    if n is not None and n < 50:
        raise ConfigError(f"must be at least 50 events per side, got {n}", parameter="--n")
    if auc_threshold is not None and not 0.5 < auc_threshold < 1:
        raise ConfigError("must be in (0.5, 1)", parameter="--auc-threshold")
    if features is None:
        table = read_table(data)
        feats = [
            c
            for c in table.columns
            if c not in ctx
            and c != weight
            and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])
        ]
    else:
        feats = list(features)
    make_learner(method, feats, ctx, seed=seed, options=options)  # validates the options
    cols = feats + ctx + ([weight] if weight else [])
    df = read_table(data, columns=cols, required=cols, finite=cols)
    parts = 3
    if n is not None and parts * n > len(df):
        raise ConfigError(
            f"{n} events per side need {parts * n} rows; the table has {len(df)}", parameter="--n"
        )
    if len(df) < parts * 50:
        raise InputError(f"has {len(df)} rows; the harness needs at least {parts * 50}", path=data)

    def factory() -> Any:
        return make_learner(method, feats, ctx, seed=seed, options=options)

    t0 = time.process_time()
    result = validate(
        factory,
        df,
        feats,
        ctx,
        n=n,
        weight=weight,
        auc_max=auc_threshold,
        seed=seed,
        progress=say,
    )
    summary = {
        "command": "ariasim shift validate",
        "data": str(data),
        "method": method,
        "features": feats,
        "context": ctx,
        "seed": seed,
        "cpu_s": time.process_time() - t0,
        "n_cases": len(result.cases),
        "n_passed": sum(1 for c in result.cases if c.passed),
        "passed": bool(result.passed),
        "result": result.to_dict(),
    }
    rep = HtmlReport(f"Injected-shift validation: {method}", subtitle=str(data))
    report_validation(rep, result)
    with atomic_path(out, folder=True) as tmp:
        write_summary(tmp, summary)
        rep.save(tmp / "report.html")
    say(f"wrote {out}")
    return summary
