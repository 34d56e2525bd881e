"""The reminder DAG as a brand runs it for real, with `airflow dags test` against the simulator, a
local SMTP server and a local webhook receiver: consent (opt-out columns, a suppression list, RFC
8058 headers, a plain-text part), the sendMessage and webhook channels (each reminder once, also
across a failure half-way and the retry), an address the mail server refuses for good (failing
alone, then sent once fixed), and the holdout."""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import hashlib
import hmac
import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from demo.environment import REPOSITORY, UNSUBSCRIBE_SECRET, DemoEnvironment
from tests.dag_runs import (
    DAY,
    REMINDER_DAG,
    emailed_keys,
    expected_reminders,
    run_dag,
    summary_file,
)
from tests.harness import LoopbackServer


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoEnvironment]:
    with DemoEnvironment(tmp_path_factory.mktemp("channels"), customers=800) as environment:
        yield environment


def _day(offset: int) -> str:
    return (dt.date.fromisoformat(DAY) + dt.timedelta(days=offset)).isoformat()


def _customer(key: str) -> int:
    return int(key.split(":")[0])


def _crm(env: DemoEnvironment) -> dict[int, dict[str, str]]:
    with env.customers_csv.open() as handle:
        return {int(row["customer_id"]): row for row in csv.DictReader(handle)}


def _ledger_rows(env: DemoEnvironment) -> dict[str, tuple[str, str | None]]:
    """reminder key -> (state, points at stake JSON), read from the SQLite ledger directly."""
    path = env.data_dir / "neo" / "sent-ledger.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT reminder_key, state, points_at_stake FROM neo_reminder_ledger")
        return {key: (state, stake) for key, state, stake in rows}


def _points_text(points: Decimal) -> str:
    return f"{points.normalize():f}" if points % 1 else f"{int(points):,}"


def test_opted_out_customers_get_nothing_emails_carry_one_click_unsubscribe_and_plain_text(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    expected = expected_reminders(env, DAY)
    customers = sorted({_customer(key) for key in expected})
    assert len(customers) > 8
    # Three opted out in the CRM extract (different spellings of "no"), two on the suppression
    # list; and one whose column says yes in an unusual way, who is still reminded.
    column_out, listed_out, still_in = customers[:3], customers[3:5], customers[5]
    crm = _crm(env)
    # The deployment's CRM extract (the example DAG reads it from $NEO_DATA_DIR) gains an opt-in
    # column, and the deployment names a suppression list; the run's conf names no file.
    original = env.customers_csv.read_bytes()
    with env.customers_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "first_name", "email_opt_in"])
        for customer, row in crm.items():
            opt_in = {column_out[0]: "false", column_out[1]: "0", column_out[2]: "No"}.get(
                customer, "Y" if customer == still_in else ""
            )
            writer.writerow([customer, row["email"], row["first_name"], opt_in])
    suppression = tmp_path / "suppressed.csv"
    suppression.write_text("customer_id\n" + "".join(f"{c}\n" for c in listed_out))
    try:
        run_dag(env, REMINDER_DAG, DAY, env_vars={"NEO_SUPPRESSION_PATH": f"file://{suppression}"})
    finally:
        env.customers_csv.write_bytes(original)

    opted_out = set(column_out) | set(listed_out)
    suppressed = {key for key in expected if _customer(key) in opted_out}
    assert sorted(emailed_keys(env)) == sorted(set(expected) - suppressed)
    summary = summary_file(env, DAY)
    assert summary["suppressed"] == len(suppressed) > 0
    assert summary["emails_sent"] == len(expected) - len(suppressed)
    assert summary["channel"] == "email"
    assert not set(_ledger_rows(env)) & suppressed  # not marked sent: not lost

    for message in env.mailbox.messages():
        key = message["X-Neo-Reminder-Key"]
        _check_unsubscribe_headers(message, _customer(key))
        _check_text_matches_html(message, expected[key], key, crm[_customer(key)]["first_name"])

    # The customers opt back in (the extract as it was, no suppression list): a re-run of the
    # day reminds exactly them.
    before = len(env.mailbox.messages())
    run_dag(env, REMINDER_DAG, DAY)
    assert sorted(emailed_keys(env)[before:]) == sorted(suppressed)
    assert max(Counter(emailed_keys(env)).values()) == 1


def _check_unsubscribe_headers(message: EmailMessage, customer: int) -> None:
    token = hmac.new(UNSUBSCRIBE_SECRET.encode(), str(customer).encode(), hashlib.sha256)
    https = f"https://rewards.example.com/unsubscribe?customer={customer}&token={token.hexdigest()[:32]}"
    links = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert links == [https, f"mailto:unsubscribe@example.com?subject=unsubscribe%20{customer}"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # RFC 8058


def _check_text_matches_html(
    message: EmailMessage, points: Decimal, key: str, first_name: str
) -> None:
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    expiry = key.split(":")[1]
    for fact in (_points_text(points), expiry, first_name or "there"):
        assert fact in text, (fact, key)
        assert fact in html, (fact, key)


def _recover_after(reached: Any, recover: Any) -> None:
    """Once `reached()` (the far side has failed half-way), wait 3 s and `recover()`: in a
    thread, while the DAG runs and its delivery task is retried."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while not reached() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        recover()

    threading.Thread(target=watch, daemon=True).start()


def _without_one_opted_out(
    env: DemoEnvironment, expected: dict[str, Decimal], tmp_path: Path
) -> tuple[dict[str, Decimal], str]:
    """The reminders of every customer but one, and a suppression list naming that one."""
    opted_out = min(_customer(key) for key in expected)
    path = tmp_path / "suppressed.csv"
    path.write_text(f"customer_id\n{opted_out}\n")
    return {k: v for k, v in expected.items() if _customer(k) != opted_out}, str(path)


def test_neo_message_channel_sends_each_reminder_once_across_an_outage_half_way(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    day = _day(1)
    expected, suppression = _without_one_opted_out(env, expected_reminders(env, day), tmp_path)
    assert len(expected) >= 6
    messages = f"{env.simulator.url}/__sim/messages"
    already = len(requests.get(messages, timeout=10).json())
    half = already + len(expected) // 2
    requests.put(messages, json={"refuse_after": half}, timeout=10).raise_for_status()
    _recover_after(
        lambda: len(requests.get(messages, timeout=10).json()) >= half,
        lambda: requests.put(messages, json={"refuse_after": None}, timeout=10),
    )
    quick = {
        "AIRFLOW_CONN_NEO_DEFAULT": env.neo_connection(
            max_retries=1, backoff_base_seconds=0.05, backoff_max_seconds=0.1
        )
    }
    conf = {"channel": "neo_message", "neo_message_channel": "email", "catch_up_days": 0}
    result = env.dags_test(
        REMINDER_DAG, day, conf, env=quick | {"NEO_SUPPRESSION_PATH": suppression}
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "503" in output  # the delivery failed half-way, and its retry sent the rest
    got = requests.get(messages, timeout=10).json()[already:]
    assert {m["channel"] for m in got} == {"email"}
    crm = _crm(env)
    # One run reminds a customer at most once per expiry day: (address, day) names a reminder.
    sent = Counter((m["message"]["to"], m["message"]["subject"].rsplit(" ", 1)[1]) for m in got)
    assert sent == Counter((crm[_customer(k)]["email"], k.split(":")[1]) for k in expected)
    first = next(m["message"] for m in got)
    assert first["from"] == "rewards@example.com"
    assert "unsubscribe?customer=" in first["body"]
    summary = summary_file(env, day)
    assert summary["channel"] == "neo_message:email"
    # The summary counts what the successful try sent; the ledger has all of them as sent.
    assert 0 < summary["emails_sent"] < len(expected)
    assert {k for k, (state, _) in _ledger_rows(env).items() if state == "sent"} >= set(expected)


WEBHOOK_PASSWORD = "webhook-pw-5d1e7c"
WEBHOOK_API_KEY = "webhook-key-9f3b2a7e"
WEBHOOK_QUERY_TOKEN = "webhook-tok-4c8d6e1b"


class _HostileReceiver(BaseHTTPRequestHandler):
    """A webhook receiver that meets the first batch of each shard in `plan` one way it names:
    ``moved`` (301 to `elsewhere`), ``temporary`` (307 to `elsewhere`), ``echo`` (500 with the
    request's headers and body), ``trickle`` (200, its body a byte every 0.3 s), ``huge`` (200,
    a body that does not end); it accepts every other batch, with 202. `attempts` keeps each
    request as (how it was met, Idempotency-Key, reminders); `accepted` what it took."""

    plan: ClassVar[dict[int, str]] = {}
    shard_of: ClassVar[dict[int, int]] = {}
    elsewhere: ClassVar[str] = ""
    attempts: ClassVar[list[tuple[str, str, list[dict[str, Any]]]]] = []
    accepted: ClassVar[list[tuple[str, list[dict[str, Any]]]]] = []
    huge_written: ClassVar[int] = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        cls = type(self)
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        key, reminders = self.headers["Idempotency-Key"], json.loads(raw)["reminders"]
        with cls.lock:
            way = cls.plan.pop(cls.shard_of[reminders[0]["customer_id"]], "accept")
            cls.attempts.append((way, key, reminders))
            if way in ("accept", "huge"):  # a 2xx status: accepted, whatever the body does
                cls.accepted.append((key, reminders))
        if way in ("moved", "temporary"):
            self.send_response(301 if way == "moved" else 307)
            self.send_header("Location", cls.elsewhere)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif way == "echo":
            echoed = "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode() + raw
            self.send_response(500)
            self.send_header("Content-Length", str(len(echoed)))
            self.end_headers()
            self.wfile.write(echoed)
        elif way in ("trickle", "huge"):
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gives up, as it should
                for _ in range(100 if way == "trickle" else 5_000):
                    self.wfile.write(b"x" if way == "trickle" else b"x" * 65_536)
                    self.wfile.flush()
                    if way == "trickle":
                        time.sleep(0.3)
                    else:
                        cls.huge_written += 65_536
        else:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_channel_survives_a_hostile_receiver_and_a_conf_that_tries_to_redirect_it(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    """The issue's attack conf (a template of /etc/passwd, the webhook to the triggerer's URL,
    another CRM file, output folder and ledger) against the example DAG, whose receiver is the
    HTTP connection the deployment set; that receiver meets one shard's first batch with each
    hostile answer. Nothing is redirected, no redirect followed, no secret logged, and every
    reminder is taken exactly once, a failed batch's retry carrying the same Idempotency-Key."""
    day = _day(2)
    expected, suppression = _without_one_opted_out(env, expected_reminders(env, day), tmp_path)
    with env.customers_csv.open() as handle:
        order = [int(row["customer_id"]) for row in csv.DictReader(handle)]
    shard_size = 100
    shard_of = {customer: index // shard_size for index, customer in enumerate(order)}
    shards = sorted({shard_of[_customer(key)] for key in expected})
    ways = ["moved", "temporary", "echo", "trickle", "huge"]
    assert len(shards) >= len(ways)
    elsewhere = LoopbackServer(lambda handler: handler.send_response(200))  # takes anything
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _HostileReceiver)
    _HostileReceiver.plan = dict(zip(shards, ways, strict=False))
    _HostileReceiver.shard_of = shard_of
    _HostileReceiver.elsewhere = f"{elsewhere.url}/stolen"
    _HostileReceiver.attempts, _HostileReceiver.accepted, _HostileReceiver.huge_written = [], [], 0
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    evil_crm = tmp_path / "evil-crm.csv"
    evil_crm.write_text("customer_id,email,first_name\n999999999,attacker@x.test,Eve\n")
    attack = {
        "webhook_url": _HostileReceiver.elsewhere, "text_template": "/etc/passwd",
        "customers_path": str(evil_crm), "output_dir": str(tmp_path / "evil-out"),
        "ledger_path": str(tmp_path / "evil-ledger.sqlite3"), "ledger_conn_id": "evil",
    }  # fmt: skip
    conf = {"channel": "webhook", "webhook_batch_size": 3, "catch_up_days": 0,
            "shard_size": shard_size, **attack}  # fmt: skip
    deployment = {
        "NEO_SUPPRESSION_PATH": suppression,
        "AIRFLOW_CONN_NEO_REMINDER_WEBHOOK": json.dumps(
            {"conn_type": "http", "login": "brand", "password": WEBHOOK_PASSWORD,
             "host": f"http://127.0.0.1:{receiver.server_port}/reminders?token="
                     f"{WEBHOOK_QUERY_TOKEN}",
             "extra": {"X-Api-Key": WEBHOOK_API_KEY, "timeout": 2}}
        ),
    }  # fmt: skip
    try:
        with elsewhere:
            output = run_dag(env, REMINDER_DAG, day, conf, env_vars=deployment)
    finally:
        receiver.shutdown()
    attempts, accepted = _HostileReceiver.attempts, _HostileReceiver.accepted
    assert elsewhere.seen == []  # no redirect followed, the triggerer's URL never used
    assert {way for way, _, _ in attempts} == {*ways, "accept"}
    # Every reminder taken once, none but the CRM's customers, no /etc/passwd in any text.
    keys = [r["idempotency_key"] for _, batch in accepted for r in batch]
    assert sorted(keys) == sorted(expected)
    assert all("root:" not in r["text"] for _, batch in accepted for r in batch)
    assert not (tmp_path / "evil-out").exists()
    assert not (tmp_path / "evil-ledger.sqlite3").exists()
    # Each failed batch came again, whole, with the same Idempotency-Key, and was taken.
    taken = {key: sorted(r["idempotency_key"] for r in batch) for key, batch in accepted}
    for way, key, batch in attempts:
        assert taken.get(key) == sorted(r["idempotency_key"] for r in batch), way
        assert re.fullmatch(r"[0-9a-f]{40}", key)
    assert len(attempts) == len(accepted) + 4  # the four failed batches, each sent once more
    for said in (
        "answered 301 Moved Permanently", "answered 307 Temporary Redirect", "not followed",
        "answered 500", "no whole answer", "within timeout=2 s",
    ):  # fmt: skip
        assert said in output, said
    basic = base64.b64encode(f"brand:{WEBHOOK_PASSWORD}".encode()).decode()
    for secret in (WEBHOOK_PASSWORD, basic, WEBHOOK_API_KEY, WEBHOOK_QUERY_TOKEN):
        assert secret not in output
    assert _HostileReceiver.huge_written < 40 << 20  # read 64 KiB of it, not 300 MB
    summary = summary_file(env, day)
    assert summary["channel"] == "webhook"
    assert summary["suppressed"] >= 1  # the opted-out customer, counted by the successful try


class _BrandEsp(BaseHTTPRequestHandler):
    """The far side of a brand's own channel: takes JSON lists of reminders, and once
    `refuse_after` are in, answers 500 until told otherwise."""

    received: ClassVar[list[dict[str, Any]]] = []
    refuse_after: ClassVar[int | None] = None

    def do_POST(self) -> None:
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        limit = type(self).refuse_after
        if limit is not None and len(self.received) + len(batch) > limit:
            self.send_response(500)
        else:
            self.received.extend(batch)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_brands_own_channel_delivers_each_reminder_once_across_a_failure_and_the_retry(
    env: DemoEnvironment,
) -> None:
    """tests/brand_dags/brand_esp_reminders.py: a channel written against the public API only
    (ReminderChannel, OutgoingReminder), handed to the task group; its far side fails half-way
    and the delivery task is retried."""
    day = DAY  # the brand's own ledger: the example DAG's runs of the day do not count here
    expected = expected_reminders(env, day)
    assert len(expected) >= 8
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrandEsp)
    _BrandEsp.received, _BrandEsp.refuse_after = [], len(expected) // 2
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def recover() -> None:
        _BrandEsp.refuse_after = None

    _recover_after(lambda: len(_BrandEsp.received) >= len(expected) // 2 - 4, recover)
    brand = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPOSITORY / "tests" / "brand_dags"),
        "AIRFLOW_VAR_BRAND_ESP_URL": f"http://127.0.0.1:{server.server_port}/send",
    }
    try:
        result = env.dags_test("brand_esp_reminders", day, env=brand)
    finally:
        server.shutdown()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "brand ESP answered 500" in output  # the delivery failed half-way, then was retried
    keys = [message["key"] for message in _BrandEsp.received]
    assert sorted(keys) == sorted(expected)  # every reminder, each once
    crm = _crm(env)
    for message in _BrandEsp.received:
        assert message["to"] == crm[_customer(message["key"])]["email"]
        assert message["subject"].endswith(f"points expire on {message['key'].split(':')[1]}")
    ledger = env.data_dir / "brand-esp" / "sent-ledger.sqlite3"
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT reminder_key, state, channel FROM neo_reminder_ledger")
        assert {key: (state, channel) for key, state, channel in rows} == {
            key: ("sent", "brand-esp") for key in expected
        }


def test_a_conf_cannot_redirect_a_location_nor_a_template_run_code_and_nothing_is_sent(
    env: DemoEnvironment, tmp_path: Path
) -> None:
    """tests/brand_dags/brand_reminders_from_params.py. Its first group reads its files from
    params and lets conf set the suppression list only: a conf that also points the text
    template at /etc/passwd fails the delivery naming that param. Its second group's template,
    an Airflow Variable, tries to run a shell command: the sandbox refuses it, naming the
    template. Neither sends anything, nor writes a reminder to its ledger."""
    day = _day(5)
    assert expected_reminders(env, day)  # there is something to send, and nothing is sent
    marker = tmp_path / "template-ran"
    opt_outs = tmp_path / "today-opt-outs.csv"
    opt_outs.write_text("customer_id\n")
    before = len(env.mailbox.messages())
    conf = {"text_template": "/etc/passwd", "suppression_path": str(opt_outs), "holdout_share": 0.5}
    brand = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPOSITORY / "tests" / "brand_dags"),
        "AIRFLOW_VAR_BRAND_REMINDER_TEXT": (
            "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"
        ),
    }
    result = env.dags_test("brand_reminders_from_params", day, conf, env=brand)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "message.text_template: the run's conf sets the param 'text_template', which this"
        " location reads ({{ params.text_template }})"
    ) in output
    assert "'suppression_path'" not in output  # opened by the DAG's author
    assert "text_template: refused by the template sandbox" in output
    assert not marker.exists()
    assert len(env.mailbox.messages()) == before
    for folder in ("brand-params", "brand-variable"):
        ledger = env.data_dir / folder / "sent-ledger.sqlite3"
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            assert db.execute("SELECT COUNT(*) FROM neo_reminder_ledger").fetchone() == (0,)


def test_an_address_refused_for_good_fails_alone_and_once_fixed_a_rerun_sends_only_it(
    env: DemoEnvironment,
) -> None:
    day = _day(5)
    expected = expected_reminders(env, day)
    victim = min(_customer(key) for key in expected)
    refused = {key for key in expected if _customer(key) == victim}
    assert len(set(expected) - refused) >= 2
    address = _crm(env)[victim]["email"]
    extract = env.customers_csv.read_text()
    env.mailbox.refuse_recipients([address])  # 550 5.1.1: no such mailbox
    before = len(env.mailbox.messages())
    try:
        failed = env.dags_test(REMINDER_DAG, day, {"catch_up_days": 0})
        output = failed.stdout + failed.stderr
        assert failed.returncode != 0  # the run is seen to fail ...
        assert all(key in output.split("refused for good: ", 1)[1] for key in refused)  # naming it
        delivered = emailed_keys(env)[before:]
        assert sorted(delivered) == sorted(set(expected) - refused)  # ... after the rest went out
        summary = summary_file(env, day)
        assert summary["failed"] == len(refused)
        assert {f["key"] for f in summary["failed_reminders"]} == refused
        assert all(f["reason"].startswith("550 5.1.1") for f in summary["failed_reminders"])
        assert summary["failed_shards"] == []
        assert summary["emails_sent"] == len(expected) - len(refused)
        assert {k: s for k, (s, _) in _ledger_rows(env).items() if k in refused} == {
            key: "failed" for key in refused
        }
        assert not _days_reminded(env, day)  # so that the next run would catch the day up

        # The brand fixes the address in the CRM extract and re-runs the date.
        fixed = f"fixed-{victim}@example.com"
        env.customers_csv.write_text(extract.replace(f",{address},", f",{fixed},"))
        run_dag(env, REMINDER_DAG, day, {"catch_up_days": 0})
        resent = env.mailbox.messages()[before + len(delivered) :]
        assert sorted(m["X-Neo-Reminder-Key"] for m in resent) == sorted(refused)
        assert {m["To"] for m in resent} == {fixed}
        assert max(Counter(emailed_keys(env)).values()) == 1
        assert summary_file(env, day)["failed"] == 0
        assert {k: s for k, (s, _) in _ledger_rows(env).items() if k in refused} == {
            key: "sent" for key in refused
        }
        assert _days_reminded(env, day)
    finally:
        env.customers_csv.write_text(extract)
        env.mailbox.refuse_recipients([])


def _days_reminded(env: DemoEnvironment, day: str) -> set[tuple[int, str]]:
    """The run's own (lead time, expiry day) pairs that the ledger records as reminded."""
    own = {(lead, (dt.date.fromisoformat(day) + dt.timedelta(days=lead)).isoformat())
           for lead in (30, 7, 1)}  # fmt: skip
    path = env.data_dir / "neo" / "sent-ledger.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT lead_days, expiry_date FROM neo_reminder_days")
        return {(int(lead), str(expiry)) for lead, expiry in rows} & own
