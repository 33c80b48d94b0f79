"""The photon speed paths give the photons of the plain formulas (issue 15, item 6).

Flasher photons are drawn in one compiled pass into reused batch columns, and the
scattering rotation renormalises with one Newton step; these tests check them against the
NumPy formulas they replace and against the unit-vector invariant.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ariasim.simulators.photons import Cascade, Flasher, bulk_ice, single_module
from ariasim.simulators.photons.batches import photon_batches, photon_counts
from ariasim.simulators.photons.propagate import scatter_direction
from ariasim.simulators.photons.sources import WavelengthSampler


def _numpy_flasher(n: int, sampler: WavelengthSampler, rng: np.random.Generator) -> tuple:
    """The NumPy formulas the compiled pass replaces (isotropic directions, inverse CDF)."""
    cz = 2.0 * rng.random(n) - 1.0
    phi = 2.0 * math.pi * rng.random(n)
    sz = np.sqrt(1.0 - cz * cz)
    d = np.column_stack([sz * np.cos(phi), sz * np.sin(phi), cz])
    g, dens, cdf = sampler.grid_nm, sampler.density, sampler._cdf
    u = rng.random(n)
    i = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, g.size - 2)
    w = g[i + 1] - g[i]
    d0 = dens[i]
    slope = (dens[i + 1] - d0) / w
    rem = (u - cdf[i]) * sampler._total
    root = np.sqrt(np.maximum(d0 * d0 + 2.0 * slope * rem, 0.0))
    x = np.where(d0 + root > 0, 2.0 * rem / (d0 + root), 0.0)
    return d, g[i] + np.clip(x, 0.0, w)


@pytest.mark.parametrize("wavelength_acceptance", [False, True])
def test_flasher_photons_equal_the_numpy_formulas(wavelength_acceptance: bool) -> None:
    det = single_module((0, 0, 5), wavelength_acceptance=wavelength_acceptance)
    src = Flasher((1.0, 2.0, 3.0), n_photons=1e4, wavelength_nm=(320.0, 480.0), time_ns=4.0)
    ph = src.generate(5000, bulk_ice(), det, np.random.default_rng(5))
    sampler, _ = src._sampler(det)
    d, wl = _numpy_flasher(5000, sampler, np.random.default_rng(5))
    # the wavelengths are plain arithmetic: equal to the bit
    np.testing.assert_array_equal(ph["wl"], wl)
    # cos/sin: the same libm on this machine (bit-equal), a vectorised one elsewhere
    np.testing.assert_allclose(np.column_stack([ph["dx"], ph["dy"], ph["dz"]]), d, atol=1e-15)
    assert np.all(ph["x"] == 1.0) and np.all(ph["z"] == 3.0) and np.all(ph["t"] == 4.0)
    assert np.all(ph["w"] == 1.0)


@pytest.mark.parametrize("source", [Flasher(n_photons=5000), Cascade(energy_gev=0.05)])
def test_reused_batch_columns_hold_the_same_photons(source: object) -> None:
    med, det = bulk_ice(), single_module((0, 0, 5), wavelength_acceptance=False)
    counts = photon_counts([source, source], med, det, 3)
    assert counts.sum() > 3000

    def batches(reuse: bool) -> list[dict[str, np.ndarray]]:
        it = photon_batches([source, source], counts, 1500, med, det, 3, reuse_buffers=reuse)
        return [{c: v.copy() for c, v in b.photons.items()} for b in it]

    fresh, reused = batches(False), batches(True)
    assert len(fresh) == len(reused) >= 2
    for a, b in zip(fresh, reused, strict=True):
        for c in a:
            np.testing.assert_array_equal(a[c], b[c])


def test_scattering_keeps_the_direction_unit() -> None:
    s = (np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4))
    u = (0.0, 0.6, 0.8)
    worst = 0.0
    for _ in range(3000):  # far more scatterings than a photon of the benchmark makes
        *u, s0, s1, s2, s3 = scatter_direction(*u, 0.9, 0.35, *s)
        s = tuple(np.uint64(x) for x in (s0, s1, s2, s3))  # keep the kernel's uint64 state
        worst = max(worst, abs(math.fsum(x * x for x in u) - 1.0))
    assert np.isfinite(worst) and worst < 1e-14
    # a direction far from unit (not one a source makes) still comes back unit
    v = scatter_direction(0.0, 0.66, 0.88, 0.9, 0.35, *s)[:3]
    assert abs(math.fsum(x * x for x in v) - 1.0) < 1e-14
