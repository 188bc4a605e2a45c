"""A run of a registered export that SIGKILLs its own process at a chosen point.

    python tests/crash_child.py HOME EXPORT_ID POINT NOW_ISO

POINT is one of:
- ``before_files``: after the run is claimed and started, before any file;
- ``between_files``: right after the second file is committed;
- ``during_upload``: in the middle of writing the third file (its bytes half sent);
- ``after_manifest``: after the manifest is written, before the state is committed.

The destination URL of such exports uses the ``crashfile://`` sink below (a local folder whose
files can be killed mid-write); the parent test loads the same plugin without a kill point.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from profile_exports.hookspecs import hookimpl
from profile_exports.sinks.fsspec_sink import FsspecSink


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _KillingFile:
    def __init__(self, inner: Any, plugin: CrashPlugin) -> None:
        self._inner = inner
        self._plugin = plugin
        self.key = inner.key

    @property
    def bytes_written(self) -> int:
        return int(self._inner.bytes_written)

    def write(self, data: bytes | memoryview) -> None:
        if self._plugin.point == "during_upload" and self._plugin.opened == 3:
            half = len(data) // 2
            self._inner.write(data[:half])
            self._inner._handle.flush()
            _die()
        self._inner.write(data)

    def commit(self) -> Any:
        return self._inner.commit()

    def abort(self) -> None:
        self._inner.abort()


class _CrashSink(FsspecSink):
    def __init__(self, url: str, options: Mapping[str, Any], plugin: CrashPlugin) -> None:
        super().__init__(url.removeprefix("crashfile://"), options)
        self._plugin = plugin

    def open(self, key: str, *, content_type: str, content_encoding: str | None) -> Any:
        inner = super().open(key, content_type=content_type, content_encoding=content_encoding)
        if key.endswith(".csv.gz"):
            self._plugin.opened += 1
        return _KillingFile(inner, self._plugin)


class CrashPlugin:
    """Registers the ``crashfile`` sink; kills the process at ``point`` (None: never)."""

    def __init__(self, point: str | None = None) -> None:
        self.point = point
        self.opened = 0
        self.committed = 0

    @hookimpl
    def register_sinks(self, register: Any) -> None:
        plugin = self

        class Factory:
            name = "crashfile"
            protocols = ("crashfile",)

            def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> Any:
                return _CrashSink(url, options, plugin)

        register(Factory())

    @hookimpl
    def export_started(self, run: Any) -> None:
        if self.point == "before_files":
            _die()

    @hookimpl
    def file_committed(self, run: Any, file: Any) -> None:
        self.committed += 1
        if self.point == "between_files" and self.committed == 2:
            _die()

    @hookimpl
    def export_finished(self, run: Any, result: Any) -> None:
        if self.point == "after_manifest":
            assert result.manifest is not None
            _die()


def main(argv: list[str]) -> None:
    from profile_exports.center import ExportCenter

    home, export_id, point, now = argv
    center = ExportCenter(home, plugins=[CrashPlugin(point)], load_entry_points=False)
    center.run(export_id, now=datetime.fromisoformat(now))
    raise SystemExit(f"the run finished: the kill point {point!r} was never reached")


if __name__ == "__main__":
    main(sys.argv[1:])
