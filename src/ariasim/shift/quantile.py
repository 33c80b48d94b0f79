"""Morph events between two domains with chained conditional quantile regression.

The method is CMS's correction of simulated photon shower shapes and isolations towards data
(CMS Collaboration, "Measurements of Higgs boson production cross sections and couplings in
the diphoton decay channel at sqrt(s) = 13 TeV", JHEP 07 (2021) 027, arXiv:2103.06956,
section 4, following the chained quantile regression of T. Reichelt's and the ETH group's
H -> gamma gamma work, itself a multivariate extension of the quantile mapping long used to
correct climate-model output): each feature's cumulative distribution is learned *conditional
on the context and on the features already corrected*, in simulation and in data, and a
simulated value is moved to the data value at the same conditional quantile. For features
``y_1 .. y_d`` in a fixed order and context ``c``:

    ``u_j  = F_src(y_j | c, y_<j)``            (the ORIGINAL source row's earlier features)
    ``y_j' = F_tgt^-1(u_j | c, y'_<j)``        (the ALREADY CORRECTED earlier features)

This is the Knothe-Rosenblatt rearrangement (the triangular transport map; Rosenblatt, Ann.
Math. Stat. 23, 470 (1952); Villani, "Optimal transport", 2009, ch. 1) with the conditionals
estimated by boosted trees: for every context it carries the source's joint distribution onto
the target's (exactly, if the conditional quantiles were exact), one coordinate at a time, and
is monotone in each coordinate given the earlier ones. ``inverse_transform`` runs the same
chain with the two domains' roles swapped.

Conditional quantiles: for each feature and each domain, ``K`` models
``q(tau_k | c, y_<j)``, one per level ``tau_k``, are fitted by scikit-learn's
:class:`~sklearn.ensemble.HistGradientBoostingRegressor` with the pinball (quantile) loss
(quantile regression: Koenker & Bassett, Econometrica 46, 33 (1978); by gradient boosting:
Friedman, Ann. Stat. 29, 1189 (2001), section 4.6; the forest analogue is Meinshausen's
quantile regression forests, JMLR 7, 983 (2006)). The levels are equally spaced in normal
score between ``tau_1 = 0.005`` and ``tau_K = 0.995``, ``tau_k = Phi(s_k)``, so the tails get
more levels than the bulk (default ``K = 21``: 0.5 %, 1.0 %, 2.0 %, 3.6 %, ..., 50 %, ...,
99.5 %).
Each model stops early on a validation split (``validation_fraction``, ``n_iter_no_change``;
the split is seeded). Separately fitted quantile models can cross; each row's ``K``
predictions are sorted (the monotone rearrangement of Chernozhukov, Fernandez-Val &
Galichon, "Quantile and probability curves without crossing", Econometrica 78, 1093 (2010),
which can only reduce the estimation error of every quantile), plus ``1e-9`` per level so that
the knots are strictly increasing.

Between levels, ``F`` and ``F^-1`` are piecewise linear in the normal score ``s = Phi^-1(u)``
(the features are morphed in the codec's coordinates, which are close to normal, so this is
close to interpolating a smooth quantile curve). *Tail rule*: beyond the outer levels each
domain's quantile curve is continued linearly in ``s`` with its mean slope over the outer
quarter of the levels on that side (for ``K = 21``, from the 90 % to the 99.5 % quantile;
floored at 1 % of a standard deviation per unit of normal score; the slope of the outermost
interval alone is too noisy: an extreme-quantile model that barely moved from its neighbour
made a slope ratio of 100 in a first detector run), so an event beyond the source's 0.5 % or
99.5 % quantile is moved to the target's outer quantile plus its distance to the source's
outer quantile times the ratio of the two tail slopes (a local scale ratio), and normal
scores are clipped at +-8. Finally each morphed coordinate is clipped to the range the
destination domain's training rows span (in the codec's coordinate, so in the feature's own
units too): the tails are carried, not clipped at the outer quantile, but never beyond the
most extreme value the destination sample showed (a linear extrapolation in log coordinates
otherwise sent detector track chi2 to 364 where the target stops at 100, and responses below
zero; with 20k rows per side only ~1/20k of the destination's probability lies beyond its
extremes, so what the clip piles up at the edge is of that order).

Features: the morph works in the coordinates of
:class:`~ariasim.shift.features.FeatureCodec` (fitted on the pooled features, as in
:class:`~ariasim.shift.flow.FlowMorpher`): counts with few values are mapped by their pooled
probabilities, other counts dequantised, boundary spikes and interior atoms spread into bands
of their own (snapped back on decoding), heavy tails logged, bounded features logit-mapped;
the morphed coordinates are decoded at the end, so counts stay integers and atoms and spikes
are moved into and out of as whole events. Trees need no scaling, so the context and the
earlier coordinates enter the trees as they are.

Persistence without pickle: every fitted tree is stored as its node arrays (feature index,
numerical threshold, left and right child, leaf flag, value; from scikit-learn's
``_predictors``) plus each model's baseline, in ``weights.safetensors``; predictions are
*always* computed by this module's own traversal (:func:`_predict_forest`, compiled with
numba: ``x <= threshold`` goes left, leaf values summed in the trees' order onto the baseline,
as scikit-learn does), so a loaded model and the fitted one are the same code on the same
arrays and give byte-identical output.

Bagging (``n_bags = B > 1``; subagging, Buehlmann & Yu, Ann. Stat. 30, 927 (2002); Buja &
Stuetzle, Stat. Sinica 16, 323 (2006); bagging: Breiman, Machine Learning 24, 123 (1996)): the
quantile models of one domain are fitted to a finite sample, and a morph built on them carries
that sample's particulars into its output (detector application, 20k rows per side: morphed
rows are much harder to tell from the very target rows the models saw than from fresh target
rows, BENCHMARKS.md). With bags, the codec is fitted once on all rows (so every bag works in
the same coordinates) and ``B`` sets of quantile forests are fitted, each on its own random
subsample of ``bag_fraction`` of each domain's rows, drawn without replacement. New rows are
moved by

* ``bag_mode = "average"``: at each step of the chain, the knots (the ``K`` conditional
  quantiles of both domains) are the mean of the ``B`` bags' rearranged knots -- the bagged
  estimate of each conditional quantile curve; a mean of increasing knot vectors is
  increasing, so the map stays monotone in each coordinate. One chain per row.
* ``bag_mode = "assign"``: each row goes through the chain of one bag, picked by a hash of
  the row's values (:func:`ariasim.shift.chain.row_folds` with its own salt), so a row's
  result does not depend on the rows around it; the output is a mixture of the ``B`` maps.

``n_bags = 1`` (default) is the unbagged morpher on all rows, with the same seeds and outputs
as before bagging existed.

Calibration on held-out rows (``calibration_fraction = f > 0``; off by default): boosted
quantile models are calibrated *in sample* (about 10 % of the training rows lie below a fitted
10 % quantile) but not on rows they did not see: their estimation noise makes
the probability-integral transform (PIT) ``F(y | c, y_<j)`` of *fresh* rows non-uniform. On
the fastsim electrons (60k training rows per side) the PIT normal scores of the training rows
have standard deviation 1.00, those of fresh rows 1.02-1.03, and the morph is off the
target by a W1 of 1.2-1.5 times the 20k-row floor on its training rows but 3.5-4.6 times on
fresh rows (BENCHMARKS.md, "Where fastsim's e_response W1 comes from"). With a calibration
split, each domain's quantile forests are fitted on ``1 - f`` of its rows, and the PIT normal
scores ``t = Phi^-1(F(y | c, y_<j))`` of its held-out ``f`` under them are collected per
feature;
their empirical distribution ``G`` gives the recalibration map ``t -> Phi^-1(G(t))``
(recalibrated regression: Kuleshov, Fenner & Ermon, "Accurate uncertainties for deep learning
using calibrated regression", ICML 2018, there by isotonic regression; here piecewise linear
through the held-out scores' quantiles at ``K_cal = 41`` levels from 0.5 % to 99.5 %, equally
spaced in normal score, slope one beyond, so strictly increasing and invertible). Both domains'
CDFs are then the calibrated ones: a row's level is ``u = G_from(t_from)`` (uniform on fresh
rows of the domain moved from) and it is moved to the destination's nominal score
``G_to^-1(u)``, so the morphed rows' nominal destination scores are distributed as those of
fresh destination rows (marginally over the context and the earlier features; a noise that
shifts the curves differently in different contexts is not undone). The held-out rows are a
seeded random subset of each domain; the codec and the clip range still use all rows. Not
combined with bagging (refused).

Calibration per context cell (``calibration_cells``; off by default): the marginal map above
makes fresh rows' scores uniform over all contexts together, but the quantile models' noise
is not the same everywhere (fastsim electrons: after the marginal map the fresh rows'
e_response scores still have sd 1.05-1.07 in the low-pT forward cell and 0.95 in the high-pT
central one, BENCHMARKS.md "Calibration per context cell"). With cells, the held-out rows are
binned by chosen context columns (a number of equal-count bins of the pooled training rows,
or given interior edges; the cells are the product of the columns' bins) and one map is
fitted per domain, feature and cell from that cell's held-out rows alone, so a row is
recalibrated by the map of its own context cell (local, "distribution" recalibration in the
spirit of Song, Diethe, Kull & Flach, "Distribution calibration for regression", ICML 2019,
who condition the recalibration on the predicted distribution; here, more simply, on a
partition of the context, i.e. the group-wise recalibration their method generalises). The
forests and the held-out split are those of ``calibration_fraction`` alone; every cell must
hold at least 100 held-out rows of each domain (else a one-line error). Fewer rows per map
make each map noisier (the 0.5 % and 99.5 % knots of a cell of 400 rows rest on two rows).

Outer levels (``tail_level``; default 0.005): the levels run from ``tail_level`` to
``1 - tail_level``; a smaller value (e.g. 0.001 with more levels) lets the quantile models
themselves reach further into the tails, at the price of extreme-quantile models that rest on
few rows (about ``tail_level`` times the rows beyond them).

Empirical tails (``tail_rule = "empirical"``; default ``"linear"``, the rule above): beyond
the outer levels, each domain's tail is continued by the excesses its own training rows show
there, instead of a straight line in normal score. For every domain, feature and side, the
rows beyond their own outer conditional quantile give excesses ``e = (y - q_K) / slope`` in
units of the row's tail slope (the linear rule's slope, so a row's context and earlier
features still set the tail's scale); the pooled excesses' quantiles at the tail fractions
:data:`_TAIL_FRACTIONS` (25 % ... 93.75 % of the tail's rows) become knots ``(e_m, d_m)``, with
``d_m`` the normal-score offset beyond the outer level's score that the fraction gives
(``d = Phi^-1(1 - t (1 - g)) - Phi^-1(1 - t)`` for tail probability ``t``), piecewise
linear between knots and continued beyond the last one with the tail's mean slope
``d_M / e_M``. The linear rule is the special case ``d = e``. This is the peaks-over-threshold
view of a tail (the excesses over a high threshold; Pickands, Ann. Stat. 3, 119 (1975);
Davison & Smith, JRSS B 52, 393 (1990), who let the threshold and scale depend on covariates),
here with the empirical excess distribution pooled over contexts in place of a generalised
Pareto fit, and the conditional quantile ``q_K`` as the covariate-dependent threshold. A
domain's map is then fitted on its in-sample excesses (the rows the forests saw); a side with
fewer than :data:`_TAIL_MIN_ROWS` rows beyond its outer level keeps the linear rule (knots
``d = e``; e.g. a feature whose lowest values are a spike the outer quantile sits on: the
photon surrogate's ``t_median_ns`` had no row below it in one fold). Not combined with
bagging (refused).

Location-scale standardisation (``location_scale = True``; off by default): a location-scale
model of each conditional distribution (distributional regression; Koenker, "Quantile
Regression", Cambridge University Press 2005, section 2.6 on location-scale models; He,
"Quantile curves without crossing", The American Statistician 51, 186 (1997), who fits the
median and a scale function first and the other quantiles of the standardised residuals
after). Per feature and domain, three pinball models (the same settings as the level models)
give the conditional median ``m(c, y_<j)`` and the scale ``s(c, y_<j) = (q84 - q16) / 2``
(the 15.9 % and 84.1 % quantiles, so ``s`` is the sd of a normal; floored at
:data:`_LS_SCALE_FLOOR` = 1 % of the feature's pooled sd in codec units, both domains, all
rows, so that crossing or collapsed central models cannot divide by zero); the ``K`` level
models are then fitted to the standardised residuals ``r = (y - m) / s`` with the same inputs,
with their own leaf size ``shape_min_samples_leaf`` (default: ``min_samples_leaf``), and the
knots are ``m + s * (rearranged r-quantiles)`` (strictly increasing, as ``s > 0``). The
strong context dependence is meant to sit in ``m`` and ``s``, estimated from central
quantiles (many rows on either side, low variance), and the shape's in the tails to be
weaker. The residuals the shape models are fitted on are *out of fold*: each domain's fit
rows are split into two seeded halves and each half's ``r`` comes from location and scale
models fitted on the other half (in-sample ``m`` and ``s`` are fitted to the very rows they
standardise, so in-sample residuals are narrower than those of fresh rows, and shape models
fitted on them would make every fresh row's CDF too narrow); the ``m`` and ``s`` used to
build the knots (for calibration, tails and the morph) are fitted on all fit rows.
Calibration, the tail rule, the clip and the codec act on the resulting knots as before. Not
combined with bagging (refused). Off by default, and not adopted anywhere: on the fastsim
electrons it made the e_response W1 worse (validation folds: mean largest W1/floor 3.3-3.4
against 2.34). There the target's core width shrinks ~5x from low to high pT while its long
low tail does not, so the standardised residuals' tail depends strongly on the context (its
1 % quantile moves from about -6 to -9 core widths) and the premise, a weak and poolable
shape, fails (BENCHMARKS.md, "Location-scale standardised quantiles for the quantile morph").

Reproducibility: the codec's dequantisation noise, the early-stopping splits and the boosting
are seeded from :func:`ariasim.utils.spawn_seeds`; scikit-learn's histogram boosting is
deterministic given ``random_state`` (its OpenMP loops run over features or rows without
order-dependent reductions), checked in the tests with 1 and 2 threads. ``transform`` draws
the dequantisation noise in fixed chunks of :data:`CHUNK` rows seeded by the chunk's index.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator

from ariasim.errors import ConfigError, InputError, check_int
from ariasim.shift.base import MorpherMixin, split_domains
from ariasim.shift.chain import row_folds
from ariasim.shift.diagnostics import weighted_quantiles
from ariasim.shift.features import CHUNK, FeatureCodec, seeded_chunks
from ariasim.shift.persist import read_tensors, save_folder
from ariasim.utils import spawn_seeds

__all__ = ["CHUNK", "ChainedQuantileMorpher", "QuantileForest", "quantile_levels"]

_TAU_LO, _TAU_HI = 0.005, 0.995
_MIN_SLOPE = 0.01  # floor of a tail's slope (codec units per unit of normal score)
_MAX_SCORE = 8.0  # normal scores are clipped here (Phi(-8) ~ 6e-16): a bounded transport
_KNOT_EPS = 1e-9  # strictly increasing knots after the rearrangement
_DOMAINS = ("src", "tgt")
_BAG_MODES = ("average", "assign")
_BAG_SALT = 0x5BA6  # row_folds salt of the bag assignment (independent of the chain's folds)
# indices into spawn_seeds(random_state, _N_STREAMS)
_S_CODEC, _S_TRAIN, _S_MODELS, _S_FORWARD, _S_INVERSE, _N_STREAMS = 0, 1, 2, 3, 4, 5
_CAL_LEVELS = 41  # levels of the held-out calibration map (0.5 % .. 99.5 %, normal-score grid)
_CAL_MIN_CELL = 100  # fewest held-out rows per domain in a calibration cell
_TAIL_RULES = ("linear", "empirical")
# tail_rule="empirical": fractions of a tail's rows below its knots, and the fewest rows a
# tail needs (module docstring, "Empirical tails")
_TAIL_FRACTIONS = (0.25, 0.5, 0.75, 0.875, 0.9375)
_TAIL_MIN_ROWS = 20
# location_scale=True (module docstring, "Location-scale standardisation"): the levels of the
# location and scale models (16 %, 50 %, 84 %), the scale's floor as a fraction of the
# feature's pooled sd (codec units), and the child of the models' stream its seeds come from
_LS_LEVELS = (float(special.ndtr(-1.0)), 0.5, float(special.ndtr(1.0)))
_LS_SCALE_FLOOR = 0.01
# ls seed = spawn_seeds(seeds[_S_MODELS], 4)[3]. Like bagging's child 1 and calibration's
# child 2, this child index is shared with the level forests' seeds (spawn_seeds(
# seeds[_S_MODELS], 2 d)[3] seeds the 4th (domain, feature) forest); the two uses draw through
# different generators (a PCG64 permutation here, scikit-learn's RandomState there), so they
# do not interact in practice
_LS_STREAM = 3


def quantile_levels(k: int, tail_level: float = _TAU_LO) -> np.ndarray:
    """``k`` quantile levels equally spaced in normal score from ``tail_level`` (default
    0.5 %) to ``1 - tail_level`` (99.5 %).

    Example:
        >>> np.round(quantile_levels(5), 4).tolist()
        [0.005, 0.0989, 0.5, 0.9011, 0.995]
        >>> np.round(quantile_levels(3, 0.001), 4).tolist()
        [0.001, 0.5, 0.999]
    """
    lo, hi = (_TAU_LO, _TAU_HI) if tail_level == _TAU_LO else (tail_level, 1.0 - tail_level)
    s = np.linspace(special.ndtri(lo), special.ndtri(hi), int(k))
    return np.asarray(special.ndtr(s), dtype=np.float64)


@nb.njit(cache=True)
def _predict_forest(
    x: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf: np.ndarray,
    value: np.ndarray,
    tree_start: np.ndarray,
    model_start: np.ndarray,
    baseline: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """Predictions ``(n, n_models)`` of boosted tree ensembles stored as flat node arrays.

    Model ``m`` owns trees ``model_start[m] .. model_start[m + 1] - 1``; tree ``t`` owns
    nodes ``tree_start[t] ..`` (children indices are local to the tree). A row goes left
    where ``x[feature] <= threshold``; the leaf values are added in tree order onto the
    model's baseline (scikit-learn's order, hence its exact sums).
    """
    n = x.shape[0]
    n_models = baseline.shape[0]
    out = np.empty((n, n_models))
    for i in range(n):
        for m in range(n_models):
            acc = baseline[m]
            for t in range(model_start[m], model_start[m + 1]):
                base = tree_start[t]
                node = 0
                while leaf[base + node] == 0:
                    k = base + node
                    if x[i, feature[k]] <= threshold[k]:
                        node = left[k]
                    else:
                        node = right[k]
                acc += value[base + node]
            out[i, m] = acc
    return out


class QuantileForest:
    """The ``K`` boosted quantile models of one feature in one domain, as flat node arrays.

    ``predict(x)`` gives the sorted (rearranged) quantiles ``(n, K)`` at the inputs ``x``
    ``(n, n_inputs)``; with no inputs (first feature, no context) each model is its
    baseline alone (the unconditional quantile).

    Example:
        >>> f = QuantileForest.constant(np.array([0.0, 1.0]), n_inputs=0)
        >>> f.raw(np.zeros((2, 0))).tolist()
        [[0.0, 1.0], [0.0, 1.0]]
    """

    FIELDS = ("feature", "threshold", "left", "right", "leaf", "value")

    def __init__(self, arrays: Mapping[str, np.ndarray], n_inputs: int):
        self.feature = np.ascontiguousarray(arrays["feature"], dtype=np.int64)
        self.threshold = np.ascontiguousarray(arrays["threshold"], dtype=np.float64)
        self.left = np.ascontiguousarray(arrays["left"], dtype=np.int64)
        self.right = np.ascontiguousarray(arrays["right"], dtype=np.int64)
        self.leaf = np.ascontiguousarray(arrays["leaf"], dtype=np.uint8)
        self.value = np.ascontiguousarray(arrays["value"], dtype=np.float64)
        self.tree_start = np.ascontiguousarray(arrays["tree_start"], dtype=np.int64)
        self.model_start = np.ascontiguousarray(arrays["model_start"], dtype=np.int64)
        self.baseline = np.ascontiguousarray(arrays["baseline"], dtype=np.float64)
        self.n_inputs = int(n_inputs)
        self._check()

    def _check(self) -> None:
        n_nodes = self.feature.size
        sizes = {self.threshold.size, self.left.size, self.right.size, self.leaf.size}
        if sizes | {self.value.size} != {n_nodes}:
            raise InputError("the node arrays of a quantile forest differ in length")
        n_models = self.baseline.size
        if self.model_start.size != n_models + 1 or self.model_start[0] != 0:
            raise InputError("a quantile forest's model_start does not match its baseline")
        n_trees = int(self.model_start[-1])
        if self.tree_start.size != n_trees + 1 or self.tree_start[-1] != n_nodes:
            raise InputError("a quantile forest's tree_start does not match its nodes")
        if np.any(np.diff(self.model_start) < 0) or np.any(np.diff(self.tree_start) <= 0):
            raise InputError("a quantile forest's offsets are not increasing")
        # children must stay inside their tree, features inside the inputs
        size = np.repeat(np.diff(self.tree_start), np.diff(self.tree_start))
        inner = self.leaf == 0
        for child in (self.left, self.right):
            if np.any(inner & ((child <= 0) | (child >= size))):
                raise InputError("a quantile forest has a child index outside its tree")
        if np.any(inner & ((self.feature < 0) | (self.feature >= max(self.n_inputs, 1)))):
            raise InputError("a quantile forest splits on an input it does not have")
        if not (np.all(np.isfinite(self.value)) and np.all(np.isfinite(self.baseline))):
            raise InputError("a quantile forest has non-finite values")

    @classmethod
    def constant(cls, baseline: np.ndarray, n_inputs: int) -> QuantileForest:
        """Models that are their baseline alone (no trees)."""
        b = np.asarray(baseline, dtype=np.float64)
        empty_i = np.zeros(0, np.int64)
        return cls(
            {
                "feature": empty_i,
                "threshold": np.zeros(0),
                "left": empty_i,
                "right": empty_i,
                "leaf": np.zeros(0, np.uint8),
                "value": np.zeros(0),
                "tree_start": np.zeros(1, np.int64),
                "model_start": np.zeros(b.size + 1, np.int64),
                "baseline": b,
            },
            n_inputs,
        )

    @classmethod
    def from_sklearn(cls, models: Sequence[Any], n_inputs: int) -> QuantileForest:
        """Flatten fitted ``HistGradientBoostingRegressor`` s (one output, numerical
        features) into node arrays."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in cls.FIELDS}
        tree_sizes: list[int] = []
        model_trees: list[int] = []
        baseline = []
        for m in models:
            baseline.append(float(np.asarray(m._baseline_prediction).reshape(-1)[0]))
            model_trees.append(len(m._predictors))
            for (pred,) in m._predictors:
                nodes = pred.nodes
                if np.any(nodes["is_categorical"]):
                    raise ConfigError("categorical splits are not supported")
                parts["feature"].append(nodes["feature_idx"].astype(np.int64))
                parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
                parts["left"].append(nodes["left"].astype(np.int64))
                parts["right"].append(nodes["right"].astype(np.int64))
                parts["leaf"].append(nodes["is_leaf"].astype(np.uint8))
                parts["value"].append(nodes["value"].astype(np.float64))
                tree_sizes.append(len(nodes))
        arrays = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
        arrays["tree_start"] = np.concatenate([[0], np.cumsum(tree_sizes)]).astype(np.int64)
        arrays["model_start"] = np.concatenate([[0], np.cumsum(model_trees)]).astype(np.int64)
        arrays["baseline"] = np.asarray(baseline, dtype=np.float64)
        return cls(arrays, n_inputs)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Each model's prediction ``(n, K)``, unsorted (scikit-learn's ``predict``)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape[1] != self.n_inputs:
            raise ConfigError(f"expects {self.n_inputs} inputs, got {x.shape[1]}")
        if self.n_inputs == 0:
            return np.broadcast_to(self.baseline, (x.shape[0], self.baseline.size)).copy()
        out: np.ndarray = _predict_forest(
            x,
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.leaf,
            self.value,
            self.tree_start,
            self.model_start,
            self.baseline,
        )
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Rearranged (sorted, strictly increasing) quantiles ``(n, K)``."""
        q = np.sort(self.raw(x), axis=1)
        return q + _KNOT_EPS * np.arange(q.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            **{k: getattr(self, k) for k in self.FIELDS},
            "tree_start": self.tree_start,
            "model_start": self.model_start,
            "baseline": self.baseline,
        }

    @property
    def n_trees(self) -> int:
        return int(self.model_start[-1])


def _tail_slopes(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's slope of ``q`` against ``s`` over its outer quarter of levels, per side."""
    m = max(1, (s.size - 1) // 4)
    lo = np.maximum((q[:, m] - q[:, 0]) / (s[m] - s[0]), _MIN_SLOPE)
    hi = np.maximum((q[:, -1] - q[:, -1 - m]) / (s[-1] - s[-1 - m]), _MIN_SLOPE)
    return lo, hi


def _cdf_score(
    y: np.ndarray, q: np.ndarray, s: np.ndarray, tails: np.ndarray | None = None
) -> np.ndarray:
    """Normal score ``Phi^-1(F(y))`` of each row's value ``y`` under its knots ``q`` (n, K)
    at the scores ``s`` (K,): piecewise linear, linear tails (module docstring); with
    ``tails`` (the ``(2, 2, M + 1)`` knots of :func:`tail_knots`, lower then upper side) the
    empirical tails instead."""
    k = q.shape[1]
    j = np.clip((y[:, None] >= q).sum(axis=1), 1, k - 1)  # segment [j-1, j]
    rows = np.arange(y.size)
    q0, q1 = q[rows, j - 1], q[rows, j]
    out = s[j - 1] + (y - q0) / (q1 - q0) * (s[j] - s[j - 1])
    lo, hi = _tail_slopes(q, s)
    if tails is None:
        out = np.where(y < q[:, 0], s[0] + (y - q[:, 0]) / lo, out)
        out = np.where(y > q[:, -1], s[-1] + (y - q[:, -1]) / hi, out)
    else:
        below, above = y < q[:, 0], y > q[:, -1]
        out[below] = s[0] - _tail_offset((q[below, 0] - y[below]) / lo[below], tails[0])
        out[above] = s[-1] + _tail_offset((y[above] - q[above, -1]) / hi[above], tails[1])
    return np.clip(out, -_MAX_SCORE, _MAX_SCORE)


def _quantile_at(
    score: np.ndarray, q: np.ndarray, s: np.ndarray, tails: np.ndarray | None = None
) -> np.ndarray:
    """Inverse of :func:`_cdf_score`: the value at normal score ``score`` under knots ``q``
    (and ``tails``)."""
    k = q.shape[1]
    j = np.clip(np.searchsorted(s, score, side="right"), 1, k - 1)
    rows = np.arange(score.size)
    q0, q1 = q[rows, j - 1], q[rows, j]
    out = q0 + (score - s[j - 1]) / (s[j] - s[j - 1]) * (q1 - q0)
    lo, hi = _tail_slopes(q, s)
    if tails is None:
        out = np.where(score < s[0], q[:, 0] + (score - s[0]) * lo, out)
        return np.where(score > s[-1], q[:, -1] + (score - s[-1]) * hi, out)
    below, above = score < s[0], score > s[-1]
    out[below] = q[below, 0] - lo[below] * _tail_excess(s[0] - score[below], tails[0])
    out[above] = q[above, -1] + hi[above] * _tail_excess(score[above] - s[-1], tails[1])
    return out


def tail_knots(
    excess: np.ndarray, tail_level: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Knots ``(2, M + 1)`` of one empirical tail (module docstring, "Empirical tails"):
    row 0 the excesses beyond the outer level, in units of each row's tail slope, at 0 and
    at the (weighted) quantiles :data:`_TAIL_FRACTIONS` of ``excess``, made strictly
    increasing; row 1 the normal-score offsets beyond the outer level's score that those
    fractions of the tail's probability ``tail_level`` give.

    Example:
        >>> e = np.random.default_rng(0).exponential(1.0, 10_000)
        >>> k = tail_knots(e, 0.005)
        >>> np.round(k[0, 1:3], 1).tolist(), np.round(k[1, 1:3], 3).tolist()
        ([0.3, 0.7], [0.098, 0.231])
    """
    g = np.asarray(_TAIL_FRACTIONS)
    x = np.asarray(excess, dtype=np.float64)
    if weights is None:
        e = np.quantile(x, g)
    else:
        e = weighted_quantiles(x, np.asarray(weights, dtype=np.float64), g.tolist())[:, 0]
    e = np.maximum.accumulate(np.maximum(np.concatenate([[0.0], e]), 0.0))
    e = e + _KNOT_EPS * np.arange(e.size)
    t = float(tail_level)
    d = special.ndtri(1.0 - t * (1.0 - g)) - special.ndtri(1.0 - t)
    return np.vstack([e, np.concatenate([[0.0], d])])


def _tail_offset(e: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Score offsets of excesses ``e`` (slope units) through one tail's knots; beyond the
    last knot, the tail's mean slope (last offset over last excess)."""
    x, d = knots
    out = np.interp(e, x, d)
    return np.where(e > x[-1], d[-1] + (e - x[-1]) * (d[-1] / x[-1]), out)


def _tail_excess(d: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_tail_offset`."""
    x, y = knots
    out = np.interp(d, y, x)
    return np.where(d > y[-1], x[-1] + (d - y[-1]) * (x[-1] / y[-1]), out)


def calibration_map(scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Knots ``(2, K_cal)`` of the recalibration map ``t -> Phi^-1(G(t))`` of held-out normal
    scores ``scores`` (module docstring, "Calibration"): row 0 the scores' (weighted)
    quantiles at :data:`_CAL_LEVELS` levels from 0.5 % to 99.5 %, made strictly increasing;
    row 1 the normal scores of those levels.

    Example:
        >>> t = np.random.default_rng(0).normal(0.0, 2.0, 100_000)  # over-dispersed scores
        >>> knots = calibration_map(t)
        >>> bool(np.allclose(_calibrate(np.array([2.0]), knots), 1.0, atol=0.03))
        True
    """
    levels = quantile_levels(_CAL_LEVELS)
    t = np.asarray(scores, dtype=np.float64)
    if weights is None:
        x = np.quantile(t, levels)
    else:
        x = weighted_quantiles(t, np.asarray(weights, dtype=np.float64), levels.tolist())[:, 0]
    x = np.maximum.accumulate(x) + _KNOT_EPS * np.arange(levels.size)
    return np.vstack([x, special.ndtri(levels)])


def _calibrate(t: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Nominal normal scores ``t`` to calibrated ones through ``knots`` (slope one beyond)."""
    x, y = knots
    out = np.interp(t, x, y)
    out = np.where(t < x[0], y[0] + (t - x[0]), out)
    return np.clip(np.where(t > x[-1], y[-1] + (t - x[-1]), out), -_MAX_SCORE, _MAX_SCORE)


def _uncalibrate(v: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_calibrate`: calibrated scores ``v`` to nominal ones."""
    x, y = knots
    out = np.interp(v, y, x)
    out = np.where(v < y[0], x[0] + (v - y[0]), out)
    return np.clip(np.where(v > y[-1], x[-1] + (v - y[-1]), out), -_MAX_SCORE, _MAX_SCORE)


def _check_cells(cells: Any) -> None:
    """Refuse a bad ``calibration_cells`` with a one-line error naming it."""
    if cells is None:
        return
    if not isinstance(cells, Mapping) or not cells:
        raise ConfigError(
            f"must be a non-empty mapping of context column to bins, got {cells!r}",
            parameter="calibration_cells",
        )
    for col, spec in cells.items():
        if not isinstance(col, str):
            raise ConfigError(
                f"column names must be strings, got {col!r}", parameter="calibration_cells"
            )
        if isinstance(spec, bool):
            ok = False
        elif isinstance(spec, int | np.integer):
            ok = int(spec) >= 2
        elif isinstance(spec, Sequence) and not isinstance(spec, str):
            e = np.asarray(spec, dtype=object)
            ok = (
                e.ndim == 1
                and e.size >= 1
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in e)
                and bool(np.all(np.isfinite(e.astype(np.float64))))
                and bool(np.all(np.diff(e.astype(np.float64)) > 0))
            )
        else:
            ok = False
        if not ok:
            raise ConfigError(
                f"{col!r}: give a number of equal-count bins (>= 2) or strictly increasing "
                f"finite interior edges, got {spec!r}",
                parameter="calibration_cells",
            )


class ChainedQuantileMorpher(MorpherMixin, BaseEstimator):
    """Chained conditional quantile regression (CMS) with boosted trees morphs source events.

    See the module docstring for the method (CMS, JHEP 07 (2021) 027, arXiv:2103.06956;
    Knothe-Rosenblatt with boosted-tree conditional quantiles), the quantile levels, the
    rearrangement, the tail rule and how counts, spikes, tails and bounds are handled.

    Arguments:
        features: Feature columns to morph, in the chain's order (``None``: every column that
            is not context, in the table's order). Put the feature whose shift the others
            depend on first.
        context: Context columns: every quantile model is conditional on them; never changed.
        transforms: Per-feature coordinate rule overrides for
            :class:`~ariasim.shift.features.FeatureCodec` (``"none"``, ``"log"``, ``"logit"``).
        bounds: ``{"col": (lo, hi)}`` for bounded features.
        atom_tolerance: Interior atoms of the codec (as in FlowMorpher; ``None``: off).
        count_levels: Probability-mapped counts of the codec (as in FlowMorpher; 0: off).
        n_quantiles: Number ``K`` of quantile levels (>= 3), equally spaced in normal score
            from ``tail_level`` (0.5 %) to ``1 - tail_level`` (99.5 %)
            (:func:`quantile_levels`). Fit and transform cost grow
            linearly with ``K``.
        max_iter: Most boosting iterations per quantile model.
        learning_rate: Boosting shrinkage.
        max_leaf_nodes: Leaves per tree.
        min_samples_leaf: Fewest rows in a leaf (a tail quantile needs rows beyond it).
        l2_regularization: L2 penalty on leaf values.
        validation_fraction: Fraction of each domain's rows held out for early stopping (0:
            no early stopping, ``max_iter`` iterations).
        n_iter_no_change: Stop after this many iterations without a better validation loss.
        n_bags: Number ``B`` of bags of quantile models (module docstring, "Bagging"); 1: no
            bagging, every model on all rows.
        bag_mode: How bags move a row: ``"average"`` (mean of the bags' knots at every step)
            or ``"assign"`` (each row through one bag's chain, picked by a hash of the row).
        bag_fraction: Fraction of each domain's rows in each bag's subsample (without
            replacement), in (0, 1]; used only with ``n_bags > 1``.
        calibration_fraction: Fraction ``f`` of each domain's rows held out of the quantile
            models to recalibrate their CDFs on rows they did not see (module docstring,
            "Calibration"), in [0, 0.5); 0 (default): no calibration, every row fitted.
        tail_level: The outer levels ``tau_1 = tail_level``, ``tau_K = 1 - tail_level``
            (module docstring, "Outer levels"), in [0.0001, 0.05]; default 0.005.
        tail_rule: ``"linear"`` (default: each tail continued linearly in normal score,
            module docstring) or ``"empirical"`` (the excesses of each domain's own rows
            beyond its outer conditional quantiles; module docstring, "Empirical tails").
        calibration_cells: ``{"context column": bins}``, one calibration map per cell of
            these context columns (module docstring, "Calibration per context cell");
            ``bins`` is a number (>= 2) of equal-count bins of the pooled training rows or a
            list of strictly increasing interior edges (a value on an edge goes to the upper
            bin). Needs ``calibration_fraction > 0``. ``None`` (default): one map per domain
            and feature.
        location_scale: Fit each conditional distribution as a location (median) and scale
            (half the 16-84 % range) first and the ``K`` level models on the standardised
            residuals (module docstring, "Location-scale standardisation"); default off.
        shape_min_samples_leaf: Fewest rows in a leaf of the level models on the
            standardised residuals (``None``: ``min_samples_leaf``); only with
            ``location_scale``.
        random_state: Seed of every random number (codec noise, splits, boosting).

    After ``fit``: ``codec_``, ``levels_`` (the ``K`` levels), ``z_range_`` (each domain's
    (min, max) per coordinate over all training rows, the clip of the morph), ``bags_`` (one
    ``{"src": [...], "tgt": [...]}`` per bag, one :class:`QuantileForest` per feature),
    ``forests_`` (the first bag's), ``n_iter_`` (boosting iterations per domain, feature
    and level, of the first bag; ``bag_n_iter_``: of every bag), ``calibration_``
    (``{"src": [...], "tgt": [...]}``, one ``(2, K_cal)`` knot array per feature, from
    :func:`calibration_map`; ``None`` without calibration; with ``calibration_cells`` one
    ``(n_cells, 2, K_cal)`` array per feature), ``calibration_edges_`` (``{column: interior
    edges}`` of the cells; ``None`` without), ``tails_`` (with ``tail_rule="empirical"``:
    ``{"src": [...], "tgt": [...]}``, one ``(2, 2, M + 1)`` array per feature, lower and upper
    tail knots from :func:`tail_knots`; else ``None``), ``ls_forests_`` (with
    ``location_scale``: ``{"src": [...], "tgt": [...]}``, one 3-model
    :class:`QuantileForest` per feature, the 16 %, 50 %, 84 % quantiles; ``forests_`` then
    hold the standardised residuals' quantiles; else ``None``), ``ls_floor_`` (the scale
    floor per feature, or ``None``), ``fit_seconds_``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from ariasim.shift import stack
        >>> rng = np.random.default_rng(0)
        >>> c = rng.uniform(0, 1, 1000)
        >>> src = pd.DataFrame({"x": rng.normal(0.0, 1.0, 1000), "c": c})
        >>> tgt = pd.DataFrame({"x": rng.normal(1.0, 1.0, 1000) * (1 + c), "c": c})
        >>> X, y, _ = stack(src, tgt)
        >>> m = ChainedQuantileMorpher(context=["c"], n_quantiles=9).fit(X, y)
        >>> moved = m.transform(src)
        >>> bool(abs(moved["x"].mean() - tgt["x"].mean()) < 0.15)
        True
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        context: Sequence[str] | None = None,
        *,
        transforms: Mapping[str, str] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        atom_tolerance: float | None = 0.005,
        count_levels: int = 32,
        n_quantiles: int = 21,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 50,
        l2_regularization: float = 0.0,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        n_bags: int = 1,
        bag_mode: str = "average",
        bag_fraction: float = 0.5,
        calibration_fraction: float = 0.0,
        calibration_cells: Mapping[str, int | Sequence[float]] | None = None,
        tail_level: float = 0.005,
        tail_rule: str = "linear",
        location_scale: bool = False,
        shape_min_samples_leaf: int | None = None,
        random_state: int = 0,
    ):
        self.features = features
        self.context = context
        self.transforms = transforms
        self.bounds = bounds
        self.atom_tolerance = atom_tolerance
        self.count_levels = count_levels
        self.n_quantiles = n_quantiles
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_bags = n_bags
        self.bag_mode = bag_mode
        self.bag_fraction = bag_fraction
        self.calibration_fraction = calibration_fraction
        self.calibration_cells = calibration_cells
        self.tail_level = tail_level
        self.tail_rule = tail_rule
        self.location_scale = location_scale
        self.shape_min_samples_leaf = shape_min_samples_leaf
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("n_quantiles", self.n_quantiles, 3)
        check_int("max_iter", self.max_iter, 1)
        check_int("max_leaf_nodes", self.max_leaf_nodes, 2)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        check_int("n_bags", self.n_bags, 1)
        if self.bag_mode not in _BAG_MODES:
            raise ConfigError(
                f"must be one of {', '.join(_BAG_MODES)}, got {self.bag_mode!r}",
                parameter="bag_mode",
            )
        bf = self.bag_fraction
        if isinstance(bf, bool) or not isinstance(bf, int | float) or not 0 < bf <= 1:
            raise ConfigError(f"must be in (0, 1], got {bf!r}", parameter="bag_fraction")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr <= 1:
            raise ConfigError(f"must be in (0, 1], got {lr!r}", parameter="learning_rate")
        l2 = self.l2_regularization
        if isinstance(l2, bool) or not isinstance(l2, int | float) or not 0 <= l2 < np.inf:
            raise ConfigError(f"must be finite and >= 0, got {l2!r}", parameter="l2_regularization")
        vf = self.validation_fraction
        if isinstance(vf, bool) or not isinstance(vf, int | float) or not 0 <= vf < 0.5:
            raise ConfigError(f"must be in [0, 0.5), got {vf!r}", parameter="validation_fraction")
        cf = self.calibration_fraction
        if isinstance(cf, bool) or not isinstance(cf, int | float) or not 0 <= cf < 0.5:
            raise ConfigError(f"must be in [0, 0.5), got {cf!r}", parameter="calibration_fraction")
        if cf > 0 and int(self.n_bags) > 1:
            raise ConfigError(
                "calibration is not combined with bagging (n_bags > 1); use one of them",
                parameter="calibration_fraction",
            )
        _check_cells(self.calibration_cells)
        tl = self.tail_level
        if isinstance(tl, bool) or not isinstance(tl, int | float) or not 1e-4 <= tl <= 0.05:
            raise ConfigError(f"must be in [0.0001, 0.05], got {tl!r}", parameter="tail_level")
        if self.tail_rule not in _TAIL_RULES:
            raise ConfigError(
                f"must be one of {', '.join(_TAIL_RULES)}, got {self.tail_rule!r}",
                parameter="tail_rule",
            )
        if self.tail_rule != "linear" and int(self.n_bags) > 1:
            raise ConfigError(
                "empirical tails are not combined with bagging (n_bags > 1)",
                parameter="tail_rule",
            )
        if not isinstance(self.location_scale, bool | np.bool_):
            raise ConfigError(
                f"must be true or false, got {self.location_scale!r}", parameter="location_scale"
            )
        if self.location_scale and int(self.n_bags) > 1:
            raise ConfigError(
                "location-scale standardisation is not combined with bagging (n_bags > 1)",
                parameter="location_scale",
            )
        if self.shape_min_samples_leaf is not None:
            check_int("shape_min_samples_leaf", self.shape_min_samples_leaf, 1)
            if not self.location_scale:
                raise ConfigError(
                    "applies only with location_scale=true (the shape models' leaf size)",
                    parameter="shape_min_samples_leaf",
                )
        if self.calibration_cells is not None and not cf > 0:
            raise ConfigError(
                "needs calibration_fraction > 0 (the held-out rows it is fitted on)",
                parameter="calibration_cells",
            )
        spawn_seeds(self.random_state, 1)  # raises on a bad seed

    # --- training ----------------------------------------------------------------------
    def _fit_forest(
        self,
        inputs: np.ndarray,
        target: np.ndarray,
        w: np.ndarray | None,
        seed: int,
        levels: np.ndarray | None = None,
        min_samples_leaf: int | None = None,
    ) -> tuple[QuantileForest, list[int]]:
        """One model per level (default: ``levels_``) of ``target`` given ``inputs``, with
        ``min_samples_leaf`` (default: the option's) rows per leaf."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        levels = self.levels_ if levels is None else levels
        leaf = int(self.min_samples_leaf if min_samples_leaf is None else min_samples_leaf)
        if inputs.shape[1] == 0:  # the unconditional quantiles
            if w is None:
                base = np.quantile(target, levels)
            else:
                order = np.argsort(target, kind="stable")
                cw = np.cumsum(w[order])
                pos = np.searchsorted(cw, levels * cw[-1], side="left")
                base = target[order][np.minimum(pos, target.size - 1)]
            return QuantileForest.constant(base, 0), [0] * levels.size
        vf = float(self.validation_fraction)
        models, iters = [], []
        for k, tau in enumerate(levels):
            hgb = HistGradientBoostingRegressor(
                loss="quantile",
                quantile=float(tau),
                learning_rate=float(self.learning_rate),
                max_iter=int(self.max_iter),
                max_leaf_nodes=int(self.max_leaf_nodes),
                min_samples_leaf=leaf,
                l2_regularization=float(self.l2_regularization),
                early_stopping=vf > 0,
                validation_fraction=vf if vf > 0 else None,
                n_iter_no_change=int(self.n_iter_no_change),
                random_state=int(spawn_seeds(seed, levels.size)[k] % 2**32),
            )
            hgb.fit(inputs, target, sample_weight=w)
            models.append(hgb)
            iters.append(int(hgb.n_iter_))
        return QuantileForest.from_sklearn(models, inputs.shape[1]), iters

    def fit(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> ChainedQuantileMorpher:
        """Fit the codec on the pooled features, then each domain's conditional quantiles
        of each feature given the context and the earlier features."""
        self._check_params()
        d = split_domains(X, y, sample_weight, self.features, self.context)
        seeds = spawn_seeds(self.random_state, _N_STREAMS)
        t0 = time.process_time()
        codec = FeatureCodec.fit(
            d.x,
            d.features,
            transforms=self.transforms,
            bounds=self.bounds,
            seed=seeds[_S_CODEC],
            atom_tolerance=self.atom_tolerance,
            count_levels=self.count_levels,
        )
        self.levels_ = quantile_levels(int(self.n_quantiles), float(self.tail_level))
        z = codec.encode(d.x, np.random.default_rng(seeds[_S_TRAIN]))
        self.z_range_ = {
            name: np.vstack([z[d.y == k].min(axis=0), z[d.y == k].max(axis=0)])
            for k, name in enumerate(_DOMAINS)
        }
        n_bags = int(self.n_bags)
        bags, bag_iters = [], []
        self.calibration_ = None
        self.tails_ = None
        self.ls_forests_: dict[str, list[QuantileForest]] | None = None
        self.ls_floor_: np.ndarray | None = None
        self.context_ = d.context  # the cells' columns are found by name in the context
        self.calibration_edges_ = self._cell_edges(d)
        if n_bags == 1:
            keep = np.ones(d.y.size, dtype=bool)
            if float(self.calibration_fraction) > 0:  # a split from a stream used nowhere else
                rng = np.random.default_rng(spawn_seeds(seeds[_S_MODELS], 3)[2])
                for k in (0, 1):
                    idx = np.nonzero(d.y == k)[0]
                    n_cal = round(float(self.calibration_fraction) * idx.size)
                    if n_cal < 20 or idx.size - n_cal < 20:
                        raise InputError(
                            f"calibration_fraction {self.calibration_fraction} leaves fewer "
                            f"than 20 rows to fit or to calibrate ({idx.size} rows in a domain)"
                        )
                    keep[rng.permutation(idx)[:n_cal]] = False
            targets, leaf = z, None
            if self.location_scale:  # location and scale first, the shape on r (docstring)
                ls_seed = spawn_seeds(seeds[_S_MODELS], _LS_STREAM + 1)[_LS_STREAM]
                targets = self._fit_location_scale(d, z, keep, ls_seed)
                leaf = self.shape_min_samples_leaf
            f, it = self._fit_bag(
                d,
                z,
                keep,
                spawn_seeds(seeds[_S_MODELS], 2 * len(d.features)),
                targets=targets,
                min_samples_leaf=leaf,
            )
            bags.append(f)
            bag_iters.append(it)
            if self.tail_rule == "empirical":
                self.tails_ = self._fit_tails(d, z, keep, f)
            if not keep.all():
                self.calibration_ = self._calibration(d, z, ~keep, f)
        else:  # subsamples and model seeds from a stream the unbagged morpher does not use
            s_sub, *s_bags = spawn_seeds(spawn_seeds(seeds[_S_MODELS], 2)[1], n_bags + 1)
            rng = np.random.default_rng(s_sub)
            for b in range(n_bags):
                keep = np.zeros(d.y.size, dtype=bool)
                for k in (0, 1):
                    idx = np.nonzero(d.y == k)[0]
                    n_keep = min(max(round(float(self.bag_fraction) * idx.size), 2), idx.size)
                    keep[rng.choice(idx, size=n_keep, replace=False)] = True
                f, it = self._fit_bag(d, z, keep, spawn_seeds(s_bags[b], 2 * len(d.features)))
                bags.append(f)
                bag_iters.append(it)
        self.fit_seconds_ = time.process_time() - t0
        self.codec_ = codec
        self.bags_ = bags
        self.forests_ = bags[0]
        self.bag_n_iter_ = bag_iters
        self.n_iter_ = bag_iters[0]
        self.features_, self.context_ = d.features, d.context
        return self

    def _calibration(
        self, d: Any, z: np.ndarray, held: np.ndarray, forests: Mapping[str, Sequence[Any]]
    ) -> dict[str, list[np.ndarray]]:
        """Each domain's and feature's recalibration knots from the PIT normal scores of its
        held-out rows ``held`` under the forests fitted without them."""
        s = special.ndtri(self.levels_)
        out: dict[str, list[np.ndarray]] = {}
        for k, name in enumerate(_DOMAINS):
            rows = (d.y == k) & held
            w = d.w[rows]
            w_arg = None if np.all(w == 1.0) else w
            zr, cr = z[rows], d.c[rows]
            cell = self._cell_of(cr)
            if cell is not None:
                counts = np.bincount(cell, minlength=self._n_cells())
                if counts.min() < _CAL_MIN_CELL:
                    raise InputError(
                        f"calibration_cells leaves cell {int(np.argmin(counts))} with "
                        f"{int(counts.min())} held-out {name} rows (fewer than "
                        f"{_CAL_MIN_CELL}); use fewer cells or a larger calibration_fraction"
                    )
            knots = []
            for j in range(len(d.features)):
                q = self._knots(forests, name, j, np.hstack([cr, zr[:, :j]]))
                t = _cdf_score(
                    zr[:, j], q, s, None if self.tails_ is None else self.tails_[name][j]
                )
                if cell is None:
                    knots.append(calibration_map(t, w_arg))
                else:
                    knots.append(
                        np.stack(
                            [
                                calibration_map(
                                    t[cell == i], None if w_arg is None else w_arg[cell == i]
                                )
                                for i in range(self._n_cells())
                            ]
                        )
                    )
            out[name] = knots
        return out

    def _fit_tails(
        self, d: Any, z: np.ndarray, rows: np.ndarray, forests: Mapping[str, Sequence[Any]]
    ) -> dict[str, list[np.ndarray]]:
        """Each domain's and feature's empirical tail knots ``(2, 2, M + 1)`` (lower, upper;
        :func:`tail_knots`) from its rows ``rows`` beyond their own outer conditional
        quantiles, in units of their tail slopes (module docstring, "Empirical tails")."""
        s = special.ndtri(self.levels_)
        out: dict[str, list[np.ndarray]] = {}
        for k, name in enumerate(_DOMAINS):
            r = (d.y == k) & rows
            w = d.w[r]
            zr, cr = z[r], d.c[r]
            knots = []
            for j in range(len(d.features)):
                q = self._knots(forests, name, j, np.hstack([cr, zr[:, :j]]))
                lo, hi = _tail_slopes(q, s)
                sides = []
                for m, e in (
                    (zr[:, j] < q[:, 0], (q[:, 0] - zr[:, j]) / lo),
                    (zr[:, j] > q[:, -1], (zr[:, j] - q[:, -1]) / hi),
                ):
                    if int(m.sum()) < _TAIL_MIN_ROWS:  # too few to say: the linear rule
                        off = tail_knots(np.ones(1), float(self.tail_level))[1]
                        sides.append(np.vstack([off, off]))
                        continue
                    wm = None if np.all(w == 1.0) else w[m]
                    sides.append(tail_knots(e[m], float(self.tail_level), wm))
                knots.append(np.stack(sides))
            out[name] = knots
        return out

    def _fit_location_scale(self, d: Any, z: np.ndarray, keep: np.ndarray, seed: int) -> np.ndarray:
        """Fit each domain's and feature's location and scale models on the rows ``keep``
        (``ls_forests_``, ``ls_floor_``) and return the standardised residuals ``r`` (same
        shape as ``z``; filled on ``keep``) the shape models are fitted on: out of fold, from
        location and scale models fitted on the other half of the domain's rows (module
        docstring, "Location-scale standardisation")."""
        levels = np.asarray(_LS_LEVELS)
        sd = z.std(axis=0)  # pooled, both domains, all rows
        self.ls_floor_ = floor = _LS_SCALE_FLOOR * np.where(sd > 0, sd, 1.0)
        n_f = len(d.features)
        s_split, s_models = spawn_seeds(seed, 2)
        model_seeds = spawn_seeds(s_models, 2 * n_f)
        rng = np.random.default_rng(s_split)
        r = np.zeros_like(z)
        ls: dict[str, list[QuantileForest]] = {"src": [], "tgt": []}
        self.ls_forests_ = ls
        for k, name in enumerate(_DOMAINS):
            rows = np.nonzero((d.y == k) & keep)[0]
            half = np.zeros(rows.size, dtype=bool)
            half[rng.permutation(rows.size)[: rows.size // 2]] = True
            w = d.w[rows]
            weighted = not np.all(w == 1.0)
            for j in range(n_f):
                inputs = np.hstack([d.c[rows], z[rows][:, :j]])
                target = z[rows, j]
                s_all, s_a, s_b = spawn_seeds(model_seeds[k * n_f + j], 3)
                full, _ = self._fit_forest(
                    inputs, target, w if weighted else None, s_all, levels=levels
                )
                ls[name].append(full)
                for fit_rows, s_fold in ((half, s_a), (~half, s_b)):
                    part, _ = self._fit_forest(
                        inputs[fit_rows],
                        target[fit_rows],
                        w[fit_rows] if weighted else None,
                        s_fold,
                        levels=levels,
                    )
                    other = ~fit_rows
                    q = part.predict(inputs[other])
                    loc, scale = q[:, 1], np.maximum(0.5 * (q[:, 2] - q[:, 0]), floor[j])
                    r[rows[other], j] = (target[other] - loc) / scale
        return r

    def _loc_scale(
        self, forest: QuantileForest, x: np.ndarray, j: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Location (the conditional median) and scale (half the 16-84 % range, floored)
        of feature ``j`` at inputs ``x`` under a location-scale forest."""
        q = forest.predict(x)
        assert self.ls_floor_ is not None
        return q[:, 1], np.maximum(0.5 * (q[:, 2] - q[:, 0]), self.ls_floor_[j])

    def _knots(
        self, bag: Mapping[str, Sequence[QuantileForest]], name: str, j: int, x: np.ndarray
    ) -> np.ndarray:
        """The ``K`` conditional quantiles (n, K) of feature ``j`` in domain ``name`` at
        inputs ``x``: the rearranged level models' predictions, or with ``location_scale``
        the location plus the scale times the rearranged standardised quantiles."""
        q = bag[name][j].predict(x)
        if self.ls_forests_ is None:
            return q
        loc, scale = self._loc_scale(self.ls_forests_[name][j], x, j)
        return loc[:, None] + scale[:, None] * q

    def _cell_edges(self, d: Any) -> dict[str, np.ndarray] | None:
        """The interior bin edges of each column of ``calibration_cells`` (a count of bins:
        equal-count bins of the pooled training rows, both domains, unweighted)."""
        if self.calibration_cells is None:
            return None
        edges: dict[str, np.ndarray] = {}
        for col, spec in self.calibration_cells.items():
            if col not in d.context:
                raise ConfigError(
                    f"{col!r} is not a context column ({', '.join(d.context) or 'none'})",
                    parameter="calibration_cells",
                )
            if isinstance(spec, int | np.integer):
                v = d.c[:, d.context.index(col)]
                e = np.quantile(v, np.arange(1, int(spec)) / int(spec))
                if np.any(np.diff(e) <= 0) or e[0] <= v.min() or e[-1] >= v.max():
                    raise InputError(
                        f"calibration_cells: column {col!r} has too few distinct values "
                        f"for {int(spec)} equal-count bins"
                    )
            else:
                e = np.asarray(spec, dtype=np.float64)
            edges[str(col)] = e
        return edges

    def _n_cells(self) -> int:
        e = self.calibration_edges_
        return 1 if e is None else int(np.prod([v.size + 1 for v in e.values()]))

    def _cell_of(self, c: np.ndarray) -> np.ndarray | None:
        """Each row's calibration cell (row-major over the columns of ``calibration_cells``,
        a value equal to an edge goes to the upper bin), from its context ``c``; ``None``
        without cells."""
        e = self.calibration_edges_
        if e is None:
            return None
        cell = np.zeros(c.shape[0], dtype=np.int64)
        for col, edges in e.items():
            b = np.searchsorted(edges, c[:, self.context_.index(col)], side="right")
            cell = cell * (edges.size + 1) + b
        return cell

    def _fit_bag(
        self,
        d: Any,
        z: np.ndarray,
        keep: np.ndarray,
        model_seeds: Sequence[int],
        targets: np.ndarray | None = None,
        min_samples_leaf: int | None = None,
    ) -> tuple[dict[str, list[QuantileForest]], dict[str, list[list[int]]]]:
        """One set of quantile forests (both domains, every feature) on the rows ``keep``:
        of ``targets`` (default ``z``; the standardised residuals with ``location_scale``)
        given the context and the earlier coordinates of ``z``."""
        targets = z if targets is None else targets
        forests: dict[str, list[QuantileForest]] = {"src": [], "tgt": []}
        n_iter: dict[str, list[list[int]]] = {"src": [], "tgt": []}
        for k, name in enumerate(_DOMAINS):
            rows = (d.y == k) & keep
            w = d.w[rows]
            w_arg = None if np.all(w == 1.0) else w
            for j in range(len(d.features)):
                inputs = np.hstack([d.c[rows], z[rows][:, :j]])
                forest, iters = self._fit_forest(
                    inputs,
                    targets[rows, j],
                    w_arg,
                    model_seeds[k * len(d.features) + j],
                    min_samples_leaf=min_samples_leaf,
                )
                forests[name].append(forest)
                n_iter[name].append(iters)
        return forests, n_iter

    # --- morphing ----------------------------------------------------------------------
    def _chain(
        self,
        z: np.ndarray,
        c: np.ndarray,
        to_target: bool,
        bags: Sequence[Mapping[str, Sequence[QuantileForest]]],
    ) -> np.ndarray:
        """Move codec coordinates ``z`` one feature at a time (module docstring), with the
        mean knots of ``bags`` (one bag: its own knots)."""
        a, b = ("src", "tgt") if to_target else ("tgt", "src")
        s = special.ndtri(self.levels_)
        out = z.copy()
        cal = self.calibration_
        cell = None if cal is None else self._cell_of(c)
        for j in range(z.shape[1]):
            x_from, x_to = np.hstack([c, z[:, :j]]), np.hstack([c, out[:, :j]])
            q_from = self._knots(bags[0], a, j, x_from)
            q_to = self._knots(bags[0], b, j, x_to)
            if len(bags) > 1:
                for bag in bags[1:]:
                    q_from += bag[a][j].predict(x_from)
                    q_to += bag[b][j].predict(x_to)
                q_from /= len(bags)
                q_to /= len(bags)
            tails = self.tails_
            t_from, t_to = (None, None) if tails is None else (tails[a][j], tails[b][j])
            score = _cdf_score(z[:, j], q_from, s, t_from)
            if cal is not None and cell is None:  # calibrated CDFs (module docstring)
                score = _uncalibrate(_calibrate(score, cal[a][j]), cal[b][j])
            elif cal is not None and cell is not None:  # one map per context cell
                for i in range(cal[a][j].shape[0]):
                    r = cell == i
                    score[r] = _uncalibrate(_calibrate(score[r], cal[a][j][i]), cal[b][j][i])
            moved = _quantile_at(score, q_to, s, t_to)
            lo, hi = self.z_range_[b][:, j]
            out[:, j] = np.clip(moved, lo, hi)
        return out

    def _morph(self, x: np.ndarray, c: np.ndarray, to_target: bool) -> np.ndarray:
        stream = _S_FORWARD if to_target else _S_INVERSE
        base_seed = spawn_seeds(self.random_state, _N_STREAMS)[stream]
        bags = self.bags_
        assign = len(bags) > 1 and self.bag_mode == "assign"
        which = (
            row_folds(pd.DataFrame(np.hstack([x, c])), len(bags), salt=_BAG_SALT)
            if assign
            else None
        )
        out = np.empty_like(x, dtype=np.float64)
        for sl, rng in seeded_chunks(x.shape[0], base_seed):
            z = self.codec_.encode(x[sl], rng)
            if which is None:
                moved = self._chain(z, c[sl], to_target, bags)
            else:
                moved = np.empty_like(z)
                part = which[sl]
                for i, bag in enumerate(bags):
                    r = np.nonzero(part == i)[0]
                    if r.size:
                        moved[r] = self._chain(z[r], c[sl][r], to_target, [bag])
            out[sl] = self.codec_.decode(moved)
        return out

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``model.json`` and ``weights.safetensors`` (every tree's node arrays)."""
        self._check_fitted()
        tensors = {}
        for b, bag in enumerate(self.bags_):
            for name in _DOMAINS:
                for j, forest in enumerate(bag[name]):
                    for key, arr in forest.arrays().items():
                        tensors[f"{_bag_prefix(b)}{name}/{j}/{key}"] = arr
        if self.ls_forests_ is not None:
            for name in _DOMAINS:
                for j, forest in enumerate(self.ls_forests_[name]):
                    for key, arr in forest.arrays().items():
                        tensors[f"{_LS_PREFIX}{name}/{j}/{key}"] = arr
        state = {
            "features": self.features_,
            "context": self.context_,
            "codec": self.codec_.to_dict(),
            "levels": self.levels_.tolist(),
            "z_range": {n: self.z_range_[n].tolist() for n in _DOMAINS},
            "n_iter": self.n_iter_,
            "n_inputs": {n: [f.n_inputs for f in self.forests_[n]] for n in _DOMAINS},
        }
        if len(self.bags_) > 1:
            state["bag_n_iter"] = self.bag_n_iter_[1:]
        if self.calibration_ is not None:
            state["calibration"] = {n: [k.tolist() for k in self.calibration_[n]] for n in _DOMAINS}
        if self.tails_ is not None:
            state["tails"] = {n: [k.tolist() for k in self.tails_[n]] for n in _DOMAINS}
        if self.ls_floor_ is not None:
            state["ls_floor"] = self.ls_floor_.tolist()
        if self.calibration_edges_ is not None:
            state["calibration_edges"] = {c: e.tolist() for c, e in self.calibration_edges_.items()}
        return save_folder(
            path,
            type(self).__name__,
            self.get_params(),
            state,
            tensors=tensors,
            overwrite=overwrite,
        )

    def _saved_tails(self, saved: Any) -> dict[str, list[np.ndarray]] | None:
        """Check a model file's ``state.tails`` against ``tail_rule``."""
        if (saved is None) != (self.tail_rule == "linear"):
            raise InputError("tail knots and tail_rule disagree", field="state.tails")
        if saved is None:
            return None
        out = {}
        shape = (2, 2, len(_TAIL_FRACTIONS) + 1)
        for n in _DOMAINS:
            try:
                knots = [np.asarray(k, dtype=np.float64) for k in saved[n]]
            except (TypeError, ValueError, KeyError):
                knots = []  # refused below
            if len(knots) != len(self.features_) or any(
                k.shape != shape
                or not np.all(np.isfinite(k))
                or np.any(k[..., 0] != 0.0)
                or np.any(np.diff(k, axis=-1) <= 0)
                for k in knots
            ):
                raise InputError(
                    f"must hold increasing {shape} tail knots per feature, starting at 0",
                    field=f"state.tails.{n}",
                )
            out[n] = knots
        return out

    def _saved_edges(self, saved: Any) -> dict[str, np.ndarray] | None:
        """Check a model file's ``state.calibration_edges`` against ``calibration_cells``."""
        cells = self.calibration_cells
        if (saved is None) != (cells is None):
            raise InputError(
                "calibration edges and calibration_cells disagree",
                field="state.calibration_edges",
            )
        if cells is None:
            return None
        if not isinstance(saved, Mapping) or list(saved) != list(cells):
            raise InputError(
                "must name the columns of calibration_cells in order",
                field="state.calibration_edges",
            )
        out = {}
        for col, spec in cells.items():
            n = int(spec) - 1 if isinstance(spec, int | np.integer) else len(spec)
            try:
                e = np.asarray(saved[col], dtype=np.float64)
            except (TypeError, ValueError):
                e = np.full(0, np.nan)  # refused below
            if (
                e.ndim != 1
                or e.size != n
                or not np.all(np.isfinite(e))
                or np.any(np.diff(e) <= 0)
                or (not isinstance(spec, int | np.integer) and not np.array_equal(e, spec))
            ):
                raise InputError(
                    f"must hold the {n} increasing edges calibration_cells gives",
                    field=f"state.calibration_edges.{col}",
                )
            if col not in self.context_:
                raise InputError(f"{col!r} is not a context column", field="state.context")
            out[col] = e
        return out

    @classmethod
    def from_saved(cls, params: dict, state: dict, folder: Path) -> ChainedQuantileMorpher:
        """Rebuild from the parts :func:`ariasim.shift.load` read (no pickle)."""
        params = dict(params)
        # saved before the option existed: no calibration (whatever the default becomes)
        params.setdefault("calibration_fraction", 0.0)
        params.setdefault("calibration_cells", None)
        params.setdefault("tail_level", _TAU_LO)
        params.setdefault("tail_rule", "linear")
        params.setdefault("location_scale", False)
        params.setdefault("shape_min_samples_leaf", None)
        if isinstance(params.get("bounds"), dict):
            params["bounds"] = {k: tuple(v) for k, v in params["bounds"].items()}
        self = cls(**params)
        self._check_params()
        self.features_ = [str(f) for f in state["features"]]
        self.context_ = [str(c) for c in state["context"]]
        self.codec_ = FeatureCodec.from_dict(state["codec"])
        if self.codec_.names != self.features_:
            raise InputError("the codec's columns are not the features", field="state.codec")
        self.levels_ = np.asarray(state["levels"], dtype=np.float64)
        expected_levels = quantile_levels(int(self.n_quantiles), float(self.tail_level))
        if not np.array_equal(self.levels_, expected_levels):
            raise InputError("do not match n_quantiles and tail_level", field="state.levels")
        n_bags = int(self.n_bags)
        iters = [state["n_iter"], *state.get("bag_n_iter", [])]
        if len(iters) != n_bags:
            raise InputError(f"holds {len(iters)} bags, n_bags is {n_bags}", field="state")
        self.bag_n_iter_ = [
            {n: [[int(i) for i in it] for it in bag[n]] for n in _DOMAINS} for bag in iters
        ]
        self.n_iter_ = self.bag_n_iter_[0]
        self.z_range_ = {}
        for n in _DOMAINS:
            r = np.asarray(state["z_range"][n], dtype=np.float64)
            if r.shape != (2, len(self.features_)) or not np.all(np.isfinite(r)):
                raise InputError("must hold (min, max) per feature", field=f"state.z_range.{n}")
            self.z_range_[n] = r
        self.calibration_ = None
        cal = state.get("calibration")
        if (cal is not None) != (float(self.calibration_fraction) > 0):
            raise InputError(
                "calibration knots and calibration_fraction disagree", field="state.calibration"
            )
        self.calibration_edges_ = self._saved_edges(state.get("calibration_edges"))
        if cal is not None:
            self.calibration_ = {}
            shape: tuple[int, ...] = (2, _CAL_LEVELS)
            if self.calibration_edges_ is not None:
                shape = (self._n_cells(), *shape)
            for n in _DOMAINS:
                knots = [np.asarray(k, dtype=np.float64) for k in cal[n]]
                if len(knots) != len(self.features_) or any(
                    k.shape != shape
                    or not np.all(np.isfinite(k))
                    or np.any(np.diff(k, axis=-1) <= 0)
                    for k in knots
                ):
                    raise InputError(
                        f"must hold increasing {shape} knots per feature",
                        field=f"state.calibration.{n}",
                    )
                self.calibration_[n] = knots
        self.tails_ = self._saved_tails(state.get("tails"))
        self.ls_forests_, self.ls_floor_ = None, None
        floor = state.get("ls_floor")
        if (floor is not None) != bool(self.location_scale):
            raise InputError("scale floors and location_scale disagree", field="state.ls_floor")
        if floor is not None:
            try:
                fl = np.asarray(floor, dtype=np.float64)
            except (TypeError, ValueError):
                fl = np.full(0, np.nan)  # refused below
            if fl.shape != (len(self.features_),) or not np.all(np.isfinite(fl)) or np.any(fl <= 0):
                raise InputError(
                    "must hold one positive scale floor per feature", field="state.ls_floor"
                )
            self.ls_floor_ = fl
        self.fit_seconds_ = float("nan")  # not saved (model files are reproducible)
        arrays = read_tensors(folder)
        n_f, n_c = len(self.features_), len(self.context_)
        keys = (*QuantileForest.FIELDS, "tree_start", "model_start", "baseline")
        prefixes = [_bag_prefix(b) for b in range(n_bags)]
        if self.location_scale:
            prefixes.append(_LS_PREFIX)
        expected = {
            f"{p}{n}/{j}/{k}" for p in prefixes for n in _DOMAINS for j in range(n_f) for k in keys
        }
        if set(arrays) != expected:
            raise InputError(
                "the saved trees do not match the features",
                path=Path(folder) / "weights.safetensors",
            )
        weights = Path(folder) / "weights.safetensors"
        self.bags_ = [
            _load_forests(arrays, _bag_prefix(b), n_f, n_c, self.levels_.size, "forest", weights)
            for b in range(n_bags)
        ]
        self.forests_ = self.bags_[0]
        if self.ls_floor_ is not None:
            self.ls_forests_ = _load_forests(
                arrays, _LS_PREFIX, n_f, n_c, len(_LS_LEVELS), "location-scale forest", weights
            )
        return self


def _load_forests(
    arrays: Mapping[str, np.ndarray],
    prefix: str,
    n_f: int,
    n_c: int,
    n_levels: int,
    what: str,
    path: Path,
) -> dict[str, list[QuantileForest]]:
    """The forests saved under ``prefix`` (one per domain and feature), each checked to hold
    ``n_levels`` models; ``what`` names them in the error."""
    out: dict[str, list[QuantileForest]] = {}
    for n in _DOMAINS:
        forests = []
        for j in range(n_f):
            head = f"{prefix}{n}/{j}/"
            parts = {k[len(head) :]: v for k, v in arrays.items() if k.startswith(head)}
            f = QuantileForest(parts, n_c + j)
            if f.baseline.size != n_levels:
                raise InputError(
                    f"{what} {head[:-1]} has {f.baseline.size} models for {n_levels} levels",
                    path=path,
                )
            forests.append(f)
        out[n] = forests
    return out


_LS_PREFIX = "ls/"  # tensor-name prefix of the location-scale forests


def _bag_prefix(b: int) -> str:
    """The tensor-name prefix of bag ``b`` (none for the first, so an unbagged morpher's
    file is as before bagging existed)."""
    return "" if b == 0 else f"bag{b}/"
