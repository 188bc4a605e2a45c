"""Text files (CSV, JSON Lines, XML): optional gzip, and rotation at a cap on bytes actually written.

A text format only says how rows become bytes (``TextEncoder``); this module compresses them with
ISA-L (standard gzip, several times faster than zlib) and decides where files end.

The cap counts compressed bytes handed to the sink. Compressed size is only certain after a flush,
so the writer keeps an upper bound (bytes flushed so far plus the deflate worst case of what came
after) and syncs the compressor only when that bound would cross the cap; a file therefore never
exceeds the cap unless a single row is larger than the cap on its own. Rows are never split.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import pyarrow as pa
from isal import isal_zlib

from .interfaces import NewFile, SinkFile
from .layout import OutputLayout
from .results import CommittedFile, commit_file

_GZIP_WBITS = 31  # zlib's "gzip container" window bits
_GZIP_LEVEL = 1  # ISA-L level 1: about the ratio of zlib -6 at many times the speed
_CHUNK_ROWS = 4096  # rows encoded at a time: small enough to fill files closely


def deflate_worst_case(n: int) -> int:
    """Most bytes deflate can emit for ``n`` input bytes (stored blocks: 5 bytes per block)."""
    return n + 5 * (n // 16_000 + 1)


_GZIP_TAIL = 32  # header, final empty block and the 8-byte trailer, with room to spare


class TextEncoder(Protocol):
    def header(self) -> bytes: ...

    def encode(self, batch: pa.RecordBatch) -> bytes:
        """Whole rows; the concatenation of encodings of slices equals the encoding of the batch."""
        ...

    def footer(self) -> bytes: ...


class TextFileWriter:
    """A ``BatchWriter`` for text formats: encodes, compresses, rotates, commits."""

    def __init__(
        self,
        encoder: TextEncoder,
        *,
        compression: str,
        max_file_bytes: int,
        new_file: NewFile,
    ) -> None:
        if compression not in ("gzip", "none"):
            raise ValueError(f"text formats support gzip or none, not {compression!r}")
        self._encoder = encoder
        self._gzip = compression == "gzip"
        self._cap = max_file_bytes
        self._new_file = new_file
        self._footer = encoder.footer()
        self._committed: list[CommittedFile] = []
        self._file: SinkFile | None = None
        self._part = 0
        self._rows = 0
        self._compressor: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="profile-exports-gzip")
        self._pending: list[Future[None]] = []
        self._certain = 0  # bytes written to the file up to the last compressor sync
        self._uncertain = 0  # uncompressed bytes fed since then

    # -- BatchWriter ---------------------------------------------------------------------------

    def write(self, batch: pa.RecordBatch) -> None:
        for start in range(0, batch.num_rows, _CHUNK_ROWS):
            self._write_rows(batch.slice(start, _CHUNK_ROWS), None)

    def close(self) -> list[CommittedFile]:
        try:
            if self._file is None and not self._committed:
                self._open()  # an export with no rows still gets one file with the header
            if self._file is not None:
                self._finish()
        finally:
            self._pool.shutdown(wait=True)
        return list(self._committed)

    def abort(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._pending = []
        if self._file is not None:
            self._file.abort()
            self._file = None

    # -- internals -----------------------------------------------------------------------------

    def _write_rows(self, rows: pa.RecordBatch, data: bytes | None) -> None:
        if data is None:
            data = self._encoder.encode(rows)
        if self._file is None:
            self._open()
        if self._fits(len(data)):
            self._feed(data, rows.num_rows)
            return
        self._sync()
        if self._fits(len(data)):
            self._feed(data, rows.num_rows)
            return
        if rows.num_rows > 1:
            half = rows.num_rows // 2
            self._write_rows(rows.slice(0, half), None)
            self._write_rows(rows.slice(half), None)
            return
        if self._rows:
            self._finish()
            self._write_rows(rows, data)
            return
        self._feed(data, 1)  # one row larger than the cap: it gets a file of its own

    def _fits(self, n: int) -> bool:
        if not self._gzip:
            return self._certain + n + len(self._footer) <= self._cap
        pending = deflate_worst_case(self._uncertain + n + len(self._footer))
        return self._certain + pending + _GZIP_TAIL <= self._cap

    def _open(self) -> None:
        self._file = self._new_file(self._part)
        self._rows = 0
        self._certain = 0
        self._uncertain = 0
        if self._gzip:
            self._compressor = isal_zlib.compressobj(_GZIP_LEVEL, isal_zlib.DEFLATED, _GZIP_WBITS)
        header = self._encoder.header()
        if header:
            self._feed(header, 0)

    def _feed(self, data: bytes, rows: int) -> None:
        assert self._file is not None
        self._rows += rows
        if not self._gzip:
            self._file.write(data)
            self._certain += len(data)
            return
        self._uncertain += len(data)
        # Compress (ISA-L releases the GIL) and write in a worker while the next rows are encoded;
        # at most two chunks wait, so memory stays bounded.
        self._pending.append(self._pool.submit(self._compress_and_write, self._file, self._compressor, data))
        while len(self._pending) > 2:
            self._pending.pop(0).result()

    @staticmethod
    def _compress_and_write(file: SinkFile, compressor: Any, data: bytes) -> None:
        out = compressor.compress(data)
        if out:
            file.write(out)

    def _drain(self) -> None:
        """Wait for the chunks handed to the worker (and raise its error, if any)."""
        while self._pending:
            self._pending.pop(0).result()

    def _sync(self) -> None:
        if not self._gzip or not self._uncertain:
            return
        assert self._file is not None
        self._drain()
        out = self._compressor.flush(isal_zlib.Z_SYNC_FLUSH)
        if out:
            self._file.write(out)
        self._certain = self._file.bytes_written
        self._uncertain = 0

    def _finish(self) -> None:
        assert self._file is not None
        if self._footer:
            self._feed(self._footer, 0)
        if self._gzip:
            self._drain()
            self._file.write(self._compressor.flush())
        self._committed.append(commit_file(self._file, rows=self._rows, part=self._part))
        self._file = None
        self._part += 1


class TextWriter(abc.ABC):
    """Base for text ``Writer`` plugins: subclasses set the names and build their encoder."""

    name = ""
    compressions: tuple[str, ...] = ("gzip", "none")
    content_type = "text/plain"
    suffix = ""

    def extension(self, compression: str) -> str:
        return f"{self.suffix}.gz" if compression == "gzip" else self.suffix

    def content_encoding(self, compression: str) -> str | None:
        return "gzip" if compression == "gzip" else None

    @abc.abstractmethod
    def encoder(self, layout: OutputLayout, options: Mapping[str, Any]) -> TextEncoder:
        """The encoder for one partition's files."""

    def open(
        self,
        *,
        layout: OutputLayout,
        compression: str,
        max_file_bytes: int,
        new_file: NewFile,
        options: Mapping[str, Any],
    ) -> TextFileWriter:
        return TextFileWriter(
            self.encoder(layout, options),
            compression=compression,
            max_file_bytes=max_file_bytes,
            new_file=new_file,
        )
