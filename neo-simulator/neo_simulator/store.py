"""The simulator's data: customers, their programs, events and points allocations in SQLite.

Points are stored as integer thousandths (`*_milli` columns) so that sums in SQL stay exact; they
leave the store as `Decimal`. Expiry and award times are epoch milliseconds, as Neo sends them.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from airflow_provider_neo.records import (
    ExpiredPoints,
    PointsAllocation,
    PointsAwardedSummary,
    Status,
    format_expiry_moment,
)

SCHEMA: Final = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    email TEXT NOT NULL
);
CREATE TABLE enrolments (
    customer_id INTEGER NOT NULL,
    program_id INTEGER NOT NULL,
    point_category_id INTEGER NOT NULL,
    cps_id INTEGER NOT NULL,
    PRIMARY KEY (customer_id, program_id, point_category_id)
);
CREATE TABLE events (
    event_log_id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    event_type_id INTEGER NOT NULL
);
CREATE INDEX events_by_entity ON events (entity_id, customer_id, event_type_id);
CREATE TABLE allocations (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    program_id INTEGER NOT NULL,
    point_category_id INTEGER NOT NULL,
    org_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    expiry_date INTEGER NOT NULL,
    awarded_date INTEGER NOT NULL,
    auto_update_time INTEGER NOT NULL,
    event_log_id INTEGER NOT NULL,
    event_type_id INTEGER NOT NULL,
    source_table TEXT NOT NULL,
    till_id INTEGER NOT NULL,
    points_source_type_id INTEGER NOT NULL,
    points_source_id INTEGER NOT NULL,
    cps_id INTEGER NOT NULL,
    original_customer_id INTEGER NOT NULL,
    expiry_strategy_id INTEGER NOT NULL,
    allocation_strategy_id INTEGER NOT NULL,
    points_exclusive_milli INTEGER NOT NULL,
    redeemed_exclusive_value_milli INTEGER NOT NULL,
    expired_exclusive_value_milli INTEGER NOT NULL,
    returned_exclusive_value_milli INTEGER NOT NULL,
    original_points_milli INTEGER NOT NULL,
    points_value_milli INTEGER NOT NULL,
    redeemed_value_milli INTEGER NOT NULL,
    expired_value_milli INTEGER NOT NULL,
    returned_value_milli INTEGER NOT NULL
);
CREATE INDEX allocations_by_customer
    ON allocations (customer_id, program_id, point_category_id, expiry_date);
CREATE INDEX allocations_by_event ON allocations (event_log_id);
"""

# Column order of an allocations row as inserted; `AllocationRow` mirrors it.
ALLOCATION_COLUMNS: Final = (
    "id",
    "customer_id",
    "program_id",
    "point_category_id",
    "org_id",
    "status",
    "expiry_date",
    "awarded_date",
    "auto_update_time",
    "event_log_id",
    "event_type_id",
    "source_table",
    "till_id",
    "points_source_type_id",
    "points_source_id",
    "cps_id",
    "original_customer_id",
    "expiry_strategy_id",
    "allocation_strategy_id",
    "points_exclusive_milli",
    "redeemed_exclusive_value_milli",
    "expired_exclusive_value_milli",
    "returned_exclusive_value_milli",
    "original_points_milli",
    "points_value_milli",
    "redeemed_value_milli",
    "expired_value_milli",
    "returned_value_milli",
)
AllocationRow = tuple[
    int, int, int, int, int, str, int, int, int, int, int, str, int, int, int, int, int, int, int,
    int, int, int, int, int, int, int, int, int,
]  # fmt: skip

_SELECT_ALLOCATIONS: Final = "SELECT " + ", ".join(f"a.{c}" for c in ALLOCATION_COLUMNS)


def milli_to_decimal(milli: int) -> Decimal:
    """Thousandths as an exact Decimal: 600000 -> 600, 12500 -> 12.5."""
    whole, fraction = divmod(milli, 1000)
    if fraction == 0:
        return Decimal(whole)
    return (Decimal(milli) / 1000).normalize()


def decimal_to_milli(value: Decimal | int | str) -> int:
    milli = Decimal(value) * 1000
    if milli != milli.to_integral_value():
        raise ValueError(f"points must have at most three decimals, got {value}")
    return int(milli)


def _allocation(row: Sequence[Any]) -> PointsAllocation:
    fields: dict[str, Any] = {
        column.removesuffix("_milli"): milli_to_decimal(value)
        if column.endswith("_milli")
        else value
        for column, value in zip(ALLOCATION_COLUMNS, row, strict=True)
        if column != "source_table"
    }
    return PointsAllocation(**fields)


class NewAllocation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An allocation added while the simulator runs (`POST /__sim/allocations`)."""

    customer_id: int
    program_id: int
    point_category_id: int
    points: Decimal
    expiry_date: dt.date  # expires at 23:59:59 of this day in the org's time zone
    status: Status = "AVAILABLE"
    redeemed: Decimal = Decimal(0)
    expired: Decimal = Decimal(0)
    returned: Decimal = Decimal(0)
    entity_id: str | None = None  # the event's identifier; allocations sharing it share the event
    event_type_id: int = 15
    source_table: str = "points_awarded"


class Settlement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Time passing (`POST /__sim/settle`): what happens to points still AVAILABLE on their
    expiry day. Each allocation draws once from `seed` and its id, so a settlement is
    reproducible and settling the same day twice changes nothing more."""

    through: dt.date  # allocations expiring on or before this day (org time zone) settle
    redeem_share: float = 0.2  # chance that a customer redeems the points before they expire
    reminded_redeem_share: float = 0.35  # the same for the customers below
    reminded_customer_ids: list[int] = []
    seed: int = 15


@dataclass(frozen=True)
class OrgCalendar:
    """Turns whole days in the organisation's time zone into epoch-millisecond bounds."""

    timezone: ZoneInfo

    def day_start_ms(self, day: dt.date) -> int:
        start = dt.datetime.combine(day, dt.time.min, tzinfo=self.timezone)
        return int(start.timestamp() * 1000)

    def day_end_ms(self, day: dt.date) -> int:
        """The last millisecond of `day`, so an inclusive window ends where the next day begins."""
        return self.day_start_ms(day + dt.timedelta(days=1)) - 1

    def end_of_day_ms(self, day: dt.date) -> int:
        """23:59:59.000 local, the moment Neo sets as an allocation's expiry."""
        moment = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=self.timezone)
        return int(moment.timestamp() * 1000)

    def local(self, epoch_ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=self.timezone)


class NeoStore:
    """One SQLite connection; the simulator serves from a single event-loop thread."""

    def __init__(self, path: str, calendar: OrgCalendar) -> None:
        self.path = path
        self.calendar = calendar
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = OFF")

    def create_schema(self) -> None:
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- writing ---------------------------------------------------------------------------

    def insert(
        self,
        *,
        customers: Iterable[tuple[int, str, str]] = (),
        enrolments: Iterable[tuple[int, int, int, int]] = (),
        events: Iterable[tuple[int, str, int, int]] = (),
        allocations: Iterable[AllocationRow] = (),
    ) -> None:
        """Insert rows in one transaction; a failure leaves nothing half-written."""
        placeholders = ", ".join("?" * len(ALLOCATION_COLUMNS))
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO customers VALUES (?, ?, ?)", customers)
            self.db.executemany("INSERT OR IGNORE INTO enrolments VALUES (?, ?, ?, ?)", enrolments)
            self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", events)
            self.db.executemany(f"INSERT INTO allocations VALUES ({placeholders})", allocations)

    def next_id(self, table: str, column: str) -> int:
        (current,) = self.db.execute(f"SELECT MAX({column}) FROM {table}").fetchone()
        return (current or 0) + 1

    def add_allocations(
        self, new: Sequence[NewAllocation], *, org_id: int, now_ms: int
    ) -> list[PointsAllocation]:
        """Insert allocations (with their customers, enrolments and events) and return them."""
        allocation_id = self.next_id("allocations", "id")
        event_log_id = self.next_id("events", "event_log_id")
        cps_id = self.next_id("enrolments", "cps_id")
        requested = json.dumps(sorted({item.customer_id for item in new}))
        known = {
            row[0]
            for row in self.db.execute(
                "SELECT customer_id FROM customers"
                " WHERE customer_id IN (SELECT value FROM json_each(?))",
                (requested,),
            )
        }
        customers, enrolments, events, allocations = [], [], [], []
        event_ids: dict[tuple[str, int, int], int] = {}
        for item in new:
            if item.customer_id not in known:
                known.add(item.customer_id)
                customers.append(
                    (item.customer_id, "New", f"customer.{item.customer_id}@example.com")
                )
            cps = self.db.execute(
                "SELECT cps_id FROM enrolments WHERE customer_id = ? AND program_id = ?",
                (item.customer_id, item.program_id),
            ).fetchone()
            if cps is None:
                cps, cps_id = (cps_id,), cps_id + 1
            enrolments.append((item.customer_id, item.program_id, item.point_category_id, cps[0]))
            entity_id = item.entity_id or secrets.token_hex(5)
            key = (entity_id, item.customer_id, item.event_type_id)
            if key not in event_ids:
                found = self.db.execute(
                    "SELECT event_log_id FROM events"
                    " WHERE entity_id = ? AND customer_id = ? AND event_type_id = ?",
                    key,
                ).fetchone()
                if found is None:
                    events.append((event_log_id, *key))
                    found, event_log_id = (event_log_id,), event_log_id + 1
                event_ids[key] = found[0]
            row: AllocationRow = (
                allocation_id, item.customer_id, item.program_id, item.point_category_id,
                org_id, item.status, self.calendar.end_of_day_ms(item.expiry_date), now_ms,
                now_ms, event_ids[key], item.event_type_id, item.source_table, 0, 1,
                allocation_id, cps[0], item.customer_id, 0, 0, decimal_to_milli(item.points),
                decimal_to_milli(item.redeemed), decimal_to_milli(item.expired),
                decimal_to_milli(item.returned), 0, 0, 0, 0, 0,
            )  # fmt: skip
            allocations.append(row)
            allocation_id += 1
        self.insert(
            customers=customers, enrolments=enrolments, events=events, allocations=allocations
        )
        return self.allocations_by_ids([row[0] for row in allocations])

    def settle(self, settlement: Settlement, *, now_ms: int) -> dict[str, int]:
        """Redeem or expire every AVAILABLE allocation expiring by `settlement.through`: redeemed
        ones become REDEEMED, the rest expire (EXPIRED, or CONSUMED when partly redeemed before).
        Returns how many of each."""
        reminded = set(settlement.reminded_customer_ids)
        rows = self.db.execute(
            "SELECT id, customer_id, points_exclusive_milli - redeemed_exclusive_value_milli"
            " - expired_exclusive_value_milli - returned_exclusive_value_milli,"
            " redeemed_exclusive_value_milli FROM allocations"
            " WHERE status = 'AVAILABLE' AND expiry_date <= ?",
            (self.calendar.day_end_ms(settlement.through),),
        ).fetchall()
        redeemed, expired = [], []
        for id_, customer_id, remaining, already_redeemed in rows:
            share = (
                settlement.reminded_redeem_share
                if customer_id in reminded
                else settlement.redeem_share
            )
            draw = random.Random(f"{settlement.seed}:{id_}").random()
            left = max(remaining, 0)
            if draw < share:
                redeemed.append(("REDEEMED", left, 0, now_ms, id_))
            else:
                status = "CONSUMED" if already_redeemed > 0 else "EXPIRED"
                expired.append((status, 0, left, now_ms, id_))
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "UPDATE allocations SET status = ?,"
                " redeemed_exclusive_value_milli = redeemed_exclusive_value_milli + ?,"
                " expired_exclusive_value_milli = expired_exclusive_value_milli + ?,"
                " auto_update_time = ? WHERE id = ?",
                redeemed + expired,
            )
        return {"redeemed": len(redeemed), "expired": len(expired)}

    # --- reading, one method per endpoint shape ---------------------------------------------

    def _window_ms(self, start: dt.date, end: dt.date) -> tuple[int, int]:
        return self.calendar.day_start_ms(start), self.calendar.day_end_ms(end)

    def points_awarded(
        self,
        *,
        customer_ids: Sequence[int],
        program_id: int,
        point_category_id: int,
        start: dt.date,
        end: dt.date,
        status: str,
        org_id: int | None,
    ) -> list[PointsAwardedSummary]:
        low, high = self._window_ms(start, end)
        sql = (
            "SELECT redeemed_exclusive_value_milli, returned_exclusive_value_milli, event_log_id,"
            " id, customer_id, source_table, points_exclusive_milli, expired_exclusive_value_milli"
            " FROM allocations WHERE customer_id IN (SELECT value FROM json_each(?))"
            " AND program_id = ? AND point_category_id = ? AND status = ?"
            " AND expiry_date BETWEEN ? AND ?"
        )
        args: list[Any] = [json.dumps(list(customer_ids)), program_id, point_category_id, status]
        args += [low, high]
        if org_id is not None:
            sql += " AND org_id = ?"
            args.append(org_id)
        rows = self.db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            PointsAwardedSummary(
                redeemed_exclusive_value=milli_to_decimal(redeemed),
                returned_exclusive_value=milli_to_decimal(returned),
                event_log_id=event_log_id,
                id=id_,
                customer_id=customer_id,
                source_table=source_table,
                points_exclusive=milli_to_decimal(points),
                expired_exclusive_value=milli_to_decimal(expired),
            )
            for (
                redeemed,
                returned,
                event_log_id,
                id_,
                customer_id,
                source_table,
                points,
                expired,
            ) in rows
        ]

    def expiring_allocations(
        self,
        *,
        customer_id: int,
        program_id: int,
        point_category_id: int,
        start: dt.date,
        end: dt.date,
        offset: int,
        count: int,
    ) -> list[PointsAllocation]:
        low, high = self._window_ms(start, end)
        rows = self.db.execute(
            f"{_SELECT_ALLOCATIONS} FROM allocations a WHERE a.customer_id = ?"
            " AND a.program_id = ? AND a.point_category_id = ? AND a.expiry_date BETWEEN ? AND ?"
            " ORDER BY a.id LIMIT ? OFFSET ?",
            (customer_id, program_id, point_category_id, low, high, count, offset),
        ).fetchall()
        return [_allocation(row) for row in rows]

    def event_allocations(
        self, *, entity_id: str, customer_id: int, event_type_id: int, offset: int, count: int
    ) -> list[PointsAllocation]:
        rows = self.db.execute(
            f"{_SELECT_ALLOCATIONS} FROM allocations a"
            " JOIN events e ON a.event_log_id = e.event_log_id"
            " WHERE e.entity_id = ? AND e.customer_id = ? AND e.event_type_id = ?"
            " AND a.customer_id = e.customer_id ORDER BY a.id LIMIT ? OFFSET ?",
            (entity_id, customer_id, event_type_id, count, offset),
        ).fetchall()
        return [_allocation(row) for row in rows]

    def expired_points(self, *, customer_id: int, year: int) -> list[ExpiredPoints]:
        """Expired points per program and expiry moment, within `year` in the org's time zone."""
        low = self.calendar.day_start_ms(dt.date(year, 1, 1))
        high = self.calendar.day_end_ms(dt.date(year, 12, 31))
        rows = self.db.execute(
            "SELECT program_id, expiry_date, SUM(expired_exclusive_value_milli) FROM allocations"
            " WHERE customer_id = ? AND expired_exclusive_value_milli > 0"
            " AND expiry_date BETWEEN ? AND ?"
            " GROUP BY program_id, expiry_date ORDER BY expiry_date, program_id",
            (customer_id, low, high),
        ).fetchall()
        return [
            ExpiredPoints(
                points_expiry_date=format_expiry_moment(self.calendar.local(expiry_ms)),
                customer_id=customer_id,
                program_id=program_id,
                points=milli_to_decimal(milli),
            )
            for program_id, expiry_ms, milli in rows
        ]

    def allocations_by_ids(self, ids: Sequence[int]) -> list[PointsAllocation]:
        rows = self.db.execute(
            f"{_SELECT_ALLOCATIONS} FROM allocations a"
            " WHERE a.id IN (SELECT value FROM json_each(?)) ORDER BY a.id",
            (json.dumps(list(ids)),),
        ).fetchall()
        return [_allocation(row) for row in rows]

    def customers(self, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """Customers with their programs and point categories, in id order."""
        rows = self.db.execute(
            "SELECT c.customer_id, c.first_name, c.email,"
            " json_group_array(json_array(e.program_id, e.point_category_id))"
            " FROM (SELECT * FROM customers ORDER BY customer_id LIMIT ? OFFSET ?) c"
            " LEFT JOIN enrolments e ON e.customer_id = c.customer_id"
            " GROUP BY c.customer_id ORDER BY c.customer_id",
            (limit, offset),
        ).fetchall()
        result = []
        for customer_id, first_name, email, pairs in rows:
            programs: dict[int, list[int]] = {}
            for program_id, category_id in json.loads(pairs):
                if program_id is not None:
                    programs.setdefault(program_id, []).append(category_id)
            result.append(
                {
                    "customer_id": customer_id,
                    "first_name": first_name,
                    "email": email,
                    "programs": [
                        {"program_id": program_id, "point_category_ids": sorted(categories)}
                        for program_id, categories in sorted(programs.items())
                    ],
                }
            )
        return result

    def counts(self) -> dict[str, int]:
        return {
            table: self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("customers", "enrolments", "events", "allocations")
        }
