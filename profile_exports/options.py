"""Checking the options a plugin receives (``[source]`` keys, writer options)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError


def check_options(
    section: str, options: Mapping[str, Any], *, allowed: Iterable[str], required: Iterable[str] = ()
) -> None:
    allowed = tuple(allowed)
    for key in options:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{section}.{key}", f"unknown option{hint}; this kind accepts: {', '.join(allowed)}")
    for key in required:
        if key not in options:
            raise ConfigError(f"{section}.{key}", "is required")


# Every source lists its partitions up front (``range(partitions)``): a mistyped 10**14 must be a
# ConfigError, not a MemoryError.
MAX_PARTITIONS = 10_000
_MAXIMA = {"partitions": MAX_PARTITIONS}


def positive_int(section: str, key: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    top = maximum if maximum is not None else _MAXIMA.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (top is not None and value > top):
        span = f"from {minimum} to {top}" if top is not None else f"of at least {minimum}"
        raise ConfigError(f"{section}.{key}", f"must be a whole number {span}; got {value!r}")
    return value
