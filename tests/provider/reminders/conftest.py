"""The sent-ledger's two homes, for every test of this folder that runs on both: a SQLite file
and a database of its own on the session's real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_neo.reminders.ledger import SentLedger
from deploy.servers import PostgresServer

_databases = itertools.count()

# A ledger location: (command-line flags for a runner, environment, a SentLedger opener).
Location = tuple[list[str], dict[str, str], Callable[[], SentLedger]]


@pytest.fixture(params=["sqlite", "postgresql"])
def location(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Location]:
    if request.param == "sqlite":
        path = str(tmp_path / "ledger.sqlite3")
        yield ["--ledger-path", path], {}, lambda: SentLedger.open(path=path)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    database = f"ledger_{os.getpid()}_{next(_databases)}"
    server.psql(f"CREATE DATABASE {database}")
    uri = server.url(database)
    monkeypatch.setenv("AIRFLOW_CONN_NEO_LEDGER", uri)
    yield (
        ["--ledger-conn-id", "neo_ledger"],
        {"AIRFLOW_CONN_NEO_LEDGER": uri},
        lambda: SentLedger.open(conn_id="neo_ledger"),
    )
