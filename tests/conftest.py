"""Shared fixtures: a real simulator process on loopback, real PostgreSQL and Redis servers, and
the `neo` connection to a simulator. Tests in tests/e2e/ are marked `e2e`; tests/compat/ runs
only with ``--airflow-venv`` (the compatibility matrix)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Airflow reads its home at import; keep it out of the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neo-airflow-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from deploy.servers import PostgresServer, RedisServer
from neo_simulator.testing import SimulatorStarter
from tests.harness import LoopbackServer, RunningSimulator, connection_json, start_simulator

E2E = Path(__file__).parent / "e2e"
COMPAT = Path(__file__).parent / "compat"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--airflow-venv",
        help="run tests/compat against the Airflow release installed in this venv (make compat)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/compat needs a release's venv: it runs only when given one."""
    if collection_path == COMPAT and not config.getoption("--airflow-venv"):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """One fault-free simulator for the whole session; tests must not change its faults."""
    with start_simulator(tmp_path_factory.mktemp("simulator")) as sim:
        yield sim


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[SimulatorStarter]:
    """Start simulators with extra flags for one test (faults, credentials); stopped afterwards."""
    with SimulatorStarter(tmp_path) as start:
        yield start


@pytest.fixture
def neo_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Point a connection id (neo_default unless named) at a simulator; returns the id."""

    def make(
        sim: RunningSimulator | LoopbackServer, conn_id: str = "neo_default", **kwargs: Any
    ) -> str:
        value = kwargs.pop("raw", None) or connection_json(sim, **kwargs)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return make


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's), shared by the session: the multi-host ledger's home."""
    with PostgresServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server (Debian's), shared by the session: the deployment's rate budget."""
    with RedisServer() as server:
        yield server
