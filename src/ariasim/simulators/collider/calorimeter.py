"""Calorimeter full simulation of the generic collider detector: ECAL + HCAL.

Public interface (used by the collider simulation and reconstruction):

* :class:`ECALConfig`, :class:`HCALConfig` (frozen dataclasses with ``from_dict``),
  :data:`ECAL_PRESETS`, :data:`HCAL_PRESETS`;
* :func:`simulate_calorimeters` -> :class:`CaloResult` (cells, clusters, deposits tables).

Physics (details in :mod:`.calo_showers` and :mod:`.calo_clustering`): stochastic EM showers
from the Grindhammer-Peters parametrisation with correlated fluctuations, hadron showers with a
fluctuating EM fraction, e/h and Bock longitudinal profiles, muon ionisation with Moyal
fluctuations, photostatistics or simulated sampling (active-layer crossings), Gaussian cell
noise, zero suppression, topological clustering. Resolutions are outputs, never inputs.

Geometry: ECAL and HCAL are projective eta-phi grids (barrel + endcaps as one grid up to
``eta_max``); the front face is a cylinder of radius ``r_inner_m`` closed by endcap discs at
``|z| = z_endcap_m``. A transverse shower displacement d (cm) at transverse radius rho maps to
d(eta) = d_theta/rho, d(phi) = d_phi/rho. Particles with |eta| > ECAL ``eta_max`` deposit
nothing.

Calibration (documented choice): cell energies are at the electromagnetic (EM) scale, i.e. the
visible signal divided by the sampling fraction (sampling) or the photoelectron yield
(homogeneous). The ECAL cluster energy is further multiplied by one constant, obtained like a
test-beam calibration: the inverse of the mean clustered ECAL energy of 50 GeV electrons
(simulated once per configuration with a fixed internal seed), so that electrons and photons
are unbiased on average at high energy. The HCAL part is used at the EM scale. Hadrons are
therefore NOT corrected for non-compensation: their response is below one (e/pi > 1 when
e/h > 1) and approaches one as the EM fraction grows with energy; a hadron calibration belongs
to the reconstruction. ``energy_gev`` of a cluster = calibrated ECAL + EM-scale HCAL.

References:
    G. Grindhammer, M. Rudowicz, S. Peters, NIM A 290 (1990) 469; hep-ex/0001020.
    CMS Collaboration, "The CMS experiment at the CERN LHC", JINST 3 (2008) S08004
    (PbWO4 ECAL, brass/scintillator HCAL numbers of the default presets).
    CMS ECAL test beam: P. Adzic et al., JINST 2 (2007) P04004 (2.8 %/sqrt(E), 0.12 GeV, 0.3 %).
    CLD / FCC-ee detector concept: N. Bacchetta et al., arXiv:1911.12230 (Si-W ECAL,
    steel/scintillator HCAL of the "fcc" presets).
    R. Wigmans, Calorimetry, 2nd ed. (2017): sampling fluctuations 2.7 % sqrt(d/f_samp).
    Particle Data Group, Review of Particle Physics, material tables.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, special

from ariasim.errors import ConfigError
from ariasim.simulators.collider import calo_showers as _sh
from ariasim.simulators.collider.calo_clustering import cluster_cells

__all__ = [
    "ECAL_PRESETS",
    "HCAL_PRESETS",
    "CaloResult",
    "ECALConfig",
    "HCALConfig",
    "crossing_moments_gev",
    "ecal_calibration",
    "expected_sampling_term",
    "simulate_calorimeters",
]

_KINDS = ("homogeneous", "sampling")
_WMAX = 60  # largest local window half-width (cells)
_CHUNK_ENTRIES = 8_000_000  # output-buffer entries per kernel call

# --------------------------------------------------------------------------- presets
ECAL_PRESETS: dict[str, dict[str, Any]] = {
    # CMS-like lead-tungstate crystal barrel + endcaps (JINST 3 S08004; PDG PbWO4 properties)
    "cms-pbwo4": {},
    # FCC-ee CLD-like silicon-tungsten sampling ECAL: 40 x (1.9 mm W + 0.5 mm Si), 5 mm cells
    "fcc-siw": {
        "kind": "sampling",
        "r_inner_m": 2.15,
        "z_endcap_m": 2.31,
        "eta_max": 2.9,
        "cell_deta": 0.0025,
        "cell_dphi": 0.0025,
        "x0_cm": 0.44,
        "moliere_radius_cm": 1.15,
        "critical_energy_gev": 0.00829,
        "z_eff": 72.1,
        "lambda_i_cm": 11.9,
        "density_g_cm3": 15.8,
        "z_over_a": 0.405,
        "depth_x0": 21.9,
        "e_over_h": 2.0,
        "mip_dedx_gev_per_cm": 0.0183,
        "sampling_fraction": 0.0442,
        "active_thickness_mm": 0.5,
        "passive_thickness_mm": 1.9,
        "active_z": 14.0,
        "passive_z": 74.0,
        "active_dedx_gev_per_mm": 3.88e-4,
        "photoelectrons_per_gev": 0.0,
        "excess_noise_factor": 1.0,
        "noise_gev": 0.0005,
        "zs_threshold_gev": 0.0025,
        "seed_threshold_gev": 0.1,
    },
}

HCAL_PRESETS: dict[str, dict[str, Any]] = {
    # CMS-like brass/scintillator barrel HCAL (50.5 mm brass + 3.7 mm scintillator)
    "cms-brass": {},
    # deeper, finer steel/scintillator HCAL (60 x (19 mm Fe + 3 mm scintillator), 3 cm tiles)
    "fcc-fe-scint": {
        "r_inner_m": 2.4,
        "z_endcap_m": 2.55,
        "eta_max": 2.9,
        "cell_deta": 0.0125,
        "cell_dphi": 0.0125,
        "lambda_i_cm": 18.8,
        "x0_cm": 2.02,
        "moliere_radius_cm": 2.0,
        "critical_energy_gev": 0.0217,
        "z_eff": 26.0,
        "density_g_cm3": 6.2,
        "z_over_a": 0.466,
        "depth_lambda": 7.0,
        "e_over_h": 1.36,
        "mip_dedx_gev_per_cm": 0.0101,
        "sampling_fraction": 0.0269,
        "active_thickness_mm": 3.0,
        "passive_thickness_mm": 19.0,
        "active_z": 3.5,
        "passive_z": 26.0,
        "photoelectrons_per_gev": 670.0,
        "excess_noise_factor": 1.1,
        "noise_gev": 0.005,
        "zs_threshold_gev": 0.02,
        "seed_threshold_gev": 0.2,
        "cluster_dr": 0.15,
    },
}


def _check_positive(name: str, value: float, prefix: str, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and ok):
        raise ConfigError(
            f"must be {'>= 0' if allow_zero else '> 0'} and finite, got {value!r}",
            parameter=f"{prefix}.{name}",
        )


def _from_dict(
    cls: type,
    d: Mapping[str, Any],
    presets: Mapping[str, Mapping[str, Any]],
    default_preset: str,
    prefix: str,
) -> Any:
    if not isinstance(d, Mapping):
        raise ConfigError(f"expected a table, got {type(d).__name__}", parameter=prefix)
    values = dict(d)
    preset = values.pop("preset", default_preset)
    if preset not in presets:
        raise ConfigError(
            f"unknown preset {preset!r}; known: {sorted(presets)}", parameter=f"{prefix}.preset"
        )
    merged = dict(presets[preset])
    names = {f.name for f in dataclasses.fields(cls)}
    for key, val in values.items():
        if key not in names:
            raise ConfigError(
                f"unknown key {key!r}; known: {sorted(names)}", parameter=f"{prefix}.{key}"
            )
        merged[key] = val
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in merged:
            continue
        val = merged[f.name]
        if f.name == "kind":
            kwargs[f.name] = str(val)
        elif f.name == "sr_halfwidth":
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise ConfigError(
                    f"expected an integer, got {val!r}", parameter=f"{prefix}.{f.name}"
                )
            kwargs[f.name] = int(val)
        else:
            try:
                kwargs[f.name] = float(val)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"expected a number, got {val!r}", parameter=f"{prefix}.{f.name}"
                ) from exc
    return cls(**kwargs)


@dataclass(frozen=True)
class ECALConfig:
    """Electromagnetic calorimeter (defaults: CMS-like PbWO4 crystals).

    Arguments:
        kind: "homogeneous" (crystals: photostatistics) or "sampling" (absorber + active
            layers: simulated active-layer crossings).
        r_inner_m: Radius of the barrel front face.
        z_endcap_m: |z| of the endcap front faces.
        eta_max: Acceptance; particles with |eta| beyond deposit nothing.
        cell_deta, cell_dphi: Cell size (rounded to fit the grid exactly).
        x0_cm: (Effective) radiation length.
        moliere_radius_cm: (Effective) Moliere radius.
        critical_energy_gev: (Effective) critical energy, Grindhammer-Peters definition.
        z_eff: Effective atomic number (GP parametrisation, spot counts).
        lambda_i_cm: Nuclear interaction length (hadron showers may start in the ECAL).
        density_g_cm3, z_over_a: Material for the Landau width of ionisation losses.
        depth_x0: Depth in radiation lengths (longitudinal leakage beyond).
        e_over_h: e/h of the ECAL for the non-EM part of hadron showers.
        mip_dedx_gev_per_cm: Mean ionisation loss of a minimum-ionising particle.
        sampling_fraction: MIP sampling fraction (sampling kind; 1 for homogeneous).
        active_thickness_mm, passive_thickness_mm: Layer thicknesses (sampling kind).
        active_z, passive_z: Atomic numbers of active / passive media (GP e/mip correction).
        active_dedx_gev_per_mm: MIP dE/dx in the active medium (sampling kind).
        photoelectrons_per_gev: Photoelectron yield per GeV at the EM scale (0 = none).
        excess_noise_factor: Photodetector gain-fluctuation excess noise factor F >= 1.
        noise_gev: Gaussian electronic noise per cell (EM scale).
        zs_threshold_gev: Zero suppression: cells with measured energy <= this are dropped
            (``-inf`` keeps every cell with a deposit).
        seed_threshold_gev: Minimum energy of a cluster seed.
        sr_threshold_gev, sr_halfwidth: Selective readout (as the CMS ECAL): around every
            cell measuring more than ``sr_threshold_gev`` the (2 sr_halfwidth + 1)^2 cells
            are read out without zero suppression (empty ones carry pure noise).
        spot_scale: Multiplier of the GP number of energy spots (1 = GP).
        miscalibration: Response of the cells relative to what the test-beam calibration
            assumes (1 = calibrated; 1.02: every ECAL cell measures 2 % more), e.g. a
            detector playing "data" against a calibrated simulation.
        intercalibration_spread: Relative spread of the cell-to-cell calibration errors
            (a constant term): each ECAL cell's signal is multiplied by ``1 + spread z``,
            ``z`` standard normal from a fixed map (a fixed internal seed, the same for
            every event, like a real detector's residual miscalibration).

    Example:
        >>> from ariasim.simulators.collider.calorimeter import ECALConfig
        >>> ecal = ECALConfig.from_dict({"preset": "cms-pbwo4", "depth_x0": 20.0})
        >>> ecal.kind, round(ecal.depth_cm, 2)
        ('homogeneous', 17.8)
    """

    kind: str = "homogeneous"
    r_inner_m: float = 1.29
    z_endcap_m: float = 3.15
    eta_max: float = 3.0
    cell_deta: float = 0.0174
    cell_dphi: float = 2.0 * math.pi / 360.0
    x0_cm: float = 0.89
    moliere_radius_cm: float = 2.19
    critical_energy_gev: float = 0.0089
    z_eff: float = 68.4
    lambda_i_cm: float = 20.3
    density_g_cm3: float = 8.28
    z_over_a: float = 0.413
    depth_x0: float = 25.8
    e_over_h: float = 2.0
    mip_dedx_gev_per_cm: float = 0.0102
    sampling_fraction: float = 1.0
    active_thickness_mm: float = 0.0
    passive_thickness_mm: float = 0.0
    active_z: float = 68.4
    passive_z: float = 68.4
    active_dedx_gev_per_mm: float = 0.0
    photoelectrons_per_gev: float = 4500.0
    excess_noise_factor: float = 2.0
    noise_gev: float = 0.04
    zs_threshold_gev: float = 0.16
    seed_threshold_gev: float = 0.4
    sr_threshold_gev: float = 1.0
    sr_halfwidth: int = 2
    spot_scale: float = 1.0
    miscalibration: float = 1.0
    intercalibration_spread: float = 0.0

    def __post_init__(self) -> None:
        _validate_common(self, "ecal")
        _check_positive("depth_x0", self.depth_x0, "ecal")
        _check_positive("miscalibration", self.miscalibration, "ecal")
        if not 0.0 <= self.intercalibration_spread <= 0.3:  # NaN too
            raise ConfigError(
                f"must be in [0, 0.3], got {self.intercalibration_spread!r}",
                parameter="ecal.intercalibration_spread",
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ECALConfig:
        """Build from a mapping; ``preset`` (one of :data:`ECAL_PRESETS`) then overrides.

        Arguments:
            d: Mapping of field names to values, optionally with "preset".

        Raises:
            ConfigError: unknown preset or key (parameter "ecal.<key>"), invalid value.
        """
        return _from_dict(cls, d, ECAL_PRESETS, "cms-pbwo4", "ecal")

    @property
    def depth_cm(self) -> float:
        """Depth along the particle direction in cm."""
        return self.depth_x0 * self.x0_cm


@dataclass(frozen=True)
class HCALConfig:
    """Hadronic calorimeter (defaults: CMS-like brass/scintillator sampling HCAL).

    Arguments:
        kind: "sampling" (default) or "homogeneous".
        r_inner_m, z_endcap_m, eta_max, cell_deta, cell_dphi: Geometry as for the ECAL.
        lambda_i_cm: (Effective) nuclear interaction length.
        x0_cm, moliere_radius_cm, critical_energy_gev, z_eff: EM properties (EM part of
            hadron showers).
        density_g_cm3, z_over_a: Material for the Landau width of ionisation losses.
        depth_lambda: Depth in interaction lengths (leakage beyond).
        e_over_h: Ratio of EM to non-EM response.
        mip_dedx_gev_per_cm: Mean MIP energy loss (EM-scale equivalent).
        sampling_fraction, active_thickness_mm, passive_thickness_mm, active_z, passive_z,
            active_dedx_gev_per_mm: Sampling structure.
        photoelectrons_per_gev, excess_noise_factor: Photodetection at the EM scale.
        noise_gev, zs_threshold_gev, seed_threshold_gev: Noise per cell, zero suppression,
            seeds of HCAL-only clusters.
        sr_threshold_gev, sr_halfwidth: Selective readout as for the ECAL.
        cluster_dr: Delta R for linking HCAL to ECAL clusters and growing HCAL-only clusters.
        hadronic_crossing_factor: Energy per active-layer crossing of the non-EM shower part
            relative to the EM part (slow spallation protons ionise densely, so fewer, larger
            crossings; Wigmans: hadronic sampling fluctuations ~ 2x EM, i.e. 4x variance).
        spots_per_gev: Energy spots per GeV of hadron shower.
        fem_k, fem_e0_gev: Mean EM fraction 1 - (E/E0)^(k-1) (Gabriel et al. 1994).
        fem_concentration: Beta-distribution concentration a+b of the EM fraction
            (10 gives sigma(f_em) ~ 0.15 at 10 GeV).

    Example:
        >>> from ariasim.simulators.collider.calorimeter import HCALConfig
        >>> hcal = HCALConfig()
        >>> hcal.kind, hcal.depth_lambda, round(hcal.depth_cm, 1)
        ('sampling', 5.8, 95.1)
    """

    kind: str = "sampling"
    r_inner_m: float = 1.77
    z_endcap_m: float = 3.9
    eta_max: float = 3.0
    cell_deta: float = 0.087
    cell_dphi: float = 2.0 * math.pi / 72.0
    lambda_i_cm: float = 16.4
    x0_cm: float = 1.65
    moliere_radius_cm: float = 1.9
    critical_energy_gev: float = 0.0196
    z_eff: float = 29.3
    density_g_cm3: float = 7.9
    z_over_a: float = 0.46
    depth_lambda: float = 5.8
    e_over_h: float = 1.4
    mip_dedx_gev_per_cm: float = 0.0115
    sampling_fraction: float = 0.0119
    active_thickness_mm: float = 3.7
    passive_thickness_mm: float = 50.5
    active_z: float = 3.5
    passive_z: float = 29.3
    active_dedx_gev_per_mm: float = 2.0e-4
    photoelectrons_per_gev: float = 30.0
    excess_noise_factor: float = 1.2
    noise_gev: float = 0.2
    zs_threshold_gev: float = 0.8
    seed_threshold_gev: float = 1.0
    sr_threshold_gev: float = 1.0
    sr_halfwidth: int = 1
    cluster_dr: float = 0.2
    hadronic_crossing_factor: float = 4.0
    spots_per_gev: float = 50.0
    fem_k: float = 0.82
    fem_e0_gev: float = 1.0
    fem_concentration: float = 10.0

    def __post_init__(self) -> None:
        _validate_common(self, "hcal")
        for name in (
            "depth_lambda",
            "cluster_dr",
            "hadronic_crossing_factor",
            "spots_per_gev",
            "fem_e0_gev",
            "fem_concentration",
        ):
            _check_positive(name, getattr(self, name), "hcal")
        if not 0.0 < self.fem_k < 1.0:
            raise ConfigError(f"must be in (0, 1), got {self.fem_k!r}", parameter="hcal.fem_k")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HCALConfig:
        """Build from a mapping; ``preset`` (one of :data:`HCAL_PRESETS`) then overrides.

        Arguments:
            d: Mapping of field names to values, optionally with "preset".

        Raises:
            ConfigError: unknown preset or key (parameter "hcal.<key>"), invalid value.
        """
        return _from_dict(cls, d, HCAL_PRESETS, "cms-brass", "hcal")

    @property
    def depth_cm(self) -> float:
        """Depth along the particle direction in cm."""
        return self.depth_lambda * self.lambda_i_cm


def _validate_common(cfg: ECALConfig | HCALConfig, prefix: str) -> None:
    if cfg.kind not in _KINDS:
        raise ConfigError(f"must be one of {_KINDS}, got {cfg.kind!r}", parameter=f"{prefix}.kind")
    for name in (
        "r_inner_m",
        "z_endcap_m",
        "eta_max",
        "cell_deta",
        "cell_dphi",
        "x0_cm",
        "moliere_radius_cm",
        "critical_energy_gev",
        "z_eff",
        "lambda_i_cm",
        "density_g_cm3",
        "z_over_a",
        "e_over_h",
        "mip_dedx_gev_per_cm",
        "sampling_fraction",
        "active_z",
        "passive_z",
    ):
        _check_positive(name, getattr(cfg, name), prefix)
    if hasattr(cfg, "spot_scale"):
        _check_positive("spot_scale", cfg.spot_scale, prefix)
    for name in (
        "photoelectrons_per_gev",
        "noise_gev",
        "seed_threshold_gev",
        "active_thickness_mm",
        "passive_thickness_mm",
        "active_dedx_gev_per_mm",
    ):
        _check_positive(name, getattr(cfg, name), prefix, allow_zero=True)
    if not 0 <= cfg.sr_halfwidth <= 10:
        raise ConfigError("must be an integer in [0, 10]", parameter=f"{prefix}.sr_halfwidth")
    if math.isnan(cfg.sr_threshold_gev):
        raise ConfigError("must not be NaN", parameter=f"{prefix}.sr_threshold_gev")
    if cfg.z_eff <= 1.0:
        raise ConfigError("must be > 1", parameter=f"{prefix}.z_eff")
    if not cfg.excess_noise_factor >= 1.0:  # NaN too
        raise ConfigError("must be >= 1", parameter=f"{prefix}.excess_noise_factor")
    if math.isnan(cfg.zs_threshold_gev):
        raise ConfigError("must not be NaN", parameter=f"{prefix}.zs_threshold_gev")
    if cfg.sampling_fraction > 1.0:
        raise ConfigError("must be <= 1", parameter=f"{prefix}.sampling_fraction")
    if cfg.kind == "sampling":
        for name in ("active_thickness_mm", "passive_thickness_mm", "active_dedx_gev_per_mm"):
            _check_positive(name, getattr(cfg, name), prefix)
        if cfg.sampling_fraction >= 1.0:
            raise ConfigError(
                "a sampling calorimeter needs sampling_fraction < 1",
                parameter=f"{prefix}.sampling_fraction",
            )
    if cfg.eta_max / cfg.cell_deta > 20000 or 2 * math.pi / cfg.cell_dphi > 20000:
        raise ConfigError(
            "grid too fine (more than 20000 cells along an axis)", parameter=f"{prefix}.cell_deta"
        )


# ------------------------------------------------------------------ derived quantities
def crossing_moments_gev(cfg: ECALConfig | HCALConfig) -> tuple[float, float]:
    """First two moments of the visible energy per active-layer crossing (GeV, GeV^2).

    Shower electrons crossing an active layer of thickness d are taken isotropic (crossing
    density in cos(theta) is 2 cos(theta)), deposit dE/dx d / cos(theta) but at most their
    residual kinetic energy K, exponential with mean the critical energy.

    References:
        U. Amaldi, Phys. Scripta 23 (1981) 409; Fabjan & Gianotti, RMP 75 (2003) 1243.

    Arguments:
        cfg: A sampling ECAL or HCAL configuration.
    """
    a = cfg.active_dedx_gev_per_mm * cfg.active_thickness_mm
    eps = cfg.critical_energy_gev
    if a <= 0:
        return 0.0, 0.0

    def m1(c: float) -> float:
        return 2.0 * c * eps * -math.expm1(-a / (c * eps)) if c > 0 else 0.0

    def m2(c: float) -> float:
        if c <= 0:
            return 0.0
        u = a / (c * eps)
        return 2.0 * c * 2.0 * eps**2 * (1.0 - math.exp(-u) * (1.0 + u))

    x1 = integrate.quad(m1, 0.0, 1.0, limit=200)[0]
    x2 = integrate.quad(m2, 0.0, 1.0, limit=200)[0]
    return x1, x2


def expected_sampling_term(cfg: ECALConfig | HCALConfig) -> dict[str, float]:
    """Sampling stochastic terms (fraction at 1 GeV) for EM showers.

    Returns ``{"model": sqrt(E[X^2]/E[X] / f), "wigmans": 0.027 sqrt(d[mm]/f)}``: the first is
    what the simulated crossing process implies, the second the empirical rule it should
    reproduce to 10-20 % for scintillator / liquid-argon-like active layers.
    """
    x1, x2 = crossing_moments_gev(cfg)
    f = cfg.sampling_fraction
    model = math.sqrt(x2 / x1 / f) if x1 > 0 else 0.0
    return {"model": model, "wigmans": 0.027 * math.sqrt(cfg.active_thickness_mm / f)}


def _grid(cfg: ECALConfig | HCALConfig) -> tuple[int, int, float, float]:
    neta = max(1, round(2.0 * cfg.eta_max / cfg.cell_deta))
    nphi = max(1, round(2.0 * math.pi / cfg.cell_dphi))
    return neta, nphi, 2.0 * cfg.eta_max / neta, 2.0 * math.pi / nphi


def _params(cfg: ECALConfig | HCALConfig, hcal: HCALConfig) -> np.ndarray:
    p = np.zeros(_sh.N_PARAMS)
    neta, nphi, deta, dphi = _grid(cfg)
    p[_sh.P_SAMPLING] = 1.0 if cfg.kind == "sampling" else 0.0
    p[_sh.P_R_INNER_CM] = cfg.r_inner_m * 100.0
    p[_sh.P_Z_ENDCAP_CM] = cfg.z_endcap_m * 100.0
    p[_sh.P_ETA_MAX] = cfg.eta_max
    p[_sh.P_DETA] = deta
    p[_sh.P_DPHI] = dphi
    p[_sh.P_NETA] = neta
    p[_sh.P_NPHI] = nphi
    p[_sh.P_X0_CM] = cfg.x0_cm
    p[_sh.P_RM_CM] = cfg.moliere_radius_cm
    p[_sh.P_EC_GEV] = cfg.critical_energy_gev
    p[_sh.P_Z] = cfg.z_eff
    p[_sh.P_LAMBDA_CM] = cfg.lambda_i_cm
    p[_sh.P_DEPTH_CM] = cfg.depth_cm
    p[_sh.P_E_OVER_H] = cfg.e_over_h
    p[_sh.P_DEDX_GEV_PER_CM] = cfg.mip_dedx_gev_per_cm
    p[_sh.P_XI_GEV_PER_CM] = 0.1535e-3 * cfg.z_over_a * cfg.density_g_cm3
    p[_sh.P_FSAMP] = cfg.sampling_fraction
    layer_cm = (cfg.active_thickness_mm + cfg.passive_thickness_mm) / 10.0
    p[_sh.P_LAYER_X0] = layer_cm / cfg.x0_cm if cfg.kind == "sampling" else 0.0
    p[_sh.P_EHAT] = 1.0 / (1.0 + 0.007 * (cfg.passive_z - cfg.active_z))
    p[_sh.P_PE_PER_GEV] = cfg.photoelectrons_per_gev
    p[_sh.P_ENF] = cfg.excess_noise_factor
    x1, x2 = crossing_moments_gev(cfg) if cfg.kind == "sampling" else (1.0, 1.0)
    p[_sh.P_XMEAN_GEV] = x1
    p[_sh.P_X2MEAN_GEV2] = x2
    p[_sh.P_SPOT_SCALE] = getattr(cfg, "spot_scale", 1.0)
    p[_sh.P_HAD_CROSS] = hcal.hadronic_crossing_factor
    p[_sh.P_HAD_SPOTS_PER_GEV] = hcal.spots_per_gev
    p[_sh.P_FEM_K] = hcal.fem_k
    p[_sh.P_FEM_E0] = hcal.fem_e0_gev
    p[_sh.P_FEM_CONC] = hcal.fem_concentration
    p[_sh.P_WMAX] = _WMAX
    return p


# --------------------------------------------------------------------------- species
_MUON_MASS = 0.1056584
_BARYON_MASS = {
    2212: 0.938272,
    2112: 0.939565,
    3122: 1.115683,
    3222: 1.18937,
    3112: 1.197449,
    3212: 1.192642,
    3322: 1.31486,
    3312: 1.32171,
    3334: 1.67245,
}
_CHARGED_HADRONS = {211, 321, 2212, 3222, 3112, 3312, 3334, 411, 431, 521, 4122}
_NEUTRINOS = {12, 14, 16, 18}


def _classify(pdg: np.ndarray, energy: np.ndarray) -> tuple[np.ndarray, ...]:
    apdg = np.abs(pdg)
    kind = np.full(pdg.shape, _sh.KIND_HADRON, dtype=np.int64)
    kind[np.isin(apdg, (11,))] = _sh.KIND_ELECTRON
    kind[np.isin(apdg, (22, 111))] = _sh.KIND_PHOTON
    kind[apdg == 13] = _sh.KIND_MUON
    kind[np.isin(apdg, list(_NEUTRINOS)) | (apdg == 0)] = _sh.KIND_NONE
    e_avail = energy.copy()
    e_max = energy.copy()
    for code, mass in _BARYON_MASS.items():
        sel = apdg == code
        if np.any(sel):
            e_avail = np.where(sel & (pdg > 0), np.maximum(energy - mass, 0.0), e_avail)
            e_avail = np.where(sel & (pdg < 0), energy + mass, e_avail)
            e_max = np.where(sel, np.maximum(energy - mass, 0.0), e_max)
    e_max = np.where(kind == _sh.KIND_MUON, np.maximum(energy - _MUON_MASS, 0.0), e_max)
    charged = np.isin(apdg, list(_CHARGED_HADRONS)).astype(np.int64)
    return kind, e_avail, e_max, charged


# ----------------------------------------------------------------------------- result
@dataclass
class CaloResult:
    """Output of :func:`simulate_calorimeters`.

    Arguments:
        cells: One row per read-out cell (above zero suppression): event_id, calo ("ecal" /
            "hcal"), ieta, iphi, eta, phi (cell centre), energy_gev (measured, EM scale, with
            noise), e_true_gev (true deposited energy, 0 for noise-only cells).
        clusters: One row per cluster: event_id, cluster_id, energy_gev (calibrated ECAL +
            EM-scale HCAL), ecal_energy_gev, hcal_energy_gev, eta, phi, n_cells, n_ecal_cells,
            e_seed_gev, e3x3_gev, e5x5_gev, sigma_ietaieta (eta units; NaN for HCAL-only),
            hcal_over_ecal, truth_index (-1 for noise), seed_calo ("ecal" / "hcal").
        deposits: One row per incoming particle: event_id, truth_index, pdg, energy_gev, eta,
            phi, in_acceptance, e_true_ecal_gev, e_true_hcal_gev, e_leak_gev (longitudinal
            leakage / punch-through), e_vis_ecal_gev, e_vis_hcal_gev (EM-scale signals before
            noise), f_em, first_interaction_lambda.
        ecal_calibration: The ECAL cluster calibration constant used.

    Example:
        A container of three tables (here built by hand; :func:`simulate_calorimeters`
        fills it):

        >>> import pandas as pd
        >>> from ariasim.simulators.collider.calorimeter import CaloResult
        >>> dep = pd.DataFrame({"truth_index": [0, 1], "e_true_ecal_gev": [48.9, 0.3],
        ...                     "e_true_hcal_gev": [0.6, 9.1], "e_leak_gev": [0.5, 0.6]})
        >>> res = CaloResult(cells=pd.DataFrame(), clusters=pd.DataFrame(), deposits=dep)
        >>> float(res.deposits[["e_true_ecal_gev", "e_true_hcal_gev"]].sum(axis=1).iloc[0])
        49.5
    """

    cells: pd.DataFrame
    clusters: pd.DataFrame
    deposits: pd.DataFrame
    ecal_calibration: float = field(default=1.0)


_CALO_CAT = pd.CategoricalDtype(["ecal", "hcal"])


def _as_array(name: str, a: Any, dtype: Any, n: int | None) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    if arr.ndim != 1:
        raise ConfigError("must be one-dimensional", parameter=name)
    if n is not None and arr.shape[0] != n:
        raise ConfigError(f"length {arr.shape[0]} differs from event_id length {n}", parameter=name)
    return arr


def simulate_calorimeters(
    event_id: np.ndarray,
    truth_index: np.ndarray,
    pdg: np.ndarray,
    energy_gev: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    ecal: ECALConfig,
    hcal: HCALConfig,
    rng: np.random.Generator,
) -> CaloResult:
    """Simulate ECAL + HCAL showers of the particles reaching the calorimeter; cluster.

    Arguments:
        event_id: int64 (n,) event of each incoming particle.
        truth_index: int64 (n,) truth particle it descends from.
        pdg: int64 (n,) PDG id at the calorimeter face.
        energy_gev: float64 (n,) total energy at the face.
        eta, phi: float64 (n,) impact direction at the ECAL front face.
        ecal, hcal: Calorimeter configurations.
        rng: NumPy generator (no global random state is used).

    Returns:
        A :class:`CaloResult` with cells, clusters and per-particle deposits.
    """
    # the test-beam calibration knows nothing of a miscalibration (that is its point)
    nominal = dataclasses.replace(ecal, miscalibration=1.0, intercalibration_spread=0.0)
    calib = ecal_calibration(nominal, hcal)
    return _simulate(event_id, truth_index, pdg, energy_gev, eta, phi, ecal, hcal, rng, calib)


@functools.lru_cache(maxsize=32)
def ecal_calibration(
    ecal: ECALConfig, hcal: HCALConfig, energy_gev: float = 50.0, n: int = 400
) -> float:
    """ECAL cluster calibration constant: 1 / mean clustered EM-scale energy of electrons.

    A "test-beam" calibration with ``n`` electrons of ``energy_gev`` at |eta| in [0.2, 0.4]
    (a fixed internal seed, so it is a deterministic property of the configuration).

    Arguments:
        ecal, hcal: Configurations.
        energy_gev: Beam energy of the calibration electrons.
        n: Number of calibration electrons.
    """
    rng = np.random.default_rng(20240531)
    eta = rng.uniform(0.2, 0.4, n) * rng.choice([-1.0, 1.0], n)
    eta = np.clip(eta, -0.9 * ecal.eta_max, 0.9 * ecal.eta_max)
    phi = rng.uniform(-math.pi, math.pi, n)
    ids = np.arange(n, dtype=np.int64)
    res = _simulate(
        ids,
        ids,
        np.full(n, 11, dtype=np.int64),
        np.full(n, float(energy_gev)),
        eta,
        phi,
        ecal,
        hcal,
        rng,
        1.0,
    )
    cl = res.clusters
    if len(cl) == 0:
        return 1.0
    lead = cl.loc[cl.groupby("event_id")["ecal_energy_gev"].idxmax()]
    mean = float(lead["ecal_energy_gev"].sum()) / (n * energy_gev)
    return 1.0 / mean if mean > 0 else 1.0


@functools.lru_cache(maxsize=4)
def _intercalibration_map(n_cells: int) -> np.ndarray:
    """Standard-normal calibration errors of ``n_cells`` cells (a fixed internal seed)."""
    z = np.random.default_rng(20261205).standard_normal(n_cells)
    z.setflags(write=False)
    return z


def _noise_only_cells(
    events: np.ndarray, occupied: np.ndarray, cfg: ECALConfig | HCALConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells without any deposit whose noise exceeds the zero-suppression threshold.

    Exact in distribution: per event the count is Binomial(n_empty, P(noise > thr)), positions
    uniform over the grid (the rare collisions with occupied cells are dropped), values from
    the Gaussian tail. Only generated for thresholds >= 2 sigma (otherwise only cells with a
    deposit are read out, as in a selective readout).
    """
    neta, nphi, _, _ = _grid(cfg)
    ncell = neta * nphi
    empty = (np.zeros(0, np.int64),) * 2 + (np.zeros(0),)
    if cfg.noise_gev <= 0 or not np.isfinite(cfg.zs_threshold_gev):
        return empty
    zcut = cfg.zs_threshold_gev / cfg.noise_gev
    if zcut < 2.0 or len(events) == 0:
        return empty
    ptail = float(special.ndtr(-zcut))
    counts = rng.binomial(ncell, ptail, size=len(events))
    tot = int(counts.sum())
    if tot == 0:
        return empty
    ev = np.repeat(events, counts)
    key = rng.integers(0, ncell, size=tot)
    u = rng.uniform(special.ndtr(zcut), 1.0, size=tot)
    val = cfg.noise_gev * special.ndtri(np.minimum(u, 1.0 - 1e-16))
    # drop collisions with occupied cells and duplicates
    comb = ev * ncell + key
    occ = np.sort(occupied)
    if len(occ):
        pos = np.minimum(np.searchsorted(occ, comb), len(occ) - 1)
        keep = occ[pos] != comb
    else:
        keep = np.ones(len(comb), dtype=bool)
    comb, ev, key, val = comb[keep], ev[keep], key[keep], val[keep]
    if len(comb) == 0:  # every candidate fell on an occupied cell
        return empty
    order = np.argsort(comb, kind="stable")
    first = order[np.r_[True, comb[order][1:] != comb[order][:-1]]]
    return ev[first], key[first], val[first]


def _simulate(
    event_id: Any,
    truth_index: Any,
    pdg: Any,
    energy_gev: Any,
    eta: Any,
    phi: Any,
    ecal: ECALConfig,
    hcal: HCALConfig,
    rng: np.random.Generator,
    calib: float,
) -> CaloResult:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError("expected a numpy.random.Generator", parameter="rng")
    if not isinstance(ecal, ECALConfig):
        raise ConfigError("expected an ECALConfig", parameter="ecal")
    if not isinstance(hcal, HCALConfig):
        raise ConfigError("expected an HCALConfig", parameter="hcal")
    ev = _as_array("event_id", event_id, np.int64, None)
    n = ev.shape[0]
    ti = _as_array("truth_index", truth_index, np.int64, n)
    pd_ = _as_array("pdg", pdg, np.int64, n)
    en = _as_array("energy_gev", energy_gev, np.float64, n)
    et = _as_array("eta", eta, np.float64, n)
    ph = _as_array("phi", phi, np.float64, n)
    if not (np.all(np.isfinite(en)) and np.all(en >= 0)):
        raise ConfigError("energies must be finite and >= 0", parameter="energy_gev")
    ph = np.mod(ph + math.pi, 2.0 * math.pi) - math.pi
    pe = _params(ecal, hcal)
    phh = _params(hcal, hcal)
    kind, e_avail, e_max, charged = _classify(pd_, en)
    in_acc = np.isfinite(et) & (np.abs(et) <= ecal.eta_max) & (en > 0)
    kind = np.where(in_acc, kind, _sh.KIND_NONE)
    et_safe = np.where(np.isfinite(et), et, 0.0)
    w_e, w_h = _sh.window_halfwidths(kind, et_safe, pe, phh)
    bound = (2 * w_e + 1) ** 2 + (2 * w_h + 1) ** 2
    dep = np.zeros((n, 7))
    parts: list[tuple[np.ndarray, ...]] = [
        (np.zeros(0, np.int64),) * 4 + (np.zeros(0), np.zeros(0))
    ]
    start = 0
    while start < n:
        cum = np.cumsum(bound[start:])
        stop = start + max(1, int(np.searchsorted(cum, _CHUNK_ENTRIES, side="right")))
        size = int(bound[start:stop].sum())
        o_part = np.empty(size, np.int64)
        o_calo = np.empty(size, np.int64)
        o_ieta = np.empty(size, np.int64)
        o_iphi = np.empty(size, np.int64)
        o_true = np.empty(size)
        o_meas = np.empty(size)
        sl = slice(start, stop)
        k = _sh.simulate_particles(
            kind[sl],
            e_avail[sl],
            e_max[sl],
            charged[sl],
            et_safe[sl],
            ph[sl],
            w_e[sl],
            w_h[sl],
            pe,
            phh,
            rng,
            o_part,
            o_calo,
            o_ieta,
            o_iphi,
            o_true,
            o_meas,
            dep[sl],
        )
        parts.append(
            (o_part[:k] + start, o_calo[:k], o_ieta[:k], o_iphi[:k], o_true[:k], o_meas[:k])
        )
        start = stop
    e_part, e_calo, e_ieta, e_iphi, e_true, e_meas = (
        np.concatenate(x) for x in zip(*parts, strict=True)
    )
    fem = dep[:, 5].copy()
    fem[(kind == _sh.KIND_ELECTRON) | (kind == _sh.KIND_PHOTON)] = 1.0
    deposits = pd.DataFrame(
        {
            "event_id": ev,
            "truth_index": ti,
            "pdg": pd_,
            "energy_gev": en,
            "eta": et,
            "phi": ph,
            "in_acceptance": kind != _sh.KIND_NONE,
            "e_true_ecal_gev": dep[:, 0],
            "e_true_hcal_gev": dep[:, 1],
            "e_leak_gev": dep[:, 2],
            "e_vis_ecal_gev": dep[:, 3],
            "e_vis_hcal_gev": dep[:, 4],
            "f_em": fem,
            "first_interaction_lambda": dep[:, 6],
        }
    )
    # ----------------------------------------------------------- aggregate into cells
    neta_e, nphi_e, deta_e, dphi_e = _grid(ecal)
    neta_h, nphi_h, deta_h, dphi_h = _grid(hcal)
    ncell_max = max(neta_e * nphi_e, neta_h * nphi_h)
    e_ev = ev[e_part]
    e_key = e_ieta * np.where(e_calo == 0, nphi_e, nphi_h) + e_iphi
    comb = (e_ev * 2 + e_calo) * ncell_max + e_key
    srt = np.argsort(comb, kind="stable")
    comb_s = comb[srt]
    starts = np.flatnonzero(np.r_[True, comb_s[1:] != comb_s[:-1]]) if len(comb_s) else srt
    ucomb = comb_s[starts]
    c_true = np.add.reduceat(e_true[srt], starts) if len(starts) else np.zeros(0)
    c_meas = np.add.reduceat(e_meas[srt], starts) if len(starts) else np.zeros(0)
    c_calo = (ucomb // ncell_max) % 2
    c_ev = ucomb // ncell_max // 2
    c_key = ucomb % ncell_max
    if ecal.miscalibration != 1.0 or ecal.intercalibration_spread > 0.0:
        is_ecal = c_calo == 0
        factor = np.full(int(is_ecal.sum()), ecal.miscalibration)
        if ecal.intercalibration_spread > 0.0:
            z = _intercalibration_map(neta_e * nphi_e)[c_key[is_ecal]]
            factor *= np.maximum(1.0 + ecal.intercalibration_spread * z, 0.0)
        c_meas[is_ecal] *= factor
    noise = np.where(c_calo == 0, ecal.noise_gev, hcal.noise_gev)
    c_meas = c_meas + noise * rng.standard_normal(len(ucomb))
    # noise-only cells
    events = np.unique(ev) if len(ev) else ev
    extra = []
    for calo_code, cfg in ((0, ecal), (1, hcal)):
        occ = c_ev[c_calo == calo_code] * (
            (neta_e if calo_code == 0 else neta_h) * (nphi_e if calo_code == 0 else nphi_h)
        )
        occ = occ + c_key[c_calo == calo_code]
        nev, nkey, nval = _noise_only_cells(events, occ, cfg, rng)
        extra.append((nev, np.full(len(nev), calo_code), nkey, nval))
    a_ev = np.concatenate([c_ev] + [x[0] for x in extra])
    a_calo = np.concatenate([c_calo] + [x[1] for x in extra])
    a_key = np.concatenate([c_key] + [x[2] for x in extra])
    a_meas = np.concatenate([c_meas] + [x[3] for x in extra])
    a_true = np.concatenate([c_true] + [np.zeros(len(x[0])) for x in extra])
    # selective readout: full (2k+1)^2 readout around high-energy cells, pure noise if empty
    a_comb = (a_ev * 2 + a_calo) * ncell_max + a_key
    in_sr = np.zeros(len(a_comb), dtype=bool)
    new = []
    for calo_code, cfg, neta, nphi in ((0, ecal, neta_e, nphi_e), (1, hcal, neta_h, nphi_h)):
        hi = (a_calo == calo_code) & (a_meas > cfg.sr_threshold_gev)
        if not np.any(hi):
            continue
        kk = cfg.sr_halfwidth
        off = np.arange(-kk, kk + 1)
        ie = (a_key[hi] // nphi)[:, None, None] + off[None, :, None]
        ip = (a_key[hi] % nphi)[:, None, None] + off[None, None, :]
        ie, ip = np.broadcast_arrays(ie, ip)
        evb = np.broadcast_to(a_ev[hi][:, None, None], ie.shape)
        ok = (ie >= 0) & (ie < neta)
        cand = (evb[ok] * 2 + calo_code) * ncell_max + ie[ok] * nphi + ip[ok] % nphi
        cand = np.unique(cand)
        srt = np.argsort(a_comb, kind="stable")
        pos = np.minimum(np.searchsorted(a_comb[srt], cand), len(a_comb) - 1)
        found = a_comb[srt][pos] == cand
        in_sr[srt[pos[found]]] = True
        fresh = cand[~found]
        new.append((fresh, np.full(len(fresh), calo_code), cfg.noise_gev))
    for fresh, calo_arr, noise_gev in new:
        a_ev = np.concatenate([a_ev, fresh // ncell_max // 2])
        a_calo = np.concatenate([a_calo, calo_arr])
        a_key = np.concatenate([a_key, fresh % ncell_max])
        a_meas = np.concatenate([a_meas, noise_gev * rng.standard_normal(len(fresh))])
        a_true = np.concatenate([a_true, np.zeros(len(fresh))])
        in_sr = np.concatenate([in_sr, np.ones(len(fresh), dtype=bool)])
    zs = np.where(a_calo == 0, ecal.zs_threshold_gev, hcal.zs_threshold_gev)
    keep = in_sr | (a_meas > zs)
    a_ev, a_calo, a_key, a_meas, a_true = (x[keep] for x in (a_ev, a_calo, a_key, a_meas, a_true))
    order = np.lexsort((a_key, a_calo, a_ev))
    a_ev, a_calo, a_key, a_meas, a_true = (x[order] for x in (a_ev, a_calo, a_key, a_meas, a_true))
    nphi_arr = np.where(a_calo == 0, nphi_e, nphi_h)
    a_ieta = a_key // nphi_arr
    a_iphi = a_key % nphi_arr
    a_eta = np.where(
        a_calo == 0,
        -ecal.eta_max + (a_ieta + 0.5) * deta_e,
        -hcal.eta_max + (a_ieta + 0.5) * deta_h,
    )
    a_phi = np.where(
        a_calo == 0, -math.pi + (a_iphi + 0.5) * dphi_e, -math.pi + (a_iphi + 0.5) * dphi_h
    )
    cells = pd.DataFrame(
        {
            "event_id": a_ev,
            "calo": pd.Categorical.from_codes(a_calo.astype(np.int8), dtype=_CALO_CAT),
            "ieta": a_ieta.astype(np.int32),
            "iphi": a_iphi.astype(np.int32),
            "eta": a_eta,
            "phi": a_phi,
            "energy_gev": a_meas,
            "e_true_gev": a_true,
        }
    )
    # ----------------------------------------------------------------- clustering
    (
        label,
        k_ev,
        k_id,
        k_ecal,
        k_hcal,
        k_eta,
        k_phi,
        k_nc,
        k_ne,
        k_seed,
        k_e3,
        k_e5,
        k_sie,
        k_sc,
    ) = cluster_cells(
        a_ev,
        a_calo,
        a_ieta,
        a_iphi,
        a_meas,
        a_eta,
        a_phi,
        neta_e,
        nphi_e,
        deta_e,
        ecal.seed_threshold_gev,
        nphi_h,
        hcal.seed_threshold_gev,
        hcal.cluster_dr,
    )
    ecal_e = k_ecal * calib
    total = ecal_e + k_hcal
    with np.errstate(divide="ignore", invalid="ignore"):
        h_over_e = np.where(ecal_e > 0, k_hcal / np.where(ecal_e > 0, ecal_e, 1.0), np.inf)
    ecal_sc = k_sc == 0
    # truth matching: the truth particle with the largest true energy in the cluster's cells
    truth = np.full(len(k_ev), -1, dtype=np.int64)
    if len(k_ev) and len(comb):
        cell_comb = (a_ev * 2 + a_calo) * ncell_max + a_key
        pos = np.searchsorted(cell_comb, comb)
        pos = np.minimum(pos, len(cell_comb) - 1)
        hit = cell_comb[pos] == comb
        ent_cl = np.where(hit, label[pos], -1)
        sel = ent_cl >= 0
        if np.any(sel):
            df = pd.DataFrame({"cl": ent_cl[sel], "truth": ti[e_part[sel]], "e": e_true[sel]})
            g = df.groupby(["cl", "truth"], sort=False)["e"].sum().reset_index()
            g = g[g["e"] > 0]
            best = g.loc[g.groupby("cl")["e"].idxmax()]
            truth[best["cl"].to_numpy()] = best["truth"].to_numpy()
    clusters = pd.DataFrame(
        {
            "event_id": k_ev,
            "cluster_id": k_id,
            "energy_gev": total,
            "ecal_energy_gev": ecal_e,
            "hcal_energy_gev": k_hcal,
            "eta": k_eta,
            "phi": k_phi,
            "n_cells": k_nc,
            "n_ecal_cells": k_ne,
            "e_seed_gev": k_seed,
            "e3x3_gev": np.where(ecal_sc, k_e3 * calib, np.nan),
            "e5x5_gev": np.where(ecal_sc, k_e5 * calib, np.nan),
            "sigma_ietaieta": k_sie,
            "hcal_over_ecal": h_over_e,
            "truth_index": truth,
            "seed_calo": pd.Categorical.from_codes(k_sc.astype(np.int8), dtype=_CALO_CAT),
        }
    )
    return CaloResult(cells=cells, clusters=clusters, deposits=deposits, ecal_calibration=calib)
