"""Deterministic loyalty data: the same (customers, seed, as-of day) always builds the same rows.

Each customer registers, is enrolled in one or two programs, and makes purchases over the two years
before the as-of day. Every purchase is an event whose allocation (and sometimes line-item
allocations) expires at 23:59:59 in the organisation's time zone a program-specific number of days
later. An allocation's status follows from its expiry: before the as-of day it expired, was
redeemed, consumed (part redeemed, part expired) or returned; from the as-of day on it is mostly
AVAILABLE, some of it partly redeemed or returned, so the remaining-points arithmetic has real work.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from airflow_provider_neo.event_types import EVENT_TYPES
from neo_simulator.store import AllocationRow, NeoStore, OrgCalendar


@dataclass(frozen=True)
class Program:
    program_id: int
    point_category_ids: tuple[int, ...]
    validity_days: int  # points expire this many days after the purchase
    expiry_strategy_id: int
    allocation_strategy_id: int


PROGRAMS: Final = (
    Program(2282, (17383,), 365, 105462, 105594),
    Program(3379, (40022, 40023), 180, 105602, 105773),
)
FIRST_NAMES: Final = (
    "Aarav", "Ananya", "Arjun", "Diya", "Ishaan", "Kavya", "Meera", "Nikhil", "Priya", "Rohan",
    "Saanvi", "Tara", "Vihaan", "Zara", "Amelia", "Liam", "Noah", "Olivia", "Mateo", "Sofia",
)  # fmt: skip

FIRST_CUSTOMER_ID: Final = 400_000_001
FIRST_ALLOCATION_ID: Final = 60_000_001
FIRST_EVENT_LOG_ID: Final = 70_000_001
FIRST_CPS_ID: Final = 80_000_001
FIRST_SOURCE_ID: Final = 2_200_000_001
TILL_IDS: Final = tuple(50_140_377 + 11 * n for n in range(25))
HISTORY_DAYS: Final = 730
BATCH_CUSTOMERS: Final = 5_000

TRANSACTION_ADD: Final = EVENT_TYPES["TransactionAdd"]
CUSTOMER_REGISTRATION: Final = EVENT_TYPES["CustomerRegistration"]


@dataclass(frozen=True)
class GeneratorSettings:
    customers: int
    seed: int
    as_of: dt.date
    org_id: int


@dataclass
class _Batch:
    customers: list[tuple[int, str, str]]
    enrolments: list[tuple[int, int, int, int]]
    events: list[tuple[int, str, int, int]]
    allocations: list[AllocationRow]


class _Generator:
    def __init__(self, settings: GeneratorSettings, calendar: OrgCalendar) -> None:
        self.settings = settings
        self.calendar = calendar
        self.rng = random.Random(settings.seed)
        self.next_allocation_id = FIRST_ALLOCATION_ID
        self.next_event_log_id = FIRST_EVENT_LOG_ID
        self.next_cps_id = FIRST_CPS_ID
        self.next_source_id = FIRST_SOURCE_ID
        self.as_of_ms = calendar.day_start_ms(settings.as_of)
        # Cache the expiry instant of each day: the expensive part is the time-zone conversion.
        self._end_of_day: dict[dt.date, int] = {}

    def batches(self) -> Iterator[_Batch]:
        total = self.settings.customers
        for first in range(0, total, BATCH_CUSTOMERS):
            batch = _Batch([], [], [], [])
            for index in range(first, min(first + BATCH_CUSTOMERS, total)):
                self._customer(FIRST_CUSTOMER_ID + index, batch)
            yield batch

    def _end_of_day_ms(self, day: dt.date) -> int:
        if day not in self._end_of_day:
            self._end_of_day[day] = self.calendar.end_of_day_ms(day)
        return self._end_of_day[day]

    def _customer(self, customer_id: int, batch: _Batch) -> None:
        rng = self.rng
        name = rng.choice(FIRST_NAMES)
        batch.customers.append((customer_id, name, f"{name.lower()}.{customer_id}@example.com"))
        programs = [PROGRAMS[0]] if rng.random() < 0.6 else list(PROGRAMS)
        registered = self.settings.as_of - dt.timedelta(days=rng.randrange(1, HISTORY_DAYS))
        for program in programs:
            cps_id = self.next_cps_id
            self.next_cps_id += 1
            for category in program.point_category_ids:
                batch.enrolments.append((customer_id, program.program_id, category, cps_id))
            self._event(
                customer_id, program, cps_id, batch, day=registered,
                event_type_id=CUSTOMER_REGISTRATION, entity_id=f"REG-{customer_id}",
                points=[100_000], source_table="points_awarded",
            )  # fmt: skip
            for _ in range(rng.randrange(0, 7)):
                day = registered + dt.timedelta(days=rng.randrange(0, HISTORY_DAYS))
                if day >= self.settings.as_of:
                    continue
                points = [rng.randrange(1, 200) * 5_000]
                line_items = rng.randrange(0, 4) if rng.random() < 0.3 else 0
                # Line-item points are often fractional: warehouse values are decimal(15,3).
                points += [rng.choice((10_000, 12_000, 12_500, 7_250)) for _ in range(line_items)]
                self._event(
                    customer_id, program, cps_id, batch, day=day,
                    event_type_id=TRANSACTION_ADD, entity_id=self._entity_id(),
                    points=points, source_table="points_awarded",
                )  # fmt: skip

    def _entity_id(self) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits, k=10))

    def _event(
        self,
        customer_id: int,
        program: Program,
        cps_id: int,
        batch: _Batch,
        *,
        day: dt.date,
        event_type_id: int,
        entity_id: str,
        points: list[int],
        source_table: str,
    ) -> None:
        rng = self.rng
        event_log_id = self.next_event_log_id
        self.next_event_log_id += 1
        batch.events.append((event_log_id, entity_id, customer_id, event_type_id))
        awarded_ms = self.calendar.day_start_ms(day) + rng.randrange(9 * 3_600_000, 21 * 3_600_000)
        expiry_day = day + dt.timedelta(days=program.validity_days)
        expiry_ms = self._end_of_day_ms(expiry_day)
        till_id = rng.choice(TILL_IDS)
        category = rng.choice(program.point_category_ids)
        for index, points_milli in enumerate(points):
            status, redeemed, expired, returned = self._lifecycle(points_milli, expiry_day)
            touched = expired or redeemed or returned
            updated_ms = min(expiry_ms, self.as_of_ms) if touched else awarded_ms + 1_000
            row: AllocationRow = (
                self.next_allocation_id, customer_id, program.program_id, category,
                self.settings.org_id, status, expiry_ms, awarded_ms, updated_ms, event_log_id,
                event_type_id, source_table if index == 0 else "points_awarded_bill_lineitems",
                till_id, 1 if index == 0 else 2, self.next_source_id, cps_id, customer_id,
                program.expiry_strategy_id, program.allocation_strategy_id,
                points_milli, redeemed, expired, returned, 0, 0, 0, 0, 0,
            )  # fmt: skip
            self.next_allocation_id += 1
            self.next_source_id += 1
            batch.allocations.append(row)

    def _lifecycle(self, points: int, expiry_day: dt.date) -> tuple[str, int, int, int]:
        """(status, redeemed, expired, returned) thousandths for an allocation of `points`."""
        roll = self.rng.random()
        partial = points * self.rng.randrange(1, 10) // 10 // 1_000 * 1_000
        if expiry_day < self.settings.as_of:
            if roll < 0.45:
                return "EXPIRED", 0, points, 0
            if roll < 0.70:
                return "CONSUMED", partial, points - partial, 0
            if roll < 0.90:
                return "REDEEMED", points, 0, 0
            return "RETURNED", 0, 0, points
        if roll < 0.60:
            return "AVAILABLE", 0, 0, 0
        if roll < 0.75:
            return "AVAILABLE", partial, 0, 0
        if roll < 0.80:
            return "AVAILABLE", 0, 0, partial
        if roll < 0.90:
            return "REDEEMED", points, 0, 0
        if roll < 0.94:
            return "RETURNED", 0, 0, points
        if roll < 0.97:
            return "CONSUMED_BY_CONVERSION", points, 0, 0
        return "INACTIVE", 0, 0, 0


def generate(store: NeoStore, settings: GeneratorSettings) -> None:
    """Fill `store` with the data `settings` describes, in batches to bound memory."""
    generator = _Generator(settings, store.calendar)
    for batch in generator.batches():
        store.insert(
            customers=batch.customers,
            enrolments=batch.enrolments,
            events=batch.events,
            allocations=batch.allocations,
        )
