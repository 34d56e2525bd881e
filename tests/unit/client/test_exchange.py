"""The I/O-free exchange on its own: scripted replies in, actions out. Retry, renewal, paging
and error rules are pinned exactly here, in milliseconds, without a server or a clock."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from airflow_provider_neo.client.backoff import Backoff
from airflow_provider_neo.client.errors import (
    NeoAuthError,
    NeoBadRequestError,
    NeoConnectionError,
    NeoError,
    NeoProtocolError,
    NeoServerError,
)
from airflow_provider_neo.client.exchange import (
    Failed,
    NeoExchange,
    RateLimited,
    Received,
    RenewToken,
    RequestStats,
    Reserve,
    Send,
    Sleep,
)
from airflow_provider_neo.endpoints import EXPIRED_POINTS, EXPIRING_ALLOCATIONS
from tests import scripted

QUERY = {
    "customer_id": "400000001", "program_id": "2282", "point_category_id": "17383",
    "expiry_start_date": "2026-12-01", "expiry_end_date": "2026-12-31",
}  # fmt: skip
EMPTY = Received(200, {}, b"[]")


def _exchange(max_retries: int = 3, **extra: Any) -> NeoExchange:
    backoff = Backoff(max_retries=max_retries, base_seconds=1, max_seconds=8)
    settings = scripted.settings(page_size=2, max_retries=max_retries, **extra)
    return NeoExchange(settings, stats=RequestStats(), backoff=backoff, rng=random.Random(7))


_drive = scripted.drive


def _sends(actions: list[Any]) -> list[Send]:
    return [action for action in actions if isinstance(action, Send)]


def _sleeps(actions: list[Any]) -> list[float]:
    return [action.seconds for action in actions if isinstance(action, Sleep)]


_row = scripted.allocation_row


def _page(*ids: int) -> Received:
    return Received(200, {}, msgspec.json.encode([_row(i) for i in ids]))


def test_a_200_is_decoded_after_one_reserved_slot_and_one_request() -> None:
    actions, rows = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), [_page(1)])
    assert [type(a) for a in actions] == [Reserve, Send]
    assert [row.id for row in rows] == [1]
    assert rows[0].points_exclusive == Decimal("12.500")
    send = _sends(actions)[0]
    assert send.method == "GET"
    assert send.headers["x-cap-neo-dag-scope"] == "global"


def test_server_errors_and_dropped_connections_are_retried_with_growing_jittered_backoff() -> None:
    replies: list[Received | Failed] = [
        Received(503, {}, b""), Failed("reset"), Received(502, {}, b""), _page(1)
    ]  # fmt: skip
    actions, rows = _drive(_exchange(max_retries=3).call(EXPIRING_ALLOCATIONS, QUERY), replies)
    assert [row.id for row in rows] == [1]
    sleeps = _sleeps(actions)
    assert len(sleeps) == 3
    assert [0 <= s <= cap for s, cap in zip(sleeps, (1, 2, 4), strict=True)] == [True] * 3
    ids = [send.headers["x-cap-request-id"] for send in _sends(actions)]
    assert len(set(ids)) == 4  # every attempt has its own request id


def test_retries_stop_after_max_retries_with_the_attempts_counted() -> None:
    actions, error = _drive(_exchange(max_retries=2).call(EXPIRING_ALLOCATIONS, QUERY),
                            [Received(500, {}, b"")] * 5)  # fmt: skip
    assert isinstance(error, NeoServerError)
    assert "gave up after 3 attempts" in str(error)
    assert len(_sends(actions)) == 3
    actions, error = _drive(_exchange(max_retries=1).call(EXPIRING_ALLOCATIONS, QUERY),
                            [Failed("timed out")] * 5)  # fmt: skip
    assert isinstance(error, NeoConnectionError)
    assert len(_sends(actions)) == 2


def test_a_retry_after_is_waited_exactly_and_slows_every_caller() -> None:
    limited = Received(429, {"retry-after": "7"}, b"{}")  # header names as the drivers give them
    replies = [limited, _page(1)]
    actions, _ = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), replies)
    assert _sleeps(actions) == [7.0]
    assert [a for a in actions if isinstance(a, RateLimited)] == [RateLimited(7.0)]


@pytest.mark.parametrize(("status", "error_type"), [(400, NeoBadRequestError), (403, NeoAuthError)])
def test_client_errors_are_not_retried(status: int, error_type: type[NeoError]) -> None:
    body = b'{"errors": [{"code": 8002, "message": "Invalid parameter \'count\'"}]}'
    actions, error = _drive(
        _exchange().call(EXPIRING_ALLOCATIONS, QUERY), [Received(status, {}, body)]
    )
    assert isinstance(error, error_type)
    assert len(_sends(actions)) == 1
    assert error.status == status
    assert error.request_id == _sends(actions)[0].headers["x-cap-request-id"]


def test_a_refused_oauth_token_is_renewed_once_then_the_401_stands() -> None:
    exchange = _exchange(auth_type="oauth", oauth_client_key="k", oauth_client_secret="s3cr3t")
    refused = Received(401, {}, b"{}")
    actions, rows = _drive(exchange.call(EXPIRING_ALLOCATIONS, QUERY), [refused, _page(1)])
    assert [row.id for row in rows] == [1]
    assert sum(isinstance(a, RenewToken) for a in actions) == 1
    actions, error = _drive(
        exchange.call(EXPIRING_ALLOCATIONS, QUERY), [refused, refused, _page(1)]
    )
    assert isinstance(error, NeoAuthError)
    assert sum(isinstance(a, RenewToken) for a in actions) == 1
    basic = _exchange()
    actions, error = _drive(basic.call(EXPIRING_ALLOCATIONS, QUERY), [refused])
    assert isinstance(error, NeoAuthError)
    assert not any(isinstance(a, RenewToken) for a in actions)  # Basic has nothing to renew


def test_a_body_that_is_not_json_is_retried_but_rows_of_the_wrong_shape_are_not() -> None:
    cut = Received(200, {}, b'[{"id": 1,')
    actions, rows = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), [cut, _page(1)])
    assert [row.id for row in rows] == [1]
    wrong = Received(200, {}, b'[{"id": "one"}]')
    actions, error = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), [wrong, _page(1)])
    assert isinstance(error, NeoProtocolError)
    assert len(_sends(actions)) == 1


def test_a_404_is_empty_where_the_endpoint_says_so_and_an_error_elsewhere() -> None:
    query = {"customer_id": "1", "year": "2025"}
    _, rows = _drive(_exchange().call(EXPIRED_POINTS, query), [Received(404, {}, b"{}")])
    assert rows == []
    _, error = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), [Received(404, {}, b"{}")])
    assert isinstance(error, NeoError)
    assert error.status == 404


def test_paging_runs_until_a_short_page_and_drops_repeated_rows() -> None:
    exchange = _exchange()
    actions, rows = _drive(
        exchange.all_pages(EXPIRING_ALLOCATIONS, QUERY), [_page(1, 2), _page(2, 3), _page(4)]
    )
    assert [row.id for row in rows] == [1, 2, 3, 4]
    pages = [send.url.split("page=")[1].split("&")[0] for send in _sends(actions)]
    assert pages == ["1", "2", "3"]
    assert all("count=2" in send.url for send in _sends(actions))
    assert exchange.stats.duplicates_dropped == 1


def test_a_page_repeating_the_previous_one_or_paging_past_max_pages_stops() -> None:
    _, error = _drive(
        _exchange().all_pages(EXPIRING_ALLOCATIONS, QUERY), [_page(1, 2), _page(1, 2)]
    )
    assert isinstance(error, NeoProtocolError)
    assert "same rows as page 1" in str(error)
    exchange = _exchange(max_pages=3)
    actions, error = _drive(
        exchange.all_pages(EXPIRING_ALLOCATIONS, QUERY),
        [_page(1, 2), _page(3, 4), _page(5, 6), _page(7, 8)],
    )
    assert isinstance(error, NeoProtocolError)
    assert "max_pages=3" in str(error)
    assert len(_sends(actions)) == 3


def test_errors_never_carry_the_secrets() -> None:
    exchange = _exchange()
    echo = Received(500, {}, b"upstream said: Basic dGlsbDAxOnMzY3JldC1wYXNz s3cret-pass")
    _, error = _drive(exchange.call(EXPIRING_ALLOCATIONS, QUERY), [echo] * 10)
    assert "s3cret-pass" not in str(error)
    assert "s3cret-pass" not in repr(error.body_excerpt)


def test_a_redirect_is_a_protocol_error_naming_the_location_and_is_not_retried() -> None:
    moved = Received(302, {"location": "http://elsewhere.example/steal"}, b"")
    actions, error = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), [moved, _page(1)])
    assert isinstance(error, NeoProtocolError)
    assert error.status == 302
    assert "redirect to http://elsewhere.example/steal" in str(error)
    assert len(_sends(actions)) == 1


def test_a_page_with_more_rows_than_count_is_a_protocol_error_at_once() -> None:
    actions, error = _drive(
        _exchange().all_pages(EXPIRING_ALLOCATIONS, QUERY), [_page(1, 2, 3)] + [_page(4)] * 5
    )
    assert isinstance(error, NeoProtocolError)
    assert "page 1 with 3 rows, more than the count=2" in str(error)
    assert len(_sends(actions)) == 1


def test_one_call_stops_after_max_requests_per_call_pages_and_retries_included() -> None:
    exchange = _exchange(max_requests_per_call=5)
    pages = [_page(2 * n + 1, 2 * n + 2) for n in range(100)]  # fresh full pages for ever
    actions, error = _drive(exchange.fetch(EXPIRING_ALLOCATIONS, QUERY), pages)
    assert isinstance(error, NeoProtocolError)
    assert "max_requests_per_call=5" in str(error)
    assert len(_sends(actions)) == 5
    failed = Received(503, {}, b"")
    flaky: list[Received | Failed] = [failed, _page(1, 2), failed, _page(3, 4), _page(5)]
    actions, rows = _drive(
        _exchange(max_requests_per_call=5).fetch(EXPIRING_ALLOCATIONS, QUERY), flaky
    )
    assert [row.id for row in rows] == [1, 2, 3, 4, 5]  # exactly the bound: 5 requests complete
    single = [Received(503, {}, b"")] * 3 + [_page(1)]
    _, error = _drive(
        _exchange(max_requests_per_call=3).fetch(
            EXPIRED_POINTS, {"customer_id": "1", "year": "2025"}
        ),
        single,
    )
    assert isinstance(error, NeoProtocolError)


def test_impossible_points_are_a_protocol_error_naming_the_field_and_the_row_id() -> None:
    row = {**_row(41), "points_exclusive": "NaN"}
    body = Received(200, {}, msgspec.json.encode([row]))
    actions, error = _drive(_exchange().call(EXPIRING_ALLOCATIONS, QUERY), [body, _page(1)])
    assert isinstance(error, NeoProtocolError)
    assert "points_exclusive is NaN in the row with id=41" in str(error)
    assert len(_sends(actions)) == 1  # not retried: Neo would answer the same


def test_rows_of_customers_not_asked_for_are_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exchange = _exchange()
    stranger = {**_row(2), "customer_id": 999}
    reply = Received(200, {}, msgspec.json.encode([_row(1), stranger]))
    query = {**QUERY, "entity_id": "400000001"}
    with caplog.at_level("WARNING"):
        _, rows = _drive(exchange.fetch(EXPIRING_ALLOCATIONS, query), [reply, EMPTY])
    assert [row.id for row in rows] == [1]
    assert exchange.stats.snapshot()["rows_not_asked_for"] == 1
    assert "customers not asked for (999)" in caplog.text
