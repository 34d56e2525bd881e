"""The requests-per-minute budget: kept per hook (`memory://`) or shared through Redis by every
process and thread that uses the same Neo credentials (`redis://`, `rediss://`).

Requests are spaced evenly, `(60 + margin) / budget` seconds apart: then no 60-second window can
hold more than `budget` requests even if the network delays them by up to `margin` seconds, so a
run never provokes a 429 on its own. Both stores keep one "next free slot": a caller reserves
`max(now, next)` and moves `next` on by one interval. A server's Retry-After pauses every caller
sharing the budget, and any 429 halves the rate, which then recovers linearly (AIMD): the budget
settles under a limit that is lower than the connection says, instead of hammering it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

from airflow_provider_neo.client.errors import NeoRateBudgetError
from airflow_provider_neo.connection import NeoConnectionSettings, redact_url

log = logging.getLogger(__name__)

MARGIN_SECONDS_PER_MINUTE: Final = 1.0
SLOWDOWN_FACTOR: Final = 0.5  # a 429 halves the rate...
MIN_RATE_FACTOR: Final = 1 / 8  # ...down to an eighth of the budget at most
RECOVERY_PER_SECOND: Final = 1 / 60  # then it regains 1/60 of the budget each second
# Every request in flight when the limit was hit gets a 429; they are one signal, not several.
SLOWDOWN_COOLDOWN_SECONDS: Final = 1.0
# A process counts towards the fallback share while it drew from the budget this recently.
PARTY_WINDOW_SECONDS: Final = 60.0
# An unreachable store is tried again this often; meanwhile the process uses its own share.
STORE_RETRY_SECONDS: Final = 5.0
STORE_TIMEOUT_SECONDS: Final = 2.0


def full_rate_interval(requests_per_minute: float | None) -> float:
    """Seconds between two requests at the full budget; 0 when there is no budget."""
    if not requests_per_minute:
        return 0.0
    return (60.0 + MARGIN_SECONDS_PER_MINUTE) / requests_per_minute


def recovered_factor(factor: float, since: float, now: float) -> float:
    """The rate factor (1 = the full budget) `now`, after being set to `factor` at `since`."""
    return min(1.0, factor + max(0.0, now - since) * RECOVERY_PER_SECOND)


class RateBudget(Protocol):
    # True when the calls do network I/O: the async hook then makes them in a thread.
    blocking: bool

    def reserve(self) -> float:
        """Claim the next free slot; returns how long the caller must wait for it."""

    def pause(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (the server asked us to wait)."""

    def slow_down(self) -> None:
        """Neo answered 429: lower the rate for every caller; it recovers gradually."""

    def close(self) -> None:
        """Release any connection to the store."""


class RateLimiter:
    """The budget of one process (`memory://`), shared by the threads of one hook."""

    blocking = False

    def __init__(
        self, requests_per_minute: float | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = full_rate_interval(requests_per_minute)
        self._clock = clock
        self._next_slot = 0.0
        self._factor = 1.0
        self._factor_since = -math.inf
        self._lock = threading.Lock()

    def current_interval(self) -> float:
        with self._lock:
            return self._interval(self._clock())

    def _interval(self, now: float) -> float:
        return self.interval / recovered_factor(self._factor, self._factor_since, now)

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            if self.interval:
                self._next_slot = slot + self._interval(now)
            return slot - now

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    def slow_down(self) -> None:
        with self._lock:
            now = self._clock()
            if not self.interval or now - self._factor_since < SLOWDOWN_COOLDOWN_SECONDS:
                return
            current = recovered_factor(self._factor, self._factor_since, now)
            self._factor = max(MIN_RATE_FACTOR, current * SLOWDOWN_FACTOR)
            self._factor_since = now

    def close(self) -> None:
        pass


# One atomic step on the shared budget. Times are integer microseconds: exact in Lua's doubles,
# and stored with %.0f because Lua would print a number with 14 digits only. The time is Redis
# TIME, so the hosts' clocks do not matter; ARGV[2] replaces it only in tests.
_SCRIPT: Final = """
local op = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'next', 'factor', 'factor_since')
local next_slot = tonumber(state[1]) or 0
local factor = tonumber(state[2]) or 1
local since = tonumber(state[3])
local recovery = tonumber(ARGV[8])
local current = 1
if since then current = math.min(1, factor + math.max(0, now - since) * recovery) end
local wait = 0
if op == 'reserve' then
  local slot = math.max(now, next_slot)
  if interval > 0 then next_slot = slot + interval / current end
  wait = slot - now
elseif op == 'pause' then
  next_slot = math.max(next_slot, now + tonumber(ARGV[4]))
elseif op == 'slow_down' then
  if interval > 0 and (not since or now - since >= tonumber(ARGV[9])) then
    local lowered = math.max(tonumber(ARGV[7]), current * tonumber(ARGV[6]))
    redis.call('HSET', KEYS[1], 'factor', string.format('%.6f', lowered),
               'factor_since', string.format('%.0f', now))
  end
end
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', next_slot))
local ttl = math.ceil(math.max(0, next_slot - now) / 1000) + tonumber(ARGV[10])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[11]))
redis.call('PEXPIRE', KEYS[2], ttl)
return {math.floor(wait), redis.call('ZCARD', KEYS[2])}
"""
_MICRO: Final = 1_000_000


class RedisRateLimiter:
    """The budget shared through Redis by every process using the same Neo credentials.

    If the store cannot be reached before the first reservation, the call fails (most likely the
    URL is wrong). If it is lost later, this process goes on with its share of the budget (the
    budget divided by the processes seen drawing from it in the last minute), logs so once, and
    tries the store again every few seconds.
    """

    blocking = True

    def __init__(
        self,
        url: str,
        key: str,
        requests_per_minute: float | None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        try:
            import redis
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                f"rate_limit_storage {redact_url(url)} needs the redis package:"
                " pip install 'airflow-provider-neo[redis]'"
            ) from None
        self._redis_errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self.url = redact_url(url)
        self.key = key
        self.requests_per_minute = requests_per_minute
        self.interval = full_rate_interval(requests_per_minute)
        self._clock = clock  # None: Redis TIME, the one clock every host agrees on
        self._party = uuid.uuid4().hex
        self._client: Any = redis.Redis.from_url(
            url,
            socket_timeout=STORE_TIMEOUT_SECONDS,
            socket_connect_timeout=STORE_TIMEOUT_SECONDS,
        )
        self._script = self._client.register_script(_SCRIPT)
        self._parties: int | None = None  # None until the store has answered once
        self._fallback: RateLimiter | None = None
        self._retry_store_at = 0.0
        self._lock = threading.Lock()

    @property
    def parties(self) -> int | None:
        """Processes (hooks) seen drawing from the budget in the last minute."""
        return self._parties

    def _run(self, op: str, seconds: float = 0.0) -> float:
        now = "" if self._clock is None else f"{self._clock() * _MICRO:.0f}"
        wait, parties = self._script(
            keys=[self.key, f"{self.key}:parties"],
            args=[
                op, now, f"{self.interval * _MICRO:.3f}", f"{seconds * _MICRO:.0f}", self._party,
                SLOWDOWN_FACTOR, MIN_RATE_FACTOR, RECOVERY_PER_SECOND / _MICRO,
                SLOWDOWN_COOLDOWN_SECONDS * _MICRO, int(PARTY_WINDOW_SECONDS * 1000),
                PARTY_WINDOW_SECONDS * _MICRO,
            ],
        )  # fmt: skip
        self._parties = int(parties)
        return int(wait) / _MICRO

    def _draw(self, op: str, seconds: float = 0.0) -> float | RateLimiter:
        """Run `op` on the store; or the process's own share while the store is unreachable."""
        fallback = self._fallback
        if fallback is not None and time.monotonic() < self._retry_store_at:
            return fallback
        try:
            result = self._run(op, seconds)
        except self._redis_errors as exc:
            return self._fall_back(exc)
        if fallback is not None:
            with self._lock:
                back, self._fallback = self._fallback is not None, None
            if back:
                log.info("Neo rate budget: %s answers again; sharing the budget again", self.url)
        return result

    def _fall_back(self, exc: Exception) -> RateLimiter:
        reason = f"{type(exc).__name__}: {exc}".replace(self._client_password(), "***")
        if self._parties is None:
            raise NeoRateBudgetError(
                f"rate_limit_storage: cannot reach {self.url} to share the Neo rate budget"
                f" ({reason}); no request was sent"
            ) from None
        with self._lock:
            self._retry_store_at = time.monotonic() + STORE_RETRY_SECONDS
            if self._fallback is not None:
                return self._fallback
            share = (self.requests_per_minute or 0) / max(1, self._parties) or None
            fallback = self._fallback = RateLimiter(share)
        budget = f"{share:.1f} requests a minute" if share else "no budget"
        log.warning(
            "Neo rate budget: %s unreachable (%s); falling back to this process's share of the"
            " budget (%s, 1/%d) until it answers again",
            self.url, reason, budget, self._parties,
        )  # fmt: skip
        return fallback

    def _client_password(self) -> str:
        return str(self._client.connection_pool.connection_kwargs.get("password") or "\0")

    def reserve(self) -> float:
        drawn = self._draw("reserve")
        return drawn.reserve() if isinstance(drawn, RateLimiter) else drawn

    def pause(self, seconds: float) -> None:
        drawn = self._draw("pause", seconds)
        if isinstance(drawn, RateLimiter):
            drawn.pause(seconds)

    def slow_down(self) -> None:
        drawn = self._draw("slow_down")
        if isinstance(drawn, RateLimiter):
            drawn.slow_down()

    def close(self) -> None:
        self._client.connection_pool.disconnect()


def open_rate_budget(settings: NeoConnectionSettings) -> RateBudget:
    """The budget the connection asks for: per process, or shared through Redis."""
    if settings.rate_limit_storage == "memory://":
        return RateLimiter(settings.requests_per_minute)
    return RedisRateLimiter(
        settings.rate_limit_storage, settings.rate_budget_key(), settings.requests_per_minute
    )
