"""Typed records for the three row shapes the Neo points endpoints answer with.

Points are `Decimal`: the documents type them as integers but Capillary's warehouse stores
decimal(15,3), so a value such as ``12.500`` must survive decoding exactly. Timestamps stay as the
epoch milliseconds the API sends; helpers turn them into aware datetimes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Final, Literal, TypeVar

import msgspec

from airflow_provider_neo.validation import choice

Status = Literal[
    "AVAILABLE",
    "REDEEMED",
    "EXPIRED",
    "CONSUMED",
    "RETURNED",
    "CONSUMED_BY_CONVERSION",
    "INACTIVE",
]
STATUSES: Final[tuple[str, ...]] = Status.__args__  # type: ignore[attr-defined]

_ZERO = Decimal(0)
# The largest amount Neo's warehouse column, decimal(15,3), can hold.
MAX_POINTS: Final = Decimal("999999999999.999")


def remaining_points(
    *,
    status: str,
    points_exclusive: Decimal,
    redeemed_exclusive_value: Decimal,
    expired_exclusive_value: Decimal,
    returned_exclusive_value: Decimal,
) -> Decimal:
    """Points still open on an allocation: only AVAILABLE rows count, and never below zero."""
    if status != "AVAILABLE":
        return _ZERO
    left = (
        points_exclusive
        - redeemed_exclusive_value
        - expired_exclusive_value
        - returned_exclusive_value
    )
    return max(left, _ZERO)


def epoch_ms_to_datetime(epoch_ms: int) -> dt.datetime:
    """An epoch-milliseconds timestamp as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc)


def check_amounts(record: msgspec.Struct, row: str) -> None:
    """Every point amount of `record` is a finite number, not negative; `row` names the row.

    msgspec reads "NaN", "Infinity" and negative numbers into a `Decimal` without complaint; Neo
    never means them, and they would poison every total downstream. Called from the records'
    `__post_init__`, so msgspec reports the error as a ValidationError at the row's position.
    """
    for name in _AMOUNT_FIELDS[type(record)]:
        value: Decimal = getattr(record, name)
        if not value.is_finite() or value < 0 or value > MAX_POINTS:
            raise ValueError(
                f"{name} is {value} in the row with {row}: points must be finite, not negative"
                f" and at most {MAX_POINTS}"
            )


class PointsAllocation(msgspec.Struct, frozen=True, kw_only=True):
    """The full points-allocation row of dateRange, event and /das/getPAIdsForProvidedDateRange."""

    till_id: int
    point_category_id: int
    program_id: int
    event_log_id: int
    event_type_id: int
    points_source_type_id: int
    original_points: Decimal
    awarded_date: int
    returned_exclusive_value: Decimal
    points_source_id: int
    id: int
    cps_id: int
    original_customer_id: int
    expiry_strategy_id: int
    returned_value: Decimal
    redeemed_exclusive_value: Decimal
    expiry_date: int
    auto_update_time: int
    redeemed_value: Decimal
    expired_exclusive_value: Decimal
    allocation_strategy_id: int
    points_value: Decimal
    org_id: int
    expired_value: Decimal
    customer_id: int
    points_exclusive: Decimal
    status: Status

    def __post_init__(self) -> None:
        check_amounts(self, f"id={self.id}")

    @property
    def remaining_points(self) -> Decimal:
        return remaining_points(
            status=self.status,
            points_exclusive=self.points_exclusive,
            redeemed_exclusive_value=self.redeemed_exclusive_value,
            expired_exclusive_value=self.expired_exclusive_value,
            returned_exclusive_value=self.returned_exclusive_value,
        )

    @property
    def expires_at(self) -> dt.datetime:
        return epoch_ms_to_datetime(self.expiry_date)

    @property
    def awarded_at(self) -> dt.datetime:
        return epoch_ms_to_datetime(self.awarded_date)


class PointsAwardedSummary(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The summary row of the paIds batch endpoint.

    Neo's rows do not say which status they have: the query filtered on one. `status` is that
    status, set by `NeoHook` from the query (`with_query_status`); a row decoded straight from
    Neo's JSON has none, and is encoded back without it, in Neo's own shape.
    """

    redeemed_exclusive_value: Decimal
    returned_exclusive_value: Decimal
    event_log_id: int
    id: int
    customer_id: int
    source_table: str
    points_exclusive: Decimal
    expired_exclusive_value: Decimal
    status: Status | None = None

    def __post_init__(self) -> None:
        check_amounts(self, f"id={self.id}")

    @property
    def remaining_points(self) -> Decimal:
        """Open points: Neo's arithmetic for the status the query filtered on."""
        if self.status is None:
            # Without the query's status the arithmetic cannot tell open points from closed ones;
            # a silent 0 would drop them from every total.
            raise ValueError(
                f"remaining_points: the paIds row with id={self.id} has no status; rows read"
                " through NeoHook carry their query's status (or give it with with_query_status)"
            )
        return remaining_points(
            status=self.status,
            points_exclusive=self.points_exclusive,
            redeemed_exclusive_value=self.redeemed_exclusive_value,
            expired_exclusive_value=self.expired_exclusive_value,
            returned_exclusive_value=self.returned_exclusive_value,
        )


def with_query_status(
    rows: Sequence[PointsAwardedSummary], status: str
) -> list[PointsAwardedSummary]:
    """paIds rows, each with `status` set to the status their query filtered on."""
    status = choice("status", status, STATUSES)
    return [msgspec.structs.replace(row, status=status) for row in rows]


EXPIRED_POINTS_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S.%f"


def format_expiry_moment(moment: dt.datetime) -> str:
    """A local time as expiredPoints prints it, one fractional digit: ``2024-04-01 05:00:02.0``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f".{moment.microsecond // 100_000}"


class ExpiredPoints(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A row of expiredPoints: points of one program that expired at one moment."""

    points_expiry_date: str  # "2024-04-01 05:00:02.0", in the organisation's time zone, no offset
    customer_id: int
    program_id: int
    points: Decimal

    def __post_init__(self) -> None:
        # expiredPoints rows have no id: the customer and the moment name one.
        check_amounts(self, f"customer_id={self.customer_id} at {self.points_expiry_date}")

    @property
    def expired_on(self) -> dt.datetime:
        """The expiry moment as a naive datetime in the organisation's time zone."""
        return dt.datetime.strptime(self.points_expiry_date, EXPIRED_POINTS_DATE_FORMAT)


Record = PointsAllocation | PointsAwardedSummary | ExpiredPoints
_AMOUNT_FIELDS: Final[dict[type[msgspec.Struct], tuple[str, ...]]] = {
    record: tuple(f.name for f in msgspec.structs.fields(record) if f.type is Decimal)
    for record in (PointsAllocation, PointsAwardedSummary, ExpiredPoints)
}
R = TypeVar("R", bound=msgspec.Struct)

# One decoder per record type, built once: msgspec compiles the schema at construction.
_ARRAY_DECODERS: dict[type[msgspec.Struct], msgspec.json.Decoder[list[msgspec.Struct]]] = {
    record: msgspec.json.Decoder(list[record])  # type: ignore[valid-type]
    for record in (PointsAllocation, PointsAwardedSummary, ExpiredPoints)
}


def decode_records(payload: bytes | str, record_type: type[R]) -> list[R]:
    """Decode a bare JSON array of rows; a bad body raises msgspec.ValidationError / DecodeError."""
    return _ARRAY_DECODERS[record_type].decode(payload)  # type: ignore[return-value]


# Decimals go out as JSON numbers, as Neo sends them, not as strings.
JSON_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


def encode_records(records: Sequence[Record]) -> bytes:
    return JSON_ENCODER.encode(records)
