"""Bad requests get 400 with a Capillary-style error body that names the parameter or header."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_neo.endpoints import (
    ENDPOINTS,
    EVENT_ALLOCATIONS,
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    POINTS_AWARDED,
    SCOPE_HEADER,
    Endpoint,
)
from neo_simulator.testing import NEO_HEADERS, RunningSimulator

VALID: dict[str, dict[str, str]] = {
    POINTS_AWARDED.name: {
        "start_expiry_date": "2026-11-21", "end_expiry_date": "2027-11-21",
        "point_category_id": "17383", "program_id": "2282", "entity_id": "400000001, 400000002",
        "status": "AVAILABLE", "org_id": "50914",
    },
    EVENT_ALLOCATIONS.name: {
        "entity_id": "hfjWDK0dek", "customer_id": "374819205", "event_type_id": "15",
    },
    EXPIRING_ALLOCATIONS.name: {
        "expiry_date_start": "2026-11-21", "expiry_date_end": "2027-11-21",
        "point_category_id": "17383", "program_id": "2282", "entity_id": "400000001",
    },
    EXPIRED_POINTS.name: {"customer_id": "11064", "year": "2024"},
}  # fmt: skip
VALID["das_expiring_allocations"] = VALID[EXPIRING_ALLOCATIONS.name]


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["warnings"] == []
    (error,) = body["errors"]
    assert isinstance(error["code"], int)
    assert isinstance(error["message"], str)
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_valid_request_is_answered(simulator: RunningSimulator, endpoint: Endpoint[Any]) -> None:
    response = simulator.get(endpoint.path, VALID[endpoint.name])
    expected = 404 if endpoint.not_found_is_empty and response.status_code == 404 else 200
    assert response.status_code == expected == 200


@pytest.mark.parametrize(
    ("endpoint", "missing"),
    [(e, p.name) for e in ENDPOINTS for p in e.params if p.required],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_missing_required_parameter_is_named(
    simulator: RunningSimulator, endpoint: Endpoint[Any], missing: str
) -> None:
    params = {k: v for k, v in VALID[endpoint.name].items() if k != missing}
    error = _error(simulator.get(endpoint.path, params))
    assert error["message"] == f"Missing required parameter '{missing}'"


BAD_VALUES: list[tuple[Endpoint[Any], str, str]] = [
    (EXPIRING_ALLOCATIONS, "expiry_date_start", "2026-13-01"),
    (EXPIRING_ALLOCATIONS, "expiry_date_start", "2026-02-30"),
    (EXPIRING_ALLOCATIONS, "expiry_date_end", "21/11/2026"),
    (EXPIRING_ALLOCATIONS, "expiry_date_end", "2026-1-5"),
    (POINTS_AWARDED, "start_expiry_date", "tomorrow"),
    (EXPIRING_ALLOCATIONS, "count", "0"),
    (EXPIRING_ALLOCATIONS, "count", "101"),
    (EXPIRING_ALLOCATIONS, "count", "-1"),
    (EXPIRING_ALLOCATIONS, "count", "ten"),
    (EVENT_ALLOCATIONS, "count", "500"),
    (EVENT_ALLOCATIONS, "page", "0"),
    (POINTS_AWARDED, "status", "PENDING"),
    (POINTS_AWARDED, "entity_id", "400000001,,400000002"),
    (POINTS_AWARDED, "entity_id", "400000001,abc"),
    (POINTS_AWARDED, "entity_id", "0"),
    (POINTS_AWARDED, "program_id", "2282x"),
    (POINTS_AWARDED, "org_id", "-5"),
    (EXPIRING_ALLOCATIONS, "entity_id", "abc"),
    (EXPIRING_ALLOCATIONS, "point_category_id", "1.5"),
    (EVENT_ALLOCATIONS, "customer_id", "12x"),
    (EVENT_ALLOCATIONS, "event_type_id", "0"),
    (EVENT_ALLOCATIONS, "event_type_id", "90"),
    (EVENT_ALLOCATIONS, "event_type_id", "TransactionAdd"),
    (EXPIRED_POINTS, "year", "24"),
    (EXPIRED_POINTS, "year", "20245"),
    (EXPIRED_POINTS, "customer_id", "eleven"),
]


@pytest.mark.parametrize(
    ("endpoint", "name", "value"), BAD_VALUES, ids=[f"{e.name}-{n}-{v}" for e, n, v in BAD_VALUES]
)
def test_invalid_value_is_rejected_naming_the_parameter(
    simulator: RunningSimulator, endpoint: Endpoint[Any], name: str, value: str
) -> None:
    params = {**VALID[endpoint.name], name: value}
    error = _error(simulator.get(endpoint.path, params))
    assert error["message"].startswith(f"Invalid parameter '{name}': ")
    # The message quotes the offending value (for an id list, the offending id).
    assert repr(value) in error["message"] or repr(value.split(",")[-1]) in error["message"]


@pytest.mark.parametrize(
    ("endpoint", "start", "end"),
    [
        (EXPIRING_ALLOCATIONS, "expiry_date_start", "expiry_date_end"),
        (POINTS_AWARDED, "start_expiry_date", "end_expiry_date"),
    ],
    ids=["dateRange", "paIds"],
)
def test_window_start_after_end_is_rejected(
    simulator: RunningSimulator, endpoint: Endpoint[Any], start: str, end: str
) -> None:
    params = {**VALID[endpoint.name], start: "2027-01-02", end: "2027-01-01"}
    error = _error(simulator.get(endpoint.path, params))
    assert error["message"] == (
        f"Invalid parameter '{start}': 2027-01-02 is after {end} 2027-01-01"
    )


def test_single_day_window_is_accepted(simulator: RunningSimulator) -> None:
    params = {
        **VALID[EXPIRING_ALLOCATIONS.name],
        "expiry_date_start": "2027-01-01",
        "expiry_date_end": "2027-01-01",
    }
    assert simulator.get(EXPIRING_ALLOCATIONS.path, params).status_code == 200


def test_missing_scope_header_is_rejected(simulator: RunningSimulator) -> None:
    headers = {"Authorization": NEO_HEADERS["Authorization"]}
    error = _error(simulator.get(EXPIRED_POINTS.path, VALID[EXPIRED_POINTS.name], headers=headers))
    assert error["message"] == "Header x-cap-neo-dag-scope is required"


def test_unknown_scope_value_is_rejected(simulator: RunningSimulator) -> None:
    headers = {**NEO_HEADERS, SCOPE_HEADER: "planet"}
    error = _error(simulator.get(EXPIRED_POINTS.path, VALID[EXPIRED_POINTS.name], headers=headers))
    assert "x-cap-neo-dag-scope" in error["message"]


@pytest.mark.parametrize("scope", ["org", "global", "parent"])
def test_documented_scopes_are_accepted(simulator: RunningSimulator, scope: str) -> None:
    headers = {**NEO_HEADERS, SCOPE_HEADER: scope}
    response = simulator.get(EXPIRED_POINTS.path, VALID[EXPIRED_POINTS.name], headers=headers)
    assert response.status_code == 200


def test_expired_points_answers_404_when_there_is_nothing(simulator: RunningSimulator) -> None:
    response = simulator.get(EXPIRED_POINTS.path, {"customer_id": "11064", "year": "1999"})
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == "No expired points found"
    unknown = simulator.get(EXPIRED_POINTS.path, {"customer_id": "999999999", "year": "2024"})
    assert unknown.status_code == 404


def test_unknown_event_answers_an_empty_array(simulator: RunningSimulator) -> None:
    params = {**VALID[EVENT_ALLOCATIONS.name], "entity_id": "no-such-event"}
    response = simulator.get(EVENT_ALLOCATIONS.path, params)
    assert response.status_code == 200
    assert response.json() == []
