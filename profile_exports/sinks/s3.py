"""The Amazon S3 sink (``s3://bucket/prefix``), on boto3: multipart uploads, atomic, retried.

A file is uploaded in one ``PutObject`` when it fits in one part, otherwise as a multipart upload
completed in ``commit`` (so the final key shows nothing until the whole file is there) and aborted
on ``abort``. At most one part is held in memory per open file. Every call is retried on throttling,
5xx and dropped connections with exponential backoff and jitter (``destination.max_retries``);
botocore's own retries are switched off so that one policy applies. 403 and 404 fail at once.

Credentials come from ``storage_options`` (``key``/``secret``/``token``, or ``profile``) or from
boto3's standard chain (environment, shared config, instance or container roles). They are handed
to boto3 and never kept, shown or logged here.

``storage_options``:

- ``key`` / ``aws_access_key_id``, ``secret`` / ``aws_secret_access_key``, ``token`` /
  ``aws_session_token``: explicit credentials;
- ``profile``: a named profile of the shared AWS config files;
- ``region`` / ``region_name``; ``endpoint_url`` (an S3-compatible service; path-style addressing
  unless ``addressing_style`` says otherwise);
- ``part_size_mb``: multipart part size, default 8, at least 5 (the S3 minimum), at most 5120;
- ``retry_base_delay`` / ``retry_max_delay``: backoff in seconds (defaults 0.2 and 10);
- ``connect_timeout`` / ``read_timeout``: seconds (defaults 10 and 60).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, MissingExtraError, SinkError
from ..hookspecs import hookimpl
from ..manifest import MANIFEST_FOLDER
from ..options import check_options
from ..uploads import MIB, PartedUpload, RetryPolicy, with_retries
from ..urls import join, redact_url

# Beside the manifests, never in a data folder (a probe left by a killed process would meet readers).
PROBE_PREFIX = f"{MANIFEST_FOLDER}/.profile-exports-probe-"
SECTION = "destination.storage_options"
OPTIONS = (
    "key",
    "aws_access_key_id",
    "secret",
    "aws_secret_access_key",
    "token",
    "aws_session_token",
    "profile",
    "region",
    "region_name",
    "endpoint_url",
    "addressing_style",
    "part_size_mb",
    "retry_base_delay",
    "retry_max_delay",
    "connect_timeout",
    "read_timeout",
)
DEFAULT_PART_MB = 8
MIN_PART_MB = 5
MAX_PART_MB = 5 * 1024
MAX_PARTS = 10_000

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
    }
)
PERMISSION_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem"})

CREDENTIALS_HINT = "the access key is unknown, the secret is wrong or the session expired; check AWS credentials"
PERMISSION_HINT = "the credentials lack s3:PutObject/s3:DeleteObject on the bucket; fix the IAM policy or bucket policy"
NO_BUCKET_HINT = "the bucket does not exist; create it or fix destination.url"


class _SessionTokenRedaction(logging.Filter):
    """botocore logs each request at DEBUG with its headers and canonical request, which hold the
    session token (``X-Amz-Security-Token``) in clear: the token is replaced before any handler sees
    the record. Signatures and the key id are not secrets; the secret key is never logged."""

    _TOKEN = re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^\s'\",}&\\]+)", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not a leak
            return True
        redacted = self._TOKEN.sub(r"\1<redacted>", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_REDACTION = _SessionTokenRedaction()
# Filters are not inherited by child loggers: each logger that writes request details gets one.
_BOTOCORE_LOGGERS = ("botocore.auth", "botocore.endpoint", "botocore.httpsession", "botocore.hooks", "botocore.parsers")


def _boto() -> tuple[Any, Any, Any]:
    """boto3, botocore.config and botocore.exceptions, imported on first use."""
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise MissingExtraError("the s3 sink", "s3", "boto3") from None
    for name in _BOTOCORE_LOGGERS:
        logging.getLogger(name).addFilter(_REDACTION)  # once: addFilter ignores a filter it has
    return boto3, botocore.config, botocore.exceptions


def _number(name: str, value: Any, *, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (minimum <= value <= maximum):
        raise ConfigError(f"{SECTION}.{name}", f"must be a number from {minimum:g} to {maximum:g}; got {value!r}")
    return float(value)


def _text(options: Mapping[str, Any], *names: str) -> str | None:
    """The first of ``names`` set in ``options``; the value is never echoed in an error."""
    given = [n for n in names if options.get(n) not in (None, "")]
    if len(given) > 1:
        raise ConfigError(f"{SECTION}.{given[1]}", f"give only one of {' and '.join(given)}")
    if not given:
        return None
    value = options[given[0]]
    if not isinstance(value, str):
        raise ConfigError(f"{SECTION}.{given[0]}", f"must be a string; got a {type(value).__name__}")
    return value


def _client_error_parts(error: BaseException, exceptions: Any) -> tuple[str, int | None, str]:
    """(code, HTTP status, message) of a botocore ``ClientError``; ("", None, "") otherwise."""
    if not isinstance(error, exceptions.ClientError):
        return "", None, ""
    response = getattr(error, "response", None) or {}
    details = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    code = str(details.get("Code") or "")
    if not isinstance(status, int):
        status = int(code) if code.isdigit() else None
    return code, status, str(details.get("Message") or "")


class S3File(PartedUpload):
    """One object: ``PutObject`` when it fits in a part, else a multipart upload completed on commit."""

    def __init__(
        self,
        sink: S3Sink,
        key: str,
        *,
        content_type: str,
        content_encoding: str | None,
        part_size: int,
        policy: RetryPolicy,
    ) -> None:
        super().__init__(key, sink.url_of(key), part_size=part_size, policy=policy)
        self._sink = sink
        self._object = sink.object_key(key)
        self._headers: dict[str, str] = {}
        if content_type:
            self._headers["ContentType"] = content_type
        if content_encoding:
            self._headers["ContentEncoding"] = content_encoding
        self._upload_id: str | None = None
        self._finish_tried = False

    def __repr__(self) -> str:
        return f"S3File({self._url!r})"

    def put_whole(self, data: bytes) -> None:
        self._sink.client.put_object(Bucket=self._sink.bucket, Key=self._object, Body=data, **self._headers)

    def start(self) -> None:
        response = self._sink.client.create_multipart_upload(
            Bucket=self._sink.bucket, Key=self._object, **self._headers
        )
        self._upload_id = str(response["UploadId"])

    def send_part(self, number: int, data: bytes) -> Any:
        if number > MAX_PARTS:
            raise SinkError(
                f"{self._sink.display_url}: {self.key!r} needs more than {MAX_PARTS} parts, the S3 limit; "
                "raise storage_options.part_size_mb or lower destination.max_file_mb",
                destination=self._sink.display_url,
            )
        response = self._sink.client.upload_part(
            Bucket=self._sink.bucket, Key=self._object, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def finish(self, parts: list[Any]) -> None:
        retrying = self._finish_tried
        self._finish_tried = True
        try:
            self._sink.client.complete_multipart_upload(
                Bucket=self._sink.bucket,
                Key=self._object,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        except self._sink.exceptions.ClientError as exc:
            # A retried complete whose first attempt succeeded (the answer was lost) finds no upload.
            code, _, _ = _client_error_parts(exc, self._sink.exceptions)
            if retrying and code == "NoSuchUpload" and self._completed(len(parts)):
                return
            raise

    def _completed(self, parts: int) -> bool:
        try:
            head = self._sink.client.head_object(Bucket=self._sink.bucket, Key=self._object)
        except self._sink.exceptions.ClientError:
            return False
        return str(head.get("ETag", "")).strip('"').endswith(f"-{parts}")

    def cancel(self) -> None:
        if self._upload_id is None:
            return
        upload_id = self._upload_id
        with_retries(
            lambda: self._sink.client.abort_multipart_upload(
                Bucket=self._sink.bucket, Key=self._object, UploadId=upload_id
            ),
            policy=self._policy,
            transient=self.is_transient,
        )

    def is_transient(self, error: BaseException) -> bool:
        return self._sink.is_transient(error)

    def describe_error(self, action: str, error: BaseException) -> SinkError:
        return self._sink.describe_error(action, error)


class S3Sink:
    """An S3 destination. ``display_url`` is ``s3://bucket/prefix``; credentials are never kept here."""

    def __init__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> None:
        self.display_url = redact_url(url)
        boto3, config_module, self.exceptions = _boto()
        parts = urlsplit(url)
        self.scheme = parts.scheme.lower() or "s3"
        self.bucket = parts.netloc.rsplit("@", 1)[-1]
        self.prefix = parts.path.strip("/")
        if not self.bucket:
            raise ConfigError("destination.url", f"{self.display_url}: name the bucket, as in s3://bucket/prefix")
        check_options(SECTION, options, allowed=OPTIONS)
        part_mb = _number(
            "part_size_mb", options.get("part_size_mb", DEFAULT_PART_MB), minimum=MIN_PART_MB, maximum=MAX_PART_MB
        )
        self.part_size = int(part_mb * MIB)
        self.policy = RetryPolicy(
            attempts=max_retries + 1,
            base_delay=_number("retry_base_delay", options.get("retry_base_delay", 0.2), minimum=0, maximum=60),
            max_delay=_number("retry_max_delay", options.get("retry_max_delay", 10.0), minimum=0, maximum=600),
        )
        endpoint_url = _text(options, "endpoint_url")
        addressing = _text(options, "addressing_style") or ("path" if endpoint_url else "auto")
        if addressing not in ("auto", "path", "virtual"):
            raise ConfigError(f"{SECTION}.addressing_style", f"must be auto, path or virtual; got {addressing!r}")
        config = config_module.Config(
            # One attempt per call: botocore's "max_attempts" counts retries (1 would mean 2 attempts).
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=_number("connect_timeout", options.get("connect_timeout", 10), minimum=0.1, maximum=600),
            read_timeout=_number("read_timeout", options.get("read_timeout", 60), minimum=0.1, maximum=3600),
            s3={"addressing_style": addressing},
        )
        try:
            session = boto3.session.Session(
                aws_access_key_id=_text(options, "key", "aws_access_key_id"),
                aws_secret_access_key=_text(options, "secret", "aws_secret_access_key"),
                aws_session_token=_text(options, "token", "aws_session_token"),
                region_name=_text(options, "region", "region_name"),
                profile_name=_text(options, "profile"),
            )
            self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        except self.exceptions.ProfileNotFound:
            raise SinkError(
                f"{self.display_url}: the AWS profile named in storage_options.profile is not in the shared "
                "config files (~/.aws/config, ~/.aws/credentials); fix the name or configure it",
                destination=self.display_url,
            ) from None
        except ValueError as exc:  # a malformed endpoint_url
            raise ConfigError(f"{SECTION}.endpoint_url", f"is not usable: {type(exc).__name__}") from None
        except self.exceptions.BotoCoreError as exc:
            raise SinkError(
                f"{self.display_url}: cannot set up the S3 client: {type(exc).__name__}; check the AWS settings",
                destination=self.display_url,
            ) from None

    def __repr__(self) -> str:
        return f"S3Sink({self.display_url!r})"

    # -- keys --------------------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        return join(self.prefix, key)

    def url_of(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{self.object_key(key)}"

    # -- errors ------------------------------------------------------------------------------------

    def is_transient(self, error: BaseException) -> bool:
        ex = self.exceptions
        if isinstance(error, ex.ClientError):
            code, status, _ = _client_error_parts(error, ex)
            if status in (403, 404) or code in CREDENTIAL_CODES or code in PERMISSION_CODES:
                return False
            return status in TRANSIENT_STATUS or code in TRANSIENT_CODES
        connection_errors: tuple[type[BaseException], ...] = (
            ex.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ...
            ex.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError (urllib3 ProtocolError)
            ex.IncompleteReadError,
            ex.ResponseStreamingError,
        )
        if isinstance(error, connection_errors):
            return True
        try:
            from urllib3.exceptions import ProtocolError
        except ImportError:  # pragma: no cover - urllib3 comes with botocore
            return False
        return isinstance(error, ProtocolError | ConnectionError | TimeoutError)

    def describe_error(self, action: str, error: BaseException) -> SinkError:
        """What failed, where, the remote status, and what to do. Never a credential."""
        where = self.display_url
        ex = self.exceptions
        code, status, remote = _client_error_parts(error, ex)
        if isinstance(error, ex.ClientError):
            if code in CREDENTIAL_CODES:
                hint = CREDENTIALS_HINT
            elif code in PERMISSION_CODES:
                hint = PERMISSION_HINT
            elif code == "NoSuchBucket":
                hint = NO_BUCKET_HINT.replace("the bucket", f"the bucket {self.bucket!r}", 1)
            elif status == 403:
                hint = f"access was refused: either {CREDENTIALS_HINT}, or {PERMISSION_HINT}"
            elif status == 404:
                hint = f"not found: if the bucket {self.bucket!r} does not exist, create it or fix destination.url"
            elif code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
                hint = "the bucket is in another region; set storage_options.region to the bucket's region"
            elif self.is_transient(error):
                hint = (
                    f"the service kept failing after {self.policy.attempts} attempts (throttling or server "
                    "errors); try again later or raise destination.max_retries"
                )
            else:
                hint = "check the destination settings and the bucket's configuration"
            detail = f"{code or 'error'}" + (f" ({remote})" if remote else "")
            return SinkError(
                f"{where}: could not {action}: {detail} (status {status}); {hint}",
                destination=where,
                status=status,
            )
        if isinstance(error, ex.NoCredentialsError | ex.PartialCredentialsError):
            hint = (
                "no complete AWS credentials were found; set storage_options key and secret, a profile, the "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables, or run with an IAM role"
            )
        elif self.is_transient(error):
            hint = (
                f"the connection kept failing after {self.policy.attempts} attempts; check that the endpoint "
                "is reachable (network, proxy, storage_options.endpoint_url) or raise destination.max_retries"
            )
        else:
            hint = "check the destination settings"
        return SinkError(
            f"{where}: could not {action}: {type(error).__name__} (status None); {hint}",
            destination=where,
            status=None,
        )

    def _call(self, action: str, call: Any) -> Any:
        try:
            return with_retries(call, policy=self.policy, transient=self.is_transient)
        except SinkError:
            raise
        except Exception as exc:
            raise self.describe_error(action, exc) from exc

    # -- Sink --------------------------------------------------------------------------------------

    def check_access(self) -> None:
        """Write then delete a probe object under the prefix: fails here, before any data is read."""
        probe = self.object_key(f"{PROBE_PREFIX}{uuid.uuid4().hex[:12]}")
        self._call(
            "write a probe object (checking write access)",
            lambda: self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"profile-exports write check\n"),
        )
        self._call(
            "delete the probe object (checking delete access)",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=probe),
        )

    def open(self, key: str, *, content_type: str = "", content_encoding: str | None = None) -> S3File:
        return S3File(
            self,
            key,
            content_type=content_type,
            content_encoding=content_encoding,
            part_size=self.part_size,
            policy=self.policy,
        )

    def exists(self, key: str) -> bool:
        name = self.object_key(key)
        try:
            with_retries(
                lambda: self.client.head_object(Bucket=self.bucket, Key=name),
                policy=self.policy,
                transient=self.is_transient,
            )
        except self.exceptions.ClientError as exc:
            code, status, _ = _client_error_parts(exc, self.exceptions)
            if status == 404 and code != "NoSuchBucket":
                return False
            raise self.describe_error(f"check whether {key!r} exists", exc) from exc
        except Exception as exc:
            raise self.describe_error(f"check whether {key!r} exists", exc) from exc
        return True

    def read_bytes(self, key: str) -> bytes:
        name = self.object_key(key)

        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
            with response["Body"] as body:
                return bytes(body.read())

        result: bytes = self._call(f"read {key!r}", read)
        return result

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


class S3SinkFactory:
    name = "s3"
    protocols = ("s3", "s3a")

    def __call__(self, url: str, options: Mapping[str, Any], *, max_retries: int = 5) -> S3Sink:
        return S3Sink(url, options, max_retries=max_retries)


@hookimpl
def register_sinks(register: Any) -> None:
    register(S3SinkFactory())
