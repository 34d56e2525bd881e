"""The day's result: the list of reminders found, the run's totals, which shards failed and
which reminders the far side refused for good.

The rule that makes catch-up safe lives here: the expiry days of a run count as reminded only
when every shard delivered every reminder. A run with a failed shard, or with reminders refused
for good (an address the mail server refuses), publishes what the others did, names the failed
shards and reminders and fails, so that it is seen and re-run (a re-run sends exactly what is
missing, once the addresses are fixed), and the next run catches its days up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec

from airflow_provider_neo.reminders.model import Reminder
from airflow_provider_neo.utils.files import byte_lines
from airflow_provider_neo.utils.output import atomic_csv

REMINDER_LIST_COLUMNS: Final = (
    "customer_id", "email", "first_name", "lead_days", "expiry_date", "remaining_points",
    "programs",
)  # fmt: skip
# What a delivered shard counts, summed over the shards into the day's summary.
DELIVERY_COUNTS: Final = (
    "suppressed", "held_out", "already_sent", "sent_by_another_runner", "taken_over", "failed",
    "pruned",
)  # fmt: skip
# Failed reminders the summary lists (all are counted): it is also the publish task's XCom.
LISTED_FAILURES: Final = 100


class ShardsFailed(Exception):
    """Some shards did not deliver; the others did, and the day's files say so."""


class RemindersFailed(Exception):
    """The far side refused some reminders for good; the rest were delivered, and the day's
    files name them."""


def failed_shards(
    shards: Sequence[Mapping[str, Any]],
    found: Mapping[int, Mapping[str, Any]],
    delivered: Mapping[int, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Each shard without a delivery result, and the step it stopped in."""
    return [
        {"shard": shard["index"], "failed_in": "send" if shard["index"] in found else "find"}
        for shard in shards
        if shard["index"] not in delivered
    ]


def write_reminder_list(
    url: str, found: Iterable[Mapping[str, Any]], *, writer: str | None = None
) -> dict[int, dict[str, Any]]:
    """The reminders the shards found (their NDJSON files, in shard order) as one CSV at `url`;
    per lead time, the customers and points at stake."""
    decoder = msgspec.json.Decoder(Reminder)
    per_lead: dict[int, dict[str, Any]] = {}
    with atomic_csv(url, REMINDER_LIST_COLUMNS, writer=writer) as rows:
        for shard in sorted(found, key=lambda item: item["index"]):
            for line in byte_lines(shard["path"]):
                if not line.strip():
                    continue
                r = decoder.decode(line)
                rows.writerow(
                    [r.customer_id, r.email, r.first_name, r.lead_days, r.expiry_date.isoformat(),
                     str(r.remaining_points),
                     json.dumps({k: str(v) for k, v in r.programs.items()})]
                )  # fmt: skip
                lead = per_lead.setdefault(r.lead_days, {"customers": 0, "points": Decimal(0)})
                lead["customers"] += 1
                lead["points"] += r.remaining_points
    return per_lead


def day_summary(
    *,
    reminder_list: str,
    expiry_days: Mapping[str, Sequence[str]],
    per_lead: Mapping[int, Mapping[str, Any]],
    shards: Sequence[Mapping[str, Any]],
    found: Mapping[int, Mapping[str, Any]],
    delivered: Mapping[int, Mapping[str, Any]],
    rows: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's totals, as the summary file and the task log give them. `rows` is the split's
    count of the CRM extract's rows (its ``rows`` XCom): the rows it refused are listed too."""
    channels = sorted({result["channel"] for result in delivered.values()})
    summary: dict[str, Any] = {
        "reminder_list": reminder_list,
        "expiry_days": dict(expiry_days),
        "lead_times": {
            str(lead): {"customers": v["customers"], "points": str(v["points"])}
            for lead, v in sorted(per_lead.items(), reverse=True)
        },
        "customers_checked": sum(shard["customers"] for shard in shards),
        "neo_requests": sum(result["requests"] for result in found.values()),
        "channel": ",".join(channels) if channels else None,
        # Reminders sent on the channel (emails or not; the name predates other channels).
        "emails_sent": sum(result["sent"] for result in delivered.values()),
    }
    for count in DELIVERY_COUNTS:
        summary[count] = sum(result.get(count, 0) for result in delivered.values())
    summary["failed_shards"] = failed_shards(shards, found, delivered)
    listed = [
        failure
        for index in sorted(delivered)
        for failure in delivered[index].get("failed_reminders", ())
    ]
    summary["failed_reminders"] = listed[:LISTED_FAILURES]
    summary["rejected_rows"] = (rows or {}).get("rejected_rows", 0)
    summary["rejects_path"] = (rows or {}).get("rejects_path")
    summary["rejects"] = list((rows or {}).get("rejects", ()))
    return summary


def check_all_delivered(summary: Mapping[str, Any], shards: Sequence[Any]) -> None:
    """Raise `ShardsFailed` naming the failed shards, or `RemindersFailed` naming the reminders
    refused for good and the CRM rows refused, if any (the first exception says all)."""
    problems = []
    failed = summary["failed_shards"]
    if failed:
        problems.append(
            f"{len(failed)} of {len(shards)} shards failed: {failed}; the others delivered."
            " Re-run the failed tasks (or let the next run catch up)."
        )
    refused = summary.get("failed", 0)
    if refused:
        named = ", ".join(f"{f['key']} ({f['reason']})" for f in summary["failed_reminders"])
        more = refused - len(summary["failed_reminders"])
        problems.append(
            f"{refused} reminders refused for good: {named}"
            + (f" and {more} more (the ledger lists them, state failed)" if more > 0 else "")
            + "; the others were delivered. Fix their addresses and re-run: a new run, or the"
            " cleared task, sends exactly those."
        )
    rejected = summary.get("rejected_rows", 0)
    if rejected:
        first = "; ".join(
            f"line {r['line']}, {r['column']}: {r['reason']}" for r in summary["rejects"][:3]
        )
        problems.append(
            f"{rejected} rows of the CRM extract refused (listed in {summary['rejects_path']};"
            f" the first: {first}); every other customer was reminded. Fix the rows and re-run."
        )
    if problems:
        raise (ShardsFailed if failed else RemindersFailed)(" ".join(problems))
