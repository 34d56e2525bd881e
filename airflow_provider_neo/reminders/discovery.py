"""Who to remind: the customers of one task with points expiring on each day to remind, found
with Neo's batched paIds endpoint and summed over the brand's programs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from airflow_provider_neo.hooks.neo import NeoHook, PointsAwardedQuery
from airflow_provider_neo.reminders.model import Customer, ProgramCategory, Reminder


def find_reminders(
    hook: NeoHook,
    customers: Iterable[Customer],
    *,
    programs: Iterable[ProgramCategory],
    expiry_days: Mapping[int, Sequence[dt.date]],
    min_points: Decimal,
) -> list[Reminder]:
    """For each lead time and each of its expiry days, the customers with at least `min_points`
    AVAILABLE points expiring on that single day, summed over the programs.

    paIds takes one program, one point category and one expiry window per request, and its
    rows carry no expiry date: every (program, expiry day) is a query of its own. Each query
    asks for all of the task's customers at once, in batches filled up to the URL bound, so a
    task costs ``queries x ceil(customers / ids per batch)`` requests; the batches of every
    query go through the hook's one bounded pool together, so the queries run concurrently
    within `max_concurrency` and the rate budget.
    """
    by_id = {customer.customer_id: customer for customer in customers}
    programs = list(programs)
    # A day two lead times share is asked once.
    days = sorted({day for lead_days in expiry_days.values() for day in lead_days})
    day_of = {
        PointsAwardedQuery(
            program_id=program.program_id,
            point_category_id=program.point_category_id,
            expiry_start=day,
            expiry_end=day,
            status="AVAILABLE",
        ): day
        for day in days
        for program in programs
    }
    # expiry day -> customer -> program -> points
    points: dict[dt.date, dict[int, dict[str, Decimal]]] = {day: {} for day in days}
    for query, row in hook.iter_points_awarded_queries(list(by_id), day_of):
        remaining = row.remaining_points
        if remaining > 0:
            per_program = points[day_of[query]].setdefault(row.customer_id, {})
            key = str(query.program_id)
            per_program[key] = per_program.get(key, Decimal(0)) + remaining
    # Per-program points in the order of `programs`, whichever batch came back first.
    order = list(dict.fromkeys(str(program.program_id) for program in programs))
    reminders = []
    for lead, lead_days in sorted(expiry_days.items()):
        for day in sorted(set(lead_days)):
            for customer_id, per_program in sorted(points[day].items()):
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
                            programs={k: per_program[k] for k in order if k in per_program},
                            mobile=customer.mobile,
                        )
                    )
    return reminders
