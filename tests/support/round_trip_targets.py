"""Issue 13's targets for round trips per request (BEGIN/COMMIT included). The checkout target is
for the POST /v1/checkout call alone: the cart is created by a request of its own."""

from __future__ import annotations

TARGETS = {
    "POST /v1/checkout": 12,
    "paid webhook": 10,
    "duplicate webhook": 3,
}
