"""Daily points-expiry reminders for a Capillary loyalty brand.

Every day, for each lead time (30, 7 and 1 days by default), find the customers whose AVAILABLE
points expire on that single day (data interval end + lead, in the organisation's time zone) and
remind them by email; also write the day's reminder list as CSV for any engagement tool.

- Customers come from the brand's CRM extract: a CSV of ``customer_id,email,first_name`` at
  ``customers_path`` (a local file by default; any ObjectStoragePath URL works).
- The extract is split into shards. Each shard is one mapped task group, discovery (Neo's paIds
  in batches, a few requests per thousand customers) then delivery, so shards spread over
  Celery workers and a shard that fails does not hold back the others' reminders. ``publish``
  runs whatever happened, writes the list of what was found (``reminders/<ds>.csv``) and the
  run's totals (``reminders/<ds>.summary.json``) and names any failed shard; the run then ends
  failed, so it is seen and can be re-run (a re-run sends exactly what is missing).
- Delivery is exactly once across every runner: each reminder (customer, expiry day, lead time)
  is claimed in a sent-ledger before it is sent and marked sent once the mail server accepted
  it. The ledger is a SQLite file (``ledger_path``) on one machine, or a database reached by an
  Airflow connection (``ledger_conn_id``, e.g. PostgreSQL) when workers run on several hosts.
- Missed days are caught up: when an earlier run failed or did not run, the next run also
  reminds the expiry days since the last day reminded completely, up to ``catch_up_days`` back.
- The message is rendered from ``email_template`` (Jinja HTML), ``text_template`` (the plain
  text beside it, and the SMS/WhatsApp body) and ``email_subject``: replace them with the brand's
  own. Every email carries ``List-Unsubscribe`` (the brand's https ``unsubscribe_url`` with the
  customer id and an HMAC token under the Airflow Variable named by
  ``unsubscribe_secret_variable``, plus ``unsubscribe_mailto``) and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).
- ``channel``: ``email`` (SMTP, the default), ``neo_message`` (Capillary's sendMessage through the
  Neo connection, on ``neo_message_channel`` email, sms or whatsapp; SMS and WhatsApp need a
  ``mobile`` column in the CRM extract) or ``webhook`` (JSON batches to ``webhook_url`` or the
  HTTP connection ``webhook_conn_id``, each reminder with its ledger key as idempotency key).
  Every channel delivers through the sent-ledger, exactly once.
- Consent is checked when each shard is delivered: customers whose ``email_opt_in`` (email,
  webhook) or ``sms_opt_in`` (sms, whatsapp) column of the CRM extract says no, and the ids of the
  suppression list at ``suppression_path`` (any ObjectStoragePath), are not messaged. They are
  counted as ``suppressed`` and left out of the ledger, so that nothing is lost: when they opt
  back in, a re-run of the day reminds them.
- ``holdout_share`` (default 0: nobody held out) keeps that share of customers, chosen by a hash
  of ``holdout_salt`` and the customer id (the same customers on every run), from being
  reminded; they are recorded in the ledger as held out with their points at stake, the
  comparison group of the ``neo_reminder_effectiveness`` DAG. 0 is the default because holding
  customers back is the brand's decision; 0.1 is a usual choice.

Capillary Loyalty+ can send its own expiry notices, configured per expiry strategy. If the
brand has them switched on, turn them off or leave out the overlapping lead times here, so that
customers are not told twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from airflow.providers.common.compat.sdk import (
    AirflowException,
    ObjectStoragePath,
    Param,
    dag,
    get_current_context,
    task,
    task_group,
)
from airflow.providers.smtp.hooks.smtp import SmtpHook

from airflow_provider_neo.channels import (
    NeoMessageChannel,
    ReminderChannel,
    WebhookChannel,
    reaches,
)
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.ledger import SentLedger
from airflow_provider_neo.records import JSON_ENCODER
from airflow_provider_neo.reminders import (
    Consent,
    ProgramCategory,
    Reminder,
    ReminderTemplate,
    RenderedReminder,
    Unsubscribe,
    compose_email,
    deliver_batches,
    expiry_days_to_remind,
    find_reminders,
    in_holdout,
    read_customers,
    task_try_owner,
)
from airflow_provider_neo.utils.files import byte_lines, text_lines
from airflow_provider_neo.utils.output import atomic_csv, atomic_open, task_writer
from airflow_provider_neo.utils.windows import local_day, run_anchor

DATA_DIR = os.environ.get("NEO_DATA_DIR", "/opt/airflow/data")
TEMPLATES = Path(__file__).parent / "templates"
SHARD_COLUMNS = ["customer_id", "email", "first_name", "mobile"]
CSV_COLUMNS = ["customer_id", "email", "first_name", "lead_days", "expiry_date",
               "remaining_points", "programs"]  # fmt: skip


def _run_dir(params: dict[str, Any], run_id: str) -> ObjectStoragePath:
    """Where one run's shard files live: the output folder every worker reads."""
    return ObjectStoragePath(params["output_dir"]) / "runs" / re.sub(r"[^\w.-]+", "_", run_id)


def _ledger(params: dict[str, Any]) -> SentLedger:
    return SentLedger.open(path=params["ledger_path"], conn_id=params["ledger_conn_id"])


def _days_json(days: dict[int, list[dt.date]]) -> dict[str, list[str]]:
    return {str(lead): [day.isoformat() for day in dates] for lead, dates in days.items()}


def _days_from_json(days: dict[str, list[str]]) -> dict[int, list[dt.date]]:
    return {
        int(lead): [dt.date.fromisoformat(day) for day in dates] for lead, dates in days.items()
    }


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["neo", "loyalty", "example"],
    doc_md=__doc__,
    params={
        "customers_path": Param(f"{DATA_DIR}/customers.csv", type="string"),
        "output_dir": Param(f"{DATA_DIR}/neo", type="string"),
        "ledger_path": Param(f"{DATA_DIR}/neo/sent-ledger.sqlite3", type="string"),
        # An Airflow connection to a database (e.g. PostgreSQL) shared by every worker host;
        # when set, it is the ledger and ledger_path is not used.
        "ledger_conn_id": Param(os.environ.get("NEO_LEDGER_CONN_ID", ""), type="string"),
        "lead_times": Param([30, 7, 1], type="array", items={"type": "integer", "minimum": 0}),
        "catch_up_days": Param(3, type="integer", minimum=0),
        "min_points": Param(1, type="number", minimum=0),
        "programs": Param(
            [
                {"program_id": 2282, "point_category_id": 17383},
                {"program_id": 3379, "point_category_id": 40022},
                {"program_id": 3379, "point_category_id": 40023},
            ],
            type="array",
        ),
        "shard_size": Param(500, type="integer", minimum=1),
        "claim_lease_seconds": Param(60, type="number", minimum=1),
        "channel": Param("email", type="string", enum=["email", "neo_message", "webhook"]),
        "neo_message_channel": Param("email", type="string", enum=["email", "sms", "whatsapp"]),
        "sms_sender": Param("REWARDS", type="string"),
        # The webhook: a URL, or an HTTP connection (host, login/password, extra endpoint and
        # headers) when the URL or its credentials should not sit in the DAG's params.
        "webhook_url": Param("", type="string"),
        "webhook_conn_id": Param("", type="string"),
        "webhook_batch_size": Param(100, type="integer", minimum=1),
        "suppression_path": Param("", type="string"),
        "unsubscribe_url": Param(
            "https://rewards.example.com/unsubscribe?customer={customer_id}&token={token}",
            type="string",
        ),
        "unsubscribe_mailto": Param("unsubscribe@example.com", type="string"),
        "unsubscribe_secret_variable": Param("neo_unsubscribe_secret", type="string"),
        "holdout_share": Param(0, type="number", minimum=0, maximum=1),
        "holdout_salt": Param("neo-reminders", type="string"),
        "email_template": Param(str(TEMPLATES / "expiry_reminder.html"), type="string"),
        "text_template": Param(str(TEMPLATES / "expiry_reminder.txt"), type="string"),
        "email_subject": Param(
            "{{ first_name }}, {{ points }} points expire on {{ expiry_date }}", type="string"
        ),
        "from_email": Param("rewards@example.com", type="string"),
        "neo_conn_id": Param("neo_default", type="string"),
        "smtp_conn_id": Param("smtp_default", type="string"),
    },
)
def neo_points_expiry_reminder() -> None:
    @task
    def expiry_days(params: dict[str, Any]) -> dict[str, list[str]]:
        """Per lead time, the expiry days to remind: today's, and days missed since the last
        one reminded completely."""
        hook = NeoHook(params["neo_conn_id"])
        ledger = _ledger(params)
        try:
            days = expiry_days_to_remind(
                ledger,
                anchor_day=local_day(run_anchor(get_current_context()), hook.settings.timezone),
                lead_days=params["lead_times"],
                catch_up_days=params["catch_up_days"],
            )
        finally:
            ledger.close()
        return _days_json(days)

    @task
    def split_customers(params: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
        """The CRM extract split into shard files, one mapped task group each."""
        writer = task_writer(get_current_context())
        shards: list[dict[str, Any]] = []
        rows: list[list[str]] = []

        def flush() -> None:
            url = str(_run_dir(params, run_id) / "shards" / f"shard-{len(shards):05d}.csv")
            with atomic_csv(url, SHARD_COLUMNS, writer=writer) as shard_file:
                shard_file.writerows(rows)
            shards.append({"index": len(shards), "path": url, "customers": len(rows)})
            rows.clear()

        for row in csv.DictReader(text_lines(params["customers_path"], argument="customers_path")):
            rows.append([row.get(column) or "" for column in SHARD_COLUMNS])
            if len(rows) == params["shard_size"]:
                flush()
        if rows:
            flush()
        return shards

    # Neo may be briefly down or rate-limited: retries back off exponentially from
    # [core] default_task_retry_delay (300 s unless the deployment sets it), which outlasts a
    # rate-limit window.
    @task(retries=3, retry_exponential_backoff=True)
    def find(
        shard: dict[str, Any], days: dict[str, list[str]], params: dict[str, Any], run_id: str
    ) -> dict[str, Any]:
        """The reminders of one shard, for every lead time and expiry day, written as NDJSON."""
        customers = list(
            read_customers(csv.DictReader(text_lines(shard["path"], argument="shard")))
        )
        hook = NeoHook(params["neo_conn_id"])
        reminders = find_reminders(
            hook,
            customers,
            programs=[msgspec.convert(p, ProgramCategory) for p in params["programs"]],
            expiry_days=_days_from_json(days),
            min_points=Decimal(str(params["min_points"])),
        )
        url = str(_run_dir(params, run_id) / "reminders" / f"shard-{shard['index']:05d}.ndjson")
        with atomic_open(url, writer=task_writer(get_current_context())) as handle:
            for reminder in reminders:
                handle.write(JSON_ENCODER.encode(reminder) + b"\n")
        return {
            "index": shard["index"],
            "path": url,
            "customers": len(customers),
            "reminders": len(reminders),
            "requests": hook.stats.requests,
        }

    @task(retries=2, retry_delay=timedelta(seconds=5))
    def send(found: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Deliver one shard's reminders on the brand's channel, each exactly once whatever
        retries or other runners, skipping who opted out and recording the holdout."""
        decoder = msgspec.json.Decoder(Reminder)
        reminders = [decoder.decode(line) for line in byte_lines(found["path"]) if line.strip()]
        ledger = _ledger(params)
        try:
            with _channel(params) as channel:
                # Read now, not when the shard was found: the latest opt-outs count.
                consent = Consent.read(
                    medium=channel.medium,
                    customers_path=params["customers_path"],
                    suppression_path=params["suppression_path"] or None,
                )
                delivery = deliver_batches(
                    reminders,
                    ledger,
                    channel.send,
                    batch_size=channel.batch_size,
                    owner=task_try_owner(get_current_context()),
                    channel=channel.name,
                    lease_seconds=float(params["claim_lease_seconds"]),
                    suppressed=lambda r: (
                        not (consent.allows(r.customer_id) and reaches(channel.medium, r))
                    ),
                    held_out=lambda r: in_holdout(
                        r.customer_id,
                        share=float(params["holdout_share"]),
                        salt=params["holdout_salt"],
                    ),
                    stake=lambda r: r.programs,
                )
        finally:
            ledger.close()
        return {"index": found["index"], **msgspec.to_builtins(delivery)}

    @task_group
    def shard(shard: dict[str, Any], days: dict[str, list[str]]) -> Any:
        """One shard, found then delivered: its own chain, failing alone."""
        return send(find(shard, days))

    @task(trigger_rule="all_done")
    def publish(
        days: dict[str, list[str]],
        shards: list[dict[str, Any]],
        params: dict[str, Any],
        ds: str,
        run_id: str,
    ) -> dict[str, Any]:
        """The day's reminder list as one CSV, the run's totals and which shards failed (as a
        summary JSON file beside it, and in the log). The expiry days are recorded as reminded
        only when every shard delivered."""
        ti = get_current_context()["ti"]
        found, sent, failed = [], [], []
        for entry in shards:
            index = entry["index"]
            found_one = ti.xcom_pull(task_ids="shard.find", map_indexes=index)
            sent_one = ti.xcom_pull(task_ids="shard.send", map_indexes=index)
            if found_one:
                found.append(found_one)
            if sent_one:
                sent.append(sent_one)
            else:
                failed.append({"shard": index, "failed_in": "send" if found_one else "find"})
        folder = ObjectStoragePath(params["output_dir"]) / "reminders"
        url = str(folder / f"{ds}.csv")
        writer = task_writer(get_current_context())
        per_lead = _write_reminder_list(url, found, writer=writer)
        summary = {
            "reminder_list": url,
            "expiry_days": days,
            "lead_times": {
                str(lead): {"customers": v["customers"], "points": str(v["points"])}
                for lead, v in sorted(per_lead.items(), reverse=True)
            },
            "customers_checked": sum(entry["customers"] for entry in shards),
            "neo_requests": sum(shard["requests"] for shard in found),
            "channel": _channel_name(params),
            # Reminders sent on the channel (emails or not; the name predates other channels).
            "emails_sent": sum(shard["sent"] for shard in sent),
            "suppressed": sum(shard["suppressed"] for shard in sent),
            "held_out": sum(shard["held_out"] for shard in sent),
            "already_sent": sum(shard["already_sent"] for shard in sent),
            "sent_by_another_runner": sum(shard["sent_by_another_runner"] for shard in sent),
            "taken_over": sum(shard["taken_over"] for shard in sent),
            "failed_shards": failed,
        }
        # The run's result for whoever reads it next (make demo, a monitoring job), beside the
        # list, written whole; the log line says the same for a reader of the task log.
        with atomic_open(str(folder / f"{ds}.summary.json"), writer=writer) as handle:
            handle.write(json.dumps(summary, indent=2).encode() + b"\n")
        print(f"Expiry reminders: {json.dumps(summary)}")
        if failed:
            raise AirflowException(
                f"{len(failed)} of {len(shards)} shards failed: {failed};"
                " the others delivered. Re-run the failed tasks (or let the next run catch up)."
            )
        ledger = _ledger(params)
        try:
            reminded = _days_from_json(days)
            ledger.mark_days_reminded(
                [(lead, day) for lead, dates in reminded.items() for day in dates], run_id=run_id
            )
        finally:
            ledger.close()
        return summary

    days = expiry_days()
    shards = split_customers()
    delivered = shard.partial(days=days).expand(shard=shards)
    delivered >> publish(days, shards)


def _channel_name(params: dict[str, Any]) -> str:
    if params["channel"] == "neo_message":
        return f"neo_message:{params['neo_message_channel']}"
    return str(params["channel"])


def _brand_message(
    params: dict[str, Any],
) -> tuple[Callable[[Reminder], tuple[RenderedReminder, str]], Unsubscribe]:
    """The brand's message for a reminder with the unsubscribe URL it carries; and the
    unsubscribe links themselves, for the email headers."""
    from airflow.providers.common.compat.sdk import Variable

    template = ReminderTemplate(
        Path(params["email_template"]).read_text(),
        params["email_subject"],
        Path(params["text_template"]).read_text(),
    )
    # The default by position: the keyword is `default` on Airflow 3, `default_var` on 2.11.
    secret = Variable.get(params["unsubscribe_secret_variable"], None)
    if not secret:
        raise AirflowException(
            f"unsubscribe_secret_variable: set the Airflow Variable"
            f" {params['unsubscribe_secret_variable']!r} to the brand's own secret; it signs the"
            " unsubscribe links"
        )
    unsubscribe = Unsubscribe(params["unsubscribe_url"], secret, params["unsubscribe_mailto"])

    def render(reminder: Reminder) -> tuple[RenderedReminder, str]:
        url = unsubscribe.url(reminder.customer_id)
        return template.render(reminder, unsubscribe_url=url), url

    return render, unsubscribe


class _EmailChannel:
    """SMTP email, multipart (plain text and HTML) with the unsubscribe headers. The SMTP hook's
    own send builds HTML-only messages, so its logged-in client sends the composed message."""

    name = "email"
    medium = "email"
    batch_size = 1

    def __init__(self, smtp: SmtpHook, params: dict[str, Any]) -> None:
        # The hook's logged-in smtplib client (`_smtp_client`; `smtp_client` in older releases
        # of the SMTP provider): TLS, login and timeouts stay the connection's.
        client = getattr(smtp, "_smtp_client", None) or getattr(smtp, "smtp_client", None)
        if client is None:
            raise AirflowException("smtp_conn_id: the SMTP hook has no connected client")
        self.client: Any = client
        self.render, self.unsubscribe = _brand_message(params)
        self.from_email = params["from_email"]

    def send(self, batch: list[Reminder]) -> None:
        for reminder in batch:
            rendered, _ = self.render(reminder)
            headers = {
                **self.unsubscribe.headers(reminder.customer_id),
                "X-Neo-Reminder-Key": reminder.key,
            }
            message = compose_email(reminder, rendered, from_email=self.from_email, headers=headers)
            self.client.send_message(message)


@contextmanager
def _channel(params: dict[str, Any]) -> Iterator[ReminderChannel]:
    """The channel of `params`, open for the time of one delivery."""
    if params["channel"] == "email":
        with SmtpHook(params["smtp_conn_id"]) as smtp:
            yield _EmailChannel(smtp, params)
    elif params["channel"] == "neo_message":
        with NeoHook(params["neo_conn_id"]) as hook:
            yield NeoMessageChannel(
                hook, medium=params["neo_message_channel"], render=_brand_message(params)[0],
                from_email=params["from_email"], sms_sender=params["sms_sender"],
            )  # fmt: skip
    else:
        options: dict[str, Any] = {
            "render": _brand_message(params)[0], "batch_size": params["webhook_batch_size"]
        }  # fmt: skip
        if params["webhook_url"]:
            webhook = WebhookChannel(params["webhook_url"], **options)
        elif params["webhook_conn_id"]:
            webhook = WebhookChannel.from_connection(params["webhook_conn_id"], **options)
        else:
            raise AirflowException("channel webhook: set webhook_url or webhook_conn_id")
        try:
            yield webhook
        finally:
            webhook.close()


def _write_reminder_list(
    url: str, found: Iterable[dict[str, Any]], writer: str | None
) -> dict[int, dict[str, Any]]:
    decoder = msgspec.json.Decoder(Reminder)
    per_lead: dict[int, dict[str, Any]] = {}
    with atomic_csv(url, CSV_COLUMNS, writer=writer) as rows:
        for shard in sorted(found, key=lambda item: item["index"]):
            for line in byte_lines(shard["path"]):
                if not line.strip():
                    continue
                r = decoder.decode(line)
                rows.writerow(
                    [r.customer_id, r.email, r.first_name, r.lead_days,
                     r.expiry_date.isoformat(), str(r.remaining_points),
                     json.dumps({k: str(v) for k, v in r.programs.items()})]
                )  # fmt: skip
                lead = per_lead.setdefault(r.lead_days, {"customers": 0, "points": Decimal(0)})
                lead["customers"] += 1
                lead["points"] += r.remaining_points
    return per_lead


neo_points_expiry_reminder()
