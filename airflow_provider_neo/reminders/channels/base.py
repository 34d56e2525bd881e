"""The extension point for where reminders go: a brand implements `ReminderChannel` for its own
engagement tool (its ESP, a CDP, a marketing cloud) and hands it to `DeliverRemindersOperator`
or `ExpiryReminderTaskGroup`. The provider keeps everything around the send: the sent-ledger
(exactly once), consent, the holdout and retries.

A channel is configuration until it is opened: the operator renders its `template_fields`,
opens it once per delivery (connect, log in), calls `send` with batches of up to `batch_size`
reminders that the ledger has claimed, then closes it. `send` returns only when the far side has
accepted the whole batch and raises otherwise: the batch's claims are then released, and a retry
of the task sends exactly those reminders again. A far side that refuses some reminders for good
is told apart by `RejectedReminders`: those fail alone, recorded in the ledger with the reason,
and the rest count as delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType

import msgspec

from airflow_provider_neo.reminders.model import Reminder

MEDIA = ("email", "sms", "whatsapp")


class RejectedReminders(Exception):
    """The far side refused some reminders of a batch for good (an address it cannot take, a
    record it says is bad), and accepted the rest: `reasons` maps each refused reminder's key
    to why. A channel raises it from `send` once the rest of the batch went through; anything
    else a channel raises counts as a transient failure of the whole batch."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = dict(reasons)
        super().__init__(f"{len(self.reasons)} reminders refused for good: {self.reasons}")


class OutgoingReminder(msgspec.Struct, frozen=True, kw_only=True):
    """One reminder as a channel sends it: the reminder, its message rendered from the brand's
    templates, and the headers an email carries (RFC 8058 unsubscribe, the reminder's key)."""

    reminder: Reminder
    subject: str
    html: str
    text: str  # the plain text beside the HTML, and the SMS or WhatsApp body
    unsubscribe_url: str
    headers: dict[str, str]

    @property
    def key(self) -> str:
        """The sent-ledger's key of the reminder: the same on every retry, an idempotency key."""
        return self.reminder.key


class ReminderChannel:
    """Where reminders go. Subclass it, set `name` (recorded in the ledger beside each
    reminder), `medium` (``email``, ``sms`` or ``whatsapp``: which consent column of the CRM
    extract applies and which address a reminder needs) and `batch_size`, and implement `send`.
    Override `open` and `close` to hold a connection for the time of one delivery. List the
    attributes Airflow should render with Jinja (``{{ params.x }}``, ``{{ var.value.y }}``) in
    `template_fields`, as on an operator.

    `location_fields` are the template fields that say where reminders go or with which
    credentials (a URL, a connection id, a sender address): a triggered run's conf cannot set
    them unless the DAG author allows it (`conf_may_set`). Left at None, every template field
    counts as one.
    """

    name: str = "custom"
    medium: str = "email"
    batch_size: int = 1
    template_fields: Sequence[str] = ()
    location_fields: Sequence[str] | None = None

    @property
    def send_deadline_seconds(self) -> float | None:
        """The longest one `send` may take, if the channel bounds it (read once the channel is
        open). The delivery refuses a claim lease that is not longer: a batch still being sent
        when its lease ran out could be taken over and sent twice."""
        return None

    def open(self) -> None:
        """Called once before the first batch of a delivery."""

    def send(self, batch: list[OutgoingReminder]) -> None:
        """Hand the batch to the far side; return only once it accepted every reminder in it."""
        raise NotImplementedError(f"{type(self).__name__} must implement send(batch)")

    def close(self) -> None:
        """Called once after the last batch of a delivery, also when one failed."""

    def reaches(self, reminder: Reminder) -> bool:
        """Whether the reminder has an address on this channel's medium; those without one are
        counted as suppressed and left out of the ledger."""
        return bool(reminder.mobile if self.medium in ("sms", "whatsapp") else reminder.email)

    def __enter__(self) -> ReminderChannel:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
