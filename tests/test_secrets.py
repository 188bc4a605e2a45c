"""Credentials are withheld from stored settings and put back at run time."""

from __future__ import annotations

import pytest

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
