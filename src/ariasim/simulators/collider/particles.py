"""Particle species and the particle gun.

The species table holds the PDG Monte Carlo numbering, mass and charge of the particles the
collider simulation knows; the particle gun draws single-particle events with pT flat or
log-flat and eta, phi flat in configurable ranges.

References:
    Particle Data Group, R. L. Workman et al., Prog. Theor. Exp. Phys. 2022, 083C01
    (masses; "Monte Carlo particle numbering scheme").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.utils import SeedLike, as_generator

__all__ = [
    "GUN_SPECIES",
    "SPECIES",
    "ParticleGun",
    "Species",
    "charge_of",
    "is_hadron",
    "is_invisible",
    "mass_of",
    "particle_table",
]


@dataclass(frozen=True)
class Species:
    """One particle species.

    Arguments:
        name: Short name used on the command line (``e-``, ``pi+``...).
        pdg: PDG Monte Carlo number.
        mass_gev: Mass [GeV].
        charge: Electric charge [e].

    Example:
        >>> from ariasim.simulators.collider.particles import SPECIES
        >>> pion = SPECIES["pi+"]
        >>> pion.pdg, pion.charge, pion.mass_gev
        (211, 1, 0.13957039)
    """

    name: str
    pdg: int
    mass_gev: float
    charge: int


_TABLE = [
    Species("e-", 11, 0.51099895e-3, -1),
    Species("e+", -11, 0.51099895e-3, 1),
    Species("mu-", 13, 0.1056583755, -1),
    Species("mu+", -13, 0.1056583755, 1),
    Species("gamma", 22, 0.0, 0),
    Species("pi+", 211, 0.13957039, 1),
    Species("pi-", -211, 0.13957039, -1),
    Species("K+", 321, 0.493677, 1),
    Species("K-", -321, 0.493677, -1),
    Species("p", 2212, 0.93827208816, 1),
    Species("pbar", -2212, 0.93827208816, -1),
    Species("n", 2112, 0.93956542052, 0),
    Species("nbar", -2112, 0.93956542052, 0),
    Species("K0L", 130, 0.497611, 0),
    Species("K0S", 310, 0.497611, 0),
    Species("pi0", 111, 0.1349768, 0),
    Species("Lambda", 3122, 1.115683, 0),
    Species("Lambdabar", -3122, 1.115683, 0),
    Species("Sigma+", 3222, 1.18937, 1),
    Species("Sigma-", 3112, 1.197449, -1),
    Species("Xi-", 3312, 1.32171, -1),
    Species("Omega-", 3334, 1.67245, -1),
    Species("nu_e", 12, 0.0, 0),
    Species("nu_ebar", -12, 0.0, 0),
    Species("nu_mu", 14, 0.0, 0),
    Species("nu_mubar", -14, 0.0, 0),
    Species("nu_tau", 16, 0.0, 0),
    Species("nu_taubar", -16, 0.0, 0),
    Species("tau-", 15, 1.77686, -1),
    Species("tau+", -15, 1.77686, 1),
]

#: Species by name.
SPECIES: dict[str, Species] = {s.name: s for s in _TABLE}
_BY_PDG: dict[int, Species] = {s.pdg: s for s in _TABLE}
#: Species the particle gun offers (issue 4).
GUN_SPECIES: tuple[str, ...] = (
    "e-",
    "e+",
    "mu-",
    "mu+",
    "gamma",
    "pi+",
    "pi-",
    "K+",
    "K-",
    "p",
    "pbar",
    "n",
    "K0L",
)
_INVISIBLE = {12, 14, 16, 1000022}


def charge_of(pdg: np.ndarray) -> np.ndarray:
    """Electric charge [e] for PDG numbers; unknown ids with |pdg| > 100 are treated as neutral.

    Arguments:
        pdg: Integer array of PDG numbers.
    """
    pdg = np.asarray(pdg, dtype=np.int64)
    out = np.zeros(pdg.shape, dtype=np.int64)
    for code, sp in _BY_PDG.items():
        out[pdg == code] = sp.charge
    return out


def mass_of(pdg: np.ndarray) -> np.ndarray:
    """Mass [GeV] for PDG numbers (NaN where unknown).

    Arguments:
        pdg: Integer array of PDG numbers.
    """
    pdg = np.asarray(pdg, dtype=np.int64)
    out = np.full(pdg.shape, np.nan)
    for code, sp in _BY_PDG.items():
        out[pdg == code] = sp.mass_gev
    return out


def is_invisible(pdg: np.ndarray) -> np.ndarray:
    """True for neutrinos (and the neutralino), which leave no trace in the detector."""
    return np.isin(np.abs(np.asarray(pdg, dtype=np.int64)), list(_INVISIBLE))


def is_hadron(pdg: np.ndarray) -> np.ndarray:
    """True for hadrons (|pdg| > 100 in the PDG numbering), which interact strongly."""
    return np.abs(np.asarray(pdg, dtype=np.int64)) > 100


def particle_table(
    event_id: np.ndarray,
    pdg: np.ndarray,
    px_gev: np.ndarray,
    py_gev: np.ndarray,
    pz_gev: np.ndarray,
    e_gev: np.ndarray | None = None,
    mass_gev: np.ndarray | None = None,
    vx_mm: np.ndarray | None = None,
    vy_mm: np.ndarray | None = None,
    vz_mm: np.ndarray | None = None,
    charge: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build the standard truth-particle table that :func:`simulate` consumes.

    Columns: event_id, particle_id (index within the event), pdg, charge, mass_gev, px_gev,
    py_gev, pz_gev, e_gev, pt_gev, eta, phi, vx_mm, vy_mm, vz_mm.

    Arguments:
        event_id: Event number of each particle.
        pdg: PDG number of each particle.
        px_gev, py_gev, pz_gev: Momentum components [GeV].
        e_gev: Energy [GeV]; computed from the mass if omitted.
        mass_gev: Mass [GeV]; from the species table (or from E and p) if omitted.
        vx_mm, vy_mm, vz_mm: Production vertex [mm]; origin if omitted.
        charge: Charge [e]; from the species table if omitted.
    """
    event_id = np.asarray(event_id, dtype=np.int64)
    n = event_id.size
    pdg = np.asarray(pdg, dtype=np.int64)
    px, py, pz = (np.asarray(a, dtype=float) for a in (px_gev, py_gev, pz_gev))
    p2 = px**2 + py**2 + pz**2
    if mass_gev is None:
        mass = mass_of(pdg)
        if e_gev is not None:
            e = np.asarray(e_gev, dtype=float)
            m_from_e = np.sqrt(np.clip(e**2 - p2, 0.0, None))
            mass = np.where(np.isfinite(mass), mass, m_from_e)
        mass = np.where(np.isfinite(mass), mass, 0.0)
    else:
        mass = np.asarray(mass_gev, dtype=float)
    e = np.sqrt(p2 + mass**2) if e_gev is None else np.asarray(e_gev, dtype=float)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.sign(pz) * 1e3)
    zeros = np.zeros(n)
    return pd.DataFrame(
        {
            "event_id": event_id,
            "particle_id": _index_within_event(event_id),
            "pdg": pdg,
            "charge": charge_of(pdg) if charge is None else np.asarray(charge, dtype=np.int64),
            "mass_gev": mass,
            "px_gev": px,
            "py_gev": py,
            "pz_gev": pz,
            "e_gev": e,
            "pt_gev": pt,
            "eta": eta,
            "phi": np.arctan2(py, px),
            "vx_mm": zeros if vx_mm is None else np.asarray(vx_mm, dtype=float),
            "vy_mm": zeros if vy_mm is None else np.asarray(vy_mm, dtype=float),
            "vz_mm": zeros if vz_mm is None else np.asarray(vz_mm, dtype=float),
        }
    )


def _index_within_event(event_id: np.ndarray) -> np.ndarray:
    if event_id.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(event_id, kind="stable")
    sorted_ids = event_id[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
    counts = np.diff(np.r_[starts, sorted_ids.size])
    idx_sorted = np.arange(sorted_ids.size) - np.repeat(starts, counts)
    out = np.empty_like(idx_sorted)
    out[order] = idx_sorted
    return out


@dataclass
class ParticleGun:
    """Single-particle gun: one particle per event.

    Arguments:
        species: Species names drawn with equal probability (see :data:`GUN_SPECIES`).
        pt_min_gev, pt_max_gev: Transverse-momentum range [GeV].
        log_pt: Draw pT log-flat (flat in ln pT) instead of flat.
        eta_min, eta_max: Pseudorapidity range (flat).
        phi_min, phi_max: Azimuth range [rad] (flat).
        vz_sigma_mm: Gaussian spread of the vertex along the beam [mm] (0: at the origin).

    Example:
        >>> from ariasim.simulators.collider import ParticleGun
        >>> gun = ParticleGun(["e-", "gamma"], pt_min_gev=5.0, pt_max_gev=50.0, log_pt=True)
        >>> truth = gun.generate(1000, seed=1)
        >>> len(truth), sorted(set(truth["pdg"]))
        (1000, [11, 22])
        >>> bool(truth["pt_gev"].between(5.0, 50.0).all())
        True
    """

    species: list[str] = field(default_factory=lambda: ["mu-"])
    pt_min_gev: float = 1.0
    pt_max_gev: float = 100.0
    log_pt: bool = False
    eta_min: float = -2.5
    eta_max: float = 2.5
    phi_min: float = -np.pi
    phi_max: float = np.pi
    vz_sigma_mm: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.species, str):
            self.species = [self.species]
        if not self.species:
            raise ConfigError("at least one species is needed", parameter="species")
        for name in self.species:
            if name not in SPECIES or name not in GUN_SPECIES:
                raise ConfigError(
                    f"unknown species {name!r}; choose from {', '.join(GUN_SPECIES)}",
                    parameter="species",
                )
        for name in (
            "pt_min_gev",
            "pt_max_gev",
            "eta_max",
            "eta_min",
            "phi_min",
            "phi_max",
            "vz_sigma_mm",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not np.isfinite(value)
            ):
                raise ConfigError(f"must be a finite number, got {value!r}", parameter=name)
        for name in ("pt_min_gev", "pt_max_gev"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"must be > 0 GeV, got {getattr(self, name)!r}", parameter=name)
        if not self.pt_min_gev <= self.pt_max_gev:
            raise ConfigError(
                f"need pt_min <= pt_max, got {self.pt_min_gev}, {self.pt_max_gev}",
                parameter="pt_min_gev",
            )
        if not self.eta_min <= self.eta_max:
            raise ConfigError(
                f"need eta_min <= eta_max, got {self.eta_min}, {self.eta_max}", parameter="eta_min"
            )
        if not self.phi_min <= self.phi_max:
            raise ConfigError(
                f"need phi_min <= phi_max, got {self.phi_min}, {self.phi_max}", parameter="phi_min"
            )
        if self.phi_max - self.phi_min > 2 * np.pi + 1e-9:
            raise ConfigError(
                f"the azimuth range {self.phi_min}..{self.phi_max} is wider than 2 pi",
                parameter="phi_max",
            )
        if self.vz_sigma_mm < 0:
            raise ConfigError("must be >= 0", parameter="vz_sigma_mm")

    def to_dict(self) -> dict[str, Any]:
        """Configuration as a plain dictionary (for provenance)."""
        return asdict(self)

    def generate(self, n: int, seed: SeedLike = None, *, first_event: int = 0) -> pd.DataFrame:
        """Draw ``n`` single-particle events as a truth-particle table (see :func:`particle_table`).

        Arguments:
            n: Number of particles (= events).
            seed: Seed or generator.
            first_event: Event number of the first particle.
        """
        if n < 0:
            raise ConfigError("must be >= 0", parameter="n")
        rng = as_generator(seed)
        names = np.asarray(self.species)
        which = rng.integers(0, len(names), size=n) if len(names) > 1 else np.zeros(n, dtype=int)
        pdg = np.array([SPECIES[s].pdg for s in names], dtype=np.int64)[which]
        mass = np.array([SPECIES[s].mass_gev for s in names])[which]
        u = rng.random(n)
        if self.log_pt:
            pt = self.pt_min_gev * (self.pt_max_gev / self.pt_min_gev) ** u
        else:
            pt = self.pt_min_gev + (self.pt_max_gev - self.pt_min_gev) * u
        eta = rng.uniform(self.eta_min, self.eta_max, n)
        phi = rng.uniform(self.phi_min, self.phi_max, n)
        vz = rng.normal(0.0, self.vz_sigma_mm, n) if self.vz_sigma_mm > 0 else np.zeros(n)
        return particle_table(
            first_event + np.arange(n),
            pdg,
            pt * np.cos(phi),
            pt * np.sin(phi),
            pt * np.sinh(eta),
            mass_gev=mass,
            vz_mm=vz,
        )
