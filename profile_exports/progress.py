"""Progress of a run: a ``tqdm.auto`` bar in Jupyter, one line on a terminal's stderr, else nothing."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any, TextIO


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython already imported and talking to a notebook front end)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def notebook_bar() -> Any:
    """A ``tqdm.auto`` bar (a widget when ipywidgets is installed, text in the cell's output otherwise)."""
    with warnings.catch_warnings():
        # Without ipywidgets tqdm.auto warns once and draws a text bar in the cell's output: still a bar.
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    return tqdm(desc="export", unit=" profiles", unit_scale=True, total=None)


class Progress:
    """Counts profiles and files as a run goes, and shows them where someone is watching.

    ``enabled=None`` (the default) decides by where the run happens: a bar in a notebook, a line on
    an interactive terminal, nothing in a service or a pipe. ``True`` or ``False`` forces it.
    """

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None, interval: float = 0.5) -> None:
        self._stream = stream or sys.stderr
        notebook = stream is None and in_notebook()
        self._enabled = (notebook or self._stream.isatty()) if enabled is None else enabled
        self._bar: Any = notebook_bar() if self._enabled and notebook else None
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
        if self._bar is not None:
            if files:
                self._bar.set_postfix(files=self._files, refresh=False)
            self._bar.update(rows)
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._stream.write(f"\r  {self._rows:,} profiles, {self._files} file(s) written")
            self._stream.flush()
            self._shown = True

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._enabled and self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
