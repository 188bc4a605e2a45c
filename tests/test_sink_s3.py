"""The S3 sink against a real moto server on 127.0.0.1 (started here), with a fault proxy for retries.

Objects are read back with boto3 and parsed with the independent readers of ``tests/formats.py``,
then compared with a local export of the same input.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest

import profile_exports as pe
import profile_exports.sinks.s3 as s3_sink
from profile_exports.errors import SinkError
from profile_exports.plugins import load_components
from profile_exports.sources.synthetic_data import SYNTHETIC_SCHEMA, generate_profiles
from profile_exports.uploads import MIB

from .fault_proxy import FaultProxy
from .formats import READERS, read_rows

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
EXPORT_ID = "1759492800"
REGION = "us-east-1"
CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/x-ndjson",
    "xml": "application/xml",
    "parquet": "application/vnd.apache.parquet",
}
# Until the sink is a built-in, hand the module over as a plugin.
PLUGINS: list[Any] = [] if "s3" in load_components()[1].sinks else [s3_sink]


# -- servers -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoProcess:
    """``moto_server`` in its own process (its state, IAM mode included, is its own), on a free port."""

    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server did not answer on {self.url} within 30 s; see {log}") from None
                time.sleep(0.1)

    def post(self, path: str, body: bytes, content_type: str) -> None:
        request = urllib.request.Request(
            f"{self.url}{path}", data=body, method="POST", headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status

    def client(self, key: str = "testing", secret: str = "testing", endpoint: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name=REGION,
        )

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Dummy credentials only, for the whole session: nothing here may find real ones."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(name, raising=False)
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def moto(aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoProcess]:
    server = MotoProcess(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def s3(moto: MotoProcess) -> Any:
    return moto.client()


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"exports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def proxy(moto: MotoProcess) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url) as running:
        yield running


def options(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "region": REGION,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
        **extra,
    }


def s3_export(data: Any, url: str, storage_options: dict[str, Any], **settings: Any) -> Any:
    return pe.export(
        data,
        url,
        plugins=PLUGINS,
        progress=False,
        now=NOW,
        export_id=EXPORT_ID,
        storage_options=storage_options,
        **settings,
    )


def local_export(data: Any, folder: Path, **settings: Any) -> Any:
    return pe.export(data, str(folder), progress=False, now=NOW, export_id=EXPORT_ID, **settings)


def synthetic(count: int, partitions: int = 1) -> dict[str, Any]:
    return {"kind": "synthetic", "count": count, "seed": 7, "partitions": partitions}


def download(s3: Any, bucket: str, prefix: str, result: Any, folder: Path) -> list[Path]:
    """Every file of ``result`` from the bucket into ``folder``, checked against its recorded hash."""
    paths = []
    for f in result.files:
        assert f.url == f"s3://{bucket}/{prefix}/{f.key}"
        data = s3.get_object(Bucket=bucket, Key=f"{prefix}/{f.key}")["Body"].read()
        assert len(data) == f.bytes
        assert hashlib.sha256(data).hexdigest() == f.sha256
        path = folder / f.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def keys_in(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def uploads_in_progress(s3: Any, bucket: str) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


# -- end to end ----------------------------------------------------------------------------------

FORMAT_CASES = [
    ("csv", "gzip"),
    ("csv", "none"),
    ("json", "gzip"),
    ("json", "none"),
    ("xml", "gzip"),
    ("xml", "none"),
    ("parquet", None),
]


@pytest.mark.parametrize(("fmt", "compression"), FORMAT_CASES)
def test_every_format_round_trips_through_s3(
    moto: MotoProcess, s3: Any, bucket: str, tmp_path: Path, fmt: str, compression: str | None
) -> None:
    settings: dict[str, Any] = {"format": fmt, "source": synthetic(400, partitions=2)}
    if compression:
        settings["compression"] = compression
    result = s3_export(None, f"s3://{bucket}/exports/daily", options(moto.url), **settings)
    local = local_export(None, tmp_path / "local", **settings)

    assert result.destination == f"s3://{bucket}/exports/daily"
    assert result.rows == 400 and len(result.files) == 2
    assert [f.key for f in result.files] == [f.key for f in local.files]
    paths = download(s3, bucket, "exports/daily", result, tmp_path / "s3")
    rows = [row for path in paths for row in READERS[fmt](path)]
    assert len(rows) == 400
    assert rows == read_rows(local)
    # Byte for byte the same files as the local export, and nothing else in the bucket (probe gone).
    assert [f.sha256 for f in result.files] == [f.sha256 for f in local.files]
    assert sorted(keys_in(s3, bucket)) == sorted(f"exports/daily/{f.key}" for f in result.committed)

    for f in result.files:
        head = s3.head_object(Bucket=bucket, Key=f"exports/daily/{f.key}")
        # A gzip file is stored as a gzip file: no Content-Encoding, so no client decompresses it.
        assert "ContentEncoding" not in head
        if compression == "gzip":
            assert f.key.endswith(".gz")
            assert head["ContentType"] == "application/gzip"
        else:
            assert head["ContentType"] == CONTENT_TYPES[fmt]


@pytest.mark.parametrize(("fmt", "compression"), FORMAT_CASES)
def test_default_downloads_give_the_bytes_the_manifest_lists(
    moto: MotoProcess, s3: Any, bucket: str, fmt: str, compression: str | None
) -> None:
    settings: dict[str, Any] = {"format": fmt, "source": synthetic(300, partitions=2)}
    if compression:
        settings["compression"] = compression
    result = s3_export(None, f"s3://{bucket}/dl", options(moto.url), **settings)
    assert result.manifest is not None and result.manifest.key.startswith("_manifests/")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"dl/{result.manifest.key}")["Body"].read())
    assert [f["key"] for f in manifest["files"]] == [f.key for f in result.files]
    for listed in manifest["files"]:
        data = s3.get_object(Bucket=bucket, Key=f"dl/{listed['key']}")["Body"].read()  # the SDK's default call
        assert hashlib.sha256(data).hexdigest() == listed["sha256"] and len(data) == listed["bytes"]


def test_transcoding_is_an_explicit_setting(moto: MotoProcess, s3: Any, bucket: str) -> None:
    result = s3_export(None, f"s3://{bucket}/tc", options(moto.url), source=synthetic(50), transcoding=True)
    head = s3.head_object(Bucket=bucket, Key=f"tc/{result.files[0].key}")
    assert head["ContentEncoding"] == "gzip" and head["ContentType"] == "text/csv"


def test_bucket_root_and_s3a_urls(moto: MotoProcess, s3: Any, bucket: str, tmp_path: Path) -> None:
    result = s3_export(None, f"s3a://{bucket}", options(moto.url), format="json", source=synthetic(20))
    assert result.destination == f"s3a://{bucket}"
    assert keys_in(s3, bucket) == sorted(f.key for f in result.committed)
    assert result.files[0].url == f"s3a://{bucket}/{result.files[0].key}"


def test_large_file_is_a_multipart_upload(moto: MotoProcess, s3: Any, bucket: str, tmp_path: Path) -> None:
    settings: dict[str, Any] = {
        "format": "csv",
        "compression": "none",
        "max_file_mb": 40,
        "source": synthetic(30_000),
    }
    result = s3_export(None, f"s3://{bucket}/big", options(moto.url, part_size_mb=5), **settings)
    local = local_export(None, tmp_path / "local", **settings)
    assert len(result.files) == 1
    committed = result.files[0]
    parts = math.ceil(committed.bytes / (5 * MIB))
    assert parts >= 3
    head = s3.head_object(Bucket=bucket, Key=f"big/{committed.key}")
    assert head["ETag"].strip('"').endswith(f"-{parts}")
    assert head["ContentLength"] == committed.bytes == local.files[0].bytes
    assert head["ContentType"] == "text/csv"
    assert committed.sha256 == local.files[0].sha256
    download(s3, bucket, "big", result, tmp_path / "s3")
    assert uploads_in_progress(s3, bucket) == []


def test_a_file_holds_at_most_one_part_in_memory(moto: MotoProcess, s3: Any, bucket: str) -> None:
    sink = s3_sink.S3SinkFactory()(f"s3://{bucket}/direct", options(moto.url, part_size_mb=5))
    try:
        sink.check_access()
        f = sink.open("blob.bin", content_type="application/octet-stream", content_encoding=None)
        chunk = os.urandom(MIB // 2)
        digest = hashlib.sha256()
        for _ in range(25):  # 12.5 MiB in half-MiB writes
            f.write(chunk)
            digest.update(chunk)
            assert len(f._buffer) < 5 * MIB
            assert not sink.exists("blob.bin")  # nothing visible before commit
        committed = f.commit()
        assert committed.bytes == 25 * len(chunk) and committed.sha256 == digest.hexdigest()
        assert sink.exists("blob.bin")
        assert sink.read_bytes("blob.bin") == chunk * 25
        assert s3.head_object(Bucket=bucket, Key="direct/blob.bin")["ETag"].strip('"').endswith("-3")
    finally:
        sink.close()


def test_small_files_and_empty_files_are_single_puts(moto: MotoProcess, s3: Any, bucket: str) -> None:
    sink = s3_sink.S3SinkFactory()(f"s3://{bucket}/p", options(moto.url))
    try:
        for name, data in (("empty.csv", b""), ("small.csv", b"a,b\n1,2\n")):
            f = sink.open(name, content_type="text/csv", content_encoding=None)
            f.write(data)
            f.commit()
            assert sink.read_bytes(name) == data
            assert "-" not in s3.head_object(Bucket=bucket, Key=f"p/{name}")["ETag"]
        aborted = sink.open("aborted.csv", content_type="text/csv", content_encoding=None)
        aborted.write(b"x" * 100)
        aborted.abort()
        assert not sink.exists("aborted.csv")
    finally:
        sink.close()


# -- atomicity -----------------------------------------------------------------------------------


def failing_stream(batches: int) -> pa.RecordBatchReader:
    """A declared-schema stream that breaks after ``batches`` batches of 10 000 profiles."""

    def generate() -> Iterator[pa.RecordBatch]:
        yield from generate_profiles(batches * 10_000, seed=3, batch_size=10_000)
        raise RuntimeError("the source broke midway")

    return pa.RecordBatchReader.from_batches(SYNTHETIC_SCHEMA, generate())


def test_a_failed_run_leaves_no_object_and_no_upload(s3: Any, bucket: str, proxy: FaultProxy) -> None:
    with pytest.raises(RuntimeError, match="broke midway"):
        s3_export(
            failing_stream(2),  # ~8 MB of CSV: one part uploaded before the failure
            f"s3://{bucket}/atomic",
            options(proxy.url, part_size_mb=5),
            format="csv",
            compression="none",
            max_file_mb=500,
        )
    methods = [(method, target.split("?", 1)[1] if "?" in target else "") for method, target, _ in proxy.requests]
    assert any(m == "POST" and q.startswith("uploads") for m, q in methods)  # a multipart upload began
    assert any(m == "PUT" and "partNumber=1" in q for m, q in methods)  # and got a part
    assert any(m == "DELETE" and "uploadId=" in q for m, q in methods)  # then was aborted
    assert keys_in(s3, bucket) == []
    assert uploads_in_progress(s3, bucket) == []


# -- preflight -----------------------------------------------------------------------------------


def test_missing_bucket_fails_before_reading_with_an_actionable_message(moto: MotoProcess) -> None:
    read = []

    def records() -> Iterator[dict[str, Any]]:
        read.append(1)
        yield {"profile_id": "p1"}

    with pytest.raises(SinkError) as caught:
        s3_export(records(), "s3://no-such-bucket-here/prefix", options(moto.url), format="csv")
    message = str(caught.value)
    assert caught.value.status == 404
    assert caught.value.destination == "s3://no-such-bucket-here/prefix"
    assert "s3://no-such-bucket-here/prefix" in message
    assert "404" in message and "NoSuchBucket" in message
    assert "'no-such-bucket-here' does not exist; create it or fix destination.url" in message
    assert read == []


IAM_BUCKET = "iam-exports"
WRITER_SECRET_WRONG = "wrong-secret-0123456789abcdefghijklmnopqrstu"
UNKNOWN_SECRET = "unknown-secret-0123456789abcdefghijklmnopqrs"


@pytest.fixture(scope="session")
def iam(aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A separate moto server in IAM mode: a writer user, a read-only user, a bucket."""
    server = MotoProcess(tmp_path_factory.mktemp("moto-iam") / "moto.log")
    try:
        server.client().create_bucket(Bucket=IAM_BUCKET)
        iam_client = boto3.client(
            "iam", endpoint_url=server.url, aws_access_key_id="a", aws_secret_access_key="b", region_name=REGION
        )
        keys = {}
        for user, actions in (
            ("writer", ["s3:*"]),
            ("reader", ["s3:GetObject", "s3:ListBucket"]),
        ):
            iam_client.create_user(UserName=user)
            document = json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": actions,
                            "Resource": [f"arn:aws:s3:::{IAM_BUCKET}", f"arn:aws:s3:::{IAM_BUCKET}/*"],
                        }
                    ],
                }
            )
            iam_client.put_user_policy(UserName=user, PolicyName=f"{user}-policy", PolicyDocument=document)
            key = iam_client.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        server.post("/moto-api/reset-auth", b"0", "text/plain")
        yield {"server": server, "keys": keys}
    finally:
        server.stop()


def iam_options(iam: dict[str, Any], key: str, secret: str) -> dict[str, Any]:
    return {"endpoint_url": iam["server"].url, "key": key, "secret": secret, "region": REGION}


def _fails_with(iam: dict[str, Any], key: str, secret: str, caplog: pytest.LogCaptureFixture) -> SinkError:
    url = f"s3://{IAM_BUCKET}/team"
    with caplog.at_level(logging.DEBUG), pytest.raises(SinkError) as caught:
        s3_export([{"profile_id": "p1"}], url, iam_options(iam, key, secret), format="csv")
    error = caught.value
    assert error.status == 403
    assert error.destination == url
    message = str(error)
    assert url in message and "403" in message
    for text in (message, repr(error), caplog.text):
        assert secret not in text
    return error


def test_iam_mode_accepts_the_writer(iam: dict[str, Any], tmp_path: Path) -> None:
    key, secret = iam["keys"]["writer"]
    result = s3_export([{"profile_id": "p1"}], f"s3://{IAM_BUCKET}/team", iam_options(iam, key, secret), format="csv")
    assert result.rows == 1
    assert secret not in repr(result)


def test_unknown_access_key(iam: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    error = _fails_with(iam, "AKIAUNKNOWNKEY000000", UNKNOWN_SECRET, caplog)
    assert "InvalidAccessKeyId" in str(error)
    assert s3_sink.CREDENTIALS_HINT in str(error)


def test_wrong_secret(iam: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    key, _ = iam["keys"]["writer"]
    error = _fails_with(iam, key, WRITER_SECRET_WRONG, caplog)
    assert "SignatureDoesNotMatch" in str(error)
    assert s3_sink.CREDENTIALS_HINT in str(error)


def test_no_write_permission(iam: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    key, secret = iam["keys"]["reader"]
    error = _fails_with(iam, key, secret, caplog)
    assert "AccessDenied" in str(error)
    assert s3_sink.PERMISSION_HINT in str(error)


def test_secrets_never_shown(moto: MotoProcess, bucket: str) -> None:
    secret = "do-not-show-this-secret-0123456789"
    token = "do-not-show-this-token-0123456789"
    sink = s3_sink.S3SinkFactory()(
        f"s3://user:{secret}@{bucket}/p?sig={token}", {"key": "AKIAEXAMPLE", "secret": secret, "token": token}
    )
    f = sink.open("a.csv", content_type="text/csv", content_encoding=None)
    for text in (repr(sink), sink.display_url, repr(f), str(vars(f).get("_url"))):
        assert secret not in text and token not in text
    assert sink.display_url == f"s3://{bucket}/p?..."


def test_bad_options_are_config_errors(moto: MotoProcess) -> None:
    factory = s3_sink.S3SinkFactory()
    with pytest.raises(pe.ConfigError, match="part_size_mb"):
        factory("s3://bucket/p", {"part_size_mb": 4})
    with pytest.raises(pe.ConfigError, match="did you mean 'secret'"):
        factory("s3://bucket/p", {"secrett": "x"})
    with pytest.raises(pe.ConfigError, match=r"destination\.url"):
        factory("s3:///p", {})


# -- retries -------------------------------------------------------------------------------------


RETRY_SETTINGS: dict[str, Any] = {
    "format": "csv",
    "compression": "none",
    "source": synthetic(30_000, partitions=2),  # two files of ~6 MB: two parts each
    "executor": "serial",  # one partition after the other: the faults below count requests in order
}


def _check_intact(s3: Any, bucket: str, result: Any, tmp_path: Path) -> None:
    local = local_export(None, tmp_path / "local", **RETRY_SETTINGS)
    download(s3, bucket, "retry", result, tmp_path / "s3")
    assert [f.sha256 for f in result.files] == [f.sha256 for f in local.files]
    assert result.rows == 30_000
    assert uploads_in_progress(s3, bucket) == []
    assert sorted(keys_in(s3, bucket)) == sorted(f"retry/{f.key}" for f in result.committed)


@pytest.mark.parametrize("fault", ["503", "drop"])
def test_transient_faults_are_retried(s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, fault: str) -> None:
    proxy.inject(fault, count=2, when=lambda r: r.is_put_object)  # the probe, twice
    proxy.inject(fault, count=1, when=lambda r: r.method == "POST" and r.query.startswith("uploads"))
    proxy.inject(fault, count=3, when=lambda r: r.is_upload_part)
    proxy.inject(fault, count=1, when=lambda r: r.method == "POST" and "uploadId=" in r.query)  # complete
    proxy.inject(fault, count=1, when=lambda r: r.method == "DELETE")  # probe delete
    result = s3_export(None, f"s3://{bucket}/retry", options(proxy.url, part_size_mb=5), **RETRY_SETTINGS)
    assert proxy.faults == {fault: 8}
    _check_intact(s3, bucket, result, tmp_path)


def test_a_small_object_put_is_retried(s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path) -> None:
    # the probe put passes; the data file (one small PutObject) gets a 503 then a dropped connection
    proxy.inject("503", count=1, when=lambda r: r.is_put_object and ".profile-exports-probe-" not in r.path)
    proxy.inject("drop", count=1, when=lambda r: r.is_put_object and ".profile-exports-probe-" not in r.path)
    result = s3_export(None, f"s3://{bucket}/small", options(proxy.url), format="json", source=synthetic(50))
    assert proxy.faults == {"503": 1, "drop": 1}
    data = s3.get_object(Bucket=bucket, Key=f"small/{result.files[0].key}")["Body"].read()
    assert hashlib.sha256(data).hexdigest() == result.files[0].sha256
    local = local_export(None, tmp_path / "local", format="json", source=synthetic(50))
    assert result.files[0].sha256 == local.files[0].sha256


@pytest.mark.parametrize("where", ["probe", "part"])
def test_a_permanent_403_fails_fast(s3: Any, bucket: str, proxy: FaultProxy, where: str) -> None:
    if where == "probe":
        proxy.inject("403", count=100, when=lambda r: r.method == "PUT")
    else:
        proxy.inject("403", count=100, when=lambda r: r.is_upload_part)
    with pytest.raises(SinkError) as caught:
        s3_export(None, f"s3://{bucket}/retry", options(proxy.url, part_size_mb=5), **RETRY_SETTINGS)
    assert proxy.faults == {"403": 1}  # one attempt, no retry
    assert caught.value.status == 403
    assert "AccessDenied" in str(caught.value) and s3_sink.PERMISSION_HINT in str(caught.value)
    assert keys_in(s3, bucket) == []
    assert uploads_in_progress(s3, bucket) == []


def test_retries_stop_at_the_configured_limit(s3: Any, bucket: str, proxy: FaultProxy) -> None:
    proxy.inject("503", count=100, when=lambda r: r.method == "PUT")
    with pytest.raises(SinkError) as caught:
        s3_export(None, f"s3://{bucket}/retry", options(proxy.url), max_retries=2, format="csv", source=synthetic(5))
    assert proxy.faults == {"503": 3}  # 1 + max_retries attempts
    assert caught.value.status == 503
    assert "max_retries" in str(caught.value)


def test_lost_responses_are_retried_safely(s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path) -> None:
    # Each request below reaches moto and succeeds, but its answer never comes back: the retry repeats
    # a done request (a completed multipart upload then has no upload id left; the sink checks the object).
    proxy.inject("drop-after", count=1, when=lambda r: r.is_put_object)  # the probe
    proxy.inject("drop-after", count=2, when=lambda r: r.is_upload_part)
    proxy.inject("drop-after", count=2, when=lambda r: r.method == "POST" and "uploadId=" in r.query)  # complete
    result = s3_export(None, f"s3://{bucket}/retry", options(proxy.url, part_size_mb=5), **RETRY_SETTINGS)
    assert proxy.faults == {"drop-after": 5}
    _check_intact(s3, bucket, result, tmp_path)
    for f in result.files:
        assert s3.head_object(Bucket=bucket, Key=f"retry/{f.key}")["ETag"].strip('"').endswith("-2")


def test_standard_credential_chain_is_used_without_explicit_keys(moto: MotoProcess, s3: Any, bucket: str) -> None:
    # no key/secret in storage_options: boto3 finds the session's AWS_* environment variables
    result = s3_export(None, f"s3://{bucket}/env", {"endpoint_url": moto.url}, format="csv", source=synthetic(10))
    assert keys_in(s3, bucket) == sorted(f"env/{f.key}" for f in result.committed)


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(pe.errors.MissingExtraError, match=r"profile-exports\[s3\]") as caught:
        s3_sink.S3SinkFactory()("s3://bucket/p", {})
    assert caught.value.extra == "s3" and "boto3" in str(caught.value)
