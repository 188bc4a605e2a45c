"""The fsspec sink: local paths, ``file://``, ``memory://`` and any other fsspec URL.

A file is written under a hidden temporary name beside its final key and renamed when complete,
so the final key never shows a partial file (a rename is atomic on local disks; on object stores
fsspec copies, and the dedicated cloud sinks do better).

On local disk the sink never writes through a symbolic link or into a folder standing at a final
name: each folder below the destination root is opened with ``O_NOFOLLOW`` from its parent's
descriptor (a link there, even one leading inside the destination, is refused with a ``SinkError``),
the temporary file is created ``O_EXCL | O_NOFOLLOW`` in the folder so opened, and the commit is a
``rename`` within it, which replaces a file or a link at the final name but never follows one and
fails on a folder. The destination root itself is followed: users point it at a link on purpose.
A temporary file is ``flock``-ed while its run lives, so the next run of the same export can tell
the leftovers of a killed run (unlocked, old, named like this export's files) from live ones.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import re
import stat
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import SinkError
from ..hookspecs import hookimpl
from ..manifest import MANIFEST_FOLDER, manifest_name
from ..naming import _FIXED_FOLDERS
from ..results import CommittedFile
from ..templates import Template, parse_template
from ..urls import join, redact_url

if TYPE_CHECKING:
    from ..naming import FileNamer

try:  # the lock that marks a temporary file as a live run's; every POSIX system has flock
    import fcntl
except ImportError:  # pragma: no cover - Windows: local files go through fsspec, without these checks
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("profile_exports.sinks.fsspec")

# Beside the manifests, never in a data folder (a probe left by a killed process would meet readers).
PROBE_PREFIX = f"{MANIFEST_FOLDER}/.profile-exports-probe-"
_TEMP_HEX = 12  # hex digits of the random part of a temporary name: .<final name>.<hex>.partial
# An unlocked temporary file younger than this is never swept: where locks do not reach between
# machines (NFS mounted "nolock", some FUSE mounts) it may be a live run's. Recurring exports run
# every 4 hours at most, so a killed run's leftovers go at the next scheduled run.
LEFTOVER_MIN_AGE_SECONDS = 3600
_SAFE_LOCAL = fcntl is not None and hasattr(os, "O_NOFOLLOW") and os.open in os.supports_dir_fd
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # a filesystem without flock: age alone decides


def _temp_name(base: str) -> str:
    return f".{base}.{uuid.uuid4().hex[:_TEMP_HEX]}.partial"


class _HashedWrites:
    """Writes to an open handle, counted and hashed on the way (both kinds of sink file)."""

    key: str
    _sink: Any
    _handle: Any
    _hash: Any
    _written: int

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes | memoryview) -> None:
        with self._sink.errors(f"write {self.key!r}"):
            self._handle.write(data)
        self._hash.update(data)
        self._written += len(data)


class FsspecFile(_HashedWrites):
    def __init__(self, sink: FsspecSink, key: str) -> None:
        self.key = key
        self._sink = sink
        self._final = sink.path_of(key)
        folder, base = posixpath.split(self._final)
        self._temp = posixpath.join(folder, _temp_name(base))
        self._hash = hashlib.sha256()
        self._written = 0
        with sink.errors(f"create {key!r}"):
            if folder:
                sink.fs.makedirs(folder, exist_ok=True)
            self._handle = sink.fs.open(self._temp, "wb")

    def commit(self) -> CommittedFile:
        with self._sink.errors(f"commit {self.key!r}"):
            self._handle.close()
            self._sink.fs.mv(self._temp, self._final)
        return CommittedFile(
            key=self.key,
            url=self._sink.url_of(self.key),
            bytes=self._written,
            sha256=self._hash.hexdigest(),
        )

    def abort(self) -> None:
        try:
            self._handle.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._sink.fs.rm(self._temp)


class LocalFile(_HashedWrites):
    """A local file written under a locked temporary name in its folder, opened without following links."""

    def __init__(self, sink: FsspecSink, key: str) -> None:
        self.key = key
        self._sink = sink
        self._hash = hashlib.sha256()
        self._written = 0
        self._done = False
        self._folder, self._base = sink.open_folder(key, f"create {key!r}")
        try:
            sink.refuse_final_name(self._folder, key, self._base)  # before a byte is written
            with sink.errors(f"create {key!r}"):
                self._temp, fd = _create_locked_temp(self._folder, self._base)
        except BaseException:
            os.close(self._folder)
            raise
        # A second descriptor keeps the lock from the handle's close (which reports late write errors,
        # NFS's among them) until the rename: an unlocked temporary file may be swept.
        self._lock = os.dup(fd)
        self._handle = os.fdopen(fd, "wb")

    def commit(self) -> CommittedFile:
        try:
            with self._sink.errors(f"commit {self.key!r}"):
                self._handle.close()
            self._sink.refuse_final_name(self._folder, self.key, self._base)
            self._rename()
        except BaseException:
            self.abort()
            raise
        self._release()
        return CommittedFile(
            key=self.key,
            url=self._sink.url_of(self.key),
            bytes=self._written,
            sha256=self._hash.hexdigest(),
        )

    def _rename(self) -> None:
        try:
            # Within the folder's descriptor: a link put at the final name since the check above is
            # replaced, never followed; a folder put there makes the rename fail.
            with self._sink.errors(f"commit {self.key!r}"):
                os.rename(self._temp, self._base, src_dir_fd=self._folder, dst_dir_fd=self._folder)
        except SinkError as exc:
            if exc.status in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                self._sink.refuse_final_name(self._folder, self.key, self._base)
            raise

    def abort(self) -> None:
        if self._done:
            return
        try:
            self._handle.close()
        finally:
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp, dir_fd=self._folder)
            finally:
                self._release()

    def _release(self) -> None:
        self._done = True
        os.close(self._lock)
        os.close(self._folder)


def _create_locked_temp(folder: int, base: str) -> tuple[str, int]:
    """A new temporary file for ``base`` in ``folder``, locked, and its descriptor.

    A sweep removes a temporary file only while holding its lock; one that got in between our
    create and our lock has unlinked the file, so we see no link to it and make another.
    """
    for _ in range(3):
        temp = _temp_name(base)
        fd = os.open(temp, _NEW_FILE_FLAGS, 0o666, dir_fd=folder)
        try:
            locked = _lock_if_free(fd)
            if locked and os.fstat(fd).st_nlink:
                return temp, fd
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder)
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, "temporary files kept being removed as they were created")


def _lock_if_free(fd: int) -> bool:
    """Take the file's exclusive lock; False when someone holds it (a filesystem without locks: True)."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
    return True


def _link_target(folder: int, name: str) -> str:
    try:
        return os.readlink(name, dir_fd=folder)
    except OSError:
        return "?"


# -- leftovers of killed runs -------------------------------------------------------------------------

_RUN_VARIABLES = {"Timestamp": "[0-9]+", "Instance-id": "[0-9]+", "Date": "[0-9]{8}"}
_RUN_SUFFIX = "-[0-9]+-[0-9]+-[0-9]{5,}"  # -<timestamp>-<instance-id>-<part>, as naming.FileNamer appends
_EXTENSION = r"\.[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*"  # any format's: an export that changed format still owns its files
_DEFAULT_STEM = "{{Account-id}}-{{Export-id}}"  # the default file name before _RUN_SUFFIX (naming.FileNamer)


def leftover_patterns(namer: FileNamer) -> list[tuple[list[re.Pattern[str]], re.Pattern[str]]]:
    """Where an export's temporary files can be and their names: (folder names by level, file name).

    The data files' temporary files count only when the export id is in their folder or file name:
    without it, another export's files could have the very same names. Manifests always carry it.
    """
    config = namer.config
    values = {**_RUN_VARIABLES, "Account-id": re.escape(config.account_id), "Export-id": re.escape(namer.export_id)}
    before, _, after = manifest_name(config.account_id, namer.export_id, "*").partition("*")
    patterns = [
        ([re.compile(re.escape(MANIFEST_FOLDER))], _temp_pattern(f"{re.escape(before)}[0-9]+{re.escape(after)}"))
    ]
    destination = config.destination
    folder_text = (
        destination.folder_template if destination.folders == "custom" else _FIXED_FOLDERS[destination.folders]
    )
    folder = parse_template(folder_text, "destination.folder_template") if folder_text else None
    stem = destination.file_name_template() or parse_template(_DEFAULT_STEM, "destination.file_name")
    if "Export-id" in stem.variables | (folder.variables if folder is not None else frozenset()):
        levels = [re.compile(level) for level in _pattern(folder, values).split("/")] if folder is not None else []
        patterns.append((levels, _temp_pattern(_pattern(stem, values) + _RUN_SUFFIX + _EXTENSION)))
    return patterns


def _pattern(template: Template, values: Mapping[str, str]) -> str:
    """A regular expression for what ``template`` renders; '/' between folder levels kept as it is."""
    return "".join(
        values[text] if is_variable else "/".join(map(re.escape, text.split("/")))
        for is_variable, text in template.parts
    )


def _temp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{name}\.[0-9a-f]{{{_TEMP_HEX}}}\.partial")


def _matching_folders(parent: int, levels: list[re.Pattern[str]]) -> Iterator[int]:
    """Descriptors of the folders below ``parent`` whose names match ``levels``; links are not followed."""
    if not levels:
        yield parent
        return
    with os.scandir(parent) as entries:
        names = [e.name for e in entries if levels[0].fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    for name in names:
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError:  # gone since, or swapped for a link
            continue
        try:
            yield from _matching_folders(child, levels[1:])
        finally:
            os.close(child)


def _sweep_folder(folder: int, name: re.Pattern[str], now: float) -> int:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if name.fullmatch(e.name)]
    return sum(_remove_if_dead(folder, temp, now) for temp in names)


def _remove_if_dead(folder: int, name: str, now: float) -> bool:
    """Remove a temporary file no live run holds (its lock is free) and nobody wrote to for a while."""
    try:
        # Read-write: NFS grants an exclusive flock only on a file open for writing.
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError:  # gone, a link, or not ours to open
        return False
    try:
        seen = os.fstat(fd)
        if not stat.S_ISREG(seen.st_mode) or now - seen.st_mtime < LEFTOVER_MIN_AGE_SECONDS:
            return False
        if not _lock_if_free(fd):
            return False  # a live run's
        current = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if (current.st_dev, current.st_ino) != (seen.st_dev, seen.st_ino):
            return False
        os.unlink(name, dir_fd=folder)  # lock held: a writer locking it after this sees it unlinked
        return True
    except OSError as exc:
        log.warning("could not remove the leftover temporary file %r: %s", name, exc.strerror or exc)
        return False
    finally:
        os.close(fd)


class FsspecSink:
    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.display_url = redact_url(url)
        self._url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **dict(options))
        except ImportError as exc:
            raise SinkError(
                f"{self.display_url}: no filesystem for this URL is installed ({exc}). Install the "
                "matching extra, e.g. pip install 'profile-exports[s3]'",
                destination=self.display_url,
            ) from None
        except (ValueError, TypeError) as exc:
            raise SinkError(
                f"{self.display_url}: cannot open this destination: {exc}", destination=self.display_url
            ) from None
        self.local = _SAFE_LOCAL and isinstance(self.fs, LocalFileSystem)

    def path_of(self, key: str) -> str:
        return posixpath.join(self.root, key) if self.root else key

    def url_of(self, key: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if protocol in ("file", "local"):
            return self.path_of(key)
        return f"{protocol}://{join(self.root, key)}"

    def errors(self, action: str) -> _Errors:
        return _Errors(self, action)

    def check_access(self) -> None:
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"
        if self.local:
            self._check_local_access(key)
            return
        path = self.path_of(key)
        with self.errors("write a probe file (checking write access)"):
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with self.fs.open(path, "wb") as handle:
                handle.write(b"profile-exports write check\n")
        with self.errors("delete the probe file (checking write access)"):
            self.fs.rm(path)

    def _check_local_access(self, key: str) -> None:
        action = "write a probe file (checking write access)"
        folder, base = self.open_folder(key, action)
        try:
            with self.errors(action):
                fd = os.open(base, _NEW_FILE_FLAGS, 0o666, dir_fd=folder)
                try:
                    os.write(fd, b"profile-exports write check\n")
                finally:
                    os.close(fd)
            with self.errors("delete the probe file (checking write access)"):
                os.unlink(base, dir_fd=folder)
        finally:
            os.close(folder)

    def open(self, key: str, *, content_type: str = "", content_encoding: str | None = None) -> FsspecFile | LocalFile:
        return LocalFile(self, key) if self.local else FsspecFile(self, key)

    # -- local disk: folders opened without following links ----------------------------------------

    def open_folder(self, key: str, action: str) -> tuple[int, str]:
        """The descriptor of ``key``'s folder (made as needed) and the file's name in it.

        Every folder below the root is opened from its parent's descriptor with ``O_NOFOLLOW``: once
        opened, swapping a folder for a link changes nothing for this file.
        """
        *folders, base = key.split("/")
        with self.errors(action):
            os.makedirs(self.root, exist_ok=True)
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root may be a link
        try:
            for depth, name in enumerate(folders):
                child = self._open_subfolder(fd, name, "/".join(folders[: depth + 1]), action)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd, base

    def _open_subfolder(self, parent: int, name: str, path: str, action: str) -> int:
        if name in ("", ".", ".."):
            raise SinkError(
                f"{self.display_url}: cannot {action}: {path!r} is not a folder name inside the destination",
                destination=self.display_url,
            )
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._not_a_folder(parent, name, path, action, exc) from None
        with self.errors(action), contextlib.suppress(FileExistsError):  # made meanwhile: fine
            os.mkdir(name, 0o777, dir_fd=parent)
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise self._not_a_folder(parent, name, path, action, exc) from None

    def _not_a_folder(self, parent: int, name: str, path: str, action: str, exc: OSError) -> SinkError:
        """Why ``path`` could not be opened as a folder: a link, a file, or the filesystem's error."""
        where = self.display_url
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError:
            return _Errors(self, action).error(exc)
        if stat.S_ISLNK(info.st_mode):
            return SinkError(
                f"{where}: cannot {action}: {path!r} is a symbolic link (to {_link_target(parent, name)!r}); "
                "files are written only into real folders inside the destination, never through a link, "
                "which could lead outside it. Replace it with a real folder, or set destination.url to "
                "the folder it leads to",
                destination=where,
                status=errno.ELOOP,
            )
        if not stat.S_ISDIR(info.st_mode):
            return SinkError(
                f"{where}: cannot {action}: {path!r} is a file where the export needs a folder; move or "
                "delete it, or change destination.folders",
                destination=where,
                status=errno.ENOTDIR,
            )
        return _Errors(self, action).error(exc)

    def refuse_final_name(self, folder: int, key: str, base: str) -> None:
        """Raise a ``SinkError`` if a folder or a link stands at ``key``'s final name (a file may)."""
        where = self.display_url
        try:
            info = os.stat(base, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _Errors(self, f"commit {key!r}").error(exc) from None
        if stat.S_ISLNK(info.st_mode):
            raise SinkError(
                f"{where}: cannot commit {key!r}: {key!r} is a symbolic link (to {_link_target(folder, base)!r}); "
                "a file is never written through a link, which could lead outside the destination. Remove "
                "the link (the export then writes its file there), or change destination.file_name",
                destination=where,
                status=errno.ELOOP,
            )
        if stat.S_ISDIR(info.st_mode):
            raise SinkError(
                f"{where}: cannot commit {key!r}: {key!r} is a folder, where the export commits a file; "
                "move or delete the folder, or change destination.file_name",
                destination=where,
                status=errno.EISDIR,
            )

    def sweep_leftovers(self, namer: FileNamer) -> int:
        """Remove the temporary files that killed runs of ``namer``'s export left; how many.

        Only files named like this export's temporary files, unlocked (no live run holds them) and
        untouched for ``LEFTOVER_MIN_AGE_SECONDS``. Never fails the run: a file it cannot remove is
        logged and left. Other sinks leave no such files (uploads are aborted or expire).
        """
        if not self.local:
            return 0
        try:
            root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return 0  # no destination yet, so nothing left over
        removed = 0
        try:
            for folders, name in leftover_patterns(namer):
                for folder in _matching_folders(root, folders):
                    removed += _sweep_folder(folder, name, time.time())
        except OSError as exc:
            log.warning("%s: could not sweep leftover temporary files: %s", self.display_url, exc.strerror or exc)
        finally:
            os.close(root)
        if removed:
            log.info(
                "%s: removed %d temporary file(s) left by killed runs of export %s",
                self.display_url,
                removed,
                namer.export_id,
            )
        return removed

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path_of(key)))

    def read_bytes(self, key: str) -> bytes:
        with self.errors(f"read {key!r}"):
            data = self.fs.cat_file(self.path_of(key))
        return bytes(data)

    def close(self) -> None:
        return None


class _Errors:
    """Turns filesystem errors into ``SinkError``s that say what to do."""

    def __init__(self, sink: FsspecSink, action: str) -> None:
        self._sink = sink
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, OSError):
            return
        raise self.error(exc) from exc

    def error(self, exc: OSError) -> SinkError:
        where = self._sink.display_url
        code = exc.errno
        if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "no permission to write there; grant write access or choose another destination"
        elif isinstance(exc, FileNotFoundError):
            hint = "the location does not exist; create the bucket or folder, or fix destination.url"
        elif code == errno.ENOSPC:
            hint = "the disk is full; free space or choose another destination"
        else:
            hint = "check that the destination is reachable and writable"
        return SinkError(
            f"{where}: could not {self._action}: {exc.strerror or exc} (status {code}); {hint}",
            destination=where,
            status=code,
        )


class FsspecSinkFactory:
    name = "fsspec"
    protocols = ("*",)

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> FsspecSink:
        return FsspecSink(url, options)


@hookimpl
def register_sinks(register: Any) -> None:
    register(FsspecSinkFactory())
