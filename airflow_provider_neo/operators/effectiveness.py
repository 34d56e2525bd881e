"""Do the expiry reminders save points? The operator that measures the reminders of passed expiry
days against the holdout and writes the report a brand reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.operators.reminders import (
    DEFAULT_PROGRAMS,
    LedgerArguments,
    parse_programs,
    templated,
)
from airflow_provider_neo.operators.trust import TrustBoundaryOperator
from airflow_provider_neo.reminders.effectiveness.report import (
    CSV_COLUMNS,
    csv_row,
    lead_summary,
    page,
)
from airflow_provider_neo.reminders.effectiveness.settlements import fetch_settlements
from airflow_provider_neo.reminders.effectiveness.statistics import outcomes, summarise
from airflow_provider_neo.utils.output import atomic_csv, atomic_open, task_writer
from airflow_provider_neo.utils.windows import local_day, run_anchor


class ReminderEffectivenessOperator(LedgerArguments, TrustBoundaryOperator):
    """Reminded customers against the holdout, for every reminder (sent or held out) whose expiry
    day is before the run's day in the organisation's time zone.

    The sent-ledger (`ledger_path` or `ledger_conn_id`, the reminder workflow's) holds the points
    each reminder had at stake per program; Neo's paIds rows say what became of them. A
    reminder's points in a program are measured once Neo has settled them all (none left
    AVAILABLE), pending until then. Per lead time and program, and over all programs: the share
    of points at stake redeemed before expiry, reminded and held out, the uplift with its 95%
    interval, the points saved, the smallest uplift the groups detect and the days of reminders
    until a 10-point uplift is detectable (`airflow_provider_neo.reminders.effectiveness` says
    how).

    Writes ``effectiveness/<ds>.csv`` and ``effectiveness/<ds>.html`` (a self-contained page
    with an inline SVG chart) under `output_dir`, any ObjectStoragePath, and prints
    ``Reminder effectiveness: {summary}``.

    :param programs: the programs and point categories the reminders were found in, as
        ``[{"program_id": ..., "point_category_id": ...}, ...]``: the reminder workflow's.

    XCom: the summary, ``{"csv", "html", "measured_before", "reminders_measured",
    "reminders_pending", "neo_requests", "all_programs": {"<lead>": {...}}}``.

    Neo may be briefly down or rate-limited: by default the task retries 3 times with
    exponential backoff, as `FindRemindersOperator` does.
    """

    template_fields: Sequence[str] = (
        "output_dir", "programs", "ledger_path", "ledger_conn_id", "neo_conn_id",
    )  # fmt: skip
    location_fields: Sequence[str] = ("output_dir", "ledger_path", "ledger_conn_id", "neo_conn_id")
    ui_color = "#e8d7f1"

    def __init__(
        self,
        *,
        output_dir: str,
        programs: Any = DEFAULT_PROGRAMS,
        ledger_path: str | None = None,
        ledger_conn_id: str | None = None,
        neo_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 3)
        kwargs.setdefault("retry_exponential_backoff", True)
        super().__init__(**kwargs)
        if not templated(programs):
            parse_programs(programs)
        self.output_dir = output_dir
        self.programs = programs
        self.ledger_path = ledger_path
        self.ledger_conn_id = ledger_conn_id
        self.neo_conn_id = neo_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        programs = parse_programs(self.programs)
        hook = NeoHook(self.neo_conn_id)
        today = local_day(run_anchor(context), hook.settings.timezone)
        ledger = self.open_ledger()
        try:
            stakes = ledger.stakes(expiring_before=today)
        finally:
            ledger.close()
        measured, pending = outcomes(stakes, fetch_settlements(hook, stakes, programs))
        effects = summarise(measured, pending)
        folder = ObjectStoragePath(self.output_dir) / "effectiveness"
        ds = context["ds"]
        writer = task_writer(context)
        csv_url, html_url = str(folder / f"{ds}.csv"), str(folder / f"{ds}.html")
        with atomic_csv(csv_url, CSV_COLUMNS, writer=writer) as rows:
            rows.writerows(csv_row(effect) for effect in effects)
        with atomic_open(html_url, writer=writer) as handle:
            handle.write(page(effects, today.isoformat()).encode())
        summary = {
            "csv": csv_url,
            "html": html_url,
            "measured_before": today.isoformat(),
            "reminders_measured": len({o.key for o in measured}),
            "reminders_pending": len({stake.key for stake, _ in pending}),
            "neo_requests": hook.stats.requests,
            "all_programs": lead_summary(effects),
        }
        print(f"Reminder effectiveness: {json.dumps(summary)}")
        return summary
