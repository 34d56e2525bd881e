"""One delivery runner in its own process, for the tests that run several at once.

``python tests/ledger_runner.py --ledger-path P | --ledger-conn-id C --owner O --count N
--send-seconds S --outbox F --go G``: waits until the file G exists, then delivers reminders
0..N-1 through the ledger; each send waits S seconds (a slow mail server), then appends
"owner key" to F (the mail server accepting it). Prints the delivery counts as JSON.
``--die-at K`` kills the process (SIGKILL) in the middle of its K-th send, before acceptance.
``--prune-before DAY`` prunes the ledger of the expiry days before DAY instead, once G exists,
and prints what it pruned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

import msgspec

from airflow_provider_neo.reminders.delivery import deliver
from airflow_provider_neo.reminders.ledger import SentLedger
from airflow_provider_neo.reminders.model import Reminder

EXPIRY_DAY = dt.date(2026, 12, 21)


def reminders(count: int) -> list[Reminder]:
    return [
        Reminder(
            customer_id=400_000_000 + index,
            email=f"customer{index}@example.com",
            first_name="Asha",
            lead_days=30,
            expiry_date=EXPIRY_DAY,
            remaining_points=Decimal("12.500"),
            programs={"2282": Decimal("12.500")},
        )
        for index in range(count)
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger-path")
    parser.add_argument("--ledger-conn-id")
    parser.add_argument("--owner", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--send-seconds", type=float, default=0.0)
    parser.add_argument("--lease-seconds", type=float, default=60.0)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--go", type=Path, required=True)
    parser.add_argument("--die-at", type=int, default=0)
    parser.add_argument("--prune-before", type=dt.date.fromisoformat)
    args = parser.parse_args(argv)
    ledger = SentLedger.open(path=args.ledger_path, conn_id=args.ledger_conn_id)
    if args.prune_before:
        while not args.go.exists():
            time.sleep(0.01)
        pruned = ledger.prune(before=args.prune_before)
        print(json.dumps({"reminders": pruned.reminders, "days": pruned.days}))
        return 0
    sends = 0

    def send(reminder: Reminder) -> None:
        nonlocal sends
        sends += 1
        time.sleep(args.send_seconds)
        if sends == args.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        with args.outbox.open("a") as outbox:
            outbox.write(f"{args.owner} {reminder.key}\n")

    while not args.go.exists():
        time.sleep(0.01)
    done = deliver(
        reminders(args.count), ledger, send, owner=args.owner, lease_seconds=args.lease_seconds
    )
    print(json.dumps(msgspec.to_builtins(done)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
