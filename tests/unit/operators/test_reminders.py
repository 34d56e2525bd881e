"""The reminder operators and their task group, built as a DAG file builds them: arguments
checked at parse time (naming the argument) unless they are templates, rendered values
converted, and the task group's tasks and their order."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_neo.operators.reminders import (
    DeliverRemindersOperator,
    ExpiryDaysOperator,
    FindRemindersOperator,
    PublishRemindersOperator,
    SplitCustomersOperator,
    parse_lead_times,
    parse_programs,
    parse_retention,
    parse_share,
    structured,
)
from airflow_provider_neo.reminders import ReminderChannel, ReminderMessage
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

MESSAGE = ReminderMessage(unsubscribe_url="https://b.example/u?c={customer_id}&t={token}")


class Quiet(ReminderChannel):
    def send(self, batch: list[Any]) -> None:
        pass


WRONG: dict[str, Any] = {
    "lead_times": lambda: ExpiryDaysOperator(task_id="t", lead_times=[30, -1]),
    "catch_up_days": lambda: ExpiryDaysOperator(task_id="t", catch_up_days="x"),
    "shard_size": lambda: SplitCustomersOperator(
        task_id="t", customers_path="c", output_dir="o", shard_size=0
    ),
    "programs": lambda: FindRemindersOperator(
        task_id="t", shard={}, expiry_days={}, output_dir="o", programs=[{"program_id": "x"}]
    ),
    "channel": lambda: DeliverRemindersOperator(
        task_id="t", found={}, channel="sms", message=MESSAGE, channels={"email": Quiet()}
    ),
    "holdout_share": lambda: DeliverRemindersOperator(
        task_id="t", found={}, channel=Quiet(), message=MESSAGE, holdout_share=1.5
    ),
    "max_shards": lambda: SplitCustomersOperator(
        task_id="t", customers_path="c", output_dir="o", max_shards=0
    ),
    "international_email": lambda: SplitCustomersOperator(
        task_id="t", customers_path="c", output_dir="o", international_email="maybe"
    ),
    "output_dir": lambda: DeliverRemindersOperator(
        task_id="t", found={}, channel=Quiet(), message=MESSAGE, suppression_path="s.csv"
    ),
    "prune_after_days": lambda: PublishRemindersOperator(
        task_id="t",
        expiry_days={},
        shards=[],
        output_dir="o",
        find_task_id="f",
        deliver_task_id="d",
        prune_after_days=0,
    ),
}


@pytest.mark.parametrize("argument", WRONG)
def test_a_wrong_argument_fails_when_the_dag_is_parsed_naming_it(argument: str) -> None:
    with (
        DAG("d", schedule=None, start_date=datetime(2026, 1, 1)),
        pytest.raises(ValueError, match=rf"^{argument}:"),
    ):
        WRONG[argument]()


def test_templates_are_checked_when_rendered_and_rendered_text_is_converted() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        ExpiryDaysOperator(task_id="t", lead_times="{{ params.lead_times }}")  # not checked yet
    assert parse_lead_times("[30, 7, 1]") == [30, 7, 1]
    assert parse_share("holdout_share", "0.2") == 0.2
    assert (
        parse_programs("[{'program_id': 2282, 'point_category_id': 17383}]")[0].program_id == 2282
    )
    assert structured("shard", {"index": 1}) == {"index": 1}
    with pytest.raises(ValueError, match=r"^lead_times: expected a list"):
        parse_lead_times("30 days")
    assert (parse_retention("90"), parse_retention(""), parse_retention(None)) == (90, None, None)


def test_the_task_group_chains_the_steps_with_one_mapped_group_per_shard() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        group = ExpiryReminderTaskGroup(
            group_id="reminders", customers_path="c.csv", output_dir="out", channel=Quiet(),
            message=MESSAGE,
        )  # fmt: skip
    tasks = {task.task_id: task for task in dag.tasks}
    assert set(tasks) == {
        "reminders.expiry_days", "reminders.split_customers", "reminders.shard.find",
        "reminders.shard.send", "reminders.publish",
    }  # fmt: skip
    assert tasks["reminders.shard.find"].upstream_task_ids == {
        "reminders.expiry_days", "reminders.split_customers",
    }  # fmt: skip
    assert tasks["reminders.shard.send"].upstream_task_ids == {"reminders.shard.find"}
    publish = tasks["reminders.publish"]
    assert isinstance(publish, PublishRemindersOperator)
    assert "reminders.shard.send" in publish.upstream_task_ids
    assert publish.trigger_rule == "all_done"
    assert isinstance(publish, PublishRemindersOperator)
    assert (publish.find_task_id, publish.deliver_task_id) == (
        "reminders.shard.find",
        "reminders.shard.send",
    )
    assert group.publish is publish
    assert publish.prune_after_days is None  # retention is the DAG author's choice


def test_the_task_group_hands_its_retention_to_publish() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ExpiryReminderTaskGroup(
            group_id="reminders", customers_path="c.csv", output_dir="out", channel=Quiet(),
            message=MESSAGE, prune_after_days="{{ var.value.retention }}",
        )  # fmt: skip
    publish = dag.get_task("reminders.publish")
    assert isinstance(publish, PublishRemindersOperator)
    assert publish.prune_after_days == "{{ var.value.retention }}"
    assert "prune_after_days" in publish.template_fields


class _TaskInstance:
    """What the split reads of its task instance: its identity, and where XComs go."""

    dag_id, run_id, task_id, map_index = "d", "r", "split_customers", -1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _split(tmp_path: Path, **arguments: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ti = _TaskInstance()
    shards = SplitCustomersOperator(
        task_id="split_customers", customers_path=str(tmp_path / "crm.csv"),
        output_dir=str(tmp_path / "out"), **arguments,
    ).execute({"run_id": "r", "ti": ti})  # fmt: skip
    return shards, ti.pushed["rows"]


def test_the_split_maps_no_more_shards_than_max_map_length_and_max_shards_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"{400000001 + n},c{n}@example.com,C{n}" for n in range(20)]
    (tmp_path / "crm.csv").write_text("customer_id,email,first_name\n" + "\n".join(lines))
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    shards, rows = _split(tmp_path, shard_size=2)
    assert [shard["customers"] for shard in shards] == [7, 7, 6]
    assert rows == {"rows": 20, "customers": 20, "rejected_rows": 0,
                    "rejects_path": str(tmp_path / "out/runs/r/shards/rejects.csv"),
                    "rejects": []}  # fmt: skip
    shards, _ = _split(tmp_path, shard_size=2, max_shards="2")
    assert [shard["customers"] for shard in shards] == [10, 10]


def test_the_split_counts_rejected_rows_in_its_xcom_and_fails_on_a_file_level_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "crm.csv").write_text(
        "customer_id,email,first_name\n1,a@example.com,A\n 2,b@example.com,B\n3,c@x,C\n"
    )
    shards, rows = _split(tmp_path)
    assert [shard["customers"] for shard in shards] == [1]
    assert rows["rejected_rows"] == 2
    assert [(r["line"], r["column"]) for r in rows["rejects"]] == [
        (3, "customer_id"), (4, "email"),
    ]  # fmt: skip
    (tmp_path / "crm.csv").write_text("customer_id,mail,first_name\n1,a@example.com,A\n")
    with pytest.raises(ValueError, match=r"^customers_path: .*crm.csv has no 'email' column"):
        _split(tmp_path)
