"""Azurite (the Azure Storage emulator) for the tests: installed from npm into ``<repo>/.azurite``.

``Azurite.start()`` installs the pinned version when it is missing (a fresh clone's first test run
does it by itself; Node and npm must be on PATH), starts ``azurite-blob`` on a free 127.0.0.1 port
with its output in a log file, waits until it answers, and ``stop()`` ends it by its own process
handle. Any failure raises ``AzuriteError`` with the reason (the fixture fails; it never skips).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

VERSION = "3.35.0"  # 3.36+ needs Node 22
REPO = Path(__file__).resolve().parent.parent
PREFIX = REPO / ".azurite"
BIN = PREFIX / "node_modules" / ".bin" / "azurite-blob"

# Azurite's public, documented development account (not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    pass


def _installed_version() -> str | None:
    package = PREFIX / "node_modules" / "azurite" / "package.json"
    if not package.exists():
        return None
    import json

    return str(json.loads(package.read_text()).get("version"))


def ensure_installed() -> Path:
    """The ``azurite-blob`` launcher, installing Azurite ``VERSION`` under ``.azurite`` if needed."""
    if BIN.exists() and _installed_version() == VERSION:
        return BIN
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError(f"npm is not on PATH; install Node.js 20 and npm to run the Azure tests (Azurite {VERSION})")
    PREFIX.mkdir(exist_ok=True)
    command = [npm, "install", "--prefix", str(PREFIX), f"azurite@{VERSION}", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AzuriteError(f"{' '.join(command)} did not finish in 600 s") from exc
    if done.returncode != 0 or not BIN.exists():
        tail = (done.stdout + done.stderr)[-3000:]
        raise AzuriteError(f"{' '.join(command)} failed (exit {done.returncode}):\n{tail}")
    return BIN


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    """A running ``azurite-blob`` on 127.0.0.1 with in-memory storage."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = Path(log_dir) / "azurite.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def connection_string(self, key: str = KEY, endpoint: str | None = None) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={endpoint or self.endpoint};"
        )

    def start(self, timeout: float = 60.0) -> Azurite:
        launcher = ensure_installed()
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        command = [
            str(launcher),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ]
        env = dict(os.environ)
        env.pop("AZURITE_ACCOUNTS", None)  # custom accounts would disable the development account
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=PREFIX, env=env
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self.stop()
                raise AzuriteError(f"azurite-blob exited with {code}:\n{self._log_tail()}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise AzuriteError(f"azurite-blob did not answer on port {self.port} within {timeout} s:\n{self._log_tail()}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.endpoint}?comp=list", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # any HTTP answer (403 without credentials) means it is up
        except OSError:
            return False
        return True

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
