"""``benchmarks/bench_delphes_paired.py``: two cards' real-Delphes runs paired by (part,
seed), the paired gain, McNemar's discordant counts per bin and the four checks, on runs
written by hand (no Delphes needed); bad flags are one-line errors naming the flag."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from benchload import load_bench

bench = load_bench("bench_delphes_paired")

PT = (1.0, 2.0)
ETA = (0.0, 1.5)


def _write(out: Path, tag: str, part: int, seed: int, fails: dict[tuple, bool], width=None):
    """One run's JSON: electron and photon bins (energy) and electron pT (information)."""
    bins = []
    for obj in ("electron", "photon"):
        for pt in PT:
            for eta in ETA:
                failed = fails.get((obj, pt, eta), False)
                w = (width or {}).get((obj, pt, eta), 1.0)
                row = {"object": obj, "quantity": "energy", "pt_low": pt, "eta_low": eta,
                       "passed": not failed, "width_ratio": w, "eff_full": 0.9,
                       "eff_delphes": 0.9}  # fmt: skip
                bins.append(row)
    # information rows are not judged, even when they fail
    bins.append({"object": "electron", "quantity": "pt", "pt_low": 1.0, "eta_low": 0.0,
                 "passed": False})  # fmt: skip
    (out / "runs").mkdir(parents=True, exist_ok=True)
    data = {"rule": {"Delphes": {"bins": bins}}}
    (out / "runs" / f"{tag}_p{part}_s{seed}.json").write_text(json.dumps(data))


def test_paired_gain_mcnemar_counts_and_checks(tmp_path: Path) -> None:
    target = ("electron", 1.0, 1.5)
    other = ("electron", 2.0, 0.0)
    n = 0
    for seed in range(1, 11):
        for part in (1, 2):
            n += 1
            # the base fails the target bin in 16 of 20 runs, the candidate in 4 (3 of them
            # where the base fails too); the candidate fails `other` once where the base passes
            _write(tmp_path, "B", part, seed, {target: n <= 16, ("photon", 1.0, 0.0): n == 5})
            _write(tmp_path, "X", part, seed,
                   {target: n in (1, 2, 3, 20), other: n == 7, ("photon", 1.0, 0.0): n == 5},
                   width={target: 1.05})  # fmt: skip
    # a run of one card only is not paired
    _write(tmp_path, "X", 1, 99, {target: True})
    base, cand = bench.load_runs(tmp_path, "B"), bench.load_runs(tmp_path, "X")
    s = bench.paired_summary(base, cand)
    assert s["runs"] == 20 and s["bins_per_run"] == 8
    assert s["bins_passing"] == {"base": 160 - 17, "cand": 160 - 6, "of": 160}
    assert s["gain"] == pytest.approx((17 - 6) / 20)
    rows = {(r["object"], r["pt_low"], r["eta_low"]): r for r in s["bins"]}
    t = rows[target]
    assert (t["fails_base"], t["fails_cand"], t["mcnemar_b"], t["mcnemar_c"]) == (16, 4, 1, 13)
    assert t["mcnemar_z"] == pytest.approx((1 - 13) / 14**0.5)
    assert t["width_ratio_cand"] == pytest.approx(1.05)
    assert (rows[other]["mcnemar_b"], rows[other]["mcnemar_c"]) == (1, 0)
    assert s["fails_per_sample"]["base"]["photon"] == pytest.approx(1 / 20)
    assert s["all_checks"], s["checks"]
    # a changed bin failing significantly more often breaks check 4 (and the gain check 1)
    s2 = bench.paired_summary(cand, base)
    assert not s2["checks"]["4_no_changed_bin_fails_more"]
    assert not s2["checks"]["1_more_bins_pass_gain_over_2se"]
    # a width ratio moved further from 1 and out of 15 % breaks check 3
    for k in cand:
        cand[k][target] = {**cand[k][target], "width_ratio": 1.2}
    assert not bench.paired_summary(base, cand)["checks"]["3_no_changed_width_moved_out"]


def test_summarise_writes_summary_json_and_seeds_select(tmp_path: Path, capsys) -> None:
    for seed in (1, 2, 3):
        _write(tmp_path, "B", 1, seed, {("electron", 1.0, 1.5): True})
        _write(tmp_path, "X", 1, seed, {})
    out = tmp_path / "summary.json"
    rc = bench.main(["summarise", "--out", str(tmp_path), "--base", "B", "--cand", "X",
                     "--seeds", "1-2", "--json", str(out)])  # fmt: skip
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["runs"] == 2 and s["gain"] == 1.0 and (s["base"], s["cand"]) == ("B", "X")
    assert "paired gain" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["summarise", "--base", "B", "--cand", "Y"], "no runs of card 'Y'"),
        (["summarise", "--base", "B", "--cand", "X", "--seeds", "x"], "--seeds 'x'"),
        (["run", "--delphes", ".", "--heldout", "h.parquet", "--card", "B", "--seeds", "1"],
         "--card 'B'"),
        (["run", "--delphes", ".", "--heldout", "h.parquet", "--card", "B=nofile.json",
          "--seeds", "1"], "no file nofile.json"),
        (["run", "--delphes", ".", "--heldout", "h.parquet", "--card", f"B={__file__}",
          "--card", f"X={__file__}", "--seeds", "1", "--objects", "electron,muonn"],
         "--objects 'electron,muonn'"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_errors(tmp_path: Path, argv: list[str], flag: str) -> None:
    _write(tmp_path, "B", 1, 1, {})
    with pytest.raises(SystemExit) as e:
        bench.main([*argv, "--out", str(tmp_path)])
    assert flag in str(e.value) and "\n" not in str(e.value)


def test_parse_helpers() -> None:
    assert bench.parse_seeds("3-5,9") == [3, 4, 5, 9]
    with pytest.raises(SystemExit, match="positive"):
        bench.parse_seeds("0-2")
    with pytest.raises(SystemExit, match="--cutoff"):
        bench.parse_cutoff("25:99")
    late = dt.datetime(2026, 12, 7, 23, 50, tzinfo=dt.UTC)
    assert bench.parse_cutoff("23:55", late) == late.replace(minute=55)
    assert bench.parse_cutoff("00:10", late) == dt.datetime(2026, 12, 8, 0, 10, tzinfo=dt.UTC)
    assert bench.parse_cutoff(None) is None
    with pytest.raises(SystemExit, match="twice"):
        bench.parse_cards([f"A={__file__}", f"A={__file__}"])
