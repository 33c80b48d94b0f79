r"""Delphes card export: a learned :class:`~ariasim.apps.collider.model.ResponseModel` as Tcl.

:func:`card_text` writes a complete, runnable card modelled on Delphes' stock
``delphes_card_CMS.tcl`` (ParticlePropagator, per object: Efficiency, EnergyScale,
MomentumSmearing or EnergySmearing, AngularSmearing; UniqueObjectFinder, TreeWriter,
ExecutionPath); :func:`module_blocks` the per-object module blocks alone, for splicing into
an existing card. Every formula is printed by :func:`~ariasim.export.tformula.to_tformula`
and then *linted* (:func:`lint_card_formula`) for the module it goes to:

* only ``pt``, ``eta``, ``phi``, ``energy``; no identifier that Delphes' textual
  substitution would corrupt; ``^`` only as ``(base)^(exponent)``;
* piecewise terms ``(abs(eta) <= a) * (...) + (abs(eta) > a && abs(eta) <= b) * (...) +
  (abs(eta) > eta_max) * (0.0)`` whose regions are disjoint and cover the acceptance
  (checked by evaluating every term's condition on a grid: overlaps add, gaps give 0);
* Efficiency: a probability, values in [0, 1] (emitted clipped with TMath::Min/Max);
* MomentumSmearing: relative sigma(pT)/pT, non-negative and below 1 (Delphes caps it at 1);
* calorimeter EnergySmearing / ResolutionFormula: absolute sigma(E) in GeV of eta and
  energy only, non-negative.

Variables outside a formula's fitted range (its :class:`~ariasim.surrogates.formula.Variable`
``low``/``high``) are clamped in the emitted text, so the card never extrapolates a fit.

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346;
    Delphes ``cards/delphes_card_CMS.tcl`` (card structure) and ``modules/Efficiency.cc``,
    ``MomentumSmearing.cc``, ``EnergySmearing.cc``, ``EnergyScale.cc``,
    ``AngularSmearing.cc`` (module semantics).

    ROOT TFormula, https://root.cern/doc/master/classTFormula.html
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp

from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel, check_regions
from ariasim.errors import ConfigError
from ariasim.export import tcl_comment, tcl_text
from ariasim.export.tformula import Parser, TFormulaError, TFormulaExpression, to_tformula
from ariasim.surrogates.formula import Formula
from ariasim.utils import atomic_path

__all__ = [
    "CardFormulas",
    "Module",
    "card_formulas",
    "card_name",
    "card_text",
    "check_field",
    "energy_pieces",
    "lint_card",
    "lint_card_formula",
    "module_blocks",
    "piecewise_eta",
    "write_delphes_card",
]

#: Which card variables each module's formula may use.
MODULE_VARIABLES: dict[str, set[str]] = {
    "Efficiency": {"pt", "eta", "phi", "energy"},
    "EnergyScale": {"pt", "eta", "phi", "energy"},
    "MomentumSmearing": {"pt", "eta", "phi", "energy"},
    "EnergySmearing": {"eta", "energy"},
    "ResolutionFormula": {"eta", "energy"},
    "AngularSmearing": {"pt", "eta", "phi", "energy"},
}


# --------------------------------------------------------------------------- formulas


def _clamped(region: Region) -> sp.Expr:
    """The region's expression with pt/energy clamped to the formula's fitted range."""
    f = region.formula
    subs = {}
    for v, s in zip(f.variables, f.symbols, strict=True):
        if v.name == "eta":
            continue
        e: sp.Expr = s
        if v.low is not None:
            e = sp.Max(e, sp.Float(v.low))
        if v.high is not None:
            e = sp.Min(e, sp.Float(v.high))
        if e is not s:
            subs[s] = e
    return f.expression.xreplace(subs) if subs else f.expression


def piecewise_eta(
    terms: Sequence[tuple[float, float, str]], eta_max: float, outside: str = "0.0"
) -> str:
    """Sum of ``(|eta| condition) * (value)`` terms with disjoint regions covering
    ``[0, eta_max]``, plus ``(abs(eta) > eta_max) * (outside)``.

    Arguments:
        terms: ``(eta_low, eta_high, value_text)`` in increasing |eta|.
        eta_max: Acceptance.
        outside: Value beyond the acceptance.
    """
    check_regions([(lo, hi) for lo, hi, _ in terms], eta_max)
    out = []
    for lo, hi, val in terms:
        cond = (
            f"(abs(eta) <= {hi!r})" if lo == 0.0 else f"(abs(eta) > {lo!r} && abs(eta) <= {hi!r})"
        )
        out.append(f"{cond} * ({val})")
    out.append(f"(abs(eta) > {float(eta_max)!r}) * ({outside})")
    return " +\n    ".join(out)


def energy_pieces(f: Formula) -> list[tuple[float, float, sp.Expr]]:
    """The pieces in E of a formula written ``Heaviside(b - energy)*(f1) +
    Heaviside(energy - b)*(f2)`` (a calorimeter resolution split in E, see
    :mod:`ariasim.apps.collider.compact`): ``(E_low, E_high, expression)`` tiling E
    (``0, b`` and ``b, inf``; a formula without Heaviside is one piece ``0, inf``).

    Example:
        >>> f = Formula("Heaviside(20 - energy)*(0.1*energy) + "
        ...             "Heaviside(energy - 20)*(0.01*energy)", ["energy"])
        >>> [(lo, hi, str(e)) for lo, hi, e in energy_pieces(f)]
        [(0.0, 20.0, '0.1*energy'), (20.0, inf, '0.01*energy')]
    """
    e = f.expression
    hs = sorted(e.atoms(sp.Heaviside), key=str)
    if not hs:
        return [(0.0, math.inf, e)]
    en = [s for s in f.symbols if s.name == "energy"]
    if not en:
        raise ConfigError(f"a piecewise formula must split in energy: {f}", parameter="formula")
    breaks = set()
    for h in hs:
        arg = sp.expand(h.args[0])
        if sp.degree(arg, en[0]) != 1 or arg.free_symbols != {en[0]}:
            raise ConfigError(f"pieces must be split at fixed energies: {h}", parameter="formula")
        breaks.add(float(sp.solve(arg, en[0])[0]))
    edges = [0.0, *sorted(breaks), math.inf]
    out = []
    for lo, hi in itertools.pairwise(edges):
        mid = hi / 2 if lo == 0.0 else (2 * lo if hi == math.inf else (lo + hi) / 2)
        val = {h: sp.Integer(1 if float(h.args[0].subs(en[0], mid)) > 0 else 0) for h in hs}
        out.append((lo, hi, e.xreplace(val)))
    return out


def _piece_text(r: Region) -> str:
    """Card text of one region's formula; one split in E is written as Delphes cards
    write pieces, ``(energy < b) * (f1) + (energy >= b) * (f2)`` (the pieces tile E)."""
    pieces = energy_pieces(r.formula)
    if len(pieces) == 1:
        return to_tformula(_clamped(r))
    parts = []
    for lo, hi, e in pieces:
        text = to_tformula(_clamped(Region(r.eta_low, r.eta_high, r.formula.replace(e))))
        if lo == 0.0:
            cond = f"(energy < {hi!r})"
        elif hi == math.inf:
            cond = f"(energy >= {lo!r})"
        else:
            cond = f"(energy >= {lo!r} && energy < {hi!r})"
        parts.append(f"{cond} * ({text})")
    return " + ".join(parts)


def _region_texts(
    regions: Sequence[Region], *, clip01: bool = False
) -> list[tuple[float, float, str]]:
    out = []
    for r in regions:
        text = _piece_text(r)
        if clip01:
            text = f"TMath::Min(TMath::Max({text}, 0.0), 1.0)"
        out.append((r.eta_low, r.eta_high, text))
    return out


@dataclass(frozen=True)
class CardFormulas:
    """The card formula texts of one object (what Delphes evaluates).

    Example:
        >>> from ariasim.apps.collider.model import ObjectResponse, Region
        >>> from ariasim.surrogates import Formula
        >>> one = lambda text: [Region(0.0, 2.5, Formula(text, ["pt"]))]
        >>> mu = ObjectResponse("muon", "track", (13,), 2.5, efficiency=one("0.98"),
        ...                     scale=one("1.0"), resolution=one("0.01"))
        >>> print(card_formulas(mu).efficiency)
        (abs(eta) <= 2.5) * (TMath::Min(TMath::Max(0.98, 0.0), 1.0)) +
            (abs(eta) > 2.5) * (0.0)
    """

    efficiency: str
    scale: str
    resolution: str
    sigma_eta: str
    sigma_phi: str


def card_formulas(obj: ObjectResponse) -> CardFormulas:
    """Card formula texts of one object response (linted)."""
    eff = piecewise_eta(_region_texts(obj.efficiency, clip01=True), obj.eta_max)
    scale = piecewise_eta(_region_texts(obj.scale), obj.eta_max, outside="1.0")
    res = piecewise_eta(_region_texts(obj.resolution), obj.eta_max)
    module = "MomentumSmearing" if obj.kind == "track" else "EnergySmearing"
    lint_card_formula(eff, "Efficiency", eta_max=obj.eta_max)
    lint_card_formula(scale, "EnergyScale", eta_max=obj.eta_max)
    lint_card_formula(res, module, eta_max=obj.eta_max)
    return CardFormulas(
        eff, scale, res, to_tformula(sp.Float(obj.sigma_eta)), to_tformula(sp.Float(obj.sigma_phi))
    )


# --------------------------------------------------------------------------- lint


def _split_sum(node: tuple) -> list[tuple]:
    if node[0] == "bin" and node[1] == "+":
        return _split_sum(node[2]) + _split_sum(node[3])
    return [node]


def _split_product(node: tuple) -> list[tuple]:
    if node[0] == "bin" and node[1] == "*":
        return _split_product(node[2]) + _split_product(node[3])
    return [node]


def _is_condition(node: tuple) -> bool:
    return (node[0] == "bin" and node[1] in ("<", "<=", ">", ">=", "==", "!=", "&&", "||")) or (
        node[0] == "un" and node[1] == "!"
    )


def lint_card_formula(
    text: str,
    module: str,
    *,
    eta_max: float | None = None,
    pt_grid: Iterable[float] | None = None,
    energy_grid: Iterable[float] | None = None,
) -> None:
    """Raise :class:`~ariasim.export.tformula.TFormulaError` if ``text`` is wrong for ``module``.

    Checks: parses (strict: Delphes-substitution-safe identifiers, no chained ``^``),
    variables allowed for the module, piecewise terms (when every top-level term carries a
    condition) disjoint and covering |eta| in ``[0, eta_max]`` on a grid, and values in
    range: Efficiency in [0, 1]; MomentumSmearing in [0, 1); resolutions >= 0.

    Arguments:
        text: Card formula text.
        module: ``Efficiency``, ``EnergyScale``, ``MomentumSmearing``, ``EnergySmearing``,
            ``ResolutionFormula`` (calorimeter) or ``AngularSmearing``.
        eta_max: Acceptance for the coverage check (default: the largest |eta| edge found).
        pt_grid, energy_grid: Values at which to check (default log-spaced 0.5-5000 GeV).
    """
    if module not in MODULE_VARIABLES:
        raise ConfigError(f"unknown module {module!r}", parameter="module")
    expr = TFormulaExpression.from_card(text)
    extra = expr.variables - MODULE_VARIABLES[module]
    if extra:
        raise TFormulaError(
            f"{module} formula may use only {sorted(MODULE_VARIABLES[module])}, "
            f"uses {sorted(extra)}: {text!r}"
        )
    pts = np.asarray(list(pt_grid) if pt_grid is not None else np.geomspace(0.5, 5000, 41))
    ens = np.asarray(list(energy_grid) if energy_grid is not None else np.geomspace(0.5, 5000, 41))
    top = eta_max if eta_max is not None else 5.0
    etas = np.linspace(-(top + 1.0), top + 1.0, 401)
    E, P, H = np.meshgrid(ens, pts, etas, indexing="ij")
    # pt and energy independent on the grid: the checks hold for any kinematics
    terms = _split_sum(Parser(expr.text).parse())
    conds = [[f for f in _split_product(t) if _is_condition(f)] for t in terms]
    if len(terms) > 1 and all(conds):
        from ariasim.export.tformula import evaluate_ast

        env = {"x": P, "y": H, "z": np.zeros_like(P), "t": E}
        count = np.zeros(P.shape)
        with np.errstate(all="ignore"):
            for cs in conds:
                ind = np.ones(P.shape, dtype=bool)
                for c in cs:
                    ind &= np.broadcast_to(evaluate_ast(c, env), P.shape) != 0
                count += ind
        if (count > 1).any():
            k = np.argwhere(count > 1)[0]
            raise TFormulaError(
                f"{module}: piecewise terms overlap (they add) at eta = "
                f"{H[tuple(k)]:.4g}, pt = {P[tuple(k)]:.4g}, energy = "
                f"{E[tuple(k)]:.4g}: {text!r}"
            )
        if (count == 0).any():
            k = np.argwhere(count == 0)[0]
            raise TFormulaError(
                f"{module}: piecewise terms leave a gap (value 0) at eta = "
                f"{H[tuple(k)]:.4g}, pt = {P[tuple(k)]:.4g}, energy = "
                f"{E[tuple(k)]:.4g}: {text!r}"
            )
    vals = expr(P, H, 0.0, E)
    inside = np.abs(H) <= top
    v = vals[inside]
    if not np.isfinite(v).all():
        raise TFormulaError(
            f"{module}: formula is not finite everywhere in the acceptance: {text!r}"
        )
    if module == "Efficiency" and (v.min() < 0.0 or v.max() > 1.0):
        raise TFormulaError(
            f"Efficiency must be a probability in [0, 1], found values in "
            f"[{v.min():.4g}, {v.max():.4g}]: {text!r}"
        )
    if module == "MomentumSmearing" and (v.min() < 0.0 or v.max() >= 1.0):
        raise TFormulaError(
            f"MomentumSmearing takes a relative sigma(pT)/pT in [0, 1), found "
            f"values in [{v.min():.4g}, {v.max():.4g}] (Delphes caps at 1; a value "
            f"near 1 usually means an absolute resolution was given): {text!r}"
        )
    if module in ("EnergySmearing", "ResolutionFormula", "AngularSmearing") and v.min() < 0.0:
        raise TFormulaError(f"{module}: resolution must be >= 0, found {v.min():.4g}: {text!r}")
    if module == "EnergyScale" and v.min() <= 0.0:
        raise TFormulaError(f"EnergyScale must be > 0 (Delphes ignores scale <= 0): {text!r}")


# --------------------------------------------------------------------------- card


#: The module classes ariasim's cards use (:func:`lint_card` refuses any other).
CARD_MODULES = frozenset(
    {
        "ParticlePropagator",
        "PdgCodeFilter",
        "Efficiency",
        "EnergyScale",
        "MomentumSmearing",
        "EnergySmearing",
        "AngularSmearing",
        "UniqueObjectFinder",
        "TreeWriter",
    }
)
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ARRAY = r"[A-Za-z][A-Za-z0-9_]*(?:/[A-Za-z][A-Za-z0-9_]*)?"
#: One line of a module body: ``set Key value`` / ``add Key words``, value a word, a
#: number or the start of a braced formula (``{...`` possibly continued on later lines).
_BODY = re.compile(r"(set|add) [A-Za-z]+(?: (?:" + _ARRAY + r"|[-+0-9.eE]+|true|false|\{.*))*")


def card_name(name: str, *, what: str = "object name") -> str:
    r"""Return ``name`` if it can be a bare word of a card (it becomes module, array and
    branch names): an identifier that :func:`~ariasim.export.tcl_text` accepts; raise
    :class:`~ariasim.errors.ConfigError` naming ``what`` otherwise.

    Example:
        >>> card_name("charged_hadron")
        'charged_hadron'
        >>> card_name("muon}\nset ExecutionPath {")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'object name': ...contains '}'...
    """
    tcl_text(name, what=what)
    if not _IDENT.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not an identifier (a letter, then letters, digits "
            "or '_'), so it cannot be a Delphes module name",
            parameter=what,
        )
    return name


def check_field(*, radius_m: float, half_length_m: float, bz_t: float) -> None:
    """Raise :class:`~ariasim.errors.ConfigError` unless the field volume is finite and
    positive and the solenoid field finite (either sign: the field's direction).

    Example:
        >>> check_field(radius_m=1.29, half_length_m=float("inf"), bz_t=3.8)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'half_length_m': must be a finite number > 0, got inf
    """
    for name, v in (("radius_m", radius_m), ("half_length_m", half_length_m)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0.0):
            raise ConfigError(f"must be a finite number > 0, got {v}", parameter=name)
    if not (isinstance(bz_t, (int, float)) and math.isfinite(bz_t)):
        raise ConfigError(f"must be a finite number, got {bz_t}", parameter="bz_t")


def lint_card(text: str, *, standalone_modules: bool = False) -> None:
    r"""Raise :class:`~ariasim.errors.ConfigError` (``parameter='card'``, naming the line)
    unless ``text`` has exactly the structure ariasim writes.

    Checked line by line: no character Tcl gives a meaning to outside braces (``[ ] $ ; \
    "``, tab, CR) anywhere, comments included; no brace in a comment; at top level only
    comments, blank lines, one ``set ExecutionPath {...}`` (none for
    ``standalone_modules``) listing identifiers, and ``module <Type> <Name> {`` blocks
    of the known types (:data:`CARD_MODULES`) with unique identifier names; in a block
    only ``set``/``add`` lines, comments and braced formulas; braces balanced; the
    execution path lists exactly the defined modules. An injected ``proc``, ``while``,
    a second ``ExecutionPath`` or any command of another shape is refused.

    Example:
        >>> card = "set ExecutionPath {\n  A\n}\nmodule Efficiency A {\n}\nproc x {} {}\n"
        >>> lint_card(card)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'card': line 6: unexpected top-level command ...
    """

    def fail(n: int, msg: str) -> ConfigError:
        return ConfigError(f"line {n}: {msg}", parameter="card")

    paths: list[list[str]] = []
    defined: list[str] = []
    state, depth, start = "top", 0, 0
    for n, line in enumerate(text.split("\n"), 1):
        bad = next((c for c in '[]$;\\"\t\r\x00' if c in line), None)
        if bad is not None:
            raise fail(n, f"character {bad!r} is not allowed in a card")
        s = line.strip()
        if s.startswith("#") and depth <= 1:
            if "{" in s or "}" in s:
                raise fail(n, "a comment may not hold braces")
            continue
        if state == "top":
            if not s:
                continue
            if s == "set ExecutionPath {":
                state, start = "path", n
                paths.append([])
                continue
            m = re.fullmatch(r"module (\w+) (\w+) \{", s)
            if m is None:
                raise fail(n, f"unexpected top-level command {s[:60]!r}")
            if m.group(1) not in CARD_MODULES:
                raise fail(n, f"unknown module type {m.group(1)!r}")
            if not _IDENT.fullmatch(m.group(2)) or m.group(2) in defined:
                raise fail(n, f"module name {m.group(2)!r} is not a new identifier")
            defined.append(m.group(2))
            state, depth, start = "module", 1, n
        elif state == "path":
            if s == "}":
                state = "top"
            elif _IDENT.fullmatch(s):
                paths[-1].append(s)
            elif s:
                raise fail(n, f"execution path entry {s[:60]!r} is not a module name")
        else:  # module body
            if depth == 1 and s == "}":
                state, depth = "top", 0
                continue
            if depth == 1 and s and not _BODY.fullmatch(s):
                raise fail(n, f"unexpected line in a module block: {s[:60]!r}")
            depth += s.count("{") - s.count("}")
            if depth < 1:
                raise fail(n, "unbalanced braces")
    if state != "top":
        raise fail(start, "block not closed")
    if len(paths) != (0 if standalone_modules else 1):
        raise fail(
            0, f"{len(paths)} ExecutionPath settings, expected {0 if standalone_modules else 1}"
        )
    if paths and paths[0] != defined:
        raise fail(
            0,
            f"the execution path {paths[0]} does not list exactly the modules "
            f"defined, in order ({defined})",
        )


@dataclass
class Module:
    """One Delphes module block.

    Arguments:
        type: Module class (``Efficiency``...).
        name: Instance name.
        lines: Body lines (``set Key value`` / ``add Key ...``).
        comment: Banner text.

    Example:
        >>> Module("Efficiency", "MuonEfficiency", ["set EfficiencyFormula {0.98}"]).name
        'MuonEfficiency'
    """

    type: str
    name: str
    lines: list[str] = field(default_factory=list)
    comment: str = ""

    def render(self) -> str:
        head = ""
        if self.comment:
            bar = "#" * (len(self.comment) + 2)
            head = f"{bar}\n# {self.comment}\n{bar}\n\n"
        body = "\n".join(f"  {ln}" if ln else "" for ln in self.lines)
        return f"{head}module {self.type} {self.name} {{\n{body}\n}}\n"


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


#: Prefix of every per-object module name. Delphes' stock cards use names such as
#: ``MuonEfficiency`` and ``ElectronEnergySmearing``; a second module of the same name only
#: gets the warning "already configured, only first entry used" while its later ``set``
#: lines overwrite the first one's settings, so spliced ``--modules-out`` blocks must not
#: reuse them.
MODULE_PREFIX = "Ariasim"


def _module_prefix(name: str) -> str:
    """``AriasimMuon`` for ``muon``: the stem of one object's module names."""
    return MODULE_PREFIX + _camel(name)


def _source_array(obj: ObjectResponse) -> tuple[str, Module | None]:
    """The ParticlePropagator output holding this object's truth particles."""
    pdg = set(obj.pdg)
    if pdg == {13}:
        return "ParticlePropagator/muons", None
    if pdg == {11}:
        return "ParticlePropagator/electrons", None
    if obj.kind == "track" and not pdg & {11, 13, 22}:
        return "ParticlePropagator/chargedHadrons", None
    name = f"{_module_prefix(obj.name)}Filter"
    lines = [
        "set InputArray ParticlePropagator/stableParticles",
        f"set OutputArray {obj.name}s",
        "",
        "# keep only these PDG codes",
        "set Invert true",
        "set PTMin 0.0",
    ]
    for p in sorted(pdg):
        lines += [f"add PdgCode {{{p}}}", f"add PdgCode {{{-p}}}"]
    return f"{name}/{obj.name}s", Module(
        "PdgCodeFilter",
        name,
        lines,
        f"{obj.name} filter (truth PDG codes {', '.join(map(str, sorted(pdg)))})",
    )


def _formula_lines(key: str, text: str) -> list[str]:
    rows = text.split("\n")
    if len(rows) == 1:
        return [f"set {key} {{{text}}}"]
    return [f"set {key} {{{rows[0]}", *[f"  {b}" for b in rows[1:-1]], f"  {rows[-1]}}}"]


def module_blocks(obj: ObjectResponse) -> tuple[list[Module], str]:
    """The module chain of one object and the name of its final output array."""
    card_name(obj.name)
    f = card_formulas(obj)
    cname = _module_prefix(obj.name)
    arr = f"{obj.name}s"
    src, filt = _source_array(obj)
    mods: list[Module] = [filt] if filt else []
    method = tcl_comment(str(obj.metadata.get("method", "ariasim")))[2:]
    mods.append(
        Module(
            "Efficiency",
            f"{cname}Efficiency",
            [
                f"set InputArray {src}",
                f"set OutputArray {arr}",
                "set UseMomentumVector true",
                "",
                f"# probability to reconstruct and identify a truth {obj.name} ({method}), of "
                f"truth pt, eta",
                *_formula_lines("EfficiencyFormula", f.efficiency),
            ],
            f"{obj.name} efficiency",
        )
    )
    mods.append(
        Module(
            "EnergyScale",
            f"{cname}EnergyScale",
            [
                f"set InputArray {cname}Efficiency/{arr}",
                f"set OutputArray {arr}",
                "",
                "# mean response reco/truth (scales the four-momentum)",
                *_formula_lines("ScaleFormula", f.scale),
            ],
            f"{obj.name} response scale",
        )
    )
    if obj.kind == "track":
        mods.append(
            Module(
                "MomentumSmearing",
                f"{cname}MomentumSmearing",
                [
                    f"set InputArray {cname}EnergyScale/{arr}",
                    f"set OutputArray {arr}",
                    "set UseMomentumVector true",
                    "",
                    "# relative sigma(pT)/pT of the log-normal pT smearing, of pt and eta",
                    *_formula_lines("ResolutionFormula", f.resolution),
                ],
                f"{obj.name} momentum resolution",
            )
        )
        last = f"{cname}MomentumSmearing"
    else:
        mods.append(
            Module(
                "EnergySmearing",
                f"{cname}EnergySmearing",
                [
                    f"set InputArray {cname}EnergyScale/{arr}",
                    f"set OutputArray {arr}",
                    "",
                    "# absolute sigma(E) in GeV of the Gaussian energy smearing, of eta and energy",
                    *_formula_lines("ResolutionFormula", f.resolution),
                ],
                f"{obj.name} energy resolution",
            )
        )
        last = f"{cname}EnergySmearing"
    mods.append(
        Module(
            "AngularSmearing",
            f"{cname}AngularSmearing",
            [
                f"set InputArray {last}/{arr}",
                f"set OutputArray {arr}",
                "",
                "# absolute Gaussian eta and phi resolutions",
                f"set EtaResolutionFormula {{{f.sigma_eta}}}",
                f"set PhiResolutionFormula {{{f.sigma_phi}}}",
            ],
            f"{obj.name} angular resolution",
        )
    )
    return mods, f"{cname}AngularSmearing/{arr}"


_BRANCH = {
    "muon": ("Muon", "Muon"),
    "electron": ("Electron", "Electron"),
    "photon": ("Photon", "Photon"),
    "charged_hadron": ("ChargedHadron", "Track"),
    "neutral_hadron": ("NeutralHadron", "Tower"),
}


def card_text(
    response: ResponseModel,
    *,
    radius_m: float = 1.29,
    half_length_m: float = 3.0,
    bz_t: float = 3.8,
    standalone_modules: bool = False,
) -> str:
    """A complete Delphes card (or, with ``standalone_modules``, only the object modules).

    Arguments:
        response: The response model.
        radius_m, half_length_m, bz_t: ParticlePropagator's field volume and field.
        standalone_modules: Return only the per-object module blocks (for splicing).
    """
    if not response.objects:
        raise ConfigError("response model has no objects", parameter="response")
    check_field(radius_m=radius_m, half_length_m=half_length_m, bz_t=bz_t)
    blocks: list[Module] = []
    finals: dict[str, str] = {}
    for name, obj in response.objects.items():
        mods, final = module_blocks(obj)
        blocks += mods
        finals[name] = final
    header = (
        "# Delphes card written by ariasim from a learned detector response\n"
        f"{tcl_comment('provenance: ' + str(response.metadata.get('source', 'n/a')))}\n"
        "# formulas: learned from the ariasim full simulation, checked by ariasim's TFormula\n"
        "# evaluator (and by ROOT when available), in the variables pt, eta, phi, energy only.\n"
    )
    if standalone_modules:
        text = header + "\n" + "\n".join(m.render() for m in blocks)
        lint_card(text, standalone_modules=True)
        return text
    prop = Module(
        "ParticlePropagator",
        "ParticlePropagator",
        [
            "set InputArray Delphes/stableParticles",
            "",
            "set OutputArray stableParticles",
            "set ChargedHadronOutputArray chargedHadrons",
            "set ElectronOutputArray electrons",
            "set MuonOutputArray muons",
            "",
            "# radius of the magnetic field coverage, in m",
            f"set Radius {radius_m!r}",
            "# half-length of the magnetic field coverage, in m",
            f"set HalfLength {half_length_m!r}",
            "",
            "# magnetic field",
            f"set Bz {bz_t!r}",
        ],
        "Propagate particles in cylinder",
    )
    unique = [n for n in ("photon", "electron", "muon") if n in finals]
    uof = (
        Module(
            "UniqueObjectFinder",
            "UniqueObjectFinder",
            [
                "# earlier arrays take precedence over later ones",
                *[f"add InputArray {finals[n]} {n}s" for n in unique],
            ],
            "Find uniquely identified photons/electrons/muons",
        )
        if unique
        else None
    )
    tw_lines = [
        "# add Branch InputArray BranchName BranchClass",
        "add Branch Delphes/allParticles Particle GenParticle",
    ]
    for name in finals:
        branch, cls = _BRANCH.get(name, (_camel(name), "Candidate"))
        src = f"UniqueObjectFinder/{name}s" if name in unique else finals[name]
        tw_lines.append(f"add Branch {src} {branch} {cls}")
    tw = Module("TreeWriter", "TreeWriter", tw_lines, "ROOT tree writer")
    order = [prop, *blocks, *([uof] if uof else []), tw]
    path = "\n".join(f"  {m.name}" for m in order)
    text = (
        header + "\n#######################################\n"
        "# Order of execution of various modules\n"
        "#######################################\n\n"
        f"set ExecutionPath {{\n{path}\n}}\n\n" + "\n".join(m.render() for m in order)
    )
    lint_card(text)
    return text


def write_delphes_card(
    response: ResponseModel,
    path: str | os.PathLike[str],
    *,
    modules_path: str | os.PathLike[str] | None = None,
    radius_m: float = 1.29,
    half_length_m: float = 3.0,
    bz_t: float = 3.8,
) -> Path:
    """Write the complete card to ``path`` (and the module blocks to ``modules_path``),
    atomically. The field volume and solenoid field are those of :func:`card_text`."""
    text = card_text(response, radius_m=radius_m, half_length_m=half_length_m, bz_t=bz_t)
    mods = (
        card_text(
            response,
            radius_m=radius_m,
            half_length_m=half_length_m,
            bz_t=bz_t,
            standalone_modules=True,
        )
        if modules_path
        else None
    )
    with contextlib.ExitStack() as stack:  # both files or neither
        tmp = stack.enter_context(atomic_path(path))
        if modules_path is not None and mods is not None:
            stack.enter_context(atomic_path(modules_path)).write_text(mods)
        tmp.write_text(text)
    return Path(path)
