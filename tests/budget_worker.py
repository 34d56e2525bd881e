"""One party of a shared-budget run, in a process of its own: a NeoHook fetching customers.

    python tests/budget_worker.py '{"customers": [400000001, ...], "overrides": {...}}'

It imports and reads the connection (AIRFLOW_CONN_NEO_DEFAULT), prints "ready", then waits for a
line on stdin, so that every party starts at the same moment whatever its import took. It then
fetches each customer's expiring allocations (one request a customer) and prints one JSON line:
rows, requests, 429s, whether it failed and how, and its start and end (time.time()).
Used by tests/provider/client/test_ratelimit_processes.py and benchmarks/shared_budget.py.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from airflow_provider_neo.client.errors import NeoError
from airflow_provider_neo.hooks.neo import NeoHook

QUERY: dict[str, Any] = {
    "program_id": 2282,
    "point_category_id": 17383,
    "expiry_start": "2000-01-01",
    "expiry_end": "2099-12-31",
}


def main() -> None:
    job = json.loads(sys.argv[1])
    hook = NeoHook(**job.get("overrides", {}))
    hook.settings  # noqa: B018 - read the connection before the start line, not after
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    rows, error = 0, None
    try:
        rows = sum(1 for _ in hook.iter_expiring_allocations(job["customers"], **QUERY))
    except NeoError as exc:
        error = f"{type(exc).__name__}: {exc.reason}"
    finished = time.time()
    stats = hook.stats.snapshot()
    print(
        json.dumps(
            {
                "rows": rows,
                "requests": stats["requests"],
                "limited": stats["statuses"].get("429", 0),
                "error": error,
                "started": started,
                "finished": finished,
            }
        ),
        flush=True,
    )
    hook.close()


if __name__ == "__main__":
    main()
