"""When to try a request again: exponential backoff with full jitter, unless Neo says when.

Failures (5xx, dropped connections, timeouts) are retried `max_retries` times. A 429 is retried
for as long as the waits add up to `rate_limit_max_wait_seconds`: a rate limit lifts when its
window has passed, however many attempts that takes, so the bound is time, not a count.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass
from typing import Final

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Backoff:
    max_retries: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    # Two minutes outlast a one-minute rate window even when the first waits are short.
    rate_limit_max_wait_seconds: float = 120.0

    def delay(self, retry_number: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before retry `retry_number` (1 for the first retry)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (retry_number - 1))
        return rng.uniform(0, ceiling)

    def rate_limit_delay(
        self, limited: int, retry_after: float | None, waited: float, rng: random.Random
    ) -> float | None:
        """Seconds before retrying the `limited`-th 429 in a row of one request, which has
        already waited `waited` seconds on 429s; None when the wait would go past the bound."""
        left = self.rate_limit_max_wait_seconds - waited
        if retry_after:  # "Retry-After: 0" is no guidance: it would retry in a tight loop
            # Neo said when; sleeping less only provokes another 429, and longer is not allowed.
            return retry_after if retry_after <= left else None
        if left <= 0:
            return None
        return min(left, self.delay(limited, None, rng))


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After in seconds from now (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())
