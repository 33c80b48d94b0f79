"""Friction law from direct samples: ConstitutiveNetwork vs symbolic regression vs KAN.

Protocol (issue 13, section 4, direct ``(h, u, S)`` samples): ``--n`` training rows and as
many held-out test rows with ``h ~ U(0.05, 3)`` m, ``u ~ U(0, 25)`` m/s and
``cos_phi = cos(U(0, 40) deg)``; ``S`` from a known law times ``1 + 0.02 eps``
(2 % relative Gaussian noise, ``eps ~ N(0, 1)``). Two truths (row groups):

* ``voellmy``: ``S = mu g h cos_phi + g u^2 / xi`` with ``mu = 0.3``, ``xi = 400`` m/s^2;
* ``bingham-coulomb`` (three terms): ``S = mu g h cos_phi + nu u / h + tau`` with
  ``mu = 0.3``, ``nu = 0.05`` m^2/s, ``tau = 1`` m^2/s^2.

Learners, each on the same rows (inputs ``h, u, cos_phi``):

(a) :class:`~ariasim.discovery.ConstitutiveNetwork` (L0 best subset by BIC over the four
    default terms plus Bagnold's collisional term);
(b) :class:`~ariasim.surrogates.SymbolicRegressor` with a wall-clock budget of
    ``--sr-seconds`` (units given: h in m, u in m/s, S in m^2/s^2);
(c) :class:`~ariasim.surrogates.KANRegressor` (one hidden layer of 4, its defaults) and
    its symbolic formula (``formula_``, library snapping then a constant re-fit); the
    network's own test error is shown in brackets, the time includes the extraction;
(d) for the Voellmy truth, the *inverse* problem: ``ariasim discover`` on
    ``examples/voellmy_synthetic.toml`` (front positions of a simulated flow, made with the
    same law; no ``(h, u, S)`` samples at all), its discovered law (posterior medians of
    the most probable term subset) evaluated on the same test rows. KAN and SR are not run
    on the inverse problem: they would have to be trained through the simulator, which is
    not differentiable, from 14 front positions.

Reported per learner: relative test RMSE of ``S`` against the noise-free truth
(``rms(S_hat - S_true) / rms(S_true)``; the 2 % noise alone would give about 0.02 against
the noisy values), whether the right terms were found, the formula, its sympy node count
and the fit wall time. "Right terms" for the formulas of (b) and (c): the sympy-expanded
expression is a sum of exactly the true monomials (e.g. ``h*cos_phi`` and ``u**2``) with
positive coefficients; anything else (an extra monomial, a non-polynomial function) is
"no". For (a): the selected terms are exactly the true ones.

    python benchmarks/bench_discovery_direct.py                     # defaults
    python benchmarks/bench_discovery_direct.py --n 2000 --seed 0 --sr-seconds 25

Writes ``benchmarks/out/discovery_direct.json`` (with the command line) and
``benchmarks/out/discovery_direct.md`` (the table, the command in a header comment).
SR's wall-clock budget makes its result depend on the machine's speed and load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sympy as sp

G = 9.81

TRUTHS: dict[str, dict[str, float]] = {
    "voellmy": {"coulomb": 0.3, "turbulent": 1 / 400},
    "bingham-coulomb": {"coulomb": 0.3, "viscous": 0.05, "yield": 1.0},
}


def sample(n: int, rng: np.random.Generator, weights: dict[str, float]) -> tuple[Any, Any, Any]:
    """``(X, S_noisy, S_true)`` for ``n`` rows of the design in the module docstring."""
    from ariasim.discovery import TERMS

    X = pd.DataFrame(
        {
            "h": rng.uniform(0.05, 3.0, n),
            "u": rng.uniform(0.0, 25.0, n),
            "cos_phi": np.cos(np.deg2rad(rng.uniform(0.0, 40.0, n))),
        }
    )
    s = sum(
        w * TERMS[t].basis(X["h"], X["u"], g=G, cos_phi=X["cos_phi"]) for t, w in weights.items()
    )
    s_true = np.asarray(s, dtype=float)
    return X, s_true * (1 + 0.02 * rng.standard_normal(n)), s_true


def true_monomials(weights: dict[str, float]) -> set[sp.Expr]:
    """The monomials (no coefficients) of the true law in ``h, u, cos_phi``."""
    from ariasim.discovery import friction_formula

    return set(monomials(friction_formula(weights).expression) or [])


def monomials(expr: sp.Expr) -> list[sp.Expr] | None:
    """The monomials of the expanded expression, or None if one has a non-positive
    coefficient or is not a product of powers of ``h, u, cos_phi``."""
    out = []
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, rest = term.as_coeff_Mul()
        if not coeff > 0:
            return None
        for factor in sp.Mul.make_args(rest):
            base, exp = factor.as_base_exp()
            if not (base.is_Symbol or base == 1) or not exp.is_number:
                return None
        out.append(rest)
    return out


def rel_rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)) / np.sqrt(np.mean(truth**2)))


def run_network(X: Any, y: Any, Xt: Any, st: Any, truth: dict[str, float]) -> dict[str, Any]:
    from ariasim.discovery import DEFAULT_TERMS, ConstitutiveNetwork

    t0 = time.perf_counter()
    net = ConstitutiveNetwork(terms=(*DEFAULT_TERMS, "collisional")).fit(X, y)
    wall = time.perf_counter() - t0
    f = net.formula_
    return {
        "learner": "ConstitutiveNetwork (L0, BIC)",
        "rel_rmse": rel_rmse(net.predict(Xt), st),
        "right_terms": set(net.active_terms_) == set(truth),
        "found": {t: net.weights_[t] for t in net.active_terms_},
        "standard_errors": net.standard_errors_,
        "formula": str(f.expression),
        "nodes": f.complexity,
        "wall_s": wall,
    }


def formula_row(name: str, f: Any, pred: np.ndarray, st: Any, truth: dict[str, float], wall: float):
    mono = monomials(f.expression)
    return {
        "learner": name,
        "rel_rmse": rel_rmse(pred, st),
        "right_terms": mono is not None and set(mono) == true_monomials(truth),
        "formula": str(f.expression),
        "nodes": f.complexity,
        "wall_s": wall,
    }


def run_sr(X: Any, y: Any, Xt: Any, st: Any, truth: dict[str, float], seconds: float, seed: int):
    from ariasim.surrogates import SymbolicRegressor

    t0 = time.perf_counter()
    sr = SymbolicRegressor(
        max_time=seconds,
        random_state=seed,
        variable_units=["m", "m/s", ""],
        target_name="S",
        target_unit="m^2/s^2",
    ).fit(X, y)
    wall = time.perf_counter() - t0
    return formula_row(
        f"SymbolicRegressor ({seconds:g} s)", sr.formula_, sr.predict(Xt), st, truth, wall
    )


def run_kan(X: Any, y: Any, Xt: Any, st: Any, truth: dict[str, float], seed: int):
    from ariasim.surrogates import KANRegressor

    t0 = time.perf_counter()
    kan = KANRegressor(random_state=seed, target_name="S").fit(X, y)
    fit_s = time.perf_counter() - t0
    net_rmse = rel_rmse(kan.predict(Xt), st)
    f = kan.formula_  # symbolic extraction (library snapping + re-fit)
    wall = time.perf_counter() - t0
    row = formula_row("KANRegressor (formula_)", f, np.asarray(f(Xt)), st, truth, wall)
    row["network_rel_rmse"] = net_rmse
    row["learner"] += f" [network itself: {net_rmse:.4f}]"
    row["network_fit_s"] = fit_s
    return row


def run_inverse(Xt: Any, st: Any, truth: dict[str, float], config: str) -> dict[str, Any]:
    """The inverse problem: ``ariasim discover`` on the Voellmy example (front positions
    only, no (h, u, S) samples), its discovered law evaluated on the same test rows."""
    import tempfile

    from ariasim.apps.discovery.run import run_discovery
    from ariasim.discovery import friction_formula

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_discovery(config, Path(tmp) / "run")
    wall = time.perf_counter() - t0
    f = friction_formula(summary["discovered_weights"])
    return {
        "learner": f"Bayesian calibration, inverse ({summary['simulator_runs']} simulator runs)",
        "rel_rmse": rel_rmse(np.asarray(f(Xt)), st),
        "right_terms": set(summary["discovered_terms"]) == set(truth),
        "found": summary["discovered_weights"],
        "inclusion": summary["inclusion"],
        "formula": str(f.expression),
        "nodes": f.complexity,
        "wall_s": wall,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| truth | learner | test rel. RMSE | right terms | nodes | fit s | formula |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        text = r["formula"] if len(r["formula"]) <= 160 else r["formula"][:157] + "..."
        lines.append(
            f"| {r['truth']} | {r['learner']} | {r['rel_rmse']:.4f} | "
            f"{'yes' if r['right_terms'] else 'no'} | {r['nodes']} | {r['wall_s']:.3g} | "
            f"`{text}` |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="training rows (as many test rows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sr-seconds", type=float, default=25.0, help="SR wall-clock budget")
    ap.add_argument("--truth", nargs="+", default=list(TRUTHS), choices=list(TRUTHS))
    ap.add_argument("--skip", nargs="*", default=[], choices=["sr", "kan", "inverse"])
    ap.add_argument(
        "--inverse-config",
        default="examples/voellmy_synthetic.toml",
        help="the discover configuration of the inverse row (voellmy truth only)",
    )
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from ariasim.utils import spawn_seeds

    command = "python benchmarks/bench_discovery_direct.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    rows: list[dict[str, Any]] = []
    # one seed per truth whatever --truth selects (a truth's data do not depend on the others)
    seeds = dict(zip(TRUTHS, spawn_seeds(args.seed, len(TRUTHS)), strict=True))
    for name in args.truth:
        truth = TRUTHS[name]
        rng = np.random.default_rng(seeds[name])
        X, y, _ = sample(args.n, rng, truth)
        Xt, _, st = sample(args.n, rng, truth)
        found = [run_network(X, y, Xt, st, truth)]
        if "sr" not in args.skip:
            found.append(run_sr(X, y, Xt, st, truth, args.sr_seconds, args.seed))
        if "kan" not in args.skip:
            found.append(run_kan(X, y, Xt, st, truth, args.seed))
        if "inverse" not in args.skip and name == "voellmy":
            found.append(run_inverse(Xt, st, truth, args.inverse_config))
        for r in found:
            r["truth"] = name
            print(json.dumps({k: r[k] for k in ("truth", "learner", "rel_rmse", "right_terms")}))
        rows += found
    md = table(rows)
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "n": args.n, "seed": args.seed, "truths": TRUTHS, "rows": rows}
    (out / "discovery_direct.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "discovery_direct.md").write_text(f"<!-- {command} -->\n{md}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
