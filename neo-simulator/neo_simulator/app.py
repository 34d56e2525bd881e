"""The simulator's HTTP application: the five Neo endpoints, OAuth, Capillary's sendMessage, and
`/__sim/` control routes.

The Neo routes are generated from `airflow_provider_neo.endpoints`, so the simulator validates
exactly the parameters the client is built from. Checks run in Neo's order: authentication (401),
the scope header, then parameters (400), then the query.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

from airflow_provider_neo.endpoints import (
    DAS_EXPIRING_ALLOCATIONS,
    ENDPOINTS,
    EVENT_ALLOCATIONS,
    EXPIRED_POINTS,
    EXPIRING_ALLOCATIONS,
    MESSAGE_CHANNELS,
    POINTS_AWARDED,
    SCOPE_HEADER,
    SEND_MESSAGE_PATH,
    TOKEN_PATH,
    Endpoint,
    InvalidParameter,
)
from airflow_provider_neo.records import Record, encode_records
from neo_simulator.auth import Authenticator
from neo_simulator.errors import ErrorCode, error_body
from neo_simulator.faults import (
    DropConnection,
    ExposeConnectionAbort,
    FaultInjector,
    FaultMiddleware,
)
from neo_simulator.store import NeoStore, NewAllocation, Settlement

# A query gets the store and the parsed parameters; paged ones also get the first row's offset.
Query = Callable[[NeoStore, dict[str, Any]], Sequence[Record]]

QUERIES: Final[dict[str, Query]] = {
    POINTS_AWARDED.name: lambda store, v: store.points_awarded(
        customer_ids=v["entity_id"],
        program_id=v["program_id"],
        point_category_id=v["point_category_id"],
        start=v["start_expiry_date"],
        end=v["end_expiry_date"],
        status=v["status"],
        org_id=v.get("org_id"),
    ),
    EVENT_ALLOCATIONS.name: lambda store, v: store.event_allocations(
        entity_id=v["entity_id"],
        customer_id=v["customer_id"],
        event_type_id=v["event_type_id"],
        offset=v["offset"],
        count=v["count"],
    ),
    EXPIRING_ALLOCATIONS.name: lambda store, v: store.expiring_allocations(
        customer_id=v["entity_id"],
        program_id=v["program_id"],
        point_category_id=v["point_category_id"],
        start=v["expiry_date_start"],
        end=v["expiry_date_end"],
        offset=v["offset"],
        count=v["count"],
    ),
    EXPIRED_POINTS.name: lambda store, v: store.expired_points(
        customer_id=v["customer_id"], year=v["year"]
    ),
}
QUERIES[DAS_EXPIRING_ALLOCATIONS.name] = QUERIES[EXPIRING_ALLOCATIONS.name]


@dataclass
class Simulator:
    """Everything a running simulator holds: data, auth, faults and request counters."""

    store: NeoStore
    authenticator: Authenticator
    injector: FaultInjector
    org_id: int
    info: dict[str, Any]
    scopes: tuple[str, ...] = ("org", "global", "parent")
    counters: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    in_flight: int = 0
    max_in_flight: int = 0  # the most Neo requests handled at once since the last reset
    longest_target: int = 0  # the longest path-and-query seen, in characters
    # Every message sendMessage accepted, as {"channel", "message"}, in order; and after how many
    # it answers 503 instead (a provider outage half-way through a batch), None for never.
    messages: list[dict[str, Any]] = field(default_factory=list)
    refuse_messages_after: int | None = None

    def stats(self) -> dict[str, Any]:
        requests: dict[str, dict[str, int]] = {}
        for (name, status), count in sorted(self.counters.items()):
            requests.setdefault(name, {})[status] = count
        return {
            "requests": requests,
            "total": sum(self.counters.values()),
            "max_in_flight": self.max_in_flight,
            "longest_target": self.longest_target,
        }

    def reset_stats(self) -> None:
        self.counters.clear()
        self.max_in_flight = self.in_flight
        self.longest_target = 0


def _json(payload: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type="application/json")


def _error(status: int, code: ErrorCode, message: str) -> Response:
    return Response(error_body(code, message), status_code=status, media_type="application/json")


class RequestCounter:
    """Counts requests per endpoint name and final status ("dropped" for cut connections)."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], sim: Simulator
    ) -> None:
        self.app = app
        self.sim = sim
        self.names = {endpoint.path: endpoint.name for endpoint in ENDPOINTS}
        self.names[TOKEN_PATH] = "oauth_token"
        self.names[SEND_MESSAGE_PATH] = "send_message"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self.names.get(scope.get("path", "")) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        status = "dropped"
        sim = self.sim
        target = len(scope.get("raw_path", b"")) + 1 + len(scope.get("query_string", b""))
        sim.longest_target = max(sim.longest_target, target)
        sim.in_flight += 1
        sim.max_in_flight = max(sim.max_in_flight, sim.in_flight)

        async def record_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        except DropConnection:
            status = "dropped"
            raise
        finally:
            sim.in_flight -= 1
            sim.counters[(name, status)] += 1


def _endpoint_handler(
    sim: Simulator, endpoint: Endpoint[Any]
) -> Callable[[Request], Awaitable[Response]]:
    query = QUERIES[endpoint.name]

    async def handle(request: Request) -> Response:
        failure = sim.authenticator.failure(request.headers)
        if failure is not None:
            return _error(401, ErrorCode.UNAUTHORIZED, failure)
        scope = request.headers.get(SCOPE_HEADER)
        if scope is None:
            return _error(400, ErrorCode.MISSING_HEADER, f"Header {SCOPE_HEADER} is required")
        if scope not in sim.scopes:
            allowed = ", ".join(sim.scopes)
            message = f"Header {SCOPE_HEADER} must be one of {allowed}"
            return _error(400, ErrorCode.MISSING_HEADER, message)
        try:
            values = endpoint.parse_query(request.query_params)
        except InvalidParameter as exc:
            missing = exc.reason == "is required"
            code = ErrorCode.MISSING_PARAMETER if missing else ErrorCode.INVALID_PARAMETER
            message = (
                f"Missing required parameter '{exc.parameter}'"
                if missing
                else f"Invalid parameter '{exc.parameter}': {exc.reason}"
            )
            return _error(400, code, message)
        if endpoint.paged:
            values["offset"] = sim.injector.page_offset(values["page"], values["count"])
        records = query(sim.store, values)
        if not records and endpoint.not_found_is_empty:
            return _error(404, ErrorCode.NOT_FOUND, "No expired points found")
        return Response(encode_records(records), media_type="application/json")

    handle.__name__ = endpoint.name
    return handle


def _send_message_handler(sim: Simulator) -> Callable[[Request], Awaitable[Response]]:
    async def send_message(request: Request) -> Response:
        failure = sim.authenticator.failure(request.headers)
        if failure is not None:
            return _error(401, ErrorCode.UNAUTHORIZED, failure)
        channel = request.query_params.get("channel", "")
        if channel not in MESSAGE_CHANNELS:
            allowed = "|".join(MESSAGE_CHANNELS)
            return _error(400, ErrorCode.INVALID_PARAMETER, f"channel must be one of {allowed}")
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        messages = body.get(channel) if isinstance(body, dict) else None
        required = {"email": ("to", "subject", "body"), "sms": ("to", "body")}.get(
            channel, ("to", "body")
        )
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and all(isinstance(m.get(k), str) for k in required)
            for m in messages
        ):
            fields = ", ".join(required)
            message = f"Body must be {{{channel!r}: [{{{fields}}}, ...]}}"
            return _error(400, ErrorCode.INVALID_PARAMETER, message)
        limit = sim.refuse_messages_after
        if limit is not None and len(sim.messages) + len(messages) > limit:
            return _error(503, ErrorCode.INTERNAL_ERROR, "Messaging is temporarily unavailable")
        sim.messages.extend({"channel": channel, "message": m} for m in messages)
        return _json({"status": {"success": True, "code": 200}, "accepted": len(messages)})

    return send_message


def create_app(sim: Simulator) -> Any:
    app = FastAPI(title="Neo simulator", docs_url="/__sim/docs", openapi_url="/__sim/openapi.json")

    for endpoint in ENDPOINTS:
        app.add_api_route(
            endpoint.path, _endpoint_handler(sim, endpoint), methods=["GET"], summary=endpoint.title
        )

    @app.post(TOKEN_PATH)
    async def generate_token(request: Request) -> Response:
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict):
            return _error(400, ErrorCode.INVALID_PARAMETER, "Body must be JSON with key and secret")
        issued = sim.authenticator.issue_token(body.get("key"), body.get("secret"))
        if issued is None:
            return _json(
                {
                    "data": None,
                    "errors": [
                        {"code": int(ErrorCode.UNAUTHORIZED), "message": "Invalid key or secret"}
                    ],
                },
                status=401,
            )
        token, ttl = issued
        return _json({"data": {"accessToken": token, "ttlSeconds": ttl}, "errors": None})

    app.add_api_route(
        SEND_MESSAGE_PATH, _send_message_handler(sim), methods=["POST"], summary="Send messages"
    )

    @app.get("/__sim/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/__sim/info")
    async def info() -> Response:
        return _json({**sim.info, "rows": sim.store.counts(), "faults": sim.injector.as_dict()})

    @app.get("/__sim/stats")
    async def stats() -> Response:
        return _json(sim.stats())

    @app.post("/__sim/reset")
    async def reset() -> Response:
        sim.reset_stats()
        sim.injector.reset_rate_window()
        return _json(sim.stats())

    @app.post("/__sim/revoke-tokens")
    async def revoke_tokens() -> Response:
        """Invalidate every OAuth token, as a key rotation would: clients must fetch new ones."""
        return _json({"revoked": sim.authenticator.revoke_all()})

    @app.get("/__sim/faults")
    async def get_faults() -> Response:
        return _json(sim.injector.as_dict())

    @app.put("/__sim/faults")
    async def put_faults(request: Request) -> Response:
        try:
            changes = msgspec.json.decode(await request.body(), type=dict[str, Any])
            sim.injector.configure(sim.injector.faults.updated(changes))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
            return _error(400, ErrorCode.INVALID_PARAMETER, str(exc))
        return _json(sim.injector.as_dict())

    @app.get("/__sim/customers")
    async def customers(limit: int = 1_000_000, offset: int = 0) -> Response:
        return _json(sim.store.customers(limit=limit, offset=offset))

    @app.post("/__sim/allocations")
    async def add_allocations(request: Request) -> Response:
        try:
            new = msgspec.json.decode(await request.body(), type=list[NewAllocation])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, ErrorCode.INVALID_PARAMETER, str(exc))
        rows = sim.store.add_allocations(new, org_id=sim.org_id, now_ms=int(time.time() * 1000))
        return Response(encode_records(rows), status_code=201, media_type="application/json")

    @app.get("/__sim/messages")
    async def messages() -> Response:
        """Every message sendMessage accepted, in order."""
        return _json(sim.messages)

    @app.put("/__sim/messages")
    async def configure_messages(request: Request) -> Response:
        """``{"refuse_after": n}``: answer 503 once n messages are accepted (null: never)."""
        try:
            body = msgspec.json.decode(await request.body(), type=dict[str, int | None])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, ErrorCode.INVALID_PARAMETER, str(exc))
        sim.refuse_messages_after = body.get("refuse_after")
        return _json({"refuse_after": sim.refuse_messages_after, "accepted": len(sim.messages)})

    @app.post("/__sim/settle")
    async def settle(request: Request) -> Response:
        """Let time pass: every AVAILABLE allocation expiring by ``through`` is redeemed (with
        probability ``redeem_share``, or ``reminded_redeem_share`` for ``reminded_customer_ids``)
        or expires, drawn from ``seed`` per allocation."""
        try:
            settlement = msgspec.json.decode(await request.body(), type=Settlement)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, ErrorCode.INVALID_PARAMETER, str(exc))
        return _json(sim.store.settle(settlement, now_ms=int(time.time() * 1000)))

    fault_paths = [endpoint.path for endpoint in ENDPOINTS]
    return ExposeConnectionAbort(
        RequestCounter(FaultMiddleware(app, sim.injector, fault_paths), sim)
    )
