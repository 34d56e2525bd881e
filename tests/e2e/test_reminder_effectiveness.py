"""The holdout and the effectiveness report, with `airflow dags test` against the simulator: the
reminder DAG holds a stable share of customers out and records them; a report before Neo settles
the points measures nothing; time passes in the simulator (`/__sim/settle`), and
`neo_reminder_effectiveness` reports figures equal to a computation of its own here, from the
ledger's and the simulator's tables directly."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist
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
SHARE_COLUMNS = ("reminded_share_redeemed", "held_out_share_redeemed", "uplift", "uplift_ci_low",
                 "uplift_ci_high", "detectable_uplift")  # fmt: skip


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


def test_a_report_before_neo_settles_the_points_measures_nothing(env: DemoEnvironment) -> None:
    ledger = _ledger(env)
    assert ledger  # the holdout test ran first and filled it
    # Neo's expiry job has not run: every reminder's points are still AVAILABLE, though some
    # customers have other rows of the same day and program already settled.
    assert any(
        status in ("REDEEMED", "CONSUMED", "EXPIRED")
        for key, (_, programs) in ledger.items()
        for program in programs
        for status, _, _ in _neo_rows(env, key, program)
    )
    output = run_dag(env, "neo_reminder_effectiveness", REPORT_DAY)
    summary = _logged_summary(output)
    assert summary["reminders_measured"] == 0
    assert summary["reminders_pending"] == len(ledger)
    rows = _report_rows(env)
    truth = _effects(env, ledger)
    assert set(rows) == set(truth)
    for group, got in rows.items():
        assert (got["reminded"], got["held_out"]) == ("0", "0"), group
        assert int(got["pending"]) == truth[group]["pending"] > 0, group
        assert got["uplift"] == got["detectable_uplift"] == got["days_to_detect_10_points"] == ""
    pending_per_lead = [
        int(row["pending"]) for (_, program), row in rows.items() if program == "all"
    ]
    assert sum(pending_per_lead) == len(ledger)
    assert 'class="whisker"' not in _page(env)


def test_the_effectiveness_report_equals_a_computation_from_the_simulators_data(
    env: DemoEnvironment,
) -> None:
    ledger = _ledger(env)
    reminded = sorted({int(k.split(":")[0]) for k, (s, _) in ledger.items() if s == "sent"})
    settled = env.settle(REPORT_DAY, reminded, redeem_share=0.2, reminded_redeem_share=0.5)
    assert settled["redeemed"] > 0
    assert settled["expired"] > 0
    output = run_dag(env, "neo_reminder_effectiveness", REPORT_DAY)
    summary = _logged_summary(output)
    rows = _report_rows(env)
    truth = _effects(env, ledger)
    assert set(rows) == set(truth)
    for group, want in truth.items():
        got = rows[group]
        for column in ("reminded", "held_out", "pending"):
            assert int(got[column]) == want[column], (group, column)
        for column in ("reminded_points_at_stake", "held_out_points_at_stake",
                       "reminded_points_saved", "held_out_points_saved"):  # fmt: skip
            assert Decimal(got[column]) == want[column], (group, column)
        for column in SHARE_COLUMNS:
            if want[column] is None:  # an empty group (or one customer): no figure
                assert got[column] == "", (group, column)
            else:
                assert math.isclose(float(got[column]), want[column], abs_tol=2e-6), (group, column)
        if want["points_saved"] is None:
            assert got["points_saved"] == ""
        else:
            assert abs(Decimal(got["points_saved"]) - want["points_saved"]) <= Decimal("0.001")
        days = want["days_to_detect_10_points"]
        assert got["days_to_detect_10_points"] == ("" if days is None else str(days)), group
    # Neo settled every point expiring through the report's day.
    assert summary["reminders_measured"] == len(ledger)
    assert summary["reminders_pending"] == 0
    for lead, figures in summary["all_programs"].items():
        want = truth[(int(lead), "all")]
        assert figures["days_to_detect_10_points"] == want["days_to_detect_10_points"]
        assert math.isclose(figures["detectable_uplift"], want["detectable_uplift"], abs_tol=1e-9)
        assert math.isclose(figures["uplift"], want["uplift"], abs_tol=1e-9)
    everything = rows[(30, "all")]
    assert float(everything["uplift"]) > 0  # reminded customers redeemed more, as settled
    assert any(want["days_to_detect_10_points"] for want in truth.values())
    page = _page(env)
    assert page.count('class="zero-line"') == 1
    assert page.count('class="whisker"') == sum(
        want["uplift_ci_low"] is not None for want in truth.values()
    )


def _report_rows(env: DemoEnvironment) -> dict[tuple[int, str], dict[str, str]]:
    report = _report_folder(env) / f"{REPORT_DAY}.csv"
    with report.open() as handle:
        return {(int(r["lead_days"]), r["program"]): r for r in csv.DictReader(handle)}


def _page(env: DemoEnvironment) -> str:
    return (_report_folder(env) / f"{REPORT_DAY}.html").read_text()


def _report_folder(env: DemoEnvironment) -> Path:
    return env.data_dir / "neo" / "effectiveness"


def _logged_summary(output: str) -> dict[str, Any]:
    """The summary the report task printed, from the run's output."""
    prefix = "Reminder effectiveness: "
    text = output[output.index(prefix) + len(prefix) :]
    summary, _ = json.JSONDecoder().raw_decode(text)
    return summary  # type: ignore[no-any-return]


def _effects(
    env: DemoEnvironment, ledger: dict[str, tuple[str, dict[str, Decimal]]]
) -> dict[tuple[int, str], dict[str, Any]]:
    """The report's figures computed here: what became of the points straight from the
    allocations table (measured once none is left AVAILABLE and some row is REDEEMED, CONSUMED
    or EXPIRED), shares as ratios of sums, their variances by linearisation, a 95% normal
    interval, the detectable uplift and the days until 10 points are, by trying day after day."""
    cells: dict[tuple[int, str], dict[bool, dict[str, list[Decimal]]]] = defaultdict(
        lambda: {True: {}, False: {}}
    )
    expiry_days: dict[tuple[int, str], dict[bool, dict[str, str]]] = defaultdict(
        lambda: {True: {}, False: {}}
    )
    pending: dict[tuple[int, str], set[str]] = defaultdict(set)
    for key, (state, programs) in ledger.items():
        _, day, lead = key.split(":")
        for program, stake in programs.items():
            rows = _neo_rows(env, key, program)
            open_milli = sum(max(left, 0) for status, left, _ in rows if status == "AVAILABLE")
            settled = [lost for status, _, lost in rows
                       if status in ("REDEEMED", "CONSUMED", "EXPIRED")]  # fmt: skip
            for name in (program, "all"):
                group = (int(lead), name)
                if open_milli or not settled:
                    pending[group].add(key)
                    continue
                saved = stake - min(Decimal(sum(settled)) / 1000, stake)
                pair = cells[group][state == "held_out"].setdefault(key, [Decimal(0)] * 2)
                pair[0] += stake
                pair[1] += saved
                expiry_days[group][state == "held_out"][key] = day
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
        figures |= dict.fromkeys(("uplift", "uplift_ci_low", "uplift_ci_high", "points_saved",
                                  "detectable_uplift", "days_to_detect_10_points"))  # fmt: skip
        reminded, held_out = shares["reminded"], shares["held_out"]
        if reminded is not None and held_out is not None:
            uplift = reminded[0] - held_out[0]
            figures["uplift"] = uplift
            figures["points_saved"] = Decimal(uplift) * figures["reminded_points_at_stake"]
            if reminded[1] is not None and held_out[1] is not None:
                margin = NormalDist().inv_cdf(0.975) * math.sqrt(reminded[1] + held_out[1])
                figures["uplift_ci_low"] = uplift - margin
                figures["uplift_ci_high"] = uplift + margin
                variances = (reminded[1], held_out[1])
                sizes = (figures["reminded"], figures["held_out"])
                per_day = _recent_daily_volume(expiry_days[group])
                figures["detectable_uplift"] = _detectable(variances, sizes, per_day, 0)
                figures["days_to_detect_10_points"] = _first_day_detecting(
                    0.10, variances, sizes, per_day
                )
        result[group] = figures
    return result


def _neo_rows(env: DemoEnvironment, key: str, program: str) -> list[tuple[str, int, int]]:
    """(status, points left unclamped, points expired), in thousandths, of every allocation of
    a reminder's customer and expiry day in `program`, from the simulator's table."""
    customer, day, _ = key.split(":")
    low, high = day_bounds_ms(dt.date.fromisoformat(day), dt.date.fromisoformat(day), env.timezone)
    categories = [c for p, c in PROGRAMS if str(p) == program]
    with closing(sqlite3.connect(f"file:{env.db_path}?mode=ro", uri=True)) as db:
        return db.execute(
            "SELECT status, points_exclusive_milli - redeemed_exclusive_value_milli"
            " - expired_exclusive_value_milli - returned_exclusive_value_milli,"
            " expired_exclusive_value_milli FROM allocations WHERE customer_id = ?"
            f" AND program_id = ? AND point_category_id IN ({','.join('?' * len(categories))})"
            " AND expiry_date BETWEEN ? AND ?",
            (int(customer), int(program), *categories, low, high),
        ).fetchall()


def _recent_daily_volume(days: dict[bool, dict[str, str]]) -> tuple[float, float]:
    """Measured reminders per expiry day, reminded and held out, over the last 7 expiry days on
    which either group measured any."""
    recent = sorted(set(days[False].values()) | set(days[True].values()))[-7:]
    reminded, held_out = (
        sum(day in recent for day in days[group].values()) for group in (False, True)
    )
    return reminded / len(recent), held_out / len(recent)


def _detectable(
    variances: tuple[float, float], sizes: tuple[int, int], per_day: tuple[float, float],
    days: int,
) -> float:  # fmt: skip
    """The minimum detectable uplift (80% power, 5% two-sided) after `days` more days."""
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.80)
    grown = sum(v * n / (n + days * d) for v, n, d in zip(variances, sizes, per_day, strict=True))
    return z * math.sqrt(grown)


def _first_day_detecting(
    uplift: float, variances: tuple[float, float], sizes: tuple[int, int],
    per_day: tuple[float, float],
) -> int | None:  # fmt: skip
    """The first whole day on which `uplift` is detectable; None if no growth ever gets there."""
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.80)
    floor = sum(v for v, d in zip(variances, per_day, strict=True) if d == 0)
    if _detectable(variances, sizes, per_day, 0) > uplift and z * math.sqrt(floor) >= uplift:
        return None
    high = 1
    while _detectable(variances, sizes, per_day, high) > uplift:
        high *= 2
    low = 0
    while low < high:  # the first day detecting it lies in [low, high]
        middle = (low + high) // 2
        if _detectable(variances, sizes, per_day, middle) <= uplift:
            high = middle
        else:
            low = middle + 1
    return low
