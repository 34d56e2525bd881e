"""A brand that sends its reminders through its own engagement tool: a channel of its own,
written against the provider's public API only, handed to the provider's task group."""

import os
from collections.abc import Sequence
from datetime import datetime

import requests
from airflow.providers.common.compat.sdk import dag

from airflow_provider_neo.reminders import OutgoingReminder, ReminderChannel, ReminderMessage
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

DATA = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")


class BrandEspChannel(ReminderChannel):
    """The brand's ESP: one JSON request per batch of reminders, accepted on 200."""

    name = "brand-esp"  # recorded in the ledger beside each reminder
    medium = "email"  # the consent column and the address a reminder needs
    batch_size = 4  # reminders per send() call
    template_fields: Sequence[str] = ("url",)  # rendered by Airflow, as on an operator
    location_fields: Sequence[str] = ("url",)  # where reminders go: a run's conf may not set it

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, batch: list[OutgoingReminder]) -> None:
        # Return only once the far side accepted the whole batch; raise otherwise: the batch's
        # claims are released and the task's retry sends exactly those reminders again. (For
        # reminders it refuses for good, raise RejectedReminders({key: reason}) instead, after
        # sending the rest: those fail alone.)
        messages = [
            {"key": o.key, "to": o.reminder.email, "subject": o.subject, "text": o.text}
            for o in batch
        ]
        answer = requests.post(self.url, json=messages, timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"brand ESP answered {answer.status_code}")


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False)
def brand_esp_reminders() -> None:
    ExpiryReminderTaskGroup(
        customers_path=f"{DATA}/customers.csv",
        output_dir=f"{DATA}/brand-esp",
        ledger_path=f"{DATA}/brand-esp/sent-ledger.sqlite3",
        channel=BrandEspChannel(url="{{ var.value.brand_esp_url }}"),
        message=ReminderMessage(
            unsubscribe_url="https://brand.example/u?c={customer_id}&t={token}"
        ),
    )


brand_esp_reminders()
