"""Plots of a trained KAN's edge functions (with their symbolic fits when available).

:func:`edge_curves` samples them into JSON-able curves (stored in a response model's
metadata, so reports can draw the edges of a saved model), :func:`plot_edge_curves` draws
such curves, :func:`plot_edges` both at once.

References:
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024), figure 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ariasim.surrogates.kan import BaseKAN

__all__ = ["edge_curves", "plot_edge_curves", "plot_edges"]


def edge_curves(model: BaseKAN, *, points: int = 33, digits: int = 5) -> list[dict[str, Any]]:
    """The active edges' learned functions as JSON-able curves (so a saved model can be
    plotted later, without the network): one dict per edge with ``layer, i, j, source``
    (input name or hidden node), ``x`` (over the observed range of the edge's input, in
    the network's standardised units), ``y`` (the learned function), and after
    ``model.symbolic()`` also ``function``, ``r2``, ``numeric`` and ``y_fit`` (the symbolic
    fit). Values are rounded to ``digits`` significant digits."""
    net = model.network_
    dev = next(net.parameters()).device
    fits = getattr(model, "_edge_fits_", {})
    names = list(model.variable_names_)

    def r(v: np.ndarray) -> list[float]:
        return [float(f"{float(t):.{digits}g}") if np.isfinite(t) else float("nan") for t in v]

    out: list[dict[str, Any]] = []
    with torch.no_grad():
        for li, (layer, H) in enumerate(zip(net.layers, model._layer_inputs_, strict=True)):
            lo, hi = H.min(0), H.max(0)
            grid = lo + np.linspace(0.0, 1.0, points)[:, None] * (hi - lo)
            phi = layer.edge_values(torch.as_tensor(grid, dtype=torch.float32, device=dev))
            phi = phi.double().cpu().numpy()
            mask = layer.mask.cpu().numpy()
            for j in range(layer.out_features):
                for i in range(layer.in_features):
                    if mask[j, i] <= 0:
                        continue
                    c: dict[str, Any] = {
                        "layer": li,
                        "i": i,
                        "j": j,
                        "source": names[i] if li == 0 else f"h{li}.{i}",
                        "x": r(grid[:, i]),
                        "y": r(phi[:, j, i]),
                    }
                    fit = fits.get((li, i, j))
                    if fit is not None:
                        c.update(
                            function=fit.function,
                            r2=float(fit.r2),
                            numeric=bool(fit.numeric),
                            y_fit=r(fit(grid[:, i])),
                        )
                    out.append(c)
    return out


def plot_edge_curves(
    curves: Sequence[Mapping[str, Any]], path: Any = None, *, title: str | None = None
) -> Any:
    """Plot :func:`edge_curves` output: one small panel per edge, the learned function
    (solid) and its symbolic fit (dashed; red title for an edge that stayed numeric).

    Returns:
        A ``matplotlib.figure.Figure`` (made without pyplot: no GUI backend needed).
    """
    from matplotlib.figure import Figure

    n = max(len(curves), 1)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(2.6 * ncols, 2.1 * nrows + (0.3 if title else 0.0)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, c in zip(axes.flat, curves, strict=False):
        ax.plot(c["x"], c["y"], lw=1.8, label="KAN")
        head = f"L{c['layer']}: {c['source']} -> {c['j']}"
        color = "k"
        if "y_fit" in c:
            ax.plot(c["x"], c["y_fit"], "--", lw=1.2, label=c["function"])
            head += f"\n{c['function']} (R2 {c['r2']:.4f})"
            if c.get("numeric"):
                head += " numeric"
                color = "C3"
        ax.set_title(head, fontsize=8, color=color)
        ax.tick_params(labelsize=7)
        if c["layer"] == 0:
            ax.set_xlabel(f"{c['source']} (standardised)", fontsize=7)
    for ax in list(axes.flat)[len(curves) :]:
        ax.set_axis_off()
    if not curves:
        axes.flat[0].text(0.5, 0.5, "no active edges", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_edges(model: BaseKAN, path: Any = None, *, points: int = 200) -> Any:
    """One small panel per active edge: the learned function over the observed range of
    its input (solid) and, after ``model.symbolic()``, its symbolic fit (dashed).

    Arguments:
        model: A fitted KAN estimator.
        path: Save the figure there too (format from the suffix).
        points: Points per curve.

    Returns:
        A ``matplotlib.figure.Figure`` (made without pyplot: no GUI backend needed).
    """
    return plot_edge_curves(edge_curves(model, points=points, digits=12), path)
