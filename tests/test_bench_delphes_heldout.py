"""The judged sample of ``benchmarks/bench_delphes.py``: the odd events of the fit's table,
or disjoint parts of an independent table (``--heldout FILE --heldout-part I/K``), and
the objects judged (``--objects``); bad values are one-line errors naming the flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchload import load_bench

bench = load_bench("bench_delphes")


def _table(n: int, seed: int, pdgs: tuple[int, ...] = (13, 11, 22, 211)) -> pd.DataFrame:
    """One particle per event, species drawn at random."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"event_id": np.arange(n), "pdg": rng.choice(pdgs, n)})


def test_heldout_parts_are_disjoint_cover_the_table_and_keep_the_objects() -> None:
    t = _table(1001, 0, (11, 22))
    parts = [
        bench.judged_sample(
            t, source="eg.parquet", heldout=True, part=(i, 4), objects=["electron", "photon"]
        )
        for i in (1, 2, 3, 4)
    ]
    ids = np.concatenate([p["event_id"].to_numpy() for p in parts])
    assert sorted(ids.tolist()) == list(range(1001))
    assert [len(p) for p in parts] == [251, 250, 250, 250]
    assert set(parts[2]["event_id"] % 4) == {2}
    # without a part: every event (not the odd ones)
    whole = bench.judged_sample(t, source="eg.parquet", heldout=True, objects=["photon"])
    assert len(whole) == int((t["pdg"] == 22).sum())


def test_default_judged_sample_is_the_odd_events_of_the_fit_table() -> None:
    t = _table(400, 1)
    odd = bench.judged_sample(t, source="full.parquet", heldout=False)
    assert len(odd) == 200 and bool((odd["event_id"] % 2 == 1).all())


def test_bad_values_are_one_line_errors_naming_the_flag_or_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench.parse_part("3/5") == (3, 5)
    for bad, msg in (("0/4", "need 1 <= I <= K"), ("5/4", "need 1"), ("1-4", "expected I/K")):
        with pytest.raises(SystemExit, match=f"--heldout-part '{bad}': {msg}"):
            bench.parse_part(bad)
    assert bench.parse_objects("photon, electron") == ["electron", "photon"]
    with pytest.raises(SystemExit, match="--objects 'electron,tau'"):
        bench.parse_objects("electron,tau")
    with pytest.raises(SystemExit, match="--objects ''"):
        bench.parse_objects("")
    with pytest.raises(SystemExit, match=r"eg.parquet: no muon particles in part 2/4"):
        bench.judged_sample(
            _table(100, 2, (11, 22)), source="eg.parquet", heldout=True, part=(2, 4)
        )
    for argv, msg in (
        (["--heldout-part", "1/4"], "error: --heldout-part needs --heldout"),
        (["--full", "a", "--heldout", "b"], "error: give --full (its odd events"),
    ):
        with pytest.raises(SystemExit):
            bench.main(["--response", "x.json", *argv])
        assert msg in capsys.readouterr().err


def test_print_rule_marks_width_failures_when_every_bin_is_judged_on_width(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # electrons only: no efficiency-only bin, so width_ok is a plain bool column
    rng = np.random.default_rng(4)
    n = 20000
    pt = np.exp(rng.uniform(0.0, np.log(300.0), n))
    eta = rng.uniform(-2.5, 2.5, n)
    e = pt * np.cosh(eta)

    def table(sig: float) -> pd.DataFrame:
        r = 1.0 + sig * rng.standard_normal(n)
        return pd.DataFrame(
            {
                "pdg": 11,
                "object_type": "electron",
                "truth_pt_gev": pt,
                "truth_eta": eta,
                "truth_e_gev": e,
                "reco_pt_gev": pt * r,
                "reco_e_gev": e * r,
            }
        )

    rows = bench.bin_rule(table(0.03), table(0.045), "electron", "energy")
    assert rows["width_ok"].dtype == bool and not rows["width_ok"].any()
    bench.print_rule(rows, label="x")
    out = capsys.readouterr().out
    assert "0/21 bins pass" in out and out.count(" w") == 21
