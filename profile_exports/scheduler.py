"""Run due exports in the foreground until told to stop (``profile-exports scheduler``).

SIGINT or SIGTERM ask it to stop: the run in progress finishes (files, manifest, state) and the
loop ends; a second signal ends the process at once (the interrupted run is then recorded as Failed
and the next run exports its changes again). Cron users call ``profile-exports run-due`` instead.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from .center import ExportCenter, RunOutcome

log = logging.getLogger("profile_exports.scheduler")


class Scheduler:
    def __init__(
        self,
        center: ExportCenter,
        *,
        interval: float = 60.0,
        on_run: Callable[[RunOutcome], None] | None = None,
    ) -> None:
        self.center = center
        self.interval = interval  # longest sleep between looks at the registry
        self.on_run = on_run
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> int:
        """Run due exports until ``request_stop``; returns how many runs were made."""
        made = 0
        while not self._stop.is_set():
            outcomes = self.center.run_due(should_continue=lambda: not self._stop.is_set())
            for outcome in outcomes:
                made += 1
                if self.on_run is not None:
                    self.on_run(outcome)
            self._stop.wait(self._sleep_seconds())
        return made

    def _sleep_seconds(self) -> float:
        due = self.center.next_due()
        if due is None:
            return self.interval
        return max(0.0, min(self.interval, (due - datetime.now(UTC)).total_seconds()))

    def serve(self) -> int:
        """``run_forever`` with SIGINT/SIGTERM handled as described above (main thread only)."""
        previous: dict[int, Any] = {}

        def handle(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set():  # the second signal: give up now
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                raise KeyboardInterrupt
            log.warning("%s received: finishing the current run, then stopping", signal.Signals(signum).name)
            self._stop.set()

        for each in (signal.SIGINT, signal.SIGTERM):
            previous[each] = signal.signal(each, handle)
        try:
            return self.run_forever()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
