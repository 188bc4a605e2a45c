"""The Azure Blob sink against a real Azurite server started on 127.0.0.1 by the suite.

Every format end-to-end (blobs read back with the SDK and compared with a local export of the same
input), gzip content settings, staged blocks, atomic visibility, and each preflight failure produced
for real: missing container (404), wrong account key (403) and a read-only SAS (403
AuthorizationPermissionMismatch). No secret may appear in messages, reprs or logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

import profile_exports as pe
import profile_exports.sinks.azure as azure_sink
from profile_exports.errors import SinkError
from profile_exports.plugins import load_components
from profile_exports.sinks.azure import AzureSinkFactory, block_id, is_transient

from .azurite import ACCOUNT, KEY, Azurite
from .fault_proxy import FaultProxy
from .formats import READERS

NOW = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0s="
CONTENT_TYPES = {
    "csv": "text/csv",
    "json": "application/x-ndjson",
    "xml": "application/xml",
    "parquet": "application/vnd.apache.parquet",
}


def _plugins() -> list[Any]:
    """The azure sink, until it is registered as a built-in."""
    return [] if "az" in load_components()[1].sinks else [azure_sink]


PLUGINS = _plugins()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.start()  # installs Azurite under .azurite on first use; fails (never skips) with the reason
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def service(azurite: Azurite) -> Iterator[BlobServiceClient]:
    client = BlobServiceClient.from_connection_string(azurite.connection_string())
    yield client
    client.close()


@pytest.fixture
def container(service: BlobServiceClient) -> str:
    name = f"c{uuid.uuid4().hex[:20]}"
    service.create_container(name)
    return name


@pytest.fixture
def options(azurite: Azurite) -> dict[str, Any]:
    return {"connection_string": azurite.connection_string()}


def _export(url: str, *, options: dict[str, Any] | None = None, **settings: Any) -> Any:
    settings.setdefault("source", {"kind": "synthetic", "count": 400, "seed": 7, "partitions": 2})
    return pe.export(
        None,
        url,
        plugins=PLUGINS if "://" in url else [],
        storage_options=options or {},
        export_id="1761651721",
        now=NOW,
        progress=False,
        **settings,
    )


def _download(service: BlobServiceClient, container: str, name: str, into: Path) -> Path:
    data = service.get_blob_client(container, name).download_blob(decompress=False).readall()
    path = into / name.replace("/", "__")
    path.write_bytes(data)
    return path


def _blob_names(service: BlobServiceClient, container: str) -> list[str]:
    return sorted(b.name for b in service.get_container_client(container).list_blobs())


# -- end to end ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "parquet"])
def test_every_format_round_trips_through_azurite(
    fmt: str, service: BlobServiceClient, container: str, options: dict[str, Any], tmp_path: Path
) -> None:
    local = _export(str(tmp_path / "local"), format=fmt)
    remote = _export(f"az://{container}/exports/daily", options=options, format=fmt)

    assert remote.destination == f"az://{container}/exports/daily"
    assert [f.key for f in remote.files] == [f.key for f in local.files]
    assert remote.rows == local.rows == 400
    assert [f.sha256 for f in remote.files] == [f.sha256 for f in local.files]
    assert _blob_names(service, container) == sorted(f"exports/daily/{f.key}" for f in remote.committed)

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    remote_rows: list[dict[str, Any]] = []
    local_rows: list[dict[str, Any]] = []
    for mine, theirs in zip(remote.files, local.files, strict=True):
        assert mine.url == f"az://{container}/exports/daily/{mine.key}"
        path = _download(service, container, f"exports/daily/{mine.key}", downloads)
        assert path.stat().st_size == mine.bytes
        remote_rows += READERS[fmt](path)
        local_rows += READERS[fmt](theirs.url)
    assert len(remote_rows) == 400
    assert remote_rows == local_rows


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "parquet"])
def test_default_downloads_give_the_bytes_the_manifest_lists(
    fmt: str, service: BlobServiceClient, container: str, options: dict[str, Any]
) -> None:
    result = _export(f"az://{container}/p", options=options, format=fmt)
    assert result.manifest is not None and result.manifest.key.startswith("_manifests/")
    # The SDK's default download (it decompresses blobs stored with Content-Encoding: gzip).
    manifest = json.loads(service.get_blob_client(container, f"p/{result.manifest.key}").download_blob().readall())
    assert [f["key"] for f in manifest["files"]] == [f.key for f in result.files]
    for listed in manifest["files"]:
        blob = service.get_blob_client(container, f"p/{listed['key']}")
        settings = blob.get_blob_properties().content_settings
        assert settings.content_encoding is None  # a gzip file is stored as a gzip file
        if fmt == "parquet":
            assert settings.content_type == CONTENT_TYPES[fmt]
        else:
            assert listed["key"].endswith(".gz")
            assert settings.content_type == "application/gzip"
        data = blob.download_blob().readall()
        assert len(data) == listed["bytes"] and hashlib.sha256(data).hexdigest() == listed["sha256"]


def test_transcoding_is_an_explicit_setting(
    service: BlobServiceClient, container: str, options: dict[str, Any]
) -> None:
    result = _export(f"az://{container}/tc", options=options, transcoding=True)
    settings = service.get_blob_client(container, f"tc/{result.files[0].key}").get_blob_properties().content_settings
    assert settings.content_encoding == "gzip" and settings.content_type == "text/csv"


def test_large_file_is_staged_in_several_blocks(
    service: BlobServiceClient, container: str, options: dict[str, Any], tmp_path: Path
) -> None:
    settings: dict[str, Any] = {
        "format": "csv",
        "compression": "none",
        "source": {"kind": "synthetic", "count": 12_000, "seed": 3},
    }
    local = _export(str(tmp_path / "local"), **settings)
    remote = _export(f"az://{container}/big", options={**options, "block_size_mb": 1}, **settings)
    (mine,) = remote.files
    (theirs,) = local.files
    assert mine.bytes > 3 * 1024 * 1024, "the test file must span several 1 MiB blocks"
    blob = service.get_blob_client(container, f"big/{mine.key}")
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == -(-mine.bytes // (1024 * 1024))
    assert not uncommitted
    assert len({len(b.id) for b in committed}) == 1
    assert blob.download_blob().readall() == Path(theirs.url).read_bytes()


def test_small_file_is_one_put(service: BlobServiceClient, container: str, options: dict[str, Any]) -> None:
    sink = AzureSinkFactory()(f"az://{container}/small", options)
    handle = sink.open("a/b.txt", content_type="text/plain", content_encoding=None)
    handle.write(b"hello\n")
    committed = handle.commit()
    assert committed.bytes == 6 and committed.url == f"az://{container}/small/a/b.txt"
    assert sink.exists("a/b.txt") and not sink.exists("a/c.txt")
    assert sink.read_bytes("a/b.txt") == b"hello\n"
    sink.close()


def test_failing_source_leaves_nothing_visible(
    service: BlobServiceClient, container: str, options: dict[str, Any]
) -> None:
    schema = pa.schema([("profile_id", pa.string()), ("email", pa.string()), ("notes", pa.string())])
    filler = "x" * 2000

    def batches() -> Iterator[pa.RecordBatch]:
        for b in range(6):
            ids = [f"p{b}-{i}" for i in range(1000)]
            yield pa.RecordBatch.from_pydict(
                {"profile_id": ids, "email": [f"{i}@example.com" for i in ids], "notes": [filler] * 1000},
                schema=schema,
            )
        raise RuntimeError("source broke midway")

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    with pytest.raises(RuntimeError, match="source broke midway"):
        pe.export(
            reader,
            f"az://{container}/atomic",
            plugins=PLUGINS,
            storage_options={**options, "block_size_mb": 1},
            format="csv",
            compression="none",
            export_id="1761651721",
            now=NOW,
            progress=False,
        )
    client = service.get_container_client(container)
    assert _blob_names(service, container) == [], "no blob may appear under a final key"
    # what was sent exists only as uncommitted blocks (Azure discards them after 7 days)
    pending = [b.name for b in client.list_blobs(include=["uncommittedblobs"])]
    assert len(pending) == 1
    committed, uncommitted = client.get_blob_client(pending[0]).get_block_list("all")
    assert committed == [] and len(uncommitted) >= 3


# -- preflight -----------------------------------------------------------------------------------


def _preflight_error(url: str, options: dict[str, Any], caplog: pytest.LogCaptureFixture) -> SinkError:
    with caplog.at_level(logging.DEBUG), pytest.raises(SinkError) as info:
        _export(url, options=options, format="csv")
    return info.value


def _assert_no_secret(error: BaseException, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    texts = [str(error), repr(error), caplog.text]
    cause: BaseException | None = error
    while cause is not None:  # nothing chained may carry a secret either
        texts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_missing_container_fails_preflight(
    azurite: Azurite, service: BlobServiceClient, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    error = _preflight_error("az://no-such-container/p", options, caplog)
    message = str(error)
    assert error.status == 404
    assert message.startswith("az://no-such-container/p")
    assert "404" in message and "ContainerNotFound" in message
    assert "the container does not exist; create it or fix destination.url" in message
    _assert_no_secret(error, caplog, KEY, azurite.connection_string())
    assert "no-such-container" not in [c.name for c in service.list_containers()]


def test_wrong_account_key_fails_preflight(
    azurite: Azurite, container: str, service: BlobServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"connection_string": azurite.connection_string(key=WRONG_KEY)}
    error = _preflight_error(f"az://{container}/p", options, caplog)
    message = str(error)
    assert error.status == 403
    assert message.startswith(f"az://{container}/p") and "403" in message
    assert "the account key or SAS token is invalid or expired; regenerate it" in message
    _assert_no_secret(error, caplog, WRONG_KEY, KEY, options["connection_string"])
    assert _blob_names(service, container) == []


def test_wrong_account_key_via_account_url(azurite: Azurite, container: str, caplog: pytest.LogCaptureFixture) -> None:
    options = {"account_url": azurite.endpoint, "account_key": WRONG_KEY}
    error = _preflight_error(f"az://{container}/p", options, caplog)
    assert error.status == 403
    assert "invalid or expired" in str(error)
    _assert_no_secret(error, caplog, WRONG_KEY)


def test_read_only_sas_fails_preflight(
    azurite: Azurite, container: str, service: BlobServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    options = {"account_url": azurite.endpoint, "sas_token": sas}
    error = _preflight_error(f"az://{container}/p", options, caplog)
    message = str(error)
    assert error.status == 403
    assert message.startswith(f"az://{container}/p")
    assert "403" in message and "AuthorizationPermissionMismatch" in message
    assert "lacks write (w) and delete (d) permission on the container" in message
    _assert_no_secret(error, caplog, sas, signature, KEY)
    assert _blob_names(service, container) == []


def test_sas_with_write_and_delete_works(azurite: Azurite, container: str, service: BlobServiceClient) -> None:
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    result = _export(f"az://{container}/sas", options={"account_url": azurite.endpoint, "sas_token": "?" + sas})
    assert result.rows == 400
    assert _blob_names(service, container) == sorted(f"sas/{f.key}" for f in result.committed)


def test_unreachable_account_names_the_network(container: str) -> None:
    sink = AzureSinkFactory()(
        f"az://{container}/p",
        {"account_url": "http://127.0.0.1:9/devstoreaccount1", "account_key": KEY},
        max_retries=0,
    )
    with pytest.raises(SinkError) as info:
        sink.check_access()
    assert info.value.status is None
    assert "cannot reach the storage account" in str(info.value)
    assert KEY not in str(info.value)


# -- account settings, secrets, retries ----------------------------------------------------------


def test_connection_string_from_environment(
    azurite: Azurite, container: str, service: BlobServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
    result = _export(f"az://{container}/env", format="json")
    assert _blob_names(service, container) == sorted(f"env/{f.key}" for f in result.committed)


def test_no_account_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(SinkError, match="no Azure storage account is configured"):
        AzureSinkFactory()("az://box/p", {})


def test_bad_options_never_echo_values(azurite: Azurite) -> None:
    with pytest.raises(SinkError) as info:
        AzureSinkFactory()("az://box/p", {"connection_string": azurite.connection_string(), "acount_key": KEY})
    assert "'acount_key'" in str(info.value) and KEY not in str(info.value)
    with pytest.raises(SinkError, match="block_size_mb"):
        AzureSinkFactory()("az://box/p", {"connection_string": azurite.connection_string(), "block_size_mb": 0})


def test_reprs_hold_no_secret(azurite: Azurite, container: str) -> None:
    cs = azurite.connection_string()
    sink = AzureSinkFactory()(f"az://{container}/p?sv=1&sig=SECRETSIGNATURE", {"connection_string": cs})
    handle = sink.open("k.csv", content_type="text/csv", content_encoding=None)
    for text in (repr(sink), sink.display_url, repr(handle), repr(AzureSinkFactory())):
        assert KEY not in text and "SECRETSIGNATURE" not in text
    config = pe.ExportConfig.from_mapping(
        {"destination": {"url": f"az://{container}/p", "storage_options": {"connection_string": cs}}}
    )
    assert KEY not in repr(config)
    sink.close()


def test_block_ids_are_deterministic_and_equal_length() -> None:
    ids = [block_id(n) for n in (1, 2, 10, 999, 50_000)]
    assert ids == [block_id(n) for n in (1, 2, 10, 999, 50_000)]
    assert len(set(ids)) == len(ids) and len({len(i) for i in ids}) == 1


def test_transient_errors_are_throttling_5xx_and_dropped_connections(
    azurite: Azurite, service: BlobServiceClient
) -> None:
    with pytest.raises(HttpResponseError) as missing:
        service.get_container_client("no-such-container").get_container_properties()
    assert missing.value.status_code == 404 and not is_transient(missing.value)
    wrong = BlobServiceClient.from_connection_string(azurite.connection_string(key=WRONG_KEY), retry_total=0)
    with pytest.raises(HttpResponseError) as denied:
        wrong.get_container_client("any-container").get_container_properties()
    assert denied.value.status_code == 403 and not is_transient(denied.value)
    closed = BlobServiceClient("http://127.0.0.1:9/devstoreaccount1", credential=None, retry_total=0)
    with pytest.raises(ServiceRequestError) as refused:
        closed.get_container_client("any-container").get_container_properties()
    assert is_transient(refused.value)
    assert is_transient(ConnectionResetError()) and not is_transient(ValueError())


def test_sdk_retries_are_off(options: dict[str, Any]) -> None:
    sink = AzureSinkFactory()("az://box/p", options, max_retries=3)
    assert sink.service_client._config.retry_policy.total_retries == 0
    assert sink.policy.attempts == 4
    sink.close()


# -- retries through a fault-injecting proxy -----------------------------------------------------


def _is_stage_block(request: Any) -> bool:
    return request.method == "PUT" and "comp=block" in request.query and "blockid=" in request.query


def _is_commit(request: Any) -> bool:
    return request.method == "PUT" and "comp=blocklist" in request.query


def test_throttling_and_dropped_connections_are_retried(
    azurite: Azurite, service: BlobServiceClient, container: str, tmp_path: Path
) -> None:
    settings: dict[str, Any] = {
        "format": "csv",
        "compression": "none",
        "source": {"kind": "synthetic", "count": 12_000, "seed": 5},
    }
    local = _export(str(tmp_path / "local"), **settings)
    with FaultProxy(f"http://127.0.0.1:{azurite.port}") as proxy:
        proxy.inject("503", count=2, when=_is_stage_block)
        proxy.inject("drop", count=2, when=_is_stage_block)
        proxy.inject("503", count=1, when=_is_commit)
        options = {
            "connection_string": azurite.connection_string(endpoint=f"{proxy.url}/{ACCOUNT}"),
            "block_size_mb": 1,
        }
        remote = _export(f"az://{container}/retried", options=options, max_retries=5, **settings)
        assert proxy.faults == {"503": 3, "drop": 2}
    (mine,) = remote.files
    blob = service.get_blob_client(container, f"retried/{mine.key}")
    assert blob.download_blob().readall() == Path(local.files[0].url).read_bytes()
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == -(-mine.bytes // (1024 * 1024)) and not uncommitted


def test_permanent_errors_are_not_retried(azurite: Azurite, service: BlobServiceClient, container: str) -> None:
    with FaultProxy(f"http://127.0.0.1:{azurite.port}") as proxy:
        proxy.inject("403", count=1, when=_is_stage_block)
        options = {
            "connection_string": azurite.connection_string(endpoint=f"{proxy.url}/{ACCOUNT}"),
            "block_size_mb": 1,
        }
        with pytest.raises(SinkError) as info:
            _export(
                f"az://{container}/denied",
                options=options,
                max_retries=5,
                format="csv",
                compression="none",
                source={"kind": "synthetic", "count": 12_000, "seed": 5},
            )
        stage_requests = [r for r in proxy.requests if "blockid=" in r[1] and "comp=blocklist" not in r[1]]
        assert [r[2] for r in stage_requests] == ["403"], "a 403 is answered once, never retried"
    assert info.value.status == 403
    assert f"az://{container}/denied" in str(info.value)
    assert _blob_names(service, container) == []


def test_account_from_abfs_url_and_account_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    sink = AzureSinkFactory()("abfs://box@myacct.dfs.core.windows.net/a/b", {"account_key": KEY})
    assert (sink.account, sink.container, sink.prefix) == ("myacct", "box", "a/b")
    assert sink.display_url == "abfs://box/a/b"
    assert sink.service_client.url.startswith("https://myacct.blob.core.windows.net")
    sink.close()
    sink = AzureSinkFactory()("az://box/p", {"account_name": "other", "sas_token": "sv=1&sig=SECRETSIGNATURE"})
    assert sink.service_client.url.startswith("https://other.blob.core.windows.net")
    assert "SECRETSIGNATURE" not in repr(sink)
    sink.close()
