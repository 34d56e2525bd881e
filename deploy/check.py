"""Prove the compose topology without Docker (``scripts/local-topology``, run by CI).

1. A baseline: ``airflow dags test neo_points_expiry_reminder`` for the demo date.
2. The same date triggered through Airflow's REST API on the Celery topology, with one worker
   killed (SIGKILL) while it delivers; the run must still succeed, on the other worker after
   Airflow's retry, with emails and CSV equal to the baseline's: none lost, none twice.
3. ``neo_transaction_points`` with its sensor deferred to the triggerer.
Prints what it checked and exits non-zero on the first failed check. Leaves nothing running.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from demo.mailbox import Mailbox
from deploy.topology import WORKERS, LocalTopology

REMINDER_DAG = "neo_points_expiry_reminder"
DAY = "2026-11-21"


class CheckFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)
    print(f"  ok: {message}", flush=True)


def _csv_rows(path: Path) -> list[tuple[str, ...]]:
    with path.open() as handle:
        return sorted(tuple(row) for row in csv.reader(handle))


def baseline(topology: LocalTopology) -> tuple[Counter[str], list[tuple[str, ...]]]:
    """`airflow dags test` for the date, on its own SQLite home, ledger, output and mailbox."""
    home = topology.work_dir / "dags-test"
    with Mailbox(home / "mail") as mailbox:
        env = topology.env()
        env |= {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": mailbox.host,
                    "port": mailbox.port,
                    "extra": {"disable_tls": True, "disable_ssl": True},
                }
            ),
        }
        topology.airflow("db", "migrate", env=env)
        conf = {"output_dir": str(home / "neo"), "ledger_path": str(home / "ledger.sqlite3")}
        topology.airflow("dags", "test", REMINDER_DAG, DAY, "--conf", json.dumps(conf), env=env)
        keys = Counter(m["X-Neo-Reminder-Key"] for m in mailbox.messages())
    return keys, _csv_rows(home / "neo" / "reminders" / f"{DAY}.csv")


def reminder_run_survives_a_killed_worker(
    topology: LocalTopology, expected: Counter[str], expected_csv: list[tuple[str, ...]]
) -> None:
    topology.mailbox.slow_down(0.4)  # deliveries take seconds, so a worker dies mid-way
    run_id = topology.trigger(REMINDER_DAG, f"{DAY}T00:00:00Z")
    victim = WORKERS[0]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = [
            ti for ti in topology.task_instances(REMINDER_DAG, run_id)
            if ti["task_id"] == "send" and ti["state"] == "running" and ti["hostname"] == victim
        ]  # fmt: skip
        if running and topology.mailbox.messages():
            break
        time.sleep(0.3)
    else:
        raise CheckFailed(f"no delivery ran on {victim}")
    sent_before = len(topology.mailbox.messages())
    topology.stop(victim, signal.SIGKILL)
    print(f"  killed {victim} during delivery, after {sent_before} emails", flush=True)
    state = topology.wait_for_run(REMINDER_DAG, run_id)
    topology.mailbox.slow_down(0)
    check(state == "success", f"the run succeeded after losing {victim} (state {state})")
    instances = topology.task_instances(REMINDER_DAG, run_id)
    finders = {ti["hostname"] for ti in instances if ti["task_id"] == "find"}
    check(finders == set(WORKERS), f"the mapped shards ran on both workers: {sorted(finders)}")
    retried = [ti for ti in instances if ti["task_id"] == "send" and ti["try_number"] > 1]
    check(
        bool(retried) and all(ti["hostname"] == WORKERS[1] for ti in retried),
        f"the interrupted delivery was retried on {WORKERS[1]}",
    )
    emailed = Counter(m["X-Neo-Reminder-Key"] for m in topology.mailbox.messages())
    check(max(emailed.values()) == 1, "no reminder was sent twice")
    check(emailed == expected, f"the {len(expected)} emails equal the dags test run's")
    listed = _csv_rows(topology.data_dir / "neo" / "reminders" / f"{DAY}.csv")
    check(
        listed == expected_csv,
        f"the reminder CSV equals the dags test run's ({len(listed) - 1} rows)",
    )


def transaction_run_defers_to_the_triggerer(topology: LocalTopology) -> None:
    customer, bill = 400000007, "BILL-TOPOLOGY-1"
    stats = f"{topology.simulator.url}/__sim/stats"
    requests.post(f"{topology.simulator.url}/__sim/reset", timeout=10)

    def post_after_the_first_check() -> None:
        while "event_allocations" not in requests.get(stats, timeout=10).json()["requests"]:
            time.sleep(0.3)
        time.sleep(1)
        requests.post(
            f"{topology.simulator.url}/__sim/allocations",
            json=[{"customer_id": customer, "program_id": 2282, "point_category_id": 17383,
                   "points": 80, "expiry_date": "2027-11-21", "entity_id": bill,
                   "event_type_id": 15}],
            timeout=10,
        ).raise_for_status()  # fmt: skip

    threading.Thread(target=post_after_the_first_check, daemon=True).start()
    conf = {"customer_id": customer, "entity_id": bill, "event_type": "TransactionAdd"}
    run_id = topology.trigger("neo_transaction_points", f"{DAY}T12:00:00Z", conf)
    state = topology.wait_for_run("neo_transaction_points", run_id)
    check(state == "success", f"neo_transaction_points succeeded (state {state})")
    logs = topology.work_dir / "airflow" / "logs" / "dag_id=neo_transaction_points"
    sensor_logs = {
        path.name: path.read_text() for path in logs.rglob("task_id=wait_for_allocation/*")
    }
    check(
        any("Pausing task as DEFERRED" in text for text in sensor_logs.values())
        and any(
            ".trigger." in name and "Trigger fired event" in text
            for name, text in sensor_logs.items()
        ),
        "its sensor deferred and its trigger fired in the triggerer",
    )
    notes = [m for m in topology.mailbox.messages() if m["X-Neo-Notification-Key"]]
    check(
        [m["Subject"] for m in notes] == ["You earned 80 points"],
        "the customer was emailed the points earned, once",
    )


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="neo-topology-") as tmp:
        print(
            "Starting PostgreSQL, Redis, the simulator, SMTP, and Airflow's api-server,"
            " scheduler, dag-processor, triggerer and two Celery workers ...",
            flush=True,
        )
        try:
            with LocalTopology(Path(tmp)) as topology:
                print(f"Topology up in {time.perf_counter() - started:.0f} s", flush=True)
                expected, expected_csv = baseline(topology)
                check(len(expected) > 10, f"baseline dags test sent {len(expected)} reminders")
                reminder_run_survives_a_killed_worker(topology, expected, expected_csv)
                transaction_run_defers_to_the_triggerer(topology)
        except CheckFailed as failure:
            print(f"FAILED: {failure}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - started
    print(f"Local topology checks passed in {seconds:.0f} s; nothing left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
