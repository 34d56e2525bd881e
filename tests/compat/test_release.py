"""One supported Airflow release, with the provider's built wheel installed in its own venv
(``pytest tests/compat --airflow-venv .matrix/airflow-X``; `make compat` builds the venvs and
runs this for every release in releases.py). The checks run in that venv's own processes: its
Python for the probes, its `airflow dags test` for the example DAGs, against the simulator and
the local SMTP server started from this (the newest) environment."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from airflow_provider_neo import __version__
from airflow_provider_neo.connection import FORM_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_neo.get_provider_info import get_provider_info
from airflow_provider_neo.hooks.neo import NeoHook
from demo.environment import REPOSITORY, DemoEnvironment
from tests.compat.releases import RELEASES, Release
from tests.dag_runs import (
    DAY,
    REMINDER_DAG,
    emailed_keys,
    expected_reminders,
    run_dag,
    transaction_points_run,
)

PROBE = Path(__file__).parent / "probe.py"


@pytest.fixture(scope="module")
def venv(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.getoption("--airflow-venv")).resolve()


@pytest.fixture(scope="module")
def release(venv: Path) -> Release:
    return next(r for r in RELEASES if r.name == venv.name)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, venv: Path) -> Iterator[DemoEnvironment]:
    """The demo's simulator (3,000 customers), SMTP server and an Airflow home of the release."""
    with DemoEnvironment(tmp_path_factory.mktemp("demo"), airflow_bin=venv / "bin") as demo:
        yield demo


def _probe(venv: Path, check: str, *args: str, env: dict[str, str] | None = None) -> Any:
    out = venv / f"probe-{check}.json"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(PROBE), check, str(out), *args],
        env={
            **os.environ, "AIRFLOW_HOME": str(venv / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **(env or {}),
        },
        capture_output=True, text=True, timeout=300, cwd=venv,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return json.loads(out.read_text())


def test_airflow_registers_the_installed_wheel_its_hook_and_its_form(
    venv: Path, release: Release
) -> None:
    seen = _probe(venv, "installation")
    assert seen["airflow"] == release.airflow
    assert seen["import_failures"] == {}  # every module of the provider imports
    assert Path(seen["provider_file"]).is_relative_to(venv)  # the wheel, not the checkout
    assert seen["provider_version"] == __version__
    connection_type = get_provider_info()["connection-types"][0]
    assert seen["hook"] == (
        f"{connection_type['hook-class-name']} neo {connection_type['hook-name']}"
    )
    # The form: widgets up to 3.1, conn-fields from 3.2; the same fields either way.
    assert seen["form_fields"] == sorted(f.name for f in FORM_FIELDS)
    assert seen["field_behaviour"] == UI_FIELD_BEHAVIOUR


def test_the_example_dags_parse_without_errors_or_warnings(venv: Path) -> None:
    seen = _probe(venv, "dag_folder", str(REPOSITORY / "dags"))
    assert seen["import_errors"] == {}
    assert seen["warnings"] == []
    assert seen["dag_ids"] == [
        "neo_bill_points", "neo_expired_points_report", "neo_points_expiring_soon",
        "neo_points_expiry_reminder", "neo_reminder_effectiveness", "neo_reminder_steps",
        "neo_transaction_points",
    ]  # fmt: skip


def test_the_hook_reads_what_it_reads_on_the_newest_airflow(
    venv: Path, env: DemoEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    with env.customers_csv.open() as handle:
        customers = [row["customer_id"] for row in csv.DictReader(handle)][:300]
    window = ("2026-11-21", "2027-03-31")
    connection = {"AIRFLOW_CONN_NEO_DEFAULT": env.neo_connection()}
    seen = _probe(venv, "expiring", ",".join(customers), *window, env=connection)

    monkeypatch.setenv("AIRFLOW_CONN_NEO_DEFAULT", connection["AIRFLOW_CONN_NEO_DEFAULT"])
    hook = NeoHook()
    rows = hook.iter_expiring_allocations(
        [int(c) for c in customers], program_id=2282, point_category_id=17383,
        expiry_start=window[0], expiry_end=window[1],
    )  # fmt: skip
    here = sorted(json.dumps(row, sort_keys=True) for row in msgspec.to_builtins(list(rows)))
    assert len(here) > 50
    assert seen["rows"] == here
    assert seen["requests"] == hook.stats.requests


def test_the_reminder_dag_emails_every_reminder_once(venv: Path, env: DemoEnvironment) -> None:
    expected = expected_reminders(env, DAY)
    assert len(expected) > 10
    run_dag(env, REMINDER_DAG, DAY)
    emailed = emailed_keys(env)
    assert sorted(emailed) == sorted(expected)
    figures = {"emails": len(emailed), "neo_requests": env.neo_requests()}
    (venv / "figures.json").write_text(json.dumps(figures))


def test_a_brands_20_line_dag_runs_the_whole_workflow_from_the_wheel_alone(
    venv: Path, release: Release, env: DemoEnvironment
) -> None:
    """tests/brand_dags/brand_expiry_reminders.py, with no file of this repository's dags/ and
    only the installed wheel, delivers what the example DAG (and make demo) delivers. On the
    newest release: the example DAG proves the same task group on every release."""
    if release != RELEASES[-1]:
        pytest.skip("the brand DAG runs on the newest release")
    expected = expected_reminders(env, DAY)
    before = len(emailed_keys(env))
    brand = {"AIRFLOW__CORE__DAGS_FOLDER": str(REPOSITORY / "tests" / "brand_dags")}
    result = env.dags_test("brand_expiry_reminders", DAY, env=brand)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert sorted(emailed_keys(env)[before:]) == sorted(expected)


def test_the_deferred_sensor_waits_in_its_trigger_then_the_customer_is_emailed_once(
    env: DemoEnvironment,
) -> None:
    output, notes = transaction_points_run(env, "BILL-COMPAT-1")
    assert "running trigger in line" in output  # the sensor deferred to its trigger
    assert [note["Subject"] for note in notes] == ["You earned 37.5 points"]
