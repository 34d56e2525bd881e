"""Do the expiry reminders save points? Reminded customers against the holdout, every day.

For every reminder of ``neo_points_expiry_reminder`` whose expiry day has passed (before the
run's day in the organisation's time zone), sent or held out (its ``holdout_share``), the
points at stake it recorded against what Neo's paIds rows say became of them, once Neo has
settled them all (until then: pending). Per lead time and program: the share of points at stake
redeemed before expiry, reminded and held out, the uplift with its 95% confidence interval, the
points saved, the smallest uplift the groups detect and the days of reminders until a 10-point
uplift is detectable. Writes ``effectiveness/<ds>.csv`` and ``effectiveness/<ds>.html`` (with
an SVG chart) under ``$NEO_DATA_DIR/neo``; see ``ReminderEffectivenessOperator``. It reads the
reminder DAG's ledger (its SQLite file there, or the database of ``NEO_LEDGER_CONN_ID``).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_neo.operators.effectiveness import ReminderEffectivenessOperator

# Where the files and the ledger are is the deployment's to say, never a run's conf: the same
# places as the reminder DAG's.
DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
OUTPUT_DIR = f"{DATA_DIR}/neo"


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "programs": Param(
            [
                {"program_id": 2282, "point_category_id": 17383},
                {"program_id": 3379, "point_category_id": 40022},
                {"program_id": 3379, "point_category_id": 40023},
            ],
            type="array",
        ),
    },
)
def neo_reminder_effectiveness() -> None:
    # [START howto_operator_reminder_effectiveness]
    ReminderEffectivenessOperator(
        task_id="report",
        pool="neo",  # it reads paIds: within the connection's rate budget
        output_dir=OUTPUT_DIR,
        programs="{{ params.programs }}",
        ledger_path=f"{OUTPUT_DIR}/sent-ledger.sqlite3",
        ledger_conn_id=os.environ.get("NEO_LEDGER_CONN_ID", ""),
    )
    # [END howto_operator_reminder_effectiveness]


neo_reminder_effectiveness()
