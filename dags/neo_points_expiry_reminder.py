"""Daily points-expiry reminders for a Capillary loyalty brand.

Every day, for each lead time (30, 7 and 1 days), the customers of the CRM extract whose
AVAILABLE points expire on that single day (in the organisation's time zone) are reminded, each
exactly once across retries, re-runs and workers (the sent-ledger), skipping who opted out
(``email_opt_in`` / ``sms_opt_in``; the suppression list as of each delivery) and holding out
``holdout_share`` as the comparison group of ``neo_reminder_effectiveness``. Missed days are
caught up, ``catch_up_days`` back. The day's list and totals go to ``reminders/<ds>.csv`` and
``.summary.json``; a failed shard, a CRM row refused (``shards/rejects.csv``) or a reminder
refused for good (a bad address) fails the run after the rest delivered, and a re-run sends
exactly what is missing. At most ``[core] max_map_length`` shards. The sent-ledger keeps
reminders ``NEO_LEDGER_PRUNE_AFTER_DAYS`` (90) days past their expiry day.

``channel``: ``email`` (SMTP), ``neo_message`` (Capillary's sendMessage, on
``neo_message_channel`` email, sms or whatsapp) or ``webhook`` (JSON batches to the receiver of
the HTTP connection ``neo_reminder_webhook``). Files and the ledger are the deployment's:
``$NEO_DATA_DIR`` (``customers.csv``, ``suppression-list.csv``, outputs and the SQLite ledger in
``neo/``), ``$NEO_SUPPRESSION_PATH``, ``$NEO_LEDGER_CONN_ID``; a run's conf sets the params only.
The steps are the provider's operators, chained by ``ExpiryReminderTaskGroup``. Once the day is
published, each reminded customer's allocations expiring in the next 31 days are exported per
program (``exports/<ds>/``, CSV). Tasks that call Neo run in the ``neo`` pool. If the brand has
Capillary Loyalty+'s own expiry notices on, leave out overlapping lead times.
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
OUTPUT_DIR = f"{DATA_DIR}/neo"  # where files are is the deployment's to say, never a run's
# The brand's opt-outs: NEO_SUPPRESSION_PATH, else suppression-list.csv in the data folder if any.
SUPPRESSION_PATH = os.environ.get("NEO_SUPPRESSION_PATH") or (
    f"{DATA_DIR}/suppression-list.csv" if os.path.exists(f"{DATA_DIR}/suppression-list.csv") else ""
)
FROM, MEDIUM = "rewards@example.com", "{{ params.neo_message_channel }}"
PROGRAMS = [(2282, 17383), (3379, 40022), (3379, 40023)]  # (program, point category)
EXPORTS = [  # one export task per program, each to its own file
    {"program_id": p, "point_category_id": c,
     "output_path": f"{OUTPUT_DIR}/exports/" + "{{ ds }}/" + f"{p}-{c}.csv"} for p, c in PROGRAMS
]  # fmt: skip


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={  # what a run may choose; no param names a file, a URL or a connection
        "lead_times": Param([30, 7, 1], type="array", items={"type": "integer", "minimum": 0}),
        "catch_up_days": Param(3, type="integer", minimum=0),
        "shard_size": Param(500, type="integer", minimum=1),
        "holdout_share": Param(0, type="number", minimum=0, maximum=1),
        "holdout_salt": Param("neo-reminders", type="string"),
        "channel": Param("email", type="string", enum=["email", "neo_message", "webhook"]),
        "neo_message_channel": Param("email", type="string", enum=["email", "sms", "whatsapp"]),
        "webhook_batch_size": Param(100, type="integer", minimum=1),
    },
)
def neo_points_expiry_reminder() -> None:
    # [START howto_task_group_expiry_reminders]
    reminders = ExpiryReminderTaskGroup(
        group_id="reminders",
        customers_path=f"{DATA_DIR}/customers.csv",
        suppression_path=SUPPRESSION_PATH,
        output_dir=OUTPUT_DIR,
        # The database of NEO_LEDGER_CONN_ID (several hosts), else this SQLite file (one machine).
        ledger_path=f"{OUTPUT_DIR}/sent-ledger.sqlite3",
        ledger_conn_id=os.environ.get("NEO_LEDGER_CONN_ID", ""),
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
        channel="{{ params.channel }}",  # one of the channels below, all set here
        pool="neo",  # find, and send when the run chooses neo_message
        channels={
            "email": SmtpEmailChannel(smtp_conn_id="smtp_default", from_email=FROM),
            "neo_message": NeoMessageChannel(medium=MEDIUM, from_email=FROM, sms_sender="REWARDS"),
            "webhook": WebhookChannel(
                http_conn_id="neo_reminder_webhook", batch_size="{{ params.webhook_batch_size }}"
            ),
        },
    )
    # [END howto_task_group_expiry_reminders]
    # [START howto_operator_expiring_points]
    export = ExpiringPointsOperator.partial(
        task_id="export_expiring_allocations",
        customers_path=f"{OUTPUT_DIR}/reminders/" + "{{ ds }}.csv",  # the day's list
        days_ahead=0,
        window_days=31,
        output_format="csv",
        pool="neo",
    ).expand_kwargs(EXPORTS)
    # [END howto_operator_expiring_points]
    reminders >> export


neo_points_expiry_reminder()
