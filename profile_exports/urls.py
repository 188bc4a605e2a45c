"""URL helpers: what may be shown of a destination, which destination URLs are refused, and joining keys.

Credentials typed into a URL are not escaped: an AWS secret key holds ``/`` and ``+``, and any secret
may hold ``?``, ``#``, ``@`` or ``:``. ``urlsplit`` ends the host at the first ``/``, so it takes such a
secret for a host and a path. Nothing here trusts it with user info: the user info is everything
from ``://`` to the last ``@``, and the query and fragment everything from the first ``?`` or ``#``
after that. That over-reads a path holding ``@`` (hidden too), never under-reads a secret.
"""

from __future__ import annotations

import re

from .errors import ConfigError

# Azure names a container, not a user, before the '@' (az://container@account.blob.core.windows.net/p),
# and its sink reads a SAS token from the query; neither is shown or stored (see secrets.withhold).
AZURE_SCHEMES = ("az", "abfs", "abfss", "azure")
_AZURE_AUTHORITY = re.compile(r"[a-z0-9][a-z0-9-]{1,62}@[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_AFTER_PLACE = re.compile(r"[?#]")
CREDENTIALS_FIX = (
    "put credentials in destination.storage_options instead (S3: key, secret, token; GCS: credentials_file; "
    'Azure: account_key, sas_token or connection_string; other filesystems: their own options), best as "${ENV_VAR}" '
    "references; the URL is not repeated here"
)


def split_credentials(url: str) -> tuple[str, str, str, str]:
    """``(scheme, user info, place, query and fragment)`` of a URL, the user info read up to the last
    ``@`` and the query from the first ``?`` or ``#`` after it; ``("", "", url, "")`` for a path."""
    if "://" not in url:
        return "", "", url, ""
    scheme, rest = url.split("://", 1)
    user, at, rest = rest.rpartition("@")
    if _AFTER_PLACE.search(user):
        # A query holding an '@' (s3://b?sig=x@y) reads like a secret holding a '?' (s3://u:p?x@b):
        # either way nothing of it is safe to show.
        return scheme, user + at + rest, "", ""
    cut = _AFTER_PLACE.search(rest)
    place, tail = (rest[: cut.start()], rest[cut.start() :]) if cut else (rest, "")
    return scheme, user + at, place, tail


def has_credentials(url: str) -> bool:
    """Whether a URL may carry a credential: user info, a query or a fragment, read as above."""
    _, user, _, tail = split_credentials(url)
    return bool(user or tail)


def redact_url(url: str) -> str:
    """The URL without user info, query or fragment (where keys and signed URLs hide)."""
    scheme, user, place, tail = split_credentials(url)
    if not scheme:
        return url
    if user and not place:
        return f"{scheme.lower()}://..."
    return f"{scheme.lower()}://{place}" + ("?..." if tail else "")


def check_destination_url(url: str, field: str = "destination.url") -> None:
    """Refuse a destination URL that carries credentials, without echoing it.

    A URL names a place. The S3 and GCS sinks never used user info (they drop it), the local and
    memory filesystems make it part of the folder names, and no parser can tell where an unescaped
    secret ends; so user info, queries and fragments are refused, but for Azure's container form
    and SAS query, which the Azure sink reads and nothing shows.
    """
    scheme, user, place, tail = split_credentials(url)
    azure = scheme.lower() in AZURE_SCHEMES
    if user and not (azure and url.count("@") == 1 and _AZURE_AUTHORITY.fullmatch(user + place.split("/", 1)[0])):
        raise ConfigError(
            field,
            "holds an '@', which marks user info (credentials); it is refused anywhere in a URL, as a secret "
            f"may hold '/', '?' or '#' and nothing can tell where it ends; {CREDENTIALS_FIX}",
        )
    if "#" in tail:
        raise ConfigError(field, f"holds a fragment ('#...'), where credentials may hide; {CREDENTIALS_FIX}")
    if tail and not azure:
        raise ConfigError(
            field,
            f"holds a query ('?...'), which only an Azure URL may carry (its SAS token); {CREDENTIALS_FIX}",
        )


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
