"""The message a customer receives: the brand's Jinja templates (subject, HTML, plain text), the
RFC 8058 one-click unsubscribe link signed with the brand's secret, and the email around them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import jinja2
import msgspec

from airflow_provider_neo.reminders.channels.base import OutgoingReminder
from airflow_provider_neo.reminders.model import Reminder

TEMPLATES: Final = Path(__file__).parent / "templates"
DEFAULT_SUBJECT: Final = "{{ first_name }}, {{ points }} points expire on {{ expiry_date }}"


class Unsubscribe:
    """RFC 8058 one-click unsubscribe for a brand: the https link of `url_template` (with
    ``{customer_id}`` and ``{token}``) and an optional mailto address. The token is an HMAC of
    the customer id under the brand's own `secret`, so the brand's unsubscribe page can check a
    request without a database and nobody can unsubscribe someone else by guessing ids."""

    def __init__(self, url_template: str, secret: str, mailto: str = "") -> None:
        if not url_template.startswith("https://"):
            raise ValueError("unsubscribe_url: RFC 8058 one-click unsubscribe needs an https URL")
        if not secret:
            raise ValueError("unsubscribe secret: empty; set the brand's own secret")
        self.url_template = url_template
        self.secret = secret.encode()
        self.mailto = mailto

    def token(self, customer_id: int) -> str:
        return hmac.new(self.secret, str(customer_id).encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, customer_id: int) -> str:
        return self.url_template.format(customer_id=customer_id, token=self.token(customer_id))

    def headers(self, customer_id: int) -> dict[str, str]:
        links = [f"<{self.url(customer_id)}>"]
        if self.mailto:
            links.append(f"<mailto:{self.mailto}?subject=unsubscribe%20{customer_id}>")
        return {
            "List-Unsubscribe": ", ".join(links),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


class RenderedReminder(msgspec.Struct, frozen=True):
    subject: str
    html: str
    text: str


def compose_email(outgoing: OutgoingReminder, *, from_email: str) -> EmailMessage:
    """The reminder as a multipart/alternative email: the plain text first, the HTML second (mail
    clients show the last part they can), with its headers (unsubscribe, reminder key)."""
    message = EmailMessage()
    message["From"] = from_email
    message["To"] = outgoing.reminder.email
    message["Subject"] = outgoing.subject
    for name, value in outgoing.headers.items():
        message[name] = value
    message.set_content(outgoing.text)
    message.add_alternative(outgoing.html, subtype="html")
    return message


class ReminderTemplate:
    """The message: a Jinja subject line, an HTML body and a plain-text body a brand can replace.
    The plain text is also the SMS or WhatsApp body. Both bodies get the reminder's fields,
    ``points`` as text and ``unsubscribe_url``."""

    def __init__(self, body: str, subject: str, text: str) -> None:
        environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        self.body = environment.from_string(body)
        plain = jinja2.Environment(undefined=jinja2.StrictUndefined)
        self.subject = plain.from_string(subject)
        self.text = plain.from_string(text)

    def render(self, reminder: Reminder, unsubscribe_url: str = "") -> RenderedReminder:
        values: dict[str, Any] = {
            **msgspec.structs.asdict(reminder),
            "points": _points_text(reminder.remaining_points),
            "unsubscribe_url": unsubscribe_url,
        }
        return RenderedReminder(
            subject=self.subject.render(values),
            html=self.body.render(values),
            text=self.text.render(values),
        )


def _points_text(points: Decimal) -> str:
    return f"{points.normalize():f}" if points % 1 else f"{int(points):,}"


class ReminderMessage:
    """The brand's message, as a DAG configures it: the HTML and plain-text templates (paths
    or ObjectStoragePath URLs; the provider's own by default), the subject line, and the
    one-click unsubscribe link (an https URL template with ``{customer_id}`` and ``{token}``,
    signed with the secret in the Airflow Variable `unsubscribe_secret_variable`, and an
    optional mailto address).

    The templates are Jinja with the reminder's fields (``customer_id``, ``first_name``,
    ``email``, ``lead_days``, ``expiry_date``, ``remaining_points``, ``programs``), ``points``
    as text and ``unsubscribe_url``. `subject` is such a template too, so it is not one of the
    `template_fields` that Airflow renders first.
    """

    template_fields: Sequence[str] = (
        "html_template", "text_template", "unsubscribe_url", "unsubscribe_mailto",
        "unsubscribe_secret_variable",
    )  # fmt: skip

    def __init__(
        self,
        *,
        html_template: str = str(TEMPLATES / "expiry_reminder.html"),
        text_template: str = str(TEMPLATES / "expiry_reminder.txt"),
        subject: str = DEFAULT_SUBJECT,
        unsubscribe_url: str,
        unsubscribe_secret_variable: str = "neo_unsubscribe_secret",
        unsubscribe_mailto: str = "",
    ) -> None:
        self.html_template = html_template
        self.text_template = text_template
        self.subject = subject
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_secret_variable = unsubscribe_secret_variable
        self.unsubscribe_mailto = unsubscribe_mailto

    def composer(self) -> MessageComposer:
        """Read the templates and the signing secret: once per delivery."""
        from airflow.providers.common.compat.sdk import AirflowException, Variable

        from airflow_provider_neo.utils.files import read_text

        template = ReminderTemplate(
            read_text(self.html_template, argument="html_template"),
            self.subject,
            read_text(self.text_template, argument="text_template"),
        )
        # The default by position: the keyword is `default` on Airflow 3, `default_var` on 2.11.
        secret = Variable.get(self.unsubscribe_secret_variable, None)
        if not secret:
            raise AirflowException(
                f"unsubscribe_secret_variable: set the Airflow Variable"
                f" {self.unsubscribe_secret_variable!r} to the brand's own secret; it signs the"
                " unsubscribe links"
            )
        unsubscribe = Unsubscribe(self.unsubscribe_url, secret, self.unsubscribe_mailto)
        return MessageComposer(template, unsubscribe)


class MessageComposer:
    """Each reminder's message, rendered and with its headers, as channels receive it."""

    def __init__(self, template: ReminderTemplate, unsubscribe: Unsubscribe) -> None:
        self.template = template
        self.unsubscribe = unsubscribe

    def compose(self, reminder: Reminder) -> OutgoingReminder:
        url = self.unsubscribe.url(reminder.customer_id)
        rendered = self.template.render(reminder, unsubscribe_url=url)
        headers = {
            **self.unsubscribe.headers(reminder.customer_id),
            "X-Neo-Reminder-Key": reminder.key,
        }
        return OutgoingReminder(
            reminder=reminder, subject=rendered.subject, html=rendered.html, text=rendered.text,
            unsubscribe_url=url, headers=headers,
        )  # fmt: skip
