"""The message a customer receives: templates rendered with the reminder's fields, a signed
one-click unsubscribe link, and the multipart email around them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal
from pathlib import Path

import pytest

from airflow_provider_neo.reminders.message import ReminderMessage, Unsubscribe, compose_email
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
        ReminderMessage(unsubscribe_url=URL, html_template=missing).composer()


def test_unsubscribe_needs_https_and_a_secret() -> None:
    with pytest.raises(ValueError, match=r"unsubscribe_url: .* https"):
        Unsubscribe("http://rewards.example.com/u?c={customer_id}&t={token}", "s")
    with pytest.raises(ValueError, match="unsubscribe secret"):
        Unsubscribe(URL, "")
