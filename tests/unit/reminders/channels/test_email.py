"""The SMTP email channel against a real local SMTP server, through an Airflow SMTP connection:
one multipart message per reminder with its headers; a refusal for good (5xx, an address that
cannot be sent to) fails its reminder alone, after the rest of the batch; a transient one (4xx)
fails the batch."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from airflow_provider_neo.reminders.channels import SmtpEmailChannel
from airflow_provider_neo.reminders.channels.base import OutgoingReminder, RejectedReminders
from airflow_provider_neo.reminders.model import Reminder
from demo.mailbox import Mailbox


def outgoing(customer: int, address: str = "") -> OutgoingReminder:
    reminder = Reminder(
        customer_id=customer, email=address or f"c{customer}@example.com", first_name="Ana",
        lead_days=7,
        expiry_date=dt.date(2026, 11, 28), remaining_points=Decimal(5), programs={},
    )  # fmt: skip
    return OutgoingReminder(
        reminder=reminder, subject=f"Subject {customer}", html=f"<p>{customer}</p>",
        text=f"text {customer}", unsubscribe_url="https://u.example/x",
        headers={"X-Neo-Reminder-Key": reminder.key, "List-Unsubscribe": "<https://u.example/x>"},
    )  # fmt: skip


@pytest.fixture
def mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    # A server without SMTPUTF8, as many are: an internationalised address is one it cannot take.
    with Mailbox(tmp_path / "mail", smtputf8=False) as box:
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
    plain, html = first.get_body(preferencelist=("plain",)), first.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "text 1"
    assert html.get_content().strip() == "<p>1</p>"


def test_a_refused_message_raises_and_what_went_before_stays_delivered(mailbox: Mailbox) -> None:
    mailbox.refuse_after(1)
    with (
        pytest.raises(smtplib.SMTPDataError, match="451"),
        SmtpEmailChannel(smtp_conn_id="smtp_test", from_email="r@example.com") as channel,
    ):
        channel.send([outgoing(1), outgoing(2)])
    assert [m["To"] for m in mailbox.messages()] == ["c1@example.com"]


def _send(batch: list[OutgoingReminder]) -> None:
    with SmtpEmailChannel(smtp_conn_id="smtp_test", from_email="r@example.com") as channel:
        channel.send(batch)


def test_a_recipient_refused_with_550_fails_alone_after_the_rest_of_the_batch(
    mailbox: Mailbox,
) -> None:
    mailbox.refuse_recipients(["c2@example.com"])
    with pytest.raises(RejectedReminders) as refused:
        _send([outgoing(1), outgoing(2), outgoing(3)])
    assert list(refused.value.reasons) == ["2:2026-11-28:7"]
    assert refused.value.reasons["2:2026-11-28:7"].startswith("550 5.1.1 Recipient address")
    assert [m["To"] for m in mailbox.messages()] == ["c1@example.com", "c3@example.com"]


def test_a_message_refused_with_a_5xx_after_data_fails_alone(mailbox: Mailbox) -> None:
    mailbox.refuse_recipients(["c1@example.com"], "554 5.7.1 Message rejected", after_data=True)
    with pytest.raises(RejectedReminders) as refused:
        _send([outgoing(1), outgoing(2)])
    assert refused.value.reasons == {"1:2026-11-28:7": "554 5.7.1 Message rejected"}
    assert [m["To"] for m in mailbox.messages()] == ["c2@example.com"]


def test_addresses_the_email_or_the_server_cannot_take_fail_alone(mailbox: Mailbox) -> None:
    # A header injection the email package refuses, and an internationalised address that a
    # server without SMTPUTF8 cannot take.
    batch = [outgoing(1, "c1@example.com\r\nBcc: x@example.com"), outgoing(2, "jörg@example.com"),
             outgoing(3)]  # fmt: skip
    with pytest.raises(RejectedReminders) as refused:
        _send(batch)
    reasons = refused.value.reasons
    assert sorted(reasons) == ["1:2026-11-28:7", "2:2026-11-28:7"]
    assert reasons["1:2026-11-28:7"].startswith("the email cannot be composed")
    assert "SMTPUTF8" in reasons["2:2026-11-28:7"]
    assert [m["To"] for m in mailbox.messages()] == ["c3@example.com"]


def test_a_4xx_to_a_recipient_is_transient_and_fails_the_batch(mailbox: Mailbox) -> None:
    mailbox.refuse_recipients(["c2@example.com"], "450 4.2.1 Mailbox busy, try again later")
    with pytest.raises(smtplib.SMTPRecipientsRefused, match="450"):
        _send([outgoing(1), outgoing(2), outgoing(3)])
    assert [m["To"] for m in mailbox.messages()] == ["c1@example.com"]
