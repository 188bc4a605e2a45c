"""The Google Cloud Storage sink: ``gs://bucket/prefix`` on the official ``google-cloud-storage`` SDK.

Files are streamed with a GCS *resumable upload*: a session is opened when the first chunk is full,
every ``chunk_size`` bytes are sent with ``Content-Range: bytes a-b/*`` (at most one chunk in memory),
and the last request carries the total size, which finalizes the object. Until then nothing is
visible under the key; an aborted file cancels its session (``DELETE`` of the session URI). A file
smaller than one chunk is sent in one request. Each request is retried by our ``RetryPolicy``
(the SDK's own retries are off), resending the same chunk, as the SDK's own resumable uploader does.

Credentials: ``storage_options.credentials_file`` (any Google credentials JSON, usually a
service-account key), anonymous with ``endpoint_url`` or ``STORAGE_EMULATOR_HOST`` (emulators),
otherwise the SDK's standard chain (Application Default Credentials).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, MissingExtraError, SinkError
from ..hookspecs import hookimpl
from ..manifest import MANIFEST_FOLDER
from ..options import check_options
from ..results import CommittedFile
from ..uploads import MIB, PartedUpload, RetryPolicy, with_retries
from ..urls import join, redact_url

# Beside the manifests, never in a data folder (a probe left by a killed process would meet readers).
PROBE_PREFIX = f"{MANIFEST_FOLDER}/.profile-exports-probe-"
OPTIONS = ("project", "credentials_file", "endpoint_url", "chunk_size_mb", "timeout")
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
CHUNK_ALIGN = 256 * 1024  # GCS accepts resumable chunks in multiples of 256 KiB (but the last)
DEFAULT_CHUNK_MB = 8
DEFAULT_TIMEOUT = 120.0
SECTION = "destination.storage_options"

HINT_403 = (
    "a 403 from GCS usually means the service-account key is invalid or expired, or lacks "
    "storage.objects.create/delete on the bucket; check the key and its IAM roles"
)
HINT_401 = (
    "GCS rejected the credentials as invalid or expired; check storage_options.credentials_file or the "
    "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login)"
)


def _storage() -> Any:
    try:
        from google.cloud import storage
    except ImportError:
        raise MissingExtraError("the gcs sink", "gcs", "google-cloud-storage") from None
    return storage


# -- errors --------------------------------------------------------------------------------------


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an SDK or transport error, when the server answered."""
    code = getattr(error, "code", None)
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code < 600:
        return code
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(error: BaseException) -> bool:
    """Throttling (429), timeouts (408), 5xx and dropped or refused connections; never other 4xx."""
    status = status_of(error)
    if status is not None:
        return status in (408, 429) or status >= 500
    import google.auth.exceptions
    import requests

    if isinstance(error, google.auth.exceptions.RefreshError):
        return False  # bad credentials, not a network problem
    return isinstance(
        error,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | google.auth.exceptions.TransportError
        | ConnectionError
        | TimeoutError,
    )


_QUERY = re.compile(r"\?[^\s'\"]*")


def _sanitize(text: str) -> str:
    """No query strings (upload session ids, signatures) in messages."""
    return _QUERY.sub("?...", text)


def _reason(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if response is not None:
        try:
            message = response.json()["error"]["message"]
        except Exception:
            message = getattr(response, "reason", "") or ""
        if message:
            return _sanitize(str(message))[:300]
    status = status_of(error)
    if status is not None:
        return type(error).__name__
    text = str(error).strip()
    return _sanitize(f"{type(error).__name__}: {text}" if text else type(error).__name__)[:300]


class _ResumableResponse(Exception):
    """A resumable-upload response we did not expect (status and reason only)."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.code = response.status_code
        super().__init__(f"HTTP {response.status_code}")


# -- the sink ------------------------------------------------------------------------------------


class GcsSink:
    """An open ``gs://bucket/prefix``. Never deletes exported objects (only its own probe)."""

    def __init__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> None:
        self.display_url = redact_url(url)
        parts = urlsplit(url)
        self.bucket_name = parts.netloc.rsplit("@", 1)[-1]
        self.prefix = parts.path.strip("/")
        if not self.bucket_name:
            raise ConfigError("destination.url", f"{self.display_url}: no bucket; use gs://bucket/prefix")
        check_options(SECTION, options, allowed=OPTIONS)
        self.part_size = _chunk_size(options.get("chunk_size_mb", DEFAULT_CHUNK_MB))
        self.timeout = _positive_float("timeout", options.get("timeout", DEFAULT_TIMEOUT))
        self.policy = RetryPolicy(attempts=max_retries + 1)
        storage = _storage()
        endpoint = options.get("endpoint_url")
        if endpoint is not None and (not isinstance(endpoint, str) or "://" not in endpoint):
            raise ConfigError(f"{SECTION}.endpoint_url", "must be a URL such as http://127.0.0.1:4443")
        self.endpoint = redact_url(
            endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"
        )
        credentials, project = self._credentials(
            options, anonymous=bool(endpoint or os.environ.get("STORAGE_EMULATOR_HOST"))
        )
        project = options.get("project") or project
        from google.auth.transport.requests import AuthorizedSession

        self.session = AuthorizedSession(credentials)
        client_options = {"api_endpoint": endpoint} if endpoint else None
        self.client = storage.Client(
            project=project, credentials=credentials, client_options=client_options, _http=self.session
        )
        self.bucket = self.client.bucket(self.bucket_name)

    def __repr__(self) -> str:
        return f"GcsSink({self.display_url!r})"

    def _credentials(self, options: Mapping[str, Any], *, anonymous: bool) -> tuple[Any, str | None]:
        import google.auth
        import google.auth.exceptions

        path = options.get("credentials_file")
        if path is not None:
            try:
                from google.oauth2 import service_account

                credentials = service_account.Credentials.from_service_account_file(os.fspath(path), scopes=SCOPES)
                project = credentials.project_id
            except Exception as exc:
                # never echo the file's content: only whether it exists and the kind of failure
                found = "the file does not exist" if not os.path.exists(os.fspath(path)) else "it is not a valid key"
                raise SinkError(
                    f"{self.display_url}: cannot load storage_options.credentials_file: {found} "
                    f"({type(exc).__name__}); point it at a service-account JSON key downloaded from the "
                    "Google Cloud console",
                    destination=self.display_url,
                ) from None
            return credentials, project
        if anonymous:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials(), None
        try:
            return google.auth.default(scopes=SCOPES)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise SinkError(
                f"{self.display_url}: no Google credentials found ({_sanitize(str(exc))[:200]}); set "
                "storage_options.credentials_file to a service-account key, set GOOGLE_APPLICATION_CREDENTIALS, "
                "or run gcloud auth application-default login",
                destination=self.display_url,
            ) from None

    # -- helpers ---------------------------------------------------------------------------------

    def name_of(self, key: str) -> str:
        return join(self.prefix, key)

    def url_of(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self.name_of(key)}"

    def call(self, action: str, call: Any, *, session_404: bool = False) -> Any:
        """``call()`` with our retry policy; failures become ``SinkError``s that say what to do."""
        try:
            return with_retries(call, policy=self.policy, transient=is_transient)
        except SinkError:
            raise
        except Exception as exc:
            raise self.describe_error(action, exc, session_404=session_404) from exc

    def describe_error(self, action: str, error: BaseException, *, session_404: bool = False) -> SinkError:
        import google.auth.exceptions

        status = status_of(error)
        tries = f" (tried {self.policy.attempts} times)" if is_transient(error) and self.policy.attempts > 1 else ""
        if isinstance(error, google.auth.exceptions.RefreshError) or status == 401:
            hint = HINT_401
        elif status == 403:
            hint = HINT_403
        elif status == 404 and session_404:
            hint = "the resumable upload session expired or was cancelled; run the export again"
        elif status == 404:
            hint = f"the bucket {self.bucket_name!r} does not exist; create it or fix destination.url"
        elif status == 429:
            hint = f"GCS is throttling requests{tries}; try again later or raise destination.max_retries"
        elif status is not None and status >= 500:
            hint = f"GCS is failing or unavailable{tries}; try again later or raise destination.max_retries"
        elif status is None and is_transient(error):
            hint = f"could not reach GCS at {self.endpoint}{tries}; check the network, or storage_options.endpoint_url"
        else:
            hint = "check the bucket name, the object key and the storage options"
        shown = status if status is not None else "no response"
        return SinkError(
            f"{self.display_url}: could not {action}: {_reason(error)} (status {shown}); {hint}",
            destination=self.display_url,
            status=status,
        )

    # -- Sink --------------------------------------------------------------------------------------

    def check_access(self) -> None:
        blob = self.bucket.blob(self.name_of(f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}"))
        self.call(
            "write a probe object (checking write access)",
            lambda: blob.upload_from_string(
                b"profile-exports write check\n", content_type="text/plain", retry=None, timeout=self.timeout
            ),
        )
        self.call("delete the probe object (checking delete access)", lambda: _delete_probe(blob, self.timeout))

    def open(self, key: str, *, content_type: str = "", content_encoding: str | None = None) -> GcsFile:
        return GcsFile(self, key, content_type=content_type or "application/octet-stream", encoding=content_encoding)

    def exists(self, key: str) -> bool:
        blob = self.bucket.blob(self.name_of(key))
        return bool(self.call(f"check whether {key!r} exists", lambda: blob.exists(retry=None, timeout=self.timeout)))

    def read_bytes(self, key: str) -> bytes:
        """The stored bytes (gzip objects are not decompressed)."""
        blob = self.bucket.blob(self.name_of(key))
        data = self.call(
            f"read {key!r}",
            lambda: blob.download_as_bytes(raw_download=True, retry=None, timeout=self.timeout),
        )
        return bytes(data)

    def close(self) -> None:
        self.session.close()


def _delete_probe(blob: Any, timeout: float) -> None:
    from google.api_core.exceptions import NotFound

    try:
        blob.delete(retry=None, timeout=timeout)
    except NotFound:
        return  # a retry after a lost response: already gone


class GcsFile(PartedUpload):
    """One object, uploaded through a resumable session; visible only once finalized."""

    def __init__(self, sink: GcsSink, key: str, *, content_type: str, encoding: str | None) -> None:
        super().__init__(key, sink.url_of(key), part_size=sink.part_size, policy=sink.policy)
        self._sink = sink
        self._blob = sink.bucket.blob(sink.name_of(key))
        self._blob.content_type = content_type
        if encoding:
            self._blob.content_encoding = encoding
        self._content_type = content_type
        self._session_url: str | None = None
        self._offset = 0  # bytes the server has confirmed
        self._closing = False  # set in commit: the next part is the last
        self._finalized = False

    def __repr__(self) -> str:
        return f"GcsFile({self._url!r})"

    def commit(self) -> CommittedFile:
        self._closing = True
        return super().commit()

    # -- PartedUpload ------------------------------------------------------------------------------

    def put_whole(self, data: bytes) -> None:
        self._blob.upload_from_string(data, content_type=self._content_type, retry=None, timeout=self._sink.timeout)

    def start(self) -> None:
        self._session_url = self._blob.create_resumable_upload_session(
            content_type=self._content_type, retry=None, timeout=self._sink.timeout
        )

    def send_part(self, number: int, data: bytes) -> int:
        start = self._offset
        end = start + len(data)
        total = end if self._closing else None
        # The server may keep fewer bytes than sent (308 with a shorter Range): send the rest.
        for _ in range(100):
            skip = self._offset - start
            self._put(data[skip:], self._offset, total)
            if self._finalized or (total is None and self._offset >= end):
                return number
        raise SinkError(
            f"{self._sink.display_url}: GCS keeps accepting only part of chunk {number} of {self.key!r}; "
            "try again later",
            destination=self._sink.display_url,
        )

    def finish(self, parts: list[Any]) -> None:
        if not self._finalized:  # the size was a whole number of chunks: finalize with an empty request
            self._put(b"", self._offset, self._offset)
        if not self._finalized:
            raise SinkError(
                f"{self._sink.display_url}: GCS did not finalize {self.key!r}; run the export again",
                destination=self._sink.display_url,
            )

    def cancel(self) -> None:
        if self._session_url is not None:
            self._sink.session.delete(self._session_url, timeout=self._sink.timeout)

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)

    def describe_error(self, action: str, error: BaseException) -> SinkError:
        return self._sink.describe_error(action, error, session_404=self._session_url is not None)

    # -- internals ---------------------------------------------------------------------------------

    def _put(self, body: bytes, first: int, total: int | None) -> None:
        assert self._session_url is not None
        size = "*" if total is None else str(total)
        span = f"bytes {first}-{first + len(body) - 1}/{size}" if body else f"bytes */{size}"
        response = self._sink.session.put(
            self._session_url,
            data=body,
            headers={"Content-Range": span, "Content-Type": self._content_type},
            timeout=self._sink.timeout,
            allow_redirects=False,
        )
        if response.status_code == 308:
            kept = response.headers.get("Range", "")
            match = re.fullmatch(r"bytes=0-(\d+)", kept.strip())
            self._offset = int(match.group(1)) + 1 if match else 0
            return
        if response.status_code in (200, 201):
            if total is None:
                raise _ResumableResponse(response)  # finalized although we did not say it was the end
            stored = _stored_size(response)
            if stored is not None and stored != total:
                raise SinkError(
                    f"{self._sink.display_url}: GCS stored {stored} bytes for {self.key!r} but {total} were "
                    "written; run the export again",
                    destination=self._sink.display_url,
                )
            self._offset = total
            self._finalized = True
            return
        raise _ResumableResponse(response)


def _stored_size(response: Any) -> int | None:
    try:
        return int(response.json()["size"])
    except Exception:
        return None


def _chunk_size(value: Any) -> int:
    field = f"{SECTION}.chunk_size_mb"
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(field, f"must be a positive number of MiB (a multiple of 0.25); got {value!r}")
    size = round(value * MIB)
    if size % CHUNK_ALIGN or abs(size - value * MIB) > 0.5:
        raise ConfigError(field, f"must be a multiple of 0.25 MiB (256 KiB), as GCS requires; got {value!r}")
    return int(size)


def _positive_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{SECTION}.{key}", f"must be a positive number of seconds; got {value!r}")
    return float(value)


class GcsSinkFactory:
    name = "gcs"
    protocols = ("gs", "gcs")

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> GcsSink:
        return GcsSink(url, options, max_retries=max_retries)


@hookimpl
def register_sinks(register: Any) -> None:
    register(GcsSinkFactory())
