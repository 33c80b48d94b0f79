"""The null of the issue-14 bin rule (``benchmarks/bench_rule_null.py``) on a small
synthetic full simulation: reproducible draws, and a card whose width is off in one bin
is told apart from the null there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchload import load_bench

null = load_bench("bench_rule_null")
bench_delphes = load_bench("bench_delphes")


def _table(n_per_species: int, seed: int) -> pd.DataFrame:
    """Single particles of the four species, log-flat in pT, Gaussian reco/truth (5 %
    for tracks, 3 % for calorimeter objects), 90 % efficiency."""
    rng = np.random.default_rng(seed)
    rows = []
    for pdg, obj in bench_delphes.PDG_OBJECT.items():
        pt = np.exp(rng.uniform(0.0, np.log(300.0), n_per_species))
        eta = rng.uniform(-2.5, 2.5, n_per_species)
        e = pt * np.cosh(eta)
        sig = 0.05 if obj in ("muon", "charged_hadron") else 0.03
        r = 1.0 + sig * rng.standard_normal(n_per_species)
        found = rng.random(n_per_species) < 0.9
        rows.append(
            pd.DataFrame(
                {
                    "pdg": pdg,
                    "object_type": np.where(found, obj, "none"),
                    "truth_pt_gev": pt,
                    "truth_eta": eta,
                    "truth_e_gev": e,
                    "reco_pt_gev": np.where(found, pt * r, np.nan),
                    "reco_e_gev": np.where(found, e * r, np.nan),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def full_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("null") / "full.parquet"
    _table(40000, 0).to_parquet(p)
    return p


def test_null_draws_are_reproducible_and_mostly_pass(full_file: Path) -> None:
    full = null.load([str(full_file)])
    c1, b1 = null.null_draws(full, 16000, 4, "complement", seed=3)
    c2, b2 = null.null_draws(full, 16000, 4, "complement", seed=3)
    pd.testing.assert_frame_equal(c1, c2)
    pd.testing.assert_frame_equal(b1, b2)
    # Gaussian responses, >= ~480 reco objects per bin on the full side and ~720 on the
    # model side: the width ratio's relative error is <= ~6.5 % (1.07 / sqrt(n) per side),
    # so a bin fails the 15 % tolerance with probability <= ~2 %: about 5 of the 4 x 84
    # bins (sd ~2.3); a broken rule or swapped sides fails most of them.
    assert c1["total"].sum() <= 20
    assert len(b1) == 4 * 84


def test_card_bin_far_off_gets_small_p_null(full_file: Path, tmp_path: Path) -> None:
    full = null.load([str(full_file)])
    _, nb = null.null_draws(full, 16000, 10, "complement", seed=5)
    # a card table as bench_delphes writes it: every bin passes except one 30 % too wide
    bins = []
    for (obj, q), pt_low, eta_low in [(("electron", "energy"), 5.0, 0.8)]:
        bins.append(
            {
                "object": obj,
                "quantity": q,
                "pt_low": pt_low,
                "eta_low": eta_low,
                "passed": False,
                "eff_ok": True,
                "width_ratio": 1.3,
            }
        )
    bins.append(
        {
            "object": "muon",
            "quantity": "pt",
            "pt_low": 1.0,
            "eta_low": 0.0,
            "passed": True,
            "eff_ok": True,
            "width_ratio": 1.0,
        }
    )
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"rule": {"Delphes": {"bins": bins}}}))
    cmp_ = null.compare(null.card_bins([str(card)], "Delphes"), nb)
    assert len(cmp_) == 1
    assert cmp_.iloc[0]["what"] == "width"
    assert cmp_.iloc[0]["p_null"] == 0.0  # no null draw is 30 % off
    with pytest.raises(SystemExit, match="no 'ariasim fastsim' rule table"):
        null.card_bins([str(card)], "ariasim fastsim")


def test_too_few_particles_named(full_file: Path) -> None:
    full = null.load([str(full_file)])
    with pytest.raises(SystemExit, match="--n 40000: only 40000 muon particles"):
        null.null_draws(full, 40000, 1, "complement", seed=0)
