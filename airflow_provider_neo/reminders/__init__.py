"""The points-expiry reminder workflow, as a brand runs it on top of the Neo client.

Layers, each a module: `model` (customer, program, reminder), `scheduling` (which expiry days a
run reminds, catch-up), `discovery` (who to remind, from Neo), `audience` (consent, holdout),
`message` (templates, unsubscribe links), `delivery` (claim, send, mark, through the `ledger`),
`channels` (where reminders go), `publishing` (the day's list and summary) and `effectiveness`
(reminded against held out). The Airflow operators and the task group that run these steps are
in `airflow_provider_neo.operators.reminders` and `airflow_provider_neo.task_groups.reminders`.
The Neo client below (`hooks`, `client`, `endpoints`, `records`) never imports this package.
"""

from __future__ import annotations

from airflow_provider_neo.reminders.channels.base import OutgoingReminder, ReminderChannel
from airflow_provider_neo.reminders.message import ReminderMessage, Unsubscribe
from airflow_provider_neo.reminders.model import Customer, ProgramCategory, Reminder

__all__ = [
    "Customer",
    "OutgoingReminder",
    "ProgramCategory",
    "Reminder",
    "ReminderChannel",
    "ReminderMessage",
    "Unsubscribe",
]
