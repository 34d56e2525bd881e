"""The rate budget's rules, with an injected clock: even spacing, Retry-After pauses, slowing down
on 429 and recovering, the same in memory and in Redis; the 429 backoff bounded by time; the
`rate_limit_storage` setting; and what happens when Redis cannot be reached."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from airflow_provider_neo.client.backoff import Backoff
from airflow_provider_neo.client.errors import NeoRateBudgetError, NeoRateLimitedError
from airflow_provider_neo.client.exchange import (
    NeoExchange,
    RateLimited,
    Received,
    RequestStats,
    Reserve,
    Sleep,
)
from airflow_provider_neo.client.ratelimit import (
    MIN_RATE_FACTOR,
    RateBudget,
    RateLimiter,
    RedisRateLimiter,
)
from airflow_provider_neo.endpoints import EXPIRED_POINTS
from airflow_provider_neo.hooks.neo import NeoAsyncHook, NeoHook
from deploy.servers import RedisServer, free_port
from tests import scripted
from tests.harness import RunningSimulator

FIRST = 400000001


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Make = Callable[..., RateBudget]


@pytest.fixture(params=["memory", "redis"])
def make_budget(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Make]:
    """`make(per_minute, clock, shared_with=None)`: a budget of either store on a fake clock;
    both stores must follow the same rules. `shared_with` gives another party drawing from the
    same budget: another thread of the hook in memory, another process's limiter in Redis."""
    made: list[RateBudget] = []

    def make(
        per_minute: float | None, clock: FakeClock, shared_with: RateBudget | None = None
    ) -> RateBudget:
        budget: RateBudget
        if request.param == "memory":
            budget = shared_with or RateLimiter(per_minute, clock=clock)
        else:
            key = shared_with.key if isinstance(shared_with, RedisRateLimiter) else None
            key = key or f"test:{uuid.uuid4().hex}"
            budget = RedisRateLimiter(redis_server.url, key, per_minute, clock=clock)
        made.append(budget)
        return budget

    yield make
    for budget in made:
        budget.close()


def test_requests_are_spaced_evenly_with_a_margin(make_budget: Make) -> None:
    clock = FakeClock()
    budget = make_budget(60, clock)
    waits = [budget.reserve() for _ in range(4)]
    # (60 + 1) / 60 s apart: 60 requests fit in 61 s, so no 60 s window ever holds 61.
    assert waits == pytest.approx([0, 61 / 60, 2 * 61 / 60, 3 * 61 / 60], abs=1e-5)
    clock.now += 10  # idle time is not saved up into a burst
    assert budget.reserve() == 0
    assert budget.reserve() == pytest.approx(61 / 60, abs=1e-5)


def test_without_a_budget_nothing_waits_but_retry_after_still_pauses(make_budget: Make) -> None:
    clock = FakeClock()
    budget = make_budget(None, clock)
    assert [budget.reserve() for _ in range(3)] == [0, 0, 0]
    budget.pause(7)
    assert budget.reserve() == pytest.approx(7, abs=1e-5)
    budget.slow_down()  # no rate to lower
    clock.now += 7
    assert budget.reserve() == 0


def test_retry_after_seen_by_one_party_pauses_the_other(make_budget: Make) -> None:
    clock = FakeClock()
    one = make_budget(60, clock)
    other = make_budget(60, clock, shared_with=one)
    one.reserve()
    other.pause(30)
    assert one.reserve() == pytest.approx(30, abs=1e-5)
    assert other.reserve() == pytest.approx(30 + 61 / 60, abs=1e-5)


def test_a_429_halves_the_shared_rate_once_per_burst_then_it_recovers(make_budget: Make) -> None:
    clock = FakeClock()
    budget = make_budget(60, clock)
    other = make_budget(60, clock, shared_with=budget)
    step = 61 / 60

    def gap() -> float:
        """The spacing now: two reservations at one instant are one interval apart."""
        first = budget.reserve()
        return float(budget.reserve() - first)

    assert gap() == pytest.approx(step, rel=1e-4)
    other.slow_down()
    other.slow_down()  # the other requests in flight got the same 429: one signal, not two
    assert gap() == pytest.approx(2 * step, rel=1e-4)
    for _ in range(5):  # 429 after 429, a second apart: the rate bottoms out at 1/8
        clock.now += 1
        other.slow_down()
    assert gap() == pytest.approx(step / MIN_RATE_FACTOR, rel=1e-4)
    clock.now += 30  # regaining 1/60 of the budget a second: 1/8 + 1/2 after 30 s
    assert gap() == pytest.approx(step / (1 / 8 + 30 / 60), rel=1e-4)
    clock.now += 60
    assert gap() == pytest.approx(step, rel=1e-4)


def test_two_redis_budgets_on_one_key_share_the_slots(redis_server: RedisServer) -> None:
    # Real Redis TIME, no fake clock: what two processes see.
    key = f"test:{uuid.uuid4().hex}"
    one = RedisRateLimiter(redis_server.url, key, 600)
    two = RedisRateLimiter(redis_server.url, key, 600)
    try:
        waits = [one.reserve(), two.reserve(), one.reserve(), two.reserve()]
        gap = 61 / 600
        # The slots are spread over both: each one gets every other slot of the one budget.
        assert waits[0] == pytest.approx(0, abs=0.02)
        for index in range(1, 4):
            assert waits[index] == pytest.approx(index * gap, abs=0.02)
        assert one.parties == two.parties == 2
    finally:
        one.close()
        two.close()


# --- 429 backoff, time-bounded -------------------------------------------------------------


def test_429_delays_are_jittered_exponential_and_bounded_by_total_wait() -> None:
    backoff = Backoff(base_seconds=0.5, max_seconds=30, rate_limit_max_wait_seconds=120)
    rng = random.Random(3)
    waited, delays = 0.0, []
    limited = 0
    while True:
        limited += 1
        delay = backoff.rate_limit_delay(limited, None, waited, rng)
        if delay is None:
            break
        delays.append(delay)
        waited += delay
    assert waited == pytest.approx(120)  # the last wait is cut to what is left
    assert len(delays) > 6  # well past the five retries that gave up after 15.5 s
    assert all(d <= 30 for d in delays)
    assert sum(delays[:5]) <= 0.5 + 1 + 2 + 4 + 8


def test_retry_after_is_honoured_within_the_bound_and_refused_beyond() -> None:
    backoff = Backoff(rate_limit_max_wait_seconds=120)
    rng = random.Random(0)
    assert backoff.rate_limit_delay(1, 45, 0, rng) == 45
    assert backoff.rate_limit_delay(3, 45, 80, rng) is None
    zero = backoff.rate_limit_delay(1, 0, 0, rng)  # "Retry-After: 0" falls back to backoff
    assert zero is not None
    assert 0 <= zero <= backoff.base_seconds


_settings = scripted.settings


def _drive_scripted(exchange: NeoExchange, statuses: list[int]) -> tuple[list[Any], Any]:
    """Drive a call with scripted statuses; returns the actions seen and the result or error."""
    replies = [Received(status, {}, b"[]" if status == 200 else b"{}") for status in statuses]
    return scripted.drive(
        exchange.call(EXPIRED_POINTS, {"customer_id": "1", "year": "2025"}), replies
    )


def test_429s_are_retried_past_max_retries_until_the_wait_bound() -> None:
    settings = _settings(max_retries=2, rate_limit_max_wait_seconds=10)
    backoff = Backoff(max_retries=2, base_seconds=1, max_seconds=4, rate_limit_max_wait_seconds=10)
    exchange = NeoExchange(settings, stats=RequestStats(), backoff=backoff, rng=random.Random(1))
    actions, result = _drive_scripted(exchange, [429] * 6 + [200])
    assert result == []  # got through after six 429s, three times max_retries
    assert sum(isinstance(a, RateLimited) for a in actions) == 6
    assert all(a.pause_seconds is None for a in actions if isinstance(a, RateLimited))
    assert sum(isinstance(a, Reserve) for a in actions) == 7  # every attempt draws a slot
    actions, error = _drive_scripted(exchange, [429] * 100)
    sleeps = [a.seconds for a in actions if isinstance(a, Sleep)]
    assert isinstance(error, NeoRateLimitedError)
    assert sum(sleeps) == pytest.approx(10)
    assert "rate_limit_max_wait_seconds=10" in str(error)


# --- the rate_limit_storage setting -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://db/1", "expected memory://, redis://host:port/db or rediss://host:port/db"),
        ("redis://:hunter2@/0", "names no host"),
        ("redis://:hunter2@cache:notaport/0", "unreadable URL"),
        ("redis://:hunter2@cache:6379/zero", "database must be a number"),
        ("memory://somewhere", "memory:// takes nothing more"),
        ("localhost:6379", "expected memory://"),
    ],
)
def test_a_bad_rate_limit_storage_is_refused_naming_the_field_without_the_password(
    value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=r"^rate_limit_storage: ") as caught:
        _settings(rate_limit_storage=value)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_the_budget_key_names_the_host_and_hashes_the_identity_never_a_secret() -> None:
    settings = _settings(rate_limit_storage="rediss://:hunter2@cache:6380/2")
    assert settings.rate_limit_storage == "rediss://:hunter2@cache:6380/2"
    key = settings.rate_budget_key()
    assert key.startswith("neo:rate-budget:neo.example:")
    assert "till01" not in key
    assert "s3cret" not in key
    assert "hunter2" in settings.secrets()  # masked in Airflow's logs
    assert "hunter2" not in repr(settings)
    assert _settings().rate_limit_storage == "memory://"
    other = _settings(rate_limit_storage="redis://cache:6379/0")
    assert other.rate_budget_key() == key  # same credentials, same budget, wherever stored


# --- Redis out of reach ----------------------------------------------------------------------


def test_an_unreachable_store_fails_before_any_request_without_the_password(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    storage = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    neo_conn(simulator, rate_limit_storage=storage, requests_per_minute=6000)
    simulator.control("POST", "reset")
    hook = NeoHook()
    with pytest.raises(NeoRateBudgetError, match=r"^rate_limit_storage: cannot reach") as caught:
        list(hook.iter_expired_points([FIRST, FIRST + 1], year=2025))
    assert "hunter2" not in str(caught.value)
    assert "redis://:***@127.0.0.1" in str(caught.value)
    assert simulator.control("GET", "stats")["total"] == 0


def test_a_store_lost_mid_run_falls_back_to_this_process_share_and_says_so(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer().start()
    try:
        redis.Redis.from_url(server.url).config_set("requirepass", "hunter2")
        storage = f"redis://:hunter2@127.0.0.1:{server.port}/0"
        neo_conn(simulator, rate_limit_storage=storage, requests_per_minute=6000)
        hook = NeoHook()
        customers = range(FIRST, FIRST + 4)
        first = list(hook.iter_expired_points(customers, year=2025))
        assert isinstance(hook.rate_budget, RedisRateLimiter)
        assert hook.rate_budget.parties == 1
    finally:
        server.stop()
    with caplog.at_level(logging.WARNING, logger="airflow_provider_neo.client.ratelimit"):
        again = list(hook.iter_expired_points(customers, year=2025))
    assert again == first  # the run went on without the store
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back to this process's share" in warnings[0]
    assert f"redis://:***@127.0.0.1:{server.port}/0" in warnings[0]
    assert "hunter2" not in caplog.text


def test_the_async_hook_draws_from_the_shared_budget(
    simulator: RunningSimulator, neo_conn: Callable[..., str], redis_server: RedisServer
) -> None:
    neo_conn(simulator, rate_limit_storage=redis_server.url, requests_per_minute=6000)

    async def fetch() -> tuple[list[Any], str]:
        async with NeoAsyncHook() as hook:
            rows = await hook.aget_event_allocations(
                customer_id=FIRST, entity_id="nothing", event_type=15
            )
            return rows, hook.settings.rate_budget_key()

    rows, key = asyncio.run(fetch())
    assert rows == []
    # The reservation was made in Redis, on the key of these credentials.
    assert redis.Redis.from_url(redis_server.url).hget(key, "next") is not None


def test_the_hook_override_takes_the_place_of_the_connection_extra(
    simulator: RunningSimulator, neo_conn: Callable[..., str], redis_server: RedisServer
) -> None:
    neo_conn(simulator)
    hook = NeoHook(rate_limit_storage=redis_server.url, requests_per_minute=600)
    assert isinstance(hook.rate_budget, RedisRateLimiter)
    assert isinstance(NeoHook().rate_budget, RateLimiter)


def test_a_redis_store_without_the_redis_package_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=r"airflow-provider-neo\[redis\]") as caught:
        RedisRateLimiter("redis://:hunter2@cache:6379/0", "neo:rate-budget:x", 60)
    assert "hunter2" not in str(caught.value)
