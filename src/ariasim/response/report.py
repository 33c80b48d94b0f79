"""HTML report of a learned response: formulas, KAN edges, fast-vs-full agreement.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057; Liu et al., arXiv:2404.19756.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.response.model import ResponseModel

__all__ = ["make_report"]


def _resolution_figure(pulls: pd.DataFrame, name: str, stock: pd.DataFrame | None) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = pulls[pulls["object"] == name]
    etas = sorted(g["eta_low"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, e in enumerate(etas):
        h = g[g["eta_low"] == e].dropna(subset=["res_full"])
        x = np.arange(len(h)) + 0.1 * k
        c = f"C{k}"
        axes[0].errorbar(x, h["res_full"], h["res_full_err"], fmt="o", color=c,
                         label=f"full |eta|>{e}")
        axes[0].plot(x, h["res_fast"], "s", mfc="none", color=c)
        if stock is not None:
            s = stock[(stock["object"] == name) & (stock["eta_low"] == e)].dropna(subset=["res_full"])
            axes[0].plot(np.arange(len(s)) + 0.1 * k, s["res_fast"], "x", color=c)
        axes[1].plot(x, h["res_pull"], "o", color=c)
    axes[0].set(xlabel="truth pT / E bin", ylabel="std(reco/truth)", yscale="log",
                title=f"{name}: full (dots), ours (squares), stock (crosses)")
    axes[0].legend(fontsize=7)
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set(xlabel="truth pT / E bin", ylabel="resolution pull (ours - full)")
    fig.tight_layout()
    return fig


def make_report(path: str | os.PathLike[str], model: ResponseModel, *,
                pulls: pd.DataFrame | None = None, stock_pulls: pd.DataFrame | None = None,
                auc: pd.DataFrame | None = None, stock_auc: pd.DataFrame | None = None,
                versus: pd.DataFrame | None = None, method_table: pd.DataFrame | None = None,
                card: str | None = None) -> Path:
    """Write the report (every argument but ``model`` optional)."""
    from ariasim.report import HtmlReport

    rep = HtmlReport("ariasim detector-response parametrisation",
                     f"learned from {model.metadata.get('source', 'a full simulation')}")
    rep.heading("Formulas")
    for name, obj in model.objects.items():
        rep.heading(f"{name} ({obj.kind})", level=3)
        for q in ("efficiency", "scale", "resolution"):
            for r in getattr(obj, q):
                rep.text(f"{q}, |eta| in ({r.eta_low}, {r.eta_high}]; complexity "
                         f"{r.formula.complexity}; method {obj.metadata.get('method')}")
                rep.formula(r.formula.latex(), str(r.formula))
        if "fallback" in obj.metadata:
            rep.text(f"note: {obj.metadata['fallback']}")
        ests = obj.metadata.get("_estimators")
        if ests:
            for est in ests:
                try:
                    rep.figure(est.plot_edges(), f"{name}: learned KAN edge functions")
                except Exception as exc:  # plotting is best effort
                    rep.text(f"(KAN edge plot unavailable: {exc})")
    if auc is not None:
        rep.heading("Classifier two-sample AUC (0.5 = indistinguishable, goal <= 0.55)")
        rep.table(auc, "ours vs full simulation")
        if stock_auc is not None:
            rep.table(stock_auc, "stock-form card vs full simulation")
    if versus is not None:
        rep.heading("Ours vs the stock-form card, bin by bin")
        rep.table(versus, "chi2 = sum of squared pulls vs the full simulation; fraction of "
                  "bins where ours is at least as close")
    if pulls is not None:
        rep.heading("Per-bin efficiency and resolution")
        for name in pulls["object"].unique():
            rep.figure(_resolution_figure(pulls, name, stock_pulls), name)
        rep.table(pulls, "ours vs full, per bin")
    if method_table is not None:
        rep.heading("KAN vs symbolic regression")
        rep.table(method_table)
    if card is not None:
        rep.heading("Delphes card")
        rep.html(f"<pre style='font-size:.75em;white-space:pre-wrap'>"
                 f"{card.replace('&', '&amp;').replace('<', '&lt;')}</pre>")
    return rep.save(path)
