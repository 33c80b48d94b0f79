"""``ariasim fit``: learn interpretable surrogates from simulation tables.

Module-level imports are light; the work is imported inside each command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["fit_response_command"]


def fit_response_command(
    inputs: Annotated[list[Path], typer.Argument(help="Full-simulation tables (ariasim simulate collider output).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Response model JSON to write.")],
    objects: Annotated[list[str] | None, typer.Option("--object", help="Object types to learn (repeat): muon, electron, photon, charged_hadron, neutral_hadron; default all present.")] = None,
    method: Annotated[str, typer.Option("--method", help="kan (KAN + symbolic extraction), sr (symbolic regression on binned estimates) or poly (polynomial likelihood); default kan.")] = "kan",
    eta_max: Annotated[float, typer.Option("--eta-max", help="|eta| acceptance (pseudorapidity, no unit); default 2.5.")] = 2.5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (split per object and region); default 0.")] = 0,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Subsample cap per fit (rows per region and quantity); default 20000.")] = 20_000,
    epochs: Annotated[int | None, typer.Option("--epochs", help="KAN training epochs (--method kan only); default 60.")] = None,
    stock_out: Annotated[Path | None, typer.Option("--stock-out", help="Also write the stock-form baseline model here.")] = None,
    events: Annotated[str, typer.Option("--events", help="Learn from all events, or only the even / odd event_id (hold the rest out for 'ariasim fastsim --compare --events odd').")] = "all",
    regions: Annotated[str, typer.Option("--regions", help="auto (learned |eta| regions) or single (one formula over the acceptance).")] = "auto",
    max_regions: Annotated[int, typer.Option("--max-regions", help="At most this many learned |eta| regions per quantity; default 4.")] = 4,
) -> None:
    """Learn efficiency, scale and resolution formulas per object type from a full simulation."""
    from ariasim.apps.collider.learn import learner_for_method
    from ariasim.apps.collider.workflow import run_fit_response

    # the one place where a method name becomes estimators
    learner = learner_for_method(method, epochs=epochs, regions=regions,
                                 max_regions=max_regions, objects=objects or None,
                                 eta_max=eta_max, max_rows=max_rows, random_state=seed)
    model = run_fit_response(learner, inputs, out, events=events, stock_out=stock_out)
    for name, obj in model.objects.items():
        md = obj.metadata
        typer.echo(f"{name}: method {md.get('method')}, {md.get('n_passed')}/{md.get('n_truth')} "
                   f"reconstructed, |eta| regions {md.get('regions')}, fit {md.get('fit_s', 0):.1f} s"
                   + (f" (symbolic extraction {md['symbolic_s']:.1f} s)" if md.get("symbolic_s") else ""))
        for fb in md.get("fallbacks", []):
            typer.echo(f"  {fb['quantity']} |eta| {fb['eta']}: {fb['fallback']}")
        for ne in md.get("numeric_edges", []):
            typer.echo(f"  numeric KAN edges (layer, in, out) in {ne['quantity']} |eta| "
                       f"{ne['eta']}: {ne['edges']}")
    typer.echo(f"wrote {out}")
