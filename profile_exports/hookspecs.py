"""Hook specifications: the whole contract between the core and its plugins.

Registration hooks take a typed callback (``register``) instead of returning values, so the core
rebuilds its collections from the hooks on every plugin manager and never keeps a global registry.
Lifecycle hooks receive frozen objects and return nothing; none of them is ``firstresult``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .interfaces import Register
    from .results import CommittedFile, ExportResult, RunInfo

PROJECT_NAME = "profile_exports"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_writers(register: Register) -> None:
    """Register file formats.

    :param register: call ``register(writer)`` once per format; ``writer.name`` is the value of the
        ``format`` setting that selects it (``csv``, ``json``, ...). A later registration of the same
        name replaces an earlier one, so third-party plugins can override built-ins.
    """


@hookspec
def register_sinks(register: Register) -> None:
    """Register destinations.

    :param register: call ``register(sink_factory)`` once per kind; ``sink_factory.protocols`` lists
        the URL schemes it serves (``("s3", "s3a")``); ``"*"`` serves any URL nothing else claims.
    """


@hookspec
def register_sources(register: Register) -> None:
    """Register profile sources.

    :param register: call ``register(source_factory)`` once per kind; ``source_factory.name`` is the
        value of ``[source] kind`` that selects it.
    """


@hookspec
def register_transforms(register: Register) -> None:
    """Register column transforms (PII controls such as masking or tokenising).

    :param register: call ``register(transform)`` once per transform; ``transform.name`` is the key of
        ``[transforms] apply`` that selects it (``hash`` and ``drop`` are built in). A transform has
        ``output_type(type) -> type | None`` (None: the column is left out) and
        ``apply(column, context) -> column`` for one output column's Arrow array of a batch;
        ``context`` (:class:`profile_exports.transforms.TransformContext`) holds the column name, the
        salt and the transform's ``[transforms.options.<name>]`` table. It must return an array of
        the type ``output_type`` gave, with one value per row.
    """


@hookspec
def export_started(run: RunInfo) -> None:
    """A run has passed preflight and is about to read its source.

    :param run: the frozen description of the run (export id, destination, format, columns unknown yet).
    """


@hookspec
def file_committed(run: RunInfo, file: CommittedFile) -> None:
    """A file is complete and visible under its final name.

    :param run: the run the file belongs to.
    :param file: key, partition, part number, rows, bytes and checksum of the file.
    """


@hookspec
def export_finished(run: RunInfo, result: ExportResult) -> None:
    """A run has committed every file.

    :param result: the frozen result that the API returns to the caller.
    """


@hookspec
def export_failed(run: RunInfo, error: BaseException) -> None:
    """A run stopped with an error; files already committed stay, nothing partial is visible.

    :param error: the exception that ended the run (it is re-raised to the caller afterwards).
    """
