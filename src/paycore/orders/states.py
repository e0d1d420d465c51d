"""The order, payment-attempt and refund state machines, as tables. Pure; no I/O.

Every change of order state goes through `next_order_status`; anything not in the table is refused
(`InvalidTransition`, rendered as 409 `invalid_transition`). Asking for a transition whose target
is already the current state is a no-op, not an error, so a repeated event changes nothing.

    pending_payment --pay--> paid --fulfill--> fulfilled
          |   \\                \\                  \\
       cancel  expire          refund_partial / refund_full (from paid, fulfilled, partially_refunded)
          |      |
      canceled  expired --pay (late, stock re-reserved)--> paid
          \\______|______ review (mismatch, late payment without stock, challenge) --> needs_review
                                  needs_review --resolve (verified provider event)--> paid
                                  needs_review --refund_full--> refunded
"""

from __future__ import annotations

from enum import StrEnum

from paycore.errors import Conflict


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    NEEDS_REVIEW = "needs_review"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class OrderEvent(StrEnum):
    PAY = "pay"
    FULFILL = "fulfill"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REVIEW = "review"
    RESOLVE = "resolve"
    REFUND_PARTIAL = "refund_partial"
    REFUND_FULL = "refund_full"


class AttemptStatus(StrEnum):
    CREATED = "created"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


S = OrderStatus
E = OrderEvent

ORDER_TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    (S.PENDING_PAYMENT, E.PAY): S.PAID,
    # A verified payment that arrives after expiry or cancel is still money: it pays the order
    # when the stock can be reserved again; otherwise the order goes to review (and is refunded).
    (S.EXPIRED, E.PAY): S.PAID,
    (S.CANCELED, E.PAY): S.PAID,
    (S.PAID, E.FULFILL): S.FULFILLED,
    (S.PENDING_PAYMENT, E.CANCEL): S.CANCELED,
    (S.PENDING_PAYMENT, E.EXPIRE): S.EXPIRED,
    (S.PENDING_PAYMENT, E.REVIEW): S.NEEDS_REVIEW,
    (S.EXPIRED, E.REVIEW): S.NEEDS_REVIEW,
    (S.CANCELED, E.REVIEW): S.NEEDS_REVIEW,
    (S.NEEDS_REVIEW, E.RESOLVE): S.PAID,
    (S.PAID, E.REFUND_PARTIAL): S.PARTIALLY_REFUNDED,
    (S.FULFILLED, E.REFUND_PARTIAL): S.PARTIALLY_REFUNDED,
    (S.PARTIALLY_REFUNDED, E.REFUND_PARTIAL): S.PARTIALLY_REFUNDED,
    (S.PAID, E.REFUND_FULL): S.REFUNDED,
    (S.FULFILLED, E.REFUND_FULL): S.REFUNDED,
    (S.PARTIALLY_REFUNDED, E.REFUND_FULL): S.REFUNDED,
    (S.NEEDS_REVIEW, E.REFUND_FULL): S.REFUNDED,
}

# States in which the customer's money is held (a refund may be asked for).
REFUNDABLE = frozenset({S.PAID, S.FULFILLED, S.PARTIALLY_REFUNDED, S.NEEDS_REVIEW})
# States that still hold a stock reservation.
HOLDS_RESERVATION = frozenset({S.PENDING_PAYMENT})

ATTEMPT_TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.CREATED: frozenset(
        {AttemptStatus.REQUIRES_ACTION, AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.CANCELED}
    ),
    AttemptStatus.REQUIRES_ACTION: frozenset(
        {AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.CANCELED}
    ),
    # Verified evidence of success wins over an earlier failure or our own cancel: the money moved.
    AttemptStatus.FAILED: frozenset({AttemptStatus.SUCCEEDED}),
    AttemptStatus.CANCELED: frozenset({AttemptStatus.SUCCEEDED}),
    AttemptStatus.SUCCEEDED: frozenset(),
}

REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.FAILED: frozenset({RefundStatus.SUCCEEDED}),
    RefundStatus.SUCCEEDED: frozenset(),
}


# For refusals that read as sentences: "A fulfilled order cannot be canceled."
_AN_ORDER_THAT_IS: dict[OrderStatus, str] = {
    S.PENDING_PAYMENT: "An order awaiting payment",
    S.PAID: "A paid order",
    S.FULFILLED: "A fulfilled order",
    S.CANCELED: "A canceled order",
    S.EXPIRED: "An expired order",
    S.NEEDS_REVIEW: "An order under review",
    S.PARTIALLY_REFUNDED: "A partially refunded order",
    S.REFUNDED: "A refunded order",
}
_DONE_BY: dict[OrderEvent, str] = {
    E.PAY: "paid",
    E.FULFILL: "fulfilled",
    E.CANCEL: "canceled",
    E.EXPIRE: "expired",
    E.REVIEW: "sent to review",
    E.RESOLVE: "resolved",
    E.REFUND_PARTIAL: "partially refunded",
    E.REFUND_FULL: "fully refunded",
}


class InvalidTransition(Conflict):
    code = "invalid_transition"


def next_order_status(current: OrderStatus, event: OrderEvent) -> OrderStatus | None:
    """The status after `event`, `None` when it is already there (a no-op), or `InvalidTransition`."""
    target = ORDER_TRANSITIONS.get((current, event))
    if target is not None:
        # refund_partial on partially_refunded is a real change (more money back), not a no-op.
        return target
    if any(
        event is known_event and target == current for (_, known_event), target in ORDER_TRANSITIONS.items()
    ):
        return None
    hint = " Refund it instead." if event is OrderEvent.CANCEL and current in REFUNDABLE else ""
    raise InvalidTransition(f"{_AN_ORDER_THAT_IS[current]} cannot be {_DONE_BY[event]}.{hint}")


def can_move_attempt(current: AttemptStatus, target: AttemptStatus) -> bool:
    return target in ATTEMPT_TRANSITIONS[current]


def can_move_refund(current: RefundStatus, target: RefundStatus) -> bool:
    return target in REFUND_TRANSITIONS[current]
