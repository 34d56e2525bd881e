"""The connection's field table on its own: how one field checks a value, how it is described, and
the Airflow 3.2+ form schema made from the table."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_neo.connection.fields import (
    CONNECTION_FIELDS,
    FIELDS_BY_NAME,
    FORM_FIELDS,
    UI_FIELD_BEHAVIOUR,
    ConnField,
    conn_fields,
    redact_url,
    ui_field_behaviour_kebab,
)

RETRIES = ConnField("retries", "Retries", "integer", "How often.", default=3, minimum=0, maximum=9)


@pytest.mark.parametrize(("value", "parsed"), [(None, 3), ("", 3), ("7", 7), (0, 0)])
def test_a_field_checks_its_value_and_reads_an_empty_one_as_its_default(
    value: Any, parsed: int
) -> None:
    assert RETRIES.parse(value) == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "retries: expected a number >= 0"), ("10", "retries: Neo allows at most 9")],
)
def test_a_value_out_of_bounds_fails_naming_the_field(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        RETRIES.parse(value)


def test_a_choice_is_read_whatever_its_case_and_a_flag_from_its_words() -> None:
    assert FIELDS_BY_NAME["scope"].parse("ORG") == "org"
    assert FIELDS_BY_NAME["verify_tls"].parse("false") is False
    assert FIELDS_BY_NAME["test_variant_id"].parse("  ") is None  # the parser strips it away


@pytest.mark.parametrize(
    ("field", "accepts"),
    [
        (RETRIES, "integer 0..9"),
        (FIELDS_BY_NAME["timeout"], "number >= 0.001"),
        (FIELDS_BY_NAME["auth_type"], "one of `basic`, `oauth`"),
        (FIELDS_BY_NAME["verify_tls"], "true or false"),
        (FIELDS_BY_NAME["timezone"], "text"),
    ],
)
def test_what_a_field_accepts_is_said_in_words_for_the_docs(field: ConnField, accepts: str) -> None:
    assert field.accepts() == accepts


def test_the_declarative_form_holds_the_form_fields_with_their_schema() -> None:
    form = conn_fields()
    assert list(form) == [f.name for f in FORM_FIELDS]
    assert len(FORM_FIELDS) < len(CONNECTION_FIELDS)  # advanced keys have no form field
    assert form["scope"]["schema"] == {
        "type": ["string", "null"], "default": "global", "enum": ["global", "org", "parent"],
    }  # fmt: skip
    assert form["oauth_client_secret"]["schema"]["format"] == "password"
    assert form["timezone"]["schema"]["examples"] == ["Asia/Kolkata"]
    assert form["timezone"]["description"].endswith("For example: Asia/Kolkata")
    assert form["max_concurrency"]["schema"]["minimum"] == 1


def test_provider_info_gets_the_same_ui_behaviour_in_kebab_case() -> None:
    kebab = ui_field_behaviour_kebab()
    assert kebab["hidden-fields"] == UI_FIELD_BEHAVIOUR["hidden_fields"]
    assert kebab["relabeling"] == UI_FIELD_BEHAVIOUR["relabeling"]
    assert kebab["placeholders"] == UI_FIELD_BEHAVIOUR["placeholders"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pa55@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://user:pa55@redis/1", "rediss://user:***@redis/1"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("memory://", "memory://"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
