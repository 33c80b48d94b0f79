"""ariasim.active's core: run_chunk, the Controller, the loader and the online engine.

The toy pipeline: ``x ~ Exp(1)`` (stage ``gen``, 1 ms per event), an expensive stage
``sim`` (1 s per event, reported in a ``cpu_s`` column so that no timing enters a test)
that marks an event good with probability ``sigmoid(K (x - X0))``, and a selection that
keeps the good ones. The final-level rate per generated event is
``int_0^inf e^-x sigmoid(K (x - X0)) dx`` (by quadrature).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from ariasim.active import (
    ActiveConfig,
    Controller,
    ControlPoint,
    Pipeline,
    Stage,
    load_controller,
    run_active,
    run_chunk,
)
from ariasim.active.controller import ThresholdBiasWarning
from ariasim.active.engine import round_chunks, training_set
from ariasim.errors import ConfigError, InputError
from ariasim.parallel import read_parts

ROOT = Path(__file__).resolve().parents[1]
K, X0 = 4.0, 3.0
TRUTH = quad(lambda x: np.exp(-x) / (1 + np.exp(-K * (x - X0))), 0, np.inf)[0]
COSTS = {"gen": 0.001, "sim": 1.0, "select": 0.0}
FAIL_AT: dict[str, int | None] = {"chunk": None}  # sim crashes in this chunk


def gen(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ev)
    return pd.DataFrame(
        {
            "event_id": ev["event_id"],
            "x": rng.exponential(1.0, n),
            "z": rng.normal(size=n),  # an irrelevant feature
            "cpu_s": COSTS["gen"],
        }
    )


def sim(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if FAIL_AT["chunk"] is not None and FAIL_AT["chunk"] in set(ev["event_id"] // 500):
        raise RuntimeError("simulated crash")
    n = len(ev)
    x = ev["x"].to_numpy()
    p = 1 / (1 + np.exp(-K * (x - X0)))
    return pd.DataFrame(
        {
            "event_id": ev["event_id"],
            "ok": rng.random(n) < p,
            "y": x + rng.normal(0, 0.1, n),
            "cpu_s": COSTS["sim"],
        }
    )


def select(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return ev.loc[ev["ok"], ["event_id"]].assign(cpu_s=0.0)


PIPE = Pipeline(
    [Stage("gen", gen), Stage("sim", sim), Stage("select", select)],
    control_points=[ControlPoint("sim", ("x", "z"))],
    observables=("y",),
    name="toy",
)
# retrain_growth=1: a new model every round (the round bookkeeping tests rely on it)
CFG = ActiveConfig(
    chunk_size=500,
    warmup_chunks=2,
    chunks_per_round=2,
    n_estimators=40,
    stage_costs=COSTS,
    retrain_growth=1.0,
)
N_CHUNKS = 8
SEEDS = range(30)


def deterministic_cost(log: pd.DataFrame) -> float:
    """CPU of the toy from its per-event costs (what the stages report)."""
    ran_sim = log["reached_sim"] & log["accept_sim"].fillna(False).astype(bool)
    return COSTS["gen"] * len(log) + COSTS["sim"] * float(ran_sim.sum())


def summarise(out: Path, mode: str, seed: int) -> dict:
    cfg = ActiveConfig(**{**CFG.__dict__, "mode": mode})
    r = run_active(PIPE, out, seed=seed, n_chunks=N_CHUNKS, config=cfg)
    log = r.log()
    est, err = r.rate()
    return {
        "est": est,
        "err": err,
        "eff": r.ess() / deterministic_cost(log),
        "log": log,
        "out": out,
        "result": r,
    }


@pytest.fixture(scope="module")
def controlled(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    base = tmp_path_factory.mktemp("controlled")
    return [summarise(base / f"s{seed}", "sqrt", seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def brute(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    base = tmp_path_factory.mktemp("brute")
    return [summarise(base / f"s{seed}", "brute", seed) for seed in range(10)]


# -- (a) unbiased ------------------------------------------------------------------------
def test_controlled_estimate_is_unbiased(controlled: list[dict]) -> None:
    est = np.array([c["est"] for c in controlled])
    err = np.array([c["err"] for c in controlled])
    n = len(est)
    # every run used the controller (so this tests the weighting, not brute force)
    assert all((c["log"]["a_sim"] < 1).any() for c in controlled)
    # the mean of the estimates: within 3 standard errors of the truth
    z = (est.mean() - TRUTH) / (est.std(ddof=1) / np.sqrt(n))
    assert abs(z) < 3, (est.mean(), TRUTH, z)
    pulls = (est - TRUTH) / err
    # pulls ~ N(0, 1): mean within 3/sqrt(n), spread of order 1
    assert abs(pulls.mean()) < 3 / np.sqrt(n), pulls
    assert 0.5 < pulls.std(ddof=1) < 1.6, pulls
    # 68 % coverage within three binomial standard deviations
    cover = np.mean(np.abs(pulls) < 1)
    assert abs(cover - 0.6827) < 3 * np.sqrt(0.6827 * 0.3173 / n), cover


# -- (b) gain in effective events per CPU second -------------------------------------------
def test_ess_per_cost_beats_brute_force(controlled: list[dict], brute: list[dict]) -> None:
    e_c = np.array([c["eff"] for c in controlled])
    e_b = np.array([b["eff"] for b in brute])
    ratio = e_c.mean() / e_b.mean()
    rel_err = np.hypot(
        e_c.std(ddof=1) / np.sqrt(len(e_c)) / e_c.mean(),
        e_b.std(ddof=1) / np.sqrt(len(e_b)) / e_b.mean(),
    )
    assert ratio - 3 * rel_err * ratio > 1.0, (ratio, rel_err)
    # brute force: no controller anywhere, every event simulated
    for b in brute:
        assert (b["log"]["a_sim"] == 1).all() and b["log"]["p_sim"].isna().all()
        assert not (b["out"] / "controllers").exists()
    # the same seed generates the same events in both arms (chunk seeds)
    np.testing.assert_array_equal(brute[0]["log"]["x"], controlled[0]["log"]["x"])


# -- (f) never decided by a model trained on the event -------------------------------------
def test_no_event_is_decided_by_a_model_trained_on_it(controlled: list[dict]) -> None:
    for c in controlled[:5]:
        log, out = c["log"], c["out"]
        first_id = log.groupby("round")["event_id"].min()
        # the model of round r was trained on rounds < r (its folder says which)
        assert (log["model_sim"] <= log["round"]).all()
        assert (log.loc[log["round"] == 0, "model_sim"] == -1).all()
        for r in range(1, int(log["round"].max()) + 1):
            meta = json.loads(
                (out / "controllers" / f"round-{r:03d}" / "sim" / "controller.json").read_text()
            )["training"]
            assert meta["trained_on_rounds"] == list(range(r))
            assert meta["max_event_id"] < first_id[r]
            assert (log.loc[log["round"] == r, "model_sim"] == r).all()
    # retraining the round-1 controller from round 0's log alone gives the same model
    out = controlled[0]["out"]
    log0 = read_parts(out, "log", round_chunks(0, CFG))
    rows = training_set(log0, "sim")
    saved = load_controller(out / "controllers" / "round-001" / "sim")
    c = CFG.controller(("x", "z"), random_state=saved.state["params"]["random_state"])
    c.fit(
        rows[["x", "z"]],
        rows["passed"].astype(float),
        rows["w_active"],
        cost_fixed=saved.state["training"]["cost_fixed"],
        cost_skippable=saved.state["training"]["cost_skippable"],
    )
    assert c.saved_.model_string == saved.model_string


def test_log_records_every_decision(controlled: list[dict]) -> None:
    log = controlled[0]["log"]
    final = controlled[0]["result"].final
    assert len(log) == N_CHUNKS * CFG.chunk_size and log["event_id"].is_unique
    ctrl = log[log["round"] > 0]
    assert ctrl["p_sim"].between(0, 1).all() and ctrl["a_sim"].between(CFG.a_min, 1).all()
    rejected = ~log["accept_sim"].astype(bool)
    assert not log.loc[rejected, "passed"].any()
    passing = log[log["passed"]].set_index("event_id")
    np.testing.assert_allclose(passing["w_active"], 1 / passing["a_sim"])
    np.testing.assert_allclose(
        final.set_index("event_id")["w_active"], passing.loc[final["event_id"], "w_active"]
    )
    assert (final["weight"] == final["gen_weight"] * final["w_active"]).all()


# -- generation weights and density mode ------------------------------------------------
XMAX = 8.0
TRUTH_W = quad(lambda x: np.exp(-x) / (1 + np.exp(-K * (x - X0))), 0, XMAX)[0]


def gen_weighted(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """x uniform on [0, XMAX], weighted to Exp(1): gen_weight = XMAX e^-x."""
    x = rng.uniform(0, XMAX, len(ev))
    return pd.DataFrame(
        {
            "event_id": ev["event_id"],
            "x": x,
            "z": 0.0,
            "gen_weight": XMAX * np.exp(-x),
            "cpu_s": COSTS["gen"],
        }
    )


def test_generation_weights_enter_the_acceptance_unbiased(tmp_path: Path) -> None:
    pipe = Pipeline(
        [Stage("gen", gen_weighted), Stage("sim", sim), Stage("select", select)],
        control_points=[ControlPoint("sim", ("x",))],
        observables=("y",),
    )
    est, err = [], []
    for seed in range(8):
        r = run_active(pipe, tmp_path / f"w{seed}", seed=seed, n_chunks=6, config=CFG)
        e, s = r.rate()
        est.append(e)
        err.append(s)
    saved = load_controller(tmp_path / "w0" / "controllers" / "round-002" / "sim")
    assert saved.inputs == ("x", "gen_weight")
    # at equal pass probability a heavier event is kept more often (a ∝ w sqrt(p))
    a = saved.acceptance({"x": [4.0, 4.0], "gen_weight": [0.01, 0.1]})
    assert a[0] < a[1]
    est_a, err_a = np.array(est), np.array(err)
    z = (est_a.mean() - TRUTH_W) / (est_a.std(ddof=1) / np.sqrt(len(est_a)))
    assert abs(z) < 3, (est_a.mean(), TRUTH_W, z)
    assert np.all(np.abs(est_a - TRUTH_W) < 4 * err_a)


def preview(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A cheap look at the outcome: u is x with noise (a preview of the expensive stage)."""
    return pd.DataFrame(
        {"event_id": ev["event_id"], "u": ev["x"] + rng.normal(0, 0.5, len(ev)), "cpu_s": 0.1}
    )


TWO_POINTS = Pipeline(
    [Stage("gen", gen_weighted), Stage("pre", preview), Stage("sim", sim), Stage("select", select)],
    control_points=[ControlPoint("pre", ("x",)), ControlPoint("sim", ("x", "u"))],
    observables=("y",),
    stage_costs={**COSTS, "pre": 0.1},  # the preview's reported cpu_s
)


class Stub:
    """A fixed controller: accepts with a(x) and records the weights it was given."""

    inputs = ("x", "gen_weight")

    def __init__(self, a: Callable[[np.ndarray], np.ndarray]):
        self.a = a
        self.seen: list[pd.DataFrame] = []

    def decide(self, X: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(X.copy())
        a = self.a(X["x"].to_numpy())
        return rng.random(len(a)) < a, a


def test_two_control_points_multiply_the_weights() -> None:
    first = Stub(lambda x: np.where(x < 2.0, 0.2, 1.0))
    second = Stub(lambda x: np.where(x < 3.0, 0.25, 0.8))
    r = run_chunk(
        TWO_POINTS,
        first_event_id=0,
        n_events=40_000,
        seed=3,
        controllers={"pre": first, "sim": second},
    )
    log = r.log.set_index("event_id")
    both = log["accept_pre"].fillna(False) & log["accept_sim"].fillna(False)
    expect = 1.0 / (log["a_pre"] * log["a_sim"])
    np.testing.assert_allclose(log.loc[both, "w_active"], expect[both], rtol=1e-12)
    assert (log.loc[~log["accept_pre"].astype(bool), "w_active"] == 1.0).all()  # not final
    # the second point sees the weight an event carries there: gen_weight / a_pre
    X2 = second.seen[0]
    np.testing.assert_allclose(
        X2["gen_weight"], log.loc[X2.index, "gen_weight"] / log.loc[X2.index, "a_pre"]
    )
    np.testing.assert_allclose(first.seen[0]["gen_weight"], log["gen_weight"])
    final = r.final.set_index("event_id")
    np.testing.assert_allclose(final["w_active"], expect[final.index], rtol=1e-12)
    # and the estimate with both thinnings is unbiased: sum(weight) / n against the truth
    w = np.zeros(len(log))
    w[np.searchsorted(log.index, final.index)] = final["weight"]
    est, err = w.mean(), w.std(ddof=1) / np.sqrt(len(w))
    assert abs(est - TRUTH_W) < 4 * err, (est, TRUTH_W, err)


def test_two_control_points_train_on_the_weight_at_each_point(tmp_path: Path) -> None:
    from ariasim.active.engine import prior_weight

    cfg = ActiveConfig(**{**CFG.__dict__, "stage_costs": None})  # the pipeline's costs
    r = run_active(TWO_POINTS, tmp_path / "two", seed=1, n_chunks=8, config=cfg)
    saved = load_controller(tmp_path / "two" / "controllers" / "round-003" / "sim")
    assert saved.inputs == ("x", "u", "gen_weight")
    log = r.log()
    late = log[log["round"] >= 1]
    # the later rounds were decided at both points, and the weights multiply
    assert late["a_pre"].lt(1).any() and late["a_sim"].lt(1).any()
    ok = late["passed"].to_numpy(dtype=bool)
    np.testing.assert_allclose(
        late["w_active"][ok], 1.0 / (late["a_pre"] * late["a_sim"])[ok], rtol=1e-12
    )
    np.testing.assert_allclose(prior_weight(late, TWO_POINTS, "sim"), 1.0 / late["a_pre"])
    est, err = r.rate()
    assert abs(est - TRUTH_W) < 4 * err, (est, TRUTH_W, err)


def test_density_mode_flattens_the_simulated_events(tmp_path: Path, controlled: list[dict]) -> None:
    edges = np.linspace(2.5, 6.5, 9)
    pipe = Pipeline(PIPE.stages, PIPE.control_points, observables=("y",), edges={"y": edges})
    cfg = ActiveConfig(
        **{**CFG.__dict__, "chunk_size": 1000, "mode": "density", "density_observable": "y"}
    )
    r = run_active(pipe, tmp_path / "d", seed=0, n_chunks=6, config=cfg)
    est, err = r.rate()
    assert abs(est - TRUTH) < 4 * err
    folder = tmp_path / "d" / "controllers" / "round-002" / "sim"
    saved = load_controller(folder)
    assert saved.state["density"]["edges"] == [float(e) for e in edges]
    # density of simulated passing events at x: e^-x p(x) a(x); at the centres of the
    # bins 1..5 (y 3 .. 5.5) brute force (a = 1) falls by e^2 p(5.25)/p(3.25) ~ 5.4
    x = (edges[1:6] + edges[2:7]) / 2
    pdf = np.exp(-x) / (1 + np.exp(-K * (x - X0)))
    feats = {"x": x, "z": np.zeros_like(x)}
    simulated = pdf * saved.acceptance(feats)
    sqrt_ctrl = load_controller(controlled[0]["out"] / "controllers" / "round-003" / "sim")
    by_sqrt = pdf * sqrt_ctrl.acceptance(feats)

    def spread(v: np.ndarray) -> float:
        return float(v.max() / v.min())

    assert spread(pdf) > 5
    assert spread(simulated) < 2.5 and spread(simulated) < spread(by_sqrt) / 1.5, (
        simulated,
        by_sqrt,
    )


def test_a_relevance_column_trains_a_regressor() -> None:
    X, y = toy_training()
    relevance = y * (1 + X["x"].to_numpy())  # e.g. an energy-weighted selection
    c = Controller(["x", "z"], n_estimators=30).fit(X, relevance, cost_fixed=0.01)
    assert c.saved_.state["objective"] == "regression"
    r = c.predict_proba({"x": [0.5, 5.0], "z": [0, 0]})
    assert 0 <= r[0] < r[1]


# -- run_chunk details -----------------------------------------------------------------------
def test_run_chunk_joins_columns_and_counts_cpu() -> None:
    def slow_cut(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return ev[ev["x"] > 1.0][["event_id"]].assign(flux=2.0, gen_weight=3.0)

    p = Pipeline(
        [Stage("gen", gen), Stage("cut", slow_cut)],
        control_points=[ControlPoint("cut", ("x",))],
        observables=("x", "flux"),
    )
    r = run_chunk(p, first_event_id=100, n_events=50, seed=3)
    log = r.log
    assert log["event_id"].tolist() == list(range(100, 150))
    assert (log["cpu_gen"] == COSTS["gen"]).all()  # the stage's own cpu_s column
    assert log["reached_cut"].all() and log["accept_cut"].all() and log["p_cut"].isna().all()
    assert (r.final["x"] > 1).all() and (r.final["weight"] == 3.0).all()
    assert log.loc[~log["passed"], "gen_weight"].isna().all()  # never got one
    # same seed, same events
    again = run_chunk(p, first_event_id=100, n_events=50, seed=3)
    pd.testing.assert_frame_equal(r.final, again.final)

    def invent(ev: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return pd.DataFrame({"event_id": [10**9]})

    with pytest.raises(ConfigError, match="'bad' returned event ids it was not given"):
        run_chunk(
            Pipeline([Stage("gen", gen), Stage("bad", invent)]),
            first_event_id=0,
            n_events=5,
            seed=0,
        )
    with pytest.raises(ConfigError, match="no column 'w'"):
        run_chunk(
            Pipeline(
                [Stage("gen", gen), Stage("cut", slow_cut)],
                control_points=[ControlPoint("cut", ("w",))],
            ),
            first_event_id=0,
            n_events=5,
            seed=0,
        )


# -- (c) save / load ---------------------------------------------------------------------
def toy_training(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=n)
    X = pd.DataFrame({"x": x, "z": rng.normal(size=n)})
    y = rng.random(n) < 1 / (1 + np.exp(-K * (x - X0)))
    return X, y.astype(float)


@pytest.fixture(scope="module")
def trained() -> Controller:
    X, y = toy_training()
    return Controller(["x", "z"], n_estimators=40).fit(X, y, cost_fixed=0.001, cost_skippable=1)


def test_save_load_round_trip_decides_identically(trained: Controller, tmp_path: Path) -> None:
    X, _ = toy_training(500, seed=9)
    trained.save(tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["controller.json", "model.txt"]
    loaded = load_controller(tmp_path / "c")
    acc0, a0 = trained.decide(X, np.random.default_rng(5))
    acc1, w1 = loaded.decide(X, rng=5)
    np.testing.assert_array_equal(acc0, acc1)
    np.testing.assert_array_equal(1 / a0, w1)
    # a 2-D array in feature order gives the same, and so does a dict shipped to a worker
    np.testing.assert_array_equal(loaded.acceptance(X[["x", "z"]].to_numpy()), a0)
    shipped = Controller.from_dict(json.loads(json.dumps(trained.to_dict())))
    np.testing.assert_array_equal(shipped.acceptance(X), a0)
    np.testing.assert_array_equal(
        Controller.load(tmp_path / "c").predict_proba(X), trained.predict_proba(X)
    )
    # the calibrated probability follows the truth (a monotone, sensible model)
    p = trained.predict_proba({"x": [0.5, 2.0, 5.0], "z": [0.0, 0.0, 0.0]})
    assert p[0] < 0.05 < p[2] and p[2] > 0.7
    # and the acceptance grows with it, from a_min
    a = trained.acceptance({"x": [0.0, 5.0], "z": [0.0, 0.0]})
    assert trained.a_min <= a[0] < a[1] <= 1


def test_loader_errors_name_the_feature_or_file(trained: Controller, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "c")
    loaded = load_controller(folder)
    with pytest.raises(InputError, match="needs the feature 'z'"):
        loaded.decide({"x": [1.0]})
    with pytest.raises(InputError, match="2 columns"):
        loaded.decide(np.ones((3, 5)))
    with pytest.raises(InputError, match="controller folder not found"):
        load_controller(tmp_path / "nothing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "controller.json").write_text((folder / "controller.json").read_text())
    with pytest.raises(InputError, match=r"model\.txt.*missing file"):
        load_controller(broken)
    (broken / "model.txt").write_text("tree\ngarbage=1\n")
    with pytest.raises(InputError, match=r"model\.txt.*not a LightGBM model"):
        load_controller(broken)
    (broken / "model.txt").write_text((folder / "model.txt").read_text())
    (broken / "controller.json").write_text('{"format": ')
    with pytest.raises(InputError, match=r"controller\.json.*invalid JSON"):
        load_controller(broken)
    state = json.loads((folder / "controller.json").read_text())
    (broken / "controller.json").write_text(json.dumps({**state, "a_min": -1}))
    with pytest.raises(InputError, match=r"controller\.json', field 'a_min'"):
        load_controller(broken)


def test_example_script_uses_only_the_loader(trained: Controller, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "c")
    X, _ = toy_training(6, seed=4)
    csv = tmp_path / "events.csv"
    X.to_csv(csv, index=False)
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "active_decide.py"),
            str(folder),
            str(csv),
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.split(",") for line in run.stdout.split()[1:]]
    accept, weight = load_controller(folder).decide(X, rng=3)
    assert [bool(int(r[1])) for r in rows] == accept.tolist()
    assert [float(r[2]) for r in rows] == weight.tolist()
    # a missing feature: one line naming it, exit status 2
    X[["x"]].to_csv(csv, index=False)
    bad = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "active_decide.py"), str(folder), str(csv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "'z'" in bad.stderr
    # importing the loader pulls in no other ariasim module (pipeline, utils, parallel...)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ariasim.active.loader; print(sorted(m for m in "
            "sys.modules if m.startswith('ariasim')))",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert probe.stdout.strip() == (
        "['ariasim', 'ariasim.active', 'ariasim.active.loader', 'ariasim.errors']"
    ), probe.stderr


# -- (d) resume --------------------------------------------------------------------------
def test_interrupted_run_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    run_active(PIPE, whole, seed=11, n_chunks=N_CHUNKS, config=CFG)
    cut = tmp_path / "cut"
    FAIL_AT["chunk"] = 5  # in round 2
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_active(PIPE, cut, seed=11, n_chunks=N_CHUNKS, config=CFG)
    finally:
        FAIL_AT["chunk"] = None
    assert (cut / "controllers" / "round-002").is_dir()
    assert not (cut / "final" / "part-000005.parquet").exists()
    resumed = run_active(PIPE, cut, seed=11, n_chunks=N_CHUNKS, config=CFG)
    assert resumed.n_chunks == N_CHUNKS
    for part in sorted((whole / "final").glob("part-*.parquet")):
        assert (cut / "final" / part.name).read_bytes() == part.read_bytes(), part.name
    for model in sorted((whole / "controllers").rglob("model.txt")):
        rel = model.relative_to(whole)
        assert (cut / rel).read_text() == model.read_text(), rel
    # another configuration in the same folder is refused
    with pytest.raises(ConfigError, match="out_dir"):
        run_active(PIPE, cut, seed=12, n_chunks=N_CHUNKS, config=CFG)


def test_freeze_keeps_the_first_controllers(tmp_path: Path) -> None:
    cfg = ActiveConfig(**{**CFG.__dict__, "learn": "freeze"})
    seen: list[tuple[int, int]] = []
    r = run_active(
        PIPE,
        tmp_path / "f",
        seed=2,
        n_chunks=7,
        config=cfg,
        progress=lambda d, t: seen.append((d, t)),
    )
    log = r.log()
    assert r.n_chunks == 7 and r.rounds == 4  # 2 + 2 + 2 + 1 chunks
    assert (log.loc[log["round"] > 0, "model_sim"] == 1).all()
    assert sorted(p.name for p in (tmp_path / "f" / "controllers").iterdir()) == ["round-001"]
    assert seen[-1] == (1, 1) and len(seen) == 7


def test_budget_stops_after_the_round_that_reaches_it(tmp_path: Path) -> None:
    # 500 events of 1 s each per chunk when uncontrolled: round 0 (2 chunks) costs ~1000 s
    r = run_active(PIPE, tmp_path / "b", seed=1, budget_cpu_s=900.0, config=CFG)
    assert r.rounds == 1 and r.n_chunks == CFG.warmup_chunks
    assert r.cpu_s["total"] >= 900.0
    assert r.cpu_s["sim"] == pytest.approx(COSTS["sim"] * r.n_generated)
    with pytest.raises(ConfigError, match="n_chunks or budget_cpu_s"):
        run_active(PIPE, tmp_path / "c", config=CFG)


# -- (e) threshold mode ------------------------------------------------------------------
def test_threshold_mode_warns_and_keeps_weight_one(tmp_path: Path) -> None:
    with pytest.warns(ThresholdBiasWarning, match="biased"):
        c = Controller(["x", "z"], mode="threshold", threshold=0.1, n_estimators=20)
    X, y = toy_training()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fit itself does not warn again
        c.fit(X, y)
    accept, a = c.decide({"x": [0.1, 5.0], "z": [0.0, 0.0]}, np.random.default_rng(0))
    assert accept.tolist() == [False, True] and a.tolist() == [1.0, 1.0]
    with pytest.raises(ConfigError, match="threshold"):
        Controller(["x"], mode="threshold")
    cfg = ActiveConfig(**{**CFG.__dict__, "mode": "threshold", "threshold": 0.05})
    with pytest.warns(ThresholdBiasWarning):
        run_active(PIPE, tmp_path / "t", seed=0, n_chunks=3, config=cfg)


def test_bad_configuration_names_the_parameter() -> None:
    with pytest.raises(ConfigError, match="parameter 'mode'"):
        ActiveConfig(mode="fast")
    with pytest.raises(ConfigError, match="parameter 'a_min'"):
        ActiveConfig(a_min=0.0)
    with pytest.raises(ConfigError, match="parameter 'chunk_size'"):
        ActiveConfig(chunk_size=0)
    with pytest.raises(InputError, match="too few events"):
        Controller(["x"]).fit(np.ones((10, 1)), np.zeros(10))


def test_a_pipeline_without_nominal_costs_warns(tmp_path: Path) -> None:
    # without stage_costs the controllers are costed from measured CPU: reruns may differ
    cfg = ActiveConfig(**{**CFG.__dict__, "stage_costs": None})
    with pytest.warns(UserWarning, match="gen, sim, select have no nominal cost"):
        run_active(PIPE, tmp_path / "a", seed=0, n_chunks=2, config=cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        run_active(PIPE, tmp_path / "b", seed=0, n_chunks=2, config=CFG)  # costs declared
        brute = ActiveConfig(**{**cfg.__dict__, "mode": "brute"})
        run_active(PIPE, tmp_path / "c", seed=0, n_chunks=2, config=brute)  # no controller
