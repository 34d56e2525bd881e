"""Points-expiry reminders: who to remind, and delivering each reminder exactly once.

Used by the example DAG `dags/neo_points_expiry_reminder.py`, and usable on its own. A reminder
is keyed by (customer, expiry day, lead time). The sent-ledger records each key the moment its
message is accepted, so a retried or re-run delivery skips what was sent and sends what was not:
a crash mid-batch loses no reminder, and a finished one is never sent again. (The one window
left is between the mail server accepting a message and the ledger's commit, microseconds
long: a crash exactly there sends that one reminder again on retry, never loses it.)
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import msgspec

from airflow_provider_neo.hooks.neo import NeoHook


class Customer(msgspec.Struct, frozen=True):
    customer_id: int
    email: str
    first_name: str


class ProgramCategory(msgspec.Struct, frozen=True):
    program_id: int
    point_category_id: int


class Reminder(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: int
    email: str
    first_name: str
    lead_days: int
    expiry_date: dt.date
    remaining_points: Decimal
    programs: dict[str, Decimal]  # program id -> points expiring that day

    @property
    def key(self) -> str:
        return f"{self.customer_id}:{self.expiry_date.isoformat()}:{self.lead_days}"


def find_reminders(
    hook: NeoHook,
    customers: Sequence[Customer],
    *,
    programs: Iterable[ProgramCategory],
    lead_days: Iterable[int],
    anchor_day: dt.date,
    min_points: Decimal,
) -> list[Reminder]:
    """For each lead time, the customers with at least `min_points` AVAILABLE points expiring on
    that single day (`anchor_day` + lead), summed over the programs, via batched paIds calls."""
    by_id = {customer.customer_id: customer for customer in customers}
    ids = list(by_id)
    programs = list(programs)  # iterated once per lead time
    reminders = []
    for lead in sorted(set(lead_days)):
        day = anchor_day + dt.timedelta(days=lead)
        points: dict[int, dict[str, Decimal]] = {}
        for program in programs:
            for row in hook.iter_points_awarded(
                ids,
                program_id=program.program_id,
                point_category_id=program.point_category_id,
                expiry_start=day,
                expiry_end=day,
                status="AVAILABLE",
            ):
                remaining = row.remaining_points("AVAILABLE")
                if remaining > 0:
                    per_program = points.setdefault(row.customer_id, {})
                    key = str(program.program_id)
                    per_program[key] = per_program.get(key, Decimal(0)) + remaining
        for customer_id, per_program in sorted(points.items()):
            total = sum(per_program.values(), Decimal(0))
            if total >= min_points:
                customer = by_id[customer_id]
                reminders.append(
                    Reminder(
                        customer_id=customer_id,
                        email=customer.email,
                        first_name=customer.first_name,
                        lead_days=lead,
                        expiry_date=day,
                        remaining_points=total,
                        programs=per_program,
                    )
                )
    return reminders


class SentLedger:
    """Which reminders were sent, in SQLite (safe for several worker processes on one host)."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, customer_id INTEGER NOT NULL,"
            " expiry_date TEXT NOT NULL, lead_days INTEGER NOT NULL, channel TEXT NOT NULL,"
            " sent_at TEXT NOT NULL)"
        )

    def sent(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM sent WHERE key = ?", (key,)).fetchone() is not None

    def record(
        self,
        key: str,
        *,
        customer_id: int,
        channel: str,
        expiry_date: dt.date | None = None,
        lead_days: int = 0,
    ) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO sent VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                customer_id,
                expiry_date.isoformat() if expiry_date else "",
                lead_days,
                channel,
                dt.datetime.now(dt.timezone.utc).isoformat(),
            ),
        )

    def close(self) -> None:
        self.db.close()


def deliver(
    reminders: Iterable[Reminder],
    ledger: SentLedger,
    send: Callable[[Reminder], None],
    channel: str = "email",
) -> dict[str, int]:
    """Send each reminder not yet in the ledger, recording it as soon as it is sent."""
    sent = skipped = 0
    for reminder in reminders:
        if ledger.sent(reminder.key):
            skipped += 1
            continue
        send(reminder)
        ledger.record(
            reminder.key,
            customer_id=reminder.customer_id,
            channel=channel,
            expiry_date=reminder.expiry_date,
            lead_days=reminder.lead_days,
        )
        sent += 1
    return {"sent": sent, "skipped": skipped}


class ReminderTemplate:
    """The email: a Jinja subject line and an HTML body a brand can replace."""

    def __init__(self, body: str, subject: str) -> None:
        environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        self.body = environment.from_string(body)
        self.subject = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(subject)

    def render(self, reminder: Reminder) -> tuple[str, str]:
        values: dict[str, Any] = {
            **msgspec.structs.asdict(reminder),
            "points": _points_text(reminder.remaining_points),
        }
        return self.subject.render(values), self.body.render(values)


def _points_text(points: Decimal) -> str:
    return f"{points.normalize():f}" if points % 1 else f"{int(points):,}"


def read_customers(lines: Iterable[dict[str, str]]) -> Iterator[Customer]:
    for row in lines:
        yield Customer(
            customer_id=int(row["customer_id"]),
            email=row["email"].strip(),
            first_name=(row.get("first_name") or "").strip(),
        )
