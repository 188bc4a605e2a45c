"""Previews and run results as HTML tables for Jupyter (``_repr_html_``).

Values are shown as the text formats write them (text as is, nested values as compact JSON), and
every piece of text is escaped: profile values are user data, and a notebook renders what it is given.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .naming import PART_DIGITS

if TYPE_CHECKING:
    from .center import RunOutcome
    from .exporter import Preview
    from .results import ExportResult

MAX_CELL_CHARS = 80  # longer values are cut with an ellipsis; the files hold them whole
MAX_FILES_SHOWN = 20  # a run's files beyond this are counted, not listed
# Where a preview's file name pattern has the part number: "{part:05d}", a str.format field.
PART_PLACEHOLDER = f"{{part:0{PART_DIGITS}d}}"


def cell_text(value: Any) -> str:
    """A value as one line of text: empty for missing, JSON for lists and mappings, cut when long."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple, dict)):
        text = orjson.dumps(value, default=str).decode()
    else:
        text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell_text(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="profile-exports"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in pairs)
    return f"<ul>{items}</ul>"


def preview_html(preview: Preview) -> str:
    facts = _facts(
        [
            ("destination", preview.destination),
            ("folder", preview.folder or "(root)"),
            ("first file", preview.first_file),
            *(
                [("file names", f"{preview.file_pattern} (part 00000, 00001, ...)")]
                if preview.file_pattern is not None
                else []
            ),
        ]
    )
    rows = [[row.get(column) for column in preview.columns] for row in preview.rows]
    table = html_table(preview.columns, rows)
    caption = f"<p><b>Preview</b>: first {len(preview.rows)} row(s) of {len(preview.columns)} column(s)</p>"
    return f"<div>{caption}{facts}{table}</div>"


def result_html(result: ExportResult) -> str:
    facts = [
        ("export", result.export_id),
        ("destination", result.destination),
        ("format", result.format),
        ("profiles", f"{result.rows:,}"),
        ("size", f"{result.bytes / 1_000_000:.2f} MB in {len(result.files)} file(s)"),
        ("time", f"{result.duration_seconds:.2f} s"),
    ]
    if result.rejected_count:
        facts.append(("rejected", f"{result.rejected_count} record(s); first: {result.rejected[0].reason}"))
    if result.phones_not_e164:
        facts.append(("phones not E.164", f"{result.phones_not_e164:,}"))
    if result.non_finite_as_null:
        facts.append(("NaN/infinity as null", f"{result.non_finite_as_null:,}"))
    if result.manifest is not None:
        facts.append(("manifest", result.manifest.url))
    shown = result.files[:MAX_FILES_SHOWN]
    # Keys under the destination, which is listed above: short, and they end with the file name.
    table = html_table(["file", "rows", "bytes"], [[f.key, f"{f.rows:,}", f"{f.bytes:,}"] for f in shown])
    more = len(result.files) - len(shown)
    tail = f"<p>… and {more} more file(s)</p>" if more else ""
    return f"<div><p><b>Export finished</b></p>{_facts(facts)}{table}{tail}</div>"


def run_facts(outcome: RunOutcome) -> list[tuple[str, str]]:
    record = outcome.record
    facts = [
        ("export", f"{record.export_id}, run {record.run}"),
        ("status", record.status),
        ("mode", f"{record.mode} ({record.trigger})"),
    ]
    if record.rows is not None:
        facts.append(("profiles", f"{record.rows:,} written of {record.profiles_seen or 0:,} read"))
    if record.error:
        facts.append(("error", record.error))
    if record.note:
        facts.append(("note", record.note))
    return facts


def run_outcome_text(outcome: RunOutcome) -> str:
    lines = [f"{name}: {value}" for name, value in run_facts(outcome)]
    if outcome.result is not None:
        lines.append(outcome.result.summary())
    return "\n".join(lines)


def run_outcome_html(outcome: RunOutcome) -> str:
    result = result_html(outcome.result) if outcome.result is not None else ""
    return f"<div><p><b>Managed export run</b></p>{_facts(run_facts(outcome))}{result}</div>"
