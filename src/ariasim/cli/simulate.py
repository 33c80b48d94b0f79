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

__all__ = ["PHOTON_FLAGS", "collider_command", "photons_command"]


#: Configuration key of each ``simulate photons`` flag (errors name the flag).
PHOTON_FLAGS = {
    "source.type": "--source",
    "source.n_photons": "--photons",
    "source.energy_gev": "--energy",
    "source.length_m": "--length",
    "source.wavelength_nm": "--wavelength",
    "medium.name": "--medium",
    "medium.ice_table": "--ice-table",
    "medium.absorption_length_m": "--absorption-length",
    "medium.effective_scattering_length_m": "--scattering-length",
    "detector.distance_m": "--distance",
    "detector.geometry": "--geometry",
    "detector.layout": "--distance/--geometry",
    "detector.oversize": "--oversize",
    "n_events": "--events",
    "seed": "--seed",
    "n_threads": "--threads",
    "out": "--out",
    "counts_out": "--counts-out",
    "resume": "--resume",
    "workers": "--workers",
    "scheduler": "--scheduler",
}

#: Help texts of the scale-out flags (both simulators).
_WORKERS_HELP = (
    "Run the work on this many worker processes of this machine (a Dask LocalCluster); "
    "same output as one process."
)
_SCHEDULER_HELP = (
    "Run the work on the Dask cluster of this scheduler (tcp://host:8786, e.g. from "
    "dask-jobqueue); the output's folder must be on a file system the workers share."
)


def photons_command(
    config: Annotated[
        Path | None, typer.Argument(help="TOML configuration file (optional).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="flasher | cascade | muon (default flasher).")
    ] = None,
    photons: Annotated[
        float | None,
        typer.Option("--photons", help="Flasher photons per event (flasher only; default 1e7)."),
    ] = None,
    energy: Annotated[
        float | None,
        typer.Option("--energy", help="Cascade energy (GeV) (cascade only; default 10)."),
    ] = None,
    length: Annotated[
        float | None,
        typer.Option("--length", help="Muon segment length (m) (muon only; default 10)."),
    ] = None,
    wavelength: Annotated[
        float | None,
        typer.Option("--wavelength", help="Flasher wavelength (nm) (flasher only; default 405)."),
    ] = None,
    medium: Annotated[
        str | None,
        typer.Option(
            "--medium",
            help="bulk-ice | water | constant | layered | ppc-ice (a PPC ice folder given as"
            " --ice-table; default bulk-ice).",
        ),
    ] = None,
    ice_table: Annotated[
        Path | None,
        typer.Option(
            "--ice-table",
            help="Ice table, PPC icemodel.dat or a table with depth_m, "
            "b_e400, a_dust400, dtau (layered only; default: "
            "the shipped synthetic example).",
        ),
    ] = None,
    absorption_length: Annotated[
        float | None,
        typer.Option(
            "--absorption-length",
            help="Absorption length (m) (constant: required; water: default 55).",
        ),
    ] = None,
    scattering_length: Annotated[
        float | None,
        typer.Option(
            "--scattering-length", help="Effective scattering length (m) (constant only; required)."
        ),
    ] = None,
    distance: Annotated[
        float | None,
        typer.Option(
            "--distance",
            help="Put a ring of modules at this distance (m) from the "
            "source (default layout; 20 m, 6 modules).",
        ),
    ] = None,
    geometry: Annotated[
        Path | None,
        typer.Option("--geometry", help="Module table with columns module_id, x, y, z (m)."),
    ] = None,
    oversize: Annotated[
        float | None,
        typer.Option("--oversize", help="Module oversize factor (>= 1; default 1)."),
    ] = None,
    events: Annotated[
        int | None, typer.Option("--events", help="Number of events (default 1).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 1).")] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Threads (default: all).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Hits file, .parquet, .csv or .root (default hits.parquet)."),
    ] = None,
    counts_out: Annotated[
        Path | None, typer.Option("--counts-out", help="Per-event per-module counts file.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing --out and --counts-out files.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run with the same options "
            "from its finished parts of 4,194,304 photons.",
        ),
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar.")
    ] = True,
    workers: Annotated[
        int | None, typer.Option("--workers", help=_WORKERS_HELP, show_default="none")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help=_SCHEDULER_HELP, show_default="none")
    ] = None,
) -> None:
    """Simulate photons from a source through ice or water to optical modules.

    Flags override the configuration file, which overrides the built-in defaults
    (a 1e7-photon 405 nm flasher in bulk ice, six modules 20 m away). A flag that does not
    apply to the chosen source, medium or layout is an error.
    """
    from rich.console import Console
    from rich.table import Table

    from ariasim.simulators.photons.run import run_photons
    from ariasim.simulators.photons.startup import skip_numba_extensions

    skip_numba_extensions()  # ~1 s of CPU: awkward and vector's numba hooks, unused here

    def text(p: Path | None) -> str | None:
        return None if p is None else str(p)

    layout = "geometry" if geometry is not None else ("distance" if distance is not None else None)
    flags: dict[str, Any] = {
        "seed": seed,
        "n_events": events,
        "n_threads": threads,
        "out": text(out),
        "counts_out": text(counts_out),
        "source": {
            "type": source,
            "n_photons": photons,
            "energy_gev": energy,
            "length_m": length,
            "wavelength_nm": wavelength,
        },
        "medium": {
            "name": medium,
            "ice_table": text(ice_table),
            "absorption_length_m": absorption_length,
            "effective_scattering_length_m": scattering_length,
        },
        "detector": {
            "layout": layout,
            "distance_m": distance,
            "oversize": oversize,
            "geometry": text(geometry),
        },
    }
    try:
        run = run_photons(
            config,
            flags,
            labels=PHOTON_FLAGS,
            progress=progress,
            overwrite=overwrite,
            resume=resume,
            workers=workers,
            scheduler=scheduler,
        )
    except KeyboardInterrupt:
        from ariasim.utils import run_folder

        folder = run_folder(out if out is not None else "hits.parquet")
        if folder.exists():
            typer.echo(
                f"interrupted; the finished parts are kept in {folder}: run the same "
                "command with --resume to continue",
                err=True,
            )
        raise typer.Exit(130) from None
    table = Table(title="ariasim photon simulation", show_header=False)
    for label, value in run.summary().items():
        table.add_row(label, value)
    Console().print(table)


def collider_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output table (.parquet, .csv or .root; in ROOT files object_type is an integer "
            "code, see ariasim.simulators.collider.run.OBJECT_TYPE_CODES).",
        ),
    ],
    detector: Annotated[
        str,
        typer.Option(
            "--detector", "-d", help="Detector name ('default', 'future') or path to a TOML file."
        ),
    ] = "default",
    particle: Annotated[
        list[str] | None,
        typer.Option(
            "--particle",
            "-p",
            show_default="mu-",
            help="Particle-gun species, drawn with equal probability (repeat or comma-separate "
            "for a mixture): e-, e+, mu-, mu+, gamma, pi+, pi-, K+, K-, p, pbar, n, K0L.",
        ),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option(
            "--n", "-n", show_default="10000", help="Number of gun particles (one per event)."
        ),
    ] = None,
    pt_min: Annotated[
        float | None,
        typer.Option("--pt-min", show_default="1 GeV", help="Minimum transverse momentum (GeV)."),
    ] = None,
    pt_max: Annotated[
        float | None,
        typer.Option("--pt-max", show_default="100 GeV", help="Maximum transverse momentum (GeV)."),
    ] = None,
    log_pt: Annotated[
        bool | None,
        typer.Option(
            "--log-pt/--flat-pt",
            show_default="flat-pt",
            help="Draw pT log-flat (flat in ln pT) instead of flat.",
        ),
    ] = None,
    eta_min: Annotated[
        float | None,
        typer.Option("--eta-min", show_default="-eta-max", help="Minimum pseudorapidity."),
    ] = None,
    eta_max: Annotated[
        float | None, typer.Option("--eta-max", show_default="2.5", help="Maximum pseudorapidity.")
    ] = None,
    phi_min: Annotated[
        float | None, typer.Option("--phi-min", show_default="-pi", help="Minimum azimuth (rad).")
    ] = None,
    phi_max: Annotated[
        float | None, typer.Option("--phi-max", show_default="pi", help="Maximum azimuth (rad).")
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            show_default="the particle gun",
            help="Truth particles instead of the particle gun (then no gun option applies): a "
            "particle table (.parquet, .csv, .root; needs event_id, pdg and px_gev, py_gev, "
            "pz_gev or pt_gev, eta, phi; optional e_gev, mass_gev, charge, vx_mm, vy_mm, "
            "vz_mm; GeV, rad, mm; see the README's particle-table schema), e.g. from "
            "--truth-only, or HepMC3 (.hepmc, .hepmc3) / LHE (.lhe, .lhe.gz) events.",
        ),
    ] = None,
    truth_only: Annotated[
        bool,
        typer.Option(
            "--truth-only",
            help="Write only the truth-particle table (of the gun, or of --input) to --out and "
            "simulate nothing: the input of --input and of 'ariasim fastsim --input'. Same "
            "seed, same particles as the full run.",
        ),
    ] = False,
    max_events: Annotated[
        int | None,
        typer.Option(
            "--max-events", show_default="all", help="Read at most this many events from --input."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed, >= 0 (same inputs and seed, same output).")
    ] = 1,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", help="Particles per progress step (the output does not depend on it)."
        ),
    ] = 20_000,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            show_default="none",
            help="Also write a validation report to this folder (all or nothing).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing --out table (and --report folder)."),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run with the same options from its "
            "finished blocks of 1000 events.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", help=_WORKERS_HELP, show_default="none")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help=_SCHEDULER_HELP, show_default="none")
    ] = None,
) -> None:
    """Simulate the generic collider detector: tracker, calorimeters, muon system, identification.

    One output row per truth particle with truth kinematics, reconstructed object type and
    kinematics, cluster energies and fitted track parameters with errors (GeV, mm, rad;
    columns in ariasim.simulators.collider.OUTPUT_SCHEMA). With --truth-only, the truth
    particles alone (ariasim.simulators.collider.PARTICLE_SCHEMA).
    """
    from ariasim.errors import ConfigError
    from ariasim.simulators.collider.run import OUTPUT_SUFFIXES, run_collider
    from ariasim.utils import check_outputs

    # the outputs first, with the user's flags in the messages
    check_outputs(
        {"--out": out, "--report": report},
        inputs={"--input": input_file},
        suffixes={"--out": OUTPUT_SUFFIXES},
        folders=("--report",),
        overwrite=overwrite,
    )
    species = [s.strip() for item in (particle or []) for s in item.split(",") if s.strip()]
    if particle is not None and not species:
        raise ConfigError("no particle name given", parameter="--particle")
    try:
        path = run_collider(
            out=out,
            detector=detector,
            species=species or None,
            n=n,
            pt_min_gev=pt_min,
            pt_max_gev=pt_max,
            log_pt=log_pt,
            eta_min=eta_min,
            eta_max=eta_max,
            phi_min=phi_min,
            phi_max=phi_max,
            input_file=input_file,
            max_events=max_events,
            seed=seed,
            batch_size=batch_size,
            report_dir=report,
            progress=not quiet,
            overwrite=overwrite,
            resume=resume,
            workers=workers,
            scheduler=scheduler,
            truth_only=truth_only,
        )
    except KeyboardInterrupt:
        from ariasim.simulators.collider.run import run_folder

        if run_folder(out).exists():
            typer.echo(
                f"interrupted; the finished blocks are kept in {run_folder(out)}: run the "
                "same command with --resume to continue",
                err=True,
            )
        raise typer.Exit(130) from None
    except ConfigError as exc:
        flag = _COLLIDER_FLAGS.get(exc.parameter or "")
        if flag is None:
            raise
        prefix = f"parameter '{exc.parameter}': "
        text = str(exc)
        raise ConfigError(
            text[len(prefix) :] if text.startswith(prefix) else text, parameter=flag
        ) from exc
    typer.echo(f"wrote {path}")


#: run_collider's parameter names -> the flags of ``simulate collider``.
_COLLIDER_FLAGS = {
    "out": "--out",
    "detector": "--detector",
    "species": "--particle",
    "n": "--n",
    "pt_min_gev": "--pt-min",
    "pt_max_gev": "--pt-max",
    "log_pt": "--log-pt",
    "eta_min": "--eta-min",
    "eta_max": "--eta-max",
    "phi_min": "--phi-min",
    "phi_max": "--phi-max",
    "input_file": "--input",
    "max_events": "--max-events",
    "seed": "--seed",
    "batch_size": "--batch-size",
    "report_dir": "--report",
    "resume": "--resume",
    "workers": "--workers",
    "scheduler": "--scheduler",
    "truth_only": "--truth-only",
}
