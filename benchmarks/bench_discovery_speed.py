"""Speed of model discovery's two inner loops (issue 13): the shallow-flow simulator and the
emulator's prediction inside the MCMC.

1. Simulations per second of the default release (Voellmy mu = 0.3, xi = 400 m/s^2, 35 deg
   chute) at the default 400 cells and at the examples' 200 cells, for the plain model
   (N = 0) and the shallow-moment models (N = 1, 2); the first call (numba compilation) is
   left out.
2. The emulator's prediction (mean and variance of one component at a walker ensemble of
   32 points, 120 training runs in 4-D), ariasim's NumPy code against scikit-learn's
   ``GaussianProcessRegressor.predict(return_std=True)`` with the same fitted kernel, in the
   same run; the largest difference of the two is printed too.

    python benchmarks/bench_discovery_speed.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from ariasim.discovery.emulator import GPComponent
from ariasim.simulators.shallowflow import simulate, voellmy


def sims_per_second(n_cells: int, moments: int, repeats: int) -> dict:
    simulate(friction=voellmy(0.3, 400.0), n_cells=n_cells, moments=moments)  # compile
    t0 = time.perf_counter()
    steps = 0
    for _ in range(repeats):
        steps += simulate(friction=voellmy(0.3, 400.0), n_cells=n_cells, moments=moments).n_steps
    dt = time.perf_counter() - t0
    return {
        "n_cells": n_cells,
        "moments": moments,
        "runs_per_s": repeats / dt,
        "us_per_step": 1e6 * dt / steps,
        "steps_per_run": steps / repeats,
    }


def emulator_prediction(n_train: int = 120, d: int = 4, n_pred: int = 32, calls: int = 300):
    rng = np.random.default_rng(0)
    X = rng.random((n_train, d))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2] * X[:, 3]
    y = (y - y.mean()) / y.std()
    # the kernel and bounds of ariasim.discovery.emulator.GPEmulator
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        np.full(d, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
    ) + WhiteKernel(1e-4, (1e-10, 1e-1))
    gp = GaussianProcessRegressor(kernel, random_state=0).fit(X, y)
    k = gp.kernel_
    ours = GPComponent.build(
        X,
        y,
        np.asarray(k.k1.k2.length_scale),
        float(k.k1.k1.constant_value),
        float(k.k2.noise_level),
        0.0,
        1.0,
    )
    Xp = rng.random((n_pred, d))
    t0 = time.perf_counter()
    for _ in range(calls):
        m1, v1 = ours.predict(Xp)
    t_ours = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for _ in range(calls):
        m2, s2 = gp.predict(Xp, return_std=True)
    t_sk = (time.perf_counter() - t0) / calls
    # scikit-learn's std includes the white-noise level; ours is the latent variance
    dv = np.abs(v1 + float(k.k2.noise_level) - s2**2).max()
    return {
        "ours_ms": 1e3 * t_ours,
        "sklearn_ms": 1e3 * t_sk,
        "ratio": t_sk / t_ours,
        "max_mean_diff": float(np.abs(m1 - m2).max()),
        "max_var_diff": float(dv),
    }


def main() -> None:
    rows = [sims_per_second(nc, n, 8) for nc in (400, 200) for n in (0, 1, 2)]
    print("| cells | N | runs/s | us/step | steps/run |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n_cells']} | {r['moments']} | {r['runs_per_s']:.1f} | "
            f"{r['us_per_step']:.0f} | {r['steps_per_run']:.0f} |"
        )
    em = emulator_prediction()
    print(
        f"\nemulator prediction (32 points, 120 runs, 4-D): ariasim {em['ours_ms']:.3f} ms, "
        f"scikit-learn {em['sklearn_ms']:.3f} ms per call: {em['ratio']:.1f}x; "
        f"max |mean diff| {em['max_mean_diff']:.1e}, max |var diff| {em['max_var_diff']:.1e}"
    )
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "discovery_speed.json").write_text(json.dumps({"simulator": rows, "emulator": em}))


if __name__ == "__main__":
    main()
