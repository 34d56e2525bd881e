"""The sent-ledger's retention, on SQLite and on a real PostgreSQL server: a year of daily runs,
written through the ledger's own API with pinned dates, keeps the ledger bounded while every
reminder still goes out once, catch-up still works and the effectiveness report still finds
every stake it measures; and a prune and a claim go through an index at a realistic size."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from airflow_provider_neo.reminders.channels.base import RejectedReminders
from airflow_provider_neo.reminders.delivery import deliver_batches
from airflow_provider_neo.reminders.ledger import DAYS_TABLE, REMINDERS_TABLE, SentLedger
from airflow_provider_neo.reminders.model import Reminder
from airflow_provider_neo.reminders.scheduling import expiry_days_to_remind
from tests.ledger_plans import FIRST_DAY, fill, plans
from tests.provider.reminders.conftest import Location

LEADS = (30, 7, 1)
KEEP_DAYS = 30  # prune_after_days
PER_LEAD = 5  # reminders per lead time and expiry day: one held out, one refused, three sent
SKIPPED = {100, 101, 250}  # days whose run did not happen: the next run catches them up


def _reminders(lead: int, expiry: dt.date) -> list[Reminder]:
    return [
        Reminder(
            customer_id=lead * 1000 + index, email=f"c{index}@example.com", first_name="",
            lead_days=lead, expiry_date=expiry, remaining_points=Decimal(index + 1),
            programs={"2282": Decimal(index + 1)},
        )
        for index in range(PER_LEAD)
    ]  # fmt: skip


def _held_out(reminder: Reminder) -> bool:
    return reminder.customer_id % 1000 == 0


def _count(ledger: SentLedger, table: str) -> int:
    with ledger.engine.connect() as db:
        return int(db.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _vacuum(ledger: SentLedger) -> None:
    """On PostgreSQL, what autovacuum does in a deployment: make the deleted rows' room reusable
    (SQLite reuses a deleted row's pages by itself)."""
    if ledger.engine.dialect.name == "postgresql":
        with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.execute(sa.text(f"VACUUM {REMINDERS_TABLE}"))


def _size(ledger: SentLedger) -> int:
    """Bytes the reminders take: SQLite's pages in use, PostgreSQL's table and indexes."""
    with ledger.engine.connect() as db:
        if ledger.engine.dialect.name == "sqlite":
            pages = db.execute(sa.text("PRAGMA page_count")).scalar_one()
            free = db.execute(sa.text("PRAGMA freelist_count")).scalar_one()
            return int((pages - free) * db.execute(sa.text("PRAGMA page_size")).scalar_one())
        total = f"SELECT pg_total_relation_size('{REMINDERS_TABLE}')"
        return int(db.execute(sa.text(total)).scalar_one())


def test_a_year_of_daily_runs_keeps_the_ledger_bounded_and_keeps_what_is_needed(
    location: Location, tmp_path: Path
) -> None:
    ledger = location[2]()
    never_pruned = SentLedger.open(path=tmp_path / "never-pruned.sqlite3")
    sent: Counter[str] = Counter()
    written: dict[str, dt.date] = {}  # every reminder the ledger was given, and its expiry day
    stakes: dict[str, dt.date] = {}  # those sent or held out: what effectiveness measures
    rows_bound = (KEEP_DAYS + max(LEADS) + 1) * len(LEADS) * PER_LEAD
    sizes: dict[int, int] = {}

    def far_side(batch: list[Reminder]) -> None:
        refused = {r.key: "550 no such mailbox" for r in batch if r.customer_id % 1000 == 1}
        sent.update(r.key for r in batch if r.key not in refused)
        if refused:
            raise RejectedReminders(refused)

    def run(anchor: dt.date, series: str) -> tuple[dict[int, list[dt.date]], int, int]:
        plan = expiry_days_to_remind(ledger, anchor_day=anchor, lead_days=LEADS, catch_up_days=3)
        batch = [r for lead, days in plan.items() for day in days for r in _reminders(lead, day)]
        done = deliver_batches(
            batch, ledger, far_side, batch_size=4, owner=series, series=series,
            held_out=_held_out, stake=lambda r: r.programs,
        )  # fmt: skip
        for reminder in batch:
            written.setdefault(reminder.key, reminder.expiry_date)
            if reminder.customer_id % 1000 != 1:
                stakes[reminder.key] = reminder.expiry_date
        return plan, done.sent, done.pruned

    for number in range(365):
        anchor = FIRST_DAY + dt.timedelta(days=number)
        if number in SKIPPED:
            continue
        plan, _, _ = run(anchor, f"run-{number}")
        # Catch-up plans the same days as on a ledger never pruned: the lead times' own days,
        # and those the skipped runs left out.
        assert plan == expiry_days_to_remind(
            never_pruned, anchor_day=anchor, lead_days=LEADS, catch_up_days=3
        ), number
        if number - 1 in SKIPPED:
            assert len(plan[30]) > 1
        reminded = [(lead, day) for lead, days in plan.items() for day in days]
        ledger.mark_days_reminded(reminded, run_id=f"run-{number}")
        never_pruned.mark_days_reminded(reminded, run_id=f"run-{number}")
        horizon = anchor - dt.timedelta(days=KEEP_DAYS)
        ledger.prune(before=horizon)

        assert _count(ledger, REMINDERS_TABLE) <= rows_bound
        assert _count(ledger, DAYS_TABLE) <= (KEEP_DAYS + max(LEADS) + 1) * len(LEADS)
        if number % 30 == 29 and number >= 59:  # 40 days back was a day of the year
            # Effectiveness: every stake of the expiry days kept, and only those.
            measured = {s.key for s in ledger.stakes(expiring_before=anchor)}
            assert measured == {k for k, day in stakes.items() if horizon <= day < anchor}
            # Exactly once: a re-run of today and of a date 40 days back sends nothing; the
            # old date's pruned days are refused, not sent again.
            _, again, _ = run(anchor, f"rerun-{number}")
            old = anchor - dt.timedelta(days=40)
            _, old_sent, pruned = run(old, f"rerun-old-{number}")
            assert (again, old_sent) == (0, 0)
            assert pruned == len(
                [lead for lead in LEADS if old + dt.timedelta(days=lead) < horizon]
            ) * (PER_LEAD - 1)  # the held-out one of a pruned day is not recorded again
        if number % 10 == 0:
            _vacuum(ledger)
        if number in (120, 364):
            sizes[number] = _size(ledger)

    assert max(sent.values()) == 1  # no reminder sent twice in the year
    last = FIRST_DAY + dt.timedelta(days=364)
    kept = {k for k, day in written.items() if day >= last - dt.timedelta(days=KEEP_DAYS)}
    with ledger.engine.connect() as db:
        keys = set(db.execute(sa.text(f"SELECT reminder_key FROM {REMINDERS_TABLE}")).scalars())
    assert keys == kept  # exactly what the rule keeps
    assert sizes[364] <= sizes[120] * 1.3  # the bytes stay bounded too
    ledger.close()
    never_pruned.close()


def test_a_prune_and_a_claim_use_an_index_at_a_realistic_size(location: Location) -> None:
    ledger = location[2]()
    postgresql = ledger.engine.dialect.name == "postgresql"
    # 120 expiry days (90 kept, 30 ahead) of a brand reminding about 8,000 customers a day.
    fill(ledger, rows=1_000_000 if postgresql else 200_000, days=120)
    shown = plans(ledger)
    full_scan = r"Seq Scan on neo_reminder_ledger\b(?!_)" if postgresql else r"SCAN neo_reminder_"
    for name, plan in shown.items():
        assert not re.search(full_scan, plan), (name, plan)
    if postgresql:
        assert "Conflict Arbiter Indexes: neo_reminder_ledger_pkey" in shown["claim"]
        assert "Index Only Scan using neo_reminder_ledger_expiry" in shown["prune: the oldest day"]
        assert "Index Scan using neo_reminder_ledger_expiry" in shown["prune: one day"]
    else:
        assert "USING COVERING INDEX neo_reminder_ledger_expiry" in shown["prune: the oldest day"]
        assert "USING INDEX neo_reminder_ledger_expiry (expiry_date=?)" in shown["prune: one day"]
    ledger.close()
