"""Symbolic-regression benchmark: exact recovery and R^2 of ariasim vs pyoperon vs gplearn.

Two equation sets (``benchmarks/feynman_data.py``): ``feynman``, the 100 AI Feynman
equations with their published variable ranges, and ``field``, 15 textbook formulas of
this project's field; every variable carries a unit. Every method gets the same data
(1000 training rows, 1000 noise-free test rows), the same noise (Gaussian, standard
deviation ``noise`` times the RMS of the target: SRBench's definition), one thread and
the same wall-clock budget per fit; raw pyoperon also gets an evaluation cap.

Exact recovery follows SRBench: a model is exact when, after rounding its constants to 3
decimals, ``truth - model`` or ``model / truth`` simplifies to a constant (checked in the
fit's own process under a time limit and a size cap, so it cannot hang). Two judges:
``exact`` is SRBench's (every symbol real); ``exact_domain`` applies the same rule with each
variable of a strictly positive sampling range declared positive, and also accepts a model
whose ``(model/truth)**2`` is a nonzero constant if ``model/truth`` keeps one sign on the
1000 test rows. It is sound: it uses only identities true on the sampling box, and a
continuous ratio of constant square that keeps its sign on the connected box is constant
(a sign-flip region of a fraction p of the box escapes the test rows with chance (1-p)^1000).
``--rejudge`` judges stored rows that predate ``exact_domain`` into
``STORE/judged_domain.jsonl`` (the row files are not rewritten); ``--report`` shows both.

Each fit runs in its own spawned process (one fit per core with ``--jobs`` = cores,
single-threaded BLAS/OpenMP); a fit that crashes, or is still running at 3x its budget +
30 s and is killed, is recorded as a failure. Every finished fit is appended as one JSON
line to ``STORE/<set>__<method>__noise<noise>.jsonl``; a restart skips each (set,
equation, method, noise, seed, budget) already stored. Tasks run noise-major, then per
equation with the methods interleaved, so a partial run compares methods on the same
equations.

    python benchmarks/bench_symbolic.py --set feynman --budget 20 --noise 0 0.01 \\
        --methods ariasim pyoperon-defaults gplearn --jobs 2 --store DIR
    python benchmarks/bench_symbolic.py --set feynman --budget 20 --store DIR --report
    python benchmarks/bench_symbolic.py --set field --budget 3 --limit 4 --store DIR
    python benchmarks/bench_symbolic.py --set feynman --store DIR --rejudge --report

Raw pyoperon stops at the time budget or at ``--max-evaluations`` (default 10^7)
evaluations, whichever comes first; each row records the evaluation count where the
method's wrapper exposes it, the fit's wall and CPU seconds (CPU/wall well below 1 means
the machine was loaded) and the git commit.

``--report`` runs nothing: it prints the summary per method and noise (exact %, median
R^2, R^2 > 0.999 %, failures, budget overruns) and the per-equation table, and writes
``summary.json`` and ``table.md`` in the store.

References:
    Udrescu & Tegmark, "AI Feynman", Sci. Adv. 6 (2020) eaay2631 (equations and ranges).
    La Cava et al., "Contemporary symbolic regression methods and their relative
    performance" (SRBench), NeurIPS Datasets and Benchmarks 2021 (protocol, noise,
    exactness rule).
    Burlacu, Kronberger, Kommenda, "Operon C++", GECCO 2020 (pyoperon).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feynman_data import SETS, Equation, sample, truth_formula

N_TRAIN = 1000
N_TEST = 1000
OVERRUN = 0.10  # a fit more than 10 % over its budget is an overrun
MAX_OPS = 150  # SRBench check skipped (not exact) above this many operations
EXACT_TIMEOUT = 30.0  # seconds of sympy for one exactness check at most
PYOPERON_MAX_EVALUATIONS = 10**7
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
KEY_FIELDS = ("set", "equation", "method", "noise", "seed", "budget")
MODEL_CHARS = 2000  # a stored model string is cut at this length
#: The domain judge of a fit without a model (error, crash, kill).
NOT_EXACT_ON_DOMAIN = {"exact_domain": False, "exact_domain_check": "no-model"}
JUDGED_FILE = "judged_domain.jsonl"  # --rejudge's results, next to the store's rows


# ----------------------------------------------------------------------------- store


def task_key(
    set_name: str, equation: str, method: str, noise: float, seed: int, budget: float
) -> tuple:
    """The identity of one fit in the store (floats normalised so 0.01 == 1e-2)."""
    return (
        str(set_name),
        str(equation),
        str(method),
        float(f"{float(noise):.6g}"),
        int(seed),
        float(f"{float(budget):.6g}"),
    )


def row_key(row: dict[str, Any]) -> tuple:
    """:func:`task_key` of a stored row."""
    return task_key(*(row[k] for k in KEY_FIELDS))


def store_file(store: Path, set_name: str, method: str, noise: float) -> Path:
    """The JSON-lines file of one (set, method, noise)."""
    return Path(store) / f"{set_name}__{method}__noise{float(noise):g}.jsonl"


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one JSON line with a single ``write`` (O_APPEND), then fsync.

    If an earlier writer died in the middle of a line, a newline is written first so the
    new row starts on a line of its own (the broken line is skipped by :func:`read_store`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_json_safe(row), allow_nan=False, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_store(store: Path) -> tuple[list[dict[str, Any]], int]:
    """All rows stored in ``store``'s ``*.jsonl`` files, and the number of broken lines.

    :data:`JUDGED_FILE` (the judgements of ``--rejudge``) is not a file of rows.
    """
    rows: list[dict[str, Any]] = []
    broken = 0
    for path in sorted(Path(store).glob("*.jsonl")):
        if path.name == JUDGED_FILE:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row_key(row)
            except (ValueError, KeyError, TypeError):
                broken += 1
                continue
            rows.append(row)
    return rows, broken


def done_keys(rows: Iterable[dict[str, Any]]) -> set[tuple]:
    """Keys of the fits present in ``rows``."""
    return {row_key(r) for r in rows}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ----------------------------------------------------------------------------- tasks


def make_tasks(
    set_name: str,
    equations: Sequence[Equation],
    methods: Sequence[str],
    noises: Sequence[float],
    seeds: Sequence[int],
    budget: float,
) -> list[dict[str, Any]]:
    """Noise-major, then equation, then seed, with the methods interleaved innermost."""
    return [
        {
            "set": set_name,
            "equation": eq.name,
            "method": m,
            "noise": float(nz),
            "seed": int(s),
            "budget": float(budget),
        }
        for nz in noises
        for eq in equations
        for s in seeds
        for m in methods
    ]


def make_data(
    eq: Equation, set_name: str, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training rows (noisy target) and noise-free test rows; independent of the method."""
    from ariasim.utils import spawn_seeds

    entropy = [int(seed), zlib.crc32(f"{set_name}/{eq.name}".encode()), round(noise * 1e6)]
    s_train, s_test, s_noise = spawn_seeds(np.random.SeedSequence(entropy), 3)
    X, y = sample(eq, N_TRAIN, np.random.default_rng(s_train))
    Xt, yt = sample(eq, N_TEST, np.random.default_rng(s_test))
    if noise > 0:
        rms = float(np.sqrt(np.mean(y**2)))
        y = y + np.random.default_rng(s_noise).normal(0.0, noise * rms, len(y))
    return X, y, Xt, yt


# ----------------------------------------------------------------------------- exactness


class _CheckTimeout(BaseException):
    """Raised by the alarm inside sympy (a BaseException: sympy's handlers miss it)."""


def _time_limited(check: Callable[[], tuple[bool, str]], timeout: float) -> tuple[bool, str]:
    """``check()`` under a SIGALRM time limit: ``(False, "timeout")`` when it runs out.

    An exception inside ``check`` gives ``(False, "error")`` (sympy failing on a
    pathological model: not exact). The limit applies only in a process's main thread.
    """
    use_alarm = timeout > 0 and hasattr(signal, "setitimer")
    old = None
    if use_alarm:
        try:

            def _raise(signum: int, frame: Any) -> None:
                raise _CheckTimeout

            old = signal.signal(signal.SIGALRM, _raise)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        except ValueError:  # not the main thread
            use_alarm = False
    try:
        try:
            return check()
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except _CheckTimeout:  # also one that fired after check() returned, before the reset
        return False, "timeout"
    except Exception:
        return False, "error"
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)


def _round3(expr: Any) -> Any:
    """``expr`` with every float constant rounded to 3 decimals (SRBench)."""
    import sympy as sp

    return expr.xreplace({f: sp.Float(round(float(f), 3)) for f in expr.atoms(sp.Float)})


def _is_constant(expr: Any, *, nonzero: bool) -> bool:
    """True if ``expr`` has no free symbol (and, with ``nonzero``, is finite and not 0)."""
    if expr.free_symbols:
        return False
    return not nonzero or (expr.is_finite is not False and expr != 0)


def _srbench_rule(rounded: Any, truth: Any) -> bool:
    """``truth - rounded`` or ``rounded / truth`` simplifies to a (nonzero finite) constant."""
    import sympy as sp

    if _is_constant(sp.simplify(truth - rounded), nonzero=False):  # a constant offset, or 0
        return True
    return _is_constant(sp.simplify(rounded / truth), nonzero=True)


def exact_check(model: Any, truth: Any, timeout: float = EXACT_TIMEOUT) -> tuple[bool, str]:
    """SRBench's rule: round constants to 3 decimals; truth - model or model/truth constant.

    Every symbol is declared real. Returns ``(exact, status)`` with status ``ok``,
    ``no-model``, ``too-large`` (more than ``MAX_OPS`` operations: not exact), ``timeout``
    or ``error``. The time limit uses SIGALRM and applies only in a process's main thread.
    """
    import sympy as sp

    if model is None:
        return False, "no-model"

    def check() -> tuple[bool, str]:
        real = {s: sp.Symbol(s.name, real=True) for s in model.free_symbols}
        rounded = _round3(model.xreplace(real))
        if sp.count_ops(rounded) > MAX_OPS:
            return False, "too-large"
        t = truth.xreplace({s: sp.Symbol(s.name, real=True) for s in truth.free_symbols})
        return _srbench_rule(rounded, t), "ok"

    return _time_limited(check, timeout)


def domain_symbols(variables: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """One sympy symbol per ``(name, low, high, ...)``: positive if ``low > 0``, else real."""
    import sympy as sp

    return {
        str(v[0]): sp.Symbol(str(v[0]), positive=True)
        if float(v[1]) > 0
        else sp.Symbol(str(v[0]), real=True)
        for v in variables
    }


def one_sign_ratio(model: Any, truth: Any, symbols: Sequence[Any], X: np.ndarray) -> bool:
    """True if ``model / truth`` at the rows of ``X`` is finite, nonzero and of one sign.

    ``symbols`` name the columns of ``X``; a model with any other symbol is not judged
    (False).
    """
    import sympy as sp

    if not (model.free_symbols | truth.free_symbols) <= set(symbols):
        return False
    X = np.asarray(X, dtype=float)
    with np.errstate(all="ignore"):
        cols = [X[:, j] for j in range(X.shape[1])]
        m = np.asarray(sp.lambdify(symbols, model, "numpy")(*cols))
        t = np.asarray(sp.lambdify(symbols, truth, "numpy")(*cols))
        if np.iscomplexobj(m) or np.iscomplexobj(t):
            return False
        q = np.broadcast_to(m.astype(float) / t.astype(float), (len(X),))
    if len(q) == 0 or not np.isfinite(q).all():
        return False
    return bool((q > 0).all() or (q < 0).all())


def exact_domain_check(
    model: Any,
    truth: Any,
    variables: Sequence[Sequence[Any]],
    X: np.ndarray,
    timeout: float = EXACT_TIMEOUT,
) -> tuple[bool, str]:
    """SRBench's rule on the sampling domain (see the module docstring).

    As :func:`exact_check`, but each variable sampled on a strictly positive range
    (``low > 0`` in ``variables``, ``(name, low, high, ...)`` per column of ``X``) is
    declared positive, in the model and the truth; a model is also exact when
    ``(model / truth)**2`` simplifies (``simplify``, then Fu's trigonometric rules where
    trigonometric functions remain) to a nonzero finite constant and ``model / truth`` has
    one sign on the test rows ``X`` (a continuous ratio whose square is constant is
    constant where it does not change sign). Same statuses as :func:`exact_check`.
    """
    import sympy as sp
    from sympy.functions.elementary.trigonometric import TrigonometricFunction

    if model is None:
        return False, "no-model"

    def check() -> tuple[bool, str]:
        syms = domain_symbols(variables)

        def declare(e: Any) -> Any:
            return e.xreplace(
                {s: syms.get(s.name, sp.Symbol(s.name, real=True)) for s in e.free_symbols}
            )

        rounded = _round3(declare(model))
        if sp.count_ops(rounded) > MAX_OPS:
            return False, "too-large"
        t = declare(truth)
        if _srbench_rule(rounded, t):
            return True, "ok"
        square = sp.simplify((rounded / t) ** 2)
        if square.free_symbols and square.has(TrigonometricFunction):
            square = sp.fu(square)  # half-angle and other identities simplify() misses
        if not _is_constant(square, nonzero=True):
            return False, "ok"
        return one_sign_ratio(rounded, t, [syms[str(v[0])] for v in variables], X), "ok"

    return _time_limited(check, timeout)


def is_exact(model: Any, truth: Any) -> bool:
    """True if ``model`` recovers ``truth`` under SRBench's rule (:func:`exact_check`)."""
    return exact_check(model, truth)[0]


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination; non-finite predictions count as 0."""
    pred = np.where(np.isfinite(pred), pred, 0.0)
    return float(1.0 - np.mean((y - pred) ** 2) / np.var(y))


# ----------------------------------------------------------------------------- methods
# Each returns (sympy expression or None, predict function, extra info for the row).


def run_ariasim(eq: Equation, X: np.ndarray, y: np.ndarray, budget: float, seed: int):
    from ariasim.surrogates.symbolic import SymbolicRegressor

    est = SymbolicRegressor(
        max_time=budget,
        random_state=seed,
        variable_names=eq.names,
        variable_units=eq.units,
        target_unit=eq.unit,
        n_jobs=1,
    ).fit(X, y)
    stats = dict(getattr(est, "search_stats_", {}) or {})
    info = {k: stats.get(k) for k in ("evaluation_count", "generations") if k in stats}
    return est.formula_.expression, est.predict, info


def run_pyoperon(
    eq: Equation,
    X: np.ndarray,
    y: np.ndarray,
    budget: float,
    seed: int,
    max_evaluations: int = PYOPERON_MAX_EVALUATIONS,
):
    from pyoperon.sklearn import SymbolicRegressor

    from ariasim.surrogates.parse import parse_expression

    est = SymbolicRegressor(
        max_time=max(1, round(budget)),  # pyoperon takes whole seconds
        random_state=seed,
        n_threads=1,
        generations=10**6,  # time or evaluations stop it, not generations
        max_evaluations=int(max_evaluations),
    )
    est.fit(X, y)
    # full precision: SRBench's 3-decimal rounding is applied in exact_check, to every
    # method alike (pyoperon's own 3-decimal string would zero small constants first)
    text = est.get_model_string(est.model_, precision=17, names=eq.names)
    try:
        expr = parse_expression(text, eq.names)
    except Exception:
        expr = None
    stats = dict(getattr(est, "stats_", {}) or {})
    info = {k: stats.get(k) for k in ("evaluation_count", "generations") if k in stats}
    info["max_evaluations"] = int(max_evaluations)
    return expr, est.predict, info


def _gplearn_to_sympy(program: list, names: Sequence[str]):
    import sympy as sp

    syms = [sp.Symbol(n, real=True) for n in names]
    ops = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "sqrt": lambda a: sp.sqrt(sp.Abs(a)),
        "log": lambda a: sp.log(sp.Abs(a)),
        "neg": lambda a: -a,
        "inv": lambda a: 1 / a,
        "abs": sp.Abs,
        "max": sp.Max,
        "min": sp.Min,
        "sin": sp.sin,
        "cos": sp.cos,
        "tan": sp.tan,
    }
    pos = 0

    def walk():
        nonlocal pos
        node = program[pos]
        pos += 1
        if isinstance(node, (int, np.integer)):
            return syms[int(node)]
        if isinstance(node, float):
            return sp.Float(node)
        args = [walk() for _ in range(node.arity)]
        return ops[node.name](*args)

    return walk()


def run_gplearn(eq: Equation, X: np.ndarray, y: np.ndarray, budget: float, seed: int):
    from gplearn.genetic import SymbolicRegressor

    fs = ("add", "sub", "mul", "div", "sqrt", "log", "sin", "cos", "neg", "inv")
    est = SymbolicRegressor(
        population_size=1000,
        generations=1,
        warm_start=True,
        function_set=fs,
        random_state=seed,
        n_jobs=1,
        parsimony_coefficient=0.001,
    )
    start = time.perf_counter()
    gen = 1
    est.fit(X, y)
    # gplearn has no time budget: add generations while the mean generation still fits
    while (time.perf_counter() - start) * (gen + 1) / gen < budget:
        gen += 1
        est.set_params(generations=gen)
        est.fit(X, y)
    expr = _gplearn_to_sympy(est._program.program, eq.names)
    return expr, est.predict, {"generations": gen}


METHODS: dict[str, Callable] = {
    "ariasim": run_ariasim,
    "pyoperon-defaults": run_pyoperon,
    "gplearn": run_gplearn,
}
#: Modules each method imports: imported before its clock starts (not part of the budget).
METHOD_MODULES: dict[str, tuple[str, ...]] = {
    "ariasim": ("ariasim.surrogates.symbolic", "sympy"),
    "pyoperon-defaults": ("pyoperon.sklearn", "ariasim.surrogates.parse", "sympy"),
    "gplearn": ("gplearn.genetic", "sympy"),
}


# ----------------------------------------------------------------------------- one fit


def run_fit(task: dict[str, Any], kill_at: float | None = None) -> dict[str, Any]:
    """Run one fit (in the current process) and return its row.

    ``kill_at`` (a ``time.time()``) is when the parent kills this process: the two
    exactness checks end 5 s before it, the strict one gets at most half the time left,
    the domain one what is then left (each never more than ``EXACT_TIMEOUT``).
    """
    eq = next(e for e in SETS[task["set"]] if e.name == task["equation"])
    X, y, Xt, yt = make_data(eq, task["set"], task["noise"], task["seed"])
    row: dict[str, Any] = dict(task)
    row["loadavg_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for module in METHOD_MODULES.get(task["method"], ()):
        importlib.import_module(module)
    if "torch" in sys.modules:  # one thread, like BLAS and OpenMP (set for the workers)
        sys.modules["torch"].set_num_threads(1)
    w0, c0 = time.perf_counter(), time.process_time()
    extra = {}
    if task["method"] == "pyoperon-defaults" and task.get("max_evaluations"):
        extra["max_evaluations"] = task["max_evaluations"]
    try:
        expr, predict, info = METHODS[task["method"]](
            eq, X, y, task["budget"], task["seed"], **extra
        )
    except Exception as exc:  # a fit that raises is a failure, R2 missing
        row.update(
            status="error",
            wall_s=time.perf_counter() - w0,
            cpu_s=time.process_time() - c0,
            exact=False,
            r2=None,
            model=repr(exc)[:MODEL_CHARS],
            **NOT_EXACT_ON_DOMAIN,
        )
        return row
    row.update(wall_s=time.perf_counter() - w0, cpu_s=time.process_time() - c0, **info)
    with np.errstate(all="ignore"):
        try:
            score = r2(yt, np.asarray(predict(Xt), dtype=float).reshape(-1))
        except Exception:
            score = float("-inf")
    truth = truth_formula(eq).expression
    # the two checks share the time left before the kill; the strict one gets half of it
    timeout = EXACT_TIMEOUT
    if kill_at is not None:
        timeout = min(timeout, max(1.0, (kill_at - time.time() - 5.0) / 2))
    exact, check = exact_check(expr, truth, timeout)
    if exact:  # an identity on the reals holds on the domain
        exact_domain, domain_check = True, "ok"
    else:
        timeout = EXACT_TIMEOUT
        if kill_at is not None:
            timeout = min(timeout, max(1.0, kill_at - time.time() - 5.0))
        exact_domain, domain_check = exact_domain_check(expr, truth, eq.variables, Xt, timeout)
    row.update(
        status="ok",
        exact=bool(exact),
        exact_check=check,
        exact_domain=bool(exact_domain),
        exact_domain_check=domain_check,
        r2=score,
    )
    row["model"] = str(expr)[:MODEL_CHARS]
    return row


def _worker(conn: Any, task: dict[str, Any], kill_at: float) -> None:
    # Ctrl-C reaches the parent, which kills the running fits: none is stored as failed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        row = run_fit(task, kill_at)
    except BaseException as exc:
        row = dict(
            task,
            status="error",
            exact=False,
            r2=None,
            model=repr(exc)[:MODEL_CHARS],
            **NOT_EXACT_ON_DOMAIN,
        )
    conn.send(row)
    conn.close()


def _failure(task: dict[str, Any], status: str, wall: float, note: str) -> dict[str, Any]:
    return dict(
        task,
        status=status,
        exact=False,
        r2=None,
        wall_s=wall,
        cpu_s=None,
        model=note,
        **NOT_EXACT_ON_DOMAIN,
    )


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_tasks(
    tasks: Sequence[dict[str, Any]],
    store: Path,
    jobs: int,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    *,
    grace: float = 30.0,
    worker: Callable[[Any, dict[str, Any], float], None] | None = None,
    limit: Callable[[dict[str, Any]], float] | None = None,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Run each task in its own spawned process, ``jobs`` at a time; store each row.

    A process that dies without a result is stored as ``crashed``; one still running at
    ``limit(task)`` (default: 3x its budget) + ``grace`` seconds is killed and stored as
    ``timeout``. ``worker`` (default: the fit) is called as ``worker(connection, task,
    kill_at)`` in the child and sends one row; it must be importable by the spawned
    process. ``write(row)`` stores a row (default: appended to the store's file of its
    set, method and noise).
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))  # inherited by the workers
    ctx = mp.get_context("spawn")
    pending = deque(tasks)
    running: dict[int, tuple[Any, Any, dict[str, Any], float, float]] = {}
    meta = {"commit": _git_commit(), "host": platform.node()}

    def finish(pid: int, row: dict[str, Any]) -> None:
        proc, conn, task, _, _ = running.pop(pid)
        conn.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        row = {**row, **meta}
        if write is not None:
            write(row)
        else:
            append_row(store_file(store, task["set"], task["method"], task["noise"]), row)
        if on_row is not None:
            on_row(row)

    try:
        while pending or running:
            while pending and len(running) < jobs:
                task = pending.popleft()
                recv, send = ctx.Pipe(duplex=False)
                seconds = limit(task) if limit is not None else 3 * task["budget"]
                kill_at = time.time() + seconds + grace
                proc = ctx.Process(
                    target=worker or _worker, args=(send, task, kill_at), daemon=True
                )
                proc.start()
                send.close()
                running[proc.pid] = (proc, recv, task, kill_at, time.perf_counter())
            handles = [h for p, c, *_ in running.values() for h in (p.sentinel, c)]
            wait(handles, timeout=1.0)
            for pid, (proc, conn, task, kill_at, t0) in list(running.items()):
                if conn.poll():
                    try:
                        row = conn.recv()
                    except (EOFError, OSError):
                        row = _failure(task, "crashed", time.perf_counter() - t0, "no result")
                    finish(pid, row)
                elif not proc.is_alive():
                    note = f"worker exited with code {proc.exitcode} and no result"
                    finish(pid, _failure(task, "crashed", time.perf_counter() - t0, note))
                elif time.time() > kill_at:
                    proc.kill()
                    what = "3x budget" if limit is None else "its limit"
                    note = f"killed at {what} + {grace:g} s ({time.perf_counter() - t0:.0f} s)"
                    finish(pid, _failure(task, "timeout", time.perf_counter() - t0, note))
    finally:  # interrupted: stop the fits this run started; stored rows stay
        for proc, conn, *_ in running.values():
            proc.kill()
            proc.join()
            conn.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ----------------------------------------------------------------------------- rejudge


def read_judged(store: Path) -> dict[tuple, dict[str, Any]]:
    """The judgements in ``store``'s :data:`JUDGED_FILE` by row key (the first per key)."""
    path = Path(store) / JUDGED_FILE
    out: dict[tuple, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            judged = json.loads(line)
            key = row_key(judged)
            bool(judged["exact_domain"])
        except (ValueError, KeyError, TypeError):  # blank, or broken by a killed writer
            continue
        out.setdefault(key, judged)
    return out


def first_rows(stored: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first stored row of each key, in store order (a repeated fit counts once)."""
    return list({row_key(r): r for r in reversed(list(stored))}.values())[::-1]


def merge_judged(
    rows: Iterable[dict[str, Any]], judged: dict[tuple, dict[str, Any]]
) -> list[dict[str, Any]]:
    """``rows`` with ``exact_domain`` from ``judged`` where they lack it (a row's own wins)."""
    out = []
    for r in rows:
        j = judged.get(row_key(r)) if "exact_domain" not in r else None
        if j is not None:
            r = {
                **r,
                "exact_domain": bool(j["exact_domain"]),
                "exact_domain_check": j.get("exact_domain_check"),
            }
        out.append(r)
    return out


def _judgement(row: dict[str, Any], exact_domain: bool, check: str) -> dict[str, Any]:
    return {
        **{k: row[k] for k in KEY_FIELDS},
        "exact_domain": bool(exact_domain),
        "exact_domain_check": check,
    }


def _trivial_judgement(row: dict[str, Any]) -> dict[str, Any] | None:
    """The judgement of a row that needs no sympy, else None."""
    model = row.get("model")
    if row.get("status") != "ok" or not isinstance(model, str) or model in ("", "None"):
        return _judgement(row, False, "no-model")  # an error/timeout note, or no model
    if len(model) >= MODEL_CHARS:
        return _judgement(row, False, "too-large")  # cut when stored: cannot be parsed
    if row.get("exact"):
        return _judgement(row, True, "ok")  # an identity on the reals holds on the domain
    return None


def judge_row(row: dict[str, Any], timeout: float = EXACT_TIMEOUT) -> dict[str, Any]:
    """The domain judgement of one stored row (in this process): its key fields,
    ``exact_domain`` and ``exact_domain_check``.

    The stored model string (this benchmark's own output) is parsed by sympy's
    ``parse_expr`` with the standard transformations and the equation's variable names
    mapped to symbols; the test rows are rebuilt from the row's seed (:func:`make_data`).
    """
    from sympy import Symbol
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations

    trivial = _trivial_judgement(row)
    if trivial is not None:
        return trivial
    eq = next(e for e in SETS[row["set"]] if e.name == row["equation"])
    try:
        names = {n: Symbol(n, real=True) for n in eq.names}
        model = parse_expr(row["model"], local_dict=names, transformations=standard_transformations)
    except Exception:
        return _judgement(row, False, "unparsable")
    Xt = make_data(eq, row["set"], float(row["noise"]), int(row["seed"]))[2]
    exact, check = exact_domain_check(
        model, truth_formula(eq).expression, eq.variables, Xt, timeout
    )
    return _judgement(row, exact, check)


def _judge_worker(conn: Any, task: dict[str, Any], kill_at: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    timeout = min(float(task["timeout"]), max(1.0, kill_at - time.time() - 5.0))
    try:
        judged = judge_row(task["row"], timeout)
    except BaseException as exc:
        judged = _judgement(task["row"], False, f"error: {exc!r}"[:200])
    conn.send(judged)
    conn.close()


def rejudge(
    store: Path,
    set_name: str,
    jobs: int = 1,
    *,
    timeout: float = EXACT_TIMEOUT,
    grace: float = 30.0,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Judge on the domain the stored rows of ``set_name`` that lack ``exact_domain``.

    Each row not yet in ``store/JUDGED_FILE`` is judged (:func:`judge_row`, one spawned
    process per row that needs sympy, ``jobs`` at a time, ``timeout`` seconds of sympy)
    and its judgement appended to that file as it finishes, so a rerun resumes. The
    store's row files are only read. Returns the number of rows judged.
    """
    store = Path(store)
    stored, _ = read_store(store)
    judged = read_judged(store)
    todo = [
        r
        for r in first_rows(stored)
        if r["set"] == set_name and "exact_domain" not in r and row_key(r) not in judged
    ]
    path = store / JUDGED_FILE
    meta = {"commit": _git_commit(), "host": platform.node()}

    def write(judgement: dict[str, Any]) -> None:
        line = {k: judgement[k] for k in KEY_FIELDS}
        if "status" in judgement:  # run_tasks' note of a judge that crashed or was killed
            line.update(exact_domain=False, exact_domain_check=judgement["status"])
        else:
            line.update(
                exact_domain=bool(judgement["exact_domain"]),
                exact_domain_check=judgement["exact_domain_check"],
            )
        line.update(meta)
        append_row(path, line)
        if on_row is not None:
            on_row(line)

    tasks = []
    for r in todo:
        trivial = _trivial_judgement(r)
        if trivial is not None:
            write(trivial)
        else:
            tasks.append({**{k: r[k] for k in KEY_FIELDS}, "row": r, "timeout": timeout})
    if tasks:
        run_tasks(
            tasks,
            store,
            jobs,
            grace=grace,
            worker=_judge_worker,
            limit=lambda t: float(t["timeout"]),
            write=write,
        )
    return len(todo)


# ----------------------------------------------------------------------------- report


def _fmt_r2(r: float | None) -> str:
    if r is None or not np.isfinite(r):
        return "-inf"
    return f"{r:.6f}" if r > -1 else f"{r:.3g}"


def summarize(rows: Sequence[dict[str, Any]], set_name: str) -> dict[str, Any]:
    """Summary per (budget, noise, method) of the rows of one set."""
    out: dict[str, Any] = {}
    sel_set = [r for r in rows if r["set"] == set_name]
    for budget in sorted({float(r["budget"]) for r in sel_set}):
        per: dict[str, Any] = {}
        for nz in sorted({float(r["noise"]) for r in sel_set if r["budget"] == budget}):
            for m in _methods_in(sel_set):
                sel = [
                    r
                    for r in sel_set
                    if r["method"] == m and float(r["noise"]) == nz and r["budget"] == budget
                ]
                if not sel:
                    continue
                r2s = np.array([-np.inf if r.get("r2") is None else r["r2"] for r in sel])
                walls = np.array([r.get("wall_s") or np.nan for r in sel], dtype=float)
                over = walls / budget - 1.0
                cpu = np.array(
                    [(r.get("cpu_s") or np.nan) / (r.get("wall_s") or np.nan) for r in sel]
                )
                evals = [r["evaluation_count"] for r in sel if r.get("evaluation_count")]
                domain = [d for d in map(exact_on_domain, sel) if d is not None]
                per[f"{m}@{nz:g}"] = {
                    "method": m,
                    "noise": nz,
                    "fits": len(sel),
                    "equations": len({r["equation"] for r in sel}),
                    "exact": int(sum(bool(r["exact"]) for r in sel)),
                    "exact_pct": 100.0 * float(np.mean([bool(r["exact"]) for r in sel])),
                    "exact_domain": int(sum(domain)),
                    "exact_domain_pct": 100.0 * float(np.mean(domain)) if domain else None,
                    "exact_domain_unjudged": len(sel) - len(domain),
                    "exact_domain_check_timeouts": int(
                        sum(r.get("exact_domain_check") == "timeout" for r in sel)
                    ),
                    "median_r2": float(np.median(r2s)),
                    "r2_gt_0.999_pct": 100.0 * float(np.mean(r2s > 0.999)),
                    "failures": int(sum(r.get("status") != "ok" for r in sel)),
                    "exact_check_timeouts": int(
                        sum(r.get("exact_check") == "timeout" for r in sel)
                    ),
                    "overruns": int(np.sum(over[np.isfinite(over)] > OVERRUN)),
                    "worst_overrun_pct": float(100 * np.nanmax(over))
                    if np.isfinite(over).any()
                    else None,
                    "median_cpu_over_wall": float(np.nanmedian(cpu))
                    if np.isfinite(cpu).any()
                    else None,
                    "median_evaluations": float(np.median(evals)) if evals else None,
                    "commits": sorted({str(r.get("commit")) for r in sel}),
                }
        out[f"budget={budget:g}"] = per
    return out


def exact_on_domain(row: dict[str, Any]) -> bool | None:
    """A row's ``exact_domain``; implied True by ``exact``, False for a failed fit; None
    if the row was never judged on the domain."""
    if "exact_domain" in row:
        return bool(row["exact_domain"])
    if row.get("exact"):
        return True  # an identity on the reals holds on the domain
    if row.get("status") != "ok":
        return False  # no model
    return None


def _methods_in(rows: Iterable[dict[str, Any]]) -> list[str]:
    present = {r["method"] for r in rows}
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def markdown_table(rows: Sequence[dict[str, Any]], set_name: str, budget: float) -> str:
    """Per-equation table: rows equations, columns method@noise with exact mark and R^2.

    One fit: ✓ exact, ◐ exact on the domain only, ✗ neither, ? not exact and not judged on
    the domain. Several seeds: ``exact(exact on the domain)/fits``.
    """
    sel = [r for r in rows if r["set"] == set_name and float(r["budget"]) == budget]
    cols = [(m, nz) for nz in sorted({float(r["noise"]) for r in sel}) for m in _methods_in(sel)]
    cols = [c for c in cols if any(r["method"] == c[0] and r["noise"] == c[1] for r in sel)]
    head = "| equation | " + " | ".join(f"{m}@{nz:g}" for m, nz in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for eq in SETS[set_name]:
        cells = []
        for m, nz in cols:
            fits = [
                r for r in sel if r["equation"] == eq.name and r["method"] == m and r["noise"] == nz
            ]
            if not fits:
                cells.append("")
                continue
            n_exact = sum(bool(r["exact"]) for r in fits)
            n_domain = sum(bool(exact_on_domain(r)) for r in fits)
            unjudged = any(exact_on_domain(r) is None for r in fits)
            if len(fits) == 1:
                mark = "✓" if n_exact else "◐" if n_domain else "?" if unjudged else "✗"
            else:
                mark = f"{n_exact}({n_domain}{'?' if unjudged else ''})/{len(fits)}"
            bad = [r["status"] for r in fits if r.get("status") != "ok"]
            r2s = [-np.inf if r.get("r2") is None else r["r2"] for r in fits]
            cells.append(
                f"{mark} {_fmt_r2(float(np.median(r2s)))}" + (f" ({bad[0]})" if bad else "")
            )
        if any(cells):
            lines.append(f"| {eq.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(store: Path, set_name: str, *, quiet: bool = False) -> dict[str, Any]:
    """Print the summary and per-equation tables of ``store``; write summary.json, table.md."""
    from ariasim.utils import atomic_path, write_json

    stored, broken = read_store(store)
    rows = merge_judged(first_rows(stored), read_judged(store))
    summary = summarize(rows, set_name)
    text = [f"# Symbolic-regression benchmark: set {set_name} ({len(SETS[set_name])} equations)\n"]
    if broken:
        text.append(f"({broken} unreadable line(s) in the store were skipped)\n")
    if len(rows) < len(stored):
        text.append(f"({len(stored) - len(rows)} repeated fit(s) ignored: the first counts)\n")
    for bkey, per in summary.items():
        budget = float(bkey.split("=")[1])
        text.append(f"\n## {bkey} s per fit\n")
        text.append(
            "| method | noise | fits | exact % | exact on domain % | median R2 | R2>0.999 % "
            "| failures | overruns >10 % | worst overrun | CPU/wall | median evaluations |"
        )
        text.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s in per.values():
            worst = "" if s["worst_overrun_pct"] is None else f"{s['worst_overrun_pct']:+.0f} %"
            cpu = "" if s["median_cpu_over_wall"] is None else f"{s['median_cpu_over_wall']:.2f}"
            ev = "" if s["median_evaluations"] is None else f"{s['median_evaluations']:.3g}"
            dom = (
                ""
                if s["exact_domain_pct"] is None
                else f"{s['exact_domain_pct']:.1f} ({s['exact_domain']})"
            )
            if s["exact_domain_unjudged"]:
                dom += f" ({s['exact_domain_unjudged']} unjudged)"
            text.append(
                f"| {s['method']} | {s['noise']:g} | {s['fits']} | {s['exact_pct']:.1f} "
                f"({s['exact']}) | {dom} | {_fmt_r2(s['median_r2'])} "
                f"| {s['r2_gt_0.999_pct']:.1f} | {s['failures']} | {s['overruns']} | {worst} "
                f"| {cpu} | {ev} |"
            )
        for nz in sorted({v["noise"] for v in per.values()}):
            a, p = per.get(f"ariasim@{nz:g}"), per.get(f"pyoperon-defaults@{nz:g}")
            if a and p:
                for key, what in (("exact", "exact"), ("exact_domain", "exact on the domain")):
                    ratio = f"{a[key] / p[key]:.2f}x" if p[key] else "inf (pyoperon 0)"
                    text.append(
                        f"\nariasim / pyoperon-defaults {what} recoveries at noise {nz:g}: {ratio}"
                    )
        text.append(
            f"\n### Per equation ({bkey} s; ✓ exact, ◐ exact on the domain only, ✗ neither, "
            "? not judged on the domain; then the test R2)\n"
        )
        text.append(markdown_table(rows, set_name, budget))
    md = "\n".join(text)
    store = Path(store)
    write_json(store / "summary.json", _json_safe({"set": set_name, "summary": summary}))
    with atomic_path(store / "table.md") as tmp:
        tmp.write_text(md, encoding="utf-8")
    if not quiet:
        print(md)
    return summary


# ----------------------------------------------------------------------------- main


def _run_rejudge(store: Path, set_name: str, jobs: int) -> None:
    """``--rejudge`` with progress lines."""
    start = time.perf_counter()
    count = 0

    def progress(line: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        print(
            f"[{count} judged, {time.perf_counter() - start:.0f} s] {line['method']:17s} "
            f"{line['equation']:10s} noise={line['noise']:g} "
            f"exact_domain={line['exact_domain']!s:5s} ({line['exact_domain_check']})",
            flush=True,
        )

    n = rejudge(store, set_name, jobs, on_row=progress)
    print(f"{n} stored row(s) of set {set_name} judged on the domain into {JUDGED_FILE}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="feynman", dest="set_name")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per fit")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01])
    ap.add_argument("--limit", type=int, default=None, help="first N equations only")
    ap.add_argument("--equations", nargs="+", default=None, help="these equations only")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--max-evaluations",
        type=int,
        default=PYOPERON_MAX_EVALUATIONS,
        help="evaluation cap of raw pyoperon (besides the time budget; not part of the key)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="fits in parallel (one per core)")
    ap.add_argument("--store", type=Path, required=True, help="folder of the result lines")
    ap.add_argument("--report", action="store_true", help="only print/write the tables")
    ap.add_argument(
        "--rejudge",
        action="store_true",
        help=f"only judge stored rows on the domain (into STORE/{JUDGED_FILE}); runs no fit",
    )
    args = ap.parse_args(argv)

    if args.budget <= 0 or args.jobs < 1:
        ap.error("--budget must be > 0 and --jobs >= 1")
    if args.report or args.rejudge:
        if not args.store.is_dir():
            ap.error(f"--store {args.store}: no such folder (nothing to judge or report)")
        if args.rejudge:
            _run_rejudge(args.store, args.set_name, args.jobs)
        if args.report:
            report(args.store, args.set_name)
        return
    missing = {
        m: mod
        for m in args.methods
        for mod in METHOD_MODULES[m]
        if importlib.util.find_spec(mod.split(".")[0]) is None
    }
    if missing:
        ap.error(f"not installed: {missing} (pip install gplearn / pyoperon)")
    eqs = list(SETS[args.set_name])
    if args.equations:
        unknown = set(args.equations) - {e.name for e in eqs}
        if unknown:
            ap.error(f"unknown equation(s) in set {args.set_name}: {sorted(unknown)}")
        eqs = [e for e in eqs if e.name in args.equations]
    eqs = eqs[: args.limit]
    tasks = make_tasks(args.set_name, eqs, args.methods, args.noise, args.seeds, args.budget)
    for t in tasks:
        if t["method"] == "pyoperon-defaults":
            t["max_evaluations"] = args.max_evaluations
    rows, _ = read_store(args.store) if args.store.exists() else ([], 0)
    done = done_keys(rows)
    todo = [t for t in tasks if row_key(t) not in done]
    print(
        f"{len(tasks)} fits ({len(eqs)} equations x {len(args.methods)} methods x "
        f"{len(args.noise)} noise levels x {len(args.seeds)} seeds), {args.budget:g} s each; "
        f"{len(tasks) - len(todo)} already stored, {len(todo)} to run, {args.jobs} at a time",
        flush=True,
    )
    start = time.perf_counter()
    count = 0

    def progress(row: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        el = time.perf_counter() - start
        eta = el / count * (len(todo) - count)
        print(
            f"[{count}/{len(todo)} ETA {eta / 60:.1f} min] {row['method']:17s} "
            f"{row['equation']:10s} noise={row['noise']:g} {row.get('status')} "
            f"exact={bool(row['exact'])!s:5s} R2={_fmt_r2(row.get('r2'))} "
            f"wall={row.get('wall_s') or float('nan'):.1f}s  {str(row.get('model'))[:60]}",
            flush=True,
        )

    if todo:
        # SIGTERM ends the run like Ctrl-C: the running fits are killed, stored rows stay
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        run_tasks(todo, args.store, args.jobs, progress)
    report(args.store, args.set_name)


if __name__ == "__main__":
    main()
