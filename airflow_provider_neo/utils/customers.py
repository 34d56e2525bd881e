"""Where an operator's customers come from: a list, an upstream XCom, or a file, streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from airflow.sdk import ObjectStoragePath

CSV_SUFFIXES = (".csv", ".csv.gz")


def customers_from_value(value: Any) -> Iterable[Any] | None:
    """`customer_ids` as given or rendered: one id, ids, or "1, 2 3" text from a template."""
    if value is None or isinstance(value, (int, list, tuple, range)):
        return [value] if isinstance(value, int) else value
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [part for part in text.replace(",", " ").split() if part]
    if isinstance(value, Iterable):
        return value
    raise ValueError(f"customer_ids: expected ids, got {type(value).__name__}")


def _open_text(path: ObjectStoragePath) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        import gzip

        return io.TextIOWrapper(gzip.open(path.open("rb")), encoding="utf-8")
    return path.open("r", encoding="utf-8")  # type: ignore[no-any-return]


def customers_from_file(url: str, column: str = "customer_id") -> Iterator[Any]:
    """Stream ids from a CSV with a `column` header, or NDJSON objects (or bare ids) a line.

    The file is opened, and a CSV's header checked, when this is called: a missing file or
    column fails before any request. Rows are read one at a time as the ids are drawn.
    """
    path = ObjectStoragePath(url)
    if not path.exists():
        raise ValueError(f"customers_path: no file at {url}")
    handle = _open_text(path)
    if path.name.endswith(CSV_SUFFIXES):
        reader = csv.DictReader(handle)
        if not reader.fieldnames or column not in reader.fieldnames:
            handle.close()
            raise ValueError(
                f"customers_path: {url} has no {column!r} column (columns: {reader.fieldnames})"
            )
        return _csv_ids(handle, reader, column)
    return _ndjson_ids(handle, column, url)


def _csv_ids(handle: io.TextIOBase, reader: csv.DictReader[str], column: str) -> Iterator[Any]:
    with handle:
        for row in reader:
            value = (row.get(column) or "").strip()
            if value:
                yield value


def _ndjson_ids(handle: io.TextIOBase, column: str, url: str) -> Iterator[Any]:
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise ValueError(f"customers_path: line {number} of {url} is not JSON") from None
            yield item.get(column) if isinstance(item, dict) else item
