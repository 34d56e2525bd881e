"""The sent-ledger: which reminders went out, shared by every runner that may deliver them.

A reminder is *claimed* in one atomic statement before its message goes out, and marked *sent*
once the server accepted it. A claim carries its owner (the task try) and a lease: while the
lease runs, no other runner sends that reminder; when it has run out without "sent" (its owner
died), the next runner takes the claim over. Leases are timed on the database's clock, so the
hosts' clocks do not matter.

Two homes, one schema: SQLite for one machine (a local file, the default), or any database an
Airflow connection reaches through SQLAlchemy (PostgreSQL for deployments with several hosts).
The ledger also records which expiry days a run has reminded completely, so that a later run can
catch up the days a failed or skipped run left out, and the points each reminder had at stake, with
the customers of the holdout (state ``held_out``: recorded, never messaged), so that the points
saved by reminding can be measured afterwards (`stakes`).

Prepare a PostgreSQL ledger ahead of the first run (the database too, if the connection's user
may create it):
``python -m airflow_provider_neo.reminders.ledger --conn-id neo_ledger --create-database``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

REMINDERS_TABLE = "neo_reminder_ledger"
DAYS_TABLE = "neo_reminder_days"
DEFAULT_LEASE_SECONDS = 60.0

# Seconds since the epoch on the database's own clock.
_NOW = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "extract(epoch from clock_timestamp())",
}


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  # ours now: send it, then mark it sent
    TAKEN_OVER = "taken_over"  # ours now, after an earlier owner's lease ran out unsent
    SENT = "sent"  # already delivered: nothing to do
    HELD = "held"  # another runner's live claim: leave it to that runner until the lease ends
    HELD_OUT = "held_out"  # in the holdout: recorded, never sent


class Stake(msgspec.Struct, frozen=True, kw_only=True):
    """A reminder as the ledger keeps it for measuring: who, which expiry day and lead time, the
    points at stake per program when it was found, and whether it was sent or held out."""

    key: str
    customer_id: int
    expiry_date: dt.date
    lead_days: int
    held_out: bool
    programs: dict[str, Decimal]


class Claim(msgspec.Struct, frozen=True):
    state: ClaimState
    owner: str = ""
    lease_left: float = 0.0  # seconds until a held claim may be taken over


class LedgerLocationError(ValueError):
    pass


class SentLedger:
    """``ledger = SentLedger.open(path=...)`` or ``SentLedger.open(conn_id=...)``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        if dialect not in _NOW:
            raise LedgerLocationError(
                f"ledger_conn_id: a {dialect} database is not supported; use PostgreSQL or SQLite"
            )
        self._now = _NOW[dialect]
        self._create_tables()

    @classmethod
    def open(cls, *, path: str | Path | None = None, conn_id: str | None = None) -> SentLedger:
        """The ledger of an Airflow connection (`conn_id`), else the SQLite file at `path`."""
        if conn_id:
            return cls(_connection_engine(conn_id))
        if not path:
            raise LedgerLocationError("ledger_path: give a local file path, or ledger_conn_id")
        return cls(_sqlite_engine(path))

    def close(self) -> None:
        self.engine.dispose()

    # --- reminders ------------------------------------------------------------------------------

    def claim(
        self,
        key: str,
        *,
        owner: str,
        customer_id: int,
        channel: str,
        expiry_date: dt.date | None = None,
        lead_days: int = 0,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        programs: dict[str, Decimal] | None = None,
    ) -> Claim:
        """Claim one reminder for `owner`, atomically: a new key, or a claim whose lease ran out
        unsent (or that `owner` already holds), becomes `owner`'s; anything else is reported.
        `programs` (points at stake per program) is kept for measuring what reminders saved."""
        now, table = self._now, REMINDERS_TABLE
        claimed = sa.text(
            f"INSERT INTO {table} (reminder_key, customer_id, expiry_date, lead_days, channel,"
            " state, owner, lease_until, attempts, claimed_at, points_at_stake)"
            " VALUES (:key, :customer_id, :expiry_date, :lead_days, :channel, 'claimed', :owner,"
            f" {now} + :lease, 1, {now}, :stake)"
            " ON CONFLICT (reminder_key) DO UPDATE SET owner = excluded.owner,"
            " lease_until = excluded.lease_until, claimed_at = excluded.claimed_at,"
            f" attempts = {table}.attempts + 1"
            f" WHERE {table}.state = 'claimed'"
            f" AND ({table}.lease_until < {now} OR {table}.owner = excluded.owner)"
            " RETURNING attempts"
        )
        with self.engine.begin() as db:
            row = db.execute(
                claimed,
                {
                    "key": key, "customer_id": customer_id, "lead_days": lead_days,
                    "expiry_date": expiry_date.isoformat() if expiry_date else "",
                    "channel": channel, "owner": owner, "lease": float(lease_seconds),
                    "stake": _stake_json(programs),
                },
            ).first()  # fmt: skip
            if row is not None:
                return Claim(ClaimState.CLAIMED if row[0] == 1 else ClaimState.TAKEN_OVER, owner)
            state, holder, left = db.execute(
                sa.text(
                    f"SELECT state, owner, lease_until - {now} FROM {REMINDERS_TABLE}"
                    " WHERE reminder_key = :key"
                ),
                {"key": key},
            ).one()
        if state == "sent":
            return Claim(ClaimState.SENT, holder)
        if state == "held_out":
            return Claim(ClaimState.HELD_OUT, holder)
        return Claim(ClaimState.HELD, holder, max(float(left), 0.0))

    def hold_out(
        self,
        key: str,
        *,
        owner: str,
        customer_id: int,
        channel: str,
        expiry_date: dt.date | None = None,
        lead_days: int = 0,
        programs: dict[str, Decimal] | None = None,
    ) -> bool:
        """Record a reminder of the holdout: never to be sent, kept with its points at stake as
        the comparison group. False if the key was already recorded (sent, claimed or held out):
        the holdout is decided by the customer id, so a key is never both."""
        with self.engine.begin() as db:
            result = db.execute(
                sa.text(
                    f"INSERT INTO {REMINDERS_TABLE} (reminder_key, customer_id, expiry_date,"
                    " lead_days, channel, state, owner, lease_until, attempts, claimed_at,"
                    " points_at_stake) VALUES (:key, :customer_id, :expiry_date, :lead_days,"
                    f" :channel, 'held_out', :owner, 0, 0, {self._now}, :stake)"
                    " ON CONFLICT (reminder_key) DO NOTHING"
                ),
                {
                    "key": key, "customer_id": customer_id, "lead_days": lead_days,
                    "expiry_date": expiry_date.isoformat() if expiry_date else "",
                    "channel": channel, "owner": owner, "stake": _stake_json(programs),
                },
            )  # fmt: skip
        return bool(result.rowcount)

    def stakes(self, *, expiring_before: dt.date) -> list[Stake]:
        """Reminders sent or held out whose expiry day is before `expiring_before`, with the
        points they had at stake (rows written before stakes were recorded are left out)."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.text(
                    "SELECT reminder_key, customer_id, expiry_date, lead_days, state,"
                    f" points_at_stake FROM {REMINDERS_TABLE}"
                    " WHERE state IN ('sent', 'held_out') AND points_at_stake IS NOT NULL"
                    " AND expiry_date <> '' AND expiry_date < :before ORDER BY reminder_key"
                ),
                {"before": expiring_before.isoformat()},
            )
            return [
                Stake(
                    key=key, customer_id=int(customer_id),
                    expiry_date=dt.date.fromisoformat(expiry_date), lead_days=int(lead_days),
                    held_out=state == "held_out",
                    programs={k: Decimal(v) for k, v in json.loads(stake).items()},
                )
                for key, customer_id, expiry_date, lead_days, state, stake in rows
            ]  # fmt: skip

    def mark_sent(self, key: str, *, owner: str) -> bool:
        """Record that `owner`'s message for `key` was accepted. False if the claim was no longer
        `owner`'s (its lease ran out mid-send and another runner took it over)."""
        with self.engine.begin() as db:
            result = db.execute(
                sa.text(
                    f"UPDATE {REMINDERS_TABLE} SET state = 'sent', sent_at = {self._now}"
                    " WHERE reminder_key = :key AND owner = :owner AND state = 'claimed'"
                ),
                {"key": key, "owner": owner},
            )
        return bool(result.rowcount)

    def release(self, key: str, *, owner: str) -> None:
        """Give up `owner`'s claim at once (its send failed), so a retry need not wait out the
        lease."""
        with self.engine.begin() as db:
            db.execute(
                sa.text(
                    f"UPDATE {REMINDERS_TABLE} SET lease_until = 0"
                    " WHERE reminder_key = :key AND owner = :owner AND state = 'claimed'"
                ),
                {"key": key, "owner": owner},
            )

    def sent_keys(self) -> set[str]:
        with self.engine.connect() as db:
            rows = db.execute(
                sa.text(f"SELECT reminder_key FROM {REMINDERS_TABLE} WHERE state = 'sent'")
            )
            return {row[0] for row in rows}

    # --- expiry days reminded completely ----------------------------------------------------------

    def mark_days_reminded(self, days: Iterable[tuple[int, dt.date]], run_id: str) -> None:
        """Record (lead time, expiry day) pairs whose reminders every shard delivered."""
        rows = [
            {"lead": lead, "day": day.isoformat(), "run_id": run_id} for lead, day in sorted(days)
        ]
        if not rows:
            return
        with self.engine.begin() as db:
            db.execute(
                sa.text(
                    f"INSERT INTO {DAYS_TABLE} (lead_days, expiry_date, run_id, reminded_at)"
                    f" VALUES (:lead, :day, :run_id, {self._now})"
                    " ON CONFLICT (lead_days, expiry_date) DO NOTHING"
                ),
                rows,
            )

    def days_reminded(self, lead_days: int, since: dt.date, until: dt.date) -> set[dt.date]:
        with self.engine.connect() as db:
            rows = db.execute(
                sa.text(
                    f"SELECT expiry_date FROM {DAYS_TABLE} WHERE lead_days = :lead"
                    " AND expiry_date BETWEEN :since AND :until"
                ),
                {"lead": lead_days, "since": since.isoformat(), "until": until.isoformat()},
            )
            return {dt.date.fromisoformat(row[0]) for row in rows}

    def last_day_reminded(self, lead_days: int, before: dt.date) -> dt.date | None:
        with self.engine.connect() as db:
            value = db.execute(
                sa.text(
                    f"SELECT MAX(expiry_date) FROM {DAYS_TABLE} WHERE lead_days = :lead"
                    " AND expiry_date < :before"
                ),
                {"lead": lead_days, "before": before.isoformat()},
            ).scalar()
        return dt.date.fromisoformat(value) if value else None

    # --- schema ---------------------------------------------------------------------------------

    def _create_tables(self) -> None:
        statements = [
            f"CREATE TABLE IF NOT EXISTS {REMINDERS_TABLE} ("
            " reminder_key VARCHAR(200) PRIMARY KEY, customer_id BIGINT NOT NULL,"
            " expiry_date VARCHAR(10) NOT NULL, lead_days INTEGER NOT NULL,"
            " channel VARCHAR(40) NOT NULL, state VARCHAR(10) NOT NULL,"
            " owner VARCHAR(500) NOT NULL, lease_until DOUBLE PRECISION NOT NULL,"
            " attempts INTEGER NOT NULL, claimed_at DOUBLE PRECISION NOT NULL,"
            " sent_at DOUBLE PRECISION, points_at_stake TEXT)",
            f"CREATE TABLE IF NOT EXISTS {DAYS_TABLE} ("
            " lead_days INTEGER NOT NULL, expiry_date VARCHAR(10) NOT NULL,"
            " run_id VARCHAR(250) NOT NULL, reminded_at DOUBLE PRECISION NOT NULL,"
            " PRIMARY KEY (lead_days, expiry_date))",
        ]
        with self.engine.begin() as db:
            if self.engine.dialect.name == "postgresql":
                # Runners starting together would race to create the same tables.
                db.execute(sa.text("SELECT pg_advisory_xact_lock(8390216311)"))
            for statement in statements:
                db.execute(sa.text(statement))
            # Ledgers written before stakes were recorded gain the column; their rows keep NULL.
            columns = {c["name"] for c in sa.inspect(db).get_columns(REMINDERS_TABLE)}
            if "points_at_stake" not in columns:
                add = f"ALTER TABLE {REMINDERS_TABLE} ADD COLUMN points_at_stake TEXT"
                db.execute(sa.text(add))
            if self.engine.dialect.name == "sqlite":
                self._adopt_legacy_sqlite_ledger(db)

    def _adopt_legacy_sqlite_ledger(self, db: Connection) -> None:
        """Ledgers written before claims existed kept only sent keys in a table `sent`."""
        legacy = db.execute(
            sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sent'")
        ).first()
        if legacy is None:
            return
        db.execute(
            sa.text(
                f"INSERT INTO {REMINDERS_TABLE} SELECT key, customer_id, expiry_date, lead_days,"
                " channel, 'sent', 'legacy', 0, 1, 0, 0, NULL FROM sent WHERE true"
                " ON CONFLICT (reminder_key) DO NOTHING"
            )
        )
        db.execute(sa.text("DROP TABLE sent"))


def _stake_json(programs: dict[str, Decimal] | None) -> str | None:
    """Points at stake per program as exact decimal text (JSON), or None when not known."""
    if programs is None:
        return None
    return json.dumps({program: str(points) for program, points in sorted(programs.items())})


def _sqlite_engine(path: str | Path) -> Engine:
    text = str(path)
    scheme, separator, rest = text.partition("://")
    if separator and scheme != "file":
        raise LedgerLocationError(
            f"ledger_path: {text!r} is not a local file; a ledger that several hosts share lives in"
            " a database: set ledger_conn_id to an Airflow connection (e.g. PostgreSQL) instead"
        )
    local = Path(rest if separator else text)
    local.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{local}", connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _wal(connection: Any, _record: Any) -> None:
        # Readers never block the writer, and several processes on one host share the file.
        _use_write_ahead_log(connection)

    return engine


def _use_write_ahead_log(connection: Any, patience_seconds: float = 60.0) -> None:
    """Switch a SQLite file to WAL once; the mode is stored in the file and outlives connections.

    Switching takes an exclusive lock and SQLite answers "database is locked" at once, without
    its busy timeout, while another process opens the same new file; so retry until it is done,
    by this process or by the other.
    """
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _connection_engine(conn_id: str) -> Engine:
    from airflow.providers.common.compat.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    not_a_database = LedgerLocationError(
        f"ledger_conn_id: connection {conn_id!r} (type {connection.conn_type!r}) is not a database"
        " connection that SQLAlchemy reaches; use a PostgreSQL connection"
    )
    try:
        hook = connection.get_hook()
    except Exception as error:  # Airflow raises its own exception for an unknown type
        raise not_a_database from error
    engine_of = getattr(hook, "get_sqlalchemy_engine", None)
    if engine_of is None:
        raise not_a_database
    return engine_of()  # type: ignore[no-any-return]


def create_database(conn_id: str) -> None:
    """Create the PostgreSQL database of connection `conn_id` unless it exists."""
    url = _connection_engine(conn_id).url
    if url.get_backend_name() != "postgresql" or not url.database:
        raise LedgerLocationError(
            f"ledger_conn_id: --create-database needs a PostgreSQL connection naming its database,"
            f" got {url.render_as_string(hide_password=True)}"
        )
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as db:
            exists = db.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists is None:
                quoted = server.dialect.identifier_preparer.quote(url.database)
                db.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        server.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_neo.reminders.ledger",
        description="Prepare the reminders' sent-ledger in the database of an Airflow connection.",
    )
    parser.add_argument("--conn-id", required=True, help="an Airflow connection to the database")
    parser.add_argument(
        "--create-database", action="store_true", help="create the database if it is missing"
    )
    args = parser.parse_args(argv)
    if args.create_database:
        create_database(args.conn_id)
    ledger = SentLedger.open(conn_id=args.conn_id)
    where = ledger.engine.url.render_as_string(hide_password=True)
    ledger.close()
    print(f"Sent-ledger ready in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
