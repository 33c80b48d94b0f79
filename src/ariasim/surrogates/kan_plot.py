"""Plots of a trained KAN's edge functions (with their symbolic fits when available).

References:
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024), figure 2.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ariasim.surrogates.kan import _BaseKAN

__all__ = ["plot_edges"]


def plot_edges(model: _BaseKAN, path: Any = None, *, points: int = 200) -> Any:
    """One small panel per active edge: the learned function over the observed range of
    its input (solid) and, after ``model.symbolic()``, its symbolic fit (dashed).

    Arguments:
        model: A fitted KAN estimator.
        path: Save the figure there too (format from the suffix).
        points: Points per curve.

    Returns:
        A ``matplotlib.figure.Figure`` (made without pyplot: no GUI backend needed).
    """
    from matplotlib.figure import Figure

    net = model.network_
    dev = next(net.parameters()).device
    fits = getattr(model, "_edge_fits_", {})
    panels = []
    with torch.no_grad():
        for li, (layer, H) in enumerate(zip(net.layers, model._layer_inputs_, strict=True)):
            lo, hi = H.min(0), H.max(0)
            grid = lo + np.linspace(0.0, 1.0, points)[:, None] * (hi - lo)
            phi = layer.edge_values(torch.as_tensor(grid, dtype=torch.float32, device=dev))
            phi = phi.double().cpu().numpy()
            mask = layer.mask.cpu().numpy()
            for j in range(layer.out_features):
                for i in range(layer.in_features):
                    if mask[j, i] > 0:
                        panels.append((li, i, j, grid[:, i], phi[:, j, i]))
    n = max(len(panels), 1)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(2.6 * ncols, 2.1 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    names = list(model.variable_names_)
    for ax, (li, i, j, x, y) in zip(axes.flat, panels, strict=False):
        ax.plot(x, y, lw=1.8, label="KAN")
        fit = fits.get((li, i, j))
        src = names[i] if li == 0 else f"h{li}.{i}"
        title = f"L{li}: {src} -> {j}"
        if fit is not None:
            ax.plot(x, fit(x), "--", lw=1.2, label=fit.function)
            title += f"\n{fit.function} (R2 {fit.r2:.4f})"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        if li == 0:
            ax.set_xlabel(f"{names[i]} (standardised)", fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no active edges", ha="center", va="center")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
