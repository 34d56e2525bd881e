"""The SMTP email channel against a real local SMTP server, through an Airflow SMTP connection:
one multipart message per reminder with its headers, and a refusal raised, not swallowed."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from airflow_provider_neo.reminders.channels import SmtpEmailChannel
from airflow_provider_neo.reminders.channels.base import OutgoingReminder
from airflow_provider_neo.reminders.model import Reminder
from demo.mailbox import Mailbox


def outgoing(customer: int) -> OutgoingReminder:
    reminder = Reminder(
        customer_id=customer, email=f"c{customer}@example.com", first_name="Ana", lead_days=7,
        expiry_date=dt.date(2026, 11, 28), remaining_points=Decimal(5), programs={},
    )  # fmt: skip
    return OutgoingReminder(
        reminder=reminder, subject=f"Subject {customer}", html=f"<p>{customer}</p>",
        text=f"text {customer}", unsubscribe_url="https://u.example/x",
        headers={"X-Neo-Reminder-Key": reminder.key, "List-Unsubscribe": "<https://u.example/x>"},
    )  # fmt: skip


@pytest.fixture
def mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    with Mailbox(tmp_path / "mail") as box:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_TEST",
            json.dumps({"conn_type": "smtp", "host": box.host, "port": box.port,
                        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10}}),
        )  # fmt: skip
        yield box


def test_each_reminder_is_one_multipart_email_with_its_headers(mailbox: Mailbox) -> None:
    with SmtpEmailChannel(smtp_conn_id="smtp_test", from_email="rewards@example.com") as channel:
        channel.send([outgoing(1), outgoing(2)])
    messages = mailbox.messages()
    assert [m["To"] for m in messages] == ["c1@example.com", "c2@example.com"]
    first = messages[0]
    assert first["From"] == "rewards@example.com"
    assert first["Subject"] == "Subject 1"
    assert first["X-Neo-Reminder-Key"] == "1:2026-11-28:7"
    assert first["List-Unsubscribe"] == "<https://u.example/x>"
    text, html = (first.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "text 1"
    assert html.get_content().strip() == "<p>1</p>"


def test_a_refused_message_raises_and_what_went_before_stays_delivered(mailbox: Mailbox) -> None:
    mailbox.refuse_after(1)
    with (
        pytest.raises(smtplib.SMTPDataError, match="451"),
        SmtpEmailChannel(smtp_conn_id="smtp_test", from_email="r@example.com") as channel,
    ):
        channel.send([outgoing(1), outgoing(2)])
    assert [m["To"] for m in mailbox.messages()] == ["c1@example.com"]
