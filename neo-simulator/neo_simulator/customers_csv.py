"""Write the simulator's customers as a CRM extract: ``customer_id,email,first_name``.

    python -m neo_simulator.customers_csv \
        --url http://127.0.0.1:8790 --out customers.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from pathlib import Path

import requests


def export_customers(url: str, out: Path, wait_seconds: float = 120.0) -> int:
    """Fetch `url`/__sim/customers (waiting for the simulator to come up) and write the CSV."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            response = requests.get(f"{url}/__sim/customers", timeout=60)
            response.raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    customers = response.json()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "first_name"])
        for customer in customers:
            writer.writerow([customer["customer_id"], customer["email"], customer["first_name"]])
    partial.replace(out)
    return len(customers)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the simulator's base URL")
    parser.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    args = parser.parse_args(argv)
    count = export_customers(args.url.rstrip("/"), args.out)
    print(f"{count} customers written to {args.out}")


if __name__ == "__main__":
    main()
