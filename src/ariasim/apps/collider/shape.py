r"""The non-Gaussian response: a conditional quantile function of reco/truth.

Delphes can smear only with one Gaussian (calorimeter energy) or one log-normal (track
pT), and the full simulation's electrons and photons have a narrow core with a long low
tail (bremsstrahlung, conversions, leakage) that one Gaussian cannot carry. ariasim's fast
simulation can: a :class:`ResponseShape` holds, per object, the quantiles of
``y = log(reco / truth)`` (pT for tracks, E for calorimeter objects) at a grid of
probability levels (0.2 % ... 99.8 %, denser in the tails), each a piecewise-bilinear
function of ``t = log(truth x)`` and ``|eta|`` (its values at the knots are stored, so the
model file is plain numbers, no formula and no pickle).

Fit (:func:`fit_shape`): for each level tau the knot values minimise the
convolution-smoothed check loss of quantile regression (Koenker and Bassett 1978;
Fernandes, Guerre and Horta 2021; He, Pan, Tan and Zhou 2023, "conquer"), with a Gaussian
kernel whose bandwidth is 3 % of the local core width (the narrower half of the 16-84 %
width in coarse bins; wider kernels move the quantiles next to a sharp edge, such as the
electrons' E/E_true just below 1, outward), plus a small second-difference roughness
penalty (P-spline, Eilers and Marx 1996) that only matters where the data are sparse (a
30x stronger one flattened the tails where they change fast: muons and pions of 100-300
GeV at |eta| 1.5-2). Each level is solved by damped Newton steps on the sparse Hessian.
The knots in ``t`` start from a mixture of equal-count and equally spaced positions
(:func:`t_knot_positions`; equal-count alone leaves few knots where few particles are
reconstructed, e.g. below the electron turn-on) and are refined where the response
changes faster than the grid follows: a knot is inserted in the middle of every cell in
which the fitted 1-99 % quantiles miss the training data by more than 4 binomial standard
errors in one half of the cell and one |eta| band (the photon identification dip at 2-4
GeV, the electron turn-on). The per-level fits may cross; the quantiles at
each knot are then sorted along the level axis (monotone rearrangement, Chernozhukov,
Fernandez-Val and Galichon, Econometrica 78 (2010) 1093): bilinear interpolation with
non-negative weights keeps them non-crossing everywhere.

Sampling (:meth:`ResponseShape.sample`): inverse CDF. ``u ~ U(0, 1)``; between two levels
the quantile is linear in ``u``; below the first (above the last) level the tail is
exponential in ``y`` (a power law in reco/truth) with the slope of the two outer levels.
Outside the knot range of ``t`` and ``|eta|`` the edge values are used. One uniform per
particle, eight gathers: vectorised NumPy.

Validation (:func:`quantile_table`, :func:`quantile_summary`): per (truth x, |eta|) bin
the 1, 5, 16, 50, 84, 95, 99 % quantiles of reco/truth, fast vs full, with the
distribution-free order-statistic error of each (half the distance between the order
statistics at ``n p -+ sqrt(n p (1 - p))``, the binomial 68 % interval), and the pulls.
:func:`tail_fractions`: the fraction of reco/truth outside median +- 3 core sigma (core
sigma = half the 16-84 % width) minus the Gaussian's 0.27 %, i.e. what a single Gaussian
matched to the core cannot carry.

References:
    R. Koenker and G. Bassett, "Regression quantiles", Econometrica 46 (1978) 33.
    X. He, X. Pan, K. M. Tan and W.-X. Zhou, "Smoothed quantile regression with large-scale
    inference", J. Econometrics 232 (2023) 367.
    P. H. C. Eilers and B. D. Marx, "Flexible smoothing with B-splines and penalties",
    Statist. Sci. 11 (1996) 89.
    V. Chernozhukov, I. Fernandez-Val and A. Galichon, "Quantile and probability curves
    without crossing", Econometrica 78 (2010) 1093.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ariasim.errors import ConfigError, InputError

if TYPE_CHECKING:  # pandas only for the fit and the checks, not to sample (fast simulation)
    import pandas as pd

__all__ = [
    "CHECK_LEVELS",
    "LEVELS",
    "EfficiencyGrid",
    "ResponseShape",
    "fit_efficiency",
    "fit_shape",
    "fit_shapes",
    "grid_resolution",
    "quantile_summary",
    "quantile_table",
    "tail_fractions",
]

_TAIL = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.13, 0.16, 0.2, 0.25)
#: The probability levels of a fitted shape (dense in the tails, symmetric).
LEVELS: tuple[float, ...] = (
    *_TAIL,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    *(round(1.0 - p, 6) for p in reversed(_TAIL)),
)
#: The quantile levels checked against the full simulation (issue 14).
CHECK_LEVELS: tuple[float, ...] = (0.01, 0.05, 0.16, 0.5, 0.84, 0.95, 0.99)
#: Default |eta| knots (every 0.25 up to 2.5).
ETA_KNOTS: tuple[float, ...] = tuple(round(0.25 * k, 2) for k in range(11))


def _bad(msg: str, source: Any, where: str) -> InputError:
    return InputError(msg, path=source, field=where)


def _vector(d: Mapping[str, Any], key: str, source: Any, where: str) -> np.ndarray:
    """``d[key]`` as a strictly increasing finite float vector of length >= 2."""
    if key not in d:
        raise _bad(f"shape lacks key {key!r}", source, where)
    v = d[key]
    if not isinstance(v, list) or len(v) < 2:
        raise _bad("expected a list of at least 2 numbers", source, f"{where}.{key}")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise _bad("expected numbers only", source, f"{where}.{key}")
    a = np.asarray(v, dtype=float)
    if not np.isfinite(a).all() or not (np.diff(a) > 0).all():
        raise _bad("must be finite and strictly increasing", source, f"{where}.{key}")
    return a


def _bilinear(
    t: np.ndarray, a: np.ndarray, tk: np.ndarray, ek: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lower-corner knot indices (i, j) and weights (wt, wa) of each point of a bilinear
    knot grid; points beyond the knots take the edge values."""
    t = np.clip(t, tk[0], tk[-1])
    a = np.clip(a, ek[0], ek[-1])
    i = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, tk.size - 2)
    j = np.clip(np.searchsorted(ek, a, side="right") - 1, 0, ek.size - 2)
    return i, j, (t - tk[i]) / (tk[i + 1] - tk[i]), (a - ek[j]) / (ek[j + 1] - ek[j])


def _grid_header(
    d: Any, kind: str, label: str, source: Any, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check what every knot-grid entry shares (an object of ``type`` ``kind`` with ``x``
    and metadata) and return its ``t_knots`` and ``eta_knots``."""
    if not isinstance(d, Mapping):
        raise _bad(f"expected an object, got {type(d).__name__}", source, where)
    if d.get("type") != kind:
        raise _bad(f"unknown {label} type {d.get('type')!r:.40}", source, f"{where}.type")
    if d.get("x") not in ("pt", "energy"):
        raise _bad(f"x must be 'pt' or 'energy', got {d.get('x')!r:.40}", source, where)
    if not isinstance(d.get("metadata", {}), Mapping):
        raise _bad("expected an object", source, f"{where}.metadata")
    return _vector(d, "t_knots", source, where), _vector(d, "eta_knots", source, where)


@dataclass(frozen=True, eq=False)
class ResponseShape:
    """Quantiles of ``log(reco/truth)`` at probability ``levels``, on a grid of knots in
    ``t = log(truth x)`` (x = pT for tracks, E for calorimeter objects) and ``|eta|``.

    Arguments:
        x: ``"pt"`` or ``"energy"``: the truth variable of ``t``.
        t_knots: Increasing knots in log(x / GeV).
        eta_knots: Increasing knots in |eta|.
        levels: Increasing probability levels in (0, 1).
        values: Array (levels, t_knots, eta_knots), non-decreasing along the level axis.
        metadata: Fit metadata (rows, bandwidth, penalty).

    Example:
        >>> import numpy as np
        >>> v = np.log([0.9, 1.0, 1.05])[:, None, None] * np.ones((3, 2, 2))
        >>> s = ResponseShape("pt", (0.0, 5.0), (0.0, 2.5), (0.1, 0.5, 0.9), v)
        >>> float(s.quantiles(np.array([10.0]), np.array([1.0]), (0.5,))[0, 0])
        1.0
        >>> ResponseShape.from_dict(s.to_dict()).levels == s.levels
        True
    """

    x: str
    t_knots: tuple[float, ...]
    eta_knots: tuple[float, ...]
    levels: tuple[float, ...]
    values: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Optional :class:`EfficiencyGrid` used by the fast simulation instead of the card's
    #: efficiency formula (beyond Delphes, like the shape itself).
    efficiency: EfficiencyGrid | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=float)
        want = (len(self.levels), len(self.t_knots), len(self.eta_knots))
        if v.shape != want:
            raise ConfigError(f"values have shape {v.shape}, expected {want}", parameter="values")
        if not np.isfinite(v).all():
            raise ConfigError("values must be finite", parameter="values")
        if (np.diff(v, axis=0) < 0).any():
            raise ConfigError("quantiles must not decrease with the level", parameter="values")
        lv = np.asarray(self.levels)
        if not ((lv > 0) & (lv < 1)).all() or not (np.diff(lv) > 0).all():
            raise ConfigError("levels must increase strictly within (0, 1)", parameter="levels")
        if self.x not in ("pt", "energy"):
            raise ConfigError(f"x must be 'pt' or 'energy', got {self.x!r}", parameter="x")
        object.__setattr__(self, "values", v)
        # flat table (t, eta, level) for the samplers' gathers, levels contiguous
        object.__setattr__(self, "_flat", np.ascontiguousarray(v.transpose(1, 2, 0)).ravel())

    def __eq__(self, other: object) -> bool:  # the arrays compared by value, as in the file
        return isinstance(other, ResponseShape) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -- evaluation -------------------------------------------------------------------
    def _cell(self, x: np.ndarray, abs_eta: np.ndarray) -> tuple[Any, ...]:
        """Corner offsets into the flat table and bilinear weights of each point."""
        tk, ek = np.asarray(self.t_knots), np.asarray(self.eta_knots)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.log(x)
        i, j, wt, wa = _bilinear(t, abs_eta, tk, ek)
        nl, ne = len(self.levels), ek.size
        base = (i * ne + j) * nl
        return base, wt, wa, nl, ne

    def _at(self, cell: tuple[np.ndarray, ...], k: np.ndarray) -> np.ndarray:
        base, wt, wa, nl, ne = cell
        f = self._flat  # type: ignore[attr-defined]
        o = base + k
        return (1 - wt) * ((1 - wa) * f[o] + wa * f[o + nl]) + wt * (
            (1 - wa) * f[o + ne * nl] + wa * f[o + ne * nl + nl]
        )

    def log_ppf(self, u: np.ndarray, x: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        """The inverse CDF of ``log(reco/truth)`` at probabilities ``u`` (module docstring)."""
        lv = np.asarray(self.levels)
        u = np.asarray(u, dtype=float)
        cell = self._cell(np.asarray(x, dtype=float), np.asarray(abs_eta, dtype=float))
        k = np.clip(np.searchsorted(lv, u, side="right") - 1, 0, lv.size - 2)
        q0, q1 = self._at(cell, k), self._at(cell, k + 1)
        l0, l1 = lv[k], lv[k + 1]
        y = q0 + (u - l0) / (l1 - l0) * (q1 - q0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = u < lv[0]
            if lo.any():  # exponential lower tail through the two first levels
                b = (q1[lo] - q0[lo]) / math.log(lv[1] / lv[0])
                y[lo] = q0[lo] + b * np.log(u[lo] / lv[0])
            hi = u > lv[-1]
            if hi.any():
                b = (q1[hi] - q0[hi]) / math.log((1 - lv[-2]) / (1 - lv[-1]))
                y[hi] = q1[hi] - b * np.log((1 - u[hi]) / (1 - lv[-1]))
        return y

    def sample(self, x: np.ndarray, abs_eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """reco/truth for each particle (one uniform each from ``rng``)."""
        return np.exp(self.log_ppf(rng.random(np.shape(x)), x, abs_eta))

    def quantiles(
        self, x: np.ndarray, abs_eta: np.ndarray, levels: Sequence[float] = CHECK_LEVELS
    ) -> np.ndarray:
        """reco/truth quantiles, array (points, levels)."""
        x, a = np.asarray(x, dtype=float), np.asarray(abs_eta, dtype=float)
        return np.exp(np.stack([self.log_ppf(np.full(x.shape, p), x, a) for p in levels], axis=-1))

    # -- file format ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "quantile_grid",
            "variable": "log(reco/truth)",
            "x": self.x,
            "t_knots": [float(v) for v in self.t_knots],
            "eta_knots": [float(v) for v in self.eta_knots],
            "levels": [float(v) for v in self.levels],
            "values": np.round(self.values, 7).tolist(),
            "metadata": dict(self.metadata),
            **({"efficiency": self.efficiency.to_dict()} if self.efficiency is not None else {}),
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, source: Any = None, field: str | None = None
    ) -> ResponseShape:
        """Build from :meth:`to_dict` output; errors name ``source`` and ``field``."""
        where = field or "shape"
        tk, ek = _grid_header(d, "quantile_grid", "shape", source, where)
        lv = _vector(d, "levels", source, where)
        if not ((lv > 0) & (lv < 1)).all():
            raise _bad("levels must lie in (0, 1)", source, f"{where}.levels")
        try:
            v = np.asarray(d.get("values"), dtype=float)
        except (TypeError, ValueError):
            raise _bad("expected a nested list of numbers", source, f"{where}.values") from None
        want = (lv.size, tk.size, ek.size)
        if v.shape != want:
            raise _bad(
                f"has shape {v.shape}, expected (levels, t_knots, eta_knots) = {want}",
                source,
                f"{where}.values",
            )
        if not np.isfinite(v).all():
            raise _bad("values must be finite", source, f"{where}.values")
        if (np.diff(v, axis=0) < 0).any():
            raise _bad("quantiles decrease with the level", source, f"{where}.values")
        md = d.get("metadata", {})
        eff = d.get("efficiency")
        if eff is not None:
            eff = EfficiencyGrid.from_dict(eff, source=source, field=f"{where}.efficiency")
        return cls(str(d["x"]), tuple(tk), tuple(ek), tuple(lv), v, dict(md), eff)


@dataclass(frozen=True, eq=False)
class EfficiencyGrid:
    """The reconstruction efficiency as a logistic function of a bilinear knot grid in
    ``t = log(truth x)`` and ``|eta|``: ``eff = 1 / (1 + exp(-logit(t, |eta|)))``.

    Beyond Delphes (whose efficiency is the card's formula): where no compact formula
    follows the full simulation's efficiency to its statistical precision (the regions the
    compact fit flags), ariasim's fast simulation can use this grid, fitted by penalised
    logistic regression (:func:`fit_efficiency`; P-spline penalty, Eilers and Marx 1996).

    Arguments:
        x: ``"pt"`` or ``"energy"``: the truth variable of ``t``.
        t_knots, eta_knots: Increasing knots.
        logit: Array (t_knots, eta_knots) of the logit of the efficiency at the knots.
        metadata: Fit metadata.

    Example:
        >>> g = EfficiencyGrid("pt", (0.0, 5.0), (0.0, 2.5), np.zeros((2, 2)))
        >>> float(g(np.array([10.0]), np.array([1.0]))[0])
        0.5
        >>> EfficiencyGrid.from_dict(g.to_dict()) == g
        True
    """

    x: str
    t_knots: tuple[float, ...]
    eta_knots: tuple[float, ...]
    logit: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.logit, dtype=float)
        want = (len(self.t_knots), len(self.eta_knots))
        if v.shape != want:
            raise ConfigError(f"logit has shape {v.shape}, expected {want}", parameter="logit")
        if not np.isfinite(v).all():
            raise ConfigError("logit must be finite", parameter="logit")
        if self.x not in ("pt", "energy"):
            raise ConfigError(f"x must be 'pt' or 'energy', got {self.x!r}", parameter="x")
        object.__setattr__(self, "logit", v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EfficiencyGrid) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, x: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
        """The efficiency at truth ``x`` (GeV) and ``|eta|`` (edge values beyond the knots)."""
        tk, ek = np.asarray(self.t_knots), np.asarray(self.eta_knots)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.log(np.asarray(x, dtype=float))
        t = np.nan_to_num(t, nan=tk[0], neginf=tk[0])
        i, j, wt, wa = _bilinear(t, np.abs(np.asarray(abs_eta, dtype=float)), tk, ek)
        v = self.logit
        z = (1 - wt) * ((1 - wa) * v[i, j] + wa * v[i, j + 1]) + wt * (
            (1 - wa) * v[i + 1, j] + wa * v[i + 1, j + 1]
        )
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "logistic_grid",
            "x": self.x,
            "t_knots": [float(v) for v in self.t_knots],
            "eta_knots": [float(v) for v in self.eta_knots],
            "logit": np.round(self.logit, 7).tolist(),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, source: Any = None, field: str | None = None
    ) -> EfficiencyGrid:
        """Build from :meth:`to_dict` output; errors name ``source`` and ``field``."""
        where = field or "efficiency"
        tk, ek = _grid_header(d, "logistic_grid", "efficiency", source, where)
        try:
            v = np.asarray(d.get("logit"), dtype=float)
        except (TypeError, ValueError):
            raise _bad("expected a nested list of numbers", source, f"{where}.logit") from None
        if v.shape != (tk.size, ek.size):
            raise _bad(
                f"has shape {v.shape}, expected (t_knots, eta_knots) = {(tk.size, ek.size)}",
                source,
                f"{where}.logit",
            )
        if not np.isfinite(v).all():
            raise _bad("values must be finite", source, f"{where}.logit")
        return cls(str(d["x"]), tuple(tk), tuple(ek), v, dict(d.get("metadata", {})))


# -- fitting --------------------------------------------------------------------------
def _design(t: np.ndarray, a: np.ndarray, tk: np.ndarray, ek: np.ndarray) -> Any:
    """Sparse bilinear interpolation matrix (rows: points, columns: knots t-major)."""
    from scipy import sparse

    i, j, wt, wa = _bilinear(t, a, tk, ek)
    ne, n = ek.size, t.size
    rows = np.repeat(np.arange(n), 4)
    cols = np.stack([i * ne + j, i * ne + j + 1, (i + 1) * ne + j, (i + 1) * ne + j + 1], 1)
    w = np.stack([(1 - wt) * (1 - wa), (1 - wt) * wa, wt * (1 - wa), wt * wa], 1)
    return sparse.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(n, tk.size * ne))


def _second_diff(nt: int, ne: int, tk: np.ndarray | None = None) -> Any:
    """Second differences of the knot grid along t and along |eta| (stacked). With the
    knots ``tk``, the ones along t are divided differences times the mean knot spacing
    (zero for values linear in t however the knots are spaced; for equally spaced knots
    the plain ones)."""
    from scipy import sparse

    def d2(m: int) -> Any:
        return sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(max(m - 2, 0), m))

    dt = d2(nt)
    if tk is not None and nt > 2:
        g = np.diff(np.asarray(tk, dtype=float))
        w = float(np.mean(g)) / g
        dt = sparse.diags([w[:-1], -(w[:-1] + w[1:]), w[1:]], [0, 1, 2], shape=(nt - 2, nt))
    return sparse.vstack(
        [sparse.kron(dt, sparse.eye(ne)), sparse.kron(sparse.eye(nt), d2(ne))]
    ).tocsr()


def _local_scale(t: np.ndarray, a: np.ndarray, y: np.ndarray, n_bins: int = 6) -> np.ndarray:
    """The narrower half-width of the core of ``y``, ``min(q84 - q50, q50 - q16)``, in
    coarse (t quantile x |eta| half-unit) bins, per row (a long tail on one side must not
    set the smoothing of the other)."""
    te = np.quantile(t, np.linspace(0, 1, n_bins + 1)[1:-1])
    bt = np.searchsorted(te, t)
    ba = np.minimum((a / 0.5).astype(int), 4)
    key = bt * 5 + ba
    s = np.empty_like(y)

    def core(v: np.ndarray) -> float:
        q16, q50, q84 = np.quantile(v, [0.16, 0.5, 0.84])
        return float(min(q84 - q50, q50 - q16))

    glob = core(y)
    for k in np.unique(key):
        m = key == k
        w = core(y[m]) if m.sum() >= 20 else glob
        s[m] = w if w > 0 else glob
    return np.maximum(s, 1e-6)


def t_knot_positions(t: np.ndarray, n: int, uniform_share: float = 0.0) -> np.ndarray:
    """``n`` knots in ``t`` between its minimum and maximum, spaced by the mixture
    ``(1 - uniform_share) F(t) + uniform_share (t - t_min) / (t_max - t_min)`` of the data's
    empirical CDF and the uniform one (0: equal-count knots; 1: equally spaced), rounded to
    1e-6 (duplicates dropped).

    Example:
        >>> t = np.concatenate([np.zeros(90), np.linspace(0.0, 9.0, 10)])
        >>> t_knot_positions(t, 4).tolist(), t_knot_positions(t, 4, 1.0).tolist()
        ([0.0, 9.0], [0.0, 3.0, 6.0, 9.0])
    """
    ts = np.sort(np.asarray(t, dtype=float))
    span = float(ts[-1] - ts[0])
    g = np.linspace(0.0, 1.0, ts.size)
    if uniform_share > 0 and span > 0:
        g = (1 - uniform_share) * g + uniform_share * (ts - ts[0]) / span
    k = np.interp(np.linspace(0.0, 1.0, n), g, ts)
    return np.unique(np.round(k, 6))


def _fit_levels(
    B: Any,
    y: np.ndarray,
    h: np.ndarray,
    s0: float,
    lam: float,
    DtD: Any,
    levels: Sequence[float],
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Knot values (levels, knots) minimising the smoothed check loss plus the roughness
    penalty, one level at a time, from ``start`` (levels, knots), else from the previous
    level's solution shifted by the difference of the two levels' unconditional quantiles
    (the first from its unconditional quantile).

    The objective is convex and smooth, with the sparse Hessian ``B' diag(phi(z) / h) B /
    s0 + 2 lam DtD / s0``: damped Newton steps (sparse direct solve, backtracking line
    search; on 27k electrons the same optimum as L-BFGS in 1/20 of its CPU time);
    deterministic (no random numbers, a fixed sequence of floating-point operations)."""
    from scipy import sparse, special
    from scipy.sparse.linalg import spsolve

    out = np.empty((len(levels), B.shape[1]))
    qy = np.quantile(y, levels)
    BT = B.T.tocsr()
    P = (2 * lam / s0) * DtD
    ridge = sparse.identity(B.shape[1], format="csc") * 1e-10
    root = math.sqrt(2 * math.pi)
    for k, tau in enumerate(levels):
        if start is not None:
            c = start[k].copy()
        elif k:
            c = out[k - 1] + (qy[k] - qy[k - 1])
        else:
            c = np.full(B.shape[1], qy[0])

        def f_of(c: np.ndarray, tau: float = tau) -> tuple[float, np.ndarray, np.ndarray]:
            u = y - B @ c
            z = u / h
            pdf = np.exp(-0.5 * z * z) / root
            cdf = special.ndtr(-z)
            f = float(np.sum(u * (tau - cdf) + h * pdf)) / s0 + 0.5 * float(c @ (P @ c))
            return f, cdf, pdf

        f, cdf, pdf = f_of(c)
        for _ in range(100):
            g = -(BT @ (tau - cdf)) / s0 + P @ c
            H = (BT @ sparse.diags(pdf / (h * s0)) @ B + P).tocsc() + ridge
            step = spsolve(H, -g)
            dec = float(-(g @ step))  # Newton decrement squared
            if not np.isfinite(dec) or dec <= 1e-13 * max(abs(f), 1.0):
                break
            a = 1.0
            while True:
                f_new, cdf_new, pdf_new = f_of(c + a * step)
                if f_new <= f - 0.25 * a * dec or a < 1e-8:
                    break
                a *= 0.5
            if a < 1e-8:
                break
            c = c + a * step
            f, cdf, pdf = f_new, cdf_new, pdf_new
        out[k] = c
    return out


def _misfit_cells(
    t: np.ndarray,
    a: np.ndarray,
    B: Any,
    y: np.ndarray,
    tk: np.ndarray,
    values: np.ndarray,
    levels: Sequence[float],
    z_split: float,
    min_count: int,
) -> np.ndarray:
    """The knot cells in ``t`` (indices i of [tk[i], tk[i+1]]) where, in either half of the
    cell and in one of the |eta| bands 0-0.5, 0.5-1, ... (the last open), the fraction of
    ``y`` below some fitted level-tau quantile differs from tau by more than ``z_split``
    binomial standard errors; only groups with at least ``min_count`` points are tested."""
    nt = tk.size
    cell = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, nt - 2)
    half = t >= 0.5 * (tk[cell] + tk[cell + 1])
    band = np.minimum((a / 0.5).astype(int), 4)
    key = (2 * cell + half) * 5 + band
    size = 10 * (nt - 1)
    count = np.bincount(key, minlength=size).astype(float)
    worst = np.zeros(size)
    for k, tau in enumerate(levels):
        below = np.bincount(key, weights=(y < B @ values[k]), minlength=size)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (below - count * tau) / np.sqrt(count * tau * (1 - tau))
        z[(count < min_count) | (count * min(tau, 1 - tau) < 5)] = 0.0
        worst = np.maximum(worst, np.abs(z))
    return np.flatnonzero(worst.reshape(nt - 1, 10).max(axis=1) > z_split)


def fit_shape(
    x: np.ndarray,
    abs_eta: np.ndarray,
    ratio: np.ndarray,
    *,
    x_name: str = "pt",
    levels: Sequence[float] = LEVELS,
    n_t_knots: int = 12,
    uniform_share: float = 0.5,
    eta_knots: Sequence[float] = ETA_KNOTS,
    penalty: float = 3e-6,
    bandwidth: float = 0.03,
    refine: int = 4,
    max_t_knots: int = 48,
    z_split: float = 4.0,
) -> ResponseShape:
    """Fit the quantile grid of ``log(ratio)`` given truth ``x`` and ``|eta|``.

    Arguments:
        x: Truth pT or E (GeV) of the reconstructed particles.
        abs_eta: Their truth |eta|.
        ratio: reco/truth (> 0).
        x_name: ``"pt"`` or ``"energy"``.
        levels: Probability levels.
        n_t_knots: Initial knots in log x (>= 2), placed by :func:`t_knot_positions`.
        uniform_share: Share of equal spacing in the initial knots (0: equal-count).
        eta_knots: Knots in |eta| (the data beyond are clamped to the edge).
        penalty: Weight of the squared second differences of the knot values, in units of
            the squared median core width (per unit mean loss).
        bandwidth: Kernel bandwidth of the smoothed check loss, as a fraction of the local
            core width.
        refine: Rounds of adaptive knot insertion in log x: the quantiles at
            :data:`CHECK_LEVELS` are fitted on the current knots, and every knot cell
            where, in one of its halves and |eta| bands of 0.5, the fraction of the training
            points below a fitted quantile misses its level by more than ``z_split``
            binomial standard errors gets a knot at its midpoint (the response changes
            faster than the bilinear grid follows: turn-ons, identification dips); at
            most ``max_t_knots`` knots in all. Then all ``levels`` are fitted.
        max_t_knots: Upper bound on the knots in log x after refinement.
        z_split: Threshold of the refinement test.

    The fit is deterministic (damped Newton from a fixed start, no random numbers).
    """
    x, a, r = (np.asarray(v, dtype=float) for v in (x, abs_eta, ratio))
    ok = np.isfinite(x) & (x > 0) & np.isfinite(a) & np.isfinite(r) & (r > 0)
    if ok.sum() < 50:
        raise ConfigError(
            f"need >= 50 reconstructed particles, got {int(ok.sum())}", parameter="ratio"
        )
    if n_t_knots < 2:
        raise ConfigError(f"must be >= 2, got {n_t_knots}", parameter="n_t_knots")
    t, a, y = np.log(x[ok]), np.abs(a[ok]), np.log(r[ok])
    tk = t_knot_positions(t, n_t_knots, uniform_share)
    ek = np.asarray(eta_knots, dtype=float)
    h = bandwidth * _local_scale(t, a, y)
    s0 = float(np.median(h)) / bandwidth  # a typical core width, sets the penalty's units
    n = y.size
    lam = penalty * n / s0  # objective: sum of losses / s0 + lam * |D c|^2 / s0^2 * s0 ...
    check = [p for p in CHECK_LEVELS if levels[0] <= p <= levels[-1]]
    rounds = 0
    pilot = None
    for _ in range(refine):
        B = _design(t, a, tk, ek)
        DtD = (_second_diff(tk.size, ek.size, tk).T @ _second_diff(tk.size, ek.size, tk)).tocsr()
        pilot = _fit_levels(B, y, h, s0, lam, DtD, check, pilot)
        bad = _misfit_cells(t, a, B, y, tk, pilot, check, z_split, 100)
        room = max_t_knots - tk.size
        if bad.size == 0 or room <= 0:
            break
        rounds += 1
        mid = np.round(0.5 * (tk[bad] + tk[bad + 1]), 6)[:room]
        new = np.unique(np.concatenate([tk, mid]))
        # the next round starts from this one's surfaces, interpolated onto the new knots
        old = pilot.reshape(len(check), tk.size, ek.size)
        pilot = np.stack(
            [
                np.stack([np.interp(new, tk, old[k, :, j]) for j in range(ek.size)], axis=1)
                for k in range(len(check))
            ]
        ).reshape(len(check), -1)
        tk = new
    B = _design(t, a, tk, ek)
    DtD = (_second_diff(tk.size, ek.size, tk).T @ _second_diff(tk.size, ek.size, tk)).tocsr()
    out = _fit_levels(B, y, h, s0, lam, DtD, levels).reshape(len(levels), tk.size, ek.size)
    # monotone rearrangement at every knot; rounded as in the file, so that the fitted
    # model and the one read back from its file simulate the same bytes
    out = np.round(np.sort(out, axis=0), 7)
    md = {
        "method": "smoothed quantile regression on a bilinear knot grid, rearranged",
        "n_train": int(n),
        "bandwidth": bandwidth,
        "penalty": penalty,
        **({"refine_rounds": rounds, "z_split": z_split} if refine else {}),
    }
    return ResponseShape(x_name, tuple(tk), tuple(ek), tuple(float(v) for v in levels), out, md)


def fit_efficiency(
    x: np.ndarray,
    abs_eta: np.ndarray,
    passed: np.ndarray,
    *,
    x_name: str = "pt",
    n_t_knots: int = 16,
    eta_knots: Sequence[float] = ETA_KNOTS,
    penalty: float = 1e-5,
    uniform_share: float = 0.0,
) -> EfficiencyGrid:
    """Fit an :class:`EfficiencyGrid` to truth particles (reconstructed or not).

    Penalised logistic regression: the knot values minimise the binomial deviance of
    ``passed`` plus ``penalty * n`` times the squared second differences of the knot grid
    (Eilers and Marx 1996), by L-BFGS from a constant start (deterministic). Knots in log x
    at equal-count quantiles of the truth particles.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> pt = np.exp(rng.uniform(0, 5, 20000))
        >>> ok = rng.uniform(size=pt.size) < 0.9 / (1 + np.exp(-(pt - 5.0)))
        >>> g = fit_efficiency(pt, rng.uniform(0, 2.5, pt.size), ok)
        >>> hi = pt > 50  # on the plateau: the mean efficiency of these particles
        >>> bool(abs(float(np.mean(g(pt[hi], rng.uniform(0, 2.5, hi.sum())))) - 0.9) < 0.02)
        True
    """
    from scipy import optimize, special

    x, a = np.asarray(x, dtype=float), np.abs(np.asarray(abs_eta, dtype=float))
    k = np.asarray(passed, dtype=bool)
    ok = np.isfinite(x) & (x > 0) & np.isfinite(a)
    if ok.sum() < 50:
        raise ConfigError(f"need >= 50 truth particles, got {int(ok.sum())}", parameter="passed")
    if n_t_knots < 2:
        raise ConfigError(f"must be >= 2, got {n_t_knots}", parameter="n_t_knots")
    t, a, yv = np.log(x[ok]), a[ok], k[ok].astype(float)
    tk = t_knot_positions(t, n_t_knots, uniform_share)
    ek = np.asarray(eta_knots, dtype=float)
    B = _design(t, a, tk, ek)
    DtD = (_second_diff(tk.size, ek.size).T @ _second_diff(tk.size, ek.size)).tocsr()
    n = yv.size
    lam = penalty * n
    mean = float(np.clip(yv.mean(), 1e-4, 1 - 1e-4))

    def fg(c: np.ndarray) -> tuple[float, np.ndarray]:
        z = B @ c
        # deviance: log(1 + e^z) - y z, stable for both signs
        f = float(np.sum(np.logaddexp(0.0, z) - yv * z))
        pen = DtD @ c
        g = B.T @ (special.expit(z) - yv) + 2 * lam * pen
        return (f + lam * float(c @ pen)) / n, g / n

    c0 = np.full(B.shape[1], math.log(mean / (1 - mean)))
    res = optimize.minimize(
        fg, c0, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10}
    )
    logit = np.round(np.clip(res.x, -30.0, 30.0).reshape(tk.size, ek.size), 7)
    md = {"method": "penalised logistic regression on a bilinear knot grid", "n_train": int(n),
          "penalty": penalty}  # fmt: skip
    return EfficiencyGrid(x_name, tuple(tk), tuple(ek), logit, md)


def grid_resolution(n: int) -> tuple[float, int]:
    """Default knot grid for ``n`` reconstructed particles: (|eta| step, knots in log x).

    The grid gets finer as the sample grows, so that the bilinear quantile surfaces follow
    structure the data resolve (cracks in |eta|, the E where conversions and leakage set in)
    while every cell keeps a few hundred particles: |eta| every 0.25 and 12 knots in log x
    below 50k particles (about 150 per cell: the grid that passes the quantile check at
    18.7k particles per species, BENCHMARKS.md), every 0.125 and round(sqrt(n) / 16)
    knots (at most 24) above (about 240 per cell at 100k).

    Example:
        >>> grid_resolution(20_000), grid_resolution(100_000)
        ((0.25, 12), (0.125, 20))
    """
    if n < 50_000:
        return 0.25, 12
    return 0.125, int(min(24, max(12, round(math.sqrt(n) / 16))))


def fit_shapes(
    model: Any,
    table: pd.DataFrame,
    *,
    objects: Sequence[str] | None = None,
    min_rows: int = 500,
    efficiency: bool = True,
    **options: Any,
) -> Any:
    """Attach a fitted :class:`ResponseShape` to each object of a response model (in place;
    returned). ``table`` is the full simulation the model was learned from (the same
    events); objects with fewer than ``min_rows`` reconstructed particles keep the
    Gaussian (no shape); ``options`` go to :func:`fit_shape` (the knot grid defaults to
    :func:`grid_resolution` of the object's sample). With ``efficiency`` each
    shape also carries an :class:`EfficiencyGrid` (:func:`fit_efficiency`) fitted to all of
    the object's truth particles."""
    from ariasim.apps.collider.objects import OBJECTS, prepare_object

    knots = options.pop("eta_knots", None)
    for name in objects or list(model.objects):
        obj = model.objects[name]
        everything = prepare_object(table, name)
        d = everything[everything["passed"]]
        if len(d) < min_rows:  # too few to learn a shape: the Gaussian stays
            obj.shape = None
            continue
        step, n_t = grid_resolution(len(d))
        ek = knots or tuple(
            float(v) for v in np.round(np.arange(0.0, obj.eta_max + step / 2, step), 6)
        )
        if ek[-1] < obj.eta_max:
            ek = (*ek, float(obj.eta_max))
        x = OBJECTS[name].x
        opts = {"n_t_knots": n_t, **options}
        shape = fit_shape(
            d[x].to_numpy(),
            d["eta"].abs().to_numpy(),
            d["ratio"].to_numpy(),
            x_name=x,
            eta_knots=ek,
            **opts,
        )
        if efficiency:
            eff = fit_efficiency(
                everything[x].to_numpy(),
                everything["eta"].abs().to_numpy(),
                everything["passed"].to_numpy(),
                x_name=x,
                eta_knots=ek,
            )
            shape = dataclasses.replace(shape, efficiency=eff)
        obj.shape = shape
    return model


# -- validation -----------------------------------------------------------------------
def _quantile_err(v: np.ndarray, p: float) -> tuple[float, float]:
    """Sample quantile and its order-statistic standard error (binomial 68 % interval)."""
    v = np.sort(v)
    n = v.size
    q = float(np.quantile(v, p))
    half = math.sqrt(n * p * (1 - p))
    lo = int(np.clip(math.floor(n * p - half), 0, n - 1))
    hi = int(np.clip(math.ceil(n * p + half), 0, n - 1))
    return q, 0.5 * float(v[hi] - v[lo])


def _bins(full: pd.DataFrame, name: str, n_pt: int, eta_edges: Sequence[float]):
    from ariasim.apps.collider.objects import OBJECTS, prepare_object

    x = OBJECTS[name].x
    a = prepare_object(full, name)
    edges = np.quantile(np.log(a[x]), np.linspace(0, 1, n_pt + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    return x, edges


def _assign(d: pd.DataFrame, x: str, edges: np.ndarray, eta_edges: Sequence[float]):
    ix = np.searchsorted(edges, np.log(d[x].to_numpy()), side="right") - 1
    ie = np.clip(
        np.searchsorted(np.asarray(eta_edges), np.abs(d["eta"].to_numpy()), side="left") - 1,
        0,
        None,
    )
    return ix, ie


def quantile_table(
    full: pd.DataFrame,
    fast: pd.DataFrame | Sequence[pd.DataFrame],
    objects: Sequence[str],
    *,
    levels: Sequence[float] = CHECK_LEVELS,
    n_pt: int = 5,
    eta_edges: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5),
    min_count: int = 30,
    min_tail: float = 5.0,
) -> pd.DataFrame:
    """Per object, (truth x, |eta|) bin and level: the reco/truth quantile of ``full`` and
    ``fast`` with their order-statistic errors and ``pull = (fast - full) /
    sqrt(err_full^2 + err_fast^2)``.

    The bins are those of :func:`~ariasim.apps.collider.compare.binned_pulls` (``n_pt``
    equal-count bins of the full sample's truth pT or E times ``eta_edges``). ``fast`` may
    be a list of fast simulations of the same particles with different seeds (pooled: its
    error shrinks, the full simulation's remains). A level p is checked in a bin only when
    the full sample has at least ``min_tail`` expected entries beyond it
    (``n min(p, 1 - p) >= min_tail``): beyond, the order statistics cannot resolve the
    quantile (e.g. the 99 % quantile of 67 entries is about their maximum).
    """
    import pandas as pd

    from ariasim.apps.collider.objects import prepare_object

    fasts = [fast] if isinstance(fast, pd.DataFrame) else list(fast)
    rows = []
    for name in objects:
        a = prepare_object(full, name)
        if a["passed"].sum() < min_count:
            continue
        x, edges = _bins(full, name, n_pt, eta_edges)
        b = pd.concat([prepare_object(f, name) for f in fasts], ignore_index=True)
        a, b = a[a["passed"]], b[b["passed"]]
        ia, ja = _assign(a, x, edges, eta_edges)
        ib, jb = _assign(b, x, edges, eta_edges)
        ra, rb = a["ratio"].to_numpy(), b["ratio"].to_numpy()
        for i in range(n_pt):
            for j in range(len(eta_edges) - 1):
                va, vb = ra[(ia == i) & (ja == j)], rb[(ib == i) & (jb == j)]
                if va.size < min_count or vb.size < min_count:
                    continue
                for p in levels:
                    if va.size * min(p, 1 - p) < min_tail:
                        continue
                    qa, ea = _quantile_err(va, p)
                    qb, eb = _quantile_err(vb, p)
                    err = math.hypot(ea, eb)
                    rows.append(
                        {
                            "object": name,
                            "x": x,
                            "x_low": float(np.exp(edges[i])) if i else 0.0,
                            "x_high": float(np.exp(edges[i + 1])) if i < n_pt - 1 else np.inf,
                            "eta_low": float(eta_edges[j]),
                            "eta_high": float(eta_edges[j + 1]),
                            "level": float(p),
                            "n_full": int(va.size),
                            "n_fast": int(vb.size),
                            "q_full": qa,
                            "q_full_err": ea,
                            "q_fast": qb,
                            "q_fast_err": eb,
                            "pull": (qb - qa) / err if err > 0 else 0.0,
                        }
                    )
    return pd.DataFrame(rows)


def quantile_summary(table: pd.DataFrame, *, alpha: float = 0.01) -> pd.DataFrame:
    """Per object: bins, pulls, and bins passing two rules, from :func:`quantile_table`.

    * ``bins_pass``: bins whose every |pull| is below the Bonferroni bound for all the
      object's pulls at family-wise rate ``alpha`` (``bound``; 3.9 for 175 pulls at 1 %): a
      perfect model passes every bin with probability >= 1 - alpha;
    * ``bins_pass_3``: bins whose every |pull| < 3 (a perfect model fails about 0.27 % of
      the pulls, so about one bin in 50 with 7 levels).
    """
    import pandas as pd
    from scipy import stats

    rows: list[dict[str, Any]] = []
    if table.empty:
        return pd.DataFrame(rows)
    for name, g in table.groupby("object", sort=False):
        bound = float(stats.norm.isf(alpha / (2 * max(len(g), 1))))
        worst = g.assign(ap=g["pull"].abs()).groupby(["x_low", "eta_low"])["ap"].max()
        rows.append(
            {
                "object": name,
                "bins": int(worst.size),
                "pulls": len(g),
                "bound": bound,
                "bins_pass": int((worst < bound).sum()),
                "bins_pass_3": int((worst < 3).sum()),
                "max_abs_pull": float(worst.max()),
                "chi2_per_pull": float(np.mean(g["pull"] ** 2)),
            }
        )
    return pd.DataFrame(rows)


def tail_fractions(
    full: pd.DataFrame,
    objects: Sequence[str],
    *,
    n_pt: int = 5,
    eta_edges: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5),
    k: float = 3.0,
    min_count: int = 30,
) -> pd.DataFrame:
    """Per object and |eta| region: the fraction of reco/truth beyond median +- ``k`` core
    sigma (core sigma = half the 16-84 % width), computed per truth-x bin and averaged
    with the bins' counts, minus a Gaussian's ``2 Phi(-k)`` (0.27 % for k = 3); also the
    low side alone. What a single Gaussian fitted to the core cannot carry."""
    import pandas as pd
    from scipy import stats

    from ariasim.apps.collider.objects import prepare_object

    gauss = float(2 * stats.norm.sf(k))
    rows = []
    for name in objects:
        a = prepare_object(full, name)
        if a["passed"].sum() < min_count:
            continue
        x, edges = _bins(full, name, n_pt, eta_edges)
        a = a[a["passed"]]
        ia, ja = _assign(a, x, edges, eta_edges)
        r = a["ratio"].to_numpy()
        for j in range(len(eta_edges) - 1):
            n_tot = out_tot = low_tot = 0.0
            for i in range(n_pt):
                v = r[(ia == i) & (ja == j)]
                if v.size < min_count:
                    continue
                q16, q50, q84 = np.quantile(v, [0.16, 0.5, 0.84])
                s = 0.5 * (q84 - q16)
                out_tot += float(np.sum(np.abs(v - q50) > k * s))
                low_tot += float(np.sum(v < q50 - k * s))
                n_tot += v.size
            if n_tot:
                rows.append(
                    {
                        "object": name,
                        "eta_low": float(eta_edges[j]),
                        "eta_high": float(eta_edges[j + 1]),
                        "n": int(n_tot),
                        "beyond_3sigma": out_tot / n_tot,
                        "tail_excess": out_tot / n_tot - gauss,
                        "low_tail": low_tot / n_tot,
                    }
                )
    return pd.DataFrame(rows)
