"""The atmospheric-muon background pipeline of a generic, scaled neutrino telescope.

Stages (each ``func(events, rng) -> events`` as :mod:`ariasim.active.pipeline` says):

1. ``primaries``: cosmic-ray nuclei from ``crflux`` with ``gen_weight`` [Hz];
2. ``bundles``: Elbert muon bundles at the surface (events without muons dropped);
3. ``propagation``: muons through the ice to and through the detector volume, with their
   stochastic losses (events without muons in the volume dropped);
4. the expensive stage, Cherenkov light of the muon tracks and of the losses near modules
   through :func:`ariasim.simulators.photons.simulate` on one numba thread, its CPU time
   per event in ``cpu_s``. By default (``preview_fraction = f = 0.1``) it is split in two:
   ``photons_preview`` simulates a fraction ``f`` of each event's photons and
   ``photons_rest`` the remaining ``1 - f``, merged per module (first time = minimum,
   charge = sum); the photon count is Poisson, so this is exactly the one-stage
   distribution (see :func:`muon_stages`). With ``preview_fraction = 0`` it is one stage,
   ``photons`` (one simulator call per event);
5. ``trigger``: SMT (``smt_modules`` hit modules in ``smt_window_ns``);
6. ``selection``, one of two (``MuonConfig.selection``, :data:`SELECTIONS`):
   ``"upgoing"`` (the default): improved line fit looking up-going or near-horizontal
   (``cos_zenith_reco <= cos_zenith_max``) with ``n_channels >= min_channels``, whose
   background is down-going muons misreconstructed; ``"bright"``: total charge
   ``>= min_charge`` with ``n_channels >= min_channels``, any direction, whose background
   is the bright tail of the muons (energetic bundles, large stochastic losses), as in
   IceCube's extremely-high-energy and diffuse analyses (Aartsen et al., Phys. Rev. D 98,
   062003 (2018); Phys. Rev. Lett. 111, 021103 (2013)).

A control point sits before the photons (``photons_preview`` or ``photons``) with the
scalar features known after propagation (:data:`CONTROL_FEATURES`); with the split, a
second one before ``photons_rest`` also sees the preview's hits (:data:`PREVIEW_FEATURES`:
channels, charge, strings, line-fit direction, depths and time span of the hits). A
controller there decides with the event's weight so far (generation weight times the
``1/a`` of the first decision), and the weights of the two decisions multiply.

The telescope is generic and scaled: a square grid of strings in homogeneous bulk ice at
1950 m, modules oversized ``oversize`` times (PPC's production choice) with the photon
count scaled by ``yield_scale`` (a module efficiency), and light only within ``near_m``
of a module. ``size="default"`` is sized so the photon stage dominates and a million
generated events take about an hour on two cores; ``size="ci"`` is a tiny version for
tests. Every parameter of :class:`MuonConfig` can be overridden by keyword.

The default telescope: 25 strings on an 80 m square grid, 30 modules each 15 m apart (a
320 m x 435 m array, denser than IceCube, about DeepCore's spacing), SPICE bulk ice at
1950 m, IceCube DOMs oversized 6 times (timing bias of a few ns, no change in the
expected hits), full module efficiency, light only within 60 m of a module; H3a primaries
(nuclei generated in proportion to their rates) with E^-2 from 500 GeV per nucleon to
10 PeV, zenith up to 85 degrees on a 458 m disc; SMT8 in 5 us; selection: reconstructed
up-going (cos zenith <= 0) with >= 12 channels. Measured on this development machine
(20,000 events, seed 1, one core, ``profile_pipeline(make_muon_pipeline(), 20_000)``):
0.5 ms CPU per generated event, 99 % of it in ``photons`` (about 66 ms per event that
reaches the detector: 0.75 % of them); 0.3 % trigger and 0.015 % pass, so a brute-force
reference of a few thousand final events is ~2e7 events (~3 CPU hours), built up in
resumable chunks. ``size="ci"`` (9 strings, oversize 16, yield 0.25, E > 2 TeV per
nucleon, SMT4, cos zenith <= 0.5 and >= 5 channels): 0.15 ms per event (8 ms per event at
the detector), efficiency 1.6e-3; a LightGBM classifier on the control-point features
separates passing events there with a held-out ROC AUC of 0.88 (40,000 events).

The ``"bright"`` selection's threshold, ``min_charge``, is the top decile of the triggered
events' total charge, about three times its median, rounded (measured before any
controller ran, on brute-force events, seeds 900+ and 500+): at ``default`` the median is
30 hits and the 90 % quantile 90 (100,000 events, 355 triggered), so ``min_charge = 90``
and a final efficiency of 3.6e-4 (5 % of the triggered rate); at ``ci`` 7 and 21 (300,000
events, 1,346 triggered), ``min_charge = 20``, efficiency 5e-4. ``min_channels`` is the
up-going selection's. The extremely-high-energy analyses cut far harder (the
atmospheric-muon background there is ~1e-5 of the triggered rate); the top decile keeps
the final efficiency below 1e-3 and a brute-force reference affordable.

References:
    See :mod:`ariasim.simulators.muons`, :mod:`ariasim.apps.muons.light` and
    :mod:`ariasim.apps.muons.reco`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ariasim.active.engine import round_sig
from ariasim.active.pipeline import ControlPoint, Pipeline, Stage
from ariasim.apps.muons.light import EventLight, event_sources
from ariasim.apps.muons.reco import improved_linefit, smt_trigger
from ariasim.errors import ConfigError
from ariasim.simulators.muons import (
    DEPTH_FEATURES,
    ElbertYield,
    EnergyLossModel,
    MuonSimulator,
    PrimaryGenerator,
)
from ariasim.simulators.photons import (
    Detector,
    MuonSegment,
    bulk_ice,
    simulate,
    string_detector,
)
from ariasim.simulators.photons.batches import photon_counts

__all__ = [
    "CONTROL_FEATURES",
    "OBSERVABLES",
    "PREVIEW_FEATURES",
    "SELECTIONS",
    "SIZES",
    "MuonConfig",
    "make_bright_muon_pipeline",
    "make_muon_pipeline",
    "make_upgoing_muon_pipeline",
    "merge_hits",
    "muon_stages",
    "preview_features",
]

#: Features of the control point before ``photons``.
CONTROL_FEATURES = (
    *DEPTH_FEATURES,
    "n_near_30m",
    "n_near_80m",
    "lead_z_axis_m",
    "cos_zenith",
    "log10_energy",
    "mass",
)
#: Features of the preview's hits (``photons_preview``), known before ``photons_rest``.
PREVIEW_FEATURES = (
    "pv_n_channels",
    "pv_total_charge",
    "pv_n_strings",
    "pv_cos_zenith_reco",
    "pv_z_first_m",
    "pv_z_last_m",
    "pv_t_span_ns",
    "pv_z_mean_m",
)
#: Final-level observables.
OBSERVABLES = ("cos_zenith_reco", "n_channels", "log10_charge", "log10_energy")
#: The final selections of :class:`MuonConfig` (``selection=``), each with a line saying
#: what it keeps.
SELECTIONS = {
    "upgoing": "line fit looking up-going (cos_zenith_reco <= cos_zenith_max) and "
    "n_channels >= min_channels: misreconstructed down-going muons",
    "bright": "total_charge >= min_charge and n_channels >= min_channels, any direction: "
    "the bright (high-energy) tail of the atmospheric muons",
}


@dataclass(frozen=True)
class MuonConfig:
    """All knobs of the muon pipeline (defaults: ``size="default"``).

    Arguments:
        flux_model: ``"H3a"``, ``"H4a"``, ``"GST3"`` or ``"GST4"``.
        gamma: Generation spectral index (or ``"flux"``: unweighted events).
        composition: Generation probability of the nuclei: ``"flux"`` (as their rates,
            the default: like weights across nuclei) or ``"equal"``.
        e_min_per_nucleon_gev: Lowest energy per nucleon generated.
        e_max_gev: Highest primary energy generated.
        zenith_max_deg: Largest zenith generated.
        v_cut: Relative cut between continuous and stochastic losses.
        n_strings: Strings (square grid).
        modules_per_string: Modules per string.
        string_spacing_m: Distance between strings.
        module_spacing_m: Vertical distance between modules.
        depth_m: Depth of the detector centre.
        oversize: Module oversize factor.
        yield_scale: Photon-yield scale (module efficiency).
        near_m: Light only from track parts and losses within this distance of a module.
        piece_m: Track pieces for the near-module cut.
        cascade_min_gev: Smallest stochastic loss simulated as a cascade.
        gen_margin_m: Generation disc radius beyond the volume's bounding sphere.
        smt_modules: SMT multiplicity.
        smt_window_ns: SMT window.
        selection: The final selection (see :data:`SELECTIONS`): ``"upgoing"`` (the
            default: line fit looking up-going or near-horizontal, ``cos_zenith_reco <=
            cos_zenith_max``, with ``n_channels >= min_channels``) or ``"bright"`` (a
            bright-event selection as in IceCube's extremely-high-energy and diffuse
            analyses: ``total_charge >= min_charge`` with ``n_channels >= min_channels``,
            any direction).
        cos_zenith_max: ``"upgoing"`` selection: largest reconstructed cos(zenith).
        min_channels: Selection: fewest hit modules.
        min_charge: ``"bright"`` selection: smallest total charge (hits summed over the
            modules).
        preview_fraction: Fraction ``f`` of each event's photons simulated in the
            ``photons_preview`` stage, before a second control point; the rest (``1 - f``)
            in ``photons_rest`` (see :func:`muon_stages`). 0: one ``photons`` stage and one
            control point.

    Example:
        >>> cfg = MuonConfig.for_size("ci", near_m=40.0)
        >>> cfg.near_m, cfg.n_strings
        (40.0, 9)
    """

    flux_model: str = "H3a"
    gamma: float | str = 2.0
    composition: str = "flux"
    e_min_per_nucleon_gev: float = 500.0
    e_max_gev: float = 1e7
    zenith_max_deg: float = 85.0
    v_cut: float = 0.05
    n_strings: int = 25
    modules_per_string: int = 30
    string_spacing_m: float = 80.0
    module_spacing_m: float = 15.0
    depth_m: float = 1950.0
    oversize: float = 6.0
    yield_scale: float = 1.0
    near_m: float = 60.0
    piece_m: float = 20.0
    cascade_min_gev: float = 1.0
    gen_margin_m: float = 60.0
    smt_modules: int = 8
    smt_window_ns: float = 5000.0
    selection: str = "upgoing"
    cos_zenith_max: float = 0.0
    min_channels: int = 12
    min_charge: float = 90.0
    preview_fraction: float = 0.1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("flux_model", "composition", "selection") or (
                f.name == "gamma" and v == "flux"
            ):
                continue
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                raise ConfigError(f"must be an integer, got {v!r}", parameter=f.name)
            if not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise ConfigError(f"must be a finite number, got {v!r}", parameter=f.name)
            if f.name not in ("cos_zenith_max", "preview_fraction", "min_charge") and v <= 0:
                raise ConfigError(f"must be > 0, got {v!r}", parameter=f.name)
        if not -1.0 <= self.cos_zenith_max <= 1.0:
            raise ConfigError(
                f"must be in [-1, 1], got {self.cos_zenith_max}", parameter="cos_zenith_max"
            )
        if self.selection not in SELECTIONS:
            raise ConfigError(
                f"unknown selection {self.selection!r}; expected one of {', '.join(SELECTIONS)}",
                parameter="selection",
            )
        if self.min_charge < 0:
            raise ConfigError(f"must be >= 0, got {self.min_charge}", parameter="min_charge")
        if not 0.0 <= self.preview_fraction < 1.0:
            raise ConfigError(
                f"must be in [0, 1), got {self.preview_fraction}", parameter="preview_fraction"
            )
        if self.oversize < 1:
            raise ConfigError(f"must be >= 1, got {self.oversize}", parameter="oversize")
        if self.smt_modules < 2:
            raise ConfigError(f"must be >= 2, got {self.smt_modules}", parameter="smt_modules")

    @classmethod
    def for_size(cls, size: str = "default", **overrides: Any) -> MuonConfig:
        """The configuration of a named size with keyword overrides.

        Arguments:
            size: A key of :data:`SIZES`.
            **overrides: Fields of :class:`MuonConfig`.
        """
        if size not in SIZES:
            raise ConfigError(
                f"unknown size {size!r}; expected one of {', '.join(SIZES)}", parameter="size"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        for key in overrides:
            if key not in names:
                raise ConfigError(
                    f"unknown muon-pipeline parameter; expected one of {', '.join(sorted(names))}",
                    parameter=key,
                )
        return cls(**{**SIZES[size], **overrides})

    @cached_property
    def detector(self) -> Detector:
        """The string detector (oversized modules)."""
        return string_detector(
            self.n_strings,
            self.modules_per_string,
            string_spacing_m=self.string_spacing_m,
            module_spacing_m=self.module_spacing_m,
            oversize=self.oversize,
        )

    @cached_property
    def simulator(self) -> MuonSimulator:
        """The muon simulator; its volume encloses every point within ``near_m`` of a module."""
        pos = self.detector.positions_m
        radius = float(np.max(np.hypot(pos[:, 0], pos[:, 1]))) + self.near_m
        half = float(np.max(np.abs(pos[:, 2]))) + self.near_m
        gen = PrimaryGenerator(
            flux_model=self.flux_model,
            gamma=self.gamma,
            composition=self.composition,
            e_min_per_nucleon_gev=self.e_min_per_nucleon_gev,
            e_max_gev=self.e_max_gev,
            zenith_max_deg=self.zenith_max_deg,
            radius_m=math.hypot(radius, half) + self.gen_margin_m,
        )
        return MuonSimulator(
            gen,
            ElbertYield(),
            EnergyLossModel(v_cut=self.v_cut),
            radius_m=radius,
            half_height_m=half,
            depth_m=self.depth_m,
        )

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return dataclasses.asdict(self)


#: Named sizes: overrides of the :class:`MuonConfig` defaults.
SIZES: dict[str, dict[str, Any]] = {
    "default": {},
    "ci": {
        "n_strings": 9,
        "modules_per_string": 12,
        "string_spacing_m": 60.0,
        "module_spacing_m": 20.0,
        "e_min_per_nucleon_gev": 2000.0,
        "oversize": 16.0,
        "yield_scale": 0.25,
        "near_m": 40.0,
        "smt_modules": 4,
        "cos_zenith_max": 0.5,
        "min_channels": 5,
        "min_charge": 20.0,
    },
}


def _event_seed(base: int, event_id: int) -> int:
    ss = np.random.SeedSequence((int(base), int(event_id)))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


#: Radii [m] of the geometric features ``n_near_<r>m``: modules within r of a muon track.
NEAR_RADII_M = (30.0, 80.0)


def near_module_features(
    at_depth: pd.DataFrame, events: pd.DataFrame, modules_m: np.ndarray
) -> dict[str, np.ndarray]:
    """Cheap geometric features known before the photons: per event, the number of modules
    within each of :data:`NEAR_RADII_M` of any of its muons' tracks in the volume (a proxy of
    how many channels the light can reach), and the depth ``z`` of the leading muon's
    closest approach to the detector axis.

    Arguments:
        at_depth: The propagation stage's table (``mu_entry``, ``mu_length_m``,
            ``mu_energy`` per event).
        events: The primaries' table (``dir_x, dir_y, dir_z`` by ``event_id``).
        modules_m: Module positions (N, 3).
    """
    dirs = events.set_index("event_id")[["dir_x", "dir_y", "dir_z"]]
    d_all = dirs.reindex(at_depth["event_id"]).to_numpy(float)
    n = len(at_depth)
    counts = {r: np.zeros(n, dtype=np.int64) for r in NEAR_RADII_M}
    z_lead = np.zeros(n)
    for k, (entry, length, energy) in enumerate(
        zip(at_depth["mu_entry"], at_depth["mu_length_m"], at_depth["mu_energy"], strict=True)
    ):
        a = np.asarray(entry, dtype=float).reshape(-1, 3)
        d = d_all[k]
        rel = modules_m[None, :, :] - a[:, None, :]
        t = np.clip(rel @ d, 0.0, np.asarray(length, dtype=float)[:, None])
        dist = np.linalg.norm(rel - t[:, :, None] * d, axis=2).min(axis=0)
        for r in NEAR_RADII_M:
            counts[r][k] = int(np.count_nonzero(dist < r))
        lead = int(np.argmax(np.asarray(energy)))
        horizontal = d[:2] @ d[:2]
        s = -(a[lead, :2] @ d[:2]) / horizontal if horizontal > 1e-12 else 0.0
        z_lead[k] = a[lead, 2] + s * d[2]
    out: dict[str, np.ndarray] = {f"n_near_{int(r)}m": counts[r] for r in NEAR_RADII_M}
    out["lead_z_axis_m"] = z_lead
    return out


def preview_features(
    modules_m: np.ndarray, hit_times: np.ndarray, charges: np.ndarray, string_of: np.ndarray
) -> dict[str, float]:
    """The features of :data:`PREVIEW_FEATURES` from one event's preview hits.

    Arguments:
        modules_m: (n, 3) positions of the hit modules.
        hit_times: (n,) their first-hit times [ns].
        charges: (n,) their hit counts.
        string_of: (n,) their string numbers.

    Example:
        >>> t = np.arange(4) * 50.0
        >>> pos = np.column_stack([np.zeros(4), np.zeros(4), -15.0 * np.arange(4)])
        >>> f = preview_features(pos, t, np.array([1, 2, 1, 3]), np.zeros(4))
        >>> f["pv_n_channels"], f["pv_total_charge"], round(f["pv_cos_zenith_reco"], 3)
        (4, 7, 1.0)
    """
    n = len(hit_times)
    out: dict[str, float] = {
        "pv_n_channels": n,
        "pv_total_charge": int(np.sum(charges)),
        "pv_n_strings": len(np.unique(string_of)),
        # no direction from fewer than two modules: a value outside [-1, 1]
        "pv_cos_zenith_reco": 2.0,
        "pv_z_first_m": 0.0,
        "pv_z_last_m": 0.0,
        "pv_t_span_ns": 0.0,
        "pv_z_mean_m": 0.0,
    }
    if n:
        first, last = int(np.argmin(hit_times)), int(np.argmax(hit_times))
        out["pv_z_first_m"] = float(modules_m[first, 2])
        out["pv_z_last_m"] = float(modules_m[last, 2])
        out["pv_t_span_ns"] = float(hit_times[last] - hit_times[first])
        out["pv_z_mean_m"] = float(np.average(modules_m[:, 2], weights=charges))
    if n >= 2:
        d, _ = improved_linefit(modules_m, hit_times)
        out["pv_cos_zenith_reco"] = float(-d[2])
    return out


def merge_hits(
    a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge two sets of per-module hits ``(module ids, first times, charges)``: per module
    the earliest time and the summed charge, sorted by module id.

    Example:
        >>> m, t, q = merge_hits((np.array([1, 4]), np.array([5.0, 2.0]), np.array([1, 2])),
        ...                      (np.array([4, 7]), np.array([1.0, 3.0]), np.array([3, 1])))
        >>> m.tolist(), t.tolist(), q.tolist()
        ([1, 4, 7], [5.0, 1.0, 3.0], [1, 5, 1])
    """
    mods = np.concatenate([a[0], b[0]])
    times = np.concatenate([a[1], b[1]])
    charge = np.concatenate([a[2], b[2]])
    ids, inv = np.unique(mods, return_inverse=True)
    t_first = np.full(ids.size, np.inf)
    np.minimum.at(t_first, inv, times)
    q = np.zeros(ids.size, np.int64)
    np.add.at(q, inv, charge)
    return ids.astype(np.int64), t_first, q


HIT_COLUMNS = (
    "event_id",
    "cpu_s",
    "n_photons",
    "hit_modules",
    "hit_times",
    "hit_charges",
    "n_channels",
    "total_charge",
)


def _empty_fix(out: pd.DataFrame, ints: tuple[str, ...]) -> pd.DataFrame:
    if out.empty:
        out = out.astype({"event_id": np.int64, "cpu_s": float, **dict.fromkeys(ints, np.int64)})
    return out


def muon_stages(cfg: MuonConfig) -> list[Stage]:
    """The stages of the pipeline for a configuration (see the module docstring).

    With ``cfg.preview_fraction = 0`` the photons of an event are simulated in one stage,
    ``photons``. With ``f = cfg.preview_fraction > 0`` they are split in two stages:
    ``photons_preview`` simulates the event's light with the photon yield scaled by ``f``
    and ``photons_rest`` with it scaled by ``1 - f`` (its own random stream); the rest's
    hits are merged with the preview's per module (first time = minimum, charge = sum).
    The photon count of an event is Poisson (:class:`EventLight`) and its photons are
    independent and identically distributed, so a Poisson(``f mu``) and an independent
    Poisson(``(1 - f) mu``) sample together are exactly a Poisson(``mu``) sample
    (thinning): the merged hits have the one-stage distribution, and the preview's
    cost is never lost. A second control point before ``photons_rest`` sees the
    preview's hits (:data:`PREVIEW_FEATURES`).

    Arguments:
        cfg: The configuration.
    """
    sim = cfg.simulator
    det = cfg.detector
    medium = bulk_ice()
    mods = det.positions_m
    ids = det.module_ids if det.module_ids is not None else np.arange(det.n_modules)
    pos_by_id = dict(zip(ids.tolist(), range(det.n_modules), strict=True))
    strings = (np.arange(det.n_modules) // cfg.modules_per_string).tolist()
    string_by_id = dict(zip(ids.tolist(), strings, strict=True))
    loss = sim.losses
    f = float(cfg.preview_fraction)

    def primaries(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return sim.primaries(events["event_id"].to_numpy(np.int64), rng)

    def bundles(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return sim.bundles(events, rng)

    def propagation(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        out = sim.propagate(events, rng)
        return out.assign(**near_module_features(out, events, mods))

    warm = [False]

    def warm_up(n: int) -> None:
        if not warm[0] and n:
            # load (or compile) the numba kernel once, outside the per-event CPU accounting
            simulate(MuonSegment(length_m=1.0), medium, det, seed=0, n_threads=1)
            warm[0] = True

    def sources(ev: Any) -> tuple[tuple, tuple]:
        srcs, scales = event_sources(
            (ev.dir_x, ev.dir_y, ev.dir_z),
            ev.mu_entry,
            ev.mu_length_m,
            ev.mu_energy,
            ev.loss_pos,
            ev.loss_energy,
            mods,
            near_m=cfg.near_m,
            piece_m=cfg.piece_m,
            cascade_min_gev=cfg.cascade_min_gev,
            b_continuous=loss.b_continuous,
            a_gev_per_mwe=loss.a_gev_per_mwe,
            b_total=loss.b,
        )
        return tuple(srcs), tuple(scales)

    def light_hits(
        srcs: tuple, scales: tuple, yield_scale: float, seed: int
    ) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Photons propagated and per-module hits (ids, first times, charges)."""
        if not srcs:
            return 0, (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
        light = EventLight(srcs, scales, yield_scale)
        res = simulate(light, medium, det, seed=seed, n_threads=1)
        if not len(res.hits):
            return res.n_photons, (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
        g = res.hits.groupby("module_id", sort=True)["time_ns"].agg(["min", "size"])
        return res.n_photons, (
            g.index.to_numpy(np.int64),
            g["min"].to_numpy(float),
            g["size"].to_numpy(np.int64),
        )

    def hit_rows(rows: dict[str, list], n_ph: int, hits: tuple, cpu: float, eid: int) -> None:
        rows["event_id"].append(eid)
        rows["cpu_s"].append(cpu)
        rows["n_photons"].append(n_ph)
        rows["hit_modules"].append(hits[0])
        rows["hit_times"].append(hits[1])
        rows["hit_charges"].append(hits[2])
        rows["n_channels"].append(hits[0].size)
        rows["total_charge"].append(int(hits[2].sum()))

    def photons(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        base = int(rng.integers(0, 2**62))
        warm_up(len(events))
        rows: dict[str, list] = {k: [] for k in HIT_COLUMNS}
        for ev in events.itertuples(index=False):
            c0 = time.process_time()
            srcs, scales = sources(ev)
            n_ph, hits = light_hits(srcs, scales, cfg.yield_scale, _event_seed(base, ev.event_id))
            hit_rows(rows, n_ph, hits, time.process_time() - c0, ev.event_id)
        return _empty_fix(pd.DataFrame(rows), ("n_photons", "n_channels", "total_charge"))

    def batch_hits(
        lights: list[tuple[tuple, tuple]], yield_scale: float, seed: int
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
        """One photon-simulator call for the lights of many events: per event the photons
        propagated, the per-module hits (ids, first times, charges) and its CPU seconds
        (the call's CPU shared in proportion to the photons; an event without light: 0)."""
        n = len(lights)
        empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
        hits_of: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [empty] * n
        counts = np.zeros(n, np.int64)
        cpu = np.zeros(n)
        lit = [k for k, (srcs, _) in enumerate(lights) if srcs]
        if not lit:
            return counts, hits_of, cpu
        c0 = time.process_time()
        ev_src = [EventLight(lights[k][0], lights[k][1], yield_scale) for k in lit]
        drawn = photon_counts(ev_src, medium, det, seed)
        res = simulate(ev_src, medium, det, seed=seed, n_threads=1, counts=drawn)
        ev = res.hits["event_id"].to_numpy(np.int64)
        mod = res.hits["module_id"].to_numpy(np.int64)
        t = res.hits["time_ns"].to_numpy(float)
        order = np.lexsort((t, mod, ev))  # by event, module, time
        ev, mod, t = ev[order], mod[order], t[order]
        new = np.ones(ev.size, dtype=bool)
        new[1:] = (ev[1:] != ev[:-1]) | (mod[1:] != mod[:-1])
        starts = np.flatnonzero(new)
        q = np.diff(np.append(starts, ev.size))
        g_ev, g_mod, g_t = ev[starts], mod[starts], t[starts]
        bounds = np.searchsorted(g_ev, np.arange(len(lit) + 1))
        for j, k in enumerate(lit):
            sl = slice(bounds[j], bounds[j + 1])
            hits_of[k] = (g_mod[sl], g_t[sl], q[sl].astype(np.int64))
        counts[lit] = drawn
        spent = time.process_time() - c0
        share = drawn / drawn.sum() if drawn.sum() > 0 else np.full(len(lit), 1.0 / len(lit))
        cpu[lit] = spent * share
        return counts, hits_of, cpu

    def event_lights(events: pd.DataFrame) -> tuple[list[tuple[tuple, tuple]], np.ndarray]:
        lights, cpu = [], np.zeros(len(events))
        for k, ev in enumerate(events.itertuples(index=False)):
            c0 = time.process_time()
            lights.append(sources(ev))
            cpu[k] = time.process_time() - c0
        return lights, cpu

    def photons_preview(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        seed = int(rng.integers(0, 2**62))
        warm_up(len(events))
        lights, cpu = event_lights(events)
        counts, hits_of, cpu_sim = batch_hits(lights, f * cfg.yield_scale, seed)
        rows: dict[str, list] = {k: [] for k in PREVIEW_FEATURES}
        cpu_feat = np.zeros(len(hits_of))
        for n, hits in enumerate(hits_of):
            c0 = time.process_time()
            hit_ids = hits[0].tolist()
            idx = np.array([pos_by_id[m] for m in hit_ids], dtype=np.int64)
            on_string = np.array([string_by_id[m] for m in hit_ids], dtype=np.int64)
            feats = preview_features(mods[idx], hits[1], hits[2], on_string)
            for k in PREVIEW_FEATURES:
                rows[k].append(feats[k])
            cpu_feat[n] = time.process_time() - c0
        out = pd.DataFrame(
            {
                "event_id": events["event_id"].to_numpy(np.int64),
                "cpu_s": cpu + cpu_sim + cpu_feat,
                "pv_photons": counts,
                "light": pd.Series(lights, dtype=object, index=events.index).to_numpy(),
                "pv_modules": pd.Series([h[0] for h in hits_of], dtype=object).to_numpy(),
                "pv_times": pd.Series([h[1] for h in hits_of], dtype=object).to_numpy(),
                "pv_charges": pd.Series([h[2] for h in hits_of], dtype=object).to_numpy(),
                **{k: np.asarray(rows[k], dtype=float) for k in PREVIEW_FEATURES},
            }
        )
        return out.astype({"pv_n_channels": np.int64, "pv_total_charge": np.int64})

    def photons_rest(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        seed = int(rng.integers(0, 2**62))
        warm_up(len(events))
        lights = list(events["light"])
        counts, hits_of, cpu = batch_hits(lights, (1.0 - f) * cfg.yield_scale, seed)
        rows: dict[str, list] = {k: [] for k in HIT_COLUMNS}
        for k, ev in enumerate(events.itertuples(index=False)):
            c0 = time.process_time()
            merged = merge_hits((ev.pv_modules, ev.pv_times, ev.pv_charges), hits_of[k])
            dt = time.process_time() - c0
            hit_rows(rows, int(counts[k]) + int(ev.pv_photons), merged, cpu[k] + dt, ev.event_id)
        return _empty_fix(pd.DataFrame(rows), ("n_photons", "n_channels", "total_charge"))

    def trigger(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        ok = np.array(
            [smt_trigger(t, cfg.smt_modules, cfg.smt_window_ns) for t in events["hit_times"]],
            dtype=bool,
        )
        return pd.DataFrame({"event_id": events["event_id"].to_numpy(np.int64)[ok]})

    bright = cfg.selection == "bright"

    def selection(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        ids, czr, nfit, lq = [], [], [], []
        for ev in events.itertuples(index=False):
            if ev.n_channels < cfg.min_channels or (bright and ev.total_charge < cfg.min_charge):
                continue
            idx = np.array([pos_by_id[m] for m in ev.hit_modules], dtype=np.int64)
            d, n_used = improved_linefit(mods[idx], ev.hit_times)
            cz = float(-d[2])
            if bright or cz <= cfg.cos_zenith_max:
                ids.append(ev.event_id)
                czr.append(cz)
                nfit.append(n_used)
                lq.append(math.log10(max(ev.total_charge, 1)))
        return pd.DataFrame(
            {
                "event_id": np.asarray(ids, dtype=np.int64),
                "cos_zenith_reco": np.asarray(czr, dtype=float),
                "n_fit_hits": np.asarray(nfit, dtype=np.int64),
                "log10_charge": np.asarray(lq, dtype=float),
            }
        )

    light_stages = (
        [Stage("photons_preview", photons_preview), Stage("photons_rest", photons_rest)]
        if f > 0
        else [Stage("photons", photons)]
    )
    return [
        Stage("primaries", primaries),
        Stage("bundles", bundles),
        Stage("propagation", propagation),
        *light_stages,
        Stage("trigger", trigger),
        Stage("selection", selection),
    ]


#: Nominal CPU seconds per event that runs each stage, measured once with
#: :func:`~ariasim.apps.muons.profile.profile_pipeline` (20k events per size, one core of
#: the 2-core development machine). They only set the controllers' cost model, so that the
#: decisions, unlike the CPU accounting, never depend on this run's timing.
STAGE_COSTS: dict[str, dict[str, float]] = {
    "default": {
        "primaries": 5e-7,
        "bundles": 4e-6,
        "propagation": 2e-5,
        "photons": 0.066,
        "trigger": 1e-5,
        "selection": 1e-4,
    },
    "ci": {
        "primaries": 5e-7,
        "bundles": 5e-6,
        "propagation": 2e-5,
        "photons": 0.008,
        "trigger": 1e-5,
        "selection": 1e-4,
    },
}


#: Nominal CPU seconds per event reaching the photons of the split photon stages
#: (``preview_fraction = f > 0``): ``(fixed, photons)``, declared as ``photons_preview =
#: fixed + f x photons`` and ``photons_rest = (1 - f) x photons``. ``fixed`` is the
#: preview's work that does not scale with the photons (the event's sources, the
#: features); ``photons`` the simulation of all of an event's photons in the split stages,
#: which call the photon simulator once per chunk (the one-stage ``photons`` calls it once
#: per event, a few ms of overhead each). Measured with
#: :func:`~ariasim.apps.muons.profile.chain_stages` at f = 0.05, 0.1 and 0.2 (150k events
#: of ``ci``, 30k of ``default``, on the loaded 2-core development machine, where the
#: one-stage ``photons`` took 88 ms per event at ``default``: scaled to its 66 ms here).
SPLIT_COSTS: dict[str, tuple[float, float]] = {
    "default": (1.6e-3, 0.06),
    "ci": (5.5e-4, 1.5e-3),
}


def make_muon_pipeline(size: str = "default", **overrides: Any) -> Pipeline:
    """The atmospheric-muon pipeline (module docstring) at a named size.

    Arguments:
        size: ``"default"`` or ``"ci"``.
        **overrides: Fields of :class:`MuonConfig`.

    With ``preview_fraction > 0`` (the default) the photon stage is split into
    ``photons_preview`` and ``photons_rest`` with a control point before each (the second
    also sees :data:`PREVIEW_FEATURES`); ``preview_fraction=0`` gives the one-stage
    pipeline with one control point.

    Example:
        >>> p = make_muon_pipeline("ci")
        >>> p.stage_names[3:5], [cp.before for cp in p.control_points]
        (('photons_preview', 'photons_rest'), ['photons_preview', 'photons_rest'])
        >>> make_muon_pipeline("ci", preview_fraction=0).stage_names
        ('primaries', 'bundles', 'propagation', 'photons', 'trigger', 'selection')
    """
    cfg = MuonConfig.for_size(size, **overrides)
    bright = cfg.selection == "bright"
    q_min = max(cfg.min_charge, cfg.min_channels) if bright else cfg.min_channels
    edges = {
        "cos_zenith_reco": np.linspace(-1.0, 1.0 if bright else cfg.cos_zenith_max, 9).tolist(),
        "n_channels": np.unique(
            np.geomspace(cfg.min_channels, cfg.n_strings * cfg.modules_per_string, 9).round()
        ).tolist(),
        "log10_charge": np.linspace(math.log10(q_min), max(5.0, math.log10(q_min) + 1), 9).tolist(),
        "log10_energy": np.linspace(math.log10(cfg.e_min_per_nucleon_gev), 7.0, 9).tolist(),
    }
    f = cfg.preview_fraction
    costs = dict(STAGE_COSTS[size])
    if f > 0:
        control_points = [
            ControlPoint("photons_preview", CONTROL_FEATURES),
            ControlPoint("photons_rest", (*CONTROL_FEATURES, *PREVIEW_FEATURES)),
        ]
        costs.pop("photons")
        fixed, photon_cost = SPLIT_COSTS[size]
        costs["photons_preview"] = round_sig(fixed + f * photon_cost)
        costs["photons_rest"] = round_sig((1.0 - f) * photon_cost)
    else:
        control_points = [ControlPoint("photons", CONTROL_FEATURES)]
    return Pipeline(
        muon_stages(cfg),
        control_points=control_points,
        observables=OBSERVABLES,
        name=f"muon-bright-{size}" if bright else f"muon-{size}",
        edges=edges,
        stage_costs=costs,
        # final efficiency ~1.5e-4 (default) and ~1.4e-3 (ci): chunks with a few passing
        chunk_size=5000 if size == "default" else 10000,
    )


def make_upgoing_muon_pipeline(size: str = "default", **overrides: Any) -> Pipeline:
    """:func:`make_muon_pipeline` with ``selection="upgoing"`` (``--pipeline muon-upgoing``).

    Example:
        >>> make_upgoing_muon_pipeline("ci").name
        'muon-ci'
    """
    return make_muon_pipeline(size, **{"selection": "upgoing", **overrides})


def make_bright_muon_pipeline(size: str = "default", **overrides: Any) -> Pipeline:
    """:func:`make_muon_pipeline` with ``selection="bright"`` (``--pipeline muon-bright``).

    Example:
        >>> make_bright_muon_pipeline("ci").name
        'muon-bright-ci'
    """
    return make_muon_pipeline(size, **{"selection": "bright", **overrides})
