"""Expiry windows: given outright, or derived from the run in the organisation's time zone.

A derived window starts `days_ahead` days after the local calendar day of the run's data
interval end and spans `window_days` days, so consecutive daily runs with `window_days=1` cover
consecutive days with no gap and no overlap, whatever the time zone and across DST changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pendulum

from airflow_provider_neo.endpoints import Date, InvalidParameter


def check_window_arguments(
    expiry_start: Any, expiry_end: Any, days_ahead: Any, window_days: Any
) -> None:
    """What can be checked when the operator is built, before templates are rendered."""
    explicit = expiry_start is not None or expiry_end is not None
    if explicit and days_ahead is not None:
        raise ValueError("days_ahead: give either expiry_start/expiry_end or days_ahead, not both")
    if explicit and (expiry_start is None or expiry_end is None):
        missing = "expiry_end" if expiry_end is None else "expiry_start"
        raise ValueError(f"{missing}: an explicit window needs both expiry_start and expiry_end")
    if not explicit and days_ahead is None:
        raise ValueError("days_ahead: give expiry_start/expiry_end, or days_ahead for a window")
    if isinstance(window_days, int) and window_days < 1:
        raise ValueError(f"window_days: expected at least 1, got {window_days}")
    if isinstance(days_ahead, int) and days_ahead < 0:
        raise ValueError(f"days_ahead: expected 0 or more, got {days_ahead}")


def run_anchor(context: Mapping[str, Any]) -> dt.datetime:
    """The moment a run stands for: its data interval end, else its logical date or run_after."""
    for key in ("data_interval_end", "logical_date", "run_after"):
        value = context.get(key)
        if value is not None:
            return value  # type: ignore[no-any-return]
    raise ValueError("days_ahead: the run has no data interval end, logical date or run_after")


def local_day(moment: dt.datetime, timezone: str) -> dt.date:
    """The calendar day of `moment` in `timezone`, as a plain date (not pendulum's subclass)."""
    local = pendulum.instance(moment).in_timezone(timezone)
    return dt.date(local.year, local.month, local.day)


def _whole(name: str, value: Any, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a whole number, got {value!r}") from None
    if number < minimum or isinstance(value, bool):
        raise ValueError(f"{name}: expected a whole number >= {minimum}, got {value!r}")
    return number


def resolve_window(
    *,
    expiry_start: Any,
    expiry_end: Any,
    days_ahead: Any,
    window_days: Any,
    context: Mapping[str, Any],
    timezone: str,
) -> tuple[dt.date, dt.date]:
    """The (first, last) expiry day of this run, both inclusive."""
    if expiry_start is not None or expiry_end is not None:
        date = Date()
        try:
            start = date.coerce(expiry_start)
        except ValueError as exc:
            raise InvalidParameter("expiry_start", str(exc)) from None
        try:
            end = date.coerce(expiry_end)
        except ValueError as exc:
            raise InvalidParameter("expiry_end", str(exc)) from None
        if start > end:
            raise InvalidParameter("expiry_start", f"{start} is after expiry_end {end}")
        return start, end
    ahead = _whole("days_ahead", days_ahead, 0)
    days = _whole("window_days", 1 if window_days is None else window_days, 1)
    start = local_day(run_anchor(context), timezone) + dt.timedelta(days=ahead)
    return start, start + dt.timedelta(days=days - 1)
