"""``ariasim simulate``: run a reference (first-principles) simulator.

Only light imports at module level; numba and the kernels load inside the commands, so
``ariasim --help`` stays fast.

References:
    D. Chirkin, NIM A 725 (2013) 141 (PPC); clsim (C. Kopper et al.).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["collider_command", "photons_command"]


def photons_command(
    config: Annotated[
        Path | None, typer.Argument(help="TOML configuration file (optional).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="flasher | cascade | muon.")
    ] = None,
    photons: Annotated[
        float | None, typer.Option("--photons", help="Flasher photons per event.")
    ] = None,
    energy: Annotated[float | None, typer.Option("--energy", help="Cascade energy (GeV).")] = None,
    length: Annotated[
        float | None, typer.Option("--length", help="Muon segment length (m).")
    ] = None,
    wavelength: Annotated[
        float | None, typer.Option("--wavelength", help="Flasher wavelength (nm).")
    ] = None,
    medium: Annotated[
        str | None, typer.Option("--medium", help="bulk-ice | water | constant | layered.")
    ] = None,
    ice_table: Annotated[
        Path | None, typer.Option("--ice-table", help="Layered ice table (icemodel.dat or table).")
    ] = None,
    absorption_length: Annotated[
        float | None, typer.Option("--absorption-length", help="Absorption length (m) (constant).")
    ] = None,
    scattering_length: Annotated[
        float | None,
        typer.Option("--scattering-length", help="Effective scattering length (m) (constant)."),
    ] = None,
    distance: Annotated[
        float | None,
        typer.Option(
            "--distance", help="Put a ring of modules at this distance (m) from the source."
        ),
    ] = None,
    geometry: Annotated[
        Path | None, typer.Option("--geometry", help="Module table (module_id, x, y, z).")
    ] = None,
    oversize: Annotated[
        float | None, typer.Option("--oversize", help="Module oversize factor.")
    ] = None,
    events: Annotated[int | None, typer.Option("--events", help="Number of events.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Threads (default: all).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Hits file (.parquet, .csv, .root).")
    ] = None,
    counts_out: Annotated[
        Path | None, typer.Option("--counts-out", help="Per-event per-module counts file.")
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar.")
    ] = True,
) -> None:
    """Simulate photons from a source through ice or water to optical modules.

    Flags override the configuration file, which overrides the built-in defaults
    (a 1e7-photon 405 nm flasher in bulk ice, six modules 20 m away).
    """
    from rich.console import Console
    from rich.table import Table

    from ariasim.io import write_table
    from ariasim.simulators.photons.config import build, resolve_config
    from ariasim.simulators.photons.simulate import simulate
    from ariasim.utils import load_toml

    file_cfg = load_toml(config) if config is not None else None
    flags: dict[str, Any] = {
        "seed": seed,
        "n_events": events,
        "n_threads": threads,
        "out": None if out is None else str(out),
        "counts_out": None if counts_out is None else str(counts_out),
        "source": {
            "type": source,
            "n_photons": photons,
            "energy_gev": energy,
            "length_m": length,
            "wavelength_nm": wavelength,
        },
        "medium": {
            "name": medium,
            "ice_table": None if ice_table is None else str(ice_table),
            "absorption_length_m": absorption_length,
            "effective_scattering_length_m": scattering_length,
        },
        "detector": {
            "distance_m": distance,
            "oversize": oversize,
            "geometry": None if geometry is None else str(geometry),
        },
    }
    if absorption_length is not None or scattering_length is not None:
        flags["medium"]["name"] = flags["medium"]["name"] or "constant"
    if geometry is not None:
        flags["detector"]["layout"] = "geometry"
    elif distance is not None:
        flags["detector"]["layout"] = "distance"
    cfg = resolve_config(file_cfg, flags)
    src, med, det, run = build(cfg)

    console = Console()
    result = simulate(src, med, det, progress=progress, **run)
    cfg["seed"] = result.config["seed"]
    write_table(
        result.hits, cfg["out"], producer="ariasim.simulators.photons", config=cfg, seed=cfg["seed"]
    )
    if cfg["counts_out"]:
        write_table(
            result.counts,
            cfg["counts_out"],
            producer="ariasim.simulators.photons",
            config=cfg,
            seed=cfg["seed"],
        )

    table = Table(title="ariasim photon simulation", show_header=False)
    table.add_row("source", str(cfg["source"]["type"]))
    table.add_row("medium", med.name)
    table.add_row("modules", f"{det.n_modules} (oversize {det.oversize:g})")
    table.add_row("events", f"{result.n_events}")
    table.add_row("photons propagated", f"{result.n_photons:,}")
    table.add_row("hits", f"{len(result.hits):,}")
    per_mod = result.hits.groupby("module_id").size()
    if len(per_mod):
        top = per_mod.sort_values(ascending=False).head(6)
        table.add_row(
            "hits per module",
            ", ".join(f"{k}: {v}" for k, v in top.items()) + (" ..." if len(per_mod) > 6 else ""),
        )
    table.add_row(
        "rate",
        f"{result.photons_per_second:,.0f} photons/s "
        f"({result.n_threads} threads, "
        f"{result.photons_per_cpu_second:,.0f} per CPU-s)",
    )
    table.add_row("hits file", str(cfg["out"]))
    console.print(table)


def collider_command(
    out: Annotated[Path, typer.Option(
        "--out", "-o",
        help="Output table (.parquet, .csv or .root; in ROOT files object_type is an integer "
             "code, see ariasim.simulators.collider.run.OBJECT_TYPE_CODES).")],
    detector: Annotated[str, typer.Option(
        "--detector", "-d",
        help="Detector name ('default', 'future') or path to a TOML file.")] = "default",
    particle: Annotated[list[str] | None, typer.Option(
        "--particle", "-p", show_default="mu-",
        help="Particle-gun species, drawn with equal probability (repeat or comma-separate "
             "for a mixture): e-, e+, mu-, mu+, gamma, pi+, pi-, K+, K-, p, pbar, n, K0L.")] = None,
    n: Annotated[int | None, typer.Option(
        "--n", "-n", show_default="10000",
        help="Number of gun particles (one per event).")] = None,
    pt_min: Annotated[float | None, typer.Option(
        "--pt-min", show_default="1 GeV", help="Minimum transverse momentum (GeV).")] = None,
    pt_max: Annotated[float | None, typer.Option(
        "--pt-max", show_default="100 GeV", help="Maximum transverse momentum (GeV).")] = None,
    log_pt: Annotated[bool | None, typer.Option(
        "--log-pt/--flat-pt", show_default="flat-pt",
        help="Draw pT log-flat (flat in ln pT) instead of flat.")] = None,
    eta_min: Annotated[float | None, typer.Option(
        "--eta-min", show_default="-eta-max", help="Minimum pseudorapidity.")] = None,
    eta_max: Annotated[float | None, typer.Option(
        "--eta-max", show_default="2.5", help="Maximum pseudorapidity.")] = None,
    phi_min: Annotated[float | None, typer.Option(
        "--phi-min", show_default="-pi", help="Minimum azimuth (rad).")] = None,
    phi_max: Annotated[float | None, typer.Option(
        "--phi-max", show_default="pi", help="Maximum azimuth (rad).")] = None,
    input_file: Annotated[Path | None, typer.Option(
        "--input", "-i", show_default="the particle gun",
        help="HepMC3 (.hepmc, .hepmc3) or LHE (.lhe, .lhe.gz) event file instead of the "
             "particle gun (then no gun option applies).")] = None,
    max_events: Annotated[int | None, typer.Option(
        "--max-events", show_default="all",
        help="Read at most this many events from --input.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", help="Random seed, >= 0 (same inputs and seed, same output).")] = 1,
    batch_size: Annotated[int, typer.Option(
        "--batch-size",
        help="Particles per progress step (the output does not depend on it).")] = 20_000,
    report: Annotated[Path | None, typer.Option(
        "--report", show_default="none",
        help="Also write a validation report to this folder (all or nothing).")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --out table (and --report folder).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run with the same options from its "
                         "finished blocks of 1000 events.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Simulate the generic collider detector: tracker, calorimeters, muon system, identification.

    One output row per truth particle with truth kinematics, reconstructed object type and
    kinematics, cluster energies and fitted track parameters with errors (GeV, mm, rad;
    columns in ariasim.simulators.collider.OUTPUT_SCHEMA).
    """
    from ariasim.errors import ConfigError
    from ariasim.simulators.collider.run import OUTPUT_SUFFIXES, run_collider
    from ariasim.utils import check_outputs

    # the outputs first, with the user's flags in the messages
    check_outputs({"--out": out, "--report": report}, inputs={"--input": input_file},
                  suffixes={"--out": OUTPUT_SUFFIXES}, folders=("--report",),
                  overwrite=overwrite)
    species = [s.strip() for item in (particle or []) for s in item.split(",") if s.strip()]
    if particle is not None and not species:
        raise ConfigError("no particle name given", parameter="--particle")
    try:
        path = run_collider(
            out=out, detector=detector, species=species or None, n=n, pt_min_gev=pt_min,
            pt_max_gev=pt_max, log_pt=log_pt, eta_min=eta_min, eta_max=eta_max,
            phi_min=phi_min, phi_max=phi_max, input_file=input_file, max_events=max_events,
            seed=seed, batch_size=batch_size, report_dir=report, progress=not quiet,
            overwrite=overwrite, resume=resume,
        )
    except KeyboardInterrupt:
        from ariasim.simulators.collider.run import run_folder

        if run_folder(out).exists():
            typer.echo(f"interrupted; the finished blocks are kept in {run_folder(out)}: run the "
                       "same command with --resume to continue", err=True)
        raise typer.Exit(130) from None
    except ConfigError as exc:
        flag = _COLLIDER_FLAGS.get(exc.parameter or "")
        if flag is None:
            raise
        prefix = f"parameter '{exc.parameter}': "
        text = str(exc)
        raise ConfigError(text[len(prefix):] if text.startswith(prefix) else text,
                          parameter=flag) from exc
    typer.echo(f"wrote {path}")


#: run_collider's parameter names -> the flags of ``simulate collider``.
_COLLIDER_FLAGS = {
    "out": "--out", "detector": "--detector", "species": "--particle", "n": "--n",
    "pt_min_gev": "--pt-min", "pt_max_gev": "--pt-max", "log_pt": "--log-pt",
    "eta_min": "--eta-min", "eta_max": "--eta-max", "phi_min": "--phi-min",
    "phi_max": "--phi-max", "input_file": "--input", "max_events": "--max-events",
    "seed": "--seed", "batch_size": "--batch-size", "report_dir": "--report",
    "resume": "--resume",
}
