"""One-call API for notebooks and scripts: ``export(data, destination, **settings)``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import datetime
from os import PathLike
from typing import Any

import attrs

from .config import DestinationConfig, ExportConfig
from .errors import ConfigError
from .exporter import Exporter, Preview
from .results import ExportResult

_DESTINATION_KEYS = tuple(a.name for a in attrs.fields(DestinationConfig) if a.name != "url")
_TOP_KEYS = ("name", "account_id", "export_id")
_SECTION_KEYS = ("identifiers", "properties", "schedule", "execution", "transforms")
_EXECUTION_KEYS = ("executor", "workers", "dask_address")
_SOURCE_KEYS = ("mapping", "bad_records", "batch_size")
_ALL_KEYS = (*_DESTINATION_KEYS, *_TOP_KEYS, *_SECTION_KEYS, *_SOURCE_KEYS, *_EXECUTION_KEYS, "source")


def _source_section(data: Any) -> dict[str, Any]:
    """Pick the source kind from what ``data`` is."""
    if isinstance(data, str | PathLike):
        path = str(data)
        lowered = path.lower().removesuffix(".gz")
        if lowered.endswith((".jsonl", ".ndjson", ".json")):
            return {"kind": "jsonl", "path": path}
        if lowered.endswith((".parquet", ".pq")) or "." not in lowered.rsplit("/", 1)[-1]:
            return {"kind": "parquet", "path": path}
        raise ConfigError("data", f"cannot tell the format of {path!r}; pass source={{'kind': ...}} explicitly")
    if hasattr(data, "__arrow_c_stream__") or type(data).__module__.startswith(("pyarrow", "pandas", "polars")):
        return {"kind": "arrow", "data": data}
    return {"kind": "records", "data": data}


def build_config(data: Any, destination: str | PathLike[str], settings: Mapping[str, Any]) -> ExportConfig:
    """An ``ExportConfig`` from the keyword arguments of ``export``; same checks as a config file."""
    for key in settings:
        if key not in _ALL_KEYS:
            close = difflib.get_close_matches(key, _ALL_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(key, f"unknown setting{hint}")
    source = dict(settings.get("source") or (_source_section(data) if data is not None else {}))
    if data is not None and "source" in settings:
        source.setdefault("data", data)
    for key in _SOURCE_KEYS:
        if key in settings:
            source[key] = settings[key]
    raw: dict[str, Any] = {k: settings[k] for k in _TOP_KEYS if k in settings}
    raw["source"] = source
    raw["destination"] = {
        "url": str(destination),
        **{k: settings[k] for k in _DESTINATION_KEYS if k in settings},
    }
    for section in _SECTION_KEYS:
        value = settings.get(section)
        if value is None:
            continue
        if section == "identifiers" and isinstance(value, str | Sequence) and not isinstance(value, Mapping):
            value = {"select": [value] if isinstance(value, str) else list(value)}
        raw[section] = value
    execution = {k: settings[k] for k in _EXECUTION_KEYS if k in settings}
    if execution:
        raw["execution"] = {**(raw.get("execution") or {}), **execution}
    return ExportConfig.from_mapping(raw)


def export(
    data: Any,
    destination: str | PathLike[str],
    *,
    plugins: Sequence[Any] = (),
    progress: bool | None = None,
    now: datetime | None = None,
    dask_client: Any = None,
    **settings: Any,
) -> ExportResult:
    """Export profiles in one call.

    ``data`` is a list (or any iterable) of dicts, a pyarrow Table or RecordBatchReader, a pandas or
    polars DataFrame, or the path of a JSON Lines or Parquet file. ``settings`` are the keys of the
    configuration file: destination keys (``format``, ``folders``, ``file_name``, ``max_file_mb``,
    ...) directly, the ``identifiers``, ``properties`` and ``schedule`` sections as dicts, and the
    source keys ``mapping``, ``bad_records``, ``batch_size``, the execution keys ``executor``,
    ``workers``, ``dask_address`` (``dask_client``: a ``distributed.Client`` to run partitions on),
    and ``transforms`` (PII controls: ``hash``, ``drop``, ``salt``, ``apply``) as a dict.

    >>> export([{"profile_id": "p1", "Name": "Ada"}], "memory://demo", format="json").rows
    1
    """
    config = build_config(data, destination, settings)
    return Exporter(config, plugins=plugins, progress=progress, dask_client=dask_client).run(now=now)


def preview(
    config: Any,
    rows: int = 5,
    *,
    destination: str | PathLike[str] | None = None,
    plugins: Sequence[Any] = (),
    now: datetime | None = None,
    **settings: Any,
) -> Preview:
    """Resolved folder, first file names, columns and first ``rows`` rows of an export; writes nothing.

    ``config`` is an ``ExportConfig`` or its mapping; or, as for ``export()``, the data itself with
    ``destination=`` and the same keyword settings. In Jupyter the preview shows as a table.

    >>> preview([{"profile_id": "p1", "Name": "Ada"}], destination="memory://demo", format="csv").columns[-1]
    'Name'
    """
    if destination is not None or settings:
        if destination is None:
            raise ConfigError("destination", "preview(data, ...) needs destination= (where the export would write)")
        config = build_config(config, destination, settings)
    elif not isinstance(config, ExportConfig):
        config = ExportConfig.from_mapping(config)
    return Exporter(config, plugins=plugins, progress=False).preview(rows, now=now)
