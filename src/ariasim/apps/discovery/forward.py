"""The shallow-flow simulator as a forward model ``weights -> observables``, with a cache.

:class:`ShallowFlowForward` is the function that :func:`ariasim.discovery.calibration.calibrate`
calls: each row of friction-term weights (keyed by term name, see :data:`TERM_WEIGHTS`)
becomes a :class:`~ariasim.simulators.shallowflow.FrictionLaw`, the simulator runs with it,
and the observables the user measured (front positions at the observation times, deposit
depths at observation arc lengths, the run-out) come back as one row.

Every run's observable vector is stored as a small JSON file named by a hash of what
determines it (the simulator configuration apart from the friction law, the number of
moments, the weights rounded to 12 significant digits, the observables); a calibration run
again with the same inputs reuses them (it is resumable: killed half-way, it goes on where
it stopped). The simulator runs with the rounded weights, so a cached value and a fresh run
are the same numbers.

Batches run through :func:`ariasim.parallel.run_chunks`, one chunk per simulator run: in this
process when no Dask client is given, else on the cluster's workers (the cache folder must
then be on a file system the workers share). The simulator is deterministic, so the
observables do not depend on the number of workers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.simulators.shallowflow import FrictionLaw, ShallowFlowConfig, simulate

__all__ = [
    "CACHE_FORMAT",
    "TERM_WEIGHTS",
    "ObservableSpec",
    "ShallowFlowForward",
    "forward_chunk",
    "friction_law",
    "round_weights",
    "simulate_observables",
]

#: The friction terms of the simulator and the name of each term's weight. The weight of
#: ``turbulent`` is ``inv_xi = 1/xi`` (s^2/m) so that every term enters linearly:
#: ``S = mu g h cos(phi) + g u^2 inv_xi + nu u / h + tau``.
TERM_WEIGHTS: dict[str, str] = {
    "coulomb": "mu",
    "turbulent": "inv_xi",
    "viscous": "nu",
    "yield": "tau",
}
#: Version of the cache files (bump when what a file holds or how it is keyed changes).
CACHE_FORMAT = "ariasim-shallowflow-forward-1"


def round_weights(weights: Sequence[float]) -> list[float]:
    """Weights rounded to 12 significant digits (what the cache keys and the simulator use).

    Example:
        >>> round_weights([0.1 + 0.2, 1 / 3])
        [0.3, 0.333333333333]
    """
    return [float(f"{float(w):.12g}") for w in weights]


def friction_law(weights: Mapping[str, float]) -> FrictionLaw:
    """The simulator's friction law of term weights keyed by term name (absent terms: 0).

    Example:
        >>> law = friction_law({"coulomb": 0.3, "turbulent": 0.0025})
        >>> law.mu, law.xi, law.nu, law.tau
        (0.3, 400.0, 0.0, 0.0)
    """
    unknown = sorted(set(weights) - set(TERM_WEIGHTS))
    if unknown:
        raise ConfigError(
            f"unknown friction term (use {sorted(TERM_WEIGHTS)})", parameter=unknown[0]
        )
    w = {name: float(weights.get(name, 0.0)) for name in TERM_WEIGHTS}
    for name, val in w.items():
        if not np.isfinite(val) or val < 0:
            raise ConfigError(f"weight must be finite and >= 0, got {val}", parameter=name)
    xi = 1.0 / w["turbulent"] if w["turbulent"] > 0 else float("inf")
    return FrictionLaw(mu=w["coulomb"], xi=xi, nu=w["viscous"], tau=w["yield"])


@dataclass(frozen=True)
class ObservableSpec:
    """What is observed of a flow.

    Arguments:
        times: Times (s) at which the front position (arc length, m) is observed.
        deposit_s: Arc lengths (m) at which the final deposit depth is observed.
        runout: Whether the run-out (final front position) is observed too.

    Example:
        >>> ObservableSpec(times=(2.0, 4.5), deposit_s=(80.0,), runout=True).names
        ['front@2s', 'front@4.5s', 'deposit@80m', 'runout']
    """

    times: tuple[float, ...] = ()
    deposit_s: tuple[float, ...] = ()
    runout: bool = False

    def __post_init__(self) -> None:
        for name in ("times", "deposit_s"):
            vals = tuple(float(v) for v in getattr(self, name))
            if any(not np.isfinite(v) or v < 0 for v in vals):
                raise ConfigError(f"must be finite and >= 0, got {vals}", parameter=name)
            object.__setattr__(self, name, vals)
        if not isinstance(self.runout, bool):
            raise ConfigError(f"must be true or false, got {self.runout!r}", parameter="runout")
        if self.size == 0:
            raise ConfigError(
                "observes nothing: give times, deposit_s or runout", parameter="times"
            )

    @property
    def size(self) -> int:
        """Number of observables."""
        return len(self.times) + len(self.deposit_s) + int(self.runout)

    @property
    def names(self) -> list[str]:
        """One name per observable: ``front@<t>s``, ``deposit@<s>m``, ``runout``."""
        return (
            [f"front@{t:g}s" for t in self.times]
            + [f"deposit@{s:g}m" for s in self.deposit_s]
            + (["runout"] if self.runout else [])
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the cache key and the summary)."""
        return {"times": list(self.times), "deposit_s": list(self.deposit_s), "runout": self.runout}


def simulate_observables(
    config: ShallowFlowConfig, spec: ObservableSpec, weights: Mapping[str, float]
) -> np.ndarray:
    """One simulator run with the friction law of ``weights``: the observables of ``spec``.

    ``config`` holds everything but the friction law (its ``moments`` are used as they are).

    Example:
        >>> cfg = ShallowFlowConfig(n_cells=100, t_max=6.0)
        >>> y = simulate_observables(cfg, ObservableSpec(times=(2.0,)), {"coulomb": 0.3})
        >>> y.shape, bool(y[0] > cfg.release_start)
        ((1,), True)
    """
    res = simulate(replace(config, friction=friction_law(weights)))
    parts = [np.asarray(res.front_at(np.asarray(spec.times, dtype=float)), dtype=float)]
    if spec.deposit_s:
        parts.append(np.interp(np.asarray(spec.deposit_s), res.s, res.deposit))
    if spec.runout:
        parts.append(np.array([res.runout]))
    return np.concatenate(parts).astype(float)


def forward_chunk(
    task: Any, *, config: ShallowFlowConfig, spec: ObservableSpec, terms: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """The chunk function of :func:`ariasim.parallel.run_chunks`: one simulator run whose
    weights (in ``terms`` order) and cache key are in ``task.payload``."""
    weights = dict(zip(terms, task.payload["weights"], strict=True))
    y = simulate_observables(config, spec, weights)
    row = {"key": [task.payload["key"]], **{f"y{j}": [float(v)] for j, v in enumerate(y)}}
    return {"observables": pd.DataFrame(row)}


def _config_fingerprint(config: ShallowFlowConfig) -> dict[str, Any]:
    """Everything of ``config`` that determines a run, apart from friction and moments."""
    out: dict[str, Any] = {}
    for f in fields(config):
        if f.name in ("friction", "moments", "store_fields"):
            continue
        val = getattr(config, f.name)
        if f.name == "profile" and val is not None:
            val = [np.asarray(v, dtype=float).tolist() for v in val]
        elif isinstance(val, tuple):
            val = list(val)
        elif isinstance(val, (np.floating, np.integer)):
            val = val.item()
        out[f.name] = val
    return out


class ShallowFlowForward:
    """The shallow-flow simulator as a batch forward model with a resumable cache.

    Arguments:
        config: The simulator configuration (slope, release, numerics); its friction law
            is replaced by the one of each weight row and its ``moments`` by ``moments``.
            Callable initial conditions are refused (a run could not be keyed).
        observables: What is observed (:class:`ObservableSpec`).
        terms: The friction terms (keys of :data:`TERM_WEIGHTS`), in the column order of
            the weight rows; terms not listed are zero.
        moments: Moments of the velocity profile (0 = plain model, 1, 2: the cascade).
        cache_dir: Folder of the cached runs (created); None: no cache (then no client).
        client: A Dask client (:func:`ariasim.parallel.get_client`) or None (this process).

    Calling it with weights of shape ``(n, K)`` returns the observables, shape ``(n, m)``.
    ``n_run`` and ``n_cached`` count the simulator runs made and taken from the cache.

    Example:
        >>> import tempfile
        >>> cfg = ShallowFlowConfig(n_cells=100, t_max=6.0)
        >>> spec = ObservableSpec(times=(2.0, 4.0))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     fwd = ShallowFlowForward(cfg, spec, ["coulomb", "turbulent"], cache_dir=tmp)
        ...     y1 = fwd(np.array([[0.3, 0.0025], [0.4, 0.001]]))
        ...     y2 = fwd(np.array([[0.3, 0.0025]]))
        >>> y1.shape, fwd.names, fwd.n_run, fwd.n_cached, bool(np.all(y2[0] == y1[0]))
        ((2, 2), ['front@2s', 'front@4s'], 2, 1, True)
    """

    def __init__(
        self,
        config: ShallowFlowConfig,
        observables: ObservableSpec,
        terms: Sequence[str],
        moments: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        client: Any = None,
    ) -> None:
        if not isinstance(config, ShallowFlowConfig):
            raise ConfigError("must be a ShallowFlowConfig", parameter="config")
        if config.initial_depth is not None or config.initial_velocity is not None:
            raise ConfigError(
                "callable initial conditions cannot key cached runs; use the release parameters",
                parameter="initial_depth",
            )
        if not isinstance(observables, ObservableSpec):
            raise ConfigError("must be an ObservableSpec", parameter="observables")
        terms = [str(t) for t in terms]
        for t in terms:
            if t not in TERM_WEIGHTS:
                raise ConfigError(
                    f"unknown friction term (use {sorted(TERM_WEIGHTS)})", parameter=t
                )
        if not terms or len(set(terms)) != len(terms):
            raise ConfigError(f"must be distinct friction terms, got {terms}", parameter="terms")
        if client is not None and cache_dir is None:
            raise ConfigError("a Dask client needs a cache folder", parameter="cache_dir")
        self.config = replace(config, moments=int(moments), store_fields=False)
        self.spec = observables
        self.terms = terms
        self.moments = int(moments)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.client = client
        self.n_run = 0
        self.n_cached = 0
        self._base = {
            "format": CACHE_FORMAT,
            "config": _config_fingerprint(self.config),
            "moments": self.moments,
            "observables": self.spec.to_dict(),
        }

    @property
    def names(self) -> list[str]:
        """The observables' names (``front@4s``, ``deposit@80m``, ``runout``)."""
        return self.spec.names

    def key(self, weights: Sequence[float]) -> str:
        """The cache key of one weight row (rounded to 12 significant digits)."""
        w = dict(zip(self.terms, round_weights(weights), strict=True))
        full = {name: w.get(name, 0.0) for name in TERM_WEIGHTS}
        text = json.dumps({**self._base, "weights": full}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _cache_file(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"run-{key}.json"

    def _read_cached(self, key: str) -> np.ndarray | None:
        if self.cache_dir is None:
            return None
        path = self._cache_file(key)
        try:
            data = json.loads(path.read_text())
            values = np.asarray(data["values"], dtype=float)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: run it again
        if data.get("key") != key or values.shape != (self.spec.size,):
            return None
        return values

    def _write_cached(self, key: str, weights: Sequence[float], values: np.ndarray) -> None:
        from ariasim.utils import atomic_path

        data = {
            "key": key,
            "format": CACHE_FORMAT,
            "moments": self.moments,
            "weights": dict(zip(self.terms, round_weights(weights), strict=True)),
            "names": self.names,
            "values": [float(v) for v in values],
        }
        with atomic_path(self._cache_file(key)) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        X = np.asarray(weights, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.terms):
            raise ConfigError(
                f"must have shape (n, {len(self.terms)}), got {np.shape(weights)}",
                parameter="weights",
            )
        if not np.all(np.isfinite(X)) or np.any(X < 0):
            raise ConfigError("must be finite and >= 0", parameter="weights")
        rows = [round_weights(x) for x in X]
        keys = [self.key(r) for r in rows]
        found: dict[str, np.ndarray] = {}
        for k in dict.fromkeys(keys):
            cached = self._read_cached(k)
            if cached is not None:
                found[k] = cached
        todo = {k: r for k, r in zip(keys, rows, strict=True) if k not in found}
        if todo:
            found.update(self._run(todo))
        self.n_cached += len(keys) - len(todo)  # rows served without a new run
        self.n_run += len(todo)
        return np.stack([found[k] for k in keys]).astype(float)

    def _run(self, todo: Mapping[str, list[float]]) -> dict[str, np.ndarray]:
        """Run the simulator for the rows of ``todo`` (cache key -> weights)."""
        if self.cache_dir is None:
            return {
                k: simulate_observables(
                    self.config, self.spec, dict(zip(self.terms, r, strict=True))
                )
                for k, r in todo.items()
            }
        from ariasim.parallel import ChunkTask, chunk_tasks, read_parts, run_chunks

        keys = sorted(todo)  # the batch folder and its chunks do not depend on row order
        batch = hashlib.sha256("\0".join(keys).encode()).hexdigest()[:16]
        folder = self.cache_dir / "batches" / batch
        seeds = [t.seed for t in chunk_tasks(len(keys), seed=0)]  # unused: deterministic runs
        tasks = [ChunkTask(i, seeds[i], {"key": k, "weights": todo[k]}) for i, k in enumerate(keys)]
        func = functools.partial(
            forward_chunk, config=self.config, spec=self.spec, terms=self.terms
        )
        run_chunks(func, tasks, folder, client=self.client)
        table = read_parts(folder, "observables")
        cols = [f"y{j}" for j in range(self.spec.size)]
        out = {
            str(k): np.asarray(v, dtype=float)
            for k, v in zip(table["key"], table[cols].to_numpy(), strict=True)
        }
        for k in keys:
            self._write_cached(k, todo[k], out[k])
        shutil.rmtree(folder, ignore_errors=True)
        return {k: out[k] for k in keys}
