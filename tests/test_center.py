"""The export center: registry, schedules, incremental runs, schema policy and manifests.

Real SQLite registry, real local and S3 (moto server) destinations; exported files are read back
with the stdlib csv reader and compared with the source data.
"""

from __future__ import annotations

import copy
import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from profile_exports.center import ExportCenter
from profile_exports.errors import ConfigError, ExportStopped
from profile_exports.hookspecs import hookimpl
from profile_exports.manifest import Manifest, read_manifests
from profile_exports.registry import ExportBusy, ExportNotRunnable

from .conftest import read_csv
from .test_sink_s3 import MotoProcess, aws_env, bucket, moto, s3  # noqa: F401 - fixtures

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
PREFS = ["MSG-email", "MSG-push", "MSG-sms"]


# -- data ----------------------------------------------------------------------------------------


def make_profiles(count: int, seed: int = 3, start: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed + start)
    return [
        {
            "profile_id": f"__p{i:06d}",
            "identity": f"user-{i}" if i % 3 else None,
            "email": f"u{i}@example.com" if i % 5 else None,
            "phone": f"+1555{i:07d}",
            "device": {"token": f"tok-{i}"},
            "comm_prefs": {p: rng.random() < 0.5 for p in PREFS},
            "properties": {
                "Name": f"Name {i}",
                "tier": rng.choice(["gold", "silver", "bronze"]),
                "points": rng.randrange(10_000),
            },
        }
        for i in range(start, start + count)
    ]


def write_jsonl(path: Path, profiles: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in profiles))


def change_one_percent(profiles: list[dict[str, Any]], seed: int = 9) -> tuple[list[dict[str, Any]], set[str]]:
    """1% of profiles changed (a third each: a property, an identifier, a comm pref) plus 1% new ones."""
    rng = random.Random(seed)
    changed = copy.deepcopy(profiles)
    picked = rng.sample(range(len(changed)), len(changed) // 100)
    for n, index in enumerate(picked):
        profile = changed[index]
        if n % 3 == 0:
            profile["properties"]["tier"] = "platinum"
        elif n % 3 == 1:
            profile["email"] = f"changed-{index}@example.com"
        else:
            profile["comm_prefs"]["MSG-sms"] = not profile["comm_prefs"]["MSG-sms"]
    added = make_profiles(len(profiles) // 100, seed=seed, start=len(profiles))
    ids = {changed[i]["profile_id"] for i in picked} | {p["profile_id"] for p in added}
    return changed + added, ids


def settings(data: Path, url: str, /, **more: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "daily-profiles",
        "account_id": "100000000",
        "source": {"kind": "jsonl", "path": str(data)},
        "destination": {"url": url, "format": "csv", "folders": "run_date"},
        "identifiers": {"select": ["Identity", "Email", "Phone"], "all_identities": True},
        "properties": {"comm_prefs": PREFS},
        "schedule": {"frequency": "recurring", "every_hours": 24, "mode": "incremental"},
    }
    for key, value in more.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


def expected_row(profile: dict[str, Any]) -> dict[str, str]:
    """The CSV row of a profile, computed independently of the library."""
    ids = [v for v in (profile["identity"], profile["email"], profile["phone"]) if v]
    prefs = {p: "true" if profile["comm_prefs"][p] else "false" for p in PREFS}
    return {
        "identity": ids[0],
        "all_identities": json.dumps(ids, separators=(",", ":")),
        "clevertapId": profile["profile_id"],
        "device": json.dumps(profile["device"], separators=(",", ":")),
        **prefs,
        "Email": profile["email"] or "",  # account identities are also system properties
        "Phone": profile["phone"] or "",
        "Name": profile["properties"]["Name"],
        "tier": profile["properties"]["tier"],
        "points": str(profile["properties"]["points"]),
    }


def rows_by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    keyed = {r["clevertapId"]: r for r in rows}
    assert len(keyed) == len(rows), "a profile appears twice in one run"
    return keyed


# -- destinations: local folder, or a bucket on a moto server ----------------------------------------


class Local:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


class Bucket:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.url = f"s3://{name}/exports"

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=f"exports/{key}")["Body"].read())

    def names(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return sorted(o["Key"].removeprefix("exports/") for o in listed)


def manifests(dest: Local | Bucket) -> list[Manifest]:
    found = [Manifest.from_json(dest.read(k), key=k) for k in dest.names() if k.endswith("-manifest.json")]
    return sorted(found, key=lambda m: m.run or 0)


def run_rows(dest: Local | Bucket, manifest: Manifest, tmp: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for f in manifest.files:
        path = tmp / f.key.replace("/", "__")
        path.write_bytes(dest.read(f.key))
        rows += read_csv(path)[1]
    return rows


SECRET = "s3cr3t-Zq8Lr2Vb-never-stored"


@pytest.fixture(params=["local", "s3"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Local | Bucket, dict[str, Any]]:
    if request.param == "local":
        return Local(tmp_path / "out"), {}
    moto_server: MotoProcess = request.getfixturevalue("moto")
    client = moto_server.client()
    name = request.getfixturevalue("bucket")
    return Bucket(client, name), {"endpoint_url": moto_server.url, "key": "testing", "secret": SECRET}


# -- incremental runs ------------------------------------------------------------------------------


def test_incremental_runs_write_exactly_the_new_and_changed_profiles(
    tmp_path: Path, destination: tuple[Local | Bucket, dict[str, Any]]
) -> None:
    dest, storage_options = destination
    source = tmp_path / "profiles.jsonl"
    profiles = make_profiles(2000)
    write_jsonl(source, profiles)
    supplied: list[tuple[str, ...]] = []

    def credentials(export_id: str, withheld: tuple[str, ...]) -> dict[str, Any]:
        supplied.append(withheld)
        return {"destination.storage_options.key": "testing", "destination.storage_options.secret": SECRET}

    center = ExportCenter(tmp_path / "home", credentials=credentials, state="memory://state-" + tmp_path.name)
    config = settings(source, dest.url, destination={"storage_options": storage_options})
    record = center.create(config, now=T0)
    assert record.status == "Pending" and record.id.isdigit() and record.next_run_at == T0
    assert record.sink == ("s3" if isinstance(dest, Bucket) else "file")

    # run 1 (due at creation): every profile
    (first,) = center.run_due(now=T0)
    assert first.record.status == "Done" and first.record.rows == 2000
    assert center.get(record.id).status == "Pending"  # recurring: waits for its next slot
    assert center.get(record.id).next_run_at == T0 + DAY
    assert center.run_due(now=T0 + DAY - timedelta(minutes=1)) == []  # not due yet
    (m1,) = manifests(dest)
    assert m1.mode == "full" and m1.rows == 2000 and m1.run == 1
    assert rows_by_id(run_rows(dest, m1, tmp_path)) == {p["profile_id"]: expected_row(p) for p in profiles}

    # run 2: 1% changed (properties, identifiers, comm prefs) plus 1% new
    profiles2, changed_ids = change_one_percent(profiles)
    write_jsonl(source, profiles2)
    (second,) = center.run_due(now=T0 + DAY)
    m2 = manifests(dest)[-1]
    assert m2.mode == "incremental" and m2.base_run == 1 and m2.profiles_seen == 2020
    written = rows_by_id(run_rows(dest, m2, tmp_path))
    assert set(written) == changed_ids and len(changed_ids) == 40
    current = {p["profile_id"]: p for p in profiles2}
    assert written == {pid: expected_row(current[pid]) for pid in changed_ids}
    assert second.record.rows == 40 and second.record.profiles_seen == 2020

    # run 3: nothing changed -> an empty delta and a manifest that says so
    assert len(center.run_due(now=T0 + 2 * DAY)) == 1
    m3 = manifests(dest)[-1]
    assert m3.run == 3 and m3.rows == 0 and run_rows(dest, m3, tmp_path) == []
    assert json.loads(dest.read(m3.key))["empty"] is True
    assert json.loads(dest.read(m3.key))["profiles_unchanged"] == 2020

    history = center.runs(record.id)
    assert [(r.run, r.status, r.rows) for r in history] == [(1, "Done", 2000), (2, "Done", 40), (3, "Done", 0)]
    assert all(r.ended_at and r.started_at <= r.ended_at and r.files and r.bytes for r in history)
    if isinstance(dest, Bucket):
        assert supplied and all(
            w == ("destination.storage_options.key", "destination.storage_options.secret") for w in supplied
        )
        assert SECRET.encode() not in (tmp_path / "home" / "registry.sqlite3").read_bytes()
        for key in dest.names():
            if key.endswith(".json"):
                assert SECRET not in dest.read(key).decode()


def test_full_mode_exports_everything_every_run(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(300))
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(tmp_path / "out"), schedule={"mode": "full"}), now=T0)
    center.run_due(now=T0)
    write_jsonl(source, change_one_percent(make_profiles(300))[0])
    (second,) = center.run_due(now=T0 + DAY)
    assert second.result is not None and second.result.rows == 303
    assert [m.mode for m in read_manifests(str(tmp_path / "out"))] == ["full", "full"]
    assert center.get(record.id).status == "Pending"


def test_a_removed_property_counts_as_a_change(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    profiles = make_profiles(100)
    write_jsonl(source, profiles)
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    center.run(record.id, now=T0)
    del profiles[7]["properties"]["points"]
    profiles[8]["comm_prefs"] = {p: profiles[8]["comm_prefs"][p] for p in PREFS[:2]}  # MSG-sms removed
    write_jsonl(source, profiles)
    outcome = center.run(record.id, now=T0 + DAY)
    assert outcome.result is not None
    rows = rows_by_id(run_rows(Local(tmp_path / "out"), manifests(Local(tmp_path / "out"))[-1], tmp_path))
    assert set(rows) == {"__p000007", "__p000008"}
    assert rows["__p000007"]["points"] == "" and rows["__p000008"]["MSG-sms"] == ""


# -- schema policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["append", "lock"])
def test_schema_policy_over_runs(tmp_path: Path, policy: str) -> None:
    source = tmp_path / "profiles.jsonl"
    profiles = make_profiles(50)
    write_jsonl(source, profiles)
    out = tmp_path / "out"
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(out), properties={"schema": policy}), now=T0)
    center.run(record.id, now=T0)
    first_columns = read_manifests(str(out))[-1].columns
    assert first_columns == (
        *("identity", "all_identities", "clevertapId", "device", *PREFS),
        *("Email", "Phone", "Name", "tier", "points"),
    )
    # later: a new property appears, "tier" disappears from the data
    for p in profiles:
        p["properties"]["loyalty_tier"] = "L1"
        del p["properties"]["tier"]
    write_jsonl(source, profiles)
    center.run(record.id, now=T0 + DAY)
    manifest = read_manifests(str(out))[-1]
    expected = (*first_columns, "loyalty_tier") if policy == "append" else first_columns
    assert manifest.columns == expected
    header, rows = read_csv(manifest.files[0].url)
    assert tuple(header) == expected
    assert len(rows) == 50 and all(r["tier"] == "" for r in rows)  # the gone property keeps its column, empty
    if policy == "append":
        assert all(r["loyalty_tier"] == "L1" for r in rows)
    # and the stored columns carry over to the next run even when nothing changed
    center.run(record.id, now=T0 + 2 * DAY)
    assert read_manifests(str(out))[-1].columns == expected


# -- registry: create, list, filter, statuses, stop ----------------------------------------------------


def test_create_validates_and_preflights_before_registering(tmp_path: Path) -> None:
    center = ExportCenter(tmp_path / "home")
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(5))
    with pytest.raises(ConfigError, match=r"schedule\.every_hours"):
        center.create(settings(source, str(tmp_path / "out"), schedule={"every_hours": 2}))
    in_memory = pa.table({"profile_id": ["p1"]})
    with pytest.raises(ConfigError, match="source: a managed export reads its source again"):
        center.create({**settings(source, str(tmp_path / "out")), "source": {"kind": "arrow", "data": in_memory}})
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    with pytest.raises(Exception, match="file-not-folder"):
        center.create(settings(source, str(blocked / "sub")))
    assert center.list() == []


def test_list_filters_and_search(tmp_path: Path) -> None:
    center = ExportCenter(tmp_path / "home")
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(5))
    daily = center.create(settings(source, str(tmp_path / "a"), name="daily crm"), now=T0)
    once = center.create(
        settings(source, str(tmp_path / "b"), name="migration", schedule={"frequency": "once"}),
        now=T0 + timedelta(hours=1),
    )
    mem = center.create(settings(source, "memory://exports-x", name="scratch"), now=T0 + DAY)
    assert daily.id != once.id != mem.id
    assert [r.id for r in center.list()] == [daily.id, once.id, mem.id]
    assert [r.id for r in center.list(frequency="once")] == [once.id]
    assert [r.id for r in center.list(sink="memory")] == [mem.id]
    assert [r.id for r in center.list(sink="file", frequency="recurring")] == [daily.id]
    assert [r.id for r in center.list(search="CRM")] == [daily.id]
    assert [r.id for r in center.list(search=mem.id)] == [mem.id]
    assert [r.id for r in center.list(data_type="profile")] == [daily.id, once.id, mem.id]
    center.stop(daily.id)
    assert [r.id for r in center.list(status="stopped")] == [daily.id]


def test_one_time_export_runs_once_and_is_done(tmp_path: Path) -> None:
    center = ExportCenter(tmp_path / "home")
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(20))
    record = center.create(settings(source, str(tmp_path / "out"), schedule={"frequency": "once"}), now=T0)
    (outcome,) = center.run_due(now=T0)
    assert outcome.record.rows == 20
    assert center.get(record.id).status == "Done" and center.get(record.id).next_run_at is None
    assert center.run_due(now=T0 + 10 * DAY) == []
    again = center.run(record.id, now=T0 + DAY)  # by hand: runs whatever its schedule
    assert again.record.run == 2 and center.get(record.id).status == "Done"


def test_a_stopped_export_never_runs_again(tmp_path: Path) -> None:
    center = ExportCenter(tmp_path / "home")
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(20))
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    assert center.stop(record.id).status == "Stopped"
    assert center.run_due(now=T0 + 5 * DAY) == []
    with pytest.raises(ExportNotRunnable, match="stopped"):
        center.run(record.id)
    assert center.runs(record.id) == []


class _SourceThatStopsItsExport:
    """A source plugin (kind "stopping") that stops its export after yielding five batches."""

    def __init__(self, stop: Callable[[], Any]) -> None:
        self._stop = stop

    @hookimpl
    def register_sources(self, register: Any) -> None:
        stop = self._stop

        class Source:
            reiterable = True
            reads = 0  # the first read settles the columns (no declared schema); the second writes

            def partitions(self) -> list[int]:
                return [0]

            def schema(self) -> None:
                return None

            def describe(self) -> str:
                return "stopping"

            def read(self, partition: int) -> Any:
                Source.reads += 1
                profiles = make_profiles(3000)
                for n in range(0, len(profiles), 100):
                    yield profiles[n : n + 100]
                    if n == 500 and Source.reads == 2:
                        stop()

        class Factory:
            name = "stopping"

            def __call__(self, options: Any, *, batch_size: int) -> Source:
                return Source()

        register(Factory())


def test_stopping_a_running_export_finishes_the_current_file_and_stops_cleanly(tmp_path: Path) -> None:
    holder: dict[str, Any] = {}
    plugin = _SourceThatStopsItsExport(lambda: holder["center"].stop(holder["id"]))
    center = ExportCenter(tmp_path / "home", plugins=[plugin], stop_poll_seconds=0)
    holder["center"] = center
    config = settings(tmp_path, str(tmp_path / "out"), destination={"max_file_mb": 0.01})
    config["source"] = {"kind": "stopping"}
    record = center.create(config, now=T0)
    holder["id"] = record.id
    with pytest.raises(ExportStopped, match="stop requested"):
        center.run(record.id, now=T0)
    (run,) = center.runs(record.id)
    assert run.status == "Stopped" and "stop requested" in (run.error or "")
    assert center.get(record.id).status == "Stopped"
    assert center.get(record.id).committed_run is None  # no state advanced
    out = Local(tmp_path / "out")
    assert manifests(out) == []  # not a complete run
    data_files = [k for k in out.names() if k.endswith(".csv.gz")]
    rows = [r for key in data_files for r in read_csv(tmp_path / "out" / key)[1]]
    assert len(data_files) >= 2, "the small cap should have rotated files before the stop"
    assert 600 <= len(rows) < 3000  # stopped right after the batch that asked, its file finished
    assert not [p for p in (tmp_path / "out").rglob("*.partial")]
    with pytest.raises(ExportNotRunnable):
        center.run(record.id)


def test_the_same_export_never_runs_twice_at_once(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(50))
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    other = ExportCenter(tmp_path / "home")  # a second handle on the same registry, as another process has
    claim = other.registry.claim(record.id, mode="incremental", trigger="manual", now=T0)
    try:
        with pytest.raises(ExportBusy, match="running"):
            center.run(record.id, now=T0)
        assert center.run_due(now=T0) == []  # skipped, not failed
        assert center.get(record.id).status == "Running"
    finally:
        claim.finish(status="Done", now=T0, next_run_at=T0 + DAY)
    assert center.run(record.id, now=T0).record.status == "Done"


def test_registry_rows_are_plain_sqlite(tmp_path: Path) -> None:
    """Other tools can read the registry: plain tables, ISO times, no pickles."""
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(10))
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    center.run(record.id, now=T0)
    db = sqlite3.connect(tmp_path / "home" / "registry.sqlite3")
    (status, settings_json) = db.execute("SELECT status, settings FROM exports WHERE id = ?", (record.id,)).fetchone()
    assert status == "Pending" and json.loads(settings_json)["export_id"] == record.id
    assert db.execute("SELECT run, status, rows FROM runs").fetchall() == [(1, "Done", 10)]


HOLDER = """
import sys, time
from datetime import datetime
from profile_exports.center import ExportCenter
claim = ExportCenter(sys.argv[1]).registry.claim(sys.argv[2], mode="incremental", trigger="manual",
                                                 now=datetime.fromisoformat(sys.argv[3]))
print("claimed", flush=True)
time.sleep(120)
"""


def test_a_run_in_another_process_blocks_and_its_death_is_recorded(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(50))
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(tmp_path / "out")), now=T0)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "home"), record.id, T0.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "claimed"
        with pytest.raises(ExportBusy):
            center.run(record.id, now=T0)
        assert center.run_due(now=T0) == []
        assert center.get(record.id).status == "Running"
        assert [r.status for r in center.runs(record.id)] == ["Running"]
    finally:
        child.kill()
        child.wait()
    # the holder died holding the run: the next look records it as Failed, and the export runs again
    (dead,) = center.runs(record.id)
    assert dead.status == "Failed" and f"pid {child.pid}" in (dead.error or "")
    assert center.get(record.id).status == "Failed"
    (outcome,) = center.run_due(now=T0)
    assert outcome.record.run == 2 and outcome.record.status == "Done" and outcome.record.rows == 50


def test_profiles_in_another_order_are_not_changes(tmp_path: Path) -> None:
    """Rows that no longer line up with the last run are found by key, not taken as new."""
    source = tmp_path / "profiles.jsonl"
    profiles = make_profiles(5000)
    write_jsonl(source, profiles)
    center = ExportCenter(tmp_path / "home")
    record = center.create(settings(source, str(tmp_path / "out"), source={"batch_size": 700}), now=T0)
    center.run(record.id, now=T0)
    shuffled = profiles[:]
    random.Random(4).shuffle(shuffled)
    write_jsonl(source, shuffled)
    assert center.run(record.id, now=T0 + DAY).record.rows == 0
    # one profile inserted at the front shifts every position; three changed ones are still found
    for index in (10, 2500, 4999):
        shuffled[index]["properties"]["tier"] = "changed"
    newcomer = make_profiles(1, start=9000)
    write_jsonl(source, newcomer + shuffled)
    outcome = center.run(record.id, now=T0 + 2 * DAY)
    written = rows_by_id(run_rows(Local(tmp_path / "out"), manifests(Local(tmp_path / "out"))[-1], tmp_path))
    assert set(written) == {shuffled[i]["profile_id"] for i in (10, 2500, 4999)} | {"__p009000"}
    assert outcome.record.rows == 4 and outcome.record.profiles_seen == 5001


class _BrokenSource:
    """A source plugin (kind "broken") whose read fails with an unexpected error."""

    @hookimpl
    def register_sources(self, register: Any) -> None:
        class Source:
            reiterable = True

            def partitions(self) -> list[int]:
                return [0]

            def schema(self) -> None:
                return None

            def describe(self) -> str:
                return "broken"

            def read(self, partition: int) -> Any:
                raise RuntimeError("disk on fire")
                yield

        class Factory:
            name = "broken"

            def __call__(self, options: Any, *, batch_size: int) -> Source:
                return Source()

        register(Factory())


def test_one_failing_export_does_not_stop_the_others(tmp_path: Path) -> None:
    source = tmp_path / "profiles.jsonl"
    write_jsonl(source, make_profiles(30))
    center = ExportCenter(tmp_path / "home", plugins=[_BrokenSource()])
    broken_config = settings(source, str(tmp_path / "broken"), name="broken")
    broken_config["source"] = {"kind": "broken"}
    broken = center.create(broken_config, now=T0)
    good = center.create(settings(source, str(tmp_path / "good"), name="good"), now=T0)
    outcomes = center.run_due(now=T0)
    assert [(o.record.export_id, o.record.status) for o in outcomes] == [(broken.id, "Failed"), (good.id, "Done")]
    (failed,) = center.runs(broken.id)
    assert "RuntimeError: disk on fire" in (failed.error or "")
    assert center.get(broken.id).status == "Failed" and center.get(broken.id).next_run_at == T0 + DAY
    assert center.get(good.id).status == "Pending"
