"""Daily points-expiry reminders for a Capillary loyalty brand.

Every day, for each lead time (30, 7 and 1 days by default), find the customers whose AVAILABLE
points expire on that single day (data interval end + lead, in the organisation's time zone) and
remind them by email; also write the day's reminder list as CSV for any engagement tool.

- Customers come from the brand's CRM extract: a CSV of ``customer_id,email,first_name`` at
  ``customers_path`` (a local file by default; any ObjectStoragePath URL works).
- Discovery uses Neo's paIds in batches (a few requests per thousand customers), mapped over
  customer shards so it spreads over Celery workers.
- Delivery is idempotent: each reminder (customer, expiry day, lead time) is recorded in a
  sent-ledger as it is sent, so a retried or re-run task never sends one twice and a crash
  mid-batch loses none. Consecutive runs and backfills remind each allocation once per lead time.
- The email is rendered from ``email_template`` (Jinja HTML) and ``email_subject``: replace them
  with the brand's own.

Capillary Loyalty+ can send its own expiry notices, configured per expiry strategy. If the
brand has them switched on, turn them off or leave out the overlapping lead times here, so that
customers are not told twice.
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk import ObjectStoragePath, Param, dag, get_current_context, task

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders import (
    ProgramCategory,
    Reminder,
    ReminderTemplate,
    SentLedger,
    deliver,
    find_reminders,
    read_customers,
)
from airflow_provider_neo.utils.output import atomic_open
from airflow_provider_neo.utils.windows import local_day, run_anchor

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
TEMPLATES = Path(__file__).parent / "templates"


def _run_dir(params: dict[str, Any], ds: str) -> ObjectStoragePath:
    return ObjectStoragePath(params["output_dir"]) / "runs" / ds


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "customers_path": Param(f"{DATA_DIR}/customers.csv", type="string"),
        "output_dir": Param(f"{DATA_DIR}/neo", type="string"),
        "ledger_path": Param(f"{DATA_DIR}/neo/sent-ledger.sqlite3", type="string"),
        "lead_times": Param([30, 7, 1], type="array", items={"type": "integer", "minimum": 0}),
        "min_points": Param(1, type="number", minimum=0),
        "programs": Param(
            [
                {"program_id": 2282, "point_category_id": 17383},
                {"program_id": 3379, "point_category_id": 40022},
                {"program_id": 3379, "point_category_id": 40023},
            ],
            type="array",
        ),
        "shard_size": Param(500, type="integer", minimum=1),
        "email_template": Param(str(TEMPLATES / "expiry_reminder.html"), type="string"),
        "email_subject": Param(
            "{{ first_name }}, {{ points }} points expire on {{ expiry_date }}", type="string"
        ),
        "from_email": Param("rewards@example.com", type="string"),
        "neo_conn_id": Param("neo_default", type="string"),
        "smtp_conn_id": Param("smtp_default", type="string"),
    },
)
def neo_points_expiry_reminder() -> None:
    @task
    def plan_shards(params: dict[str, Any], ds: str) -> list[dict[str, Any]]:
        """Split the CRM extract into shards, one mapped discovery task each."""
        source = ObjectStoragePath(params["customers_path"])
        shards: list[dict[str, Any]] = []
        rows: list[dict[str, str]] = []

        def flush() -> None:
            url = str(_run_dir(params, ds) / "shards" / f"shard-{len(shards):05d}.csv")
            with atomic_open(url) as handle:
                text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
                writer = csv.DictWriter(text, fieldnames=["customer_id", "email", "first_name"])
                writer.writeheader()
                writer.writerows(rows)
                text.detach()
            shards.append({"index": len(shards), "path": url, "customers": len(rows)})
            rows.clear()

        with source.open("r", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows.append({key: row[key] for key in ("customer_id", "email", "first_name")})
                if len(rows) == params["shard_size"]:
                    flush()
        if rows:
            flush()
        return shards

    @task
    def find(shard: dict[str, Any], params: dict[str, Any], ds: str) -> dict[str, Any]:
        """The reminders of one shard, for every lead time, written as NDJSON."""
        with ObjectStoragePath(shard["path"]).open("r", encoding="utf-8") as handle:
            customers = list(read_customers(csv.DictReader(handle)))
        hook = NeoHook(params["neo_conn_id"])
        anchor = local_day(run_anchor(get_current_context()), hook.settings.timezone)
        reminders = find_reminders(
            hook,
            customers,
            programs=[msgspec.convert(p, ProgramCategory) for p in params["programs"]],
            lead_days=params["lead_times"],
            anchor_day=anchor,
            min_points=Decimal(str(params["min_points"])),
        )
        url = str(_run_dir(params, ds) / "reminders" / f"shard-{shard['index']:05d}.ndjson")
        encoder = msgspec.json.Encoder(decimal_format="number")
        with atomic_open(url) as handle:
            for reminder in reminders:
                handle.write(encoder.encode(reminder) + b"\n")
        return {
            "index": shard["index"],
            "path": url,
            "customers": len(customers),
            "reminders": len(reminders),
            "requests": hook.stats.requests,
        }

    @task(retries=2, retry_delay=timedelta(seconds=5))
    def send(found: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Email one shard's reminders, each exactly once, whatever retries happen."""
        decoder = msgspec.json.Decoder(Reminder)
        with ObjectStoragePath(found["path"]).open("rb") as handle:
            reminders = [decoder.decode(line) for line in handle if line.strip()]
        template = ReminderTemplate(
            Path(params["email_template"]).read_text(), params["email_subject"]
        )
        ledger = SentLedger(params["ledger_path"])
        try:
            with SmtpHook(params["smtp_conn_id"]) as smtp:

                def email(reminder: Reminder) -> None:
                    subject, html = template.render(reminder)
                    smtp.send_email_smtp(
                        to=reminder.email,
                        subject=subject,
                        html_content=html,
                        from_email=params["from_email"],
                        custom_headers={"X-Neo-Reminder-Key": reminder.key},
                    )

                counts = deliver(reminders, ledger, email)
        finally:
            ledger.close()
        return {"index": found["index"], **counts}

    @task
    def publish(
        found: list[dict[str, Any]], sent: list[dict[str, Any]], params: dict[str, Any], ds: str
    ) -> dict[str, Any]:
        """The day's reminder list as one CSV, and the run's totals."""
        decoder = msgspec.json.Decoder(Reminder)
        url = str(ObjectStoragePath(params["output_dir"]) / "reminders" / f"{ds}.csv")
        per_lead: dict[int, dict[str, Any]] = {}
        with atomic_open(url) as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(
                ["customer_id", "email", "first_name", "lead_days", "expiry_date",
                 "remaining_points", "programs"]
            )  # fmt: skip
            for shard in sorted(found, key=lambda item: item["index"]):
                with ObjectStoragePath(shard["path"]).open("rb") as lines:
                    for line in lines:
                        if not line.strip():
                            continue
                        r = decoder.decode(line)
                        writer.writerow(
                            [r.customer_id, r.email, r.first_name, r.lead_days,
                             r.expiry_date.isoformat(), str(r.remaining_points),
                             json.dumps({k: str(v) for k, v in r.programs.items()})]
                        )  # fmt: skip
                        lead = per_lead.setdefault(
                            r.lead_days, {"customers": 0, "points": Decimal(0)}
                        )
                        lead["customers"] += 1
                        lead["points"] += r.remaining_points
            text.detach()
        summary = {
            "reminder_list": url,
            "lead_times": {
                str(lead): {"customers": v["customers"], "points": str(v["points"])}
                for lead, v in sorted(per_lead.items(), reverse=True)
            },
            "customers_checked": sum(shard["customers"] for shard in found),
            "neo_requests": sum(shard["requests"] for shard in found),
            "emails_sent": sum(shard["sent"] for shard in sent),
            "already_sent": sum(shard["skipped"] for shard in sent),
        }
        print(f"Expiry reminders: {json.dumps(summary)}")
        return summary

    found = find.expand(shard=plan_shards())
    publish(found, send.expand(found=found))


neo_points_expiry_reminder()
