"""Property tests: whatever a user passes, the hook raises only its documented errors and never
builds a request Neo's own parser would reject; whatever a server answers, the exchange ends in
rows or a NeoProtocolError, never anything else. Kept to a few seconds."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_neo.client.backoff import Backoff
from airflow_provider_neo.client.batching import customer_id_stream
from airflow_provider_neo.client.errors import NeoProtocolError
from airflow_provider_neo.client.exchange import NeoExchange, Received, RequestStats
from airflow_provider_neo.endpoints import (
    EARLIEST_DATE,
    EVENT_ALLOCATIONS,
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    LATEST_DATE,
    MAX_ID,
    Endpoint,
)
from airflow_provider_neo.hooks.neo import NeoHook, _query
from airflow_provider_neo.records import MAX_POINTS, PointsAllocation
from tests import scripted

T = TypeVar("T")
QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What a careless user might pass for any argument.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.integers(min_value=-2, max_value=MAX_ID + 2),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.from_regex(r"\s?[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}\s?", fullmatch=True),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(),
    st.lists(st.integers(min_value=-5, max_value=2**64), max_size=3),
    st.sampled_from(["TransactionAdd", "transactionadd", "15", "0", "AVAILABLE", "2025"]),
)


# Each argument: usually a valid value, so that the others' checks are reached too.
valid_id = st.integers(min_value=1, max_value=MAX_ID) | st.integers(1, MAX_ID).map(str)
valid_day = st.dates(min_value=EARLIEST_DATE, max_value=LATEST_DATE)
edge_id = st.sampled_from([0, -1, MAX_ID, MAX_ID + 1, str(MAX_ID + 1), 2**64, 2**70, "1e3"])
an_id = st.one_of(valid_id, valid_id, edge_id, anything)
a_day = st.one_of(valid_day, valid_day.map(str), valid_day, anything)


def _accepted_by_neo(endpoint: Endpoint[Any], query: dict[str, str]) -> None:
    """`query` is what Neo's side of the endpoint table parses without complaint."""
    parsed = endpoint.parse_query(query)
    for name, value in parsed.items():
        values = value if isinstance(value, tuple) else (value,)
        for one in values:
            if isinstance(one, int) and name != "event_type_id":
                assert 1 <= one <= MAX_ID, (name, one)
            if isinstance(one, dt.date):
                assert EARLIEST_DATE <= one <= LATEST_DATE, (name, one)


def _built_or_refused(build: Callable[[], T]) -> T | str:
    """What `build` returns, or the argument named by the ValueError it raises."""
    try:
        return build()
    except ValueError as exc:
        return str(exc).split(":")[0]


@QUICK
@given(customer=an_id, program=an_id, category=an_id, start=a_day, end=a_day)
def test_arbitrary_date_range_arguments_raise_value_error_or_build_a_valid_request(
    customer: Any, program: Any, category: Any, start: Any, end: Any
) -> None:
    query = _built_or_refused(
        lambda: NeoHook._expiring_query(
            ("customer_ids", customer), program_id=program, point_category_id=category,
            expiry_start=start, expiry_end=end,
        )
    )  # fmt: skip
    if isinstance(query, str):
        assert query in {"customer_ids", "program_id", "point_category_id", "expiry_start",
                         "expiry_end"}  # fmt: skip
    else:
        _accepted_by_neo(EXPIRING_ALLOCATIONS, query)


@QUICK
@given(
    customer=an_id,
    entity=st.text(max_size=8) | anything,
    event=st.integers(1, 89) | anything,
    year=st.integers(1970, 2100) | anything,
)
def test_arbitrary_event_and_expired_arguments_raise_value_error_or_are_valid(
    customer: Any, entity: Any, event: Any, year: Any
) -> None:
    query = _built_or_refused(lambda: NeoHook._event_query(customer, entity, event))
    if isinstance(query, str):
        assert query in {"customer_id", "entity_id", "event_type"}
    else:
        _accepted_by_neo(EVENT_ALLOCATIONS, query)
    arguments = {"customer_id": ("customer_ids", customer), "year": ("year", year)}
    query = _built_or_refused(lambda: _query(EXPIRED_POINTS, arguments))
    if isinstance(query, str):
        assert query in {"customer_ids", "year"}
    else:
        _accepted_by_neo(EXPIRED_POINTS, query)


@QUICK
@given(ids=st.lists(an_id, max_size=5))
def test_arbitrary_customer_ids_are_each_valid_or_refused_naming_customer_ids(ids: Any) -> None:
    drawn = _built_or_refused(lambda: list(customer_id_stream(ids)))
    if isinstance(drawn, str):
        assert drawn == "customer_ids"
    else:
        assert all(1 <= id_ <= MAX_ID for id_ in drawn)


# --- what a server answers --------------------------------------------------------------------

FIELDS = [f.encode_name for f in msgspec.structs.fields(PointsAllocation)]
AMOUNTS = [f.name for f in msgspec.structs.fields(PointsAllocation) if f.type is Decimal]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["NaN", "Infinity", "-1", "1e400", "12.500", "1e12", 1e15]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


edge_amount = st.sampled_from(
    ["NaN", "-Infinity", "sNaN", "-0.001", -1, "1e400", 1e15, "1000000000000", "999999999999.999"]
)


@st.composite
def broken_rows(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A valid row with one field changed, removed or added; returns the body and the field."""
    row: dict[str, Any] = scripted.allocation_row(draw(st.integers(1, 10**6)))
    change = draw(st.sampled_from(["replace", "remove", "add"]))
    if change == "add":
        row[draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in row))] = 1
        return json.dumps([row]).encode(), None  # extra fields are ignored
    name = draw(st.sampled_from(FIELDS))
    if change == "remove":
        del row[name]
    elif name in AMOUNTS and draw(st.booleans()):
        row[name] = draw(edge_amount)
    else:
        row[name] = draw(json_values)
    return json.dumps([row]).encode(), name


def _answer(body: bytes) -> Any:
    settings_ = scripted.settings(page_size=100, max_retries=0)
    backoff = Backoff(max_retries=0, base_seconds=0, max_seconds=0)
    exchange = NeoExchange(settings_, stats=RequestStats(), backoff=backoff, rng=random.Random(1))
    query = {"entity_id": "400000001", "program_id": "1", "point_category_id": "1",
             "expiry_date_start": "2026-01-01", "expiry_date_end": "2026-01-02"}  # fmt: skip
    _, outcome = scripted.drive(
        exchange.call(EXPIRING_ALLOCATIONS, query), [Received(200, {}, body)]
    )
    return outcome


@QUICK
@given(case=broken_rows())
def test_a_row_with_a_wrong_missing_or_extra_field_is_read_or_a_protocol_error_naming_it(
    case: tuple[bytes, str | None],
) -> None:
    body, field = case
    outcome = _answer(body)
    if isinstance(outcome, list):
        (row,) = outcome
        assert isinstance(row, PointsAllocation)
        for name in AMOUNTS:
            assert 0 <= getattr(row, name) <= MAX_POINTS
        return
    assert isinstance(outcome, NeoProtocolError), outcome
    assert field is not None
    assert field in str(outcome)


@QUICK
@given(
    body=st.one_of(
        st.binary(max_size=64),
        json_values.map(lambda value: json.dumps(value).encode()),
        json_values.map(lambda value: json.dumps(value).encode("utf-16")),
        st.text(max_size=30).map(lambda text: text.encode("latin-1", "replace")),
    )
)
def test_any_body_at_all_gives_rows_or_a_protocol_error_never_anything_else(body: bytes) -> None:
    outcome = _answer(body)
    assert isinstance(outcome, (list, NeoProtocolError)), outcome
