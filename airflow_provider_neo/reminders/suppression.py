"""The suppression list as an index each shard checks at the cost of its own customers: the
list's ids sorted in a binary file in the run's folder (any ObjectStoragePath), built once.

The index is named after the list as the storage describes it (its location, size,
modification time, and etag or version where the storage has them): the split builds it, and
each delivery asks the storage for that description again, one metadata call, and uses the index
of that name, building it only if the list changed since (an opt-out added after the split
counts). An index file never changes once written, so a delivery reading it while another
builds the next one reads a whole file either way.

File layout: ``NEOSUPP1``, the count of ids and the block size (big-endian 64- and 32-bit), the
first id of each block of `BLOCK` ids (the fences), then the ids, ascending, 8 bytes each. A
lookup reads the fences (1/1024 of the file) and one block per customer asked about.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import sqlite3
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.reminders.crm import CrmFileError, suppressed_ids
from airflow_provider_neo.utils.output import atomic_open

MAGIC: Final = b"NEOSUPP1"
FORMAT: Final = 1  # part of each index's name: a new layout or new rules build anew
BLOCK: Final = 1024
_HEADER = struct.Struct(">8sQI")
# What storages report that changes whenever a file's content does (local: ctime changes on
# every write and cannot be set back; object stores: the etag or generation).
_DESCRIBING: Final = (
    "size", "mtime", "created", "ino", "ETag", "etag", "LastModified", "last_modified",
    "VersionId", "version_id", "generation", "md5Hash", "updated", "content_md5",
)  # fmt: skip


def describe(url: str, *, param: str = "suppression_path") -> str:
    """The list at `url` as its storage describes it now, as text that changes when it does."""
    path = ObjectStoragePath(url)
    try:
        info = path.fs.info(path.path)
    except FileNotFoundError:
        raise CrmFileError(f"{param}: no file at {url}") from None
    except (OSError, ValueError) as exc:
        raise CrmFileError(f"{param}: cannot read {url}: {exc}") from None
    if info.get("type") == "directory":
        raise CrmFileError(f"{param}: {url} is a folder, not a file")
    kept = {key: str(info[key]) for key in _DESCRIBING if key in info}
    return json.dumps({"url": url, "format": FORMAT, **kept}, sort_keys=True)


class SuppressionIndex:
    """The ids of one version of a suppression list, looked up without reading the list."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def current(
        cls, source: str, folder: ObjectStoragePath, *, writer: str | None = None
    ) -> tuple[SuppressionIndex, bool]:
        """The index of the list at `source` as it is now, in `folder`, and whether it had to
        be built (by this call: the list is new or changed since the last index)."""
        description = describe(source)
        digest = hashlib.sha256(description.encode()).hexdigest()[:32]
        target = folder / f"{digest}.index"
        if target.exists():
            return cls(str(target)), False
        build(source, str(target), writer=writer)
        return cls(str(target)), True

    def members(self, customer_ids: Iterable[int]) -> set[int]:
        """Those of `customer_ids` on the list: the fences, then one block per id."""
        wanted = sorted(set(customer_ids))
        found: set[int] = set()
        if not wanted:
            return found
        with ObjectStoragePath(self.url).open("rb") as handle:
            magic, count, block = _HEADER.unpack(handle.read(_HEADER.size))
            if magic != MAGIC:
                raise ValueError(f"suppression_path: {self.url} is not a suppression index")
            fence_count = math.ceil(count / block)
            fences = struct.unpack(f">{fence_count}Q", handle.read(8 * fence_count))
            start = _HEADER.size + 8 * fence_count
            loaded: dict[int, tuple[int, ...]] = {}
            for customer_id in wanted:
                position = bisect.bisect_right(fences, customer_id) - 1
                if position < 0:
                    continue
                if position not in loaded:
                    size = min(block, count - position * block)
                    handle.seek(start + 8 * position * block)
                    loaded[position] = struct.unpack(f">{size}Q", handle.read(8 * size))
                ids = loaded[position]
                at = bisect.bisect_left(ids, customer_id)
                if at < len(ids) and ids[at] == customer_id:
                    found.add(customer_id)
        return found


def build(source: str, url: str, *, writer: str | None = None) -> int:
    """Read the list at `source` once and write its index at `url`; the number of ids. The ids
    are sorted in a SQLite file in a local temporary folder: memory stays flat."""
    with tempfile.TemporaryDirectory(prefix="neo-suppression-") as staging:
        db = sqlite3.connect(Path(staging) / "ids.sqlite3", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE id (customer_id INTEGER PRIMARY KEY)")
            db.execute("BEGIN")
            batch: list[tuple[int]] = []
            for customer_id in suppressed_ids(source):
                batch.append((customer_id,))
                if len(batch) >= 1_000:
                    db.executemany("INSERT OR IGNORE INTO id VALUES (?)", batch)
                    batch.clear()
            db.executemany("INSERT OR IGNORE INTO id VALUES (?)", batch)
            db.execute("COMMIT")
            count = int(db.execute("SELECT count(*) FROM id").fetchone()[0])
            fences = [
                row[0]
                for row in db.execute(
                    "SELECT customer_id FROM (SELECT customer_id, row_number() OVER"
                    " (ORDER BY customer_id) - 1 AS position FROM id)"
                    f" WHERE position % {BLOCK} = 0 ORDER BY customer_id"
                )
            ]
            with atomic_open(url, writer=writer) as handle:
                handle.write(_HEADER.pack(MAGIC, count, BLOCK))
                handle.write(struct.pack(f">{len(fences)}Q", *fences))
                ids = db.execute("SELECT customer_id FROM id ORDER BY customer_id")
                while chunk := ids.fetchmany(BLOCK):
                    handle.write(struct.pack(f">{len(chunk)}Q", *(row[0] for row in chunk)))
        finally:
            db.close()
    return count
