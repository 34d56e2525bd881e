"""Prove the compose topology without Docker (``scripts/local-topology``, run by CI).

1. A baseline: ``airflow dags test neo_points_expiry_reminder`` for the demo date, on a ledger
   of its own.
2. The same date triggered through Airflow's REST API on the Celery topology, whose workers share
   the PostgreSQL sent-ledger. While it delivers, a second installation (``airflow dags test`` on
   its own metadata database: another host) runs the same date against the same ledger, and one
   worker is killed (SIGKILL). The run must still succeed, on the other worker after Airflow's
   retry, and the emails and CSV must equal the baseline's: none lost, none twice.
3. None of their requests was refused with a 429, although the simulator limits them to the
   connection's budget: every process draws on one budget in Redis.
4. ``neo_transaction_points`` with its sensor deferred to the triggerer.

The check triggers every run it looks at (the topology's scheduler makes none of its own for
the latest day), and emails are compared for the demo date's (lead time, expiry day) pairs
only, so the check holds on any calendar day. Prints what it checked, and the
difference when a comparison fails; exits non-zero on the first failed check. Leaves nothing
running.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import signal
import subprocess
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
LEAD_TIMES = (30, 7, 1)
# The reminder task group's mapped tasks in the example DAG (group "reminders", per shard).
FIND, SEND = "reminders.shard.find", "reminders.shard.send"


class CheckFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)
    print(f"  ok: {message}", flush=True)


def check_same(got: Counter[str], expected: Counter[str], message: str) -> None:
    """Compare email counts per reminder key; on failure say which keys differ."""
    if got != expected:
        missing = sorted((expected - got).elements())
        extra = sorted((got - expected).elements())
        raise CheckFailed(
            f"{message}: {len(missing)} missing {missing[:20]}, {len(extra)} extra {extra[:20]}"
        )
    print(f"  ok: {message}", flush=True)


def of_the_day(keys: Counter[str], day: str = DAY) -> Counter[str]:
    """The reminders a run of `day` sends: expiry day = day + lead time (keys are
    ``customer:expiry day:lead time``)."""
    anchor = dt.date.fromisoformat(day)
    wanted = {f"{(anchor + dt.timedelta(days=lead)).isoformat()}:{lead}" for lead in LEAD_TIMES}
    return Counter({key: n for key, n in keys.items() if key.split(":", 1)[1] in wanted})


def emailed(mailbox: Mailbox) -> Counter[str]:
    return Counter(m["X-Neo-Reminder-Key"] for m in mailbox.messages() if m["X-Neo-Reminder-Key"])


def _csv_rows(path: Path) -> list[tuple[str, ...]]:
    with path.open() as handle:
        return sorted(tuple(row) for row in csv.reader(handle))


def standalone_env(topology: LocalTopology, home: Path, mailbox: Mailbox) -> dict[str, str]:
    """The topology's environment for an installation of its own: SQLite metadata in `home`,
    no Celery, mail to `mailbox`, and its data folder in `home` (the DAG's outputs under
    ``home/neo``; the topology's CRM extract copied in): where the example DAG finds its files
    is the deployment's to say, not a run's conf."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(topology.data_dir / "customers.csv", home / "customers.csv")
    return topology.env() | {
        "NEO_DATA_DIR": str(home),
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


def baseline(topology: LocalTopology) -> tuple[Counter[str], list[tuple[str, ...]]]:
    """`airflow dags test` for the date, on its own SQLite home, ledger, output and mailbox."""
    home = topology.work_dir / "dags-test"
    with Mailbox(home / "mail") as mailbox:
        # A SQLite ledger of its own, in its data folder: no ledger connection.
        env = standalone_env(topology, home, mailbox) | {"NEO_LEDGER_CONN_ID": ""}
        topology.airflow("db", "migrate", env=env)
        topology.airflow("dags", "test", REMINDER_DAG, DAY, env=env)
        keys = emailed(mailbox)
    return keys, _csv_rows(home / "neo" / "reminders" / f"{DAY}.csv")


class SecondInstallation:
    """Another host's Airflow running the same date on the shared PostgreSQL ledger, mailing to
    the same server: `airflow dags test` on a metadata database of its own."""

    def __init__(self, topology: LocalTopology) -> None:
        self.topology = topology
        home = topology.work_dir / "second-installation"
        # The shared PostgreSQL ledger (the topology's NEO_LEDGER_CONN_ID), outputs of its own.
        self.env = standalone_env(topology, home, topology.mailbox)
        self.log = home / "dags-test.log"
        topology.airflow("db", "migrate", env=self.env)  # ahead, so that it starts at once

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["airflow", "dags", "test", REMINDER_DAG, DAY],
            env=self.env, cwd=self.topology.work_dir, stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def reminder_run_survives_a_killed_worker_and_a_second_installation(
    topology: LocalTopology, expected: Counter[str], expected_csv: list[tuple[str, ...]]
) -> None:
    installation = SecondInstallation(topology)
    topology.mailbox.slow_down(0.4)  # deliveries take seconds, so a worker dies mid-way
    run_id = topology.trigger(REMINDER_DAG, f"{DAY}T00:00:00Z")
    victim = WORKERS[0]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = [
            ti for ti in topology.task_instances(REMINDER_DAG, run_id)
            if (ti["task_id"], ti["state"], ti["hostname"]) == (SEND, "running", victim)
        ]  # fmt: skip
        if running and of_the_day(emailed(topology.mailbox)):
            break
        time.sleep(0.3)
    else:
        raise CheckFailed(f"no delivery ran on {victim}")
    sent_before = sum(of_the_day(emailed(topology.mailbox)).values())
    # It delivers some 20 s from now, while the Celery run's retry waits for the dead claim.
    second = installation.start()
    print("  a second installation runs the same date on the same ledger", flush=True)
    topology.stop(victim, signal.SIGKILL)
    print(f"  killed {victim} during delivery, after {sent_before} emails", flush=True)
    state = topology.wait_for_run(REMINDER_DAG, run_id)
    second.wait(timeout=600)
    output = installation.log.read_text(errors="replace")
    topology.mailbox.slow_down(0)
    check(state == "success", f"the run succeeded after losing {victim} (state {state})")
    failure = "" if second.returncode == 0 else f": it failed, {output[-3000:]}"
    check(not failure, f"the second installation's run succeeded{failure}")
    line = next(ln for ln in reversed(output.splitlines()) if "Expiry reminders: " in ln)
    summary = json.loads(line.split("Expiry reminders: ", 1)[1])
    print(
        f"  the second installation sent {summary['emails_sent']}, found"
        f" {summary['already_sent']} already sent and {summary['sent_by_another_runner']}"
        f" sent by the Celery run while it waited",
        flush=True,
    )
    instances = topology.task_instances(REMINDER_DAG, run_id)
    finders = {ti["hostname"] for ti in instances if ti["task_id"] == FIND}
    check(finders == set(WORKERS), f"the mapped shards ran on both workers: {sorted(finders)}")
    retried = [ti for ti in instances if ti["task_id"] == SEND and ti["try_number"] > 1]
    check(
        bool(retried) and all(ti["hostname"] == WORKERS[1] for ti in retried),
        f"the interrupted delivery was retried on {WORKERS[1]}",
    )
    got = of_the_day(emailed(topology.mailbox))
    check_same(got, expected, f"the {len(expected)} emails equal the dags test run's, each once")
    listed = _csv_rows(topology.data_dir / "neo" / "reminders" / f"{DAY}.csv")
    check(
        listed == expected_csv,
        f"the reminder CSV equals the dags test run's ({len(listed) - 1} rows)",
    )


def neo_was_never_rate_limited(topology: LocalTopology) -> None:
    """The simulator answers 429 beyond the connection's requests_per_minute; every process of
    every run drew from one budget in Redis, so none of their requests was refused."""
    stats = requests.get(f"{topology.simulator.url}/__sim/stats", timeout=10).json()
    limited = {name: n["429"] for name, n in stats["requests"].items() if "429" in n}
    check(
        not limited,
        f"the {stats['total']} requests of the baseline, the Celery run on two workers and the"
        f" second installation, at Neo's limit, drew on one budget: no 429 (got {limited or 0})",
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
                check(
                    len(expected) > 10 and of_the_day(expected) == expected,
                    f"baseline dags test sent {len(expected)} reminders, all of its day",
                )
                reminder_run_survives_a_killed_worker_and_a_second_installation(
                    topology, expected, expected_csv
                )
                neo_was_never_rate_limited(topology)
                transaction_run_defers_to_the_triggerer(topology)
        except CheckFailed as failure:
            print(f"FAILED: {failure}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - started
    print(f"Local topology checks passed in {seconds:.0f} s; nothing left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
