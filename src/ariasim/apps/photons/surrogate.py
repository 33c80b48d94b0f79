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
    "binned_expectation",
    "compare_delays",
    "compare_yields",
    "delay_bin_edges",
    "delay_quadrature",
    "delay_samples",
    "describe_interval",
    "error_band",
    "fit_medium",
    "fit_photon_surrogate",
    "make_training_data",
    "medium_lengths",
    "medium_range",
    "surrogate_bin_errors",
    "yield_domain_grid",
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
#: 0.1 ns in 40 log bins, then :func:`~ariasim.simulators.photons.default_time_edges`'
#: 200 log bins. Near the source the direct photons are a probability mass at delay 0
#: (52 % at 5 m, 20 % at 10 m, 0.8 % at 25 m in bulk ice), which no continuous density
#: can follow. (With one bin per decade below 0.1 ns, as before, the density fitted to
#: the histogram's quadrature took a step inside each decade for the light's shape and
#: missed the MC's CDF at 0.01 ns by 1 % at 7.5 m, 18x its noise at 2e6 photons.)
DELAY_EDGES_NS = np.concatenate(
    [[0.0], np.logspace(-5.0, -1.0, 41)[:-1], np.logspace(-1.0, 4.0, 200)]
)
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


def yield_domain_grid(
    yields: pd.DataFrame, inputs: Sequence[str], points: int = 4096
) -> np.ndarray:
    """Points spanning the domain a yield formula is used on, where it must be finite.

    The yield table holds bin centres only (e.g. cos_theta at +-0.25 and +-0.75), so a
    formula can fit them and have a pole or a negative square root between or beyond
    them (one fitted ``sqrt(1 + ... - 49/4 cos_theta^4)``, NaN near cos_theta = -1, where
    a user's geometry puts modules). The grid spans [-1, 1] for ``cos_theta`` and each
    other input's training range, about ``points`` points in all.

    Example:
        >>> t = pd.DataFrame({"distance_m": [5.0, 10.0], "cos_theta": [-0.5, 0.5]})
        >>> g = yield_domain_grid(t, ["distance_m", "cos_theta"], points=9)
        >>> g.shape, float(g[:, 1].min()), float(g[:, 1].max())
        ((9, 2), -1.0, 1.0)
    """
    k = max(2, round(points ** (1.0 / max(len(inputs), 1))))
    axes = []
    for name in inputs:
        v = yields[name].to_numpy(float)
        lo, hi = (-1.0, 1.0) if name == "cos_theta" else (float(v.min()), float(v.max()))
        axes.append(np.linspace(lo, hi, k))
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1)


def _check_shells(
    shells: Sequence[float],
    parameter: str,
    delays: pd.DataFrame,
    delay_inputs: Sequence[str],
    excluded: Sequence[float],
) -> None:
    """Every shell of ``shells`` must be a training distance of ``delays`` not in
    ``excluded``, and the delay density one of the distance alone; else a ConfigError
    naming ``parameter``."""
    if not len(shells):
        return
    if tuple(delay_inputs) != ("distance_m",):
        raise ConfigError(
            "only for a delay density of the distance alone (delay_inputs=('distance_m',))",
            parameter=parameter,
        )
    fitted = set(np.round(delays["distance_m"].to_numpy(dtype=float), 9).tolist())
    fitted -= {round(float(v), 9) for v in excluded}
    outside = " outside always_fit_distances_m" if len(excluded) else ""
    for v in shells:
        if round(float(v), 9) not in fitted:
            raise ConfigError(
                f"{float(v):g} m is not a training distance{outside}", parameter=parameter
            )


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
    warp: int | Sequence[int] | None = None,
    log_degree: int | Sequence[int] | None = None,
    warp_log_degree: int | Sequence[int] | None = None,
    always_fit_distances_m: Sequence[float] = (),
    knots_m: Sequence[float] | None = None,
    tail_log_degree: int | Sequence[int] | None = None,
    smooth: float | Sequence[float] = 0.0,
    restarts: int = 0,
    validation_distances_m: Sequence[float] = (),
    validation_per_distance: bool = False,
    ordered_means: bool = False,
    validation_loso_m: Sequence[float] = (),
    warp_knots_m: Sequence[float] = (),
    warp_knot_smooth: float = 0.0,
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
        warp: Degree(s) of the delay density's Bernstein warp of its continuous CDF
            (``SymbolicDensity(warp=...)``; 0 among them lets the plain family compete),
            chosen by held-out likelihood like the parameter functions. Default: (0, 8,
            16) for a density of the distance alone, else (0, 4, 8).
        log_degree: Degree(s) in ln d of the delay density's polynomial parameter
            functions (``SymbolicDensity(log_degree=...)``), chosen likewise. Default:
            (2, 3) for a density of the distance alone, else 2 (with several conditions
            the polynomial is quadratic in them whatever the degree).
        warp_log_degree: Degree(s) in ln d of the warp's logits, chosen likewise.
            Default: (2, 4) for a density of the distance alone, else None (that of the
            parameter functions).
        always_fit_distances_m: Training distances never left out for the choice of the
            parameter functions (e.g. extra shells added near the source): the left-out
            distances are picked among the others, so adding these changes only what
            every fit is trained on.
        knots_m: Knots [m] of the delay density's near-source spline terms
            max(0, ln(k / d))^3 (``SymbolicDensity(knots=...)``), tried one after another
            on top of the highest degree in ln d and chosen likewise. Default: none
            (the caller names them, e.g. the demo's ``DemoConfig.density_knots_m``).
        tail_log_degree: Degree(s) in ln d of ln(1/tau(d)) of an exponential cut-off
            exp(-delay / tau(d)) of the delay density's survival function (the late light
            in an absorbing medium falls off exponentially; ``SymbolicDensity(
            tail_log_degree=...)``), each competing with no cut-off on the held-out
            likelihood. Default None: not tried.
        smooth: Strength(s) of a curvature penalty in ln d on the delay density's
            polynomial parameter functions and warp logits (``SymbolicDensity(
            smooth=...)``), chosen likewise after the degrees and the warp (only for a
            density of the distance alone). Default 0: none.
        restarts: Extra perturbed starts of the delay density's chosen polynomial
            family (``SymbolicDensity(restarts=...)``), the best by the held-out
            likelihood kept. Default 0.
        validation_distances_m: Training distances that are always left out of the
            choice step (in addition to every fourth distinct distance, picked as
            without them), e.g. shells near the source, so that the choice of the
            parameter functions, degrees, warp, restarts and penalty sees the near
            source too; they are fitted in the refit on all training distances like the
            rest. Each must be a training distance of a density of the distance alone and
            not in ``always_fit_distances_m``. Default: none.
        validation_per_distance: Score the choice by the mean over left-out distances
            of each one's mean NLL per photon (``SymbolicDensity(val_per_condition=
            True)``), so that each left-out shell counts once whatever its photon count;
            default False: the mean NLL over all left-out photons.
        ordered_means: Parametrise the delay density's late component by its distance
            from the early one, mu_1 = mu_0 + exp(log_dmu_1(d))
            (``SymbolicDensity(ordered_means=True)``; needs ``n_components=2``), so
            that the components cannot swap roles between distances. Default False.
        validation_loso_m: Training distances [m] at which the final choice step (the
            restart, then the curvature penalty) scores its candidates by leaving each
            one out in turn (``SymbolicDensity(loso=...)``: each candidate refined on all
            training distances, then once without each of these, its warp fitted on top,
            scored by the mean NLL per photon at the one left out; mean over them), in
            place of the left-out distances above. The candidates and every earlier
            choice are unchanged. Only for a density of the distance alone. Default:
            none (off).
        warp_knots_m: Knots [m] of near-source spline terms max(0, ln(k / d))^3 of the
            delay density's warp logits alone (``SymbolicDensity(warp_knots=...)``):
            each warp candidate is also tried with them, chosen likewise. Only for a
            density of the distance alone. Default: none (off).
        warp_knot_smooth: Curvature penalty on the logits of the warp candidates with
            ``warp_knots_m`` (``SymbolicDensity(warp_knot_smooth=...)``), kept by the
            winning knotted warp through the restarts, the penalty step and the refit.
            Default 0.0: off.

    The delay density's symbolic and polynomial parameter functions are compared by
    their likelihood on held-out training distances (every fourth distinct distance,
    when there are at least eight; these are left out of that fit), and so are the
    degrees in ln d and the warp; the winner is then fitted again on all training
    distances: a polynomial winner from the optimum of that fit
    (:meth:`SymbolicDensity.refit`; a fit from scratch can stall in a poorer optimum), a
    symbolic one from scratch; the refit is kept if its likelihood on all training
    distances is at least as good.
    """
    import copy

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
    # checked before the fits start
    _check_shells(
        validation_distances_m, "validation_distances_m", dl, delay_inputs, always_fit_distances_m
    )
    _check_shells(validation_loso_m, "validation_loso_m", dl, delay_inputs, ())
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
    sr.fit(
        y[list(yield_inputs)].to_numpy(),
        y["log_yield"].to_numpy(),
        sample_weight=w,
        X_check=yield_domain_grid(y, yield_inputs),
    )
    # the richer candidates were measured for the distance alone (BENCHMARKS.md, "Delay
    # density against the MC's noise floor"); across media the previous ones stay
    alone = tuple(delay_inputs) == ("distance_m",)
    if warp is None:
        warp = (0, 8, 16) if alone else (0, 4, 8)
    if log_degree is None:
        log_degree = (2, 3) if alone else 2
    if warp_log_degree is None and alone:
        warp_log_degree = (2, 4)
    density = SymbolicDensity(
        n_components=n_components,
        point_mass=point_mass,
        warp=warp,
        log_degree=log_degree,
        warp_log_degree=warp_log_degree,
        knots=tuple(knots_m or ()),
        tail_log_degree=tail_log_degree,
        smooth=smooth,
        restarts=restarts,
        val_per_condition=bool(validation_per_distance),
        ordered_means=bool(ordered_means),
        loso=tuple(float(v) for v in validation_loso_m),
        warp_knots=tuple(warp_knots_m),
        warp_knot_smooth=warp_knot_smooth,
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
    keep = {round(float(v), 9) for v in always_fit_distances_m}
    distinct = sorted(k for k in set(key) if not (len(k) == 1 and k[0] in keep))
    val_keys = set(distinct[2::4]) if len(distinct) >= 8 else set()
    val_keys |= {(round(float(v), 9),) for v in validation_distances_m}
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
        if density.param_model_used_ == "poly":
            again = copy.deepcopy(density).refit(X_all, t_all, sample_weight=wt)
        else:
            again = clone(density).set_params(
                param_model=density.param_model_used_,
                warp=density.warp_degree_,
                log_degree=density.log_degree_,
                warp_log_degree=density.warp_log_degree_ or None,
                knots=density.knots_,
                tail_log_degree=density.tail_log_degree_,
            )
            again.fit(X_all, t_all, sample_weight=wt)
        nll_sub = density.mean_nll(t_all, X_all, wt)
        nll_all = again.mean_nll(t_all, X_all, wt)
        # a symbolic winner's refit is a whole new fit, which chooses its kind again (on
        # the training BIC): it is kept only if the kind stays the held-out winner's
        same_kind = again.param_model_used_ == density.param_model_used_
        refit = bool(nll_all <= nll_sub and same_kind)
        chosen = {
            **density.selection_,
            "nll_all_training_subset_fit": nll_sub,
            "nll_all_training_refit": nll_all,
            "refit_on_all_training_distances": refit,
            "refit_param_model": again.param_model_used_,
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


def medium_range(surrogate: PhotonSurrogate) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (lambda_a, lambda_e) range [m] of the surrogate's training media (its domain);
    a factor 2 either side of a length it was trained at one value only, and (1, 1e4) m
    where the surrogate does not say."""
    media = surrogate.metadata.get("media") if isinstance(surrogate.metadata, dict) else None
    try:
        arr = np.asarray(media, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        arr = np.zeros((0, 2))
    if arr.shape[0] < 1 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        return (1.0, 1e4), (1.0, 1e4)
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    one = hi <= lo
    lo, hi = np.where(one, lo / 2, lo), np.where(one, hi * 2, hi)
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def delay_bin_edges(
    surrogate: PhotonSurrogate,
    distances_m: Any,
    n_bins: int,
    *,
    reference: dict[str, float],
    grid_ns: Any = None,
    min_edge_ns: float = 2.0,
) -> np.ndarray:
    """Per module, ``n_bins`` delay bins of equal predicted probability.

    The edges are the quantiles ``j / n_bins`` of the surrogate's delay distribution at
    the module's distance and the fixed ``reference`` conditions (e.g. the middle of the
    training media), snapped to ``grid_ns`` (default :data:`DELAY_EDGES_NS`, the bins of
    the training tables) and at least ``min_edge_ns`` (so that the unscattered light,
    spread over the module's light-crossing time, stays in the first bin). The edges do
    not depend on the fitted parameters, so the binned likelihood is smooth in them.
    Returns an array ``(n_modules, n_bins + 1)`` from 0 to ``inf``.
    """
    if int(n_bins) < 1:
        raise ConfigError(f"must be >= 1, got {n_bins!r}", parameter="delay_bins")
    k = int(n_bins)
    d = np.atleast_1d(np.asarray(distances_m, dtype=float))
    grid = np.asarray(DELAY_EDGES_NS if grid_ns is None else grid_ns, dtype=float)
    grid = grid[grid >= min_edge_ns]
    out = np.empty((d.size, k + 1))
    out[:, 0], out[:, -1] = 0.0, np.inf
    if k == 1:
        return out
    if grid.size < k - 1:
        raise ConfigError(f"too few delay-grid edges for {k} bins", parameter="grid_ns")
    F = surrogate.delay_cdf(np.tile(grid, d.size), np.repeat(d, grid.size), **reference)
    F = F.reshape(d.size, grid.size)
    for i in range(d.size):
        idx = np.searchsorted(F[i], np.arange(1, k) / k)
        idx = np.clip(idx, 0, grid.size - 1)
        for j in range(1, idx.size):  # strictly increasing
            idx[j] = max(idx[j], idx[j - 1] + 1)
        idx = np.minimum(idx, grid.size - k + 1 + np.arange(k - 1))
        out[i, 1:-1] = grid[idx]
    return out


def binned_expectation(
    surrogate: PhotonSurrogate,
    distances_m: Any,
    edges_ns: np.ndarray,
    n_photons: float,
    **conditions: Any,
) -> np.ndarray:
    """Expected hits per module and delay bin, ``(n_modules, n_bins)``: the expected count
    times the delay distribution's probability in each bin (``edges_ns`` from
    :func:`delay_bin_edges`)."""
    d = np.atleast_1d(np.asarray(distances_m, dtype=float))
    e = np.asarray(edges_ns, dtype=float)
    mu = surrogate.expected_hits(d, n_photons, cos_theta=0.0, **conditions)
    if e.shape[1] == 2:
        return mu[:, None]
    inner = e[:, 1:-1]
    dcond = {k: v for k, v in conditions.items() if k in surrogate.delay_inputs}
    F = surrogate.delay_cdf(inner.ravel(), np.repeat(d, inner.shape[1]), **dcond)
    F = np.c_[np.zeros(d.size), F.reshape(inner.shape), np.ones(d.size)]
    return mu[:, None] * np.clip(np.diff(F, axis=1), 0.0, None)


def _table_bins(table: Any, i: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MC fluence and its variance of shell ``i`` in the delay bins ``edges`` (the
    table's cumulative histogram at the edges, linear in log t inside a table bin)."""
    t_edges, flu, var = shell_time_histogram(table)
    cf = np.r_[0.0, np.cumsum(np.clip(flu[i], 0, None))]
    cv = np.r_[0.0, np.cumsum(np.clip(var[i], 0, None))]
    x = np.log(np.maximum(t_edges, 1e-12))
    xe = np.log(np.maximum(np.minimum(edges, t_edges[-1]), 1e-12))
    xe[edges <= 0] = x[0]
    return np.diff(np.interp(xe, x, cf)), np.diff(np.interp(xe, x, cv))


def error_band(distances_m: Any, band_edges_m: Any) -> np.ndarray:
    """Index of the distance band of each distance (``band_edges_m``: increasing edges;
    distances outside go to the first or last band).

    Example:
        >>> error_band([5.0, 30.0, 95.0, 300.0], [10.0, 40.0, 70.0, 100.0]).tolist()
        [0, 0, 2, 2]
    """
    e = np.asarray(band_edges_m, dtype=float)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise ConfigError(
            f"must be at least 2 increasing distances, got {band_edges_m!r}",
            parameter="error_bands_m",
        )
    d = np.atleast_1d(np.asarray(distances_m, dtype=float))
    return np.clip(np.searchsorted(e, d, side="right") - 1, 0, e.size - 2)


def surrogate_bin_errors(
    surrogate: PhotonSurrogate,
    tables: Sequence[Any],
    media: Sequence[tuple[float, float]],
    n_bins: int,
    *,
    reference: dict[str, float],
    band_edges_m: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The surrogate's relative error on expected hits, per distance band and delay bin,
    measured on MC tables it was not trained on (other media, other distances).

    For each table (medium ``(lambda_a, lambda_e)``), shell and delay bin (the bins of
    :func:`delay_bin_edges` at the fixed ``reference`` conditions, as the fit uses them),
    the MC's hits per emitted photon ``m`` (fluence times the module's cross section) is
    compared with the surrogate's ``p``: the error of a delay bin in a distance band
    (``band_edges_m``, default one band) is the rms of ``ln(m / p)`` over the tables and
    the band's shells, with the MC's own noise (``var(m) / m^2``) removed in quadrature:
    ``eps^2 = max(0, mean(ln(m/p)^2) - mean(var(m) / m^2))`` -- the width of the
    log-normal factor by which the surrogate misses the MC (the nuisance of
    :func:`~ariasim.surrogates.likelihood.shared_error_nll`); in log, a surrogate that is
    5 times too high weighs as much as one 5 times too low. The same for the total (one
    bin) is the error of the expected count alone.

    The errors of different bins and bands are correlated (a surrogate that is off at a
    medium is off in a pattern); ``modes_bins`` (``modes_count``) hold them as error
    modes for :func:`~ariasim.surrogates.likelihood.correlated_error_nll`: per
    validation medium, the mean ``ln(m / p)`` in each (band, bin) cell (index ``band *
    n_bins + bin``), divided by the square root of the number of media.

    Returns a dict: ``bins`` (n_bands x n_bins errors), ``count`` (per band),
    ``bins_all`` and ``count_all`` (pooled over the bands), ``band_edges_m``, ``table``
    (one row per band and quantity with the error, the raw rms and the MC noise) and
    ``rows`` (every table, shell and bin).
    """
    if len(tables) != len(media):
        raise ConfigError("one medium per table is needed", parameter="media")
    rows: list[dict[str, Any]] = []
    area = np.pi * surrogate.module_radius_m**2
    all_r = np.concatenate([np.asarray(t.radii_m, dtype=float) for t in tables])
    bands = np.asarray(
        [all_r.min(), all_r.max() + 1e-9] if band_edges_m is None else band_edges_m, dtype=float
    )
    for table, (la, le) in zip(tables, media, strict=True):
        radii = np.asarray(table.radii_m, dtype=float)
        cond = {"lambda_a_m": float(la), "lambda_e_m": float(le)}
        band = error_band(radii, bands)
        for nb, tag in ((1, "count"), (int(n_bins), "bin")):
            edges = delay_bin_edges(surrogate, radii, nb, reference=reference)
            pred = binned_expectation(surrogate, radii, edges, 1.0, **cond)
            for i, d in enumerate(radii):
                m, v = _table_bins(table, i, edges[i])
                for j in range(nb):
                    p = float(pred[i, j])
                    rows.append(
                        {
                            "kind": tag,
                            "lambda_a_m": float(la),
                            "lambda_e_m": float(le),
                            "distance_m": float(d),
                            "band": int(band[i]),
                            "bin": j,
                            "lo_ns": float(edges[i, j]),
                            "hi_ns": float(edges[i, j + 1]),
                            "mc": float(m[j] * area),
                            "surrogate": p,
                            "rel_dev": float(m[j] * area / p - 1.0) if p > 0 else np.inf,
                            "log_dev": float(np.log(m[j] * area / p))
                            if p > 0 and m[j] > 0
                            else np.inf,
                            "log_mc_var": float(v[j] / m[j] ** 2) if m[j] > 0 else np.inf,
                        }
                    )
    df = pd.DataFrame(rows)

    def eps(sel: pd.DataFrame) -> tuple[float, float, float]:
        if sel.empty:
            raise ConfigError(
                "a distance band holds no validation shell; use fewer bands",
                parameter="band_edges_m",
            )
        raw = float(np.mean(sel["log_dev"] ** 2))
        noise = float(np.mean(sel["log_mc_var"]))
        return math.sqrt(max(raw - noise, 0.0)), math.sqrt(raw), math.sqrt(noise)

    n_bands = bands.size - 1
    table_rows: list[dict[str, Any]] = []
    bins_e: list[list[float]] = []
    count_e: list[float] = []
    for b in range(-1, n_bands):  # -1: all bands pooled
        sel_b = df if b < 0 else df[df["band"] == b]
        where = "all" if b < 0 else f"{bands[b]:g}-{bands[b + 1]:g} m"
        per = [eps(sel_b[sel_b["kind"] == "count"])] + [
            eps(sel_b[(sel_b["kind"] == "bin") & (sel_b["bin"] == j)]) for j in range(int(n_bins))
        ]
        for q, e in enumerate(per):
            table_rows.append(
                {
                    "distances": where,
                    "quantity": "count" if q == 0 else f"delay bin {q} of {int(n_bins)}",
                    "error": e[0],
                    "raw_rms": e[1],
                    "mc_noise": e[2],
                }
            )
        if b >= 0:
            count_e.append(per[0][0])
            bins_e.append([e[0] for e in per[1:]])
        else:
            count_all, bins_all = per[0][0], [e[0] for e in per[1:]]
    # error modes: per validation medium, the mean ln(MC / surrogate) in each (band, bin)
    # cell, over sqrt(M) (their outer products average to the cells' mean-square errors)
    keys = sorted({(r["lambda_a_m"], r["lambda_e_m"]) for r in rows})
    modes: dict[str, list[list[float]]] = {}
    for tag, nb in (("count", 1), ("bin", int(n_bins))):
        sel = df[df["kind"] == tag]
        cell = sel.groupby(["lambda_a_m", "lambda_e_m", "band", "bin"])["log_dev"].mean()
        mat = np.zeros((len(keys), n_bands * nb))
        for m_i, (la, le) in enumerate(keys):
            for b in range(n_bands):
                for j in range(nb):
                    mat[m_i, b * nb + j] = cell.get((la, le, b, j), 0.0)
        modes[tag] = (mat / math.sqrt(len(keys))).tolist()
    return {
        "modes_bins": modes["bin"],
        "modes_count": modes["count"],
        "bins": bins_e,
        "count": count_e,
        "bins_all": bins_all,
        "count_all": count_all,
        "band_edges_m": bands.tolist(),
        "reference": dict(reference),
        "media": [list(map(float, m)) for m in media],
        "table": table_rows,
        "rows": df.to_dict(orient="records"),
    }


def fit_medium(
    surrogate: PhotonSurrogate,
    *,
    distances_m: np.ndarray,
    counts: np.ndarray,
    delays_ns: Sequence[np.ndarray],
    n_photons: float,
    start: tuple[float, float] | None = None,
    use_times: bool = True,
    model_error: float = 0.0,
    delay_bins: int | None = None,
    bin_errors: Sequence[float] | None = None,
    error_model: str = "shared",
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
    error_bands_m: Sequence[float] | None = None,
    error_modes: Any = None,
) -> dict[str, Any]:
    """Maximum-likelihood absorption and effective scattering lengths from module data.

    Two likelihoods:

    * ``delay_bins=None``: hit counts per module with the surrogate's expectation mu,
      times the delay density of every hit (extended unbinned likelihood); the counts
      are Poisson or, with ``model_error`` eps > 0, negative binomial with variance
      mu + (eps mu)^2. The delay density is taken as exact.
    * ``delay_bins=K``: per module, the hits in K delay bins of equal predicted
      probability (:func:`delay_bin_edges`, at the middle of the parameter range), each
      bin's expectation carrying the surrogate's relative error ``bin_errors[j]`` (per
      distance band, measured on held-out MC tables, :func:`surrogate_bin_errors`).
      With ``error_model="shared"`` (default) the error of bin j is one nuisance factor
      shared by every module of the distance band
      (:func:`~ariasim.surrogates.likelihood.shared_error_nll`): a surrogate's error is
      a property of the model and does not average out over modules.
      ``"independent"`` gives every module and bin its own gamma-distributed
      expectation (the effective likelihood of Argüelles, Schneider & Yuan, JHEP 06
      (2019) 030, :func:`~ariasim.surrogates.likelihood.gamma_poisson_nll`), which at
      a fraction of a hit per bin is the Poisson likelihood. ``use_times=False`` is
      the one-bin case: the counts alone, with the error ``model_error``.

    The parameters are fitted inside ``bounds`` (default: the range of the surrogate's
    training media, its domain). The intervals are profile-likelihood intervals (Delta
    NLL = 1/2; ``lo_*``, ``hi_*``; ``err_*`` is half their width), right also when the
    likelihood is not Gaussian. Where the profile does not rise by 1/2 before a bound the
    interval is **open** there (``lo_open_*`` / ``hi_open_*`` true, the end is the bound,
    and ``interval_*`` says it in words, :func:`describe_interval`):
    the data do not bound the parameter on that side within the surrogate's range.
    ``at_bound_*`` flags a best fit on a bound. ``hessian_err_*`` are the inverse-Hessian
    errors, for comparison (NaN at a bound).

    Arguments:
        surrogate: Fitted across media (yield and delay depend on lambda_a_m, lambda_e_m).
        distances_m: Module distances from the source.
        counts: Hits per module.
        delays_ns: Per module, the delays of its hits.
        n_photons: Emitted photons (of the same definition as in training).
        start: Starting values (lambda_a, lambda_e) [m] (default: the geometric middle
            of ``bounds``); the fit starts from the best of them and a 7 x 7 grid in log
            lengths over ``bounds``.
        use_times: Include the delays (else counts only).
        model_error: Relative error eps of the surrogate's expected counts (>= 0).
        delay_bins: Number of delay bins (None: the unbinned likelihood).
        bin_errors: Relative error of each delay bin's expectation (default 0; with
            ``use_times=False`` the one bin is the count, default ``model_error``): K
            values, or one row of K per distance band of ``error_bands_m``, each module
            taking its band's row; every (band, bin) is one nuisance.
        error_model: ``"shared"`` or ``"independent"`` (binned likelihood only).
        bounds: ((lambda_a_lo, lambda_a_hi), (lambda_e_lo, lambda_e_hi)) [m].
        error_bands_m: Edges of the distance bands of ``bin_errors`` [m].
        error_modes: Correlated errors instead of ``bin_errors`` (binned only): modes x
            (band, bin) cells (index ``band * K + bin``), ``ln`` of the factor by which
            the surrogate may be off in each cell
            (:func:`~ariasim.surrogates.likelihood.correlated_error_nll`; e.g.
            ``modes_bins`` of :func:`surrogate_bin_errors`).
    """
    from ariasim.surrogates.likelihood import (
        correlated_error_nll,
        gamma_poisson_nll,
        shared_error_nll,
    )

    if not (np.isfinite(model_error) and model_error >= 0):
        raise ConfigError(f"must be >= 0, got {model_error!r}", parameter="model_error")
    if error_model not in ("shared", "independent"):
        raise ConfigError(
            f"must be 'shared' or 'independent', got {error_model!r}", parameter="error_model"
        )
    need = {"lambda_a_m", "lambda_e_m"}
    if not need <= set(surrogate.yield_inputs):
        raise ConfigError(
            "the surrogate's yield formula does not depend on the medium "
            "lengths; fit it across media",
            parameter="surrogate",
        )
    bnd = np.asarray(medium_range(surrogate) if bounds is None else bounds, dtype=float)
    if bnd.shape != (2, 2) or not np.all(bnd[:, 0] > 0) or not np.all(bnd[:, 1] > bnd[:, 0]):
        raise ConfigError(
            f"must be ((lo, hi), (lo, hi)) with 0 < lo < hi, got {bounds!r}", parameter="bounds"
        )
    mid = np.sqrt(bnd[:, 0] * bnd[:, 1])
    x0 = mid if start is None else np.clip(np.asarray(start, dtype=float), bnd[:, 0], bnd[:, 1])
    d = np.asarray(distances_m, dtype=float)
    n = np.asarray(counts, dtype=float)
    times_need_medium = need <= set(surrogate.delay_inputs)
    binned = delay_bins is not None
    info: dict[str, Any] = {}
    if delay_bins is not None:
        k = int(delay_bins) if use_times else 1
        if k < 1:
            raise ConfigError(f"must be >= 1, got {delay_bins!r}", parameter="delay_bins")
        ref = {"lambda_a_m": float(mid[0]), "lambda_e_m": float(mid[1])}
        edges = delay_bin_edges(surrogate, d, k, reference=ref if times_need_medium else {})
        if bin_errors is not None:
            eps_m = np.asarray(bin_errors, dtype=float)
        else:
            eps_m = np.zeros(k) if use_times else np.array([float(model_error)])
        eps_m = eps_m.reshape(1, -1) if eps_m.ndim == 1 else eps_m
        if eps_m.ndim != 2 or eps_m.shape[1] != k or not np.all(np.isfinite(eps_m)):
            raise ConfigError(
                f"must be {k} relative errors (or one row of {k} per distance band), got "
                f"{bin_errors!r}",
                parameter="bin_errors",
            )
        if np.any(eps_m < 0):
            raise ConfigError("relative errors must be >= 0", parameter="bin_errors")
        n_bands = eps_m.shape[0]
        if error_modes is not None:
            modes = np.atleast_2d(np.asarray(error_modes, dtype=float))
            n_bands = modes.shape[1] // k
            if modes.shape[1] != n_bands * k or n_bands < 1 or not np.all(np.isfinite(modes)):
                raise ConfigError(
                    f"must have (bands x {k}) finite columns, got shape {modes.shape}",
                    parameter="error_modes",
                )
        if n_bands > 1:
            if error_bands_m is None or len(error_bands_m) != n_bands + 1:
                raise ConfigError(
                    f"{n_bands} distance bands of the errors need {n_bands + 1} band edges",
                    parameter="error_bands_m",
                )
            band = error_band(d, error_bands_m)
        else:
            band = np.zeros(d.size, dtype=int)
        if use_times:
            obs = np.array(
                [
                    np.histogram(np.asarray(t, dtype=float), bins=e)[0]
                    for t, e in zip(delays_ns, edges, strict=True)
                ],
                dtype=float,
            )
        else:
            obs = n[:, None]
        group_m = band[:, None] * k + np.arange(k)[None, :]  # (module, bin) -> nuisance
        groups = group_m.ravel()
        eps_flat = eps_m.ravel()
        eps_cell = eps_flat[group_m] if error_modes is None else np.zeros(group_m.shape)
        if error_modes is not None:
            error_model = "correlated"
        info = {
            "delay_bins": k,
            "bin_errors": eps_m.tolist() if error_modes is None else None,
            "error_modes": None if error_modes is None else modes.tolist(),
            "error_bands_m": None if error_bands_m is None else list(map(float, error_bands_m)),
            "error_model": error_model,
            "bin_edges_reference": ref,
        }
    else:
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

    def nll(p: np.ndarray) -> float:
        la, le = float(p[0]), float(p[1])
        if not (bnd[0, 0] <= la <= bnd[0, 1] and bnd[1, 0] <= le <= bnd[1, 1]):
            return 1e300
        cond = {"lambda_a_m": la, "lambda_e_m": le}
        if binned:
            mu_b = np.maximum(binned_expectation(surrogate, d, edges, n_photons, **cond), 1e-300)
            if error_model == "correlated":
                val = correlated_error_nll(obs.ravel(), mu_b.ravel(), modes, groups)[0]
            elif error_model == "shared":
                val = shared_error_nll(obs.ravel(), mu_b.ravel(), eps_flat, groups)[0]
            else:
                val = float(np.sum(gamma_poisson_nll(obs, mu_b, eps_cell)))
            return val if np.isfinite(val) else 1e300
        mu = surrogate.expected_hits(d, n_photons, cos_theta=0.0, **cond)
        mu = np.maximum(mu, 1e-300)
        if model_error > 0:  # negative binomial, r = 1/eps^2 (terms free of mu dropped)
            r = 1.0 / model_error**2
            val = float(np.sum((n + r) * np.log(r + mu) - n * np.log(mu)))
        else:
            val = float(np.sum(mu - n * np.log(mu)))
        if use_times and all_t.size:
            lp = surrogate.delay_log_pdf(all_t, all_d, **(cond if times_need_medium else {}))
            val -= float(np.sum(np.maximum(lp, -700)))
        return val if np.isfinite(val) else 1e300

    log_b = np.log(bnd)
    # the likelihood can have several minima: start from the best of a coarse grid in
    # log lengths (and the given start)
    grid = np.linspace(0.0, 1.0, 7)
    cands = [np.log(x0)] + [
        log_b[:, 0] + np.array([u, v]) * (log_b[:, 1] - log_b[:, 0]) for u in grid for v in grid
    ]
    x_start = min(cands, key=lambda x: nll(np.exp(x)))
    res = optimize.minimize(
        lambda x: nll(np.exp(np.clip(x, log_b[:, 0], log_b[:, 1]))),
        x_start,
        method="Nelder-Mead",
        bounds=[tuple(b) for b in log_b],
        options={"xatol": 1e-6, "fatol": 1e-7, "maxiter": 2000},
    )
    best = np.clip(np.exp(res.x), bnd[:, 0], bnd[:, 1])
    nll_min = nll(best)
    at_bound = np.isclose(best, bnd[:, 0], rtol=1e-4) | np.isclose(best, bnd[:, 1], rtol=1e-4)
    try:
        if at_bound.any():
            raise np.linalg.LinAlgError
        h = 1e-3 * best
        H = numerical_hessian(lambda u: nll(best + u * h), np.zeros(2), eps=1.0) / np.outer(h, h)
        cov = np.linalg.inv(H)
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        cov, err = np.full((2, 2), np.nan), np.full(2, np.nan)
    out: dict[str, Any] = {
        "lambda_a_m": float(best[0]),
        "lambda_e_m": float(best[1]),
        "hessian_err_lambda_a_m": float(err[0]),
        "hessian_err_lambda_e_m": float(err[1]),
        "corr": float(cov[0, 1] / (err[0] * err[1])) if np.all(err > 0) else float("nan"),
        "nll": float(nll_min),
        "n_hits": int(n.sum()),
        "model_error": float(model_error),
        "likelihood": (
            ("binned delays" if use_times else "counts")
            + f", {info['error_model']} surrogate error"
            if binned
            else ("unbinned delays" if use_times else "counts")
        ),
        "bounds": bnd.tolist(),
        **info,
    }
    for k_, name in enumerate(("lambda_a_m", "lambda_e_m")):
        lo, hi, lo_open, hi_open = _profile_interval(
            nll, best, float(nll_min), k_, float(err[k_]), bnd
        )
        out[f"lo_{name}"], out[f"hi_{name}"] = lo, hi
        out[f"lo_open_{name}"], out[f"hi_open_{name}"] = lo_open, hi_open
        out[f"at_bound_{name}"] = bool(at_bound[k_])
        out[f"err_{name}"] = 0.5 * (hi - lo)
        out[f"interval_{name}"] = describe_interval(lo, hi, lo_open, hi_open)
    return out


def describe_interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    """An interval in words, saying which ends are open (not bounded by the data).

    Example:
        >>> describe_interval(74.21, 150.0, False, True)
        '> 74.2 (open: the data allow values up to the range end 150.0)'
        >>> describe_interval(74.21, 130.0, False, False)
        '[74.2, 130.0]'
    """
    if lo_open and hi_open:
        return f"unbounded: the data allow the whole range [{lo:.1f}, {hi:.1f}]"
    if hi_open:
        return f"> {lo:.1f} (open: the data allow values up to the range end {hi:.1f})"
    if lo_open:
        return f"< {hi:.1f} (open: the data allow values down to the range end {lo:.1f})"
    return f"[{lo:.1f}, {hi:.1f}]"


def _profile_interval(
    nll: Any, best: np.ndarray, nll_min: float, k: int, scale: float, bnd: np.ndarray
) -> tuple[float, float, bool, bool]:
    """The Delta NLL = 1/2 interval of parameter k inside ``bnd``, the other profiled out
    (in log, within its bounds); an end is open (the bound) where the profile stays below
    1/2 up to the bound."""
    other = 1 - k
    lo_o, hi_o = np.log(bnd[other])

    def prof(v: float) -> float:
        def f(x: float) -> float:
            p = np.empty(2)
            p[k], p[other] = v, math.exp(x)
            return nll(p)

        r = optimize.minimize_scalar(
            f, bounds=(lo_o, hi_o), method="bounded", options={"xatol": 1e-5}
        )
        # the bounded search can miss a narrow valley: never above the MLE's own value
        here = min(float(r.fun), f(math.log(best[other])))
        return here - nll_min - 0.5

    v0 = float(best[k])
    lo_k, hi_k = float(bnd[k, 0]), float(bnd[k, 1])
    step = scale if np.isfinite(scale) and scale > 0 else 0.1 * v0
    ends: list[float] = []
    opened: list[bool] = []
    for sign, edge in ((-1.0, lo_k), (1.0, hi_k)):
        a, b = v0, v0 + sign * step
        found = False
        for _ in range(40):  # walk out until the profile rises by 1/2 or the bound
            if sign * (b - edge) >= 0:
                b = edge
                found = bool(v0 != edge and prof(b) > 0)
                break
            if prof(b) > 0:
                found = True
                break
            a, b = b, v0 + sign * (abs(b - v0) * 1.6)
        if not found:
            ends.append(edge)
            opened.append(True)
            continue
        lo_, hi_ = (b, a) if sign < 0 else (a, b)
        try:
            ends.append(float(optimize.brentq(prof, lo_, hi_, xtol=1e-4 * v0)))
        except ValueError:
            ends.append(b)
        opened.append(False)
    return ends[0], ends[1], opened[0], opened[1]
