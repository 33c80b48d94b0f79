"""Bad input to ``ariasim shift fit | apply | validate``: a clean one-line error naming the
flag, file or column, exit status 2, no model, table or report left behind, inputs untouched
(the harness of :mod:`badinput`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from badinput import Case, check_case, make_folder, write_file


def _tables(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    for name, mu in (("src", 0.0), ("tgt", 0.3)):
        n = 200
        pd.DataFrame(
            {
                "x": rng.normal(mu, 1.0, n),
                "e": rng.exponential(1.0, n),
                "c": rng.uniform(0, 1, n),
                "s": ["a"] * n,
                "wneg": np.r_[-1.0, np.ones(n - 1)],
                "nanx": np.r_[np.nan, np.ones(n - 1)],
            }
        ).to_parquet(tmp / f"{name}.parquet")
    pd.DataFrame({"x": [1.0] * 5, "e": [1.0] * 5, "c": [0.5] * 5}).to_parquet(tmp / "tiny.parquet")


def _model(tmp: Path) -> None:
    from ariasim.shift import ClassifierReweighter, stack

    _tables(tmp)
    s, t = pd.read_parquet(tmp / "src.parquet"), pd.read_parquet(tmp / "tgt.parquet")
    X, y, _ = stack(s[["x", "e"]], t[["x", "e"]])
    ClassifierReweighter(n_estimators=5).fit(X, y).save(tmp / "model")


FIT = ["shift", "fit", "{tmp}/src.parquet", "{tmp}/tgt.parquet", "--out", "{tmp}/m"]
FITR = [*FIT, "--method", "reweight", "--features", "x,e"]
APPLY = ["shift", "apply", "{tmp}/model", "{tmp}/src.parquet", "--out", "{tmp}/out.parquet"]
VAL = ["shift", "validate", "{tmp}/src.parquet", "--out", "{tmp}/v", "--features", "x,e"]
DEMO = ["shift", "demo", "detector", "--out", "{tmp}/d"]
NO_OUT = ("m", "out.parquet", "v", "d")

CASES = [
    Case(
        "fit-source-missing",
        [*FITR[:2], "{tmp}/nope.parquet", *FITR[3:]],
        "nope.parquet",
        setup=_tables,
    ),
    Case("fit-feature-unknown", [*FIT, "--features", "x,zz"], "zz", setup=_tables),
    Case(
        "fit-feature-text",
        [*FIT, "--method", "reweight", "--features", "x,s"],
        "'s'",
        setup=_tables,
    ),
    Case("fit-context-unknown", [*FITR, "--context", "cc"], "cc", setup=_tables),
    Case("fit-method-bad", [*FIT, "--method", "magic"], "--method", setup=_tables),
    Case("fit-epochs-reweight", [*FITR, "--epochs", "3"], "--epochs", setup=_tables),
    Case("fit-epochs-zero", [*FIT, "--epochs", "0"], "--epochs", setup=_tables),
    Case("fit-device-bad", [*FIT, "--device", "tpu"], "--device", setup=_tables),
    Case(
        "fit-quantile-knots-reweight",
        [*FITR, "--quantile-knots", "100"],
        "--quantile-knots",
        setup=_tables,
    ),
    Case(
        "fit-quantile-knots-one", [*FIT, "--quantile-knots", "1"], "--quantile-knots", setup=_tables
    ),
    Case(
        "fit-epochs-quantile",
        [*FIT, "--method", "quantile", "--epochs", "3"],
        "--epochs",
        setup=_tables,
    ),
    Case("fit-cross-fit-flow", [*FIT, "--cross-fit", "2"], "--cross-fit", setup=_tables),
    Case(
        "fit-cross-fit-one",
        [*FIT, "--method", "flow+reweight", "--cross-fit", "1"],
        "--cross-fit",
        setup=_tables,
    ),
    Case("fit-holdout-one", [*FITR, "--holdout", "1"], "--holdout", setup=_tables),
    Case(
        "fit-out-is-file",
        [*FITR[:5], "{tmp}/f.txt", *FITR[6:]],
        "--out",
        setup=write_file("f.txt", "keep", base=_tables),
    ),
    Case("fit-out-exists", FITR, "--out", setup=make_folder("m", base=_tables)),
    Case("fit-weight-negative", [*FITR, "--source-weight", "wneg"], "wneg", setup=_tables),
    Case("fit-weight-missing", [*FITR, "--target-weight", "ww"], "ww", setup=_tables),
    Case("fit-nan", [*FIT, "--method", "reweight", "--features", "x,nanx"], "nanx", setup=_tables),
    Case(
        "fit-too-few-rows",
        [*FITR[:3], "{tmp}/tiny.parquet", *FITR[4:]],
        "tiny.parquet",
        setup=_tables,
    ),
    Case("fit-seed-negative", [*FITR, "--seed", "-1"], "seed", setup=_tables),
    Case(
        "apply-model-missing", [*APPLY[:2], "{tmp}/nomodel", *APPLY[3:]], "nomodel", setup=_tables
    ),
    Case(
        "apply-model-garbled",
        APPLY,
        "model.json",
        setup=write_file("model/model.json", "{not json", base=_model),
    ),
    Case(
        "apply-model-not-shift",
        APPLY,
        "format",
        setup=write_file("model/model.json", '{"format": "other"}', base=_model),
    ),
    Case(
        "apply-column-missing",
        [*APPLY[:3], "{tmp}/d.parquet", *APPLY[4:]],
        "'e'",
        setup=lambda t: (_model(t), pd.DataFrame({"x": [1.0]}).to_parquet(t / "d.parquet")),
    ),
    Case("apply-out-suffix", [*APPLY[:-1], "{tmp}/out.txt"], "--out", setup=_model),
    Case("apply-out-exists", APPLY, "--out", setup=write_file("out.parquet", b"PAR1", _model)),
    Case("apply-out-is-input", [*APPLY[:-1], "{tmp}/src.parquet"], "--out", setup=_model),
    Case("apply-weight-name-taken", [*APPLY, "--weight-name", "x"], "x", setup=_model),
    Case("validate-method-bad", [*VAL, "--method", "magic"], "--method", setup=_tables),
    Case("validate-n-too-small", [*VAL, "--n", "4"], "--n", setup=_tables),
    Case("validate-feature-unknown", [*VAL[:-1], "zz"], "zz", setup=_tables),
    Case(
        "validate-threshold-bad", [*VAL, "--auc-threshold", "0.4"], "--auc-threshold", setup=_tables
    ),
    Case("demo-unknown-application", ["shift", "demo", "mars", "--out", "{tmp}/d"], "mars"),
    Case("demo-n-too-small", [*DEMO, "--n", "10"], "--n"),
    Case(
        "demo-active-bias-flow",
        ["shift", "demo", "active-bias", "--out", "{tmp}/d", "--method", "flow"],
        "--method",
    ),
    Case("demo-method-bad", [*DEMO, "--method", "magic"], "--method"),
    Case(
        "demo-out-is-file",
        [*DEMO[:3], "--out", "{tmp}/f.txt"],
        "--out",
        setup=write_file("f.txt", "keep"),
    ),
    Case(
        "validate-out-is-file",
        [*VAL[:3], "--out", "{tmp}/f.txt", *VAL[5:]],
        "--out",
        setup=write_file("f.txt", "keep", base=_tables),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    # a folder made by the case's setup is the user's, not a leftover
    outputs = tuple(o for o in NO_OUT if not (case.id == "fit-out-exists" and o == "m"))
    check_case(Case(case.id, case.argv, case.expect, case.setup, outputs), tmp_path)
