"""Clustering of calorimeter cells into reconstructed clusters (numba).

Per event:

1. ECAL seeds are local maxima (8 neighbours, phi wraps) above the ECAL seed threshold.
2. ECAL clusters grow topologically from all seeds at once (breadth-first over read-out,
   i.e. above-zero-suppression, neighbouring cells; a cell goes to the first seed that
   reaches it, seeds taken in decreasing energy), as in the CMS/ATLAS "topological" or PF
   clustering.
3. HCAL cells within Delta R < dr of an ECAL cluster are linked to the nearest one.
4. Remaining HCAL cells form HCAL-only clusters (neutral hadrons): seeds above the HCAL seed
   threshold in decreasing energy collect the free HCAL cells within Delta R < dr.
5. Left-over ECAL cells (not connected to a seed, e.g. the diffuse ECAL part of a hadron
   shower) within Delta R < dr of a cluster join the nearest cluster.

Shower shapes are computed around the ECAL seed: e3x3, e5x5 (all read-out cells in the
windows) and sigma_ietaieta, the log-weighted (w0 = 4.7) eta width over the 5x5 window in
units of eta, as in CMS.

References:
    CMS Collaboration, "Particle-flow reconstruction and global event description",
    JINST 12 (2017) P10003 (clustering, ECAL-HCAL linking).
    CMS Collaboration, "Performance of photon reconstruction and identification ...",
    JINST 10 (2015) P08010 (sigma_ietaieta, log weights w0 = 4.7).
    T.C. Awes et al., NIM A 311 (1992) 130 (logarithmic weighting).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["cluster_cells"]


@numba.njit(cache=True)
def _find(keys: np.ndarray, a: int, b: int, key: int) -> int:
    """Index of ``key`` in the sorted ``keys[a:b]`` or -1."""
    lo = a
    hi = b
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < b and keys[lo] == key:
        return lo
    return -1


@numba.njit(cache=True)
def _dphi(a: float, b: float) -> float:
    d = a - b
    while d > math.pi:
        d -= 2.0 * math.pi
    while d < -math.pi:
        d += 2.0 * math.pi
    return d


@numba.njit(cache=True)
def _nearest(
    eta: float, phi: float, c_eta: np.ndarray, c_phi: np.ndarray, lo: int, hi: int, dr: float
) -> int:
    """Index in [lo, hi) of the cluster nearest to (eta, phi) within dR < dr, or -1."""
    best = -1
    bd = dr * dr
    for c in range(lo, hi):
        d2 = (eta - c_eta[c]) ** 2 + _dphi(phi, c_phi[c]) ** 2
        if d2 < bd:
            bd = d2
            best = c
    return best


@numba.njit(cache=True)
def cluster_cells(
    ev: np.ndarray,
    calo: np.ndarray,
    ieta: np.ndarray,
    iphi: np.ndarray,
    en: np.ndarray,
    ceta: np.ndarray,
    cphi: np.ndarray,
    neta_e: int,
    nphi_e: int,
    deta_e: float,
    seed_e: float,
    nphi_h: int,
    seed_h: float,
    dr: float,
):
    """Cluster cells sorted by (event, calo, ieta * nphi + iphi).

    Arguments:
        ev, calo, ieta, iphi: Cell identifiers (calo 0 = ECAL, 1 = HCAL), sorted as stated.
        en: Measured cell energies at the EM scale (GeV).
        ceta, cphi: Cell centres.
        neta_e, nphi_e, deta_e: ECAL grid size and eta pitch.
        seed_e, seed_h: ECAL and HCAL seed thresholds (GeV).
        nphi_h: HCAL number of phi cells.
        dr: ECAL-HCAL linking / HCAL clustering radius in Delta R.

    Returns:
        (label, c_ev, c_id, c_ecal, c_hcal, c_eta, c_phi, c_ncells, c_necal, c_seed,
        c_e3, c_e5, c_sieie, c_seedcalo): per-cell cluster index (-1 if none) and per-cluster
        arrays (ECAL energy is uncalibrated, at the EM scale).
    """
    n = ev.shape[0]
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        keys[i] = ieta[i] * (nphi_e if calo[i] == 0 else nphi_h) + iphi[i]
    label = np.full(n, -1, dtype=np.int64)
    c_ev = np.zeros(n, dtype=np.int64)
    c_id = np.zeros(n, dtype=np.int64)
    c_ecal = np.zeros(n)
    c_hcal = np.zeros(n)
    c_eta = np.zeros(n)
    c_phi = np.zeros(n)
    c_nc = np.zeros(n, dtype=np.int64)
    c_ne = np.zeros(n, dtype=np.int64)
    c_seed = np.zeros(n)
    c_e3 = np.zeros(n)
    c_e5 = np.zeros(n)
    c_sie = np.zeros(n)
    c_sc = np.zeros(n, dtype=np.int64)
    c_seedidx = np.zeros(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    nc = 0
    i = 0
    while i < n:
        j = i
        while j < n and ev[j] == ev[i]:
            j += 1
        m = i
        while m < j and calo[m] == 0:
            m += 1
        first = nc
        # ---------------------------------------------------------------- ECAL seeds
        seeds = []
        for s in range(i, m):
            e0 = en[s]
            if e0 <= seed_e:
                continue
            is_max = True
            for de in range(-1, 2):
                ie2 = ieta[s] + de
                if ie2 < 0 or ie2 >= neta_e:
                    continue
                for dp in range(-1, 2):
                    if de == 0 and dp == 0:
                        continue
                    f = _find(keys, i, m, ie2 * nphi_e + (iphi[s] + dp) % nphi_e)
                    if f >= 0 and (en[f] > e0 or (en[f] == e0 and f < s)):
                        is_max = False
            if is_max:
                seeds.append(s)
        if len(seeds) > 0:
            se = np.empty(len(seeds))
            for q in range(len(seeds)):
                se[q] = -en[seeds[q]]
            order = np.argsort(se, kind="mergesort")
            qh = 0
            qt = 0
            for q in range(len(seeds)):
                s = seeds[order[q]]
                label[s] = nc
                c_seedidx[nc] = s
                c_ev[nc] = ev[s]
                c_id[nc] = nc - first
                c_sc[nc] = 0
                nc += 1
                queue[qt] = s
                qt += 1
            while qh < qt:
                s = queue[qh]
                qh += 1
                for de in range(-1, 2):
                    ie2 = ieta[s] + de
                    if ie2 < 0 or ie2 >= neta_e:
                        continue
                    for dp in range(-1, 2):
                        if de == 0 and dp == 0:
                            continue
                        f = _find(keys, i, m, ie2 * nphi_e + (iphi[s] + dp) % nphi_e)
                        if f >= 0 and label[f] < 0:
                            label[f] = label[s]
                            queue[qt] = f
                            qt += 1
            # cluster sums and positions
            for s in range(i, m):
                c = label[s]
                if c < 0:
                    continue
                e0 = en[s]
                c_ecal[c] += e0
                c_nc[c] += 1
                c_ne[c] += 1
                if e0 > 0.0:
                    sd = c_seedidx[c]
                    c_eta[c] += e0 * ceta[s]
                    c_phi[c] += e0 * _dphi(cphi[s], cphi[sd])
                    c_seed[c] += e0  # temporary: positive energy sum for weights
            for c in range(first, nc):
                sd = c_seedidx[c]
                wsum = c_seed[c]
                if wsum > 0.0:
                    c_eta[c] /= wsum
                    c_phi[c] = cphi[sd] + c_phi[c] / wsum
                    c_phi[c] = _dphi(c_phi[c], 0.0)
                else:
                    c_eta[c] = ceta[sd]
                    c_phi[c] = cphi[sd]
                c_seed[c] = en[sd]
                # shower shapes around the seed
                e3 = 0.0
                e5 = 0.0
                for de in range(-2, 3):
                    ie2 = ieta[sd] + de
                    if ie2 < 0 or ie2 >= neta_e:
                        continue
                    for dp in range(-2, 3):
                        f = _find(keys, i, m, ie2 * nphi_e + (iphi[sd] + dp) % nphi_e)
                        if f >= 0:
                            e5 += en[f]
                            if abs(de) <= 1 and abs(dp) <= 1:
                                e3 += en[f]
                c_e3[c] = e3
                c_e5[c] = e5
                sw = 0.0
                sx = 0.0
                sxx = 0.0
                if e5 > 0.0:
                    for de in range(-2, 3):
                        ie2 = ieta[sd] + de
                        if ie2 < 0 or ie2 >= neta_e:
                            continue
                        for dp in range(-2, 3):
                            f = _find(keys, i, m, ie2 * nphi_e + (iphi[sd] + dp) % nphi_e)
                            if f >= 0 and en[f] > 0.0:
                                w = max(0.0, 4.7 + math.log(en[f] / e5))
                                sw += w
                                sx += w * de
                                sxx += w * de * de
                if sw > 0.0:
                    mu = sx / sw
                    c_sie[c] = math.sqrt(max(sxx / sw - mu * mu, 0.0)) * deta_e
                else:
                    c_sie[c] = 0.0
        n_ecal_cl = nc
        # ---------------------------------------------------------- link HCAL to ECAL
        for s in range(m, j):
            if en[s] <= 0.0:
                continue
            best = _nearest(ceta[s], cphi[s], c_eta, c_phi, first, n_ecal_cl, dr)
            if best >= 0:
                label[s] = best
                c_hcal[best] += en[s]
                c_nc[best] += 1
        # ------------------------------------------------------------ HCAL-only
        hs = []
        for s in range(m, j):
            if label[s] < 0 and en[s] > seed_h:
                hs.append(s)
        if len(hs) > 0:
            he = np.empty(len(hs))
            for q in range(len(hs)):
                he[q] = -en[hs[q]]
            order = np.argsort(he, kind="mergesort")
            for q in range(len(hs)):
                sd = hs[order[q]]
                if label[sd] >= 0:
                    continue
                c = nc
                nc += 1
                c_ev[c] = ev[sd]
                c_id[c] = c - first
                c_sc[c] = 1
                c_seedidx[c] = sd
                c_seed[c] = en[sd]
                c_e3[c] = np.nan
                c_e5[c] = np.nan
                c_sie[c] = np.nan
                wsum = 0.0
                we = 0.0
                wp = 0.0
                for s in range(m, j):
                    if label[s] >= 0:
                        continue
                    d2 = (ceta[s] - ceta[sd]) ** 2 + _dphi(cphi[s], cphi[sd]) ** 2
                    if d2 < dr * dr:
                        label[s] = c
                        c_hcal[c] += en[s]
                        c_nc[c] += 1
                        if en[s] > 0.0:
                            wsum += en[s]
                            we += en[s] * ceta[s]
                            wp += en[s] * _dphi(cphi[s], cphi[sd])
                if wsum > 0.0:
                    c_eta[c] = we / wsum
                    c_phi[c] = _dphi(cphi[sd] + wp / wsum, 0.0)
                else:
                    c_eta[c] = ceta[sd]
                    c_phi[c] = cphi[sd]
        # ------------------------------------------------ left-over ECAL cells
        for s in range(i, m):
            if label[s] >= 0 or en[s] <= 0.0:
                continue
            best = _nearest(ceta[s], cphi[s], c_eta, c_phi, first, nc, dr)
            if best >= 0:
                label[s] = best
                c_ecal[best] += en[s]
                c_nc[best] += 1
                c_ne[best] += 1
        i = j
    return (
        label,
        c_ev[:nc],
        c_id[:nc],
        c_ecal[:nc],
        c_hcal[:nc],
        c_eta[:nc],
        c_phi[:nc],
        c_nc[:nc],
        c_ne[:nc],
        c_seed[:nc],
        c_e3[:nc],
        c_e5[:nc],
        c_sie[:nc],
        c_sc[:nc],
    )
