"""Daily points-expiry reminders for a Capillary loyalty brand.

Every day, for each lead time (30, 7 and 1 days), the customers of the CRM extract whose
AVAILABLE points expire on that single day (in the organisation's time zone) are reminded, each
exactly once across retries, re-runs and workers (the sent-ledger), skipping who opted out
(``email_opt_in`` / ``sms_opt_in`` columns and ``suppression_path``) and holding out
``holdout_share`` of customers as the comparison group of ``neo_reminder_effectiveness``.
Missed days are caught up, ``catch_up_days`` back. The day's list and totals go to
``reminders/<ds>.csv`` and ``.summary.json``; a failed shard, or a reminder refused for good (a
bad address), fails the run after the rest delivered, and a re-run sends exactly what is
missing. The sent-ledger keeps reminders ``NEO_LEDGER_PRUNE_AFTER_DAYS`` (90) days past expiry.

``channel``: ``email`` (SMTP), ``neo_message`` (Capillary's sendMessage, on
``neo_message_channel`` email, sms or whatsapp) or ``webhook`` (JSON batches to ``webhook_url``).
The steps are the provider's operators, chained by ``ExpiryReminderTaskGroup``. Once the day is
published, each reminded customer's allocations expiring in the next 31 days are exported per
program (``exports/<ds>/``, CSV) for the brand's CRM or warehouse.

If the brand has Capillary Loyalty+'s own expiry notices on, leave out overlapping lead times.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_neo.operators.neo import ExpiringPointsOperator
from airflow_provider_neo.reminders import ReminderMessage
from airflow_provider_neo.reminders.channels import (
    NeoMessageChannel,
    SmtpEmailChannel,
    WebhookChannel,
)
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
FROM = "rewards@example.com"
PROGRAMS = [(2282, 17383), (3379, 40022), (3379, 40023)]  # (program, point category)
EXPORTS = [  # one export task per program, each its own file
    {"program_id": p, "point_category_id": c, "output_path": "{{ params.output_dir }}/exports/"
     "{{ ds }}/" + f"{p}-{c}.csv"} for p, c in PROGRAMS
]  # fmt: skip


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "customers_path": Param(f"{DATA_DIR}/customers.csv", type="string"),
        "suppression_path": Param("", type="string"),
        "output_dir": Param(f"{DATA_DIR}/neo", type="string"),
        "ledger_path": Param(f"{DATA_DIR}/neo/sent-ledger.sqlite3", type="string"),
        # A database connection (e.g. PostgreSQL) shared by every worker host; when set, it is
        # the ledger and ledger_path is not used.
        "ledger_conn_id": Param(os.environ.get("NEO_LEDGER_CONN_ID", ""), type="string"),
        "lead_times": Param([30, 7, 1], type="array", items={"type": "integer", "minimum": 0}),
        "catch_up_days": Param(3, type="integer", minimum=0),
        "shard_size": Param(500, type="integer", minimum=1),
        "holdout_share": Param(0, type="number", minimum=0, maximum=1),
        "holdout_salt": Param("neo-reminders", type="string"),
        "channel": Param("email", type="string", enum=["email", "neo_message", "webhook"]),
        "neo_message_channel": Param("email", type="string", enum=["email", "sms", "whatsapp"]),
        "webhook_url": Param("", type="string"),
        "webhook_batch_size": Param(100, type="integer", minimum=1),
    },
)
def neo_points_expiry_reminder() -> None:
    # [START howto_task_group_expiry_reminders]
    reminders = ExpiryReminderTaskGroup(
        group_id="reminders",
        customers_path="{{ params.customers_path }}",
        suppression_path="{{ params.suppression_path }}",
        output_dir="{{ params.output_dir }}",
        ledger_path="{{ params.ledger_path }}",
        ledger_conn_id="{{ params.ledger_conn_id }}",
        lead_times="{{ params.lead_times }}",
        catch_up_days="{{ params.catch_up_days }}",
        shard_size="{{ params.shard_size }}",
        holdout_share="{{ params.holdout_share }}",
        holdout_salt="{{ params.holdout_salt }}",
        # The deployment's retention: reminders of expiry days this long past leave the ledger.
        prune_after_days=os.environ.get("NEO_LEDGER_PRUNE_AFTER_DAYS", "90"),
        programs=[{"program_id": p, "point_category_id": c} for p, c in PROGRAMS],
        message=ReminderMessage(
            unsubscribe_url="https://rewards.example.com/unsubscribe?customer={customer_id}&token={token}",
            unsubscribe_mailto="unsubscribe@example.com",
        ),
        channel="{{ params.channel }}",
        channels={
            "email": SmtpEmailChannel(smtp_conn_id="smtp_default", from_email=FROM),
            "neo_message": NeoMessageChannel(
                medium="{{ params.neo_message_channel }}", from_email=FROM, sms_sender="REWARDS"
            ),
            "webhook": WebhookChannel(
                url="{{ params.webhook_url }}", batch_size="{{ params.webhook_batch_size }}"
            ),
        },
    )
    # [END howto_task_group_expiry_reminders]
    # [START howto_operator_expiring_points]
    export = ExpiringPointsOperator.partial(
        task_id="export_expiring_allocations",
        customers_path="{{ params.output_dir }}/reminders/{{ ds }}.csv",  # the day's list
        days_ahead=0,
        window_days=31,
        output_format="csv",
    ).expand_kwargs(EXPORTS)
    # [END howto_operator_expiring_points]
    reminders >> export


neo_points_expiry_reminder()
