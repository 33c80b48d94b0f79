"""Surrogate-correction data: the symbolic photon surrogate against the photon Monte Carlo.

Issue 12 section 3 ("surrogate correction"): events drawn from the analytic photon
surrogate of :mod:`ariasim.apps.photons.surrogate` (a symbolic-regression yield formula and
a symbolic generalized-gamma delay density) are the *source*; the photon Monte Carlo of
the same source and module configurations is the *target*. A learner that corrects the
surrogate towards the MC must make the corrected surrogate indistinguishable from it.

Configuration (the one the surrogate is made for): isotropic 405 nm flashers of
``n_photons`` photons in homogeneous bulk ice, seen by the IceCube-like modules (nominal
angular and wavelength acceptance, PMT facing down) of
:func:`~ariasim.apps.shift.ice.ice_detector`; flasher positions as the cascade vertices of
:mod:`.ice` (:func:`~ariasim.apps.shift.ice.draw_vertices`).

* **target** (photon MC, :func:`~ariasim.apps.shift.ice.simulate_module_rows`): rows are
  (event, module) pairs with at least one hit and a distance in
  ``[min_distance_m, max_distance_m]`` (default 5-40 m, inside the surrogate's training
  range), at most ``max_rows_per_event`` (default 2) per event chosen at random.
* **source** (surrogate): for every module in the distance window, a charge drawn
  Poisson from the surrogate's expected hits ``N pi r^2 exp(f(d, cos_theta)) / (4 pi d^2)``;
  the same row rule (charge >= 1, at most ``max_rows_per_event`` at random); for each hit a
  delay drawn from the surrogate's delay density at that distance (exact numeric CDF
  inversion); ``t = delay - R r n_group / c``: the surrogate's delay is measured from the
  direct time to the point of arrival, and a module of (effective, oversized) radius
  ``R r`` is reached that much before its centre. The surrogate describes the photon
  field; the module geometry of the MC is given to it, so the shift left is the
  surrogate's own error.

Same features as :mod:`.ice` (``charge``, ``t_first_ns``, ``t_median_ns``, times minus
``distance_m / c_ice``); context ``distance_m`` and ``cos_theta``, the cosine of the angle
between +z and the flasher-to-module direction (the surrogate's orientation input; the
PMT faces -z). Homogeneous ice: the module height carries no information and is left out.

What the surrogate gets wrong, and the correction has to learn: its delay density ignores
the orientation (the downward-facing PMT sees the direct light of a flasher below it
better) and is a smooth formula of distance fitted to a finite table (medians of the
first-hit time about 2 ns early at 10-20 m and 3 ns late at 30-40 m against the MC); its
yield formula is within a few % of the table. The MC modules are oversized
(``oversize=5``, as in PPC production), which makes diffuse light arrive slightly early
(about 1-2 ns at these distances), beyond the geometric offset given to the surrogate.
The charges and the context agree (classifier AUC about 0.50 on charge, distance and
cos_theta); the first-hit times do not.

Measured (seed 1, 20,000 rows per side, default training, null standard deviation 0.0029,
:func:`ariasim.metrics.classifier_test`): surrogate vs MC AUC 0.678 on all columns, 0.637
on the features, 0.503 on the context; MC vs fresh MC 0.503, 0.498, 0.499. Rows per
CPU-second: surrogate about 15,000, MC about 260 (one thread), a factor of 60; surrogate
training 27 CPU-seconds (once).

The surrogate: pass one (a :class:`~ariasim.apps.photons.surrogate.PhotonSurrogate` or the
path of its JSON file, e.g. ``photon_surrogate_bulk_ice.json`` written by ``ariasim
demo``; it must take ``distance_m`` and ``cos_theta`` for the yield and ``distance_m``
for the delay), or let :func:`train_photon_surrogate` fit one (one shell table of bulk
ice, then symbolic regression with a fixed number of generations: about 35 CPU-seconds at
the default size, cached in the process; its CPU time is reported as
``cpu_seconds["surrogate_training"]``).

References:
    J. Lundberg et al., "Light tracking through ice and water -- Scattering and absorption
    in heterogeneous media with Photonics", NIM A 581 (2007) 619 (tabulated surrogates).
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC, oversize).
"""

from __future__ import annotations

import inspect
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.photons.surrogate import (
    PhotonSurrogate,
    fit_photon_surrogate,
    make_training_data,
)
from ariasim.apps.shift.ice import (
    C_ICE_M_PER_NS,
    FEATURES,
    ModuleRows,
    ShiftSamples,
    check_n_rows,
    check_positive,
    draw_vertices,
    ice_detector,
    keep_per_event,
    module_hit_features,
    simulate_module_rows,
)
from ariasim.errors import ConfigError
from ariasim.simulators.photons import Detector, Flasher, bulk_ice
from ariasim.simulators.photons.optics import SPEED_OF_LIGHT_M_PER_NS
from ariasim.utils import spawn_seeds

__all__ = [
    "SURROGATE_CONTEXT",
    "WAVELENGTH_NM",
    "photon_surrogate_samples",
    "surrogate_rows",
    "surrogate_source_rows",
    "train_photon_surrogate",
]

#: Context of the surrogate-correction rows.
SURROGATE_CONTEXT = ["distance_m", "cos_theta"]
#: Flasher wavelength [nm] (the surrogate's).
WAVELENGTH_NM = 405.0

_TRAINED: dict[tuple, tuple[PhotonSurrogate, float]] = {}


def train_photon_surrogate(
    *,
    seed: int = 0,
    n_photons: float = 3e5,
    radii_m: tuple[float, ...] = tuple(np.arange(4.0, 45.0, 4.0)),
    n_cos_bins: int = 4,
    generations_yield: int = 20,
    generations_density: int = 10,
) -> tuple[PhotonSurrogate, float]:
    """Fit a photon surrogate for bulk ice and the nominal module (cached per arguments).

    The ``ariasim demo --quick`` recipe on the distances of this application: a shell
    table of a 405 nm flasher in bulk ice (:func:`~ariasim.apps.photons.surrogate.
    make_training_data`), then the yield formula of ``(distance_m, cos_theta)`` and the
    delay density of ``distance_m`` (:func:`~ariasim.apps.photons.surrogate.
    fit_photon_surrogate`), stopped after a number of generations, so the same arguments
    give the same surrogate.

    Arguments:
        seed: Seed of the table and of the fits.
        n_photons: Photons of the shell table (the cost: about 70 CPU-microseconds each).
        radii_m: Shell radii [m] (should cover the distance window of the rows).
        n_cos_bins: Orientation bins of the table.
        generations_yield: Generations of the yield search.
        generations_density: Generations per parameter of the delay density.

    Returns:
        ``(surrogate, cpu_seconds)``; ``cpu_seconds`` is the training's CPU time when it
        was made (also when it comes from the cache).
    """
    key = (
        int(seed),
        float(n_photons),
        tuple(float(r) for r in radii_m),
        int(n_cos_bins),
        int(generations_yield),
        int(generations_density),
    )
    if key not in _TRAINED:
        c0 = time.process_time()
        table_seed, fit_seed = spawn_seeds(seed, 2)
        data = make_training_data(
            [bulk_ice()],
            list(radii_m),
            n_photons=n_photons,
            n_cos_bins=n_cos_bins,
            acceptance="nominal",
            wavelength_nm=WAVELENGTH_NM,
            seed=table_seed,
        )
        sur, _ = fit_photon_surrogate(
            data,
            yield_inputs=("distance_m", "cos_theta"),
            delay_inputs=("distance_m",),
            max_time_yield=600.0,
            max_time_density=120.0,
            generations_yield=generations_yield,
            generations_density=generations_density,
            seed=fit_seed,
        )
        if len(_TRAINED) >= 4:
            _TRAINED.pop(next(iter(_TRAINED)))
        _TRAINED[key] = (sur, time.process_time() - c0)
    return _TRAINED[key]


def _resolve_surrogate(surrogate: Any) -> PhotonSurrogate:
    if isinstance(surrogate, PhotonSurrogate):
        sur = surrogate
    elif isinstance(surrogate, (str, os.PathLike)):
        sur = PhotonSurrogate.load(surrogate)
    else:
        raise ConfigError(
            f"expected a PhotonSurrogate, a path to its JSON file or None, got "
            f"{type(surrogate).__name__}",
            parameter="surrogate",
        )
    if set(sur.yield_inputs) - {"distance_m", "cos_theta"} or sur.delay_inputs != ["distance_m"]:
        raise ConfigError(
            "the surrogate must take (distance_m[, cos_theta]) for the yield and distance_m "
            f"for the delay; it takes {sur.yield_inputs} and {sur.delay_inputs}",
            parameter="surrogate",
        )
    return sur


def _flashers(detector: Detector, n_photons: float) -> Any:
    def draw(rng: np.random.Generator, k: int) -> tuple[list, pd.DataFrame]:
        pos = draw_vertices(rng, k, detector)
        sources = [
            Flasher(position_m=tuple(p), n_photons=n_photons, wavelength_nm=WAVELENGTH_NM)
            for p in pos
        ]
        return sources, pd.DataFrame(
            {"src_x_m": pos[:, 0], "src_y_m": pos[:, 1], "src_z_m": pos[:, 2]}
        )

    return draw


def surrogate_rows(
    surrogate: PhotonSurrogate,
    detector: Detector,
    n_rows: int,
    *,
    seed: int,
    n_photons: float,
    events_per_chunk: int = 64,
    min_distance_m: float = 5.0,
    max_distance_m: float = 40.0,
    max_rows_per_event: int | None = 2,
    max_empty_chunks: int = 50,
) -> ModuleRows:
    """Rows of flasher events drawn from the surrogate (see the module docstring).

    Arguments:
        surrogate: The photon surrogate.
        detector: The modules (their positions and effective radius are used).
        n_rows: Rows wanted.
        seed: Split into the position, draw and row-choice streams.
        n_photons: Photons emitted per flasher.
        events_per_chunk: Flashers drawn at a time.
        min_distance_m, max_distance_m: The distance window of the rows.
        max_rows_per_event: Rows kept per event, at random among its hit modules.
        max_empty_chunks: Give up (ConfigError) after this many chunks in a row without
            a row.

    Returns:
        A :class:`~ariasim.apps.shift.ice.ModuleRows` with the same columns as the MC's
        (``n_photons`` 0: nothing is propagated).
    """
    pos_seed, draw_seed, pick_seed = spawn_seeds(seed, 3)
    pos_rng = np.random.default_rng(pos_seed)
    draw_rng = np.random.default_rng(draw_seed)
    pick_rng = np.random.default_rng(pick_seed)
    mods = detector.positions_m
    offset = detector.effective_radius_m * surrogate.n_group / SPEED_OF_LIGHT_M_PER_NS
    parts: list[pd.DataFrame] = []
    have = n_events = empty = 0
    c0 = time.process_time()
    while have < n_rows:
        src = draw_vertices(pos_rng, events_per_chunk, detector)
        vec = mods[None, :, :] - src[:, None, :]
        dist = np.linalg.norm(vec, axis=2)
        ev, mi = np.nonzero((dist >= min_distance_m) & (dist <= max_distance_m))
        d = dist[ev, mi]
        cos = vec[ev, mi, 2] / d
        mu = surrogate.expected_hits(d, n_photons, cos_theta=cos)
        q = draw_rng.poisson(mu)
        hit = q > 0
        ev, mi, d, cos, q = ev[hit], mi[hit], d[hit], cos[hit], q[hit]
        if max_rows_per_event is not None:
            keep = keep_per_event(ev, max_rows_per_event, pick_rng)
            ev, mi, d, cos, q = ev[keep], mi[keep], d[keep], cos[keep], q[keep]
        row = np.repeat(np.arange(ev.size), q)
        delays = surrogate.sample_delays(d[row], 1, draw_rng)[:, 0] if row.size else row * 0.0
        f = module_hit_features(ev[row], mi[row], delays - offset)
        # module_hit_features sorts by (event, module); bring the row attributes along
        order = np.lexsort((mi, ev))
        f["distance_m"] = d[order]
        f["cos_theta"] = cos[order]
        assert detector.module_ids is not None  # set by Detector.__post_init__
        f["module_id"] = detector.module_ids[mi[order]]
        f["event_id"] += n_events
        parts.append(f)
        have += len(f)
        n_events += events_per_chunk
        empty = 0 if len(f) else empty + 1
        if empty >= max_empty_chunks:
            raise ConfigError(
                f"the surrogate expects no hit in {empty} chunks of {events_per_chunk} "
                "flashers; raise n_photons",
                parameter="n_photons",
            )
    rows = pd.concat(parts, ignore_index=True).iloc[:n_rows].reset_index(drop=True)
    return ModuleRows(rows, time.process_time() - c0, 0.0, n_events, 0)


def _frame(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "charge": rows["charge"].to_numpy(np.int64),
            "t_first_ns": rows["t_first_ns"].to_numpy(float),
            "t_median_ns": rows["t_median_ns"].to_numpy(float),
            "distance_m": rows["distance_m"].to_numpy(float),
            "cos_theta": rows["cos_theta"].to_numpy(float),
        }
    )


def _check_window(
    n_photons: float,
    oversize: float,
    min_distance_m: float,
    max_distance_m: float,
    max_rows_per_event: int | None,
    events_per_chunk: int,
) -> tuple[float, dict[str, Any]]:
    """Checked ``oversize`` and the keyword arguments of the rows' simulation
    (:func:`surrogate_rows`: flasher photons, chunking, distance window, rows per event),
    shared by :func:`photon_surrogate_samples` and :func:`surrogate_source_rows`."""
    n_photons = check_positive(n_photons, "n_photons")
    oversize = check_positive(oversize, "oversize")
    max_distance_m = check_positive(max_distance_m, "max_distance_m")
    events_per_chunk = check_positive(events_per_chunk, "events_per_chunk", integer=True)
    if not 0 <= min_distance_m < max_distance_m:
        raise ConfigError(
            f"need 0 <= min_distance_m < max_distance_m, got {min_distance_m!r}",
            parameter="min_distance_m",
        )
    if max_rows_per_event is not None:
        max_rows_per_event = check_positive(max_rows_per_event, "max_rows_per_event", True)
    return oversize, {
        "n_photons": n_photons,
        "events_per_chunk": events_per_chunk,
        "min_distance_m": min_distance_m,
        "max_distance_m": max_distance_m,
        "max_rows_per_event": max_rows_per_event,
    }


def surrogate_source_rows(
    n_rows: int,
    surrogate: PhotonSurrogate | str | os.PathLike[str],
    *,
    seed: int,
    n_photons: float = 1e6,
    oversize: float = 5.0,
    min_distance_m: float = 5.0,
    max_distance_m: float = 40.0,
    max_rows_per_event: int | None = 2,
    events_per_chunk: int = 64,
) -> pd.DataFrame:
    """More source rows like those of :func:`photon_surrogate_samples`: fresh flashers,
    the given surrogate (not retrained), the same detector, distance window and row rule.

    The cheap side of the surrogate correction in quantity (about 0.26 CPU-ms per row
    against about 5 ms for the photon MC): the application's ``n_train_source`` adds these
    rows to the source's training rows (BENCHMARKS.md "The cheap side learned from 10x the
    rows: the photon surrogate's source quantiles": there, 10x the target's rows made the
    quantile morph worse on validation, so the default, equal sizes, stays).

    Arguments:
        n_rows: Rows wanted (positive).
        surrogate: The surrogate the source rows came from (a PhotonSurrogate, e.g.
            ``photon_surrogate_samples(...).models["source"]``, or the path of its JSON).
        seed: Seed of the flashers and draws; use a stream the samples did not use.
        n_photons, oversize, min_distance_m, max_distance_m, max_rows_per_event,
        events_per_chunk: As in :func:`photon_surrogate_samples` (the same values give
            the same distribution as its source rows).

    Returns:
        The rows, columns as the samples' (features then context).
    """
    n_rows = check_n_rows(n_rows)
    oversize, kw = _check_window(
        n_photons, oversize, min_distance_m, max_distance_m, max_rows_per_event, events_per_chunk
    )
    sur = _resolve_surrogate(surrogate)
    return _frame(surrogate_rows(sur, ice_detector(oversize), n_rows, seed=seed, **kw).rows)


def photon_surrogate_samples(
    n_rows: int,
    *,
    seed: int = 0,
    surrogate: PhotonSurrogate | str | os.PathLike[str] | None = None,
    fresh: bool = False,
    n_photons: float = 1e6,
    oversize: float = 5.0,
    min_distance_m: float = 5.0,
    max_distance_m: float = 40.0,
    max_rows_per_event: int | None = 2,
    events_per_chunk: int = 64,
    training: dict[str, Any] | None = None,
) -> ShiftSamples:
    """Surrogate-drawn rows (source) and photon-MC rows (target) of the same flashers.

    See the module docstring. The flasher positions of the two samples are independent
    draws of the same distribution (separate streams), as are those of ``fresh``.

    Arguments:
        n_rows: Rows per sample (positive).
        seed: Non-negative integer seed (split per sample with spawn_seeds).
        surrogate: A PhotonSurrogate, the path of its JSON file, or None to fit one with
            :func:`train_photon_surrogate` (``training`` holds its keyword arguments).
        fresh: Also simulate a second, independent MC sample.
        n_photons: Photons emitted per flasher.
        oversize: Module oversize factor of the MC.
        min_distance_m, max_distance_m: Distance window of the rows [m].
        max_rows_per_event: Rows kept per event at random (None: all).
        events_per_chunk: Flashers per simulation call.
        training: Keyword arguments of :func:`train_photon_surrogate` (only with
            ``surrogate=None``).

    Returns:
        A :class:`~ariasim.apps.shift.ice.ShiftSamples`: ``source`` from the surrogate,
        ``target`` (and ``fresh``) from the MC; ``cpu_seconds`` holds ``surrogate_training``
        (0 for a given surrogate); ``models["source"]`` is the surrogate (for
        :func:`surrogate_source_rows`). The spawn_seeds children of ``seed`` used: 0 to 2
        (0 and 1 also by :func:`train_photon_surrogate`).
    """
    n_rows = check_n_rows(n_rows)
    _, kw = _check_window(
        n_photons, oversize, min_distance_m, max_distance_m, max_rows_per_event, events_per_chunk
    )
    n_photons, events_per_chunk, max_distance_m, max_rows_per_event = (
        kw["n_photons"],
        kw["events_per_chunk"],
        kw["max_distance_m"],
        kw["max_rows_per_event"],
    )
    if surrogate is None:
        known = set(inspect.signature(train_photon_surrogate).parameters) - {"seed"}
        unknown = sorted(set(training or {}) - known)
        if unknown:
            raise ConfigError(
                f"unknown keys {unknown}; known: {sorted(known)}", parameter="training"
            )
        sur, train_cpu = train_photon_surrogate(seed=seed, **(training or {}))
    else:
        if training:
            raise ConfigError("only with surrogate=None", parameter="training")
        sur, train_cpu = _resolve_surrogate(surrogate), 0.0
    det = ice_detector(oversize)
    seeds = dict(zip(("source", "target", "fresh"), spawn_seeds(seed, 3), strict=True))
    out: dict[str, ModuleRows] = {
        "source": surrogate_rows(sur, det, n_rows, seed=seeds["source"], **kw)
    }
    medium = bulk_ice()
    for role in ("target", "fresh") if fresh else ("target",):
        mc = simulate_module_rows(
            _flashers(det, n_photons),
            medium,
            det,
            n_rows,
            seed=seeds[role],
            events_per_chunk=events_per_chunk,
            min_distance_m=min_distance_m,
            max_distance_m=max_distance_m,
            max_rows_per_event=max_rows_per_event,
        )
        src = mc.rows[["src_x_m", "src_y_m", "src_z_m"]].to_numpy()
        mc.rows["cos_theta"] = (mc.rows["z_m"].to_numpy() - src[:, 2]) / mc.rows[
            "distance_m"
        ].to_numpy()
        out[role] = mc
    frames = {role: _frame(r.rows) for role, r in out.items()}
    provenance = {
        "application": "photon-surrogate-correction",
        "surrogate": {
            "yield": str(sur.yield_formula),
            "delay": {k: str(f) for k, f in sur.delay.params_.items()},
            "metadata": sur.metadata,
            "trained_here": surrogate is None,
            "training": training or {},
        },
        "medium": medium.describe(),
        "detector": {**det.describe(), "layout": "7 strings x 40 modules (ice_detector)"},
        "sources": {"type": "flasher", "n_photons": n_photons, "wavelength_nm": WAVELENGTH_NM},
        "rows": "(event, module) with >= 1 hit and min_distance_m <= distance_m <= "
        "max_distance_m, at most max_rows_per_event per event at random",
        "min_distance_m": min_distance_m,
        "max_distance_m": max_distance_m,
        "max_rows_per_event": max_rows_per_event,
        "events_per_chunk": events_per_chunk,
        "time_reference": (
            f"hit time minus distance_m / {C_ICE_M_PER_NS} m/ns (flasher to module centre)"
        ),
        "seed": seed,
        "seeds": seeds,
        "n_rows": n_rows,
        "n_events": {role: r.n_events for role, r in out.items()},
        "n_photons_propagated": {role: r.n_photons for role, r in out.items()},
    }
    cpu = {role: r.cpu_seconds for role, r in out.items()}
    cpu["surrogate_training"] = train_cpu
    return ShiftSamples(
        source=frames["source"],
        target=frames["target"],
        fresh=frames.get("fresh"),
        features=list(FEATURES),
        context=list(SURROGATE_CONTEXT),
        cpu_seconds=cpu,
        provenance=provenance,
        events={role: r.rows["event_id"].to_numpy() for role, r in out.items()},
        models={"source": sur},
    )
