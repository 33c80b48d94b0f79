"""Analytic surrogates of the photon Monte Carlo of a neutrino telescope.

Two formulas replace the Monte Carlo for a point source (flasher) or cascade and a
spherical optical module:

* the **expected number of detected photons** as a formula of distance (and orientation
  cos(module axis, line of sight), and the medium's absorption and effective scattering
  lengths): ``N * pi r^2 * exp(f(d, ...)) / (4 pi d^2)``, with ``f`` found by symbolic
  regression (:class:`~ariasim.surrogates.symbolic.SymbolicRegressor`, units on);
* the **arrival-delay distribution** (time after the direct time d n_group / c) as a
  :class:`~ariasim.surrogates.density.SymbolicDensity` conditioned on distance (and the
  medium lengths).

Training data come from one point-source run per medium that tabulates many distances at
once: photons are scored on thin spherical shells around the source with a track-length
estimator (:func:`ariasim.simulators.photons.tabulate_shells`), the way IceCube's table
makers (photonics, clsim tables) avoid simulating a module at each distance.

References:
    Lundberg et al., "Light tracking through ice and water -- Scattering and absorption in
    heterogeneous media with Photonics", NIM A 581 (2007) 619.
    Pandel (1996); Ahrens et al. (AMANDA), NIM A 524 (2004) 169 -- the baseline.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from ariasim.errors import ConfigError, InputError
from ariasim.surrogates.density import SymbolicDensity, numerical_hessian
from ariasim.surrogates.formula import Formula
from ariasim.utils import as_generator, read_json, spawn_seeds, write_json

__all__ = [
    "DELAY_EDGES_NS",
    "PhotonSurrogate",
    "PhotonTrainingData",
    "compare_delays",
    "compare_yields",
    "delay_quadrature",
    "delay_samples",
    "fit_medium",
    "fit_photon_surrogate",
    "make_training_data",
    "medium_lengths",
    "yield_table",
]


def medium_lengths(medium: Any, wavelength_nm: float = 405.0) -> tuple[float, float]:
    """Absorption and effective scattering lengths [m] of a (homogeneous) medium."""
    a = float(np.asarray(medium.absorption_per_m(wavelength_nm)))
    b = float(np.asarray(medium.effective_scattering_per_m(wavelength_nm)))
    return 1.0 / a, 1.0 / b


# ----------------------------------------------------------------------------- data

#: Delay-bin edges [ns] of the training tables: a bin [0, 1e-5 ns) that holds exactly
#: the unscattered ("direct") photons, four decades of forward-scattered light below
#: 0.1 ns, then :func:`~ariasim.simulators.photons.default_time_edges`' 200 log bins.
#: Near the source the direct photons are a probability mass at delay 0 (52 % at 5 m,
#: 20 % at 10 m, 0.8 % at 25 m in bulk ice), which no continuous density can follow.
DELAY_EDGES_NS = np.concatenate([[0.0, 1e-5, 1e-4, 1e-3, 1e-2], np.logspace(-1.0, 4.0, 200)])
#: Delays below this [ns] are the direct photons (the point mass of the delay density).
DIRECT_NS = 1e-5


def yield_table(table: Any, *, lambda_a_m: float, lambda_e_m: float) -> pd.DataFrame:
    """Per shell (and cos bin): fluence per emitted photon and ln(4 pi d^2 fluence).

    ``log_yield`` is dimensionless and smooth in d (-d/lambda_a without scattering), the
    quantity the yield formula is fitted to; ``log_yield_err`` is its MC error.
    """
    flu = np.asarray(table.fluence).sum(axis=2)  # (n_shell, n_cos): sum over time bins
    var = np.asarray(table.fluence_var).sum(axis=2)
    cos_edges = np.asarray(table.cos_edges)
    rows = []
    for i, d in enumerate(np.asarray(table.radii_m)):
        for c in range(flu.shape[1]):
            f, v = flu[i, c], var[i, c]
            if f <= 0:
                continue
            rows.append(
                {
                    "distance_m": float(d),
                    "cos_theta": float(0.5 * (cos_edges[c] + cos_edges[c + 1])),
                    "lambda_a_m": lambda_a_m,
                    "lambda_e_m": lambda_e_m,
                    "fluence": float(f),
                    "fluence_err": float(np.sqrt(v)),
                    "log_yield": float(np.log(4 * np.pi * d * d * f)),
                    "log_yield_err": float(np.sqrt(v) / f),
                }
            )
    return pd.DataFrame(rows)


def shell_time_histogram(table: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fluence per time bin summed over cos bins (weighted by solid angle), its variance."""
    cos_edges = np.asarray(table.cos_edges)
    frac = np.diff(cos_edges) / 2.0
    flu = np.einsum("sct,c->st", np.asarray(table.fluence), frac)
    var = np.einsum("sct,c->st", np.asarray(table.fluence_var), frac**2)
    return np.asarray(table.time_edges_ns), flu, var


def delay_samples(
    table: Any, rng: Any = None, *, max_per_shell: int = 4000, shells: Sequence[int] | None = None
) -> pd.DataFrame:
    """Unit-weight pseudo-samples of the delay distribution at each shell.

    The track-length histogram of a shell carries the information of about
    ``n_eff = (sum f)^2 / sum var(f)`` independent photons; we draw ``min(n_eff,
    max_per_shell)`` delays from it (bin chosen by its fluence, uniform in log t inside
    log bins), so density fits see the statistics the MC really has.
    """
    gen = as_generator(rng)
    edges, flu, var = shell_time_histogram(table)
    out = []
    idx = range(flu.shape[0]) if shells is None else shells
    for i in idx:
        f = np.clip(flu[i], 0, None)
        tot = f.sum()
        if tot <= 0:
            continue
        n_eff = tot**2 / max(var[i].sum(), 1e-300)
        n = int(min(max_per_shell, max(n_eff, 1)))
        b = gen.choice(f.size, size=n, p=f / tot)
        lo, hi = edges[b], edges[b + 1]
        u = gen.uniform(size=n)
        log_ok = lo > 0
        t = np.where(log_ok, lo * (hi / np.where(log_ok, lo, 1.0)) ** u, lo + (hi - lo) * u)
        out.append(
            pd.DataFrame(
                {"delay_ns": t, "distance_m": float(table.radii_m[i]), "n_eff_shell": float(n_eff)}
            )
        )
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(columns=["delay_ns", "distance_m", "n_eff_shell"])
    )


def delay_quadrature(
    table: Any,
    rng: Any = 0,
    *,
    points_per_bin: int = 3,
    shells: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Weighted delay points that carry a shell's whole delay histogram.

    Each time bin of each shell gives ``points_per_bin`` = m delays, one in each of the
    m equal strata of the bin (uniform in log t; in t for a bin starting at 0), each with
    the weight ``n_eff f_bin / (m sum f)``: a weighted unbinned likelihood on these points
    is a (stratified) quadrature of the binned likelihood of the histogram with the MC's
    own statistics (``n_eff = (sum f)^2 / sum var(f)``, the number of independent photons
    the shell's track-length histogram is worth). The direct bin ``[0, DIRECT_NS)`` gives
    one point at delay 0 (the point mass). Unlike :func:`delay_samples` no information is
    lost to a cap on the number of pseudo-samples. The points are drawn at random inside
    their strata: on a fixed grid, shared by every shell, a mixture component could
    collapse onto one grid value and make the likelihood unbounded.
    """
    gen = as_generator(rng)
    edges, flu, var = shell_time_histogram(table)
    m = int(points_per_bin)
    if m < 1:
        raise ConfigError(f"must be >= 1, got {points_per_bin!r}", parameter="points_per_bin")
    out = []
    for i in range(flu.shape[0]) if shells is None else shells:
        f = np.clip(flu[i], 0, None)
        tot = f.sum()
        if tot <= 0:
            continue
        n_eff = tot**2 / max(var[i].sum(), 1e-300)
        ts, ws = [], []
        for b in np.flatnonzero(f > 0):
            lo, hi = edges[b], edges[b + 1]
            if lo == 0 and hi <= DIRECT_NS:
                ts.append(np.zeros(1))
                ws.append(np.array([f[b]]))
                continue
            q = (np.arange(m) + gen.uniform(size=m)) / m
            ts.append(lo * (hi / lo) ** q if lo > 0 else lo + (hi - lo) * q)
            ws.append(np.full(m, f[b] / m))
        t = np.concatenate(ts)
        w = np.concatenate(ws) * (n_eff / tot)
        out.append(
            pd.DataFrame(
                {
                    "delay_ns": t,
                    "distance_m": float(table.radii_m[i]),
                    "weight": w,
                    "n_eff_shell": float(n_eff),
                }
            )
        )
    cols = ["delay_ns", "distance_m", "weight", "n_eff_shell"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)


@dataclass
class PhotonTrainingData:
    """Shell tables for one or more media, with derived yield and delay tables.

    Example:
        >>> from ariasim.simulators.photons import constant_medium
        >>> data = make_training_data([constant_medium(50.0, 20.0)], [2.0, 5.0],
        ...                           n_photons=2000, max_per_shell=50)
        >>> data.yields["distance_m"].tolist(), data.media
        ([2.0, 5.0], [(50.0, 20.0)])
    """

    yields: pd.DataFrame
    delays: pd.DataFrame
    tables: list[Any]
    media: list[tuple[float, float]]
    n_photons: int
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)


def make_training_data(
    media: Sequence[Any],
    radii_m: Sequence[float],
    *,
    source: Any = None,
    n_photons: float = 1e6,
    n_cos_bins: int = 1,
    acceptance: Any = None,
    wavelength_nm: float = 405.0,
    seed: int | None = 0,
    max_per_shell: int = 4000,
    progress: bool = False,
    time_edges_ns: Sequence[float] | None = None,
    delays: str = "quadrature",
) -> PhotonTrainingData:
    """Tabulate a point source on shells in each medium (one MC run per medium).

    Arguments:
        media: :class:`~ariasim.simulators.photons.Medium` objects.
        radii_m: Shell radii (distances) to tabulate.
        source: A source at the origin (default: isotropic flasher at ``wavelength_nm``).
        n_photons: Photons per medium.
        n_cos_bins: Orientation bins (cos of the angle between the source axis / module
            axis and the line of sight).
        acceptance: Module angular acceptance applied in the table (None: flat).
        seed: Seed; each medium's table and the delay sampling get their own streams
            (:func:`~ariasim.utils.spawn_seeds`).
        time_edges_ns: Delay-bin edges of the tables (default :data:`DELAY_EDGES_NS`).
        delays: ``"quadrature"`` (default: :func:`delay_quadrature`, weighted points
            carrying the whole histogram) or ``"samples"`` (:func:`delay_samples`,
            unit-weight pseudo-samples, at most ``max_per_shell`` per shell).
    """
    from ariasim.simulators.photons import Flasher, tabulate_shells

    if not media:
        raise ConfigError("at least one medium is needed", parameter="media")
    if delays not in ("quadrature", "samples"):
        raise ConfigError("must be 'quadrature' or 'samples'", parameter="delays")
    edges = DELAY_EDGES_NS if time_edges_ns is None else np.asarray(time_edges_ns, dtype=float)
    *table_seeds, sample_seed = spawn_seeds(seed, len(media) + 1)
    gen = as_generator(sample_seed)
    t0 = time.perf_counter()
    tables, ys, ds, labels = [], [], [], []
    for k, medium in enumerate(media):
        la, le = medium_lengths(medium, wavelength_nm)
        src = (
            source
            if source is not None
            else Flasher(n_photons=n_photons, wavelength_nm=wavelength_nm)
        )
        kw: dict[str, Any] = {
            "n_cos_bins": n_cos_bins,
            "seed": table_seeds[k],
            "progress": progress,
            "time_edges_ns": edges,
        }
        if acceptance is not None:
            kw["acceptance"] = acceptance
        table = tabulate_shells(src, medium, np.asarray(radii_m, dtype=float), **kw)
        tables.append(table)
        labels.append((la, le))
        ys.append(yield_table(table, lambda_a_m=la, lambda_e_m=le).assign(medium=k))
        dl = (
            delay_quadrature(table, gen)
            if delays == "quadrature"
            else delay_samples(table, gen, max_per_shell=max_per_shell).assign(weight=1.0)
        )
        ds.append(dl.assign(lambda_a_m=la, lambda_e_m=le, medium=k))
    return PhotonTrainingData(
        yields=pd.concat(ys, ignore_index=True),
        delays=pd.concat(ds, ignore_index=True),
        tables=tables,
        media=labels,
        n_photons=int(n_photons),
        seconds=time.perf_counter() - t0,
        config={
            "radii_m": list(map(float, radii_m)),
            "n_photons": float(n_photons),
            "n_cos_bins": n_cos_bins,
            "wavelength_nm": wavelength_nm,
            "media": [m.describe() for m in media],
            "delays": delays,
        },
    )


# ----------------------------------------------------------------------------- surrogate


@dataclass
class PhotonSurrogate:
    """Expected hits and delay density of a point source seen by a spherical module.

    Arguments:
        yield_formula: ``log_yield = ln(4 pi d^2 fluence)`` as a Formula of
            ``distance_m`` (and ``cos_theta``, ``lambda_a_m``, ``lambda_e_m``).
        delay: Delay density conditioned on ``distance_m`` (and the medium lengths).
        module_radius_m: Radius of the module the yields refer to.
        n_group: Group index used for the direct time.
        metadata: Provenance of the fit (JSON-able).

    The formulas follow the learner contract: ``formulas_`` maps ``"log_yield"`` and
    ``"delay_<parameter>"`` (the density's parameter formulas) to :class:`Formula`
    objects, ``formula_`` is the yield.

    Example:
        >>> from ariasim.surrogates.density import SymbolicDensity
        >>> par = {"mu_0": "log(distance_m)", "log_sigma_0": "-0.5", "log_q_0": "0.1"}
        >>> delay = SymbolicDensity.from_dict({
        ...     "schema": "ariasim.symbolic_density/1", "n_components": 1, "t_min": 0.0,
        ...     "t_name": "delay_ns",
        ...     "params": {k: Formula(v, ["distance_m"]).to_dict() for k, v in par.items()}})
        >>> sur = PhotonSurrogate(Formula("-distance_m/30", ["distance_m"]), delay,
        ...                       module_radius_m=0.15)
        >>> sorted(sur.formulas_)
        ['delay_log_q_0', 'delay_log_sigma_0', 'delay_mu_0', 'log_yield']
        >>> str(sur.formula_)
        '-distance_m/30'
        >>> round(float(sur.expected_hits(30.0, 1e6)[0]), 3)  # N r^2 e^-1 / (4 d^2)
        2.299
    """

    yield_formula: Formula
    delay: SymbolicDensity
    module_radius_m: float = 0.1651
    n_group: float = 1.35634
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def formula_(self) -> Formula:
        """The main formula: ``log_yield`` (same as ``yield_formula``)."""
        return self.yield_formula

    @property
    def formulas_(self) -> dict[str, Formula]:
        """All formulas: ``log_yield`` and the delay density's parameter formulas
        (``delay_<name>``)."""
        return {
            "log_yield": self.yield_formula,
            **{f"delay_{k}": f for k, f in self.delay.params_.items()},
        }

    @property
    def yield_inputs(self) -> list[str]:
        return self.yield_formula.names

    @property
    def delay_inputs(self) -> list[str]:
        return [v.name for v in self.delay.variables_]

    def _cols(self, names: list[str], values: dict[str, Any], n: int) -> np.ndarray:
        missing = [k for k in names if k not in values or values[k] is None]
        if missing:
            raise ConfigError(f"the surrogate needs {missing}", parameter=", ".join(missing))
        return np.column_stack(
            [np.broadcast_to(np.asarray(values[k], dtype=float), (n,)) for k in names]
        )

    def expected_hits(
        self, distance_m: Any, n_photons: float = 1.0, **conditions: Any
    ) -> np.ndarray:
        """Expected detected photons for ``n_photons`` emitted, at each distance."""
        d = np.atleast_1d(np.asarray(distance_m, dtype=float))
        X = self._cols(self.yield_inputs, {"distance_m": d, **conditions}, d.size)
        return n_photons * self.module_radius_m**2 * np.exp(self.yield_formula(X)) / (4 * d * d)

    def delay_cdf(self, delay_ns: Any, distance_m: Any, **conditions: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(delay_ns, dtype=float))
        X = self._cols(self.delay_inputs, {"distance_m": distance_m, **conditions}, t.size)
        return self.delay.cdf(t, X)

    def delay_log_pdf(self, delay_ns: Any, distance_m: Any, **conditions: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(delay_ns, dtype=float))
        X = self._cols(self.delay_inputs, {"distance_m": distance_m, **conditions}, t.size)
        return self.delay.log_pdf(t, X)

    def sample_delays(
        self, distance_m: Any, n: int, rng: Any = None, **conditions: Any
    ) -> np.ndarray:
        d = np.atleast_1d(np.asarray(distance_m, dtype=float))
        X = self._cols(self.delay_inputs, {"distance_m": d, **conditions}, d.size)
        return self.delay.sample(X, n, rng)

    # conditional-density protocol for goodness_of_fit (conditions in delay_inputs order)
    def cdf(self, t: Any, X: Any) -> np.ndarray:
        return self.delay.cdf(t, X)

    def sample(self, X: Any, n: int = 1, rng: Any = None) -> np.ndarray:
        return self.delay.sample(X, n, rng)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "ariasim.photon_surrogate/1",
            "yield": self.yield_formula.to_dict(),
            "delay": self.delay.to_dict(),
            "module_radius_m": self.module_radius_m,
            "n_group": self.n_group,
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON (formulas as text), atomically."""
        return write_json(path, self.to_dict(), indent=1, default=str)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PhotonSurrogate:
        p = Path(path)
        data = read_json(p)
        if not isinstance(data, dict) or data.get("schema") != "ariasim.photon_surrogate/1":
            raise InputError("not an ariasim photon surrogate", path=p)
        return cls(
            Formula.from_dict(data["yield"], source=p),
            SymbolicDensity.from_dict(data["delay"], source=p),
            module_radius_m=float(data["module_radius_m"]),
            n_group=float(data["n_group"]),
            metadata=data.get("metadata", {}),
        )


#: Largest :func:`~ariasim.surrogates.symbolic.cancellation_ratio` of a selectable yield
#: formula: sums whose terms cancel to a tenth of their size are not laws.
MAX_CANCELLATION = 10.0


def yield_candidates(inputs: Sequence[str]) -> list[str]:
    """Physically structured yield formulas that enter the symbolic-regression front.

    ``log_yield = ln(4 pi d^2 fluence)``. Far from the source light diffuses: fluence
    ``~ exp(-d/lambda_eff)/d`` with ``lambda_eff = sqrt(lambda_a lambda_e / 3)``
    (REFERENCE.md section 1), i.e. ``log_yield = c0 + c1 ln(d/length) - d/lambda`` (the
    form ``A exp(-d/lambda)/d^k``); near the source the unscattered light falls as
    exp(-d/lambda_a). The candidates are that law, with the orientation (cos_theta)
    and the medium lengths entering in the simplest dimensionally consistent ways;
    their constants are re-fitted and they compete with the search's models on BIC.
    A term ``exp(-d/l)`` (l of the order of the scattering length) bridges the near
    field, where light is not yet diffuse, to the diffusion law.
    """
    d = "distance_m"
    law = "-3.0 + 0.5*log(distance_m/30.0) - distance_m/30.0"
    if set(inputs) >= {"lambda_a_m", "lambda_e_m"}:
        law = "0.1 + 0.5*log(distance_m/lambda_e_m) - 1.5*distance_m/sqrt(lambda_a_m*lambda_e_m)"
        out = [
            law,
            law + " - 1.0*exp(-distance_m/lambda_e_m)",
            law + " - 0.1*distance_m/lambda_a_m - 1.0*exp(-0.5*distance_m/lambda_e_m)",
            law + " - 0.1*distance_m/lambda_a_m + 0.1*distance_m/lambda_e_m",
            law + " - 0.1*distance_m/lambda_a_m + 0.1*distance_m/lambda_e_m"
            " + 0.1*log(lambda_a_m/lambda_e_m)",
            law + " - 0.1*distance_m/lambda_a_m + 0.1*lambda_e_m/distance_m"
            " + 0.1*log(lambda_a_m/lambda_e_m)",
        ]
    else:
        out = [law, law + " + 0.1*30.0/distance_m", law + " - 1.0*exp(-distance_m/50.0)"]
    if "cos_theta" in inputs:
        out = [
            *(f + " + 0.9*cos_theta" for f in out),
            *(f + " + 0.9*cos_theta + 0.1*cos_theta**2" for f in out),
            *(f + f" + 0.9*cos_theta + 0.1*cos_theta**2 + 0.5*cos_theta*30.0/{d}" for f in out),
            # near the source the module sees the (anisotropic) direct light, far from it
            # diffuse light: the orientation term fades with distance
            *(
                f + f" + 0.3*cos_theta + 0.1*cos_theta**2 + 0.6*cos_theta*exp(-{d}/20.0)"
                for f in out
            ),
        ]
    return out


def fit_photon_surrogate(
    data: PhotonTrainingData,
    *,
    yield_inputs: Sequence[str] = ("distance_m",),
    delay_inputs: Sequence[str] = ("distance_m",),
    train_mask: Any = None,
    max_time_yield: float = 30.0,
    max_time_density: float = 8.0,
    n_components: int = 2,
    point_mass: bool = True,
    module_radius_m: float = 0.1651,
    n_group: float = 1.35634,
    seed: int | None = 0,
    generations_yield: int | None = None,
    generations_density: int | None = None,
) -> tuple[PhotonSurrogate, Any]:
    """Fit the yield formula and the delay density; returns (surrogate, yield regressor).

    Arguments:
        data: From :func:`make_training_data`.
        yield_inputs: Columns of ``data.yields`` the yield formula may use.
        delay_inputs: Conditions of the delay density.
        train_mask: Optional callable ``distance_m -> bool array`` selecting the training
            distances (the rest are held out for validation).
        max_time_yield: Seconds of symbolic regression for the yield (with
            ``generations_yield``: a cap that a reproducible fit must not reach).
        max_time_density: Seconds per parameter function of the density (likewise).
        generations_yield: Generations of the yield search (None: only the time limits
            it). A generation budget makes the fit reproducible for a given ``seed``.
        generations_density: Generations per parameter function of the density.
        n_components: Generalized-gamma components of the delay density (1 or 2).
        point_mass: Give the delay density a probability mass at delay 0, the
            unscattered photons (:data:`DIRECT_NS`).

    The delay density's symbolic and polynomial parameter functions are compared by
    their likelihood on held-out training distances (every fourth distinct distance,
    when there are at least eight; these are left out of that fit); the winner is then
    fitted again on all training distances.
    """
    from sklearn.base import clone

    from ariasim.surrogates.symbolic import SymbolicRegressor

    units = {"distance_m": "m", "cos_theta": "", "lambda_a_m": "m", "lambda_e_m": "m"}
    for name in (*yield_inputs, *delay_inputs):
        if name not in units:
            raise ConfigError(
                f"unknown input {name!r}; choose from {sorted(units)}", parameter="yield_inputs"
            )
    y = data.yields
    dl = data.delays
    if train_mask is not None:
        y = y[train_mask(y["distance_m"].to_numpy())]
        dl = dl[train_mask(dl["distance_m"].to_numpy())]
    sr = SymbolicRegressor(
        max_time=max_time_yield,
        random_state=seed,
        generations=generations_yield,
        variable_names=list(yield_inputs),
        variable_units=[units[k] for k in yield_inputs],
        target_name="log_yield",
        target_unit="",
        selection="bic",
        operators=("add", "sub", "mul", "div", "exp", "log", "sqrt", "square"),
        max_cancellation=MAX_CANCELLATION,
        candidates=yield_candidates(yield_inputs),
    )
    w = 1.0 / np.clip(y["log_yield_err"].to_numpy(), 1e-4, None) ** 2
    sr.fit(y[list(yield_inputs)].to_numpy(), y["log_yield"].to_numpy(), sample_weight=w)
    density = SymbolicDensity(
        n_components=n_components,
        point_mass=point_mass,
        refine_samples=200_000,
        max_time=max_time_density,
        generations=generations_density,
        random_state=seed,
        variable_names=list(delay_inputs),
        variable_units=[units[k] for k in delay_inputs],
        t_name="delay_ns",
        t_unit="ns",
    )
    wt = dl["weight"].to_numpy() if "weight" in dl else np.ones(len(dl))
    key = dl[list(delay_inputs)].round(9).apply(tuple, axis=1)
    distinct = sorted(set(key))
    val_keys = set(distinct[2::4]) if len(distinct) >= 8 else set()
    is_val = key.isin(val_keys).to_numpy()
    fit_kw: dict[str, Any] = {}
    if is_val.any():
        fit_kw = {
            "X_val": dl.loc[is_val, list(delay_inputs)].to_numpy(),
            "y_val": dl.loc[is_val, "delay_ns"].to_numpy(),
            "sample_weight_val": wt[is_val],
        }
    density.fit(
        dl.loc[~is_val, list(delay_inputs)].to_numpy(),
        dl.loc[~is_val, "delay_ns"].to_numpy(),
        sample_weight=wt[~is_val],
        **fit_kw,
    )
    if is_val.any():
        # the kind of parameter function is chosen on the left-out distances; the
        # winner is then fitted again on every training distance, and kept if its
        # likelihood on them is better (the joint refinement can stall in a poor optimum)
        X_all, t_all = dl[list(delay_inputs)].to_numpy(), dl["delay_ns"].to_numpy()
        again = clone(density).set_params(param_model=density.param_model_used_)
        again.fit(X_all, t_all, sample_weight=wt)
        nll_sub = density.mean_nll(t_all, X_all, wt)
        nll_all = again.mean_nll(t_all, X_all, wt)
        refit = bool(nll_all <= nll_sub)
        chosen = {
            **density.selection_,
            "nll_all_training_subset_fit": nll_sub,
            "nll_all_training_refit": nll_all,
            "refit_on_all_training_distances": refit,
        }
        if refit:
            density = again
        density.selection_ = chosen
    meta = {"n_photons_per_medium": data.n_photons, "media": data.media, "training": data.config}
    return PhotonSurrogate(
        sr.formula_, density, module_radius_m=module_radius_m, n_group=n_group, metadata=meta
    ), sr


# ----------------------------------------------------------------------------- validation


def compare_yields(surrogate: PhotonSurrogate, yields: pd.DataFrame) -> pd.DataFrame:
    """Surrogate expected hits vs the MC table, per row of a yield table."""
    cond = {k: yields[k].to_numpy() for k in surrogate.yield_inputs if k != "distance_m"}
    pred = surrogate.expected_hits(yields["distance_m"].to_numpy(), 1.0, **cond)
    mc = yields["fluence"].to_numpy() * np.pi * surrogate.module_radius_m**2
    err = yields["fluence_err"].to_numpy() * np.pi * surrogate.module_radius_m**2
    out = yields[
        [c for c in ("distance_m", "cos_theta", "lambda_a_m", "lambda_e_m") if c in yields]
    ].copy()
    out["mc_hits_per_photon"] = mc
    out["mc_err"] = err
    out["surrogate_hits_per_photon"] = pred
    out["ratio"] = pred / mc
    out["pull"] = (pred - mc) / err
    return out


def compare_delays(
    table: Any,
    models: dict[str, Any],
    *,
    conditions: dict[str, float] | None = None,
    shells: Sequence[int] | None = None,
    n_boot: int = 200,
    rng: Any = 0,
) -> pd.DataFrame:
    """KS distance and 1-Wasserstein [ns] of each model's delay CDF against the MC.

    The MC CDF is the cumulative track-length histogram, exact at the bin edges; each
    model's CDF is evaluated at the same edges (its left limit, which a point mass at 0
    does not reach at the edge 0), so no binning of the model is involved.
    ``models`` maps a name to an object with ``cdf(t, X)`` taking ``X`` = distance (and
    ``conditions`` appended in the model's own order, for PhotonSurrogate use
    ``surrogate.delay_inputs``). Also reports the MC's own statistical KS scale
    1/sqrt(n_eff) and its **noise floor** ``ks_floor``: the mean KS distance between
    the MC's delay CDF and ``n_boot`` parametric-bootstrap replicas of it (each time bin's
    fluence redrawn from a Gaussian with its MC variance), i.e. the KS distance an
    exact model would typically have from an MC of this size; ``ks_<model>_over_floor``
    is each model's KS in units of it.
    """
    gen = as_generator(rng)
    edges, flu, var = shell_time_histogram(table)
    conditions = conditions or {}
    rows = []
    for i in range(flu.shape[0]) if shells is None else shells:
        f = np.clip(flu[i], 0, None)
        tot = f.sum()
        if tot <= 0:
            continue
        d = float(table.radii_m[i])
        F_mc = np.r_[0.0, np.cumsum(f) / tot]
        n_eff = tot**2 / max(var[i].sum(), 1e-300)
        sd = np.sqrt(np.clip(var[i], 0, None))
        boot = np.clip(f + gen.standard_normal((n_boot, f.size)) * sd, 0, None)
        F_boot = np.cumsum(boot, axis=1) / boot.sum(axis=1, keepdims=True)
        floor = float(np.mean(np.abs(F_boot - F_mc[1:]).max(axis=1)))
        row: dict[str, Any] = {
            "distance_m": d,
            "n_eff": n_eff,
            "mc_ks_scale": 1 / math.sqrt(n_eff),
            "ks_floor": floor,
        }
        for name, model in models.items():
            names = getattr(model, "delay_inputs", ["distance_m"])
            vals = {"distance_m": d, **conditions}
            X = np.tile([vals[k] for k in names], (edges.size, 1))
            F = np.clip(model.cdf(edges, X), 0, 1)
            F[edges <= 0] = 0.0  # the MC's CDF at an edge counts the delays below it
            diff = np.abs(F - F_mc)
            row[f"ks_{name}"] = float(diff.max())
            row[f"w1_{name}"] = float(np.sum(0.5 * (diff[1:] + diff[:-1]) * np.diff(edges)))
            row[f"ks_{name}_over_floor"] = row[f"ks_{name}"] / floor
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- inverse use


def fit_medium(
    surrogate: PhotonSurrogate,
    *,
    distances_m: np.ndarray,
    counts: np.ndarray,
    delays_ns: Sequence[np.ndarray],
    n_photons: float,
    start: tuple[float, float] = (100.0, 30.0),
    use_times: bool = True,
    model_error: float = 0.0,
) -> dict[str, Any]:
    """Maximum-likelihood absorption and effective scattering lengths from module data.

    Likelihood: hit counts per module with the surrogate's expectation mu, times the
    delay density of every hit (extended unbinned likelihood). The counts are Poisson,
    or, with a ``model_error`` eps > 0 (the surrogate's relative error on the expected
    counts, e.g. its measured rms deviation from the MC tables), negative binomial with
    variance mu + (eps mu)^2: a Poisson whose mean is uncertain by a Gamma-distributed
    factor of relative width eps, independently per module. Without it, a surrogate
    that is off by a few per cent gives intervals that miss the truth once there are
    more than ~1/eps^2 hits.

    The intervals are profile-likelihood intervals (Delta NLL = 1/2; ``lo_*``, ``hi_*``;
    ``err_*`` is half their width), which stay right when the likelihood is not
    Gaussian (few hits, lambda_a and lambda_e strongly correlated); ``hessian_err_*``
    are the inverse-Hessian errors, for comparison.

    Arguments:
        surrogate: Fitted across media (yield and delay depend on lambda_a_m, lambda_e_m).
        distances_m: Module distances from the source.
        counts: Hits per module.
        delays_ns: Per module, the delays of its hits.
        n_photons: Emitted photons (of the same definition as in training).
        start: Starting values (lambda_a, lambda_e) [m].
        use_times: Include the delay likelihood (else counts only).
        model_error: Relative error eps of the surrogate's expected counts (>= 0).
    """
    if not (np.isfinite(model_error) and model_error >= 0):
        raise ConfigError(f"must be >= 0, got {model_error!r}", parameter="model_error")
    need = {"lambda_a_m", "lambda_e_m"}
    if not need <= set(surrogate.yield_inputs):
        raise ConfigError(
            "the surrogate's yield formula does not depend on the medium "
            "lengths; fit it across media",
            parameter="surrogate",
        )
    d = np.asarray(distances_m, dtype=float)
    n = np.asarray(counts, dtype=float)
    all_t = (
        np.concatenate([np.asarray(t, dtype=float) for t in delays_ns])
        if use_times
        else np.zeros(0)
    )
    all_d = (
        np.concatenate([np.full(len(t), di) for t, di in zip(delays_ns, d, strict=True)])
        if use_times
        else np.zeros(0)
    )
    times_need_medium = need <= set(surrogate.delay_inputs)

    def nll(p: np.ndarray) -> float:
        la, le = p
        if la <= 1 or le <= 1:
            return 1e300
        mu = surrogate.expected_hits(d, n_photons, lambda_a_m=la, lambda_e_m=le, cos_theta=0.0)
        mu = np.maximum(mu, 1e-300)
        if model_error > 0:  # negative binomial, r = 1/eps^2 (terms free of mu dropped)
            r = 1.0 / model_error**2
            val = float(np.sum((n + r) * np.log(r + mu) - n * np.log(mu)))
        else:
            val = float(np.sum(mu - n * np.log(mu)))
        if use_times and all_t.size:
            cond = {"lambda_a_m": la, "lambda_e_m": le} if times_need_medium else {}
            lp = surrogate.delay_log_pdf(all_t, all_d, **cond)
            val -= float(np.sum(np.maximum(lp, -700)))
        return val if np.isfinite(val) else 1e300

    res = optimize.minimize(
        nll,
        np.asarray(start, dtype=float),
        method="Nelder-Mead",
        options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000},
    )
    try:
        cov = np.linalg.inv(numerical_hessian(nll, res.x, eps=1e-3 * np.mean(res.x)))
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        cov, err = np.full((2, 2), np.nan), np.full(2, np.nan)
    out: dict[str, Any] = {
        "lambda_a_m": float(res.x[0]),
        "lambda_e_m": float(res.x[1]),
        "hessian_err_lambda_a_m": float(err[0]),
        "hessian_err_lambda_e_m": float(err[1]),
        "corr": float(cov[0, 1] / (err[0] * err[1])) if err.all() else float("nan"),
        "nll": float(res.fun),
        "n_hits": int(n.sum()),
        "model_error": float(model_error),
    }
    for k, name in enumerate(("lambda_a_m", "lambda_e_m")):
        lo, hi = _profile_interval(nll, res.x, float(res.fun), k, err[k])
        out[f"lo_{name}"], out[f"hi_{name}"] = lo, hi
        out[f"err_{name}"] = 0.5 * (hi - lo)
    return out


def _profile_interval(
    nll: Any, best: np.ndarray, nll_min: float, k: int, scale: float
) -> tuple[float, float]:
    """The Delta NLL = 1/2 interval of parameter k, the other one profiled out."""
    other = 1 - k
    x_o = [float(best[other])]  # warm start: the previous profile point

    def prof(v: float) -> float:
        def f(o: float) -> float:
            p = np.empty(2)
            p[k], p[other] = v, o
            return nll(p)

        r = optimize.minimize_scalar(
            f, bracket=(0.9 * x_o[0], x_o[0]), options={"xtol": 1e-6, "maxiter": 200}
        )
        if np.isfinite(r.fun) and r.fun < 1e299:
            x_o[0] = float(r.x)
        return float(r.fun) - nll_min - 0.5

    v0 = float(best[k])
    step = scale if np.isfinite(scale) and scale > 0 else 0.1 * v0
    ends = []
    for sign in (-1.0, 1.0):
        x_o[0] = float(best[other])
        a, b = v0, v0 + sign * step
        for _ in range(40):  # walk out until the profile rises by 1/2
            if (sign < 0 and b <= 1.0) or prof(b) > 0:
                break
            a, b = b, v0 + sign * (abs(b - v0) * 1.6)
        if sign < 0 and b <= 1.0:
            ends.append(1.0)
            continue
        x_o[0] = float(best[other])
        lo_, hi_ = (b, a) if sign < 0 else (a, b)
        try:
            ends.append(float(optimize.brentq(prof, lo_, hi_, xtol=1e-4 * v0)))
        except ValueError:
            ends.append(b)
    return ends[0], ends[1]
