"""IceCube's ice beyond flat layers: layer tilt, anisotropy and birefringence (as in PPC).

Three effects of South Pole ice that IceCube's current ice models (PPC's ``spice_bfr-v2``)
add to the layered SPICE tables; each can be switched off on its own and costs nothing
when off (a medium without :class:`IceEffects` runs the plain kernel).

**Layer tilt** (:class:`LayerTilt`). Isochronal layers are not horizontal: the depth of a
given layer shifts with the horizontal position along the tilt direction (azimuth 225 deg
in PPC's 1-d model). PPC's ``tilt.par`` lists, per reference string, its distance ``r_j``
along that direction (the string with distance 0 is the origin); ``tilt.dat`` lists, per
depth ``d_k`` (ascending, uniform), the shift ``Δ_jk`` of each reference string [m]. At a
point (x, y, z) with ``r = x cos φ + y sin φ - r_0`` (``r_0``: projection of the origin
string's modules of the geometry, 0 without them) the shift is the bilinear interpolation
of ``Δ`` in ``r`` and in z (linear extrapolation beyond the table, as PPC), and the ice
there is the ice of the flat table at height ``z - Δ`` (depth ``d + Δ``).

**Absorption anisotropy** (:class:`Anisotropy`). Along the ice-flow axis (azimuth φ_f,
cfg.txt) light is absorbed less: with the photon direction ``n`` in the frame (flow, across
flow, vertical) the absorption coefficient is multiplied by
``f(n) = 1 / |(k1 n1, k2 n2, kz n3)|``; for ``k1 >= k2 = kz`` the ``k`` are rescaled so that
``f`` averages to one over isotropic directions (``<f> = asinh(s) / (s k2)``, ``s² = k1²/k2²
- 1``). The older *scattering* anisotropy (per-layer ``k1, k2`` of ``icemodel.dat``)
stretches the direction by ``diag(k1, k2, 1/(k1 k2))`` in the same frame before scattering
and back after it.

**Birefringence** (:class:`Birefringence`). In polycrystalline ice with crystal axes
aligned by the flow, a ray refracts at every grain boundary: its direction diffuses and
drifts towards the flow axis (Chirkin & Rongen 2019). PPC parametrises it with 12 numbers:
after a straight segment of length ``l`` the direction receives a random deflection with
standard deviations ``σ_x = sqrt(ra l) b0 exp(-b1 atan(b3 sinθ)^b2)`` (in the plane of the
flow axis) and ``σ_y = sqrt(ra l) b4 exp(-b5 atan(b7 sinθ)^b6)`` (perpendicular) plus a drift
``μ = rb l b8 atan(b11 sinθ cosθ) exp(-b9 sinθ + b10 cosθ)`` towards the axis (θ: angle to
the flow axis); the end point moves as for a Brownian bridge (half the final deflection
plus a spread of ``σ/sqrt(12)`` l). The deflection makes part of the scattering, so the
table's effective scattering is reduced by ``ra s_eff`` with ``s_eff = 1/2 ∫_0^1
(σ_x² + σ_y² + μ²)|_(ra = rb = l = 1) d cosθ``.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC); PPC
    source https://github.com/icecube/ppc (gpu/ini.cxx, gpu/pro.cu), whose behaviour this
    module re-derives and reproduces.
    D. Chirkin and M. Rongen, "Light diffusion in birefringent polycrystals and the IceCube
    ice anisotropy", PoS(ICRC2019)854, arXiv:1908.07608.
    M. Rongen, D. Chirkin et al. (IceCube), "A novel microstructure based model to explain
    the IceCube ice anisotropy", PoS(ICRC2021)1119, arXiv:2107.08692.
    M. G. Aartsen et al. (IceCube), "South Pole glacial climate reconstruction from
    multi-borehole laser particulate stratigraphy", J. Glaciol. 59 (2013) 1117 (layer tilt).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ariasim.errors import ConfigError, InputError

__all__ = [
    "Anisotropy",
    "Birefringence",
    "IceEffects",
    "LayerTilt",
    "ppc_ice",
    "read_ppc_cfg",
    "read_tilt",
]

#: PPC's direction of the 1-d tilt model [deg].
TILT_AZIMUTH_DEG = 225.0
_DEPTH_ORIGIN_M = 1948.07  # optics.DEPTH_ORIGIN_M (not imported: optics imports this lazily)


@dataclass(frozen=True)
class LayerTilt:
    """Depth shift of isochronal layers with horizontal position (PPC's 1-d tilt model).

    Arguments:
        distances_m: Distance of each reference string along the tilt direction, ascending.
        depths_m: Table depths, ascending and uniformly spaced [m].
        shifts_m: (n_depths, n_strings) depth shift of the layers at each reference string.
        azimuth_deg: Tilt direction.
        origin_m: ``r_0``, projection of the origin string (subtracted from ``r``).

    Example:
        >>> t = LayerTilt(np.array([0.0, 100.0]), np.array([2000.0, 2010.0]),
        ...               np.array([[0.0, 2.0], [0.0, 4.0]]), azimuth_deg=0.0)
        >>> float(t.shift_m(50.0, 0.0, 1948.07 - 2005.0))
        1.5
    """

    distances_m: np.ndarray
    depths_m: np.ndarray
    shifts_m: np.ndarray
    azimuth_deg: float = TILT_AZIMUTH_DEG
    origin_m: float = 0.0

    def __post_init__(self) -> None:
        for key in ("distances_m", "depths_m", "shifts_m"):
            object.__setattr__(self, key, np.ascontiguousarray(getattr(self, key), dtype=float))
        r, d, s = self.distances_m, self.depths_m, self.shifts_m
        if r.ndim != 1 or r.size < 2 or np.any(np.diff(r) <= 0):
            raise ConfigError("need >= 2 ascending tilt distances", parameter="tilt.distances_m")
        if d.ndim != 1 or d.size < 2 or np.any(np.diff(d) <= 0):
            raise ConfigError("need >= 2 ascending tilt depths", parameter="tilt.depths_m")
        if s.shape != (d.size, r.size) or not np.all(np.isfinite(s)):
            raise ConfigError(
                f"shifts must be finite, shape {(d.size, r.size)}, got {s.shape}",
                parameter="tilt.shifts_m",
            )

    def kernel_args(self) -> tuple:
        """``(cos φ, sin φ, r_0, distances, z_0, 1/Δz, table)`` with the table (n_strings,
        n_depths) in ascending detector z (z_0 the lowest)."""
        phi = math.radians(self.azimuth_deg)
        d = self.depths_m
        z0 = _DEPTH_ORIGIN_M - d[-1]
        inv_dz = (d.size - 1) / (d[-1] - d[0])
        table = np.ascontiguousarray(self.shifts_m[::-1].T)
        return (
            math.cos(phi),
            math.sin(phi),
            float(self.origin_m),
            self.distances_m,
            z0,
            inv_dz,
            table,
        )

    def shift_m(self, x: np.ndarray | float, y: np.ndarray | float, z: np.ndarray | float):
        """Layer depth shift Δ [m] at detector position(s) (x, y, z); the ice there is the
        flat table's ice at height ``z - Δ``."""
        cx, sy, r0, lr, z0, inv_dz, tab = self.kernel_args()
        x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, y, z)))
        nr = cx * x + sy * y - r0
        nd = lr.size
        j = np.clip(np.searchsorted(lr[1 : nd - 1], nr, side="right") + 1, 1, nd - 1)
        i = j - 1
        wx = (nr - lr[i]) / (lr[j] - lr[i])
        zz = (z - z0) * inv_dz
        k = np.clip(np.floor(zz).astype(np.int64), 0, tab.shape[1] - 2)
        f = zz - k
        vi = tab[i, k] + (tab[i, k + 1] - tab[i, k]) * f
        vj = tab[j, k] + (tab[j, k + 1] - tab[j, k]) * f
        return vi * (1.0 - wx) + vj * wx


@dataclass(frozen=True)
class Anisotropy:
    """Absorption (and scattering) anisotropy along the ice-flow axis.

    Arguments:
        azimuth_deg: Azimuth of the flow axis (cfg.txt line 5).
        k1, k2, kz: Absorption factors along the flow, across it and vertically (the
            exponentials of cfg.txt's entries, before renormalisation).
        renormalise: Rescale ``k`` so the absorption factor averages to one over isotropic
            directions when ``k1 >= k2 == kz`` (as PPC).
        scattering_k1, scattering_k2: Per-layer stretch factors of the older scattering
            anisotropy (z ascending as the medium's layers), or ``None`` (off).

    Example:
        >>> a = Anisotropy(0.0, math.exp(0.6), math.exp(-0.3), math.exp(-0.3))
        >>> round(float(a.absorption_factor([1.0, 0.0, 0.0])), 4)
        0.5898
    """

    azimuth_deg: float
    k1: float
    k2: float
    kz: float
    renormalise: bool = True
    scattering_k1: np.ndarray | None = None
    scattering_k2: np.ndarray | None = None
    _k: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key in ("k1", "k2", "kz"):
            v = getattr(self, key)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"must be > 0 and finite, got {v}", parameter=key)
        k1, k2, kz = float(self.k1), float(self.k2), float(self.kz)
        if self.renormalise and k1 >= k2 and k2 == kz:
            r = k1 / k2
            s = math.sqrt(r * r - 1.0)
            scale = (math.log(r + s) / s if s > 1e-5 else 1.0 + s / 2.0) / k2
            k1, k2, kz = k1 * scale, k2 * scale, kz * scale
        object.__setattr__(self, "_k", (k1, k2, kz))
        if (self.scattering_k1 is None) != (self.scattering_k2 is None):
            raise ConfigError("give both or neither", parameter="scattering_k1")
        if self.scattering_k1 is not None:
            for key in ("scattering_k1", "scattering_k2"):
                arr = np.ascontiguousarray(getattr(self, key), dtype=float)
                if np.any(~(arr > 0)):
                    raise ConfigError("stretch factors must be > 0", parameter=key)
                object.__setattr__(self, key, arr)

    @property
    def absorption_k(self) -> tuple[float, float, float]:
        """``(k1, k2, kz)`` after renormalisation."""
        return self._k

    @property
    def has_scattering(self) -> bool:
        """Whether the scattering anisotropy is on (some stretch factor differs from 1)."""
        return self.scattering_k1 is not None and bool(
            np.any(self.scattering_k1 != 1.0) or np.any(self.scattering_k2 != 1.0)
        )

    def absorption_factor(self, direction: np.ndarray) -> np.ndarray:
        """Factor multiplying the absorption coefficient for unit direction(s) (..., 3)."""
        n = np.asarray(direction, dtype=float)
        phi = math.radians(self.azimuth_deg)
        ax, ay = math.cos(phi), math.sin(phi)
        k1, k2, kz = self._k
        n1 = (ax * n[..., 0] + ay * n[..., 1]) * k1
        n2 = (-ay * n[..., 0] + ax * n[..., 1]) * k2
        n3 = n[..., 2] * kz
        return 1.0 / np.sqrt(n1 * n1 + n2 * n2 + n3 * n3)


@dataclass(frozen=True)
class Birefringence:
    """PPC's birefringence (BFR) diffusion of the photon direction.

    Arguments:
        params: The 12 parameters ``b0..b11`` (cfg.txt lines 17-28).
        azimuth_deg: Azimuth of the ice-flow axis (cfg.txt line 5).
        ra, rb: Per-layer strengths of the diffusion and of the drift (z ascending as the
            medium's layers; icemodel.dat columns 7 and 7 x 8), or scalars.

    Example:
        >>> b = Birefringence(np.array([0.0767, 5.4e5, 2.23, 0.0026, 0.0774, 1.5e6, 2.45,
        ...                             0.0025, 0.001, 0.248, 2.35, 1.68]))
        >>> round(b.s_eff, 5)
        0.00253
    """

    params: np.ndarray
    ra: np.ndarray | float = 1.0
    rb: np.ndarray | float = 1.0
    azimuth_deg: float = 130.0

    def __post_init__(self) -> None:
        p = np.ascontiguousarray(self.params, dtype=float)
        if p.shape != (12,) or not np.all(np.isfinite(p)):
            raise ConfigError("need 12 finite birefringence parameters", parameter="bfr")
        object.__setattr__(self, "params", p)
        for key in ("ra", "rb"):
            arr = np.atleast_1d(np.asarray(getattr(self, key), dtype=float))
            if np.any(~(arr >= 0)):
                raise ConfigError("must be >= 0", parameter=f"bfr.{key}")
            object.__setattr__(self, key, np.ascontiguousarray(arr))

    def widths(self, cos_theta: np.ndarray | float) -> tuple[np.ndarray, ...]:
        """``(σ_x, σ_y, μ)`` per unit path (ra = rb = l = 1) at angle θ to the flow axis."""
        b = self.params
        c = np.abs(np.asarray(cos_theta, dtype=float))
        s = np.sqrt(np.maximum(1.0 - c * c, 0.0))
        sx = np.maximum(0.0, b[0] * np.exp(-b[1] * np.arctan(b[3] * s) ** b[2]))
        sy = np.maximum(0.0, b[4] * np.exp(-b[5] * np.arctan(b[7] * s) ** b[6]))
        mx = np.maximum(0.0, b[8] * np.arctan(b[11] * s * c) * np.exp(-b[9] * s + b[10] * c))
        return sx, sy, mx

    def table(self, n: int = 4096) -> np.ndarray:
        """``(σ_x, σ_y, μ / sin θ)`` per unit path on ``n + 1`` points of |cos θ| in [0, 1],
        the kernel's look-up table (smooth in cos θ: linear interpolation is accurate to
        below 1e-4 of each column's largest value)."""
        c = np.linspace(0.0, 1.0, n + 1)
        sx, sy, _ = self.widths(c)
        b = self.params
        s = np.sqrt(1.0 - c * c)
        with np.errstate(invalid="ignore", divide="ignore"):
            # atan(b11 s c) / s, continued to its limit b11 c at s = 0
            r = np.where(s > 0, np.arctan(b[11] * s * c) / s, b[11] * c)
        h = b[8] * r * np.exp(-b[9] * s + b[10] * c)
        h = np.where(b[8] * np.arctan(b[11] * s * c) >= 0, h, 0.0)
        return np.ascontiguousarray(np.column_stack([sx, sy, h]))

    @property
    def s_eff(self) -> float:
        """Effective scattering coefficient of the deflections at ra = rb = 1 [1/m]
        (midpoint rule on 100 points of cos θ, as PPC)."""
        c = (np.arange(100) + 0.5) / 100.0
        sx, sy, mx = self.widths(c)
        return float(np.sum(sx * sx + sy * sy + mx * mx) * 0.01 / 2.0)


@dataclass(frozen=True)
class IceEffects:
    """The effects a layered :class:`~.optics.Medium` adds (each ``None`` = off).

    Arguments:
        tilt: Layer tilt.
        anisotropy: Absorption/scattering anisotropy.
        birefringence: Birefringence.
        scattering_offset_per_m: Per-layer addition to the effective scattering coefficient
            (PPC: air bubbles minus the birefringence's share ``ra s_eff``), z ascending, or
            ``None``.

    Example:
        >>> IceEffects().active
        False
    """

    tilt: LayerTilt | None = None
    anisotropy: Anisotropy | None = None
    birefringence: Birefringence | None = None
    scattering_offset_per_m: np.ndarray | None = None

    @property
    def active(self) -> bool:
        """Whether any effect is on."""
        return (
            self.tilt is not None
            or self.anisotropy is not None
            or self.birefringence is not None
            or self.scattering_offset_per_m is not None
        )

    def kernel_args(self, n_layers: int) -> tuple:
        """The arguments :func:`~.propagate.propagate_kernel_ice` takes after the medium's."""
        if self.tilt is not None:
            tilt_args = (True, *self.tilt.kernel_args())
        else:
            tilt_args = (False, 1.0, 0.0, 0.0, np.zeros(2), 0.0, 1.0, np.zeros((2, 2)))
        a = self.anisotropy
        b = self.birefringence
        if a is not None and b is not None and a.azimuth_deg != b.azimuth_deg:
            raise ConfigError(
                "anisotropy and birefringence need the same flow axis", parameter="azimuth_deg"
            )
        axis = a.azimuth_deg if a is not None else (b.azimuth_deg if b is not None else 0.0)
        phi = math.radians(axis)
        if a is not None:
            k1, k2, kz = a.absorption_k
            ani = (k1, k2, kz) != (1.0, 1.0, 1.0), math.cos(phi), math.sin(phi), k1, k2, kz
            scat_on = a.has_scattering
            s1 = 1.0 if a.scattering_k1 is None else a.scattering_k1
            s2 = 1.0 if a.scattering_k2 is None else a.scattering_k2
            sk1 = _per_layer(s1, n_layers, "scattering_k1") if scat_on else None
            sk2 = _per_layer(s2, n_layers, "scattering_k2") if scat_on else None
        else:
            ani = (False, math.cos(phi), math.sin(phi), 1.0, 1.0, 1.0)
            scat_on, sk1, sk2 = False, None, None
        ones = np.ones(n_layers)
        if b is not None:
            bfr = (
                True,
                b.table(),
                _per_layer(b.ra, n_layers, "bfr.ra"),
                _per_layer(b.rb, n_layers, "bfr.rb"),
            )
        else:
            bfr = (False, np.zeros((2, 3)), ones, ones)
        off = self.scattering_offset_per_m
        badd = np.zeros(n_layers) if off is None else _per_layer(off, n_layers, "offset")
        return (
            *tilt_args,
            *ani,
            scat_on,
            ones if sk1 is None else sk1,
            ones if sk2 is None else sk2,
            *bfr,
            badd,
        )

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "tilt": self.tilt is not None,
            "anisotropy": None
            if self.anisotropy is None
            else {
                "azimuth_deg": self.anisotropy.azimuth_deg,
                "k": list(self.anisotropy.absorption_k),
                "scattering": self.anisotropy.has_scattering,
            },
            "birefringence": None
            if self.birefringence is None
            else {"s_eff_per_m": self.birefringence.s_eff},
        }


def _per_layer(v: np.ndarray | float, n: int, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(v, dtype=float))
    if arr.size == 1:
        return np.full(n, float(arr[0]))
    if arr.size != n:
        raise ConfigError(f"need 1 or {n} values, got {arr.size}", parameter=name)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- PPC files


def _numbers(path: Path) -> list[float]:
    """The leading number of every line (PPC's cfg.txt reading)."""
    out = []
    for line in path.read_text().splitlines():
        tok = line.split()
        if not tok:
            continue
        try:
            out.append(float(tok[0]))
        except ValueError:
            continue
    return out


def read_ppc_cfg(path: str | os.PathLike[str]) -> dict:
    """Read PPC's ``cfg.txt`` (strict order; PPC takes the first number of each line).

    Returns a dict with ``oversize, efficiency, sl_fraction, g`` and, when present,
    ``anisotropy_azimuth_deg, scattering_k1, scattering_k2`` (exponents), ``k1, k2, kz``
    (exponents), ``old_absorption_scaling`` and ``bfr`` (12 numbers).
    """
    p = Path(path)
    if not p.exists():
        raise InputError("PPC cfg.txt not found", path=p)
    v = _numbers(p)
    if len(v) < 4:
        raise InputError("cfg.txt needs at least 4 numbers (oversize, eff, sf, g)", path=p)
    out: dict = {"oversize": v[0], "efficiency": v[1], "sl_fraction": v[2], "g": v[3]}
    if len(v) >= 7:
        out.update(anisotropy_azimuth_deg=v[4], scattering_k1=v[5], scattering_k2=v[6])
    if len(v) >= 15:
        out.update(k1=v[12], k2=v[13], kz=v[14])
    if len(v) >= 16:
        out["old_absorption_scaling"] = v[15]
    if len(v) >= 28:
        out["bfr"] = v[16:28]
    return out


def read_tilt(
    folder: str | os.PathLike[str], geometry: str | os.PathLike[str] | None = None
) -> LayerTilt | None:
    """Read PPC's ``tilt.par`` (string, distance per line) and ``tilt.dat`` (depth then one
    shift per string per line); ``None`` if either is missing.

    Arguments:
        folder: The folder holding the two files.
        geometry: A PPC ``geo-f2k`` file; ``r_0`` is the mean projection of the modules of
            the string at distance 0 (PPC does the same with its geometry; 0 when that
            string is absent).
    """
    f = Path(folder)
    par, dat = f / "tilt.par", f / "tilt.dat"
    if not (par.exists() and dat.exists()):
        return None
    try:
        pv = np.loadtxt(par, ndmin=2)
        dv = np.loadtxt(dat, ndmin=2)
    except ValueError as exc:
        raise InputError(f"cannot parse tilt table: {exc}", path=par) from exc
    if pv.shape[1] < 2 or dv.shape[1] != pv.shape[0] + 1:
        raise InputError(
            f"tilt.dat needs 1 + {pv.shape[0]} columns (tilt.par rows), got {dv.shape[1]}",
            path=dat,
        )
    strings, dist = pv[:, 0].astype(int), pv[:, 1]
    r0 = 0.0
    if geometry is not None and Path(geometry).exists():
        origin = strings[dist == 0.0]
        geo = _read_f2k(Path(geometry))
        if origin.size and geo.size:
            sel = geo[:, 3] == origin[0]
            if np.any(sel):
                phi = math.radians(TILT_AZIMUTH_DEG)
                r0 = float(np.mean(math.cos(phi) * geo[sel, 0] + math.sin(phi) * geo[sel, 1]))
    try:
        return LayerTilt(dist, dv[:, 0], dv[:, 1:], origin_m=r0)
    except ConfigError as exc:
        raise InputError(str(exc), path=dat) from exc


def _read_f2k(path: Path) -> np.ndarray:
    """PPC geometry ``geo-f2k``: rows (x, y, z_detector, string, module)."""
    rows = []
    for line in path.read_text().splitlines():
        tok = line.split()
        if len(tok) < 7:
            continue
        try:
            x, y, zf = float(tok[2]), float(tok[3]), float(tok[4])
            s, m = int(tok[5]), int(tok[6])
        except ValueError:
            continue
        rows.append((x, y, zf + _DEPTH_ORIGIN_M, s, m))
    return np.asarray(rows, dtype=float).reshape(-1, 5)


def ppc_ice(
    path: str | os.PathLike[str],
    *,
    tilt: bool = True,
    anisotropy: bool = True,
    birefringence: bool = True,
    geometry: str | os.PathLike[str] | None = None,
):
    """Read a PPC ice folder (``icemodel.dat``, ``icemodel.par``, ``cfg.txt``, optional
    ``tilt.par``/``tilt.dat``, ``icemodel.bbl``) into a layered medium with its effects.

    Reproduces PPC's set-up (gpu/ini.cxx): g and the simplified-Liu fraction from cfg.txt;
    the SPICE exponents of icemodel.par must equal ariasim's; scattering per layer
    ``(b_e(400) (λ/400)^-α + bubbles - ra s_eff) / (1 - g)``; the effects as described in
    the module docstring. Switching an effect off here does what removing it from PPC's
    files does (birefringence off: no deflection and no subtraction).

    Arguments:
        path: The folder (e.g. PPC's ``ice/spice_bfr-v2``).
        tilt, anisotropy, birefringence: Switch each effect on (if the files define it).
        geometry: PPC geometry file for the tilt origin ``r_0`` (default: the folder's
            ``geo-f2k`` if present).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "icemodel.dat").write_text("2000 0.02 0.005 10\\n2010 0.03 0.006 10\\n")
        >>> _ = (d / "icemodel.par").write_text("0.8986 0\\n1.0841 0\\n6954.09 0\\n6617.75 0\\n")
        >>> _ = (d / "cfg.txt").write_text("1\\n1\\n0.35\\n0.9\\n")
        >>> m = ppc_ice(d)
        >>> m.n_layers, m.effects is None
        (2, True)
    """
    from ariasim.simulators.photons import optics

    folder = Path(path)
    if not folder.is_dir():
        raise InputError("PPC ice folder not found", path=folder)
    dat = folder / "icemodel.dat"
    if not dat.exists():
        raise InputError("icemodel.dat not found", path=dat)
    rows = []
    for line in dat.read_text().splitlines():
        tok = line.split()
        vals = []
        for t in tok[:8]:
            try:
                vals.append(float(t))
            except ValueError:
                break
        if len(vals) >= 4:
            rows.append(vals + [math.nan] * (8 - len(vals)))
    if not rows:
        raise InputError("no layer with 4 numbers", path=dat)
    arr = np.asarray(rows)
    if not np.all(np.isfinite(arr[:, :4])):
        raise InputError("non-finite value", path=dat)
    par = folder / "icemodel.par"
    if par.exists():
        pv = _numbers_pairs(par)
        ref = (
            optics.ALPHA_SCATTERING,
            optics.KAPPA_ABSORPTION,
            optics.A_TEMPERATURE_PER_M,
            optics.B_TEMPERATURE_NM,
        )
        names = ("alpha", "kappa", "A", "B")
        for k, (got, want) in enumerate(zip(pv[:4], ref, strict=False)):
            if abs(got - want) > 1e-4 * abs(want):
                raise InputError(
                    f"{names[k]} = {got} differs from ariasim's SPICE value {want}", path=par
                )
        if len(pv) > 4:
            raise InputError("dust absorption rescaling (lines 5-6) is not supported", path=par)
    cfg = read_ppc_cfg(folder / "cfg.txt")
    g, sl = float(cfg["g"]), float(cfg["sl_fraction"])
    depth = arr[:, 0]
    order = np.argsort(-depth)  # z ascending = depth descending
    if np.any(np.abs(np.diff(np.sort(depth), 2)) > 1e-3 * np.ptp(depth) / max(len(depth), 1)):
        raise InputError("layers must be uniformly spaced (as PPC requires)", path=dat)
    medium = optics.layered_ice_from_arrays(
        depth,
        arr[:, 1],
        arr[:, 2],
        arr[:, 3],
        g=g,
        sl_fraction=sl,
        name=f"ppc-ice:{folder.name}",
        source_path=str(folder),
    )
    d_z = depth[order]
    # per-layer extras, z ascending
    offset = np.zeros(depth.size)
    bbl = folder / "icemodel.bbl"
    if bbl.exists():
        bv = _numbers_flat(bbl)
        if len(bv) >= 3 and bv[0] > 0:
            be, bz, by = bv[:3]
            inside = (d_z < bz) & (d_z < by)
            offset += np.where(inside, be * (1 - d_z / bz) * (1 - d_z / by), 0.0)
    k1col = arr[order, 4]
    k2col = arr[order, 5]
    racol = np.where(np.isfinite(arr[order, 6]), arr[order, 6], 1.0)
    rbcol = racol * np.where(np.isfinite(arr[order, 7]), arr[order, 7], 1.0)
    ani = None
    if anisotropy and "anisotropy_azimuth_deg" in cfg:
        dk1, dk2 = math.exp(cfg["scattering_k1"]), math.exp(cfg["scattering_k2"])
        sk1 = np.where(np.isfinite(k1col), np.exp(np.nan_to_num(k1col)), dk1)
        sk2 = np.where(np.isfinite(k2col), np.exp(np.nan_to_num(k2col)), dk2)
        old_k = bool(np.any(sk1 != 1.0) or np.any(sk2 != 1.0))
        if cfg.get("old_absorption_scaling", 1.0) != 0.0 and old_k:
            raise InputError(
                "the old absorption anisotropy (cfg.txt line 16 != 0 with per-layer k1, k2) "
                "is not supported",
                path=folder / "cfg.txt",
            )
        ks = [math.exp(cfg.get(key, 0.0)) for key in ("k1", "k2", "kz")]
        ani = Anisotropy(
            cfg["anisotropy_azimuth_deg"], ks[0], ks[1], ks[2], scattering_k1=sk1, scattering_k2=sk2
        )
        if ani.absorption_k == (1.0, 1.0, 1.0) and not ani.has_scattering:
            ani = None
    bfr = None
    if birefringence and "bfr" in cfg:
        bfr = Birefringence(
            np.asarray(cfg["bfr"]), ra=racol, rb=rbcol, azimuth_deg=cfg["anisotropy_azimuth_deg"]
        )
        offset = offset - racol * bfr.s_eff
        if not np.any(bfr.params[[0, 4, 8]] != 0):
            bfr = None
    lt = None
    if tilt and (folder / "tilt.set").exists():
        raise InputError(
            "2-d layer tilt maps (tilt.set, tilt.map) are not supported; use tilt=False",
            path=folder / "tilt.set",
        )
    if tilt:
        geo = geometry if geometry is not None else folder / "geo-f2k"
        lt = read_tilt(folder, geo)
    fx = IceEffects(
        tilt=lt,
        anisotropy=ani,
        birefringence=bfr,
        scattering_offset_per_m=offset if np.any(offset != 0.0) else None,
    )
    if np.any(medium.b_e400_per_m + offset <= 0):  # at 400 nm; clamped at 0 in the kernel
        raise InputError("scattering <= 0 after the birefringence subtraction", path=dat)
    object.__setattr__(medium, "effects", fx if fx.active else None)
    return medium


def _numbers_pairs(path: Path) -> list[float]:
    """First number of each pair line of icemodel.par (value, error)."""
    out = []
    for line in path.read_text().splitlines():
        tok = line.split()
        if len(tok) >= 1:
            try:
                out.append(float(tok[0]))
            except ValueError:
                raise InputError("icemodel.par must hold numbers only", path=path) from None
    return out


def _numbers_flat(path: Path) -> list[float]:
    try:
        return [float(t) for t in path.read_text().split()]
    except ValueError:
        raise InputError("expected numbers", path=path) from None
