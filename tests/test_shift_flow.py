"""FlowMorpher: injected shifts are learned back, closure, counts/spikes, context,
persistence, determinism and bad input (small sizes, few epochs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ariasim.errors import ConfigError, InputError
from ariasim.metrics import classifier_test
from ariasim.shift import FlowMorpher, load, stack

torch = pytest.importorskip("torch")
pytest.importorskip("zuko")

# small, fast settings; the defaults are sized for 20k events per side
FAST = dict(
    flow_transforms=2,
    hidden_features=(64, 64),
    max_epochs=40,
    patience=8,
    batch_size=128,
    learning_rate=5e-3,
)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _gauss(n: int, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    a = rng.normal(0.0, 1.0, n)
    b = 0.6 * a + 0.8 * rng.normal(0.0, 1.0, n)
    if shifted:
        a, b = 1.3 * a + 0.5, b - 0.4
    return pd.DataFrame({"a": a, "b": b})


@pytest.fixture(scope="module")
def gauss_model():
    """A 2-D Gaussian offset + scale shift at 2500 events per side, with fresh test samples."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(11)
    n = 2500
    src, tgt = _gauss(n, rng, False), _gauss(n, rng, True)
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(random_state=3, **FAST).fit(X, y)
    return m, _gauss(n, rng, False), _gauss(n, rng, True), X, y


def test_gaussian_shift_is_morphed_away(gauss_model):
    m, src, tgt, _, _ = gauss_model
    before = classifier_test(src, tgt, seed=0).value
    after = classifier_test(m.transform(src), tgt, seed=0).value
    # with 2500 per side the null AUC has sd ~0.008, so 0.55 is ~6 sigma above 0.5
    assert before > 0.65
    assert after <= 0.55, (before, after)
    # the inverse carries the target back to the source
    back = classifier_test(m.inverse_transform(tgt), src, seed=0).value
    assert back <= 0.55
    # the event-by-event image of an affine shift: x' = 1.3 x + 0.5 for feature a
    err = np.abs(m.transform(src)["a"] - (1.3 * src["a"] + 0.5))
    assert float(np.median(err)) < 0.15
    # the target's rows are more likely under the target switch than under the source's
    assert m.log_prob(tgt, 1).mean() > m.log_prob(tgt, 0).mean() + 0.05
    assert m.n_epochs_ == len(m.history_["train"]) == len(m.history_["val"])
    assert 1 <= m.best_epoch_ <= m.n_epochs_ and m.train_seconds_ > 0


def test_score_follows_the_contract(gauss_model):
    m, src, tgt, _, _ = gauss_model
    X, y, _ = stack(src, tgt)
    s = m.score(X, y)
    assert 0.9 <= s <= 1.0  # 1 - 2|AUC - 0.5| with AUC <= 0.55


def test_closure_keeps_events_close():
    rng = np.random.default_rng(5)
    n = 2000
    src, tgt = _gauss(n, rng, False), _gauss(n, rng, False)
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(random_state=0, **FAST).fit(X, y)
    moved = m.transform(src)
    for col in ("a", "b"):
        d = np.abs(moved[col] - src[col])
        # the learned "shift" between two samples of one law is statistical noise (the
        # quantiles of two samples of 2000 differ by ~0.04 sd): events move by a small
        # fraction of the spread (seen: 0.04-0.09), where a wrong pairing moves them by ~1
        assert float(np.median(d)) < 0.15 * src[col].std(), col


def _counts_spikes(n: int, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    a = rng.normal(0.0, 1.0, n)
    hits = rng.poisson(np.exp(1.0 + 0.3 * a) * (1.3 if shifted else 1.0))
    p0 = 0.15 if shifted else 0.3
    iso = np.where(rng.random(n) < p0, 0.0, rng.exponential(1.0, n))
    return pd.DataFrame({"a": a, "hits": hits.astype(np.int64), "iso": iso})


def test_counts_stay_integers_and_spike_stays_exact():
    rng = np.random.default_rng(8)
    n = 2500
    src, tgt = _counts_spikes(n, rng, False), _counts_spikes(n, rng, True)
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(random_state=2, **FAST).fit(X, y)
    assert [c.integer for c in m.codec_.columns] == [False, True, False]
    assert m.codec_.columns[2].spike_lo == 0.0
    fresh = _counts_spikes(n, rng, False)
    moved = m.transform(fresh)
    assert moved["hits"].dtype == np.int64 and (moved["hits"] >= 0).all()
    assert (moved["iso"] >= 0).all()
    zero = float((moved["iso"] == 0.0).mean())
    # the spike is exactly 0 for some events, and its fraction moves towards the target's
    # 0.15 (from 0.3); binomial sd at n=2500 is 0.008, so 0.21 leaves room for the flow
    assert 0.05 < zero < 0.21, zero
    # the mean count moves to the target's (sd of a mean of 2500 counts ~0.04)
    assert abs(moved["hits"].mean() - 1.3 * fresh["hits"].mean()) < 0.3
    # float count column (integral values) also stays integral
    src_f = src.assign(hits=src["hits"].astype(float))
    out_f = m.transform(src_f)["hits"].to_numpy()
    assert np.array_equal(out_f, np.round(out_f))


def _atom_gaps(n: int, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    """An interior atom (``w`` = 0.7 for 5 % of the source, 15 % of the target) and a
    count with gaps (7, 8, 11, 12, 13: 9, 10 and 14 never occur) whose mix shifts."""
    p_atom = 0.15 if shifted else 0.05
    w = np.where(rng.random(n) < p_atom, 0.7, rng.normal(0.0, 1.0, n) + (0.3 if shifted else 0))
    p = [0.03, 0.12, 0.02, 0.23, 0.60] if shifted else [0.03, 0.22, 0.02, 0.13, 0.60]
    hits = rng.choice([7, 8, 11, 12, 13], size=n, p=p)
    return pd.DataFrame({"w": w, "hits": hits.astype(np.int64)})


def test_interior_atom_and_count_gaps_are_morphed_exactly(tmp_path):
    """With ``atom_tolerance`` and ``count_levels`` the morph moves rows into the interior
    atom (exact value) as the target has more of it, and (almost) never puts a count into
    a gap (without them: 0 rows in the atom, 34 in 9 and 10, 14 at 14)."""
    rng = np.random.default_rng(41)
    n = 2500
    src, tgt = _atom_gaps(n, rng, False), _atom_gaps(n, rng, True)
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(random_state=3, atom_tolerance=0.005, count_levels=32, **FAST).fit(X, y)
    assert m.codec_.columns[0].atoms is not None and m.codec_.columns[0].atoms[0][1:] == (0.7,)
    assert m.codec_.columns[1].count_values == tuple(np.arange(7.0, 14.0))
    fresh = _atom_gaps(n, rng, False)
    moved = m.transform(fresh)
    # 9 and 10 keep a sliver of 0.5 / 5000 each (a row or so may land there), 14 none
    assert set(np.unique(moved["hits"])) <= set(range(7, 14))
    assert int(moved["hits"].isin([9, 10]).sum()) <= 5
    # the atom's fraction moves from 0.05 to the target's 0.15 (binomial sd at n = 2500:
    # 0.007; the bound leaves the flow's own error room) and its rows are exactly 0.7
    frac = float((moved["w"] == 0.7).mean())
    assert 0.10 < frac < 0.20, frac
    near = (np.abs(moved["w"] - 0.7) < 1e-9) & (moved["w"] != 0.7)
    assert not near.any()
    # the count's mix moves: 12 from 13 % towards 23 %, 8 from 22 % towards 12 %
    assert float((moved["hits"] == 12).mean()) > 0.18
    assert float((moved["hits"] == 8).mean()) < 0.17
    m.save(tmp_path / "m")
    pd.testing.assert_frame_equal(load(tmp_path / "m").transform(fresh), moved)


def _narrow_peak(n: int, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    """A narrow peak (30 % of the events within ~1e-4 of 0.5) that both domains share,
    correlated with a feature ``b`` that the shift moves."""
    at = rng.random(n) < 0.3
    a = np.where(at, 0.5 + 1e-4 * rng.normal(size=n), rng.normal(0.0, 1.0, n))
    b = 0.5 * a + rng.normal(0.0, 1.0, n) + (0.8 if shifted else 0.0)
    return pd.DataFrame({"a": a, "b": b})


def test_quantile_map_keeps_a_narrow_shared_peak(tmp_path):
    rng = np.random.default_rng(31)
    n = 2500
    src, tgt = _narrow_peak(n, rng, False), _narrow_peak(n, rng, True)
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(random_state=1, quantile_knots=100, **FAST).fit(X, y)
    fresh = _narrow_peak(n, rng, False)
    moved = m.transform(fresh)
    m.save(tmp_path / "m")
    pd.testing.assert_frame_equal(load(tmp_path / "m").transform(fresh), moved)
    # the fraction in the peak's window stays the 0.3 that both domains have (binomial sd
    # at n = 2500 is 0.009; 5 sd allowed): splines alone smooth such a peak out
    frac = float((np.abs(moved["a"] - 0.5) < 5e-4).mean())
    assert abs(frac - 0.3) < 0.046, frac
    assert abs(moved["b"].mean() - (tgt["b"].mean())) < 0.15


def test_context_dependent_shift_is_learned():
    rng = np.random.default_rng(21)
    n = 3000

    def sample(shifted: bool) -> pd.DataFrame:
        c = rng.uniform(-1.0, 1.0, n)
        x = rng.normal(0.0, 1.0, n) + (0.8 * c if shifted else 0.0)
        return pd.DataFrame({"x": x, "c": c})

    src, tgt = sample(False), sample(True)
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(context=["c"], random_state=4, **FAST).fit(X, y)
    assert m.features_ == ["x"] and m.context_ == ["c"]
    fresh, tgt2 = sample(False), sample(True)
    moved = m.transform(fresh)
    assert np.array_equal(moved["c"].to_numpy(), fresh["c"].to_numpy())
    # the offset is learned as a function of c: the slope of (x' - x) against c is 0.8 for
    # the exact morph and 0 for a context-blind one (statistical sd ~0.05; the small flow
    # trained for seconds learns 0.67-0.86 of it over seeds)
    slope = np.polyfit(fresh["c"], moved["x"] - fresh["x"], 1)[0]
    assert 0.5 < slope < 1.1, slope
    assert classifier_test(moved, tgt2, seed=1).value <= 0.55


def test_one_feature_without_context():
    rng = np.random.default_rng(2)
    src = pd.DataFrame({"x": rng.exponential(1.0, 1500)})
    tgt = pd.DataFrame({"x": rng.exponential(1.5, 1500)})
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(random_state=0, **FAST).fit(X, y)
    moved = m.transform(src)
    # the exact morph is x' = 1.5 x; sd of the learned mean ~0.055 (both samples' noise)
    assert abs(moved["x"].mean() - 1.5 * src["x"].mean()) < 0.2
    # a 1-D morph is monotone: the order of the events is kept
    assert np.all(np.diff(moved["x"].to_numpy()[np.argsort(src["x"].to_numpy())]) >= 0)


def test_bounded_feature_stays_inside_its_bounds():
    rng = np.random.default_rng(17)
    src = pd.DataFrame({"eff": rng.beta(2.0, 5.0, 1500)})
    tgt = pd.DataFrame({"eff": rng.beta(4.0, 3.0, 1500)})
    X, y, _ = stack(src, tgt)
    m = FlowMorpher(bounds={"eff": (0.0, 1.0)}, random_state=0, **FAST).fit(X, y)
    assert m.codec_.columns[0].kind == "logit"
    moved = m.transform(src)["eff"]
    assert ((moved >= 0.0) & (moved <= 1.0)).all()
    # target mean 4/7 = 0.571 (sd of a sample mean ~0.005); source mean 2/7 = 0.286
    assert abs(moved.mean() - 4.0 / 7.0) < 0.03, moved.mean()


def test_sample_weights_are_honoured():
    rng = np.random.default_rng(13)
    src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 2000)})
    tgt = pd.DataFrame({"x": rng.normal(0.0, 1.0, 1000)})
    # weights exp(0.5 x) turn N(0, 1) into N(0.5, 1); the target is half the source's size
    X, y, w = stack(src, tgt, target_weight=np.exp(0.5 * tgt["x"]))
    calls: list[tuple[int, int, float]] = []
    m = FlowMorpher(random_state=0, progress=lambda *a: calls.append(a), **FAST)
    m.fit(X, y, sample_weight=w)
    assert [c[0] for c in calls] == list(range(1, m.n_epochs_ + 1))
    assert all(c[1] == FAST["max_epochs"] and np.isfinite(c[2]) for c in calls)
    shift = float(m.transform(src)["x"].mean() - src["x"].mean())
    # sd of the weighted target mean ~0.035 (Kish ESS ~780)
    assert abs(shift - 0.5) < 0.15, shift


def test_save_load_round_trip_is_byte_identical(gauss_model, tmp_path):
    m, src, _, _, _ = gauss_model
    out = m.save(tmp_path / "flow")
    assert (out / "model.json").is_file() and (out / "weights.safetensors").is_file()
    with pytest.raises(ConfigError, match="exists"):
        m.save(tmp_path / "flow")
    back = load(out)
    assert isinstance(back, FlowMorpher)
    assert back.history_ == m.history_ and back.n_epochs_ == m.n_epochs_
    a, b = m.transform(src), back.transform(src)
    assert a.equals(b)
    assert m.inverse_transform(src).equals(back.inverse_transform(src))


def test_same_seed_same_bytes_and_chunk_independent(gauss_model):
    m, src, _, X, y = gauss_model
    m2 = FlowMorpher(random_state=3, **FAST).fit(X, y)
    assert m2.history_ == m.history_
    a, b = m.transform(src), m2.transform(src)
    assert a.equals(b)
    # transforming in row pieces gives the same bytes as one call (continuous features)
    pieces = pd.concat([m.transform(src.iloc[i : i + 700]) for i in range(0, len(src), 700)])
    assert pieces.equals(a)
    # the global random states are untouched by fit and transform
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (checks the global state)
    t_state = torch.get_rng_state().clone()
    tiny = dict(FAST, max_epochs=2)
    out0 = FlowMorpher(random_state=0, **tiny).fit(X, y).transform(src)
    m.transform(src)
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), t_state)
    # a different seed gives a different model
    assert not FlowMorpher(random_state=1, **tiny).fit(X, y).transform(src).equals(out0)


def test_one_feature_flow_is_seeded_whatever_the_global_state():
    """A one-feature flow's hyper-network is zuko's own ``Linear`` (zuko >= 1.6), not a
    ``torch.nn.Linear``: its weights too must come from the seed, not from torch's global
    generator (which torch seeds at random in every process)."""
    rng = np.random.default_rng(4)
    src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 400)})
    X, y, _ = stack(src, pd.DataFrame({"x": rng.normal(1.0, 1.0, 400)}))
    tiny = dict(FAST, max_epochs=2)
    outs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        m = FlowMorpher(random_state=0, **tiny).fit(X, y)
        outs.append((m.history_, m.transform(src)))
    assert outs[0][0] == outs[1][0]
    assert outs[0][1].equals(outs[1][1])


def test_bad_input_is_named(gauss_model):
    m, src, _, X, y = gauss_model
    with pytest.raises(ConfigError, match="not fitted"):
        FlowMorpher().transform(src)
    with pytest.raises(InputError, match="'b'"):
        m.transform(src.drop(columns=["b"]))
    bad = src.copy()
    bad.loc[3, "a"] = np.nan
    with pytest.raises(InputError, match="'a'"):
        m.transform(bad)
    Xn = X.copy()
    Xn.loc[0, "b"] = np.inf
    with pytest.raises(InputError, match="'b'"):
        FlowMorpher(**FAST).fit(Xn, y)
    with pytest.raises(InputError, match="'zz'"):
        FlowMorpher(features=["zz"], **FAST).fit(X, y)
    with pytest.raises(ConfigError, match="flow_transforms"):
        FlowMorpher(flow_transforms=0).fit(X, y)
    with pytest.raises(ConfigError, match="hidden_features"):
        FlowMorpher(hidden_features=64).fit(X, y)
    with pytest.raises(ConfigError, match="device"):
        FlowMorpher(device="tpu").fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            FlowMorpher(device="cuda").fit(X, y)
    with pytest.raises(ConfigError, match="y"):
        FlowMorpher(**FAST).fit(X, np.full(len(X), 2))
    with pytest.raises(ConfigError, match="validation_fraction"):
        FlowMorpher(validation_fraction=1.5).fit(X, y)
