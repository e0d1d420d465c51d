"""Stripe objects (events, PaymentIntents, Refunds) in paycore's words. Pure, plain dicts in.

Nothing here raises on a shape it does not expect: an odd field is treated as absent, an event
type paycore does not act on is `IGNORED`.

Refunds are read from `refund.*` events (and `charge.refund.updated`), one event per refund.
`charge.refunded` carries the *charge*: since API version 2022-11-15 its `refunds` list is not
included, and when it is, it lists every refund of the charge, so the event does not say which
refund it is about. It is acted on only when the list holds exactly one refund and nothing more;
otherwise it is ignored and the `refund.*` event for the same refund does the work. Acting on it
when ambiguous would risk recording a provider refund twice.
"""

from __future__ import annotations

from typing import Any

from paycore.money import Money, MoneyError
from paycore.payments.providers.base import (
    NeutralEvent,
    NeutralKind,
    ProviderPaymentState,
    ProviderPaymentStatus,
    RefundOutcome,
    RefundState,
)

ATTEMPT_KEY = "paycore_attempt"
REFUND_KEY = "paycore_refund"

_PAYMENT_EVENTS = {
    "payment_intent.succeeded": NeutralKind.PAYMENT_SUCCEEDED,
    "payment_intent.processing": NeutralKind.PAYMENT_PENDING,
    "payment_intent.payment_failed": NeutralKind.PAYMENT_FAILED,
    "payment_intent.canceled": NeutralKind.PAYMENT_FAILED,
}
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
_REFUND_KINDS = {
    "succeeded": NeutralKind.REFUND_SUCCEEDED,
    "failed": NeutralKind.REFUND_FAILED,
    "canceled": NeutralKind.REFUND_FAILED,
}
_REFUND_STATES = {
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.FAILED,
}


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def money(amount: object, currency: object) -> Money | None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        return None
    try:
        return Money(amount, currency.upper())
    except MoneyError:
        return None


def _failure_reason(intent: dict[str, Any]) -> str | None:
    error = mapping(intent.get("last_payment_error"))
    reason = text(error.get("message")) or text(error.get("decline_code")) or text(error.get("code"))
    if reason is None and intent.get("status") == "canceled":
        reason = f"canceled: {text(intent.get('cancellation_reason')) or 'no reason given'}"
    return reason[:500] if reason else None


def _the_only_refund(charge: dict[str, Any]) -> dict[str, Any] | None:
    refunds = mapping(charge.get("refunds"))
    data = refunds.get("data")
    if not isinstance(data, list) or len(data) != 1 or refunds.get("has_more") is not False:
        return None
    return mapping(data[0]) or None


def to_neutral(payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
    event_type = text(payload.get("type")) or ""
    # The event's own word on its mode, so that webhooks.py can refuse one signed by the other mode.
    own_mode = payload.get("livemode")
    subject = mapping(mapping(payload.get("data")).get("object"))
    event = NeutralEvent(
        provider_event_id=text(payload.get("id")) or "",
        type=event_type,
        kind=NeutralKind.IGNORED,
        livemode=own_mode if isinstance(own_mode, bool) else livemode,
    )
    if event_type in _PAYMENT_EVENTS and subject.get("object") == "payment_intent":
        kind = _PAYMENT_EVENTS[event_type]
        succeeded = kind is NeutralKind.PAYMENT_SUCCEEDED
        return _with(
            event,
            kind=kind,
            payment_ref=text(subject.get("id")),
            merchant_reference=text(mapping(subject.get("metadata")).get(ATTEMPT_KEY)),
            amount=money(subject.get("amount_received"), subject.get("currency")) if succeeded else None,
            failure_reason=_failure_reason(subject) if kind is NeutralKind.PAYMENT_FAILED else None,
        )
    if event_type in _REFUND_EVENTS and subject.get("object") == "refund":
        return _refund_event(event, subject)
    if event_type == "charge.refunded" and subject.get("object") == "charge":
        refund = _the_only_refund(subject)
        return event if refund is None else _refund_event(event, refund)
    if event_type == "charge.dispute.created" and subject.get("object") == "dispute":
        return _with(
            event,
            kind=NeutralKind.DISPUTE_OPENED,
            payment_ref=text(subject.get("payment_intent")),
            amount=money(subject.get("amount"), subject.get("currency")),
        )
    return event


def _refund_event(event: NeutralEvent, refund: dict[str, Any]) -> NeutralEvent:
    kind = _REFUND_KINDS.get(str(refund.get("status")))
    if kind is None:  # pending, requires_action: nothing settled yet
        return event
    return _with(
        event,
        kind=kind,
        payment_ref=text(refund.get("payment_intent")),
        merchant_reference=text(mapping(refund.get("metadata")).get(REFUND_KEY)),
        refund_ref=text(refund.get("id")),
        amount=money(refund.get("amount"), refund.get("currency")),
        failure_reason=text(refund.get("failure_reason")) if kind is NeutralKind.REFUND_FAILED else None,
    )


def _with(event: NeutralEvent, **changes: Any) -> NeutralEvent:
    return NeutralEvent(
        provider_event_id=event.provider_event_id, type=event.type, livemode=event.livemode, **changes
    )


def payment_status(intent: dict[str, Any]) -> ProviderPaymentStatus:
    """A PaymentIntent's state. `requires_payment_method` after a decline is still payable (the
    customer may try another card on the same PaymentIntent), so it is pending, not failed."""
    status = intent.get("status")
    charge_ref = text(intent.get("latest_charge"))
    if status == "succeeded":
        return ProviderPaymentStatus(
            state=ProviderPaymentState.SUCCEEDED,
            amount=money(intent.get("amount_received"), intent.get("currency")),
            charge_ref=charge_ref,
        )
    if status == "canceled":
        return ProviderPaymentStatus(state=ProviderPaymentState.CANCELED, amount=None, charge_ref=charge_ref)
    return ProviderPaymentStatus(state=ProviderPaymentState.PENDING, amount=None, charge_ref=charge_ref)


def refund_outcome(refund: dict[str, Any]) -> RefundOutcome:
    state = _REFUND_STATES.get(str(refund.get("status")), RefundState.PENDING)
    reason = text(refund.get("failure_reason")) if state is RefundState.FAILED else None
    return RefundOutcome(provider_ref=text(refund.get("id")), state=state, failure_reason=reason)
