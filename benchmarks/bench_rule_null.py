"""How often the issue-14 bin rule fails a *perfect* fast simulation: the full simulation
against an independent sample of itself.

The rule of ``bench_delphes.py`` (per truth-pT x |eta| bin: the 68 % width of reco/truth
within 15 %, the efficiency within 3 sigma or 0.02) compares two finite samples. For
responses with a narrow core and a long low tail (electrons and photons) the 16 % quantile
can sit where the density is low, and the 68 % width of a few thousand objects then
fluctuates by 5-15 %. This benchmark measures that: it draws, many times, a "full" sample of
``--n`` particles per species and a "model" sample from the *same* full-simulation files,
disjoint from it, and applies the rule. A model that reproduces the full simulation exactly
cannot do better than this null distribution of failing bins.

Two modes for the model side:

* ``complement`` (default): every other particle of the species. With much more data than
  ``--n`` this is a model with small noise, like a Delphes card (a Gaussian on the judged
  particles' own truth), so only the full side fluctuates, as in ``bench_delphes.py``.
* ``equal``: another ``--n`` particles, or what is left if fewer (both sides fluctuate:
  the null of two full simulations; pessimistic for a card).

With ``--card JSON`` (``bench_delphes.py --json`` outputs) it prints, for every bin the card
fails, the fraction of null draws whose width ratio (or efficiency difference) is at least
as far from 1 (0) as the card's: a small fraction is a miss beyond the full simulation's
own fluctuation, a large one a failure the rule would also give a perfect model.

Usage::

    python benchmarks/bench_rule_null.py --full full800k.parquet [--full more.parquet] \\
        --n 20000 --draws 200 [--mode complement] [--card final_s1.json ...] [--out null.json]

The draws are reproducible (``--seed``); nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ariasim.io import read_table
from bench_delphes import PDG_OBJECT, RULE, bin_rule

#: Columns the rule reads.
COLUMNS = (
    "pdg",
    "object_type",
    "truth_pt_gev",
    "truth_eta",
    "truth_e_gev",
    "reco_pt_gev",
    "reco_e_gev",
)
KEY = ("object", "pt_low", "eta_low")
#: Fewest particles per species on the model side.
MIN_MODEL = 1000


def load(paths: Sequence[str]) -> pd.DataFrame:
    """The rule's columns of the rule's species, pooled over ``paths``."""
    parts = []
    for p in paths:
        t = read_table(p)
        missing = [c for c in COLUMNS if c not in t.columns]
        if missing:
            raise SystemExit(f"{p}: missing column(s) {', '.join(missing)}")
        t = t.loc[np.isin(np.abs(t["pdg"].to_numpy()), list(PDG_OBJECT)), list(COLUMNS)]
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def null_draws(
    full: pd.DataFrame, n: int, draws: int, mode: str, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per draw: failing bins per object; per draw and bin: width ratio, efficiency
    difference and verdicts (the ``full`` side is the ``n`` drawn particles)."""
    rng = np.random.default_rng(seed)
    pdg = np.abs(full["pdg"].to_numpy())
    objects = {o for o, _ in RULE}
    species = {p: np.flatnonzero(pdg == p) for p, o in PDG_OBJECT.items() if o in objects}
    for p, idx in species.items():
        if len(idx) < n + MIN_MODEL:
            raise SystemExit(
                f"--n {n}: only {len(idx)} {PDG_OBJECT[p]} particles in --full, at least "
                f"{n + MIN_MODEL} needed (the model side takes what --n leaves, up to --n "
                "in mode 'equal')"
            )
    counts, bins = [], []
    for d in range(draws):
        a_idx, m_idx = [], []
        for idx in species.values():
            perm = rng.permutation(idx)
            a_idx.append(perm[:n])
            m_idx.append(perm[n : 2 * n] if mode == "equal" else perm[n:])
        a = full.iloc[np.concatenate(a_idx)]
        m = full.iloc[np.concatenate(m_idx)]
        row: dict[str, Any] = {"draw": d}
        for obj, q in RULE:
            r = bin_rule(a, m, obj, q)
            row[obj] = int((~r["passed"].astype(bool)).sum())
            r = r.assign(draw=d, eff_diff=r.get("eff_delphes", np.nan) - r.get("eff_full", np.nan))
            bins.append(r)
        counts.append(row)
    c = pd.DataFrame(counts)
    c["total"] = c[[o for o, _ in RULE]].sum(axis=1)
    return c, pd.concat(bins, ignore_index=True)


def card_bins(paths: Sequence[str], source: str) -> pd.DataFrame:
    """The rule's bins of ``bench_delphes.py --json`` outputs (``source``: 'Delphes' or
    'ariasim fastsim'), one row per file and bin."""
    rows = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        if source not in d.get("rule", {}):
            raise SystemExit(f"{p}: no {source!r} rule table in this bench_delphes JSON")
        for b in d["rule"][source]["bins"]:
            if (b["object"], b["quantity"]) in RULE:
                rows.append({**b, "file": str(p)})
    return pd.DataFrame(rows)


def compare(card: pd.DataFrame, nb: pd.DataFrame) -> pd.DataFrame:
    """For each failing card bin: the fraction of null draws at least as far off."""
    out = []
    for _, b in card.loc[~card["passed"].astype(bool)].iterrows():
        sel = nb
        for k in KEY:
            sel = sel.loc[sel[k] == b[k]]
        row = {k: b[k] for k in (*KEY, "file")}
        if not b["eff_ok"]:
            diff = b["eff_delphes"] - b["eff_full"]
            row.update(what="efficiency", value=diff)
            row["p_null"] = float(np.mean(np.abs(sel["eff_diff"]) >= abs(diff)))
        else:
            ratio = b["width_ratio"]
            row.update(what="width", value=ratio)
            lr = np.abs(np.log(sel["width_ratio"].astype(float).dropna()))
            row["p_null"] = float(np.mean(lr >= abs(math.log(ratio)))) if len(lr) else math.nan
        row["null_fail_rate"] = float(np.mean(~sel["passed"].astype(bool)))
        out.append(row)
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="append", required=True, help="full-simulation table(s)")
    ap.add_argument("--n", type=float, default=20000, help="particles per species, full side")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--mode", choices=("complement", "equal"), default="complement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--card", action="append", default=[], help="bench_delphes.py --json output")
    ap.add_argument("--card-source", default="Delphes", help="'Delphes' or 'ariasim fastsim'")
    ap.add_argument("--out", help="write the summary here (JSON)")
    args = ap.parse_args(argv)
    if args.out and not args.out.endswith(".json"):
        raise SystemExit(f"--out {args.out}: must end in .json")
    n = int(args.n)
    full = load(args.full)
    counts, nb = null_draws(full, n, args.draws, args.mode, args.seed)
    objs = [o for o, _ in RULE]
    print(
        f"null of the bin rule: {args.draws} draws of {n} particles per species against "
        f"{'the rest of the species' if args.mode == 'complement' else f'another {n}'} "
        f"({', '.join(args.full)})"
    )
    print(f"{'object':16s} {'mean failing':>12s} {'P(all pass)':>11s}  failing bins: draws")
    summary: dict[str, Any] = {
        "n_per_species": n,
        "draws": args.draws,
        "mode": args.mode,
        "seed": args.seed,
        "full": args.full,
        "objects": {},
    }
    for o in [*objs, "total"]:
        dist = counts[o].value_counts().sort_index()
        print(
            f"{o:16s} {counts[o].mean():12.2f} {float((counts[o] == 0).mean()):11.3f}  "
            + ", ".join(f"{k}: {v}" for k, v in dist.items())
        )
        summary["objects"][o] = {
            "mean_failing": float(counts[o].mean()),
            "p_all_pass": float((counts[o] == 0).mean()),
            "distribution": {int(k): int(v) for k, v in dist.items()},
        }
    rate = (
        nb.assign(fail=~nb["passed"].astype(bool))
        .groupby(list(KEY), sort=False)["fail"]
        .mean()
        .sort_values(ascending=False)
    )
    print("bins failing in at least 5 % of the draws (a perfect model fails them as often):")
    summary["bin_fail_rate"] = []
    for k, v in rate.items():
        if v >= 0.05:
            print(f"  {k[0]:16s} pT >= {k[1]:5.0f} GeV, |eta| >= {k[2]:.1f}: {v:.2f}")
        summary["bin_fail_rate"].append(
            {"object": k[0], "pt_low": k[1], "eta_low": k[2], "rate": float(v)}
        )
    if args.card:
        card = card_bins(args.card, args.card_source)
        cmp_ = compare(card, nb)
        per_file = card.groupby("file")["passed"].apply(lambda s: int((~s.astype(bool)).sum()))
        print(f"\ncard ({args.card_source}): failing bins per file, and where they sit in the null")
        for f, k in per_file.items():
            frac = float((counts["total"] >= k).mean())
            print(f"  {f}: {k} failing; P(null >= {k}) = {frac:.3f}")
        print("each failing card bin: p_null = fraction of null draws at least as far off")
        for _, r in cmp_.iterrows():
            print(
                f"  {r['object']:16s} pT >= {r['pt_low']:5.0f}, |eta| >= {r['eta_low']:.1f}: "
                f"{r['what']} {r['value']:.3f}, p_null {r['p_null']:.3f} "
                f"(null fails this bin in {r['null_fail_rate']:.2f}) [{Path(r['file']).name}]"
            )
        summary["card"] = {
            "files": {str(f): int(k) for f, k in per_file.items()},
            "failing_bins": cmp_.to_dict(orient="records"),
        }
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
