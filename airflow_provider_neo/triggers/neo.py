"""Triggers that poll Neo from the triggerer with idempotent GETs, for the deferrable sensors.

They serialise to plain data (ids, ISO dates, decimal strings) and hold no state beyond it, so a
triggerer restart simply polls again. A transient fault (5xx, 429, a dropped connection) that
outlasts the hook's retries is logged and polled again; anything else ends the wait with an error
event that the sensor raises in the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_neo.client.errors import (
    NeoConnectionError,
    NeoError,
    NeoRateLimitedError,
    NeoServerError,
)
from airflow_provider_neo.conditions import event_rows_ready, expiring_points_ready
from airflow_provider_neo.hooks.neo import NeoAsyncHook
from airflow_provider_neo.utils.customers import CustomerSource, HasCustomers
from airflow_provider_neo.utils.windows import ExpiryWindow, HasExpiryWindow

TRANSIENT = (NeoServerError, NeoConnectionError, NeoRateLimitedError)


class _NeoPollTrigger(BaseTrigger):
    def __init__(
        self, neo_conn_id: str, poke_interval: float, hook_params: dict[str, Any] | None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.neo_conn_id = neo_conn_id
        self.poke_interval = poke_interval
        self.hook_params = hook_params or {}

    def _kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "neo_conn_id": self.neo_conn_id,
                "poke_interval": self.poke_interval,
                # only when given: triggers serialised without it resume unchanged
                **({"hook_params": self.hook_params} if self.hook_params else {}),
                **self._kwargs(),
            },
        )

    async def _poll(
        self, check: Callable[[NeoAsyncHook], Awaitable[Any]]
    ) -> AsyncIterator[TriggerEvent]:
        async with NeoAsyncHook(self.neo_conn_id, **self.hook_params) as hook:
            while True:
                try:
                    result = await check(hook)
                except TRANSIENT as exc:
                    self.log.warning("Neo is unavailable, polling again: %s", exc)
                    result = None
                except (NeoError, ValueError) as exc:
                    yield TriggerEvent({"status": "error", "message": str(exc)})
                    return
                if result is not None:
                    yield TriggerEvent({"status": "success", "result": result})
                    return
                await asyncio.sleep(self.poke_interval)


class EventPointsAllocationTrigger(_NeoPollTrigger):
    """Fires when an event's allocation rows exist (optionally with a status or min points)."""

    def __init__(
        self,
        *,
        neo_conn_id: str,
        customer_id: int,
        entity_id: str,
        event_type_id: int,
        status: str | None = None,
        min_points: str | None = None,
        poke_interval: float = 60.0,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(neo_conn_id, poke_interval, hook_params)
        self.customer_id = customer_id
        self.entity_id = entity_id
        self.event_type_id = event_type_id
        self.status = status
        self.min_points = min_points

    def _kwargs(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "entity_id": self.entity_id,
            "event_type_id": self.event_type_id,
            "status": self.status,
            "min_points": self.min_points,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        minimum = Decimal(self.min_points) if self.min_points is not None else None

        async def check(hook: NeoAsyncHook) -> Any:
            rows = await hook.aget_event_allocations(
                customer_id=self.customer_id,
                entity_id=self.entity_id,
                event_type=self.event_type_id,
            )
            return event_rows_ready(rows, status=self.status, min_points=minimum)

        async for event in self._poll(check):
            yield event


class ExpiringPointsTrigger(HasCustomers, HasExpiryWindow, _NeoPollTrigger):
    """Fires when customers have at least `min_points` AVAILABLE points expiring in a window."""

    def __init__(
        self,
        *,
        neo_conn_id: str,
        customer_ids: list[int],
        program_id: int | str,
        point_category_id: int | str,
        expiry_start: str,
        expiry_end: str,
        min_points: str = "1",
        poke_interval: float = 60.0,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(neo_conn_id, poke_interval, hook_params)
        self.customer_source = CustomerSource(customer_ids=list(customer_ids))
        self.expiry_window = ExpiryWindow(expiry_start=expiry_start, expiry_end=expiry_end)
        self.program_id = program_id
        self.point_category_id = point_category_id
        self.min_points = min_points

    def _kwargs(self) -> dict[str, Any]:
        return {
            "customer_ids": self.customer_ids,
            "program_id": self.program_id,
            "point_category_id": self.point_category_id,
            "expiry_start": self.expiry_start,
            "expiry_end": self.expiry_end,
            "min_points": self.min_points,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        minimum = Decimal(self.min_points)

        async def check(hook: NeoAsyncHook) -> Any:
            start, end = self.expiry_window.resolve({}, hook.settings.timezone)
            rows = await hook.aget_points_awarded(
                self.customer_source.resolve(),
                program_id=self.program_id,  # type: ignore[arg-type]
                point_category_id=self.point_category_id,  # type: ignore[arg-type]
                expiry_start=start,
                expiry_end=end,
            )
            return expiring_points_ready(rows, min_points=minimum)

        async for event in self._poll(check):
            yield event
