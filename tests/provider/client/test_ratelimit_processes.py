"""The rate budget across OS processes, against the simulator's rate limit and a real Redis.

Minutes are compressed so the suite stays quick: Neo's window of 60 s becomes `WINDOW` seconds and
the connection's budget is scaled to the same rate, margin included (1 s a minute), so the
arithmetic that keeps a run under Neo's limit is the one of a real minute.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_neo.hooks.neo import NeoHook
from deploy.servers import RedisServer
from tests.budget_parties import run_parties
from tests.harness import RunningSimulator

FIRST = 400000001
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
ALL_TIME: dict[str, Any] = {"expiry_start": "2000-01-01", "expiry_end": "2099-12-31"}


def _rows(sim: RunningSimulator, customers: range) -> int:
    with sim.db() as db:
        (count,) = db.execute(
            "SELECT count(*) FROM allocations WHERE program_id = 2282 AND point_category_id = 17383"
            " AND customer_id BETWEEN ? AND ?",
            (customers.start, customers.stop - 1),
        ).fetchone()
    return int(count)


def test_four_processes_share_one_budget_through_redis_without_a_429(
    start_sim: Any, neo_conn: Callable[..., str], redis_server: RedisServer
) -> None:
    window = 10.0  # seconds standing in for Neo's minute: the 1 s-a-minute margin is 167 ms
    limit = 60  # Neo: 60 requests in any window; the connection's budget: the same
    sim = start_sim(
        "--rate-limit-per-minute", str(limit), "--rate-window-seconds", str(window),
        customers=100,
    )  # fmt: skip
    neo_conn(sim, requests_per_minute=limit * 60 / window, max_concurrency=2)
    customers = range(FIRST, FIRST + 80)  # 80 requests: past one window's worth
    shares = [customers[i::4] for i in range(4)]
    truth = _rows(sim, customers)

    alone = run_parties(shares, {"rate_limit_storage": "memory://"})
    print(
        f"\nwithout a shared store: {alone.limited} answers of 429 for {alone.requests} requests,"
        f" {alone.accepted_per_second:.2f} accepted/s in {alone.seconds:.1f} s"
    )
    assert alone.rows == truth  # they got there, through the 429s they provoked
    sim.control("POST", "reset")

    shared = run_parties(shares, {"rate_limit_storage": redis_server.url})
    budget_per_second = limit / window
    print(
        f"through Redis: {shared.limited} answers of 429 for {shared.requests} requests,"
        f" {shared.accepted_per_second:.2f}/s of a {budget_per_second:.2f}/s budget"
        f" in {shared.seconds:.1f} s"
    )
    assert shared.errors == []
    assert shared.rows == truth
    assert shared.limited == 0
    assert "429" not in sim.control("GET", "stats")["requests"]["expiring_allocations"]
    assert shared.requests == len(customers)
    assert shared.accepted_per_second >= 0.9 * budget_per_second


def test_a_30_a_minute_limit_without_retry_after_is_waited_out(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    # A minute squeezed into 3 s, and the backoff with it: base 0.5 s -> 0.025 s, each wait at
    # most 30 s -> 1.5 s, 120 s in all -> 6 s. No client budget: only the backoff paces the run.
    sim = start_sim(
        "--rate-limit-per-minute", "30", "--rate-window-seconds", "3", "--no-retry-after",
        customers=60,
    )  # fmt: skip
    neo_conn(
        sim,
        max_concurrency=4,
        backoff_base_seconds=0.025,
        backoff_max_seconds=1.5,
        rate_limit_max_wait_seconds=6,
    )
    customers = range(FIRST, FIRST + 45)
    hook = NeoHook()
    started = time.monotonic()
    rows = list(hook.iter_expiring_allocations(customers, **PROGRAM, **ALL_TIME))
    seconds = time.monotonic() - started
    assert len(rows) == _rows(sim, customers)
    seen = sim.control("GET", "stats")["requests"]["expiring_allocations"]
    assert seen["200"] == 45  # all 45 requests completed
    assert seen["429"] > 0  # ... past the limit, which held them back a whole window
    assert seconds >= 3 * 0.9
    assert dt.timedelta(seconds=seconds) < dt.timedelta(seconds=3 + 6)
