"""Where reminders go besides SMTP email: Capillary's own sendMessage (email, SMS or WhatsApp,
through `NeoHook`) and a webhook that hands JSON batches to any engagement tool.

A channel sends a batch that `deliver_batches` has claimed in the sent-ledger, and raises when the
far side did not accept it; so every channel keeps the ledger's exactly-once promise. `medium` is
what the customer is reached by (``email``, ``sms``, ``whatsapp``): it chooses the consent column
of the CRM extract (`reminders.Consent`) and the address a reminder needs (`reaches`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec
import requests

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders import Reminder, RenderedReminder

IDEMPOTENCY_HEADER = "Idempotency-Key"

Render = Callable[[Reminder], tuple[RenderedReminder, str]]  # the message and unsubscribe URL


class ReminderChannel(Protocol):
    name: str  # recorded in the ledger beside each reminder
    medium: str
    batch_size: int

    def send(self, batch: list[Reminder]) -> None: ...


def reaches(medium: str, reminder: Reminder) -> bool:
    """Whether the reminder has an address on `medium`."""
    return bool(reminder.mobile if medium in ("sms", "whatsapp") else reminder.email)


class NeoMessageChannel:
    """Capillary's ``POST /v2/communications/sendMessage``, one reminder per request, so that a
    request Capillary refused is exactly the reminder released for a retry. The email body is
    the HTML (its unsubscribe link inside: sendMessage takes no headers); SMS and WhatsApp get
    the plain text."""

    batch_size = 1

    def __init__(
        self, hook: NeoHook, *, medium: str, render: Render, from_email: str, sms_sender: str
    ) -> None:
        self.hook = hook
        self.medium = medium
        self.name = f"neo_message:{medium}"
        self.render = render
        self.from_email = from_email
        self.sms_sender = sms_sender

    def body(self, reminder: Reminder) -> dict[str, Any]:
        rendered, _ = self.render(reminder)
        if self.medium == "email":
            message = {
                "to": reminder.email, "from": self.from_email, "subject": rendered.subject,
                "body": rendered.html,
            }  # fmt: skip
        elif self.medium == "sms":
            message = {"to": reminder.mobile, "body": rendered.text, "sender": self.sms_sender}
        else:
            message = {"to": reminder.mobile, "body": rendered.text}
        return {self.medium: [message]}

    def send(self, batch: list[Reminder]) -> None:
        for reminder in batch:
            self.hook.send_message(self.medium, self.body(reminder))


class WebhookReminder(msgspec.Struct, kw_only=True):
    """One reminder as the webhook receives it; `idempotency_key` is its sent-ledger key, the
    same on every retry, so a receiver can drop what it has already taken."""

    idempotency_key: str
    customer_id: int
    email: str
    mobile: str
    first_name: str
    lead_days: int
    expiry_date: str
    points: str
    programs: dict[str, str]
    subject: str
    text: str
    unsubscribe_url: str


class WebhookChannel:
    """JSON batches ``{"reminders": [...]}`` POSTed to `url`; a batch is accepted on a 2xx answer.
    Each batch carries an ``Idempotency-Key`` header derived from its reminders' keys."""

    name = "webhook"
    medium = "email"  # the engagement tool is handed the email address; email consent applies

    def __init__(
        self,
        url: str,
        *,
        render: Render,
        batch_size: int = 100,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook: expected an http(s) URL, got {url!r}")
        self.url = url
        self.render = render
        self.batch_size = batch_size
        self.headers = dict(headers or {})
        self.auth = auth
        self.timeout = timeout
        self.session = requests.Session()

    @classmethod
    def from_connection(cls, conn_id: str, **kwargs: Any) -> WebhookChannel:
        """An HTTP-style Airflow connection: host (or a full URL as host), schema, port, login
        and password (Basic auth), extra ``endpoint`` (the path) and ``headers``."""
        from airflow.providers.common.compat.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        host = (conn.host or "").rstrip("/")
        if "://" not in host:
            scheme = conn.schema or "https"
            host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        extra = conn.extra_dejson
        auth = (conn.login, conn.password or "") if conn.login else None
        url = host + str(extra.get("endpoint", ""))
        return cls(url, headers=extra.get("headers") or {}, auth=auth, **kwargs)

    def payload(self, reminder: Reminder) -> WebhookReminder:
        rendered, unsubscribe_url = self.render(reminder)
        return WebhookReminder(
            idempotency_key=reminder.key, customer_id=reminder.customer_id, email=reminder.email,
            mobile=reminder.mobile, first_name=reminder.first_name, lead_days=reminder.lead_days,
            expiry_date=reminder.expiry_date.isoformat(), points=str(reminder.remaining_points),
            programs={k: str(v) for k, v in reminder.programs.items()}, subject=rendered.subject,
            text=rendered.text, unsubscribe_url=unsubscribe_url,
        )  # fmt: skip

    def send(self, batch: list[Reminder]) -> None:
        keys = "\n".join(reminder.key for reminder in batch)
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: hashlib.sha256(keys.encode()).hexdigest()[:40],
        }
        body = msgspec.json.encode({"reminders": [self.payload(r) for r in batch]})
        response = self.session.post(
            self.url, data=body, headers=headers, auth=self.auth, timeout=self.timeout
        )
        if not 200 <= response.status_code < 300:
            # The status and a short excerpt only: the URL's query or the headers may hold a key.
            raise RuntimeError(
                f"webhook answered {response.status_code} to a batch of {len(batch)}"
                f" reminders: {response.text[:200]!r}"
            )

    def close(self) -> None:
        self.session.close()
