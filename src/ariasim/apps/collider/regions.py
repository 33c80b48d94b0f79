"""Data-driven |eta| regions (see :func:`eta_regions`) and the region finder object.

References:
    Scott and Knott, Biometrics 30 (1974) 507 (binary segmentation); Killick et al.,
    JASA 107 (2012) 1590 (change-point detection with penalised costs).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ariasim.apps.collider.objects import robust_sigma
from ariasim.errors import ConfigError

__all__ = ["EtaRegions", "eta_regions", "in_region"]


def _segment_cost(S: np.ndarray, W: np.ndarray, c: np.ndarray) -> float:
    """chi2 of a weighted straight-line fit in ``c`` to every row of ``S`` (weights ``W``);
    a constant for segments of fewer than three slices (else a two-slice segment would
    absorb any step)."""
    sw = W.sum(1)
    ok = sw > 0
    if not ok.any():
        return 0.0
    S, W = S[ok], W[ok]
    sw = sw[ok]
    xm = (W * c).sum(1) / sw
    ym = (W * S).sum(1) / sw
    dx = c - xm[:, None]
    if c.size < 3:  # a line through one or two slices is exact: constant there instead
        return float((W * (S - ym[:, None]) ** 2).sum())
    sxx = (W * dx * dx).sum(1)
    sxy = (W * dx * (S - ym[:, None])).sum(1)
    slope = np.where(sxx > 1e-300, sxy / np.where(sxx > 1e-300, sxx, 1.0), 0.0)
    r = S - ym[:, None] - slope[:, None] * dx
    return float((W * r * r).sum())


def _binary_segmentation(
    S: np.ndarray,
    V: np.ndarray,
    counts: np.ndarray,
    *,
    max_regions: int,
    alpha: float,
    min_count: int,
) -> list[int]:
    """Split points (fine-bin indices) of a piecewise-linear fit to the rows of ``S``
    (variances ``V``; ``inf`` = missing), greedy, while the best split's chi2 gain exceeds
    the chi2 quantile at ``alpha`` over the number of candidate splits (Bonferroni) with
    two parameters per series; segments keep at least ``min_count`` entries."""
    from scipy import stats

    n = S.shape[1]
    W = np.where(np.isfinite(V) & (V > 0), 1.0 / np.where(V > 0, V, 1.0), 0.0)
    S = np.where(W > 0, S, 0.0)
    c = (np.arange(n) + 0.5) / n
    n_series = int((W.sum(1) > 0).sum())
    if n_series == 0 or n < 2:
        return []
    threshold = stats.chi2.isf(alpha / max(n - 1, 1), 2 * n_series)
    cuts: list[int] = []
    while len(cuts) + 1 < max_regions:
        bounds = [0, *cuts, n]
        best = (threshold, -1)
        for lo, hi in itertools.pairwise(bounds):
            whole = _segment_cost(S[:, lo:hi], W[:, lo:hi], c[lo:hi])
            for k in range(lo + 1, hi):
                if counts[lo:k].sum() < min_count or counts[k:hi].sum() < min_count:
                    continue
                gain = (
                    whole
                    - _segment_cost(S[:, lo:k], W[:, lo:k], c[lo:k])
                    - _segment_cost(S[:, k:hi], W[:, k:hi], c[k:hi])
                )
                if gain > best[0]:
                    best = (gain, k)
        if best[1] < 0:
            break
        cuts = sorted([*cuts, best[1]])
    return cuts


#: |eta| edges every calorimeter *efficiency* region set gets besides the learned ones
#: (:func:`eta_regions`), from the default detector's geometry
#: (:func:`ariasim.simulators.collider.detector.load_detector`, rounded to the finder's
#: 0.1 grid): the ECAL front face turns from the barrel cylinder (r 1.29 m) to the endcap
#: disc (|z| 3.15 m) at |eta| = asinh(3.15 / 1.29) = 1.625 -> 1.6, and the five outer-strip
#: cylinders end at |eta| 1.70, where the material in front of the ECAL drops from 1.14
#: to 0.52 X0. The forward 2-5 GeV electron efficiency changes in steps there that a
#: learned region spanning 1.0-1.8 averages over (BENCHMARKS.md, issue 14, Continuations 6
#: and 7). Empty: the learned regions only.
CALO_EFF_EDGES: tuple[float, ...] = (1.6, 1.7)


#: Per object (names in :data:`~ariasim.apps.collider.objects.OBJECTS`), |eta| edges its
#: calorimeter *scale and resolution* regions get besides the learned ones
#: (:func:`eta_regions` with ``quantity="response"``), as :data:`CALO_EFF_EDGES` gives
#: the efficiencies theirs: e.g. ``{"electron": (1.6, 1.7)}`` splits a learned region
#: 0.9-1.7 at the ECAL barrel/endcap face. Empty: the learned regions only. Default:
#: electrons get an edge at |eta| 2.3 (issue 14, item 4, Continuation 26 of BENCHMARKS.md):
#: the learned forward region 2.1-2.5 had one scale, whose eta^2 term cannot follow the
#: full simulation's median falling towards |eta| 2.5 (at E 13-50 GeV the card missed it
#: by up to 0.13, too low at 2.1-2.3 and too high at 2.3-2.5), so the rule's pooled forward
#: bins were too wide; adopted after 232 paired real-Delphes runs on a fresh sample
#: (electron failing bins per sample 1.86 -> 1.56; forward 1-2 GeV width 1.11 -> 0.98 of
#: the full simulation's, 2-5 GeV 1.11 -> 1.08, failures 132 -> 111 and 61 -> 13).
#: Electrons with (1.6, 1.7) were measured in issue 14, item 4, Continuation 21 of
#: BENCHMARKS.md and not adopted: regions 0.9-1.6 and 1.6-1.7 fit their narrow bins
#: better (scale chi2 134 on 67 bins and 11 on 16 against 221 on 68 for 0.9-1.7) and the
#: forward 2-5 GeV width moved from 1.18 to 1.15 of the full simulation's (odd half 1.13
#: -> 1.11), but the 1-2 GeV |eta| 0.8-1.5 width from 0.87 to 0.82 (1.00 -> 0.94): below
#: the regions' lowest narrow bins the refitted resolutions extrapolate narrower.
CALO_RESP_EDGES: dict[str, tuple[float, ...]] = {"electron": (2.3,)}


def _with_fixed_edges(
    out: list[tuple[float, float]],
    d: pd.DataFrame,
    kind: str,
    eta_max: float,
    quantity: str,
    min_count: int,
    obj: str | None = None,
) -> list[tuple[float, float]]:
    """``out`` with the fixed edges added: :data:`CALO_EFF_EDGES` for calorimeter
    efficiencies, :data:`CALO_RESP_EDGES` ``[obj]`` for a calorimeter object's response
    (inside ``(0, eta_max)``, each only where both parts keep ``min_count`` rows, truth
    rows for efficiencies, reconstructed ones for the response: a small table keeps its
    learned regions, since a region too small would get a constant efficiency or a poorly
    measured scale)."""
    if kind != "calo" or len(d) == 0:
        return out
    if quantity == "efficiency":
        fixed = CALO_EFF_EDGES
        a = np.abs(d["eta"].to_numpy(float))
    elif quantity == "response" and obj is not None and obj in CALO_RESP_EDGES:
        fixed = tuple(CALO_RESP_EDGES[obj])
        a = np.abs(d.loc[d["passed"].to_numpy(bool), "eta"].to_numpy(float))
    else:
        return out
    if not fixed:
        return out
    b = sorted({x for e in out for x in e})
    for x in sorted(float(v) for v in fixed if 0 < v < eta_max):
        if x in b:
            continue
        lo = max(e for e in b if e < x)
        hi = min(e for e in b if e > x)
        if min(int(in_region(a, lo, x).sum()), int(in_region(a, x, hi).sum())) >= min_count:
            b = sorted([*b, x])
    return list(itertools.pairwise(b))


def eta_regions(
    d: pd.DataFrame,
    kind: str,
    eta_max: float,
    *,
    quantity: str,
    width: float = 0.1,
    n_classes: int = 3,
    max_regions: int = 4,
    alpha: float = 1e-3,
    min_count: int = 200,
    obj: str | None = None,
) -> list[tuple[float, float]]:
    """Data-driven |eta| regions for one quantity of one object (see the module docstring);
    calorimeter efficiencies also split at :data:`CALO_EFF_EDGES`, and the response of a
    calorimeter object ``obj`` at :data:`CALO_RESP_EDGES` ``[obj]`` (inside
    ``(0, eta_max)``, each where both sides keep ``min_count`` rows).

    Arguments:
        d: :func:`prepare_object` rows (within the acceptance).
        kind: ``"track"`` or ``"calo"`` (which truth variable defines the pT/E classes).
        eta_max: |eta| acceptance (the last edge).
        quantity: ``"efficiency"`` (series: efficiency per class, binomial variances) or
            ``"response"`` (median and log robust width of log(ratio) per class).
        width: Fine |eta| slice width (edges are multiples of it, readable in a card).
        n_classes: Truth pT (or E) quantile classes.
        max_regions: At most this many regions.
        alpha: Family-wise false-split rate.
        min_count: Fewest rows (truth for efficiency, reconstructed for the response) in
            a region.
        obj: The object's name (for :data:`CALO_RESP_EDGES`); None: no such edges.

    Returns:
        ``[(eta_low, eta_high), ...]`` tiling ``[0, eta_max]``.

    Example:
        >>> import pandas as pd
        >>> d = pd.DataFrame({"energy": 10.0, "eta": np.linspace(0, 2.5, 5001), "passed": True})
        >>> eta_regions(d, "calo", 2.5, quantity="efficiency")
        [(0.0, 1.6), (1.6, 1.7), (1.7, 2.5)]
        >>> eta_regions(d.iloc[::10], "calo", 2.5, quantity="efficiency")  # 50 rows in 1.6-1.7
        [(0.0, 2.5)]
    """
    n_fine = max(round(eta_max / width), 1)
    edges = np.linspace(0.0, eta_max, n_fine + 1)
    dd = d if quantity == "efficiency" else d[d["passed"]]
    if len(dd) < 2 * min_count:
        return [(0.0, eta_max)]
    x = np.log(dd["pt" if kind == "track" else "energy"].to_numpy(float))
    cls = np.clip(
        np.searchsorted(np.quantile(x, np.linspace(0, 1, n_classes + 1)[1:-1]), x, side="right"),
        0,
        n_classes - 1,
    )
    ib = np.clip(
        np.searchsorted(edges, np.abs(dd["eta"].to_numpy(float)), side="right") - 1, 0, n_fine - 1
    )
    counts = np.bincount(ib, minlength=n_fine)
    rows_s, rows_v = [], []
    if quantity == "efficiency":
        k = dd["passed"].to_numpy(float)
        for c in range(n_classes):
            m = cls == c
            nn = np.bincount(ib[m], minlength=n_fine).astype(float)
            kk = np.bincount(ib[m], weights=k[m], minlength=n_fine)
            p = (kk + 0.5) / (nn + 1.0)
            rows_s.append(kk / np.maximum(nn, 1.0))
            rows_v.append(np.where(nn >= 10, p * (1 - p) / np.maximum(nn, 1.0), np.inf))
    else:
        ly = np.log(dd["ratio"].to_numpy(float))
        for c in range(n_classes):
            med = np.zeros(n_fine)
            lsd = np.zeros(n_fine)
            vm = np.full(n_fine, np.inf)
            vs = np.full(n_fine, np.inf)
            for b in range(n_fine):
                v = ly[(cls == c) & (ib == b)]
                if v.size < 20:
                    continue
                med[b] = np.median(v)
                sd = max(robust_sigma(v), 1e-9)
                lsd[b] = np.log(sd)
                # asymptotic variances of the median and of log(MAD) for a normal sample
                vm[b] = np.pi / 2 * sd * sd / v.size
                vs[b] = 1.36 / v.size
            rows_s += [med, lsd]
            rows_v += [vm, vs]
    cuts = _binary_segmentation(
        np.array(rows_s),
        np.array(rows_v),
        counts,
        max_regions=max_regions,
        alpha=alpha,
        min_count=min_count,
    )
    bounds = [0.0, *[float(round(edges[k], 6)) for k in cuts], float(eta_max)]
    return _with_fixed_edges(
        list(itertools.pairwise(bounds)), d, kind, eta_max, quantity, min_count, obj
    )


def in_region(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Mask of |eta| values ``a`` in (lo, hi] (the first region, lo = 0, includes 0)."""
    return (a > lo) & (a <= hi) if lo > 0 else (a <= hi)


class EtaRegions(BaseEstimator):
    """The |eta| region finder of :class:`ResponseLearner` (wraps :func:`eta_regions`).

    Arguments:
        max_regions: At most this many regions per quantity (1: the whole acceptance).
        width, n_classes, alpha, min_count: See :func:`eta_regions`.

    Example:
        >>> import pandas as pd
        >>> EtaRegions(max_regions=1).edges(pd.DataFrame(), "track", 2.5,
        ...                                 quantity="efficiency")
        [(0.0, 2.5)]
    """

    def __init__(
        self,
        max_regions: int = 4,
        *,
        width: float = 0.1,
        n_classes: int = 3,
        alpha: float = 1e-3,
        min_count: int = 200,
    ):
        self.max_regions = max_regions
        self.width = width
        self.n_classes = n_classes
        self.alpha = alpha
        self.min_count = min_count

    def edges(
        self,
        d: pd.DataFrame,
        kind: str,
        eta_max: float,
        *,
        quantity: str,
        obj: str | None = None,
    ) -> list[tuple[float, float]]:
        """``[(eta_low, eta_high), ...]`` tiling ``[0, eta_max]`` for one quantity (of the
        object ``obj``, for :data:`CALO_RESP_EDGES`)."""
        if not isinstance(self.max_regions, int) or self.max_regions < 1:
            raise ConfigError(
                f"max_regions must be an integer >= 1, got {self.max_regions!r}",
                parameter="max_regions",
            )
        if self.max_regions == 1:
            return [(0.0, eta_max)]
        return eta_regions(
            d,
            kind,
            eta_max,
            quantity=quantity,
            width=self.width,
            n_classes=self.n_classes,
            max_regions=self.max_regions,
            alpha=self.alpha,
            min_count=self.min_count,
            obj=obj,
        )
