"""Sensors and triggers: they succeed when rows appear later, time out cleanly, and the
deferrable path (serialise, poll in the triggerer, resume) gives the same result as poking."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_neo.sensors.neo import EventPointsAllocationSensor, ExpiringPointsSensor
from tests.harness import AS_OF, RunningSimulator

CONTEXT: dict[str, Any] = {"data_interval_end": pendulum.datetime(2026, 11, 21, tz="UTC")}


def _insert_later(
    sim: RunningSimulator, rows: list[dict[str, Any]], delay: float
) -> threading.Thread:
    def insert() -> None:
        time.sleep(delay)
        requests.post(f"{sim.url}/__sim/allocations", json=rows, timeout=10).raise_for_status()

    thread = threading.Thread(target=insert)
    thread.start()
    return thread


def _bill(customer: int, entity: str, **row: Any) -> dict[str, Any]:
    return {
        "customer_id": customer, "program_id": 2282, "point_category_id": 17383,
        "expiry_date": "2027-06-30", "entity_id": entity, "event_type_id": 15, **row,
    }  # fmt: skip


def _event_sensor(customer: int, entity: str, **kwargs: Any) -> EventPointsAllocationSensor:
    kwargs = {"poke_interval": 0.2, "timeout": 20, **kwargs}
    return EventPointsAllocationSensor(
        task_id="wait",
        customer_id=customer,
        entity_id=entity,
        event_type="TransactionAdd",
        **kwargs,
    )


def test_event_sensor_pokes_until_the_rows_appear(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    inserting = _insert_later(simulator, [_bill(990001001, "BILL-1001", points=120)], delay=1.0)
    rows = _event_sensor(990001001, "BILL-1001", mode="poke").execute(CONTEXT)
    inserting.join()
    assert [(row["customer_id"], row["points_exclusive"]) for row in rows] == [(990001001, "120")]


def test_event_sensor_waits_for_the_status_and_points_asked_for(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    requests.post(
        f"{simulator.url}/__sim/allocations",
        json=[_bill(990001002, "BILL-1002", points=30, status="INACTIVE")],
        timeout=10,
    ).raise_for_status()
    sensor = _event_sensor(990001002, "BILL-1002", status="AVAILABLE", min_points=100)
    assert not sensor.poke(CONTEXT).is_done  # an INACTIVE row does not count
    inserting = _insert_later(simulator, [_bill(990001002, "BILL-1002", points=60)], delay=0.3)
    inserting.join()
    assert not sensor.poke(CONTEXT).is_done  # 60 AVAILABLE points, fewer than 100
    _insert_later(simulator, [_bill(990001002, "BILL-1002", points=50)], delay=0).join()
    result = sensor.poke(CONTEXT)
    assert result.is_done
    assert result.xcom_value is not None
    assert sorted(row["points_exclusive"] for row in result.xcom_value) == ["50", "60"]


def test_event_sensor_times_out_cleanly_and_soft_fail_skips(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    with pytest.raises(AirflowSensorTimeout, match="Sensor has timed out"):
        _event_sensor(990001003, "NEVER", mode="poke", timeout=0.6).execute(CONTEXT)
    with pytest.raises(AirflowSkipException):
        _event_sensor(990001003, "NEVER", soft_fail=True, timeout=0.6).execute(CONTEXT)


def _round_trip(trigger: BaseTrigger) -> BaseTrigger:
    """What the triggerer does: rebuild the trigger from its serialised form."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt: BaseTrigger = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    return rebuilt


async def _first_event(trigger: BaseTrigger, timeout: float = 20) -> TriggerEvent:
    async def first() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), timeout)


def test_deferrable_event_sensor_resumes_with_the_same_rows(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    sensor = _event_sensor(990001004, "BILL-1004", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == dt.timedelta(seconds=20)
    trigger = _round_trip(deferred.value.trigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_neo.triggers.neo.EventPointsAllocationTrigger"
    assert kwargs == {
        "neo_conn_id": "neo_default", "poke_interval": 0.2, "customer_id": 990001004,
        "entity_id": "BILL-1004", "event_type_id": 15, "status": None, "min_points": None,
    }  # fmt: skip
    inserting = _insert_later(simulator, [_bill(990001004, "BILL-1004", points=75)], delay=0.8)
    event = asyncio.run(_first_event(trigger))
    inserting.join()
    # A triggerer restart rebuilds the trigger from the same data and gets the same answer.
    assert asyncio.run(_first_event(_round_trip(trigger))) == event
    resumed = sensor.execute_complete(CONTEXT, event.payload)
    assert resumed == _event_sensor(990001004, "BILL-1004").poke(CONTEXT).xcom_value
    assert [row["points_exclusive"] for row in resumed] == ["75"]


def test_deferrable_sensor_does_not_defer_when_the_rows_exist(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    rows = EventPointsAllocationSensor(
        task_id="wait",
        customer_id=374819205,
        entity_id="hfjWDK0dek",
        event_type=15,
        deferrable=True,
    ).execute(CONTEXT)
    assert [row["id"] for row in rows] == [31787856]


def test_trigger_reports_a_hard_failure_and_the_sensor_raises_it(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, auth="oauth", oauth_client_secret="wrong")
    sensor = _event_sensor(990001005, "BILL-1005", deferrable=True)
    from airflow_provider_neo.triggers.neo import EventPointsAllocationTrigger

    trigger = EventPointsAllocationTrigger(
        neo_conn_id="neo_default", customer_id=990001005, entity_id="BILL-1005", event_type_id=15
    )
    event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "error"
    assert "refused the OAuth client key or secret" in event.payload["message"]
    assert "wrong" not in event.payload["message"]
    with pytest.raises(Exception, match="EventPointsAllocationSensor failed: Neo refused"):
        sensor.execute_complete(CONTEXT, event.payload)


def test_trigger_keeps_polling_through_a_transient_outage(
    start_sim: Any, neo_conn: Callable[..., str]
) -> None:
    sim = start_sim("--error-rate", "1")
    neo_conn(sim, max_retries=0)
    from airflow_provider_neo.triggers.neo import EventPointsAllocationTrigger

    trigger = EventPointsAllocationTrigger(
        neo_conn_id="neo_default", customer_id=374819205, entity_id="hfjWDK0dek",
        event_type_id=15, poke_interval=0.2,
    )  # fmt: skip

    def recover() -> None:
        time.sleep(1.0)
        sim.control("PUT", "faults", json={"error_rate": 0})

    threading.Thread(target=recover).start()
    event = asyncio.run(_first_event(trigger))
    assert event.payload["status"] == "success"
    assert sim.control("GET", "stats")["requests"]["event_allocations"]["200"] == 1


def _expiring_sensor(customers: list[int], **kwargs: Any) -> ExpiringPointsSensor:
    return ExpiringPointsSensor(
        task_id="expiring", customer_ids=customers, program_id=2282, point_category_id=17383,
        days_ahead=30, window_days=7, poke_interval=0.2, timeout=20, **kwargs,
    )  # fmt: skip


def test_expiring_points_sensor_waits_for_enough_points(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    customers = [990002001, 990002002]
    in_window = (AS_OF + dt.timedelta(days=32)).isoformat()
    sensor = _expiring_sensor(customers, min_points=100, mode="poke")
    rows = [
        _bill(990002001, "B-1", points=70, expiry_date=in_window),
        _bill(990002002, "B-2", points=45.5, expiry_date=in_window, redeemed=10),
        _bill(990002002, "B-3", points=500, expiry_date="2030-01-01"),  # outside the window
    ]
    inserting = _insert_later(simulator, rows, delay=1.0)
    result = sensor.execute(CONTEXT)
    inserting.join()
    assert result == {
        "remaining_points": "105.5",
        "customers": {"990002001": "70", "990002002": "35.5"},
    }


def test_deferrable_expiring_points_sensor_matches_poking(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)
    customers = [990003001]
    sensor = _expiring_sensor(customers, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)
    trigger = _round_trip(deferred.value.trigger)
    assert trigger.serialize()[1]["expiry_start"] == (AS_OF + dt.timedelta(days=30)).isoformat()
    assert trigger.serialize()[1]["expiry_end"] == (AS_OF + dt.timedelta(days=36)).isoformat()
    in_window = (AS_OF + dt.timedelta(days=36)).isoformat()
    inserting = _insert_later(
        simulator, [_bill(990003001, "B-9", points=12, expiry_date=in_window)], 0.5
    )
    event = asyncio.run(_first_event(trigger))
    inserting.join()
    assert (
        sensor.execute_complete(CONTEXT, event.payload)
        == _expiring_sensor(customers).poke(CONTEXT).xcom_value
    )
    assert event.payload["result"]["remaining_points"] == "12"


def test_sensors_pass_hook_params_to_their_hook_and_their_trigger(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator, auth="oauth")
    wrong = {"oauth_client_secret": "wrong"}
    with pytest.raises(Exception, match="refused the OAuth client key or secret"):
        _event_sensor(374819205, "hfjWDK0dek", hook_params=wrong).poke(CONTEXT)
    sensor = _event_sensor(990001006, "BILL-1006", deferrable=True, hook_params={"timeout": 9})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)
    trigger = _round_trip(deferred.value.trigger)
    assert trigger.serialize()[1]["hook_params"] == {"timeout": 9}
    # The triggerer's hook takes them too: a wrong secret ends the wait with Neo's refusal.
    failing = _round_trip(
        type(trigger)(**{**trigger.serialize()[1], "hook_params": wrong, "entity_id": "hfjWDK0dek",
                         "customer_id": 374819205})
    )  # fmt: skip
    event = asyncio.run(_first_event(failing))
    assert event.payload["status"] == "error"
    assert "refused the OAuth client key or secret" in event.payload["message"]


def test_expiring_points_sensor_windows_in_the_zone_its_hook_params_name(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    neo_conn(simulator)  # the organisation's zone is Asia/Kolkata: the run's day is AS_OF
    sensor = _expiring_sensor(
        [990003002], deferrable=True, hook_params={"timezone": "America/New_York"}
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)  # 2026-11-21 00:00 UTC is the evening before in New York
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["expiry_start"] == (AS_OF + dt.timedelta(days=29)).isoformat()
    assert kwargs["hook_params"] == {"timezone": "America/New_York"}


def test_expiring_points_sensor_reads_its_customers_from_a_file(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    customers = [990004001, 990004002]
    in_window = (AS_OF + dt.timedelta(days=31)).isoformat()
    requests.post(
        f"{simulator.url}/__sim/allocations",
        json=[_bill(c, f"F-{c}", points=20, expiry_date=in_window) for c in customers],
        timeout=10,
    ).raise_for_status()
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,email\n" + "".join(f"{c},x@example.com\n" for c in customers))
    sensor = ExpiringPointsSensor(
        task_id="expiring", customers_path=str(path), program_id=2282, point_category_id=17383,
        days_ahead=30, window_days=7,
    )  # fmt: skip
    result = sensor.poke(CONTEXT)
    assert result.xcom_value == _expiring_sensor(customers).poke(CONTEXT).xcom_value
    assert result.xcom_value == {
        "remaining_points": "40", "customers": {"990004001": "20", "990004002": "20"}
    }  # fmt: skip
