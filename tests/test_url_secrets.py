"""Credentials written into a URL never show and are never stored (issue 16, item 6).

A secret typed into a URL is not escaped: AWS secret keys hold ``/`` and ``+``, and any secret may
hold ``?``, ``#``, ``@`` or ``:``. ``urlsplit`` ends the host at the first ``/``, so such a secret
used to pass for a host and a path, and be printed and stored. The rule (docs/destinations.md):
a destination URL names a place only; user info (anything before an ``@``), a query and a fragment
are refused with a ConfigError pointing to ``storage_options``, without echoing the URL. The one
exception is Azure: ``az://container@account.host/...`` names a container, and a SAS token in an
``az://`` URL's query is read by the Azure sink, withheld from the registry and never shown.
Everything that redacts or withholds finds credentials without trusting ``urlsplit``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import profile_exports as pe
from profile_exports import cli
from profile_exports.center import ExportCenter
from profile_exports.config import ExportConfig
from profile_exports.errors import ConfigError, ProfileExportsError
from profile_exports.secrets import withhold
from profile_exports.urls import redact_url

from .azurite import ACCOUNT, KEY, Azurite
from .conftest import FaultReport
from .test_sink_azure import azurite  # noqa: F401  (the session's Azurite server)

USER = "AKIAUSERCANARY"
PARTS = ("sEcReTpArTa1", "sEcReTpArTb2", "sEcReTpArTc3")
CANARIES = (USER, *PARTS)
A, B, C = PARTS

# user info with a secret that holds each character a URL parser stops at, and the other ways to
# put a credential in a URL. "{host}" is the bucket or host, "{path}" the rest.
FORMS = {
    "slash": f"{USER}:{A}/{B}+{C}@{{host}}{{path}}",
    "issue": f"{USER}:{A}/{B}+{C}?x#y@{{host}}{{path}}",
    "query": f"{USER}:{A}?{B}@{{host}}{{path}}",
    "hash": f"{USER}:{A}#{B}@{{host}}{{path}}",
    "at": f"{USER}:{A}@{B}@{{host}}{{path}}",
    "colon": f"{USER}:{A}:{B}@{{host}}{{path}}",
    "plain": f"{USER}:{A}@{{host}}{{path}}",
    "user only": f"{USER}@{{host}}{{path}}",
    "percent-encoded": f"{USER}:{A}%2F{B}%3F%23%40{C}@{{host}}{{path}}",
    "signed query": f"{{host}}{{path}}?X-Amz-Credential={USER}&X-Amz-Signature={A}",
    "fragment": f"{{host}}{{path}}#{A}",
}


def url_of(form: str, scheme: str, host: str, path: str) -> str:
    return f"{scheme}://" + FORMS[form].format(host=host, path=path)


def leaks(text: str) -> list[str]:
    """The canaries in ``text``, plain or percent-decoded."""
    return [c for c in CANARIES if c in text or c in unquote(text)]


def files_under(root: Path, *, skip: Path | None = None) -> list[tuple[str, str]]:
    """(path, text) of every file under ``root``; SQLite files as their rows, other files as bytes."""
    found = []
    for path in sorted(root.rglob("*")):
        if skip is not None and path.is_relative_to(skip):
            continue
        found.append((str(path), str(path)))  # a name may hold a secret too
        if not path.is_file():
            continue
        data = path.read_bytes()
        found.append((str(path), data.decode("utf-8", "replace")))
        if data[:16] == b"SQLite format 3\x00":
            with sqlite3.connect(path) as db:
                for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
                    found += [(f"{path}:{table}", repr(row)) for row in db.execute(f'select * from "{table}"')]
    return found


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# -- the rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize(
    ("scheme", "host", "path"),
    [
        ("s3", "bucket", "/prefix"),
        ("gs", "bucket", "/prefix"),
        ("file", "localhost", "/tmp/exports"),
        ("memory", "bucket", "/x"),
        ("sftp", "files.example.com", "/exports"),
    ],
)
def test_a_destination_url_with_credentials_is_refused_without_echoing_them(
    form: str, scheme: str, host: str, path: str
) -> None:
    url = url_of(form, scheme, host, path)
    with pytest.raises(ConfigError) as caught:
        ExportConfig.from_mapping({"destination": {"url": url}})
    error = caught.value
    assert error.field == "destination.url"
    assert "storage_options" in str(error)
    assert leaks(str(error)) == [] and leaks(repr(error)) == []
    with pytest.raises(ConfigError):  # the library call takes the same road
        pe.export([{"profile_id": "p1"}], url, progress=False)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_redaction_and_withholding_find_credentials_wherever_the_url_hides_them(form: str) -> None:
    url = url_of(form, "s3", "bucket", "/prefix")
    assert leaks(redact_url(url)) == [], redact_url(url)
    sql = url_of(form, "postgresql", "db.example.com", "/crm")
    settings = {
        "source": {"kind": "sql", "url": sql, "query": "select 1"},
        "destination": {"url": url, "storage_options": {"endpoint_url": "http://127.0.0.1:9000"}},
    }
    safe, withheld = withhold(settings)
    assert {"destination.url", "source.url"} <= set(withheld)
    assert leaks(json.dumps(safe)) == []


def test_azure_names_a_container_before_the_at_and_takes_a_sas_token_in_the_query() -> None:
    accepted = [
        "az://box@myaccount.blob.core.windows.net/exports",
        "abfs://box@myaccount.dfs.core.windows.net/a/b",
        f"az://box/exports?sv=2024-01-01&sig={A}",
        f"azure://box@myaccount.blob.core.windows.net/p?sv=1&sig={A}",
    ]
    for url in accepted:
        config = ExportConfig.from_mapping({"destination": {"url": url}})
        assert leaks(repr(config)) == [] and leaks(redact_url(url)) == []
        safe, withheld = withhold(config.to_mapping())
        assert "destination.url" in withheld and leaks(json.dumps(safe)) == []
    refused = [
        f"az://{USER}:{A}@myaccount.blob.core.windows.net/exports",  # a password is no container
        f"az://box@myaccount.blob.core.windows.net/{A}@x",  # a second '@': where does the user end?
        f"az://{USER}@myaccount.blob.core.windows.net/exports",  # not a container name (upper case)
        f"az://box/exports#{A}",
        url_of("issue", "az", "myaccount.blob.core.windows.net", "/exports"),
    ]
    for url in refused:
        with pytest.raises(ConfigError, match=r"^destination\.url: ") as caught:
            ExportConfig.from_mapping({"destination": {"url": url}})
        assert leaks(str(caught.value)) == []


SEPARATORS = "/?#@:%+=&;[] "


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["s3", "s3a", "gs", "gcs", "az", "abfs", "file", "memory", "https", "sftp", "ftp"]),
    user=st.sampled_from(["", USER, f"{USER}:", f"{USER}:{A}"]),
    secret=st.lists(st.one_of(st.sampled_from(PARTS), st.sampled_from(SEPARATORS)), min_size=1, max_size=8).map(
        "".join
    ),
    host=st.sampled_from(["bucket", "box@acct.blob.core.windows.net", "host:8443", ""]),
    path=st.sampled_from(["", "/", "/prefix", "/a@b/c", "/p?q=1"]),
)
def test_no_url_shape_lets_a_credential_through(scheme: str, user: str, secret: str, host: str, path: str) -> None:
    """Whatever a secret holds and wherever it sits, what is shown or stored never contains it."""
    secret = secret if any(p in secret for p in PARTS) else A + secret
    for url in (
        f"{scheme}://{user}{secret}@{host}{path}",
        f"{scheme}://{host}{path}?sig={secret}",
        f"{scheme}://{host}{path}#{secret}",
    ):
        assert leaks(redact_url(url)) == [], (url, redact_url(url))
        safe, withheld = withhold({"destination": {"url": url}, "source": {"kind": "sql", "url": url}})
        assert leaks(json.dumps(safe)) == [], url
        try:
            config = ExportConfig.from_mapping({"destination": {"url": url}})
        except ConfigError as error:
            assert leaks(str(error)) == [], (url, str(error))
            continue
        # accepted: only the Azure forms, whose credential the sink reads and nothing shows
        assert scheme in ("az", "abfs"), url
        assert leaks(repr(config)) == [] and "destination.url" in withheld


# -- every command's output, and every file ----------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("scheme", ["s3", "file"])
def test_no_command_prints_or_stores_a_credential_written_into_the_url(
    form: str, scheme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")  # no credential-chain lookups on the network
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    work, home, dest, cfg = (tmp_path / n for n in ("work", "home", "dest", "cfg"))
    for folder in (work, dest, cfg):
        folder.mkdir()
    monkeypatch.chdir(work)  # a URL misread as a relative path would write here: it is searched too
    url = url_of(form, scheme, "bucket" if scheme == "s3" else "localhost", "/prefix" if scheme == "s3" else str(dest))
    options = {"endpoint_url": "http://127.0.0.1:9"} if scheme == "s3" else {}
    settings = {
        "name": "leaky",
        "source": {"kind": "synthetic", "count": 20, "seed": 1},
        "destination": {"url": url, "format": "json", "max_retries": 0, "storage_options": options},
    }
    path = cfg / "export.json"
    path.write_text(json.dumps(settings))
    shown: list[tuple[str, str]] = []

    for argv in (
        ["exports", "create", str(path), "--home", str(home), "--json"],
        ["exports", "create", str(path), "--home", str(home)],
        ["preview", str(path)],
        ["preview", str(path), "--json"],
        ["run", str(path)],
        ["run", str(path), "--json"],
    ):
        code, text = _cli(capsys, *argv)
        shown.append((" ".join(argv[:2]), text))
        assert code == 2, (argv, text)
        assert "destination.url" in text and "storage_options" in text

    # An export registered before this rule held the URL withheld; its credentials provider now
    # supplies the URL at run time: the run is refused, and the record says why, without the URL.
    center = ExportCenter(home, credentials=lambda export_id, paths: {"destination.url": url})
    stored, withheld = withhold(settings)
    assert withheld == ("destination.url",)
    record = center.registry.add(
        export_id=None,
        name="leaky",
        account_id="0",
        sink=scheme,
        format="json",
        destination=redact_url(url),
        frequency="once",
        every_hours=24,
        mode="full",
        settings=stored,
        withheld=withheld,
        now=datetime.now(UTC),
    )
    with pytest.raises(ProfileExportsError) as caught:
        center.run(record.id)
    shown.append(("center run error", f"{caught.value} {caught.value!r}"))
    (run,) = center.runs(record.id)
    assert run.status == "Failed" and "destination.url" in (run.error or "")

    for argv in (
        ["exports", "list", "--json"],
        ["exports", "list"],
        ["exports", "show", record.id, "--json"],
        ["exports", "show", record.id],
        ["exports", "runs", record.id, "--json"],
        ["exports", "runs", record.id],
        ["exports", "run", record.id, "--json"],
    ):
        code, text = _cli(capsys, *argv, "--home", str(home))
        shown.append((" ".join(argv[:2]), text))
    found = [(where, c) for where, text in [*shown, *files_under(tmp_path, skip=cfg)] for c in leaks(text)]
    assert found == []


@pytest.mark.faults
def test_an_azure_sas_token_in_the_url_is_used_withheld_and_never_shown(
    fault_report: FaultReport,
    azurite: Azurite,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    service = BlobServiceClient.from_connection_string(azurite.connection_string())
    container = f"sas{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    secrets = [signature, unquote(signature)]
    url = f"az://{container}@{ACCOUNT}.blob.core.windows.net/exports?{sas}"
    settings = {
        "name": "sas",
        "source": {"kind": "synthetic", "count": 25, "seed": 3},
        "destination": {"url": url, "format": "csv", "storage_options": {"account_url": azurite.endpoint}},
    }
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    path = cfg / "sas.json"
    path.write_text(json.dumps(settings))
    home = tmp_path / "home"
    shown: list[tuple[str, str]] = []

    code, text = _cli(capsys, "run", str(path), "--json")
    assert code == 0, text
    shown.append(("run", text))
    code, text = _cli(capsys, "preview", str(path), "--json")
    assert code == 0, text
    shown.append(("preview", text))
    code, text = _cli(capsys, "exports", "create", str(path), "--home", str(home), "--json", "--no-run")
    assert code == 0, text
    shown.append(("create", text))
    export_id = json.loads(text)["id"]
    assert json.loads(text)["withheld"] == ["destination.url"]
    center = ExportCenter(home, credentials=lambda export_id, paths: {"destination.url": url})
    outcome = center.run(export_id)
    assert outcome.record.status == "Done" and outcome.record.rows == 25
    shown.append(("center run", f"{outcome} {outcome!r}"))
    for argv in (
        ["exports", "list", "--json"],
        ["exports", "show", export_id, "--json"],
        ["exports", "show", export_id],
        ["exports", "runs", export_id, "--json"],
        ["exports", "run", export_id, "--json"],  # no provider here: refused, naming the path
    ):
        code, text = _cli(capsys, *argv, "--home", str(home))
        shown.append((argv[1], text))
    box = service.get_container_client(container)
    blobs = [(b.name, box.download_blob(b.name).readall().decode("utf-8", "replace")) for b in box.list_blobs()]
    assert [name for name, _ in blobs if name.endswith(".csv.gz")]  # the SAS token in the URL was used
    everything = [*shown, *blobs, *files_under(tmp_path, skip=cfg)]
    found = [(where, s) for where, text in everything for s in secrets if s in text]
    fault_report.add("an Azure SAS token in the destination URL", faults=1, recovered=True, lost=0, partial=0,
                     secrets=len(found))
    assert found == []
