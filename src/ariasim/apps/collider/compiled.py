r"""A response model read for the fast simulation, without sympy: the stored card formulas.

:meth:`ResponseModel.load <ariasim.apps.collider.model.ResponseModel.load>` builds every
formula as a sympy expression, and :class:`~ariasim.apps.collider.fastsim.FastSimulator`
then prints each object's formulas as card (TFormula) text, lints and compiles them
(:func:`~ariasim.apps.collider.delphes.card_formulas`): seconds for a KAN model, before
the first particle. :meth:`ResponseModel.save <ariasim.apps.collider.model.ResponseModel.save>`
therefore also stores, per object, those five card texts (efficiency, scale, resolution,
sigma_eta, sigma_phi) under the key ``card_formulas``, with

* ``version``: :data:`CARD_VERSION`, the version of the card printer that made them
  (raise it whenever :func:`~ariasim.apps.collider.delphes.card_formulas` prints
  differently: stored texts of another version are not used);
* ``digest``: the SHA-256 of the object's other entries (regions, formulas, edges, kind,
  pdg, mass, angular resolutions; not its metadata) as canonical JSON. An object edited
  by hand after it was written no longer matches and is read the slow way.

:class:`CompiledResponse` reads such a file without sympy: it checks every entry the
fast simulation uses (errors name the file and field, as the slow path's), reads every
region's formula text with the sympy-free back-end of the whitelist parser
(:func:`~ariasim.surrogates.parse.parse_numeric`, same grammar and bounds, so hostile text
is refused), checks that the regions tile the acceptance, and compiles the stored card
texts with the TFormula reader (:class:`~ariasim.export.tformula_eval.TFormulaExpression`,
bounded, whitelisted, checked for the module's variables). The simulation then evaluates
*the same card text* as the slow path, so its output is byte-identical. The value-range
lint of the card (efficiency in [0, 1]...) ran when the file was written; the fast
simulation clips what it evaluates as Delphes does.

An object without stored texts (files written before), with another version, a digest
that does not match, or entries the fast path does not know (a future response shape)
is read the slow way (:class:`~ariasim.apps.collider.model.ObjectResponse` and
:func:`~ariasim.apps.collider.delphes.card_formulas`), which imports sympy; the simulator
then applies that :class:`~ariasim.apps.collider.model.ObjectResponse` itself
(:attr:`CompiledObject.response`). To let a new entry take the fast path, add its key to
``_FAST_KEYS`` and what the simulator needs of it to :class:`CompiledObject`. The switch:
``CompiledResponse.load(path, use_stored=False)`` reads every object the slow way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ariasim.apps.collider.model import (
    ALLOWED_VARIABLES,
    ETA_LIMIT,
    KINDS,
    SCHEMA,
    ObjectResponse,
    ResponseModel,
    check_regions,
)
from ariasim.errors import AriasimError, ConfigError, InputError
from ariasim.export.tformula_eval import TFormulaError, TFormulaExpression
from ariasim.surrogates.escape import quote_excerpt
from ariasim.surrogates.parse import FormulaSyntaxError, parse_numeric
from ariasim.utils import read_json

__all__ = [
    "CARD_KEY",
    "CARD_VERSION",
    "QUANTITIES",
    "CompiledObject",
    "CompiledResponse",
    "card_digest",
    "compile_object",
    "with_card_formulas",
]

#: The key of an object's stored card formulas in a response model file.
CARD_KEY = "card_formulas"
#: The version of the card printer whose texts are stored; raise it whenever
#: :func:`~ariasim.apps.collider.delphes.card_formulas` prints differently.
CARD_VERSION = 1
#: The stored texts, in the order :class:`~ariasim.apps.collider.fastsim.FastSimulator`
#: evaluates them.
QUANTITIES = ("efficiency", "scale", "resolution", "sigma_eta", "sigma_phi")
#: The object entries the fast path knows; any other entry sends the object the slow way.
_FAST_KEYS = frozenset(
    {
        "name",
        "kind",
        "pdg",
        "eta_max",
        "efficiency",
        "scale",
        "resolution",
        "sigma_eta",
        "sigma_phi",
        "mass_gev",
        "metadata",
        "shape",
        CARD_KEY,
    }
)
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def card_digest(obj: Mapping[str, Any]) -> str:
    """SHA-256 of an object entry of a model file without its metadata and stored card
    texts, as canonical JSON (sorted keys, no spaces)."""
    payload = {k: v for k, v in obj.items() if k not in ("metadata", CARD_KEY)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=float)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def with_card_formulas(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (:meth:`ResponseModel.to_dict`) as JSON types, with each object's card
    formulas stored under :data:`CARD_KEY`.

    The texts are printed from each object *as a later load reads it back* (its entry is
    parsed again), so the fast path evaluates what the slow path would. An object that
    does not read back or whose card cannot be printed (the slow path then fails the same
    way) gets no texts.
    """
    from ariasim.apps.collider.delphes import card_formulas

    plain = json.loads(json.dumps(data, default=float))
    objects = plain.get("objects", {})
    for name, entry in objects.items():
        if not isinstance(entry, dict):
            continue
        entry.pop(CARD_KEY, None)
        try:
            obj = ObjectResponse.from_dict(entry, field=f"objects.{name}")
            cf = card_formulas(obj)
        except AriasimError:  # a model a file cannot hold, or a card that cannot be printed
            continue
        entry[CARD_KEY] = {"version": CARD_VERSION, "digest": card_digest(entry), **asdict(cf)}
    return plain


@dataclass(frozen=True)
class CompiledObject:
    """One object type, as the fast simulation needs it.

    Arguments:
        name: Object type (``object_type`` column).
        kind: ``"track"`` or ``"calo"``.
        pdg: Absolute PDG codes it applies to.
        eta_max: |eta| acceptance.
        mass_gev: Mass used to build the four-momentum.
        formulas: The compiled card formulas, in :data:`QUANTITIES` order.
        stored: True when compiled from the stored texts (no sympy).
        response: The full object response when it was read the slow way (then the
            simulator applies that object, with whatever entries it has), else None.

    Example:
        >>> from ariasim.export.tformula_eval import TFormulaExpression
        >>> one = TFormulaExpression.from_card("1.0")
        >>> CompiledObject("muon", "track", (13,), 2.5, 0.1057, (one,) * 5).kind
        'track'
    """

    name: str
    kind: str
    pdg: tuple[int, ...]
    eta_max: float
    mass_gev: float
    formulas: tuple[TFormulaExpression, ...]
    stored: bool = True
    response: ObjectResponse | None = None
    shape: Any = None


def _module_variables(kind: str) -> dict[str, set[str]]:
    """The variables each card formula of a ``kind`` object may read."""
    return {
        "efficiency": ALLOWED_VARIABLES["efficiency"],
        "scale": ALLOWED_VARIABLES["scale"],
        "resolution": ALLOWED_VARIABLES[f"resolution_{kind}"],
        "sigma_eta": set(),
        "sigma_phi": set(),
    }


def compile_object(obj: ObjectResponse) -> CompiledObject:
    """The slow path: print, lint and compile the card formulas of an object (sympy)."""
    from ariasim.apps.collider.delphes import card_formulas

    cf = card_formulas(obj)
    return CompiledObject(
        obj.name,
        obj.kind,
        obj.pdg,
        obj.eta_max,
        obj.mass_gev,
        tuple(TFormulaExpression.from_card(getattr(cf, q)) for q in QUANTITIES),
        stored=False,
        response=obj,
        shape=obj.shape,
    )


class _Reader:
    """Checks of one object entry for the fast path; errors name the file and field."""

    def __init__(self, source: Any, where: str):
        self.source, self.where = source, where

    def fail(self, msg: str, key: str | None = None) -> InputError:
        return InputError(msg, path=self.source, field=f"{self.where}.{key}" if key else self.where)

    def number(self, d: Mapping[str, Any], key: str, **bounds: Any) -> float:
        v = d.get(key, bounds.pop("default", None))
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(f"expected a number, got {type(v).__name__} {v!r:.40}", key)
        try:
            x = float(v)
        except OverflowError:
            raise self.fail("number too large", key) from None
        if not math.isfinite(x):
            raise self.fail(f"must be finite, got {x}", key)
        lo, hi = bounds.get("minimum", -math.inf), bounds.get("maximum", math.inf)
        if bounds.get("positive") and not x > 0.0:
            raise self.fail(f"must be > 0, got {x}", key)
        if not lo <= x <= hi:
            raise self.fail(f"must be in [{lo}, {hi}], got {x}", key)
        return x


def _fast_object(d: Mapping[str, Any], source: Any, where: str) -> CompiledObject:
    """An object entry with valid stored texts, checked and compiled without sympy."""
    from ariasim.apps.collider.objects import OBJECTS

    r = _Reader(source, where)
    name, kind, pdg = d["name"], d["kind"], d["pdg"]
    if not isinstance(name, str) or not _IDENT.fullmatch(name) or name not in OBJECTS:
        raise r.fail(
            f"object name must be one of {', '.join(OBJECTS)}, got {quote_excerpt(str(name))}",
            "name",
        )
    if kind not in KINDS:
        raise r.fail(f"kind must be one of {KINDS}, got {quote_excerpt(str(kind))}", "kind")
    if (
        not isinstance(pdg, list)
        or not pdg
        or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < abs(p) < 10**10 for p in pdg
        )
    ):
        raise r.fail("pdg must be a non-empty list of non-zero integer PDG codes", "pdg")
    eta_max = r.number(d, "eta_max", positive=True, maximum=ETA_LIMIT)
    mass = r.number(d, "mass_gev", default=0.0, minimum=0.0)
    for k in ("sigma_eta", "sigma_phi"):
        r.number(d, k, default=0.0, minimum=0.0)
    if not isinstance(d.get("metadata", {}), Mapping):
        raise r.fail("expected an object", "metadata")
    allowed = _module_variables(kind)
    for q in ("efficiency", "scale", "resolution"):
        regions = d[q]
        if not isinstance(regions, list) or not regions:
            raise r.fail("expected a non-empty list of regions", q)
        edges = []
        for ir, reg in enumerate(regions):
            rr = _Reader(source, f"{where}.{q}[{ir}]")
            if not isinstance(reg, Mapping) or not isinstance(reg.get("formula"), Mapping):
                raise rr.fail("expected a region with a formula object")
            edges.append(
                (rr.number(reg, "eta_low", minimum=0.0), rr.number(reg, "eta_high", minimum=0.0))
            )
            f = reg["formula"]
            fr = _Reader(source, f"{where}.{q}[{ir}].formula")
            variables = f.get("variables")
            if not isinstance(variables, list) or not all(
                isinstance(v, Mapping) and isinstance(v.get("name"), str) for v in variables
            ):
                raise fr.fail("expected a list of variables with names", "variables")
            names = [v["name"] for v in variables]
            extra = set(names) - allowed[q]
            if extra:
                raise r.fail(
                    f"{q} of a {kind} object may use only {sorted(allowed[q])}, "
                    f"not {sorted(extra)}",
                    q,
                )
            try:
                parse_numeric(f.get("expression"), names)  # type: ignore[arg-type]
            except (FormulaSyntaxError, ConfigError) as exc:
                raise fr.fail(exc.message, "expression") from None
        try:
            check_regions(edges, eta_max, what=q)
        except ConfigError as exc:
            raise r.fail(exc.message, q) from None
    stored = d[CARD_KEY]
    formulas = []
    for q in QUANTITIES:
        text = stored.get(q)
        try:
            if not isinstance(text, str):
                raise TFormulaError(f"expected text, got {type(text).__name__}")
            expr = TFormulaExpression.from_card(text)
        except TFormulaError as exc:
            raise r.fail(exc.message, f"{CARD_KEY}.{q}") from None
        extra = expr.variables - allowed[q]
        if extra:
            raise r.fail(f"card formula reads {sorted(extra)}", f"{CARD_KEY}.{q}")
        formulas.append(expr)
    shape = None
    if d.get("shape") is not None:
        from ariasim.apps.collider.shape import ResponseShape

        shape = ResponseShape.from_dict(d["shape"], source=source, field=f"{where}.shape")
    return CompiledObject(
        name, kind, tuple(abs(p) for p in pdg), eta_max, mass, tuple(formulas), shape=shape
    )


def _usable(d: Any) -> bool:
    """True when an object entry has stored texts the fast path may use."""
    if not isinstance(d, Mapping) or not set(d) <= _FAST_KEYS:
        return False
    if not all(k in d for k in ("name", "kind", "pdg", "eta_max", "efficiency", "scale")):
        return False
    if "resolution" not in d:
        return False
    stored = d.get(CARD_KEY)
    return (
        isinstance(stored, Mapping)
        and stored.get("version") == CARD_VERSION
        and stored.get("digest") == card_digest(d)
    )


class CompiledResponse:
    """A response model ready for the fast simulation (module docstring): its objects
    compiled from the stored card texts where possible, without sympy; the
    :class:`~ariasim.apps.collider.model.ResponseModel` itself built only on request
    (:attr:`model`).

    Arguments:
        data: The parsed model file.
        source: The file, named in error messages.
        use_stored: Use the stored card texts (False: every object the slow way).

    Example:
        >>> import tempfile, pathlib
        >>> from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
        >>> from ariasim.surrogates import Formula
        >>> one = lambda text: [Region(0.0, 2.5, Formula(text, ["pt"]))]
        >>> mu = ObjectResponse("muon", "track", (13,), 2.5, efficiency=one("0.98"),
        ...                     scale=one("1.0"), resolution=one("0.01"), mass_gev=0.1057)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = ResponseModel({"muon": mu}).save(pathlib.Path(tmp) / "r.json")
        ...     fast = CompiledResponse.load(path)
        >>> [(o.name, o.stored) for o in fast.objects]
        [('muon', True)]
    """

    def __init__(
        self, data: Mapping[str, Any], *, source: Any = None, use_stored: bool = True
    ) -> None:
        self.source = source
        self._data = data
        self._model: ResponseModel | None = None
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            self._model = ResponseModel.from_dict(data, source=source)  # its error
        objects = data.get("objects")
        if not isinstance(objects, Mapping) or not objects:
            self._model = ResponseModel.from_dict(data, source=source)  # its error
            raise InputError("no objects in the response model", path=source, field="objects")
        compiled: list[CompiledObject] = []
        slow = [k for k, v in objects.items() if not (use_stored and _usable(v))]
        if slow:  # the slow path checks the whole file (as ResponseModel.load)
            self._model = ResponseModel.from_dict(data, source=source)
        for k, v in objects.items():
            where = f"objects.{k}" if _IDENT.fullmatch(k) else f"objects[{quote_excerpt(k)}]"
            if k in slow:
                assert self._model is not None
                compiled.append(compile_object(self._model.objects[k]))
                continue
            obj = _fast_object(v, source, where)
            if obj.name != k:
                raise InputError(
                    f"object name {obj.name!r} differs from its key {quote_excerpt(k)}",
                    path=source,
                    field=f"{where}.name",
                )
            compiled.append(obj)
        self.objects = compiled

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, use_stored: bool = True) -> CompiledResponse:
        """Read a response model file (see the class)."""
        return cls(read_json(path, what="response model"), source=Path(path), use_stored=use_stored)

    @property
    def model(self) -> ResponseModel:
        """The full :class:`~ariasim.apps.collider.model.ResponseModel` (sympy formulas),
        built on first use."""
        if self._model is None:
            self._model = ResponseModel.from_dict(self._data, source=self.source)
        return self._model

    @property
    def metadata(self) -> dict[str, Any]:
        """The model's provenance (``metadata``), without building the formulas."""
        m = self._data.get("metadata", {})
        return dict(m) if isinstance(m, Mapping) else {}
