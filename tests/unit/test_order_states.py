"""Every pair of (status, event): allowed transitions move, repeats are no-ops, the rest refuse."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore.orders.states import (
    ATTEMPT_TRANSITIONS,
    ORDER_TRANSITIONS,
    AttemptStatus,
    InvalidTransition,
    OrderEvent,
    OrderStatus,
    RefundStatus,
    can_move_attempt,
    can_move_refund,
    next_order_status,
)

S, E = OrderStatus, OrderEvent

EXPECTED_MOVES = {
    (S.PENDING_PAYMENT, E.PAY): S.PAID,
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
# Already there: asking again changes nothing and is not an error.
EXPECTED_NO_OPS = {
    (S.PAID, E.PAY),
    (S.FULFILLED, E.FULFILL),
    (S.CANCELED, E.CANCEL),
    (S.EXPIRED, E.EXPIRE),
    (S.NEEDS_REVIEW, E.REVIEW),
    (S.PAID, E.RESOLVE),
    (S.REFUNDED, E.REFUND_FULL),
}


def test_the_table_is_exactly_the_design() -> None:
    assert ORDER_TRANSITIONS == EXPECTED_MOVES


@pytest.mark.parametrize(("current", "event"), sorted(itertools.product(OrderStatus, OrderEvent)))
def test_every_pair(current: OrderStatus, event: OrderEvent) -> None:
    if (current, event) in EXPECTED_MOVES:
        assert next_order_status(current, event) == EXPECTED_MOVES[(current, event)]
    elif (current, event) in EXPECTED_NO_OPS:
        assert next_order_status(current, event) is None
    else:
        with pytest.raises(InvalidTransition) as caught:
            next_order_status(current, event)
        assert caught.value.code == "invalid_transition"
        assert caught.value.status_code == 409


def test_nothing_leaves_refunded() -> None:
    assert all(source is not S.REFUNDED for source, _ in ORDER_TRANSITIONS)


def test_only_verified_payment_events_reach_paid() -> None:
    events_into_paid = {event for (_, event), target in ORDER_TRANSITIONS.items() if target is S.PAID}
    assert events_into_paid == {E.PAY, E.RESOLVE}


@given(st.sampled_from(list(OrderStatus)), st.lists(st.sampled_from(list(OrderEvent)), max_size=12))
def test_any_sequence_stays_inside_the_table(start: OrderStatus, events: list[OrderEvent]) -> None:
    status = start
    for event in events:
        try:
            moved = next_order_status(status, event)
        except InvalidTransition:
            continue
        if moved is not None:
            assert ORDER_TRANSITIONS[(status, event)] is moved
            status = moved
    assert status in OrderStatus


class TestAttemptAndRefund:
    def test_success_is_terminal_for_attempts(self) -> None:
        assert ATTEMPT_TRANSITIONS[AttemptStatus.SUCCEEDED] == frozenset()
        assert not can_move_attempt(AttemptStatus.SUCCEEDED, AttemptStatus.FAILED)

    def test_verified_success_beats_an_earlier_failure_or_cancel(self) -> None:
        assert can_move_attempt(AttemptStatus.FAILED, AttemptStatus.SUCCEEDED)
        assert can_move_attempt(AttemptStatus.CANCELED, AttemptStatus.SUCCEEDED)
        assert not can_move_attempt(AttemptStatus.FAILED, AttemptStatus.CANCELED)

    def test_refunds(self) -> None:
        assert can_move_refund(RefundStatus.PENDING, RefundStatus.SUCCEEDED)
        assert can_move_refund(RefundStatus.FAILED, RefundStatus.SUCCEEDED)
        assert not can_move_refund(RefundStatus.SUCCEEDED, RefundStatus.FAILED)


class TestRefusalMessages:
    """Issue 12: "An order that is fulfilled cannot cancel." did not read as English."""

    def test_a_refusal_names_the_state_and_what_was_asked(self) -> None:
        with pytest.raises(InvalidTransition) as refused:
            next_order_status(S.FULFILLED, E.CANCEL)
        assert refused.value.message == "A fulfilled order cannot be canceled. Refund it instead."
        with pytest.raises(InvalidTransition) as refused:
            next_order_status(S.REFUNDED, E.FULFILL)
        assert refused.value.message == "A refunded order cannot be fulfilled."

    @pytest.mark.parametrize(
        ("current", "event"),
        [
            pair
            for pair in sorted(itertools.product(OrderStatus, OrderEvent))
            if pair not in EXPECTED_MOVES and pair not in EXPECTED_NO_OPS
        ],
    )
    def test_every_refusal_is_a_sentence(self, current: OrderStatus, event: OrderEvent) -> None:
        with pytest.raises(InvalidTransition) as refused:
            next_order_status(current, event)
        message = refused.value.message
        assert message[0].isupper() and message.endswith(".")
        assert " cannot be " in message and "_" not in message
