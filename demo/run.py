"""`make demo`: the daily expiry-reminder DAG, end to end, on this machine, and the report that
says whether its reminders saved points.

Starts the Neo simulator (3,000 generated customers) and a local SMTP server, writes the CRM
extract and a suppression list (customers who opted out), and runs
``airflow dags test neo_points_expiry_reminder`` for 2026-11-21 and the two days after it on
SQLite, emailing reminders with a 20% holdout. Then time passes in the simulator (points are
redeemed or expire; reminded customers redeem more often) and
``neo_reminder_effectiveness`` runs for 2027-01-01, after all those expiry days. Prints what
happened, read from the summaries and the report the runs write. Everything lands in ``.demo/``
(emails as .eml files, the report's CSV and HTML page).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from airflow_provider_neo.reminders.effectiveness.report import days_text
from demo.environment import DEMO_DATE, REPOSITORY, DemoEnvironment

DAG_ID = "neo_points_expiry_reminder"
REPORT_DAG_ID = "neo_reminder_effectiveness"
REMINDER_DAYS = 3
REPORT_DATE = "2027-01-01"
HOLDOUT = {"holdout_share": 0.2, "holdout_salt": "demo"}


def _run(env: DemoEnvironment, work_dir: Path, dag_id: str, day: str, conf: dict[str, Any]) -> bool:
    print(f"Running: airflow dags test {dag_id} {day} ...", flush=True)
    result = env.dags_test(dag_id, day, conf)
    log = work_dir / f"dags-test-{dag_id}-{day}.log"
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        print(f"The DAG run failed; its log: {log}", file=sys.stderr)
        print((result.stdout + result.stderr)[-4000:], file=sys.stderr)
        return False
    return True


def _suppression_list(env: DemoEnvironment) -> Path:
    """Every 25th customer of the CRM extract opted out: the brand's suppression list, where the
    example DAG looks for it (``suppression-list.csv`` in ``$NEO_DATA_DIR``)."""
    with env.customers_csv.open() as handle:
        ids = [row["customer_id"] for row in csv.DictReader(handle)][::25]
    path = env.data_dir / "suppression-list.csv"
    path.write_text("customer_id\n" + "".join(f"{customer}\n" for customer in ids))
    return path


def main() -> int:
    work_dir = REPOSITORY / ".demo"
    shutil.rmtree(work_dir, ignore_errors=True)
    started = time.perf_counter()
    print("Starting the Neo simulator (3,000 customers) and a local SMTP server ...", flush=True)
    with DemoEnvironment(work_dir) as env:
        suppression = _suppression_list(env)
        conf = dict(HOLDOUT)  # what a run may choose; where files are is the deployment's
        first = dt.date.fromisoformat(DEMO_DATE)
        days = [(first + dt.timedelta(days=n)).isoformat() for n in range(REMINDER_DAYS)]
        for day in days:
            if not _run(env, work_dir, DAG_ID, day, conf):
                return 1
        neo_requests = env.neo_requests()
        emails = env.mailbox.messages()
        with sqlite3.connect(env.ledger_path) as db:
            reminded = [
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT customer_id FROM neo_reminder_ledger WHERE state = 'sent'"
                )
            ]
        # Time passes: every point expiring by the report's day is redeemed or expires.
        settled = env.settle("2026-12-31", reminded, redeem_share=0.2, reminded_redeem_share=0.4)
        if not _run(env, work_dir, REPORT_DAG_ID, REPORT_DATE, {}):
            return 1
    summary_file = env.data_dir / "neo" / "reminders" / f"{DEMO_DATE}.summary.json"
    summary = json.loads(summary_file.read_text())
    print(f"\nExpiry reminders for {DEMO_DATE} (organisation time zone {env.timezone}):")
    for lead, figures in summary["lead_times"].items():
        label = "day " if lead == "1" else "days"
        print(
            f"  {lead:>3} {label} ahead: {figures['customers']:>4} customers found,"
            f" {figures['points']} points at stake"
        )
    print(f"  channel:           {summary['channel']}")
    print(f"  customers checked: {summary['customers_checked']}")
    print(f"  reminders sent:    {summary['emails_sent']}")
    print(f"  suppressed:        {summary['suppressed']} (opted out: {suppression})")
    print(f"  held out:          {summary['held_out']} (holdout share {HOLDOUT['holdout_share']})")
    print(f"  reminder list:     {summary['reminder_list']}")
    print(f"  run summary:       {summary_file}")
    print(f"\nOver {REMINDER_DAYS} days ({days[0]} to {days[-1]}):")
    print(f"  emails delivered:  {len(emails)} (in {env.mailbox.folder}/, one .eml each)")
    summaries = [env.data_dir / "neo" / "reminders" / f"{day}.summary.json" for day in days]
    finding = sum(json.loads(path.read_text())["neo_requests"] for path in summaries)
    print(f"  requests to Neo:   {finding} finding reminders (batched paIds calls),")
    print(
        f"                     {neo_requests - finding} exporting the reminded customers'"
        " expiring allocations (dateRange, one customer a request)"
    )
    print(f"  sent-ledger:       {env.ledger_path}")
    print(
        f"\nTime passes to 2026-12-31 in the simulator: {settled['redeemed']} allocations"
        f" redeemed, {settled['expired']} expired."
    )
    report = env.data_dir / "neo" / "effectiveness" / f"{REPORT_DATE}.csv"
    chart = report.with_suffix(".html")
    print(f"Reminder effectiveness on {REPORT_DATE} (share of points at stake redeemed):")
    with report.open() as handle:
        for row in csv.DictReader(handle):
            if row["program"] != "all":
                continue
            interval = (
                f" (95% CI {_pct(row['uplift_ci_low'])} to {_pct(row['uplift_ci_high'])})"
                if row["uplift_ci_low"]
                else ""
            )
            ahead = "day  ahead" if row["lead_days"] == "1" else "days ahead"
            print(
                f"  {row['lead_days']:>3} {ahead}: reminded"
                f" {_pct(row['reminded_share_redeemed'])} of {row['reminded']},"
                f" held out {_pct(row['held_out_share_redeemed'])}"
                f" of {row['held_out']}; uplift {_pct(row['uplift'])}{interval},"
                f" {row['points_saved'] or 'n/a'} points saved"
            )
            to_detect = row["days_to_detect_10_points"]
            when = f"detectable {days_text(int(to_detect))}" if to_detect else "n/a"
            print(
                f"{'':>18}detectable uplift {_pp(row['detectable_uplift'])} (80% power);"
                f" an uplift of 10 pp {when}"
            )
    print(f"  report (CSV):      {report}")
    print(f"  chart (HTML):      {chart}")
    print(f"  Airflow logs:      {work_dir}/dags-test-*.log")
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    return 0


def _pct(value: str) -> str:
    return f"{100 * float(value):.1f}%" if value else "n/a"


def _pp(value: str) -> str:
    return f"{100 * float(value):.1f} pp" if value else "n/a"


if __name__ == "__main__":
    sys.exit(main())
