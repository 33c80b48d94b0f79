"""Trigger-level total charge of the muon pipeline in brute force: where the bright-event
selection's threshold (``MuonConfig.min_charge``) comes from.

Runs ``--events`` generated events through every stage (chunks of ``--chunk``, chunk
``k`` with seed ``--seed + k``) and prints the median and upper quantiles of the total
charge of the triggered events, and the final efficiency (per generated event) and share
of the triggered rate of a cut at each quantile with ``n_channels >= min_channels``.
``min_charge`` is the 90 % quantile (about three times the median), rounded.

Usage (the figures of BENCHMARKS.md):

    python benchmarks/muon_charge_quantiles.py --size default --events 100000 --chunk 5000 \\
        --seed 900
    python benchmarks/muon_charge_quantiles.py --size ci --events 300000 --chunk 10000 \\
        --seed 500
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from ariasim.apps.muons import MuonConfig, chain_stages, make_muon_pipeline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="ci", choices=("default", "ci"))
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=500)
    args = ap.parse_args(argv)

    pipe = make_muon_pipeline(args.size)
    cfg = MuonConfig.for_size(args.size)
    parts = []
    for c in range(args.events // args.chunk):
        ids = np.arange(c * args.chunk, (c + 1) * args.chunk)
        tables, _ = chain_stages(pipe, ids, args.seed + c)
        parts.append(tables["trigger"][["event_id", "gen_weight", "total_charge", "n_channels"]])
    trig = pd.concat(parts, ignore_index=True)
    n_gen = args.events // args.chunk * args.chunk
    q = trig["total_charge"].to_numpy(float)
    cuts = {}
    for level in (0.5, 0.8, 0.9, 0.95, 0.99):
        thr = float(np.quantile(q, level))
        keep = (q >= thr) & (trig["n_channels"].to_numpy() >= cfg.min_channels)
        cuts[f"q{int(level * 100)}"] = {
            "charge": thr,
            "final_efficiency": float(keep.sum() / n_gen),
            "share_of_triggered_rate": float(
                trig["gen_weight"][keep].sum() / trig["gen_weight"].sum()
            ),
        }
    print(
        json.dumps(
            {
                "size": args.size,
                "generated": n_gen,
                "triggered": len(trig),
                "min_channels": cfg.min_channels,
                "cuts": cuts,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
