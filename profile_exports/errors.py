"""The one exception tree of the library.

Every message says what was wrong, where (field path, file, partition, record) and what to do.
No message ever carries a credential: sinks redact URLs and never echo option values.
"""

from __future__ import annotations

from typing import Any


class ProfileExportsError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigError(ProfileExportsError, ValueError):
    """A setting is missing, unknown or breaks a rule. ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)

    def __reduce__(self) -> tuple[Any, ...]:  # errors cross process boundaries (parallel partitions)
        return (type(self), (self.field, self.reason))


class PluginError(ProfileExportsError):
    """A plugin failed to load or to register, or a requested component does not exist."""


class MissingExtraError(PluginError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, what: str, extra: str, package: str) -> None:
        self.what, self.extra, self.package = what, extra, package
        super().__init__(f"{what} needs the optional package {package!r}: pip install 'profile-exports[{extra}]'")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.what, self.extra, self.package))


class DataError(ProfileExportsError):
    """A record cannot be exported as it is. The message names the record and the field."""


class SinkError(ProfileExportsError):
    """The destination refused or failed an operation.

    ``status`` is the remote status code when there is one (HTTP status, errno, ...).
    """

    def __init__(self, message: str, *, destination: str = "", status: int | str | None = None) -> None:
        self.destination = destination
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_sink_error, (type(self), str(self), self.destination, self.status))


def _sink_error(cls: type[SinkError], message: str, destination: str, status: int | str | None) -> SinkError:
    return cls(message, destination=destination, status=status)


class ExportAborted(ProfileExportsError):
    """A run stopped before finishing; no file of it is visible under a final name but committed ones."""


class ExportStopped(ExportAborted):
    """A stop was requested while the run was going: the current file was finished, then the run ended.

    The run wrote no manifest and advanced no state, so its files are not a complete run.
    """


class StateError(ProfileExportsError):
    """The export center's own files (its registry, the fingerprint state) cannot be used.

    ``path`` names the file or folder; the message says what happened and what to do.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # raised in worker processes too (their partition's state)
        return (_state_error, (type(self), str(self), self.path))


def _state_error(cls: type[StateError], message: str, path: str) -> StateError:
    return cls(message, path=path)


class StateDamaged(StateError):
    """A file of the export center is damaged: truncated, overwritten, or not what it should be."""


class StateUnwritable(StateError):
    """A file of the export center cannot be written: the disk is full, or the folder is read-only."""
