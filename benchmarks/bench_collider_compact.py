"""Compact response formulas (issue 14): formula sizes, fronts and the 21-bin rule.

Reads a response model (``ariasim fit response ... --events even``, default method
``compact``) and the full-simulation table; fast-simulates the held-out odd events with
ariasim's fastsim (the card's formulas with Delphes semantics) and prints, per object, the
bin rule of issue 14 (7 truth-pT quantile bins x |eta| 0-0.8-1.6-2.5: 68 % width of
reco/truth within 15 %, efficiency within 3 sigma or 0.02) as Markdown, plus the sympy
node counts of the card's formulas and the regions flagged as having no consistent
compact form. Usage::

    python benchmarks/bench_collider_compact.py MODEL.json FULL.parquet [--seed S]
        [--objects muon,charged_hadron,electron,photon] [--stock]
"""

from __future__ import annotations

import argparse

import pandas as pd

from ariasim.apps.collider.compact import bin_rule_table
from ariasim.apps.collider.fastsim import fastsim
from ariasim.apps.collider.model import ResponseModel
from ariasim.apps.collider.objects import select_events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("table")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--objects", default="muon,charged_hadron,electron,photon")
    ap.add_argument("--stock", action="store_true", help="also the stock-form card")
    args = ap.parse_args()
    model = ResponseModel.load(args.model)
    objects = args.objects.split(",")
    print("| object | quantity | regions | nodes per region | max nodes | flagged |")
    print("|---|---|---|---|---|---|")
    for name in objects:
        obj = model.objects[name]
        flags = obj.metadata.get("no_consistent_form", [])
        for q in ("efficiency", "scale", "resolution"):
            sizes = [r.formula.complexity for r in getattr(obj, q)]
            bad = [f"{f['eta'][0]:g}-{f['eta'][1]:g}" for f in flags if f["quantity"] == q]
            print(
                f"| {name} | {q} | {len(sizes)} | {', '.join(map(str, sizes))} | "
                f"{max(sizes)} | {', '.join(bad) or '-'} |"
            )
    full = pd.read_parquet(args.table)
    held = select_events(full, "odd")
    _rule(held, model, objects, args.seed, "compact card")
    if args.stock:
        from ariasim.apps.collider.stock import fit_stock

        stock = fit_stock(select_events(full, "even"), objects=objects)
        _rule(held, stock, objects, args.seed, "stock-form card (same training events)")


def _rule(held: pd.DataFrame, model: ResponseModel, objects: list[str], seed: int, label: str):
    fast = fastsim(held, model, seed=seed)
    tab = bin_rule_table(held, fast, objects)
    print(f"\n{label}:")
    print()
    print(
        "| object (ratio) | bins passing | efficiency ok | width ok | width within 3 sigma "
        "| full-sim width error > 15 % | failing bins (pT, |eta|, width ratio) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, g in tab.groupby("object", sort=False):
        fails = [
            f"{r.pt_low:.3g}-{r.pt_high:.3g}, {r.eta_low:g}"
            + ("" if r.eff_ok else " eff")
            + ("" if r.width_ok else f" w x{r.width_ratio:.2f}")
            for r in g.itertuples()
            if not r.ok
        ]
        print(
            f"| {name} ({g['quantity'].iloc[0]}) | {int(g['ok'].sum())}/{len(g)} | "
            f"{int(g['eff_ok'].sum())} | {int(g['width_ok'].sum())} | "
            f"{int(g['width_within_3sigma'].sum())} | "
            f"{int((g['width_full_rel_err'] > 0.15).sum())} | {'; '.join(fails)} |"
        )


if __name__ == "__main__":
    main()
