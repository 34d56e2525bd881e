"""Build a simulator from settings (data, credentials, faults) and serve it with uvicorn."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

import uvicorn

from neo_simulator.app import Simulator, create_app
from neo_simulator.auth import Authenticator, Credentials
from neo_simulator.document_samples import insert_document_samples
from neo_simulator.faults import FaultInjector, Faults
from neo_simulator.generator import GeneratorSettings, generate
from neo_simulator.store import NeoStore, OrgCalendar

DEFAULT_PORT: Final = 8790
DEFAULT_TIMEZONE: Final = "Asia/Kolkata"
DEFAULT_ORG_ID: Final = 50914
READY_PREFIX: Final = "Neo simulator listening on "


@dataclass(frozen=True)
class SimulatorSettings:
    customers: int = 1_000
    seed: int = 42
    as_of: dt.date = field(default_factory=dt.date.today)
    timezone: str = DEFAULT_TIMEZONE
    org_id: int = DEFAULT_ORG_ID
    document_samples: bool = True
    scopes: tuple[str, ...] = ("org", "global", "parent")
    db_path: str | None = None  # a temporary file when not given
    credentials: Credentials = field(default_factory=Credentials)
    faults: Faults = field(default_factory=Faults)


def build(settings: SimulatorSettings) -> Simulator:
    """Create the database afresh and fill it: generated data, then the documents' samples."""
    db_path = settings.db_path
    if db_path is None:
        handle, db_path = tempfile.mkstemp(prefix="neo-simulator-", suffix=".sqlite3")
        os.close(handle)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    store = NeoStore(db_path, OrgCalendar(ZoneInfo(settings.timezone)))
    store.create_schema()
    generate(
        store,
        GeneratorSettings(
            customers=settings.customers,
            seed=settings.seed,
            as_of=settings.as_of,
            org_id=settings.org_id,
        ),
    )
    if settings.document_samples:
        insert_document_samples(store)
    return Simulator(
        store=store,
        authenticator=Authenticator(settings.credentials),
        injector=FaultInjector(settings.faults),
        org_id=settings.org_id,
        scopes=settings.scopes,
        info={
            "org_id": settings.org_id,
            "timezone": settings.timezone,
            "as_of": settings.as_of.isoformat(),
            "seed": settings.seed,
            "customers": settings.customers,
            "db_path": db_path,
            "token_ttl_seconds": settings.credentials.token_ttl_seconds,
        },
    )


def serve(settings: SimulatorSettings, host: str, port: int) -> None:
    """Build, bind, print the URL on stdout (port 0 picks a free one), and serve until stopped."""
    started = time.perf_counter()
    sim = build(settings)
    rows = sim.store.counts()
    print(
        f"Neo simulator: {rows['customers']} customers, {rows['allocations']} allocations"
        f" in {time.perf_counter() - started:.1f} s, database {sim.info['db_path']}",
        file=sys.stderr,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, a keep-alive connection waits ~40 ms per answer
    # (Nagle holding the body back until the client's delayed ACK of the headers).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(
        create_app(sim),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        # Announce only once uvicorn handles requests: a client may start its clock at this line.
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        if server.started:
            print(f"{READY_PREFIX}http://{url_host}:{bound_port}", flush=True)
        await serving

    try:
        asyncio.run(run())
    finally:
        sim.store.close()
        if settings.db_path is None:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(str(sim.info["db_path"]) + suffix):
                    os.remove(str(sim.info["db_path"]) + suffix)
