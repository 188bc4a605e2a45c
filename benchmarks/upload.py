"""Uploading a large export keeps memory flat: peak RSS stays under 200 MB above the baseline.

    python benchmarks/upload.py [--quick] [--mb 300] [--servers s3,gcs,azure]

For each server (moto for S3, fake-gcs-server for GCS, Azurite for Azure, all on 127.0.0.1 and
started with the test suite's own helpers) creates a bucket or container, then exports one
uncompressed CSV file of about ``--mb`` MiB of synthetic profiles to it in a child process, so the
peak RSS is that process's own. The child records its baseline RSS after importing profile_exports,
pyarrow and the server's SDK, and reports the peak (ru_maxrss) minus that baseline. The object is
then checked with the SDK (it exists, with the exported size). Target: peak - baseline < 200 MB.
``--quick`` exports 40 MiB instead of 300.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIMIT_MB = 200.0
MIB = 1024 * 1024
SERVERS = ("s3", "gcs", "azure")
SDKS = {"s3": "boto3", "gcs": "google.cloud.storage", "azure": "azure.storage.blob"}
SEED = 1
# Dummy credentials only, as the S3 tests' ``aws_env`` fixture sets them: nothing may find real ones.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
AWS_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def rss_mb() -> float:
    """The current resident set size (VmRSS) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def one(server: str, url: str, count: int, mb: float, options_json: str) -> dict[str, Any]:
    """The child: one export to ``url``, with its baseline and peak RSS."""
    import pyarrow  # noqa: F401 - part of the baseline

    import profile_exports as pe

    importlib.import_module(SDKS[server])  # part of the baseline
    baseline = rss_mb()
    start = time.perf_counter()
    result = pe.export(
        None,
        url,
        source={"kind": "synthetic", "count": count, "seed": SEED},
        format="csv",
        compression="none",
        max_file_mb=mb * 2,
        storage_options=json.loads(options_json),
        progress=False,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": result.rows,
        "files": [{"key": f.key, "url": f.url, "bytes": f.bytes} for f in result.files],
        "bytes": result.bytes,
        "seconds": seconds,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak,
        "peak_minus_baseline_mb": peak - baseline,
    }


def bytes_per_profile(sample: int = 5000) -> float:
    """Uncompressed CSV bytes per synthetic profile, from a small local export."""
    import profile_exports as pe

    with tempfile.TemporaryDirectory(prefix="profile-exports-upload-") as tmp:
        result = pe.export(
            None,
            tmp,
            source={"kind": "synthetic", "count": sample, "seed": SEED},
            format="csv",
            compression="none",
            progress=False,
        )
    return result.bytes / sample


# -- servers: started with the tests' helpers, set up as their fixtures do --------------------------


@contextmanager
def s3_server(logs: Path) -> Iterator[tuple[dict[str, Any], Callable[[str], int]]]:
    from tests.test_sink_s3 import MotoProcess, options

    server = MotoProcess(logs / "moto.log")
    try:
        client = server.client()
        bucket = f"exports-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)

        def size(key: str) -> int:
            return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])

        yield {"url": f"s3://{bucket}/bench", "options": options(server.url), "prefix": "bench"}, size
    finally:
        server.stop()


@contextmanager
def gcs_server(logs: Path) -> Iterator[tuple[dict[str, Any], Callable[[str], int]]]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from tests.test_sink_gcs import _free_port, _start_server, _stop

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = _start_server(port, endpoint, logs / "fake-gcs.log")
    try:
        client = storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
        )
        bucket = f"pe-bench-{uuid.uuid4().hex[:12]}"
        client.create_bucket(bucket)

        def size(key: str) -> int:
            blob = client.bucket(bucket).get_blob(key)
            if blob is None:
                raise RuntimeError(f"gs://{bucket}/{key} does not exist")
            return int(blob.size)

        yield {"url": f"gs://{bucket}/bench", "options": {"endpoint_url": endpoint}, "prefix": "bench"}, size
    finally:
        _stop(process)


@contextmanager
def azure_server(logs: Path) -> Iterator[tuple[dict[str, Any], Callable[[str], int]]]:
    from azure.storage.blob import BlobServiceClient

    from tests.azurite import Azurite

    server = Azurite(logs)
    server.start()
    try:
        service = BlobServiceClient.from_connection_string(server.connection_string())
        container = f"c{uuid.uuid4().hex[:20]}"
        service.create_container(container)

        def size(key: str) -> int:
            return int(service.get_blob_client(container, key).get_blob_properties().size)

        try:
            options = {"connection_string": server.connection_string()}
            yield {"url": f"az://{container}/bench", "options": options, "prefix": "bench"}, size
        finally:
            service.close()
    finally:
        server.stop()


STARTERS = {"s3": s3_server, "gcs": gcs_server, "azure": azure_server}


def run_one(server: str, count: int, mb: float, logs: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in AWS_UNSET}
    env.update(AWS_ENV)
    os.environ.clear()
    os.environ.update(env)  # the parent's boto3 client sees only the dummy credentials too
    with STARTERS[server](logs) as (target, size):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                server,
                target["url"],
                str(count),
                str(mb),
                json.dumps(target["options"]),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the {server} export failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        if len(r["files"]) != 1:
            raise RuntimeError(f"{server}: expected one file, got {len(r['files'])}")
        f = r["files"][0]
        stored = size(f"{target['prefix']}/{f['key']}")
        if stored != f["bytes"]:
            raise RuntimeError(f"{server}: the stored object has {stored} bytes, the export wrote {f['bytes']}")
        r["stored_bytes"] = stored
        r["mb_per_s"] = r["bytes"] / MIB / r["seconds"]
        return r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="export 40 MiB instead of 300")
    parser.add_argument("--mb", type=float, default=None, help="size of the export in MiB (default 300)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        server, url, count, mb, options_json = args.one
        print(json.dumps(one(server, url, int(count), float(mb), options_json)))
        return 0
    sys.path.insert(0, str(REPO))
    mb = args.mb or (40.0 if args.quick else 300.0)
    per_profile = bytes_per_profile()
    count = math.ceil(mb * MIB / per_profile)
    print(f"{mb:g} MiB of CSV: {count:,} synthetic profiles at {per_profile:.0f} bytes each")
    print(
        f"{'server':<7} {'MiB':>8} {'seconds':>8} {'MiB/s':>7} {'baseline MB':>12} {'peak MB':>8} "
        f"{'peak-base MB':>13} {'limit':>6}"
    )
    report: dict[str, Any] = {"mb": mb, "count": count, "bytes_per_profile": per_profile, "limit_mb": LIMIT_MB}
    failed = False
    with tempfile.TemporaryDirectory(prefix="profile-exports-upload-") as tmp:
        for server in args.servers.split(","):
            logs = Path(tmp) / server
            logs.mkdir()
            r = run_one(server, count, mb, logs)
            over = r["peak_minus_baseline_mb"] >= LIMIT_MB
            failed |= over
            r["verdict"] = "OVER" if over else "ok"
            report[server] = r
            print(
                f"{server:<7} {r['bytes'] / MIB:>8.1f} {r['seconds']:>8.1f} {r['mb_per_s']:>7.1f} "
                f"{r['baseline_rss_mb']:>12.0f} {r['peak_rss_mb']:>8.0f} {r['peak_minus_baseline_mb']:>13.0f} "
                f"{r['verdict']:>6}"
            )
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"upload-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
