"""Event tables on disk and in memory.

On disk an event table is Parquet (the default), CSV or a ROOT TTree. In memory it is a
:class:`pandas.DataFrame` (or a dict of equal-length NumPy arrays, accepted everywhere a
table is). Ragged per-event data, such as the hits of each event, is a *flat* table with
an ``event_id`` column; :func:`to_awkward` and :func:`from_awkward` convert to and from
an awkward array of records with one list per event.

Every file ariasim writes carries its provenance (producer, ariasim version, the full
configuration, seed, creation time) in the file's own metadata: Parquet key-value
metadata, a ``# ariasim-provenance:`` comment line at the top of a CSV, or a string
object beside the tree in a ROOT file. :func:`read_provenance` returns it as a dict.

Writes are atomic: the file is written under a temporary name in the same folder and
renamed onto the target only when complete, so no reader ever sees half a file.

Reading validates: a missing file, an unknown format, missing required columns, NaN or
inf in columns that must be finite, and columns of the wrong kind each raise
:class:`~ariasim.errors.InputError` naming the file and the column.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ariasim import __version__
from ariasim.errors import ConfigError, InputError
from ariasim.utils import atomic_path, to_jsonable

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made or read
    import pandas as pd

__all__ = [
    "FORMATS",
    "from_awkward",
    "make_provenance",
    "read_numeric_columns",
    "read_provenance",
    "read_table",
    "to_awkward",
    "validate_table",
    "write_table",
]

#: File suffixes ariasim reads and writes, by format name.
FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq"),
    "csv": (".csv",),
    "root": (".root",),
}

_PROVENANCE_KEY = "ariasim.provenance"
_CSV_PREFIX = "# ariasim-provenance: "
_ROOT_PROVENANCE = "ariasim_provenance"
_DEFAULT_TREE = "events"
_ROOT_TREE_CLASSES = ("TTree", "ROOT::RNTuple")

TableLike: TypeAlias = "pd.DataFrame | Mapping[str, Any]"


# --------------------------------------------------------------------------- helpers


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(
                f"unknown format {fmt!r}; expected one of {sorted(FORMATS)}", parameter="format"
            )
        return fmt
    suffix = path.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for ss in FORMATS.values() for s in ss)
    raise InputError(
        f"unknown table format '{suffix or '(no suffix)'}'; expected one of {known}", path=path
    )


def _creation_time() -> _dt.datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (reproducible output)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            return _dt.datetime.fromtimestamp(int(epoch), _dt.UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise ConfigError(
                f"must be whole seconds since 1970, got {epoch!r}", parameter="SOURCE_DATE_EPOCH"
            ) from exc
    return _dt.datetime.now(_dt.UTC)


def make_provenance(
    producer: str,
    config: Mapping[str, Any] | None = None,
    seed: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the provenance record stored with every table ariasim writes.

    Arguments:
        producer: The simulator or method that made the table, e.g.
            ``"ariasim.simulators.photons"``.
        config: The full, resolved configuration of the producer.
        seed: The seed the producer was given (an int, or None if unseeded).
        extra: Further JSON-able entries (e.g. ``input_files``).

    The creation time is the only entry that differs between two runs with the same
    inputs and seed. For byte-identical files (reproducible builds, regression tests) set
    the environment variable ``SOURCE_DATE_EPOCH`` (seconds since 1970, the
    reproducible-builds.org convention): the time recorded is then that one.

    Example:
        >>> import os
        >>> os.environ["SOURCE_DATE_EPOCH"] = "0"
        >>> make_provenance("ariasim.simulators.photons", {"n_events": 1}, 7)["created_utc"]
        '1970-01-01T00:00:00+00:00'
        >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    if not producer:
        raise ConfigError("a producer name is required", parameter="producer")
    seed_value = seed if seed is None or isinstance(seed, (int, np.integer)) else repr(seed)
    record = {
        "producer": producer,
        "ariasim_version": __version__,
        "config": to_jsonable(dict(config or {})),
        "seed": to_jsonable(seed_value),
        "created_utc": _creation_time().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    record.update(to_jsonable(extra))
    return record


def _as_dataframe(table: TableLike, *, what: str = "table") -> pd.DataFrame:
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, Mapping):
        lengths = {k: len(np.asarray(v)) for k, v in table.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{what}: columns have different lengths {lengths}")
        return pd.DataFrame({k: np.asarray(v) for k, v in table.items()})
    raise InputError(
        f"{what}: expected a pandas DataFrame or a dict of arrays, got {type(table).__name__}"
    )


# --------------------------------------------------------------------------- validation


def _kind_checks() -> dict[str, tuple[str, Any]]:
    import pandas as pd

    return {
        "float": ("a number", pd.api.types.is_numeric_dtype),
        "int": ("an integer", pd.api.types.is_integer_dtype),
        "bool": ("a boolean", pd.api.types.is_bool_dtype),
        "str": ("a string", lambda s: pd.api.types.is_string_dtype(s) or s.dtype == object),
    }


def validate_table(
    df: pd.DataFrame,
    *,
    required: Sequence[str] | None = None,
    dtypes: Mapping[str, str] | None = None,
    finite: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Check a table's columns; raise :class:`InputError` naming file and column.

    Arguments:
        df: The table.
        required: Columns that must be present.
        dtypes: Column -> kind, one of ``"float"`` (any real number: ints are accepted),
            ``"int"``, ``"bool"``, ``"str"``. Booleans are not accepted as numbers.
        finite: Columns that must not contain NaN or +-inf.
        path: The file the table came from, for the error messages.

    Returns:
        ``df`` unchanged, so calls can be chained.
    """
    import pandas as pd

    checks = _kind_checks()
    missing = [c for c in (required or ()) if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:20]))
        raise InputError(
            f"required column missing (the table has: {have})", path=path, column=", ".join(missing)
        )
    for col, kind in (dtypes or {}).items():
        if col not in df.columns:
            continue
        if kind not in checks:
            raise ConfigError(
                f"unknown column kind {kind!r} for column {col!r}; "
                f"expected one of {sorted(checks)}",
                parameter="dtypes",
            )
        label, check = checks[kind]
        series = df[col]
        ok = check(series)
        if kind in ("float", "int") and pd.api.types.is_bool_dtype(series):
            ok = False
        if not ok:
            raise InputError(
                f"expected {label}, found dtype '{series.dtype}'", path=path, column=str(col)
            )
    for col in finite or ():
        if col not in df.columns:
            continue
        values = df[col].to_numpy()
        if not np.issubdtype(values.dtype, np.number):
            raise InputError(
                f"expected a number, found dtype '{values.dtype}'", path=path, column=str(col)
            )
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{int(bad.sum())} non-finite value(s) (NaN or inf), first at row {first}",
                path=path,
                column=str(col),
            )
    return df


# --------------------------------------------------------------------------- writing


def write_table(
    table: TableLike,
    path: str | os.PathLike[str],
    *,
    producer: str,
    config: Mapping[str, Any] | None = None,
    seed: Any = None,
    format: str | None = None,
    tree: str = _DEFAULT_TREE,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write an event table atomically, with provenance in the file's metadata.

    Arguments:
        table: A DataFrame or a dict of equal-length 1-D arrays.
        path: Target file; the format follows the suffix (``.parquet``/``.pq``, ``.csv``,
            ``.root``) unless ``format`` is given.
        producer: Name of the simulator or method that made the table.
        config: Its full configuration (stored as JSON).
        seed: Its seed.
        format: Force a format: ``"parquet"``, ``"csv"`` or ``"root"``.
        tree: TTree name for ROOT output.
        provenance: A ready provenance record (e.g. from :func:`make_provenance`); when
            given, ``producer``/``config``/``seed`` only fill what it lacks.

    Returns:
        The path written.
    """
    target = Path(path)
    fmt = _format_of(target, format)
    arrow = _arrow_table(table) if fmt == "parquet" and not _is_dataframe(table) else None
    df = _as_dataframe(table) if arrow is None else None
    prov = make_provenance(producer, config, seed)
    if provenance:
        prov.update(to_jsonable(dict(provenance)))
    prov_json = json.dumps(prov, sort_keys=True)

    with atomic_path(target) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if arrow is None:
                arrow = pa.Table.from_pandas(df, preserve_index=False)
            meta = dict(arrow.schema.metadata or {})
            meta[_PROVENANCE_KEY.encode()] = prov_json.encode()
            # dictionary encoding only for text columns: on float columns it triples the
            # write time and makes the file larger
            text = [f.name for f in arrow.schema if pa.types.is_string(f.type)]
            text += [f.name for f in arrow.schema if pa.types.is_large_string(f.type)]
            pq.write_table(arrow.replace_schema_metadata(meta), tmp, use_dictionary=text)
        elif fmt == "csv":
            assert df is not None
            with open(tmp, "w", newline="") as fh:
                fh.write(_CSV_PREFIX + prov_json + "\n")
                df.to_csv(fh, index=False)
        else:
            assert df is not None
            _write_root(df, tmp, tree=tree, provenance_json=prov_json, target=target)
    return target


def _is_dataframe(table: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas when it is not loaded)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(table, pd.DataFrame)


def _pandas_version() -> str:
    """The installed pandas' version, read from its distribution metadata when pandas is
    not imported (importing it, or :mod:`importlib.metadata`, costs more than writing a
    table)."""
    if "pandas" in sys.modules:
        return str(sys.modules["pandas"].__version__)
    spec = importlib.util.find_spec("pandas")
    if spec is not None and spec.origin is not None:
        found = list(Path(spec.origin).parents[1].glob("pandas-*.dist-info/METADATA"))
        if len(found) == 1:
            with open(found[0], encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
    from importlib.metadata import version

    return version("pandas")


def _arrow_column(v: np.ndarray) -> Any:
    """A 1-D NumPy array of booleans, integers or floats as the Arrow array pandas'
    conversion makes of it (floats: NaN becomes null), built from its buffers: no copy of
    integers and floats, and no pandas (``pyarrow.array`` imports it)."""
    import pyarrow as pa

    v = np.ascontiguousarray(v)
    n = len(v)
    if v.dtype.kind == "b":
        bits = pa.py_buffer(np.packbits(v, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), n, [None, bits], null_count=0)
    validity, nulls = None, 0
    if v.dtype.kind == "f":
        ok = ~np.isnan(v)
        nulls = n - int(np.count_nonzero(ok))
        if nulls:
            validity = pa.py_buffer(np.packbits(ok, bitorder="little"))
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(v.dtype), n, [validity, pa.py_buffer(v)], null_count=nulls
    )


def _arrow_table(table: Any) -> Any:
    """``table`` (a mapping of columns) as the Arrow table that
    ``pa.Table.from_pandas(_as_dataframe(table), preserve_index=False)`` gives (the same
    columns, types, nulls for NaN and ``pandas`` schema metadata), built without pandas;
    None unless every column is a 1-D NumPy array of booleans, integers or floats or an
    Arrow ``large_string`` array (pandas' ``str`` dtype), all of one length. A column
    object given under several names is converted once."""
    if not isinstance(table, Mapping) or not table:
        return None
    import pyarrow as pa

    arrays, names, described = [], [], []
    converted: dict[int, Any] = {}
    lengths = set()
    for name, v in table.items():
        if not isinstance(name, str):
            return None
        if isinstance(v, pa.Array) and pa.types.is_large_string(v.type):
            arr, pandas_type, numpy_type = v, "object", "str"
        elif (
            isinstance(v, np.ndarray)
            and v.ndim == 1
            and v.dtype.kind in "biuf"
            and v.dtype.itemsize >= (4 if v.dtype.kind == "f" else 1)
            and v.dtype.isnative
        ):
            if id(v) not in converted:
                converted[id(v)] = _arrow_column(v)
            arr, pandas_type, numpy_type = converted[id(v)], v.dtype.name, v.dtype.name
        else:
            return None
        lengths.add(len(arr))
        arrays.append(arr)
        names.append(name)
        described.append(
            {
                "name": name,
                "field_name": name,
                "pandas_type": pandas_type,
                "numpy_type": numpy_type,
                "metadata": None,
            }
        )
    if len(lengths) != 1:
        return None
    pandas_meta = {
        "index_columns": [],
        "column_indexes": [],
        "columns": described,
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _pandas_version(),
    }
    return pa.Table.from_arrays(
        arrays, names=names, metadata={b"pandas": json.dumps(pandas_meta).encode("utf8")}
    )


def _write_root(
    df: pd.DataFrame, tmp: Path, *, tree: str, provenance_json: str, target: Path
) -> None:
    import pandas as pd
    import uproot

    branches: dict[str, np.ndarray] = {}
    for col in df.columns:
        values = df[col].to_numpy()
        if values.dtype == object or pd.api.types.is_string_dtype(df[col]):
            raise InputError(
                "ROOT output supports numeric and boolean columns only; "
                "write strings as Parquet or CSV",
                path=target,
                column=str(col),
            )
        branches[str(col)] = np.ascontiguousarray(values)
    with uproot.recreate(tmp) as fh:
        # mktree, not ``fh[tree] = ...``: recent uproot writes an RNTuple for the latter,
        # and the issue (and most users' ROOT versions) want a classic TTree.
        out = fh.mktree(tree, {k: v.dtype for k, v in branches.items()})
        if len(df):
            out.extend(branches)
        fh[_ROOT_PROVENANCE] = provenance_json


# --------------------------------------------------------------------------- reading


def read_table(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    required: Sequence[str] | None = None,
    dtypes: Mapping[str, str] | None = None,
    finite: Sequence[str] | None = None,
    format: str | None = None,
    tree: str | None = None,
) -> pd.DataFrame:
    """Read an event table from Parquet, CSV or a ROOT TTree, and validate it.

    A user can bring a table from their own simulator in any of these formats. ROOT trees
    with jagged branches (one list per event, e.g. hits) come back as a flat table with
    an ``event_id`` column (and ``hit_index`` within the event); flat branches are repeated
    for each item of their event.

    Arguments:
        path: The file.
        columns: Read only these columns (they are also required).
        required: Columns that must be present.
        dtypes: Column -> kind (``"float"``, ``"int"``, ``"bool"``, ``"str"``).
        finite: Columns that must not contain NaN or inf.
        format: Force a format instead of using the suffix.
        tree: TTree name for ROOT files (default: the only tree in the file).

    Raises:
        InputError: naming the file (and column) for a missing file, unknown format,
            unreadable content, missing columns, non-finite values or wrong dtypes.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", path=p)
    if p.is_dir():
        raise InputError("is a directory, expected a table file", path=p)
    fmt = _format_of(p, format)
    cols = list(columns) if columns is not None else None
    try:
        if fmt == "parquet":
            df = _read_parquet(p, cols)
        elif fmt == "csv":
            import pandas as pd

            df = pd.read_csv(p, comment=None, skiprows=_csv_header_lines(p))
        else:
            df = _read_root(p, tree=tree)
    except InputError:
        raise
    except Exception as exc:  # a corrupt or foreign file: say which
        raise InputError(f"cannot read as {fmt}: {type(exc).__name__}: {exc}", path=p) from exc
    need = list(required or ()) + (cols or [])
    validate_table(df, required=need, dtypes=dtypes, finite=finite, path=p)
    if cols is not None:
        df = df[cols]
    return df


def read_numeric_columns(
    path: str | os.PathLike[str], columns: Sequence[str]
) -> dict[str, np.ndarray] | None:
    """Columns of a Parquet file as NumPy arrays, read with PyArrow alone (no pandas: a
    quarter of a second less to start a command).

    The arrays are those ``read_table(path)[c].to_numpy()`` gives: integers as they are,
    floats with nulls as NaN (read-only views of the file's buffers where possible).

    Arguments:
        path: A Parquet file.
        columns: The columns to read.

    Returns:
        Column name -> array; None when a column is missing, of another type (booleans,
        text...) or an integer column with nulls (which pandas would turn into floats).

    Raises:
        InputError: the file does not exist.
        Exception: PyArrow's, for a file it cannot read.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = write_table({"x": np.array([1.5, np.nan])}, pathlib.Path(tmp) / "t.parquet",
        ...                     producer="doc")
        ...     read_numeric_columns(p, ["x"])["x"].tolist()
        [1.5, nan]
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", path=p)
    f = pq.ParquetFile(p)
    if not set(columns) <= set(f.schema_arrow.names):
        return None
    table = f.read(columns=list(columns))
    out: dict[str, np.ndarray] = {}
    for c in columns:
        col = table.column(c)
        t = col.type
        floating = pa.types.is_floating(t) and not pa.types.is_float16(t)
        if not (floating or (pa.types.is_integer(t) and col.null_count == 0)):
            return None
        dtype = np.dtype(t.to_pandas_dtype())
        parts = []
        for chunk in col.chunks:
            validity, data = chunk.buffers()[:2]
            v = np.frombuffer(
                data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize
            )
            if chunk.null_count:
                bits = np.frombuffer(validity, dtype=np.uint8)
                valid = np.unpackbits(bits, count=chunk.offset + len(chunk), bitorder="little")
                v = np.where(valid[chunk.offset :].astype(bool), v, dtype.type(np.nan))
            parts.append(v)
        out[c] = (
            parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype)
        )
    return out


def _read_parquet(p: Path, cols: list[str] | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    schema_names = pq.read_schema(p).names
    if cols is not None:
        missing = [c for c in cols if c not in schema_names]
        if missing:
            raise InputError(
                f"required column missing (the table has: {', '.join(schema_names)})",
                path=p,
                column=", ".join(missing),
            )
    return pq.read_table(p, columns=cols).to_pandas()


def _csv_header_lines(p: Path) -> int:
    with open(p, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    return 1 if first.startswith(_CSV_PREFIX) else 0


def _read_root(p: Path, *, tree: str | None) -> pd.DataFrame:
    import uproot

    with uproot.open(p) as fh:
        trees = sorted(
            {k.split(";")[0] for k, cls in fh.classnames().items() if cls in _ROOT_TREE_CLASSES}
        )
        if tree is None:
            if not trees:
                raise InputError("no TTree (or RNTuple) in the file", path=p)
            if len(trees) > 1:
                raise InputError(
                    f"several trees ({', '.join(trees)}); choose one with tree=", path=p
                )
            tree = trees[0]
        elif tree not in trees:
            raise InputError(
                f"no tree named '{tree}' (trees: {', '.join(trees) or 'none'})", path=p
            )
        arrays = fh[tree].arrays(library="ak")
    return from_awkward(arrays, path=p)


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the provenance record stored in a table file ({} if it has none)."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", path=p)
    fmt = _format_of(p, None)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
        raw = meta.get(_PROVENANCE_KEY.encode())
        return json.loads(raw) if raw else {}
    if fmt == "csv":
        with open(p, encoding="utf-8") as fh:
            first = fh.readline()
        return json.loads(first[len(_CSV_PREFIX) :]) if first.startswith(_CSV_PREFIX) else {}
    import uproot

    with uproot.open(p) as fh:
        if _ROOT_PROVENANCE not in fh:
            return {}
        return json.loads(str(fh[_ROOT_PROVENANCE]))


# --------------------------------------------------------------------------- ragged data


def from_awkward(array: Any, *, event_column: str = "event_id", path: Any = None) -> pd.DataFrame:
    """Flatten an awkward array of records (one entry per event) into a flat table.

    Fields that are lists (hits of each event) become one row per item; scalar fields are
    repeated for each item. All list fields must have the same length within each event.
    An ``event_id`` column (the entry number) is added unless the array has one, and a
    ``hit_index`` column (position within the event) when there are list fields.
    """
    import awkward as ak
    import pandas as pd

    array = ak.Array(array)
    fields = ak.fields(array)
    if not fields:
        raise InputError("expected a record array with named fields", path=path)
    n_events = len(array)
    jagged = [f for f in fields if array[f].ndim > 1]
    scalar = [f for f in fields if array[f].ndim == 1]
    out: dict[str, np.ndarray] = {}
    if not jagged:
        for f in fields:
            out[f] = ak.to_numpy(array[f])
        if event_column not in out:
            out = {event_column: np.arange(n_events, dtype=np.int64), **out}
        return pd.DataFrame(out)
    counts = ak.to_numpy(ak.num(array[jagged[0]], axis=1))
    for f in jagged[1:]:
        if array[f].ndim > 2:
            raise InputError(
                "nested lists deeper than one level are not supported", path=path, column=f
            )
        if not np.array_equal(ak.to_numpy(ak.num(array[f], axis=1)), counts):
            raise InputError(
                f"list length differs from that of '{jagged[0]}' in some events",
                path=path,
                column=f,
            )
    ids = (
        ak.to_numpy(array[event_column])
        if event_column in scalar
        else np.arange(n_events, dtype=np.int64)
    )
    out[event_column] = np.repeat(ids, counts)
    out["hit_index"] = (
        np.concatenate([np.arange(c) for c in counts]) if len(counts) else np.zeros(0, np.int64)
    )
    for f in scalar:
        if f != event_column:
            out[f] = np.repeat(ak.to_numpy(array[f]), counts)
    for f in jagged:
        out[f] = ak.to_numpy(ak.flatten(array[f], axis=1))
    return pd.DataFrame(out)


def to_awkward(
    table: TableLike, *, event_column: str = "event_id", n_events: int | None = None
) -> Any:
    """Group a flat table by ``event_id`` into an awkward array, one list per event.

    Arguments:
        table: Flat table with an integer event id column.
        event_column: Name of that column.
        n_events: Total number of events; events without rows become empty lists. By
            default, events ``0 .. max(event_id)``.
    """
    import awkward as ak

    df = _as_dataframe(table)
    validate_table(df, required=[event_column], dtypes={event_column: "int"})
    ids = df[event_column].to_numpy()
    if len(ids) and ids.min() < 0:
        raise InputError("event ids must be non-negative", column=event_column)
    n = int(n_events if n_events is not None else (ids.max() + 1 if len(ids) else 0))
    if len(ids) and ids.max() >= n:
        raise ConfigError(
            f"n_events={n} is smaller than the largest event id {ids.max()}", parameter="n_events"
        )
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=n)
    contents = {c: df[c].to_numpy()[order] for c in df.columns if c != event_column}
    record = ak.zip({k: ak.Array(v) for k, v in contents.items()}, depth_limit=1)
    return ak.unflatten(record, counts)
