"""The example DAGs are wiring of the provider's operators, sensors and task groups: short, no
class and no helper of their own, and between them they use the operators the docs show."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))
MAX_LINES = 120  # docstring included
MAX_HELPER_LINES = 5


@pytest.mark.parametrize("path", DAGS, ids=[path.name for path in DAGS])
def test_an_example_dag_is_short_and_defines_no_class_or_helper(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_LINES
    tree = ast.parse(source)
    assert [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)] == []
    helpers = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        # the DAG's own function and its task groups' are wiring, not helpers
        and not any(ast.unparse(d).startswith(("dag", "task_group")) for d in node.decorator_list)
        and (node.end_lineno or 0) - node.lineno + 1 > MAX_HELPER_LINES
    ]
    assert helpers == []


# What each docs page includes: the class and the marker around its example.
DOCUMENTED = {
    "ExpiringPointsOperator": "howto_operator_expiring_points",
    "ExpiredPointsOperator": "howto_operator_expired_points",
    "PointsAwardedOperator": "howto_operator_points_awarded",
    "EventPointsAllocationOperator": "howto_operator_event_points_allocation",
    "EventPointsAllocationSensor": "howto_sensor_event_points_allocation",
    "ExpiringPointsSensor": "howto_sensor_expiring_points",
    "PointsEarnedEmailOperator": "howto_operator_points_earned_email",
    "ReminderEffectivenessOperator": "howto_operator_reminder_effectiveness",
    "ExpiryReminderTaskGroup": "howto_task_group_expiry_reminders",
    "ExpiryDaysOperator": "howto_operator_expiry_days",
    "SplitCustomersOperator": "howto_operator_split_customers",
    "FindRemindersOperator": "howto_operator_find_reminders",
    "DeliverRemindersOperator": "howto_operator_deliver_reminders",
    "PublishRemindersOperator": "howto_operator_publish_reminders",
}
# The triggers' pages show the deferrable sensors that defer to them.
TRIGGER_EXAMPLES = {"howto_sensor_expiring_points", "howto_sensor_event_points_allocation"}


@pytest.mark.parametrize(("name", "marker"), DOCUMENTED.items(), ids=list(DOCUMENTED))
def test_each_documented_class_is_shown_between_its_markers_once(name: str, marker: str) -> None:
    found = []
    for path in DAGS:
        source = path.read_text()
        start, end = f"# [START {marker}]", f"# [END {marker}]"
        if start in source:
            found.append(source.split(start, 1)[1].split(end, 1))
    assert len(found) == 1, marker  # one file, and there its END after its START
    ((snippet, _),) = found
    assert f"{name}(" in snippet or f"{name}." in snippet
    if marker in TRIGGER_EXAMPLES:
        assert "deferrable=True" in snippet
