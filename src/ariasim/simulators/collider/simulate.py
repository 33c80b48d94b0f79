"""Top level of the collider full simulation: truth particles in, one row per particle out.

The chain, per batch of events: tracker propagation with material effects
(:mod:`.tracking`), calorimeter showers and clustering (:mod:`.calorimeter`), global chi2
track fit, muon stations (:mod:`.muons`), then reconstruction, identification and truth
matching (:mod:`.reconstruction`). Batches get independent seeds derived from the one seed
(:func:`ariasim.utils.spawn_seeds`), so the same seed and batch size give identical output.

Output: one row per truth particle, the columns, dtypes and units of
:data:`~ariasim.simulators.collider.schema.OUTPUT_SCHEMA` (GeV, mm, rad; eta dimensionless):

* truth: event_id, particle_id, pdg, truth_charge (e), truth_pt_gev, truth_eta,
  truth_phi (rad), truth_e_gev, truth_vz_mm;
* object: object_type ("electron", "photon", "muon", "charged_hadron", "neutral_hadron",
  "none"), found, reco_pt_gev, reco_eta, reco_phi (rad), reco_e_gev (NaN if not found),
  cluster_energy_gev, ecal_energy_gev, hcal_energy_gev, e_over_p, hcal_over_ecal,
  sigma_ietaieta (ECAL cells), converted, n_muon_stations;
* own track (NaN if the particle has no fitted track): track_found, track_pt_gev,
  track_eta, track_phi (rad), track_d0_mm, track_z0_mm, track_charge (0 if none),
  track_sigma_pt_gev, track_sigma_eta, track_sigma_phi (rad), track_sigma_d0_mm,
  track_sigma_z0_mm, track_chi2, track_ndof (0 if none), track_missing_inner,
  track_n_muon_stations, n_hits;
* simulation truth: interacted_layer (nuclear interaction in the tracker: material surface,
  0 the beam pipe, -1 none), converted_layer (photon conversion, -1 none), brem_fraction
  (energy radiated in the tracker / initial energy), reached_calo, e_true_ecal_gev,
  e_true_hcal_gev, e_leak_gev (true deposits of the particle and all its secondaries).

References:
    See the modules of the chain.

Arguments:
    See :func:`simulate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError, InputError
from ariasim.simulators.collider.detector import DetectorConfig, load_detector
from ariasim.simulators.collider.schema import check_output, empty_output
from ariasim.utils import SeedLike, spawn_seeds

__all__ = ["REQUIRED_COLUMNS", "simulate", "simulate_batch"]

#: Columns a truth-particle table must have (see ``particles.particle_table``).
REQUIRED_COLUMNS = ("event_id", "pdg", "charge", "mass_gev", "px_gev", "py_gev", "pz_gev", "e_gev",
                    "pt_gev", "eta", "phi", "vx_mm", "vy_mm", "vz_mm")


_CLUSTER_COLUMNS = ("event_id", "cluster_id", "energy_gev", "ecal_energy_gev", "hcal_energy_gev", "eta",
                    "phi", "n_cells", "e_seed_gev", "e3x3_gev", "e5x5_gev", "sigma_ietaieta",
                    "hcal_over_ecal", "truth_index")
_DEPOSIT_COLUMNS = ("event_id", "truth_index", "e_true_ecal_gev", "e_true_hcal_gev", "e_leak_gev")


def simulate_batch(truth: pd.DataFrame, detector: DetectorConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Simulate and reconstruct one batch of whole events.

    Arguments:
        truth: Truth-particle table; its row position is the truth index.
        detector: Detector configuration.
        rng: Random generator.
    """
    from ariasim.simulators.collider.calorimeter import simulate_calorimeters
    from ariasim.simulators.collider.muons import match_tracks_to_stations, simulate_muon_stations
    from ariasim.simulators.collider.reconstruction import reconstruct, track_face_state
    from ariasim.simulators.collider.tracking import fit_tracks, propagate

    truth = truth.reset_index(drop=True)
    n = len(truth)
    sim = propagate(truth, detector, rng)
    sp = sim.particles
    to_calo = np.flatnonzero(sp["reached_calo"].to_numpy() & (sp["e_calo_gev"].to_numpy() > 0)
                             & np.isfinite(sp["eta_calo"].to_numpy()))
    calo_index = np.full(len(sp), -1, dtype=np.int64)
    calo_index[to_calo] = np.arange(to_calo.size)
    sp = sp.assign(calo_index=calo_index)
    if to_calo.size:
        calo = simulate_calorimeters(
            sp["event_id"].to_numpy()[to_calo], sp["truth_index"].to_numpy()[to_calo],
            sp["pdg"].to_numpy()[to_calo], sp["e_calo_gev"].to_numpy()[to_calo],
            sp["eta_calo"].to_numpy()[to_calo], sp["phi_calo"].to_numpy()[to_calo],
            detector.ecal, detector.hcal, rng)
        clusters, deposits = calo.clusters, calo.deposits
    else:  # nothing reaches the calorimeters (e.g. only loopers)
        clusters = pd.DataFrame({c: pd.Series(dtype=float) for c in _CLUSTER_COLUMNS})
        clusters["seed_calo"] = pd.Series(dtype=str)
        deposits = pd.DataFrame({c: pd.Series(dtype=float) for c in _DEPOSIT_COLUMNS})
    tracks = fit_tracks(sim, detector)
    hits = simulate_muon_stations(sp, deposits, detector, rng)
    face = track_face_state(tracks, detector)
    n_st = match_tracks_to_stations(tracks, face, hits, detector)
    rec = reconstruct(truth, sp, tracks, clusters, n_st, detector)

    out = pd.DataFrame({
        "event_id": truth["event_id"].to_numpy(np.int64),
        "particle_id": truth["particle_id"].to_numpy(np.int64) if "particle_id" in truth else np.arange(n),
        "pdg": truth["pdg"].to_numpy(np.int64),
        "truth_charge": truth["charge"].to_numpy(np.int64),
        "truth_pt_gev": truth["pt_gev"].to_numpy(float),
        "truth_eta": truth["eta"].to_numpy(float),
        "truth_phi": truth["phi"].to_numpy(float),
        "truth_e_gev": truth["e_gev"].to_numpy(float),
        "truth_vz_mm": truth["vz_mm"].to_numpy(float),
    })
    out = pd.concat([out, rec.reset_index(drop=True)], axis=1)
    prim = sp.iloc[:n]
    out["n_hits"] = sim.hit[:n].sum(axis=1).astype(np.int64)
    out["interacted_layer"] = prim["interacted_layer"].to_numpy(np.int64)
    out["converted_layer"] = prim["converted_layer"].to_numpy(np.int64)
    out["brem_fraction"] = prim["brem_e_gev"].to_numpy(float) / np.maximum(truth["e_gev"].to_numpy(float), 1e-12)
    out["reached_calo"] = prim["reached_calo"].to_numpy(bool)
    dep = deposits
    for col in ("e_true_ecal_gev", "e_true_hcal_gev", "e_leak_gev"):
        v = np.zeros(n)
        if len(dep):
            np.add.at(v, dep["truth_index"].to_numpy(np.int64), dep[col].to_numpy(float))
        out[col] = v
    return out


def _batches(event_id: np.ndarray, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous row ranges of about ``batch_size`` rows that never split an event."""
    n = event_id.size
    if n == 0:
        return []
    starts = np.r_[0, np.flatnonzero(np.diff(event_id) != 0) + 1]
    out = []
    lo = 0
    while lo < n:
        target = lo + batch_size
        if target >= n:
            out.append((lo, n))
            break
        k = np.searchsorted(starts, target, side="left")
        hi = int(starts[k]) if k < starts.size else n
        if hi <= lo:
            hi = int(starts[k + 1]) if k + 1 < starts.size else n
        out.append((lo, hi))
        lo = hi
    return out


def simulate(particles: pd.DataFrame, detector: str | DetectorConfig = "default", seed: SeedLike = None,
             *, batch_size: int = 20_000, progress: bool = False) -> pd.DataFrame:
    """Full simulation and reconstruction of truth particles in a collider detector.

    Arguments:
        particles: Truth-particle table (``ParticleGun.generate``, ``read_events`` or
            ``particle_table``); rows of one event must be contiguous.
        detector: Detector name, TOML path or :class:`DetectorConfig`.
        seed: Seed (same seed and batch size, same output).
        batch_size: Particles per batch (whole events are kept together).
        progress: Show a rich progress bar.

    Returns:
        One row per truth particle, with the columns, dtypes and units of
        :data:`~ariasim.simulators.collider.schema.OUTPUT_SCHEMA` (listed in the module
        docstring).
    """
    det = load_detector(detector)
    missing = [c for c in REQUIRED_COLUMNS if c not in particles.columns]
    if missing:
        raise InputError(f"particle table lacks columns {missing}", column=missing[0])
    if batch_size < 1:
        raise ConfigError("must be >= 1", parameter="batch_size")
    particles = particles.reset_index(drop=True)
    ev = particles["event_id"].to_numpy(np.int64)
    if ev.size and np.unique(ev).size != np.r_[True, np.diff(ev) != 0].sum():
        raise InputError("rows of each event must be contiguous", column="event_id")
    ranges = _batches(ev, batch_size)
    seeds = spawn_seeds(seed, max(len(ranges), 1))
    results = []
    if progress and ranges:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn()) as bar:
            task = bar.add_task(f"collider ({det.name})", total=len(particles))
            for (lo, hi), s in zip(ranges, seeds, strict=False):
                results.append(simulate_batch(particles.iloc[lo:hi], det, np.random.default_rng(s)))
                bar.advance(task, hi - lo)
    else:
        for (lo, hi), s in zip(ranges, seeds, strict=False):
            results.append(simulate_batch(particles.iloc[lo:hi], det, np.random.default_rng(s)))
    out = pd.concat(results, ignore_index=True) if results else empty_output()
    check_output(out)
    return out
