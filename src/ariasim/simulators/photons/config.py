"""Configuration of a photon simulation run: defaults, validation, construction.

A run is described by a nested dict (a TOML file in the CLI)::

    seed = 1
    n_events = 1
    out = "hits.parquet"

    [source]                  # type = flasher | cascade | muon
    type = "flasher"
    n_photons = 1e7
    wavelength_nm = 405.0     # or [lo, hi] for a flat band
    position_m = [0.0, 0.0, 0.0]

    [medium]                  # name = bulk-ice | water | constant | layered
    name = "bulk-ice"

    [detector]                # layout = distance | strings | geometry
    layout = "distance"
    distance_m = 20.0
    n_modules = 6

Unknown keys and bad values raise :class:`~ariasim.errors.ConfigError` naming the key
(``source.n_photons``...). This module imports only NumPy-level code (no numba).

References:
    D. Chirkin, NIM A 725 (2013) 141 (PPC); clsim (C. Kopper et al.).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from ariasim.errors import ConfigError

__all__ = ["DEFAULTS", "build", "resolve_config"]

DEFAULTS: dict[str, Any] = {
    "seed": 1,
    "n_events": 1,
    "n_threads": None,
    "batch_size": 1 << 19,
    "method": "grid",
    "out": "hits.parquet",
    "counts_out": None,
    "source": {
        "type": "flasher",
        "position_m": [0.0, 0.0, 0.0],
        "n_photons": 1.0e7,
        "wavelength_nm": 405.0,
        "time_ns": 0.0,
        "energy_gev": 10.0,
        "length_m": 10.0,
        "direction": [0.0, 0.0, -1.0],
    },
    "medium": {
        "name": "bulk-ice",
        "g": 0.9,
        "sl_fraction": 0.35,
        "absorption_length_m": None,
        "effective_scattering_length_m": None,
        "wavelength_dependent": False,
        "ice_table": None,
    },
    "detector": {
        "layout": "distance",
        "distance_m": 20.0,
        "n_modules": 6,
        "n_strings": 6,
        "modules_per_string": 60,
        "string_spacing_m": 20.0,
        "module_spacing_m": 17.0,
        "string_layout": "ring",
        "geometry": None,
        "radius_m": 0.1651,
        "oversize": 1.0,
        "angular_acceptance": "nominal",
        "wavelength_acceptance": True,
        "acceptance_mode": "rejection",
    },
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


def _num(cfg: dict[str, Any], key: str, name: str, *, lo: float | None = None,
         positive: bool = False, integer: bool = False, allow_none: bool = False) -> Any:
    v = cfg[key]
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ConfigError(f"expected a number, got {v!r}", parameter=name)
    if not math.isfinite(float(v)) and not (float(v) == math.inf and key.endswith("length_m")):
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


def _wrap(section: str, key: str, fn: Any, *args: Any, **kw: Any) -> Any:
    """Call a constructor, re-labelling its ConfigError with the config key."""
    try:
        return fn(*args, **kw)
    except ConfigError as exc:
        sub = exc.parameter if exc.parameter and exc.parameter != section else key
        param = f"{section}.{sub}"
        msg = str(exc).split(": ", 1)[-1] if exc.parameter else str(exc)
        raise ConfigError(msg, parameter=param) from exc


def build(cfg: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Turn a resolved configuration into ``(source, medium, detector, run_kwargs)``.

    Arguments:
        cfg: Output of :func:`resolve_config`.
    """
    from ariasim.simulators.photons import detector as det_mod
    from ariasim.simulators.photons import optics, sources

    s = cfg["source"]
    m = cfg["medium"]
    d = cfg["detector"]
    seed = _num(cfg, "seed", "seed", lo=0, integer=True)
    run = {
        "seed": seed,
        "n_events": _num(cfg, "n_events", "n_events", lo=1, integer=True),
        "n_threads": _num(cfg, "n_threads", "n_threads", lo=1, integer=True, allow_none=True),
        "batch_size": _num(cfg, "batch_size", "batch_size", lo=1, integer=True),
        "method": cfg["method"],
    }
    if run["method"] not in ("grid", "naive"):
        raise ConfigError(f"expected 'grid' or 'naive', got {run['method']!r}", parameter="method")

    medium = _wrap("medium", "name", optics.make_medium, m["name"],
                   g=_num(m, "g", "medium.g", lo=0.0),
                   sl_fraction=_num(m, "sl_fraction", "medium.sl_fraction", lo=0.0),
                   absorption_length_m=_num(m, "absorption_length_m",
                                            "medium.absorption_length_m", positive=True,
                                            allow_none=True),
                   effective_scattering_length_m=_num(m, "effective_scattering_length_m",
                                                      "medium.effective_scattering_length_m",
                                                      positive=True, allow_none=True),
                   ice_table=m["ice_table"], wavelength_dependent=bool(m["wavelength_dependent"]))

    acc = d["angular_acceptance"]
    det_kw = {
        "radius_m": _num(d, "radius_m", "detector.radius_m", positive=True),
        "oversize": _num(d, "oversize", "detector.oversize", lo=1.0),
        "angular_acceptance": tuple(acc) if isinstance(acc, list) else acc,
        "wavelength_acceptance": bool(d["wavelength_acceptance"]),
        "acceptance_mode": d["acceptance_mode"],
    }
    try:
        pos = np.asarray(s["position_m"], dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected three numbers, got {s['position_m']!r}",
                          parameter="source.position_m") from exc
    if pos.shape != (3,) or not np.all(np.isfinite(pos)):
        raise ConfigError(f"expected three finite numbers, got {s['position_m']!r}",
                          parameter="source.position_m")
    layout = d["layout"]
    if layout == "distance":
        dist = _num(d, "distance_m", "detector.distance_m", positive=True)
        nmod = _num(d, "n_modules", "detector.n_modules", lo=1, integer=True)
        phi = 2 * math.pi * np.arange(nmod) / nmod
        xyz = pos + dist * np.column_stack([np.cos(phi), np.sin(phi), np.zeros(nmod)])
        detector = _wrap("detector", "layout", det_mod.Detector, xyz, **det_kw)
    elif layout == "strings":
        detector = _wrap(
            "detector", "layout", det_mod.string_detector,
            _num(d, "n_strings", "detector.n_strings", lo=1, integer=True),
            _num(d, "modules_per_string", "detector.modules_per_string", lo=1, integer=True),
            string_spacing_m=_num(d, "string_spacing_m", "detector.string_spacing_m",
                                  positive=True),
            module_spacing_m=_num(d, "module_spacing_m", "detector.module_spacing_m",
                                  positive=True),
            layout=d["string_layout"], center_m=tuple(pos), **det_kw)
    elif layout == "geometry":
        if not d["geometry"]:
            raise ConfigError("layout 'geometry' needs a geometry file",
                              parameter="detector.geometry")
        detector = _wrap("detector", "geometry", det_mod.read_geometry, d["geometry"], **det_kw)
    else:
        raise ConfigError(f"expected 'distance', 'strings' or 'geometry', got {layout!r}",
                          parameter="detector.layout")

    stype = s["type"]
    wl = s["wavelength_nm"]
    if stype == "flasher":
        source = _wrap("source", "type", sources.Flasher, tuple(pos),
                       n_photons=_num(s, "n_photons", "source.n_photons", lo=0.0),
                       wavelength_nm=tuple(wl) if isinstance(wl, list) else wl,
                       time_ns=_num(s, "time_ns", "source.time_ns"))
    elif stype == "cascade":
        source = _wrap("source", "type", sources.Cascade, tuple(pos),
                       direction=tuple(s["direction"]),
                       energy_gev=_num(s, "energy_gev", "source.energy_gev", positive=True),
                       time_ns=_num(s, "time_ns", "source.time_ns"))
    elif stype == "muon":
        source = _wrap("source", "type", sources.MuonSegment, tuple(pos),
                       direction=tuple(s["direction"]),
                       length_m=_num(s, "length_m", "source.length_m", positive=True),
                       time_ns=_num(s, "time_ns", "source.time_ns"))
    else:
        raise ConfigError(f"expected 'flasher', 'cascade' or 'muon', got {stype!r}",
                          parameter="source.type")
    return source, medium, detector, run
