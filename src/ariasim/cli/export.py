"""``ariasim export``: write learned formulas for other tools (a Delphes card).

References:
    J. de Favereau et al. (DELPHES 3), JHEP 02 (2014) 057.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["export_delphes_command"]


def export_delphes_command(
    response: Annotated[Path, typer.Argument(help="Response model JSON (ariasim fit response).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Delphes card (.tcl) to write.")],
    modules_out: Annotated[Path | None, typer.Option("--modules-out", help="Also write the per-object module blocks alone (for splicing).")] = None,
    bz: Annotated[float, typer.Option("--bz", help="Solenoid field (T) for ParticlePropagator.")] = 3.8,
    radius: Annotated[float, typer.Option("--radius", help="Field-volume radius (m).")] = 1.29,
    half_length: Annotated[float, typer.Option("--half-length", help="Field-volume half-length (m).")] = 3.0,
) -> None:
    """Write a complete, runnable Delphes card from a learned response model."""
    from ariasim.apps.collider.delphes import write_delphes_card
    from ariasim.apps.collider.model import ResponseModel

    model = ResponseModel.load(response)
    write_delphes_card(model, out, modules_path=modules_out, bz_t=bz, radius_m=radius,
                       half_length_m=half_length)
    typer.echo(f"wrote {out}" + (f" and {modules_out}" if modules_out else ""))
