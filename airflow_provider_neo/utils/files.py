"""Lines of a local or object-storage file (any ObjectStoragePath URL), read one at a time.

Read with ``readline`` rather than by iterating the file: the file objects of Airflow 2.11 and
task SDK < 1.1.2 are not iterable (``csv.DictReader(path.open())`` fails on them).
"""

from __future__ import annotations

import codecs
import gzip
from collections.abc import Generator

from airflow.providers.common.compat.sdk import ObjectStoragePath


def byte_lines(url: str) -> Generator[bytes, None, None]:
    """The lines of the file at `url` as bytes, newlines kept; ``.gz`` files decompressed."""
    path = ObjectStoragePath(url)
    with path.open("rb") as raw:
        # A GzipFile does not close the file it reads; `raw` is closed by its own `with`.
        binary = gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
        yield from iter(binary.readline, b"")


def text_lines(url: str, *, argument: str) -> Generator[str, None, None]:
    """The lines of the UTF-8 file at `url` as text, a byte-order mark (Excel's "CSV UTF-8")
    skipped. Each line is decoded on its own, so that a byte that is not UTF-8 is reported
    with its line, under the name of the `argument` that gave the file."""
    for number, raw in enumerate(byte_lines(url), 1):
        line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{argument}: line {number} of {url} is not UTF-8 (byte"
                f" {line[exc.start]:#04x} at column {exc.start + 1}; Latin-1 or Windows-1252,"
                " perhaps): save the file as UTF-8"
            ) from None


def read_text(url: str, *, argument: str) -> str:
    """The whole UTF-8 file at `url` (a template, say), errors naming the `argument`."""
    if not ObjectStoragePath(url).exists():
        raise ValueError(f"{argument}: no file at {url}")
    return "".join(text_lines(url, argument=argument))
