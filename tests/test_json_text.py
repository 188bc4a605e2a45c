"""Column-wise JSON against orjson one value at a time, on random nested columns."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from profile_exports.json_text import json_objects, json_texts
from profile_exports.values import json_text_per_value, python_values

# Text with what JSON must escape: quotes, backslashes, control characters, and non-ASCII.
texts = st.text(
    alphabet=st.sampled_from(["a", "é", '"', "\\", "\n", "\t", "\x01", "\x1f", "😀", ",", ":", "{"]), max_size=6
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1.0, -0.0, 0.1, 1e20, 1e-7, 123456789.0])
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))

SCALARS: list[tuple[pa.DataType, st.SearchStrategy[Any]]] = [
    (pa.string(), texts),
    (pa.large_string(), texts),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    (pa.float64(), floats),
    (pa.bool_(), st.booleans()),
    (pa.timestamp("ms", tz="UTC"), times),
    (pa.date32(), st.dates(min_value=date(1, 1, 1))),
    (pa.time64("us"), st.times()),  # no column-wise rule: the per-value path
]


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def typed_values(draw: st.DrawFn, depth: int = 0, in_map: bool = False) -> tuple[pa.DataType, st.SearchStrategy[Any]]:
    kind = draw(st.sampled_from(["scalar", "scalar", "list", "struct", "map"] if depth < 2 else ["scalar"]))
    if kind == "scalar":
        type_, values = draw(st.sampled_from(SCALARS))
        # The per-value reference leaves timestamps inside maps to orjson ("+00:00"), and writes
        # non-finite floats inside lists and structs as null: see the tests below for both.
        assume(not (in_map and pa.types.is_timestamp(type_)))
        if depth > 0 and pa.types.is_floating(type_):
            values = st.floats(allow_nan=False, allow_infinity=False)
        return type_, values
    inner_type, inner = draw(typed_values(depth + 1, in_map or kind == "map"))
    if kind == "list":
        return pa.list_(inner_type), st.lists(optional(inner), max_size=4)
    if kind == "map":
        # A map's keys are unique, as a dict's. Not empty: Python sees an empty map as [], and the
        # per-value reference would print it as a list (the column-wise path prints {}, see below).
        keys = st.lists(texts, min_size=1, max_size=4, unique=True)
        return pa.map_(pa.string(), inner_type), keys.flatmap(
            lambda ks: st.tuples(*[optional(inner) for _ in ks]).map(lambda vs, ks=ks: list(zip(ks, vs, strict=True)))
        )
    other_type, other = draw(typed_values(depth + 1, in_map))
    names = draw(st.lists(texts, min_size=2, max_size=2, unique=True))
    return pa.struct([(names[0], inner_type), (names[1], other_type)]), st.fixed_dictionaries(
        {names[0]: optional(inner), names[1]: optional(other)}
    )


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_column_json_reads_back_as_orjson_of_each_value(data: st.DataObject) -> None:
    type_, strategy = data.draw(typed_values())
    values = data.draw(st.lists(optional(strategy), max_size=12))
    start = data.draw(st.integers(0, len(values)))
    column = pa.array(values, type_).slice(start)
    got = json_texts(column).to_pylist()
    want = json_text_per_value(pa.array(values[start:], type_)).to_pylist()  # a fresh array, not a slice
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want, strict=True):
        if g is not None:
            assert same(json.loads(g), json.loads(w)), (g, w)


def test_strings_are_byte_for_byte_orjson() -> None:
    column = pa.array(["plain", 'quote " and \\ backslash', "line\nbreak", "\x00\x1f", "é😀", "", None])
    assert json_texts(column).to_pylist() == [
        None if v is None else orjson.dumps(v).decode() for v in column.to_pylist()
    ]


def test_floats_keep_their_point_and_non_finite_ones_are_strings() -> None:
    column = pa.array([1.0, -2.0, 0.5, float("nan"), float("inf"), float("-inf"), None])
    assert json_texts(column).to_pylist() == ["1.0", "-2.0", "0.5", '"NaN"', '"Infinity"', '"-Infinity"', None]


def test_row_objects_have_every_key_in_order() -> None:
    batch = pa.record_batch(
        {
            "identity": ["a", None],
            "Age": pa.array([3, None], pa.int64()),
            "tags": pa.array([["x", None], []], pa.list_(pa.string())),
            "groups": pa.array([[("g", "on")], None], pa.map_(pa.string(), pa.string())),
        }
    )
    got = [json.loads(line) for line in json_objects(batch, batch.schema.names).to_pylist()]
    rows = [
        dict(zip(batch.schema.names, r, strict=True))
        for r in zip(*(python_values(c) for c in batch.columns), strict=True)
    ]
    assert got == rows
    assert list(got[0]) == ["identity", "Age", "tags", "groups"]
    assert got[1] == {"identity": None, "Age": None, "tags": [], "groups": None}


def test_empty_maps_are_objects_and_empty_lists_arrays() -> None:
    nested = pa.array([[("a", [])], []], pa.map_(pa.string(), pa.map_(pa.string(), pa.int64())))
    assert json_texts(nested).to_pylist() == ['{"a":{}}', "{}"]
    assert json_texts(pa.array([[], [[]]], pa.list_(pa.list_(pa.int64())))).to_pylist() == ["[]", "[[]]"]


def test_timestamps_follow_one_rule_wherever_they_are() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    in_map = pa.array([[("at", when)]], pa.map_(pa.string(), pa.timestamp("s", tz="UTC")))
    in_list = pa.array([[when]], pa.list_(pa.timestamp("s", tz="UTC")))
    assert json_texts(in_map).to_pylist() == ['{"at":"2024-01-02T03:04:05Z"}']
    assert json_texts(in_list).to_pylist() == ['["2024-01-02T03:04:05Z"]']


def test_non_finite_floats_are_the_same_strings_at_every_depth() -> None:
    nested = pa.array([[float("nan"), float("inf"), None, 2.0]], pa.list_(pa.float64()))
    assert json_texts(nested).to_pylist() == ['["NaN","Infinity",null,2.0]']


def test_lists_of_text_without_null_items() -> None:
    column = pa.array([["a", 'q"uote'], [], None, ["\\n", "é"], [""]], pa.list_(pa.string())).slice(0)
    expected = [None if v is None else orjson.dumps(v).decode() for v in column.to_pylist()]
    assert json_texts(column).to_pylist() == expected
    assert json_texts(column.slice(1)).to_pylist() == expected[1:]
