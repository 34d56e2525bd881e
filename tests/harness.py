"""What the tests share besides fixtures: the simulator they run (from neo_simulator.testing,
which the simulator's own tests use too), its credentials, and the `neo` connection to it.
(Fixtures live in conftest.py; tests import these names from here.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from neo_simulator.auth import (
    DEFAULT_OAUTH_KEY,
    DEFAULT_OAUTH_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
)
from neo_simulator.testing import AS_OF, TIMEZONE, RunningSimulator, basic_auth, start_simulator

__all__ = [
    "AS_OF",
    "FAST_RETRIES",
    "TIMEZONE",
    "LoopbackServer",
    "RunningSimulator",
    "SeenRequest",
    "basic_auth",
    "connection_json",
    "start_simulator",
]

# Retries in tests wait milliseconds, not seconds.
FAST_RETRIES = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 that misbehaves as a test scripts it: `respond` answers
    each request through the handler. Every request it receives is kept in `seen`."""

    respond: Callable[[BaseHTTPRequestHandler], None]
    seen: list[SeenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append(
                    SeenRequest(self.command, self.path, dict(self.headers.items()), body)
                )
                server.respond(self)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> LoopbackServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def connection_json(
    sim: RunningSimulator | LoopbackServer, *, auth: str = "basic", **extra: Any
) -> str:
    """A `neo` connection to `sim` in Airflow's JSON form, as AIRFLOW_CONN_* takes it."""
    parts = urlsplit(sim.url)
    conn: dict[str, Any] = {
        "conn_type": "neo",
        "host": parts.hostname,
        "port": parts.port,
        "schema": parts.scheme,
    }
    oauth = {"oauth_client_key": DEFAULT_OAUTH_KEY, "oauth_client_secret": DEFAULT_OAUTH_SECRET}
    if auth == "basic":
        conn |= {"login": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}
    conn["extra"] = {
        "timezone": TIMEZONE,
        "auth_type": auth,
        **FAST_RETRIES,
        **(oauth if auth == "oauth" else {}),
        **extra,
    }
    return json.dumps(conn)
