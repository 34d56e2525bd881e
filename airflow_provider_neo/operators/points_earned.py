"""Tell a customer the points a purchase earned, once: the email after the allocation."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_neo.operators.trust import TrustBoundaryOperator
from airflow_provider_neo.reminders.delivery import deliver, task_try_owner
from airflow_provider_neo.reminders.message import (
    TEMPLATES,
    SandboxedTemplate,
    TemplateFailed,
    read_template,
)
from airflow_provider_neo.utils.files import text_lines
from airflow_provider_neo.validation import number


class PointsEarned(msgspec.Struct, frozen=True):
    """The message, as the sent-ledger keys it: once per customer and transaction."""

    key: str
    customer_id: int
    expiry_date: None = None
    lead_days: int = 0


class PointsEarnedEmailOperator(TrustBoundaryOperator):
    """Email a customer the points that one transaction's allocation rows add up to, exactly
    once per customer and transaction (the reminders' sent-ledger claims it first).

    :param rows: the allocation rows, e.g. ``EventPointsAllocationSensor``'s output.
    :param customer_id: the customer; their address is `customer_email`, or else looked up in
        the CRM extract at `customers_path`.
    :param entity_id: the transaction (bill number), part of the message's key.
    :param html_template: the email's Jinja HTML (``points``, ``entity_id``, ``email``,
        ``first_name``), rendered in the sandbox: a file in the provider's templates folder
        (its own is the default) or one of `template_folders`, or ``variable:<name>``.
    :param template_folders: further folders (or object-storage prefixes) `html_template` may
        come from; read as the DAG file writes it, never rendered.
    :param conf_may_set: the params a triggered run's conf may set although a location reads
        them (`location_fields`: the address, the CRM extract, the template, the ledger, the
        SMTP connection and the sender); e.g. ``["email"]`` for a DAG whose trigger names the
        address.

    XCom: ``{"points", "sent", "email"}``.
    """

    template_fields: Sequence[str] = (
        "rows", "customer_id", "entity_id", "customer_email", "customers_path", "from_email",
        "smtp_conn_id", "html_template", "ledger_path", "ledger_conn_id",
    )  # fmt: skip
    location_fields: Sequence[str] = (
        "customer_email", "customers_path", "from_email", "smtp_conn_id", "html_template",
        "ledger_path", "ledger_conn_id",
    )  # fmt: skip
    ui_color = "#b5e2b5"

    def __init__(
        self,
        *,
        rows: Any,
        customer_id: Any,
        entity_id: Any,
        from_email: str,
        customer_email: str | None = None,
        customers_path: str | None = None,
        smtp_conn_id: str = "smtp_default",
        html_template: str = str(TEMPLATES / "points_earned.html"),
        ledger_path: str | None = None,
        ledger_conn_id: str | None = None,
        template_folders: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(template_folders, str):
            raise TypeError("template_folders: expected a list of folders, got one string")
        self.template_folders = tuple(template_folders)
        self.rows = rows
        self.customer_id = customer_id
        self.entity_id = entity_id
        self.customer_email = customer_email
        self.customers_path = customers_path
        self.from_email = from_email
        self.smtp_conn_id = smtp_conn_id
        self.html_template = html_template
        self.ledger_path = ledger_path
        self.ledger_conn_id = ledger_conn_id

    def recipient(self, customer_id: int) -> dict[str, str]:
        if self.customer_email:
            return {"email": self.customer_email, "first_name": ""}
        if not self.customers_path:
            raise ValueError("customers_path: needed to look up the address without customer_email")
        for row in csv.DictReader(text_lines(self.customers_path, argument="customers_path")):
            if int(row["customer_id"]) == customer_id:
                return {"email": row["email"], "first_name": row.get("first_name") or ""}
        raise ValueError(f"customer_id: {customer_id} is not in {self.customers_path}")

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        from airflow_provider_neo.reminders.ledger import SentLedger

        customer_id = int(number("customer_id", self.customer_id, minimum=1, integer=True))
        points = sum((Decimal(str(row["points_exclusive"])) for row in self.rows), Decimal(0))
        customer = self.recipient(customer_id)
        values = {"points": f"{points.normalize():f}", "entity_id": self.entity_id, **customer}
        try:
            source = read_template(
                self.html_template, argument="html_template", folders=self.template_folders
            )
            html = SandboxedTemplate("html_template", source, autoescape=True, strict=False).render(
                values
            )
        except TemplateFailed as exc:
            raise AirflowFailException(str(exc)) from None
        note = PointsEarned(key=f"earned:{customer_id}:{self.entity_id}", customer_id=customer_id)

        def send(note: PointsEarned) -> None:
            with SmtpHook(self.smtp_conn_id) as smtp:
                smtp.send_email_smtp(
                    to=customer["email"],
                    subject=f"You earned {points.normalize():f} points",
                    html_content=html,
                    from_email=self.from_email,
                    custom_headers={"X-Neo-Notification-Key": note.key},
                )

        ledger = SentLedger.open(path=self.ledger_path or None, conn_id=self.ledger_conn_id or None)
        try:
            done = deliver([note], ledger, send, owner=task_try_owner(context))
        finally:
            ledger.close()
        return {"points": str(points), "sent": bool(done.sent), "email": customer["email"]}
