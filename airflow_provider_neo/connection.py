"""The `neo` connection: its fields, declared once, and their parsing into checked settings.

`CONNECTION_FIELDS` is the one list of the keys a `neo` connection keeps in its extra, each with
its type, default, bounds and parsing. One loop over it makes each of: the declarative form of
Airflow 3.2+ (`conn_fields`, in `get_provider_info`), the widget form of Airflow 3.1
(`NeoHook.get_connection_form_widgets`), the README's connection table
(`scripts/connection_docs.py`) and `NeoConnectionSettings.from_connection`, which turns a
Connection (UI, URI or JSON) into settings, or a ValueError naming the field that is wrong.
Advanced keys (`form=False`) are parsed and documented the same way but have no form field.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import pendulum

from airflow_provider_neo.endpoints import (
    ENDPOINTS_BY_NAME,
    MAX_PAGE_SIZE,
    REQUEST_ID_HEADER,
    SCOPE_HEADER,
    TEST_VARIANT_HEADER,
    TOKEN_PATH,
    Endpoint,
)
from airflow_provider_neo.validation import choice, flag, number

log = logging.getLogger(__name__)

CONN_TYPE: Final = "neo"
DEFAULT_CONN_ID: Final = "neo_default"
HOOK_NAME: Final = "Capillary Neo"
AUTH_TYPES: Final = ("basic", "oauth")
SCOPES: Final = ("global", "org", "parent")
RATE_LIMIT_STORAGE_SCHEMES: Final = ("memory", "redis", "rediss")


def redact_url(url: str) -> str:
    """`url` with any password replaced by ***: fit for logs and errors."""
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

# Keys of earlier versions, still read from connections defined outside the UI (environment
# variables, secrets backends). `password_is_md5` had to go: Airflow masks any key containing
# "password", so the UI showed and saved the switch as "***".
RENAMED_KEYS: Final = {"password_is_md5": "md5_hashed_credential"}


def _renamed_keys_read(extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` with each old key's value under its new name (the new key wins), with a warning."""
    result = dict(extra)
    for old, new in RENAMED_KEYS.items():
        if old not in result:
            continue
        log.warning(
            "The neo connection's extra key %r is deprecated and will stop being read; rename"
            " it to %r.",
            old,
            new,
        )
        value = result.pop(old)
        if new not in result:
            # Checked under the old name, so an error names the key the user wrote.
            try:
                result[new] = dataclasses.replace(FIELDS_BY_NAME[new], name=old).parse(value)
            except ValueError as exc:
                raise ValueError(f"{exc} (set {new!r} instead)") from None
    return result


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


class ConnectionLike(Protocol):
    host: str | None
    schema: str | None
    port: int | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def connection_extra(
    conn: ConnectionLike, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The connection's extra fields that are set, with `overrides` in their place."""
    # Forms of older Airflow versions saved fields as extra__neo__<name>.
    saved = {
        key.removeprefix(f"extra__{CONN_TYPE}__"): value
        for key, value in (conn.extra_dejson or {}).items()
        if value not in (None, "")
    }
    return {**saved, **(overrides or {})}


def unknown_key_warnings(extra: Mapping[str, Any]) -> tuple[str, ...]:
    """One warning per key of `extra` (or of a hook's overrides) that no field reads: a
    misspelt key (`max_concurency`) would otherwise be ignored without a word."""
    known = [f.name for f in CONNECTION_FIELDS]
    warnings = []
    for key in sorted(set(extra) - set(known) - set(RENAMED_KEYS)):  # old names warn elsewhere
        nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean {nearest[0]!r}?" if nearest else ""
        warnings.append(f"unknown connection key {key!r} is ignored{hint}")
    return tuple(warnings)


@dataclass(frozen=True)
class NeoConnectionSettings:
    """Everything a Neo client needs from a connection, checked. Secrets stay out of repr.

    Besides the Connection's own fields (`base_url`, `username`, `password`), one attribute per
    entry of `CONNECTION_FIELDS`, named alike; their defaults live in those entries only."""

    base_url: str
    username: str | None
    password: str | None = field(repr=False)
    auth_type: str
    md5_hashed_credential: bool
    oauth_client_key: str | None
    oauth_client_secret: str | None = field(repr=False)
    scope: str
    test_variant_id: str | None
    timezone: str
    timeout: float
    max_concurrency: int
    requests_per_minute: float | None
    rate_limit_storage: str = field(repr=False)  # may hold a password
    verify_tls: bool
    max_retries: int
    endpoint_paths: Mapping[str, str]
    page_size: int
    max_pages: int
    max_requests_per_call: int
    max_url_length: int
    max_ids_per_request: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    rate_limit_max_wait_seconds: float

    @classmethod
    def from_connection(
        cls, conn: ConnectionLike, overrides: Mapping[str, Any] | None = None
    ) -> NeoConnectionSettings:
        """Settings from a connection, with `overrides` taking the place of its extra fields."""
        extra = {
            **_renamed_keys_read(connection_extra(conn)),
            **_renamed_keys_read(overrides or {}),
        }
        settings = cls(
            base_url=_base_url(conn),
            username=conn.login or None,
            password=conn.password or None,
            **{f.name: f.parse(extra.get(f.name)) for f in CONNECTION_FIELDS},
        )
        settings.check_credentials()
        return settings

    def check_credentials(self) -> None:
        if self.auth_type == "basic" and not (self.username and self.password):
            raise ValueError("login/password: Basic auth needs a username and a password")
        if self.auth_type == "oauth" and not (self.oauth_client_key and self.oauth_client_secret):
            raise ValueError(
                "oauth_client_key/oauth_client_secret: OAuth needs a client key and a secret"
            )

    def rate_budget_key(self) -> str:
        """The Redis key of the budget these credentials draw from: the host, and a hash of who
        signs in (the login or the OAuth client key), never a secret."""
        who = self.username if self.auth_type == "basic" else self.oauth_client_key
        identity = hashlib.sha256(f"{self.auth_type}:{who}".encode()).hexdigest()[:24]
        host = urlsplit(self.base_url).netloc
        return f"neo:rate-budget:{host}:{identity}"

    @property
    def password_md5(self) -> str:
        assert self.password is not None
        if self.md5_hashed_credential:
            return self.password.strip().lower()
        return hashlib.md5(self.password.encode()).hexdigest()

    def basic_authorization(self) -> str:
        credentials = f"{self.username}:{self.password_md5}".encode()
        return "Basic " + base64.b64encode(credentials).decode()

    def secrets(self) -> list[str]:
        """Every value that must never reach a log: for Airflow's secrets masker."""
        values = [self.oauth_client_secret]
        if self.password:
            values += [self.password, self.password_md5, self.basic_authorization()]
            values.append(self.basic_authorization().removeprefix("Basic "))
        values.append(urlsplit(self.rate_limit_storage).password)
        return [value for value in values if value]

    def neo_headers(self, request_id: str) -> dict[str, str]:
        """The headers every Neo request carries, except authentication."""
        headers = {
            SCOPE_HEADER: self.scope,
            REQUEST_ID_HEADER: request_id,
            "Accept": "application/json",
        }
        if self.test_variant_id:
            headers[TEST_VARIANT_HEADER] = self.test_variant_id
        return headers

    def path(self, endpoint: Endpoint[Any]) -> str:
        return self.endpoint_paths.get(endpoint.name, endpoint.path)

    def url(self, endpoint: Endpoint[Any], query: Mapping[str, str]) -> str:
        # Commas stay literal, so an id list costs one byte per separator, not three.
        return f"{self.base_url}{self.path(endpoint)}?{urlencode(query, safe=',')}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"


def _base_url(conn: ConnectionLike) -> str:
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        raise ValueError("host: the Neo cluster host is required, e.g. eu.api.capillarytech.com")
    if "://" in host:
        scheme, _, host = host.partition("://")
    else:
        scheme = (conn.schema or "https").strip().lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"schema: expected http or https, got {scheme!r}")
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}"
