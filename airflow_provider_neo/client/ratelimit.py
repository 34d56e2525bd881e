"""A requests-per-minute budget shared by every thread (or task) of one hook.

Requests are spaced evenly, `(60 + margin) / budget` seconds apart: then no 60-second window can
hold more than `budget` requests even if the network delays them by up to `margin` seconds, so a
run never provokes a 429 on its own. A server's Retry-After pauses every caller at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        margin_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = (
            (60.0 + margin_seconds) / requests_per_minute if requests_per_minute else 0.0
        )
        self._clock = clock
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Claim the next free slot; returns how long the caller must wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            if self.interval:
                self._next_slot = slot + self.interval
            return slot - now

    def pause(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (the server asked us to wait)."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)
