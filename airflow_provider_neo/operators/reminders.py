"""Operators for each step of the points-expiry reminder workflow.

A day's run: `ExpiryDaysOperator` (which expiry days to remind, catch-up included) and
`SplitCustomersOperator` (the CRM extract in shard files), then per shard
`FindRemindersOperator` (who to remind, from Neo) and `DeliverRemindersOperator` (exactly once
on a channel, through the sent-ledger), and `PublishRemindersOperator` (the day's list, totals
and failed shards; the days marked reminded only when every shard delivered).
`ExpiryReminderTaskGroup` (`airflow_provider_neo.task_groups.reminders`) chains them in one call.

Every argument is a template field, so a DAG can take it from its params
(``"{{ params.holdout_share }}"``); values that come rendered as text (numbers, lists) are
converted, and each is checked when the DAG is parsed if it is not a template, else when the
task runs, with an error naming the argument. Files live under `output_dir`, any
ObjectStoragePath (``file://``, ``s3://``, ...) every worker reaches; XCom carries only paths and
counts.
"""

from __future__ import annotations

import ast
import copy
import csv
import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from airflow.providers.common.compat.sdk import AirflowException, BaseOperator, ObjectStoragePath

from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.records import JSON_ENCODER
from airflow_provider_neo.reminders.audience import Consent, in_holdout
from airflow_provider_neo.reminders.channels.base import ReminderChannel
from airflow_provider_neo.reminders.delivery import deliver_batches, retry_series, task_try_owner
from airflow_provider_neo.reminders.discovery import find_reminders, read_customers
from airflow_provider_neo.reminders.ledger import DEFAULT_LEASE_SECONDS, SentLedger
from airflow_provider_neo.reminders.message import ReminderMessage
from airflow_provider_neo.reminders.model import ProgramCategory, Reminder
from airflow_provider_neo.reminders.publishing import (
    check_all_delivered,
    day_summary,
    write_reminder_list,
)
from airflow_provider_neo.reminders.scheduling import (
    days_from_json,
    days_to_json,
    expiry_days_to_remind,
    run_day,
)
from airflow_provider_neo.utils.files import byte_lines, text_lines
from airflow_provider_neo.utils.output import atomic_csv, atomic_open, task_writer
from airflow_provider_neo.utils.windows import local_day, run_anchor
from airflow_provider_neo.validation import number

SHARD_COLUMNS = ("customer_id", "email", "first_name", "mobile")
DEFAULT_PROGRAMS = (
    {"program_id": 2282, "point_category_id": 17383},
    {"program_id": 3379, "point_category_id": 40022},
    {"program_id": 3379, "point_category_id": 40023},
)


def templated(value: Any) -> bool:
    """Whether `value` is known only when the task runs: a Jinja string, an XCom or a mapped
    task group's argument."""
    return (isinstance(value, str) and "{{" in value) or hasattr(value, "resolve")


def structured(name: str, value: Any) -> Any:
    """A list or mapping as given, or as Airflow renders one into text (``[30, 7, 1]``)."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f"{name}: expected a list or mapping, got {value!r}") from None
    return value


def parse_lead_times(value: Any) -> list[int]:
    leads = structured("lead_times", value)
    if not isinstance(leads, (list, tuple)) or not leads:
        raise ValueError(f"lead_times: expected a list of days ahead, got {value!r}")
    return [number("lead_times", lead, minimum=0, integer=True) for lead in leads]


def parse_programs(value: Any) -> list[ProgramCategory]:
    given = structured("programs", value)
    try:
        return msgspec.convert(list(given), list[ProgramCategory], strict=False)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ValueError(
            f"programs: expected a list of {{program_id, point_category_id}}, got {value!r} ({exc})"
        ) from None


def parse_count(name: str, value: Any, minimum: int = 0) -> int:
    return int(number(name, value, minimum=minimum, integer=True))


def parse_share(name: str, value: Any) -> float:
    fraction = float(number(name, value, minimum=0, integer=False))
    if fraction > 1:
        raise ValueError(f"{name}: expected a share from 0 to 1, got {value!r}")
    return fraction


def parse_retention(value: Any) -> int | None:
    """`prune_after_days`: a number of days (at least 1), or nothing (None, "") to keep all."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_count("prune_after_days", value, minimum=1)


def run_folder(output_dir: str, run_id: str) -> ObjectStoragePath:
    """Where one run's shard files live: under the output folder every worker reads."""
    return ObjectStoragePath(output_dir) / "runs" / re.sub(r"[^\w.-]+", "_", run_id)


class _LedgerArguments:
    """The sent-ledger's location: a SQLite file (`ledger_path`, one machine), or a database
    reached by an Airflow connection (`ledger_conn_id`, e.g. PostgreSQL, for workers on several
    hosts; when set, `ledger_path` is not used)."""

    ledger_path: str | None
    ledger_conn_id: str | None

    def open_ledger(self) -> SentLedger:
        return SentLedger.open(path=self.ledger_path or None, conn_id=self.ledger_conn_id or None)


class ExpiryDaysOperator(_LedgerArguments, BaseOperator):
    """Per lead time, the expiry days a run reminds: the day the lead time points at (from the
    run's data interval end, in the organisation's time zone) and the days missed since the
    last one reminded completely, at most `catch_up_days` back.

    XCom: ``{"<lead>": ["<expiry day>", ...]}``.
    """

    template_fields: Sequence[str] = (
        "lead_times", "catch_up_days", "ledger_path", "ledger_conn_id", "neo_conn_id",
    )  # fmt: skip
    ui_color = "#cde4f7"

    def __init__(
        self,
        *,
        lead_times: Any = (30, 7, 1),
        catch_up_days: Any = 3,
        ledger_path: str | None = None,
        ledger_conn_id: str | None = None,
        neo_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not templated(lead_times):
            parse_lead_times(lead_times)
        if not templated(catch_up_days):
            parse_count("catch_up_days", catch_up_days)
        self.lead_times = lead_times
        self.catch_up_days = catch_up_days
        self.ledger_path = ledger_path
        self.ledger_conn_id = ledger_conn_id
        self.neo_conn_id = neo_conn_id

    def execute(self, context: Any) -> dict[str, list[str]]:
        timezone = NeoHook(self.neo_conn_id).settings.timezone
        ledger = self.open_ledger()
        try:
            days = expiry_days_to_remind(
                ledger,
                anchor_day=local_day(run_anchor(context), timezone),
                lead_days=parse_lead_times(self.lead_times),
                catch_up_days=parse_count("catch_up_days", self.catch_up_days),
            )
        finally:
            ledger.close()
        return days_to_json(days)


class SplitCustomersOperator(BaseOperator):
    """The CRM extract (a CSV of ``customer_id,email,first_name`` and optionally ``mobile``, at
    any ObjectStoragePath) split into shard files of `shard_size` customers under the run's
    folder in `output_dir`, streamed. XCom: one ``{"index", "path", "customers"}`` per shard,
    to map the shards' tasks over."""

    template_fields: Sequence[str] = ("customers_path", "output_dir", "shard_size")
    ui_color = "#cde4f7"

    def __init__(
        self, *, customers_path: str, output_dir: str, shard_size: Any = 500, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not templated(shard_size):
            parse_count("shard_size", shard_size, minimum=1)
        self.customers_path = customers_path
        self.output_dir = output_dir
        self.shard_size = shard_size

    def execute(self, context: Any) -> list[dict[str, Any]]:
        size = parse_count("shard_size", self.shard_size, minimum=1)
        folder = run_folder(self.output_dir, context["run_id"]) / "shards"
        writer = task_writer(context)
        shards: list[dict[str, Any]] = []
        rows: list[list[str]] = []

        def flush() -> None:
            url = str(folder / f"shard-{len(shards):05d}.csv")
            with atomic_csv(url, SHARD_COLUMNS, writer=writer) as shard_file:
                shard_file.writerows(rows)
            shards.append({"index": len(shards), "path": url, "customers": len(rows)})
            rows.clear()

        lines = text_lines(self.customers_path, argument="customers_path")
        for row in csv.DictReader(lines):
            rows.append([row.get(column) or "" for column in SHARD_COLUMNS])
            if len(rows) == size:
                flush()
        if rows:
            flush()
        self.log.info(
            "%d customers in %d shards of up to %d",
            sum(shard["customers"] for shard in shards),
            len(shards),
            size,
        )
        return shards


class FindRemindersOperator(BaseOperator):
    """The reminders of one shard: for each lead time and expiry day of `expiry_days`, the
    customers with at least `min_points` AVAILABLE points expiring that day, summed over
    `programs`, via Neo's batched paIds endpoint. Written as NDJSON under the run's folder;
    XCom: ``{"index", "path", "customers", "reminders", "requests"}``.

    Neo may be briefly down or rate-limited: by default the task retries 3 times with
    exponential backoff from ``[core] default_task_retry_delay``, which outlasts a rate-limit
    window (the hook itself waits out 429s within a try).
    """

    template_fields: Sequence[str] = (
        "shard", "expiry_days", "programs", "min_points", "output_dir", "neo_conn_id",
    )  # fmt: skip
    ui_color = "#f4d35e"

    def __init__(
        self,
        *,
        shard: Any,
        expiry_days: Any,
        output_dir: str,
        programs: Any = DEFAULT_PROGRAMS,
        min_points: Any = 1,
        neo_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 3)
        kwargs.setdefault("retry_exponential_backoff", True)
        super().__init__(**kwargs)
        if not templated(programs):
            parse_programs(programs)
        if not templated(min_points):
            number("min_points", min_points, minimum=0, integer=False)
        self.shard = shard
        self.expiry_days = expiry_days
        self.output_dir = output_dir
        self.programs = programs
        self.min_points = min_points
        self.neo_conn_id = neo_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        shard = structured("shard", self.shard)
        customers = list(
            read_customers(csv.DictReader(text_lines(shard["path"], argument="shard")))
        )
        hook = NeoHook(self.neo_conn_id)
        reminders = find_reminders(
            hook,
            customers,
            programs=parse_programs(self.programs),
            expiry_days=days_from_json(structured("expiry_days", self.expiry_days)),
            min_points=Decimal(
                str(number("min_points", self.min_points, minimum=0, integer=False))
            ),
        )
        folder = run_folder(self.output_dir, context["run_id"]) / "reminders"
        url = str(folder / f"shard-{shard['index']:05d}.ndjson")
        with atomic_open(url, writer=task_writer(context)) as handle:
            for reminder in reminders:
                handle.write(JSON_ENCODER.encode(reminder) + b"\n")
        return {
            "index": shard["index"],
            "path": url,
            "customers": len(customers),
            "reminders": len(reminders),
            "requests": hook.stats.requests,
        }


class DeliverRemindersOperator(_LedgerArguments, BaseOperator):
    """Deliver one shard's reminders (`found`, the output of `FindRemindersOperator`) on a
    channel, each exactly once whatever retries or other runners, skipping who opted out and
    recording the holdout.

    :param channel: a `ReminderChannel` (the provider's or a brand's own), or the name of one
        of `channels` (templated: ``"{{ params.channel }}"`` lets a run choose).
    :param message: the brand's `ReminderMessage` (templates, subject, unsubscribe link).
    :param customers_path: the CRM extract, read for its opt-in columns (``email_opt_in``,
        ``sms_opt_in``) when delivery starts, so that the latest opt-outs count.
    :param suppression_path: a list of customer ids never to message (CSV with a
        ``customer_id`` column, or NDJSON), read when delivery starts.
    :param holdout_share: the share of customers (0 to 1) held out: chosen by a hash of
        `holdout_salt` and the customer id, recorded in the ledger with their points at stake,
        never messaged; the comparison group of `ReminderEffectivenessOperator`.
    :param claim_lease_seconds: how long a claim keeps other runners off a reminder before it
        counts as abandoned (its runner died) and is taken over.

    A reminder the channel refuses for good (`RejectedReminders`: a 5xx from the mail server, an
    address it cannot take) fails alone: recorded in the ledger as failed with the reason,
    counted and listed, while the rest are delivered and the task succeeds; the publish step
    then fails the run naming it. The task's own retries leave it alone; a new run, or the task
    cleared, sends it. Any other failure fails the task, and its retry sends what is left.

    XCom: ``{"index", "channel", "sent", "suppressed", "held_out", "already_sent",
    "sent_by_another_runner", "taken_over", "lease_lost", "failed", "pruned",
    "failed_reminders"}``; ``failed_reminders`` lists the first 100 as ``{"key", "reason"}``.
    """

    template_fields: Sequence[str] = (
        "found", "channel", "channels", "message", "customers_path", "suppression_path",
        "holdout_share", "holdout_salt", "claim_lease_seconds", "ledger_path", "ledger_conn_id",
    )  # fmt: skip
    ui_color = "#b5e2b5"

    def __init__(
        self,
        *,
        found: Any,
        channel: ReminderChannel | str,
        message: ReminderMessage,
        channels: Mapping[str, ReminderChannel] | None = None,
        customers_path: str | None = None,
        suppression_path: str | None = None,
        holdout_share: Any = 0,
        holdout_salt: str = "neo-reminders",
        claim_lease_seconds: Any = DEFAULT_LEASE_SECONDS,
        ledger_path: str | None = None,
        ledger_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=5))
        super().__init__(**kwargs)
        if isinstance(channel, str) and not templated(channel):
            if channel not in (channels or {}):
                raise ValueError(
                    f"channel: {channel!r} is not one of channels {sorted(channels or {})}"
                )
        elif not isinstance(channel, (str, ReminderChannel)):
            raise TypeError(f"channel: expected a ReminderChannel or a name, got {channel!r}")
        if not templated(holdout_share):
            parse_share("holdout_share", holdout_share)
        if not templated(claim_lease_seconds):
            number("claim_lease_seconds", claim_lease_seconds, minimum=1, integer=False)
        self.found = found
        self.channel = channel
        self.channels = dict(channels or {})
        self.message = message
        self.customers_path = customers_path
        self.suppression_path = suppression_path
        self.holdout_share = holdout_share
        self.holdout_salt = holdout_salt
        self.claim_lease_seconds = claim_lease_seconds
        self.ledger_path = ledger_path
        self.ledger_conn_id = ledger_conn_id

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Airflow renders a channel's and the message's fields in place: render copies, so
        # that mapped instances and later runs never see one another's values.
        self.channel = copy.deepcopy(self.channel)
        self.channels = copy.deepcopy(self.channels)
        self.message = copy.deepcopy(self.message)
        super().render_template_fields(context, jinja_env)

    def chosen_channel(self) -> ReminderChannel:
        if isinstance(self.channel, ReminderChannel):
            return self.channel
        if self.channel not in self.channels:
            raise AirflowException(
                f"channel: {self.channel!r} is not one of channels {sorted(self.channels)}"
            )
        return self.channels[self.channel]

    def execute(self, context: Any) -> dict[str, Any]:
        found = structured("found", self.found)
        decoder = msgspec.json.Decoder(Reminder)
        reminders = [decoder.decode(line) for line in byte_lines(found["path"]) if line.strip()]
        channel = self.chosen_channel()
        holdout = parse_share("holdout_share", self.holdout_share)
        lease = float(
            number("claim_lease_seconds", self.claim_lease_seconds, minimum=1, integer=False)
        )
        composer = self.message.composer()
        ledger = self.open_ledger()
        try:
            with channel:
                consent = Consent.read(
                    medium=channel.medium,
                    customers_path=self.customers_path or None,
                    suppression_path=self.suppression_path or None,
                )
                delivery = deliver_batches(
                    reminders,
                    ledger,
                    lambda batch: channel.send([composer.compose(r) for r in batch]),
                    batch_size=parse_count("batch_size", channel.batch_size, minimum=1),
                    owner=task_try_owner(context),
                    channel=channel.name,
                    lease_seconds=lease,
                    suppressed=lambda r: not (consent.allows(r.customer_id) and channel.reaches(r)),
                    held_out=lambda r: in_holdout(
                        r.customer_id, share=holdout, salt=self.holdout_salt
                    ),
                    stake=lambda r: r.programs,
                    series=retry_series(context),
                )
        finally:
            ledger.close()
        if delivery.failed:
            self.log.warning(
                "%d reminders refused for good, recorded as failed: %s",
                delivery.failed,
                ", ".join(f"{f.key} ({f.reason})" for f in delivery.failed_reminders),
            )
        return {"index": found["index"], "channel": channel.name, **msgspec.to_builtins(delivery)}


class PublishRemindersOperator(_LedgerArguments, BaseOperator):
    """The day's result, whatever happened to the shards (it runs ``all_done``): the list of
    the reminders found as one CSV (``reminders/<ds>.csv`` under `output_dir`), the run's
    totals beside it (``reminders/<ds>.summary.json``, and in the task log), and the failed
    shards and the reminders refused for good named. Then it fails if any shard failed or any
    reminder was refused; otherwise it records the expiry days as reminded, so that later runs
    do not catch them up.

    :param prune_after_days: the ledger's retention (default: keep everything). After the files
        are written, every reminder whose expiry day is more than this many days before the
        run's day is pruned from the sent-ledger, with its points at stake (the effectiveness
        report measures the expiry days kept), and so are the reminded days of that age but each
        lead time's latest; those days are closed: a re-run of an old date never sends their
        reminders. See `SentLedger.prune`.

    `find_task_id` and `deliver_task_id` are the shards' mapped tasks, read per map index.
    XCom: the summary.
    """

    template_fields: Sequence[str] = (
        "expiry_days", "shards", "output_dir", "ledger_path", "ledger_conn_id", "prune_after_days",
    )  # fmt: skip
    ui_color = "#cde4f7"

    def __init__(
        self,
        *,
        expiry_days: Any,
        shards: Any,
        output_dir: str,
        find_task_id: str,
        deliver_task_id: str,
        ledger_path: str | None = None,
        ledger_conn_id: str | None = None,
        prune_after_days: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        if not templated(prune_after_days):
            parse_retention(prune_after_days)
        self.prune_after_days = prune_after_days
        self.expiry_days = expiry_days
        self.shards = shards
        self.output_dir = output_dir
        self.find_task_id = find_task_id
        self.deliver_task_id = deliver_task_id
        self.ledger_path = ledger_path
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        shards = structured("shards", self.shards)
        days = structured("expiry_days", self.expiry_days)
        found: dict[int, dict[str, Any]] = {}
        delivered: dict[int, dict[str, Any]] = {}
        for shard in shards:
            index = shard["index"]
            for results, task_id in ((found, self.find_task_id), (delivered, self.deliver_task_id)):
                result = ti.xcom_pull(task_ids=task_id, map_indexes=index)
                if result:
                    results[index] = result
        folder = ObjectStoragePath(self.output_dir) / "reminders"
        ds = context["ds"]
        writer = task_writer(context)
        reminder_list = str(folder / f"{ds}.csv")
        per_lead = write_reminder_list(reminder_list, found.values(), writer=writer)
        summary = day_summary(
            reminder_list=reminder_list, expiry_days=days, per_lead=per_lead, shards=shards,
            found=found, delivered=delivered,
        )  # fmt: skip
        # The run's result for whoever reads it next (make demo, a monitoring job), beside the
        # list, written whole; the log line says the same for a reader of the task log.
        with atomic_open(str(folder / f"{ds}.summary.json"), writer=writer) as handle:
            handle.write(json.dumps(summary, indent=2).encode() + b"\n")
        print(f"Expiry reminders: {json.dumps(summary)}")
        reminded = days_from_json(days)
        retention = parse_retention(self.prune_after_days)
        if retention is not None:
            # Also when the day failed: what is pruned never depends on this run's outcome.
            ledger = self.open_ledger()
            try:
                pruned = ledger.prune(before=run_day(reminded) - timedelta(days=retention))
            finally:
                ledger.close()
            print(f"Sent-ledger pruned: {json.dumps(msgspec.to_builtins(pruned))}")
        check_all_delivered(summary, shards)
        ledger = self.open_ledger()
        try:
            ledger.mark_days_reminded(
                [(lead, day) for lead, dates in reminded.items() for day in dates],
                run_id=context["run_id"],
            )
        finally:
            ledger.close()
        return summary
