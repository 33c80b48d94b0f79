"""The non-Gaussian response shape (issue 14 item 2): fit, sampling, file format, checks."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from ariasim.apps.collider.fastsim import FastSimulator
from ariasim.apps.collider.model import ObjectResponse, Region, ResponseModel
from ariasim.apps.collider.shape import (
    CHECK_LEVELS,
    EfficiencyGrid,
    ResponseShape,
    fit_efficiency,
    fit_shape,
    quantile_summary,
    quantile_table,
    tail_fractions,
)
from ariasim.errors import InputError
from ariasim.surrogates import Formula

TAIL_FRACTION, TAIL_SCALE = 0.15, 0.08


def _draw(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """log(reco/truth) = sigma(t) * z: z a N(0, 1) core, 15 % of it shifted down by an
    exponential of mean 8 (core units): every quantile is linear in t = log E."""
    sigma = 0.01 + 0.004 * t
    z = rng.standard_normal(t.size)
    tail = rng.random(t.size) < TAIL_FRACTION
    z[tail] -= rng.exponential(TAIL_SCALE / 0.01, tail.sum())
    return sigma * z


def _photonlike(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 5.0, n)  # log E, E in 1..150 GeV
    a = rng.uniform(0.0, 2.5, n)
    return np.exp(t), a, np.exp(_draw(rng, t))


@pytest.fixture(scope="module")
def fitted() -> ResponseShape:
    x, a, r = _photonlike(30_000, 1)
    return fit_shape(x, a, r, x_name="energy", n_t_knots=4, eta_knots=(0.0, 2.5))


def test_quantiles_of_a_skewed_response_are_recovered(fitted: ResponseShape) -> None:
    """At three energies the fitted 1..99 % quantiles match the true ones (from 400k draws
    at that energy) within 4 standard errors of a quantile estimated from the points that
    inform one knot (30k over 3 t-segments: about 10k; the fit pools them, so this bounds
    its error from above)."""
    rng = np.random.default_rng(7)
    n_knot = 30_000 / 3
    for t0 in (0.8, 2.5, 4.2):
        truth = np.exp(_draw(rng, np.full(400_000, t0)))
        got = fitted.quantiles(np.array([math.exp(t0)]), np.array([1.2]))[0]
        for p, q in zip(CHECK_LEVELS, got, strict=True):
            want = np.quantile(truth, p)
            lo, hi = np.quantile(truth, [p - 0.001, p + 0.001])  # local density
            dens = 0.002 / max(hi - lo, 1e-12)
            se = math.sqrt(p * (1 - p) / n_knot) / dens
            assert abs(q - want) < 4 * se, (t0, p, q, want, se)
    # a single Gaussian with the core width is far off in the low tail: the test can fail
    core = 0.01 + 0.004 * 2.5
    assert (
        abs(
            math.exp(-2.326 * core)
            - fitted.quantiles(np.array([math.exp(2.5)]), np.array([1.0]), (0.01,))[0, 0]
        )
        > 0.05
    )


def test_sampling_matches_the_quantiles_and_is_reproducible(fitted: ResponseShape) -> None:
    n = 200_000
    x, a = np.full(n, 20.0), np.full(n, 0.7)
    r1 = fitted.sample(x, a, np.random.default_rng(3))
    r2 = fitted.sample(x, a, np.random.default_rng(3))
    assert r1.tobytes() == r2.tobytes()
    assert r1.tobytes() != fitted.sample(x, a, np.random.default_rng(4)).tobytes()
    q = fitted.quantiles(x[:1], a[:1], (0.001, 0.01, 0.5, 0.99, 0.999))[0]
    for p, v in zip((0.001, 0.01, 0.5, 0.99, 0.999), q, strict=True):
        frac = float(np.mean(r1 <= v))  # inverse CDF, tails included
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n), (p, frac)
    assert np.isfinite(r1).all() and (r1 > 0).all()


def _obj(shape: ResponseShape | None) -> ObjectResponse:
    one = lambda text: [Region(0.0, 2.5, Formula(text, ["energy"]))]  # noqa: E731
    return ObjectResponse(
        "photon",
        "calo",
        (22,),
        2.5,
        efficiency=one("1.0"),
        scale=one("1.0"),
        resolution=one("0.01*energy"),
        shape=shape,
    )


def test_json_round_trip_and_fastsim(fitted: ResponseShape) -> None:
    model = ResponseModel({"photon": _obj(fitted)})
    back = ResponseModel.from_dict(json.loads(model.to_json()))
    assert back.to_json() == model.to_json()
    assert (
        back.objects["photon"].shape == fitted and back.objects["photon"] == model.objects["photon"]
    )
    assert "shape" not in ResponseModel({"photon": _obj(None)}).to_dict()["objects"]["photon"]
    n = 20_000
    truth = pd.DataFrame(
        {
            "event_id": np.arange(n),
            "pdg": np.full(n, 22),
            "pt_gev": np.full(n, 30.0),
            "eta": np.zeros(n),
            "phi": np.zeros(n),
            "e_gev": np.full(n, 30.0),
        }
    )
    shaped = FastSimulator(back)(truth, 5)
    assert shaped.to_parquet() == FastSimulator(back)(truth, 5).to_parquet()
    assert shaped.to_parquet() == FastSimulator(model)(truth, 5).to_parquet()  # as fitted
    gauss = FastSimulator(back, shape=False)(truth, 5)
    low = 0.9 * 30.0  # ~ 10 core sigma low: the shape's tail, not the Gaussian's
    assert (gauss["reco_e_gev"] < low).mean() == 0.0
    assert (shaped["reco_e_gev"] < low).mean() > 0.5 * TAIL_FRACTION


def _turn_on(e: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A photon-like efficiency: an E turn-on that moves with |eta|, a dip near 1.5."""
    dip = 1.0 - 0.2 * np.exp(-(((a - 1.5) / 0.1) ** 2))
    return dip * 0.95 / (1 + np.exp(-(np.log(e) - 1.0 - 0.4 * a) / 0.3))


def test_efficiency_grid_follows_the_truth_and_replaces_the_formula(fitted) -> None:
    rng = np.random.default_rng(3)
    n = 60_000
    e, a = np.exp(rng.uniform(0.0, 5.0, n)), rng.uniform(0.0, 2.5, n)
    passed = rng.random(n) < _turn_on(e, a)
    knots = tuple(np.round(np.arange(0.0, 2.51, 0.125), 6))
    grid = fit_efficiency(e, a, passed, x_name="energy", eta_knots=knots)
    assert fit_efficiency(e, a, passed, x_name="energy", eta_knots=knots) == grid  # no RNG
    # binned against the truth, within a few binomial sigma (the grid's own smoothing
    # and bilinear interpolation add a little; bins of 4k particles)
    te = np.quantile(np.log(e), np.linspace(0, 1, 6))
    for i in range(5):
        for lo, hi in ((0.0, 1.2), (1.3, 1.7), (1.8, 2.5)):
            m = (np.log(e) >= te[i]) & (np.log(e) < te[i + 1]) & (a >= lo) & (a < hi)
            want, got = _turn_on(e[m], a[m]).mean(), grid(e[m], a[m]).mean()
            sigma = np.sqrt(want * (1 - want) / m.sum())
            assert abs(got - want) < 4 * sigma + 0.01, (i, lo, want, got)
    # in the model file and in the fast simulation: the card says 1.0, the grid rules
    shape = dataclasses.replace(fitted, efficiency=grid)
    model = ResponseModel({"photon": _obj(shape)})
    back = ResponseModel.from_dict(json.loads(model.to_json()))
    assert back.objects["photon"].shape.efficiency == grid
    truth = pd.DataFrame(
        {
            "event_id": np.arange(n),
            "pdg": np.full(n, 22),
            "pt_gev": e / np.cosh(a),
            "eta": a,
            "phi": np.zeros(n),
            "e_gev": e,
        }
    )
    out = FastSimulator(back)(truth, 2)
    reco = (out["object_type"] == "photon").to_numpy()
    want = _turn_on(e, a).mean()
    assert abs(reco.mean() - want) < 5 * np.sqrt(want * (1 - want) / n) + 0.005
    assert (FastSimulator(back, shape=False)(truth, 2)["object_type"] == "photon").all()
    with pytest.raises(InputError) as err:
        d = json.loads(model.to_json())
        d["objects"]["photon"]["shape"]["efficiency"]["logit"] = [[0.0]]
        ResponseModel.from_dict(d, source="m.json")
    assert err.value.field == "objects.photon.shape.efficiency.logit"
    assert isinstance(EfficiencyGrid.from_dict(grid.to_dict()), EfficiencyGrid)


@pytest.mark.parametrize(
    ("edit", "field", "text"),
    [
        (lambda s: s.update(values=[[1.0]]), "objects.photon.shape.values", "shape"),
        (lambda s: s.update(type="spline"), "objects.photon.shape.type", "unknown"),
        (lambda s: s.update(levels=s["levels"][::-1]), "objects.photon.shape.levels", "incr"),
        (lambda s: s["values"].reverse(), "objects.photon.shape.values", "decrease"),
        (lambda s: s.pop("t_knots"), "objects.photon.shape", "t_knots"),
    ],
)
def test_bad_shape_json_is_a_clear_error(fitted, edit, field, text) -> None:
    d = json.loads(ResponseModel({"photon": _obj(fitted)}).to_json())
    edit(d["objects"]["photon"]["shape"])
    with pytest.raises(InputError) as err:
        ResponseModel.from_dict(d, source="m.json")
    assert err.value.field == field and text in str(err.value)


def _table(r: np.ndarray, x: np.ndarray, a: np.ndarray) -> pd.DataFrame:
    n = r.size
    return pd.DataFrame(
        {
            "pdg": np.full(n, 22),
            "truth_pt_gev": x,
            "truth_eta": a,
            "truth_phi": np.zeros(n),
            "truth_e_gev": x,
            "object_type": np.full(n, "photon"),
            "reco_pt_gev": x * r,
            "reco_eta": a,
            "reco_phi": np.zeros(n),
            "reco_e_gev": x * r,
        }
    )


def test_quantile_table_and_tail_fractions() -> None:
    x, a, r = _photonlike(40_000, 2)
    full = _table(r, x, a)
    same = _table(np.exp(_draw(np.random.default_rng(3), np.log(x))), x, a)  # same law
    s = quantile_summary(quantile_table(full, same, ["photon"]))
    # 25 bins x 7 levels; the pulls of a correct model are about N(0, 1)
    assert s["pulls"].iloc[0] == 175
    assert 0.6 < s["chi2_per_pull"].iloc[0] < 1.5
    gauss = _table(np.exp(0.02 * np.random.default_rng(4).standard_normal(40_000)), x, a)
    bad = quantile_summary(quantile_table(full, gauss, ["photon"]))
    assert bad["bins_pass"].iloc[0] == 0
    tails = tail_fractions(full, ["photon"]).set_index("eta_low")
    g = tail_fractions(gauss, ["photon"])
    n = g["n"].to_numpy()
    assert (np.abs(g["tail_excess"]) < 4 * np.sqrt(0.0027 / n)).all()
    assert (tails["tail_excess"] > 0.05).all() and (tails["low_tail"] > 0.05).all()


def test_cli_fit_with_shape_and_fastsim_report(tmp_path) -> None:
    """``fit response --shape`` writes the shapes, ``fastsim --compare`` uses them (and
    ``--no-shape`` does not), the report shows the quantile section."""
    from typer.testing import CliRunner

    from ariasim.cli import app
    from ariasim.io import write_table

    x, a, r = _photonlike(6000, 5)
    rng = np.random.default_rng(6)
    table = _table(r, x, a * np.where(rng.random(a.size) < 0.5, 1, -1))
    table.insert(0, "event_id", np.arange(len(table)))
    write_table(table, tmp_path / "full.parquet", producer="test")
    runner = CliRunner()
    fit = ["fit", "response", str(tmp_path / "full.parquet"), "--method", "poly", "-q"]
    res = runner.invoke(app, [*fit, "--shape", "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert "shape" in json.loads((tmp_path / "m.json").read_text())["objects"]["photon"]
    out = {}
    for flag in ("--shape", "--no-shape"):
        cmd = ["fastsim", "-r", str(tmp_path / "m.json"), "-i", str(tmp_path / "full.parquet")]
        cmd += ["-o", str(tmp_path / f"f{flag}.parquet"), "--compare", flag]
        cmd += ["--report", str(tmp_path / f"r{flag}.html")]
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, res.output
        out[flag] = res.output
    assert "reco/truth quantiles" in out["--shape"]
    assert "Response shape" in (tmp_path / "r--shape.html").read_text()
    # the shape carries the 15 % low tail, the Gaussian matched to the RMS cannot
    low = {
        f: (pd.read_parquet(tmp_path / f"f{f}.parquet").eval("reco_e_gev / truth_e_gev") < 0.9)
        for f in ("--shape", "--no-shape")
    }
    want = float((table["reco_e_gev"] / table["truth_e_gev"] < 0.9).mean())
    assert abs(low["--shape"].mean() - want) < 4 * math.sqrt(want / len(table))
    assert abs(low["--no-shape"].mean() - want) > 4 * math.sqrt(want / len(table))


def _bump(t: np.ndarray) -> np.ndarray:
    """A median that moves by 0.1 (5 core widths) within +-0.15 of t = 2 (like the photon
    identification dip at 2-3 GeV), narrower than the spacing of 6 knots over t in 0..5."""
    return 0.1 * np.exp(-(((t - 2.0) / 0.15) ** 2))


def test_knot_refinement_follows_a_narrow_feature() -> None:
    """With ``refine`` the fit inserts knots in log x where the coarse grid misses the
    data (the bump), and the median there is recovered within statistics; without, it is
    tens of standard errors off. The fit stays deterministic."""
    rng = np.random.default_rng(11)
    n = 30_000
    t = rng.uniform(0.0, 5.0, n)
    r = np.exp(_bump(t) + 0.02 * rng.standard_normal(n))
    x, a = np.exp(t), rng.uniform(0.0, 2.5, n)
    kw = {"x_name": "energy", "levels": (0.16, 0.5, 0.84), "n_t_knots": 6, "eta_knots": (0.0, 2.5)}
    plain = fit_shape(x, a, r, refine=0, **kw)
    fine = fit_shape(x, a, r, refine=4, **kw)
    assert fit_shape(x, a, r, refine=4, **kw) == fine
    assert len(fine.t_knots) > len(plain.t_knots)
    tk = np.asarray(fine.t_knots)
    # 1.0 apart before; around the bump now at most a quarter of that (a misfit there
    # also leaks into the next cells), unchanged where the response is flat and far from it
    near = tk[(tk > 1.4) & (tk < 2.6)]
    far = (tk > 3.6).sum() == (np.asarray(plain.t_knots) > 3.6).sum()
    assert np.diff(near).max() < 0.26 and far, tk
    # the median at the bump's top: the error of a median from the ~1000 points within
    # +-0.08 of t = 2 (about one cell of the refined grid) bounds the fit's error
    se = 1.2533 * 0.02 / math.sqrt(n * 0.16 / 5.0)
    want = math.exp(0.1)
    got = {k: float(s.quantiles(np.array([math.exp(2.0)]), np.array([1.0]), (0.5,))[0, 0])
           for k, s in (("plain", plain), ("fine", fine))}  # fmt: skip
    assert abs(got["fine"] - want) < 4 * se, got
    assert abs(got["plain"] - want) > 10 * se, got
