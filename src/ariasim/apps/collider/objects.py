"""The object types of the detector response and the rows each learns from.

:data:`OBJECTS` (muon, electron, photon, charged hadron, neutral hadron) with their
:class:`ObjectSpec`, :func:`prepare_object` (learning targets per truth particle),
:func:`select_events` (the even/odd train/held-out split) and :func:`robust_sigma`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ariasim.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "OBJECTS",
    "REQUIRED_COLUMNS",
    "ObjectSpec",
    "prepare_object",
    "robust_sigma",
    "select_events",
]

#: Columns of a full-simulation table that the learning needs.
REQUIRED_COLUMNS = (
    "pdg",
    "truth_pt_gev",
    "truth_eta",
    "truth_phi",
    "truth_e_gev",
    "object_type",
    "reco_pt_gev",
    "reco_eta",
    "reco_phi",
    "reco_e_gev",
)


@dataclass(frozen=True)
class ObjectSpec:
    """How an object type is modelled.

    Arguments:
        kind: ``"track"`` or ``"calo"``.
        pdg: Absolute PDG codes of its truth particles.
        mass_gev: Mass for the four-momentum.

    Example:
        >>> OBJECTS["electron"].x, OBJECTS["muon"].x
        ('energy', 'pt')
    """

    kind: str
    pdg: tuple[int, ...]
    mass_gev: float

    @property
    def x(self) -> str:
        """The truth variable of the formulas: ``"pt"`` for tracks, ``"energy"`` for
        calorimeter objects (their thresholds and resolutions are in energy)."""
        return "pt" if self.kind == "track" else "energy"


OBJECTS: dict[str, ObjectSpec] = {
    "muon": ObjectSpec("track", (13,), 0.1056583755),
    "electron": ObjectSpec("calo", (11,), 0.51099895e-3),
    "photon": ObjectSpec("calo", (22,), 0.0),
    "charged_hadron": ObjectSpec("track", (211, 321, 2212), 0.13957039),
    "neutral_hadron": ObjectSpec("calo", (2112, 130), 0.0),
}


def prepare_object(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of ``table`` whose truth belongs to object ``name``, with the learning targets.

    Returns columns pt, eta, phi, energy (truth), passed (reconstructed as ``name``), ratio
    (reco/truth pT for tracks, E for calorimeter objects; NaN if not passed), deta, dphi.

    The ratio is of the quantity the object measures and the card smears (the table
    "Reported kinematics" of :mod:`ariasim.simulators.collider.reconstruction`): the
    track pT of muons and charged hadrons (``MomentumSmearing``), the calorimeter energy
    of electrons (cluster + brems), photons and neutral hadrons (``EnergySmearing``),
    whose pT is sqrt(E^2 - m^2) / cosh(eta) in the full simulation, in Delphes and in
    :mod:`ariasim.apps.collider.fastsim` alike.
    """
    import pandas as pd

    spec = OBJECTS[name]
    sel = np.isin(np.abs(table["pdg"].to_numpy()), spec.pdg)
    t = table.loc[sel]
    passed = (t["object_type"].astype(str) == name).to_numpy().copy()
    reco, truth = (
        ("reco_pt_gev", "truth_pt_gev") if spec.kind == "track" else ("reco_e_gev", "truth_e_gev")
    )
    ratio = np.where(passed, t[reco].to_numpy(float) / t[truth].to_numpy(float), np.nan)
    passed &= np.isfinite(ratio) & (np.nan_to_num(ratio) > 0)
    dphi = np.angle(np.exp(1j * (t["reco_phi"].to_numpy(float) - t["truth_phi"].to_numpy(float))))
    return pd.DataFrame(
        {
            "pt": t["truth_pt_gev"].to_numpy(float),
            "eta": t["truth_eta"].to_numpy(float),
            "phi": t["truth_phi"].to_numpy(float),
            "energy": t["truth_e_gev"].to_numpy(float),
            "passed": passed,
            "ratio": np.where(passed, ratio, np.nan),
            "deta": np.where(
                passed, t["reco_eta"].to_numpy(float) - t["truth_eta"].to_numpy(float), np.nan
            ),
            "dphi": np.where(passed, dphi, np.nan),
        }
    )


def robust_sigma(v: np.ndarray) -> float:
    """1.4826 x the median absolute deviation of the finite values (0 for fewer than two)."""
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def select_events(table: Any, events: str = "all", *, source: Any = None) -> Any:
    """The documented train/held-out split: rows of events with even or odd ``event_id``.

    ``ariasim fit response --events even`` learns on the even events and
    ``ariasim fastsim --compare --events odd`` compares on the odd ones, so the comparison
    uses particles the fit never saw (the full simulation draws every event independently).

    Arguments:
        table: A full-simulation (or particle) table with an ``event_id`` column: a
            DataFrame, or a mapping of column name -> NumPy array (the same rows kept).
        events: ``"all"``, ``"even"`` or ``"odd"``.
        source: File name for error messages.

    Example:
        >>> select_events({"event_id": np.array([3, 4, 6])}, "even")["event_id"].tolist()
        [4, 6]
    """
    if events == "all":
        return table
    if events not in ("even", "odd"):
        raise ConfigError(
            f"events must be 'all', 'even' or 'odd', got {events!r}", parameter="events"
        )
    columns = isinstance(table, Mapping)
    if "event_id" not in (table if columns else table.columns):
        raise InputError(
            "an even/odd event split needs an event_id column", path=source, column="event_id"
        )
    parity = np.asarray(table["event_id"]).astype(np.int64) % 2
    keep = parity == (0 if events == "even" else 1)
    if columns:
        return {k: np.asarray(v)[keep] for k, v in table.items()}
    return table.loc[keep].reset_index(drop=True)
