"""The sent-ledger at a large brand's size: does a claim and a prune stay cheap with millions of
rows? A local PostgreSQL server (Debian's, as a multi-host deployment uses it) gets a ledger
filled in one statement (generate_series): reminders spread over 120 expiry days, the 90 days a
retention of 90 keeps and the 30 ahead, about 40,000 a day at 5,000,000 rows. Then, with
EXPLAIN ANALYZE (each statement run and rolled back), the plans of a claim of an existing key
and of a prune's two statements, and the wall time of a real prune of the oldest day.

make bench-ledger-retention                     # 5,000,000 rows
make bench-ledger-retention ARGS=1000000
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from airflow_provider_neo.reminders.ledger import REMINDERS_TABLE, SentLedger
from deploy.servers import PostgresServer
from tests.ledger_plans import FIRST_DAY, fill, plans

DAYS = 120


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    with tempfile.TemporaryDirectory() as tmp, PostgresServer(Path(tmp) / "postgres") as server:
        server.psql("CREATE DATABASE neo_ledger")
        ledger = SentLedger(sa.create_engine(server.url("neo_ledger")))
        started = time.perf_counter()
        fill(ledger, rows=rows, days=DAYS)
        print(f"{rows:,} reminders over {DAYS} expiry days, filled and analysed in"
              f" {time.perf_counter() - started:.1f} s")  # fmt: skip
        with ledger.engine.connect() as db:
            size = db.execute(sa.text(f"SELECT pg_total_relation_size('{REMINDERS_TABLE}')"))
            print(f"ledger size: {size.scalar_one() / 2**20:,.0f} MiB (table and indexes)")
        for name, plan in plans(ledger, analyze=True).items():
            print(f"\n--- {name}\n{plan}")
        started = time.perf_counter()
        pruned = ledger.prune(before=FIRST_DAY + dt.timedelta(days=1))
        print(f"\nprune of the oldest expiry day: {pruned.reminders:,} reminders in"
              f" {time.perf_counter() - started:.2f} s")  # fmt: skip
        ledger.close()


if __name__ == "__main__":
    main()
