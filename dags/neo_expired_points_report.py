"""Yearly report of the loyalty points that expired: per customer (CSV) and in total.

The year is the run's (the data interval's start year for the scheduled yearly run), or the
``year`` param for a report of any year. Customers come from the CRM extract, as in
``neo_points_expiry_reminder``.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from decimal import Decimal
from typing import Any

from airflow.providers.common.compat.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_neo.operators.neo import ExpiredPointsOperator
from airflow_provider_neo.utils.files import text_lines
from airflow_provider_neo.utils.output import atomic_csv

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
YEAR = "{{ params.year or data_interval_start.year }}"


@dag(
    schedule="@yearly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "year": Param(None, type=["null", "integer"], minimum=1000, maximum=9999),
        "customers_path": Param(f"{DATA_DIR}/customers.csv", type="string"),
        "output_dir": Param(f"{DATA_DIR}/neo", type="string"),
    },
)
def neo_expired_points_report() -> None:
    expired = ExpiredPointsOperator(
        task_id="fetch_expired_points",
        customers_path="{{ params.customers_path }}",
        year=YEAR,
        output_path="{{ params.output_dir }}/reports/expired-points-" + YEAR + ".csv",
        output_format="csv",
    )

    @task
    def totals(summary: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Expired points per program and customer counts, beside the detailed report."""
        per_program: dict[str, Decimal] = {}
        customers: set[str] = set()
        for row in csv.DictReader(text_lines(summary["output_path"], argument="output_path")):
            customers.add(row["customerId"])
            per_program[row["programId"]] = per_program.get(row["programId"], Decimal(0)) + Decimal(
                row["points"]
            )
        result = {
            "year": summary["year"],
            "report": summary["output_path"],
            "customers_with_expired_points": len(customers),
            "expired_points": str(sum(per_program.values(), Decimal(0))),
            "per_program": {
                program: str(points) for program, points in sorted(per_program.items())
            },
            "neo_requests": summary["requests"],
        }
        url = str(
            ObjectStoragePath(params["output_dir"])
            / "reports"
            / f"expired-points-{summary['year']}-totals.csv"
        )
        with atomic_csv(url, ["program_id", "expired_points"]) as rows:
            rows.writerows(sorted(result["per_program"].items()))
            rows.writerow(["all", result["expired_points"]])
        print(f"Expired points report: {json.dumps(result)}")
        return result

    totals(expired.output)


neo_expired_points_report()
