"""Run the muon pipeline's stages by hand on one chunk and measure them.

:func:`chain_stages` is the pipeline contract of :mod:`ariasim.active.pipeline` written
out: each stage sees the joined table of the earlier stages' outputs for the events still
alive, and its outputs are joined on ``event_id``. :func:`profile_pipeline` adds the
numbers that size a pipeline: CPU per stage per generated event, the fraction of events
that reach and leave each stage, the final rate, and how well the control-point
features predict passing (ROC AUC of a gradient-boosting classifier on held-out events).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ariasim.active.pipeline import Pipeline
from ariasim.utils import spawn_seeds

__all__ = ["chain_stages", "profile_pipeline"]


def chain_stages(
    pipeline: Pipeline, event_ids: np.ndarray, seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Run every stage in order on ``event_ids`` (stage ``k`` draws from ``spawn_seeds(seed)[k]``).

    Arguments:
        pipeline: The pipeline.
        event_ids: Events to generate.
        seed: Seed of the chunk.

    Returns:
        ``(tables, cpu_s)``: per stage the joined table of the events that left it (all
        columns so far) and the CPU seconds it took.
    """
    seeds = spawn_seeds(seed, len(pipeline.stages))
    table = pd.DataFrame({"event_id": np.asarray(event_ids, dtype=np.int64)})
    tables: dict[str, pd.DataFrame] = {}
    cpu: dict[str, float] = {}
    for stage, s in zip(pipeline.stages, seeds, strict=True):
        c0 = time.process_time()
        out = stage.func(table, np.random.default_rng(s))
        cpu[stage.name] = time.process_time() - c0
        new = [c for c in out.columns if c != "event_id"]
        rest = table[[c for c in table.columns if c not in new]]
        table = rest.merge(out, on="event_id", how="inner", validate="one_to_one")
        tables[stage.name] = table
    return tables, cpu


def profile_pipeline(
    pipeline: Pipeline, n_events: int, seed: int = 1, auc: bool = True
) -> dict[str, Any]:
    """Measure a pipeline on ``n_events`` generated events (one chunk).

    Arguments:
        pipeline: The pipeline (its first control point gives the features).
        n_events: Events to generate.
        seed: Seed.
        auc: Also fit a LightGBM classifier of passing on the control-point features (half
            of the events reaching the control point for training, half for the AUC).

    Returns:
        A JSON-able summary.
    """
    tables, cpu = chain_stages(pipeline, np.arange(n_events), seed)
    names = pipeline.stage_names
    total = sum(cpu.values())
    final = tables[names[-1]]
    w_all = tables[names[0]].set_index("event_id")["gen_weight"]
    out: dict[str, Any] = {
        "n_events": int(n_events),
        "cpu_s_total": total,
        "cpu_ms_per_event": 1e3 * total / n_events,
        "cpu_fraction": {k: v / total for k, v in cpu.items()},
        "cpu_ms_per_event_by_stage": {k: 1e3 * v / n_events for k, v in cpu.items()},
        "n_left": {k: len(t) for k, t in tables.items()},
        "efficiency": len(final) / n_events,
        "rate_hz": float(w_all.loc[final["event_id"]].sum() / n_events),
    }
    if auc and pipeline.control_points:
        cp = pipeline.control_points[0]
        before = names[names.index(cp.before) - 1]
        x = tables[before]
        y = x["event_id"].isin(final["event_id"]).to_numpy()
        out["n_at_control_point"] = len(x)
        out["n_pass"] = int(y.sum())
        if 0 < y.sum() < len(y) and len(y) >= 20:
            from lightgbm import LGBMClassifier
            from sklearn.metrics import roc_auc_score

            feats: np.ndarray = x[list(cp.features)].to_numpy(float)
            half = np.arange(len(y)) % 2 == 0
            clf = LGBMClassifier(n_estimators=200, learning_rate=0.05, verbose=-1)
            clf.fit(feats[half], y[half])
            if 0 < y[~half].sum() < (~half).sum():
                p = np.asarray(clf.predict_proba(feats[~half]))[:, 1]
                out["auc"] = float(roc_auc_score(y[~half], p))
            imp = clf.booster_.feature_importance("gain")
            gain = (imp / imp.sum()).round(3).tolist()
            pairs = sorted(zip(cp.features, gain, strict=True), key=lambda t: -t[1])
            out["feature_gain"] = dict(pairs)
    return out
