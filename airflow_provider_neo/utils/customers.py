"""Where the customers of an operator, sensor or trigger come from: a list, one id, "1,2,3"
text, an upstream XCom, or a CSV/NDJSON file, streamed (`CustomerSource`)."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Generator, Iterable, Iterator
from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.utils.arguments import Delegated
from airflow_provider_neo.utils.files import text_lines
from airflow_provider_neo.validation import whole_number

log = logging.getLogger(__name__)

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


def customers_from_file(url: str, column: str = "customer_id") -> Iterator[Any]:
    """Stream ids from a CSV with a `column` header, or NDJSON objects (or bare ids) a line.

    The file is opened, and a CSV's header checked, when this is called: a missing file or
    column fails before any request. Rows are read one at a time as the ids are drawn. The file
    must be UTF-8, with or without a byte-order mark.
    """
    path = ObjectStoragePath(url)
    if not path.exists():
        raise ValueError(f"customers_path: no file at {url}")
    lines = text_lines(url, argument="customers_path")
    if path.name.endswith(CSV_SUFFIXES):
        reader = csv.DictReader(lines)
        if not reader.fieldnames or column not in reader.fieldnames:
            lines.close()
            raise ValueError(
                f"customers_path: {url} has no {column!r} column (columns: {reader.fieldnames})"
            )
        return _csv_ids(lines, reader, column)
    return _ndjson_ids(lines, column, url)


def _csv_ids(
    lines: Generator[str, None, None], reader: csv.DictReader[str], column: str
) -> Iterator[Any]:
    try:
        for row in reader:
            value = (row.get(column) or "").strip()
            if value:
                yield value
    finally:
        lines.close()


def _ndjson_ids(lines: Generator[str, None, None], column: str, url: str) -> Iterator[Any]:
    try:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise ValueError(f"customers_path: line {number} of {url} is not JSON") from None
            yield item.get(column) if isinstance(item, dict) else item
    finally:
        lines.close()


class CustomerSource:
    """The customers arguments: checked once when built, rendered by Airflow in place
    (`template_fields`), and resolved per run into the ids.

    :param customer_ids: ids, one id, comma-separated text, or an upstream XCom.
    :param customers_path: instead, a CSV with a ``customers_column`` column or NDJSON, local or
        any ObjectStoragePath URL, streamed.
    :param customers_column: the id column of ``customers_path`` (default ``customer_id``).
    """

    template_fields: ClassVar[tuple[str, ...]] = ("customer_ids", "customers_path")

    def __init__(
        self,
        customer_ids: Any = None,
        customers_path: str | None = None,
        customers_column: str = "customer_id",
    ) -> None:
        if (customer_ids is None) == (customers_path is None):
            raise ValueError("customer_ids: give exactly one of customer_ids or customers_path")
        self.customer_ids = customer_ids
        self.customers_path = customers_path
        self.customers_column = customers_column
        self.duplicate_ids = 0  # ids of `customers_path` skipped as repeats, in the last run

    def __repr__(self) -> str:
        if self.customers_path is not None:
            return f"CustomerSource(customers_path={self.customers_path!r})"
        return f"CustomerSource(customer_ids={self.customer_ids!r})"

    def resolve(self) -> Iterable[Any]:
        """The ids, as given or streamed from the file (opened, and its header checked, now:
        a missing file or column fails before any request). They are checked as drawn."""
        if self.customers_path is not None:
            if not str(self.customers_path).strip():
                raise ValueError("customers_path: rendered empty")
            self.duplicate_ids = 0
            return self._each_once(customers_from_file(self.customers_path, self.customers_column))
        ids = customers_from_value(self.customer_ids)
        if ids is None:  # rendered to nothing, e.g. an upstream task that returned None
            raise ValueError("customer_ids: expected ids, got None")
        return ids

    def _each_once(self, ids: Iterator[Any]) -> Generator[Any, None, None]:
        """`ids` without repeats (a file may list a customer twice), counting the repeats."""
        seen: set[Any] = set()
        for value in ids:
            number = whole_number(value)
            key = repr(value) if number is None else number  # "007" and 7 are one customer
            if key in seen:
                self.duplicate_ids += 1
                continue
            seen.add(key)
            yield value
        if self.duplicate_ids:
            log.warning(
                "customers_path: %s lists %d id(s) more than once; each customer is fetched once",
                self.customers_path,
                self.duplicate_ids,
            )


class HasCustomers:
    """For operators and sensors: their `customer_ids`, `customers_path` and `customers_column`
    attributes (and template fields) are those of their `customer_source`."""

    customer_source: CustomerSource
    customer_ids = Delegated("customer_source")
    customers_path = Delegated("customer_source")
    customers_column = Delegated("customer_source")
