"""Active simulation control against brute force, side by side in the same run.

The anchor is what a user does without ariasim: simulate every event through every stage
(brute force). Both arms run here with the same CPU budget on the same machine; the
figures are ratios of the two (Kish effective final-level events per CPU second, the
controller's training and decisions counted), with the final-level histograms compared
bin by bin against a long brute-force reference run (built in resumable chunks: run the
command again to go on where it stopped).

Usage (the figures of BENCHMARKS.md):

    python benchmarks/bench_active.py --pipeline muon --reference-chunks 300 \\
        --brute-chunks 60 --coverage-seeds 10 --coverage-chunks 20 --workers 2
    python benchmarks/bench_active.py --pipeline collider --reference-chunks 200 \\
        --brute-chunks 40 --coverage-seeds 20 --coverage-chunks 20 --workers 2
    python benchmarks/bench_active.py --pipeline muon --size ci --reference-chunks 100 \\
        --brute-chunks 12 --coverage-seeds 0 --scan --workers 2

``--selection bright`` runs the muon pipeline with its bright-event selection
(``MuonConfig.selection``); ``--min-pass`` sets ``ActiveConfig.min_pass``.

``--reference DIR`` compares with an existing brute-force run (e.g. the one-stage muon
pipeline's, ``--preview-fraction 0``: the split photon stage has its distribution) instead
of running one; ``--preview-fraction`` sets the muon pipeline's preview.

Writes ``benchmarks/out/active-<pipeline>-<size>/`` (the reference run, the arms,
``summary.json`` and ``report.html``) and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ariasim.active.engine import ActiveConfig, round_chunks
from ariasim.apps.active import (
    evaluate_active,
    load_reference,
    resolve_pipeline,
    run_pipeline,
    write_evaluation,
)
from ariasim.parallel import get_client, read_parts


def chunk_sums(arm: Path, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per finished chunk of an arm's run folder: the chunk indices and a (3, n) array of
    the sum of the final weights, the sum of their squares and the CPU seconds of the
    stages and decisions."""
    cpu = read_parts(arm, "cpu", None).sort_values("chunk")
    chunks = cpu["chunk"].to_numpy(np.int64)
    pos = {int(c): k for k, c in enumerate(chunks)}
    cols = [c for c in cpu.columns if c.startswith("cpu_")]
    sums = np.zeros((3, len(chunks)))
    sums[2] = cpu[cols].sum(axis=1).to_numpy(float)
    final = read_parts(arm, "final", chunks.tolist())
    if len(final):
        k = np.array([pos[int(e) // chunk_size] for e in final["event_id"].to_numpy()])
        w = final["weight"].to_numpy(float)
        np.add.at(sums[0], k, w)
        np.add.at(sums[1], k, w**2)
    return chunks, sums


def steady_state(evaluation: Path, cfg: ActiveConfig, n_boot: int = 1000) -> dict | None:
    """The gain on the controlled arm's chunks decided by a trained model only (after the
    learning phase, whose CPU a long production run amortises): their Kish N_eff per CPU
    second over the whole brute-force arm's, with the 16-84 % interval from resampling
    the chunks of each (the controllers' training CPU is left out)."""
    rounds = [
        int(info.parent.name.split("-")[1])
        for info in sorted((evaluation / "controlled" / "controllers").glob("round-*/round.json"))
        if json.loads(info.read_text())["stages"]
    ]
    if not rounds:
        return None
    first = round_chunks(min(rounds), cfg).start
    _, b = chunk_sums(evaluation / "brute", cfg.chunk_size)
    chunks, c_all = chunk_sums(evaluation / "controlled", cfg.chunk_size)
    c = c_all[:, chunks >= first]

    def eff(x: np.ndarray) -> float:
        return float(x[0].sum() ** 2 / x[1].sum() / x[2].sum()) if x[1].sum() > 0 else np.nan

    rng = np.random.default_rng(0)
    boot = [
        eff(c[:, rng.integers(0, c.shape[1], c.shape[1])])
        / eff(b[:, rng.integers(0, b.shape[1], b.shape[1])])
        for _ in range(n_boot)
    ]
    lo, hi = np.nanquantile(boot, [0.16, 0.84])
    return {
        "first_controlled_chunk": int(first),
        "controlled_chunks": int(c.shape[1]),
        "learning_cpu_fraction": float(1.0 - c[2].sum() / c_all[2].sum()),
        "gain": eff(c) / eff(b),
        "gain_16": float(lo),
        "gain_84": float(hi),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", default="muon")
    ap.add_argument("--size", default="default", choices=("default", "ci"))
    ap.add_argument("--reference-chunks", type=int, default=300)
    ap.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="a finished brute-force run to compare with (e.g. of the one-stage muon "
        "pipeline, which has the split pipeline's distribution) instead of running one",
    )
    ap.add_argument(
        "--preview-fraction",
        type=float,
        default=None,
        help="muon pipeline: the preview's share of the photons (0: one photon stage)",
    )
    ap.add_argument(
        "--selection",
        default=None,
        choices=("upgoing", "bright"),
        help="muon pipeline: the final selection (MuonConfig.selection)",
    )
    ap.add_argument(
        "--min-pass",
        type=int,
        default=None,
        help="passing events before the first controller is trained (ActiveConfig.min_pass)",
    )
    ap.add_argument("--brute-chunks", type=int, default=60)
    ap.add_argument("--coverage-seeds", type=int, default=10)
    ap.add_argument("--coverage-chunks", type=int, default=20)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--scan", action="store_true", help="aggressiveness, a_min, training size")
    ap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="also measure the bias of threshold mode at this pass probability",
    )
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    out = args.out or Path("benchmarks/out") / f"active-{args.pipeline}-{args.size}"
    muon_overrides = {
        k: v
        for k, v in (("preview_fraction", args.preview_fraction), ("selection", args.selection))
        if v is not None
    }
    if muon_overrides:
        if args.pipeline != "muon":
            ap.error("--preview-fraction and --selection are for --pipeline muon")
        from ariasim.apps.muons import make_muon_pipeline

        pipe = make_muon_pipeline(args.size, **muon_overrides)
    else:
        pipe = resolve_pipeline(args.pipeline, args.size)
    chunk = args.chunk_size or pipe.chunk_size
    cfg = ActiveConfig(chunk_size=chunk, **({"min_pass": args.min_pass} if args.min_pass else {}))

    def say(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    with get_client(workers=args.workers) as client:
        if args.reference is None:
            say(f"reference: {args.reference_chunks} brute-force chunks (resumable)")
            run_pipeline(
                pipe,
                out / "reference",
                seed=10_000 + args.seed,
                n_chunks=args.reference_chunks,
                config=ActiveConfig(chunk_size=chunk, mode="brute"),
                client=client,
                progress=lambda d, t: say(f"reference chunk {d}/{t}") if d % 10 == 0 else None,
            )
        ref = load_reference(args.reference or out / "reference")
        ev = evaluate_active(
            pipe,
            out / "evaluation",
            reference=ref,
            brute_chunks=args.brute_chunks,
            config=cfg,
            seed=args.seed,
            coverage_seeds=args.coverage_seeds,
            coverage_chunks=args.coverage_chunks,
            scan=(
                {
                    "aggressiveness": [0.5, 2.0, 4.0],
                    "a_min": [0.003, 0.03],
                    "max_train": [2000, 8000],
                }
                if args.scan
                else None
            ),
            threshold_check=args.threshold,
            client=client,
            progress=say,
        )
    wall = time.perf_counter() - t0
    steady = steady_state(out / "evaluation", cfg)
    if steady is not None:
        ev.summary["steady_state"] = steady
    ev.summary["benchmark"] = {
        "command": "python benchmarks/bench_active.py " + " ".join(argv or sys.argv[1:]),
        "wall_s": wall,
        "workers": args.workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
    }
    write_evaluation(ev, pipe, json_path=out / "summary.json", report_path=out / "report.html")
    s = ev.summary
    print(f"pipeline {pipe.name}: wall {wall:.0f} s")
    for arm in ("reference", "brute", "controlled"):
        a = s["arms"].get(arm)
        if a:
            print(
                f"  {arm:10s} generated {a['n_generated']:>9d}  final {a['n_final']:>6d}  "
                f"N_eff {a['n_eff']:8.1f}  CPU {a['cpu_s']:8.1f} s  "
                f"N_eff/CPU-s {a['n_eff_per_cpu_s']:.4g}  rate {a['rate']:.4g} ± "
                f"{a['rate_err']:.2g}"
            )
    keys = (
        "gain",
        "gain_16",
        "gain_84",
        "chi2_ndf",
        "ndf",
        "max_abs_pull",
        "rate_pull",
        "coverage_68",
        "coverage_68_err",
        "coverage_runs",
    )
    print(json.dumps({k: s[k] for k in keys if k in s}, indent=1))
    if "steady_state" in s:
        print("  after the learning phase:", json.dumps(s["steady_state"]))
    if "threshold_mode" in s:
        print("  threshold mode:", json.dumps(s["threshold_mode"]))
    for row in s.get("scan", []):
        print(
            f"  scan {row['parameter']}={row['value']}: gain {row['gain']:.2f}, "
            f"rate pull {row['pull']:+.2f}"
        )
    print(f"wrote {out / 'summary.json'} and {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
