"""Compiled photon generation: one pass that fills a batch's columns in place.

The sources (:mod:`~.sources`) draw their uniform random numbers with NumPy, in the
same order and from the same generator as the vectorised code they replace, and hand
them to these functions, which compute the photons without temporaries and write them
straight into the columns the propagation kernel reads. The arithmetic is the same,
operation by operation and without fast-math contraction, so the photons are identical
to the last bit to those of the NumPy formulas (checked by
``benchmarks/photon_digests.py``).

Kept out of :mod:`~.sources` so that importing the sources does not import numba.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["isotropic_fill", "wavelength_fill"]


@nb.njit(cache=True)
def isotropic_fill(
    u_cos: np.ndarray, u_phi: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray
) -> None:
    """Unit vectors uniform on the sphere from two uniforms each, written into dx, dy, dz.

    ``cos θ = 2 u_cos - 1``, ``φ = 2π u_phi`` (as
    :func:`~.sources.isotropic_directions`).

    Arguments:
        u_cos, u_phi: Uniforms in [0, 1), one each per photon.
        dx, dy, dz: Output direction components (same length).
    """
    two_pi = 2.0 * math.pi
    for i in range(u_cos.size):
        cz = 2.0 * u_cos[i] - 1.0
        phi = two_pi * u_phi[i]
        sz = math.sqrt(1.0 - cz * cz)
        dx[i] = sz * math.cos(phi)
        dy[i] = sz * math.sin(phi)
        dz[i] = cz


@nb.njit(cache=True)
def wavelength_fill(
    u: np.ndarray,
    grid: np.ndarray,
    density: np.ndarray,
    cdf: np.ndarray,
    total: float,
    out: np.ndarray,
) -> None:
    """Inverse CDF of a piecewise-linear density (:class:`~.sources.WavelengthSampler`).

    Arguments:
        u: Uniforms in [0, 1), one per photon.
        grid: Ascending grid [nm] (at least two points).
        density: Density on the grid.
        cdf: Normalised cumulative integral on the grid (trapezoid, 0 to 1).
        total: The integral before normalisation.
        out: Output wavelengths [nm].
    """
    last = grid.size - 2
    for j in range(u.size):
        uj = u[j]
        i = np.searchsorted(cdf, uj, side="right") - 1
        i = min(max(i, 0), last)
        w = grid[i + 1] - grid[i]
        d0 = density[i]
        slope = (density[i + 1] - d0) / w
        rem = (uj - cdf[i]) * total
        root = math.sqrt(max(d0 * d0 + 2.0 * slope * rem, 0.0))
        den = d0 + root
        x = 2.0 * rem / den if den > 0 else 0.0
        out[j] = grid[i] + min(max(x, 0.0), w)
