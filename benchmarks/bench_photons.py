"""Benchmark: photons propagated per CPU-second, against IceCube's PPC, in one run.

Configuration (exactly the PPC anchor of issue 2): one homogeneous ice layer with
effective scattering length 25 m (b_e = 0.04 /m, geometric 0.4 /m, g = 0.9), absorption
length 100 m, optics independent of wavelength, simplified-Liu fraction 0.35, wavelengths
flat in 350-450 nm (group index from the ice polynomial), an isotropic point source,
true-size modules (r = 0.1651 m, flat acceptance, no wavelength acceptance) on six strings
on a ring of radius 20 m around the source, 60 modules per string 17 m apart, the source
at the middle of the strings (z = 0, half-way between modules 30 and 31). Each photon is
followed until it is absorbed or hits a module.

Anchor: PPC compiled for the CPU on this kind of machine, about 1.7e5 photons per
CPU-second on one thread and 3.3e5 photons/s on two.

Methods timed, in this process:
  1. ``numpy``: the first, vectorised NumPy version (all live photons stepped together,
     every module tested at every step); run on fewer photons, it is slow.
  2. ``naive``: the compiled numba kernel testing every module at every step, 1 thread.
  3. ``grid``: the optimised kernel (cell-grid spatial index), 1 thread and 2 threads.

Usage::

    python benchmarks/bench_photons.py                 # 2e6 photons per timed run
    python benchmarks/bench_photons.py --photons 1e7
    python benchmarks/bench_photons.py --quick         # a few seconds, for CI

References:
    D. Chirkin, "Photon tracking with GPUs in IceCube", NIM A 725 (2013) 141 (PPC).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

from ariasim.simulators.photons import Flasher, constant_medium, simulate, string_detector
from ariasim.simulators.photons.optics import SPEED_OF_LIGHT_M_PER_NS, n_group_ice

PPC_PER_CPU_S = 1.7e5  # one thread
PPC_TWO_THREADS_PER_S = 3.3e5  # wall-clock, two threads


def anchor_setup():
    """The PPC anchor configuration: medium, detector, source factory."""
    medium = constant_medium(100.0, 25.0, g=0.9, sl_fraction=0.35)
    detector = string_detector(
        6,
        60,
        string_spacing_m=20.0,
        module_spacing_m=17.0,
        layout="ring",
        radius_m=0.1651,
        angular_acceptance="flat",
        wavelength_acceptance=False,
    )

    def source(n: float) -> Flasher:
        return Flasher((0.0, 0.0, 0.0), n_photons=n, wavelength_nm=(350.0, 450.0))

    return medium, detector, source


def propagate_numpy(n: int, medium, detector, rng: np.random.Generator) -> int:
    """First vectorised NumPy version: step all live photons together, test all modules.

    Homogeneous, wavelength-independent media only. Returns the number of hits.
    """
    b = medium.b_e400_per_m[0] / (1.0 - medium.g)
    a = medium.a_dust400_per_m[0]
    g, f_sl = medium.g, medium.sl_fraction
    mods = detector.positions_m
    r2 = detector.effective_radius_m**2
    cz = 2 * rng.random(n) - 1
    phi = 2 * np.pi * rng.random(n)
    sz = np.sqrt(1 - cz**2)
    pos = np.zeros((n, 3))
    u = np.column_stack([sz * np.cos(phi), sz * np.sin(phi), cz])
    wl = rng.uniform(350, 450, n)
    t = np.zeros(n)
    inv_v = n_group_ice(wl) / SPEED_OF_LIGHT_M_PER_NS
    tau_a = -np.log(rng.random(n))
    alive = np.arange(n)
    hits = 0
    while alive.size:
        p, d = pos[alive], u[alive]
        s_s = -np.log(rng.random(alive.size)) / b
        s_a = tau_a[alive] / a
        absorbed = s_a <= s_s
        s = np.where(absorbed, s_a, s_s)
        oc = p[:, None, :] - mods[None, :, :]
        bq = np.einsum("ijk,ik->ij", oc, d)
        cq = np.einsum("ijk,ijk->ij", oc, oc) - r2
        disc = bq * bq - cq
        with np.errstate(invalid="ignore"):
            dist = np.where((disc >= 0) & (bq < 0) & (cq >= 0), -bq - np.sqrt(disc), np.inf)
        dmin = dist.min(axis=1)
        hit = dmin <= s
        hits += int(hit.sum())
        t[alive] += np.where(hit, dmin, s) * inv_v[alive]
        tau_a[alive] -= a * s
        pos[alive] = p + s[:, None] * d
        keep = ~hit & ~absorbed
        alive = alive[keep]
        # scatter the survivors: HG / simplified-Liu mixture
        m = alive.size
        v = rng.random(m)
        sl = rng.random(m) < f_sl
        xi = 2 * v - 1
        q = (1 - g * g) / (1 + g * xi)
        ct = np.where(sl, 2 * v ** ((1 - g) / (1 + g)) - 1, (1 + g * g - q * q) / (2 * g))
        ct = np.clip(ct, -1, 1)
        st = np.sqrt(1 - ct * ct)
        ph = 2 * np.pi * rng.random(m)
        d = u[alive]
        helper = np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        e1 = np.cross(d, helper)
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(d, e1)
        nd = ct[:, None] * d + (st * np.cos(ph))[:, None] * e1 + (st * np.sin(ph))[:, None] * e2
        u[alive] = nd / np.linalg.norm(nd, axis=1, keepdims=True)
    return hits


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photons", type=float, default=2e6, help="photons per timed run")
    ap.add_argument("--quick", action="store_true", help="small runs (a few seconds)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    import numba

    n = int(1e5 if args.quick else args.photons)
    n_np = int(min(n, 3e3 if args.quick else 1e4))
    n_naive = int(min(n, 1e4 if args.quick else 1e5))
    medium, detector, source = anchor_setup()
    print(
        "ariasim photon benchmark: PPC anchor configuration; "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, numba {numba.__version__}, "
        f"{numba.config.NUMBA_NUM_THREADS} numba threads available"
    )
    print(
        "  medium: lambda_e = 25 m (b = 0.4 /m, g = 0.9), lambda_a = 100 m, SL 0.35, "
        "350-450 nm flat; 6 strings x 60 modules (ring r = 20 m, dz = 17 m), r = 0.1651 m"
    )
    # warm-up: load / compile the kernels
    for meth in ("grid", "naive"):
        simulate(source(2000), medium, detector, seed=0, method=meth, n_threads=1)

    rows = []
    hits, wall, cpu = _timed(
        lambda: propagate_numpy(n_np, medium, detector, np.random.default_rng(args.seed))
    )
    rows.append(("numpy vectorised (first version)", 1, n_np, hits, wall, cpu))
    for meth, threads, count in (("naive", 1, n_naive), ("grid", 1, n), ("grid", 2, n)):
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        res, wall, cpu = _timed(
            lambda m=meth, t=threads, c=count: simulate(
                source(c), medium, detector, seed=args.seed, method=m, n_threads=t
            )
        )
        label = {"naive": "numba, every module every step", "grid": "numba + cell grid"}[meth]
        rows.append((label, threads, res.n_photons, len(res.hits), wall, cpu))

    print(
        f"\n{'method':36s} {'thr':>3s} {'photons':>10s} {'hits':>7s} {'wall s':>8s} "
        f"{'cpu s':>8s} {'ph/CPU-s':>10s} {'vs PPC/core':>11s} {'ph/s wall':>10s} "
        f"{'vs PPC(2thr)':>12s}"
    )
    for label, threads, count, hits, wall, cpu in rows:
        per_cpu = count / cpu if cpu > 0 else math.inf
        per_wall = count / wall if wall > 0 else math.inf
        two = f"{per_wall / PPC_TWO_THREADS_PER_S:12.2f}" if threads == 2 else f"{'':>12s}"
        print(
            f"{label:36s} {threads:3d} {count:10d} {hits:7d} {wall:8.2f} {cpu:8.2f} "
            f"{per_cpu:10.3g} {per_cpu / PPC_PER_CPU_S:11.2f} {per_wall:10.3g} {two}"
        )
    print(
        f"\nanchor: PPC {PPC_PER_CPU_S:.2g} photons per CPU-second (1 thread), "
        f"{PPC_TWO_THREADS_PER_S:.2g} photons/s on 2 threads. CPU time = process time "
        "(all threads), including photon generation and output."
    )


if __name__ == "__main__":
    main()
