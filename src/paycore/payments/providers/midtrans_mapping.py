"""Midtrans' words in paycore's, pure: amounts, transaction statuses and event ids.

Amounts. paycore keeps IDR in ISO 4217 minor units (exponent 2: Rp 99.000 is 9_900_000), while
Midtrans takes `gross_amount` as whole rupiah (an integer) and answers it as a decimal string
(`"99000.00"`). Conversions are exact or refused — never rounded, never through a float.

Statuses (docs: "Status Definition"). Success is `settlement`, or `capture` with fraud status
`accept`, with `status_code` "200". A fraud `challenge` is money held for the merchant's decision
(approved → `capture`+`accept`, denied or left a day → `deny`/`cancel`): not paid, not failed.
"""

from __future__ import annotations

import re
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from typing import Any

from paycore.money import Money, MoneyError, minor_unit_exponent
from paycore.payments.providers.base import NeutralKind, ProviderPaymentState

CURRENCY = "IDR"

# A plain non-negative decimal: no sign, exponent, spaces or digit look-alikes (`Decimal` takes
# those; a provider amount must not).
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,17})(\.[0-9]{1,6})?")

_FAILED = frozenset({"deny", "cancel", "expire", "failure"})
_REFUNDED = frozenset({"refund", "partial_refund"})
_CHARGEBACK = frozenset({"chargeback", "partial_chargeback"})


class AmountNotConvertible(ValueError):
    """An amount Midtrans cannot take as whole rupiah (another currency, a fraction of a rupiah)."""


def gross_amount_of(amount: Money) -> int:
    """Minor units → the whole rupiah Midtrans' `gross_amount` takes, or `AmountNotConvertible`."""
    if amount.currency != CURRENCY:
        raise AmountNotConvertible(f"Midtrans takes {CURRENCY} only, not {amount.currency}")
    unit: int = 10 ** minor_unit_exponent(CURRENCY)  # minor units in one rupiah
    rupiah, remainder = divmod(amount.amount, unit)
    if remainder:
        raise AmountNotConvertible(f"{amount.format()} is not a whole number of rupiah")
    if rupiah <= 0:
        raise AmountNotConvertible("the amount must be above zero")
    return rupiah


def money_of(gross_amount: object, currency: object = None) -> Money | None:
    """Midtrans' decimal string (`"99000.00"`) → Money in minor units; None if it is not exact."""
    if not isinstance(gross_amount, str) or not _AMOUNT.fullmatch(gross_amount):
        return None
    code = currency if isinstance(currency, str) and currency else CURRENCY
    try:
        exponent = minor_unit_exponent(code)
        with localcontext() as context:
            context.prec = 40
            context.traps[Inexact] = True
            minor = Decimal(gross_amount).scaleb(exponent)
        if minor != minor.to_integral_value():
            return None  # finer than the currency's minor unit
        return Money(int(minor), code)
    except (MoneyError, InvalidOperation):
        return None


def neutral_kind(transaction_status: str, fraud_status: str | None, status_code: str) -> NeutralKind:
    if transaction_status in _REFUNDED:
        return NeutralKind.REFUND_SUCCEEDED
    if transaction_status in _CHARGEBACK:
        return NeutralKind.DISPUTE_OPENED
    if transaction_status in _FAILED or fraud_status == "deny":
        return NeutralKind.PAYMENT_FAILED
    if _is_paid(transaction_status, fraud_status, status_code):
        return NeutralKind.PAYMENT_SUCCEEDED
    if fraud_status == "challenge" and transaction_status in {"capture", "settlement"}:
        # Held by Midtrans' fraud screening for the merchant's decision: not paid, ops told.
        return NeutralKind.PAYMENT_NEEDS_REVIEW
    if transaction_status in {"pending", "authorize", "capture", "settlement"}:
        return NeutralKind.PAYMENT_PENDING
    return NeutralKind.IGNORED


def payment_state(
    transaction_status: str, fraud_status: str | None, status_code: str
) -> ProviderPaymentState:
    """What the status API's answer means for the payment itself (reconciliation, confirm)."""
    if transaction_status in _REFUNDED or transaction_status in _CHARGEBACK:
        # Refunded or disputed later: the customer did pay. The refund is a separate record.
        return ProviderPaymentState.SUCCEEDED
    if transaction_status in {"cancel", "expire"}:
        return ProviderPaymentState.CANCELED
    if transaction_status in _FAILED or fraud_status == "deny":
        return ProviderPaymentState.FAILED
    if _is_paid(transaction_status, fraud_status, status_code):
        return ProviderPaymentState.SUCCEEDED
    return ProviderPaymentState.PENDING


def _is_paid(transaction_status: str, fraud_status: str | None, status_code: str) -> bool:
    if status_code != "200":
        return False
    if transaction_status == "capture":
        return fraud_status == "accept"
    # Non-card settlements may come without a fraud status; a challenged one is not paid.
    return transaction_status == "settlement" and fraud_status in (None, "accept")


def latest_refund(payload: dict[str, Any]) -> dict[str, Any]:
    """The refund a refund notification is about: the last of `refunds[]` (Midtrans lists every
    refund of the transaction so far), else the top-level refund fields."""
    refunds = payload.get("refunds")
    if isinstance(refunds, list) and refunds and isinstance(refunds[-1], dict):
        latest: dict[str, Any] = refunds[-1]
        return latest
    return {key: payload[key] for key in ("refund_key", "refund_chargeback_id") if key in payload}


def refund_ref(refund: dict[str, Any]) -> str | None:
    """Midtrans' id of a refund: `refund_chargeback_id` (a number), else the `refund_key`."""
    for key in ("refund_chargeback_id", "refund_key"):
        value = refund.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, str)) and str(value):
            return str(value)
    return None


def event_id(payload: dict[str, Any]) -> str:
    """Midtrans sends no event id. A notification is one state of one transaction, so the id is
    the transaction and its state: a re-sent notification repeats it (stored once), a new state
    (pending → settlement, challenge → accept, a second partial refund) makes a new one."""
    transaction = _text(payload.get("transaction_id")) or _text(payload.get("order_id")) or "-"
    parts = [
        transaction,
        _text(payload.get("transaction_status")) or "-",
        _text(payload.get("fraud_status")) or "-",
        _text(payload.get("status_code")) or "-",
    ]
    if payload.get("transaction_status") in _REFUNDED:
        # Without a refund id, the running total still tells one refund from the next.
        parts.append(refund_ref(latest_refund(payload)) or _text(payload.get("refund_amount")) or "-")
    return ":".join(parts)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
