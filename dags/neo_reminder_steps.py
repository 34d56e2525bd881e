"""The daily points-expiry reminders of ``neo_points_expiry_reminder``, step by step.

The workflow of ``ExpiryReminderTaskGroup`` with its five operators wired as the group wires
them, for a brand that puts a step of its own between two: ``expiry_days``, ``split_customers``,
per shard ``shard.find`` and ``shard.send`` (a mapped task group: a failing shard does not hold
back the others), then ``publish`` (``all_done``), which fails the run if any shard failed.

It reads the reminder DAG's extract and suppression list; its files and sent-ledger are its own
(``$NEO_DATA_DIR/neo/reminder-steps``, or ``$NEO_REMINDER_STEPS_LEDGER_CONN_ID``'s database).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.providers.common.compat.sdk import Param, dag, task_group

from airflow_provider_neo.operators.reminders import (
    DeliverRemindersOperator,
    ExpiryDaysOperator,
    FindRemindersOperator,
    PublishRemindersOperator,
    SplitCustomersOperator,
)
from airflow_provider_neo.reminders import ReminderMessage
from airflow_provider_neo.reminders.channels import SmtpEmailChannel

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
OUTPUT_DIR = f"{DATA_DIR}/neo/reminder-steps"  # the deployment's to say, never a run's
SUPPRESSION_PATH = os.environ.get("NEO_SUPPRESSION_PATH") or (
    f"{DATA_DIR}/suppression-list.csv" if os.path.exists(f"{DATA_DIR}/suppression-list.csv") else ""
)
LEDGER = {  # this DAG's own: the database of the connection (several hosts), else the file
    "ledger_path": f"{OUTPUT_DIR}/sent-ledger.sqlite3",
    "ledger_conn_id": os.environ.get("NEO_REMINDER_STEPS_LEDGER_CONN_ID", ""),
}


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
    },
)
def neo_reminder_steps() -> None:
    # [START howto_operator_expiry_days]
    days = ExpiryDaysOperator(
        task_id="expiry_days",
        lead_times="{{ params.lead_times }}",
        catch_up_days="{{ params.catch_up_days }}",
        **LEDGER,
    )
    # [END howto_operator_expiry_days]
    # [START howto_operator_split_customers]
    shards = SplitCustomersOperator(
        task_id="split_customers",
        customers_path=f"{DATA_DIR}/customers.csv",
        suppression_path=SUPPRESSION_PATH,
        output_dir=OUTPUT_DIR,
        shard_size="{{ params.shard_size }}",
    )
    # [END howto_operator_split_customers]
    email = SmtpEmailChannel(smtp_conn_id="smtp_default", from_email="rewards@example.com")
    message = ReminderMessage(
        unsubscribe_url="https://rewards.example.com/unsubscribe?customer={customer_id}&token={token}",
        unsubscribe_mailto="unsubscribe@example.com",
    )

    @task_group(group_id="shard")  # one shard, found then sent: its own chain, failing alone
    def shard(shard: Any, expiry_days: Any) -> Any:
        # [START howto_operator_find_reminders]
        found = FindRemindersOperator(
            task_id="find",
            shard=shard,  # one of split_customers' shards
            expiry_days=expiry_days,
            output_dir=OUTPUT_DIR,
            pool="neo",
        )
        # [END howto_operator_find_reminders]
        # [START howto_operator_deliver_reminders]
        return DeliverRemindersOperator(
            task_id="send",
            found=found.output,
            channel=email,
            message=message,
            suppression_path=SUPPRESSION_PATH,
            output_dir=OUTPUT_DIR,
            **LEDGER,
        )
        # [END howto_operator_deliver_reminders]

    delivered = shard.partial(expiry_days=days.output).expand(shard=shards.output)
    # [START howto_operator_publish_reminders]
    publish = PublishRemindersOperator(
        task_id="publish",
        expiry_days=days.output,
        shards=shards.output,
        output_dir=OUTPUT_DIR,
        find_task_id="shard.find",  # the mapped tasks it reads, per map index
        deliver_task_id="shard.send",
        split_task_id="split_customers",
        trigger_rule="all_done",  # the day's list and summary, whatever happened to the shards
        prune_after_days=os.environ.get("NEO_LEDGER_PRUNE_AFTER_DAYS", "90"),
        **LEDGER,
    )
    # [END howto_operator_publish_reminders]
    delivered >> publish


neo_reminder_steps()
