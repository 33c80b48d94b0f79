r"""The ultra-fast simulation: apply a response model with Delphes' semantics in NumPy.

For every truth particle whose PDG code belongs to an object of the
:class:`~ariasim.response.model.ResponseModel`, the modules of the exported card are applied
in the card's order, evaluating *the card's own formula text* with ariasim's TFormula
evaluator (so the fast simulation is, by construction, what Delphes would do with the card):

1. ``Efficiency``: kept if ``Uniform() <= eps(pt, eta)`` (truth);
2. ``EnergyScale``: the four-momentum is multiplied by ``scale(pt, eta, phi, energy)``;
3. tracks, ``MomentumSmearing``: ``res = min(sigma(pt, eta), 1)``, pT drawn log-normally
   with mean pT and standard deviation ``res * pT`` (Delphes' ``LogNormal``), E from
   (pT, eta, m); calorimeter objects, ``EnergySmearing``: ``E ~ Gauss(E, sigma(eta, E))``,
   dropped if ``E <= 0``, pT = sqrt(E^2 - m^2) / cosh(eta);
4. ``AngularSmearing``: eta and phi get Gaussian offsets (phi wrapped into [-pi, pi)).

The output has the full simulation's columns (:data:`OUTPUT_COLUMNS`); quantities the fast
simulation does not model (cluster shapes, track covariances, simulation truth) are NaN,
-1 or False.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346; Delphes
    ``modules/Efficiency.cc``, ``EnergyScale.cc``, ``MomentumSmearing.cc`` (``LogNormal``),
    ``EnergySmearing.cc``, ``AngularSmearing.cc``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import InputError
from ariasim.export.delphes import card_formulas
from ariasim.export.tformula import TFormulaExpression
from ariasim.response.model import ResponseModel
from ariasim.utils import SeedLike, as_generator

__all__ = ["OUTPUT_COLUMNS", "FastSimulator", "fastsim", "truth_columns"]

#: Full-simulation columns and their dtypes (ariasim.simulators.collider.simulate).
OUTPUT_COLUMNS: dict[str, str] = {
    "event_id": "int64", "particle_id": "int64", "pdg": "int64", "truth_charge": "int64",
    "truth_pt_gev": "float64", "truth_eta": "float64", "truth_phi": "float64",
    "truth_e_gev": "float64", "truth_vz_mm": "float64", "object_type": "str",
    "reco_pt_gev": "float64", "reco_eta": "float64", "reco_phi": "float64",
    "reco_e_gev": "float64", "cluster_energy_gev": "float64", "ecal_energy_gev": "float64",
    "hcal_energy_gev": "float64", "e_over_p": "float64", "hcal_over_ecal": "float64",
    "sigma_ietaieta": "float64", "converted": "bool", "n_muon_stations": "int64",
    "found": "bool", "track_pt_gev": "float64", "track_eta": "float64", "track_phi": "float64",
    "track_d0_mm": "float64", "track_z0_mm": "float64", "track_charge": "int64",
    "track_sigma_pt_gev": "float64", "track_sigma_eta": "float64", "track_sigma_phi": "float64",
    "track_sigma_d0_mm": "float64", "track_sigma_z0_mm": "float64", "track_chi2": "float64",
    "track_ndof": "int64", "track_missing_inner": "bool", "track_found": "bool",
    "track_n_muon_stations": "int64", "n_hits": "int64", "interacted_layer": "int64",
    "converted_layer": "int64", "brem_fraction": "float64", "reached_calo": "bool",
    "e_true_ecal_gev": "float64", "e_true_hcal_gev": "float64", "e_leak_gev": "float64",
}


def truth_columns(table: pd.DataFrame, *, source: Any = None) -> pd.DataFrame:
    """Truth kinematics from a particle table (``pt_gev, eta, phi, e_gev, pdg, ...``) or
    from a full-simulation table (``truth_pt_gev, ...``), as the truth columns of the output."""
    if "truth_pt_gev" in table.columns:
        need = ("event_id", "pdg", "truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev")
        cols = {c: c for c in need}
    else:
        need = ("event_id", "pdg", "pt_gev", "eta", "phi", "e_gev")
        cols = dict(zip(("event_id", "pdg", "truth_pt_gev", "truth_eta", "truth_phi",
                         "truth_e_gev"), need, strict=True))
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError("truth-particle table lacks columns (need a particle table or a "
                         "full-simulation table)", path=source, column=", ".join(missing))
    out = pd.DataFrame({k: table[v].to_numpy() for k, v in cols.items()})
    n = len(table)
    out["particle_id"] = table["particle_id"].to_numpy() if "particle_id" in table else np.arange(n)
    if "truth_charge" in table:
        out["truth_charge"] = table["truth_charge"].to_numpy()
    elif "charge" in table:
        out["truth_charge"] = table["charge"].to_numpy()
    else:
        from ariasim.simulators.collider.particles import charge_of

        out["truth_charge"] = charge_of(out["pdg"].to_numpy())
    vz = "truth_vz_mm" if "truth_vz_mm" in table else ("vz_mm" if "vz_mm" in table else None)
    out["truth_vz_mm"] = table[vz].to_numpy(float) if vz else 0.0
    for c in ("truth_pt_gev", "truth_eta", "truth_phi", "truth_e_gev"):
        v = out[c].to_numpy(float)
        if not np.isfinite(v).all():
            raise InputError("non-finite truth values", path=source, column=cols[c])
    return out


def _lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Delphes' MomentumSmearing::LogNormal: mean ``mean``, standard deviation ``sigma``."""
    with np.errstate(all="ignore"):
        b = np.sqrt(np.log1p((sigma / mean) ** 2))
        a = np.log(mean) - 0.5 * b * b
        out = np.exp(a + b * rng.standard_normal(mean.shape))
    return np.where(mean > 0, out, 0.0)


class FastSimulator:
    """A response model compiled once (card formulas printed, linted and parsed), applied
    many times.

    Arguments:
        response: The response model.
    """

    def __init__(self, response: ResponseModel):
        self.response = response
        self._compiled = []
        for obj in response.objects.values():
            cf = card_formulas(obj)
            self._compiled.append((obj, tuple(TFormulaExpression.from_card(t) for t in (
                cf.efficiency, cf.scale, cf.resolution, cf.sigma_eta, cf.sigma_phi))))

    def __call__(self, particles: pd.DataFrame, seed: SeedLike = None, *,
                 source: Any = None) -> pd.DataFrame:
        """Fast-simulate ``particles`` (see :func:`fastsim`)."""
        return _run(self._compiled, particles, seed, source)


def fastsim(particles: pd.DataFrame, response: ResponseModel, seed: SeedLike = None, *,
            source: Any = None) -> pd.DataFrame:
    """Fast-simulate truth particles with a response model (one output row per particle).

    Arguments:
        particles: Particle table or full-simulation table (its truth columns are used).
        response: The response model.
        seed: Seed or Generator.
        source: File name for error messages.
    """
    return FastSimulator(response)(particles, seed, source=source)


def _run(compiled: list, particles: pd.DataFrame, seed: SeedLike, source: Any) -> pd.DataFrame:
    rng = as_generator(seed)
    truth = truth_columns(particles, source=source)
    n = len(truth)
    pt = truth["truth_pt_gev"].to_numpy(float)
    eta = truth["truth_eta"].to_numpy(float)
    phi = truth["truth_phi"].to_numpy(float)
    e = truth["truth_e_gev"].to_numpy(float)
    apdg = np.abs(truth["pdg"].to_numpy(np.int64))
    otype = np.full(n, "none", dtype=object)
    rpt, reta, rphi, re_ = (np.full(n, np.nan) for _ in range(4))
    found = np.zeros(n, dtype=bool)
    is_track = np.zeros(n, dtype=bool)
    for obj, (f_eff, f_scale, f_res, f_seta, f_sphi) in compiled:
        idx = np.flatnonzero(np.isin(apdg, obj.pdg))
        if idx.size == 0:
            continue
        p, h, ph, en = pt[idx], eta[idx], phi[idx], e[idx]
        u = rng.random(idx.size)
        keep = u <= f_eff(p, h, ph, en)
        idx, p, h, ph, en = idx[keep], p[keep], h[keep], ph[keep], en[keep]
        s = f_scale(p, h, ph, en)
        s = np.where(s > 0.0, s, 1.0)  # Delphes ignores a scale <= 0
        p, en = p * s, en * s
        m = obj.mass_gev
        if obj.kind == "track":
            res = np.minimum(f_res(p, h, ph, en), 1.0)
            p = _lognormal(rng, p, res * p)
            en = np.sqrt((p * np.cosh(h)) ** 2 + m * m)
            ok = np.ones(idx.size, dtype=bool)
        else:
            sig = f_res(p, h, ph, en)
            en = en + sig * rng.standard_normal(idx.size)
            ok = en > 0.0
            p = np.where(en > m, np.sqrt(np.maximum(en * en - m * m, 0.0)) / np.cosh(h), 0.0)
        se, sp_ = f_seta(p, h, ph, en), f_sphi(p, h, ph, en)
        h2 = h + se * rng.standard_normal(idx.size)
        ph2 = np.mod(ph + sp_ * rng.standard_normal(idx.size) + np.pi, 2 * np.pi) - np.pi
        idx, p, h2, ph2, en = idx[ok], p[ok], h2[ok], ph2[ok], en[ok]
        otype[idx] = obj.name
        found[idx] = True
        rpt[idx], reta[idx], rphi[idx], re_[idx] = p, h2, ph2, en
        is_track[idx] = obj.kind == "track"
    out: dict[str, Any] = {}
    for col, dt in OUTPUT_COLUMNS.items():
        if col in truth:
            out[col] = truth[col].to_numpy().astype(dt if dt != "str" else object)
        elif dt == "float64":
            out[col] = np.full(n, np.nan)
        elif dt == "int64":
            out[col] = np.full(n, -1, dtype=np.int64) if col != "n_muon_stations" else np.zeros(n, np.int64)
        elif dt == "bool":
            out[col] = np.zeros(n, dtype=bool)
    out.update(object_type=otype.astype(str), found=found, reco_pt_gev=rpt, reco_eta=reta,
               reco_phi=rphi, reco_e_gev=re_)
    trk = found & is_track
    out["track_found"] = trk
    for k, v in (("track_pt_gev", rpt), ("track_eta", reta), ("track_phi", rphi)):
        out[k] = np.where(trk, v, np.nan)
    out["track_charge"] = np.where(trk, truth["truth_charge"].to_numpy(np.int64), 0)
    calo = found & ~is_track
    out["cluster_energy_gev"] = np.where(calo, re_, np.nan)
    return pd.DataFrame(out)[list(OUTPUT_COLUMNS)]
