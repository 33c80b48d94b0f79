"""``ariasim discover``: calibrate the shallow-flow model against observations and discover
its friction law, over the cascade of moment models.

For each number of velocity-profile moments ``N`` of ``[cascade] moments``, the simulator
(:class:`~ariasim.apps.discovery.forward.ShallowFlowForward`, runs cached in
``OUT/cache/N<N>``) is calibrated with :func:`ariasim.discovery.calibration.calibrate`: a
spike-and-slab prior over the candidate terms' weights, a Gaussian-process emulator of the
observables trained on a Latin-hypercube start and actively chosen batches of runs, MCMC on
the emulator. The cascade member with the largest log evidence is chosen (every member's
evidence is reported, with the model probabilities ``p_N ~ exp(ln Z_N)`` under equal prior
odds), and the discovered law is the posterior median of the most probable term subset,
written as a :class:`~ariasim.surrogates.formula.Formula`.

Outputs in ``OUT``: ``summary.json`` (the same bytes for the same inputs and seed),
``timings.json`` (wall times and cache use, which differ between runs), ``report.html``,
``runs_N<N>.csv`` (every simulator run: weights and observables) and ``samples.csv`` (the
chosen member's model-averaged posterior samples). Run it again into the same ``OUT`` to
resume: the cached runs are not redone.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.discovery.config import DiscoveryConfig, load_config
from ariasim.apps.discovery.forward import ShallowFlowForward
from ariasim.apps.discovery.observations import ObservedData, load_observations
from ariasim.errors import ConfigError
from ariasim.utils import (
    atomic_path,
    check_outputs,
    ensure_dir,
    spawn_seeds,
    to_jsonable,
    write_json,
)

__all__ = [
    "CALIBRATE_KEYS",
    "Progress",
    "discovered_weights",
    "prepare_discovery",
    "run_discovery",
]

#: A progress callback: ``progress(label, done_runs, max_runs, message)``.
Progress = Callable[[str, int, int, str], None]
#: The configuration key of each argument of ``calibrate`` (an error names the TOML key).
CALIBRATE_KEYS = {
    "design": "budget.design",
    "initial": "budget.initial",
    "batch": "budget.batch",
    "max_runs": "budget.max_runs",
    "walkers": "mcmc.walkers",
    "steps": "mcmc.steps",
    "seed": "seed",
}


def _round(x: Any, digits: int = 10) -> Any:
    """Floats rounded to ``digits`` significant digits (a summary readable by people)."""
    if isinstance(x, Mapping):
        return {k: _round(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, digits) for v in x]
    if isinstance(x, float) and math.isfinite(x):
        return float(f"{x:.{digits}g}")
    return x


def discovered_weights(result: Any) -> tuple[list[str], dict[str, float]]:
    """The most probable term subset of a calibration and its weights' posterior medians
    (over the samples in which exactly that subset is in the law; the model-averaged medians
    where no sample has it)."""
    best = max(result.model_probabilities, key=lambda m: m["probability"])
    terms = [t for t in result.names if t in best["terms"]]
    samples = np.asarray(result.samples, dtype=float)
    idx = [result.names.index(t) for t in terms]
    on = samples != 0
    want = np.zeros(len(result.names), dtype=bool)
    want[idx] = True
    rows = np.all(on == want, axis=1)
    pick = samples[rows] if rows.any() else samples
    return terms, {t: float(np.median(pick[:, i])) for t, i in zip(terms, idx, strict=True)}


def prepare_discovery(
    config_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    json_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> tuple[DiscoveryConfig, ObservedData]:
    """Every check that needs no simulator run: the configuration, the outputs, the
    observation files; returns the configuration and the observations. The output folder
    may exist (a run resumes there); an existing ``json_path`` is replaced only with
    ``overwrite``.

    Raises:
        ConfigError, InputError, OutputError: naming the TOML key, the file and column, or
            the output flag.
    """
    config_path = Path(config_path)
    cfg = load_config(config_path)
    inputs = {
        "--config": config_path,
        "observations.front": cfg.front,
        "observations.deposit": cfg.deposit,
    }
    check_outputs({"--out": out_dir}, inputs=inputs, folders=("--out",), overwrite=True)
    if json_path is not None:
        check_outputs(
            {"--json": json_path},
            inputs=inputs,
            suffixes={"--json": (".json",)},
            overwrite=overwrite,
        )
    data = load_observations(
        cfg.front,
        cfg.deposit,
        sigma_front_m=cfg.sigma_front_m,
        sigma_deposit_m=cfg.sigma_deposit_m,
        runout_m=cfg.runout_m,
        sigma_runout_m=cfg.sigma_runout_m,
    )
    return cfg, data


def _calibrate(
    forward: Any, prior: Any, observations: Any, cfg: DiscoveryConfig, seed: int, progress: Any
) -> Any:
    from ariasim.discovery.calibration import calibrate

    try:
        return calibrate(
            forward,
            prior,
            observations,
            design=cfg.design,
            initial=cfg.initial,
            batch=cfg.batch,
            max_runs=cfg.max_runs,
            seed=seed,
            walkers=cfg.walkers,
            steps=cfg.steps,
            progress=progress,
        )
    except ConfigError as err:
        key = CALIBRATE_KEYS.get(err.parameter or "")
        if key is None:
            raise
        raise ConfigError(err.message, parameter=key) from None


def run_discovery(
    config_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    json_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    client: Any = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the calibration of a TOML configuration; returns the summary (see the module
    docstring for the outputs).

    Arguments:
        config_path: The TOML configuration (:mod:`ariasim.apps.discovery.config`).
        out_dir: The output folder (created; reused to resume).
        json_path: Also write the summary here.
        progress: ``progress(label, done_runs, max_runs, message)``, label ``"N=0"`` etc.
        client: A Dask client for the simulator runs (None: this process).
        overwrite: Replace an existing ``json_path``.

    Raises:
        ConfigError, InputError, OutputError: before any simulator run, naming the TOML key,
            the observation file and column, or the output.
    """
    from ariasim.discovery.prior import SpikeSlabPrior, TermPrior

    config_path, out = Path(config_path), Path(out_dir)
    json_out = None if json_path is None else Path(json_path)
    cfg, data = prepare_discovery(config_path, out, json_path=json_out, overwrite=overwrite)
    observations = data.observations()
    prior = SpikeSlabPrior(
        [TermPrior(t.name, high=t.high, low=t.low, inclusion=t.inclusion) for t in cfg.terms]
    )
    ensure_dir(out)
    seeds = spawn_seeds(cfg.seed, 5)  # member N gets seeds[N]: the same with or without others
    results: dict[int, Any] = {}
    timings: dict[str, Any] = {}

    def make_forward(n: int) -> ShallowFlowForward:
        return ShallowFlowForward(
            cfg.simulator,
            data.spec,
            cfg.term_names,
            moments=n,
            cache_dir=out / "cache" / f"N{n}",
            client=client,
        )

    for n in cfg.moments:
        label = f"N={n}"
        forward = make_forward(n)

        def report(done: int, total: int, message: str, label: str = label) -> None:
            if progress is not None:
                progress(label, done, total, message)

        t0 = time.perf_counter()
        res = _calibrate(forward, prior, observations, cfg, seeds[n], report)
        results[n] = res
        timings[f"N{n}"] = {
            "wall_s": round(time.perf_counter() - t0, 3),
            "simulator_runs_made": forward.n_run,
            "simulator_runs_cached": forward.n_cached,
        }
        _write_runs(out / f"runs_N{n}.csv", res, forward.names)

    summary = _summary(cfg, data, results)
    n_chosen = summary["chosen_moments"]
    chosen = results[n_chosen]
    # posterior predictive: the simulator at the discovered law (one more, cached run) and
    # the emulator's mean at 200 evenly spaced posterior draws
    law = [summary["discovered_weights"].get(t, 0.0) for t in cfg.term_names]
    law_values = make_forward(n_chosen)(np.array([law]))[0]
    resid = (law_values - data.values) / data.sigma
    summary["discovered_fit"] = _round(
        {"values": law_values.tolist(), "chi2": float(resid @ resid), "n_obs": int(resid.size)}
    )
    samples = np.asarray(chosen.samples)
    pick = samples[np.linspace(0, len(samples) - 1, min(200, len(samples))).astype(int)]
    draws = np.asarray(chosen.emulator.predict(prior.to_unit(pick)))
    _write_samples(out / "samples.csv", chosen)
    write_json(out / "summary.json", summary)
    if json_out is not None:
        write_json(json_out, summary)
    write_json(out / "timings.json", timings)
    if progress is not None:
        progress("report", 0, 0, "writing the report")
    from ariasim.apps.discovery.report import write_report

    write_report(
        out / "report.html", summary, results, data, cfg, law_values=law_values, draws=draws
    )
    return summary


def _summary(
    cfg: DiscoveryConfig, data: ObservedData, results: Mapping[int, Any]
) -> dict[str, Any]:
    """The summary: the chosen cascade member's posterior, the law, every member's evidence."""
    from ariasim.discovery.terms import friction_formula

    lnz = {n: float(r.log_evidence) for n, r in results.items()}
    top = max(lnz.values())
    norm = sum(math.exp(v - top) for v in lnz.values())
    chosen = max(lnz, key=lambda n: (lnz[n], -n))  # a tie goes to the cheaper model
    res = results[chosen]
    core = res.summary(truth=cfg.truth)
    terms, weights = discovered_weights(res)
    # the formula with 4 significant digits (the posterior's width is far larger)
    shown = {t: float(f"{weights.get(t, 0.0):.4g}") for t in cfg.term_names}
    formula = friction_formula(shown, g=cfg.simulator.g)
    formula = formula.with_constants([float(f"{c:.4g}") for c in formula.constants])
    summary: dict[str, Any] = {
        "inclusion": core["inclusion"],
        "parameters": core["parameters"],
    }
    if cfg.truth is not None:
        summary["covers_truth"] = core["covers_truth"]
        summary["truth"] = dict(cfg.truth)
    summary.update(
        {
            "simulator_runs": int(core["simulator_runs"]),
            "log_evidence": core["log_evidence"],
            "stop_reason": core["stop_reason"],
            "models": core["models"],
            "learning_curve": core["learning_curve"],
            "chosen_moments": int(chosen),
            "cascade": {
                f"N{n}": {
                    "moments": int(n),
                    "log_evidence": lnz[n],
                    "probability": math.exp(lnz[n] - top) / norm,
                    "simulator_runs": len(r.runs_X),
                    "stop_reason": r.stop_reason,
                }
                for n, r in results.items()
            },
            "discovered_terms": terms,
            "discovered_weights": weights,
            "formula": str(formula),
            "formula_latex": formula.latex(),
            "observations": {
                "names": list(data.names),
                "values": data.values.tolist(),
                "sigma": data.sigma.tolist(),
            },
            "config": cfg.echo(),
        }
    )
    return _round(to_jsonable(summary))


def _write_runs(path: Path, res: Any, names: list[str]) -> None:
    X, Y = np.asarray(res.runs_X), np.asarray(res.runs_Y)
    table = pd.DataFrame(X, columns=list(res.names))
    for j, name in enumerate(names):
        table[name] = Y[:, j]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.12g")


def _write_samples(path: Path, res: Any) -> None:
    table = pd.DataFrame(np.asarray(res.samples), columns=list(res.names))
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.10g")
