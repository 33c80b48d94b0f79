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
    modules_out: Annotated[
        Path | None,
        typer.Option(
            "--modules-out",
            show_default="none",
            help="Also write the per-object module blocks alone (.tcl, for splicing).",
        ),
    ] = None,
    bz: Annotated[
        float,
        typer.Option(
            "--bz", help="Solenoid field (T) for ParticlePropagator; finite, either sign."
        ),
    ] = 3.8,
    radius: Annotated[float, typer.Option("--radius", help="Field-volume radius (m), > 0.")] = 1.29,
    half_length: Annotated[
        float, typer.Option("--half-length", help="Field-volume half-length (m), > 0.")
    ] = 3.0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing --out / --modules-out files.")
    ] = False,
) -> None:
    """Write a complete, runnable Delphes card from a learned response model.

    Names must be identifiers, free text only goes into comments, the card is linted.
    """
    from ariasim.apps.collider.delphes import check_field, write_delphes_card
    from ariasim.apps.collider.model import ResponseModel
    from ariasim.errors import ConfigError
    from ariasim.utils import check_outputs

    check_outputs(
        {"--out": out, "--modules-out": modules_out},
        inputs={"RESPONSE": response},
        suffixes={"--out": (".tcl",), "--modules-out": (".tcl",)},
        overwrite=overwrite,
    )
    flags = {"radius_m": "--radius", "half_length_m": "--half-length", "bz_t": "--bz"}
    try:
        check_field(radius_m=radius, half_length_m=half_length, bz_t=bz)
    except ConfigError as exc:
        raise ConfigError(exc.message, parameter=flags.get(exc.parameter or "")) from None
    model = ResponseModel.load(response)
    write_delphes_card(
        model, out, modules_path=modules_out, bz_t=bz, radius_m=radius, half_length_m=half_length
    )
    typer.echo(f"wrote {out}" + (f" and {modules_out}" if modules_out else ""))
