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

``--selection`` picks the muon pipeline's final selection (:class:`ariasim.apps.muons.MuonConfig`);
``--before-only`` skips the after-preview part (half the cost).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

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
    args = ap.parse_args(argv)
    k_real = args.realisations
    if k_real < 4 or k_real % 2:
        ap.error("--realisations must be an even number >= 4")

    h = k_real // 2
    pipe = make_muon_pipeline(args.size, selection=args.selection)
    names = pipe.stage_names
    preview, rest, trigger, selection = (pipe.stages[names.index(n)].func for n in names[3:])
    tables, cpu = chain_stages(pipe, np.arange(args.events), args.seed)
    x = tables["propagation"].reset_index(drop=True)
    ids = x["event_id"].to_numpy()
    w = x["gen_weight"].to_numpy(float)
    w = w / np.median(w)

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
    full_a = np.array(full, float)
    if not args.before_only:
        fixed_pv = preview(x, np.random.default_rng(1))
        given = [passed(join(x, fixed_pv), 30_000 + k)[0] for k in range(k_real)]
        given_a = np.array(given, float)
    n_at = len(x)
    c_pre = sum(cpu[n] for n in names[:3]) / n_at
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
        "events": args.events,
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
    if not args.before_only:
        g_all = given_a.mean(0)
        fixed = c_pre + c_pv
        out["after_preview"] = {
            "upper_bound": both(g_all, g_all, fixed, ev_rest, ev_rest),
            "honest": both(shrink(given_a[:h]), given_a[h:].mean(0), fixed, ev_rest, ev_rest_a),
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
