"""The sent-ledger's promise, exactly once, proven by runners in separate processes delivering
the same reminders at once (also while the ledger is pruned), on SQLite and on a real PostgreSQL
server; its rules (claims, leases, failed reminders, the days reminded) on their own; and the
databases it refuses, left unchanged."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from airflow_provider_neo.reminders.channels.base import RejectedReminders
from airflow_provider_neo.reminders.delivery import FailedReminder, deliver, deliver_batches
from airflow_provider_neo.reminders.ledger import (
    FORMAT_VERSION,
    META_TABLE,
    ClaimState,
    LedgerLocationError,
    SentLedger,
)
from airflow_provider_neo.reminders.model import Reminder
from deploy.servers import PostgresServer
from tests.ledger_runner import EXPIRY_DAY, reminders
from tests.provider.reminders.conftest import Location

REPOSITORY = Path(__file__).resolve().parents[3]


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
        "lease_lost": 0, "suppressed": 0, "held_out": 0, "failed": 0, "pruned": 0,
        "failed_reminders": [],
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
    assert tables == {"neo_reminder_ledger", "neo_reminder_days", "neo_reminder_ledger_meta"}


def test_runners_re_delivering_a_day_while_it_is_pruned_never_send_it_again(
    location: Location, tmp_path: Path
) -> None:
    """A prune closes the day before it deletes it: runners claiming its reminders at that very
    moment find them sent, or closed, never gone."""
    ledger = location[2]()
    first = deliver(reminders(300), ledger, lambda r: None, owner="yesterday")
    assert first.sent == 300
    runners = [_start_runner(location, tmp_path, owner, 300) for owner in ("rerun-a", "rerun-b")]
    pruner = _start_runner(
        location,
        tmp_path,
        "pruner",
        0,
        "--prune-before",
        (EXPIRY_DAY + dt.timedelta(1)).isoformat(),
    )
    (tmp_path / "go").touch()
    counts = [_finish(runner) for runner in runners]
    assert _finish(pruner) == {"reminders": 300, "days": 0}
    assert not (tmp_path / "outbox").exists()  # nothing sent a second time
    for c in counts:
        assert c["already_sent"] + c["pruned"] == 300
        assert c["sent"] == 0
    assert ledger.sent_keys() == set()
    assert ledger.pruned_through() == EXPIRY_DAY


def _refusing(refused: set[str], sent: list[str]) -> Callable[[list[Reminder]], None]:
    """A far side that takes every reminder of a batch but those of `refused`, which it refuses
    for good, as a mail server answers 550 to an unknown address."""

    def send(batch: list[Reminder]) -> None:
        sent.extend(r.key for r in batch if r.key not in refused)
        reasons = {r.key: "550 5.1.1 no such mailbox" for r in batch if r.key in refused}
        if reasons:
            raise RejectedReminders(reasons)

    return send


def test_a_refused_reminder_fails_alone_and_only_a_new_series_of_tries_sends_it(
    location: Location,
) -> None:
    ledger = location[2]()
    batch = reminders(7)
    bad = batch[3].key
    sent: list[str] = []
    done = deliver_batches(
        batch, ledger, _refusing({bad}, sent), batch_size=3, owner="run-1/try-1", series="run-1"
    )
    assert sorted(sent) == sorted(r.key for r in batch if r.key != bad)  # the rest delivered
    assert (done.sent, done.failed) == (6, 1)
    assert done.failed_reminders == [FailedReminder(bad, "550 5.1.1 no such mailbox")]
    assert ledger.failures() == {bad: "550 5.1.1 no such mailbox"}
    # The task's retry (another try of the same series) leaves it alone, and still names it.
    retry = deliver_batches(
        batch, ledger, _refusing(set(), sent), batch_size=3, owner="run-1/try-2", series="run-1"
    )
    assert (retry.sent, retry.already_sent, retry.failed) == (0, 6, 1)
    assert retry.failed_reminders == [FailedReminder(bad, "550 5.1.1 no such mailbox")]
    assert len(sent) == 6
    # The address fixed, a new run sends exactly that one; a further run, nothing.
    rerun = deliver_batches(
        batch, ledger, _refusing(set(), sent), batch_size=3, owner="run-2/try-1", series="run-2"
    )
    assert (rerun.sent, rerun.already_sent, rerun.failed, rerun.taken_over) == (1, 6, 0, 0)
    assert sent[6:] == [bad]
    assert ledger.failures() == {}
    assert ledger.sent_keys() == {r.key for r in batch}
    again = deliver_batches(
        batch, ledger, _refusing(set(), sent), batch_size=3, owner="run-3/try-1", series="run-3"
    )
    assert (again.sent, again.already_sent) == (0, 7)


def test_a_transient_failure_releases_its_batch_and_keeps_earlier_refusals(
    location: Location,
) -> None:
    ledger = location[2]()
    batch = reminders(6)
    bad = batch[0].key
    sent: list[str] = []
    calls = 0

    def refuse_then_break(chunk: list[Reminder]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionResetError("the mail server went away")
        _refusing({bad}, sent)(chunk)

    with pytest.raises(ConnectionResetError):
        deliver_batches(batch, ledger, refuse_then_break, batch_size=2, owner="t1", series="r1")
    assert sent == [batch[1].key]
    retry = deliver_batches(
        batch, ledger, _refusing(set(), sent), batch_size=2, owner="t2", series="r1"
    )
    assert sorted(sent) == sorted(r.key for r in batch[1:])  # each once; the refused one never
    assert (retry.sent, retry.already_sent, retry.failed) == (4, 1, 1)


def test_the_failed_reminders_listed_are_bounded_but_all_are_counted(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    batch = reminders(150)

    def refuse_all(chunk: list[Reminder]) -> None:
        raise RejectedReminders({r.key: "550 " + "x" * 1000 for r in chunk})

    done = deliver_batches(batch, ledger, refuse_all, batch_size=50, owner="t1")
    assert done.failed == 150
    assert len(done.failed_reminders) == 100
    assert {len(f.reason) for f in done.failed_reminders} == {200}
    assert len(ledger.failures()) == 150
    assert {len(reason) for reason in ledger.failures().values()} == {500}


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


FOREIGN_SQLITE = {
    # Another application's mail log, with a table `sent` shaped as the first releases' ledger.
    "a sent table among others": [
        "CREATE TABLE sent (key TEXT PRIMARY KEY, customer_id INTEGER, expiry_date TEXT,"
        " lead_days INTEGER, channel TEXT, sent_at TEXT)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)",
        "INSERT INTO sent VALUES ('a', 1, '2026-01-01', 7, 'email', 'x')",
        "INSERT INTO orders VALUES (1, 9.5)",
    ],
    "a sent table of its own shape": [
        "CREATE TABLE sent (id INTEGER PRIMARY KEY, recipient TEXT, body TEXT)",
        "INSERT INTO sent VALUES (1, 'a@example.com', 'hello')",
    ],
    "a table with the ledger's name": [
        "CREATE TABLE neo_reminder_ledger (reminder_key TEXT PRIMARY KEY, note TEXT)",
        "INSERT INTO neo_reminder_ledger VALUES ('k', 'n')",
    ],
    "a metadata table of another format": [
        f"CREATE TABLE {META_TABLE} (name VARCHAR(40) PRIMARY KEY, value VARCHAR(200))",
        f"INSERT INTO {META_TABLE} VALUES ('format', 'something else')",
    ],
}


@pytest.mark.parametrize("statements", FOREIGN_SQLITE.values(), ids=list(FOREIGN_SQLITE))
def test_another_applications_sqlite_file_is_refused_naming_ledger_path_and_left_unchanged(
    tmp_path: Path, statements: list[str]
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    path = folder / "app.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    db.close()
    before = _digest(folder)
    with pytest.raises(LedgerLocationError, match=r"^ledger_path: '.*app\.sqlite3' is not a sent-"):
        SentLedger.open(path=path)
    assert _digest(folder) == before  # not a byte changed, no journal left beside it


def test_a_file_that_is_not_a_database_is_refused_naming_ledger_path_and_left_unchanged(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "customers.csv").write_text("customer_id,email\n1,a@example.com\n" * 200)
    before = _digest(folder)
    with pytest.raises(
        LedgerLocationError, match=r"^ledger_path: '.*customers\.csv' is not a SQLite database"
    ):
        SentLedger.open(path=folder / "customers.csv")
    assert _digest(folder) == before


def test_a_postgresql_database_of_another_application_is_refused_and_left_unchanged(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"mail_app_{os.getpid()}"
    postgres.psql(f"CREATE DATABASE {database}")
    postgres.psql(
        "CREATE TABLE sent (key TEXT PRIMARY KEY, customer_id BIGINT, expiry_date TEXT,"
        " lead_days INTEGER, channel TEXT, sent_at TEXT)",
        "INSERT INTO sent VALUES ('a', 1, '2026-01-01', 7, 'email', 'x')",
        database=database,
    )
    monkeypatch.setenv("AIRFLOW_CONN_MAIL_APP", postgres.url(database))
    with pytest.raises(
        LedgerLocationError, match=r"^ledger_conn_id: connection 'mail_app' .* is not a sent-"
    ):
        SentLedger.open(conn_id="mail_app")
    engine = sa.create_engine(postgres.url(database))
    with engine.connect() as db:
        assert sa.inspect(db).get_table_names() == ["sent"]
        assert db.execute(sa.text("SELECT key FROM sent")).scalars().all() == ["a"]
    engine.dispose()


def test_an_empty_file_or_database_becomes_a_ledger_marked_as_one(location: Location) -> None:
    flags, _, open_ledger = location
    if flags[0] == "--ledger-path":
        Path(flags[1]).touch()  # an empty file is an empty SQLite database
    ledger = open_ledger()
    with ledger.engine.connect() as db:
        rows = db.execute(sa.text(f"SELECT name, value FROM {META_TABLE}")).all()
    meta = {name: value for name, value in rows}
    assert meta == {"format": "airflow-provider-neo sent-ledger", "version": str(FORMAT_VERSION)}
    ledger.close()
    open_ledger().close()  # and opens again as one


def test_a_ledger_of_a_newer_release_is_refused(location: Location) -> None:
    ledger = location[2]()
    with ledger.engine.begin() as db:
        db.execute(sa.text(f"UPDATE {META_TABLE} SET value = '99' WHERE name = 'version'"))
    ledger.close()
    with pytest.raises(LedgerLocationError, match=r"^ledger_.*newer release \(format 99"):
        location[2]()


def test_a_ledger_of_the_release_before_the_metadata_table_is_adopted_with_its_rows(
    location: Location,
) -> None:
    ledger = location[2]()
    key = reminders(1)[0].key
    with ledger.engine.begin() as db:  # as that release left it: no metadata, no failures
        for table in (META_TABLE, "neo_reminder_days"):
            db.execute(sa.text(f"DROP TABLE {table}"))
        db.execute(sa.text("DROP INDEX neo_reminder_ledger_expiry"))
        for column in ("failure", "failed_series"):
            db.execute(sa.text(f"ALTER TABLE neo_reminder_ledger DROP COLUMN {column}"))
        db.execute(
            sa.text(
                "INSERT INTO neo_reminder_ledger VALUES (:key, 400000000, '2026-12-21', 30,"
                " 'email', 'sent', 'old', 0, 1, 0, 0, NULL)"
            ),
            {"key": key},
        )
    ledger.close()
    adopted = location[2]()
    assert adopted.sent_keys() == {key}
    sent: list[str] = []
    batch = reminders(2)
    done = deliver_batches(batch, adopted, _refusing({batch[1].key}, sent), batch_size=1, owner="n")
    assert (done.already_sent, done.failed) == (1, 1)
    adopted.close()
