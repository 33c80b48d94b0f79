"""Benchmark the collider full simulation: particles per second per species (full chain).

Anchors (same table): Delphes applies its parametrisations in about 0.1 ms per
single-particle event (~1e4 particles/s); Geant4 full simulation takes seconds per
collision event. Usage::

    python benchmarks/bench_collider.py [--quick] [--detector default]
"""

from __future__ import annotations

import argparse
import time

from ariasim.simulators.collider.detector import load_detector
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.simulators.collider.simulate import simulate

DELPHES_PER_S = 1.0e4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--quick", action="store_true", help="2,000 particles per species instead of 20,000"
    )
    ap.add_argument("--detector", default="default")
    args = ap.parse_args()
    det = load_detector(args.detector)
    n = 2_000 if args.quick else 20_000
    species = ["e-", "gamma", "mu-", "pi+", "K+", "p", "n", "K0L"]
    simulate(ParticleGun(species, 1, 10).generate(200, 0), det, 0)  # numba compile / cache load
    print(f"detector {det.name}, {n} particles per species, pT log-flat 1-500 GeV, |eta| < 2.5")
    print(f"{'species':8s} {'particles/s':>12s} {'ms/particle':>12s} {'vs Delphes':>11s}")
    for sp in species:
        truth = ParticleGun([sp], 1, 500, log_pt=True).generate(n, 1)
        t0 = time.perf_counter()
        simulate(truth, det, 2)
        dt = time.perf_counter() - t0
        rate = n / dt
        print(f"{sp:8s} {rate:12.0f} {1e3 / rate:12.3f} {rate / DELPHES_PER_S:10.2f}x")
    print(
        "anchors: Delphes ~1e4 particles/s (0.1 ms per single-particle event); Geant4: seconds "
        "per collision event"
    )


if __name__ == "__main__":
    main()
