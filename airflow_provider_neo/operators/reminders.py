"""Operators for each step of the points-expiry reminder workflow.

A day's run: `ExpiryDaysOperator` (which expiry days to remind, catch-up included) and
`SplitCustomersOperator` (the CRM extract checked, in shard files), then per shard
`FindRemindersOperator` (who to remind, from Neo) and `DeliverRemindersOperator` (exactly once
on a channel, through the sent-ledger), and `PublishRemindersOperator` (the day's list, totals
and failed shards; the days marked reminded only when every shard delivered).
`ExpiryReminderTaskGroup` (`airflow_provider_neo.task_groups.reminders`) chains them in one call.

Every argument is a template field, so a DAG can take it from its params
(``"{{ params.holdout_share }}"``); values that come rendered as text (numbers, lists) are
converted, and each is checked when the DAG is parsed if it is not a template, else when the
task runs, with an error naming the argument. Arguments that name a location (`location_fields`:
files, folders, the ledger, connections; and those of the channels and the message) cannot be
set through a triggered run's conf unless the DAG author lists the param in `conf_may_set`
(`airflow_provider_neo.operators.trust`). Files live under `output_dir`, any
ObjectStoragePath (``file://``, ``s3://``, ...) every worker reaches; XCom carries only paths and
counts.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    ObjectStoragePath,
    conf,
)

from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.operators.trust import TrustBoundaryOperator
from airflow_provider_neo.records import JSON_ENCODER
from airflow_provider_neo.reminders.audience import Consent, in_holdout
from airflow_provider_neo.reminders.channels.base import ReminderChannel
from airflow_provider_neo.reminders.crm import RowError
from airflow_provider_neo.reminders.delivery import deliver_batches, retry_series, task_try_owner
from airflow_provider_neo.reminders.discovery import find_reminders
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
from airflow_provider_neo.reminders.shards import read_shard, split_extract
from airflow_provider_neo.reminders.suppression import SuppressionIndex
from airflow_provider_neo.utils.files import byte_lines
from airflow_provider_neo.utils.output import atomic_open, task_writer
from airflow_provider_neo.utils.windows import local_day, run_anchor
from airflow_provider_neo.validation import flag, number

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


class LedgerArguments:
    """The sent-ledger's location: a SQLite file (`ledger_path`, one machine), or a database
    reached by an Airflow connection (`ledger_conn_id`, e.g. PostgreSQL, for workers on several
    hosts; when set, `ledger_path` is not used)."""

    ledger_path: str | None
    ledger_conn_id: str | None

    def open_ledger(self) -> SentLedger:
        return SentLedger.open(path=self.ledger_path or None, conn_id=self.ledger_conn_id or None)


class ExpiryDaysOperator(LedgerArguments, TrustBoundaryOperator):
    """Per lead time, the expiry days a run reminds: the day the lead time points at (from the
    run's data interval end, in the organisation's time zone) and the days missed since the
    last one reminded completely, at most `catch_up_days` back.

    XCom: ``{"<lead>": ["<expiry day>", ...]}``.
    """

    template_fields: Sequence[str] = (
        "lead_times", "catch_up_days", "ledger_path", "ledger_conn_id", "neo_conn_id",
    )  # fmt: skip
    location_fields: Sequence[str] = ("ledger_path", "ledger_conn_id", "neo_conn_id")
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


class SplitCustomersOperator(TrustBoundaryOperator):
    """The CRM extract checked row by row and split into shard files under the run's folder in
    `output_dir`, one mapped instance of the shard group each.

    Every row is checked as `airflow_provider_neo.reminders.crm` says (columns matched ignoring
    case and surrounding spaces; ids, addresses, mobile numbers and consent values each by a
    documented rule). A file-level error (no file, no ``customer_id`` or ``email`` column, a
    header that is not UTF-8) fails this task at once. A bad row is refused alone: written with
    its file, line, column and reason to ``rejects.csv`` beside the shards, counted in the
    ``rows`` XCom, and left out of the shards, whose customers are reminded as usual.

    :param customers_path: the CRM extract, a CSV at any ObjectStoragePath.
    :param output_dir: the folder of the run's files (``runs/<run id>/shards/`` here).
    :param shard_size: customers per shard (500), grown to ``ceil(customers / max_shards)``
        when the extract needs more shards than that.
    :param max_shards: the most shards, i.e. mapped instances of the shard group; never more
        than ``[core] max_map_length`` (1,024 by default), read from the deployment's config
        when the task runs, which is also the default.
    :param suppression_path: the suppression list: its index, which the deliveries check, is
        built here once (and again by a delivery only if the list changed since).
    :param international_email: take internationalised (non-ASCII, RFC 6531) addresses; only
        for channels whose server takes them (SMTPUTF8). Off: such an address refuses its row.

    XCom: one ``{"index", "path", "customers"}`` per shard, to map the shards' tasks over; and
    under the key ``rows``: ``{"rows", "customers", "rejected_rows", "rejects_path",
    "rejects"}`` (the first rejects, each ``{"param", "file", "line", "column", "reason"}``).
    """

    template_fields: Sequence[str] = (
        "customers_path", "output_dir", "shard_size", "max_shards", "suppression_path",
        "international_email",
    )  # fmt: skip
    location_fields: Sequence[str] = ("customers_path", "output_dir", "suppression_path")
    ui_color = "#cde4f7"

    def __init__(
        self,
        *,
        customers_path: str,
        output_dir: str,
        shard_size: Any = 500,
        max_shards: Any = None,
        suppression_path: str | None = None,
        international_email: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not templated(shard_size):
            parse_count("shard_size", shard_size, minimum=1)
        if max_shards is not None and not templated(max_shards):
            parse_count("max_shards", max_shards, minimum=1)
        if not templated(international_email):
            flag("international_email", international_email)
        self.customers_path = customers_path
        self.output_dir = output_dir
        self.shard_size = shard_size
        self.max_shards = max_shards
        self.suppression_path = suppression_path
        self.international_email = international_email

    def shard_limit(self) -> int:
        """How many shards at most: Airflow refuses to map more than ``max_map_length``."""
        limit = int(conf.getint("core", "max_map_length"))
        if self.max_shards is not None and str(self.max_shards).strip():
            limit = min(limit, parse_count("max_shards", self.max_shards, minimum=1))
        return limit

    def execute(self, context: Any) -> list[dict[str, Any]]:
        size = parse_count("shard_size", self.shard_size, minimum=1)
        limit = self.shard_limit()
        run = run_folder(self.output_dir, context["run_id"])
        writer = task_writer(context)
        if self.suppression_path:  # first: a list that cannot be read stops the run now
            SuppressionIndex.current(self.suppression_path, run / "suppression", writer=writer)
        split = split_extract(
            self.customers_path, run / "shards", shard_size=size, max_shards=limit,
            international_email=flag("international_email", self.international_email),
            writer=writer,
        )  # fmt: skip
        if "ti" in context:
            context["ti"].xcom_push(key="rows", value=split.rows_summary())
        self.log.info(
            "%d customers in %d shards of up to %d (shard_size %d, at most %d shards)",
            split.customers, len(split.shards), split.shard_size, size, limit,
        )  # fmt: skip
        if split.rejected_rows:
            self.log.warning(
                "%d of %d rows of customers_path refused, listed in %s; the first: %s",
                split.rejected_rows, split.rows, split.rejects_path,
                "; ".join(str(msgspec.convert(r, RowError)) for r in split.rejects),
            )  # fmt: skip
        return split.shards


class FindRemindersOperator(TrustBoundaryOperator):
    """The reminders of one shard: for each lead time and expiry day of `expiry_days`, the
    customers with at least `min_points` AVAILABLE points expiring that day, summed over
    `programs`, via Neo's batched paIds endpoint. Written as NDJSON under the run's folder;
    XCom: ``{"index", "path", "shard", "customers", "reminders", "requests"}``.

    Neo may be briefly down or rate-limited: by default the task retries 3 times with
    exponential backoff from ``[core] default_task_retry_delay``, which outlasts a rate-limit
    window (the hook itself waits out 429s within a try).
    """

    template_fields: Sequence[str] = (
        "shard", "expiry_days", "programs", "min_points", "output_dir", "neo_conn_id",
    )  # fmt: skip
    location_fields: Sequence[str] = ("output_dir", "neo_conn_id")
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
        customers = read_shard(shard["path"])
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
            "shard": shard["path"],  # the customers' consent, which delivery reads
            "customers": len(customers),
            "reminders": len(reminders),
            "requests": hook.stats.requests,
        }


class DeliverRemindersOperator(LedgerArguments, TrustBoundaryOperator):
    """Deliver one shard's reminders (`found`, the output of `FindRemindersOperator`) on a
    channel, each exactly once whatever retries or other runners, skipping who opted out and
    recording the holdout.

    Consent comes from the shard's own rows and the suppression list's index, never from the
    whole extract: the opt-in columns (``email_opt_in``, ``sms_opt_in``) as the split read them
    from the CRM extract (``found["shard"]``), and the suppression list as it is when delivery
    starts (an opt-out added after the split counts).

    :param channel: a `ReminderChannel` (the provider's or a brand's own), or the name of one
        of `channels` (templated: ``"{{ params.channel }}"`` lets a run choose).
    :param message: the brand's `ReminderMessage` (templates, subject, unsubscribe link).
    :param suppression_path: a list of customer ids never to message (CSV with a
        ``customer_id`` column, or NDJSON). Its index in the run's folder of `output_dir` is
        used if the list has not changed since it was built (by the split), else built anew.
    :param output_dir: the folder of the run's files; needed with `suppression_path`.
    :param holdout_share: the share of customers (0 to 1) held out: chosen by a hash of
        `holdout_salt` and the customer id, recorded in the ledger with their points at stake,
        never messaged; the comparison group of `ReminderEffectivenessOperator`.
    :param claim_lease_seconds: how long a claim keeps other runners off a reminder before it
        counts as abandoned (its runner died) and is taken over. It must be longer than the
        channel's `send_deadline_seconds`, if it has one: else a batch still being sent could be
        taken over and sent twice.

    A reminder the channel refuses for good (`RejectedReminders`: a 5xx from the mail server, an
    address it cannot take) fails alone: recorded in the ledger as failed with the reason,
    counted and listed, while the rest are delivered and the task succeeds; the publish step
    then fails the run naming it. The task's own retries leave it alone; a new run, or the task
    cleared, sends it. Any other failure fails the task, and its retry sends what is left.

    XCom: ``{"index", "channel", "sent", "suppressed", "held_out", "already_sent",
    "sent_by_another_runner", "taken_over", "lease_lost", "failed", "pruned",
    "failed_reminders", "customers_read", "suppression_index_built"}``; ``failed_reminders``
    lists the first 100 as ``{"key", "reason"}``; ``customers_read`` and
    ``suppression_index_built`` say the shard's rows read for consent, and whether the list had
    changed since the split, so that this delivery read it whole.
    """

    template_fields: Sequence[str] = (
        "found", "channel", "channels", "message", "suppression_path", "output_dir",
        "holdout_share", "holdout_salt", "claim_lease_seconds", "ledger_path", "ledger_conn_id",
    )  # fmt: skip
    # The channel's and the message's own locations are declared on them.
    location_fields: Sequence[str] = (
        "suppression_path", "output_dir", "ledger_path", "ledger_conn_id",
    )  # fmt: skip
    ui_color = "#b5e2b5"

    def __init__(
        self,
        *,
        found: Any,
        channel: ReminderChannel | str,
        message: ReminderMessage,
        channels: Mapping[str, ReminderChannel] | None = None,
        suppression_path: str | None = None,
        output_dir: str | None = None,
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
        if suppression_path and not output_dir:
            raise ValueError("output_dir: needed with suppression_path (where its index lives)")
        if not templated(claim_lease_seconds):
            number("claim_lease_seconds", claim_lease_seconds, minimum=1, integer=False)
        self.found = found
        self.channel = channel
        self.channels = dict(channels or {})
        self.message = message
        self.suppression_path = suppression_path
        self.output_dir = output_dir
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
        if not found.get("shard"):
            # Without the shard's rows the opt-in columns are unknown: never guess consent.
            raise ValueError(
                "found: names no 'shard' (the shard file FindRemindersOperator read), so the"
                " customers' opt-in columns are unknown"
            )
        customers = read_shard(found["shard"])
        ledger = self.open_ledger()
        try:
            with channel:
                deadline = channel.send_deadline_seconds
                if deadline is not None and deadline >= lease:
                    raise AirflowFailException(
                        f"claim_lease_seconds: {lease:g} s is not longer than the {channel.name}"
                        f" channel's deadline for one batch ({deadline:g} s): a batch still being"
                        " sent could be taken over and sent twice; raise claim_lease_seconds or"
                        " lower the channel's timeout"
                    )
                suppression, built = self.suppression_index(context)
                consent = Consent.of(
                    medium=channel.medium,
                    customers=customers,
                    customer_ids=(reminder.customer_id for reminder in reminders),
                    suppression=suppression,
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
        return {
            "index": found["index"], "channel": channel.name, **msgspec.to_builtins(delivery),
            "customers_read": len(customers), "suppression_index_built": built,
        }  # fmt: skip

    def suppression_index(self, context: Any) -> tuple[SuppressionIndex | None, bool]:
        """The suppression list's index as the list is now, and whether it was built here."""
        if not self.suppression_path:
            return None, False
        if not self.output_dir:
            raise ValueError("output_dir: needed with suppression_path (where its index lives)")
        folder = run_folder(self.output_dir, context["run_id"]) / "suppression"
        return SuppressionIndex.current(self.suppression_path, folder, writer=task_writer(context))


class PublishRemindersOperator(LedgerArguments, TrustBoundaryOperator):
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

    `find_task_id` and `deliver_task_id` are the shards' mapped tasks, read per map index;
    `split_task_id` the split, whose count of refused CRM rows the summary lists (and which
    fail the run, as a refused reminder does). XCom: the summary.
    """

    template_fields: Sequence[str] = (
        "expiry_days", "shards", "output_dir", "ledger_path", "ledger_conn_id", "prune_after_days",
    )  # fmt: skip
    location_fields: Sequence[str] = ("output_dir", "ledger_path", "ledger_conn_id")
    ui_color = "#cde4f7"

    def __init__(
        self,
        *,
        expiry_days: Any,
        shards: Any,
        output_dir: str,
        find_task_id: str,
        deliver_task_id: str,
        split_task_id: str | None = None,
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
        self.split_task_id = split_task_id
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
        rows = ti.xcom_pull(task_ids=self.split_task_id, key="rows") if self.split_task_id else None
        summary = day_summary(
            reminder_list=reminder_list, expiry_days=days, per_lead=per_lead, shards=shards,
            found=found, delivered=delivered, rows=rows,
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
