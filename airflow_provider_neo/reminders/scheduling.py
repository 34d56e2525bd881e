"""Which expiry days a run reminds: the day each lead time points at, and the days an earlier
failed or skipped run left out (catch-up), read from the sent-ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from airflow_provider_neo.reminders.ledger import SentLedger

ExpiryDays = dict[int, list[dt.date]]  # lead time -> expiry days to remind


def expiry_days_to_remind(
    ledger: SentLedger,
    *,
    anchor_day: dt.date,
    lead_days: Iterable[int],
    catch_up_days: int,
) -> dict[int, list[dt.date]]:
    """Per lead time, the expiry days a run reminds: the day `anchor_day` + lead, and, when
    earlier runs failed or were skipped, the days between the last day reminded completely and
    that one (at most `catch_up_days` back). A caught-up day never reaches back to a day that a
    shorter lead time reminds in the same run, nor to a day already past."""
    leads = sorted(set(lead_days))
    plan: dict[int, list[dt.date]] = {}
    for position, lead in enumerate(leads):
        target = anchor_day + dt.timedelta(days=lead)
        days = {target}
        last = ledger.last_day_reminded(lead, before=target)
        if last is not None and catch_up_days > 0:
            shorter = (
                anchor_day + dt.timedelta(days=leads[position - 1] + 1) if position else anchor_day
            )
            first = max(
                last + dt.timedelta(days=1), target - dt.timedelta(days=catch_up_days), shorter
            )
            if first < target:
                span = range((target - first).days)
                missed = {first + dt.timedelta(days=offset) for offset in span}
                days |= missed - ledger.days_reminded(lead, first, target)
        plan[lead] = sorted(days)
    return plan


def days_to_json(days: Mapping[int, Sequence[dt.date]]) -> dict[str, list[str]]:
    """Expiry days as XCom carries them: lead times as text keys, days as ISO dates."""
    return {str(lead): [day.isoformat() for day in dates] for lead, dates in days.items()}


def days_from_json(days: Mapping[str, Sequence[str]]) -> ExpiryDays:
    return {
        int(lead): [dt.date.fromisoformat(day) for day in dates] for lead, dates in days.items()
    }


def run_day(days: Mapping[int, Sequence[dt.date]]) -> dt.date:
    """The day a run reminds from, given its plan: each lead time's own day is that day plus the
    lead (catch-up only adds earlier days)."""
    return min(max(dates) - dt.timedelta(days=lead) for lead, dates in days.items())
