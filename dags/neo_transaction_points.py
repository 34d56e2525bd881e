"""Tell a customer the points a purchase earned, once Neo has allocated them.

Triggered per transaction with conf ``{"customer_id": ..., "entity_id": "<bill number>",
"event_type": "TransactionAdd"}`` (``email`` optional: else it is looked up in the CRM extract).
A deferrable sensor waits in the triggerer for the allocation, without holding a worker slot,
and hands the allocation rows it found on as its XCom; the customer is emailed the points they
add up to, once (the reminders' sent-ledger claims the message, keyed by customer and
transaction, before it is sent).
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from airflow.providers.common.compat.sdk import (
    Param,
    dag,
    get_current_context,
    task,
)
from airflow.providers.smtp.hooks.smtp import SmtpHook

from airflow_provider_neo.ledger import SentLedger
from airflow_provider_neo.reminders import deliver, task_try_owner
from airflow_provider_neo.sensors.neo import EventPointsAllocationSensor
from airflow_provider_neo.utils.files import text_lines

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
TEMPLATES = Path(__file__).parent / "templates"
CONF = "{{ params.%s }}"


class PointsEarned(msgspec.Struct, frozen=True):
    """The message, as the sent-ledger keys it: once per customer and transaction."""

    key: str
    customer_id: int
    expiry_date: None = None
    lead_days: int = 0


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "customer_id": Param(1, type="integer", minimum=1),
        "entity_id": Param("", type="string"),
        "event_type": Param("TransactionAdd", type=["string", "integer"]),
        "email": Param(None, type=["null", "string"]),
        "customers_path": Param(f"{DATA_DIR}/customers.csv", type="string"),
        "ledger_path": Param(f"{DATA_DIR}/neo/sent-ledger.sqlite3", type="string"),
        "ledger_conn_id": Param(os.environ.get("NEO_LEDGER_CONN_ID", ""), type="string"),
        "from_email": Param("rewards@example.com", type="string"),
        "smtp_conn_id": Param("smtp_default", type="string"),
    },
)
def neo_transaction_points() -> None:
    wait = EventPointsAllocationSensor(
        task_id="wait_for_allocation",
        customer_id=CONF % "customer_id",
        entity_id=CONF % "entity_id",
        event_type=CONF % "event_type",
        deferrable=True,
        poke_interval=5,
        timeout=60 * 60,
    )

    @task
    def notify(rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        points = sum((Decimal(row["points_exclusive"]) for row in rows), Decimal(0))
        customer = _crm_record(params)
        note = PointsEarned(
            key=f"earned:{params['customer_id']}:{params['entity_id']}",
            customer_id=int(params["customer_id"]),
        )
        html = (
            jinja2.Environment(autoescape=True)
            .from_string((TEMPLATES / "points_earned.html").read_text())
            .render(points=f"{points.normalize():f}", entity_id=params["entity_id"], **customer)
        )

        def email(note: PointsEarned) -> None:
            with SmtpHook(params["smtp_conn_id"]) as smtp:
                smtp.send_email_smtp(
                    to=customer["email"],
                    subject=f"You earned {points.normalize():f} points",
                    html_content=html,
                    from_email=params["from_email"],
                    custom_headers={"X-Neo-Notification-Key": note.key},
                )

        owner = task_try_owner(get_current_context())
        ledger = SentLedger.open(path=params["ledger_path"], conn_id=params["ledger_conn_id"])
        try:
            done = deliver([note], ledger, email, owner=owner)
        finally:
            ledger.close()
        return {"points": str(points), "sent": bool(done.sent), "email": customer["email"]}

    notify(wait.output)  # the sensor's rows: no second fetch


def _crm_record(params: dict[str, Any]) -> dict[str, str]:
    if params.get("email"):
        return {"email": params["email"], "first_name": ""}
    for row in csv.DictReader(text_lines(params["customers_path"], argument="customers_path")):
        if int(row["customer_id"]) == int(params["customer_id"]):
            return {"email": row["email"], "first_name": row["first_name"]}
    raise ValueError(f"customer_id: {params['customer_id']} is not in {params['customers_path']}")


neo_transaction_points()
