"""The example DAGs, run for real with `airflow dags test` against the simulator and a local
SMTP server; every result is checked against a computation from the simulator's own data."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests

from demo.environment import REPOSITORY, DemoEnvironment

DAY = "2026-11-21"
LEADS = (30, 7, 1)
PROGRAMS = ((2282, 17383), (3379, 40022), (3379, 40023))
REMINDER_DAG = "neo_points_expiry_reminder"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoEnvironment]:
    with DemoEnvironment(tmp_path_factory.mktemp("dags"), customers=1_200) as environment:
        yield environment


def test_every_dag_file_imports_without_errors_or_warnings() -> None:
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(REPOSITORY / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "neo_points_expiry_reminder", "neo_expired_points_report", "neo_transaction_points"
    }  # fmt: skip
    ours = [
        w
        for w in caught
        if "/dags/" in str(w.filename) or "airflow_provider_neo" in str(w.filename)
    ]
    assert ours == []


def _expected_reminders(env: DemoEnvironment, day: str) -> dict[str, Decimal]:
    """reminder key -> points, computed from the simulator's tables, not through the API."""
    tz = pendulum.timezone(env.timezone)
    with env.customers_csv.open() as handle:
        customers = {int(row["customer_id"]) for row in csv.DictReader(handle)}
    anchor = dt.date.fromisoformat(day)
    expected: dict[str, Decimal] = {}
    with sqlite3.connect(f"file:{env.db_path}?mode=ro", uri=True) as db:
        for lead in LEADS:
            when = anchor + dt.timedelta(days=lead)
            low = int(pendulum.datetime(when.year, when.month, when.day, tz=tz).timestamp() * 1000)
            high = low + 86_400_000 - 1
            totals: Counter[int] = Counter()
            for program, category in PROGRAMS:
                for customer, milli in db.execute(
                    "SELECT customer_id, MAX(points_exclusive_milli"
                    " - redeemed_exclusive_value_milli - expired_exclusive_value_milli"
                    " - returned_exclusive_value_milli, 0)"
                    " FROM allocations WHERE status = 'AVAILABLE' AND program_id = ?"
                    " AND point_category_id = ? AND expiry_date BETWEEN ? AND ?",
                    (program, category, low, high),
                ):
                    if customer in customers:
                        totals[customer] += milli
            for customer, milli in totals.items():
                if milli >= 1000:  # min_points = 1
                    expected[f"{customer}:{when.isoformat()}:{lead}"] = Decimal(milli) / 1000
    return expected


def _emailed(env: DemoEnvironment) -> list[str]:
    return [
        message["X-Neo-Reminder-Key"]
        for message in env.mailbox.messages()
        if message["X-Neo-Reminder-Key"]
    ]


def _run(env: DemoEnvironment, dag_id: str, day: str, conf: dict[str, Any] | None = None) -> str:
    result = env.dags_test(dag_id, day, conf)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def test_reminders_equal_an_independent_computation_and_rerunning_sends_nothing(
    env: DemoEnvironment,
) -> None:
    expected = _expected_reminders(env, DAY)
    assert len(expected) > 10
    _run(env, REMINDER_DAG, DAY)
    emailed = _emailed(env)
    assert sorted(emailed) == sorted(expected)  # every reminder, each once
    with (env.data_dir / "neo" / "reminders" / f"{DAY}.csv").open() as handle:
        listed = {
            f"{row['customer_id']}:{row['expiry_date']}:{row['lead_days']}": Decimal(
                row["remaining_points"]
            )
            for row in csv.DictReader(handle)
        }
    assert listed == expected
    message = env.mailbox.messages()[0]
    key = message["X-Neo-Reminder-Key"]
    assert message["Subject"].endswith(f"points expire on {key.split(':')[1]}")
    _run(env, REMINDER_DAG, DAY)  # the same date again
    assert _emailed(env) == emailed


def test_consecutive_days_remind_each_allocation_once_per_lead_time(env: DemoEnvironment) -> None:
    before = Counter(_emailed(env))
    next_day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=1)).isoformat()
    _run(env, REMINDER_DAG, next_day)
    after = Counter(_emailed(env))
    new = after - before
    assert sorted(new) == sorted(_expected_reminders(env, next_day))
    assert max(after.values()) == 1  # no reminder twice across the two days


def test_a_delivery_interrupted_half_way_is_retried_and_sends_exactly_the_rest(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=2)).isoformat()
    expected = _expected_reminders(env, day)
    already = len(env.mailbox.messages())
    # The mail server goes down after half the day's emails, and comes back a little later.
    env.mailbox.refuse_after(already + len(expected) // 2)

    def recover() -> None:
        while len(env.mailbox.messages()) < already + len(expected) // 2:
            time.sleep(0.2)
        time.sleep(3)
        env.mailbox.refuse_after(None)

    threading.Thread(target=recover, daemon=True).start()
    output = _run(env, REMINDER_DAG, day)
    assert "451" in output  # a delivery task failed on the refused message, then was retried
    new_keys = _emailed(env)[already:]
    assert sorted(new_keys) == sorted(expected)  # the other half, exactly, none twice


def test_expired_points_report_equals_the_simulators_data(env: DemoEnvironment) -> None:
    output = _run(env, "neo_expired_points_report", "2025-01-01")
    report = env.data_dir / "neo" / "reports" / "expired-points-2025.csv"
    with report.open() as handle:
        rows = list(csv.DictReader(handle))
    tz = pendulum.timezone(env.timezone)
    low = int(pendulum.datetime(2025, 1, 1, tz=tz).timestamp() * 1000)
    high = int(pendulum.datetime(2026, 1, 1, tz=tz).timestamp() * 1000) - 1
    with env.customers_csv.open() as handle:
        customers = {int(row["customer_id"]) for row in csv.DictReader(handle)}
    with sqlite3.connect(f"file:{env.db_path}?mode=ro", uri=True) as db:
        truth: Counter[tuple[int, int]] = Counter()
        for customer, program, milli in db.execute(
            "SELECT customer_id, program_id, SUM(expired_exclusive_value_milli) FROM allocations"
            " WHERE expired_exclusive_value_milli > 0 AND expiry_date BETWEEN ? AND ?"
            " GROUP BY customer_id, program_id",
            (low, high),
        ):
            if customer in customers:
                truth[(customer, program)] += milli
    got: Counter[tuple[int, int]] = Counter()
    for row in rows:
        got[(int(row["customerId"]), int(row["programId"]))] += int(Decimal(row["points"]) * 1000)
    assert got == truth
    summary = json.loads(output.split("Expired points report: ", 1)[1].splitlines()[0])
    assert Decimal(summary["expired_points"]) * 1000 == sum(truth.values())
    assert summary["customers_with_expired_points"] == len({customer for customer, _ in truth})
    totals = (env.data_dir / "neo" / "reports" / "expired-points-2025-totals.csv").read_text()
    assert totals.strip().splitlines()[-1] == f"all,{summary['expired_points']}"


def test_transaction_points_wait_deferred_then_email_once(env: DemoEnvironment) -> None:
    customer = 400000003
    bill = {
        "customer_id": customer, "program_id": 2282, "point_category_id": 17383, "points": "37.5",
        "expiry_date": "2027-11-21", "entity_id": "BILL-E2E-1", "event_type_id": 15,
    }  # fmt: skip

    def post_after_the_first_check() -> None:
        # Once the sensor has looked and found nothing, it defers; then the bill is posted.
        stats = f"{env.simulator.url}/__sim/stats"
        while "event_allocations" not in requests.get(stats, timeout=10).json()["requests"]:
            time.sleep(0.2)
        posted = requests.post(f"{env.simulator.url}/__sim/allocations", json=[bill], timeout=10)
        posted.raise_for_status()

    requests.post(f"{env.simulator.url}/__sim/reset", timeout=10)
    threading.Thread(target=post_after_the_first_check, daemon=True).start()
    conf = {"customer_id": customer, "entity_id": "BILL-E2E-1", "event_type": "TransactionAdd"}
    output = _run(env, "neo_transaction_points", DAY, conf)
    assert "[DAG TEST] running trigger in line" in output  # the sensor deferred to its trigger
    notes = [
        m
        for m in env.mailbox.messages()
        if m["X-Neo-Notification-Key"] == f"earned:{customer}:BILL-E2E-1"
    ]
    assert len(notes) == 1
    assert notes[0]["Subject"] == "You earned 37.5 points"
    with env.customers_csv.open() as handle:
        email = next(
            r["email"] for r in csv.DictReader(handle) if int(r["customer_id"]) == customer
        )
    assert notes[0]["To"] == email
    _run(env, "neo_transaction_points", DAY, conf)  # the same transaction again
    assert len([m for m in env.mailbox.messages() if m["X-Neo-Notification-Key"]]) == 1
