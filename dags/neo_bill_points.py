"""The points one bill earned a customer: Neo's allocation rows of that event, in XCom.

Triggered per bill with conf ``{"customer_id": ..., "entity_id": "<bill number>",
"event_type": "TransactionAdd"}`` (an event type's name or id). The rows themselves are the
task's XCom (``return_value``, at most ``max_xcom_records`` of them) and its summary, with the
points they add up to, the XCom ``summary``: no file is written, so the conf names no location.
For a bill that Neo may not have allocated yet, wait for it with
``EventPointsAllocationSensor`` first, as ``neo_transaction_points`` does.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_neo.operators.neo import EventPointsAllocationOperator


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
    },
)
def neo_bill_points() -> None:
    # [START howto_operator_event_points_allocation]
    EventPointsAllocationOperator(
        task_id="fetch_bill_allocation",
        customer_id="{{ params.customer_id }}",
        entity_id="{{ params.entity_id }}",
        event_type="{{ params.event_type }}",
        pool="neo",
    )  # no output_path: the rows go to XCom
    # [END howto_operator_event_points_allocation]


neo_bill_points()
