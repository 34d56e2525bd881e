"""The settings a connection is read into, on their own: which extra keys are read, warnings for
keys no field reads, and what the settings give the client (headers, secrets, the budget key)."""

from __future__ import annotations

from airflow_provider_neo.connection.settings import (
    NeoConnectionSettings,
    connection_extra,
    unknown_key_warnings,
)
from airflow_provider_neo.endpoints import REQUEST_ID_HEADER, SCOPE_HEADER, TEST_VARIANT_HEADER
from tests import scripted


class _Conn:
    host: str | None = "neo.example"
    schema: str | None = None
    port: int | None = None
    login: str | None = "till01"
    password: str | None = "s3cret-pass"

    def __init__(self, extra: dict[str, object]) -> None:
        self.extra_dejson = extra


def test_the_extra_keeps_set_keys_under_their_own_names_and_overrides_win() -> None:
    conn = _Conn({"extra__neo__scope": "org", "timeout": "", "timezone": None, "page_size": 10})
    assert connection_extra(conn, {"page_size": 20}) == {"scope": "org", "page_size": 20}


def test_unknown_keys_warn_naming_the_nearest_known_key_and_old_names_do_not() -> None:
    warnings = unknown_key_warnings(
        {"max_concurency": 4, "colour": "blue", "password_is_md5": True, "scope": "org"}
    )
    assert warnings == (
        "unknown connection key 'colour' is ignored",
        "unknown connection key 'max_concurency' is ignored; did you mean 'max_concurrency'?",
    )


def test_every_request_carries_the_scope_its_id_and_the_test_variant_when_set() -> None:
    live = scripted.settings(scope="org")
    assert live.neo_headers("r1") == {
        SCOPE_HEADER: "org", REQUEST_ID_HEADER: "r1", "Accept": "application/json",
    }  # fmt: skip
    variant = scripted.settings(test_variant_id="7a67e565")
    assert variant.neo_headers("r2")[TEST_VARIANT_HEADER] == "7a67e565"


def test_the_secrets_to_mask_include_every_form_of_the_password() -> None:
    settings = scripted.settings(rate_limit_storage="redis://:budget-pw@redis:6379/0")
    secrets = settings.secrets()
    assert "s3cret-pass" in secrets
    assert settings.password_md5 in secrets
    assert settings.basic_authorization() in secrets
    assert settings.basic_authorization().removeprefix("Basic ") in secrets
    assert "budget-pw" in secrets


def test_the_rate_budget_key_names_the_host_and_who_signs_in_but_no_secret() -> None:
    settings = NeoConnectionSettings.from_connection(_Conn({}))
    key = settings.rate_budget_key()
    assert key.startswith("neo:rate-budget:neo.example:")
    assert "till01" not in key
    assert "s3cret-pass" not in key
    other_password = _Conn({})
    other_password.password = "another-pass"
    assert NeoConnectionSettings.from_connection(other_password).rate_budget_key() == key
    other_login = _Conn({})
    other_login.login = "till02"
    assert NeoConnectionSettings.from_connection(other_login).rate_budget_key() != key
