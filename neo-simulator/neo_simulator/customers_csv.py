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
from typing import Any

import requests

PAGE = 50_000  # customers per request: memory stays flat on both sides at any size


def export_customers(url: str, out: Path, wait_seconds: float = 120.0) -> int:
    """Fetch `url`/__sim/customers page by page (waiting for the simulator to come up) and
    write the CSV."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            page = _customers(url, offset=0)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    written = 0
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "first_name"])
        while True:
            for customer in page:
                writer.writerow(
                    [customer["customer_id"], customer["email"], customer["first_name"]]
                )
            written += len(page)
            if len(page) < PAGE:
                break
            page = _customers(url, offset=written)
    partial.replace(out)
    return written


def _customers(url: str, *, offset: int) -> list[dict[str, Any]]:
    response = requests.get(
        f"{url}/__sim/customers", params={"limit": PAGE, "offset": offset}, timeout=60
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the simulator's base URL")
    parser.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    args = parser.parse_args(argv)
    count = export_customers(args.url.rstrip("/"), args.out)
    print(f"{count} customers written to {args.out}")


if __name__ == "__main__":
    main()
