"""Synthetic observations: the simulator with a known friction law, plus Gaussian noise.

Used for the closure tests of the calibration (does the posterior put its mass on the
terms that made the data, and do its intervals cover the true weights?) and to make the
shipped example, ``examples/voellmy_synthetic_front.csv`` (:func:`write_example`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ariasim.apps.discovery.forward import ObservableSpec, simulate_observables
from ariasim.simulators.shallowflow import ShallowFlowConfig
from ariasim.utils import SeedLike, as_generator, atomic_path, spawn_seeds

__all__ = ["EXAMPLE", "make_synthetic", "write_example", "write_synthetic"]

#: How the shipped example's observations were made (:func:`write_example`): Voellmy
#: friction mu = 0.3, xi = 400 m/s^2 on the default chute (35 deg, 100 m, into a flat
#: run-out), front observed every second from 2 s to 12 s and at 14, 16 and 20 s (the flow
#: stops after about 15 s), sigma 1 m.
EXAMPLE: dict[str, Any] = {
    "truth": {"coulomb": 0.3, "turbulent": 1.0 / 400.0},
    "times": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 16.0, 20.0],
    "sigma_front_m": 1.0,
    "simulator": {"n_cells": 200},
    "seed": 13,
}


def make_synthetic(
    config: ShallowFlowConfig,
    truth: Mapping[str, float],
    times: Sequence[float],
    *,
    deposit_s: Sequence[float] | None = None,
    sigma_front_m: float = 1.0,
    sigma_deposit_m: float = 0.05,
    seed: SeedLike = 0,
) -> dict[str, pd.DataFrame]:
    """Observation tables of a flow with the friction law ``truth`` (term name -> weight).

    The front positions (and deposit depths at ``deposit_s``) of one simulator run with
    ``config`` and the true law, plus independent Gaussian noise of standard deviation
    ``sigma_*`` from a generator seeded with ``seed`` (front and deposit noise from seeds
    split with :func:`ariasim.utils.spawn_seeds`).

    Returns:
        ``{"front": (t_s, front_m, sigma_m)}`` and, with ``deposit_s``,
        ``{"deposit": (s_m, deposit_m, sigma_m)}``: the tables
        :func:`ariasim.apps.discovery.observations.read_observation_table` reads.

    Example:
        >>> cfg = ShallowFlowConfig(n_cells=100)
        >>> tabs = make_synthetic(cfg, {"coulomb": 0.3}, [2.0, 4.0], seed=1)
        >>> list(tabs["front"].columns)
        ['t_s', 'front_m', 'sigma_m']
    """
    times = [float(t) for t in times]
    deposit = [float(s) for s in (deposit_s or [])]
    spec = ObservableSpec(times=tuple(times), deposit_s=tuple(deposit))
    y = simulate_observables(config, spec, truth)
    front_seed, deposit_seed = spawn_seeds(seed, 2)
    nt = len(times)
    out = {
        "front": pd.DataFrame(
            {
                "t_s": times,
                "front_m": y[:nt] + as_generator(front_seed).normal(0.0, sigma_front_m, nt),
                "sigma_m": np.full(nt, float(sigma_front_m)),
            }
        )
    }
    if deposit:
        nd = len(deposit)
        out["deposit"] = pd.DataFrame(
            {
                "s_m": deposit,
                "deposit_m": y[nt:] + as_generator(deposit_seed).normal(0.0, sigma_deposit_m, nd),
                "sigma_m": np.full(nd, float(sigma_deposit_m)),
            }
        )
    return out


def write_synthetic(
    tables: Mapping[str, pd.DataFrame], paths: Mapping[str, str | os.PathLike[str]]
) -> None:
    """Write synthetic tables as CSV (``paths`` keyed like ``tables``), atomically, with
    values rounded to 0.1 mm (what a survey would report)."""
    for name, path in paths.items():
        with atomic_path(path) as tmp:
            tables[name].round(4).to_csv(tmp, index=False, lineterminator="\n")


def write_example(folder: str | os.PathLike[str] = "examples") -> Path:
    """(Re)make ``voellmy_synthetic_front.csv`` in ``folder`` from :data:`EXAMPLE`."""
    cfg = ShallowFlowConfig.from_mapping(EXAMPLE["simulator"])
    tables = make_synthetic(
        cfg,
        EXAMPLE["truth"],
        EXAMPLE["times"],
        sigma_front_m=EXAMPLE["sigma_front_m"],
        seed=EXAMPLE["seed"],
    )
    path = Path(folder) / "voellmy_synthetic_front.csv"
    write_synthetic(tables, {"front": path})
    return path
