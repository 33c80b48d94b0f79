"""Shift diagnostics (before/after comparison, statistical floor, plots) and the
injected-shift harness, tested with tiny exact learners that follow the two-sample contract.

Sizes are small (2,000 events per side) and the classifier test is cut down (3 folds, 50
boosting iterations); the statistical tolerances are given where they are used.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from ariasim.errors import ConfigError, InputError
from ariasim.report import HtmlReport
from ariasim.shift.diagnostics import (
    compare_samples,
    plot_correlations,
    plot_features,
    report_diagnostics,
    statistical_floor,
    weighted_correlation,
    weighted_quantiles,
)
from ariasim.shift.inject import (
    ContextShift,
    Correlated,
    Monotone,
    Offset,
    Scale,
    Smear,
    default_distortions,
    report_validation,
    validate,
)

FAST = {"n_folds": 3, "max_iter": 50}
N = 2000


# --------------------------------------------------------------------------------------------
# tiny learners following the contract: fit(X, y, sample_weight=None), transform / weights


class QuantileMorpher:
    """Per-feature empirical quantile map source -> target: the exact 1-D optimal transport
    between the two training samples (it ignores correlations and context)."""

    def __init__(self, features=None, context=None):
        self.features = features
        self.context = context

    def get_params(self, deep=False):
        return {"features": self.features, "context": self.context}

    def set_params(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)
        return self

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y)
        self.src_ = {f: np.sort(X[f].to_numpy(float)[y == 0]) for f in self.features}
        self.tgt_ = {f: np.sort(X[f].to_numpy(float)[y == 1]) for f in self.features}
        return self

    def transform(self, X):
        out = X.copy()
        for f in self.features:
            s, t = self.src_[f], self.tgt_[f]
            x = X[f].to_numpy(float)
            u = 0.5 * (np.searchsorted(s, x, "left") + np.searchsorted(s, x, "right")) / len(s)
            out[f] = np.interp(u, (np.arange(len(t)) + 0.5) / len(t), t)
        return out


class Identity:
    """A "morpher" that learns nothing."""

    def fit(self, X, y, sample_weight=None):
        return self

    def transform(self, X):
        return X.copy()


class HistogramReweighter:
    """1-D reweighter: target/source histogram ratio of one feature (20 quantile bins)."""

    def __init__(self, feature="x"):
        self.feature = feature

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y)
        x = X[self.feature].to_numpy(float)
        self.edges_ = np.quantile(x, np.linspace(0, 1, 21))
        hs, _ = np.histogram(x[y == 0], self.edges_)
        ht, _ = np.histogram(x[y == 1], self.edges_)
        self.ratio_ = (ht / ht.sum()) / np.maximum(hs / hs.sum(), 1e-12)
        return self

    def weights(self, X):
        i = np.clip(np.searchsorted(self.edges_, X[self.feature], "right") - 1, 0, 19)
        return self.ratio_[i]


def gamma_data(n=3 * N, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.gamma(4.0, 1.0, n)})


# --------------------------------------------------------------------------------------------
# distortions


def test_deterministic_distortions_have_their_formula_as_image():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50), "c": rng.random(50)})
    a, b, c = (df[k].to_numpy() for k in "abc")
    cases = [
        (Scale("a", 1.3, center=0.5), "a", 0.5 + 1.3 * (a - 0.5)),
        (Offset("a", -0.2), "a", a - 0.2),
        (Monotone("a", "sinh", 0.8, loc=0.1, scale=2.0), "a",
         0.1 + 2 * np.sinh(0.4 * (a - 0.1)) / 0.8),
        (Monotone("a", "power", 3.0), "a", a**3),
        (Monotone("a", "tanh", 0.5), "a", np.tanh(0.5 * a) / 0.5),
        (Correlated(("a", "b"), 0.4, loc=(0, 1), scale=(2, 4)), "a", a + 0.4 * 2 * (b - 1) / 4),
        (ContextShift("a", "c", slope=2.0, center=0.5), "a", a + 2.0 * (c - 0.5)),
    ]  # fmt: skip
    for d, col, expected in cases:
        out = d.apply(df, rng=0)
        np.testing.assert_allclose(out[col], expected, rtol=1e-12, err_msg=d.name)
        pd.testing.assert_frame_equal(out, d.image(df))
        others = [k for k in df if k != col]
        pd.testing.assert_frame_equal(out[others], df[others])  # nothing else moves
        assert d.invertible and d.describe()["distortion"] == type(d).__name__
    pd.testing.assert_frame_equal(df, pd.DataFrame({"a": a, "b": b, "c": c}))  # not mutated
    json.dumps([d.describe() for d, _, _ in cases])


def test_monotone_distortions_are_strictly_increasing():
    x = pd.DataFrame({"x": np.linspace(-5, 5, 1001)})
    for kind in ("sinh", "power", "tanh"):
        y = Monotone("x", kind, 1.7, loc=0.3, scale=1.5).apply(x)["x"].to_numpy()
        assert np.all(np.diff(y) > 0), kind


def test_integer_columns_stay_integer_and_are_rounded():
    df = pd.DataFrame({"hits": np.array([0, 1, 3, 10], dtype=np.int32)})
    out = Scale("hits", 1.5).apply(df)
    assert out["hits"].dtype == np.int32
    assert out["hits"].tolist() == [0, 2, 4, 15]  # rint: 1.5 -> 2, 4.5 -> 4 (half to even)
    assert Offset("hits", 0.4).image(df)["hits"].tolist() == [0, 1, 3, 10]


def test_smear_is_random_reproducible_and_has_no_image():
    df = pd.DataFrame({"e": np.full(20_000, 10.0)})
    d = Smear("e", sigma=0.5, sigma_rel=0.1)
    a, b = d.apply(df, rng=3), d.apply(df, rng=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(d.apply(df, rng=4))
    # variance adds: 0.5^2 + (0.1 * 10)^2; the sample std has relative error 1/sqrt(2n) = 0.5 %
    assert float(a["e"].std()) == pytest.approx(math.sqrt(0.25 + 1.0), rel=0.025)
    assert not d.invertible
    with pytest.raises(ConfigError, match="no known image"):
        d.image(df)
    with pytest.raises(ConfigError, match="seed"):
        d.apply(df)


def test_distortion_bad_input_names_the_column_or_parameter():
    df = pd.DataFrame({"x": [1.0, 2.0], "flag": [True, False], "s": ["a", "b"]})
    with pytest.raises(InputError, match="column 'y'"):
        Offset("y", 1.0).apply(df)
    with pytest.raises(InputError, match=r"column 'flag'.*not numeric"):
        Scale("flag", 2.0).apply(df)
    with pytest.raises(InputError, match="column 's'"):
        ContextShift("x", "s", 1.0).apply(df)
    with pytest.raises(ConfigError, match="factor"):
        Scale("x", 0.0)
    with pytest.raises(ConfigError, match="kind"):
        Monotone("x", "cubic")
    with pytest.raises(ConfigError, match="strength"):
        Monotone("x", "power", -1.0)
    with pytest.raises(ConfigError, match="features"):
        Correlated(("x", "x"), 0.3)
    with pytest.raises(ConfigError, match="sigma"):
        Smear("x")
    with pytest.raises(ConfigError, match="delta"):
        Offset("x", float("nan"))


def test_default_distortions_are_sized_from_the_data_and_detectable():
    rng = np.random.default_rng(2)
    n = 2 * N
    data = pd.DataFrame(
        {"a": rng.normal(0, 2, n), "b": rng.normal(-1, 0.5, n), "z": rng.uniform(0, 10, n)}
    )
    ds = default_distortions(data, ["a", "b"], ["z"])
    assert [type(d).__name__ for d in ds] == [
        "Scale", "Offset", "Smear", "Monotone", "Correlated", "ContextShift",
    ]  # fmt: skip
    assert ds[1].feature == "b" and ds[1].delta == pytest.approx(0.25, rel=0.05)  # 0.5 sd
    src, tgt = data.iloc[:N], data.iloc[N:].reset_index(drop=True)
    for k, d in enumerate(ds):
        moved = d.apply(tgt, rng=k)
        r = compare_samples(src, moved, ["a", "b"], context=["z"], n_boot=0, classifier=FAST)
        # a clear shift: 5 null standard deviations (0.009 here) above 0.5
        assert r.auc_before[0] > 0.5 + 5 * r.auc_null_sigma, d.name
    with pytest.raises(InputError, match=r"column 'c'.*constant"):
        default_distortions(data.assign(c=1.0), ["a", "c"])


# --------------------------------------------------------------------------------------------
# diagnostics


def test_weighted_helpers_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(501, 2))
    q = weighted_quantiles(x, np.ones(501), [0.1, 0.5, 0.9])
    np.testing.assert_allclose(q, np.quantile(x, [0.1, 0.5, 0.9], axis=0, method="inverted_cdf"))
    # integer weights = duplicated rows
    w = rng.integers(1, 4, 501)
    np.testing.assert_allclose(
        weighted_quantiles(x, w.astype(float), [0.3]),
        np.quantile(np.repeat(x, w, axis=0), [0.3], axis=0, method="inverted_cdf"),
    )
    np.testing.assert_allclose(
        weighted_correlation(x, w.astype(float)), np.corrcoef(np.repeat(x, w, axis=0).T)
    )


def test_compare_samples_sees_a_shift_and_its_correction():
    rng = np.random.default_rng(4)
    src = pd.DataFrame({"x": rng.normal(0.5, 1, N), "y": rng.normal(size=N)})
    tgt = pd.DataFrame({"x": rng.normal(0.0, 1, N), "y": rng.normal(size=N)})
    fresh = pd.DataFrame({"x": rng.normal(0.0, 1, N), "y": rng.normal(size=N)})
    floor = statistical_floor(tgt, fresh, ["x", "y"], auc=False, seed=1)
    good = src.assign(x=src["x"] - 0.5)
    bad = src.assign(x=src["x"] - 0.3)  # under-corrected by 0.2 sd
    d = compare_samples(src, tgt, ["x", "y"], corrected=good, floor=floor, classifier=FAST)
    # W1 of a 0.5 shift is 0.5 up to the floor (about 0.04 at 2,000 per side)
    assert d.w1_before["x"] == pytest.approx(0.5, abs=0.1)
    assert d.ratio_before["x"] > 8 and d.ratio_after["x"] < 2.5  # perfect: 2x in 2.5 % cases
    assert d.auc_before[0] > 0.6 and d.auc_after[0] < 0.5 + 4 * 0.014
    assert d.w1_after["y"] == d.w1_before["y"]
    b = compare_samples(src, tgt, ["x", "y"], corrected=bad, floor=floor, classifier=FAST)
    assert b.ratio_after["x"] > 4
    # the summary's pulls see the residual 0.2 shift of the mean (se 0.032): pull near -6
    pulls = b.summary.set_index(["feature", "stat"])["pull"]
    assert pulls["x", "mean"] > 4 and abs(pulls["y", "mean"]) < 4
    assert set(d.table().columns) >= {"w1_before", "w1_after", "w1_floor", "ratio_after"}
    text = json.dumps(d.to_dict(histograms=True))
    assert "ratio_after" in text


def test_reweighted_sample_and_correlations():
    rng = np.random.default_rng(5)
    cov = [[1.0, 0.6], [0.6, 1.0]]
    src = pd.DataFrame(rng.normal(size=(N, 2)), columns=["x", "y"])
    tgt = pd.DataFrame(rng.multivariate_normal([0.5, 0.0], cov, N), columns=["x", "y"])
    # exact density ratio of x only: the x marginal is fixed, the correlation is not
    w = np.exp(0.5 * src["x"] - 0.125)
    d = compare_samples(src, tgt, ["x", "y"], corrected=src, corrected_weight=w,
                        classifier=FAST, n_boot=50)  # fmt: skip
    assert d.w1_before["x"] > 0.35 and d.w1_after["x"] < 0.1
    assert d.ess["corrected"] < 0.9 * N  # Kish ESS of the weights: N / exp(0.25) = 0.78 N
    assert d.ess["corrected"] == pytest.approx(N * math.exp(-0.25), rel=0.05)
    # correlation: 0.6 in the target (its se at n = 2000 is (1 - 0.36)/sqrt(n) = 0.014)
    assert d.corr["target"][0, 1] == pytest.approx(0.6, abs=0.06)
    assert d.corr_diff_before == pytest.approx(0.6, abs=0.08)
    assert d.corr_diff_after == pytest.approx(0.6, abs=0.08)
    assert d.auc_after[0] > 0.55  # the correlation is still missing


def test_bootstrap_errors_match_the_analytic_ones():
    rng = np.random.default_rng(6)
    n = 4000
    src = pd.DataFrame({"x": rng.normal(size=n)})
    tgt = pd.DataFrame({"x": rng.normal(size=n)})
    w = np.where(np.arange(n) % 2 == 0, 1.0, 3.0)
    d = compare_samples(src, tgt, ["x"], corrected=src, corrected_weight=w, auc=False,
                        n_boot=300, seed=2)  # fmt: skip
    s = d.summary.set_index("stat")
    # unweighted target: se(mean) = 1/sqrt(n), se(std) = 1/sqrt(2n),
    # se(median) = sqrt(pi/2)/sqrt(n). 300 replicas estimate an se to 1/sqrt(600) = 4 %:
    # tolerance 20 % (5 sigma) for mean/std, 30 % for the (rougher) median.
    assert s.loc["mean", "target_se"] == pytest.approx(1 / math.sqrt(n), rel=0.2)
    assert s.loc["std", "target_se"] == pytest.approx(1 / math.sqrt(2 * n), rel=0.2)
    assert s.loc["q50", "target_se"] == pytest.approx(math.sqrt(math.pi / 2 / n), rel=0.3)
    # weighted mean: se = sqrt(sum w^2) / sum w
    se_w = math.sqrt(float(np.sum(w**2))) / float(np.sum(w))
    assert s.loc["mean", "corrected_se"] == pytest.approx(se_w, rel=0.2)
    assert s.loc["mean", "corrected"] == pytest.approx(np.average(src["x"], weights=w))


def test_bootstrap_on_a_subsample_scales_its_errors(monkeypatch):
    import ariasim.shift.diagnostics as diagnostics

    monkeypatch.setattr(diagnostics, "BOOTSTRAP_MAX_ROWS", 1000)
    rng = np.random.default_rng(13)
    n = 8000
    tgt = pd.DataFrame({"x": rng.normal(size=n)})
    d = compare_samples(tgt, tgt, ["x"], auc=False, n_boot=300, seed=4)
    s = d.summary.set_index("stat")
    # resampling 1000 of 8000 events, scaled by sqrt(1000/8000): same errors as on all
    assert s.loc["mean", "target_se"] == pytest.approx(1 / math.sqrt(n), rel=0.2)
    assert s.loc["std", "target_se"] == pytest.approx(1 / math.sqrt(2 * n), rel=0.2)


def test_statistical_floor_follows_the_sqrt_n_law():
    # E W1 of two samples of a distribution F -> sqrt(1/na + 1/nb) * int E|B(F(x))| dx with
    # B a Brownian bridge, E|B(t)| = sqrt(2 t (1 - t) / pi) (del Barrio et al. 1999)
    c, _ = integrate.quad(
        lambda x: math.sqrt(2 * stats.norm.cdf(x) * stats.norm.sf(x) / math.pi), -12, 12
    )
    rng = np.random.default_rng(7)
    a = pd.DataFrame({"x": rng.normal(size=4000)})
    b = pd.DataFrame({"x": rng.normal(size=1000)})
    fl = statistical_floor(a, b, ["x"], n_perm=40, classifier=FAST)
    expected = c * math.sqrt(1 / 4000 + 1 / 1000)
    # 40 re-splits: relative spread of one null W1 is 0.37, of the mean 6 %: 25 % is 4 sigma
    assert fl.w1["x"] == pytest.approx(expected, rel=0.25)
    assert fl.w1_spread["x"] / fl.w1["x"] == pytest.approx(0.37, abs=0.15)
    assert abs(fl.auc - 0.5) < 4 * 0.02  # null sd at 4000 vs 1000, plus classifier noise
    # halves of one sample, moved to two full-size samples: times sqrt(1/2) exactly
    half = statistical_floor(a, None, ["x"], auc=False)
    assert half.n_a == half.n_b == 2000
    assert half.scaled(4000, 4000)["x"] == pytest.approx(half.w1["x"] / math.sqrt(2))
    assert half.w1["x"] == pytest.approx(c * math.sqrt(2 / 2000), rel=0.3)
    json.dumps(fl.to_dict())


def test_plots_are_png_and_embed_in_a_report(tmp_path):
    rng = np.random.default_rng(8)
    src = pd.DataFrame({"x": rng.normal(0.3, 1, 500), "k": rng.poisson(2, 500)})
    tgt = pd.DataFrame({"x": rng.normal(0, 1, 500), "k": rng.poisson(3, 500)})
    d = compare_samples(src, tgt, ["x", "k"], corrected=src.assign(x=src["x"] - 0.3),
                        auc=False, n_boot=0)  # fmt: skip
    assert np.all(np.diff(d.histograms["k"]["edges"]) == 1.0)  # one bin per count
    fig = plot_features(d, tmp_path / "features.png")
    assert (tmp_path / "features.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rep = HtmlReport("shift").figure(fig, "features")
    rep.figure(plot_correlations(d, tmp_path / "corr.png"), "correlations")
    assert (tmp_path / "corr.png").stat().st_size > 1000
    assert rep.save(tmp_path / "r.html").read_text().count("data:image/png") == 2
    rep2 = report_diagnostics(HtmlReport("diag"), d)
    assert rep2.n_figures == 2 and "Wasserstein" in rep2.render()
    with pytest.raises(ConfigError, match="path"):
        plot_features(d, tmp_path / "f.pdf")
    with pytest.raises(ConfigError, match="diag"):
        plot_correlations({"x": 1})


def test_compare_samples_is_reproducible():
    data = gamma_data(1000, seed=9)
    src, tgt = data.iloc[:500], data.iloc[500:]
    kw = {"corrected": src, "classifier": FAST, "n_boot": 20, "seed": 3}
    a = compare_samples(src, tgt, ["x"], **kw).to_dict()
    assert json.dumps(a) == json.dumps(compare_samples(src, tgt, ["x"], **kw).to_dict())


def test_compare_samples_bad_input():
    ok = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "s": list("abcde")})
    with pytest.raises(InputError, match=r"column 'y'.*target"):
        compare_samples(ok.assign(y=1.0), ok, ["y"])
    with pytest.raises(InputError, match=r"column 's'.*not numeric"):
        compare_samples(ok, ok, ["s"])
    with pytest.raises(InputError, match="source sample is empty"):
        compare_samples(ok.iloc[:0], ok, ["x"])
    with pytest.raises(InputError, match=r"column 'x'.*NaN"):
        compare_samples(ok, ok.assign(x=[1.0, np.nan, 3, 4, 5]), ["x"])
    with pytest.raises(ConfigError, match="target_weight"):
        compare_samples(ok, ok, ["x"], target_weight=[1.0, 2.0])
    with pytest.raises(ConfigError, match="source_weight"):
        compare_samples(ok, ok, ["x"], source_weight=[1.0, -1, 1, 1, 1])
    with pytest.raises(ConfigError, match="context"):
        compare_samples(ok, ok, ["x"], context=["x"])
    with pytest.raises(ConfigError, match="classifier"):
        compare_samples(ok, ok, ["x"], classifier={"n_trees": 3})
    with pytest.raises(InputError, match="DataFrame"):
        compare_samples(ok["x"], ok, ["x"])


# --------------------------------------------------------------------------------------------
# the harness


ONE_D = [
    Scale("x", 1.3),
    Offset("x", 1.0),  # half a standard deviation of Gamma(4)
    Monotone("x", "power", 1.5, scale=4.0),  # non-linear response x^1.5 / 2
    Smear("x", sigma=2.0),
]


def test_quantile_morpher_recovers_1d_distortions_and_closure():
    res = validate(QuantileMorpher, gamma_data(), ["x"], distortions=ONE_D, n=N,
                   classifier=FAST, seed=1)  # fmt: skip
    assert res.cases[0].name == "closure"
    assert res.thresholds["auc_max"] == 0.55 and res.thresholds["image_max"] == pytest.approx(
        5 / math.sqrt(N)
    )
    for c in res.cases:
        assert c.passed, (c.name, c.failures)
        assert c.kind == "morpher"
        if c.name != "closure":  # every injected shift is clearly seen before correction
            assert c.auc_before[0] > 0.5 + 5 * c.auc_null_sigma, c.name
            assert c.shift_z > 5
    closure = res["closure"]
    # closure: the exact map moves each event by the quantile noise only, ~1.8/sqrt(n) sd
    assert max(closure.displacement.values()) < 5 / math.sqrt(N)
    assert closure.image_error == pytest.approx(closure.displacement)
    off = res["offset(x, 1)"]
    assert off.image_typical["x"] < 5 / math.sqrt(N)
    assert off.displacement["x"] == pytest.approx(0.5, abs=0.1)  # moved by 1.0 = 0.5 sd
    assert res["smear(x, 2, 0)"].image_error is None  # random: no event-wise check
    assert res.passed
    table = res.table()
    assert list(table["case"]) == [c.name for c in res.cases]
    text = json.dumps(res.to_dict(diagnostics=True))
    assert '"passed": true' in text
    rep = report_validation(HtmlReport("validate"), res, plots=False, details=True)
    html = rep.render()
    assert "PASS: 5 of 5 cases" in html and "monotone(x, power, 1.5, 0, 4)" in html


def test_identity_fails_and_marginal_morpher_misses_a_correlation():
    data = gamma_data()
    res = validate(Identity, data, ["x"], distortions=[Scale("x", 1.3)], n=N,
                   classifier=FAST)  # fmt: skip
    assert res["closure"].passed  # learning nothing is right when there is nothing
    sc = res["scale(x, 1.3, 0)"]
    assert not sc.passed and not res.passed
    assert any("AUC" in f for f in sc.failures) and any("event-wise" in f for f in sc.failures)
    # |x' - 1.3 x| / sd = 0.3 x / (1.3 * 2): typical value ~ 0.5
    assert sc.image_typical["x"] > 0.3
    rng = np.random.default_rng(10)
    two = pd.DataFrame({"a": rng.normal(size=3 * N), "b": rng.normal(size=3 * N)})
    res2 = validate(QuantileMorpher, two, ["a", "b"], distortions=[Correlated(("a", "b"), 0.6)],
                    n=N, classifier=FAST, closure=False)  # fmt: skip
    c = res2.cases[0]
    assert not c.passed and c.auc_after[0] > 0.55
    # the marginals are fixed (W1 near the floor) but not the correlation
    assert c.diagnostics.corr_diff_after > 0.3 and max(c.w1_ratio.values()) < 2.5


def test_reweighter_path_and_context_shift():
    data = gamma_data()
    res = validate(HistogramReweighter, data, ["x"], distortions=[Offset("x", 1.0)], n=N,
                   classifier=FAST, seed=2)  # fmt: skip
    for c in res.cases:
        assert c.kind == "reweighter" and c.image_error is None and c.displacement is None
        assert c.passed, (c.name, c.failures)
    # closure weights are near one (20 bins of 100 events: ESS loss ~ 20/2000 = 1 %)
    assert res["closure"].ess_fraction > 0.95
    assert res["offset(x, 1)"].ess_fraction < 0.9
    # a context-dependent shift is invisible to a marginal morpher of x alone
    rng = np.random.default_rng(11)
    ctx = pd.DataFrame({"x": rng.normal(size=3 * N), "z": rng.uniform(-1, 1, 3 * N)})
    res3 = validate(QuantileMorpher, ctx, ["x"], ["z"],
                    distortions=[ContextShift("x", "z", slope=1.0)], n=N, classifier=FAST,
                    closure=False)  # fmt: skip
    assert not res3.passed and res3.cases[0].auc_after[0] > 0.55


def test_validate_is_reproducible_and_uses_the_weight_column():
    data = gamma_data(1500, seed=12).assign(w=lambda d: 1.0 + (d["x"] > 4))
    kw = {"n": 500, "classifier": FAST, "seed": 5, "distortions": [Offset("x", 1.0)]}
    a = validate(QuantileMorpher, data, ["x"], weight="w", **kw)
    b = validate(QuantileMorpher, data, ["x"], weight="w", **kw)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    ess = a["closure"].diagnostics.ess["target"]
    assert ess < 500  # the weights are used
    assert a.learner == "QuantileMorpher"


def test_validate_bad_input():
    data = gamma_data(300)
    with pytest.raises(InputError, match="column 'y'"):
        validate(QuantileMorpher, data, ["y"])
    with pytest.raises(ConfigError, match=r"'n'.*need 3000 rows"):
        validate(QuantileMorpher, data, ["x"], n=1000)
    with pytest.raises(ConfigError, match=r"distortions.*'z'"):
        validate(QuantileMorpher, data, ["x"], distortions=[Offset("z", 1.0)])
    with pytest.raises(ConfigError, match="distortions"):
        validate(QuantileMorpher, data, ["x"], distortions=["offset"])
    with pytest.raises(ConfigError, match=r"learner.*no fit"):
        validate(object, data, ["x"], distortions=[], classifier=FAST)
    fit_only = type("FitOnly", (), {"fit": lambda self, X, y: self})
    with pytest.raises(ConfigError, match=r"learner.*neither"):
        validate(fit_only, data, ["x"], distortions=[], classifier=FAST)
    with pytest.raises(ConfigError, match="auc_max"):
        validate(QuantileMorpher, data, ["x"], auc_max=0.4)
    with pytest.raises(ConfigError, match="nothing to validate"):
        validate(QuantileMorpher, data, ["x"], distortions=[], closure=False)
    with pytest.raises(InputError, match="column 'w'"):
        validate(QuantileMorpher, data, ["x"], weight="w")
