"""A simulator for tests: a seeded data set on a known day, Neo's request headers, and a handle on
the running process (its URL, its control routes and its SQLite data, the ground truth)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import requests

from airflow_provider_neo.endpoints import SCOPE_HEADER
from neo_simulator.auth import DEFAULT_PASSWORD, DEFAULT_USERNAME
from neo_simulator.process import SimulatorProcess

AS_OF: Final = dt.date(2026, 11, 21)
TIMEZONE: Final = "Asia/Kolkata"
CUSTOMERS: Final = 300
SEED: Final = 7


def basic_auth(username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD) -> str:
    digest = hashlib.md5(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


NEO_HEADERS: Final = {"Authorization": basic_auth(), SCOPE_HEADER: "global"}


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

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.process.stop()


def start_simulator(tmp_dir: Path, *args: str, customers: int = CUSTOMERS) -> RunningSimulator:
    """A simulator over the seeded data set, its SQLite file in `tmp_dir`; `args` add flags."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    db_path = tmp_dir / "neo.sqlite3"
    process = SimulatorProcess(
        [
            "--customers", str(customers), "--seed", str(SEED), "--as-of", AS_OF.isoformat(),
            "--timezone", TIMEZONE, "--db", str(db_path), *args,
        ]
    ).start()  # fmt: skip
    return RunningSimulator(url=process.url, db_path=db_path, process=process)


class SimulatorStarter:
    """Starts simulators with their own flags (faults, credentials), each in a folder of its own
    under `directory`, and stops them all on leaving the ``with`` block. They hold 20 customers
    unless told otherwise, so that a test's own simulator starts in a moment."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._started: list[RunningSimulator] = []

    def __call__(self, *args: str, customers: int = 20) -> RunningSimulator:
        sim = start_simulator(self.directory / str(len(self._started)), *args, customers=customers)
        self._started.append(sim)
        return sim

    def __enter__(self) -> SimulatorStarter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sim in self._started:
            sim.process.stop()
