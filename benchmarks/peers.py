"""Export throughput and peak memory against the tools one would use instead of this library.

    python benchmarks/peers.py [--quick] [--sizes 100000,1000000] [--formats csv,json,xml,parquet]
                               [--skip-dlt-above N] [--contenders a,b] [--runs N]

Input: seeded synthetic profiles (``generate_profiles(count, seed=11)``) stored once per size as
Parquet (65,536-row groups) and as JSON Lines, so every contender reads the same bytes. Sizes:
100,000 and 1,000,000 by default, 20,000 with ``--quick``.

Every contender produces the same columns as this library's default export with identifiers
Identity > Email > Phone: ``identity`` (the first identity value, else Email, else Phone; empty
strings count as missing), ``clevertapId`` (the profile id), ``device`` (``{"token": ...}``),
``Email``, ``Phone``, then the user properties as columns. (The library exports no communication
preferences by default, so no contender does.) Text formats are gzip-compressed; Parquet uses the
library's default codec (read from ``profile_exports.writers.parquet``) for every contender.

Contenders, each in its own process (so its peak RSS is its own), timed from reading the input to
the last byte on local disk (module imports are done before the clock starts):

- ``lib``: this library, ``pe.export`` of the Parquet input with the serial executor.
- ``pyarrow-floor`` (Parquet): ``pq.write_table`` of the library's own output, read into memory
  before the clock starts: raw pyarrow writing an already-projected table.
- ``polars``: ``pl.read_parquet``, a projection with polars expressions, ``write_csv`` /
  ``write_ndjson`` into a gzip stream (level 6) or ``write_parquet``.
- ``duckdb``: ``COPY (SELECT ... FROM read_parquet(...)) TO ...`` with gzip or the Parquet codec.
- ``pandas``: ``pd.read_parquet``, dict columns expanded into columns, ``to_csv`` / ``to_json`` /
  ``to_parquet``.
- ``dlt`` / ``dlt-arrow``: a dlt pipeline to a local filesystem destination, fed dicts (read from
  the JSON Lines input with orjson) or pyarrow tables (read from the Parquet input). dlt is slow:
  skipped above ``--skip-dlt-above`` profiles.
- ``naive-xml`` (XML): ``iter_batches`` -> ``to_pylist`` -> ``lxml.etree.xmlfile`` into stdlib gzip.

Each contender runs twice per size and format (``--runs``), in rounds of every contender in turn,
and the faster run counts (the machine is shared). The
rows each one wrote are counted after the clock stops, and a wrong count stops the benchmark (a
broken contender is not reported as fast). Prints seconds, profiles/s, output MB and MB/s, peak
RSS and the ratio lib/contender, then the targets with PASS/FAIL, and writes everything to
``benchmarks/results/peers-<unix ts>.json`` (not committed). It reports; it does not fail on a target.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = str(Path(__file__).resolve())
ROW_GROUP = 65_536
RUNS = 2
FORMATS = ("csv", "json", "xml", "parquet")
CONTENDERS: dict[str, tuple[str, ...]] = {
    "csv": ("lib", "polars", "duckdb", "pandas", "dlt", "dlt-arrow"),
    "json": ("lib", "polars", "duckdb", "pandas", "dlt", "dlt-arrow"),
    "xml": ("lib", "naive-xml"),
    "parquet": ("lib", "pyarrow-floor", "polars", "duckdb", "pandas", "dlt", "dlt-arrow"),
}
DLT = ("dlt", "dlt-arrow")
# The targets: (format, contender, minimum ratio lib/contender of profiles/s); contender None
# is an absolute minimum of the library's profiles/s.
TARGETS: tuple[tuple[str, str | None, float], ...] = (
    ("parquet", "pyarrow-floor", 0.8),
    ("parquet", "polars", 1.0),
    ("parquet", "duckdb", 1.0),
    ("json", None, 100_000),
    ("json", "dlt-arrow", 15),
    ("json", "polars", 2),
    ("csv", "polars", 1.3),
    ("csv", "dlt-arrow", 5),
    ("xml", "naive-xml", 4),
)
SOURCE_COLUMNS = ["profile_id", "identity", "email", "phone", "device", "properties"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the library's default Parquet codec, in each tool's spelling ------------------------------------------


def lib_codec() -> str:
    """The codec the library writes Parquet with by default (its first accepted compression)."""
    from profile_exports.writers.parquet import ParquetWriter

    return ParquetWriter.compressions[0]  # "none", "snappy", "zstd" or "gzip"


def codec_for(tool: str) -> Any:
    # The library writes gzip pages at level 1 (CODEC_LEVELS); the peers keep their own level. With
    # the library's default, "none", there is no level to match.
    codec = lib_codec()
    if codec != "none":
        return codec
    return {"pyarrow": None, "pandas": None, "polars": "uncompressed", "duckdb": "uncompressed", "dlt": "none"}[tool]


# -- input --------------------------------------------------------------------------------------------


def make_input(folder: Path, count: int) -> None:
    """``input.parquet`` and ``input.jsonl`` of the same profiles, written batch by batch."""
    import orjson
    import pyarrow.parquet as pq

    from profile_exports.sources.synthetic_data import generate_profiles

    writer = None
    with open(folder / "input.jsonl", "wb") as lines:
        for batch in generate_profiles(count, seed=11, batch_size=ROW_GROUP):
            if writer is None:
                writer = pq.ParquetWriter(folder / "input.parquet", batch.schema)
            writer.write_batch(batch, row_group_size=ROW_GROUP)
            option = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE
            lines.writelines(orjson.dumps(profile, option=option) for profile in batch.to_pylist())
    assert writer is not None
    writer.close()


# -- the projection in plain Python (dlt fed dicts, naive XML) ----------------------------------------------


def project_dict(profile: dict[str, Any]) -> dict[str, Any]:
    ids = profile["identity"]
    identity = next((v for v in (ids[0] if ids else None, profile["email"], profile["phone"]) if v), None)
    device = profile["device"]
    row = {
        "identity": identity,
        "clevertapId": profile["profile_id"],
        "device": None if device is None else {"token": device["token"]},
        "Email": profile["email"],
        "Phone": profile["phone"],
    }
    row.update(profile["properties"] or {})
    return row


# -- contenders: each returns (output bytes, output data files) ---------------------------------------------

Outcome = tuple[int, list[Path]]


def run_lib(fmt: str, work: Path, out: Path) -> Outcome:
    import profile_exports as pe

    result = pe.export(
        str(work / "input.parquet"),
        str(out),
        format=fmt,
        progress=False,
        identifiers={"select": ["Identity", "Email", "Phone"]},
        executor="serial",
    )
    return result.bytes, [Path(f.url) for f in result.files]


def floor_files(work: Path) -> list[Path]:
    return sorted(p for p in (work / "floor").iterdir() if ".parquet" in p.name and not p.name.startswith("."))


def prepare_floor(work: Path) -> Any:
    """The library's own Parquet output (of an untimed run), in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(f) for f in floor_files(work)])


def run_pyarrow_floor(fmt: str, work: Path, out: Path, table: Any) -> Outcome:
    import pyarrow.parquet as pq

    target = out / "floor.parquet"
    pq.write_table(table, target, compression=codec_for("pyarrow"), row_group_size=ROW_GROUP)
    return target.stat().st_size, [target]


def run_polars(fmt: str, work: Path, out: Path) -> Outcome:
    import polars as pl

    def present(e: pl.Expr) -> pl.Expr:  # null for "" (and null)
        return pl.when(e != "").then(e)

    df = pl.read_parquet(work / "input.parquet", columns=SOURCE_COLUMNS)
    identity = pl.coalesce(present(pl.col("identity").list.first()), present(pl.col("email")), present(pl.col("phone")))
    projected = df.select(
        identity.alias("identity"),
        pl.col("profile_id").alias("clevertapId"),
        pl.struct(pl.col("device").struct.field("token")).alias("device"),
        pl.col("email").alias("Email"),
        pl.col("phone").alias("Phone"),
        pl.col("properties").struct.unnest(),
    )
    if fmt == "csv":
        # CSV cannot hold lists or structs: the struct becomes its JSON text; polars has no JSON
        # encoding of a list, so lists become their values joined with "," (the simplest polars way).
        projected = projected.with_columns(
            pl.col("device").struct.json_encode(),
            *(pl.col(n).cast(pl.List(pl.String)).list.join(",") for n, t in projected.schema.items() if t == pl.List),
        )
        target = out / "polars.csv.gz"
        with gzip.open(target, "wb", compresslevel=6) as stream:
            projected.write_csv(stream)
    elif fmt == "json":
        target = out / "polars.json.gz"
        with gzip.open(target, "wb", compresslevel=6) as stream:
            projected.write_ndjson(stream)
    else:
        target = out / "polars.parquet"
        projected.write_parquet(target, compression=codec_for("polars"))
    return target.stat().st_size, [target]


def run_duckdb(fmt: str, work: Path, out: Path) -> Outcome:
    import duckdb

    source = str(work / "input.parquet").replace("'", "''")
    query = f"""
        SELECT coalesce(nullif(identity[1], ''), nullif(email, ''), nullif(phone, '')) AS identity,
               profile_id AS "clevertapId",
               struct_pack(token := device.token) AS device,
               email AS "Email",
               phone AS "Phone",
               properties.*
        FROM read_parquet('{source}')
    """
    con = duckdb.connect()
    if fmt == "csv":
        # DuckDB writes lists and structs to CSV in its own [a, b] / {'k': v} form: JSON text instead.
        relation = con.sql(query)
        nested = [
            n
            for n, t in zip(relation.columns, relation.types, strict=True)
            if str(t).endswith("[]") or str(t).startswith(("STRUCT", "MAP"))
        ]
        replaced = ", ".join(f'to_json("{n}") AS "{n}"' for n in nested)
        query = f"SELECT * REPLACE ({replaced}) FROM ({query})"
        target, options = out / "duckdb.csv.gz", "FORMAT csv, COMPRESSION gzip"
    elif fmt == "json":
        target, options = out / "duckdb.json.gz", "FORMAT json, COMPRESSION gzip"
    else:
        target, options = out / "duckdb.parquet", f"FORMAT parquet, COMPRESSION {codec_for('duckdb')}"
    con.execute(f"COPY ({query}) TO '{str(target).replace(chr(39), chr(39) * 2)}' ({options})")
    con.close()
    return target.stat().st_size, [target]


def run_pandas(fmt: str, work: Path, out: Path) -> Outcome:
    import numpy as np
    import pandas as pd

    # What a typical pandas user writes: the default (numpy) dtypes, structs arrive as dicts and are
    # expanded with pd.DataFrame(column.tolist()), the usual recipe (pd.json_normalize is slower).
    # Integer properties with missing values become floats (38 -> 38.0), as pandas does.
    df = pd.read_parquet(work / "input.parquet", columns=SOURCE_COLUMNS)

    def present(s: pd.Series) -> pd.Series:
        return s.replace("", None)

    identity = present(df["identity"].str[0]).fillna(present(df["email"])).fillna(present(df["phone"]))
    head = pd.DataFrame(
        {
            "identity": identity,
            "clevertapId": df["profile_id"],
            "device": df["device"].map(lambda d: None if d is None else {"token": d["token"]}),
            "Email": df["email"],
            "Phone": df["phone"],
        }
    )
    props = pd.DataFrame(df["properties"].tolist(), index=df.index)
    projected = pd.concat([head, props], axis=1)
    if fmt == "csv":
        # CSV cannot hold lists (numpy arrays here) or dicts: JSON text instead.
        def as_json(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                return json.dumps(v.tolist())
            return json.dumps(v) if isinstance(v, dict | list) else v

        for name in [c for c in projected.columns if pd.api.types.is_object_dtype(projected[c])]:
            projected[name] = projected[name].map(as_json)
        target = out / "pandas.csv.gz"
        # pandas' gzip is stdlib gzip at its default level (9).
        projected.to_csv(target, index=False, compression="gzip")
    elif fmt == "json":
        target = out / "pandas.json.gz"
        # date_format="iso": the default for records is epoch milliseconds.
        projected.to_json(target, orient="records", lines=True, compression="gzip", date_format="iso")
    else:
        target = out / "pandas.parquet"
        projected.to_parquet(target, compression=codec_for("pandas"), index=False)
    return target.stat().st_size, [target]


def arrow_projection(batch: Any, fmt: str) -> Any:
    """The projection with pyarrow compute, for dlt fed Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def present(a: Any) -> Any:  # null for "" (and null)
        return pc.if_else(pc.not_equal(a, ""), a, pa.scalar(None, a.type))

    ids = batch.column("identity")
    # list_element fails on an empty list: empty lists become null first.
    ids = pc.if_else(pc.greater(pc.list_value_length(ids), 0), ids, pa.scalar(None, ids.type))
    identity = pc.coalesce(
        present(pc.list_element(ids, 0)), present(batch.column("email")), present(batch.column("phone"))
    )
    token = batch.column("device").field("token")
    columns: dict[str, Any] = {
        "identity": identity,
        "clevertapId": batch.column("profile_id"),
        # dlt's CSV writer refuses structs ("convert them to json strings") and pyarrow has no JSON
        # encoding: for CSV the device is its token, lists their values joined with ",".
        "device": token if fmt == "csv" else pa.StructArray.from_arrays([token], names=["token"]),
        "Email": batch.column("email"),
        "Phone": batch.column("phone"),
    }
    props = batch.column("properties")
    for field, child in zip(props.type, props.flatten(), strict=True):
        if fmt == "csv" and pa.types.is_list(field.type):
            child = pc.binary_join(child, ",")
        columns[field.name] = child
    return pa.table(columns)


def run_dlt(fmt: str, work: Path, out: Path, *, arrow: bool) -> Outcome:
    import dlt
    import orjson
    import pyarrow.parquet as pq

    def dicts() -> Iterator[dict[str, Any]]:
        with open(work / "input.jsonl", "rb") as lines:
            for line in lines:
                yield project_dict(orjson.loads(line))

    def tables() -> Iterator[Any]:
        for batch in pq.ParquetFile(work / "input.parquet").iter_batches(ROW_GROUP, columns=SOURCE_COLUMNS):
            yield arrow_projection(batch, fmt)

    # max_table_nesting=0: lists and the device stay values of the row (JSON in CSV and Parquet), as in
    # the library's output, instead of dlt's default child tables per list and device__token column.
    @dlt.resource(name="profiles", max_table_nesting=0)
    def profiles() -> Iterator[Any]:
        yield from tables() if arrow else dicts()

    bucket = out / "bucket"
    bucket.mkdir()
    pipeline = dlt.pipeline(
        pipeline_name="peers",
        destination=dlt.destinations.filesystem(bucket_url=bucket.as_uri()),
        dataset_name="peers",
        pipelines_dir=str(out / "pipelines"),
    )
    file_format = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[fmt]
    info = pipeline.run(profiles(), table_name="profiles", loader_file_format=file_format)
    info.raise_on_failed_jobs()
    # dlt writes a CSV file per schema change (a column first seen non-null): several files.
    files = sorted(p for p in (bucket / "peers" / "profiles").rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in files), files


def run_naive_xml(fmt: str, work: Path, out: Path) -> Outcome:
    import re

    import pyarrow.parquet as pq
    from lxml import etree

    tags: dict[str, str] = {}  # column -> element name ("Customer Type" is no XML name)

    def text(v: Any) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, datetime | date):
            return v.isoformat()
        if isinstance(v, list | dict):
            return json.dumps(v, default=str)
        return str(v)

    target = out / "naive.xml.gz"
    with gzip.open(target, "wb") as raw, etree.xmlfile(raw, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("profiles"):
            for batch in pq.ParquetFile(work / "input.parquet").iter_batches(columns=SOURCE_COLUMNS):
                for profile in batch.to_pylist():
                    element = etree.Element("profile")
                    for key, value in project_dict(profile).items():
                        tag = tags.get(key)
                        if tag is None:
                            tag = tags[key] = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
                        child = etree.SubElement(element, tag)
                        if value is not None:
                            child.text = text(value)
                    xf.write(element)
                    xf.write("\n")
    return target.stat().st_size, [target]


# -- one contender, in its own process ----------------------------------------------------------------------


def one(contender: str, fmt: str, work: Path, out: Path) -> dict[str, Any]:
    """Import, prepare (untimed), then time one contender."""
    run: Callable[[], Outcome]
    if contender in DLT:
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
        os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
        os.environ["DLT_DATA_DIR"] = str(out / "dlt-data")
        os.environ["DATA_WRITER__COMPRESSION"] = str(codec_for("dlt"))  # Parquet codec; gzip stays default
        import dlt  # noqa: F401

        run = lambda: run_dlt(fmt, work, out, arrow=contender == "dlt-arrow")  # noqa: E731
    elif contender == "pyarrow-floor":
        table = prepare_floor(work)
        run = lambda: run_pyarrow_floor(fmt, work, out, table)  # noqa: E731
    else:
        modules = {
            # the library imports pyarrow.dataset on its first Parquet read (it pulls in pandas: 0.4 s)
            "lib": ["profile_exports", "pyarrow.parquet", "pyarrow.dataset"],
            "polars": ["polars"],
            "duckdb": ["duckdb"],
            "pandas": ["pandas", "pyarrow.parquet"],
            "naive-xml": ["lxml.etree", "pyarrow.parquet"],
        }[contender]
        for module in modules:
            __import__(module)
        runner = {"lib": run_lib, "polars": run_polars, "duckdb": run_duckdb, "pandas": run_pandas}.get(
            contender, run_naive_xml
        )
        run = lambda: runner(fmt, work, out)  # noqa: E731
    start = time.perf_counter()
    written, files = run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": written, "peak_rss_mb": peak_rss_mb(), "files": [str(f) for f in files]}


def peak_rss_mb() -> float:
    """The peak RSS of this process (and of any process it started), in MB.

    Not ``RUSAGE_SELF``: Python starts this process with vfork, and Linux hands the parent's peak RSS
    at the exec to the child's ``ru_maxrss``, so a child of a big parent would report the parent's
    peak. ``VmHWM`` is the peak of this process's own memory, which starts at the exec. Processes this
    one started count through ``RUSAGE_CHILDREN``.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        with open("/proc/self/status") as status:
            own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, children) / 1024


# -- counting the rows written (after the clock) -----------------------------------------------------------


def open_bytes(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")  # type: ignore[return-value]


def count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with open_bytes(path) as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def count_csv_records(path: Path) -> int:
    with open_bytes(path) as stream:
        return sum(1 for _ in csv.reader(io.TextIOWrapper(stream, encoding="utf-8", newline=""))) - 1


def count_tag(path: Path, tag: bytes) -> int:
    found, tail = 0, b""
    with open_bytes(path) as stream:
        while chunk := stream.read(1 << 20):
            data = tail + chunk
            found += data.count(tag)
            tail = data[-(len(tag) - 1) :]
    return found


def count_rows(contender: str, fmt: str, files: list[Path]) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(f).num_rows for f in files)
    if fmt == "json":
        return sum(count_lines(f) for f in files)
    if fmt == "xml":
        tag = b"<Profile>" if contender == "lib" else b"<profile>"
        return sum(count_tag(f, tag) for f in files)
    total = 0
    for f in files:  # lines minus the header; a newline inside a quoted value needs the CSV parser
        lines = count_lines(f) - 1
        total += lines
    return total


def checked_rows(contender: str, fmt: str, files: list[Path], expected: int) -> int:
    if not files:
        raise RuntimeError(f"{contender} wrote no {fmt} file")
    rows = count_rows(contender, fmt, files)
    if rows != expected and fmt == "csv":
        rows = sum(count_csv_records(f) for f in files)
    if rows != expected:
        raise RuntimeError(f"{contender} wrote {rows:,} rows of {fmt}, expected {expected:,}")
    return rows


# -- the driver --------------------------------------------------------------------------------------------


def spawn(contender: str, fmt: str, work: Path, out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, SCRIPT, "--one", contender, "--format", fmt, "--work", str(work), "--out", str(out)]
    # cwd is the output folder: no tool picks up a config file of the project (dlt reads ./.dlt).
    done = subprocess.run(command, cwd=out, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{contender} {fmt} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_once(
    contender: str, fmt: str, work: Path, count: int, attempt: int, best: dict[str, Any] | None
) -> dict[str, Any]:
    """One timed run; returns the better of it and ``best``."""
    out = work / "out" / f"{fmt}-{contender}"
    r = spawn(contender, fmt, work, out)
    rows = checked_rows(contender, fmt, [Path(f) for f in r["files"]], count)
    log(f"  {count:,} {fmt:<7} {contender:<13} run {attempt}/{RUNS}: {r['seconds']:.2f} s, {rows:,} rows ok")
    shutil.rmtree(out, ignore_errors=True)
    r["files"] = len(r["files"])
    if best is not None and best["seconds"] <= r["seconds"]:
        return best
    r["profiles_per_s"] = count / r["seconds"]
    r["output_mb"] = r["bytes"] / 1e6
    r["output_mb_per_s"] = r["output_mb"] / r["seconds"]
    return r


def print_table(count: int, fmt: str, results: dict[str, dict[str, Any]]) -> None:
    label = f"{fmt}, {lib_codec()} codec" if fmt == "parquet" else f"{fmt} gzip"
    print(f"\n{count:,} profiles, {label}")
    header = f"{'contender':<14} {'seconds':>8} {'profiles/s':>11} {'output MB':>10} {'MB/s out':>9}"
    print(f"{header} {'peak RSS MB':>12}  lib vs contender")
    lib = results.get("lib")
    for name, r in results.items():
        if r.get("skipped"):
            print(f"{name:<14} skipped ({r['skipped']})")
            continue
        ratio = "-"
        if name != "lib" and lib is not None:
            ratio = f"lib is {lib['profiles_per_s'] / r['profiles_per_s']:.1f}x {name}"
        print(
            f"{name:<14} {r['seconds']:>8.2f} {r['profiles_per_s']:>11,.0f} {r['output_mb']:>10.1f}"
            f" {r['output_mb_per_s']:>9.1f} {r['peak_rss_mb']:>12.0f}  {ratio}"
        )


def check_targets(count: int, results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    checks = []
    for fmt, contender, minimum in TARGETS:
        lib = results.get(fmt, {}).get("lib")
        if lib is None:
            continue
        if contender is None:
            value, what = lib["profiles_per_s"], f"lib >= {minimum:,.0f} profiles/s"
        else:
            peer = results[fmt].get(contender)
            if peer is None or peer.get("skipped"):
                continue
            value, what = lib["profiles_per_s"] / peer["profiles_per_s"], f"lib >= {minimum}x {contender}"
        checks.append({"profiles": count, "format": fmt, "target": what, "value": value, "pass": value >= minimum})
    return checks


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("profile-exports", "pyarrow", "polars", "duckdb", "pandas", "dlt", "lxml", "orjson"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "?"
    return found


def main() -> int:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 profiles only, for a smoke run")
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated profile counts")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: csv,json,xml,parquet")
    parser.add_argument("--skip-dlt-above", type=int, default=100_000, help="no dlt contenders above this size")
    parser.add_argument("--contenders", default="", help="comma-separated subset (default: all); lib always runs")
    parser.add_argument("--runs", type=int, default=RUNS, help="rounds per size and format; the best run counts")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    RUNS = max(1, args.runs)
    if args.one:
        print(json.dumps(one(args.one, args.format, Path(args.work), Path(args.out))))
        return 0

    sizes = [20_000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(formats) - set(FORMATS)
    if unknown:
        parser.error(f"unknown formats: {', '.join(sorted(unknown))}")
    chosen = {c.strip() for c in args.contenders.split(",") if c.strip()}
    print(f"{os.cpu_count()} cores; Parquet codec of every contender: {lib_codec()} (the library's default)")
    report: dict[str, Any] = {
        "sizes": sizes,
        "formats": formats,
        "cores": os.cpu_count(),
        "runs": RUNS,
        "parquet_codec": lib_codec(),
        "skip_dlt_above": args.skip_dlt_above,
        "versions": versions(),
        "results": {},
        "checks": [],
    }
    with tempfile.TemporaryDirectory(prefix="profile-exports-peers-") as tmp:
        for count in sizes:
            work = Path(tmp) / f"size-{count}"
            work.mkdir()
            log(f"{count:,} profiles: writing the input")
            make_input(work, count)
            by_format: dict[str, dict[str, dict[str, Any]]] = {}
            for fmt in formats:
                if "pyarrow-floor" in CONTENDERS[fmt]:
                    log(f"  {count:,} {fmt:<7} lib output for pyarrow-floor (untimed)")
                    r = spawn("lib", fmt, work, work / "floor")
                    checked_rows("lib", fmt, [Path(f) for f in r["files"]], count)
                results: dict[str, dict[str, Any]] = {}
                timed = []
                for contender in CONTENDERS[fmt]:
                    if chosen and contender != "lib" and contender not in chosen:
                        continue
                    if contender in DLT and count > args.skip_dlt_above:
                        results[contender] = {"skipped": f"above --skip-dlt-above {args.skip_dlt_above:,}"}
                        continue
                    timed.append(contender)
                # Rounds of every contender in turn, the best run of each counting: a slow spell of the
                # shared machine then hits all contenders alike instead of one contender's runs.
                for attempt in range(1, RUNS + 1):
                    for contender in timed:
                        results[contender] = measure_once(contender, fmt, work, count, attempt, results.get(contender))
                shutil.rmtree(work / "floor", ignore_errors=True)
                by_format[fmt] = results
                print_table(count, fmt, results)
            checks = check_targets(count, by_format)
            if checks:
                print(f"\ntargets at {count:,} profiles")
                for c in checks:
                    shown = f"{c['value']:,.0f} profiles/s" if "profiles/s" in c["target"] else f"{c['value']:.2f}x"
                    print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['format']:<8} {c['target']:<30} ({shown})")
            report["results"][str(count)] = by_format
            report["checks"].extend(checks)
            shutil.rmtree(work, ignore_errors=True)
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"peers-{int(time.time())}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
