"""How long the sent-ledger's one window is, and what a claim costs.

The window: a runner that dies after the mail server accepted a message and before the ledger
recorded it as sent leaves a claim that is taken over (and the message sent again) once its
lease runs out. Its length is the time `mark_sent` takes, measured here on SQLite (one machine)
and on PostgreSQL (a local Debian server, as a multi-host deployment uses it).

make bench-ledger                    # 2,000 reminders per store
make bench-ledger ARGS=10000
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from airflow_provider_neo.reminders.ledger import SentLedger
from deploy.servers import PostgresServer


def _milliseconds(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def measure(name: str, ledger: SentLedger, count: int) -> None:
    claims: list[float] = []
    marks: list[float] = []
    for index in range(count):
        key = f"{400_000_000 + index}:2026-12-21:30"
        started = time.perf_counter()
        ledger.claim(
            key, owner="bench", customer_id=index, channel="email",
            expiry_date=dt.date(2026, 12, 21), lead_days=30,
        )  # fmt: skip
        claimed = time.perf_counter()
        ledger.mark_sent(key, owner="bench")
        claims.append(claimed - started)
        marks.append(time.perf_counter() - claimed)
    print(f"{name:<11} claim: {_milliseconds(claims)}; window (mark sent): {_milliseconds(marks)}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    print(f"{count:,} reminders claimed and marked sent, one at a time, per store")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SentLedger.open(path=Path(tmp) / "ledger.sqlite3")
        measure("SQLite", sqlite, count)
        sqlite.close()
        with PostgresServer(Path(tmp) / "postgres") as server:
            server.psql("CREATE DATABASE neo_ledger")
            postgres = SentLedger(sa.create_engine(server.url("neo_ledger")))
            measure("PostgreSQL", postgres, count)
            postgres.close()


if __name__ == "__main__":
    main()
