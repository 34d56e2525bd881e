"""Records and reports written to object storage as NDJSON or CSV, atomically.

Rows go to a temporary object beside the target, which is renamed onto the target only when
every row is written: a run that fails half-way leaves no file that looks complete (and removes
its temporary one). On local disks the rename is atomic; on object stores it is a copy, after
which the target appears whole. A try that was killed cannot remove its temporary object; the
next try of the same task (the same `writer`) removes it before writing.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Final

import msgspec
from airflow.providers.common.compat.sdk import AirflowException, ObjectStoragePath

from airflow_provider_neo.records import JSON_ENCODER
from airflow_provider_neo.validation import choice

if TYPE_CHECKING:
    from _csv import Writer as CsvWriter

FORMATS: Final = ("ndjson", "csv")


# A text cell a spreadsheet would read as a formula starts with one of these (OWASP, "CSV
# injection"); a plain number that starts with a sign is still a number.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text starting with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return gets a leading ``'`` (OWASP's rule), unless it is a plain number;
    numbers and other values are left as they are."""
    formula = isinstance(value, str) and value.startswith(_FORMULA_STARTS)
    return "'" + value if formula and not _PLAIN_NUMBER.fullmatch(value) else value


class SpreadsheetSafeWriter:
    """A csv writer whose text cells are `spreadsheet_safe`: for every CSV a person may open."""

    def __init__(self, writer: CsvWriter) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([spreadsheet_safe(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def _csv_value(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def task_writer(context: Mapping[str, Any]) -> str | None:
    """The writer name of the running task instance: the same for each of its tries."""
    ti = context.get("ti")
    if ti is None:
        return None
    identity = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


@contextlib.contextmanager
def atomic_open(url: str, *, writer: str | None = None) -> Iterator[IO[bytes]]:
    """A binary file at `url` that appears only once closed without error.

    With a `writer` (`task_writer(context)`), temporary objects that an earlier, killed try of
    the same writer left beside `url` are removed first."""
    target = ObjectStoragePath(url)
    prefix = f".{target.name}.{writer}." if writer else f".{target.name}."
    temporary = target.parent / f"{prefix}{uuid.uuid4().hex}.partial"
    target.parent.mkdir(parents=True, exist_ok=True)
    if writer:
        for stale in target.parent.iterdir():
            if stale.name.startswith(prefix) and stale.name.endswith(".partial"):
                stale.unlink()
    handle = temporary.open("wb")
    try:
        try:
            yield handle
        finally:
            handle.close()
        temporary.rename(target)
    except BaseException:
        # A failed write, or a target that cannot be replaced (a directory, say): no debris.
        if temporary.exists():
            temporary.unlink()
        raise


@contextlib.contextmanager
def atomic_csv(
    url: str,
    columns: Sequence[str],
    *,
    writer: str | None = None,
    for_spreadsheets: bool = True,
) -> Iterator[CsvWriter | SpreadsheetSafeWriter]:
    """A CSV writer, its header row written, whose file at `url` appears only once the block
    ends without error (`atomic_open`, with the same `writer` cleanup of a killed try's file).
    Its text cells are `spreadsheet_safe`, unless the file is only ever read back by the
    workflow itself (`for_spreadsheets=False`), where a changed cell would change the data.
    """
    with atomic_open(url, writer=writer) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        try:
            plain = csv.writer(text)
            plain.writerow(columns)
            yield SpreadsheetSafeWriter(plain) if for_spreadsheets else plain
        finally:
            text.detach()  # flushes; the binary file stays open for atomic_open to close


class OutputPathError(AirflowException):
    """The output location (`output_path`) cannot be written."""

    def __init__(self, url: str, exc: BaseException) -> None:
        super().__init__(f"output_path: cannot write {url!r}: {type(exc).__name__}: {exc}")


class RecordSink:
    """Records of one type streamed to `url` as NDJSON or CSV (columns: the wire names).
    Failures of the output location itself raise `OutputPathError`, naming `output_path`."""

    def __init__(
        self,
        url: str,
        output_format: str,
        record_type: type[msgspec.Struct],
        *,
        writer: str | None = None,
    ) -> None:
        self.url = url
        self.format = choice("output_format", output_format, FORMATS)
        self.fields = [f.name for f in msgspec.structs.fields(record_type)]
        self.columns = [f.encode_name for f in msgspec.structs.fields(record_type)]
        self.rows = 0
        self.writer = writer
        self._outputs = contextlib.ExitStack()
        self._binary: IO[bytes] | None = None
        self._csv: CsvWriter | SpreadsheetSafeWriter | None = None

    def __enter__(self) -> RecordSink:
        if not str(self.url).strip():
            raise OutputPathError(self.url, ValueError("the location is empty"))
        try:
            if self.format == "csv":
                self._csv = self._outputs.enter_context(
                    atomic_csv(self.url, self.columns, writer=self.writer)
                )
            else:
                self._binary = self._outputs.enter_context(
                    atomic_open(self.url, writer=self.writer)
                )
        except (OSError, ValueError, ImportError) as exc:  # ImportError: a scheme's package
            raise OutputPathError(self.url, exc) from exc
        return self

    def write(self, record: msgspec.Struct) -> None:
        try:
            if self._csv is not None:
                self._csv.writerow([_csv_value(getattr(record, name)) for name in self.fields])
            else:
                assert self._binary is not None
                self._binary.write(JSON_ENCODER.encode(record) + b"\n")
        except OSError as exc:  # a full disk, a lost mount
            raise OutputPathError(self.url, exc) from exc
        self.rows += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._outputs.__exit__(exc_type, exc, tb)
            return
        try:
            self._outputs.__exit__(None, None, None)  # the rename onto the target
        except OSError as error:
            raise OutputPathError(self.url, error) from error
