"""What the tests share besides fixtures: the simulator they run, its credentials, and the `neo`
connection to it. (Fixtures live in conftest.py; tests import these names from here.)"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from airflow_provider_neo.endpoints import SCOPE_HEADER
from neo_simulator.auth import (
    DEFAULT_OAUTH_KEY,
    DEFAULT_OAUTH_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
)
from neo_simulator.process import SimulatorProcess

AS_OF = dt.date(2026, 11, 21)
TIMEZONE = "Asia/Kolkata"
CUSTOMERS = 300
SEED = 7


def basic_auth(username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD) -> str:
    digest = hashlib.md5(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


NEO_HEADERS = {"Authorization": basic_auth(), SCOPE_HEADER: "global"}


@dataclass
class RunningSimulator:
    url: str
    db_path: Path
    process: SimulatorProcess

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return requests.get(
            self.url + path,
            params=params,
            headers=NEO_HEADERS if headers is None else headers,
            timeout=30,
        )

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/__sim/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def db(self) -> sqlite3.Connection:
        """A read-only view of the simulator's data: the ground truth tests compare against."""
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)


def start_simulator(tmp_dir: Path, *args: str, customers: int = CUSTOMERS) -> RunningSimulator:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    db_path = tmp_dir / "neo.sqlite3"
    process = SimulatorProcess(
        [
            "--customers", str(customers), "--seed", str(SEED), "--as-of", AS_OF.isoformat(),
            "--timezone", TIMEZONE, "--db", str(db_path), *args,
        ]
    ).start()  # fmt: skip
    return RunningSimulator(url=process.url, db_path=db_path, process=process)


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
