"""NeoAsyncHook, for triggers: the same answers and the same resilience as NeoHook, over httpx."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_neo.client.errors import NeoAuthError, NeoServerError
from airflow_provider_neo.hooks.neo import NeoAsyncHook, NeoHook
from tests.harness import AS_OF, RunningSimulator

FIRST = 400000001
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
WINDOW: dict[str, Any] = {"expiry_start": AS_OF, "expiry_end": AS_OF + dt.timedelta(days=365)}


@pytest.mark.parametrize("auth", ["basic", "oauth"])
def test_async_answers_equal_the_sync_hooks(
    simulator: RunningSimulator, neo_conn: Callable[..., str], auth: str
) -> None:
    neo_conn(simulator, auth=auth, page_size=2)
    customers = list(range(FIRST, FIRST + 25))
    sync = NeoHook()

    async def fetch() -> tuple[list[Any], list[Any], list[Any]]:
        async with NeoAsyncHook() as hook:
            expiring = [
                row
                for customer in customers
                for row in await hook.aget_expiring_allocations(customer, **PROGRAM, **WINDOW)
            ]
            awarded = await hook.aget_points_awarded(customers, **PROGRAM, **WINDOW)
            event = await hook.aget_event_allocations(
                customer_id=374819205, entity_id="hfjWDK0dek", event_type="TransactionAdd"
            )
        return expiring, awarded, event

    expiring, awarded, event = asyncio.run(fetch())
    # The sync hook yields customers as they complete; compare the rows themselves.
    by_id = {row.id: row for row in sync.iter_expiring_allocations(customers, **PROGRAM, **WINDOW)}
    assert sorted(expiring, key=lambda row: row.id) == [by_id[id_] for id_ in sorted(by_id)]
    assert sorted(r.id for r in awarded) == sorted(
        r.id for r in sync.iter_points_awarded(customers, **PROGRAM, **WINDOW)
    )
    assert [row.id for row in event] == [31787856]


def test_async_hook_retries_server_errors(start_sim: Any, neo_conn: Callable[..., str]) -> None:
    sim = start_sim("--error-rate", "0.4", "--reset-rate", "0.1", "--fault-seed", "4", customers=50)
    neo_conn(sim, max_retries=12, page_size=2)

    async def fetch() -> tuple[list[int], int]:
        async with NeoAsyncHook() as hook:
            rows = []
            for customer in range(FIRST, FIRST + 20):
                rows += await hook.aget_expiring_allocations(customer, **PROGRAM, **WINDOW)
            return sorted(r.id for r in rows), hook.stats.snapshot()["retries"]

    ids, retries = asyncio.run(fetch())
    neo_conn(sim, max_retries=12, page_size=2)
    sim.control("PUT", "faults", json={"error_rate": 0, "reset_rate": 0})
    expected = sorted(
        r.id
        for r in NeoHook().iter_expiring_allocations(range(FIRST, FIRST + 20), **PROGRAM, **WINDOW)
    )
    assert ids == expected
    assert retries > 0


def test_async_hook_fails_clearly(start_sim: Any, neo_conn: Callable[..., str]) -> None:
    sim = start_sim("--error-rate", "1")
    neo_conn(sim, max_retries=1)

    async def fetch() -> None:
        async with NeoAsyncHook() as hook:
            await hook.aget_event_allocations(customer_id=1, entity_id="x", event_type=15)

    with pytest.raises(NeoServerError, match=r"gave up after 2 attempts"):
        asyncio.run(fetch())
    neo_conn(sim, auth="oauth", oauth_client_secret="wrong-secret")
    with pytest.raises(NeoAuthError):
        asyncio.run(fetch())


def test_async_bad_input_fails_before_any_request(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    simulator.control("POST", "reset")

    async def fetch() -> None:
        async with NeoAsyncHook() as hook:
            await hook.aget_event_allocations(customer_id=1, entity_id="x", event_type="Nope")

    with pytest.raises(ValueError, match=r"^event_type: unknown event type name 'Nope'"):
        asyncio.run(fetch())
    assert simulator.control("GET", "stats")["total"] == 0


def test_async_hook_counts_customers_like_the_sync_hook(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    customers = list(range(FIRST, FIRST + 5))
    sync = NeoHook()
    list(sync.iter_points_awarded(customers, **PROGRAM, **WINDOW))
    list(sync.iter_expiring_allocations(customers[0], **PROGRAM, **WINDOW))

    async def fetch() -> int:
        async with NeoAsyncHook() as hook:
            await hook.aget_points_awarded(customers, **PROGRAM, **WINDOW)
            await hook.aget_expiring_allocations(customers[0], **PROGRAM, **WINDOW)
            return int(hook.stats.snapshot()["customers_done"])

    assert asyncio.run(fetch()) == sync.stats.snapshot()["customers_done"] == 6
