"""A progress line in the task log every few seconds (never per record) for long fetches."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_neo.client.exchange import RequestStats


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    def __init__(
        self,
        log: Any,  # the task's logger
        label: str,
        stats: RequestStats,
        *,
        total_customers: int | None,
        every_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.label = label
        self.stats = stats
        self.total = total_customers
        self.every = every_seconds
        self.clock = clock
        self.started = self.last = clock()
        self.records = 0

    def record(self) -> None:
        self.records += 1
        if self.clock() - self.last >= self.every:
            self.report()

    def report(self, final: bool = False) -> None:
        now = self.clock()
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        stats = self.stats.snapshot()
        done = stats["customers_done"]
        customers = f"{done}/{self.total}" if self.total is not None else str(done)
        line = (
            f"{self.label}: {customers} customers, {self.records} records,"
            f" {stats['requests']} requests, {stats['retries']} retries,"
            f" {stats['requests'] / elapsed:.1f} requests/s"
        )
        if final:
            line += f", done in {_duration(elapsed)}"
        elif self.total and done:
            line += f", ETA {_duration(elapsed * (self.total - done) / done)}"
        self.log.info(line)
