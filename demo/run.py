"""`make demo`: the daily expiry-reminder DAG, end to end, on this machine.

Starts the Neo simulator (3,000 generated customers) and a local SMTP server, writes the CRM
extract, runs ``airflow dags test neo_points_expiry_reminder 2026-11-21`` on SQLite, stops the
servers and prints what happened, read from the summary the run's ``publish`` task writes
beside the reminder list. Everything lands in ``.demo/`` (emails as .eml files).
"""

from __future__ import annotations

import json
import shutil
import sys
import time

from demo.environment import DEMO_DATE, REPOSITORY, DemoEnvironment

DAG_ID = "neo_points_expiry_reminder"


def main() -> int:
    work_dir = REPOSITORY / ".demo"
    shutil.rmtree(work_dir, ignore_errors=True)
    started = time.perf_counter()
    print("Starting the Neo simulator (3,000 customers) and a local SMTP server ...", flush=True)
    with DemoEnvironment(work_dir) as env:
        print(f"Running: airflow dags test {DAG_ID} {DEMO_DATE} ...", flush=True)
        result = env.dags_test(DAG_ID, DEMO_DATE)
        (work_dir / "dags-test.log").write_text(result.stdout + result.stderr)
        neo_requests = env.neo_requests()
        emails = env.mailbox.messages()
    summary_file = env.data_dir / "neo" / "reminders" / f"{DEMO_DATE}.summary.json"
    if result.returncode != 0 or not summary_file.exists():
        print(f"The DAG run failed; its log: {work_dir / 'dags-test.log'}", file=sys.stderr)
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        return 1
    summary = json.loads(summary_file.read_text())
    print(f"\nExpiry reminders for {DEMO_DATE} (organisation time zone {env.timezone}):")
    for lead, figures in summary["lead_times"].items():
        days = "day " if lead == "1" else "days"
        print(
            f"  {lead:>3} {days} ahead: {figures['customers']:>4} customers reminded,"
            f" {figures['points']} points at stake"
        )
    print(f"  customers checked: {summary['customers_checked']}")
    print(f"  emails delivered:  {len(emails)} (in {env.mailbox.folder}/, one .eml each)")
    print(f"  reminder list:     {summary['reminder_list']}")
    print(f"  run summary:       {summary_file}")
    print(f"  requests to Neo:   {neo_requests} (batched paIds calls)")
    print(f"  sent-ledger:       {env.data_dir / 'neo' / 'sent-ledger.sqlite3'}")
    print(f"  Airflow log:       {work_dir / 'dags-test.log'}")
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
