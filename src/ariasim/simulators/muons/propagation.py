"""Muon energy losses in ice: continuous ``a + b_c E`` plus stochastic losses above ``v_cut``.

The average loss is ``dE/dX = a + b E`` (X in metres water equivalent, mwe) with
``a ≈ 0.26 GeV/mwe`` (ionisation) and ``b ≈ 3.6e-4 /mwe`` for ice (Chirkin & Rhode). The
radiative part ``b`` is split into bremsstrahlung, e+e- pair production and photonuclear
interactions (an approximate split after the PDG muon tables for water), each with an
energy-independent shape of the relative loss ``v = ΔE/E``:

* bremsstrahlung: ``v dN/dv ∝ (4/3)(1 - v) + v²`` (complete screening);
* pair production: ``v dN/dv ∝ v^-1/2 (1 - v)`` (dominated by small v);
* photonuclear: ``v dN/dv ∝ 1 - v + v²/2``.

Each shape is normalised so that ``∫ v dN/dv dv = b_p``. Losses with ``v < v_cut`` are
taken as continuous (``b_c = Σ_p ∫_0^v_cut v dN_p/dv dv``); those above are stochastic,
a Poisson process in X with the energy-independent rate ``Λ = Σ_p ∫_v_cut^1 dN_p/dv dv``
(the same scheme as MMC/PROPOSAL with a relative cut; the shapes are a lumped
parametrisation, not the full cross-sections). Between two stochastic losses the
continuous equation is solved exactly: ``E(x) = (E0 + a/b_c) exp(-b_c x) - a/b_c``. The
mean energy then obeys ``d<E>/dX = -(a + b <E>)`` exactly (as long as the muon lives).

References:
    D. Chirkin and W. Rhode, "Muon Monte Carlo: a high-precision tool for muon
    propagation through matter", hep-ph/0407075 (2004) (a, b for ice; v_cut scheme).
    D. E. Groom, N. V. Mokhov, S. I. Striganov, "Muon stopping power and range tables",
    Atomic Data and Nuclear Data Tables 78 (2001) 183 (b per process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ariasim.errors import ConfigError

__all__ = [
    "ICE_DENSITY",
    "PROCESSES",
    "EnergyLossModel",
    "Propagated",
    "cylinder_chord",
    "slant_length_m",
]

#: Density of glacial ice [g/cm^3] = metres water equivalent per metre.
ICE_DENSITY = 0.917
#: The stochastic processes, in the order of their ``process`` codes.
PROCESSES = ("bremsstrahlung", "pair", "photonuclear")
EARTH_RADIUS_M = 6.371e6


def _shape_integrals(v_cut: float) -> np.ndarray:
    """Per process: (∫_0^1 s, ∫_v_cut^1 s/v, ∫_0^v_cut s) with s = v dN/dv (unnormalised)."""
    vc = v_cut
    lv = -math.log(vc)
    brems = (
        1.0,
        (4 / 3) * (lv - (1 - vc)) + (1 - vc**2) / 2,
        (4 / 3) * (vc - vc**2 / 2) + vc**3 / 3,
    )
    rvc = math.sqrt(vc)
    pair = (4 / 3, 2 / rvc + 2 * rvc - 4, 2 * rvc - (2 / 3) * vc * rvc)
    photo = (2 / 3, lv - (1 - vc) + (1 - vc**2) / 4, vc - vc**2 / 2 + vc**3 / 6)
    return np.array([brems, pair, photo])


def shape(process: int, v: np.ndarray) -> np.ndarray:
    """Unnormalised ``v dN/dv`` of a process (index into :data:`PROCESSES`)."""
    v = np.asarray(v, dtype=float)
    if process == 0:
        return (4 / 3) * (1 - v) + v**2
    if process == 1:
        return v**-0.5 * (1 - v)
    return 1 - v + v**2 / 2


@dataclass(frozen=True)
class Propagated:
    """Result of :meth:`EnergyLossModel.propagate`.

    Arguments:
        energy_gev: Energy at the end (0 for a muon that stopped).
        distance_mwe: Distance travelled (the full distance unless it stopped).
        loss_muon: Index of the muon of each stochastic loss (only with ``record``).
        loss_x_mwe: Where along its path (from the start) each loss happened.
        loss_energy_gev: Energy of each loss.
        loss_process: Index into :data:`PROCESSES`.

    Example:
        >>> m = EnergyLossModel()
        >>> p = m.propagate(np.array([1e4]), np.array([100.0]), np.random.default_rng(0))
        >>> p.energy_gev.shape, bool(p.energy_gev[0] < 1e4)
        ((1,), True)
    """

    energy_gev: np.ndarray
    distance_mwe: np.ndarray
    loss_muon: np.ndarray
    loss_x_mwe: np.ndarray
    loss_energy_gev: np.ndarray
    loss_process: np.ndarray


@dataclass(frozen=True)
class EnergyLossModel:
    """Continuous + stochastic muon energy losses (see the module docstring).

    Arguments:
        a_gev_per_mwe: Ionisation loss a [GeV/mwe].
        b_brems: Bremsstrahlung part of b [1/mwe].
        b_pair: Pair-production part of b [1/mwe].
        b_photonuclear: Photonuclear part of b [1/mwe].
        v_cut: Relative energy cut between continuous and stochastic losses (0 < v_cut < 1).

    Example:
        >>> m = EnergyLossModel()
        >>> round(m.b, 6), round(m.b_continuous + m.b_stochastic, 6)
        (0.00036, 0.00036)
        >>> round(m.mean_energy(1e4, 1000.0), 1)  # (E0 + a/b) exp(-b X) - a/b
        6758.4
    """

    a_gev_per_mwe: float = 0.26
    b_brems: float = 1.2e-4
    b_pair: float = 1.9e-4
    b_photonuclear: float = 0.5e-4
    v_cut: float = 0.05

    def __post_init__(self) -> None:
        for name in ("a_gev_per_mwe", "b_brems", "b_pair", "b_photonuclear"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"must be > 0, got {getattr(self, name)!r}", parameter=name)
        if not (0.0 < float(self.v_cut) < 1.0):
            raise ConfigError(f"must be in (0, 1), got {self.v_cut!r}", parameter="v_cut")

    @property
    def b_process(self) -> np.ndarray:
        """b of each process in :data:`PROCESSES` [1/mwe]."""
        return np.array([self.b_brems, self.b_pair, self.b_photonuclear])

    @property
    def b(self) -> float:
        """Total radiative coefficient b [1/mwe]."""
        return float(self.b_process.sum())

    @property
    def b_continuous(self) -> float:
        """The part of b from losses below ``v_cut`` (treated as continuous)."""
        ints = _shape_integrals(self.v_cut)
        return float(np.sum(self.b_process * ints[:, 2] / ints[:, 0]))

    @property
    def b_stochastic(self) -> float:
        """The part of b from losses above ``v_cut``."""
        ints = _shape_integrals(self.v_cut)
        return float(np.sum(self.b_process * (1.0 - ints[:, 2] / ints[:, 0])))

    @property
    def rates_per_mwe(self) -> np.ndarray:
        """Rate of stochastic losses (v > v_cut) per process [1/mwe]."""
        ints = _shape_integrals(self.v_cut)
        return self.b_process * ints[:, 1] / ints[:, 0]

    def mean_energy(self, energy_gev: float, x_mwe: float) -> float:
        """Mean energy after ``x_mwe`` from ``dE/dX = -(a + b E)`` (no stopping)."""
        r = self.a_gev_per_mwe / self.b
        return (energy_gev + r) * math.exp(-self.b * x_mwe) - r

    def threshold_gev(self, x_mwe: np.ndarray) -> np.ndarray:
        """Smallest energy that can cross ``x_mwe``: the range of continuous losses only.

        No muon below it gets through (stochastic losses only shorten the range).
        """
        bc = self.b_continuous
        return (self.a_gev_per_mwe / bc) * np.expm1(bc * np.asarray(x_mwe, dtype=float))

    def sample_v(self, process: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Relative losses ``v`` in ``[v_cut, 1)`` for the given process indices.

        Rejection from ``1/v`` (bremsstrahlung, photonuclear) or ``v^-3/2`` (pair)
        envelopes, whose inverse CDFs are closed-form.
        """
        process = np.asarray(process, dtype=np.int64)
        out = np.empty(process.size)
        todo = np.arange(process.size)
        vc = self.v_cut
        while todo.size:
            p = process[todo]
            u = rng.random(todo.size)
            w = rng.random(todo.size)
            v = vc ** (1.0 - u)  # 1/v envelope on [vc, 1]
            # v^-3/2 envelope: CDF ∝ vc^-1/2 - v^-1/2
            vp = 1.0 / (vc**-0.5 - u * (vc**-0.5 - 1.0)) ** 2
            v = np.where(p == 1, vp, v)
            acc = np.where(p == 0, shape(0, v) / (4 / 3), np.where(p == 1, 1.0 - v, shape(2, v)))
            ok = w < acc
            out[todo[ok]] = v[ok]
            todo = todo[~ok]
        return np.minimum(out, 1.0 - 1e-12)

    def propagate(
        self,
        energy_gev: np.ndarray,
        distance_mwe: np.ndarray,
        rng: np.random.Generator,
        *,
        record: bool = False,
    ) -> Propagated:
        """Propagate muons over their distances (vectorised over muons).

        Arguments:
            energy_gev: Start energies [GeV].
            distance_mwe: Distance each muon should travel [mwe].
            rng: Random generator.
            record: Keep the list of stochastic losses.
        """
        e = np.array(energy_gev, dtype=float)
        dist = np.broadcast_to(np.asarray(distance_mwe, dtype=float), e.shape).copy()
        if e.ndim != 1 or np.any(~np.isfinite(e)) or np.any(e < 0):
            raise ConfigError("energies must be a finite 1-D array >= 0", parameter="energy_gev")
        a, bc = self.a_gev_per_mwe, self.b_continuous
        rates = self.rates_per_mwe
        lam = float(rates.sum())
        pcum = np.cumsum(rates) / lam
        x = np.zeros_like(e)
        lm: list[np.ndarray] = []
        lx: list[np.ndarray] = []
        le: list[np.ndarray] = []
        lp: list[np.ndarray] = []
        active = np.flatnonzero((e > 0) & (dist > 0))
        while active.size:
            ea, xa = e[active], x[active]
            step = rng.exponential(1.0 / lam, active.size)
            rest = dist[active] - xa
            x_stop = np.log1p(bc * ea / a) / bc
            s = np.minimum(np.minimum(step, rest), x_stop)
            stopped = x_stop <= np.minimum(step, rest)
            arrived = ~stopped & (rest <= step)
            e_new = (ea + a / bc) * np.exp(-bc * s) - a / bc
            e_new = np.where(stopped, 0.0, np.maximum(e_new, 0.0))
            xa = xa + s
            inter = ~stopped & ~arrived
            if np.any(inter):
                idx = np.flatnonzero(inter)
                proc = np.searchsorted(pcum, rng.random(idx.size), side="right")
                proc = np.minimum(proc, len(PROCESSES) - 1)
                v = self.sample_v(proc, rng)
                loss = v * e_new[idx]
                e_new[idx] -= loss
                if record:
                    lm.append(active[idx])
                    lx.append(xa[idx])
                    le.append(loss)
                    lp.append(proc)
            e[active] = e_new
            x[active] = xa
            active = active[inter & (e_new > 0)]

        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        order = np.lexsort((cat(lx, float), cat(lm, np.int64))) if lm else np.zeros(0, int)
        return Propagated(
            energy_gev=e,
            distance_mwe=x,
            loss_muon=cat(lm, np.int64)[order],
            loss_x_mwe=cat(lx, float)[order],
            loss_energy_gev=cat(le, float)[order],
            loss_process=cat(lp, np.int64)[order],
        )

    def describe(self) -> dict:
        """A JSON-able summary for provenance."""
        return {
            "a_gev_per_mwe": self.a_gev_per_mwe,
            "b_brems": self.b_brems,
            "b_pair": self.b_pair,
            "b_photonuclear": self.b_photonuclear,
            "v_cut": self.v_cut,
        }


def slant_length_m(depth_m: np.ndarray, cos_zenith: np.ndarray) -> np.ndarray:
    """Path length [m] from the surface of a spherical Earth down to depth ``depth_m``.

    ``L = sqrt((R - h)² cos²θ + 2 R h - h²) - (R - h) cos θ`` (equals ``h`` for a vertical
    path and stays finite at the horizon).

    Example:
        >>> round(float(slant_length_m(2000.0, 1.0)), 6), round(float(slant_length_m(2000.0, 0.5)))
        (2000.0, 3998)
    """
    h = np.asarray(depth_m, dtype=float)
    c = np.asarray(cos_zenith, dtype=float)
    r = EARTH_RADIUS_M
    return np.sqrt((r - h) ** 2 * c * c + 2 * r * h - h * h) - (r - h) * c


def cylinder_chord(
    p: np.ndarray, d: np.ndarray, radius_m: float, half_height_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Line parameters ``(s_in, s_out)`` where ``p + s d`` crosses a vertical cylinder.

    The cylinder is centred on the origin (axis z). ``s_in > s_out`` (NaN-free) means the
    line misses it.

    Arguments:
        p: (n, 3) points on the lines.
        d: (n, 3) unit directions.
        radius_m: Cylinder radius.
        half_height_m: Half its height.

    Example:
        >>> s0, s1 = cylinder_chord(np.array([[0.0, 0, 0]]), np.array([[0.0, 0, -1]]), 10.0, 5.0)
        >>> s0.tolist(), s1.tolist()
        ([-5.0], [5.0])
    """
    p = np.atleast_2d(p)
    d = np.atleast_2d(d)
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = p[:, 0] * d[:, 0] + p[:, 1] * d[:, 1]
    c = p[:, 0] ** 2 + p[:, 1] ** 2 - radius_m**2
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        r_in = np.where(a > 0, (-b - sq) / a, -np.inf)
        r_out = np.where(a > 0, (-b + sq) / a, np.inf)
        vertical_inside = (a <= 0) & (c <= 0)
        r_in = np.where((a <= 0) & ~vertical_inside, np.inf, r_in)
        r_out = np.where((a <= 0) & ~vertical_inside, -np.inf, r_out)
        r_in = np.where((a > 0) & (disc < 0), np.inf, r_in)
        r_out = np.where((a > 0) & (disc < 0), -np.inf, r_out)
        z1 = np.where(d[:, 2] != 0, (-half_height_m - p[:, 2]) / d[:, 2], -np.inf)
        z2 = np.where(d[:, 2] != 0, (half_height_m - p[:, 2]) / d[:, 2], np.inf)
        flat_out = (d[:, 2] == 0) & (np.abs(p[:, 2]) > half_height_m)
    z_in = np.where(flat_out, np.inf, np.minimum(z1, z2))
    z_out = np.where(flat_out, -np.inf, np.maximum(z1, z2))
    return np.maximum(r_in, z_in), np.minimum(r_out, z_out)
