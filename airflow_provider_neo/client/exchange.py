"""What one Neo call does, free of I/O, so the sync and async hooks share every rule.

An exchange is a generator: it yields actions (`Reserve` a slot of the rate budget, `Send` a
request, `Sleep`, `RateLimited`, `RenewToken`; `client.actions`) and is sent back what happened
(`Reserved`, `Received` or `Failed`). It decides what to send next: the retry loop (429, 5xx,
dropped connections and timeouts, with backoff and Retry-After), the one OAuth token renewal on
401, when the rate budget is drawn from and told about a 429, paging with its guards, and
(`fetch`) dropping duplicate ids and counting the customers done. What each answer means
(statuses, errors, decoding) is `client.answers`'. A hook only performs the actions: `requests`
for `NeoHook`, `httpx` for `NeoAsyncHook`, and the budget (`client.ratelimit`, possibly a Redis
round trip) for both.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from airflow_provider_neo.client.actions import (
    Action,
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
from airflow_provider_neo.client.answers import (
    Retry,
    no_answer,
    read_posted,
    read_records,
    read_token,
)
from airflow_provider_neo.client.backoff import Backoff
from airflow_provider_neo.client.errors import (
    NeoAuthError,
    NeoError,
    NeoProtocolError,
    NeoRateLimitedError,
)
from airflow_provider_neo.connection import NeoConnectionSettings
from airflow_provider_neo.endpoints import REQUEST_ID_HEADER, TOKEN_PATH, Endpoint
from airflow_provider_neo.records import PointsAllocation, PointsAwardedSummary

# The actions and replies are also importable from here, beside the exchange that uses them.
__all__ = [
    "Action",
    "Exchange",
    "Failed",
    "NeoExchange",
    "RateLimited",
    "Received",
    "RenewToken",
    "Reply",
    "RequestStats",
    "Reserve",
    "Reserved",
    "Send",
    "Sleep",
    "drop_duplicate_ids",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R", bound=msgspec.Struct)


class RequestStats:
    """Counts kept across threads: requests, statuses, retries, duplicates dropped, tokens, and
    customers whose rows have all been fetched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.customers_done = 0
        self.requests = 0
        self.retries = 0
        self.duplicates_dropped = 0
        self.rows_not_asked_for = 0  # rows of customers a query did not name, dropped
        self.tokens_fetched = 0
        self.statuses: Counter[str] = Counter()

    def record(self, reply: Reply) -> None:
        with self._lock:
            self.requests += 1
            status = str(reply.status) if isinstance(reply, Received) else "failed"
            self.statuses[status] += 1

    def add(
        self,
        *,
        retries: int = 0,
        duplicates: int = 0,
        tokens: int = 0,
        customers: int = 0,
        rows_not_asked_for: int = 0,
    ) -> None:
        with self._lock:
            self.customers_done += customers
            self.rows_not_asked_for += rows_not_asked_for
            self.retries += retries
            self.duplicates_dropped += duplicates
            self.tokens_fetched += tokens

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "customers_done": self.customers_done,
                "requests": self.requests,
                "retries": self.retries,
                "duplicates_dropped": self.duplicates_dropped,
                "rows_not_asked_for": self.rows_not_asked_for,
                "tokens_fetched": self.tokens_fetched,
                "statuses": dict(self.statuses),
            }


class NeoExchange:
    def __init__(
        self,
        settings: NeoConnectionSettings,
        *,
        stats: RequestStats,
        backoff: Backoff,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats
        self.backoff = backoff
        self.rng = rng or random.Random()
        self._secrets = settings.secrets()

    def add_secret(self, secret: str) -> None:
        self._secrets.append(secret)

    # --- public exchanges ------------------------------------------------------------------

    def call(self, endpoint: Endpoint[R], query: Mapping[str, str]) -> Exchange[list[R]]:
        """One request to `endpoint`, retried as needed, decoded into its records."""
        url = self.settings.url(endpoint, query)

        def send(request_id: str) -> Send:
            return Send("GET", url, self.settings.neo_headers(request_id))

        def interpret(reply: Received, request_id: str) -> list[R] | Retry:
            return read_records(endpoint, reply, request_id, self._secrets)

        return (yield from self._with_retries(endpoint.path, send, interpret, renewable=True))

    def fetch(self, endpoint: Endpoint[R], query: Mapping[str, str]) -> Exchange[list[R]]:
        """Every row `query` asks for (every page, when `endpoint` pages), each id once, counting
        the customers it completes: what each hook method does per batch or per customer."""
        if endpoint.paged:
            pages = self.all_pages(endpoint, query)  # type: ignore[arg-type]
            records: list[Any] = yield from self._bounded(endpoint.path, pages)
        else:
            records = yield from self._bounded(endpoint.path, self.call(endpoint, query))
        records = self._drop_rows_not_asked_for(endpoint, query, records)
        if endpoint.batch_param is None:
            self.stats.add(customers=1)
            return records
        self.stats.add(customers=query[endpoint.batch_param].count(",") + 1)
        unique: list[Any] = drop_duplicate_ids(records, self.stats)
        return unique

    def _drop_rows_not_asked_for(
        self, endpoint: Endpoint[Any], query: Mapping[str, str], records: list[Any]
    ) -> list[Any]:
        """`records` without the rows of customers `query` did not ask for, which would otherwise
        count in another customer's totals; each dropped row is counted and logged."""
        param = endpoint.batch_param or endpoint.customer_param
        if param is None or param not in query:
            return records
        asked = {int(word) for word in query[param].split(",")}
        kept = [record for record in records if record.customer_id in asked]
        if len(kept) < len(records):
            strangers = sorted({r.customer_id for r in records} - asked)
            self.stats.add(rows_not_asked_for=len(records) - len(kept))
            log.warning(
                "Neo %s answered %d row(s) for customers not asked for (%s); dropped",
                endpoint.path,
                len(records) - len(kept),
                ", ".join(map(str, strangers[:5])) + (", ..." if len(strangers) > 5 else ""),
            )
        return kept

    def _bounded(self, label: str, exchange: Exchange[T]) -> Exchange[T]:
        """`exchange`, stopped with NeoProtocolError once it has sent `max_requests_per_call`
        requests: one call's cost stays bounded whatever the server answers."""
        limit = self.settings.max_requests_per_call
        sent = 0
        reply: Reply = None
        while True:
            try:
                action = exchange.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(action, Send):
                sent += 1
                if sent > limit:
                    exchange.close()
                    raise NeoProtocolError(
                        f"One call took {limit} requests, pages and retries included, without"
                        f" completing (max_requests_per_call={limit}); stopped",
                        endpoint=label,
                    )
            reply = yield action

    def all_pages(
        self, endpoint: Endpoint[PointsAllocation], query: Mapping[str, str]
    ) -> Exchange[list[PointsAllocation]]:
        """Every page of `endpoint` for `query`: until a short page, de-duplicated by id."""
        assert endpoint.paged, f"{endpoint.path} does not page"
        size = self.settings.page_size
        rows: list[PointsAllocation] = []
        seen: set[int] = set()
        previous: list[int] | None = None
        for page in itertools.count(1):
            if page > self.settings.max_pages:
                raise NeoProtocolError(
                    f"Neo kept paging past max_pages={self.settings.max_pages}; stopped",
                    endpoint=endpoint.path,
                )
            records = yield from self.call(
                endpoint, {**query, "page": str(page), "count": str(size)}
            )
            if len(records) > size:
                raise NeoProtocolError(
                    f"Neo answered page {page} with {len(records)} rows, more than the"
                    f" count={size} asked for; stopped to avoid paging forever",
                    endpoint=endpoint.path,
                    status=200,
                )
            ids = [record.id for record in records]
            if ids and ids == previous:
                raise NeoProtocolError(
                    f"Neo answered page {page} with the same rows as page {page - 1}; stopped"
                    " to avoid paging forever",
                    endpoint=endpoint.path,
                )
            previous = ids
            fresh = [r for r, id_ in zip(records, ids, strict=True) if id_ not in seen]
            seen.update(ids)
            if len(fresh) < len(records):
                self.stats.add(duplicates=len(records) - len(fresh))
            rows += fresh
            if len(records) < size:
                return rows
        raise AssertionError("unreachable")

    def post(self, label: str, url: str, body: Any) -> Exchange[Any]:
        """One authenticated JSON POST (e.g. sendMessage), retried like every Neo request; the
        decoded answer (None when it is not JSON)."""

        def send(request_id: str) -> Send:
            headers = {**self.settings.neo_headers(request_id), "Content-Type": "application/json"}
            return Send("POST", url, headers, json_body=body)

        def interpret(reply: Received, request_id: str) -> Any:
            return read_posted(label, reply, request_id, self._secrets)

        return (yield from self._with_retries(label, send, interpret, renewable=True))

    def token(self) -> Exchange[tuple[str, float]]:
        """A fresh OAuth token and its ttl in seconds."""
        settings = self.settings
        body = {"key": settings.oauth_client_key, "secret": settings.oauth_client_secret}

        def send(request_id: str) -> Send:
            headers = {REQUEST_ID_HEADER: request_id, "Accept": "application/json"}
            return Send("POST", settings.token_url, headers, json_body=body, authenticated=False)

        def interpret(reply: Received, request_id: str) -> tuple[str, float] | Retry:
            return read_token(reply, request_id, self._secrets)

        token, ttl = yield from self._with_retries(TOKEN_PATH, send, interpret, renewable=False)
        self.add_secret(token)
        self.stats.add(tokens=1)
        return token, ttl

    # --- the retry loop --------------------------------------------------------------------

    def _with_retries(
        self,
        label: str,
        send: Callable[[str], Send],
        interpret: Callable[[Received, str], T | Retry],
        *,
        renewable: bool,
    ) -> Exchange[T]:
        renewed = False
        attempts = failures = limited = 0  # failures: not 429; limited: 429s in a row
        waited_on_429 = 0.0
        while True:
            reserved = yield Reserve()
            if not isinstance(reserved, Reserved):
                raise AssertionError("the driver must answer a Reserve with Reserved")
            if reserved.wait_seconds > 0:
                yield Sleep(reserved.wait_seconds)
            request_id = uuid.uuid4().hex  # fresh per request: each one traceable at Capillary
            reply = yield send(request_id)
            attempts += 1
            self.stats.record(reply)
            if isinstance(reply, Failed):
                outcome: T | Retry = no_answer(label, reply, request_id, self._secrets)
            elif not isinstance(reply, Received):
                raise AssertionError("the driver must answer a Send with Received or Failed")
            else:
                try:
                    outcome = interpret(reply, request_id)
                except NeoAuthError:
                    if renewable and self.settings.auth_type == "oauth" and not renewed:
                        renewed = True
                        log.info("Neo refused the OAuth token (%s); fetching a new one", label)
                        yield RenewToken()
                        continue
                    raise
            if not isinstance(outcome, Retry):
                return outcome
            error = outcome.error
            if error.status == 429:
                limited += 1
                delay = self.backoff.rate_limit_delay(
                    limited, outcome.retry_after, waited_on_429, self.rng
                )
                # Every caller sharing the budget slows down, not only this one.
                yield RateLimited(outcome.retry_after if outcome.retry_after else None)
                if delay is None:
                    raise self._rate_limit_exhausted(error, outcome.retry_after, waited_on_429)
                waited_on_429 += delay
                bound = self.backoff.rate_limit_max_wait_seconds
                why = f"rate limited, {waited_on_429:.1f} of {bound:.0f} s"
            else:
                limited = 0
                failures += 1
                if failures > self.backoff.max_retries:
                    raise type(error)(
                        f"{error.reason} (gave up after {attempts} attempts)",
                        endpoint=error.endpoint,
                        status=error.status,
                        request_id=error.request_id,
                        body_excerpt=error.body_excerpt,
                    )
                delay = self.backoff.delay(failures, None, self.rng)
                why = f"{failures} of {self.backoff.max_retries}"
            self.stats.add(retries=1)
            log.warning(
                "Neo %s: %s; retry %d in %.2f s (%s; x-cap-request-id %s)",
                label, error.reason, attempts, delay, why, error.request_id,
            )  # fmt: skip
            yield Sleep(delay)

    def _rate_limit_exhausted(
        self, error: NeoError, retry_after: float | None, waited: float
    ) -> NeoRateLimitedError:
        bound = self.backoff.rate_limit_max_wait_seconds
        if retry_after:
            reason = (
                f"Neo asked to wait {retry_after:.0f} s, more than the {bound - waited:.0f} s"
                f" left of the {bound:.0f} s this hook waits out rate limits"
                " (rate_limit_max_wait_seconds)"
            )
        else:
            reason = (
                f"{error.reason} (gave up after {waited:.1f} s of backoff;"
                f" rate_limit_max_wait_seconds={bound:g})"
            )
        return NeoRateLimitedError(
            reason,
            endpoint=error.endpoint,
            status=error.status,
            request_id=error.request_id,
            body_excerpt=error.body_excerpt,
        )


def drop_duplicate_ids(
    records: Sequence[PointsAwardedSummary], stats: RequestStats
) -> list[PointsAwardedSummary]:
    """Rows of one answer, each id once (a batch may name a customer twice)."""
    seen: set[int] = set()
    unique = []
    for record in records:
        if record.id not in seen:
            seen.add(record.id)
            unique.append(record)
    if len(unique) < len(records):
        stats.add(duplicates=len(records) - len(unique))
    return unique
