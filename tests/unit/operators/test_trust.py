"""The trust boundary of a triggered run: its conf may set the params a DAG author left open, never
one that a location (a file, a folder, the ledger, a connection, a channel's target, a template)
reads, unless the author allows that param by name."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowFailException

from airflow_provider_neo.operators.points_earned import PointsEarnedEmailOperator
from airflow_provider_neo.operators.reminders import (
    DeliverRemindersOperator,
    ExpiryDaysOperator,
    SplitCustomersOperator,
)
from airflow_provider_neo.operators.trust import (
    TrustBoundaryOperator,
    conf_redirects,
    template_reads,
)
from airflow_provider_neo.reminders import ReminderChannel, ReminderMessage
from airflow_provider_neo.reminders.channels import WebhookChannel
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup
from demo.environment import REPOSITORY

URL = "https://b.example/u?c={customer_id}&t={token}"
LOCATION_SUFFIXES = ("_path", "_dir", "_conn_id", "url", "_template", "email")


class BrandChannel(ReminderChannel):
    """A brand's channel that declares no locations: each template field counts as one."""

    template_fields = ("url", "api_version")

    def __init__(self, url: str, api_version: str = "3") -> None:
        self.url = url
        self.api_version = api_version


def run_with_conf(task: TrustBoundaryOperator, conf: dict[str, Any]) -> None:
    """What the task runner does first with a task of a run triggered with `conf`."""
    task.refuse_conf_redirects({"dag_run": SimpleNamespace(conf=conf), "params": conf})


def test_the_params_a_template_reads_are_found_in_every_spelling() -> None:
    reads = template_reads(
        "{{ params.a }}/{{ params['b'] }}/{{ params.get('c', 'x') }}/{{ params.d.e }}"
        "/{{ dag_run.conf['f'] }}/{{ dag_run.conf.get('g') }}/{{ var.value.h }}/{{ ds }}"
    )
    assert (reads.params, reads.conf) == ({"a", "b", "c", "d"}, {"f", "g"})
    assert not reads.any_param
    assert not reads.any_conf
    assert template_reads("{{ params[name] }}").any_param
    assert template_reads("{% for k, v in params.items() %}{{ v }}{% endfor %}").any_param
    assert template_reads("{{ dag_run.conf }}").any_conf
    assert not template_reads("/data/customers.csv").params


def test_a_conf_that_redirects_a_location_fails_the_task_naming_the_param_and_the_argument() -> (
    None
):
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        split = SplitCustomersOperator(
            task_id="split", customers_path="{{ params.customers_path }}", output_dir="/data/neo",
            shard_size="{{ params.shard_size }}",
        )  # fmt: skip
    run_with_conf(split, {"shard_size": 100})  # not a location: any run may set it
    with pytest.raises(
        AirflowFailException,
        match=r"^customers_path: the run's conf sets the param 'customers_path', which this"
        r" location reads \(\{\{ params.customers_path \}\}\).* conf_may_set",
    ):
        run_with_conf(split, {"customers_path": "/etc/passwd", "shard_size": 100})


def test_the_channels_and_the_message_locations_are_guarded_too() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        deliver = DeliverRemindersOperator(
            task_id="send", found={}, channel="{{ params.channel }}",
            channels={
                "webhook": WebhookChannel(
                    http_conn_id="{{ params.hook }}", batch_size="{{ params.batch }}"  # type: ignore[arg-type]
                ),
                "brand": BrandChannel(url="{{ dag_run.conf['esp_url'] }}"),
            },
            message=ReminderMessage(unsubscribe_url=URL, text_template="{{ params.text }}"),
            holdout_share="{{ params.holdout_share }}",
        )  # fmt: skip
    run_with_conf(deliver, {"channel": "webhook", "batch": 5, "holdout_share": 0.5})
    with pytest.raises(AirflowFailException) as refused:
        run_with_conf(deliver, {"hook": "evil", "esp_url": "https://x", "text": "/etc/passwd"})
    lines = str(refused.value).split("; ")
    assert [line.split(":")[0] for line in lines[:3]] == [
        "channels['webhook'].http_conn_id", "channels['brand'].url", "message.text_template",
    ]  # fmt: skip
    assert "the param 'hook'" in lines[0]
    assert "the param 'esp_url'" in lines[1]
    assert "the param 'text'" in lines[2]


def test_the_dag_author_may_open_a_location_param_by_name() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        deliver = DeliverRemindersOperator(
            task_id="send", found={}, channel=BrandChannel(url="https://esp.example"),
            message=ReminderMessage(unsubscribe_url=URL, text_template="{{ params.text }}"),
            suppression_path="{{ params.suppression_path }}", output_dir="/data/neo",
            conf_may_set=["suppression_path"],
        )  # fmt: skip
    run_with_conf(deliver, {"suppression_path": "/data/today-opt-outs.csv"})
    with pytest.raises(AirflowFailException, match=r"^message.text_template: .*'text'"):
        run_with_conf(deliver, {"suppression_path": "/data/x.csv", "text": "/etc/passwd"})
    with pytest.raises(TypeError, match="conf_may_set: expected a list"):
        ExpiryDaysOperator(task_id="days", conf_may_set="ledger_path")


def test_a_location_reading_params_without_naming_one_is_refused_when_a_run_has_a_conf() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        days = ExpiryDaysOperator(
            task_id="days", ledger_path="{{ params[params.which] }}", neo_conn_id="neo_default"
        )
    run_with_conf(days, {})
    with pytest.raises(AirflowFailException, match=r"^ledger_path: reads params or dag_run.conf"):
        run_with_conf(days, {"lead_times": [7]})


def test_a_deployment_that_keeps_conf_out_of_params_still_guards_dag_run_conf() -> None:
    owner = SimpleNamespace(
        template_fields=("path", "other"),
        location_fields=("path", "other"),
        path="{{ params.path }}",
        other="{{ dag_run.conf.other }}",
    )
    conf = {"path": "/etc/passwd", "other": "/etc/shadow"}
    assert [line.split(":")[0] for line in conf_redirects(owner, conf)] == ["path", "other"]
    only_conf = conf_redirects(owner, conf, conf_overrides_params=False)
    assert [line.split(":")[0] for line in only_conf] == ["other"]


def test_the_points_earned_email_guards_its_address_ledger_and_template() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)):
        notify = PointsEarnedEmailOperator(
            task_id="notify", rows=[], customer_id="{{ params.customer_id }}",
            entity_id="{{ params.entity_id }}", customer_email="{{ params.email }}",
            from_email="rewards@example.com", ledger_path="{{ params.ledger_path }}",
            conf_may_set=["email"],
        )  # fmt: skip
    run_with_conf(notify, {"customer_id": 7, "entity_id": "B-1", "email": "ana@example.com"})
    with pytest.raises(AirflowFailException, match=r"^ledger_path: .*'ledger_path'"):
        run_with_conf(notify, {"customer_id": 7, "ledger_path": "/tmp/other.sqlite3"})


def test_the_task_group_gives_conf_may_set_to_every_task() -> None:
    with DAG("d", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ExpiryReminderTaskGroup(
            customers_path="c.csv", output_dir="out", channel=BrandChannel(url="https://e"),
            message=ReminderMessage(unsubscribe_url=URL), conf_may_set=["suppression_path"],
        )  # fmt: skip
    assert {task.task_id: task.conf_may_set for task in dag.tasks} == {  # type: ignore[union-attr]
        task.task_id: ("suppression_path",) for task in dag.tasks
    }


def _partial(task: Any) -> dict[str, Any]:
    """A mapped task's arguments given to `partial` (a plain task has none)."""
    return dict(getattr(task, "partial_kwargs", {}))


def test_no_location_of_an_example_dag_reads_a_param_a_run_may_set() -> None:
    """Every param of the example DAGs can be set by a run's conf; none reaches a location,
    except those a DAG opens on purpose (the transaction DAG's ``email``). Operators that the
    boundary does not guard (the endpoint operators) are held to fields named as locations and
    params that may hold text (a number, such as a report's year, names no other file)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPOSITORY / "dags"))
    assert bag.import_errors == {}
    found: dict[str, list[str]] = {}
    for dag in bag.dags.values():
        conf = {name: "x" for name in dag.params}
        text = {name for name, param in dag.params.items() if "string" in str(param.schema)}
        for task in dag.tasks:
            if isinstance(task, TrustBoundaryOperator):
                problems = conf_redirects(task, conf, conf_may_set=task.conf_may_set)
            else:
                fields = [f for f in task.template_fields if f.endswith(LOCATION_SUFFIXES)]
                owner = SimpleNamespace(
                    template_fields=fields,
                    **{f: getattr(task, f, None) or _partial(task).get(f) for f in fields},
                )
                problems = conf_redirects(owner, {name: conf[name] for name in text})
            found[f"{dag.dag_id}.{task.task_id}"] = problems
    assert "neo_points_expiry_reminder.reminders.shard.send" in found
    assert "neo_expired_points_report.fetch_expired_points" in found
    assert {task: problems for task, problems in found.items() if problems} == {}
