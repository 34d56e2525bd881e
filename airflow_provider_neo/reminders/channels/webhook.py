"""A webhook that hands JSON batches of reminders to any engagement tool, at a URL or through
an Airflow HTTP connection as the HTTP provider reads it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec
import requests

from airflow_provider_neo.reminders.channels.base import OutgoingReminder, ReminderChannel

IDEMPOTENCY_HEADER = "Idempotency-Key"


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

    @classmethod
    def of(cls, outgoing: OutgoingReminder) -> WebhookReminder:
        r = outgoing.reminder
        return cls(
            idempotency_key=r.key, customer_id=r.customer_id, email=r.email, mobile=r.mobile,
            first_name=r.first_name, lead_days=r.lead_days, expiry_date=r.expiry_date.isoformat(),
            points=str(r.remaining_points), programs={k: str(v) for k, v in r.programs.items()},
            subject=outgoing.subject, text=outgoing.text, unsubscribe_url=outgoing.unsubscribe_url,
        )  # fmt: skip


class WebhookChannel(ReminderChannel):
    """JSON batches ``{"reminders": [...]}`` POSTed to the receiver; a batch is accepted on a 2xx
    answer. Each batch carries an ``Idempotency-Key`` header derived from its reminders' keys.

    The receiver is `http_conn_id`, an Airflow HTTP connection read by the HTTP provider's
    `HttpHook` (host or a full URL, schema, port, login and password for Basic auth, extra
    headers, ``verify``, proxies), plus `endpoint`; or `url`, a full URL, for a receiver that
    needs no credentials.
    """

    name = "webhook"
    medium = "email"  # the engagement tool is handed the email address; email consent applies
    template_fields: Sequence[str] = ("url", "http_conn_id", "endpoint", "batch_size")

    def __init__(
        self,
        *,
        url: str = "",
        http_conn_id: str = "",
        endpoint: str = "",
        batch_size: int = 100,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.timeout = timeout
        self.session: requests.Session | None = None
        self.target = ""

    def open(self) -> None:
        if self.url:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"webhook: expected an http(s) URL, got {self.url!r}")
            self.session, self.target = requests.Session(), self.url
        elif self.http_conn_id:
            from airflow.providers.http.hooks.http import HttpHook

            hook = HttpHook(method="POST", http_conn_id=self.http_conn_id)
            self.session = hook.get_conn()  # sets hook.base_url from the connection
            endpoint = self.endpoint.lstrip("/")
            self.target = f"{hook.base_url.rstrip('/')}/{endpoint}" if endpoint else hook.base_url
        else:
            raise ValueError("webhook: set url or http_conn_id")

    def send(self, batch: list[OutgoingReminder]) -> None:
        if self.session is None:
            raise RuntimeError("WebhookChannel.send before open()")
        keys = "\n".join(outgoing.key for outgoing in batch)
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: hashlib.sha256(keys.encode()).hexdigest()[:40],
        }
        body = msgspec.json.encode({"reminders": [WebhookReminder.of(o) for o in batch]})
        response = self.session.post(self.target, data=body, headers=headers, timeout=self.timeout)
        if not 200 <= response.status_code < 300:
            # The status and a short excerpt only: the URL's query or the headers may hold a key.
            raise RuntimeError(
                f"webhook answered {response.status_code} to a batch of {len(batch)}"
                f" reminders: {response.text[:200]!r}"
            )

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
