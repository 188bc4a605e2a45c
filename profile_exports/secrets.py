"""Keeping credentials out of the registry, and putting them back at run time.

A registered export's settings are stored in the registry file, so values that look like
credentials are withheld before storing: storage or source options whose names say key, secret,
token, password, credential or connection string, and URLs carrying user info, a query or a
fragment (found without trusting ``urlsplit``, which unescaped secrets fool: ``urls.split_credentials``).
The stored settings keep the dotted path of each withheld value. At run time the value comes from
the export center's ``credentials`` provider, and a settings value written as ``"${NAME}"``
(an environment variable reference, not a secret itself, so stored as is) is read from the
environment when the export runs.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError
from .urls import has_credentials

_SECRET_NAME = re.compile(
    r"(secret|password|passwd|token|credential|connection_string|conn_str|sas|key|auth|salt)", re.I
)
_NOT_SECRET = re.compile(
    r"^(key_prefix|endpoint_url|region|region_name|project|account_name|account_url|client_id|tenant_id)$", re.I
)
_ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

# Where credentials may sit in the settings: option tables and URLs.
_OPTION_TABLES = (("destination", "storage_options"), ("source",), ("transforms",))
_SOURCE_COMMON = ("kind", "mapping", "bad_records", "batch_size")

Credentials = Callable[[str, tuple[str, ...]], Mapping[str, Any]]


def _looks_secret_url(value: str) -> bool:
    # Not urlsplit: it ends the host at the first '/', and unescaped secrets hold '/', '?' and '#'.
    return has_credentials(value)


def _is_secret(name: str, value: Any) -> bool:
    if not isinstance(value, str | bytes) or (isinstance(value, str) and _ENV_REFERENCE.match(value)):
        return False
    if isinstance(value, str) and _looks_secret_url(value):
        return True
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET.match(name)


def withhold(settings: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Settings safe to store, and the dotted paths of the values taken out."""
    safe = copy.deepcopy(dict(settings))
    withheld: list[str] = []
    destination = safe.get("destination", {})
    if _looks_secret_url(str(destination.get("url", ""))):
        withheld.append("destination.url")
        destination["url"] = None
    for path in _OPTION_TABLES:
        table: Any = safe
        for part in path:
            table = table.get(part, {}) if isinstance(table, Mapping) else {}
        skip = _SOURCE_COMMON if path == ("source",) else ()
        _withhold_in(table, path, skip, withheld)
    return safe, tuple(withheld)


def _withhold_in(table: Any, path: tuple[str, ...], skip: tuple[str, ...], withheld: list[str]) -> None:
    """Withhold secret-looking values of ``table`` and of the tables nested in it, at any depth
    (a file source's ``storage_options``, a plugin transform's ``[transforms.options.<name>]``)."""
    if not isinstance(table, dict):
        return
    for name in list(table):
        if name in skip:
            continue
        value = table[name]
        if isinstance(value, dict):
            _withhold_in(value, (*path, str(name)), (), withheld)
        elif _is_secret(str(name), value):
            withheld.append(".".join((*path, str(name))))
            table[name] = None


def restore(
    settings: Mapping[str, Any], withheld: tuple[str, ...], values: Mapping[str, Any], export_id: str
) -> dict[str, Any]:
    """Put the withheld values back, from ``values`` (the credentials provider's answer)."""
    full = copy.deepcopy(dict(settings))
    for path in withheld:
        if path not in values:
            raise ConfigError(
                path,
                f"export {export_id}: this value looked like a credential, so it was not stored in the registry; "
                'supply it at run time with ExportCenter(credentials=...), or create the export with "${ENV_VAR}" '
                "in its place so it is read from the environment",
            )
        *parents, last = path.split(".")
        table: Any = full
        for part in parents:
            table = table.setdefault(part, {})
        table[last] = values[path]
    return full


def expand_env(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Options with every ``"${NAME}"`` value read from the environment."""
    expanded = dict(options)
    for name, value in options.items():
        match = _ENV_REFERENCE.match(value) if isinstance(value, str) else None
        if match is None:
            continue
        if match.group(1) not in os.environ:
            raise ConfigError(
                f"{where}.{name}", f"refers to the environment variable {match.group(1)}, which is not set"
            )
        expanded[name] = os.environ[match.group(1)]
    return expanded
