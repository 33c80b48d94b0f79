"""Reconstruction, identification and truth matching (a small particle-flow).

Identification uses reconstructed quantities only (tracks, hit patterns, clusters, muon
stations); the truth is used only afterwards, to say which truth particle each
reconstructed object belongs to.

1. Tracks (good fit, at least ``min_hits``) are extrapolated to the calorimeter face and
   linked to the nearest cluster within the matching window (eta-phi, wider for
   HCAL-seeded clusters). Tracks without hits in the first ``n_inner_layers`` layers are
   non-prompt ("missing inner hits", e.g. conversion legs): they form no object.
2. Each prompt track becomes
   * a **muon** if at least ``min_stations`` muon stations have a compatible hit;
   * else an **electron** if its cluster is ECAL-seeded, electromagnetic (H/E, shower
     width) and E/p is in the window, E being the cluster plus the track-less ECAL clusters
     in the bremsstrahlung road (between the track's azimuth at the vertex and at the
     calorimeter);
   * else a **charged hadron** (with the calorimeter energy of its cluster recorded).
   Tracks consume the clusters linked to them.
3. Remaining clusters become **photons** (ECAL-seeded, small H/E and width; "converted" if a
   non-prompt track points to them) or **neutral hadrons**.
4. Truth matching: a truth particle gets the object built from its own track; otherwise the
   most energetic object linked to it (cluster dominant contributor, or a track of one of
   its secondaries); otherwise "none".

Reported kinematics (one meaning per quantity, the same in the response model, the
exported Delphes card and the fast simulation; every object satisfies
E^2 = (pT cosh eta)^2 + m^2 with the mass m of its hypothesis):

==============  ================  ===============================  =================
object          measured          eta, phi                         derived
==============  ================  ===============================  =================
muon            pT of the track   track at the vertex              E, m = m_mu
charged hadron  pT of the track   track at the vertex              E, m = m_pi
electron        E: cluster +      track at the vertex              pT = sqrt(E^2 -
                brems clusters                                     m_e^2) / cosh eta
photon          E of the cluster  cluster position (from origin)   pT = E / cosh eta
neutral hadron  E of the cluster  cluster position (from origin)   pT = E / cosh eta
==============  ================  ===============================  =================

The electron's track pT is kept in ``track_pt_gev``; E is the calorimeter-based
electron energy as in Delphes (whose ``EnergySmearing`` sets pT = sqrt(E^2 - m^2) /
cosh eta), not a track-calorimeter combination.

References:
    CMS Collaboration, "Particle-flow reconstruction and global event description with the
    CMS detector", JINST 12 (2017) P10003.

Arguments:
    See :func:`reconstruct`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ariasim.simulators.collider.detector import DetectorConfig, IdentificationConfig
from ariasim.simulators.collider.tracking import C_LIGHT, face_position

__all__ = ["OBJECT_TYPES", "reconstruct", "track_face_state"]

#: Object types, in the order of the categorical output column.
OBJECT_TYPES = ("electron", "photon", "muon", "charged_hadron", "neutral_hadron", "none")
_M_MU = 0.1056583755
_M_E = 0.51099895e-3
_M_PI = 0.13957039


def track_face_state(tracks: pd.DataFrame, detector: DetectorConfig) -> dict[str, np.ndarray]:
    """Extrapolate fitted tracks (perigee helices) to the calorimeter face.

    Arguments:
        tracks: Output of :func:`~ariasim.simulators.collider.tracking.fit_tracks`.
        detector: Detector configuration.

    Returns:
        Dict of arrays x, y, z, phi_dir, ok, eta (of the impact point), phi (of the impact point).
    """
    d0 = tracks["d0_mm"].to_numpy(float) * 1e-3
    phi0 = tracks["phi"].to_numpy(float)
    c = -tracks["q_over_pt"].to_numpy(float) * C_LIGHT * detector.b_field_t
    good = np.isfinite(c) & np.isfinite(d0)
    x, y, z, phi_dir, ok = face_position(
        np.where(good, -d0 * np.sin(phi0), 0.0),
        np.where(good, d0 * np.cos(phi0), 0.0),
        np.nan_to_num(tracks["z0_mm"].to_numpy(float) * 1e-3),
        np.nan_to_num(phi0),
        np.nan_to_num(tracks["cot_theta"].to_numpy(float)),
        np.nan_to_num(c),
        detector.ecal_r_inner_m,
        float(detector.ecal.z_endcap_m),
    )
    ok &= good
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.arcsinh(z / np.hypot(x, y))
    return {
        "x": x,
        "y": y,
        "z": z,
        "phi_dir": phi_dir,
        "ok": ok,
        "eta": np.where(ok, eta, np.nan),
        "phi": np.where(ok, np.arctan2(y, x), np.nan),
    }


def _dphi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def _brem_road_pairs(
    rows: np.ndarray,
    free: np.ndarray,
    tracks: pd.DataFrame,
    face: dict[str, np.ndarray],
    cl: pd.DataFrame,
    idc: IdentificationConfig,
) -> pd.DataFrame:
    """(track row, cluster row) pairs of the same event whose cluster lies in the track's
    bremsstrahlung road: phi between the vertex direction and the calorimeter-face
    direction (widened by ``brem_road_dphi``) and |delta eta| < ``match_deta`` at the face."""
    empty = pd.DataFrame({"t_row": np.empty(0, np.int64), "c_row": np.empty(0, np.int64)})
    if not (rows.size and free.size):
        return empty
    t = pd.DataFrame(
        {
            "t_row": rows,
            "event_id": tracks["event_id"].to_numpy()[rows],
            "phi_v": tracks["phi"].to_numpy()[rows],
            "phi_f": face["phi"][rows],
            "eta_f": face["eta"][rows],
        }
    )
    c = pd.DataFrame(
        {
            "c_row": free,
            "event_id": cl["event_id"].to_numpy()[free],
            "c_eta": cl["eta"].to_numpy()[free],
            "c_phi": cl["phi"].to_numpy()[free],
        }
    )
    pairs = t.merge(c, on="event_id")
    if not len(pairs):
        return empty
    bend = _dphi(pairs["phi_f"].to_numpy(), pairs["phi_v"].to_numpy())
    rel = _dphi(pairs["c_phi"].to_numpy(), pairs["phi_v"].to_numpy())
    inroad = (
        (rel > np.minimum(0.0, bend) - idc.brem_road_dphi)
        & (rel < np.maximum(0.0, bend) + idc.brem_road_dphi)
        & (np.abs(pairs["c_eta"].to_numpy() - pairs["eta_f"].to_numpy()) < idc.match_deta)
    )
    return pairs[inroad]


def _match_tracks_to_clusters(
    tracks: pd.DataFrame, clusters: pd.DataFrame, detector: DetectorConfig
) -> np.ndarray:
    """Row in ``clusters`` linked to each track (-1: none)."""
    out = np.full(len(tracks), -1, dtype=np.int64)
    if len(tracks) == 0 or len(clusters) == 0:
        return out
    idc = detector.identification
    hc = detector.hcal
    t = pd.DataFrame(
        {
            "t_row": np.arange(len(tracks)),
            "event_id": tracks["event_id"].to_numpy(),
            "t_eta": tracks["face_eta"].to_numpy(),
            "t_phi": tracks["face_phi"].to_numpy(),
        }
    )
    t = t[np.isfinite(t["t_eta"].to_numpy())]
    c = pd.DataFrame(
        {
            "c_row": np.arange(len(clusters)),
            "event_id": clusters["event_id"].to_numpy(),
            "c_eta": clusters["eta"].to_numpy(),
            "c_phi": clusters["phi"].to_numpy(),
            "hseed": (clusters["seed_calo"].astype(str).to_numpy() == "hcal"),
        }
    )
    pairs = t.merge(c, on="event_id")
    if len(pairs) == 0:
        return out
    w_eta = np.where(pairs["hseed"], 1.5 * hc.cell_deta, idc.match_deta)
    w_phi = np.where(pairs["hseed"], 1.5 * hc.cell_dphi, idc.match_dphi)
    d2 = ((pairs["t_eta"] - pairs["c_eta"]) / w_eta) ** 2 + (
        _dphi(pairs["t_phi"].to_numpy(), pairs["c_phi"].to_numpy()) / w_phi
    ) ** 2
    pairs = pairs.assign(d2=d2.to_numpy())
    pairs = pairs[pairs["d2"] < 1.0].sort_values(["t_row", "d2"], kind="stable")
    best = pairs.drop_duplicates("t_row")
    out[best["t_row"].to_numpy()] = best["c_row"].to_numpy()
    return out


def reconstruct(
    truth: pd.DataFrame,
    sim_particles: pd.DataFrame,
    tracks: pd.DataFrame,
    clusters: pd.DataFrame,
    n_stations: np.ndarray,
    detector: DetectorConfig,
) -> pd.DataFrame:
    """Build, identify and truth-match reconstructed objects.

    Arguments:
        truth: Truth-particle table (row position = truth_index).
        sim_particles: ``TrackerSimulation.particles``.
        tracks: Fitted tracks (``fit_tracks``).
        clusters: ``CaloResult.clusters``.
        n_stations: Matched muon stations per track.
        detector: Detector configuration.

    Returns:
        One row per truth particle with object_type, found and reconstructed quantities (see
        :func:`~ariasim.simulators.collider.simulate.simulate`).
    """
    idc = detector.identification
    n_truth = len(truth)
    good = tracks["good"].to_numpy()
    tracks = tracks[good].reset_index(drop=True)
    n_stations_good = np.asarray(n_stations)[good]
    face = track_face_state(tracks, detector)
    tracks = tracks.assign(face_eta=face["eta"], face_phi=face["phi"])
    cl = clusters[clusters["energy_gev"].to_numpy() >= idc.min_cluster_energy_gev].reset_index(
        drop=True
    )
    n_cl = len(cl)
    t_cl = _match_tracks_to_clusters(tracks, cl, detector)
    prompt = ~tracks["missing_inner"].to_numpy()
    # ---- clusters claimed by prompt tracks; conversion-linked clusters
    claimed = np.zeros(n_cl, dtype=np.bool_)
    claimed[t_cl[(t_cl >= 0) & prompt]] = True
    conv_linked = np.zeros(n_cl, dtype=np.bool_)
    conv_linked[t_cl[(t_cl >= 0) & ~prompt]] = True
    cl_e = cl["energy_gev"].to_numpy(float)
    cl_ecal = cl["ecal_energy_gev"].to_numpy(float)
    cl_hcal = cl["hcal_energy_gev"].to_numpy(float)
    cl_hoe = cl["hcal_over_ecal"].to_numpy(float)
    cl_sie = np.nan_to_num(cl["sigma_ietaieta"].to_numpy(float), nan=np.inf)
    cl_eseed = cl["seed_calo"].astype(str).to_numpy() == "ecal"
    cl_em = cl_eseed & (cl_hoe < idc.photon_hoe_max) & (cl_sie < idc.photon_sigma_ietaieta_max)
    # ---- bremsstrahlung recovery for prompt tracks with an ECAL cluster
    n_t = len(tracks)
    brem_e = np.zeros(n_t)
    brem_used = np.zeros(n_cl, dtype=np.bool_)
    cand = np.flatnonzero(prompt & (t_cl >= 0))
    if cand.size and n_cl:
        free = np.flatnonzero(~claimed & ~conv_linked & cl_em)
        pairs = _brem_road_pairs(cand, free, tracks, face, cl, idc)
        if len(pairs):
            pairs = pairs.drop_duplicates("c_row")
            np.add.at(brem_e, pairs["t_row"].to_numpy(), cl_e[pairs["c_row"].to_numpy()])
            brem_used[pairs["c_row"].to_numpy()] = True
    # ---- track identification
    t_pt = tracks["pt_gev"].to_numpy(float)
    t_p = t_pt * np.sqrt(1.0 + tracks["cot_theta"].to_numpy(float) ** 2)
    has_cl = t_cl >= 0
    tcl = np.where(has_cl, t_cl, 0)
    e_sc = np.where(has_cl, cl_e[tcl] if n_cl else 0.0, 0.0) + brem_e
    with np.errstate(divide="ignore", invalid="ignore"):
        eop = e_sc / t_p
    is_mu = prompt & (n_stations_good >= detector.muon.min_stations)
    ele_shape = (
        has_cl
        & (cl_eseed[tcl] if n_cl else False)
        & (cl_hoe[tcl] < idc.electron_hoe_max if n_cl else False)
        & (cl_sie[tcl] < idc.electron_sigma_ietaieta_max if n_cl else False)
    )
    is_e = prompt & ~is_mu & ele_shape & (eop > idc.electron_eop_min) & (eop < idc.electron_eop_max)
    # brems clusters only count for electrons; otherwise they stay free for photons
    brem_used[:] = False
    t_type = np.where(is_mu, "muon", np.where(is_e, "electron", "charged_hadron"))
    # one meaning per quantity (module docstring): muons and charged hadrons keep the
    # track's pT and get E from it with their mass hypothesis; electrons get E from the
    # calorimeter (cluster + brems) and pT = sqrt(E^2 - m_e^2) / cosh(track eta)
    t_e = np.where(is_e, e_sc, np.sqrt(t_p**2 + np.where(is_mu, _M_MU, _M_PI) ** 2))
    t_eta = tracks["eta"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        e_pt = np.sqrt(np.maximum(e_sc**2 - _M_E**2, 0.0)) / np.cosh(t_eta)
    t_pt_obj = np.where(is_e, e_pt, t_pt)
    objects = []
    tp = np.flatnonzero(prompt)
    objects.append(
        pd.DataFrame(
            {
                "event_id": tracks["event_id"].to_numpy()[tp],
                "object_type": t_type[tp],
                "link_truth": tracks["truth_index"].to_numpy()[tp],
                "link_sim": tracks["sim_id"].to_numpy()[tp],
                "reco_pt_gev": t_pt_obj[tp],
                "reco_eta": t_eta[tp],
                "reco_phi": tracks["phi"].to_numpy()[tp],
                "reco_e_gev": t_e[tp],
                "cluster_energy_gev": np.where(
                    has_cl[tp], cl_e[tcl[tp]] if n_cl else np.nan, np.nan
                )
                + np.where(is_e[tp], brem_e[tp], 0.0),
                "ecal_energy_gev": np.where(
                    has_cl[tp], cl_ecal[tcl[tp]] if n_cl else np.nan, np.nan
                ),
                "hcal_energy_gev": np.where(
                    has_cl[tp], cl_hcal[tcl[tp]] if n_cl else np.nan, np.nan
                ),
                "e_over_p": eop[tp],
                "hcal_over_ecal": np.where(has_cl[tp], cl_hoe[tcl[tp]] if n_cl else np.nan, np.nan),
                "sigma_ietaieta": np.where(
                    has_cl[tp],
                    cl["sigma_ietaieta"].to_numpy(float)[tcl[tp]] if n_cl else np.nan,
                    np.nan,
                ),
                "converted": False,
                "track_row": tp,
                "n_muon_stations": n_stations_good[tp],
            }
        )
    )
    # clusters consumed as brem by electrons
    if np.any(is_e) and n_cl:
        # recompute road membership only for electrons
        sel = np.flatnonzero(is_e)
        free = np.flatnonzero(~claimed & ~conv_linked & cl_em)
        pairs = _brem_road_pairs(sel, free, tracks, face, cl, idc)
        brem_used[pairs["c_row"].to_numpy()] = True
    # ---- cluster objects
    free = np.flatnonzero(~claimed & ~brem_used)
    if free.size:
        is_ph = cl_em[free]
        eta = cl["eta"].to_numpy(float)[free]
        objects.append(
            pd.DataFrame(
                {
                    "event_id": cl["event_id"].to_numpy()[free],
                    "object_type": np.where(is_ph, "photon", "neutral_hadron"),
                    "link_truth": cl["truth_index"].to_numpy()[free],
                    "link_sim": -1,
                    "reco_pt_gev": cl_e[free] / np.cosh(eta),
                    "reco_eta": eta,
                    "reco_phi": cl["phi"].to_numpy(float)[free],
                    "reco_e_gev": cl_e[free],
                    "cluster_energy_gev": cl_e[free],
                    "ecal_energy_gev": cl_ecal[free],
                    "hcal_energy_gev": cl_hcal[free],
                    "e_over_p": np.nan,
                    "hcal_over_ecal": cl_hoe[free],
                    "sigma_ietaieta": cl["sigma_ietaieta"].to_numpy(float)[free],
                    "converted": conv_linked[free] & is_ph,
                    "track_row": -1,
                    "n_muon_stations": 0,
                }
            )
        )
    obj = pd.concat(objects, ignore_index=True)
    # ---- truth matching
    n_primary_sim = n_truth  # primaries are the first n_truth sim particles, in truth order
    own = (
        (obj["link_sim"].to_numpy() >= 0)
        & (obj["link_sim"].to_numpy() < n_primary_sim)
        & (obj["link_sim"].to_numpy() == obj["link_truth"].to_numpy())
    )
    obj = obj.assign(priority=np.where(own, 1, 0))
    obj = obj[obj["link_truth"].to_numpy() >= 0]
    obj = obj.sort_values(
        ["link_truth", "priority", "reco_e_gev"], ascending=[True, False, False], kind="stable"
    ).drop_duplicates("link_truth")
    out = pd.DataFrame(index=np.arange(n_truth))
    cols = [
        "object_type",
        "reco_pt_gev",
        "reco_eta",
        "reco_phi",
        "reco_e_gev",
        "cluster_energy_gev",
        "ecal_energy_gev",
        "hcal_energy_gev",
        "e_over_p",
        "hcal_over_ecal",
        "sigma_ietaieta",
        "converted",
        "track_row",
        "n_muon_stations",
    ]
    matched = obj.set_index("link_truth")[cols]
    out = out.join(matched)
    out["found"] = out["object_type"].notna()
    out["object_type"] = out["object_type"].fillna("none")
    out["converted"] = out["converted"].fillna(False).astype(bool)
    out["track_row"] = out["track_row"].fillna(-1).astype(np.int64)
    out["n_muon_stations"] = out["n_muon_stations"].fillna(0).astype(np.int64)
    # ---- the truth particle's own track (whatever object it ended up in)
    own_tr = tracks[(tracks["sim_id"].to_numpy() < n_primary_sim)].set_index("sim_id")
    tcols = {
        "pt_gev": "track_pt_gev",
        "eta": "track_eta",
        "phi": "track_phi",
        "d0_mm": "track_d0_mm",
        "z0_mm": "track_z0_mm",
        "charge": "track_charge",
        "sigma_pt_gev": "track_sigma_pt_gev",
        "sigma_eta": "track_sigma_eta",
        "sigma_phi": "track_sigma_phi",
        "sigma_d0_mm": "track_sigma_d0_mm",
        "sigma_z0_mm": "track_sigma_z0_mm",
        "chi2": "track_chi2",
        "ndof": "track_ndof",
        "missing_inner": "track_missing_inner",
    }
    out = out.join(own_tr[list(tcols)].rename(columns=tcols))
    out["track_found"] = out["track_pt_gev"].notna()
    out["track_charge"] = out["track_charge"].fillna(0).astype(np.int64)
    out["track_ndof"] = out["track_ndof"].fillna(0).astype(np.int64)
    out["track_missing_inner"] = out["track_missing_inner"].fillna(False).astype(bool)
    st_own = np.zeros(n_truth, dtype=np.int64)
    own_rows = np.flatnonzero(tracks["sim_id"].to_numpy() < n_primary_sim)
    st_own[tracks["sim_id"].to_numpy()[own_rows]] = n_stations_good[own_rows]
    out["track_n_muon_stations"] = st_own
    return out.drop(columns=["track_row"])
