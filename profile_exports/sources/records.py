"""Source: an iterable of dicts (records), flat or in the canonical nested shape."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from ..errors import ConfigError
from ..hookspecs import hookimpl
from ..options import check_options


class RecordsSource:
    def __init__(self, data: Any, batch_size: int) -> None:
        self._data = data
        self._batch_size = batch_size
        self._consumed = False

    def partitions(self) -> Sequence[int]:
        return [0]

    def schema(self) -> None:
        return None

    @property
    def reiterable(self) -> bool:
        return isinstance(self._data, Sequence)

    def describe(self) -> str:
        return f"records ({type(self._data).__name__})"

    def read(self, partition: int) -> Iterator[list[Any]]:
        if not self.reiterable:
            if self._consumed:
                raise RuntimeError("this records source is a one-shot iterator and was read already")
            self._consumed = True
        iterator = iter(self._data)
        while chunk := list(islice(iterator, self._batch_size)):
            yield chunk


class RecordsSourceFactory:
    name = "records"

    def __call__(self, options: Mapping[str, Any], *, batch_size: int) -> RecordsSource:
        check_options("source", options, allowed=("data",), required=("data",))
        data = options["data"]
        if isinstance(data, str | bytes | Mapping) or not hasattr(data, "__iter__"):
            raise ConfigError("source.data", "must be an iterable of dicts (a list, a generator, ...)")
        return RecordsSource(data, batch_size)


@hookimpl
def register_sources(register: Any) -> None:
    register(RecordsSourceFactory())
