"""``ariasim simulate collider``: the generic collider detector from the command line.

Module-level imports are kept light; the simulation itself is imported inside the command
so that ``ariasim --help`` stays fast.

Arguments:
    See :func:`collider_command`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["collider_command"]


def collider_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.parquet, .csv or .root).")],
    detector: Annotated[str, typer.Option("--detector", "-d",
                                 help="Detector name ('default', 'future') or path to a TOML file.")] = "default",
    particle: Annotated[list[str] | None, typer.Option("--particle", "-p",
        help="Particle-gun species (repeat or comma-separate for a mixture): e-, e+, mu-, mu+, "
             "gamma, pi+, pi-, K+, K-, p, pbar, n, K0L.")] = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Number of gun particles (one per event).")] = 10_000,
    pt_min: Annotated[float, typer.Option("--pt-min", help="Minimum transverse momentum [GeV].")] = 1.0,
    pt_max: Annotated[float, typer.Option("--pt-max", help="Maximum transverse momentum [GeV].")] = 100.0,
    log_pt: Annotated[bool, typer.Option("--log-pt/--flat-pt", help="Log-flat instead of flat pT.")] = False,
    eta_min: Annotated[float | None, typer.Option("--eta-min", help="Minimum eta (default -eta-max).")] = None,
    eta_max: Annotated[float, typer.Option("--eta-max", help="Maximum eta.")] = 2.5,
    phi_min: Annotated[float, typer.Option("--phi-min", help="Minimum phi [rad].")] = -3.141592653589793,
    phi_max: Annotated[float, typer.Option("--phi-max", help="Maximum phi [rad].")] = 3.141592653589793,
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="HepMC3 (.hepmc, .hepmc3) or LHE (.lhe, .lhe.gz) event file "
                                    "instead of the particle gun.")] = None,
    max_events: Annotated[int | None, typer.Option("--max-events", help="Read at most this many events.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same output).")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Particles per processing batch.")] = 20_000,
    report: Annotated[Path | None, typer.Option("--report", help="Write a validation report to this folder.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Simulate the generic collider detector: tracker, calorimeters, muon system, identification.

    One output row per truth particle with truth kinematics, reconstructed object type and
    kinematics, cluster energies and fitted track parameters with errors.
    """
    from ariasim.simulators.collider.run import run_collider

    species = [s.strip() for item in (particle or []) for s in item.split(",") if s.strip()]
    path = run_collider(
        out=out, detector=detector, species=species or None, n=n, pt_min_gev=pt_min,
        pt_max_gev=pt_max, log_pt=log_pt, eta_min=-eta_max if eta_min is None else eta_min,
        eta_max=eta_max, phi_min=phi_min, phi_max=phi_max, input_file=input_file,
        max_events=max_events, seed=seed, batch_size=batch_size, report_dir=report,
        progress=not quiet,
    )
    typer.echo(f"wrote {path}")
