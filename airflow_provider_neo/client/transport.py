"""One request of a hook within the connection's `timeout`, a deadline for the whole request,
status line, headers and body included: over requests for `NeoHook`, over httpx for
`NeoAsyncHook`."""

from __future__ import annotations

import asyncio
import heapq
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.models import PreparedRequest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

from airflow_provider_neo.client.actions import Failed, Received, Send


class _DeadlinePassed(TimeoutError):
    """The whole request took longer than the connection's `timeout`."""


def _too_late(timeout: float) -> Failed:
    """How a request that outlived its deadline fails, whichever part of it was slow (both hooks
    say the same); the exchange retries it like any other timeout."""
    return Failed(f"the answer took longer than timeout={timeout:g} s")


@dataclass
class _Deadline:
    """The deadline of the request a thread is sending."""

    at: float  # a time.monotonic() value
    passed: bool = False  # set when the connection was cut because `at` passed


# The request the current thread is sending: set by `send` around the adapter's send, which runs
# the connection below in that same thread (each worker of `bounded_map` sets its own).
_current_deadline: ContextVar[_Deadline | None] = ContextVar("neo_deadline", default=None)


def _cut(sock: Any, deadline: _Deadline) -> None:
    """Shut the connection down, so that a read blocked on it fails at once."""
    deadline.passed = True
    try:
        if isinstance(sock, socket.socket):
            # `socket.socket`'s own shutdown, not `SSLSocket.shutdown`: that one also drops the
            # TLS state under the thread reading it, which could then fail with a ValueError.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to cut


class _Watch:
    """A connection `_Watchdog` cuts when `deadline` passes, unless cancelled first."""

    __slots__ = ("cancelled", "deadline", "sock")

    def __init__(self, sock: Any, deadline: _Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.cancelled = False

    def __lt__(self, other: _Watch) -> bool:  # heap order: the earliest deadline first
        return self.deadline.at < other.deadline.at


class _Watchdog:
    """One thread per process that cuts connections whose request outlived its deadline.

    A timer thread per request cost a thread start and join on every request, about a fifth of
    the client's CPU. Here a request only pushes its deadline on a heap; the thread sleeps until
    the earliest one and is woken only when a new deadline is earlier than that, which with one
    `timeout` per hook is almost never. Cancelled entries are skipped when they surface, and the
    heap is compacted when they are most of it, so it stays as small as the requests in flight.
    """

    def __init__(self) -> None:
        self._forget()
        # A forked child (a Celery or LocalExecutor worker) has no thread: it starts its own.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._started = False
        self._starting = threading.Lock()

    def _start(self) -> None:
        with self._starting:
            if self._started:
                return
            self._cond = threading.Condition(threading.Lock())
            self._heap: list[_Watch] = []
            self._cancelled = 0  # cancelled entries still on the heap
            self._wake_at = float("inf")  # when the thread will next look at the heap
            threading.Thread(target=self._run, name="neo-deadlines", daemon=True).start()
            self._started = True

    def watch(self, sock: Any, deadline: _Deadline) -> _Watch:
        if not self._started:
            self._start()
        watch = _Watch(sock, deadline)
        with self._cond:
            heapq.heappush(self._heap, watch)
            if deadline.at < self._wake_at:
                self._cond.notify()
        return watch

    def cancel(self, watch: _Watch) -> None:
        """Once this returns, `watch`'s connection is not cut (cuts happen under the lock)."""
        with self._cond:
            watch.cancelled = True
            self._cancelled += 1
            if self._cancelled > 256 and 2 * self._cancelled > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry.cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        heap_pop = heapq.heappop
        with self._cond:
            while True:
                while self._heap and self._heap[0].cancelled:
                    heap_pop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._wake_at = float("inf")
                    self._cond.wait()
                    continue
                first = self._heap[0]
                left = first.deadline.at - time.monotonic()
                if left > 0:
                    self._wake_at = first.deadline.at
                    self._cond.wait(left)
                    continue
                heap_pop(self._heap)
                _cut(first.sock, first.deadline)


_WATCHDOG = _Watchdog()


@contextmanager
def _cut_at_deadline(sock: Any) -> Iterator[None]:
    """Cut `sock` if the current request's deadline passes before the block ends.

    requests' `timeout` only bounds each socket read, so a server that sends its status line and
    headers a byte at a time could hold a request for ever; the watchdog bounds them all
    together.
    """
    deadline = _current_deadline.get()
    if deadline is None or sock is None:
        yield
        return
    watch = _WATCHDOG.watch(sock, deadline)
    try:
        yield
    finally:
        # No late cut hits the socket once the headers are in (the body is bounded by
        # `_read_body_before`).
        _WATCHDOG.cancel(watch)


class _DeadlineHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        with _cut_at_deadline(self.sock):
            return super().getresponse()


class _DeadlineHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        with _cut_at_deadline(self.sock):
            return super().getresponse()


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS = {"http": _DeadlineHTTPConnectionPool, "https": _DeadlineHTTPSConnectionPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections that keep `_current_deadline` while awaiting headers
    (pooling, TLS verification and everything else as usual)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _DEADLINE_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.ProxyManager:
        manager: urllib3.ProxyManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager has pools of its own
            manager.pool_classes_by_scheme = _DEADLINE_POOLS
        return manager


# Transport failures worth another try; anything else from requests is a bug to surface.
_REQUESTS_FAILURES = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


# Failures while reading a streamed body (urllib3's own, raised past requests).
_BODY_FAILURES = (urllib3.exceptions.HTTPError, OSError, _DeadlinePassed)


def _read_body_before(response: requests.Response, deadline: float, timeout: float) -> bytes:
    """The whole body of a streamed `response`, or `_DeadlinePassed` once `deadline` (a
    `time.monotonic()` value) passes: each socket read may only wait for the time left, so a
    body trickling in byte by byte cannot keep a request alive past `timeout`."""
    raw = response.raw
    sock = getattr(raw.connection, "sock", None)
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed(f"the answer took longer than timeout={timeout:g} s")
        if sock is not None:
            sock.settimeout(left)
        chunk = raw.read1(65_536, decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
    if sock is not None:
        sock.settimeout(timeout)  # the pooled connection's next request starts afresh
    raw.release_conn()
    return b"".join(chunks)


def _prepare(session: requests.Session, action: Send, headers: dict[str, str]) -> PreparedRequest:
    """The request `session.request` would send for `action`, built with a fifth of its CPU:
    the session's settings are fixed when it is made (`open_session`), so there is nothing
    to merge, and cookies are processed only once the server has set one."""
    request = PreparedRequest()
    request.prepare_method(action.method)
    request.prepare_url(action.url, None)
    request.prepare_headers({**session.headers, **headers})
    if session.cookies:
        request.prepare_cookies(session.cookies)
    request.prepare_body(None, None, action.json_body)
    return request


def _environment_proxies(base_url: str) -> dict[str, str]:
    """The proxies requests would use for `base_url` from the environment (HTTP(S)_PROXY,
    ALL_PROXY), or none when NO_PROXY names its host."""
    return requests.utils.get_environ_proxies(base_url)


def _environment_verify(verify_tls: bool) -> bool | str:
    """What requests would verify TLS with: the CA bundle the environment names
    (REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE), else the default one; nothing when off."""
    if not verify_tls:
        return False
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def open_session(
    base_url: str, *, verify_tls: bool, pool_size: int, user_agent: str
) -> requests.Session:
    """A pooled session for the requests of one hook, all to `base_url`, `pool_size` at a time."""
    session = requests.Session()
    adapter = _DeadlineAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    # requests reads the environment (proxies, NO_PROXY, the CA bundle, ~/.netrc) again on every
    # request, a quarter of the client's CPU; every request of a hook goes to one host, so read
    # it once here, and let requests read it no more.
    session.trust_env = False
    session.proxies = _environment_proxies(base_url)
    session.verify = _environment_verify(verify_tls)
    return session


def send(
    session: requests.Session, action: Send, headers: dict[str, str], timeout: float
) -> Received | Failed:
    """Perform `action` with `headers` on `session`, its answer whole within `timeout` seconds.

    The connection is cut when the deadline passes while the status line and headers are awaited
    (`_cut_at_deadline`), and the body is read against it (`_read_body_before`).
    """
    request = _prepare(session, action, headers)
    deadline = _Deadline(time.monotonic() + timeout)
    context = _current_deadline.set(deadline)
    try:
        # The adapter, not `session.send`: a redirect is the exchange's protocol error (never
        # followed), and no hooks are registered.
        response = session.get_adapter(action.url).send(
            request,
            stream=True,  # the body is read against the deadline below
            timeout=timeout,
            verify=True if session.verify is None else session.verify,
            proxies=session.proxies,
        )
    except _REQUESTS_FAILURES as exc:
        return _too_late(timeout) if deadline.passed else Failed(f"{type(exc).__name__}: {exc}")
    finally:
        _current_deadline.reset(context)
    try:
        body = _read_body_before(response, deadline.at, timeout)
    except _BODY_FAILURES as exc:
        response.close()
        if deadline.passed or isinstance(exc, _DeadlinePassed):
            return _too_late(timeout)
        return Failed(f"{type(exc).__name__}: {exc}")
    if "set-cookie" in response.headers:  # a load balancer's sticky cookie, say
        extract_cookies_to_jar(session.cookies, request, response.raw)  # type: ignore[no-untyped-call]
    return Received(response.status_code, response.headers, body)


async def asend(
    client: httpx.AsyncClient, action: Send, headers: dict[str, str], timeout: float
) -> Received | Failed:
    """Perform `action` with `headers` on `client`, its answer whole within `timeout` seconds."""
    try:
        # httpx's timeouts are per socket operation; this one bounds the whole request.
        response = await asyncio.wait_for(
            client.request(
                action.method,
                action.url,
                headers=headers,
                json=action.json_body,
                follow_redirects=False,  # a redirect is the exchange's protocol error
            ),
            timeout,
        )
    except httpx.TransportError as exc:
        return Failed(f"{type(exc).__name__}: {exc}")
    except asyncio.TimeoutError:
        return _too_late(timeout)
    return Received(response.status_code, response.headers, response.content)
