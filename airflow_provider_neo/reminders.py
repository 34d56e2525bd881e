"""Points-expiry reminders: which expiry days to remind, who to remind, and delivering each
reminder exactly once across every runner.

Used by the example DAG `dags/neo_points_expiry_reminder.py`, and usable on its own. A reminder
is keyed by (customer, expiry day, lead time). `deliver` claims each key in the sent-ledger
(`airflow_provider_neo.ledger`) before sending and marks it sent once the server accepted it: a
retried, re-run or concurrent delivery never sends a reminder twice, and a runner that dies
mid-batch loses none (its claims are taken over when their lease runs out). One window is left:
a runner that dies after the server accepted a message and before "sent" is written (the time of
one database commit) leaves a claim that is taken over and sent again after its lease.

Before anything is claimed, `deliver` skips the customers who opted out (`Consent`, read when the
delivery starts, so an opt-out between finding and sending is honoured) and records the holdout
(`in_holdout`: a stable, salted-hash share of customers who are never reminded, kept in the ledger
with their points at stake as the comparison group for measuring what reminders save).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, Final, Protocol, TypeVar

import jinja2
import msgspec

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.ledger import DEFAULT_LEASE_SECONDS, ClaimState, SentLedger


class Customer(msgspec.Struct, frozen=True):
    customer_id: int
    email: str
    first_name: str
    mobile: str = ""  # for SMS and WhatsApp; an optional column of the CRM extract


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
    mobile: str = ""

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
                            mobile=customer.mobile,
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
    suppressed: int = 0  # opted out (or no address for the channel): not sent, not recorded
    held_out: int = 0  # in the holdout: recorded in the ledger with its points, never sent


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
    suppressed: Callable[[M], bool] | None = None,
    held_out: Callable[[M], bool] | None = None,
    stake: Callable[[M], dict[str, Decimal]] | None = None,
) -> Delivery:
    """Send each message (reminder) that nobody has sent, exactly once across every concurrent
    runner, one at a time: `deliver_batches` with batches of one."""
    return deliver_batches(
        messages, ledger, lambda batch: send(batch[0]), batch_size=1, owner=owner,
        channel=channel, lease_seconds=lease_seconds, poll_seconds=poll_seconds, sleep=sleep,
        suppressed=suppressed, held_out=held_out, stake=stake,
    )  # fmt: skip


def deliver_batches(
    messages: Iterable[M],
    ledger: SentLedger,
    send_batch: Callable[[list[M]], None],
    *,
    batch_size: int,
    owner: str,
    channel: str = "email",
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    suppressed: Callable[[M], bool] | None = None,
    held_out: Callable[[M], bool] | None = None,
    stake: Callable[[M], dict[str, Decimal]] | None = None,
) -> Delivery:
    """Send each message that nobody has sent, exactly once across every concurrent runner, in
    batches of up to `batch_size` (one webhook call may carry many).

    Messages whose customer is `suppressed` (opted out) are counted and left alone: nothing is
    recorded, so a customer who opts back in before a re-run is reminded then. Messages
    `held_out` are recorded in the ledger as such, with their `stake`, and never sent. Every
    other one is claimed before it is sent and marked sent once `send_batch` returns (the server
    accepted the batch). Those that another runner holds are waited for: when that runner sends
    them they count as `sent_by_another_runner`; when its lease runs out first (it died), they
    are taken over and sent here. A failing `send_batch` gives its batch's claims up and raises.
    """
    done = Delivery()
    pending: list[M] = []
    for message in messages:
        if suppressed is not None and suppressed(message):
            done.suppressed += 1
        elif held_out is not None and held_out(message):
            ledger.hold_out(
                message.key, owner=owner, customer_id=message.customer_id,
                expiry_date=message.expiry_date, lead_days=message.lead_days, channel=channel,
                programs=stake(message) if stake else None,
            )  # fmt: skip
            done.held_out += 1
        else:
            pending.append(message)

    def flush(batch: list[tuple[M, ClaimState]]) -> None:
        if not batch:
            return
        try:
            send_batch([message for message, _ in batch])
        except BaseException:
            for message, _ in batch:
                ledger.release(message.key, owner=owner)
            raise
        for message, state in batch:
            if not ledger.mark_sent(message.key, owner=owner):
                done.lease_lost += 1
            done.sent += 1
            done.taken_over += state is ClaimState.TAKEN_OVER
        batch.clear()

    waited = 0.0
    while pending:
        held: list[tuple[M, float]] = []
        batch: list[tuple[M, ClaimState]] = []
        for message in pending:
            claim = ledger.claim(
                message.key,
                owner=owner,
                customer_id=message.customer_id,
                expiry_date=message.expiry_date,
                lead_days=message.lead_days,
                channel=channel,
                lease_seconds=lease_seconds,
                programs=stake(message) if stake else None,
            )
            if claim.state is ClaimState.SENT:
                if waited:
                    done.sent_by_another_runner += 1
                else:
                    done.already_sent += 1
            elif claim.state is ClaimState.HELD_OUT:  # held out by a run with a larger share
                done.held_out += 1
            elif claim.state is ClaimState.HELD:
                held.append((message, claim.lease_left))
            else:
                batch.append((message, claim.state))
                if len(batch) >= batch_size:
                    flush(batch)
        flush(batch)
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
        pending = [message for message, _ in held]
    return done


def in_holdout(customer_id: int, *, share: float, salt: str) -> bool:
    """Whether a customer belongs to the holdout: the first 8 bytes of SHA-256 over the salt and
    the id, as a fraction of 2**64, below `share`. The same customer is in or out on every run
    and every host, and a new salt draws a new holdout."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


# The opt-in column of the CRM extract for each medium; an absent column means opted in.
OPT_IN_COLUMNS: Final = {"email": "email_opt_in", "sms": "sms_opt_in", "whatsapp": "sms_opt_in"}
_OPTED_OUT_VALUES: Final = frozenset({"0", "false", "no", "n", "off", "f"})


class Consent:
    """Who may not be messaged on one medium: the customers whose opt-in column of the CRM
    extract says no (false/0/no/n/off, any case; other values and an absent column are yes) and
    the ids of a suppression list (a CSV with a ``customer_id`` column, or NDJSON, at any
    ObjectStoragePath). Read when delivery starts, so the latest opt-outs count."""

    def __init__(self, opted_out: set[int]) -> None:
        self.opted_out = opted_out

    @classmethod
    def read(
        cls, *, medium: str, customers_path: str | None = None, suppression_path: str | None = None
    ) -> Consent:
        from airflow_provider_neo.utils.customers import customers_from_file
        from airflow_provider_neo.utils.files import text_lines

        opted_out: set[int] = set()
        column = OPT_IN_COLUMNS.get(medium)
        if customers_path and column:
            for row in csv.DictReader(text_lines(customers_path, argument="customers_path")):
                if (row.get(column) or "").strip().lower() in _OPTED_OUT_VALUES:
                    opted_out.add(int(row["customer_id"]))
        if suppression_path:
            opted_out.update(int(value) for value in customers_from_file(suppression_path))
        return cls(opted_out)

    def allows(self, customer_id: int) -> bool:
        return customer_id not in self.opted_out


class Unsubscribe:
    """RFC 8058 one-click unsubscribe for a brand: the https link of `url_template` (with
    ``{customer_id}`` and ``{token}``) and an optional mailto address. The token is an HMAC of
    the customer id under the brand's own `secret`, so the brand's unsubscribe page can check a
    request without a database and nobody can unsubscribe someone else by guessing ids."""

    def __init__(self, url_template: str, secret: str, mailto: str = "") -> None:
        if not url_template.startswith("https://"):
            raise ValueError("unsubscribe_url: RFC 8058 one-click unsubscribe needs an https URL")
        if not secret:
            raise ValueError("unsubscribe secret: empty; set the brand's own secret")
        self.url_template = url_template
        self.secret = secret.encode()
        self.mailto = mailto

    def token(self, customer_id: int) -> str:
        return hmac.new(self.secret, str(customer_id).encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, customer_id: int) -> str:
        return self.url_template.format(customer_id=customer_id, token=self.token(customer_id))

    def headers(self, customer_id: int) -> dict[str, str]:
        links = [f"<{self.url(customer_id)}>"]
        if self.mailto:
            links.append(f"<mailto:{self.mailto}?subject=unsubscribe%20{customer_id}>")
        return {
            "List-Unsubscribe": ", ".join(links),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


class RenderedReminder(msgspec.Struct, frozen=True):
    subject: str
    html: str
    text: str


def compose_email(
    reminder: Reminder,
    rendered: RenderedReminder,
    *,
    from_email: str,
    headers: Mapping[str, str],
) -> EmailMessage:
    """The reminder as a multipart/alternative email: the plain text first, the HTML second (mail
    clients show the last part they can), with `headers` (unsubscribe, reminder key)."""
    message = EmailMessage()
    message["From"] = from_email
    message["To"] = reminder.email
    message["Subject"] = rendered.subject
    for name, value in headers.items():
        message[name] = value
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class ReminderTemplate:
    """The message: a Jinja subject line, an HTML body and a plain-text body a brand can replace.
    The plain text is also the SMS or WhatsApp body. Both bodies get the reminder's fields,
    ``points`` as text and ``unsubscribe_url``."""

    def __init__(self, body: str, subject: str, text: str) -> None:
        environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        self.body = environment.from_string(body)
        plain = jinja2.Environment(undefined=jinja2.StrictUndefined)
        self.subject = plain.from_string(subject)
        self.text = plain.from_string(text)

    def render(self, reminder: Reminder, unsubscribe_url: str = "") -> RenderedReminder:
        values: dict[str, Any] = {
            **msgspec.structs.asdict(reminder),
            "points": _points_text(reminder.remaining_points),
            "unsubscribe_url": unsubscribe_url,
        }
        return RenderedReminder(
            subject=self.subject.render(values),
            html=self.body.render(values),
            text=self.text.render(values),
        )


def _points_text(points: Decimal) -> str:
    return f"{points.normalize():f}" if points % 1 else f"{int(points):,}"


def read_customers(lines: Iterable[dict[str, str]]) -> Iterator[Customer]:
    for row in lines:
        yield Customer(
            customer_id=int(row["customer_id"]),
            email=row["email"].strip(),
            first_name=(row.get("first_name") or "").strip(),
            mobile=(row.get("mobile") or "").strip(),
        )
