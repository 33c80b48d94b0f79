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
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.escape import quote_excerpt
from ariasim.utils import read_json, write_json

if TYPE_CHECKING:  # sympy is imported only where a Formula is built (Region.from_dict)
    from ariasim.surrogates.formula import Formula

__all__ = [
    "ALLOWED_VARIABLES",
    "KINDS",
    "SCHEMA",
    "ObjectResponse",
    "Region",
    "ResponseModel",
    "check_regions",
]

#: The file format's name (unchanged when the code moved from ``ariasim.response`` to
#: ``ariasim.apps.collider``: model files written before keep loading).
SCHEMA = _SCHEMA = "ariasim.response/1"
KINDS = ("track", "calo")
#: The variables each quantity's formulas may use (``resolution_<kind>``).
ALLOWED_VARIABLES = _ALLOWED = {
    "efficiency": {"pt", "eta", "energy"},
    "scale": {"pt", "eta", "energy"},
    "resolution_track": {"pt", "eta"},
    "resolution_calo": {"eta", "energy"},
}


@dataclass(frozen=True)
class Region:
    """One |eta| range ``(eta_low, eta_high]`` (the first one closed at 0) and its formula.

    Arguments:
        eta_low: Lower |eta| edge.
        eta_high: Upper |eta| edge.
        formula: Formula in (a subset of) the Delphes variables pt, eta, energy.

    Example:
        >>> from ariasim.surrogates import Formula
        >>> r = Region(0.0, 1.5, Formula("0.95 - 0.1/pt", ["pt"], output="efficiency"))
        >>> float(Region.from_dict(r.to_dict()).formula({"pt": 10.0}))
        0.94
    """

    eta_low: float
    eta_high: float
    formula: Formula

    def to_dict(self) -> dict[str, Any]:
        return {
            "eta_low": self.eta_low,
            "eta_high": self.eta_high,
            "formula": self.formula.to_dict(),
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, source: Any = None, field: str | None = None
    ) -> Region:
        """Build from :meth:`to_dict` output, checking types and values; errors name the
        file ``source`` and the ``field`` (e.g. ``objects.muon.scale[0]``)."""
        where = field or "region"
        if not isinstance(d, Mapping):
            raise InputError(f"expected an object, got {_type_name(d)}", path=source, field=where)
        lo = _number(d, "eta_low", source, where, minimum=0.0)
        hi = _number(d, "eta_high", source, where, minimum=0.0)
        if "formula" not in d:
            raise InputError("region lacks key 'formula'", path=source, field=where)
        from ariasim.surrogates.formula import Formula

        return cls(lo, hi, Formula.from_dict(d["formula"], source=source, field=f"{where}.formula"))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _number(
    d: Mapping[str, Any],
    key: str,
    source: Any,
    where: str,
    *,
    default: float | None = None,
    minimum: float | None = None,
    positive: bool = False,
    maximum: float | None = None,
) -> float:
    """``d[key]`` as a finite float (not a bool or a string), with bounds; an
    :class:`~ariasim.errors.InputError` naming ``source`` and ``where.key`` otherwise."""
    name = f"{where}.{key}"
    if key not in d:
        if default is None:
            raise InputError(f"missing key {key!r}", path=source, field=where)
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(
            f"expected a number, got {_type_name(v)} {v!r:.40}", path=source, field=name
        )
    try:
        x = float(v)
    except OverflowError:
        raise InputError("number too large", path=source, field=name) from None
    if not math.isfinite(x):
        raise InputError(f"must be finite, got {x}", path=source, field=name)
    if positive and not x > 0.0:
        raise InputError(f"must be > 0, got {x}", path=source, field=name)
    if minimum is not None and x < minimum:
        raise InputError(f"must be >= {minimum}, got {x}", path=source, field=name)
    if maximum is not None and x > maximum:
        raise InputError(f"must be <= {maximum}, got {x}", path=source, field=name)
    return x


#: The largest |eta| acceptance a model file may declare (the simulated detector ends
#: well before; a typo such as 1e9 would make the card's piecewise terms meaningless).
ETA_LIMIT = 10.0
#: Object names must be identifiers: they become Delphes module and array names.
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def check_regions(
    edges: Sequence[tuple[float, float]], eta_max: float, *, what: str = "regions"
) -> None:
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
            raise ConfigError(
                f"region {k} has |eta| range ({lo}, {hi}] that is empty", parameter=what
            )
        if k and lo != edges[k - 1][1]:
            kind = "overlap" if lo < edges[k - 1][1] else "gap"
            raise ConfigError(
                f"{kind} between |eta| regions {k - 1} (ends {edges[k - 1][1]}) "
                f"and {k} (starts {lo})",
                parameter=what,
            )
    if edges[-1][1] != eta_max:
        raise ConfigError(
            f"regions end at |eta| = {edges[-1][1]}, acceptance is {eta_max}", parameter=what
        )


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

    Example:
        >>> from ariasim.surrogates import Formula
        >>> one = lambda text: [Region(0.0, 2.5, Formula(text, ["pt"]))]
        >>> mu = ObjectResponse("muon", "track", (13,), 2.5, efficiency=one("0.98"),
        ...                     scale=one("1.0"), resolution=one("0.01 + 1e-4*pt"),
        ...                     mass_gev=0.1057)
        >>> mu.kind, float(mu.resolution[0].formula({"pt": 100.0}))
        ('track', 0.02)
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
    #: Optional non-Gaussian response (:class:`~ariasim.apps.collider.shape.ResponseShape`):
    #: ariasim's fast simulation samples reco/truth from it instead of the scale and the
    #: Gaussian smearing; the Delphes card ignores it.
    shape: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"kind must be one of {KINDS}, got {self.kind!r}", parameter=f"{self.name}.kind"
            )
        self.pdg = tuple(int(abs(p)) for p in self.pdg)
        for q in ("efficiency", "scale", "resolution"):
            regions: list[Region] = getattr(self, q)
            check_regions(
                [(r.eta_low, r.eta_high) for r in regions], self.eta_max, what=f"{self.name}.{q}"
            )
            allowed = _ALLOWED[q if q != "resolution" else f"resolution_{self.kind}"]
            for r in regions:
                extra = set(r.formula.names) - allowed
                if extra:
                    raise ConfigError(
                        f"{q} of a {self.kind} object may use only "
                        f"{sorted(allowed)}, not {sorted(extra)}",
                        parameter=f"{self.name}.{q}",
                    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pdg": list(self.pdg),
            "eta_max": self.eta_max,
            "efficiency": [r.to_dict() for r in self.efficiency],
            "scale": [r.to_dict() for r in self.scale],
            "resolution": [r.to_dict() for r in self.resolution],
            "sigma_eta": self.sigma_eta,
            "sigma_phi": self.sigma_phi,
            "mass_gev": self.mass_gev,
            "metadata": {k: v for k, v in self.metadata.items() if not k.startswith("_")},
            **({"shape": self.shape.to_dict()} if self.shape is not None else {}),
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, source: Any = None, field: str | None = None
    ) -> ObjectResponse:
        """Build from :meth:`to_dict` output, checking every key (types, finite and
        non-negative numbers, known object name, identifier, regions); errors name the file
        ``source`` and the ``field`` (e.g. ``objects.muon.sigma_eta``)."""
        from ariasim.apps.collider.objects import OBJECTS

        where = field or "object"
        if not isinstance(d, Mapping):
            raise InputError(f"expected an object, got {_type_name(d)}", path=source, field=where)
        for key in ("name", "kind", "pdg", "eta_max", "efficiency", "scale", "resolution"):
            if key not in d:
                raise InputError(f"object response lacks key {key!r}", path=source, field=where)
        name, kind, pdg = d["name"], d["kind"], d["pdg"]
        if not isinstance(name, str) or not _IDENT.fullmatch(name):
            raise InputError(
                f"object name must be an identifier (a letter, then letters, "
                f"digits or '_'; it becomes a Delphes module name), got "
                f"{quote_excerpt(str(name))}",
                path=source,
                field=f"{where}.name",
            )
        if name not in OBJECTS:
            raise InputError(
                f"unknown object name {name!r} (known: {', '.join(OBJECTS)})",
                path=source,
                field=f"{where}.name",
            )
        if kind not in KINDS:
            raise InputError(
                f"kind must be one of {KINDS}, got {quote_excerpt(str(kind))}",
                path=source,
                field=f"{where}.kind",
            )
        if (
            not isinstance(pdg, list)
            or not pdg
            or not all(
                isinstance(p, int) and not isinstance(p, bool) and 0 < abs(p) < 10**10 for p in pdg
            )
        ):
            raise InputError(
                "pdg must be a non-empty list of non-zero integer PDG codes",
                path=source,
                field=f"{where}.pdg",
            )
        eta_max = _number(d, "eta_max", source, where, positive=True, maximum=ETA_LIMIT)
        regions: dict[str, list[Region]] = {}
        for q in ("efficiency", "scale", "resolution"):
            rs = d[q]
            if not isinstance(rs, list) or not rs:
                got = "an empty list" if isinstance(rs, list) else _type_name(rs)
                raise InputError(
                    f"expected a non-empty list of regions, got {got}",
                    path=source,
                    field=f"{where}.{q}",
                )
            regions[q] = [
                Region.from_dict(r, source=source, field=f"{where}.{q}[{k}]")
                for k, r in enumerate(rs)
            ]
        sig = {
            k: _number(d, k, source, where, default=0.0, minimum=0.0)
            for k in ("sigma_eta", "sigma_phi", "mass_gev")
        }
        metadata = d.get("metadata", {})
        if not isinstance(metadata, Mapping):
            raise InputError(
                f"expected an object, got {_type_name(metadata)}",
                path=source,
                field=f"{where}.metadata",
            )
        try:
            return cls(
                name=name,
                kind=kind,
                pdg=tuple(pdg),
                eta_max=eta_max,
                efficiency=regions["efficiency"],
                scale=regions["scale"],
                resolution=regions["resolution"],
                metadata=dict(metadata),
                shape=_read_shape(d, source, where),
                **sig,
            )
        except ConfigError as exc:  # regions that do not tile, variables not allowed
            sub = (exc.parameter or "").split(".", 1)[-1]
            raise InputError(
                exc.message, path=source, field=f"{where}.{sub}" if sub else where
            ) from None


def _read_shape(d: Mapping[str, Any], source: Any, where: str) -> Any:
    """The optional ``shape`` entry of an object (absent or null: Gaussian smearing)."""
    if d.get("shape") is None:
        return None
    from ariasim.apps.collider.shape import ResponseShape

    return ResponseShape.from_dict(d["shape"], source=source, field=f"{where}.shape")


@dataclass
class ResponseModel:
    """All object responses plus provenance.

    Arguments:
        objects: Object responses by name.
        metadata: Provenance (input files, detector, method, versions).

    Example:
        >>> import tempfile, pathlib
        >>> from ariasim.surrogates import Formula
        >>> one = lambda text: [Region(0.0, 2.5, Formula(text, ["pt"]))]
        >>> mu = ObjectResponse("muon", "track", (13,), 2.5, efficiency=one("0.98"),
        ...                     scale=one("1.0"), resolution=one("0.01"))
        >>> model = ResponseModel({"muon": mu}, {"source": "hand-made"})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = model.save(pathlib.Path(tmp) / "response.json")
        ...     ResponseModel.load(path).object_for_pdg(-13).name
        'muon'
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
        return {
            "schema": _SCHEMA,
            "metadata": {k: v for k, v in self.metadata.items() if not k.startswith("_")},
            "objects": {k: o.to_dict() for k, o in self.objects.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: Any = None) -> ResponseModel:
        """Build from :meth:`to_dict` output (see :meth:`ObjectResponse.from_dict`); every
        error is an :class:`~ariasim.errors.InputError` naming ``source`` and the field."""
        if not isinstance(d, Mapping) or d.get("schema") != _SCHEMA:
            got = (
                f"a JSON {_type_name(d)}"
                if not isinstance(d, Mapping)
                else "no schema"
                if "schema" not in d
                else f"schema {quote_excerpt(str(d['schema']))}"
            )
            raise InputError(
                f"not an ariasim response model (expected schema {_SCHEMA!r}, got {got})",
                path=source,
            )
        objects = d.get("objects")
        if not isinstance(objects, Mapping) or not objects:
            got = "an empty object" if isinstance(objects, Mapping) else _type_name(objects)
            raise InputError(
                f"expected a non-empty object of object responses, got {got}",
                path=source,
                field="objects",
            )
        metadata = d.get("metadata", {})
        if not isinstance(metadata, Mapping):
            raise InputError(
                f"expected an object, got {_type_name(metadata)}", path=source, field="metadata"
            )
        objs = {}
        for k, v in objects.items():
            where = f"objects.{k}" if _IDENT.fullmatch(k) else f"objects[{quote_excerpt(k)}]"
            objs[k] = ObjectResponse.from_dict(v, source=source, field=where)
            if objs[k].name != k:
                raise InputError(
                    f"object name {objs[k].name!r} differs from its key {quote_excerpt(k)}",
                    path=source,
                    field=f"{where}.name",
                )
        return cls(objs, dict(metadata))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON atomically, with each object's card formulas stored for a fast load
        (:func:`ariasim.apps.collider.compiled.with_card_formulas`)."""
        from ariasim.apps.collider.compiled import with_card_formulas

        return write_json(path, with_card_formulas(self.to_dict()), default=float)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResponseModel:
        """Read a JSON response model (formulas go through the whitelist parser)."""
        return cls.from_dict(read_json(path, what="response model"), source=Path(path))
