"""``neo-simulator`` (or ``python -m neo_simulator``): run the Neo simulator as an HTTP server."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_neo.endpoints import SCOPE_HEADER
from neo_simulator import auth
from neo_simulator.faults import Faults
from neo_simulator.server import (
    DEFAULT_ORG_ID,
    DEFAULT_PORT,
    DEFAULT_TIMEZONE,
    SimulatorSettings,
    serve,
)


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown IANA time zone {text!r}") from None
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neo-simulator",
        description="A Capillary Neo points API simulator: real HTTP, SQLite data, seeded faults.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument(
        "--port", type=_non_negative, default=DEFAULT_PORT, help="0 picks a free port"
    )

    data = p.add_argument_group("data")
    data.add_argument("--customers", type=_non_negative, default=1_000)
    data.add_argument("--seed", type=int, default=42)
    data.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=dt.date.today(),
        help="the day the data is generated for: allocations expiring before it have expired",
    )  # fmt: skip
    data.add_argument(
        "--timezone", type=_timezone, default=DEFAULT_TIMEZONE, help="organisation time zone"
    )
    data.add_argument("--org-id", type=int, default=DEFAULT_ORG_ID)
    data.add_argument("--db", help="SQLite file to (re)create; a temporary file by default")
    data.add_argument(
        "--no-document-samples", action="store_true",
        help="leave out the rows behind the Neo documents' sample responses",
    )  # fmt: skip

    data.add_argument(
        "--scopes", default="org,global,parent",
        help=f"{SCOPE_HEADER} values accepted, comma-separated",
    )  # fmt: skip

    creds = p.add_argument_group("credentials")
    creds.add_argument("--username", default=auth.DEFAULT_USERNAME)
    creds.add_argument("--password", default=auth.DEFAULT_PASSWORD)
    creds.add_argument("--oauth-key", default=auth.DEFAULT_OAUTH_KEY)
    creds.add_argument("--oauth-secret", default=auth.DEFAULT_OAUTH_SECRET)
    creds.add_argument("--token-ttl", type=_non_negative, default=auth.DEFAULT_TOKEN_TTL_SECONDS,
                       help="OAuth token lifetime in seconds")  # fmt: skip

    faults = p.add_argument_group("faults (all off by default)")
    faults.add_argument("--latency-ms", type=_non_negative, default=0)
    faults.add_argument(
        "--error-rate", type=_rate, default=0.0, help="share of 500/502/503/504 answers"
    )
    faults.add_argument("--rate-limit-per-minute", type=_non_negative, default=0,
                        help="429 beyond this many requests in any 60 s")  # fmt: skip
    faults.add_argument(
        "--no-retry-after", action="store_true", help="send 429 without Retry-After"
    )
    faults.add_argument("--malformed-rate", type=_rate, default=0.0,
                        help="share of 200 answers with cut-off JSON or an HTML page")  # fmt: skip
    faults.add_argument("--reset-rate", type=_rate, default=0.0,
                        help="share of connections dropped mid-response")  # fmt: skip
    faults.add_argument(
        "--stall-rate",
        type=_rate,
        default=0.0,
        help="share of answers held back --stall-ms (provokes read timeouts)",
    )
    faults.add_argument("--stall-ms", type=_non_negative, default=5_000)
    faults.add_argument(
        "--rate-window-seconds",
        type=float,
        default=60.0,
        help="the window --rate-limit-per-minute counts over (shorter for tests)",
    )
    faults.add_argument(
        "--ignore-page",
        action="store_true",
        help="answer page 1 whatever page is asked (paging that never ends)",
    )
    faults.add_argument(
        "--page-overlap",
        type=_non_negative,
        default=0,
        help="each page repeats this many rows of the previous page",
    )
    faults.add_argument("--fault-seed", type=int, default=0)  # fmt: skip
    return p


def settings_from_args(argv: Sequence[str] | None = None) -> tuple[SimulatorSettings, str, int]:
    args = parser().parse_args(argv)
    settings = SimulatorSettings(
        customers=args.customers,
        seed=args.seed,
        as_of=args.as_of,
        timezone=args.timezone,
        org_id=args.org_id,
        document_samples=not args.no_document_samples,
        scopes=tuple(scope.strip() for scope in args.scopes.split(",") if scope.strip()),
        db_path=args.db,
        credentials=auth.Credentials(
            username=args.username,
            password=args.password,
            oauth_key=args.oauth_key,
            oauth_secret=args.oauth_secret,
            token_ttl_seconds=args.token_ttl,
        ),
        faults=Faults(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            rate_limit_per_minute=args.rate_limit_per_minute,
            retry_after=not args.no_retry_after,
            malformed_rate=args.malformed_rate,
            reset_rate=args.reset_rate,
            stall_rate=args.stall_rate,
            stall_ms=args.stall_ms,
            rate_window_seconds=args.rate_window_seconds,
            ignore_page=args.ignore_page,
            page_overlap=args.page_overlap,
            seed=args.fault_seed,
        ),
    )
    return settings, args.host, args.port


def main(argv: Sequence[str] | None = None) -> None:
    settings, host, port = settings_from_args(argv)
    serve(settings, host, port)


if __name__ == "__main__":
    main()
