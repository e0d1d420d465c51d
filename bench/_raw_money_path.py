"""The lean reference for the webhook and SQLite benchmarks: the rows paycore writes for one paid
order, written straight through the driver (no ORM, no HTTP), in the fewest statements and one
transaction per request. Same tables, same columns, same constraints (the migrated schema).

  cart      carts, cart_items
  checkout  stock reserved (conditional), customer (upsert), order, cart closed, order item,
            payment attempt, the sandbox's payment, audit row, `order.created` outbox row
  paid      inbox row (ON CONFLICT DO NOTHING), attempt succeeded, order paid and fulfilled, stock
            sold, customer counted, spend upserted, fulfillment, 3 audit rows in one statement,
            3 outbox rows in one statement (email, order.paid, order.fulfilled), inbox row applied
  unmatched inbox row, attempt looked up (none), ops alert outbox row, inbox row applied

SQL is written once with `:name` parameters: sqlite3 takes it as is, `for_asyncpg` numbers them.
Times are given as the driver wants them (datetime for asyncpg, ISO text for sqlite3).
Not a benchmark itself (the leading underscore keeps `make bench` from running it).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CART = [
    "INSERT INTO carts (id, tenant_id, livemode, status, currency, created_at, updated_at)"
    " VALUES (:cart_id, :tenant_id, false, 'open', 'EUR', :now, :now)",
    "INSERT INTO cart_items (id, tenant_id, cart_id, product_id, quantity, created_at, updated_at)"
    " VALUES (:cart_item_id, :tenant_id, :cart_id, :product_id, 1, :now, :now)",
]

CHECKOUT = [
    "INSERT INTO customers (id, tenant_id, livemode, email, total_orders, created_at, updated_at)"
    " VALUES (:customer_id, :tenant_id, false, :email, 0, :now, :now)"
    " ON CONFLICT (tenant_id, livemode, email) DO NOTHING",
    "INSERT INTO orders (id, tenant_id, livemode, number, customer_id, cart_id, status, currency, subtotal,"
    " discount, total, amount_paid, amount_refunded, provider, expires_at, version, created_at, updated_at)"
    " VALUES (:order_id, :tenant_id, false, :number, :customer_id, :cart_id, 'pending_payment', 'EUR', 2500,"
    " 0, 2500, 0, 0, 'sandbox', :expires_at, 1, :now, :now)",
    "UPDATE carts SET status = 'checked_out', order_id = :order_id, updated_at = :now WHERE id = :cart_id",
    "INSERT INTO order_items (id, tenant_id, order_id, product_id, name, kind, fulfillment, unit_amount,"
    " quantity, amount, stock_reserved)"
    " VALUES (:order_item_id, :tenant_id, :order_id, :product_id, 'Bench widget', 'physical', '{}', 2500,"
    " 1, 2500, true)",
    "INSERT INTO payment_attempts (id, tenant_id, livemode, order_id, provider, provider_ref, amount, currency,"
    " status, redirect_url, client_data, created_at, updated_at)"
    " VALUES (:attempt_id, :tenant_id, false, :order_id, 'sandbox', :sandbox_payment_id, 2500, 'EUR',"
    " 'requires_action', :redirect_url, '{}', :now, :now)",
    "INSERT INTO sandbox_payments (id, tenant_id, merchant_reference, amount, currency, status,"
    " amount_refunded, created_at, updated_at)"
    " VALUES (:sandbox_payment_id, :tenant_id, :attempt_id, 2500, 'EUR', 'requires_action', 0, :now, :now)",
    "INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, after, at)"
    " VALUES (:tenant_id, 'storefront', 'order.created', 'order', :order_id, :order_json, :now)",
    "INSERT INTO outbox (id, tenant_id, livemode, channel, topic, dedupe_key, ordering_key, payload, status,"
    " attempts, next_attempt_at, created_at, updated_at)"
    " VALUES (:outbox_created_id, :tenant_id, false, 'merchant_webhook', 'order.created', :dedupe_created,"
    " :ordering_key, :order_json, 'pending', 0, :now, :now, :now)",
    # Last before COMMIT: the hot row's lock is held for the shortest time.
    "UPDATE inventory SET reserved = reserved + 1, updated_at = :now"
    " WHERE product_id = :product_id AND on_hand - reserved >= 1",
]

_INBOX_INSERT = (
    "INSERT INTO payment_events (id, tenant_id, livemode, provider, provider_event_id, type, payload,"
    " received_at, attempts, correlation_id)"
    " VALUES (:event_id, :tenant_id, false, 'sandbox', :provider_event_id, 'payment.succeeded', :event_json,"
    " :now, 0, :correlation_id)"
    " ON CONFLICT (tenant_id, provider, provider_event_id) DO NOTHING"
)
_INBOX_APPLIED = "UPDATE payment_events SET processed_at = :now, result = :result, next_attempt_at = NULL WHERE id = :event_id"

PAID = [
    _INBOX_INSERT,
    "UPDATE payment_attempts SET status = 'succeeded', succeeded_at = :now, amount_received = 2500,"
    " updated_at = :now WHERE id = :attempt_id AND status <> 'succeeded'",
    "UPDATE orders SET status = 'fulfilled', paid_at = :now, fulfilled_at = :now, amount_paid = 2500,"
    " version = version + 2, updated_at = :now WHERE id = :order_id AND status = 'pending_payment'",
    "UPDATE customers SET total_orders = total_orders + 1, updated_at = :now WHERE id = :customer_id",
    "INSERT INTO customer_spend (id, tenant_id, customer_id, currency, amount)"
    " VALUES (:spend_id, :tenant_id, :customer_id, 'EUR', 2500)"
    " ON CONFLICT (tenant_id, customer_id, currency) DO UPDATE SET amount = customer_spend.amount + 2500",
    "INSERT INTO fulfillments (id, tenant_id, livemode, order_id, order_item_id, kind, status, external_ref,"
    " attempts, completed_at, created_at, updated_at)"
    " VALUES (:fulfillment_id, :tenant_id, false, :order_id, :order_item_id, 'physical', 'succeeded',"
    " :fulfillment_id, 0, :now, :now, :now)",
    "INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, after, at) VALUES"
    " (:tenant_id, 'provider:sandbox', 'payment_attempt.succeeded', 'order', :order_id, :attempt_json, :now),"
    " (:tenant_id, 'provider:sandbox', 'order.paid', 'order', :order_id, :order_json, :now),"
    " (:tenant_id, 'provider:sandbox', 'order.fulfilled', 'order', :order_id, :order_json, :now)",
    "INSERT INTO outbox (id, tenant_id, livemode, channel, topic, dedupe_key, ordering_key, payload, status,"
    " attempts, next_attempt_at, created_at, updated_at) VALUES"
    " (:outbox_email_id, :tenant_id, false, 'email', 'email.order_paid', :dedupe_email, NULL, :email_json,"
    " 'pending', 0, :now, :now, :now),"
    " (:outbox_paid_id, :tenant_id, false, 'merchant_webhook', 'order.paid', :dedupe_paid, :ordering_key,"
    " :order_json, 'pending', 0, :now, :now, :now),"
    " (:outbox_fulfilled_id, :tenant_id, false, 'merchant_webhook', 'order.fulfilled', :dedupe_fulfilled,"
    " :ordering_key, :order_json, 'pending', 0, :now, :now, :now)",
    _INBOX_APPLIED,
    # Last before COMMIT, as in checkout.
    "UPDATE inventory SET on_hand = on_hand - 1, reserved = reserved - 1, updated_at = :now"
    " WHERE product_id = :product_id",
]

UNMATCHED = [
    _INBOX_INSERT,
    "SELECT id FROM payment_attempts WHERE tenant_id = :tenant_id AND provider = 'sandbox'"
    " AND livemode = false AND (provider_ref = :sandbox_payment_id OR id = :attempt_id) LIMIT 1",
    "INSERT INTO outbox (id, tenant_id, livemode, channel, topic, dedupe_key, payload, status, attempts,"
    " next_attempt_at, created_at, updated_at)"
    " VALUES (:outbox_alert_id, :tenant_id, false, 'ops_alert', 'ops.unmatched_payment', :dedupe_alert,"
    " :event_json, 'pending', 0, :now, :now, :now)",
    _INBOX_APPLIED,
]


@dataclass(frozen=True)
class RawOrder:
    """Every id and value one paid order needs, for one tenant and product."""

    values: dict[str, Any]

    def at(self, now: object, **overrides: Any) -> dict[str, Any]:
        return {**self.values, "now": now, **overrides}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def raw_order(tenant_id: str, product_id: str, number: int, *, asyncpg: bool) -> RawOrder:
    order_id, attempt_id = _id("ord"), _id("pay")
    order_json = json.dumps({"id": order_id, "status": "paid", "total": 2500, "currency": "EUR"})
    expires = datetime.now(UTC) + timedelta(hours=1)
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "product_id": product_id,
        "cart_id": _id("cart"),
        "cart_item_id": _id("citem"),
        "customer_id": _id("cus"),
        "email": f"raw-{secrets.token_hex(4)}-{number}@example.com",
        "order_id": order_id,
        "number": f"R{secrets.token_hex(4)}{number}"[:20],
        "expires_at": expires if asyncpg else expires.isoformat(" "),
        "order_item_id": _id("oitem"),
        "attempt_id": attempt_id,
        "sandbox_payment_id": _id("sbpay"),
        "redirect_url": f"http://127.0.0.1/sandbox/pay/{attempt_id}",
        "order_json": order_json,
        "attempt_json": json.dumps({"attempt": attempt_id, "amount": 2500, "currency": "EUR"}),
        "email_json": json.dumps({"template": "order_paid", "to": "raw@example.com", "order": order_id}),
        "event_json": json.dumps({"id": _id("sbevt"), "type": "payment.succeeded", "data": {}}),
        "ordering_key": f"order:{order_id}",
        "outbox_created_id": _id("msg"),
        "dedupe_created": f"order.created:{order_id}",
        "event_id": _id("evt"),
        "provider_event_id": _id("sbevt"),
        "correlation_id": _id("req"),
        "result": "applied",
        "spend_id": _id("cusp"),
        "fulfillment_id": _id("ful"),
        "outbox_email_id": _id("msg"),
        "dedupe_email": f"email.order_paid:{order_id}",
        "outbox_paid_id": _id("msg"),
        "dedupe_paid": f"order.paid:{order_id}",
        "outbox_fulfilled_id": _id("msg"),
        "dedupe_fulfilled": f"order.fulfilled:{order_id}",
        "outbox_alert_id": _id("msg"),
        "dedupe_alert": f"unmatched:{attempt_id}",
    }
    return RawOrder(values)


def now_for(asyncpg: bool) -> object:
    now = datetime.now(UTC)
    return now if asyncpg else now.isoformat(" ")


_PARAMETER = re.compile(r"(?<![:\w]):([a-z_]+)")


@dataclass(frozen=True)
class NumberedStatement:
    sql: str
    names: tuple[str, ...]

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


def for_asyncpg(sql: str) -> NumberedStatement:
    """`:name` parameters as asyncpg's `$1…`, the same name always the same number."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return NumberedStatement(_PARAMETER.sub(number, sql), tuple(names))


def used_names(sql: str) -> set[str]:
    return set(_PARAMETER.findall(sql))


def for_sqlite(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters this statement names (sqlite3 refuses none, but stays explicit)."""
    return {name: values[name] for name in used_names(sql)}
