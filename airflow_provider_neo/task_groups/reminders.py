"""The points-expiry reminder workflow as one task group: a brand's DAG adds it in one call and
chains its own tasks before or after it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.providers.common.compat.sdk import TaskGroup, task_group

from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.operators.reminders import (
    DEFAULT_PROGRAMS,
    DeliverRemindersOperator,
    ExpiryDaysOperator,
    FindRemindersOperator,
    PublishRemindersOperator,
    SplitCustomersOperator,
)
from airflow_provider_neo.reminders.channels.base import ReminderChannel
from airflow_provider_neo.reminders.ledger import DEFAULT_LEASE_SECONDS
from airflow_provider_neo.reminders.message import ReminderMessage


class ExpiryReminderTaskGroup(TaskGroup):
    """Remind customers of the points about to expire, every run, exactly once.

    ``expiry_days`` and ``split_customers``, then one mapped group per shard of the CRM extract
    (``shard.find`` then ``shard.send``, so that a failing shard does not hold back the
    others), then ``publish``. See the operators in `airflow_provider_neo.operators.reminders`
    for what each argument means; every one of them is templated.

    :param customers_path: the CRM extract: a CSV of ``customer_id,email,first_name`` (and
        ``mobile``, ``email_opt_in``, ``sms_opt_in`` where used), at any ObjectStoragePath.
    :param output_dir: where the run's shard files, the day's reminder list and its summary go.
    :param channel: a `ReminderChannel`, or the name of one of `channels`.
    :param message: the brand's `ReminderMessage`.
    :param ledger_path: the sent-ledger as a SQLite file, for one machine; or
    :param ledger_conn_id: a database connection (PostgreSQL) every worker host reaches.
    :param prune_after_days: the ledger's retention, applied by ``publish``: reminders of expiry
        days more than this many days before the run's day are pruned (default: none are).
    """

    def __init__(
        self,
        *,
        group_id: str = "expiry_reminders",
        customers_path: str,
        output_dir: str,
        channel: ReminderChannel | str,
        message: ReminderMessage,
        channels: Mapping[str, ReminderChannel] | None = None,
        ledger_path: str | None = None,
        ledger_conn_id: str | None = None,
        lead_times: Any = (30, 7, 1),
        catch_up_days: Any = 3,
        programs: Any = DEFAULT_PROGRAMS,
        min_points: Any = 1,
        shard_size: Any = 500,
        suppression_path: str | None = None,
        holdout_share: Any = 0,
        holdout_salt: str = "neo-reminders",
        claim_lease_seconds: Any = DEFAULT_LEASE_SECONDS,
        prune_after_days: Any = None,
        neo_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(group_id=group_id, **kwargs)
        ledger = {"ledger_path": ledger_path, "ledger_conn_id": ledger_conn_id}
        with self:
            days = ExpiryDaysOperator(
                task_id="expiry_days", lead_times=lead_times, catch_up_days=catch_up_days,
                neo_conn_id=neo_conn_id, **ledger,
            )  # fmt: skip
            shards = SplitCustomersOperator(
                task_id="split_customers", customers_path=customers_path,
                output_dir=output_dir, shard_size=shard_size,
            )  # fmt: skip

            @task_group(group_id="shard")
            def shard(shard: Any, expiry_days: Any) -> Any:
                """One shard, found then delivered: its own chain, failing alone."""
                found = FindRemindersOperator(
                    task_id="find", shard=shard, expiry_days=expiry_days, output_dir=output_dir,
                    programs=programs, min_points=min_points, neo_conn_id=neo_conn_id,
                )  # fmt: skip
                return DeliverRemindersOperator(
                    task_id="send", found=found.output, channel=channel, channels=channels,
                    message=message, customers_path=customers_path,
                    suppression_path=suppression_path, holdout_share=holdout_share,
                    holdout_salt=holdout_salt, claim_lease_seconds=claim_lease_seconds, **ledger,
                )  # fmt: skip

            delivered = shard.partial(expiry_days=days.output).expand(shard=shards.output)
            shard_tasks = f"{self.group_id}.shard" if self.prefix_group_id else "shard"
            self.publish = PublishRemindersOperator(
                task_id="publish", expiry_days=days.output, shards=shards.output,
                output_dir=output_dir, find_task_id=f"{shard_tasks}.find",
                deliver_task_id=f"{shard_tasks}.send", prune_after_days=prune_after_days,
                **ledger,
            )  # fmt: skip
            delivered >> self.publish
