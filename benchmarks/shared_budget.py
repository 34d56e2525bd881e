"""One Neo rate budget shared by 1, 4 and 8 processes, with and without a shared store.

    make bench-budget                 # ARGS="--window 8 --requests 80" to change the run

The simulator limits each run to 60 requests per window (a minute compressed into `--window`
seconds) and every process's connection has the same budget, 60 per window. Each run spreads
`--requests` customers (one request each) over the processes, which start together; it prints
the rate Neo accepted against the budget, and the 429s provoked. Figures are printed, not
asserted; tests/provider/client/test_ratelimit_processes.py asserts the four-process case. Without a
shared store the accepted rate can pass the budget for a while: each process spends the whole
budget until Neo's window is full, which is exactly what provokes the 429s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from urllib.parse import urlsplit

from deploy.servers import RedisServer
from neo_simulator.process import SimulatorProcess
from tests.budget_parties import run_parties  # the parties, as the tests run them

FIRST = 400_000_001
LIMIT = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=8.0, help="seconds standing for a minute")
    parser.add_argument("--requests", type=int, default=80, help="requests per run")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neo-bench-"))
    sim_args = [
        "--customers", str(args.requests), "--as-of", "2026-11-21",
        "--rate-limit-per-minute", str(LIMIT), "--rate-window-seconds", str(args.window),
    ]  # fmt: skip
    with SimulatorProcess(sim_args) as sim, RedisServer() as redis:
        parts = urlsplit(sim.url)
        budget = LIMIT * 60 / args.window
        connection = {
            "conn_type": "neo", "host": parts.hostname, "port": parts.port, "schema": "http",
            "login": "neo_user", "password": "neo_password",
            "extra": {"requests_per_minute": budget, "max_concurrency": 2},
        }  # fmt: skip
        env = {**os.environ, "AIRFLOW_CONN_NEO_DEFAULT": json.dumps(connection)}
        print(
            f"Neo limit and connection budget: {LIMIT} requests per {args.window:g} s"
            f" ({LIMIT / args.window:.2f}/s); {args.requests} requests per run"
        )
        print(f"{'processes':>9}  {'store':<8} {'accepted/s':>10} {'of budget':>9} {'sent':>5}"
              f" {'429s':>5} {'seconds':>7}")  # fmt: skip
        customers = range(FIRST, FIRST + args.requests)
        for processes in (1, 4, 8):
            shares = [customers[i::processes] for i in range(processes)]
            for store, url in (("memory", "memory://"), ("redis", redis.url)):
                sim_reset(sim.url)
                run = run_parties(shares, {"rate_limit_storage": url}, env=env)
                failed = f"  failed: {run.errors[0]}" if run.errors else ""
                print(
                    f"{processes:>9}  {store:<8} {run.accepted_per_second:>10.2f}"
                    f" {run.accepted_per_second / (LIMIT / args.window):>9.0%}"
                    f" {run.requests:>5} {run.limited:>5} {run.seconds:>7.1f}{failed}",
                    flush=True,
                )


def sim_reset(url: str) -> None:
    """A fresh rate window and counters for each run."""
    import requests

    requests.post(f"{url}/__sim/reset", timeout=30).raise_for_status()


if __name__ == "__main__":
    main()
