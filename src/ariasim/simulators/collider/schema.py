"""The schemas of the collider simulation: truth particles in, one row per particle out.

:data:`PARTICLE_SCHEMA` lists the columns of a truth-particle table, the input of
``ariasim simulate collider --input`` and ``ariasim fastsim --input`` (what
``ariasim simulate collider --truth-only`` writes; read and checked by
:func:`~ariasim.simulators.collider.inputs.read_particles`).

:data:`OUTPUT_SCHEMA` lists every column :func:`~ariasim.simulators.collider.simulate`
writes, in order, with its dtype, unit and meaning; :data:`OUTPUT_COLUMNS` is the same as a
``{name: dtype}`` dict (what the fast simulation of :mod:`ariasim.apps.collider.fastsim`
reproduces). Units: momenta and energies in GeV, lengths in mm, angles in rad, eta and
counts dimensionless; ``"-"`` marks a dimensionless column. A quantity that was not
measured is NaN (floats), -1 (layer indices), 0 (``track_charge``, ``track_ndof``, station
counts) or False (flags).

References:
    See :mod:`ariasim.simulators.collider.simulate` for how each column is produced.

Arguments:
    See :class:`OutputColumn` and :func:`check_output`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "OUTPUT_COLUMNS",
    "OUTPUT_SCHEMA",
    "PARTICLE_SCHEMA",
    "OutputColumn",
    "ParticleColumn",
    "check_output",
    "empty_output",
]


@dataclass(frozen=True)
class OutputColumn:
    """One column of the collider simulation output.

    Arguments:
        name: Column name.
        dtype: pandas dtype name (``"int64"``, ``"float64"``, ``"bool"`` or ``"str"``).
        unit: Unit (``"GeV"``, ``"mm"``, ``"rad"``; ``"-"`` if dimensionless).
        description: One-line meaning.

    Example:
        >>> from ariasim.simulators.collider import OUTPUT_SCHEMA
        >>> col = OUTPUT_SCHEMA[4]
        >>> col.name, col.dtype, col.unit
        ('truth_pt_gev', 'float64', 'GeV')
    """

    name: str
    dtype: str
    unit: str
    description: str


def _c(name: str, dtype: str, unit: str, description: str) -> OutputColumn:
    return OutputColumn(name, dtype, unit, description)


#: Every output column of :func:`~ariasim.simulators.collider.simulate`, in order.
OUTPUT_SCHEMA: tuple[OutputColumn, ...] = (
    # ---- truth
    _c("event_id", "int64", "-", "event number of the truth particle"),
    _c("particle_id", "int64", "-", "particle number in the input (row number if absent)"),
    _c("pdg", "int64", "-", "PDG code of the truth particle"),
    _c("truth_charge", "int64", "e", "true charge"),
    _c("truth_pt_gev", "float64", "GeV", "true transverse momentum"),
    _c("truth_eta", "float64", "-", "true pseudorapidity"),
    _c("truth_phi", "float64", "rad", "true azimuth"),
    _c("truth_e_gev", "float64", "GeV", "true energy"),
    _c("truth_vz_mm", "float64", "mm", "z of the production vertex"),
    # ---- reconstructed object matched to the truth particle
    _c("object_type", "str", "-", "electron, photon, muon, charged_hadron, neutral_hadron or none"),
    _c(
        "reco_pt_gev",
        "float64",
        "GeV",
        "reconstructed transverse momentum: the track's for muons and charged hadrons, "
        "sqrt(E^2 - m^2) / cosh(reco_eta) for electrons, photons, neutral hadrons (NaN if none)",
    ),
    _c("reco_eta", "float64", "-", "reconstructed pseudorapidity (NaN if none)"),
    _c("reco_phi", "float64", "rad", "reconstructed azimuth (NaN if none)"),
    _c(
        "reco_e_gev",
        "float64",
        "GeV",
        "reconstructed energy: the calorimeter's (cluster + brems for electrons) for "
        "electrons, photons, neutral hadrons; sqrt(p^2 + m^2) from the track for muons "
        "and charged hadrons (pion mass) (NaN if none)",
    ),
    _c(
        "cluster_energy_gev",
        "float64",
        "GeV",
        "energy of the object's calorimeter cluster (plus brems clusters for electrons)",
    ),
    _c("ecal_energy_gev", "float64", "GeV", "ECAL part of the cluster energy"),
    _c("hcal_energy_gev", "float64", "GeV", "HCAL part of the cluster energy"),
    _c("e_over_p", "float64", "-", "cluster (+ brems) energy over track momentum"),
    _c("hcal_over_ecal", "float64", "-", "H/E of the cluster"),
    _c("sigma_ietaieta", "float64", "-", "shower width in eta, in ECAL cells"),
    _c("converted", "bool", "-", "photon with a non-prompt (conversion) track pointing to it"),
    _c("n_muon_stations", "int64", "-", "muon stations with a hit compatible with the object"),
    _c("found", "bool", "-", "an object was matched to the truth particle"),
    # ---- the truth particle's own fitted track
    _c("track_pt_gev", "float64", "GeV", "fitted transverse momentum (NaN if no track)"),
    _c("track_eta", "float64", "-", "fitted pseudorapidity"),
    _c("track_phi", "float64", "rad", "fitted azimuth at the perigee"),
    _c("track_d0_mm", "float64", "mm", "signed transverse impact parameter"),
    _c("track_z0_mm", "float64", "mm", "longitudinal impact parameter"),
    _c("track_charge", "int64", "e", "fitted charge (0 if no track)"),
    _c("track_sigma_pt_gev", "float64", "GeV", "fit error of track_pt_gev"),
    _c("track_sigma_eta", "float64", "-", "fit error of track_eta"),
    _c("track_sigma_phi", "float64", "rad", "fit error of track_phi"),
    _c("track_sigma_d0_mm", "float64", "mm", "fit error of track_d0_mm"),
    _c("track_sigma_z0_mm", "float64", "mm", "fit error of track_z0_mm"),
    _c("track_chi2", "float64", "-", "chi2 of the track fit"),
    _c("track_ndof", "int64", "-", "degrees of freedom of the fit (0 if no track)"),
    _c("track_missing_inner", "bool", "-", "no hit in the first n_inner_layers layers"),
    _c("track_found", "bool", "-", "the particle has a fitted track"),
    _c("track_n_muon_stations", "int64", "-", "muon stations compatible with the own track"),
    _c("n_hits", "int64", "-", "tracker hits of the truth particle"),
    # ---- simulation truth
    _c(
        "interacted_layer",
        "int64",
        "-",
        "material surface of a nuclear interaction in the tracker (0 beam pipe, -1 none)",
    ),
    _c(
        "converted_layer",
        "int64",
        "-",
        "material surface of a photon conversion (0 beam pipe, -1 none)",
    ),
    _c("brem_fraction", "float64", "-", "energy radiated in the tracker over the initial energy"),
    _c("reached_calo", "bool", "-", "the particle reached the calorimeter face"),
    _c(
        "e_true_ecal_gev", "float64", "GeV", "true ECAL deposit of the particle and its secondaries"
    ),
    _c(
        "e_true_hcal_gev", "float64", "GeV", "true HCAL deposit of the particle and its secondaries"
    ),
    _c("e_leak_gev", "float64", "GeV", "true energy leaking out of the calorimeters"),
)

#: ``{name: dtype}`` of :data:`OUTPUT_SCHEMA`, in order.
OUTPUT_COLUMNS: dict[str, str] = {c.name: c.dtype for c in OUTPUT_SCHEMA}


def check_output(table: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming the first column that breaks :data:`OUTPUT_SCHEMA`.

    Arguments:
        table: A collider simulation output table.
    """
    names = list(table.columns)
    expected = list(OUTPUT_COLUMNS)
    if names != expected:
        missing = [c for c in expected if c not in names]
        extra = [c for c in names if c not in OUTPUT_COLUMNS]
        raise ValueError(
            f"collider output columns differ from OUTPUT_SCHEMA: missing {missing}, "
            f"unexpected {extra}" + ("" if missing or extra else ", order differs")
        )
    for col, dtype in OUTPUT_COLUMNS.items():
        if str(table[col].dtype) != dtype:
            raise ValueError(
                f"collider output column {col!r} has dtype {table[col].dtype}, "
                f"the schema says {dtype}"
            )


def empty_output() -> pd.DataFrame:
    """A table with no rows and the columns and dtypes of :data:`OUTPUT_SCHEMA`."""
    import pandas as pd

    return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in OUTPUT_SCHEMA})


@dataclass(frozen=True)
class ParticleColumn:
    """One column of a truth-particle table (the input of the simulations).

    Arguments:
        name: Column name.
        dtype: Kind of values (``"int64"`` whole numbers, ``"float64"`` finite numbers).
        unit: Unit (``"GeV"``, ``"mm"``, ``"rad"``, ``"e"``; ``"-"`` if dimensionless).
        required: ``"yes"``, ``"no"``, or the alternative it belongs to (``"p3"``: the
            momentum as px, py, pz; ``"pt-eta-phi"``: as pT, eta, phi; one of the two).
        default: What is used when the column is absent.
        description: One-line meaning.

    Example:
        >>> from ariasim.simulators.collider import PARTICLE_SCHEMA
        >>> [c.name for c in PARTICLE_SCHEMA if c.required == "yes"]
        ['event_id', 'pdg']
    """

    name: str
    dtype: str
    unit: str
    required: str
    default: str
    description: str


#: Columns of a truth-particle table. Needed: ``event_id``, ``pdg`` and the momentum, either as
#: ``px_gev, py_gev, pz_gev`` or (if those are absent) as ``pt_gev, eta, phi``; every other
#: column is optional. Rows of one event must be contiguous. Other columns are ignored.
PARTICLE_SCHEMA: tuple[ParticleColumn, ...] = (
    ParticleColumn("event_id", "int64", "-", "yes", "-", "event number"),
    ParticleColumn("particle_id", "int64", "-", "no", "index within the event", "particle number"),
    ParticleColumn("pdg", "int64", "-", "yes", "-", "PDG code (11 e-, 13 mu-, 22, 211, ...)"),
    ParticleColumn("px_gev", "float64", "GeV", "p3", "-", "momentum x"),
    ParticleColumn("py_gev", "float64", "GeV", "p3", "-", "momentum y"),
    ParticleColumn("pz_gev", "float64", "GeV", "p3", "-", "momentum z (along the beam)"),
    ParticleColumn("pt_gev", "float64", "GeV", "pt-eta-phi", "-", "transverse momentum, > 0"),
    ParticleColumn("eta", "float64", "-", "pt-eta-phi", "-", "pseudorapidity"),
    ParticleColumn("phi", "float64", "rad", "pt-eta-phi", "-", "azimuth"),
    ParticleColumn(
        "mass_gev", "float64", "GeV", "no", "the species' mass (else from e_gev)", "mass"
    ),
    ParticleColumn("e_gev", "float64", "GeV", "no", "sqrt(p^2 + m^2)", "energy"),
    ParticleColumn("charge", "int64", "e", "no", "the species' charge", "electric charge"),
    ParticleColumn("vx_mm", "float64", "mm", "no", "0", "production vertex x"),
    ParticleColumn("vy_mm", "float64", "mm", "no", "0", "production vertex y"),
    ParticleColumn("vz_mm", "float64", "mm", "no", "0", "production vertex z"),
)
