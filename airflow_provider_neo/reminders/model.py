"""What the reminder workflow talks about: a customer of the CRM extract, a loyalty program's
point category, and a reminder (customer, expiry day, lead time) with the points at stake."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Protocol

import msgspec


class Customer(msgspec.Struct, frozen=True):
    """A row of the CRM extract, checked (`reminders.crm`): shard files carry it, consent
    included, so that no later step reads the extract again."""

    customer_id: int
    email: str
    first_name: str = ""
    mobile: str = ""  # for SMS and WhatsApp; an optional column of the CRM extract
    email_opt_in: bool = True
    sms_opt_in: bool = True


class ProgramCategory(msgspec.Struct, frozen=True):
    program_id: int
    point_category_id: int


class Reminder(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: int
    email: str
    first_name: str
    lead_days: int
    expiry_date: dt.date
    remaining_points: Decimal
    programs: dict[str, Decimal]  # program id -> points expiring that day
    mobile: str = ""

    @property
    def key(self) -> str:
        return f"{self.customer_id}:{self.expiry_date.isoformat()}:{self.lead_days}"


class Message(Protocol):
    """What the sent-ledger keys a message by; a `Reminder` is one."""

    @property
    def key(self) -> str: ...
    @property
    def customer_id(self) -> int: ...
    @property
    def expiry_date(self) -> dt.date | None: ...
    @property
    def lead_days(self) -> int: ...
