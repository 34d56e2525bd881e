"""Delivering reminders exactly once across every runner.

A reminder is keyed by (customer, expiry day, lead time). `deliver_batches` claims each key in the
sent-ledger (`airflow_provider_neo.reminders.ledger`) before sending and marks it sent once the
far side accepted it: a retried, re-run or concurrent delivery never sends a reminder twice, and
a runner that dies mid-batch loses none (its claims are taken over when their lease runs out).
One window is left: a runner that dies after the far side accepted a message and before "sent" is
written (the time of one database commit) leaves a claim that is taken over and sent again after
its lease.

A reminder the far side refuses for good (the channel raises `RejectedReminders`: an address
the mail server refuses with a 5xx, one the email cannot carry) fails alone: it is marked failed
in the ledger with the reason, the rest are delivered, and the delivery's result counts and
lists it. The retries of the same task leave it alone (a bad address is not hammered); a later
run, or the task cleared, tries it again: see `retry_series`. Anything else a channel raises is
transient: the batch's claims are released and the task's retry sends them.

Before anything is claimed, the customers who opted out are skipped (`suppressed`) and the
holdout is recorded (`held_out`, with the points at stake), see `reminders.audience`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from airflow_provider_neo.reminders.channels.base import RejectedReminders
from airflow_provider_neo.reminders.ledger import DEFAULT_LEASE_SECONDS, ClaimState, SentLedger
from airflow_provider_neo.reminders.model import Message

# Failed reminders a delivery's result lists (all are counted), and the length of each reason
# there: the result travels in XCom, which must stay small whatever the far side refused.
LISTED_FAILURES = 100
LISTED_REASON = 200


def task_try_owner(context: Mapping[str, Any]) -> str:
    """Who claims reminders: the running task try, on its host and process."""
    ti = context["ti"]
    return (
        f"{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]/try-{ti.try_number}"
        f"@{socket.gethostname()}:{os.getpid()}"
    )


def retry_series(context: Mapping[str, Any]) -> str:
    """Which series of tries a task try belongs to: a try and its automatic retries share one; a
    new run, or clearing the task (which raises its ``max_tries``), starts another. A reminder
    refused for good is tried again only by another series."""
    ti = context["ti"]
    tries = getattr(ti, "max_tries", None)
    if tries is None:  # an instance that does not say: every try its own series
        tries = f"try-{ti.try_number}"
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]/max-tries-{tries}"


class FailedReminder(msgspec.Struct, frozen=True):
    key: str
    reason: str


class Delivery(msgspec.Struct, kw_only=True):
    """What one delivery did with its reminders; every reminder is counted exactly once."""

    sent: int = 0  # sent by this delivery (`taken_over` of them after an earlier owner died)
    taken_over: int = 0
    already_sent: int = 0  # sent before this delivery started looking at it
    sent_by_another_runner: int = 0  # claimed by a live runner when met, then sent by it
    lease_lost: int = 0  # sent, but the lease ran out mid-send: another runner may send it too
    suppressed: int = 0  # opted out (or no address for the channel): not sent, not recorded
    held_out: int = 0  # in the holdout: recorded in the ledger with its points, never sent
    failed: int = 0  # refused for good, now or earlier in this series of tries: recorded failed
    pruned: int = 0  # of an expiry day the ledger has pruned: never sent
    failed_reminders: list[FailedReminder] = msgspec.field(default_factory=list)  # the first few

    def failure(self, key: str, reason: str) -> None:
        self.failed += 1
        if len(self.failed_reminders) < LISTED_FAILURES:
            self.failed_reminders.append(FailedReminder(key, reason[:LISTED_REASON]))


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
    series: str | None = None,
) -> Delivery:
    """Send each message (reminder) that nobody has sent, exactly once across every concurrent
    runner, one at a time: `deliver_batches` with batches of one."""
    return deliver_batches(
        messages, ledger, lambda batch: send(batch[0]), batch_size=1, owner=owner,
        channel=channel, lease_seconds=lease_seconds, poll_seconds=poll_seconds, sleep=sleep,
        suppressed=suppressed, held_out=held_out, stake=stake, series=series,
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
    series: str | None = None,
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

    When `send_batch` raises `RejectedReminders`, the far side took the rest of the batch: the
    refused ones are marked failed with their reasons, counted and listed, and delivery goes
    on. Claims in the same `series` of tries (by default: this `owner` alone) leave a failed
    reminder alone and count it again; another series claims it and sends it.
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
        refused: dict[str, str] = {}
        try:
            send_batch([message for message, _ in batch])
        except RejectedReminders as rejected:
            refused = rejected.reasons
        except BaseException:
            for message, _ in batch:
                ledger.release(message.key, owner=owner)
            raise
        for message, state in batch:
            if message.key in refused:
                reason = refused[message.key]
                ledger.mark_failed(message.key, owner=owner, reason=reason, series=series)
                done.failure(message.key, reason)
                continue
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
                series=series,
            )
            if claim.state is ClaimState.SENT:
                if waited:
                    done.sent_by_another_runner += 1
                else:
                    done.already_sent += 1
            elif claim.state is ClaimState.HELD_OUT:  # held out by a run with a larger share
                done.held_out += 1
            elif claim.state is ClaimState.FAILED:  # refused earlier in this series
                done.failure(message.key, claim.reason)
            elif claim.state is ClaimState.PRUNED:
                done.pruned += 1
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
