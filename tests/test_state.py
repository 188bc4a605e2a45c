"""The fingerprint state: the lookup against the base run and the Parquet files it is kept in."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from profile_exports.state import STATE_SCHEMA, FingerprintStore, IncrementalChanges, _Lookup


def _keys(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def test_lookup_aligned_rows_compare_by_position() -> None:
    lookup = _Lookup(_keys(1, 2, 3, 4), _keys(10, 20, 30, 40))
    assert lookup.unchanged(_keys(1, 2), _keys(10, 21)).tolist() == [True, False]
    assert lookup.unchanged(_keys(3, 4), _keys(30, 40)).tolist() == [True, True]


def test_lookup_finds_reordered_and_new_rows_by_key() -> None:
    lookup = _Lookup(_keys(1, 2, 3, 4), _keys(10, 20, 30, 40))
    # 4 and 2 are out of place, 9 is new, 3 changed
    assert lookup.unchanged(_keys(4, 9, 2, 3), _keys(40, 90, 20, 31)).tolist() == [True, False, True, False]
    # past the end of the base run: only the search can answer
    assert lookup.unchanged(_keys(1, 5), _keys(10, 50)).tolist() == [True, False]


def test_lookup_duplicate_ids_compare_with_the_first_occurrence() -> None:
    # key 7 was seen twice in the base run; the first occurrence's fingerprint (70) counts
    keys = np.arange(1000, dtype=np.uint64) + 100
    prints = keys * 3
    keys[[10, 600]] = 7
    prints[10], prints[600] = 70, 71
    lookup = _Lookup(keys, prints)
    assert lookup.unchanged(_keys(5, 7), _keys(0, 70)).tolist() == [False, True]
    assert _Lookup(keys, prints).unchanged(_keys(5, 7), _keys(0, 71)).tolist() == [False, False]


def test_state_round_trips_through_parquet(tmp_path) -> None:
    store = FingerprintStore(str(tmp_path / "state"))
    changes = IncrementalChanges(store, "e1", run=1, base_run=None)
    ids = pa.array([f"p{i}" for i in range(5000)])
    batch = pa.record_batch({"profile_id": ids, "Age": pa.array(np.arange(5000))})
    assert changes.select(0, ids, batch).num_rows == 5000  # first run: everything is new
    changes.finish_partition(0)
    changes.close()

    table = pq.read_table(store.path("e1", 1, 0))
    assert table.schema == STATE_SCHEMA
    assert table.num_rows == 5000
    assert table.column("key").null_count == 0

    again = IncrementalChanges(store, "e1", run=2, base_run=1)
    ages = np.arange(5000)
    ages[[3, 4000]] += 1
    kept = again.select(0, ids, pa.record_batch({"profile_id": ids, "Age": pa.array(ages)}))
    assert kept.column("profile_id").to_pylist() == ["p3", "p4000"]
    again.close()
