"""The synthetic profile generator: schema, determinism, realism of values, batch bounds."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from profile_exports.sources.synthetic_data import SYNTHETIC_SCHEMA, generate_profiles


def _table(count: int, **kwargs: int) -> pa.Table:
    return pa.Table.from_batches(list(generate_profiles(count, **kwargs)), schema=SYNTHETIC_SCHEMA)


@pytest.fixture(scope="module")
def profiles() -> pa.Table:
    return _table(5000, seed=1234, batch_size=1700)


def test_every_batch_has_exactly_the_schema_and_at_most_batch_size_rows() -> None:
    sizes = []
    for batch in generate_profiles(2500, seed=3, batch_size=1000):
        assert batch.schema.equals(SYNTHETIC_SCHEMA, check_metadata=True)
        batch.validate(full=True)
        sizes.append(batch.num_rows)
    assert sizes == [1000, 1000, 500]


@pytest.mark.parametrize(("count", "batch_size"), [(0, 10), (1, 10), (10, 10), (11, 10), (999, 64)])
def test_batches_cover_count_without_exceeding_batch_size(count: int, batch_size: int) -> None:
    sizes = [batch.num_rows for batch in generate_profiles(count, batch_size=batch_size, start=17)]
    assert sum(sizes) == count
    assert all(0 < size <= batch_size for size in sizes)


def test_top_level_and_nested_field_names() -> None:
    assert SYNTHETIC_SCHEMA.names == [
        "profile_id", "profile_ids", "identity", "email", "phone", "device", "comm_prefs",
        "subscription_groups", "properties", "updated_at",
    ]  # fmt: skip
    comm_prefs = SYNTHETIC_SCHEMA.field("comm_prefs").type
    assert [f.name for f in comm_prefs] == [
        "MSG-push", "MSG-push-all", "MSG-email", "MSG-sms", "MSG-whatsapp"
    ]  # fmt: skip
    assert [f.name for f in SYNTHETIC_SCHEMA.field("device").type] == [
        "token", "platform", "os_version", "app_version"
    ]  # fmt: skip
    assert not SYNTHETIC_SCHEMA.field("profile_id").nullable
    assert not SYNTHETIC_SCHEMA.field("updated_at").nullable


@pytest.mark.parametrize(
    "pieces",
    [
        # (start, count, batch_size) calls that together cover profile numbers 0..2999
        [(0, 3000, 3000)],
        [(0, 1000, 333), (1000, 1234, 1024), (2234, 766, 97)],
        [(0, 1, 1), (1, 4, 3), (5, 2990, 5000), (2995, 5, 2)],
        [(2000, 1000, 10_000), (0, 40, 1), (40, 1960, 1000)],  # out of order: sorted below
    ],
)
def test_rows_depend_only_on_seed_and_profile_number(pieces: list[tuple[int, int, int]]) -> None:
    reference = _table(3000, seed=42)
    parts = sorted(pieces)
    stitched = pa.concat_tables(
        _table(count, seed=42, start=start, batch_size=batch_size) for start, count, batch_size in parts
    )
    assert stitched.num_rows == 3000
    assert stitched.equals(reference)


def test_far_profile_numbers_work_and_stay_deterministic() -> None:
    far = 10**12 + 7
    (batch,) = generate_profiles(3, seed=1, start=far)
    (single,) = generate_profiles(1, seed=1, start=far + 2)
    assert batch.slice(2).equals(single)
    for offset, ids in enumerate(batch["identity"].to_pylist()):
        assert ids is None or ids[0] == f"user_{far + offset}"


def test_same_seed_repeats_and_other_seeds_differ() -> None:
    assert _table(500, seed=9).equals(_table(500, seed=9))
    a, b = _table(500, seed=9), _table(500, seed=10)
    assert not set(a["profile_id"].to_pylist()) & set(b["profile_id"].to_pylist())
    assert a["email"].to_pylist() != b["email"].to_pylist()


def test_profile_ids_are_unique_and_well_formed() -> None:
    table = _table(50_000, seed=5, batch_size=20_000)
    ids = table["profile_id"]
    assert ids.null_count == 0
    assert pc.count_distinct(ids).as_py() == table.num_rows
    assert pc.all(pc.match_substring_regex(ids, r"^__g[0-9a-f]{20}$")).as_py()


def test_profile_ids_list_starts_with_the_profile_id(profiles: pa.Table) -> None:
    lists = profiles["profile_ids"].to_pylist()
    assert all(ids[0] == pid for ids, pid in zip(lists, profiles["profile_id"].to_pylist(), strict=True))
    lengths = [len(ids) for ids in lists]
    assert set(lengths) == {1, 2, 3}
    assert 0.10 < sum(n > 1 for n in lengths) / len(lengths) < 0.20  # ~15% have merged ids


def test_identity_is_mostly_one_user_id(profiles: pa.Table) -> None:
    identities = profiles["identity"].to_pylist()
    lengths = [None if ids is None else len(ids) for ids in identities]
    assert 0.07 < lengths.count(None) / len(lengths) < 0.13
    assert 0.03 < lengths.count(2) / len(lengths) < 0.08
    assert all(re.fullmatch(r"user_\d{6,}", ids[0]) for ids in identities if ids)


def test_phones_are_e164(profiles: pa.Table) -> None:
    phones = profiles["phone"]
    assert 0.2 < phones.null_count / len(phones) < 0.3
    assert all(re.fullmatch(r"^\+[1-9]\d{9,13}$", p) for p in phones.drop_null().to_pylist())


def test_emails_use_example_domains_only(profiles: pa.Table) -> None:
    emails = profiles["email"]
    assert 0.1 < emails.null_count / len(emails) < 0.2
    pattern = r"^[a-z0-9._]+@example\.(com|org|net)$"
    assert all(re.fullmatch(pattern, e) for e in emails.drop_null().to_pylist())


def test_device_tokens_and_comm_prefs(profiles: pa.Table) -> None:
    device = profiles["device"].combine_chunks()
    tokens = device.field("token")
    assert 0.15 < tokens.null_count / len(tokens) < 0.25
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for t in tokens.drop_null().to_pylist())
    assert set(device.field("platform").to_pylist()) == {"Android", "iOS", "Web"}
    comm_prefs = profiles["comm_prefs"].combine_chunks()
    for field in comm_prefs.type:
        values = comm_prefs.field(field.name)
        assert 0.05 < values.null_count / len(values) < 0.15
        assert set(values.drop_null().to_pylist()) == {True, False}


def test_subscription_groups(profiles: pa.Table) -> None:
    maps = profiles["subscription_groups"].to_pylist()
    assert {len(entries) for entries in maps} == {0, 1, 2, 3}
    for entries in maps:
        keys = [key for key, _ in entries]
        assert len(keys) == len(set(keys))
        assert {value for _, value in entries} <= {"Subscribed", "Unsubscribed"}


def test_properties_are_many_and_all_have_gaps(profiles: pa.Table) -> None:
    properties = profiles["properties"].combine_chunks()
    assert len(properties.type) >= 30
    for field in properties.type:
        column = properties.field(field.name)
        assert 0 < column.null_count < len(column), field.name


def test_property_types_and_values(profiles: pa.Table) -> None:
    properties = profiles["properties"].combine_chunks()
    types = {field.name: field.type for field in properties.type}
    assert types["DOB"] == pa.timestamp("s", tz="UTC")
    assert types["tags"] == pa.list_(pa.string())
    assert types["lifetime_value"] == pa.float64()
    assert types["Age"] == pa.int64()
    assert set(properties.field("Gender").drop_null().to_pylist()) == {"M", "F", "O"}
    games = set(properties.field("Favourite Game").drop_null().to_pylist())
    assert any(not game.isascii() for game in games)
    churn = properties.field("churn_risk").drop_null()
    assert pc.min(churn).as_py() >= 0.0
    assert pc.max(churn).as_py() <= 1.0
    assert all(re.fullmatch(r"CRM-\d{7}", c) for c in properties.field("crm_id").drop_null().to_pylist())
    assert all(0 <= len(tags) <= 4 for tags in properties.field("tags").drop_null().to_pylist())


def test_arguments_are_checked_at_call_time() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        generate_profiles(10, batch_size=0)
    with pytest.raises(ValueError, match="count"):
        generate_profiles(-1)
    with pytest.raises(ValueError, match="seed"):
        generate_profiles(10, seed=-1)
    with pytest.raises(ValueError, match="profile numbers"):
        generate_profiles(10, start=-5)
