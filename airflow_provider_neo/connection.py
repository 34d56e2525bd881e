"""The `neo` connection: its fields, declared once, and their parsing into checked settings.

`CONNECTION_FIELDS` feeds the declarative form of Airflow 3.2+ (`conn-fields` in
`get_provider_info`), the widget form of Airflow 3.1 (`NeoHook.get_connection_form_widgets`) and
`NeoConnectionSettings.from_connection`, which turns a Connection (UI, URI or JSON) into settings,
or a ValueError naming the field that is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlencode

import pendulum

from airflow_provider_neo.endpoints import ENDPOINTS_BY_NAME, MAX_PAGE_SIZE, Endpoint

CONN_TYPE: Final = "neo"
DEFAULT_CONN_ID: Final = "neo_default"
HOOK_NAME: Final = "Capillary Neo"
AUTH_TYPES: Final = ("basic", "oauth")
SCOPES: Final = ("global", "org", "parent")


@dataclass(frozen=True)
class ConnField:
    """A connection field kept in the connection's extra."""

    name: str
    label: str
    type: Literal["string", "integer", "number", "boolean"]
    description: str
    default: Any = None
    secret: bool = False
    enum: tuple[str, ...] = ()
    placeholder: str = ""


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
        "password_is_md5",
        "Password is already MD5-hashed",
        "boolean",
        "Tick when the password field holds the MD5 hex of the password.",
        default=False,
    ),
    ConnField(
        "oauth_client_key",
        "OAuth client key",
        "string",
        "Client key for /v3/oauth/token/generate.",
        placeholder="client key",
    ),
    ConnField(
        "oauth_client_secret", "OAuth client secret", "string", "Client secret.", secret=True
    ),
    ConnField(
        "scope",
        "Neo scope",
        "string",
        "x-cap-neo-dag-scope header: global, org or parent.",
        default="global",
        enum=SCOPES,
    ),
    ConnField(
        "test_variant_id",
        "Test variant id",
        "string",
        "x-cap-neo-test-variant-id: UUID of a non-live dataflow version (empty for live).",
        placeholder="7a67e565-ad2a-498a-937b-fac8a63e828c",
    ),
    ConnField(
        "timezone",
        "Organisation time zone",
        "string",
        "IANA time zone of the organisation; every date window is computed in it.",
        default="UTC",
        placeholder="Asia/Kolkata",
    ),
    ConnField(
        "timeout",
        "Timeout (seconds)",
        "number",
        "Connect and read timeout per request.",
        default=30,
    ),
    ConnField(
        "max_concurrency",
        "Max concurrency",
        "integer",
        "Requests in flight at once (per-customer calls and paIds batches).",
        default=8,
    ),
    ConnField(
        "requests_per_minute",
        "Requests per minute",
        "number",
        "Client-side budget across all threads; empty for none. Demo clusters allow about 100.",
        placeholder="100",
    ),
    ConnField(
        "verify_tls", "Verify TLS", "boolean", "Verify the server certificate.", default=True
    ),
    ConnField(
        "max_retries",
        "Max retries",
        "integer",
        "Retries of a request on 429, 5xx, dropped connections and timeouts.",
        default=5,
    ),
    ConnField(
        "endpoint_paths",
        "Endpoint path overrides (JSON)",
        "string",
        'Replace an endpoint\'s path, e.g. {"expiring_allocations":'
        ' "/das/getPAIdsForProvidedDateRange"} inside Neo dataflows.',
    ),
)
CONNECTION_FIELDS_BY_NAME: Final = {f.name: f for f in CONNECTION_FIELDS}

# Advanced knobs kept in the extra without a form field of their own.
DEFAULT_MAX_URL_LENGTH: Final = 8_000
DEFAULT_MAX_IDS_PER_REQUEST: Final = 1_000
DEFAULT_MAX_PAGES: Final = 100_000


def conn_fields() -> dict[str, Any]:
    """`conn-fields` for get_provider_info (Airflow 3.2+ renders the form from it)."""
    result: dict[str, Any] = {}
    for f in CONNECTION_FIELDS:
        schema: dict[str, Any] = {"type": [f.type, "null"]}
        if f.default is not None:
            schema["default"] = f.default
        if f.enum:
            schema["enum"] = list(f.enum)
        if f.secret:
            schema["format"] = "password"
        result[f.name] = {"label": f.label, "description": f.description, "schema": schema}
    return result


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
        "extra": '{"endpoint_paths": {}}',
        **{f.name: f.placeholder for f in CONNECTION_FIELDS if f.placeholder},
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


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{name}: expected true or false, got {value!r}")


def _number(name: str, value: Any, *, minimum: float, integer: bool) -> Any:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}: expected {kind}, got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value!r}")
    return number


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return text


@dataclass(frozen=True)
class NeoConnectionSettings:
    """Everything a Neo client needs from a connection, checked. Secrets stay out of repr."""

    base_url: str
    auth_type: str = "basic"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_is_md5: bool = False
    oauth_client_key: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)
    scope: str = "global"
    test_variant_id: str | None = None
    timezone: str = "UTC"
    timeout: float = 30.0
    max_concurrency: int = 8
    requests_per_minute: float | None = None
    verify_tls: bool = True
    max_retries: int = 5
    endpoint_paths: Mapping[str, str] = field(default_factory=dict)
    max_url_length: int = DEFAULT_MAX_URL_LENGTH
    max_ids_per_request: int = DEFAULT_MAX_IDS_PER_REQUEST
    page_size: int = MAX_PAGE_SIZE
    max_pages: int = DEFAULT_MAX_PAGES
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    @classmethod
    def from_connection(
        cls, conn: ConnectionLike, overrides: Mapping[str, Any] | None = None
    ) -> NeoConnectionSettings:
        """Settings from a connection, with `overrides` taking the place of its extra fields."""
        # Forms of older Airflow versions saved fields as extra__neo__<name>.
        saved = {
            key.removeprefix(f"extra__{CONN_TYPE}__"): value
            for key, value in (conn.extra_dejson or {}).items()
            if value not in (None, "")
        }
        extra = {**saved, **(overrides or {})}
        auth_type = _choice("auth_type", extra.get("auth_type") or "basic", AUTH_TYPES)
        settings = cls(
            base_url=_base_url(conn),
            auth_type=auth_type,
            username=conn.login or None,
            password=conn.password or None,
            password_is_md5=_flag("password_is_md5", extra.get("password_is_md5", False)),
            oauth_client_key=extra.get("oauth_client_key") or None,
            oauth_client_secret=extra.get("oauth_client_secret") or None,
            scope=_choice("scope", extra.get("scope") or "global", SCOPES),
            test_variant_id=(str(extra.get("test_variant_id") or "").strip() or None),
            timezone=_timezone(extra.get("timezone") or "UTC"),
            timeout=_number("timeout", extra.get("timeout", 30), minimum=0.001, integer=False),
            max_concurrency=_number(
                "max_concurrency", extra.get("max_concurrency", 8), minimum=1, integer=True
            ),
            requests_per_minute=(
                _number(
                    "requests_per_minute",
                    extra["requests_per_minute"],
                    minimum=0.001,
                    integer=False,
                )
                if extra.get("requests_per_minute") not in (None, "")
                else None
            ),
            verify_tls=_flag("verify_tls", extra.get("verify_tls", True)),
            max_retries=_number(
                "max_retries", extra.get("max_retries", 5), minimum=0, integer=True
            ),
            endpoint_paths=_endpoint_paths(extra.get("endpoint_paths")),
            max_url_length=_number(
                "max_url_length",
                extra.get("max_url_length", DEFAULT_MAX_URL_LENGTH),
                minimum=256,
                integer=True,
            ),
            max_ids_per_request=_number(
                "max_ids_per_request",
                extra.get("max_ids_per_request", DEFAULT_MAX_IDS_PER_REQUEST),
                minimum=1,
                integer=True,
            ),
            page_size=_number(
                "page_size", extra.get("page_size", MAX_PAGE_SIZE), minimum=1, integer=True
            ),
            max_pages=_number(
                "max_pages", extra.get("max_pages", DEFAULT_MAX_PAGES), minimum=1, integer=True
            ),
            backoff_base_seconds=_number(
                "backoff_base_seconds",
                extra.get("backoff_base_seconds", 0.5),
                minimum=0,
                integer=False,
            ),
            backoff_max_seconds=_number(
                "backoff_max_seconds",
                extra.get("backoff_max_seconds", 30),
                minimum=0,
                integer=False,
            ),
        )
        settings.check_credentials()
        if settings.page_size > MAX_PAGE_SIZE:
            raise ValueError(
                f"page_size: Neo allows at most {MAX_PAGE_SIZE}, got {settings.page_size}"
            )
        return settings

    def check_credentials(self) -> None:
        if self.auth_type == "basic" and not (self.username and self.password):
            raise ValueError("login/password: Basic auth needs a username and a password")
        if self.auth_type == "oauth" and not (self.oauth_client_key and self.oauth_client_secret):
            raise ValueError(
                "oauth_client_key/oauth_client_secret: OAuth needs a client key and a secret"
            )

    @property
    def password_md5(self) -> str:
        assert self.password is not None
        if self.password_is_md5:
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
        return [value for value in values if value]

    def neo_headers(self, request_id: str) -> dict[str, str]:
        """The headers every Neo request carries, except authentication."""
        headers = {
            "x-cap-neo-dag-scope": self.scope,
            "x-cap-request-id": request_id,
            "Accept": "application/json",
        }
        if self.test_variant_id:
            headers["x-cap-neo-test-variant-id"] = self.test_variant_id
        return headers

    def path(self, endpoint: Endpoint[Any]) -> str:
        return self.endpoint_paths.get(endpoint.name, endpoint.path)

    def url(self, endpoint: Endpoint[Any], query: Mapping[str, str]) -> str:
        # Commas stay literal, so an id list costs one byte per separator, not three.
        return f"{self.base_url}{self.path(endpoint)}?{urlencode(query, safe=',')}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/v3/oauth/token/generate"


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


def _timezone(name: Any) -> str:
    try:
        pendulum.timezone(str(name))
    except Exception:
        raise ValueError(f"timezone: unknown IANA time zone {name!r}") from None
    return str(name)


def _endpoint_paths(value: Any) -> dict[str, str]:
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"endpoint_paths: expected a JSON object, got {value!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"endpoint_paths: expected a JSON object, got {value!r}")
    for name, path in value.items():
        if name not in ENDPOINTS_BY_NAME:
            known = ", ".join(ENDPOINTS_BY_NAME)
            raise ValueError(f"endpoint_paths: unknown endpoint {name!r} (known: {known})")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"endpoint_paths: path for {name} must start with '/', got {path!r}")
    return dict(value)
