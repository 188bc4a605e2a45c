"""The ``profile-exports`` command: a thin shell over the library.

Exit status: 0 on success, 2 for a configuration error (message on stderr), 1 for a failed run (and,
quietly, when the reader of standard output went away, as with ``| head -1``).
The export center's commands (``exports ...``, ``run-due``, ``scheduler``) are in ``cli_center``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import cli_center
from .api import preview as preview_config
from .config import ExportConfig
from .errors import ConfigError, ProfileExportsError
from .exporter import Exporter
from .plugins import load_components

DEMO_COUNT = 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="profile-exports",
        description="Export user profiles to cloud object storage as CSV, JSON, XML or Parquet files.",
    )
    parser.add_argument("--strict-plugins", action="store_true", help="fail when a plugin cannot be loaded")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="export synthetic profiles to ./exports as CSV and JSON")
    demo.add_argument("--out", default="exports", help="destination folder or URL (default: ./exports)")
    demo.add_argument("--count", type=int, default=DEMO_COUNT, help=f"profiles to generate (default {DEMO_COUNT})")

    run = commands.add_parser("run", help="run the export described by a TOML or JSON file once")
    run.add_argument("config", help="path of the configuration file")
    run.add_argument("--json", action="store_true", help="print the result as JSON")

    preview = commands.add_parser("preview", help="show folder, file names, columns and rows; write nothing")
    preview.add_argument("config", help="path of the configuration file")
    preview.add_argument("--rows", type=int, default=5, help="rows to show (default 5)")
    preview.add_argument("--json", action="store_true", help="print the preview as JSON")

    plugins = commands.add_parser("plugins", help="list registered formats, sinks and sources and their origin")
    plugins.add_argument("--json", action="store_true", help="print the list as JSON")

    cli_center.add_commands(commands, cli_center.common_options())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            status = int(_COMMANDS[args.command](args))
            sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be handled
            return status
        except ConfigError as exc:
            print(f"configuration error: {_one_line(_naming_the_file(str(exc), args))}", file=sys.stderr)
            return 2
        except ProfileExportsError as exc:
            print(f"export failed: {_one_line(str(exc))}", file=sys.stderr)
            return 1
    except BrokenPipeError:
        # The reader went away (``... | head -1``): end quietly, as Python's documentation advises
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe). Output still buffered
        # goes to /dev/null, so flushing stdout at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def _naming_the_file(message: str, args: argparse.Namespace) -> str:
    """The message, with the configuration file the command read when it does not name it already
    (a source kind checks its own options only when the source opens, after the file was read)."""
    config = getattr(args, "config", None)
    if config is None or str(Path(config)) in message:
        return message
    return f"{message} (in {Path(config)})"


def _one_line(message: str) -> str:
    """The message on one line, with control characters from a file (newlines, terminal escapes)
    and lone surrogates written as escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)


def _demo(args: argparse.Namespace) -> int:
    base = {
        "name": "demo",
        "account_id": "100000000",
        "source": {"kind": "synthetic", "count": args.count, "seed": 7},
        "identifiers": {
            "select": ["Identity", "Email", "Phone"],
            "all_identities": True,
            "clevertap_ids": True,
        },
        "properties": {"comm_prefs": ["MSG-push", "MSG-email", "MSG-sms", "subscriptionGroups"]},
    }
    shown = False
    for fmt in ("csv", "json"):
        url = f"{args.out.rstrip('/')}/{fmt}"
        config = ExportConfig.from_mapping({**base, "destination": {"url": url, "format": fmt}})
        exporter = Exporter(config, strict_plugins=args.strict_plugins)
        result = exporter.run()
        print(result.summary())
        if not shown:
            print()
            print(exporter.preview(rows=2).to_text())
            print()
            shown = True
    return 0


def _run(args: argparse.Namespace) -> int:
    config = ExportConfig.from_file(args.config)
    result = Exporter(config, strict_plugins=args.strict_plugins).run()
    if args.json:
        print(json.dumps(_result_json(result), indent=2))
    else:
        print(result.summary())
    return 0


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "export_id": result.export_id,
        "destination": result.destination,
        "format": result.format,
        "rows": result.rows,
        "bytes": result.bytes,
        "duration_seconds": round(result.duration_seconds, 3),
        "columns": list(result.columns),
        "files": [
            {"url": f.url, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256, "partition": f.partition}
            for f in result.files
        ],
        "rejected_count": result.rejected_count,
        "values_as_text": dict(result.values_as_text),
    }


def _preview(args: argparse.Namespace) -> int:
    shown = preview_config(ExportConfig.from_file(args.config), rows=args.rows)
    if args.json:
        print(
            json.dumps(
                {
                    "destination": shown.destination,
                    "folder": shown.folder,
                    "file_names": list(shown.file_names),  # the first file (part 00000)
                    "file_pattern": shown.file_pattern,  # every file's name, the part as "{part:05d}"
                    "columns": list(shown.columns),
                    "rows": list(shown.rows),
                },
                indent=2,
                default=str,
                ensure_ascii=False,
            )
        )
    else:
        print(shown.to_text())
    return 0


def _plugins(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, components = load_components(strict=args.strict_plugins)
    rows = [
        {
            "kind": c.kind,
            "name": c.name,
            "plugin": c.plugin,
            "origin": c.distribution or "built-in",
            "protocols": list(getattr(c.obj, "protocols", ())) if c.kind == "sink" else [],
        }
        for c in components.all()
    ]
    skipped = [str(w.message) for w in caught]
    if args.json:
        print(json.dumps({"components": rows, "skipped": skipped}, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        extra = f" ({', '.join(r['protocols'])})" if r["protocols"] else ""
        print(f"{r['kind']:<7} {r['name']:<{width}}  {r['origin']:<24} {r['plugin']}{extra}")
    for message in skipped:
        print(f"skipped: {message}", file=sys.stderr)
    return 0


_COMMANDS = {
    "demo": _demo,
    "run": _run,
    "preview": _preview,
    "plugins": _plugins,
    "exports": cli_center.exports_command,
    "run-due": cli_center.run_due_command,
    "scheduler": cli_center.scheduler_command,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
