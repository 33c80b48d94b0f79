"""KAN training time to equal test error: ariasim's KANRegressor vs pykan.

Protocol: the same data (f(x1, x2) = exp(sin(pi x1) + x2^2) on [-1, 1]^2, pykan's own
example; ``--n`` training and ``--n`` test rows, no noise), the same architecture
([2, 5, 1], grid 5, cubic splines), no sparsity penalty, the same number of torch threads.

1. pykan is trained with its defaults (L-BFGS, grid updates every few steps during the
   first 50 steps) for ``--steps`` steps (default 50), in a temporary directory and with
   ``auto_save=False`` so that it writes nothing into the working directory; its wall time
   and test RMSE are recorded.
2. ariasim is trained like pykan (raw inputs and targets: ``standardize=False``; all
   training rows, no validation hold-out; ``lamb=0``; grid updates every 5 epochs up to
   epoch 45, pykan's schedule counted in ariasim epochs) with an increasing epoch budget
   (each a fresh, seeded fit) until its test RMSE is at most pykan's, or a fit takes over
   10x pykan's time; the time of the first fit that reaches it is the time to equal test
   error and the speed-up is pykan's time over it. Every optimiser is reported:
   ``lm`` (what ``optimizer="auto"``, the default, picks for this network: full-batch
   Levenberg-Marquardt / generalised Gauss-Newton, one epoch = one LM iteration, i.e. one
   Jacobian and up to 12 damped trial steps), ``lbfgs`` (full batch, one epoch = one
   L-BFGS step of up to 20 iterations, as pykan's step) and ``adam`` (mini-batches of
   128, one epoch = one pass; its grid updates at epochs 0, 5, 15, 40, 100).

Both libraries are warmed up first (one short untimed fit each), so that neither pays
torch's one-off initialisation inside its timing. ``--seed`` takes several seeds (data,
initialisation): each is a separate comparison, and the spread of the speed-ups is
printed at the end.

    pip install pykan pyyaml tqdm        # benchmark-only dependencies
    python benchmarks/bench_kan.py                    # default protocol
    python benchmarks/bench_kan.py --seed 0 1 2 3 4 --optimizers lm lbfgs
    python benchmarks/bench_kan.py --steps 100 --threads 2

References:
    Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756 (2024); pykan 0.2.x.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time

import numpy as np
import torch

from ariasim.surrogates.kan import KANRegressor


def target(X: np.ndarray) -> np.ndarray:
    return np.exp(np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2)


def run_pykan(
    X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, steps: int, seed: int
) -> dict[str, float]:
    from kan import KAN

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            f32 = torch.float32
            dataset = {
                "train_input": torch.tensor(X, dtype=f32),
                "train_label": torch.tensor(y[:, None], dtype=f32),
                "test_input": torch.tensor(Xt, dtype=f32),
                "test_label": torch.tensor(yt[:, None], dtype=f32),
            }
            t0 = time.perf_counter()
            model = KAN(
                width=[2, 5, 1],
                grid=5,
                k=3,
                seed=seed,
                auto_save=False,
                ckpt_path=os.path.join(tmp, "model"),
                device="cpu",
            )
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                model.fit(dataset, opt="LBFGS", steps=steps, lamb=0.0)
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                pred = model(dataset["test_input"]).numpy()[:, 0]
            leftovers = os.listdir(tmp)
        finally:
            os.chdir(cwd)
    return {
        "seconds": seconds,
        "rmse": float(np.sqrt(np.mean((pred - yt) ** 2))),
        "files_written": len(leftovers),
    }


def run_ariasim(
    X: np.ndarray,
    y: np.ndarray,
    Xt: np.ndarray,
    yt: np.ndarray,
    goal: float,
    optimizer: str,
    seed: int,
    threads: int,
    cap_seconds: float,
) -> dict[str, float]:
    full_batch = optimizer in ("lm", "lbfgs")
    ladder = (
        [5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 80, 100, 130, 160, 200]
        if full_batch
        else [25, 50, 100, 150, 200, 300, 450, 700, 1000, 1500]
    )
    # like with like: pykan trains on the raw inputs and targets, on all training rows,
    # without the sparsity penalty, with grid updates every 5 steps up to step 50
    common = {
        "hidden": (5,),
        "grid_size": 5,
        "spline_order": 3,
        "lamb": 0.0,
        "standardize": False,
        "prune_threshold": 0.0,
        "validation_fraction": 0.0,
        "patience": 10**6,
        "random_state": seed,
        "optimizer": optimizer,
        "n_threads": threads,
    }
    if optimizer == "lbfgs":
        common |= {"lr": 1.0}
    elif optimizer == "adam":
        common |= {"lr": 2e-2, "batch_size": 128}
    row: dict[str, float] = {}
    cap = 10.0 * cap_seconds
    for epochs in ladder:
        updates = (
            tuple(e for e in range(0, 50, 5) if e < epochs)
            if full_batch
            else tuple(e for e in (0, 5, 15, 40, 100) if e < epochs)
        )
        model = KANRegressor(max_epochs=epochs, grid_updates=updates, **common)
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
        rmse = float(np.sqrt(np.mean((model.predict(Xt) - yt) ** 2)))
        row = {
            "epochs": epochs,
            "seconds": seconds,
            "rmse": rmse,
            "epochs_run": len(model.history_),
        }
        if rmse <= goal:
            row["reached"] = 1.0
            return row
        if seconds > cap:
            break
    row["reached"] = 0.0
    return row


def warm_up(X: np.ndarray, y: np.ndarray, seed: int) -> None:
    """One short untimed fit of each library (torch's lazy initialisation, caches)."""
    from kan import KAN

    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            f32 = torch.float32
            data = {
                "train_input": torch.tensor(X[:200], dtype=f32),
                "train_label": torch.tensor(y[:200, None], dtype=f32),
                "test_input": torch.tensor(X[:200], dtype=f32),
                "test_label": torch.tensor(y[:200, None], dtype=f32),
            }
            KAN(
                width=[2, 5, 1],
                grid=5,
                k=3,
                seed=seed,
                auto_save=False,
                ckpt_path=os.path.join(tmp, "model"),
                device="cpu",
            ).fit(data, opt="LBFGS", steps=2, lamb=0.0)
        finally:
            os.chdir(cwd)
    for opt in ("lm", "lbfgs", "adam"):
        KANRegressor(
            hidden=(5,),
            max_epochs=2,
            optimizer=opt,
            random_state=seed,
            n_threads=torch.get_num_threads(),
        ).fit(X[:200], y[:200])


def compare(
    seed: int, n: int, steps: int, threads: int, optimizers: list[str]
) -> dict[str, dict[str, float]]:
    """One seeded comparison; prints pykan's row and one row per ariasim optimiser."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    Xt = rng.uniform(-1, 1, (n, 2))
    y, yt = target(X), target(Xt)
    warm_up(X, y, seed)
    print(
        f"seed {seed}: data exp(sin(pi x1) + x2^2), {n} train / {n} test rows; "
        f"[2, 5, 1], grid 5, k 3; torch threads {threads}"
    )
    ref = run_pykan(X, y, Xt, yt, steps, seed)
    print(
        f"pykan          : {steps:4d} LBFGS steps {ref['seconds']:8.2f} s  "
        f"test RMSE {ref['rmse']:.3e}  (files left in its tmp dir: {ref['files_written']})"
    )
    results = {"pykan": ref}
    for opt in optimizers:
        row = run_ariasim(X, y, Xt, yt, ref["rmse"], opt, seed, threads, ref["seconds"])
        row["speedup"] = ref["seconds"] / row["seconds"] if row["reached"] else 0.0
        results[f"ariasim_{opt}"] = row
        head = (
            f"ariasim ({opt:5s}): {int(row['epochs']):4d} epochs      {row['seconds']:8.2f} s  "
            f"test RMSE {row['rmse']:.3e}"
        )
        print(
            f"{head}  (reached pykan's)  time-to-equal-error speed-up x{row['speedup']:.2f}"
            if row["reached"]
            else f"{head}  (NOT reached pykan's within the cap)"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="training (= test) rows")
    parser.add_argument("--steps", type=int, default=50, help="pykan L-BFGS steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds")
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=["lm", "lbfgs", "adam"],
        choices=["lm", "lbfgs", "adam"],
        help="ariasim optimisers to time",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {
        str(seed): compare(seed, args.n, args.steps, args.threads, args.optimizers)
        for seed in args.seed
    }
    if len(args.seed) > 1:
        for opt in args.optimizers:
            ratios = np.array([r[f"ariasim_{opt}"]["speedup"] for r in results.values()])
            print(
                f"speed-up over seeds {args.seed} ({opt:5s}): "
                + " ".join(f"x{v:.2f}" for v in ratios)
                + f"  (min x{ratios.min():.2f}, median x{np.median(ratios):.2f}, "
                f"max x{ratios.max():.2f}; x0.00: not reached)"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
