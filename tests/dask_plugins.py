"""A source for the Dask tests: synthetic profiles whose reader kills its own worker process once.

Imported by name in the Dask workers (plugins passed as modules travel by name). The marker file
makes the kill happen on the first attempt only, whichever worker runs it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from profile_exports.hookspecs import hookimpl
from profile_exports.sources.synthetic import SyntheticSource


class KillOnceSource(SyntheticSource):
    def __init__(self, options: Mapping[str, Any], batch_size: int) -> None:
        super().__init__(options["count"], 7, options["partitions"], batch_size)
        self._marker = Path(options["marker"])
        self._victim = options["victim"]

    def partitions(self) -> Sequence[int]:
        return super().partitions()

    def read(self, partition: int) -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(super().read(partition)):
            yield batch
            if partition == self._victim and number == 2 and not self._marker.exists():
                # the worker dies in the middle of the partition, with a file half written
                self._marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)


class KillOnceFactory:
    name = "kill-once"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> KillOnceSource:
        return KillOnceSource(options, batch_size)


@hookimpl
def register_sources(register: Any) -> None:
    register(KillOnceFactory())
