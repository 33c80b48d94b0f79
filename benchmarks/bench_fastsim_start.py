"""Benchmark the start-up of the fast simulation (issue 14, item 6): loading a response
model and compiling its card formulas the sympy way and from the stored card texts, and
the whole ``ariasim fastsim`` command.

Part 1 (one process, every module imported first, so neither path pays for imports):
for each model file, the best of ``--repeat`` times of

* the sympy path: ``FastSimulator(ResponseModel.load(path))`` (formulas parsed into sympy,
  card texts printed, linted, compiled), what ``ariasim fastsim`` did before;
* the stored path: ``FastSimulator(CompiledResponse.load(path))`` (formula text checked by
  the sympy-free parser, stored card texts compiled), what it does now;

and two checks: the stored texts equal the freshly printed ones, and the sympy-free
parser's values equal the sympy formulas' (largest relative difference over every region
formula, 2000 random points each). A model file without stored texts is re-saved first
(to a temporary file).

Part 2 (fresh processes): the whole command ``python -m ariasim fastsim -r MODEL -i TRUTH -o
OUT`` on each truth table, wall and CPU time (user + system of the child), best of
``--repeat``, with this checkout's source and, with ``--baseline-src``, another source tree
(e.g. ``git archive <commit> src | tar -x -C /tmp/base``), whose output tables are compared
column by column, bit for bit. Part 3: the modules the command imports
(``python -X importtime``). Part 4, with ``--delphes DIR --root-env VENV``: the same command
side by side with real Delphes (``DelphesHepMC3`` on the exported card, single-particle
HepMC3 events) through ``benchmarks/bench_delphes.py``'s ``timing`` (``--bench-delphes`` names
that file when it is elsewhere), with this checkout's source. Part 5 (``--stages``): the
command's work stage by stage in a fresh process (CPU seconds between steps: imports,
load + compile, read, simulate, write; the second of two runs), this checkout's source
and the ``--baseline-src`` one, each the way its command goes (this checkout: PyArrow
columns, no pandas, when the source has :meth:`FastSimulator.columns`, else pandas; typer
and its parsing only when the source has no ``ariasim.cli.plain``; the parsing itself is
not timed).

Usage::

    python benchmarks/bench_fastsim_start.py --models poly.json kan.json \\
        --truth truth_20k.parquet truth_200k.parquet [--baseline-src /tmp/base/src] \\
        [--repeat 3] [--command-model kan.json] [--delphes DIR --root-env VENV] [--stages]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import ariasim
from ariasim.apps.collider.compiled import CARD_KEY, QUANTITIES, CompiledResponse
from ariasim.apps.collider.delphes import card_formulas
from ariasim.apps.collider.fastsim import FastSimulator
from ariasim.apps.collider.model import ResponseModel
from ariasim.surrogates.parse import parse_numeric

SRC = Path(ariasim.__file__).resolve().parents[1]
HEAVY = ("sympy", "torch", "sklearn", "matplotlib", "dask", "scipy")


def _best(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall and best CPU (this process) seconds of ``repeat`` calls, and the result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def _with_texts(path: Path, tmp: Path) -> Path:
    data = json.loads(path.read_text())
    if all(CARD_KEY in o for o in data["objects"].values()):
        return path
    out = tmp / f"{path.stem}_stored.json"
    ResponseModel.load(path).save(out)
    print(f"{path}: no stored card texts; re-saved as {out}")
    return out


def _max_rel_diff(model: ResponseModel) -> tuple[int, int, float]:
    rng = np.random.default_rng(0)
    cols = {
        "pt": np.exp(rng.uniform(0.0, 6.0, 2000)),
        "eta": rng.uniform(-2.6, 2.6, 2000),
        "energy": np.exp(rng.uniform(0.0, 7.5, 2000)),
    }
    n, nodes, worst = 0, 0, 0.0
    for obj in model.objects.values():
        for q in ("efficiency", "scale", "resolution"):
            for r in getattr(obj, q):
                f = r.formula
                env = {k: cols[k] for k in f.names}
                a = parse_numeric(f.to_dict()["expression"], f.names)(**env)
                b = f(env)
                ok = np.isfinite(b)
                assert np.array_equal(ok, np.isfinite(a))
                scale = max(1.0, float(np.max(np.abs(b[ok])))) if ok.any() else 1.0
                worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]), initial=0.0)) / scale)
                n += 1
                nodes += f.complexity
    return n, nodes, worst


def part1(models: list[Path], repeat: int, tmp: Path) -> None:
    print("\n## Load + compile (in process, imports done before)\n")
    print(
        "| model | file kB | formulas | sympy nodes | sympy path: wall s, CPU s "
        "| stored path: wall s, CPU s | ratio (CPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    notes = []
    for path in models:
        p = _with_texts(path, tmp)
        w_slow, t_slow, sim_slow = _best(lambda p=p: FastSimulator(ResponseModel.load(p)), repeat)
        w_fast, t_fast, sim_fast = _best(
            lambda p=p: FastSimulator(CompiledResponse.load(p)), repeat
        )
        model = sim_slow.response  # type: ignore[attr-defined]
        stored = json.loads(p.read_text())["objects"]
        same = all(c.stored for c in sim_fast.response.objects) and all(  # type: ignore[attr-defined]
            [stored[k][CARD_KEY][q] for q in QUANTITIES]
            == [getattr(card_formulas(o), q) for q in QUANTITIES]
            for k, o in model.objects.items()
        )
        n, nodes, worst = _max_rel_diff(model)
        kb = p.stat().st_size / 1e3
        print(
            f"| {path.name} | {kb:.0f} | {n} | {nodes} | {w_slow:.2f}, {t_slow:.2f} | "
            f"{w_fast:.3f}, {t_fast:.3f} | {t_slow / t_fast:.0f}x |"
        )
        notes.append(
            f"{path.name}: stored texts identical to the printed ones: {same}; parse_numeric vs "
            f"sympy, largest |difference| / max(1, max|value|): {worst:.1e}"
        )
    print("\n" + "\n".join(notes))


def _command(src: Path, model: Path, truth: Path, out: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ariasim", "fastsim", "-r", str(model), "-i", str(truth)]
    cmd += ["-o", str(out), "--overwrite"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _identical(a: Path, b: Path) -> bool:
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns):
        return False
    for c in x.columns:
        u, v = x[c].to_numpy(), y[c].to_numpy()
        if u.dtype.kind == "f":
            if not np.array_equal(u.view(np.int64), v.view(np.int64)):
                return False
        elif not x[c].equals(y[c]):
            return False
    return True


def part2(model: Path, truths: list[Path], baseline: Path | None, repeat: int, tmp: Path) -> None:
    print(f"\n## The whole command (fresh processes, best of {repeat}), model {model.name}\n")
    print("| particles | source | wall s | CPU s | CPU us/particle |")
    print("|---|---|---|---|---|")
    stored = _with_texts(model, tmp)
    for truth in truths:
        n = len(pd.read_parquet(truth, columns=["pdg"]))
        outs = {}
        for label, src, m in (("this", SRC, stored), ("baseline", baseline, model)):
            if src is None:
                continue
            out = tmp / f"{label}_{truth.stem}.parquet"
            runs = [_command(src, m, truth, out) for _ in range(repeat)]
            wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
            print(f"| {n} | {label} | {wall:.2f} | {cpu:.2f} | {1e6 * cpu / n:.1f} |")
            outs[label] = out
        if len(outs) == 2:
            print(f"|  | tables bit-identical: {_identical(outs['this'], outs['baseline'])} |")


def part3(model: Path, truth: Path, tmp: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-X", "importtime", "-m", "ariasim", "fastsim", "-r", str(model)]
    cmd += ["-i", str(truth), "-o", str(tmp / "imp.parquet"), "--overwrite"]
    err = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stderr
    rows = [
        line.split("|")
        for line in err.splitlines()
        if line.startswith("import time:") and line.split("|")[1].strip().isdigit()
    ]
    top = [(int(r[1]), r[2].strip()) for r in rows if r[2].startswith(" ") and r[2][1] != " "]
    names = {r[2].strip() for r in rows}
    total = sum(t for t, _ in top) / 1e6
    big = ", ".join(f"{n} {t / 1e6:.2f}" for t, n in sorted(top, reverse=True)[:6])
    print(f"\n## Imports of the command: {total:.2f} s in all; largest (s): {big}")
    print(f"heavy modules imported: {[h for h in HEAVY if h in names] or 'none'}")


def part4(
    model: Path, sizes: list[int], repeat: int, delphes_dir: Path, root_env: Path, bench: Path
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_delphes", bench)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_delphes"] = mod
    spec.loader.exec_module(mod)

    def env() -> dict[str, str]:  # this checkout's ariasim, one thread
        return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}

    mod._python_env = env
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        card = work / "card.tcl"
        mod.export_card(model, card, work / "modules.tcl")
        dl = mod.find_delphes(delphes_dir, str(root_env))
        print(f"\n## Side by side with Delphes ({dl.exe}), model {model.name}, medians of {repeat}")
        mod.timing(model, work, sizes, repeat, dl, card)


STAGES = r"""
import sys, time
model, truth, out = sys.argv[1:4]
last = [time.process_time()]
rows = []
def lap(label):
    now = time.process_time()
    rows.append((label, now - last[0]))
    last[0] = time.process_time()
import numpy; lap("import numpy")
from ariasim.apps.collider.fastsim import FastSimulator
columns = hasattr(FastSimulator, "columns")
if not columns:
    import pandas; lap("import pandas")
import pyarrow.parquet; lap("import pyarrow.parquet")
import importlib.util
if importlib.util.find_spec("ariasim.cli.plain") is None:  # the command line goes through typer
    import rich.console, typer, typer._adapters; lap("import typer, rich, typer's adapters")
import ariasim.cli, ariasim.io
from ariasim.apps.collider import workflow
from ariasim.apps.collider.compiled import CompiledResponse
if columns:
    from ariasim.apps.collider.columns import read_truth_columns
lap("import ariasim's modules")
sim = FastSimulator(CompiledResponse.load(model)); lap("load + compile")
table = read_truth_columns(truth) if columns else workflow.read_truth(truth); lap("read")
fast = sim.columns(table, 1) if columns else sim(table, 1); lap("simulate")
ariasim.io.write_table(fast, out, producer="bench"); lap("write")
print(";".join(f"{k}={v:.4f}" for k, v in rows))
print("pandas imported:", "pandas" in sys.modules)
"""


def part5(model: Path, truth: Path, baseline: Path | None, tmp: Path) -> None:
    print(f"\n## Stages (CPU s, fresh process, second of two runs), {model.name}, {truth.name}\n")
    results = {}
    for label, src in (("this", SRC), ("baseline", baseline)):
        if src is None:
            continue
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-c", STAGES, str(model), str(truth), str(tmp / "stages.parquet")]
        for _ in range(2):
            r = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        line, note = r.stdout.strip().splitlines()[-2:]
        results[label] = dict(kv.split("=") for kv in line.split(";"))
        print(f"{label}: {note}")
    names = list(dict.fromkeys(k for r in reversed(results.values()) for k in r))
    print("\n| stage | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for k in names:
        print(f"| {k} | " + " | ".join(r.get(k, "-") for r in results.values()) + " |")
    totals = [sum(float(v) for v in r.values()) for r in results.values()]
    print("| in all | " + " | ".join(f"{t:.3f}" for t in totals) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, nargs="+", required=True)
    ap.add_argument("--truth", type=Path, nargs="*", default=[])
    ap.add_argument("--command-model", type=Path, default=None)
    ap.add_argument("--baseline-src", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--delphes", type=Path, default=None, help="Delphes build folder")
    ap.add_argument("--root-env", type=Path, default=None, help="venv with ROOT (pip)")
    ap.add_argument(
        "--bench-delphes", type=Path, default=Path(__file__).with_name("bench_delphes.py")
    )
    ap.add_argument("--sizes", default="20000,200000", help="particles for --delphes")
    ap.add_argument("--skip", default="", help="parts to skip, e.g. 1,2,3")
    ap.add_argument("--stages", action="store_true", help="part 5: stage by stage")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = args.command_model or args.models[-1]
        if "1" not in skip:
            part1(args.models, args.repeat, tmp)
        if args.truth and "2" not in skip:
            part2(model, args.truth, args.baseline_src, args.repeat, tmp)
        if args.truth and "3" not in skip:
            part3(_with_texts(model, tmp), args.truth[0], tmp)
        if args.truth and args.stages:
            part5(_with_texts(model, tmp), args.truth[-1], args.baseline_src, tmp)
        if args.delphes is not None:
            sizes = [int(x) for x in args.sizes.split(",")]
            stored = _with_texts(model, tmp)
            part4(stored, sizes, args.repeat, args.delphes, args.root_env, args.bench_delphes)


if __name__ == "__main__":
    main()
