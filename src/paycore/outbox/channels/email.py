"""Email through any SMTP server (aiosmtplib), rendered from Jinja2 templates: plain text and HTML.

A merchant overrides a template by putting a file of the same name in `PAYCORE_EMAIL_TEMPLATES_DIR`
(for every tenant) or in its `<tenant slug>/` subdirectory (for one). Without `PAYCORE_SMTP_HOST`
emails are written to the log instead, so development needs no mail server.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select

from paycore.auth.models import User, UserRole
from paycore.config import Settings
from paycore.db import Database
from paycore.logging import get_logger
from paycore.money import Money
from paycore.notifications.service import SUPPRESSED_REASON, may_receive_test_email
from paycore.outbox.channels.base import DeliveryOutcome
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.tenancy.models import Tenant

log = get_logger(__name__)

_BUILT_IN = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    to: str
    subject: str
    text: str
    html: str


class EmailRenderer:
    def __init__(self, templates_dir: str | None) -> None:
        self._templates_dir = templates_dir
        self._environments: dict[str, Environment] = {}

    def _environment(self, tenant_slug: str) -> Environment:
        environment = self._environments.get(tenant_slug)
        if environment is None:
            loaders: list[BaseLoader] = []
            if self._templates_dir:
                loaders += [
                    FileSystemLoader(Path(self._templates_dir) / tenant_slug),
                    FileSystemLoader(self._templates_dir),
                ]
            loaders.append(FileSystemLoader(_BUILT_IN))
            environment = Environment(
                loader=ChoiceLoader(loaders),
                autoescape=select_autoescape(["html"]),
                undefined=StrictUndefined,
                keep_trailing_newline=False,
            )
            self._environments[tenant_slug] = environment
        return environment

    def render(self, *, template: str, to: str, tenant: Tenant, context: dict[str, Any]) -> RenderedEmail:
        environment = self._environment(tenant.slug)
        values = {"shop": tenant.name, "receipt_url": None, "name": None, **context}
        return RenderedEmail(
            to=to,
            subject=environment.get_template(f"{template}.subject.txt").render(values).strip(),
            text=environment.get_template(f"{template}.txt").render(values),
            html=environment.get_template(f"{template}.html").render(values),
        )


def stable_message_id(outbox_id: str, sender: str) -> str:
    """`<outbox row id@sender's domain>`: identical on every retry of one outbox row, so a copy
    sent again after a crash or a lost acknowledgement is recognisably the same mail (mail
    servers and clients drop repeats by Message-ID, RFC 5322 §3.6.4)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "paycore.invalid"
    return f"<{outbox_id}@{domain}>"


def email_context(payload: dict[str, Any]) -> dict[str, Any]:
    """Template values from an outbox payload, with amounts formatted for people."""
    context = dict(payload)
    order = payload.get("order")
    if isinstance(order, dict):
        context["total"] = Money(order["total"], order["currency"]).format()
        if isinstance(payload.get("amount"), int):
            context["amount"] = Money(payload["amount"], order["currency"]).format()
    return context


class EmailChannel:
    channel = OutboxChannel.EMAIL

    def __init__(self, settings: Settings, database: Database, renderer: EmailRenderer | None = None) -> None:
        self._settings = settings
        self._database = database
        self._renderer = renderer or EmailRenderer(settings.email_templates_dir)

    async def _tenant(self, tenant_id: str) -> Tenant:
        async with self._database.session(write=False) as session:
            tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant

    async def _may_receive_test_email(self, tenant_id: str, address: str) -> bool:
        async with self._database.session(write=False) as session:
            return await may_receive_test_email(session, tenant_id=tenant_id, address=address)

    async def render(
        self, *, template: str, to: str, tenant_id: str, payload: dict[str, Any]
    ) -> RenderedEmail:
        return self._renderer.render(
            template=template, to=to, tenant=await self._tenant(tenant_id), context=email_context(payload)
        )

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
        to = message.payload.get("to")
        if not isinstance(to, str) or "@" not in to:
            return DeliveryOutcome.failed("the message has no recipient address", permanent=True)
        if not message.livemode and not await self._may_receive_test_email(message.tenant_id, to):
            log.info("email_suppressed", outbox_id=message.id, tenant_id=message.tenant_id)
            return DeliveryOutcome.withheld(SUPPRESSED_REASON)
        rendered = await self.render(
            template=str(message.payload["template"]),
            to=to,
            tenant_id=message.tenant_id,
            payload=message.payload,
        )
        return await self.send(rendered, outbox_id=message.id)

    async def send(self, email: RenderedEmail, *, outbox_id: str) -> DeliveryOutcome:
        settings = self._settings
        if settings.smtp_host is None:
            log.info("email_logged", to=email.to, subject=email.subject, text=email.text, outbox_id=outbox_id)
            return DeliveryOutcome.delivered("logged (no SMTP server configured)")
        mail = EmailMessage()
        mail["From"] = settings.smtp_from
        mail["To"] = email.to
        mail["Subject"] = email.subject
        mail["Message-ID"] = stable_message_id(outbox_id, settings.smtp_from)
        mail.set_content(email.text)
        mail.add_alternative(email.html, subtype="html")
        try:
            await aiosmtplib.send(
                mail,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return DeliveryOutcome.failed(f"recipient refused: {exc}", permanent=True)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return DeliveryOutcome.failed(f"{type(exc).__name__}: {exc}")
        return DeliveryOutcome.delivered()


class OpsAlertChannel:
    """Ops alerts go by email to the tenant's owners and to `PAYCORE_OPS_ALERT_EMAIL` (the platform's
    operator); with neither, to the log at warning level."""

    channel = OutboxChannel.OPS_ALERT

    def __init__(self, settings: Settings, email: EmailChannel, database: Database) -> None:
        self._settings = settings
        self._email = email
        self._database = database

    async def _recipients(self, tenant_id: str) -> list[str]:
        async with self._database.session(write=False) as session:
            owners = await session.scalars(
                select(User.email)
                .where(User.tenant_id == tenant_id, User.role == UserRole.OWNER)
                .order_by(User.email)
            )
            recipients = list(owners)
        if self._settings.ops_alert_email:
            recipients.append(self._settings.ops_alert_email)
        return recipients

    async def deliver(self, message: OutboxMessage) -> DeliveryOutcome:
        payload = message.payload
        recipients = await self._recipients(message.tenant_id)
        if not recipients:
            log.warning(
                "ops_alert",
                code=payload.get("code"),
                alert=payload.get("message"),
                details=payload.get("details"),
                tenant_id=message.tenant_id,
            )
            return DeliveryOutcome.delivered("logged (no owner account and no PAYCORE_OPS_ALERT_EMAIL)")
        rendered = await self._email.render(
            template="ops_alert",
            to=", ".join(recipients),
            tenant_id=message.tenant_id,
            payload={"details": {}, **payload},
        )
        return await self._email.send(rendered, outbox_id=message.id)
