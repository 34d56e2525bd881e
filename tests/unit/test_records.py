"""Typed records: exact decimals, the remaining-points arithmetic, loud failures on bad bodies,
and one shape for both row kinds: `remaining_points` is a property, paIds rows carry the status
their query asked for."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from airflow_provider_neo.hooks.neo import NeoAsyncHook, NeoHook
from airflow_provider_neo.records import (
    ExpiredPoints,
    PointsAllocation,
    PointsAwardedSummary,
    decode_records,
    encode_records,
    remaining_points,
    with_query_status,
)
from tests.ground_truth import allocations
from tests.harness import AS_OF, TIMEZONE, RunningSimulator

SUMMARY = (
    b'[{"redeemed_exclusive_value": 2.250, "returned_exclusive_value": 0, "event_log_id": 1,'
    b' "id": 7, "customer_id": 9, "source_table": "points_awarded", "points_exclusive": 12.500,'
    b' "expired_exclusive_value": 0}]'
)


def _allocation(**values: Any) -> PointsAllocation:
    """An allocation row as Neo sends it: every field 0 but `values`."""
    fields = {f.encode_name: 0 for f in msgspec.structs.fields(PointsAllocation)}
    (row,) = decode_records(
        b"[" + msgspec.json.encode({**fields, "status": "AVAILABLE", **values}) + b"]",
        PointsAllocation,
    )
    return row


def test_points_decode_as_exact_decimals_never_floats() -> None:
    (row,) = with_query_status(decode_records(SUMMARY, PointsAwardedSummary), "AVAILABLE")
    assert row.points_exclusive == Decimal("12.500")
    assert isinstance(row.points_exclusive, Decimal)
    assert row.remaining_points == Decimal("10.250")
    # 0.1 + 0.2 style errors cannot happen: the text of the number is kept.
    (tiny,) = with_query_status(
        decode_records(
            SUMMARY.replace(b"12.500", b"0.3").replace(b"2.250", b"0.1"), PointsAwardedSummary
        ),
        "AVAILABLE",
    )
    assert tiny.remaining_points == Decimal("0.2")


@pytest.mark.parametrize(
    ("status", "remaining"), [("AVAILABLE", "10.250"), ("REDEEMED", "0"), ("EXPIRED", "0")]
)
def test_remaining_points_reads_alike_on_allocation_and_paids_rows(
    status: str, remaining: str
) -> None:
    amounts = {
        "points_exclusive": Decimal("12.500"),
        "redeemed_exclusive_value": Decimal("2.250"),
        "returned_exclusive_value": Decimal(0),
        "expired_exclusive_value": Decimal(0),
    }
    allocation = _allocation(**amounts, status=status)
    (summary,) = with_query_status(decode_records(SUMMARY, PointsAwardedSummary), status)
    assert summary.status == allocation.status == status
    assert summary.remaining_points == allocation.remaining_points == Decimal(remaining)


def test_a_paids_row_without_its_query_status_refuses_to_guess_its_remaining_points() -> None:
    (row,) = decode_records(SUMMARY, PointsAwardedSummary)
    assert row.status is None
    with pytest.raises(ValueError, match=r"^remaining_points: the paIds row with id=7 has no"):
        _ = row.remaining_points


def test_paids_rows_encode_in_neos_shape_and_with_their_status_once_known() -> None:
    (row,) = decode_records(SUMMARY, PointsAwardedSummary)
    assert msgspec.json.decode(encode_records([row])) == msgspec.json.decode(SUMMARY)
    (known,) = with_query_status([row], "EXPIRED")
    assert msgspec.to_builtins(known)["status"] == "EXPIRED"
    assert msgspec.json.decode(encode_records([known]))[0]["status"] == "EXPIRED"


def test_with_query_status_refuses_a_status_neo_does_not_have() -> None:
    rows = decode_records(SUMMARY, PointsAwardedSummary)
    with pytest.raises(ValueError, match=r"^status: expected one of AVAILABLE, "):
        with_query_status(rows, "MYSTERY")


# Around the simulator's day: its allocations expire in every status within it.
PAIDS_QUERY: dict[str, Any] = {
    "program_id": 2282,
    "point_category_id": 17383,
    "expiry_start": AS_OF - dt.timedelta(days=365),
    "expiry_end": AS_OF + dt.timedelta(days=365),
}
PAIDS_CUSTOMERS = range(400000001, 400000101)


def _truth(sim: RunningSimulator, status: str) -> dict[int, Decimal]:
    """id -> remaining points of the rows a paIds query for `status` answers, from SQL."""
    found = allocations(
        sim.db_path,
        customers=PAIDS_CUSTOMERS,
        expiring=(PAIDS_QUERY["expiry_start"], PAIDS_QUERY["expiry_end"]),
        timezone=TIMEZONE,
        status=status,
    )
    return {id_: allocation.remaining_points for id_, allocation in found.items()}


@pytest.mark.parametrize("status", ["AVAILABLE", "REDEEMED"])
def test_paids_rows_from_the_hook_carry_their_query_status_and_neos_arithmetic(
    simulator: RunningSimulator, neo_conn: Callable[..., str], status: str
) -> None:
    neo_conn(simulator)
    with NeoHook() as hook:
        rows = list(hook.iter_points_awarded(PAIDS_CUSTOMERS, **PAIDS_QUERY, status=status.lower()))
    truth = _truth(simulator, status)
    assert truth  # the window holds rows of this status
    assert {row.status for row in rows} == {status}
    assert {row.id: row.remaining_points for row in rows} == truth
    if status == "AVAILABLE":
        assert sum(truth.values()) > 0
    else:
        assert set(truth.values()) == {Decimal(0)}


def test_paids_rows_from_the_async_hook_carry_their_query_status(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)

    async def fetch() -> list[PointsAwardedSummary]:
        async with NeoAsyncHook() as hook:
            return await hook.aget_points_awarded(PAIDS_CUSTOMERS, **PAIDS_QUERY, status="EXPIRED")

    rows = asyncio.run(fetch())
    assert {row.status for row in rows} == {"EXPIRED"}
    assert {row.id: row.remaining_points for row in rows} == _truth(simulator, "EXPIRED")


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
    record = _allocation(expiry_date=1766687399000)
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
