"""Configuration of a photon simulation run: merging, validation, construction.

A run is described by a nested dict (a TOML file in the CLI)::

    seed = 1
    n_events = 1
    out = "hits.parquet"

    [source]                  # type = flasher | cascade | muon
    type = "flasher"
    n_photons = 1e7
    wavelength_nm = 405.0     # or [lo, hi] for a flat band
    position_m = [0.0, 0.0, 0.0]

    [medium]                  # name = bulk-ice | water | constant | layered | ppc-ice
    name = "bulk-ice"         # ppc-ice: ice_table = a PPC ice folder (e.g. spice_bfr-v2),
                              # tilt / anisotropy / birefringence = true | false

    [detector]                # layout = distance | strings | geometry
    layout = "distance"
    distance_m = 20.0
    n_modules = 6

One home for every default: a key left unset (``None`` in :data:`DEFAULTS`) takes the
default of the library object it configures (the medium factories of
:mod:`~.optics` through :func:`~.optics.make_medium`, the source classes through
:func:`~.sources.make_source`, :class:`~.detector.Detector`, :func:`~.simulate.simulate`).
This module only names the kinds and the *default run* (:data:`DEFAULT_RUN`: a 1e7-photon
flasher and a ring of six modules 20 m away), which the library does not have.

Unknown keys, bad values and keys that do not apply to the chosen medium, source or
layout (``medium.ice_table`` with ``name = "bulk-ice"``, ``source.energy_gev`` with a
flasher) raise :class:`~ariasim.errors.ConfigError` naming the key, or the command-line
flag it came from (``labels``). This module imports only NumPy-level code (no numba).

References:
    D. Chirkin, NIM A 725 (2013) 141 (PPC); clsim (C. Kopper et al.).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ariasim.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "DEFAULT_RUN",
    "LAYOUT_KEYS",
    "MAX_EXTENT_M",
    "MAX_OVERSIZE",
    "build",
    "resolve_config",
]

#: Every key a run configuration may have; ``None``: the library's default.
DEFAULTS: dict[str, Any] = {
    "seed": 1,
    "n_events": None,
    "n_threads": None,
    "batch_size": None,
    "method": None,
    "out": "hits.parquet",
    "counts_out": None,
    "source": {
        "type": "flasher",
        "position_m": None,
        "n_photons": None,
        "wavelength_nm": None,
        "time_ns": None,
        "energy_gev": None,
        "length_m": None,
        "direction": None,
    },
    "medium": {
        "name": "bulk-ice",
        "g": None,
        "sl_fraction": None,
        "absorption_length_m": None,
        "effective_scattering_length_m": None,
        "wavelength_dependent": None,
        "ice_table": None,
        "tilt": None,
        "anisotropy": None,
        "birefringence": None,
    },
    "detector": {
        "layout": "distance",
        "distance_m": None,
        "n_modules": None,
        "n_strings": None,
        "modules_per_string": None,
        "string_spacing_m": None,
        "module_spacing_m": None,
        "string_layout": None,
        "geometry": None,
        "radius_m": None,
        "oversize": None,
        "angular_acceptance": None,
        "wavelength_acceptance": None,
        "acceptance_mode": None,
    },
}

#: The default run where the library has no default: the flasher's photon count and the
#: module layouts (a ring of six modules 20 m from the source; six strings of 60 modules
#: on a ring of radius 20 m).
DEFAULT_RUN: dict[str, dict[str, dict[str, Any]]] = {
    "source": {"flasher": {"n_photons": 1.0e7}},
    "detector": {
        "distance": {"distance_m": 20.0, "n_modules": 6},
        "strings": {
            "n_strings": 6,
            "modules_per_string": 60,
            "string_spacing_m": 20.0,
            "string_layout": "ring",
        },
    },
}

#: Detector keys that apply to one layout only.
#: Largest distance of a module from the source [m]: light in ice or water is absorbed
#: within a few km, and the kernel's spatial index must stay finite.
MAX_EXTENT_M = 1.0e5
#: Largest module oversize factor (PPC uses up to about 16).
MAX_OVERSIZE = 1000.0

LAYOUT_KEYS: dict[str, tuple[str, ...]] = {
    "distance": ("distance_m", "n_modules"),
    "strings": (
        "n_strings",
        "modules_per_string",
        "string_spacing_m",
        "module_spacing_m",
        "string_layout",
    ),
    "geometry": ("geometry",),
}

_SECTIONS = ("source", "medium", "detector")


def _merge(base: dict[str, Any], new: dict[str, Any], prefix: str = "") -> None:
    for key, value in new.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown configuration key; known: {sorted(base)}", parameter=name)
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError("expected a table", parameter=name)
            _merge(base[key], value, prefix=f"{name}.")
        else:
            base[key] = value


def resolve_config(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Merge configuration layers over :data:`DEFAULTS` (later layers win).

    Arguments:
        *layers: Nested dicts (e.g. the TOML file, then command-line overrides); ``None``
            values inside a layer are ignored so unset flags do not override.
    """
    cfg = copy.deepcopy(DEFAULTS)
    for layer in layers:
        if layer:
            _merge(cfg, _drop_none(layer))
    return cfg


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _drop_none(v)
        elif v is not None:
            out[k] = v
    return out


def _num(
    cfg: dict[str, Any],
    key: str,
    name: str,
    *,
    lo: float | None = None,
    positive: bool = False,
    integer: bool = False,
    allow_none: bool = False,
) -> Any:
    v = cfg[key]
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ConfigError(f"expected a number, got {v!r}", parameter=name)
    # an infinite scattering length is a medium without scattering; any other infinity
    # (an absorption length: photons that scatter forever) is refused
    if not math.isfinite(float(v)) and not (
        float(v) == math.inf and key == "effective_scattering_length_m"
    ):
        raise ConfigError(f"expected a finite number, got {v!r}", parameter=name)
    if positive and not float(v) > 0:
        raise ConfigError(f"must be > 0, got {v!r}", parameter=name)
    if lo is not None and float(v) < lo:
        raise ConfigError(f"must be >= {lo}, got {v!r}", parameter=name)
    if integer:
        if float(v) != int(v):
            raise ConfigError(f"expected an integer, got {v!r}", parameter=name)
        return int(v)
    return float(v)


def _wrap(
    name: str, fn: Any, *args: Any, labels: Mapping[str, str] | None = None, **kw: Any
) -> Any:
    """Call a constructor, re-labelling its ConfigError with the configuration key.

    ``name`` is the section (``"medium"``...) or a key (``"detector.geometry"``); a
    parameter named by the constructor becomes ``section.parameter`` (with the user's
    label for it, if any).
    """
    labels = labels or {}
    section = name.split(".")[0]
    try:
        return fn(*args, **kw)
    except ConfigError as exc:
        sub = exc.parameter if exc.parameter and exc.parameter != section else None
        key = f"{section}.{sub}" if sub else name
        key = {
            "source.start_m": "source.position_m",
            "medium.path": "medium.ice_table",
            "detector.layout": "detector.string_layout",
        }.get(key, key)
        msg = str(exc).split(": ", 1)[-1] if exc.parameter else str(exc)
        raise ConfigError(msg, parameter=labels.get(key, key)) from exc


def _check_applies(
    section: dict[str, Any],
    prefix: str,
    kind_key: str,
    kind: str,
    accepted: Any,
    accepting: Any,
    labels: Mapping[str, str],
) -> None:
    """A set key of ``section`` that the chosen kind does not take is an error naming it."""
    for key, value in section.items():
        if key == kind_key or value is None or key in accepted:
            continue
        where = accepting(key)
        lab = labels.get(f"{prefix}.{key}", f"{prefix}.{key}")
        kind_lab = labels.get(f"{prefix}.{kind_key}", f"{prefix}.{kind_key}")
        raise ConfigError(
            f"{lab} applies only to {kind_lab} {' or '.join(where)} (here {kind_lab} {kind})",
            parameter=lab,
        )


def build(
    cfg: dict[str, Any], labels: Mapping[str, str] | None = None
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Turn a resolved configuration into ``(source, medium, detector, run_kwargs)``.

    Only the keys that are set reach the library; the rest take its defaults.

    Arguments:
        cfg: Output of :func:`resolve_config`.
        labels: How to name a key in error messages (e.g. ``{"medium.ice_table":
            "--ice-table"}`` for a key set by a command-line flag); default the key.

    Example:
        >>> src, med, det, run = build(resolve_config({"medium": {"name": "water"}}))
        >>> med.name, det.n_modules, run["seed"]
        ('water', 6, 1)
        >>> build(resolve_config({"source": {"energy_gev": 5.0}}))
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'source.energy_gev': source.energy_gev applies \
only to source.type cascade (here source.type flasher)
    """
    from ariasim.simulators.photons import detector as det_mod
    from ariasim.simulators.photons import optics, sources

    labels = dict(labels or {})

    def lab(key: str) -> str:
        return labels.get(key, key)

    def num(section: dict[str, Any], key: str, prefix: str = "", **kw: Any) -> Any:
        full = f"{prefix}.{key}" if prefix else key
        return _num(section, key, lab(full), **kw)

    s = cfg["source"]
    m = cfg["medium"]
    d = cfg["detector"]
    run: dict[str, Any] = {"seed": num(cfg, "seed", lo=0, integer=True, allow_none=True)}
    for key in ("n_events", "n_threads", "batch_size"):
        if cfg[key] is not None:
            run[key] = num(cfg, key, lo=1, integer=True)
    if cfg["method"] is not None:
        if cfg["method"] not in ("grid", "naive"):
            raise ConfigError(
                f"expected 'grid' or 'naive', got {cfg['method']!r}", parameter=lab("method")
            )
        run["method"] = cfg["method"]

    # medium: the factory named by medium.name, with the keys that are set
    name = m["name"]
    if name not in optics.MEDIA:
        raise ConfigError(
            f"expected one of {', '.join(optics.MEDIA)}, got {name!r}", parameter=lab("medium.name")
        )
    _check_applies(
        m, "medium", "name", name, optics.medium_parameters(name), optics.media_accepting, labels
    )
    med_kw: dict[str, Any] = {}
    for key in ("g", "sl_fraction"):
        if m[key] is not None:
            med_kw[key] = num(m, key, "medium", lo=0.0)
    for key in ("absorption_length_m", "effective_scattering_length_m"):
        if m[key] is not None:
            med_kw[key] = num(m, key, "medium", positive=True)
    if m["wavelength_dependent"] is not None:
        med_kw["wavelength_dependent"] = bool(m["wavelength_dependent"])
    if m["ice_table"] is not None:
        med_kw["ice_table"] = m["ice_table"]
    for key in ("tilt", "anisotropy", "birefringence"):  # IceCube ice effects (ppc-ice)
        if m[key] is not None:
            if not isinstance(m[key], bool):
                raise ConfigError(
                    f"expected true or false, got {m[key]!r}", parameter=lab(f"medium.{key}")
                )
            med_kw[key] = m[key]
    medium = _wrap("medium", optics.make_medium, name, labels=labels, **med_kw)

    # source: the class named by source.type, with the keys that are set
    stype = s["type"]
    if stype not in sources.SOURCES:
        raise ConfigError(
            f"expected one of {', '.join(sources.SOURCES)}, got {stype!r}",
            parameter=lab("source.type"),
        )
    _check_applies(
        s,
        "source",
        "type",
        stype,
        sources.source_parameters(stype),
        lambda k: [t for t in sources.SOURCES if k in sources.source_parameters(t)],
        labels,
    )
    s = {**DEFAULT_RUN["source"].get(stype, {}), **{k: v for k, v in s.items() if v is not None}}
    pos = np.zeros(3)
    if "position_m" in s:
        try:
            pos = np.asarray(s["position_m"], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"expected three numbers, got {s['position_m']!r}",
                parameter=lab("source.position_m"),
            ) from exc
        if pos.shape != (3,) or not np.all(np.isfinite(pos)):
            raise ConfigError(
                f"expected three finite numbers, got {s['position_m']!r}",
                parameter=lab("source.position_m"),
            )
    src_kw: dict[str, Any] = {}
    for key, value in s.items():
        if key == "type":
            continue
        if key in ("position_m", "direction") or (
            key == "wavelength_nm" and isinstance(value, list)
        ):
            src_kw[key] = tuple(value)
        elif key == "wavelength_nm":
            src_kw[key] = num(s, key, "source", positive=True)
        elif key == "n_photons":
            src_kw[key] = num(s, key, "source", positive=True)
        elif key == "time_ns":
            src_kw[key] = num(s, key, "source")
        else:
            src_kw[key] = num(s, key, "source", positive=True)
    source = _wrap("source", sources.make_source, stype, labels=labels, **src_kw)

    # detector: module settings that are set, then the layout
    acc = d["angular_acceptance"]
    det_kw: dict[str, Any] = {}
    if d["radius_m"] is not None:
        det_kw["radius_m"] = num(d, "radius_m", "detector", positive=True)
    if d["oversize"] is not None:
        det_kw["oversize"] = num(d, "oversize", "detector", lo=1.0)
        if det_kw["oversize"] > MAX_OVERSIZE:
            raise ConfigError(
                f"must be <= {MAX_OVERSIZE:g}, got {d['oversize']!r}",
                parameter=lab("detector.oversize"),
            )
    if acc is not None:
        det_kw["angular_acceptance"] = tuple(acc) if isinstance(acc, list) else acc
    if d["wavelength_acceptance"] is not None:
        det_kw["wavelength_acceptance"] = bool(d["wavelength_acceptance"])
    if d["acceptance_mode"] is not None:
        det_kw["acceptance_mode"] = d["acceptance_mode"]
    layout = d["layout"]
    if layout not in LAYOUT_KEYS:
        raise ConfigError(
            f"expected one of {', '.join(LAYOUT_KEYS)}, got {layout!r}",
            parameter=lab("detector.layout"),
        )
    common = set(d) - {k for keys in LAYOUT_KEYS.values() for k in keys}
    _check_applies(
        d,
        "detector",
        "layout",
        layout,
        common | set(LAYOUT_KEYS[layout]),
        lambda k: [lay for lay, keys in LAYOUT_KEYS.items() if k in keys],
        labels,
    )
    d = {**DEFAULT_RUN["detector"].get(layout, {}), **{k: v for k, v in d.items() if v is not None}}
    if layout == "distance":
        dist = num(d, "distance_m", "detector", positive=True)
        nmod = num(d, "n_modules", "detector", lo=1, integer=True)
        phi = 2 * math.pi * np.arange(nmod) / nmod
        xyz = pos + dist * np.column_stack([np.cos(phi), np.sin(phi), np.zeros(nmod)])
        detector = _wrap("detector", det_mod.Detector, xyz, labels=labels, **det_kw)
    elif layout == "strings":
        str_kw = {"layout": d["string_layout"]}
        for key in ("string_spacing_m", "module_spacing_m"):
            if key in d:
                str_kw[key] = num(d, key, "detector", positive=True)
        detector = _wrap(
            "detector",
            det_mod.string_detector,
            num(d, "n_strings", "detector", lo=1, integer=True),
            num(d, "modules_per_string", "detector", lo=1, integer=True),
            center_m=tuple(pos),
            labels=labels,
            **str_kw,
            **det_kw,
        )
    else:
        if not d.get("geometry"):
            raise ConfigError(
                "layout 'geometry' needs a geometry file", parameter=lab("detector.geometry")
            )
        detector = _wrap(
            "detector.geometry", det_mod.read_geometry, d["geometry"], labels=labels, **det_kw
        )
    extent = float(np.max(np.abs(np.asarray(detector.positions_m, float) - pos), initial=0.0))
    if not extent <= MAX_EXTENT_M:
        key = {
            "distance": "detector.distance_m",
            "strings": "detector.string_spacing_m",
            "geometry": "detector.geometry",
        }[layout]
        raise ConfigError(
            f"modules up to {extent:.3g} m from the source; light travels a few "
            f"km at most (limit {MAX_EXTENT_M:g} m)",
            parameter=lab(key),
        )
    return source, medium, detector, run
