"""NeoHook against the simulator over loopback: batching, concurrency scaling, bounded memory.

    make bench-hook

The first simulator adds 20 ms to every answer, a stand-in for the network between a worker and a
Capillary cluster, so concurrency shows what it buys. Figures are printed, not asserted.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

from neo_simulator.process import SimulatorProcess

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neo-bench-"))
FIRST = 400_000_001
ARGS: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
WINDOW: dict[str, Any] = {"expiry_start": "2026-11-21", "expiry_end": "2027-11-21"}


def connect(url: str, **extra: object) -> None:
    parts = urlsplit(url)
    os.environ["AIRFLOW_CONN_NEO_DEFAULT"] = json.dumps(
        {
            "conn_type": "neo",
            "host": parts.hostname,
            "port": parts.port,
            "schema": "http",
            "login": "neo_user",
            "password": "neo_password",
            "extra": extra,
        }
    )


def main() -> None:
    from airflow_provider_neo.hooks.neo import NeoHook

    with SimulatorProcess(
        ["--customers", "20000", "--as-of", "2026-11-21", "--latency-ms", "20"]
    ) as sim:
        connect(sim.url)
        hook = NeoHook()
        started = time.perf_counter()
        rows = sum(
            1 for _ in hook.iter_points_awarded(range(FIRST, FIRST + 20_000), **ARGS, **WINDOW)
        )
        seconds = time.perf_counter() - started
        print(
            f"paIds, 20,000 customers: {hook.stats.requests} requests, {rows} rows"
            f" in {seconds:.2f} s"
        )
        baseline = 0.0
        for concurrency in (1, 4, 8, 16):
            connect(sim.url, max_concurrency=concurrency)
            hook = NeoHook()
            started = time.perf_counter()
            rows = sum(
                1
                for _ in hook.iter_expiring_allocations(range(FIRST, FIRST + 400), **ARGS, **WINDOW)
            )
            rate = hook.stats.requests / (time.perf_counter() - started)
            baseline = baseline or rate
            print(
                f"dateRange, 400 customers, concurrency {concurrency:>2}: {rate:6.0f} requests/s"
                f" ({rate / baseline:4.1f}x), {rows} rows"
            )
    with SimulatorProcess(["--customers", "20000", "--as-of", "2026-11-21"]) as sim:
        connect(sim.url, max_concurrency=8)
        for customers in (2_000, 20_000):
            # Live memory sampled through the run: it stays flat however many customers stream.
            hook = NeoHook()
            tracemalloc.start()
            samples = []
            records = hook.iter_expiring_allocations(
                range(FIRST, FIRST + customers), **ARGS, **WINDOW
            )
            for count, _ in enumerate(records, 1):
                if count % 500 == 0:
                    samples.append(tracemalloc.get_traced_memory()[0])
            tracemalloc.stop()
            print(
                f"dateRange streamed, {customers:>6} customers: {count} rows, live traced memory"
                f" {min(samples) / 1e6:.2f}-{max(samples) / 1e6:.2f} MB over the run"
            )


if __name__ == "__main__":
    main()
