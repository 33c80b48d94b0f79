"""How far could any controller go on the muon pipeline? Pass probabilities from repeated
photon realisations.

A controller before the photons can at best know each event's probability ``p`` to pass
given everything simulated so far; the photon realisation decides the rest. This script
takes the events that reach the photons in ``--events`` generated events, simulates their
photons ``--realisations`` times (preview and rest each time), and, with the preview fixed
to one realisation, the rest ``--realisations`` times more. From these it computes the gain
(Kish N_eff per CPU second over brute force, the variance x cost of
:func:`ariasim.active.controller.optimal_lambda`'s objective, acceptance
``a = clip(lambda w sqrt(p), a_min, 1)``) of a controller that knew ``p``:

* an **upper bound**: ``p`` estimated from all realisations and the variance scored on the
  same ones (a noisier ``p`` is a mean-preserving spread of the true one, which only raises
  the gain of ``a ∝ sqrt(p)``: more realisations lower this bound towards the truth);
* an **honest** figure: ``p`` from the first half of the realisations (shrunk towards the
  mean pass fraction with a Beta prior of weight 2, so that a ``p`` of 0 from a few
  realisations is not taken at face value) and the variance scored on the second half.

Both before the photons (costs: the stages before, and the whole photon simulation) and
after the preview (costs: before + preview, and the rest). Each comes three ways:

* ``mean_cost``: ``a ∝ w sqrt(p)`` (what the controllers do) and the cost of an accepted
  event taken as the mean cost per event (the controllers' cost model; the figures of
  BENCHMARKS.md before 2026-12-05's bright selection);
* ``per_event_cost``: the same acceptance, each event's own photon CPU counted (mean over
  its realisations): a bright event carries many photons, so keeping the events that pass
  a charge cut costs more than their number says;
* ``cost_aware``: ``a ∝ w sqrt(p / c)`` with each event's cost ``c``, the optimum when
  events differ in cost.

Usage (the figures of BENCHMARKS.md):

    python benchmarks/active_ceiling.py --size ci --events 150000 --realisations 16
    python benchmarks/active_ceiling.py --selection bright --size ci --events 150000 \
        --realisations 16

``deconvolved`` (both before the photons and, as ``free_preview_deconvolved``, with the
preview's information given for free, an upper bound of any controller with a second
point after the preview) is the gain of a controller that knew each event's true ``p``,
estimated without the noise of the per-event ``p``: the distribution of ``p`` over
events is deconvolved from the binomial counts (nonparametric maximum likelihood), each
event gets a ``p`` drawn from its posterior, with a bootstrap over events for the
interval. ``--closure N`` checks it on counts simulated from a known ``p``.

``--save FILE.npz`` keeps the per-event arrays (and the events at the control point in
``FILE_events.parquet``); ``--pool A.npz,B.npz`` pools runs of other seeds without
simulating:

    python benchmarks/active_ceiling.py --size default --events 150000 --realisations 8 \
        --before-only --seed 11 --save up_d11.npz
    python benchmarks/active_ceiling.py --size default --events 120000 --realisations 8 \
        --seed 12 --save up_d12.npz
    python benchmarks/active_ceiling.py --size default --realisations 8 \
        --pool up_d11.npz,up_d12.npz --closure 5

``--selection`` picks the muon pipeline's final selection (:class:`ariasim.apps.muons.MuonConfig`);
``--before-only`` skips the after-preview part (half the cost).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from scipy.stats import binom

from ariasim.apps.muons import chain_stages, make_muon_pipeline


def join(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    new = [c for c in b.columns if c != "event_id"]
    return a.drop(columns=[c for c in new if c in a.columns]).merge(b, on="event_id")


def gain(
    w: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    fixed: float,
    skip: np.ndarray,
    a_min: float,
    cost_aware: np.ndarray | None = None,
) -> float:
    """Brute-force variance x cost over the best ``a = clip(lambda w sqrt(p_a))``'s (or,
    with ``cost_aware`` per-event costs ``c``, ``a = clip(lambda w sqrt(p_a / c))``, the
    variance x cost optimum when events differ in cost), with the variance from ``p_b``
    and the cost ``fixed + mean(a x skip)`` (``skip``: per event reaching the control
    point, the CPU of the stages from it on; a scalar: the mean)."""
    skip = np.broadcast_to(np.asarray(skip, dtype=float), w.shape)
    offset = np.mean(w * p_b) ** 2
    brute = (np.mean(w**2 * p_b) - offset) * (fixed + np.mean(skip))
    r = w * np.sqrt(p_a)
    if cost_aware is not None:
        r = r / np.sqrt(np.maximum(cost_aware, 1e-3 * np.mean(cost_aware)))
    r = r / np.max(r) if np.max(r) > 0 else r
    best = np.inf
    for lam in np.geomspace(1e-2, 1e6, 1200):
        a = np.clip(lam * r, a_min, 1.0)
        best = min(best, (np.mean(w**2 * p_b / a) - offset) * (fixed + np.mean(a * skip)))
    return float(brute / best)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="ci", choices=("default", "ci"))
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--realisations", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--a-min", type=float, default=0.01)
    ap.add_argument("--selection", default="upgoing", choices=("upgoing", "bright"))
    ap.add_argument("--before-only", action="store_true", help="skip the after-preview part")
    ap.add_argument(
        "--bootstrap", type=int, default=100, help="bootstrap replicas of the deconvolved figure"
    )
    ap.add_argument(
        "--closure",
        type=int,
        default=0,
        help="also check the deconvolution this many times on counts simulated from a known p",
    )
    ap.add_argument(
        "--save", default=None, help="also write the per-event arrays to this .npz (for --pool)"
    )
    ap.add_argument(
        "--pool",
        default=None,
        help="comma-separated .npz files of --save runs (other seeds, same size, selection and"
        " realisations): pool their events and simulate nothing",
    )
    args = ap.parse_args(argv)
    k_real = args.realisations
    if k_real < 4 or k_real % 2:
        ap.error("--realisations must be an even number >= 4")

    h = k_real // 2
    if args.pool:
        arrays = pool([f for f in args.pool.split(",") if f], k_real)
    else:
        arrays = simulate_realisations(args, k_real)
        if args.save:
            np.savez_compressed(args.save, **arrays)
    out = analyse(arrays, args, h)
    print(json.dumps(out, indent=1))
    return 0


def pool(files: list[str], k_real: int) -> dict[str, np.ndarray]:
    """Concatenate the per-event arrays of ``--save`` runs; the per-event-before cost is
    the mean weighted by each run's events at the photons."""
    parts = [dict(np.load(f)) for f in files]
    for f, p in zip(files, parts, strict=True):
        if p["full"].shape[0] != k_real:
            raise SystemExit(f"{f}: {p['full'].shape[0]} realisations, not --realisations {k_real}")
    n = np.array([p["w"].size for p in parts], float)
    out = {
        k: np.concatenate([p[k] for p in parts], axis=-1)
        for k in set.intersection(*(set(p) for p in parts))
        if k not in ("c_pre", "w", "events")
    }
    # generation weights [Hz] do not depend on the number generated: pool them raw
    out["w"] = np.concatenate([p["w"] for p in parts])
    out["c_pre"] = np.array(np.sum(n * np.array([float(p["c_pre"]) for p in parts])) / n.sum())
    out["events"] = np.array(sum(int(p["events"]) for p in parts))
    return out


def simulate_realisations(args: argparse.Namespace, k_real: int) -> dict[str, np.ndarray]:
    """Simulate the events up to the photons once, then their photons ``k_real`` times."""
    pipe = make_muon_pipeline(args.size, selection=args.selection)
    names = pipe.stage_names
    preview, rest, trigger, selection = (pipe.stages[names.index(n)].func for n in names[3:])
    tables, cpu = chain_stages(pipe, np.arange(args.events), args.seed)
    x = tables["propagation"].reset_index(drop=True)
    ids = x["event_id"].to_numpy()
    w = x["gen_weight"].to_numpy(float)

    def passed(after_preview: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Which events pass, and the rest's CPU per event."""
        out = rest(after_preview, np.random.default_rng(seed))
        r = join(after_preview, out)
        t = r[r["event_id"].isin(trigger(r, None)["event_id"])]
        return np.isin(ids, selection(t, None)["event_id"].to_numpy()), per_event(out)

    def per_event(table: pd.DataFrame) -> np.ndarray:
        """The table's ``cpu_s`` in the order of ``ids``."""
        return table.set_index("event_id")["cpu_s"].reindex(ids).fillna(0.0).to_numpy(float)

    full, cpu_pv, cpu_rest = [], [], []
    for k in range(k_real):
        pv = preview(x, np.random.default_rng(10_000 + k))
        cpu_pv.append(per_event(pv))
        ok, c = passed(join(x, pv), 20_000 + k)
        full.append(ok)
        cpu_rest.append(c)
    arrays = {
        "w": w,
        "full": np.array(full, float),
        "cpu_pv": np.array(cpu_pv, float),
        "cpu_rest": np.array(cpu_rest, float),
        "c_pre": np.array(sum(cpu[n] for n in names[:3]) / len(x)),
        "events": np.array(args.events),
    }
    if not args.before_only:
        fixed_pv = preview(x, np.random.default_rng(1))
        given = [passed(join(x, fixed_pv), 30_000 + k)[0] for k in range(k_real)]
        arrays["given"] = np.array(given, float)
    if args.save:
        # the events at the control point, for studies of features (event_id order = arrays)
        # (array cells flattened: ``mu_entry`` comes back as (n_mu x 3) values in a row)
        flat = x.assign(
            **{
                c: [np.ravel(np.asarray(v, dtype=float)) for v in x[c]]
                for c in x.columns
                if x[c].dtype == object and isinstance(x[c].iloc[0], np.ndarray)
            }
        )
        flat.to_parquet(str(args.save).removesuffix(".npz") + "_events.parquet")
    return arrays


def analyse(arrays: dict[str, np.ndarray], args: argparse.Namespace, h: int) -> dict:
    """The ceilings of BENCHMARKS.md from the per-event arrays."""
    w = arrays["w"] / np.median(arrays["w"])
    full_a = arrays["full"]
    cpu_pv, cpu_rest = arrays["cpu_pv"], arrays["cpu_rest"]
    k_real = full_a.shape[0]
    n_at = w.size
    c_pre = float(arrays["c_pre"])
    # per event reaching the photons: its mean CPU over the realisations (the photon
    # simulation's CPU is shared among a chunk's events in proportion to their photons)
    ev_pv, ev_rest = np.mean(cpu_pv, axis=0), np.mean(cpu_rest, axis=0)
    ev_pv_a, ev_rest_a = np.mean(cpu_pv[:h], axis=0), np.mean(cpu_rest[:h], axis=0)
    c_pv, c_rest = float(ev_pv.mean()), float(ev_rest.mean())
    mean_pass = float(full_a.mean())

    def shrink(m: np.ndarray) -> np.ndarray:
        return (m.sum(0) + 2.0 * mean_pass) / (m.shape[0] + 2.0)

    def both(p_a: np.ndarray, p_b: np.ndarray, fixed: float, skip: np.ndarray, c_a: np.ndarray):
        return {
            # as the controllers do: a ∝ w sqrt(p), scored with the mean cost per event
            "mean_cost": gain(w, p_a, p_b, fixed, float(np.mean(skip)), args.a_min),
            # the same acceptance, scored with each event's own cost
            "per_event_cost": gain(w, p_a, p_b, fixed, skip, args.a_min),
            # a ∝ w sqrt(p / c) with each event's cost c (estimated from the same half
            # of the realisations as p in the honest figure)
            "cost_aware": gain(w, p_a, p_b, fixed, skip, args.a_min, cost_aware=c_a),
        }

    p_all = full_a.mean(0)
    passing = full_a.sum(0) > 0
    out: dict = {
        "size": args.size,
        "selection": args.selection,
        "events": int(arrays["events"]),
        "at_photons": n_at,
        "realisations": k_real,
        "pass_fraction": mean_pass,
        "cpu_s_per_event": {"before": c_pre, "preview": c_pv, "rest": c_rest},
        "photon_cpu_of_passing_over_mean": float(
            np.average((ev_pv + ev_rest)[passing], weights=p_all[passing]) / (c_pv + c_rest)
        ),
        "before_photons": {
            "upper_bound": both(p_all, p_all, c_pre, ev_pv + ev_rest, ev_pv + ev_rest),
            "honest": both(
                shrink(full_a[:h]), full_a[h:].mean(0), c_pre, ev_pv + ev_rest, ev_pv_a + ev_rest_a
            ),
        },
    }
    if "given" in arrays:
        given_a = arrays["given"]
        g_all = given_a.mean(0)
        fixed = c_pre + c_pv
        out["after_preview"] = {
            "upper_bound": both(g_all, g_all, fixed, ev_rest, ev_rest),
            "honest": both(shrink(given_a[:h]), given_a[h:].mean(0), fixed, ev_rest, ev_rest_a),
        }
    out["passing_events"] = int(passing.sum())
    rng = np.random.default_rng(args.seed)
    out["before_photons"]["deconvolved"] = deconvolved(
        full_a, w, c_pre, ev_pv + ev_rest, args.a_min, args.bootstrap, rng
    )
    if args.closure:
        out["before_photons"]["closure"] = closure(
            full_a, w, c_pre, ev_pv + ev_rest, args.a_min, args.closure, rng
        )
    if "given" in arrays:
        # the preview's information for free (before any photon is paid): an upper bound
        # of any controller that decides before the photons and again after the preview
        out["after_preview"]["free_preview_deconvolved"] = deconvolved(
            arrays["given"], w, c_pre, ev_pv + ev_rest, args.a_min, args.bootstrap, rng
        )
    return out


def closure(
    outcomes: np.ndarray,
    w: np.ndarray,
    fixed: float,
    skip: np.ndarray,
    a_min: float,
    n: int,
    rng: np.random.Generator,
) -> list[dict]:
    """Check of :func:`deconvolved` with a known truth: ``n`` times, draw each event's
    true ``p`` from its posterior under the fitted G, simulate new counts from it, and
    compare the true ceiling (per-event cost) with the deconvolved and the naive (counts
    over trials, the upper bound) estimates from those counts."""
    counts = outcomes.sum(axis=0).astype(int)
    trials = outcomes.shape[0]
    post = npmle(counts, trials)
    rows = []
    for _ in range(n):
        pick = (np.cumsum(post, axis=1) < rng.random(counts.size)[:, None]).sum(axis=1)
        p_true = P_GRID[np.minimum(pick, P_GRID.size - 1)]
        sim = rng.binomial(trials, p_true)
        fake = (np.arange(trials)[:, None] < sim[None, :]).astype(float)
        est = deconvolved(fake, w, fixed, skip, a_min, 20, rng)["per_event_cost"]["median"]
        rows.append(
            {
                "true": gain(w, p_true, p_true, fixed, skip, a_min),
                "deconvolved": est,
                "naive": gain(w, sim / trials, sim / trials, fixed, skip, a_min),
            }
        )
    return rows


#: Grid of pass probabilities for :func:`npmle` (0 and log-spaced up to 1).
P_GRID = np.r_[0.0, np.geomspace(1e-4, 1.0, 300)]


def npmle(counts: np.ndarray, trials: int, iterations: int = 1500) -> np.ndarray:
    """Posterior of each event's pass probability on :data:`P_GRID` under the
    nonparametric maximum-likelihood mixing distribution of the binomial counts.

    The distribution G of the true ``p`` over events is estimated from the counts (passes
    in ``trials`` realisations) by the Kiefer-Wolfowitz NPMLE on a fixed grid, computed
    with the EM algorithm of Laird (JASA 73 (1978) 805); see Koenker & Mizera, JASA 109
    (2014) 674, for the estimator. Written here because it is a dozen lines of NumPy and
    no well-kept Python library exposes it for binomial mixtures.

    Returns:
        (events, grid) posterior probabilities, each row summing to 1.
    """
    # the likelihood depends on an event only through its count: iterate on the distinct
    # counts, weighted by how many events have each
    values, inverse, mult = np.unique(counts, return_inverse=True, return_counts=True)
    like = binom.pmf(values[:, None], trials, P_GRID[None, :])
    share = mult / mult.sum()
    g = np.full(P_GRID.size, 1.0 / P_GRID.size)
    for _ in range(iterations):
        post = like * g
        post /= post.sum(axis=1, keepdims=True)
        g = share @ post
    post = like * g
    return (post / post.sum(axis=1, keepdims=True))[inverse]


def deconvolved(
    outcomes: np.ndarray,
    w: np.ndarray,
    fixed: float,
    skip: np.ndarray,
    a_min: float,
    n_boot: int,
    rng: np.random.Generator,
) -> dict:
    """The gain of a controller that knows each event's true ``p``, estimated without the
    upward bias of the noisy per-event ``p``: the distribution of ``p`` is deconvolved from
    the realisations' counts (:func:`npmle`), each event gets a ``p`` drawn from its
    posterior, and the gain (:func:`gain`, acceptance ``a ∝ w sqrt(p)``) is scored on
    those. The interval comes from a bootstrap over events (G refitted each time).
    ``mean_cost`` and ``per_event_cost`` as in the other figures."""
    counts = outcomes.sum(axis=0).astype(int)
    trials = outcomes.shape[0]
    figures: dict[str, list[float]] = {"mean_cost": [], "per_event_cost": []}
    for _ in range(n_boot):
        i = rng.integers(0, counts.size, counts.size)
        post = npmle(counts[i], trials)
        pick = (np.cumsum(post, axis=1) < rng.random(i.size)[:, None]).sum(axis=1)
        p = P_GRID[np.minimum(pick, P_GRID.size - 1)]
        figures["mean_cost"].append(gain(w[i], p, p, fixed, float(np.mean(skip[i])), a_min))
        figures["per_event_cost"].append(gain(w[i], p, p, fixed, skip[i], a_min))
    return {
        k: {
            q: float(np.percentile(v, pct))
            for q, pct in (("median", 50), ("p16", 16), ("p84", 84), ("p97.5", 97.5))
        }
        for k, v in figures.items()
    }


if __name__ == "__main__":
    raise SystemExit(main())
