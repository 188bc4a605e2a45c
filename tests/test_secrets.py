"""Credentials are withheld from stored settings and put back at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from profile_exports.center import ExportCenter
from profile_exports.errors import ConfigError
from profile_exports.secrets import expand_env, restore, withhold


def test_credential_values_are_withheld_and_restored() -> None:
    settings = {
        "source": {"kind": "sql", "url": "postgresql://app:pw-123@db/prod", "query": "select 1", "batch_size": 10},
        "destination": {
            "url": "az://container/prefix?sv=2024&sig=abcdef",
            "storage_options": {
                "endpoint_url": "http://127.0.0.1:9000",
                "region": "us-east-1",
                "aws_access_key_id": "AKIA123",
                "aws_secret_access_key": "s3cr3t",
                "sas_token": "sv=1&sig=x",
                "connection_string": "AccountKey=zzz",
                "key_from_env": "${MY_KEY}",
            },
        },
    }
    safe, withheld = withhold(settings)
    assert set(withheld) == {
        "destination.url",
        "source.url",
        "destination.storage_options.aws_access_key_id",
        "destination.storage_options.aws_secret_access_key",
        "destination.storage_options.sas_token",
        "destination.storage_options.connection_string",
    }
    text = repr(safe)
    for secret in ("pw-123", "sig=abcdef", "AKIA123", "s3cr3t", "sig=x", "zzz"):
        assert secret not in text
    assert safe["destination"]["storage_options"]["key_from_env"] == "${MY_KEY}"  # a reference, kept
    assert safe["destination"]["storage_options"]["endpoint_url"] == "http://127.0.0.1:9000"
    values = {path: f"value-of-{path}" for path in withheld}
    full = restore(safe, withheld, values, "42")
    assert full["destination"]["storage_options"]["sas_token"] == "value-of-destination.storage_options.sas_token"
    assert full["source"]["url"] == "value-of-source.url"
    with pytest.raises(ConfigError, match=r"destination\.url: export 42: this value looked like a credential"):
        restore(safe, withheld, {}, "42")


def test_environment_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "from-env")
    assert expand_env({"key": "${MY_KEY}", "other": "plain"}, "x") == {"key": "from-env", "other": "plain"}
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ConfigError, match=r"x\.key: refers to the environment variable MY_KEY"):
        expand_env({"key": "${MY_KEY}"}, "x")


def test_credentials_nested_in_option_tables_are_withheld_too() -> None:
    settings = {
        "source": {
            "kind": "parquet",
            "path": "s3://lake/profiles/*.parquet",
            "storage_options": {"key": "AKIA-NESTED", "secret": "NESTED-SECRET", "client_kwargs": {"region_name": "x"}},
        },
        "destination": {"url": "s3://bucket/out"},
        "transforms": {"apply": {"tokenize": ["Email"]}, "options": {"tokenize": {"api_token": "TOK-123", "n": 3}}},
    }
    safe, withheld = withhold(settings)
    assert set(withheld) == {
        "source.storage_options.key",
        "source.storage_options.secret",
        "transforms.options.tokenize.api_token",
    }
    for secret in ("AKIA-NESTED", "NESTED-SECRET", "TOK-123"):
        assert secret not in repr(safe)
    assert safe["transforms"]["apply"] == {"tokenize": ["Email"]}  # a transform's name is not a credential
    full = restore(safe, withheld, {path: f"<{path}>" for path in withheld}, "7")
    assert full["source"]["storage_options"] == {
        "key": "<source.storage_options.key>",
        "secret": "<source.storage_options.secret>",
        "client_kwargs": {"region_name": "x"},
    }
    assert full["transforms"]["options"]["tokenize"] == {"api_token": "<transforms.options.tokenize.api_token>", "n": 3}


def test_a_registered_export_keeps_nested_source_credentials_out_of_the_registry_file(tmp_path: Path) -> None:
    data = tmp_path / "profiles.parquet"
    pq.write_table(pa.table({"profile_id": ["p1", "p2"], "Name": ["Ada", "Bob"]}), data)
    secret = "NESTED-SOURCE-SECRET-42"
    provided: list[tuple[str, tuple[str, ...]]] = []

    def credentials(export_id: str, paths: tuple[str, ...]) -> dict[str, Any]:
        provided.append((export_id, paths))
        return {path: secret for path in paths}

    center = ExportCenter(tmp_path / "home", credentials=credentials)
    record = center.create(
        {
            "source": {"kind": "parquet", "path": str(data), "storage_options": {"secret": secret}},
            "destination": {"url": str(tmp_path / "out"), "format": "json"},
            "schedule": {"mode": "full"},
        }
    )
    stored = b"".join(p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert secret.encode() not in stored
    outcome = center.run(record.id)
    assert outcome.record.status == "Done" and outcome.result is not None and outcome.result.rows == 2
    assert provided and "source.storage_options.secret" in provided[-1][1]
