"""``SymbolicDensity(warp_knot_smooth=...)``: a curvature penalty (in ln x) on the logits
of the warp candidates that carry ``warp_knots``, kept by a winning knotted warp through
the restarts, the ``smooth`` step and :meth:`SymbolicDensity.refit`."""

from __future__ import annotations

import numpy as np
import pytest

from ariasim.errors import ConfigError
from ariasim.surrogates.density import SymbolicDensity


def _kinked(rng, n):
    """Gamma delays whose log-scale is flat in ln d above 12 m and falls steeply below."""
    d = np.exp(rng.uniform(np.log(5.0), np.log(150.0), n))
    z = np.log(d)
    log_scale = 1.0 + 0.5 * z + 2.5 * np.maximum(0.0, np.log(12.0) - z) ** 2
    return rng.gamma(2.0, np.exp(log_scale)), d


def _fit(t, d, val=None, **kw):
    m = SymbolicDensity(
        param_model="poly", n_bins=8, min_per_bin=300, max_iter=100, random_state=0, **kw
    )
    if val is None:
        return m.fit(d[:, None], t)
    return m.fit(d[:, None], t, X_val=val[1][:, None], y_val=val[0])


def _curvature(m):
    """Sum over the warp logits of their squared second differences in ln d (5-150 m)."""
    z = np.linspace(np.log(5.0), np.log(150.0), 60)
    out = 0.0
    for i in range(1, m.warp_degree_):
        a = np.asarray(m.params_[f"warp_a{i}"](np.exp(z)[:, None]), dtype=float)
        out += float((np.diff(a, 2) ** 2).sum())
    return out


def test_warp_knot_smooth_is_validated():
    X = np.geomspace(5, 150, 900)[:, None]
    for bad in (-1e-6, np.nan, np.inf, "a", True, (1e-6,)):
        with pytest.raises(ConfigError, match="warp_knot_smooth"):
            SymbolicDensity(
                param_model="poly", warp=4, warp_knots=(10.0,), warp_knot_smooth=bad
            ).fit(X, np.ones(900))


def test_penalty_reaches_the_knotted_warp_everywhere(monkeypatch):
    """Off (0.0) is the fit without the option, byte for byte. On: the knotted candidates
    (and only they) are fitted with the penalty in the warp choice; where one wins, every
    later fit of its warp (restart, penalty step, refit) uses at least that penalty, and
    its logits bend less in ln d than the unpenalised knotted warp's."""
    rng = np.random.default_rng(8)
    t, d = _kinked(rng, 3000)
    val = _kinked(rng, 3000)
    kw = dict(log_degree=2, warp=(0, 4), warp_knots=(12.0, 30.0), val=val)
    plain = _fit(t, d, **kw)
    off = _fit(t, d, warp_knot_smooth=0.0, **kw)
    assert off.to_dict() == plain.to_dict() and off.selection_ == plain.selection_
    assert off.warp_smooth_ == 0.0

    calls: list[tuple[tuple[float, ...], float]] = []
    orig = SymbolicDensity._fit_warp

    def spy(self, u, X, w, m, log_degree=2, knots=(), tail=None, smooth=0.0):
        calls.append((tuple(knots), float(smooth)))
        return orig(self, u, X, w, m, log_degree, knots, tail, smooth)

    monkeypatch.setattr(SymbolicDensity, "_fit_warp", spy)
    lam = 1e-3
    on = _fit(t, d, warp_knot_smooth=lam, restarts=1, smooth=(0.0, 1e-6), **kw)
    choice, later = calls[:2], calls[2:]  # the warp choice fits 4 and 4+warp knots
    assert choice == [((), 0.0), ((12.0, 30.0), lam)]
    # this truth has a kink at 12 m that the family (no knots) cannot follow: the
    # knotted warp wins on the held-out samples
    assert on.warp_knots_ == (12.0, 30.0) and on.warp_degree_ == 4
    assert on.warp_smooth_ == lam and on.selection_["warp_knot_smooth_used"] == lam
    # one restart, then the penalty step's 1e-6 candidate: each with at least lam
    assert len(later) == 2 and all(kn == (12.0, 30.0) and s >= lam for kn, s in later)
    calls.clear()
    on.refit(d[:, None], t)
    assert calls == [((12.0, 30.0), max(lam, on.smooth_))]
    monkeypatch.undo()
    free = _fit(t, d, restarts=1, smooth=(0.0, 1e-6), **kw)
    assert free.warp_knots_ == (12.0, 30.0)
    assert _curvature(on) < _curvature(free)
