"""Tasks: nox -s tests | engines | lint | typing | bench | docs."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite (starts its own servers where tests need them)."""
    # The example plugin is installed as a user would install it: the suite exports through its entry point.
    session.install("-e", ".[test]", "./examples/plugins/profile-exports-avro")
    # Exit status 5 means "no tests collected"; a filtered run (-k) may legitimately collect none.
    # The engines' module has its own session (it installs Spark and chDB): README runs both.
    session.run("pytest", "--ignore=tests/test_engines.py", *session.posargs, success_codes=[0, 5])


@nox.session(python=PYTHON)
def engines(session: nox.Session) -> None:
    """Exported folders read by DuckDB, ClickHouse (chDB), polars and Spark with docs/loading.md's statements.

    Spark runs one local[1] session (Java 17+ on the PATH); the module takes about half a minute.
    """
    session.install("-e", ".[test,engines]")
    # Every engine must run here: a missing one (or Java) fails its tests, never skips them.
    session.run("pytest", "tests/test_engines.py", *session.posargs)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """Faults injected into real exports, and the summary: recovered, failed cleanly, lost, partial."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "faults", "-p", "no:randomly", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "profile_exports", "tests", "benchmarks", "examples", "scripts", "noxfile.py")
    session.run("ruff", "format", "--check", "--diff", "profile_exports/errors.py")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    session.install("-e", ".", "mypy>=1.10", "pytest>=8")  # profile_exports.testing builds on pytest
    session.run("mypy", "profile_exports")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Throughput and memory against baselines measured in the same run (pass --quick for a smoke run)."""
    session.install("-e", ".[test,bench]")  # the upload benchmark starts the same servers as the tests
    session.run("python", "benchmarks/peers.py", *session.posargs)
    session.run("python", "benchmarks/parallel.py", *session.posargs)
    session.run("python", "benchmarks/memory.py", *session.posargs)
    session.run("python", "benchmarks/incremental.py", *session.posargs)
    session.run("python", "benchmarks/upload.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Runs every example in docs/ and in docstrings, then builds the site (warnings are errors) into site/."""
    session.install("-e", ".[test,docs]")
    session.run(
        "pytest", "--doctest-glob=*.md", "docs", "--doctest-modules", "profile_exports", "-q", "-p", "no:cacheprovider"
    )
    # The configuration, CLI, API references and the sample files are generated from the code here.
    quiet = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}  # startup banners, not warnings
    session.run("mkdocs", "build", "--strict", *session.posargs, env=quiet)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The README's demo with only the core dependencies installed (catches a missing dependency)."""
    session.install(".")
    tmp = session.create_tmp()
    session.chdir(tmp)
    session.run("profile-exports", "demo", "--out", "demo-exports")
