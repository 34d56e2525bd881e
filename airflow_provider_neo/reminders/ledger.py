"""The sent-ledger: which reminders went out, shared by every runner that may deliver them.

A reminder is *claimed* in one atomic statement before its message goes out, and marked *sent*
once the server accepted it. A claim carries its owner (the task try) and a lease: while the
lease runs, no other runner sends that reminder; when it has run out without "sent" (its owner
died), the next runner takes the claim over. Leases are timed on the database's clock, so the
hosts' clocks do not matter. A reminder the far side refused for good (an address it cannot
take) is marked *failed* with the reason: the retries of the delivery that met the refusal leave
it alone, and a later delivery (a new run, or the task cleared) claims it again.

Two homes, one schema: SQLite for one machine (a local file, the default), or any database an
Airflow connection reaches through SQLAlchemy (PostgreSQL for deployments with several hosts).
The ledger also records which expiry days a run has reminded completely, so that a later run can
catch up the days a failed or skipped run left out, and the points each reminder had at stake, with
the customers of the holdout (state ``held_out``: recorded, never messaged), so that the points
saved by reminding can be measured afterwards (`stakes`).

A ledger is marked as one by a metadata table (its format and version). An empty file or
database becomes a ledger; ledgers of earlier releases are adopted; anything else is refused,
naming the param, and left as it is. `prune` forgets the reminders of expiry days long past
(retention); those days are closed from then on: a reminder of one is never claimed again.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

REMINDERS_TABLE = "neo_reminder_ledger"
DAYS_TABLE = "neo_reminder_days"
META_TABLE = "neo_reminder_ledger_meta"
EXPIRY_INDEX = "neo_reminder_ledger_expiry"
DEFAULT_LEASE_SECONDS = 60.0
# What the metadata table says of a sent-ledger. Version 1 is the layout before the table
# existed (adopted when opened); 2 adds failed reminders and retention.
LEDGER_FORMAT: Final = "airflow-provider-neo sent-ledger"
FORMAT_VERSION: Final = 2
MAX_REASON = 500  # characters of a failure's reason kept in the ledger

# Seconds since the epoch on the database's own clock.
_NOW = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "extract(epoch from clock_timestamp())",
}
_V1_REMINDER_COLUMNS: Final = frozenset(
    {"reminder_key", "customer_id", "expiry_date", "lead_days", "channel", "state", "owner",
     "lease_until", "attempts", "claimed_at", "sent_at"}
)  # fmt: skip
# Columns added since, with their type: a ledger that lacks them gains them when opened.
_ADDED_REMINDER_COLUMNS: Final = {
    "points_at_stake": "TEXT",
    "failure": "TEXT",
    "failed_series": "VARCHAR(500)",
}
_DAY_COLUMNS: Final = frozenset({"lead_days", "expiry_date", "run_id", "reminded_at"})
_META_COLUMNS: Final = frozenset({"name", "value"})
# The ledger of the first releases: sent keys only, in a SQLite table `sent`.
_LEGACY_SENT_COLUMNS: Final = frozenset(
    {"key", "customer_id", "expiry_date", "lead_days", "channel", "sent_at"}
)


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  # ours now: send it, then mark it sent
    TAKEN_OVER = "taken_over"  # ours now, after an earlier owner's lease ran out unsent
    RETRIED = "retried"  # ours now: an earlier delivery's far side refused it for good
    SENT = "sent"  # already delivered: nothing to do
    HELD = "held"  # another runner's live claim: leave it to that runner until the lease ends
    HELD_OUT = "held_out"  # in the holdout: recorded, never sent
    FAILED = "failed"  # refused for good earlier in this delivery's series of tries: not again
    PRUNED = "pruned"  # its expiry day was pruned: the ledger no longer knows, so never sent


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
    reason: str = ""  # why the far side refused a FAILED reminder


class Pruned(msgspec.Struct, frozen=True, kw_only=True):
    """What one `prune` forgot: reminders of expiry days before `before` and reminded days."""

    before: dt.date
    reminders: int
    days: int


class LedgerLocationError(ValueError):
    pass


class SentLedger:
    """``ledger = SentLedger.open(path=...)`` or ``SentLedger.open(conn_id=...)``.

    `location` names the ledger in errors, as the param that gave it (``ledger_path: '...'``).
    """

    def __init__(self, engine: Engine, location: str = "") -> None:
        self.engine = engine
        self.location = location or f"ledger {engine.url.render_as_string(hide_password=True)}"
        dialect = engine.dialect.name
        if dialect not in _NOW:
            raise LedgerLocationError(
                f"ledger_conn_id: a {dialect} database is not supported; use PostgreSQL or SQLite"
            )
        self._now = _NOW[dialect]
        self.claim_statement = _claim_statement(self._now)
        self._prepare()

    @classmethod
    def open(cls, *, path: str | Path | None = None, conn_id: str | None = None) -> SentLedger:
        """The ledger of an Airflow connection (`conn_id`), else the SQLite file at `path`."""
        if conn_id:
            engine = _connection_engine(conn_id)
            where = engine.url.render_as_string(hide_password=True)
            return cls(engine, f"ledger_conn_id: connection {conn_id!r} ({where})")
        if not path:
            raise LedgerLocationError("ledger_path: give a local file path, or ledger_conn_id")
        return cls(_sqlite_engine(path), f"ledger_path: {str(path)!r}")

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
        series: str | None = None,
    ) -> Claim:
        """Claim one reminder for `owner`, atomically: a new key, a claim whose lease ran out
        unsent (or that `owner` already holds), or a failed one that another `series` of tries
        refused (by default each owner is its own series), becomes `owner`'s; anything else is
        reported. A key of an expiry day the ledger has pruned is never claimed (`PRUNED`).
        `programs` (points at stake per program) is kept for measuring what reminders saved."""
        now = self._now
        with self.engine.begin() as db:
            row = db.execute(
                self.claim_statement,
                {
                    "key": key, "customer_id": customer_id, "lead_days": lead_days,
                    "expiry_date": expiry_date.isoformat() if expiry_date else "",
                    "channel": channel, "owner": owner, "lease": float(lease_seconds),
                    "stake": _stake_json(programs), "series": series or owner,
                },
            ).first()  # fmt: skip
            if row is not None:
                if row[1] is not None:
                    return Claim(ClaimState.RETRIED, owner)
                return Claim(ClaimState.CLAIMED if row[0] == 1 else ClaimState.TAKEN_OVER, owner)
            found = db.execute(
                sa.text(
                    f"SELECT state, owner, lease_until - {now}, failure FROM {REMINDERS_TABLE}"
                    " WHERE reminder_key = :key"
                ),
                {"key": key},
            ).first()
        if found is None:
            return Claim(ClaimState.PRUNED)
        state, holder, left, failure = found
        if state == "sent":
            return Claim(ClaimState.SENT, holder)
        if state == "held_out":
            return Claim(ClaimState.HELD_OUT, holder)
        if state == "failed":
            return Claim(ClaimState.FAILED, holder, reason=failure or "")
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
        the comparison group. False if the key was already recorded (sent, claimed or held out)
        or its expiry day was pruned: the holdout is decided by the customer id, so a key is
        never both."""
        with self.engine.begin() as db:
            result = db.execute(
                sa.text(
                    f"INSERT INTO {REMINDERS_TABLE} (reminder_key, customer_id, expiry_date,"
                    " lead_days, channel, state, owner, lease_until, attempts, claimed_at,"
                    " points_at_stake) SELECT CAST(:key AS VARCHAR(200)),"
                    " CAST(:customer_id AS BIGINT), CAST(:expiry_date AS VARCHAR(10)),"
                    " CAST(:lead_days AS INTEGER), CAST(:channel AS VARCHAR(40)), 'held_out',"
                    f" CAST(:owner AS VARCHAR(500)), 0, 0, {self._now}, CAST(:stake AS TEXT)"
                    f" WHERE {_OPEN_DAY} ON CONFLICT (reminder_key) DO NOTHING"
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
                    f"UPDATE {REMINDERS_TABLE} SET state = 'sent', sent_at = {self._now},"
                    " failure = NULL, failed_series = NULL"
                    " WHERE reminder_key = :key AND owner = :owner AND state = 'claimed'"
                ),
                {"key": key, "owner": owner},
            )
        return bool(result.rowcount)

    def mark_failed(self, key: str, *, owner: str, reason: str, series: str | None = None) -> bool:
        """Record that the far side refused `owner`'s message for `key` for good, and why. Claims
        of the same `series` of tries (by default: `owner` alone) leave it failed; any other
        series may claim it again. False if the claim was no longer `owner`'s."""
        with self.engine.begin() as db:
            result = db.execute(
                sa.text(
                    f"UPDATE {REMINDERS_TABLE} SET state = 'failed', failure = :reason,"
                    " failed_series = :series, lease_until = 0"
                    " WHERE reminder_key = :key AND owner = :owner AND state = 'claimed'"
                ),
                {"key": key, "owner": owner, "reason": reason[:MAX_REASON],
                 "series": series or owner},
            )  # fmt: skip
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

    def failures(self) -> dict[str, str]:
        """Every reminder refused for good and not sent since: key -> the far side's reason."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.text(
                    f"SELECT reminder_key, failure FROM {REMINDERS_TABLE} WHERE state = 'failed'"
                )
            )
            return {key: reason or "" for key, reason in rows}

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

    # --- retention ------------------------------------------------------------------------------

    def prune(self, *, before: dt.date) -> Pruned:
        """Forget what no longer serves exactly-once or measuring: every reminder whose expiry day
        is before `before` (claimed, sent, failed or held out, with its points at stake), and
        the days reminded before it except each lead time's latest (catch-up reads it to know
        that the lead time ran before). Messages without an expiry day are kept.

        Those expiry days are closed first: from then on a claim of one of their reminders is
        refused (`PRUNED`), since the ledger can no longer tell whether it went out. On
        PostgreSQL closing waits for the claims under way, so none of them can miss it."""
        with self._write() as db:
            if self.engine.dialect.name == "postgresql":
                db.execute(sa.text(f"LOCK TABLE {REMINDERS_TABLE} IN SHARE ROW EXCLUSIVE MODE"))
            db.execute(
                sa.text(
                    f"INSERT INTO {META_TABLE} (name, value) VALUES ('pruned_through', :day)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                    f" WHERE {META_TABLE}.value < excluded.value"
                ),
                {"day": (before - dt.timedelta(days=1)).isoformat()},
            )
        reminders = 0
        while True:
            with self._write() as db:
                oldest = db.execute(OLDEST_DAY_STATEMENT).scalar()
                if oldest is None or oldest >= before.isoformat():
                    break
                reminders += db.execute(PRUNE_STATEMENT, {"day": oldest}).rowcount
        with self._write() as db:
            days = db.execute(
                sa.text(
                    f"DELETE FROM {DAYS_TABLE} WHERE expiry_date < :before AND expiry_date <"
                    f" (SELECT MAX(latest.expiry_date) FROM {DAYS_TABLE} latest"
                    f" WHERE latest.lead_days = {DAYS_TABLE}.lead_days)"
                ),
                {"before": before.isoformat()},
            ).rowcount
        return Pruned(before=before, reminders=reminders, days=days)

    def pruned_through(self) -> dt.date | None:
        """The last expiry day pruned, if any: reminders of it and earlier days are closed."""
        with self.engine.connect() as db:
            value = db.execute(
                sa.text(f"SELECT value FROM {META_TABLE} WHERE name = 'pruned_through'")
            ).scalar()
        return dt.date.fromisoformat(value) if value else None

    # --- schema ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction that writes: on SQLite it takes the file's write lock when it begins,
        so that what it reads first is still true when it writes."""
        with self.engine.connect() as db:
            if self.engine.dialect.name == "sqlite":
                db.execution_options(neo_begin="BEGIN IMMEDIATE")
            with db.begin():
                yield db

    def _prepare(self) -> None:
        """Make sure the database is a sent-ledger of this release's format: create one in an
        empty database, adopt one of an earlier release, refuse anything else unchanged."""
        try:
            with self.engine.connect() as db:
                kind, detail = _ledger_kind(db)
            if kind == "current":
                return
            self._refuse_unless_ours(kind, detail)
            with self._write() as db:
                if self.engine.dialect.name == "postgresql":
                    # Runners starting together would race to create the same tables.
                    db.execute(sa.text("SELECT pg_advisory_xact_lock(8390216311)"))
                kind, detail = _ledger_kind(db)  # again, now that no other runner can change it
                self._refuse_unless_ours(kind, detail)
                if kind != "current":
                    self._build(db, adopt_legacy=kind == "legacy")
        except sa.exc.DatabaseError as error:
            raise LedgerLocationError(
                f"{self.location} cannot be used as a sent-ledger: {error.orig}"
            ) from error

    def _refuse_unless_ours(self, kind: str, detail: str) -> None:
        if kind == "foreign":
            raise LedgerLocationError(
                f"{self.location} is not a sent-ledger ({detail}); it was left unchanged. Give a"
                " new file or an empty database, or an existing sent-ledger"
            )
        if kind == "newer":
            raise LedgerLocationError(
                f"{self.location} is a sent-ledger of a newer release ({detail}); upgrade"
                " airflow-provider-neo to use it"
            )

    def _build(self, db: Connection, *, adopt_legacy: bool) -> None:
        """Create what is missing of this release's layout, keeping every row there is."""
        added = ", ".join(f"{name} {kind}" for name, kind in _ADDED_REMINDER_COLUMNS.items())
        for statement in (
            f"CREATE TABLE IF NOT EXISTS {REMINDERS_TABLE} ("
            " reminder_key VARCHAR(200) PRIMARY KEY, customer_id BIGINT NOT NULL,"
            " expiry_date VARCHAR(10) NOT NULL, lead_days INTEGER NOT NULL,"
            " channel VARCHAR(40) NOT NULL, state VARCHAR(10) NOT NULL,"
            " owner VARCHAR(500) NOT NULL, lease_until DOUBLE PRECISION NOT NULL,"
            " attempts INTEGER NOT NULL, claimed_at DOUBLE PRECISION NOT NULL,"
            f" sent_at DOUBLE PRECISION, {added})",
            f"CREATE TABLE IF NOT EXISTS {DAYS_TABLE} ("
            " lead_days INTEGER NOT NULL, expiry_date VARCHAR(10) NOT NULL,"
            " run_id VARCHAR(250) NOT NULL, reminded_at DOUBLE PRECISION NOT NULL,"
            " PRIMARY KEY (lead_days, expiry_date))",
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} ("
            " name VARCHAR(40) PRIMARY KEY, value VARCHAR(200) NOT NULL)",
        ):
            db.execute(sa.text(statement))
        # Ledgers of earlier releases gain the columns added since; their rows keep NULL.
        columns = {c["name"] for c in sa.inspect(db).get_columns(REMINDERS_TABLE)}
        for name, kind in _ADDED_REMINDER_COLUMNS.items():
            if name not in columns:
                db.execute(sa.text(f"ALTER TABLE {REMINDERS_TABLE} ADD COLUMN {name} {kind}"))
        # What `prune` and `stakes` look rows up by.
        db.execute(
            sa.text(f"CREATE INDEX IF NOT EXISTS {EXPIRY_INDEX} ON {REMINDERS_TABLE} (expiry_date)")
        )
        if adopt_legacy:
            db.execute(
                sa.text(
                    f"INSERT INTO {REMINDERS_TABLE} (reminder_key, customer_id, expiry_date,"
                    " lead_days, channel, state, owner, lease_until, attempts, claimed_at,"
                    " sent_at) SELECT key, customer_id, expiry_date, lead_days, channel, 'sent',"
                    " 'legacy', 0, 1, 0, 0 FROM sent WHERE true"
                    " ON CONFLICT (reminder_key) DO NOTHING"
                )
            )
            db.execute(sa.text("DROP TABLE sent"))
        for name, value in (("format", LEDGER_FORMAT), ("version", str(FORMAT_VERSION))):
            db.execute(
                sa.text(
                    f"INSERT INTO {META_TABLE} (name, value) VALUES (:name, :value)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ),
                {"name": name, "value": value},
            )


def _claim_statement(now: str) -> sa.TextClause:
    """`SentLedger.claim` in one statement: insert the key, or take over a claim whose lease ran
    out (or this owner's own), or a failed one of another series; found by the primary key."""
    table = REMINDERS_TABLE
    return sa.text(
        f"INSERT INTO {table} (reminder_key, customer_id, expiry_date, lead_days, channel,"
        " state, owner, lease_until, attempts, claimed_at, points_at_stake)"
        " SELECT CAST(:key AS VARCHAR(200)), CAST(:customer_id AS BIGINT),"
        " CAST(:expiry_date AS VARCHAR(10)), CAST(:lead_days AS INTEGER),"
        " CAST(:channel AS VARCHAR(40)), 'claimed', CAST(:owner AS VARCHAR(500)),"
        f" {now} + CAST(:lease AS DOUBLE PRECISION), 1, {now}, CAST(:stake AS TEXT)"
        f" WHERE {_OPEN_DAY}"
        " ON CONFLICT (reminder_key) DO UPDATE SET state = 'claimed', owner = excluded.owner,"
        " lease_until = excluded.lease_until, claimed_at = excluded.claimed_at,"
        f" attempts = {table}.attempts + 1"
        f" WHERE ({table}.state = 'claimed'"
        f" AND ({table}.lease_until < {now} OR {table}.owner = excluded.owner))"
        f" OR ({table}.state = 'failed'"
        f" AND COALESCE({table}.failed_series, '') <> CAST(:series AS VARCHAR(500)))"
        " RETURNING attempts, failure"
    )


# A reminder's expiry day is open unless the ledger has pruned it (messages without one always
# are).
_OPEN_DAY: Final = (
    f"NOT EXISTS (SELECT 1 FROM {META_TABLE} WHERE name = 'pruned_through'"
    " AND value >= CAST(:expiry_date AS VARCHAR(10)) AND CAST(:expiry_date AS VARCHAR(10)) <> '')"
)


# A prune goes one expiry day at a time, the oldest first, each day in a transaction of its own
# (SQLite has one write lock: runners claiming meanwhile wait for one day's delete at most). Both
# statements go through the expiry-day index; `expiry_date > ''` leaves out the messages without
# an expiry day.
OLDEST_DAY_STATEMENT: Final = sa.text(
    f"SELECT MIN(expiry_date) FROM {REMINDERS_TABLE} WHERE expiry_date > ''"
)
PRUNE_STATEMENT: Final = sa.text(f"DELETE FROM {REMINDERS_TABLE} WHERE expiry_date = :day")


def _ledger_kind(db: Connection) -> tuple[str, str]:
    """What the database is, read without changing it: ``current`` (a sent-ledger of this
    release), ``earlier`` (of an earlier release, to migrate), ``legacy`` (the first releases'
    SQLite table `sent`), ``empty``, ``newer`` (of a later release) or ``foreign``; and why."""
    inspector = sa.inspect(db)
    tables = {name for name in inspector.get_table_names() if not name.startswith("sqlite_")}

    def columns(table: str) -> frozenset[str]:
        return frozenset(c["name"].lower() for c in inspector.get_columns(table))

    if META_TABLE in tables:
        meta: dict[str, str] = {}
        if columns(META_TABLE) == _META_COLUMNS:
            rows = db.execute(sa.text(f"SELECT name, value FROM {META_TABLE}"))
            meta = {str(name): str(value) for name, value in rows}
        if meta.get("format") != LEDGER_FORMAT or not meta.get("version", "").isdigit():
            return "foreign", f"its table {META_TABLE} does not say it is one"
        version = int(meta["version"])
        if version > FORMAT_VERSION:
            return "newer", f"format {version}; this release reads up to {FORMAT_VERSION}"
        return ("current" if version == FORMAT_VERSION else "earlier"), ""
    if tables & {REMINDERS_TABLE, DAYS_TABLE}:
        if REMINDERS_TABLE in tables:
            have = columns(REMINDERS_TABLE)
            if (
                not _V1_REMINDER_COLUMNS
                <= have
                <= _V1_REMINDER_COLUMNS | {*_ADDED_REMINDER_COLUMNS}
            ):
                return "foreign", f"its table {REMINDERS_TABLE} has columns {sorted(have)}"
        if DAYS_TABLE in tables and columns(DAYS_TABLE) != _DAY_COLUMNS:
            return "foreign", f"its table {DAYS_TABLE} has columns {sorted(columns(DAYS_TABLE))}"
        return "earlier", ""
    legacy_home = db.dialect.name == "sqlite"  # the first releases kept their ledger there only
    if legacy_home and tables == {"sent"} and columns("sent") == _LEGACY_SENT_COLUMNS:
        return "legacy", ""
    if not tables:
        return "empty", ""
    shown = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
    return "foreign", f"it holds other tables: {shown}"


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
    if local.is_file() and local.stat().st_size:
        # Before the engine below switches the file to write-ahead logging, which would change
        # a file that is not ours.
        _refuse_unless_a_ledger_file(local, f"ledger_path: {text!r}")
    local.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{local}", connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _wal(connection: Any, _record: Any) -> None:
        # Readers never block the writer, and several processes on one host share the file.
        _use_write_ahead_log(connection)
        # Transactions begin where SQLAlchemy begins them (below), not where Python's sqlite3
        # module guesses: a transaction that reads before it writes can take the write lock first.
        connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(db: Connection) -> None:
        db.exec_driver_sql(db.get_execution_options().get("neo_begin", "BEGIN"))

    return engine


def _refuse_unless_a_ledger_file(local: Path, location: str) -> None:
    """Raise unless the SQLite file at `local` is a sent-ledger (or empty), reading it only."""
    reader = sa.create_engine(f"sqlite:///{local.resolve().as_uri()}?mode=ro&uri=true")
    try:
        with reader.connect() as db:
            kind, detail = _ledger_kind(db)
    except sa.exc.DatabaseError as error:
        raise LedgerLocationError(
            f"{location} is not a SQLite database ({error.orig}); it was left unchanged"
        ) from None
    finally:
        reader.dispose()
    if kind == "foreign":
        raise LedgerLocationError(
            f"{location} is not a sent-ledger ({detail}); it was left unchanged. Give a new file"
            " or an empty database, or an existing sent-ledger"
        )


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
