"""Bad input to ``ariasim export delphes``: a clean one-line error naming the flag, file or
field, exit status 2, no card written, inputs untouched (issue 10).

The worst defect of the issue was card injection: names and free text copied unescaped from
the response JSON into the Tcl card, where a newline starts a new card command. Names must
now be identifiers (refused otherwise, naming the field); free text goes into comments with
Tcl's special characters replaced; and the finished card is linted for its structure.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ariasim.apps.collider.delphes import lint_card
from badinput import Case, check_case, make_folder
from test_delphes import toy_model

INJECT = "muon\nset ExecutionPath {}\nproc exit {} {}\nwhile {1} {}"


def _base() -> dict[str, Any]:
    return toy_model().to_dict()


def _model(change: Callable[[dict[str, Any]], None] | None = None, name: str = "r.json"):
    """Setup writing the toy model's JSON, changed by ``change`` (in place)."""

    def setup(tmp: Path) -> None:
        d = copy.deepcopy(_base())
        if change is not None:
            change(d)
        (tmp / name).write_text(json.dumps(d))  # allow_nan: NaN/Infinity as Python writes

    return setup


def _text(content: str, name: str = "r.json"):
    def setup(tmp: Path) -> None:
        _model()(tmp)
        (tmp / name).write_text(content)

    return setup


def _set(path: str, value: Any):
    """Change the value at a dotted path (``objects.muon.efficiency.0.eta_low``)."""

    def change(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = d
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _rekey(old: str, new: str):
    def change(d: dict[str, Any]) -> None:
        d["objects"][new] = d["objects"].pop(old)

    return change


def _bytes(content: bytes, name: str = "r.json"):
    def setup(tmp: Path) -> None:
        _model()(tmp)
        (tmp / name).write_bytes(content)

    return setup


def _truncated(tmp: Path) -> None:
    _model()(tmp)
    text = (tmp / "r.json").read_text()
    (tmp / "r.json").write_text(text[: len(text) // 2])


def _folder(name: str):
    return make_folder(name, base=_model())


def _file(name: str):
    def setup(tmp: Path) -> None:
        _model()(tmp)
        (tmp / name).write_text("x")

    return setup


EX = ("export", "delphes", "r.json", "--out", "c.tcl", "--modules-out", "m.tcl")
OUT = ("c.tcl", "m.tcl")
MU = "objects.muon"
EFF0 = f"{MU}.efficiency.0"


def _c(id: str, change, expect: str, argv=EX) -> Case:
    return Case(id, argv, expect, setup=_model(change), outputs=OUT)


CASES = [
    # injection through names copied into the card as bare words
    _c("name-injection", _set(f"{MU}.name", INJECT), f"{MU}.name"),
    _c("name-with-brace", _set(f"{MU}.name", "muon}"), f"{MU}.name"),
    _c("name-with-bracket", _set(f"{MU}.name", "mu[exec ls]"), f"{MU}.name"),
    _c("name-with-dollar", _set(f"{MU}.name", "mu$x"), f"{MU}.name"),
    _c("name-with-space", _set(f"{MU}.name", "mu on"), f"{MU}.name"),
    _c("key-injection", _rekey("muon", INJECT), ".name"),
    _c("name-not-key", _rekey("muon", "electron"), "objects.electron.name"),
    _c(
        "name-unknown",
        lambda d: (_rekey("muon", "tau")(d), _set("objects.tau.name", "tau")(d)),
        "objects.tau.name",
    ),
    _c("name-not-text", _set(f"{MU}.name", 13), f"{MU}.name"),
    # the file: malformed JSON, wrong schema, wrong types
    Case(
        "missing-file",
        ("export", "delphes", "none.json", "--out", "c.tcl"),
        "none.json",
        setup=_model(),
        outputs=OUT,
    ),
    Case("truncated-json", EX, "r.json", setup=_truncated, outputs=OUT),
    Case("deep-json", EX, "r.json", setup=_text("[" * 100_000 + "]" * 100_000), outputs=OUT),
    Case(
        "deep-json-object",
        EX,
        "r.json",
        setup=_text('{"a":' * 100_000 + "1" + "}" * 100_000),
        outputs=OUT,
    ),
    Case("empty-file", EX, "r.json", setup=_text(""), outputs=OUT),
    Case("json-list", EX, "r.json", setup=_text("[1, 2]"), outputs=OUT),
    Case("not-utf8", EX, "r.json", setup=_bytes(b"\xff\xfe{}"), outputs=OUT),
    Case("empty-object", EX, "r.json", setup=_text("{}"), outputs=OUT),
    _c("wrong-schema", _set("schema", "ariasim.formula/1"), "r.json"),
    _c("objects-empty", _set("objects", {}), "objects"),
    _c("objects-list", _set("objects", []), "objects"),
    _c("object-not-mapping", _set("objects.muon", "muon"), "objects.muon"),
    _c("metadata-list", _set("metadata", [1]), "metadata"),
    _c("kind-unknown", _set(f"{MU}.kind", "quark"), f"{MU}.kind"),
    _c("pdg-text", _set(f"{MU}.pdg", ["13"]), f"{MU}.pdg"),
    _c("pdg-empty", _set(f"{MU}.pdg", []), f"{MU}.pdg"),
    _c("pdg-zero", _set(f"{MU}.pdg", [0]), f"{MU}.pdg"),
    _c("regions-empty", _set(f"{MU}.scale", []), f"{MU}.scale"),
    _c("region-not-mapping", _set(f"{MU}.scale.0", 1.0), f"{MU}.scale[0]"),
    _c(
        "region-lacks-formula",
        lambda d: d["objects"]["muon"]["scale"][0].pop("formula"),
        f"{MU}.scale[0]",
    ),
    _c("lacks-eta-max", lambda d: d["objects"]["muon"].pop("eta_max"), MU),
    # numbers: NaN, inf, negative, absurd, wrong type
    _c("eta-max-nan", _set(f"{MU}.eta_max", float("nan")), f"{MU}.eta_max"),
    _c("eta-max-negative", _set(f"{MU}.eta_max", -2.4), f"{MU}.eta_max"),
    _c("eta-max-huge", _set(f"{MU}.eta_max", 1e9), f"{MU}.eta_max"),
    _c("eta-max-text", _set(f"{MU}.eta_max", "2.4"), f"{MU}.eta_max"),
    _c("eta-max-bool", _set(f"{MU}.eta_max", True), f"{MU}.eta_max"),
    _c("sigma-eta-negative", _set(f"{MU}.sigma_eta", -3e-4), f"{MU}.sigma_eta"),
    _c("sigma-eta-nan", _set(f"{MU}.sigma_eta", float("nan")), f"{MU}.sigma_eta"),
    _c("sigma-phi-inf", _set(f"{MU}.sigma_phi", float("inf")), f"{MU}.sigma_phi"),
    _c("sigma-phi-text", _set(f"{MU}.sigma_phi", "x"), f"{MU}.sigma_phi"),
    _c("mass-negative", _set(f"{MU}.mass_gev", -0.1), f"{MU}.mass_gev"),
    _c("mass-inf", _set(f"{MU}.mass_gev", float("inf")), f"{MU}.mass_gev"),
    _c("eta-low-nan", _set(f"{EFF0}.eta_low", float("nan")), f"{MU}.efficiency[0].eta_low"),
    _c("eta-high-inf", _set(f"{EFF0}.eta_high", float("inf")), f"{MU}.efficiency[0].eta_high"),
    _c("eta-low-negative", _set(f"{EFF0}.eta_low", -1.0), f"{MU}.efficiency[0].eta_low"),
    _c("regions-overlap", _set(f"{EFF0}.eta_high", 1.5), f"{MU}.efficiency"),
    _c("regions-gap", _set(f"{EFF0}.eta_high", 1.0), f"{MU}.efficiency"),
    # formulas: hang the parser, unknown variables, not a formula
    _c("formula-tower", _set(f"{EFF0}.formula.expression", "9^9^9"), f"{MU}.efficiency[0].formula"),
    _c(
        "formula-gamma",
        _set(f"{EFF0}.formula.expression", "gamma(100000000)"),
        f"{MU}.efficiency[0].formula",
    ),
    _c(
        "formula-deep",
        _set(f"{EFF0}.formula.expression", "(" * 5000 + "pt" + ")" * 5000),
        f"{MU}.efficiency[0].formula",
    ),
    _c(
        "formula-huge-number",
        _set(f"{EFF0}.formula.expression", "1" * 5000),
        f"{MU}.efficiency[0].formula",
    ),
    _c(
        "formula-injection",
        _set(f"{EFF0}.formula.expression", "pt}\nset ExecutionPath {"),
        f"{MU}.efficiency[0].formula",
    ),
    _c("formula-not-mapping", _set(f"{EFF0}.formula", "pt"), f"{MU}.efficiency[0].formula"),
    _c(
        "formula-other-variable",
        _set(f"{EFF0}.formula.variables.1.name", "phi"),
        f"{MU}.efficiency",
    ),
    _c(
        "formula-bound-nan",
        _set(f"{EFF0}.formula.variables.0.low", float("nan")),
        f"{MU}.efficiency[0].formula",
    ),
    # flags: field volume and field
    _c("bz-nan", None, "--bz", (*EX, "--bz", "nan")),
    _c("bz-inf", None, "--bz", (*EX, "--bz", "inf")),
    _c("radius-zero", None, "--radius", (*EX, "--radius", "0")),
    _c("radius-negative", None, "--radius", (*EX, "--radius", "-1.29")),
    _c("radius-nan", None, "--radius", (*EX, "--radius", "nan")),
    _c("half-length-inf", None, "--half-length", (*EX, "--half-length", "inf")),
    _c("half-length-negative", None, "--half-length", (*EX, "--half-length", "-3")),
    # outputs, checked before reading the model
    _c("out-suffix", None, "--out", ("export", "delphes", "r.json", "--out", "c.txt")),
    _c("modules-out-suffix", None, "--modules-out", (*EX[:5], "--modules-out", "m.txt")),
    _c(
        "out-json-suffix",
        None,
        "--out",
        ("export", "delphes", "r.json", "--out", "r.json", "--overwrite"),
    ),
    Case(
        "out-equals-input",
        ("export", "delphes", "r.tcl", "--out", "r.tcl", "--overwrite"),
        "is also the input",
        setup=_model(name="r.tcl"),
    ),
    _c(
        "out-equals-modules-out",
        None,
        "--modules-out",
        ("export", "delphes", "r.json", "--out", "c.tcl", "--modules-out", "c.tcl"),
    ),
    Case("out-exists", EX, "--overwrite", setup=_file("c.tcl"), outputs=("m.tcl",)),
    Case("modules-out-exists", EX, "--overwrite", setup=_file("m.tcl"), outputs=("c.tcl",)),
    Case("out-is-folder", EX, "folder", setup=_folder("c.tcl"), outputs=("m.tcl",)),
    Case(
        "out-under-a-file",
        ("export", "delphes", "r.json", "--out", "f.txt/c.tcl"),
        "f.txt",
        setup=_file("f.txt"),
    ),
    # a bad model with bad outputs: the outputs are named first (checked before any work)
    Case(
        "outputs-before-model",
        ("export", "delphes", "r.json", "--out", "c.txt"),
        "--out",
        setup=_text("{"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)


# --------------------------------------------------------------------------- free text


def _run(argv: list[str], tmp: Path) -> int:
    import contextlib
    import io
    import os

    from ariasim.cli import main

    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                main(argv)
            except SystemExit as exc:
                return int(exc.code or 0)
        return 0
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(
    "where", ["metadata.source", "objects.muon.metadata.method", "objects.photon.metadata.method"]
)
def test_free_text_cannot_inject(where: str, tmp_path: Path) -> None:
    """Injected free text (provenance, method) stays in one comment line: the card has one
    ExecutionPath, no ``proc`` or ``while`` command, and passes the structure lint."""
    evil = "toy\nset ExecutionPath {}\nproc exit {} {}\nwhile {1} {}; [exec rm -rf /] $env"
    _model(_set(where, evil))(tmp_path)
    assert (
        _run(["export", "delphes", "r.json", "--out", "c.tcl", "--modules-out", "m.tcl"], tmp_path)
        == 0
    )
    for name, standalone in (("c.tcl", False), ("m.tcl", True)):
        text = (tmp_path / name).read_text()
        lint_card(text, standalone_modules=standalone)
        commands = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        assert sum("ExecutionPath" in ln for ln in commands) == (0 if standalone else 1)
        assert not re.search(r"^\s*(proc|while|set ExecutionPath \{\})", text, re.M)
        for ch in "[]$;":
            assert ch not in text
        # the text is kept, made harmless, on a comment line
        line = next(ln for ln in text.splitlines() if "toy?set ExecutionPath" in ln)
        assert line.lstrip().startswith("#")


def test_card_lint_catches_injected_lines() -> None:
    """Had an injected line got through, ariasim's own card check would refuse the card."""
    from ariasim.apps.collider.delphes import card_text
    from ariasim.errors import ConfigError

    good = card_text(toy_model())
    lint_card(good)
    head, sep, tail = good.partition("\nmodule ParticlePropagator")
    assert sep
    for injected in (
        "set ExecutionPath {}",
        "proc exit {} {}",
        "while {1} {}",
        "module Efficiency MuonEfficiency {\n}",
        "module Exec X {\n}",
        "# a comment {",
        "set Bz 3.8",
        "puts hello",
        "source evil.tcl",
    ):
        with pytest.raises(ConfigError, match="line"):
            lint_card(head + "\n" + injected + sep + tail)
    # inside a module block: a command other than set/add, a bracket, a variable
    for injected in (
        "  exec rm -rf /",
        "  set Radius [exec ls]",
        "  set Bz $x",
        "  }\nset ExecutionPath {",
    ):
        text = good.replace("  set Bz 3.8", "  set Bz 3.8\n" + injected)
        with pytest.raises(ConfigError):
            lint_card(text)
    # the execution path must list exactly the modules defined
    with pytest.raises(ConfigError, match="execution path"):
        lint_card(good.replace("  TreeWriter\n}", "}"))
