"""The day's result: which shards failed and where, which reminders were refused for good, the
totals, the reminder list, and the rule that a day counts as reminded only when every shard
delivered every reminder."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_neo.records import JSON_ENCODER
from airflow_provider_neo.reminders.model import Reminder
from airflow_provider_neo.reminders.publishing import (
    RemindersFailed,
    ShardsFailed,
    check_all_delivered,
    day_summary,
    failed_shards,
    write_reminder_list,
)

SHARDS = [{"index": i, "path": f"shard-{i}.csv", "customers": 500} for i in range(3)]


def _delivered(index: int, sent: int) -> dict[str, Any]:
    return {
        "index": index, "channel": "email", "sent": sent, "suppressed": 1, "held_out": 2,
        "already_sent": 0, "sent_by_another_runner": 0, "taken_over": 0, "lease_lost": 0,
    }  # fmt: skip


def _found(tmp_path: Path, index: int, reminders: list[Reminder]) -> dict[str, Any]:
    path = tmp_path / f"found-{index}.ndjson"
    path.write_bytes(b"".join(JSON_ENCODER.encode(r) + b"\n" for r in reminders))
    return {"index": index, "path": str(path), "reminders": len(reminders), "requests": 4}


def _reminder(customer: int, lead: int, points: str, name: str = "Ana") -> Reminder:
    day = dt.date(2026, 11, 21) + dt.timedelta(days=lead)
    return Reminder(
        customer_id=customer, email=f"c{customer}@example.com", first_name=name, lead_days=lead,
        expiry_date=day, remaining_points=Decimal(points), programs={"2282": Decimal(points)},
    )  # fmt: skip


def test_a_shard_without_a_delivery_failed_in_send_if_it_was_found_else_in_find() -> None:
    found: dict[int, dict[str, Any]] = {0: {}, 1: {}}
    delivered = {0: _delivered(0, 3)}
    assert failed_shards(SHARDS, found, delivered) == [
        {"shard": 1, "failed_in": "send"},
        {"shard": 2, "failed_in": "find"},
    ]
    assert failed_shards(SHARDS, found, {i: _delivered(i, 1) for i in range(3)}) == []


def test_the_summary_adds_up_the_shards_and_a_failed_shard_fails_the_day(tmp_path: Path) -> None:
    found = {
        0: _found(tmp_path, 0, [_reminder(1, 30, "10.5"), _reminder(2, 7, "3")]),
        1: _found(tmp_path, 1, [_reminder(3, 30, "1.25")]),
    }
    per_lead = write_reminder_list(str(tmp_path / "list.csv"), found.values())
    summary = day_summary(
        reminder_list=str(tmp_path / "list.csv"), expiry_days={"30": ["2026-12-21"]},
        per_lead=per_lead, shards=SHARDS, found=found, delivered={0: _delivered(0, 2)},
    )  # fmt: skip
    assert summary["lead_times"] == {
        "30": {"customers": 2, "points": "11.75"},
        "7": {"customers": 1, "points": "3"},
    }
    assert summary["customers_checked"] == 1500
    assert summary["neo_requests"] == 8
    assert (summary["emails_sent"], summary["suppressed"], summary["held_out"]) == (2, 1, 2)
    assert summary["channel"] == "email"
    assert summary["failed_shards"] == [
        {"shard": 1, "failed_in": "send"},
        {"shard": 2, "failed_in": "find"},
    ]
    with pytest.raises(ShardsFailed, match=r"2 of 3 shards failed"):
        check_all_delivered(summary, SHARDS)
    summary["failed_shards"] = []
    check_all_delivered(summary, SHARDS)  # all delivered: the days may be marked


def test_the_reminder_list_keeps_shard_order_and_exact_points(tmp_path: Path) -> None:
    found = [
        _found(tmp_path, 1, [_reminder(3, 1, "0.001", name="Zoë")]),
        _found(tmp_path, 0, [_reminder(1, 30, "12.500")]),
    ]
    write_reminder_list(str(tmp_path / "list.csv"), found)
    with (tmp_path / "list.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["customer_id"], r["remaining_points"], r["first_name"]) for r in rows] == [
        ("1", "12.500", "Ana"),
        ("3", "0.001", "Zoë"),
    ]
    assert rows[0]["programs"] == '{"2282": "12.500"}'


def _refused(index: int, count: int) -> dict[str, Any]:
    """A shard's result with `count` reminders refused for good (listed up to 100)."""
    listed = [
        {"key": f"{index}{n:03d}:2026-12-21:30", "reason": "550 5.1.1 no such mailbox"}
        for n in range(min(count, 100))
    ]
    return {**_delivered(index, 5), "failed": count, "pruned": 0, "failed_reminders": listed}


def test_reminders_refused_for_good_are_counted_listed_and_fail_the_day_naming_them(
    tmp_path: Path,
) -> None:
    delivered = {0: _refused(0, 0), 1: _refused(1, 2), 2: _refused(2, 1)}
    summary = day_summary(
        reminder_list=str(tmp_path / "list.csv"), expiry_days={}, per_lead={}, shards=SHARDS,
        found={i: _found(tmp_path, i, []) for i in range(3)}, delivered=delivered,
    )  # fmt: skip
    assert summary["failed"] == 3
    assert [f["key"] for f in summary["failed_reminders"]] == [
        "1000:2026-12-21:30", "1001:2026-12-21:30", "2000:2026-12-21:30",
    ]  # fmt: skip
    assert summary["failed_shards"] == []
    assert summary["emails_sent"] == 15  # the rest of every shard was delivered
    with pytest.raises(RemindersFailed, match=r"^3 reminders refused for good: 1000:2026-12-21"):
        check_all_delivered(summary, SHARDS)


def test_the_failed_reminders_listed_in_the_summary_are_bounded_but_all_counted(
    tmp_path: Path,
) -> None:
    delivered = {i: _refused(i, 150) for i in range(3)}
    summary = day_summary(
        reminder_list=str(tmp_path / "list.csv"), expiry_days={}, per_lead={}, shards=SHARDS,
        found={}, delivered=delivered,
    )  # fmt: skip
    assert summary["failed"] == 450
    assert len(summary["failed_reminders"]) == 100
    with pytest.raises(RemindersFailed, match=r"and 350 more \(the ledger lists them"):
        check_all_delivered(summary, SHARDS)


def test_a_failed_shard_and_refused_reminders_are_both_named(tmp_path: Path) -> None:
    summary = day_summary(
        reminder_list=str(tmp_path / "list.csv"), expiry_days={}, per_lead={}, shards=SHARDS,
        found={i: _found(tmp_path, i, []) for i in range(3)},
        delivered={0: _refused(0, 1), 1: _refused(1, 0)},
    )  # fmt: skip
    with pytest.raises(ShardsFailed, match=r"1 of 3 shards failed.*1 reminders refused for good"):
        check_all_delivered(summary, SHARDS)


def test_crm_rows_refused_at_the_split_are_listed_and_fail_the_day(tmp_path: Path) -> None:
    found = {i: _found(tmp_path, i, []) for i in range(3)}
    rows = {
        "rows": 1502, "customers": 1500, "rejected_rows": 2, "rejects_path": "s3://b/rejects.csv",
        "rejects": [{"param": "customers_path", "file": "crm.csv", "line": 7,
                     "column": "email", "reason": "a list of addresses"}],
    }  # fmt: skip
    summary = day_summary(
        reminder_list=str(tmp_path / "list.csv"), expiry_days={}, per_lead={}, shards=SHARDS,
        found=found, delivered={i: _delivered(i, 1) for i in range(3)}, rows=rows,
    )  # fmt: skip
    assert (summary["rejected_rows"], summary["rejects_path"]) == (2, "s3://b/rejects.csv")
    assert summary["rejects"] == rows["rejects"]
    with pytest.raises(Exception, match=r"2 rows of the CRM extract refused .*line 7, email"):
        check_all_delivered(summary, SHARDS)
