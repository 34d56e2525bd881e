"""The points-expiry reminder workflow as one task group: a brand's DAG adds it in one call and
chains its own tasks before or after it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    templated,
)
from airflow_provider_neo.reminders.channels.base import ReminderChannel
from airflow_provider_neo.reminders.channels.neo_message import NeoMessageChannel
from airflow_provider_neo.reminders.ledger import DEFAULT_LEASE_SECONDS
from airflow_provider_neo.reminders.message import ReminderMessage


class ExpiryReminderTaskGroup(TaskGroup):
    """Remind customers of the points about to expire, every run, exactly once.

    ``expiry_days`` and ``split_customers``, then one mapped group per shard of the CRM extract
    (``shard.find`` then ``shard.send``, so that a failing shard does not hold back the
    others), then ``publish``. See the operators in `airflow_provider_neo.operators.reminders`
    for what each argument means; every one of them is templated.

    Shards stay within Airflow's limit on mapped instances at any size: there are at most
    `max_shards` of them, and never more than ``[core] max_map_length`` (1,024 by default, read
    from the deployment's config when ``split_customers`` runs); a shard holds `shard_size`
    customers, or ``ceil(customers / that bound)`` when the extract is larger. The split streams
    the extract once (memory flat in its size) and each shard's delivery reads only its own
    rows and the suppression list's index, so a day's cost grows linearly with the customers.

    :param customers_path: the CRM extract: a CSV of ``customer_id,email,first_name`` (and
        ``mobile``, ``email_opt_in``, ``sms_opt_in`` where used), at any ObjectStoragePath,
        every row checked (`airflow_provider_neo.reminders.crm`; bad rows are refused alone
        and listed in the run's ``shards/rejects.csv``).
    :param output_dir: where the run's shard files, the day's reminder list and its summary go.
    :param shard_size: customers per shard (500), more when the extract needs it (above).
    :param max_shards: the most shards, below ``[core] max_map_length`` if the deployment wants
        fewer mapped instances per run.
    :param international_email: take non-ASCII (RFC 6531) addresses; only for channels whose
        server takes them (SMTPUTF8).
    :param channel: a `ReminderChannel`, or the name of one of `channels`.
    :param message: the brand's `ReminderMessage`.
    :param ledger_path: the sent-ledger as a SQLite file, for one machine; or
    :param ledger_conn_id: a database connection (PostgreSQL) every worker host reaches.
    :param conf_may_set: the params a triggered run's conf may set although a location reads
        them (a file, a folder, the ledger, a connection, the channels' and the message's
        targets and templates); by default none. Given to every task of the group.
    :param pool: the Airflow pool of the tasks that call Neo, so that no more of them run at
        once, across every worker, than the connection's rate budget keeps busy (the docs'
        deployment page gives the rule for its slots): ``shard.find``, and
        ``shard.send`` when the channel may be `NeoMessageChannel` (one of `channels` that a
        templated `channel` may name counts). None: Airflow's default pool.
    :param pool_slots: the slots each of those tasks takes in `pool`.
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
        max_shards: Any = None,
        international_email: Any = False,
        suppression_path: str | None = None,
        holdout_share: Any = 0,
        holdout_salt: str = "neo-reminders",
        claim_lease_seconds: Any = DEFAULT_LEASE_SECONDS,
        prune_after_days: Any = None,
        neo_conn_id: str = DEFAULT_CONN_ID,
        conf_may_set: Iterable[str] = (),
        pool: str | None = None,
        pool_slots: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(group_id=group_id, **kwargs)
        if isinstance(conf_may_set, str):
            raise TypeError(f"conf_may_set: expected a list of param names, got {conf_may_set!r}")
        trust: dict[str, Any] = {"conf_may_set": tuple(conf_may_set)}
        ledger = {"ledger_path": ledger_path, "ledger_conn_id": ledger_conn_id}
        neo_pool: dict[str, Any] = {"pool": pool, "pool_slots": pool_slots} if pool else {}
        send_pool = neo_pool if _may_call_neo(channel, channels) else {}
        with self:
            days = ExpiryDaysOperator(
                task_id="expiry_days", lead_times=lead_times, catch_up_days=catch_up_days,
                neo_conn_id=neo_conn_id, **ledger, **trust,
            )  # fmt: skip
            shards = SplitCustomersOperator(
                task_id="split_customers", customers_path=customers_path,
                output_dir=output_dir, shard_size=shard_size, max_shards=max_shards,
                suppression_path=suppression_path, international_email=international_email, **trust,
            )  # fmt: skip

            @task_group(group_id="shard")
            def shard(shard: Any, expiry_days: Any) -> Any:
                """One shard, found then delivered: its own chain, failing alone."""
                found = FindRemindersOperator(
                    task_id="find", shard=shard, expiry_days=expiry_days, output_dir=output_dir,
                    programs=programs, min_points=min_points, neo_conn_id=neo_conn_id, **trust,
                    **neo_pool,
                )  # fmt: skip
                return DeliverRemindersOperator(
                    task_id="send", found=found.output, channel=channel, channels=channels,
                    message=message, suppression_path=suppression_path, output_dir=output_dir,
                    holdout_share=holdout_share,
                    holdout_salt=holdout_salt, claim_lease_seconds=claim_lease_seconds, **ledger,
                    **trust, **send_pool,
                )  # fmt: skip

            delivered = shard.partial(expiry_days=days.output).expand(shard=shards.output)
            shard_tasks = f"{self.group_id}.shard" if self.prefix_group_id else "shard"
            self.publish = PublishRemindersOperator(
                task_id="publish", expiry_days=days.output, shards=shards.output,
                output_dir=output_dir, find_task_id=f"{shard_tasks}.find",
                deliver_task_id=f"{shard_tasks}.send", split_task_id=shards.task_id,
                prune_after_days=prune_after_days,
                **ledger, **trust,
            )  # fmt: skip
            delivered >> self.publish


def _may_call_neo(
    channel: ReminderChannel | str, channels: Mapping[str, ReminderChannel] | None
) -> bool:
    """Whether delivery may go through Neo (`NeoMessageChannel`, on the connection's rate
    budget): a channel is known when the DAG is parsed, a templated name only when a run
    renders it, so any of `channels` it may name counts."""
    if isinstance(channel, ReminderChannel):
        return isinstance(channel, NeoMessageChannel)
    named = (channels or {}).values() if templated(channel) else [(channels or {}).get(channel)]
    return any(isinstance(candidate, NeoMessageChannel) for candidate in named)
