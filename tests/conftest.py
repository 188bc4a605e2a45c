from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from profile_exports.spreadsheet import original_text


def _open_text(path: str | Path) -> str:
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)  # the stdlib reader: independent of the writer's ISA-L
    return data.decode("utf-8")


def read_csv(path: str | Path, *, as_written: bool = False) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows, read with the stdlib csv module; unless ``as_written``, with the apostrophes
    spreadsheet safety adds taken off again (the documented reader rule)."""
    reader = csv.reader(io.StringIO(_open_text(path), newline=""))
    cell = (lambda text: text) if as_written else original_text
    header = [cell(n) for n in next(reader)]
    return header, [dict(zip(header, map(cell, row), strict=True)) for row in reader]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _open_text(path).split("\n") if line]


def read_result(result: Any) -> list[dict[str, Any]]:
    """Every row of every file of a run, in file order, decoded by format."""
    rows: list[dict[str, Any]] = []
    for f in result.files:
        if result.format == "csv":
            rows += read_csv(f.url)[1]
        else:
            rows += read_jsonl(f.url)
    return rows


@pytest.fixture
def out(tmp_path: Path) -> str:
    return str(tmp_path / "out")
