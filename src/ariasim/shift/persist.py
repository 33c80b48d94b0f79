"""Save and load domain-shift models as a folder: ``model.json`` plus tensors or model text.

Nothing is pickled: the JSON holds the class name (looked up in a fixed table, never
imported from the file), the hyper-parameters and the small fitted state; network weights go
to ``weights.safetensors`` (a format that holds only named arrays), a LightGBM model to its own
text format. The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ariasim.errors import ConfigError, InputError
from ariasim.utils import atomic_path, read_json, to_jsonable

__all__ = ["FORMAT", "load", "read_tensors", "save_folder"]

FORMAT = "ariasim-shift-model"
VERSION = 1
JSON_NAME = "model.json"
TENSORS_NAME = "weights.safetensors"

# class name -> module; the only classes load() will build
_CLASSES = {
    "ChainedQuantileMorpher": "ariasim.shift.quantile",
    "ClassifierReweighter": "ariasim.shift.reweight",
    "FlowMorpher": "ariasim.shift.flow",
    "FlowMatchingMorpher": "ariasim.shift.flow_matching",
    "MorphReweighter": "ariasim.shift.chain",
}


def save_folder(
    path: str | Path,
    cls_name: str,
    params: Mapping[str, Any],
    state: Mapping[str, Any],
    *,
    tensors: Mapping[str, np.ndarray] | None = None,
    texts: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model folder atomically; refuses to replace an existing one unless
    ``overwrite``."""
    out = Path(path)
    if out.exists() and not overwrite:
        raise ConfigError(
            f"{str(out)!r} exists; pass overwrite=True to replace it", parameter="path"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{str(out)!r} is a file, not a folder", parameter="path")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "class": cls_name,
        "params": to_jsonable(dict(params)),
        "state": to_jsonable(dict(state)),
    }
    text = json.dumps(meta, indent=1, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(out, folder=True) as tmp:
        (tmp / JSON_NAME).write_text(text, encoding="utf-8")
        if tensors:
            from safetensors.numpy import save_file

            arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
            save_file(arrays, str(tmp / TENSORS_NAME))
        for name, body in (texts or {}).items():
            (tmp / name).write_text(body, encoding="utf-8")
    return out


def read_tensors(folder: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``weights.safetensors`` in ``folder`` (errors name the file)."""
    p = Path(folder) / TENSORS_NAME
    if not p.is_file():
        raise InputError("missing file of a saved model", path=p)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"not a safetensors file ({exc})", path=p) from None


def load(path: str | Path) -> Any:
    """Load any domain-shift model saved by a learner's ``save``.

    Raises:
        InputError: a missing folder or file, or a field that is not what ``save`` writes.

    Example:
        >>> import tempfile
        >>> load(tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ariasim.errors.InputError: file '...model.json': model file not found
    """
    d = Path(path)
    if not d.is_dir():
        raise InputError("model folder not found", path=d)
    jpath = d / JSON_NAME
    meta = read_json(jpath, what="model file")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(
            f"not an ariasim shift model (format must be {FORMAT!r})", path=jpath, field="format"
        )
    if meta.get("version") != VERSION:
        raise InputError(
            f"unsupported version {meta.get('version')!r}", path=jpath, field="version"
        )
    name = meta.get("class")
    if name not in _CLASSES:
        raise InputError(
            f"unknown model class {name!r} (known: {', '.join(sorted(_CLASSES))})",
            path=jpath,
            field="class",
        )
    for key in ("params", "state"):
        if not isinstance(meta.get(key), dict):
            raise InputError("must be a JSON object", path=jpath, field=key)
    cls = getattr(importlib.import_module(_CLASSES[name]), name)
    try:
        return cls.from_saved(meta["params"], meta["state"], d)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"malformed saved state ({type(exc).__name__}: {exc})", path=jpath
        ) from None
