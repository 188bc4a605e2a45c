"""The run: source -> canonical -> identity + projection -> writer -> sink (DESIGN section 7).

1. Check the configuration against the plugins, open the sink and prove write access.
2. Settle the columns: from the source's schema when it declares one, otherwise by a first pass
   over the data (a one-shot source is spooled to local Arrow IPC files on the way, so memory
   stays bounded by the batch size).
3. Stream each partition through the stages; each file is committed at its final name when done.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa

from .canonical import PROPERTIES, Canonicalizer, Rejected, conform, group_of, merge_schemas
from .config import ExportConfig
from .errors import ConfigError
from .layout import OutputLayout, build_layout, project
from .naming import FileNamer
from .plugins import Components, ExportsPluginManager, load_components
from .progress import Progress
from .results import CommittedFile, ExportResult, PartitionStats, RejectedRecord, RunInfo
from .urls import redact_url
from .values import python_values

MAX_REJECTIONS_KEPT = 100  # the result lists this many rejected records; the count covers all


@attrs.frozen(kw_only=True)
class Preview:
    """What a run would write, computed without writing anything."""

    destination: str
    folder: str
    file_names: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    def to_text(self) -> str:
        lines = [f"destination: {self.destination}", f"folder:      {self.folder or '(root)'}", "files:"]
        lines += [f"  {name}" for name in self.file_names]
        lines.append("columns:     " + ", ".join(self.columns))
        lines.append("rows:")
        lines += [f"  {row}" for row in self.rows]
        return "\n".join(lines)


@attrs.define
class _Plan:
    """The settled shape of a run: canonical schema, output layout, and where batches come from."""

    schema: pa.Schema
    layout: OutputLayout
    spool: Path | None = None
    rejected: list[RejectedRecord] = attrs.field(factory=list)
    rejected_count: int = 0
    values_as_text: dict[str, int] = attrs.field(factory=dict)


class Exporter:
    """Runs one export configuration. Build once, ``run()`` as often as needed.

    :param plugins: extra plugin objects (modules or instances with hook implementations).
    :param strict_plugins: raise instead of skipping a third-party plugin that fails to load.
    :param progress: force the terminal progress line on or off (default: on for a terminal).
    """

    def __init__(
        self,
        config: ExportConfig,
        *,
        plugins: Sequence[Any] = (),
        strict_plugins: bool = False,
        load_entry_points: bool = True,
        progress: bool | None = None,
    ) -> None:
        self.config = config
        self.plugin_manager: ExportsPluginManager
        self.components: Components
        self.plugin_manager, self.components = load_components(
            strict=strict_plugins, load_entry_points=load_entry_points, plugins=plugins
        )
        destination = config.destination
        self.writer = self.components.writer(destination.format)
        self.compression = destination.compression or self.writer.compressions[0]
        if self.compression not in self.writer.compressions:
            raise ConfigError(
                "destination.compression",
                f"{destination.format} files support {', '.join(self.writer.compressions)}; got {self.compression!r}",
            )
        self._source_factory = self.components.source(config.source.kind)
        self._sink_factory = self.components.sink_for(destination.url)
        self._progress = progress

    @property
    def extension(self) -> str:
        return str(self.writer.extension(self.compression))

    def _open_source(self) -> Any:
        return self._source_factory(self.config.source.options, batch_size=self.config.source.batch_size)

    def _canonicalizer(self, partition: int, source: Any) -> Canonicalizer:
        return Canonicalizer(
            mapping=self.config.source.mapping,
            skip_bad_records=self.config.source.bad_records == "skip",
            where=f"{source.describe()}, partition {partition}",
        )

    # -- preview ---------------------------------------------------------------------------------

    def preview(self, rows: int = 5, *, now: datetime | None = None) -> Preview:
        """Folder, first file names, columns and first ``rows`` output rows; writes nothing.

        For sources without a declared schema, columns come from the rows read for the preview.
        """
        started = _aware(now)
        namer = FileNamer(self.config, self.config.export_id or str(int(started.timestamp())), started)
        source = self._open_source()
        partition = source.partitions()[0]
        canonicalizer = self._canonicalizer(partition, source)
        batches: list[pa.RecordBatch] = []
        schema = _declared_schema(source, canonicalizer)
        taken = 0
        for raw in source.read(partition):
            batch, _ = canonicalizer.convert(raw)
            batches.append(batch.slice(0, rows - taken))
            taken += batches[-1].num_rows
            if schema is None or taken >= rows:
                schema = merge_schemas(schema, batch.schema)
            if taken >= rows:
                break
        schema = schema if schema is not None else pa.schema([("profile_id", pa.string())])
        layout = build_layout(self.config, schema)
        out_rows: list[dict[str, Any]] = []
        for batch in batches:
            projected = project(conform(batch, schema, {}), layout, self.config)
            columns = [python_values(c) for c in projected.columns]
            out_rows += [dict(zip(layout.names, values, strict=True)) for values in zip(*columns, strict=True)]
        return Preview(
            destination=redact_url(self.config.destination.url),
            folder=namer.folder(partition),
            file_names=tuple(namer.file_name(partition, part, self.extension) for part in range(2)),
            columns=layout.names,
            rows=tuple(out_rows),
        )

    # -- run -----------------------------------------------------------------------------------

    def run(self, *, now: datetime | None = None) -> ExportResult:
        started = _aware(now)
        clock = time.perf_counter()
        config = self.config
        export_id = config.export_id or str(int(started.timestamp()))
        namer = FileNamer(config, export_id, started)
        sink = self._sink_factory(
            config.destination.url, config.destination.storage_options, max_retries=config.destination.max_retries
        )
        info = RunInfo(
            export_id=export_id,
            account_id=config.account_id,
            name=config.name,
            destination=sink.display_url,
            format=config.destination.format,
            started_at=started,
        )
        hook = self.plugin_manager.hook
        progress = Progress(self._progress)
        plan: _Plan | None = None
        try:
            sink.check_access()
            source = self._open_source()
            hook.export_started(run=info)
            plan = self._plan(source)
            files: list[CommittedFile] = []
            stats: list[PartitionStats] = []
            values_as_text = dict(plan.values_as_text)
            for partition in source.partitions():
                part_files, part_stats = self._run_partition(
                    source, partition, plan, sink, namer, values_as_text, progress
                )
                for committed in part_files:
                    hook.file_committed(run=info, file=committed)
                files += part_files
                stats.append(part_stats)
            # A source may have turned mixed values to text itself (the SQL source does, per batch).
            _add_counts(values_as_text, dict(getattr(source, "values_as_text", None) or {}))
            result = ExportResult(
                export_id=export_id,
                destination=sink.display_url,
                format=config.destination.format,
                columns=plan.layout.names,
                files=tuple(files),
                rows=sum(s.rows for s in stats),
                bytes=sum(f.bytes for f in files),
                started_at=started,
                duration_seconds=time.perf_counter() - clock,
                partitions=tuple(stats),
                rejected=tuple(plan.rejected[:MAX_REJECTIONS_KEPT]),
                rejected_count=plan.rejected_count,
                values_as_text={_display_name(k): v for k, v in values_as_text.items()},
            )
        except BaseException as exc:
            hook.export_failed(run=info, error=exc)
            raise
        finally:
            progress.close()
            if plan is not None and plan.spool is not None:
                shutil.rmtree(plan.spool, ignore_errors=True)
            sink.close()
        hook.export_finished(run=info, result=result)
        return result

    def _plan(self, source: Any) -> _Plan:
        declared = _declared_schema(source, self._canonicalizer(0, source))
        if declared is not None:
            return _Plan(declared, build_layout(self.config, declared))
        # No declared schema: read everything once to settle the columns and their types.
        plan = _Plan(pa.schema([]), OutputLayout(()))
        schema: pa.Schema | None = None
        if not source.reiterable:
            plan.spool = Path(tempfile.mkdtemp(prefix="profile-exports-spool-"))
        for partition in source.partitions():
            canonicalizer = self._canonicalizer(partition, source)
            for number, raw in enumerate(source.read(partition)):
                batch, rejected = canonicalizer.convert(raw)
                schema = merge_schemas(schema, batch.schema)
                if plan.spool is not None:
                    self._note_rejected(plan, partition, rejected)
                    _spool_write(plan.spool, partition, number, batch)
            if plan.spool is not None:
                _add_counts(plan.values_as_text, canonicalizer.values_as_text)
        plan.schema = schema if schema is not None else pa.schema([("profile_id", pa.string())])
        plan.layout = build_layout(self.config, plan.schema)
        return plan

    def _note_rejected(self, plan: _Plan, partition: int, rejected: list[Rejected]) -> None:
        plan.rejected_count += len(rejected)
        room = MAX_REJECTIONS_KEPT - len(plan.rejected)
        plan.rejected += [RejectedRecord(partition=partition, record=r.index, reason=r.reason) for r in rejected[:room]]

    def _canonical_batches(
        self, source: Any, partition: int, plan: _Plan
    ) -> Iterator[tuple[pa.RecordBatch, dict[str, int]]]:
        if plan.spool is not None:
            for batch in _spool_read(plan.spool, partition):
                yield batch, {}
            return
        canonicalizer = self._canonicalizer(partition, source)
        for raw in source.read(partition):
            batch, rejected = canonicalizer.convert(raw)
            self._note_rejected(plan, partition, rejected)
            yield batch, canonicalizer.values_as_text
            canonicalizer.values_as_text = {}

    def _run_partition(
        self,
        source: Any,
        partition: int,
        plan: _Plan,
        sink: Any,
        namer: FileNamer,
        values_as_text: dict[str, int],
        progress: Progress,
    ) -> tuple[list[CommittedFile], PartitionStats]:
        clock = time.perf_counter()
        rejected_before = plan.rejected_count
        content_encoding = self.writer.content_encoding(self.compression)

        def new_file(part: int) -> Any:
            progress.update(files=1)
            return sink.open(
                namer.key(partition, part, self.extension),
                content_type=self.writer.content_type,
                content_encoding=content_encoding,
            )

        writer = self.writer.open(
            layout=plan.layout,
            compression=self.compression,
            max_file_bytes=self.config.destination.max_file_bytes,
            new_file=new_file,
            options={"parquet_layout": self.config.destination.parquet_layout},
        )
        rows = 0
        try:
            for batch, text_counts in self._canonical_batches(source, partition, plan):
                _add_counts(values_as_text, text_counts)
                conformed = conform(batch, plan.schema, values_as_text)
                writer.write(project(conformed, plan.layout, self.config))
                rows += batch.num_rows
                progress.update(rows=batch.num_rows)
            files = writer.close()
        except BaseException:
            writer.abort()
            raise
        files = [attrs.evolve(f, partition=partition) for f in files]
        return files, PartitionStats(
            instance_id=partition,
            rows=rows,
            files=len(files),
            bytes=sum(f.bytes for f in files),
            rejected=plan.rejected_count - rejected_before,
            seconds=time.perf_counter() - clock,
        )


def _display_name(column: str) -> str:
    """``Age`` for the canonical ``properties.Age``; other columns keep their canonical name."""
    grouped = group_of(column)
    return grouped[1] if grouped is not None and grouped[0] == PROPERTIES else column


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, count in counts.items():
        into[name] = into.get(name, 0) + count


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _declared_schema(source: Any, canonicalizer: Canonicalizer) -> pa.Schema | None:
    """The canonical schema implied by the source's declared schema, without reading data."""
    raw_schema = source.schema()
    if raw_schema is None:
        return None
    empty = pa.RecordBatch.from_pylist([], schema=raw_schema)
    canonicalizer.skip_bad_records = True
    batch, _ = canonicalizer.convert(empty)
    return batch.schema


def _spool_write(folder: Path, partition: int, number: int, batch: pa.RecordBatch) -> None:
    path = folder / f"{partition}-{number:09d}.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)


def _spool_read(folder: Path, partition: int) -> Iterator[pa.RecordBatch]:
    for path in sorted(folder.glob(f"{partition}-*.arrow")):
        with pa.OSFile(str(path), "rb") as source:
            yield from pa.ipc.open_stream(source)
        path.unlink()
