"""The operators: their output equals the simulator's ground truth, in files and in XCom."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_neo.operators.neo import (
    BaseNeoOperator,
    EventPointsAllocationOperator,
    ExpiredPointsOperator,
    ExpiringPointsOperator,
    PointsAwardedOperator,
)
from airflow_provider_neo.utils.windows import ExpiryWindow
from tests.ground_truth import allocations
from tests.harness import AS_OF, TIMEZONE, RunningSimulator

OPERATORS_PAGE = Path(__file__).parents[3] / "docs" / "operators" / "index.md"
FIRST = 400000001
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
CUSTOMERS = list(range(FIRST, FIRST + 120))


def _context(day: dt.date = AS_OF) -> dict[str, Any]:
    end = pendulum.datetime(day.year, day.month, day.day, tz="UTC")
    return {
        "data_interval_start": end.subtract(days=1),
        "data_interval_end": end,
        "ds": day.isoformat(),
    }


def _truth(
    sim: RunningSimulator,
    customers: list[int],
    start: dt.date,
    end: dt.date,
    status: str | None = None,
) -> dict[int, Decimal]:
    """id -> remaining points, straight from the simulator's tables."""
    found = allocations(
        sim.db_path, customers=customers, expiring=(start, end), timezone=TIMEZONE, status=status
    )
    return {id_: allocation.remaining_points for id_, allocation in found.items()}


def test_expiring_points_to_ndjson_equal_the_ground_truth(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    target = tmp_path / "out" / "expiring.ndjson"
    op = ExpiringPointsOperator(
        task_id="expiring", customer_ids=CUSTOMERS, **PROGRAM, days_ahead=0, window_days=60,
        output_path=f"file://{target}",
    )  # fmt: skip
    summary = op.execute(_context())
    truth = _truth(simulator, CUSTOMERS, AS_OF, AS_OF + dt.timedelta(days=59))
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(truth)
    assert summary == {
        "endpoint": "/x/neo/pointsAllocation/dateRange", "records": len(truth),
        "customers": len(CUSTOMERS), "points": str(sum(truth.values())),
        "requests": len(CUSTOMERS), "retries": 0, "rows_not_asked_for": 0,
        "output_path": f"file://{target}", "output_format": "ndjson", **PROGRAM,
        "expiry_start": AS_OF.isoformat(),
        "expiry_end": (AS_OF + dt.timedelta(days=59)).isoformat(), "duplicate_customer_ids": 0,
    }  # fmt: skip
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def test_points_awarded_to_csv_equal_the_ground_truth(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    target = tmp_path / "awarded.csv"
    op = PointsAwardedOperator(
        task_id="awarded", customer_ids=CUSTOMERS, **PROGRAM, expiry_start="2026-11-21",
        expiry_end="2027-05-31", output_path=str(target), output_format="csv",
    )  # fmt: skip
    summary = op.execute(_context())
    truth = _truth(simulator, CUSTOMERS, dt.date(2026, 11, 21), dt.date(2027, 5, 31), "AVAILABLE")
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(row["id"]) for row in rows) == sorted(truth)
    assert set(rows[0]) == {
        "redeemed_exclusive_value", "returned_exclusive_value", "event_log_id", "id",
        "customer_id", "source_table", "points_exclusive", "expired_exclusive_value", "status",
    }  # fmt: skip
    assert {row["status"] for row in rows} == {"AVAILABLE"}  # the status the query asked for
    assert summary["points"] == str(sum(truth.values()))
    assert summary["requests"] == 1  # 120 customers, one paIds batch


def test_records_go_to_xcom_without_an_output_path(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    op = EventPointsAllocationOperator(
        task_id="event",
        customer_id="374819205",
        entity_id="hfjWDK0dek",
        event_type="TransactionAdd",
    )
    rows = op.execute(_context())
    assert [row["id"] for row in rows] == [31787856]
    assert rows[0]["points_exclusive"] == "50"  # exact, as text
    assert op.summary["points"] == "50"


def test_more_records_than_max_xcom_records_fail_cleanly(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    op = ExpiringPointsOperator(
        task_id="too_many", customer_ids=CUSTOMERS, **PROGRAM, days_ahead=0, window_days=365,
        max_xcom_records=10,
    )  # fmt: skip
    with pytest.raises(Exception, match="more than max_xcom_records=10 records; set output_path"):
        op.execute(_context())


def test_expired_points_from_a_customer_file(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,email\n11064,a@example.com\n999999999,b@example.com\n")
    op = ExpiredPointsOperator(task_id="expired", customers_path=str(customers), year="2024")
    rows = op.execute(_context())
    assert [(row["customerId"], row["points"]) for row in rows] == [(11064, "800"), (11064, "100")]
    assert op.summary["points"] == "900"
    assert op.summary["customers"] == 2


OPERATORS: tuple[type[BaseNeoOperator], ...] = (
    ExpiringPointsOperator,
    PointsAwardedOperator,
    EventPointsAllocationOperator,
    ExpiredPointsOperator,
)


def _documented_summary_fields() -> dict[str, set[str]]:
    """Operator name -> the summary fields the operators page's table gives it."""
    table = OPERATORS_PAGE.read_text().split("<!-- operator-summary-fields -->")[1]
    table = table.split("<!-- end of operator-summary-fields -->")[0]
    fields: dict[str, set[str]] = {operator.__name__: set() for operator in OPERATORS}
    for row in table.strip().splitlines()[2:]:  # after the header and its rule
        field, where = (cell.strip() for cell in row.strip("|").split("|")[:2])
        names = list(fields) if where == "every operator" else re.findall(r"`(\w+)`", where)
        for name in names:
            fields[name].add(field.strip("`"))
    return fields


def _docstring_fields(operator: type[BaseNeoOperator]) -> set[str]:
    """The summary fields a class's own docstring lists (its ``- ``field``: ...`` lines)."""
    lines = (line.strip() for line in (operator.__doc__ or "").splitlines())
    return {
        name
        for line in lines
        if line.startswith("- ``")
        for name in re.findall(r"``(\w+)``", line.split(":")[0])
    }


def test_each_operator_documents_its_summary_fields_as_the_readme_does() -> None:
    documented = _documented_summary_fields()
    common = set.intersection(*documented.values())
    assert {"endpoint", "records", "customers", "points", "requests", "output_path"} <= common
    assert _docstring_fields(BaseNeoOperator) == common
    for operator in OPERATORS:
        assert _docstring_fields(operator) == documented[operator.__name__] - common, operator


def test_each_operators_summary_has_exactly_the_documented_fields(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    customers = tmp_path / "customers.csv"
    listed = [*CUSTOMERS[:20], CUSTOMERS[0]]  # one id twice
    customers.write_text("customer_id\n" + "".join(f"{c}\n" for c in listed))
    operators = [
        ExpiringPointsOperator(
            task_id="expiring", customers_path=str(customers), **PROGRAM, days_ahead=0,
            window_days=60, output_path=f"file://{tmp_path}/expiring.ndjson",
        ),
        PointsAwardedOperator(
            task_id="awarded", customer_ids=CUSTOMERS[:20], program_id="2282",
            point_category_id=17383, expiry_start="2026-01-01", expiry_end="2026-12-31",
            status="redeemed",
        ),
        EventPointsAllocationOperator(
            task_id="event", customer_id="374819205", entity_id="hfjWDK0dek", event_type=15
        ),
        ExpiredPointsOperator(
            task_id="expired", customer_ids=[11064], year="2024",
            output_path=str(tmp_path / "expired.csv"), output_format="csv",
        ),
    ]  # fmt: skip
    documented = _documented_summary_fields()
    summaries: dict[str, dict[str, Any]] = {}
    for op in operators:
        op.execute(_context())
        summaries[type(op).__name__] = op.summary
        assert set(op.summary) == documented[type(op).__name__], type(op).__name__

    expiring = summaries["ExpiringPointsOperator"]
    truth = _truth(simulator, CUSTOMERS[:20], AS_OF, AS_OF + dt.timedelta(days=59))
    assert expiring["points"] == str(sum(truth.values()))
    assert (expiring["customers"], expiring["duplicate_customer_ids"]) == (20, 1)
    assert (expiring["expiry_start"], expiring["expiry_end"]) == ("2026-11-21", "2027-01-19")
    assert (expiring["output_path"], expiring["output_format"]) == (
        f"file://{tmp_path}/expiring.ndjson", "ndjson",
    )  # fmt: skip
    awarded = summaries["PointsAwardedOperator"]
    assert (awarded["program_id"], awarded["point_category_id"]) == (2282, 17383)
    assert (awarded["status"], awarded["org_id"], awarded["points"]) == ("REDEEMED", None, "0")
    assert awarded["records"] > 0  # redeemed rows, none of their points still open
    assert (awarded["output_path"], awarded["output_format"]) == (None, None)
    event = summaries["EventPointsAllocationOperator"]
    assert (event["customer_id"], event["entity_id"]) == (374819205, "hfjWDK0dek")
    assert (event["event_type"], event["points"]) == ("TransactionAdd", "50")
    expired = summaries["ExpiredPointsOperator"]
    assert (expired["year"], expired["points"], expired["output_format"]) == (2024, "900", "csv")
    assert (expired["customers_with_points"], expired["totals_path"]) == (1, None)
    assert sum(Decimal(p) for p in expired["points_per_program"].values()) == 900
    assert {s["rows_not_asked_for"] for s in summaries.values()} == {0}
    assert {s["retries"] for s in summaries.values()} == {0}


def test_customers_from_ndjson_and_from_text(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    ndjson = tmp_path / "customers.ndjson"
    ndjson.write_text("".join(json.dumps({"customer_id": c}) + "\n" for c in CUSTOMERS[:30]))
    from_file = ExpiringPointsOperator(
        task_id="f", customers_path=f"file://{ndjson}", **PROGRAM, days_ahead=0, window_days=365
    ).execute(_context())
    from_text = ExpiringPointsOperator(
        task_id="t", customer_ids=", ".join(map(str, CUSTOMERS[:30])), **PROGRAM, days_ahead=0,
        window_days=365,
    ).execute(_context())  # fmt: skip
    assert sorted(r["id"] for r in from_file) == sorted(r["id"] for r in from_text)
    assert from_file


def test_a_failing_run_leaves_no_output_file(
    start_sim: Any, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    sim = start_sim("--error-rate", "0.3", "--fault-seed", "2", customers=200)
    neo_conn(sim, max_retries=0, max_concurrency=2)
    target = tmp_path / "out" / "expiring.ndjson"
    op = ExpiringPointsOperator(
        task_id="fails", customer_ids=CUSTOMERS, **PROGRAM, days_ahead=0, window_days=365,
        output_path=str(target),
    )  # fmt: skip
    with pytest.raises(Exception, match="Neo answered 5"):
        op.execute(_context())
    assert (
        sim.control("GET", "stats")["requests"]["expiring_allocations"]["200"] > 0
    )  # some rows came
    assert list(target.parent.iterdir()) == []  # neither the file nor a temporary one


def test_bad_arguments_fail_before_any_request(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    with pytest.raises(ValueError, match=r"^days_ahead: give either"):
        ExpiringPointsOperator(
            task_id="x", customer_ids=[1], **PROGRAM, days_ahead=1, expiry_start="2026-01-01"
        )
    with pytest.raises(ValueError, match=r"^customer_ids: give exactly one"):
        ExpiringPointsOperator(task_id="x", **PROGRAM, days_ahead=1)
    with pytest.raises(ValueError, match=r"^output_format: expected one of ndjson, csv"):
        ExpiredPointsOperator(task_id="x", customer_ids=[1], year=2024, output_format="xlsx")
    simulator.control("POST", "reset")
    expiring: dict[str, Any] = {"task_id": "a", "customer_ids": [1], **PROGRAM}
    bad_runs = [
        (
            ExpiringPointsOperator(**expiring, expiry_start="2026-02-30", expiry_end="2026-03-01"),
            "expiry_start",
        ),
        (
            ExpiringPointsOperator(**{**expiring, "customer_ids": [1, "x"]}, days_ahead=0),
            "customer_ids",
        ),
        (
            ExpiringPointsOperator(**{**expiring, "program_id": "abc"}, days_ahead="soon"),
            "days_ahead",
        ),
        (ExpiredPointsOperator(task_id="d", customer_ids=[1], year="24"), "year"),
        (
            ExpiredPointsOperator(task_id="e", customers_path=str(tmp_path / "no.csv"), year=2024),
            "customers_path",
        ),
        (
            EventPointsAllocationOperator(
                task_id="f", customer_id=1, entity_id="e", event_type="No"
            ),
            "event_type",
        ),
    ]
    for op, argument in bad_runs:
        with pytest.raises(ValueError, match=f"^{argument}: "):
            op.execute(_context())
    assert simulator.control("GET", "stats")["total"] == 0


def test_templated_fields_render(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    op = ExpiringPointsOperator(
        task_id="templated",
        customer_ids="{{ params.customers }}",
        program_id="{{ params.program }}",
        point_category_id="17383",
        expiry_start="{{ ds }}",
        expiry_end="{{ macros.ds_add(ds, 30) }}",
        output_path=f"file://{tmp_path}/{{{{ ds }}}}/expiring.ndjson",
    )
    context = {**_context(), "params": {"customers": "400000001,400000002", "program": 2282}}
    from airflow.sdk.execution_time import macros

    context["macros"] = macros
    op.render_template_fields(context)  # type: ignore[arg-type]
    assert op.customer_ids == "400000001,400000002"
    assert (op.program_id, op.expiry_start, op.expiry_end) == ("2282", "2026-11-21", "2026-12-21")
    assert op.output_path == f"file://{tmp_path}/2026-11-21/expiring.ndjson"
    summary = op.execute(context)
    assert (summary["expiry_start"], summary["expiry_end"]) == ("2026-11-21", "2026-12-21")
    assert summary["program_id"] == 2282  # as the request sent it, not the rendered text
    assert (tmp_path / "2026-11-21" / "expiring.ndjson").exists()


def test_progress_is_logged_with_customers_rate_and_eta(
    simulator: RunningSimulator, neo_conn: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    neo_conn(simulator, max_concurrency=1)
    op = ExpiringPointsOperator(
        task_id="progress", customer_ids=CUSTOMERS, **PROGRAM, days_ahead=0, window_days=365,
        progress_interval=0,
    )  # fmt: skip
    op.execute(_context())
    # The task logger writes through Airflow's structlog to the process output.
    output = capfd.readouterr()
    lines = [
        line[line.index("Neo expiring_allocations") :].split(" [airflow")[0]
        for line in (output.out + output.err).splitlines()
        if "Neo expiring_allocations:" in line
    ]
    assert any(
        "/120 customers" in line and "ETA" in line and "requests/s" in line for line in lines
    )
    assert lines[-1].startswith("Neo expiring_allocations: 120/120 customers")
    assert "done in" in lines[-1]


@pytest.mark.parametrize("timezone", ["America/New_York", "Europe/London", "Asia/Kolkata"])
def test_daily_windows_tile_the_calendar_across_dst(timezone: str) -> None:
    # Daily runs whose data intervals end at local midnight, from before to after a DST change.
    day = pendulum.datetime(2026, 2, 25, tz=timezone)
    covered: list[dt.date] = []
    for _ in range(60):
        end = day.add(days=1)
        context = {"data_interval_start": day, "data_interval_end": end}
        for lead, window in ((0, 1), (7, 1)):
            start, stop = ExpiryWindow(days_ahead=lead, window_days=window).resolve(
                context, timezone
            )
            assert start == stop == end.date() + dt.timedelta(days=lead)
        covered.append(start)
        day = end
    assert covered == [covered[0] + dt.timedelta(days=n) for n in range(60)]  # no gap, no overlap


def test_utc_scheduled_runs_tile_in_the_org_time_zone() -> None:
    # The common case: a DAG scheduled in UTC, an organisation in New York (DST on 2026-03-08).
    day = pendulum.datetime(2026, 3, 1, 5, tz="UTC")
    days = []
    for _ in range(20):
        context = {"data_interval_end": day}
        start, _ = ExpiryWindow(days_ahead=30).resolve(context, "America/New_York")
        days.append(start)
        day = day.add(days=1)
    assert days == [days[0] + dt.timedelta(days=n) for n in range(20)]


def test_openlineage_facets_name_the_endpoint_and_the_file(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    op = ExpiringPointsOperator(
        task_id="lineage", customer_ids=[FIRST], **PROGRAM, days_ahead=0,
        output_path=f"file://{tmp_path}/lineage.ndjson",
    )  # fmt: skip
    op.execute(_context())
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (simulator.url, "/x/neo/pointsAllocation/dateRange")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("file", f"{tmp_path}/lineage.ndjson")
    ]
