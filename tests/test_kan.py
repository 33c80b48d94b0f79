"""Tests of the KAN estimators (ariasim.surrogates.kan) and their symbolic extraction."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.formula import Formula
from ariasim.surrogates.kan import KANClassifier, KANRegressor
from ariasim.surrogates.kan_symbolic import fit_edge

NOISE = 0.01


def _separable(n: int, seed: int, noise: float = NOISE) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))  # third column: pure noise input
    y = X[:, 0] ** 2 + np.sin(2 * X[:, 1]) + noise * rng.normal(size=n)
    return X, y


def _truth(X: np.ndarray) -> np.ndarray:
    return X[:, 0] ** 2 + np.sin(2 * X[:, 1])


@pytest.fixture(scope="module")
def additive() -> KANRegressor:
    X, y = _separable(2000, 0)
    df = pd.DataFrame(X[:, :2], columns=["u", "v"])
    return KANRegressor(hidden=(), random_state=0).fit(df, y)


@pytest.fixture(scope="module")
def deep() -> KANRegressor:
    X, y = _separable(2000, 1)
    return KANRegressor(hidden=(4,), random_state=0).fit(X, y)


def test_additive_recovers_formula(additive: KANRegressor) -> None:
    Xt, _ = _separable(2000, 10)
    Xt = Xt[:, :2]
    df = pd.DataFrame(Xt, columns=["u", "v"])
    assert additive.score(df, _truth(Xt)) > 0.999
    formulas = additive.symbolic()
    f = formulas["mean"]
    assert isinstance(f, Formula) and f.names == ["u", "v"]
    assert set(additive.symbolic_report_["function"]) == {"x^2", "sin"}
    assert not additive.symbolic_report_["numeric"].any()
    # the formula reproduces the truth well within the noise
    rmse = np.sqrt(np.mean((f(Xt) - _truth(Xt)) ** 2))
    assert rmse < 0.3 * NOISE
    # and extrapolates (closed form, not a spline): 20 % beyond the training range
    wide = np.column_stack([np.linspace(-1.2, 1.2, 50)] * 2)
    assert np.max(np.abs(f(wide) - _truth(wide))) < 0.05
    assert f.variables[0].low is not None and f.variables[0].low < -0.99
    Formula.from_json(f.to_json())  # JSON round trip through the whitelist parser


def test_numeric_fallback(additive: KANRegressor) -> None:
    with pytest.warns(UserWarning, match="numeric"):
        f = additive.symbolic(library=["x"])["mean"]
    report = additive.symbolic_report_
    assert report["numeric"].any()
    assert (report.loc[report["numeric"], "function"] == "cubic").all()
    Xt, _ = _separable(500, 11)
    assert np.sqrt(np.mean((f(Xt[:, :2]) - _truth(Xt)) ** 2)) < 0.05  # cubic: approximate
    with pytest.raises(ConfigError):
        additive.symbolic(library=["nope"])


def test_deep_accuracy_pruning_plot(deep: KANRegressor, tmp_path) -> None:
    Xt, _ = _separable(2000, 12)
    assert deep.score(Xt, _truth(Xt)) > 0.999
    first = deep.network_.layers[0].mask.numpy()
    assert first[:, 2].sum() == 0, "the pure-noise input keeps active edges"
    assert deep.n_active_edges_ < 3 * 4 + 4
    h = deep.history_
    assert list(h.columns[:4]) == ["epoch", "train_loss", "val_loss", "n_active_edges"]
    assert h["n_active_edges"].iloc[-1] == deep.n_active_edges_
    f = deep.symbolic()["mean"]
    assert not sp_free(f, "x2")
    assert np.sqrt(np.mean((f(Xt) - _truth(Xt)) ** 2)) < NOISE
    fig = deep.plot_edges(tmp_path / "edges.png")
    assert (tmp_path / "edges.png").stat().st_size > 1000
    assert len([ax for ax in fig.axes if ax.lines]) == deep.n_active_edges_


def sp_free(f: Formula, name: str) -> bool:
    return any(s.name == name for s in f.expression.free_symbols)


def test_deterministic() -> None:
    X, y = _separable(600, 2)
    kw = {"hidden": (3,), "max_epochs": 15, "random_state": 7}
    a = KANRegressor(**kw).fit(X, y).predict(X)
    b = KANRegressor(**kw).fit(X, y).predict(X)
    c = KANRegressor(**{**kw, "random_state": 8}).fit(X, y).predict(X)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_gaussian_heteroscedastic_sigma() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    x = rng.uniform(0, 1, n)
    y = np.sin(3 * x) + (0.1 + 0.2 * x) * rng.normal(size=n)
    m = KANRegressor(hidden=(), loss="gaussian", random_state=0).fit(x[:, None], y)
    g = np.linspace(0.1, 0.9, 5)[:, None]
    true_sigma = 0.1 + 0.2 * g[:, 0]
    # statistical error of a local sigma estimate from ~n/5 points: ~sigma / sqrt(2 n / 5)
    # ~ 2 %; the smooth fit pools neighbours, so 8 % is > 3 standard errors
    np.testing.assert_allclose(m.predict_sigma(g), true_sigma, rtol=0.08)
    np.testing.assert_allclose(m.predict(g), np.sin(3 * g[:, 0]), atol=0.03)
    f = m.symbolic()
    assert set(f) == {"mean", "sigma"}
    np.testing.assert_allclose(f["sigma"](g), true_sigma, rtol=0.08)
    np.testing.assert_allclose(f["mean"](g), np.sin(3 * g[:, 0]), atol=0.03)
    # sigma's constants are re-fitted to the network's sigma (not to the data's
    # likelihood): the formula reproduces the network, up to the snapping residual
    np.testing.assert_allclose(f["sigma"](g), m.predict_sigma(g), rtol=0.02)
    with pytest.raises(ConfigError):
        KANRegressor(max_epochs=2).fit(x[:, None], y).predict_sigma(g)


def test_lognormal() -> None:
    rng = np.random.default_rng(4)
    n = 6000
    x = rng.uniform(0, 1, n)
    s = 0.1 + 0.2 * x
    y = np.exp(0.5 + x + s * rng.normal(size=n))
    m = KANRegressor(hidden=(), loss="lognormal", random_state=0).fit(x[:, None], y)
    g = np.linspace(0.1, 0.9, 5)[:, None]
    sg = 0.1 + 0.2 * g[:, 0]
    np.testing.assert_allclose(m.predict_sigma(g), sg, rtol=0.1)
    np.testing.assert_allclose(m.predict_median(g), np.exp(0.5 + g[:, 0]), rtol=0.03)
    np.testing.assert_allclose(m.predict(g), np.exp(0.5 + g[:, 0] + sg**2 / 2), rtol=0.03)
    f = m.symbolic()
    assert set(f) == {"mean", "sigma", "mu"}
    np.testing.assert_allclose(f["mu"](g), 0.5 + g[:, 0], atol=0.03)
    np.testing.assert_allclose(f["mean"](g), m.predict(g), rtol=0.03)
    with pytest.raises(InputError, match="y > 0"):
        KANRegressor(loss="lognormal").fit(x[:, None], y - 10)


def test_classifier_calibration_and_symbolic() -> None:
    rng = np.random.default_rng(5)
    n = 8000
    X = rng.uniform(-1, 1, (n, 2))
    p_true = 1 / (1 + np.exp(-(2 * X[:, 0] - X[:, 1] + 0.5)))
    labels = np.where(rng.uniform(size=n) < p_true, "sig", "bkg")
    clf = KANClassifier(hidden=(), random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["bkg", "sig"]
    Xt = rng.uniform(-1, 1, (20000, 2))
    pt = 1 / (1 + np.exp(-(2 * Xt[:, 0] - Xt[:, 1] + 0.5)))
    yt = rng.uniform(size=pt.size) < pt
    proba = clf.predict_proba(Xt)
    assert proba.shape == (20000, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # binned calibration: observed frequency vs mean prediction within binomial errors
    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(proba[:, 1], edges) - 1, 0, 9)
    for b in range(10):
        sel = idx == b
        if sel.sum() < 50:
            continue
        pm = proba[sel, 1].mean()
        err = np.sqrt(pm * (1 - pm) / sel.sum())
        assert abs(yt[sel].mean() - pm) < 4 * err + 0.01, (b, yt[sel].mean(), pm)
    assert np.max(np.abs(proba[:, 1] - pt)) < 0.08
    assert set(clf.predict(Xt[:5])) <= {"bkg", "sig"}
    f = clf.symbolic()
    prob = f["probability"]
    far = rng.uniform(-50, 50, (1000, 2))
    vals = prob(far)
    assert np.all((vals >= 0) & (vals <= 1))
    assert np.max(np.abs(prob(Xt) - pt)) < 0.08


def test_formulas_are_the_default_extraction_cached_until_refit() -> None:
    X, y = _separable(300, 3)
    m = KANRegressor(hidden=(), lamb=0.0, max_epochs=30, random_state=0)
    with pytest.raises(NotFittedError):
        _ = m.formulas_
    m.fit(X, y)
    first = m.formulas_
    assert set(first) == {"mean"} and m.formula_ is first["mean"]
    assert m.formulas_["mean"] is first["mean"]  # cached: not extracted again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear = m.symbolic(library=["x"], r2_threshold=1e-9)
    assert m.formula_ is linear["mean"]  # an explicit extraction replaces the cache
    m.fit(X, -y)
    assert m.formula_ is not linear["mean"]  # a new fit drops it
    np.testing.assert_allclose(m.formula_(X), m.predict(X), atol=0.1)
    clf = KANClassifier(hidden=(), lamb=0.0, max_epochs=20, random_state=0).fit(X, y > 0.5)
    assert set(clf.formulas_) == {"probability", "logit"}
    assert clf.formula_ is clf.formulas_["probability"]


def test_sample_weight_equals_duplication() -> None:
    X, y = _separable(300, 6)
    X, y = X[:, :2], y
    w = np.where(np.arange(300) < 150, 2.0, 1.0)
    Xd = np.concatenate([X, X[:150]])
    yd = np.concatenate([y, y[:150]])
    kw = {
        "hidden": (2,),
        "optimizer": "lbfgs",
        "lr": 1.0,
        "max_epochs": 1,
        "validation_fraction": 0.0,
        "grid_updates": (),
        "lamb": 0.0,
        "prune_threshold": 0.0,
        "random_state": 0,
    }
    a = KANRegressor(**kw).fit(X, y, sample_weight=w).predict(X)
    b = KANRegressor(**kw).fit(Xd, yd).predict(X)
    # full-batch L-BFGS (1 step of 20 iterations) on the same objective: equal up to
    # float32 summation order (measured ~4e-5; longer runs amplify the rounding chaotically,
    # as any non-convex optimiser would), while ignoring the weights changes the fit ~0.1
    assert np.max(np.abs(a - b)) < 1e-3 * np.std(y)
    c = KANRegressor(**kw).fit(X, y).predict(X)
    assert np.max(np.abs(a - c)) > 30 * np.max(np.abs(a - b))


def test_sklearn_contract() -> None:
    m = KANRegressor(hidden=(3,), lamb=0.01, random_state=1)
    c = clone(m)
    assert c.get_params() == m.get_params()
    assert c.get_params()["hidden"] == (3,)
    assert KANClassifier().get_params()["grid_size"] == 5
    with pytest.raises(NotFittedError):
        m.predict(np.zeros((2, 2)))
    X, y = _separable(200, 7)
    m.set_params(max_epochs=3).fit(X, y)
    assert m.n_features_in_ == 3
    assert m.predict(X).shape == (200,)


def test_bad_inputs() -> None:
    X, y = _separable(100, 8)
    fast = {"max_epochs": 2}
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        KANRegressor(**fast).fit(bad, y)
    with pytest.raises(InputError):
        KANRegressor(**fast).fit(X, y[:-1])
    with pytest.raises(InputError):
        KANRegressor(**fast).fit(X, y, sample_weight=-np.ones(100))
    with pytest.raises(ConfigError):
        KANRegressor(loss="poisson").fit(X, y)
    with pytest.raises(ConfigError):
        KANRegressor(hidden=(0,)).fit(X, y)
    with pytest.raises(ConfigError):
        KANRegressor(grid_range=(1, -1)).fit(X, y)
    with pytest.raises(ConfigError):
        KANRegressor(variable_names=["a", "b"]).fit(X, y)
    with pytest.raises(InputError):
        KANClassifier(**fast).fit(X, np.arange(100) % 3)
    m = KANRegressor(**fast).fit(X, y)
    with pytest.raises(InputError):
        m.predict(X[:, :2])


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("x", lambda x: 0.5 * x + 1.0),
        ("x^2", lambda x: 3 * (x - 0.2) ** 2 - 1),
        ("exp", lambda x: 3 * np.exp(1.5 * x) - 1),
        ("1/x", lambda x: 2 / (x + 0.3)),
        ("sin", lambda x: np.sin(3 * x + 0.5)),
        ("sqrt", lambda x: 2 * np.sqrt(x + 0.1)),
    ],
)
def test_fit_edge_library(name: str, fn) -> None:
    x = np.linspace(0.5, 2.0, 201)
    fit = fit_edge(x, fn(x))
    assert fit.function == name
    assert fit.r2 > 0.9999
    np.testing.assert_allclose(fit(x), fn(x), atol=1e-3 * np.ptp(fn(x)))


def test_fit_edge_constant_and_numeric() -> None:
    x = np.linspace(-1, 1, 201)
    assert fit_edge(x, np.full_like(x, 2.0)).function == "0"
    small = 1e-3 * x
    assert fit_edge(x, small, node_variance=1.0).function == "0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wiggly = np.sign(x) * np.abs(x) ** 0.3 + 0.3 * np.cos(7 * x)
        fit = fit_edge(x, wiggly)
    assert fit.numeric and fit.function == "cubic"


# --------------------------------------------------------------------------- optimisers


def test_network_jacobian_matches_autograd() -> None:
    import torch

    from ariasim.surrogates.kan_layers import KANNetwork

    net = KANNetwork(
        [3, 4, 2], grid_size=4, spline_order=3, generator=torch.Generator().manual_seed(0)
    ).double()
    net.layers[1].mask[1, 2] = 0.0
    x = torch.rand(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = 2.2 * x - 1.1  # some points outside the grid: zero spline, silu base only
    out, J = net.jacobian(x)
    params = list(net.parameters())
    rows = [
        torch.cat([g.flatten() for g in torch.autograd.grad(net(x[i : i + 1])[0, a], params)])
        for i in range(6)
        for a in range(2)
    ]
    torch.testing.assert_close(out, net(x))
    torch.testing.assert_close(J, torch.stack(rows).reshape(6, 2, -1), rtol=1e-10, atol=1e-12)
    assert J.shape[2] == sum(p.numel() for p in params)


def _smooth(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, np.exp(np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2)


_PLAIN = {
    "hidden": (5,),
    "lamb": 0.0,
    "prune_threshold": 0.0,
    "validation_fraction": 0.0,
    "standardize": False,
    "grid_updates": (0, 5, 10, 15),
    "random_state": 0,
}


def test_lm_fits_known_function_deterministically() -> None:
    X, y = _smooth(600, 0)
    Xt, yt = _smooth(600, 1)
    m = KANRegressor(optimizer="lm", max_epochs=30, **_PLAIN).fit(X, y)
    # noise-free target of scale ~1.5: a [2, 5, 1] cubic KAN with grid 5 represents it to
    # ~1e-3 (pykan's example); Adam with the same budget stays above 1e-1
    assert np.sqrt(np.mean((m.predict(Xt) - yt) ** 2)) < 1e-2
    assert m.history_["train_loss"].iloc[-1] < 1e-3 * m.history_["train_loss"].iloc[0]
    again = KANRegressor(optimizer="lm", max_epochs=30, **_PLAIN).fit(X, y)
    assert np.array_equal(m.predict(Xt), again.predict(Xt))
    other = KANRegressor(optimizer="lm", max_epochs=30, **{**_PLAIN, "random_state": 1})
    assert not np.array_equal(m.predict(Xt), other.fit(X, y).predict(Xt))
    # "auto" is LM for a network this small
    auto = KANRegressor(max_epochs=30, **_PLAIN).fit(X, y)
    assert np.array_equal(m.predict(Xt), auto.predict(Xt))


def test_lm_grid_refine_and_update_keep_function() -> None:
    X, y = _smooth(600, 2)
    m = KANRegressor(optimizer="lm", max_epochs=12, grid_refine=((8, 8),), **_PLAIN).fit(X, y)
    assert m.network_.layers[0].grid_size == 8 and m.network_.layers[1].grid_size == 8
    # the refinement at epoch 8 keeps training: no jump in the training loss
    h = m.history_["train_loss"].to_numpy()
    assert h[8] <= 1.5 * h[7]
    import torch

    before = m.predict(X)
    with torch.no_grad():
        m.network_.update_grids(torch.as_tensor(X, dtype=torch.float32))
    # least-squares re-projection onto the new knots: the function is kept to a small
    # fraction of its spread (limited by the spline approximation of the old spline)
    assert np.max(np.abs(m.predict(X) - before)) < 0.05 * np.std(y)


def test_lm_heteroscedastic_classifier_and_penalty() -> None:
    rng = np.random.default_rng(9)
    n = 3000
    x = rng.uniform(0, 1, n)
    y = np.sin(3 * x) + (0.1 + 0.2 * x) * rng.normal(size=n)
    m = KANRegressor(hidden=(), loss="gaussian", optimizer="lm", max_epochs=40, random_state=0).fit(
        x[:, None], y
    )
    g = np.linspace(0.1, 0.9, 5)[:, None]
    # local sigma from ~n/5 points: ~3 % statistical error; 12 % is ~4 standard errors
    np.testing.assert_allclose(m.predict_sigma(g), 0.1 + 0.2 * g[:, 0], rtol=0.12)
    np.testing.assert_allclose(m.predict(g), np.sin(3 * g[:, 0]), atol=0.04)
    X = rng.uniform(-1, 1, (n, 2))
    p = 1 / (1 + np.exp(-(2 * X[:, 0] - X[:, 1])))
    labels = rng.uniform(size=n) < p
    clf = KANClassifier(
        hidden=(), optimizer="lm", max_epochs=40, random_state=0, lamb=0.0, validation_fraction=0.0
    ).fit(X, labels)
    # maximum likelihood: the fit's training log-loss is below the truth's (which the
    # additive model contains), and its probabilities scatter around the truth by about
    # 0.5 sqrt(16 / 3000) ~ 0.04 (16 coefficients from 3000 rows)
    q = np.clip(p, 1e-12, 1 - 1e-12)
    true_loss = -np.mean(np.where(labels, np.log(q), np.log(1 - q)))
    assert clf.history_["train_loss"].iloc[-1] < true_loss
    assert np.mean(np.abs(clf.predict_proba(X)[:, 1] - p)) < 0.04
    # the sparsity penalty (gradient only) drives an unused input's edges to pruning
    Xn, yn = _separable(1500, 3)
    pen = KANRegressor(hidden=(), optimizer="lm", max_epochs=60, lamb=1e-2, random_state=0).fit(
        Xn, yn
    )
    assert pen.network_.layers[0].mask[:, 2].sum() == 0
    assert pen.score(Xn, _truth(Xn)) > 0.99


def test_optimizer_choice_and_errors() -> None:
    X, y = _separable(200, 4)
    with pytest.raises(ConfigError, match="optimizer"):
        KANRegressor(optimizer="newton").fit(X, y)
    big = KANRegressor(hidden=(40, 40), max_epochs=1)
    small = KANRegressor(hidden=(3,), max_epochs=1)
    from ariasim.surrogates.kan_layers import KANNetwork

    assert big._resolve_optimizer(KANNetwork([3, 40, 40, 1])) == "adam"
    # the default penalty lamb > 0: Adam; without it LM
    assert small._resolve_optimizer(KANNetwork([3, 3, 1])) == "adam"
    small.set_params(lamb=0.0)
    assert small._resolve_optimizer(KANNetwork([3, 3, 1])) == "lm"
    big.set_params(lamb=0.0)
    assert big._resolve_optimizer(KANNetwork([3, 40, 40, 1])) == "adam"
    for opt in ("lbfgs", "adam", "lm"):
        assert np.all(
            np.isfinite(
                KANRegressor(optimizer=opt, max_epochs=2, hidden=(2,), random_state=0)
                .fit(X, y)
                .predict(X)
            )
        )
