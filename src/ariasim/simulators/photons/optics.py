"""Optical properties: refractive index of ice, Cherenkov spectrum, SPICE ice, media.

All lengths are in metres, wavelengths in nanometres, coefficients in 1/m.

The ice parametrisation is the one shared by IceCube's PPC and clsim (the "SPICE" model
family). The effective scattering coefficient at wavelength λ is
``b_e(λ) = b_e(400) (λ/400)^-α`` with ``α = 0.8986``; the absorption coefficient is
``a(λ) = a_dust(400) (λ/400)^-κ + A exp(-B/λ) (1 + 0.01 δτ)`` with ``κ = 1.0841``,
``A = 6954.09 /m``, ``B = 6617.75 nm`` and ``δτ`` the temperature offset of the layer.
Photons are stepped with the geometric scattering coefficient ``b = b_e / (1 - g)``.

A :class:`Medium` is a stack of horizontal layers (one layer for a homogeneous medium).
Every coefficient factorises into a per-layer number times a per-wavelength factor, so the
propagation kernel computes the wavelength factors once per photon and the layer
coefficients in O(1) per layer crossing.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    M. G. Aartsen et al. (IceCube), "Measurement of South Pole ice transparency with the
    IceCube LED calibration system", NIM A 711 (2013) 73 (SPICE-Mie).
    D. Chirkin, "Evidence of optical anisotropy of the South Pole ice", ICRC 2013 (SPICE-Lea).
    C. Kopper et al., clsim, https://github.com/claudiok/clsim.
    I. M. Frank and I. E. Tamm, Dokl. Akad. Nauk SSSR 14 (1937) 109.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ariasim.errors import ConfigError, InputError
from ariasim.simulators.photons.ice_effects import ppc_ice

__all__ = [
    "ALPHA_SCATTERING",
    "A_TEMPERATURE_PER_M",
    "B_TEMPERATURE_NM",
    "DEPTH_ORIGIN_M",
    "DOM_RADIUS_M",
    "FINE_STRUCTURE",
    "KAPPA_ABSORPTION",
    "MEDIA",
    "SPEED_OF_LIGHT_M_PER_NS",
    "Medium",
    "bulk_ice",
    "constant_medium",
    "dom_wavelength_acceptance",
    "frank_tamm_dn_dx_dlambda",
    "frank_tamm_yield_per_m",
    "layered_ice",
    "layered_ice_from_arrays",
    "make_medium",
    "media_accepting",
    "medium_parameters",
    "n_group_ice",
    "n_phase_ice",
    "water",
]

#: Speed of light in vacuum [m/ns].
SPEED_OF_LIGHT_M_PER_NS = 0.299792458
#: Fine-structure constant.
FINE_STRUCTURE = 1.0 / 137.035999
#: SPICE wavelength exponent of the effective scattering coefficient.
ALPHA_SCATTERING = 0.8986
#: SPICE wavelength exponent of dust absorption.
KAPPA_ABSORPTION = 1.0841
#: SPICE intrinsic-ice absorption amplitude [1/m].
A_TEMPERATURE_PER_M = 6954.09
#: SPICE intrinsic-ice absorption wavelength scale [nm].
B_TEMPERATURE_NM = 6617.75
#: Detector z = DEPTH_ORIGIN_M - depth (IceCube coordinate origin) [m].
DEPTH_ORIGIN_M = 1948.07
#: Radius of the IceCube digital optical module [m].
DOM_RADIUS_M = 0.1651

_PHASE_COEFFS = (1.55749, -1.57988, 3.99993, -4.68271, 2.09354)
_GROUP_COEFFS = (1.227106, -0.954648, 1.42568, -0.711832)


def n_phase_ice(wavelength_nm: np.ndarray | float) -> np.ndarray | float:
    """Phase refractive index of South Pole ice (polynomial in λ [µm], PPC/clsim).

    Arguments:
        wavelength_nm: Wavelength(s) in nm (valid roughly 250-700 nm).
    """
    x = np.asarray(wavelength_nm, dtype=float) / 1000.0
    c = _PHASE_COEFFS
    out = c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * c[4])))
    return float(out) if np.ndim(out) == 0 else out


def n_group_ice(wavelength_nm: np.ndarray | float) -> np.ndarray | float:
    """Group refractive index of South Pole ice, ``n_phase * poly(λ)`` (PPC/clsim).

    Arguments:
        wavelength_nm: Wavelength(s) in nm.
    """
    x = np.asarray(wavelength_nm, dtype=float) / 1000.0
    c = _GROUP_COEFFS
    out = np.asarray(n_phase_ice(wavelength_nm)) * (c[0] + x * (c[1] + x * (c[2] + x * c[3])))
    return float(out) if np.ndim(out) == 0 else out


def frank_tamm_dn_dx_dlambda(
    wavelength_nm: np.ndarray | float,
    *,
    beta: float = 1.0,
    n_phase: np.ndarray | float | None = None,
) -> np.ndarray:
    """Frank-Tamm Cherenkov spectrum ``d²N/dx dλ = 2πα/λ² (1 - 1/(βn)²)`` [photons/m/nm].

    Arguments:
        wavelength_nm: Wavelength(s) in nm.
        beta: Particle speed over c.
        n_phase: Phase index; default the ice polynomial.
    """
    wl = np.asarray(wavelength_nm, dtype=float)
    n = n_phase_ice(wl) if n_phase is None else np.asarray(n_phase, dtype=float)
    val = 2.0 * math.pi * FINE_STRUCTURE / (wl * 1e-9) ** 2 * (1.0 - 1.0 / (beta * n) ** 2)
    return np.clip(val, 0.0, None) * 1e-9


@lru_cache(maxsize=1)
def _acceptance_table() -> tuple[np.ndarray, np.ndarray]:
    text = (
        resources.files("ariasim.simulators.photons")
        .joinpath("data/dom_wavelength_acceptance.csv")
        .read_text()
    )
    rows = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    arr = np.array([[float(v) for v in ln.split(",")] for ln in rows])
    return arr[:, 0], arr[:, 1]


def dom_wavelength_acceptance(
    wavelength_nm: np.ndarray | float, radius_m: float = DOM_RADIUS_M
) -> np.ndarray:
    """Probability that a photon hitting the DOM head-on is detected, ``A_eff(λ)/(π r²)``.

    The table is the IceCube DOM effective area (glass, gel and photocathode) from clsim's
    ``GetIceCubeDOMAcceptance`` (stored in ``data/dom_wavelength_acceptance.csv`` with its
    source), linearly interpolated, zero outside 260-680 nm.

    References:
        clsim, python/GetIceCubeDOMAcceptance.py (C. Kopper; K. Hoshina, photonics).

    Arguments:
        wavelength_nm: Wavelength(s) in nm.
        radius_m: Module radius whose cross-section normalises the effective area.
    """
    wl, area = _acceptance_table()
    return np.interp(np.asarray(wavelength_nm, dtype=float), wl, area, left=0.0, right=0.0) / (
        math.pi * radius_m**2
    )


def frank_tamm_yield_per_m(
    lo_nm: float = 300.0, hi_nm: float = 600.0, *, acceptance: bool = False, n_points: int = 20001
) -> float:
    """Cherenkov photons per metre of β=1 track in ice between two wavelengths.

    With ``acceptance=True`` the spectrum is weighted with the DOM acceptance
    ``A_eff(λ)/(π r²)``: PPC's "photons a nominal module would accept" (≈ 2450 /m).

    Arguments:
        lo_nm: Lower wavelength bound [nm].
        hi_nm: Upper wavelength bound [nm].
        acceptance: Weight with the DOM wavelength acceptance.
        n_points: Integration grid size (trapezoid rule).
    """
    x = np.linspace(lo_nm, hi_nm, n_points)
    y = frank_tamm_dn_dx_dlambda(x)
    if acceptance:
        y = y * dom_wavelength_acceptance(x)
    return float(np.trapezoid(y, x))


# --------------------------------------------------------------------------- media


@dataclass(frozen=True)
class Medium:
    """A stack of horizontal optical layers (z ascending); outermost layers are unbounded.

    Per layer ``i`` and photon wavelength ``λ`` the kernel uses

    * effective scattering ``b_e = b_e400[i] * fb(λ)``, geometric ``b = b_e / (1 - g)``;
    * absorption ``a = a_dust400[i] * fa(λ) + ft(λ) (1 + 0.01 dtau[i])``;

    with ``fb = (λ/400)^-α``, ``fa = (λ/400)^-κ``, ``ft = A exp(-B/λ)`` when
    ``wavelength_dependent`` (SPICE), and ``fb = fa = 1``, ``ft = 0`` otherwise (then
    ``b_e400`` and ``a_dust400`` are simply the wavelength-independent coefficients).

    Arguments:
        name: Label stored in the provenance.
        z_boundaries_m: Interior layer boundaries in detector z, ascending (n_layers - 1).
        b_e400_per_m: Effective scattering coefficient at 400 nm per layer [1/m].
        a_dust400_per_m: Dust absorption at 400 nm per layer [1/m].
        dtau: Temperature offset per layer (SPICE δτ).
        wavelength_dependent: Apply the SPICE wavelength dependence.
        g: Mean scattering cosine.
        sl_fraction: Fraction of simplified-Liu in the HG/SL mixture (default 0.35,
            bfr-v2 and the PPC benchmark configuration; SPICE Mie used 0.45).
        n_phase: Constant phase index, or ``None`` for the ice polynomial.
        n_group: Constant group index, or ``None`` for the ice polynomial.

    Example:
        >>> m = constant_medium(100.0, 25.0)
        >>> m.n_layers, round(float(m.absorption_per_m(400.0)), 4)
        (1, 0.01)
        >>> len(m.kernel_args())
        8
    """

    name: str
    z_boundaries_m: np.ndarray
    b_e400_per_m: np.ndarray
    a_dust400_per_m: np.ndarray
    dtau: np.ndarray
    wavelength_dependent: bool = True
    g: float = 0.9
    sl_fraction: float = 0.35
    n_phase: float | None = None
    n_group: float | None = None
    source_path: str | None = field(default=None, compare=False)
    #: Tilt, anisotropy, birefringence (:class:`~.ice_effects.IceEffects`); ``None``: off.
    effects: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for key in ("z_boundaries_m", "b_e400_per_m", "a_dust400_per_m", "dtau"):
            object.__setattr__(self, key, np.ascontiguousarray(getattr(self, key), dtype=float))
        n = self.b_e400_per_m.size
        if n < 1 or self.a_dust400_per_m.size != n or self.dtau.size != n:
            raise ConfigError(
                "layer arrays must be non-empty and of equal length", parameter="medium"
            )
        if self.z_boundaries_m.size != n - 1 or np.any(np.diff(self.z_boundaries_m) <= 0):
            raise ConfigError("need n_layers - 1 strictly ascending boundaries", parameter="medium")
        for key in ("b_e400_per_m", "a_dust400_per_m"):
            arr = getattr(self, key)
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ConfigError("coefficients must be finite and >= 0", parameter=key)
        if not 0.0 <= self.g < 1.0:
            raise ConfigError(f"mean cosine must be in [0, 1), got {self.g}", parameter="g")
        if not 0.0 <= self.sl_fraction <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {self.sl_fraction}", parameter="sl_fraction")
        for key in ("n_phase", "n_group"):
            v = getattr(self, key)
            if v is not None and not (v >= 1.0 and math.isfinite(v)):
                raise ConfigError(f"refractive index must be >= 1, got {v}", parameter=key)

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return int(self.b_e400_per_m.size)

    def wavelength_factors(self, wavelength_nm: np.ndarray | float) -> tuple:
        """Return ``(fb, fa, ft)`` (see the class docstring) for the given wavelengths."""
        wl = np.asarray(wavelength_nm, dtype=float)
        if not self.wavelength_dependent:
            one = np.ones_like(wl)
            return one, one, np.zeros_like(wl)
        r = wl / 400.0
        return (
            r ** (-ALPHA_SCATTERING),
            r ** (-KAPPA_ABSORPTION),
            A_TEMPERATURE_PER_M * np.exp(-B_TEMPERATURE_NM / wl),
        )

    def layer_index(self, z_m: np.ndarray | float) -> np.ndarray:
        """Index of the layer containing detector height ``z_m``."""
        return np.searchsorted(self.z_boundaries_m, np.asarray(z_m, dtype=float), side="right")

    def absorption_per_m(self, wavelength_nm: np.ndarray | float, layer: int = 0) -> np.ndarray:
        """Absorption coefficient [1/m] in ``layer`` at the given wavelength(s)."""
        _, fa, ft = self.wavelength_factors(wavelength_nm)
        return self.a_dust400_per_m[layer] * fa + ft * (1.0 + 0.01 * self.dtau[layer])

    def effective_scattering_per_m(
        self, wavelength_nm: np.ndarray | float, layer: int = 0
    ) -> np.ndarray:
        """Effective scattering coefficient b_e [1/m] in ``layer``."""
        fb, _, _ = self.wavelength_factors(wavelength_nm)
        return self.b_e400_per_m[layer] * fb

    def scattering_per_m(self, wavelength_nm: np.ndarray | float, layer: int = 0) -> np.ndarray:
        """Geometric scattering coefficient b = b_e/(1-g) [1/m] used for stepping."""
        return self.effective_scattering_per_m(wavelength_nm, layer) / (1.0 - self.g)

    def phase_index(self, wavelength_nm: np.ndarray | float) -> np.ndarray | float:
        """Phase refractive index at the given wavelength(s)."""
        if self.n_phase is not None:
            return np.full_like(np.asarray(wavelength_nm, dtype=float), self.n_phase)
        return n_phase_ice(wavelength_nm)

    def group_index(self, wavelength_nm: np.ndarray | float) -> np.ndarray | float:
        """Group refractive index at the given wavelength(s)."""
        if self.n_group is not None:
            return np.full_like(np.asarray(wavelength_nm, dtype=float), self.n_group)
        return n_group_ice(wavelength_nm)

    def kernel_args(self) -> tuple:
        """The medium as the compiled kernels take it.

        Returns:
            ``(zb, be400, ad400, dtau, wl_dependent, g, sl_fraction, n_group_const)``:
            the layer boundaries and per-layer coefficients (contiguous float64), whether
            the SPICE wavelength dependence applies, the phase-function parameters and the
            constant group index (``-1.0`` for the ice polynomial), in the order of the
            medium arguments of :func:`~.propagate.propagate_kernel` and
            :func:`~.shells.shell_kernel`.
        """
        ngc = -1.0 if self.n_group is None else float(self.n_group)
        return (
            self.z_boundaries_m,
            self.b_e400_per_m,
            self.a_dust400_per_m,
            self.dtau,
            bool(self.wavelength_dependent),
            float(self.g),
            float(self.sl_fraction),
            ngc,
        )

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "name": self.name,
            "n_layers": self.n_layers,
            "wavelength_dependent": self.wavelength_dependent,
            "g": self.g,
            "sl_fraction": self.sl_fraction,
            "n_phase": self.n_phase,
            "n_group": self.n_group,
            "source_path": self.source_path,
            "b_e400_per_m": self.b_e400_per_m.tolist() if self.n_layers <= 4 else "table",
            "a_dust400_per_m": self.a_dust400_per_m.tolist() if self.n_layers <= 4 else "table",
            **({"effects": self.effects.describe()} if self.effects is not None else {}),
        }


def _one_layer(name: str, b_e: float, a: float, dtau: float, **kw) -> Medium:
    return Medium(
        name=name,
        z_boundaries_m=np.empty(0),
        b_e400_per_m=np.array([b_e]),
        a_dust400_per_m=np.array([a]),
        dtau=np.array([dtau]),
        **kw,
    )


def bulk_ice(*, g: float = 0.9, sl_fraction: float = 0.35) -> Medium:
    """Homogeneous South Pole "bulk" ice with SPICE wavelength dependence.

    b_e(400) = 0.0233 /m, a_dust(400) = 0.00635 /m, δτ = 12.1 (λ_a ≈ 146 m at 400 nm).

    References:
        Aartsen et al., NIM A 711 (2013) 73; Chirkin, NIM A 725 (2013) 141.

    Arguments:
        g: Mean scattering cosine.
        sl_fraction: Simplified-Liu fraction of the phase function.
    """
    return _one_layer(
        "bulk-ice", 0.0233, 0.00635, 12.1, wavelength_dependent=True, g=g, sl_fraction=sl_fraction
    )


def water(
    *,
    absorption_length_m: float = 55.0,
    scattering_length_m: float = 50.0,
    g: float = 0.92,
    n_phase: float = 1.35,
    n_group: float = 1.38,
) -> Medium:
    """Homogeneous deep-sea water, wavelength-independent (a documented simplification).

    Absorption length 55 m (the peak near 470 nm), geometric scattering length 50 m with
    a pure Henyey-Greenstein phase function of g = 0.92, and constant indices
    n_phase = 1.35, n_group = 1.38 typical of sea water in the blue.

    References:
        clsim, python/MakeAntaresMediumProperties.py (ANTARES water).

    Arguments:
        absorption_length_m: Absorption length [m].
        scattering_length_m: Geometric scattering length [m].
        g: Mean scattering cosine.
        n_phase: Phase index.
        n_group: Group index.
    """
    for key, v in (
        ("absorption_length_m", absorption_length_m),
        ("scattering_length_m", scattering_length_m),
    ):
        if not (v > 0 and math.isfinite(v)):
            raise ConfigError(f"must be finite and > 0, got {v}", parameter=key)
    return _one_layer(
        "water",
        (1.0 - g) / scattering_length_m,
        1.0 / absorption_length_m,
        0.0,
        wavelength_dependent=False,
        g=g,
        sl_fraction=0.0,
        n_phase=n_phase,
        n_group=n_group,
    )


def constant_medium(
    absorption_length_m: float,
    effective_scattering_length_m: float,
    *,
    wavelength_dependent: bool = False,
    g: float = 0.9,
    sl_fraction: float = 0.35,
    n_phase: float | None = None,
    n_group: float | None = None,
) -> Medium:
    """A homogeneous medium with user-set absorption and effective scattering lengths.

    With ``wavelength_dependent=False`` the lengths hold at every wavelength; otherwise
    they are the 400 nm values and the SPICE wavelength dependence scales them (without
    the temperature term). ``inf`` disables a process.

    Arguments:
        absorption_length_m: λ_a = 1/a [m].
        effective_scattering_length_m: λ_e = 1/b_e [m].
        wavelength_dependent: Scale with the SPICE power laws.
        g: Mean scattering cosine.
        sl_fraction: Simplified-Liu fraction of the phase function.
        n_phase: Constant phase index (default: ice polynomial).
        n_group: Constant group index (default: ice polynomial).
    """
    for key, v in (
        ("absorption_length_m", absorption_length_m),
        ("effective_scattering_length_m", effective_scattering_length_m),
    ):
        if not (v > 0):
            raise ConfigError(f"must be > 0 (inf disables), got {v}", parameter=key)
    a = 0.0 if math.isinf(absorption_length_m) else 1.0 / absorption_length_m
    b = 0.0 if math.isinf(effective_scattering_length_m) else 1.0 / effective_scattering_length_m
    m = _one_layer(
        "constant",
        b,
        a,
        0.0,
        wavelength_dependent=wavelength_dependent,
        g=g,
        sl_fraction=sl_fraction,
        n_phase=n_phase,
        n_group=n_group,
    )
    if wavelength_dependent:  # keep only the dust terms: no temperature-dependent part
        object.__setattr__(m, "dtau", np.array([-100.0]))
    return m


def layered_ice_from_arrays(
    depth_m: np.ndarray,
    b_e400_per_m: np.ndarray,
    a_dust400_per_m: np.ndarray,
    dtau: np.ndarray,
    *,
    g: float = 0.9,
    sl_fraction: float = 0.35,
    name: str = "layered",
    source_path: str | None = None,
) -> Medium:
    """Layered ice from per-layer arrays (depth of layer centre, SPICE parameters).

    Layer boundaries lie midway between neighbouring centres; detector
    ``z = 1948.07 m - depth``. The top and bottom layers extend without bound.

    Arguments:
        depth_m: Depth of each layer centre [m] (any order, unique).
        b_e400_per_m: Effective scattering coefficient at 400 nm [1/m].
        a_dust400_per_m: Dust absorption coefficient at 400 nm [1/m].
        dtau: Temperature offset δτ.
        g: Mean scattering cosine.
        sl_fraction: Simplified-Liu fraction.
        name: Label.
        source_path: File the table came from (for provenance and errors).
    """
    depth = np.asarray(depth_m, dtype=float)
    z = DEPTH_ORIGIN_M - depth
    order = np.argsort(z)
    z = z[order]
    if np.any(np.diff(z) <= 0):
        raise InputError("layer depths must be unique", path=source_path, column="depth_m")
    bounds = 0.5 * (z[1:] + z[:-1])
    return Medium(
        name=name,
        z_boundaries_m=bounds,
        b_e400_per_m=np.asarray(b_e400_per_m, dtype=float)[order],
        a_dust400_per_m=np.asarray(a_dust400_per_m, dtype=float)[order],
        dtau=np.asarray(dtau, dtype=float)[order],
        wavelength_dependent=True,
        g=g,
        sl_fraction=sl_fraction,
        source_path=source_path,
    )


_LAYER_COLUMNS = ("depth_m", "b_e400", "a_dust400", "dtau")


def layered_ice(
    path: str | os.PathLike[str] | None = None, *, g: float = 0.9, sl_fraction: float = 0.35
) -> Medium:
    """Read a layered ice table.

    Two formats: PPC's ``icemodel.dat`` (``.dat``/``.txt``: whitespace-separated columns
    depth [m], b_e(400) [1/m], a_dust(400) [1/m], δτ, no header), or any table
    :func:`ariasim.io.read_table` reads (Parquet/CSV/ROOT) with columns
    ``depth_m, b_e400, a_dust400, dtau``.

    Arguments:
        path: The table file (default: the small synthetic example shipped with ariasim,
            :func:`example_ice_table_path`).
        g: Mean scattering cosine.
        sl_fraction: Simplified-Liu fraction.
    """
    p = Path(path) if path is not None else example_ice_table_path()
    if not p.exists():
        raise InputError("ice table not found", path=p)
    if p.suffix.lower() in (".dat", ".txt"):
        try:
            arr = np.loadtxt(p, comments="#", ndmin=2)
        except ValueError as exc:
            raise InputError(f"cannot parse ice table: {exc}", path=p) from exc
        if arr.shape[1] < 4:
            raise InputError(
                f"expected 4 columns (depth, b_e400, a_dust400, dtau), got {arr.shape[1]}", path=p
            )
        for j, col in enumerate(_LAYER_COLUMNS):
            if not np.all(np.isfinite(arr[:, j])):
                raise InputError("non-finite value", path=p, column=col)
        cols = [arr[:, j] for j in range(4)]
    else:
        from ariasim.io import read_table

        df = read_table(
            p,
            required=_LAYER_COLUMNS,
            finite=_LAYER_COLUMNS,
            dtypes=dict.fromkeys(_LAYER_COLUMNS, "float"),
        )
        cols = [df[c].to_numpy(dtype=float) for c in _LAYER_COLUMNS]
    for j, col in ((1, "b_e400"), (2, "a_dust400")):
        if np.any(cols[j] < 0):
            raise InputError("negative coefficient", path=p, column=col)
    return layered_ice_from_arrays(
        *cols, g=g, sl_fraction=sl_fraction, name=f"layered:{p.name}", source_path=str(p)
    )


def example_ice_table_path() -> Path:
    """Path of the small synthetic layered-ice example shipped with ariasim."""
    return Path(
        str(resources.files("ariasim.simulators.photons").joinpath("data/example_icemodel.dat"))
    )


#: The media by name: ``make_medium(name, **parameters)`` calls ``MEDIA[name]``. Each
#: factory is the one home of its medium's defaults.
MEDIA: dict[str, Callable[..., Medium]] = {
    "bulk-ice": bulk_ice,
    "water": water,
    "constant": constant_medium,
    "layered": layered_ice,
    "ppc-ice": ppc_ice,
}
#: Parameter names of :func:`make_medium` that a factory spells differently.
_MEDIUM_ALIASES = {"layered": {"ice_table": "path"}, "ppc-ice": {"ice_table": "path"}}


def medium_parameters(name: str) -> tuple[str, ...]:
    """Parameters (as :func:`make_medium` names them) that medium ``name`` accepts.

    Arguments:
        name: A key of :data:`MEDIA`.
    """
    if name not in MEDIA:
        raise ConfigError(
            f"unknown medium {name!r}; expected one of {', '.join(MEDIA)}", parameter="medium"
        )
    back = {v: k for k, v in _MEDIUM_ALIASES.get(name, {}).items()}
    return tuple(back.get(p, p) for p in inspect.signature(MEDIA[name]).parameters)


def media_accepting(parameter: str) -> list[str]:
    """Names of the media that accept ``parameter`` (as :func:`make_medium` names it)."""
    return [m for m in MEDIA if parameter in medium_parameters(m)]


def make_medium(spec: str | Medium, **parameters: Any) -> Medium:
    """Build a medium by name (a key of :data:`MEDIA`) from the parameters its factory takes.

    ``None`` values count as not given, so the factory's default applies. A parameter the
    chosen medium does not take is an error naming it (never silently dropped).

    Arguments:
        spec: ``"bulk-ice"`` (:func:`bulk_ice`), ``"water"`` (:func:`water`),
            ``"constant"`` (:func:`constant_medium`), ``"layered"`` (:func:`layered_ice`,
            the ice table given as ``ice_table``) or ``"ppc-ice"``
            (:func:`~.ice_effects.ppc_ice`: a PPC ice folder given as ``ice_table``, with
            ``tilt``, ``anisotropy``, ``birefringence`` switches), or a ready
            :class:`Medium` (returned unchanged, no parameters allowed).
        **parameters: Keyword arguments of that factory.

    Example:
        >>> make_medium("water", absorption_length_m=40.0).name
        'water'
        >>> make_medium("bulk-ice", ice_table="ice.dat")
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'ice_table': applies only to medium layered or ppc-ice
    """
    given = {k: v for k, v in parameters.items() if v is not None}
    if isinstance(spec, Medium):
        if given:
            raise ConfigError("a ready Medium takes no parameters", parameter=next(iter(given)))
        return spec
    accepted = medium_parameters(spec)
    for key in given:
        if key not in accepted:
            where = media_accepting(key)
            msg = (
                f"applies only to medium {' or '.join(where)}"
                if where
                else f"unknown medium parameter; {spec} takes {', '.join(accepted)}"
            )
            raise ConfigError(msg, parameter=key)
    factory = MEDIA[spec]
    required = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.default is inspect.Parameter.empty
    ]
    alias = _MEDIUM_ALIASES.get(spec, {})
    missing = [k for k in accepted if alias.get(k, k) in required and k not in given]
    if missing:
        raise ConfigError(f"medium {spec} needs {' and '.join(missing)}", parameter=missing[0])
    return factory(**{alias.get(k, k): v for k, v in given.items()})
