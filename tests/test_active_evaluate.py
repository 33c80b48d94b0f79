"""Evaluation metrics of active simulation control: known answers and statistical checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ariasim.active.evaluate import (
    RateHistogram,
    chi2_ndf,
    chi2_test,
    compare_arms,
    coverage,
    efficiency_gain,
    kish_ess,
    pulls,
    rate_estimate,
    weighted_histogram,
)
from ariasim.errors import ConfigError, InputError

EDGES = np.linspace(0.0, 3.0, 31)


def test_kish_ess_known_answers():
    assert kish_ess(np.ones(7)) == 7.0
    assert kish_ess(np.full(5, 3.0)) == pytest.approx(5.0)  # scale-free
    assert kish_ess([1.0, 0.0, 0.0]) == 1.0
    assert kish_ess([]) == 0.0
    # (1 + 2 + 3)^2 / (1 + 4 + 9)
    assert kish_ess([1.0, 2.0, 3.0]) == pytest.approx(36.0 / 14.0)


def test_weighted_histogram_matches_a_loop():
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.5, 3.5, 500)
    w = rng.uniform(0.5, 2.0, 500)
    sw, sw2 = weighted_histogram(x, w, EDGES)
    for k in range(EDGES.size - 1):
        last = k == EDGES.size - 2
        sel = (x >= EDGES[k]) & ((x <= EDGES[k + 1]) if last else (x < EDGES[k + 1]))
        assert sw[k] == pytest.approx(w[sel].sum())
        assert sw2[k] == pytest.approx((w[sel] ** 2).sum())


def test_rate_estimate_unit_weights_is_binomial():
    n, k = 1000, 120
    r, e = rate_estimate(np.ones(k), n)
    p = k / n
    assert r == p
    assert e == pytest.approx(np.sqrt(p * (1 - p) / (n - 1)))


def test_efficiency_gain_and_bad_parameters():
    assert efficiency_gain(100.0, 100.0, 100.0, 10.0) == pytest.approx(10.0)
    assert efficiency_gain(50.0, 10.0, 100.0, 10.0) == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="cpu_b"):
        efficiency_gain(1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ConfigError, match="ess_a"):
        efficiency_gain(0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="edges"):
        weighted_histogram([1.0], None, [1.0, 1.0])
    with pytest.raises(ConfigError, match="n_generated"):
        rate_estimate([1.0, 1.0], 1)
    with pytest.raises(ConfigError, match="level"):
        coverage([1.0], [1.0], 1.0, level=1.5)
    with pytest.raises(InputError, match="errors"):
        coverage([1.0, 2.0], [1.0], 1.0)


def _arm(rng: np.random.Generator, n: int, controlled: bool, threshold: bool = False):
    """n generated events x ~ Exp(1); each passes a cut with probability 0.5.

    Controlled: an event goes on with a(x) = max(0.15, exp(-x)) and weight 1/a.
    Threshold (biased): events with x > 1.5 are dropped without any weight.
    """
    x = rng.exponential(1.0, n)
    if controlled:
        a = np.maximum(0.15, np.exp(-x))
        keep = rng.random(n) < a
        w = 1.0 / a
    else:
        keep = np.ones(n, bool)
        w = np.ones(n)
    if threshold:
        keep &= x < 1.5
    passed = keep & (rng.random(n) < 0.5)
    return pd.DataFrame({"x": x[passed], "weight": w[passed]})


def test_pulls_of_two_independent_samples_are_standard_normal():
    """Brute force vs an importance-sampled arm of the same process, 20 seeds x 30 bins:
    pooled pulls have mean 0 and std 1 within 4 sigma of their sampling errors."""
    rng = np.random.default_rng(2024)
    all_pulls = []
    for _ in range(20):
        a = _arm(rng, 40_000, controlled=False)
        b = _arm(rng, 60_000, controlled=True)
        ha = RateHistogram.fill(a["x"], a["weight"], EDGES, 40_000)
        hb = RateHistogram.fill(b["x"], b["weight"], EDGES, 60_000)
        p = pulls(ha, hb)
        assert np.isfinite(p).all()
        all_pulls.append(p)
    p = np.concatenate(all_pulls)
    n = p.size
    assert abs(p.mean()) < 4 / np.sqrt(n)
    assert abs(p.std(ddof=1) - 1.0) < 4 * np.sqrt(1 / (2 * (n - 1)))


def test_a_biased_arm_gives_large_chi2_and_pulls():
    rng = np.random.default_rng(5)
    a = _arm(rng, 40_000, controlled=False)
    b = _arm(rng, 60_000, controlled=True, threshold=True)
    ha = RateHistogram.fill(a["x"], a["weight"], EDGES, 40_000)
    hb = RateHistogram.fill(b["x"], b["weight"], EDGES, 60_000)
    chi2, ndf, p = chi2_test(ha, hb)
    assert ndf == 30
    assert chi2_ndf(ha, hb) == pytest.approx(chi2 / ndf)
    assert chi2 / ndf > 5.0 and p < 1e-6
    assert np.nanmax(np.abs(pulls(ha, hb))) > 5.0


def test_pulls_exclude_bins_empty_in_both():
    ha = RateHistogram.fill([0.5], None, [0, 1, 2], 10)
    hb = RateHistogram.fill([0.5, 0.7], None, [0, 1, 2], 20)
    p = pulls(ha, hb)
    assert np.isnan(p[1])
    # rates 0.1 and 0.1, so the pull is 0
    assert p[0] == pytest.approx(0.0)
    assert chi2_test(ha, hb)[1] == 1


def test_coverage_of_a_correct_estimator():
    """Rate of x^2-distributed passes (truth 1/3) with importance sampling, 400 seeds:
    the 68 % intervals cover the truth in 68 % of runs within 3 binomial sigma."""
    rng = np.random.default_rng(11)
    est, err = [], []
    for _ in range(400):
        n = 2000
        x = rng.random(n)
        a = np.maximum(0.1, x)
        keep = rng.random(n) < a
        passed = keep & (rng.random(n) < x**2)
        r, e = rate_estimate(1.0 / a[passed], n)
        est.append(r)
        err.append(e)
    frac, sigma = coverage(est, err, truth=1.0 / 3.0)
    assert sigma == pytest.approx(np.sqrt(0.68 * 0.32 / 400))
    assert abs(frac - 0.68) < 3 * sigma
    # a too-small error (halved) under-covers clearly
    frac_bad, _ = coverage(est, np.asarray(err) / 2, truth=1.0 / 3.0)
    assert frac_bad < 0.68 - 5 * sigma


def test_compare_arms_summary():
    rng = np.random.default_rng(3)
    a = _arm(rng, 20_000, controlled=False)
    b = _arm(rng, 30_000, controlled=True)
    out = compare_arms(a, 20_000, b, 30_000, ["x"], {"x": EDGES})
    assert out["n_eff"]["a"] == pytest.approx(len(a))
    assert 0 < out["n_eff"]["b"] < len(b)
    assert out["rate"]["a"][0] == pytest.approx(len(a) / 20_000)
    assert abs(out["rate_pull"]) < 5
    obs = out["observables"]["x"]
    assert obs["ndf"] == 30 and len(obs["pulls"]) == 30
    assert obs["max_abs_pull"] == pytest.approx(np.nanmax(np.abs(obs["pulls"])))
    # automatic edges when none given; the same arm twice gives zero pulls
    same = compare_arms(a, 20_000, a, 20_000, ["x"], bins=7)
    assert len(same["observables"]["x"]["edges"]) == 8
    assert same["observables"]["x"]["chi2"] == 0.0
    with pytest.raises(InputError, match="'y'"):
        compare_arms(a, 20_000, b, 30_000, ["y"])
    with pytest.raises(InputError, match="'w'"):
        compare_arms(a, 20_000, b, 30_000, ["x"], weight="w")


def _load_toy():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "active_toy.py"
    spec = importlib.util.spec_from_file_location("active_toy_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chain(stages, events, rng, accept=None):
    """Run stages by hand, joining each stage's new columns on event_id (the contract);
    ``accept(events) -> a`` is applied before the second stage (weight 1/a)."""
    events = events.assign(weight=1.0)
    for i, stage in enumerate(stages):
        if accept is not None and i == 1:
            a = accept(events)
            keep = rng.random(len(events)) < a
            events = events[keep].assign(weight=events["weight"].to_numpy()[keep] / a[keep])
        out = stage.func(events, rng).drop(columns=["cpu_s"], errors="ignore")
        assert out["event_id"].is_unique and out["event_id"].isin(events["event_id"]).all()
        new = [c for c in out.columns if c == "event_id" or c not in events.columns]
        events = events.merge(out[new], on="event_id", how="inner")
    return events


def test_toy_example_rate_is_unbiased_brute_force_and_controlled():
    toy = _load_toy()
    pipe = toy.make_pipeline()
    assert pipe.stage_names == ("generate", "shower", "select")
    assert pipe.control_points[0].before == "shower"
    n = 200_000
    rng = np.random.default_rng(7)
    ids = pd.DataFrame({"event_id": np.arange(n)})
    brute = _chain(pipe.stages, ids, rng)
    r, e = rate_estimate(brute["weight"], n)
    assert abs(r - toy.TRUE_RATE) < 4 * e
    assert (brute["s"] > toy.CUT).all()

    def accept(ev):  # a crude controller: keep x > 0.8 always, the rest with 2 %
        return np.where(ev["x"].to_numpy() > 0.8, 1.0, 0.02)

    ctrl = _chain(pipe.stages, ids, rng, accept=accept)
    r2, e2 = rate_estimate(ctrl["weight"], n)
    assert abs(r2 - toy.TRUE_RATE) < 4 * e2
    out = compare_arms(brute, n, ctrl, n, pipe.observables, pipe.edges)
    for name in pipe.observables:
        assert out["observables"][name]["max_abs_pull"] < 4.5
