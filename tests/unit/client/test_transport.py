"""The transport on its own, against a loopback HTTP server: a session read from the environment
once, requests sent as prepared and never redirected, and the deadline's parts (the watchdog that
cuts a connection, the body read against the time left), each pinned by what it does, not by
how long it takes."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from requests.adapters import HTTPAdapter

from airflow_provider_neo.client.actions import Failed, Received, Send
from airflow_provider_neo.client.transport import (
    _current_deadline,
    _cut_at_deadline,
    _Deadline,
    _DeadlinePassed,
    _read_body_before,
    _Watchdog,
    asend,
    open_session,
    send,
)
from tests.harness import LoopbackServer

USER_AGENT = "airflow-provider-neo/test"
ROWS = json.dumps([{"id": 1}, {"id": 2}]).encode()
# How long a test waits for the watchdog before it fails instead of hanging: never reached when
# the watchdog works, since each wait ends as soon as the connection is cut.
GUARD_SECONDS = 10
ENVIRONMENT = (
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
    "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _rows(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(ROWS)))
    handler.end_headers()
    handler.wfile.write(ROWS)


def _rows_kept_alive(handler: BaseHTTPRequestHandler) -> None:
    """The rows as an HTTP/1.1 answer, whose connection the client keeps for its pool."""
    handler.protocol_version = "HTTP/1.1"
    _rows(handler)


def _redirect(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(302)
    handler.send_header("Location", "http://elsewhere.example/")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected sockets: the client's end, which the watchdog may cut, and the server's."""
    client, server = socket.socketpair()
    client.settimeout(GUARD_SECONDS)
    try:
        yield client, server
    finally:
        client.close()
        server.close()


def _is_cut(sock: socket.socket) -> bool:
    """Whether `sock` was shut down: a read on it then ends at once, with nothing."""
    return sock.recv(1) == b""


# --- the session ---------------------------------------------------------------------------


def test_a_session_reads_proxies_and_the_ca_bundle_once_and_trusts_the_environment_no_more(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    clean_environment.setenv("CURL_CA_BUNDLE", "/etc/ca/curl.pem")
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ca/neo.pem")
    session = open_session(
        "https://neo.example", verify_tls=True, pool_size=6, user_agent=USER_AGENT
    )
    assert session.proxies == {"https": "http://proxy.example:3128"}
    assert session.verify == "/etc/ca/neo.pem"  # REQUESTS_CA_BUNDLE before CURL_CA_BUNDLE
    assert session.trust_env is False
    assert session.headers["User-Agent"] == USER_AGENT
    adapter = session.get_adapter("https://neo.example/v1")
    assert isinstance(adapter, HTTPAdapter)
    assert session.get_adapter("http://neo.example/v1") is adapter
    assert adapter.poolmanager.connection_pool_kw["maxsize"] == 6


@pytest.mark.parametrize(
    ("verify_tls", "bundles", "verify"),
    [
        (True, {}, True),
        (True, {"CURL_CA_BUNDLE": "/etc/ca/curl.pem"}, "/etc/ca/curl.pem"),
        (False, {"REQUESTS_CA_BUNDLE": "/etc/ca/neo.pem"}, False),
    ],
)
def test_a_session_verifies_tls_as_the_environment_and_connection_say(
    clean_environment: pytest.MonkeyPatch,
    verify_tls: bool,
    bundles: dict[str, str],
    verify: bool | str,
) -> None:
    for name, value in bundles.items():
        clean_environment.setenv(name, value)
    session = open_session(
        "https://neo.example", verify_tls=verify_tls, pool_size=1, user_agent=USER_AGENT
    )
    assert session.verify == verify


def test_no_proxy_naming_neos_host_leaves_the_session_without_proxies(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    clean_environment.setenv("NO_PROXY", "other.example,neo.example")
    session = open_session(
        "https://neo.example", verify_tls=True, pool_size=1, user_agent=USER_AGENT
    )
    assert session.proxies == {}


# --- sending -------------------------------------------------------------------------------


def test_a_request_is_sent_as_prepared_and_its_answer_received_whole(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    with LoopbackServer(_rows) as neo:
        session = open_session(neo.url, verify_tls=True, pool_size=1, user_agent=USER_AGENT)
        action = Send("POST", f"{neo.url}/v1/x?a=1", {"Accept": "application/json"}, {"k": "v"})
        reply = send(session, action, {**action.headers, "Authorization": "Basic eA=="}, 5)
    assert isinstance(reply, Received)
    assert (reply.status, reply.body) == (200, ROWS)
    assert reply.headers["content-type"] == "application/json"
    (seen,) = neo.seen
    assert (seen.method, seen.path) == ("POST", "/v1/x?a=1")
    assert json.loads(seen.body) == {"k": "v"}
    assert seen.headers["User-Agent"] == USER_AGENT  # the session's, with the request's own
    assert seen.headers["Authorization"] == "Basic eA=="
    assert "Cookie" not in seen.headers


def test_a_redirect_is_received_as_it_is_and_never_followed(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    with LoopbackServer(_redirect) as neo:
        session = open_session(neo.url, verify_tls=True, pool_size=1, user_agent=USER_AGENT)
        reply = send(session, Send("GET", f"{neo.url}/v1/x", {}), {}, 5)
    assert isinstance(reply, Received)
    assert (reply.status, reply.headers["location"]) == (302, "http://elsewhere.example/")
    assert len(neo.seen) == 1


def test_a_refused_connection_is_a_failure_naming_requests_error(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as unused:  # a port nothing listens on once it is closed
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    session = open_session(url, verify_tls=True, pool_size=1, user_agent=USER_AGENT)
    reply = send(session, Send("GET", f"{url}/v1/x", {}), {}, 5)
    assert isinstance(reply, Failed)
    assert reply.description.startswith("ConnectionError: ")


def test_the_async_transport_receives_the_same_answers_and_follows_no_redirect() -> None:
    async def both(url: str) -> tuple[Received | Failed, Received | Failed]:
        async with httpx.AsyncClient() as client:
            rows = await asend(client, Send("GET", f"{url}/v1/rows", {}), {}, 5)
            moved = await asend(client, Send("GET", f"{url}/v1/moved", {}), {}, 5)
        return rows, moved

    def answer(handler: BaseHTTPRequestHandler) -> None:
        (_rows if handler.path == "/v1/rows" else _redirect)(handler)

    with LoopbackServer(answer) as neo:
        rows, moved = asyncio.run(both(neo.url))
    assert isinstance(rows, Received)
    assert (rows.status, rows.body) == (200, ROWS)
    assert isinstance(moved, Received)
    assert moved.status == 302
    assert [seen.path for seen in neo.seen] == ["/v1/rows", "/v1/moved"]


# --- the deadline --------------------------------------------------------------------------


def test_a_body_is_read_whole_before_the_deadline_and_its_socket_reset_to_the_timeout(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    with LoopbackServer(_rows_kept_alive) as neo:
        session = open_session(neo.url, verify_tls=True, pool_size=1, user_agent=USER_AGENT)
        response = session.get(f"{neo.url}/v1/x", stream=True, timeout=2.5)
        connection = response.raw.connection
        assert connection is not None
        assert connection.sock is not None
        sock = connection.sock
        sock.settimeout(0.5)  # as if an earlier read had been given the time left
        body = _read_body_before(response, time.monotonic() + 60, 2.5)
    assert body == ROWS
    assert sock.gettimeout() == 2.5  # the pooled connection's next request starts afresh


def test_a_body_is_not_read_once_the_deadline_has_passed(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    with LoopbackServer(_rows) as neo:
        session = open_session(neo.url, verify_tls=True, pool_size=1, user_agent=USER_AGENT)
        response = session.get(f"{neo.url}/v1/x", stream=True, timeout=2.5)
        with pytest.raises(_DeadlinePassed, match=r"took longer than timeout=0\.25 s"):
            _read_body_before(response, time.monotonic() - 0.001, 0.25)
        response.close()


def test_a_connection_whose_deadline_passes_while_awaiting_headers_is_cut_and_marked(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = pair
    deadline = _Deadline(time.monotonic() - 1)
    context = _current_deadline.set(deadline)
    try:
        with _cut_at_deadline(client):
            assert _is_cut(client)  # a read blocked on it ends when the watchdog cuts it
    finally:
        _current_deadline.reset(context)
    assert deadline.passed


def test_a_connection_is_left_alone_without_a_deadline_or_before_it_passes(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    with _cut_at_deadline(client):  # no request deadline set in this thread: nothing watched
        server.sendall(b"a")
        assert client.recv(1) == b"a"
    deadline = _Deadline(time.monotonic() + 3600)
    context = _current_deadline.set(deadline)
    try:
        with _cut_at_deadline(client):
            server.sendall(b"b")
            assert client.recv(1) == b"b"
    finally:
        _current_deadline.reset(context)
    server.sendall(b"c")
    assert client.recv(1) == b"c"
    assert not deadline.passed


def test_the_watchdog_cuts_an_earlier_deadline_first_whatever_order_they_came_in(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    late_client, late_server = pair
    early_client, early_server = socket.socketpair()
    early_client.settimeout(GUARD_SECONDS)
    watchdog = _Watchdog()
    late = _Deadline(time.monotonic() + 3600)
    early = _Deadline(time.monotonic() - 1)
    try:
        late_watch = watchdog.watch(late_client, late)
        watchdog.watch(early_client, early)  # earlier than the one the thread sleeps until
        assert _is_cut(early_client)
        watchdog.cancel(late_watch)
        late_server.sendall(b"x")
        assert late_client.recv(1) == b"x"
    finally:
        early_client.close()
        early_server.close()
    assert (early.passed, late.passed) == (True, False)


def test_cancelled_watches_never_pile_up_on_the_watchdogs_heap(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, _ = pair
    watchdog = _Watchdog()
    far = _Deadline(time.monotonic() + 3600)
    most = 0
    for _ in range(1_000):
        watchdog.cancel(watchdog.watch(client, far))
        most = max(most, len(watchdog._heap))
    assert most <= 256  # compacted once cancelled entries are most of it
    assert not far.passed
