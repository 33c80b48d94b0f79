"""MorphReweighter: a morpher, then a classifier reweighter for the residual it leaves
(small sizes, few epochs). The AUC checks compare with the classifier test's own null
standard deviation (about 0.008 at 3000 events per side)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from ariasim.errors import ConfigError, InputError
from ariasim.metrics import classifier_test
from ariasim.shift import ClassifierReweighter, FlowMorpher, MorphReweighter, load, stack
from ariasim.shift.chain import row_folds
from ariasim.shift.workflow import make_learner

torch = pytest.importorskip("torch")
pytest.importorskip("zuko")

N = 3000
TINY = dict(flow_transforms=1, hidden_features=(16,), batch_size=256, learning_rate=1e-3)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _sample(n, target, seed):
    """x: a scale and offset change; k: a count whose mean moves with x in the target."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.0, 1.0, n)
    x = rng.normal(0.5 * c, 1.0, n)
    if target:
        x = 1.3 * x + 0.4
    lam = 3.0 + (0.6 * np.clip(x, -2, 3) if target else np.zeros(n))
    k = rng.poisson(np.maximum(lam, 0.2))
    return pd.DataFrame({"x": x, "k": k, "c": c})


@pytest.fixture(scope="module")
def data():
    src, tgt = _sample(N, False, 1), _sample(N, True, 2)
    fresh_src, fresh_tgt = _sample(N, False, 3), _sample(N, True, 4)
    return src, tgt, fresh_src, fresh_tgt


@pytest.fixture(scope="module")
def chain(data):
    src, tgt, _, _ = data
    X, y, _ = stack(src, tgt)
    # a deliberately under-trained flow (two epochs): it moves the events part of the way
    # (measured AUC 0.70 after it alone, 0.66 before), leaving a residual inside the support
    morpher = FlowMorpher(max_epochs=2, **TINY)
    return MorphReweighter(
        ["x", "k"], ["c"], morpher=morpher, reweighter=ClassifierReweighter(n_estimators=200)
    ).fit(X, y)


def _auc(a, b, wa=None):
    r = classifier_test(a, b, weights_a=wa, seed=0)
    return r.value, r.details["null_sigma"]


def test_reweighter_removes_the_residual_on_fresh_events(chain, data):
    _, _, fresh_src, fresh_tgt = data
    moved, w = chain.correct(fresh_src)
    auc_morph, sigma = _auc(moved, fresh_tgt)
    auc_chain, _ = _auc(moved, fresh_tgt, w)
    assert auc_morph > 0.5 + 6 * sigma, auc_morph  # the morph alone leaves a clear residual
    assert auc_chain < auc_morph - 6 * sigma, (auc_morph, auc_chain)
    assert auc_chain <= 0.55, auc_chain  # the goal at CI sizes (measured 0.520)
    assert 0.0 < chain.ess_fraction_ <= 1.0 and chain.auc_oof_ > 0.5
    assert np.all(w > 0) and np.all(np.isfinite(w))
    # transform alone is the morph, weights alone the weights of the same morphed rows
    pd.testing.assert_frame_equal(chain.transform(fresh_src), moved)
    np.testing.assert_array_equal(chain.weights(fresh_src), w)


def test_score_uses_the_weights(chain, data):
    _, _, fresh_src, fresh_tgt = data
    X, y, _ = stack(fresh_src, fresh_tgt)
    moved, w = chain.correct(fresh_src)
    auc, _ = _auc(moved, fresh_tgt, w)
    assert chain.score(X, y) == pytest.approx(1 - 2 * abs(auc - 0.5))


def test_save_load_round_trip(chain, data, tmp_path):
    _, _, fresh_src, _ = data
    chain.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "model.json",
        "morpher",
        "reweighter",
    ]
    back = load(tmp_path / "m")
    assert isinstance(back, MorphReweighter)
    a, wa = chain.correct(fresh_src)
    b, wb = back.correct(fresh_src)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(wa, wb)
    assert back.ess_fraction_ == chain.ess_fraction_


def test_load_rejects_a_swapped_stage(chain, tmp_path):
    import shutil

    chain.save(tmp_path / "m")
    shutil.rmtree(tmp_path / "m" / "morpher")
    shutil.copytree(tmp_path / "m" / "reweighter", tmp_path / "m" / "morpher")
    with pytest.raises(InputError, match="expected a FlowMorpher"):
        load(tmp_path / "m")


def _tiny_chain(**kw) -> MorphReweighter:
    """A morph + reweight chain small enough for a test (two flow epochs, 30 trees)."""
    return MorphReweighter(
        ["x", "k"],
        ["c"],
        morpher=FlowMorpher(max_epochs=2, **TINY),
        reweighter=ClassifierReweighter(n_estimators=30),
        **kw,
    )


def test_same_seed_same_result_and_reweight_fraction(data):
    src, tgt, fresh_src, _ = data
    X, y, _ = stack(src.iloc[:800], tgt.iloc[:800])

    def fit(**kw):
        return _tiny_chain(**kw).fit(X, y)

    a, b = fit(), fit()
    np.testing.assert_array_equal(a.weights(fresh_src), b.weights(fresh_src))
    c = fit(reweight_fraction=0.5)
    # the morpher learned on half the rows, the reweighter on the other half
    assert c.morpher_.n_train_ + c.morpher_.n_val_ == 800
    assert np.all(np.isfinite(c.weights(fresh_src)))


def test_make_learner_routes_options():
    m = make_learner(
        "flow+reweight",
        ["x"],
        ["c"],
        seed=3,
        options={"max_epochs": 7, "reweight_n_estimators": 11, "reweight_fraction": 0.2},
    )
    assert isinstance(m, MorphReweighter) and isinstance(m.morpher, FlowMorpher)
    assert m.morpher.max_epochs == 7 and m.reweighter.n_estimators == 11
    assert m.reweight_fraction == 0.2 and m.random_state == 3
    fm = make_learner("flow-matching+reweight", ["x"], None)
    assert type(fm.morpher).__name__ == "FlowMatchingMorpher"
    with pytest.raises(ConfigError, match="nonsense"):
        make_learner("flow+reweight", ["x"], None, options={"nonsense": 1})


def test_chain_with_a_context_first_reweighter_round_trips(data, tmp_path):
    """``reweight_context_first`` reaches the chain's reweighter, and the chain saves and
    loads its context stage (same weights to the byte)."""
    src, tgt, fresh_src, _ = data
    m = make_learner(
        "quantile+reweight",
        ["x", "k"],
        ["c"],
        seed=2,
        options={"reweight_context_first": True, "reweight_n_estimators": 50},
    )
    assert m.reweighter.context_first is True
    X, y, _ = stack(src.iloc[:800], tgt.iloc[:800])
    m.fit(X, y)
    assert m.reweighter_.context_stage_ is not None
    moved, w = m.correct(fresh_src.iloc[:500])
    again = load(m.save(tmp_path / "cf"))
    moved2, w2 = again.correct(fresh_src.iloc[:500])
    assert w2.tobytes() == w.tobytes() and moved2.equals(moved)


def test_errors(data):
    src, tgt, _, _ = data
    X, y, _ = stack(src.iloc[:50], tgt.iloc[:50])
    with pytest.raises(ConfigError, match="not fitted"):
        MorphReweighter().correct(src)
    with pytest.raises(ConfigError, match="reweight_fraction"):
        MorphReweighter(reweight_fraction=0.95).fit(X, y)
    with pytest.raises(ConfigError, match="morpher"):
        MorphReweighter(morpher=ClassifierReweighter()).fit(X, y)
    with pytest.raises(ConfigError, match="reweighter"):
        MorphReweighter(reweighter=FlowMorpher()).fit(X, y)


def test_cli_fit_and_apply_write_morphed_columns_and_weights(tmp_path):
    from typer.testing import CliRunner

    from ariasim.cli.commands import app

    src, tgt = _sample(400, False, 5), _sample(400, True, 6)
    src.to_parquet(tmp_path / "src.parquet")
    tgt.to_parquet(tmp_path / "tgt.parquet")
    runner = CliRunner()
    fit = ["shift", "fit", str(tmp_path / "src.parquet"), str(tmp_path / "tgt.parquet")]
    fit += ["--out", str(tmp_path / "m"), "--features", "x,k", "--context", "c"]
    fit += ["--method", "flow+reweight", "--epochs", "3"]
    r = runner.invoke(app, fit)
    assert r.exit_code == 0, r.output
    import json

    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["learner"] == "MorphReweighter" and 0 < summary["ess_fraction"] <= 1
    assert summary["params"]["morpher__max_epochs"] == 3
    apply = ["shift", "apply", str(tmp_path / "m"), str(tmp_path / "src.parquet")]
    r = runner.invoke(app, [*apply, "--out", str(tmp_path / "out.parquet")])
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    moved, w = load(tmp_path / "m").correct(src)
    np.testing.assert_array_equal(out["x"].to_numpy(), moved["x"].to_numpy())
    np.testing.assert_array_equal(out["shift_weight"].to_numpy(), w)
    np.testing.assert_array_equal(out["x_original"].to_numpy(), src["x"].to_numpy())


def test_harness_judges_the_weighted_morph():
    from ariasim.report import HtmlReport
    from ariasim.shift.inject import Offset, report_validation, validate

    df = _sample(1500, False, 7)

    def factory():
        return MorphReweighter(
            morpher=FlowMorpher(max_epochs=10, **TINY),
            reweighter=ClassifierReweighter(n_estimators=50),
        )

    r = validate(factory, df, ["x", "k"], ["c"], [Offset("x", 0.5)], n=500, closure=False)
    case = r.cases[0]
    assert case.kind == "morpher+reweighter"
    assert case.image_typical is not None and 0 < case.ess_fraction <= 1
    report_validation(HtmlReport("t"), r)


class MemorisingMorpher(BaseEstimator):
    """The extreme of a morpher that memorises its rows (like an empirical quantile map):
    each training source row goes exactly onto a training target row; any other row is left
    unchanged. It records every row it was trained on and every row it morphed."""

    def __init__(self, features=None, context=None, random_state=0):
        self.features = features
        self.context = context
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        y = np.asarray(y)
        self.features_, self.context_ = list(self.features), list(self.context or [])
        src, tgt = X[y == 0], X[y == 1]
        rng = np.random.default_rng(self.random_state)
        pick = rng.choice(len(tgt), len(src))
        self.map_ = {
            tuple(a): b
            for a, b in zip(
                src[self.features_].to_numpy(), tgt[self.features_].to_numpy()[pick], strict=True
            )
        }
        self.seen_ = {tuple(r) for r in X[self.features_ + self.context_].to_numpy()}
        self.morphed_ = set()
        return self

    def transform(self, X):
        out = X.copy()
        vals = X[self.features_].to_numpy()
        out[self.features_] = np.array([self.map_.get(tuple(r), r) for r in vals])
        self.morphed_ |= {tuple(r) for r in X[self.features_ + self.context_].to_numpy()}
        return out


def _memorising_chain(X, y, **kw):
    return MorphReweighter(
        ["x"],
        ["c"],
        morpher=MemorisingMorpher(),
        reweighter=ClassifierReweighter(n_estimators=100),
        random_state=4,
        **kw,
    ).fit(X, y)


def test_cross_fit_shows_the_reweighter_the_residual_a_memorising_morpher_hides(data):
    src, tgt, fresh_src, fresh_tgt = data
    src, tgt = src[["x", "c"]], tgt[["x", "c"]]  # x continuous: rows are unique
    X, y, _ = stack(src.iloc[:1500], tgt.iloc[:1500])
    plain = _memorising_chain(X, y)
    cf = _memorising_chain(X, y, cross_fit=3)
    # every fold morpher saw the other two folds only, and morphed exactly its held-out
    # fold's source rows: an out-of-fold row is never one its morpher was trained on
    rows = {tuple(r) for r in X[["x", "c"]].to_numpy()}
    src_rows = {tuple(r) for r in src.iloc[:1500].to_numpy()}
    assert np.bincount(cf.fold_).tolist() == [1000, 1000, 1000]
    assert [np.bincount(cf.fold_[np.asarray(y) == k]).tolist() for k in (0, 1)] == [[500] * 3] * 2
    morphed = set()
    for j, m in enumerate(cf.fold_morphers_):
        assert len(m.seen_) == 2000 and m.seen_ <= rows
        assert not m.morphed_ & m.seen_
        assert m.morphed_ == {
            tuple(r) for r in X[["x", "c"]].to_numpy()[(cf.fold_ == j) & (np.asarray(y) == 0)]
        }
        morphed |= m.morphed_
    assert morphed == src_rows
    # on its own rows the memorising morph is perfect, so the plain chain's reweighter finds
    # nothing; the cross-fitted one sees the whole shift (the morph is the identity on new
    # rows) and its weights remove it from fresh rows, which the final morpher leaves as they are
    moved, w_plain = plain.correct(fresh_src[["x", "c"]])
    moved_cf, w_cf = cf.correct(fresh_src[["x", "c"]])
    assert cf.morphers_ == cf.fold_morphers_  # the default: new rows go to the fold morphers
    fresh_t = fresh_tgt[["x", "c"]]
    auc_plain, sigma = _auc(moved, fresh_t, w_plain)
    auc_cf, _ = _auc(moved_cf, fresh_t, w_cf)
    assert plain.auc_oof_ < 0.5 + 4 * sigma < cf.auc_oof_
    assert auc_plain > 0.5 + 6 * sigma, auc_plain
    assert auc_cf < auc_plain - 6 * sigma, (auc_plain, auc_cf)


def test_cross_fit_save_load_same_seed_and_errors(data, tmp_path):
    src, tgt, fresh_src, _ = data
    X, y, _ = stack(src.iloc[:600], tgt.iloc[:600])

    def fit(**kw):
        return _tiny_chain(**kw).fit(X, y)

    a, b = fit(cross_fit=2), fit(cross_fit=2)
    np.testing.assert_array_equal(a.weights(fresh_src), b.weights(fresh_src))
    assert [m.n_train_ + m.n_val_ for m in a.morphers_] == [600, 600]
    # each row is moved by the fold morpher its values' hash picks
    moved = a.transform(fresh_src)
    fold = row_folds(fresh_src[["x", "k", "c"]], 2)
    assert 0.4 < fold.mean() < 0.6
    for j, m in enumerate(a.morphers_):
        pd.testing.assert_frame_equal(moved[fold == j], m.transform(fresh_src[fold == j]))
    a.save(tmp_path / "m")
    assert (tmp_path / "m" / "morpher_fold1").is_dir()
    back = load(tmp_path / "m")
    assert back.cross_fit == 2 and back.auc_oof_ == a.auc_oof_ and len(back.morphers_) == 2
    np.testing.assert_array_equal(back.weights(fresh_src), a.weights(fresh_src))
    pd.testing.assert_frame_equal(back.transform(fresh_src), moved)
    # "refit": the morpher is the one the chain without cross-fitting has (same seed, all rows)
    plain, refit = fit(), fit(cross_fit=2, cross_fit_morph="refit")
    pd.testing.assert_frame_equal(refit.transform(fresh_src), plain.transform(fresh_src))
    assert refit.morpher_.n_train_ + refit.morpher_.n_val_ == 1200
    for bad in (1, -2, True, 2.0):
        with pytest.raises(ConfigError, match="cross_fit"):
            MorphReweighter(cross_fit=bad).fit(X, y)
    with pytest.raises(ConfigError, match="cross_fit"):
        MorphReweighter(cross_fit=2, reweight_fraction=0.3).fit(X, y)
    with pytest.raises(ConfigError, match="cross_fit_morph"):
        MorphReweighter(cross_fit=2, cross_fit_morph="mean").fit(X, y)
    with pytest.raises(ConfigError, match="cross_fit"):
        MorphReweighter(cross_fit=4).fit(*stack(src.iloc[:5], tgt.iloc[:5])[:2])
    m = make_learner("flow+reweight", ["x"], ["c"], options={"cross_fit": 3})
    assert m.cross_fit == 3


def test_row_folds_are_balanced_and_depend_on_every_column():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"n": rng.integers(0, 40, 6000), "x": rng.normal(size=6000)})
    counts = np.bincount(row_folds(df, 3), minlength=3)
    # multinomial: each count 2000 +- sqrt(6000 * 1/3 * 2/3) = 36.5
    assert np.all(np.abs(counts - 2000) < 5 * 36.5), counts
    ints = np.bincount(row_folds(df[["n"]], 2), minlength=2)  # 40 integer values only
    assert ints.min() > 0
    moved = df.assign(x=df["x"] + 1e-9)
    assert np.mean(row_folds(moved, 3) != row_folds(df, 3)) > 0.5
