"""The learned detector response: per object type, efficiency, scale and resolution formulas.

A :class:`ResponseModel` is what ``ariasim fit response`` writes (JSON), what
``ariasim export delphes`` turns into a card and what ``ariasim fastsim`` applies. Each
:class:`ObjectResponse` holds three quantities, each a list of :class:`Region` (a range of
|eta| with one :class:`~ariasim.surrogates.formula.Formula` in the Delphes variables
``pt``, ``eta``, ``energy``):

* ``efficiency``: probability that a truth particle of this type is reconstructed and
  identified as this object type (Delphes ``Efficiency`` module), a function of truth pt, eta;
* ``scale``: mean response reco/truth (Delphes ``EnergyScale`` module, applied to the whole
  four-momentum);
* ``resolution``: for ``kind == "track"`` the *relative* sigma(pT)/pT of Delphes'
  log-normal ``MomentumSmearing`` (function of pt, eta); for ``kind == "calo"`` the
  *absolute* sigma(E) in GeV of Delphes' Gaussian ``EnergySmearing`` (function of eta and
  energy only).

Plus constant angular resolutions ``sigma_eta`` and ``sigma_phi`` (Delphes
``AngularSmearing``). Regions of a quantity must be disjoint and cover [0, eta_max]
(checked on construction).

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346 (module
    semantics: Efficiency, MomentumSmearing, EnergySmearing, EnergyScale, AngularSmearing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula
from ariasim.utils import read_json, write_json

__all__ = ["KINDS", "ObjectResponse", "Region", "ResponseModel", "check_regions"]

_SCHEMA = "ariasim.apps.collider/1"
KINDS = ("track", "calo")
_ALLOWED = {"efficiency": {"pt", "eta", "energy"}, "scale": {"pt", "eta", "energy"},
            "resolution_track": {"pt", "eta"}, "resolution_calo": {"eta", "energy"}}


@dataclass(frozen=True)
class Region:
    """One |eta| range ``(eta_low, eta_high]`` (the first one closed at 0) and its formula.

    Arguments:
        eta_low: Lower |eta| edge.
        eta_high: Upper |eta| edge.
        formula: Formula in (a subset of) the Delphes variables pt, eta, energy.
    """

    eta_low: float
    eta_high: float
    formula: Formula

    def to_dict(self) -> dict[str, Any]:
        return {"eta_low": self.eta_low, "eta_high": self.eta_high,
                "formula": self.formula.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: Any = None) -> Region:
        try:
            return cls(float(d["eta_low"]), float(d["eta_high"]),
                       Formula.from_dict(d["formula"], source=source))
        except KeyError as exc:
            raise InputError(f"region lacks key {exc}", path=source) from exc


def check_regions(edges: Sequence[tuple[float, float]], eta_max: float, *,
                  what: str = "regions") -> None:
    """Raise unless the |eta| ranges are disjoint, ordered and cover ``[0, eta_max]`` exactly.

    Hand-made cards have shipped with overlapping bins (which *add* in Delphes' sum of
    ``(condition) * (value)`` terms) and gaps (which evaluate to 0).
    """
    if not edges:
        raise ConfigError("no eta regions", parameter=what)
    lo0 = edges[0][0]
    if lo0 != 0.0:
        raise ConfigError(f"first |eta| region starts at {lo0}, not 0 (gap)", parameter=what)
    for k, (lo, hi) in enumerate(edges):
        if not hi > lo:
            raise ConfigError(f"region {k} has |eta| range ({lo}, {hi}] that is empty",
                              parameter=what)
        if k and lo != edges[k - 1][1]:
            kind = "overlap" if lo < edges[k - 1][1] else "gap"
            raise ConfigError(f"{kind} between |eta| regions {k - 1} (ends {edges[k - 1][1]}) "
                              f"and {k} (starts {lo})", parameter=what)
    if edges[-1][1] != eta_max:
        raise ConfigError(f"regions end at |eta| = {edges[-1][1]}, acceptance is {eta_max}",
                          parameter=what)


@dataclass
class ObjectResponse:
    """The response of one object type.

    Arguments:
        name: Object type as in the full simulation's ``object_type`` column.
        kind: ``"track"`` (log-normal relative pT smearing) or ``"calo"`` (Gaussian
            absolute energy smearing).
        pdg: Absolute PDG codes of the truth particles it applies to.
        eta_max: |eta| acceptance (efficiency 0 beyond).
        efficiency, scale, resolution: Lists of :class:`Region`.
        sigma_eta, sigma_phi: Constant absolute angular resolutions.
        mass_gev: Mass used to build the four-momentum.
        metadata: Fit metadata (method, regions, scores...); keys starting with ``_``
            (the wall-clock timings) are kept in memory, not written to the file.
    """

    name: str
    kind: str
    pdg: tuple[int, ...]
    eta_max: float
    efficiency: list[Region]
    scale: list[Region]
    resolution: list[Region]
    sigma_eta: float = 0.0
    sigma_phi: float = 0.0
    mass_gev: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {self.kind!r}",
                              parameter=f"{self.name}.kind")
        self.pdg = tuple(int(abs(p)) for p in self.pdg)
        for q in ("efficiency", "scale", "resolution"):
            regions: list[Region] = getattr(self, q)
            check_regions([(r.eta_low, r.eta_high) for r in regions], self.eta_max,
                          what=f"{self.name}.{q}")
            allowed = _ALLOWED[q if q != "resolution" else f"resolution_{self.kind}"]
            for r in regions:
                extra = set(r.formula.names) - allowed
                if extra:
                    raise ConfigError(f"{q} of a {self.kind} object may use only "
                                      f"{sorted(allowed)}, not {sorted(extra)}",
                                      parameter=f"{self.name}.{q}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "pdg": list(self.pdg),
                "eta_max": self.eta_max,
                "efficiency": [r.to_dict() for r in self.efficiency],
                "scale": [r.to_dict() for r in self.scale],
                "resolution": [r.to_dict() for r in self.resolution],
                "sigma_eta": self.sigma_eta, "sigma_phi": self.sigma_phi,
                "mass_gev": self.mass_gev,
                "metadata": {k: v for k, v in self.metadata.items() if not k.startswith("_")}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: Any = None) -> ObjectResponse:
        try:
            return cls(
                name=str(d["name"]), kind=str(d["kind"]), pdg=tuple(d["pdg"]),
                eta_max=float(d["eta_max"]),
                efficiency=[Region.from_dict(r, source=source) for r in d["efficiency"]],
                scale=[Region.from_dict(r, source=source) for r in d["scale"]],
                resolution=[Region.from_dict(r, source=source) for r in d["resolution"]],
                sigma_eta=float(d.get("sigma_eta", 0.0)), sigma_phi=float(d.get("sigma_phi", 0.0)),
                mass_gev=float(d.get("mass_gev", 0.0)), metadata=dict(d.get("metadata", {})))
        except KeyError as exc:
            raise InputError(f"object response lacks key {exc}", path=source) from exc


@dataclass
class ResponseModel:
    """All object responses plus provenance.

    Arguments:
        objects: Object responses by name.
        metadata: Provenance (input files, detector, method, versions).
    """

    objects: dict[str, ObjectResponse]
    metadata: dict[str, Any] = field(default_factory=dict)

    def object_for_pdg(self, pdg: int) -> ObjectResponse | None:
        """The object response whose ``pdg`` list holds ``abs(pdg)``, or None."""
        for o in self.objects.values():
            if abs(int(pdg)) in o.pdg:
                return o
        return None

    def to_dict(self) -> dict[str, Any]:
        # metadata keys starting with "_" (e.g. wall-clock timings) stay in memory
        return {"schema": _SCHEMA,
                "metadata": {k: v for k, v in self.metadata.items() if not k.startswith("_")},
                "objects": {k: o.to_dict() for k, o in self.objects.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: Any = None) -> ResponseModel:
        if not isinstance(d, Mapping) or d.get("schema") != _SCHEMA:
            raise InputError(f"not an ariasim response model (expected schema {_SCHEMA!r})",
                             path=source)
        objs = {k: ObjectResponse.from_dict(v, source=source) for k, v in d["objects"].items()}
        return cls(objs, dict(d.get("metadata", {})))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON atomically."""
        return write_json(path, self.to_dict(), default=float)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResponseModel:
        """Read a JSON response model (formulas go through the whitelist parser)."""
        return cls.from_dict(read_json(path, what="response model"), source=Path(path))
