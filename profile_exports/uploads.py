"""Shared machinery of the object-store sinks: retries with backoff, and files uploaded in parts.

A cloud sink subclasses ``PartedUpload`` and says how to put a whole small object, how to start,
send and finish a multi-part upload, and how to abort one. This module buffers writes into parts of
``part_size`` bytes (memory: one part at a time), retries each remote call on transient errors with
exponential backoff and full jitter, hashes what was written, and makes the object visible only in
``finish`` (complete multipart / commit block list / finalize resumable).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from .errors import SinkError
from .results import CommittedFile

T = TypeVar("T")

MIB = 1024 * 1024


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """``attempts`` tries in all; the n-th wait is uniform in [0, min(max_delay, base_delay * 2**n)]."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


def with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    transient: Callable[[BaseException], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, again after a backoff while it fails with a transient error and tries remain."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            attempt += 1
            if attempt >= policy.attempts or not transient(exc):
                raise
            sleep(policy.delay(attempt))


class PartedUpload(abc.ABC):
    """A ``SinkFile`` for object stores: one object, uploaded in parts, visible only when finished."""

    def __init__(self, key: str, url: str, *, part_size: int, policy: RetryPolicy) -> None:
        self.key = key
        self._url = url
        self._part_size = part_size
        self._policy = policy
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._written = 0
        self._parts: list[Any] = []
        self._started = False
        self._done = False

    # -- what a store implements -----------------------------------------------------------------

    @abc.abstractmethod
    def put_whole(self, data: bytes) -> None:
        """Upload a small object in one request (visible when it returns)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin a multi-part upload (nothing visible yet)."""

    @abc.abstractmethod
    def send_part(self, number: int, data: bytes) -> Any:
        """Upload part ``number`` (1-based); return what ``finish`` needs to name it."""

    @abc.abstractmethod
    def finish(self, parts: list[Any]) -> None:
        """Make the object visible from its parts, atomically."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Abandon a started multi-part upload; nothing becomes visible."""

    @abc.abstractmethod
    def is_transient(self, error: BaseException) -> bool:
        """Throttling, 5xx, timeouts and dropped connections; never 4xx like 403 or 404."""

    @abc.abstractmethod
    def describe_error(self, action: str, error: BaseException) -> SinkError:
        """A ``SinkError`` naming the destination, the remote status and the likely fix."""

    # -- SinkFile ----------------------------------------------------------------------------------

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self._hash.update(data)
        self._written += len(data)
        while len(self._buffer) >= self._part_size:
            self._flush_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]

    def commit(self) -> CommittedFile:
        if not self._started:
            self._call("upload", lambda: self.put_whole(bytes(self._buffer)))
        else:
            if self._buffer:
                self._flush_part(bytes(self._buffer))
            parts = list(self._parts)
            self._call("complete the upload of", lambda: self.finish(parts))
        self._buffer = bytearray()
        self._done = True
        return CommittedFile(key=self.key, url=self._url, bytes=self._written, sha256=self._hash.hexdigest())

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._started and not self._done:
            self._done = True
            # The store expires abandoned parts itself; the run's own error matters more than this one.
            with contextlib.suppress(Exception):
                self.cancel()

    # -- internals -------------------------------------------------------------------------------

    def _flush_part(self, data: bytes) -> None:
        if not self._started:
            self._call("start the upload of", self.start)
            self._started = True
        number = len(self._parts) + 1
        self._parts.append(self._call(f"upload part {number} of", lambda: self.send_part(number, data)))

    def _call(self, action: str, call: Callable[[], T]) -> T:
        try:
            return with_retries(call, policy=self._policy, transient=self.is_transient)
        except SinkError:
            raise
        except Exception as exc:
            raise self.describe_error(f"{action} {self.key!r}", exc) from exc
