"""A fault-injecting HTTP reverse proxy on loopback, for retry tests against real servers.

Requests go to the upstream server unchanged (``Host`` header included, so signatures still match)
except the first ``count`` that match a rule's predicate: those get a fault instead, before they
reach the upstream:

- ``"503"``: an S3-style ``503 SlowDown`` error response; ``"500"``: ``500 InternalError``;
- ``"drop"``: the request is read, then the connection is closed without any response;
- ``"403"``: an S3-style ``403 AccessDenied`` error response (a permanent error; never retried);
- ``"drop-after"``: the request IS forwarded and done upstream, then the connection is closed without
  passing the answer on (a lost response: the retry repeats a request that already succeeded).

Every injected fault is counted (``proxy.injected``, and per kind in ``proxy.faults``), and every
request seen is recorded as ``(method, path_and_query, fault or None)`` in ``proxy.requests``.

    with FaultProxy("http://127.0.0.1:5000") as proxy:
        proxy.inject("503", count=2, when=lambda r: r.method == "PUT")
        ... point the client at proxy.url ...
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
}

ERROR_BODIES = {
    "503": (503, "SlowDown", "Please reduce your request rate (injected by the fault proxy)."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again (injected by the fault proxy)."),
    "403": (403, "AccessDenied", "Access Denied (injected by the fault proxy)."),
}


@dataclass(frozen=True)
class Request:
    """What a predicate sees: the method, the path, the query string and the headers (lower-case names)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]

    @property
    def is_upload_part(self) -> bool:
        return self.method == "PUT" and "partNumber=" in self.query and "uploadId=" in self.query

    @property
    def is_put_object(self) -> bool:
        return self.method == "PUT" and "uploadId=" not in self.query


@dataclass
class Rule:
    fault: str
    count: int
    when: Callable[[Request], bool]
    injected: int = 0


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 (a free port) in front of ``upstream``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port; got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self._state = _State()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------------

    def inject(self, fault: str, *, count: int, when: Callable[[Request], bool] = lambda r: True) -> Rule:
        """Answer the next ``count`` requests matching ``when`` with ``fault`` instead of forwarding them."""
        if fault not in ("500", "503", "403", "drop", "drop-after"):
            raise ValueError(f"unknown fault {fault!r}")
        rule = Rule(fault, count, when)
        with self._state.lock:
            self._state.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._state.lock:
            self._state.rules.clear()
            self._state.faults.clear()
            self._state.requests.clear()

    @property
    def injected(self) -> int:
        with self._state.lock:
            return sum(self._state.faults.values())

    @property
    def faults(self) -> dict[str, int]:
        with self._state.lock:
            return dict(self._state.faults)

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        with self._state.lock:
            return list(self._state.requests)

    def _decide(self, request: Request) -> str | None:
        with self._state.lock:
            fault = None
            for rule in self._state.rules:
                if rule.injected < rule.count and rule.when(request):
                    rule.injected += 1
                    fault = rule.fault
                    self._state.faults[fault] = self._state.faults.get(fault, 0) + 1
                    break
            target = request.path + (f"?{request.query}" if request.query else "")
            self._state.requests.append((request.method, target, fault))
            return fault


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, and "Expect: 100-continue" answered as clients expect

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()})
        fault = self.proxy._decide(request)
        if fault in ("drop", "drop-after"):
            if fault == "drop-after":
                self._forward(body, reply=False)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None:
            status, code, message = ERROR_BODIES[fault]
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        self._forward(body)

    def _forward(self, body: bytes, *, reply: bool = True) -> None:
        upstream = http.client.HTTPConnection(*self.proxy.upstream, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            if body or self.command in ("PUT", "POST"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
            if not reply:
                return
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() in HOP_BY_HOP or name.lower() in ("content-length", "date", "server"):
                    continue
                self.send_header(name, value)
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length if length is not None else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
