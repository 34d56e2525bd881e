"""The example DAGs, run for real with `airflow dags test` against the simulator and a local
SMTP server; every result is checked against a computation from the simulator's own data."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests

from demo.environment import REPOSITORY, DemoEnvironment
from tests.dag_runs import (
    BUYER,
    DAY,
    LEADS,
    PROGRAMS,
    REMINDER_DAG,
    emailed_keys,
    expected_for,
    expected_reminders,
    run_dag,
    summary_file,
    transaction_points_run,
)
from tests.ground_truth import allocations


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
        "neo_points_expiry_reminder", "neo_expired_points_report", "neo_transaction_points",
        "neo_reminder_effectiveness", "neo_points_expiring_soon", "neo_bill_points",
        "neo_reminder_steps",
    }  # fmt: skip
    ours = [
        w
        for w in caught
        if "/dags/" in str(w.filename) or "airflow_provider_neo" in str(w.filename)
    ]
    assert ours == []


def test_reminders_equal_an_independent_computation_and_rerunning_sends_nothing(
    env: DemoEnvironment,
) -> None:
    expected = expected_reminders(env, DAY)
    assert len(expected) > 10
    output = run_dag(env, REMINDER_DAG, DAY)
    emailed = emailed_keys(env)
    assert sorted(emailed) == sorted(expected)  # every reminder, each once
    with (env.data_dir / "neo" / "reminders" / f"{DAY}.csv").open() as handle:
        listed = {
            f"{row['customer_id']}:{row['expiry_date']}:{row['lead_days']}": Decimal(
                row["remaining_points"]
            )
            for row in csv.DictReader(handle)
        }
    assert listed == expected
    summary = summary_file(env, DAY)
    assert summary == _summary(output)  # the file and the log line tell the same
    assert summary["emails_sent"] == len(expected)
    message = env.mailbox.messages()[0]
    key = message["X-Neo-Reminder-Key"]
    assert message["Subject"].endswith(f"points expire on {key.split(':')[1]}")
    _assert_exports_equal_the_reminded_customers_allocations(env, DAY, listed)
    run_dag(env, REMINDER_DAG, DAY)  # the same date again
    assert emailed_keys(env) == emailed


def test_consecutive_days_remind_each_allocation_once_per_lead_time(env: DemoEnvironment) -> None:
    before = Counter(emailed_keys(env))
    next_day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=1)).isoformat()
    run_dag(env, REMINDER_DAG, next_day)
    after = Counter(emailed_keys(env))
    new = after - before
    assert sorted(new) == sorted(expected_reminders(env, next_day))
    assert max(after.values()) == 1  # no reminder twice across the two days


def test_a_delivery_interrupted_half_way_is_retried_and_sends_exactly_the_rest(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=2)).isoformat()
    expected = expected_reminders(env, day)
    already = len(env.mailbox.messages())
    # The mail server goes down after half the day's emails, and comes back a little later.
    env.mailbox.refuse_after(already + len(expected) // 2)

    def recover() -> None:
        while len(env.mailbox.messages()) < already + len(expected) // 2:
            time.sleep(0.2)
        time.sleep(3)
        env.mailbox.refuse_after(None)

    threading.Thread(target=recover, daemon=True).start()
    output = run_dag(env, REMINDER_DAG, day)
    assert "451" in output  # a delivery task failed on the refused message, then was retried
    new_keys = emailed_keys(env)[already:]
    assert sorted(new_keys) == sorted(expected)  # the other half, exactly, none twice


def _assert_exports_equal_the_reminded_customers_allocations(
    env: DemoEnvironment, day: str, listed: dict[str, Decimal]
) -> None:
    """The export after the reminders: per program, every allocation of the reminded customers
    expiring in the 31 days from the run's day, as the simulator's tables have them."""
    reminded = {int(key.split(":")[0]) for key in listed}
    start = dt.date.fromisoformat(day)
    rows = 0
    for program, category in PROGRAMS:
        path = env.data_dir / "neo" / "exports" / day / f"{program}-{category}.csv"
        with path.open() as handle:
            exported = {int(row["id"]): row for row in csv.DictReader(handle)}
        truth = allocations(
            env.db_path, customers=reminded, timezone=env.timezone, program=program,
            category=category, expiring=(start, start + dt.timedelta(days=30)),
        )  # fmt: skip
        assert set(exported) == set(truth), (program, category)
        assert all(int(row["customer_id"]) in reminded for row in exported.values())
        rows += len(exported)
    assert rows >= len(reminded)  # every reminded customer has at least one such allocation


def _summary(output: str) -> dict[str, Any]:
    """The run's summary as its log prints it: for runs that share one summary file."""
    line = output.split("Expiry reminders: ", 1)[1].splitlines()[0]
    return json.loads(line)  # type: ignore[no-any-return]


def _keys_for_days(keys: Iterable[str], days: Iterable[tuple[int, dt.date]]) -> list[str]:
    wanted = {(lead, day.isoformat()) for lead, day in days}
    return [k for k in keys if (int(k.split(":")[2]), k.split(":")[1]) in wanted]


def _days_of(day: str) -> list[tuple[int, dt.date]]:
    anchor = dt.date.fromisoformat(day)
    return [(lead, anchor + dt.timedelta(days=lead)) for lead in LEADS]


def test_two_runs_of_one_date_at_once_on_one_ledger_send_each_reminder_once(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    """Two Airflow installations (two hosts' worth: separate metadata databases) run the same
    date at the same moment against one sent-ledger; the mail server holds both until both are
    delivering, so their deliveries overlap."""
    day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=6)).isoformat()
    expected = expected_reminders(env, day)
    assert len(expected) >= 5
    second = {"AIRFLOW_HOME": str(tmp_path / "second-airflow")}
    env.airflow("db", "migrate", env=second)
    env.mailbox.hold_until_senders(2)
    env.mailbox.slow_down(0.05)
    args = env.dags_test_args(REMINDER_DAG, day, {"catch_up_days": 0})
    runs = [
        subprocess.Popen(
            env.airflow_command(*args),
            env={**env.env(), **extra},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for extra in ({}, second)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    env.mailbox.slow_down(0)
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-5000:]
    emailed = _keys_for_days(emailed_keys(env), _days_of(day))
    assert sorted(emailed) == sorted(expected)  # every reminder, each once
    summaries = [_summary(output) for output in outputs]
    assert all(summary["emails_sent"] > 0 for summary in summaries)  # both really delivered
    assert sum(summary["emails_sent"] for summary in summaries) == len(expected)


def test_a_shard_failing_under_faults_does_not_stop_the_others_and_a_rerun_sends_the_rest(
    env: DemoEnvironment,
) -> None:
    day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=9)).isoformat()
    expected = expected_reminders(env, day)
    with env.customers_csv.open() as handle:
        order = [int(row["customer_id"]) for row in csv.DictReader(handle)]
    shard_of = {customer: index // 500 for index, customer in enumerate(order)}  # shard_size 500
    assert max(shard_of.values()) >= 2
    # Neo cannot answer for one customer of the second shard; everything else is merely flaky.
    victim = next(
        int(key.split(":")[0]) for key in expected if shard_of[int(key.split(":")[0])] == 1
    )
    lost = {key for key in expected if shard_of[int(key.split(":")[0])] == 1}
    requests.put(
        f"{env.simulator.url}/__sim/faults",
        json={"error_rate": 0.1, "malformed_rate": 0.05, "reset_rate": 0.05, "latency_ms": 5,
              "rate_limit_per_minute": 40, "rate_window_seconds": 2,
              "failing_customer_ids": [victim]},
        timeout=10,
    ).raise_for_status()  # fmt: skip
    quick_retries = {
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
        "AIRFLOW_CONN_NEO_DEFAULT": env.neo_connection(
            backoff_base_seconds=0.05, backoff_max_seconds=0.5
        ),
    }
    try:
        failed = env.dags_test(REMINDER_DAG, day, {"catch_up_days": 0}, env=quick_retries)
    finally:
        requests.put(
            f"{env.simulator.url}/__sim/faults",
            json={"error_rate": 0, "malformed_rate": 0, "reset_rate": 0, "latency_ms": 0,
                  "rate_limit_per_minute": 0, "failing_customer_ids": []},
            timeout=10,
        ).raise_for_status()  # fmt: skip
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0  # the run is seen to fail ...
    summary = summary_file(env, day)
    assert summary["failed_shards"] == [{"shard": 1, "failed_in": "find"}]
    assert output.count("503") >= 4  # ... after the shard's find exhausted its retries
    emailed = _keys_for_days(emailed_keys(env), _days_of(day))
    assert sorted(emailed) == sorted(set(expected) - lost)  # ... but the other shards delivered
    with (env.data_dir / "neo" / "reminders" / f"{day}.csv").open() as handle:
        listed = {
            f"{row['customer_id']}:{row['expiry_date']}:{row['lead_days']}"
            for row in csv.DictReader(handle)
        }
    assert listed == set(expected) - lost
    run_dag(env, REMINDER_DAG, day, {"catch_up_days": 0})  # Neo is back: re-run the date
    emailed = _keys_for_days(emailed_keys(env), _days_of(day))
    assert sorted(emailed) == sorted(expected)  # exactly the missing ones were added


def test_days_a_skipped_run_left_out_are_caught_up_by_the_next(env: DemoEnvironment) -> None:
    first = dt.date.fromisoformat(DAY) + dt.timedelta(days=12)
    run_dag(env, REMINDER_DAG, first.isoformat(), {"catch_up_days": 0})
    later = first + dt.timedelta(days=3)  # the two runs between did not happen
    before = Counter(emailed_keys(env))
    run_dag(env, REMINDER_DAG, later.isoformat())  # catch_up_days: 3 by default
    days = {
        30: [later + dt.timedelta(days=n) for n in (28, 29, 30)],
        7: [later + dt.timedelta(days=n) for n in (5, 6, 7)],
        1: [later + dt.timedelta(days=n) for n in (0, 1)],  # today's expiries, not yesterday's
    }
    assert summary_file(env, later.isoformat())["expiry_days"] == {
        str(lead): [day.isoformat() for day in dates] for lead, dates in days.items()
    }
    expected = expected_for(env, [(lead, day) for lead, dates in days.items() for day in dates])
    new = Counter(emailed_keys(env)) - before
    assert sorted(new) == sorted(expected)
    assert max(Counter(emailed_keys(env)).values()) == 1


def test_a_pruned_ledger_sends_each_reminder_once_and_never_resends_a_pruned_day(
    env: DemoEnvironment,
) -> None:
    """The deployment keeps reminders one day past their expiry day: the run after the catch-up
    test's prunes the expiry days of every earlier test; its own reminders still go out once,
    and a re-run of an old date sends nothing, its pruned days refused."""
    retention = {"NEO_LEDGER_PRUNE_AFTER_DAYS": "1"}
    day = dt.date.fromisoformat(DAY) + dt.timedelta(days=16)
    horizon = (day - dt.timedelta(days=1)).isoformat()
    assert min(_ledger_expiry_days(env)) < horizon  # earlier tests' reminders, to be pruned
    before = Counter(emailed_keys(env))
    result = env.dags_test(REMINDER_DAG, day.isoformat(), env=retention)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Sent-ledger pruned: " in output
    assert min(_ledger_expiry_days(env)) >= horizon
    new = Counter(emailed_keys(env)) - before
    assert sorted(new) == sorted(expected_reminders(env, day.isoformat()))
    assert max(Counter(emailed_keys(env)).values()) == 1

    old = (dt.date.fromisoformat(DAY) + dt.timedelta(days=2)).isoformat()  # reminded earlier
    expected = expected_reminders(env, old)
    pruned = {key for key in expected if key.split(":")[1] < horizon}
    assert pruned
    assert set(expected) - pruned  # and some of its days are still kept
    sent = len(env.mailbox.messages())
    result = env.dags_test(REMINDER_DAG, old, {"catch_up_days": 0}, env=retention)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert len(env.mailbox.messages()) == sent  # nothing sent a second time
    summary = summary_file(env, old)
    assert summary["pruned"] == len(pruned)
    assert summary["already_sent"] == len(expected) - len(pruned)


def _ledger_expiry_days(env: DemoEnvironment) -> set[str]:
    with sqlite3.connect(f"file:{env.ledger_path}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT expiry_date FROM neo_reminder_ledger")}


def test_expired_points_report_equals_the_simulators_data(env: DemoEnvironment) -> None:
    run_dag(env, "neo_expired_points_report", "2025-01-01")
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
    totals_file = env.data_dir / "neo" / "reports" / "expired-points-2025-totals.csv"
    with totals_file.open() as handle:
        totals = {
            row["program_id"]: Decimal(row["expired_points"]) for row in csv.DictReader(handle)
        }
    assert totals.pop("all") * 1000 == sum(truth.values())
    per_program: Counter[str] = Counter()
    for (_, program), milli in truth.items():
        per_program[str(program)] += milli
    assert {program: points * 1000 for program, points in totals.items()} == per_program


def test_transaction_points_wait_deferred_then_email_once(env: DemoEnvironment) -> None:
    output, notes = transaction_points_run(env, "BILL-E2E-1")
    assert "[DAG TEST] running trigger in line" in output  # the sensor deferred to its trigger
    assert len(notes) == 1
    assert notes[0]["Subject"] == "You earned 37.5 points"
    with env.customers_csv.open() as handle:
        email = next(r["email"] for r in csv.DictReader(handle) if int(r["customer_id"]) == BUYER)
    assert notes[0]["To"] == email
    transaction_points_run(env, "BILL-E2E-1")  # the same transaction again
    assert len([m for m in env.mailbox.messages() if m["X-Neo-Notification-Key"]]) == 1


def _run_folders(data_dir: Path) -> set[Path]:
    """The runs' folders of shards and indexes (``neo/runs/<run id>``), whichever ids they have."""
    return set((data_dir / "neo" / "runs").glob("*"))


def test_more_shards_than_max_map_length_allows_are_bounded_and_deliver_exactly_the_reminders(
    env: DemoEnvironment,
) -> None:
    day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=24)).isoformat()
    expected = expected_reminders(env, day)
    with env.customers_csv.open() as handle:
        customers = len(list(csv.DictReader(handle)))
    before, runs = len(emailed_keys(env)), _run_folders(env.data_dir)
    # About 1,200 customers in shards of 2: 600 mapped instances; Airflow maps at most 4 here.
    result = env.dags_test(
        REMINDER_DAG, day, {"shard_size": 2, "catch_up_days": 0},
        env={"AIRFLOW__CORE__MAX_MAP_LENGTH": "4"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "too large to map" not in output
    (run,) = _run_folders(env.data_dir) - runs
    shards = sorted(run.glob("shards/shard-*.ndjson"))
    size = -(-customers // 4)
    assert [len(path.read_text().splitlines()) for path in shards] == [
        size, size, size, customers - 3 * size,
    ]  # fmt: skip
    assert sorted(emailed_keys(env)[before:]) == sorted(expected)
    assert summary_file(env, day)["customers_checked"] == customers


def test_bad_crm_rows_are_refused_alone_and_every_other_customer_is_reminded(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    """The CRM extract as a careless export gives it, in a deployment of its own (its
    NEO_DATA_DIR: extract, output folder and ledger): headers in other cases, an address list,
    a typo'd id, a consent word nobody defined, a customer listed twice, a NUL; and one opt-out.
    """
    day = (dt.date.fromisoformat(DAY) + dt.timedelta(days=27)).isoformat()
    expected = expected_reminders(env, day)
    reminded = sorted({int(key.split(":")[0]) for key in expected})
    assert len(reminded) >= 6
    listed, typo, unknown_word, twice, nul, said_no = reminded[:6]
    data_dir = tmp_path / "brand"
    data_dir.mkdir()
    with env.customers_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    lines = ["Customer_ID,EMAIL, First_Name ,email_opt_in"]
    bad_lines: dict[int, list[int]] = {}
    for row in rows:
        customer, email, name = int(row["customer_id"]), row["email"], row["first_name"]
        consent = {unknown_word: "unsubscribed", said_no: "No"}.get(customer, "")
        if customer == listed:
            email = f'"{email},attacker@x.test"'
        if customer == nul:
            name = f"{name}\x00"
        shown = f"{customer:_}" if customer == typo else str(customer)
        if customer in (listed, typo, unknown_word, twice, nul):
            bad_lines.setdefault(customer, []).append(len(lines) + 1)
        lines.append(f"{shown},{email},{name},{consent}")
        if customer == twice:
            bad_lines[customer].append(len(lines) + 1)
            lines.append(f"{customer},other.{email},{name},")
    (data_dir / "customers.csv").write_text("\n".join(lines) + "\n")
    before = len(emailed_keys(env))

    result = env.dags_test(REMINDER_DAG, day, env={"NEO_DATA_DIR": str(data_dir)})
    output = result.stdout + result.stderr
    refused = {listed, typo, unknown_word, twice, nul}
    assert sorted(emailed_keys(env)[before:]) == sorted(
        key for key in expected if int(key.split(":")[0]) not in refused | {said_no}
    ), output[-5000:]
    (run,) = _run_folders(data_dir)
    rejects = run / "shards" / "rejects.csv"
    with rejects.open(newline="") as handle:
        found = [(int(r["line"]), r["column"], r["param"]) for r in csv.DictReader(handle)]
    assert sorted(found) == sorted(
        [(bad_lines[listed][0], "email", "customers_path"),
         (bad_lines[typo][0], "customer_id", "customers_path"),
         (bad_lines[unknown_word][0], "email_opt_in", "customers_path"),
         (bad_lines[twice][0], "customer_id", "customers_path"),
         (bad_lines[twice][1], "customer_id", "customers_path"),
         (bad_lines[nul][0], "first_name", "customers_path")]
    )  # fmt: skip
    summary = json.loads((data_dir / "neo" / "reminders" / f"{day}.summary.json").read_text())
    assert summary["customers_checked"] == len(rows) - 5
    assert summary["suppressed"] == sum(1 for key in expected if key.startswith(f"{said_no}:"))
    # The run is seen to fail, naming the refused rows, after every other customer was reminded.
    assert result.returncode != 0
    assert (summary["rejected_rows"], summary["rejects_path"]) == (6, str(rejects))
    assert "6 rows of the CRM extract refused" in output


def _xcom(env: DemoEnvironment, dag_id: str, task_id: str, key: str = "return_value") -> Any:
    """A task's latest XCom, as `airflow dags test` left it in the metadata database."""
    with sqlite3.connect(f"file:{env.airflow_home / 'airflow.db'}?mode=ro", uri=True) as db:
        (value,) = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = ?"
            " ORDER BY timestamp DESC LIMIT 1",
            (dag_id, task_id, key),
        ).fetchone()
    return json.loads(value)


def test_points_expiring_soon_waits_for_the_weeks_points_then_lists_exactly_them(
    env: DemoEnvironment,
) -> None:
    """The sensor's first check finds the week's points (so the run does not wait), and the
    list holds every AVAILABLE allocation of the extract's customers expiring in that week."""
    run_dag(env, "neo_points_expiring_soon", DAY)
    start = dt.date.fromisoformat(DAY) + dt.timedelta(days=1)  # days_ahead=1, window_days=7
    with env.customers_csv.open() as handle:
        customers = {int(row["customer_id"]) for row in csv.DictReader(handle)}
    truth = allocations(
        env.db_path, customers=customers, expiring=(start, start + dt.timedelta(days=6)),
        timezone=env.timezone, status="AVAILABLE",
    )  # fmt: skip
    per_customer: Counter[int] = Counter()
    for allocation in truth.values():
        per_customer[allocation.customer_id] += max(allocation.remaining_milli, 0)
    assert sum(per_customer.values()) >= 1000 * 1000  # the sensor's min_points: 1,000
    waited = _xcom(env, "neo_points_expiring_soon", "wait_for_expiring_points")
    assert {int(c): Decimal(p) for c, p in waited["customers"].items()} == {
        customer: Decimal(milli) / 1000 for customer, milli in per_customer.items() if milli
    }
    path = env.data_dir / "neo" / "expiring-soon" / f"{DAY}.csv"
    with path.open() as handle:
        rows = {int(row["id"]): row for row in csv.DictReader(handle)}
    assert set(rows) == set(truth)
    for id_, row in rows.items():
        left = Decimal(row["points_exclusive"]) - sum(
            Decimal(row[f"{what}_exclusive_value"]) for what in ("redeemed", "expired", "returned")
        )
        assert (int(row["customer_id"]), row["status"], int(left * 1000)) == (
            truth[id_].customer_id, "AVAILABLE", truth[id_].remaining_milli,
        )  # fmt: skip


def test_bill_points_returns_the_bills_allocation_rows_in_xcom(env: DemoEnvironment) -> None:
    """A bill of the simulator's data with line items: the XCom rows are its rows there."""
    with env.customers_csv.open() as handle:
        customers = sorted(int(row["customer_id"]) for row in csv.DictReader(handle))
    with sqlite3.connect(f"file:{env.db_path}?mode=ro", uri=True) as db:
        event_log_id, entity_id, customer = db.execute(
            "SELECT e.event_log_id, e.entity_id, e.customer_id FROM events e"
            " JOIN allocations a ON a.event_log_id = e.event_log_id"
            " WHERE e.event_type_id = 15 AND e.customer_id BETWEEN ? AND ?"
            " GROUP BY e.event_log_id HAVING COUNT(*) >= 3 ORDER BY e.event_log_id LIMIT 1",
            (customers[0], customers[-1]),
        ).fetchone()
        truth = dict(
            db.execute(
                "SELECT id, points_exclusive_milli FROM allocations WHERE event_log_id = ?",
                (event_log_id,),
            ).fetchall()
        )
    conf = {"customer_id": customer, "entity_id": entity_id, "event_type": "TransactionAdd"}
    run_dag(env, "neo_bill_points", DAY, conf)
    rows = _xcom(env, "neo_bill_points", "fetch_bill_allocation")
    assert {row["id"]: Decimal(row["points_exclusive"]) * 1000 for row in rows} == truth
    assert {(row["customer_id"], row["event_log_id"]) for row in rows} == {(customer, event_log_id)}
    summary = _xcom(env, "neo_bill_points", "fetch_bill_allocation", "summary")
    assert Decimal(summary["points"]) * 1000 == sum(truth.values())


def test_reminder_steps_spelled_out_email_exactly_the_days_reminders_on_their_own_ledger(
    env: DemoEnvironment,
) -> None:
    """The five step operators wired by hand deliver what the task group delivers, recorded in
    their own sent-ledger: the task group's ledger (which may hold the same day) is untouched.
    Last in the module: it emails the reminders of DAY a second time, which the tests counting
    every email of the module would see."""
    expected = expected_reminders(env, DAY)
    assert len(expected) > 10
    main_ledger = _ledger_keys(env.ledger_path)
    before = len(emailed_keys(env))
    run_dag(env, "neo_reminder_steps", DAY)
    assert sorted(emailed_keys(env)[before:]) == sorted(expected)  # every reminder, each once
    output_dir = env.data_dir / "neo" / "reminder-steps"
    assert _ledger_keys(output_dir / "sent-ledger.sqlite3") == set(expected)
    assert _ledger_keys(env.ledger_path) == main_ledger
    with (output_dir / "reminders" / f"{DAY}.csv").open() as handle:
        listed = {
            f"{row['customer_id']}:{row['expiry_date']}:{row['lead_days']}"
            for row in csv.DictReader(handle)
        }
    assert listed == set(expected)


def _ledger_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT reminder_key FROM neo_reminder_ledger")}
