"""NeoHook's results equal the simulator's ground truth, however they are paged, batched or run."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_neo.client.errors import NeoProtocolError
from airflow_provider_neo.hooks.neo import NeoHook
from tests.ground_truth import allocations, day_bounds_ms
from tests.harness import AS_OF, TIMEZONE, RunningSimulator, start_simulator

FIRST = 400000001
WINDOW: dict[str, Any] = {"expiry_start": AS_OF, "expiry_end": AS_OF + dt.timedelta(days=365)}
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}


@pytest.fixture(scope="module")
def big_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """10,000 customers, for batching and concurrency at scale."""
    sim = start_simulator(tmp_path_factory.mktemp("big"), "--latency-ms", "5", customers=10_000)
    try:
        yield sim
    finally:
        sim.process.stop()


def _window() -> tuple[dt.date, dt.date]:
    return WINDOW["expiry_start"], WINDOW["expiry_end"]


def _truth(sim: RunningSimulator, customers: range, status: str | None = None) -> set[int]:
    return set(
        allocations(
            sim.db_path, customers=customers, expiring=_window(), timezone=TIMEZONE, status=status
        )
    )


def test_points_awarded_for_10000_customers_costs_a_handful_of_requests(
    big_sim: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(big_sim)
    big_sim.control("POST", "reset")
    customers = range(FIRST, FIRST + 10_000)
    hook = NeoHook()
    rows = list(hook.iter_points_awarded(customers, **PROGRAM, **WINDOW))
    assert {row.id for row in rows} == _truth(big_sim, customers, "AVAILABLE")
    assert len(rows) == len({row.id for row in rows})
    stats = big_sim.control("GET", "stats")
    assert stats["requests"] == {"points_awarded": {"200": 13}}
    assert stats["longest_target"] <= 8_000


def test_points_awarded_batches_follow_the_id_and_url_limits(
    big_sim: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(big_sim, max_ids_per_request=250)
    big_sim.control("POST", "reset")
    customers = range(FIRST, FIRST + 10_000)
    rows = list(NeoHook().iter_points_awarded(customers, **PROGRAM, **WINDOW))
    assert {row.id for row in rows} == _truth(big_sim, customers, "AVAILABLE")
    assert big_sim.control("GET", "stats")["requests"] == {"points_awarded": {"200": 40}}
    neo_conn(big_sim, max_url_length=1_000)
    big_sim.control("POST", "reset")
    list(NeoHook().iter_points_awarded(customers, **PROGRAM, **WINDOW))
    assert big_sim.control("GET", "stats")["longest_target"] <= 1_000


def test_expiring_allocations_run_concurrently_up_to_the_limit(
    big_sim: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(big_sim, max_concurrency=6)
    big_sim.control("POST", "reset")
    customers = range(FIRST, FIRST + 300)
    hook = NeoHook()
    rows = list(hook.iter_expiring_allocations(customers, **PROGRAM, **WINDOW))
    assert sorted(row.id for row in rows) == sorted(_truth(big_sim, customers))
    stats = big_sim.control("GET", "stats")
    assert stats["max_in_flight"] == 6
    assert stats["requests"] == {"expiring_allocations": {"200": 300}}
    assert hook.stats.snapshot()["requests"] == 300


def test_each_customers_pages_arrive_in_order(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, page_size=2, max_concurrency=4)
    customers = range(FIRST, FIRST + 60)
    rows = list(NeoHook().iter_expiring_allocations(customers, **PROGRAM, **WINDOW))
    by_customer: dict[int, list[int]] = {}
    for row in rows:
        by_customer.setdefault(row.customer_id, []).append(row.id)
    # Rows of one customer are contiguous, and in the order of its pages (id order).
    order = [customer for customer, _ in itertools.groupby(row.customer_id for row in rows)]
    assert len(order) == len(by_customer)
    assert all(ids == sorted(ids) for ids in by_customer.values())
    assert {row.id for row in rows} == _truth(simulator, customers)


def _customer_with(sim: RunningSimulator, rows: int) -> int:
    low, high = day_bounds_ms(*_window(), TIMEZONE)
    with sim.db() as db:
        found = db.execute(
            "SELECT customer_id FROM allocations WHERE program_id = 2282 AND point_category_id"
            " = 17383 AND expiry_date BETWEEN ? AND ? GROUP BY customer_id HAVING COUNT(*) = ?"
            " LIMIT 1",
            (low, high, rows),
        ).fetchone()
    assert found, f"no customer with exactly {rows} allocations in the window"
    return int(found[0])


def test_exactly_full_last_page_costs_one_empty_request(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    customer = _customer_with(simulator, 4)
    neo_conn(simulator, page_size=2)
    simulator.control("POST", "reset")
    rows = list(NeoHook().iter_expiring_allocations(customer, **PROGRAM, **WINDOW))
    assert len(rows) == 4
    assert simulator.control("GET", "stats")["total"] == 3


def test_short_page_ends_paging(simulator: RunningSimulator, neo_conn: Callable[..., str]) -> None:
    customer = _customer_with(simulator, 3)
    neo_conn(simulator, page_size=2)
    simulator.control("POST", "reset")
    assert len(list(NeoHook().iter_expiring_allocations(customer, **PROGRAM, **WINDOW))) == 3
    assert simulator.control("GET", "stats")["total"] == 2


def test_a_customer_without_rows_costs_one_request(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    simulator.control("POST", "reset")
    assert list(NeoHook().iter_expiring_allocations(999999999, **PROGRAM, **WINDOW)) == []
    assert simulator.control("GET", "stats")["total"] == 1


def test_a_page_repeating_the_previous_one_stops_paging(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--ignore-page", customers=100)
    customer = _customer_with(sim, 3)
    neo_conn(sim, page_size=2)
    with pytest.raises(NeoProtocolError, match="page 2 with the same rows as page 1"):
        list(NeoHook().iter_expiring_allocations(customer, **PROGRAM, **WINDOW))
    assert sim.control("GET", "stats")["total"] == 2


def test_max_pages_guards_against_endless_paging(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    customer = _customer_with(simulator, 4)
    neo_conn(simulator, page_size=1, max_pages=2)
    with pytest.raises(NeoProtocolError, match="past max_pages=2"):
        list(NeoHook().iter_expiring_allocations(customer, **PROGRAM, **WINDOW))


def test_overlapping_pages_are_de_duplicated_by_id(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--page-overlap", "1", customers=100)
    customer = _customer_with(sim, 4)
    neo_conn(sim, page_size=2)
    hook = NeoHook()
    rows = list(hook.iter_expiring_allocations(customer, **PROGRAM, **WINDOW))
    assert sorted(row.id for row in rows) == sorted(_truth(sim, range(customer, customer + 1)))
    # Pages of two over rows 1-4, each repeating one row: [1, 2] [2, 3] [3, 4] [4].
    assert hook.stats.snapshot()["duplicates_dropped"] == 3


def test_customer_ids_from_a_generator_are_drawn_lazily(
    big_sim: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(big_sim, max_concurrency=2, max_ids_per_request=10)
    drawn = 0

    def endless() -> Iterator[int]:
        nonlocal drawn
        for customer in itertools.count(FIRST):
            drawn += 1
            yield customer

    big_sim.control("POST", "reset")
    rows = NeoHook().iter_points_awarded(endless(), **PROGRAM, **WINDOW)
    first = list(itertools.islice(rows, 5))
    rows.close()
    assert len(first) == 5
    # Only a few batches of ten were ever drawn or requested, from an endless stream.
    assert drawn <= 10 * 6
    assert big_sim.control("GET", "stats")["total"] <= 6


def test_event_allocations_accept_the_event_type_by_name_or_id(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    hook = NeoHook()
    by_name = list(
        hook.iter_event_allocations(
            customer_id=374819205, entity_id="hfjWDK0dek", event_type="TransactionAdd"
        )
    )
    by_id = list(
        hook.iter_event_allocations(customer_id="374819205", entity_id="hfjWDK0dek", event_type=15)
    )
    assert by_name == by_id
    assert [row.id for row in by_name] == [31787856]


def test_expired_points_treat_404_as_nothing(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    rows = list(NeoHook().iter_expired_points([11064, 999999999], year=2024))
    assert [(row.customer_id, row.points) for row in rows] == [
        (11064, Decimal(800)),
        (11064, Decimal(100)),
    ]
    assert list(NeoHook().iter_expired_points(11064, year="1999")) == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (AS_OF, AS_OF + dt.timedelta(days=365)),
        (AS_OF.isoformat(), (AS_OF + dt.timedelta(days=365)).isoformat()),
        (
            dt.datetime.combine(AS_OF, dt.time(9)),
            dt.datetime.combine(AS_OF + dt.timedelta(days=365), dt.time()),
        ),
    ],
    ids=["date", "str", "datetime"],
)
def test_dates_may_be_dates_datetimes_or_strings(
    simulator: RunningSimulator, neo_conn: Callable[..., str], start: Any, end: Any
) -> None:
    neo_conn(simulator)
    customers = range(FIRST, FIRST + 20)
    rows = NeoHook().iter_expiring_allocations(
        customers, **PROGRAM, expiry_start=start, expiry_end=end
    )
    assert {row.id for row in rows} == _truth(simulator, customers)


def test_endpoint_path_override_reaches_the_das_endpoint(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(
        simulator, endpoint_paths={"expiring_allocations": "/das/getPAIdsForProvidedDateRange"}
    )
    simulator.control("POST", "reset")
    customers = range(FIRST, FIRST + 10)
    rows = NeoHook().iter_expiring_allocations(customers, **PROGRAM, **WINDOW)
    assert {row.id for row in rows} == _truth(simulator, customers)
    assert set(simulator.control("GET", "stats")["requests"]) == {"das_expiring_allocations"}


def test_oauth_token_is_fetched_once_and_shared_by_all_threads(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, auth="oauth", max_concurrency=8)
    simulator.control("POST", "reset")
    customers = range(FIRST, FIRST + 100)
    hook = NeoHook()
    rows = hook.iter_expiring_allocations(customers, **PROGRAM, **WINDOW)
    assert {row.id for row in rows} == _truth(simulator, customers)
    assert simulator.control("GET", "stats")["requests"]["oauth_token"] == {"200": 1}
    assert hook.stats.snapshot()["tokens_fetched"] == 1


def test_a_range_of_customers_is_checked_by_its_ends_and_never_listed() -> None:
    from airflow_provider_neo.client.batching import customer_id_stream

    huge = range(FIRST, FIRST + 10**12)  # a list of these would not fit in memory
    ids = customer_id_stream(huge)
    assert list(itertools.islice(ids, 3)) == [FIRST, FIRST + 1, FIRST + 2]
    with pytest.raises(ValueError, match=r"^customer_ids: expected a positive integer, got -1"):
        customer_id_stream(range(-1, 10**12))
    with pytest.raises(ValueError, match=r"^customer_ids: expected a positive integer, got 0"):
        customer_id_stream(range(10**12, -1, -1))
