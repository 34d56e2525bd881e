"""The errors a Neo call can end in. Each carries the endpoint, the HTTP status, the
`x-cap-request-id` sent (quote it to Capillary support) and a short, redacted body excerpt;
never a header, password, hash, secret or token."""

from __future__ import annotations

import re
from collections.abc import Iterable

from airflow.providers.common.compat.sdk import AirflowException

EXCERPT_LENGTH = 200


def excerpt(body: bytes | str, secrets: Iterable[str] = ()) -> str:
    """The start of a response body on one line, with any secret replaced by `***`."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = re.sub(r"\s+", " ", text).strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:EXCERPT_LENGTH] + ("..." if len(text) > EXCERPT_LENGTH else "")


class NeoError(AirflowException):
    """A Neo call failed. Subclasses say how; the attributes say where."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        self.reason = message
        self.endpoint = endpoint
        self.status = status
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        details = [
            f"endpoint={endpoint}" if endpoint else "",
            f"status={status}" if status is not None else "",
            f"x-cap-request-id={request_id}" if request_id else "",
            f"body={body_excerpt!r}" if body_excerpt else "",
        ]
        super().__init__(f"{message} [{', '.join(d for d in details if d)}]")


class NeoBadRequestError(NeoError):
    """400: Neo rejected the parameters or headers."""


class NeoAuthError(NeoError):
    """401/403: the credentials, token or permissions were refused."""


class NeoNotFoundError(NeoError):
    """404 where it does not simply mean "no rows"."""


class NeoRateLimitedError(NeoError):
    """429 that retries did not get past."""


class NeoRateBudgetError(NeoError):
    """The shared rate budget's store (`rate_limit_storage`) could not be reached."""


class NeoServerError(NeoError):
    """5xx that retries did not get past."""


class NeoConnectionError(NeoError):
    """The host could not be reached, timed out, or dropped the connection, after retries."""


class NeoProtocolError(NeoError):
    """Neo answered something that is not what the API promises: not JSON, the wrong shape, or
    paging that does not end."""
