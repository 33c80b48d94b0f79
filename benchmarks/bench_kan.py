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
   epoch 45) with an increasing epoch budget (each a fresh, seeded fit) until its test
   RMSE is at most pykan's, or a fit takes over 10x pykan's time; the time of the first
   fit that reaches it is the time to equal test error and the speed-up is pykan's time
   over it. Both optimisers are reported: ``lbfgs`` (full batch, one
   epoch = one L-BFGS step of up to 20 iterations, as pykan's step) and ``adam``.

    pip install pykan pyyaml tqdm        # benchmark-only dependencies
    python benchmarks/bench_kan.py                    # default protocol
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


def run_pykan(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray,
              steps: int, seed: int) -> dict[str, float]:
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
            model = KAN(width=[2, 5, 1], grid=5, k=3, seed=seed, auto_save=False,
                        ckpt_path=os.path.join(tmp, "model"), device="cpu")
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                model.fit(dataset, opt="LBFGS", steps=steps, lamb=0.0)
            seconds = time.perf_counter() - t0
            with torch.no_grad():
                pred = model(dataset["test_input"]).numpy()[:, 0]
            leftovers = os.listdir(tmp)
        finally:
            os.chdir(cwd)
    return {"seconds": seconds, "rmse": float(np.sqrt(np.mean((pred - yt) ** 2))),
            "files_written": len(leftovers)}


def run_ariasim(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, goal: float,
                optimizer: str, seed: int, threads: int, cap_seconds: float
                ) -> dict[str, float]:
    ladder = [5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 80, 100, 130, 160, 200] \
        if optimizer == "lbfgs" else [25, 50, 100, 150, 200, 300, 450, 700, 1000, 1500]
    # like with like: pykan trains on the raw inputs and targets, on all training rows,
    # without the sparsity penalty, with grid updates every 5 steps up to step 50
    common = {"hidden": (5,), "grid_size": 5, "spline_order": 3, "lamb": 0.0,
              "standardize": False,
              "prune_threshold": 0.0, "validation_fraction": 0.0, "patience": 10**6,
              "random_state": seed, "optimizer": optimizer, "n_threads": threads}
    if optimizer == "lbfgs":
        common |= {"lr": 1.0}
    else:
        common |= {"lr": 2e-2, "batch_size": 128}
    row: dict[str, float] = {}
    cap = 10.0 * cap_seconds
    for epochs in ladder:
        updates = tuple(e for e in range(0, 50, 5) if e < epochs) if optimizer == "lbfgs" \
            else tuple(e for e in (0, 5, 15, 40, 100) if e < epochs)
        model = KANRegressor(max_epochs=epochs, grid_updates=updates, **common)
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
        rmse = float(np.sqrt(np.mean((model.predict(Xt) - yt) ** 2)))
        row = {"epochs": epochs, "seconds": seconds, "rmse": rmse,
               "epochs_run": len(model.history_)}
        if rmse <= goal:
            row["reached"] = 1.0
            return row
        if seconds > cap:
            break
    row["reached"] = 0.0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="training (= test) rows")
    parser.add_argument("--steps", type=int, default=50, help="pykan L-BFGS steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    X = rng.uniform(-1, 1, (args.n, 2))
    Xt = rng.uniform(-1, 1, (args.n, 2))
    y, yt = target(X), target(Xt)
    print(f"data: exp(sin(pi x1) + x2^2), {args.n} train / {args.n} test rows; "
          f"[2, 5, 1], grid 5, k 3; torch threads {args.threads}")
    ref = run_pykan(X, y, Xt, yt, args.steps, args.seed)
    print(f"pykan  : {args.steps} LBFGS steps  {ref['seconds']:8.2f} s  "
          f"test RMSE {ref['rmse']:.3e}  (files left in its tmp dir: {ref['files_written']})")
    results = {"pykan": ref}
    for opt in ("lbfgs", "adam"):
        row = run_ariasim(X, y, Xt, yt, ref["rmse"], opt, args.seed, args.threads,
                          ref["seconds"])
        results[f"ariasim_{opt}"] = row
        status = "reached" if row["reached"] else "NOT reached"
        ratio = ref["seconds"] / row["seconds"]
        print(f"ariasim ({opt:5s}): {int(row['epochs']):4d} epochs  {row['seconds']:8.2f} s  "
              f"test RMSE {row['rmse']:.3e}  ({status} pykan's)  "
              f"time-to-equal-error speed-up x{ratio:.2f}" if row["reached"] else
              f"ariasim ({opt:5s}): {int(row['epochs']):4d} epochs  {row['seconds']:8.2f} s  "
              f"test RMSE {row['rmse']:.3e}  ({status} pykan's within the cap)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
