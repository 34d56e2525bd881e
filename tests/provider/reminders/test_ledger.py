"""The sent-ledger's promise, exactly once, proven by runners in separate processes delivering
the same reminders at once, on SQLite and on a real PostgreSQL server; and its rules (claims,
leases, the days reminded) on their own."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from airflow_provider_neo.reminders.delivery import deliver
from airflow_provider_neo.reminders.ledger import ClaimState, LedgerLocationError, SentLedger
from airflow_provider_neo.reminders.model import Reminder
from deploy.servers import PostgresServer
from tests.ledger_runner import EXPIRY_DAY, reminders

REPOSITORY = Path(__file__).resolve().parents[3]
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


def _start_runner(
    location: Location, tmp_path: Path, owner: str, count: int, *extra: str
) -> subprocess.Popen[str]:
    flags, env, _ = location
    return subprocess.Popen(
        [sys.executable, str(REPOSITORY / "tests" / "ledger_runner.py"), *flags, "--owner", owner,
         "--count", str(count), "--outbox", str(tmp_path / "outbox"), "--go", str(tmp_path / "go"),
         *extra],
        cwd=REPOSITORY, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _finish(runner: subprocess.Popen[str]) -> dict[str, int]:
    out, err = runner.communicate(timeout=240)
    assert runner.returncode == 0, err[-3000:]
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def _outbox(tmp_path: Path) -> list[tuple[str, str]]:
    lines = (tmp_path / "outbox").read_text().splitlines()
    return [(owner, key) for owner, key in (line.split(" ", 1) for line in lines)]


def test_two_runners_at_once_send_500_reminders_each_exactly_once(
    location: Location, tmp_path: Path
) -> None:
    expected = {reminder.key for reminder in reminders(500)}
    runners = [
        _start_runner(location, tmp_path, owner, 500, "--send-seconds", "0.01")
        for owner in ("runner-a", "runner-b")
    ]
    (tmp_path / "go").touch()
    counts = [_finish(runner) for runner in runners]
    sent = _outbox(tmp_path)
    per_key = Counter(key for _, key in sent)
    assert set(per_key) == expected  # none lost
    assert max(per_key.values()) == 1  # none twice
    assert {owner for owner, _ in sent} == {"runner-a", "runner-b"}  # they really competed
    assert sum(c["sent"] for c in counts) == 500
    for c in counts:  # every reminder is accounted for by each runner
        assert c["sent"] + c["already_sent"] + c["sent_by_another_runner"] == 500
    assert location[2]().sent_keys() == expected


def test_a_runner_killed_mid_send_loses_nothing_and_its_claim_is_taken_over(
    location: Location, tmp_path: Path
) -> None:
    expected = {reminder.key for reminder in reminders(60)}
    doomed = _start_runner(
        location, tmp_path, "doomed", 60, "--send-seconds", "0.01", "--die-at", "20",
        "--lease-seconds", "3",
    )  # fmt: skip
    (tmp_path / "go").touch()
    doomed.wait(timeout=120)
    assert doomed.returncode == -9
    survivor = _finish(_start_runner(location, tmp_path, "survivor", 60, "--lease-seconds", "3"))
    sent = _outbox(tmp_path)
    per_key = Counter(key for _, key in sent)
    assert set(per_key) == expected
    assert max(per_key.values()) == 1
    assert len([owner for owner, _ in sent if owner == "doomed"]) == 19
    assert survivor == {
        "sent": 41, "taken_over": 1, "already_sent": 19, "sent_by_another_runner": 0,
        "lease_lost": 0, "suppressed": 0, "held_out": 0,
    }  # fmt: skip


def _reminder(customer_id: int) -> Reminder:
    (reminder,) = reminders(1)
    return msgspec.structs.replace(reminder, customer_id=customer_id)


def test_a_live_claim_of_another_runner_is_waited_for_not_sent(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    first, second = _reminder(1), _reminder(2)
    claim = ledger.claim(
        first.key, owner="other", customer_id=1, expiry_date=EXPIRY_DAY, lead_days=30,
        channel="email", lease_seconds=30,
    )  # fmt: skip
    assert claim.state is ClaimState.CLAIMED
    sent: list[str] = []
    pauses: list[float] = []

    def other_runner_finishes(seconds: float) -> None:
        pauses.append(seconds)
        assert ledger.mark_sent(first.key, owner="other")

    done = deliver(
        [first, second], ledger, lambda r: sent.append(r.key), owner="me",
        sleep=other_runner_finishes,
    )  # fmt: skip
    assert sent == [second.key]
    assert done.sent == 1
    assert done.sent_by_another_runner == 1
    assert len(pauses) == 1
    assert 0 < pauses[0] <= 1.0


def test_a_failed_send_gives_its_claim_up_for_the_retry(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    reminder = _reminder(3)

    def refuse(_: Reminder) -> None:
        raise ConnectionRefusedError("451 try again later")

    with pytest.raises(ConnectionRefusedError):
        deliver([reminder], ledger, refuse, owner="try-1", lease_seconds=600)
    sent: list[str] = []
    done = deliver([reminder], ledger, lambda r: sent.append(r.key), owner="try-2")
    assert sent == [reminder.key]
    assert (done.sent, done.taken_over) == (1, 1)
    assert (
        deliver([reminder], ledger, lambda r: sent.append(r.key), owner="try-3").already_sent == 1
    )


def test_a_ledger_written_before_claims_keeps_its_sent_reminders(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE sent (key TEXT PRIMARY KEY, customer_id INTEGER NOT NULL,"
            " expiry_date TEXT NOT NULL, lead_days INTEGER NOT NULL, channel TEXT NOT NULL,"
            " sent_at TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO sent VALUES (?, 5, ?, 30, 'email', '2026-11-20T00:00:00')",
            (_reminder(5).key, EXPIRY_DAY.isoformat()),
        )
    ledger = SentLedger.open(path=path)
    assert ledger.sent_keys() == {_reminder(5).key}
    sent: list[str] = []
    assert deliver([_reminder(5)], ledger, lambda r: sent.append(r.key), owner="x").already_sent
    assert sent == []


def _open_at_once(path: str, barrier: Any, failures: Any) -> None:
    barrier.wait()
    try:
        SentLedger.open(path=path).close()
    except Exception as error:  # reported to the test, which names it
        failures.put(f"{type(error).__name__}: {error}")


def test_runners_opening_one_new_sqlite_ledger_at_the_same_instant_all_get_in(
    tmp_path: Path,
) -> None:
    # Mapped shards start together: the first connections to a new file race to switch it to
    # write-ahead logging, which SQLite refuses at once ("database is locked") to all but one.
    fork = multiprocessing.get_context("fork")
    failures = fork.Queue()
    for attempt in range(16):
        path = str(tmp_path / f"ledger-{attempt}.sqlite3")
        barrier = fork.Barrier(6)
        openers = [
            fork.Process(target=_open_at_once, args=(path, barrier, failures)) for _ in range(6)
        ]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(timeout=120)
        assert [opener.exitcode for opener in openers] == [0] * 6
    reported = []
    while not failures.empty():
        reported.append(failures.get())
    assert reported == []


@pytest.mark.parametrize("path", ["s3://bucket/ledger.sqlite3", "gs://b/l.db"])
def test_an_object_storage_ledger_path_is_refused_naming_the_param(path: str) -> None:
    with pytest.raises(LedgerLocationError, match=r"^ledger_path: .*ledger_conn_id"):
        SentLedger.open(path=path)


def test_a_non_database_connection_is_refused_naming_the_param(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOT_A_DB", '{"conn_type": "neo", "host": "example.com"}')
    monkeypatch.setenv("AIRFLOW_CONN_UNKNOWN", '{"conn_type": "gopher", "host": "example.com"}')
    for conn_id in ("not_a_db", "unknown"):
        with pytest.raises(LedgerLocationError, match=r"^ledger_conn_id: .*not a database"):
            SentLedger.open(conn_id=conn_id)


def test_the_ledger_command_prepares_a_postgresql_ledger_twice_over(
    postgres: PostgresServer,
) -> None:
    database = f"neo_ledger_cli_{os.getpid()}"
    env = {**os.environ, "AIRFLOW_CONN_NEO_LEDGER": postgres.url(database)}
    command = [
        sys.executable,
        "-m",
        "airflow_provider_neo.reminders.ledger",
        "--conn-id",
        "neo_ledger",
    ]
    for _ in range(2):  # idempotent: a deployment runs it at every start
        done = subprocess.run(
            [*command, "--create-database"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        where = rf"Sent-ledger ready in postgresql(\+\w+)?://postgres@127\.0\.0\.1:{postgres.port}/"
        assert re.search(where + database + "$", done.stdout.strip()), done.stdout
    engine = sa.create_engine(postgres.url(database))
    with engine.connect() as db:
        tables = {
            row[0]
            for row in db.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        }
    engine.dispose()
    assert tables == {"neo_reminder_ledger", "neo_reminder_days"}
