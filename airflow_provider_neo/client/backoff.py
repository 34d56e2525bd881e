"""When to try a request again: exponential backoff with full jitter, unless Neo says when."""

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
    # A Retry-After beyond this is not slept through silently: the call fails and says so.
    max_retry_after_seconds: float = 300.0

    def delay(self, retry_number: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before retry `retry_number` (1 for the first retry)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (retry_number - 1))
        return rng.uniform(0, ceiling)


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
