"""Ice-model shift data: per-module hit features simulated in an "old" and a "new" ice.

The proposal's main case for the domain-shift toolkit (issue 12 section 3): the same kind
of light sources simulated with two ice models give per-module hit features that differ;
a learner morphs the old sample to the new model instead of re-simulating it.

What is simulated (all with :func:`ariasim.simulators.photons.simulate`):

* **detector** (:func:`ice_detector`): 7 vertical strings, one in the centre and six on a
  hexagon of radius 25 m, 40 IceCube-like modules per string 5 m apart (nominal angular
  and wavelength acceptance), centred on depth 2000 m (detector z = 1948.07 m - depth),
  so the strings cross the dust layer of the example layered ice (depth 1950-2050 m);
* **sources** (:func:`draw_cascades`): electromagnetic cascades, vertex uniform in a
  vertical cylinder of radius 20 m around the centre string over the instrumented depth
  (at least 2 m from every module), isotropic direction, energy log-uniform in
  ``energy_gev`` (default 3-30 GeV), emitted at t = 0;
* **ice models** (:data:`ICE_MODELS`): ``"bulk"`` homogeneous SPICE bulk ice (lambda_e
  43 m, lambda_a 146 m at 400 nm); ``"layered"`` the layered example table shipped with
  ariasim (a smooth depth gradient, 10-30 % clearer than the bulk, plus a mild dust layer
  around 2000 m, lambda_e 14 m at its peak); ``"layered-dusty"`` the same table with the
  dust layer at SPICE strength (:func:`dusty_layered_ice`: lambda_e 9 m, lambda_a 30 m at
  the peak, REFERENCE.md section 1); and two homogeneous variants of the bulk with 10 %
  more scattering or dust absorption. The default pair is old ``"bulk"``, new
  ``"layered-dusty"``: the switch from a homogeneous to a layered ice, a depth-dependent
  shift (later, fewer hits in and across the dust layer, earlier ones in the clearer ice
  below and above).

Rows: (event, module) pairs with at least one detected photon and a source-module
distance of at most ``max_distance_m`` (default 40 m); of each event at most
``max_rows_per_event`` (default 2) such rows are kept, chosen at random. Rows of one event
share their source and are correlated: with all of them (about 8 per event) a classifier
two-sample test, which assumes independent rows, tells two *independent samples of the
same ice* apart (AUC about 0.52 at 3000 rows, it recognises events), while with two per
event it does not.

* features: ``charge`` (int64, detected photons = photo-electrons), ``t_first_ns`` and
  ``t_median_ns``, the first and median hit time **minus the direct travel time** from
  the cascade vertex to the module centre, ``d / c_ice`` with ``c_ice = 0.22103 m/ns``
  (c / n_group, n_group = 1.35634). Direct light therefore has a time near 0; it can be
  negative by up to about 10 ns for modules ahead of the cascade (its light is emitted
  along a few metres of shower that advance at c, 1.2 ns per metre ahead of light in ice)
  and by a few ns more on the oversized module (hits on its surface, up to ``oversize x
  0.165 m`` before the centre); scattered light is delayed by up to microseconds (heavy
  tail). A module with one hit (about 2/3 of the
  rows) has ``t_median_ns == t_first_ns`` (a discrete feature of real data);
* context: ``distance_m`` (vertex to module centre), ``cos_view`` (cosine of the angle
  between the cascade axis and the vertex-to-module direction; 0.75 is on the Cherenkov
  cone), ``z_m`` (module height; the depth is 1948.07 m - z, what the layered ice depends
  on). The cascade energy is *not* context: it is the same for the rows of an event, so
  a classifier would recognise events by it (it is kept nowhere in the tables).

Caveat for the learners: rows exist only where a module saw light, so the ice model also
changes *which* (event, module) pairs are rows: the context distribution of the rows
differs between the samples (fewer rows across the dust layer). A morpher that keeps the
context of the old rows cannot remove that part of the shift; a reweighting on the
context columns can.

Measured (seed 1, 20,000 rows per side, :func:`ariasim.metrics.classifier_test`, null
standard deviation 0.0029): old vs new AUC 0.668 on all columns, 0.591 on the features
alone, 0.562 on the context alone; new vs fresh new 0.506, 0.502 and 0.506. At 500-600
rows per side: about 0.62 on all columns (null standard deviation 0.017).

Cost: modules are oversized (``oversize=5``, 25x fewer photons; the same in both ice
models, so its timing bias of a few ns cancels in the comparison). Each sample is
simulated in chunks of ``events_per_chunk`` events until it has ``n_rows`` rows; the rows
of the last chunk beyond ``n_rows`` are dropped, so a smaller sample is a prefix of a
larger one with the same seed. ``cpu_seconds`` is the process CPU time (all threads)
spent on each sample, the price of re-simulating it: 210 rows per CPU-second in the bulk
ice, 180 in the layered ice (one thread; 20,000 rows in about 95 and 110 CPU-seconds).

Reproducibility: the seed is split with :func:`ariasim.utils.spawn_seeds` into one stream
per sample (old, new, fresh new), each split into source, simulation and row-choice
streams; the photon simulator's output does not depend on threads or batch size, so the
same seed gives byte-identical tables.

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    M. G. Aartsen et al. (IceCube), "Measurement of South Pole ice transparency with the
    IceCube LED calibration system", NIM A 711 (2013) 73 (SPICE, layered ice).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.shift.samples import ShiftSamples
from ariasim.errors import ConfigError
from ariasim.simulators.photons import (
    Cascade,
    Detector,
    Flasher,
    Medium,
    bulk_ice,
    layered_ice,
    simulate,
)
from ariasim.simulators.photons.optics import (
    DEPTH_ORIGIN_M,
    example_ice_table_path,
    layered_ice_from_arrays,
)
from ariasim.utils import spawn_seeds

__all__ = [
    "C_ICE_M_PER_NS",
    "FEATURES",
    "ICE_CONTEXT",
    "ICE_MODELS",
    "SPICE_DUST_PEAK",
    "IceSamples",
    "ModuleRows",
    "ShiftSamples",
    "check_n_rows",
    "check_positive",
    "draw_cascades",
    "draw_vertices",
    "dusty_layered_ice",
    "ice_detector",
    "ice_model",
    "ice_samples",
    "keep_per_event",
    "module_hit_features",
    "simulate_module_rows",
]

#: Speed of light in ice used for the direct time [m/ns]: c / n_group, n_group = 1.35634.
C_ICE_M_PER_NS = 0.22103
#: Per-module hit features (charge is an integer count).
FEATURES = ["charge", "t_first_ns", "t_median_ns"]
#: Context of the ice-model rows.
ICE_CONTEXT = ["distance_m", "cos_view", "z_m"]
#: Depth of the detector centre [m] (the dust layer of the example layered ice).
CENTRE_DEPTH_M = 2000.0


def _scaled_bulk(name: str, scattering: float = 1.0, dust: float = 1.0) -> Medium:
    b = bulk_ice()
    return dataclasses.replace(
        b,
        name=name,
        b_e400_per_m=b.b_e400_per_m * scattering,
        a_dust400_per_m=b.a_dust400_per_m * dust,
    )


#: Peak dust-layer coefficients of the SPICE ice at 400 nm (REFERENCE.md section 1:
#: lambda_e about 9 m and lambda_a about 30 m near 2000 m depth).
SPICE_DUST_PEAK = {"b_e400": 1.0 / 9.0, "a_dust400": 1.0 / 30.0}


def dusty_layered_ice() -> Medium:
    """The example layered ice with its dust layer scaled to SPICE strength.

    The shipped example table (:func:`~ariasim.simulators.photons.layered_ice`) has a mild
    dust layer around 2000 m (peak ``lambda_e`` 14 m, ``lambda_a`` about 50 m). Here its
    excess over the straight line between the clean layers at 1920 m and 2080 m depth is
    scaled so that the peak reaches the SPICE values of :data:`SPICE_DUST_PEAK`
    (``lambda_e`` 9 m, ``lambda_a`` 30 m at 400 nm); the rest of the table is unchanged.

    Example:
        >>> m = dusty_layered_ice()
        >>> round(1 / float(m.b_e400_per_m.max()), 1), round(1 / float(m.a_dust400_per_m.max()))
        (9.0, 30)
    """
    path = example_ice_table_path()
    depth, b_e, a_dust, dtau = np.loadtxt(path, comments="#", ndmin=2).T
    out = []
    for col, peak in ((b_e, SPICE_DUST_PEAK["b_e400"]), (a_dust, SPICE_DUST_PEAK["a_dust400"])):
        lo, hi = np.interp([1920.0, 2080.0], depth, col)
        base = lo + (hi - lo) * (depth - 1920.0) / 160.0
        excess = np.where((depth > 1920.0) & (depth < 2080.0), np.clip(col - base, 0, None), 0.0)
        i = int(np.argmax(excess))
        out.append(base + excess * (peak - base[i]) / excess[i] if excess[i] > 0 else col)
        out[-1] = np.where(excess > 0, out[-1], col)
    return layered_ice_from_arrays(
        depth, out[0], out[1], dtau, name="layered-dusty", source_path=str(path)
    )


#: The ice models by name (factories, each returns a new :class:`Medium`).
ICE_MODELS: dict[str, Callable[[], Medium]] = {
    "bulk": bulk_ice,
    "layered": layered_ice,
    "layered-dusty": dusty_layered_ice,
    "bulk-scattering-10pc": lambda: _scaled_bulk("bulk-scattering-10pc", scattering=1.1),
    "bulk-absorption-10pc": lambda: _scaled_bulk("bulk-absorption-10pc", dust=1.1),
}


def ice_model(spec: str | Medium, parameter: str = "ice") -> Medium:
    """The medium named ``spec`` (a key of :data:`ICE_MODELS`) or ``spec`` itself.

    Arguments:
        spec: A name or a ready :class:`~ariasim.simulators.photons.Medium`.
        parameter: Name of the argument, for the error message.

    Example:
        >>> ice_model("layered").n_layers > 1, ice_model("bulk").n_layers
        (True, 1)
        >>> ice_model("granite", "old")
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'old': unknown ice model 'granite'; \
expected one of bulk, layered, layered-dusty, bulk-scattering-10pc, \
bulk-absorption-10pc, or a Medium
    """
    if isinstance(spec, Medium):
        return spec
    if not isinstance(spec, str) or spec not in ICE_MODELS:
        raise ConfigError(
            f"unknown ice model {spec!r}; expected one of {', '.join(ICE_MODELS)}, or a Medium",
            parameter=parameter,
        )
    return ICE_MODELS[spec]()


def ice_detector(oversize: float = 5.0) -> Detector:
    """Seven strings (centre + hexagon of radius 25 m) of 40 modules 5 m apart.

    Centred on depth 2000 m (detector z = 1948.07 m - depth), modules 0..39 on the centre
    string from the bottom up, then each outer string. Nominal IceCube acceptance.

    Arguments:
        oversize: Module oversize factor (photons to propagate fall as its square).

    Example:
        >>> det = ice_detector()
        >>> det.n_modules, round(float(det.positions_m[:, 2].min()), 2)
        (280, -149.43)
    """
    phi = np.arange(6) * math.pi / 3.0
    xy = np.vstack([[0.0, 0.0], 25.0 * np.column_stack([np.cos(phi), np.sin(phi)])])
    zs = (DEPTH_ORIGIN_M - CENTRE_DEPTH_M) + 5.0 * (np.arange(40) - 19.5)
    pos = np.array([(x, y, z) for x, y in xy for z in zs])
    try:
        return Detector(pos, oversize=float(oversize))
    except ConfigError as exc:
        raise ConfigError(exc.message, parameter="oversize") from exc


def draw_vertices(
    rng: np.random.Generator,
    n: int,
    detector: Detector,
    *,
    radius_m: float = 20.0,
    min_module_distance_m: float = 2.0,
) -> np.ndarray:
    """``n`` points uniform in a vertical cylinder over the detector's depth range.

    Arguments:
        rng: The source stream.
        n: Number of points.
        detector: The modules (their z range is the cylinder's; points closer than
            ``min_module_distance_m`` to a module are redrawn).
        radius_m: Cylinder radius around the z axis.
        min_module_distance_m: Smallest distance to a module.

    Returns:
        An ``(n, 3)`` array [m].

    Example:
        >>> draw_vertices(np.random.default_rng(0), 4, ice_detector()).shape
        (4, 3)
    """
    mods = detector.positions_m
    z_lo, z_hi = float(mods[:, 2].min()), float(mods[:, 2].max())
    pos = np.empty((n, 3))
    for i in range(n):
        while True:
            r = radius_m * math.sqrt(rng.random())
            ph = 2.0 * math.pi * rng.random()
            p = np.array([r * math.cos(ph), r * math.sin(ph), rng.uniform(z_lo, z_hi)])
            if np.min(np.linalg.norm(mods - p, axis=1)) >= min_module_distance_m:
                break
        pos[i] = p
    return pos


def draw_cascades(
    rng: np.random.Generator,
    n: int,
    detector: Detector,
    *,
    energy_gev: tuple[float, float] = (3.0, 30.0),
    radius_m: float = 20.0,
    min_module_distance_m: float = 2.0,
) -> tuple[list[Cascade], pd.DataFrame]:
    """Draw ``n`` cascades inside the detector (see the module docstring).

    Arguments:
        rng: The source stream.
        n: Number of cascades.
        detector: The modules (sets the depth range and the distance cut).
        energy_gev: ``(lo, hi)`` of the log-uniform energy.
        radius_m: Radius of the vertical cylinder of vertices around the z axis.
        min_module_distance_m: Vertices closer to a module are redrawn.

    Returns:
        The sources and a table with one row per source: ``src_x_m, src_y_m, src_z_m,
        dir_x, dir_y, dir_z, energy_gev``.

    Example:
        >>> srcs, table = draw_cascades(np.random.default_rng(0), 3, ice_detector())
        >>> len(srcs), list(table.columns)[-1], bool(table["energy_gev"].between(3, 30).all())
        (3, 'energy_gev', True)
    """
    pos = draw_vertices(
        rng, n, detector, radius_m=radius_m, min_module_distance_m=min_module_distance_m
    )
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    lo, hi = energy_gev
    e = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
    sources = [
        Cascade(position_m=tuple(pos[i]), direction=tuple(d[i]), energy_gev=float(e[i]))
        for i in range(n)
    ]
    table = pd.DataFrame(
        {
            "src_x_m": pos[:, 0],
            "src_y_m": pos[:, 1],
            "src_z_m": pos[:, 2],
            "dir_x": d[:, 0],
            "dir_y": d[:, 1],
            "dir_z": d[:, 2],
            "energy_gev": e,
        }
    )
    return sources, table


def module_hit_features(
    event_id: np.ndarray, module_id: np.ndarray, time_ns: np.ndarray
) -> pd.DataFrame:
    """Per (event, module): number of hits, first and median hit time.

    Arguments:
        event_id, module_id, time_ns: One entry per hit (any order).

    Returns:
        Columns ``event_id, module_id, charge, t_first_ns, t_median_ns`` sorted by event
        and module (the median of an even number of hits is the mean of the middle two).

    Example:
        >>> module_hit_features(np.array([0, 0, 0, 1]), np.array([2, 2, 2, 5]),
        ...                     np.array([3.0, 1.0, 9.0, 4.0])).values.tolist()
        [[0.0, 2.0, 3.0, 1.0, 3.0], [1.0, 5.0, 1.0, 4.0, 4.0]]
    """
    e = np.asarray(event_id, dtype=np.int64)
    m = np.asarray(module_id, dtype=np.int64)
    t = np.asarray(time_ns, dtype=float)
    order = np.lexsort((t, m, e))
    e, m, t = e[order], m[order], t[order]
    if t.size == 0:
        start = np.zeros(0, dtype=np.int64)
    else:
        new = np.r_[True, (e[1:] != e[:-1]) | (m[1:] != m[:-1])]
        start = np.flatnonzero(new)
    n = np.diff(np.r_[start, t.size])
    lo = start + (n - 1) // 2
    hi = start + n // 2
    return pd.DataFrame(
        {
            "event_id": e[start],
            "module_id": m[start],
            "charge": n.astype(np.int64),
            "t_first_ns": t[start],
            "t_median_ns": 0.5 * (t[lo] + t[hi]),
        }
    )


@dataclass
class ModuleRows:
    """Rows of one simulated sample (see :func:`simulate_module_rows`).

    Arguments:
        rows: One row per (event, module) with hits: ``event_id, module_id, charge,
            t_first_ns, t_median_ns`` (times minus ``distance_m / c_ice``), ``distance_m``,
            the module position ``x_m, y_m, z_m`` and the source table's columns.
        cpu_seconds: Process CPU time (all threads) of drawing, simulating and reducing.
        kernel_cpu_seconds: CPU time inside the photon kernel only.
        n_events: Events simulated (including the dropped tail of the last chunk).
        n_photons: Photons propagated.

    Example:
        >>> r = ModuleRows(pd.DataFrame({"charge": [1]}), 0.5, 0.4, 3, 1000)
        >>> r.rows_per_cpu_second
        2.0
    """

    rows: pd.DataFrame
    cpu_seconds: float
    kernel_cpu_seconds: float
    n_events: int
    n_photons: int

    @property
    def rows_per_cpu_second(self) -> float:
        """Rows per process CPU-second."""
        return len(self.rows) / self.cpu_seconds if self.cpu_seconds > 0 else math.inf


def _warm_up(medium: Medium, detector: Detector) -> None:
    """Compile (or load) the photon kernel outside the timed region."""
    simulate(Flasher(n_photons=200.0), medium, detector, seed=0)


def simulate_module_rows(
    make_sources: Callable[[np.random.Generator, int], tuple[list, pd.DataFrame]],
    medium: Medium,
    detector: Detector,
    n_rows: int,
    *,
    seed: int,
    events_per_chunk: int = 16,
    max_distance_m: float = 40.0,
    min_distance_m: float = 0.0,
    max_rows_per_event: int | None = None,
    max_empty_chunks: int = 50,
) -> ModuleRows:
    """Simulate events chunk by chunk until ``n_rows`` (event, module) rows have hits.

    Arguments:
        make_sources: ``(rng, k) -> (sources, table)`` draws ``k`` sources and a table
            with a row per source holding at least ``src_x_m, src_y_m, src_z_m`` (the
            point the direct time is measured from; emission at t = 0).
        medium: The ice.
        detector: The modules.
        n_rows: Rows wanted (the last chunk's extra rows are dropped).
        seed: Split into the source stream and the simulation stream.
        events_per_chunk: Events per :func:`~ariasim.simulators.photons.simulate` call.
        max_distance_m: Rows farther from their source are dropped.
        min_distance_m: Rows closer to their source are dropped.
        max_rows_per_event: Keep at most this many rows of an event, chosen uniformly at
            random among its rows (None: all). Rows of one event share their source, so
            they are correlated; a classifier two-sample test on rows assumes independent
            rows and sees the clusters of a few events as a difference.
        max_empty_chunks: Give up (ConfigError) after this many chunks in a row without
            a single row (a medium too opaque for the detector).

    Returns:
        A :class:`ModuleRows`.
    """
    src_seed, sim_seed, pick_seed = spawn_seeds(seed, 3)
    src_rng = np.random.default_rng(src_seed)
    sim_rng = np.random.default_rng(sim_seed)
    pick_rng = np.random.default_rng(pick_seed)
    _warm_up(medium, detector)
    mods = detector.positions_m
    parts: list[pd.DataFrame] = []
    have = n_events = n_photons = empty = 0
    cpu = kernel_cpu = 0.0
    while have < n_rows:
        c0 = time.process_time()
        sources, table = make_sources(src_rng, events_per_chunk)
        res = simulate(sources, medium, detector, seed=spawn_seeds(sim_rng, 1)[0])
        h = res.hits
        f = module_hit_features(
            h["event_id"].to_numpy(), h["module_id"].to_numpy(), h["time_ns"].to_numpy()
        )
        ev = f["event_id"].to_numpy()
        assert detector.module_ids is not None  # set by Detector.__post_init__
        mi = np.searchsorted(detector.module_ids, f["module_id"].to_numpy())
        src = table[["src_x_m", "src_y_m", "src_z_m"]].to_numpy()[ev]
        dist = np.linalg.norm(mods[mi] - src, axis=1)
        direct = dist / C_ICE_M_PER_NS
        f["t_first_ns"] -= direct
        f["t_median_ns"] -= direct
        f["distance_m"] = dist
        f["x_m"], f["y_m"], f["z_m"] = mods[mi, 0], mods[mi, 1], mods[mi, 2]
        for col in table.columns:
            f[col] = table[col].to_numpy()[ev]
        f = f[(dist <= max_distance_m) & (dist >= min_distance_m)].reset_index(drop=True)
        if max_rows_per_event is not None:
            f = f[keep_per_event(f["event_id"].to_numpy(), max_rows_per_event, pick_rng)]
        f["event_id"] += n_events
        parts.append(f)
        have += len(f)
        n_events += events_per_chunk
        n_photons += res.n_photons
        kernel_cpu += res.cpu_s
        cpu += time.process_time() - c0
        empty = 0 if len(f) else empty + 1
        if empty >= max_empty_chunks:
            raise ConfigError(
                f"no module saw light in {empty} chunks of {events_per_chunk} events; the "
                "medium is too opaque for this detector",
                parameter="medium",
            )
    rows = pd.concat(parts, ignore_index=True).iloc[:n_rows].reset_index(drop=True)
    return ModuleRows(rows, cpu, kernel_cpu, n_events, n_photons)


def keep_per_event(event: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Mask keeping ``k`` random rows of each event (all rows of smaller events).

    Arguments:
        event: Event id of each row.
        k: Rows to keep per event.
        rng: The row-choice stream.

    Example:
        >>> keep_per_event(np.array([0, 0, 0, 1]), 2, np.random.default_rng(0)).sum()
        np.int64(3)
    """
    u = rng.random(event.size)
    order = np.lexsort((u, event))
    ev = event[order]
    start = np.r_[0, np.flatnonzero(ev[1:] != ev[:-1]) + 1] if ev.size else np.zeros(0, int)
    first = np.repeat(start, np.diff(np.r_[start, ev.size]))
    keep = np.zeros(event.size, dtype=bool)
    keep[order] = (np.arange(ev.size) - first) < k
    return keep


#: The name the ice-model application uses for :class:`ShiftSamples`.
IceSamples = ShiftSamples


def check_n_rows(n_rows: Any) -> int:
    """``n_rows`` as a positive int, else a ConfigError naming it.

    Example:
        >>> check_n_rows(5)
        5
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ConfigError(f"must be a positive integer, got {n_rows!r}", parameter="n_rows")
    return int(n_rows)


def _check_range(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected (lo, hi), got {value!r}", parameter=name) from exc
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ConfigError(f"need 0 < lo <= hi, finite, got {value!r}", parameter=name)
    return lo, hi


def check_positive(value: Any, name: str, integer: bool = False) -> Any:
    """``value`` as a positive finite float (or int), else a ConfigError naming ``name``.

    Example:
        >>> check_positive(3, "events_per_chunk", integer=True)
        3
    """
    bad = isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
    if bad or not (value > 0 and math.isfinite(value)) or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive finite number"
        raise ConfigError(f"must be {kind}, got {value!r}", parameter=name)
    return int(value) if integer else float(value)


def ice_samples(
    n_rows: int,
    *,
    old: str | Medium = "bulk",
    new: str | Medium = "layered-dusty",
    seed: int = 0,
    fresh: bool = False,
    energy_gev: tuple[float, float] = (3.0, 30.0),
    oversize: float = 5.0,
    max_distance_m: float = 40.0,
    max_rows_per_event: int | None = 2,
    events_per_chunk: int = 64,
) -> ShiftSamples:
    """Per-module hit features of cascades simulated in an old and a new ice model.

    See the module docstring for the detector, sources, features and context. The source
    sample is the old ice, the target the new ice; with ``fresh=True`` a second,
    independent new-ice sample of the same size is made too.

    Arguments:
        n_rows: Rows per sample (positive).
        old: Old ice model: a name of :data:`ICE_MODELS` or a Medium.
        new: New ice model (likewise).
        seed: Non-negative integer seed; the three samples get independent streams.
        fresh: Also simulate a second new-ice sample (``fresh``).
        energy_gev: ``(lo, hi)`` of the log-uniform cascade energy [GeV].
        oversize: Module oversize factor (>= 1).
        max_distance_m: Largest source-module distance of a row [m].
        max_rows_per_event: Rows kept per event, at random among its hit modules (None:
            all; see :func:`simulate_module_rows`).
        events_per_chunk: Cascades per simulation call (the result depends on it).

    Returns:
        A :class:`ShiftSamples` (alias :data:`IceSamples`).
    """
    n_rows = check_n_rows(n_rows)
    old_m = ice_model(old, "old")
    new_m = ice_model(new, "new")
    energy = _check_range(energy_gev, "energy_gev")
    max_d = check_positive(max_distance_m, "max_distance_m")
    per_chunk = check_positive(events_per_chunk, "events_per_chunk", integer=True)
    if max_rows_per_event is not None:
        max_rows_per_event = check_positive(max_rows_per_event, "max_rows_per_event", integer=True)
    check_positive(oversize, "oversize")
    det = ice_detector(oversize)
    seeds = dict(zip(("source", "target", "fresh"), spawn_seeds(seed, 3), strict=True))

    def draw(rng: np.random.Generator, k: int) -> tuple[list, pd.DataFrame]:
        return draw_cascades(rng, k, det, energy_gev=energy)

    roles = {"source": old_m, "target": new_m, **({"fresh": new_m} if fresh else {})}
    out: dict[str, ModuleRows] = {}
    for role, medium in roles.items():
        out[role] = simulate_module_rows(
            draw,
            medium,
            det,
            n_rows,
            seed=seeds[role],
            events_per_chunk=per_chunk,
            max_distance_m=max_d,
            max_rows_per_event=max_rows_per_event,
        )
    frames = {role: _ice_frame(r.rows) for role, r in out.items()}
    provenance = {
        "application": "ice-models",
        "old_model": old if isinstance(old, str) else old_m.name,
        "new_model": new if isinstance(new, str) else new_m.name,
        "old": old_m.describe(),
        "new": new_m.describe(),
        "detector": {**det.describe(), "layout": "7 strings x 40 modules (ice_detector)"},
        "sources": {
            "type": "cascade",
            "energy_gev_log_uniform": list(energy),
            "vertex": "uniform in a cylinder r <= 20 m over the instrumented depth",
            "direction": "isotropic",
        },
        "rows": "(event, module) with >= 1 hit and distance_m <= max_distance_m",
        "max_distance_m": max_d,
        "max_rows_per_event": max_rows_per_event,
        "events_per_chunk": per_chunk,
        "time_reference": (
            f"hit time minus distance_m / {C_ICE_M_PER_NS} m/ns (vertex to module centre)"
        ),
        "seed": seed,
        "seeds": seeds,
        "n_rows": n_rows,
        "n_events": {role: r.n_events for role, r in out.items()},
        "n_photons": {role: r.n_photons for role, r in out.items()},
        "kernel_cpu_seconds": {role: r.kernel_cpu_seconds for role, r in out.items()},
        "events_with_rows": {role: int(r.rows["event_id"].nunique()) for role, r in out.items()},
    }
    return ShiftSamples(
        source=frames["source"],
        target=frames["target"],
        fresh=frames.get("fresh"),
        features=list(FEATURES),
        context=list(ICE_CONTEXT),
        cpu_seconds={role: r.cpu_seconds for role, r in out.items()},
        provenance=provenance,
        events={role: r.rows["event_id"].to_numpy() for role, r in out.items()},
    )


def _ice_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Feature and context columns of the ice rows."""
    src = rows[["src_x_m", "src_y_m", "src_z_m"]].to_numpy()
    mod = rows[["x_m", "y_m", "z_m"]].to_numpy()
    axis = rows[["dir_x", "dir_y", "dir_z"]].to_numpy()
    dist = rows["distance_m"].to_numpy()
    cos_view = np.clip(np.einsum("ij,ij->i", mod - src, axis) / dist, -1.0, 1.0)
    return pd.DataFrame(
        {
            "charge": rows["charge"].to_numpy(np.int64),
            "t_first_ns": rows["t_first_ns"].to_numpy(float),
            "t_median_ns": rows["t_median_ns"].to_numpy(float),
            "distance_m": dist.astype(float),
            "cos_view": cos_view,
            "z_m": rows["z_m"].to_numpy(float),
        }
    )
