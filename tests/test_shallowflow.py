"""Tests of the shallow-flow simulator (Savage-Hutter and shallow-moment models)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from ariasim.errors import ConfigError
from ariasim.simulators.shallowflow import (
    FrictionLaw,
    MomentTensors,
    ShallowFlowConfig,
    apply_friction,
    coulomb,
    simulate,
    turbulent,
    viscous,
    voellmy,
)

G = 9.81
FLAT = dict(
    chute_angle=0.0, runout_angle=0.0, chute_length=50.0, runout_length=50.0, transition=0.0
)


def test_mass_is_conserved_to_round_off_with_walls() -> None:
    # the flow reaches the lower wall (short run-out zone) and runs up against it
    for moments in (0, 1, 2):
        res = simulate(
            runout_length=30.0,
            friction=voellmy(0.1, 1000.0),
            t_max=25.0,
            n_cells=200,
            moments=moments,
        )
        assert res.reached_end
        rel = np.abs(res.mass - res.mass[0]) / res.mass[0]
        assert rel.max() < 1e-13, (moments, rel.max())
        assert res.h.min() >= 0.0


def test_lake_at_rest_on_a_flat_bed_stays_at_rest() -> None:
    for moments in (0, 1):
        res = simulate(
            **FLAT,
            initial_depth=lambda s: np.ones_like(s),
            friction=FrictionLaw(),
            t_min=5.0,
            t_max=5.0,
            n_cells=100,
            moments=moments,
        )
        assert np.abs(res.h - 1.0).max() < 1e-14
        assert np.abs(res.u).max() == 0.0


def _pile(s: np.ndarray) -> np.ndarray:
    # parabolic pile, 0.5 m high and 20 m long: free-surface slope at most 0.1
    return np.clip(0.5 * (1.0 - ((s - 50.0) / 10.0) ** 2), 0.0, None)


def test_a_pile_held_by_coulomb_friction_stays_at_rest() -> None:
    slope = dict(chute_angle=20.0, runout_angle=20.0, chute_length=50.0, runout_length=50.0)
    # tan(20) + k max|dh/ds| = 0.46 < mu = tan(30) = 0.58: the pile is stable everywhere
    res = simulate(
        **slope,
        initial_depth=_pile,
        friction=coulomb(np.tan(np.radians(30.0))),
        t_min=5.0,
        t_max=5.0,
        n_cells=200,
        store_fields=True,
    )
    assert res.h_history is not None
    np.testing.assert_array_equal(res.h, res.h_history[0])
    assert np.abs(res.u).max() == 0.0
    # the same pile with a friction angle below the slope angle slides
    res = simulate(
        **slope,
        initial_depth=_pile,
        friction=coulomb(np.tan(np.radians(15.0))),
        t_min=5.0,
        t_max=5.0,
        n_cells=200,
    )
    assert res.front[-1] > res.front[0] + 10.0


def _bump(s: np.ndarray) -> np.ndarray:
    return 1.0 + 0.2 * np.exp(-(((s - 50.0) / 8.0) ** 2))


@pytest.mark.parametrize("limiter", ["vanleer", "minmod"])
def test_second_order_convergence_on_a_smooth_wave(limiter: str) -> None:
    # frictionless smooth waves before any shock forms; self-convergence in L1 between
    # successive grids (the coarse error of a 2nd-order scheme falls 4x per refinement)
    depth = {}
    for n in (100, 200, 400, 800):
        res = simulate(
            **FLAT,
            initial_depth=_bump,
            friction=FrictionLaw(),
            t_max=2.0,
            output_interval=2.0,
            n_cells=n,
            limiter=limiter,
        )
        depth[n] = res.h
    errs = [
        np.mean(np.abs(depth[n] - depth[2 * n].reshape(-1, 2).mean(axis=1)))
        for n in (100, 200, 400)
    ]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 1.75), orders


def test_friction_never_reverses_the_momentum() -> None:
    rng = np.random.default_rng(3)
    h = rng.uniform(1e-3, 3.0, 2000)
    hu = rng.normal(0.0, 5.0, 2000)
    laws = [
        coulomb(0.5),
        voellmy(0.3, 200.0),
        turbulent(100.0),
        viscous(2.0),
        FrictionLaw(mu=0.2, xi=50.0, nu=1.0, tau=0.5),
        lambda h, u, p: 0.4 * p["g"] * h * p["cos_phi"] + 3.0 * u,
    ]
    for law in laws:
        for dt in (1e-3, 0.1, 10.0, 1e4):
            new = apply_friction(h, hu, dt, law)
            assert np.all((np.sign(new) == np.sign(hu)) | (new == 0.0))
            assert np.all(np.abs(new) <= np.abs(hu))


def test_sliding_block_on_a_flat_bed_stops_at_the_coulomb_distance() -> None:
    # a thin block launched at u0 on a horizontal bed with Coulomb friction mu: while all
    # of it moves, its centre of mass decelerates at exactly mu g, and parts that stop early
    # only slow it less, so the travel is >= u0^2 / (2 mu g); energy (kinetic + the pressure
    # energy k g H^2 L / 2) bounds it from above by u0^2 / (2 mu g) + k H / (2 mu).
    u0, mu, thick = 5.0, 0.3, 0.05
    cells = np.arange(0.125, 100.0, 0.25)
    res = simulate(
        **FLAT,
        release_shape="block",
        release_length=10.0,
        release_volume=10.0 * thick,
        release_start=20.0,
        release_velocity=u0,
        friction=coulomb(mu),
        gauges=tuple(cells),
        output_interval=0.1,
    )
    assert res.stop_reason == "at_rest"
    assert res.gauge_u.min() >= 0.0  # the velocity never reverses
    travel = np.sum(res.h * res.s) / np.sum(res.h) - 25.0
    exact = u0**2 / (2.0 * mu * G)
    assert exact - 1e-9 <= travel <= exact + thick / (2.0 * mu), (travel, exact)


def test_moment_model_with_a_stiff_profile_slides_like_the_plain_block() -> None:
    # a large internal viscosity keeps the profile uniform (alpha -> 0); the coupled
    # implicit friction + viscosity step must then give the plain model's Coulomb stop
    # (a split step would let the relaxed profile restart the stuck base and creep)
    u0, mu, thick = 5.0, 0.3, 0.05
    exact = u0**2 / (2.0 * mu * G)
    for moments in (1, 2):
        res = simulate(
            **FLAT,
            release_shape="block",
            release_length=10.0,
            release_volume=10.0 * thick,
            release_start=20.0,
            release_velocity=u0,
            friction=coulomb(mu),
            moments=moments,
            moment_viscosity=100.0,
        )
        assert res.stop_reason == "at_rest"
        travel = np.sum(res.h * res.s) / np.sum(res.h) - 25.0
        assert exact - 1e-9 <= travel <= exact + thick / (2.0 * mu), (moments, travel)


def _energy_line_stop(slope, s0: float, mu: float) -> float:
    """Arc length where a point mass released at rest at ``s0`` stops (z0 - z = mu dx)."""
    x0, z0 = slope.position(s0)

    def excess(s: float) -> float:
        x, z = slope.position(s)
        return float((z0 - z) - mu * (x - x0))

    return brentq(excess, s0 + 1e-6, slope.length)


def test_coulomb_runout_matches_the_point_mass_energy_line() -> None:
    # Energy balance with Coulomb friction: the friction work per unit mass is mu g times the
    # horizontal distance travelled on any profile, so the horizontal centre of mass of the
    # deposit (all on the flat run-out) obeys z_c0 - z_r = mu (x_c - x_c0) + E_int / (g M)
    # with E_int >= 0 the energy dissipated inside the layer (collisions of the faster rear
    # with the front in the bend, numerical dissipation). The point-mass run-out from the
    # release's centre of mass is thus an upper bound, up to the initial pressure energy
    # k g cos(phi1) H / 2 per unit mass (k H cos(phi1) / (2 mu) of run-out) and half a cell.
    # Independent particles would stop spread over
    # Delta = L cos(phi1) (tan(phi1) / mu - 1) (the rear, released higher, furthest); the
    # collisions only take the rear's excess energy over the front's, so the centre of mass
    # stops no shorter than the release's front particle would: deficit <= Delta / 2. In
    # the thin-layer limit of a small release the deficit vanishes.
    mu, phi1 = np.tan(np.radians(25.0)), np.radians(35.0)
    deficits = []
    for length, thick in ((20.0, 1.0), (10.0, 0.1)):
        cfg = ShallowFlowConfig(
            friction=coulomb(mu),
            release_shape="block",
            release_length=length,
            release_volume=length * thick,
            release_start=10.0,
            n_cells=400,
            t_max=60.0,
        )
        res = simulate(cfg)
        assert res.stop_reason == "at_rest"
        slope = cfg.slope()
        x_stop = slope.position(_energy_line_stop(slope, 10.0 + length / 2, mu))[0]
        flat = res.s > 110.0
        # all but films thinner than the dry threshold has left the chute for the flat part
        assert np.sum(res.h[~flat]) < 1e-3 * np.sum(res.h)
        x_com = np.sum(res.h[flat] * res.x[flat]) / np.sum(res.h[flat])
        dx = slope.length / cfg.n_cells
        spread = length * np.cos(phi1) * (np.tan(phi1) / mu - 1.0)
        deficit = x_stop - x_com
        assert -(thick * np.cos(phi1) / (2 * mu) + 0.5 * dx) <= deficit <= spread / 2.0, (
            length,
            deficit,
            spread,
        )
        deficits.append(deficit / spread)
    # much closer to the point mass for the smaller, thinner release (0.32 -> 0.10 Delta)
    assert deficits[1] < 0.5 * deficits[0], deficits


def test_moment_model_reduces_to_the_plain_model() -> None:
    # N = 0 is the plain Savage-Hutter model
    plain = simulate(n_cells=100, t_max=10.0)
    zero = simulate(n_cells=100, t_max=10.0, moments=0)
    np.testing.assert_array_equal(plain.h, zero.h)
    # without basal friction a profile that starts uniform (alpha = 0) stays uniform, so
    # the N = 1 and N = 2 systems (their own fluxes, non-conservative terms, friction and
    # viscosity steps) must give the plain dam break exactly
    dam = dict(
        **FLAT,
        initial_depth=lambda s: np.where(s < 40.0, 2.0, 0.5),
        friction=FrictionLaw(),
        t_max=3.0,
        n_cells=200,
    )
    ref = simulate(**dam)
    for moments in (1, 2):
        res = simulate(**dam, moments=moments)
        np.testing.assert_array_equal(res.h, ref.h)
        np.testing.assert_array_equal(res.u, ref.u)
        assert np.abs(res.alpha).max() == 0.0


def test_moment_model_with_basal_friction_shears_the_profile() -> None:
    res = simulate(moments=1, gauges=(60.0,), t_max=8.0, n_cells=200)
    wet = res.gauge_h[:, 0] > 0.05
    # the bed slows the bottom: u_b = u_m + alpha_1 < u_m, but the base still slides forward
    assert np.all(res.gauge_alpha[wet, 0, 0] < 0.0)
    assert np.all(res.gauge_u[wet, 0] + res.gauge_alpha[wet, 0, 0] >= 0.0)
    tens = MomentTensors.build(2)  # Kowalski & Torrilhon (2019), N = 2 coefficients
    assert tens.A[0, 0, 1] == pytest.approx(0.4) and tens.A[1, 0, 0] == pytest.approx(2 / 3)
    assert tens.B[1, 0, 0] == pytest.approx(-1.0) and tens.B[0, 1, 0] == pytest.approx(-0.2)


def test_moment_models_reach_the_exact_navier_slip_profile() -> None:
    # steady uniform Newtonian flow (viscosity nu) down an incline with Navier slip
    # tau_b = (nu / lam) u_b: u(zeta) = u_b + G (zeta - zeta^2 / 2), G = g sin(phi) h^2 / nu,
    # u_b = g h sin(phi) lam / nu, i.e. u_m = u_b + G / 3, alpha_1 = -G / 4,
    # alpha_2 = -G / 12. N = 2 holds this parabola exactly; N = 1 gets alpha_1 and, with its
    # linear profile, u_m = u_b + G / 4 (Kowalski & Torrilhon 2019, steady states).
    nu, lam, h = 0.5, 0.1, 1.0
    phi = np.radians(10.0)
    big_g = G * np.sin(phi) * h * h / nu
    u_b = G * h * np.sin(phi) * lam / nu
    expect = {
        0: (u_b, []),
        1: (u_b + big_g / 4, [-big_g / 4]),
        2: (u_b + big_g / 3, [-big_g / 4, -big_g / 12]),
    }
    for moments, (u_m, alpha) in expect.items():
        res = simulate(
            chute_angle=10.0,
            runout_angle=10.0,
            chute_length=50.0,
            runout_length=50.0,
            transition=0.0,
            boundary=("open", "open"),
            initial_depth=lambda s: np.full_like(s, h),
            initial_velocity=lambda s: np.ones_like(s),
            friction=lambda hh, u, p: (nu / lam) * u,
            moments=moments,
            moment_viscosity=nu,
            settle_time=None,
            t_max=40.0,
            n_cells=50,
            gauges=(50.0,),
        )
        assert res.gauge_u[-1, 0] == pytest.approx(u_m, rel=1e-6)
        np.testing.assert_allclose(res.gauge_alpha[-1, 0], alpha, rtol=1e-6)


def test_callable_friction_matches_the_builtin_law() -> None:
    law = voellmy(0.3, 400.0)
    fast = simulate(n_cells=100, t_max=20.0, friction=law)
    slow = simulate(n_cells=100, t_max=20.0, friction=lambda h, u, p: law(h, u, p))
    np.testing.assert_allclose(slow.h, fast.h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(slow.front, fast.front, rtol=0, atol=1e-9)


def test_user_profile_matches_the_parametrised_chute() -> None:
    cfg = ShallowFlowConfig(n_cells=200, t_max=60.0, friction=coulomb(0.5))
    slope = cfg.slope()
    ref = simulate(cfg)
    res = simulate(cfg, profile=(slope.x[::50], slope.z[::50]))
    assert res.stop_reason == ref.stop_reason == "at_rest"
    assert abs(res.runout_x - ref.runout_x) < 2.0 * slope.length / 200
    assert np.all(np.diff(ref.front) >= -1e-9)  # a Coulomb front never retreats here


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"cfl": 0.9}, "cfl"),
        ({"n_cells": 3}, "n_cells"),
        ({"limiter": "superbee"}, "limiter"),
        ({"moments": 7}, "moments"),
        ({"release_shape": "cube"}, "release_shape"),
        ({"release_volume": -1.0}, "release_volume"),
        ({"friction": "voellmy"}, "friction"),
        ({"chute_angle": 95.0}, "chute_angle"),
        ({"runout_length": 0.0}, "runout_length"),
        ({"boundary": ("wall", "sink")}, "boundary"),
        ({"release_start": 300.0}, "release_start"),
        ({"profile": ([0.0, 2.0, 1.0], [3.0, 2.0, 1.0])}, "profile"),
        ({"timestep": 0.1}, "timestep"),
        ({"gauges": (10.0, 400.0)}, "gauges"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}'"):
        simulate(**kwargs)


def test_bad_friction_coefficients_are_named() -> None:
    with pytest.raises(ConfigError, match="'mu'"):
        coulomb(-0.1)
    with pytest.raises(ConfigError, match="'xi'"):
        voellmy(0.2, 0.0)


@pytest.mark.parametrize(
    ("table", "name"),
    [
        ({"friction": {"mu": -0.2}}, "sim.friction.mu"),
        ({"friction": {"k": 1.0}}, "sim.friction.k"),
        ({"chute_angel": 30.0}, "sim.chute_angel"),
        ({"chute_angle": "steep"}, "sim.chute_angle"),
        ({"gauges": ["top"]}, "sim.gauges"),
        ({"profile": {"x": [0.0, 1.0]}}, "sim.profile"),
    ],
)
def test_config_tables_name_the_bad_key(table: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=f"'{name}'"):
        ShallowFlowConfig.from_mapping(table, prefix="sim.")


def test_config_table_builds_a_runnable_configuration() -> None:
    cfg = ShallowFlowConfig.from_mapping(
        {
            "friction": {"mu": 0.5},
            "profile": {"x": [0.0, 40.0, 100.0], "z": [30.0, 0.0, 0.0]},
            "gauges": [45],
            "boundary": ["wall", "open"],
            "n_cells": 100,
            "release_start": 2.0,
        }
    )
    res = simulate(cfg)
    assert res.gauges.tolist() == [45.0] and res.gauge_h.shape == (res.times.size, 1)
    assert res.stop_reason == "at_rest" and 40.0 < res.runout_x < 100.0


def test_result_tables_hold_every_output() -> None:
    res = simulate(n_cells=100, t_max=10.0, moments=1, gauges=(20.0, 60.0))
    tables = res.to_tables()
    assert len(tables["front"]) == res.times.size
    assert list(tables["deposit"].columns) == ["s", "x", "z", "h", "u", "alpha_1"]
    assert len(tables["gauges"]) == 2 * res.times.size
    np.testing.assert_array_equal(tables["gauges"]["h"].to_numpy()[1::2], res.gauge_h[:, 1])
