"""Typed contracts for plugins: what a writer, a sink and a source must provide.

These are ``Protocol``s: a plugin implements them structurally and needs to import nothing but, at
most, the helpers it chooses to reuse (``profile_exports.textfile`` for text formats).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

    from .layout import OutputLayout
    from .results import CommittedFile

Register = Callable[[Any], None]


# -- sinks -------------------------------------------------------------------------------------


@runtime_checkable
class SinkFile(Protocol):
    """One file being written. Invisible under ``key`` until ``commit`` returns."""

    key: str

    def write(self, data: bytes | memoryview) -> None: ...

    @property
    def bytes_written(self) -> int: ...

    def commit(self) -> CommittedFile:
        """Make the file visible under its final key, atomically, and describe it."""
        ...

    def abort(self) -> None:
        """Discard everything written; never leaves anything under the final key."""
        ...


class Sink(Protocol):
    """An open destination (one URL). ``display_url`` never contains a credential."""

    display_url: str

    def check_access(self) -> None:
        """Write and delete a probe object; raise ``SinkError`` with an actionable message."""
        ...

    def open(self, key: str, *, content_type: str, content_encoding: str | None) -> SinkFile:
        """Start a file at ``key`` (relative to the destination URL)."""
        ...

    def exists(self, key: str) -> bool: ...

    def read_bytes(self, key: str) -> bytes: ...

    def close(self) -> None: ...


class SinkFactory(Protocol):
    name: str
    protocols: tuple[str, ...]

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> Sink:
        """Open ``url``; ``options`` are the destination's ``storage_options`` (credentials: never echo them)."""
        ...


# -- writers -----------------------------------------------------------------------------------


class BatchWriter(Protocol):
    """Writes the projected batches of one partition into as many files as the size cap needs."""

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> list[CommittedFile]:
        """Finish and commit the last file; return every file committed by this writer."""
        ...

    def abort(self) -> None:
        """Discard the file in progress; committed files stay."""
        ...


class NewFile(Protocol):
    def __call__(self, part: int) -> SinkFile: ...


class Writer(Protocol):
    """A file format. ``compressions`` lists the accepted values, the default first."""

    name: str
    compressions: tuple[str, ...]
    content_type: str

    def extension(self, compression: str) -> str:
        """The file extension without the leading dot, for example ``csv.gz``."""
        ...

    def content_encoding(self, compression: str) -> str | None:
        """The HTTP ``Content-Encoding`` of the files (``gzip`` for a gzip stream), or None."""
        ...

    def open(
        self,
        *,
        layout: OutputLayout,
        compression: str,
        max_file_bytes: int,
        new_file: NewFile,
        options: Mapping[str, Any],
    ) -> BatchWriter: ...


# -- incremental runs ---------------------------------------------------------------------------


class ChangeFilter(Protocol):
    """Decides which profiles of a partition a run writes (incremental exports).

    ``select`` sees every projected batch with the profile ids of its rows and returns the rows to
    write; ``finish_partition`` is called once a partition's files are committed.
    """

    def select(self, partition: int, keys: pa.Array, batch: pa.RecordBatch) -> pa.RecordBatch: ...

    def finish_partition(self, partition: int) -> None: ...


# -- sources -----------------------------------------------------------------------------------

RawBatch = "pa.RecordBatch | list[dict[str, Any]]"


class Source(Protocol):
    """Profiles of one export, split into partitions (instance ids).

    ``read`` yields either Arrow record batches (flat tables or the canonical nested shape) or lists
    of dicts; the core maps them onto the canonical fields with the configured ``mapping``.
    """

    def partitions(self) -> Sequence[int]: ...

    def read(self, partition: int) -> Iterator[Any]: ...

    def schema(self) -> pa.Schema | None:
        """The Arrow schema every batch has, when known without reading; ``None`` otherwise."""
        ...

    @property
    def reiterable(self) -> bool:
        """True when ``read`` can be called again and yields the same data."""
        ...

    def describe(self) -> str: ...


class SourceFactory(Protocol):
    name: str

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> Source: ...
