"""Peak memory does not grow with the number of profiles.

    python benchmarks/memory.py [--quick] [--formats xml,csv,...] [--small N] [--large N] [--huge N]

Exports ``small`` and ``large`` (10x) synthetic profiles in each format, each run in its own process
so its peak RSS is its own (VmHWM), and prints the ratio large/small (target: at most 1.25x in every
format). Then one ``--huge`` export (10,000,000 profiles by default; target: peak RSS under 600 MB).
The synthetic source generates profiles on the fly, so the input takes no memory that grows with
the count.
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
LIMIT = 1.25  # peak RSS of ``large`` over ``small``, in every format
HUGE_LIMIT_MB = 600  # peak RSS of the ``--huge`` export


def _own_peak_mb() -> float:
    """This process's own peak RSS (VmHWM): ru_maxrss of a child started by vfork can report the parent's."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(fmt: str, count: int, out: str) -> dict[str, float]:
    import profile_exports as pe

    start = time.perf_counter()
    result = pe.export(None, out, source={"kind": "synthetic", "count": count, "seed": 5}, format=fmt, progress=False)
    return {
        "seconds": time.perf_counter() - start,
        "rows": result.rows,
        "files": len(result.files),
        "bytes": result.bytes,
        "peak_rss_mb": _own_peak_mb(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 vs 100,000 profiles")
    parser.add_argument("--formats", default="xml,csv,json,parquet")
    parser.add_argument("--small", type=int, default=None)
    parser.add_argument("--large", type=int, default=None)
    parser.add_argument("--huge", type=int, default=None, help="profiles of the big run (default 10,000,000; 0: skip)")
    parser.add_argument("--huge-format", default="csv")
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
        limit = LIMIT
        # The target compares 100,000 with 1,000,000 profiles; below that, fixed costs dominate.
        enforced = small >= 100_000
        verdict = (" ok" if ratio <= limit else f" OVER the {limit}x target") if enforced else " (not enforced)"
        failed |= enforced and ratio > limit
        print(f"{fmt:<8} peak RSS {large:,} / {small:,} profiles = {ratio:.2f}x{verdict}")
        report[fmt] = {"runs": runs, "ratio": ratio, "limit": limit}
    huge = args.huge if args.huge is not None else (0 if args.quick else 10_000_000)
    if huge:
        with tempfile.TemporaryDirectory(prefix="profile-exports-mem-") as tmp:
            done = subprocess.run(
                [sys.executable, __file__, "--one", args.huge_format, str(huge), tmp],
                check=True,
                capture_output=True,
                text=True,
            )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        ok = r["peak_rss_mb"] < HUGE_LIMIT_MB
        failed |= not ok
        print(
            f"{args.huge_format:<8} {huge:>10,} {r['seconds']:>8.1f} {huge / r['seconds']:>11,.0f} "
            f"{r['peak_rss_mb']:>12.0f}  {'ok' if ok else 'OVER'} (target: under {HUGE_LIMIT_MB} MB)"
        )
        report["huge"] = {"profiles": huge, "format": args.huge_format, **r, "limit_mb": HUGE_LIMIT_MB}
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"memory-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
