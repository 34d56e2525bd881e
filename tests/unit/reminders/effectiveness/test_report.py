"""The effectiveness report's rendering: CSV cells, the summary per lead time, and the chart's
zero line and one whisker per uplift with an interval."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from airflow_provider_neo.reminders.effectiveness.report import (
    CSV_COLUMNS,
    chart,
    csv_row,
    days_text,
    lead_summary,
    page,
)
from airflow_provider_neo.reminders.effectiveness.statistics import ALL_PROGRAMS, Effect

SVG = "{http://www.w3.org/2000/svg}"


def _effect(program: str = ALL_PROGRAMS, **figures: Any) -> Effect:
    defaults: dict[str, Any] = {
        "lead_days": 7, "program": program, "reminded": 30, "held_out": 8, "pending": 2,
        "reminded_at_stake": Decimal("4000.500"), "held_out_at_stake": Decimal("900"),
        "reminded_saved": Decimal("1800.250"), "held_out_saved": Decimal("180"),
        "reminded_share": 0.45, "held_out_share": 0.2, "uplift": 0.25, "uplift_low": -0.05,
        "uplift_high": 0.55, "points_saved": Decimal("1000.125"), "detectable_uplift": 0.428,
        "days_to_detect": 170,
    }  # fmt: skip
    return Effect(**(defaults | figures))


def _whiskers(svg: str) -> tuple[float, list[tuple[float, float]]]:
    """The zero line's x, and each whisker's (left, right) ends."""
    root = ET.fromstring(svg)
    (zero,) = [line for line in root.iter(f"{SVG}line") if line.get("class") == "zero-line"]
    ends = []
    for whisker in root.iter(f"{SVG}g"):
        if whisker.get("class") == "whisker":
            span = whisker.find(f"{SVG}line")
            assert span is not None
            ends.append((float(span.get("x1", "")), float(span.get("x2", ""))))
    return float(zero.get("x1", "")), ends


def test_csv_cells_add_the_detectable_uplift_and_days_at_the_end() -> None:
    assert CSV_COLUMNS[-2:] == ["detectable_uplift", "days_to_detect_10_points"]
    text = io.StringIO()
    rows = csv.writer(text)
    rows.writerow(CSV_COLUMNS)
    rows.writerow(csv_row(_effect()))
    rows.writerow(csv_row(_effect("2282", held_out=1, uplift_low=None, uplift_high=None,
                                  detectable_uplift=None, days_to_detect=None)))  # fmt: skip
    first, second = csv.DictReader(io.StringIO(text.getvalue()))
    assert first == {
        "lead_days": "7", "program": "all", "reminded": "30", "held_out": "8", "pending": "2",
        "reminded_points_at_stake": "4000.5", "held_out_points_at_stake": "900",
        "reminded_points_saved": "1800.25", "held_out_points_saved": "180",
        "reminded_share_redeemed": "0.450000", "held_out_share_redeemed": "0.200000",
        "uplift": "0.250000", "uplift_ci_low": "-0.050000", "uplift_ci_high": "0.550000",
        "points_saved": "1000.125", "detectable_uplift": "0.428000",
        "days_to_detect_10_points": "170",
    }  # fmt: skip
    assert (second["uplift_ci_low"], second["detectable_uplift"]) == ("", "")
    assert second["days_to_detect_10_points"] == ""


def test_days_in_words() -> None:
    assert [days_text(d) for d in (None, 0, 1, 23)] == [
        "n/a", "now", "in 1 more day", "in 23 more days",
    ]  # fmt: skip


def test_the_summary_per_lead_time_covers_all_programs_only() -> None:
    summary = lead_summary([_effect("2282", lead_days=30), _effect(lead_days=30),
                            _effect(lead_days=1, uplift=None, points_saved=None,
                                    days_to_detect=None)])  # fmt: skip
    assert summary == {
        "30": {"reminded_share": 0.45, "held_out_share": 0.2, "uplift": 0.25,
               "points_saved": "1000.125", "detectable_uplift": 0.428,
               "days_to_detect_10_points": 170},
        "1": {"reminded_share": 0.45, "held_out_share": 0.2, "uplift": None,
              "points_saved": None, "detectable_uplift": 0.428, "days_to_detect_10_points": None},
    }  # fmt: skip


def test_the_chart_draws_one_whisker_per_uplift_with_an_interval_around_a_zero_line() -> None:
    nobody_held_out: dict[str, Any] = dict.fromkeys(
        ("held_out_share", "uplift", "uplift_low", "uplift_high", "detectable_uplift")
    )
    effects = [
        _effect("2282", lead_days=30, uplift=0.1, uplift_low=-0.2, uplift_high=0.4),
        _effect(lead_days=30, uplift=0.3, uplift_low=0.1, uplift_high=0.5),
        _effect("3379", lead_days=7, uplift=-0.15, uplift_low=-0.35, uplift_high=-0.05),
        _effect(lead_days=7, held_out=1, uplift_low=None, uplift_high=None),  # no interval
        _effect(lead_days=1, held_out=0, **nobody_held_out),
    ]
    svg = chart(effects)
    zero, whiskers = _whiskers(svg)
    assert len(whiskers) == 3
    (left, right), (above_left, _), (_, below_right) = whiskers
    assert left < zero < right  # crosses zero: not told apart from no effect yet
    assert above_left > zero  # all above zero
    assert below_right < zero
    # Equal distances from zero draw equally far: -0.2 and +0.4 around 0.1.
    assert abs((zero - left) * 2 - (right - zero)) < 0.2
    dots = [c for c in ET.fromstring(svg).iter(f"{SVG}circle") if c.get("class") == "uplift"]
    assert len(dots) == 4  # every uplift, with an interval or not
    assert "in 170 more days" in svg


def test_the_page_shows_the_chart_and_na_for_figures_that_cannot_be_computed() -> None:
    html = page([_effect(days_to_detect=None)], "2027-01-01")
    assert 'class="zero-line"' in html
    assert "10 pp: n/a" in html
    assert "<td>n/a</td>" in html
    assert "expiry days\nbefore 2027-01-01" in html
    assert "No expiry day with reminders has passed yet." in page([], "2027-01-01")
