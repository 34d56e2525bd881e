"""Typed records: exact decimals, the remaining-points arithmetic, loud failures on bad bodies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
import pytest

from airflow_provider_neo.records import (
    ExpiredPoints,
    PointsAllocation,
    PointsAwardedSummary,
    decode_records,
    encode_records,
    remaining_points,
)

SUMMARY = (
    b'[{"redeemed_exclusive_value": 2.250, "returned_exclusive_value": 0, "event_log_id": 1,'
    b' "id": 7, "customer_id": 9, "source_table": "points_awarded", "points_exclusive": 12.500,'
    b' "expired_exclusive_value": 0}]'
)


def test_points_decode_as_exact_decimals_never_floats() -> None:
    (row,) = decode_records(SUMMARY, PointsAwardedSummary)
    assert row.points_exclusive == Decimal("12.500")
    assert isinstance(row.points_exclusive, Decimal)
    assert row.remaining_points("AVAILABLE") == Decimal("10.250")
    # 0.1 + 0.2 style errors cannot happen: the text of the number is kept.
    (tiny,) = decode_records(
        SUMMARY.replace(b"12.500", b"0.3").replace(b"2.250", b"0.1"), PointsAwardedSummary
    )
    assert tiny.remaining_points("AVAILABLE") == Decimal("0.2")


def test_decimals_encode_back_as_json_numbers() -> None:
    rows = decode_records(SUMMARY, PointsAwardedSummary)
    assert b'"points_exclusive":12.500' in encode_records(rows)


@pytest.mark.parametrize(
    ("status", "points", "redeemed", "expired", "returned", "remaining"),
    [
        ("AVAILABLE", "100", "0", "0", "50", "50"),
        ("AVAILABLE", "100", "30", "0", "0", "70"),
        ("AVAILABLE", "100", "80", "0", "40", "0"),  # clamped at zero
        ("AVAILABLE", "12.5", "0.25", "0", "0", "12.25"),
        ("EXPIRED", "100", "0", "100", "0", "0"),
        ("REDEEMED", "100", "100", "0", "0", "0"),
        ("INACTIVE", "100", "0", "0", "0", "0"),  # only AVAILABLE counts
    ],
)
def test_remaining_points_arithmetic(
    status: str, points: str, redeemed: str, expired: str, returned: str, remaining: str
) -> None:
    assert remaining_points(
        status=status,
        points_exclusive=Decimal(points),
        redeemed_exclusive_value=Decimal(redeemed),
        expired_exclusive_value=Decimal(expired),
        returned_exclusive_value=Decimal(returned),
    ) == Decimal(remaining)


def test_wrong_shapes_raise_validation_errors() -> None:
    with pytest.raises(msgspec.ValidationError, match="points_exclusive"):
        decode_records(SUMMARY.replace(b'"points_exclusive": 12.500, ', b""), PointsAwardedSummary)
    with pytest.raises(msgspec.ValidationError):
        decode_records(b'{"not": "an array"}', PointsAwardedSummary)
    with pytest.raises(msgspec.ValidationError):
        decode_records(SUMMARY.replace(b'"id": 7', b'"id": "seven"'), PointsAwardedSummary)
    with pytest.raises(msgspec.DecodeError):
        decode_records(SUMMARY[:40], PointsAwardedSummary)
    with pytest.raises(msgspec.DecodeError):
        decode_records(b"<html><body>502 Bad Gateway</body></html>", PointsAwardedSummary)


def test_unknown_status_is_a_validation_error() -> None:
    row = msgspec.json.encode(
        {
            **{f.encode_name: 0 for f in msgspec.structs.fields(PointsAllocation)},
            "status": "MYSTERY",
        }
    )
    with pytest.raises(msgspec.ValidationError, match="status"):
        decode_records(b"[" + row + b"]", PointsAllocation)


def test_allocation_timestamps_become_aware_datetimes() -> None:
    # The documents' sample: 2025-12-25 23:59:59 in India time.
    fields = {f.encode_name: 0 for f in msgspec.structs.fields(PointsAllocation)}
    row = msgspec.json.encode({**fields, "status": "AVAILABLE", "expiry_date": 1766687399000})
    (record,) = decode_records(b"[" + row + b"]", PointsAllocation)
    assert record.expires_at == dt.datetime(2025, 12, 25, 18, 29, 59, tzinfo=dt.timezone.utc)


def test_expired_points_moment_parses() -> None:
    (row,) = decode_records(
        b'[{"pointsExpiryDate": "2024-04-01 05:00:02.0", "customerId": 11064,'
        b' "programId": 33, "points": 800}]',
        ExpiredPoints,
    )
    assert row.expired_on == dt.datetime(2024, 4, 1, 5, 0, 2)
    assert row.points == 800


@pytest.mark.parametrize(
    "amount", [b'"NaN"', b'"Infinity"', b'"-Infinity"', b'"sNaN"', b"-0.5", b"1e12"]
)
def test_impossible_amounts_are_refused_naming_the_field_and_the_row(amount: bytes) -> None:
    body = SUMMARY.replace(b"2.250", amount)
    with pytest.raises(msgspec.ValidationError, match=r"redeemed_exclusive_value is .* id=7"):
        decode_records(body, PointsAwardedSummary)
    expired = b'[{"pointsExpiryDate": "2025-04-01 05:00:02.0", "customerId": 9, "programId": 1,'
    with pytest.raises(msgspec.ValidationError, match=r"points is .* customer_id=9"):
        decode_records(expired + b' "points": ' + amount + b"}]", ExpiredPoints)
