"""What an exchange and the hook driving it say to each other: the actions an exchange yields
(`Reserve`, `Send`, `Sleep`, `RateLimited`, `RenewToken`) and the replies it is sent back."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    json_body: Any = field(default=None, repr=False)  # the OAuth key and secret travel here
    authenticated: bool = True  # the driver adds Basic or OAuth credentials


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Reserve:
    """Claim the next slot of the rate budget; the driver answers `Reserved`."""


@dataclass(frozen=True)
class RateLimited:
    """Neo answered 429: the budget slows down for every caller sharing it and, when Neo said
    how long to wait (`pause_seconds`), pauses them all that long."""

    pause_seconds: float | None


@dataclass(frozen=True)
class RenewToken:
    """Drop the cached OAuth token: the next authenticated request fetches a new one."""


@dataclass(frozen=True)
class Received:
    status: int
    headers: Mapping[str, str]  # case-insensitive, as requests and httpx give them
    body: bytes


@dataclass(frozen=True)
class Failed:
    """The request got no complete answer: refused, timed out, or dropped mid-response."""

    description: str


@dataclass(frozen=True)
class Reserved:
    wait_seconds: float


Action = Reserve | Send | Sleep | RateLimited | RenewToken
Reply = Reserved | Received | Failed | None
Exchange = Generator[Action, Reply, T]
