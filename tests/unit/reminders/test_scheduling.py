"""Which expiry days a run reminds: each lead time's day, and the days missed since the last
one reminded completely (catch-up), on a real sent-ledger (SQLite)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow_provider_neo.reminders.ledger import SentLedger
from airflow_provider_neo.reminders.scheduling import (
    days_from_json,
    days_to_json,
    expiry_days_to_remind,
    run_day,
)

DAY = dt.date(2026, 11, 21)


def _days(*offsets: int) -> list[dt.date]:
    return [DAY + dt.timedelta(days=offset) for offset in offsets]


def test_a_first_run_reminds_only_its_own_days(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    plan = expiry_days_to_remind(ledger, anchor_day=DAY, lead_days=[30, 7, 1], catch_up_days=3)
    assert plan == {1: _days(1), 7: _days(7), 30: _days(30)}


def test_days_missed_since_the_last_reminded_day_are_caught_up_within_the_bound(
    tmp_path: Path,
) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    # Runs reminded up to the day before yesterday; yesterday's run failed.
    ledger.mark_days_reminded([(30, d) for d in _days(27, 28)], run_id="earlier")
    ledger.mark_days_reminded([(7, d) for d in _days(-10)], run_id="long ago")
    ledger.mark_days_reminded([(1, d) for d in _days(-1)], run_id="earlier")
    plan = expiry_days_to_remind(ledger, anchor_day=DAY, lead_days=[30, 7, 1], catch_up_days=3)
    assert plan[30] == _days(29, 30)  # yesterday's day caught up
    assert plan[7] == _days(4, 5, 6, 7)  # at most 3 days back
    assert plan[1] == _days(0, 1)  # today's expiries still get their reminder
    # A caught-up day never reaches a day a shorter lead time reminds in the same run.
    ledger.mark_days_reminded([(7, d) for d in _days(-5)], run_id="x")
    plan = expiry_days_to_remind(ledger, anchor_day=DAY, lead_days=[7, 1], catch_up_days=10)
    assert plan[7] == _days(2, 3, 4, 5, 6, 7)
    # Days already reminded in between are not reminded again; catch_up_days=0 turns it off.
    ledger.mark_days_reminded([(30, d) for d in _days(30)], run_id="this")
    plan = expiry_days_to_remind(ledger, anchor_day=DAY, lead_days=[30], catch_up_days=0)
    assert plan == {30: _days(30)}


def test_days_travel_through_xcom_as_text_and_come_back_equal() -> None:
    plan = {30: _days(29, 30), 1: _days(1)}
    assert days_to_json(plan) == {"30": ["2026-12-20", "2026-12-21"], "1": ["2026-11-22"]}
    assert days_from_json(days_to_json(plan)) == plan


def test_a_runs_own_day_is_found_from_its_plan_caught_up_days_included(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    ledger.mark_days_reminded([(30, d) for d in _days(26)] + [(1, d) for d in _days(-2)], "r")
    plan = expiry_days_to_remind(ledger, anchor_day=DAY, lead_days=[30, 7, 1], catch_up_days=3)
    assert len(plan[30]) == 4  # days caught up, earlier than the lead time's own
    assert run_day(plan) == DAY
    assert run_day(days_from_json(days_to_json(plan))) == DAY
