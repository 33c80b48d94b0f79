"""Run the collider simulation end to end: gun, particle table or events in, table (+ report) out.

This is the one library function ``ariasim simulate collider`` calls. The defaults live
here and in :class:`~ariasim.simulators.collider.particles.ParticleGun` (the gun ranges);
the command line passes only the options the user set.

Everything that can be checked is checked before the simulation starts: the outputs
(:func:`ariasim.utils.check_outputs`), the detector, the gun parameters and the size of
the run (:func:`check_size`). The work is done in the fixed blocks of events of
:func:`~ariasim.simulators.collider.simulate.blocks`; each finished block is written
atomically to a hidden run folder beside the output (``.NAME.run``), so an interrupted
run continues with ``resume=True`` (``--resume``) and gives the same table as an
uninterrupted one. The folder is removed once the output is written.

With ``workers`` (``--workers``) or ``scheduler`` (``--scheduler``) the blocks run as
tasks on a Dask cluster (:mod:`ariasim.parallel`: worker processes on this machine, or a
running scheduler); each worker writes its finished blocks into the run folder, which must
then be on a file system the workers share. The table is the same as that of a
single-process run, byte for byte.

References:
    See :mod:`ariasim.simulators.collider.simulate`.

Arguments:
    See :func:`run_collider`.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ariasim.errors import ConfigError, check_int
from ariasim.simulators.collider.detector import DetectorConfig, load_detector
from ariasim.simulators.collider.particles import ParticleGun
from ariasim.simulators.collider.simulate import blocks, iter_blocks
from ariasim.utils import human_bytes, human_seconds, physical_memory, run_folder, spawn_seeds

__all__ = [
    "BYTES_PER_PARTICLE",
    "OBJECT_TYPE_CODES",
    "OUTPUT_SUFFIXES",
    "SECONDS_PER_PARTICLE",
    "check_size",
    "run_collider",
    "run_folder",
]

#: Output formats of the table.
OUTPUT_SUFFIXES = (".parquet", ".csv", ".root")
#: ROOT trees hold numbers only: ``object_type`` is written there as these codes (the
#: mapping is stored in the file's provenance, ``config.object_type_codes``).
OBJECT_TYPE_CODES = {
    "none": 0,
    "electron": 1,
    "photon": 2,
    "muon": 3,
    "charged_hadron": 4,
    "neutral_hadron": 5,
}
#: Peak memory per particle [bytes]: measured 350 B per output row and 120 B per truth row
#: (pandas ``memory_usage(deep=True)``); the blocks, their concatenation and the Arrow
#: copy at writing hold each about once more, hence about 1 kB.
BYTES_PER_PARTICLE = 1000
#: CPU time per particle [s] on one core of the development machine (gun, pT 1-100 GeV
#: flat, default detector, kernels compiled): 0.33 ms for muons, 3.1 ms for a mixture of
#: e-, pi+, gamma, mu-, n (hadron and electron showers dominate). Used for the estimate
#: shown when a run is refused; the larger one is taken when hadrons or electrons are in.
SECONDS_PER_PARTICLE = {"muon": 0.33e-3, "other": 3.1e-3}


def check_size(
    n_particles: int,
    *,
    muons_only: bool = False,
    parameter: str = "n",
    memory_bytes: int | None = None,
) -> None:
    """Refuse, before any work, a run whose table cannot fit in memory.

    The whole output table is held in memory before it is written; a run needing more
    than half of the physical memory is refused with an estimate of its memory and
    CPU time (:data:`BYTES_PER_PARTICLE`, :data:`SECONDS_PER_PARTICLE`).

    Arguments:
        n_particles: Number of truth particles.
        muons_only: Use the (faster) muon time per particle in the estimate.
        parameter: The parameter named in the error.
        memory_bytes: Memory available (default: the physical memory).

    Example:
        >>> check_size(10_000)
        >>> check_size(10**12)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'n': 1000000000000 particles need about 1 PB ...
    """
    mem = physical_memory() if memory_bytes is None else memory_bytes
    need = n_particles * BYTES_PER_PARTICLE
    if need > mem / 2:
        cpu = n_particles * SECONDS_PER_PARTICLE["muon" if muons_only else "other"]
        most = int(mem / 2 / BYTES_PER_PARTICLE)
        raise ConfigError(
            f"{n_particles} particles need about {human_bytes(need)} of memory (this machine "
            f"has {human_bytes(mem)}) and about {human_seconds(cpu)} of CPU time; simulate "
            f"at most {most} per run (several runs with different --seed)",
            parameter=parameter,
        )


def run_collider(
    *,
    out: str | Path,
    detector: str | Path | DetectorConfig = "default",
    species: list[str] | None = None,
    n: int | None = None,
    pt_min_gev: float | None = None,
    pt_max_gev: float | None = None,
    log_pt: bool | None = None,
    eta_min: float | None = None,
    eta_max: float | None = None,
    phi_min: float | None = None,
    phi_max: float | None = None,
    input_file: str | Path | None = None,
    max_events: int | None = None,
    seed: int = 1,
    batch_size: int = 20_000,
    report_dir: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    truth_only: bool = False,
    _after_block: Callable[[int], None] | None = None,
) -> Path:
    """Simulate and write one row per truth particle to ``out`` (with provenance).

    Either a particle gun (one particle per event), a particle table or an event file is
    simulated (or, with ``truth_only``, only its particles written). Gun
    options left at ``None`` take :class:`ParticleGun`'s defaults (mu-, pT 1-100 GeV flat,
    |eta| < 2.5, phi in [-pi, pi]); giving a gun option together with ``input_file``, or
    ``max_events`` without it, is an error that names the parameter. All parameters and
    outputs are checked before the simulation starts.

    Arguments:
        out: Output table path (.parquet, .csv, .root); written to a temporary name and
            renamed. In ROOT files ``object_type`` is stored as the integer codes of
            :data:`OBJECT_TYPE_CODES`.
        detector: Detector name (``"default"``, ``"future"``), TOML path or configuration.
        species: Gun species, drawn with equal probability (default ``["mu-"]``).
        n: Number of gun particles (default 10000).
        pt_min_gev, pt_max_gev: Gun transverse-momentum range [GeV].
        log_pt: Draw pT log-flat instead of flat.
        eta_min, eta_max: Gun pseudorapidity range; ``eta_min`` defaults to ``-eta_max``.
        phi_min, phi_max: Gun azimuth range [rad].
        input_file: Truth particles instead of the gun: a particle table (.parquet, .csv,
            .root; columns of :data:`~ariasim.simulators.collider.schema.PARTICLE_SCHEMA`)
            or a HepMC3 (.hepmc, .hepmc3) or LHE (.lhe, .lhe.gz) event file, read by
            :func:`~ariasim.simulators.collider.inputs.read_particles`.
        max_events: Read at most this many events from ``input_file`` (default all).
        seed: Random seed, >= 0 (same inputs and seed, same table, whatever the batch
            size, threads or interruptions).
        batch_size: Particles per progress step; it does not change the output.
        report_dir: Also write a validation report to this folder (all or nothing).
        progress: Show a progress bar.
        overwrite: Replace an existing output (and report folder).
        resume: Continue an interrupted run from its finished blocks (same parameters
            needed; a run folder made with other parameters is an error).
        workers: Simulate the blocks on this many worker processes of this machine (a
            Dask ``LocalCluster``).
        scheduler: Simulate the blocks on the Dask cluster of this scheduler address.
        client: Simulate the blocks with this Dask client (its cluster set up by the
            caller).
        truth_only: Write only the truth-particle table (gun or input, the schema that
            ``input_file`` reads) and simulate nothing; the gun draws the same particles
            as in a full run with the same seed.

    Returns:
        The path written.
    """
    from ariasim.io import write_table
    from ariasim.utils import atomic_path, check_outputs

    check_outputs(
        {"out": out, "report_dir": report_dir},
        inputs={"input_file": input_file},
        suffixes={"out": OUTPUT_SUFFIXES},
        folders=("report_dir",),
        overwrite=overwrite,
    )
    from ariasim.parallel import NOT_BOTH, check_workers, get_client

    if workers is not None:
        check_workers(workers)
    if workers is not None and scheduler is not None:
        raise ConfigError(NOT_BOTH, parameter="workers")
    check_int("seed", seed, 0)
    check_int("batch_size", batch_size, 1)
    if max_events is not None:
        check_int("max_events", max_events, 1)
    try:
        det = load_detector(detector)
    except ConfigError as exc:
        if exc.parameter == "detector":
            raise
        raise ConfigError(str(exc), parameter="detector") from exc
    gun_seed, sim_seed = spawn_seeds(seed, 2)
    gun_options: dict[str, Any] = {
        "species": species,
        "n": n,
        "pt_min_gev": pt_min_gev,
        "pt_max_gev": pt_max_gev,
        "log_pt": log_pt,
        "eta_min": eta_min,
        "eta_max": eta_max,
        "phi_min": phi_min,
        "phi_max": phi_max,
    }
    gun_options = {k: v for k, v in gun_options.items() if v is not None}
    if truth_only:
        for name, value in (
            ("report_dir", report_dir),
            ("resume", resume or None),
            ("workers", workers),
            ("scheduler", scheduler),
        ):
            if value is not None:
                raise ConfigError(
                    "does not apply with truth_only (no detector simulation)", parameter=name
                )
    if input_file is not None:
        from ariasim.simulators.collider.inputs import read_particles

        if gun_options:
            name = next(iter(gun_options))
            raise ConfigError(
                "is a particle-gun option; it does not apply with an input file", parameter=name
            )
        particles = read_particles(input_file, max_events=max_events)
        check_size(len(particles), parameter="input_file")
        source: dict[str, Any] = {"input_file": str(input_file), "max_events": max_events}
    else:
        if max_events is not None:
            raise ConfigError("only applies with an input file", parameter="max_events")
        n_gun = gun_options.pop("n", 10_000)
        check_int("n", n_gun, 1)
        if "eta_max" in gun_options and "eta_min" not in gun_options:
            gun_options["eta_min"] = -gun_options["eta_max"]
        gun = ParticleGun(**gun_options)
        check_size(int(n_gun), muons_only=set(gun.species) <= {"mu-", "mu+"})
        particles = gun.generate(n_gun, gun_seed)
        source = {"particle_gun": gun.to_dict(), "n": n_gun}
    if truth_only:
        # the particle table alone: what --input reads back (same seed, same particles)
        path = write_table(
            particles,
            out,
            producer="ariasim.simulators.collider",
            config={"source": source, "truth_only": True},
            seed=seed,
        )
        return Path(path)
    config: dict[str, Any] = {"detector": det.to_dict(), "source": source}
    root = Path(out).name.lower().endswith(".root")
    if root:
        config["object_type_codes"] = dict(OBJECT_TYPE_CODES)

    with get_client(workers, scheduler) as made:
        table = _simulate_in_blocks(
            particles,
            det,
            sim_seed,
            out=out,
            config=config,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
            resume=resume,
            after_block=_after_block,
            client=client if client is not None else made,
        )
    if root:
        codes = table["object_type"].map(OBJECT_TYPE_CODES)
        table = table.assign(object_type=codes.to_numpy(np.int8))
    if report_dir is None:
        path = write_table(
            table, out, producer="ariasim.simulators.collider", config=config, seed=seed
        )
    else:
        from ariasim.simulators.collider.report import make_report

        # the report folder and the table are written both or neither
        with atomic_path(report_dir, folder=True) as tmp:
            make_report(table, det, tmp)
            path = write_table(
                table, out, producer="ariasim.simulators.collider", config=config, seed=seed
            )
    shutil.rmtree(run_folder(out), ignore_errors=True)
    return Path(path)


def _simulate_in_blocks(
    particles: Any,
    det: DetectorConfig,
    sim_seed: int,
    *,
    out: str | Path,
    config: dict[str, Any],
    seed: int,
    batch_size: int,
    progress: bool,
    resume: bool,
    after_block: Callable[[int], None] | None,
    client: Any = None,
) -> Any:
    """Simulate block by block; each finished block goes to the run folder (atomically;
    on a Dask cluster when ``client`` is given, see :func:`_simulate_blocks_on`)."""
    import pandas as pd

    from ariasim.io import read_table, write_table
    from ariasim.simulators.collider.schema import check_output, empty_output
    from ariasim.utils import open_run_folder, run_key

    particles = particles.reset_index(drop=True)
    ranges = blocks(particles["event_id"].to_numpy(np.int64))
    seeds = spawn_seeds(sim_seed, max(len(ranges), 1))
    key = run_key({"config": config, "seed": seed, "blocks": ranges})
    folder, resumed = open_run_folder(out, key, resume=resume, extra={"n_blocks": len(ranges)})
    done: dict[int, Any] = {}
    for k in range(len(ranges) if resumed else 0):
        part = folder / f"block-{k:06d}.parquet"
        if part.exists():
            done[k] = read_table(part)
    if resumed:  # blocks finished on a Dask cluster count too
        from ariasim.parallel import done_chunks, read_parts

        for k in sorted(done_chunks(folder) - set(done)):
            done[k] = read_parts(folder, "rows", [k])
    if client is not None:
        done = _simulate_blocks_on(
            client,
            folder,
            particles,
            det,
            ranges,
            seeds,
            progress=progress,
            after=after_block,
            finished=done,
        )
    for k, table in iter_blocks(
        particles, det, ranges, seeds, batch_size=batch_size, progress=progress, done=set(done)
    ):
        write_table(
            table,
            folder / f"block-{k:06d}.parquet",
            producer="ariasim.simulators.collider",
            seed=seed,
        )
        done[k] = table
        if after_block is not None:
            after_block(k)
    parts = [done[k] for k in range(len(ranges))]
    result = pd.concat(parts, ignore_index=True) if parts else empty_output()
    check_output(result)
    if len(result) != len(particles):  # pragma: no cover - an internal error
        raise RuntimeError(f"{len(result)} output rows for {len(particles)} particles")
    return result


def _collider_block(det: DetectorConfig, task: Any) -> dict[str, Any]:
    """Simulate one block (the function of each Dask task): its output rows."""
    from ariasim.simulators.collider.simulate import simulate_batch

    rows = simulate_batch(task.payload["particles"], det, np.random.default_rng(task.seed))
    return {"rows": rows}


def _simulate_blocks_on(
    client: Any,
    folder: Path,
    particles: Any,
    det: DetectorConfig,
    ranges: list[tuple[int, int]],
    seeds: list[int],
    *,
    progress: bool,
    after: Callable[[int], None] | None,
    finished: dict[int, Any],
) -> dict[int, Any]:
    """Run the blocks not yet in ``folder`` as Dask tasks
    (:func:`ariasim.parallel.run_chunks`); returns every block's rows. ``finished``: the
    rows of blocks finished in one process (an interrupted run resumed on a cluster),
    which are not redone."""
    import functools

    from ariasim.parallel import ChunkTask, done_chunks, read_parts, run_chunks, write_chunk

    for k in sorted(set(finished) - done_chunks(folder)):
        write_chunk(folder, k, {"rows": finished[k]}, {"index": k})
    seen = done_chunks(folder)
    tasks = [
        ChunkTask(k, seeds[k], {"particles": particles.iloc[lo:hi]})
        for k, (lo, hi) in enumerate(ranges)
        if k not in seen  # a finished block's particles need not travel
    ]
    sizes = [hi - lo for lo, hi in ranges]
    with contextlib.ExitStack() as stack:
        bar = task = None
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            bar = stack.enter_context(
                Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                )
            )
            task = bar.add_task(
                f"collider ({det.name}): {len(tasks)} blocks on the workers",
                total=sum(sizes),
                completed=sum(sizes[k] for k in seen),
            )

        def advance(k: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, advance=sizes[k])
            if after is not None:
                after(k)

        run_chunks(
            functools.partial(_collider_block, det), tasks, folder, client=client, on_chunk=advance
        )
    return {k: read_parts(folder, "rows", [k]) for k in range(len(ranges))}
