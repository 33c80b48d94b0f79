"""Detector configuration: solenoid, beam pipe, tracker layers, calorimeters, muon system.

A detector is described by a TOML file (see ``detectors/default.toml``, a generic LHC-like
detector with CMS-inspired numbers, and ``detectors/future.toml``, a future-collider
detector with a larger, lighter tracker and fine-sampling calorimeters). Every key is
checked: unknown keys and bad values raise :class:`~ariasim.errors.ConfigError` naming
the key. The tracker is modelled as barrel cylinders (radius, half-length).

References:
    Particle Data Group, "Passage of particles through matter" and "Atomic and nuclear
    properties of materials" (radiation and interaction lengths, mean excitation energies).

Arguments:
    See :class:`DetectorConfig` and :func:`load_detector`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ariasim.errors import ConfigError, InputError
from ariasim.utils import load_toml

__all__ = [
    "MATERIALS",
    "BeamPipe",
    "DetectorConfig",
    "IdentificationConfig",
    "Material",
    "MuonSystemConfig",
    "TrackerLayer",
    "TrackingConfig",
    "available_detectors",
    "detector_from_dict",
    "load_detector",
]

DETECTOR_DIR = Path(__file__).with_name("detectors")


@dataclass(frozen=True)
class Material:
    """Bulk properties of a material (PDG tables).

    Arguments:
        x0_g_cm2: Radiation length [g/cm^2].
        lambda_i_g_cm2: Nuclear interaction length [g/cm^2].
        z_over_a: <Z/A> [mol/g].
        i_ev: Mean excitation energy [eV].

    Example:
        >>> from ariasim.simulators.collider.detector import MATERIALS
        >>> si = MATERIALS["silicon"]
        >>> round(si.x0_g_cm2 / 2.329, 2)  # radiation length in cm at 2.329 g/cm^3
        9.37
    """

    x0_g_cm2: float
    lambda_i_g_cm2: float
    z_over_a: float
    i_ev: float


#: Materials a tracker layer may be made of (silicon-equivalent by default).
MATERIALS: dict[str, Material] = {
    "silicon": Material(21.82, 108.4, 0.49848, 173.0),
    "beryllium": Material(65.19, 77.8, 0.44384, 63.7),
    "carbon": Material(42.70, 85.8, 0.49955, 78.0),
    "aluminium": Material(24.01, 107.2, 0.48181, 166.0),
}


@dataclass(frozen=True)
class TrackerLayer:
    """One barrel tracker layer (a cylinder around the beam).

    Arguments:
        name: Layer name (e.g. ``pixel1``).
        radius_m: Radius [m].
        half_length_m: Half-length along the beam [m].
        thickness_x0: Thickness at normal incidence in radiation lengths.
        thickness_lambda: Thickness in nuclear interaction lengths.
        sigma_rphi_um: Hit resolution in r-phi [um].
        sigma_z_um: Hit resolution along z [um].
        efficiency: Probability to record a hit.
        material: Key of :data:`MATERIALS` used for the ionisation loss.

    Example:
        >>> from ariasim.simulators.collider.detector import TrackerLayer
        >>> layer = TrackerLayer("strip1", radius_m=0.25, half_length_m=1.2, thickness_x0=0.02,
        ...                      thickness_lambda=0.004, sigma_rphi_um=20.0, sigma_z_um=500.0,
        ...                      efficiency=0.99)
        >>> layer.material, layer.sigma_rphi_um
        ('silicon', 20.0)
    """

    name: str
    radius_m: float
    half_length_m: float
    thickness_x0: float
    thickness_lambda: float
    sigma_rphi_um: float
    sigma_z_um: float
    efficiency: float
    material: str = "silicon"


@dataclass(frozen=True)
class BeamPipe:
    """Passive beam pipe.

    Arguments:
        radius_m: Radius [m].
        half_length_m: Half-length [m].
        thickness_x0: Thickness in radiation lengths.
        thickness_lambda: Thickness in nuclear interaction lengths (from the material if absent).
        material: Key of :data:`MATERIALS`.

    Example:
        >>> from ariasim.simulators.collider.detector import BeamPipe
        >>> pipe = BeamPipe()
        >>> pipe.material, pipe.radius_m
        ('beryllium', 0.0225)
    """

    radius_m: float = 0.0225
    half_length_m: float = 10.0
    thickness_x0: float = 0.0023
    thickness_lambda: float | None = None
    material: str = "beryllium"


@dataclass(frozen=True)
class TrackingConfig:
    """Track finding and fitting settings.

    Arguments:
        min_hits: Minimum number of hits for a track to be reconstructed.
        n_inner_layers: A track with no hit in the first ``n_inner_layers`` layers is a
            "missing inner hits" (conversion-like, non-prompt) track.
        max_chi2_ndof: Tracks with a worse fit are rejected.
        brem_refit_chi2_ndof: Tracks with a worse first fit are refitted with the electron
            hypothesis (bremsstrahlung curvature jumps in the covariance); the better fit is kept.
        fit_iterations: Gauss-Newton iterations of the global chi2 fit.
        min_secondary_energy_gev: Bremsstrahlung photons and conversion electrons below
            this energy are not followed (their energy is counted as lost in the tracker).
        fit_mass_gev: Mass hypothesis of the fit (for beta in the scattering term).

    Example:
        >>> import dataclasses
        >>> from ariasim.simulators.collider.detector import TrackingConfig
        >>> loose = dataclasses.replace(TrackingConfig(), min_hits=5)
        >>> loose.min_hits, loose.n_inner_layers
        (5, 2)
    """

    min_hits: int = 7
    n_inner_layers: int = 2
    max_chi2_ndof: float = 100.0
    brem_refit_chi2_ndof: float = 3.0
    fit_iterations: int = 4
    min_secondary_energy_gev: float = 0.01
    fit_mass_gev: float = 0.13957039


@dataclass(frozen=True)
class MuonSystemConfig:
    """Muon stations behind the calorimeters, coil and return yoke.

    A muon reaches a station if it gets out of the solenoid field region (enough pT not to
    loop) and keeps positive energy after the (fluctuating) energy loss in the material in
    front of that station.

    Arguments:
        radius_m: Radius of the first station [m].
        n_stations: Number of stations.
        station_spacing_m: Radial distance between stations [m].
        eta_max: Acceptance |eta| of the stations.
        sigma_rphi_um, sigma_z_um: Position resolution of a station [um].
        efficiency: Probability that a station records a crossing muon.
        min_stations: Matched stations needed to identify a muon.
        energy_loss_before_gev: Mean energy loss in the coil and iron between the HCAL and
            the first station, at normal incidence [GeV] (the calorimeter losses come from the
            calorimeter simulation).
        energy_loss_between_gev: Mean energy loss between two stations [GeV].
        absorber_x0: Radiation lengths in front of the first station, calorimeters included
            (multiple scattering).
        absorber_x0_between: Radiation lengths between two stations.
        match_pull_max: Track-station matching window in standard deviations.

    Example:
        >>> from ariasim.simulators.collider.detector import MuonSystemConfig
        >>> mu = MuonSystemConfig()
        >>> round(mu.radius_m + (mu.n_stations - 1) * mu.station_spacing_m, 2)  # last station [m]
        6.7
    """

    radius_m: float = 4.0
    n_stations: int = 4
    station_spacing_m: float = 0.9
    eta_max: float = 2.4
    sigma_rphi_um: float = 200.0
    sigma_z_um: float = 300.0
    efficiency: float = 0.95
    min_stations: int = 2
    energy_loss_before_gev: float = 0.8
    energy_loss_between_gev: float = 0.6
    absorber_x0: float = 120.0
    absorber_x0_between: float = 25.0
    match_pull_max: float = 4.0


@dataclass(frozen=True)
class IdentificationConfig:
    """Cuts of the identification, applied to reconstructed quantities only.

    Arguments:
        match_deta: Track-to-cluster matching window in eta.
        match_dphi: Track-to-cluster matching window in phi [rad].
        electron_eop_min, electron_eop_max: E/p window for electrons.
        electron_hoe_max: Maximum HCAL/ECAL energy ratio for electrons.
        electron_sigma_ietaieta_max: Maximum shower width for electrons.
        photon_hoe_max: Maximum HCAL/ECAL energy ratio for photons.
        photon_sigma_ietaieta_max: Maximum shower width for photons.
        brem_road_dphi: Half-width in phi added to the bending road in which clusters without
            a track are added to an electron (bremsstrahlung recovery).
        min_cluster_energy_gev: Clusters below this energy are ignored.

    Example:
        >>> from ariasim.simulators.collider.detector import IdentificationConfig
        >>> cuts = IdentificationConfig(electron_eop_min=0.8)
        >>> cuts.electron_eop_min, cuts.electron_eop_max
        (0.8, 2.0)
    """

    match_deta: float = 0.05
    match_dphi: float = 0.10
    electron_eop_min: float = 0.7
    electron_eop_max: float = 2.0
    electron_hoe_max: float = 0.15
    electron_sigma_ietaieta_max: float = 1.0e9
    photon_hoe_max: float = 0.15
    photon_sigma_ietaieta_max: float = 1.0e9
    brem_road_dphi: float = 0.05
    min_cluster_energy_gev: float = 0.5


@dataclass
class DetectorConfig:
    """A whole detector.

    Arguments:
        name: Short name.
        description: One line.
        b_field_t: Solenoid field [T] (uniform, along +z).
        solenoid_radius_m: Radius of the field region [m]; straight lines beyond.
        beam_pipe: The beam pipe.
        layers: Tracker layers ordered by radius.
        tracking: Track reconstruction settings.
        ecal: ECAL configuration (``calorimeter.ECALConfig``).
        hcal: HCAL configuration (``calorimeter.HCALConfig``).
        muon: Muon system.
        identification: Identification cuts.
        source: Where the configuration came from.

    Example:
        >>> from ariasim.simulators.collider import load_detector
        >>> det = load_detector("default")
        >>> det.b_field_t, len(det.layers), det.ecal.kind
        (3.8, 13, 'homogeneous')
        >>> det.ecal_r_inner_m
        1.29
    """

    name: str
    description: str
    b_field_t: float
    solenoid_radius_m: float
    beam_pipe: BeamPipe
    layers: list[TrackerLayer]
    tracking: TrackingConfig
    ecal: Any
    hcal: Any
    muon: MuonSystemConfig
    identification: IdentificationConfig
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ecal_r_inner_m(self) -> float:
        """Inner radius of the ECAL [m] (the calorimeter face)."""
        return float(self.ecal.r_inner_m)

    @property
    def ecal_eta_max(self) -> float:
        """ECAL acceptance |eta|."""
        return float(self.ecal.eta_max)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved configuration as plain data (for provenance)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "b_field_t": self.b_field_t,
            "solenoid_radius_m": self.solenoid_radius_m,
            "beam_pipe": dataclasses.asdict(self.beam_pipe),
            "layers": [dataclasses.asdict(la) for la in self.layers],
            "tracking": dataclasses.asdict(self.tracking),
            "muon": dataclasses.asdict(self.muon),
            "identification": dataclasses.asdict(self.identification),
        }
        for key in ("ecal", "hcal"):
            obj = getattr(self, key)
            if hasattr(obj, "to_dict"):
                out[key] = obj.to_dict()
            elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
                out[key] = dataclasses.asdict(obj)
            else:
                out[key] = dict(obj) if isinstance(obj, dict) else repr(obj)
        return out


def available_detectors() -> list[str]:
    """Names of the detectors shipped with ariasim."""
    return sorted(p.stem for p in DETECTOR_DIR.glob("*.toml"))


def load_detector(name_or_path: str | os.PathLike[str] | DetectorConfig) -> DetectorConfig:
    """Load a detector by name (``default``, ``future``) or from a TOML file.

    Arguments:
        name_or_path: A shipped detector name, a path to a TOML file, or a ready config.
    """
    if isinstance(name_or_path, DetectorConfig):
        return name_or_path
    text = os.fspath(name_or_path)
    path = Path(text)
    if not path.suffix and not path.exists():
        path = DETECTOR_DIR / f"{text}.toml"
        if not path.exists():
            raise ConfigError(
                f"unknown detector {text!r}; shipped: {', '.join(available_detectors())}"
                " (or give a path to a TOML file)",
                parameter="detector",
            )
    if not path.exists():
        raise InputError("detector file not found", path=path)
    data = load_toml(path)
    try:
        return detector_from_dict(data, source=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {path})", parameter=None) from exc


def _build(cls: type, data: dict[str, Any], where: str, **extra: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError("expected a table", parameter=where)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(
                f"unknown key; allowed: {', '.join(sorted(names))}",
                parameter=f"{where}.{key}" if where else key,
            )
    kwargs = {**data, **extra}
    for f in dataclasses.fields(cls):
        if (
            f.name in kwargs
            and isinstance(kwargs[f.name], int)
            and not isinstance(kwargs[f.name], bool)
            and f.type in ("float", "float | None")
        ):
            kwargs[f.name] = float(kwargs[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(str(exc), parameter=where) from exc


def _positive(value: float, where: str, *, allow_zero: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        raise ConfigError(
            f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}", parameter=where
        )


def _check_numbers(
    obj: Any, where: str, *, positive: tuple[str, ...] = (), fraction: tuple[str, ...] = ()
) -> None:
    """Every numeric field of the dataclass ``obj`` must be a finite number, >= 0; those
    in ``positive`` > 0, those in ``fraction`` in [0, 1]."""
    for f in dataclasses.fields(obj):
        if f.type not in ("float", "int", "float | None"):
            continue
        value = getattr(obj, f.name)
        if value is None and f.type == "float | None":
            continue
        name = f"{where}.{f.name}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}", parameter=name)
        _positive(value, name, allow_zero=f.name not in positive)
        if f.name in fraction and not value <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {value!r}", parameter=name)


def _layers_from_groups(groups: list[dict[str, Any]]) -> list[TrackerLayer]:
    allowed = {
        "name",
        "radii_m",
        "half_length_m",
        "eta_coverage",
        "thickness_x0",
        "thickness_lambda",
        "sigma_rphi_um",
        "sigma_z_um",
        "efficiency",
        "material",
    }
    layers: list[TrackerLayer] = []
    for gi, g in enumerate(groups):
        where = f"tracker[{gi}]"
        if not isinstance(g, dict):
            raise ConfigError("expected a table", parameter=where)
        for key in g:
            if key not in allowed:
                raise ConfigError(
                    f"unknown key; allowed: {', '.join(sorted(allowed))}",
                    parameter=f"{where}.{key}",
                )
        for key in ("radii_m", "thickness_x0", "sigma_rphi_um", "sigma_z_um", "efficiency"):
            if key not in g:
                raise ConfigError("missing key", parameter=f"{where}.{key}")
        radii = g["radii_m"]
        if not isinstance(radii, list) or not radii:
            raise ConfigError("expected a non-empty list of radii", parameter=f"{where}.radii_m")
        n = len(radii)

        def per_layer(
            key: str, default: Any = None, n: int = n, g: dict = g, where: str = where
        ) -> list:
            v = g.get(key, default)
            if isinstance(v, list):
                if len(v) != n:
                    raise ConfigError(
                        f"expected {n} values (one per radius)", parameter=f"{where}.{key}"
                    )
                return v
            return [v] * n

        material = g.get("material", "silicon")
        if material not in MATERIALS:
            raise ConfigError(
                f"unknown material; choose from {', '.join(MATERIALS)}",
                parameter=f"{where}.material",
            )
        mat = MATERIALS[material]
        if "half_length_m" in g:
            half = per_layer("half_length_m")
        elif "eta_coverage" in g:
            half = [
                float(r) * math.sinh(c)
                for r, c in zip(radii, per_layer("eta_coverage"), strict=True)
            ]
        else:
            raise ConfigError(
                "give half_length_m or eta_coverage", parameter=f"{where}.half_length_m"
            )
        x0s = per_layer("thickness_x0")
        lam = per_layer("thickness_lambda")
        lam = [
            x * mat.x0_g_cm2 / mat.lambda_i_g_cm2 if lv is None else lv
            for x, lv in zip(x0s, lam, strict=True)
        ]
        name = g.get("name", f"group{gi}")
        for i in range(n):
            layer = TrackerLayer(
                name=f"{name}{i + 1}",
                radius_m=float(radii[i]),
                half_length_m=float(half[i]),
                thickness_x0=float(x0s[i]),
                thickness_lambda=float(lam[i]),
                sigma_rphi_um=float(per_layer("sigma_rphi_um")[i]),
                sigma_z_um=float(per_layer("sigma_z_um")[i]),
                efficiency=float(per_layer("efficiency")[i]),
                material=material,
            )
            lw = f"{where}.{name}{i + 1}"
            _positive(layer.radius_m, f"{lw}.radius_m")
            _positive(layer.half_length_m, f"{lw}.half_length_m")
            _positive(layer.thickness_x0, f"{lw}.thickness_x0", allow_zero=True)
            _positive(layer.thickness_lambda, f"{lw}.thickness_lambda", allow_zero=True)
            _positive(layer.sigma_rphi_um, f"{lw}.sigma_rphi_um")
            _positive(layer.sigma_z_um, f"{lw}.sigma_z_um")
            if not 0.0 <= layer.efficiency <= 1.0:
                raise ConfigError("must be in [0, 1]", parameter=f"{lw}.efficiency")
            layers.append(layer)
    return layers


def detector_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> DetectorConfig:
    """Build and check a :class:`DetectorConfig` from the TOML structure.

    Arguments:
        data: Parsed TOML (top-level keys ``name``, ``description``, tables ``solenoid``,
            ``beam_pipe``, ``tracking``, ``ecal``, ``hcal``, ``muon``, ``identification`` and
            the array of tables ``tracker``).
        source: Origin, recorded in the config.
    """
    allowed = {
        "name",
        "description",
        "solenoid",
        "beam_pipe",
        "tracker",
        "tracking",
        "ecal",
        "hcal",
        "muon",
        "identification",
    }
    for key in data:
        if key not in allowed:
            raise ConfigError(f"unknown key; allowed: {', '.join(sorted(allowed))}", parameter=key)
    for key in ("solenoid", "tracker", "ecal", "hcal"):
        if key not in data:
            raise ConfigError("missing section", parameter=key)
    sol = data["solenoid"]
    if not isinstance(sol, dict):
        raise ConfigError("expected a table", parameter="solenoid")
    for key in sol:
        if key not in ("b_field_t", "radius_m"):
            raise ConfigError(
                "unknown key; allowed: b_field_t, radius_m", parameter=f"solenoid.{key}"
            )
    b = sol.get("b_field_t")
    if b is None:
        raise ConfigError("missing", parameter="solenoid.b_field_t")
    _positive(b, "solenoid.b_field_t")
    r_sol = sol.get("radius_m", 3.0)
    _positive(r_sol, "solenoid.radius_m")

    bp_data = dict(data.get("beam_pipe", {}))
    bp = _build(BeamPipe, bp_data, "beam_pipe")
    if bp.material not in MATERIALS:
        raise ConfigError("unknown material", parameter="beam_pipe.material")
    if bp.thickness_lambda is None:
        mat = MATERIALS[bp.material]
        bp = dataclasses.replace(
            bp, thickness_lambda=bp.thickness_x0 * mat.x0_g_cm2 / mat.lambda_i_g_cm2
        )
    _check_numbers(bp, "beam_pipe", positive=("radius_m", "half_length_m"))

    if not isinstance(data["tracker"], list):
        raise ConfigError("expected an array of tables [[tracker]]", parameter="tracker")
    layers = sorted(_layers_from_groups(data["tracker"]), key=lambda la: la.radius_m)
    radii = [la.radius_m for la in layers]
    if len(set(radii)) != len(radii):
        raise ConfigError("two tracker layers have the same radius", parameter="tracker")
    if radii[0] <= bp.radius_m:
        raise ConfigError(
            "the first tracker layer must be outside the beam pipe", parameter="tracker"
        )

    tracking = _build(TrackingConfig, data.get("tracking", {}), "tracking")
    _check_numbers(
        tracking, "tracking", positive=("max_chi2_ndof", "brem_refit_chi2_ndof", "fit_iterations")
    )
    if tracking.min_hits < 3:
        raise ConfigError("a helix needs at least 3 hits", parameter="tracking.min_hits")
    if tracking.min_hits > len(layers):
        raise ConfigError(
            f"larger than the number of layers ({len(layers)})", parameter="tracking.min_hits"
        )
    muon = _build(MuonSystemConfig, data.get("muon", {}), "muon")
    _check_numbers(
        muon,
        "muon",
        positive=(
            "radius_m",
            "station_spacing_m",
            "eta_max",
            "sigma_rphi_um",
            "sigma_z_um",
            "match_pull_max",
        ),
        fraction=("efficiency",),
    )
    if muon.n_stations < 1 or not 1 <= muon.min_stations <= muon.n_stations:
        raise ConfigError("need 1 <= min_stations <= n_stations", parameter="muon.min_stations")
    ident = _build(IdentificationConfig, data.get("identification", {}), "identification")
    _check_numbers(
        ident,
        "identification",
        positive=(
            "match_deta",
            "match_dphi",
            "electron_eop_max",
            "electron_sigma_ietaieta_max",
            "photon_sigma_ietaieta_max",
        ),
    )
    if not ident.electron_eop_min < ident.electron_eop_max:
        raise ConfigError(
            "need electron_eop_min < electron_eop_max", parameter="identification.electron_eop_min"
        )

    from ariasim.simulators.collider.calorimeter import ECALConfig, HCALConfig

    for key in ("ecal", "hcal"):
        if not isinstance(data[key], dict):
            raise ConfigError("expected a table", parameter=key)
    try:
        ecal = ECALConfig.from_dict(dict(data["ecal"]))
    except ConfigError as exc:
        raise ConfigError(
            f"[ecal] {exc}", parameter=exc.parameter and f"ecal.{exc.parameter}"
        ) from exc
    try:
        hcal = HCALConfig.from_dict(dict(data["hcal"]))
    except ConfigError as exc:
        raise ConfigError(
            f"[hcal] {exc}", parameter=exc.parameter and f"hcal.{exc.parameter}"
        ) from exc
    r_ecal = float(ecal.r_inner_m)
    if radii[-1] >= r_ecal:
        raise ConfigError(
            f"outermost tracker layer ({radii[-1]} m) must be inside the ECAL ({r_ecal} m)",
            parameter="tracker",
        )
    if muon.radius_m <= r_ecal:
        raise ConfigError("the muon system must be outside the ECAL", parameter="muon.radius_m")
    return DetectorConfig(
        name=str(data.get("name", Path(source).stem)),
        description=str(data.get("description", "")),
        b_field_t=float(b),
        solenoid_radius_m=float(r_sol),
        beam_pipe=bp,
        layers=layers,
        tracking=tracking,
        ecal=ecal,
        hcal=hcal,
        muon=muon,
        identification=ident,
        source=source,
        raw=data,
    )
