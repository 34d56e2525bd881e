"""When a sensor is satisfied: written once, used by the sensors' poke and by their triggers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from airflow_provider_neo.records import PointsAllocation, PointsAwardedSummary


def event_rows_ready(
    rows: Sequence[PointsAllocation], *, status: str | None, min_points: Decimal | None
) -> list[dict[str, Any]] | None:
    """The rows as XCom-ready dicts once the event has allocated (with `status`, and at least
    `min_points` points across the matching rows); None while it has not."""
    matching = [row for row in rows if status is None or row.status == status]
    if not matching:
        return None
    if min_points is not None and sum(row.points_exclusive for row in matching) < min_points:
        return None
    return [msgspec.to_builtins(row) for row in matching]


def expiring_points_ready(
    rows: Sequence[PointsAwardedSummary], *, min_points: Decimal
) -> dict[str, Any] | None:
    """Remaining AVAILABLE points per customer once they add up to `min_points`; else None."""
    per_customer: dict[int, Decimal] = {}
    for row in rows:
        remaining = row.remaining_points
        if remaining > 0:
            per_customer[row.customer_id] = (
                per_customer.get(row.customer_id, Decimal(0)) + remaining
            )
    total = sum(per_customer.values(), Decimal(0))
    if total < min_points or not per_customer:
        return None
    return {
        "remaining_points": str(total),
        "customers": {
            str(customer): str(points) for customer, points in sorted(per_customer.items())
        },
    }
