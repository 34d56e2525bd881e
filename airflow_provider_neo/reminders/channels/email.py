"""SMTP email through an Airflow SMTP connection: one multipart message per reminder (plain
text and HTML) with the RFC 8058 unsubscribe headers and the reminder's key."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook

from airflow_provider_neo.reminders.channels.base import OutgoingReminder, ReminderChannel
from airflow_provider_neo.reminders.message import compose_email


class ReminderSmtpHook(SmtpHook):
    """The SMTP hook with one more method: `send_message`, for a message composed in full.

    The hook's own `send_email_smtp` builds an HTML-only message, and a reminder needs a
    plain-text part beside the HTML (text-only clients, spam filters). Everything else, the
    connection, TLS, login, OAuth2 and timeout, stays the hook's.
    """

    def send_message(self, message: EmailMessage) -> None:
        self.get_conn()
        # The logged-in smtplib client the hook keeps for its own sends (`_smtp_client`;
        # `smtp_client` in releases of the SMTP provider before 2.0).
        client: Any = getattr(self, "_smtp_client", None) or getattr(self, "smtp_client", None)
        # Sent once: a message the server may have taken before the connection broke is not
        # resent here; the sent-ledger and the task's retries decide what goes again.
        client.send_message(message)


class SmtpEmailChannel(ReminderChannel):
    """Reminders by email through the SMTP connection `smtp_conn_id`, from `from_email`.

    One message per reminder, so that a refused message is exactly the reminder released for a
    retry of the task.
    """

    name = "email"
    medium = "email"
    batch_size = 1
    template_fields: Sequence[str] = ("smtp_conn_id", "from_email")

    def __init__(self, *, smtp_conn_id: str = "smtp_default", from_email: str) -> None:
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.hook: ReminderSmtpHook | None = None

    def open(self) -> None:
        self.hook = ReminderSmtpHook(self.smtp_conn_id)
        self.hook.get_conn()

    def send(self, batch: list[OutgoingReminder]) -> None:
        if self.hook is None:
            raise RuntimeError("SmtpEmailChannel.send before open()")
        for outgoing in batch:
            self.hook.send_message(compose_email(outgoing, from_email=self.from_email))

    def close(self) -> None:
        if self.hook is not None:
            self.hook.__exit__(None, None, None)  # type: ignore[no-untyped-call]
            self.hook = None
