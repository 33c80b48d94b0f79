"""The leave-one-condition-out choice of the delay density (``SymbolicDensity(loso=...)``).

Small fits (a few thousand samples, one restart, two penalty strengths), seconds each.
"""

from __future__ import annotations

import numpy as np
import pytest

from ariasim.errors import ConfigError
from ariasim.surrogates import SymbolicDensity


def _data(seed: int = 0, odd: float | None = None):
    """Gamma delays (shape 2, scale d / 10: a generalized gamma with mu linear in ln d,
    so the family holds the truth) on shells d = 10, 15, ..., 80; with ``odd`` the
    shell at 40 has its scale multiplied by ``odd``."""
    rng = np.random.default_rng(seed)
    d = rng.choice(np.arange(10.0, 85.0, 5.0), 6000)
    scale = d / 10 * np.where((odd is not None) & (d == 40.0), odd or 1.0, 1.0)
    return d, rng.gamma(2.0, scale)


def _fit(d, t, loso=(20.0, 40.0, 60.0), **kw):
    v = d % 20 == 5  # fixed held-out shells 25, 45, 65
    m = SymbolicDensity(
        param_model="poly",
        n_bins=6,
        min_per_bin=300,
        max_iter=60,
        variable_names=["d"],
        random_state=0,
        restarts=1,
        smooth=(0.0, 1e-3),
        log_degree=1,
        loso=loso,
        **kw,
    )
    return m.fit(d[~v, None], t[~v], X_val=d[v, None], y_val=t[v])


def test_loso_scores_each_left_out_shell_without_it():
    """An odd shell (its delays 3x longer) left out in turn is predicted badly: its
    leave-one-out NLL per sample exceeds that of the same shell under the truth of its
    neighbours by far more than the statistical error, while the ordinary shells' LOSO
    NLLs agree with their true NLL within a few standard errors."""
    from scipy import stats

    d, t = _data(odd=3.0)
    m = _fit(d, t)
    sel = m.selection_
    assert sel["restarts"]["on"].startswith("leave-one-condition-out")
    assert sel["smooth"]["on"].startswith("leave-one-condition-out")
    per = sel["loso_per_condition"]
    assert set(per) == {"20", "40", "60"}
    # the chosen candidate's score is the mean of its per-shell values and the minimum
    best = sel["smooth"][f"{sel['smooth_used']:g}"]
    assert best == pytest.approx(np.mean(list(per.values())), rel=1e-12)
    assert best == min(v for k, v in sel["smooth"].items() if k != "on")
    for shell in (20.0, 60.0):
        x = t[d == shell]
        nll = -stats.gamma.logpdf(x, 2.0, scale=shell / 10)
        se = nll.std() / np.sqrt(x.size)
        # the fit itself is off by O(n_par / n) per sample, far below 4 se here
        assert abs(per[f"{shell:g}"] - nll.mean()) < 4 * se
    x = t[d == 40.0]
    nll_odd = -stats.gamma.logpdf(x, 2.0, scale=40.0 / 10 * 3.0)  # its own truth
    assert per["40"] - nll_odd.mean() > 10 * nll_odd.std() / np.sqrt(x.size)


def test_loso_leaves_the_fit_and_earlier_choices_as_without_it():
    """The score does not change the estimator: the fit with LOSO made the same choice
    before the restarts (degrees, warp) and its parameters are one of the candidates the
    fixed scoring fits; with loso=() the result equals the default fit exactly."""
    d, t = _data(seed=1)
    a = _fit(d, t, loso=())
    b = _fit(d, t, loso=(20.0, 40.0, 60.0))
    c = _fit(d, t, loso=(20.0, 40.0, 60.0))
    assert a.selection_["restarts"]["on"] == "held-out mean NLL"
    assert a.selection_["log_degree_used"] == b.selection_["log_degree_used"]
    assert a.warp_degree_ == b.warp_degree_
    assert b.to_dict() == c.to_dict()  # reproducible
    # same restart and penalty chosen -> the very same fit
    if (a.restart_used_, a.smooth_) == (b.restart_used_, b.smooth_):
        assert a.to_dict() == b.to_dict()
    assert not hasattr(b, "_loso_data") or b._loso_data is None


@pytest.mark.parametrize(
    ("loso", "match"),
    [((np.nan, 20.0), "finite"), ((20.0, 20.0), "distinct"), ((21.0,), "not a condition")],
)
def test_bad_loso_values_are_named(loso, match):
    d, t = _data()
    with pytest.raises(ConfigError, match=match) as exc:
        _fit(d, t, loso=loso)
    assert "loso" in str(exc.value)
