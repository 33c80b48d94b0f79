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
after the preview (costs: before + preview, and the rest).

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
import time

import numpy as np
import pandas as pd

from ariasim.apps.muons import chain_stages, make_muon_pipeline


def join(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    new = [c for c in b.columns if c != "event_id"]
    return a.drop(columns=[c for c in new if c in a.columns]).merge(b, on="event_id")


def gain(
    w: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, fixed: float, skip: float, a_min: float
) -> float:
    """Brute-force variance x cost over the best ``a = clip(lambda w sqrt(p_a))``'s, with
    the variance from ``p_b`` (per event reaching the control point)."""
    offset = np.mean(w * p_b) ** 2
    brute = (np.mean(w**2 * p_b) - offset) * (fixed + skip)
    r = w * np.sqrt(p_a)
    best = np.inf
    for lam in np.geomspace(1e-3, 1e4, 800):
        a = np.clip(lam * r, a_min, 1.0)
        best = min(best, (np.mean(w**2 * p_b / a) - offset) * (fixed + skip * np.mean(a)))
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

    pipe = make_muon_pipeline(args.size, selection=args.selection)
    names = pipe.stage_names
    preview, rest, trigger, selection = (pipe.stages[names.index(n)].func for n in names[3:])
    tables, cpu = chain_stages(pipe, np.arange(args.events), args.seed)
    x = tables["propagation"].reset_index(drop=True)
    ids = x["event_id"].to_numpy()
    w = x["gen_weight"].to_numpy(float)
    w = w / np.median(w)

    def passed(after_preview: pd.DataFrame, seed: int) -> tuple[np.ndarray, float]:
        c0 = time.process_time()
        r = join(after_preview, rest(after_preview, np.random.default_rng(seed)))
        c_rest = time.process_time() - c0
        t = r[r["event_id"].isin(trigger(r, None)["event_id"])]
        return np.isin(ids, selection(t, None)["event_id"].to_numpy()), c_rest

    full, c_pv, c_rest = [], 0.0, 0.0
    for k in range(k_real):
        c0 = time.process_time()
        a = join(x, preview(x, np.random.default_rng(10_000 + k)))
        c_pv += time.process_time() - c0
        ok, c = passed(a, 20_000 + k)
        full.append(ok)
        c_rest += c
    full_a = np.array(full, float)
    if not args.before_only:
        fixed_pv = preview(x, np.random.default_rng(1))
        given = [passed(join(x, fixed_pv), 30_000 + k)[0] for k in range(k_real)]
        given_a = np.array(given, float)
    n_at = len(x)
    c_pre = sum(cpu[n] for n in names[:3]) / n_at
    c_pv, c_rest = c_pv / k_real / n_at, c_rest / k_real / n_at
    mean_pass = float(full_a.mean())
    h = k_real // 2

    def shrink(m: np.ndarray) -> np.ndarray:
        return (m.sum(0) + 2.0 * mean_pass) / (m.shape[0] + 2.0)

    p_all = full_a.mean(0)
    out: dict = {
        "size": args.size,
        "selection": args.selection,
        "events": args.events,
        "at_photons": n_at,
        "realisations": k_real,
        "pass_fraction": mean_pass,
        "cpu_s_per_event": {"before": c_pre, "preview": c_pv, "rest": c_rest},
        "before_photons": {
            "upper_bound": gain(w, p_all, p_all, c_pre, c_pv + c_rest, args.a_min),
            "honest": gain(
                w, shrink(full_a[:h]), full_a[h:].mean(0), c_pre, c_pv + c_rest, args.a_min
            ),
        },
    }
    if not args.before_only:
        g_all = given_a.mean(0)
        out["after_preview"] = {
            "upper_bound": gain(w, g_all, g_all, c_pre + c_pv, c_rest, args.a_min),
            "honest": gain(
                w, shrink(given_a[:h]), given_a[h:].mean(0), c_pre + c_pv, c_rest, args.a_min
            ),
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
