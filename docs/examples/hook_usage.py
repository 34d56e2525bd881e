"""NeoHook from Python (in a @task, a script, a notebook): Neo's points endpoints as records.

Against a local simulator with the `neo` connection of simulator-connection.sh, started with
``neo-simulator --as-of 2026-11-21`` (the day its data is generated for, which the dates here
count from). Against Neo, count from ``pendulum.today()`` instead.
"""

import pendulum

from airflow_provider_neo.hooks.neo import NeoHook, PointsAwardedQuery

hook = NeoHook(neo_conn_id="neo_default")
customers = [400000001, 400000002, 400000004, 400000005, 400000006]
day = pendulum.date(2026, 11, 21)  # the simulator's --as-of
in_a_year = day.add(years=1)

# paIds: many customers per request; their AVAILABLE points expiring within a year.
for row in hook.iter_points_awarded(
    customers,
    program_id=2282,
    point_category_id=17383,
    expiry_start=day,
    expiry_end=in_a_year,
):
    print("awarded", row.customer_id, row.id, row.status, row.remaining_points)

# Several questions about the same customers at once, sharing the hook's pool of requests:
# the points still to expire, and those that expired in the past year.
queries = [
    PointsAwardedQuery(
        program_id=2282, point_category_id=17383, expiry_start=day, expiry_end=in_a_year
    ),
    PointsAwardedQuery(
        program_id=2282,
        point_category_id=17383,
        expiry_start=day.subtract(years=1),
        expiry_end=day.subtract(days=1),
        status="EXPIRED",
    ),
]
for query, summary in hook.iter_points_awarded_queries(customers, queries):
    print("query", query.status, summary.customer_id, summary.id, summary.points_exclusive)

# dateRange: the full allocation rows (every status), each customer's pages in order.
for allocation in hook.iter_expiring_allocations(
    customers,
    program_id=2282,
    point_category_id=17383,
    expiry_start=day,
    expiry_end=in_a_year,
):
    expires = pendulum.from_timestamp(allocation.expiry_date / 1000, tz="Asia/Kolkata")
    print(
        "expiring",
        allocation.customer_id,
        allocation.id,
        allocation.status,
        expires.to_date_string(),
    )

# expiredPoints: the points that expired, per customer, program and moment, by year.
for year in (day.year - 1, day.year):
    for expired in hook.iter_expired_points(customers, year=year):
        print(
            "expired",
            expired.customer_id,
            expired.program_id,
            expired.points_expiry_date,
            expired.points,
        )

print(hook.test_connection())  # (True, 'Connected to Neo at http://127.0.0.1:8790 (...)')
print(hook.stats.snapshot())  # requests, retries, statuses, duplicates dropped, tokens fetched
