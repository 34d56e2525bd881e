"""The webhook channel against a real local receiver: the JSON batch and its idempotency key,
an Airflow HTTP connection read as the HTTP provider reads it (Basic auth, extra headers), and
a refusal raised with its status."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from airflow_provider_neo.reminders.channels import WebhookChannel
from airflow_provider_neo.reminders.channels.base import OutgoingReminder
from airflow_provider_neo.reminders.model import Reminder


def outgoing(customer: int) -> OutgoingReminder:
    reminder = Reminder(
        customer_id=customer, email=f"c{customer}@example.com", first_name="Ana", lead_days=1,
        expiry_date=dt.date(2026, 11, 22), remaining_points=Decimal("12.500"),
        programs={"2282": Decimal("12.500")}, mobile="+911234",
    )  # fmt: skip
    return OutgoingReminder(
        reminder=reminder, subject="s", html="<p>h</p>", text="t",
        unsubscribe_url=f"https://u.example/{customer}", headers={},
    )  # fmt: skip


class _Receiver(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, dict[str, str], Any]]] = []
    status: ClassVar[int] = 202

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, dict(self.headers), body))
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"nope" if self.status >= 300 else b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.requests, _Receiver.status = [], 202
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()


def test_a_batch_is_one_post_with_every_reminder_and_a_stable_idempotency_key(
    receiver: int,
) -> None:
    with WebhookChannel(url=f"http://127.0.0.1:{receiver}/hook", batch_size=2) as channel:
        channel.send([outgoing(1), outgoing(2)])
        channel.send([outgoing(1), outgoing(2)])  # a retry of the same reminders
    (path, headers, body), (_, again, _) = _Receiver.requests
    assert path == "/hook"
    assert headers["Idempotency-Key"] == again["Idempotency-Key"]
    assert [r["idempotency_key"] for r in body["reminders"]] == ["1:2026-11-22:1", "2:2026-11-22:1"]
    first = body["reminders"][0]
    assert (first["points"], first["programs"], first["mobile"]) == ("12.500", {"2282": "12.500"},
                                                                    "+911234")  # fmt: skip
    assert first["unsubscribe_url"] == "https://u.example/1"


def test_an_http_connection_gives_the_host_credentials_and_headers(
    receiver: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BRAND_HOOK",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": receiver, "schema": "http",
                    "login": "brand", "password": "pw", "extra": {"X-Api-Version": "3"}}),
    )  # fmt: skip
    with WebhookChannel(http_conn_id="brand_hook", endpoint="/v1/reminders") as channel:
        channel.send([outgoing(7)])
    path, headers, _ = _Receiver.requests[0]
    assert path == "/v1/reminders"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"brand:pw").decode()
    assert headers["X-Api-Version"] == "3"


def test_a_refused_batch_raises_with_the_status(receiver: int) -> None:
    _Receiver.status = 503
    with (
        pytest.raises(RuntimeError, match="webhook answered 503 to a batch of 1 reminders"),
        WebhookChannel(url=f"http://127.0.0.1:{receiver}/hook") as channel,
    ):
        channel.send([outgoing(1)])


def test_neither_a_url_nor_a_connection_is_refused_on_open() -> None:
    with pytest.raises(ValueError, match="webhook: set url or http_conn_id"):
        WebhookChannel().open()
