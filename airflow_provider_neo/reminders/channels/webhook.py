"""A webhook that hands JSON batches of reminders to any engagement tool, through an Airflow HTTP
connection as the HTTP provider reads it.

The receiver is trusted with customers' data, so the channel sends them nowhere else and keeps
the connection's secrets out of every log and error: a redirect is never followed (a 3xx fails
the batch), one deadline bounds the whole exchange (connect, send, status line, headers, body),
at most `max_answer_bytes` of an answer are read, and the password, the connection's header
values and the URL's query are handed to Airflow's secrets masker; no error quotes a header or
the answer's body, which could echo them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_neo.reminders.channels.base import (
    OutgoingReminder,
    RejectedReminders,
    ReminderChannel,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT_SECONDS = 30.0
# The statuses by which a receiver says the batch's records are bad, so that sending them again
# cannot help: 400 Bad Request and 422 Unprocessable Content. 409 Conflict is not one of them:
# under the Idempotency-Key draft it says a request with the same key is still being processed.
REFUSED_FOR_GOOD = frozenset({400, 422})


class WebhookFailed(RuntimeError):
    """The batch was not accepted and may be sent again (a retry of the task does)."""


class WebhookReminder(msgspec.Struct, kw_only=True):
    """One reminder as the webhook receives it; `idempotency_key` is its sent-ledger key, the
    same on every retry, so a receiver can drop what it has already taken."""

    idempotency_key: str
    customer_id: int
    email: str
    mobile: str
    first_name: str
    lead_days: int
    expiry_date: str
    points: str
    programs: dict[str, str]
    subject: str
    text: str
    unsubscribe_url: str

    @classmethod
    def of(cls, outgoing: OutgoingReminder) -> WebhookReminder:
        r = outgoing.reminder
        return cls(
            idempotency_key=r.key, customer_id=r.customer_id, email=r.email, mobile=r.mobile,
            first_name=r.first_name, lead_days=r.lead_days, expiry_date=r.expiry_date.isoformat(),
            points=str(r.remaining_points), programs={k: str(v) for k, v in r.programs.items()},
            subject=outgoing.subject, text=outgoing.text, unsubscribe_url=outgoing.unsubscribe_url,
        )  # fmt: skip


def idempotency_key(batch: Sequence[OutgoingReminder]) -> str:
    """The batch's ``Idempotency-Key``: derived from its reminders' ledger keys alone, so the same
    reminders carry the same key on every retry, whatever the rendered messages."""
    keys = "\n".join(outgoing.key for outgoing in batch)
    return hashlib.sha256(keys.encode()).hexdigest()[:40]


class _Exchange:
    """The deadline of one request: when it passes, the connection's socket is shut down, so
    that whatever read or write is blocked on it (the status line, headers or body trickling
    in) fails at once. requests' own timeout bounds each socket operation, not their sum."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.passed = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._over = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def attach(self, sock: socket.socket | None) -> None:
        """Called by the connection once it has its socket (a new or a pooled one)."""
        if sock is None:
            return
        with self._lock:
            self._socket = sock
            if self.passed:
                _shut(sock)

    def _cut(self) -> None:
        with self._lock:
            if self._over:
                return
            self.passed = True
            if self._socket is not None:
                _shut(self._socket)

    def __enter__(self) -> _Exchange:
        self._token = _current_exchange.set(self)
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:  # once this returns, no late cut reaches a pooled connection
            self._over = True
        self._timer.cancel()
        _current_exchange.reset(self._token)


def _shut(sock: socket.socket) -> None:
    # `socket.socket`'s own shutdown, also for TLS sockets: `SSLSocket.shutdown` would drop the
    # TLS state under the thread reading it. An OSError: already closed.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# The request the current thread is sending: set around `session.post`, which opens and uses
# the connection below in this same thread.
_current_exchange: ContextVar[_Exchange | None] = ContextVar("webhook_exchange", default=None)


def _attach(sock: Any) -> None:
    exchange = _current_exchange.get()
    if exchange is not None and isinstance(sock, socket.socket):
        exchange.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)  # a pooled connection: connected before this exchange
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections hand their socket to the current `_Exchange`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.ProxyManager:
        manager: urllib3.ProxyManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager has pools of its own
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def _join(base_url: str, endpoint: str) -> str:
    """`endpoint` (a path, perhaps with a query) under the connection's URL (perhaps with a
    path and a query of its own)."""
    base, extra = urlsplit(base_url), urlsplit(endpoint)
    path = base.path.rstrip("/")
    if extra.path.strip("/"):
        path = f"{path}/{extra.path.lstrip('/')}"
    query = "&".join(part for part in (base.query, extra.query) if part)
    return urlunsplit((base.scheme, base.netloc, path or "/", query, ""))


def _described(url: str) -> str:
    """The receiver as errors name it: scheme, host and port; no credentials, no query, and no
    path either (webhook URLs often carry their token in the path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}"


class WebhookChannel(ReminderChannel):
    """JSON batches ``{"reminders": [...]}`` POSTed to the receiver of the Airflow HTTP
    connection `http_conn_id` (read by the HTTP provider's `HttpHook`: host or a full URL,
    schema, port, login and password for Basic auth, extra headers, ``verify``, proxies), at
    `endpoint` under it. Each batch carries an ``Idempotency-Key`` header derived from its
    reminders' keys, the same on every retry.

    A 2xx answer, whole within the deadline, accepts the batch. A 3xx is never followed and
    fails it, like a 5xx, a 409, a 429 or no whole answer in time: the batch is released and the
    task's retry sends it again, with the same ``Idempotency-Key``. 400 and 422 say the records
    are bad: the batch's reminders are refused for good (`RejectedReminders`), each with the
    status as its reason; to keep one bad record from refusing others, give such a receiver
    smaller batches.

    :param timeout: the deadline of one batch's whole exchange, in seconds; by default the
        connection's extra ``timeout``, else 30. It must be shorter than the delivery's
        ``claim_lease_seconds``.
    :param max_answer_bytes: how much of an answer's body is read, to its end or this far; the
        body is not used, and the connection is closed after each batch.
    """

    name = "webhook"
    medium = "email"  # the engagement tool is handed the email address; email consent applies
    template_fields: Sequence[str] = ("http_conn_id", "endpoint", "batch_size")
    location_fields: Sequence[str] = ("http_conn_id", "endpoint")

    def __init__(
        self,
        *,
        http_conn_id: str,
        endpoint: str = "",
        batch_size: int = 100,
        timeout: float | None = None,
        max_answer_bytes: int = 65_536,
    ) -> None:
        if not http_conn_id:
            raise ValueError("http_conn_id: the webhook's receiver is an Airflow HTTP connection")
        if timeout is not None and not 0 < timeout < float("inf"):
            raise ValueError(f"timeout: expected a number of seconds above 0, got {timeout!r}")
        if max_answer_bytes < 0:
            raise ValueError(f"max_answer_bytes: expected 0 or more, got {max_answer_bytes!r}")
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.session: requests.Session | None = None
        self.target = ""
        self.described = ""
        self._deadline = timeout

    @property
    def send_deadline_seconds(self) -> float | None:
        return self._deadline

    def open(self) -> None:
        from airflow.providers.common.compat.sdk import mask_secret
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="POST", http_conn_id=self.http_conn_id)
        connection = hook.get_connection(self.http_conn_id)
        defaults = requests.utils.default_headers()
        session = hook.get_conn()  # sets hook.base_url from the connection
        for secret in (connection.password, urlsplit(hook.base_url).password):
            if secret:
                mask_secret(secret)
        if connection.login and connection.password:
            credentials = f"{connection.login}:{connection.password}".encode("latin-1", "replace")
            mask_secret(base64.b64encode(credentials).decode())
        for header, value in session.headers.items():
            if defaults.get(header) != value and isinstance(value, str):
                mask_secret(value)  # the connection's headers: an API key, an Authorization
        self.target = _join(hook.base_url, self.endpoint)
        for _, value in parse_qsl(urlsplit(self.target).query):
            mask_secret(value)  # a token in the query string
        self.described = f"{_described(self.target)} (connection {self.http_conn_id!r})"
        if self.timeout is None:
            configured = connection.extra_dejson.get("timeout")
            self._deadline = float(configured) if configured else DEFAULT_TIMEOUT_SECONDS
        adapter = _WatchedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def send(self, batch: list[OutgoingReminder]) -> None:
        if self.session is None:
            raise RuntimeError("WebhookChannel.send before open()")
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # the answer is counted in bytes as sent
            IDEMPOTENCY_HEADER: idempotency_key(batch),
        }
        body = msgspec.json.encode({"reminders": [WebhookReminder.of(o) for o in batch]})
        deadline = self._deadline or DEFAULT_TIMEOUT_SECONDS
        what = f"a batch of {len(batch)} reminders to {self.described}"
        started = time.monotonic()
        failure = ""
        with _Exchange(deadline) as exchange:
            try:
                response = self.session.post(
                    self.target, data=body, headers=headers, timeout=(deadline, deadline),
                    allow_redirects=False, stream=True,
                )  # fmt: skip
                try:
                    self._drain(response)
                finally:
                    response.close()
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                # The exception's own text names the URL, query included: its type only, and
                # raised outside this block, so that it is not chained to the error either.
                failure = type(exc).__name__
        if exchange.passed:
            raise WebhookFailed(f"webhook: no whole answer to {what} within timeout={deadline:g} s")
        if failure:
            raise WebhookFailed(
                f"webhook: {failure} sending {what} after {time.monotonic() - started:.1f} s"
            )
        status = response.status_code
        if 200 <= status < 300:
            return
        meaning = _phrase(status)
        if status in REFUSED_FOR_GOOD:
            raise RejectedReminders(
                {
                    o.key: f"webhook answered {status} {meaning}: the record is refused"
                    for o in batch
                }
            )
        if 300 <= status < 400:
            raise WebhookFailed(f"webhook answered {status} {meaning} to {what}: not followed")
        raise WebhookFailed(f"webhook answered {status} {meaning} to {what}")

    def _drain(self, response: requests.Response) -> None:
        """Read at most `max_answer_bytes` of the answer, so that the connection may serve the
        next batch; what is beyond is left, and the connection closed with it."""
        left = self.max_answer_bytes
        while left > 0:
            chunk = response.raw.read(min(left, 16_384), decode_content=False)
            if not chunk:
                return
            left -= len(chunk)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def _phrase(status: int) -> str:
    """The status's standard phrase; the receiver's own reason text is not repeated."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(unknown status)"
