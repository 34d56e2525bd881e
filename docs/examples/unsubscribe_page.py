"""The brand's unsubscribe page: checks the link of a reminder and records the opt-out."""

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from airflow_provider_neo.reminders import Unsubscribe

unsubscribe = Unsubscribe(
    "https://rewards.example.com/unsubscribe?customer={customer_id}&token={token}",
    secret=os.environ["NEO_UNSUBSCRIBE_SECRET"],  # the value of the Variable neo_unsubscribe_secret
)
SUPPRESSION_LIST = os.environ.get("NEO_SUPPRESSION_PATH", "suppression-list.csv")


def opt_out(customer_id: int) -> None:
    """The brand's own: here, a line in the suppression list the reminders read."""
    new = not os.path.exists(SUPPRESSION_LIST)
    with open(SUPPRESSION_LIST, "a") as suppression:
        suppression.write(("customer_id\n" if new else "") + f"{customer_id}\n")


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """GET from the reminder's link, or POST from the mail client (RFC 8058 one-click)."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    customer = query.get("customer", [""])[0]
    if not unsubscribe.verify(customer, query.get("token", [None])[0]):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"This link is not valid."]
    opt_out(int(customer))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"You will not get these reminders any more."]


if __name__ == "__main__":
    make_server("", int(os.environ.get("PORT", "8000")), application).serve_forever()
