"""A brand whose DAG takes its CRM extract, suppression list and text template from params, and
lets a run's conf set the suppression list only (`conf_may_set`); and a second group whose text
template is an Airflow Variable the brand's team edits."""

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_neo.reminders import ReminderMessage
from airflow_provider_neo.reminders.channels import SmtpEmailChannel
from airflow_provider_neo.reminders.message import TEMPLATES
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

DATA = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
UNSUBSCRIBE = "https://brand.example/u?c={customer_id}&t={token}"


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "customers_path": Param(f"{DATA}/customers.csv", type="string"),
        "suppression_path": Param("", type="string"),
        "text_template": Param(str(TEMPLATES / "expiry_reminder.txt"), type="string"),
        "holdout_share": Param(0, type="number", minimum=0, maximum=1),
    },
)
def brand_reminders_from_params() -> None:
    ExpiryReminderTaskGroup(
        group_id="from_params",
        customers_path="{{ params.customers_path }}",
        suppression_path="{{ params.suppression_path }}",
        output_dir=f"{DATA}/brand-params",
        ledger_path=f"{DATA}/brand-params/sent-ledger.sqlite3",
        holdout_share="{{ params.holdout_share }}",
        channel=SmtpEmailChannel(from_email="rewards@brand.example"),
        message=ReminderMessage(
            unsubscribe_url=UNSUBSCRIBE, text_template="{{ params.text_template }}"
        ),
        conf_may_set=["suppression_path"],
    )
    ExpiryReminderTaskGroup(
        group_id="variable_template",
        customers_path=f"{DATA}/customers.csv",
        output_dir=f"{DATA}/brand-variable",
        ledger_path=f"{DATA}/brand-variable/sent-ledger.sqlite3",
        channel=SmtpEmailChannel(from_email="rewards@brand.example"),
        message=ReminderMessage(
            unsubscribe_url=UNSUBSCRIBE, text_template="variable:brand_reminder_text"
        ),
    )


brand_reminders_from_params()
