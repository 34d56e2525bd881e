"""The effectiveness report a brand reads: the CSV's columns and rows, the summary per lead time,
and a self-contained HTML page whose inline SVG chart (no plotting library) shows the shares
redeemed, each uplift with its 95% interval around zero, and when a 10-point uplift will show."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from airflow_provider_neo.reminders.effectiveness.statistics import (
    ALL_PROGRAMS,
    RECENT_EXPIRY_DAYS,
    TARGET_UPLIFT,
    Effect,
)

CSV_COLUMNS = [
    "lead_days", "program", "reminded", "held_out", "pending", "reminded_points_at_stake",
    "held_out_points_at_stake", "reminded_points_saved", "held_out_points_saved",
    "reminded_share_redeemed", "held_out_share_redeemed", "uplift", "uplift_ci_low",
    "uplift_ci_high", "points_saved", "detectable_uplift", "days_to_detect_10_points",
]  # fmt: skip


def number(value: float | Decimal | int | None) -> str:
    """Shares to six decimals, points exactly (without trailing zeros), days whole; empty when
    undefined."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def csv_row(e: Effect) -> list[str | int]:
    return [
        e.lead_days, e.program, e.reminded, e.held_out, e.pending, number(e.reminded_at_stake),
        number(e.held_out_at_stake), number(e.reminded_saved), number(e.held_out_saved),
        number(e.reminded_share), number(e.held_out_share), number(e.uplift),
        number(e.uplift_low), number(e.uplift_high), number(e.points_saved),
        number(e.detectable_uplift), number(e.days_to_detect),
    ]  # fmt: skip


def lead_summary(effects: Sequence[Effect]) -> dict[str, dict[str, Any]]:
    """Per lead time over all programs, the figures a summary (XCom, the task log) carries."""
    return {
        str(e.lead_days): {
            "reminded_share": e.reminded_share,
            "held_out_share": e.held_out_share,
            "uplift": e.uplift,
            "points_saved": None if e.points_saved is None else str(e.points_saved),
            "detectable_uplift": e.detectable_uplift,
            "days_to_detect_10_points": e.days_to_detect,
        }
        for e in effects
        if e.program == ALL_PROGRAMS
    }


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def points(value: float | None, sign: bool = True) -> str:
    """A difference of shares in percentage points (pp)."""
    if value is None:
        return "n/a"
    return f"{100 * value:+.1f} pp" if sign else f"{100 * value:.1f} pp"


def days_text(days: int | None) -> str:
    """How many more days of reminders until an uplift becomes detectable, in words."""
    if days is None:
        return "n/a"
    if days == 0:
        return "now"
    return f"in {days} more day{'' if days == 1 else 's'}"


def _label(e: Effect) -> str:
    ahead = f"{e.lead_days} day{'' if e.lead_days == 1 else 's'} ahead"
    return f"{ahead}, " + ("all programs" if e.program == ALL_PROGRAMS else f"program {e.program}")


def _uplift_span(effects: Sequence[Effect]) -> float:
    """Half the uplift axis: the largest uplift or interval end, up to a whole 10 points."""
    ends = [
        abs(v) for e in effects for v in (e.uplift, e.uplift_low, e.uplift_high) if v is not None
    ]
    return max(math.ceil(max(ends, default=0.0) * 10 - 1e-9) / 10, 0.1)


def chart(effects: Sequence[Effect]) -> str:
    """Per lead time and program, one row: the share of points at stake redeemed before expiry
    as bars, reminded (dark) above held out (light); the uplift as a dot with its 95% interval as
    whiskers around a zero line (an interval crossing zero: not yet told apart from no effect);
    and, as text, the smallest uplift these groups detect and when a 10-point one will show."""
    bar, gap, top = 16, 18, 34
    share_left, share_width = 180, 250
    panel_left, panel_width = share_left + share_width + 130, 200
    text_left = panel_left + panel_width + 14
    row = 2 * bar + gap
    bottom = top + len(effects) * row
    height = bottom + 26
    span = _uplift_span(effects)
    zero = panel_left + panel_width / 2

    def x(uplift: float) -> float:
        return zero + panel_width / 2 * max(-span, min(span, uplift)) / span

    target = f"{100 * TARGET_UPLIFT:.0f} pp"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{text_left + 190}" height="{height}"'
        ' font-family="sans-serif" font-size="12">',
        f'<text x="{share_left}" y="14" font-weight="bold">share of points at stake redeemed'
        "</text>",
        f'<text x="{zero}" y="14" text-anchor="middle" font-weight="bold">uplift, 95% interval'
        "</text>",
        f'<text x="{text_left}" y="14" font-weight="bold">when will we know?</text>',
        f'<line x1="{share_left}" y1="{top - 6}" x2="{share_left}" y2="{bottom}" stroke="#999"/>',
    ]
    for tick in range(0, 101, 25):
        tick_x = share_left + share_width * tick / 100
        parts.append(
            f'<text x="{tick_x}" y="{height - 8}" text-anchor="middle" fill="#666">{tick}%</text>'
        )
    for step in (-1.0, -0.5, 0.5, 1.0):
        tick_x = x(step * span)
        parts.append(
            f'<line x1="{tick_x:.1f}" y1="{top - 6}" x2="{tick_x:.1f}" y2="{bottom}"'
            ' stroke="#e4e4e4"/>'
            f'<text x="{tick_x:.1f}" y="{height - 8}" text-anchor="middle" fill="#666">'
            f"{100 * step * span:+.0f}</text>"
        )
    parts.append(
        f'<line class="zero-line" x1="{zero}" y1="{top - 6}" x2="{zero}" y2="{bottom}"'
        ' stroke="#444" stroke-width="1.5"/>'
        f'<text x="{zero}" y="{height - 8}" text-anchor="middle" fill="#666">0 pp</text>'
    )
    for index, e in enumerate(effects):
        y = top + index * row
        middle = y + bar - 1
        weight = ' font-weight="bold"' if e.program == ALL_PROGRAMS else ""
        parts.append(
            f'<text x="{share_left - 8}" y="{y + bar + 4}" text-anchor="end"{weight}>'
            f"{html.escape(_label(e))}</text>"
        )
        for offset, share, colour, who in (
            (0, e.reminded_share, "#1f5fa8", f"reminded ({e.reminded})"),
            (bar, e.held_out_share, "#9bbbe0", f"held out ({e.held_out})"),
        ):
            length = share_width * (share or 0)
            parts.append(
                f'<rect x="{share_left}" y="{y + offset}" width="{length:.1f}" height="{bar - 2}"'
                f' fill="{colour}"><title>{who}: {percent(share)}</title></rect>'
                f'<text x="{share_left + length + 4:.1f}" y="{y + offset + bar - 5}">'
                f"{percent(share)} {who}</text>"
            )
        interval = ""
        if e.uplift_low is not None and e.uplift_high is not None:
            low, high = x(e.uplift_low), x(e.uplift_high)
            interval = f" [{100 * e.uplift_low:+.1f}, {100 * e.uplift_high:+.1f}]"
            parts.append(
                f'<g class="whisker" stroke="#333" stroke-width="1.5">'
                f"<title>95% interval of the uplift:{interval} pp</title>"
                f'<line x1="{low:.1f}" y1="{middle}" x2="{high:.1f}" y2="{middle}"/>'
                f'<line x1="{low:.1f}" y1="{middle - 6}" x2="{low:.1f}" y2="{middle + 6}"/>'
                f'<line x1="{high:.1f}" y1="{middle - 6}" x2="{high:.1f}" y2="{middle + 6}"/>'
                "</g>"
            )
        if e.uplift is not None:
            parts.append(
                f'<circle class="uplift" cx="{x(e.uplift):.1f}" cy="{middle}" r="4.5"'
                f' fill="#1f5fa8"><title>uplift {points(e.uplift)}{interval}</title></circle>'
            )
        for line, text in enumerate(
            (
                f"uplift {points(e.uplift)}{interval}",
                f"detectable from {points(e.detectable_uplift, sign=False)}",
                f"{target}: n/a"
                if e.days_to_detect is None
                else f"{target} detectable {days_text(e.days_to_detect)}",
            )
        ):
            parts.append(
                f'<text x="{text_left}" y="{y + 11 + 14 * line}" font-size="11">'
                f"{html.escape(text)}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def page(effects: Sequence[Effect], before: str) -> str:
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(cell)) if cell != '' else 'n/a'}</td>" for cell in cells)
        + "</tr>"
        for cells in (csv_row(e) for e in effects)
    )
    header = "".join(f"<th>{html.escape(name)}</th>" for name in CSV_COLUMNS)
    target = f"{100 * TARGET_UPLIFT:.0f}"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Expiry reminders: points saved</title>
<style>body {{ font-family: sans-serif; margin: 24px; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}</style>
</head><body>
<h1>Do expiry reminders save points?</h1>
<p>Share of the points at stake that customers redeemed before they expired, for expiry days
before {html.escape(before)}: customers reminded against the holdout, who were not. The uplift
is the difference, in percentage points (pp), with its 95% confidence interval: while the
interval crosses the zero line, the reminders are not yet told apart from no effect.</p>
{chart(effects) if effects else "<p>No expiry day with reminders has passed yet.</p>"}
<h2>When will we know?</h2>
<p><b>Detectable</b> is the smallest uplift the groups measured so far detect (80% power, 5%
two-sided level): (z<sub>0.975</sub> + z<sub>0.8</sub>) times the standard error of the uplift.
<b>{target} pp</b> says after how many more days of reminders an uplift of {target} percentage
points becomes detectable, at the recent daily volume: each group's measured reminders per
expiry day over the last {RECENT_EXPIRY_DAYS} expiry days with any (of that lead time and
program), each group's variance
shrinking as n / (n + days &times; daily volume); n/a when a group is too small to measure or
does not grow. Reminders whose points Neo has not settled yet (some still AVAILABLE) are
pending and not counted.</p>
<h2>Figures</h2>
<table><tr>{header}</tr>{rows}</table>
</body></html>
"""
