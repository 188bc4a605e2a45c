"""CLI commands of the export center: ``exports create|list|show|run|stop|runs``, ``run-due``, ``scheduler``.

Tables for people, ``--json`` for scripts. The registry is ``--home``, else ``$PROFILE_EXPORTS_HOME``,
else ``~/.profile-exports``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from .center import ExportCenter, RunOutcome
from .errors import StateError
from .registry import SCHEDULE, STATUSES, ExportNotDue, ExportRecord, RunRecord
from .scheduler import Scheduler


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    exports = commands.add_parser("exports", help="manage registered exports (create, list, show, run, stop, runs)")
    sub = exports.add_subparsers(dest="exports_command", required=True, metavar="ACTION")

    create = sub.add_parser("create", parents=[common], help="validate, preflight and register an export")
    create.add_argument("config", help="path of the configuration file (TOML or JSON)")
    create.add_argument("--no-run", action="store_true", help="do not run a one-time export right away")
    create.add_argument("--json", action="store_true", help="print the export as JSON")

    listing = sub.add_parser("list", parents=[common], help="list exports, with filters")
    listing.add_argument("--sink", help="s3, gcs, azure, file, memory, ...")
    listing.add_argument("--data-type", help="profile")
    listing.add_argument("--status", choices=[s.lower() for s in STATUSES], type=str.lower)
    listing.add_argument("--frequency", choices=["once", "recurring"])
    listing.add_argument("--search", help="an export id, or part of a name")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")

    for name, text in (("show", "show one export and its run history"), ("runs", "list one export's runs")):
        cmd = sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("id", help="the export id")
        cmd.add_argument("--json", action="store_true", help="print as JSON")

    run = sub.add_parser("run", parents=[common], help="run an export now, whatever its schedule")
    run.add_argument("id", help="the export id")
    run.add_argument("--json", action="store_true", help="print the run as JSON")

    stop = sub.add_parser("stop", parents=[common], help="stop an export for good (a running one ends cleanly)")
    stop.add_argument("id", help="the export id")
    stop.add_argument("--json", action="store_true", help="print the export as JSON")

    due = commands.add_parser("run-due", parents=[common], help="run every export whose time has come, then exit")
    due.add_argument("--json", action="store_true", help="print the runs as JSON")

    scheduler = commands.add_parser(
        "scheduler", parents=[common], help="run due exports in the foreground until SIGINT/SIGTERM"
    )
    scheduler.add_argument("--interval", type=float, default=60.0, help="longest sleep in seconds (default 60)")


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="registry folder (default: $PROFILE_EXPORTS_HOME or ~/.profile-exports)")
    common.add_argument("--state", help="fingerprint state directory, any fsspec URL (default: <home>/state)")
    return common


def _reporting_state_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The center's own files failing (damaged, read-only, a full disk): one line naming the file and what
    to do, exit status 1. Not "export failed": `exports list` fails this way too."""

    @functools.wraps(command)
    def reporting(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except StateError as exc:
            print(f"export center error: {exc}", file=sys.stderr)
            return 1

    return reporting


def _center(args: argparse.Namespace) -> ExportCenter:
    return ExportCenter(args.home, state=args.state, strict_plugins=args.strict_plugins)


@_reporting_state_errors
def exports_command(args: argparse.Namespace) -> int:
    center = _center(args)
    action = args.exports_command
    if action == "create":
        record = center.create(args.config)
        _print_export(record, args.json)
        if record.frequency == "once" and not args.no_run:
            # As the scheduler runs it: a run-due in another process may have taken it already.
            try:
                return _report_run(center.run(record.id, trigger=SCHEDULE), args.json)
            except ExportNotDue:
                print(f"export {record.id} was run by another process (run-due or the scheduler)", file=sys.stderr)
                return 0
        return 0
    if action == "list":
        records = center.list(
            sink=args.sink, data_type=args.data_type, status=args.status, frequency=args.frequency, search=args.search
        )
        if args.json:
            print(json.dumps([r.to_dict() for r in records], indent=2))
        else:
            _table(
                ["ID", "NAME", "SINK", "TYPE", "FREQUENCY", "MODE", "STATUS", "NEXT RUN"],
                [
                    [r.id, r.name, r.sink, r.data_type, _frequency(r), r.mode, r.status, _when(r.next_run_at)]
                    for r in records
                ],
            )
        return 0
    if action == "show":
        record, runs = center.get(args.id), center.runs(args.id)
        if args.json:
            print(json.dumps({**record.to_dict(), "runs": [r.to_dict() for r in runs]}, indent=2))
            return 0
        _print_export(record, False)
        print()
        _runs_table(runs)
        return 0
    if action == "runs":
        runs = center.runs(args.id)
        if args.json:
            print(json.dumps([r.to_dict() for r in runs], indent=2))
        else:
            _runs_table(runs)
        return 0
    if action == "run":
        return _report_run(center.run(args.id), args.json)
    if action == "stop":
        _print_export(center.stop(args.id), args.json)
        return 0
    raise AssertionError(action)  # pragma: no cover - argparse allows nothing else


@_reporting_state_errors
def run_due_command(args: argparse.Namespace) -> int:
    outcomes = _center(args).run_due()
    if args.json:
        print(json.dumps([o.record.to_dict() for o in outcomes], indent=2))
    else:
        _runs_table([o.record for o in outcomes]) if outcomes else print("no export is due")
    return 1 if any(o.record.status != "Done" for o in outcomes) else 0


@_reporting_state_errors
def scheduler_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    def report(outcome: RunOutcome) -> None:
        r = outcome.record
        print(f"export {r.export_id} run {r.run}: {r.status}, {r.rows or 0} rows {r.error or ''}".rstrip(), flush=True)

    scheduler = Scheduler(_center(args), interval=args.interval, on_run=report)
    print(f"scheduler: running due exports from {scheduler.center.home}; Ctrl-C to stop", flush=True)
    made = scheduler.serve()
    print(f"scheduler: stopped after {made} run(s)", flush=True)
    return 0


def _report_run(outcome: RunOutcome, as_json: bool) -> int:
    if as_json:
        print(json.dumps(outcome.record.to_dict(), indent=2))
    elif outcome.result is not None:
        print(outcome.result.summary())
        if outcome.result.manifest is not None:
            print(f"  manifest: {outcome.result.manifest.url}")
    if outcome.record.note and not as_json:
        print(f"  note: {outcome.record.note}")
    return 0 if outcome.record.status == "Done" else 1


def _print_export(record: ExportRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record.to_dict(), indent=2))
        return
    fields = [
        ("id", record.id),
        ("name", record.name),
        ("status", record.status),
        ("destination", record.destination),
        ("sink", record.sink),
        ("format", record.format),
        ("frequency", _frequency(record)),
        ("mode", record.mode),
        ("created", _when(record.created_at)),
        ("next run", _when(record.next_run_at)),
        ("committed run", str(record.committed_run or "-")),
    ]
    if record.withheld:
        fields.append(("withheld", ", ".join(record.withheld) + " (supplied at run time)"))
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"{key:<{width}}  {value}")


def _runs_table(runs: Sequence[RunRecord]) -> None:
    _table(
        ["EXPORT", "RUN", "STATUS", "MODE", "STARTED", "ENDED", "ROWS", "FILES", "BYTES", "ERROR"],
        [
            [
                r.export_id,
                str(r.run),
                r.status,
                r.mode,
                _when(r.started_at),
                _when(r.ended_at),
                _num(r.rows),
                _num(r.files),
                _num(r.bytes),
                (r.error or "")[:80],
            ]
            for r in runs
        ],
    )
    for r in runs:  # in full: a note names a file, which the table would cut
        if r.note:
            print(f"note on run {r.run}: {r.note}")


def _frequency(record: ExportRecord) -> str:
    return f"every {record.every_hours}h" if record.frequency == "recurring" else "once"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
