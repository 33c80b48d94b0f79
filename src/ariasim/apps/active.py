"""What ``ariasim active run`` and ``ariasim active evaluate`` do.

An application: it names the reference pipelines (the atmospheric-muon background of a
neutrino telescope, :mod:`ariasim.apps.muons`, and the collider pipeline,
:mod:`ariasim.apps.collider.active`) or loads a user's ``module:function`` that returns an
:class:`~ariasim.active.Pipeline`, runs it through :func:`ariasim.active.engine.run_active`
and judges the result.

The evaluation (REFERENCE.md section 4) runs two arms with the same CPU budget: brute force
(every event through every stage) and controlled (the relevance model decides before the
expensive stages, weights 1/a keep the estimates unbiased). It reports:

* ``gain``: Kish effective sample size of final-level events per CPU second, controlled
  over brute force, the controller's training and decisions counted in its CPU time;
* the final-level weighted histograms of both arms (as rates: sum of weights over the
  generated events) with per-bin pulls, ``chi2_ndf`` and ``max_abs_pull``;
* ``coverage_68``: how often the controlled arm's 68 % interval of the final-level rate,
  over repeated seeds, contains the reference rate (the error of the reference is added
  in quadrature; with a long ``--reference`` it is negligible);
* optionally (``scan``) bias and gain versus aggressiveness, a_min and training size.

The controlled arm stops once its measured CPU reaches the brute-force arm's, so how many
chunks it simulates (and with them its events, rate, pulls and gain) depends on the
machine's speed and load: the same seed need not give the same evaluation. The coverage
runs have a fixed number of chunks, and ``active run --chunks N`` (no ``--budget``) gives
the same events for the same seed (with nominal ``stage_costs``; see
:mod:`ariasim.active.engine`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.active.engine import ActiveConfig, ActiveResult, run_active
from ariasim.active.evaluate import RateHistogram, compare_arms, coverage
from ariasim.active.pipeline import Pipeline
from ariasim.errors import ConfigError
from ariasim.utils import spawn_seeds, write_json

__all__ = [
    "BUILTIN_PIPELINES",
    "Evaluation",
    "bootstrap_gain",
    "compare_finals",
    "evaluate_active",
    "load_reference",
    "resolve_pipeline",
    "run_pipeline",
    "write_evaluation",
]

#: The reference pipelines by name: ``module:function`` taking ``size``.
BUILTIN_PIPELINES = {
    "muon": "ariasim.apps.muons:make_muon_pipeline",
    "muon-upgoing": "ariasim.apps.muons:make_upgoing_muon_pipeline",
    "muon-bright": "ariasim.apps.muons:make_bright_muon_pipeline",
    "collider": "ariasim.apps.collider.active:make_collider_pipeline",
}

Progress = Callable[[str], None]


def _load_callable(spec: str) -> Callable[..., Any]:
    """The function named by ``module:function`` or ``path/to/file.py:function``."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConfigError(
            f"{spec!r} is not a pipeline: expected muon, muon-upgoing, muon-bright, collider, "
            "module:function or "
            "file.py:function",
            parameter="pipeline",
        )
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"{spec!r}: no such file {target!r}", parameter="pipeline")
        mod_name = f"ariasim_user_pipeline_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"{spec!r}: cannot load {target!r}", parameter="pipeline")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
            # Dask workers cannot import a file by path: ship its functions by value
            import cloudpickle

            cloudpickle.register_pickle_by_value(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise ConfigError(
                f"{spec!r}: importing {target!r} failed: {type(exc).__name__}: {exc}",
                parameter="pipeline",
            ) from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(
                f"{spec!r}: cannot import {target!r} ({exc})", parameter="pipeline"
            ) from exc
    func = getattr(module, name, None)
    if not callable(func):
        raise ConfigError(f"{spec!r}: {target!r} has no function {name!r}", parameter="pipeline")
    return func


def resolve_pipeline(spec: str, size: str = "default") -> Pipeline:
    """The pipeline named ``spec``: ``muon`` (``muon-upgoing``, ``muon-bright``: its two final
    selections), ``collider`` or a user's ``module:function``.

    A user's function is called with ``size=`` when it takes that argument, else with no
    argument; it must return an :class:`~ariasim.active.Pipeline`.

    Example:
        >>> resolve_pipeline("muon", size="ci").stage_names[3]
        'photons_preview'
        >>> resolve_pipeline("muon-bright", size="ci").name
        'muon-bright-ci'
    """
    if size not in ("default", "ci"):
        raise ConfigError(f"expected default or ci, got {size!r}", parameter="size")
    func = _load_callable(BUILTIN_PIPELINES.get(spec, spec))
    try:
        takes_size = "size" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        takes_size = False
    pipeline = func(size=size) if takes_size else func()
    if not isinstance(pipeline, Pipeline):
        raise ConfigError(
            f"{spec!r} returned {type(pipeline).__name__}, not an ariasim.active.Pipeline",
            parameter="pipeline",
        )
    return pipeline


# --------------------------------------------------------------------------- comparison


def compare_finals(
    pipeline: Pipeline,
    reference: ActiveResult,
    test: ActiveResult,
) -> dict[str, Any]:
    """Rate-normalised weighted histograms of every observable, test against reference
    (:func:`ariasim.active.evaluate.compare_arms`), plus what the report draws: per
    observable both histograms (rate and error per bin), and over all observables
    ``chi2_ndf`` (summed chi2 over summed ndf), ``max_abs_pull`` and every pull."""
    observables = [c for c in pipeline.observables if c in reference.final and c in test.final]
    out = compare_arms(
        reference.final,
        max(reference.n_generated, 1),
        test.final,
        max(test.n_generated, 1),
        observables,
        pipeline.edges,
    )
    chi2_sum, ndf_sum, all_pulls = 0.0, 0, []
    for col, h in out["observables"].items():
        for key, res in (("reference", reference), ("test", test)):
            hist = RateHistogram.fill(
                res.final[col].to_numpy(float),
                res.final["weight"].to_numpy(float),
                h["edges"],
                max(res.n_generated, 1),
            )
            h[key] = [hist.rate.tolist(), np.sqrt(hist.variance).tolist()]
        chi2_sum += h["chi2"]
        ndf_sum += h["ndf"]
        all_pulls += [p for p in h["pulls"] if p is not None]
    out["chi2_ndf"] = chi2_sum / ndf_sum if ndf_sum else float("nan")
    out["ndf"] = ndf_sum
    out["max_abs_pull"] = float(np.max(np.abs(all_pulls))) if all_pulls else float("nan")
    out["pulls"] = all_pulls
    return out


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate_active`: both arms, the comparison and the summary.

    Example:
        >>> Evaluation.__name__
        'Evaluation'
    """

    brute: ActiveResult
    controlled: ActiveResult
    comparison: dict[str, Any]
    summary: dict[str, Any]
    coverage_runs: list[tuple[float, float]] = field(default_factory=list)
    scan: list[dict[str, Any]] = field(default_factory=list)


def _chunk_sums(res: ActiveResult, chunk_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chunk of an arm: sum of weights, sum of squared weights, CPU seconds (stages
    and decisions; the controllers' training is shared and added whole)."""
    from ariasim.parallel import read_parts

    idx = np.asarray(res.chunk_indices, dtype=np.int64)
    pos = {int(c): k for k, c in enumerate(idx)}
    sw, sw2 = np.zeros(len(idx)), np.zeros(len(idx))
    if len(res.final):
        k = np.array([pos[int(c)] for c in res.final["event_id"].to_numpy() // chunk_size])
        w = res.final["weight"].to_numpy(float)
        np.add.at(sw, k, w)
        np.add.at(sw2, k, w**2)
    table = read_parts(res.out_dir, "cpu", res.chunk_indices) if res.out_dir else None
    cpu = np.zeros(len(idx))
    if table is not None and len(table):
        cols = [c for c in table.columns if c.startswith("cpu_")]
        per = table[cols].sum(axis=1).to_numpy(float)
        for c, v in zip(table["chunk"].to_numpy(), per, strict=True):
            cpu[pos[int(c)]] = v
    return sw, sw2, cpu


def bootstrap_gain(
    brute: ActiveResult,
    controlled: ActiveResult,
    chunk_size: int,
    *,
    n: int = 400,
    seed: int = 0,
) -> tuple[float, float]:
    """The 16 % and 84 % quantiles of the gain when each arm's chunks are resampled with
    replacement (Efron's bootstrap; the chunks are independent, the weights within a
    chunk are not resampled apart)."""
    rng = np.random.default_rng(seed)
    arms = []
    for res in (brute, controlled):
        sw, sw2, cpu = _chunk_sums(res, chunk_size)
        arms.append((sw, sw2, cpu, res.cpu_s.get("controller_train", 0.0)))
    gains = []
    for _ in range(n):
        per = []
        for sw, sw2, cpu, train in arms:
            k = rng.integers(0, len(sw), len(sw))
            s2 = sw2[k].sum()
            c = cpu[k].sum() + train
            per.append(sw[k].sum() ** 2 / s2 / c if s2 > 0 and c > 0 else np.nan)
        gains.append(per[1] / per[0] if per[0] > 0 else np.nan)
    g = np.asarray(gains)
    g = g[np.isfinite(g)]
    if g.size < n // 2:
        return float("nan"), float("nan")
    lo, hi = np.quantile(g, [0.16, 0.84])
    return float(lo), float(hi)


def _per_cpu(res: ActiveResult) -> float:
    cpu = res.cpu_s["total"]
    return res.ess() / cpu if cpu > 0 else float("nan")


def _arm_summary(res: ActiveResult) -> dict[str, Any]:
    rate, err = res.rate()
    return {
        "n_generated": int(res.n_generated),
        "n_final": len(res.final),
        "n_eff": float(res.ess()),
        "cpu_s": float(res.cpu_s["total"]),
        "cpu_s_by_stage": {k: float(v) for k, v in res.cpu_s.items()},
        "n_eff_per_cpu_s": _per_cpu(res),
        "rate": float(rate),
        "rate_err": float(err),
        "rounds": int(res.rounds),
        "n_chunks": int(res.n_chunks),
    }


def evaluate_active(
    pipeline: Pipeline,
    out_dir: str | os.PathLike[str],
    *,
    reference: ActiveResult | None = None,
    brute_chunks: int = 20,
    config: ActiveConfig | None = None,
    seed: int = 0,
    coverage_seeds: int = 0,
    coverage_chunks: int | None = None,
    scan: Mapping[str, Sequence[float]] | None = None,
    threshold_check: float | None = None,
    client: Any = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Brute force against controlled, with the same CPU budget (see the module docstring).

    Arguments:
        pipeline: The pipeline.
        out_dir: Folder for the arms' run folders (``brute/``, ``controlled/``,
            ``coverage/seed-K/``, ``scan/...``); re-running resumes them.
        reference: A long brute-force run to compare with (its rate is the truth for the
            coverage); default: the brute-force arm run here.
        brute_chunks: Chunks of the brute-force arm (its CPU time is the budget of the
            controlled arm).
        config: The controlled arm's settings (chunk size, aggressiveness, a_min, ...).
        seed: Seed of the arms (the coverage runs use seeds spawned from it).
        coverage_seeds: Repeated controlled runs for the coverage of the 68 % interval.
        coverage_chunks: Chunks per coverage run (default: a quarter of ``brute_chunks``).
        scan: Optional ``{"aggressiveness": [...], "a_min": [...], "max_train": [...]}``:
            one controlled run per value (others at their defaults), each with the budget
            of the brute-force arm.
        threshold_check: Also run the biased threshold mode (Belle II's selective
            simulation: keep when p >= this, weight 1) with the same budget and measure
            its bias against the reference (``summary["threshold_mode"]``).
        client: A Dask client (None: in this process).
        progress: Called with a line of text as the arms go.
    """
    cfg = config or ActiveConfig()
    if cfg.mode == "brute":
        raise ConfigError("the controlled arm needs a controlled mode", parameter="mode")
    if brute_chunks < cfg.warmup_chunks + 1:
        raise ConfigError(
            f"must be more than the warm-up chunks ({cfg.warmup_chunks}), got {brute_chunks}",
            parameter="brute_chunks",
        )
    out = Path(out_dir)
    say = progress or (lambda _line: None)

    def chunk_progress(arm: str) -> Callable[[int, int], None]:
        def show(done: int, total: int) -> None:
            say(f"{arm}: chunk {done}/{total}")

        return show

    # every arm draws its events from its own seed spawned from ``seed``: the arms are
    # independent of each other and of a reference run made with ``seed`` itself
    arm_seeds = spawn_seeds(seed, 4)
    say(f"brute-force arm: {brute_chunks} chunks of {cfg.chunk_size} events")
    brute = run_active(
        pipeline,
        out / "brute",
        seed=arm_seeds[3],
        n_chunks=brute_chunks,
        config=replace(cfg, mode="brute"),
        client=client,
        progress=chunk_progress("brute force"),
    )
    budget = brute.cpu_s["total"]
    say(f"controlled arm: the same CPU budget, {budget:.1f} s")
    controlled = run_active(
        pipeline,
        out / "controlled",
        seed=arm_seeds[0],
        budget_cpu_s=budget,
        config=cfg,
        client=client,
        progress=chunk_progress("controlled"),
    )
    ref = reference if reference is not None else brute
    comparison = compare_finals(pipeline, ref, controlled)

    truth, truth_err = ref.rate()
    cov_runs: list[tuple[float, float]] = []
    if coverage_seeds > 0:
        n_cov = coverage_chunks or max(cfg.warmup_chunks + 1, brute_chunks // 4)
        for k, s in enumerate(spawn_seeds(arm_seeds[1], coverage_seeds)):
            say(f"coverage run {k + 1}/{coverage_seeds} ({n_cov} chunks)")
            r = run_active(
                pipeline,
                out / "coverage" / f"seed-{k:03d}",
                seed=s,
                n_chunks=n_cov,
                config=cfg,
                client=client,
            )
            cov_runs.append(r.rate())
    scans: list[dict[str, Any]] = []
    for key, values in (scan or {}).items():
        if key not in ("aggressiveness", "a_min", "max_train"):
            raise ConfigError(
                f"can scan aggressiveness, a_min or max_train, not {key!r}", parameter="scan"
            )
        for v in values:
            value: Any = int(v) if key == "max_train" else float(v)
            say(f"scan: {key} = {value}")
            r = run_active(
                pipeline,
                out / "scan" / f"{key}-{value}",
                seed=arm_seeds[2],
                budget_cpu_s=budget,
                config=replace(cfg, **{key: value}),
                client=client,
            )
            rate, err = r.rate()
            scans.append(
                {
                    "parameter": key,
                    "value": value,
                    "gain": _per_cpu(r) / _per_cpu(brute),
                    "rate": rate,
                    "rate_err": err,
                    "pull": (rate - truth) / math.hypot(err, truth_err)
                    if math.hypot(err, truth_err) > 0
                    else float("nan"),
                    "n_eff": r.ess(),
                    "cpu_s": r.cpu_s["total"],
                }
            )

    threshold_summary: dict[str, Any] | None = None
    if threshold_check is not None:
        import warnings

        from ariasim.active.controller import ThresholdBiasWarning

        say(f"threshold mode (biased): p >= {threshold_check}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ThresholdBiasWarning)
            thr = run_active(
                pipeline,
                out / "threshold",
                seed=arm_seeds[2],
                budget_cpu_s=budget,
                config=replace(cfg, mode="threshold", threshold=threshold_check),
                client=client,
            )
        rate, err = thr.rate()
        cmp = compare_finals(pipeline, ref, thr)
        threshold_summary = {
            "threshold": threshold_check,
            "rate": rate,
            "rate_err": err,
            "rate_bias": rate / truth - 1.0 if truth else float("nan"),
            "rate_pull": (rate - truth) / math.hypot(err, truth_err)
            if math.hypot(err, truth_err) > 0
            else float("nan"),
            "chi2_ndf": cmp["chi2_ndf"],
            "max_abs_pull": cmp["max_abs_pull"],
            "gain": _per_cpu(thr) / _per_cpu(brute),
        }
    g16, g84 = bootstrap_gain(brute, controlled, cfg.chunk_size, seed=seed)
    summary: dict[str, Any] = {
        "pipeline": pipeline.name,
        "gain": _per_cpu(controlled) / _per_cpu(brute),
        "gain_16": g16,
        "gain_84": g84,
        "chi2_ndf": comparison["chi2_ndf"],
        "ndf": comparison["ndf"],
        "max_abs_pull": comparison["max_abs_pull"],
        "rate_pull": comparison["rate_pull"],
        "cpu_s": {"brute": brute.cpu_s["total"], "controlled": controlled.cpu_s["total"]},
        "n_eff": {"brute": brute.ess(), "controlled": controlled.ess()},
        "arms": {"brute": _arm_summary(brute), "controlled": _arm_summary(controlled)},
        "reference": "given" if reference is not None else "brute-force arm",
        "truth_rate": truth,
        "truth_rate_err": truth_err,
        "config": {k: v for k, v in vars(cfg).items() if not k.startswith("_")},
        "seed": seed,
    }
    if reference is not None:
        summary["arms"]["reference"] = _arm_summary(reference)
    if cov_runs:
        est = np.array([r for r, _ in cov_runs])
        errs = np.array([math.hypot(e, truth_err) for _, e in cov_runs])
        frac, frac_err = coverage(est, errs, truth, level=0.68)
        summary["coverage_68"] = frac
        summary["coverage_68_err"] = frac_err
        summary["coverage_runs"] = len(cov_runs)
    if scans:
        summary["scan"] = scans
    if threshold_summary is not None:
        summary["threshold_mode"] = threshold_summary
    return Evaluation(brute, controlled, comparison, summary, cov_runs, scans)


def write_evaluation(
    ev: Evaluation,
    pipeline: Pipeline,
    *,
    json_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
) -> None:
    """Write ``summary.json`` and the HTML report of an evaluation."""
    from ariasim.utils import to_jsonable

    if json_path is not None:
        write_json(json_path, _finite_json(to_jsonable(ev.summary)))
    if report_path is not None:
        build_report(ev, pipeline).save(report_path)


def build_report(ev: Evaluation, pipeline: Pipeline) -> Any:
    """The HTML report: gain, final-level histograms with pulls, coverage, scans."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ariasim.report import HtmlReport

    s = ev.summary
    rep = HtmlReport(f"Active simulation control: {pipeline.name}")
    rep.text(
        "Brute force (every event through every stage) against the controlled arm (a relevance "
        "model decides before the expensive stages; accepted events carry weight 1/a), with "
        "the same CPU budget. Gain = Kish effective final-level events per CPU second, "
        "controlled over brute force, the controller's own training and decisions counted."
    )
    arms = pd.DataFrame(
        [
            {"arm": name, **{k: v for k, v in a.items() if k != "cpu_s_by_stage"}}
            for name, a in s["arms"].items()
        ]
    )
    rep.table(arms)
    rows = [
        {"figure": "gain (ESS per CPU s)", "value": s["gain"]},
        {
            "figure": "gain, 16-84 % bootstrap interval",
            "value": f"{s['gain_16']:.2f} - {s['gain_84']:.2f}",
        },
        {"figure": "chi2/ndf of final-level histograms", "value": s["chi2_ndf"]},
        {"figure": "ndf", "value": s["ndf"]},
        {"figure": "max |pull|", "value": s["max_abs_pull"]},
    ]
    if "coverage_68" in s:
        rows.append(
            {
                "figure": f"coverage of 68 % intervals ({s['coverage_runs']} seeds)",
                "value": f"{s['coverage_68']:.3f} ± {s['coverage_68_err']:.3f}",
            }
        )
    rep.table(pd.DataFrame(rows))
    if "threshold_mode" in s:
        rep.heading("Threshold mode (biased), for comparison")
        rep.text(
            "Belle II-style selective simulation: keep an event when its predicted pass "
            "probability is above the threshold, with weight 1. Events the model misses are "
            "lost, so the estimate is biased; measured here against the reference."
        )
        rep.table(pd.DataFrame([s["threshold_mode"]]))

    # CPU per stage
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, a in enumerate(s["arms"].values()):
        stages = {k: v for k, v in a["cpu_s_by_stage"].items() if k != "total"}
        left = 0.0
        for j, (k, v) in enumerate(stages.items()):
            ax.barh(i, v, left=left, color=f"C{j}", label=k if i == 0 else None)
            left += v
    ax.set_yticks(range(len(s["arms"])), list(s["arms"]))
    ax.set_xlabel("CPU seconds")
    ax.legend(fontsize=7, loc="lower right")
    rep.figure(fig, "CPU time per stage in each arm (controller training and decisions included).")
    plt.close(fig)

    for col, h in ev.comparison["observables"].items():
        edges = np.asarray(h["edges"])
        fig, (ax, axp) = plt.subplots(
            2, 1, figsize=(6, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        centers = 0.5 * (edges[1:] + edges[:-1])
        for label, (vals, errs), color in (
            ("reference", h["reference"], "k"),
            ("controlled", h["test"], "C1"),
        ):
            ax.stairs(vals, edges, color=color, label=label)
            ax.errorbar(centers, vals, yerr=errs, fmt="none", color=color)
        ax.set_ylabel("rate per bin")
        ax.legend()
        p = np.array([np.nan if x is None else x for x in h["pulls"]], dtype=float)
        axp.bar(centers, np.nan_to_num(p), width=np.diff(edges), color="C0")
        axp.axhline(0, color="k", lw=0.5)
        for y in (-2, 2):
            axp.axhline(y, color="grey", ls=":", lw=0.8)
        axp.set_ylabel("pull")
        axp.set_xlabel(col)
        c2n = h["chi2_ndf"]
        c2n_text = "n/a" if c2n is None else f"{c2n:.2f}"
        rep.figure(fig, f"{col}: chi2/ndf = {c2n_text} ({h['ndf']} bins).")
        plt.close(fig)

    if ev.comparison["pulls"]:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(
            ev.comparison["pulls"], bins=np.linspace(-4, 4, 17).tolist(), density=True, alpha=0.6
        )
        x = np.linspace(-4, 4, 200)
        ax.plot(x, np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi), "k-", label="N(0, 1)")
        ax.set_xlabel("pull")
        ax.legend()
        rep.figure(fig, "All bins' pulls against the standard normal distribution.")
        plt.close(fig)

    if ev.coverage_runs:
        fig, ax = plt.subplots(figsize=(6, 3))
        est = [r for r, _ in ev.coverage_runs]
        err = [e for _, e in ev.coverage_runs]
        ax.errorbar(range(len(est)), est, yerr=err, fmt="o", ms=3)
        ax.axhline(s["truth_rate"], color="k", label="reference rate")
        ax.axhspan(
            s["truth_rate"] - s["truth_rate_err"],
            s["truth_rate"] + s["truth_rate_err"],
            color="grey",
            alpha=0.3,
        )
        ax.set_xlabel("seed")
        ax.set_ylabel("final-level rate")
        ax.legend()
        rep.figure(fig, "The controlled estimate of the final-level rate over repeated seeds.")
        plt.close(fig)

    if ev.scan:
        scan = pd.DataFrame(ev.scan)
        rep.heading("Bias and gain versus the controller's settings")
        rep.table(scan)
        keys = list(dict.fromkeys(scan["parameter"]))
        fig, axes = plt.subplots(2, len(keys), figsize=(4 * len(keys), 5), squeeze=False)
        for j, key in enumerate(keys):
            part = scan[scan["parameter"] == key]
            axes[0, j].plot(part["value"], part["gain"], "o-")
            axes[0, j].set_ylabel("gain")
            axes[1, j].errorbar(part["value"], part["pull"], yerr=1.0, fmt="o")
            axes[1, j].axhline(0, color="k", lw=0.5)
            axes[1, j].set_ylabel("rate pull vs reference")
            axes[1, j].set_xlabel(key)
            if key == "max_train":
                axes[0, j].set_xscale("log")
                axes[1, j].set_xscale("log")
        rep.figure(fig, "Gain and the pull of the rate estimate for each setting.")
        plt.close(fig)
    return rep


def _finite_json(obj: Any) -> Any:
    """NaN and infinities become None (JSON has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    return obj


def load_reference(folder: str | os.PathLike[str]) -> ActiveResult:
    """A finished ``ariasim active run`` (e.g. ``--mode brute``, the long reference run of
    ``benchmarks/bench_active.py``): its ``final.parquet`` and ``summary.json``."""
    from ariasim.errors import InputError
    from ariasim.io import read_table
    from ariasim.utils import read_json

    ref = Path(folder)
    if not ref.is_dir():
        raise ConfigError(f"'{ref}' is not a folder of 'ariasim active run'", parameter="reference")
    for name in ("final.parquet", "summary.json"):
        if not (ref / name).is_file():
            raise ConfigError(
                f"'{ref}' has no {name}: not a finished 'ariasim active run'",
                parameter="reference",
            )
    summary = read_json(ref / "summary.json", what="reference summary")
    try:
        n_gen = int(summary["n_generated"])
        cpu = {str(k): float(v) for k, v in summary["cpu_s_by_stage"].items()}
        rounds, n_chunks = int(summary["rounds"]), int(summary["n_chunks"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"not a summary of 'ariasim active run' ({exc})", path=ref / "summary.json"
        ) from exc
    final = read_table(ref / "final.parquet")
    if "weight" not in final.columns:
        raise InputError("has no column 'weight'", path=ref / "final.parquet")
    return ActiveResult(final, n_gen, cpu, rounds, n_chunks, out_dir=ref)


def run_pipeline(
    pipeline: Pipeline,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_chunks: int | None = None,
    budget_cpu_s: float | None = None,
    config: ActiveConfig | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ActiveResult, dict[str, Any]]:
    """``ariasim active run``: run (or resume) a pipeline, write ``final.parquet`` (the
    passing events with their weights) and ``summary.json`` in ``out_dir``."""
    from ariasim.io import write_table
    from ariasim.utils import to_jsonable

    if n_chunks is None and budget_cpu_s is None:
        raise ConfigError("give a CPU budget or a number of chunks", parameter="budget_cpu_s")
    cfg = config or ActiveConfig()
    out = Path(out_dir)
    res = run_active(
        pipeline,
        out,
        seed=seed,
        n_chunks=n_chunks,
        budget_cpu_s=budget_cpu_s,
        config=cfg,
        client=client,
        progress=progress,
    )
    summary = {
        "pipeline": pipeline.name,
        **_arm_summary(res),
        "seed": seed,
        "config": to_jsonable(vars(cfg)),
    }
    write_table(
        res.final,
        out / "final.parquet",
        producer=f"ariasim active run ({pipeline.name})",
        config=summary["config"],
        seed=seed,
    )
    write_json(out / "summary.json", _finite_json(to_jsonable(summary)))
    return res, summary
