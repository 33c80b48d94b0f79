"""The shallow-flow simulator: configuration, time loop and result.

Equations (1-D, bed-following coordinate ``s``, depth ``h``, depth-averaged velocity ``u``;
Savage & Hutter 1989, written as in REFERENCE.md section 6)::

    d_t h + d_s(h u) = 0
    d_t(h u) + d_s(h u^2 + k g cos(phi) h^2 / 2) = g h sin(phi) - sgn(u) S(h, |u|)

With ``moments = N >= 1`` the velocity profile carries ``N`` Legendre moments and the system
has ``N + 2`` balance laws (Kowalski & Torrilhon 2019; see :mod:`.moments`); the basal
friction then acts on the basal velocity ``u_b = u_m + sum_j alpha_j`` (slip at the base,
weight ``2i + 1`` on moment ``i``) and an internal Newtonian viscosity ``moment_viscosity``
relaxes the profile; both are applied in one implicit step. ``N = 0`` is the plain model
(the same code, no extra terms). The moment system is the original one of Kowalski &
Torrilhon, not its hyperbolic regularisation (Koellermeier et al. 2020): for ``N = 2`` and
strong shear it may lose hyperbolicity; the Rusanov speed bound is generous by
``sum_j |alpha_j|`` to keep the scheme stable in practice.

Numerics: finite volumes, MUSCL + Rusanov, SSP-RK2 (Heun), CFL time step, semi-implicit
friction, wet/dry threshold (see :mod:`.kernels`).

Speed (one core of a shared 2-core machine, default 400 cells, built-in friction law):
about 35-40 microseconds per time step, i.e. 25-30 runs per second for the default plain
release (~900 steps); N = 1 and N = 2 cost about 65 and 80 microseconds per step and usually
run longer (see the note on ``moment_viscosity``); a Python friction callable adds about
50 microseconds per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from ariasim.errors import ConfigError
from ariasim.simulators.shallowflow import kernels
from ariasim.simulators.shallowflow.friction import FrictionCallable, FrictionLaw, voellmy
from ariasim.simulators.shallowflow.geometry import Slope
from ariasim.simulators.shallowflow.moments import MomentTensors

__all__ = ["ShallowFlowConfig", "ShallowFlowResult", "simulate"]

_LIMITERS = {"minmod": kernels.MINMOD, "vanleer": kernels.VANLEER}
_BOUNDARIES = {"wall": kernels.WALL, "open": kernels.OPEN}


@dataclass(frozen=True)
class ShallowFlowConfig:
    """Every parameter of a shallow-flow simulation (SI units, angles in degrees).

    Geometry (ignored where ``profile`` is given):
        chute_angle: Inclination of the chute (deg). Default 35.
        chute_length: Arc length of the chute (m). Default 100.
        runout_angle: Inclination of the run-out zone (deg). Default 0.
        runout_length: Arc length of the run-out zone (m). Default 150.
        transition: Arc length of the smooth bend between them (m). Default 10.
        profile: ``(x, z)`` arrays of a user-given bed (flow towards +x), or None.

    Release (the initial mass, at rest unless ``release_velocity``):
        release_volume: Volume per unit width (m^3/m). Default 20.
        release_length: Arc length it covers (m). Default 10.
        release_start: Arc length of its upper end (m). Default 5.
        release_shape: ``"parabolic"`` (a cap) or ``"block"`` (uniform depth).
        release_velocity: Initial velocity of the released mass (m/s). Default 0.
        initial_depth: Optional callable ``s -> h(s)`` replacing the release.
        initial_velocity: Optional callable ``s -> u(s)`` (with ``initial_depth``).

    Material:
        friction: A :class:`FrictionLaw` (compiled fast path) or any callable
            ``S(h, u, params)``. Default Voellmy ``mu = 0.3, xi = 400 m/s^2``.
        earth_pressure: Earth-pressure coefficient ``k``. Default 1.
        g: Gravitational acceleration (m/s^2). Default 9.81.
        moments: Number ``N`` of velocity-profile moments (0 = plain model, 1, 2, ...).
        moment_viscosity: Internal kinematic viscosity of the moment model (m^2/s).
            Default 0.5, the order of the effective viscosity ``mu g h cos(phi) / (du/dz)``
            of a dense granular flow at metre scale. Large values keep the profile uniform
            (the plain model's limit). A Newtonian bulk over a base that friction holds
            keeps spreading slowly as a viscous gravity current (speed about
            ``g h^2 |dh/ds| / (3 nu)``), so runs with ``moments >= 1`` often end by
            ``settle_time`` or ``t_max`` rather than at rest.

    Numerics:
        n_cells: Number of finite volumes. Default 400.
        cfl: CFL number (<= 0.5 keeps the depth positive). Default 0.45.
        limiter: ``"minmod"`` or ``"vanleer"``.
        h_dry: Depth below which a cell is dry (m); None = 1e-4 x the initial maximum.
        boundary: ``(upper, lower)`` boundary type, each ``"wall"`` or ``"open"``.

    Outputs and stopping:
        t_max: Largest simulated time (s). Default 120.
        output_interval: Time between recorded outputs (s). Default 0.5.
        u_stop: The run stops ("at_rest") once every cell deeper than the front threshold
            is slower than this (m/s), after ``t_min``. Default 1e-3.
        t_min: No stop before this time (s). Default 1.
        settle_time: The run also stops ("front_settled") once the front has moved less
            than 5 % of a cell over this time (s), e.g. while a thin film still drains down
            a chute steeper than the friction angle; None disables. Default 10.
        front_threshold: Depth that defines the front (m); None = 1 % of initial maximum.
        gauges: Arc lengths (m) where depth and velocity are recorded.
        store_fields: Also keep the depth profile at every output time.

    Example:
        >>> cfg = ShallowFlowConfig(chute_angle=30.0, n_cells=200)
        >>> cfg.n_cells, cfg.limiter
        (200, 'minmod')
        >>> ShallowFlowConfig(cfl=0.9)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'cfl': must be in (0, 0.5], got 0.9
    """

    chute_angle: float = 35.0
    chute_length: float = 100.0
    runout_angle: float = 0.0
    runout_length: float = 150.0
    transition: float = 10.0
    profile: tuple[Any, Any] | None = None
    release_volume: float = 20.0
    release_length: float = 10.0
    release_start: float = 5.0
    release_shape: str = "parabolic"
    release_velocity: float = 0.0
    initial_depth: Callable[[np.ndarray], np.ndarray] | None = None
    initial_velocity: Callable[[np.ndarray], np.ndarray] | None = None
    friction: FrictionCallable = field(default_factory=lambda: voellmy(0.3, 400.0))
    earth_pressure: float = 1.0
    g: float = 9.81
    moments: int = 0
    moment_viscosity: float = 0.5
    n_cells: int = 400
    cfl: float = 0.45
    limiter: str = "minmod"
    h_dry: float | None = None
    boundary: tuple[str, str] = ("wall", "wall")
    t_max: float = 120.0
    output_interval: float = 0.5
    u_stop: float = 1e-3
    t_min: float = 1.0
    settle_time: float | None = 10.0
    front_threshold: float | None = None
    gauges: tuple[float, ...] = ()
    store_fields: bool = False

    def __post_init__(self) -> None:
        number = (int, float, np.floating, np.integer)
        for name in (
            "chute_angle",
            "chute_length",
            "runout_angle",
            "runout_length",
            "transition",
            "release_velocity",
            "cfl",
        ):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, number) or not np.isfinite(val):
                raise ConfigError(f"must be a finite number, got {val!r}", parameter=name)
        for name in ("h_dry", "front_threshold", "settle_time"):
            val = getattr(self, name)
            if val is not None and (isinstance(val, bool) or not isinstance(val, number)):
                raise ConfigError(f"must be a number or None, got {val!r}", parameter=name)

        def positive(name: str, allow_zero: bool = False) -> None:
            val = getattr(self, name)
            ok = isinstance(val, (int, float, np.floating, np.integer)) and np.isfinite(val)
            if not ok or (val < 0 if allow_zero else val <= 0):
                what = ">= 0" if allow_zero else "> 0"
                raise ConfigError(f"must be a finite number {what}, got {val!r}", parameter=name)

        for name in ("release_volume", "release_length", "g", "t_max", "output_interval", "u_stop"):
            positive(name)
        for name in ("earth_pressure", "moment_viscosity", "t_min", "release_start"):
            positive(name, allow_zero=True)
        if self.release_shape not in ("parabolic", "block"):
            raise ConfigError(
                f"must be 'parabolic' or 'block', got {self.release_shape!r}",
                parameter="release_shape",
            )
        if not callable(self.friction):
            raise ConfigError(
                "must be a FrictionLaw or a callable S(h, u, params)", parameter="friction"
            )
        for name in ("initial_depth", "initial_velocity"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ConfigError("must be a callable of the arc length", parameter=name)
        if self.initial_velocity is not None and self.initial_depth is None:
            raise ConfigError("needs initial_depth", parameter="initial_velocity")
        if not isinstance(self.moments, (int, np.integer)) or not 0 <= self.moments <= 4:
            raise ConfigError(
                f"must be an integer in 0..4, got {self.moments!r}", parameter="moments"
            )
        if not isinstance(self.n_cells, (int, np.integer)) or self.n_cells < 8:
            raise ConfigError(f"must be an integer >= 8, got {self.n_cells!r}", parameter="n_cells")
        if not (isinstance(self.cfl, (int, float)) and 0 < self.cfl <= 0.5):
            raise ConfigError(f"must be in (0, 0.5], got {self.cfl}", parameter="cfl")
        if self.limiter not in _LIMITERS:
            raise ConfigError(
                f"must be one of {sorted(_LIMITERS)}, got {self.limiter!r}", parameter="limiter"
            )
        if len(self.boundary) != 2 or any(b not in _BOUNDARIES for b in self.boundary):
            raise ConfigError(
                f"must be two of {sorted(_BOUNDARIES)}, got {self.boundary!r}", parameter="boundary"
            )
        for name in ("h_dry", "front_threshold", "settle_time"):
            val = getattr(self, name)
            if val is not None and not (np.isfinite(val) and val > 0):
                raise ConfigError(f"must be > 0 or None, got {val!r}", parameter=name)
        gauges = self.gauges if isinstance(self.gauges, (tuple, list)) else (self.gauges,)
        if any(
            isinstance(v, bool) or not isinstance(v, number) or not np.isfinite(v) for v in gauges
        ):
            raise ConfigError(
                f"must be finite arc lengths, got {self.gauges!r}", parameter="gauges"
            )
        object.__setattr__(self, "gauges", tuple(float(v) for v in gauges))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, prefix: str = "") -> ShallowFlowConfig:
        """A configuration from plain data (e.g. a TOML table).

        ``friction`` may be a table of :class:`FrictionLaw` coefficients (``mu``, ``xi``,
        ``nu``, ``tau``), ``profile`` a table with arrays ``x`` and ``z``, ``gauges`` and
        ``boundary`` lists. Unknown keys raise :class:`ConfigError` naming them (with
        ``prefix``, e.g. ``"simulator."``).

        >>> cfg = ShallowFlowConfig.from_mapping({"friction": {"mu": 0.4}, "gauges": [50]})
        >>> cfg.friction.mu, cfg.gauges
        (0.4, (50.0,))
        """
        names = {f.name for f in fields(cls)} - {"initial_depth", "initial_velocity"}
        kwargs: dict[str, Any] = {}
        for key, val in values.items():
            if key not in names:
                raise ConfigError("unknown key", parameter=prefix + str(key))
            if key == "friction" and isinstance(val, Mapping):
                allowed = {"mu", "xi", "nu", "tau"}
                for sub in val:
                    if sub not in allowed:
                        raise ConfigError(
                            f"unknown friction term (use {sorted(allowed)})",
                            parameter=f"{prefix}friction.{sub}",
                        )
                try:
                    val = FrictionLaw(**{k: float(v) for k, v in val.items()})
                except (TypeError, ValueError) as err:
                    if isinstance(err, ConfigError):
                        raise ConfigError(
                            err.message, parameter=f"{prefix}friction.{err.parameter}"
                        ) from None
                    raise ConfigError(str(err), parameter=prefix + "friction") from None
            elif key == "profile" and isinstance(val, Mapping):
                if set(val) != {"x", "z"}:
                    raise ConfigError("needs exactly the arrays x and z", parameter=prefix + key)
                val = (np.asarray(val["x"], dtype=float), np.asarray(val["z"], dtype=float))
            elif key in ("gauges", "boundary") and isinstance(val, (list, tuple)):
                val = tuple(val)
            kwargs[key] = val
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(err.message, parameter=prefix + (err.parameter or "")) from None

    def slope(self) -> Slope:
        """The bed of this configuration."""
        if self.profile is not None:
            try:
                x, z = self.profile
            except (TypeError, ValueError):
                raise ConfigError("must be a pair (x, z) of arrays", parameter="profile") from None
            return Slope.from_profile(np.asarray(x), np.asarray(z))
        return Slope.chute(
            self.chute_angle,
            self.chute_length,
            self.runout_angle,
            self.runout_length,
            transition=self.transition,
        )


@dataclass(frozen=True, eq=False)
class ShallowFlowResult:
    """Outputs of one simulation. Arrays over time have one row per recorded output.

    Attributes:
        times: Output times (s): 0, output_interval, ..., and the stop time.
        front: Front position (arc length, m): where the depth falls below the front
            threshold beyond the furthest cell above it (linear interpolation between
            cell centres). The deposit's edge is resolved to about a cell: as a function
            of the friction parameters the final front is continuous for fronts that stop
            briskly (Coulomb) but a fine staircase with steps up to about one cell where a
            slow (turbulent-damped) front creeps cell by cell before it stops; calibrations
            should allow for about dx of discretisation noise (a GP nugget) or refine.
        front_x: The same front as a horizontal position (m).
        mass: Volume per unit width (m^3/m) at each output.
        max_speed: Largest wet-cell speed at each output (m/s).
        gauges: Gauge positions (arc length, m).
        gauge_h, gauge_u: Depth and mean velocity at the gauges, shape (times, gauges).
        gauge_alpha: Moment coefficients at the gauges, shape (times, gauges, N).
        s, x, z: Cell centres: arc length, horizontal position and bed height (m).
        h, u: Final depth (the deposit once stopped) and mean velocity per cell.
        alpha: Final moment coefficients per cell, shape (N, cells).
        h_history: Depth profile at every output (times, cells) if ``store_fields``.
        stop_reason: ``"at_rest"``, ``"front_settled"`` or ``"t_max"``.
        reached_end: Whether the front reached the last cell at some output.
        n_steps: Time steps taken. wall_time: Seconds spent. config: The configuration.

    Example:
        >>> res = simulate(n_cells=100, t_max=4.0, output_interval=2.0)
        >>> res.times.tolist(), res.front.shape
        ([0.0, 2.0, 4.0], (3,))
        >>> bool(abs(res.mass[-1] - res.mass[0]) < 1e-9 * res.mass[0])
        True
    """

    times: np.ndarray
    front: np.ndarray
    front_x: np.ndarray
    mass: np.ndarray
    max_speed: np.ndarray
    gauges: np.ndarray
    gauge_h: np.ndarray
    gauge_u: np.ndarray
    gauge_alpha: np.ndarray
    s: np.ndarray
    x: np.ndarray
    z: np.ndarray
    h: np.ndarray
    u: np.ndarray
    alpha: np.ndarray
    h_history: np.ndarray | None
    stop_reason: str
    reached_end: bool
    n_steps: int
    wall_time: float
    config: ShallowFlowConfig

    @property
    def stopped(self) -> bool:
        """Whether the run ended by a stop rule rather than at ``t_max``."""
        return self.stop_reason != "t_max"

    @property
    def runout(self) -> float:
        """Final front position (arc length, m)."""
        return float(self.front[-1])

    @property
    def runout_x(self) -> float:
        """Final front position as a horizontal distance from the top of the bed (m)."""
        return float(self.front_x[-1])

    @property
    def deposit(self) -> np.ndarray:
        """Final depth profile (m) on the cell centres :attr:`s`."""
        return self.h

    def front_at(self, t: np.ndarray | float) -> np.ndarray:
        """Front position (arc length) at times ``t`` (linear interpolation; the final
        value after the stop)."""
        return np.interp(t, self.times, self.front)

    def to_tables(self) -> dict[str, pd.DataFrame]:
        """The outputs as tables (for ``ariasim.io.write_table`` or ``run_chunks``).

        ``front``: time, front, front_x, mass, max_speed per output; ``deposit``: s, x, z,
        h, u (and alpha_j) per cell at the end; ``gauges``: long format with time, gauge
        (arc length), h, u (and alpha_j).
        """
        front = pd.DataFrame(
            {
                "time": self.times,
                "front": self.front,
                "front_x": self.front_x,
                "mass": self.mass,
                "max_speed": self.max_speed,
            }
        )
        deposit = pd.DataFrame({"s": self.s, "x": self.x, "z": self.z, "h": self.h, "u": self.u})
        for j in range(self.alpha.shape[0]):
            deposit[f"alpha_{j + 1}"] = self.alpha[j]
        nt, ng = self.gauge_h.shape
        gauges = pd.DataFrame(
            {
                "time": np.repeat(self.times, ng),
                "gauge": np.tile(self.gauges, nt),
                "h": self.gauge_h.ravel(),
                "u": self.gauge_u.ravel(),
            }
        )
        for j in range(self.gauge_alpha.shape[2]):
            gauges[f"alpha_{j + 1}"] = self.gauge_alpha[:, :, j].ravel()
        return {"front": front, "deposit": deposit, "gauges": gauges}

    def summary(self) -> dict[str, float | bool | int | str]:
        """Scalar observables: run-out, stop time, peak speed, mass drift, steps."""
        return {
            "runout": self.runout,
            "runout_x": self.runout_x,
            "t_end": float(self.times[-1]),
            "peak_speed": float(self.max_speed.max()),
            "relative_mass_change": float((self.mass[-1] - self.mass[0]) / self.mass[0]),
            "deposit_max_depth": float(self.h.max()),
            "stop_reason": self.stop_reason,
            "reached_end": self.reached_end,
            "n_steps": self.n_steps,
        }


def _cell_average(func: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Cell averages of ``func`` by 3-point Gauss quadrature on every cell."""
    xg = np.array([-np.sqrt(0.6), 0.0, np.sqrt(0.6)])
    wg = np.array([5.0, 8.0, 5.0]) / 18.0
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    vals = [np.asarray(func(mid + half * q), dtype=float) * w for q, w in zip(xg, wg, strict=True)]
    return np.sum(vals, axis=0)


def _release_depth(cfg: ShallowFlowConfig, edges: np.ndarray) -> np.ndarray:
    """Exact cell averages of the block or parabolic release (its volume is exact)."""
    a, length, vol = cfg.release_start, cfg.release_length, cfg.release_volume

    def primitive(s: np.ndarray) -> np.ndarray:  # integral of h from a to s
        w = np.clip((s - a) / length, 0.0, 1.0)
        if cfg.release_shape == "block":
            return vol * w
        return vol * (3.0 * w**2 - 2.0 * w**3)  # h = 6 V w (1 - w) / L

    return np.diff(primitive(edges)) / np.diff(edges)


def simulate(config: ShallowFlowConfig | None = None, **overrides: Any) -> ShallowFlowResult:
    """Run one shallow-flow simulation.

    Arguments:
        config: A :class:`ShallowFlowConfig` (default parameters if None).
        **overrides: Fields of the configuration to replace, e.g. ``moments=1``.

    Returns:
        A :class:`ShallowFlowResult`.

    Raises:
        ConfigError: On an invalid or unknown parameter (the message names it).

    >>> res = simulate(n_cells=100, t_max=60.0)
    >>> res.stopped, bool(100.0 < res.runout < 250.0)
    (True, True)
    """
    cfg = config if config is not None else ShallowFlowConfig()
    if overrides:
        names = {f.name for f in fields(ShallowFlowConfig)}
        for key in overrides:
            if key not in names:
                raise ConfigError("unknown parameter", parameter=key)
        cfg = replace(cfg, **overrides)
    start = time.perf_counter()
    slope = cfg.slope()
    n = int(cfg.n_cells)
    dx = slope.length / n
    edges = np.linspace(0.0, slope.length, n + 1)
    s = 0.5 * (edges[1:] + edges[:-1])
    phi_c, phi_f = slope.angle(s), slope.angle(edges)
    cos_c, sin_c, cos_f = np.cos(phi_c), np.sin(phi_c), np.cos(phi_f)
    x_c, z_c = slope.position(s)

    N = int(cfg.moments)
    tensors = MomentTensors.build(N)
    Q = np.zeros((N + 2, n))
    if cfg.initial_depth is not None:
        h0 = _cell_average(cfg.initial_depth, edges)
        if np.any(~np.isfinite(h0)) or np.any(h0 < 0):
            raise ConfigError("must give finite depths >= 0", parameter="initial_depth")
        u0 = (
            _cell_average(cfg.initial_velocity, edges)
            if cfg.initial_velocity is not None
            else np.zeros(n)
        )
    else:
        if cfg.release_start + cfg.release_length > slope.length:
            raise ConfigError("the release does not fit on the bed", parameter="release_start")
        h0 = _release_depth(cfg, edges)
        u0 = np.full(n, float(cfg.release_velocity))
    hmax0 = float(h0.max())
    if hmax0 <= 0:
        raise ConfigError("the initial mass is empty", parameter="release_volume")
    h_dry = cfg.h_dry if cfg.h_dry is not None else 1e-4 * hmax0
    thr = cfg.front_threshold if cfg.front_threshold is not None else 1e-2 * hmax0
    Q[0] = h0
    Q[1] = np.where(h0 > h_dry, h0 * u0, 0.0)

    law = cfg.friction
    builtin = isinstance(law, FrictionLaw)
    coeffs = law.coefficients() if isinstance(law, FrictionLaw) else np.zeros(4)
    params = {"g": cfg.g, "cos_phi": cos_c}
    limiter = _LIMITERS[cfg.limiter]
    bcl, bcr = (_BOUNDARIES[b] for b in cfg.boundary)
    k_earth, g, cfl = float(cfg.earth_pressure), float(cfg.g), float(cfg.cfl)
    A, B, C = tensors.A, tensors.B, tensors.C
    nu_int = float(cfg.moment_viscosity)

    def friction_values(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if builtin:
            s0, s1, _ = kernels.builtin_friction(state, coeffs, g, cos_c, h_dry)
            return s0, s1
        h = state[0]
        ub = np.where(h > h_dry, np.abs(state[1:].sum(axis=0)) / np.maximum(h, h_dry), 0.0)
        s0 = np.asarray(law(h, np.zeros_like(h), params), dtype=float)
        s1 = np.asarray(law(h, ub, params), dtype=float)
        return s0, s1

    def yield_values(state: np.ndarray) -> np.ndarray:
        if builtin:
            return kernels.builtin_friction(state, coeffs, g, cos_c, h_dry)[0]
        h = state[0]
        return np.asarray(law(h, np.zeros_like(h), params), dtype=float)

    gauges = np.asarray(cfg.gauges, dtype=float)
    if np.any((gauges < 0) | (gauges > slope.length)):
        raise ConfigError(f"must lie on the bed, 0..{slope.length:g} m of arc", parameter="gauges")
    gidx = np.clip(np.floor(gauges / dx).astype(int), 0, n - 1)
    rec: dict[str, list[Any]] = {
        k: [] for k in ("t", "front", "mass", "speed", "gh", "gu", "ga", "hist")
    }
    reached_end = False

    def record(t: float) -> None:
        nonlocal reached_end
        h = Q[0]
        V = kernels.wet_velocity(Q, h_dry)
        above = np.nonzero(h > thr)[0]
        if above.size == 0:
            front = 0.0
        else:
            i = int(above[-1])
            if i == n - 1:
                front = float(edges[-1])
                reached_end = True
            else:
                front = s[i] + dx * (h[i] - thr) / (h[i] - h[i + 1])
        rec["t"].append(t)
        rec["front"].append(front)
        rec["mass"].append(float(np.sum(h) * dx))
        rec["speed"].append(kernels.max_speed(Q, h_dry))
        rec["gh"].append(h[gidx].copy())
        rec["gu"].append(V[0, gidx].copy())
        rec["ga"].append(V[1:, gidx].T.copy())
        if cfg.store_fields:
            rec["hist"].append(h.copy())

    Q1 = np.empty_like(Q)
    Q2 = np.empty_like(Q)
    t, n_steps, reason = 0.0, 0, "t_max"
    k_out = 1
    t_out = cfg.output_interval
    record(0.0)
    while t < cfg.t_max:
        target = min(t_out, cfg.t_max)
        cap = target - t
        dt = kernels.explicit_stage(
            Q,
            -1.0,
            cfl,
            cap,
            dx,
            g,
            k_earth,
            cos_c,
            sin_c,
            cos_f,
            yield_values(Q),
            h_dry,
            bcl,
            bcr,
            limiter,
            A,
            B,
            Q1,
        )
        s0, s1 = friction_values(Q1)
        kernels.apply_friction(Q1, dt, s0, s1, h_dry, C, nu_int)
        kernels.explicit_stage(
            Q1,
            dt,
            cfl,
            cap,
            dx,
            g,
            k_earth,
            cos_c,
            sin_c,
            cos_f,
            yield_values(Q1),
            h_dry,
            bcl,
            bcr,
            limiter,
            A,
            B,
            Q2,
        )
        s0, s1 = friction_values(Q2)
        kernels.apply_friction(Q2, dt, s0, s1, h_dry, C, nu_int)
        Q[:] = 0.5 * (Q + Q2)
        kernels.apply_friction(Q, 0.0, s0 * 0.0, s0 * 0.0, h_dry, C, 0.0)  # dry cleanup
        n_steps += 1
        if dt >= cap:
            t = target
        else:
            t += dt
        if not np.all(np.isfinite(Q)):
            raise FloatingPointError(f"the solution became non-finite at t = {t:.4g} s")
        done = t >= cfg.t_min and kernels.max_speed(Q, thr) < cfg.u_stop
        if t >= t_out or done or t >= cfg.t_max:
            record(t)
            if t >= t_out:
                k_out += 1
                t_out = k_out * cfg.output_interval
            if done:
                reason = "at_rest"
            elif cfg.settle_time is not None and t >= max(cfg.t_min, cfg.settle_time):
                tt = np.asarray(rec["t"])
                ff = np.asarray(rec["front"])[tt >= t - cfg.settle_time - 1e-9]
                if ff.max() - ff.min() < 0.05 * dx:
                    reason = "front_settled"
        if reason != "t_max":
            break

    times = np.asarray(rec["t"])
    front = np.asarray(rec["front"])
    V = kernels.wet_velocity(Q, h_dry)
    return ShallowFlowResult(
        times=times,
        front=front,
        front_x=slope.position(front)[0],
        mass=np.asarray(rec["mass"]),
        max_speed=np.asarray(rec["speed"]),
        gauges=gauges,
        gauge_h=np.asarray(rec["gh"]).reshape(len(times), gauges.size),
        gauge_u=np.asarray(rec["gu"]).reshape(len(times), gauges.size),
        gauge_alpha=np.asarray(rec["ga"]).reshape(len(times), gauges.size, N),
        s=s,
        x=x_c,
        z=z_c,
        h=Q[0].copy(),
        u=V[0].copy(),
        alpha=V[1:].copy(),
        h_history=np.asarray(rec["hist"]) if cfg.store_fields else None,
        stop_reason=reason,
        reached_end=reached_end,
        n_steps=n_steps,
        wall_time=time.perf_counter() - start,
        config=cfg,
    )
