"""Two response cards in real Delphes, paired run by run: which one passes the bin rule more often.

Delphes draws its smearing from ``RandomSeed``, and the full simulation's sample has its own
fluctuations, so one run of a card against the full simulation passes a bin or two more or
fewer by chance alone (``bench_rule_null.py``: a perfect model fails about one e+gamma bin
per 100k-particle sample). Two cards are compared here on the same particles with the same
Delphes seed, many times:

``run``
    For each Delphes seed (in order) and each part ``I`` of ``K`` of an independent
    full-simulation table (``bench_delphes.py --heldout FILE --heldout-part I/K``), every
    card runs once through ``bench_delphes.py`` (export, HepMC3, ``DelphesHepMC3`` with
    ``set RandomSeed N``, the bin rule), ``--jobs`` at once. A seed starts only before
    ``--cutoff`` (UTC ``HH:MM``, the first such moment after the start, so past midnight
    is the next day's), so a campaign with a fixed end judges whole seeds. Each
    run writes ``runs/<card>_p<I>_s<N>.json`` (and ``.log``) under ``--out``; a run whose
    JSON exists is not repeated.
``summarise``
    Pairs the runs of ``--base`` and ``--cand`` by (part, seed) and prints, for the bins in
    energy (electrons, photons) or pT of the objects present: each card's failing bins per
    sample, the paired gain (base fails - candidate fails per run) with its standard error,
    and per bin the failures of each card, the mean width ratio, the mean efficiency
    difference and McNemar's discordant counts ``b`` (the candidate fails, the base passes)
    and ``c`` (the reverse) with ``z = (b - c) / sqrt(b + c)``. Four checks, the decision
    rule used for the cards of issue 14, item 4 (BENCHMARKS.md, Continuation 26):

    1. more bins of all objects pass with the candidate, and the gain exceeds two standard
       errors;
    2. more bins of ``--changed`` (the object whose card differs) pass;
    3. no bin of ``--changed`` has its mean width ratio moved more than ``--move-max``
       further from 1 and outside the rule's 15 %;
    4. no bin of ``--changed`` fails significantly more often: ``z <= --z-max``.

    ``--json`` writes all of it (``summary.json``).

Usage::

    python benchmarks/bench_delphes_paired.py run --delphes DIR [--root-env VENV]
        --heldout S.parquet --card B=base.json --card X=cand.json --seeds 360-460
        [--parts 4] [--objects electron,photon] [--cutoff 19:35] [--jobs 2] --out DIR
    python benchmarks/bench_delphes_paired.py summarise --out DIR --base B --cand X
        [--changed electron] [--seeds 360-420] [--json summary.json]

References:
    Q. McNemar, "Note on the sampling error of the difference between correlated
    proportions or percentages", Psychometrika 12 (1947) 153 (the paired test of a bin).
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057, arXiv:1307.6346.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ariasim.utils import write_json
from bench_delphes import RULE, parse_objects

HERE = Path(__file__).resolve().parent
#: a card's tag: the file names of its runs start with it
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_RUN = re.compile(r"^(?P<tag>.+)_p(?P<part>\d+)_s(?P<seed>\d+)\.json$")
#: the quantity the rule judges per object (electron pT is information only)
JUDGED = dict(RULE)
BinKey = tuple[str, float, float]


def parse_cards(items: Sequence[str]) -> dict[str, Path]:
    """``TAG=PATH`` pairs (unique tags, existing files); a one-line ``SystemExit`` naming
    ``--card`` otherwise."""
    cards: dict[str, Path] = {}
    for item in items:
        tag, sep, path = item.partition("=")
        if not sep or not _TAG.fullmatch(tag):
            raise SystemExit(f"--card {item!r}: expected TAG=PATH with TAG of letters, digits, _ -")
        if tag in cards:
            raise SystemExit(f"--card {item!r}: the tag {tag!r} is given twice")
        if not Path(path).is_file():
            raise SystemExit(f"--card {item!r}: no file {path}")
        cards[tag] = Path(path).resolve()
    if len(cards) < 2:
        raise SystemExit("--card: give at least two cards (TAG=PATH each)")
    return cards


def parse_seeds(text: str) -> list[int]:
    """``a-b`` (inclusive) or a comma list of positive integers, in the order given."""
    out: list[int] = []
    try:
        for item in text.split(","):
            lo, sep, hi = item.strip().partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise SystemExit(f"--seeds {text!r}: expected a-b or a comma list of integers") from None
    if not out or min(out) < 1:
        raise SystemExit(f"--seeds {text!r}: Delphes seeds are positive integers")
    return out


def parse_cutoff(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """``HH:MM`` (UTC) as the first such moment after ``now`` (default: the current UTC
    time), so that a cut-off past midnight is the next day's; None for None.

    Example:
        >>> parse_cutoff("00:30", dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)).isoformat()
        '2026-12-08T00:30:00+00:00'
    """
    if text is None:
        return None
    try:
        hm = dt.datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise SystemExit(f"--cutoff {text!r}: expected HH:MM (UTC)") from None
    now = dt.datetime.now(dt.UTC) if now is None else now
    at = dt.datetime.combine(now.date(), hm, tzinfo=dt.UTC)
    return at if at > now else at + dt.timedelta(days=1)


def run_name(tag: str, part: int, seed: int) -> str:
    """The file stem of one run."""
    return f"{tag}_p{part}_s{seed}"


def run_one(args: argparse.Namespace, tag: str, card: Path, part: int, seed: int) -> int:
    """One ``bench_delphes.py`` run of ``card`` on part ``part`` with Delphes seed ``seed``;
    its return code (0 at once where its JSON exists)."""
    runs = Path(args.out) / "runs"
    out = runs / (run_name(tag, part, seed) + ".json")
    if out.is_file():
        return 0
    cmd = [sys.executable, str(HERE / "bench_delphes.py"), "--delphes", args.delphes]
    cmd += ["--root-env", args.root_env] if args.root_env else []
    cmd += ["--heldout", args.heldout, "--heldout-part", f"{part}/{args.parts}"]
    cmd += ["--objects", args.objects, "--response", str(card), "--json", str(out)]
    cmd += ["--sizes", "", "--delphes-seed", str(seed)]
    with open(runs / (run_name(tag, part, seed) + ".log"), "w") as log:
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def cmd_run(args: argparse.Namespace) -> int:
    cards = parse_cards(args.card)
    seeds = parse_seeds(args.seeds)
    cutoff = parse_cutoff(args.cutoff)
    parse_objects(args.objects)  # a bad name: one line now, not a failure in every run
    if args.parts < 1:
        raise SystemExit(f"--parts {args.parts}: expected a positive integer")
    if not Path(args.heldout).is_file():
        raise SystemExit(f"--heldout: no file {args.heldout}")
    if not Path(args.delphes, "DelphesHepMC3").is_file():
        raise SystemExit(f"--delphes: no DelphesHepMC3 in {args.delphes} (build Delphes there)")
    (Path(args.out) / "runs").mkdir(parents=True, exist_ok=True)
    jobs = [(t, c, p) for p in range(1, args.parts + 1) for t, c in cards.items()]
    bad = 0
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for seed in seeds:
            if cutoff is not None and dt.datetime.now(dt.UTC) > cutoff:
                print(f"cut-off {args.cutoff} UTC passed: seed {seed} and later not started")
                break
            rcs = list(pool.map(lambda j, s=seed: run_one(args, j[0], j[1], j[2], s), jobs))
            bad += sum(rc != 0 for rc in rcs)
            print(f"seed {seed}: {len(rcs)} runs, return codes {sorted(set(rcs))}", flush=True)
    return 1 if bad else 0


# --------------------------------------------------------------------------- summary


def load_runs(
    out: str | Path, tag: str, seeds: set[int] | None = None
) -> dict[tuple[int, int], dict[BinKey, Mapping[str, Any]]]:
    """The judged Delphes bins of every run of ``tag`` under ``out/runs``: per (part,
    seed), per (object, pT low edge, |eta| low edge), the ``bench_delphes.py`` row."""
    got: dict[tuple[int, int], dict[BinKey, Mapping[str, Any]]] = {}
    for f in sorted(Path(out, "runs").glob(f"{tag}_p*_s*.json")):
        m = _RUN.match(f.name)
        if m is None or m["tag"] != tag:
            continue
        part, seed = int(m["part"]), int(m["seed"])
        if seeds is not None and seed not in seeds:
            continue
        try:
            bins = json.loads(f.read_text())["rule"]["Delphes"]["bins"]
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise SystemExit(
                f"{f}: not a bench_delphes.py result with a Delphes rule ({e})"
            ) from None
        got[(part, seed)] = {
            (b["object"], float(b["pt_low"]), float(b["eta_low"])): b
            for b in bins
            if JUDGED.get(b["object"]) == b["quantity"]
        }
    return got


def _width(row: Mapping[str, Any]) -> float:
    w = row.get("width_ratio")
    return float(w) if w is not None else math.nan


def _deff(row: Mapping[str, Any]) -> float:
    a, b = row.get("eff_full"), row.get("eff_delphes")
    return float(b) - float(a) if a is not None and b is not None else math.nan


def _mean_se(x: np.ndarray) -> list[float]:
    """Mean and standard error of the mean of per-run counts (infinite error for one run)."""
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.inf
    return [float(x.mean()), se]


def paired_summary(
    base: Mapping[tuple[int, int], Mapping[BinKey, Mapping[str, Any]]],
    cand: Mapping[tuple[int, int], Mapping[BinKey, Mapping[str, Any]]],
    *,
    changed: str = "electron",
    z_max: float = 2.5,
    move_max: float = 0.02,
    tol: float = 0.15,
) -> dict[str, Any]:
    """The paired comparison of two cards' runs (see the module docstring for the checks).

    Arguments:
        base, cand: :func:`load_runs` of the two cards; only the (part, seed) both have are
            used, and only the bins both judged.
        changed: The object whose card differs (checks 2-4).
        z_max: Largest McNemar z of a ``changed`` bin (check 4).
        move_max: Largest move of a ``changed`` bin's mean width ratio further from 1 that
            may end outside ``tol`` (check 3).
        tol: The rule's width tolerance.
    """
    keys = sorted(set(base) & set(cand))
    if not keys:
        raise ValueError("no (part, seed) run of both cards")
    bins = sorted(set.intersection(*(set(base[k]) & set(cand[k]) for k in keys)))
    fa = np.array([[not base[k][b]["passed"] for b in bins] for k in keys])
    fb = np.array([[not cand[k][b]["passed"] for b in bins] for k in keys])
    n = len(keys)
    gain, se = _mean_se(fa.sum(1) - fb.sum(1))
    objects = sorted({b[0] for b in bins})
    per_bin = []
    ok3 = ok4 = True
    for j, b in enumerate(bins):
        wa = float(np.nanmean([_width(base[k][b]) for k in keys] or [math.nan]))
        wb = float(np.nanmean([_width(cand[k][b]) for k in keys] or [math.nan]))
        nb = int((fb[:, j] & ~fa[:, j]).sum())
        nc = int((fa[:, j] & ~fb[:, j]).sum())
        z = (nb - nc) / math.sqrt(nb + nc) if nb + nc else 0.0
        moved = abs(wb - 1) - abs(wa - 1) if np.isfinite(wa) and np.isfinite(wb) else 0.0
        bad3 = b[0] == changed and moved > move_max and abs(wb - 1) > tol
        bad4 = b[0] == changed and z > z_max
        ok3 &= not bad3
        ok4 &= not bad4
        per_bin.append(
            {
                "object": b[0],
                "pt_low": b[1],
                "eta_low": b[2],
                "fails_base": int(fa[:, j].sum()),
                "fails_cand": int(fb[:, j].sum()),
                "width_ratio_base": wa,
                "width_ratio_cand": wb,
                "deff_base": float(np.nanmean([_deff(base[k][b]) for k in keys])),
                "deff_cand": float(np.nanmean([_deff(cand[k][b]) for k in keys])),
                "mcnemar_b": nb,
                "mcnemar_c": nc,
                "mcnemar_z": z,
                "flags": [f for f, bad in (("check3", bad3), ("check4", bad4)) if bad],
            }
        )
    ch = np.array([b[0] == changed for b in bins])
    total = n * len(bins)
    checks = {
        "1_more_bins_pass_gain_over_2se": bool(fb.sum() < fa.sum() and gain > 2 * se),
        "2_more_changed_bins_pass": bool(fb[:, ch].sum() < fa[:, ch].sum()),
        "3_no_changed_width_moved_out": bool(ok3),
        "4_no_changed_bin_fails_more": bool(ok4),
    }
    return {
        "runs": n,
        "parts_seeds": [list(k) for k in keys],
        "bins_per_run": len(bins),
        "changed": changed,
        "fails_per_sample": {
            k: {o: float(f[:, [b[0] == o for b in bins]].sum(1).mean()) for o in objects}
            for k, f in (("base", fa), ("cand", fb))
        },
        "fails_per_sample_all": {"base": _mean_se(fa.sum(1)), "cand": _mean_se(fb.sum(1))},
        "runs_all_pass": {"base": int((fa.sum(1) == 0).sum()), "cand": int((fb.sum(1) == 0).sum())},
        "bins_passing": {"base": int(total - fa.sum()), "cand": int(total - fb.sum()), "of": total},
        "changed_bins_passing": {
            "base": int(n * ch.sum() - fa[:, ch].sum()),
            "cand": int(n * ch.sum() - fb[:, ch].sum()),
        },
        "gain": gain,
        "gain_se": se,
        "checks": checks,
        "all_checks": all(checks.values()),
        "bins": per_bin,
    }


def print_summary(s: Mapping[str, Any], base: str, cand: str) -> None:
    """The summary as text."""
    lo, hi = min(k[1] for k in s["parts_seeds"]), max(k[1] for k in s["parts_seeds"])
    print(f"{s['runs']} paired runs (Delphes seeds {lo}-{hi}), {s['bins_per_run']} bins each")
    for o in s["fails_per_sample"]["base"]:
        a, b = s["fails_per_sample"]["base"][o], s["fails_per_sample"]["cand"][o]
        print(f"  {o:15s} failing bins per sample: {base} {a:.2f}, {cand} {b:.2f}")
    (a, ea), (b, eb) = s["fails_per_sample_all"]["base"], s["fails_per_sample_all"]["cand"]
    allpass = s["runs_all_pass"]
    print(
        f"  all objects: {base} {a:.2f} +- {ea:.2f}, {cand} {b:.2f} +- {eb:.2f}; runs with "
        f"every bin passing {allpass['base']} / {allpass['cand']}"
    )
    print(
        f"  paired gain ({base} fails - {cand} fails per run): "
        f"{s['gain']:+.3f} +- {s['gain_se']:.3f}"
    )
    bp, cb = s["bins_passing"], s["changed_bins_passing"]
    print(
        f"  bins passing: {bp['base']} / {bp['cand']} of {bp['of']}; "
        f"{s['changed']}: {cb['base']} / {cb['cand']}"
    )
    print(f"\n  {'bin':30s} {'fails':>11s} {'width ratio':>15s} {'eff difference':>19s}  b  c    z")
    for r in s["bins"]:
        same = abs(r["width_ratio_cand"] - r["width_ratio_base"]) <= 0.005
        if same and not (r["fails_base"] or r["fails_cand"]):
            continue
        name = f"{r['object']} {r['pt_low']:g} GeV |eta| {r['eta_low']:g}"
        fails = f"{r['fails_base']:5d} {r['fails_cand']:5d}"
        widths = f"{r['width_ratio_base']:7.3f} {r['width_ratio_cand']:7.3f}"
        effs = f"{r['deff_base']:+9.4f} {r['deff_cand']:+9.4f}"
        mc = f"{r['mcnemar_b']:3d} {r['mcnemar_c']:2d} {r['mcnemar_z']:+5.1f}"
        print(f"  {name:30s} {fails} {widths} {effs} {mc} {' '.join(r['flags'])}")
    print()
    for k, v in s["checks"].items():
        print(f"  check {k}: {'holds' if v else 'FAILS'}")
    print(f"  all four checks hold: {s['all_checks']}")


def cmd_summarise(args: argparse.Namespace) -> int:
    seeds = set(parse_seeds(args.seeds)) if args.seeds else None
    base, cand = load_runs(args.out, args.base, seeds), load_runs(args.out, args.cand, seeds)
    for tag, runs in ((args.base, base), (args.cand, cand)):
        if not runs:
            raise SystemExit(f"--out {args.out}: no runs of card {tag!r} (runs/{tag}_p*_s*.json)")
    try:
        s = paired_summary(
            base, cand, changed=args.changed, z_max=args.z_max, move_max=args.move_max
        )
    except ValueError as e:
        raise SystemExit(f"--out {args.out}: {e} ({args.base!r}, {args.cand!r})") from None
    s.update(base=args.base, cand=args.cand)
    print_summary(s, args.base, args.cand)
    if args.json:
        write_json(args.json, s)
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the cards in Delphes, paired by (part, seed)")
    r.add_argument("--delphes", required=True, help="Delphes build folder")
    r.add_argument("--root-env", default=None, help="venv with ROOT from the pip package root")
    r.add_argument("--heldout", required=True, help="independent full-simulation table")
    r.add_argument("--card", action="append", default=[], help="TAG=response.json (repeat)")
    r.add_argument("--seeds", required=True, help="Delphes seeds: a-b or a comma list")
    r.add_argument("--parts", type=int, default=4, help="K disjoint parts of --heldout")
    r.add_argument("--objects", default="electron,photon", help="objects judged")
    r.add_argument("--cutoff", default=None, help="UTC HH:MM after which no seed starts")
    r.add_argument("--jobs", type=int, default=2, help="runs at once")
    r.add_argument("--out", required=True, help="folder of the runs (runs/...)")
    s = sub.add_parser("summarise", help="the paired comparison of two cards' runs")
    s.add_argument("--out", required=True, help="folder of the runs")
    s.add_argument("--base", required=True, help="tag of the base card")
    s.add_argument("--cand", required=True, help="tag of the candidate card")
    s.add_argument("--changed", default="electron", help="the object whose card differs")
    s.add_argument("--seeds", default=None, help="only these Delphes seeds (a-b or list)")
    s.add_argument("--z-max", type=float, default=2.5, help="check 4's McNemar z limit")
    s.add_argument("--move-max", type=float, default=0.02, help="check 3's width-ratio move")
    s.add_argument("--json", default=None, help="write the summary here (summary.json)")
    args = ap.parse_args(argv)
    return cmd_run(args) if args.command == "run" else cmd_summarise(args)


if __name__ == "__main__":
    raise SystemExit(main())
