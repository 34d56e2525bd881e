"""Capillary's own messaging: ``POST /v2/communications/sendMessage`` through the `neo`
connection, by email, SMS or WhatsApp."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders.channels.base import MEDIA, OutgoingReminder, ReminderChannel
from airflow_provider_neo.validation import choice


class NeoMessageChannel(ReminderChannel):
    """One reminder per sendMessage request, so that a request Capillary refused is exactly the
    reminder released for a retry. The email body is the HTML (its unsubscribe link inside:
    sendMessage takes no headers); SMS and WhatsApp get the plain text."""

    name = "neo_message"
    batch_size = 1
    template_fields: Sequence[str] = ("neo_conn_id", "medium", "from_email", "sms_sender")
    # The medium is the customer's choice of address, any run may pick it; the connection and
    # the sender are the brand's.
    location_fields: Sequence[str] = ("neo_conn_id", "from_email", "sms_sender")

    def __init__(
        self,
        *,
        neo_conn_id: str = DEFAULT_CONN_ID,
        medium: str = "email",
        from_email: str = "",
        sms_sender: str = "",
    ) -> None:
        self.neo_conn_id = neo_conn_id
        self.medium = medium
        self.from_email = from_email
        self.sms_sender = sms_sender
        self.hook: NeoHook | None = None

    def open(self) -> None:
        choice("medium", self.medium, MEDIA)  # rendered by now: a run may choose it
        self.name = f"neo_message:{self.medium}"
        self.hook = NeoHook(self.neo_conn_id)

    def body(self, outgoing: OutgoingReminder) -> dict[str, Any]:
        reminder = outgoing.reminder
        if self.medium == "email":
            message = {
                "to": reminder.email, "from": self.from_email, "subject": outgoing.subject,
                "body": outgoing.html,
            }  # fmt: skip
        elif self.medium == "sms":
            message = {"to": reminder.mobile, "body": outgoing.text, "sender": self.sms_sender}
        else:
            message = {"to": reminder.mobile, "body": outgoing.text}
        return {self.medium: [message]}

    def send(self, batch: list[OutgoingReminder]) -> None:
        if self.hook is None:
            raise RuntimeError("NeoMessageChannel.send before open()")
        for outgoing in batch:
            self.hook.send_message(self.medium, self.body(outgoing))

    def close(self) -> None:
        if self.hook is not None:
            self.hook.close()
            self.hook = None
