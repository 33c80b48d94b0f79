"""The atmospheric-muon chain on event tables: primaries -> bundles -> muons at depth.

:class:`MuonSimulator` holds the physics (flux and generation surface, Elbert yield,
energy losses) and the detector volume: a vertical cylinder of radius ``radius_m`` and
half-height ``half_height_m`` centred on the detector origin, whose centre lies
``depth_m`` below the ice surface (detector ``z`` points up). Its three steps take and
return :class:`pandas.DataFrame` event tables keyed by ``event_id``; the per-muon and
per-loss arrays of an event travel in object columns.

1. :meth:`MuonSimulator.primaries`: one primary per event id (:mod:`.primaries`).
2. :meth:`MuonSimulator.bundles`: the Elbert bundle above the energy needed to reach the
   top of the volume along the event's zenith (the continuous-only range, so no muon that
   could arrive is left out); events without a muon are dropped.
3. :meth:`MuonSimulator.propagate`: every muon (a line parallel to the shower axis,
   offset laterally) is propagated through the ice (spherical Earth) to where it enters
   the volume, then through the volume with its stochastic losses recorded; muons that
   miss the volume or stop before it are dropped, and events left without muons too.

References:
    See :mod:`.primaries`, :mod:`.bundles` and :mod:`.propagation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError, InputError
from ariasim.simulators.muons.bundles import ElbertYield
from ariasim.simulators.muons.primaries import PrimaryGenerator, perpendicular_basis
from ariasim.simulators.muons.propagation import (
    ICE_DENSITY,
    EnergyLossModel,
    cylinder_chord,
    slant_length_m,
)

__all__ = ["DEPTH_FEATURES", "MuonSimulator"]

#: Scalar columns made by :meth:`MuonSimulator.propagate` (known before the light).
DEPTH_FEATURES = (
    "n_mu_depth",
    "log10_e_lead",
    "log10_e_total",
    "log10_loss_max",
    "log10_loss_total",
    "lead_closest_m",
    "lead_length_m",
    "track_length_m",
)


def _require(events: pd.DataFrame, cols: tuple[str, ...], step: str) -> None:
    missing = [c for c in ("event_id", *cols) if c not in events.columns]
    if missing:
        raise InputError(f"{step}: the event table lacks {', '.join(missing)}", column=missing[0])


def _split(values: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(values, np.cumsum(counts)[:-1]) if counts.size else []


@dataclass(frozen=True)
class MuonSimulator:
    """Primaries, bundles and propagation to the detector volume (module docstring).

    Arguments:
        generator: Primary flux and generation surface.
        yield_model: Elbert muon yield.
        losses: Muon energy losses.
        radius_m: Radius of the detector volume [m].
        half_height_m: Half height of the detector volume [m].
        depth_m: Depth of the volume's centre below the surface [m].

    Example:
        >>> sim = MuonSimulator(PrimaryGenerator(radius_m=300.0), radius_m=200.0,
        ...                     half_height_m=200.0)
        >>> rng = np.random.default_rng(2)
        >>> ev = sim.primaries(np.arange(2000), rng)
        >>> mu = sim.propagate(sim.bundles(ev, rng).merge(ev, on="event_id"), rng)
        >>> bool(len(mu) > 0), bool((mu["n_mu_depth"] >= 1).all())
        (True, True)
    """

    generator: PrimaryGenerator = field(default_factory=PrimaryGenerator)
    yield_model: ElbertYield = field(default_factory=ElbertYield)
    losses: EnergyLossModel = field(default_factory=EnergyLossModel)
    radius_m: float = 300.0
    half_height_m: float = 300.0
    depth_m: float = 1950.0

    def __post_init__(self) -> None:
        for name in ("radius_m", "half_height_m", "depth_m"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"must be > 0, got {getattr(self, name)!r}", parameter=name)
        if self.half_height_m >= self.depth_m:
            raise ConfigError(
                f"the volume reaches the surface (half height {self.half_height_m:g} m >= "
                f"depth {self.depth_m:g} m)",
                parameter="half_height_m",
            )

    # -- step 1 ---------------------------------------------------------------------------
    def primaries(self, event_id: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """One primary per event id (columns of :meth:`PrimaryGenerator.sample`)."""
        ids = np.asarray(event_id, dtype=np.int64)
        out = self.generator.sample(ids.size, rng)
        out.insert(0, "event_id", ids)
        return out

    def threshold_gev(self, cos_zenith: np.ndarray) -> np.ndarray:
        """Surface energy below which no muon reaches the top of the volume [GeV]."""
        top = self.depth_m - self.half_height_m
        return self.losses.threshold_gev(
            slant_length_m(np.asarray(top, dtype=float), cos_zenith) * ICE_DENSITY
        )

    # -- step 2 ---------------------------------------------------------------------------
    def bundles(self, events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """The muon bundle of each event at the surface (events without muons dropped).

        Returns:
            ``event_id``, ``e_threshold_gev``, ``n_mu_surface`` and the object columns
            ``mu_energy_surface`` [GeV], ``mu_offset_1``, ``mu_offset_2`` [m].
        """
        _require(events, ("energy_gev", "mass", "cos_zenith"), "bundles")
        cz = events["cos_zenith"].to_numpy(float)
        e_thr = self.threshold_gev(cz)
        n_mu, energy, o1, o2 = self.yield_model.sample(
            e_thr, events["energy_gev"].to_numpy(float), events["mass"].to_numpy(float), cz, rng
        )
        keep = n_mu > 0
        counts = n_mu[keep]
        return pd.DataFrame(
            {
                "event_id": events["event_id"].to_numpy(np.int64)[keep],
                "e_threshold_gev": e_thr[keep],
                "n_mu_surface": counts,
                "mu_energy_surface": _split(energy, counts),
                "mu_offset_1": _split(o1, counts),
                "mu_offset_2": _split(o2, counts),
            }
        )

    # -- step 3 ---------------------------------------------------------------------------
    def propagate(self, events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Propagate the muons of each event to and through the detector volume.

        Arguments:
            events: Rows with the primary's direction (``dir_x, dir_y, dir_z``), impact
                point (``x0_m, y0_m, z0_m``), ``cos_zenith`` and the bundle columns.
            rng: Random generator.

        Returns:
            One row per event with at least one muon entering the volume: the scalars of
            :data:`DEPTH_FEATURES` and object columns per muon (``mu_energy`` at entry,
            ``mu_entry`` (n, 3) [m], ``mu_length_m`` inside the volume) and per loss
            (``loss_pos`` (m, 3), ``loss_energy`` [GeV], ``loss_muon``: the muon's index
            within the event). All muons of an event share the direction ``dir_*``.
        """
        cols = ("dir_x", "dir_y", "dir_z", "x0_m", "y0_m", "z0_m", "cos_zenith")
        _require(events, (*cols, "mu_energy_surface", "mu_offset_1", "mu_offset_2"), "propagate")
        n_ev = len(events)
        counts = np.array([len(a) for a in events["mu_energy_surface"]], dtype=np.int64)
        ev = np.repeat(np.arange(n_ev), counts)

        def flat(col: str) -> np.ndarray:
            return np.concatenate(list(events[col])) if n_ev else np.zeros(0)

        e_surf, o1, o2 = flat("mu_energy_surface"), flat("mu_offset_1"), flat("mu_offset_2")
        d_ev = events[["dir_x", "dir_y", "dir_z"]].to_numpy(float)
        p_ev = events[["x0_m", "y0_m", "z0_m"]].to_numpy(float)
        e1, e2 = perpendicular_basis(d_ev) if n_ev else (np.zeros((0, 3)), np.zeros((0, 3)))
        d = d_ev[ev]
        p = p_ev[ev] + o1[:, None] * e1[ev] + o2[:, None] * e2[ev]
        s_in, s_out = cylinder_chord(p, d, self.radius_m, self.half_height_m)
        hit = s_in < s_out
        entry = p + s_in[:, None] * d
        depth_in = self.depth_m - np.where(hit, entry[:, 2], 0.0)
        cz = events["cos_zenith"].to_numpy(float)[ev]
        x_to = slant_length_m(depth_in, cz) * ICE_DENSITY
        e_in = np.zeros_like(e_surf)
        idx = np.flatnonzero(hit)
        e_in[idx] = self.losses.propagate(e_surf[idx], x_to[idx], rng).energy_gev
        alive = np.flatnonzero(hit & (e_in > 0))
        chord = (s_out - s_in)[alive] * ICE_DENSITY
        inside = self.losses.propagate(e_in[alive], chord, rng, record=True)
        # muons at depth, grouped by event (alive is sorted, so events stay in order)
        m_ev = ev[alive]
        m_entry = entry[alive]
        m_len = inside.distance_mwe / ICE_DENSITY
        m_e = e_in[alive]
        l_mu = inside.loss_muon
        l_ev = m_ev[l_mu]
        l_pos = m_entry[l_mu] + (inside.loss_x_mwe / ICE_DENSITY)[:, None] * d_ev[l_ev]
        l_e = inside.loss_energy_gev
        keep_ev = np.unique(m_ev)
        n_mu = np.bincount(m_ev, minlength=n_ev)[keep_ev]
        n_loss = np.bincount(l_ev, minlength=n_ev)[keep_ev]
        # leading muon: highest entry energy (first on ties)
        order = np.lexsort((-m_e, m_ev))
        first = np.searchsorted(m_ev[order], keep_ev)
        lead = order[first]
        # closest approach of the leading muon's line to the detector centre
        pl = m_entry[lead]
        dl = d_ev[m_ev[lead]]
        closest = np.linalg.norm(pl - np.sum(pl * dl, axis=1)[:, None] * dl, axis=1)
        e_tot = np.bincount(m_ev, weights=m_e, minlength=n_ev)[keep_ev]
        loss_tot = np.bincount(l_ev, weights=l_e, minlength=n_ev)[keep_ev]
        loss_max = np.zeros(n_ev)
        np.maximum.at(loss_max, l_ev, l_e)
        trk = np.bincount(m_ev, weights=m_len, minlength=n_ev)[keep_ev]
        l_order = np.argsort(l_ev, kind="stable")
        mu_local = np.arange(m_ev.size) - np.repeat(np.cumsum(n_mu) - n_mu, n_mu)
        return pd.DataFrame(
            {
                "event_id": events["event_id"].to_numpy(np.int64)[keep_ev],
                "n_mu_depth": n_mu.astype(np.int64),
                "log10_e_lead": np.log10(m_e[lead]),
                "log10_e_total": np.log10(e_tot),
                "log10_loss_max": np.log10(np.maximum(loss_max[keep_ev], 1e-3)),
                "log10_loss_total": np.log10(np.maximum(loss_tot, 1e-3)),
                "lead_closest_m": closest,
                "lead_length_m": m_len[lead],
                "track_length_m": trk,
                "mu_energy": _split(m_e, n_mu),
                "mu_entry": _split(m_entry, n_mu),
                "mu_length_m": _split(m_len, n_mu),
                "loss_pos": _split(l_pos[l_order], n_loss),
                "loss_energy": _split(l_e[l_order], n_loss),
                "loss_muon": _split(mu_local[l_mu][l_order], n_loss),
            }
        )

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "generator": self.generator.describe(),
            "yield": self.yield_model.describe(),
            "losses": self.losses.describe(),
            "radius_m": self.radius_m,
            "half_height_m": self.half_height_m,
            "depth_m": self.depth_m,
        }
