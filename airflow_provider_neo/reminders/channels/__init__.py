"""Where reminders go. `ReminderChannel` is the extension point a brand implements for its own
engagement tool; the provider ships SMTP email, Capillary's sendMessage and a webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_neo.reminders.channels.base import (
    MEDIA,
    OutgoingReminder,
    RejectedReminders,
    ReminderChannel,
)

if TYPE_CHECKING:  # imported lazily below; named here for the type checker
    from airflow_provider_neo.reminders.channels.email import SmtpEmailChannel
    from airflow_provider_neo.reminders.channels.neo_message import NeoMessageChannel
    from airflow_provider_neo.reminders.channels.webhook import WebhookChannel

__all__ = [
    "MEDIA",
    "NeoMessageChannel",
    "OutgoingReminder",
    "RejectedReminders",
    "ReminderChannel",
    "SmtpEmailChannel",
    "WebhookChannel",
]


def __getattr__(name: str) -> object:
    # The shipped channels import their service's hook (SMTP, HTTP, Neo) only when asked for.
    if name == "SmtpEmailChannel":
        from airflow_provider_neo.reminders.channels.email import SmtpEmailChannel

        return SmtpEmailChannel
    if name == "NeoMessageChannel":
        from airflow_provider_neo.reminders.channels.neo_message import NeoMessageChannel

        return NeoMessageChannel
    if name == "WebhookChannel":
        from airflow_provider_neo.reminders.channels.webhook import WebhookChannel

        return WebhookChannel
    raise AttributeError(name)
