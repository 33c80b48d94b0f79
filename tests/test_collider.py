"""Collider simulation: configuration, inputs, reproducibility, CLI (fast tests)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ariasim.errors import ConfigError, InputError
from ariasim.simulators.collider import detector as det_mod
from ariasim.simulators.collider.detector import load_detector
from ariasim.simulators.collider.inputs import read_events
from ariasim.simulators.collider.particles import GUN_SPECIES, SPECIES, ParticleGun
from ariasim.simulators.collider.schema import OUTPUT_COLUMNS, OUTPUT_SCHEMA, check_output
from ariasim.simulators.collider.simulate import simulate


def test_shipped_detectors_load_and_differ():
    d, f = load_detector("default"), load_detector("future")
    assert d.b_field_t == 3.8 and f.b_field_t == 2.0
    assert len(d.layers) == 13
    x0 = d.beam_pipe.thickness_x0 + sum(la.thickness_x0 for la in d.layers)
    assert 0.35 < x0 < 0.45  # "about 0.4 X0" (REFERENCE.md section 3)
    assert d.layers[0].radius_m == pytest.approx(0.029) and d.layers[-1].radius_m == pytest.approx(
        1.08
    )
    assert f.layers[-1].radius_m > 2.0
    assert f.ecal.kind == "sampling" and d.ecal.kind == "homogeneous"
    cfg = d.to_dict()
    assert cfg["layers"][0]["sigma_rphi_um"] == 10.0 and "ecal" in cfg


def test_detector_errors_name_the_key(tmp_path):
    text = (det_mod.DETECTOR_DIR / "default.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("b_field_t = 3.8", "b_field_t = 3.8\nbfield = 1"))
    with pytest.raises(ConfigError, match=r"solenoid\.bfield"):
        load_detector(bad)
    bad.write_text(text.replace("efficiency = 0.99", "efficiency = 1.5", 1))
    with pytest.raises(ConfigError, match="efficiency"):
        load_detector(bad)
    bad.write_text(text.replace('preset = "cms-pbwo4"', 'preset = "cms-pbwo4"\nfoo = 1'))
    with pytest.raises(ConfigError, match="foo"):
        load_detector(bad)
    with pytest.raises(ConfigError, match="unknown detector"):
        load_detector("nonexistent")
    with pytest.raises(InputError, match=r"missing\.toml"):
        load_detector(tmp_path / "missing.toml")


def test_gun_ranges_species_and_seed():
    gun = ParticleGun(list(GUN_SPECIES), 2.0, 50.0, log_pt=True, eta_min=-1.0, eta_max=2.0)
    a = gun.generate(5000, 7)
    assert a["pt_gev"].between(2.0, 50.0).all() and a["eta"].between(-1.0, 2.0).all()
    assert set(a["pdg"]) == {SPECIES[s].pdg for s in GUN_SPECIES}
    # log-flat: median at the geometric mean
    assert np.median(a["pt_gev"]) == pytest.approx(10.0, rel=0.08)
    pd.testing.assert_frame_equal(a, gun.generate(5000, 7))
    with pytest.raises(ConfigError, match="species"):
        ParticleGun(["graviton"])
    with pytest.raises(ConfigError):
        ParticleGun(["mu-"], 10.0, 1.0)


def test_same_seed_same_output_and_batches():
    truth = ParticleGun(["e-", "pi+", "gamma", "mu-", "n"], 1.0, 50.0, log_pt=True).generate(300, 3)
    a = simulate(truth, "default", seed=11, batch_size=100)
    b = simulate(truth, "default", seed=11, batch_size=100)
    pd.testing.assert_frame_equal(a, b)
    c = simulate(truth, "default", seed=12, batch_size=100)
    assert not np.allclose(a["reco_e_gev"].fillna(-1), c["reco_e_gev"].fillna(-1))
    assert len(a) == len(truth) and (a["event_id"].to_numpy() == truth["event_id"].to_numpy()).all()
    assert set(a["object_type"]) <= {
        "electron",
        "photon",
        "muon",
        "charged_hadron",
        "neutral_hadron",
        "none",
    }
    nf = ~a["found"]
    assert a.loc[nf, "reco_pt_gev"].isna().all() and (a.loc[nf, "object_type"] == "none").all()


@pytest.mark.parametrize("detector", ["default", "future"])
def test_output_conforms_to_schema(detector):
    truth = ParticleGun(list(GUN_SPECIES), 1.0, 50.0, log_pt=True).generate(200, 5)
    out = simulate(truth, detector, seed=3, batch_size=80)
    assert list(out.columns) == [c.name for c in OUTPUT_SCHEMA]
    assert {c: str(t) for c, t in out.dtypes.items()} == {c.name: c.dtype for c in OUTPUT_SCHEMA}
    empty = simulate(truth.iloc[:0], detector, seed=3)
    assert len(empty) == 0 and list(empty.columns) == list(OUTPUT_COLUMNS)
    assert {c: str(t) for c, t in empty.dtypes.items()} == OUTPUT_COLUMNS
    # the check itself fails on a missing column, a wrong order and a wrong dtype
    with pytest.raises(ValueError, match="e_leak_gev"):
        check_output(out.drop(columns="e_leak_gev"))
    with pytest.raises(ValueError, match="order"):
        check_output(out[list(out.columns[::-1])])
    with pytest.raises(ValueError, match="n_hits"):
        check_output(out.astype({"n_hits": "float64"}))


def test_schema_units_follow_column_names():
    from ariasim.apps.collider import fastsim

    assert fastsim.OUTPUT_COLUMNS is OUTPUT_COLUMNS  # the fast simulation reuses the schema
    assert len({c.name for c in OUTPUT_SCHEMA}) == len(OUTPUT_SCHEMA)
    for c in OUTPUT_SCHEMA:
        assert c.dtype in {"int64", "float64", "bool", "str"} and c.description and c.unit
        if c.name.endswith("_gev"):
            assert c.unit == "GeV", c.name
        elif c.name.endswith("_mm"):
            assert c.unit == "mm", c.name
        elif c.name.endswith("_phi"):
            assert c.unit == "rad", c.name


def _write_hepmc(path):
    pyhepmc = pytest.importorskip("pyhepmc")
    with pyhepmc.open(str(path), "w") as f:
        for i in range(3):
            evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            evt.event_number = i
            beam1 = pyhepmc.GenParticle((0.0, 0.0, 7000.0, 7000.0), 2212, 4)
            beam2 = pyhepmc.GenParticle((0.0, 0.0, -7000.0, 7000.0), 2212, 4)
            v = pyhepmc.GenVertex((0.0, 0.0, 1.0 + i, 0.0))
            v.add_particle_in(beam1)
            v.add_particle_in(beam2)
            v.add_particle_out(
                pyhepmc.GenParticle((20.0, 0.0, 5.0, (20.0**2 + 5.0**2 + 0.10566**2) ** 0.5), 13, 1)
            )
            v.add_particle_out(pyhepmc.GenParticle((-10.0, 3.0, -2.0, (109.0 + 4.0) ** 0.5), 22, 1))
            v.add_particle_out(pyhepmc.GenParticle((0.0, 5.0, 1.0, 30.0), 23, 2))  # not final state
            evt.add_vertex(v)
            f.write(evt)


def test_read_hepmc_and_simulate(tmp_path):
    path = tmp_path / "ev.hepmc"
    _write_hepmc(path)
    parts = read_events(path)
    assert len(parts) == 6 and set(parts["pdg"]) == {13, 22}
    assert parts["event_id"].tolist() == [0, 0, 1, 1, 2, 2]
    assert parts["vz_mm"].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert parts.loc[0, "pt_gev"] == pytest.approx(20.0)
    out = simulate(parts, "default", seed=1)
    assert out.loc[out["pdg"] == 13, "object_type"].eq("muon").all()
    assert (
        out.loc[out["pdg"] == 13, "track_z0_mm"]
        .sub(out.loc[out["pdg"] == 13, "truth_vz_mm"])
        .abs()
        .max()
        < 0.5
    )


LHE = """<LesHouchesEvents version="3.0">
<header></header>
<init>
2212 2212 6.5e3 6.5e3 0 0 0 0 3 1
1.0 0.1 1.0 1
</init>
<event>
4 1 1.0 91.0 0.0078 0.118
2 -1 0 0 501 0 0.0 0.0 50.0 50.0 0.0 0. 9.
-2 -1 0 0 0 501 0.0 0.0 -40.0 40.0 0.0 0. 9.
11 1 1 2 0 0 30.0 10.0 5.0 32.0 0.000511 0. 9.
-11 1 1 2 0 0 -30.0 -10.0 5.0 58.0 0.000511 0. 9.
</event>
<event>
3 1 1.0 91.0 0.0078 0.118
21 -1 0 0 501 502 0.0 0.0 50.0 50.0 0.0 0. 9.
21 -1 0 0 502 501 0.0 0.0 -40.0 40.0 0.0 0. 9.
22 1 1 2 0 0 15.0 0.0 2.0 15.13 0.0 0. 9.
</event>
</LesHouchesEvents>
"""


def test_read_lhe(tmp_path):
    path = tmp_path / "ev.lhe"
    path.write_text(LHE)
    parts = read_events(path)
    assert parts["pdg"].tolist() == [11, -11, 22]
    assert parts["event_id"].tolist() == [0, 0, 1]
    assert parts.loc[0, "pt_gev"] == pytest.approx(np.hypot(30.0, 10.0))
    bad = tmp_path / "bad.lhe"
    bad.write_text("<LesHouchesEvents><event>garbage")
    with pytest.raises(InputError, match=r"bad\.lhe"):
        read_events(bad)
    with pytest.raises(InputError, match=r"nothere\.hepmc"):
        read_events(tmp_path / "nothere.hepmc")


def test_cli_writes_parquet_with_provenance(tmp_path):
    from ariasim.cli import main

    out = tmp_path / "mu.parquet"
    with pytest.raises(SystemExit) as ok:
        main(
            [
                "simulate",
                "collider",
                "--detector",
                "future",
                "--particle",
                "mu-",
                "--n",
                "50",
                "--pt-min",
                "5",
                "--pt-max",
                "50",
                "--eta-max",
                "1.0",
                "--seed",
                "4",
                "--quiet",
                "--out",
                str(out),
            ]
        )
    assert ok.value.code in (0, None)
    df = pd.read_parquet(out)
    assert len(df) == 50 and df["object_type"].eq("muon").mean() > 0.8
    # --eta-max alone: symmetric range (eta_min = -eta_max)
    assert df["truth_eta"].abs().max() <= 1.0 and (df["truth_eta"] < 0).any()
    import pyarrow.parquet as pq

    meta = pq.read_schema(out).metadata
    blob = b" ".join(meta.values())
    assert b"ariasim.simulators.collider" in blob and b"future" in blob
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "simulate",
                "collider",
                "--input",
                str(tmp_path / "none.hepmc"),
                "--out",
                str(tmp_path / "x.parquet"),
                "--quiet",
            ]
        )
    assert exc.value.code == 2
    assert not (tmp_path / "x.parquet").exists()


def test_cli_gun_defaults_are_the_library_defaults():
    import inspect
    import math
    import typing

    from ariasim.cli.simulate import collider_command
    from ariasim.simulators.collider.run import run_collider

    hints = typing.get_type_hints(collider_command, include_extras=True)
    info = {name: typing.get_args(h)[1] for name, h in hints.items() if name != "return"}
    shown = {name: i.show_default for name, i in info.items()}
    gun = ParticleGun()
    assert shown["particle"] == ",".join(gun.species)
    assert (
        shown["pt_min"] == f"{gun.pt_min_gev:g} GeV"
        and shown["pt_max"] == f"{gun.pt_max_gev:g} GeV"
    )
    assert shown["eta_max"] == f"{gun.eta_max:g}" and gun.eta_min == -gun.eta_max
    assert gun.phi_min == -math.pi and gun.phi_max == math.pi
    assert shown["phi_min"] == "-pi" and shown["phi_max"] == "pi"
    assert shown["log_pt"] == ("log-pt" if gun.log_pt else "flat-pt")
    lib = inspect.signature(run_collider).parameters
    assert shown["n"] == "10000"  # run_collider's own default (documented there)
    sig = inspect.signature(collider_command).parameters
    for cli_name, lib_name in (
        ("detector", "detector"),
        ("seed", "seed"),
        ("batch_size", "batch_size"),
    ):
        assert sig[cli_name].default == lib[lib_name].default, cli_name
    # units are written so that rich markup keeps them: (GeV), (rad), never [GeV]
    assert "(GeV)" in info["pt_min"].help and "(rad)" in info["phi_min"].help
    assert all("[" not in (i.help or "") for i in info.values())


def test_run_collider_rejects_options_that_do_not_apply(tmp_path):
    from ariasim.cli import main
    from ariasim.simulators.collider import run_collider

    events = tmp_path / "ev.hepmc"
    _write_hepmc(events)
    with pytest.raises(ConfigError, match=r"'n'.*input file"):
        run_collider(out=tmp_path / "a.parquet", input_file=events, n=5, progress=False)
    with pytest.raises(ConfigError, match="'pt_min_gev'"):
        run_collider(out=tmp_path / "a.parquet", input_file=events, pt_min_gev=5.0, progress=False)
    with pytest.raises(ConfigError, match="'max_events'"):
        run_collider(out=tmp_path / "a.parquet", max_events=3, progress=False)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "simulate",
                "collider",
                "--input",
                str(events),
                "--particle",
                "e-",
                "--quiet",
                "--out",
                str(tmp_path / "b.parquet"),
            ]
        )
    assert exc.value.code == 2
    assert not list(tmp_path.glob("*.parquet"))


def test_fit_kernels_copies_agree_with_physics():
    """The track fit compiles its own scalar Highland formula and sinc (numba caches per
    file); they must stay equal to the array forms of tracking.physics / numpy."""
    from ariasim.simulators.collider.tracking import fit, highland_theta0

    rng = np.random.default_rng(0)
    p, beta, x = rng.uniform(0.3, 500, 50), rng.uniform(0.5, 1.0, 50), rng.uniform(1e-3, 0.2, 50)
    scalar = np.array([fit._highland(a, b, c) for a, b, c in zip(p, beta, x, strict=True)])
    np.testing.assert_allclose(scalar, highland_theta0(p, beta, x), rtol=1e-13)
    assert fit._highland(1.0, 1.0, 0.0) == 0.0
    v = np.r_[0.0, 5e-5, rng.uniform(-3, 3, 20)]
    np.testing.assert_allclose([fit._sinc(a) for a in v], np.sinc(v / np.pi), rtol=1e-12)


def _gun_table(n: int = 2100, seed: int = 3) -> pd.DataFrame:
    return ParticleGun(["mu-", "e-", "pi+"], 1.0, 10.0, log_pt=True).generate(n, seed)


def test_output_independent_of_batch_size_and_threads():
    """Issue 10: same input and seed, identical table whatever the batch size or threads
    (the random streams belong to fixed blocks of 1000 events, not to batches)."""
    import numba

    from ariasim.simulators.collider.simulate import BLOCK_EVENTS, blocks

    truth = _gun_table()
    assert len(blocks(truth["event_id"].to_numpy())) == -(-len(truth) // BLOCK_EVENTS) == 3
    a = simulate(truth, "default", seed=11, batch_size=1000)
    b = simulate(truth, "default", seed=11, batch_size=3000)
    pd.testing.assert_frame_equal(a, b)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        c = simulate(truth, "default", seed=11, batch_size=7)
    finally:
        numba.set_num_threads(threads)
    pd.testing.assert_frame_equal(a, c)
    # blocks hold whole events and at most BLOCK_PARTICLES particles (big events)
    from ariasim.simulators.collider.simulate import BLOCK_PARTICLES

    assert len(a) == len(truth) and (a["event_id"].to_numpy() == truth["event_id"]).all()
    ev = np.repeat(np.arange(50), 900)
    for ids in (ev, np.arange(2500), np.repeat(np.arange(3000), 2), np.r_[0, 0, 0, 1]):
        rng = blocks(ids)
        # a partition of the rows into whole events, in order
        assert rng[0][0] == 0 and rng[-1][1] == ids.size
        assert all(hi == lo2 for (_, hi), (lo2, _) in itertools.pairwise(rng))
        assert all(ids[lo] != ids[lo - 1] for lo, _ in rng[1:])
        assert all(
            hi - lo <= BLOCK_PARTICLES and np.unique(ids[lo:hi]).size <= BLOCK_EVENTS
            for lo, hi in rng
        )
    assert blocks(ev)[0] == (0, 900 * (BLOCK_PARTICLES // 900))
    assert blocks(np.repeat(np.arange(3000), 2))[1] == (2000, 4000)
    assert blocks(np.repeat([7], BLOCK_PARTICLES + 5)) == [(0, BLOCK_PARTICLES + 5)]


def test_cli_same_table_for_any_batch_size(tmp_path):
    """The CLI writes the same data for --batch-size 1000 and 3000. The Parquet bytes
    differ only by the creation time in the provenance (``created_utc``), so the data and
    the provenance without it are compared."""
    import json

    import pyarrow.parquet as pq

    from ariasim.cli import main

    paths = []
    for bs in ("1000", "3000"):
        out = tmp_path / f"bs{bs}.parquet"
        with pytest.raises(SystemExit) as ok:
            main(
                [
                    "simulate",
                    "collider",
                    "-p",
                    "mu-,e-,pi+",
                    "--n",
                    "2100",
                    "--pt-max",
                    "10",
                    "--log-pt",
                    "--seed",
                    "5",
                    "--batch-size",
                    bs,
                    "--quiet",
                    "--out",
                    str(out),
                ]
            )
        assert ok.value.code in (0, None)
        paths.append(out)
    ta, tb = (pq.read_table(p) for p in paths)
    assert ta.equals(tb)
    provs = []
    for p in paths:
        meta = pq.read_schema(p).metadata
        prov = json.loads(next(v for k, v in meta.items() if b"provenance" in k))
        prov.pop("created_utc")
        provs.append(prov)
    assert provs[0] == provs[1]
    assert not list(tmp_path.glob(".*"))  # the run folder is gone


def test_cli_root_output_reads_back(tmp_path):
    from ariasim.cli import main
    from ariasim.io import read_table
    from ariasim.simulators.collider.run import OBJECT_TYPE_CODES

    out = tmp_path / "mu.root"
    with pytest.raises(SystemExit) as ok:
        main(["simulate", "collider", "--n", "60", "--seed", "2", "--quiet", "--out", str(out)])
    assert ok.value.code in (0, None)
    back = read_table(out)
    assert len(back) == 60 and set(back.columns) == set(OUTPUT_COLUMNS)
    ref = simulate(ParticleGun().generate(60, 0), "default", seed=0)  # dtypes, not values
    for col in OUTPUT_COLUMNS:
        if col != "object_type":
            assert back[col].dtype.kind == ref[col].dtype.kind, col
    assert set(back["object_type"]) <= set(OBJECT_TYPE_CODES.values())
    assert (back["object_type"] == OBJECT_TYPE_CODES["muon"]).mean() > 0.8


def test_cli_existing_output_needs_overwrite_and_report_all_or_nothing(tmp_path):
    from ariasim.cli import main

    out, rep = tmp_path / "a.parquet", tmp_path / "rep"
    argv = ["simulate", "collider", "--n", "40", "--quiet", "--out", str(out), "--report", str(rep)]
    with pytest.raises(SystemExit) as ok:
        main(argv)
    assert ok.value.code in (0, None) and out.exists() and (rep / "report.html").exists()
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and out.read_bytes() == before
    with pytest.raises(SystemExit) as ok:
        main([*argv, "--overwrite", "--seed", "3"])
    assert ok.value.code in (0, None) and out.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "rep"]


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    """An interrupted run (raised after its first block) resumes from the finished
    blocks and writes the same table as a run that was never interrupted."""
    from ariasim.simulators.collider.run import run_collider, run_folder

    opts = {"species": ["mu-", "e-"], "n": 2100, "pt_max_gev": 10.0, "seed": 7, "progress": False}
    ref = tmp_path / "ref.parquet"
    run_collider(out=ref, **opts)

    class Interrupt(Exception):
        pass

    calls: list[int] = []

    def stop_after_first(k: int) -> None:
        calls.append(k)
        raise Interrupt

    out = tmp_path / "out.parquet"
    with pytest.raises(Interrupt):
        run_collider(out=out, _after_block=stop_after_first, **opts)
    assert not out.exists() and (run_folder(out) / "block-000000.parquet").exists()
    resumed: list[int] = []
    run_collider(out=out, resume=True, _after_block=resumed.append, **opts)
    assert calls == [0] and resumed == [1, 2]  # the finished block is not redone
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(ref))
    assert len(pd.read_parquet(ref)) == 2100
    assert not run_folder(out).exists()
    # a run folder of other options or inputs is not resumed
    with pytest.raises(Interrupt):
        run_collider(out=tmp_path / "c.parquet", _after_block=stop_after_first, **opts)
    with pytest.raises(ConfigError, match="resume"):
        run_collider(out=tmp_path / "c.parquet", resume=True, **{**opts, "seed": 8})


def test_cli_interrupt_then_resume(tmp_path, monkeypatch, capsys):
    """Ctrl-C keeps the finished blocks and says how to resume; --resume finishes the run
    with the same table as an uninterrupted one."""
    from ariasim.cli import main
    from ariasim.simulators.collider import run as run_mod

    argv = ["simulate", "collider", "--n", "1200", "--seed", "9", "--quiet"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "ref.parquet")])
    real = run_mod.iter_blocks

    def interrupted(*args, **kwargs):
        for item in real(*args, **kwargs):
            yield item
            raise KeyboardInterrupt

    out = tmp_path / "out.parquet"
    monkeypatch.setattr(run_mod, "iter_blocks", interrupted)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(out)])
    assert exc.value.code == 130 and "--resume" in capsys.readouterr().err
    assert not out.exists() and run_mod.run_folder(out).exists()
    monkeypatch.setattr(run_mod, "iter_blocks", real)
    with pytest.raises(SystemExit) as ok:
        main([*argv, "--out", str(out), "--resume"])
    assert ok.value.code in (0, None)
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "ref.parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "ref.parquet"]
