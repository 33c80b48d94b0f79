"""IceCube's ice effects in the photon MC: layer tilt, anisotropy, birefringence (issue 15).

References: PPC (D. Chirkin, NIM A 725 (2013) 141; https://github.com/icecube/ppc) and
D. Chirkin, M. Rongen, PoS(ICRC2019)854 (birefringence).
"""

from __future__ import annotations

import math
from pathlib import Path

import numba as nb
import numpy as np
import pytest

from ariasim.errors import ConfigError, InputError
from ariasim.simulators.photons import Detector, constant_medium, simulate
from ariasim.simulators.photons.ice_effects import (
    Anisotropy,
    Birefringence,
    IceEffects,
    LayerTilt,
    ppc_ice,
)
from ariasim.simulators.photons.optics import DEPTH_ORIGIN_M, layered_ice_from_arrays
from ariasim.simulators.photons.propagate import (
    _layer_path_integrals,
    _locate,
    birefringence_step,
    chunk_state,
    tilt_shift,
)

PPC_ICE = Path("/work/anchors/ppc/ice/spice_bfr-v2")
# spice_bfr-v2's 12 birefringence parameters (cfg.txt lines 17-28)
BFR_V2 = np.array(
    [
        0.076795,
        544284.545166,
        2.229494,
        0.002624,
        0.077381,
        1547618.883526,
        2.449589,
        0.002505,
        0.000995,
        0.248264,
        2.354436,
        1.680717,
    ]
)


def _tilt() -> LayerTilt:
    # three reference strings at -100, 0, 200 m; depths 2000, 2010, 2020 m
    shifts = np.array([[1.0, 0.0, -2.0], [3.0, 0.0, -4.0], [7.0, 0.0, -6.0]])
    return LayerTilt(
        np.array([-100.0, 0.0, 200.0]), np.array([2000.0, 2010.0, 2020.0]), shifts, azimuth_deg=0.0
    )


def test_tilt_depth_map_interpolates_and_extrapolates_as_the_table() -> None:
    t = _tilt()
    z = DEPTH_ORIGIN_M - np.array([2000.0, 2005.0, 2020.0, 2030.0, 1990.0])
    # at a reference string: the table's column, linear in depth, extrapolated outside
    np.testing.assert_allclose(t.shift_m(-100.0, 5.0, z), [1.0, 2.0, 7.0, 11.0, -1.0])
    np.testing.assert_allclose(t.shift_m(200.0, 0.0, z), [-2.0, -3.0, -6.0, -8.0, 0.0])
    # between strings: linear in the distance along the tilt direction (x here)
    np.testing.assert_allclose(t.shift_m(-50.0, 0.0, z[1]), 1.0)
    np.testing.assert_allclose(t.shift_m(100.0, 0.0, z[1]), -1.5)
    # beyond the outermost strings: extrapolated from the last pair
    np.testing.assert_allclose(t.shift_m(-200.0, 0.0, z[0]), 2.0)
    # the direction: y does not matter for azimuth 0, x does not for azimuth 90
    t90 = LayerTilt(t.distances_m, t.depths_m, t.shifts_m, azimuth_deg=90.0)
    np.testing.assert_allclose(t90.shift_m(1e3, -100.0, z[0]), 1.0)


def test_tilt_kernel_function_agrees_with_the_depth_map() -> None:
    t = _tilt()
    args = t.kernel_args()
    rng = np.random.default_rng(3)
    pts = rng.uniform(
        [-300, -50, DEPTH_ORIGIN_M - 2040], [300, 50, DEPTH_ORIGIN_M - 1980], size=(50, 3)
    )
    got = [tilt_shift(x, y, z, *args) for x, y, z in pts]
    np.testing.assert_allclose(got, t.shift_m(pts[:, 0], pts[:, 1], pts[:, 2]), atol=1e-12)


@pytest.mark.skipif(not PPC_ICE.exists(), reason="PPC's spice_bfr-v2 folder not here")
def test_tilt_matches_ppc_printout(tmp_path: Path) -> None:
    # PPC's "ppc =" mode (x y z -> depth shift) with spice_bfr-v2's tilt files and a
    # geometry without the origin string 86 (r_0 = 0)
    for f in ("icemodel.dat", "icemodel.par", "cfg.txt", "tilt.par", "tilt.dat"):
        (tmp_path / f).write_bytes((PPC_ICE / f).read_bytes())
    t = ppc_ice(tmp_path).effects.tilt
    x = np.array([360.0, 0.0, -300.0, 500.0, 100.0])
    y = np.array([360.0, 0.0, 100.0, -200.0, 400.0])
    z = np.array([-201.93, -201.93, -400.0, 300.0, -600.0])
    ppc = [7.15483, 0.0, -10.7747, -1.1927, 35.5764]
    np.testing.assert_allclose(t.shift_m(x, y, z), ppc, atol=2e-4)


def test_anisotropy_factor_formula_and_normalisation() -> None:
    a = Anisotropy(130.0, math.exp(0.6), math.exp(-0.3), math.exp(-0.3))
    k1, k2, kz = a.absorption_k
    # PPC prints "Renorm. NI anisotropy 1.69545,0.689318,0.689318" for these numbers
    np.testing.assert_allclose([k1, k2, kz], [1.69545, 0.689318, 0.689318], rtol=1e-5)
    phi = math.radians(130.0)
    along = [math.cos(phi), math.sin(phi), 0.0]
    across = [-math.sin(phi), math.cos(phi), 0.0]
    np.testing.assert_allclose(a.absorption_factor(along), 1 / k1)
    np.testing.assert_allclose(a.absorption_factor(across), 1 / k2)
    np.testing.assert_allclose(a.absorption_factor([0.0, 0.0, 1.0]), 1 / kz)
    # renormalised: the factor averages to one over isotropic directions
    d = np.random.default_rng(1).normal(size=(400_000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    f = a.absorption_factor(d)
    assert abs(f.mean() - 1.0) < 4 * f.std() / math.sqrt(f.size)
    with pytest.raises(ConfigError, match="k1"):
        Anisotropy(0.0, -1.0, 1.0, 1.0)


class _Beam:
    """Photons from the origin along one direction (a test source)."""

    def __init__(self, direction: np.ndarray, n: int, z0: float = 0.0) -> None:
        self.direction = np.asarray(direction, float)
        self.n = n
        self.z0 = z0

    def photon_count(self, medium, detector, rng) -> int:
        return self.n

    def generate(self, n, medium, detector, rng) -> dict:
        z = np.zeros(n)
        return {
            "x": z,
            "y": z.copy(),
            "z": z + self.z0,
            "dx": np.full(n, self.direction[0]),
            "dy": np.full(n, self.direction[1]),
            "dz": np.full(n, self.direction[2]),
            "t": z.copy(),
            "wl": np.full(n, 400.0),
            "w": np.ones(n),
        }

    def describe(self) -> dict:
        return {"type": "beam"}


def test_absorption_along_and_across_the_flow_axis_mc() -> None:
    # no scattering: a beam reaches a module at d with probability exp(-a f(n) d)
    a_abs, d, n = 1 / 50.0, 40.0, 4000
    ani = Anisotropy(130.0, math.exp(0.6), math.exp(-0.3), math.exp(-0.3))
    med = constant_medium(1 / a_abs, math.inf)
    object.__setattr__(med, "effects", IceEffects(anisotropy=ani))
    phi = math.radians(130.0)
    for direction in (
        np.array([math.cos(phi), math.sin(phi), 0.0]),
        np.array([-math.sin(phi), math.cos(phi), 0.0]),
    ):
        det = Detector(
            (d * direction)[None, :],
            radius_m=0.5,
            angular_acceptance="flat",
            wavelength_acceptance=False,
        )
        res = simulate(_Beam(direction, n), med, det, seed=4, n_threads=1)
        p = math.exp(-a_abs * float(ani.absorption_factor(direction)) * (d - 0.5))
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(len(res.hits) - n * p) < 4 * sigma, (len(res.hits), n * p)
    # the along/across difference is large against the statistics: 0.62 vs 0.33
    assert (
        math.exp(-a_abs * 40 / ani.absorption_k[0]) - math.exp(-a_abs * 40 / ani.absorption_k[1])
        > 0.2
    )


def test_birefringence_s_eff_and_table() -> None:
    b = Birefringence(BFR_V2, ra=2.0)
    # PPC prints "Initialized BFR diffusion patterns; s_eff=0.00246854 m^-1"
    assert b.s_eff == pytest.approx(0.00246854, rel=1e-5)
    c = np.random.default_rng(2).random(20_000)
    sx, sy, mx = b.widths(c)
    tab = b.table()
    u = c * (tab.shape[0] - 1)
    k = np.minimum(u.astype(int), tab.shape[0] - 2)
    f = u - k
    ti = tab[k] + f[:, None] * (tab[k + 1] - tab[k])
    np.testing.assert_allclose(ti[:, 0], sx, atol=1e-4 * sx.max())
    np.testing.assert_allclose(ti[:, 1], sy, atol=1e-4 * sy.max())
    np.testing.assert_allclose(ti[:, 2] * np.sqrt(1 - c * c), mx, atol=1e-4 * mx.max())


@nb.njit(cache=False)
def _deflections(n, ux, uy, uz, s, ia, ib, ax, ay, btab, key):
    st = np.empty(4, np.uint64)
    s0, s1, s2, s3 = chunk_state(st, key)
    out = np.empty((n, 6))
    for i in range(n):
        x, y, z, nx, ny, nz, s0, s1, s2, s3 = birefringence_step(
            0.0, 0.0, 0.0, ux, uy, uz, s, ia, ib, ax, ay, btab, s0, s1, s2, s3
        )
        out[i] = (x, y, z, nx, ny, nz)
    return out


def test_birefringence_deflection_statistics() -> None:
    b = Birefringence(BFR_V2)
    tab = b.table()
    n, s = 20_000, 2.0  # small angles: the rotation's tan(angle/2) form is ~linear
    # across the flow axis (x): no drift; deflections with sigma_x (towards the axis, x)
    # and sigma_y (the third direction, z) times sqrt(ra s)
    out = _deflections(n, 0.0, 1.0, 0.0, s, 2.0 * s, 2.0 * s, 1.0, 0.0, tab, np.uint64(7))
    sx, sy, _mx = (float(v) for v in b.widths(0.0))
    for col, sig in ((3, sx), (5, sy)):
        v = out[:, col]
        assert abs(v.mean()) < 4 * sig * math.sqrt(2 * s / n)
        assert v.std() == pytest.approx(sig * math.sqrt(2 * s), rel=4 / math.sqrt(2 * n))
    # end point: half the deflection plus the Brownian bridge's sigma/sqrt(12) per length
    xs = out[:, 0]
    assert xs.std() == pytest.approx(
        s * sx * math.sqrt(2 * s) * math.sqrt(1 / 4 + 1 / 12), rel=4 / math.sqrt(2 * n)
    )
    # at 45 deg to the axis: a mean drift of mx (ra = rb = 1 per metre) towards the axis
    c = math.sqrt(0.5)
    out = _deflections(n, c, c, 0.0, s, s, s, 1.0, 0.0, tab, np.uint64(8))
    sx45, _sy45, mx45 = (float(v) for v in b.widths(c))
    q = np.array([c, -c, 0.0])  # the axis's part perpendicular to n, normalised
    along_q = out[:, 3:] @ q
    assert mx45 * s > 10 * sx45 * math.sqrt(s / n)
    assert abs(along_q.mean() - mx45 * s) < 4 * sx45 * math.sqrt(s / n) + 1e-3 * mx45 * s


@nb.njit(cache=False)
def _path_integrals_as_in_the_kernel(zb, ra, rb, zs, uzs, ss):
    # the ice kernel's own calling pattern and names (its results are ia, ib): numba
    # inlines the function here as it does there
    out = np.empty((zs.size, 2))
    layer = 0
    for i in range(zs.size):
        zeff = zs[i]
        layer = _locate(zb, zeff, layer)
        ia = 0.0
        ib = 0.0
        if ss[i] >= 0.0:
            ia, ib = _layer_path_integrals(zeff, uzs[i], ss[i], layer, zb, ra, rb)
        out[i, 0] = ia
        out[i, 1] = ib
    return out


@pytest.mark.parametrize("dz", [1.0, 10.0])
def test_birefringence_path_integrals_across_layers(dz: float) -> None:
    # the integrals of ra, rb along a straight segment that crosses layer boundaries,
    # against a fine midpoint sum; an earlier form, inlined with the kernel's names,
    # returned only the last layer's piece (too little birefringence in layered ice)
    rng = np.random.default_rng(11)
    zb = -300.0 + dz * np.arange(60)
    ra = rng.uniform(0.5, 3.0, zb.size + 1)
    rb = rng.uniform(0.0, 2.0, zb.size + 1)
    n = 400
    zs = rng.uniform(-290.0, -300.0 + 60 * dz, n)
    uzs = rng.uniform(-1.0, 1.0, n)
    uzs[:3] = 0.0
    ss = rng.exponential(4.0 * dz, n)
    got = _path_integrals_as_in_the_kernel(zb, ra, rb, zs, uzs, ss)
    m = 4000
    t = (np.arange(m) + 0.5) / m
    lay = np.searchsorted(zb, zs[:, None] + uzs[:, None] * ss[:, None] * t, side="right")
    want = np.stack([ra[lay].mean(axis=1) * ss, rb[lay].mean(axis=1) * ss], axis=1)
    # midpoint rule: each boundary crossed costs at most one sub-interval's weight
    tol = 2.0 * 3.0 * ss / m * (1 + np.abs(uzs) * ss / dz)
    assert np.all(np.abs(got - want) <= tol[:, None])
    crossing = np.abs(uzs) * ss > dz
    assert crossing.sum() > n // 4


def test_ppc_ice_switches_and_plain_kernel_when_off(tmp_path: Path) -> None:
    rows = "\n".join(f"{2000 + 10 * i} {0.02 + 0.002 * i} {0.005} 10 0 0 2" for i in range(5))
    (tmp_path / "icemodel.dat").write_text(rows + "\n")
    (tmp_path / "icemodel.par").write_text("0.8986 0\n1.0841 0\n6954.09 0\n6617.75 0\n")
    cfg = [
        "1",
        "1",
        "0.35",
        "0.9",
        "130",
        "0",
        "0",
        "0",
        "0.03",
        "100",
        "0.35",
        "0.9",
        "0.6",
        "-0.3",
        "-0.3",
        "0",
    ] + [f"{float(v)!r}" for v in BFR_V2]
    (tmp_path / "cfg.txt").write_text("\n".join(cfg) + "\n")
    full = ppc_ice(tmp_path)
    assert full.effects.anisotropy is not None and full.effects.birefringence is not None
    assert full.effects.tilt is None  # no tilt files
    # the birefringence takes its share ra s_eff off the effective scattering
    np.testing.assert_allclose(
        full.effects.scattering_offset_per_m, -2 * full.effects.birefringence.s_eff
    )
    off = ppc_ice(tmp_path, anisotropy=False, birefringence=False)
    assert off.effects is None
    ref = layered_ice_from_arrays(
        2000 + 10 * np.arange(5), 0.02 + 0.002 * np.arange(5), np.full(5, 0.005), np.full(5, 10.0)
    )
    # all effects off: the same medium as the plain layered table, so the same kernel and
    # byte-identical hits
    det = Detector(
        np.array([[0.0, 0.0, DEPTH_ORIGIN_M - 2022.0]]),
        radius_m=2.0,
        angular_acceptance="flat",
        wavelength_acceptance=False,
    )
    src = _Beam(np.array([0.0, 0.0, -1.0]), 3000, z0=DEPTH_ORIGIN_M - 2012.0)
    a = simulate(src, off, det, seed=5, n_threads=1).hits
    b = simulate(src, ref, det, seed=5, n_threads=1).hits
    assert len(a) > 100
    assert a.equals(b)
    (tmp_path / "tilt.set").write_text("0\n")  # a 2-d tilt map: not modelled, said so
    with pytest.raises(InputError, match="2-d layer tilt"):
        ppc_ice(tmp_path)
    with pytest.raises(InputError, match="PPC ice folder not found"):
        ppc_ice(tmp_path / "nope")
