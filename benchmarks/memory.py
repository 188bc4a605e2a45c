"""Peak memory does not grow with the number of profiles.

    python benchmarks/memory.py [--quick] [--formats xml,csv,...] [--small N] [--large N]

Exports ``small`` and ``large`` (10x) synthetic profiles in each format, each run in its own process
so its peak RSS is its own, and prints the ratio large/small. The synthetic source generates profiles
on the fly, so the input itself takes no memory that grows with the count. Target: XML within 1.5x.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMITS = {"xml": 1.5}


def one(fmt: str, count: int, out: str) -> dict[str, float]:
    import profile_exports as pe

    start = time.perf_counter()
    result = pe.export(None, out, source={"kind": "synthetic", "count": count, "seed": 5}, format=fmt, progress=False)
    return {
        "seconds": time.perf_counter() - start,
        "rows": result.rows,
        "files": len(result.files),
        "bytes": result.bytes,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 vs 100,000 profiles")
    parser.add_argument("--formats", default="xml,csv,json,parquet")
    parser.add_argument("--small", type=int, default=None)
    parser.add_argument("--large", type=int, default=None)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        fmt, count, out = args.one
        print(json.dumps(one(fmt, int(count), out)))
        return 0
    small = args.small or (10_000 if args.quick else 100_000)
    large = args.large or small * 10
    report: dict[str, dict[str, object]] = {}
    failed = False
    print(f"{'format':<8} {'profiles':>10} {'seconds':>8} {'profiles/s':>11} {'peak RSS MB':>12}")
    for fmt in args.formats.split(","):
        runs = {}
        for count in (small, large):
            with tempfile.TemporaryDirectory(prefix="profile-exports-mem-") as tmp:
                done = subprocess.run(
                    [sys.executable, __file__, "--one", fmt, str(count), tmp],
                    check=True,
                    capture_output=True,
                    text=True,
                )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            runs[count] = r
            print(
                f"{fmt:<8} {count:>10,} {r['seconds']:>8.1f} {count / r['seconds']:>11,.0f} {r['peak_rss_mb']:>12.0f}"
            )
        ratio = runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"]
        limit = LIMITS.get(fmt)
        verdict = "" if limit is None else (" ok" if ratio <= limit else f" OVER the {limit}x target")
        failed |= limit is not None and ratio > limit
        print(f"{fmt:<8} peak RSS {large:,} / {small:,} profiles = {ratio:.2f}x{verdict}")
        report[fmt] = {"runs": runs, "ratio": ratio, "limit": limit}
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"memory-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
