"""Spherical optical modules: geometry, acceptance, oversizing.

A :class:`Detector` is a set of spheres of radius ``radius_m`` at arbitrary positions
(a geometry table, or :func:`string_detector` for a regular array of strings).

Detection model (as in PPC/clsim): a photon whose straight step enters a sphere stops
there (each photon hits at most one module, the first it reaches). It is then detected
with probability ``acceptance(eta)`` where ``eta`` is the cosine between the photon's
reversed direction and the PMT axis, which points down (-z) as in IceCube, so
``eta = u_z``: up-going photons hit the photocathode head-on. With
``acceptance_mode="rejection"`` (default) a random number decides and every hit has
weight 1, like real data; with ``"weight"`` every geometric hit is kept with weight
``acceptance(eta)`` (and, for flasher light, ``A_eff(λ)/(π r²)``), which has less variance.

The wavelength acceptance ``A_eff(λ)/(π r²)`` of the IceCube DOM is folded into the
photon sources: Cherenkov light is drawn from Frank-Tamm × acceptance (PPC's 2450
photons/m) and flasher photons are thinned (or weighted) by it. ``wavelength_acceptance=
False`` makes the module accept every wavelength (Cherenkov light is then drawn from raw
Frank-Tamm between 300 and 600 nm).

Oversizing: the spheres are enlarged to ``R * radius_m`` and the number of propagated
photons is divided by ``R²``, so the expected number of hits is unchanged while the work
falls by ``R²``. The price is a timing bias: a photon is stopped up to ``(R - 1) r`` before
the true module surface (and the diffusive paths that reach the big sphere differ from
those reaching the small one), so hits arrive early by about 1-2 ns at 17 m and 3-9 ns at
125 m for R = 16 (PPC numbers), and the direct-light hit probability near the module is
distorted when the source is within a few ``R r``. Use ``oversize=1`` for timing studies.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC, oversize).
    R. Abbasi et al. (IceCube), "The IceCube data acquisition system", NIM A 601 (2009) 294.
    clsim, python/GetIceCubeDOMAngularSensitivity.py ("as.nominal" hole-ice polynomial).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ariasim.errors import ConfigError, InputError
from ariasim.simulators.photons.optics import DOM_RADIUS_M

__all__ = [
    "AS_NOMINAL",
    "Detector",
    "read_geometry",
    "single_module",
    "string_detector",
]

#: IceCube "as.nominal" angular acceptance, c0..c10 of a polynomial in eta.
AS_NOMINAL = (
    0.26266,
    0.47659,
    0.15480,
    -0.14588,
    0.17316,
    1.3070,
    0.44441,
    -2.3538,
    -1.3564,
    1.2098,
    0.81569,
)


@dataclass(frozen=True)
class Detector:
    """Spherical optical modules.

    Arguments:
        positions_m: (n, 3) module centres in detector coordinates [m].
        module_ids: Integer id of each module (default 0..n-1).
        radius_m: True module radius [m] (IceCube DOM 0.1651 m).
        oversize: Oversize factor R >= 1 (see the module docstring for its timing bias).
        angular_acceptance: ``"nominal"`` (IceCube as.nominal), ``"flat"``, or a sequence
            of polynomial coefficients c0, c1, ... in eta.
        wavelength_acceptance: Fold in the DOM wavelength acceptance (True) or not.
        acceptance_mode: ``"rejection"`` or ``"weight"``.
        cell_m: Cell size of the spatial index (None: automatic).

    Example:
        >>> det = Detector([[0.0, 0.0, 10.0], [0.0, 0.0, 20.0]], oversize=2.0)
        >>> det.n_modules, det.module_ids.tolist(), round(det.effective_radius_m, 4)
        (2, [0, 1], 0.3302)
    """

    positions_m: np.ndarray
    module_ids: np.ndarray | None = None
    radius_m: float = DOM_RADIUS_M
    oversize: float = 1.0
    angular_acceptance: str | tuple = "nominal"
    wavelength_acceptance: bool = True
    acceptance_mode: str = "rejection"
    cell_m: float | None = None

    def __post_init__(self) -> None:
        pos = np.ascontiguousarray(self.positions_m, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 1:
            raise ConfigError(
                f"expected an (n, 3) array, got shape {pos.shape}", parameter="positions_m"
            )
        if not np.all(np.isfinite(pos)):
            raise ConfigError("module positions must be finite", parameter="positions_m")
        object.__setattr__(self, "positions_m", pos)
        ids = (
            np.arange(len(pos), dtype=np.int64)
            if self.module_ids is None
            else np.asarray(self.module_ids, dtype=np.int64)
        )
        if ids.shape != (len(pos),) or len(np.unique(ids)) != len(ids):
            raise ConfigError("module ids must be unique, one per module", parameter="module_ids")
        object.__setattr__(self, "module_ids", ids)
        if not (self.radius_m > 0 and math.isfinite(self.radius_m)):
            raise ConfigError(f"must be > 0, got {self.radius_m}", parameter="radius_m")
        if not (self.oversize >= 1.0 and math.isfinite(self.oversize)):
            raise ConfigError(f"must be >= 1, got {self.oversize}", parameter="oversize")
        if self.acceptance_mode not in ("rejection", "weight"):
            raise ConfigError(
                f"expected 'rejection' or 'weight', got {self.acceptance_mode!r}",
                parameter="acceptance_mode",
            )
        acc = self.angular_acceptance
        if isinstance(acc, str):
            if acc not in ("nominal", "flat"):
                raise ConfigError(
                    f"expected 'nominal', 'flat' or coefficients, got {acc!r}",
                    parameter="angular_acceptance",
                )
        else:
            coeffs = tuple(float(c) for c in acc)
            if not coeffs or not all(math.isfinite(c) for c in coeffs):
                raise ConfigError(
                    "coefficients must be finite and non-empty", parameter="angular_acceptance"
                )
            object.__setattr__(self, "angular_acceptance", coeffs)
        if self.cell_m is not None and not self.cell_m > 0:
            raise ConfigError(f"must be > 0, got {self.cell_m}", parameter="cell_m")

    @property
    def n_modules(self) -> int:
        """Number of modules."""
        return int(self.positions_m.shape[0])

    @property
    def effective_radius_m(self) -> float:
        """Radius of the (oversized) spheres the photons are tested against."""
        return self.radius_m * self.oversize

    def acceptance_coefficients(self) -> np.ndarray:
        """Polynomial coefficients in eta (empty array for a flat acceptance)."""
        acc = self.angular_acceptance
        if acc == "flat":
            return np.zeros(0)
        if acc == "nominal":
            return np.asarray(AS_NOMINAL, dtype=float)
        return np.asarray(acc, dtype=float)

    def angular_acceptance_at(self, eta: np.ndarray | float) -> np.ndarray:
        """Acceptance (probability, clipped to [0, 1] in rejection mode) at ``eta``."""
        c = self.acceptance_coefficients()
        eta = np.asarray(eta, dtype=float)
        if c.size == 0:
            return np.ones_like(eta)
        return np.polynomial.polynomial.polyval(eta, c)

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "n_modules": self.n_modules,
            "radius_m": self.radius_m,
            "oversize": self.oversize,
            "angular_acceptance": (
                self.angular_acceptance
                if isinstance(self.angular_acceptance, str)
                else list(self.angular_acceptance)
            ),
            "wavelength_acceptance": self.wavelength_acceptance,
            "acceptance_mode": self.acceptance_mode,
        }


def single_module(position_m: tuple[float, float, float], **kw) -> Detector:
    """One module at ``position_m`` (other arguments as :class:`Detector`)."""
    return Detector(np.asarray([position_m], dtype=float), **kw)


def string_detector(
    n_strings: int,
    modules_per_string: int,
    *,
    string_spacing_m: float = 125.0,
    module_spacing_m: float = 17.0,
    layout: str = "grid",
    center_m: tuple[float, float, float] = (0.0, 0.0, 0.0),
    **kw,
) -> Detector:
    """A regular detector of vertical strings, modules equally spaced along each string.

    Arguments:
        n_strings: Number of strings N.
        modules_per_string: Modules per string M (module ids ``string * M + k``, k from the
            bottom up).
        string_spacing_m: ``grid``: spacing of a square grid of strings; ``ring``: radius of
            the circle the strings stand on.
        module_spacing_m: Vertical module spacing.
        layout: ``"grid"`` (square, row by row, centred) or ``"ring"`` (evenly on a circle).
        center_m: Centre of the array; modules are centred vertically on its z.
        **kw: Passed to :class:`Detector` (radius_m, oversize, acceptance...).
    """
    if n_strings < 1 or modules_per_string < 1:
        raise ConfigError(
            "need at least one string and one module per string", parameter="n_strings"
        )
    if string_spacing_m <= 0 or module_spacing_m <= 0:
        raise ConfigError("spacings must be > 0", parameter="string_spacing_m")
    if layout == "ring":
        phi = 2 * math.pi * np.arange(n_strings) / n_strings
        xy = string_spacing_m * np.column_stack([np.cos(phi), np.sin(phi)])
    elif layout == "grid":
        side = math.ceil(math.sqrt(n_strings))
        k = np.arange(n_strings)
        xy = string_spacing_m * np.column_stack([k % side, k // side]).astype(float)
        xy -= xy.mean(axis=0)
    else:
        raise ConfigError(f"expected 'grid' or 'ring', got {layout!r}", parameter="layout")
    zs = module_spacing_m * (np.arange(modules_per_string) - (modules_per_string - 1) / 2.0)
    pos = np.empty((n_strings * modules_per_string, 3))
    for s in range(n_strings):
        sl = slice(s * modules_per_string, (s + 1) * modules_per_string)
        pos[sl, 0] = xy[s, 0] + center_m[0]
        pos[sl, 1] = xy[s, 1] + center_m[1]
        pos[sl, 2] = zs + center_m[2]
    return Detector(pos, **kw)


def read_geometry(path: str | os.PathLike[str], **kw) -> Detector:
    """Read module positions from a table with columns ``module_id, x, y, z`` (metres).

    Any format :func:`ariasim.io.read_table` reads (Parquet, CSV, ROOT).

    Arguments:
        path: The geometry file.
        **kw: Passed to :class:`Detector`.
    """
    from ariasim.io import read_table

    cols = ("module_id", "x", "y", "z")
    df = read_table(
        path,
        required=cols,
        finite=cols,
        dtypes={"module_id": "int", "x": "float", "y": "float", "z": "float"},
    )
    if len(df) == 0:
        raise InputError("geometry table has no rows", path=path)
    ids = df["module_id"].to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise InputError("duplicate module ids", path=path, column="module_id")
    return Detector(df[["x", "y", "z"]].to_numpy(dtype=float), module_ids=ids, **kw)
