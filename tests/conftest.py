"""Shared fixtures: a real simulator process on loopback, and a raw HTTP client for it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_neo.simulator.auth import (
    DEFAULT_OAUTH_KEY,
    DEFAULT_OAUTH_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
)
from airflow_provider_neo.simulator.process import SimulatorProcess

# Airflow reads its home at import; keep it out of the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neo-airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

AS_OF = dt.date(2026, 11, 21)
TIMEZONE = "Asia/Kolkata"
CUSTOMERS = 300
SEED = 7


def basic_auth(username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD) -> str:
    digest = hashlib.md5(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


NEO_HEADERS = {"Authorization": basic_auth(), "x-cap-neo-dag-scope": "global"}


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


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """One fault-free simulator for the whole session; tests must not change its faults."""
    sim = start_simulator(tmp_path_factory.mktemp("simulator"))
    try:
        yield sim
    finally:
        sim.process.stop()


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Any]:
    """Start simulators with extra flags for one test (faults, credentials); stopped afterwards."""
    started: list[RunningSimulator] = []

    def start(*args: str, customers: int = 20) -> RunningSimulator:
        sim = start_simulator(tmp_path / str(len(started)), *args, customers=customers)
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.process.stop()


# Retries in tests wait milliseconds, not seconds.
FAST_RETRIES = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}


def connection_json(sim: RunningSimulator, *, auth: str = "basic", **extra: Any) -> str:
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


@pytest.fixture
def neo_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Point a connection id (neo_default unless named) at a simulator; returns the id."""

    def make(sim: RunningSimulator, conn_id: str = "neo_default", **kwargs: Any) -> str:
        value = kwargs.pop("raw", None) or connection_json(sim, **kwargs)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return make
