"""The `neo` connection: UI form metadata, URI and JSON forms, checks, and test_connection."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from airflow_provider_neo.connection import (
    CONNECTION_FIELDS,
    FORM_FIELDS,
    NeoConnectionSettings,
)
from airflow_provider_neo.get_provider_info import get_provider_info
from airflow_provider_neo.hooks.neo import NeoHook
from neo_simulator.auth import DEFAULT_PASSWORD
from scripts.connection_docs import committed, render
from tests.harness import TIMEZONE, RunningSimulator


def test_connection_type_is_declared_as_data_for_airflow_3_2() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "neo"
    assert conn_type["hook-name"] == "Capillary Neo"
    assert conn_type["hook-class-name"] == "airflow_provider_neo.hooks.neo.NeoHook"
    fields = conn_type["conn-fields"]
    assert set(fields) == {f.name for f in FORM_FIELDS}
    assert fields["oauth_client_secret"]["schema"]["format"] == "password"
    assert fields["scope"]["schema"]["default"] == "global"
    assert fields["auth_type"]["schema"]["enum"] == ["basic", "oauth"]
    assert fields["verify_tls"]["schema"] == {"type": ["boolean", "null"], "default": True}
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["relabeling"]["login"] == "Username (Basic auth)"
    assert behaviour["relabeling"]["password"] == "Password (Basic auth)"


def test_airflow_3_1_form_widgets_come_from_the_same_fields() -> None:
    from wtforms import BooleanField, IntegerField, PasswordField, StringField

    widgets = NeoHook.get_connection_form_widgets()
    assert set(widgets) == {f.name for f in FORM_FIELDS}
    kinds = {name: widget.field_class for name, widget in widgets.items()}
    assert kinds["oauth_client_secret"] is PasswordField
    assert kinds["verify_tls"] is BooleanField
    assert kinds["max_concurrency"] is IntegerField
    assert kinds["timezone"] is StringField
    assert NeoHook.get_ui_field_behaviour()["relabeling"]["host"] == "Cluster host"


def test_uri_and_json_forms_give_the_same_settings(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    parts = urlsplit(simulator.url)
    extra = {"timezone": TIMEZONE, "scope": "global", "max_concurrency": "4"}
    uri = (
        f"neo://neo_user:{quote(DEFAULT_PASSWORD)}@{parts.hostname}:{parts.port}/http?"
        + "&".join(f"{k}={quote(v, safe='')}" for k, v in extra.items())
    )
    neo_conn(simulator, "neo_uri", raw=uri)
    as_json = {
        "conn_type": "neo", "host": parts.hostname, "port": parts.port, "schema": "http",
        "login": "neo_user", "password": DEFAULT_PASSWORD, "extra": extra,
    }  # fmt: skip
    neo_conn(simulator, "neo_json", raw=json.dumps(as_json))
    from_uri = NeoHook("neo_uri").settings
    from_json = NeoHook("neo_json").settings
    assert from_uri == from_json
    assert from_uri.base_url == simulator.url
    assert from_uri.max_concurrency == 4
    assert from_uri.timezone == TIMEZONE
    assert NeoHook("neo_uri").test_connection()[0]


def test_host_may_carry_its_scheme_and_https_is_the_default() -> None:
    def base_url(host: str, schema: str | None = None, port: int | None = None) -> str:
        conn = _Conn(host=host, schema=schema, port=port, login="u", password="p")
        return NeoConnectionSettings.from_connection(conn).base_url

    assert base_url("eu.api.capillarytech.com") == "https://eu.api.capillarytech.com"
    assert base_url("http://127.0.0.1", port=8790) == "http://127.0.0.1:8790"
    assert base_url("127.0.0.1", schema="http", port=8790) == "http://127.0.0.1:8790"


class _Conn:
    def __init__(self, extra: dict[str, Any] | None = None, **fields: Any) -> None:
        self.host = fields.get("host", "eu.api.capillarytech.com")
        self.schema = fields.get("schema")
        self.port = fields.get("port")
        self.login = fields.get("login", "till01")
        self.password = fields.get("password", "secret-password")
        self.extra_dejson = extra or {}


@pytest.mark.parametrize(
    ("fields", "extra", "message"),
    [
        ({"host": ""}, {}, "host: the Neo cluster host is required"),
        ({"schema": "ftp"}, {}, "schema: expected http or https"),
        ({"password": None}, {}, "login/password: Basic auth needs a username and a password"),
        ({}, {"auth_type": "kerberos"}, "auth_type: expected one of basic, oauth"),
        ({}, {"auth_type": "oauth"}, "oauth_client_key/oauth_client_secret: OAuth needs"),
        ({}, {"scope": "planet"}, "scope: expected one of global, org, parent"),
        ({}, {"timezone": "Mars/Olympus"}, "timezone: unknown IANA time zone"),
        ({}, {"max_concurrency": 0}, "max_concurrency: expected a number >= 1"),
        ({}, {"timeout": "soon"}, "timeout: expected a number"),
        ({}, {"verify_tls": "maybe"}, "verify_tls: expected true or false"),
        ({}, {"endpoint_paths": '{"nope": "/x"}'}, "endpoint_paths: unknown endpoint 'nope'"),
        ({}, {"endpoint_paths": "{not json"}, "endpoint_paths: expected a JSON object"),
        ({}, {"page_size": 500}, "page_size: Neo allows at most 100"),
    ],
)
def test_invalid_connections_fail_naming_the_field(
    fields: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        NeoConnectionSettings.from_connection(_Conn(extra, **fields))


def test_every_field_is_a_setting_and_the_readme_table_is_current() -> None:
    names = {f.name for f in CONNECTION_FIELDS}
    attributes = {f.name for f in dataclasses.fields(NeoConnectionSettings)}
    assert attributes == names | {"base_url", "username", "password"}
    assert committed() == render(), "run: .venv/bin/python scripts/connection_docs.py"


def test_advanced_keys_have_defaults_and_bounds_but_no_form_field() -> None:
    advanced = {f.name for f in CONNECTION_FIELDS if not f.form}
    assert advanced >= {"page_size", "max_pages", "max_url_length", "max_ids_per_request"}
    assert not advanced & set(get_provider_info()["connection-types"][0]["conn-fields"])
    assert not advanced & set(NeoHook.get_connection_form_widgets())
    settings = NeoConnectionSettings.from_connection(_Conn({}))
    assert (settings.page_size, settings.max_pages) == (100, 100_000)
    assert (settings.max_url_length, settings.max_ids_per_request) == (8_000, 1_000)
    assert (settings.backoff_base_seconds, settings.backoff_max_seconds) == (0.5, 30.0)
    assert (settings.timeout, settings.rate_limit_max_wait_seconds) == (30.0, 120.0)
    assert isinstance(settings.timeout, float)
    tuned = NeoConnectionSettings.from_connection(_Conn({"max_pages": "7"}), {"page_size": 20})
    assert (tuned.max_pages, tuned.page_size) == (7, 20)
    with pytest.raises(ValueError, match=r"^max_url_length: expected a number >= 256"):
        NeoConnectionSettings.from_connection(_Conn({"max_url_length": 100}))


def test_extra_fields_saved_by_older_forms_are_read() -> None:
    conn = _Conn({"extra__neo__timezone": "Asia/Kolkata", "extra__neo__scope": "org"})
    settings = NeoConnectionSettings.from_connection(conn)
    assert (settings.timezone, settings.scope) == ("Asia/Kolkata", "org")


def test_settings_repr_holds_no_secret() -> None:
    conn = _Conn({"auth_type": "basic", "oauth_client_secret": "oauth-secret-value"})
    settings = NeoConnectionSettings.from_connection(conn)
    assert "secret-password" not in repr(settings)
    assert "oauth-secret-value" not in repr(settings)
    assert settings.password_md5 not in repr(settings)


def test_md5_switch_sends_the_stored_hash_as_is(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    import hashlib

    parts = urlsplit(simulator.url)
    hashed = hashlib.md5(DEFAULT_PASSWORD.encode()).hexdigest()
    conn = {
        "conn_type": "neo", "host": parts.hostname, "port": parts.port, "schema": "http",
        "login": "neo_user", "password": hashed, "extra": {"password_is_md5": True},
    }  # fmt: skip
    neo_conn(simulator, raw=json.dumps(conn))
    assert NeoHook().test_connection()[0]
    conn["extra"] = {"password_is_md5": False}
    neo_conn(simulator, raw=json.dumps(conn))
    assert not NeoHook().test_connection()[0]


def test_extra_fields_offer_their_examples_and_placeholders_are_for_standard_fields() -> None:
    # Airflow 3.3's form reads placeholders for its own fields only; an extra field's hint has to
    # be a JSON-schema example (offered as the user types) and a sentence in its description.
    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    examples = {f.name: f.example for f in FORM_FIELDS if f.example}
    assert examples["timezone"] == "Asia/Kolkata"
    for name, example in examples.items():
        assert fields[name]["schema"]["examples"] == [example]
        assert fields[name]["description"].endswith(f"For example: {example}")
    placeholders = conn_type["ui-field-behaviour"]["placeholders"]
    assert set(placeholders) <= {"description", "schema", "host", "port", "login", "password"}


def test_airflow_masks_the_secret_fields_and_no_other() -> None:
    # Airflow's own masker, as its API and UI apply it to a connection's extra fields: a field it
    # masks but we do not declare secret is shown and saved as "***".
    from airflow._shared.secrets_masker import should_hide_value_for_key

    masked = {f.name for f in CONNECTION_FIELDS if should_hide_value_for_key(f.name)}
    assert masked == {f.name for f in CONNECTION_FIELDS if f.secret}


def test_md5_hashed_credential_sends_the_stored_hash_as_is(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    import hashlib

    parts = urlsplit(simulator.url)
    hashed = hashlib.md5(DEFAULT_PASSWORD.encode()).hexdigest()
    conn: dict[str, Any] = {
        "conn_type": "neo", "host": parts.hostname, "port": parts.port, "schema": "http",
        "login": "neo_user", "password": hashed, "extra": {"md5_hashed_credential": "true"},
    }  # fmt: skip
    neo_conn(simulator, raw=json.dumps(conn))
    assert NeoHook().test_connection()[0]
    conn["extra"] = {"md5_hashed_credential": False}
    neo_conn(simulator, raw=json.dumps(conn))
    assert not NeoHook().test_connection()[0]


def test_the_old_md5_key_is_still_read_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    conn = _Conn(extra={"password_is_md5": "yes"})
    with caplog.at_level("WARNING"):
        settings = NeoConnectionSettings.from_connection(conn)
    assert settings.md5_hashed_credential is True
    assert "'password_is_md5' is deprecated" in caplog.text
    assert "'md5_hashed_credential'" in caplog.text
    # The new key wins over the old one, and a bad old value is named by its own key.
    both = _Conn(extra={"password_is_md5": True, "md5_hashed_credential": False})
    assert NeoConnectionSettings.from_connection(both).md5_hashed_credential is False
    # A hook override under the old name still overrides the connection's new key.
    overridden = NeoConnectionSettings.from_connection(
        _Conn(extra={"md5_hashed_credential": False}), {"password_is_md5": True}
    )
    assert overridden.md5_hashed_credential is True
    with pytest.raises(
        ValueError,
        match=r"^password_is_md5: expected true or false, got '\*\*\*' \(set 'md5_hashed_cred",
    ):
        NeoConnectionSettings.from_connection(_Conn(extra={"password_is_md5": "***"}))


@pytest.mark.parametrize("auth", ["basic", "oauth"])
def test_test_connection_succeeds_with_each_auth_type(
    simulator: RunningSimulator, neo_conn: Callable[..., str], auth: str
) -> None:
    neo_conn(simulator, auth=auth)
    ok, message = NeoHook().test_connection()
    assert ok, message
    assert message == f"Connected to Neo at {simulator.url} ({auth} auth, scope global)"


def test_test_connection_reports_an_unreachable_host(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = json.loads(_json_for(simulator))
    conn["port"] = port
    neo_conn(simulator, raw=json.dumps(conn))
    ok, message = NeoHook().test_connection()
    assert not ok
    assert message.startswith(f"Cannot reach Neo at http://127.0.0.1:{port}: No complete answer")


def _json_for(sim: RunningSimulator, **extra: Any) -> str:
    from tests.harness import connection_json

    return connection_json(sim, **extra)


def test_test_connection_reports_bad_credentials(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    conn = json.loads(_json_for(simulator))
    conn["password"] = "wrong-password"
    neo_conn(simulator, raw=json.dumps(conn))
    ok, message = NeoHook().test_connection()
    assert not ok
    assert message.startswith(f"Neo at {simulator.url} refused the credentials: check the username")
    assert "wrong-password" not in message


def test_test_connection_reports_a_refused_scope(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--scopes", "org")
    neo_conn(sim)
    ok, message = NeoHook().test_connection()
    assert not ok
    assert message.startswith(f"Neo at {sim.url} refused the scope 'global'")
    neo_conn(sim, scope="org")
    assert NeoHook().test_connection()[0]


def test_test_connection_reports_an_invalid_connection(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, timezone="Nowhere/Land")
    ok, message = NeoHook().test_connection()
    assert not ok
    assert message == "The connection is not valid: timezone: unknown IANA time zone 'Nowhere/Land'"


def test_test_connection_sends_one_harmless_get(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    simulator.control("POST", "reset")
    assert NeoHook().test_connection()[0]
    assert simulator.control("GET", "stats")["requests"] == {"event_allocations": {"200": 1}}
