"""The HTML report of ``ariasim discover``.

Sections: the discovered friction law (text and rendered LaTeX), the model cascade
(evidence per number of moments), the term subsets' probabilities, the inclusion
probabilities, the posterior (corner plot, with the true weights where known), the
emulator's learning curve (emulator standard deviation of ln L at the posterior, and the
posterior mean and standard deviation of each weight, against simulator runs) and the
observations against the posterior predictive (the simulator at the discovered law, and the
emulator at posterior draws).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.report import HtmlReport

__all__ = ["write_report"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve_figure(history: list[dict[str, Any]], names: list[str]) -> Any:
    """ll_sd and the posterior mean +- sd of each weight against simulator runs."""
    plt = _plt()
    runs = np.array([h["runs"] for h in history])
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(3.2 * (1 + len(names)), 3.0))
    axes = np.atleast_1d(axes)
    axes[0].semilogy(runs, [max(h["ll_sd"], 1e-12) for h in history], "o-")
    axes[0].set_xlabel("simulator runs")
    axes[0].set_ylabel("emulator sd of ln L at the posterior")
    for k, name in enumerate(names):
        mean = np.array([h["posterior_mean"][k] for h in history])
        sd = np.array([h["posterior_sd"][k] for h in history])
        ax = axes[k + 1]
        ax.plot(runs, mean, "o-")
        ax.fill_between(runs, mean - sd, mean + sd, alpha=0.3)
        ax.set_xlabel("simulator runs")
        ax.set_title(f"{name}: posterior mean ± sd", fontsize=9)
    fig.tight_layout()
    return fig


def corner_figure(
    samples: np.ndarray, names: list[str], ranges: list[tuple[float, float]], truth: Any
) -> Any:
    """A corner plot of the model-averaged posterior (the spike at 0 is a term left out)."""
    import logging

    import corner

    truths = None if truth is None else [float(truth.get(n, 0.0)) for n in names]
    # corner logs "Too few points to create valid contours" for a term that is mostly
    # left out (its samples pile up at 0): expected here, not worth a warning
    logging.disable(logging.WARNING)
    try:
        return _corner(corner, samples, names, ranges, truths)
    finally:
        logging.disable(logging.NOTSET)


def _corner(corner: Any, samples: Any, names: list[str], ranges: Any, truths: Any) -> Any:
    return corner.corner(
        np.asarray(samples),
        labels=names,
        range=ranges,
        truths=truths,
        truth_color="#c62828",
        bins=30,
        quantiles=[0.025, 0.5, 0.975],
        show_titles=False,
    )


def inclusion_figure(inclusion: Mapping[str, float]) -> Any:
    """Bar chart of the posterior inclusion probability of each term."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(inclusion), 3.0))
    names = list(inclusion)
    ax.bar(names, [inclusion[n] for n in names], color="#2b6cb0")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("posterior inclusion probability")
    fig.tight_layout()
    return fig


def predictive_figure(data: Any, law_values: np.ndarray, draws: np.ndarray | None) -> Any:
    """Observations with error bars, the simulator at the discovered law, and the 95 % band
    of the emulator mean at posterior draws."""
    plt = _plt()
    spec = data.spec
    groups = []
    nt, nd = len(spec.times), len(spec.deposit_s)
    if nt:
        groups.append(("front position (m)", "t (s)", np.array(spec.times), slice(0, nt)))
    if nd:
        groups.append(("deposit depth (m)", "s (m)", np.array(spec.deposit_s), slice(nt, nt + nd)))
    if spec.runout:
        groups.append(("run-out (m)", "", np.array([0.0]), slice(nt + nd, nt + nd + 1)))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.0 * len(groups), 3.4))
    axes = np.atleast_1d(axes)
    for ax, (ylabel, xlabel, x, sl) in zip(axes, groups, strict=True):
        if draws is not None and len(draws):
            lo, hi = np.quantile(draws[:, sl], [0.025, 0.975], axis=0)
            ax.fill_between(x, lo, hi, alpha=0.3, label="emulator, posterior 95 %")
        ax.plot(x, law_values[sl], "-", color="#2b6cb0", label="simulator, discovered law")
        ax.errorbar(
            x, data.values[sl], yerr=data.sigma[sl], fmt="o", ms=3, color="k", label="observed"
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_report(
    path: str | os.PathLike[str],
    summary: Mapping[str, Any],
    results: Mapping[int, Any],
    data: Any,
    config: Any,
    *,
    law_values: np.ndarray | None = None,
    draws: np.ndarray | None = None,
) -> Path:
    """Write the report of a finished ``run_discovery`` (``results``: calibration result per
    number of moments; ``law_values``: the simulator's observables at the discovered law;
    ``draws``: emulator means at posterior draws, shape (n, m))."""
    chosen = int(summary["chosen_moments"])
    res = results[chosen]
    names = list(res.names)
    rep = HtmlReport(
        "Bayesian model discovery: shallow-flow friction law",
        subtitle=f"configuration {getattr(config, 'source', None) or ''}".strip(),
    )
    rep.heading("Discovered friction law")
    rep.text(
        f"Most probable terms: {', '.join(summary['discovered_terms']) or 'none'} "
        f"(shallow-flow model with N = {chosen} moments), weights at their posterior medians. "
        "S is the basal resistance (m^2/s^2); h depth (m), u speed (m/s), cos_phi the bed "
        "angle's cosine."
    )
    rep.formula(summary["formula_latex"], text=f"S = {summary['formula']}")
    if "discovered_fit" in summary:
        fit = summary["discovered_fit"]
        rep.text(f"chi^2 of the discovered law: {fit['chi2']:.3g} for {fit['n_obs']} observations.")

    rep.heading("Model cascade")
    rep.table(
        pd.DataFrame(
            [
                {
                    "moments N": c["moments"],
                    "ln evidence": c["log_evidence"],
                    "probability": c["probability"],
                    "simulator runs": c["simulator_runs"],
                    "stop": c["stop_reason"],
                }
                for c in summary["cascade"].values()
            ]
        ),
        caption="equal prior odds for the members of the cascade",
    )

    rep.heading("Term subsets")
    rep.table(
        pd.DataFrame(
            [
                {
                    "terms": " + ".join(m["terms"]) or "(none)",
                    "probability": m["probability"],
                    "ln evidence": m["log_evidence"],
                }
                for m in summary["models"]
            ]
        )
    )
    rep.heading("Inclusion probabilities")
    rep.figure(
        inclusion_figure(summary["inclusion"]), "posterior probability that each term is in the law"
    )

    rep.heading("Posterior")
    rows = []
    truth = summary.get("truth")
    for n in names:
        p = summary["parameters"][n]
        row = {"term": n, "median": p["median"], "2.5 %": p["low"], "97.5 %": p["high"]}
        if truth is not None:
            row["truth"] = truth.get(n, 0.0)
            row["covered"] = "yes" if summary["covers_truth"].get(n) else "no"
        rows.append(row)
    rep.table(pd.DataFrame(rows), caption="model-averaged posterior (0 where a term is left out)")
    ranges = [(t.low, t.high) for t in config.terms]
    ranges = [(0.0, hi) for _, hi in ranges]
    rep.figure(
        corner_figure(res.samples, names, ranges, truth),
        "model-averaged posterior; red lines: the true law"
        if truth
        else "model-averaged posterior",
    )

    rep.heading("Emulator learning curve")
    rep.figure(
        learning_curve_figure(res.history, names),
        "emulator standard deviation of ln L at the posterior, and the posterior of each weight, "
        "against the number of simulator runs",
    )

    if law_values is not None:
        rep.heading("Observations and posterior predictive")
        rep.figure(predictive_figure(data, np.asarray(law_values), draws))
    return rep.save(path)
