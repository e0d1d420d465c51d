"""Razorpay's webhook events in paycore's words. Pure: no I/O, and never raises on odd shapes.

Envelope: `{"entity": "event", "event": "payment.captured", "payload": {"payment": {"entity": …},
"order": {"entity": …}, "refund": {"entity": …}}, …}`. Razorpay's event id is not in the body but in
the `x-razorpay-event-id` header, which the signature does not cover; so `verify_webhook` stores the
hash of the signed body under `EVENT_ID_KEY`, where `to_neutral` (which sees only the payload) reads it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from paycore.money import Money, MoneyError
from paycore.payments.providers.base import NeutralEvent, NeutralKind

# Reserved payload key holding the signed body's hash, the inbox id. Razorpay's own
# envelope has no such key; should it ever send one, ours overwrites it.
EVENT_ID_KEY = "paycore_event_id"
# The notes paycore writes on what it creates, read back to name our attempt or refund.
ATTEMPT_NOTE = "paycore_attempt"
REFUND_NOTE = "paycore_refund"

_PAYMENT_KINDS = {
    "payment.captured": NeutralKind.PAYMENT_SUCCEEDED,
    "order.paid": NeutralKind.PAYMENT_SUCCEEDED,
    # paycore relies on automatic capture (set in the Razorpay dashboard): an authorised payment
    # is captured by Razorpay shortly after, or refunded by it if capture never happens.
    "payment.authorized": NeutralKind.PAYMENT_PENDING,
    "payment.failed": NeutralKind.PAYMENT_FAILED,
}
_REFUND_KINDS = {
    "refund.processed": NeutralKind.REFUND_SUCCEEDED,
    "refund.failed": NeutralKind.REFUND_FAILED,
    # refund.created and refund.speed_changed say nothing final: the refund call already stored
    # its reference, and processed/failed (or the refund job's re-check) settles it.
}
_REASON_LENGTH = 300


def signed_body_event_id(body: bytes) -> str:
    """The inbox id of a verified webhook: the SHA-256 of the signed body. Razorpay resends an
    event's same body, so retries are duplicates; applying is idempotent should two bodies of one
    event ever differ."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def entity(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """`payload.<name>.entity`, or {} when the event carries none."""
    return _mapping(_mapping(_mapping(payload.get("payload")).get(name)).get("entity"))


def to_neutral(payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
    event_type = _text(payload.get("event")) or ""
    event_id = _text(payload.get(EVENT_ID_KEY)) or _payload_hash(payload)
    if event_type in _PAYMENT_KINDS:
        return _payment_event(payload, event_id, event_type, livemode)
    if event_type in _REFUND_KINDS:
        return _refund_event(payload, event_id, event_type, livemode)
    return NeutralEvent(event_id, event_type, NeutralKind.IGNORED, livemode)


def _payment_event(payload: dict[str, Any], event_id: str, event_type: str, livemode: bool) -> NeutralEvent:
    payment = entity(payload, "payment")
    order = entity(payload, "order")
    order_id = _text(payment.get("order_id")) or _text(order.get("id"))
    if order_id is None:
        # paycore takes every Razorpay payment through an order it created: a payment without
        # one (a payment link, another integration on the same account) is not ours.
        return NeutralEvent(event_id, event_type, NeutralKind.IGNORED, livemode)
    return NeutralEvent(
        provider_event_id=event_id,
        type=event_type,
        kind=_PAYMENT_KINDS[event_type],
        livemode=livemode,
        payment_ref=order_id,
        merchant_reference=_note(payment, ATTEMPT_NOTE) or _note(order, ATTEMPT_NOTE),
        amount=_money(payment.get("amount"), payment.get("currency")),
        failure_reason=_failure_reason(payment) if event_type == "payment.failed" else None,
    )


def _refund_event(payload: dict[str, Any], event_id: str, event_type: str, livemode: bool) -> NeutralEvent:
    refund = entity(payload, "refund")
    payment = entity(payload, "payment")
    if payment.get("captured") is False:
        # Razorpay's auto-refund of a payment it never captured: the money never reached the
        # merchant, so there is nothing to take off an order's books.
        return NeutralEvent(event_id, event_type, NeutralKind.IGNORED, livemode)
    return NeutralEvent(
        provider_event_id=event_id,
        type=event_type,
        kind=_REFUND_KINDS[event_type],
        livemode=livemode,
        payment_ref=_text(payment.get("order_id")),
        merchant_reference=_note(refund, REFUND_NOTE) or _text(refund.get("receipt")),
        refund_ref=_text(refund.get("id")),
        amount=_money(refund.get("amount"), refund.get("currency")),
        failure_reason=_failure_reason(refund) if event_type == "refund.failed" else None,
    )


def _failure_reason(subject: dict[str, Any]) -> str | None:
    parts = [_text(subject.get(key)) for key in ("error_code", "error_reason", "error_description")]
    reason = ": ".join(part for part in parts if part)
    return reason[:_REASON_LENGTH] or None


def _payload_hash(payload: dict[str, Any]) -> str:
    # Only reached for a payload stored without EVENT_ID_KEY (which verify_webhook always adds).
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _note(subject: dict[str, Any], name: str) -> str | None:
    # Razorpay writes empty notes as `[]`, so `_mapping` is needed, not a cast.
    return _text(_mapping(subject.get("notes")).get(name))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _money(amount: object, currency: object) -> Money | None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        return None
    try:
        return Money(amount, currency)
    except MoneyError:
        return None
