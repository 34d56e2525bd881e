"""The I/O-free exchange driven by scripted replies, and connection settings made without
Airflow's Connection: what the unit tests of the client's rules share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_provider_neo.client.errors import NeoError
from airflow_provider_neo.client.exchange import Failed, Received, Reserve, Reserved, Send
from airflow_provider_neo.connection import NeoConnectionSettings


def settings(**extra: Any) -> NeoConnectionSettings:
    """Basic-auth settings for neo.example with `extra` as the connection's extras."""

    class Conn:
        host: str | None = "neo.example"
        schema: str | None = "https"
        port: int | None = None
        login: str | None = "till01"
        password: str | None = "s3cret-pass"

        def __init__(self) -> None:
            self.extra_dejson: dict[str, Any] = dict(extra)

    return NeoConnectionSettings.from_connection(Conn())


def drive(exchange: Any, replies: Iterable[Received | Failed]) -> tuple[list[Any], Any]:
    """Answer every Send with the next scripted reply (a slot of the budget is always free at
    once); returns the actions and the result, or the NeoError raised."""
    script = iter(replies)
    actions: list[Any] = []
    reply: Any = None
    try:
        while True:
            action = exchange.send(reply)
            actions.append(action)
            if isinstance(action, Reserve):
                reply = Reserved(0.0)
            elif isinstance(action, Send):
                reply = next(script)
            else:
                reply = None
    except StopIteration as stop:
        return actions, stop.value
    except NeoError as error:
        return actions, error


def allocation_row(id_: int) -> dict[str, Any]:
    """A valid points-allocation row (dateRange, event) with id `id_`."""
    zero = "0"
    return {
        "till_id": 1, "point_category_id": 17383, "program_id": 2282, "event_log_id": 1,
        "event_type_id": 15, "points_source_type_id": 1, "original_points": "10",
        "awarded_date": 0, "returned_exclusive_value": zero, "points_source_id": 1, "id": id_,
        "cps_id": 1, "original_customer_id": 400000001, "expiry_strategy_id": 1,
        "returned_value": zero, "redeemed_exclusive_value": zero, "expiry_date": 0,
        "auto_update_time": 0, "redeemed_value": zero, "expired_exclusive_value": zero,
        "allocation_strategy_id": 1, "points_value": "12.500", "org_id": 1, "expired_value": zero,
        "customer_id": 400000001, "points_exclusive": "12.500", "status": "AVAILABLE",
    }  # fmt: skip
