"""What Neo says became of the points at stake: per customer, expiry day and program, the points
still AVAILABLE and those expired on settled rows, from Neo's batched paIds endpoint."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders.effectiveness.statistics import (
    SETTLED_STATUSES,
    Settlement,
    SettlementKey,
)
from airflow_provider_neo.reminders.ledger import Stake
from airflow_provider_neo.reminders.model import ProgramCategory


def fetch_settlements(
    hook: NeoHook, stakes: Sequence[Stake], programs: Iterable[ProgramCategory]
) -> dict[SettlementKey, Settlement]:
    """(customer, expiry day, program) -> `Settlement`, summed over the program's categories,
    for every one Neo has any AVAILABLE, REDEEMED, CONSUMED or EXPIRED row of: batched paIds
    calls, one set per expiry day, program category and status."""
    by_day: dict[dt.date, set[int]] = defaultdict(set)
    for stake in stakes:
        by_day[stake.expiry_date].add(stake.customer_id)
    available: dict[SettlementKey, Decimal] = defaultdict(Decimal)
    expired: dict[SettlementKey, Decimal] = defaultdict(Decimal)
    settled_rows: dict[SettlementKey, int] = defaultdict(int)
    programs = list(programs)
    for day, customers in sorted(by_day.items()):
        for program in programs:
            for status in ("AVAILABLE", *SETTLED_STATUSES):
                for row in hook.iter_points_awarded(
                    sorted(customers),
                    program_id=program.program_id,
                    point_category_id=program.point_category_id,
                    expiry_start=day,
                    expiry_end=day,
                    status=status,
                ):
                    key = (row.customer_id, day, str(program.program_id))
                    if status == "AVAILABLE":
                        # The same arithmetic that found the points at stake (discovery).
                        available[key] += row.remaining_points
                    else:
                        expired[key] += row.expired_exclusive_value
                        settled_rows[key] += 1
    return {
        key: Settlement(
            available=available.get(key, Decimal(0)),
            expired=expired.get(key, Decimal(0)),
            settled_rows=settled_rows.get(key, 0),
        )
        for key in available.keys() | settled_rows.keys()
    }
