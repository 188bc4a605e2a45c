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


def positive_int(section: str, key: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{section}.{key}", f"must be a whole number of at least {minimum}; got {value!r}")
    return value
