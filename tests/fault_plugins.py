"""Sinks that inject local faults, as a plugin module (importable by worker processes too).

- ``killfile://PATH``: a local folder; while ``FAULT_KILL_PARTITION`` names a partition, the worker
  process writing that partition's second file SIGKILLs itself halfway through a write.
- ``fullfile://PATH``: a local folder whose writes fail with ``ENOSPC`` ("no space left on device")
  once this process has written ``FAULT_DISK_BYTES`` bytes (unset: no limit). The stand-in for a
  full disk where a small tmpfs cannot be mounted.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping
from typing import Any

from profile_exports.hookspecs import hookimpl
from profile_exports.sinks.fsspec_sink import FsspecSink

_written = 0  # bytes this process wrote through fullfile:// sinks


class _FaultFile:
    def __init__(self, inner: Any, kill: bool) -> None:
        self._inner = inner
        self._kill = kill
        self.key = inner.key

    @property
    def bytes_written(self) -> int:
        return int(self._inner.bytes_written)

    def write(self, data: bytes | memoryview) -> None:
        global _written
        if self._kill:
            self._inner.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        budget = os.environ.get("FAULT_DISK_BYTES")
        if budget is not None and _written + len(data) > int(budget):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _written += len(data)
        self._inner.write(data)

    def commit(self) -> Any:
        return self._inner.commit()

    def abort(self) -> None:
        self._inner.abort()


class _FaultSink(FsspecSink):
    def __init__(self, url: str, options: Mapping[str, Any], scheme: str) -> None:
        super().__init__(url.removeprefix(f"{scheme}://"), options)
        self._scheme = scheme
        self._opened: dict[int, int] = {}

    def open(self, key: str, *, content_type: str, content_encoding: str | None) -> Any:
        inner = super().open(key, content_type=content_type, content_encoding=content_encoding)
        kill = False
        target = os.environ.get("FAULT_KILL_PARTITION")
        if self._scheme == "killfile" and target is not None and not key.endswith("manifest.json"):
            partition = int(key.rsplit("-", 2)[-2])  # ...-<instance>-<part>.<ext>
            self._opened[partition] = self._opened.get(partition, 0) + 1
            kill = partition == int(target) and self._opened[partition] == 2
        return _FaultFile(inner, kill)


class _Factory:
    def __init__(self, scheme: str) -> None:
        self.name = scheme
        self.protocols = (scheme,)

    def __call__(self, url: str, options: Mapping[str, Any], **_: Any) -> _FaultSink:
        return _FaultSink(url, options, self.name)


@hookimpl
def register_sinks(register: Any) -> None:
    register(_Factory("killfile"))
    register(_Factory("fullfile"))
