"""The CRM extract in shard files: every row checked (`reminders.crm`), the rows refused written
to a rejects file beside the shards, and the rest in at most `max_shards` shard files, each
carrying its customers' consent so that no later step reads the extract again.

The number of shards is bounded because each is a mapped task instance and Airflow refuses to
map more than ``[core] max_map_length`` (1,024 by default): the shard size is `shard_size`,
grown to ``ceil(customers / max_shards)`` when the extract is larger than that many shards.

The extract is read once and staged in a SQLite file in a local temporary folder (about the
extract's size on the worker's disk; memory stays flat whatever its size): the staging finds the
ids listed more than once (every row of such an id is refused) and counts the customers before
any shard is written, so that the shard size is known up front and every shard comes from one
reading of the file.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from itertools import groupby
from pathlib import Path
from typing import Any, Final

import msgspec
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.reminders.crm import Rejected, RowError, read_extract
from airflow_provider_neo.reminders.model import Customer
from airflow_provider_neo.utils.files import byte_lines
from airflow_provider_neo.utils.output import atomic_csv, atomic_open

REJECT_COLUMNS: Final = ("param", "file", "line", "column", "reason")
REJECTS_LISTED: Final = 10  # rejects named in the XCom and the log; the file has them all
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Customer)


class Split(msgspec.Struct, kw_only=True):
    """What a split did: the shards to map over, and the rows refused."""

    shards: list[dict[str, Any]]
    shard_size: int
    rows: int = 0  # data rows read (blank lines not counted)
    customers: int = 0  # in the shards
    rejected_rows: int = 0
    rejects_path: str = ""
    rejects: list[dict[str, Any]] = msgspec.field(default_factory=list)  # the first few

    def rows_summary(self) -> dict[str, Any]:
        """What the day's summary counts of the extract's rows (the split's ``rows`` XCom)."""
        return {
            "rows": self.rows,
            "customers": self.customers,
            "rejected_rows": self.rejected_rows,
            "rejects_path": self.rejects_path,
            "rejects": self.rejects,
        }


def shard_size_for(customers: int, *, shard_size: int, max_shards: int) -> int:
    """`shard_size`, or the smallest size that fits `customers` in `max_shards` shards."""
    return max(shard_size, math.ceil(customers / max_shards))


def split_extract(
    customers_path: str,
    folder: ObjectStoragePath,
    *,
    shard_size: int,
    max_shards: int,
    international_email: bool = False,
    writer: str | None = None,
) -> Split:
    """Check the extract at `customers_path` and write its customers to shard files
    (``shard-NNNNN.ndjson``, `Customer` records a line, in the file's order) and the rows it
    refuses to ``rejects.csv`` (one line per reason), both in `folder`."""
    rejects_url = str(folder / "rejects.csv")
    rows = read_extract(customers_path, international_email=international_email)
    split = Split(shards=[], shard_size=shard_size, rejects_path=rejects_url)
    with (
        tempfile.TemporaryDirectory(prefix="neo-split-") as staging,
        atomic_csv(rejects_url, REJECT_COLUMNS, writer=writer) as rejects,
    ):
        db = sqlite3.connect(Path(staging) / "extract.sqlite3", isolation_level=None)
        try:

            def reject(errors: tuple[RowError, ...]) -> None:
                split.rejected_rows += 1
                for error in errors:
                    rejects.writerow([error.param, error.file, error.line, error.column,
                                      error.reason])  # fmt: skip
                    if len(split.rejects) < REJECTS_LISTED:
                        split.rejects.append(msgspec.to_builtins(error))

            _stage(db, rows, split, reject)
            for errors in _repeated_ids(db, customers_path):
                reject(errors)
            split.customers = db.execute(
                "SELECT count(*) FROM customer WHERE customer_id NOT IN (SELECT id FROM repeated)"
            ).fetchone()[0]
            split.shard_size = shard_size_for(
                split.customers, shard_size=shard_size, max_shards=max_shards
            )
            _write_shards(db, folder, split, writer)
        finally:
            db.close()
    return split


def _stage(
    db: sqlite3.Connection,
    rows: Iterator[tuple[int, Customer | Rejected]],
    split: Split,
    reject: Callable[[tuple[RowError, ...]], None],
) -> None:
    """Every customer of the extract into the staging database, rows refused as they come."""
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute(
        "CREATE TABLE customer (line INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,"
        " record BLOB NOT NULL)"
    )
    db.execute("BEGIN")
    batch: list[tuple[int, int, bytes]] = []
    for line, row in rows:
        split.rows += 1
        if isinstance(row, Rejected):
            reject(row.errors)
            continue
        batch.append((line, row.customer_id, _ENCODER.encode(row)))
        if len(batch) >= 1_000:
            db.executemany("INSERT INTO customer VALUES (?, ?, ?)", batch)
            batch.clear()
    db.executemany("INSERT INTO customer VALUES (?, ?, ?)", batch)
    db.execute("COMMIT")
    db.execute("CREATE INDEX customer_by_id ON customer (customer_id, line)")
    db.execute(
        "CREATE TABLE repeated AS SELECT customer_id AS id FROM customer"
        " GROUP BY customer_id HAVING count(*) > 1"
    )


def _repeated_ids(db: sqlite3.Connection, url: str) -> Iterator[tuple[RowError, ...]]:
    """For each row of an id listed more than once, its refusal naming the other lines."""
    lines = db.execute(
        "SELECT customer_id, line FROM customer WHERE customer_id IN (SELECT id FROM repeated)"
        " ORDER BY customer_id, line"
    )
    for customer_id, group in groupby(lines, key=lambda row: row[0]):
        on = [line for _, line in group]
        for line in on:
            others = [other for other in on if other != line]
            named = ", ".join(str(other) for other in others[:5])
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            yield (
                RowError(
                    param="customers_path", file=url, line=line, column="customer_id",
                    reason=f"customer {customer_id} is also on line {named}{more}: a customer"
                    " listed more than once is refused on every line (which row is right is"
                    " the CRM's to say)",
                ),
            )  # fmt: skip


def _write_shards(
    db: sqlite3.Connection, folder: ObjectStoragePath, split: Split, writer: str | None
) -> None:
    records = db.execute(
        "SELECT record FROM customer WHERE customer_id NOT IN (SELECT id FROM repeated)"
        " ORDER BY line"
    )
    while True:
        chunk = records.fetchmany(split.shard_size)
        if not chunk:
            return
        url = str(folder / f"shard-{len(split.shards):05d}.ndjson")
        with atomic_open(url, writer=writer) as handle:
            for (record,) in chunk:
                handle.write(record + b"\n")
        split.shards.append({"index": len(split.shards), "path": url, "customers": len(chunk)})


def read_shard(url: str) -> list[Customer]:
    """The customers of a shard file, as the split wrote them."""
    return [_DECODER.decode(line) for line in byte_lines(url) if line.strip()]
