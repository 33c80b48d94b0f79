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

from ariasim.apps.collider.model import ResponseModel

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
        axes[0].errorbar(
            x, h["res_full"], h["res_full_err"], fmt="o", color=c, label=f"full |eta|>{e}"
        )
        axes[0].plot(x, h["res_fast"], "s", mfc="none", color=c)
        if stock is not None:
            s = stock[(stock["object"] == name) & (stock["eta_low"] == e)].dropna(
                subset=["res_full"]
            )
            axes[0].plot(np.arange(len(s)) + 0.1 * k, s["res_fast"], "x", color=c)
        axes[1].plot(x, h["res_pull"], "o", color=c)
    axes[0].set(
        xlabel="truth pT / E bin",
        ylabel="std(reco/truth)",
        yscale="log",
        title=f"{name}: full (dots), ours (squares), stock (crosses)",
    )
    axes[0].legend(fontsize=7)
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set(xlabel="truth pT / E bin", ylabel="resolution pull (ours - full)")
    fig.tight_layout()
    return fig


def _quantile_figure(q: pd.DataFrame, name: str) -> Any:
    """Pulls of the reco/truth quantiles (fast - full) per bin, one marker per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = q[q["object"] == name]
    bins = list(dict.fromkeys(zip(g["x_low"], g["eta_low"], strict=True)))
    pos = {b: k for k, b in enumerate(bins)}
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for k, (lv, h) in enumerate(g.groupby("level")):
        x = [pos[b] + 0.1 * k for b in zip(h["x_low"], h["eta_low"], strict=True)]
        ax.plot(x, h["pull"], "o", ms=3, color=f"C{k}", label=f"{100 * lv:g} %")
    for v in (-3, 0, 3):
        ax.axhline(v, color="k", lw=0.5, ls="-" if v == 0 else ":")
    ax.set(
        xlabel="bin (truth pT or E, then |eta|)",
        ylabel="quantile pull (fast - full)",
        title=f"{name}: reco/truth quantiles per bin",
    )
    ax.legend(fontsize=7, ncol=7)
    fig.tight_layout()
    return fig


_QUANTILE_NOTE = (
    "Held-out full simulation. Per (truth pT or E, |eta|) bin the 1, 5, 16, 50, 84, 95, 99 % "
    "quantiles of reco/truth, fast vs full; errors from the order statistics (binomial 68 % "
    "interval) of each sample; pull = (fast - full) / sqrt(err_full^2 + err_fast^2). A bin "
    "passes when all its |pulls| are below the Bonferroni bound (1 % family-wise over the "
    "object's pulls); bins_pass_3 uses |pull| < 3. The fast simulation's model was fitted on "
    "a sample of the same size, whose noise the pulls do not include."
)
_TAIL_NOTE = (
    "Full simulation: fraction of reco/truth beyond median +- 3 core sigma (core sigma = half "
    "the 16-84 % width), per truth pT/E bin, count-weighted over the bins of the |eta| region; "
    "tail_excess subtracts a Gaussian's 0.27 %: what one Gaussian fitted to the core cannot "
    "carry. low_tail: the part below the median."
)

_VERSUS_NOTE = (
    "Held-out full simulation. chi2 = sum of squared pulls over the bins; p_chi2_ours = "
    "P(chi2 with `bins` d.o.f. > chi2_ours); frac_bins_ours_closer = fraction of bins with "
    "|pull_ours| <= |pull_stock|. Criterion (closer): no bin where ours is both beyond the "
    "Bonferroni bound (1 % family-wise, column bound) and further off than the stock card "
    "(bins_worse = 0), and chi2_ours <= chi2_stock or ours consistent with the full "
    "simulation (p_chi2_ours >= 0.01)."
)
_METHOD_NOTE = (
    "Same held-out full simulation for every learner. chi2/bins and p_chi2: accuracy of the "
    "fast simulation per quantity; auc: the object's classifier two-sample AUC; nodes and "
    "constants: sympy node count and number of float constants of the exported formulas, "
    "summed over the |eta| regions; fit_s: fit time recorded at fit time (efficiency, or "
    "scale and resolution together; KAN includes the symbolic extraction)."
)


def _kan_section(rep: Any, name: str, obj: Any) -> None:
    """KAN edge plots (from the curves stored at fit time, else the live estimators) and
    the list of edges that stayed numeric."""
    from ariasim.surrogates.kan_plot import plot_edge_curves

    fits = [f for f in obj.metadata.get("fits", []) if f.get("curves")]
    for f in fits:
        lo, hi = f["eta"]
        numeric = f.get("numeric_edges") or []
        title = (
            f"{name}: KAN edges, {f['quantity']}, |eta| in ({lo}, {hi}]; "
            f"{f.get('edges', len(f['curves']))} active edges, "
            f"{len(numeric)} numeric"
        )
        rep.figure(plot_edge_curves(f["curves"]), title)
        if numeric:
            rep.text(
                f"edges (layer, input, output) that fit no library function and stayed "
                f"numeric (cubic polynomials): {numeric}"
            )


def _front_figure(obj: Any) -> Any:
    """Accuracy-vs-size fronts of ``--method compact``: chi2/ndf against the sympy node
    count, per quantity (panels) and |eta| region (colours); the chosen member ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, q in zip(axes, ("efficiency", "scale", "resolution"), strict=True):
        fronts = [f for f in obj.metadata.get("fronts", []) if f["quantity"] == q]
        for k, f in enumerate(fronts):
            pts = [(m["size"], m["chi2"] / max(m["ndf"], 1)) for m in f["front"] if m["chi2"]]
            if not pts:
                continue
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, "o", color=f"C{k}", ms=4, label=f"|eta| {f['eta'][0]:g}-{f['eta'][1]:g}")
            c = f["front"][f["chosen"]]
            if c["chi2"]:
                ax.plot(c["size"], c["chi2"] / max(c["ndf"], 1), "o", ms=11, mfc="none", color="k")
        ax.set(xlabel="sympy nodes", ylabel="chi2 / ndf", yscale="log", title=q)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


_FRONT_NOTE = (
    "Library members fitted by weighted least squares to the binned training estimates "
    "(efficiency; median of reco/truth; core width = half the 16-84 % interval). size = "
    "sympy node count of the exported formula; chosen = the smallest member whose chi2 "
    "excess over the best, divided by max(1, chi2_best/ndf_best), is below the 95 % "
    "chi2 quantile with the difference in parameters (ariasim.apps.collider.compact)."
)


def _front_table(front: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["name", "size", "k", "chi2", "ndf", "p_value", "pareto", "chosen", "formula"]
    return pd.DataFrame([{c: m.get(c) for c in cols} for m in front], columns=cols)


def make_report(
    path: str | os.PathLike[str],
    model: ResponseModel,
    *,
    pulls: pd.DataFrame | None = None,
    stock_pulls: pd.DataFrame | None = None,
    auc: pd.DataFrame | None = None,
    stock_auc: pd.DataFrame | None = None,
    versus: pd.DataFrame | None = None,
    method_table: pd.DataFrame | None = None,
    card: str | None = None,
    models: dict[str, ResponseModel] | None = None,
    quantiles: pd.DataFrame | None = None,
    quantile_summary: pd.DataFrame | None = None,
    tails: pd.DataFrame | None = None,
) -> Path:
    """Write the report (every argument but ``model`` optional).

    Arguments:
        path: HTML file to write.
        model: The learned response (formulas, |eta| regions, KAN edges).
        pulls, stock_pulls: :func:`~ariasim.apps.collider.compare.binned_pulls` of ours and of
            the stock card.
        auc, stock_auc: :func:`~ariasim.apps.collider.compare.auc_table` of both.
        versus: :func:`~ariasim.apps.collider.compare.ours_vs_stock`.
        method_table: :func:`~ariasim.apps.collider.compare.method_table`.
        card: Delphes card text.
        models: Other learners' models (their formulas are listed as text).
        quantiles, quantile_summary, tails: :func:`~ariasim.apps.collider.shape.quantile_table`,
            :func:`~.shape.quantile_summary` and :func:`~.shape.tail_fractions`.
    """
    from ariasim.report import HtmlReport

    rep = HtmlReport(
        "ariasim detector-response parametrisation",
        f"learned from {model.metadata.get('source', 'a full simulation')}",
    )
    rep.heading("Formulas")
    for name, obj in model.objects.items():
        md = obj.metadata
        rep.heading(f"{name} ({obj.kind})", level=3)
        rep.text(
            f"method {md.get('method')}; |eta| regions learned from the data: "
            f"efficiency {md.get('regions', {}).get('efficiency')}, response "
            f"{md.get('regions', {}).get('response')}"
            + (f"; fit time {md['_timings']['fit_s']:.1f} s" if "_timings" in md else "")
        )
        fronts = {(f["quantity"], tuple(f["eta"])): f for f in md.get("fronts", [])}
        for q in ("efficiency", "scale", "resolution"):
            for r in getattr(obj, q):
                rep.text(
                    f"{q}, |eta| in ({r.eta_low}, {r.eta_high}]; complexity {r.formula.complexity}"
                )
                rep.formula(r.formula.latex(), str(r.formula))
                f = fronts.get((q, (r.eta_low, r.eta_high)))
                if f is not None:
                    if not f["consistent"]:
                        rep.text(
                            f"flag: no compact form is consistent with the data here (every "
                            f"member has a chi2 p-value < 0.01 over {f['n_bins']} bins); the "
                            "chosen one is the smallest consistent with the best"
                        )
                    rep.table(_front_table(f["front"]), f"accuracy-vs-size front: {_FRONT_NOTE}")
        if fronts:
            rep.figure(_front_figure(obj), f"{name}: accuracy-vs-size fronts (chosen ringed)")
            fit_tails = md.get("tail_fraction", [])
            if fit_tails:
                rep.text(
                    "tail fraction (reco/truth beyond 3 core widths of the median; 0.0027 "
                    "for a Gaussian), which the card's Gaussian does not carry: "
                    + ", ".join(
                        f"|eta| {t['eta'][0]:g}-{t['eta'][1]:g}: {t['tail']:.3f}" for t in fit_tails
                    )
                )
        if "fallback" in md:
            rep.text(f"note: {md['fallback']}")
        _kan_section(rep, name, obj)
    if auc is not None:
        rep.heading("Classifier two-sample AUC (0.5 = indistinguishable, goal <= 0.55)")
        rep.table(auc, "ours vs full simulation")
        if stock_auc is not None:
            rep.table(stock_auc, "stock-form card vs full simulation")
    if quantile_summary is not None and quantiles is not None and not quantiles.empty:
        shaped = [n for n, o in model.objects.items() if o.shape is not None]
        rep.heading("Response shape: reco/truth quantiles per bin")
        rep.text(
            "non-Gaussian response shape (quantile grid) used for: "
            + (", ".join(shaped) if shaped else "none (Gaussian / log-normal smearing)")
        )
        rep.table(quantile_summary, _QUANTILE_NOTE)
        for name in quantiles["object"].unique():
            rep.figure(_quantile_figure(quantiles, name), f"{name}-quantiles")
    if tails is not None and not tails.empty:
        rep.heading("Tails a single Gaussian cannot carry")
        rep.table(tails, _TAIL_NOTE)
    if versus is not None:
        rep.heading("Ours vs the stock-form card, bin by bin")
        rep.table(versus, _VERSUS_NOTE)
    if method_table is not None:
        rep.heading("Learners compared: KAN, symbolic regression, polynomial, stock")
        rep.table(method_table, _METHOD_NOTE)
    if pulls is not None:
        rep.heading("Per-bin efficiency and resolution")
        for name in pulls["object"].unique():
            rep.figure(_resolution_figure(pulls, name, stock_pulls), name)
        rep.table(pulls, "ours vs full, per bin")
    for label, m in (models or {}).items():
        rep.heading(f"Formulas of '{label}'", level=3)
        for name, obj in m.objects.items():
            for q in ("efficiency", "scale", "resolution"):
                for r in getattr(obj, q):
                    rep.text(f"{name} {q}, |eta| in ({r.eta_low}, {r.eta_high}]: {r.formula}")
    if card is not None:
        rep.heading("Delphes card")
        rep.html(
            f"<pre style='font-size:.75em;white-space:pre-wrap'>"
            f"{card.replace('&', '&amp;').replace('<', '&lt;')}</pre>"
        )
    return rep.save(path)
