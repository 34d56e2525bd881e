"""The endpoint descriptions, records and simulator agree with the Neo documents themselves."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from airflow_provider_neo.endpoints import (
    DAS_EXPIRING_ALLOCATIONS,
    ENDPOINTS,
    EXPIRING_ALLOCATIONS,
    POINTS_AWARDED,
    Endpoint,
)
from airflow_provider_neo.event_types import EVENT_TYPES
from airflow_provider_neo.records import decode_records, encode_records
from neo_documents import document
from neo_simulator.testing import RunningSimulator

ENDPOINT_IDS = [endpoint.name for endpoint in ENDPOINTS]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_endpoint_parameters_and_required_flags_match_the_document(endpoint: Endpoint[Any]) -> None:
    documented = document(endpoint.document).query_parameters
    described = {param.name: param.required for param in endpoint.params}
    assert described == documented


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_record_fields_match_the_documented_response_parameters(endpoint: Endpoint[Any]) -> None:
    documented = document(endpoint.document).response_fields
    fields = msgspec.structs.fields(endpoint.record)
    assert sorted(field.encode_name for field in fields if field.required) == sorted(documented)
    # Besides Neo's fields, only the status a paIds query asked for, which the hook fills in.
    added = {field.encode_name for field in fields if not field.required}
    assert added == ({"status"} if endpoint is POINTS_AWARDED else set())


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_document_sample_response_decodes_into_typed_records(endpoint: Endpoint[Any]) -> None:
    sample = document(endpoint.document).sample_response
    records = decode_records(msgspec.json.encode(sample), endpoint.record)
    assert len(records) == len(sample)
    assert all(isinstance(record, endpoint.record) for record in records)
    # Encoding the records again gives back the document's JSON, number for number.
    assert msgspec.json.decode(encode_records(records)) == sample


def test_event_type_table_matches_the_document() -> None:
    text = document("points_allocation_event.txt").text
    documented = {name: int(id_) for name, id_ in re.findall(r"^(\w+) \| (\d+) \|$", text, re.M)}
    assert documented == EVENT_TYPES
    assert sorted(EVENT_TYPES.values()) == list(range(1, 90))


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e is not DAS_EXPIRING_ALLOCATIONS], ids=lambda e: e.name
)
def test_simulator_answers_each_document_sample_request(
    simulator: RunningSimulator, endpoint: Endpoint[Any]
) -> None:
    doc = document(endpoint.document)
    requests_ = doc.sample_requests
    assert requests_, "every public endpoint document has a sample request"
    answered = []
    for path_and_query in requests_:
        response = simulator.get(path_and_query)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert isinstance(body, list)
        decode_records(response.content, endpoint.record)
        answered.append(sorted(body, key=_row_key))
    # The request whose sample response the document shows is answered with exactly its rows
    # (compared in id order: paIds does not page, and its sample is in no particular order).
    assert sorted(doc.sample_response, key=_row_key) in answered


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("id"), row.get("pointsExpiryDate"), row.get("programId"))


def test_das_endpoint_answers_the_date_range_sample_with_the_das_sample_response(
    simulator: RunningSimulator,
) -> None:
    (date_range_request,) = document(EXPIRING_ALLOCATIONS.document).sample_requests
    das_request = date_range_request.replace(
        EXPIRING_ALLOCATIONS.path, DAS_EXPIRING_ALLOCATIONS.path
    )
    response = simulator.get(das_request)
    assert response.status_code == 200
    assert response.json() == document(DAS_EXPIRING_ALLOCATIONS.document).sample_response
