"""Active learning against Latin hypercubes of growing size: simulator runs to a given
posterior accuracy (issue 13, section 3).

Problem: the default shallow-flow slope (35 deg chute into a flat run-out), plain model
(N = 0), synthetic front positions at 2, 4, ..., 30 s made with Voellmy friction
(mu = 0.3, xi = 400 m/s^2) plus 1 m Gaussian noise; four candidate terms (coulomb,
turbulent, viscous, yield) under a spike-and-slab prior (inclusion 0.5 each).

Reference posterior ("long run" with the true simulator, no emulator): for every term
subset that a 200-run active calibration gives more than 1e-3 probability, ``--ref-n``
draws from a defensive mixture (0.8 Gaussian fitted to that subset's emulated posterior,
inflated 1.5x, + 0.2 its slab prior) are run through the simulator and importance-weighted
with the exact likelihood; this gives each subset's evidence and weighted draws, hence
reference inclusion probabilities and model-averaged marginals. Subsets left out hold less
than 0.1 % of the mass.

Accuracy of a calibration: ``err`` = mean over the terms the reference includes
(inclusion > 0.5) of W1(marginal, reference marginal) / reference sd, and ``dincl`` =
largest |inclusion - reference inclusion|. Target (fixed before the runs): err <= 0.25 and
dincl <= 0.1. Runs to target = the smallest budget of the grid from which every larger
budget of the grid meets it too (per seed; the accuracy of one run is itself noisy).

Usage::

    python benchmarks/bench_discovery_design.py --out benchmarks/out/discovery_design
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from scipy.special import logsumexp
from scipy.stats import wasserstein_distance

from ariasim.discovery.calibration import calibrate
from ariasim.discovery.posterior import Observations, gaussian_loglike
from ariasim.discovery.prior import SpikeSlabPrior, TermPrior
from ariasim.simulators.shallowflow import FrictionLaw, simulate

TIMES = np.arange(2.0, 31.0, 2.0)
N_CELLS = 200
TRUTH = {"coulomb": 0.3, "turbulent": 0.0025, "viscous": 0.0, "yield": 0.0}
PRIOR = SpikeSlabPrior(
    [
        TermPrior("coulomb", 0.8),
        TermPrior("turbulent", 0.02),
        TermPrior("viscous", 2.0),
        TermPrior("yield", 5.0),
    ]
)
SIGMA = 1.0


def run_one(w: np.ndarray) -> np.ndarray:
    mu, ix, nu, tau = (float(v) for v in w)
    law = FrictionLaw(mu=mu, xi=1.0 / ix if ix > 0 else float("inf"), nu=nu, tau=tau)
    return simulate(friction=law, n_cells=N_CELLS).front_at(TIMES)


def forward(W: np.ndarray) -> np.ndarray:
    return np.array([run_one(w) for w in W])


def observations(seed: int = 1) -> Observations:
    rng = np.random.default_rng(seed)
    y = run_one(np.array(list(TRUTH.values()))) + rng.normal(0.0, SIGMA, TIMES.size)
    return Observations(y, np.full(TIMES.size, SIGMA), [f"front@{t:g}s" for t in TIMES])


def job(args: tuple[str, int, int, int]) -> dict:
    design, budget, seed, steps = args
    t0 = time.perf_counter()
    res = calibrate(
        forward,
        PRIOR,
        observations(),
        design=design,
        initial=20,
        batch=4,
        max_runs=budget,
        ll_tol=1e-9,  # a fixed budget: no early stop
        seed=seed,
        steps=steps,
    )
    return {
        "design": design,
        "budget": budget,
        "seed": seed,
        "runs": len(res.runs_X),
        "samples": res.samples.tolist(),
        "inclusion": res.inclusion,
        "models": [(mp.mask, mp.samples) for mp in res.models],
        "probabilities": [float(p["probability"]) for p in res.model_probabilities],
        "table": res.model_probabilities,
        "seconds": time.perf_counter() - t0,
    }


def reference(n_per_model: int, steps: int, workers: int) -> dict:
    pilot = job(("active", 200, 99, steps))
    prob = {tuple(t["terms"]): t["probability"] for t in pilot["table"]}
    obs = observations()
    rng = np.random.default_rng(2026)
    parts = []
    names = PRIOR.names
    for mask, samples in pilot["models"]:
        terms = tuple(n for n, on in zip(names, mask, strict=True) if on)
        if prob[terms] < 1e-3 or not any(mask):
            continue
        m = np.asarray(mask)
        lo, hi = PRIOR.low[m], PRIOR.high[m]
        u = (samples[:, m] - lo) / (hi - lo)
        mu, cov = u.mean(0), np.atleast_2d(np.cov(u, rowvar=False)) * 1.5**2
        cov += 1e-10 * np.eye(len(mu))
        n_g = round(0.8 * n_per_model)
        x = np.vstack(
            [rng.multivariate_normal(mu, cov, n_g), rng.random((n_per_model - n_g, len(mu)))]
        )
        inside = np.all((x >= 0) & (x <= 1), axis=1)
        d = x - mu
        lg = -0.5 * (
            np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
            + np.linalg.slogdet(cov)[1]
            + len(mu) * np.log(2 * np.pi)
        )
        logq = np.logaddexp(np.log(0.8) + lg, np.where(inside, np.log(0.2), -np.inf))
        W = np.zeros((inside.sum(), len(names)))
        W[:, m] = lo + x[inside] * (hi - lo)
        with ProcessPoolExecutor(workers) as ex:
            Y = np.array(list(ex.map(run_one, W, chunksize=16)))
        logw = np.full(len(x), -np.inf)
        logw[inside] = gaussian_loglike(Y, obs) - logq[inside]
        log_z = float(logsumexp(logw) - np.log(len(x)))
        w = np.exp(logw[inside] - logw[inside].max())
        parts.append(
            {
                "terms": terms,
                "log_prior": PRIOR.log_model_prior(m),
                "log_z": log_z,
                "W": W,
                "w": w / w.sum(),
                "ess": float(w.sum() ** 2 / (w**2).sum()),
            }
        )
    lp = np.array([p["log_prior"] + p["log_z"] for p in parts])
    pm = np.exp(lp - logsumexp(lp))
    W = np.vstack([p["W"] for p in parts])
    wt = np.concatenate([p["w"] * q for p, q in zip(parts, pm, strict=True)])
    incl = {
        n: float(sum(q for p, q in zip(parts, pm, strict=True) if n in p["terms"])) for n in names
    }
    return {
        "W": W,
        "weights": wt,
        "inclusion": incl,
        "subsets": [
            {
                "terms": list(p["terms"]),
                "probability": float(q),
                "ess": p["ess"],
                "log_z": p["log_z"],
            }
            for p, q in zip(parts, pm, strict=True)
        ],
        "simulator_runs": len(W) + pilot["runs"],
    }


def accuracy(res: dict, ref: dict) -> dict:
    s = np.asarray(res["samples"])
    errs = {}
    for k, n in enumerate(PRIOR.names):
        if ref["inclusion"][n] <= 0.5:
            continue
        col = ref["W"][:, k]
        mean = np.average(col, weights=ref["weights"])
        sd = np.sqrt(np.average((col - mean) ** 2, weights=ref["weights"]))
        errs[n] = float(wasserstein_distance(s[:, k], col, None, ref["weights"]) / sd)
    dincl = max(abs(res["inclusion"][n] - ref["inclusion"][n]) for n in PRIOR.names)
    err = float(np.mean(list(errs.values())))
    return {"err": err, "per_term": errs, "dincl": float(dincl), "ok": err <= 0.25 and dincl <= 0.1}


def runs_needed(rows: list[dict], design: str, seed: int) -> float:
    """The smallest budget from which every larger budget of the grid meets the target."""
    mine = sorted((r["runs"], r["ok"]) for r in rows if r["design"] == design and r["seed"] == seed)
    first = float("inf")
    for runs, ok in reversed(mine):
        if not ok:
            break
        first = float(runs)
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="benchmarks/out/discovery_design")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-list", default="", help="these seeds instead of 0..seeds-1")
    ap.add_argument("--active", default="28,36,44,52,60,80,100,140")
    ap.add_argument("--lhs", default="30,60,120,240,480")
    ap.add_argument("--ref-n", type=int, default=1500)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reference", default="", help="reuse a saved reference.npz")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ref_file = out / "reference.npz"
    if a.reference and Path(a.reference).exists():
        z = np.load(a.reference, allow_pickle=False)
        ref = json.loads(str(z["meta"]))
        ref.update(W=z["W"], weights=z["weights"])
    else:
        ref = reference(a.ref_n, a.steps, a.workers)
        meta = json.dumps({k: ref[k] for k in ("inclusion", "subsets", "simulator_runs")})
        np.savez(ref_file, W=ref["W"], weights=ref["weights"], meta=np.array(meta))
    print(f"reference: {ref['simulator_runs']} runs, inclusion {ref['inclusion']}", flush=True)
    for sub in ref["subsets"]:
        print("  ", sub, flush=True)
    sizes = {
        d: [int(b) for b in v.split(",") if b] for d, v in (("active", a.active), ("lhs", a.lhs))
    }
    seeds = [int(x) for x in a.seed_list.split(",")] if a.seed_list else list(range(a.seeds))
    jobs = [(d, b, s, a.steps) for d in sizes for s in seeds for b in sizes[d]]
    rows = []
    with ProcessPoolExecutor(a.workers) as ex:
        for r in ex.map(job, jobs):
            acc = accuracy(r, ref)
            row = {k: r[k] for k in ("design", "budget", "seed", "runs", "inclusion", "seconds")}
            row.update(acc)
            rows.append(row)
            print(
                f"{r['design']:6s} seed {r['seed']} runs {r['runs']:4d}: err {acc['err']:.3f} "
                f"dincl {acc['dincl']:.3f} ok {acc['ok']} ({r['seconds']:.0f} s)",
                flush=True,
            )
    needed: dict[str, list[float]] = {"active": [], "lhs": []}
    for design in needed:
        for s in seeds if sizes[design] else []:
            needed[design].append(runs_needed(rows, design, s))
    med = {d: float(np.median(v)) if v else float("nan") for d, v in needed.items()}
    ratio = med["lhs"] / med["active"]
    print("\n| design | runs to target per seed | median |\n|---|---|---|")
    for d, v in needed.items():
        cells = ", ".join(">max" if not np.isfinite(x) else f"{x:.0f}" for x in v)
        print(f"| {d} | {cells} | {med[d]:g} |")
    print(f"\nLHS / active runs to the same accuracy: {ratio:.2f}x (inf: LHS never reached it)")
    summary = {
        "reference": {k: ref[k] for k in ("inclusion", "subsets", "simulator_runs")},
        "rows": rows,
        "runs_needed": needed,
        "median_runs": med,
        "ratio_lhs_over_active": ratio,
        "target": {"err": 0.25, "dincl": 0.1},
        "seconds": time.perf_counter() - t0,
        "command": "python benchmarks/bench_discovery_design.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"wrote {out / 'summary.json'} ({summary['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
