"""NeoHook reads the proxy settings of its environment once per session, not once per request,
and prepares its requests itself: a proxy in the environment still carries every request,
NO_PROXY for Neo's host still bypasses it, a CA bundle named in the environment still verifies
TLS, and a cookie the server sets (a load balancer's sticky cookie) still comes back."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_neo.hooks.neo import NeoHook
from tests.harness import AS_OF, LoopbackServer, RunningSimulator

CUSTOMERS = range(400000001, 400000011)
QUERY: dict[str, Any] = {
    "program_id": 2282,
    "point_category_id": 17383,
    "expiry_start": AS_OF.isoformat(),
    "expiry_end": "2027-11-21",
}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _forward(handler: BaseHTTPRequestHandler) -> None:
    """A forward proxy: a request for an absolute URL is sent on to its host, and answered with
    that host's answer."""
    target = urlsplit(handler.path)
    assert target.hostname, f"not a proxy request: {handler.path}"
    upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
    hop_by_hop = {"host", "connection", "proxy-connection", "keep-alive"}
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in hop_by_hop}
    upstream.request(handler.command, f"{target.path}?{target.query}", headers=headers)
    answer = upstream.getresponse()
    body = answer.read()
    upstream.close()
    handler.send_response(answer.status)
    handler.send_header("Content-Type", answer.getheader("content-type") or "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def _read(simulator: RunningSimulator) -> tuple[list[int], int]:
    """Ten customers' allocations by id, and the requests the hook sent."""
    hook = NeoHook()
    ids = sorted(row.id for row in hook.iter_expiring_allocations(CUSTOMERS, **QUERY))
    return ids, hook.stats.requests


def test_a_proxy_in_the_environment_carries_every_request(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    neo_conn(simulator, max_concurrency=4)
    direct, _ = _read(simulator)
    with LoopbackServer(_forward) as proxy:
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        proxied, sent = _read(simulator)
    assert direct
    assert proxied == direct
    assert len(proxy.seen) == sent >= len(CUSTOMERS)
    assert all(seen.path.startswith(simulator.url + "/") for seen in proxy.seen)


def test_no_proxy_naming_the_host_bypasses_the_proxy(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    neo_conn(simulator)
    with LoopbackServer(_forward) as proxy:
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        clean_proxy_env.setenv("NO_PROXY", f"example.com,{urlsplit(simulator.url).hostname}")
        ids, _ = _read(simulator)
    assert ids
    assert proxy.seen == []


@pytest.mark.parametrize(
    ("verify_tls", "bundles", "verify"),
    [
        (True, {}, True),
        (True, {"REQUESTS_CA_BUNDLE": "/etc/ca/neo.pem"}, "/etc/ca/neo.pem"),
        (True, {"CURL_CA_BUNDLE": "/etc/ca/curl.pem"}, "/etc/ca/curl.pem"),
        (False, {"REQUESTS_CA_BUNDLE": "/etc/ca/neo.pem"}, False),
    ],
)
def test_the_session_verifies_tls_as_the_environment_and_connection_say(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    verify_tls: bool,
    bundles: dict[str, str],
    verify: bool | str,
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in bundles.items():
        monkeypatch.setenv(name, value)
    neo_conn(simulator, verify_tls=verify_tls)
    session = NeoHook().get_conn()
    assert session.verify == verify
    assert session.trust_env is False  # read once, above: requests reads it no more


def test_a_cookie_the_server_sets_comes_back_on_the_next_requests(
    neo_conn: Callable[..., str],
) -> None:
    def sticky(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        if "Cookie" not in handler.headers:
            handler.send_header("Set-Cookie", "AWSALB=node-2; Path=/")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"[]")

    with LoopbackServer(sticky) as neo:
        neo_conn(neo, max_concurrency=1)
        assert list(NeoHook().iter_expired_points([1, 2, 3], year=2025)) == []
    assert "Cookie" not in neo.seen[0].headers
    assert [seen.headers.get("Cookie") for seen in neo.seen[1:]] == ["AWSALB=node-2"] * 2
