"""The run manifest: the completion marker of a run (DESIGN section 7).

A run writes its manifest after every partition's files are committed, and only then is the
export's state advanced. A reader that trusts only files listed in a manifest therefore never
mistakes the leftovers of a killed run for a complete one.

Manifests live in one folder at the destination root, ``_manifests/``, never among the data files:
engines pointed at a data folder or its glob (Spark, DuckDB, ClickHouse, polars, warehouse loaders)
must meet data files only, and Spark, Hive and Athena skip ``_``-prefixed paths even when they read
the root recursively. A manifest is named like the run's files with ``manifest.json`` in place of
instance and part: ``_manifests/<account-id>-<export-id>-<timestamp>-manifest.json``. It holds keys
relative to the destination and the destination's redacted URL, never a credential.

Runs are replayed in the order of their ``run`` numbers (handed out by the registry), not their
times: a clock may step back between runs (``run_order``).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import attrs

from .results import CommittedFile

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = "-manifest.json"
MANIFEST_FOLDER = "_manifests"  # bookkeeping folder at the destination root, outside every data folder


@attrs.frozen(kw_only=True)
class Manifest:
    """What one complete run wrote."""

    export_id: str
    account_id: str
    name: str
    run: int | None  # the run's number in the registry; None for one-off runs
    mode: str  # "full" | "incremental"
    base_run: int | None  # the run whose state an incremental run compared against
    started_at: datetime
    completed_at: datetime
    destination: str  # redacted
    format: str
    columns: tuple[str, ...]
    files: tuple[CommittedFile, ...]
    rows: int  # rows written
    profiles_seen: int  # profiles read from the source (incremental: written + unchanged)
    key: str = ""  # where this manifest is, relative to the destination

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> bytes:
        document = {
            "manifest_version": MANIFEST_VERSION,
            "export_id": self.export_id,
            "account_id": self.account_id,
            "name": self.name,
            "run": self.run,
            "mode": self.mode,
            "base_run": self.base_run,
            "timestamp": int(self.started_at.timestamp()),
            "started_at": self.started_at.isoformat(),
            "completed_at": self.completed_at.isoformat(),
            "destination": self.destination,
            "format": self.format,
            "columns": list(self.columns),
            "rows": self.rows,
            "profiles_seen": self.profiles_seen,
            "profiles_unchanged": self.profiles_seen - self.rows if self.mode == "incremental" else 0,
            "empty": self.rows == 0,
            "bytes": self.total_bytes,
            "files": [
                {
                    "key": f.key,
                    "instance_id": f.partition,
                    "part": f.part,
                    "rows": f.rows,
                    "bytes": f.bytes,
                    "sha256": f.sha256,
                }
                for f in self.files
            ],
        }
        return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str, *, key: str = "", base_url: str = "") -> Manifest:
        doc = json.loads(data)
        if doc.get("manifest_version") != MANIFEST_VERSION:
            raise ValueError(f"{key or 'manifest'}: unknown manifest_version {doc.get('manifest_version')!r}")
        files = tuple(
            CommittedFile(
                key=f["key"],
                url=f"{base_url.rstrip('/')}/{f['key']}" if base_url else f["key"],
                bytes=f["bytes"],
                sha256=f["sha256"],
                rows=f["rows"],
                partition=f["instance_id"],
                part=f["part"],
            )
            for f in doc["files"]
        )
        return cls(
            export_id=doc["export_id"],
            account_id=doc["account_id"],
            name=doc["name"],
            run=doc["run"],
            mode=doc["mode"],
            base_run=doc["base_run"],
            started_at=datetime.fromisoformat(doc["started_at"]),
            completed_at=datetime.fromisoformat(doc["completed_at"]),
            destination=doc["destination"],
            format=doc["format"],
            columns=tuple(doc["columns"]),
            files=files,
            rows=doc["rows"],
            profiles_seen=doc["profiles_seen"],
            key=key,
        )


def manifest_name(account_id: str, export_id: str, timestamp: str) -> str:
    return f"{account_id}-{export_id}-{timestamp}{MANIFEST_SUFFIX}"


def manifest_key(account_id: str, export_id: str, timestamp: str) -> str:
    """Where a run's manifest goes, relative to the destination root."""
    return f"{MANIFEST_FOLDER}/{manifest_name(account_id, export_id, timestamp)}"


def read_manifests(
    destination: str, *, storage_options: Mapping[str, Any] | None = None, export_id: str | None = None
) -> list[Manifest]:
    """Every complete run's manifest under ``destination`` (any fsspec URL), in run order.

    Files of a run without a manifest are not complete runs and are not listed by any manifest.
    See ``run_order`` for the order.
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(destination, **dict(storage_options or {}))
    root = root.rstrip("/")
    found: list[Manifest] = []
    for path in _manifest_paths(fs, root):
        key = path[len(root) :].lstrip("/") if root else path
        manifest = Manifest.from_json(fs.cat_file(path), key=key, base_url=destination)
        if export_id is None or manifest.export_id == export_id:
            found.append(manifest)
    return run_order(found)


def run_order(manifests: Iterable[Manifest]) -> list[Manifest]:
    """The order to replay runs in, later rows replacing earlier ones.

    A managed export's runs follow the numbers the registry handed out (``run``), never the clock,
    which may have stepped back between two runs. One-off runs have no number: they follow their
    start, then end, times, as their caller's clock gave them. Exports (and one-off runs beside
    managed ones) are interleaved by start time, each keeping its own order.
    """
    groups: dict[tuple[str, bool], list[Manifest]] = {}
    for manifest in sorted(manifests, key=lambda m: m.key):  # the same listing gives the same order
        groups.setdefault((manifest.export_id, manifest.run is None), []).append(manifest)
    ordered = [sorted(group, key=lambda m: (m.run or 0, m.started_at, m.completed_at)) for group in groups.values()]
    return list(heapq.merge(*ordered, key=lambda m: m.started_at))


def _manifest_paths(fs: Any, root: str) -> Iterator[str]:
    folder = f"{root}/{MANIFEST_FOLDER}" if root else MANIFEST_FOLDER
    if not fs.exists(folder):  # no run has completed here yet
        return
    for path in fs.ls(folder, detail=False):
        if str(path).endswith(MANIFEST_SUFFIX):
            yield str(path)
