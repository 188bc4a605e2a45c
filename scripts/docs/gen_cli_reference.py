"""Writes ``reference/cli.md`` by walking the argparse parser of ``profile-exports`` at build time.

Every command and subcommand gets its ``--help`` text exactly as the installed CLI prints it, so the
page lists what the parser accepts and nothing else.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Iterator

import mkdocs_gen_files

from profile_exports import cli

PAGE = "reference/cli.md"
WIDTH = 100  # help is wrapped to the terminal otherwise, which would make the page differ per build machine


def commands(parser: argparse.ArgumentParser, summary: str | None = None) -> Iterator[tuple[str, str | None, str]]:
    """(command, one-line help, --help text) for the parser and every subcommand below it, depth first."""
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH)
    yield parser.prog, summary, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield from commands(sub, helps.get(name))


def exit_status() -> str:
    """The exit-status sentence of the CLI's module docstring."""
    paragraphs = (inspect.getdoc(cli) or "").replace("\n", " ").split(". ")
    return next((p.rstrip(".") + "." for p in paragraphs if p.startswith("Exit status")), "")


def page() -> str:
    parser = cli._parser()
    lines = [
        "# Command line reference (generated)",
        "",
        f"Generated from the argparse parser of `{parser.prog}` when this site is built: each section is the",
        f"command's `--help`. {exit_status()}",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    sections = []
    for command, summary, text in commands(parser):
        anchor = command.replace(" ", "-")
        if summary is not None:
            lines.append(f"| [`{command}`](#{anchor}) | {summary} |")
        sections += ["", f"## `{command}` {{#{anchor}}}", "", *([summary, ""] if summary else []), "```text"]
        sections += [text.rstrip(), "```"]
    return "\n".join(lines + sections) + "\n"


with mkdocs_gen_files.open(PAGE, "w") as out:
    out.write(page())
