"""Run the collider simulation end to end: gun or event file in, Parquet (+ report) out.

This is the one library function ``ariasim simulate collider`` calls. The defaults live
here and in :class:`~ariasim.simulators.collider.particles.ParticleGun` (the gun ranges);
the command line passes only the options the user set.

References:
    See :mod:`ariasim.simulators.collider.simulate`.

Arguments:
    See :func:`run_collider`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ariasim.errors import ConfigError
from ariasim.simulators.collider.detector import DetectorConfig, load_detector
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.simulators.collider.simulate import simulate
from ariasim.utils import spawn_seeds

__all__ = ["run_collider"]


def run_collider(*, out: str | Path, detector: str | Path | DetectorConfig = "default",
                 species: list[str] | None = None, n: int | None = None,
                 pt_min_gev: float | None = None, pt_max_gev: float | None = None,
                 log_pt: bool | None = None, eta_min: float | None = None,
                 eta_max: float | None = None, phi_min: float | None = None,
                 phi_max: float | None = None, input_file: str | Path | None = None,
                 max_events: int | None = None, seed: int = 1, batch_size: int = 20_000,
                 report_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Simulate and write one row per truth particle to ``out`` (with provenance).

    Either a particle gun (one particle per event) or an event file is simulated. Gun
    options left at ``None`` take :class:`ParticleGun`'s defaults (mu-, pT 1-100 GeV flat,
    |eta| < 2.5, phi in [-pi, pi]); giving a gun option together with ``input_file``, or
    ``max_events`` without it, is an error that names the parameter.

    Arguments:
        out: Output table path (.parquet, .csv, .root); written to a temporary name and
            renamed.
        detector: Detector name (``"default"``, ``"future"``), TOML path or configuration.
        species: Gun species, drawn with equal probability (default ``["mu-"]``).
        n: Number of gun particles (default 10000).
        pt_min_gev, pt_max_gev: Gun transverse-momentum range [GeV].
        log_pt: Draw pT log-flat instead of flat.
        eta_min, eta_max: Gun pseudorapidity range; ``eta_min`` defaults to ``-eta_max``.
        phi_min, phi_max: Gun azimuth range [rad].
        input_file: HepMC3 (.hepmc, .hepmc3) or LHE (.lhe, .lhe.gz) event file instead of
            the gun.
        max_events: Read at most this many events from ``input_file`` (default all).
        seed: Random seed (same seed and batch size, same output).
        batch_size: Particles per batch (whole events are kept together).
        report_dir: Also write a validation report there.
        progress: Show a progress bar.

    Returns:
        The path written.
    """
    from ariasim.io import write_table

    det = load_detector(detector)
    gun_seed, sim_seed = spawn_seeds(seed, 2)
    gun_options: dict[str, Any] = {
        "species": species, "n": n, "pt_min_gev": pt_min_gev, "pt_max_gev": pt_max_gev,
        "log_pt": log_pt, "eta_min": eta_min, "eta_max": eta_max, "phi_min": phi_min,
        "phi_max": phi_max}
    gun_options = {k: v for k, v in gun_options.items() if v is not None}
    if input_file is not None:
        from ariasim.simulators.collider.inputs import read_events

        if gun_options:
            name = next(iter(gun_options))
            raise ConfigError("is a particle-gun option; it does not apply with an input file",
                              parameter=name)
        particles = read_events(input_file, max_events=max_events)
        source: dict[str, Any] = {"input_file": str(input_file), "max_events": max_events}
    else:
        if max_events is not None:
            raise ConfigError("only applies with an input file", parameter="max_events")
        n_gun = gun_options.pop("n", 10_000)
        if n_gun < 1:
            raise ConfigError("must be >= 1", parameter="n")
        if "eta_max" in gun_options and "eta_min" not in gun_options:
            gun_options["eta_min"] = -gun_options["eta_max"]
        gun = ParticleGun(**gun_options)
        particles = gun.generate(n_gun, gun_seed)
        source = {"particle_gun": gun.to_dict(), "n": n_gun}
    table = simulate(particles, det, sim_seed, batch_size=batch_size, progress=progress)
    config = {"detector": det.to_dict(), "source": source, "batch_size": batch_size}
    path = write_table(table, out, producer="ariasim.simulators.collider", config=config, seed=seed)
    if report_dir is not None:
        from ariasim.simulators.collider.report import make_report

        make_report(table, det, report_dir)
    return Path(path)
