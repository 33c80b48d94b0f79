"""Small helpers shared by every module: random state, atomic file output, configs."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ariasim.errors import ConfigError, InputError, OutputError

__all__ = [
    "as_generator",
    "atomic_path",
    "check_outputs",
    "check_sample_weight",
    "clean_stale_temporaries",
    "ensure_dir",
    "human_bytes",
    "human_seconds",
    "load_toml",
    "physical_memory",
    "read_json",
    "run_folder",
    "spawn_seeds",
    "to_jsonable",
    "write_json",
]

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed``.

    ariasim never touches the global NumPy random state: every random function takes a
    seed or a generator and calls this.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    _check_seed(seed)
    return np.random.default_rng(seed)


def _check_seed(seed: Any) -> None:
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(
            f"expected an int, a SeedSequence or a Generator, got {seed!r}", parameter="seed"
        )
    if seed < 0:
        raise ConfigError(f"must be a non-negative integer, got {seed}", parameter="seed")


def spawn_seeds(seed: SeedLike, n: int) -> list[int]:
    """Derive ``n`` independent 64-bit integer seeds from ``seed`` (for workers, batches)."""
    if isinstance(seed, np.random.Generator):
        return [int(s) for s in seed.integers(0, 2**63 - 1, size=n)]
    _check_seed(seed)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in ss.spawn(n)]


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` (and its parents) if needed; an
    :class:`~ariasim.errors.OutputError` naming it if that is impossible."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder ({exc.strerror or exc})", path=p) from exc
    return p


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the hidden temporary files that an interrupted write of ``path`` left.

    :func:`atomic_path` names its temporary ``.NAME.PID.XXXX.tmp`` beside the target; a
    process killed during the write (SIGKILL, power loss) cannot remove it. The next
    write of the same target removes those whose process is gone. Returns the removed
    paths.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     stale = Path(tmp, ".hits.parquet.999999999.abc.tmp")
        ...     _ = stale.write_text("half")
        ...     [p.name for p in clean_stale_temporaries(Path(tmp, "hits.parquet"))]
        ['.hits.parquet.999999999.abc.tmp']
    """
    target = Path(path)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    prefix = f".{target.name}."
    for cand in target.parent.iterdir():
        name = cand.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                if cand.is_dir():
                    import shutil

                    shutil.rmtree(cand)
                else:
                    cand.unlink()
                removed.append(cand)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Readers never see a half-written file: on any exception the temporary file is
    removed and ``path`` is left as it was. Temporaries left by a killed process are
    removed by the next write (:func:`clean_stale_temporaries`). With ``folder=True``
    the temporary is a folder (a multi-file output written all or nothing); an existing
    folder at ``path`` is replaced.
    """
    target = Path(path)
    ensure_dir(target.parent)
    clean_stale_temporaries(target)
    try:
        prefix = f".{target.name}.{os.getpid()}."
        if folder:
            tmp = tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or exc})", path=target) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file private (0600); give it the permissions a plain
        # open() would have (0666 minus the umask) before it takes the target's name
        umask = os.umask(0)
        os.umask(umask)
        if tmp_path.exists():
            os.chmod(tmp_path, (0o777 if folder else 0o666) & ~umask)
        if folder and target.is_dir():
            import shutil

            old = target.with_name(f".{target.name}.{os.getpid()}.old.tmp")
            os.replace(target, old)
            os.replace(tmp_path, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp_path.is_dir():
                import shutil

                shutil.rmtree(tmp_path)
            else:
                tmp_path.unlink()
        raise


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    *,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    suffixes: Mapping[str, tuple[str, ...]] | None = None,
    folders: tuple[str, ...] = (),
    overwrite: bool = False,
) -> None:
    """Validate a command's output paths before any work starts.

    Each output is keyed by the flag (or parameter) that names it, so that the error
    names what the user typed. Checked: a file output is not an existing folder (and a
    folder output, listed in ``folders``, not an existing file); its suffix is one of
    ``suffixes[flag]`` (case-insensitive; ``.lhe.gz``-style double suffixes work); its
    folder exists or can be created, and is writable; no output is also an input; no two
    outputs are the same path; an existing output is only replaced with
    ``overwrite=True`` (``--overwrite``).

    Raises:
        ConfigError: a suffix, a clash or an existing output (exit status 2 in the CLI).
        OutputError: a folder that cannot be created or written.

    Example:
        >>> check_outputs({"--out": "hits.txt"}, suffixes={"--out": (".parquet", ".csv")})
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: --out: 'hits.txt' must end in .parquet or .csv
    """
    seen: dict[Path, str] = {}
    ins = {Path(p).resolve(): k for k, p in (inputs or {}).items() if p is not None}
    for flag, raw in outputs.items():
        if raw is None:
            continue
        p = Path(raw)
        if str(raw) == "" or p.name in ("", ".", ".."):
            raise ConfigError(f"{str(raw)!r} is not a file name", parameter=flag)
        is_folder = flag in folders
        allowed = (suffixes or {}).get(flag)
        if allowed and not str(p.name).lower().endswith(tuple(s.lower() for s in allowed)):
            raise ConfigError(f"{str(raw)!r} must end in " + " or ".join(allowed), parameter=flag)
        if p.is_dir() and not is_folder:
            raise ConfigError(f"{str(raw)!r} is a folder, not a file", parameter=flag)
        if is_folder and p.exists() and not p.is_dir():
            raise ConfigError(f"{str(raw)!r} is a file, not a folder", parameter=flag)
        r = p.resolve()
        if r in ins:
            raise ConfigError(
                f"{str(raw)!r} is also the input {ins[r]}: ariasim never overwrites its inputs",
                parameter=flag,
            )
        if r in seen:
            raise ConfigError(f"{str(raw)!r} is also the output {seen[r]}", parameter=flag)
        seen[r] = flag
        if p.exists() and not overwrite:
            raise ConfigError(
                f"{str(raw)!r} exists; pass --overwrite to replace it", parameter=flag
            )
        parent = p.parent if str(p.parent) else Path(".")
        existing = parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise OutputError(f"cannot create the folder: '{existing}' is a file", path=p)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"the folder '{existing}' is not writable", path=p)


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML configuration file, with errors that name the file."""
    p = Path(path)
    if not p.exists():
        raise InputError("configuration file not found", path=p)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", path=p) from exc


def read_json(path: str | os.PathLike[str], *, what: str = "file", max_depth: int = 64) -> Any:
    """Parse a JSON file, with errors that name it (missing file, unreadable, invalid JSON,
    nested deeper than ``max_depth`` levels of objects and lists, huge integer literals).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "deep.json"
        >>> _ = p.write_text("[" * 100_000 + "]" * 100_000)
        >>> read_json(p)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.InputError: file '...deep.json': invalid JSON: nested too deeply ...
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found", path=p)
    if p.is_dir():
        raise InputError(f"{what} is a folder, expected a JSON file", path=p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", path=p) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid JSON (not UTF-8 text): {exc}", path=p) from None
    too_deep = False
    data: Any = None
    try:
        data = json.loads(text)
    except RecursionError:
        too_deep = True
    except (json.JSONDecodeError, ValueError) as exc:  # ValueError: a huge integer literal
        raise InputError(f"invalid JSON: {exc}", path=p) from None
    # an explicit stack, not recursion: the depth is measured without a RecursionError
    stack: list[tuple[Any, int]] = [(data, 1)]
    deepest = max_depth + 1 if too_deep else 0
    while stack and deepest <= max_depth:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend(
                (v, depth + 1) for v in (node.values() if isinstance(node, dict) else node)
            )
    if deepest > max_depth:
        raise InputError(
            f"invalid JSON: nested too deeply (more than {max_depth} levels of objects and lists)",
            path=p,
        )
    return data


def write_json(
    path: str | os.PathLike[str], data: Any, *, indent: int = 2, default: Any = None
) -> Path:
    """Write ``data`` as JSON atomically (temporary name, then rename); returns the path."""
    text = json.dumps(data, indent=indent, default=default) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """Convert configs holding NumPy scalars, paths or dataclasses into JSON types.

    Non-finite floats become strings (JSON has no NaN), unknown objects their ``repr``.

    Example:
        >>> import numpy as np
        >>> to_jsonable({"n": np.int64(3), "x": np.array([0.5, np.inf])})
        {'n': 3, 'x': [0.5, 'inf']}
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def physical_memory() -> int:
    """The machine's physical memory [bytes] (16 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 16 * 2**30


def human_bytes(n: float) -> str:
    """A byte count for people: ``human_bytes(2.5e9) == '2.5 GB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000 or unit == "EB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"  # pragma: no cover


def human_seconds(s: float) -> str:
    """A duration for people: ``human_seconds(7200) == '2 h'``."""
    for unit, size in (("years", 3.156e7), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def run_folder(out: str | os.PathLike[str]) -> Path:
    """The hidden folder beside the output ``out`` that holds the finished parts of an
    interrupted run (``.NAME.run``), for ``--resume``.

    Example:
        >>> run_folder("data/hits.parquet").as_posix()
        'data/.hits.parquet.run'
    """
    p = Path(out)
    return p.with_name(f".{p.name}.run")


def run_key(data: Any) -> str:
    """A stable hash of a run's parameters (JSON, sorted keys), for :func:`open_run_folder`."""
    import hashlib

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def open_run_folder(
    out: str | os.PathLike[str],
    key: str,
    *,
    resume: bool,
    what: str = "run",
    extra: Mapping[str, Any] | None = None,
) -> tuple[Path, bool]:
    """The run folder of ``out`` (:func:`run_folder`), ready for a run with parameters
    ``key`` (:func:`run_key`); returns ``(folder, resumed)``.

    Without ``resume`` a folder left by an earlier run is discarded (a fresh start). With
    ``resume`` its finished parts are kept when it was made with the same ``key``; a folder
    of another run is refused with a :class:`~ariasim.errors.ConfigError` naming
    ``resume``. The manifest ``run.json`` records ``key`` (and ``extra``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folder, resumed = open_run_folder(Path(tmp, "hits.parquet"), "k1", resume=True)
        ...     folder.name, resumed, open_run_folder(folder.parent / "hits.parquet", "k1",
        ...                                           resume=True)[1]
        ('.hits.parquet.run', False, True)
    """
    import shutil

    folder = run_folder(out)
    manifest = folder / "run.json"
    resumed = False
    if folder.exists():
        if not resume:
            shutil.rmtree(folder)  # a stale run: start afresh
        else:
            try:
                old = json.loads(manifest.read_text())
            except (OSError, ValueError):
                old = {}
            if old.get("key") != key:
                raise ConfigError(
                    f"the interrupted {what} in '{folder}' used other options or inputs; "
                    "run again without --resume to start afresh",
                    parameter="resume",
                )
            resumed = True
    ensure_dir(folder)
    write_json(manifest, {"key": key, **dict(extra or {})})
    return folder, resumed


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """Per-row weights of a fit: ones for None, a scalar broadcast, else ``n`` finite
    non-negative values that do not sum to zero; an :class:`InputError` naming
    ``sample_weight`` otherwise.

    >>> check_sample_weight(None, 2).tolist(), check_sample_weight(2.0, 2).tolist()
    ([1.0, 1.0], [2.0, 2.0])
    """
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=float)
    w = np.full(n, float(w)) if w.ndim == 0 else w
    if w.shape != (n,):
        raise InputError(
            f"sample_weight has shape {w.shape}, expected ({n},)", column="sample_weight"
        )
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("sample_weight must be finite and >= 0", column="sample_weight")
    if not w.sum() > 0:
        raise InputError("sample_weight sums to zero: nothing to fit", column="sample_weight")
    return w
