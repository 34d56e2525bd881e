"""A brand's daily expiry reminders: the provider's task group and nothing else."""

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import dag

from airflow_provider_neo.reminders import ReminderMessage
from airflow_provider_neo.reminders.channels import SmtpEmailChannel
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

DATA = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False)
def brand_expiry_reminders() -> None:
    ExpiryReminderTaskGroup(
        customers_path=f"{DATA}/customers.csv",
        output_dir=f"{DATA}/brand",
        ledger_path=f"{DATA}/brand/sent-ledger.sqlite3",
        channel=SmtpEmailChannel(from_email="rewards@brand.example"),
        message=ReminderMessage(
            unsubscribe_url="https://brand.example/u?c={customer_id}&t={token}"
        ),
    )


brand_expiry_reminders()
