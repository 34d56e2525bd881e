"""Every week, once customers have points about to expire: the list of those points, as CSV.

A deferrable sensor waits, in the triggerer and without holding a worker slot, until the
customers of the CRM extract (``$NEO_DATA_DIR/customers.csv``) have at least 1,000 AVAILABLE
points of program 2282 (point category 17383) expiring in the coming week; then those customers'
AVAILABLE points expiring in that week (Neo's paIds rows) are written to
``$NEO_DATA_DIR/neo/expiring-soon/<ds>.csv``.

The coming week is ``days_ahead=1``, ``window_days=7``: the seven days after the calendar day,
in the organisation's time zone, of the run's data interval end. A scheduled run of this
``@weekly`` DAG has its data interval end at the moment it is scheduled (Sunday 00:00 UTC), so
it looks at Monday to Sunday of the week ahead. ``airflow dags test neo_points_expiring_soon
DATE`` (and a manual run) on Airflow 3 ends its data interval at DATE: the seven days after
DATE. On Airflow 2, where ``@weekly`` runs cover the week before them, a manual run's interval
ends at the last Sunday before DATE.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import dag

from airflow_provider_neo.operators.neo import PointsAwardedOperator
from airflow_provider_neo.sensors.neo import ExpiringPointsSensor

# Where the files are is the deployment's to say, never a run's conf.
DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")


@dag(
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
)
def neo_points_expiring_soon() -> None:
    # [START howto_sensor_expiring_points]
    wait = ExpiringPointsSensor(
        task_id="wait_for_expiring_points",
        customers_path=f"{DATA_DIR}/customers.csv",
        program_id=2282,
        point_category_id=17383,
        days_ahead=1,  # the week after the run's day, in the organisation's time zone
        window_days=7,
        min_points=1000,
        deferrable=True,  # checks once, then waits in the triggerer (ExpiringPointsTrigger)
        poke_interval=60 * 60,
        timeout=24 * 60 * 60,
        pool="neo",
    )
    # [END howto_sensor_expiring_points]
    # [START howto_operator_points_awarded]
    expiring = PointsAwardedOperator(
        task_id="list_expiring_points",
        customers_path=f"{DATA_DIR}/customers.csv",
        program_id=2282,
        point_category_id=17383,
        status="AVAILABLE",
        days_ahead=1,  # the sensor's window
        window_days=7,
        output_path=f"{DATA_DIR}/neo/expiring-soon/" + "{{ ds }}.csv",
        output_format="csv",
        pool="neo",
    )
    # [END howto_operator_points_awarded]
    wait >> expiring


neo_points_expiring_soon()
