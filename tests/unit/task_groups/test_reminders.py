"""ExpiryReminderTaskGroup's pool: the tasks that call Neo run in it, the others do not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_neo.reminders import ReminderChannel, ReminderMessage
from airflow_provider_neo.reminders.channels import NeoMessageChannel, SmtpEmailChannel
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

MESSAGE = ReminderMessage(unsubscribe_url="https://b.example/u?c={customer_id}&t={token}")
EMAIL = SmtpEmailChannel(from_email="rewards@b.example")
NEO = NeoMessageChannel(from_email="rewards@b.example")


def pools(**arguments: Any) -> dict[str, tuple[str, int]]:
    """task id -> (pool, pool slots) of the group built with `arguments`."""
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ExpiryReminderTaskGroup(
            group_id="reminders", customers_path="c.csv", output_dir="out", message=MESSAGE,
            **arguments,
        )  # fmt: skip
    return {task.task_id.split(".", 1)[1]: (task.pool, task.pool_slots) for task in dag.tasks}


def test_find_takes_the_neo_pool_and_the_steps_without_neo_do_not() -> None:
    assert pools(channel=EMAIL, pool="neo", pool_slots=2) == {
        "expiry_days": ("default_pool", 1),
        "split_customers": ("default_pool", 1),
        "shard.find": ("neo", 2),
        "shard.send": ("default_pool", 1),  # SMTP: Neo's budget is not drawn on
        "publish": ("default_pool", 1),
    }


@pytest.mark.parametrize(
    ("channel", "channels"),
    [
        (NEO, None),
        ("neo", {"email": EMAIL, "neo": NEO}),
        ("{{ params.channel }}", {"email": EMAIL, "neo": NEO}),  # a run may choose Neo
    ],
    ids=["neo-message", "named", "chosen-by-a-run"],
)
def test_send_takes_the_neo_pool_when_it_may_go_through_neo(
    channel: ReminderChannel | str, channels: dict[str, ReminderChannel] | None
) -> None:
    assert pools(channel=channel, channels=channels, pool="neo")["shard.send"] == ("neo", 1)


@pytest.mark.parametrize(
    ("channel", "channels"),
    [
        ("email", {"email": EMAIL, "neo": NEO}),
        ("{{ params.channel }}", {"email": EMAIL}),
    ],
    ids=["named-email", "chosen-among-email-only"],
)
def test_send_stays_out_of_the_neo_pool_when_it_cannot_go_through_neo(
    channel: ReminderChannel | str, channels: dict[str, ReminderChannel] | None
) -> None:
    assert pools(channel=channel, channels=channels, pool="neo")["shard.send"] == (
        "default_pool",
        1,
    )


def test_without_a_pool_every_task_is_in_airflows_default_pool() -> None:
    assert set(pools(channel=NEO).values()) == {("default_pool", 1)}
