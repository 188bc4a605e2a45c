# ruff: noqa: F811 - the S3 fixtures are imported by name and requested as arguments
"""Partitions as tasks on a real dask.distributed LocalCluster, writing to the S3 (moto) server.

The run's rows are compared with a single-process run's, read back with the stdlib csv reader;
a worker killed in the middle of a partition is replaced and the task rerun by Dask.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster

import profile_exports as pe

from . import dask_plugins
from .conftest import read_csv
from .test_sink_s3 import PLUGINS, MotoProcess, aws_env, bucket, moto, options, s3  # noqa: F401 - fixtures

IDENTIFIERS = {"select": ["Identity", "Email", "Phone"]}


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    with Client(cluster) as running:
        yield running
    cluster.close()


def rows_from_bucket(s3: Any, bucket: str, prefix: str, result: Any, folder: Path) -> list[tuple[Any, ...]]:
    rows = []
    for f in result.files:
        path = folder / f.key.replace("/", "__")
        path.write_bytes(s3.get_object(Bucket=bucket, Key=f"{prefix}/{f.key}")["Body"].read())
        rows += [tuple(sorted(r.items())) for r in read_csv(path)[1]]
    return sorted(rows)


def local_rows(result: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(sorted(r.items())) for f in result.files for r in read_csv(f.url)[1])


def manifest_keys(s3: Any, bucket: str, prefix: str, result: Any) -> set[str]:
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{result.manifest.key}")["Body"].read()
    return {f["key"] for f in json.loads(body)["files"]}


def test_a_dask_run_writes_the_same_rows_as_one_process(
    tmp_path: Path, client: Client, moto: MotoProcess, s3: Any, bucket: str
) -> None:
    source = {"kind": "synthetic", "count": 4000, "seed": 7, "partitions": 4}
    single = pe.export(None, tmp_path / "one", source={**source, "partitions": 1}, identifiers=IDENTIFIERS)
    result = pe.export(
        None,
        f"s3://{bucket}/dask",
        source=source,
        identifiers=IDENTIFIERS,
        storage_options=options(moto.url),
        plugins=PLUGINS,
        executor="dask",
        dask_client=client,
    )
    assert [p.instance_id for p in result.partitions] == [0, 1, 2, 3]
    assert all(p.worker and p.rows == 1000 for p in result.partitions)
    assert rows_from_bucket(s3, bucket, "dask", result, tmp_path) == local_rows(single)
    assert manifest_keys(s3, bucket, "dask", result) == {f.key for f in result.files}
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dask/")["Contents"]
    assert {o["Key"].removeprefix("dask/") for o in listed} == {f.key for f in result.files} | {result.manifest.key}


def test_a_worker_killed_mid_task_still_gives_a_complete_correct_run(
    tmp_path: Path, client: Client, moto: MotoProcess, s3: Any, bucket: str
) -> None:
    marker = tmp_path / "killed"
    source = {"kind": "kill-once", "count": 6000, "partitions": 3, "marker": str(marker), "victim": 1}
    single = pe.export(
        None,
        tmp_path / "one",
        source={"kind": "synthetic", "count": 6000, "seed": 7, "partitions": 3},
        identifiers=IDENTIFIERS,
        executor="serial",
    )
    result = pe.export(
        None,
        f"s3://{bucket}/killed",
        source=source,
        batch_size=500,
        max_file_mb=0.05,  # several files per partition: the kill comes with some of them written
        identifiers=IDENTIFIERS,
        storage_options=options(moto.url),
        plugins=[*PLUGINS, dask_plugins],
        executor="dask",
        dask_client=client,
    )
    assert marker.exists(), "the victim partition should have killed its worker once"
    assert int(marker.read_text()) != int(result.partitions[1].worker.split(":")[1])  # rerun elsewhere
    assert rows_from_bucket(s3, bucket, "killed", result, tmp_path) == local_rows(single)
    assert manifest_keys(s3, bucket, "killed", result) == {f.key for f in result.files}
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="killed/")["Contents"]
    # the rerun rewrote the killed attempt's keys: no stray object
    assert {o["Key"].removeprefix("killed/") for o in listed} == {f.key for f in result.files} | {result.manifest.key}
    assert len(result.files) > 3
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_without_a_client_a_local_cluster_is_started_for_the_run(tmp_path: Path) -> None:
    source = {"kind": "synthetic", "count": 900, "seed": 7, "partitions": 3}
    result = pe.export(None, tmp_path / "out", source=source, executor="dask")
    single = pe.export(None, tmp_path / "one", source={**source, "partitions": 1})
    assert len({p.worker for p in result.partitions}) >= 1 and all(p.worker for p in result.partitions)
    assert local_rows(result) == local_rows(single)
