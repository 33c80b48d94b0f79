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

__all__ = ["as_generator", "atomic_path", "ensure_dir", "load_toml", "read_json", "spawn_seeds", "to_jsonable", "write_json"]

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``seed``.

    ariasim never touches the global NumPy random state: every random function takes a
    seed or a generator and calls this.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        raise ConfigError(f"expected an int, a SeedSequence or a Generator, got {seed!r}",
                          parameter="seed")
    return np.random.default_rng(seed)


def spawn_seeds(seed: SeedLike, n: int) -> list[int]:
    """Derive ``n`` independent 64-bit integer seeds from ``seed`` (for workers, batches)."""
    if isinstance(seed, np.random.Generator):
        return [int(s) for s in seed.integers(0, 2**63 - 1, size=n)]
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Readers never see a half-written file: on any exception the temporary file is
    removed and ``path`` is left as it was.
    """
    target = Path(path)
    ensure_dir(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror or exc})", path=target) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file private (0600); give it the permissions a plain
        # open() would have (0666 minus the umask) before it takes the target's name
        umask = os.umask(0)
        os.umask(umask)
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


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


def read_json(path: str | os.PathLike[str], *, what: str = "file") -> Any:
    """Parse a JSON file, with errors that name it (missing file, invalid JSON)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found", path=p)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid JSON: {exc}", path=p) from exc


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int = 2,
               default: Any = None) -> Path:
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
