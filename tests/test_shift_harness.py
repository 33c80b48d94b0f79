"""The injected-shift harness with the real learners at CI size (issue 12: AUC <= 0.55 after
the correction at CI sizes, closure learned as no shift, event-wise recovery of invertible
distortions). The toy has what physics tables have: a skewed positive feature whose scale
depends on a context variable, a Gaussian feature and an integer count."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from ariasim.shift import ClassifierReweighter, FlowMorpher
from ariasim.shift.inject import ContextShift, Correlated, Offset, Scale, validate

N_ROWS = 6000  # three parts of 2000: source, target to learn from, fresh target to judge on


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    # the toy of examples/shift_toy.py (what users run `ariasim shift validate` on)
    path = Path(__file__).resolve().parents[1] / "examples" / "shift_toy.py"
    spec = importlib.util.spec_from_file_location("shift_toy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_table(N_ROWS, seed=0)


def test_flow_morpher_undoes_every_default_distortion(table: pd.DataFrame) -> None:
    # Event-wise bound: the goal is a correction event by event; 0.25 standard
    # deviations is half the size of the injected offsets (0.5 sd), i.e. the morph must put
    # each event nearer to its true image than the distortion moved it. (The exact
    # empirical map already errs by ~1.8/sqrt(n) = 0.04 sd; the flow's smooth fit adds
    # ~0.1 sd at 2000 events per side.)
    result = validate(FlowMorpher, table, ["e", "x", "k"], ["c"], image_max=0.25, seed=1)
    names = [c.name for c in result.cases]
    assert names[0] == "closure" and len(names) == 7
    for case in result.cases:
        # every distortion is visible before (the harness's own z), and undone after
        if case.name != "closure":
            assert case.shift_z > 5, case.name
        assert case.passed, (case.name, case.failures)
    closure = result["closure"]
    # closure: a shift between two samples of one distribution is learned as none
    assert max(closure.displacement.values()) < 0.25


def test_reweighter_on_distortions_that_keep_the_support(table: pd.DataFrame) -> None:
    # Reweighting cannot create events where the source has none (a stretched tail); the
    # distortions here keep the support, where it must pass (the sinh stretch fails it:
    # see BENCHMARKS.md)
    distortions = [
        Scale("e", 1.2),
        Offset("x", 0.5),
        Correlated(("x", "k"), rho=0.5, loc=(0.0, 3.0), scale=(1.0, 1.7)),
        ContextShift("x", "c", slope=1.0, center=0.5),
    ]
    result = validate(ClassifierReweighter, table, ["e", "x", "k"], ["c"], distortions, seed=2)
    for case in result.cases:
        assert case.passed, (case.name, case.failures)
        if case.name != "closure":
            assert 0.2 < case.ess_fraction <= 1.0
