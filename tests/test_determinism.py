"""Same inputs and seed, same bytes: each data-writing command run twice with different
threads / batch sizes writes byte-identical files (with ``SOURCE_DATE_EPOCH`` set, so the
provenance's creation time is fixed too; see :func:`ariasim.io.make_provenance`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ariasim.cli import main


def _run(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code in (0, None), argv


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def test_simulate_collider_bytes_independent_of_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = []
    for k, batch in enumerate(("700", "3000")):
        (tmp_path / str(k)).mkdir()
        monkeypatch.chdir(tmp_path / str(k))
        _run(
            [
                "simulate",
                "collider",
                "--particle",
                "mu-,e-",
                "--n",
                "1500",
                "--seed",
                "3",
                "--batch-size",
                batch,
                "--quiet",
                "--out",
                "c.parquet",
            ]
        )
        outs.append(_digest(tmp_path / str(k) / "c.parquet"))
    assert outs[0] == outs[1]


def test_simulate_photons_bytes_independent_of_threads(tmp_path: Path) -> None:
    outs = []
    for k, threads in enumerate(("1", "2")):
        out, counts = tmp_path / f"h{k}.parquet", tmp_path / f"n{k}.parquet"
        _run(
            [
                "simulate",
                "photons",
                "--photons",
                "2e5",
                "--distance",
                "5",
                "--seed",
                "9",
                "--threads",
                threads,
                "--no-progress",
                "--out",
                str(out),
                "--counts-out",
                str(counts),
            ]
        )
        outs.append((_digest(out), _digest(counts)))
    # n_threads is recorded in the provenance as requested: compare the data bytes
    import pyarrow.parquet as pq

    tabs = [pq.read_table(tmp_path / f"h{k}.parquet").replace_schema_metadata() for k in range(2)]
    assert tabs[0].equals(tabs[1])
    cnts = [pq.read_table(tmp_path / f"n{k}.parquet").replace_schema_metadata() for k in range(2)]
    assert cnts[0].equals(cnts[1])


def test_simulate_photons_same_bytes_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outs = []
    for k in range(2):  # the output path is recorded: the same relative name, two folders
        (tmp_path / str(k)).mkdir()
        monkeypatch.chdir(tmp_path / str(k))
        _run(
            [
                "simulate",
                "photons",
                "--photons",
                "2e5",
                "--distance",
                "5",
                "--seed",
                "9",
                "--threads",
                "1",
                "--no-progress",
                "--out",
                "h.parquet",
            ]
        )
        outs.append(_digest(tmp_path / str(k) / "h.parquet"))
    assert outs[0] == outs[1]


def test_every_option_shows_its_default() -> None:
    """``--help`` states every option's default: typer's own, the help text, or the
    "none" / "off" that ``ariasim.cli.main`` adds for unset options and off switches."""
    import typer

    from ariasim.cli import _show_every_default, app

    command = typer.main.get_command(app)
    _show_every_default(command)
    missing = []

    def walk(cmd, path):  # type: ignore[no-untyped-def]
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")
        for p in getattr(cmd, "params", []):
            if p.param_type_name != "option" or p.name == "help" or p.required:
                continue
            shown = isinstance(p.show_default, str) or p.show_default is not False
            if not (shown or "default" in (p.help or "")):
                missing.append(f"{path} {p.opts[0]}")

    walk(command, "ariasim")
    assert not missing, missing


def test_export_delphes_same_card_twice(tmp_path: Path) -> None:
    """The card is a function of the model file only."""
    import numpy as np

    from ariasim.apps.collider.model import ResponseModel
    from ariasim.apps.collider.stock import fit_stock
    from ariasim.simulators.collider import ParticleGun, simulate

    table = simulate(ParticleGun(["mu-"], 5, 50).generate(800, 1), "default", seed=2)
    model = fit_stock(table, objects=["muon"])
    path = tmp_path / "stock.json"
    model.save(path)
    assert isinstance(ResponseModel.load(path), ResponseModel)
    cards = []
    for k in range(2):
        out = tmp_path / f"card{k}.tcl"
        _run(["export", "delphes", str(path), "--out", str(out)])
        cards.append(out.read_bytes())
    assert cards[0] == cards[1] and np.char.count(cards[0].decode(), "ExecutionPath") >= 1


def test_compare_same_json_twice(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    for name, shift in (("a", 0.0), ("b", 0.2)):
        pd.DataFrame({"x": rng.normal(shift, 1, 400), "y": rng.exponential(1, 400)}).to_parquet(
            tmp_path / f"{name}.parquet"
        )
    outs = []
    for k in range(2):
        out = tmp_path / f"m{k}.json"
        _run(
            [
                "compare",
                str(tmp_path / "a.parquet"),
                str(tmp_path / "b.parquet"),
                "--seed",
                "4",
                "--json",
                str(out),
            ]
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_active_run_same_bytes_in_process_and_on_two_workers(tmp_path: Path) -> None:
    """The toy pipeline under online control: a second run in this process and a run on a
    two-worker LocalCluster write the same final.parquet (the controllers' cost model uses
    the pipeline's declared costs, so the decisions never depend on timing)."""
    toy = Path(__file__).resolve().parents[1] / "examples" / "active_toy.py"
    args = [
        "active",
        "run",
        "--pipeline",
        f"{toy}:make_pipeline",
        "--chunks",
        "7",
        "--chunk-size",
        "1500",
        "--warmup-chunks",
        "3",
        "--chunks-per-round",
        "2",
        "--seed",
        "5",
    ]
    digests = []
    for k, extra in enumerate(([], [], ["--workers", "2"])):
        _run([*args, "--out", str(tmp_path / f"run{k}"), *extra])
        digests.append(_digest(tmp_path / f"run{k}" / "final.parquet"))
    assert digests[0] == digests[1] == digests[2]


@pytest.mark.parametrize("method", ["reweight", "flow-matching"])
def test_shift_fit_and_apply_same_bytes_twice(tmp_path: Path, method: str) -> None:
    """Same tables and seed: the same model files, summary.json and corrected table (only
    timings.json and the report's time stamp differ)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    for name, mu in (("s", 0.0), ("t", 0.3)):
        pd.DataFrame(
            {"x": rng.normal(mu, 1, 400), "k": rng.poisson(3 + mu, 400), "c": rng.random(400)}
        ).to_parquet(tmp_path / f"{name}.parquet")
    extra = ["--epochs", "2"] if method != "reweight" else []
    digests = []
    for k in range(2):
        model, out = tmp_path / f"m{k}", tmp_path / f"o{k}.parquet"
        _run(
            [
                "shift",
                "fit",
                str(tmp_path / "s.parquet"),
                str(tmp_path / "t.parquet"),
                "--context",
                "c",
                "--method",
                method,
                "--seed",
                "3",
                "--out",
                str(model),
                *extra,
            ]
        )
        _run(["shift", "apply", str(model), str(tmp_path / "s.parquet"), "--out", str(out)])
        files = sorted(
            p.name for p in model.iterdir() if p.name not in ("timings.json", "report.html")
        )
        digests.append({f: (model / f).read_bytes() for f in files})
        digests[-1]["table"] = pd.read_parquet(out).to_numpy().tobytes()
    assert digests[0] == digests[1]
    assert "summary.json" in digests[0]
