"""The OAuth token a hook shares between its threads, renewed before its ttl runs out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def renewal_margin(ttl_seconds: float) -> float:
    """How long before expiry to fetch a new token: a tenth of the ttl, at most a minute."""
    return min(60.0, ttl_seconds / 10)


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        # Held while a token is fetched, so concurrent callers wait for one fetch.
        self.fetch_lock = threading.Lock()

    def current(self) -> str | None:
        """The cached token while it is not due for renewal, else None."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        return None

    def store(self, token: str, ttl_seconds: float) -> None:
        self._token = token
        self._renew_at = self._clock() + ttl_seconds - renewal_margin(ttl_seconds)

    def invalidate(self, refused: str | None) -> None:
        """Forget `refused`, unless another caller already replaced it with a fresh token."""
        if refused is not None and refused == self._token:
            self._token = None
