"""Active-control bias: a biased threshold-mode sample and the unbiased samples to correct it.

Active simulation control (:mod:`ariasim.active`) skips the expensive detector stage for
events a classifier predicts to fail the selection. In ``mode="threshold"`` the events it
simulates keep weight 1, so the final sample lacks the passing events the classifier
missed (near the pT and isolation cuts, at the edge of the acceptance): the sample is
cheap but biased. A reweighter (e.g. ``ariasim.shift.ClassifierReweighter``) trained on
that sample against a *small* unbiased control sample can remove the bias; a *larger*
unbiased sample validates the correction.

:func:`active_bias_samples` runs the collider reference pipeline
(:func:`ariasim.apps.collider.active.make_collider_pipeline`: Drell-Yan-like muon pairs,
full detector simulation, isolated dimuon selection) three times with
:func:`ariasim.active.run_active`, each on its own seed split from ``seed``:

* **source**: ``mode="threshold"`` (biased; weights ``gen_weight * w_active`` = 1);
* **control**: a small unbiased sample, ``control_mode`` ``"brute"`` (every event
  simulated, weights 1) or ``"sqrt"`` (active sampling with importance weights);
* **target**: a larger unbiased sample (``target_mode``, same choices), for validation.

The features are the pipeline's final observables (``m_mumu``, ``mu1_pt``, ``mu2_pt`` in
GeV, ``mu1_eta``, ``mu2_eta``); there is no context. The phase space defaults to pair
masses above 40 GeV and pair rapidity within 2.5 (``m_min_gev=40, y_max=2.5``: about 25 %
of the generated events pass, against 2 % for the pipeline's defaults, so that CI-sized
runs give enough final events); ``overrides`` changes it.

Measured (CI size, seeds 1 and 2): the default threshold 0.97 keeps 55-75 % of the
passing events at 60-70 % of the detector CPU of an unbiased run, and the classifier
two-sample AUC of the biased sample against the unbiased target is 0.555 and 0.571
(~1100-1450 against ~1900-2000 events; 5 and 7 null standard deviations). Threshold 0.95
keeps 80 % of them, AUC 0.534 (3.5 null standard deviations). ``size="full"`` (seed 11):
21,673 biased events (rate 0.181 against 0.246 unbiased) for 27 CPU s, 2,479 control and
19,719 target events (77 CPU s); AUC source vs target 0.574, control vs target 0.497
(null sigma 0.003 and 0.006).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.active import ActiveConfig, run_active
from ariasim.active.controller import ThresholdBiasWarning
from ariasim.apps.collider.active import OBSERVABLES, make_collider_pipeline, settings
from ariasim.apps.shift.collider import ShiftSamples
from ariasim.errors import ConfigError
from ariasim.utils import spawn_seeds, to_jsonable

__all__ = ["ACTIVE_SIZES", "PHASE_SPACE", "ActiveBiasSamples", "active_bias_samples"]

#: Pipeline phase space of :func:`active_bias_samples` (fields of ``DimuonGenerator``).
PHASE_SPACE: dict[str, float] = {"m_min_gev": 40.0, "y_max": 2.5}
#: Per size: the pipeline size, events per chunk, and chunks of the source, control
#: and target runs.
ACTIVE_SIZES: dict[str, dict[str, Any]] = {
    "ci": {"pipeline": "ci", "chunk_size": 500, "source": 16, "control": 4, "target": 16},
    "full": {"pipeline": "default", "chunk_size": 1000, "source": 120, "control": 10,
             "target": 80},
}  # fmt: skip
_UNBIASED = ("brute", "sqrt")


@dataclass
class ActiveBiasSamples(ShiftSamples):
    """:class:`ShiftSamples` of the active-control bias, plus the unbiased control sample.

    Attributes:
        source: The biased threshold-mode final events (the observables only).
        target: The large unbiased final events, for validation.
        control: The small unbiased final events, for training the reweighter.
        source_weight, target_weight, control_weight: The final-event weights
            (``gen_weight * w_active``; all 1 in threshold and brute mode).
        n_generated: Generated events per sample (``source``, ``control``, ``target``);
            ``sum(weight) / n_generated`` is the rate a sample estimates (the threshold
            sample's is biased low).
        cpu_seconds: Total CPU of each run (stages, controller training and decisions).
        provenance: Settings, seeds, each run's rate and standard error, its CPU per
            stage and the Kish effective sample size.

    Example:
        >>> import numpy as np, pandas as pd
        >>> one = pd.DataFrame({"m_mumu": [91.0, 60.0]})
        >>> s = ActiveBiasSamples(one, one, ["m_mumu"], [], {"source": 1.0, "target": 2.0},
        ...                       {}, control=one, control_weight=np.ones(2),
        ...                       n_generated={"source": 8, "control": 8, "target": 8})
        >>> s.rates()["control"]
        0.25
    """

    control: pd.DataFrame = field(default_factory=pd.DataFrame)
    control_weight: np.ndarray | None = None
    n_generated: dict[str, int] = field(default_factory=dict)
    control_coverage: np.ndarray | None = None

    def stratified_weights(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The threshold sample and the control sample combined into one unbiased sample.

        The threshold run simulated an event of its chunk ``k`` iff that chunk's controller
        accepted its control-point features ``x`` (every event in chunks without a
        controller), so its final events are an unbiased sample of the final events *inside*
        the covered region, per generated event. The unbiased control sample covers the
        rest: a control event enters with its weight times ``1 - coverage(x)``, the
        fraction of the threshold run's generated events whose controller would *not*
        have simulated it (:attr:`control_coverage`), scaled by ``n_source / n_control``
        generated events. Both strata are exact, so the combination estimates the unbiased
        final distribution, rate included (``sum(weight) / n_generated["source"]``), with no
        learned weight: stratified sampling (e.g. Cochran, "Sampling Techniques", 3rd ed.,
        ch. 5) whose strata are defined by the recorded decisions.

        Returns:
            ``(rows, weights)``: the source rows then the control rows with weight > 0.

        Example:
            >>> one = pd.DataFrame({"m": [91.0, 60.0]})
            >>> s = ActiveBiasSamples(one, one, ["m"], [], {}, {}, control=one,
            ...                       control_weight=np.ones(2), source_weight=np.ones(2),
            ...                       n_generated={"source": 8, "control": 4, "target": 8},
            ...                       control_coverage=np.array([1.0, 0.25]))
            >>> rows, w = s.stratified_weights()
            >>> rows["m"].tolist(), w.tolist()
            ([91.0, 60.0, 60.0], [1.0, 1.0, 1.5])
        """
        if self.control_coverage is None:
            raise ConfigError(
                "these samples carry no control coverage (the threshold run's decisions)",
                parameter="control_coverage",
            )
        ws = np.ones(len(self.source)) if self.source_weight is None else self.source_weight
        wc = np.ones(len(self.control)) if self.control_weight is None else self.control_weight
        scale = self.n_generated["source"] / self.n_generated["control"]
        wc = wc * (1.0 - self.control_coverage) * scale
        keep = wc > 0
        rows = pd.concat([self.source, self.control[keep]], ignore_index=True)
        return rows, np.concatenate([np.asarray(ws, float), wc[keep]])

    def rates(self) -> dict[str, float]:
        """Final-event rate per generated event, ``sum(weight) / n_generated``, per sample."""
        out = {}
        for name in ("source", "control", "target"):
            w = getattr(self, f"{name}_weight")
            n = self.n_generated.get(name, 0)
            total = float(np.sum(w)) if w is not None else float(len(getattr(self, name)))
            out[name] = total / n if n else float("nan")
        return out


def _run(
    pipeline: Any,
    folder: Path,
    seed: int,
    n_chunks: int,
    config: ActiveConfig,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    with warnings.catch_warnings():
        # the bias is the point of this sample: the warning is recorded, not shown
        warnings.simplefilter("ignore", ThresholdBiasWarning)
        res = run_active(pipeline, folder, seed=seed, n_chunks=n_chunks, config=config)
    final = res.final.sort_values("event_id", kind="stable")
    frame = pd.DataFrame(
        {c: final[c].to_numpy(float) for c in OBSERVABLES},
        index=pd.Index(final["event_id"].to_numpy(np.int64), name="event_id"),
    )
    rate, err = res.rate()
    info = {
        "mode": config.mode,
        "seed": seed,
        "n_chunks": res.n_chunks,
        "n_generated": res.n_generated,
        "n_final": len(frame),
        "rate": rate,
        "rate_error": err,
        "ess": res.ess(),
        "cpu_s": dict(res.cpu_s),
    }
    return frame, final["weight"].to_numpy(float), info


def active_bias_samples(
    *,
    seed: int = 0,
    size: str = "ci",
    threshold: float = 0.97,
    control_mode: str = "brute",
    target_mode: str = "brute",
    out_dir: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> ActiveBiasSamples:
    """The biased threshold-mode sample, a small unbiased control and a large unbiased target.

    Arguments:
        seed: Seed (split into one seed per run; same arguments, same frames).
        size: ``"ci"`` (8000 / 2000 / 8000 generated events for source / control / target,
            a few seconds) or ``"full"`` (120k / 10k / 80k with the default pipeline size:
            about 20k final events in the target); :data:`ACTIVE_SIZES`.
        threshold: Threshold of the source's controller: the detector stage runs only for
            events whose predicted pass probability reaches it (higher: cheaper, more
            biased).
        control_mode, target_mode: ``"brute"`` or ``"sqrt"`` (both unbiased).
        out_dir: Folder for the three run folders (``source``, ``control``, ``target``;
            a rerun resumes them). None: a temporary folder, removed afterwards.
        overrides: Pipeline settings (fields of ``DimuonGenerator`` and
            ``DimuonSelection``) on top of :data:`PHASE_SPACE`.

    Returns:
        An :class:`ActiveBiasSamples` (features: the observables; no context).
    """
    if size not in ACTIVE_SIZES:
        raise ConfigError(
            f"must be one of {', '.join(ACTIVE_SIZES)}, got {size!r}", parameter="size"
        )
    ok = (
        not isinstance(threshold, bool)
        and isinstance(threshold, (int, float, np.number))
        and 0.0 < threshold < 1.0
    )
    if not ok:
        raise ConfigError(f"must be in (0, 1), got {threshold!r}", parameter="threshold")
    for name, mode in (("control_mode", control_mode), ("target_mode", target_mode)):
        if mode not in _UNBIASED:
            raise ConfigError(
                f"must be one of {', '.join(_UNBIASED)} (unbiased), got {mode!r}",
                parameter=name,
            )
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError("expected a dict of pipeline settings", parameter="overrides")
    seeds = spawn_seeds(seed, 3)  # a ConfigError naming seed
    spec = ACTIVE_SIZES[size]
    pipeline = make_collider_pipeline(spec["pipeline"], **{**PHASE_SPACE, **(overrides or {})})
    common = {"chunk_size": spec["chunk_size"], "warmup_chunks": 4, "chunks_per_round": 4}
    configs = {
        "source": ActiveConfig(mode="threshold", threshold=float(threshold), **common),
        "control": ActiveConfig(mode=control_mode, **common),
        "target": ActiveConfig(mode=target_mode, **common),
    }
    runs: dict[str, tuple[pd.DataFrame, np.ndarray, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="ariasim-active-bias-") as tmp:
        base = Path(out_dir) if out_dir is not None else Path(tmp)
        for (name, config), s in zip(configs.items(), seeds, strict=True):
            runs[name] = _run(pipeline, base / name, s, spec[name], config)
        coverage = control_coverage(
            pipeline,
            base / "source",
            base / "control",
            runs["control"][0].index.to_numpy(np.int64),
        )
    provenance = {
        "application": "active-control bias",
        "pipeline": pipeline.name,
        "settings": settings(pipeline),
        "size": size,
        "seed": seed,
        "threshold": float(threshold),
        "runs": {name: info for name, (_, _, info) in runs.items()},
    }
    return ActiveBiasSamples(
        source=runs["source"][0],
        target=runs["target"][0],
        features=list(OBSERVABLES),
        context=[],
        cpu_seconds={name: info["cpu_s"]["total"] for name, (_, _, info) in runs.items()},
        provenance=to_jsonable(provenance),
        source_weight=runs["source"][1],
        target_weight=runs["target"][1],
        control=runs["control"][0],
        control_weight=runs["control"][1],
        n_generated={name: info["n_generated"] for name, (_, _, info) in runs.items()},
        control_coverage=coverage,
    )


def control_coverage(
    pipeline: Any, source_dir: Path, control_dir: Path, control_ids: np.ndarray
) -> np.ndarray:
    """Per control final event (``control_ids``, in that order): the fraction of the
    threshold run's generated events whose chunk's controller would have simulated it.

    Reads the threshold run's log (chunk, model round per generated event) and its saved
    controllers (``controllers/round-NNN/<stage>/``), and the control run's log (the
    control-point features of its events); the decisions are the controllers' own
    (threshold mode: deterministic, ``p >= threshold``). A chunk without a controller (the
    warm-up round) simulated everything.
    """
    from ariasim.active.controller import Controller
    from ariasim.errors import InputError
    from ariasim.parallel import read_parts

    cps = list(pipeline.control_points)
    if len(cps) != 1:
        raise ConfigError(
            f"the pipeline has {len(cps)} control points; the stratified estimator here "
            "handles one",
            parameter="pipeline",
        )
    stage = cps[0].before
    log_s = read_parts(source_dir, "log")
    col = f"model_{stage}"
    if col not in log_s.columns:
        raise InputError("the threshold run's log has no model column", path=source_dir, column=col)
    counts = log_s.groupby(col).size()
    n_total = float(counts.sum())
    log_c = read_parts(control_dir, "log").set_index("event_id")
    missing = np.setdiff1d(control_ids, log_c.index.to_numpy())
    if missing.size:
        raise InputError(f"{missing.size} final events are not in the log", path=control_dir)
    rows = log_c.loc[control_ids]
    covered = np.zeros(len(control_ids))
    for model_round, n_k in counts.items():
        if int(model_round) < 0:  # no controller: every event simulated
            covered += float(n_k)
            continue
        ctrl = Controller.load(source_dir / "controllers" / f"round-{int(model_round):03d}" / stage)
        accept, _a, _p = ctrl.decide_details(rows[list(ctrl.inputs)], None)
        covered += float(n_k) * np.asarray(accept, dtype=float)
    return covered / n_total
