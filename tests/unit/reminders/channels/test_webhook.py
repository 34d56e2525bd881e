"""The webhook channel against real local receivers, some of them hostile: the JSON batch and its
idempotency key, an Airflow HTTP connection read as the HTTP provider reads it (Basic auth, extra
headers), redirects never followed, answers bounded in size and in time, the connection's secrets
kept out of errors and logs, and records a receiver says are bad refused for good."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, redact

from airflow_provider_neo.operators.reminders import DeliverRemindersOperator
from airflow_provider_neo.reminders.channels import RejectedReminders, WebhookChannel
from airflow_provider_neo.reminders.channels.base import OutgoingReminder
from airflow_provider_neo.reminders.channels.webhook import WebhookFailed, idempotency_key
from airflow_provider_neo.reminders.message import ReminderMessage
from airflow_provider_neo.reminders.model import Reminder
from tests.harness import LoopbackServer

PASSWORD = "pw-3c1f9e8a"
API_KEY = "key-5b7d2e90aa"
QUERY_TOKEN = "tok-8e6a4c21ff"


def outgoing(customer: int, text: str = "t") -> OutgoingReminder:
    reminder = Reminder(
        customer_id=customer, email=f"c{customer}@example.com", first_name="Ana", lead_days=1,
        expiry_date=dt.date(2026, 11, 22), remaining_points=Decimal("12.500"),
        programs={"2282": Decimal("12.500")}, mobile="+911234",
    )  # fmt: skip
    return OutgoingReminder(
        reminder=reminder, subject="s", html="<p>h</p>", text=text,
        unsubscribe_url=f"https://u.example/{customer}", headers={},
    )  # fmt: skip


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


@pytest.fixture
def hook_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Point the HTTP connection `brand_hook` at a receiver, with a password, an API-key header
    and a token in the URL's query; returns its id."""

    def point(receiver: LoopbackServer, path: str = "/hook", **extra: Any) -> str:
        monkeypatch.setenv(
            "AIRFLOW_CONN_BRAND_HOOK",
            json.dumps({"conn_type": "http", "host": f"{receiver.url}{path}?token={QUERY_TOKEN}",
                        "login": "brand", "password": PASSWORD,
                        "extra": {"X-Api-Key": API_KEY, **extra}}),
        )  # fmt: skip
        return "brand_hook"

    return point


def test_a_batch_is_one_post_with_every_reminder_and_a_stable_idempotency_key(
    hook_connection: Callable[..., str],
) -> None:
    with LoopbackServer(answer(202)) as receiver:
        conn_id = hook_connection(receiver)
        with WebhookChannel(http_conn_id=conn_id, endpoint="/v1/reminders") as channel:
            channel.send([outgoing(1), outgoing(2)])
            channel.send([outgoing(1, text="re-rendered"), outgoing(2)])  # a retry
    first, again = receiver.seen
    assert first.path == f"/hook/v1/reminders?token={QUERY_TOKEN}"
    assert (
        first.headers["Authorization"]
        == "Basic " + base64.b64encode(f"brand:{PASSWORD}".encode()).decode()
    )
    assert first.headers["X-Api-Key"] == API_KEY
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    body = json.loads(first.body)
    assert [r["idempotency_key"] for r in body["reminders"]] == ["1:2026-11-22:1", "2:2026-11-22:1"]
    one = body["reminders"][0]
    assert (one["points"], one["programs"], one["mobile"]) == ("12.500", {"2282": "12.500"},
                                                              "+911234")  # fmt: skip
    assert one["unsubscribe_url"] == "https://u.example/1"


def test_the_idempotency_key_is_the_reminders_keys_and_nothing_else() -> None:
    assert idempotency_key([outgoing(1), outgoing(2)]) == idempotency_key(
        [outgoing(1, text="other"), outgoing(2, text="text")]
    )
    assert idempotency_key([outgoing(1), outgoing(2)]) != idempotency_key([outgoing(1)])


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_fails_the_batch(
    status: int, hook_connection: Callable[..., str]
) -> None:
    with LoopbackServer(answer(200)) as elsewhere:
        moved = answer(status, headers={"Location": f"{elsewhere.url}/stolen"})
        with LoopbackServer(moved) as receiver:
            conn_id = hook_connection(receiver)
            with (
                pytest.raises(WebhookFailed, match=f"answered {status} .*: not followed"),
                WebhookChannel(http_conn_id=conn_id) as channel,
            ):
                channel.send([outgoing(1)])
    assert len(receiver.seen) == 1
    assert elsewhere.seen == []  # neither the customers nor the API key went anywhere else


def endless(status: int, written: list[int]) -> Any:
    """An answer that claims a gigabyte and writes until the client goes away (at most 300 MB),
    counting what it wrote."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(1 << 30))
        handler.end_headers()
        chunk = b"x" * 65_536
        try:
            while written[0] < 300 << 20:
                handler.wfile.write(chunk)
                written[0] += len(chunk)
        except OSError:
            pass

    return respond


@pytest.mark.parametrize("status", [200, 500])
def test_an_answer_is_read_no_further_than_max_answer_bytes(
    status: int, hook_connection: Callable[..., str]
) -> None:
    written = [0]
    with LoopbackServer(endless(status, written)) as receiver:
        conn_id = hook_connection(receiver)
        channel = WebhookChannel(http_conn_id=conn_id, max_answer_bytes=100_000)
        with channel:
            if status == 200:
                channel.send([outgoing(1)])  # accepted: the status says so
            else:
                with pytest.raises(WebhookFailed, match="answered 500"):
                    channel.send([outgoing(1)])
        time.sleep(0.2)
    # What the socket buffers held, not the 300 MB the receiver had to give.
    assert written[0] < 40 << 20


def trickle(headers_first: bool) -> Any:
    """An answer that comes a byte every 0.2 s: its body, or its status line and headers."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
        handler.wfile.write(head if headers_first else b"")
        rest = b"x" * 100 if headers_first else head + b"x" * 100
        try:
            for byte in rest:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    return respond


@pytest.mark.parametrize("headers_first", [True, False], ids=["body", "status-and-headers"])
def test_an_answer_trickling_in_fails_at_the_one_deadline(
    headers_first: bool, hook_connection: Callable[..., str]
) -> None:
    with LoopbackServer(trickle(headers_first)) as receiver:
        conn_id = hook_connection(receiver, timeout=1)  # the connection's own timeout
        with WebhookChannel(http_conn_id=conn_id) as channel:
            assert channel.send_deadline_seconds == 1
            started = time.monotonic()
            with pytest.raises(WebhookFailed, match=r"no whole answer .* within timeout=1 s"):
                channel.send([outgoing(1)])
            assert time.monotonic() - started < 2.5  # a byte every 0.2 s would take 20 s


def echo(status: int) -> Any:
    """A receiver that answers with the request it got: its headers first, then its body."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        request = "".join(f"{k}: {v}\n" for k, v in handler.headers.items()).encode()
        answer(status, request + handler.path.encode())(handler)

    return respond


def test_secrets_of_the_connection_reach_no_error_and_no_log(
    hook_connection: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    basic = base64.b64encode(f"brand:{PASSWORD}".encode()).decode()
    caplog.set_level(logging.DEBUG)
    with LoopbackServer(echo(500)) as receiver:
        conn_id = hook_connection(receiver)
        with WebhookChannel(http_conn_id=conn_id) as channel:
            with pytest.raises(WebhookFailed) as refused:
                channel.send([outgoing(1)])
            assert API_KEY in receiver.seen[0].headers.values()  # it did echo them
    receiver_port = receiver.url.rsplit(":", 1)[1]
    with pytest.raises(WebhookFailed) as unreachable, WebhookChannel(http_conn_id=conn_id) as gone:
        gone.send([outgoing(1)])  # nothing listens on the port any more
    for error in (refused.value, unreachable.value):
        text = str(error) + repr(error.__cause__) + repr(error.__context__)
        for secret in (PASSWORD, basic, API_KEY, QUERY_TOKEN):
            assert secret not in text
        assert f"127.0.0.1:{receiver_port}" in text  # the receiver is still named
    assert "answered 500" in str(refused.value)
    logged = [str(redact(record.getMessage())) for record in caplog.records]
    assert any(f"127.0.0.1:{receiver_port}" in line for line in logged)  # urllib3 at DEBUG
    for secret in (PASSWORD, basic, API_KEY, QUERY_TOKEN):
        assert redact(f"... {secret} ...") == "... *** ..."  # Airflow's masker knows each one,
        assert all(secret not in line for line in logged)  # so no log line shows it


@pytest.mark.parametrize("status", [400, 422])
def test_a_receiver_that_says_the_records_are_bad_refuses_them_for_good(
    status: int, hook_connection: Callable[..., str]
) -> None:
    with LoopbackServer(echo(status)) as receiver:
        conn_id = hook_connection(receiver)
        with (
            pytest.raises(RejectedReminders) as refused,
            WebhookChannel(http_conn_id=conn_id) as channel,
        ):
            channel.send([outgoing(1), outgoing(2)])
    assert set(refused.value.reasons) == {"1:2026-11-22:1", "2:2026-11-22:1"}
    assert all(f"webhook answered {status}" in why for why in refused.value.reasons.values())
    assert all(API_KEY not in why for why in refused.value.reasons.values())


@pytest.mark.parametrize("status", [409, 429, 503])
def test_other_refusals_fail_the_batch_for_a_retry(
    status: int, hook_connection: Callable[..., str]
) -> None:
    with LoopbackServer(answer(status)) as receiver:
        conn_id = hook_connection(receiver)
        with (
            pytest.raises(WebhookFailed, match=f"webhook answered {status} .* a batch of 1"),
            WebhookChannel(http_conn_id=conn_id) as channel,
        ):
            channel.send([outgoing(1)])


def test_the_receiver_is_a_connection() -> None:
    with pytest.raises(ValueError, match="http_conn_id: the webhook's receiver is an Airflow"):
        WebhookChannel(http_conn_id="")
    with pytest.raises(TypeError):
        WebhookChannel(url="https://anywhere.example/hook")  # type: ignore[call-arg]


def test_a_deadline_not_shorter_than_the_claim_lease_fails_the_delivery_before_sending(
    hook_connection: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch still being sent when its claims' lease runs out could be taken over by another
    runner and sent twice: the delivery refuses such a pair before claiming anything."""
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "brand-secret")
    found, shard = tmp_path / "found.ndjson", tmp_path / "shard.ndjson"
    found.write_text("")
    shard.write_text("")
    with LoopbackServer(answer(202)) as receiver:
        conn_id = hook_connection(receiver, timeout=90)
        deliver = DeliverRemindersOperator(
            task_id="send", found={"index": 0, "path": str(found), "shard": str(shard)},
            channel=WebhookChannel(http_conn_id=conn_id), claim_lease_seconds=60,
            message=ReminderMessage(unsubscribe_url="https://b.example/u?c={customer_id}&t={token}"),
            ledger_path=str(tmp_path / "ledger.sqlite3"),
        )  # fmt: skip
        with pytest.raises(AirflowFailException, match=r"claim_lease_seconds: 60 s is not longer"):
            deliver.execute({})
    assert receiver.seen == []


def test_a_channel_used_before_open_says_so() -> None:
    with pytest.raises(RuntimeError, match="before open"):
        WebhookChannel(http_conn_id="x").send([outgoing(1)])


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
