"""Exceptions raised by ariasim.

Every error about user input names the file, column or parameter it is about, so that a
user running a campaign can fix the input without reading a traceback.
"""

from __future__ import annotations

from numbers import Integral

__all__ = ["AriasimError", "ConfigError", "InputError", "OutputError", "check_int"]


class AriasimError(Exception):
    """Base class of all errors raised on purpose by ariasim.

    The command line turns it into a one-line message and exit status 2.

    Example:
        >>> issubclass(InputError, AriasimError), issubclass(ConfigError, ValueError)
        (True, True)
    """


class InputError(AriasimError, ValueError):
    """A user-supplied file or table is missing, unreadable or malformed.

    Arguments:
        message: What is wrong.
        path: The file concerned, if any.
        column: The column concerned, if any.
        field: The field of a (JSON) file concerned, if any, e.g. ``"objects.muon.scale[0]"``.

    Example:
        >>> str(InputError("missing values", path="hits.parquet", column="time_ns"))
        "file 'hits.parquet', column 'time_ns': missing values"
    """

    def __init__(
        self,
        message: str,
        *,
        path: object | None = None,
        column: str | None = None,
        field: str | None = None,
    ):
        self.path = None if path is None else str(path)
        self.column = column
        self.field = field
        parts = []
        if self.path is not None:
            parts.append(f"file '{self.path}'")
        if column is not None:
            parts.append(f"column '{column}'")
        if field is not None:
            parts.append(f"field '{field}'")
        prefix = (", ".join(parts) + ": ") if parts else ""
        super().__init__(prefix + message)


class ConfigError(AriasimError, ValueError):
    """A configuration value or function parameter is invalid.

    Arguments:
        message: What is wrong.
        parameter: The offending parameter or configuration key.

    Example:
        >>> str(ConfigError("must be positive, got -1.0", parameter="--radius"))
        '--radius: must be positive, got -1.0'
        >>> str(ConfigError("must be positive, got -1.0", parameter="radius_m"))
        "parameter 'radius_m': must be positive, got -1.0"
    """

    def __init__(self, message: str, *, parameter: str | None = None):
        self.parameter = parameter
        self.message = message
        if parameter and parameter.startswith("-"):
            prefix = f"{parameter}: "
        else:
            prefix = f"parameter '{parameter}': " if parameter else ""
        super().__init__(prefix + message)


class OutputError(AriasimError, OSError):
    """An output file or folder cannot be created or written (permissions, a file in the
    way of a folder, a full disk).

    Arguments:
        message: What is wrong.
        path: The file or folder concerned.

    Example:
        >>> str(OutputError("is a folder", path="out/"))
        "output 'out/': is a folder"
    """

    def __init__(self, message: str, *, path: object):
        self.path = str(path)
        super().__init__(f"output '{self.path}': {message}")


def check_int(parameter: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer (Python or NumPy, not a bool) of at least
    ``minimum``; else a :class:`ConfigError` naming ``parameter``.

    Example:
        >>> check_int("batch", 4)
        4
        >>> check_int("--seed", -1, 0)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: --seed: must be an integer >= 0, got -1
        >>> check_int("n", 2.0)
        Traceback (most recent call last):
        ...
        ariasim.errors.ConfigError: parameter 'n': must be an integer >= 1, got 2.0
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(f"must be an integer >= {minimum}, got {value!r}", parameter=parameter)
    return int(value)
