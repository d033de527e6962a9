"""A small fault-injecting HTTP proxy for tests: it sits in front of a real `mlflow server` and, on chosen calls,
answers 503 or drops the connection, or "dies" (drops every connection) once a chosen call has been answered.

    with FaultProxy(upstream_url) as proxy:
        proxy.fail("registered-models/alias", method="GET")       # every alias read gets a 503
        proxy.fail("registered-models/create", body=".lock-")      # taking the promotion lock fails
        proxy.die_after("model-versions/create", method="POST")    # register succeeds, then the server is gone
        proxy.fail("registered-models/alias", status=None, delay=60)  # the alias read hangs, then is dropped
"""

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class Rule:
    """Calls whose path holds `path` (and whose method and body match, when given) get `status`, or a dropped
    connection when `status` is None, after `delay` seconds (a server that hangs); `times` limits how many (None:
    all)."""

    path: str
    method: str | None = None
    body: str | None = None
    status: int | None = 503
    times: int | None = None
    delay: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.path not in path or (self.method and self.method != method):
            return False
        return self.body is None or self.body.encode() in body


@dataclass
class Call:
    method: str
    path: str
    outcome: str  # "forwarded", "503", "dropped"


class FaultProxy:
    """Forwards every call to `upstream` unless a rule says otherwise; records each call."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.dead = threading.Event()
        self._die_after: Rule | None = None
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(
        self,
        path: str,
        method: str | None = None,
        body: str | None = None,
        status: int | None = 503,
        times: int | None = None,
        delay: float = 0.0,
    ) -> Rule:
        rule = Rule(path, method, body, status, times, delay)
        with self._lock:
            self.rules.append(rule)
        return rule

    def die_after(self, path: str, method: str | None = None) -> None:
        """Once a matching call has been answered, drop every later connection (as if the server died)."""
        self._die_after = Rule(path, method, status=None)

    def heal(self) -> None:
        with self._lock:
            self.rules.clear()
        self._die_after = None
        self.dead.clear()

    def count(self, path: str, outcome: str | None = None) -> int:
        return sum(1 for call in self.calls if path in call.path and (outcome is None or call.outcome == outcome))

    def _rule_for(self, method: str, path: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, body):
                    rule.hits += 1
                    return rule
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _drop(self) -> None:
                proxy.calls.append(Call(self.command, self.path, "dropped"))
                self.close_connection = True
                self.connection.close()

            def _handle(self) -> None:
                body = self._body()
                if proxy.dead.is_set():
                    return self._drop()
                rule = proxy._rule_for(self.command, self.path, body)
                if rule is not None and rule.delay:
                    proxy.dead.wait(rule.delay)
                if rule is not None and rule.status is None:
                    return self._drop()
                if rule is not None:
                    proxy.calls.append(Call(self.command, self.path, str(rule.status)))
                    payload = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected by the fault proxy"}'
                    self.send_response(rule.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return None
                self._forward(body)
                proxy.calls.append(Call(self.command, self.path, "forwarded"))
                after = proxy._die_after
                if after is not None and after.matches(self.command, self.path, body):
                    proxy.dead.set()
                return None

            def _forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                headers = {key: value for key, value in self.headers.items() if key.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        return Handler
