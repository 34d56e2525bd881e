"""Airflow discovers the provider through its entry point, with metadata of the right shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

from airflow_provider_neo.get_provider_info import get_provider_info

REQUIRED_KEYS = {
    "package-name", "name", "description", "integrations", "hooks", "operators", "sensors",
    "triggers", "notifications", "connection-types",
}  # fmt: skip


def test_entry_point_returns_the_provider_info() -> None:
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_neo")
    ]
    info = entry.load()()
    assert set(info) >= REQUIRED_KEYS
    assert info["package-name"] == "airflow-provider-neo"
    assert info["versions"][0] == version("airflow-provider-neo")
    assert info == get_provider_info()


def test_airflow_lists_the_provider(tmp_path: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), "providers", "get", "airflow-provider-neo", "--output", "json"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    start = result.stdout.index("[")
    assert json.loads(result.stdout[start:]) == [
        {"Provider": "airflow-provider-neo", "Version": version("airflow-provider-neo")}
    ]


def test_airflow_lists_the_hook_and_triggers(tmp_path: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}

    def listed(what: str) -> str:
        result = subprocess.run(
            [str(airflow), "providers", what, "--output", "json"],
            capture_output=True, text=True, timeout=120, check=True, env=env,
        )  # fmt: skip
        return result.stdout

    assert "airflow_provider_neo.hooks.neo.NeoHook" in listed("hooks")
    triggers = json.loads(listed("triggers")[listed("triggers").index("[") :])
    assert {
        "package_name": "airflow-provider-neo",
        "class": "airflow_provider_neo.triggers.neo",
        "integration_name": "Capillary Neo",
    } in triggers


def test_every_listed_module_imports() -> None:
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_the_reminder_workflows_operators_are_listed_with_the_endpoint_operators() -> None:
    import importlib

    (entry,) = get_provider_info()["operators"]
    listed = {
        name
        for module in entry["python-modules"]
        for name in dir(importlib.import_module(module))
        if name.endswith("Operator")
    }
    assert listed >= {
        "ExpiringPointsOperator", "PointsAwardedOperator", "EventPointsAllocationOperator",
        "ExpiredPointsOperator", "ExpiryDaysOperator", "SplitCustomersOperator",
        "FindRemindersOperator", "DeliverRemindersOperator", "PublishRemindersOperator",
        "ReminderEffectivenessOperator", "PointsEarnedEmailOperator",
    }  # fmt: skip
