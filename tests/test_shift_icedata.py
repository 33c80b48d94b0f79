"""Data of the domain-shift applications: ice models and the photon-surrogate correction.

Small samples (500 rows per side). The statistical tolerances come from the null
distribution of the classifier AUC: for independent samples of sizes n_a, n_b its standard
deviation is sqrt((n_a + n_b + 1) / (12 n_a n_b)) (Mann-Whitney), about 0.018 here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ariasim.apps.shift.ice import (
    FEATURES,
    ICE_CONTEXT,
    ice_samples,
    keep_per_event,
    module_hit_features,
)
from ariasim.apps.shift.photon_surrogate import (
    SURROGATE_CONTEXT,
    photon_surrogate_samples,
    surrogate_source_rows,
    train_photon_surrogate,
)
from ariasim.errors import ConfigError
from ariasim.metrics import classifier_test

N = 500
#: The smallest surrogate training that gives a usable surrogate (a few CPU-seconds).
TINY = {"n_photons": 5e4, "generations_yield": 5, "generations_density": 3}


def null_sigma(n_a: int, n_b: int) -> float:
    return math.sqrt((n_a + n_b + 1) / (12 * n_a * n_b))


@pytest.fixture(scope="module")
def ice():
    return ice_samples(N, seed=5, fresh=True)


@pytest.fixture(scope="module")
def sur():
    return photon_surrogate_samples(N, seed=5, training=TINY)


def check_frame(df: pd.DataFrame, context: list[str], n: int) -> None:
    assert list(df.columns) == FEATURES + context
    assert len(df) == n
    assert df["charge"].dtype == np.int64 and (df["charge"] >= 1).all()
    for c in df.columns[1:]:
        assert df[c].dtype == np.float64 and np.isfinite(df[c]).all(), c
    assert (df["t_median_ns"] >= df["t_first_ns"]).all()
    one = df["charge"] == 1
    assert (df.loc[one, "t_median_ns"] == df.loc[one, "t_first_ns"]).all()
    assert 0.3 < one.mean() < 0.95  # mostly single hits, but not only
    # scattered light is late; only forward cascade light and the oversized module are early
    assert df["t_first_ns"].min() > -20.0 and df["t_median_ns"].median() > 0.0
    assert df["distance_m"].between(0.0, 40.0).all()


def test_ice_samples_columns_and_bookkeeping(ice):
    assert ice.features == FEATURES and ice.context == ICE_CONTEXT
    for role in ("source", "target", "fresh"):
        df = getattr(ice, role)
        check_frame(df, ICE_CONTEXT, N)
        assert df["cos_view"].between(-1.0, 1.0).all()
        assert df["z_m"].between(-150.0, 46.0).all()
        ev = ice.events[role]
        assert ev.shape == (N,) and np.all(np.diff(ev) >= 0)
        assert np.bincount(ev).max() <= 2  # max_rows_per_event
        assert ice.cpu_seconds[role] > 0 and ice.rows_per_cpu_second()[role] > 0
    assert ice.provenance["old_model"] == "bulk"
    assert ice.provenance["new_model"] == "layered-dusty"
    assert ice.n_rows == {"source": N, "target": N, "fresh": N}


def test_ice_shift_is_real_and_fresh_samples_agree(ice):
    sig = null_sigma(N, N)
    shift = classifier_test(ice.source, ice.target, seed=0)
    # a real shift: one-sided p < 0.0015 (measured about 5.5 sigma at this size, 0.668
    # against a null sigma of 0.003 at 20,000 rows per side)
    assert shift.value > 0.5 + 3 * sig, shift
    closure = classifier_test(ice.target, ice.fresh, seed=0)
    assert abs(closure.value - 0.5) < 4 * sig, closure


def test_ice_samples_reproducible(ice):
    n = 100
    again = ice_samples(n, seed=5)
    # same seed: byte-identical (a smaller sample is a prefix of a larger one)
    for role in ("source", "target"):
        pd.testing.assert_frame_equal(
            getattr(again, role), getattr(ice, role).iloc[:n], check_exact=True
        )
        assert getattr(again, role).to_numpy().tobytes() == (
            getattr(ice, role).iloc[:n].to_numpy().tobytes()
        )
    other = ice_samples(n, seed=6)
    assert not other.source.equals(again.source)
    # old and new use independent source streams
    assert not np.isin(again.source["distance_m"], again.target["distance_m"]).any()


def test_photon_surrogate_samples(sur):
    assert sur.features == FEATURES and sur.context == SURROGATE_CONTEXT
    for role in ("source", "target"):
        check_frame(getattr(sur, role), SURROGATE_CONTEXT, N)
        assert getattr(sur, role)["distance_m"].min() >= 5.0
    assert sur.fresh is None
    assert set(sur.cpu_seconds) == {"source", "target", "surrogate_training"}
    # the surrogate draws rows much faster than the MC simulates them
    assert sur.provenance["n_photons_propagated"]["source"] == 0
    # the (tiny) surrogate is distinguishable from the MC: the classifier test rejects
    # "no shift" at the 0.1 % level (since the delay density's point mass for direct
    # photons, the tiny surrogate's AUC is about 3.6 null sigma above 0.5, no longer 4+)
    res = classifier_test(sur.source, sur.target, seed=0)
    assert res.p_value < 1e-3 and res.value > 0.5, res


def test_photon_surrogate_reproducible_and_from_file(sur, tmp_path):
    n = 100
    again = photon_surrogate_samples(n, seed=5, training=TINY, fresh=True)
    pd.testing.assert_frame_equal(again.source, sur.source.iloc[:n], check_exact=True)
    pd.testing.assert_frame_equal(again.target, sur.target.iloc[:n], check_exact=True)
    assert not again.fresh.equals(again.target)
    model, _ = train_photon_surrogate(seed=5, **TINY)
    path = model.save(tmp_path / "sur.json")
    from_file = photon_surrogate_samples(n, seed=5, surrogate=path)
    pd.testing.assert_frame_equal(from_file.source, again.source, check_exact=True)
    assert from_file.cpu_seconds["surrogate_training"] == 0.0


def test_surrogate_source_rows_are_more_of_the_source(sur):
    """surrogate_source_rows with the samples' surrogate (models["source"], not retrained)
    draws fresh rows of the source's distribution: per-feature KS and the classifier test
    find no difference (at 0.1 % / 4 null sigma), while the MC rows stay distinguishable."""
    from scipy.stats import ks_2samp

    model = sur.models["source"]
    n = 4000
    extra = surrogate_source_rows(n, model, seed=11)
    check_frame(extra, SURROGATE_CONTEXT, n)
    assert extra["distance_m"].min() >= 5.0
    again = surrogate_source_rows(n, model, seed=11)
    assert extra.to_numpy().tobytes() == again.to_numpy().tobytes()
    other = surrogate_source_rows(200, model, seed=12)
    assert not np.isin(other["distance_m"], extra["distance_m"]).any()
    # fresh flashers, not the samples' own
    assert not np.isin(sur.source["distance_m"], extra["distance_m"]).any()
    for col in sur.columns:  # 5 columns: Bonferroni 0.1 % in all
        assert ks_2samp(sur.source[col], extra[col]).pvalue > 2e-4, col
    res = classifier_test(sur.source, extra, seed=0)
    assert abs(res.value - 0.5) < 4 * null_sigma(N, n), res
    # the same test sees the surrogate's error against the MC (it can fail)
    assert classifier_test(sur.target, extra, seed=0).p_value < 1e-3
    # other settings are other rows: a narrower window is refused by KS on distance_m
    near = surrogate_source_rows(1000, model, seed=11, max_distance_m=20.0)
    assert ks_2samp(sur.source["distance_m"], near["distance_m"]).pvalue < 1e-6
    with pytest.raises(ConfigError, match="surrogate"):
        surrogate_source_rows(10, 42, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_rows"):
        surrogate_source_rows(0, model, seed=0)
    with pytest.raises(ConfigError, match="min_distance_m"):
        surrogate_source_rows(10, model, seed=0, min_distance_m=50.0)
    with pytest.raises(ConfigError, match="oversize"):
        surrogate_source_rows(10, model, seed=0, oversize=0.0)


def test_module_hit_features_and_row_choice():
    f = module_hit_features(
        np.array([1, 0, 0, 0, 0]), np.array([3, 2, 2, 2, 2]), np.array([7.0, 4.0, 1.0, 3.0, 9.0])
    )
    assert f["charge"].tolist() == [4, 1]
    assert f["t_first_ns"].tolist() == [1.0, 7.0]
    assert f["t_median_ns"].tolist() == [3.5, 7.0]
    ev = np.repeat(np.arange(50), 5)
    keep = keep_per_event(ev, 2, np.random.default_rng(0))
    assert np.bincount(ev[keep]).tolist() == [2] * 50
    # every row of an event is equally likely to be kept
    counts = sum(
        keep_per_event(ev, 2, np.random.default_rng(s)).reshape(50, 5).sum(axis=0)
        for s in range(20)
    )
    expect = 20 * 50 * 2 / 5  # 400 per position, binomial sd about 15
    assert np.all(np.abs(counts - expect) < 5 * math.sqrt(expect * 0.6))


@pytest.mark.parametrize("n_rows", [0, -3, 2.5, True, "100"])
def test_bad_n_rows(n_rows):
    with pytest.raises(ConfigError, match="n_rows"):
        ice_samples(n_rows)
    with pytest.raises(ConfigError, match="n_rows"):
        photon_surrogate_samples(n_rows)


def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"'old'.*unknown ice model 'granite'"):
        ice_samples(10, old="granite")
    with pytest.raises(ConfigError, match="'new'"):
        ice_samples(10, new="bulk ice")
    with pytest.raises(ConfigError, match="energy_gev"):
        ice_samples(10, energy_gev=(0.0, 5.0))
    with pytest.raises(ConfigError, match="oversize"):
        ice_samples(10, oversize=0.5)
    with pytest.raises(ConfigError, match="max_rows_per_event"):
        ice_samples(10, max_rows_per_event=0)
    with pytest.raises(ConfigError, match="surrogate"):
        photon_surrogate_samples(10, surrogate=42)
    with pytest.raises(ConfigError, match="min_distance_m"):
        photon_surrogate_samples(10, min_distance_m=50.0)
    with pytest.raises(ConfigError, match="events_per_chunk"):
        photon_surrogate_samples(10, events_per_chunk=2.5)
    with pytest.raises(ConfigError, match="training"):
        photon_surrogate_samples(10, surrogate="x.json", training=TINY)
    with pytest.raises(ConfigError, match=r"training.*unknown keys"):
        photon_surrogate_samples(10, training={"epochs": 3})
