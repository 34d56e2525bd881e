"""A local SMTP server that stores every message it accepts as a .eml file.

It can be told to refuse mail after a number of messages (`refuse_after`), as a mail server
that goes down mid-batch would: the sender gets a 451 and its task fails, with what was
accepted already delivered. It can refuse given recipients (`refuse_recipients`), as a server
does an address that does not exist: a 550 to the RCPT, or a reply of the test's choosing, to
the recipient or to the message. For tests of concurrent senders it can hold every sender until a
number of them are connected at once (`hold_until_senders`), so that their deliveries overlap.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _StoreHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.refuse_after: int | None = None
        # address (lower case) -> (reply, whether it comes after DATA rather than at RCPT)
        self.refused: dict[str, tuple[str, bool]] = {}
        self.recipient_delay = 0.0  # seconds each RCPT waits: a slow server, before any DATA
        self.senders_to_wait_for = 0
        self.gate_timeout = 120.0
        self._senders: set[int] = set()
        self._lock = threading.Lock()
        # Counted once: listing the folder for every message made a day of 15,000 reminders
        # quadratic in the mailbox, which then fell behind the senders.
        self._stored = len(list(self.folder.glob("*.eml")))

    def count(self) -> int:
        return self._stored

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.senders_to_wait_for:
            self._senders.add(id(session))
            deadline = time.monotonic() + self.gate_timeout
            while len(self._senders) < self.senders_to_wait_for and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.senders_to_wait_for = 0  # open from now on
        if self.recipient_delay:
            await asyncio.sleep(self.recipient_delay)
        reply, after_data = self.refused.get(address.lower(), ("", False))
        if reply and not after_data:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            reply, after_data = self.refused.get(address.lower(), ("", False))
            if reply and after_data:
                return reply
        with self._lock:
            accepted = self.count()
            if self.refuse_after is not None and accepted >= self.refuse_after:
                return "451 4.3.0 Mailbox temporarily unavailable"
            content = envelope.content if isinstance(envelope.content, bytes) else b""
            (self.folder / f"{accepted + 1:06d}.eml").write_bytes(content)
            self._stored = accepted + 1
        return "250 OK"


class Mailbox:
    """``with Mailbox(folder) as box: ...`` runs the server on a free loopback port."""

    def __init__(
        self, folder: Path, host: str = "127.0.0.1", port: int = 0, *, smtputf8: bool = True
    ) -> None:
        """`smtputf8`: whether the server takes internationalised addresses (RFC 6531)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.handler = _StoreHandler(folder)
        self.controller = Controller(
            self.handler, hostname=host, port=port or _free_port(host), enable_SMTPUTF8=smtputf8
        )

    @property
    def host(self) -> str:
        return str(self.controller.hostname)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def refuse_after(self, count: int | None) -> None:
        self.handler.refuse_after = count

    def refuse_recipients(
        self,
        addresses: Iterable[str],
        reply: str = "550 5.1.1 Recipient address rejected: no such mailbox",
        *,
        after_data: bool = False,
    ) -> None:
        """Answer `reply` to these recipients at RCPT (or to their message, `after_data`) from
        now on; other recipients are taken as before. Replaces the addresses refused so far."""
        self.handler.refused = {address.lower(): (reply, after_data) for address in addresses}

    def slow_down(self, seconds: float) -> None:
        """Hold each recipient this long before taking the message (nothing is stored yet)."""
        self.handler.recipient_delay = seconds

    def hold_until_senders(self, count: int, timeout: float = 120.0) -> None:
        """Hold every recipient until `count` SMTP sessions have reached one (or `timeout`)."""
        self.handler._senders.clear()
        self.handler.gate_timeout = timeout
        self.handler.senders_to_wait_for = count

    def count(self) -> int:
        """How many messages the server has accepted."""
        return self.handler.count()

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.folder.glob("*.eml"))
        ]

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.controller.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
