"""Neo's two ways in: Basic with ``username:md5(password)``, and OAuth tokens that expire."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from airflow_provider_neo.endpoints import OAUTH_TOKEN_HEADER

DEFAULT_USERNAME: Final = "neo_user"
DEFAULT_PASSWORD: Final = "neo_password"
DEFAULT_OAUTH_KEY: Final = "neo_client_key"
DEFAULT_OAUTH_SECRET: Final = "neo_client_secret"
DEFAULT_TOKEN_TTL_SECONDS: Final = 300

TOKEN_HEADER: Final = OAUTH_TOKEN_HEADER.lower()


@dataclass(frozen=True)
class Credentials:
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD
    oauth_key: str = DEFAULT_OAUTH_KEY
    oauth_secret: str = DEFAULT_OAUTH_SECRET
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Authenticator:
    def __init__(self, credentials: Credentials, clock: Callable[[], float] = time.time) -> None:
        self.credentials = credentials
        self.clock = clock
        self._basic = (
            credentials.username,
            hashlib.md5(credentials.password.encode()).hexdigest(),
        )
        self._token_expiry: dict[str, float] = {}

    def issue_token(self, key: object, secret: object) -> tuple[str, int] | None:
        """A fresh JWT-shaped token and its ttl, or None for a wrong key or secret."""
        creds = self.credentials
        if not (
            isinstance(key, str)
            and isinstance(secret, str)
            and secrets.compare_digest(key, creds.oauth_key)
            and secrets.compare_digest(secret, creds.oauth_secret)
        ):
            return None
        now = self.clock()
        expires = now + creds.token_ttl_seconds
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = _b64url(json.dumps({"sub": key, "iat": int(now), "exp": int(expires)}).encode())
        token = f"{header}.{claims}.{_b64url(secrets.token_bytes(32))}"
        # Drop expired tokens so a long run does not accumulate them.
        self._token_expiry = {t: e for t, e in self._token_expiry.items() if e > now}
        self._token_expiry[token] = expires
        return token, creds.token_ttl_seconds

    def revoke_all(self) -> int:
        revoked = len(self._token_expiry)
        self._token_expiry.clear()
        return revoked

    def failure(self, headers: Mapping[str, str]) -> str | None:
        """Why the request is not authenticated, or None when it is."""
        token = headers.get(TOKEN_HEADER)
        if token is not None:
            expires = self._token_expiry.get(token)
            if expires is None:
                return "Invalid OAuth token"
            if expires <= self.clock():
                return "OAuth token expired"
            return None
        authorization = headers.get("authorization")
        if authorization is None:
            return f"Authentication required: Basic or {OAUTH_TOKEN_HEADER}"
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return "Unsupported authorization scheme"
        try:
            username, _, password_hash = (
                base64.b64decode(encoded, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return "Malformed Basic credentials"
        expected_user, expected_hash = self._basic
        if secrets.compare_digest(username, expected_user) and secrets.compare_digest(
            password_hash.lower(), expected_hash
        ):
            return None
        return "Invalid username or password"
