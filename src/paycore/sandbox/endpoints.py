"""The sandbox's hosted pages: what a customer sees at the provider. Test mode only, no API key:
like a real provider's checkout link, the attempt id in the URL is the capability."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from paycore.db import Database
from paycore.dependencies import DatabaseDep
from paycore.errors import ValidationFailed
from paycore.money import Money
from paycore.sandbox import service
from paycore.sandbox.models import SandboxPayment
from paycore.sandbox.schemas import SandboxConfirmIn, SandboxPaymentOut

router = APIRouter(prefix="/sandbox", tags=["sandbox"])

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _out(payment: SandboxPayment) -> SandboxPaymentOut:
    return SandboxPaymentOut(
        id=payment.id,
        merchant_reference=payment.merchant_reference,
        amount=payment.amount,
        currency=payment.currency,
        status=payment.status,
    )


def return_link(payment: SandboxPayment) -> str | None:
    """The storefront's return URL with the outcome added, the way Stripe's redirect adds
    `payment_intent` and `redirect_status`; `None` while undecided or when none was given."""
    if payment.return_url is None or payment.status == service.REQUIRES_ACTION:
        return None
    parts = urlsplit(payment.return_url)
    outcome = {
        "payment_attempt": payment.merchant_reference,
        "redirect_status": "succeeded" if payment.status == service.SUCCEEDED else "failed",
    }
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *outcome.items()])
    return urlunsplit(parts._replace(query=query))


def _page(payment: SandboxPayment) -> HTMLResponse:
    html = _templates.get_template("pay.html").render(
        amount=Money(payment.amount, payment.currency).format(),
        attempt_id=payment.merchant_reference,
        status=payment.status,
        declined=payment.status == service.DECLINED,
        return_url=return_link(payment),
    )
    return HTMLResponse(html)


@router.get("/pay/{attempt_id}", response_class=HTMLResponse, summary="The sandbox's payment page")
async def pay_page(attempt_id: str, database: DatabaseDep) -> HTMLResponse:
    """The built-in test provider's payment page, where a test customer pays or declines. No key: the
    attempt id in the URL is the capability, as with a real provider's link."""
    async with database.session(write=False) as session:
        payment = await service.find_payment(session, merchant_reference=attempt_id)
    return _page(payment)


async def _decide(database: Database, attempt_id: str, body: SandboxConfirmIn) -> SandboxPayment:
    async with database.session(write=True) as session:
        return await service.confirm_payment(
            session,
            merchant_reference=attempt_id,
            succeed=body.outcome == "succeed",
            chaos=service.Chaos(**body.chaos.model_dump()),
        )


@router.post("/pay/{attempt_id}", response_class=HTMLResponse, summary="The payment page's Pay/Decline form")
async def pay_page_form(attempt_id: str, request: Request, database: DatabaseDep) -> HTMLResponse:
    """The payment page's form: `outcome=succeed` or `outcome=decline`; the sandbox then sends its
    signed webhook to paycore."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    outcome = (fields.get("outcome") or [""])[-1]
    if outcome not in ("succeed", "decline"):
        raise ValidationFailed("outcome must be succeed or decline.", param="outcome")
    return _page(await _decide(database, attempt_id, SandboxConfirmIn.model_validate({"outcome": outcome})))


@router.post("/pay/{attempt_id}/confirm", summary="Pay or decline from code, optionally with chaos")
async def confirm(attempt_id: str, body: SandboxConfirmIn, database: DatabaseDep) -> SandboxPaymentOut:
    """Pays (`succeed`) or declines a sandbox payment from code, as a customer on the page would; the
    sandbox then sends its signed webhook. `chaos` makes the webhook late, repeated or out of order,
    for testing a receiver."""
    return _out(await _decide(database, attempt_id, body))
