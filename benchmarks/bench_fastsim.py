"""Benchmark the ultra-fast simulation against the full simulation: particles per second.

Same species mix for both (mu-, e-, gamma, pi+ in equal parts, pT log-flat 1-300 GeV,
|eta| < 2.5), both measured in the same run. The response model is fitted (polynomial
heteroscedastic likelihood, or the JSON given with --response) on a separate
full-simulation sample; the fast simulation evaluates the exported card's formulas with
ariasim's TFormula evaluator (compiled once), as Delphes would, and returns the full
simulation's 47-column table.

Threads: the fast simulation runs in one thread (NumPy element-wise). The full simulation
uses numba's default thread count for its parallel track fit unless --full-threads is
given; the number used is printed. The fast simulation is timed --repeat times on the same
particles (different seeds): the first call pays for fresh memory pages (expensive on
virtual machines), later calls reuse freed memory; the speed-up is quoted for the median
call and for the first one. Anchors: learned fast simulations quote 1e3-1e6 x speed-ups;
CMS FlashSim generates about 33k events/s. Usage::

    python benchmarks/bench_fastsim.py [--quick] [--response resp.json] [--particles N]
        [--full-particles N] [--repeat K] [--full-threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import pandas as pd

from ariasim.apps.collider.fastsim import OUTPUT_COLUMNS, FastSimulator
from ariasim.apps.collider.learn import fit_response
from ariasim.apps.collider.model import ResponseModel
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.simulators.collider.simulate import simulate

SPECIES = ["mu-", "e-", "gamma", "pi+"]
FLASHSIM_EVENTS_PER_S = 33_000.0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller samples")
    ap.add_argument("--response", default=None, help="response model JSON (default: fit one)")
    ap.add_argument(
        "--particles",
        type=int,
        default=None,
        help="fast-simulation sample size (default 2e6, 2e5 with --quick)",
    )
    ap.add_argument(
        "--full-particles",
        type=int,
        default=None,
        help="full-simulation sample size (default 8000, 2000 with --quick)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="timed fast-simulation calls")
    ap.add_argument(
        "--full-threads",
        type=int,
        default=None,
        help="numba threads for the full simulation (default: numba's default)",
    )
    args = ap.parse_args()
    n_full = args.full_particles or (2_000 if args.quick else 8_000)
    n_fast = args.particles or (200_000 if args.quick else 2_000_000)
    if args.full_threads:
        numba.set_num_threads(args.full_threads)
    gun = ParticleGun(SPECIES, 1.0, 300.0, log_pt=True)
    simulate(gun.generate(200, 0), "default", 0)  # numba compile / cache load
    if args.response:
        model = ResponseModel.load(args.response)
    else:
        train = simulate(gun.generate(n_full, 10), "default", 11)
        model = fit_response(
            train, objects=["muon", "electron", "photon", "charged_hadron"], method="poly"
        )
    truth_full = gun.generate(n_full, 1)
    t0 = time.perf_counter()
    simulate(truth_full, "default", 2)
    full_rate = n_full / (time.perf_counter() - t0)
    truth_fast = gun.generate(n_fast, 3)
    t0 = time.perf_counter()
    sim = FastSimulator(model)  # print, lint, parse and compile the card formulas once
    compile_s = time.perf_counter() - t0
    sim(truth_fast.iloc[:1000], 0)  # warm-up
    times = []
    for k in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        out = sim(truth_fast, 4 + k)
        times.append(time.perf_counter() - t0)
        assert isinstance(out, pd.DataFrame) and len(out) == n_fast
        assert list(out.columns) == list(OUTPUT_COLUMNS)
        del out
    fast_rate = n_fast / statistics.median(times)
    first_rate = n_fast / times[0]
    print(
        f"species mix {SPECIES}, pT log-flat 1-300 GeV, |eta| < 2.5, 1 process; "
        f"full simulation {numba.get_num_threads()} numba thread(s), fast simulation 1 thread"
    )
    print(f"{'simulation':12s} {'particles':>10s} {'particles/s':>12s} {'us/particle':>12s}")
    print(f"{'full':12s} {n_full:10d} {full_rate:12.0f} {1e6 / full_rate:12.2f}")
    print(f"{'fast median':12s} {n_fast:10d} {fast_rate:12.0f} {1e6 / fast_rate:12.3f}")
    print(f"{'fast first':12s} {n_fast:10d} {first_rate:12.0f} {1e6 / first_rate:12.3f}")
    print(
        f"(card formulas compiled once in {compile_s:.2f} s, not included; fast calls "
        f"{', '.join(f'{t:.3f}' for t in times)} s)"
    )
    print(
        f"speed-up fast/full: {fast_rate / full_rate:.0f}x median call, "
        f"{first_rate / full_rate:.0f}x first call (field: 1e3-1e6 x); "
        f"vs CMS FlashSim ~{FLASHSIM_EVENTS_PER_S:.0f} events/s: "
        f"{fast_rate / FLASHSIM_EVENTS_PER_S:.1f}x (per particle vs per event)"
    )


if __name__ == "__main__":
    main()
