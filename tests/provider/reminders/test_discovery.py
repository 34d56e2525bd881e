"""Discovery against the simulator: the reminders its tables hold, for as few paIds requests as
the task's customers fill, with the (program, expiry day) queries running at once."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal

import pytest

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders.discovery import find_reminders
from airflow_provider_neo.reminders.model import Customer, ProgramCategory, Reminder
from tests.ground_truth import available_points_by_customer
from tests.harness import AS_OF, TIMEZONE, RunningSimulator, start_simulator

CUSTOMERS = 2_000
PROGRAMS = ((2282, 17383), (3379, 40022), (3379, 40023))
LEADS = (30, 7, 1)
DAYS = {lead: [AS_OF + dt.timedelta(days=lead)] for lead in LEADS}
QUERIES = len(PROGRAMS) * len(LEADS)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """2,000 customers answering after 50 ms, so that requests in flight overlap."""
    running = start_simulator(
        tmp_path_factory.mktemp("discovery"), "--latency-ms", "50", customers=CUSTOMERS
    )
    try:
        yield running
    finally:
        running.process.stop()


@pytest.fixture(scope="module")
def customers(sim: RunningSimulator) -> list[Customer]:
    rows = sim.control("GET", "customers")
    return [Customer(row["customer_id"], row["email"], row["first_name"]) for row in rows]


def find(customers: Sequence[Customer], days: Mapping[int, Sequence[dt.date]]) -> list[Reminder]:
    return find_reminders(
        NeoHook(),
        customers,
        programs=[ProgramCategory(program, category) for program, category in PROGRAMS],
        expiry_days=days,
        min_points=Decimal(1),
    )


def expected(
    sim: RunningSimulator, customers: Sequence[Customer], days: Mapping[int, Sequence[dt.date]]
) -> dict[str, Decimal]:
    """reminder key -> points, from the simulator's tables (not through the API)."""
    ids = {customer.customer_id for customer in customers}
    keys = {}
    for lead, lead_days in days.items():
        for day in lead_days:
            totals = available_points_by_customer(
                sim.db_path, customers=ids, day=day, timezone=TIMEZONE, programs=PROGRAMS
            )
            for customer, milli in totals.items():
                if milli >= 1000:
                    keys[f"{customer}:{day.isoformat()}:{lead}"] = Decimal(milli) / 1000
    return keys


def paids_requests(sim: RunningSimulator) -> int:
    return sum(sim.control("GET", "stats")["requests"]["points_awarded"].values())


def test_finds_the_reminders_the_simulators_tables_hold(
    sim: RunningSimulator, customers: list[Customer], neo_conn: Callable[..., str]
) -> None:
    neo_conn(sim)
    reminders = find(customers, DAYS)
    assert {r.key: r.remaining_points for r in reminders} == expected(sim, customers, DAYS)
    assert len(reminders) > 20
    for reminder in reminders:
        assert sum(reminder.programs.values()) == reminder.remaining_points
    # Lead times in order, then days, then customers: the same list on every run.
    order = [(r.lead_days, r.expiry_date, r.customer_id) for r in reminders]
    assert order == sorted(order)


def test_every_query_fills_its_batches_across_the_tasks_customers(
    sim: RunningSimulator, customers: list[Customer], neo_conn: Callable[..., str]
) -> None:
    """The task's 2,000 customers in full batches of 300 cost 7 requests per query; the same
    customers found in four tasks of 500 cost 2 per task and query, 8 per query."""
    neo_conn(sim, max_ids_per_request=300)
    sim.control("POST", "reset")
    whole = find(customers, DAYS)
    assert paids_requests(sim) == QUERIES * math.ceil(CUSTOMERS / 300) == 63

    sim.control("POST", "reset")
    in_shards = [
        r for start in range(0, CUSTOMERS, 500) for r in find(customers[start:][:500], DAYS)
    ]
    assert paids_requests(sim) == QUERIES * 4 * math.ceil(500 / 300) == 72
    assert sorted(r.key for r in whole) == sorted(r.key for r in in_shards)
    assert {r.key: r for r in whole} == {r.key: r for r in in_shards}


def test_the_queries_of_a_task_run_at_once_within_max_concurrency(
    sim: RunningSimulator, customers: list[Customer], neo_conn: Callable[..., str]
) -> None:
    """Nine queries of one batch each: before, one after another (never two in flight)."""
    neo_conn(sim, max_concurrency=4)
    sim.control("POST", "reset")
    reminders = find(customers[:500], DAYS)
    stats = sim.control("GET", "stats")
    assert stats["requests"] == {"points_awarded": {"200": QUERIES}}
    assert 1 < stats["max_in_flight"] <= 4
    assert {r.key: r.remaining_points for r in reminders} == expected(sim, customers[:500], DAYS)


def test_a_day_two_lead_times_share_is_asked_once_and_reminded_for_each(
    sim: RunningSimulator, customers: list[Customer], neo_conn: Callable[..., str]
) -> None:
    neo_conn(sim)
    sim.control("POST", "reset")
    day = AS_OF + dt.timedelta(days=7)
    days = {7: [day], 8: [day]}
    reminders = find(customers, days)
    # About 780 nine-digit ids fill the default 8,000-character URL.
    assert paids_requests(sim) == len(PROGRAMS) * math.ceil(CUSTOMERS / 780)
    assert {r.key: r.remaining_points for r in reminders} == expected(sim, customers, days)
    assert {r.lead_days for r in reminders} == {7, 8}


def test_a_wrong_program_is_refused_before_any_request(
    sim: RunningSimulator, customers: list[Customer], neo_conn: Callable[..., str]
) -> None:
    neo_conn(sim)
    sim.control("POST", "reset")
    with pytest.raises(ValueError, match="program_id"):
        find_reminders(
            NeoHook(),
            customers,
            programs=[ProgramCategory(2282, 17383), ProgramCategory(0, 40022)],
            expiry_days=DAYS,
            min_points=Decimal(1),
        )
    assert sim.control("GET", "stats")["total"] == 0
