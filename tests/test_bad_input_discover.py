"""Bad input to ``ariasim discover``: a clean one-line error naming the flag, the TOML key or
the observation file and column, exit status 2, no output folder left behind, inputs
untouched (the harness of :mod:`badinput`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from badinput import Case, check_case, scale_out_cases, write_file

TOML = """
[simulator]
n_cells = 100
[observations]
front = "front.csv"
sigma_front_m = 1.0
[terms.coulomb]
high = 0.7
[budget]
initial = 8
max_runs = 12
[mcmc]
walkers = 8
steps = 50
"""
FRONT = "t_s,front_m\n2,28.5\n4,47.0\n6,66.1\n"


def _valid(tmp: Path) -> None:
    (tmp / "cfg.toml").write_text(TOML)
    (tmp / "front.csv").write_text(FRONT)


def _toml(text: str) -> object:
    return write_file("cfg.toml", text, base=_valid)


def _front(text: str) -> object:
    return write_file("front.csv", text, base=_valid)


RUN = ["discover", "--config", "{tmp}/cfg.toml", "--out", "{tmp}/out", "--quiet"]
NO_OUT = ("out", "s.json")

CASES = [
    Case("config-missing", [*RUN[:2], "{tmp}/nope.toml", *RUN[3:]], "nope.toml", setup=_valid),
    Case("config-not-toml", RUN, "cfg.toml", setup=_toml("[simulator\n")),
    Case("config-folder", [*RUN[:2], "{tmp}", *RUN[3:]], "folder", setup=_valid),
    Case("unknown-table", RUN, "bogus", setup=_toml(TOML + "[bogus]\nx = 1\n")),
    Case("unknown-top-key", RUN, "seeed", setup=_toml("seeed = 1\n" + TOML)),
    Case(
        "simulator-unknown-key",
        RUN,
        "simulator.n_cels",
        setup=_toml(TOML.replace("n_cells", "n_cels")),
    ),
    Case(
        "simulator-friction",
        RUN,
        "simulator.friction",
        setup=_toml(TOML.replace("[simulator]", "[simulator]\nfriction = {mu = 0.3}")),
    ),
    Case(
        "simulator-bad-value",
        RUN,
        "simulator.n_cells",
        setup=_toml(TOML.replace("n_cells = 100", "n_cells = 3")),
    ),
    Case("term-unknown", RUN, "terms.drag", setup=_toml(TOML + "[terms.drag]\nhigh = 1.0\n")),
    Case(
        "term-no-high",
        RUN,
        "terms.coulomb.high",
        setup=_toml(TOML.replace("high = 0.7", "low = 0.1")),
    ),
    Case(
        "term-high-negative",
        RUN,
        "terms.coulomb.high",
        setup=_toml(TOML.replace("high = 0.7", "high = -0.7")),
    ),
    Case(
        "term-inclusion-bad",
        RUN,
        "terms.coulomb.inclusion",
        setup=_toml(TOML.replace("high = 0.7", "high = 0.7\ninclusion = 2")),
    ),
    Case(
        "design-bad",
        RUN,
        "budget.design",
        setup=_toml(TOML.replace("[budget]", '[budget]\ndesign = "grid"')),
    ),
    Case(
        "max-runs-below-initial",
        RUN,
        "budget.max_runs",
        setup=_toml(TOML.replace("max_runs = 12", "max_runs = 5")),
    ),
    Case(
        "walkers-text",
        RUN,
        "mcmc.walkers",
        setup=_toml(TOML.replace("walkers = 8", 'walkers = "many"')),
    ),
    Case(
        "cascade-bad",
        RUN,
        "cascade.moments",
        setup=_toml(TOML + "[cascade]\nmoments = [0, 9]\n"),
    ),
    Case("truth-unknown", RUN, "truth.phi", setup=_toml(TOML + "[truth]\nphi = 0.3\n")),
    Case(
        "truth-not-candidate",
        RUN,
        "truth.xi",
        setup=_toml(TOML + "[truth]\ncoulomb = 0.3\nxi = 400.0\n"),
    ),
    Case(
        "no-observations",
        RUN,
        "observations.front",
        setup=_toml(TOML.replace('front = "front.csv"\n', "")),
    ),
    Case(
        "front-file-missing",
        RUN,
        "front2.csv",
        setup=_toml(TOML.replace('"front.csv"', '"front2.csv"')),
    ),
    Case("front-column-missing", RUN, "column 'front_m'", setup=_front("t_s,x\n2,3\n")),
    Case(
        "front-column-unknown", RUN, "column 'sigma'", setup=_front("t_s,front_m,sigma\n2,28,1\n")
    ),
    Case("front-not-number", RUN, "column 'front_m'", setup=_front("t_s,front_m\n2,far\n")),
    Case("front-nan", RUN, "column 'front_m'", setup=_front("t_s,front_m\n2,nan\n")),
    Case(
        "front-times-decreasing",
        RUN,
        "column 't_s'",
        setup=_front("t_s,front_m\n4,47\n2,28\n"),
    ),
    Case(
        "front-sigma-negative",
        RUN,
        "column 'sigma_m'",
        setup=_front("t_s,front_m,sigma_m\n2,28,-1\n"),
    ),
    Case(
        "front-no-sigma",
        RUN,
        "observations.sigma_front_m",
        setup=_toml(TOML.replace("sigma_front_m = 1.0\n", "")),
    ),
    Case("front-empty", RUN, "front.csv", setup=_front("")),
    Case(
        "out-is-file",
        [*RUN[:3], "--out", "{tmp}/f.txt", "--quiet"],
        "--out",
        setup=write_file("f.txt", "keep", base=_valid),
    ),
    Case("json-suffix", [*RUN, "--json", "{tmp}/s.txt"], "--json", setup=_valid),
    Case("json-is-config", [*RUN, "--json", "{tmp}/cfg.toml"], "--json", setup=_valid),
    Case(
        "json-exists",
        [*RUN, "--json", "{tmp}/s.json"],
        "--json",
        setup=write_file("s.json", "{}", base=_valid),
    ),
    Case("json-is-folder", [*RUN, "--json", "{tmp}"], "--json", setup=_valid),
    *[replace(c, setup=_valid) for c in scale_out_cases(lambda *f: [*RUN, *f], NO_OUT)],
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    check_case(replace(case, outputs=NO_OUT), tmp_path)
