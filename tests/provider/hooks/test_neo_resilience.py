"""NeoHook under faults: it recovers what can be recovered, fails clearly otherwise, and never
loses or duplicates a row on the way."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_neo.client.errors import (
    NeoAuthError,
    NeoBadRequestError,
    NeoConnectionError,
    NeoNotFoundError,
    NeoProtocolError,
    NeoServerError,
)
from airflow_provider_neo.hooks.neo import NeoHook
from tests.ground_truth import allocations
from tests.harness import AS_OF, RunningSimulator

FIRST = 400000001
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
WINDOW: dict[str, Any] = {"expiry_start": AS_OF, "expiry_end": AS_OF + dt.timedelta(days=365)}
RETRY_LINE = re.compile(r"retry \d+ in (\d+\.\d+) s")


def _truth(sim: RunningSimulator, customers: range) -> list[int]:
    return sorted(allocations(sim.db_path, customers=customers))


ALL_TIME: dict[str, Any] = {"expiry_start": "2000-01-01", "expiry_end": "2099-12-31"}


def _fetch(customers: range, **overrides: Any) -> tuple[list[int], NeoHook]:
    hook = NeoHook(**overrides)
    rows = list(hook.iter_expiring_allocations(customers, **PROGRAM, **ALL_TIME))
    return sorted(row.id for row in rows), hook


def test_injected_5xx_resets_stalls_and_malformed_bodies_are_recovered_exactly(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim(
        "--error-rate", "0.2", "--reset-rate", "0.1", "--malformed-rate", "0.05",
        "--stall-rate", "0.03", "--stall-ms", "1500", "--fault-seed", "11", customers=200,
    )  # fmt: skip
    neo_conn(sim, timeout=0.5, max_retries=12, max_concurrency=4, page_size=3)
    customers = range(FIRST, FIRST + 150)
    ids, hook = _fetch(customers)
    assert ids == _truth(sim, customers)  # nothing lost, nothing twice
    seen = sim.control("GET", "stats")["requests"]["expiring_allocations"]
    assert seen.get("dropped", 0) > 0
    assert sum(n for status, n in seen.items() if status.startswith("5")) > 0
    assert hook.stats.snapshot()["retries"] > 0
    assert hook.stats.snapshot()["statuses"].get("failed", 0) > 0  # resets and read timeouts


def test_429_with_retry_after_pauses_for_as_long_as_neo_asks(
    start_sim: Any, neo_conn: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    sim = start_sim("--rate-limit-per-minute", "5", "--rate-window-seconds", "2")
    neo_conn(sim, max_concurrency=3, max_retries=8)
    customers = range(FIRST, FIRST + 12)
    with caplog.at_level(logging.WARNING):
        ids, hook = _fetch(customers)
    assert ids == _truth(sim, customers)
    limited = sim.control("GET", "stats")["requests"]["expiring_allocations"].get("429", 0)
    assert limited >= 1
    delays = [float(d) for d in RETRY_LINE.findall(caplog.text)]
    assert len(delays) == hook.stats.snapshot()["retries"] == limited
    # Backoff alone waits at most 0.05 s in tests: these waits are Neo's Retry-After.
    assert all(delay >= 1.0 for delay in delays)


def test_429_without_retry_after_backs_off_exponentially(
    start_sim: Any, neo_conn: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    sim = start_sim(
        "--rate-limit-per-minute", "3", "--rate-window-seconds", "1", "--no-retry-after"
    )
    neo_conn(
        sim, max_concurrency=1, max_retries=12, backoff_base_seconds=0.1, backoff_max_seconds=1
    )
    customers = range(FIRST, FIRST + 8)
    with caplog.at_level(logging.WARNING):
        ids, hook = _fetch(customers)
    assert ids == _truth(sim, customers)
    delays = [float(d) for d in RETRY_LINE.findall(caplog.text)]
    assert delays
    assert all(delay <= 1.0 for delay in delays)
    assert hook.stats.snapshot()["retries"] == len(delays)


def test_request_budget_keeps_a_run_below_neos_rate_limit(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    # Neo allows 10 requests in any 6 s, 100 a minute, and so does the connection's budget. The
    # test squeezes a minute into 6 s, so the limiter's margin (1 s a minute) is 100 ms here.
    sim = start_sim("--rate-limit-per-minute", "10", "--rate-window-seconds", "6")
    neo_conn(sim, max_concurrency=4, requests_per_minute=100)
    customers = range(FIRST, FIRST + 16)
    ids, hook = _fetch(customers)
    assert ids == _truth(sim, customers)
    assert sim.control("GET", "stats")["requests"] == {"expiring_allocations": {"200": 16}}
    assert hook.stats.snapshot()["retries"] == 0


def test_retries_are_bounded_then_fail_clearly(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--error-rate", "1")
    neo_conn(sim, max_retries=2)
    with pytest.raises(NeoServerError) as caught:
        _fetch(range(FIRST, FIRST + 1))
    error = caught.value
    assert error.status in (500, 502, 503, 504)
    assert error.endpoint == "/x/neo/pointsAllocation/dateRange"
    assert re.fullmatch(r"[0-9a-f]{32}", error.request_id or "")
    assert "(gave up after 3 attempts)" in str(error)
    assert f"x-cap-request-id={error.request_id}" in str(error)
    assert sim.control("GET", "stats")["total"] == 3


def test_read_timeouts_are_retried_then_fail_clearly(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--stall-rate", "1", "--stall-ms", "800")
    neo_conn(sim, timeout=0.2, max_retries=1)
    # The stall ends in requests' ReadTimeout or, first as a rule, the request's deadline.
    stalled = r"No complete answer from Neo: .*(Timeout|took longer than timeout=0\.2 s)"
    with pytest.raises(NeoConnectionError, match=stalled):
        _fetch(range(FIRST, FIRST + 1))


def test_malformed_bodies_end_in_a_protocol_error(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--malformed-rate", "1")
    neo_conn(sim, max_retries=2)
    with pytest.raises(NeoProtocolError, match="body that is not JSON") as caught:
        _fetch(range(FIRST, FIRST + 1))
    assert caught.value.status == 200
    assert sim.control("GET", "stats")["total"] == 3


def test_rows_of_the_wrong_shape_end_in_a_protocol_error_without_retry(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    # Aim expiredPoints at a route that answers a JSON array of something else.
    neo_conn(simulator, endpoint_paths={"expired_points": "/__sim/customers"})
    hook = NeoHook()
    with pytest.raises(NeoProtocolError, match="rows of an unexpected shape"):
        list(hook.iter_expired_points(11064, year=2024))
    assert hook.stats.snapshot()["requests"] == 1


def test_wrong_password_is_not_retried(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    import json

    from tests.harness import connection_json

    conn = json.loads(connection_json(simulator))
    conn["password"] = "not-the-password"
    neo_conn(simulator, raw=json.dumps(conn))
    simulator.control("POST", "reset")
    with pytest.raises(NeoAuthError, match="Invalid username or password") as caught:
        _fetch(range(FIRST, FIRST + 1))
    assert caught.value.status == 401
    assert simulator.control("GET", "stats")["total"] == 1


def test_400_and_404_are_not_retried(start_sim: Any, neo_conn: Callable[..., str]) -> None:
    sim = start_sim("--scopes", "org")
    neo_conn(sim)
    hook = NeoHook()
    with pytest.raises(NeoBadRequestError, match="x-cap-neo-dag-scope"):
        list(hook.iter_expired_points(11064, year=2024))
    assert hook.stats.snapshot()["requests"] == 1
    neo_conn(sim, scope="org", endpoint_paths={"expiring_allocations": "/x/neo/nothing/here"})
    hook = NeoHook()
    with pytest.raises(NeoNotFoundError):
        list(hook.iter_expiring_allocations(FIRST, **PROGRAM, **WINDOW))
    assert hook.stats.snapshot()["requests"] == 1


def test_oauth_token_is_renewed_before_it_expires_mid_run(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    # A 2 s token is renewed 0.2 s before it runs out: a request signed just before renewal
    # still arrives in time on a loaded machine (with 1 s, 0.1 s of scheduling delay was a 401).
    sim = start_sim("--token-ttl", "2", "--latency-ms", "30", customers=300)
    neo_conn(sim, auth="oauth", max_concurrency=2)
    customers = range(FIRST, FIRST + 300)  # about 5 s of requests: several token lifetimes
    ids, _ = _fetch(customers)
    assert ids == _truth(sim, customers)
    stats = sim.control("GET", "stats")["requests"]
    assert stats["oauth_token"]["200"] >= 2
    assert "401" not in stats["expiring_allocations"]


def test_a_refused_token_is_renewed_once(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, auth="oauth", max_concurrency=1)
    hook = NeoHook()
    customers = range(FIRST, FIRST + 3)

    def fetch() -> list[int]:
        return sorted(
            r.id for r in hook.iter_expiring_allocations(customers, **PROGRAM, **ALL_TIME)
        )

    assert fetch() == _truth(simulator, customers)
    simulator.control("POST", "reset")
    simulator.control("POST", "revoke-tokens")
    assert fetch() == _truth(simulator, customers)
    stats = simulator.control("GET", "stats")["requests"]
    assert stats["oauth_token"] == {"200": 1}
    assert stats["expiring_allocations"] == {"401": 1, "200": 3}


def test_concurrent_refusals_of_one_token_fetch_one_new_token(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, auth="oauth", max_concurrency=8)
    hook = NeoHook()
    customers = range(FIRST, FIRST + 40)
    list(hook.iter_expiring_allocations(customers, **PROGRAM, **ALL_TIME))
    simulator.control("POST", "reset")
    simulator.control("POST", "revoke-tokens")
    ids = sorted(r.id for r in hook.iter_expiring_allocations(customers, **PROGRAM, **ALL_TIME))
    assert ids == _truth(simulator, customers)
    # Every request in flight with the revoked token was refused, yet one new token served all.
    assert simulator.control("GET", "stats")["requests"]["oauth_token"] == {"200": 1}


def test_a_wrong_oauth_secret_fails_without_retrying(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, auth="oauth", oauth_client_secret="not-the-secret")
    simulator.control("POST", "reset")
    with pytest.raises(NeoAuthError, match="refused the OAuth client key or secret"):
        _fetch(range(FIRST, FIRST + 1))
    assert simulator.control("GET", "stats")["requests"] == {"oauth_token": {"401": 1}}


EXPIRING, AWARDED = "iter_expiring_allocations", "iter_points_awarded"
EXPIRED, EVENT = "iter_expired_points", "iter_event_allocations"
BASE: dict[str, Any] = {**PROGRAM, **WINDOW}
EVENT_BASE: dict[str, Any] = {"customer_id": FIRST, "entity_id": "e", "event_type": 15}
BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    (EXPIRING, {"customer_ids": [FIRST, -3], **BASE}, "customer_ids"),
    (EXPIRING, {"customer_ids": "abc", **BASE}, "customer_ids"),
    (EXPIRING, {"customer_ids": [], **BASE, "expiry_start": "2026-13-01"}, "expiry_start"),
    (EXPIRING, {"customer_ids": 1, **BASE, "expiry_start": "2028-01-02"}, "expiry_start"),
    (EXPIRING, {"customer_ids": 1, **BASE, "program_id": 0}, "program_id"),
    (AWARDED, {"customer_ids": [FIRST], **BASE, "status": "GONE"}, "status"),
    (AWARDED, {"customer_ids": [FIRST], **BASE, "org_id": "x"}, "org_id"),
    (AWARDED, {"customer_ids": [FIRST, 1.5], **BASE}, "customer_ids"),
    (EXPIRED, {"customer_ids": [FIRST], "year": 24}, "year"),
    (EXPIRED, {"customer_ids": [FIRST], "year": "20x4"}, "year"),
    (EVENT, {**EVENT_BASE, "event_type": "Nope"}, "event_type"),
    (EVENT, {**EVENT_BASE, "event_type": 90}, "event_type"),
    (EVENT, {**EVENT_BASE, "entity_id": " "}, "entity_id"),
    (EVENT, {**EVENT_BASE, "customer_id": 0}, "customer_id"),
]


@pytest.mark.parametrize(
    ("method", "kwargs", "argument"), BAD_CALLS, ids=[f"{m}-{a}" for m, _, a in BAD_CALLS]
)
def test_bad_input_raises_value_error_naming_the_argument_before_any_request(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    method: str,
    kwargs: dict[str, Any],
    argument: str,
) -> None:
    neo_conn(simulator)
    simulator.control("POST", "reset")
    hook = NeoHook()
    kwargs = dict(kwargs)
    args = (kwargs.pop("customer_ids"),) if "customer_ids" in kwargs else ()

    def first_record() -> object:
        return next(getattr(hook, method)(*args, **kwargs))  # a valid call sends a request here

    with pytest.raises(ValueError, match=rf"^{argument}: "):
        first_record()
    assert simulator.control("GET", "stats")["total"] == 0
