"""The message a customer receives: the brand's Jinja templates (subject, HTML, plain text), the
RFC 8058 one-click unsubscribe link signed with the brand's secret, and the email around them.

Templates render in Jinja's immutable sandbox, and are read only from the folders the DAG author
allows (`template_folders`, the provider's own always) or from Airflow Variables: a template
cannot run code on the worker, and a template location cannot point at any other file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import jinja2
import msgspec
from jinja2.sandbox import ImmutableSandboxedEnvironment

from airflow_provider_neo.reminders.channels.base import OutgoingReminder
from airflow_provider_neo.reminders.model import Reminder

TEMPLATES: Final = Path(__file__).parent / "templates"
DEFAULT_SUBJECT: Final = "{{ first_name }}, {{ points }} points expire on {{ expiry_date }}"
# A template held in an Airflow Variable: ``variable:<name>`` where a path is expected.
VARIABLE_PREFIX: Final = "variable:"


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

    def verify(self, customer_id: int | str, token: str | None) -> bool:
        """Whether `token` is the one this brand's links carry for `customer_id`: for the
        brand's unsubscribe page, which gets both from the link's query string. The comparison
        takes the same time whatever the token, so that it does not tell a guesser how much of a
        token was right; an id that is not ASCII digits, or no token, is refused."""
        if isinstance(customer_id, str):
            if not (customer_id.isascii() and customer_id.isdigit()):
                return False
            customer_id = int(customer_id)
        if token is None:
            return False
        try:
            given = token.encode()
        except UnicodeEncodeError:  # lone surrogates: not a token this class wrote
            return False
        return hmac.compare_digest(self.token(customer_id).encode(), given)

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


class TemplateFailed(ValueError):
    """A template that does not parse, refers to a field it is not given, or does something
    Jinja's sandbox refuses (reaching Python internals, calling methods that change data): its
    message starts with the name of the argument that gave the template."""


class TemplateRefused(TemplateFailed):
    """A template that tried what Jinja's sandbox refuses: whatever the values, it never renders."""


class SandboxedTemplate:
    """One template rendered in Jinja's immutable sandbox: it sees only the values it is
    given, reaches no Python internals (``__class__``, ``__globals__``, ...) and changes no
    value, so a template, whoever wrote it, cannot run code on the worker. `name` (the argument
    that gave it) starts every error."""

    def __init__(self, name: str, source: str, *, autoescape: bool, strict: bool = True) -> None:
        environment = ImmutableSandboxedEnvironment(
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
        )
        self.name = name
        try:
            self.template = environment.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateFailed(
                f"{name}: not a valid template (line {exc.lineno}: {exc})"
            ) from None

    def render(self, values: Mapping[str, Any]) -> str:
        try:
            return self.template.render(values)
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateRefused(f"{self.name}: refused by the template sandbox: {exc}") from None
        except Exception as exc:  # an undefined field, a filter on the wrong type, a huge range
            raise TemplateFailed(f"{self.name}: {type(exc).__name__}: {exc}") from None


class ReminderTemplate:
    """The message: a Jinja subject line, an HTML body and a plain-text body a brand can replace,
    each rendered in the sandbox (`SandboxedTemplate`). The plain text is also the SMS or
    WhatsApp body. Both bodies get the reminder's fields, ``points`` as text and
    ``unsubscribe_url``."""

    def __init__(self, body: str, subject: str, text: str) -> None:
        self.body = SandboxedTemplate("html_template", body, autoescape=True)
        self.subject = SandboxedTemplate("subject", subject, autoescape=False)
        self.text = SandboxedTemplate("text_template", text, autoescape=False)

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


# Rendered once before a delivery claims anything, so that a template the sandbox refuses fails
# the task before any reminder is claimed, held out or sent.
_TRIAL_REMINDER: Final = Reminder(
    customer_id=1, email="customer@example.com", first_name="Customer", lead_days=1,
    expiry_date=dt.date(2000, 1, 1), remaining_points=Decimal("1234.5"),
    programs={"1": Decimal("1234.5")}, mobile="+10000000000",
)  # fmt: skip


def _storage_location(location: str) -> tuple[str, str, str] | None:
    """(scheme, bucket, normalised path) of a local path, a ``file://`` URL or an object-storage
    URL, symbolic links of local paths resolved; None for what cannot name a file safely (a
    query, a fragment, a ``..`` segment in a URL)."""
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", location):
        return "file", "", os.path.realpath(location)
    parts = urlsplit(location)
    if parts.query or parts.fragment:
        return None
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return "file", "", os.path.realpath(parts.path)
    segments = [*parts.path.split("/"), *unquote(parts.path).split("/")]
    if ".." in segments or "." in segments:
        return None
    return parts.scheme.lower(), parts.netloc, posixpath.normpath(parts.path or "/")


def in_template_folder(location: str, folders: Iterable[str]) -> bool:
    """Whether `location` names a file inside one of `folders` (local folders or
    object-storage prefixes such as ``s3://bucket/templates``)."""
    where = _storage_location(location)
    if where is None:
        return False
    for folder in folders:
        base = _storage_location(folder)
        if base is not None and base[:2] == where[:2]:
            prefix = base[2].rstrip("/") + "/"
            if where[2].startswith(prefix) and len(where[2]) > len(prefix):
                return True
    return False


def read_template(location: str, *, argument: str, folders: Iterable[str] = ()) -> str:
    """The template at `location`: ``variable:<name>``, the Airflow Variable `name`; else a file
    (a path or an ObjectStoragePath URL) inside the provider's templates folder or one of
    `folders`. Anything else is refused, naming the `argument`, before it is read."""
    from airflow.providers.common.compat.sdk import Variable

    from airflow_provider_neo.utils.files import read_text

    if location.startswith(VARIABLE_PREFIX):
        name = location.removeprefix(VARIABLE_PREFIX)
        value = Variable.get(name, None)
        if value is None:
            raise TemplateFailed(f"{argument}: the Airflow Variable {name!r} is not set")
        return str(value)
    allowed = [str(TEMPLATES), *folders]
    if not in_template_folder(location, allowed):
        raise TemplateFailed(
            f"{argument}: {location!r} is not in an allowed template folder ({', '.join(allowed)});"
            " list its folder in template_folders in the DAG file, or hold the template in an"
            " Airflow Variable (variable:<name>)"
        )
    return read_text(location, argument=argument)


class ReminderMessage:
    """The brand's message, as a DAG configures it: the HTML and plain-text templates, the
    subject line, and the one-click unsubscribe link (an https URL template with
    ``{customer_id}`` and ``{token}``, signed with the secret in the Airflow Variable
    `unsubscribe_secret_variable`, and an optional mailto address).

    A template is a path or an ObjectStoragePath URL inside the provider's templates folder (its
    own templates are the default) or one of `template_folders`, or ``variable:<name>``, the
    Airflow Variable that holds it. `template_folders` (local folders or object-storage
    prefixes) is read as the DAG file writes it, never rendered.

    The templates are Jinja, rendered in the sandbox, with the reminder's fields
    (``customer_id``, ``first_name``, ``email``, ``lead_days``, ``expiry_date``,
    ``remaining_points``, ``programs``), ``points`` as text and ``unsubscribe_url``. `subject`
    is such a template too, so it is not one of the `template_fields` that Airflow renders first.
    Every template field names a file, a URL, an address or a credential: a trigger's conf
    cannot set them (`location_fields`) unless the DAG author allows it.
    """

    template_fields: Sequence[str] = (
        "html_template", "text_template", "unsubscribe_url", "unsubscribe_mailto",
        "unsubscribe_secret_variable",
    )  # fmt: skip
    location_fields: Sequence[str] = template_fields

    def __init__(
        self,
        *,
        html_template: str = str(TEMPLATES / "expiry_reminder.html"),
        text_template: str = str(TEMPLATES / "expiry_reminder.txt"),
        subject: str = DEFAULT_SUBJECT,
        unsubscribe_url: str,
        unsubscribe_secret_variable: str = "neo_unsubscribe_secret",
        unsubscribe_mailto: str = "",
        template_folders: Iterable[str] = (),
    ) -> None:
        if isinstance(template_folders, str):
            raise TypeError("template_folders: expected a list of folders, got one string")
        self.html_template = html_template
        self.text_template = text_template
        self.subject = subject
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_secret_variable = unsubscribe_secret_variable
        self.unsubscribe_mailto = unsubscribe_mailto
        self.template_folders = tuple(template_folders)

    def composer(self) -> MessageComposer:
        """Read the templates and the signing secret, and render the templates once with a
        trial reminder: once per delivery, before anything is claimed. A template from outside
        the allowed folders, or one that does not parse or that the sandbox refuses, fails the
        task without a retry (the next try would read the same). The trial reminder may lack
        what a real one has (a program id a template names): other errors of the trial are
        left to the real reminders."""
        from airflow.providers.common.compat.sdk import (
            AirflowException,
            AirflowFailException,
            Variable,
        )

        try:
            template = ReminderTemplate(
                read_template(
                    self.html_template, argument="html_template", folders=self.template_folders
                ),
                self.subject,
                read_template(
                    self.text_template, argument="text_template", folders=self.template_folders
                ),
            )
        except TemplateFailed as exc:
            raise AirflowFailException(str(exc)) from None
        try:
            template.render(_TRIAL_REMINDER, unsubscribe_url="https://example.com/unsubscribe")
        except TemplateRefused as exc:
            raise AirflowFailException(str(exc)) from None
        except TemplateFailed:
            pass  # a field the trial lacks, say a program id: the real reminders will tell
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
