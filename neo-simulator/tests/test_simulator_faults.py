"""Each fault switch does what it says, is seeded, and is counted by the simulator."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
import requests

from airflow_provider_neo.endpoints import (
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    SCOPE_HEADER,
    TOKEN_PATH,
)
from neo_simulator.testing import NEO_HEADERS, RunningSimulator

SAMPLE = {"customer_id": "11064", "year": "2024"}


def _statuses(sim: RunningSimulator, n: int) -> list[int]:
    return [sim.get(EXPIRED_POINTS.path, SAMPLE).status_code for _ in range(n)]


def test_no_fault_is_on_by_default(simulator: RunningSimulator) -> None:
    faults = simulator.control("GET", "faults")
    assert faults == {
        "latency_ms": 0, "error_rate": 0.0, "rate_limit_per_minute": 0, "retry_after": True,
        "malformed_rate": 0.0, "reset_rate": 0.0, "stall_rate": 0.0, "stall_ms": 5000,
        "rate_window_seconds": 60.0, "ignore_page": False, "page_overlap": 0,
        "failing_customer_ids": [], "seed": 0,
    }  # fmt: skip
    assert set(_statuses(simulator, 20)) == {200}


def test_latency_delays_every_answer(start_sim: Any) -> None:
    sim = start_sim("--latency-ms", "300")
    started = time.perf_counter()
    assert _statuses(sim, 3) == [200, 200, 200]
    assert time.perf_counter() - started >= 0.9


def test_error_rate_one_answers_only_server_errors(start_sim: Any) -> None:
    sim = start_sim("--error-rate", "1")
    statuses = _statuses(sim, 40)
    assert set(statuses) <= {500, 502, 503, 504}
    assert len(set(statuses)) > 1, "the 5xx statuses vary"
    response = sim.get(EXPIRED_POINTS.path, SAMPLE)
    assert response.json()["errors"][0]["message"] == "Internal Server Error"


def test_error_rate_is_seeded_and_partial(start_sim: Any) -> None:
    first = _statuses(start_sim("--error-rate", "0.3", "--fault-seed", "5"), 60)
    second = _statuses(start_sim("--error-rate", "0.3", "--fault-seed", "5"), 60)
    other_seed = _statuses(start_sim("--error-rate", "0.3", "--fault-seed", "6"), 60)
    assert first == second
    assert first != other_seed
    assert 5 <= sum(status >= 500 for status in first) <= 35
    assert 200 in first


def test_rate_limit_answers_429_with_retry_after(start_sim: Any) -> None:
    sim = start_sim("--rate-limit-per-minute", "5")
    assert _statuses(sim, 5) == [200] * 5
    limited = sim.get(EXPIRED_POINTS.path, SAMPLE)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["errors"][0]["message"].startswith("Rate limit exceeded")


def test_rate_limit_without_retry_after(start_sim: Any) -> None:
    sim = start_sim("--rate-limit-per-minute", "2", "--no-retry-after")
    assert _statuses(sim, 3) == [200, 200, 429]
    assert "Retry-After" not in sim.get(EXPIRED_POINTS.path, SAMPLE).headers


def test_rate_limited_requests_do_not_use_up_the_budget_and_reset_frees_it(start_sim: Any) -> None:
    sim = start_sim("--rate-limit-per-minute", "3")
    assert _statuses(sim, 6) == [200, 200, 200, 429, 429, 429]
    sim.control("POST", "reset")
    assert _statuses(sim, 4) == [200, 200, 200, 429]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_malformed_rate_one_breaks_every_body(start_sim: Any) -> None:
    sim = start_sim("--malformed-rate", "1")
    responses = [sim.get(EXPIRED_POINTS.path, SAMPLE) for _ in range(20)]
    assert {r.status_code for r in responses} == {200}
    assert not any(_is_json(r.text) for r in responses)
    kinds = {r.headers["content-type"] for r in responses}
    assert kinds == {"application/json", "text/html"}, "both cut-off JSON and HTML pages occur"


def test_reset_rate_one_drops_every_connection(start_sim: Any) -> None:
    sim = start_sim("--reset-rate", "1")
    raised: set[type[Exception]] = set()
    for _ in range(12):
        with pytest.raises(
            (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
        ) as caught:
            sim.get(EXPIRED_POINTS.path, SAMPLE)
        raised.add(type(caught.value))
    # Both kinds of drop occur: a reset before any byte, and a cut in the middle of the body.
    assert raised == {requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError}
    assert sim.control("GET", "stats")["requests"]["expired_points"] == {"dropped": 12}
    assert "Traceback" not in sim.process.read_log()
    # Control routes never fault.
    assert sim.control("GET", "health") == {"status": "ok"}


def test_faults_can_be_changed_at_run_time(start_sim: Any) -> None:
    sim = start_sim()
    assert sim.control("PUT", "faults", json={"error_rate": 1.0})["error_rate"] == 1.0
    assert set(_statuses(sim, 5)) <= {500, 502, 503, 504}
    sim.control("PUT", "faults", json={"error_rate": 0.0})
    assert _statuses(sim, 3) == [200, 200, 200]
    bad = requests.put(f"{sim.url}/__sim/faults", json={"error_rate": 2}, timeout=5)
    assert bad.status_code == 400
    assert "error_rate" in bad.json()["errors"][0]["message"]
    unknown = requests.put(f"{sim.url}/__sim/faults", json={"explode": True}, timeout=5)
    assert unknown.status_code == 400


def test_failing_customer_ids_fail_every_request_naming_them(start_sim: Any) -> None:
    sim = start_sim()
    sim.control("PUT", "faults", json={"failing_customer_ids": [11064, 400000002]})
    assert set(_statuses(sim, 5)) == {503}
    others = {"customer_id": "11065", "year": "2024"}
    assert sim.get(EXPIRED_POINTS.path, others).status_code in (200, 404)
    many = {"entity_id": "400000001,400000002,400000003", "program_id": "2282",
            "point_category_id": "17383", "expiry_start_date": "2026-12-01",
            "expiry_end_date": "2026-12-31"}  # fmt: skip
    assert sim.get("/x/neo/pointsAwarded/paIds", many).status_code == 503
    sim.control("PUT", "faults", json={"failing_customer_ids": []})
    assert set(_statuses(sim, 3)) == {200}


def test_counters_count_per_endpoint_and_status_and_reset_clears_them(start_sim: Any) -> None:
    sim = start_sim()
    _statuses(sim, 3)
    sim.get(EXPIRED_POINTS.path, {"customer_id": "11064"})
    sim.get(EXPIRED_POINTS.path, SAMPLE, headers={})
    requests.post(sim.url + TOKEN_PATH, json={"key": "x", "secret": "y"}, timeout=5)
    stats = sim.control("GET", "stats")
    assert stats["requests"] == {
        "expired_points": {"200": 3, "400": 1, "401": 1},
        "oauth_token": {"401": 1},
    }
    assert stats["total"] == 6
    assert stats["max_in_flight"] == 1
    assert stats["longest_target"] == len(f"{EXPIRED_POINTS.path}?customer_id=11064&year=2024")
    assert sim.control("POST", "reset") == {
        "requests": {},
        "total": 0,
        "max_in_flight": 0,
        "longest_target": 0,
    }


def test_faults_hit_only_the_neo_endpoints(start_sim: Any) -> None:
    sim = start_sim("--error-rate", "1", "--latency-ms", "0")
    token = requests.post(
        sim.url + TOKEN_PATH,
        json={"key": "neo_client_key", "secret": "neo_client_secret"},
        timeout=5,
    )
    assert token.status_code == 200
    assert sim.control("GET", "info")["rows"]["customers"] > 0


def test_statuses_under_mixed_faults_are_all_expected(start_sim: Any) -> None:
    sim = start_sim("--error-rate", "0.2", "--malformed-rate", "0.2", "--fault-seed", "3")
    outcomes: Counter[str] = Counter()
    for _ in range(50):
        response = sim.get(EXPIRED_POINTS.path, SAMPLE)
        ok_json = response.status_code == 200 and _is_json(response.text)
        outcomes["ok" if ok_json else str(response.status_code)] += 1
    assert outcomes["ok"] > 10
    assert set(outcomes) <= {"ok", "200", "500", "502", "503", "504"}
    assert outcomes["200"] > 0, "some 200 answers were malformed"


def test_stall_rate_holds_answers_back(start_sim: Any) -> None:
    sim = start_sim("--stall-rate", "1", "--stall-ms", "400")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(sim.url + EXPIRED_POINTS.path, params=SAMPLE, headers=NEO_HEADERS, timeout=0.2)
    started = time.perf_counter()
    assert sim.get(EXPIRED_POINTS.path, SAMPLE).status_code == 200
    assert time.perf_counter() - started >= 0.4


def test_rate_window_can_be_shortened(start_sim: Any) -> None:
    sim = start_sim("--rate-limit-per-minute", "2", "--rate-window-seconds", "1")
    assert _statuses(sim, 3) == [200, 200, 429]
    time.sleep(1.1)
    assert _statuses(sim, 2) == [200, 200]


DATE_RANGE = {
    "program_id": 2282, "point_category_id": 17383, "expiry_date_start": "2000-01-01",
    "expiry_date_end": "2099-12-31", "count": 2,
}  # fmt: skip


def _busy_customer(sim: RunningSimulator) -> list[int]:
    with sim.db() as db:
        (customer_id,) = db.execute(
            "SELECT customer_id FROM allocations WHERE program_id = 2282"
            " AND point_category_id = 17383 GROUP BY customer_id HAVING COUNT(*) >= 5 LIMIT 1"
        ).fetchone()
    return [customer_id]


def _page_ids(sim: RunningSimulator, customer_id: int, page: int) -> list[int]:
    params = {**DATE_RANGE, "entity_id": customer_id, "page": page}
    return [row["id"] for row in sim.get(EXPIRING_ALLOCATIONS.path, params).json()]


def test_ignore_page_answers_the_first_page_for_every_page(start_sim: Any) -> None:
    sim = start_sim("--ignore-page", customers=100)
    (customer_id,) = _busy_customer(sim)
    first = _page_ids(sim, customer_id, 1)
    assert len(first) == 2
    assert _page_ids(sim, customer_id, 2) == first
    assert _page_ids(sim, customer_id, 7) == first


def test_page_overlap_repeats_rows_of_the_previous_page(start_sim: Any) -> None:
    sim = start_sim("--page-overlap", "1", customers=100)
    (customer_id,) = _busy_customer(sim)
    first, second = _page_ids(sim, customer_id, 1), _page_ids(sim, customer_id, 2)
    assert second[0] == first[-1]
    assert second[1] > first[-1]


def test_accepted_scopes_are_set_by_flag(start_sim: Any) -> None:
    sim = start_sim("--scopes", "org")
    assert sim.get(EXPIRED_POINTS.path, SAMPLE).status_code == 400
    org = {**NEO_HEADERS, SCOPE_HEADER: "org"}
    assert sim.get(EXPIRED_POINTS.path, SAMPLE, headers=org).status_code == 200
