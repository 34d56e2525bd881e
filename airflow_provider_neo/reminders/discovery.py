"""Who to remind: the customers of one shard with points expiring on each day to remind, found
with Neo's batched paIds endpoint and summed over the brand's programs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders.model import Customer, ProgramCategory, Reminder


def find_reminders(
    hook: NeoHook,
    customers: Sequence[Customer],
    *,
    programs: Iterable[ProgramCategory],
    expiry_days: Mapping[int, Sequence[dt.date]],
    min_points: Decimal,
) -> list[Reminder]:
    """For each lead time and each of its expiry days, the customers with at least `min_points`
    AVAILABLE points expiring on that single day, summed over the programs, via batched paIds
    calls."""
    by_id = {customer.customer_id: customer for customer in customers}
    ids = list(by_id)
    programs = list(programs)  # iterated once per day
    reminders = []
    for lead, days in sorted(expiry_days.items()):
        for day in sorted(days):
            points: dict[int, dict[str, Decimal]] = {}
            for program in programs:
                for row in hook.iter_points_awarded(
                    ids,
                    program_id=program.program_id,
                    point_category_id=program.point_category_id,
                    expiry_start=day,
                    expiry_end=day,
                    status="AVAILABLE",
                ):
                    remaining = row.remaining_points
                    if remaining > 0:
                        per_program = points.setdefault(row.customer_id, {})
                        key = str(program.program_id)
                        per_program[key] = per_program.get(key, Decimal(0)) + remaining
            for customer_id, per_program in sorted(points.items()):
                total = sum(per_program.values(), Decimal(0))
                if total >= min_points:
                    customer = by_id[customer_id]
                    reminders.append(
                        Reminder(
                            customer_id=customer_id,
                            email=customer.email,
                            first_name=customer.first_name,
                            lead_days=lead,
                            expiry_date=day,
                            remaining_points=total,
                            programs=per_program,
                            mobile=customer.mobile,
                        )
                    )
    return reminders
