"""``ariasim discover`` and its parts: configuration, observation files, the shallow-flow
forward model and its run cache, synthetic data, and the command end to end at small size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ariasim.apps.discovery.config import load_config, parse_config
from ariasim.apps.discovery.forward import ObservableSpec, ShallowFlowForward, friction_law
from ariasim.apps.discovery.observations import load_observations
from ariasim.apps.discovery.synthetic import EXAMPLE, make_synthetic, write_synthetic
from ariasim.errors import ConfigError, InputError
from ariasim.simulators.shallowflow import FrictionLaw, ShallowFlowConfig, simulate

ROOT = Path(__file__).resolve().parents[1]
SMALL = ShallowFlowConfig(n_cells=100)
TIMES = (2.0, 4.0, 6.0, 8.0)

TINY_TOML = """
seed = 3
[simulator]
n_cells = 100
[observations]
front = "front.csv"
deposit = "deposit.csv"
[terms.coulomb]
high = 0.7
[terms.turbulent]
high = 0.01
[budget]
initial = 8
batch = 4
max_runs = 16
[mcmc]
walkers = 16
steps = 200
[truth]
coulomb = 0.3
xi = 400.0
"""


def _minimal(**tables: object) -> dict:
    data: dict = {
        "terms": {"coulomb": {"high": 0.7}},
        "observations": {"runout_m": 110.0, "sigma_runout_m": 2.0},
    }
    data.update(tables)
    return data


# --- configuration -------------------------------------------------------------------------


def test_example_config_parses() -> None:
    cfg = load_config(ROOT / "examples" / "voellmy_synthetic.toml")
    assert cfg.term_names == ["coulomb", "turbulent", "viscous", "yield"]
    assert cfg.front == ROOT / "examples" / "voellmy_synthetic_front.csv"
    assert cfg.moments == (0,)
    assert cfg.truth == {"coulomb": 0.3, "turbulent": 1 / 400, "viscous": 0.0, "yield": 0.0}
    assert cfg.simulator.n_cells == 200 and cfg.simulator.chute_angle == 35.0
    obs = load_observations(cfg.front, sigma_front_m=cfg.sigma_front_m)
    assert obs.spec.times == tuple(EXAMPLE["times"])


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"simulator": {"n_cels": 100}}, "simulator.n_cels"),
        ({"simulator": {"friction": {"mu": 0.3}}}, "simulator.friction"),
        ({"simulator": {"moments": 1}}, "simulator.moments"),
        ({"simulator": {"cfl": 0.9}}, "simulator.cfl"),
        ({"terms": {"magic": {"high": 1.0}}}, "terms.magic"),
        ({"terms": {"coulomb": {"low": 0.1}}}, "terms.coulomb.high"),
        ({"terms": {"coulomb": {"high": 0.1, "low": 0.2}}}, "terms.coulomb.high"),
        ({"terms": {"coulomb": {"high": 0.7, "inclusion": 1.5}}}, "terms.coulomb.inclusion"),
        ({"terms": {"coulomb": {"high": 0.7, "prior": "flat"}}}, "terms.coulomb.prior"),
        ({"terms": {}}, "terms"),
        ({"budget": {"design": "grid"}}, "budget.design"),
        ({"budget": {"initial": 30, "max_runs": 20}}, "budget.max_runs"),
        ({"budget": {"batch": 0}}, "budget.batch"),
        ({"budget": {"runs": 5}}, "budget.runs"),
        ({"mcmc": {"walkers": 2.5}}, "mcmc.walkers"),
        ({"cascade": {"moments": [0, 7]}}, "cascade.moments"),
        ({"cascade": {"moments": 1}}, "cascade.moments"),
        ({"truth": {"xi": 400.0, "turbulent": 0.0025}}, "truth.xi"),
        ({"truth": {"xi": -1.0}}, "truth.xi"),
        ({"truth": {"viscous": 0.5}}, "truth.viscous"),
        ({"truth": {"phi": 0.5}}, "truth.phi"),
        ({"seed": -1}, "seed"),
        ({"observations": {}}, "observations.front"),
        ({"observations": {"front": "f.csv", "sigma": 1.0}}, "observations.sigma"),
        ({"observations": {"runout_m": 100.0}}, "observations.sigma_runout_m"),
        ({"observations": {"front": "f.csv", "sigma_front_m": 0.0}}, "observations.sigma_front_m"),
    ],
)
def test_config_errors_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_minimal(**data))
    assert err.value.parameter == key


def test_config_truth_xi_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "cfg.toml").write_text(TINY_TOML)
    cfg = load_config(tmp_path / "cfg.toml")
    assert cfg.front == tmp_path / "front.csv"
    assert cfg.truth == {"coulomb": 0.3, "turbulent": 1 / 400.0}
    assert (cfg.initial, cfg.batch, cfg.max_runs, cfg.walkers, cfg.steps, cfg.seed) == (
        8,
        4,
        16,
        16,
        200,
        3,
    )
    with pytest.raises(InputError, match=r"nope\.toml"):
        load_config(tmp_path / "nope.toml")


# --- observation files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("t_s,front_m,sigma\n1,2,3\n", "sigma", "unknown column"),
        ("t_s,front\n1,2\n", "front_m", "missing column"),
        ("t_s,sigma_m\n1,2\n", "front_m", "missing column"),
        ("t_s,front_m\n1,abc\n", "front_m", "not a finite number"),
        ("t_s,front_m\n1,\n", "front_m", "not a finite number"),
        ("t_s,front_m\n1,nan\n", "front_m", "not a finite number"),
        ("t_s,front_m,sigma_m\n1,2,-1\n", "sigma_m", "> 0"),
        ("t_s,front_m\n2,2\n1,3\n", "t_s", "strictly increasing"),
        ("t_s,front_m\n2,2\n2,3\n", "t_s", "strictly increasing"),
        ("t_s,front_m\n-1,2\n", "t_s", ">= 0"),
    ],
)
def test_front_file_errors_name_file_and_column(
    tmp_path: Path, text: str, column: str, words: str
) -> None:
    p = tmp_path / "front.csv"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        load_observations(p, sigma_front_m=1.0)
    msg = str(err.value)
    assert "front.csv" in msg and f"column '{column}'" in msg and words in msg, msg


def test_deposit_file_errors_and_missing_sigma(tmp_path: Path) -> None:
    p = tmp_path / "dep.csv"
    p.write_text("s_m,deposit_m\n80,0.5\n70,0.4\n")
    with pytest.raises(InputError, match=r"dep.csv.*column 's_m'"):
        load_observations(deposit=p, sigma_deposit_m=0.1)
    p.write_text("s_m,deposit_m\n70,0.5\n80,0.4\n")
    with pytest.raises(ConfigError) as err:
        load_observations(deposit=p)  # no sigma_m column, no default
    assert err.value.parameter == "observations.sigma_deposit_m"
    with pytest.raises(InputError, match=r"nope\.csv"):
        load_observations(tmp_path / "nope.csv", sigma_front_m=1.0)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match=r"empty\.csv"):
        load_observations(tmp_path / "empty.csv", sigma_front_m=1.0)


def test_observations_combine_front_deposit_runout(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("# survey\nt_s,front_m,sigma_m\n2,20,0.5\n4,40,0.7\n")
    (tmp_path / "d.csv").write_text("s_m,deposit_m\n90,0.3\n")
    obs = load_observations(
        tmp_path / "f.csv",
        tmp_path / "d.csv",
        sigma_deposit_m=0.05,
        runout_m=110.0,
        sigma_runout_m=2.0,
    )
    assert obs.names == ["front@2s", "front@4s", "deposit@90m", "runout"]
    assert obs.values.tolist() == [20.0, 40.0, 0.3, 110.0]
    assert obs.sigma.tolist() == [0.5, 0.7, 0.05, 2.0]
    core = obs.observations()
    assert core.names == obs.names and core.values.tolist() == obs.values.tolist()


# --- forward model and cache ---------------------------------------------------------------


def test_friction_law_mapping() -> None:
    law = friction_law({"coulomb": 0.2, "turbulent": 0.004, "viscous": 0.1, "yield": 0.5})
    assert (law.mu, law.xi, law.nu, law.tau) == (0.2, 250.0, 0.1, 0.5)
    assert friction_law({"viscous": 0.3}).xi == np.inf
    with pytest.raises(ConfigError):
        friction_law({"coulomb": -0.1})
    with pytest.raises(ConfigError):
        friction_law({"drag": 0.1})


@pytest.mark.parametrize("moments", [0, 1])
def test_forward_equals_direct_simulate(moments: int) -> None:
    spec = ObservableSpec(times=TIMES, deposit_s=(60.0, 75.5), runout=True)
    fwd = ShallowFlowForward(SMALL, spec, ["turbulent", "coulomb"], moments=moments)
    Y = fwd(np.array([[0.0025, 0.3], [0.0, 0.45]]))
    assert Y.shape == (2, spec.size) and fwd.names[-1] == "runout"
    for row, law in zip(Y, [FrictionLaw(mu=0.3, xi=400.0), FrictionLaw(mu=0.45)], strict=True):
        res = simulate(SMALL, friction=law, moments=moments)
        want = np.r_[res.front_at(np.array(TIMES)), np.interp([60.0, 75.5], res.s, res.h)]
        np.testing.assert_array_equal(row, np.r_[want, res.runout])


def test_cache_reuses_runs_and_gives_identical_arrays(tmp_path: Path) -> None:
    spec = ObservableSpec(times=TIMES)
    W = np.array([[0.3, 0.0025], [0.5, 0.001], [0.3, 0.0025]])
    first = ShallowFlowForward(SMALL, spec, ["coulomb", "turbulent"], cache_dir=tmp_path)
    Y1 = first(W)
    assert (first.n_run, first.n_cached) == (2, 1)  # the repeated row is run once
    again = ShallowFlowForward(SMALL, spec, ["coulomb", "turbulent"], cache_dir=tmp_path)
    Y2 = again(W[::-1])
    assert (again.n_run, again.n_cached) == (0, 3)
    np.testing.assert_array_equal(Y2, Y1[::-1])
    assert len(list(tmp_path.glob("run-*.json"))) == 2
    # another number of moments, another slope or another term order is another run
    other = ShallowFlowForward(SMALL, spec, ["coulomb", "turbulent"], moments=1, cache_dir=tmp_path)
    other(W[:1])
    steeper = ShallowFlowConfig(n_cells=100, chute_angle=38.0)
    other2 = ShallowFlowForward(steeper, spec, ["coulomb", "turbulent"], cache_dir=tmp_path)
    other2(W[:1])
    swapped = ShallowFlowForward(SMALL, spec, ["turbulent", "coulomb"], cache_dir=tmp_path)
    np.testing.assert_array_equal(swapped(W[:1, ::-1]), Y1[:1])
    assert (other.n_run, other2.n_run, swapped.n_run) == (1, 1, 0)
    # a damaged cache file is run again, not trusted
    victim = tmp_path / f"run-{first.key(W[0])}.json"
    assert victim.is_file()
    victim.write_text("{broken")
    fresh = ShallowFlowForward(SMALL, spec, ["coulomb", "turbulent"], cache_dir=tmp_path)
    fresh(W)
    assert fresh.n_run == 1


def test_forward_on_dask_workers_matches_in_process(tmp_path: Path) -> None:
    from ariasim.parallel import get_client

    spec = ObservableSpec(times=TIMES, runout=True)
    W = np.array([[0.3, 0.0025], [0.5, 0.001], [0.2, 0.005]])
    here = ShallowFlowForward(SMALL, spec, ["coulomb", "turbulent"])(W)
    with get_client(workers=2) as client:
        fwd = ShallowFlowForward(
            SMALL, spec, ["coulomb", "turbulent"], cache_dir=tmp_path, client=client
        )
        there = fwd(W)
    np.testing.assert_array_equal(there, here)
    assert fwd.n_run == 3


def test_forward_refuses_bad_input(tmp_path: Path) -> None:
    spec = ObservableSpec(times=TIMES)
    with pytest.raises(ConfigError, match="drag"):
        ShallowFlowForward(SMALL, spec, ["coulomb", "drag"])
    fwd = ShallowFlowForward(SMALL, spec, ["coulomb"])
    with pytest.raises(ConfigError, match="weights"):
        fwd(np.array([[0.3, 0.1]]))
    with pytest.raises(ConfigError, match="weights"):
        fwd(np.array([[-0.3]]))
    with pytest.raises(ConfigError, match="cache_dir"):
        ShallowFlowForward(SMALL, spec, ["coulomb"], client=object())
    with pytest.raises(ConfigError):
        ObservableSpec()


# --- synthetic data ------------------------------------------------------------------------


def test_synthetic_noise_is_seeded_and_gaussian(tmp_path: Path) -> None:
    truth = {"coulomb": 0.3, "turbulent": 0.0025}
    a = make_synthetic(SMALL, truth, TIMES, deposit_s=[70.0], sigma_front_m=1.0, seed=5)
    b = make_synthetic(SMALL, truth, TIMES, deposit_s=[70.0], sigma_front_m=1.0, seed=5)
    assert a["front"].equals(b["front"]) and a["deposit"].equals(b["deposit"])
    clean = ShallowFlowForward(SMALL, ObservableSpec(times=TIMES), list(truth))(
        np.array([[0.3, 0.0025]])
    )[0]
    # 200 noisy copies: the residuals are N(0, sigma^2); their mean and sd within 4 sigma
    res = np.concatenate(
        [
            make_synthetic(SMALL, truth, TIMES, sigma_front_m=2.0, seed=s)["front"]["front_m"]
            - clean
            for s in range(50)
        ]
    )
    n = res.size
    assert abs(res.mean()) < 4 * 2.0 / np.sqrt(n)
    assert abs(res.std() - 2.0) < 4 * 2.0 / np.sqrt(2 * n)
    write_synthetic(a, {"front": tmp_path / "f.csv", "deposit": tmp_path / "d.csv"})
    obs = load_observations(tmp_path / "f.csv", tmp_path / "d.csv")
    assert obs.names == ["front@2s", "front@4s", "front@6s", "front@8s", "deposit@70m"]


def test_example_csv_is_what_write_example_makes(tmp_path: Path) -> None:
    from ariasim.apps.discovery.synthetic import write_example

    made = write_example(tmp_path)
    shipped = ROOT / "examples" / "voellmy_synthetic_front.csv"
    assert made.read_bytes() == shipped.read_bytes()


# --- the command end to end ----------------------------------------------------------------

REQUIRED = {"inclusion", "parameters", "covers_truth", "simulator_runs", "cascade", "formula"}


def _tiny_case(tmp: Path) -> Path:
    tabs = make_synthetic(
        SMALL,
        {"coulomb": 0.3, "turbulent": 0.0025},
        TIMES,
        deposit_s=[100.0, 110.0],
        sigma_front_m=1.0,
        sigma_deposit_m=0.1,
        seed=7,
    )
    write_synthetic(tabs, {"front": tmp / "front.csv", "deposit": tmp / "deposit.csv"})
    (tmp / "cfg.toml").write_text(TINY_TOML)
    return tmp / "cfg.toml"


def test_discover_cli_end_to_end(tmp_path: Path) -> None:
    from ariasim.cli import main

    cfg = _tiny_case(tmp_path)
    for out in ("a", "b"):
        with pytest.raises(SystemExit) as code:
            main(
                [
                    "discover",
                    "--config",
                    str(cfg),
                    "--out",
                    str(tmp_path / out),
                    "--json",
                    str(tmp_path / f"{out}.json"),
                    "--quiet",
                ]
            )
        assert code.value.code == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert REQUIRED <= set(s)
    assert set(s["inclusion"]) == {"coulomb", "turbulent"}
    for p in s["parameters"].values():
        assert p["low"] <= p["median"] <= p["high"]
    assert set(s["covers_truth"]) == {"coulomb", "turbulent"}
    assert 8 <= s["simulator_runs"] <= 16
    assert s["cascade"]["N0"]["simulator_runs"] == s["simulator_runs"]
    assert s["chosen_moments"] == 0
    assert s["observations"]["names"][-2:] == ["deposit@100m", "deposit@110m"]
    assert set(s["discovered_terms"]) <= {"coulomb", "turbulent"} and s["formula"]
    for name in ("report.html", "timings.json", "runs_N0.csv", "samples.csv"):
        assert (tmp_path / "a" / name).is_file()
    # same inputs and seed: the same summary bytes; --json holds the same summary
    a = (tmp_path / "a" / "summary.json").read_bytes()
    assert a == (tmp_path / "b" / "summary.json").read_bytes()
    assert a == (tmp_path / "a.json").read_bytes()
    # run again into the same folder: every simulator run comes from the cache
    with pytest.raises(SystemExit):
        main(["discover", "--config", str(cfg), "--out", str(tmp_path / "a"), "--quiet"])
    timings = json.loads((tmp_path / "a" / "timings.json").read_text())
    assert timings["N0"]["simulator_runs_made"] == 0
    assert (tmp_path / "a" / "summary.json").read_bytes() == a


def test_cascade_picks_the_member_with_the_largest_evidence(tmp_path: Path) -> None:
    from ariasim.apps.discovery.run import run_discovery

    cfg = _tiny_case(tmp_path)
    cfg.write_text(TINY_TOML + "[cascade]\nmoments = [0, 1]\n")
    seen: list[str] = []
    s = run_discovery(
        cfg, tmp_path / "c", progress=lambda label, done, total, msg: seen.append(label)
    )
    assert {"N=0", "N=1"} <= set(seen)
    lnz = {k: v["log_evidence"] for k, v in s["cascade"].items()}
    assert s["chosen_moments"] == int(max(lnz, key=lnz.get)[1:])
    assert abs(sum(v["probability"] for v in s["cascade"].values()) - 1) < 1e-9
    assert s["log_evidence"] == lnz[f"N{s['chosen_moments']}"]
    # member N = 0 is the same calibration with or without N = 1 in the cascade
    cfg.write_text(TINY_TOML)
    run_discovery(cfg, tmp_path / "d")
    assert (tmp_path / "c" / "runs_N0.csv").read_bytes() == (
        tmp_path / "d" / "runs_N0.csv"
    ).read_bytes()
