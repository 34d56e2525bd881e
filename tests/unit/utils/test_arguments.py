"""The customers and expiry-window arguments, written once (`CustomerSource`, `ExpiryWindow`):
every operator and sensor that takes them checks them alike at construction, renders them as
template fields, and resolves them the same way."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_provider_neo.operators.neo import (
    ExpiredPointsOperator,
    ExpiringPointsOperator,
    PointsAwardedOperator,
)
from airflow_provider_neo.sensors.neo import ExpiringPointsSensor
from airflow_provider_neo.utils.customers import CustomerSource
from airflow_provider_neo.utils.windows import ExpiryWindow

PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
WINDOWED = (ExpiringPointsOperator, PointsAwardedOperator, ExpiringPointsSensor)
BAD_WINDOWS = [
    ({"days_ahead": 1, "expiry_start": "2026-01-01"}, "days_ahead: give either"),
    ({"expiry_start": "2026-01-01"}, "expiry_end: an explicit window needs both"),
    ({"expiry_end": "2026-01-01"}, "expiry_start: an explicit window needs both"),
    ({}, "days_ahead: give expiry_start/expiry_end, or days_ahead"),
    ({"days_ahead": 1, "window_days": 0}, "window_days: expected at least 1"),
    ({"days_ahead": -1}, "days_ahead: expected 0 or more"),
]


@pytest.mark.parametrize(("window", "message"), BAD_WINDOWS)
def test_bad_windows_fail_every_windowed_task_alike_at_construction(
    window: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        ExpiryWindow(**window)
    for task_type in WINDOWED:
        with pytest.raises(ValueError, match=f"^{message}"):
            task_type(task_id="x", customer_ids=[1], **PROGRAM, **window)


@pytest.mark.parametrize("customers", [{}, {"customer_ids": [1], "customers_path": "/c.csv"}])
def test_customers_need_exactly_one_source_in_every_task(customers: dict[str, Any]) -> None:
    message = "^customer_ids: give exactly one of customer_ids or customers_path"
    with pytest.raises(ValueError, match=message):
        CustomerSource(**customers)
    with pytest.raises(ValueError, match=message):
        ExpiredPointsOperator(task_id="x", year=2024, **customers)
    for task_type in WINDOWED:
        with pytest.raises(ValueError, match=message):
            task_type(task_id="x", **PROGRAM, days_ahead=1, **customers)


@pytest.mark.parametrize("task_type", WINDOWED)
def test_rendered_arguments_are_what_the_task_resolves(task_type: type[Any]) -> None:
    op = task_type(
        task_id="x", customer_ids="{{ params.ids }}", **PROGRAM,
        expiry_start="{{ ds }}", expiry_end="{{ params.last }}",
    )  # fmt: skip
    assert {"customer_ids", "customers_path", "expiry_start", "expiry_end", "days_ahead",
            "window_days"} <= set(op.template_fields)  # fmt: skip
    context = {"ds": "2026-11-21", "params": {"ids": "7, 8 9", "last": "2026-12-01"}}
    op.render_template_fields(context)
    assert (op.customer_ids, op.expiry_start, op.expiry_end) == (
        "7, 8 9",
        "2026-11-21",
        "2026-12-01",
    )
    assert list(op.customer_source.resolve()) == ["7", "8", "9"]
    assert op.expiry_window.resolve(context, "UTC") == (dt.date(2026, 11, 21), dt.date(2026, 12, 1))


@pytest.mark.parametrize("task_type", WINDOWED)
def test_customers_from_an_upstream_xcom_make_it_upstream(task_type: type[Any]) -> None:
    with DAG("customers_from_xcom", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):

        @task
        def customer_ids() -> list[int]:
            return [1, 2]

        op = task_type(task_id="x", customer_ids=customer_ids(), **PROGRAM, days_ahead=1)
    assert op.upstream_task_ids == {"customer_ids"}


def test_a_derived_window_is_the_run_day_in_the_org_zone_plus_the_lead() -> None:
    context = {"data_interval_end": pendulum.datetime(2026, 11, 21, 2, tz="UTC")}
    window = ExpiryWindow(days_ahead=7, window_days=3)
    assert window.resolve(context, "UTC") == (dt.date(2026, 11, 28), dt.date(2026, 11, 30))
    # 21:00 on the 20th in New York
    assert window.resolve(context, "America/New_York") == (
        dt.date(2026, 11, 27), dt.date(2026, 11, 29),
    )  # fmt: skip


def test_customers_from_text_a_list_and_a_file(tmp_path: Path) -> None:
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("id,email\n11,a@example.com\n12,b@example.com\n")
    assert list(CustomerSource("11,12").resolve()) == ["11", "12"]
    assert list(CustomerSource(11).resolve()) == [11]
    assert list(CustomerSource([11, 12]).resolve()) == [11, 12]
    assert list(CustomerSource(customers_path=str(csv_file), customers_column="id").resolve()) == [
        "11",
        "12",
    ]
    with pytest.raises(ValueError, match=r"^customers_path: .* has no 'customer_id' column"):
        CustomerSource(customers_path=str(csv_file)).resolve()


def test_a_customers_csv_saved_by_excel_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    excel = tmp_path / "customers.csv"
    excel.write_bytes(b"\xef\xbb\xbfcustomer_id,name\r\n11,Zo\xc3\xab\r\n12,Ana\r\n")
    assert list(CustomerSource(customers_path=str(excel)).resolve()) == ["11", "12"]


def test_a_latin1_customers_file_fails_naming_the_file_the_line_and_the_encoding(
    tmp_path: Path,
) -> None:
    latin1 = tmp_path / "customers.csv"
    latin1.write_bytes("customer_id,name\n11,Ana\n12,Zoë\n".encode("latin-1"))
    ids = iter(CustomerSource(customers_path=str(latin1)).resolve())
    assert next(ids) == "11"
    with pytest.raises(ValueError, match=rf"^customers_path: line 3 of {latin1} is not UTF-8"):
        next(ids)


def test_ids_repeated_in_a_customers_file_are_drawn_once_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id\n11\n12\n11\n012\n13\n")
    source = CustomerSource(customers_path=str(path))
    assert list(source.resolve()) == ["11", "12", "13"]
    assert source.duplicate_ids == 2
    ndjson = tmp_path / "customers.ndjson"
    ndjson.write_text('{"customer_id": 5}\n{"customer_id": 5}\n6\n')
    source = CustomerSource(customers_path=str(ndjson))
    assert list(source.resolve()) == [5, 6]
    assert source.duplicate_ids == 1
