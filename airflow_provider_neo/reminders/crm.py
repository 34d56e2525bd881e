"""The brand's CRM extract and suppression list, read one row at a time and checked: what a
careless export or a hostile row can carry (an address list, a typo'd id, a consent word nobody
defined) is refused with the param, the file, the line and the column, never guessed at.

The rules (docs/reminders/crm-extract.md says the same for brands):

- **Columns** are matched by name, ignoring case and surrounding whitespace (``Email`` and
  `` email `` are ``email``); other columns are ignored. ``customer_id`` and ``email`` are
  required; ``first_name``, ``mobile``, ``email_opt_in`` and ``sms_opt_in`` are optional.
- **File-level errors** stop the reading at once (`CrmFileError`): no file, an empty file, a
  header that is not UTF-8 or not CSV, a required column missing, two columns with one name.
- **Row-level errors** reject that row alone (`RowError`, one per bad field): a line that is not
  UTF-8 or not CSV, more or fewer fields than the header, a bad value in a column below, a
  customer id on more than one row (every one of those rows is refused: which address is right
  is the brand's call).
- ``customer_id``: ASCII digits only, no sign, spaces, separators or leading zero, at most
  2**63-1 as Neo's ids (``1_234``, `` 1234 ``, ``0123`` and non-ASCII digits are refused).
- ``email``: empty (no address), or exactly one address as RFC 5322's addr-spec without its
  obsolete and quoted forms: a dot-atom local part (at most 64 bytes), ``@``, a host name of
  two or more labels (letters, digits, hyphens), at most 254 bytes in all. No list, display
  name, quotes, comment, IP literal or space. Non-ASCII (RFC 6531) only when the channel takes
  it (`international_email`), its domain checked as IDNA.
- ``mobile``: empty, or ``+``, the country code and number, 7 to 15 digits (E.164), spaces,
  ``-``, ``.`` and parentheses allowed between them and dropped.
- ``email_opt_in`` / ``sms_opt_in``: yes (``yes``, ``y``, ``true``, ``t``, ``1``, ``on``) or no
  (``no``, ``n``, ``false``, ``f``, ``0``, ``off``), any case; empty (or no such column) is yes.
  Any other value (``unsubscribed``, ``opted_out``) is an error, never consent.
- No field of a known column may hold a control character (NUL, tab, a newline, ...); spaces
  around a value are dropped, except in ``customer_id``.

The suppression list (`suppressed_ids`) is a CSV with a ``customer_id`` column (matched the same
way) or NDJSON (an id, or an object with ``customer_id``, a line), its ids checked as above. A
row of it that cannot be read may be an opt-out: any such row fails the whole list (fail closed)
rather than messaging whom it meant.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import logging
import re
import unicodedata
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Final

import msgspec
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.endpoints import MAX_ID
from airflow_provider_neo.reminders.model import Customer
from airflow_provider_neo.utils.files import byte_lines

log = logging.getLogger(__name__)

REQUIRED_COLUMNS: Final = ("customer_id", "email")
OPTIONAL_COLUMNS: Final = ("first_name", "mobile", "email_opt_in", "sms_opt_in")
CONSENT_YES: Final = frozenset({"yes", "y", "true", "t", "1", "on"})
CONSENT_NO: Final = frozenset({"no", "n", "false", "f", "0", "off"})
MAX_NAME_LENGTH: Final = 200
CSV_SUFFIXES: Final = (".csv", ".csv.gz")

_ID = re.compile(r"[1-9][0-9]{0,18}")
_ATEXT_MARKS = "!#$%&'*+/=?^_`{|}~-"
_ATEXT = f"A-Za-z0-9{_ATEXT_MARKS}"
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MOBILE = re.compile(r"\+[1-9][0-9]{6,14}")
_MOBILE_SEPARATORS = str.maketrans("", "", " -.()")


class CrmFileError(ValueError):
    """The file as a whole cannot be read (no file, its header): nothing of it is used."""


class RowError(msgspec.Struct, frozen=True):
    """Why one row (its first `line` in `file`) was refused; `column` by its documented name
    (``email``, whatever the header's case), empty when the row as a whole is wrong."""

    param: str
    file: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f", column {self.column!r}" if self.column else ""
        return f"{self.param}: line {self.line} of {self.file}{where}: {self.reason}"


class Rejected(msgspec.Struct, frozen=True):
    """A row of the extract refused, with every reason found in it."""

    customer_id: int | None  # when its id itself was readable
    errors: tuple[RowError, ...]


class InvalidValue(ValueError):
    """A value that breaks its column's rule; the message is the reason, without the where."""


def check_customer_id(value: str) -> int:
    if not _ID.fullmatch(value) or int(value) > MAX_ID:
        raise InvalidValue(
            f"{value!r} is not a customer id (ASCII digits 0-9 only: no sign, space,"
            " separator or leading zero; at most 2**63-1)"
        )
    return int(value)


def check_email(value: str, *, international: bool = False) -> str:
    """`value` as one bare address (spaces around it dropped), or "" for none."""
    address = value.strip(" ")
    if not address:
        return ""
    _refuse_control(address)
    if any(mark in address for mark in ",;"):
        raise InvalidValue(f"{address!r} is more than one address: give exactly one per field")
    if any(mark in address for mark in '<>"()[]\\'):
        raise InvalidValue(
            f"{address!r} has a display name, quotes, a comment or an IP literal:"
            " give the bare address (local-part@domain)"
        )
    if any(char.isspace() for char in address):
        raise InvalidValue(f"{address!r} contains a space: give exactly one address")
    if address.count("@") != 1:
        raise InvalidValue(f"{address!r} is not an address: it needs exactly one '@'")
    if not address.isascii() and not international:
        raise InvalidValue(
            f"{address!r} is an internationalised (non-ASCII) address, which the channel"
            " does not take (international_email is off)"
        )
    if len(address.encode()) > 254:
        raise InvalidValue(f"{address!r} is longer than 254 bytes")
    local, domain = address.split("@")
    local_ascii = "".join("a" if _international_char(char) else char for char in local)
    if not local or len(local.encode()) > 64 or not _DOT_ATOM.fullmatch(local_ascii):
        raise InvalidValue(
            f"{address!r} has no valid local part (letters, digits, {_ATEXT_MARKS} and"
            " single dots between them, at most 64 bytes)"
        )
    _check_host(address, domain)
    return address


def _international_char(char: str) -> bool:
    """A non-ASCII character an RFC 6531 local part may hold: not a control, format, space or
    separator character."""
    return not char.isascii() and unicodedata.category(char)[0] not in "CZ"


def _check_host(address: str, domain: str) -> None:
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    labels = ascii_domain.split(".")
    if (
        len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidValue(
            f"{address!r} has no valid domain (a host name of two or more labels, such as"
            " example.com)"
        )


def check_mobile(value: str) -> str:
    """`value` as ``+`` and digits, or "" for none."""
    number = value.strip(" ")
    if not number:
        return ""
    _refuse_control(number)
    compact = number.translate(_MOBILE_SEPARATORS)
    if not compact.isascii() or not _MOBILE.fullmatch(compact):
        raise InvalidValue(
            f"{number!r} is not a mobile number in international form (+, country code and"
            " number: 7 to 15 digits; spaces, '-', '.' and parentheses allowed between them)"
        )
    return compact


def check_consent(value: str) -> bool:
    word = value.strip(" ").lower()
    if not word or word in CONSENT_YES:
        return True
    if word in CONSENT_NO:
        return False
    _refuse_control(word)
    raise InvalidValue(
        f"{value!r} is not a consent value: yes is one of {', '.join(sorted(CONSENT_YES))};"
        f" no is one of {', '.join(sorted(CONSENT_NO))} (any case; empty is yes)"
    )


def check_name(value: str) -> str:
    name = value.strip(" ")
    _refuse_control(name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValue(f"is longer than {MAX_NAME_LENGTH} characters")
    return name


def _refuse_control(value: str) -> None:
    for char in value:
        if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
            raise InvalidValue(f"{value!r} contains the control character U+{ord(char):04X}")


def _not_utf8(value: str) -> str | None:
    """The first byte that was not UTF-8 (kept by surrogateescape), as text, if any."""
    for char in value:
        if "\udc80" <= char <= "\udcff":
            return f"{ord(char) - 0xDC00:#04x}"
    return None


def _lines(url: str, param: str) -> Generator[str, None, None]:
    """The file's lines as text, bytes that are not UTF-8 kept as surrogates (for the row that
    holds them to be refused, naming its line); a byte-order mark skipped. A missing file
    fails now, not at the first line."""
    try:
        found = ObjectStoragePath(url).is_file()
    except (OSError, ValueError) as exc:  # ValueError: a scheme nobody registered
        raise CrmFileError(f"{param}: cannot read {url}: {exc}") from None
    if not found:
        raise CrmFileError(f"{param}: no file at {url}")
    return _decoded(url)


def _decoded(url: str) -> Generator[str, None, None]:
    for number, raw in enumerate(byte_lines(url), 1):
        line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
        yield line.decode("utf-8", "surrogateescape")


class CsvRows:
    """The rows of a CSV file as (first line, fields) or a `RowError`, after its header, whose
    columns are matched by name (case and surrounding whitespace ignored)."""

    def __init__(
        self, url: str, *, param: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> None:
        self.url = url
        self.param = param
        self._lines = _lines(url, param)
        self._reader = csv.reader(self._lines, strict=True)
        try:
            header = next(self._reader)
        except StopIteration:
            self.close()
            raise CrmFileError(
                f"{param}: {url} is empty; expected a header row naming the columns"
                f" {', '.join(required)}"
            ) from None
        except csv.Error as exc:
            self.close()
            raise CrmFileError(f"{param}: the header (line 1) of {url} is not CSV: {exc}") from None
        for name in header:
            byte = _not_utf8(name)
            if byte is not None:
                self.close()
                raise CrmFileError(
                    f"{param}: the header (line 1) of {url} is not UTF-8 (byte {byte}; Latin-1"
                    " or Windows-1252, perhaps): save the file as UTF-8"
                )
        self.width = len(header)
        self.columns: dict[str, int] = {}  # known column -> its position
        self.spelled: dict[str, str] = {}  # known column -> as the header spells it
        for position, name in enumerate(header):
            key = name.strip().lower()
            if key not in (*required, *optional):
                continue
            if key in self.columns:
                self.close()
                raise CrmFileError(
                    f"{param}: {url} has two {key!r} columns ({self.spelled[key]!r} and"
                    f" {name!r}); column names are matched ignoring case and spaces"
                )
            self.columns[key] = position
            self.spelled[key] = name
        missing = [column for column in required if column not in self.columns]
        if missing:
            self.close()
            raise CrmFileError(
                f"{param}: {url} has no {' or '.join(repr(c) for c in missing)} column"
                f" (its columns: {', '.join(repr(name) for name in header)}; names are matched"
                " ignoring case and surrounding spaces)"
            )
        ignored = [name for position, name in enumerate(header)
                   if position not in self.columns.values()]  # fmt: skip
        if ignored:
            # A misspelt opt-in column is ignored like any other, and its absence means yes:
            # say which columns were not read, for whoever checks the task log.
            log.warning(
                "%s: columns of %s not read (only %s are): %s", param, url,
                ", ".join((*required, *optional)), ", ".join(repr(name) for name in ignored),
            )  # fmt: skip

    def __iter__(self) -> Iterator[tuple[int, list[str]] | RowError]:
        done = self._reader.line_num
        while True:
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield self.error(done + 1, "", f"not valid CSV ({exc})")
                done = self._reader.line_num
                continue
            first, done = done + 1, self._reader.line_num
            if not any(field.strip() for field in fields):
                continue  # a blank line, or one of only commas
            if len(fields) != self.width:
                yield self.error(
                    first,
                    "",
                    f"{len(fields)} fields where the header has {self.width} (a comma inside"
                    " a value that is not quoted?)",
                )
                continue
            yield first, fields

    def field(self, fields: list[str], column: str) -> str:
        position = self.columns.get(column)
        return "" if position is None else fields[position]

    def error(self, line: int, column: str, reason: str) -> RowError:
        return RowError(
            param=self.param,
            file=self.url,
            line=line,
            column=column,
            reason=reason,
        )

    def close(self) -> None:
        self._lines.close()


def read_extract(
    url: str, *, param: str = "customers_path", international_email: bool = False
) -> Iterator[tuple[int, Customer | Rejected]]:
    """Each data row of the CRM extract at `url` as (its first line, the `Customer` it holds or
    why it was `Rejected`), streamed. A file-level error raises `CrmFileError` when this is
    called; ids repeated on several rows are for the caller to refuse (it alone sees them all).
    """
    rows = CsvRows(url, param=param, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
    return _customers(rows, international_email)


def _customers(
    rows: CsvRows, international_email: bool
) -> Iterator[tuple[int, Customer | Rejected]]:
    checks: dict[str, Any] = {
        "email": lambda value: check_email(value, international=international_email),
        "first_name": check_name,
        "mobile": check_mobile,
        "email_opt_in": check_consent,
        "sms_opt_in": check_consent,
    }
    with contextlib.closing(rows):
        for row in rows:
            if isinstance(row, RowError):
                yield row.line, Rejected(customer_id=None, errors=(row,))
                continue
            line, fields = row
            errors: list[RowError] = []
            for column in rows.columns:
                byte = _not_utf8(rows.field(fields, column))
                if byte is not None:
                    errors.append(rows.error(line, column, f"not UTF-8 (byte {byte})"))
            if errors:
                yield line, Rejected(customer_id=None, errors=tuple(errors))
                continue
            customer_id: int | None = None
            try:
                customer_id = check_customer_id(rows.field(fields, "customer_id"))
            except InvalidValue as exc:
                errors.append(rows.error(line, "customer_id", str(exc)))
            values: dict[str, Any] = {}
            for column, check in checks.items():
                if column not in rows.columns:
                    continue
                try:
                    values[column] = check(rows.field(fields, column))
                except InvalidValue as exc:
                    errors.append(rows.error(line, column, str(exc)))
            if errors or customer_id is None:
                yield line, Rejected(customer_id=customer_id, errors=tuple(errors))
            else:
                yield line, Customer(customer_id=customer_id, **values)


def suppressed_ids(url: str, *, param: str = "suppression_path") -> Iterator[int]:
    """The ids of the suppression list at `url` (CSV by its name, else NDJSON), streamed.
    File-level errors raise `CrmFileError` when this is called; a bad row raises one too, once
    the whole list is read, naming every bad line (up to 20): the list is not used at all."""
    if ObjectStoragePath(url).name.lower().endswith(CSV_SUFFIXES):
        rows = CsvRows(url, param=param, required=("customer_id",))
        return _failing_at_the_end(_csv_suppressed(rows), url, param)
    return _failing_at_the_end(_ndjson_suppressed(_lines(url, param), url, param), url, param)


def _csv_suppressed(rows: CsvRows) -> Iterator[int | RowError]:
    with contextlib.closing(rows):
        for row in rows:
            if isinstance(row, RowError):
                yield row
                continue
            line, fields = row
            value = rows.field(fields, "customer_id")
            byte = _not_utf8(value)
            try:
                if byte is not None:
                    raise InvalidValue(f"not UTF-8 (byte {byte})")
                yield check_customer_id(value)
            except InvalidValue as exc:
                yield rows.error(line, "customer_id", str(exc))


def _ndjson_suppressed(
    lines: Generator[str, None, None], url: str, param: str
) -> Iterator[int | RowError]:
    with contextlib.closing(lines):
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                value = item.get("customer_id") if isinstance(item, dict) else item
                if isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)
                if not isinstance(value, str):
                    raise InvalidValue(
                        f"{line.strip()[:80]!r} holds no customer id (an id, or an object with"
                        " 'customer_id', a line)"
                    )
                yield check_customer_id(value)
            except ValueError as exc:  # InvalidValue, or not JSON
                reason = str(exc) if isinstance(exc, InvalidValue) else "not JSON"
                yield RowError(param=param, file=url, line=number, column="", reason=reason)


def _failing_at_the_end(ids: Iterator[int | RowError], url: str, param: str) -> Iterator[int]:
    errors: list[RowError] = []
    count = 0
    for item in ids:
        if isinstance(item, RowError):
            count += 1
            if len(errors) < 20:
                errors.append(item)
        elif not count:
            yield item
    if count:
        listed = "; ".join(str(error).removeprefix(f"{param}: ") for error in errors)
        more = f" (and {count - len(errors)} more)" if count > len(errors) else ""
        raise CrmFileError(
            f"{param}: {count} rows of {url} cannot be read, so nobody is messaged until it is"
            f" fixed (a row that cannot be read may be an opt-out): {listed}{more}"
        )
