"""Who may be messaged: consent (the CRM extract's opt-in columns and a suppression list) and
the holdout (a stable share of customers never reminded, the comparison group)."""

from __future__ import annotations

import csv
import hashlib
from typing import Final


def in_holdout(customer_id: int, *, share: float, salt: str) -> bool:
    """Whether a customer belongs to the holdout: the first 8 bytes of SHA-256 over the salt and
    the id, as a fraction of 2**64, below `share`. The same customer is in or out on every run
    and every host, and a new salt draws a new holdout."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


# The opt-in column of the CRM extract for each medium; an absent column means opted in.
OPT_IN_COLUMNS: Final = {"email": "email_opt_in", "sms": "sms_opt_in", "whatsapp": "sms_opt_in"}
_OPTED_OUT_VALUES: Final = frozenset({"0", "false", "no", "n", "off", "f"})


class Consent:
    """Who may not be messaged on one medium: the customers whose opt-in column of the CRM
    extract says no (false/0/no/n/off, any case; other values and an absent column are yes) and
    the ids of a suppression list (a CSV with a ``customer_id`` column, or NDJSON, at any
    ObjectStoragePath). Read when delivery starts, so the latest opt-outs count."""

    def __init__(self, opted_out: set[int]) -> None:
        self.opted_out = opted_out

    @classmethod
    def read(
        cls, *, medium: str, customers_path: str | None = None, suppression_path: str | None = None
    ) -> Consent:
        from airflow_provider_neo.utils.customers import customers_from_file
        from airflow_provider_neo.utils.files import text_lines

        opted_out: set[int] = set()
        column = OPT_IN_COLUMNS.get(medium)
        if customers_path and column:
            for row in csv.DictReader(text_lines(customers_path, argument="customers_path")):
                if (row.get(column) or "").strip().lower() in _OPTED_OUT_VALUES:
                    opted_out.add(int(row["customer_id"]))
        if suppression_path:
            opted_out.update(int(value) for value in customers_from_file(suppression_path))
        return cls(opted_out)

    def allows(self, customer_id: int) -> bool:
        return customer_id not in self.opted_out
