"""Row fingerprints: checked against a plain-Python reading of the definition in the module docstring."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profile_exports import fingerprints as fp
from profile_exports.fingerprints import FINGERPRINT_VERSION, row_fingerprints, value_hashes

MASK = (1 << 64) - 1
G = 0x9E3779B97F4A7C15


# --- the definition, one value at a time -----------------------------------------------------------


def splitmix(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def fmix(z: int) -> int:
    z ^= z >> 33
    z = (z * 0xFF51AFD7ED558CCD) & MASK
    z ^= z >> 33
    z = (z * 0xC4CEB9FE1A85EC53) & MASK
    return z ^ (z >> 33)


def mixw(x: int, c: int) -> int:
    x ^= x >> 32
    x = (x * c) & MASK
    x ^= x >> 29
    return (x * 0xBF58476D1CE4E5B9) & MASK


class Key:
    def __init__(self, k: int) -> None:
        self.k = k
        t = k ^ 0xD1B54A32D192ED03
        self.K, self.T_bytes, self.T_list, self.T_number, self.T_struct = (splitmix(t + i * G) for i in range(1, 6))

    def c(self, m: int) -> int:
        return splitmix(self.k + (m + 1) * G) | 1


def name_key(name: str) -> Key:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=b"pe-fp-name-v1").digest()
    return Key(int.from_bytes(digest, "little"))


def role_key(role: str) -> Key:
    digest = hashlib.blake2b(role.encode("utf-8"), digest_size=8, person=b"pe-fp-role-v1").digest()
    return Key(int.from_bytes(digest, "little"))


def number_bits(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 0x7FF8000000000000
        return struct.unpack("<Q", struct.pack("<d", value))[0]
    assert isinstance(value, int)
    return value & MASK


def ref_term(type_: pa.DataType, value: object, key: Key) -> int:
    """The term of one non-null value, straight from the docstring."""
    t = pa.types
    if t.is_dictionary(type_):
        return ref_term(type_.value_type, value, key)
    if t.is_string(type_) or t.is_large_string(type_) or t.is_string_view(type_) or t.is_decimal(type_):
        return ref_term(pa.binary(), str(value).encode("utf-8"), key)
    if t.is_binary(type_) or t.is_large_binary(type_) or t.is_binary_view(type_) or t.is_fixed_size_binary(type_):
        assert isinstance(value, bytes)
        total = 0
        for m in range(0, (len(value) + 7) // 8):
            word = int.from_bytes(value[8 * m : 8 * m + 8].ljust(8, b"\0"), "little")
            total += mixw(word, key.c(m))
        return (total + len(value) * key.K + key.T_bytes) & MASK
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_) or t.is_list_view(type_):
        assert isinstance(value, list)
        item = role_key("item")
        total = 0
        for m, element in enumerate(value):
            e = 0 if element is None else ref_term(type_.value_type, element, item)
            total += mixw(e, key.c(m))
        return (total + len(value) * key.K + key.T_list) & MASK
    if t.is_map(type_):
        assert isinstance(value, list)
        entry = pa.struct([pa.field("key", type_.key_type), pa.field("value", type_.item_type)])
        return ref_term(pa.list_(entry), [{"key": k, "value": v} for k, v in value], key)
    if t.is_struct(type_):
        assert isinstance(value, dict)
        d = 0
        for field in type_:
            if value.get(field.name) is not None:
                d += ref_term(field.type, value[field.name], name_key(field.name))
        return mixw((d & MASK) ^ key.T_struct, key.c(0))
    return mixw(number_bits(value) ^ key.T_number, key.c(0))


def ref_fingerprints(columns: Mapping[str, tuple[pa.DataType, Sequence[object]]]) -> list[int]:
    n = len(next(iter(columns.values()))[1])
    result = [0] * n
    for name, (type_, values) in columns.items():
        key = name_key(name)
        for i, value in enumerate(values):
            if value is not None:
                result[i] = (result[i] + ref_term(type_, value, key)) & MASK
    return result


def ref_value_hashes(type_: pa.DataType, values: Sequence[object]) -> list[int]:
    key = role_key("value")
    return [0 if v is None else fmix(ref_term(type_, v, key)) for v in values]


def batch_of(columns: Mapping[str, tuple[pa.DataType, Sequence[object]]]) -> pa.RecordBatch:
    return pa.record_batch({name: pa.array(values, type_) for name, (type_, values) in columns.items()})


def as_ints(array: np.ndarray) -> list[int]:
    assert array.dtype == np.uint64
    return [int(x) for x in array]


# --- strategies --------------------------------------------------------------------------------

# Lengths around word boundaries, and past the loop's limit (512 bytes) now and then.
byte_strings = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=500, max_size=700),
)
texts = st.one_of(st.text(max_size=30), st.text(min_size=130, max_size=200))
int64s = st.integers(-(2**63), 2**63 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


COLUMN_TYPES: list[tuple[pa.DataType, st.SearchStrategy]] = [
    (pa.string(), texts),
    (pa.binary(), byte_strings),
    (pa.int64(), int64s),
    (pa.int8(), st.integers(-128, 127)),
    (pa.uint32(), st.integers(0, 2**32 - 1)),
    (pa.float64(), floats),
    (pa.bool_(), st.booleans()),
    (pa.list_(pa.string()), st.lists(optional(st.text(max_size=12)), max_size=6)),
    (pa.list_(pa.int64()), st.lists(optional(int64s), max_size=70)),
    (
        pa.struct([("a", pa.string()), ("b", pa.int32())]),
        st.fixed_dictionaries({"a": optional(texts), "b": optional(st.integers(-(2**31), 2**31 - 1))}),
    ),
    (pa.map_(pa.string(), pa.int64()), st.lists(st.tuples(st.text(max_size=5), optional(int64s)), max_size=4)),
    (pa.timestamp("ms", tz="UTC"), st.integers(-(2**62), 2**62)),
    (
        pa.struct([("s", pa.struct([("x", pa.string())])), ("n", pa.int64())]),
        st.fixed_dictionaries({"s": optional(st.fixed_dictionaries({"x": optional(texts)})), "n": optional(int64s)}),
    ),
    (
        pa.list_(pa.list_(pa.int8())),
        st.lists(optional(st.lists(optional(st.integers(-128, 127)), max_size=3)), max_size=3),
    ),
    (
        pa.list_(pa.struct([("k", pa.string()), ("v", pa.list_(pa.bool_()))])),
        st.lists(
            optional(
                st.fixed_dictionaries(
                    {"k": optional(st.text(max_size=9)), "v": optional(st.lists(optional(st.booleans()), max_size=3))}
                )
            ),
            max_size=3,
        ),
    ),
]


@st.composite
def column_sets(draw: st.DrawFn, max_rows: int = 40) -> dict[str, tuple[pa.DataType, list[object]]]:
    n = draw(st.integers(0, max_rows))
    chosen = draw(st.lists(st.integers(0, len(COLUMN_TYPES) - 1), min_size=1, max_size=5))
    columns = {}
    for i, which in enumerate(chosen):
        type_, strategy = COLUMN_TYPES[which]
        columns[f"col{i} {type_}"] = (type_, draw(st.lists(optional(strategy), min_size=n, max_size=n)))
    return columns


# --- 0. the implementation is the definition --------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_sets())
def test_matches_the_reference_definition(columns: dict[str, tuple[pa.DataType, list[object]]]) -> None:
    batch = batch_of(columns)
    assert as_ints(row_fingerprints(batch)) == ref_fingerprints(columns)
    for type_, values in columns.values():
        assert as_ints(value_hashes(pa.array(values, type_))) == ref_value_hashes(type_, values)


# The compiled byte kernel ([fast] extra, installed with the test extra) and the numpy code are two
# implementations of one definition: the tests above run the compiled one, these hold numpy to it too.


@contextlib.contextmanager
def numpy_only() -> Iterator[None]:
    saved = fp._byte_kernel
    fp._byte_kernel = lambda: None  # type: ignore[assignment]
    try:
        yield
    finally:
        fp._byte_kernel = saved  # type: ignore[method-assign]


def test_the_compiled_kernel_is_in_use_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fp._byte_kernel() is not None
    monkeypatch.setenv("PROFILE_EXPORTS_JIT", "0")
    assert fp._byte_kernel.__wrapped__() is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_sets())
def test_numpy_code_matches_the_reference_definition(columns: dict[str, tuple[pa.DataType, list[object]]]) -> None:
    with numpy_only():
        assert as_ints(row_fingerprints(batch_of(columns))) == ref_fingerprints(columns)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(optional(st.binary(max_size=700)), max_size=30),
    st.integers(0, 9),
    st.sampled_from([pa.binary(), pa.large_binary(), pa.binary(3)]),
)
def test_compiled_and_numpy_byte_terms_agree(values: list[bytes | None], k: int, type_: pa.DataType) -> None:
    if type_ == pa.binary(3):  # fixed width: every value 3 bytes
        values = [None if v is None else (v + b"abc")[:3] for v in values]
    # Slices start values off 8-byte boundaries; the last values end at the buffer's very end.
    array = pa.array(values, type_).slice(k)
    compiled = as_ints(value_hashes(array)), as_ints(row_fingerprints(pa.record_batch({"v": array})))
    with numpy_only():
        assert (as_ints(value_hashes(array)), as_ints(row_fingerprints(pa.record_batch({"v": array})))) == compiled


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_sets(max_rows=12), st.data())
def test_changing_one_value_changes_only_its_row(
    columns: dict[str, tuple[pa.DataType, list[object]]], data: st.DataObject
) -> None:
    n = len(next(iter(columns.values()))[1])
    if n == 0:
        return
    name = data.draw(st.sampled_from(sorted(columns)))
    row = data.draw(st.integers(0, n - 1))
    type_, values = columns[name]
    strategy = next(s for t, s in COLUMN_TYPES if t == type_)
    replacement = data.draw(optional(strategy).filter(lambda v: not same_value(v, values[row])))
    changed = dict(columns)
    changed[name] = (type_, [replacement if i == row else v for i, v in enumerate(values)])
    before, after = as_ints(row_fingerprints(batch_of(columns))), as_ints(row_fingerprints(batch_of(changed)))
    assert before[row] != after[row]
    assert before[:row] + before[row + 1 :] == after[:row] + after[row + 1 :]


def same_value(a: object, b: object) -> bool:
    """Equal as the fingerprint sees it: NaNs are all one value, -0.0 is not 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return same_value(list(a), list(b))
    return type(a) is type(b) and a == b


def test_keys_follow_the_documented_derivation() -> None:
    for name in ["", "identity", "Blood Group", "日本"]:
        ours, theirs = fp._name_key(name), name_key(name)
        assert ours.value == theirs.k
        assert int(ours.length) == theirs.K and int(ours.string_tag) == theirs.T_bytes
        assert [int(c) for c in ours.positions] == [theirs.c(m) for m in range(fp._LOOP_WORDS)]
        assert int(ours.position_multipliers(np.array([1000], dtype=np.uint64))[0]) == theirs.c(1000)
    assert fp._role_key("item").value == role_key("item").k


# --- 1. deterministic ---------------------------------------------------------------------------

GOLDEN_COLUMNS: dict[str, tuple[pa.DataType, list[object]]] = {
    "identity": (pa.string(), ["alice@example.com", "", None, "bob"]),
    "Age": (pa.int64(), [31, None, 0, -7]),
    "lifetime_value": (pa.float64(), [12.5, -0.0, None, float("nan")]),
    "is_premium": (pa.bool_(), [True, False, None, True]),
    "tags": (pa.list_(pa.string()), [["a", "b"], [], None, ["a", None]]),
    "device": (pa.struct([("token", pa.string())]), [{"token": "t0"}, {"token": None}, None, {"token": "x" * 70}]),
}

# Written by version 1 and read by every later version: a change here means stored state is stale.
GOLDEN_FINGERPRINTS = [15420828789266629032, 6047458053362904000, 13942428386993146094, 4809299930707357707]
GOLDEN_VALUE_HASHES = [18237429662175232595, 6625650265395070934, 0, 12328626588207575638]
GOLDEN_IDS = ["u-1", "u-2", None, "a much longer profile id, past several words"]
# Values past the word loop's 512 bytes take another path to the same definition.
GOLDEN_LONG = {"x" * 600: 17978770731526841352, bytes(range(256)) * 5: 566011954435708882}


def test_golden_values() -> None:
    assert FINGERPRINT_VERSION == 1
    assert as_ints(row_fingerprints(batch_of(GOLDEN_COLUMNS))) == GOLDEN_FINGERPRINTS
    assert as_ints(value_hashes(pa.array(GOLDEN_IDS))) == GOLDEN_VALUE_HASHES
    for value, expected in GOLDEN_LONG.items():
        assert as_ints(value_hashes(pa.array([value]))) == [expected]


def test_same_in_another_process() -> None:
    """No Python hash(), no seed: a fresh interpreter with another hash seed agrees."""
    code = (
        "import pyarrow as pa\n"
        "from profile_exports.fingerprints import row_fingerprints\n"
        "b = pa.record_batch({'s': ['x', None, 'yy' * 20], 'n': [1, 2, None], 'l': [['a'], [], None]})\n"
        "print(' '.join(str(int(x)) for x in row_fingerprints(b)))\n"
    )
    batch = pa.record_batch({"s": ["x", None, "yy" * 20], "n": [1, 2, None], "l": [["a"], [], None]})
    for seed in ("0", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert result.stdout.split() == [str(x) for x in as_ints(row_fingerprints(batch))]


# --- 2. layout independent ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_sets(max_rows=30), st.data())
def test_slices_equal_fresh_batches(columns: dict[str, tuple[pa.DataType, list[object]]], data: st.DataObject) -> None:
    batch = batch_of(columns)
    k = data.draw(st.integers(0, batch.num_rows))
    length = data.draw(st.integers(0, batch.num_rows - k))
    fresh = batch_of({name: (type_, values[k : k + length]) for name, (type_, values) in columns.items()})
    assert as_ints(row_fingerprints(batch.slice(k, length))) == as_ints(row_fingerprints(fresh))
    assert as_ints(row_fingerprints(batch.slice(k))) == as_ints(row_fingerprints(batch))[k:]


@settings(max_examples=60, deadline=None)
@given(st.lists(optional(texts), max_size=40), st.integers(0, 5))
def test_string_layouts(values: list[str | None], k: int) -> None:
    expected = as_ints(value_hashes(pa.array(values, pa.string())))
    for type_ in (pa.large_string(), pa.string_view()):
        assert as_ints(value_hashes(pa.array(values, type_))) == expected
    assert as_ints(value_hashes(pa.array(values).dictionary_encode())) == expected
    assert as_ints(value_hashes(pa.array(values, pa.string()).slice(k))) == expected[k:]
    assert as_ints(value_hashes(pa.array(values).dictionary_encode().slice(k))) == expected[k:]
    chunked = pa.chunked_array([pa.array(values[:k], pa.string()), pa.array(values[k:], pa.string())])
    assert as_ints(value_hashes(chunked)) == expected
    # binary of the same bytes is the same value
    raw = [None if v is None else v.encode() for v in values]
    for type_ in (pa.binary(), pa.large_binary(), pa.binary_view()):
        assert as_ints(value_hashes(pa.array(raw, type_))) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(optional(st.lists(optional(st.text(max_size=10)), max_size=5)), max_size=30), st.integers(0, 5))
def test_list_layouts(values: list[list[str | None] | None], k: int) -> None:
    expected = as_ints(value_hashes(pa.array(values, pa.list_(pa.string()))))
    for type_ in (pa.large_list(pa.string()), pa.list_(pa.large_string()), pa.list_(pa.string_view())):
        assert as_ints(value_hashes(pa.array(values, type_))) == expected
    assert as_ints(value_hashes(pa.array(values, pa.list_(pa.string())).slice(k))) == expected[k:]
    dictionary_items = pa.array(values, pa.list_(pa.dictionary(pa.int32(), pa.string())))
    assert as_ints(value_hashes(dictionary_items)) == expected


def test_list_views_and_fixed_size_lists() -> None:
    values = [[1, 2], None, [3, None], [], [4, 5]]
    expected = as_ints(value_hashes(pa.array(values, pa.list_(pa.int64()))))
    # A list view whose views are out of order and overlap, with a null pointing anywhere.
    view = pa.ListViewArray.from_arrays(
        pa.array([6, 0, 2, 0, 0], pa.int32()),
        pa.array([2, 9, 2, 0, 2], pa.int32()),
        pa.array([4, 5, 3, None, 9, 1, 1, 2, 0], pa.int64()),
        mask=pa.array([False, True, False, False, False]),
    )
    assert view.to_pylist() == [[1, 2], None, [3, None], [], [4, 5]]
    assert as_ints(value_hashes(view)) == expected
    assert as_ints(value_hashes(view.slice(2))) == expected[2:]
    pairs = [[1, 2], None, [3, None], [4, 5]]
    fixed = pa.array(pairs, pa.list_(pa.int64(), 2))
    assert as_ints(value_hashes(fixed)) == as_ints(value_hashes(pa.array(pairs, pa.list_(pa.int64()))))
    assert as_ints(value_hashes(fixed.slice(1))) == as_ints(value_hashes(pa.array(pairs[1:], pa.list_(pa.int64()))))


def test_struct_slices_and_tables() -> None:
    columns = GOLDEN_COLUMNS
    batch = batch_of(columns)
    expected = as_ints(row_fingerprints(batch))
    for k in range(batch.num_rows + 1):
        assert as_ints(row_fingerprints(batch.slice(k))) == expected[k:]
    table = pa.Table.from_batches([batch.slice(0, 1), batch.slice(1, 2), batch.slice(3)])
    assert as_ints(row_fingerprints(table)) == expected
    assert as_ints(row_fingerprints(table.combine_chunks())) == expected


def test_sliced_null_slots_with_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Null slots that own bytes, long strings among short ones, and chunking: as if built fresh."""
    rng = np.random.default_rng(7)
    n = 5000
    lengths = rng.choice([0, 3, 8, 13, 40, 52, 90, 700], size=n, p=[0.1, 0.2, 0.1, 0.2, 0.2, 0.1, 0.08, 0.02])
    data = rng.integers(0, 256, size=int(lengths.sum()), dtype=np.uint8).tobytes()
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    valid = rng.random(n) > 0.3
    array = pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data), pa.array(valid).buffers()[1]
    ).cast(pa.binary())
    values = array.to_pylist()
    expected = ref_value_hashes(pa.binary(), values)
    assert as_ints(value_hashes(array)) == expected
    monkeypatch.setattr(fp, "_CHUNK_ROWS", 777)
    monkeypatch.setattr(fp, "_FLAT_WORDS", 16)  # long values in several pieces
    assert as_ints(value_hashes(array.slice(3))) == expected[3:]
    batch = pa.record_batch({"p": array})
    assert as_ints(row_fingerprints(batch)) == ref_fingerprints({"p": (pa.binary(), values)})


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([0, 1, 7, 8, 9, 23, 52, 64, 600]),
    st.lists(st.booleans(), min_size=1, max_size=40),
    st.integers(0, 8),
    st.randoms(use_true_random=False),
)
def test_values_of_one_length(length: int, valid: list[bool], k: int, rng: object) -> None:
    """Equal-length values (ids, tokens) take a path of their own; null slots may hold bytes."""
    import random

    assert isinstance(rng, random.Random)
    raw = [bytes(rng.randrange(256) for _ in range(length)) for _ in valid]
    offsets = np.arange(len(raw) + 1, dtype=np.int32) * length
    buffers = [pa.array(valid).buffers()[1], pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(raw))]
    array = pa.Array.from_buffers(pa.binary(), len(raw), buffers)
    values = [v if ok else None for v, ok in zip(raw, valid, strict=True)]
    expected = ref_value_hashes(pa.binary(), values)
    assert as_ints(value_hashes(array)) == expected
    assert as_ints(value_hashes(array.slice(k))) == expected[k:]
    assert as_ints(row_fingerprints(pa.record_batch({"id": array}))) == ref_fingerprints({"id": (pa.binary(), values)})


def test_lists_with_many_elements_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists with many elements in all are hashed some rows at a time: same result."""
    rng = np.random.default_rng(5)
    values = [None if i % 7 == 0 else [str(j) for j in range(int(rng.integers(0, 30)))] for i in range(300)]
    pairs = [None if i % 5 == 0 else [i, None, -i] for i in range(300)]
    arrays = [pa.array(values, pa.list_(pa.string())), pa.array(values, pa.large_list(pa.string()))]
    arrays.append(pa.array(pairs, pa.list_(pa.int64(), 3)))
    expected = [as_ints(value_hashes(a)) for a in arrays]
    assert expected[0] == ref_value_hashes(pa.list_(pa.string()), values)
    monkeypatch.setattr(fp, "_LIST_ELEMENTS", 37)
    for array, hashes in zip(arrays, expected, strict=True):
        assert as_ints(value_hashes(array)) == hashes
        assert as_ints(value_hashes(array.slice(3))) == hashes[3:]


# --- 3. keyed by name, nulls contribute nothing, order does not matter ------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column_sets(max_rows=20), st.sampled_from([t for t, _ in COLUMN_TYPES] + [pa.null(), pa.timestamp("ms")]))
def test_null_column_and_order(columns: dict[str, tuple[pa.DataType, list[object]]], extra: pa.DataType) -> None:
    batch = batch_of(columns)
    expected = as_ints(row_fingerprints(batch))
    with_null = batch.append_column("new column", pa.nulls(batch.num_rows, extra))
    assert as_ints(row_fingerprints(with_null)) == expected
    reversed_batch = pa.record_batch(list(reversed(batch.columns)), names=list(reversed(batch.schema.names)))
    assert as_ints(row_fingerprints(reversed_batch)) == expected


def test_values_are_keyed_by_column_name() -> None:
    a = pa.record_batch({"x": ["same"], "y": ["other"]})
    b = pa.record_batch({"x": ["other"], "y": ["same"]})
    assert row_fingerprints(a)[0] != row_fingerprints(b)[0]
    moved = pa.record_batch({"x": pa.array([None], pa.string()), "y": ["same"]})
    assert row_fingerprints(pa.record_batch({"x": ["same"]}))[0] != row_fingerprints(moved)[0]
    # equal-length values swapped between columns, identical but for one word
    long_a, long_b = "2024-01-15T10:00:00", "2024-01-15T11:00:00"
    swapped = pa.record_batch({"created": [long_b], "updated": [long_a]})
    assert (
        row_fingerprints(pa.record_batch({"created": [long_a], "updated": [long_b]}))[0] != row_fingerprints(swapped)[0]
    )


def test_struct_fields_follow_the_same_rule() -> None:
    one = pa.array([{"a": 1}], pa.struct([("a", pa.int64())]))
    more = pa.array([{"a": 1, "b": None}], pa.struct([("a", pa.int64()), ("b", pa.string())]))
    assert value_hashes(one)[0] == value_hashes(more)[0]
    all_null = pa.array([{"a": None}], pa.struct([("a", pa.int64())]))
    null = pa.array([None], pa.struct([("a", pa.int64())]))
    assert value_hashes(null)[0] == 0
    assert value_hashes(all_null)[0] != 0  # a struct of nulls is not a null struct


# --- 4. sensitive -----------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.binary(min_size=1, max_size=80), st.data())
def test_every_single_byte_change_is_seen(value: bytes, data: st.DataObject) -> None:
    """Exhaustively over positions; at 8 offsets in the buffer so every word alignment is used."""
    position = data.draw(st.integers(0, len(value) - 1))
    for prefix in range(8):
        variants = [value]
        for delta in (1, 128, 255):
            changed = bytearray(value)
            changed[position] = (changed[position] + delta) % 256
            variants.append(bytes(changed))
        array = pa.array([b"p" * prefix, *variants], pa.binary()).slice(1)
        hashes = value_hashes(array)
        assert len(set(hashes.tolist())) == len(variants)
        rows = row_fingerprints(pa.record_batch({"v": array, "w": pa.array(["same"] * len(variants))}))
        assert len(set(rows.tolist())) == len(variants)


def test_every_byte_of_a_long_value() -> None:
    value = bytes(range(256)) * 3
    variants = [value]
    for i in range(len(value)):
        changed = bytearray(value)
        changed[i] ^= 0x80
        variants.append(bytes(changed))
    hashes = value_hashes(pa.array(variants, pa.binary()))
    assert len(set(hashes.tolist())) == len(variants)


DISTINCT: list[tuple[pa.DataType, list[object]]] = [
    (pa.string(), ["", None, "a", "a\0", "ab", "b", "ba"]),
    (pa.list_(pa.string()), [[], None, ["a", "b"], ["ab"], ["b", "a"], ["a", None], ["a"], [None], [""], [None, "a"]]),
    (pa.list_(pa.list_(pa.int64())), [[], [[]], [[], []], [[1]], [[1, 2]], [[1], [2]], None, [None]]),
    (pa.int64(), [0, None, 1, -1, 2**62]),
    (pa.float64(), [0.0, -0.0, None, 1.0, float("inf"), float("-inf"), float("nan")]),
    (pa.bool_(), [True, False, None]),
    (pa.timestamp("s"), [0, 1, None, 1_700_000_000]),
    (
        pa.struct([("a", pa.int64()), ("b", pa.string())]),
        [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": None}, None, {"a": None, "b": None}],
    ),
    (
        pa.map_(pa.string(), pa.int64()),
        [[("a", 1)], [("a", 2)], [("b", 1)], [("a", 1), ("b", 2)], [("b", 2), ("a", 1)], [], None],
    ),
]


@pytest.mark.parametrize(("type_", "values"), DISTINCT, ids=[str(t) for t, _ in DISTINCT])
def test_distinct_values_hash_apart(type_: pa.DataType, values: list[object]) -> None:
    hashes = value_hashes(pa.array(values, type_)).tolist()
    assert len(set(hashes)) == len(values)
    batch_hashes = row_fingerprints(pa.record_batch({"c": pa.array(values, type_), "d": pa.array([1] * len(values))}))
    assert len(set(batch_hashes.tolist())) == len(values)


def test_nan_and_widths() -> None:
    nans = np.array([np.nan, -np.nan, struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000123))[0]])
    assert len(set(value_hashes(pa.array(nans)).tolist())) == 1
    assert value_hashes(pa.array([5], pa.int8()))[0] == value_hashes(pa.array([5], pa.int64()))[0]
    assert value_hashes(pa.array([-5], pa.int16()))[0] == value_hashes(pa.array([-5], pa.int64()))[0]
    assert value_hashes(pa.array([5], pa.uint16()))[0] == value_hashes(pa.array([5], pa.uint64()))[0]
    assert value_hashes(pa.array([1.5], pa.float32()))[0] == value_hashes(pa.array([1.5], pa.float64()))[0]
    assert value_hashes(pa.array([5]))[0] != value_hashes(pa.array(["5"]))[0]


# --- 5. types -------------------------------------------------------------------------------------


def test_every_supported_type() -> None:
    n = 3
    arrays = {
        **{f"i{w}": pa.array([1, None, -3], getattr(pa, f"int{w}")()) for w in (8, 16, 32, 64)},
        **{f"u{w}": pa.array([1, None, 3], getattr(pa, f"uint{w}")()) for w in (8, 16, 32, 64)},
        "f16": pa.array([np.float16(1.5), None, np.float16(-2)], pa.float16()),
        "f32": pa.array([1.5, None, -2.0], pa.float32()),
        "bool": pa.array([True, None, False]),
        "ts": pa.array([1, None, 3], pa.timestamp("us", tz="UTC")),
        "date32": pa.array([1, None, 3], pa.date32()),
        "date64": pa.array([86_400_000, None, 0], pa.date64()),
        "time32": pa.array([1, None, 3], pa.time32("s")),
        "time64": pa.array([1, None, 3], pa.time64("ns")),
        "duration": pa.array([1, None, 3], pa.duration("ms")),
        "decimal": pa.array([Decimal("1.50"), None, Decimal("-2.25")], pa.decimal128(10, 2)),
        "decimal256": pa.array([Decimal("1.50"), None, Decimal("-2.25")], pa.decimal256(40, 2)),
        "fixed": pa.array([b"ab", None, b"cd"], pa.binary(2)),
        "interval": pa.array([(1, 2, 3), None, (0, 0, -1)], pa.month_day_nano_interval()),
        "null": pa.nulls(n),
        "dict": pa.array(["a", None, "b"]).dictionary_encode(),
        "ree": pc.run_end_encode(pa.array([1, 1, None])),
        "fsl": pa.array([[1, 2], None, [3, 4]], pa.list_(pa.int64(), 2)),
        "map": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
        "nested": pa.array([[{"a": [1]}], None, [{"a": None}]], pa.list_(pa.struct([("a", pa.list_(pa.int64()))]))),
        "uuid": pa.ExtensionArray.from_storage(pa.uuid(), pa.array([b"0" * 16, None, b"1" * 16], pa.binary(16))),
    }
    batch = pa.record_batch(arrays)
    fingerprints = row_fingerprints(batch)
    assert fingerprints.dtype == np.uint64 and len(fingerprints) == n
    for name, array in arrays.items():
        hashes = value_hashes(array)
        assert hashes.dtype == np.uint64 and len(hashes) == n, name
        assert (hashes == 0).tolist() == array.is_null().to_pylist(), name
    # by storage or string form, as documented
    assert value_hashes(arrays["ts"]).tolist() == value_hashes(pa.array([1, None, 3], pa.int64())).tolist()
    assert value_hashes(arrays["date32"]).tolist() == value_hashes(pa.array([1, None, 3], pa.int64())).tolist()
    assert value_hashes(arrays["decimal"]).tolist() == value_hashes(pa.array(["1.50", None, "-2.25"])).tolist()
    assert value_hashes(arrays["fixed"]).tolist() == value_hashes(pa.array([b"ab", None, b"cd"])).tolist()
    assert value_hashes(arrays["uuid"]).tolist() == value_hashes(arrays["uuid"].storage).tolist()
    assert value_hashes(arrays["ree"]).tolist() == value_hashes(pa.array([1, 1, None])).tolist()
    assert as_ints(value_hashes(arrays["map"])) == ref_value_hashes(
        pa.map_(pa.string(), pa.int64()), arrays["map"].to_pylist()
    )


def test_unsupported_type_names_the_column() -> None:
    union = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])
    batch = pa.record_batch({"ok": [1, 2], "mixed": union})
    with pytest.raises(TypeError, match=r"'mixed'.*union"):
        row_fingerprints(batch)
    nested = pa.record_batch({"outer": pa.StructArray.from_arrays([union], names=["inner"])})
    with pytest.raises(TypeError, match=r"'outer\.inner'"):
        row_fingerprints(nested)


def test_empty_inputs() -> None:
    assert row_fingerprints(pa.record_batch({"a": pa.array([], pa.string())})).tolist() == []
    assert row_fingerprints(pa.record_batch({"a": pa.array([""] * 3)})).dtype == np.uint64
    assert value_hashes(pa.chunked_array([], pa.string())).tolist() == []
    assert row_fingerprints(pa.record_batch([pa.array([1, 2])], names=["x"]).select([])).tolist() == [0, 0]


# --- 6. vectorised ------------------------------------------------------------------------------


def test_large_batch_is_consistent_with_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunking, compaction and the long-value path agree with one small batch at a time."""
    rng = np.random.default_rng(3)
    n = 20_000
    strings = [None if i % 7 == 0 else "x" * int(rng.integers(0, 30)) + str(i) for i in range(n)]
    strings[5] = "y" * 2000
    batch = pa.record_batch(
        {
            "s": pa.array(strings),
            "i": pa.array(rng.integers(-1000, 1000, n)),
            "l": pa.array([[str(i)] * (i % 4) if i % 5 else None for i in range(n)]),
        }
    )
    whole = as_ints(row_fingerprints(batch))
    pieces = [x for k in range(0, n, 997) for x in as_ints(row_fingerprints(batch.slice(k, 997)))]
    assert whole == pieces
    monkeypatch.setattr(fp, "_CHUNK_ROWS", 1 << 20)
    assert as_ints(row_fingerprints(batch)) == whole
