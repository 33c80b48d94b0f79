"""Turn physics features into the smooth, unbounded coordinates a flow can morph.

Physics features are rarely the smooth densities on the real line that normalising flows and
flow matching assume. :class:`FeatureCodec` maps each feature to a standardised coordinate
``z`` and back, column by column, with rules a physicist can check:

* **Integer counts** (every value integral, e.g. the number of hits): *dequantised*,
  ``x + u`` with ``u ~ U(0, 1)``, so the count's probability becomes a density on
  ``[k, k + 1)``; decoding takes the floor, so a morphed count is again an integer and the
  probabilities of the counts are what the flow learned (Theis et al. 2016, "A note on the
  evaluation of generative models", section 3.1; Uria et al. 2013). Decoded counts are
  kept at or above the pooled minimum (the flow's density has no hard edge).
* **Integer counts with few values** (optional, ``count_levels > 0``: integer columns whose
  pooled range holds at most that many integers, e.g. tracker hits): a *probability-integral
  map*, ``z = Phi^-1(F(k-) + p_k u)`` with ``p_k`` the pooled frequency of count ``k``,
  ``F(k-)`` that of the counts below it and ``u ~ U(0, 1)``, so each count's interval in
  ``z`` holds its pooled probability (under the standard normal). Every integer between the
  pooled minimum and maximum gets an interval, with half an event added to each count, so a
  count that never occurs in the pooled sample keeps only a sliver (``0.5 / n``) and a morph
  can hardly leak events into it (with ``x + u`` the gap between 8 and 11 hits is a
  unit-wide interval that a smooth density fills); decoding finds the interval, so it is
  exact, and a count outside the pooled range is encoded as the nearest end count.
  This is the randomised quantile transform of a discrete variable (Dunn & Smyth 1996,
  "Randomized quantile residuals", J. Comput. Graph. Stat. 5, 236), i.e. the quantile
  transformation below made exact for a discrete column.
* **Spikes at a boundary** (a fraction of at least ``spike_fraction`` of the events exactly at
  the minimum or maximum, e.g. isolation = 0, a saturated ADC): the spike's events are spread
  uniformly over a band of width ``spike_width`` (in standard deviations) just outside the
  continuous part; decoding maps everything in the band back onto the spike value. A morph
  can therefore move events into or out of the spike, which is how the spike's fraction
  changes between the domains.
* **Interior atoms** (optional, ``atom_tolerance`` not None): a value repeated in at least
  ``spike_fraction`` of the pooled rows, or, for ``atom_tolerance > 0``, a cluster of values
  at most ``atom_tolerance`` robust standard deviations wide holding that fraction and more
  than three times the mean of the equally wide intervals at its two sides (both
  non-empty: an interior peak, not a dense bulk or the support's edge; e.g. the detector's
  sigma_ietaieta piles up just below a geometric maximum, 0.2/23, 1.7 % of the rows within
  4e-6, which an 8-bin spline smooths). Each atom gets its own band in ``z``: the
  coordinate opens a gap there of width ``mass / density`` (the atom's pooled fraction over
  the continuous part's pooled fraction per unit ``z`` within ``0.25`` of it, so the band is
  about as dense as its surroundings; at most ``spike_width``). An exact atom's events are
  spread uniformly over its band; a near-atom's keep their order (piecewise-linear in 17
  pooled quantiles of its values). Decoding maps the band back (an exact atom's band onto
  its value), so a morph moves events into and out of an atom, the continuous part's map is
  unchanged apart from the shift past the bands, and everything stays monotone and exactly
  invertible.
* **Heavy right tails** (sample skewness above ``log_skew``, e.g. charges, arrival-time
  delays, track chi2): ``log(x - lo + offset)`` with ``lo`` the pooled minimum and
  ``offset`` a small positive quantile of ``x - lo``, so a few events far out do not
  squeeze the rest into one spline bin (values below ``lo`` are clipped to it).
* **Bounded variables** (declared with ``bounds={"col": (lo, hi)}``): ``logit`` of the
  position in ``[lo, hi]``; decoded values stay inside the bounds.
* Everything is then centred on the median and scaled by the inter-quartile range / 1.349
  (robust against tails), so the flow's spline domain ([-5, 5] in zuko) holds the bulk.
* Optionally (``quantile_knots > 0``), instead of that centring and scaling, a
  *Gaussianising map*: piecewise-linear interpolation from ``quantile_knots`` empirical
  quantiles of the pooled (dequantised, transformed) column to the normal scores of their
  levels, continued linearly beyond the end knots (the marginal "quantile transformation"
  used as flow preprocessing, e.g. Kobyzev, Prince & Brubaker, "Normalizing flows: an
  introduction and review", IEEE TPAMI 43 (2021) 3964, section 3.1; scikit-learn's
  ``QuantileTransformer``). Structure of a marginal that both domains share (a narrow
  peak or an edge a spline with a few bins smooths away, gaps between a count's values
  into which a smooth density leaks) is then carried exactly by the map, and the flow
  only models smooth differences. The map is monotone, so a morph stays monotone in each
  coordinate; with ``n`` pooled rows, more than about ``n / 20`` knots start to resolve
  the sample's own noise.

The rules are chosen on the pooled source + target sample, so both domains share one
coordinate system. ``transforms={"col": "none"|"log"|"logit"}`` overrides the choice.
Interior atoms are found only with ``atom_tolerance`` and counts are probability-mapped only
with ``count_levels`` (both off by default in ``FeatureCodec.fit``; on by default in
:class:`~ariasim.shift.flow.FlowMorpher`, ``atom_tolerance=0.005``, ``count_levels=32``,
measured in BENCHMARKS.md, "Interior atoms and probability-mapped counts in the codec").

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([rng.poisson(3.0, 500), np.where(rng.random(500) < 0.3, 0.0,
    ...                      rng.exponential(1.0, 500))])
    >>> codec = FeatureCodec.fit(x, ["hits", "iso"])
    >>> [(c.name, c.integer, c.spike_lo) for c in codec.columns]
    [('hits', True, None), ('iso', False, 0.0)]
    >>> bool(np.allclose(codec.decode(codec.encode(x, rng)), x, rtol=1e-12, atol=1e-12))
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import special, stats

from ariasim.errors import ConfigError, InputError
from ariasim.utils import spawn_seeds

__all__ = ["CHUNK", "ColumnCodec", "ContextScaler", "FeatureCodec", "seeded_chunks"]

CHUNK = 8192  # rows per internal chunk of a morpher's transform (fixes the noise streams)


def seeded_chunks(n_rows: int, seed: int) -> Iterator[tuple[slice, np.random.Generator]]:
    """The fixed chunks of :data:`CHUNK` rows in which morphers encode (dequantise) and
    move rows, each with its own generator from ``spawn_seeds(seed, n_chunks)``, so the
    output does not depend on how the caller batches its rows.

    Example:
        >>> [(s.start, s.stop) for s, _ in seeded_chunks(10000, 0)]
        [(0, 8192), (8192, 16384)]
    """
    n_chunks = (n_rows + CHUNK - 1) // CHUNK
    for k, chunk_seed in enumerate(spawn_seeds(seed, n_chunks)):
        yield slice(k * CHUNK, (k + 1) * CHUNK), np.random.default_rng(chunk_seed)


_KINDS = ("none", "log", "logit")
_EPS = 1e-6
_MAX_ATOMS = 20
_ATOM_POSITIONS = 17  # quantiles kept per near-atom (its values' order inside its band)
_ATOM_NEAR = 0.25  # half-width in z of the continuous part whose density sizes a band
_COUNT_PSEUDO = 0.5  # events added to each count of the range (one never seen: a sliver)
_COUNT_EPS = 1e-9  # the probability-integral map of counts stays within +-6 sd


@dataclass(frozen=True)
class ColumnCodec:
    """The rule for one column (see the module docstring); JSON-able via ``asdict``.

    Example:
        >>> c = ColumnCodec("e", "none", False, None, None, None, None, 0.0, 0.0, 1.0)
        >>> c.kind
        'none'
    """

    name: str
    kind: str
    integer: bool
    lo: float | None
    hi: float | None
    spike_lo: float | None
    spike_hi: float | None
    offset: float
    center: float
    scale: float
    spike_width: float = 0.5
    knots_t: tuple[float, ...] | None = None
    knots_z: tuple[float, ...] | None = None
    atoms: tuple[tuple[float, ...], ...] | None = None
    count_values: tuple[float, ...] | None = None
    count_cdf: tuple[float, ...] | None = None

    # --- the monotone map t = g(x) and its inverse --------------------------------------
    def _g(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "log":
            assert self.lo is not None
            return np.log(np.maximum(x - self.lo + self.offset, self.offset * 1e-3))
        if self.kind == "logit":
            assert self.lo is not None and self.hi is not None
            p = np.clip((x - self.lo) / (self.hi - self.lo), _EPS, 1 - _EPS)
            return special.logit(p)
        return x

    def _g_inv(self, t: np.ndarray) -> np.ndarray:
        if self.kind == "log":
            assert self.lo is not None
            return np.exp(t) - self.offset + self.lo
        if self.kind == "logit":
            assert self.lo is not None and self.hi is not None
            return self.lo + (self.hi - self.lo) * special.expit(t)
        return t

    def _q(self, t: np.ndarray) -> np.ndarray:
        """The pooled sample's normal scores of ``t`` (identity without knots)."""
        if self.knots_t is None or self.knots_z is None:
            return t
        return _interp_linear(t, np.asarray(self.knots_t), np.asarray(self.knots_z))

    def _q_inv(self, z: np.ndarray) -> np.ndarray:
        if self.knots_t is None or self.knots_z is None:
            return z
        return _interp_linear(z, np.asarray(self.knots_z), np.asarray(self.knots_t))

    def _z(self, x: np.ndarray) -> np.ndarray:
        """The continuous part's coordinate, before the atoms' bands are opened."""
        return (self._q(self._g(x)) - self.center) / self.scale

    # --- interior atoms: each one's band (see the module docstring) ---------------------
    def _atom_bands(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per atom (in increasing order): its values' lowest and highest ``z`` before the
        gaps, the band's start in the final coordinate, and the band's width."""
        assert self.atoms is not None
        za = self._z(np.array([a[1] for a in self.atoms]))
        zb = self._z(np.array([a[-1] for a in self.atoms]))
        gap = np.array([a[0] for a in self.atoms])
        before = np.concatenate([[0.0], np.cumsum(gap)[:-1]])
        return za, zb, za + before, zb - za + gap

    def _zc(self, x: np.ndarray) -> np.ndarray:
        """``z`` of continuous values: ``_z`` shifted past the bands of the atoms below."""
        z = self._z(x)
        if self.atoms is None:
            return z
        lo = np.array([a[1] for a in self.atoms])
        gap = np.array([a[0] for a in self.atoms])
        below = np.searchsorted(lo, np.asarray(x, dtype=np.float64), side="right")
        return z + np.concatenate([[0.0], np.cumsum(gap)])[below]

    def _zc_inv(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``z`` before the gaps, the band each coordinate lies in (-1: none) and its
        position in that band (0..1)."""
        assert self.atoms is not None
        _, _, start, width = self._atom_bands()
        end = start + width
        gap = np.array([a[0] for a in self.atoms])
        cum = np.concatenate([[0.0], np.cumsum(gap)])
        k = np.searchsorted(end, z, side="right")  # bands wholly below z
        kk = np.minimum(k, len(self.atoms) - 1)
        inside = (k < len(self.atoms)) & (z >= start[kk])
        pos = np.clip((z - start[kk]) / width[kk], 0.0, 1.0)
        return z - cum[k], np.where(inside, kk, -1), pos

    def _count_z(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Probability-integral map of a count: ``Phi^-1(F(k-) + p_k u)``."""
        assert self.count_values is not None and self.count_cdf is not None
        values = np.asarray(self.count_values)
        upper = np.asarray(self.count_cdf)
        lower = np.concatenate([[0.0], upper[:-1]])
        # every integer of the pooled range has an interval; beyond it, the end counts'
        j = np.clip(np.searchsorted(values, x, side="left"), 0, values.size - 1)
        t = lower[j] + (upper[j] - lower[j]) * u
        return stats.norm.ppf(np.clip(t, _COUNT_EPS, 1.0 - _COUNT_EPS))

    def _count_x(self, z: np.ndarray) -> np.ndarray:
        assert self.count_values is not None and self.count_cdf is not None
        upper = np.asarray(self.count_cdf)
        j = np.searchsorted(upper[:-1], stats.norm.cdf(z), side="right")
        return np.asarray(self.count_values)[j]

    def encode(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``z`` of one column; draws the dequantisation noise from ``rng``."""
        x = np.asarray(x, dtype=np.float64)
        u: np.ndarray = np.asarray(rng.random(x.shape[0]))
        if self.count_values is not None:
            return self._count_z(x, u)
        if self.integer:
            return self._z(x + u)
        z = self._zc(x)
        if self.spike_lo is not None:
            at = x <= self.spike_lo
            z = np.where(at, self._zc(np.full_like(x, self.spike_lo)) - self.spike_width * u, z)
        if self.spike_hi is not None:
            at = x >= self.spike_hi
            z = np.where(at, self._zc(np.full_like(x, self.spike_hi)) + self.spike_width * u, z)
        if self.atoms is not None:
            _, _, start, width = self._atom_bands()
            for k, atom in enumerate(self.atoms):
                q = np.asarray(atom[1:])
                at = (x >= q[0]) & (x <= q[-1])
                if q.size == 1:  # an exact atom: spread uniformly over its band
                    pos = u
                else:  # a near-atom: its values' own (pooled) quantiles, kept in order
                    pos = np.interp(x, q, np.linspace(0.0, 1.0, q.size))
                z = np.where(at, start[k] + width[k] * pos, z)
        return z

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The column's values for coordinates ``z`` (floor for counts, snap to spikes)."""
        z = np.asarray(z, dtype=np.float64)
        if self.count_values is not None:
            return self._count_x(z)
        band = pos = None
        z0 = z
        if self.atoms is not None:
            z0, band, pos = self._zc_inv(z)
        x = self._g_inv(self._q_inv(z0 * self.scale + self.center))
        if self.integer:
            x = np.floor(x)
            if self.lo is not None:  # a morphed count stays at or above the pooled minimum
                x = np.maximum(x, self.lo)
            return x
        if self.spike_lo is not None:
            edge = self._zc(np.array([self.spike_lo]))[0]
            x = np.where(z <= edge, self.spike_lo, x)
        if self.spike_hi is not None:
            edge = self._zc(np.array([self.spike_hi]))[0]
            x = np.where(z >= edge, self.spike_hi, x)
        if self.kind == "log" and self.lo is not None and self.spike_lo is not None:
            x = np.maximum(x, self.lo)
        if self.atoms is not None:
            assert band is not None and pos is not None
            for k, atom in enumerate(self.atoms):
                q = np.asarray(atom[1:])
                at_x = np.interp(pos, np.linspace(0.0, 1.0, q.size), q) if q.size > 1 else q[0]
                x = np.where(band == k, at_x, x)
        return x


def _interp_linear(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation through increasing knots ``(xp, fp)``, continued
    linearly beyond the end knots with the mean slope of the outer 1 % of the knots (a
    single end segment's slope is noise); increasing knots make it strictly increasing."""
    x = np.asarray(x, dtype=np.float64)
    y = np.interp(x, xp, fp)
    k = max(1, (xp.size - 1) // 100)
    lo_slope = (fp[k] - fp[0]) / (xp[k] - xp[0])
    hi_slope = (fp[-1] - fp[-1 - k]) / (xp[-1] - xp[-1 - k])
    y = np.where(x < xp[0], fp[0] + (x - xp[0]) * lo_slope, y)
    return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * hi_slope, y)


def _quantile_knots(t: np.ndarray, n_knots: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Knots of the pooled sample's Gaussianising map: ``n_knots`` empirical quantiles of
    ``t`` at the levels ``p_k = (k + 1/2) / n_knots`` against the normal scores
    ``Phi^-1(p_k)``, and in each tail beyond them the levels ``(0.5, 2, 5, 10, 20, 50) / n``
    (``n`` rows), so the sparse far tail is mapped by its own order statistics instead of a
    straight continuation; tied quantiles (an atom) keep their middle level, so the map
    stays strictly increasing."""
    uniform = (np.arange(n_knots) + 0.5) / n_knots
    tail = np.array([0.5, 2.0, 5.0, 10.0, 20.0, 50.0]) / t.size
    tail = tail[tail < 0.5 * uniform[0]]
    p = np.concatenate([tail, uniform, 1.0 - tail[::-1]])
    q = np.quantile(t, p)
    z = stats.norm.ppf(p)
    uq, first, counts = np.unique(q, return_index=True, return_counts=True)
    zq = np.array([z[f : f + c].mean() for f, c in zip(first, counts, strict=True)])
    if uq.size < 2:
        raise ConfigError("a quantile map needs at least two distinct values", parameter="quantile")
    return tuple(map(float, uq)), tuple(map(float, zq))


def _robust_scale(t: np.ndarray) -> tuple[float, float]:
    center = float(np.median(t))
    q25, q75 = np.percentile(t, [25, 75])
    scale = float(q75 - q25) / 1.349
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(center)):
        scale = float(np.std(t))
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return center, scale


def _find_atoms(
    v: np.ndarray, tol: float, fraction: float, max_atoms: int = _MAX_ATOMS
) -> list[tuple[float, float]]:
    """Interior atoms of the pooled sample ``v`` (boundary spikes already removed), sorted:
    first each value repeated in at least ``fraction`` of the rows (an exact atom
    ``[a, a]``); then, if ``tol > 0``, among the other rows, densest first, the intervals
    ``[a, b]`` of width at most ``tol`` that hold at least ``fraction`` of the rows and
    more than three times the mean of the two equally wide intervals beside them, both of which
    hold rows (an interior peak, not a dense bulk or the support's edge), disjoint."""
    xs = np.sort(v)
    n = xs.size
    need = max(2, int(np.ceil(fraction * n)))
    values, counts = np.unique(xs, return_counts=True)
    found = [(float(a), float(a)) for a in values[counts >= need][:max_atoms]]
    taken = np.isin(xs, [a for a, _ in found])
    while tol > 0 and len(found) < max_atoms:
        free = xs[~taken]
        if free.size < need:
            break
        stop = np.searchsorted(free, free + tol, side="right")
        count = stop - np.arange(free.size)
        # windows must not reach over an atom already found
        for a, b in found:
            count[(free < a) & (free[np.maximum(stop - 1, 0)] > b)] = 0
        i = int(np.argmax(count))
        if count[i] < need:
            break
        a, b = float(free[i]), float(free[stop[i] - 1])
        side = max(b - a, tol)
        left = np.sum((xs >= a - side) & (xs < a))  # all rows: an atom's neighbour is no peak
        right = np.sum((xs > b) & (xs <= b + side))
        # interior (the continuous part goes on at both sides) and a peak (more than three
        # times the neighbours' mean), not the edge of the support or a dense bulk
        if min(left, right) == 0 or count[i] <= 1.5 * (left + right):
            break
        found.append((a, b))
        taken |= (xs >= a) & (xs <= b)
    return sorted(found)


def _column(
    name: str,
    v: np.ndarray,
    transform: str | None,
    bounds: tuple[float, float] | None,
    spike_fraction: float,
    spike_width: float,
    log_skew: float,
    quantile_knots: int = 0,
    rng: np.random.Generator | None = None,
    atom_tolerance: float | None = None,
    count_levels: int = 0,
) -> ColumnCodec:
    integer = bool(np.all(v == np.round(v))) and np.unique(v).size < 0.5 * v.size
    lo_v, hi_v = float(v.min()), float(v.max())
    if (
        integer
        and count_levels
        and transform is None
        and bounds is None
        and hi_v - lo_v + 1 <= count_levels
    ):
        # every integer of the pooled range, each with its pooled count plus half an event
        # (a count never seen keeps a sliver, so any count in the range round-trips)
        values = np.arange(lo_v, hi_v + 1.0)
        counts = np.searchsorted(np.sort(v), values, side="right") - np.searchsorted(
            np.sort(v), values, side="left"
        )
        cdf = np.cumsum(counts + _COUNT_PSEUDO) / (v.size + _COUNT_PSEUDO * values.size)
        cdf[-1] = 1.0
        return ColumnCodec(
            name, "none", True, lo_v, hi_v, None, None, 0.0, 0.0, 1.0, spike_width,
            count_values=tuple(map(float, values)), count_cdf=tuple(map(float, cdf)),
        )  # fmt: skip
    spike_lo = spike_hi = None
    if not integer and np.unique(v).size > 10:
        if np.mean(v == lo_v) >= spike_fraction:
            spike_lo = lo_v
        if np.mean(v == hi_v) >= spike_fraction:
            spike_hi = hi_v
    cont = v[(v != spike_lo) & (v != spike_hi)] if (spike_lo, spike_hi) != (None, None) else v
    found: list[tuple[float, float]] = []
    if atom_tolerance is not None and not integer and cont.size > 10:
        iq = np.subtract(*np.percentile(cont, [75, 25])) / 1.349
        found = _find_atoms(cont, float(atom_tolerance) * float(iq), spike_fraction)
        for a, b in found:
            cont = cont[(cont < a) | (cont > b)]
    if cont.size < 2:
        cont = v
        found = []
    kind = transform
    if kind is None:
        if bounds is not None:
            kind = "logit"
        elif cont.size > 2 and float(stats.skew(cont)) > log_skew:
            kind = "log"
        else:
            kind = "none"
    lo = hi = None
    offset = 0.0
    if kind == "logit":
        if bounds is None:
            raise ConfigError(f"column {name!r}: logit needs bounds=(lo, hi)", parameter="bounds")
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi or lo_v < lo or hi_v > hi:
            raise InputError(
                f"values [{lo_v:g}, {hi_v:g}] outside the bounds [{lo:g}, {hi:g}]", column=name
            )
    elif integer and kind == "none":
        lo = lo_v  # only the floor of decoded counts (a count cannot leak below its edge)
    elif kind == "log":
        lo = lo_v
        if integer:
            offset = 1.0
        else:
            pos = cont - lo
            pos = pos[pos > 0]
            offset = float(np.quantile(pos, 0.05)) if pos.size else 1.0
            offset = offset if offset > 0 else 1.0
    probe = ColumnCodec(name, kind, integer, lo, hi, spike_lo, spike_hi, offset, 0.0, 1.0)
    if quantile_knots:
        # the map is fitted on the dequantised counts (the coordinates the flow sees)
        u = (rng or np.random.default_rng(0)).random(cont.size)
        knots = _quantile_knots(probe._g(cont + u if integer else cont), int(quantile_knots))
        base = ColumnCodec(
            name, kind, integer, lo, hi, spike_lo, spike_hi, offset, 0.0, 1.0, spike_width, *knots
        )
    else:
        t = probe._g(cont + 0.5 if integer else cont)
        center, scale = _robust_scale(t)
        base = ColumnCodec(
            name, kind, integer, lo, hi, spike_lo, spike_hi, offset, center, scale, spike_width
        )
    if not found:
        return base
    z_cont = base._z(cont)
    atoms = []
    for a, b in found:
        held = v[(v >= a) & (v <= b)]
        za, zb = base._z(np.array([a, b]))
        near = np.sum((z_cont >= za - _ATOM_NEAR) & (z_cont <= zb + _ATOM_NEAR))
        density = near / (2 * _ATOM_NEAR * v.size)  # the continuous part's, per unit of z
        gap = held.size / v.size / density if density > 0 else spike_width
        q = np.unique(np.quantile(held, np.linspace(0.0, 1.0, _ATOM_POSITIONS)))
        atoms.append((float(min(gap, spike_width)), *map(float, q)))
    return replace(base, atoms=tuple(atoms))


@dataclass(frozen=True)
class FeatureCodec:
    """Column-wise map between features and the flow's coordinates (module docstring).

    Example:
        >>> import numpy as np
        >>> codec = FeatureCodec.fit(np.arange(20.0).reshape(10, 2) + 0.5, ["a", "b"])
        >>> FeatureCodec.from_dict(codec.to_dict()) == codec
        True
    """

    columns: tuple[ColumnCodec, ...]

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        names: Sequence[str],
        *,
        transforms: Mapping[str, str] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        spike_fraction: float = 0.005,
        spike_width: float = 0.5,
        log_skew: float = 3.0,
        quantile_knots: int = 0,
        seed: int = 0,
        atom_tolerance: float | None = None,
        count_levels: int = 0,
    ) -> FeatureCodec:
        """Choose each column's rule on the pooled sample ``x`` of shape ``(n, len(names))``.

        ``quantile_knots > 0`` adds the Gaussianising map (module docstring) with that many
        knots; ``seed`` seeds the dequantisation noise of the counts it is fitted on.
        ``atom_tolerance`` (None: off) finds interior atoms: values, or clusters of values
        at most ``atom_tolerance`` robust standard deviations wide (0: exact values only),
        holding at least ``spike_fraction`` of the pooled rows; ``count_levels > 0`` maps
        integer columns whose pooled range holds at most that many integers by their
        pooled probabilities (module docstring)."""
        x = np.asarray(x, dtype=np.float64)
        names = list(names)
        for label, mapping in (("transforms", transforms), ("bounds", bounds)):
            for key in mapping or {}:
                if key not in names:
                    raise ConfigError(
                        f"{key!r} is not a feature ({', '.join(names)})", parameter=label
                    )
        for key, val in (transforms or {}).items():
            if val not in _KINDS:
                raise ConfigError(
                    f"{key!r}: {val!r} is not one of {', '.join(_KINDS)}", parameter="transforms"
                )
        if not 0 < spike_fraction < 1:
            raise ConfigError("must be in (0, 1)", parameter="spike_fraction")
        qk = quantile_knots
        if isinstance(qk, bool) or not isinstance(qk, int | np.integer) or qk < 0 or qk == 1:
            raise ConfigError(f"must be 0 (off) or >= 2, got {qk!r}", parameter="quantile_knots")
        at = atom_tolerance
        if at is not None and (isinstance(at, bool) or not np.isfinite(at) or at < 0):
            raise ConfigError(
                f"must be None (off) or a tolerance >= 0, got {at!r}", parameter="atom_tolerance"
            )
        cl = count_levels
        if isinstance(cl, bool) or not isinstance(cl, int | np.integer) or cl < 0 or cl == 1:
            raise ConfigError(f"must be 0 (off) or >= 2, got {cl!r}", parameter="count_levels")
        rng = np.random.default_rng(seed)
        cols = tuple(
            _column(
                n,
                x[:, j],
                (transforms or {}).get(n),
                (bounds or {}).get(n),
                spike_fraction,
                spike_width,
                log_skew,
                int(qk),
                rng,
                None if at is None else float(at),
                int(cl),
            )
            for j, n in enumerate(names)
        )
        return cls(cols)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def encode(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Coordinates of ``x`` (n, d); dequantisation noise from ``rng``, column by column."""
        x = np.asarray(x, dtype=np.float64)
        return np.column_stack([c.encode(x[:, j], rng) for j, c in enumerate(self.columns)])

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Feature values of coordinates ``z`` (n, d)."""
        z = np.asarray(z, dtype=np.float64)
        return np.column_stack([c.decode(z[:, j]) for j, c in enumerate(self.columns)])

    def to_dict(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.columns]

    @classmethod
    def from_dict(cls, data: Sequence[Mapping[str, Any]]) -> FeatureCodec:
        def column(d: Mapping[str, Any]) -> ColumnCodec:
            d = dict(d)
            for key in ("knots_t", "knots_z", "count_values", "count_cdf"):
                if d.get(key) is not None:
                    d[key] = tuple(float(v) for v in d[key])
            if d.get("atoms") is not None:
                d["atoms"] = tuple(tuple(float(v) for v in a) for a in d["atoms"])
            return ColumnCodec(**d)

        try:
            return cls(tuple(column(d) for d in data))
        except TypeError as exc:
            raise InputError(f"malformed feature codec ({exc})", field="codec") from exc


@dataclass(frozen=True)
class ContextScaler:
    """Standardises the context columns (mean 0, standard deviation 1) for the networks.

    Example:
        >>> import numpy as np
        >>> s = ContextScaler.fit(np.array([[1.0], [3.0]]))
        >>> s.apply(np.array([[2.0]])).tolist()
        [[0.0]]
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, c: np.ndarray) -> ContextScaler:
        c = np.asarray(c, dtype=np.float64)
        if c.shape[1] == 0:
            return cls((), ())
        sd = c.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return cls(tuple(map(float, c.mean(axis=0))), tuple(map(float, sd)))

    def apply(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)
        if not self.mean:
            return c.reshape(c.shape[0], 0)
        return (c - np.asarray(self.mean)) / np.asarray(self.std)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContextScaler:
        return cls(tuple(map(float, d.get("mean", ()))), tuple(map(float, d.get("std", ()))))
