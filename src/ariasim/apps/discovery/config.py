"""The TOML configuration of ``ariasim discover``.

Tables (every key optional unless said; unknown tables and keys are errors naming them)::

    seed = 0                      # one seed for the whole calibration

    [simulator]                   # ShallowFlowConfig parameters (slope, release, numerics),
    chute_angle = 35.0            # not the friction law (that is what is calibrated) and
    n_cells = 200                 # not moments (see [cascade])

    [observations]                # at least one of front, deposit, runout_m
    front = "front.csv"           # t_s, front_m[, sigma_m]; relative to this file
    deposit = "deposit.csv"       # s_m, deposit_m[, sigma_m]
    sigma_front_m = 1.0           # uncertainty where the file has no sigma_m column
    sigma_deposit_m = 0.05
    runout_m = 115.0              # an observed run-out, with sigma_runout_m
    sigma_runout_m = 2.0

    [terms.coulomb]               # candidate friction terms: coulomb, turbulent, viscous,
    high = 0.7                    # yield; prior of the weight uniform on [low, high] when
    low = 0.0                     # the term is in the law, with prior probability
    inclusion = 0.5               # `inclusion` of being in it

    [budget]
    initial = 20                  # first (space-filling) design
    batch = 4                     # simulator runs per active-learning batch
    max_runs = 120                # at most this many simulator runs per cascade member
    design = "active"             # or "lhs" (Latin hypercubes of growing size)

    [mcmc]
    walkers = 32
    steps = 1500

    [cascade]
    moments = [0]                 # [0, 1, 2]: also the shallow-moment models

    [truth]                       # optional: a known law (synthetic data), for covers_truth
    coulomb = 0.3
    xi = 400.0                    # convenience: turbulent = 1 / xi
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ariasim.apps.discovery.forward import TERM_WEIGHTS
from ariasim.errors import ConfigError
from ariasim.simulators.shallowflow import ShallowFlowConfig
from ariasim.utils import load_toml

__all__ = ["DESIGNS", "DiscoveryConfig", "TermSpec", "load_config", "parse_config"]

#: The designs of ``[budget] design``.
DESIGNS = ("active", "lhs")
_TABLES = {"seed", "simulator", "observations", "terms", "budget", "mcmc", "cascade", "truth"}
_OBS_KEYS = {"front", "deposit", "sigma_front_m", "sigma_deposit_m", "runout_m", "sigma_runout_m"}


@dataclass(frozen=True)
class TermSpec:
    """The prior of one candidate friction term.

    Arguments:
        name: Term name (``coulomb``, ``turbulent``, ``viscous``, ``yield``).
        high: Upper end of the weight's uniform prior (in the term's weight unit).
        low: Lower end (>= 0). Default 0.
        inclusion: Prior probability that the term is in the law. Default 0.5.

    Example:
        >>> TermSpec("coulomb", high=0.7).inclusion
        0.5
    """

    name: str
    high: float
    low: float = 0.0
    inclusion: float = 0.5


@dataclass(frozen=True)
class DiscoveryConfig:
    """A parsed, checked ``ariasim discover`` configuration (see the module docstring).

    Example:
        >>> cfg = parse_config({"terms": {"coulomb": {"high": 0.7}},
        ...                     "observations": {"runout_m": 110.0, "sigma_runout_m": 2.0}})
        >>> cfg.term_names, cfg.moments, cfg.design
        (['coulomb'], (0,), 'active')
    """

    simulator: ShallowFlowConfig
    terms: tuple[TermSpec, ...]
    front: Path | None = None
    deposit: Path | None = None
    sigma_front_m: float | None = None
    sigma_deposit_m: float | None = None
    runout_m: float | None = None
    sigma_runout_m: float | None = None
    initial: int = 20
    batch: int = 4
    max_runs: int = 120
    design: str = "active"
    walkers: int = 32
    steps: int = 1500
    moments: tuple[int, ...] = (0,)
    truth: dict[str, float] | None = None
    seed: int = 0
    source: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def term_names(self) -> list[str]:
        """The candidate terms, in the configuration's order."""
        return [t.name for t in self.terms]

    def echo(self) -> dict[str, Any]:
        """The configuration as plain data (for summary.json): the TOML as read, with the
        observation files named as given."""
        from ariasim.utils import to_jsonable

        return to_jsonable(self.raw)


def _number(val: Any, key: str, *, low: float | None = None, strict: bool = False) -> float:
    if isinstance(val, bool) or not isinstance(val, numbers.Real):
        raise ConfigError(f"must be a number, got {val!r}", parameter=key)
    v = float(val)
    if v != v or v in (float("inf"), float("-inf")):
        raise ConfigError(f"must be finite, got {val!r}", parameter=key)
    if low is not None and (v <= low if strict else v < low):
        raise ConfigError(f"must be {'>' if strict else '>='} {low:g}, got {val!r}", parameter=key)
    return v


def _integer(val: Any, key: str, *, low: int) -> int:
    if isinstance(val, bool) or not isinstance(val, numbers.Integral):
        raise ConfigError(f"must be an integer, got {val!r}", parameter=key)
    if int(val) < low:
        raise ConfigError(f"must be >= {low}, got {val!r}", parameter=key)
    return int(val)


def _table(data: Mapping[str, Any], name: str, keys: set[str] | None) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"must be a table [{name}], got {table!r}", parameter=name)
    if keys is not None:
        for key in table:
            if key not in keys:
                raise ConfigError(
                    f"unknown key (use {', '.join(sorted(keys))})", parameter=f"{name}.{key}"
                )
    return dict(table)


def parse_config(
    data: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None
) -> DiscoveryConfig:
    """Check a configuration given as plain data (a parsed TOML document).

    Arguments:
        data: The TOML document.
        base: Folder that relative observation paths are relative to (the TOML's folder).

    Raises:
        ConfigError: naming the key (``table.key``) of the first problem.
    """
    for key in data:
        if key not in _TABLES:
            raise ConfigError(
                f"unknown table or key (use {', '.join(sorted(_TABLES))})", parameter=key
            )
    root = Path(base) if base is not None else Path(".")

    sim = _table(data, "simulator", None)
    for key, hint in (
        (
            "friction",
            "the friction law is what is calibrated: list candidate terms in [terms.<name>]",
        ),
        ("moments", "the moment models are set in [cascade] moments"),
        ("store_fields", "not used by a calibration"),
    ):
        if key in sim:
            raise ConfigError(hint, parameter=f"simulator.{key}")
    simulator = ShallowFlowConfig.from_mapping(sim, prefix="simulator.")

    obs = _table(data, "observations", _OBS_KEYS)
    paths: dict[str, Path | None] = {}
    for key in ("front", "deposit"):
        val = obs.get(key)
        if val is not None and (not isinstance(val, str) or not val.strip()):
            raise ConfigError(f"must be a file name, got {val!r}", parameter=f"observations.{key}")
        paths[key] = None if val is None else root / val
    sig: dict[str, float | None] = {}
    for key in ("sigma_front_m", "sigma_deposit_m", "sigma_runout_m"):
        sig[key] = (
            None
            if obs.get(key) is None
            else _number(obs[key], f"observations.{key}", low=0.0, strict=True)
        )
    runout = obs.get("runout_m")
    runout_m = None if runout is None else _number(runout, "observations.runout_m", low=0.0)
    if runout_m is not None and sig["sigma_runout_m"] is None:
        raise ConfigError("needed with runout_m", parameter="observations.sigma_runout_m")
    if paths["front"] is None and paths["deposit"] is None and runout_m is None:
        raise ConfigError(
            "no observations: give front = 'file.csv', deposit = 'file.csv' or runout_m",
            parameter="observations.front",
        )

    terms_table = _table(data, "terms", None)
    if not terms_table:
        raise ConfigError(
            f"no candidate terms: add tables [terms.<name>] with <name> in {list(TERM_WEIGHTS)}",
            parameter="terms",
        )
    terms: list[TermSpec] = []
    for name, spec in terms_table.items():
        key = f"terms.{name}"
        if name not in TERM_WEIGHTS:
            raise ConfigError(
                f"unknown friction term (use {', '.join(TERM_WEIGHTS)})", parameter=key
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"must be a table with high (and low, inclusion), got {spec!r}", parameter=key
            )
        for sub in spec:
            if sub not in ("high", "low", "inclusion"):
                raise ConfigError(
                    "unknown key (use high, low, inclusion)", parameter=f"{key}.{sub}"
                )
        if "high" not in spec:
            raise ConfigError(
                "missing: the upper end of the weight's prior", parameter=f"{key}.high"
            )
        low = _number(spec.get("low", 0.0), f"{key}.low", low=0.0)
        high = _number(spec["high"], f"{key}.high", low=0.0, strict=True)
        if high <= low:
            raise ConfigError(f"must be > low ({low:g}), got {high:g}", parameter=f"{key}.high")
        inclusion = _number(spec.get("inclusion", 0.5), f"{key}.inclusion", low=0.0, strict=True)
        if inclusion > 1:
            raise ConfigError(f"must be in (0, 1], got {inclusion:g}", parameter=f"{key}.inclusion")
        terms.append(TermSpec(name, high=high, low=low, inclusion=inclusion))

    budget = _table(data, "budget", {"initial", "batch", "max_runs", "design"})
    initial = _integer(budget.get("initial", 20), "budget.initial", low=3)
    batch = _integer(budget.get("batch", 4), "budget.batch", low=1)
    max_runs = _integer(budget.get("max_runs", 120), "budget.max_runs", low=3)
    if max_runs < initial:
        raise ConfigError(
            f"must be >= budget.initial ({initial}), got {max_runs}", parameter="budget.max_runs"
        )
    design = budget.get("design", "active")
    if design not in DESIGNS:
        raise ConfigError(
            f"must be one of {', '.join(DESIGNS)}, got {design!r}", parameter="budget.design"
        )

    mcmc = _table(data, "mcmc", {"walkers", "steps"})
    walkers = _integer(mcmc.get("walkers", 32), "mcmc.walkers", low=2)
    steps = _integer(mcmc.get("steps", 1500), "mcmc.steps", low=10)

    cascade = _table(data, "cascade", {"moments"})
    mom = cascade.get("moments", [0])
    if not isinstance(mom, list) or not mom:
        raise ConfigError(
            f"must be a list such as [0, 1, 2], got {mom!r}", parameter="cascade.moments"
        )
    moments = tuple(_integer(m, "cascade.moments", low=0) for m in mom)
    if any(m > 4 for m in moments) or len(set(moments)) != len(moments):
        raise ConfigError(
            f"must be distinct integers in 0..4, got {mom!r}", parameter="cascade.moments"
        )

    truth = _parse_truth(data.get("truth"), [t.name for t in terms])

    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"must be an integer >= 0, got {seed!r}", parameter="seed")

    return DiscoveryConfig(
        simulator=simulator,
        terms=tuple(terms),
        front=paths["front"],
        deposit=paths["deposit"],
        sigma_front_m=sig["sigma_front_m"],
        sigma_deposit_m=sig["sigma_deposit_m"],
        runout_m=runout_m,
        sigma_runout_m=sig["sigma_runout_m"],
        initial=initial,
        batch=batch,
        max_runs=max_runs,
        design=str(design),
        walkers=walkers,
        steps=steps,
        moments=moments,
        truth=truth,
        seed=int(seed),
        raw=dict(data),
    )


def _parse_truth(table: Any, candidates: list[str]) -> dict[str, float] | None:
    """The true weights keyed by term name (``xi`` sets ``turbulent = 1/xi``)."""
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ConfigError(f"must be a table [truth], got {table!r}", parameter="truth")
    out: dict[str, float] = {}
    for key, val in table.items():
        name = f"truth.{key}"
        if key == "xi":
            if "turbulent" in table:
                raise ConfigError("give xi or turbulent, not both", parameter=name)
            out["turbulent"] = 1.0 / _number(val, name, low=0.0, strict=True)
        elif key in TERM_WEIGHTS:
            out[key] = _number(val, name, low=0.0)
        else:
            raise ConfigError(f"unknown term (use {', '.join(TERM_WEIGHTS)} or xi)", parameter=name)
    for key, val in out.items():
        if key not in candidates and val > 0:
            shown = "xi" if key == "turbulent" and "xi" in table else key
            raise ConfigError(
                f"{key} is not a candidate term: add [terms.{key}] or drop it",
                parameter=f"truth.{shown}",
            )
    return {name: out.get(name, 0.0) for name in candidates}


def load_config(path: str | os.PathLike[str]) -> DiscoveryConfig:
    """Read and check a TOML configuration; observation paths are relative to its folder.

    Raises:
        InputError: the file is missing or not TOML.
        ConfigError: a key is unknown or a value invalid (named ``table.key``).
    """
    from dataclasses import replace

    p = Path(path)
    if p.is_dir():
        from ariasim.errors import InputError

        raise InputError("is a folder, expected a TOML file", path=p)
    cfg = parse_config(load_toml(p), base=p.parent)
    return replace(cfg, source=p)
