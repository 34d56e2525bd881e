"""Tell a customer the points a purchase earned, once Neo has allocated them.

Triggered per transaction with conf ``{"customer_id": ..., "entity_id": "<bill number>",
"event_type": "TransactionAdd"}`` (``email`` optional: else it is looked up in the CRM extract).
A deferrable sensor waits in the triggerer for the allocation, without holding a worker slot,
and hands the allocation rows it found on as its XCom; the customer is emailed the points they
add up to, once (the reminders' sent-ledger claims the message, keyed by customer and
transaction, before it is sent).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_neo.operators.points_earned import PointsEarnedEmailOperator
from airflow_provider_neo.sensors.neo import EventPointsAllocationSensor

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
CONF = "{{ params.%s }}"


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
    },
)
def neo_transaction_points() -> None:
    # [START howto_sensor_event_points_allocation]
    wait = EventPointsAllocationSensor(
        task_id="wait_for_allocation",
        customer_id=CONF % "customer_id",
        entity_id=CONF % "entity_id",
        event_type=CONF % "event_type",
        deferrable=True,  # waits in the triggerer (EventPointsAllocationTrigger), no worker slot
        poke_interval=5,
        timeout=60 * 60,
    )
    # [END howto_sensor_event_points_allocation]
    # [START howto_operator_points_earned_email]
    PointsEarnedEmailOperator(
        task_id="notify",
        rows=wait.output,  # the sensor's rows: no second fetch
        customer_id=CONF % "customer_id",
        entity_id=CONF % "entity_id",
        customer_email="{{ params.email or '' }}",
        conf_may_set=["email"],  # the trigger may name the address; nothing else it reads
        customers_path=f"{DATA_DIR}/customers.csv",
        from_email="rewards@example.com",
        ledger_path=f"{DATA_DIR}/neo/sent-ledger.sqlite3",
        ledger_conn_id=os.environ.get("NEO_LEDGER_CONN_ID", ""),
    )
    # [END howto_operator_points_earned_email]


neo_transaction_points()
