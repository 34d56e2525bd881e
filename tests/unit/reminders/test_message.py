"""The message a customer receives: templates rendered with the reminder's fields in Jinja's
sandbox and read only from allowed folders or Variables, a signed one-click unsubscribe link that
the brand's page verifies, and the multipart email around them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_neo.operators.points_earned import PointsEarnedEmailOperator
from airflow_provider_neo.reminders.message import (
    ReminderMessage,
    ReminderTemplate,
    TemplateFailed,
    Unsubscribe,
    compose_email,
    in_template_folder,
)
from airflow_provider_neo.reminders.model import Reminder

REMINDER = Reminder(
    customer_id=400000007, email="ana@example.com", first_name="Ana <b>", lead_days=7,
    expiry_date=dt.date(2026, 11, 28), remaining_points=Decimal("1250.000"),
    programs={"2282": Decimal("1250.000")},
)  # fmt: skip
URL = "https://rewards.example.com/unsubscribe?customer={customer_id}&token={token}"


def test_the_provider_templates_render_every_reminder_field_and_a_signed_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "brand-secret")
    composer = ReminderMessage(unsubscribe_url=URL, unsubscribe_mailto="out@example.com").composer()
    outgoing = composer.compose(REMINDER)
    token = hmac.new(b"brand-secret", b"400000007", hashlib.sha256).hexdigest()[:32]
    assert outgoing.unsubscribe_url == URL.format(customer_id=400000007, token=token)
    assert outgoing.subject == "Ana <b>, 1,250 points expire on 2026-11-28"
    assert "Ana &lt;b&gt;" in outgoing.html  # the HTML escapes what the CRM wrote
    assert "1,250" in outgoing.text
    assert outgoing.unsubscribe_url in outgoing.text
    assert outgoing.headers["X-Neo-Reminder-Key"] == "400000007:2026-11-28:7"
    assert outgoing.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        "<mailto:out@example.com?subject=unsubscribe%20400000007>"
        in (outgoing.headers["List-Unsubscribe"])
    )
    email = compose_email(outgoing, from_email="rewards@example.com")
    assert email.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in email.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # clients show the last part they can


def test_a_missing_secret_or_template_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", raising=False)
    with pytest.raises(Exception, match="unsubscribe_secret_variable: set the Airflow Variable"):
        ReminderMessage(unsubscribe_url=URL).composer()
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "s")
    missing = str(tmp_path / "nope.html")
    with pytest.raises(ValueError, match=f"html_template: no file at {missing}"):
        ReminderMessage(
            unsubscribe_url=URL, html_template=missing, template_folders=[str(tmp_path)]
        ).composer()


def test_unsubscribe_needs_https_and_a_secret() -> None:
    with pytest.raises(ValueError, match=r"unsubscribe_url: .* https"):
        Unsubscribe("http://rewards.example.com/u?c={customer_id}&t={token}", "s")
    with pytest.raises(ValueError, match="unsubscribe secret"):
        Unsubscribe(URL, "")


# A template that, rendered by a plain Jinja environment, runs a shell command on the worker.
def _payload(marker: Path) -> str:
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


@pytest.mark.parametrize("argument", ["subject", "html_template", "text_template"])
def test_a_template_reaching_python_internals_is_refused_naming_it_and_never_runs(
    argument: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "brand-secret")
    marker = tmp_path / "ran"
    folder = tmp_path / "templates"
    folder.mkdir()
    hostile = folder / "hostile.txt"
    hostile.write_text(_payload(marker))
    # The subject is the template itself; the bodies are files in an allowed folder.
    given = {argument: _payload(marker) if argument == "subject" else str(hostile)}
    message = ReminderMessage(unsubscribe_url=URL, template_folders=[str(folder)], **given)
    with pytest.raises(
        AirflowFailException, match=rf"^{argument}: refused by the template sandbox"
    ):
        message.composer()
    assert not marker.exists()


def test_a_template_cannot_change_the_values_it_is_given() -> None:
    template = ReminderTemplate("<p>{{ first_name }}</p>", "{{ programs.clear() }}", "text")
    with pytest.raises(TemplateFailed, match=r"^subject: refused by the template sandbox"):
        template.render(REMINDER)
    assert REMINDER.programs == {"2282": Decimal("1250.000")}


def test_a_template_naming_what_only_real_reminders_have_still_composes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The trial render before any claim refuses only what the sandbox refuses."""
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "brand-secret")
    monkeypatch.setenv("AIRFLOW_VAR_BRAND_TEXT", "{{ programs['2282'] }} in program 2282")
    message = ReminderMessage(unsubscribe_url=URL, text_template="variable:brand_text")
    assert message.composer().compose(REMINDER).text == "1250.000 in program 2282"


def test_a_template_that_does_not_parse_or_names_an_unknown_field_is_named() -> None:
    with pytest.raises(TemplateFailed, match=r"^text_template: not a valid template"):
        ReminderTemplate("<p></p>", "s", "{% if %}")
    with pytest.raises(TemplateFailed, match=r"^html_template: UndefinedError: 'balance'"):
        ReminderTemplate("{{ balance }}", "s", "t").render(REMINDER)


def test_templates_are_read_only_from_the_allowed_folders_or_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "brand-secret")
    brand = tmp_path / "brand-templates"
    brand.mkdir()
    (brand / "reminder.txt").write_text("{{ first_name }}: {{ points }} points, {{ expiry_date }}")
    (brand / "passwd").symlink_to("/etc/passwd")  # inside the folder, pointing out of it
    outside = tmp_path / "secret.txt"
    outside.write_text("not a template")

    def text(location: str) -> str:
        message = ReminderMessage(
            unsubscribe_url=URL, text_template=location, template_folders=[str(brand)]
        )
        return message.composer().compose(REMINDER).text

    assert text(str(brand / "reminder.txt")) == "Ana <b>: 1,250 points, 2026-11-28"
    assert text(f"file://{brand}/reminder.txt") == "Ana <b>: 1,250 points, 2026-11-28"
    monkeypatch.setenv("AIRFLOW_VAR_BRAND_TEXT", "{{ first_name }} from a Variable")
    assert text("variable:brand_text") == "Ana <b> from a Variable"
    for refused in (
        "/etc/passwd", str(outside), f"{brand}/../secret.txt", str(brand / "passwd"),
        f"file://{outside}", str(brand),
    ):  # fmt: skip
        with pytest.raises(
            AirflowFailException, match=r"^text_template: .* is not in an allowed template folder"
        ):
            text(refused)
    with pytest.raises(AirflowFailException, match=r"^text_template: the Airflow Variable 'nope'"):
        text("variable:nope")


@pytest.mark.parametrize(
    ("location", "inside"),
    [
        ("s3://brand/templates/reminder.html", True),
        ("s3://brand/templates/email/reminder.html", True),
        ("s3://brand/templates", False),
        ("s3://brand/templates-old/reminder.html", False),
        ("s3://brand/templates/../crm/customers.csv", False),
        ("s3://brand/templates/%2e%2e/crm/customers.csv", False),
        ("s3://brand/templates/reminder.html?versionId=1", False),
        ("s3://other/templates/reminder.html", False),
        ("gs://brand/templates/reminder.html", False),
        ("s3://aws_brand@brand/templates/reminder.html", False),  # another connection
    ],
)
def test_an_object_storage_template_must_be_under_an_allowed_prefix(
    location: str, inside: bool
) -> None:
    assert in_template_folder(location, ["s3://brand/templates/"]) is inside


def test_the_points_earned_email_renders_in_the_sandbox_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("AIRFLOW_VAR_EARNED_HTML", _payload(marker))
    operator = PointsEarnedEmailOperator(
        task_id="notify", rows=[{"points_exclusive": "5"}], customer_id=7, entity_id="B-1",
        customer_email="ana@example.com", from_email="rewards@example.com",
        html_template="variable:earned_html", ledger_path=str(tmp_path / "ledger.sqlite3"),
    )  # fmt: skip
    with pytest.raises(
        AirflowFailException, match=r"^html_template: refused by the template sandbox"
    ):
        operator.execute({})
    assert not marker.exists()
    assert not (tmp_path / "ledger.sqlite3").exists()  # failed before anything was claimed
    operator.html_template = "/etc/passwd"
    with pytest.raises(AirflowFailException, match=r"^html_template: '/etc/passwd' is not in an"):
        operator.execute({})


def test_the_unsubscribe_page_verifies_a_token_in_constant_time() -> None:
    unsubscribe = Unsubscribe(URL, "brand-secret")
    token = unsubscribe.token(400000007)
    assert unsubscribe.verify(400000007, token)
    assert unsubscribe.verify("400000007", token)  # as the page reads it from the query
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    for customer, given in (
        (400000007, wrong), (400000008, token), (400000007, token.upper()), (400000007, ""),
        (400000007, None), ("400000007 ", token), ("+400000007", token), ("4_00000007", token),
        ("٤٠٠٠٠٠٠٠٧", token), ("", token), (400000007, token + "\ud800"),
    ):  # fmt: skip
        assert not unsubscribe.verify(customer, given), (customer, given)
    assert not Unsubscribe(URL, "another-brand").verify(400000007, token)
