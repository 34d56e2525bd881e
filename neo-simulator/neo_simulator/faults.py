"""Seeded faults on the Neo endpoints: latency, 5xx, 429 rate limiting, malformed bodies, resets.

All are off by default. Each fault draws from its own seeded random stream, so switching one on does
not change when another fires. The OAuth token route and the `/__sim/` control routes never fault.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neo_simulator.errors import ErrorCode, error_body

SERVER_ERRORS = (500, 502, 503, 504)
HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    rate_limit_per_minute: int = 0
    retry_after: bool = True
    malformed_rate: float = 0.0
    reset_rate: float = 0.0
    stall_rate: float = 0.0  # a share of answers held back `stall_ms`, to provoke read timeouts
    stall_ms: int = 5_000
    rate_window_seconds: float = 60.0  # the window of rate_limit_per_minute (shorter in tests)
    ignore_page: bool = False  # answer page 1 whatever page is asked: paging that never ends
    page_overlap: int = 0  # each page repeats this many rows of the page before it
    # Requests naming any of these customers always answer 503: an outage confined to some data,
    # so that one shard of a workflow keeps failing while the others go through.
    failing_customer_ids: tuple[int, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "malformed_rate", "reset_rate", "stall_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("latency_ms", "rate_limit_per_minute", "stall_ms", "page_overlap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    def updated(self, changes: dict[str, Any]) -> Faults:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        if "failing_customer_ids" in changes:
            changes = {**changes, "failing_customer_ids": tuple(changes["failing_customer_ids"])}
        return replace(self, **changes)


class DropConnection(Exception):
    """Raised after the response has started, so the server closes the connection mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


ABORT_EXTENSION = "neo.abort_connection"


class ExposeConnectionAbort:
    """Outermost ASGI layer: puts the connection's `abort` in the scope, so a fault can reset it.

    uvicorn passes its request cycle's bound `send`, whose transport can abort the TCP connection;
    under another server the extension is absent and drops fall back to cutting the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        abort = getattr(transport, "abort", None)
        if abort is not None:
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = abort
        await self.app(scope, receive, send)


class FaultInjector:
    def __init__(self, faults: Faults, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.configure(faults)

    def configure(self, faults: Faults) -> None:
        self.faults = faults
        self._error = random.Random(f"{faults.seed}:error")
        self._malformed = random.Random(f"{faults.seed}:malformed")
        self._reset = random.Random(f"{faults.seed}:reset")
        self._stall = random.Random(f"{faults.seed}:stall")
        self._accepted: collections.deque[float] = collections.deque()

    def reset_rate_window(self) -> None:
        self._accepted.clear()

    def retry_after_seconds(self) -> int | None:
        """Seconds until a slot frees in the sliding minute, or None if the request may pass."""
        limit = self.faults.rate_limit_per_minute
        if not limit:
            return None
        now = self.clock()
        window = self.faults.rate_window_seconds
        while self._accepted and self._accepted[0] <= now - window:
            self._accepted.popleft()
        if len(self._accepted) >= limit:
            return max(1, math.ceil(self._accepted[0] + window - now))
        self._accepted.append(now)
        return None

    def stall_seconds(self) -> float:
        if self.faults.stall_rate and self._stall.random() < self.faults.stall_rate:
            return self.faults.stall_ms / 1000
        return 0.0

    def page_offset(self, page: int, count: int) -> int:
        """Where a page starts, as the paging faults distort it."""
        if self.faults.ignore_page:
            return 0
        return max(0, (page - 1) * (count - self.faults.page_overlap))

    def names_failing_customer(self, query_string: bytes) -> bool:
        failing = self.faults.failing_customer_ids
        if not failing:
            return False
        for _, value in parse_qsl(query_string.decode("latin-1")):
            if any(word.strip().isdigit() and int(word) in failing for word in value.split(",")):
                return True
        return False

    def server_error(self) -> int | None:
        if self.faults.error_rate and self._error.random() < self.faults.error_rate:
            return self._error.choice(SERVER_ERRORS)
        return None

    def malformed(self) -> str | None:
        """How to break this response ("truncated" JSON or a proxy's "html" page), or None."""
        if self.faults.malformed_rate and self._malformed.random() < self.faults.malformed_rate:
            return self._malformed.choice(("truncated", "html"))
        return None

    def drop(self) -> str | None:
        """How to drop this connection ("reset" before any byte, "cut" mid-body), or None."""
        if self.faults.reset_rate and self._reset.random() < self.faults.reset_rate:
            return self._reset.choice(("reset", "cut"))
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self.faults)


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class FaultMiddleware:
    """ASGI middleware applying the injector's faults to requests for `paths`."""

    def __init__(self, app: ASGIApp, injector: FaultInjector, paths: Collection[str]) -> None:
        self.app = app
        self.injector = injector
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        injector = self.injector
        delay = injector.faults.latency_ms / 1000 + injector.stall_seconds()
        if delay:
            await asyncio.sleep(delay)
        retry_after = injector.retry_after_seconds()
        if retry_after is not None:
            headers = (
                [(b"retry-after", str(retry_after).encode())] if injector.faults.retry_after else []
            )
            body = error_body(ErrorCode.RATE_LIMITED, "Rate limit exceeded, try again later")
            await _send_json(send, 429, body, headers)
            return
        drop = injector.drop()
        abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
        if drop == "reset" and abort is not None:
            abort()
            await asyncio.sleep(0)  # let the server see the connection is gone before we raise
            raise DropConnection
        if drop is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"[{", "more_body": True})
            raise DropConnection
        status = injector.server_error()
        if injector.names_failing_customer(scope.get("query_string", b"")):
            status = 503
        if status is not None:
            body = error_body(ErrorCode.INTERNAL_ERROR, "Internal Server Error")
            await _send_json(send, status, body, [])
            return
        breakage = injector.malformed()
        if breakage is not None:
            await self._malformed(scope, receive, send, breakage)
            return
        await self.app(scope, receive, send)

    async def _malformed(self, scope: Scope, receive: Receive, send: Send, breakage: str) -> None:
        """Run the request, then answer 200 with a broken body: cut-off JSON or a proxy's HTML."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        start = captured[0]
        body = b"".join(m.get("body", b"") for m in captured[1:])
        if start["status"] != 200:
            await _send_json(send, start["status"], body, [])
            return
        if breakage == "truncated" and len(body) > 1:
            await _send_json(send, 200, body[: max(1, len(body) // 2)], [])
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/html"),
                    (b"content-length", str(len(HTML_ERROR_PAGE)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": HTML_ERROR_PAGE})
