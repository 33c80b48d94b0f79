"""Ordered means of SymbolicDensity's two components (``ordered_means=True``): the late
component is located by its distance from the early one, mu_1 = mu_0 + exp(log_dmu_1),
so that the components cannot swap roles between conditions or between restarts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.density import SymbolicDensity
from ariasim.surrogates.formula import Formula, Variable

#: The true parameter functions (z = ln d): two gammas (log_q = log_sigma) whose
#: locations are 1.2-1.9 apart in ln t over 5-150 m.
_TRUTH = {
    "mu_0": "-1.0 + 0.8*log(d)",
    "log_sigma_0": "-0.7",
    "log_q_0": "-0.7",
    "log_dmu_1": "0.1 + 0.1*log(d)",
    "log_sigma_1": "-0.4",
    "log_q_1": "-0.4",
    "logit_w": "0.5 - 0.2*log(d)",
}


def _truth() -> SymbolicDensity:
    v = [Variable("d", low=5.0, high=150.0)]
    params = {k: Formula(sp.sympify(e), v, output=k).to_dict() for k, e in _TRUTH.items()}
    return SymbolicDensity.from_dict(
        {
            "schema": "ariasim.symbolic_density/5",
            "ordered_means": True,
            "n_components": 2,
            "t_min": 0.0,
            "t_name": "t",
            "params": params,
        }
    )


def _sample(rng, n):
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), n))
    return _truth().sample(d[:, None], 1, rng=rng)[:, 0], d


def test_ordered_means_is_validated():
    X, t = np.geomspace(5, 150, 900)[:, None], np.ones(900)
    for bad in (1, "yes", None):
        with pytest.raises(ConfigError, match="ordered_means"):
            SymbolicDensity(n_components=2, ordered_means=bad).fit(X, t)
    with pytest.raises(ConfigError, match="ordered_means"):
        SymbolicDensity(n_components=1, ordered_means=True).fit(X, t)


def test_ordered_and_free_means_are_the_same_density():
    """The ordered truth equals the density with the free mu_1 = mu_0 + exp(log_dmu_1)
    written out (CDF, log-density, formula); the torch likelihood of the refinement
    sees the same density as the numpy one."""
    import torch

    ordered = _truth()
    data = json.loads(json.dumps(ordered.to_dict()))
    assert data["schema"] == "ariasim.symbolic_density/5" and data["ordered_means"] is True
    free = dict(data, schema="ariasim.symbolic_density/1")
    del free["ordered_means"]
    v = [Variable("d", low=5.0, high=150.0)]
    mu_1 = sp.sympify(f"{_TRUTH['mu_0']} + exp({_TRUTH['log_dmu_1']})")
    params = {k: p for k, p in free["params"].items() if k != "log_dmu_1"}
    params["mu_1"] = Formula(mu_1, v, output="mu_1").to_dict()
    free = SymbolicDensity.from_dict(dict(free, params=params))
    t = np.geomspace(0.01, 500.0, 60)
    X = np.geomspace(5.0, 150.0, 60)[:, None]
    np.testing.assert_allclose(ordered.cdf(t, X), free.cdf(t, X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ordered.log_pdf(t, X), free.log_pdf(t, X), rtol=1e-12)
    tx = np.array([[0.3, 7.5], [20.0, 40.0]])  # (t, d): the CDF formulas agree too
    np.testing.assert_allclose(ordered.formula_(tx), free.formula_(tx), rtol=1e-12)
    np.testing.assert_allclose(ordered.formula_(tx), ordered.cdf(tx[:, 0], tx[:, 1:]), rtol=1e-9)
    # the refinement's torch likelihood: columns as the parameter functions give them
    w = np.linspace(1.0, 2.0, t.size)
    cols = torch.tensor(
        np.column_stack([ordered.params_[n](X) for n in ordered._names()]), dtype=torch.float64
    )
    nll = float(ordered._penalised_nll(t, w, torch)(cols))
    assert nll == pytest.approx(ordered.mean_nll(t, X, w), rel=1e-12)
    assert nll == pytest.approx(free.mean_nll(t, X, w), rel=1e-12)


def test_ordered_fit_recovers_the_truth_and_keeps_the_order():
    """Fitted with restarts on samples of the ordered truth: the held-out mean NLL is that
    of the truth within 3 standard errors (of the per-sample log-density ratio) plus the
    number of parameters over the training size (the overfit's expected scale); the late
    component lies above the early one everywhere; the file round-trips."""
    rng = np.random.default_rng(11)
    t, d = _sample(rng, 4000)
    tv, dv = _sample(rng, 4000)
    m = SymbolicDensity(
        n_components=2,
        ordered_means=True,
        param_model="poly",
        log_degree=1,
        n_bins=8,
        min_per_bin=300,
        max_iter=100,
        restarts=2,
        random_state=0,
        variable_names=["d"],
    ).fit(d[:, None], t, X_val=dv[:, None], y_val=tv)
    assert "log_dmu_1" in m.params_ and "mu_1" not in m.params_
    assert "log_dmu_1" in m.bins_ and "err_log_dmu_1" in m.bins_
    diff = m.log_pdf(tv, dv[:, None]) - _truth().log_pdf(tv, dv[:, None])
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    n_par = sum(len(f.constants) for f in m.params_.values())
    assert -3 * se < -diff.mean() < 3 * se + n_par / t.size
    P = m._params_at(np.geomspace(1.0, 1000.0, 200)[:, None])  # beyond the data too
    assert (P[:, 3] > P[:, 0]).all()
    back = SymbolicDensity.from_dict(json.loads(json.dumps(m.to_dict())))
    tt, XX = np.geomspace(0.01, 500.0, 40), np.geomspace(5.0, 150.0, 40)[:, None]
    np.testing.assert_allclose(back.cdf(tt, XX), m.cdf(tt, XX), rtol=1e-12, atol=1e-14)


def test_bad_ordered_file_is_named():
    data = _truth().to_dict()
    unordered = {k: v for k, v in data.items() if k != "ordered_means"}
    for bad in (dict(data, ordered_means=False), unordered):
        with pytest.raises(InputError, match="ordered_means"):
            SymbolicDensity.from_dict(bad, source="f.json")
    with pytest.raises(InputError, match="ordered_means"):
        SymbolicDensity.from_dict(dict(data, n_components=1), source="f.json")
    old = dict(data, schema="ariasim.symbolic_density/1")  # log_dmu_1 but no mu_1
    with pytest.raises(InputError, match="mu_1"):
        SymbolicDensity.from_dict(old, source="f.json")
