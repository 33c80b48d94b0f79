"""Run the collider simulation end to end: gun or event file in, Parquet (+ report) out.

This is what ``ariasim simulate collider`` calls.

References:
    See :mod:`ariasim.simulators.collider.simulate`.

Arguments:
    See :func:`run_collider`.
"""

from __future__ import annotations

from pathlib import Path

from ariasim.errors import ConfigError
from ariasim.simulators.collider.detector import load_detector
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.simulators.collider.simulate import simulate
from ariasim.utils import spawn_seeds

__all__ = ["run_collider"]


def run_collider(*, out: Path, detector: str = "default", species: list[str] | None = None,
                 n: int = 10_000, pt_min_gev: float = 1.0, pt_max_gev: float = 100.0,
                 log_pt: bool = False, eta_min: float = -2.5, eta_max: float = 2.5,
                 phi_min: float = -3.141592653589793, phi_max: float = 3.141592653589793,
                 input_file: Path | None = None, max_events: int | None = None, seed: int = 1,
                 batch_size: int = 20_000, report_dir: Path | None = None,
                 progress: bool = True) -> Path:
    """Simulate and write one row per truth particle to ``out`` (with provenance).

    Arguments:
        out: Output table path (.parquet, .csv, .root).
        detector: Detector name or TOML path.
        species: Gun species (ignored with ``input_file``); default ``["mu-"]``.
        n: Number of gun particles.
        pt_min_gev, pt_max_gev, log_pt, eta_min, eta_max, phi_min, phi_max: Gun ranges.
        input_file: HepMC3 or LHE event file instead of the gun.
        max_events: Read at most this many events from ``input_file``.
        seed: Random seed.
        batch_size: Particles per batch.
        report_dir: Also write a validation report there.
        progress: Show a progress bar.
    """
    from ariasim.io import write_table

    det = load_detector(detector)
    gun_seed, sim_seed = spawn_seeds(seed, 2)
    if input_file is not None:
        from ariasim.simulators.collider.inputs import read_events

        particles = read_events(input_file, max_events=max_events)
        source = {"input_file": str(input_file), "max_events": max_events}
    else:
        if n < 1:
            raise ConfigError("must be >= 1", parameter="n")
        gun = ParticleGun(species or ["mu-"], pt_min_gev, pt_max_gev, log_pt, eta_min, eta_max,
                          phi_min, phi_max)
        particles = gun.generate(n, gun_seed)
        source = {"particle_gun": gun.to_dict(), "n": n}
    table = simulate(particles, det, sim_seed, batch_size=batch_size, progress=progress)
    config = {"detector": det.to_dict(), "source": source, "batch_size": batch_size}
    path = write_table(table, out, producer="ariasim.simulators.collider", config=config, seed=seed)
    if report_dir is not None:
        from ariasim.simulators.collider.report import make_report

        make_report(table, det, report_dir)
    return Path(path)
