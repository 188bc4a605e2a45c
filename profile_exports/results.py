"""Frozen descriptions of runs and what they produced."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class CommittedFile:
    """A file visible under its final key."""

    key: str
    url: str
    bytes: int
    sha256: str
    rows: int = 0
    partition: int = 0
    part: int = 0


@attrs.frozen(kw_only=True)
class PartitionStats:
    instance_id: int
    rows: int
    files: int
    bytes: int
    rejected: int
    seconds: float


@attrs.frozen(kw_only=True)
class RejectedRecord:
    """A record the run did not export (``bad_records = "skip"``), with why."""

    partition: int
    record: int
    reason: str


@attrs.frozen(kw_only=True)
class RunInfo:
    """What a run is, as lifecycle hooks see it."""

    export_id: str
    account_id: str
    name: str
    destination: str
    format: str
    started_at: datetime


@attrs.frozen(kw_only=True)
class ExportResult:
    """What a run produced. Returned by ``export()`` and ``Exporter.run()``."""

    export_id: str
    destination: str
    format: str
    columns: tuple[str, ...]
    files: tuple[CommittedFile, ...]
    rows: int
    bytes: int
    started_at: datetime
    duration_seconds: float
    partitions: tuple[PartitionStats, ...]
    rejected: tuple[RejectedRecord, ...] = ()
    rejected_count: int = 0
    values_as_text: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(f.url for f in self.files)

    def summary(self) -> str:
        mb = self.bytes / 1_000_000
        lines = [
            f"export {self.export_id}: {self.rows} profiles in {len(self.files)} file(s), "
            f"{mb:.2f} MB, {self.duration_seconds:.2f}s -> {self.destination}"
        ]
        lines += [f"  {f.url}  ({f.rows} rows, {f.bytes} bytes)" for f in self.files]
        if self.rejected_count:
            lines.append(f"  {self.rejected_count} record(s) rejected; first: {self.rejected[0].reason}")
        return "\n".join(lines)
