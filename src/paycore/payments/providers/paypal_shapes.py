"""PayPal's JSON in paycore's words: amounts, events, order and refund states. Pure, no I/O.

Every reader here takes whatever PayPal (or someone pretending to be it) sent and never raises:
an odd shape yields None or the cautious answer (pending, ignored), never a success.
"""

from __future__ import annotations

import re
from typing import Any

from paycore.money import MAX_AMOUNT, Money, MoneyError, minor_unit_exponent
from paycore.payments.providers.base import (
    NeutralEvent,
    NeutralKind,
    ProviderPaymentState,
    ProviderPaymentStatus,
    RefundOutcome,
    RefundState,
)

# Currencies PayPal takes in whole units only, though ISO 4217 gives them two decimals.
_WHOLE_UNITS_ONLY = frozenset({"HUF", "TWD"})
_VALUE = re.compile(r"^(0|[1-9][0-9]{0,17})(?:\.([0-9]{1,6}))?$")

_PAYMENT_EVENTS = {
    "PAYMENT.CAPTURE.COMPLETED": NeutralKind.PAYMENT_SUCCEEDED,
    "PAYMENT.CAPTURE.PENDING": NeutralKind.PAYMENT_PENDING,
    "PAYMENT.CAPTURE.DENIED": NeutralKind.PAYMENT_FAILED,
    "PAYMENT.CAPTURE.DECLINED": NeutralKind.PAYMENT_FAILED,
}
_REFUND_EVENTS = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})
# Approved, not yet captured: the customer is done at PayPal but no money has moved. Capture
# happens on the customer's return (confirm) or at reconciliation; see docs/providers/paypal.md.
ORDER_APPROVED = "CHECKOUT.ORDER.APPROVED"
# The approval lapsed uncaptured: nothing was paid, the attempt failed.
APPROVAL_REVERSED = "CHECKOUT.PAYMENT-APPROVAL.REVERSED"

_CAPTURE_STATES = {
    "COMPLETED": ProviderPaymentState.SUCCEEDED,
    # Money that was received and later given back: the payment itself succeeded.
    "PARTIALLY_REFUNDED": ProviderPaymentState.SUCCEEDED,
    "REFUNDED": ProviderPaymentState.SUCCEEDED,
    "PENDING": ProviderPaymentState.PENDING,
    "DECLINED": ProviderPaymentState.FAILED,
    "FAILED": ProviderPaymentState.FAILED,
}
_REFUND_STATES = {
    "COMPLETED": RefundState.SUCCEEDED,
    "PENDING": RefundState.PENDING,
    "FAILED": RefundState.FAILED,
    "CANCELLED": RefundState.FAILED,
}


class AmountNotRepresentable(ValueError):
    """An amount PayPal cannot take in this currency (a fraction of a whole-unit currency)."""


def to_paypal_value(money: Money) -> str:
    """Integer minor units → PayPal's decimal string ("2500" EUR → "25.00"), without floats."""
    exponent = minor_unit_exponent(money.currency)
    if money.amount < 0:
        raise AmountNotRepresentable("PayPal amounts are not negative")
    if money.currency in _WHOLE_UNITS_ONLY:
        whole, fraction = divmod(money.amount, 10**exponent)
        if fraction:
            raise AmountNotRepresentable(f"PayPal takes {money.currency} in whole units only")
        return str(whole)
    if exponent == 0:
        return str(money.amount)
    whole, fraction = divmod(money.amount, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}"


def from_paypal_amount(amount: object) -> Money | None:
    """PayPal's `{currency_code, value}` → Money, or None unless it is exact in minor units."""
    if not isinstance(amount, dict):
        return None
    currency, value = amount.get("currency_code"), amount.get("value")
    if not isinstance(currency, str) or not isinstance(value, str):
        return None
    match = _VALUE.match(value)
    if match is None:
        return None
    try:
        exponent = minor_unit_exponent(currency)
    except MoneyError:
        return None
    whole, fraction = match.group(1), match.group(2) or ""
    kept, dropped = fraction[:exponent], fraction[exponent:]
    if dropped.strip("0"):
        return None  # more precision than the currency has: not an amount we can hold exactly
    minor = int(whole) * 10**exponent + int(kept.ljust(exponent, "0") or "0")
    if minor > MAX_AMOUNT:
        return None
    try:
        return Money(minor, currency)
    except MoneyError:
        return None


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def first(value: object) -> dict[str, Any]:
    return mapping(value[0]) if isinstance(value, list) and value else {}


def link(resource: dict[str, Any], *rels: str) -> str | None:
    """The href of the first HATEOAS link with one of `rels`, in the order given."""
    links = resource.get("links")
    if not isinstance(links, list):
        return None
    for rel in rels:
        for entry in links:
            if isinstance(entry, dict) and entry.get("rel") == rel and text(entry.get("href")):
                return str(entry["href"])
    return None


def _related_order_id(resource: dict[str, Any]) -> str | None:
    return text(mapping(mapping(resource.get("supplementary_data")).get("related_ids")).get("order_id"))


def event_to_neutral(payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
    event_type = text(payload.get("event_type")) or ""
    resource = mapping(payload.get("resource"))
    base: dict[str, Any] = {
        "provider_event_id": text(payload.get("id")) or "",
        "type": event_type,
        "livemode": livemode,
    }
    if event_type in _PAYMENT_EVENTS:
        # The resource is a capture; our attempt is found by the order id (its provider_ref) or,
        # should the webhook outrun checkout's second transaction, by our attempt id in custom_id.
        return NeutralEvent(
            **base,
            kind=_PAYMENT_EVENTS[event_type],
            payment_ref=_related_order_id(resource),
            merchant_reference=text(resource.get("custom_id")),
            amount=from_paypal_amount(resource.get("amount")),
            failure_reason=text(mapping(resource.get("status_details")).get("reason")),
        )
    if event_type in _REFUND_EVENTS:
        # The resource is a refund. Ours carry our refund id in custom_id; one made in PayPal's
        # dashboard is matched to the payment by the order id, when PayPal includes it.
        state = _REFUND_STATES.get(text(resource.get("status")) or "COMPLETED")
        kind = {
            RefundState.SUCCEEDED: NeutralKind.REFUND_SUCCEEDED,
            RefundState.FAILED: NeutralKind.REFUND_FAILED,
        }
        return NeutralEvent(
            **base,
            kind=kind.get(state, NeutralKind.IGNORED) if state else NeutralKind.IGNORED,
            payment_ref=_related_order_id(resource),
            merchant_reference=text(resource.get("custom_id")) or text(resource.get("invoice_id")),
            refund_ref=text(resource.get("id")),
            amount=from_paypal_amount(resource.get("amount")),
            failure_reason=text(mapping(resource.get("status_details")).get("reason")),
        )
    if event_type == ORDER_APPROVED:
        # Authorized: the receiver captures right after storing it (payments/capture.py).
        return NeutralEvent(
            **base,
            kind=NeutralKind.PAYMENT_AUTHORIZED,
            payment_ref=text(resource.get("id")),
            merchant_reference=text(first(resource.get("purchase_units")).get("custom_id")),
        )
    if event_type == APPROVAL_REVERSED:
        return NeutralEvent(
            **base,
            kind=NeutralKind.PAYMENT_FAILED,
            payment_ref=text(resource.get("order_id")) or text(resource.get("id")),
            merchant_reference=text(first(resource.get("purchase_units")).get("custom_id")),
            failure_reason="approval_reversed",
        )
    return NeutralEvent(**base, kind=NeutralKind.IGNORED)


def order_approved(order: dict[str, Any]) -> bool:
    return order.get("status") == "APPROVED"


def order_capture(order: dict[str, Any]) -> dict[str, Any]:
    """The order's capture (an intent-CAPTURE order has at most one), or {}."""
    return first(mapping(first(order.get("purchase_units")).get("payments")).get("captures"))


def existing_refund(order: dict[str, Any], refund_id: str) -> dict[str, Any] | None:
    """A refund of this order already made for our `refund_id` (PayPal lists an order's refunds
    under `purchase_units[].payments.refunds`; some answers nest them in the capture)."""
    for unit in order.get("purchase_units") or []:
        payments = mapping(mapping(unit).get("payments"))
        candidates = list(payments.get("refunds") or [])
        for capture in payments.get("captures") or []:
            candidates.extend(mapping(capture).get("refunds") or [])
        for refund in candidates:
            refund = mapping(refund)
            if refund_id in (refund.get("custom_id"), refund.get("invoice_id")):
                return refund
    return None


def order_to_status(order: dict[str, Any]) -> ProviderPaymentStatus:
    """What an order (GET /v2/checkout/orders/{id}) says of the payment. An order's COMPLETED is
    not the money: the capture's status is."""
    status = order.get("status")
    if status == "VOIDED":
        return ProviderPaymentStatus(state=ProviderPaymentState.CANCELED, amount=None)
    if status != "COMPLETED":
        return ProviderPaymentStatus(state=ProviderPaymentState.PENDING, amount=None)
    capture = order_capture(order)
    state = _CAPTURE_STATES.get(text(capture.get("status")) or "", ProviderPaymentState.PENDING)
    return ProviderPaymentStatus(
        state=state,
        amount=from_paypal_amount(capture.get("amount")),
        charge_ref=text(capture.get("id")),
    )


def refund_outcome(refund: dict[str, Any]) -> RefundOutcome:
    state = _REFUND_STATES.get(text(refund.get("status")) or "", RefundState.PENDING)
    reason = text(mapping(refund.get("status_details")).get("reason"))
    return RefundOutcome(
        provider_ref=text(refund.get("id")),
        state=state,
        failure_reason=(reason or f"PayPal refund {refund.get('status')}")
        if state is RefundState.FAILED
        else None,
    )
