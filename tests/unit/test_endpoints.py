"""Client-side use of the endpoint descriptions: Python values validated and rendered as a query."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_neo.client.batching import customer_id_stream
from airflow_provider_neo.endpoints import (
    ENDPOINTS,
    EVENT_ALLOCATIONS,
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    POINTS_AWARDED,
    Endpoint,
    InvalidParameter,
)
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.utils.windows import ExpiryWindow

DATE_RANGE: dict[str, Any] = {
    "program_id": 2282,
    "point_category_id": 17383,
    "expiry_date_start": dt.date(2026, 11, 21),
    "expiry_date_end": "2026-12-21",
    "entity_id": "383474113",
}


def test_build_query_renders_python_values() -> None:
    query = EXPIRING_ALLOCATIONS.build_query(
        {**DATE_RANGE, "expiry_date_end": dt.datetime(2026, 12, 21, 18, 0), "count": 100}
    )
    assert query == {
        "program_id": "2282", "point_category_id": "17383", "expiry_date_start": "2026-11-21",
        "expiry_date_end": "2026-12-21", "entity_id": "383474113", "count": "100",
    }  # fmt: skip


def test_id_lists_accept_iterables_and_render_comma_separated() -> None:
    values = {
        "start_expiry_date": "2026-11-21", "end_expiry_date": "2026-11-21", "program_id": 1,
        "point_category_id": 2, "status": "available", "entity_id": (n for n in (5, 6, 7)),
    }  # fmt: skip
    query = POINTS_AWARDED.build_query(values)
    assert query["entity_id"] == "5,6,7"
    assert query["status"] == "AVAILABLE"


def test_event_type_accepts_names_and_ids() -> None:
    base = {"entity_id": "hfjWDK0dek", "customer_id": 374819205}
    assert (
        EVENT_ALLOCATIONS.build_query({**base, "event_type_id": "TransactionAdd"})["event_type_id"]
        == "15"
    )
    assert (
        EVENT_ALLOCATIONS.build_query({**base, "event_type_id": "transactionadd"})["event_type_id"]
        == "15"
    )
    assert EVENT_ALLOCATIONS.build_query({**base, "event_type_id": 2})["event_type_id"] == "2"


BAD: list[tuple[Endpoint[Any], str, Any]] = [
    (EXPIRING_ALLOCATIONS, "expiry_date_start", "2026-02-30"),
    (EXPIRING_ALLOCATIONS, "expiry_date_start", 20261121),
    (EXPIRING_ALLOCATIONS, "entity_id", -4),
    (EXPIRING_ALLOCATIONS, "entity_id", True),
    (EXPIRING_ALLOCATIONS, "entity_id", 1.0),
    (EXPIRING_ALLOCATIONS, "count", 101),
    (EXPIRING_ALLOCATIONS, "count", 0),
    (EXPIRING_ALLOCATIONS, "page", 0),
    (EVENT_ALLOCATIONS, "event_type_id", "NoSuchEvent"),
    (EVENT_ALLOCATIONS, "event_type_id", 90),
    (EVENT_ALLOCATIONS, "entity_id", "  "),
    (EXPIRED_POINTS, "year", 24),
    (EXPIRED_POINTS, "year", "02024"),
    (POINTS_AWARDED, "status", "PENDING"),
    (POINTS_AWARDED, "entity_id", []),
    (POINTS_AWARDED, "entity_id", [1, "x"]),
]


@pytest.mark.parametrize(
    ("endpoint", "name", "value"), BAD, ids=[f"{e.name}-{n}-{v!r}" for e, n, v in BAD]
)
def test_bad_values_raise_value_error_naming_the_parameter(
    endpoint: Any, name: str, value: Any
) -> None:
    valid = {
        EXPIRING_ALLOCATIONS.name: DATE_RANGE,
        EVENT_ALLOCATIONS.name: {"entity_id": "e", "customer_id": 1, "event_type_id": 15},
        EXPIRED_POINTS.name: {"customer_id": 1, "year": 2024},
        POINTS_AWARDED.name: {
            "start_expiry_date": "2026-11-21",
            "end_expiry_date": "2026-11-21",
            "program_id": 1,
            "point_category_id": 2,
            "status": "AVAILABLE",
            "entity_id": [1],
        },
    }[endpoint.name]
    with pytest.raises(ValueError, match=f"^{name}: ") as caught:
        endpoint.build_query({**valid, name: value})
    assert isinstance(caught.value, InvalidParameter)
    assert caught.value.parameter == name


def test_missing_required_and_unknown_parameters_are_named() -> None:
    with pytest.raises(InvalidParameter, match=r"^program_id: is required$"):
        EXPIRING_ALLOCATIONS.build_query({k: v for k, v in DATE_RANGE.items() if k != "program_id"})
    with pytest.raises(InvalidParameter, match=r"^expiry_start: is not a parameter"):
        EXPIRING_ALLOCATIONS.build_query({**DATE_RANGE, "expiry_start": "2026-01-01"})


def test_window_order_is_checked_on_the_client_too() -> None:
    with pytest.raises(
        InvalidParameter, match=r"^expiry_date_start: 2027-01-02 is after expiry_date_end"
    ):
        EXPIRING_ALLOCATIONS.build_query(
            {**DATE_RANGE, "expiry_date_start": "2027-01-02", "expiry_date_end": "2027-01-01"}
        )


def test_every_endpoint_is_described_once_with_a_unique_path() -> None:
    assert len({e.path for e in ENDPOINTS}) == len({e.name for e in ENDPOINTS}) == 5
    for endpoint in ENDPOINTS:
        assert endpoint.paged == ({"page", "count"} <= set(endpoint.param_names))
        assert (endpoint.batch_param is None) != (endpoint.customer_param is None)


@pytest.mark.parametrize("value", [2**63, 2**70, "99999999999999999999"])
def test_ids_beyond_64_bits_are_refused_naming_the_argument(value: Any) -> None:
    with pytest.raises(InvalidParameter, match=r"^entity_id: expected an id of at most 2\*\*63-1"):
        EXPIRING_ALLOCATIONS.build_query({**DATE_RANGE, "entity_id": value})
    with pytest.raises(ValueError, match=r"^customer_ids: expected an id of at most 2\*\*63-1"):
        customer_id_stream([1, value])
    with pytest.raises(InvalidParameter, match=r"^customer_ids: .* at most 2\*\*63-1"):
        NeoHook._expiring_query(
            ("customer_ids", value), program_id=1, point_category_id=1,
            expiry_start="2026-01-01", expiry_end="2026-01-02",
        )  # fmt: skip
    largest = {**DATE_RANGE, "entity_id": 2**63 - 1, "program_id": 2**63 - 1}
    assert EXPIRING_ALLOCATIONS.build_query(largest)["entity_id"] == str(2**63 - 1)


@pytest.mark.parametrize(
    ("start", "end", "named"),
    [
        ("0999-01-01", "2026-01-01", "expiry_start"),
        ("2026-01-01", "9999-12-31", "expiry_end"),
        (dt.date(1969, 12, 31), "2026-01-01", "expiry_start"),
    ],
)
def test_dates_outside_1970_to_2100_are_refused_naming_the_argument(
    start: Any, end: Any, named: str
) -> None:
    with pytest.raises(InvalidParameter, match=rf"^{named}: expected a date between 1970-01-01"):
        NeoHook._expiring_query(
            ("customer_ids", 1), program_id=1, point_category_id=1,
            expiry_start=start, expiry_end=end,
        )  # fmt: skip
    with pytest.raises(InvalidParameter, match=rf"^{named}: expected a date between 1970-01-01"):
        ExpiryWindow(expiry_start=start, expiry_end=end).resolve({}, "UTC")
    with pytest.raises(InvalidParameter, match=r"^year: expected a year 1970..2100"):
        EXPIRED_POINTS.build_query({"customer_id": 1, "year": 1969})
    bounds = {"expiry_date_start": "1970-01-01", "expiry_date_end": dt.date(2100, 12, 31)}
    assert (
        EXPIRING_ALLOCATIONS.build_query({**DATE_RANGE, **bounds})["expiry_date_end"]
        == "2100-12-31"
    )
