"""Running the example DAGs with `airflow dags test` in a DemoEnvironment, and what their runs
should deliver, computed from the simulator's own tables (not through the API). Shared by the
end-to-end tests and the compatibility matrix, which runs them on every supported Airflow."""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import requests

from demo.environment import DemoEnvironment
from tests.ground_truth import available_points_by_customer

DAY = "2026-11-21"
LEADS = (30, 7, 1)
PROGRAMS = ((2282, 17383), (3379, 40022), (3379, 40023))
REMINDER_DAG = "neo_points_expiry_reminder"


def expected_reminders(env: DemoEnvironment, day: str) -> dict[str, Decimal]:
    """reminder key -> points for a run of `day` that catches nothing up."""
    anchor = dt.date.fromisoformat(day)
    return expected_for(env, [(lead, anchor + dt.timedelta(days=lead)) for lead in LEADS])


def expected_for(
    env: DemoEnvironment, reminded: Iterable[tuple[int, dt.date]]
) -> dict[str, Decimal]:
    """reminder key -> points for (lead time, expiry day) pairs, computed from the simulator's
    tables, not through the API."""
    with env.customers_csv.open() as handle:
        customers = {int(row["customer_id"]) for row in csv.DictReader(handle)}
    expected: dict[str, Decimal] = {}
    for lead, when in reminded:
        totals = available_points_by_customer(
            env.db_path, customers=customers, day=when, timezone=env.timezone, programs=PROGRAMS
        )
        for customer, milli in totals.items():
            if milli >= 1000:  # min_points = 1
                expected[f"{customer}:{when.isoformat()}:{lead}"] = Decimal(milli) / 1000
    return expected


def emailed_keys(env: DemoEnvironment) -> list[str]:
    """The reminder keys of every email the local SMTP server accepted, in order."""
    return [
        message["X-Neo-Reminder-Key"]
        for message in env.mailbox.messages()
        if message["X-Neo-Reminder-Key"]
    ]


def run_dag(
    env: DemoEnvironment,
    dag_id: str,
    day: str,
    conf: dict[str, Any] | None = None,
    env_vars: dict[str, str] | None = None,
) -> str:
    """`airflow dags test` of `dag_id` for `day`, with `conf` and the deployment's `env_vars`
    added to the environment's, which must succeed; its output."""
    result = env.dags_test(dag_id, day, conf, env=env_vars)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def summary_file(env: DemoEnvironment, day: str) -> dict[str, Any]:
    """The summary the run of `day` wrote beside its reminder list."""
    path = env.data_dir / "neo" / "reminders" / f"{day}.summary.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def post_once_the_sensor_has_looked(env: DemoEnvironment, rows: list[dict[str, Any]]) -> None:
    """Once an event sensor has asked Neo and found nothing (so it defers), add `rows` to the
    simulator: in a thread, while the DAG runs."""
    requests.post(f"{env.simulator.url}/__sim/reset", timeout=10)  # zero the request counts

    def post() -> None:
        stats = f"{env.simulator.url}/__sim/stats"
        while "event_allocations" not in requests.get(stats, timeout=10).json()["requests"]:
            time.sleep(0.2)
        posted = requests.post(f"{env.simulator.url}/__sim/allocations", json=rows, timeout=10)
        posted.raise_for_status()

    threading.Thread(target=post, daemon=True).start()


BUYER = 400000003  # a customer of the demo's CRM extract


def transaction_points_run(env: DemoEnvironment, bill_number: str) -> tuple[str, list[Any]]:
    """`neo_transaction_points` for a 37.5-point bill of BUYER that Neo allocates only once the
    sensor has looked (so it defers): the run's output, and the emails about that bill."""
    bill = {
        "customer_id": BUYER, "program_id": 2282, "point_category_id": 17383, "points": "37.5",
        "expiry_date": "2027-11-21", "entity_id": bill_number, "event_type_id": 15,
    }  # fmt: skip
    post_once_the_sensor_has_looked(env, [bill])
    conf = {"customer_id": BUYER, "entity_id": bill_number, "event_type": "TransactionAdd"}
    output = run_dag(env, "neo_transaction_points", DAY, conf)
    notes = [
        message
        for message in env.mailbox.messages()
        if message["X-Neo-Notification-Key"] == f"earned:{BUYER}:{bill_number}"
    ]
    return output, notes
