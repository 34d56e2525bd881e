"""How long the simulator takes to build its data, and how much it builds.

make bench-simulator                 # 100,000 customers
make bench-simulator ARGS=250000     # another size
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time

from neo_simulator.server import SimulatorSettings, build


def main() -> None:
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        db_path = os.path.join(tmp, "neo.sqlite3")
        started = time.perf_counter()
        sim = build(
            SimulatorSettings(customers=customers, as_of=dt.date(2026, 11, 21), db_path=db_path)
        )
        seconds = time.perf_counter() - started
        rows = sim.store.counts()
        sim.store.close()
        size_mb = os.path.getsize(db_path) / 1e6
    print(
        f"simulator build: {customers} customers -> {rows['allocations']} allocations,"
        f" {rows['events']} events in {seconds:.1f} s"
        f" ({rows['allocations'] / seconds:,.0f} allocations/s, database {size_mb:.0f} MB)"
    )


if __name__ == "__main__":
    main()
