"""Yearly report of the loyalty points that expired: per customer (CSV) and in total.

The year is the run's (the data interval's start year for the scheduled yearly run), or the
``year`` param for a report of any year. Customers come from the CRM extract, as in
``neo_points_expiry_reminder``. ``reports/expired-points-<year>.csv`` holds every expired row;
``reports/expired-points-<year>-totals.csv`` the points per program and in all; the task's XCom
summary has both totals and the customers with points expired.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_neo.operators.neo import ExpiredPointsOperator

# Where the files are is the deployment's to say, never a run's conf.
DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
YEAR = "{{ params.year or data_interval_start.year }}"
REPORTS = f"{DATA_DIR}/neo/reports/expired-points-" + YEAR


@dag(
    schedule="@yearly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "year": Param(None, type=["null", "integer"], minimum=1000, maximum=9999),
    },
)
def neo_expired_points_report() -> None:
    # [START howto_operator_expired_points]
    ExpiredPointsOperator(
        task_id="fetch_expired_points",
        customers_path=f"{DATA_DIR}/customers.csv",
        year=YEAR,
        output_path=f"{REPORTS}.csv",
        output_format="csv",
        totals_path=f"{REPORTS}-totals.csv",
    )
    # [END howto_operator_expired_points]


neo_expired_points_report()
