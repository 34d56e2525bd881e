"""What Neo's answers mean, free of I/O: statuses as typed errors naming Capillary's message,
Retry-After, and bodies decoded into records, an OAuth token or a POST's JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from airflow_provider_neo.client.actions import Failed, Received
from airflow_provider_neo.client.backoff import RETRYABLE_STATUSES, parse_retry_after
from airflow_provider_neo.client.errors import (
    NeoAuthError,
    NeoBadRequestError,
    NeoConnectionError,
    NeoError,
    NeoNotFoundError,
    NeoProtocolError,
    NeoRateLimitedError,
    NeoServerError,
    excerpt,
)
from airflow_provider_neo.endpoints import TOKEN_PATH, Endpoint
from airflow_provider_neo.records import decode_records

R = TypeVar("R", bound=msgspec.Struct)


@dataclass(frozen=True)
class Retry:
    """An answer worth another try: the error it stands for, and how long Neo asked to wait."""

    error: NeoError
    retry_after: float | None = None

    @classmethod
    def of(cls, error: NeoError, reply: Received) -> Retry:
        """`error`, retried after the Retry-After `reply` carries, if any."""
        return cls(error, parse_retry_after(reply.headers.get("retry-after")))


def neo_message(body: bytes) -> str | None:
    """The first message of a Capillary-style error body, if the body is one."""
    try:
        data = json.loads(body)
        message = data["errors"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return message if isinstance(message, str) else None


def no_answer(label: str, reply: Failed, request_id: str, secrets: Sequence[str]) -> Retry:
    """A request that got no complete answer: a connection error, worth another try."""
    return Retry(
        NeoConnectionError(
            f"No complete answer from Neo: {excerpt(reply.description, secrets)}",
            endpoint=label,
            request_id=request_id,
        )
    )


def neo_error(label: str, reply: Received, request_id: str, secrets: Sequence[str]) -> NeoError:
    """The typed error an unsuccessful answer stands for, with `label` (the endpoint), the status
    and the request id; any of `secrets` in the body is hidden."""
    status = reply.status
    message = neo_message(reply.body)
    said = f": {message}" if message else ""
    details = {
        "endpoint": label,
        "status": status,
        "request_id": request_id,
        "body_excerpt": excerpt(reply.body, secrets),
    }
    if status == 400:
        return NeoBadRequestError(f"Neo rejected the request{said}", **details)  # type: ignore[arg-type]
    if status in (401, 403):
        return NeoAuthError(f"Neo refused the credentials{said}", **details)  # type: ignore[arg-type]
    if status == 404:
        return NeoNotFoundError(f"Neo answered 404{said}", **details)  # type: ignore[arg-type]
    if status == 429:
        return NeoRateLimitedError("Neo's rate limit was hit", **details)  # type: ignore[arg-type]
    if status >= 500:
        return NeoServerError(f"Neo answered {status}", **details)  # type: ignore[arg-type]
    if 300 <= status < 400:
        # Neo's API never redirects; following one would hand the credentials to another host.
        location = excerpt(reply.headers.get("location") or "nowhere", secrets)
        return NeoProtocolError(
            f"Neo answered {status}, a redirect to {location}, which was not followed:"
            " Neo's API never redirects",
            **details,  # type: ignore[arg-type]
        )
    return NeoProtocolError(f"Neo answered an unexpected {status}", **details)  # type: ignore[arg-type]


def read_records(
    endpoint: Endpoint[R], reply: Received, request_id: str, secrets: Sequence[str]
) -> list[R] | Retry:
    """The records of `endpoint` a 200 holds, or the error the answer stands for: retried when
    it may pass (a cut-off body, 429, 5xx), raised when it would not."""
    if reply.status == 200:
        try:
            return decode_records(reply.body, endpoint.record)
        except msgspec.ValidationError as exc:  # JSON, but not the documented rows
            raise NeoProtocolError(
                f"Neo answered rows of an unexpected shape: {exc}",
                endpoint=endpoint.path,
                status=200,
                request_id=request_id,
                body_excerpt=excerpt(reply.body, secrets),
            ) from None
        except msgspec.DecodeError:  # cut off, or a proxy's HTML page: worth another try
            return Retry(
                NeoProtocolError(
                    "Neo answered 200 with a body that is not JSON",
                    endpoint=endpoint.path,
                    status=200,
                    request_id=request_id,
                    body_excerpt=excerpt(reply.body, secrets),
                )
            )
    if reply.status == 404 and endpoint.not_found_is_empty:
        return []
    error = neo_error(endpoint.path, reply, request_id, secrets)
    if reply.status in RETRYABLE_STATUSES:
        return Retry.of(error, reply)
    raise error


def read_token(
    reply: Received, request_id: str, secrets: Sequence[str]
) -> tuple[str, float] | Retry:
    """The OAuth token and its ttl in seconds from the token endpoint's answer."""
    if reply.status == 200:
        try:
            data = json.loads(reply.body)["data"]
            token, ttl = data["accessToken"], float(data["ttlSeconds"])
        except (ValueError, KeyError, TypeError):
            return Retry(
                NeoProtocolError(
                    "The OAuth token answer is not the documented JSON",
                    endpoint=TOKEN_PATH,
                    status=200,
                    request_id=request_id,
                )
            )
        if not isinstance(token, str) or not token:
            raise NeoProtocolError(
                "The OAuth token answer holds no token",
                endpoint=TOKEN_PATH,
                request_id=request_id,
            )
        return token, ttl
    error = neo_error(TOKEN_PATH, reply, request_id, secrets)
    if reply.status in RETRYABLE_STATUSES:
        return Retry.of(error, reply)
    if reply.status in (400, 401, 403):
        raise NeoAuthError(
            "Neo refused the OAuth client key or secret",
            endpoint=TOKEN_PATH,
            status=reply.status,
            request_id=request_id,
            body_excerpt=error.body_excerpt,
        )
    raise error


def read_posted(label: str, reply: Received, request_id: str, secrets: Sequence[str]) -> Any:
    """A POST's decoded answer (None when it is not JSON), or the error it stands for."""
    if 200 <= reply.status < 300:
        try:
            return json.loads(reply.body) if reply.body else None
        except ValueError:
            return None
    error = neo_error(label, reply, request_id, secrets)
    if reply.status in RETRYABLE_STATUSES:
        return Retry.of(error, reply)
    raise error
