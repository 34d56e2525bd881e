"""SMTP email through an Airflow SMTP connection: one multipart message per reminder (plain
text and HTML) with the RFC 8058 unsubscribe headers and the reminder's key.

What the server answers decides what a refusal means. A 5xx reply (RFC 5321: permanent) to the
recipient or to the message, and an address the server or the `email` package cannot take, fail
that reminder alone (`RejectedReminders`, once the rest of the batch went through). A 4xx reply,
a refused sender and a lost connection are transient: they fail the batch, for the task's retry.
"""

from __future__ import annotations

import email.errors
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook

from airflow_provider_neo.reminders.channels.base import (
    OutgoingReminder,
    RejectedReminders,
    ReminderChannel,
)
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
        refused: dict[str, str] = {}
        for outgoing in batch:
            try:
                message = compose_email(outgoing, from_email=self.from_email)
            except (ValueError, TypeError, email.errors.MessageError) as error:
                # A line break or a character a header cannot carry: no server will take it.
                refused[outgoing.key] = f"the email cannot be composed: {error}"
                continue
            reason = _refusal(self.hook, message)
            if reason:
                refused[outgoing.key] = reason
        if refused:
            raise RejectedReminders(refused)

    def close(self) -> None:
        if self.hook is not None:
            self.hook.__exit__(None, None, None)  # type: ignore[no-untyped-call]
            self.hook = None


def _refusal(hook: ReminderSmtpHook, message: EmailMessage) -> str:
    """Send one message: "" once the server accepted it, the reason if it refused it for good;
    a transient refusal raises."""
    try:
        hook.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        replies = list(error.recipients.values())
        if not replies or not all(_permanent(code) for code, _ in replies):
            raise
        return "; ".join(_reply(code, text) for code, text in replies)
    except smtplib.SMTPDataError as error:
        if not _permanent(error.smtp_code):
            raise
        return _reply(error.smtp_code, error.smtp_error)
    except smtplib.SMTPNotSupportedError as error:
        # An internationalised address, and a server without SMTPUTF8.
        return f"the server cannot take the address: {error}"
    return ""


def _permanent(code: int) -> bool:
    return 500 <= code < 600


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {words}"
