"""Throughput of ``row_fingerprints`` on the synthetic export's projected layout.

    python benchmarks/fingerprints.py [--count N] [--repeat R]

Builds the batches an export of ``count`` synthetic profiles would write (16384-row batches,
40 columns: strings, ints, floats, bools, timestamps, list<string>, a struct), then fingerprints
all of them ``repeat`` times on one thread and prints the best total time and rows per second.
Target: 1,000,000 rows well under 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pyarrow as pa


def build_batches(count: int) -> list[pa.RecordBatch]:
    from profile_exports.canonical import conform
    from profile_exports.config import ExportConfig
    from profile_exports.exporter import Exporter, _declared_schema
    from profile_exports.layout import build_layout, project

    cfg = ExportConfig.from_mapping(
        {"source": {"kind": "synthetic", "count": count}, "destination": {"url": tempfile.mkdtemp(), "format": "csv"}}
    )
    exporter = Exporter(cfg, progress=False)
    source = exporter._open_source()
    schema = _declared_schema(source, exporter._canonicalizer(0, source))
    layout = build_layout(cfg, schema)
    canonicalizer = exporter._canonicalizer(0, source)
    return [project(conform(canonicalizer.convert(r)[0], schema, {}), layout, cfg) for r in source.read(0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from profile_exports.fingerprints import row_fingerprints

    batches = build_batches(args.count)
    rows = sum(batch.num_rows for batch in batches)
    nbytes = sum(batch.nbytes for batch in batches)
    print(f"{len(batches)} batches, {rows:,} rows, {batch_columns(batches)} columns, {nbytes / 1e6:.0f} MB")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for batch in batches:
            row_fingerprints(batch)
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"row_fingerprints: best {best:.3f} s of {args.repeat} (median {sorted(times)[len(times) // 2]:.3f} s)")
    print(f"{rows / best:,.0f} rows/s, {nbytes / best / 1e9:.2f} GB/s of Arrow buffers")
    return 0


def batch_columns(batches: list[pa.RecordBatch]) -> int:
    return batches[0].num_columns if batches else 0


if __name__ == "__main__":
    raise SystemExit(main())
