"""NeoHook and NeoAsyncHook against a server that misbehaves on purpose: a tiny HTTP server on
loopback scripted by each test, so nothing here depends on the simulator's faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from airflow_provider_neo.client.errors import NeoConnectionError, NeoProtocolError
from airflow_provider_neo.endpoints import TOKEN_PATH
from airflow_provider_neo.hooks.neo import NeoAsyncHook, NeoHook
from airflow_provider_neo.operators.neo import ExpiredPointsOperator
from neo_simulator.auth import DEFAULT_OAUTH_SECRET, DEFAULT_PASSWORD
from tests import scripted
from tests.harness import LoopbackServer

EVENT: dict[str, Any] = {"customer_id": 400000001, "entity_id": "BILL-1", "event_type": 15}
TOKEN = "tok-3f9a2c71-not-for-other-hosts"


def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _redirecting_to(elsewhere: LoopbackServer) -> Callable[[BaseHTTPRequestHandler], None]:
    """Neo's API host gone bad: tokens as usual, but every read redirected to `elsewhere`."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == TOKEN_PATH:
            token = {"data": {"accessToken": TOKEN, "ttlSeconds": 3600}}
            _answer(handler, 200, json.dumps(token).encode())
        else:
            _answer(handler, 302, b"", Location=f"{elsewhere.url}/steal{handler.path}")

    return respond


def _read_event(hook_type: type[NeoHook]) -> list[Any]:
    """One event read by a fresh hook of `hook_type`, sync or async."""
    if hook_type is NeoAsyncHook:

        async def fetch() -> list[Any]:
            async with NeoAsyncHook() as hook:
                return await hook.aget_event_allocations(**EVENT)

        return asyncio.run(fetch())
    return list(NeoHook().iter_event_allocations(**EVENT))


@pytest.mark.parametrize("auth", ["basic", "oauth"])
@pytest.mark.parametrize("hook_type", [NeoHook, NeoAsyncHook])
def test_a_redirect_is_a_protocol_error_naming_the_location_and_is_never_followed(
    neo_conn: Callable[..., str], auth: str, hook_type: type[NeoHook]
) -> None:
    elsewhere = LoopbackServer(lambda h: _answer(h, 200, b"[]"))
    with elsewhere, LoopbackServer(_redirecting_to(elsewhere)) as neo:
        neo_conn(neo, auth=auth, max_retries=2)
        with pytest.raises(NeoProtocolError) as caught:
            _read_event(hook_type)
    assert caught.value.status == 302
    assert f"redirect to {elsewhere.url}/steal/" in str(caught.value)
    assert elsewhere.seen == []  # no request, so no credential, reached the other host
    reads = [seen for seen in neo.seen if seen.path != TOKEN_PATH]
    assert len(reads) == 1  # a protocol error: not retried
    sent = reads[0].headers
    if auth == "oauth":
        assert sent["X-CAP-API-OAUTH-TOKEN"] == TOKEN  # the API host itself did get it
    for secret in (TOKEN, DEFAULT_PASSWORD, DEFAULT_OAUTH_SECRET):
        assert secret not in str(caught.value)


def test_pages_fuller_than_count_stop_after_the_first_request(
    neo_conn: Callable[..., str],
) -> None:
    def overfull(handler: BaseHTTPRequestHandler) -> None:
        page = int(handler.path.split("page=")[1].split("&")[0])
        rows = [scripted.allocation_row(page * 10 + n) for n in range(3)]
        _answer(handler, 200, json.dumps(rows).encode())

    with LoopbackServer(overfull) as neo:
        neo_conn(neo, page_size=2)
        with pytest.raises(NeoProtocolError, match="3 rows, more than the count=2"):
            _read_event(NeoHook)
    assert len(neo.seen) == 1


def _trickling(handler: BaseHTTPRequestHandler) -> None:
    """A complete, valid answer, sent one byte every 50 ms: each read is quick, the whole slow."""
    body = json.dumps([scripted.allocation_row(1)]).encode()
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    try:
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass  # the client gave up, as it should


@pytest.mark.parametrize("hook_type", [NeoHook, NeoAsyncHook])
def test_timeout_is_a_deadline_for_the_whole_request_body_included(
    neo_conn: Callable[..., str], hook_type: type[NeoHook]
) -> None:
    with LoopbackServer(_trickling) as neo:
        neo_conn(neo, timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(NeoConnectionError, match=r"timeout=1 s|timed out"):
            _read_event(hook_type)
        took = time.monotonic() - started
    assert 0.9 < took < 1.6  # the body alone would take over a minute
    assert len(neo.seen) == 1


# A whole answer's status line and headers (and an empty page): 38 bytes before the body.
_HEAD_AND_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
_HEAD_BYTE_EVERY = 0.3  # seconds: each read is quick, the status line and headers ~11 s


def _trickling_headers(handler: BaseHTTPRequestHandler) -> None:
    """A valid answer whose status line and headers come one byte every 0.3 s."""
    try:
        for byte in _HEAD_AND_BODY:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(_HEAD_BYTE_EVERY)
    except OSError:
        pass  # the client gave up, as it should


@pytest.mark.parametrize("hook_type", [NeoHook, NeoAsyncHook])
def test_timeout_is_a_deadline_for_the_whole_request_headers_included(
    neo_conn: Callable[..., str], hook_type: type[NeoHook]
) -> None:
    trickle = len(_HEAD_AND_BODY) * _HEAD_BYTE_EVERY
    with LoopbackServer(_trickling_headers) as neo:
        neo_conn(neo, timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(NeoConnectionError, match=r"took longer than timeout=1 s"):
            _read_event(hook_type)
        took = time.monotonic() - started
    assert 0.9 < took < 1.6 < trickle / 4  # far below the time the headers take to trickle in
    assert len(neo.seen) == 1


@pytest.mark.parametrize("hook_type", [NeoHook, NeoAsyncHook])
def test_a_slow_body_within_the_timeout_is_read_whole(
    neo_conn: Callable[..., str], hook_type: type[NeoHook]
) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps([scripted.allocation_row(7)]).encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for part in (body[:10], body[10:]):
            handler.wfile.write(part)
            handler.wfile.flush()
            time.sleep(0.3)

    with LoopbackServer(slow) as neo:
        neo_conn(neo, timeout=2, max_retries=0)
        assert [row.id for row in _read_event(hook_type)] == [7]


def _expired_rows(*rows: tuple[int, str]) -> Callable[[BaseHTTPRequestHandler], None]:
    """expiredPoints answering these (customer_id, points) rows whoever is asked for."""
    body = json.dumps(
        [
            {"pointsExpiryDate": "2025-04-01 05:00:02.0", "customerId": customer,
             "programId": 2282, "points": points}
            for customer, points in rows
        ]
    ).encode()  # fmt: skip
    return lambda handler: _answer(handler, 200, body)


def test_expired_points_of_nan_fail_the_task_naming_the_field_and_the_row(
    neo_conn: Callable[..., str],
) -> None:
    with LoopbackServer(_expired_rows((1, "NaN"))) as neo:
        neo_conn(neo)
        op = ExpiredPointsOperator(task_id="expired", customer_ids=[1], year=2025)
        with pytest.raises(NeoProtocolError, match="points is NaN in the row with customer_id=1"):
            op.execute({})


def test_rows_of_customers_not_asked_for_are_dropped_and_counted_in_the_summary(
    neo_conn: Callable[..., str],
) -> None:
    with LoopbackServer(_expired_rows((1, "10"), (2, "500"))) as neo:
        neo_conn(neo)
        op = ExpiredPointsOperator(task_id="expired", customer_ids=[1], year=2025)
        rows = op.execute({})
    assert [row["customerId"] for row in rows] == [1]
    assert op.summary["points"] == "10"
    assert op.summary["rows_not_asked_for"] == 1
