"""Source: seeded synthetic profiles, for the demo, tests and benchmarks (``kind = "synthetic"``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..hookspecs import hookimpl
from ..options import MAX_PARTITIONS, check_options, positive_int

# synthetic_data builds its vocabularies when imported (a few hundred ms): only once a synthetic
# source is used, not whenever the plugins load.


class SyntheticSource:
    def __init__(self, count: int, seed: int, partitions: int, batch_size: int) -> None:
        self._count = count
        self._seed = seed
        self._partitions = partitions
        self._batch_size = batch_size

    def partitions(self) -> Sequence[int]:
        return list(range(self._partitions))

    def schema(self) -> pa.Schema:
        from .synthetic_data import SYNTHETIC_SCHEMA

        return SYNTHETIC_SCHEMA

    @property
    def reiterable(self) -> bool:
        return True

    def describe(self) -> str:
        return f"synthetic ({self._count} profiles, seed {self._seed})"

    def _range(self, partition: int) -> tuple[int, int]:
        per, extra = divmod(self._count, self._partitions)
        start = partition * per + min(partition, extra)
        return start, per + (1 if partition < extra else 0)

    def read(self, partition: int) -> Iterator[pa.RecordBatch]:
        from .synthetic_data import generate_profiles

        start, count = self._range(partition)
        yield from generate_profiles(count, seed=self._seed, batch_size=self._batch_size, start=start)


class SyntheticSourceFactory:
    name = "synthetic"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> SyntheticSource:
        check_options("source", options, allowed=("count", "seed", "partitions"))
        # The generator numbers profiles in [0, 2**62) and seeds PCG64 with 64 bits: larger values are
        # refused here, naming the setting, not by the generator's ValueError in the middle of a run.
        count = positive_int("source", "count", options.get("count", 1000), minimum=0, maximum=2**62)
        seed = positive_int("source", "seed", options.get("seed", 0), minimum=0, maximum=2**64 - 1)
        partitions = positive_int("source", "partitions", options.get("partitions", 1), maximum=MAX_PARTITIONS)
        return SyntheticSource(count, seed, partitions, batch_size)


@hookimpl
def register_sources(register: Any) -> None:
    register(SyntheticSourceFactory())
