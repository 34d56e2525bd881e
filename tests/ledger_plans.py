"""A sent-ledger of a realistic size, filled in one statement, and the query plans of the
statements that must stay cheap at that size: a claim and a prune's. Shared by the test that
asserts the plans use an index and by `make bench-ledger-retention`, which shows them with their
timings on millions of rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from airflow_provider_neo.reminders.ledger import (
    OLDEST_DAY_STATEMENT,
    PRUNE_STATEMENT,
    REMINDERS_TABLE,
    SentLedger,
)

FIRST_DAY = dt.date(2026, 1, 1)
FIRST_CUSTOMER = 400_000_000

# Row n: customer FIRST_CUSTOMER + n, expiry day FIRST_DAY + n * days // rows (the days in
# order, as daily runs write them), lead 30; one in ten held out, one in a thousand failed.
_FILL = {
    "postgresql": (
        f"INSERT INTO {REMINDERS_TABLE} (reminder_key, customer_id, expiry_date, lead_days,"
        " channel, state, owner, lease_until, attempts, claimed_at, sent_at, points_at_stake)"
        " SELECT (:first_customer + n)::text || ':' || day || ':' || 30, :first_customer + n, day,"
        " 30, 'email', CASE WHEN n % 1000 = 7 THEN 'failed' WHEN n % 10 = 3 THEN 'held_out'"
        " ELSE 'sent' END, 'bench', 0, 1, 0, 0, '{\"2282\": \"12.5\"}'"
        " FROM (SELECT n, to_char(CAST(:first_day AS date) + (n::bigint * :days / :rows)::int,"
        " 'YYYY-MM-DD') AS day FROM generate_series(0, :rows - 1) AS n) AS numbered"
    ),
    "sqlite": (
        "WITH RECURSIVE numbers(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM numbers"
        " WHERE n + 1 < :rows)"
        f" INSERT INTO {REMINDERS_TABLE} (reminder_key, customer_id, expiry_date, lead_days,"
        " channel, state, owner, lease_until, attempts, claimed_at, sent_at, points_at_stake)"
        " SELECT (:first_customer + n) || ':' || day || ':' || 30, :first_customer + n, day, 30,"
        " 'email', CASE WHEN n % 1000 = 7 THEN 'failed' WHEN n % 10 = 3 THEN 'held_out'"
        " ELSE 'sent' END, 'bench', 0, 1, 0, 0, '{\"2282\": \"12.5\"}'"
        " FROM (SELECT n, date(:first_day, '+' || (n * :days / :rows) || ' days') AS day"
        " FROM numbers) WHERE true"
    ),
}


def fill(ledger: SentLedger, *, rows: int, days: int) -> None:
    """`rows` reminders spread evenly over `days` expiry days from FIRST_DAY, then statistics
    gathered, as autovacuum would have done on a ledger grown day by day."""
    dialect = ledger.engine.dialect.name
    with ledger.engine.begin() as db:
        db.execute(
            sa.text(_FILL[dialect]),
            {"rows": rows, "days": days, "first_day": FIRST_DAY.isoformat(),
             "first_customer": FIRST_CUSTOMER},
        )  # fmt: skip
    with ledger.engine.begin() as db:
        db.execute(sa.text(f"ANALYZE {REMINDERS_TABLE}"))


def claim_parameters(key: str, expiry: dt.date) -> dict[str, Any]:
    """What `SentLedger.claim` binds to its statement for `key` (an existing one, here)."""
    return {
        "key": key, "customer_id": int(key.split(":")[0]), "expiry_date": expiry.isoformat(),
        "lead_days": 30, "channel": "email", "owner": "bench", "lease": 60.0, "stake": None,
        "series": "bench",
    }  # fmt: skip


def plans(ledger: SentLedger, *, analyze: bool = False) -> dict[str, str]:
    """The plans of a claim of an existing key and of a prune's two statements on the oldest
    expiry day: PostgreSQL's EXPLAIN (with ANALYZE: run, then rolled back, with timings) or
    SQLite's EXPLAIN QUERY PLAN."""
    with ledger.engine.connect() as db:
        key, day = db.execute(
            sa.text(
                f"SELECT reminder_key, expiry_date FROM {REMINDERS_TABLE} WHERE customer_id = :c"
            ),
            {"c": FIRST_CUSTOMER + 1_234},
        ).one()
    expiry = dt.date.fromisoformat(day)
    statements = {
        "claim": (ledger.claim_statement, claim_parameters(key, expiry)),
        "prune: the oldest day": (OLDEST_DAY_STATEMENT, {}),
        "prune: one day": (PRUNE_STATEMENT, {"day": FIRST_DAY.isoformat()}),
    }
    postgresql = ledger.engine.dialect.name == "postgresql"
    explain = (
        ("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ")
        if postgresql
        else ("EXPLAIN QUERY PLAN ")
    )
    shown: dict[str, str] = {}
    for name, (statement, parameters) in statements.items():
        with ledger.engine.connect() as db:
            transaction = db.begin()
            rows = db.execute(sa.text(explain + statement.text), parameters).all()
            transaction.rollback()  # EXPLAIN ANALYZE ran the statement: undo it
        shown[name] = "\n".join(" ".join(str(cell) for cell in row[-1:]) for row in rows)
    return shown
