"""`NeoHook` and `NeoAsyncHook`: the provider's clients for Capillary's Neo points API.

Both read the `neo` connection the same way and drive the same exchange
(`airflow_provider_neo.client.exchange`), which holds every rule about retries, tokens, errors and
paging. `NeoHook` performs it with one pooled `requests.Session` and a bounded thread pool;
`NeoAsyncHook`, its subclass for triggers, with `httpx`, reusing its queries, credentials and
OAuth token. Each request goes through `airflow_provider_neo.client.transport`, which holds it to
the connection's `timeout`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import httpx
import requests
from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_neo import __version__
from airflow_provider_neo.client import transport
from airflow_provider_neo.client.actions import (
    Exchange,
    Failed,
    RateLimited,
    Received,
    RenewToken,
    Reply,
    Reserve,
    Reserved,
    Send,
    Sleep,
)
from airflow_provider_neo.client.backoff import Backoff
from airflow_provider_neo.client.batching import customer_id_stream, id_batches
from airflow_provider_neo.client.concurrency import bounded_map
from airflow_provider_neo.client.errors import (
    NeoAuthError,
    NeoBadRequestError,
    NeoConnectionError,
    NeoError,
)
from airflow_provider_neo.client.exchange import NeoExchange, RequestStats
from airflow_provider_neo.client.ratelimit import RateBudget, open_rate_budget
from airflow_provider_neo.client.tokens import TokenCache
from airflow_provider_neo.compat import mask_secret
from airflow_provider_neo.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    FORM_FIELDS,
    HOOK_NAME,
    UI_FIELD_BEHAVIOUR,
    NeoConnectionSettings,
    connection_extra,
    unknown_key_warnings,
)
from airflow_provider_neo.endpoints import (
    EVENT_ALLOCATIONS,
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    MESSAGE_CHANNELS,
    OAUTH_TOKEN_HEADER,
    POINTS_AWARDED,
    SCOPE_HEADER,
    SEND_MESSAGE_PATH,
    Endpoint,
    InvalidParameter,
)
from airflow_provider_neo.records import (
    ExpiredPoints,
    PointsAllocation,
    PointsAwardedSummary,
    with_query_status,
)

if TYPE_CHECKING:
    import datetime as dt

    DateLike = dt.date | dt.datetime | str

T = TypeVar("T")
# What the iter_* methods return: a lazy stream that `close()` stops early, threads and all.
Records = Generator[T, None, None]
USER_AGENT = f"airflow-provider-neo/{__version__}"
CONNECTION_TEST_QUERY = {
    "entity_id": "airflow-connection-test",
    "customer_id": "1",
    "event_type_id": "15",
    "page": "1",
    "count": "1",
}


def _budget_reply(budget: RateBudget, action: Reserve | RateLimited) -> Reply:
    """Perform a rate-budget action of an exchange (both drivers share this)."""
    if isinstance(action, Reserve):
        return Reserved(budget.reserve())
    if action.pause_seconds is not None:
        budget.pause(action.pause_seconds)
    budget.slow_down()
    return None


def _query(endpoint: Endpoint[Any], arguments: dict[str, tuple[str, Any]]) -> dict[str, str]:
    """Validate a call's arguments against `endpoint`, naming the caller's argument on error.

    `arguments` maps each query parameter to (the argument it came from, its value).
    """
    try:
        return endpoint.build_query({param: value for param, (_, value) in arguments.items()})
    except InvalidParameter as exc:
        names = {param: argument for param, (argument, _) in arguments.items()}
        reason = exc.reason
        for param, argument in names.items():
            reason = re.sub(rf"\b{param}\b", argument, reason)
        raise InvalidParameter(names.get(exc.parameter, exc.parameter), reason) from None


@dataclass(frozen=True)
class PointsAwardedQuery:
    """One paIds question asked of many customers: a program's point category, an expiry window
    and the status (see `NeoHook.iter_points_awarded_queries`)."""

    program_id: int
    point_category_id: int
    expiry_start: DateLike
    expiry_end: DateLike
    status: str = "AVAILABLE"
    org_id: int | None = None


@dataclass(frozen=True)
class _Connected:
    """What a hook builds from its connection, once: the settings and what depends on them."""

    settings: NeoConnectionSettings
    rate_budget: RateBudget
    exchange: NeoExchange
    warnings: tuple[str, ...]  # about the connection itself, such as unknown keys


class NeoHook(BaseHook):
    """Reads Capillary Neo's loyalty-points endpoints.

    :param neo_conn_id: the `neo` connection (host, auth, scope, time zone, limits).
    :param overrides: connection extra fields to override for this hook, e.g.
        ``max_concurrency=16``, ``requests_per_minute=90`` or
        ``rate_limit_storage="redis://redis:6379/0"``; checked like the connection.

    Every ``iter_*`` method checks its arguments before any request (a ``ValueError`` names
    the argument), then yields typed records lazily, across every page and customer.
    """

    conn_name_attr = "neo_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(self, neo_conn_id: str = DEFAULT_CONN_ID, **overrides: Any) -> None:
        super().__init__()
        self.neo_conn_id = neo_conn_id
        self.overrides = overrides
        self.stats = RequestStats()
        self._tokens = TokenCache()
        self._connected: _Connected | None = None  # read from the connection on first use
        self._session: requests.Session | None = None

    # --- Airflow's connection form (3.1; 3.2+ reads the declarative fields instead) ---------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from wtforms import BooleanField, IntegerField, PasswordField, StringField

        widgets: dict[str, Any] = {}
        for f in FORM_FIELDS:
            if f.secret:
                widget_class: Any = PasswordField
            else:
                widget_class = {"boolean": BooleanField, "integer": IntegerField}.get(
                    f.type, StringField
                )
            widgets[f.name] = widget_class(f.label, description=f.description, default=f.default)
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return UI_FIELD_BEHAVIOUR

    # --- settings and plumbing -------------------------------------------------------------

    def _connect(self, conn: Any) -> _Connected:
        """Read `conn` into this hook's settings, rate budget and exchange."""
        settings = NeoConnectionSettings.from_connection(conn, self.overrides)
        for secret in settings.secrets():
            mask_secret(secret)
        warnings = unknown_key_warnings(connection_extra(conn, self.overrides))
        for warning in warnings:
            self.log.warning("Connection %s: %s", self.neo_conn_id, warning)
        exchange = self._new_exchange(settings, settings.max_retries)
        self._connected = _Connected(settings, open_rate_budget(settings), exchange, warnings)
        return self._connected

    @property
    def _connection(self) -> _Connected:
        """What the connection gives, read on first use."""
        if self._connected is None:
            return self._connect(self.get_connection(self.neo_conn_id))
        return self._connected

    def _new_exchange(self, settings: NeoConnectionSettings, max_retries: int) -> NeoExchange:
        backoff = Backoff(
            max_retries=max_retries,
            base_seconds=settings.backoff_base_seconds,
            max_seconds=settings.backoff_max_seconds,
            rate_limit_max_wait_seconds=settings.rate_limit_max_wait_seconds,
        )
        return NeoExchange(settings, stats=self.stats, backoff=backoff)

    @property
    def settings(self) -> NeoConnectionSettings:
        return self._connection.settings

    @property
    def rate_budget(self) -> RateBudget:
        """The requests-per-minute budget: this hook's own, or shared through Redis."""
        return self._connection.rate_budget

    @property
    def exchange(self) -> NeoExchange:
        return self._connection.exchange

    def get_conn(self) -> requests.Session:
        """The hook's one pooled session, sized to its concurrency."""
        if self._session is None:
            settings = self.settings
            self._session = transport.open_session(
                settings.base_url,
                verify_tls=settings.verify_tls,
                pool_size=settings.max_concurrency,
                user_agent=USER_AGENT,
            )
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._connected is not None:
            # A Redis pool reconnects by itself if the hook is used again.
            self._connected.rate_budget.close()

    def __enter__(self) -> NeoHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- driving an exchange with requests --------------------------------------------------

    def _drive(self, exchange: Exchange[T]) -> T:
        reply: Reply = None
        token: str | None = None  # the OAuth token the last request carried
        try:
            while True:
                action = exchange.send(reply)
                if isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    reply = None
                elif isinstance(action, RenewToken):
                    self._tokens.invalidate(token)
                    reply = None
                elif isinstance(action, Reserve | RateLimited):
                    reply = _budget_reply(self.rate_budget, action)
                else:
                    token = self._token() if self._needs_token(action) else None
                    reply = self._send(action, self._headers(action, token))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _needs_token(self, action: Send) -> bool:
        return action.authenticated and self.settings.auth_type == "oauth"

    def _headers(self, action: Send, token: str | None) -> dict[str, str]:
        """The request's headers with its credentials: the OAuth `token`, else Basic."""
        headers = dict(action.headers)
        if token is not None:
            headers[OAUTH_TOKEN_HEADER] = token
        elif action.authenticated:
            headers["Authorization"] = self.settings.basic_authorization()
        return headers

    def _send(self, action: Send, headers: dict[str, str]) -> Received | Failed:
        return transport.send(self.get_conn(), action, headers, self.settings.timeout)

    def _token(self) -> str:
        """The shared OAuth token, fetched when there is none or it is due for renewal."""
        token = self._tokens.current()
        if token is not None:
            return token
        with self._tokens.fetch_lock:  # one fetch, shared by every thread waiting here
            cached = self._tokens.current()
            if cached is not None:
                return cached
            fresh, ttl = self._drive(self.exchange.token())
            mask_secret(fresh)
            self._tokens.store(fresh, ttl)
            return fresh

    def _stream(self, fetch: Callable[[Any], list[T]], items: Iterable[Any]) -> Records[T]:
        """Yield the records of `fetch(item)` for every item, items fetched concurrently."""
        for records in bounded_map(fetch, items, self.settings.max_concurrency):
            yield from records

    # --- the queries, checked before any request --------------------------------------------

    def _points_awarded_queries(
        self,
        customer_ids: Any,
        *,
        program_id: int,
        point_category_id: int,
        expiry_start: DateLike,
        expiry_end: DateLike,
        status: str,
        org_id: int | None,
    ) -> Iterator[dict[str, str]]:
        """One paIds query per batch of customers, bounded by URL length and id count."""
        template = _query(
            POINTS_AWARDED,
            {
                "program_id": ("program_id", program_id),
                "point_category_id": ("point_category_id", point_category_id),
                "start_expiry_date": ("expiry_start", expiry_start),
                "end_expiry_date": ("expiry_end", expiry_end),
                "status": ("status", status),
                "org_id": ("org_id", org_id),
                "entity_id": ("customer_ids", [1]),
            },
        )
        settings = self.settings
        unused = settings.max_url_length - len(
            settings.url(POINTS_AWARDED, {**template, "entity_id": ""})
        )
        if unused < 32:
            raise ValueError(f"max_url_length: {settings.max_url_length} leaves no room for ids")
        batches = id_batches(
            customer_id_stream(customer_ids),
            max_ids=settings.max_ids_per_request,
            max_chars=unused,
        )
        return ({**template, "entity_id": ",".join(map(str, batch))} for batch in batches)

    @staticmethod
    def _expiring_query(
        customer: tuple[str, Any],
        *,
        program_id: int,
        point_category_id: int,
        expiry_start: DateLike,
        expiry_end: DateLike,
    ) -> dict[str, str]:
        """A dateRange query; `customer` is (the caller's argument name, its value)."""
        return _query(
            EXPIRING_ALLOCATIONS,
            {
                "program_id": ("program_id", program_id),
                "point_category_id": ("point_category_id", point_category_id),
                "expiry_date_start": ("expiry_start", expiry_start),
                "expiry_date_end": ("expiry_end", expiry_end),
                "entity_id": customer,
            },
        )

    @staticmethod
    def _event_query(
        customer_id: int | str, entity_id: str, event_type: int | str
    ) -> dict[str, str]:
        return _query(
            EVENT_ALLOCATIONS,
            {
                "entity_id": ("entity_id", entity_id),
                "customer_id": ("customer_id", customer_id),
                "event_type_id": ("event_type", event_type),
            },
        )

    # --- the endpoints ----------------------------------------------------------------------

    def send_message(self, channel: str, body: dict[str, Any]) -> Any:
        """Capillary's ``POST /v2/communications/sendMessage?channel=...`` with `body` (e.g.
        ``{"email": [{"to": ..., "from": ..., "subject": ..., "body": ...}]}``), with the
        connection's credentials, retries and rate budget; Capillary's answer, decoded."""
        if channel not in MESSAGE_CHANNELS:
            raise ValueError(
                f"channel: expected one of {', '.join(MESSAGE_CHANNELS)}, got {channel!r}"
            )
        url = f"{self.settings.base_url}{SEND_MESSAGE_PATH}?{urlencode({'channel': channel})}"
        return self._drive(self.exchange.post(SEND_MESSAGE_PATH, url, body))

    def iter_points_awarded(
        self,
        customer_ids: int | str | Iterable[int | str],
        *,
        program_id: int,
        point_category_id: int,
        expiry_start: DateLike,
        expiry_end: DateLike,
        status: str = "AVAILABLE",
        org_id: int | None = None,
    ) -> Records[PointsAwardedSummary]:
        """paIds: many customers per request, batched by URL length and id count."""
        queries = self._points_awarded_queries(
            customer_ids,
            program_id=program_id,
            point_category_id=point_category_id,
            expiry_start=expiry_start,
            expiry_end=expiry_end,
            status=status,
            org_id=org_id,
        )
        return self._stream(self._points_awarded_batch, queries)

    def iter_points_awarded_queries(
        self, customer_ids: Iterable[int | str], queries: Iterable[PointsAwardedQuery]
    ) -> Records[tuple[PointsAwardedQuery, PointsAwardedSummary]]:
        """paIds for several queries (programs, expiry days) over the same customers: the
        batches of every query share the hook's one bounded pool, so the queries run at once,
        within `max_concurrency` and the rate budget. Each row comes with its query, as its
        batch completes. Every query is checked before any request."""
        if not isinstance(customer_ids, Collection):
            customer_ids = tuple(customer_ids)  # read once per query
        batches = [
            (query, self._points_awarded_queries(customer_ids, **asdict(query)))
            for query in queries
        ]

        def fetch(
            item: tuple[PointsAwardedQuery, dict[str, str]],
        ) -> list[tuple[PointsAwardedQuery, PointsAwardedSummary]]:
            query, params = item
            return [(query, row) for row in self._points_awarded_batch(params)]

        return self._stream(fetch, ((q, params) for q, each in batches for params in each))

    def _points_awarded_batch(self, query: dict[str, str]) -> list[PointsAwardedSummary]:
        rows = self._drive(self.exchange.fetch(POINTS_AWARDED, query))
        return with_query_status(rows, query["status"])  # Neo's rows do not carry it

    def iter_expiring_allocations(
        self,
        customer_ids: int | str | Iterable[int | str],
        *,
        program_id: int,
        point_category_id: int,
        expiry_start: DateLike,
        expiry_end: DateLike,
    ) -> Records[PointsAllocation]:
        """dateRange (or its path override): each customer's pages, customers concurrently."""
        template = self._expiring_query(
            ("customer_ids", 1),
            program_id=program_id,
            point_category_id=point_category_id,
            expiry_start=expiry_start,
            expiry_end=expiry_end,
        )

        def fetch(customer_id: int) -> list[PointsAllocation]:
            query = {**template, "entity_id": str(customer_id)}
            return self._drive(self.exchange.fetch(EXPIRING_ALLOCATIONS, query))

        return self._stream(fetch, customer_id_stream(customer_ids))

    def iter_event_allocations(
        self, *, customer_id: int | str, entity_id: str, event_type: int | str
    ) -> Records[PointsAllocation]:
        """event: the allocations one event gave one customer, every page."""
        query = self._event_query(customer_id, entity_id, event_type)

        def fetch(_: None) -> list[PointsAllocation]:
            return self._drive(self.exchange.fetch(EVENT_ALLOCATIONS, query))

        return self._stream(fetch, [None])

    def iter_expired_points(
        self, customer_ids: int | str | Iterable[int | str], *, year: int | str
    ) -> Records[ExpiredPoints]:
        """expiredPoints: each customer's points expired in `year`; a 404 yields nothing."""
        template = _query(
            EXPIRED_POINTS,
            {"customer_id": ("customer_ids", 1), "year": ("year", year)},
        )

        def fetch(customer_id: int) -> list[ExpiredPoints]:
            query = {**template, "customer_id": str(customer_id)}
            return self._drive(self.exchange.fetch(EXPIRED_POINTS, query))

        return self._stream(fetch, customer_id_stream(customer_ids))

    def test_connection(self) -> tuple[bool, str]:
        """A harmless GET (an event that does not exist) that proves host, auth and scope; the
        message also carries the connection's warnings (an unknown key, say)."""
        try:
            settings = self.settings
        except ValueError as exc:
            return False, f"The connection is not valid: {exc}"
        warnings = self._connection.warnings
        ok, message = self._test_request(settings)
        if warnings:
            message += ". Warning: " + "; ".join(warnings)
        return ok, message

    def _test_request(self, settings: NeoConnectionSettings) -> tuple[bool, str]:
        exchange = self._new_exchange(settings, max_retries=1)
        where = f"Neo at {settings.base_url}"
        try:
            self._drive(exchange.call(EVENT_ALLOCATIONS, CONNECTION_TEST_QUERY))
        except NeoConnectionError as exc:
            return False, f"Cannot reach {where}: {exc.reason}"
        except NeoAuthError as exc:
            what = (
                "username and password" if settings.auth_type == "basic" else "OAuth key and secret"
            )
            return False, f"{where} refused the credentials: check the {what} ({exc.reason})"
        except NeoBadRequestError as exc:
            if SCOPE_HEADER in exc.reason:
                return False, f"{where} refused the scope {settings.scope!r}: {exc.reason}"
            return False, f"{where} rejected the test request: {exc.reason}"
        except NeoError as exc:
            return False, f"{where} answered unexpectedly: {exc}"
        finally:
            self.close()
        return True, f"Connected to {where} ({settings.auth_type} auth, scope {settings.scope})"


class NeoAsyncHook(NeoHook):
    """The same client for triggers: non-blocking, over httpx. Use it as an async context manager
    (or call `aclose`) so its connection pool is released."""

    def __init__(self, neo_conn_id: str = DEFAULT_CONN_ID, **overrides: Any) -> None:
        super().__init__(neo_conn_id, **overrides)
        self._client: httpx.AsyncClient | None = None

    async def aload(self) -> NeoConnectionSettings:
        """Load the connection without blocking the event loop."""
        if self._connected is None:
            # BaseHook.aget_connection where it exists (3.1+), get_connection in a thread before.
            self._connect(await get_async_connection(self.neo_conn_id))
        return self.settings

    async def _aclient(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = self.settings
            # Building the client loads the TLS certificates, which would block a triggerer's
            # event loop for a noticeable time; do it in a thread.
            self._client = await asyncio.to_thread(
                httpx.AsyncClient,
                verify=settings.verify_tls,
                timeout=settings.timeout,
                limits=httpx.Limits(max_connections=settings.max_concurrency),
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.close()  # the rate budget, and the session that fetched OAuth tokens, if any

    async def __aenter__(self) -> NeoAsyncHook:
        await self.aload()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _adrive(self, exchange: Exchange[T]) -> T:
        reply: Reply = None
        token: str | None = None  # the OAuth token the last request carried
        try:
            while True:
                action = exchange.send(reply)
                if isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                    reply = None
                elif isinstance(action, RenewToken):
                    self._tokens.invalidate(token)
                    reply = None
                elif isinstance(action, Reserve | RateLimited):
                    budget = self.rate_budget
                    if budget.blocking:  # a Redis round trip must not hold up the event loop
                        reply = await asyncio.to_thread(_budget_reply, budget, action)
                    else:
                        reply = _budget_reply(budget, action)
                else:
                    token = await self._atoken() if self._needs_token(action) else None
                    reply = await self._asend(action, self._headers(action, token))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _asend(self, action: Send, headers: dict[str, str]) -> Received | Failed:
        return await transport.asend(await self._aclient(), action, headers, self.settings.timeout)

    async def _atoken(self) -> str:
        """The sync hook's `_token`, in a thread when a fetch is due: a token is fetched once per
        ttl, so its one lock and one fetch serve the threads and coroutines of a hook alike."""
        token = self._tokens.current()
        if token is not None:
            return token
        return await asyncio.to_thread(self._token)

    async def aget_event_allocations(
        self, *, customer_id: int | str, entity_id: str, event_type: int | str
    ) -> list[PointsAllocation]:
        """Every allocation one event gave one customer (all pages)."""
        await self.aload()
        query = self._event_query(customer_id, entity_id, event_type)
        return await self._adrive(self.exchange.fetch(EVENT_ALLOCATIONS, query))

    async def aget_expiring_allocations(
        self,
        customer_id: int | str,
        *,
        program_id: int,
        point_category_id: int,
        expiry_start: DateLike,
        expiry_end: DateLike,
    ) -> list[PointsAllocation]:
        """One customer's allocations expiring in the window (all pages)."""
        await self.aload()
        query = self._expiring_query(
            ("customer_id", customer_id),
            program_id=program_id,
            point_category_id=point_category_id,
            expiry_start=expiry_start,
            expiry_end=expiry_end,
        )
        return await self._adrive(self.exchange.fetch(EXPIRING_ALLOCATIONS, query))

    async def aget_points_awarded(
        self,
        customer_ids: int | str | Iterable[int | str],
        *,
        program_id: int,
        point_category_id: int,
        expiry_start: DateLike,
        expiry_end: DateLike,
        status: str = "AVAILABLE",
        org_id: int | None = None,
    ) -> list[PointsAwardedSummary]:
        """paIds for a (small) set of customers, batched like the sync hook, one batch at a time."""
        await self.aload()
        queries = self._points_awarded_queries(
            customer_ids,
            program_id=program_id,
            point_category_id=point_category_id,
            expiry_start=expiry_start,
            expiry_end=expiry_end,
            status=status,
            org_id=org_id,
        )
        records: list[PointsAwardedSummary] = []
        for query in queries:
            rows = await self._adrive(self.exchange.fetch(POINTS_AWARDED, query))
            records += with_query_status(rows, query["status"])  # Neo's rows do not carry it
        return records
