"""The fsspec sink: local paths, ``file://``, ``memory://`` and any other fsspec URL.

A file is written under a hidden temporary name beside its final key and renamed when complete,
so the final key never shows a partial file (a rename is atomic on local disks; on object stores
fsspec copies, and the dedicated cloud sinks do better).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import posixpath
import uuid
from collections.abc import Mapping
from typing import Any

import fsspec

from ..errors import SinkError
from ..hookspecs import hookimpl
from ..manifest import MANIFEST_FOLDER
from ..results import CommittedFile
from ..urls import join, redact_url

# Beside the manifests, never in a data folder (a probe left by a killed process would meet readers).
PROBE_PREFIX = f"{MANIFEST_FOLDER}/.profile-exports-probe-"


class FsspecFile:
    def __init__(self, sink: FsspecSink, key: str) -> None:
        self.key = key
        self._sink = sink
        self._final = sink.path_of(key)
        folder, base = posixpath.split(self._final)
        self._temp = posixpath.join(folder, f".{base}.{uuid.uuid4().hex[:12]}.partial")
        self._hash = hashlib.sha256()
        self._written = 0
        with sink.errors(f"create {key!r}"):
            if folder:
                sink.fs.makedirs(folder, exist_ok=True)
            self._handle = sink.fs.open(self._temp, "wb")

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes | memoryview) -> None:
        with self._sink.errors(f"write {self.key!r}"):
            self._handle.write(data)
        self._hash.update(data)
        self._written += len(data)

    def commit(self) -> CommittedFile:
        with self._sink.errors(f"commit {self.key!r}"):
            self._handle.close()
            self._sink.fs.mv(self._temp, self._final)
        return CommittedFile(
            key=self.key,
            url=self._sink.url_of(self.key),
            bytes=self._written,
            sha256=self._hash.hexdigest(),
        )

    def abort(self) -> None:
        try:
            self._handle.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._sink.fs.rm(self._temp)


class FsspecSink:
    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.display_url = redact_url(url)
        self._url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **dict(options))
        except ImportError as exc:
            raise SinkError(
                f"{self.display_url}: no filesystem for this URL is installed ({exc}). Install the "
                "matching extra, e.g. pip install 'profile-exports[s3]'",
                destination=self.display_url,
            ) from None
        except (ValueError, TypeError) as exc:
            raise SinkError(
                f"{self.display_url}: cannot open this destination: {exc}", destination=self.display_url
            ) from None

    def path_of(self, key: str) -> str:
        return posixpath.join(self.root, key) if self.root else key

    def url_of(self, key: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if protocol in ("file", "local"):
            return self.path_of(key)
        return f"{protocol}://{join(self.root, key)}"

    def errors(self, action: str) -> _Errors:
        return _Errors(self, action)

    def check_access(self) -> None:
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
        path = self.path_of(key)
        with self.errors("write a probe file (checking write access)"):
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with self.fs.open(path, "wb") as handle:
                handle.write(b"profile-exports write check\n")
        with self.errors("delete the probe file (checking write access)"):
            self.fs.rm(path)

    def open(self, key: str, *, content_type: str = "", content_encoding: str | None = None) -> FsspecFile:
        return FsspecFile(self, key)

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path_of(key)))

    def read_bytes(self, key: str) -> bytes:
        with self.errors(f"read {key!r}"):
            data = self.fs.cat_file(self.path_of(key))
        return bytes(data)

    def close(self) -> None:
        return None


class _Errors:
    """Turns filesystem errors into ``SinkError``s that say what to do."""

    def __init__(self, sink: FsspecSink, action: str) -> None:
        self._sink = sink
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, OSError):
            return
        where = self._sink.display_url
        code = exc.errno
        if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "no permission to write there; grant write access or choose another destination"
        elif isinstance(exc, FileNotFoundError):
            hint = "the location does not exist; create the bucket or folder, or fix destination.url"
        elif code == errno.ENOSPC:
            hint = "the disk is full; free space or choose another destination"
        else:
            hint = "check that the destination is reachable and writable"
        raise SinkError(
            f"{where}: could not {self._action}: {exc.strerror or exc} (status {code}); {hint}",
            destination=where,
            status=code,
        ) from exc


class FsspecSinkFactory:
    name = "fsspec"
    protocols = ("*",)

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> FsspecSink:
        return FsspecSink(url, options)


@hookimpl
def register_sinks(register: Any) -> None:
    register(FsspecSinkFactory())
