"""Records written to object storage as NDJSON or CSV, atomically.

Rows go to a temporary object beside the target, which is renamed onto the target only when
every row is written: a run that fails half-way leaves no file that looks complete (and removes
its temporary one). On local disks the rename is atomic; on object stores it is a copy, after
which the target appears whole.
"""

from __future__ import annotations

import contextlib
import csv
import io
import uuid
from collections.abc import Iterator
from decimal import Decimal
from types import TracebackType
from typing import IO, Any, Final

import msgspec
from airflow.sdk import ObjectStoragePath

FORMATS: Final = ("ndjson", "csv")
_NDJSON = msgspec.json.Encoder(decimal_format="number")


def _csv_value(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


@contextlib.contextmanager
def atomic_open(url: str) -> Iterator[IO[bytes]]:
    """A binary file at `url` that appears only once closed without error."""
    target = ObjectStoragePath(url)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = temporary.open("wb")
    try:
        yield handle
    except BaseException:
        handle.close()
        if temporary.exists():
            temporary.unlink()
        raise
    handle.close()
    temporary.rename(target)


class RecordSink:
    def __init__(self, url: str, output_format: str, record_type: type[msgspec.Struct]) -> None:
        if output_format not in FORMATS:
            raise ValueError(
                f"output_format: expected one of {', '.join(FORMATS)}, got {output_format!r}"
            )
        self.url = url
        self.format = output_format
        self.fields = [f.name for f in msgspec.structs.fields(record_type)]
        self.columns = [f.encode_name for f in msgspec.structs.fields(record_type)]
        self.rows = 0
        self._file = atomic_open(url)
        self._binary: IO[bytes] | None = None
        self._csv: Any = None
        self._text: io.TextIOWrapper | None = None

    def __enter__(self) -> RecordSink:
        self._binary = self._file.__enter__()
        if self.format == "csv":
            self._text = io.TextIOWrapper(self._binary, encoding="utf-8", newline="")
            self._csv = csv.writer(self._text)
            self._csv.writerow(self.columns)
        return self

    def write(self, record: msgspec.Struct) -> None:
        if self._csv is not None:
            self._csv.writerow([_csv_value(getattr(record, name)) for name in self.fields])
        else:
            assert self._binary is not None
            self._binary.write(_NDJSON.encode(record) + b"\n")
        self.rows += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._text is not None:
            self._text.flush()
            self._text.detach()  # the binary file stays open for atomic_open to close
        self._file.__exit__(exc_type, exc, tb)
