"""Expiry windows: given outright, or derived from the run in the organisation's time zone.

A derived window starts `days_ahead` days after the local calendar day of the run's data
interval end and spans `window_days` days, so consecutive daily runs with `window_days=1` cover
consecutive days with no gap and no overlap, whatever the time zone and across DST changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import pendulum

from airflow_provider_neo.endpoints import Date, InvalidParameter
from airflow_provider_neo.utils.arguments import Delegated
from airflow_provider_neo.validation import number


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


class ExpiryWindow:
    """The expiry window arguments of an operator, sensor or trigger: checked once when built,
    rendered by Airflow in place (`template_fields`), and resolved per run.

    :param expiry_start: first expiry day; with ``expiry_end``, an explicit window.
    :param expiry_end: last expiry day, inclusive.
    :param days_ahead: instead, the window starts this many days after the run's data interval
        end, as a day in the organisation's time zone.
    :param window_days: the derived window's length in days (default 1).
    """

    template_fields: ClassVar[tuple[str, ...]] = (
        "expiry_start", "expiry_end", "days_ahead", "window_days",
    )  # fmt: skip

    def __init__(
        self,
        expiry_start: Any = None,
        expiry_end: Any = None,
        days_ahead: Any = None,
        window_days: Any = None,
    ) -> None:
        # What can be checked before templates are rendered: which arguments were given.
        explicit = expiry_start is not None or expiry_end is not None
        if explicit and days_ahead is not None:
            raise ValueError(
                "days_ahead: give either expiry_start/expiry_end or days_ahead, not both"
            )
        if explicit and (expiry_start is None or expiry_end is None):
            missing = "expiry_end" if expiry_end is None else "expiry_start"
            raise ValueError(
                f"{missing}: an explicit window needs both expiry_start and expiry_end"
            )
        if not explicit and days_ahead is None:
            raise ValueError("days_ahead: give expiry_start/expiry_end, or days_ahead for a window")
        if isinstance(window_days, int) and window_days < 1:
            raise ValueError(f"window_days: expected at least 1, got {window_days}")
        if isinstance(days_ahead, int) and days_ahead < 0:
            raise ValueError(f"days_ahead: expected 0 or more, got {days_ahead}")
        self.expiry_start = expiry_start
        self.expiry_end = expiry_end
        self.days_ahead = days_ahead
        self.window_days = window_days

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.template_fields)
        return f"ExpiryWindow({fields})"

    def resolve(self, context: Mapping[str, Any], timezone: str) -> tuple[dt.date, dt.date]:
        """The (first, last) expiry day of this run, both inclusive."""
        if self.expiry_start is not None or self.expiry_end is not None:
            date = Date()
            try:
                start = date.coerce(self.expiry_start)
            except ValueError as exc:
                raise InvalidParameter("expiry_start", str(exc)) from None
            try:
                end = date.coerce(self.expiry_end)
            except ValueError as exc:
                raise InvalidParameter("expiry_end", str(exc)) from None
            if start > end:
                raise InvalidParameter("expiry_start", f"{start} is after expiry_end {end}")
            return start, end
        ahead = number("days_ahead", self.days_ahead, minimum=0, integer=True)
        days = number(
            "window_days",
            1 if self.window_days is None else self.window_days,
            minimum=1,
            integer=True,
        )
        start = local_day(run_anchor(context), timezone) + dt.timedelta(days=ahead)
        return start, start + dt.timedelta(days=days - 1)


class HasExpiryWindow:
    """For operators and sensors: their `expiry_start`, `expiry_end`, `days_ahead` and
    `window_days` attributes (and template fields) are those of their `expiry_window`."""

    expiry_window: ExpiryWindow
    expiry_start = Delegated("expiry_window")
    expiry_end = Delegated("expiry_window")
    days_ahead = Delegated("expiry_window")
    window_days = Delegated("expiry_window")
