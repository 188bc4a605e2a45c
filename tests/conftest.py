from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from profile_exports.spreadsheet import original_text

# register_plugin and the conformance suites, as plugin authors load them
pytest_plugins = ["profile_exports.testing"]


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


# -- the fault summary (tests marked ``faults``; ``nox -s faults``) ------------------------------------------

_FAULTS = pytest.StashKey[list[dict[str, Any]]]()


class FaultReport:
    """Where a fault test records what it injected and how the run ended."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._entries = entries

    def add(
        self,
        scenario: str,
        *,
        faults: int,
        recovered: bool,
        lost: int,
        partial: int,
        message: str = "",
        doubled: int = 0,
        secrets: int = 0,
    ) -> None:
        self._entries.append(
            {
                "scenario": scenario,
                "faults": faults,
                "recovered": recovered,
                "lost": lost,
                "partial": partial,
                "message": message,
                "doubled": doubled,  # runs made beyond the one due (racing schedulers)
                "secrets": secrets,  # credentials found in outputs, logs, objects or the registry
            }
        )


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    stash = request.config.stash
    if _FAULTS not in stash:
        stash[_FAULTS] = []
    return FaultReport(stash[_FAULTS])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    entries = config.stash.get(_FAULTS, [])
    if not entries:
        return
    write = terminalreporter.write_line
    terminalreporter.section("faults injected")
    write(f"{'scenario':<58} {'faults':>6}  {'outcome':<15} {'lost':>4} {'partial':>7}")
    for e in entries:
        outcome = "recovered" if e["recovered"] else "failed cleanly"
        write(f"{e['scenario'][:58]:<58} {e['faults']:>6}  {outcome:<15} {e['lost']:>4} {e['partial']:>7}")
        if e["message"] and not e["recovered"]:
            write(f"    message: {e['message'][:150]}")
    write(
        f"faults injected: {sum(e['faults'] for e in entries)}; runs recovered: "
        f"{sum(e['recovered'] for e in entries)}; runs failed cleanly: {sum(not e['recovered'] for e in entries)}; "
        f"profiles lost: {sum(e['lost'] for e in entries)} (must be 0); "
        f"partial files visible: {sum(e['partial'] for e in entries)} (must be 0); "
        f"runs doubled: {sum(e['doubled'] for e in entries)} (must be 0); "
        f"secrets printed: {sum(e['secrets'] for e in entries)} (must be 0)"
    )
