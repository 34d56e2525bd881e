"""Do the expiry reminders save points? Reminded customers against the holdout, every day.

For every reminder of ``neo_points_expiry_reminder`` whose expiry day has passed (before the
run's day in the organisation's time zone), sent or held out (its ``holdout_share``), the
sent-ledger holds the points that were at stake when it was found. Neo says what became of them:
paIds rows of status REDEEMED, CONSUMED or EXPIRED for that customer, program and expiry day
(points at stake that did not expire were redeemed before expiry). Per lead time and program the
report gives the share of points at stake redeemed before expiry, reminded and held out, the
uplift with its 95% confidence interval and the points saved
(``airflow_provider_neo.reminders.effectiveness`` says how).

It writes ``effectiveness/<ds>.csv`` and ``effectiveness/<ds>.html`` (a self-contained page with
an inline SVG chart, no plotting library) under ``output_dir``, any ObjectStoragePath. Point it
at the reminder DAG's ledger (``ledger_path`` or ``ledger_conn_id``) and programs.
"""

from __future__ import annotations

import html
import json
import os
from datetime import datetime
from decimal import Decimal
from typing import Any

from airflow.providers.common.compat.sdk import (
    ObjectStoragePath,
    Param,
    dag,
    get_current_context,
    task,
)

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders.effectiveness.statistics import (
    ALL_PROGRAMS,
    Effect,
    expired_points,
    outcomes,
    summarise,
)
from airflow_provider_neo.reminders.ledger import SentLedger
from airflow_provider_neo.utils.output import atomic_csv, atomic_open, task_writer
from airflow_provider_neo.utils.windows import local_day, run_anchor

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
CSV_COLUMNS = [
    "lead_days", "program", "reminded", "held_out", "pending", "reminded_points_at_stake",
    "held_out_points_at_stake", "reminded_points_saved", "held_out_points_saved",
    "reminded_share_redeemed", "held_out_share_redeemed", "uplift", "uplift_ci_low",
    "uplift_ci_high", "points_saved",
]  # fmt: skip


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "output_dir": Param(f"{DATA_DIR}/neo", type="string"),
        "ledger_path": Param(f"{DATA_DIR}/neo/sent-ledger.sqlite3", type="string"),
        "ledger_conn_id": Param(os.environ.get("NEO_LEDGER_CONN_ID", ""), type="string"),
        "programs": Param(
            [
                {"program_id": 2282, "point_category_id": 17383},
                {"program_id": 3379, "point_category_id": 40022},
                {"program_id": 3379, "point_category_id": 40023},
            ],
            type="array",
        ),
        "neo_conn_id": Param("neo_default", type="string"),
    },
)
def neo_reminder_effectiveness() -> None:
    @task(retries=3, retry_exponential_backoff=True, pool="neo")  # it reads paIds
    def report(params: dict[str, Any], ds: str) -> dict[str, Any]:
        """Measure every passed expiry day's reminders against the holdout; write CSV and HTML."""
        hook = NeoHook(params["neo_conn_id"])
        context = get_current_context()
        today = local_day(run_anchor(context), hook.settings.timezone)
        ledger = SentLedger.open(path=params["ledger_path"], conn_id=params["ledger_conn_id"])
        try:
            stakes = ledger.stakes(expiring_before=today)
        finally:
            ledger.close()
        programs = [(p["program_id"], p["point_category_id"]) for p in params["programs"]]
        measured, pending = outcomes(stakes, expired_points(hook, stakes, programs))
        effects = summarise(measured, pending)
        folder = ObjectStoragePath(params["output_dir"]) / "effectiveness"
        writer = task_writer(context)
        csv_url, html_url = str(folder / f"{ds}.csv"), str(folder / f"{ds}.html")
        with atomic_csv(csv_url, CSV_COLUMNS, writer=writer) as rows:
            rows.writerows(_csv_row(effect) for effect in effects)
        with atomic_open(html_url, writer=writer) as handle:
            handle.write(_page(effects, today.isoformat()).encode())
        summary = {
            "csv": csv_url,
            "html": html_url,
            "measured_before": today.isoformat(),
            "reminders_measured": len({o.key for o in measured}),
            "neo_requests": hook.stats.requests,
            "all_programs": {
                str(e.lead_days): {
                    "reminded_share": e.reminded_share,
                    "held_out_share": e.held_out_share,
                    "uplift": e.uplift,
                    "points_saved": str(e.points_saved),
                }
                for e in effects
                if e.program == ALL_PROGRAMS
            },
        }
        print(f"Reminder effectiveness: {json.dumps(summary)}")
        return summary

    report()


def _number(value: float | Decimal | None) -> str:
    """Shares to six decimals, points exactly (without trailing zeros); empty when undefined."""
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else f"{value.normalize():f}"


def _csv_row(e: Effect) -> list[str | int]:
    return [
        e.lead_days, e.program, e.reminded, e.held_out, e.pending, _number(e.reminded_at_stake),
        _number(e.held_out_at_stake), _number(e.reminded_saved), _number(e.held_out_saved),
        _number(e.reminded_share), _number(e.held_out_share), _number(e.uplift),
        _number(e.uplift_low), _number(e.uplift_high), _number(e.points_saved),
    ]  # fmt: skip


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _chart(effects: list[Effect]) -> str:
    """Horizontal bars: per lead time and program, the share of points at stake redeemed before
    expiry, reminded (dark) above held out (light), with the uplift and its interval beside."""
    bar, gap, left, width = 16, 18, 190, 420
    height = len(effects) * (2 * bar + gap) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 260}" height="{height}"'
        ' font-family="sans-serif" font-size="12">',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{height - 20}" stroke="#999"/>',
    ]
    for tick in range(0, 101, 25):
        x = left + width * tick / 100
        parts.append(
            f'<text x="{x}" y="{height - 5}" text-anchor="middle" fill="#666">{tick}%</text>'
        )
    for index, e in enumerate(effects):
        y = 15 + index * (2 * bar + gap)
        label = f"{e.lead_days} day{'' if e.lead_days == 1 else 's'} ahead, " + (
            "all programs" if e.program == ALL_PROGRAMS else f"program {e.program}"
        )
        parts.append(
            f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{html.escape(label)}</text>'
        )
        for offset, share, colour, who in (
            (0, e.reminded_share, "#1f5fa8", f"reminded ({e.reminded})"),
            (bar, e.held_out_share, "#9bbbe0", f"held out ({e.held_out})"),
        ):
            length = width * (share or 0)
            parts.append(
                f'<rect x="{left}" y="{y + offset}" width="{length:.1f}" height="{bar - 2}"'
                f' fill="{colour}"><title>{who}: {_percent(share)}</title></rect>'
                f'<text x="{left + length + 4:.1f}" y="{y + offset + bar - 5}">'
                f"{_percent(share)} {who}</text>"
            )
        if e.uplift is not None:
            interval = (
                f" [{_percent(e.uplift_low)}, {_percent(e.uplift_high)}]"
                if e.uplift_low is not None
                else ""
            )
            parts.append(
                f'<text x="{left + width + 90}" y="{y + bar + 4}">uplift {_percent(e.uplift)}'
                f"{interval}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _page(effects: list[Effect], before: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in _csv_row(e)) + "</tr>"
        for e in effects
    )
    header = "".join(f"<th>{html.escape(name)}</th>" for name in CSV_COLUMNS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Expiry reminders: points saved</title>
<style>body {{ font-family: sans-serif; margin: 24px; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}</style>
</head><body>
<h1>Do expiry reminders save points?</h1>
<p>Share of the points at stake that customers redeemed before they expired, for expiry days
before {html.escape(before)}: customers reminded against the holdout, who were not. The uplift
is the difference, with its 95% confidence interval.</p>
{_chart(effects) if effects else "<p>No expiry day with reminders has passed yet.</p>"}
<h2>Figures</h2>
<table><tr>{header}</tr>{rows}</table>
</body></html>
"""


neo_reminder_effectiveness()
