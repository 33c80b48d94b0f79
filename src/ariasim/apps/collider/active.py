"""The collider reference pipeline of active simulation control (issue 11).

Three stages (the contract of :mod:`ariasim.active.pipeline`), with a control point before
the expensive one:

1. ``generate`` -- :class:`DimuonGenerator`: Drell-Yan-like muon pairs at generator level.
   The pair mass follows a continuum ``dN/dm ~ m^-3`` on ``[m_min, m_max]`` plus a
   fraction of Z bosons (relativistic Breit-Wigner approximated by a Cauchy, PDG mass and
   width, truncated to the same range); the pair rapidity is flat in ``[-y_max, y_max]``
   (so the muons spread over a wide eta range, most outside the tracker), its transverse
   momentum exponential with mean ``qt_mean_gev``; the muons come from an isotropic
   two-body decay in the pair rest frame. Each event also holds an underlying event
   (Poisson number of soft pi+, pi-, photons, flat in eta over ``|eta| < 4``) and, per
   muon with probability ``jet_fraction``, a collinear "heavy-flavour" jet of hadrons
   that makes it non-isolated. All particles share one vertex, Gaussian along the beam.
   Scalar features known at generator level (``gen_*``: leading and subleading muon pT,
   eta, truth relative isolation, pair mass and rapidity, number of particles) are the
   controller's inputs; the particles travel in the object column ``gen_particles``.
2. ``detector`` -- :class:`DetectorStage`: ariasim's full collider simulation
   (:func:`ariasim.simulators.collider.simulate`: tracker with material, calorimeter
   showers, muon stations, particle-flow reconstruction) of every particle. It returns
   the reconstructed objects of each event (object column ``reco_objects``) and the
   number of reconstructed muons, and ``cpu_s``: the thread CPU time of the simulation
   call shared among the events in proportion to their number of particles (the
   simulation runs in blocks, so a per-event time is not measured; the cost per particle
   varies by species within a factor of about 3).
3. ``select`` -- :class:`DimuonSelection`: two isolated muons of opposite charge with
   ``pT > 20 GeV`` and ``|eta| < 2.4``; relative isolation = scalar sum of the pT of the
   other reconstructed objects within ``Delta R < 0.3``, over the muon's pT, below 0.15
   (the combined relative isolation of CMS's early muon analyses). Observables of passing
   events:
   ``m_mumu`` (GeV), ``mu1_pt``, ``mu2_pt`` (GeV), ``mu1_eta``, ``mu2_eta``.

:func:`make_collider_pipeline` builds it (``size="default"`` or the smaller ``"ci"``).
Measured on this project's 2-core development machine (20,000 events after a warm-up
that compiles the numba kernels, thread CPU time per stage): ``default`` spends 0.016,
0.79 and 0.004 ms per generated event in generate, detector and select (the detector
97.5 % of the CPU) and 2.0 % of the events pass; ``ci`` spends 0.32 ms per event in the
detector (97.7 %), with the same 2.0 % passing.

References:
    S. D. Drell, T.-M. Yan, Phys. Rev. Lett. 25 (1970) 316 (lepton pairs from hadron
    collisions; the falling continuum). Particle Data Group, R. L. Workman et al., Prog.
    Theor. Exp. Phys. 2022, 083C01 (Z mass and width). CMS Collaboration, "Performance of
    CMS muon reconstruction in pp collision events at sqrt(s) = 7 TeV", JINST 7 (2012)
    P10002 (relative isolation in a cone of 0.3, tight working point 0.15).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.active import ControlPoint, Pipeline, Stage
from ariasim.errors import ConfigError, InputError
from ariasim.simulators.collider import load_detector, particle_table, read_events, simulate
from ariasim.simulators.collider.particles import SPECIES

__all__ = [
    "FEATURES",
    "OBSERVABLES",
    "PARTICLE_DTYPE",
    "RECO_DTYPE",
    "SIZES",
    "DetectorStage",
    "DimuonGenerator",
    "DimuonSelection",
    "EventFileGenerator",
    "generator_features",
    "make_collider_pipeline",
    "relative_isolation",
    "settings",
]

MUON_MASS_GEV = SPECIES["mu-"].mass_gev
Z_MASS_GEV = 91.1876
Z_WIDTH_GEV = 2.4952

#: Generator-level particles of one event (object column ``gen_particles``).
PARTICLE_DTYPE = np.dtype(
    [("pdg", np.int64), ("px_gev", float), ("py_gev", float), ("pz_gev", float), ("vz_mm", float)]
)
#: Reconstructed objects of one event (object column ``reco_objects``); ``kind`` is the
#: index of the object type in :data:`RECO_KINDS`.
RECO_DTYPE = np.dtype(
    [
        ("kind", np.int8),
        ("pt_gev", float),
        ("eta", float),
        ("phi", float),
        ("charge", np.int8),
    ]
)
RECO_KINDS = ("muon", "electron", "photon", "charged_hadron", "neutral_hadron")

#: Generator-level features the controller may use before the detector stage.
FEATURES = (
    "gen_mu1_pt",
    "gen_mu2_pt",
    "gen_mu1_eta",
    "gen_mu2_eta",
    "gen_mu1_iso",
    "gen_mu2_iso",
    "gen_mass",
    "gen_pair_y",
    "gen_n_particles",
)
#: Final-level observables of passing events.
OBSERVABLES = ("m_mumu", "mu1_pt", "mu2_pt", "mu1_eta", "mu2_eta")
_EDGES = {
    "m_mumu": np.r_[np.linspace(10.0, 80.0, 8), 86.0, 96.0, 110.0, 140.0, 200.0],
    "mu1_pt": np.r_[20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 60.0, 80.0, 120.0],
    "mu2_pt": np.r_[20.0, 22.5, 25.0, 30.0, 35.0, 40.0, 50.0, 70.0],
    "mu1_eta": np.linspace(-2.4, 2.4, 9),
    "mu2_eta": np.linspace(-2.4, 2.4, 9),
}

_PI = np.pi


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigError(f"must be a number, got {value!r}", parameter=name)
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(
            f"must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}",
            parameter=name,
        )
    return v


def _fraction(name: str, value: Any) -> float:
    v = _positive(name, value, allow_zero=True)
    if v > 1:
        raise ConfigError(f"must be in [0, 1], got {value!r}", parameter=name)
    return v


def _delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b + _PI) % (2 * _PI) - _PI


def relative_isolation(
    group: np.ndarray,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    candidates: np.ndarray,
    cone: float = 0.3,
) -> np.ndarray:
    """Scalar sum of the pT of the other objects of the same group within ``Delta R < cone``
    of each candidate, divided by the candidate's pT.

    Arguments:
        group: Group (event) of each object, sorted (objects of a group contiguous).
        pt, eta, phi: Kinematics of each object.
        candidates: Indices of the objects whose isolation is wanted.
        cone: Cone size in ``Delta R = sqrt(Delta eta^2 + Delta phi^2)``.

    Example:
        >>> import numpy as np
        >>> iso = relative_isolation(
        ...     np.array([0, 0, 0, 1]), np.array([40.0, 4.0, 10.0, 30.0]),
        ...     np.array([0.0, 0.1, 1.0, 0.0]), np.zeros(4), np.array([0, 3]))
        >>> iso.tolist()
        [0.1, 0.0]
    """
    group = np.asarray(group)
    candidates = np.asarray(candidates, dtype=np.int64)
    if candidates.size == 0:
        return np.zeros(0)
    starts = np.r_[0, np.flatnonzero(np.diff(group) != 0) + 1]
    ends = np.r_[starts[1:], group.size]
    which = np.searchsorted(starts, candidates, side="right") - 1  # group index of candidate
    lo, hi = starts[which], ends[which]
    counts = hi - lo
    c = np.repeat(candidates, counts)
    # all objects of the candidate's group: lo, lo+1, ..., hi-1 per candidate
    o = np.repeat(lo - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
    dr2 = (eta[o] - eta[c]) ** 2 + _delta_phi(phi[o], phi[c]) ** 2
    inside = (o != c) & (dr2 < cone * cone)
    summed = np.zeros(candidates.size)
    np.add.at(summed, np.repeat(np.arange(candidates.size), counts)[inside], pt[o][inside])
    return summed / np.maximum(pt[candidates], 1e-12)


@dataclass(frozen=True)
class DimuonGenerator:
    """The generator stage: muon pairs with an underlying event (module docstring).

    Arguments:
        m_min_gev, m_max_gev: Pair-mass range [GeV].
        z_fraction: Fraction of Z bosons (the rest is the ``m^-3`` continuum).
        y_max: Pair rapidity flat in ``[-y_max, y_max]``.
        qt_mean_gev: Mean pair transverse momentum (exponential) [GeV].
        ue_mean: Mean number of underlying-event particles (Poisson).
        ue_pt_mean_gev: Mean pT of those above 0.2 GeV (exponential) [GeV].
        jet_fraction: Probability that a muon comes with a collinear hadron jet.
        vz_sigma_mm: Gaussian spread of the vertex along the beam [mm].

    Example:
        >>> import numpy as np, pandas as pd
        >>> gen = DimuonGenerator(ue_mean=3.0)
        >>> ev = gen(pd.DataFrame({"event_id": [5, 6, 7]}), np.random.default_rng(1))
        >>> ev["event_id"].tolist(), bool((ev["gen_mu1_pt"] >= ev["gen_mu2_pt"]).all())
        ([5, 6, 7], True)
        >>> ev["gen_particles"].iloc[0].dtype.names[:2]
        ('pdg', 'px_gev')
    """

    m_min_gev: float = 12.0
    m_max_gev: float = 500.0
    z_fraction: float = 0.02
    y_max: float = 4.0
    qt_mean_gev: float = 8.0
    ue_mean: float = 20.0
    ue_pt_mean_gev: float = 0.5
    jet_fraction: float = 0.3
    vz_sigma_mm: float = 40.0

    def __post_init__(self) -> None:
        for name in ("m_min_gev", "m_max_gev", "y_max", "qt_mean_gev", "ue_pt_mean_gev"):
            _positive(name, getattr(self, name))
        for name in ("ue_mean", "vz_sigma_mm"):
            _positive(name, getattr(self, name), allow_zero=True)
        for name in ("z_fraction", "jet_fraction"):
            _fraction(name, getattr(self, name))
        if not 2 * MUON_MASS_GEV < self.m_min_gev < self.m_max_gev:
            raise ConfigError(
                f"need 2 m_mu < m_min < m_max, got {self.m_min_gev}, {self.m_max_gev}",
                parameter="m_min_gev",
            )

    def _masses(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lo, hi = self.m_min_gev, self.m_max_gev
        u = rng.random(n)
        cont = (lo**-2 - u * (lo**-2 - hi**-2)) ** -0.5  # inverse CDF of m^-3
        # Cauchy truncated to [lo, hi] by inverting its CDF on the range
        a = np.arctan((lo - Z_MASS_GEV) / (Z_WIDTH_GEV / 2))
        b = np.arctan((hi - Z_MASS_GEV) / (Z_WIDTH_GEV / 2))
        z = Z_MASS_GEV + Z_WIDTH_GEV / 2 * np.tan(a + (b - a) * rng.random(n))
        return np.where(rng.random(n) < self.z_fraction, z, cont)

    def __call__(self, events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        ids = events["event_id"].to_numpy(np.int64)
        n = ids.size
        # the pair: mass, rapidity, transverse momentum, azimuth
        m = self._masses(rng, n)
        y = rng.uniform(-self.y_max, self.y_max, n)
        qt = rng.exponential(self.qt_mean_gev, n)
        qphi = rng.uniform(-_PI, _PI, n)
        mt = np.sqrt(m**2 + qt**2)
        pair = np.stack([qt * np.cos(qphi), qt * np.sin(qphi), mt * np.sinh(y)], axis=1)
        pair_e = mt * np.cosh(y)
        # isotropic decay in the rest frame, boosted to the lab
        cos_t = rng.uniform(-1.0, 1.0, n)
        phi_d = rng.uniform(-_PI, _PI, n)
        sin_t = np.sqrt(1.0 - cos_t**2)
        pstar = np.sqrt(np.maximum(m**2 / 4 - MUON_MASS_GEV**2, 0.0))
        k = pstar[:, None] * np.stack([sin_t * np.cos(phi_d), sin_t * np.sin(phi_d), cos_t], 1)
        e_star = m / 2
        beta = pair / pair_e[:, None]
        b2 = np.sum(beta**2, axis=1)
        gamma = 1.0 / np.sqrt(1.0 - b2)
        mus = []
        for sign in (1.0, -1.0):
            ks = sign * k
            bk = np.sum(beta * ks, axis=1)
            coef = (gamma - 1.0) * bk / np.where(b2 > 0, b2, 1.0) + gamma * e_star
            mus.append(ks + coef[:, None] * beta)
        mu_pdg = np.array([13, -13])
        vz = rng.normal(0.0, self.vz_sigma_mm, n) if self.vz_sigma_mm > 0 else np.zeros(n)

        parts_ev = [np.repeat(np.arange(n), 2)]
        parts_pdg = [np.tile(mu_pdg, n)]
        parts_p = [np.stack(mus, axis=1).reshape(-1, 3)]
        # underlying event
        n_ue = rng.poisson(self.ue_mean, n)
        tot = int(n_ue.sum())
        parts_ev.append(np.repeat(np.arange(n), n_ue))
        parts_pdg.append(rng.choice(np.array([211, -211, 22]), size=tot, p=[0.4, 0.4, 0.2]))
        parts_p.append(
            _momenta(
                0.2 + rng.exponential(self.ue_pt_mean_gev, tot),
                rng.uniform(-4.0, 4.0, tot),
                rng.uniform(-_PI, _PI, tot),
            )
        )
        # collinear jets around some muons (index 2 i + j for muon j of event i)
        mu_p = parts_p[0]
        has_jet = np.flatnonzero(rng.random(2 * n) < self.jet_fraction)
        n_had = 1 + rng.poisson(2.0, has_jet.size)
        owner = np.repeat(has_jet, n_had)
        share = rng.exponential(1.0, owner.size)
        share_sum = np.zeros(2 * n)
        np.add.at(share_sum, owner, share)
        mu_pt = np.hypot(mu_p[:, 0], mu_p[:, 1])
        mu_eta = np.arcsinh(mu_p[:, 2] / mu_pt)
        mu_phi = np.arctan2(mu_p[:, 1], mu_p[:, 0])
        jet_pt = mu_pt * rng.uniform(0.1, 1.0, 2 * n)
        parts_ev.append(owner // 2)
        parts_pdg.append(rng.choice(np.array([211, -211, 22, 130]), size=owner.size))
        parts_p.append(
            _momenta(
                jet_pt[owner] * share / share_sum[owner],
                mu_eta[owner] + rng.normal(0.0, 0.1, owner.size),
                mu_phi[owner] + rng.normal(0.0, 0.1, owner.size),
            )
        )
        ev = np.concatenate(parts_ev)
        order = np.argsort(ev, kind="stable")  # muons first in each event
        ev = ev[order]
        p = np.concatenate(parts_p)[order]
        flat = np.empty(ev.size, dtype=PARTICLE_DTYPE)
        flat["pdg"] = np.concatenate(parts_pdg)[order]
        flat["px_gev"], flat["py_gev"], flat["pz_gev"] = p[:, 0], p[:, 1], p[:, 2]
        flat["vz_mm"] = vz[ev]
        counts = np.bincount(ev, minlength=n)
        return generator_features(ids, flat, counts)


def generator_features(ids: np.ndarray, flat: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """The generator-level table of events: the features :data:`FEATURES` and the object
    column ``gen_particles``.

    The two leading muons (``|pdg| = 13``) of an event give ``gen_mu1_*``, ``gen_mu2_*``
    (pT 0, eta 0, isolation 0 when missing), their invariant mass ``gen_mass`` and
    rapidity ``gen_pair_y`` (0 without two muons). The truth isolation counts the visible
    particles (charged pions, photons, muons, K0L).

    Arguments:
        ids: Event ids.
        flat: The particles of all events, :data:`PARTICLE_DTYPE`, events contiguous and in
            the order of ``ids``.
        counts: Number of particles of each event.

    Example:
        >>> import numpy as np
        >>> flat = np.array([(13, 30.0, 0.0, 0.0, 0.0), (-13, -30.0, 0.0, 0.0, 0.0)],
        ...                 dtype=PARTICLE_DTYPE)
        >>> f = generator_features(np.array([4]), flat, np.array([2]))
        >>> round(float(f["gen_mass"].iloc[0]), 3), int(f["gen_n_particles"].iloc[0])
        (60.0, 2)
    """
    ids = np.asarray(ids, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    n = ids.size
    ev = np.repeat(np.arange(n), counts)
    pt = np.hypot(flat["px_gev"], flat["py_gev"])
    eta = np.arcsinh(flat["pz_gev"] / np.maximum(pt, 1e-12))
    phi = np.arctan2(flat["py_gev"], flat["px_gev"])
    mu = np.flatnonzero(np.abs(flat["pdg"]) == 13)
    order = mu[np.lexsort((-pt[mu], ev[mu]))]
    g = ev[order]
    rank = np.arange(order.size) - np.searchsorted(g, g)  # 0 for the leading muon
    lead = order[rank < 2]
    visible = np.where(np.isin(np.abs(flat["pdg"]), (211, 22, 13, 130)), pt, 0.0)
    iso_all = np.zeros(flat.size)
    iso_all[lead] = relative_isolation(ev, visible, eta, phi, lead)
    cols: dict[str, np.ndarray] = {}
    idx = {}
    for r in (0, 1):
        i = np.full(n, -1, dtype=np.int64)
        i[g[rank == r]] = order[rank == r]
        idx[r] = i
        ok = i >= 0
        for name, arr in (("pt", pt), ("eta", eta), ("iso", iso_all)):
            cols[f"gen_mu{r + 1}_{name}"] = np.where(ok, arr[np.maximum(i, 0)], 0.0)
    both = (idx[0] >= 0) & (idx[1] >= 0)
    p = np.zeros((n, 3))
    e = np.zeros(n)
    for r in (0, 1):
        i = np.maximum(idx[r], 0)
        pr = np.stack([flat["px_gev"][i], flat["py_gev"][i], flat["pz_gev"][i]], axis=1)
        pr = pr if flat.size else np.zeros((n, 3))
        p += pr
        e += np.sqrt(np.sum(pr**2, axis=1) + MUON_MASS_GEV**2)
    m2 = e**2 - np.sum(p**2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 0.5 * np.log((e + p[:, 2]) / (e - p[:, 2]))
    out = pd.DataFrame(
        {
            "event_id": ids,
            **cols,
            "gen_mass": np.where(both, np.sqrt(np.maximum(m2, 0.0)), 0.0),
            "gen_pair_y": np.where(both & np.isfinite(y), y, 0.0),
            "gen_n_particles": counts,
        }
    )[["event_id", *FEATURES]]
    per_event = np.split(flat, np.cumsum(counts)[:-1]) if n else []
    out["gen_particles"] = pd.Series(per_event, index=out.index, dtype=object)
    return out


def _momenta(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)


@functools.lru_cache(maxsize=4)
def _read_event_file(path: str, mtime_ns: int) -> tuple[pd.DataFrame, np.ndarray]:
    table = read_events(path)
    ev = table["event_id"].to_numpy(np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(ev) != 0) + 1]
    return table, starts


@dataclass(frozen=True)
class EventFileGenerator:
    """The generator stage from a HepMC3 or LHE event file instead of the built-in generator.

    Event id ``k`` is the ``k``-th event of the file (counting from 0), so a run needs no
    more events than the file holds. Final-state particles only (as
    :func:`ariasim.simulators.collider.read_events` reads them); the production vertex
    keeps its z only. The features are those of :func:`generator_features`.

    Arguments:
        path: The event file (``.hepmc``, ``.hepmc3``, ``.lhe``, ``.lhe.gz``).

    Example:
        >>> EventFileGenerator("no-such-file.hepmc")
        Traceback (most recent call last):
        ...
        ariasim.errors.InputError: file 'no-such-file.hepmc': event file not found
    """

    path: str

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise ConfigError(f"must be a path, got {self.path!r}", parameter="events_file")
        object.__setattr__(self, "path", str(self.path))
        self._table()  # read now: a missing or malformed file is reported at once

    def _table(self) -> tuple[pd.DataFrame, np.ndarray]:
        p = Path(self.path)
        if not p.exists():
            raise InputError("event file not found", path=p)
        return _read_event_file(str(p.resolve()), p.stat().st_mtime_ns)

    @property
    def n_events(self) -> int:
        """Number of events in the file."""
        return int(self._table()[1].size)

    def __call__(self, events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        table, starts = self._table()
        ids = events["event_id"].to_numpy(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= starts.size):
            raise InputError(
                f"event id {int(ids.max())} asked for, but the file holds {starts.size} "
                "events (ids 0 to n - 1)",
                path=self.path,
            )
        ends = np.r_[starts[1:], len(table)]
        lo, hi = starts[ids], ends[ids]
        counts = (hi - lo).astype(np.int64)
        rows = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        flat = np.empty(rows.size, dtype=PARTICLE_DTYPE)
        for name in PARTICLE_DTYPE.names or ():
            flat[name] = table[name].to_numpy()[rows]
        return generator_features(ids, flat, counts)


@dataclass(frozen=True)
class DetectorStage:
    """The expensive stage: full collider simulation of every generator-level particle.

    Arguments:
        detector: Detector name or TOML path (see
            :func:`ariasim.simulators.collider.load_detector`).

    Example:
        >>> DetectorStage("default").detector
        'default'
    """

    detector: str = "default"

    def __post_init__(self) -> None:
        load_detector(self.detector)  # a ConfigError naming ``detector`` if unknown

    def __call__(self, events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        t0 = time.thread_time()
        ids = events["event_id"].to_numpy(np.int64)
        per_event = list(events["gen_particles"])
        counts = np.array([len(p) for p in per_event], dtype=np.int64)
        flat = np.concatenate(per_event) if per_event else np.empty(0, PARTICLE_DTYPE)
        truth = particle_table(
            np.repeat(ids, counts),
            flat["pdg"],
            flat["px_gev"],
            flat["py_gev"],
            flat["pz_gev"],
            vz_mm=flat["vz_mm"],
        )
        seed = int(rng.integers(0, 2**63 - 1))
        sim = simulate(truth, self.detector, seed=seed)
        kind = sim["object_type"].map({k: i for i, k in enumerate(RECO_KINDS)})
        found = kind.notna().to_numpy() & sim["found"].to_numpy(bool)
        reco = np.empty(int(found.sum()), dtype=RECO_DTYPE)
        reco["kind"] = kind.to_numpy()[found].astype(np.int8)
        reco["pt_gev"] = sim["reco_pt_gev"].to_numpy(float)[found]
        reco["eta"] = sim["reco_eta"].to_numpy(float)[found]
        reco["phi"] = sim["reco_phi"].to_numpy(float)[found]
        reco["charge"] = sim["track_charge"].to_numpy()[found].astype(np.int8)
        row_event = np.repeat(np.arange(ids.size), counts)[found]
        n_reco = np.bincount(row_event, minlength=ids.size)
        n_mu = np.bincount(row_event[reco["kind"] == 0], minlength=ids.size)
        pieces = np.split(reco, np.cumsum(n_reco)[:-1]) if ids.size else []
        cpu = time.thread_time() - t0
        out = pd.DataFrame(
            {
                "event_id": ids,
                "reco_n_objects": n_reco.astype(np.int64),
                "reco_n_muons": n_mu.astype(np.int64),
                "cpu_s": cpu * counts / max(int(counts.sum()), 1),
            }
        )
        out["reco_objects"] = pd.Series(pieces, index=out.index, dtype=object)
        return out


@dataclass(frozen=True)
class DimuonSelection:
    """The analysis selection: two isolated opposite-charge muons (module docstring).

    The pair is the leading selected muon and the leading selected muon of the other
    charge.

    Arguments:
        pt_min_gev: Minimum muon pT [GeV].
        eta_max: Maximum muon ``|eta|``.
        iso_max: Maximum relative isolation.
        iso_cone: Isolation cone ``Delta R``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> objs = np.array([(0, 45.0, 0.1, 0.0, 1), (0, 38.0, -0.5, 3.0, -1)],
        ...                 dtype=RECO_DTYPE)
        >>> ev = pd.DataFrame({"event_id": [3]})
        >>> ev["reco_objects"] = pd.Series([objs], dtype=object)
        >>> out = DimuonSelection()(ev, None)
        >>> out["event_id"].tolist(), round(float(out["m_mumu"].iloc[0]), 1)
        ([3], 86.3)
    """

    pt_min_gev: float = 20.0
    eta_max: float = 2.4
    iso_max: float = 0.15
    iso_cone: float = 0.3

    def __post_init__(self) -> None:
        for name in ("pt_min_gev", "eta_max", "iso_cone"):
            _positive(name, getattr(self, name))
        _positive("iso_max", self.iso_max, allow_zero=True)

    def __call__(self, events: pd.DataFrame, rng: np.random.Generator | None) -> pd.DataFrame:
        ids = events["event_id"].to_numpy(np.int64)
        per_event = list(events["reco_objects"])
        counts = np.array([len(o) for o in per_event], dtype=np.int64)
        objs = np.concatenate(per_event) if per_event else np.empty(0, RECO_DTYPE)
        group = np.repeat(np.arange(ids.size), counts)
        pt, eta, phi = objs["pt_gev"], objs["eta"], objs["phi"]
        good = np.flatnonzero(
            (objs["kind"] == 0)
            & (objs["charge"] != 0)
            & (pt > self.pt_min_gev)
            & (np.abs(eta) < self.eta_max)
        )
        iso = relative_isolation(group, pt, eta, phi, good, self.iso_cone)
        good = good[iso < self.iso_max]
        # per event: leading good muon, then the leading good muon of the other charge
        order = good[np.lexsort((-pt[good], group[good]))]
        g = group[order]
        first = np.r_[True, g[1:] != g[:-1]] if g.size else np.zeros(0, bool)
        lead = order[first]
        lead_charge = np.zeros(ids.size, dtype=np.int64)
        lead_charge[group[lead]] = objs["charge"][lead]
        other = order[objs["charge"][order] == -lead_charge[g]]
        go = group[other]
        second = other[np.r_[True, go[1:] != go[:-1]]] if go.size else other
        ev2 = group[second]
        lead_of = np.full(ids.size, -1, dtype=np.int64)
        lead_of[group[lead]] = lead
        i1, i2 = lead_of[ev2], second
        mass = _pair_mass(pt[i1], eta[i1], phi[i1], pt[i2], eta[i2], phi[i2])
        return pd.DataFrame(
            {
                "event_id": ids[ev2],
                "m_mumu": mass,
                "mu1_pt": pt[i1],
                "mu2_pt": pt[i2],
                "mu1_eta": eta[i1],
                "mu2_eta": eta[i2],
            }
        )


def _pair_mass(
    pt1: np.ndarray,
    eta1: np.ndarray,
    phi1: np.ndarray,
    pt2: np.ndarray,
    eta2: np.ndarray,
    phi2: np.ndarray,
) -> np.ndarray:
    m2 = MUON_MASS_GEV**2
    p1 = _momenta(pt1, eta1, phi1)
    p2 = _momenta(pt2, eta2, phi2)
    e1 = np.sqrt(np.sum(p1**2, axis=1) + m2)
    e2 = np.sqrt(np.sum(p2**2, axis=1) + m2)
    p = p1 + p2
    return np.sqrt(np.maximum((e1 + e2) ** 2 - np.sum(p**2, axis=1), 0.0))


#: Generator settings per size: ``"default"`` (detector-dominated, as in production) and
#: ``"ci"`` (a smaller underlying event, so that CI runs are quicker).
SIZES: dict[str, dict[str, float]] = {
    "default": {"ue_mean": 20.0},
    "ci": {"ue_mean": 5.0},
}


def make_collider_pipeline(size: str = "default", **overrides: Any) -> Pipeline:
    """The collider reference pipeline: generate -> detector -> select.

    Arguments:
        size: ``"default"`` or ``"ci"`` (:data:`SIZES`).
        overrides: Fields of :class:`DimuonGenerator` (e.g. ``ue_mean=10``),
            :class:`DimuonSelection` (e.g. ``pt_min_gev=25``), ``detector``, and
            ``events_file`` (a HepMC3 or LHE file read by :class:`EventFileGenerator`
            instead of the built-in generator; then no generator field applies).

    Example:
        >>> p = make_collider_pipeline("ci", jet_fraction=0.5)
        >>> p.stage_names, p.control_points[0].before
        (('generate', 'detector', 'select'), 'detector')
    """
    if size not in SIZES:
        raise ConfigError(
            f"unknown size {size!r}; choose from {', '.join(SIZES)}", parameter="size"
        )
    gen_names = {f.name for f in fields(DimuonGenerator)}
    sel_names = {f.name for f in fields(DimuonSelection)}
    other = {"detector", "events_file"}
    unknown = sorted(set(overrides) - gen_names - sel_names - other)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r}; choose from "
            f"{', '.join(sorted(gen_names | sel_names | other))}",
            parameter=unknown[0],
        )
    gen_overrides = {k: v for k, v in overrides.items() if k in gen_names}
    gen: DimuonGenerator | EventFileGenerator
    if overrides.get("events_file") is not None:
        if gen_overrides:
            raise ConfigError(
                "does not apply when the events come from an events_file",
                parameter=sorted(gen_overrides)[0],
            )
        gen = EventFileGenerator(overrides["events_file"])
    else:
        gen = DimuonGenerator(**{**SIZES[size], **gen_overrides})
    sel = DimuonSelection(**{k: v for k, v in overrides.items() if k in sel_names})
    det = DetectorStage(overrides.get("detector", "default"))
    edges = {k: v.tolist() for k, v in _EDGES.items()}
    if sel.pt_min_gev != 20.0 or sel.eta_max != 2.4:
        edges = {}  # the default binning fits the default cuts only
    return Pipeline(
        [Stage("generate", gen), Stage("detector", det), Stage("select", sel)],
        control_points=[ControlPoint("detector", FEATURES)],
        observables=OBSERVABLES,
        name=f"collider-{size}",
        edges=edges,
        # nominal CPU seconds per event (measured once, 20k events, one core of the 2-core
        # development machine): the controllers' cost model, never this run's timing
        stage_costs={
            "generate": 1.6e-5,
            "detector": 7.9e-4 if size == "default" else 3.2e-4,
            "select": 4e-6,
        },
    )


def settings(pipeline: Pipeline) -> dict[str, Any]:
    """The settings of a collider pipeline's stages (for provenance).

    Arguments:
        pipeline: A pipeline from :func:`make_collider_pipeline`.
    """
    return {s.name: asdict(s.func) for s in pipeline.stages}
