"""Sensors that wait on Neo: for an event's points to be allocated, or for points to expire.

Both poke (``mode="poke"`` or ``"reschedule"``) or defer (``deferrable=True``, default from
``[operators] default_deferrable``) to a trigger that polls from the triggerer. Deferring first
checks once in the worker, so a condition already met never costs a trip to the triggerer.
Timeouts and ``soft_fail`` follow Airflow's sensor conventions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow.triggers.base import BaseTrigger

from airflow_provider_neo.client.batching import customer_id_stream
from airflow_provider_neo.conditions import event_rows_ready, expiring_points_ready
from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.endpoints import EventType, InvalidParameter
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.triggers.neo import EventPointsAllocationTrigger, ExpiringPointsTrigger
from airflow_provider_neo.utils.customers import CustomerSource, HasCustomers
from airflow_provider_neo.utils.windows import ExpiryWindow, HasExpiryWindow
from airflow_provider_neo.validation import points


class _NeoSensor(BaseSensorOperator):
    """Poke, or defer to a trigger, over one condition written once per sensor (`check`).

    :param neo_conn_id: the `neo` connection.
    :param hook_params: connection extra fields to override for this task (in the worker and
        in the triggerer), e.g. ``{"timeout": 10}``.
    """

    def __init__(
        self,
        *,
        neo_conn_id: str = DEFAULT_CONN_ID,
        hook_params: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.neo_conn_id = neo_conn_id
        self.hook_params = hook_params or {}
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> NeoHook:
        return NeoHook(self.neo_conn_id, **self.hook_params)

    def prepare(self, context: Any) -> None:
        """Check the (rendered) arguments before the first request."""

    def check(self) -> Any:
        """The sensor's result when its condition holds, else None."""
        raise NotImplementedError

    def trigger(self) -> BaseTrigger:
        raise NotImplementedError

    def poke(self, context: Any) -> PokeReturnValue:
        self.prepare(context)
        result = self.check()
        return PokeReturnValue(is_done=result is not None, xcom_value=result)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.prepare(context)
        result = self.check()
        if result is not None:
            return result
        self.defer(
            trigger=self.trigger(),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("status") == "success":
            return event["result"]
        raise AirflowException(f"{type(self).__name__} failed: {event.get('message')}")


class EventPointsAllocationSensor(_NeoSensor):
    """Waits until an event's allocation rows exist, e.g. after a transaction is posted.

    :param customer_id: the customer (templated).
    :param entity_id: the event's identifier, e.g. the bill number (templated).
    :param event_type: the event type's name (``TransactionAdd``) or id (15) (templated).
    :param status: only rows with this status count, e.g. ``AVAILABLE`` (templated).
    :param min_points: only succeed once the counted rows hold at least this many points.

    XCom: the matching allocation rows.
    """

    template_fields: Sequence[str] = ("customer_id", "entity_id", "event_type", "status")

    def __init__(
        self,
        *,
        customer_id: int | str,
        entity_id: str,
        event_type: int | str,
        status: str | None = None,
        min_points: Decimal | int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer_id = customer_id
        self.entity_id = entity_id
        self.event_type = event_type
        self.status = status
        self.min_points = points("min_points", min_points)

    def prepare(self, context: Any) -> None:
        try:
            self.event_type_id = EventType().coerce(self.event_type)
        except ValueError as exc:
            raise InvalidParameter("event_type", str(exc)) from None
        self.customer = next(customer_id_stream(self.customer_id, "customer_id"))
        self.status = self.status.strip().upper() if self.status else None

    def check(self) -> Any:
        rows = list(
            self.hook.iter_event_allocations(
                customer_id=self.customer, entity_id=self.entity_id, event_type=self.event_type_id
            )
        )
        return event_rows_ready(rows, status=self.status, min_points=self.min_points)

    def trigger(self) -> BaseTrigger:
        return EventPointsAllocationTrigger(
            neo_conn_id=self.neo_conn_id,
            hook_params=self.hook_params,
            customer_id=self.customer,
            entity_id=self.entity_id,
            event_type_id=self.event_type_id,
            status=self.status,
            min_points=None if self.min_points is None else str(self.min_points),
            poke_interval=self.poke_interval,
        )


class ExpiringPointsSensor(HasCustomers, HasExpiryWindow, _NeoSensor):
    """Waits until customers have at least ``min_points`` AVAILABLE points expiring in a window,
    for DAGs that should only go on when there is something to remind customers about.

    :param customer_ids: the customers (a list, one id, comma-separated text or an XCom;
        templated).
    :param customers_path: instead, a CSV with a ``customer_id`` column or NDJSON, local or any
        ObjectStoragePath URL (templated); read once per check.
    :param customers_column: the id column of ``customers_path`` (default ``customer_id``).
    :param program_id: the loyalty program (templated).
    :param point_category_id: the point category (templated).
    :param expiry_start: first expiry day; with ``expiry_end``, an explicit window (templated).
    :param expiry_end: last expiry day, inclusive (templated).
    :param days_ahead: instead, the window starts this many days after the run's data interval
        end, in the organisation's time zone (templated).
    :param window_days: the derived window's length in days (default 1).
    :param min_points: the total remaining points needed (default 1).

    XCom: ``{"remaining_points": "...", "customers": {"<id>": "<points>", ...}}``.
    """

    template_fields: Sequence[str] = (
        *CustomerSource.template_fields, "program_id", "point_category_id",
        *ExpiryWindow.template_fields,
    )  # fmt: skip

    def __init__(
        self,
        *,
        program_id: int | str,
        point_category_id: int | str,
        customer_ids: Any = None,
        customers_path: str | None = None,
        customers_column: str = "customer_id",
        expiry_start: Any = None,
        expiry_end: Any = None,
        days_ahead: int | str | None = None,
        window_days: int | str | None = None,
        min_points: Decimal | int | str = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer_source = CustomerSource(customer_ids, customers_path, customers_column)
        self.expiry_window = ExpiryWindow(expiry_start, expiry_end, days_ahead, window_days)
        self.program_id = program_id
        self.point_category_id = point_category_id
        self.min_points = points("min_points", min_points) or Decimal(0)

    def prepare(self, context: Any) -> None:
        self.customers = list(customer_id_stream(self.customer_source.resolve()))
        self.window = self.expiry_window.resolve(context, self.hook.settings.timezone)

    def check(self) -> Any:
        rows = list(
            self.hook.iter_points_awarded(
                self.customers,
                program_id=self.program_id,  # type: ignore[arg-type]
                point_category_id=self.point_category_id,  # type: ignore[arg-type]
                expiry_start=self.window[0],
                expiry_end=self.window[1],
            )
        )
        return expiring_points_ready(rows, min_points=self.min_points)

    def trigger(self) -> BaseTrigger:
        return ExpiringPointsTrigger(
            neo_conn_id=self.neo_conn_id,
            hook_params=self.hook_params,
            customer_ids=self.customers,
            program_id=self.program_id,
            point_category_id=self.point_category_id,
            expiry_start=self.window[0].isoformat(),
            expiry_end=self.window[1].isoformat(),
            min_points=str(self.min_points),
            poke_interval=self.poke_interval,
        )
