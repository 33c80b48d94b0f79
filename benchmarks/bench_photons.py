"""Benchmark: photons propagated per CPU-second, ariasim against IceCube's PPC side by side.

Configuration (the PPC anchor of issue 15): one homogeneous ice layer with effective
scattering length 25 m (b_e = 0.04 /m, geometric 0.4 /m, g = 0.9), absorption length
100 m, optics independent of wavelength, simplified-Liu fraction 0.35, wavelengths flat
in 350-450 nm, an isotropic flasher (PPC: ``FWID=-1``) at the centre of module 33 of one
vertical string of 66 true-size modules (r = 0.1651 m, flat angular acceptance, no
wavelength acceptance) 5 m apart. Each photon is followed until it is absorbed or hits a
module. Both programs run single-threaded, each in its own process.

With ``--ppc PATH`` (a PPC executable built for the CPU, ``make cpu`` in icecube/ppc's
``gpu/`` folder; this script builds nothing) the script writes PPC's configuration files
(``geo-f2k``, ``icemodel.dat``, ``icemodel.par``, ``cfg.txt``, ``as.dat``, ``wv.dat`` with
100 points; ``rnd.txt`` is copied from the folder of the executable's repository, or
generated) into a temporary folder and runs PPC and ariasim alternately, ``--repeats``
times each. The CPU time of each child process (user + system, from ``wait4``) is taken;
the fixed start-up (PPC: reading its tables; ariasim: the Python imports and loading the
compiled kernel from numba's cache) is measured separately by runs of ``--startup-photons``
photons and subtracted, so the rates compare the propagation itself. Without ``--ppc``
there is no anchor: the script says so and prints ariasim's absolute figures only.

The kernel hits are compared as a check that both simulate the same thing (PPC: the
"photons: N hits: M" lines of its log, which count the hits before its wavelength
post-processing drops about 1 %; the flasher's own module is excluded on both sides).

Usage::

    python benchmarks/bench_photons.py --ppc /path/to/ppc/gpu/ppc     # side by side
    python benchmarks/bench_photons.py                                 # no anchor
    python benchmarks/bench_photons.py --photons 1e6 --repeats 2       # shorter
    python benchmarks/bench_photons.py --methods                       # numpy/naive/grid

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
    PPC's documentation: https://github.com/icecube/ppc/blob/master/doc/index.rst
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_MODULES = 66
SPACING_M = 5.0
FLASHER_MODULE = 33  # 1-based, PPC's OM number; at z = 0
PPC_STRING = 90  # PPC keeps OMs 1-60 only on strings <= 86; any OM above
B_E_PER_M, A_PER_M = 0.04, 0.01  # lambda_e = 25 m, lambda_a = 100 m
G, F_SL = 0.9, 0.35
WL_NM = (350.0, 450.0)
CHILD_ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def module_z(om: np.ndarray | int) -> np.ndarray:
    """z of PPC's OM number ``om`` (1-based; OM 33 at z = 0, OM 1 at the top)."""
    return SPACING_M * (FLASHER_MODULE - np.asarray(om, dtype=float))


def anchor_setup():
    """The anchor configuration in ariasim: medium, detector, source factory."""
    from ariasim.simulators.photons import Detector, Flasher, constant_medium

    medium = constant_medium(1.0 / A_PER_M, 1.0 / B_E_PER_M, g=G, sl_fraction=F_SL)
    om = np.arange(1, N_MODULES + 1)
    pos = np.column_stack([np.zeros(N_MODULES), np.zeros(N_MODULES), module_z(om)])
    detector = Detector(
        pos, radius_m=0.1651, angular_acceptance="flat", wavelength_acceptance=False
    )

    def source(n: float) -> Flasher:
        return Flasher((0.0, 0.0, 0.0), n_photons=n, wavelength_nm=WL_NM)

    return medium, detector, source


def write_ppc_tables(folder: Path, ppc: Path) -> None:
    """PPC's configuration of the anchor (REFERENCE.md section 1, PPC's doc/index.rst)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"B{om:07d}\t0x{om:012x}\t0.00\t0.00\t{float(module_z(om)):.2f}\t{PPC_STRING}\t{om}"
        for om in range(1, N_MODULES + 1)
    ]
    (folder / "geo-f2k").write_text("\n".join(lines) + "\n")
    # depth, b_e(400), a_dust(400), delta-tau; identical 20 m layers over 1000-2900 m
    (folder / "icemodel.dat").write_text(
        "".join(f"{d:.2f} {B_E_PER_M} {A_PER_M} 0\n" for d in range(1000, 2920, 20))
    )
    # alpha, kappa, A, B (numbers only): no wavelength dependence, no pure-ice term
    (folder / "icemodel.par").write_text("0 0\n0 0\n0 0\n0 0\n")
    # oversize 1, efficiency 1, f_SL, g, anisotropy axis and k1, k2 off
    (folder / "cfg.txt").write_text(f"1\n1.0\n{F_SL}\n{G}\n130.0\n0.0\n0.0\n")
    (folder / "as.dat").write_text("1\n1\n")  # flat angular acceptance, maximum 1
    (folder / "wv.dat").write_text(
        "".join(
            f"{i / 99:.8f} {WL_NM[0] + (WL_NM[1] - WL_NM[0]) * i / 99:.4f}\n" for i in range(100)
        )
    )
    rnd = [p / "ice" / "spice_bfr-v2" / "rnd.txt" for p in ppc.resolve().parents[:2]]
    found = next((p for p in rnd if p.is_file()), None)
    if found is not None:
        shutil.copy(found, folder / "rnd.txt")
    else:  # PPC's multiply-with-carry multipliers: any large odd numbers < 2^32 do
        mult = np.random.default_rng(1).integers(2**30, 2**32 - 1, 4096) | 1
        (folder / "rnd.txt").write_text("".join(f"{m}\n" for m in mult))


def _run_child(cmd: list[str], env: dict[str, str], stdout) -> tuple[float, float, str]:
    """Run ``cmd``; returns (CPU seconds user + system, wall seconds, stderr text)."""
    w0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - w0
        err.seek(0)
        text = err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {text[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall, text


def run_ppc(ppc: Path, tables: Path, n: int) -> dict[str, float]:
    """One PPC run of ``n`` photons: CPU, wall, kernel photons and hits (flasher excluded)."""
    env = {**os.environ, **CHILD_ENV, "PPCTABLESDIR": f"{tables}/", "FWID": "-1"}
    with tempfile.TemporaryFile("w+") as out:
        cpu, wall, err = _run_child(
            [str(ppc), str(PPC_STRING), str(FLASHER_MODULE), str(n)], env, out
        )
    pairs = re.findall(r"photons:\s*(\d+)\s+hits:\s*(\d+)", err)
    if not pairs:
        raise RuntimeError(f"no 'photons: N hits: M' line in PPC's log: {err[-2000:]}")
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "photons": sum(int(p) for p, _ in pairs),
        "hits": sum(int(h) for _, h in pairs),
    }


def run_ariasim(n: int, seed: int) -> dict[str, float]:
    """One ariasim run of ``n`` photons in a fresh process (imports and kernel load included)."""
    env = {**os.environ, **CHILD_ENV}
    with tempfile.TemporaryFile("w+") as out:
        cmd = [sys.executable, __file__, "--worker", str(n), "--seed", str(seed)]
        cpu, wall, _ = _run_child(cmd, env, out)
        out.seek(0)
        res = json.loads(out.read().strip().splitlines()[-1])
    return {"cpu_s": cpu, "wall_s": wall, **res}


def worker(n: int, seed: int) -> None:
    """The child process of :func:`run_ariasim`: one single-threaded run, JSON on stdout."""
    from ariasim.simulators.photons.startup import skip_numba_extensions

    skip_numba_extensions()  # as ``ariasim simulate photons`` does
    from ariasim.simulators.photons import simulate

    medium, detector, source = anchor_setup()
    res = simulate(source(n), medium, detector, seed=seed, n_threads=1)
    own = int(np.flatnonzero(module_z(np.arange(1, N_MODULES + 1)) == 0.0)[0])
    hits = int((res.hits["module_id"].to_numpy() != detector.module_ids[own]).sum())
    print(json.dumps({"photons": res.n_photons, "hits": hits, "kernel_cpu_s": res.cpu_s}))


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def side_by_side(args: argparse.Namespace) -> None:
    """Alternating runs of PPC (if given) and ariasim; prints the table and the ratio."""
    n, n0 = int(args.photons), int(args.startup_photons)
    ppc = Path(args.ppc) if args.ppc else None
    if ppc is not None and not (ppc.is_file() and os.access(ppc, os.X_OK)):
        sys.exit(f"--ppc: {ppc} is not an executable file")
    tmp = Path(tempfile.mkdtemp(prefix="ariasim_ppc_"))
    try:
        if ppc is not None:
            write_ppc_tables(tmp, ppc)
        # one untimed run each first: numba compiles the kernel into its cache if needed,
        # and the files are in the page cache for both
        if ppc is not None:
            run_ppc(ppc, tmp, n0)
        run_ariasim(n0, args.seed)
        runs: dict[tuple[str, int], list[dict[str, float]]] = {}
        for r in range(args.repeats):
            for count in (n0, n):
                if ppc is not None:
                    runs.setdefault(("PPC", count), []).append(run_ppc(ppc, tmp, count))
                runs.setdefault(("ariasim", count), []).append(run_ariasim(count, args.seed + r))
                print(".", end="", flush=True, file=sys.stderr)
        print(file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\n{'program':8s} {'runs':>4s} {'photons':>9s} {'hits/1e6':>9s} "
        f"{'start-up CPU s':>14s} {'CPU s (median, range)':>24s} {'photons/CPU-s':>13s}"
    )
    rate = {}
    for prog in ("PPC", "ariasim"):
        if (prog, n) not in runs:
            continue
        big, small = runs[(prog, n)], runs[(prog, n0)]
        start = _median(small, "cpu_s")
        per = [(b["photons"] - _median(small, "photons")) / (b["cpu_s"] - start) for b in big]
        rate[prog] = per
        hits = sum(b["hits"] for b in big) / sum(b["photons"] for b in big) * 1e6
        cpus = [b["cpu_s"] for b in big]
        print(
            f"{prog:8s} {len(big):4d} {big[0]['photons']:9.3g} {hits:9.0f} {start:14.2f} "
            f"{statistics.median(cpus):10.2f} ({min(cpus):.2f}-{max(cpus):.2f}) "
            f"{statistics.median(per):13.3g}"
        )
        if prog == "ariasim":
            kern = [b["photons"] / b["kernel_cpu_s"] for b in big]
            print(
                f"{'':8s} ariasim kernel alone (CPU time inside simulate): "
                f"{statistics.median(kern):.3g} photons/CPU-s"
            )
    if "PPC" in rate:
        ratios = [a / p for a, p in zip(rate["ariasim"], rate["PPC"], strict=True)]
        hp = sum(b["hits"] for b in runs[("PPC", n)]) / sum(b["photons"] for b in runs[("PPC", n)])
        ha = sum(b["hits"] for b in runs[("ariasim", n)]) / sum(
            b["photons"] for b in runs[("ariasim", n)]
        )
        nh = sum(b["hits"] for b in runs[("PPC", n)])
        ma = sum(b["hits"] for b in runs[("ariasim", n)])
        sig = math.sqrt(1 / max(nh, 1) + 1 / max(ma, 1))
        print(
            f"\nariasim / PPC, photons per CPU-second, start-up removed: "
            f"{statistics.median(ratios):.2f}x (runs: "
            + ", ".join(f"{x:.2f}" for x in ratios)
            + f")\nhits per photon ariasim / PPC: {ha / hp:.3f} +- {sig * ha / hp:.3f} "
            "(Poisson)"
        )
    else:
        print(
            "\nno anchor: PPC was not given (--ppc PATH to a PPC CPU build), so there is "
            "no ratio; the figures above are absolute and depend on the machine."
        )


def methods_table(args: argparse.Namespace) -> None:
    """In-process table of ariasim's kernels on the anchor configuration (no anchor)."""
    from ariasim.simulators.photons import simulate

    medium, detector, source = anchor_setup()
    n = int(args.photons)
    for meth in ("grid", "naive"):
        simulate(source(2000), medium, detector, seed=0, method=meth, n_threads=1)
    print(f"\n{'method':32s} {'thr':>3s} {'photons':>9s} {'kernel CPU s':>12s} {'ph/CPU-s':>9s}")
    for meth, threads, count in (("naive", 1, min(n, 200_000)), ("grid", 1, n), ("grid", 2, n)):
        res = simulate(
            source(count), medium, detector, seed=args.seed, method=meth, n_threads=threads
        )
        label = {"naive": "numba, every module every step", "grid": "numba + cell grid"}[meth]
        print(
            f"{label:32s} {threads:3d} {res.n_photons:9d} {res.cpu_s:12.2f} "
            f"{res.n_photons / res.cpu_s:9.3g}"
        )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ppc", default=None, help="PPC executable (CPU build); none: no anchor")
    ap.add_argument("--photons", type=float, default=2e6, help="photons per timed run")
    ap.add_argument("--startup-photons", type=float, default=1e3, help="photons per start-up run")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs per program")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--methods", action="store_true", help="also time ariasim's kernels")
    ap.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        worker(int(args.worker), args.seed)
        return
    print(
        "photon benchmark, PPC anchor configuration: homogeneous ice lambda_e = 25 m "
        "(g = 0.9, SL 0.35), lambda_a = 100 m, 350-450 nm flat; one string of 66 modules "
        f"r = 0.1651 m, 5 m apart, isotropic flasher at module 33; one thread each; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    side_by_side(args)
    if args.methods:
        methods_table(args)


if __name__ == "__main__":
    main()
