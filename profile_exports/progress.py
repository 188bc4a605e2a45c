"""A one-line progress display on a terminal's stderr; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None, interval: float = 0.5) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._interval = interval
        self._last = 0.0
        self._rows = 0
        self._files = 0
        self._shown = False

    def update(self, rows: int = 0, files: int = 0) -> None:
        self._rows += rows
        self._files += files
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._stream.write(f"\r  {self._rows:,} profiles, {self._files} file(s) written")
            self._stream.flush()
            self._shown = True

    def close(self) -> None:
        if self._enabled and self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
