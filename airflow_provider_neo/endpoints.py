"""The one declarative description of the five Neo points endpoints.

Each `Endpoint` lists its path, its query parameters (kind, required or not), whether it pages,
which parameter batches many customers, its date window and its record type. The client builds and
validates requests from it, the simulator parses and validates requests with it, and the docs and
tests read it, so a parameter is described in exactly one place.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import msgspec

from airflow_provider_neo.event_types import EVENT_TYPE_NAMES, EVENT_TYPES
from airflow_provider_neo.records import (
    STATUSES,
    ExpiredPoints,
    PointsAllocation,
    PointsAwardedSummary,
)
from airflow_provider_neo.validation import whole_number

MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 10

# What every Neo request and the OAuth sign-in share, for the client and the simulator alike.
TOKEN_PATH: Final = "/v3/oauth/token/generate"
SCOPE_HEADER: Final = "x-cap-neo-dag-scope"
TEST_VARIANT_HEADER: Final = "x-cap-neo-test-variant-id"
REQUEST_ID_HEADER: Final = "x-cap-request-id"
OAUTH_TOKEN_HEADER: Final = "X-CAP-API-OAUTH-TOKEN"

# Capillary's communications API (outside Neo's points endpoints, so not an `Endpoint`: it is a
# POST with a JSON body and answers no records): one message body per channel, e.g.
# {"email": [{"to", "from", "subject", "body"}]}, {"sms": [{"to", "body", "sender"}]}.
SEND_MESSAGE_PATH: Final = "/v2/communications/sendMessage"
MESSAGE_CHANNELS: Final = ("email", "sms", "whatsapp")


class InvalidParameter(ValueError):
    """A parameter value Neo would reject; `parameter` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.reason = message


# --- parameter kinds --------------------------------------------------------------------------
# A kind turns query text into a value (`parse`, what the server does), a Python value into its
# canonical form (`coerce`, what the client does before sending) and that form into query text
# (`format`). Each raises ValueError with a message that the caller prefixes with the name.


class ParamKind:
    summary: str = ""

    def parse(self, text: str) -> Any:
        return self.coerce(text)

    def coerce(self, value: Any) -> Any:
        raise NotImplementedError

    def format(self, value: Any) -> str:
        return str(value)


# Neo's ids are signed 64-bit integers: a larger one cannot name anything.
MAX_ID: Final = 2**63 - 1
# The dates a points window can plausibly name; a year 999 or 9999 is a typo.
EARLIEST_DATE: Final = dt.date(1970, 1, 1)
LATEST_DATE: Final = dt.date(2100, 12, 31)


def _positive_int(value: Any) -> int:
    number = whole_number(value)
    if number is None or number <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    if number > MAX_ID:
        raise ValueError(f"expected an id of at most 2**63-1 ({MAX_ID}), got {value!r}")
    return number


class PositiveInt(ParamKind):
    summary = "positive integer"

    def coerce(self, value: Any) -> int:
        return _positive_int(value)


class IdList(ParamKind):
    """Comma-separated positive integers; Neo accepts them with or without spaces after commas."""

    summary = "comma-separated positive integers"

    def parse(self, text: str) -> tuple[int, ...]:
        parts = [part.strip() for part in text.split(",")]
        if not text.strip() or any(not part for part in parts):
            raise ValueError(f"expected comma-separated positive integers, got {text!r}")
        return tuple(_positive_int(part) for part in parts)

    def coerce(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, str):
            return self.parse(value)
        items = [value] if isinstance(value, int) else list(value)
        if not items:
            raise ValueError("expected at least one id")
        return tuple(_positive_int(item) for item in items)

    def format(self, value: tuple[int, ...]) -> str:
        return ",".join(map(str, value))


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Date(ParamKind):
    """A whole day, `YYYY-MM-DD`; a datetime counts as its calendar day."""

    summary = "date YYYY-MM-DD"

    def coerce(self, value: Any) -> dt.date:
        day = self._day(value)
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise ValueError(
                f"expected a date between {EARLIEST_DATE} and {LATEST_DATE}, got {value!r}"
            )
        return day

    @staticmethod
    def _day(value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")

    def format(self, value: dt.date) -> str:
        return value.isoformat()


class Text(ParamKind):
    summary = "non-empty string"

    def coerce(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"expected a non-empty string, got {value!r}")
        text = str(value).strip()
        if not text:
            raise ValueError("expected a non-empty string")
        return text


class Choice(ParamKind):
    def __init__(self, choices: Iterable[str]) -> None:
        self.choices = tuple(choices)
        self.summary = "one of " + ", ".join(self.choices)

    def coerce(self, value: Any) -> str:
        if isinstance(value, str) and value.strip().upper() in self.choices:
            return value.strip().upper()
        raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")


class EventType(ParamKind):
    """An event type id (1..89) or, on the client side, its name (`TransactionAdd`)."""

    summary = f"event type id 1..{len(EVENT_TYPES)}"

    def parse(self, text: str) -> int:
        number = whole_number(text)
        if number is None or number not in EVENT_TYPE_NAMES:
            raise ValueError(f"expected an event type id 1..{len(EVENT_TYPES)}, got {text!r}")
        return number

    def coerce(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            if value in EVENT_TYPE_NAMES:
                return value
            raise ValueError(f"unknown event type id {value} (valid ids: 1..{len(EVENT_TYPES)})")
        if isinstance(value, str):
            text = value.strip()
            number = whole_number(text)
            if number is not None:
                return self.coerce(number)
            by_folded_name = {name.lower(): id_ for name, id_ in EVENT_TYPES.items()}
            if text.lower() in by_folded_name:
                return by_folded_name[text.lower()]
            raise ValueError(f"unknown event type name {value!r}")
        raise ValueError(f"expected an event type id or name, got {value!r}")


class Year(ParamKind):
    summary = "four-digit year"

    def coerce(self, value: Any) -> int:
        text = str(value).strip() if isinstance(value, (int, str)) else ""
        if isinstance(value, bool) or not re.fullmatch(r"[1-9][0-9]{3}", text):
            raise ValueError(f"expected a four-digit year, got {value!r}")
        if not EARLIEST_DATE.year <= int(text) <= LATEST_DATE.year:
            raise ValueError(
                f"expected a year {EARLIEST_DATE.year}..{LATEST_DATE.year}, got {value!r}"
            )
        return int(text)


class BoundedInt(ParamKind):
    def __init__(self, low: int, high: int | None = None) -> None:
        self.low, self.high = low, high
        self.summary = f"integer {low}..{high}" if high else f"integer >= {low}"

    def coerce(self, value: Any) -> int:
        number = whole_number(value)
        if number is None or number < self.low or (self.high is not None and number > self.high):
            raise ValueError(f"expected an {self.summary}, got {value!r}")
        return number


# --- endpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    required: bool
    description: str
    default: Any = None


R = TypeVar("R", bound=msgspec.Struct)


@dataclass(frozen=True)
class Endpoint(Generic[R]):
    name: str
    path: str
    title: str
    document: str  # the Neo document it implements, under docs/neo_api/
    record: type[R]
    params: tuple[Param, ...]
    paged: bool = False
    # The parameter that takes many customers in one call (comma list), if any.
    batch_param: str | None = None
    # The customer parameter, for endpoints called once per customer.
    customer_param: str | None = None
    # (start, end) parameter names of an inclusive window of whole days in the org's time zone.
    window: tuple[str, str] | None = None
    # Neo answers 404 for "nothing found" here, which a client should read as an empty result.
    not_found_is_empty: bool = False
    note: str = ""

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(param.name for param in self.params)

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def parse_query(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Server side: validate query text into typed values, filling paging defaults."""
        values: dict[str, Any] = {}
        for param in self.params:
            text = raw.get(param.name)
            if text is None or (text.strip() == "" and param.required):
                if param.required:
                    raise InvalidParameter(param.name, "is required")
                if param.default is not None:
                    values[param.name] = param.default
                continue
            try:
                values[param.name] = param.kind.parse(text)
            except ValueError as exc:
                raise InvalidParameter(param.name, str(exc)) from None
        self._check_window(values)
        return values

    def build_query(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Client side: validate Python values and render the query string parameters."""
        unknown = set(values) - set(self.param_names)
        if unknown:
            raise InvalidParameter(sorted(unknown)[0], f"is not a parameter of {self.path}")
        coerced: dict[str, Any] = {}
        for param in self.params:
            value = values.get(param.name)
            if value is None:
                if param.required:
                    raise InvalidParameter(param.name, "is required")
                continue
            try:
                coerced[param.name] = param.kind.coerce(value)
            except ValueError as exc:
                raise InvalidParameter(param.name, str(exc)) from None
        self._check_window(coerced)
        return {name: self.param(name).kind.format(value) for name, value in coerced.items()}

    def _check_window(self, values: Mapping[str, Any]) -> None:
        if self.window is None:
            return
        start_name, end_name = self.window
        start, end = values.get(start_name), values.get(end_name)
        if start is not None and end is not None and start > end:
            raise InvalidParameter(
                start_name, f"{start.isoformat()} is after {end_name} {end.isoformat()}"
            )


PAGE = Param("page", BoundedInt(1), False, "Page number, from 1.", default=1)
COUNT = Param(
    "count",
    BoundedInt(1, MAX_PAGE_SIZE),
    False,
    f"Rows per page, default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}.",
    default=DEFAULT_PAGE_SIZE,
)
PROGRAM_ID = Param("program_id", PositiveInt(), True, "Loyalty program id.")
POINT_CATEGORY_ID = Param("point_category_id", PositiveInt(), True, "Point category id.")

_DATE_RANGE_PARAMS = (
    PROGRAM_ID,
    POINT_CATEGORY_ID,
    Param("expiry_date_start", Date(), True, "First expiry day (inclusive)."),
    Param("expiry_date_end", Date(), True, "Last expiry day (inclusive)."),
    Param("entity_id", PositiveInt(), True, "Customer id."),
    PAGE,
    COUNT,
)

POINTS_AWARDED: Final = Endpoint(
    name="points_awarded",
    path="/x/neo/pointsAwarded/paIds",
    title="Points awarded ids (batch)",
    document="points_awarded_paids.txt",
    record=PointsAwardedSummary,
    params=(
        Param("start_expiry_date", Date(), True, "First expiry day (inclusive)."),
        Param("end_expiry_date", Date(), True, "Last expiry day (inclusive)."),
        POINT_CATEGORY_ID,
        PROGRAM_ID,
        Param("entity_id", IdList(), True, "Customer ids, comma-separated."),
        Param("status", Choice(STATUSES), True, "Status of the points."),
        Param("org_id", PositiveInt(), False, "Organisation id."),
    ),
    batch_param="entity_id",
    window=("start_expiry_date", "end_expiry_date"),
    note="Its rows do not carry a status (the query filters on one): NeoHook sets each row's"
    " `status` to the status its query asked for.",
)

EVENT_ALLOCATIONS: Final = Endpoint(
    name="event_allocations",
    path="/x/neo/pointsAllocation/event",
    title="Points allocated by an event",
    document="points_allocation_event.txt",
    record=PointsAllocation,
    params=(
        Param("entity_id", Text(), True, "Event identifier (a string)."),
        Param("customer_id", PositiveInt(), True, "Customer id."),
        Param("event_type_id", EventType(), True, "Event type id (see EVENT_TYPES)."),
        PAGE,
        COUNT,
    ),
    paged=True,
    customer_param="customer_id",
)

EXPIRING_ALLOCATIONS: Final = Endpoint(
    name="expiring_allocations",
    path="/x/neo/pointsAllocation/dateRange",
    title="Allocations expiring in a date range",
    document="points_allocation_date_range.txt",
    record=PointsAllocation,
    params=_DATE_RANGE_PARAMS,
    paged=True,
    customer_param="entity_id",
    window=("expiry_date_start", "expiry_date_end"),
)

EXPIRED_POINTS: Final = Endpoint(
    name="expired_points",
    path="/x/neo/customer/expiredPoints",
    title="Expired points of a customer by year",
    document="customer_expired_points.txt",
    record=ExpiredPoints,
    params=(
        Param("customer_id", PositiveInt(), True, "Customer id."),
        Param("year", Year(), True, "Four-digit year."),
    ),
    customer_param="customer_id",
    not_found_is_empty=True,
    note="Documented for the dev host only.",
)

DAS_EXPIRING_ALLOCATIONS: Final = Endpoint(
    name="das_expiring_allocations",
    path="/das/getPAIdsForProvidedDateRange",
    title="Allocations expiring in a date range (inside Neo dataflows)",
    document="das_pa_ids_for_date_range.txt",
    record=PointsAllocation,
    params=_DATE_RANGE_PARAMS,
    paged=True,
    customer_param="entity_id",
    window=("expiry_date_start", "expiry_date_end"),
    note="Reachable only from inside Neo dataflows; same contract as dateRange.",
)

ENDPOINTS: Final[tuple[Endpoint[Any], ...]] = (
    POINTS_AWARDED,
    EVENT_ALLOCATIONS,
    EXPIRING_ALLOCATIONS,
    EXPIRED_POINTS,
    DAS_EXPIRING_ALLOCATIONS,
)
ENDPOINTS_BY_NAME: Final[dict[str, Endpoint[Any]]] = {
    endpoint.name: endpoint for endpoint in ENDPOINTS
}
