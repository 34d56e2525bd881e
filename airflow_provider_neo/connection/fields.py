"""The `neo` connection's fields, declared once: `CONNECTION_FIELDS`, one entry per key of the
extra, and the connection forms of Airflow 3.1 and 3.2+ made from it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import pendulum

from airflow_provider_neo.endpoints import (
    ENDPOINTS_BY_NAME,
    MAX_PAGE_SIZE,
    SCOPE_HEADER,
    TEST_VARIANT_HEADER,
    TOKEN_PATH,
)
from airflow_provider_neo.validation import choice, flag, number

CONN_TYPE: Final = "neo"
DEFAULT_CONN_ID: Final = "neo_default"
HOOK_NAME: Final = "Capillary Neo"
AUTH_TYPES: Final = ("basic", "oauth")
SCOPES: Final = ("global", "org", "parent")
RATE_LIMIT_STORAGE_SCHEMES: Final = ("memory", "redis", "rediss")


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`: fit for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


# --- parsers of the fields whose checks go beyond type, bounds and choices ---------------------
# Each takes the field's name and its value (the default when the extra has none).


def _stripped(name: str, value: Any) -> str | None:
    return str(value or "").strip() or None


def _timezone(name: str, value: Any) -> str:
    try:
        pendulum.timezone(str(value))
    except Exception:
        raise ValueError(f"{name}: unknown IANA time zone {value!r}") from None
    return str(value)


def _rate_limit_storage(name: str, value: Any) -> str:
    text = str(value or "").strip() or "memory://"
    expected = "expected memory://, redis://host:port/db or rediss://host:port/db"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"{name}: {expected}, got an unreadable URL") from None
    shown = redact_url(text)
    scheme = parts.scheme.lower()
    if scheme not in RATE_LIMIT_STORAGE_SCHEMES or "://" not in text:
        raise ValueError(f"{name}: {expected}, got {shown!r}")
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query:
            raise ValueError(f"{name}: memory:// takes nothing more, got {shown!r}")
        return "memory://"
    if not parts.hostname:
        raise ValueError(f"{name}: {shown!r} names no host")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError(f"{name}: the Redis database must be a number, got {database!r}")
    return text


def _endpoint_paths(name: str, value: Any) -> dict[str, str]:
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{name}: expected a JSON object, got {value!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a JSON object, got {value!r}")
    for endpoint, path in value.items():
        if endpoint not in ENDPOINTS_BY_NAME:
            known = ", ".join(ENDPOINTS_BY_NAME)
            raise ValueError(f"{name}: unknown endpoint {endpoint!r} (known: {known})")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{name}: path for {endpoint} must start with '/', got {path!r}")
    return dict(value)


# --- the fields ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnField:
    """A key of the connection's extra: its form entry, default, bounds and parsing."""

    name: str
    label: str
    type: Literal["string", "integer", "number", "boolean"]
    description: str
    default: Any = None
    secret: bool = False
    enum: tuple[str, ...] = ()
    # A typical value: the form offers it as a suggestion as the user types (a JSON-schema
    # `examples` entry; Airflow's form shows placeholders for its standard fields only).
    example: str = ""
    minimum: float | None = None
    maximum: float | None = None
    # False for an advanced key: set in the extra (or as a hook override), with no form field.
    form: bool = True
    # For checks beyond type, bounds and enum: (name, value) -> the checked value.
    parser: Callable[[str, Any], Any] | None = None

    def parse(self, value: Any) -> Any:
        """The checked value of `value`; an absent or empty value stands for the default."""
        if value is None or value == "":
            value = self.default
        if self.parser is not None:
            return self.parser(self.name, value)
        if value is None:
            return None
        if self.enum:
            return choice(self.name, value, self.enum, fold_case=True)
        if self.type == "boolean":
            return flag(self.name, value)
        if self.type == "string":
            return value
        minimum = float("-inf") if self.minimum is None else self.minimum
        parsed = number(self.name, value, minimum=minimum, integer=self.type == "integer")
        if self.maximum is not None and parsed > self.maximum:
            raise ValueError(f"{self.name}: Neo allows at most {self.maximum}, got {parsed}")
        return parsed

    def accepts(self) -> str:
        """What the field accepts, in words: for the docs."""
        if self.enum:
            return "one of " + ", ".join(f"`{option}`" for option in self.enum)
        if self.type == "boolean":
            return "true or false"
        if self.type in ("integer", "number"):
            kind = "integer" if self.type == "integer" else "number"
            if self.maximum is not None:
                return f"{kind} {self.minimum:g}..{self.maximum:g}"
            return f"{kind} >= {self.minimum:g}" if self.minimum is not None else kind
        return "text"


# The one list of the keys a `neo` connection keeps in its extra. One loop over it makes each of:
# the declarative form of Airflow 3.2+ (`conn_fields`, in `get_provider_info`), the widget form of
# Airflow 3.1 (`NeoHook.get_connection_form_widgets`), the table of docs/connection.md
# (`scripts/connection_docs.py`) and the settings (`NeoConnectionSettings.from_connection`).
# Advanced keys (`form=False`) are parsed and documented the same way but have no form field.
CONNECTION_FIELDS: Final = (
    ConnField(
        "auth_type",
        "Auth type",
        "string",
        "basic (username and password) or oauth (client key and secret).",
        default="basic",
        enum=AUTH_TYPES,
    ),
    ConnField(
        "md5_hashed_credential",
        "Password is already MD5-hashed",
        "boolean",
        "Tick when the password field holds the MD5 hex of the password.",
        default=False,
    ),
    ConnField(
        "oauth_client_key",
        "OAuth client key",
        "string",
        f"Client key for {TOKEN_PATH}.",
    ),
    ConnField(
        "oauth_client_secret", "OAuth client secret", "string", "Client secret.", secret=True
    ),
    ConnField(
        "scope",
        "Neo scope",
        "string",
        f"{SCOPE_HEADER} header: global, org or parent.",
        default="global",
        enum=SCOPES,
    ),
    ConnField(
        "test_variant_id",
        "Test variant id",
        "string",
        f"{TEST_VARIANT_HEADER}: UUID of a non-live dataflow version (empty for live).",
        example="7a67e565-ad2a-498a-937b-fac8a63e828c",
        parser=_stripped,
    ),
    ConnField(
        "timezone",
        "Organisation time zone",
        "string",
        "IANA time zone of the organisation; every date window is computed in it.",
        default="UTC",
        example="Asia/Kolkata",
        parser=_timezone,
    ),
    ConnField(
        "timeout",
        "Timeout (seconds)",
        "number",
        "Seconds one request may take in all, headers and body included: a deadline, not a"
        " per-read timeout.",
        default=30,
        minimum=0.001,
    ),
    ConnField(
        "max_concurrency",
        "Max concurrency",
        "integer",
        "Requests in flight at once (per-customer calls and paIds batches).",
        default=8,
        minimum=1,
    ),
    ConnField(
        "requests_per_minute",
        "Requests per minute",
        "number",
        "Client-side budget across all threads of a hook, or of every process sharing a"
        " rate_limit_storage; empty for none. Demo clusters allow about 100.",
        minimum=0.001,
    ),
    ConnField(
        "rate_limit_storage",
        "Rate budget storage",
        "string",
        "Where the requests-per-minute budget is kept: memory:// (each process its own) or"
        " redis://host:port/db (rediss:// for TLS), shared by every process using these"
        " credentials.",
        default="memory://",
        example="redis://redis:6379/0",
        parser=_rate_limit_storage,
    ),
    ConnField(
        "verify_tls", "Verify TLS", "boolean", "Verify the server certificate.", default=True
    ),
    ConnField(
        "max_retries",
        "Max retries",
        "integer",
        "Retries of a request on 5xx, dropped connections and timeouts (429s are retried for"
        " up to rate_limit_max_wait_seconds).",
        default=5,
        minimum=0,
    ),
    ConnField(
        "endpoint_paths",
        "Endpoint path overrides (JSON)",
        "string",
        'Replace an endpoint\'s path, e.g. {"expiring_allocations":'
        ' "/das/getPAIdsForProvidedDateRange"} inside Neo dataflows.',
        parser=_endpoint_paths,
    ),
    # Advanced keys: in the extra only.
    ConnField(
        "page_size",
        "Page size",
        "integer",
        "Rows asked for per page of the paged endpoints.",
        default=MAX_PAGE_SIZE,
        minimum=1,
        maximum=MAX_PAGE_SIZE,
        form=False,
    ),
    ConnField(
        "max_pages",
        "Max pages",
        "integer",
        "Pages of one query after which paging stops with NeoProtocolError.",
        default=100_000,
        minimum=1,
        form=False,
    ),
    ConnField(
        "max_requests_per_call",
        "Max requests per call",
        "integer",
        "Requests one call may send, every page and retry included (one customer's query, or one"
        " paIds batch), after which it stops with NeoProtocolError.",
        default=1_000,
        minimum=1,
        form=False,
    ),
    ConnField(
        "max_url_length",
        "Max URL length",
        "integer",
        "Longest paIds request URL, in characters: bounds the ids of one batch.",
        default=8_000,
        minimum=256,
        form=False,
    ),
    ConnField(
        "max_ids_per_request",
        "Max ids per request",
        "integer",
        "Most customer ids in one paIds request.",
        default=1_000,
        minimum=1,
        form=False,
    ),
    ConnField(
        "backoff_base_seconds",
        "Backoff base (seconds)",
        "number",
        "The first retry's backoff, doubled at each retry, with full jitter.",
        default=0.5,
        minimum=0,
        form=False,
    ),
    ConnField(
        "backoff_max_seconds",
        "Backoff max (seconds)",
        "number",
        "The longest backoff between two tries.",
        default=30,
        minimum=0,
        form=False,
    ),
    ConnField(
        "rate_limit_max_wait_seconds",
        "Rate-limit max wait (seconds)",
        "number",
        # Long enough to wait out a whole rate window of one minute, with room for jitter.
        "How long one request keeps waiting out 429s in all.",
        default=120,
        minimum=0,
        form=False,
    ),
)
FORM_FIELDS: Final = tuple(f for f in CONNECTION_FIELDS if f.form)
FIELDS_BY_NAME: Final = {f.name: f for f in CONNECTION_FIELDS}


def conn_fields() -> dict[str, Any]:
    """`conn-fields` for get_provider_info (Airflow 3.2+ renders the form from it)."""
    result: dict[str, Any] = {}
    for f in FORM_FIELDS:
        schema: dict[str, Any] = {"type": [f.type, "null"]}
        if f.default is not None:
            schema["default"] = f.default
        if f.enum:
            schema["enum"] = list(f.enum)
        if f.secret:
            schema["format"] = "password"
        if f.example:
            schema["examples"] = [f.example]
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.maximum is not None:
            schema["maximum"] = f.maximum
        # The example also in words: the form's suggestions show only once the user types.
        description = f"{f.description} For example: {f.example}" if f.example else f.description
        result[f.name] = {"label": f.label, "description": description, "schema": schema}
    return result


# Placeholders for the Connection's own fields only: Airflow's form reads no other (the extra
# fields' suggestions are their `example`).
UI_FIELD_BEHAVIOUR: Final[dict[str, Any]] = {
    "hidden_fields": [],
    "relabeling": {
        "host": "Cluster host",
        "schema": "Scheme",
        "login": "Username (Basic auth)",
        "password": "Password (Basic auth)",
    },
    "placeholders": {
        "host": "eu.api.capillarytech.com",
        "schema": "https",
        "login": "till or store-center login",
    },
}


def ui_field_behaviour_kebab() -> dict[str, Any]:
    """The same behaviour with the kebab-case keys of provider info."""
    return {
        "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
