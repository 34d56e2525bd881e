"""Points-expiry reminders: which expiry days to remind, who to remind, and delivering each
reminder exactly once across every runner.

Used by the example DAG `dags/neo_points_expiry_reminder.py`, and usable on its own. A reminder
is keyed by (customer, expiry day, lead time). `deliver` claims each key in the sent-ledger
(`airflow_provider_neo.ledger`) before sending and marks it sent once the server accepted it: a
retried, re-run or concurrent delivery never sends a reminder twice, and a runner that dies
mid-batch loses none (its claims are taken over when their lease runs out). One window is left:
a runner that dies after the server accepted a message and before "sent" is written (the time of
one database commit) leaves a claim that is taken over and sent again after its lease.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import jinja2
import msgspec

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.ledger import DEFAULT_LEASE_SECONDS, ClaimState, SentLedger


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


def expiry_days_to_remind(
    ledger: SentLedger,
    *,
    anchor_day: dt.date,
    lead_days: Iterable[int],
    catch_up_days: int,
) -> dict[int, list[dt.date]]:
    """Per lead time, the expiry days a run reminds: the day `anchor_day` + lead, and, when
    earlier runs failed or were skipped, the days between the last day reminded completely and
    that one (at most `catch_up_days` back). A caught-up day never reaches back to a day that a
    shorter lead time reminds in the same run, nor to a day already past."""
    leads = sorted(set(lead_days))
    plan: dict[int, list[dt.date]] = {}
    for position, lead in enumerate(leads):
        target = anchor_day + dt.timedelta(days=lead)
        days = {target}
        last = ledger.last_day_reminded(lead, before=target)
        if last is not None and catch_up_days > 0:
            shorter = (
                anchor_day + dt.timedelta(days=leads[position - 1] + 1) if position else anchor_day
            )
            first = max(
                last + dt.timedelta(days=1), target - dt.timedelta(days=catch_up_days), shorter
            )
            if first < target:
                span = range((target - first).days)
                missed = {first + dt.timedelta(days=offset) for offset in span}
                days |= missed - ledger.days_reminded(lead, first, target)
        plan[lead] = sorted(days)
    return plan


def find_reminders(
    hook: NeoHook,
    customers: Sequence[Customer],
    *,
    programs: Iterable[ProgramCategory],
    expiry_days: Mapping[int, Sequence[dt.date]],
    min_points: Decimal,
) -> list[Reminder]:
    """For each lead time and each of its expiry days, the customers with at least `min_points`
    AVAILABLE points expiring on that single day, summed over the programs, via batched paIds
    calls."""
    by_id = {customer.customer_id: customer for customer in customers}
    ids = list(by_id)
    programs = list(programs)  # iterated once per day
    reminders = []
    for lead, days in sorted(expiry_days.items()):
        for day in sorted(days):
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


def task_try_owner(context: Mapping[str, Any]) -> str:
    """Who claims reminders: the running task try, on its host and process."""
    ti = context["ti"]
    return (
        f"{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]/try-{ti.try_number}"
        f"@{socket.gethostname()}:{os.getpid()}"
    )


class Delivery(msgspec.Struct, kw_only=True):
    """What one delivery did with its reminders; every reminder is counted exactly once."""

    sent: int = 0  # sent by this delivery (`taken_over` of them after an earlier owner died)
    taken_over: int = 0
    already_sent: int = 0  # sent before this delivery started looking at it
    sent_by_another_runner: int = 0  # claimed by a live runner when met, then sent by it
    lease_lost: int = 0  # sent, but the lease ran out mid-send: another runner may send it too


class Message(Protocol):
    """What the ledger keys a message by; a `Reminder` is one."""

    @property
    def key(self) -> str: ...
    @property
    def customer_id(self) -> int: ...
    @property
    def expiry_date(self) -> dt.date | None: ...
    @property
    def lead_days(self) -> int: ...


M = TypeVar("M", bound=Message)


def deliver(
    messages: Iterable[M],
    ledger: SentLedger,
    send: Callable[[M], None],
    *,
    owner: str,
    channel: str = "email",
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Send each message (reminder) that nobody has sent, exactly once across every concurrent
    runner.

    Each one is claimed before it is sent and marked sent once `send` returns (the server
    accepted it). Those that another runner holds are waited for: when that runner sends them
    they count as `sent_by_another_runner`; when its lease runs out first (it died), they are
    taken over and sent here. A failing `send` gives its claim up and raises.
    """
    done = Delivery()
    pending = list(messages)
    waited = 0.0
    while pending:
        held: list[tuple[M, float]] = []
        for reminder in pending:
            claim = ledger.claim(
                reminder.key,
                owner=owner,
                customer_id=reminder.customer_id,
                expiry_date=reminder.expiry_date,
                lead_days=reminder.lead_days,
                channel=channel,
                lease_seconds=lease_seconds,
            )
            if claim.state is ClaimState.SENT:
                if waited:
                    done.sent_by_another_runner += 1
                else:
                    done.already_sent += 1
            elif claim.state is ClaimState.HELD:
                held.append((reminder, claim.lease_left))
            else:
                try:
                    send(reminder)
                except BaseException:
                    ledger.release(reminder.key, owner=owner)
                    raise
                if not ledger.mark_sent(reminder.key, owner=owner):
                    done.lease_lost += 1
                done.sent += 1
                done.taken_over += claim.state is ClaimState.TAKEN_OVER
        if not held:
            break
        if waited > 3 * lease_seconds + 60:
            raise RuntimeError(
                f"{len(held)} reminders stayed claimed by other runners for {waited:.0f} s,"
                f" longer than their lease ({lease_seconds:.0f} s); first: {held[0][0].key}"
            )
        pause = min(poll_seconds, max(min(left for _, left in held), 0.05))
        sleep(pause)
        waited += pause
        pending = [reminder for reminder, _ in held]
    return done


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
