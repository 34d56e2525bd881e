"""The rows behind the Neo documents' sample responses, so their sample requests answer verbatim.

Fields a document's sample does not show (the status and expiry of the paIds rows, the events'
identifiers where no request names them) are filled with values that satisfy the sample request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from neo_simulator.store import (
    ALLOCATION_COLUMNS,
    AllocationRow,
    NeoStore,
    decimal_to_milli,
)

_ZERO_POINTS: Final = {
    "original_points": 0,
    "points_value": 0,
    "redeemed_value": 0,
    "expired_value": 0,
    "returned_value": 0,
    "redeemed_exclusive_value": 0,
    "expired_exclusive_value": 0,
    "returned_exclusive_value": 0,
}

# points_allocation_event.txt: its second sample request names this event.
EVENT_SAMPLE: Final[dict[str, Any]] = {
    "till_id": 50140377, "point_category_id": 17383, "program_id": 2282,
    "event_log_id": 10072893, "event_type_id": 15, "points_source_type_id": 1,
    "original_points": 0, "awarded_date": 1648489472000, "returned_exclusive_value": 0,
    "points_source_id": 2148434124, "id": 31787856, "cps_id": 51368957,
    "original_customer_id": 374819205, "expiry_strategy_id": 105602, "returned_value": 0,
    "redeemed_exclusive_value": 0, "expiry_date": 1648578599000,
    "auto_update_time": 1648596913000, "redeemed_value": 0, "expired_exclusive_value": 50,
    "allocation_strategy_id": 105773, "points_value": 0, "org_id": 50914, "expired_value": 0,
    "customer_id": 374819205, "points_exclusive": 50, "status": "EXPIRED",
}  # fmt: skip
EVENT_SAMPLE_ENTITY_ID: Final = "hfjWDK0dek"

# points_allocation_date_range.txt and das_pa_ids_for_date_range.txt share this row.
DATE_RANGE_SAMPLE: Final[dict[str, Any]] = {
    "till_id": 50140377, "point_category_id": 17383, "program_id": 2282,
    "event_log_id": 33822621, "event_type_id": 15, "points_source_type_id": 1,
    "original_points": 0, "awarded_date": 1735309787000, "returned_exclusive_value": 50,
    "points_source_id": 2151585684, "id": 38855229, "cps_id": 80537188,
    "original_customer_id": 383474113, "expiry_strategy_id": 105462, "returned_value": 0,
    "redeemed_exclusive_value": 0, "expiry_date": 1766687399000,
    "auto_update_time": 1735309788000, "redeemed_value": 0, "expired_exclusive_value": 0,
    "allocation_strategy_id": 105594, "points_value": 0, "org_id": 50914, "expired_value": 0,
    "customer_id": 383474113, "points_exclusive": 100, "status": "AVAILABLE",
}  # fmt: skip

# points_awarded_paids.txt: (id, customer_id, event_log_id, source_table, points_exclusive).
PAIDS_SAMPLE: Final = (
    (39302312, 388034468, 39032930, "points_awarded", 600),
    (39322858, 388034468, 39701027, "points_awarded", 200),
    (54805668, 387993857, 39032928, "points_awarded_bill_lineitems", 10),
    (54805669, 387993857, 39032928, "points_awarded_bill_lineitems", 10),
    (54805670, 387993857, 39032928, "points_awarded_bill_lineitems", 12),
    (54805673, 388034468, 39032930, "points_awarded_bill_lineitems", 10),
    (54805671, 388034468, 39032930, "points_awarded_bill_lineitems", 10),
    (54805672, 388034468, 39032930, "points_awarded_bill_lineitems", 12),
)
PAIDS_PROGRAM_ID, PAIDS_CATEGORY_ID, PAIDS_ORG_ID = 3379, 40022, 52011
PAIDS_EXPIRY_DAY: Final = dt.date(2026, 3, 31)

# customer_expired_points.txt: (local expiry moment, program id, points) for customer 11064.
EXPIRED_SAMPLE_CUSTOMER: Final = 11064
EXPIRED_SAMPLE: Final = (
    (dt.datetime(2024, 4, 1, 5, 0, 2), 33, 800),
    (dt.datetime(2024, 8, 1, 5, 0, 2), 33, 100),
)


def _row(fields: dict[str, Any], source_table: str = "points_awarded") -> AllocationRow:
    values = {**fields, "source_table": source_table}
    return tuple(
        decimal_to_milli(values[column.removesuffix("_milli")])
        if column.endswith("_milli")
        else values[column]
        for column in ALLOCATION_COLUMNS
    )  # type: ignore[return-value]


def insert_document_samples(store: NeoStore) -> None:
    calendar = store.calendar
    allocations = [_row(EVENT_SAMPLE), _row(DATE_RANGE_SAMPLE)]
    events = [
        (EVENT_SAMPLE["event_log_id"], EVENT_SAMPLE_ENTITY_ID, EVENT_SAMPLE["customer_id"], 15),
        (DATE_RANGE_SAMPLE["event_log_id"], "TXN33822621", DATE_RANGE_SAMPLE["customer_id"], 15),
    ]
    expiry_ms = calendar.end_of_day_ms(PAIDS_EXPIRY_DAY)
    for id_, customer_id, event_log_id, source_table, points in PAIDS_SAMPLE:
        fields = {
            **DATE_RANGE_SAMPLE, **_ZERO_POINTS, "id": id_, "customer_id": customer_id,
            "original_customer_id": customer_id, "event_log_id": event_log_id,
            "program_id": PAIDS_PROGRAM_ID, "point_category_id": PAIDS_CATEGORY_ID,
            "org_id": PAIDS_ORG_ID, "expiry_date": expiry_ms, "points_exclusive": points,
            "status": "AVAILABLE",
        }  # fmt: skip
        allocations.append(_row(fields, source_table))
    for event_log_id, customer_id in {(row[2], row[1]) for row in PAIDS_SAMPLE}:
        events.append((event_log_id, f"TXN{event_log_id}", customer_id, 15))
    for offset, (moment, program_id, points) in enumerate(EXPIRED_SAMPLE):
        fields = {
            **DATE_RANGE_SAMPLE, **_ZERO_POINTS, "id": 11_064_000 + offset,
            "customer_id": EXPIRED_SAMPLE_CUSTOMER, "original_customer_id": EXPIRED_SAMPLE_CUSTOMER,
            "event_log_id": 11_064_100 + offset, "program_id": program_id, "point_category_id": 1,
            "expiry_date": int(moment.replace(tzinfo=calendar.timezone).timestamp() * 1000),
            "points_exclusive": points, "expired_exclusive_value": points, "status": "EXPIRED",
        }  # fmt: skip
        allocations.append(_row(fields))
        events.append((fields["event_log_id"], f"TXN{fields['event_log_id']}", 11064, 15))
    customer_ids = sorted({row[1] for row in allocations})
    enrolments = sorted({(row[1], row[2], row[3], row[15]) for row in allocations})
    store.insert(
        customers=[(cid, "Sample", f"customer.{cid}@example.com") for cid in customer_ids],
        enrolments=enrolments,
        events=events,
        allocations=allocations,
    )
