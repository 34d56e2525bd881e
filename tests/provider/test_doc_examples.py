"""The runnable snippets the docs include verbatim (docs/examples/), run as a reader runs them,
against a simulator; what they print is checked against the simulator's own tables."""

from __future__ import annotations

import ast
import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pendulum

from neo_simulator.testing import SimulatorStarter
from tests.ground_truth import allocations, day_bounds_ms
from tests.harness import AS_OF, TIMEZONE, connection_json

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HOOK_CUSTOMERS = {400000001, 400000002, 400000004, 400000005, 400000006}  # hook_usage.py's


def _reader_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A shell of someone who installed the provider: a fresh Airflow home, no Airflow settings
    of this test session."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**kept, "PATH": path, "AIRFLOW_HOME": str(tmp_path / "airflow"), **extra}


def test_the_simulator_connection_script_passes_airflows_connection_test(
    start_sim: SimulatorStarter, tmp_path: Path
) -> None:
    sim = start_sim()
    port = str(urlsplit(sim.url).port)
    script = (EXAMPLES / "simulator-connection.sh").read_text().replace("8790", port)
    result = subprocess.run(
        ["bash", "-e", "-c", script], env=_reader_env(tmp_path), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout


def test_the_hook_example_prints_the_simulators_rows_for_its_day(
    start_sim: SimulatorStarter, tmp_path: Path
) -> None:
    """The simulator's default data (seed 42) generated for the example's day, as the example
    says to start it (``--as-of 2026-11-21``, the suite's AS_OF)."""
    day = pendulum.date(AS_OF.year, AS_OF.month, AS_OF.day)
    sim = start_sim("--seed", "42", customers=10)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "hook_usage.py")],
        env=_reader_env(tmp_path, AIRFLOW_CONN_NEO_DEFAULT=connection_json(sim)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    printed: dict[str, list[list[str]]] = {}
    for line in result.stdout.splitlines():
        kind, *words = line.split()
        printed.setdefault(kind, []).append(words)

    in_a_year = day.add(years=1)
    ahead = allocations(
        sim.db_path, customers=HOOK_CUSTOMERS, expiring=(day, in_a_year), timezone=TIMEZONE
    )
    available = {i: a for i, a in ahead.items() if a.status == "AVAILABLE"}
    assert available
    assert {(int(c), int(i), s, Decimal(p)) for c, i, s, p in printed["awarded"]} == {
        (a.customer_id, i, "AVAILABLE", a.remaining_points) for i, a in available.items()
    }
    expired = allocations(
        sim.db_path, customers=HOOK_CUSTOMERS, timezone=TIMEZONE, status="EXPIRED",
        expiring=(day.subtract(years=1), day - dt.timedelta(days=1)),
    )  # fmt: skip
    assert expired
    queried = {(status, int(c), int(i)) for status, c, i, _ in printed["query"]}
    assert queried == {("AVAILABLE", a.customer_id, i) for i, a in available.items()} | {
        ("EXPIRED", a.customer_id, i) for i, a in expired.items()
    }
    assert {(int(c), int(i), s) for c, i, s, _ in printed["expiring"]} == {
        (a.customer_id, i, a.status) for i, a in ahead.items()
    }
    expired_points: Counter[int] = Counter()
    for customer, _, _, _, points in printed["expired"]:  # the moment is two words
        expired_points[int(customer)] += int(Decimal(points) * 1000)
    assert expired_points
    assert expired_points == _expired_milli(sim.db_path, day.year - 1, day.year)
    *_, tested, snapshot = result.stdout.splitlines()
    assert tested.startswith("(True, 'Connected to Neo at http://127.0.0.1:")
    stats = ast.literal_eval(snapshot)
    assert stats["requests"] > 0
    assert set(stats["statuses"]) <= {"200", "404"}  # 404: a customer with nothing expired


def _expired_milli(db_path: Path, first_year: int, last_year: int) -> Counter[int]:
    """The hook example's customers' points expired in those years, from the simulator's rows."""
    low, high = day_bounds_ms(dt.date(first_year, 1, 1), dt.date(last_year, 12, 31), TIMEZONE)
    totals: Counter[int] = Counter()
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        for customer, milli in db.execute(
            "SELECT customer_id, expired_exclusive_value_milli FROM allocations"
            " WHERE expired_exclusive_value_milli > 0 AND expiry_date BETWEEN ? AND ?",
            (low, high),
        ):
            if customer in HOOK_CUSTOMERS:
                totals[customer] += milli
    return totals
