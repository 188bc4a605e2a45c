"""Export throughput and peak memory, as ratios against baselines measured in the same run.

    python benchmarks/run.py [--quick] [--profiles N]

Input: seeded synthetic profiles stored once as Parquet, so every contender reads the same bytes.
Contenders (each in its own process, so peak RSS is its own):

- ``lib-<fmt>``: this library, Parquet file -> gzip CSV / JSON Lines on local disk.
- ``naive-<fmt>``: what one would write by hand: ``to_pylist()``, identity fallback in Python,
  ``csv.DictWriter`` / ``json.dumps`` into stdlib ``gzip``.

Prints profiles/s, output MB/s and peak RSS per contender and the ratio lib/naive per format, and
writes them to ``benchmarks/results/<timestamp>.json`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMATS = ("csv", "json")


def make_input(path: Path, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from profile_exports.sources.synthetic_data import generate_profiles

    batches = list(generate_profiles(count, seed=11, batch_size=50_000))
    pq.write_table(pa.Table.from_batches(batches), path)


def run_lib(fmt: str, source: Path, out: Path) -> int:
    import profile_exports as pe

    result = pe.export(
        str(source), str(out), format=fmt, progress=False, identifiers={"select": ["Identity", "Email", "Phone"]}
    )
    return result.bytes


def run_naive(fmt: str, source: Path, out: Path) -> int:
    import csv
    import gzip

    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    target = out / f"naive.{fmt}.gz"
    with gzip.open(target, "wt", encoding="utf-8", newline="") as handle:
        writer = None
        for batch in pq.ParquetFile(source).iter_batches(batch_size=65_536):
            for profile in batch.to_pylist():
                identity = (profile["identity"] or [None])[0] or profile["email"] or profile["phone"]
                row = {
                    "identity": identity,
                    "clevertapId": profile["profile_id"],
                    "device": {"token": (profile["device"] or {}).get("token")},
                }
                for key in ("email", "phone"):
                    row[key.capitalize()] = profile[key]
                row.update(profile["properties"] or {})
                if fmt == "json":
                    handle.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
                    continue
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    return target.stat().st_size


def one(name: str, source: Path, out: Path) -> dict[str, float]:
    kind, fmt = name.split("-", 1)
    start = time.perf_counter()
    written = (run_lib if kind == "lib" else run_naive)(fmt, source, out)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "bytes": written, "peak_rss_mb": rss_mb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small input, for a smoke run")
    parser.add_argument("--profiles", type=int, default=None)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, Path(args.source), Path(args.out))))
        return 0

    count = args.profiles or (20_000 if args.quick else 200_000)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="profile-exports-bench-") as tmp:
        source = Path(tmp) / "profiles.parquet"
        make_input(source, count)
        for fmt in FORMATS:
            for kind in ("lib", "naive"):
                name = f"{kind}-{fmt}"
                done = subprocess.run(
                    [sys.executable, __file__, "--one", name, "--source", str(source), "--out", f"{tmp}/{name}"],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{count:,} profiles, {os.cpu_count()} cores")
    print(f"{'contender':<12} {'profiles/s':>12} {'MB/s out':>10} {'peak RSS MB':>12}")
    for name, r in results.items():
        r["profiles_per_s"] = count / r["seconds"]
        mb_per_s = r["bytes"] / 1e6 / r["seconds"]
        print(f"{name:<12} {r['profiles_per_s']:>12,.0f} {mb_per_s:>10.1f} {r['peak_rss_mb']:>12.0f}")
    ratios = {
        fmt: results[f"lib-{fmt}"]["profiles_per_s"] / results[f"naive-{fmt}"]["profiles_per_s"] for fmt in FORMATS
    }
    for fmt, ratio in ratios.items():
        print(f"{fmt}: this library is {ratio:.1f}x the hand-written baseline")
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (folder / f"{stamp}.json").write_text(
        json.dumps({"profiles": count, "results": results, "ratios": ratios}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
