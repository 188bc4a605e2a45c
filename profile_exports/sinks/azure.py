"""The Azure Blob Storage sink: ``az://container/prefix`` (also ``abfs://`` and ``azure://``).

Files are uploaded as staged blocks (``stage_block``) and made visible under their final name only by
``commit_block_list``; a small file is one ``upload_blob``. An aborted file leaves only uncommitted
blocks, which are never visible and which Azure discards by itself after seven days, so there is
nothing to call on abort. Memory holds one block at a time (``block_size_mb``, default 8).

The account comes from ``storage_options``, in this order:

1. ``connection_string``;
2. ``account_url`` (or ``account_name``, giving ``https://{name}.blob.core.windows.net``, or the
   account in ``abfs://container@account.dfs.core.windows.net/...``) with ``account_key``,
   ``sas_token`` or ``credential`` (any Azure credential object);
3. the standard ``AZURE_STORAGE_CONNECTION_STRING`` environment variable, when no account is named;
4. the account URL with ``DefaultAzureCredential`` (environment, managed identity, Azure CLI, ...)
   when the optional ``azure-identity`` package is installed.

Secrets (account keys, SAS tokens, connection strings) never appear in reprs, messages or logs:
errors from the SDK are turned into ``SinkError``s built from the status and error code, with any
secret scrubbed, and the SDK's exception is not chained (its text may carry a signed URL).

The SDK's own retries are off (``retry_total=0``); each remote call is retried here on throttling
(429), 5xx and dropped connections with exponential backoff and jitter, ``max_retries`` times.
The library never deletes exported blobs; the only delete is of its own probe blob.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ..errors import MissingExtraError, SinkError
from ..hookspecs import hookimpl
from ..manifest import MANIFEST_FOLDER
from ..uploads import MIB, PartedUpload, RetryPolicy, with_retries
from ..urls import join

T = TypeVar("T")

# Beside the manifests, never in a data folder (a probe left by a killed process would meet readers).
PROBE_PREFIX = f"{MANIFEST_FOLDER}/.profile-exports-probe-"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BLOCK_MB = 4000  # Azure's largest block
OPTIONS = (
    "connection_string",
    "account_url",
    "account_name",
    "account_key",
    "sas_token",
    "credential",
    "block_size_mb",
)
SECRET_OPTIONS = ("connection_string", "account_key", "sas_token")
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"

FIX_CONTAINER = "the container does not exist; create it or fix destination.url"
FIX_CREDENTIALS = "the account key or SAS token is invalid or expired; regenerate it"
FIX_PERMISSION = "the SAS token or identity lacks write (w) and delete (d) permission on the container"
FIX_NETWORK = "cannot reach the storage account; check the account URL or connection string and the network"
FIX_OTHER = "check the storage account, the container and the credentials"

_SECRET_PATTERNS = (
    re.compile(r"(?i)(sig=)[^&\s'\"]+"),
    re.compile(r"(?i)(AccountKey=)[^;\s'\"]+"),
    re.compile(r"(?i)(SharedAccessSignature=)[^;\s'\"]+"),
)


def _import_blob() -> Any:
    try:
        import azure.storage.blob as blob
    except ImportError:
        raise MissingExtraError("the azure sink", "azure", "azure-storage-blob") from None
    return blob


def block_id(number: int) -> str:
    """The base64 block id of part ``number``: deterministic, and the same length for every part."""
    return base64.b64encode(f"profile-exports-block-{number:08d}".encode()).decode("ascii")


class AzureError(Exception):
    """An Azure SDK error reduced to what may be shown: status, error code and a scrubbed reason.

    The SDK's exceptions can carry signed URLs (a SAS signature in the query); this one never does.
    """

    def __init__(self, status: int | None, code: str | None, reason: str, *, transient: bool) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        self.transient = transient
        label = f"status {status}" if status is not None else "no response"
        super().__init__(label + (f" {code}" if code else "") + (f": {reason}" if reason else ""))


def is_transient(error: BaseException) -> bool:
    """Throttling, 5xx, timeouts and dropped connections; never 4xx such as 403 or 404."""
    if isinstance(error, AzureError):
        return error.transient
    try:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    except ImportError:  # pragma: no cover - azure-core comes with azure-storage-blob
        return isinstance(error, ConnectionError | TimeoutError)
    if isinstance(error, HttpResponseError):
        return getattr(error, "status_code", None) in TRANSIENT_STATUSES
    return isinstance(error, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError)


class _Secrets:
    """Scrubs known secret values, SAS signatures and account keys out of a text."""

    def __init__(self, values: list[str]) -> None:
        self._values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def __repr__(self) -> str:
        return "<secrets>"

    def scrub(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(r"\1***", text)
        return text


def _reduce(error: BaseException, secrets: _Secrets) -> AzureError:
    """``error`` as an ``AzureError`` (status, code, first line of the reason, secrets scrubbed)."""
    if isinstance(error, AzureError):
        return error
    status = getattr(error, "status_code", None)
    code = getattr(error, "error_code", None)
    if code is not None:
        code = str(getattr(code, "value", code))
    text = str(getattr(error, "reason", None) or getattr(error, "message", None) or error) or type(error).__name__
    reason = secrets.scrub(text.strip().splitlines()[0] if text.strip() else type(error).__name__)
    if status is None:
        reason = f"{type(error).__name__}: {reason}"
    return AzureError(status if isinstance(status, int) else None, code, reason, transient=is_transient(error))


def _guarded(call: Callable[[], T], secrets: _Secrets) -> Callable[[], T]:
    """``call`` raising ``AzureError``s only, with nothing of the SDK's exception chained."""

    def run() -> T:
        try:
            return call()
        except Exception as exc:
            reduced = _reduce(exc, secrets)
        raise reduced from None

    return run


# -- files -------------------------------------------------------------------------------------


class AzureFile(PartedUpload):
    """One blob: a single ``upload_blob`` when small, otherwise staged blocks committed at the end."""

    def __init__(
        self, sink: AzureSink, key: str, *, content_type: str, content_encoding: str | None, policy: RetryPolicy
    ) -> None:
        super().__init__(key, sink.url_of(key), part_size=sink.block_size, policy=policy)
        self._sink = sink
        self._blob = sink.container_client.get_blob_client(sink.blob_name(key))
        blob = _import_blob()
        self._content_settings = blob.ContentSettings(
            content_type=content_type or None, content_encoding=content_encoding or None
        )

    def __repr__(self) -> str:
        return f"AzureFile({self._url!r})"

    def _guard(self, call: Callable[[], T]) -> T:
        return _guarded(call, self._sink.secrets)()

    def put_whole(self, data: bytes) -> None:
        self._guard(
            lambda: self._blob.upload_blob(
                data, overwrite=True, content_settings=self._content_settings, max_concurrency=1
            )
        )

    def start(self) -> None:
        """Nothing to call: blocks are staged against the blob name and stay invisible until committed."""

    def send_part(self, number: int, data: bytes) -> str:
        ident = block_id(number)
        self._guard(lambda: self._blob.stage_block(ident, data, length=len(data)))
        return ident

    def finish(self, parts: list[Any]) -> None:
        blob = _import_blob()
        blocks = [blob.BlobBlock(block_id=ident) for ident in parts]
        self._guard(lambda: self._blob.commit_block_list(blocks, content_settings=self._content_settings))

    def cancel(self) -> None:
        """Nothing to call: uncommitted blocks are never visible and Azure discards them after 7 days."""

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)

    def describe_error(self, action: str, error: BaseException) -> SinkError:
        return self._sink.describe_error(action, error)


# -- sink --------------------------------------------------------------------------------------


class AzureSink:
    """An Azure Blob container and a prefix in it. ``display_url`` never holds a credential."""

    def __init__(
        self,
        *,
        scheme: str,
        container: str,
        prefix: str,
        service_client: Any,
        account: str,
        secrets: _Secrets,
        block_size: int,
        max_retries: int,
    ) -> None:
        self.scheme = scheme
        self.container = container
        self.prefix = prefix
        self.account = account
        self.secrets = secrets
        self.block_size = block_size
        self.display_url = f"{scheme}://{join(container, prefix)}"
        self.policy = RetryPolicy(attempts=max_retries + 1)
        self.service_client = service_client
        self.container_client = service_client.get_container_client(container)

    def __repr__(self) -> str:
        return f"AzureSink({self.display_url!r}, account={self.account!r})"

    # -- paths ---------------------------------------------------------------------------------

    def blob_name(self, key: str) -> str:
        return join(self.prefix, key)

    def url_of(self, key: str) -> str:
        return f"{self.scheme}://{join(self.container, self.prefix, key)}"

    # -- errors --------------------------------------------------------------------------------

    def describe_error(self, action: str, error: BaseException) -> SinkError:
        """A ``SinkError`` naming the destination, the remote status and the likely fix."""
        reduced = _reduce(error, self.secrets)
        status, code = reduced.status, reduced.code or ""
        if status == 404 and code in ("ContainerNotFound", ""):
            fix = FIX_CONTAINER
        elif status == 404:
            fix = "the blob does not exist; check the key"
        elif status == 403 and code.startswith("AuthorizationPermissionMismatch"):
            fix = FIX_PERMISSION
        elif status in (401, 403):
            fix = FIX_CREDENTIALS
        elif status is None and _is_credential_error(error):
            fix = (
                "no Azure credentials were found; set storage_options connection_string, account_key or "
                f"sas_token, or {CONNECTION_STRING_ENV}, or sign in (az login / managed identity)"
            )
        elif status is None:
            fix = FIX_NETWORK
        elif status in TRANSIENT_STATUSES:
            fix = "the service is throttling or failing; retry later or raise destination.max_retries"
        else:
            fix = FIX_OTHER
        where = f"{self.display_url} (account {self.account})" if self.account else self.display_url
        label = (f"status {status}" if status is not None else "no response") + (f" {code}" if code else "")
        message = f"{where}: could not {action}: {label}"
        if reduced.reason and reduced.reason != code:
            message += f" ({reduced.reason})"
        return SinkError(self.secrets.scrub(f"{message}; {fix}"), destination=self.display_url, status=status)

    def _call(self, action: str, call: Callable[[], T]) -> T:
        try:
            return with_retries(_guarded(call, self.secrets), policy=self.policy, transient=is_transient)
        except AzureError as exc:
            error = exc
        raise self.describe_error(action, error) from None

    # -- Sink ----------------------------------------------------------------------------------

    def check_access(self) -> None:
        """Upload and delete a probe blob under the prefix; fail with what to fix."""
        name = self.blob_name(f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}")
        probe = self.container_client.get_blob_client(name)
        self._call(
            "write a probe blob (checking write access)",
            lambda: probe.upload_blob(b"profile-exports write check\n", overwrite=True),
        )
        self._call(f"delete the probe blob {name!r} (checking delete access)", probe.delete_blob)

    def open(self, key: str, *, content_type: str = "", content_encoding: str | None = None) -> AzureFile:
        return AzureFile(self, key, content_type=content_type, content_encoding=content_encoding, policy=self.policy)

    def exists(self, key: str) -> bool:
        blob = self.container_client.get_blob_client(self.blob_name(key))
        return bool(self._call(f"check whether {key!r} exists", blob.exists))

    def read_bytes(self, key: str) -> bytes:
        blob = self.container_client.get_blob_client(self.blob_name(key))
        return bytes(
            self._call(f"read {key!r}", lambda: blob.download_blob(max_concurrency=1, decompress=False).readall())
        )

    def close(self) -> None:
        self.service_client.close()


def _is_credential_error(error: BaseException) -> bool:
    name = type(error).__name__
    return name in ("ClientAuthenticationError", "CredentialUnavailableError") or "credential" in name.lower()


# -- factory -----------------------------------------------------------------------------------


def _parse_url(url: str) -> tuple[str, str, str, str | None, str | None]:
    """scheme, container, prefix, account name (``container@account...``), SAS token in the query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    account: str | None = None
    if "@" in netloc:
        netloc, host = netloc.split("@", 1)
        account = host.split(".", 1)[0] or None
    container = netloc
    prefix = parts.path.strip("/")
    query = dict(parse_qsl(parts.query))
    sas = parts.query if "sig" in query else None
    return scheme, container, prefix, account, sas


def _account_from_url(account_url: str) -> str:
    """The account name of ``https://{name}.blob...`` or of an emulator's ``http://host:port/{name}``."""
    parts = urlsplit(account_url)
    host = parts.hostname or ""
    if host in ("localhost", "127.0.0.1", "::1") or re.fullmatch(r"[\d.]+", host):
        return parts.path.strip("/").split("/", 1)[0]
    return host.split(".", 1)[0]


def _account_from_connection_string(value: str) -> str:
    for item in value.split(";"):
        name, _, rest = item.partition("=")
        if name.strip().lower() == "accountname":
            return rest.strip()
    return ""


class AzureSinkFactory:
    name = "azure"
    protocols = ("az", "abfs", "azure")

    def __repr__(self) -> str:
        return "AzureSinkFactory()"

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> AzureSink:
        blob = _import_blob()
        scheme, container, prefix, url_account, url_sas = _parse_url(url)
        display = f"{scheme}://{join(container, prefix)}"

        def fail(message: str) -> SinkError:
            return SinkError(f"{display}: {message}", destination=display)

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise fail(
                f"unknown storage_options {', '.join(map(repr, unknown))} for the azure sink; "
                f"allowed: {', '.join(OPTIONS)}"
            )
        if not container:
            raise fail("no container in the URL; use az://container/prefix")
        size_mb = options.get("block_size_mb", 8)
        if isinstance(size_mb, bool) or not isinstance(size_mb, int | float) or not 0 < size_mb <= MAX_BLOCK_MB:
            raise fail(f"storage_options.block_size_mb must be a number of MiB above 0 and at most {MAX_BLOCK_MB}")
        for name in SECRET_OPTIONS:
            if options.get(name) is not None and not isinstance(options[name], str):
                raise fail(f"storage_options.{name} must be a string")

        known = [str(options.get(name) or "") for name in SECRET_OPTIONS]
        secrets = _Secrets([*known, *_connection_string_secrets(known[0]), url_sas or ""])
        # the SDK's retries off: ours (with_retries, max_retries + 1 attempts) are the only ones
        settings: dict[str, Any] = {"retry_total": 0}
        _hide_sas_in_http_logs()
        sas = options.get("sas_token") or url_sas
        key = options.get("account_key")
        credential = key or sas or options.get("credential")
        account_url = options.get("account_url")
        account_name = options.get("account_name") or url_account
        if sas:
            sas = sas.lstrip("?")
        try:
            if options.get("connection_string"):
                cs = options["connection_string"]
                client = blob.BlobServiceClient.from_connection_string(
                    cs, credential=_credential(account_name, key, sas, options.get("credential")), **settings
                )
                account = _account_from_connection_string(cs)
            elif account_url or account_name:
                if not account_url:
                    account_url = f"https://{account_name}.blob.core.windows.net"
                account = account_name or _account_from_url(account_url)
                if credential is None:
                    credential = _default_credential(fail)
                elif key:
                    if not account:
                        raise fail("storage_options.account_name is needed with account_key for this account_url")
                    credential = {"account_name": account, "account_key": key}
                elif sas:
                    credential = sas
                client = blob.BlobServiceClient(account_url, credential=credential, **settings)
            elif os.environ.get(CONNECTION_STRING_ENV):
                cs = os.environ[CONNECTION_STRING_ENV]
                secrets = _Secrets([*known, cs, *_connection_string_secrets(cs), url_sas or ""])
                client = blob.BlobServiceClient.from_connection_string(cs, **settings)
                account = _account_from_connection_string(cs)
            else:
                raise fail(
                    "no Azure storage account is configured; set storage_options connection_string, or "
                    "account_url / account_name with account_key, sas_token or credential, or the "
                    f"{CONNECTION_STRING_ENV} environment variable"
                )
        except SinkError:
            raise
        except (ValueError, TypeError) as exc:
            raise fail(f"cannot open this destination: {secrets.scrub(str(exc))}") from None
        return AzureSink(
            scheme=scheme,
            container=container,
            prefix=prefix,
            service_client=client,
            account=account,
            secrets=secrets,
            block_size=max(1, int(size_mb * MIB)),
            max_retries=max_retries,
        )


def _credential(account: str | None, key: str | None, sas: str | None, credential: Any) -> Any:
    if key and account:
        return {"account_name": account, "account_key": key}
    return sas or credential or None


def _connection_string_secrets(value: str) -> list[str]:
    out = []
    for item in value.split(";"):
        name, _, rest = item.partition("=")
        if name.strip().lower() in ("accountkey", "sharedaccesssignature"):
            out.append(rest.strip())
    return out


def _default_credential(fail: Callable[[str], SinkError]) -> Any:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise fail(
            "no credential for the account: set storage_options account_key, sas_token or credential, or "
            "install azure-identity to use DefaultAzureCredential (environment, managed identity, az login)"
        ) from None
    return DefaultAzureCredential()


_SAS_SIGNATURE = re.compile(r"(sig=)[^&\s\"']+")


class _RedactSignatures(logging.Filter):
    """urllib3 logs every request URL at DEBUG, and a SAS token's signature rides in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "sig=" in str(record.msg) or any("sig=" in str(a) for a in (record.args or ())):
            record.msg = _SAS_SIGNATURE.sub(r"\1REDACTED", record.getMessage())
            record.args = ()
        return True


def _hide_sas_in_http_logs() -> None:
    # Idempotent: one filter per HTTP logger, added the first time a sink opens.
    for name in ("urllib3.connectionpool", "azure.core.pipeline.policies.http_logging_policy"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSignatures) for f in logger.filters):
            logger.addFilter(_RedactSignatures())


@hookimpl
def register_sinks(register: Any) -> None:
    register(AzureSinkFactory())
