"""The Arrow memory a Parquet source holds follows its batch size, not the size of the file (issue 16, item 11).

These measure Arrow's own allocations (``pyarrow.total_allocated_bytes``), which are exact and do not
depend on the allocator or on other processes; peak RSS of whole exports, for every source kind, is
measured by ``benchmarks/memory.py`` (``nox -s bench``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from profile_exports.sources import files
from profile_exports.sources.files import ParquetSourceFactory

BATCH = 1000


def _write(path: Path, rows: int, row_group: int) -> int:
    """Profiles with random (hardly compressible) text; the largest row group's Arrow size."""
    random = np.random.default_rng(7)
    text = [pa.array(random.integers(0, 1 << 62, rows).astype(str)) for _ in range(3)]
    table = pa.table({"profile_id": pa.array([f"p{i}" for i in range(rows)]), "a": text[0], "b": text[1], "c": text[2]})
    pq.write_table(table, path, row_group_size=row_group)
    return max(g.total_byte_size for g in (pq.read_metadata(path).row_group(i) for i in range(-(-rows // row_group))))


def _peak_while_reading(path: Path) -> tuple[int, int]:
    """The most Arrow memory allocated above what was allocated before, while every batch is read; rows."""
    source = ParquetSourceFactory()({"path": str(path)}, batch_size=BATCH)
    before = pa.total_allocated_bytes()
    peak = rows = 0
    for batch in source.read(0):
        assert batch.num_rows <= BATCH
        rows += batch.num_rows
        peak = max(peak, pa.total_allocated_bytes() - before)
        del batch
    return peak, rows


def test_a_file_of_many_row_groups_holds_no_more_than_one_of_few(tmp_path: Path) -> None:
    # Row groups small enough to be fetched whole: what was fetched must go with its row group.
    _write(tmp_path / "few.parquet", 20_000, 5_000)
    _write(tmp_path / "many.parquet", 200_000, 5_000)
    few, few_rows = _peak_while_reading(tmp_path / "few.parquet")
    many, many_rows = _peak_while_reading(tmp_path / "many.parquet")
    assert (few_rows, many_rows) == (20_000, 200_000)
    assert many <= 1.5 * few, f"{many / 2**20:.1f} MiB for 40 row groups, {few / 2**20:.1f} MiB for 4"


def test_a_large_row_group_streams_instead_of_being_decoded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = _write(tmp_path / "one-group.parquet", 1_000_000, 1_000_000)
    monkeypatch.setattr(files, "PREBUFFER_BYTES", 0)  # every row group is "large": the streaming path
    peak, rows = _peak_while_reading(tmp_path / "one-group.parquet")
    assert rows == 1_000_000
    assert peak < group / 3, f"{peak / 2**20:.1f} MiB held while reading a row group of {group / 2**20:.1f} MiB"
