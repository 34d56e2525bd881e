"""Neo's authentication as the simulator enforces it: Basic with an MD5 hash, or OAuth tokens."""

from __future__ import annotations

import base64
import time

import requests

from airflow_provider_neo.endpoints import (
    EXPIRED_POINTS,
    OAUTH_TOKEN_HEADER,
    SCOPE_HEADER,
    TOKEN_PATH,
)
from neo_simulator.auth import DEFAULT_OAUTH_KEY, DEFAULT_OAUTH_SECRET
from neo_simulator.testing import NEO_HEADERS, RunningSimulator, basic_auth

SAMPLE = {"customer_id": "11064", "year": "2024"}
SCOPE = {SCOPE_HEADER: "global"}


def _get(sim: RunningSimulator, headers: dict[str, str]) -> requests.Response:
    return sim.get(EXPIRED_POINTS.path, SAMPLE, headers={**SCOPE, **headers})


def _token(
    sim: RunningSimulator, key: str = DEFAULT_OAUTH_KEY, secret: str = DEFAULT_OAUTH_SECRET
) -> requests.Response:
    return requests.post(sim.url + TOKEN_PATH, json={"key": key, "secret": secret}, timeout=10)


def test_basic_auth_with_md5_hashed_password_is_accepted(simulator: RunningSimulator) -> None:
    assert _get(simulator, {"Authorization": basic_auth()}).status_code == 200


def test_basic_auth_with_plain_password_is_refused(simulator: RunningSimulator) -> None:
    plain = "Basic " + base64.b64encode(b"neo_user:neo_password").decode()
    response = _get(simulator, {"Authorization": plain})
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Invalid username or password"


def test_wrong_password_or_user_is_refused(simulator: RunningSimulator) -> None:
    assert _get(simulator, {"Authorization": basic_auth(password="wrong")}).status_code == 401
    assert _get(simulator, {"Authorization": basic_auth(username="someone")}).status_code == 401


def test_missing_or_malformed_credentials_are_refused(simulator: RunningSimulator) -> None:
    assert _get(simulator, {}).status_code == 401
    assert _get(simulator, {"Authorization": "Basic %%%not-base64"}).status_code == 401
    assert _get(simulator, {"Authorization": "Bearer abc"}).status_code == 401


def test_authentication_is_checked_before_the_scope_header(simulator: RunningSimulator) -> None:
    response = simulator.get(EXPIRED_POINTS.path, SAMPLE, headers={})
    assert response.status_code == 401


def test_oauth_token_is_issued_in_capillarys_shape_and_accepted(
    simulator: RunningSimulator,
) -> None:
    response = _token(simulator)
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] is None
    assert body["data"]["ttlSeconds"] == 300
    token = body["data"]["accessToken"]
    assert token.count(".") == 2  # JWT-shaped
    assert _get(simulator, {OAUTH_TOKEN_HEADER: token}).status_code == 200


def test_oauth_token_with_wrong_secret_is_refused(simulator: RunningSimulator) -> None:
    response = _token(simulator, secret="wrong")
    assert response.status_code == 401
    assert response.json()["data"] is None


def test_unknown_oauth_token_is_refused(simulator: RunningSimulator) -> None:
    response = _get(simulator, {OAUTH_TOKEN_HEADER: "a.b.c"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Invalid OAuth token"


def test_oauth_token_stops_working_after_its_ttl(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim("--token-ttl", "1")
    token = _token(sim).json()["data"]["accessToken"]
    assert _get(sim, {OAUTH_TOKEN_HEADER: token}).status_code == 200
    time.sleep(1.2)
    expired = _get(sim, {OAUTH_TOKEN_HEADER: token})
    assert expired.status_code == 401
    assert expired.json()["errors"][0]["message"] == "OAuth token expired"
    fresh = _token(sim).json()["data"]["accessToken"]
    assert _get(sim, {OAUTH_TOKEN_HEADER: fresh}).status_code == 200


def test_credentials_are_set_by_flags(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(
        "--username", "till01", "--password", "s3cret", "--oauth-key", "k", "--oauth-secret", "s"
    )
    assert _get(sim, {"Authorization": basic_auth("till01", "s3cret")}).status_code == 200
    assert _get(sim, {"Authorization": NEO_HEADERS["Authorization"]}).status_code == 401
    assert _token(sim, "k", "s").status_code == 200
    assert _token(sim).status_code == 401


def test_revoked_tokens_are_refused(simulator: RunningSimulator) -> None:
    token = _token(simulator).json()["data"]["accessToken"]
    assert _get(simulator, {OAUTH_TOKEN_HEADER: token}).status_code == 200
    assert simulator.control("POST", "revoke-tokens")["revoked"] >= 1
    assert _get(simulator, {OAUTH_TOKEN_HEADER: token}).status_code == 401
