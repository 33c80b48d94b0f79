"""Domain shifts: correcting existing events against re-simulating them, in the same run.

The anchor is what a user does without ariasim: re-simulate the events in the new domain
(new ice model, modified detector, full simulation). Each application here simulates both
domains with ariasim's simulators (their CPU time is measured), learns the shift on one half,
corrects the other half, and reports

* the classifier two-sample AUC of the corrected sample against fresh target events (goal
  <= 0.52 at 20k per side) and the per-feature W1 against the floor of two fresh samples
  (goal <= 2x);
* the speed: corrected events per CPU second against simulated target events per CPU
  second (the correction alone, and with the training counted).

Usage (the figures of BENCHMARKS.md):

    python benchmarks/bench_shift.py --n 20000                       # every application
    python benchmarks/bench_shift.py --n 20000 --apps ice,detector --methods flow,reweight
    python benchmarks/bench_shift.py --n 20000 --apps detector --methods flow+reweight
    python benchmarks/bench_shift.py --n 20000 --apps active-bias --methods reweight,stratified
    python benchmarks/bench_shift.py --n 20000 --apps detector --methods flow+reweight \
        --quantile-knots 500 --seed 1
    python benchmarks/bench_shift.py --n 20000 --apps detector --methods flow+reweight \
        --cross-fit 2 --weight-decay 1e-3 --seed 1
    python benchmarks/bench_shift.py --n 20000 --apps detector --methods flow+reweight \
        --atom-tolerance off --count-levels 0 --seed 1   # the codec before interior atoms
    python benchmarks/bench_shift.py --n 20000 --apps detector \
        --methods quantile,quantile+reweight --seed 1   # chained quantile regression
    python benchmarks/bench_shift.py --n 20000 --apps detector --methods quantile+reweight \
        --cross-fit 2 --reweight-folds 5 --average-folds --seed 1   # bagged reweighter
    python benchmarks/bench_shift.py --n 20000 --apps detector \
        --methods quantile,quantile+reweight --cross-fit 2 --bags 5 --bag-mode assign --seed 1
    python benchmarks/bench_shift.py --n 20000 --n-train 60000 --apps detector \
        --methods quantile+reweight --cross-fit 2 --seed 1   # learn from 3x the judged rows
    python benchmarks/bench_shift.py --n 20000 --n-train 60000 --apps fastsim \
        --methods quantile+reweight --cross-fit 2 --seed 1 \
        --quantile-options '{"min_samples_leaf": 800}'   # the weight-ceiling case of issue 12

``--n`` rows per domain are judged (20,000: the issue's size); ``--n-train`` rows per domain
are learned from (default: ``--n``); ``--n-train-source`` source rows (fastsim and
photon-surrogate, the applications that can simulate extra source rows; default 10x
``--n-train`` for fastsim's quantile methods, else ``--n-train``; ``--n-train-source`` equal
to ``--n-train`` learns from no extra rows). The columns "w/ training" count the fit and the
correction; "w/ sim" also count simulating the training target rows, the sample a user must
make to learn the shift (and the extra source rows of ``--n-train-source``).

Writes ``benchmarks/out/shift-<app>-<method><options>-<n>[-t<n_train>][-ts<n_train_source>]
-s<seed>/`` (options:
``[-q<knots>][-at<tol>][-cl<levels>][-wd<decay>][-cf<K>][-rf<K>][-avg][-ctx]
[-bag<B>[-<mode>][-bf<f>]][-qo-<name><value>...]``; report.html, summary.json, model/) and
``benchmarks/out/shift-<n>[-t<n_train>][-ts<n_train_source>]-s<seed>.json`` with every figure,
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from ariasim.apps.shift.applications import APPLICATIONS, run_application


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="rows per domain to judge on")
    ap.add_argument(
        "--n-train",
        type=int,
        default=None,
        help="rows per domain to learn from (default: --n; not for active-bias)",
    )
    ap.add_argument(
        "--n-train-source",
        type=int,
        default=None,
        help="source rows to learn from (fastsim and photon-surrogate only: the extra rows "
        "come from their own fast simulation / photon surrogate; default: 10x --n-train for "
        "fastsim's quantile methods, else --n-train; equal to --n-train: no extra rows)",
    )
    ap.add_argument("--apps", default=",".join(APPLICATIONS))
    ap.add_argument("--methods", default=None, help="default: each application's own")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--quantile-knots",
        type=int,
        default=None,
        help="FlowMorpher's Gaussianising map (flow, flow+reweight only; default off)",
    )
    ap.add_argument(
        "--atom-tolerance",
        default=None,
        help="FlowMorpher's interior atoms (flow, flow+reweight): cluster width in robust sd, "
        "or 'off' (default: FlowMorpher's, 0.005)",
    )
    ap.add_argument(
        "--count-levels",
        type=int,
        default=None,
        help="FlowMorpher's probability map of counts with at most this many integers in "
        "their range (0: off; default: FlowMorpher's, 32)",
    )
    ap.add_argument(
        "--cross-fit",
        type=int,
        default=None,
        help="MorphReweighter's cross-fitting folds (flow+reweight, flow-matching+reweight)",
    )
    ap.add_argument(
        "--cross-fit-morph",
        choices=("folds", "refit"),
        default=None,
        help="with --cross-fit: the fold morphers (default) or one refitted on all rows",
    )
    ap.add_argument(
        "--reweight-folds",
        type=int,
        default=None,
        help="the reweighter's out-of-fold folds (*+reweight; default: ClassifierReweighter's, 2)",
    )
    ap.add_argument(
        "--average-folds",
        action="store_true",
        help="weights from the mean of the reweighter's fold classifiers (*+reweight; bagging)",
    )
    ap.add_argument(
        "--reweight-context-first",
        action="store_true",
        help="the reweighter learns the context ratio first, then the rest (*+reweight; "
        "ClassifierReweighter(context_first=True))",
    )
    ap.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="FlowMorpher's Adam weight decay (flow, flow+reweight)",
    )
    ap.add_argument(
        "--bags",
        type=int,
        default=None,
        help="ChainedQuantileMorpher's n_bags (quantile, quantile+reweight; default 1: no bagging)",
    )
    ap.add_argument(
        "--bag-mode",
        choices=("average", "assign"),
        default=None,
        help="with --bags: mean of the bags' knots (default) or one bag per row by hash",
    )
    ap.add_argument(
        "--bag-fraction",
        type=float,
        default=None,
        help="with --bags: fraction of each domain's rows per bag (default 0.5)",
    )
    ap.add_argument(
        "--calibration-fraction",
        type=float,
        default=None,
        help="ChainedQuantileMorpher's held-out calibration of its CDFs (quantile, "
        "quantile+reweight; default 0: off)",
    )
    ap.add_argument(
        "--quantile-options",
        default=None,
        metavar="JSON",
        help="more ChainedQuantileMorpher options as a JSON object (quantile, "
        'quantile+reweight; e.g. {"min_samples_leaf": 800}); they win over the other flags',
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)
    quantile_options = parse_options(args.quantile_options, "--quantile-options", ap.error)
    if args.n_train is not None and args.n_train < 200:
        ap.error(f"--n-train: must be an integer >= 200, got {args.n_train}")
    if args.n_train is not None and "active-bias" in args.apps.split(","):
        ap.error("--n-train: the active-bias application learns from its own control sample")
    if args.n_train_source is not None:
        cannot = [
            a
            for a in args.apps.split(",")
            if a in APPLICATIONS and not APPLICATIONS[a].extra_source
        ]
        if cannot:
            can = ", ".join(a for a, app in APPLICATIONS.items() if app.extra_source)
            ap.error(
                f"--n-train-source: the {', '.join(cannot)} application(s) cannot simulate "
                f"extra source rows ({can} can)"
            )
    size = f"{args.n}" + ("" if args.n_train is None else f"-t{args.n_train}")
    size += "" if args.n_train_source is None else f"-ts{args.n_train_source}"
    rows = []
    for name in args.apps.split(","):
        methods = args.methods.split(",") if args.methods else [APPLICATIONS[name].method]
        for method in methods:
            weights_only = ("reweight", "stratified")
            if name == "active-bias" and method not in weights_only:
                continue
            if name != "active-bias" and method == "stratified":
                continue
            opts: dict = {}
            tag = ""
            if args.quantile_knots is not None and method in ("flow", "flow+reweight"):
                opts["quantile_knots"] = args.quantile_knots
                tag += f"-q{args.quantile_knots}"
            if args.atom_tolerance is not None and method in ("flow", "flow+reweight"):
                off = args.atom_tolerance == "off"
                opts["atom_tolerance"] = None if off else float(args.atom_tolerance)
                tag += f"-at{args.atom_tolerance}"
            if args.count_levels is not None and method in ("flow", "flow+reweight"):
                opts["count_levels"] = args.count_levels
                tag += f"-cl{args.count_levels}"
            if args.weight_decay is not None and method in ("flow", "flow+reweight"):
                opts["weight_decay"] = args.weight_decay
                tag += f"-wd{args.weight_decay:g}"
            if args.cross_fit is not None and method.endswith("+reweight"):
                opts["cross_fit"] = args.cross_fit
                tag += f"-cf{args.cross_fit}"
                if args.cross_fit_morph is not None:
                    opts["cross_fit_morph"] = args.cross_fit_morph
                    tag += f"-{args.cross_fit_morph}"
            if args.reweight_folds is not None and method.endswith("+reweight"):
                opts["reweight_n_folds"] = args.reweight_folds
                tag += f"-rf{args.reweight_folds}"
            if args.average_folds and method.endswith("+reweight"):
                opts["reweight_average_folds"] = True
                tag += "-avg"
            if args.reweight_context_first and method.endswith("+reweight"):
                opts["reweight_context_first"] = True
                tag += "-ctx"
            if args.bags is not None and method in ("quantile", "quantile+reweight"):
                opts["n_bags"] = args.bags
                tag += f"-bag{args.bags}"
                if args.bag_mode is not None:
                    opts["bag_mode"] = args.bag_mode
                    tag += f"-{args.bag_mode}"
                if args.bag_fraction is not None:
                    opts["bag_fraction"] = args.bag_fraction
                    tag += f"-bf{args.bag_fraction:g}"
            if args.calibration_fraction is not None and method in (
                "quantile",
                "quantile+reweight",
            ):
                opts["calibration_fraction"] = args.calibration_fraction
                tag += f"-cal{args.calibration_fraction:g}"
            if quantile_options and method in ("quantile", "quantile+reweight"):
                opts.update(quantile_options)
                named = "".join(f"-{k}{v}" for k, v in sorted(quantile_options.items()))
                tag += "-qo" + re.sub(r"[^A-Za-z0-9._-]", "", named)
            options = opts or None
            folder = args.out / f"shift-{name}-{method}{tag}-{size}-s{args.seed}"
            t0 = time.time()
            s = run_application(
                name,
                folder,
                n=args.n,
                n_train=args.n_train,
                n_train_source=args.n_train_source,
                method=method,
                seed=args.seed,
                options=options,
                overwrite=True,
                progress=lambda m: print(m, flush=True),
            )
            c = s["cpu"]
            row = {
                "application": name,
                "method": method,
                "seed": args.seed,
                "n": args.n,
                "n_train": s.get("n_train_per_side"),
                "n_train_source": s["n_train"][0] if s.get("n_train") else None,
                "options": options,
                "auc_before": s["auc_before"]["value"],
                "auc_after": s["auc_after"]["value"],
                "auc_after_se": s["auc_after"]["se"],
                "max_w1_ratio_before": max((s["w1_ratio_before"] or {"": float("nan")}).values()),
                "max_w1_ratio_after": max((s["w1_ratio_after"] or {"": float("nan")}).values()),
                "goal_met": s["goal"]["auc_met"] and s["goal"]["w1_met"],
                "wall_s": time.time() - t0,
                **{k: v for k, v in c.items() if not isinstance(v, dict)},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "command": "python benchmarks/bench_shift.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"shift-{size}-s{args.seed}.json").write_text(json.dumps(meta, indent=1))
    print()
    print(
        f"{'application':18s} {'method':14s} {'AUC before':>10s} {'AUC after':>10s} "
        f"{'W1/floor':>9s} {'speed-up':>10s} {'w/ training':>11s} {'w/ sim':>8s}"
    )
    for r in rows:
        sp = r.get("speedup_apply", r.get("gain_vs_unbiased_mode", float("nan")))
        sw = r.get("speedup_with_training", float("nan"))
        ss = r.get("speedup_with_simulation", float("nan"))
        print(
            f"{r['application']:18s} {r['method']:14s} {r['auc_before']:10.4f} "
            f"{r['auc_after']:10.4f} {r['max_w1_ratio_after']:9.2f} {sp:10.3g} {sw:11.3g} "
            f"{ss:8.3g}"
        )
    return 0


def parse_options(text: str | None, flag: str, error) -> dict:
    """The JSON object of ``flag`` (``None``: no options); anything else is a one-line
    ``error`` naming the flag.

    Example:
        >>> parse_options('{"min_samples_leaf": 800}', "--quantile-options", print)
        {'min_samples_leaf': 800}
    """
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        error(f"{flag}: not valid JSON ({exc.msg} at character {exc.pos}): {text!r}")
        return {}
    if not isinstance(value, dict):
        error(f"{flag}: must be a JSON object of option names and values, got {text!r}")
        return {}
    return value


if __name__ == "__main__":
    raise SystemExit(main())
