"""The holdout and the effectiveness report, with `airflow dags test` against the simulator: the
reminder DAG holds a stable share of customers out and records them; time passes in the simulator
(`/__sim/settle`); `neo_reminder_effectiveness` reports figures equal to a computation of its own
here, from the ledger's and the simulator's tables directly."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_neo.reminders.audience import in_holdout
from demo.environment import DemoEnvironment
from tests.dag_runs import (
    DAY,
    PROGRAMS,
    REMINDER_DAG,
    emailed_keys,
    expected_reminders,
    run_dag,
    summary_file,
)
from tests.ground_truth import day_bounds_ms

HOLDOUT = {"holdout_share": 0.3, "holdout_salt": "e2e", "catch_up_days": 0}
DAYS = [DAY, (dt.date.fromisoformat(DAY) + dt.timedelta(days=1)).isoformat()]
REPORT_DAY = (dt.date.fromisoformat(DAY) + dt.timedelta(days=40)).isoformat()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoEnvironment]:
    with DemoEnvironment(tmp_path_factory.mktemp("effect"), customers=2_500) as environment:
        yield environment


def _ledger(env: DemoEnvironment) -> dict[str, tuple[str, dict[str, Decimal]]]:
    with sqlite3.connect(f"file:{env.ledger_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT reminder_key, state, points_at_stake FROM neo_reminder_ledger")
        return {
            key: (state, {p: Decimal(v) for p, v in json.loads(stake).items()})
            for key, state, stake in rows
        }


def test_the_holdout_is_recorded_not_messaged_and_stable_across_runs(env: DemoEnvironment) -> None:
    expected: dict[str, Decimal] = {}
    for day in DAYS:
        expected |= expected_reminders(env, day)
        run_dag(env, REMINDER_DAG, day, HOLDOUT)
    held = {k for k in expected if in_holdout(int(k.split(":")[0]), share=0.3, salt="e2e")}
    assert 0.2 < len(held) / len(expected) < 0.4
    assert sorted(emailed_keys(env)) == sorted(set(expected) - held)
    ledger = _ledger(env)
    assert {k for k, (state, _) in ledger.items() if state == "held_out"} == held
    assert {k: sum(programs.values()) for k, (_, programs) in ledger.items()} == expected
    assert summary_file(env, DAYS[1])["held_out"] == len(
        [k for k in held if k in expected_reminders(env, DAYS[1])]
    )
    # A re-run holds out the same customers and sends nothing.
    before = len(env.mailbox.messages())
    run_dag(env, REMINDER_DAG, DAYS[1], HOLDOUT)
    assert len(env.mailbox.messages()) == before
    assert _ledger(env) == ledger


def test_the_effectiveness_report_equals_a_computation_from_the_simulators_data(
    env: DemoEnvironment,
) -> None:
    ledger = _ledger(env)
    assert ledger  # the holdout test ran first and filled it
    reminded = sorted({int(k.split(":")[0]) for k, (s, _) in ledger.items() if s == "sent"})
    settled = env.settle(REPORT_DAY, reminded, redeem_share=0.2, reminded_redeem_share=0.5)
    assert settled["redeemed"] > 0
    assert settled["expired"] > 0
    output = run_dag(env, "neo_reminder_effectiveness", REPORT_DAY)
    assert "Reminder effectiveness: " in output
    report = env.data_dir / "neo" / "effectiveness" / f"{REPORT_DAY}.csv"
    with report.open() as handle:
        rows = {(int(r["lead_days"]), r["program"]): r for r in csv.DictReader(handle)}
    truth = _effects(env, ledger)
    assert set(rows) == set(truth)
    for group, want in truth.items():
        got = rows[group]
        for column in ("reminded", "held_out", "pending"):
            assert int(got[column]) == want[column], (group, column)
        for column in ("reminded_points_at_stake", "held_out_points_at_stake",
                       "reminded_points_saved", "held_out_points_saved"):  # fmt: skip
            assert Decimal(got[column]) == want[column], (group, column)
        for column in ("reminded_share_redeemed", "held_out_share_redeemed", "uplift",
                       "uplift_ci_low", "uplift_ci_high"):  # fmt: skip
            if want[column] is None:  # an empty group (or one customer): no figure
                assert got[column] == "", (group, column)
            else:
                assert math.isclose(float(got[column]), want[column], abs_tol=2e-6), (group, column)
        if want["points_saved"] is None:
            assert got["points_saved"] == ""
        else:
            assert abs(Decimal(got["points_saved"]) - want["points_saved"]) <= Decimal("0.001")
    everything = rows[(30, "all")]
    assert float(everything["uplift"]) > 0  # reminded customers redeemed more, as settled
    page = (env.data_dir / "neo" / "effectiveness" / f"{REPORT_DAY}.html").read_text()
    assert "<svg" in page
    assert "uplift" in page


def _effects(
    env: DemoEnvironment, ledger: dict[str, tuple[str, dict[str, Decimal]]]
) -> dict[tuple[int, str], dict[str, Any]]:
    """The report's figures computed here: expired points straight from the allocations table,
    shares as ratios of sums, their variances by linearisation, a 95% normal interval."""
    cells: dict[tuple[int, str], dict[bool, dict[str, list[Decimal]]]] = defaultdict(
        lambda: {True: {}, False: {}}
    )
    pending: dict[tuple[int, str], set[str]] = defaultdict(set)
    with sqlite3.connect(f"file:{env.db_path}?mode=ro", uri=True) as db:
        for key, (state, programs) in ledger.items():
            customer, day, lead = key.split(":")
            low, high = day_bounds_ms(dt.date.fromisoformat(day), dt.date.fromisoformat(day),
                                      env.timezone)  # fmt: skip
            for program, stake in programs.items():
                categories = [c for p, c in PROGRAMS if str(p) == program]
                found = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(expired_exclusive_value_milli), 0)"
                    " FROM allocations WHERE customer_id = ? AND program_id = ?"
                    f" AND point_category_id IN ({','.join('?' * len(categories))})"
                    " AND status IN ('REDEEMED', 'CONSUMED', 'EXPIRED')"
                    " AND expiry_date BETWEEN ? AND ?",
                    (int(customer), int(program), *categories, low, high),
                ).fetchone()
                for name in (program, "all"):
                    group = (int(lead), name)
                    if not found[0]:
                        pending[group].add(key)
                        continue
                    saved = stake - min(Decimal(found[1]) / 1000, stake)
                    pair = cells[group][state == "held_out"].setdefault(key, [Decimal(0)] * 2)
                    pair[0] += stake
                    pair[1] += saved
    result: dict[tuple[int, str], dict[str, Any]] = {}
    for group in set(cells) | set(pending):
        figures: dict[str, Any] = {"pending": len(pending[group])}
        shares: dict[str, tuple[float, float | None] | None] = {}
        for held, name in ((False, "reminded"), (True, "held_out")):
            pairs = list(cells[group][held].values())
            stake = sum((x for x, _ in pairs), Decimal(0))
            saved = sum((y for _, y in pairs), Decimal(0))
            figures |= {name: len(pairs), f"{name}_points_at_stake": stake,
                        f"{name}_points_saved": saved, f"{name}_share_redeemed": None}  # fmt: skip
            shares[name] = None
            if stake > 0:
                share = float(saved) / float(stake)
                figures[f"{name}_share_redeemed"] = share
                residuals = [float(y) - share * float(x) for x, y in pairs]
                mean = sum(residuals) / len(residuals)
                spread = sum((r - mean) ** 2 for r in residuals)
                variance = len(pairs) * spread / (len(pairs) - 1) if len(pairs) > 1 else None
                shares[name] = (share, None if variance is None else variance / float(stake) ** 2)
        figures |= dict.fromkeys(("uplift", "uplift_ci_low", "uplift_ci_high", "points_saved"))
        reminded, held_out = shares["reminded"], shares["held_out"]
        if reminded is not None and held_out is not None:
            uplift = reminded[0] - held_out[0]
            figures["uplift"] = uplift
            figures["points_saved"] = Decimal(uplift) * figures["reminded_points_at_stake"]
            if reminded[1] is not None and held_out[1] is not None:
                margin = 1.959963984540054 * math.sqrt(reminded[1] + held_out[1])
                figures["uplift_ci_low"] = uplift - margin
                figures["uplift_ci_high"] = uplift + margin
        result[group] = figures
    return result
