"""Who may be messaged: consent (the CRM extract's opt-in columns and a suppression list) and
the holdout (a stable share of customers never reminded, the comparison group)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

from airflow_provider_neo.reminders.model import Customer
from airflow_provider_neo.reminders.suppression import SuppressionIndex


def in_holdout(customer_id: int, *, share: float, salt: str) -> bool:
    """Whether a customer belongs to the holdout: the first 8 bytes of SHA-256 over the salt and
    the id, as a fraction of 2**64, below `share`. The same customer is in or out on every run
    and every host, and a new salt draws a new holdout."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


# The opt-in column of the CRM extract for each medium (`Customer` carries it from the shard).
OPT_IN_COLUMNS: Final = {"email": "email_opt_in", "sms": "sms_opt_in", "whatsapp": "sms_opt_in"}


class Consent:
    """Who may not be messaged on one medium, among the customers of one shard: those whose
    opt-in column of the CRM extract says no (as the split read it, `reminders.crm`) and those
    on the suppression list (its index as of now, `reminders.suppression`). Built when
    delivery starts, from the shard's own rows: its cost is the shard's, not the extract's."""

    def __init__(self, opted_out: set[int]) -> None:
        self.opted_out = opted_out

    @classmethod
    def of(
        cls,
        *,
        medium: str,
        customers: Iterable[Customer],
        customer_ids: Iterable[int],
        suppression: SuppressionIndex | None = None,
    ) -> Consent:
        """Consent for `customer_ids` (those about to be messaged), from the shard's
        `customers` and the `suppression` index."""
        column = OPT_IN_COLUMNS.get(medium)
        opted_out = {
            customer.customer_id
            for customer in customers
            if column is not None and not getattr(customer, column)
        }
        if suppression is not None:
            opted_out |= suppression.members(customer_ids)
        return cls(opted_out)

    def allows(self, customer_id: int) -> bool:
        return customer_id not in self.opted_out
