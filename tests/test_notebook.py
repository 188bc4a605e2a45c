"""Notebooks: previews and results render as HTML tables, runs show a progress bar, and the example
notebook under examples/ runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

import csv
import gzip
import html
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import profile_exports as pe

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "notebook-export.ipynb"


def test_a_preview_renders_as_an_escaped_html_table_and_as_text() -> None:
    users = [{"profile_id": "__g1", "identity": "<script>alert(1)</script>", "Name": "Ada", "tags": ["a", "b"]}]
    preview = pe.preview(users, destination="memory://nb", format="csv", identifiers=["Identity"])
    page = preview._repr_html_()
    header = [f"<th>{html.escape(c)}</th>" for c in preview.columns]
    assert "".join(header) in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page  # user data is escaped, never markup
    assert '<td>["a","b"]</td>' in page.replace("&quot;", '"')
    assert "<script>" not in page
    assert str(preview) == preview.to_text()
    assert "Ada" in str(preview) and "<" not in str(preview).split("rows:")[0]


def test_a_result_renders_its_files_as_html_and_its_summary_as_text(tmp_path: Path) -> None:
    users = [{"profile_id": f"__g{i}", "identity": f"u{i}", "Name": "Ada"} for i in range(5)]
    result = pe.export(users, tmp_path / "out", format="json", progress=False)
    page = result._repr_html_()
    for file in result.files:
        assert f"<td>{html.escape(file.key)}</td><td>{file.rows:,}</td><td>{file.bytes:,}</td>" in page
    assert "<b>profiles</b>: 5" in page
    assert str(result) == result.summary()
    assert "5 profiles in 1 file(s)" in str(result)


def _ipython_kernel_spec(folder: Path) -> None:
    # A kernel spec of our own, first on JUPYTER_PATH: the notebook runs in this interpreter, whatever
    # "python3" kernels a user or the system has installed.
    spec = folder / "kernels" / "profile-exports-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "profile-exports test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))


def _outputs(cell: Any, kind: str) -> str:
    texts = []
    for output in cell.outputs:
        if kind == "stderr" and output.output_type == "stream" and output.name == "stderr":
            texts.append(output.text)
        elif kind != "stderr" and output.output_type in ("execute_result", "display_data"):
            texts.append(output.data.get(kind, ""))
    return "".join(texts)


def test_the_example_notebook_runs_and_shows_the_preview_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _ipython_kernel_spec(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.read(shutil.copy(EXAMPLE, work / EXAMPLE.name), as_version=4)

    client = nbclient.NotebookClient(
        notebook, kernel_name="profile-exports-test", timeout=180, resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    preview_cell = next(c for c in code if "pe.preview(" in c.source)
    preview_html = _outputs(preview_cell, "text/html")
    assert "<table" in preview_html
    for value in ("<th>identity</th>", "<th>Name</th>", "<td>bob@example.com</td>", "<td>Cleo</td>"):
        assert value in preview_html, value

    export_cell = next(c for c in code if "pe.export(" in c.source)
    result_html = _outputs(export_cell, "text/html")
    assert "Export finished" in result_html and "<b>profiles</b>: 3" in result_html
    assert "profiles" in _outputs(export_cell, "stderr")  # the tqdm bar (text without ipywidgets)

    files = sorted((work / "exports" / "notebook").glob("*.csv.gz"))
    assert len(files) == 1 and files[0].name in result_html
    with gzip.open(files[0], "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    # Bob has no identity: the email stands in for it (identifiers = ["Identity", "Email"]).
    assert [(r["identity"], r["Name"], r["Age"]) for r in rows] == [
        ("user_1", "Ada", "36"),
        ("bob@example.com", "Bob", "41"),
        ("user_3", "Cleo", "29"),
    ]


def test_a_managed_run_renders_its_record_and_result(tmp_path: Path) -> None:
    from profile_exports.center import ExportCenter

    center = ExportCenter(tmp_path / "home")
    record = center.create(
        {
            "name": "nb",
            "source": {"kind": "synthetic", "count": 25},
            "destination": {"url": str(tmp_path / "out"), "format": "json"},
            "schedule": {"mode": "full"},
        }
    )
    outcome = center.run(record.id)
    page = outcome._repr_html_()
    assert "<b>status</b>: done" in page.lower()
    assert "25 written of 25 read" in page
    assert all(f"<td>{html.escape(f.key)}</td>" in page for f in outcome.result.files)  # type: ignore[union-attr]
    text = str(outcome)
    assert f"export: {record.id}, run {outcome.record.run}" in text and "25 profiles in" in text
