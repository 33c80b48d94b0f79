"""Benchmark of the collider calorimeter simulation: particles per second per species.

Usage::

    python benchmarks/bench_collider_calo.py            # 4000 particles per point
    python benchmarks/bench_collider_calo.py --quick    # 400 particles per point

Single-particle events at |eta| < 1.4, uniform phi, on one core (numba kernels are serial);
the time includes cells, noise, selective readout, clustering and truth matching. Numba
compilation and the ECAL calibration run happen in a warm-up call and are not timed.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from ariasim.simulators.collider import calorimeter as C

__all__ = ["main"]

SPECIES = {"e-": 11, "gamma": 22, "pi+": 211, "n": 2112, "mu-": 13}


def _run(
    pdg: int, e_gev: float, n: int, ecal: C.ECALConfig, hcal: C.HCALConfig, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    eta = rng.uniform(-1.4, 1.4, n)
    phi = rng.uniform(-math.pi, math.pi, n)
    t0, c0 = time.perf_counter(), time.process_time()
    C.simulate_calorimeters(
        ids, ids, np.full(n, pdg, dtype=np.int64), np.full(n, e_gev), eta, phi, ecal, hcal, rng
    )
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main(argv: list[str] | None = None) -> None:
    """Print a table of particles/s (wall and CPU) per detector, species and energy.

    Arguments:
        argv: Command-line arguments (``--quick``, ``--n``).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="400 particles per point")
    ap.add_argument("--n", type=int, default=None, help="particles per point")
    args = ap.parse_args(argv)
    n = args.n or (400 if args.quick else 4000)
    detectors = {
        "cms (pbwo4+brass)": (C.ECALConfig(), C.HCALConfig()),
        "fcc (siw+fe-scint)": (
            C.ECALConfig.from_dict({"preset": "fcc-siw"}),
            C.HCALConfig.from_dict({"preset": "fcc-fe-scint"}),
        ),
    }
    energies = (10.0, 50.0) if args.quick else (10.0, 50.0, 200.0)
    print(f"{'detector':20s} {'species':8s} {'E/GeV':>6s} {'wall /s':>10s} {'cpu /s':>10s}")
    for name, (ecal, hcal) in detectors.items():
        _run(11, 50.0, 20, ecal, hcal, 0)  # warm-up: compile + calibration
        _run(211, 50.0, 20, ecal, hcal, 0)
        for sp, pdg in SPECIES.items():
            for e_gev in energies:
                wall, cpu = _run(pdg, e_gev, n, ecal, hcal, 1)
                print(f"{name:20s} {sp:8s} {e_gev:6.0f} {wall:10.0f} {cpu:10.0f}", flush=True)


if __name__ == "__main__":
    main()
