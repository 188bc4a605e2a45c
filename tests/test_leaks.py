"""No credential leaks, on all three clouds at once.

Exports run against the real servers (moto, fake-gcs-server, Azurite) with explicit credentials:
an AWS secret key and session token, a Google service-account private key (its access token comes
from a token server on loopback, so the key really signs a JWT), an Azure account key and a SAS
token. Logging is at DEBUG for every logger, the libraries' own included. Then every log line, every
exception text, the reprs of configs, results and manifests, every object written to the buckets
and every row of the export center's registry are searched for the secret values.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import profile_exports as pe
from profile_exports import ExportCenter

from .azurite import ACCOUNT, KEY, Azurite
from .conftest import FaultReport
from .test_sink_azure import azurite  # noqa: F401  (the session's Azurite server)
from .test_sink_gcs import gcs_endpoint  # noqa: F401  (the session's fake-gcs-server)
from .test_sink_s3 import MotoProcess, aws_env, moto  # noqa: F401  (the session's moto server)

S3_SECRET = "s3SecretLEAKCANARY7Hq2Zt"
S3_TOKEN = "s3SessionTokenLEAKCANARY9Wd"
GCS_TOKEN = "ya29.gcsAccessTokenLEAKCANARY4Rm"
RECORDS = [{"profile_id": f"p{i}", "email": f"user{i}@example.com", "properties": {"n": i}} for i in range(30)]
NOW = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


# -- Google credentials that work offline --------------------------------------------------------------


class _TokenHandler(BaseHTTPRequestHandler):
    grants = 0

    def do_POST(self) -> None:  # the OAuth token endpoint: any signed assertion gets the token
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if b"assertion=" in body:
            type(self).grants += 1
        body = json.dumps({"access_token": GCS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def google_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A service-account key file whose token URI is a token server on loopback, and its private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = tmp_path_factory.mktemp("gcs-key") / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "leak-test",
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": "exporter@leak-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"http://127.0.0.1:{server.server_address[1]}/token",
            }
        )
    )
    try:
        yield path, pem
    finally:
        server.shutdown()
        server.server_close()


def _key_body(pem: str) -> list[str]:
    """Lines of the private key's base64 body: any of them in a text is a leak."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


# -- the search --------------------------------------------------------------------------------------------


class Evidence:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = {name: value for name, value in secrets.items() if value}
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        self.texts.append((where, text if isinstance(text, str) else repr(text)))

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for name, value in self.secrets.items():
                if value in text:
                    at = text.index(value)
                    found.append(f"{name} in {where}: ...{text[max(0, at - 80) : at + 20]!r}")
        return found


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [(f"log {r.name}", formatter.format(r)) for r in caplog.records]


def _registry_rows(home: Path) -> list[str]:
    rows = []
    for path in home.rglob("*"):
        if not path.is_file():
            continue
        if path.read_bytes()[:16] == b"SQLite format 3\x00":
            with sqlite3.connect(path) as db:
                for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
                    rows += [repr(row) for row in db.execute(f'select * from "{table}"')]
        else:
            rows.append(path.read_bytes().decode("utf-8", "replace"))
    return rows


# -- the clouds ---------------------------------------------------------------------------------------------


def _s3(server: MotoProcess) -> tuple[str, dict[str, Any], Any]:
    client = server.client()
    bucket = f"leaks-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    options = {
        "endpoint_url": server.url,
        "aws_access_key_id": "AKIALEAKTESTKEYID",
        "aws_secret_access_key": S3_SECRET,
        "aws_session_token": S3_TOKEN,
        "region": "us-east-1",
    }

    def objects() -> list[bytes]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return [client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed]

    return f"s3://{bucket}/exports", options, objects


def _gcs(endpoint: str, key_file: Path) -> tuple[str, dict[str, Any], Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="leak-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    bucket = f"leaks-{uuid.uuid4().hex[:10]}"
    client.create_bucket(bucket)
    options = {"endpoint_url": endpoint, "credentials_file": str(key_file), "project": "leak-test"}

    def objects() -> list[bytes]:
        return [b.download_as_bytes() for b in client.list_blobs(bucket)]

    return f"gs://{bucket}/exports", options, objects


def _azure(server: Azurite, *, sas: bool) -> tuple[str, dict[str, Any], Any, str]:
    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    service = BlobServiceClient.from_connection_string(server.connection_string())
    container = f"leaks{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    secret = KEY
    options: dict[str, Any] = {"account_url": server.endpoint, "account_name": ACCOUNT, "account_key": KEY}
    if sas:
        token = generate_container_sas(
            ACCOUNT,
            container,
            account_key=KEY,
            permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        options = {"account_url": server.endpoint, "sas_token": token}
        secret = dict(part.split("=", 1) for part in token.split("&"))["sig"]

    def objects() -> list[bytes]:
        box = service.get_container_client(container)
        return [box.download_blob(b.name).readall() for b in box.list_blobs()]

    return f"az://{container}/exports", options, objects, secret


@pytest.mark.faults
def test_no_secret_of_any_cloud_appears_in_logs_errors_reprs_files_or_the_registry(
    fault_report: FaultReport,
    moto: MotoProcess,  # noqa: F811
    gcs_endpoint: str,  # noqa: F811
    azurite: Azurite,  # noqa: F811
    google_key: tuple[Path, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key_file, pem = google_key
    s3_url, s3_options, s3_objects = _s3(moto)
    gcs_url, gcs_options, gcs_objects = _gcs(gcs_endpoint, key_file)
    az_url, az_options, az_objects, _ = _azure(azurite, sas=False)
    sas_url, sas_options, sas_objects, sas_signature = _azure(azurite, sas=True)
    evidence = Evidence(
        {
            "AWS secret key": S3_SECRET,
            "AWS session token": S3_TOKEN,
            "Google access token": GCS_TOKEN,
            "Azure account key": KEY,
            "Azure SAS signature": sas_signature,
            **{f"Google private key line {i}": line for i, line in enumerate(_key_body(pem))},
        }
    )
    clouds = [
        ("s3", s3_url, s3_options, s3_objects),
        ("gcs", gcs_url, gcs_options, gcs_objects),
        ("azure-key", az_url, az_options, az_objects),
        ("azure-sas", sas_url, sas_options, sas_objects),
    ]
    caplog.set_level(logging.DEBUG)  # the root logger: botocore, google, azure and urllib3 included
    home = tmp_path / "home"
    source = tmp_path / "profiles.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    for name, url, options, objects in clouds:
        # a one-off export
        result = pe.export(RECORDS, url, format="csv", storage_options=options, progress=False, now=NOW)
        assert result.rows == 30
        evidence.add(f"{name} result", result)
        evidence.add(f"{name} result files", result.files)
        evidence.add(f"{name} manifest", result.manifest)
        config = pe.ExportConfig.from_mapping({"destination": {"url": url, "storage_options": options}})
        evidence.add(f"{name} config", config)
        evidence.add(f"{name} config destination", config.destination)
        # a failing export: the bucket is not there
        missing = url.replace("://", "://missing-", 1)
        with pytest.raises(pe.ProfileExportsError) as caught:
            pe.export(RECORDS, missing, format="csv", storage_options=options, progress=False)
        evidence.add(f"{name} error", str(caught.value))
        evidence.add(f"{name} error repr", repr(caught.value))
        # a registered export: its settings are stored, the credentials are supplied at run time
        supplied = {f"destination.storage_options.{k}": v for k, v in options.items()}
        center = ExportCenter(home, credentials=lambda export_id, withheld, s=supplied: s)
        record = center.create(
            {
                "name": f"leaks-{name}",
                "source": {"kind": "jsonl", "path": str(source)},
                "destination": {"url": url, "storage_options": options},
            },
            now=NOW,
        )
        (run,) = center.run_due(now=NOW)
        assert run.record.status == "Done", run.record
        evidence.add(f"{name} center record", center.get(record.id))
        evidence.add(f"{name} center run", run)
        for i, data in enumerate(objects()):
            evidence.add(f"{name} object {i}", data.decode("utf-8", "replace"))
    for where, line in _log_lines(caplog):
        evidence.add(where, line)
    for row in _registry_rows(home):
        evidence.add("registry", row)
    assert len(evidence.texts) > 100
    assert any("botocore" in where for where, _ in evidence.texts)  # the libraries' DEBUG lines are in
    # the credentials were really used: the session token went out (and was redacted from botocore's
    # request logs), and the Google key signed an assertion for its access token
    assert any("<redacted>" in text for where, text in evidence.texts if where.startswith("log botocore"))
    assert _TokenHandler.grants >= 1
    leaks = evidence.leaks()
    fault_report.add(
        "explicit S3, GCS and Azure credentials, every logger at DEBUG",
        faults=len(evidence.secrets),
        recovered=True,
        lost=0,
        partial=0,
        secrets=len(leaks),
    )
    assert leaks == [], "\n".join(leaks)
