"""`NeoConnectionSettings`: a `neo` Connection (UI, URI or JSON) read through `CONNECTION_FIELDS`
into checked settings, or a ValueError naming the field that is wrong."""

from __future__ import annotations

import base64
import dataclasses
import difflib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlencode, urlsplit

from airflow_provider_neo.connection.fields import CONN_TYPE, CONNECTION_FIELDS, FIELDS_BY_NAME
from airflow_provider_neo.endpoints import (
    REQUEST_ID_HEADER,
    SCOPE_HEADER,
    TEST_VARIANT_HEADER,
    TOKEN_PATH,
    Endpoint,
)

log = logging.getLogger(__name__)

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
