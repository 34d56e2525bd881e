"""The ground truth the tests compare against: the simulator's own tables, read with SQL, never
through the API under test. One query, shared by the hook, operator and DAG tests."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path

import msgspec
import pendulum

PROGRAM = 2282
CATEGORY = 17383
EVER = (dt.date(2000, 1, 1), dt.date(2099, 12, 31))


class Allocation(msgspec.Struct, frozen=True):
    id: int
    customer_id: int
    status: str
    remaining_milli: int  # points_exclusive - redeemed - expired - returned, not clamped

    @property
    def remaining_points(self) -> Decimal:
        """Neo's arithmetic: AVAILABLE rows only, clamped at 0."""
        if self.status != "AVAILABLE":
            return Decimal(0)
        return Decimal(max(self.remaining_milli, 0)) / 1000


def day_bounds_ms(start: dt.date, end: dt.date, timezone: str) -> tuple[int, int]:
    """Epoch milliseconds from the start of `start` to the end of `end`, in `timezone`."""
    tz = pendulum.timezone(timezone)
    stop = end + dt.timedelta(days=1)
    low = pendulum.datetime(start.year, start.month, start.day, tz=tz)
    high = pendulum.datetime(stop.year, stop.month, stop.day, tz=tz)
    return int(low.timestamp() * 1000), int(high.timestamp() * 1000) - 1


def allocations(
    db_path: Path,
    *,
    customers: Collection[int],
    expiring: tuple[dt.date, dt.date] = EVER,
    timezone: str = "UTC",
    program: int = PROGRAM,
    category: int = CATEGORY,
    status: str | None = None,
) -> dict[int, Allocation]:
    """id -> allocation of `customers` in one program and category, expiring in the window."""
    low, high = day_bounds_ms(*expiring, timezone)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT id, customer_id, status, points_exclusive_milli"
            " - redeemed_exclusive_value_milli - expired_exclusive_value_milli"
            " - returned_exclusive_value_milli FROM allocations"
            " WHERE program_id = ? AND point_category_id = ? AND expiry_date BETWEEN ? AND ?",
            (program, category, low, high),
        ).fetchall()
    return {
        id_: Allocation(id_, customer, row_status, left)
        for id_, customer, row_status, left in rows
        if customer in customers and (status is None or row_status == status)
    }


def available_points_by_customer(
    db_path: Path,
    *,
    customers: Collection[int],
    day: dt.date,
    timezone: str,
    programs: Collection[tuple[int, int]],
) -> Counter[int]:
    """customer -> AVAILABLE points (in thousandths) expiring on `day`, over the programs."""
    totals: Counter[int] = Counter()
    for program, category in programs:
        found = allocations(
            db_path, customers=customers, expiring=(day, day), timezone=timezone,
            program=program, category=category, status="AVAILABLE",
        )  # fmt: skip
        for allocation in found.values():
            totals[allocation.customer_id] += max(allocation.remaining_milli, 0)
    return totals
