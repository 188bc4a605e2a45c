"""Partitions in worker processes against one process, on the same input, in one run.

    python benchmarks/parallel.py [--quick] [--profiles N] [--formats csv,parquet] [--partitions 2]

Input: N seeded synthetic profiles stored once as Parquet in 65,536-row groups. Each format is
exported twice per round, interleaved (the machine is shared and noisy), best of three rounds:

- ``serial``: one partition, in this process (``executor = "serial"``);
- ``processes``: the same file split into ``--partitions`` partitions by row groups, each in a
  worker process (``executor = "processes"``, one worker per partition).

Prints profiles/s of both and their ratio (target: at least 1.6x with 2 partitions on 2 cores), and
writes them to ``benchmarks/results/parallel-<ts>.json``. It also prints how many cores the serial
run kept busy (its CPU seconds over its wall seconds, threads included) and the speed-up that leaves
room for: partitions cannot use more than the machine's cores, so with ``c`` cores busy in one
process the best ``N`` partitions can do is ``min(N, cores) / c``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = 1.6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 profiles instead of 1,000,000")
    parser.add_argument("--profiles", type=int, default=None)
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()
    count = args.profiles or (100_000 if args.quick else 1_000_000)

    import pyarrow as pa
    import pyarrow.parquet as pq

    import profile_exports as pe
    from profile_exports.sources.synthetic_data import generate_profiles

    work = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    report: dict[str, dict[str, float]] = {}
    try:
        data = work / "profiles.parquet"
        pq.write_table(
            pa.Table.from_batches(list(generate_profiles(count, seed=11, batch_size=65_536))),
            data,
            row_group_size=65_536,
        )

        def export(fmt: str, partitions: int, executor: str) -> tuple[float, float]:
            out = work / f"out-{fmt}-{executor}"
            shutil.rmtree(out, ignore_errors=True)
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            result = pe.export(
                None,
                out,
                source={"kind": "parquet", "path": str(data), "partitions": partitions},
                format=fmt,
                executor=executor,
                workers=partitions,
                identifiers={"select": ["Identity", "Email", "Phone"]},
                progress=False,
            )
            seconds = time.perf_counter() - start
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            assert result.rows == count, (result.rows, count)
            cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            return seconds, cpu / seconds  # cores this process kept busy (meaningful for serial runs)

        export("csv", args.partitions, "processes")  # start the fork server once, outside the timings
        cores = os.cpu_count() or 1
        print(f"{count:,} profiles, {args.partitions} partitions, {cores} cores")
        for fmt in args.formats.split(","):
            serial, parallel = [], []
            for _ in range(3):
                serial.append(export(fmt, 1, "serial"))
                parallel.append(export(fmt, args.partitions, "processes")[0])
            s, busy = min(serial)
            p = min(parallel)
            ratio = s / p
            room = min(args.partitions, cores) / busy
            report[fmt] = {
                "serial_seconds": s,
                "processes_seconds": p,
                "speedup": ratio,
                "serial_cores_busy": busy,
                "speedup_room": room,
            }
            verdict = "ok" if ratio >= TARGET else f"UNDER the {TARGET}x target"
            print(
                f"  {fmt:<8} serial {count / s:>9,.0f} profiles/s ({busy:.2f} cores busy)"
                f"   processes {count / p:>9,.0f} profiles/s   = {ratio:.2f}x of at most {room:.2f}x  {verdict}"
            )
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        (results / f"parallel-{int(time.time())}.json").write_text(
            json.dumps({"profiles": count, "partitions": args.partitions, "formats": report}, indent=2)
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
