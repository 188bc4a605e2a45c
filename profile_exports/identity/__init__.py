"""Identity resolution: the identifier columns of the output, computed on whole Arrow columns."""

from .resolver import IDENTIFIER_COLUMNS, resolve_identifiers

__all__ = ["IDENTIFIER_COLUMNS", "resolve_identifiers"]
