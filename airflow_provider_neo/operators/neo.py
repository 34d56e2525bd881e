"""Operators for each Neo points endpoint.

They share one shape (`BaseNeoOperator`): customers from a list, an upstream XCom or a file,
streamed; records streamed to object storage (NDJSON or CSV, written atomically) with a small
summary in XCom, or, without `output_path`, the records themselves in XCom up to a limit;
progress in the task log; OpenLineage facets when the OpenLineage provider is installed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar

import msgspec
from airflow.providers.common.compat.sdk import AirflowException, BaseOperator, ObjectStoragePath

from airflow_provider_neo.connection import DEFAULT_CONN_ID
from airflow_provider_neo.endpoints import (
    EVENT_ALLOCATIONS,
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    POINTS_AWARDED,
    Endpoint,
)
from airflow_provider_neo.event_types import EVENT_TYPE_NAMES
from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.records import (
    ExpiredPoints,
    PointsAllocation,
    PointsAwardedSummary,
)
from airflow_provider_neo.utils.customers import CustomerSource, HasCustomers
from airflow_provider_neo.utils.output import FORMATS, RecordSink, atomic_csv, task_writer
from airflow_provider_neo.utils.progress import Progress
from airflow_provider_neo.utils.windows import ExpiryWindow, HasExpiryWindow
from airflow_provider_neo.validation import choice

DEFAULT_MAX_XCOM_RECORDS = 1_000


class BaseNeoOperator(BaseOperator):
    """What every Neo operator shares. Subclasses say which endpoint and how to call it.

    The run's summary (`summary`; the task's return value with ``output_path``, else the XCom
    ``summary``) has these fields in every operator, and each operator adds its own:

    - ``endpoint``: the Neo path the task called (after any ``endpoint_paths`` override).
    - ``records``: records written to ``output_path`` or returned to XCom.
    - ``customers``: customers whose queries completed.
    - ``points``: the records' points added up, as exact decimal text; each operator says which.
    - ``requests``: HTTP requests sent to Neo, pages and retries included.
    - ``retries``: requests sent again after a failure or a 429.
    - ``rows_not_asked_for``: rows for customers the request did not name, dropped (0 unless
      Neo misbehaves).
    - ``output_path``: where the records were written, as rendered; None when they went to XCom.
    - ``output_format``: ``ndjson`` or ``csv``; None without ``output_path``.

    :param neo_conn_id: the `neo` connection.
    :param output_path: an ObjectStoragePath URL (``file:///...``, ``s3://...``; templated) to
        stream the records to; XCom then gets a summary only.
    :param output_format: ``ndjson`` (default) or ``csv``.
    :param max_xcom_records: without ``output_path``, the most records XCom may take; more
        fails the task and asks for ``output_path``.
    :param progress_interval: seconds between progress lines in the task log.
    :param hook_params: connection extra fields to override for this task, e.g.
        ``{"max_concurrency": 16}``.
    """

    endpoint: ClassVar[Endpoint[Any]]
    template_fields: Sequence[str] = ("output_path",)
    ui_color = "#f4d35e"

    def __init__(
        self,
        *,
        neo_conn_id: str = DEFAULT_CONN_ID,
        output_path: str | None = None,
        output_format: str = "ndjson",
        max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS,
        progress_interval: float = 10.0,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_format = choice("output_format", output_format, FORMATS)
        if max_xcom_records < 0:
            raise ValueError(f"max_xcom_records: expected 0 or more, got {max_xcom_records}")
        self.neo_conn_id = neo_conn_id
        self.output_path = output_path
        self.max_xcom_records = max_xcom_records
        self.progress_interval = progress_interval
        self.hook_params = hook_params or {}
        self.summary: dict[str, Any] = {}

    @cached_property
    def hook(self) -> NeoHook:
        return NeoHook(self.neo_conn_id, **self.hook_params)

    # --- what subclasses provide ------------------------------------------------------------

    def fetch(self, context: Any) -> Iterator[Any]:
        """Check the arguments (raising before any request) and return the records' stream."""
        raise NotImplementedError

    def total_customers(self) -> int | None:
        return None

    def points(self, record: Any) -> Decimal | None:
        """The points a record adds to the summary's ``points`` (remaining, allocated, expired)."""
        return None

    def query_summary(self) -> dict[str, Any]:
        """The summary fields of this operator's own: what the run asked Neo for."""
        return {}

    def tally(self, record: Any) -> None:
        """Count a record into this operator's own summary fields, as it streams by."""

    def finish(self, context: Any) -> None:
        """After every record: this operator's own outputs beside the records."""

    # --- the shared run ---------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        records = self.fetch(context)
        progress = Progress(
            self.log,
            f"Neo {self.endpoint.name}",
            self.hook.stats,
            total_customers=self.total_customers(),
            every_seconds=self.progress_interval,
        )
        total = Decimal(0)
        rows: list[Any] = []
        try:
            if self.output_path:
                sink = RecordSink(
                    self.output_path,
                    self.output_format,
                    self.endpoint.record,
                    writer=task_writer(context) if hasattr(context, "get") else None,
                )
                with sink:
                    for record in records:
                        sink.write(record)
                        total += self.points(record) or 0
                        self.tally(record)
                        progress.record()
            else:
                for record in records:
                    if len(rows) >= self.max_xcom_records:
                        raise AirflowException(
                            f"{self.endpoint.name} returned more than max_xcom_records="
                            f"{self.max_xcom_records} records; set output_path to stream them to"
                            " object storage (XCom keeps only a summary then)"
                        )
                    rows.append(msgspec.to_builtins(record))
                    total += self.points(record) or 0
                    self.tally(record)
                    progress.record()
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()  # stop in-flight fetches when the run ends early
            self.hook.close()
        progress.report(final=True)
        stats = self.hook.stats.snapshot()
        self.summary = {
            "endpoint": self.hook.settings.path(self.endpoint),
            "records": progress.records,
            "customers": stats["customers_done"],
            "points": str(total),
            "requests": stats["requests"],
            "retries": stats["retries"],
            "rows_not_asked_for": stats["rows_not_asked_for"],
            "output_path": self.output_path,
            "output_format": self.output_format if self.output_path else None,
            **self.query_summary(),
        }
        self.finish(context)
        if self.output_path:
            return self.summary
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None:
            ti.xcom_push(key="summary", value=self.summary)
        return rows

    def _coerced(self, param: str, value: Any) -> Any:
        """An argument in the form the request sent it (the endpoint's own coercion)."""
        return self.endpoint.param(param).kind.coerce(value)

    # --- lineage ----------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Neo's endpoint as the input, the output file as the output (OpenLineage optional)."""
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        inputs = [
            Dataset(
                namespace=self.hook.settings.base_url, name=self.hook.settings.path(self.endpoint)
            )
        ]
        outputs = []
        if self.output_path:
            path = ObjectStoragePath(self.output_path)
            protocol = path.protocol or "file"
            if protocol == "file":
                outputs.append(Dataset(namespace="file", name=path.path))
            else:
                outputs.append(Dataset(namespace=f"{protocol}://{path.bucket}", name=path.key))
        return OperatorLineage(inputs=inputs, outputs=outputs)


class _CustomersMixin(HasCustomers, BaseNeoOperator):
    """Customers from `customer_ids` (a list, one id, an XCom) or `customers_path` (a file)."""

    def _init_customers(
        self, customer_ids: Any, customers_path: str | None, customers_column: str
    ) -> None:
        self.customer_source = CustomerSource(customer_ids, customers_path, customers_column)
        self._total: int | None = None

    def customers(self) -> Iterable[Any]:
        ids = self.customer_source.resolve()
        self._total = len(ids) if isinstance(ids, (list, tuple, range)) else None
        return ids

    def total_customers(self) -> int | None:
        return self._total

    def query_summary(self) -> dict[str, Any]:
        return {
            **super().query_summary(),
            "duplicate_customer_ids": self.customer_source.duplicate_ids,
        }


class _WindowMixin(HasExpiryWindow, BaseNeoOperator):
    """An expiry window, explicit or derived from the run (`ExpiryWindow`)."""

    def _init_window(
        self, expiry_start: Any, expiry_end: Any, days_ahead: Any, window_days: Any
    ) -> None:
        self.expiry_window = ExpiryWindow(expiry_start, expiry_end, days_ahead, window_days)
        self.window: tuple[dt.date, dt.date] | None = None

    def resolve_window(self, context: Any) -> tuple[dt.date, dt.date]:
        timezone = self.hook.settings.timezone
        self.window = self.expiry_window.resolve(context, timezone)
        self.log.info("Expiry window %s..%s (%s)", self.window[0], self.window[1], timezone)
        return self.window

    def query_summary(self) -> dict[str, Any]:
        # `fetch` resolved the window before the run's summary is made.
        start, end = (day.isoformat() for day in self.window) if self.window else (None, None)
        return {**super().query_summary(), "expiry_start": start, "expiry_end": end}


class _ProgramWindowOperator(_CustomersMixin, _WindowMixin):
    """Customers of one program and point category, and an expiry window."""

    template_fields: Sequence[str] = (
        *BaseNeoOperator.template_fields, *CustomerSource.template_fields, "program_id",
        "point_category_id", *ExpiryWindow.template_fields,
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_customers(customer_ids, customers_path, customers_column)
        self._init_window(expiry_start, expiry_end, days_ahead, window_days)
        self.program_id = program_id
        self.point_category_id = point_category_id

    def query_summary(self) -> dict[str, Any]:
        return {
            "program_id": self._coerced("program_id", self.program_id),
            "point_category_id": self._coerced("point_category_id", self.point_category_id),
            **super().query_summary(),
        }


class ExpiringPointsOperator(_ProgramWindowOperator):
    """The allocations of a set of customers that expire in a window (dateRange, per customer).

    :param customer_ids: ids, one id, comma-separated text, or an upstream XCom (templated).
    :param customers_path: instead, a CSV with a ``customer_id`` column or NDJSON, local or any
        ObjectStoragePath URL (templated), streamed.
    :param customers_column: the id column of ``customers_path`` (default ``customer_id``).
    :param program_id: the loyalty program (templated).
    :param point_category_id: the point category (templated).
    :param expiry_start: first expiry day (templated); with ``expiry_end``, an explicit window.
    :param expiry_end: last expiry day, inclusive (templated).
    :param days_ahead: instead, the window starts this many days after the run's data interval
        end, as a day in the organisation's time zone (templated).
    :param window_days: the derived window's length in days (default 1).

    Summary: the fields of every operator (`BaseNeoOperator`), ``points`` being the remaining
    points of the allocations (Neo's arithmetic: AVAILABLE rows only), and its own:

    - ``program_id``, ``point_category_id``: the program and point category asked for.
    - ``expiry_start``, ``expiry_end``: the expiry window, ISO dates, both inclusive.
    - ``duplicate_customer_ids``: ids ``customers_path`` listed more than once, fetched once.
    """

    endpoint = EXPIRING_ALLOCATIONS

    def fetch(self, context: Any) -> Iterator[PointsAllocation]:
        start, end = self.resolve_window(context)
        return self.hook.iter_expiring_allocations(
            self.customers(),
            program_id=self.program_id,  # type: ignore[arg-type]
            point_category_id=self.point_category_id,  # type: ignore[arg-type]
            expiry_start=start,
            expiry_end=end,
        )

    def points(self, record: PointsAllocation) -> Decimal:
        return record.remaining_points


class PointsAwardedOperator(_ProgramWindowOperator):
    """paIds, the batch form: many customers per request, filtered by status.

    Takes the customers, program and window arguments of `ExpiringPointsOperator`, plus:

    :param status: AVAILABLE (default), REDEEMED, EXPIRED, CONSUMED, RETURNED,
        CONSUMED_BY_CONVERSION or INACTIVE (templated).
    :param org_id: optional organisation id (templated).

    Summary: the fields of every operator (`BaseNeoOperator`), ``points`` being the remaining
    points of the rows (Neo's arithmetic, for the status asked: 0 unless AVAILABLE), and its own:

    - ``program_id``, ``point_category_id``: the program and point category asked for.
    - ``expiry_start``, ``expiry_end``: the expiry window, ISO dates, both inclusive.
    - ``status``: the status the query filtered on, which every row carries as ``status``.
    - ``org_id``: the organisation id asked for; None when not given.
    - ``duplicate_customer_ids``: ids ``customers_path`` listed more than once, fetched once.
    """

    endpoint = POINTS_AWARDED
    template_fields = (*_ProgramWindowOperator.template_fields, "status", "org_id")

    def __init__(
        self, *, status: str = "AVAILABLE", org_id: int | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.org_id = org_id

    def fetch(self, context: Any) -> Iterator[PointsAwardedSummary]:
        start, end = self.resolve_window(context)
        return self.hook.iter_points_awarded(
            self.customers(),
            program_id=self.program_id,  # type: ignore[arg-type]
            point_category_id=self.point_category_id,  # type: ignore[arg-type]
            expiry_start=start,
            expiry_end=end,
            status=self.status,
            org_id=self.org_id or None,  # type: ignore[arg-type]
        )

    def points(self, record: PointsAwardedSummary) -> Decimal:
        return record.remaining_points

    def query_summary(self) -> dict[str, Any]:
        org_id = self.org_id or None
        return {
            **super().query_summary(),
            "status": self._coerced("status", self.status),
            "org_id": None if org_id is None else self._coerced("org_id", org_id),
        }


class EventPointsAllocationOperator(BaseNeoOperator):
    """What one event (a transaction, a registration, ...) allocated to a customer.

    :param customer_id: the customer (templated).
    :param entity_id: the event's identifier, e.g. the bill number (templated).
    :param event_type: the event type's name (``TransactionAdd``) or id (15) (templated).

    Summary: the fields of every operator (`BaseNeoOperator`), ``points`` being the points the
    event allocated (``points_exclusive`` of its rows), and its own:

    - ``customer_id``, ``entity_id``: the customer and the event asked for.
    - ``event_type``: the event type's name, e.g. ``TransactionAdd`` (given as a name or an id).
    """

    endpoint = EVENT_ALLOCATIONS
    template_fields = (*BaseNeoOperator.template_fields, "customer_id", "entity_id", "event_type")

    def __init__(
        self, *, customer_id: int | str, entity_id: str, event_type: int | str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.customer_id = customer_id
        self.entity_id = entity_id
        self.event_type = event_type

    def fetch(self, context: Any) -> Iterator[PointsAllocation]:
        return self.hook.iter_event_allocations(
            customer_id=self.customer_id, entity_id=self.entity_id, event_type=self.event_type
        )

    def total_customers(self) -> int:
        return 1

    def points(self, record: PointsAllocation) -> Decimal:
        return record.points_exclusive

    def query_summary(self) -> dict[str, Any]:
        return {
            "customer_id": self._coerced("customer_id", self.customer_id),
            "entity_id": self._coerced("entity_id", self.entity_id),
            "event_type": EVENT_TYPE_NAMES[self._coerced("event_type_id", self.event_type)],
        }


class ExpiredPointsOperator(_CustomersMixin):
    """Customers' expired points by year (expiredPoints; a customer with none adds nothing).

    Takes the same customers arguments as `ExpiringPointsOperator`, plus:

    :param year: the four-digit year (templated, e.g. ``"{{ data_interval_end.year - 1 }}"``).
    :param totals_path: where to write the expired points per program as a CSV
        (``program_id,expired_points``, then an ``all`` row), any ObjectStoragePath (templated);
        none by default.

    Summary: the fields of every operator (`BaseNeoOperator`), ``points`` being the points that
    expired, and its own:

    - ``year``: the year asked for, an integer.
    - ``duplicate_customer_ids``: ids ``customers_path`` listed more than once, fetched once.
    - ``points_per_program``: program id (text) -> points expired, exact decimal text.
    - ``customers_with_points``: customers with any points expired that year.
    - ``totals_path``: the rendered `totals_path`, or None.
    """

    endpoint = EXPIRED_POINTS
    template_fields = (
        *BaseNeoOperator.template_fields, *CustomerSource.template_fields, "year", "totals_path",
    )  # fmt: skip

    def __init__(
        self,
        *,
        year: int | str,
        customer_ids: Any = None,
        customers_path: str | None = None,
        customers_column: str = "customer_id",
        totals_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_customers(customer_ids, customers_path, customers_column)
        self.year = year
        self.totals_path = totals_path
        self.per_program: dict[str, Decimal] = {}
        self.customers_with_points: set[int] = set()

    def fetch(self, context: Any) -> Iterator[ExpiredPoints]:
        self.per_program, self.customers_with_points = {}, set()
        return self.hook.iter_expired_points(self.customers(), year=self.year)

    def tally(self, record: ExpiredPoints) -> None:
        program = str(record.program_id)
        self.per_program[program] = self.per_program.get(program, Decimal(0)) + record.points
        self.customers_with_points.add(record.customer_id)

    def finish(self, context: Any) -> None:
        if self.totals_path:
            writer = task_writer(context) if hasattr(context, "get") else None
            with atomic_csv(
                self.totals_path, ["program_id", "expired_points"], writer=writer
            ) as rows:
                rows.writerows(sorted(self.summary["points_per_program"].items()))
                rows.writerow(["all", self.summary["points"]])

    def points(self, record: ExpiredPoints) -> Decimal:
        return record.points

    def query_summary(self) -> dict[str, Any]:
        return {
            "year": self._coerced("year", self.year),
            **super().query_summary(),
            "points_per_program": {
                program: str(points) for program, points in sorted(self.per_program.items())
            },
            "customers_with_points": len(self.customers_with_points),
            "totals_path": self.totals_path,
        }
