"""Consent at delivery, for real: the split, then each shard's `find` against the simulator,
then `send`. A shard's delivery reads its own rows and the suppression list's index, never the
CRM extract (which is gone by then), and an opt-out added to the suppression list between find
and send is not messaged."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_neo.operators.reminders import (
    DeliverRemindersOperator,
    FindRemindersOperator,
    SplitCustomersOperator,
)
from airflow_provider_neo.reminders import OutgoingReminder, ReminderChannel, ReminderMessage
from neo_simulator.customers_csv import export_customers
from tests.harness import AS_OF, RunningSimulator

RUN = "scheduled__2026-11-21"


class Collecting(ReminderChannel):
    name = "collecting"
    batch_size = 50

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, batch: list[OutgoingReminder]) -> None:
        self.sent.extend(outgoing.key for outgoing in batch)


class _TaskInstance:
    def __init__(self, task_id: str, map_index: int) -> None:
        self.dag_id, self.run_id, self.task_id = "reminders", RUN, task_id
        self.map_index, self.try_number = map_index, 1
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context(task_id: str, map_index: int = -1) -> dict[str, Any]:
    return {"run_id": RUN, "ti": _TaskInstance(task_id, map_index)}


def test_a_shard_delivers_from_its_own_rows_and_the_latest_suppression_list(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    neo_conn(simulator)
    monkeypatch.setenv("AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET", "brand-secret")
    exported = tmp_path / "exported.csv"
    export_customers(simulator.url, exported)
    rows = exported.read_text().splitlines()[1:]
    ids = [int(row.split(",")[0]) for row in rows]
    output = tmp_path / "out"
    days = [(AS_OF + dt.timedelta(days=n)).isoformat() for n in range(60)]

    def split(extract_rows: list[tuple[str, str]], suppressed: list[int]) -> list[dict[str, Any]]:
        extract = tmp_path / "crm.csv"
        extract.write_text("customer_id,email,first_name,email_opt_in\n" + "".join(
            f"{row},{opt}\n" for row, opt in extract_rows
        ))  # fmt: skip
        (tmp_path / "suppressed.csv").write_text(
            "customer_id\n" + "".join(f"{c}\n" for c in suppressed)
        )
        shards: list[dict[str, Any]] = SplitCustomersOperator(
            task_id="split_customers", customers_path=str(extract), output_dir=str(output),
            shard_size=len(ids) // 2 + 1, suppression_path=str(tmp_path / "suppressed.csv"),
        ).execute(_context("split_customers"))  # fmt: skip
        return shards

    # Who has reminders is Neo's to say: a first split and find choose the test's customers.
    probe = split([(row, "") for row in rows], [])
    found = [_find(probe_shard, days, output, index) for index, probe_shard in enumerate(probe)]
    reminded = {
        index: sorted({int(key.split(":")[0]) for key in _keys(shard["path"])})
        for index, shard in enumerate(found)
    }
    assert len(reminded[0]) >= 2
    assert len(reminded[1]) >= 3
    listed_before, said_no, listed_after = reminded[0][0], reminded[1][0], reminded[1][1]

    shards = split(
        [(row, "no" if int(row.split(",")[0]) == said_no else "") for row in rows],
        [listed_before],
    )
    found = [_find(shard, days, output, index) for index, shard in enumerate(shards)]
    (tmp_path / "crm.csv").unlink()  # no delivery can read the extract
    first = Collecting()
    done = _send(found[0], first, tmp_path)
    assert done["suppression_index_built"] is False  # the split's index, the list unchanged
    assert done["customers_read"] == shards[0]["customers"]  # its own rows only
    with (tmp_path / "suppressed.csv").open("a") as handle:  # an opt-out between find and send
        handle.write(f"{listed_after}\n")
    second = Collecting()
    done = _send(found[1], second, tmp_path)
    assert done["suppression_index_built"] is True
    assert done["customers_read"] == shards[1]["customers"]

    opted_out = {listed_before, said_no, listed_after}
    every_key = _keys(found[0]["path"]) + _keys(found[1]["path"])
    assert sorted(first.sent + second.sent) == sorted(
        key for key in every_key if int(key.split(":")[0]) not in opted_out
    )
    assert done["suppressed"] == sum(
        1 for key in _keys(found[1]["path"]) if int(key.split(":")[0]) in opted_out
    )


def _find(shard: dict[str, Any], days: list[str], output: Path, index: int) -> dict[str, Any]:
    result: dict[str, Any] = FindRemindersOperator(
        task_id="find", shard=shard, expiry_days={"7": days}, output_dir=str(output),
    ).execute(_context("find", index))  # fmt: skip
    return result


def _send(found: dict[str, Any], channel: Collecting, tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = DeliverRemindersOperator(
        task_id="send", found=found, channel=channel,
        message=ReminderMessage(unsubscribe_url="https://b.example/u?c={customer_id}&t={token}"),
        suppression_path=str(tmp_path / "suppressed.csv"), output_dir=str(tmp_path / "out"),
        ledger_path=str(tmp_path / "ledger.sqlite3"),
    ).execute(_context("send", found["index"]))  # fmt: skip
    return result


def _keys(path: str) -> list[str]:
    return [
        "{customer_id}:{expiry_date}:{lead_days}".format(**json.loads(line))
        for line in Path(path).read_text().splitlines()
        if line.strip()
    ]
