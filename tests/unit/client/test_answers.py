"""What Neo's answers mean, on their own: statuses to typed errors, Capillary's error messages,
Retry-After, and bodies decoded into records, tokens and a POST's JSON; no exchange, no server."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from airflow_provider_neo.client.actions import Failed, Received
from airflow_provider_neo.client.answers import (
    Retry,
    neo_error,
    neo_message,
    no_answer,
    read_posted,
    read_records,
    read_token,
)
from airflow_provider_neo.client.errors import (
    NeoAuthError,
    NeoBadRequestError,
    NeoConnectionError,
    NeoError,
    NeoNotFoundError,
    NeoProtocolError,
    NeoRateLimitedError,
    NeoServerError,
)
from airflow_provider_neo.endpoints import EXPIRED_POINTS, EXPIRING_ALLOCATIONS, TOKEN_PATH
from airflow_provider_neo.records import PointsAllocation
from tests import scripted

SECRET = "s3cret-pass"
SECRETS = [SECRET]
REQUEST_ID = "0f1e2d3c"
CAPILLARY_400 = b'{"errors": [{"code": 8002, "message": "Invalid parameter \'count\'"}]}'


def _token_body(data: Any) -> bytes:
    return msgspec.json.encode({"data": data})


@pytest.mark.parametrize(
    ("status", "error_type", "reason"),
    [
        (400, NeoBadRequestError, "Neo rejected the request"),
        (401, NeoAuthError, "Neo refused the credentials"),
        (403, NeoAuthError, "Neo refused the credentials"),
        (404, NeoNotFoundError, "Neo answered 404"),
        (429, NeoRateLimitedError, "Neo's rate limit was hit"),
        (500, NeoServerError, "Neo answered 500"),
        (503, NeoServerError, "Neo answered 503"),
        (418, NeoProtocolError, "Neo answered an unexpected 418"),
    ],
)
def test_each_unsuccessful_status_is_its_typed_error_naming_endpoint_status_and_request_id(
    status: int, error_type: type[NeoError], reason: str
) -> None:
    error = neo_error("/v1/points/x", Received(status, {}, b"{}"), REQUEST_ID, SECRETS)
    assert type(error) is error_type
    assert error.reason == reason
    assert (error.endpoint, error.status, error.request_id) == ("/v1/points/x", status, REQUEST_ID)


def test_capillarys_error_message_is_quoted_in_the_reason() -> None:
    error = neo_error("/v1/points/x", Received(400, {}, CAPILLARY_400), REQUEST_ID, SECRETS)
    assert error.reason == "Neo rejected the request: Invalid parameter 'count'"
    assert error.body_excerpt is not None
    assert "8002" in error.body_excerpt


@pytest.mark.parametrize(
    "body",
    [b"<html>Bad gateway</html>", b"", b"[]", b'{"errors": []}', b'{"errors": [{"message": 5}]}'],
)
def test_a_body_that_is_not_capillarys_error_form_has_no_message(body: bytes) -> None:
    assert neo_message(body) is None
    error = neo_error("/v1/points/x", Received(400, {}, body), REQUEST_ID, SECRETS)
    assert error.reason == "Neo rejected the request"


def test_a_redirect_is_a_protocol_error_naming_its_location_with_secrets_hidden() -> None:
    moved = Received(301, {"location": f"http://till01:{SECRET}@elsewhere.example/"}, b"")
    error = neo_error("/v1/points/x", moved, REQUEST_ID, SECRETS)
    assert isinstance(error, NeoProtocolError)
    assert "a redirect to http://till01:***@elsewhere.example/, which was not followed" in str(
        error
    )
    assert SECRET not in str(error)
    nowhere = neo_error("/v1/points/x", Received(307, {}, b""), REQUEST_ID, SECRETS)
    assert "a redirect to nowhere" in nowhere.reason


def test_secrets_echoed_in_a_body_are_hidden_from_the_excerpt() -> None:
    echo = Received(500, {}, f"upstream said: {SECRET}".encode())
    error = neo_error("/v1/points/x", echo, REQUEST_ID, SECRETS)
    assert error.body_excerpt == "upstream said: ***"


@pytest.mark.parametrize(
    ("status", "retry_after", "waited"),
    [
        (429, "7", 7.0),
        (429, "  12.5 ", 12.5),
        (503, "3", 3.0),
        (502, None, None),
        (429, "soon", None),
    ],
)
def test_a_retryable_answer_is_a_retry_carrying_neos_retry_after(
    status: int, retry_after: str | None, waited: float | None
) -> None:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    outcome = read_records(
        EXPIRING_ALLOCATIONS, Received(status, headers, b"{}"), REQUEST_ID, SECRETS
    )
    assert isinstance(outcome, Retry)
    assert outcome.error.status == status
    assert outcome.retry_after == waited


def test_rows_of_a_200_are_decoded_into_the_endpoints_records() -> None:
    body = msgspec.json.encode([scripted.allocation_row(1), scripted.allocation_row(2)])
    records = read_records(EXPIRING_ALLOCATIONS, Received(200, {}, body), REQUEST_ID, SECRETS)
    assert isinstance(records, list)
    assert [type(r) for r in records] == [PointsAllocation, PointsAllocation]
    assert [r.id for r in records] == [1, 2]


def test_a_200_that_is_not_json_is_retried_but_rows_of_the_wrong_shape_raise() -> None:
    cut = read_records(EXPIRING_ALLOCATIONS, Received(200, {}, b'[{"id": 1,'), REQUEST_ID, [])
    assert isinstance(cut, Retry)
    assert isinstance(cut.error, NeoProtocolError)
    assert cut.error.reason == "Neo answered 200 with a body that is not JSON"
    with pytest.raises(NeoProtocolError, match="rows of an unexpected shape") as raised:
        read_records(EXPIRING_ALLOCATIONS, Received(200, {}, b'[{"id": "one"}]'), REQUEST_ID, [])
    assert raised.value.request_id == REQUEST_ID


def test_a_404_is_no_rows_only_where_the_endpoint_says_so() -> None:
    missing = Received(404, {}, b"{}")
    assert read_records(EXPIRED_POINTS, missing, REQUEST_ID, SECRETS) == []
    with pytest.raises(NeoNotFoundError):
        read_records(EXPIRING_ALLOCATIONS, missing, REQUEST_ID, SECRETS)


def test_client_errors_raise_at_once() -> None:
    with pytest.raises(NeoBadRequestError, match="Invalid parameter 'count'"):
        read_records(EXPIRING_ALLOCATIONS, Received(400, {}, CAPILLARY_400), REQUEST_ID, [])


def test_the_token_answer_gives_the_token_and_its_ttl_in_seconds() -> None:
    answer = Received(200, {}, _token_body({"accessToken": "tok-1", "ttlSeconds": "300"}))
    assert read_token(answer, REQUEST_ID, SECRETS) == ("tok-1", 300.0)


@pytest.mark.parametrize(
    "body", [b"not json", _token_body({"ttlSeconds": 300}), _token_body("tok"), b"{}"]
)
def test_a_token_answer_that_is_not_the_documented_json_is_retried(body: bytes) -> None:
    outcome = read_token(Received(200, {}, body), REQUEST_ID, SECRETS)
    assert isinstance(outcome, Retry)
    assert outcome.error.reason == "The OAuth token answer is not the documented JSON"
    assert outcome.error.endpoint == TOKEN_PATH


@pytest.mark.parametrize("token", ["", None, 42])
def test_a_token_answer_holding_no_token_raises(token: Any) -> None:
    body = _token_body({"accessToken": token, "ttlSeconds": 300})
    with pytest.raises(NeoProtocolError, match="holds no token"):
        read_token(Received(200, {}, body), REQUEST_ID, SECRETS)


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_refused_client_key_or_secret_is_an_auth_error(status: int) -> None:
    with pytest.raises(NeoAuthError, match="refused the OAuth client key or secret") as raised:
        read_token(Received(status, {}, CAPILLARY_400), REQUEST_ID, SECRETS)
    assert (raised.value.status, raised.value.endpoint) == (status, TOKEN_PATH)


def test_a_token_endpoint_out_of_service_is_retried_and_a_404_raises() -> None:
    outcome = read_token(Received(503, {"retry-after": "2"}, b""), REQUEST_ID, SECRETS)
    assert isinstance(outcome, Retry)
    assert outcome.retry_after == 2.0
    with pytest.raises(NeoNotFoundError):
        read_token(Received(404, {}, b""), REQUEST_ID, SECRETS)


@pytest.mark.parametrize(
    ("status", "body", "decoded"),
    [
        (200, b'{"status": {"success": true}}', {"status": {"success": True}}),
        (202, b"", None),
        (200, b"accepted", None),
    ],
)
def test_a_posted_answer_is_its_json_or_none(status: int, body: bytes, decoded: Any) -> None:
    assert read_posted("/sendMessage", Received(status, {}, body), REQUEST_ID, SECRETS) == decoded


def test_a_posted_answer_that_failed_is_retried_or_raised() -> None:
    outcome = read_posted("/sendMessage", Received(502, {}, b""), REQUEST_ID, SECRETS)
    assert isinstance(outcome, Retry)
    assert isinstance(outcome.error, NeoServerError)
    with pytest.raises(NeoBadRequestError) as raised:
        read_posted("/sendMessage", Received(400, {}, CAPILLARY_400), REQUEST_ID, SECRETS)
    assert raised.value.endpoint == "/sendMessage"


def test_no_answer_is_a_connection_error_to_retry_without_the_secrets() -> None:
    failed = Failed(f"ConnectionError: reset while sending {SECRET}")
    outcome = no_answer("/v1/points/x", failed, REQUEST_ID, SECRETS)
    assert isinstance(outcome.error, NeoConnectionError)
    assert (
        outcome.error.reason
        == "No complete answer from Neo: ConnectionError: reset while sending ***"
    )
    assert (outcome.error.endpoint, outcome.error.request_id) == ("/v1/points/x", REQUEST_ID)
    assert outcome.retry_after is None
